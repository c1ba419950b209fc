"""Scaling out by canteen: ``gateway.partition = "K/N"`` splits the registry the same way on every machine, and a
partition's gateway, rules engine and console know only its own canteens. On the real broker, two partitions
under one multiplexed fleet store every record exactly once between them, each only its own canteens', and
neither calls the other's canteens silent."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pytest
from pydantic import ValidationError

from broker_config.managed import ManagedMosquitto
from devices.registry import Registry
from simulators.behaviour import Behaviour, FleetStats
from simulators.city import generate_city
from simulators.multiplex import run_multiplexed
from simulators.simclock import SimClock
from spool import Spool
from tests.helpers import eventually
from tests.test_fleet import CST, _small_city
from wiring.broker import BrokerAddress
from wiring.build import owned_canteens, owned_registry, spool_path
from wiring.platform import Platform
from wiring.settings import ConfigError, GatewaySettings, MqttSettings, RulesSettings, Settings, WebSettings


def _settings(tmp: Path, partition: str, *, host: str = "127.0.0.1", port: int = 1883) -> Settings:
    return Settings(
        data_dir=tmp / partition.replace("/", "-of-"),
        mqtt=MqttSettings(host=host, port=port),
        gateway=GatewaySettings(client_id=f"gw-{partition.replace('/', '-of-')}", partition=partition),
        rules=RulesSettings(tick_s=0.2),
    ).model_copy(update={"web": WebSettings(enabled=False)})


def test_partitions_split_the_canteens_disjointly_and_completely(tmp_path: Path) -> None:
    city = Registry.model_validate(generate_city())
    parts = [owned_canteens(_settings(tmp_path, f"{k}/3"), city) for k in (1, 2, 3)]
    assert sorted(c for part in parts for c in part) == sorted(c.id for c in city.canteens)
    assert all(120 < len(part) < 190 for part in parts)  # a hash spreads 459 canteens about evenly
    again = Registry.model_validate({**generate_city(), "canteens": generate_city()["canteens"][::-1]})
    assert sorted(owned_canteens(_settings(tmp_path, "2/3"), again)) == sorted(parts[1])  # not by order


def test_a_partitions_registry_knows_only_its_canteens_and_their_accounts(tmp_path: Path) -> None:
    city = Registry.model_validate(generate_city())
    part = owned_registry(_settings(tmp_path, "1/2"), city)
    ids = {c.id for c in part.canteens}
    other = next(c for c in city.canteens if c.id not in ids)
    assert part.canteen(other.id) is None
    assert part.assignment(other.devices[0].id) is None  # the indexes were rebuilt, not copied
    assert all(a.canteen in ids for a in part.accounts if a.role == "school")
    assert {a.role for a in part.accounts} >= {"gateway", "city", "district", "school"}


def test_a_partition_is_checked_when_configured(tmp_path: Path) -> None:
    for bad in ("0/2", "3/2", "1-2", "half"):
        with pytest.raises(ValidationError, match="partition"):
            GatewaySettings(partition=bad)
    with pytest.raises(ValidationError, match="not both"):
        GatewaySettings(partition="1/2", canteens=["jc-cq-001"])
    tiny = _small_city(1)
    with pytest.raises(ConfigError, match="none of the registry's canteens"):
        owned_canteens(_settings(tmp_path, "7/50"), tiny)  # one canteen cannot fill fifty partitions
    named = _settings(tmp_path, "1/1").model_copy(
        update={"gateway": GatewaySettings(canteens=["jc-cq-001", "nowhere-1"])}
    )
    with pytest.raises(ConfigError, match="nowhere-1"):
        owned_canteens(named, tiny)


async def test_two_partitions_under_one_fleet_store_every_record_once_and_only_their_own(tmp_path: Path) -> None:
    registry = _small_city(10)
    broker = ManagedMosquitto(tmp_path / "broker")
    broker.start()
    start = dt.datetime(2026, 11, 25, 9, 52, tzinfo=CST)  # deliveries still tested, kitchens open: cameras count
    clock = SimClock(start, 20, held=True)
    partitions = [
        Platform(_settings(tmp_path, f"{k}/2", host=broker.host, port=broker.port), registry, clock) for k in (1, 2)
    ]
    stats, stop = FleetStats(), asyncio.Event()
    busy = Behaviour(test_per_tick_in_delivery_hours=1.0, camera_dropout=0.0)
    try:
        for platform in partitions:
            platform.start(BrokerAddress(broker.host, broker.port))
            await platform.gateway_ready()
        fleet = asyncio.create_task(
            run_multiplexed(
                registry,
                clock,
                host=broker.host,
                port=broker.port,
                stop=stop,
                stats=stats,
                connections=3,
                behaviour=busy,
            )
        )
        await eventually(lambda: clock.now() >= start + dt.timedelta(minutes=6), timeout=90, what="six minutes")
        stats.producing = False  # wind down: what waits for a receipt is still sent until it comes
        await eventually(lambda: stats.pending == 0, timeout=60, what="every outbox empty")
        stop.set()
        await asyncio.wait_for(fleet, 30)
        await eventually(
            lambda: all(p.rules.stats.lag_records == 0 for p in partitions), timeout=30, what="rules caught up"
        )
        for platform in partitions:
            for rule in ("device.offline", "canteen.offline", "platform.mass_offline"):
                assert [a for a in platform.rules.engine.store.alerts(limit=10_000) if a.rule == rule] == []
    finally:
        stop.set()
        for platform in partitions:
            await platform.shutdown()
            await platform.close()
        broker.stop()
    stored: list[list[tuple[str, str]]] = []
    for platform in partitions:
        spool = Spool(spool_path(platform.settings))
        try:
            stored.append([(r.canteen_id, r.msg_id) for r in spool.all_records() if r.channel == "event"])
        finally:
            spool.close()
        own = {c.id for c in platform.registry.canteens}
        assert {canteen for canteen, _ in stored[-1]} <= own
    first, second = ({m for _, m in part} for part in stored)
    assert first.isdisjoint(second)
    assert first | second == stats.produced
    assert sum(len(part) for part in stored) == len(stats.produced)  # nothing stored twice
    assert first, "partition 1 stored nothing"
    assert second, "partition 2 stored nothing"
