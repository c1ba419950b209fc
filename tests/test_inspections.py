"""Offline inspections: the weekly plan (reproducible from the platform's secret, different week to week, the
riskier chosen more often), the risk it is weighted by, the inspectors' records and the rule that watches
their rectification deadlines, and ``shian inspect``."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from devices.registry import Registry
from rules.inspections import InspectionBook, InspectionError, plan, risks, week_start
from rules.store import RulesStore
from shian.cli import main
from simulators.city import generate_city
from tests.rules_helpers import CST, MORNING, Harness
from wiring.build import rules_store_path
from wiring.settings import Settings

SECRET = b"\x01" * 32


def test_a_weeks_plan_is_reproducible_from_the_secret_and_differs_week_to_week() -> None:
    weights = {f"c{n:02d}": 1.0 + n % 4 for n in range(40)}
    first = plan(weights, SECRET, "2026-W49", 8)
    assert len(first) == len(set(first)) == 8
    assert plan(weights, SECRET, "2026-W49", 8) == first
    assert plan(dict(reversed(weights.items())), SECRET, "2026-W49", 8) == first  # not by the order given
    weeks = {tuple(sorted(plan(weights, SECRET, f"2026-W{w:02d}", 8))) for w in range(1, 21)}
    assert len(weeks) == 20  # twenty weeks, twenty different plans
    assert plan(weights, b"\x02" * 32, "2026-W49", 8) != first  # another platform's secret, another plan


def test_a_riskier_canteen_is_chosen_more_often() -> None:
    """Over 2,000 weekly draws of 5 from 50 canteens: the inclusion frequency rises with the weight, and matches
    weighted sampling without replacement (simulated independently here) within a few percent."""
    weights = {f"c{n:02d}": 1.0 for n in range(46)} | {"w2": 2.0, "w4": 4.0, "w8": 8.0, "w16": 16.0}
    chosen: Counter[str] = Counter()
    draws = 2000
    for week in range(draws):
        chosen.update(plan(weights, SECRET, f"{2000 + week // 50}-W{week % 50 + 1:02d}", 5))
    ones = sum(chosen[f"c{n:02d}"] for n in range(46)) / 46
    assert ones < chosen["w2"] < chosen["w4"] < chosen["w8"] < chosen["w16"]
    # the same sampling done the textbook way (successive draws, each in proportion to what is left)
    import random

    rng, expected = random.Random(7), Counter[str]()
    for _ in range(20_000):
        left = dict(weights)
        for _ in range(5):
            pick = rng.choices(list(left), weights=list(left.values()))[0]
            expected[pick] += 1
            del left[pick]
    for name in ("w2", "w4", "w8", "w16"):
        assert chosen[name] / draws == pytest.approx(expected[name] / 20_000, abs=0.04)


def test_a_week_must_be_an_iso_week() -> None:
    assert week_start("2026-W49") == dt.date(2026, 11, 30)
    for bad in ("2026-49", "2027-W53", "W49"):  # 2026 has 53 ISO weeks, 2027 52
        with pytest.raises(InspectionError):
            week_start(bad)


def test_risk_counts_alerts_and_weeks_since_the_last_visit(tmp_path: Path) -> None:
    city = Registry.model_validate(generate_city())
    store = RulesStore(tmp_path / "rules.sqlite")
    risky, quiet, visited = "jc-cq-001", "jc-cq-002", "jc-cq-003"
    camera = next(d.id for d in city.canteen(risky).devices if d.kind == "camera")  # type: ignore[union-attr]

    def alert(rule: str, canteen: str, severity: str = "warning", device: str | None = None, days: int = 1) -> None:
        store.raise_alert(
            dedup_key=f"{rule}|{canteen}|{days}|{device}",
            rule=rule,
            severity=severity,  # type: ignore[arg-type]
            canteen_id=canteen,
            message="m",
            evidence={},
            at=MORNING - dt.timedelta(days=days),
            device_id=device,
        )

    alert("test.failed", risky, "critical", days=3)
    alert("sample.missing", risky, days=2)
    alert("device.offline", risky, device=camera)
    alert("test.failed", risky, "critical", days=40)  # too long ago to count, but still open
    alert("cabinet.door_open", quiet)
    book = InspectionBook(tmp_path / "rules.sqlite")
    book.record(
        city, visited, inspector="李", visited_at=MORNING - dt.timedelta(days=15), findings="无", by="t", at=MORNING
    )
    found = risks(city, store, book.last_visits(), MORNING)
    assert "jc-sup-001" not in found  # suppliers are not schools
    assert found[risky].counts == Counter(
        open_critical=2, open_warning=2, test_failed=1, sample=1, camera_silence=1, weeks_uninspected=12
    )
    assert found[risky].weight == pytest.approx(1 + 4 + 1 + 3 + 1 + 1 + 3)
    assert found[quiet].counts == Counter(open_warning=1, weeks_uninspected=12)
    assert found[visited].counts == Counter(weeks_uninspected=2)
    assert found[visited].weight < found[quiet].weight < found[risky].weight
    assert set(risks(city, store, {}, MORNING, frozenset([risky]))) == {risky}


def test_an_inspection_record_is_checked(tmp_path: Path) -> None:
    city = Registry.model_validate(generate_city())
    book = InspectionBook(tmp_path / "rules.sqlite")
    common = {"inspector": "王", "visited_at": MORNING, "findings": "冰箱未除霜", "by": "op", "at": MORNING}
    with pytest.raises(InspectionError, match="no canteen"):
        book.record(city, "nowhere", **common)  # type: ignore[arg-type]
    with pytest.raises(InspectionError, match="before the visit"):
        book.record(city, "jc-cq-001", rectify_by=MORNING.date() - dt.timedelta(days=1), **common)  # type: ignore[arg-type]
    with pytest.raises(InspectionError, match="ISO week"):
        book.record(city, "jc-cq-001", week="49", **common)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="photos"):
        book.record(city, "jc-cq-001", photos=["not a link"], **common)  # type: ignore[arg-type]
    kept = book.record(city, "jc-cq-001", photos=["https://photos.example/1.jpg"], **common)  # type: ignore[arg-type]
    with pytest.raises(InspectionError, match="no rectification"):
        book.rectified(kept.inspection_id, by="x", at=MORNING)
    assert book.get(kept.inspection_id) == kept
    secret = book.secret()
    assert len(secret) == 32
    assert InspectionBook(tmp_path / "rules.sqlite").secret() == secret  # made once, kept


def test_an_unrectified_deadline_raises_an_alert_the_day_after_until_it_is_rectified(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    book = InspectionBook(h.path)
    found = book.record(
        h.registry,
        "c1",
        inspector="赵",
        visited_at=MORNING,
        findings="留样柜温度计损坏",
        rectify_by=dt.date(2026, 11, 27),
        by="district",
        at=MORNING,
    )
    h.at(dt.datetime(2026, 11, 27, 23, 59, tzinfo=CST))
    assert h.alerts("inspection.rectification_overdue") == []  # the deadline day itself is still in time
    h.at(dt.datetime(2026, 11, 28, 0, 1, tzinfo=CST))
    (overdue,) = h.alerts("inspection.rectification_overdue")
    assert overdue.canteen_id == "c1"
    assert overdue.message == "实验小学：11-25 检查发现的问题（留样柜温度计损坏）整改期限 2026-11-27 已过，尚未整改。"
    assert overdue.evidence[0]["inspection_id"] == found.inspection_id
    h.after(dt.timedelta(hours=1))
    assert len(h.alerts("inspection.rectification_overdue")) == 1  # one alert, not one a tick
    book.rectified(found.inspection_id, by="赵", at=h.clock.now())
    with pytest.raises(InspectionError, match="was rectified"):
        book.rectified(found.inspection_id, by="赵", at=h.clock.now())
    h.after(dt.timedelta(minutes=1))
    assert [a.state for a in h.alerts("inspection.rectification_overdue")] == ["resolved"]


def test_shian_inspect_plans_records_lists_and_rectifies(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    registry = tmp_path / "city.yaml"
    registry.write_text(yaml.safe_dump(generate_city(), allow_unicode=True), encoding="utf-8")
    common = ["--data-dir", str(tmp_path), "--registry", str(registry)]
    assert main(["inspect", "plan", "--week", "2026-W49", "--count", "6", *common]) == 0
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 6
    assert "6 of 456 canteens for 2026-W49 (2026-11-30 – 2026-12-06)" in err
    assert main(["inspect", "plan", "--week", "2026-W49", "--count", "6", *common]) == 0
    assert capsys.readouterr().out == out  # the platform kept its secret: the same week, the same plan
    assert main(["inspect", "plan", "--week", "2026-W49", "--district", "沁水县", *common]) == 0
    assert all(" 沁水县 " in line for line in capsys.readouterr().out.splitlines())
    canteen = out.split()[1]
    args = ["inspect", "record", canteen, "--inspector", "王明", "--at", "2026-12-01T10:00:00+08:00"]
    assert main([*args, "--findings", "砧板生熟未分", "--rectify-by", "2026-12-04", "--week", "2026-W49", *common]) == 0
    recorded = capsys.readouterr().out
    assert f"of {canteen}, to be rectified by 2026-12-04" in recorded
    inspection_id = recorded.split()[2]
    assert main(["inspect", "list", "--from", "2026-12-01", "--to", "2026-12-01", *common]) == 0
    assert "砧板生熟未分" in capsys.readouterr().out
    assert main(["inspect", "rectified", inspection_id, "--by", "王明", *common]) == 0
    assert main(["inspect", "rectified", inspection_id, "--by", "王明", *common]) == 2
    assert "was rectified" in capsys.readouterr().err
    book = InspectionBook(rules_store_path(Settings(data_dir=tmp_path)))
    assert book.get(inspection_id).rectified_by == "王明"  # type: ignore[union-attr]


def test_the_w46_plan_printed_during_and_after_its_week_is_the_plan_drawn_on_its_monday(tmp_path: Path) -> None:
    """Whatever happens during the week — new failures elsewhere, an open alert resolved, a visit to a planned
    canteen — the plan stays what was known on Monday 00:00."""
    from rules.inspections import describe, weekly_plan

    city = Registry.model_validate(generate_city())
    store = RulesStore(tmp_path / "rules.sqlite")
    book = InspectionBook(tmp_path / "rules.sqlite")
    monday = dt.datetime(2026, 11, 9, tzinfo=CST)  # 2026-W46
    schools = [c.id for c in city.canteens if c.type != "supplier"]

    def fail(canteen: str, at: dt.datetime, n: int) -> str:
        alert, _ = store.raise_alert(
            dedup_key=f"test.failed|{canteen}|{at.isoformat()}|{n}",
            rule="test.failed",
            severity="critical",
            canteen_id=canteen,
            message="m",
            evidence={},
            at=at,
        )
        return alert.alert_id

    before = [fail(c, monday - dt.timedelta(days=3), 0) for c in schools[:40]]
    drawn, _ = weekly_plan(city, store, book, week="2026-W46", count=10)
    # the week goes on: many failures at canteens that were not drawn, an open alert resolved, a visit
    others = [c for c in schools if c not in drawn][:30]
    for n in range(8):
        for canteen in others:
            fail(canteen, monday + dt.timedelta(days=2, minutes=n), n)
    store.resolve(before[0], "district-cq", "已退回", monday + dt.timedelta(days=1), disposition="returned_to_supplier")
    book.record(
        city,
        drawn[0],
        inspector="王明",
        visited_at=monday + dt.timedelta(days=2),
        findings="无",
        by="t",
        at=monday + dt.timedelta(days=2),
    )
    during, _ = weekly_plan(city, store, book, week="2026-W46", count=10)
    after, _ = weekly_plan(city, store, book, week="2026-W46", count=10)
    assert during == drawn
    assert after == drawn
    # and the week's events would have moved it, had they counted
    later = risks(city, store, book.last_visits(), monday + dt.timedelta(days=8))
    from rules.inspections import plan as draw

    assert draw({c: r.weight for c, r in later.items()}, book.secret(), "2026-W46", 10) != drawn
    _, found = weekly_plan(city, store, book, week="2026-W46", count=10)
    assert "近 30 天快检不合格 1 次" in describe(found[schools[0]])
    assert "1 failed tests in the last 30 days" in describe(found[schools[0]], "en")
