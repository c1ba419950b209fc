"""The receiving ledger (进货台账): each delivery a canteen receives is recorded (from a device through the
contract, or entered in the console), so that the trace lists every canteen that received a batch, tested or
not, ``supplier.batch_failed`` reaches the receivers that never tested it, and the bulletin counts deliveries
never tested."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from zoneinfo import ZoneInfo

from console.bulletin.figures import compile_bulletin
from console.bulletin.periods import month_period
from devices.messages import DeliveryReceived, TestResult
from devices.topics import Channel, DeviceKind
from rules.config import RulesConfig
from rules.engine import RulesEngine
from shian.cli import main
from simulators.payloads import PayloadFactory
from storage.schema import points_for
from tests.console_helpers import CANTEENS, ConsoleRig, csrf_of, hand_entry
from tests.rules_helpers import MORNING
from tests.storage_helpers import new_record, spool_record
from wiring.settings import Settings

SUPPLIER, BATCH = "晋城市绿源蔬菜配送有限公司", "LY20261125-03"


def _delivery(canteen: str, minutes: int) -> DeliveryReceived:
    return DeliveryReceived(
        type="delivery.received",
        msg_id=f"{canteen}-delivery-{minutes}",
        ts=MORNING.replace(hour=6) + dt.timedelta(minutes=minutes),
        supplier=SUPPLIER,
        batch_no=BATCH,
        foods=["豇豆", "小白菜"],
        food_category="vegetable",
        quantity_kg=20.0,
        certificates=["https://certs.example.invalid/LY20261125-03.pdf"],
        received_by="王芳",
    )


def _failed_test(canteen: str) -> TestResult:
    base = PayloadFactory(f"{canteen}-det").test_result(MORNING, fail_rate=0.0)
    return base.model_copy(
        update={
            "supplier": SUPPLIER,
            "batch_no": BATCH,
            "sample_name": "豇豆",
            "item_code": "pesticide.op_carbamate",
            "method": "enzyme_inhibition",
            "method_std": "GB/T 5009.199-2003",
            "unit": "%",
            "value": 71.0,
            "result": "fail",
            "food_category": "vegetable",
        }
    )


def test_a_batch_received_at_three_canteens_and_failing_at_one_reaches_all_three(tmp_path: Path) -> None:
    rig = ConsoleRig(tmp_path)
    engine = RulesEngine(rig.registry, RulesConfig(), rig.rules, rig.clock)
    records = [(c, _delivery(c, n)) for n, c in enumerate(CANTEENS)] + [("c-a", _failed_test("c-a"))]
    for seq, (canteen, model) in enumerate(records, start=1):
        record = spool_record(
            new_record(model, DeviceKind.DETECTOR, Channel.EVENT, canteen=canteen, device=f"{canteen}-det"), seq
        )
        engine.process([record])
        rig.store.write(points_for(record, CANTEENS[canteen][0]))
    held = {a.canteen_id: a for a in rig.rules.alerts() if a.rule == "supplier.batch_failed"}
    assert set(held) == {"c-b", "c-c"}  # the two that received it and never tested it
    assert "城区一小食堂检测不合格" in held["c-b"].message
    assert [a.canteen_id for a in rig.rules.alerts() if a.rule == "test.failed"] == ["c-a"]

    page = rig.client("city").get("/trace", params={"supplier": SUPPLIER, "batch": BATCH}).text
    rows = page.split("<tr")
    for canteen in CANTEENS:
        assert any(f'href="/canteens/{canteen}"' in row for row in rows), canteen
    untested = [row for row in rows if "已收货，未检测" in row]
    assert len(untested) == 2
    assert all("豇豆、小白菜" in row for row in untested)
    assert "1 次检测，涉及 3 个食堂，不合格 1 次" in page

    bulletin = compile_bulletin(
        rig.console.readings,
        rig.rules,
        rig.rules.inspections,
        rig.registry,
        month_period("2026-11", ZoneInfo("Asia/Shanghai")),
    )
    assert bulletin.deliveries == (3, 2)  # three received, two of them never tested


def test_shian_trace_lists_the_receivers_that_never_tested(tmp_path: Path, capsys: object) -> None:
    import sqlite3

    import yaml

    from wiring.build import rules_store_path

    settings = Settings(data_dir=tmp_path)
    rig = ConsoleRig(tmp_path)
    for seq, (canteen, model) in enumerate([("c-b", _delivery("c-b", 1)), ("c-a", _failed_test("c-a"))], start=1):
        record = spool_record(
            new_record(model, DeviceKind.DETECTOR, Channel.EVENT, canteen=canteen, device=f"{canteen}-det"), seq
        )
        rig.store.write(points_for(record, CANTEENS[canteen][0]))
    with sqlite3.connect(tmp_path / "rules.sqlite") as source, sqlite3.connect(rules_store_path(settings)) as copy:
        source.backup(copy)
    registry = tmp_path / "registry.yaml"
    registry.write_text(yaml.safe_dump(rig.registry.model_dump(mode="json"), allow_unicode=True), encoding="utf-8")
    common = ["--data-dir", str(tmp_path), "--registry", str(registry), "--from", "2026-11-01", "--to", "2026-11-30"]
    assert main(["trace", "batch", BATCH, *common]) == 0
    out, err = capsys.readouterr()  # type: ignore[attr-defined]
    assert "城区二小食堂  豇豆、小白菜" in out
    assert "已收货，未检测" in out
    assert "1 deliveries never tested" in err


def test_a_school_records_a_delivery_in_the_console_through_the_gateway(tmp_path: Path) -> None:
    gateway, _, client = hand_entry(tmp_path)
    form = client.get("/canteens/c-a/deliveries/new").text
    hidden = dict(re.findall(r'type="hidden" name="(\w+)" value="([^"]*)"', form))
    posted = {
        **hidden,
        "supplier": SUPPLIER,
        "batch_no": BATCH,
        "foods": "豇豆、小白菜，韭菜",
        "food_category": "vegetable",
        "quantity_kg": "20.5",
        "certificates": "https://certs.example.invalid/a.pdf\nhttps://certs.example.invalid/b.jpg",
        "received_by": "王芳",
        "received_at": "07:10",
    }
    assert client.post("/canteens/c-a/deliveries/new", data=posted).status_code == 303
    (record,) = list(gateway.spool.all_records())
    stored = json.loads(record.payload)
    assert record.type == "delivery.received"
    assert stored["foods"] == ["豇豆", "小白菜", "韭菜"]
    assert stored["certificates"] == ["https://certs.example.invalid/a.pdf", "https://certs.example.invalid/b.jpg"]
    assert stored["entered_by"] == "school-a"
    assert stored["ts"] == "2026-11-25T07:10:00+08:00"
    # refused, naming the field, in the form's language; nothing stored
    csrf = csrf_of(form)
    for change, named in (
        ({"received_at": "09:30"}, "收货时间：不能晚于现在"),
        ({"certificates": "not-a-link"}, "证明链接（检验报告、合格证，每行一个）：填写有误"),
        ({"supplier": ""}, "供应商：必填"),
        ({"quantity_kg": "-3"}, "数量（千克）：请填写数字"),
    ):
        answer = client.post("/canteens/c-a/deliveries/new", data={**posted, **change, "csrf_token": csrf})
        assert answer.status_code == 422, change
        assert named in answer.text, (change, answer.text[-2000:])
    assert gateway.spool.count_records() == 1
    assert client.get("/canteens/c-b/deliveries/new").status_code == 404
