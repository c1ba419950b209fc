"""``shian conformance`` on the real Mosquitto: a device built on the SDK passes every check; a faulty one
(a skewed clock, a reused msg_id, a number for the slot, retained telemetry, an irregular heartbeat, a record
never sent again) is named for each fault."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
from collections.abc import AsyncIterator, Coroutine
from pathlib import Path
from typing import Any

import pytest
import yaml

from broker_config.managed import ManagedMosquitto
from devices.topics import Channel, DeviceKind, DeviceTopic
from mqtt.device_link import MqttLink
from mqtt.link_options import LinkOptions
from shian.cli import main
from shian_device import Device, DeviceConfig
from simulators.payloads import PayloadFactory

CANTEEN, GOOD, BAD = "conf-canteen", "conf-canteen-cab-good", "conf-canteen-cab-bad"


@pytest.fixture
def registry_file(tmp_path: Path) -> Path:
    path = tmp_path / "registry.yaml"
    devices = [{"id": d, "kind": "cabinet", "heartbeat_s": 1.0} for d in (GOOD, BAD)]
    canteen = {"id": CANTEEN, "name": "一致性食堂", "district": "城区", "type": "primary", "devices": devices}
    path.write_text(yaml.safe_dump({"region": "conf", "canteens": [canteen]}, allow_unicode=True), encoding="utf-8")
    return path


async def _conformance(
    device: str, registry: Path, behaviour: Coroutine[Any, Any, None], capsys: pytest.CaptureFixture[str]
) -> tuple[int, dict[str, str]]:
    """The CLI watching ``device`` for 9 s; the device starts once the watcher has had time to subscribe."""
    capsys.readouterr()
    # the SDK device resends every 1.5 s here: the bench check holds it to 3 s instead of the contract's 60
    argv = ["conformance", "--device", device, "--duration", "9s", "--resend-within", "3s", "--registry", str(registry)]
    watcher = asyncio.create_task(asyncio.to_thread(main, argv))
    await asyncio.sleep(1.5)
    async with _running(behaviour):
        code = await watcher
    lines = capsys.readouterr().out.splitlines()
    checks = {line.split(":")[0][6:]: line[:4] for line in lines if line[:4] in ("PASS", "FAIL", "----")}
    return code, {**checks, "_report": "\n".join(lines)}


@contextlib.asynccontextmanager
async def _running(coroutine: Coroutine[Any, Any, None]) -> AsyncIterator[None]:
    task = asyncio.ensure_future(coroutine)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _good_cabinet(mosquitto: ManagedMosquitto, state: Path) -> None:
    config = DeviceConfig(
        CANTEEN, DeviceKind.CABINET, GOOD, mosquitto.host, mosquitto.port, state_dir=state, resend_after_s=1.5
    )
    async with Device(config) as device:
        await device.connected.wait()
        sample = {"sample_id": "G-1", "slot": "A3", "meal_date": "2026-11-25", "meal": "lunch"}
        await device.send_sample_retained(**sample, dish_name="米饭", weight_g=150.0, operator="王芳")
        while True:
            await device.send_cabinet_reading(temp_c=4.0, door_open=False, power_ok=True, samples_held=1)
            await asyncio.sleep(1.0)


async def _faulty_cabinet(mosquitto: ManagedMosquitto) -> None:
    """Written without the SDK, as a buggy firmware would behave."""
    factory = PayloadFactory(BAD)
    topic = {c: str(DeviceTopic(CANTEEN, DeviceKind.CABINET, BAD, c)) for c in Channel}
    options = LinkOptions(host=mosquitto.host, port=mosquitto.port, client_id=BAD)
    async with MqttLink(options) as link:
        skew = dt.timedelta(minutes=10)  # its clock runs ten minutes ahead
        for n in range(1000):
            now = dt.datetime.now(dt.UTC) + skew
            reading = factory.cabinet_reading(now, samples_held=1).model_dump(mode="json")
            if n in (1, 2):
                reading["msg_id"] = "same-id"  # a counter that restarted
                reading["temp_c"] = 4.0 + n
            await link.publish(topic[Channel.TELEMETRY], json.dumps(reading).encode(), retain=n % 2 == 0)
            if n == 1:
                sample = factory.sample_retained(now, "lunch", "米饭", 3).model_dump(mode="json")
                await link.publish(topic[Channel.EVENT], json.dumps({**sample, "slot": 3}).encode())
                fine = factory.sample_retained(now, "lunch", "青菜", 4).model_dump(mode="json")
                await link.publish(topic[Channel.EVENT], json.dumps(fine).encode())  # and never again
            await asyncio.sleep(0.2 if n % 4 else 1.8)  # bursts, then silence


async def test_a_device_on_the_sdk_passes_and_a_faulty_one_is_named_fault_by_fault(
    mosquitto: ManagedMosquitto,
    registry_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("SHIAN_MQTT__HOST", mosquitto.host)
    monkeypatch.setenv("SHIAN_MQTT__PORT", str(mosquitto.port))
    try:
        code, good = await _conformance(GOOD, registry_file, _good_cabinet(mosquitto, tmp_path / "flash"), capsys)
        assert code == 0, good["_report"]
        for check in ("topic and id", "schema", "msg_id", "heartbeat", "clock", "resend", "retain", "qos"):
            assert good[check] == "PASS", good["_report"]

        code, bad = await _conformance(BAD, registry_file, _faulty_cabinet(mosquitto), capsys)
        report = bad["_report"]
        assert code == 1
        for check in ("schema", "msg_id", "heartbeat", "clock", "resend", "retain"):
            assert bad[check] == "FAIL", report
        assert "wrong_type" in report
        assert "slot" in report
        assert "same-id" in report
        assert bad["topic and id"] == "PASS"
        assert bad["qos"] == "PASS"
    finally:
        await _clear_retained(mosquitto)


async def _clear_retained(mosquitto: ManagedMosquitto) -> None:
    """Leave nothing retained on the session's shared broker for the tests after this one."""
    options = LinkOptions(host=mosquitto.host, port=mosquitto.port, client_id="conf-clear")
    async with MqttLink(options) as link:
        for device in (GOOD, BAD):
            for channel in (Channel.STATUS, Channel.TELEMETRY):
                await link.publish(str(DeviceTopic(CANTEEN, DeviceKind.CABINET, device, channel)), b"", retain=True)
