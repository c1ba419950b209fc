"""The gateway's first promise: valid messages of every type are accepted, and every kind of bad input is
dead-lettered with its own reason while the gateway keeps running. Each test runs on the in-memory bus and on
the real Mosquitto."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import functools
import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from devices.messages import DEADLETTER_PAYLOAD_BYTES, MAX_PAYLOAD_BYTES, DeadLetter, Receipt
from devices.registry import Registry
from devices.topics import DEADLETTER_SUBSCRIPTION, Channel, DeviceKind
from gateway.service import Gateway
from mqtt.bus import BusClient
from runtime.clock import FakeClock
from spool import Spool
from tests.conftest import BusFactory
from tests.helpers import NOW, device_topic, eventually, make_registry, one_of_each


@dataclass
class Running:
    gateway: Gateway
    device: BusClient
    dead_letters: list[DeadLetter] = field(default_factory=list)
    receipts: list[tuple[str, Receipt]] = field(default_factory=list)
    task: asyncio.Task[None] | None = None


async def _collect(client: BusClient, running: Running, uid: str) -> None:
    """Receipts and dead letters of this test only (the real broker is shared by the whole session)."""
    while True:
        batch = await client.receive(100)
        client.ack(batch)
        for incoming in batch:
            if incoming.topic.endswith("/receipt"):
                if uid in incoming.topic:
                    receipt = Receipt.model_validate_json(incoming.payload, strict=False)
                    running.receipts.append((incoming.topic, receipt))
                continue
            letter = DeadLetter.model_validate_json(incoming.payload, strict=False)
            if uid in letter.topic:
                running.dead_letters.append(letter)


@pytest.fixture
async def running(bus: BusFactory, uid: str, tmp_path: Path) -> AsyncIterator[Running]:
    registry: Registry = make_registry(uid)
    gateway = Gateway(
        registry, FakeClock(NOW), Spool(tmp_path / "spool.sqlite"), canteens=[c.id for c in registry.canteens]
    )
    async with (
        bus.connect("gateway") as gateway_bus,
        bus.connect("device") as device_bus,
        bus.connect("operator") as operator_bus,
    ):
        running = Running(gateway, device_bus)
        await operator_bus.subscribe([DEADLETTER_SUBSCRIPTION, "shian/v1/+/+/+/receipt"])
        collector = asyncio.create_task(_collect(operator_bus, running, uid))
        running.task = asyncio.create_task(gateway.serve(gateway_bus))
        await eventually(gateway.subscribed.is_set, what="gateway subscribed")
        yield running
        running.task.cancel()
        collector.cancel()
        await asyncio.gather(running.task, collector, return_exceptions=True)


async def test_accepts_a_valid_message_of_every_type(running: Running, uid: str) -> None:
    sent = one_of_each()
    for kind, channel, model in sent:
        topic = device_topic(uid, kind, channel)
        await running.device.publish(str(topic), model.model_dump_json().encode(), qos=1)
    stats = running.gateway.stats
    await eventually(lambda: sum(stats.accepted.values()) == len(sent), what="all accepted")
    assert dict(stats.accepted) == {
        "detector.heartbeat": 1,
        "test.result": 1,
        "cabinet.reading": 1,
        "sample.retained": 1,
        "sample.disposed": 1,
        "camera.stream": 1,
        "ai.violation": 1,
        "device.status": 1,
    }
    assert not stats.rejected
    assert running.dead_letters == []


def _valid_reading() -> dict[str, object]:
    _, _, model = one_of_each()[2]
    data: dict[str, object] = model.model_dump(mode="json")
    return data


def _bad_cases(uid: str) -> list[tuple[str, str, bytes]]:
    """(expected reason, topic, payload) for every kind of bad input the contract names."""
    cabinet = str(device_topic(uid, DeviceKind.CABINET, Channel.TELEMETRY))
    good = _valid_reading()
    missing = dict(good)
    del missing["temp_c"]

    def js(value: object) -> bytes:
        return json.dumps(value).encode()

    return [
        ("invalid_json", cabinet, b'{"type": "cabinet.reading", '),
        ("not_object", cabinet, js([good])),
        ("unknown_type", cabinet, js({**good, "type": "cabinet.explosion"})),
        ("unknown_field", cabinet, js({**good, "humidity_pct": 40})),
        ("missing_field", cabinet, js(missing)),
        ("wrong_type", cabinet, js({**good, "temp_c": "4.5"})),
        ("naive_timestamp", cabinet, js({**good, "ts": "2026-11-25T11:30:00"})),
        ("too_large", cabinet, js({**good, "padding": "x" * MAX_PAYLOAD_BYTES})),
        ("bad_id", f"shian/v1/c0-{uid}/cabinet/cab$inet0-{uid}/telemetry", js(good)),
        ("bad_topic", f"shian/v1/c0-{uid}/cabinet/telemetry", js(good)),
        # the cabinet of canteen 0 speaking for canteen 1
        ("wrong_canteen", f"shian/v1/c1-{uid}/cabinet/cabinet0-{uid}/telemetry", js(good)),
    ]


async def test_each_bad_input_is_dead_lettered_with_its_own_reason(running: Running, uid: str) -> None:
    cases = _bad_cases(uid)
    assert len({reason for reason, _, _ in cases}) == len(cases)
    for _, topic, payload in cases:
        await running.device.publish(topic, payload, qos=1)
    # the gateway is still running and still accepts good input afterwards
    good = device_topic(uid, DeviceKind.CABINET, Channel.TELEMETRY)
    await running.device.publish(str(good), json.dumps(_valid_reading()).encode(), qos=1)

    await eventually(lambda: len(running.dead_letters) == len(cases), what="every case dead-lettered")
    await eventually(lambda: sum(running.gateway.stats.accepted.values()) == 1, what="the good message accepted")
    assert running.task is not None
    assert not running.task.done()

    by_reason = {letter.reason: letter for letter in running.dead_letters}
    assert sorted(by_reason) == sorted(reason for reason, _, _ in cases)
    for reason, topic, payload in cases:
        letter = by_reason[reason]
        assert letter.topic == topic
        # the notice carries the payload whole, or its first DEADLETTER_PAYLOAD_BYTES with its size and hash
        assert base64.b64decode(letter.payload_b64) == payload[:DEADLETTER_PAYLOAD_BYTES]
        assert letter.truncated == (len(payload) > DEADLETTER_PAYLOAD_BYTES)
        assert (letter.payload_size, letter.payload_sha256) == (len(payload), hashlib.sha256(payload).hexdigest())
        assert letter.detail
        assert letter.received_at == NOW
    assert by_reason["wrong_canteen"].client_id == f"cabinet0-{uid}"
    assert by_reason["bad_topic"].client_id is None
    assert "temp_c" in by_reason["wrong_type"].detail


async def test_rejected_record_gets_a_rejected_receipt(running: Running, uid: str) -> None:
    topic = device_topic(uid, DeviceKind.CABINET, Channel.TELEMETRY)
    await running.device.publish(str(topic), json.dumps({**_valid_reading(), "temp_c": "cold"}).encode(), qos=1)
    await eventually(lambda: len(running.receipts) == 1, what="receipt")
    receipt_topic, receipt = running.receipts[0]
    assert receipt_topic == str(topic.with_channel(Channel.RECEIPT))
    assert receipt.status == "rejected"
    assert receipt.msg_id == _valid_reading()["msg_id"]
    assert receipt.reason is not None
    assert receipt.reason.startswith("wrong_type")


async def test_retained_record_replay_is_ignored(bus: BusFactory, uid: str, tmp_path: Path) -> None:
    """A record published with retain is replayed to every new subscriber: only the live copy may count."""
    registry = make_registry(uid)
    topic = device_topic(uid, DeviceKind.CABINET, Channel.TELEMETRY)
    async with bus.connect("device") as device:
        await device.publish(str(topic), json.dumps(_valid_reading()).encode(), qos=1, retain=True)
        # a second, non-retained record afterwards marks the end of what the gateway will receive
        later = {**_valid_reading(), "msg_id": "later"}
        gateway = Gateway(
            registry, FakeClock(NOW), Spool(tmp_path / "spool.sqlite"), canteens=[c.id for c in registry.canteens]
        )
        async with bus.connect("gateway") as gateway_bus:
            task = asyncio.create_task(gateway.serve(gateway_bus))
            await eventually(gateway.subscribed.is_set)
            await device.publish(str(topic), json.dumps(later).encode(), qos=1)
            await eventually(lambda: sum(gateway.stats.accepted.values()) == 1, what="live record accepted")
            await eventually(lambda: gateway.stats.ignored["retained replay"] == 1, what="replay ignored")
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await device.publish(str(topic), b"", qos=1, retain=True)  # clear the retained message


async def test_clock_skew_is_stored_with_both_times_and_flagged(running: Running, uid: str) -> None:
    topic = str(device_topic(uid, DeviceKind.CABINET, Channel.TELEMETRY))
    cases = {
        "ahead-4m": NOW + dt.timedelta(minutes=4),
        "ahead-6m": NOW + dt.timedelta(minutes=6),
        "behind-23h": NOW - dt.timedelta(hours=23),
        "behind-25h": NOW - dt.timedelta(hours=25),
    }
    for msg_id, ts in cases.items():
        payload = {**_valid_reading(), "msg_id": msg_id, "ts": ts.isoformat()}
        await running.device.publish(topic, json.dumps(payload).encode(), qos=1)
    await eventually(lambda: running.gateway.stats.stored == len(cases), what="all stored")
    records = {r.msg_id: r for r in running.gateway.spool.all_records()}
    assert {m for m, r in records.items() if r.skew_flagged} == {"ahead-6m", "behind-25h"}
    assert running.gateway.stats.clock_skew == 2
    await eventually(lambda: len(running.receipts) == len(cases), what="the receipts")
    reasons = {r.msg_id: (r.status, (r.reason or "").split(":")[0]) for _, r in running.receipts}
    assert reasons == {  # the device is told its clock is off, and the record is kept
        "ahead-4m": ("stored", ""),
        "ahead-6m": ("stored", "clock_skew"),
        "behind-23h": ("stored", ""),
        "behind-25h": ("stored", "clock_skew"),
    }
    for msg_id, ts in cases.items():
        assert records[msg_id].device_ts == ts
        assert records[msg_id].received_at == NOW


async def test_an_unusable_msg_id_gets_no_receipt_and_stops_nothing(running: Running, uid: str) -> None:
    """Found by the fuzz test: a control character in msg_id once made the receipt itself invalid and stopped
    the gateway."""
    topic = device_topic(uid, DeviceKind.CABINET, Channel.TELEMETRY)
    await running.device.publish(str(topic), json.dumps({**_valid_reading(), "msg_id": "bad\x7fid"}).encode(), qos=1)
    await running.device.publish(str(topic), json.dumps(_valid_reading()).encode(), qos=1)
    await eventually(lambda: running.gateway.stats.stored == 1, what="the next message stored")
    assert running.gateway.stats.rejected["invalid_value"] == 1
    assert running.task is not None
    assert not running.task.done()
    await eventually(lambda: len(running.receipts) == 1, what="the good message's receipt")
    assert [r.status for _, r in running.receipts] == ["stored"]  # none for an id the device could not have meant


def _has_receipts(running: Running, count: int) -> bool:
    return len(running.receipts) == count


async def test_a_reused_msg_id_is_stored_and_the_device_told(running: Running, uid: str) -> None:
    """The same msg_id for a passing and then a failing test (a counter reset after a reboot): both are stored,
    the second flagged, and its receipt says why; a resend of the second is a duplicate."""
    topic = str(device_topic(uid, DeviceKind.DETECTOR, Channel.EVENT))
    _, _, model = one_of_each(f"detector0-{uid}")[1]
    passing = model.model_copy(update={"msg_id": "n-1", "result": "pass", "sample_no": "S1"})
    failing = model.model_copy(update={"msg_id": "n-1", "result": "fail", "sample_no": "S2"})
    for n, message in enumerate((passing, failing, failing), start=1):  # one at a time: each in a batch of its own
        await running.device.publish(topic, message.model_dump_json().encode(), qos=1)
        await eventually(functools.partial(_has_receipts, running, n), what="its receipt")
    statuses = [(r.status, (r.reason or "").split(":")[0]) for _, r in running.receipts]
    assert statuses == [("stored", ""), ("stored", "msg_id_reused"), ("duplicate", "")]
    stored = list(running.gateway.spool.all_records())
    assert [(r.msg_id, r.msg_id_reused) for r in stored] == [("n-1", False), ("n-1", True)]
    assert running.gateway.stats.msg_id_reused == 1
