"""The fleet over processes of its own (simulators/fleet_processes.py), against a real broker and gateway: every
record of every process stored exactly once on the pacing process's clock, and a fleet process that dies is an
error, not a silent city."""

from __future__ import annotations

import asyncio
import datetime as dt
import multiprocessing
import os
import signal
from collections.abc import Iterator
from multiprocessing import resource_tracker
from pathlib import Path

import pytest

from broker_config.managed import ManagedMosquitto
from simulators.behaviour import Behaviour, FleetStats
from simulators.fleet_processes import run_fleet_processes, split
from simulators.simclock import SimClock
from spool import Spool
from tests.gateway_harness import gateway_in_process
from tests.helpers import eventually
from tests.test_fleet import CST, _small_city


@pytest.fixture(autouse=True)
def _resource_tracker_ends_with_the_test() -> Iterator[None]:
    """Spawning starts multiprocessing's resource tracker, once, for the life of the spawning process: a
    platform ends with it, the test session would not."""
    yield
    resource_tracker._resource_tracker._stop()  # type: ignore[attr-defined]


def test_whole_canteens_are_dealt_evenly_by_devices() -> None:
    registry = _small_city(20)
    shares = split(registry, 3)
    dealt = [c for share in shares for c in share]
    assert sorted(dealt) == sorted(c.id for c in registry.canteens)  # each canteen once, whole
    devices = {c.id: len(c.devices) for c in registry.canteens}
    sizes = [sum(devices[c] for c in share) for share in shares]
    assert max(sizes) - min(sizes) <= max(len(c.devices) for c in registry.canteens)


@pytest.mark.timeout(600)  # on a busy machine the pacer slows the simulated morning down
async def test_two_fleet_processes_store_every_record_exactly_once(tmp_path: Path) -> None:
    registry = _small_city(4)
    broker = ManagedMosquitto(tmp_path / "broker")
    broker.start()
    clock = SimClock(dt.datetime(2026, 11, 25, 9, 20, tzinfo=CST), speed=600, held=True)
    stats, stop = FleetStats(), asyncio.Event()
    spool_path = tmp_path / "spool.sqlite"
    behaviour = Behaviour(test_per_tick_in_delivery_hours=1.0, camera_dropout=0.0)
    devices = sum(len(c.devices) for c in registry.canteens)
    try:
        async with gateway_in_process(broker, registry, spool_path, "gw-fleet-processes"):
            fleet = asyncio.create_task(
                run_fleet_processes(
                    registry,
                    clock,
                    processes=2,
                    host=broker.host,
                    port=broker.port,
                    stop=stop,
                    stats=stats,
                    behaviour=behaviour,
                )
            )
            await eventually(lambda: stats.online == devices, timeout=120, what="every device online")
            await eventually(lambda: not clock.held, timeout=30, what="the clock released")
            await eventually(lambda: len(stats.produced) >= 30, timeout=300, what="records flowing")
            stats.producing = False  # reaches the fleet processes with the clock
            await eventually(lambda: stats.pending == 0, timeout=120, what="every outbox empty")
            stop.set()
            await asyncio.wait_for(fleet, 60)
    finally:
        broker.stop()
    assert multiprocessing.active_children() == []  # nothing left behind
    spool = Spool(spool_path)
    try:
        records = [r for r in spool.all_records() if r.channel == "event"]
    finally:
        spool.close()
    stored = [r.msg_id for r in records]
    assert len(stored) == len(set(stored))  # nothing doubled
    assert set(stored) == stats.produced  # nothing lost
    by_process = [set(share) for share in split(registry, 2)]
    canteens = {r.canteen_id for r in records}
    assert all(canteens & share for share in by_process)  # both processes' devices made records
    # the devices kept the pacing process's clock: no record is stamped after the simulated time it ended at
    assert max(r.device_ts for r in records) <= clock.now()


@pytest.mark.timeout(300)
async def test_a_fleet_process_that_dies_stops_the_fleet_with_an_error(tmp_path: Path) -> None:
    registry = _small_city(2)
    broker = ManagedMosquitto(tmp_path / "broker")
    broker.start()
    clock = SimClock(dt.datetime(2026, 11, 25, 9, 20, tzinfo=CST), speed=60, held=True)
    stats, stop = FleetStats(), asyncio.Event()
    devices = sum(len(c.devices) for c in registry.canteens)
    try:
        fleet = asyncio.create_task(
            run_fleet_processes(
                registry, clock, processes=2, host=broker.host, port=broker.port, stop=stop, stats=stats
            )
        )
        await eventually(lambda: stats.online == devices, timeout=120, what="every device online")
        victim = multiprocessing.active_children()[0]
        assert victim.pid is not None
        os.kill(victim.pid, signal.SIGKILL)
        with pytest.raises(RuntimeError, match=r"fleet process \d exited on its own \(exit code -9\)"):
            await asyncio.wait_for(fleet, 60)
    finally:
        stop.set()
        broker.stop()
    assert multiprocessing.active_children() == []
