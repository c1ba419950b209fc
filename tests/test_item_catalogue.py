"""The item catalogue is part of the contract: a code it does not know is refused with its own reason, on the
wire with a receipt that names it; conformance lists the items a device sent; a region extends the catalogue in
its registry; and the platform's verdict is each item's limit under its standard."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from broker_config.managed import ManagedMosquitto
from console.words import Words
from devices.items import BUILTIN, Item, catalogue_table
from devices.messages import TestResult
from devices.reasons import Reason
from devices.registry import Registry
from devices.topics import Channel, DeviceKind, DeviceTopic
from gateway.conformance import Seen, judge
from gateway.intake import Accepted, Classifier, Rejected
from mqtt.bus import Incoming
from rules.config import RulesConfig
from rules.units.verdict import judged_verdict, platform_verdict
from shian_device import Device, DeviceConfig
from tests.gateway_harness import gateway_in_process
from tests.helpers import eventually

CANTEEN, DETECTOR = "item-canteen", "item-canteen-det1"
BORAX: dict[str, object] = {
    "code": "adulterant.borax",
    "zh": "硼砂",
    "en": "Borax",
    "group": "adulterant",
    "categories": ["grain", "other"],
    "standards": [{"code": "KJ 201910", "method": "spectrophotometry", "unit": "mg/kg", "limit": 10}],
}


def _registry(items: list[dict[str, object]] | None = None) -> Registry:
    canteen = {
        "id": CANTEEN,
        "name": "目录食堂",
        "district": "城区",
        "type": "primary",
        "devices": [{"id": DETECTOR, "kind": "detector"}],
    }
    return Registry.model_validate({"region": "items", "canteens": [canteen], "items": items or []})


def _test(**changes: object) -> dict[str, object]:
    fields: dict[str, object] = {
        "sample_no": "S-1",
        "sample_name": "小白菜",
        "food_category": "vegetable",
        "supplier": "泽州县丰收农产品合作社",
        "batch_no": "B-1",
        "item_code": "pesticide.op_carbamate",
        "method": "enzyme_inhibition",
        "method_std": "GB/T 5009.199-2003",
        "value": 20.0,
        "unit": "%",
        "result": "pass",
        "operator": "王芳",
    }
    return {**fields, **changes}


def _incoming(n: int, **changes: object) -> Incoming:
    topic = str(DeviceTopic(CANTEEN, DeviceKind.DETECTOR, DETECTOR, Channel.EVENT))
    payload = {"type": "test.result", "msg_id": f"m-{n}", "ts": "2026-11-25T09:00:00+08:00", **_test(**changes)}
    return Incoming(topic, TestResult.model_validate(payload).model_dump_json().encode(), 1, False, 0)


def test_an_unknown_item_is_refused_with_its_own_reason_naming_it() -> None:
    decision = Classifier(_registry())(_incoming(1, item_code="pesticide.chlorpyrifos"))
    assert isinstance(decision, Rejected)
    assert decision.reason is Reason.UNKNOWN_ITEM
    assert "pesticide.chlorpyrifos" in decision.detail
    assert "pesticide.op_carbamate" in decision.detail  # the vendor learns what is known


def test_a_method_the_item_is_not_tested_by_is_refused_naming_both() -> None:
    decision = Classifier(_registry())(_incoming(1, method="colloidal_gold", unit="qualitative", value=None))
    assert isinstance(decision, Rejected)
    assert decision.reason is Reason.INVALID_VALUE
    assert "pesticide.op_carbamate" in decision.detail
    assert "colloidal_gold" in decision.detail


async def test_a_device_sending_an_unknown_item_gets_a_rejected_receipt_naming_it(
    mosquitto: ManagedMosquitto, tmp_path: Path
) -> None:
    rejected: list[tuple[str, str]] = []
    config = DeviceConfig(
        CANTEEN, DeviceKind.DETECTOR, DETECTOR, mosquitto.host, mosquitto.port, state_dir=tmp_path / "flash"
    )
    device = Device(config, on_rejected=lambda msg_id, reason: rejected.append((msg_id, reason)))
    async with gateway_in_process(mosquitto, _registry(), tmp_path / "spool.sqlite", "gw-items") as gateway, device:
        await device.connected.wait()
        msg_id = await device.send_test_result(**_test(item_code="pesticide.chlorpyrifos"))
        await eventually(lambda: bool(rejected), what="the receipt")
    assert rejected[0][0] == msg_id
    assert rejected[0][1].startswith("unknown_item")
    assert "pesticide.chlorpyrifos" in rejected[0][1]
    assert gateway.stats.rejected[Reason.UNKNOWN_ITEM] >= 1  # a resend before its receipt is refused again


def test_conformance_lists_the_items_by_name_and_fails_on_an_unknown_code() -> None:
    registry = _registry()
    now = dt.datetime(2026, 11, 25, 1, 0, tzinfo=dt.UTC)
    known = [Seen(now, _incoming(n)) for n in range(3)]
    [items] = [f for f in judge(known, registry, DETECTOR, dt.timedelta(minutes=1)) if f.check == "items"]
    assert items.verdict == "PASS"
    assert "有机磷和氨基甲酸酯类农药" in items.detail
    assert "x3" in items.detail

    odd = [*known, Seen(now, _incoming(9, item_code="pesticide.chlorpyrifos"))]
    findings = {f.check: f for f in judge(odd, registry, DETECTOR, dt.timedelta(minutes=1))}
    assert findings["items"].verdict == "FAIL"
    assert "pesticide.chlorpyrifos" in findings["items"].detail
    assert findings["schema"].verdict == "PASS"  # said once, under its own check


def test_a_region_adds_its_own_item_named_and_rechecked_by_its_limit() -> None:
    registry = _registry([BORAX])
    assert "adulterant.borax" in registry.catalogue
    assert "adulterant.borax" not in BUILTIN
    assert Words("zh", registry.catalogue)("item", "adulterant.borax") == "硼砂"
    assert Words("en", registry.catalogue)("item", "adulterant.borax") == "Borax"
    over = _incoming(
        1,
        item_code="adulterant.borax",
        method="spectrophotometry",
        method_std="KJ 201910",
        value=12.5,
        unit="mg/kg",
        food_category="grain",
    )
    decision = Classifier(registry)(over)
    assert isinstance(decision, Accepted)
    assert isinstance(decision.message, TestResult)
    assert judged_verdict(decision.message, RulesConfig(), registry.catalogue) == "fail"
    # the same code in a region that does not define it is refused
    assert isinstance(Classifier(_registry())(over), Rejected)


def test_a_region_cannot_redefine_a_built_in_item() -> None:
    with pytest.raises(ValueError, match=r"item 'vetdrug.clenbuterol' is already in the catalogue"):
        _registry([{**BORAX, "code": "vetdrug.clenbuterol"}])


def _verdict(**changes: object) -> str | None:
    message = TestResult.model_validate(
        {"type": "test.result", "msg_id": "m", "ts": "2026-11-25T09:00:00+08:00", **_test(**changes)}
    )
    return platform_verdict(message, RulesConfig(), BUILTIN)


def test_the_verdict_is_the_items_limit_under_its_standard() -> None:
    assert _verdict(value=50.0) == "fail"  # GB/T 5009.199-2003: exactly 50 % is positive
    assert _verdict(value=45.0) == "suspect"
    assert _verdict(value=60.0, method_std="NY/T 448-2001") == "suspect"  # 70 % there
    assert _verdict(value=60.0, method_std="DB14/T 1234-2020") == "fail"  # unlisted: the strictest, 50 %
    nitrite = {
        "item_code": "additive.nitrite",
        "method": "spectrophotometry",
        "unit": "mg/kg",
        "method_std": "GB 5009.33-2016",
        "food_category": "meat",
    }
    assert _verdict(**nitrite, value=30.0) == "pass"  # a content fails only above its limit
    assert _verdict(**nitrite, value=30.1) == "fail"
    strip = {
        "item_code": "vetdrug.clenbuterol",
        "method": "colloidal_gold",
        "unit": "qualitative",
        "value": None,
        "method_std": "KJ 201706",
        "food_category": "meat",
    }
    assert _verdict(**strip) is None  # the device reads a strip


def test_the_published_table_lists_every_item_and_standard() -> None:
    table = catalogue_table()
    for item in BUILTIN:
        for standard in item.standards:
            assert f"| `{item.code}` | {item.zh} | {item.en} |" in table
            assert standard.code in table
    assert table.count("\n") == 2 + sum(len(item.standards) for item in BUILTIN)
    assert isinstance(BUILTIN.get("additive.nitrite"), Item)
