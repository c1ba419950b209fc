"""storage: from the spool to the time-series store, without losing a point.

- ``storage.schema``: the one place for measurement, tag and field names, and the mapping of a record to its
  points (``mapped``; ``points_for(record)``);
- ``storage.line_protocol``: line protocol, from points (``to_line``) or straight from records (``lines_for``);
- ``storage.drain``: ``StorageDrain``, which follows the spool from its checkpoint and retries until stored;
- ``storage.pipeline``: the drain's read-ahead and writes in flight, settled in order;
- ``storage.sinks``: lines for an InfluxDB, points for the embedded store;
- ``storage.writers``: InfluxDB v1 and v2 writers (``PointWriter``), transient vs permanent errors;
- ``storage.local``: ``LocalStore``, the embedded SQLite store used when no InfluxDB is configured.
"""
