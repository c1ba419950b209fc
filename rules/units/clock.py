"""Device clocks: a record the gateway flagged because its ``ts`` is too far from the gateway's clock."""

from __future__ import annotations

from rules.effects import Effect, Raise
from rules.units.base import Observation, RuleUnit


class ClockUnit(RuleUnit):
    """``device.clock_skew``."""

    def on_record(self, seen: Observation) -> list[Effect]:
        record = seen.record
        if not record.skew_flagged:
            return []
        device = record.device_id
        return [
            Raise(
                "device.clock_skew",
                "warning",
                device,
                record.canteen_id,
                record.received_at,
                {**seen.evidence, "skew_s": record.skew_s},
                device=device,
                params={"device": device, "skew_s": round(record.skew_s)},
            )
        ]
