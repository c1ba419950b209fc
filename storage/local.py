"""The embedded default store: the same measurements in a local SQLite file, when no InfluxDB is configured.

A point is keyed by measurement, series (its tags) and time, so writing a record again overwrites it, as in
InfluxDB. ``retention`` bounds its size; the queries behind ``shian query`` read it.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from runtime.sqlite import open_database
from storage.schema import FieldName, Measurement, StoragePoint, Tag, epoch_ns

#: The table of points (the console's query layer opens the same file for reading).
POINTS_SCHEMA = """
CREATE TABLE IF NOT EXISTS points (
    measurement TEXT NOT NULL,
    series TEXT NOT NULL,
    time_ns INTEGER NOT NULL,
    tags TEXT NOT NULL,
    fields TEXT NOT NULL,
    PRIMARY KEY (measurement, series, time_ns)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS points_by_time ON points (measurement, time_ns);
"""


class LocalStore:
    """The embedded time-series store (SQLite): points by measurement, tags and time, kept for ``retention``."""

    name = "local"

    def __init__(self, path: Path, *, retention: dt.timedelta = dt.timedelta(days=90)) -> None:
        self.path = path
        self.retention = retention
        self._db = open_database(path)
        self._lock = threading.Lock()
        self._db.executescript(POINTS_SCHEMA)

    def write(self, points: Sequence[StoragePoint]) -> None:
        rows = [
            (
                p.measurement.value,
                p.series_key(),
                p.time_ns,
                json.dumps(p.tags, ensure_ascii=False),
                json.dumps(p.fields, ensure_ascii=False),
            )
            for p in points
        ]
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR REPLACE INTO points VALUES (?, ?, ?, ?, ?)", rows)
            self._db.execute("COMMIT")

    def prune(self, now: dt.datetime) -> int:
        cutoff = int((now - self.retention).timestamp()) * 1_000_000_000
        with self._lock:
            return self._db.execute("DELETE FROM points WHERE time_ns < ?", (cutoff,)).rowcount

    def close(self) -> None:
        self._db.close()

    # --- queries ----------------------------------------------------------------------------------------------

    def count(self, measurement: Measurement) -> int:
        (n,) = self._db.execute("SELECT COUNT(*) FROM points WHERE measurement = ?", (measurement.value,)).fetchone()
        return int(n)

    def tests_on(self, day: dt.date, tz: ZoneInfo) -> list[TestsOfCanteen]:
        """Rapid tests per canteen on ``day`` (local time of the region): count, passes, pass rate."""
        start = dt.datetime.combine(day, dt.time(), tz)
        end = start + dt.timedelta(days=1)
        rows = self._db.execute(
            "SELECT json_extract(tags, '$.canteen'), json_extract(tags, '$.district'), COUNT(*),"
            f" SUM(json_extract(fields, '$.{FieldName.PASSED}')) FROM points"
            " WHERE measurement = ? AND time_ns >= ? AND time_ns < ? GROUP BY 1, 2 ORDER BY 1",
            (Measurement.RAPID_TEST.value, epoch_ns(start), epoch_ns(end)),
        ).fetchall()
        return [TestsOfCanteen(r[0], r[1], int(r[2]), int(r[3] or 0)) for r in rows]

    def latest_temperatures(self) -> list[LatestReading]:
        """The newest cabinet reading of every cabinet."""
        rows = self._db.execute(
            "SELECT json_extract(tags, '$.canteen'), json_extract(tags, '$.device'), MAX(time_ns),"
            f" json_extract(fields, '$.{FieldName.TEMP_C}'), json_extract(fields, '$.{FieldName.DOOR_OPEN}')"
            " FROM points WHERE measurement = ? GROUP BY series ORDER BY 1, 2",
            (Measurement.CABINET.value,),
        ).fetchall()
        return [LatestReading(r[0], r[1], _instant(r[2]), float(r[3]), bool(r[4])) for r in rows]

    def open_alerts(self) -> list[dict[str, object]]:
        """The latest point of every alert whose latest state is open (the alert measurement, see the rules)."""
        rows = self._db.execute(
            "SELECT tags, fields, MAX(time_ns) FROM points WHERE measurement = ?"
            " GROUP BY json_extract(fields, '$.alert_id')",
            (Measurement.ALERT.value,),
        ).fetchall()
        alerts = []
        for tags, fields, time_ns in rows:
            tag_map, field_map = json.loads(tags), json.loads(fields)
            if tag_map.get(Tag.STATE) == "open":
                alerts.append({**tag_map, **field_map, "time": _instant(time_ns).isoformat()})
        return alerts


@dataclass(frozen=True)
class TestsOfCanteen:
    __test__ = False  # not a pytest class

    canteen: str
    district: str
    tests: int
    passed: int

    @property
    def pass_rate(self) -> float:
        return self.passed / self.tests if self.tests else 0.0


@dataclass(frozen=True)
class LatestReading:
    canteen: str
    device: str
    at: dt.datetime
    temp_c: float
    door_open: bool


def _instant(ns: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC)
