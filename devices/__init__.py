"""devices: the wire contract of version 1 (docs/contract.md), as code that does no I/O.

- ``devices.ids``: the id rule (``check_id``, ``check_canteen_id``) and the reserved topic words;
- ``devices.topics``: the topic grammar (``DeviceTopic``, ``parse_device_topic``, the platform's topics);
- ``devices.messages``: the pydantic model of every payload and the topic -> model table ``CATALOG``;
- ``devices.decode``: bytes on a device topic -> a typed message, or the specific ``Reason`` it is refused;
- ``devices.reasons``: the one list of reject reasons;
- ``devices.registry``: the canteen registry (canteens, meals, calendar, devices, accounts) and its loader;
- ``devices.schemas``, ``devices.asyncapi``, ``devices.field_docs``: the contract as JSON Schema and AsyncAPI
  documents, and what each field means (``shian contract export`` writes them).
"""
