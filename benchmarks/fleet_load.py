"""Benchmark: the simulator's load mode (many devices over a few connections, QoS 1) as a ratio to
``mosquitto_pub -l`` publishing the same messages to the same broker in the same run.

    .venv/bin/python -m benchmarks.fleet_load [--messages 50000] [--connections 4]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from broker_config.managed import ManagedMosquitto
from devices.registry import Registry
from simulators.city import generate_city
from simulators.load import load_messages, mosquitto_pub_baseline, publish_load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--connections", type=int, default=4)
    args = parser.parse_args()
    messages = load_messages(Registry.model_validate(generate_city()), args.messages)
    with tempfile.TemporaryDirectory() as tmp:
        broker = ManagedMosquitto(Path(tmp) / "broker", persistence=False)
        broker.start()
        try:
            baseline = mosquitto_pub_baseline(broker.host, broker.port, messages)
            load = asyncio.run(publish_load(broker.host, broker.port, messages, connections=args.connections))
        finally:
            broker.stop()
    print(f"messages:                     {args.messages} (QoS 1, no subscriber)")
    print(f"mosquitto_pub -l:             {baseline.rate:,.0f} msg/s")
    print(f"load mode ({args.connections} connections):   {load.rate:,.0f} msg/s")
    print(f"ratio load / mosquitto_pub:   {load.rate / baseline.rate:.2f}")


if __name__ == "__main__":
    main()
