"""storage: from the spool to the time-series store, without losing a point.

- ``storage.schema``: the one place for measurement, tag and field names, and ``points_for(record)``;
- ``storage.drain``: ``StorageDrain``, which follows the spool from its checkpoint and retries until stored;
- ``storage.writers``: InfluxDB v1 and v2 writers (``PointWriter``), line protocol, transient vs permanent errors;
- ``storage.local``: ``LocalStore``, the embedded SQLite store used when no InfluxDB is configured.
"""
