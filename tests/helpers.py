"""Small helpers shared by tests: registries with unique ids, valid payloads, waiting for a condition."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable

from devices.messages import WireModel
from devices.registry import Registry
from devices.topics import Channel, DeviceKind, DeviceTopic
from simulators.payloads import PayloadFactory

NOW = dt.datetime(2026, 11, 25, 11, 30, tzinfo=dt.timezone(dt.timedelta(hours=8)))


def make_registry(uid: str, canteens: int = 2) -> Registry:
    """``canteens`` canteens named ``c{i}-{uid}``, each with a detector, a cabinet and a camera."""
    return Registry.model_validate(
        {
            "region": f"test-{uid}",
            "canteens": [
                {
                    "id": f"c{i}-{uid}",
                    "name": f"测试食堂{i}",
                    "district": "城区",
                    "type": "primary",
                    "testing_tier": "lab",
                    "meals": [{"meal": "lunch", "start": "11:40", "end": "12:30", "dishes": ["米饭", "青菜"]}],
                    "devices": [{"id": f"{kind}{i}-{uid}", "kind": kind} for kind in ("detector", "cabinet", "camera")],
                }
                for i in range(canteens)
            ],
        }
    )


def device_topic(uid: str, kind: DeviceKind, channel: Channel, canteen: int = 0) -> DeviceTopic:
    return DeviceTopic(f"c{canteen}-{uid}", kind, f"{kind}{canteen}-{uid}", channel)


def one_of_each(device_id: str = "dev") -> list[tuple[DeviceKind, Channel, WireModel]]:
    """A valid payload of every message type, with the kind and channel it travels on."""
    f = PayloadFactory(device_id)
    return [
        (DeviceKind.DETECTOR, Channel.TELEMETRY, f.detector_heartbeat(NOW)),
        (DeviceKind.DETECTOR, Channel.EVENT, f.test_result(NOW)),
        (DeviceKind.CABINET, Channel.TELEMETRY, f.cabinet_reading(NOW, samples_held=3)),
        (DeviceKind.CABINET, Channel.EVENT, f.sample_retained(NOW, "lunch", "番茄炒蛋", 1)),
        (DeviceKind.CABINET, Channel.EVENT, f.sample_disposed(NOW, f"{device_id}-s1")),
        (DeviceKind.CAMERA, Channel.TELEMETRY, f.camera_stream(NOW)),
        (DeviceKind.CAMERA, Channel.EVENT, f.ai_violation(NOW)),
        (DeviceKind.CAMERA, Channel.STATUS, f.status("online", NOW)),
    ]


#: The default bound of :func:`eventually`: generous, because the suite must pass on a busy machine; a wait that
#: ends early costs nothing, and a failure names what did not hold.
EVENTUALLY_S = 60.0


async def eventually(condition: Callable[[], bool], timeout: float = EVENTUALLY_S, what: str = "condition") -> None:
    """Wait for ``condition`` to hold: for results that cross a real broker, never a timing assertion. It is
    asked often at first, then less (up to four times a second): conditions that open a database must not load a
    busy machine further."""
    deadline = time.monotonic() + timeout
    pause = 0.01
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not hold within {timeout} s")
        await asyncio.sleep(pause)
        pause = min(pause * 1.5, 0.25)


def records_for(uid: str, count: int, canteens: int = 1) -> list[tuple[str, bytes]]:
    """``count`` valid records with distinct msg_ids, spread over the canteens' detectors and cabinets."""
    factories = {
        (i, kind): PayloadFactory(f"{kind}{i}-{uid}")
        for i in range(canteens)
        for kind in (DeviceKind.CABINET, DeviceKind.DETECTOR)
    }
    out = []
    for n in range(count):
        i, kind = n % canteens, DeviceKind.CABINET if n % 3 else DeviceKind.DETECTOR
        factory = factories[(i, kind)]
        if kind is DeviceKind.CABINET:
            model: WireModel = factory.cabinet_reading(NOW, samples_held=n % 7)
            channel = Channel.TELEMETRY
        else:
            model, channel = factory.test_result(NOW), Channel.EVENT
        out.append((str(device_topic(uid, kind, channel, i)), model.model_dump_json().encode()))
    return out
