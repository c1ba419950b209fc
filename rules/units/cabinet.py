"""The sample cabinet's cold chain: out of 0–8 °C for too long (warning, then critical), and a door left open."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from devices.messages import CabinetReading
from rules.alerts import Severity
from rules.effects import Effect, Raise, Resolve
from rules.state import Table, iso
from rules.units.base import Observation, RuleContext, RuleUnit


@dataclass
class Cabinet:
    """One cabinet's last reading and since when it has been out of range, back in range, or open."""

    canteen: str
    temp_c: float | None = None
    msg_id: str | None = None
    out_since: dt.datetime | None = None
    in_since: dt.datetime | None = None
    door_since: dt.datetime | None = None


class CabinetUnit(RuleUnit):
    """``cabinet.*``: temperature out of range, door open."""

    def __init__(self, context: RuleContext) -> None:
        super().__init__(context)
        #: device id -> its state
        self.cabinet = Table[Cabinet]("cabinet", Cabinet)

    def on_record(self, seen: Observation) -> list[Effect]:
        reading = seen.message
        if not isinstance(reading, CabinetReading):
            return []
        device, cfg = seen.record.device_id, self.config
        cab = self.cabinet.get(device) or Cabinet(canteen=seen.record.canteen_id)
        cab.canteen, cab.temp_c, cab.msg_id = seen.record.canteen_id, reading.temp_c, seen.record.msg_id
        if reading.temp_c < cfg.cabinet_min_c or reading.temp_c > cfg.cabinet_max_c:
            cab.out_since, cab.in_since = cab.out_since or reading.ts, None
        else:
            cab.out_since, cab.in_since = None, cab.in_since or reading.ts
        effects: list[Effect] = []
        if reading.door_open:
            cab.door_since = cab.door_since or reading.ts
        else:
            cab.door_since = None
            effects.append(Resolve("cabinet.door_open", device, "door closed", reading.ts))
        self.cabinet.put(device, cab)
        return effects + self._check(device, cab, reading.ts)

    def on_tick(self, now: dt.datetime, since: dt.datetime) -> list[Effect]:
        effects: list[Effect] = []
        for device, cab in self.cabinet.items():
            effects += self._check(device, cab, now)
        return effects

    def _check(self, device: str, cab: Cabinet, now: dt.datetime) -> list[Effect]:
        cfg, effects = self.config, list[Effect]()
        evidence = {"msg_id": cab.msg_id, "temp_c": cab.temp_c}
        if cab.out_since is not None:
            out_for = now - cab.out_since
            if out_for >= cfg.temperature_warning_after:
                severity: Severity = "critical" if out_for >= cfg.temperature_critical_after else "warning"
                params = {
                    "device": device,
                    "temp_c": cab.temp_c,
                    "low": cfg.cabinet_min_c,
                    "high": cfg.cabinet_max_c,
                    "minutes": int(out_for.total_seconds() // 60),
                }
                evidence_out = {**evidence, "out_since": iso(cab.out_since)}
                effects.append(
                    Raise(
                        "cabinet.temperature",
                        severity,
                        device,
                        cab.canteen,
                        now,
                        evidence_out,
                        device=device,
                        params=params,
                    )
                )
        elif cab.in_since is not None and now - cab.in_since >= cfg.temperature_clear_after:
            effects.append(Resolve("cabinet.temperature", device, "back in range", now))
        if cab.door_since is not None:
            open_for = now - cab.door_since
            if open_for >= cfg.door_open_after:
                params = {"device": device, "minutes": int(open_for.total_seconds() // 60)}
                evidence_door = {**evidence, "door_since": iso(cab.door_since)}
                effects.append(
                    Raise(
                        "cabinet.door_open",
                        "warning",
                        device,
                        cab.canteen,
                        now,
                        evidence_door,
                        device=device,
                        params=params,
                    )
                )
        return effects
