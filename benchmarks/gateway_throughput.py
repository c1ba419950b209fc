"""Benchmark: sustained QoS 1 ingest through validate + dedup + spool (fsync) + ack + receipt, as a ratio to
the broker's own QoS 1 delivery rate to ``mosquitto_sub`` on the same machine, in the same run.

Both consumers drain the same backlog: N records queued by the broker for two persistent sessions, one of
``mosquitto_sub`` and one of the gateway. Run it with:

    .venv/bin/python -m benchmarks.gateway_throughput [--messages 50000] [--rounds 3]

Rounds alternate the two consumers, each gateway round on a new spool; the median ratio is the figure.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import resource
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from broker_config.managed import ManagedMosquitto
from devices.registry import Registry
from devices.topics import Channel, DeviceKind, DeviceTopic
from gateway.runner import run_gateway
from gateway.service import Gateway
from mqtt.link_options import LinkOptions
from runtime.clock import SystemClock
from runtime.process import find_program
from runtime.tuning import tune_for_ingest
from simulators.payloads import PayloadFactory
from spool import Spool
from wiring.settings import GatewaySettings

#: Lines per mosquitto_pub run when queueing a round's records.
PUBLISH_CHUNK = 50_000
CANTEEN, DEVICE = "bench-c1", "bench-cab1"
TOPIC = str(DeviceTopic(CANTEEN, DeviceKind.CABINET, DEVICE, Channel.TELEMETRY))


def registry() -> Registry:
    """The benchmark's one canteen with its one cabinet."""
    return Registry.model_validate(
        {
            "region": "bench",
            "canteens": [
                {
                    "id": CANTEEN,
                    "name": "基准食堂",
                    "district": "城区",
                    "type": "primary",
                    "devices": [{"id": DEVICE, "kind": "cabinet"}],
                }
            ],
        }
    )


def _payload_file(path: Path, count: int) -> None:
    factory = PayloadFactory(DEVICE)
    now = dt.datetime.now(dt.UTC)
    with path.open("w", encoding="utf-8") as out:
        for _ in range(count):
            out.write(factory.cabinet_reading(now, samples_held=5).model_dump_json() + "\n")


def _cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _gateway_options(broker: ManagedMosquitto) -> LinkOptions:
    # The receive maximum `shian run` asks for, from the gateway's default configuration.
    receive_maximum = GatewaySettings().receive_maximum
    return LinkOptions(
        host=broker.host,
        port=broker.port,
        client_id="bench-gateway",
        session_expiry_s=3600,
        receive_maximum=receive_maximum,
    )


async def _gateway_session(broker: ManagedMosquitto, spool_path: Path, registry: Registry) -> Gateway:
    gateway = Gateway(registry, SystemClock(), Spool(spool_path))
    task = asyncio.create_task(run_gateway(gateway, _gateway_options(broker)))
    await gateway.subscribed.wait()
    gateway.request_stop()
    await task
    gateway.spool.close()
    return gateway


async def _gateway_drain(broker: ManagedMosquitto, spool_path: Path, registry: Registry, count: int) -> float:
    gateway = Gateway(registry, SystemClock(), Spool(spool_path))
    start = time.perf_counter()
    task = asyncio.create_task(run_gateway(gateway, _gateway_options(broker)))
    while gateway.stats.stored < count:
        await asyncio.sleep(0.005)
        if task.done():
            task.result()
    elapsed = time.perf_counter() - start
    gateway.request_stop()
    await task
    gateway.spool.close()
    return elapsed


@dataclass(frozen=True)
class Round:
    broker_rate: float
    broker_cpu: float  # share of one core while mosquitto_sub drained
    gateway_rate: float
    gateway_cpu: float
    broker_cpu_with_gateway: float

    @property
    def ratio(self) -> float:
        return self.gateway_rate / self.broker_rate


def _round(
    broker: ManagedMosquitto, base: list[str], pub: list[str], *, chunks: list[bytes], spool: Path, count: int
) -> Round:
    """Queue ``count`` records for both sessions, then time mosquitto_sub and the gateway draining them."""
    for chunk in chunks:
        subprocess.run(pub, input=chunk, check=True)
    pid = broker.process.pid
    broker_cpu = _cpu_seconds(pid)
    start = time.perf_counter()
    subprocess.run([*base, "-C", str(count)], check=True, stdout=subprocess.DEVNULL)
    base_elapsed = time.perf_counter() - start
    broker_cpu_base = (_cpu_seconds(pid) - broker_cpu) / base_elapsed

    broker_cpu = _cpu_seconds(pid)
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    elapsed = asyncio.run(_gateway_drain(broker, spool, registry(), count))
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    return Round(
        broker_rate=count / base_elapsed,
        broker_cpu=broker_cpu_base,
        gateway_rate=count / elapsed,
        gateway_cpu=cpu / elapsed,
        broker_cpu_with_gateway=(_cpu_seconds(pid) - broker_cpu) / elapsed,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=50_000, help="records queued per round (default 50,000)")
    parser.add_argument("--rounds", type=int, default=3, help="baseline/gateway pairs, interleaved (default 3)")
    args = parser.parse_args()
    count = args.messages
    sub, pub = find_program("mosquitto_sub", "mosquitto-clients"), find_program("mosquitto_pub", "mosquitto-clients")
    tune_for_ingest()  # as `shian run` does
    rounds: list[Round] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        # No broker persistence: both consumers drain the same in-memory queues, and queueing is not measured.
        broker = ManagedMosquitto(work / "broker", persistence=False)
        broker.start()
        try:
            address = ["-h", broker.host, "-p", str(broker.port)]
            base = [sub, *address, "-q", "1", "-c", "-i", "bench-sub", "-t", TOPIC, "-V", "mqttv311"]
            subprocess.run([*base, "-E"], check=True)  # create the session, then leave
            asyncio.run(_gateway_session(broker, work / "session.sqlite", registry()))
            payloads = work / "payloads.jsonl"
            _payload_file(payloads, count)
            # mosquitto_pub -l does not wait for PUBACKs: fed 150,000 lines at once, Mosquitto 2.0.11 dropped it
            # ("disconnected due to out of memory") and the rest were never queued. 50,000 at a time is safe.
            lines = payloads.read_bytes().splitlines(keepends=True)
            chunks = [b"".join(lines[i : i + PUBLISH_CHUNK]) for i in range(0, len(lines), PUBLISH_CHUNK)]
            publish = [pub, *address, "-q", "1", "-t", TOPIC, "-l"]
            for n in range(args.rounds):
                # A new spool each round: the same records again must not be duplicates.
                r = _round(broker, base, publish, chunks=chunks, spool=work / f"spool-{n}.sqlite", count=count)
                rounds.append(r)
                print(
                    f"round {n + 1}: mosquitto_sub {r.broker_rate:,.0f} msg/s (broker CPU {r.broker_cpu:.0%});"
                    f" gateway {r.gateway_rate:,.0f} msg/s (gateway CPU {r.gateway_cpu:.0%},"
                    f" broker CPU {r.broker_cpu_with_gateway:.0%}); ratio {r.ratio:.2f}",
                    flush=True,
                )
        finally:
            broker.stop()
    ratios = sorted(r.ratio for r in rounds)
    print(f"messages per round:                 {count:,}")
    print(f"broker -> mosquitto_sub (QoS 1):    median {statistics.median(r.broker_rate for r in rounds):,.0f} msg/s")
    print(f"gateway validate+spool+ack+receipt: median {statistics.median(r.gateway_rate for r in rounds):,.0f} msg/s")
    print(
        f"ratio gateway / broker:             median {statistics.median(ratios):.2f}"
        f"  (range {ratios[0]:.2f}-{ratios[-1]:.2f}; target >= 0.5)"
    )


if __name__ == "__main__":
    main()
