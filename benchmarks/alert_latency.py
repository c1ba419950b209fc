"""Benchmark: alert latency, from a device publishing a failed test to the alert arriving on the alerts topic,
through the real Mosquitto, the gateway (spool, fsync), the rules engine and its publisher — under a stated
background load of cabinet readings.

    .venv/bin/python -m benchmarks.alert_latency [--alerts 200] [--load 200]
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
from rules.config import RulesConfig
from rules.engine import RulesEngine
from rules.notify import MqttAlerts
from rules.runner import RulesRunner
from rules.store import RulesStore
from runtime.clock import SystemClock
from simulators.payloads import PayloadFactory
from spool import Spool

CANTEEN = "bench-c1"
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


async def run(alerts: int, load: float) -> tuple[list[float], int, float]:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        broker = ManagedMosquitto(work / "broker", persistence=False)
        broker.start()
        registry, clock = _registry(), SystemClock()
        gateway = Gateway(registry, clock, Spool(work / "spool.sqlite"))
        options = LinkOptions(host=broker.host, port=broker.port, client_id="bench-gw", session_expiry_s=600)
        gateway_task = asyncio.create_task(run_gateway(gateway, options))
        await gateway.subscribed.wait()
        sent_at: dict[str, float] = {}
        latencies: list[float] = []
        done = asyncio.Event()
        async with (
            MqttLink(LinkOptions(host=broker.host, port=broker.port, client_id="bench-rules")) as rules_link,
            MqttLink(LinkOptions(host=broker.host, port=broker.port, client_id="bench-observer")) as observer,
            MqttLink(LinkOptions(host=broker.host, port=broker.port, client_id="bench-det")) as detector,
        ):
            engine = RulesEngine(registry, RulesConfig(), RulesStore(work / "rules.sqlite"), clock)
            runner = RulesRunner(engine, Spool(work / "spool.sqlite"), [MqttAlerts(rules_link)], wake=gateway.committed)
            stop_rules, stop_load = asyncio.Event(), asyncio.Event()
            rules_task = asyncio.create_task(runner.run(stop_rules))
            await observer.subscribe([ALERTS_SUBSCRIPTION])

            async def observe() -> None:
                async for incoming in observer.messages():
                    if not incoming.payload:
                        continue
                    alert = json.loads(incoming.payload)
                    if alert["rule"] != "test.failed" or alert["state"] != "open":
                        continue
                    msg_id = alert["evidence"][0]["msg_id"]
                    if msg_id in sent_at:
                        latencies.append(time.perf_counter() - sent_at.pop(msg_id))
                        if len(latencies) == alerts:
                            done.set()

            observer_task = asyncio.create_task(observe())
            load_task = asyncio.create_task(_background(broker, load, stop_load))
            await asyncio.sleep(1.0)  # the load is flowing
            factory = PayloadFactory("bench-det")
            topic = str(DeviceTopic(CANTEEN, DeviceKind.DETECTOR, "bench-det", Channel.EVENT))
            started = time.monotonic()
            for n in range(alerts):
                test = factory.test_result(dt.datetime.now(dt.UTC), fail_rate=1.0)
                test = test.model_copy(update={"sample_no": f"S{n}"})
                sent_at[test.msg_id] = time.perf_counter()
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
        return latencies, background, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--alerts", type=int, default=200, help="failed tests to publish, 20 per second")
    parser.add_argument("--load", type=float, default=200.0, help="background cabinet readings per second")
    args = parser.parse_args()
    latencies, background, elapsed = asyncio.run(run(args.alerts, args.load))
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    print(f"alerts measured:     {len(latencies)}")
    print(f"background load:     {background / (elapsed + 1.0):.0f} cabinet readings/s (QoS 1) during the run")
    print(f"latency p50:         {statistics.median(latencies) * 1000:.1f} ms")
    print(f"latency p99:         {p99 * 1000:.1f} ms")
    print(f"latency max:         {ordered[-1] * 1000:.1f} ms")


if __name__ == "__main__":
    main()
