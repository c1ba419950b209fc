"""What supervisors read: one template per rule, in Chinese by default and in English."""

from __future__ import annotations

from typing import Any, Literal

Language = Literal["zh", "en"]

TEMPLATES: dict[str, dict[Language, str]] = {
    "test.failed": {
        "zh": "{canteen}：{sample_name}（批次 {batch_no}，供应商 {supplier}）{item_code} 检测不合格（{value}），"
        "请立即退货并追溯。",
        "en": "{canteen}: {sample_name} (batch {batch_no}, supplier {supplier}) failed {item_code} ({value}); "
        "return the batch and trace it.",
    },
    "test.verdict_mismatch": {
        "zh": "{canteen}：样品 {sample_no} 设备判定为“{device_result}”，平台按 {method_std} 复核为"
        "“{platform_result}”（{value}%）。",
        "en": "{canteen}: sample {sample_no} was judged '{device_result}' by the device but '{platform_result}' "
        "by the platform under {method_std} ({value} %).",
    },
    "supplier.batch_failed": {
        "zh": "{canteen}：供应商 {supplier} 批次 {batch_no} 的{sample_name}已在{failed_at}检测不合格，"
        "请立即封存该批次食品并复检。",
        "en": "{canteen}: {sample_name} of batch {batch_no} from {supplier} failed at {failed_at}; hold that batch "
        "and test it.",
    },
    "inspection.rectification_overdue": {
        "zh": "{canteen}：{date} 检查发现的问题（{findings}）整改期限 {rectify_by} 已过，尚未整改。",
        "en": "{canteen}: what the inspection of {date} found ({findings}) was due to be put right by {rectify_by} "
        "and is not.",
    },
    "test.suspect": {
        "zh": "{canteen}：样品 {sample_no}（{sample_name}）抑制率 {value}% 处于可疑区间，需复检。",
        "en": "{canteen}: sample {sample_no} ({sample_name}) at {value} % inhibition is suspect; retest it.",
    },
    "test.invalid_control": {
        "zh": "{canteen}：检测仪 {device} 对照 ΔA0={control_delta_a} 低于 {minimum}，酶已失活，本次检测无效。",
        "en": "{canteen}: detector {device} control ΔA0={control_delta_a} is below {minimum}; the enzyme is "
        "inactive and the run is void.",
    },
    "test.followup_missing": {
        "zh": "{canteen}：不合格样品 {sample_no} 在 {hours} 小时内未复检。",
        "en": "{canteen}: failed sample {sample_no} has not been retested within {hours} h.",
    },
    "test.coverage_missing": {
        "zh": "{canteen}：{date} 截至 {deadline} 尚无快检记录。",
        "en": "{canteen}: no rapid test recorded by {deadline} on {date}.",
    },
    "sample.missing": {
        "zh": "{canteen}：{date} {meal} 留样 {count} 份，少于菜单 {dishes} 道菜。",
        "en": "{canteen}: {count} samples kept for {meal} on {date}, fewer than the {dishes} dishes on the menu.",
    },
    "sample.underweight": {
        "zh": "{canteen}：留样 {sample_id}（{dish_name}）仅 {weight_g} 克，低于 {minimum} 克。",
        "en": "{canteen}: sample {sample_id} ({dish_name}) weighs {weight_g} g, under {minimum} g.",
    },
    "sample.early_disposal": {
        "zh": "{canteen}：留样 {sample_id} 留存 {held_h} 小时即被处理，不足 {minimum_h} 小时。",
        "en": "{canteen}: sample {sample_id} was disposed of after {held_h} h, before {minimum_h} h.",
    },
    "cabinet.temperature": {
        "zh": "{canteen}：留样柜 {device} 温度 {temp_c}℃，已超出 {low}–{high}℃ 达 {minutes} 分钟。",
        "en": "{canteen}: sample cabinet {device} at {temp_c} °C, outside {low}–{high} °C for {minutes} min.",
    },
    "cabinet.door_open": {
        "zh": "{canteen}：留样柜 {device} 柜门已打开 {minutes} 分钟。",
        "en": "{canteen}: sample cabinet {device} door open for {minutes} min.",
    },
    "device.offline": {
        "zh": "{canteen}：设备 {device}（{kind}）离线：{why}。",
        "en": "{canteen}: device {device} ({kind}) is offline: {why}.",
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
        "zh": "{canteen}：摄像头 {device} 在{area}区域识别到违规“{violation}”（置信度 {confidence}），请人工复核。",
        "en": "{canteen}: camera {device} saw '{violation}' in {area} (confidence {confidence}); please review.",
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


def render(rule: str, language: Language, **params: Any) -> str:
    return TEMPLATES[rule][language].format(**params)


PHRASES: dict[str, dict[Language, str]] = {
    "reported_offline": {"zh": "设备上报离线", "en": "the device reported offline"},
    "silent_since": {"zh": "自 {time} 起无信号", "en": "silent since {time}"},
}


def phrase(key: str, language: Language, **params: Any) -> str:
    return PHRASES[key][language].format(**params)
