"""What each field of the wire contract means, in Chinese and English, and its unit: the one place for it. The
JSON Schemas carry it as each property's description, and docs/contract.md's field tables are made from it."""

from __future__ import annotations

from typing import NamedTuple


class FieldDoc(NamedTuple):
    zh: str
    en: str
    unit: str = ""


#: Field name -> its meaning. A name means the same wherever it appears (``reason`` is the one exception: in a
#: sample disposal it is why the sample went, in a dead letter why the message was refused; both are below).
FIELDS: dict[str, FieldDoc] = {
    "type": FieldDoc("消息类型（判别字段）", "the message type (the discriminator)"),
    "msg_id": FieldDoc("消息编号：同一设备内唯一，重启后也不重复", "unique per device, even across reboots"),
    "ts": FieldDoc("设备观测时间，RFC 3339，须带时区", "when the device observed it: RFC 3339 with an offset"),
    "state": FieldDoc("状态", "the state"),
    "incubator_c": FieldDoc("恒温孵育槽温度", "incubator temperature", "°C"),
    "reagent_lot": FieldDoc("试剂批号", "reagent lot"),
    "reagent_expires": FieldDoc("试剂有效期至", "reagent expiry date"),
    "sample_no": FieldDoc("样品编号", "the sample's number (what a retest refers to)"),
    "sample_name": FieldDoc("样品名称", "the sample's name"),
    "food_category": FieldDoc("食品类别", "food category"),
    "supplier": FieldDoc("供应商", "the supplier of the batch"),
    "foods": FieldDoc("本批所含食品", "the foods of the delivery"),
    "quantity_kg": FieldDoc("数量", "how much was delivered", "kg"),
    "certificates": FieldDoc("供应商证明（检验报告、合格证等）链接", "links to the supplier's certificates"),
    "received_by": FieldDoc("验收人", "who received the delivery"),
    "batch_no": FieldDoc("进货批次号", "the delivered batch"),
    "item_code": FieldDoc("检测项目代码，如 pesticide.op_carbamate", "the test item, e.g. pesticide.op_carbamate"),
    "method": FieldDoc("检测方法", "the test method"),
    "method_std": FieldDoc("方法标准，如 GB/T 5009.199-2003", "the method's standard, e.g. GB/T 5009.199-2003"),
    "value": FieldDoc("检测值；定性检测为 null", "the measured value; null for a qualitative test", "see unit"),
    "unit": FieldDoc("检测值单位", "the value's unit"),
    "result": FieldDoc("设备判定结果；平台会按数值复核", "the device's verdict (the platform checks it)"),
    "operator": FieldDoc("操作人", "who did it"),
    "reviewer": FieldDoc("复核人", "who reviewed it"),
    "retest_of": FieldDoc("所复检的不合格样品编号", "the sample_no of the failed sample this retests"),
    "control_delta_a": FieldDoc("空白对照 ΔA0；低于 0.3 则本次无效", "the control's ΔA0; below 0.3 the run is void"),
    "entered_by": FieldDoc(
        "手工录入的平台账号；仅由平台控制台设置，设备发送则拒收",
        "the console account that entered the result by hand; set by the platform only, refused from a device",
    ),
    "temp_c": FieldDoc("柜内温度（应在 0–8 ℃）", "temperature inside (0–8 °C required)", "°C"),
    "door_open": FieldDoc("柜门是否打开", "whether the door is open"),
    "power_ok": FieldDoc("供电是否正常", "whether mains power is on"),
    "samples_held": FieldDoc("柜内留样份数", "samples in the cabinet"),
    "sample_id": FieldDoc("留样编号", "the retained sample's id"),
    "slot": FieldDoc('柜内格位（字符串，如 "A3"）', 'the slot: a string ("A3", "3"), never a number'),
    "meal_date": FieldDoc("餐次日期", "the date of the meal"),
    "meal": FieldDoc("餐次", "the meal"),
    "dish_name": FieldDoc("菜品名称", "the dish"),
    "weight_g": FieldDoc("留样重量（至少 125 克）", "the sample's weight (at least 125 g)", "g"),
    "reason": FieldDoc("原因", "why (a disposal's reason; a dead letter's reject reason)"),
    "fps": FieldDoc("帧率", "frames per second", "fps"),
    "bitrate_kbps": FieldDoc("码率", "bitrate", "kbit/s"),
    "recording_ok": FieldDoc("录像是否正常", "whether recording works"),
    "retention_days": FieldDoc("录像保存天数", "days of video kept", "days"),
    "violation": FieldDoc("识别到的违规", "the violation recognised"),
    "confidence": FieldDoc("识别置信度（0–1）", "the recognition's confidence (0–1)"),
    "area": FieldDoc("后厨区域", "the kitchen area"),
    "snapshot_url": FieldDoc("抓拍图片地址", "the snapshot's URL"),
    "clip_url": FieldDoc("视频片段地址", "the clip's URL"),
    "status": FieldDoc("处理结果：stored / duplicate / rejected", "what became of the record"),
    "detail": FieldDoc("拒收说明", "what was wrong, in words"),
    "topic": FieldDoc("原消息主题", "the topic the message came on"),
    "client_id": FieldDoc("主题所指设备", "the device the topic names"),
    "payload_b64": FieldDoc("原始载荷（base64，最多 16 KiB）", "the payload, base64 (its first 16 KiB at most)"),
    "received_at": FieldDoc("平台收到时间", "when the platform received it"),
    "truncated": FieldDoc("载荷是否被截断", "whether payload_b64 was cut"),
    "payload_size": FieldDoc("原始载荷字节数", "the whole payload's size", "bytes"),
    "payload_sha256": FieldDoc("原始载荷 SHA-256", "the whole payload's SHA-256"),
}
