"""Devices going offline: a device that says so (its status or last will), or one silent for too many
heartbeats — a camera only while the kitchen is open. Any record from it again resolves the alert."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from devices.messages import DeviceStatus
from devices.registry import Canteen
from devices.topics import DeviceKind
from rules.effects import Effect, Raise, Resolve
from rules.messages import phrase
from rules.state import Table, iso
from rules.units.base import Observation, RuleContext, RuleUnit

#: Why a device counts as offline: it said so, or it went silent.
Offline = Literal["status", "silent"]


class DevicesUnit(RuleUnit):
    """``device.offline``, from a status message or from silence."""

    def __init__(self, context: RuleContext) -> None:
        super().__init__(context)
        #: device id -> when the gateway last received anything from it
        self.last_seen = Table[dt.datetime]("last_seen", dt.datetime)
        #: device id -> why it is offline (absent: online)
        self.offline = Table[Offline]("offline", Offline)

    def on_record(self, seen: Observation) -> list[Effect]:
        record, effects = seen.record, list[Effect]()
        device = record.device_id
        self.last_seen.put(device, record.received_at)
        if self.offline.get(device) == "silent":
            self.offline.drop(device)
            effects.append(Resolve("device.offline", device, "the device spoke again", record.received_at))
        status = seen.message
        if not isinstance(status, DeviceStatus):
            return effects
        if status.state != "offline":
            self.offline.drop(device)
            return [*effects, Resolve("device.offline", device, "the device is online", record.received_at)]
        self.offline.put(device, "status")
        why = phrase("reported_offline", self.config.language)
        evidence = {**seen.evidence, "state": "offline"}
        return [*effects, _offline(device, record.kind, record.canteen_id, record.received_at, evidence, why=why)]

    def on_tick(self, now: dt.datetime, since: dt.datetime) -> list[Effect]:
        effects: list[Effect] = []
        for canteen in self.context.registry.canteens:
            effects += self._silent(canteen, now, since)
        return effects

    def _silent(self, canteen: Canteen, now: dt.datetime, since: dt.datetime) -> list[Effect]:
        effects: list[Effect] = []
        opened: dt.datetime | Literal[False] | None = False  # worked out once, for the first camera
        for device in canteen.devices:
            if device.revoked or device.id in self.offline:
                continue
            last = self.last_seen.get(device.id)
            silent_since = last or since
            if device.kind is DeviceKind.CAMERA:
                if opened is False:
                    opened = self._kitchen_opened(canteen, now)
                if opened is None:
                    continue
                silent_since = max(silent_since, opened)  # a camera's silence counts from the kitchen's opening
            if now - silent_since < dt.timedelta(seconds=device.heartbeat_s * self.config.offline_missed_heartbeats):
                continue
            self.offline.put(device.id, "silent")
            local = silent_since.astimezone(self.context.tz)
            why = phrase("silent_since", self.config.language, time=f"{local:%H:%M}")
            evidence = {"last_seen": iso(last) if last else None}
            effects.append(_offline(device.id, device.kind.value, canteen.id, now, evidence, why=why))
        return effects

    def _kitchen_opened(self, canteen: Canteen, now: dt.datetime) -> dt.datetime | None:
        """When the kitchen hours ``now`` falls in began (None outside kitchen hours)."""
        local = now.astimezone(self.context.tz)
        if not self.context.school_day(canteen, local.date()):
            return None
        for meal in canteen.meals:
            if local.isoweekday() not in meal.weekdays:
                continue
            start = self.context.at_local(local.date(), meal.start) - self.config.kitchen_opens_before_meal
            if start <= local <= self.context.at_local(local.date(), meal.end):
                return start
        return None


def _offline(device: str, kind: str, canteen: str, at: dt.datetime, evidence: dict[str, Any], *, why: str) -> Raise:
    params = {"device": device, "kind": kind, "why": why}
    return Raise("device.offline", "warning", device, canteen, at, evidence, device=device, params=params)
