"""The device side of the reliability contract: with the broker SIGKILLed and restarted in the middle of a run,
every test result and sample record the simulated devices produced ends up stored exactly once."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pytest

from broker_config.managed import ManagedMosquitto
from devices.registry import Registry
from simulators.behaviour import Behaviour, FleetStats
from simulators.city import generate_city
from simulators.fleet import run_fleet
from simulators.simclock import SimClock
from spool import Spool
from tests.gateway_harness import gateway_in_process
from tests.helpers import eventually

CST = dt.timezone(dt.timedelta(hours=8))


def _small_city(canteens: int) -> Registry:
    data = generate_city()
    data["canteens"] = [c for c in data["canteens"] if c["testing_tier"] != "none"][:canteens]
    data["accounts"] = []
    return Registry.model_validate(data)


@pytest.mark.timeout(600)  # on a busy machine the pacer slows the simulated morning down to what the fleet keeps
async def test_records_survive_a_broker_sigkill_exactly_once(tmp_path: Path) -> None:
    registry = _small_city(3)
    broker = ManagedMosquitto(tmp_path / "broker")
    broker.start()
    # 09:20 on a school day, 600x: the last deliveries are tested, then lunch ends and samples are kept
    clock = SimClock(dt.datetime(2026, 11, 25, 9, 20, tzinfo=CST), speed=600)
    stats, stop = FleetStats(), asyncio.Event()
    spool_path = tmp_path / "spool.sqlite"
    behaviour = Behaviour(test_per_tick_in_delivery_hours=1.0, camera_dropout=0.0)
    try:
        async with gateway_in_process(broker, registry, spool_path, "gw-fleet"):
            fleet = asyncio.create_task(
                run_fleet(
                    registry,
                    clock,
                    host=broker.host,
                    port=broker.port,
                    stop=stop,
                    stats=stats,
                    behaviour=behaviour,
                )
            )
            await eventually(lambda: len(stats.produced) >= 20, timeout=120, what="records flowing")
            await asyncio.to_thread(broker.kill)
            await asyncio.sleep(1.0)
            await asyncio.to_thread(broker.restart)
            await eventually(lambda: clock.now().hour >= 13, timeout=300, what="lunch is over")
            stats.producing = False  # wind down: every record still waiting is sent until its receipt comes
            await eventually(lambda: stats.pending == 0, timeout=120, what="every outbox empty")
            stop.set()
            await asyncio.wait_for(fleet, 30)
            assert stats.disconnects > 0, "the devices should have seen the broker go"
    finally:
        broker.stop()
    spool = Spool(spool_path)
    try:
        records = [r for r in spool.all_records() if r.channel == "event"]
    finally:
        spool.close()
    stored = [r.msg_id for r in records]
    assert len(stored) == len(set(stored))  # nothing doubled
    assert set(stored) == stats.produced  # nothing lost
    assert {"test.result", "sample.retained"} <= {r.type for r in records}


async def test_load_mode_delivers_every_message(tmp_path: Path) -> None:
    from simulators.load import load_messages, publish_load

    registry = _small_city(5)
    messages = load_messages(registry, 3000)
    # a broker of its own: nothing retained by other tests can blur the count below
    broker = ManagedMosquitto(tmp_path / "broker")
    broker.start()
    try:
        async with gateway_in_process(broker, registry, tmp_path / "spool.sqlite", "gw-load") as gateway:
            result = await publish_load(broker.host, broker.port, messages, connections=3)
            await eventually(lambda: gateway.stats.stored >= 3000, timeout=120, what="all stored")
    finally:
        broker.stop()
    assert result.messages == 3000
    assert result.rate > 0
    assert gateway.stats.stored == 3000
    # besides the load, only the broker's redeliveries of what it had not yet seen acknowledged (a busy machine),
    # which are duplicates; nothing is rejected or ignored
    stats = gateway.stats
    assert not stats.rejected
    assert not stats.ignored
    assert stats.received - stats.duplicates == 3000


async def test_every_device_logs_in_with_its_own_provisioned_credentials(tmp_path: Path) -> None:
    """The ACL-realistic mode: the fleet on a broker with the provisioned password file and ACL."""
    import yaml

    from broker_config.managed import SecureOptions
    from broker_config.provision import provision

    registry = _small_city(3)
    result = provision(registry, tmp_path / "provisioned", persistence_dir=tmp_path)
    broker = ManagedMosquitto(
        tmp_path / "broker", secure=SecureOptions(password_file=result.passwd, acl_file=result.acl)
    )
    broker.start()
    passwords = yaml.safe_load(result.credentials.read_text())
    devices = sum(len(c.devices) for c in registry.canteens)
    clock = SimClock(dt.datetime(2026, 11, 25, 8, 0, tzinfo=CST), speed=60)
    stats, stop = FleetStats(), asyncio.Event()
    try:
        fleet = asyncio.create_task(
            run_fleet(
                registry,
                clock,
                host=broker.host,
                port=broker.port,
                stop=stop,
                stats=stats,
                passwords=passwords,
            )
        )
        await eventually(lambda: stats.online == devices, timeout=120, what="every device online")
        assert stats.disconnects == 0
        stop.set()
        await asyncio.wait_for(fleet, 30)
    finally:
        broker.stop()
