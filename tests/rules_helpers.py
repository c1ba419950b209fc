"""Feeding the rules engine: records as the spool hands them over, a fake clock, one canteen's registry."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
from pathlib import Path
from typing import Any

from devices.messages import WireModel
from devices.registry import Registry
from devices.topics import Channel, DeviceKind
from rules.alerts import Alert
from rules.config import RulesConfig
from rules.engine import RulesEngine
from rules.store import RulesStore
from runtime.clock import FakeClock
from simulators.payloads import PayloadFactory
from tests.storage_helpers import new_record, spool_record

CST = dt.timezone(dt.timedelta(hours=8))
#: Wednesday 2026-11-25, 08:00 in Jincheng: a school day.
MORNING = dt.datetime(2026, 11, 25, 8, 0, tzinfo=CST)


def registry(**canteen: Any) -> Registry:
    return Registry.model_validate(
        {
            "region": "jincheng",
            "calendar": {"holidays": ["2026-11-27"]},  # a Friday off, for the calendar rules
            "canteens": [
                {
                    "id": "c1",
                    "name": "实验小学",
                    "district": "城区",
                    "type": "primary",
                    "testing_tier": "lab",
                    "meals": [
                        {"meal": "lunch", "start": "11:40", "end": "12:30", "dishes": ["米饭", "青菜", "番茄炒蛋"]}
                    ],
                    "devices": [
                        {"id": "det1", "kind": "detector", "heartbeat_s": 60},
                        {"id": "cab1", "kind": "cabinet", "heartbeat_s": 60},
                        {"id": "cam1", "kind": "camera", "heartbeat_s": 30},
                    ],
                    **canteen,
                }
            ],
        }
    )


class Harness:
    def __init__(
        self, tmp: Path, *, config: RulesConfig | None = None, start: dt.datetime = MORNING, reg: Registry | None = None
    ) -> None:
        self.clock = FakeClock(start)
        self.path = tmp / "rules.sqlite"
        self.registry = reg or registry()
        self.config = config or RulesConfig()
        self.store = RulesStore(self.path)
        self.engine = RulesEngine(self.registry, self.config, self.store, self.clock)
        self.seq = itertools.count(1)
        self.factories = {d: PayloadFactory(d) for d in ("det1", "cab1", "cam1")}

    def restart(self) -> None:
        """A new engine process on the same store (the old one was killed)."""
        self.engine.close()
        self.store = RulesStore(self.path)
        self.engine = RulesEngine(self.registry, self.config, self.store, self.clock)

    def feed(
        self,
        model: WireModel,
        kind: DeviceKind,
        channel: Channel,
        device: str,
        *,
        received_at: dt.datetime | None = None,
        skew_flagged: bool = False,
    ) -> None:
        record = new_record(
            model, kind, channel, canteen="c1", device=device, received_at=received_at or self.clock.now()
        )
        if skew_flagged:
            record = dataclasses.replace(record, skew_flagged=True)
        self.engine.process([spool_record(record, next(self.seq))])

    def at(self, when: dt.datetime) -> None:
        self.clock.set(when)
        self.engine.tick()

    def after(self, delta: dt.timedelta) -> None:
        self.at(self.clock.now() + delta)

    def alerts(self, rule: str | None = None, state: str | None = None) -> list[Alert]:
        return [
            a for a in self.store.alerts() if (rule is None or a.rule == rule) and (state is None or a.state == state)
        ]

    def test(
        self,
        value: float | None,
        *,
        std: str = "GB/T 5009.199-2003",
        result: str = "pass",
        delta_a: float | None = 0.6,
        sample_no: str = "S1",
        retest_of: str | None = None,
        at: dt.datetime | None = None,
    ) -> None:
        base = self.factories["det1"].test_result(at or self.clock.now())
        model = base.model_copy(
            update={
                "method": "enzyme_inhibition",
                "unit": "%",
                "value": value,
                "method_std": std,
                "result": result,
                "control_delta_a": delta_a,
                "sample_no": sample_no,
                "retest_of": retest_of,
                "item_code": "pesticide.op_carbamate",
            }
        )
        self.feed(model, DeviceKind.DETECTOR, Channel.EVENT, "det1")

    def reading(self, temp_c: float, *, door_open: bool = False) -> None:
        model = self.factories["cab1"].cabinet_reading(self.clock.now(), samples_held=3)
        self.feed(
            model.model_copy(update={"temp_c": temp_c, "door_open": door_open}),
            DeviceKind.CABINET,
            Channel.TELEMETRY,
            "cab1",
        )
