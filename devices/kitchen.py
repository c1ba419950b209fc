"""A canteen's kitchen hours, and when parents see its cameras: the one place that says when a kitchen works.

By default a kitchen works on school days from ``lead`` before each meal's service until the service ends (the
rules file's ``kitchen_opens_before_meal``); a canteen may list its own hours instead (``kitchen_hours`` in the
registry). The rules judge silent cameras and lost pictures only in these hours, the bulletins count camera
minutes in them, and the parents' page shows the live kitchen in them unless the canteen chose other hours for
parents (``live_to_parents``: all day, or windows of its own, say without the staff's breaks).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

if TYPE_CHECKING:
    from devices.registry import Canteen, Registry

Weekday = Annotated[int, Field(ge=1, le=7)]  # ISO weekday: 1 is Monday
Span = tuple[dt.datetime, dt.datetime]


class HoursWindow(BaseModel):
    """A daily span of local time, on the listed weekdays (school days only unless ``every_day``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: dt.time
    end: dt.time
    weekdays: list[Weekday] = Field(default_factory=lambda: [1, 2, 3, 4, 5])
    #: Also on holidays and weekends (a caterer that cooks every day).
    every_day: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> HoursWindow:
        if self.end <= self.start:
            raise ValueError(f"the window ends ({self.end}) before it starts ({self.start})")
        return self


#: Parents see the picture in the kitchen's hours (the default), all day, or in windows of the canteen's own.
ParentsLive = Literal["kitchen_hours", "all_day"] | list[HoursWindow]


class PulledStream(BaseModel):
    """A camera or NVR that only serves its stream: the platform pulls it and relays it to the media server."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: rtsp://, rtmp:// or http(s):// (an HLS playlist). Never shown on any page.
    pull: Annotated[str, Field(pattern=r"^(rtsps?|rtmps?|https?)://", max_length=512)]


#: A camera's picture: none (the default: health messages only), pushed by the camera over RTMP with its stream
#: key, or pulled by the platform from the address given.
CameraVideo = Literal["none", "push"] | PulledStream


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
