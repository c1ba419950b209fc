"""Alerts speak people's words: every rule's text, rendered from the codes its unit passes, in Chinese and in
English; the evidence as a labelled table; the audit trail as sentences; and the text a WeCom or DingTalk group
robot posts."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from console.evidence import LABELS, audit_sentence, evidence_facts
from console.words import Words
from devices.items import BUILTIN
from rules.alerts import Alert
from rules.messages import TEMPLATES, render
from rules.webhooks import body_for
from tests.words_check import chinese_in, leftovers

TZ = ZoneInfo("Asia/Shanghai")
TEST = {
    "sample_no": "S-1",
    "sample_name": "豇豆",
    "batch_no": "B-1201",
    "supplier": "泽州县丰收农产品合作社",
    "item_code": "pesticide.op_carbamate",
    "method_std": "GB/T 5009.199-2003",
    "value": 62.5,
    "unit": "%",
    "result": "fail",
    "entered_by": None,
}
DEVICE = "jc-cq-001-det1"
#: Each rule's parameters as its unit passes them: codes, not words.
SAMPLES: dict[str, dict[str, Any]] = {
    "test.failed": TEST,
    "test.verdict_mismatch": {**TEST, "device_result": "pass", "platform_result": "fail"},
    "test.suspect": {**TEST, "value": 45.0, "result": "suspect"},
    "test.invalid_control": {
        "device": DEVICE,
        "item_code": "pesticide.op_carbamate",
        "control_delta_a": 0.21,
        "minimum": 0.3,
    },
    "test.followup_missing": {"sample_no": "S-1", "sample_name": "豇豆", "hours": 4.0},
    "test.coverage_missing": {"date": "2026-11-25", "deadline": "10:30"},
    "sample.missing": {"date": "2026-11-25", "meal": "lunch", "count": 2, "dishes": 3},
    "sample.underweight": {
        "sample_id": "L-3",
        "slot": "A3",
        "dish_name": "番茄炒蛋",
        "weight_g": 98.0,
        "minimum": 125.0,
    },
    "sample.early_disposal": {"sample_id": "L-3", "dish_name": "番茄炒蛋", "held_h": 20.5, "minimum_h": 48.0},
    "cabinet.temperature": {"device": DEVICE, "temp_c": 11.2, "low": 0.0, "high": 8.0, "minutes": 31},
    "cabinet.door_open": {"device": DEVICE, "minutes": 6},
    "device.offline": {"device": DEVICE, "kind": "detector", "why": "自 09:12 起无信号"},
    "canteen.offline": {"count": 3, "devices": DEVICE, "time": "09:12"},
    "platform.mass_offline": {"count": 120, "fleet": 1368},
    "platform.rules_lag": {"records": 5000, "seconds": 75},
    "camera.violation": {"device": DEVICE, "area": "sample_room", "violation": "no_mask", "confidence": 0.93},
    "camera.video_lost": {"device": DEVICE, "time": "11:05", "minutes": 3},
    "storage.backlog_disk": {"megabytes": 812.0, "threshold": 500},
    "device.clock_skew": {"device": DEVICE, "skew_s": 420},
    "supplier.batch_failed": {
        "supplier": "泽州县丰收农产品合作社",
        "batch_no": "B-1201",
        "sample_name": "豇豆",
        "failed_at": "城区二小食堂",
    },
    "inspection.rectification_overdue": {"date": "11-20", "rectify_by": "2026-11-27", "findings": "冷库温度记录缺失"},
}


def test_every_rule_has_a_sample() -> None:
    assert set(SAMPLES) == set(TEMPLATES)


@pytest.mark.parametrize("rule", sorted(TEMPLATES))
def test_every_rule_text_is_in_words_in_both_languages(rule: str) -> None:
    zh = render(rule, "zh", BUILTIN, canteen="城区一小食堂", **SAMPLES[rule])
    en = render(rule, "en", BUILTIN, canteen="No. 1 Primary", **SAMPLES[rule])
    assert leftovers(zh, "zh", allow=(DEVICE,)) == [], zh
    assert leftovers(en, "en", allow=(DEVICE,)) == [], en
    # the English template says nothing in Chinese: what Chinese remains is the data's own names
    names = [str(v) for v in SAMPLES[rule].values() if isinstance(v, str)]
    rest = en
    for name in names:
        rest = rest.replace(name, "")
    assert chinese_in(rest) == [], en


def test_a_failed_tests_text_names_the_item_the_reading_and_the_unit() -> None:
    zh = render("test.failed", "zh", BUILTIN, canteen="城区一小食堂", **TEST)
    assert "有机磷和氨基甲酸酯类农药" in zh
    assert "抑制率 62.5 %" in zh
    strip = {**TEST, "item_code": "vetdrug.clenbuterol", "value": None, "unit": "qualitative"}
    assert "克伦特罗（瘦肉精）检测不合格，阳性" in render("test.failed", "zh", BUILTIN, canteen="食堂", **strip)
    en = render("test.verdict_mismatch", "en", BUILTIN, canteen="X", **SAMPLES["test.verdict_mismatch"])
    assert "the detector judged it Pass, the platform re-checked it as Fail" in en
    typed = {**SAMPLES["test.verdict_mismatch"], "entered_by": "school-a"}
    assert "录入人判定为合格" in render("test.verdict_mismatch", "zh", BUILTIN, canteen="X", **typed)


def _alert(**changes: Any) -> Alert:
    at = dt.datetime(2026, 11, 25, 9, 30, tzinfo=TZ)
    evidence = {"device": DEVICE, "msg_id": "m-1", "seq": 17, **TEST, "platform_verdict": "fail"}
    fields: dict[str, Any] = {
        "alert_id": "a1",
        "rule": "test.failed",
        "severity": "critical",
        "state": "open",
        "canteen_id": "c-a",
        "message": render("test.failed", "zh", BUILTIN, canteen="城区一小食堂", **TEST),
        "evidence": [evidence],
        "opened_at": at,
        "updated_at": at,
        "dedup_key": "k",
    }
    return Alert.model_validate({**fields, **changes})


@pytest.mark.parametrize("language", ["zh", "en"])
def test_evidence_is_a_labelled_table_without_field_names_or_none(language: str) -> None:
    words = Words(language)  # type: ignore[arg-type]
    facts = evidence_facts(_alert().evidence[0], words, TZ)
    labels = {fact.label for fact in facts}
    assert labels <= {pair[0 if language == "zh" else 1] for pair in LABELS.values()}
    text = " ".join(f"{fact.label} {fact.text}" for fact in facts)
    assert leftovers(text, language, allow=(DEVICE, "m-1")) == [], text
    assert "seq" not in labels
    if language == "zh":
        assert "抑制率 62.5 %" in text
        assert "有机磷和氨基甲酸酯类农药" in text
        assert "entered_by" not in text


def test_an_unlabelled_evidence_field_is_still_shown() -> None:
    facts = evidence_facts({"brand_new_field": 3}, Words("zh"), TZ)
    assert [(f.label, f.text) for f in facts] == [("brand_new_field", "3")]


def test_the_audit_trail_reads_as_sentences() -> None:
    words = Words("zh")
    opened = audit_sentence({"action": "opened", "actor": "rules", "severity": "critical"}, words)
    assert opened == "平台发出告警，级别：严重。"
    resolved = audit_sentence(
        {"action": "resolved", "actor": "district-cq", "why": "整批退回", "disposition": "returned_to_supplier"}, words
    )
    assert resolved == "district-cq处置完毕，处置：退回供应商，原因：整批退回。"
    english = audit_sentence({"action": "escalated", "actor": "rules", "to": "district"}, Words("en"))
    assert english == "The platform escalated it, to District."


def test_the_group_robot_text_names_the_rule_in_words() -> None:
    body = body_for(_alert(), "wecom", "school-a")
    content = body["text"]["content"]  # type: ignore[index]
    assert "快检不合格" in content
    assert leftovers(content, "zh", allow=(DEVICE,)) == [], content
