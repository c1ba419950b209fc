"""Load mode: many devices multiplexed over a few connections, for throughput tests (not ACL-realistic: one
connection speaks for many devices, which only an open development broker allows)."""

from __future__ import annotations

import asyncio
import datetime as dt
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from devices.registry import Registry
from devices.topics import Channel, DeviceKind, DeviceTopic
from mqtt.device_link import MqttLink
from mqtt.link_options import LinkOptions
from runtime.process import find_program
from simulators.payloads import PayloadFactory


def load_messages(registry: Registry, count: int) -> list[tuple[str, bytes]]:
    """``count`` cabinet readings spread over every cabinet of the registry, each with its own msg_id."""
    cabinets = [(c.id, d.id) for c in registry.canteens for d in c.devices if d.kind is DeviceKind.CABINET]
    factories = {device: PayloadFactory(device) for _, device in cabinets}
    now = dt.datetime.now(dt.UTC)
    messages = []
    for n in range(count):
        canteen, device = cabinets[n % len(cabinets)]
        topic = str(DeviceTopic(canteen, DeviceKind.CABINET, device, Channel.TELEMETRY))
        messages.append((topic, factories[device].cabinet_reading(now, samples_held=3).model_dump_json().encode()))
    return messages


@dataclass(frozen=True)
class LoadResult:
    messages: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.messages / self.seconds


async def publish_load(
    host: str, port: int, messages: list[tuple[str, bytes]], *, connections: int = 4, window: int = 100
) -> LoadResult:
    """Publish at QoS 1 over ``connections`` connections, ``window`` messages in flight on each."""
    shards = [messages[i::connections] for i in range(connections)]
    start = time.perf_counter()

    async def one(n: int, shard: list[tuple[str, bytes]]) -> None:
        async with MqttLink(
            LinkOptions(host=host, port=port, client_id=f"shian-load-{n}", max_inflight=window)
        ) as link:
            for i in range(0, len(shard), window):
                await asyncio.gather(*(link.publish(t, p, qos=1) for t, p in shard[i : i + window]))

    await asyncio.gather(*(one(n, shard) for n, shard in enumerate(shards)))
    return LoadResult(len(messages), time.perf_counter() - start)


def mosquitto_pub_baseline(host: str, port: int, messages: list[tuple[str, bytes]]) -> LoadResult:
    """The same number of QoS 1 messages from ``mosquitto_pub -l`` (one topic, one line each)."""
    pub = find_program("mosquitto_pub", "mosquitto-clients")
    with tempfile.TemporaryDirectory() as tmp:
        lines = Path(tmp) / "lines"
        lines.write_bytes(b"\n".join(payload for _, payload in messages) + b"\n")
        start = time.perf_counter()
        with lines.open("rb") as handle:
            subprocess.run(
                [pub, "-h", host, "-p", str(port), "-q", "1", "-t", messages[0][0], "-l"], stdin=handle, check=True
            )
        return LoadResult(len(messages), time.perf_counter() - start)
