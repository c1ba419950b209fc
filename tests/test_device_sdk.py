"""The device SDK on the real Mosquitto and the platform's gateway: a detector process makes 1,000 records
while the broker is SIGKILLed and restarted twice and the device process itself is SIGKILLed and started
again; every record is stored exactly once. And the SDK's own promises: a msg_id is never given twice across a
restart, bad fields are refused before anything is sent, a skewed clock is reported from the receipts."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from broker_config.managed import ManagedMosquitto
from devices.registry import Registry
from gateway.runner import run_gateway
from gateway.service import Gateway
from runtime.clock import SystemClock
from shian_device import Device, DeviceConfig, DeviceKind
from spool.records import SpoolRecord
from tests.children import Child
from tests.helpers import eventually
from tests.sdk_device import result_fields
from wiring.broker import BrokerAddress, gateway_link_options
from wiring.build import build_gateway
from wiring.settings import GatewaySettings, MqttSettings, Settings

CANTEEN, DEVICE = "sdk-canteen", "sdk-canteen-det1"
ROOT = Path(__file__).resolve().parent.parent


def _registry() -> Registry:
    return Registry.model_validate(
        {
            "region": "sdk",
            "canteens": [
                {
                    "id": CANTEEN,
                    "name": "SDK 食堂",
                    "district": "城区",
                    "type": "primary",
                    "testing_tier": "lab",
                    "devices": [{"id": DEVICE, "kind": "detector"}],
                }
            ],
        }
    )


@asynccontextmanager
async def _gateway(tmp: Path, broker: ManagedMosquitto, registry: Registry | None = None) -> AsyncIterator[Gateway]:
    settings = Settings(
        data_dir=tmp, mqtt=MqttSettings(host=broker.host, port=broker.port), gateway=GatewaySettings(client_id="gw-sdk")
    )
    gateway = build_gateway(settings, registry or _registry(), SystemClock())
    task = asyncio.create_task(
        run_gateway(gateway, gateway_link_options(settings, BrokerAddress(broker.host, broker.port)))
    )
    await asyncio.wait_for(gateway.subscribed.wait(), 15)
    try:
        yield gateway
    finally:
        gateway.request_stop()
        await asyncio.wait([task], timeout=10)
        gateway.spool.close()


def _device_process(broker: ManagedMosquitto, state: Path, total: int) -> subprocess.Popen[bytes]:
    """The device as a child process that ends with the test, however the test ends."""
    args = [broker.host, str(broker.port), CANTEEN, DEVICE, str(state), str(total)]
    child = Child([sys.executable, "-m", "tests.sdk_device", *args], cwd=ROOT, log=state.parent / "device.log")
    return child.process


def _stored(gateway: Gateway) -> int:
    return gateway.stats.stored


def _tests(gateway: Gateway) -> list[SpoolRecord]:
    """The device's test results in the spool (its status messages are records too)."""
    return [r for r in gateway.spool.all_records() if r.device_id == DEVICE and b'"test.result"' in r.payload]


async def test_a_thousand_records_survive_two_broker_kills_and_a_device_kill(tmp_path: Path) -> None:
    broker = ManagedMosquitto(tmp_path / "broker")
    broker.start()
    state = tmp_path / "flash"
    try:
        async with _gateway(tmp_path, broker) as gateway:
            device = _device_process(broker, state, 1000)
            await eventually(lambda: _stored(gateway) >= 200, timeout=60, what="200 stored")
            await asyncio.to_thread(broker.kill)
            await asyncio.sleep(1.0)
            await asyncio.to_thread(broker.restart)
            await eventually(lambda: _stored(gateway) >= 450, timeout=60, what="450 stored")
            os.kill(device.pid, signal.SIGKILL)  # the device loses power mid-run
            assert device.wait(10) == -signal.SIGKILL
            device = _device_process(broker, state, 1000)
            await eventually(lambda: _stored(gateway) >= 700, timeout=60, what="700 stored")
            await asyncio.to_thread(broker.kill)
            await asyncio.sleep(1.0)
            await asyncio.to_thread(broker.restart)
            assert await asyncio.to_thread(device.wait, 120) == 0
            await eventually(lambda: len(_tests(gateway)) >= 1000, timeout=120, what="all stored")
            await asyncio.sleep(0.5)  # anything more would be a record stored twice
            records = _tests(gateway)
            samples = Counter(r.payload.split(b'"sample_no":"')[1][:5].decode() for r in records)
            assert len(records) == 1000
            assert len({r.msg_id for r in records}) == 1000
            assert samples == Counter(f"S{n:04d}" for n in range(1, 1001))  # each once, none missing
    finally:
        broker.stop()


async def test_msg_ids_go_on_after_a_restart_and_bad_fields_are_refused_before_sending(tmp_path: Path) -> None:
    broker = ManagedMosquitto(tmp_path / "broker")
    broker.start()
    config = DeviceConfig(CANTEEN, DeviceKind.DETECTOR, DEVICE, broker.host, broker.port, state_dir=tmp_path / "f")
    try:
        async with _gateway(tmp_path, broker) as gateway:
            ids: list[str] = []
            for _ in range(2):  # the device restarts in between
                async with Device(config) as device:
                    await asyncio.wait_for(device.connected.wait(), 10)
                    ids.append(await device.send_test_result(**result_fields(len(ids) + 1)))
                    with pytest.raises(ValueError, match=r"test\.result: value"):
                        await device.send_test_result(**{**result_fields(9), "value": "high"})
                    await device.drained(10)
            assert ids == [f"{DEVICE}-0000000001", f"{DEVICE}-0000000002"]  # the refused one took no id
            assert gateway.stats.accepted["test.result"] == 2
            assert sum(gateway.stats.rejected.values()) == 0

            async with Device(config) as device:
                await asyncio.wait_for(device.connected.wait(), 10)
                skewed = dt.datetime.now().astimezone() - dt.timedelta(hours=30)
                await device.send_test_result(**result_fields(3), ts=skewed)
                await device.drained(10)
                assert device.stats.clock_skew_warnings == 1
    finally:
        broker.stop()


async def test_the_guides_example_runs_as_written(tmp_path: Path) -> None:
    """docs/device-sdk.md's 30-line detector, run as it is against a real broker and the gateway."""
    guide = (ROOT / "docs" / "device-sdk.md").read_text(encoding="utf-8")
    example = guide.split("```python\n", 1)[1].split("```", 1)[0]
    assert len(example.splitlines()) <= 40
    script = tmp_path / "detector.py"
    script.write_text(example, encoding="utf-8")
    broker = ManagedMosquitto(tmp_path / "broker")
    broker.start()
    data = _registry().model_dump(mode="json")
    data["canteens"][0].update(id="jc-cq-001", devices=[{"id": "jc-cq-001-det1", "kind": "detector"}])
    try:
        async with _gateway(tmp_path, broker, Registry.model_validate(data)) as gateway:
            env = {
                **os.environ,
                "SHIAN_BROKER_HOST": broker.host,
                "SHIAN_BROKER_PORT": str(broker.port),
                "SHIAN_DEVICE_STATE": str(tmp_path / "flash"),
                "PYTHONPATH": str(ROOT),
            }
            done = await asyncio.to_thread(
                subprocess.run, [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60
            )
            assert done.returncode == 0, done.stderr
            assert "kept until its receipt: jc-cq-001-det1-0000000002" in done.stdout  # the heartbeat was 1
            await eventually(lambda: gateway.stats.accepted["test.result"] == 1, what="the test stored")
            assert gateway.stats.accepted["detector.heartbeat"] == 1
    finally:
        broker.stop()
