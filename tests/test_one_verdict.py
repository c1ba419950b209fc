"""One verdict everywhere: a detector says 合格 at 60 % inhibition (GB/T 5009.199: 50 % and above fails), the
platform re-checks it as 不合格, and every face that shows or counts the test says 不合格 and mentions what the
detector said: the kiosk (page and live feed), the parents' page and pushed digest, the canteen page, the
overview, the bulletin (HTML, XLSX, CSV), the trace, the REST API and the CLI."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import zipfile
from pathlib import Path

import openpyxl
import pytest
from fastapi.testclient import TestClient

from broker_config.managed import ManagedMosquitto
from console.feed import AlertFeed
from console.live import LiveTests
from console.web.app import create_app
from devices.topics import Channel, DeviceKind, DeviceTopic
from mqtt.device_link import MqttLink
from mqtt.link_options import LinkOptions
from runtime.clock import FakeClock
from shian.cli import main
from simulators.payloads import PayloadFactory
from tests.console_helpers import login, tenants_registry, write_passwords
from tests.gateway_harness import gateway_in_process
from tests.helpers import eventually
from tests.rules_helpers import MORNING
from wiring.build import build_drain, build_rules, spool_path
from wiring.console import build_console, web_passwords_path
from wiring.settings import Settings

DEVICE_SAID = "检测仪判定合格，平台按 GB/T 5009.199-2003 复核为不合格"


def _disagreeing(device: str) -> bytes:
    test = PayloadFactory(device).test_result(MORNING, fail_rate=0.0)
    return (
        test.model_copy(
            update={
                "sample_name": "豆角",
                "batch_no": "LY-0607",
                "supplier": "绿源蔬菜配送",
                "item_code": "pesticide.op_carbamate",
                "method": "enzyme_inhibition",
                "method_std": "GB/T 5009.199-2003",
                "unit": "%",
                "value": 60.0,
                "result": "pass",  # what the detector says
                "control_delta_a": 0.5,
            }
        )
        .model_dump_json()
        .encode()
    )


@pytest.mark.timeout(600)
async def test_a_test_the_platform_fails_reads_as_failed_everywhere(
    mosquitto: ManagedMosquitto, tmp_path: Path, uid: str, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(data_dir=tmp_path)
    registry, clock = tenants_registry(), FakeClock(MORNING)
    device = "c-a-det"
    async with gateway_in_process(mosquitto, registry, spool_path(settings), f"gw-{uid}", clock=clock) as gateway:
        async with MqttLink(LinkOptions(host=mosquitto.host, port=mosquitto.port, client_id=device)) as link:
            topic = DeviceTopic("c-a", DeviceKind.DETECTOR, device, Channel.EVENT)
            await link.publish(str(topic), _disagreeing(device), qos=1)
        await eventually(lambda: gateway.stats.stored >= 1, what="the detector's test stored")
    drain = build_drain(settings, registry, clock)
    assert drain.drain_once() == 1
    rules, _ = build_rules(settings, registry, clock)
    await rules.step()
    (alert,) = [a for a in rules.engine.store.alerts(state="open") if a.rule == "test.failed"]
    write_passwords(web_passwords_path(settings), registry)
    console = build_console(settings, registry, clock, AlertFeed())
    client = TestClient(create_app(console), follow_redirects=False)
    login(client, "city")
    outputs: dict[str, str] = {}

    # the door and the parents
    _, kiosk = console.store.issue_public_token("c-a", "kiosk", clock.now())
    _, public = console.store.issue_public_token("c-a", "public", clock.now())
    outputs["kiosk page"] = client.get(f"/kiosk/c-a?t={kiosk}").text
    live = LiveTests(spool_path(settings), registry, clock, judge=drain.judge)
    live.take(list(drain.spool.all_records()))
    outputs["kiosk feed"] = json.dumps([row for _, row in live._recent["c-a"]], ensure_ascii=False, default=vars)
    from console.digest.compose import compose, render_text

    digest = compose(registry, console.readings, console.alerts, registry.canteens[0], MORNING.date(), version=1,
                     at=clock.now())  # fmt: skip
    outputs["digest text"] = render_text(digest)
    assert (digest.tests.passed, digest.tests.failed) == (0, 1)
    assert console.digests is not None
    console.digests.add(digest, [])  # as the 17:30 round keeps it
    outputs["parents' page"] = client.get(f"/p/c-a/today?t={public}").text

    # the supervisors
    outputs["canteen page"] = client.get("/canteens/c-a").text
    overview = client.get("/overview").text
    assert "0.0 %" in overview  # one test, none passed: the pass rate counts the platform's verdict
    outputs["trace"] = client.get("/trace?supplier=绿源蔬菜配送&batch=LY-0607").text
    (row,) = client.get("/api/v1/canteens/c-a/tests").json()
    assert (row["result"], row["device_result"]) == ("fail", "pass")
    outputs |= _bulletin(client, MORNING.strftime("%G-W%V"))
    console.close()

    # the operator's command line
    registry_file = tmp_path / "registry.yaml"
    registry_file.write_text(registry.model_dump_json(), encoding="utf-8")
    capsys.readouterr()
    code = await asyncio.to_thread(
        main,
        ["trace", "batch", "LY-0607", "--supplier", "绿源蔬菜配送", "--from", MORNING.date().isoformat(),
         "--to", MORNING.date().isoformat(), "--data-dir", str(tmp_path), "--registry", str(registry_file)],
    )  # fmt: skip
    assert code == 0
    outputs["cli trace"] = capsys.readouterr().out

    for name, text in outputs.items():
        assert "不合格" in text, f"{name} does not say 不合格"
        assert DEVICE_SAID in text, f"{name} does not say what the detector said"
    assert "合格</span>" not in outputs["canteen page"].replace("不合格</span>", "")
    assert alert.canteen_id == "c-a"


def _bulletin(client: TestClient, week: str) -> dict[str, str]:
    """The week's bulletin as a bureau downloads it, in its three formats, as text."""
    outputs: dict[str, str] = {}
    outputs["bulletin html"] = client.get(f"/reports/weekly?period={week}&format=html").text
    workbook = openpyxl.load_workbook(io.BytesIO(client.get(f"/reports/weekly?period={week}&format=xlsx").content))
    outputs["bulletin xlsx"] = json.dumps(
        [[c for c in r if c is not None] for r in workbook["failures"].iter_rows(values_only=True)], ensure_ascii=False
    ) if "failures" in workbook.sheetnames else json.dumps(  # the sheet's name may be its title
        [[c for c in r if c is not None] for ws in workbook.worksheets for r in ws.iter_rows(values_only=True)],
        ensure_ascii=False, default=str,
    )  # fmt: skip
    with zipfile.ZipFile(io.BytesIO(client.get(f"/reports/weekly?period={week}&format=csv").content)) as bundle:
        outputs["bulletin csv"] = "\n".join(
            ",".join(line)
            for name in bundle.namelist()
            for line in csv.reader(io.StringIO(bundle.read(name).decode("utf-8-sig")))
        )
    return outputs
