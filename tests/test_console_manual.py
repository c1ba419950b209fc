"""Strip results entered by hand in the console: through the gateway's own intake (validation, dedup, spool),
on to storage and the rules engine, marked with who entered them; and no device can pretend to be one."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from broker_config.web_passwords import WebPasswords
from console.feed import AlertFeed
from console.store import ConsoleStore
from console.web.app import create_app
from devices.registry import RegistryError, manual_device_id, parse_registry
from devices.topics import Channel, DeviceKind, DeviceTopic
from gateway.intake import Accepted, Classifier, Rejected
from mqtt.bus import Incoming
from runtime.clock import FakeClock
from simulators.payloads import PayloadFactory
from tests.console_helpers import csrf_of, hand_entry, login, tenants_registry, write_passwords
from tests.rules_helpers import MORNING
from wiring.build import build_drain, build_gateway, build_rules
from wiring.console import build_console, web_passwords_path
from wiring.settings import Settings

ENZYME = "pesticide.op_carbamate|GB/T 5009.199-2003|enzyme_inhibition"
CLENBUTEROL = "vetdrug.clenbuterol|KJ 201706|colloidal_gold"
#: One delivery's shared fields and its first sample row, as the form posts them.
STRIP = {
    "supplier": "泽州县丰收农产品合作社",
    "batch_no": "B-77",
    "operator": "李军",
    "sample_no-0": "S-0001",
    "sample_name-0": "小白菜",
    "food_category-0": "vegetable",
    "test-0": ENZYME,
    "value-0": "62.5",
    "result-0": "fail",
}


def test_a_strip_result_entered_in_the_form_is_stored_once_raises_test_failed_and_shows_who(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    registry, clock = tenants_registry(), FakeClock(MORNING)
    gateway = build_gateway(settings, registry, clock)
    drain = build_drain(settings, registry, clock)
    rules, _ = build_rules(settings, registry, clock)
    write_passwords(web_passwords_path(settings), registry)
    console = build_console(settings, registry, clock, AlertFeed(), manual_intake=gateway.submit_manual)
    client = TestClient(create_app(console), follow_redirects=False)
    login(client, "school-a")

    form = client.get("/canteens/c-a/tests/new").text
    hidden = dict(re.findall(r'type="hidden" name="(\w+)" value="([^"]*)"', form))
    read_at = re.search(r'name="read_at" type="time" value="([^"]*)"', form)
    assert read_at is not None  # the form offers the time the strip was read, now by default
    posted = {**STRIP, **hidden, "read_at": read_at.group(1)}
    first = client.post("/canteens/c-a/tests/new", data=posted)
    assert first.status_code == 303
    assert first.headers["location"] == "/canteens/c-a"
    assert "第 1 行（小白菜）：已入库" in client.get("/canteens/c-a").text
    clock.advance(dt.timedelta(seconds=30))
    client.post("/canteens/c-a/tests/new", data=posted)  # the same form submitted again, later
    assert "重复提交" in client.get("/canteens/c-a").text
    (record,) = list(gateway.spool.all_records())
    assert record.device_id == manual_device_id("c-a")
    assert record.canteen_id == "c-a"
    assert json.loads(record.payload)["entered_by"] == "school-a"
    assert gateway.stats.stored == 1
    assert gateway.stats.duplicates == 1

    assert drain.drain_once() == 1
    asyncio.run(rules.step())
    (alert,) = rules.engine.store.alerts(state="open")
    assert alert.rule == "test.failed"
    assert alert.canteen_id == "c-a"
    page = client.get("/canteens/c-a").text
    assert "手工录入: school-a" in page
    assert "李军" in page
    assert "不合格" in page


def test_several_samples_of_one_delivery_are_entered_at_once_sharing_what_they_share(tmp_path: Path) -> None:
    gateway, _, client = hand_entry(tmp_path)
    form = client.get("/canteens/c-a/tests/new").text
    hidden = dict(re.findall(r'type="hidden" name="(\w+)" value="([^"]*)"', form))
    assert int(hidden["rows"]) >= 3
    assert "有机磷和氨基甲酸酯类农药 · 酶抑制法 · GB/T 5009.199-2003（%）" in form  # the standard follows the item
    rows = {
        **STRIP,
        "sample_no-0": "",  # numbered for the school
        "sample_name-1": "菠菜",
        "food_category-1": "vegetable",
        "test-1": ENZYME,
        "value-1": "12.0",
        "result-1": "pass",
        "sample_name-2": "猪肉",
        "food_category-2": "meat",
        "test-2": CLENBUTEROL,
        "value-2": "",
        "result-2": "pass",
    }
    answer = client.post("/canteens/c-a/tests/new", data={**rows, **hidden, "read_at": "07:40"})
    assert answer.status_code == 303
    stored = [json.loads(r.payload) for r in gateway.spool.all_records()]
    assert [s["sample_name"] for s in stored] == ["小白菜", "菠菜", "猪肉"]
    assert {(s["supplier"], s["batch_no"], s["operator"]) for s in stored} == {
        ("泽州县丰收农产品合作社", "B-77", "李军")
    }
    assert {s["ts"] for s in stored} == {"2026-11-25T07:40:00+08:00"}
    assert stored[2]["unit"] == "qualitative"
    assert stored[2]["value"] is None
    assert stored[2]["method_std"] == "KJ 201706"
    assert stored[0]["sample_no"].startswith("20261125-")
    assert len({s["sample_no"] for s in stored}) == 3
    page = client.get("/canteens/c-a").text
    assert "第 3 行（猪肉）：已入库" in page


def test_the_form_says_what_is_wrong_and_stores_nothing(tmp_path: Path) -> None:
    gateway, console, client = hand_entry(tmp_path)
    csrf = csrf_of(client.get("/canteens/c-a/tests/new").text)
    posted = {**STRIP, "value-0": "", "read_at": "08:00", "csrf_token": csrf, "form_id": "f1"}
    bad = client.post("/canteens/c-a/tests/new", data=posted)
    assert bad.status_code == 422
    assert "第 1 行 结果值：请填写读数（%）" in bad.text
    assert list(gateway.spool.all_records()) == []
    # Only a school enters its own results: a district may not, another school's canteen does not exist.
    assert login(TestClient(create_app(console)), "district-cq").status_code == 200
    district = TestClient(create_app(console), follow_redirects=False)
    login(district, "district-cq")
    assert district.get("/canteens/c-a/tests/new").status_code == 403
    assert client.get("/canteens/c-b/tests/new").status_code == 404


def test_no_device_can_claim_entered_by_or_publish_as_the_manual_detector() -> None:
    registry = tenants_registry()
    classify = Classifier(registry)
    result = PayloadFactory("c-a-det").test_result(MORNING, fail_rate=0.0)
    topic = DeviceTopic("c-a", DeviceKind.DETECTOR, "c-a-det", Channel.EVENT)
    honest = classify(Incoming(str(topic), result.model_dump_json().encode(), 1, False, 1))
    assert isinstance(honest, Accepted)
    claimed = result.model_copy(update={"entered_by": "school-a"}).model_dump_json().encode()
    refused = classify(Incoming(str(topic), claimed, 1, False, 2))
    assert isinstance(refused, Rejected)
    assert refused.reason == "invalid_value"
    assert "entered_by" in refused.detail
    manual = DeviceTopic("c-a", DeviceKind.DETECTOR, manual_device_id("c-a"), Channel.EVENT)
    impostor = classify(Incoming(str(manual), result.model_dump_json().encode(), 1, False, 3))
    assert isinstance(impostor, Rejected)
    assert impostor.reason == "unknown_device"


def test_the_registry_refuses_a_device_named_like_the_manual_detector() -> None:
    text = """
region: r
canteens:
  - id: c1
    name: 一小
    district: d
    type: primary
    devices:
      - {id: c1-manual, kind: detector}
"""
    with pytest.raises(RegistryError, match=r"<registry>:9: device id 'c1-manual' ends in '-manual'"):
        parse_registry(text)


def test_web_passwords_are_argon2id_and_never_clear_text(tmp_path: Path) -> None:
    path = tmp_path / "web-passwords.yaml"
    web = write_passwords(path, tenants_registry())
    content = path.read_text()
    assert "pw-school-a" not in content
    assert content.count("$argon2id$") == 5
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert WebPasswords.load(path).verify("school-a", "pw-school-a-long-enough")
    assert not web.verify("school-a", "pw-school-b-long-enough")
    assert not web.verify("nobody", "x")


def test_provisioning_writes_the_consoles_argon2id_hashes_and_keeps_them_until_a_rotation(tmp_path: Path) -> None:
    from broker_config.provision import provision

    registry = tenants_registry()
    out = tmp_path / "broker"
    first = provision(registry, out, persistence_dir=tmp_path)
    credentials = yaml.safe_load(first.credentials.read_text())
    hashes = yaml.safe_load(first.web_passwords.read_text())
    assert set(hashes) == {a.username for a in registry.accounts}  # people, not devices
    assert all(h.startswith("$argon2id$") for h in hashes.values())
    assert not any(password in first.web_passwords.read_text() for password in credentials.values())
    web = WebPasswords.load(first.web_passwords)
    assert web.verify("school-a", credentials["school-a"])
    again = provision(registry, out, persistence_dir=tmp_path)  # nothing changed: the same hashes
    assert yaml.safe_load(again.web_passwords.read_text()) == hashes
    rotated = provision(registry, out, rotate=["school-a"], persistence_dir=tmp_path)
    new_password = yaml.safe_load(rotated.credentials.read_text())["school-a"]
    web.refresh()  # a running console rereads the file when it changes
    assert web.verify("school-a", new_password)
    assert not web.verify("school-a", credentials["school-a"])


def test_the_console_token_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from shian.cli import main

    registry_file = tmp_path / "registry.yaml"
    registry_file.write_text(yaml.safe_dump(tenants_registry().model_dump(mode="json")), encoding="utf-8")
    common = ["--registry", str(registry_file), "--data-dir", str(tmp_path)]
    assert main(["console", "token", "issue", "district-zz", "--label", "教育局", *common]) == 0
    token = capsys.readouterr().out.strip()
    assert token.startswith("shian_")
    store = ConsoleStore(tmp_path / "console.sqlite")
    assert store.token_user(token) == "district-zz"
    assert main(["console", "token", "list", *common]) == 0
    listing = capsys.readouterr().out
    (token_id,) = [line.split()[0] for line in listing.splitlines()]
    assert "district-zz" in listing
    assert "active" in listing
    assert token not in listing
    assert main(["console", "token", "revoke", token_id, *common]) == 0
    assert store.token_user(token) is None
    assert main(["console", "token", "revoke", token_id, *common]) == 2  # already revoked: a clear error
    assert "no active token" in capsys.readouterr().err
    assert main(["console", "token", "issue", "c-a-det", *common]) == 2  # a device is not an account
