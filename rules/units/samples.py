"""Food-sample retention: every dish of a meal kept by the meal's deadline, each at least the minimum weight,
and none disposed of before the minimum holding time."""

from __future__ import annotations

import datetime as dt

import structlog

from devices.messages import SampleDisposed, SampleRetained
from devices.registry import Canteen
from rules.effects import Effect, Raise
from rules.state import Table, iso
from rules.units.base import Observation, RuleContext, RuleUnit

log = structlog.get_logger("shian.rules")


class SamplesUnit(RuleUnit):
    """``sample.*``: missing, underweight and early-disposed samples."""

    def __init__(self, context: RuleContext) -> None:
        super().__init__(context)
        #: "canteen|meal date|meal" -> the sample ids kept for it
        self.samples = Table[list[str]]("samples", list[str])
        #: sample id -> when it was retained (until it is disposed of)
        self.retained_at = Table[dt.datetime]("retained_at", dt.datetime)
        #: sample id -> its dish, to name it when it is disposed of (until then)
        self.dish_of = Table[str]("retained_dish", str)
        #: "canteen|date|meal" whose deadline has been checked
        self.samples_checked = Table[bool]("samples_checked", bool)

    def on_record(self, seen: Observation) -> list[Effect]:
        if isinstance(seen.message, SampleRetained):
            return self._retained(seen, seen.message)
        if isinstance(seen.message, SampleDisposed):
            return self._disposed(seen, seen.message)
        return []

    def _retained(self, seen: Observation, sample: SampleRetained) -> list[Effect]:
        canteen = seen.record.canteen_id
        key = f"{canteen}|{sample.meal_date.isoformat()}|{sample.meal}"
        self.samples.put(key, sorted({*(self.samples.get(key) or []), sample.sample_id}))
        self.retained_at.put(sample.sample_id, sample.ts)
        self.dish_of.put(sample.sample_id, sample.dish_name)
        minimum = self.config.sample_min_weight_g
        if sample.weight_g >= minimum:
            return []
        return [
            Raise(
                "sample.underweight",
                "warning",
                sample.sample_id,
                canteen,
                sample.ts,
                {**seen.evidence, "dish_name": sample.dish_name, "slot": sample.slot, "weight_g": sample.weight_g},
                device=seen.record.device_id,
                subject=sample.sample_id,
                params={
                    "sample_id": sample.sample_id,
                    "slot": sample.slot,
                    "dish_name": sample.dish_name,
                    "weight_g": sample.weight_g,
                    "minimum": minimum,
                },
            )
        ]

    def _disposed(self, seen: Observation, sample: SampleDisposed) -> list[Effect]:
        retained = self.retained_at.get(sample.sample_id)
        if retained is None:
            # retained before the engine watched, or never: nothing to hold it against
            log.info("rules.disposal_of_unknown_sample", sample_id=sample.sample_id, device=seen.record.device_id)
            return []
        self.retained_at.drop(sample.sample_id)
        dish = self.dish_of.get(sample.sample_id) or sample.sample_id
        self.dish_of.drop(sample.sample_id)
        held, minimum = sample.ts - retained, self.config.sample_min_hold
        if held >= minimum:
            return []
        return [
            Raise(
                "sample.early_disposal",
                "critical",
                sample.sample_id,
                seen.record.canteen_id,
                sample.ts,
                {**seen.evidence, "dish_name": dish, "retained_at": iso(retained), "held_s": held.total_seconds()},
                device=seen.record.device_id,
                subject=sample.sample_id,
                params={
                    "sample_id": sample.sample_id,
                    "dish_name": dish,
                    "held_h": round(held.total_seconds() / 3600, 2),
                    "minimum_h": round(minimum.total_seconds() / 3600, 2),
                },
            )
        ]

    def on_tick(self, now: dt.datetime, since: dt.datetime) -> list[Effect]:
        effects: list[Effect] = []
        for canteen in self.context.registry.canteens:
            for day in self.context.days(now, since):
                if self.context.school_day(canteen, day):
                    effects += self._meals_due(canteen, day, now, since)
        return effects

    def _meals_due(self, canteen: Canteen, day: dt.date, now: dt.datetime, since: dt.datetime) -> list[Effect]:
        effects: list[Effect] = []
        for meal in canteen.meals:
            if day.isoweekday() not in meal.weekdays:
                continue
            deadline = self.context.at_local(day, meal.end) + self.config.sample_grace
            key = f"{canteen.id}|{day.isoformat()}|{meal.meal}"
            if now < deadline or deadline < since or key in self.samples_checked:
                continue
            self.samples_checked.put(key, True)
            kept = len(self.samples.get(key) or [])
            dishes = self.context.dishes(canteen, day, meal)
            if kept < max(1, len(dishes)):
                effects.append(
                    Raise(
                        "sample.missing",
                        "critical",
                        key,
                        canteen.id,
                        now,
                        {"kept": kept, "dishes": len(dishes), "menu": dishes},
                        subject=f"{day} {meal.meal}",
                        params={"date": day.isoformat(), "meal": meal.meal, "count": kept, "dishes": len(dishes)},
                    )
                )
        return effects
