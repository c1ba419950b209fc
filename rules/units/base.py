"""What every rule unit shares: the record it is shown, the context it reads, and the unit's own interface."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo

from devices.messages import DeviceMessage, DeviceStatus
from devices.registry import Canteen, MealSchedule, Registry
from rules.config import RulesConfig
from rules.effects import Effect
from rules.inspections import Inspection
from rules.state import Table
from spool import SpoolRecord


@dataclass(frozen=True, slots=True)
class Observation:
    """One stored record with its typed message, as every unit sees it."""

    record: SpoolRecord
    message: DeviceMessage

    @property
    def evidence(self) -> dict[str, Any]:
        """What every alert raised from this record cites: the record's identity (its device and msg_id; status
        messages have none) and its place in the spool."""
        msg_id = None if isinstance(self.message, DeviceStatus) else self.record.msg_id
        return {"device": self.record.device_id, "msg_id": msg_id, "seq": self.record.seq}


#: A camera's picture as the media server reports it: (publishing, since when); None when it is not watched.
Pictures = Callable[[str], "tuple[bool, dt.datetime] | None"]


@dataclass(frozen=True)
class RuleContext:
    """The registry, the thresholds and the local time zone: read by every unit, changed by none."""

    registry: Registry
    config: RulesConfig
    #: The dishes a canteen put on one meal's menu for one day (entered in the console), or None.
    menu: Callable[[str, dt.date, str], list[str] | None] = lambda canteen, day, meal: None
    #: Inspections whose rectification deadline is before that day and not yet rectified.
    overdue: Callable[[dt.date], list[Inspection]] = lambda today: []
    #: Each camera's picture (None for every camera when video is off: camera.video_lost is then never raised).
    picture: Pictures = lambda camera: None

    def dishes(self, canteen: Canteen, day: dt.date, meal: MealSchedule) -> list[str]:
        """What a meal serves on ``day``: that day's menu when the canteen entered one, else its fixed dishes."""
        menu = self.menu(canteen.id, day, meal.meal)
        return menu if menu is not None else list(meal.dishes)

    @cached_property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.registry.timezone)

    def local_date(self, instant: dt.datetime) -> dt.date:
        return instant.astimezone(self.tz).date()

    def at_local(self, day: dt.date, time: dt.time) -> dt.datetime:
        return dt.datetime.combine(day, time, self.tz)

    def days(self, now: dt.datetime, since: dt.datetime) -> list[dt.date]:
        """Today and yesterday (local), never before the engine started watching: the days whose deadlines a
        timer still has to check."""
        today, first = self.local_date(now), self.local_date(since)
        return [day for day in (today - dt.timedelta(days=1), today) if day >= first]

    def school_day(self, canteen: Canteen, day: dt.date) -> bool:
        return self.registry.is_school_day(canteen, day)


class RuleUnit:
    """One family of rules. A unit keeps its state in :class:`Table` attributes and answers with effects: it
    never touches the alert store itself, so the engine core can apply everything in one transaction."""

    def __init__(self, context: RuleContext) -> None:
        self.context = context
        self.config = context.config

    def tables(self) -> list[Table[Any]]:
        return [value for value in vars(self).values() if isinstance(value, Table)]

    def on_record(self, seen: Observation) -> Iterable[Effect]:
        """Effects of one record, in spool order. Most units look at a few message types only."""
        return ()

    def on_tick(self, now: dt.datetime, since: dt.datetime) -> Iterable[Effect]:
        """Effects of time passing: deadlines, durations, silence. ``since``: when the engine began watching."""
        return ()
