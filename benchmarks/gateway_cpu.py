"""The gateway's CPU per message, in process and without a broker: precise enough to compare two versions of
the code on a noisy machine, where the throughput benchmark (benchmarks/gateway_throughput.py) is not.

The real ServiceLink, Gateway and Spool (SQLite, fsync) run as `shian run` runs them; only the socket is
replaced. The broker's side is played from bytes made in advance: N cabinet readings as QoS 1 PUBLISH packets,
handed over in chunks of about 12 KB (what a drain read at a time, measured), and a PUBACK for every receipt
the gateway writes. Each round starts on a new spool; the figures are process CPU (both threads) and the event
loop thread's CPU per message, the minimum and median of the rounds.

    .venv/bin/python -m benchmarks.gateway_cpu --messages 60000 --rounds 7
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.gateway_throughput import CANTEEN, DEVICE, TOPIC, registry
from gateway.service import Gateway
from mqtt import wire
from mqtt.link_options import LinkOptions
from mqtt.service_link import ServiceLink, _Protocol
from runtime.clock import SystemClock
from runtime.tuning import tune_for_ingest
from simulators.payloads import PayloadFactory
from spool import Spool

CHUNK_BYTES = 12_000


class _Broker(asyncio.Transport):
    """Stands in for the socket: takes what the link writes, answers its SUBSCRIBE and acknowledges its receipts
    (reading the link's own table of publications in flight rather than parsing what it wrote)."""

    def __init__(self, link: ServiceLink, protocol: _Protocol) -> None:
        super().__init__()
        self.link, self.protocol = link, protocol
        self.loop = asyncio.get_running_loop()
        self.answering = False
        self.closing = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        head = bytes(data[:4])
        if head[0] == wire.PacketType.SUBSCRIBE << 4 | 0x02:  # granted QoS 1, to the packet id it carries
            self.loop.call_soon(self.protocol.data_received, b"\x90\x04" + head[2:4] + b"\x00\x01")
        if not self.answering:
            self.answering = True
            self.loop.call_soon(self._acknowledge)

    def _acknowledge(self) -> None:
        self.answering = False
        if in_flight := list(self.link._in_flight):
            self.protocol.data_received(wire.pubacks(in_flight))

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.closing = True


def _chunks(count: int) -> list[bytes]:
    factory, now = PayloadFactory(DEVICE), dt.datetime.now(dt.UTC)
    packets = [
        wire.publish(
            TOPIC,
            factory.cabinet_reading(now, samples_held=5).model_dump_json().encode(),
            qos=1,
            retain=False,
            packet_id=i % wire.MAX_PACKET_ID + 1,
        )
        for i in range(count)
    ]
    per_chunk = max(1, CHUNK_BYTES // len(packets[0]))
    return [b"".join(packets[i : i + per_chunk]) for i in range(0, count, per_chunk)]


async def _round(chunks: list[bytes], count: int, spool_path: Path) -> tuple[float, float]:
    gateway = Gateway(registry(), SystemClock(), Spool(spool_path))
    link = ServiceLink(LinkOptions(host="in-process", port=1, client_id="bench-cpu", session_expiry_s=3600))
    protocol = _Protocol(link)
    link._transport = _Broker(link, protocol)
    process, thread = time.process_time(), time.thread_time()
    serving = asyncio.create_task(gateway.serve(link))
    for chunk in chunks:
        protocol.data_received(chunk)
        await asyncio.sleep(0)  # a chunk per loop iteration, as from a socket
    while gateway.stats.stored < count:  # counted right after each commit (or with the next one)
        gateway.committed.clear()
        await gateway.committed.wait()
    gateway.request_stop()
    await serving
    process, thread = time.process_time() - process, time.thread_time() - thread
    gateway.spool.close()
    return process / count * 1e6, thread / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=60_000, help="records per round (default 60,000)")
    parser.add_argument("--rounds", type=int, default=7, help="rounds, each on a new spool (default 7)")
    args = parser.parse_args()
    tune_for_ingest()  # as `shian run` does
    chunks = _chunks(args.messages)
    rounds: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for number in range(args.rounds):
            rounds.append(asyncio.run(_round(chunks, args.messages, Path(tmp) / f"spool-{number}.sqlite")))
            print(f"round {number + 1}: process {rounds[-1][0]:.2f} µs/msg, event loop thread {rounds[-1][1]:.2f}")
    process, thread = [r[0] for r in rounds], [r[1] for r in rounds]
    print(f"messages per round:           {args.messages:,} (canteen {CANTEEN}, device {DEVICE})")
    print(f"process CPU per message:      min {min(process):.2f} µs, median {statistics.median(process):.2f} µs")
    print(f"event loop thread per message: min {min(thread):.2f} µs, median {statistics.median(thread):.2f} µs")


if __name__ == "__main__":
    main()
