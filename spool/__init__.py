"""The spool: the platform's durable, ordered log (SQLite, WAL, fsync on every commit).

The gateway writes to it (records in arrival order, deduplicated by device and msg_id, and dead letters with
their reason) and acknowledges a delivery only once it is here. Storage and rules read from it, each from its
own checkpoint, through this package's API only: :class:`Spool` to read and advance, :func:`hydrate` to turn a
stored record back into its typed message.
"""

from spool.records import DownstreamReject, NewRecord, SpoolRecord, StoredDeadLetter, hydrate
from spool.schema import SCHEMA_VERSION, SpoolVersionError
from spool.store import Spool
from spool.write import (
    CommitPlan,
    Entry,
    NewDeadLetter,
    Outcome,
    RecordRow,
    SpoolEntry,
    device_time,
    plan,
    utc_offset_s,
)

__all__ = [
    "SCHEMA_VERSION",
    "CommitPlan",
    "DownstreamReject",
    "Entry",
    "NewDeadLetter",
    "NewRecord",
    "Outcome",
    "RecordRow",
    "Spool",
    "SpoolEntry",
    "SpoolRecord",
    "SpoolVersionError",
    "StoredDeadLetter",
    "device_time",
    "hydrate",
    "plan",
    "utc_offset_s",
]
