"""The gateway's promise on the real Mosquitto: every record is stored exactly once or dead-lettered —
through SIGKILLs, broker restarts and redeliveries — and gateways split the fleet by canteen."""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path

import pytest

from broker_config.managed import ManagedMosquitto
from devices.messages import Receipt
from devices.topics import Channel, DeviceKind
from mqtt.device_link import MqttLink
from mqtt.link_options import LinkOptions
from spool import Spool
from tests.gateway_harness import (
    GatewayProcess,
    gateway_in_process,
    publish_all,
    records_in,
    write_registry,
)
from tests.helpers import device_topic, eventually, make_registry, one_of_each, records_for


def _msg_ids(spool_path: Path) -> list[tuple[str, str]]:
    spool = Spool(spool_path)
    try:
        return [(r.device_id, r.msg_id) for r in spool.all_records()]
    finally:
        spool.close()


@pytest.mark.timeout(900)  # 21 starts of `shian run` and 40,000 records: minutes on a busy machine
def test_sigkill_at_random_moments_loses_and_doubles_nothing(
    mosquitto: ManagedMosquitto, tmp_path: Path, uid: str
) -> None:
    registry = make_registry(uid, canteens=2)
    config = GatewayProcess.write_config(
        tmp_path / "shian.toml",
        mosquitto,
        registry=write_registry(registry, tmp_path / "registry.yaml"),
        data_dir=tmp_path,
        client_id=f"gw-{uid}",
        canteens=[c.id for c in registry.canteens],
    )
    gateway = GatewayProcess(config, tmp_path / "gateway.log")
    spool_path = tmp_path / f"spool-gw-{uid}.sqlite"
    # The first run creates the persistent session; from then on the broker queues for it.
    gateway.start()
    gateway.wait_subscribed()
    gateway.kill()

    # Each round: 2,000 more QoS 1 messages wait in the broker, the gateway starts, and dies by SIGKILL at a
    # random moment of its drain.
    rng = random.Random(uid)
    messages = records_for(uid, 20 * 2000, canteens=2)
    killed_mid_drain = 0
    for round_ in range(20):
        asyncio.run(publish_all(mosquitto, f"fleet-{uid}", messages[round_ * 2000 : (round_ + 1) * 2000]))
        gateway.start()
        gateway.wait_subscribed()
        asyncio.run(asyncio.sleep(rng.uniform(0.0, 0.2)))
        gateway.kill()
        killed_mid_drain += records_in(spool_path) < (round_ + 1) * 2000
    assert killed_mid_drain >= 10, "the kills should land while messages are still queued"

    gateway.start()
    gateway.wait_subscribed()
    # Liveness, not the property under test (that is below): on a loaded machine the `shian run` child, whose
    # rules engine works through 40,000 records and their alerts in the same process, has been seen to pause
    # for a minute at a time (noted for the rules-engine issue), so the bound is generous.
    asyncio.run(eventually(lambda: records_in(spool_path) >= len(messages), timeout=300, what="all stored"))
    assert gateway.stop() == 0
    stored = _msg_ids(spool_path)
    sent = {(json.loads(p)["msg_id"].rsplit("-", 1)[0], json.loads(p)["msg_id"]) for _, p in messages}
    assert len(stored) == len(messages)  # nothing doubled
    assert set(stored) == sent  # nothing lost


@pytest.mark.timeout(600)
async def test_broker_restart_under_load_loses_nothing(tmp_path: Path, uid: str) -> None:
    broker = ManagedMosquitto(tmp_path / "broker")
    broker.start()
    registry = make_registry(uid)
    messages = records_for(uid, 2000)
    spool_path = tmp_path / "spool.sqlite"
    try:
        async with gateway_in_process(broker, registry, spool_path, f"gw-{uid}") as gateway:
            publisher = asyncio.create_task(publish_all(broker, f"fleet-{uid}", messages, window=20))
            await eventually(lambda: gateway.stats.stored >= 300, what="load flowing")
            await asyncio.to_thread(broker.stop)  # SIGTERM: Mosquitto saves its queues on the way out
            await asyncio.sleep(0.5)
            await asyncio.to_thread(broker.process.start)
            await asyncio.wait_for(publisher, 240)  # minutes on a busy machine
            await eventually(lambda: records_in(spool_path) >= 2000, timeout=120, what="all stored")
        assert len(set(_msg_ids(spool_path))) == len(_msg_ids(spool_path)) == 2000
    finally:
        broker.stop()


async def test_two_gateways_split_the_fleet_by_canteen(mosquitto: ManagedMosquitto, tmp_path: Path, uid: str) -> None:
    registry = make_registry(uid, canteens=4)
    ids = [c.id for c in registry.canteens]
    messages = records_for(uid, 800, canteens=4)
    east, west = tmp_path / "east.sqlite", tmp_path / "west.sqlite"
    async with (
        gateway_in_process(mosquitto, registry, east, f"east-{uid}", canteens=ids[:2]),
        gateway_in_process(mosquitto, registry, west, f"west-{uid}", canteens=ids[2:]),
    ):
        await publish_all(mosquitto, f"fleet-{uid}", messages)
        await eventually(lambda: records_in(east) + records_in(west) >= 800, what="all stored")

    def canteens(path: Path) -> set[str]:
        spool = Spool(path)
        try:
            return {r.canteen_id for r in spool.all_records()}
        finally:
            spool.close()

    assert canteens(east) == set(ids[:2])
    assert canteens(west) == set(ids[2:])
    assert records_in(east) + records_in(west) == 800
    assert not set(_msg_ids(east)) & set(_msg_ids(west))


async def test_one_message_a_thousand_times_is_stored_once(
    mosquitto: ManagedMosquitto, tmp_path: Path, uid: str
) -> None:
    registry = make_registry(uid)
    _, _, reading = one_of_each(f"cabinet0-{uid}")[2]
    topic = device_topic(uid, DeviceKind.CABINET, Channel.TELEMETRY)
    receipts: list[Receipt] = []
    async with (
        gateway_in_process(mosquitto, registry, tmp_path / "spool.sqlite", f"gw-{uid}") as gateway,
        MqttLink(LinkOptions(host=mosquitto.host, port=mosquitto.port, client_id=f"cabinet0-{uid}")) as device,
    ):
        await device.subscribe([str(topic.with_channel(Channel.RECEIPT))])

        async def collect() -> None:
            async for incoming in device.messages():
                receipts.append(Receipt.model_validate_json(incoming.payload, strict=False))

        collector = asyncio.create_task(collect())
        payload = reading.model_dump_json().encode()
        for _ in range(10):
            await asyncio.gather(*(device.publish(str(topic), payload, qos=1) for _ in range(100)))
        await eventually(lambda: len(receipts) == 1000, timeout=120, what="1000 receipts")
        collector.cancel()
        assert gateway.stats.stored == 1
        assert gateway.stats.duplicates == 999
    assert records_in(tmp_path / "spool.sqlite") == 1
    assert sorted(r.status for r in receipts) == ["duplicate"] * 999 + ["stored"]
    assert {r.msg_id for r in receipts} == {reading.msg_id}  # type: ignore[attr-defined]


async def test_drain_on_stop_then_resume(mosquitto: ManagedMosquitto, tmp_path: Path, uid: str) -> None:
    """A stop in the middle of a backlog acknowledges only what was committed; the next run takes the rest."""
    registry = make_registry(uid)
    spool_path = tmp_path / "spool.sqlite"
    async with gateway_in_process(mosquitto, registry, spool_path, f"gw-{uid}"):
        pass  # creates the persistent session
    await publish_all(mosquitto, f"fleet-{uid}", records_for(uid, 3000))
    # Small batches, so that the stop comes while most of the backlog is still in the broker.
    async with gateway_in_process(mosquitto, registry, spool_path, f"gw-{uid}", max_batch=50) as gateway:
        await eventually(lambda: gateway.stats.stored > 0, what="started")
    first_run = records_in(spool_path)
    async with gateway_in_process(mosquitto, registry, spool_path, f"gw-{uid}") as gateway:
        await eventually(lambda: records_in(spool_path) >= 3000, what="the rest stored")
    assert 0 < first_run < 3000
    assert records_in(spool_path) == 3000
    assert len(set(_msg_ids(spool_path))) == 3000
