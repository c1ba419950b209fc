"""An alert's evidence and audit trail as people read them: evidence as a labelled table (every field named in
words, codes said in words, times in the region's zone, nothing empty), and each audit entry as a sentence."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from console.words import LABELS as LABELS_OF_WORDS
from console.words import Words
from devices.vocabulary import reading

#: Evidence fields, (zh, en), in the order a reader wants them. Fields not listed are the platform's own
#: bookkeeping and are not shown (``seq``, the spool position).
LABELS: dict[str, tuple[str, str]] = {
    "sample_name": ("样品", "Sample"),
    "sample_no": ("样品编号", "Sample number"),
    "item_code": ("检测项目", "Item"),
    "reading": ("检测结果", "Reading"),
    "result": ("设备判定", "Device's verdict"),
    "platform_verdict": ("平台复核", "Platform's re-check"),
    "method_std": ("检测标准", "Standard"),
    "supplier": ("供应商", "Supplier"),
    "batch_no": ("进货批号", "Delivery batch"),
    "entered_by": ("录入人", "Entered by"),
    "failed_at": ("不合格食堂", "Failed at"),
    "dish_name": ("菜品", "Dish"),
    "slot": ("格位", "Slot"),
    "weight_g": ("重量（克）", "Weight (g)"),
    "retained_at": ("留样时间", "Retained at"),
    "held_s": ("留存时长", "Held for"),
    "kept": ("已留样", "Kept"),
    "dishes": ("菜单菜品数", "Dishes on the menu"),
    "menu": ("菜单", "Menu"),
    "date": ("日期", "Date"),
    "temp_c": ("温度（°C）", "Temperature (°C)"),
    "out_since": ("超温开始", "Out of range since"),
    "door_since": ("开门时间", "Door open since"),
    "violation": ("违规行为", "Violation"),
    "area": ("区域", "Area"),
    "confidence": ("置信度", "Confidence"),
    "snapshot_url": ("抓拍图片", "Snapshot"),
    "state": ("设备状态", "Device state"),
    "last_seen": ("最后信号", "Last heard"),
    "devices": ("设备", "Devices"),
    "silent": ("无信号设备数", "Silent devices"),
    "fleet": ("设备总数", "Devices in all"),
    "dropped_within_s": ("时间窗（秒）", "Window (s)"),
    "skew_s": ("时钟偏差（秒）", "Clock off by (s)"),
    "inspector": ("检查人", "Inspector"),
    "visited_at": ("检查时间", "Inspected at"),
    "rectify_by": ("整改期限", "Rectify by"),
    "lag_records": ("落后记录数", "Records behind"),
    "lag_s": ("落后时长（秒）", "Behind by (s)"),
    "backlog_bytes": ("积压（字节）", "Backlog (bytes)"),
    "device": ("设备", "Device"),
    "msg_id": ("记录编号", "Record number"),
}
_VERDICT_KEYS = ("result", "platform_verdict")
_CODED = {"violation": "violation", "area": "area", "state": "device_state"}
_HIDDEN = frozenset({"seq", "canteen", "value", "unit", "inspection_id"})


@dataclass(frozen=True)
class Fact:
    label: str
    text: str
    href: str | None = None


def evidence_facts(evidence: Mapping[str, Any], words: Words, tz: ZoneInfo, canteen_name: Any = None) -> list[Fact]:
    """One evidence entry as labelled facts in words; empty values are left out."""
    shown = dict(evidence)
    if "result" in shown and "unit" in shown:
        shown["reading"] = reading(shown.get("value"), shown.get("unit"), shown["result"], words.language)
    facts = []
    for key, label in LABELS.items():
        value = shown.get(key)
        if value is None or value in ("", [], {}):
            continue
        text, href = _text(key, value, words, tz, canteen_name), None
        if key == "snapshot_url" and isinstance(value, str):
            text, href = words.t("open_snapshot"), value
        facts.append(Fact(label[0 if words.language == "zh" else 1], text, href))
    for key in shown.keys() - LABELS.keys() - _HIDDEN:
        if shown[key] is not None:  # a field without a label yet: shown, so that nothing is hidden
            facts.append(Fact(key, _plain(shown[key], words, tz)))
    return facts


def _text(key: str, value: Any, words: Words, tz: ZoneInfo, canteen_name: Any) -> str:
    if key in _VERDICT_KEYS:
        return words("verdict", value)
    if key == "item_code":
        return words("item", value)
    if key in _CODED:
        return words(_CODED[key], value)
    if key == "failed_at" and canteen_name is not None:
        return str(canteen_name(value))
    if key == "confidence" and isinstance(value, float):
        return f"{value * 100:.0f} %"
    if key == "held_s" and isinstance(value, int | float):
        return words.t("hours", hours=f"{value / 3600:.1f}")
    return _plain(value, words, tz)


def _plain(value: Any, words: Words, tz: ZoneInfo) -> str:
    if isinstance(value, bool):
        return words.t("yes") if value else words.t("no")
    if isinstance(value, list):
        return "、".join(_plain(v, words, tz) for v in value)
    if isinstance(value, dict):
        return "；".join(f"{k} {_plain(v, words, tz)}" for k, v in value.items())
    if isinstance(value, str):
        return _local(value, tz) or value
    return str(value)


def _local(text: str, tz: ZoneInfo) -> str | None:
    """An RFC 3339 instant in the region's zone; None when ``text`` is not one."""
    if len(text) < 19 or text[10] != "T":
        return None
    try:
        instant = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return instant.astimezone(tz).strftime("%Y-%m-%d %H:%M") if instant.tzinfo else None


def audit_sentence(entry: Mapping[str, Any], words: Words) -> str:
    """One audit entry (its ``action``, ``actor`` and details) as a sentence: 张三 确认收到，备注：已电话通知."""
    action, actor = entry["action"], entry.get("actor") or ""
    who = words.t("the_platform") if actor in ("rules", "storage") else actor
    key = f"did_{action}"
    parts = [words.t(key, who=who) if key in LABELS_OF_WORDS else f"{who} {words('action', action)}"]
    if entry.get("severity") and action in ("opened", "escalated_severity"):
        parts.append(words.t("audit_severity", severity=words("severity", entry["severity"])))
    if entry.get("to"):
        to = entry["to"]
        parts.append(words.t("audit_to", to=words("level", to) if action == "escalated" else to))
    if entry.get("disposition"):
        parts.append(words.t("audit_disposition", disposition=words("disposition", entry["disposition"])))
    if entry.get("review"):
        parts.append(words.t("audit_review", review=words("review", entry["review"])))
    if entry.get("reminders"):
        parts.append(words.t("audit_reminders", count=entry["reminders"]))
    for key in ("note", "why", "error"):
        if entry.get(key):
            parts.append(words.t(f"audit_{key}", text=entry[key]))
    return ("，" if words.language == "zh" else ", ").join(parts) + ("。" if words.language == "zh" else ".")
