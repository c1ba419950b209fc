"""Devices going offline: a device that says so (its status or last will), or one silent for too many
heartbeats — a camera only while the kitchen is open. Any record from it again resolves the alert.

Storm control: when every device of a canteen falls silent together (its network is down), one
``canteen.offline`` lists them instead of an alert per device; a device falls silent alone only while another
device of its canteen is still heard. When a large share of the whole fleet drops within a minute (a broker or
network outage), one ``platform.mass_offline`` is raised and the per-device and per-canteen alerts are held
until it clears; then only the devices still silent are alerted.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from devices.kitchen import kitchen_opened
from devices.messages import DeviceStatus
from devices.registry import Canteen, DeviceEntry
from devices.topics import DeviceKind
from rules.effects import PLATFORM, Effect, Raise, Resolve
from rules.messages import phrase
from rules.state import Table, iso
from rules.units.base import Observation, RuleContext, RuleUnit

#: Why a device counts as offline: it said so, it went silent, or its whole canteen did.
Offline = Literal["status", "silent", "canteen"]
MASS_KEY = "fleet"
#: When the last platform.mass_offline cleared: every device's silence counts from then at the earliest, so a
#: device still reconnecting after an outage gets one full threshold before it is called offline.
CLEARED_KEY = "cleared"
#: A device counts as alive while heard within this many of its own heartbeat intervals (a late beat only holds
#: another device's alert until the next tick, never loses it).
ALIVE_WITHIN_HEARTBEATS = 1.0


class DevicesUnit(RuleUnit):
    """``device.offline``, ``canteen.offline`` and ``platform.mass_offline``, from status messages and silence."""

    def __init__(self, context: RuleContext) -> None:
        super().__init__(context)
        #: device id -> when the gateway last received anything from it
        self.last_seen = Table[dt.datetime]("last_seen", dt.datetime)
        #: device id -> why it is offline (absent: online)
        self.offline = Table[Offline]("offline", Offline)
        #: canteen id -> its devices, while its canteen.offline is open
        self.canteens_offline = Table[list[str]]("canteens_offline", list[str])
        #: "fleet" -> when platform.mass_offline was raised, while it is open; "cleared" -> when it last cleared
        self.mass = Table[dt.datetime]("mass_offline", dt.datetime)
        self.fleet_size = sum(1 for c in context.registry.canteens for d in c.devices if not d.revoked)

    def on_record(self, seen: Observation) -> list[Effect]:
        record, effects = seen.record, list[Effect]()
        device = record.device_id
        self.last_seen.put(device, record.received_at)
        effects += self._heard_again(record.canteen_id, record.received_at)
        if self.offline.get(device) == "silent":
            self.offline.drop(device)
            effects.append(Resolve("device.offline", device, "the device spoke again", record.received_at))
        status = seen.message
        if not isinstance(status, DeviceStatus):
            return effects
        if status.state != "offline":
            self.offline.drop(device)
            return [*effects, Resolve("device.offline", device, "the device is online", record.received_at)]
        if MASS_KEY in self.mass:
            return effects  # held: judged by silence once the outage clears
        self.offline.put(device, "status")
        why = phrase("reported_offline", self.config.language)
        evidence = {**seen.evidence, "state": "offline"}
        return [*effects, _offline(device, record.kind, record.canteen_id, record.received_at, evidence, why=why)]

    def _heard_again(self, canteen_id: str, at: dt.datetime) -> list[Effect]:
        """A canteen that was offline as a whole is back: its other devices are judged one by one again."""
        devices = self.canteens_offline.get(canteen_id)
        if devices is None:
            return []
        self.canteens_offline.drop(canteen_id)
        for device in devices:
            if self.offline.get(device) == "canteen":
                self.offline.drop(device)
        return [Resolve("canteen.offline", canteen_id, "a device of the canteen spoke again", at)]

    # --- silence ------------------------------------------------------------------------------------------

    def on_tick(self, now: dt.datetime, since: dt.datetime) -> list[Effect]:
        cleared = self.mass.get(CLEARED_KEY)
        silent = {canteen.id: self._silent(canteen, now, since, cleared) for canteen in self.context.registry.canteens}
        effects = self._mass(silent, now)
        if MASS_KEY in self.mass:
            return effects  # per-device and per-canteen alerts wait until the outage clears
        if self.mass.get(CLEARED_KEY) != cleared:  # it cleared just now: the grace starts
            silent = {canteen.id: self._silent(canteen, now, since, now) for canteen in self.context.registry.canteens}
        for canteen in self.context.registry.canteens:
            effects += self._judge(canteen, silent[canteen.id], now)
        return effects

    def _judged(self, canteen: Canteen, now: dt.datetime) -> tuple[list[DeviceEntry], dt.datetime | None]:
        """The devices whose silence counts now (cameras only in kitchen hours), and when the kitchen opened."""
        opened: dt.datetime | None = None
        asked = False  # asked once per canteen: outside kitchen hours the answer is None for every camera
        devices = []
        for device in canteen.devices:
            if device.revoked:
                continue
            if device.kind is DeviceKind.CAMERA:
                if not asked:
                    opened, asked = self._kitchen_opened(canteen, now), True
                if opened is None:
                    continue
            devices.append(device)
        return devices, opened

    def _silent(
        self, canteen: Canteen, now: dt.datetime, since: dt.datetime, cleared: dt.datetime | None
    ) -> dict[str, dt.datetime]:
        """device -> since when, of the judged devices of ``canteen`` silent past their threshold now (counted
        from ``since`` for a device never heard, and from ``cleared`` at the earliest)."""
        devices, opened = self._judged(canteen, now)
        silent = {}
        for device in devices:
            silent_since = self.last_seen.get(device.id) or since
            if cleared is not None:
                silent_since = max(silent_since, cleared)
            if device.kind is DeviceKind.CAMERA and opened is not None:
                silent_since = max(silent_since, opened)  # a camera's silence counts from the kitchen's opening
            if now - silent_since >= self._threshold(device):
                silent[device.id] = silent_since
        return silent

    def _threshold(self, device: DeviceEntry) -> dt.timedelta:
        return dt.timedelta(seconds=device.heartbeat_s * self.config.offline_missed_heartbeats)

    def _judge(self, canteen: Canteen, silent: dict[str, dt.datetime], now: dt.datetime) -> list[Effect]:
        """One alert for the canteen when all of its devices fell silent together; else one per silent device,
        once no other device of the canteen is still on its way to silence (it might be the whole canteen)."""
        devices, _ = self._judged(canteen, now)
        already = {d.id for d in devices if self.offline.get(d.id) in ("silent", "status")}
        dark = not any(self._alive(d, now) for d in canteen.devices)  # a camera off-hours counts when it speaks
        if len(devices) > 1 and len(silent) == len(devices) and not already and dark:
            return self._canteen_silent(canteen, devices, silent, now)
        effects: list[Effect] = []
        for device in devices:
            if device.id not in silent or device.id in self.offline:
                continue
            pending = [
                o
                for o in devices
                if o.id != device.id and not (o.id in silent or o.id in already or self._alive(o, now))
            ]
            if pending:
                continue  # another device has gone quiet but is not yet past its threshold: wait and see
            effects.append(self._device_silent(canteen, device, silent[device.id], now))
        return effects

    def _alive(self, device: DeviceEntry, now: dt.datetime) -> bool:
        """Heard lately by its own schedule, and not offline by its own word."""
        seen = self.last_seen.get(device.id)
        within = dt.timedelta(seconds=device.heartbeat_s * ALIVE_WITHIN_HEARTBEATS)
        return seen is not None and now - seen <= within and self.offline.get(device.id) != "status"

    def _device_silent(self, canteen: Canteen, device: DeviceEntry, since: dt.datetime, now: dt.datetime) -> Raise:
        self.offline.put(device.id, "silent")
        last = self.last_seen.get(device.id)
        local = since.astimezone(self.context.tz)
        why = phrase("silent_since", self.config.language, time=f"{local:%H:%M}")
        evidence = {"last_seen": iso(last) if last else None}
        return _offline(device.id, device.kind.value, canteen.id, now, evidence, why=why)

    def _canteen_silent(
        self, canteen: Canteen, devices: list[DeviceEntry], silent: dict[str, dt.datetime], now: dt.datetime
    ) -> list[Effect]:
        if canteen.id in self.canteens_offline:
            return []
        ids = [d.id for d in devices]
        self.canteens_offline.put(canteen.id, ids)
        effects: list[Effect] = []
        for device_id in ids:
            if self.offline.get(device_id) == "silent":  # one alert for the canteen instead of one per device
                effects.append(Resolve("device.offline", device_id, "the whole canteen is offline", now))
            if self.offline.get(device_id) != "status":
                self.offline.put(device_id, "canteen")
        local = min(silent.values()).astimezone(self.context.tz)
        evidence = {"devices": ids, "last_seen": {d: iso(s) for d, s in sorted(silent.items())}}
        params = {"count": len(ids), "devices": "、".join(ids), "time": f"{local:%H:%M}"}
        effects.append(Raise("canteen.offline", "warning", canteen.id, canteen.id, now, evidence, params=params))
        return effects

    # --- the whole fleet ----------------------------------------------------------------------------------

    def _mass(self, silent: dict[str, dict[str, dt.datetime]], now: dt.datetime) -> list[Effect]:
        """Raise platform.mass_offline when many devices crossed their threshold within the window; clear it once
        fewer than half as many are silent."""
        if not self.fleet_size:
            return []
        count = self.config.mass_offline_share * self.fleet_size
        enough = max(self.config.mass_offline_min_devices, count)
        window = self.config.mass_offline_window
        dropped = sum(
            1
            for canteen in self.context.registry.canteens
            for device in canteen.devices
            if device.id in silent[canteen.id]
            and now - silent[canteen.id][device.id] - self._threshold(device) < window
        )
        silent_now = sum(len(devices) for devices in silent.values())
        if MASS_KEY not in self.mass and dropped >= enough:
            self.mass.put(MASS_KEY, now)
            evidence = {"silent": silent_now, "fleet": self.fleet_size, "dropped_within_s": window.total_seconds()}
            params = {"count": dropped, "fleet": self.fleet_size}
            return [Raise("platform.mass_offline", "critical", MASS_KEY, PLATFORM, now, evidence, params=params)]
        if MASS_KEY in self.mass and silent_now < enough / 2:
            self.mass.drop(MASS_KEY)
            self.mass.put(CLEARED_KEY, now)
            return [Resolve("platform.mass_offline", MASS_KEY, "the fleet is back", now)]
        return []

    def _kitchen_opened(self, canteen: Canteen, now: dt.datetime) -> dt.datetime | None:
        """When the kitchen hours ``now`` falls in began (None outside kitchen hours)."""
        return kitchen_opened(self.context.registry, canteen, now, self.config.kitchen_opens_before_meal)


def _offline(device: str, kind: str, canteen: str, at: dt.datetime, evidence: dict[str, Any], *, why: str) -> Raise:
    params = {"device": device, "kind": kind, "why": why}
    return Raise("device.offline", "warning", device, canteen, at, evidence, device=device, params=params)
