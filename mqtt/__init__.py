"""mqtt: everything that speaks MQTT, behind the narrow interface of ``mqtt.bus``.

- ``mqtt.bus``: ``BusClient`` (subscribe, receive in batches, acknowledge once safe, publish), ``Incoming``,
  ``BusError``;
- ``mqtt.service_link``: ``ServiceLink``, the platform's own MQTT 5 client (acknowledgement after commit,
  batched receive), over the codec ``mqtt.wire``;
- ``mqtt.memory_bus``: ``MemoryBroker``, the in-memory bus for fast component tests;
- ``mqtt.device_link``: ``MqttLink``, the device-side client over aiomqtt (simulators, tools);
- ``mqtt.link_options``: ``LinkOptions`` and ``LastWill``, how to reach the broker, for both clients.
"""
