"""The digests made and where each has been delivered, in the console's file: exactly once per canteen and
day across restarts — a digest is written before it is sent, and each channel's delivery is marked when it
succeeds, so a restart sends what is still due and nothing twice."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from console.digest.compose import DailyDigest
from runtime.sqlite import open_database

_SCHEMA = """
CREATE TABLE IF NOT EXISTS digests (
    canteen_id TEXT NOT NULL,
    day TEXT NOT NULL,
    version INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (canteen_id, day, version)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS digest_deliveries (
    canteen_id TEXT NOT NULL,
    day TEXT NOT NULL,
    version INTEGER NOT NULL,
    channel TEXT NOT NULL,           -- mqtt, or the index and format of one of the canteen's parent_channels
    delivered_at TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    last_error TEXT,
    PRIMARY KEY (canteen_id, day, version, channel)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS digest_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True)
class Delivery:
    canteen_id: str
    day: dt.date
    version: int
    channel: str
    attempts: int


class DigestOutbox:
    def __init__(self, path: Path) -> None:
        self._db = open_database(path)
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def since(self, now: dt.datetime) -> dt.datetime:
        """When digests began here: no day before it gets one (a new installation sends no yesterday)."""
        row = self._db.execute("SELECT value FROM digest_meta WHERE key = 'since'").fetchone()
        if row:
            return dt.datetime.fromisoformat(row[0])
        self._db.execute("INSERT INTO digest_meta VALUES ('since', ?)", (now.isoformat(),))
        return now

    def latest(self, canteen_id: str, day: dt.date) -> DailyDigest | None:
        row = self._db.execute(
            "SELECT body FROM digests WHERE canteen_id = ? AND day = ? ORDER BY version DESC LIMIT 1",
            (canteen_id, day.isoformat()),
        ).fetchone()
        return DailyDigest.model_validate_json(row[0]) if row else None

    def version(self, canteen_id: str, day: dt.date, version: int) -> DailyDigest | None:
        row = self._db.execute(
            "SELECT body FROM digests WHERE canteen_id = ? AND day = ? AND version = ?",
            (canteen_id, day.isoformat(), version),
        ).fetchone()
        return DailyDigest.model_validate_json(row[0]) if row else None

    def recent_days(self, canteen_id: str, limit: int = 14) -> list[dt.date]:
        rows = self._db.execute(
            "SELECT DISTINCT day FROM digests WHERE canteen_id = ? ORDER BY day DESC LIMIT ?", (canteen_id, limit)
        ).fetchall()
        return [dt.date.fromisoformat(r[0]) for r in rows]

    def add(self, digest: DailyDigest, channels: list[str]) -> bool:
        """Keep a new digest (or correction) and owe it to each channel, in one transaction. False when that
        version exists already (another process made it first): nothing is owed twice."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            inserted = self._db.execute(
                "INSERT OR IGNORE INTO digests VALUES (?, ?, ?, ?)",
                (digest.canteen_id, digest.date.isoformat(), digest.version, digest.model_dump_json()),
            ).rowcount
            if inserted:
                self._db.executemany(
                    "INSERT INTO digest_deliveries (canteen_id, day, version, channel, next_attempt_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    [
                        (digest.canteen_id, digest.date.isoformat(), digest.version, c, _utc(digest.published_at))
                        for c in channels
                    ],
                )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return bool(inserted)

    def due(self, now: dt.datetime) -> list[Delivery]:
        rows = self._db.execute(
            "SELECT canteen_id, day, version, channel, attempts FROM digest_deliveries"
            " WHERE delivered_at IS NULL AND next_attempt_at <= ? ORDER BY day, canteen_id, version",
            (_utc(now),),
        ).fetchall()
        return [Delivery(r[0], dt.date.fromisoformat(r[1]), int(r[2]), r[3], int(r[4])) for r in rows]

    def delivered(self, delivery: Delivery, at: dt.datetime) -> None:
        self._db.execute(
            "UPDATE digest_deliveries SET delivered_at = ?, attempts = attempts + 1"
            " WHERE canteen_id = ? AND day = ? AND version = ? AND channel = ?",
            (at.isoformat(), delivery.canteen_id, delivery.day.isoformat(), delivery.version, delivery.channel),
        )

    def failed(self, delivery: Delivery, error: str, retry_at: dt.datetime) -> None:
        self._db.execute(
            "UPDATE digest_deliveries SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?"
            " WHERE canteen_id = ? AND day = ? AND version = ? AND channel = ?",
            (
                error[:500],
                _utc(retry_at),
                delivery.canteen_id,
                delivery.day.isoformat(),
                delivery.version,
                delivery.channel,
            ),
        )

    def delivery_counts(self) -> dict[str, int]:
        """Delivered and owed deliveries, for the tests and the logs."""
        (done,) = self._db.execute("SELECT COUNT(*) FROM digest_deliveries WHERE delivered_at IS NOT NULL").fetchone()
        (owed,) = self._db.execute("SELECT COUNT(*) FROM digest_deliveries WHERE delivered_at IS NULL").fetchone()
        return {"delivered": int(done), "owed": int(owed)}


def _utc(instant: dt.datetime) -> str:
    """Times compared as text are all written in UTC, so that text order is time order."""
    return instant.astimezone(dt.UTC).isoformat()
