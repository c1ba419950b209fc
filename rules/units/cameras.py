"""Bright-kitchen cameras: an AI-recognised violation (no hat, no mask, a rodent…) above the confidence floor,
for a person to review; and a camera whose MQTT heartbeat is fine but whose picture stopped in kitchen hours
(``camera.video_lost``: the media server's statistics say so, not the camera), resolved when it returns."""

from __future__ import annotations

import datetime as dt

from devices.kitchen import kitchen_opened
from devices.messages import AiViolation
from devices.registry import Canteen, DeviceEntry
from rules.effects import Effect, Raise, Resolve
from rules.state import Table
from rules.units.base import Observation, RuleContext, RuleUnit


class CamerasUnit(RuleUnit):
    """``camera.violation`` and ``camera.video_lost``."""

    def __init__(self, context: RuleContext) -> None:
        super().__init__(context)
        #: camera -> when the gateway last received anything from it (its heartbeat, for the picture's judge)
        self.heard = Table[dt.datetime]("camera_heard", dt.datetime)
        #: camera -> since when its picture is lost, while camera.video_lost is open
        self.lost = Table[dt.datetime]("video_lost", dt.datetime)
        self.streaming: dict[str, tuple[Canteen, DeviceEntry]] = {
            d.id: (c, d) for c in context.registry.canteens for d in c.devices if d.streams
        }

    def on_record(self, seen: Observation) -> list[Effect]:
        device = seen.record.device_id
        if device in self.streaming:
            self.heard.put(device, seen.record.received_at)
        event = seen.message
        if not isinstance(event, AiViolation) or event.confidence < self.config.camera_confidence_min:
            return []
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

    def on_tick(self, now: dt.datetime, since: dt.datetime) -> list[Effect]:
        effects: list[Effect] = []
        for camera, (canteen, device) in self.streaming.items():
            picture = self.context.picture(camera)
            if picture is None:
                continue  # not watched (video off), or not read yet
            publishing, changed = picture
            if publishing:
                if camera in self.lost:
                    self.lost.drop(camera)
                    effects.append(Resolve("camera.video_lost", camera, "the picture is back", now))
                continue
            if camera not in self.lost and (lost := self._lost_since(canteen, device, changed, now, since)):
                self.lost.put(camera, lost)
                effects.append(self._raise(canteen, camera, lost, now))
        return effects

    def _lost_since(
        self, canteen: Canteen, device: DeviceEntry, stopped: dt.datetime, now: dt.datetime, since: dt.datetime
    ) -> dt.datetime | None:
        """Since when the picture counts as lost, once that is longer than the threshold: only in kitchen hours
        (counted from their start at the earliest) and only while the camera itself is heard, since the picture
        stopped too (a camera that went silent with its picture, its power or network gone, is device.offline's)."""
        opened = kitchen_opened(self.context.registry, canteen, now, self.config.kitchen_opens_before_meal)
        if opened is None:
            return None
        lost = max(stopped, opened, since)
        heard = self.heard.get(device.id)
        alive_for = dt.timedelta(seconds=device.heartbeat_s * self.config.offline_missed_heartbeats)
        if heard is None or heard < lost or now - heard > alive_for:
            return None
        return lost if now - lost >= self.config.video_lost_after else None

    def _raise(self, canteen: Canteen, camera: str, lost: dt.datetime, now: dt.datetime) -> Raise:
        minutes = max(1, round((now - lost).total_seconds() / 60))
        local = lost.astimezone(self.context.tz)
        return Raise(
            "camera.video_lost",
            "warning",
            camera,
            canteen.id,
            now,
            {"device": camera, "picture_since": lost.isoformat(), "publishing": False},
            device=camera,
            params={"device": camera, "time": f"{local:%H:%M}", "minutes": minutes},
        )
