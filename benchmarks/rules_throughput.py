"""Benchmark: the rules engine's records/s on the realistic mix of the reference city, as a ratio to the
gateway's ingest rate of the same records in the same run; and alerts/s raised with 100,000 alerts open.

The mix (of issue 17's measurement): 70 % camera streams, 15 % cabinet readings, 8 % heartbeats (detectors),
5 % test results of which 1 % fail, 2 % sample retentions, at current timestamps over the city's devices.

1. Ingest: the gateway's own path in process (classify, spool entry, group commit with fsync) of N records, in
   its batches. Rules: the engine applies the same spool in the runner's batches, with its timers.
2. Alerts: failed tests, each raising test.failed (and supplier.batch_failed where its batch failed at another
   canteen too), into a store with 100 alerts open and into one with --open: the cost of an alert should not
   depend on how many are open.

    .venv/bin/python -m benchmarks.rules_throughput [--records 60000] [--rounds 3] [--open 100000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from devices.messages import WireModel
from devices.registry import Registry
from devices.topics import Channel, DeviceKind, DeviceTopic
from gateway.entries import SkewLimits, spool_entry
from gateway.intake import Classifier
from mqtt.bus import Incoming
from rules.config import RulesConfig
from rules.engine import RulesEngine
from rules.store import RulesStore
from runtime.clock import FakeClock
from runtime.logs import configure_logging
from simulators.city import generate_city
from simulators.payloads import PayloadFactory
from spool import Spool, plan

BATCH = 2000  # the gateway's default max_batch
RULES_BATCH = 1000  # the rules runner's batch


#: (share of the mix up to here, kind, channel, how a device's payload factory makes one)
_MIX: list[tuple[float, DeviceKind, Channel, Callable[[PayloadFactory, dt.datetime, int, float], WireModel]]] = [
    (0.70, DeviceKind.CAMERA, Channel.TELEMETRY, lambda f, at, n, fail: f.camera_stream(at)),
    (0.85, DeviceKind.CABINET, Channel.TELEMETRY, lambda f, at, n, fail: f.cabinet_reading(at, samples_held=3)),
    (0.93, DeviceKind.DETECTOR, Channel.TELEMETRY, lambda f, at, n, fail: f.detector_heartbeat(at)),
    (0.98, DeviceKind.DETECTOR, Channel.EVENT, lambda f, at, n, fail: f.test_result(at, fail_rate=fail)),
    (1.00, DeviceKind.CABINET, Channel.EVENT, lambda f, at, n, fail: f.sample_retained(at, "lunch", f"菜{n % 4}", n)),
]


def _mix(registry: Registry, count: int, now: dt.datetime, *, fail_rate: float = 0.01) -> list[tuple[str, bytes]]:
    rng = random.Random(17)
    by_kind: dict[DeviceKind, list[tuple[str, str]]] = {kind: [] for kind in DeviceKind}
    for entry in registry.canteens:
        for device in entry.devices:
            by_kind[device.kind].append((entry.id, device.id))
    factories: dict[str, PayloadFactory] = {}
    messages = []
    for n in range(count):
        roll = rng.random()
        _, kind, channel, make = next(share for share in _MIX if roll < share[0])
        canteen_id, device_id = rng.choice(by_kind[kind])
        factory = factories.setdefault(device_id, PayloadFactory(device_id))
        model = make(factory, now + dt.timedelta(milliseconds=n), n, fail_rate)
        messages.append((str(DeviceTopic(canteen_id, kind, device_id, channel)), model.model_dump_json().encode()))
    return messages


def _ingest(registry: Registry, spool: Spool, messages: list[tuple[str, bytes]], now: dt.datetime) -> float:
    """Seconds the gateway's path takes to classify and commit ``messages``."""
    classify, window = Classifier(registry), SkewLimits().window(now)
    started = time.perf_counter()
    for start in range(0, len(messages), BATCH):
        deliveries = [Incoming(t, p, 1, False, i) for i, (t, p) in enumerate(messages[start : start + BATCH])]
        entries = [spool_entry(d, classify(d), window) for d in deliveries]
        spool.commit_plan(plan(entries))
    return time.perf_counter() - started


def _apply(engine: RulesEngine, spool: Spool) -> tuple[float, int]:
    """Seconds the engine takes to apply the whole spool in the runner's batches, and how many records."""
    applied = 0
    started = time.perf_counter()
    while records := spool.read(engine.store.checkpoint(), RULES_BATCH):
        engine.process(records)
        applied += len(records)
    return time.perf_counter() - started, applied


def _open_alerts(store: RulesStore, count: int, at: dt.datetime) -> None:
    with store.transaction():
        for i in range(count):
            store.raise_alert(
                dedup_key=f"bench-open|{i}",
                rule="test.failed",
                severity="critical",  # the kind escalation looks at
                canteen_id="bench",
                message="open",
                evidence={"i": i},
                at=at,
            )


def main(records: int, rounds: int, open_alerts: int) -> None:
    registry = Registry.model_validate(generate_city())
    devices = sum(len(c.devices) for c in registry.canteens)
    now = dt.datetime.now(dt.UTC)
    messages = _mix(registry, records, now)
    print(f"reference city: {len(registry.canteens)} canteens, {devices} devices; {records} records of the mix")
    ratios = []
    for round_ in range(1, rounds + 1):
        with tempfile.TemporaryDirectory() as tmp:
            spool = Spool(Path(tmp) / "spool.sqlite")
            ingest_s = _ingest(registry, spool, messages, now)
            clock = FakeClock(now + dt.timedelta(seconds=records / 1000))
            engine = RulesEngine(registry, RulesConfig(), RulesStore(Path(tmp) / "rules.sqlite"), clock)
            rules_s, applied = _apply(engine, spool)
            ingest_rate, rules_rate = records / ingest_s, applied / rules_s
            ratios.append(rules_rate / ingest_rate)
            print(
                f"round {round_}: gateway {ingest_rate:,.0f} records/s, rules {rules_rate:,.0f} records/s, "
                f"ratio {ratios[-1]:.2f}"
            )
    print(f"ratio median {statistics.median(ratios):.2f} over {rounds} rounds (goal >= 0.3)")

    failing = _mix(registry, 20_000, now, fail_rate=1.0)
    tests = [m for m in failing if "/detector/" in m[0] and '"test.result"' in m[1].decode()][:3000]
    rates = {n: _alert_rate(registry, tests, now, n) for n in sorted({100, open_alerts})}
    few, many = rates[min(rates)], rates[max(rates)]
    print(
        f"cost of an alert with {max(rates):,} open / with {min(rates):,} open: {few / many:.2f} "
        f"(goal: about 1, flat); with {max(rates):,} open {many:,.0f}/s (goal >= 2,000)"
    )


def _alert_rate(registry: Registry, tests: list[tuple[str, bytes]], now: dt.datetime, open_alerts: int) -> float:
    """Alerts/s the engine raises for ``tests`` (all failing) with ``open_alerts`` already open; the fan-out to
    ``supplier.batch_failed`` (a failed batch at other canteens) is counted and shown apart."""
    with tempfile.TemporaryDirectory() as tmp:
        store = RulesStore(Path(tmp) / "rules.sqlite")
        _open_alerts(store, open_alerts, now)
        spool = Spool(Path(tmp) / "spool.sqlite")
        _ingest(registry, spool, tests, now)
        engine = RulesEngine(registry, RulesConfig(), store, FakeClock(now + dt.timedelta(seconds=30)))
        seconds, _ = _apply(engine, spool)
        raised: dict[str, int] = {}
        for canteen, rule, n in store.open_by(None):
            if canteen != "bench":  # the alerts opened beforehand
                raised[rule] = raised.get(rule, 0) + n
        total = sum(raised.values())
    by_rule = ", ".join(f"{rule} {n:,}" for rule, n in sorted(raised.items()))
    print(
        f"with {open_alerts:,} open: {total:,} alerts raised in {seconds:.2f} s = {total / seconds:,.0f}/s ({by_rule})"
    )
    return total / seconds


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=60_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--open", type=int, default=100_000, dest="open_alerts")
    args = parser.parse_args()
    configure_logging(level="error")  # the figures, not each alert's line
    main(args.records, args.rounds, args.open_alerts)
