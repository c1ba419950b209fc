"""Benchmark: alert latency, from a device publishing a failed test to the alert arriving on the alerts topic,
through the real Mosquitto, the gateway (spool, fsync), the rules engine and its publisher — under a stated
background load of cabinet readings. Each alert's time is split into its stages: the broker to the gateway
(the record's ``received_at``), the gateway's group commit (when the commit holding it returned), the rules
engine (woken by the commit, until its publisher is handed the alert), and the publisher through the broker
to the observer. All four are read on the same wall clock, in one process.

    .venv/bin/python -m benchmarks.alert_latency [--alerts 200] [--load 200] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import statistics
import tempfile
import time
from pathlib import Path

from broker_config.managed import ManagedMosquitto
from devices.registry import Registry
from devices.topics import ALERTS_SUBSCRIPTION, Channel, DeviceKind, DeviceTopic
from gateway.runner import run_gateway
from gateway.service import Gateway
from mqtt.device_link import MqttLink
from mqtt.link_options import LinkOptions
from rules.alerts import Alert
from rules.config import RulesConfig
from rules.engine import RulesEngine
from rules.notify import MqttAlerts
from rules.runner import RulesRunner
from rules.store import RulesStore
from runtime.clock import SystemClock
from runtime.logs import configure_logging
from simulators.payloads import PayloadFactory
from spool import Spool
from spool.write import CommitPlan, Outcome

CANTEEN = "bench-c1"
GOAL_P99_MS = 100.0
STAGES = ("broker to gateway", "gateway commit", "rules engine", "publisher to observer")
CABINETS = [f"bench-cab{i}" for i in range(20)]


def _registry() -> Registry:
    devices = [{"id": "bench-det", "kind": "detector", "heartbeat_s": 3600}]
    devices += [{"id": c, "kind": "cabinet", "heartbeat_s": 3600} for c in CABINETS]
    return Registry.model_validate(
        {
            "region": "bench",
            "canteens": [{"id": CANTEEN, "name": "基准", "district": "城区", "type": "primary", "devices": devices}],
        }
    )


class _TimedSpool(Spool):
    """The gateway's spool, noting when each group commit returned and the last record it held."""

    commits: list[tuple[float, int]]

    def commit_plan(self, planned: CommitPlan) -> list[Outcome]:
        outcomes = super().commit_plan(planned)
        self.commits.append((time.time(), self.last_seq()))
        return outcomes


class _TimedAlerts(MqttAlerts):
    """The rules engine's publisher, noting when it is handed each test.failed alert (by the test's msg_id)."""

    handed: dict[str, float]

    async def notify(self, alert: Alert) -> None:
        if alert.rule == "test.failed" and alert.state == "open":
            self.handed.setdefault(str(alert.evidence[0]["msg_id"]), time.time())
        await super().notify(alert)


async def _background(broker: ManagedMosquitto, rate: float, stop: asyncio.Event) -> int:
    factories = [PayloadFactory(c) for c in CABINETS]
    sent = 0
    async with MqttLink(LinkOptions(host=broker.host, port=broker.port, client_id="bench-load")) as link:
        start = time.monotonic()
        while not stop.is_set():
            factory = factories[sent % len(factories)]
            topic = DeviceTopic(CANTEEN, DeviceKind.CABINET, factory.device_id, Channel.TELEMETRY)
            reading = factory.cabinet_reading(dt.datetime.now(dt.UTC), samples_held=3)
            await link.publish(str(topic), reading.model_dump_json().encode(), qos=1)
            sent += 1
            await asyncio.sleep(max(0.0, sent / rate - (time.monotonic() - start)))
    return sent


async def run(alerts: int, load: float) -> tuple[list[tuple[float, float, float, float]], int, float]:
    """Per alert, its stages in seconds (``STAGES``); the background readings sent; the seconds it took."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        broker = ManagedMosquitto(work / "broker", persistence=False)
        broker.start()
        registry, clock = _registry(), SystemClock()
        spool = _TimedSpool(work / "spool.sqlite")
        spool.commits = []
        gateway = Gateway(registry, clock, spool)
        options = LinkOptions(host=broker.host, port=broker.port, client_id="bench-gw", session_expiry_s=600)
        gateway_task = asyncio.create_task(run_gateway(gateway, options))
        await gateway.subscribed.wait()
        sent_at: dict[str, float] = {}
        observed_at: dict[str, float] = {}
        done = asyncio.Event()
        async with (
            MqttLink(LinkOptions(host=broker.host, port=broker.port, client_id="bench-rules")) as rules_link,
            MqttLink(LinkOptions(host=broker.host, port=broker.port, client_id="bench-observer")) as observer,
            MqttLink(LinkOptions(host=broker.host, port=broker.port, client_id="bench-det")) as detector,
        ):
            engine = RulesEngine(registry, RulesConfig(), RulesStore(work / "rules.sqlite"), clock)
            publisher = _TimedAlerts(rules_link)
            publisher.handed = {}
            runner = RulesRunner(engine, Spool(work / "spool.sqlite"), [publisher], wake=gateway.committed)
            stop_rules, stop_load = asyncio.Event(), asyncio.Event()
            rules_task = asyncio.create_task(runner.run(stop_rules))
            await observer.subscribe([ALERTS_SUBSCRIPTION])

            observer_task = asyncio.create_task(_observe(observer, sent_at, observed_at, alerts, done))
            load_task = asyncio.create_task(_background(broker, load, stop_load))
            await asyncio.sleep(1.0)  # the load is flowing
            factory = PayloadFactory("bench-det")
            topic = str(DeviceTopic(CANTEEN, DeviceKind.DETECTOR, "bench-det", Channel.EVENT))
            started = time.monotonic()
            for n in range(alerts):
                test = factory.test_result(dt.datetime.now(dt.UTC), fail_rate=1.0)
                test = test.model_copy(update={"sample_no": f"S{n}"})
                sent_at[test.msg_id] = time.time()
                await detector.publish(topic, test.model_dump_json().encode(), qos=1)
                await asyncio.sleep(0.05)
            await asyncio.wait_for(done.wait(), 60)
            elapsed = time.monotonic() - started
            stop_load.set()
            background = await load_task
            stop_rules.set()
            await rules_task
            observer_task.cancel()
        gateway.request_stop()
        await gateway_task
        broker.stop()
        return _stages(spool, sent_at, publisher.handed, observed_at), background, elapsed


async def _observe(
    observer: MqttLink, sent_at: dict[str, float], observed_at: dict[str, float], alerts: int, done: asyncio.Event
) -> None:
    """Note when each test's alert arrives on the alerts topic; ``done`` once all have."""
    async for incoming in observer.messages():
        if not incoming.payload:
            continue
        alert = json.loads(incoming.payload)
        if alert["rule"] != "test.failed" or alert["state"] != "open":
            continue
        msg_id = alert["evidence"][0]["msg_id"]
        if msg_id in sent_at and msg_id not in observed_at:
            observed_at[msg_id] = time.time()
            if len(observed_at) == alerts:
                done.set()


def _stages(
    spool: _TimedSpool, sent_at: dict[str, float], handed: dict[str, float], observed_at: dict[str, float]
) -> list[tuple[float, float, float, float]]:
    """Each alert's ``STAGES``, from the wall-clock times noted on its way."""
    stored = {r.msg_id: (r.seq, r.received_at.timestamp()) for r in spool.all_records() if r.msg_id in sent_at}
    stages = []
    for msg_id, sent in sent_at.items():
        seq, received = stored[msg_id]
        committed = next(at for at, last in spool.commits if last >= seq)
        stages.append(
            (received - sent, committed - received, handed[msg_id] - committed, observed_at[msg_id] - handed[msg_id])
        )
    return stages


def _p(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--alerts", type=int, default=200, help="failed tests to publish, 20 per second")
    parser.add_argument("--load", type=float, default=200.0, help="background cabinet readings per second")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    configure_logging(level="error")  # the figures, not each alert's line
    p99s = []
    for round_ in range(1, args.rounds + 1):
        stages, background, elapsed = asyncio.run(run(args.alerts, args.load))
        totals = [sum(s) for s in stages]
        p99s.append(_p(totals, 0.99) * 1000)
        slowest = [s for s in stages if sum(s) >= _p(totals, 0.99)]
        print(
            f"round {round_}: {len(stages)} alerts beside {background / (elapsed + 1.0):.0f} cabinet readings/s: "
            f"p50 {statistics.median(totals) * 1000:.1f} ms, p99 {p99s[-1]:.1f} ms, max {max(totals) * 1000:.1f} ms"
        )
        for i, name in enumerate(STAGES):
            column = [s[i] * 1000 for s in stages]
            in_slowest = statistics.mean(s[i] for s in slowest) * 1000
            print(
                f"    {name:<22} p50 {statistics.median(column):6.1f} ms  p99 {_p(column, 0.99):6.1f} ms  "
                f"in the slowest 1 %: {in_slowest:6.1f} ms"
            )
    verdict = "met" if statistics.median(p99s) < GOAL_P99_MS else "NOT met"
    print(f"alert latency p99, median of {args.rounds} rounds: {statistics.median(p99s):.1f} ms "
          f"(goal < {GOAL_P99_MS:.0f} ms: {verdict})")  # fmt: skip


if __name__ == "__main__":
    main()
