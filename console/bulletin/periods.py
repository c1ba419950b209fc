"""What a bulletin covers: a calendar month (2026-11) or an ISO week (2026-W48) in the registry's zone."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from console.days import check_day
from rules.inspections import InspectionError, iso_week, week_start

_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
KINDS = ("monthly", "weekly")


@dataclass(frozen=True)
class Period:
    """``kind`` monthly or weekly, named ``label``, from ``first`` to ``last`` (whole days) in ``tz``."""

    kind: str
    label: str
    first: dt.date
    last: dt.date
    tz: ZoneInfo

    @property
    def start(self) -> dt.datetime:
        return dt.datetime.combine(self.first, dt.time(), self.tz)

    @property
    def end(self) -> dt.datetime:
        return dt.datetime.combine(self.last + dt.timedelta(days=1), dt.time(), self.tz)

    def days(self) -> list[dt.date]:
        return [self.first + dt.timedelta(days=n) for n in range((self.last - self.first).days + 1)]


def month_period(month: str, tz: ZoneInfo) -> Period:
    """The month written YYYY-MM; ValueError naming the text otherwise."""
    if not _MONTH.match(month):
        raise ValueError(f"{month!r} is not a month like 2026-11")
    first = check_day(dt.date.fromisoformat(f"{month}-01"))
    after = (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return Period("monthly", month, first, after - dt.timedelta(days=1), tz)


def week_period(week: str, tz: ZoneInfo) -> Period:
    """The ISO week written 2026-W48; ValueError naming the text otherwise."""
    try:
        monday = check_day(week_start(week))
    except InspectionError as exc:
        raise ValueError(str(exc)) from None
    return Period("weekly", week, monday, monday + dt.timedelta(days=6), tz)


def period_of(kind: str, label: str, tz: ZoneInfo) -> Period:
    if kind == "monthly":
        return month_period(label, tz)
    if kind == "weekly":
        return week_period(label, tz)
    raise ValueError(f"no {kind!r} bulletin: {' or '.join(KINDS)}")


def last_label(kind: str, today: dt.date) -> str:
    """The last whole period before ``today``: last month, or last week."""
    if kind == "monthly":
        return (today.replace(day=1) - dt.timedelta(days=1)).strftime("%Y-%m")
    return iso_week(today - dt.timedelta(days=7))
