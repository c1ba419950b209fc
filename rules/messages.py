"""What supervisors read: one template per rule, in Chinese by default and in English."""

from __future__ import annotations

from typing import Any

from devices.items import BUILTIN, ItemCatalogue
from devices.vocabulary import AREAS, KINDS, MEALS, VERDICTS, VIOLATIONS, Language, reading, word
from devices.vocabulary import Words as Vocabulary

#: Each rule's name, (zh, en): the alert's title on every face.
RULES: dict[str, tuple[str, str]] = {
    "test.failed": ("快检不合格", "Test failed"),
    "test.verdict_mismatch": ("判定不一致", "Verdict mismatch"),
    "test.suspect": ("可疑需复检", "Suspect result"),
    "test.invalid_control": ("对照无效", "Invalid control"),
    "test.followup_missing": ("未按时复检", "Retest missing"),
    "test.coverage_missing": ("当日未检测", "No test today"),
    "sample.missing": ("留样缺失", "Samples missing"),
    "sample.underweight": ("留样不足 125 克", "Sample under 125 g"),
    "sample.early_disposal": ("留样不足 48 小时", "Sample disposed early"),
    "cabinet.temperature": ("留样柜温度异常", "Cabinet temperature"),
    "cabinet.door_open": ("留样柜门未关", "Cabinet door open"),
    "device.offline": ("设备离线", "Device offline"),
    "device.clock_skew": ("设备时钟偏差", "Device clock skew"),
    "camera.violation": ("AI 识别违规", "Camera violation"),
    "camera.video_lost": ("摄像头无画面", "Camera picture lost"),
    "storage.backlog_disk": ("平台存储积压", "Storage backlog"),
    "supplier.batch_failed": ("同批次他处不合格", "Batch failed elsewhere"),
    "inspection.rectification_overdue": ("检查整改逾期", "Inspection not rectified in time"),
    "canteen.offline": ("食堂设备全部离线", "Canteen offline"),
    "platform.mass_offline": ("大面积设备离线", "Mass offline"),
    "platform.rules_lag": ("规则引擎滞后", "Rules engine lagging"),
}

TEMPLATES: dict[str, dict[Language, str]] = {
    "test.failed": {
        "zh": "{canteen}：{sample_name}（供应商 {supplier}，进货批号 {batch_no}）{item}检测不合格，{reading}"
        "（{method_std}），请立即停用、退回供应商并追溯同批次食品。",
        "en": "{canteen}: {sample_name} (supplier {supplier}, delivery batch {batch_no}) failed the {item} test, "
        "{reading} ({method_std}); stop using it, return it to the supplier and trace the batch.",
    },
    "test.verdict_mismatch": {
        "zh": "{canteen}：{sample_name}（样品 {sample_no}）{item}检测，{judged_by}判定为{device_result}，"
        "平台按 {method_std} 复核为{platform_result}（{reading}）。",
        "en": "{canteen}: {sample_name} (sample {sample_no}), {item}: {judged_by} judged it {device_result}, the "
        "platform re-checked it as {platform_result} under {method_std} ({reading}).",
    },
    "supplier.batch_failed": {
        "zh": "{canteen}：供应商 {supplier} 进货批号 {batch_no} 的{sample_name}已在{failed_at}检测不合格，"
        "请立即封存该批次食品并复检。",
        "en": "{canteen}: {sample_name} of delivery batch {batch_no} from {supplier} failed at {failed_at}; hold "
        "that batch and test it.",
    },
    "inspection.rectification_overdue": {
        "zh": "{canteen}：{date} 检查发现的问题（{findings}）整改期限 {rectify_by} 已过，尚未整改。",
        "en": "{canteen}: what the inspection of {date} found ({findings}) was due to be put right by {rectify_by} "
        "and is not.",
    },
    "test.suspect": {
        "zh": "{canteen}：{sample_name}（样品 {sample_no}）{item}检测{reading}，处于可疑区间，请复检。",
        "en": "{canteen}: {sample_name} (sample {sample_no}) read {reading} for {item}, which is suspect; retest it.",
    },
    "test.invalid_control": {
        "zh": "{canteen}：快检仪 {device} 的对照 ΔA0 为 {control_delta_a}，低于 {minimum}，酶已失活，"
        "本次{item}检测无效，请更换试剂后重新检测。",
        "en": "{canteen}: detector {device} control ΔA0 is {control_delta_a}, below {minimum}; the enzyme is "
        "inactive and this {item} test is void: test again with fresh reagent.",
    },
    "test.followup_missing": {
        "zh": "{canteen}：不合格的{sample_name}（样品 {sample_no}）在 {hours} 小时内未复检。",
        "en": "{canteen}: the failed {sample_name} (sample {sample_no}) has not been retested within {hours} h.",
    },
    "test.coverage_missing": {
        "zh": "{canteen}：{date} 截至 {deadline} 尚无快检记录。",
        "en": "{canteen}: no rapid test recorded by {deadline} on {date}.",
    },
    "sample.missing": {
        "zh": "{canteen}：{date} {meal}留样 {count} 份，少于菜单上的 {dishes} 道菜。",
        "en": "{canteen}: {count} samples kept for {meal} on {date}, fewer than the {dishes} dishes on the menu.",
    },
    "sample.underweight": {
        "zh": "{canteen}：{dish_name}留样（格位 {slot}）仅 {weight_g} 克，低于 {minimum} 克。",
        "en": "{canteen}: the sample of {dish_name} (slot {slot}) weighs {weight_g} g, under {minimum} g.",
    },
    "sample.early_disposal": {
        "zh": "{canteen}：{dish_name}留样留存 {held_h} 小时即被处理，不足 {minimum_h} 小时。",
        "en": "{canteen}: the sample of {dish_name} was disposed of after {held_h} h, before {minimum_h} h.",
    },
    "cabinet.temperature": {
        "zh": "{canteen}：留样柜 {device} 温度 {temp_c} °C，已超出 {low}–{high} °C 达 {minutes} 分钟。",
        "en": "{canteen}: sample cabinet {device} at {temp_c} °C, outside {low}–{high} °C for {minutes} min.",
    },
    "cabinet.door_open": {
        "zh": "{canteen}：留样柜 {device} 柜门已打开 {minutes} 分钟。",
        "en": "{canteen}: sample cabinet {device} door open for {minutes} min.",
    },
    "device.offline": {
        "zh": "{canteen}：{kind} {device} 离线：{why}。",
        "en": "{canteen}: {kind} {device} is offline: {why}.",
    },
    "canteen.offline": {
        "zh": "{canteen}：全部 {count} 台设备自 {time} 起同时无信号（{devices}），可能是食堂网络或电源故障。",
        "en": "{canteen}: all {count} devices silent since {time} ({devices}); the canteen's network or power may "
        "be down.",
    },
    "platform.mass_offline": {
        "zh": "平台：一分钟内 {count} 台设备（共 {fleet} 台）同时离线，疑似网络或消息服务器故障；"
        "单台设备离线告警暂缓。",
        "en": "platform: {count} of {fleet} devices went silent within a minute, likely a network or broker outage; "
        "per-device offline alerts are held.",
    },
    "platform.rules_lag": {
        "zh": "平台：规则引擎落后 {records} 条记录（{seconds} 秒），告警可能延迟。",
        "en": "platform: the rules engine is {records} records ({seconds} s) behind; alerts may be late.",
    },
    "camera.violation": {
        "zh": "{canteen}：摄像头 {device} 在{area}识别到“{violation}”（置信度 {confidence}），请人工复核。",
        "en": "{canteen}: camera {device} saw '{violation}' in the {area} area (confidence {confidence}); please "
        "review.",
    },
    "camera.video_lost": {
        "zh": "{canteen}：摄像头 {device} 在线，但自 {time} 起没有画面（已 {minutes} 分钟），家长和监管端看不到后厨，"
        "请检查摄像头推流或网络。",
        "en": "{canteen}: camera {device} is online but has sent no picture since {time} ({minutes} min); parents "
        "and supervisors cannot see the kitchen. Check the camera's stream or network.",
    },
    "storage.backlog_disk": {
        "zh": "平台：待写入时序库的积压已达 {megabytes} MB（阈值 {threshold} MB），请检查 InfluxDB。",
        "en": "platform: the backlog waiting for the time-series store holds {megabytes} MB (threshold "
        "{threshold} MB); check InfluxDB.",
    },
    "device.clock_skew": {
        "zh": "{canteen}：设备 {device} 时钟偏差 {skew_s} 秒，请校时。",
        "en": "{canteen}: device {device} clock is off by {skew_s} s; set its time.",
    },
}

#: Parameters a rule passes as codes, and the table that says each in words.
_CODED: dict[str, Vocabulary] = {
    "meal": MEALS,
    "kind": KINDS,
    "violation": VIOLATIONS,
    "area": AREAS,
    "device_result": VERDICTS,
    "platform_result": VERDICTS,
}


def in_words(language: Language, items: ItemCatalogue, params: dict[str, Any]) -> dict[str, Any]:
    """A rule's parameters as people read them: codes in words, the item by name, a test's reading with its
    unit (``value``, ``unit`` and ``result`` become ``reading``), a confidence as a percentage."""
    out = dict(params)
    for key, table in _CODED.items():
        if isinstance(out.get(key), str):
            out[key] = word(table, out[key], language)
    if "item_code" in out:
        out["item"] = items.name(out["item_code"], language) or out["item_code"]
    if "result" in out:
        out["reading"] = reading(out.get("value"), out.get("unit"), out["result"], language)
    if isinstance(out.get("confidence"), float):
        out["confidence"] = f"{out['confidence'] * 100:.0f} %"
    if "entered_by" in out:
        judged_by = ("录入人", "the person who entered it") if out["entered_by"] else ("快检仪", "the detector")
        out["judged_by"] = judged_by[0 if language == "zh" else 1]
    return out


def render(rule: str, language: Language, items: ItemCatalogue = BUILTIN, **params: Any) -> str:
    return TEMPLATES[rule][language].format(**in_words(language, items, params))


def rule_name(rule: str, language: Language) -> str:
    return word(RULES, rule, language)


PHRASES: dict[str, dict[Language, str]] = {
    "reported_offline": {"zh": "设备上报离线", "en": "the device reported offline"},
    "silent_since": {"zh": "自 {time} 起无信号", "en": "silent since {time}"},
}


def phrase(key: str, language: Language, **params: Any) -> str:
    return PHRASES[key][language].format(**params)
