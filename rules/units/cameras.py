"""Bright-kitchen cameras: an AI-recognised violation (no hat, no mask, a rodent…) above the confidence floor,
for a person to review."""

from __future__ import annotations

from devices.messages import AiViolation
from rules.effects import Effect, Raise
from rules.units.base import Observation, RuleUnit


class CamerasUnit(RuleUnit):
    """``camera.violation``."""

    def on_record(self, seen: Observation) -> list[Effect]:
        event = seen.message
        if not isinstance(event, AiViolation) or event.confidence < self.config.camera_confidence_min:
            return []
        device = seen.record.device_id
        return [
            Raise(
                "camera.violation",
                "warning",
                f"{device}|{event.violation}",
                seen.record.canteen_id,
                event.ts,
                {**seen.evidence, "confidence": event.confidence, "snapshot_url": event.snapshot_url},
                device=device,
                subject=event.violation,
                params={
                    "device": device,
                    "area": event.area,
                    "violation": event.violation,
                    "confidence": event.confidence,
                },
            )
        ]
