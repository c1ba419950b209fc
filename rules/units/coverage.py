"""Test coverage: a canteen that tests (tier ``lab`` or ``strips``) with no rapid test by the coverage deadline
of a school day."""

from __future__ import annotations

import datetime as dt

from devices.messages import TestResult
from devices.registry import Canteen
from rules.effects import Effect, Raise
from rules.state import Table
from rules.units.base import Observation, RuleContext, RuleUnit


class CoverageUnit(RuleUnit):
    """``test.coverage_missing``."""

    def __init__(self, context: RuleContext) -> None:
        super().__init__(context)
        #: canteen -> the last local day it tested on
        self.tested_on = Table[dt.date]("tested_on", dt.date)
        #: "canteen|date" whose coverage deadline has been checked
        self.coverage_checked = Table[bool]("coverage_checked", bool)

    def on_record(self, seen: Observation) -> list[Effect]:
        if isinstance(seen.message, TestResult):
            self.tested_on.put(seen.record.canteen_id, self.context.local_date(seen.message.ts))
        return []

    def on_tick(self, now: dt.datetime, since: dt.datetime) -> list[Effect]:
        effects: list[Effect] = []
        for canteen in self.context.registry.canteens:
            effects += self._coverage(canteen, now, since)
        return effects

    def _coverage(self, canteen: Canteen, now: dt.datetime, since: dt.datetime) -> list[Effect]:
        if canteen.testing_tier == "none":
            return []
        effects: list[Effect] = []
        deadline_time = self.config.coverage_deadline
        for day in self.context.days(now, since):
            deadline = self.context.at_local(day, deadline_time)
            key = f"{canteen.id}|{day.isoformat()}"
            if now < deadline or deadline < since or key in self.coverage_checked:
                continue
            self.coverage_checked.put(key, True)
            if self.context.school_day(canteen, day) and self.tested_on.get(canteen.id) != day:
                effects.append(
                    Raise(
                        "test.coverage_missing",
                        "warning",
                        key,
                        canteen.id,
                        now,
                        {"date": day.isoformat()},
                        subject=day.isoformat(),
                        params={"date": day.isoformat(), "deadline": deadline_time.strftime("%H:%M")},
                    )
                )
        return effects
