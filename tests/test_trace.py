"""Tracing a batch or a supplier: every canteen that tested it, each result, what was done with each failure
and who handled it — in the console (scoped) and with `shian trace`."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from shian.cli import main
from tests.console_helpers import ConsoleRig
from wiring.build import local_store_path, rules_store_path
from wiring.settings import Settings

SUPPLIER = "丰收合作社"


def _month(rig: ConsoleRig) -> str:
    """Batch B at three canteens (it fails at c-b, which returns it), batch C at c-a; returns the failure's
    alert id."""
    common = {"supplier": SUPPLIER, "unit": "%", "method": "enzyme_inhibition", "item_code": "pesticide.op_carbamate"}
    rig.test_result("c-a", batch_no="B", result="pass", value=12.0, sample_name="豇豆", **common)
    rig.test_result("c-b", batch_no="B", result="fail", value=71.0, sample_name="豇豆", **common)
    rig.test_result("c-c", batch_no="B", result="pass", value=9.0, sample_name="豇豆", **common)
    rig.test_result("c-a", batch_no="C", result="pass", value=8.0, sample_name="菠菜", **common)
    failed = next(t for t in rig.tests_written if t["result"] == "fail")
    alert = rig.raise_alert("c-b", rule="test.failed", device=rig.device_of("c-b"), msg_id=failed["msg_id"])
    rig.rules.resolve(alert.alert_id, "district-cq", "整批退回", rig.clock.now(), disposition="returned_to_supplier")
    return alert.alert_id


def test_the_city_traces_a_batch_to_every_canteen_and_its_disposition(tmp_path: Path) -> None:
    rig = ConsoleRig(tmp_path)
    alert_id = _month(rig)
    html = rig.client("city").get("/trace", params={"batch": "B"}).text
    assert "3 次检测，涉及 3 个食堂，不合格 1 次" in html
    assert html.count('class="verdict-') == 3
    assert "城区二小食堂" in html
    assert "泽州中学食堂" in html
    assert f'href="/alerts/{alert_id}">退回供应商</a> · district-cq' in html
    assert "菠菜" not in html  # batch C is another batch
    supplier = rig.client("city").get("/trace", params={"supplier": SUPPLIER}).text
    assert supplier.count('class="verdict-') == 4


def test_a_school_traces_only_within_its_own_canteen(tmp_path: Path) -> None:
    rig = ConsoleRig(tmp_path)
    _month(rig)
    html = rig.client("school-a").get("/trace", params={"batch": "B"}).text
    assert html.count('class="verdict-') == 1
    assert "城区二小食堂" not in html
    assert "退回供应商" not in html
    assert "1 次检测，涉及 1 个食堂，不合格 0 次" in html


def test_the_canteen_page_links_each_test_to_its_trace(tmp_path: Path) -> None:
    rig = ConsoleRig(tmp_path)
    _month(rig)
    html = rig.client("school-a").get("/canteens/c-a").text
    assert "/trace?supplier=%E4%B8%B0%E6%94%B6%E5%90%88%E4%BD%9C%E7%A4%BE&amp;batch=B" in html


def test_shian_trace_batch_and_supplier(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = Settings(data_dir=tmp_path)
    rig = ConsoleRig(tmp_path)
    # the rig's stores where the CLI looks for them
    assert rig.store.path == local_store_path(settings).with_name("store.sqlite")
    _month(rig)
    with sqlite3.connect(tmp_path / "rules.sqlite") as source, sqlite3.connect(rules_store_path(settings)) as copy:
        source.backup(copy)  # with what is still in the write-ahead log
    registry = tmp_path / "registry.yaml"
    import yaml

    registry.write_text(yaml.safe_dump(rig.registry.model_dump(mode="json"), allow_unicode=True), encoding="utf-8")
    common = ["--data-dir", str(tmp_path), "--registry", str(registry), "--from", "2026-11-01", "--to", "2026-11-30"]
    assert main(["trace", "batch", "B", *common]) == 0
    out, err = capsys.readouterr()
    lines = out.strip().splitlines()
    assert len(lines) == 3
    assert "城区二小食堂" in out
    assert "不合格  退回供应商 (district-cq)" in out
    assert "3 tests at 3 canteens, 1 failed" in err
    assert main(["trace", "supplier", SUPPLIER, *common]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 4
    assert main(["trace", "batch", "NOPE", *common]) == 1
    assert "no test or delivery of batch 'NOPE'" in capsys.readouterr().err


def test_the_scorecard_counts_each_suppliers_tests_and_failures_in_scope(tmp_path: Path) -> None:
    rig = ConsoleRig(tmp_path)
    _month(rig)
    rig.test_result("c-b", supplier="晋南菜场", batch_no="D", result="pass", value=5.0, sample_name="白菜")
    html = rig.client("city").get("/trace").text
    assert "供应商检测统计" in html
    row = html[html.index(SUPPLIER) :]  # its link text (the href is percent-encoded)
    cells = [c.split("<")[0] for c in row.split('<td class="num">')[1:6]]
    assert cells == ["4", "1", "25.00 %", "2", "3"]  # tests, failed, rate, batches (B, C), canteens
    assert html.index(SUPPLIER) < html.index("晋南菜场")  # the worst first
    school = rig.client("school-a").get("/trace").text
    row = school[school.index(SUPPLIER) :]
    assert [c.split("<")[0] for c in row.split('<td class="num">')[1:6]] == ["2", "0", "0.00 %", "2", "1"]
    assert "晋南菜场" not in school  # tested only at c-b


def test_shian_trace_suppliers_prints_the_scorecard(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import yaml

    rig = ConsoleRig(tmp_path)
    _month(rig)
    registry = tmp_path / "registry.yaml"
    registry.write_text(yaml.safe_dump(rig.registry.model_dump(mode="json"), allow_unicode=True), encoding="utf-8")
    common = ["--data-dir", str(tmp_path), "--registry", str(registry), "--from", "2026-11-01", "--to", "2026-11-30"]
    assert main(["trace", "suppliers", *common]) == 0
    out, err = capsys.readouterr()
    (line,) = [row for row in out.splitlines() if row.startswith(SUPPLIER)]
    assert line.split()[1:] == ["4", "1", "25.00%", "2", "3"]
    assert "1 suppliers, 4 tests, 1 failed" in err
    assert main(["trace", "suppliers", "--district", "泽州", *common]) == 0
    assert "1 suppliers, 1 tests, 0 failed" in capsys.readouterr().err
    assert main(["trace", "suppliers", "--district", "nowhere", *common]) == 1


def test_a_failure_is_joined_to_its_own_alert_by_device_and_msg_id(tmp_path: Path) -> None:
    """Two detectors that happen to use the same msg_id: the one failure handled shows its disposition, the
    one nobody handled shows 待处理 — not each other's."""
    rig = ConsoleRig(tmp_path)
    common = {"supplier": SUPPLIER, "unit": "%", "method": "enzyme_inhibition", "item_code": "pesticide.op_carbamate"}
    rig.test_result("c-a", batch_no="E", result="fail", value=66.0, sample_name="芹菜", msg_id="same-1", **common)
    rig.test_result("c-b", batch_no="E", result="fail", value=72.0, sample_name="芹菜", msg_id="same-1", **common)
    handled = rig.raise_alert("c-b", rule="test.failed", device=rig.device_of("c-b"), msg_id="same-1")
    rig.raise_alert("c-a", rule="test.failed", device=rig.device_of("c-a"), msg_id="same-1")
    rig.rules.resolve(handled.alert_id, "district-cq", "整批退回", rig.clock.now(), disposition="returned_to_supplier")
    html = rig.client("city").get("/trace", params={"batch": "E"}).text
    assert html.count("退回供应商") == 1
    rows = html.split("<tr")
    row_a = next(r for r in rows if 'href="/canteens/c-a"' in r)
    row_b = next(r for r in rows if 'href="/canteens/c-b"' in r)
    assert "退回供应商" in row_b
    assert "退回供应商" not in row_a
    assert "待处理" in row_a
