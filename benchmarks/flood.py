"""Soak: what two misbehaving devices do to the gateway on the provisioned broker (accounts, ACL, the production
packet limit of 65 KiB). One floods invalid 60 KB payloads (each dead-lettered: the notice must fit the broker's
limit, or the broker drops the gateway); another floods QoS 0 readings; a third, well-behaved, sends records at
QoS 1 throughout. Prints whether the gateway was ever disconnected, its resident memory over the run, and
whether every record of the well-behaved device arrived.

    .venv/bin/python -m benchmarks.flood [--seconds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import structlog
import yaml
from structlog.typing import EventDict

from broker_config.managed import ManagedMosquitto, SecureOptions
from broker_config.provision import PRODUCTION_MAX_PACKET_BYTES, provision
from devices.registry import Registry
from devices.topics import Channel, DeviceKind, DeviceTopic
from gateway.runner import run_gateway
from gateway.service import Gateway
from mqtt.device_link import MqttLink
from mqtt.link_options import LinkOptions
from runtime.clock import SystemClock
from simulators.payloads import PayloadFactory
from spool import Spool

REGISTRY = {
    "region": "flood",
    "canteens": [
        {
            "id": "c1",
            "name": "食堂",
            "district": "城区",
            "type": "primary",
            "devices": [
                {"id": "camera1", "kind": "camera"},
                {"id": "camera2", "kind": "camera"},
                {"id": "cab1", "kind": "cabinet"},
            ],
        }
    ],
    "accounts": [{"username": "gateway", "role": "gateway"}],
}
INVALID = b'{"type": "camera.stream", "junk": "' + b"x" * 60_000 + b'"}'


@dataclass
class FloodResult:
    seconds: float
    invalid_sent: int = 0
    qos0_sent: int = 0
    good_sent: int = 0
    good_stored: int = 0
    dead_lettered: int = 0
    connections: int = 0
    rss_mb: list[float] = field(default_factory=list)  # sampled every second


def _rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


async def _until(deadline: float) -> bool:
    await asyncio.sleep(0)
    return time.monotonic() < deadline


Options = Callable[..., LinkOptions]


async def _flood(
    options: Options, topic: DeviceTopic, payload: Callable[[], bytes], *, qos: int, deadline: float, pause: float = 0.0
) -> int:
    """``topic``'s device publishes ``payload()`` until ``deadline``, ``pause`` seconds apart; how many it sent."""
    sent = 0
    async with MqttLink(options(topic.device_id)) as link:
        while await _until(deadline):
            await link.publish(str(topic), payload(), qos=qos)
            sent += 1
            if pause:
                await asyncio.sleep(pause)
    return sent


def _telemetry(kind: DeviceKind, device: str) -> DeviceTopic:
    return DeviceTopic("c1", kind, device, Channel.TELEMETRY)


def _camera_stream(factory: PayloadFactory) -> bytes:
    return factory.camera_stream(dt.datetime.now(dt.UTC)).model_dump_json().encode()


def _cabinet_reading(factory: PayloadFactory) -> bytes:
    return factory.cabinet_reading(dt.datetime.now(dt.UTC), samples_held=1).model_dump_json().encode()


async def _sample(deadline: float, result: FloodResult) -> None:
    while await _until(deadline):
        result.rss_mb.append(round(_rss_mb(), 1))
        await asyncio.sleep(1.0)


def _log_nothing() -> None:
    """Kept log lines would grow the memory measured."""

    def drop(_: Any, __: str, event: EventDict) -> EventDict:
        raise structlog.DropEvent

    structlog.configure(processors=[drop], cache_logger_on_first_use=False)


async def run_flood(workdir: Path, seconds: float, receive_maximum: int = 8192) -> FloodResult:
    registry = Registry.model_validate(REGISTRY)
    files = provision(registry, workdir / "provisioned", persistence_dir=workdir / "data")
    passwords: dict[str, str] = yaml.safe_load(files.credentials.read_text(encoding="utf-8"))
    secure = SecureOptions(password_file=files.passwd, acl_file=files.acl, max_packet_bytes=PRODUCTION_MAX_PACKET_BYTES)
    broker = ManagedMosquitto(workdir / "broker", secure=secure)
    broker.start()

    def options(user: str, **kw: object) -> LinkOptions:
        password = passwords[user]
        return LinkOptions(host=broker.host, port=broker.port, client_id=user, username=user, password=password, **kw)  # type: ignore[arg-type]

    result = FloodResult(seconds)
    logging_before = structlog.get_config()
    _log_nothing()
    gateway = Gateway(registry, SystemClock(), Spool(workdir / "spool.sqlite"))
    task = asyncio.create_task(
        run_gateway(gateway, options("gateway", session_expiry_s=3600, receive_maximum=receive_maximum))
    )
    await asyncio.wait_for(gateway.subscribed.wait(), 30)
    deadline = time.monotonic() + seconds
    result.invalid_sent, result.qos0_sent, result.good_sent, _ = await asyncio.gather(
        _flood(options, _telemetry(DeviceKind.CAMERA, "camera1"), lambda: INVALID, qos=1, deadline=deadline),
        _flood(
            options,
            _telemetry(DeviceKind.CAMERA, "camera2"),
            partial(_camera_stream, PayloadFactory("camera2")),
            qos=0,
            deadline=deadline,
        ),
        # the good device: QoS 1 at 100 a second, every record of which must be stored
        _flood(
            options,
            _telemetry(DeviceKind.CABINET, "cab1"),
            partial(_cabinet_reading, PayloadFactory("cab1")),
            qos=1,
            deadline=deadline,
            pause=0.01,
        ),
        _sample(deadline, result),
    )
    for _ in range(300):  # let the gateway take what is still queued for it
        if gateway.stats.accepted["cabinet.reading"] >= result.good_sent:
            break
        await asyncio.sleep(0.1)
    gateway.request_stop()
    await asyncio.wait([task], timeout=15)
    structlog.configure(**logging_before)
    result.connections = gateway.stats.connections
    result.good_stored = sum(1 for r in gateway.spool.all_records() if r.device_id == "cab1")
    result.dead_lettered = gateway.spool.count_dead_letters()
    gateway.spool.close()
    broker.stop()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0, help="how long the devices flood (default 60)")
    parser.add_argument(
        "--receive-maximum", type=int, default=8192, help="the gateway's (gateway.receive_maximum, default 8192)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = asyncio.run(run_flood(Path(tmp), args.seconds, args.receive_maximum))
    limits = f"max_packet_size {PRODUCTION_MAX_PACKET_BYTES}, gateway receive maximum {args.receive_maximum}"
    print(f"flood of {result.seconds:.0f} s on the provisioned broker ({limits})")
    print(f"invalid 60 KB payloads sent:  {result.invalid_sent:,} (dead-lettered: {result.dead_lettered:,})")
    print(f"QoS 0 readings sent:          {result.qos0_sent:,}")
    print(f"good QoS 1 records:           {result.good_stored:,} of {result.good_sent:,} stored")
    print(f"gateway connections:          {result.connections} (1: never disconnected)")
    print(f"process RSS, MB:              start {result.rss_mb[0]}, max {max(result.rss_mb)}, end {result.rss_mb[-1]}")
    print(f"RSS every 10 s, MB:           {', '.join(map(str, result.rss_mb[::10]))}")


if __name__ == "__main__":
    main()
