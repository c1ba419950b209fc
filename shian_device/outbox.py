"""The device's durable outbox (SQLite): every record is written here, with the msg_id counter, before it is
sent, and stays until its receipt comes — through a reconnect, a broker restart or a crash of the device."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

_SCHEMA = """
CREATE TABLE IF NOT EXISTS counter (id INTEGER PRIMARY KEY CHECK (id = 1), value INTEGER NOT NULL);
INSERT OR IGNORE INTO counter VALUES (1, 0);
CREATE TABLE IF NOT EXISTS pending (
    msg_id TEXT PRIMARY KEY,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,     -- the bytes first sent: a resend is byte for byte the same
    created REAL NOT NULL,
    sent REAL                  -- when last sent (NULL: not yet)
);
"""


class Pending(NamedTuple):
    msg_id: str
    topic: str
    payload: bytes


class Outbox:
    """Records waiting for their receipts, and the counter their msg_ids are made from. Each record and the
    counter's step are committed together (synchronous=FULL), so a msg_id is never given twice, not even after
    a power cut, and a record the device was told was kept is never lost."""

    def __init__(self, path: Path, device_id: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.device_id = device_id
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    @property
    def made(self) -> int:
        """How many records this device has made in its life (the counter)."""
        (value,) = self._db.execute("SELECT value FROM counter").fetchone()
        return int(value)

    def add(self, topic: str, make: Callable[[str], bytes]) -> Pending:
        """A new record: its msg_id (``{device}-{counter}``), its bytes from ``make(msg_id)``, kept durably."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            msg_id = self._next_id()
            payload = make(msg_id)
            self._db.execute(
                "INSERT INTO pending (msg_id, topic, payload, created) VALUES (?, ?, ?, ?)",
                (msg_id, topic, payload, time.time()),
            )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return Pending(msg_id, topic, payload)

    def next_telemetry_id(self) -> str:
        """A msg_id for a reading that is not kept (telemetry), from the same counter as the records'."""
        return self._next_id()

    def _next_id(self) -> str:
        (value,) = self._db.execute("UPDATE counter SET value = value + 1 RETURNING value").fetchone()
        return f"{self.device_id}-{value:010d}"

    def sent(self, msg_id: str) -> None:
        self._db.execute("UPDATE pending SET sent = ? WHERE msg_id = ?", (time.time(), msg_id))

    def done(self, msg_id: str) -> bool:
        """Forget a record (its receipt came); False when it was not waiting."""
        return self._db.execute("DELETE FROM pending WHERE msg_id = ?", (msg_id,)).rowcount > 0

    def due(self, unanswered_for_s: float) -> list[Pending]:
        """Records never sent, or sent longer ago than ``unanswered_for_s`` without a receipt, oldest first."""
        rows = self._db.execute(
            "SELECT msg_id, topic, payload FROM pending WHERE sent IS NULL OR sent <= ? ORDER BY created",
            (time.time() - unanswered_for_s,),
        )
        return [Pending(str(m), str(t), bytes(p)) for m, t, p in rows]

    def waiting(self) -> int:
        (count,) = self._db.execute("SELECT COUNT(*) FROM pending").fetchone()
        return int(count)
