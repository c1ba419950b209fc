"""A canteen's kitchen hours, and when parents see its cameras: the one place that says when a kitchen works.

By default a kitchen works on school days from ``lead`` before each meal's service until the service ends (the
rules file's ``kitchen_opens_before_meal``); a canteen may list its own hours instead (``kitchen_hours`` in the
registry). The rules judge silent cameras and lost pictures only in these hours, the bulletins count camera
minutes in them, and the parents' page shows the live kitchen in them unless the canteen chose other hours for
parents (``live_to_parents``: all day, or windows of its own, say without the staff's breaks).
"""

from __future__ import annotations

import datetime as dt

from devices.kitchen_fields import HoursWindow
from devices.registry import Canteen, Registry

Span = tuple[dt.datetime, dt.datetime]


def _merged(spans: list[Span]) -> list[Span]:
    merged: list[Span] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _windows_on(registry: Registry, canteen: Canteen, day: dt.date, windows: list[HoursWindow]) -> list[Span]:
    tz = registry.zone
    school = registry.is_school_day(canteen, day)
    return _merged(
        [
            (dt.datetime.combine(day, w.start, tz), dt.datetime.combine(day, w.end, tz))
            for w in windows
            if w.every_day or (school and day.isoweekday() in w.weekdays)
        ]
    )


def kitchen_windows(registry: Registry, canteen: Canteen, day: dt.date, lead: dt.timedelta) -> list[Span]:
    """The kitchen's working spans on ``day`` (aware, in the region's zone), overlapping ones merged."""
    if canteen.kitchen_hours is not None:
        return _windows_on(registry, canteen, day, canteen.kitchen_hours)
    if not registry.is_school_day(canteen, day):
        return []
    tz = registry.zone
    return _merged(
        [
            (dt.datetime.combine(day, meal.start, tz) - lead, dt.datetime.combine(day, meal.end, tz))
            for meal in canteen.meals
            if day.isoweekday() in meal.weekdays
        ]
    )


def live_windows(registry: Registry, canteen: Canteen, day: dt.date, lead: dt.timedelta) -> list[Span]:
    """When parents see the canteen's cameras on ``day``."""
    chosen = canteen.live_to_parents
    if chosen == "all_day":
        start = dt.datetime.combine(day, dt.time(), registry.zone)
        return [(start, start + dt.timedelta(days=1))]
    if chosen == "kitchen_hours":
        return kitchen_windows(registry, canteen, day, lead)
    return _windows_on(registry, canteen, day, chosen)


def _opened(spans: list[Span], at: dt.datetime) -> dt.datetime | None:
    return next((start for start, end in spans if start <= at < end), None)


def kitchen_opened(registry: Registry, canteen: Canteen, at: dt.datetime, lead: dt.timedelta) -> dt.datetime | None:
    """When the kitchen hours that ``at`` falls in began; None outside kitchen hours."""
    day = at.astimezone(registry.zone).date()
    return _opened(kitchen_windows(registry, canteen, day, lead), at)


def live_now(registry: Registry, canteen: Canteen, at: dt.datetime, lead: dt.timedelta) -> bool:
    """Whether parents see the canteen's cameras at ``at``."""
    day = at.astimezone(registry.zone).date()
    return _opened(live_windows(registry, canteen, day, lead), at) is not None
