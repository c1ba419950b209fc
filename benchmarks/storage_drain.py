"""Benchmark: the storage drain's rate into a real InfluxDB 1.x, as a ratio to a raw line-protocol POST of the
same data to the same server, in the same run.

    .venv/bin/python -m benchmarks.storage_drain [--records 50000]

Both write the same points (the drain's own lines, captured first) in batches of the same size to two fresh
databases; the drain also reads the spool, decodes each record, maps it to points and advances its checkpoint.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
import urllib.request
from pathlib import Path

from devices.registry import Registry
from runtime.clock import SystemClock
from simulators.payloads import PayloadFactory
from spool import NewRecord, Spool
from storage.drain import StorageDrain
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=5000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        influx = InfluxDB1(work / "influx")
        influx.start()
        try:
            influx.create_database("raw")
            influx.create_database("drain")
            spool = Spool(work / "spool.sqlite")
            spool.commit(_records(args.records))
            lines = [to_line(p) for r in spool.all_records() for p in points_for(r, "城区")]

            start = time.perf_counter()
            for i in range(0, len(lines), args.batch):
                _post(f"{influx.url}/write?db=raw&precision=ns", "\n".join(lines[i : i + args.batch]).encode())
            raw_rate = len(lines) / (time.perf_counter() - start)

            drain = StorageDrain(
                spool, _registry(), InfluxV1Writer(influx.url, "drain"), SystemClock(), batch_size=args.batch
            )
            start = time.perf_counter()
            while drain.drain_once():
                pass
            drain_rate = drain.stats.written_records / (time.perf_counter() - start)
        finally:
            influx.stop()
    print(f"records:                         {args.records} (batches of {args.batch})")
    print(f"raw line-protocol POST:          {raw_rate:,.0f} points/s")
    print(f"drain spool -> InfluxDB 1.6.7:   {drain_rate:,.0f} records/s")
    print(f"ratio drain / raw:               {drain_rate / raw_rate:.2f}")


if __name__ == "__main__":
    main()
