"""The spool's SQLite schema, and the upgrade of a spool written by an earlier Shian, in place."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

from runtime.errors import ShianError
from spool.write import utc_offset_s

SCHEMA_VERSION = 3

RECORDS_TABLE = """
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id TEXT NOT NULL,
    msg_id TEXT NOT NULL,
    canteen_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    channel TEXT NOT NULL,
    type TEXT NOT NULL,
    payload BLOB NOT NULL,
    device_ts REAL NOT NULL,                -- the device's ts, Unix seconds
    device_utc_offset_s INTEGER NOT NULL,   -- the offset the device wrote it with
    received_at REAL NOT NULL,              -- gateway clock, Unix seconds
    skew_s REAL GENERATED ALWAYS AS (device_ts - received_at) VIRTUAL,
    skew_flagged INTEGER NOT NULL,          -- outside the configured clock-skew limits
    msg_id_reused INTEGER NOT NULL DEFAULT 0 -- the device used this msg_id before, for other content
);
"""

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
{RECORDS_TABLE}
CREATE TABLE IF NOT EXISTS seen (
    device_id TEXT NOT NULL,
    msg_id TEXT NOT NULL,
    received_at REAL NOT NULL,
    content INTEGER,                  -- CRC-32 of the payload; NULL for keys a version 2 spool kept
    PRIMARY KEY (device_id, msg_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS seen_by_age ON seen (received_at);
-- the other contents a device sent under a msg_id it had used before: stored too, flagged, and remembered so
-- that their own resends are duplicates
CREATE TABLE IF NOT EXISTS seen_reused (
    device_id TEXT NOT NULL,
    msg_id TEXT NOT NULL,
    content INTEGER NOT NULL,
    received_at REAL NOT NULL,
    PRIMARY KEY (device_id, msg_id, content)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS seen_reused_by_age ON seen_reused (received_at);
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL,
    topic TEXT NOT NULL,
    client_id TEXT,
    payload BLOB NOT NULL,
    received_at REAL NOT NULL,
    replayed_at REAL,                 -- set when a replay stored it; it then stays for the record
    replay_note TEXT
);
CREATE INDEX IF NOT EXISTS dead_letters_by_reason ON dead_letters (reason, id);
CREATE TABLE IF NOT EXISTS checkpoints (consumer TEXT PRIMARY KEY, seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS consumer_rejects (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    consumer TEXT NOT NULL,           -- who could not take the record: 'storage', 'rules'
    seq INTEGER NOT NULL,             -- the record
    detail TEXT NOT NULL,             -- the downstream server's own message
    item TEXT NOT NULL,               -- what was refused (for storage: the line protocol)
    at REAL NOT NULL,
    replayed_at REAL,                 -- set once a replay got it through; the record may then be pruned
    replay_note TEXT
);
"""


class SpoolVersionError(ShianError):
    """The spool file was written by a newer Shian than this one, or could not be upgraded."""


def upgrade(db: sqlite3.Connection, path: Path) -> None:
    """Create the schema, or bring a spool written by an earlier version up to this one, in one transaction
    (several processes open the same spool: whichever comes first upgrades it, the others then find it done)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        version = int(row[0]) if row else SCHEMA_VERSION
        if version > SCHEMA_VERSION:
            raise SpoolVersionError(
                f"{path} is a version {version} spool; this Shian reads up to version {SCHEMA_VERSION}. Upgrade Shian."
            )
        for start, move in _UPGRADES:
            if row is None or version > start:
                continue
            try:
                move(db)
            except sqlite3.Error as exc:
                raise SpoolVersionError(
                    f"{path}: upgrading this version {start} spool to version {start + 1} failed: {exc}"
                ) from exc
        for statement in _statements(SCHEMA):
            db.execute(statement)
        if row is None or version != SCHEMA_VERSION:
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def _records_v1_to_v2(db: sqlite3.Connection) -> None:
    """Version 1 kept the device's ts as RFC 3339 text, the topic and skew_s as columns; version 2 keeps the
    instant and its offset, no topic (the grammar rebuilds it from the ids), and computes skew_s. Record
    numbers (seq) and their AUTOINCREMENT high-water mark carry over, so consumers' checkpoints stay valid."""
    db.create_function("shian_epoch", 1, lambda text: dt.datetime.fromisoformat(text).timestamp(), deterministic=True)
    db.create_function(
        "shian_offset", 1, lambda text: utc_offset_s(dt.datetime.fromisoformat(text)), deterministic=True
    )
    db.execute("ALTER TABLE records RENAME TO records_v1")
    db.execute(RECORDS_TABLE)
    columns = "seq, device_id, msg_id, canteen_id, kind, channel, type, payload"
    db.execute(
        f"INSERT INTO records ({columns}, device_ts, device_utc_offset_s, received_at, skew_flagged)"
        f" SELECT {columns}, shian_epoch(device_ts), shian_offset(device_ts), received_at, skew_flagged"
        " FROM records_v1 ORDER BY seq"
    )
    # Renaming carried the high-water mark to 'records_v1'; give it back (pruned records' numbers stay unused).
    db.execute("DELETE FROM sqlite_sequence WHERE name = 'records'")
    db.execute("UPDATE sqlite_sequence SET name = 'records' WHERE name = 'records_v1'")
    db.execute("DROP TABLE records_v1")


def _statements(script: str) -> Iterator[str]:
    """The statements of an SQL script, one by one (``executescript`` would commit the transaction first)."""
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            yield statement
            statement = ""


def _v2_to_v3(db: sqlite3.Connection) -> None:
    """Version 3 tells a reused msg_id from a resend: ``seen`` keeps each key's content (its CRC-32),
    and ``records`` flags a record stored under a msg_id its device had used for other content. A consumer's
    reject can be replayed once its cause is fixed, and says when it was."""
    records, seen = _columns(db, "records"), _columns(db, "seen")  # empty: not there, the schema creates it
    if records and "msg_id_reused" not in records:
        db.execute("ALTER TABLE records ADD COLUMN msg_id_reused INTEGER NOT NULL DEFAULT 0")
    if seen and "content" not in seen:
        db.execute("ALTER TABLE seen ADD COLUMN content INTEGER")
    rejects = _columns(db, "consumer_rejects")
    if rejects and "replayed_at" not in rejects:
        db.execute("ALTER TABLE consumer_rejects ADD COLUMN replayed_at REAL")
        db.execute("ALTER TABLE consumer_rejects ADD COLUMN replay_note TEXT")


def _columns(db: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in db.execute(f"PRAGMA table_info({table})")}


#: (version, its upgrade to the next), oldest first; a spool runs every step from its own version on.
_UPGRADES: tuple[tuple[int, Callable[[sqlite3.Connection], None]], ...] = ((1, _records_v1_to_v2), (2, _v2_to_v3))
