"""An engine started 50,000 records behind the spool's head (a restart after an outage, a busy morning): it reads
the reference city's heartbeats in the runner's catch-up batches and calls no device silent whose records were
among them. The same records judged at the clock instead of the watermark call hundreds of canteens silent —
the test shows both, so that it cannot pass by raising nothing at all."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from devices.registry import Registry
from devices.topics import Channel, DeviceKind
from rules.config import RulesConfig
from rules.engine import RulesEngine
from rules.runner import RulesRunner
from rules.store import RulesStore
from runtime.clock import FakeClock
from simulators.city import generate_city
from simulators.payloads import PayloadFactory
from spool import NewRecord
from tests.rules_helpers import CST
from tests.storage_helpers import fill_spool, new_record

BEHIND = 50_000
#: Kitchen hours of a school day: every camera's silence counts.
START = dt.datetime(2026, 11, 25, 10, 0, tzinfo=CST)
SILENCE = ("device.offline", "canteen.offline", "platform.mass_offline")


def _city_heartbeats(registry: Registry, count: int) -> list[NewRecord]:
    """Every device beating on its own schedule from START, in receive order, until ``count`` records."""
    devices = [(c.id, d) for c in registry.canteens for d in c.devices]
    factories = {d.id: PayloadFactory(d.id) for _, d in devices}
    made = {
        DeviceKind.CAMERA: lambda f, at: f.camera_stream(at),
        DeviceKind.CABINET: lambda f, at: f.cabinet_reading(at, samples_held=2),
        DeviceKind.DETECTOR: lambda f, at: f.detector_heartbeat(at),
    }
    beats: list[tuple[dt.datetime, str, DeviceKind, str]] = []
    for n, (canteen, device) in enumerate(devices):
        offset = dt.timedelta(seconds=device.heartbeat_s * (n % 97) / 97)  # spread over the interval
        at = START + offset
        while at < START + dt.timedelta(minutes=10):
            beats.append((at, canteen, device.kind, device.id))
            at += dt.timedelta(seconds=device.heartbeat_s)
    beats.sort()
    records = []
    for at, canteen, kind, device_id in beats[:count]:
        model = made[kind](factories[device_id], at)
        records.append(new_record(model, kind, Channel.TELEMETRY, canteen=canteen, device=device_id, received_at=at))
    return records


def _silence_alerts(engine: RulesEngine) -> list[str]:
    return [f"{a.rule} {a.device_id or a.canteen_id}" for a in engine.store.alerts(limit=100_000) if a.rule in SILENCE]


async def test_an_engine_50000_records_behind_calls_no_device_silent_whose_records_it_reads(tmp_path: Path) -> None:
    registry = Registry.model_validate(generate_city())
    records = _city_heartbeats(registry, BEHIND)
    assert len(records) == BEHIND
    end = records[-1].received_at
    assert end - records[0].received_at > dt.timedelta(minutes=4)  # longer than any device's silence threshold
    heard = {r.device_id for r in records}

    def engine_at_the_head(name: str) -> RulesEngine:
        """An engine whose clock stands where the gateway is now: at the spool's head."""
        return RulesEngine(registry, RulesConfig(), RulesStore(tmp_path / f"{name}.sqlite"), FakeClock(end))

    spool = fill_spool(tmp_path / "spool.sqlite", records)
    runner = RulesRunner(engine_at_the_head("watermark"), spool, [])
    while await runner.step(publish=False):  # the runner's own batches: 1,000, then 10,000 while behind
        pass
    assert runner.stats.applied == BEHIND
    assert _silence_alerts(runner.engine) == []
    assert len(heard) > 4_000  # nearly the whole city spoke in those records

    at_clock = engine_at_the_head("clock")  # the mistake the watermark prevents: judging the clock while behind
    applied = spool.read(0, BEHIND)
    for start in range(0, BEHIND, runner.catch_up_batch):
        at_clock.process(applied[start : start + runner.catch_up_batch], caught_up=True)
    assert len(_silence_alerts(at_clock)) > 100  # hundreds of canteens "dark" that were speaking all along
    spool.close()
