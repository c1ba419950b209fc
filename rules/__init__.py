"""rules: alerts on what happened and on what did NOT happen by a deadline (docs/rules.md).

- ``rules.engine``: ``RulesEngine``, the core: records and ticks to every unit, effects to the store, one
  transaction per unit of work;
- ``rules.units``: one module per rule family, each with typed state, returning ``rules.effects``;
- ``rules.alerts``: ``RulesStore``, alerts with their audit log and outbox, and the engine's state;
- ``rules.config`` and ``rules.messages``: the thresholds, and the text supervisors read (zh, en);
- ``rules.runner``: ``RulesRunner``, which follows the spool, ticks, publishes and takes acknowledgements;
- ``rules.notify``: where alert changes go (the alerts topic, webhooks);
- ``rules.escalation``: unacknowledged critical alerts go up, school -> district -> city.
"""
