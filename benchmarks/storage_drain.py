"""Benchmark: the storage drain's rate into a real InfluxDB 1.x, as a ratio to a raw line-protocol POST of the
same data to the same server, in the same run.

    .venv/bin/python -m benchmarks.storage_drain [--records 30000] [--rounds 3]

Both write the same points (the drain's own lines, captured first) in batches of the same size to fresh
databases; the drain runs as the platform runs it (``StorageDrain.run``: reading and encoding the next batch
while earlier ones are written) and also reads the spool, decodes each record, maps it and advances its
checkpoint. Each round measures both; the goal is a ratio of at least 0.5 in every round.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import statistics
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from devices.registry import Registry
from runtime.clock import SystemClock
from runtime.logs import configure_logging
from runtime.tuning import tune_for_ingest
from simulators.payloads import PayloadFactory
from spool import NewRecord, Spool
from storage.drain import Batch, StorageDrain
from storage.line_protocol import to_line
from storage.schema import points_for
from storage.writers import InfluxV1Writer
from tests.servers import InfluxDB1

CANTEEN = "bench-c1"


def _registry() -> Registry:
    devices = [{"id": f"bench-cab{i}", "kind": "cabinet"} for i in range(10)]
    return Registry.model_validate(
        {
            "region": "bench",
            "canteens": [{"id": CANTEEN, "name": "基准", "district": "城区", "type": "primary", "devices": devices}],
        }
    )


def _records(count: int) -> list[NewRecord]:
    start = dt.datetime(2026, 11, 25, tzinfo=dt.UTC)
    factories = [PayloadFactory(f"bench-cab{i}") for i in range(10)]
    out = []
    for n in range(count):
        factory = factories[n % 10]
        at = start + dt.timedelta(seconds=n // 10)
        reading = factory.cabinet_reading(at, samples_held=4)
        out.append(
            NewRecord(
                device_id=factory.device_id,
                msg_id=reading.msg_id,
                canteen_id=CANTEEN,
                kind="cabinet",
                channel="telemetry",
                type=reading.type,
                payload=reading.model_dump_json().encode(),
                device_ts=at,
                received_at=at,
            )
        )
    return out


def _post(url: str, body: bytes) -> None:
    request = urllib.request.Request(url, data=body, method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()


GOAL = 0.5


class _Counted(StorageDrain):
    """The drain, saying when it has written ``expected`` records."""

    def __init__(self, *args: Any, expected: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.expected = expected
        self.done = asyncio.Event()
        self.loop = asyncio.get_running_loop()

    def settle(self, batch: Batch) -> None:
        super().settle(batch)
        if self.stats.written_records >= self.expected:
            self.loop.call_soon_threadsafe(self.done.set)


async def _drain_all(spool: Spool, influx: InfluxDB1, into: str, args: argparse.Namespace) -> float:
    """Records/s of the drain running as in the platform, until every record is written."""
    writer = InfluxV1Writer(influx.url, into)
    drain = _Counted(
        spool, _registry(), writer, SystemClock(), batch_size=args.batch, writes_in_flight=args.in_flight,
        expected=args.records,
    )  # fmt: skip
    stop = asyncio.Event()
    start = time.perf_counter()
    running = asyncio.create_task(drain.run(stop))
    await drain.done.wait()
    elapsed = time.perf_counter() - start
    stop.set()
    await running
    return drain.stats.written_records / elapsed


def _round(work: Path, influx: InfluxDB1, lines: list[str], args: argparse.Namespace, n: int) -> float:
    """One round: the raw POST, then the drain of a fresh spool; their ratio."""
    raw, into = f"raw{n}", f"drain{n}"
    influx.create_database(raw)
    influx.create_database(into)
    start = time.perf_counter()
    for i in range(0, len(lines), args.batch):
        _post(f"{influx.url}/write?db={raw}&precision=ns", "\n".join(lines[i : i + args.batch]).encode())
    raw_rate = len(lines) / (time.perf_counter() - start)
    spool = Spool(work / f"spool{n}.sqlite")
    spool.commit(_records(args.records))
    drain_rate = asyncio.run(_drain_all(spool, influx, into, args))
    ratio = drain_rate / raw_rate
    print(
        f"round {n}: raw POST {raw_rate:,.0f} points/s, drain {drain_rate:,.0f} records/s, ratio {ratio:.2f}",
        flush=True,
    )
    return ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=30_000)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--in-flight", type=int, default=2, help="the drain's writes in flight (default 2)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    tune_for_ingest()  # as the platform's process is
    configure_logging(level="warning")  # the figures, not each round's "storage.stopped"
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        influx = InfluxDB1(work / "influx")
        influx.start()
        try:
            spool = Spool(work / "spool0.sqlite")
            spool.commit(_records(args.records))
            lines = [to_line(p) for r in spool.all_records() for p in points_for(r, "城区")]
            spool.close()
            print(f"records: {args.records} (batches of {args.batch}, {args.in_flight} writes in flight)", flush=True)
            ratios = [_round(work, influx, lines, args, n) for n in range(1, args.rounds + 1)]
        finally:
            influx.stop()
    verdict = "met" if min(ratios) >= GOAL else "NOT met"
    print(
        f"ratio drain / raw: median {statistics.median(ratios):.2f}, lowest {min(ratios):.2f} "
        f"(goal >= {GOAL} in every round: {verdict})"
    )


if __name__ == "__main__":
    main()
