"""``inspection.rectification_overdue``: what an inspector found must be put right by its deadline; the day
after an unrectified deadline the canteen and its supervisors are told, until it is recorded as rectified."""

from __future__ import annotations

import datetime as dt

from rules.effects import Effect, Raise, Resolve
from rules.state import Table
from rules.units.base import RuleContext, RuleUnit


class InspectionsUnit(RuleUnit):
    def __init__(self, context: RuleContext) -> None:
        super().__init__(context)
        #: inspection id -> its canteen, while its alert is open
        self.overdue = Table[str]("rectification_overdue", str)

    def on_tick(self, now: dt.datetime, since: dt.datetime) -> list[Effect]:
        due = {i.inspection_id: i for i in self.context.overdue(self.context.local_date(now))}
        effects: list[Effect] = []
        for inspection_id, inspection in due.items():
            if inspection_id in self.overdue:
                continue
            self.overdue.put(inspection_id, inspection.canteen_id)
            visited = inspection.visited_at.astimezone(self.context.tz)
            evidence = {
                "inspection_id": inspection_id,
                "inspector": inspection.inspector,
                "visited_at": visited.isoformat(),
                "rectify_by": str(inspection.rectify_by),
            }
            params = {
                "date": f"{visited:%m-%d}",
                "rectify_by": str(inspection.rectify_by),
                "findings": inspection.findings[:80],
            }
            effects.append(
                Raise(
                    "inspection.rectification_overdue",
                    "warning",
                    inspection_id,
                    inspection.canteen_id,
                    now,
                    evidence,
                    subject=inspection_id,
                    params=params,
                )
            )
        for inspection_id, _ in self.overdue.items():
            if inspection_id not in due:
                self.overdue.drop(inspection_id)
                effects.append(Resolve("inspection.rectification_overdue", inspection_id, "rectified", now))
        return effects
