"""Offline inspections (线下突击检查): the weekly plan and the inspectors' records.

The plan is a risk-weighted random choice of canteens for surprise visits. Each canteen's weight is 1 plus what
the platform knows against it (``RISK``): open alerts, failed tests, sample-retention and camera-silence alerts
of the last 30 days, and the time since its last inspection. The choice is weighted sampling without
replacement (Efraimidis and Spirakis: each canteen draws ``u ** (1 / weight)``, the largest keys win), from a
generator seeded with HMAC-SHA256(the platform's secret, the week): the same week gives the same plan, another
week another; schools never see the secret, so they cannot compute their week.

An inspection record (inspector, time, findings, photos as links, a rectification deadline) is kept in the rules
store's file; ``inspection.rectification_overdue`` is raised for one whose deadline passed unrectified.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import random
import re
import secrets
import sqlite3
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field, HttpUrl

from devices.registry import Registry
from rules.alerts import Alert, AlertQuery
from runtime.errors import ShianError
from runtime.sqlite import open_database


class AlertSearch(Protocol):
    """What the plan reads of the alerts (``rules.store.RulesStore`` is one)."""

    def search(self, query: AlertQuery, *, limit: int = ..., offset: int = ...) -> tuple[list[Alert], int]: ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS inspections (
    inspection_id TEXT PRIMARY KEY,
    canteen_id TEXT NOT NULL,
    visited_ts REAL NOT NULL,
    rectify_by TEXT,
    rectified_ts REAL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS inspections_by_canteen ON inspections (canteen_id, visited_ts);
-- what the rectification rule reads on every tick: only the unrectified with a deadline
CREATE INDEX IF NOT EXISTS inspections_unrectified ON inspections (rectify_by) WHERE rectified_ts IS NULL;
CREATE TABLE IF NOT EXISTS inspection_secret (id INTEGER PRIMARY KEY CHECK (id = 1), secret BLOB NOT NULL);
"""

#: What counts against a canteen in the plan's weight, per item (base weight 1).
RISK: dict[str, float] = {
    "open_critical": 2.0,  # each alert still open
    "open_warning": 0.5,
    "test_failed": 3.0,  # each in the last 30 days
    "sample": 1.0,  # sample.missing / underweight / early_disposal in the last 30 days
    "camera_silence": 1.0,  # a camera (or the whole canteen) offline in kitchen hours, last 30 days
    "violation": 0.5,  # a camera violation not judged a false positive, last 30 days
    "weeks_uninspected": 0.25,  # per week since the last visit, at most 12 weeks (never visited: 12)
}
LOOKBACK = dt.timedelta(days=30)
MAX_WEEKS_UNINSPECTED = 12
_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")


class InspectionError(ShianError, ValueError):
    """A week, a record or a change the inspection book cannot take."""


class Inspection(BaseModel):
    inspection_id: str
    canteen_id: str
    inspector: str = Field(min_length=1, max_length=100)
    visited_at: dt.datetime
    findings: str = Field(max_length=4000)
    photos: list[HttpUrl] = Field(default_factory=list, max_length=50)
    #: The day by which what was found must be put right (None: nothing to rectify).
    rectify_by: dt.date | None = None
    rectified_at: dt.datetime | None = None
    rectified_by: str | None = None
    #: The plan's week the visit was drawn in, e.g. 2026-W49 (None: a visit outside the plan).
    week: str | None = None
    recorded_by: str
    recorded_at: dt.datetime


def iso_week(day: dt.date) -> str:
    """The ISO week ``day`` falls in, written as plans name it: 2026-W49."""
    year, number, _ = day.isocalendar()
    return f"{year}-W{number:02d}"


def week_start(week: str) -> dt.date:
    """Monday of an ISO week written 2026-W49."""
    match = _WEEK.match(week)
    if not match:
        raise InspectionError(f"{week!r} is not an ISO week like 2026-W49")
    try:
        return dt.date.fromisocalendar(int(match[1]), int(match[2]), 1)
    except ValueError:
        raise InspectionError(f"{week!r}: {match[1]} has no week {match[2]}") from None


class InspectionBook:
    """The inspection records and the plan's secret, in the rules store's file: on its own connection (a command,
    a test), or on the store's (:meth:`on`; ``RulesStore.inspections``, the platform's one owner of the file)."""

    def __init__(self, path: Path) -> None:
        self._db = open_database(path)
        self._db.executescript(_SCHEMA)

    @classmethod
    def on(cls, db: sqlite3.Connection) -> InspectionBook:
        """The book on a connection someone else owns (and closes)."""
        book = cls.__new__(cls)
        book._db = db
        db.executescript(_SCHEMA)
        return book

    def close(self) -> None:
        self._db.close()

    def secret(self) -> bytes:
        """The plan's secret: made once per platform, kept in the store, never shown."""
        row = self._db.execute("SELECT secret FROM inspection_secret WHERE id = 1").fetchone()
        if row is not None:
            return bytes(row[0])
        self._db.execute("INSERT OR IGNORE INTO inspection_secret VALUES (1, ?)", (secrets.token_bytes(32),))
        self._db.commit()
        return self.secret()

    def record(
        self,
        registry: Registry,
        canteen_id: str,
        *,
        inspector: str,
        visited_at: dt.datetime,
        findings: str,
        photos: Iterable[str] = (),
        rectify_by: dt.date | None = None,
        week: str | None = None,
        by: str,
        at: dt.datetime,
    ) -> Inspection:
        if registry.canteen(canteen_id) is None:
            raise InspectionError(f"no canteen {canteen_id!r} in the registry")
        if week is not None:
            week_start(week)
        if rectify_by is not None and rectify_by < visited_at.date():
            raise InspectionError(f"the rectification deadline {rectify_by} is before the visit")
        inspection = Inspection(
            inspection_id=uuid.uuid4().hex[:12],
            canteen_id=canteen_id,
            inspector=inspector,
            visited_at=visited_at,
            findings=findings,
            photos=list(photos),  # validated into URLs here
            rectify_by=rectify_by,
            week=week,
            recorded_by=by,
            recorded_at=at,
        )
        self._db.execute(
            "INSERT INTO inspections VALUES (?, ?, ?, ?, NULL, ?)",
            (
                inspection.inspection_id,
                canteen_id,
                visited_at.timestamp(),
                rectify_by.isoformat() if rectify_by else None,
                inspection.model_dump_json(),
            ),
        )
        self._db.commit()
        return inspection

    def get(self, inspection_id: str) -> Inspection | None:
        row = self._db.execute("SELECT body FROM inspections WHERE inspection_id = ?", (inspection_id,)).fetchone()
        return Inspection.model_validate_json(row[0]) if row else None

    def rectified(self, inspection_id: str, *, by: str, at: dt.datetime) -> Inspection:
        inspection = self.get(inspection_id)
        if inspection is None:
            raise InspectionError(f"no inspection {inspection_id!r}")
        if inspection.rectify_by is None:
            raise InspectionError(f"inspection {inspection_id} asked for no rectification")
        if inspection.rectified_at is not None:
            raise InspectionError(f"inspection {inspection_id} was rectified at {inspection.rectified_at}")
        done = inspection.model_copy(update={"rectified_at": at, "rectified_by": by})
        self._db.execute(
            "UPDATE inspections SET rectified_ts = ?, body = ? WHERE inspection_id = ?",
            (at.timestamp(), done.model_dump_json(), inspection_id),
        )
        self._db.commit()
        return done

    def between(self, start: dt.datetime, end: dt.datetime, canteens: frozenset[str] | None = None) -> list[Inspection]:
        rows = self._db.execute(
            "SELECT body FROM inspections WHERE visited_ts >= ? AND visited_ts < ? ORDER BY visited_ts",
            (start.timestamp(), end.timestamp()),
        )
        found = [Inspection.model_validate_json(body) for (body,) in rows]
        return [i for i in found if canteens is None or i.canteen_id in canteens]

    def last_visits(self, before: dt.datetime | None = None) -> dict[str, dt.datetime]:
        """Each canteen's latest visit (before ``before`` if given)."""
        cutoff = before.timestamp() if before is not None else float("inf")
        rows = self._db.execute(
            "SELECT canteen_id, MAX(visited_ts) FROM inspections WHERE visited_ts < ? GROUP BY canteen_id", (cutoff,)
        )
        return {canteen: dt.datetime.fromtimestamp(ts, dt.UTC) for canteen, ts in rows}

    def overdue(self, today: dt.date) -> list[Inspection]:
        """Unrectified inspections whose deadline is before ``today``."""
        rows = self._db.execute(
            "SELECT body FROM inspections WHERE rectified_ts IS NULL AND rectify_by < ? ORDER BY rectify_by",
            (today.isoformat(),),
        )
        return [Inspection.model_validate_json(body) for (body,) in rows]


# --- the plan -------------------------------------------------------------------------------------------------


@dataclass
class Risk:
    canteen_id: str
    #: What counted, item -> how many (RISK says how much each weighs).
    counts: Counter[str] = field(default_factory=Counter)

    @property
    def weight(self) -> float:
        return 1.0 + sum(RISK[item] * n for item, n in self.counts.items())


def risks(
    registry: Registry,
    alerts: AlertSearch,
    last_visits: dict[str, dt.datetime],
    now: dt.datetime,
    canteens: frozenset[str] | None = None,
) -> dict[str, Risk]:
    """Each school canteen's risk (in ``canteens`` if given) as it stood at ``now``, from the rules store's alerts
    and the visits: alerts opened in the 30 days before it, alerts open at it, a camera violation's review only
    if it was given by then. Nothing after ``now`` counts, so a plan drawn later is the same plan."""
    chosen = [c for c in registry.canteens if c.type != "supplier" and (canteens is None or c.id in canteens)]
    found = {c.id: Risk(c.id) for c in chosen}
    scope = frozenset(found)
    recent, _ = alerts.search(AlertQuery(canteens=scope, opened_from=now - LOOKBACK, opened_to=now), limit=1_000_000)
    active, _ = alerts.search(AlertQuery(canteens=scope, open_at=now), limit=1_000_000)
    for alert in active:
        found[alert.canteen_id].counts["open_critical" if alert.severity == "critical" else "open_warning"] += 1
    for alert in recent:
        known = alert.resolved_at is not None and alert.resolved_at <= now
        item = _risk_item(registry, alert.rule, alert.device_id, alert.review if known else None)
        if item is not None:
            found[alert.canteen_id].counts[item] += 1
    for canteen_id, risk in found.items():
        visited = last_visits.get(canteen_id)
        weeks = MAX_WEEKS_UNINSPECTED if visited is None else (now - visited).days // 7
        risk.counts["weeks_uninspected"] = min(weeks, MAX_WEEKS_UNINSPECTED)
    return found


def _risk_item(registry: Registry, rule: str, device_id: str | None, review: str | None) -> str | None:
    if rule == "test.failed":
        return "test_failed"
    if rule.startswith("sample."):
        return "sample"
    if rule == "canteen.offline":
        return "camera_silence"
    if rule == "device.offline" and device_id is not None:
        assignment = registry.assignment(device_id)
        return "camera_silence" if assignment and assignment.device.kind == "camera" else None
    if rule == "camera.violation" and review != "false_positive":
        return "violation"
    return None


def plan(weights: dict[str, float], secret: bytes, week: str, count: int) -> list[str]:
    """``count`` canteens for ``week``'s surprise visits, drawn by weight without replacement; the same
    secret and week give the same plan. Ordered as drawn (the riskiest draw first)."""
    week_start(week)
    seed = hmac.new(secret, week.encode(), hashlib.sha256).digest()
    rng = random.Random(seed)
    keys = {canteen: rng.random() ** (1.0 / weight) for canteen, weight in sorted(weights.items())}
    return sorted(keys, key=lambda canteen: keys[canteen], reverse=True)[:count]


def weekly_plan(
    registry: Registry,
    alerts: AlertSearch,
    book: InspectionBook,
    *,
    week: str,
    count: int,
    canteens: frozenset[str] | None = None,
) -> tuple[list[str], dict[str, Risk]]:
    """``week``'s surprise visits: ``count`` canteens (of ``canteens`` if given) drawn by their risk as it stood
    when the week began (Monday 00:00 in the registry's zone: the plan does not move with whatever happens
    during the week), from the platform's secret; and every candidate's risk."""
    monday = dt.datetime.combine(week_start(week), dt.time(), ZoneInfo(registry.timezone))
    found = risks(registry, alerts, book.last_visits(before=monday), monday, canteens)
    return plan({c: r.weight for c, r in found.items()}, book.secret(), week, count), found


#: Each risk item in words, (zh, en), with its count.
REASONS: dict[str, tuple[str, str]] = {
    "test_failed": ("近 30 天快检不合格 {n} 次", "{n} failed tests in the last 30 days"),
    "open_critical": ("周一时未处置的严重告警 {n} 条", "{n} critical alerts open on Monday"),
    "open_warning": ("周一时未处置的一般告警 {n} 条", "{n} warnings open on Monday"),
    "sample": ("近 30 天留样问题 {n} 次", "{n} sample problems in the last 30 days"),
    "camera_silence": ("近 30 天厨房时段摄像头离线 {n} 次", "{n} camera outages in kitchen hours, last 30 days"),
    "violation": ("近 30 天 AI 识别违规 {n} 次", "{n} camera violations in the last 30 days"),
    "weeks_uninspected": ("已 {n} 周未检查", "not inspected for {n} weeks"),
}


def describe(risk: Risk, language: str = "zh") -> str:
    """Why a canteen weighs what it weighs, in words (for inspectors and operators, never schools)."""
    index = 0 if language == "zh" else 1
    parts = [REASONS[k][index].format(n=n) for k, n in sorted(risk.counts.items(), key=lambda kv: -RISK[kv[0]]) if n]
    return ("；" if index == 0 else "; ").join(parts) or ("无风险记录" if index == 0 else "nothing against it")
