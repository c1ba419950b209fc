"""Writing to the spool: what the gateway hands it, and the group commit that writes a batch in one transaction.

A batch is first turned into SQL parameters (:func:`plan`, plain Python, in the event loop's thread); the
thread that runs the transaction (:func:`write`) then hands SQLite a few multi-row statements and needs the GIL
only between them. Measured on the gateway benchmark (docs/gateway.md): a statement per row, or fetching a
RETURNING clause's rows one by one, made the commit thread give up and wait for the GIL thousands of times per
batch, and the commit took twice as long as SQLite's own work.
"""

from __future__ import annotations

import datetime as dt
import functools
import operator
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from itertools import chain
from typing import NamedTuple
from zlib import crc32

from spool.records import NewRecord

_INSERT_LETTER = (
    "INSERT INTO dead_letters (reason, detail, topic, client_id, payload, received_at) VALUES (?, ?, ?, ?, ?, ?)"
)
# sqlite3 binds str, int, float and bytearray as they are, but sends bytes through its adapter registry, and
# on Python 3.11 that lookup fails by way of an AttributeError raised and cleared for each value: 270 ns per
# record payload, under the GIL, on the commit thread. An adapter that returns the bytes unchanged makes the
# lookup succeed at once (60 ns). It changes nothing that is stored, for any connection in the process.
sqlite3.register_adapter(bytes, bytes.__bytes__)

#: Rows per statement, within SQLite's limit of 32,766 parameters.
_KEYS_PER_STATEMENT = 5000  # four parameters each
_RECORDS_PER_STATEMENT = 2000  # twelve parameters each


class Outcome(StrEnum):
    STORED = "stored"
    #: Stored, flagged: its device had used the msg_id before, for other content (a counter reset, a bug).
    REUSED = "reused"
    DUPLICATE = "duplicate"
    DEAD_LETTERED = "dead_lettered"
    SKIPPED = "skipped"


class RecordRow(NamedTuple):
    """A record as the spool stores it, column for column: what the gateway makes for each accepted delivery,
    so that the commit passes it to SQLite as it is. The topic is not kept: the device topic grammar rebuilds
    it from the canteen, kind, device and channel.

    Times are Unix seconds: the device's ``ts`` as an instant and the offset it was written with (turning it
    back into RFC 3339 text took 0.7 µs per record, a twentieth of the gateway's work; :func:`device_time`
    rebuilds the datetime when a record is read)."""

    device_id: str
    msg_id: str
    canteen_id: str
    kind: str
    channel: str
    type: str
    payload: bytes
    device_ts: float  # Unix seconds
    device_utc_offset_s: int  # the offset the device wrote, seconds east of UTC
    received_at: float  # Unix seconds
    skew_flagged: int  # 0 or 1
    msg_id_reused: int  # 0 or 1: set by the commit, never by the gateway

    @property
    def skew_s(self) -> float:
        """How far the device's clock is ahead of the gateway's (the spool's generated column of that name)."""
        return self.device_ts - self.received_at


_RECORD_COLUMNS = ", ".join(RecordRow._fields)  # the records table's columns are the row's fields
_RECORD_WIDTH = len(RecordRow._fields)
_RECORD_PLACEHOLDERS = f"({', '.join('?' * _RECORD_WIDTH)})"


@dataclass(frozen=True, slots=True)
class NewDeadLetter:
    reason: str
    detail: str
    topic: str
    client_id: str | None
    payload: bytes
    received_at: dt.datetime


#: What the gateway makes of one delivery: ``None`` for deliveries that are not device input.
SpoolEntry = RecordRow | NewDeadLetter | None
#: What :meth:`spool.store.Spool.commit` takes: the same, or a record with its times as datetimes.
Entry = NewRecord | SpoolEntry


class CommitPlan(NamedTuple):
    """A batch as SQL parameters, and what becomes of each entry unless its key was stored by an earlier batch."""

    outcomes: list[Outcome]  # STORED for each row of ``records``, in the same order
    records: list[RecordRow]  # each record not a copy of one before it in the batch, in arrival order
    keys: list[object]  # device_id, msg_id, received_at and content of each row of ``records``, flattened
    values: list[object]  # the rows of ``records``, flattened
    letters: list[tuple[object, ...]]


#: A record's dedup key, and the rest of its ``seen`` row, as the table keeps them.
_seen_key = operator.itemgetter(RecordRow._fields.index("device_id"), RecordRow._fields.index("msg_id"))
_seen_row = operator.itemgetter(
    RecordRow._fields.index("device_id"), RecordRow._fields.index("msg_id"), RecordRow._fields.index("received_at")
)
_payload = operator.itemgetter(RecordRow._fields.index("payload"))


#: What tells two records under one msg_id apart, as the ``seen`` table keeps it: the payload's CRC-32.
#: Devices resend a record byte for byte from their outbox (docs/contract.md), so equal bytes are a resend and
#: other bytes another record. A checksum rather than a cryptographic hash, computed in C for a whole batch at
#: once: a real reuse passes for a resend only when the CRC-32s agree (one chance in four billion).
content_of = crc32


def plan(batch: Sequence[SpoolEntry]) -> CommitPlan:
    """Pure; ``None`` entries (deliveries that are not device input) are skipped but keep their place."""
    outcomes: list[Outcome] = []
    records: list[RecordRow] = []
    letters: list[tuple[object, ...]] = []
    first_of: dict[tuple[str, str], RecordRow] = {}
    for entry in batch:
        if entry is None:
            outcomes.append(Outcome.SKIPPED)
        elif isinstance(entry, RecordRow):
            first = first_of.setdefault(_seen_key(entry), entry)
            if first is not entry and first.payload == entry.payload:  # a second copy in the same batch
                outcomes.append(Outcome.DUPLICATE)
                continue
            # (other content under a key used earlier in this batch is kept: the commit flags it)
            outcomes.append(Outcome.STORED)
            records.append(entry)
        else:
            outcomes.append(Outcome.DEAD_LETTERED)
            letters.append(_letter_row(entry))
    return CommitPlan(outcomes, records, _seen_keys(records), list(chain.from_iterable(records)), letters)


def _seen_keys(records: list[RecordRow]) -> list[object]:
    """Device, msg_id, received_at and content of each record, flattened, in C loops rather than a Python step
    per record (this runs for every record the gateway stores)."""
    contents = zip(map(content_of, map(_payload, records)))  # 1-tuples, to append to each (device, msg_id, at)
    return list(chain.from_iterable(map(operator.add, map(_seen_row, records), contents)))


def write(cursor: sqlite3.Cursor, planned: CommitPlan) -> list[Outcome]:
    """Write ``planned`` in one transaction, committed (fsync) before returning each entry's outcome, in order.

    The dedup keys are claimed with ``INSERT OR IGNORE``: when it inserts every key (the usual case) nothing
    more is asked. Otherwise some were stored by earlier batches (redeliveries): the transaction starts over,
    looks those keys up, and claims the rest. Four statements in the usual case, because each one makes the
    thread wait for the GIL again.
    """
    cursor.execute("BEGIN IMMEDIATE")
    try:
        outcomes = _write(cursor, planned)
        cursor.execute("COMMIT")
    except BaseException:
        cursor.execute("ROLLBACK")
        raise
    return outcomes


def _write(cursor: sqlite3.Cursor, planned: CommitPlan) -> list[Outcome]:
    if _insert_keys(cursor, planned.keys) < len(planned.records):
        cursor.execute("ROLLBACK")
        cursor.execute("BEGIN IMMEDIATE")
        planned = _sorted_out(cursor, planned, _stored_before(cursor, planned.keys))
        _insert_keys(cursor, planned.keys)
    values, step = planned.values, _RECORD_WIDTH * _RECORDS_PER_STATEMENT
    for start in range(0, len(values), step):
        chunk = values[start : start + step] if len(values) > step else values  # no copy for the usual batch
        cursor.execute(_insert_records_sql(len(chunk) // _RECORD_WIDTH), chunk)
    if planned.letters:
        cursor.executemany(_INSERT_LETTER, planned.letters)
    return planned.outcomes


def _insert_keys(cursor: sqlite3.Cursor, keys: list[object]) -> int:
    inserted, step = 0, 4 * _KEYS_PER_STATEMENT
    for start in range(0, len(keys), step):
        chunk = keys[start : start + step]
        cursor.execute(_insert_keys_sql(len(chunk) // 4), chunk)
        inserted += cursor.rowcount
    return inserted


def _stored_before(cursor: sqlite3.Cursor, keys: list[object]) -> dict[tuple[str, str], int | None]:
    """The keys of this batch that earlier batches stored, with the content stored under each."""
    found: dict[tuple[str, str], int | None] = {}
    step = 4 * _KEYS_PER_STATEMENT
    for start in range(0, len(keys), step):
        chunk = keys[start : start + step]
        cursor.execute(_lookup_keys_sql(len(chunk) // 4), chunk)
        found.update(((device_id, msg_id), content) for device_id, msg_id, content in cursor.fetchall())
    return found


def _sorted_out(
    cursor: sqlite3.Cursor, planned: CommitPlan, stored_before: dict[tuple[str, str], int | None]
) -> CommitPlan:
    """``planned`` once some keys turned out to be taken. A record whose key was stored with the same content is
    a duplicate (a resend). One with other content is another record under a reused msg_id: stored, flagged,
    and its content remembered in ``seen_reused``, unless it is there already (a resend of that one)."""
    outcomes = list(planned.outcomes)
    slots = [slot for slot, outcome in enumerate(outcomes) if outcome is Outcome.STORED]  # one per record
    records: list[RecordRow] = []
    keys: list[object] = []
    claimed: dict[tuple[str, str], int | None] = dict(stored_before)
    for slot, row in zip(slots, planned.records, strict=True):
        key, content = _seen_key(row), content_of(row.payload)
        if key not in claimed:
            claimed[key] = content
            records.append(row)
            keys += (*key, row.received_at, content)
        elif claimed[key] in (None, content):  # None: a key a version 2 spool kept, whose content is unknown
            outcomes[slot] = Outcome.DUPLICATE
        elif _remember_reuse(cursor, row, content):
            outcomes[slot] = Outcome.REUSED
            records.append(row._replace(msg_id_reused=1))
        else:
            outcomes[slot] = Outcome.DUPLICATE
    return CommitPlan(outcomes, records, keys, list(chain.from_iterable(records)), planned.letters)


def _remember_reuse(cursor: sqlite3.Cursor, row: RecordRow, content: int) -> bool:
    """Claim another content of a reused msg_id; False when it was claimed before (the record is a resend)."""
    cursor.execute(
        "INSERT OR IGNORE INTO seen_reused (device_id, msg_id, content, received_at) VALUES (?, ?, ?, ?)",
        (row.device_id, row.msg_id, content, row.received_at),
    )
    return cursor.rowcount == 1


@functools.lru_cache(maxsize=32)
def _insert_keys_sql(rows: int) -> str:
    values = ", ".join(["(?, ?, ?, ?)"] * rows)
    return f"INSERT OR IGNORE INTO seen (device_id, msg_id, received_at, content) VALUES {values}"


@functools.lru_cache(maxsize=32)
def _lookup_keys_sql(rows: int) -> str:
    # A join, not "(device_id, msg_id) IN (VALUES ...)": SQLite 3.40 scans the whole table for the latter.
    values = ", ".join(["(?, ?, ?, ?)"] * rows)
    return (
        f"WITH batch(device_id, msg_id, received_at, content) AS (VALUES {values})"
        " SELECT seen.device_id, seen.msg_id, seen.content"
        " FROM batch JOIN seen ON seen.device_id = batch.device_id AND seen.msg_id = batch.msg_id"
    )


@functools.lru_cache(maxsize=32)
def _insert_records_sql(rows: int) -> str:
    values = ", ".join([_RECORD_PLACEHOLDERS] * rows)
    return f"INSERT INTO records ({_RECORD_COLUMNS}) VALUES {values}"


def record_row(record: NewRecord) -> RecordRow:
    return RecordRow(
        record.device_id,
        record.msg_id,
        record.canteen_id,
        record.kind,
        record.channel,
        record.type,
        record.payload,
        record.device_ts.timestamp(),
        utc_offset_s(record.device_ts),
        record.received_at.timestamp(),
        int(record.skew_flagged),
        0,
    )


def utc_offset_s(instant: dt.datetime) -> int:
    """The offset of an aware datetime, in whole seconds east of UTC."""
    offset = instant.utcoffset()
    if offset is None:
        raise ValueError(f"{instant!r} has no UTC offset")
    return offset.days * 86_400 + offset.seconds


def device_time(epoch: float, utc_offset_s: int) -> dt.datetime:
    """The datetime a device wrote, from what the spool keeps of it: the same instant and offset, exact to the
    microsecond until 2106 (a float's step is then under half a microsecond)."""
    return dt.datetime.fromtimestamp(epoch, _zone(utc_offset_s))


@functools.lru_cache(maxsize=64)
def _zone(utc_offset_s: int) -> dt.timezone:
    return dt.timezone(dt.timedelta(seconds=utc_offset_s))  # dt.UTC itself for 0


def _letter_row(letter: NewDeadLetter) -> tuple[object, ...]:
    received = letter.received_at.timestamp()
    return (letter.reason, letter.detail, letter.topic, letter.client_id, letter.payload, received)
