"""The time-series schema (docs/storage.md): the one place for measurement, tag and field names, and the
mapping from each stored record to its points.

Rules of the schema: free text goes in fields, never tags; every number is a float (an int once written as
``22i`` conflicts with a later ``22.5``); a point's time comes from the record, so writing a record again
overwrites itself.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from devices.messages import (
    AiViolation,
    CabinetReading,
    CameraStream,
    DeliveryReceived,
    DetectorHeartbeat,
    DeviceStatus,
    SampleDisposed,
    SampleRetained,
    TestResult,
    TestVerdict,
)
from spool import SpoolRecord, hydrate

FieldValue = float | bool | str
T = TypeVar("T")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class _Name(StrEnum):
    """A name in the schema, hashed as the string it is: ``Enum`` hashes by member name, in Python, for every
    dict key of every point (measured: most of the mapping's time), and unlike the equal string."""

    __hash__ = str.__hash__


class Measurement(_Name):
    """Measurement names: the one place they are spelled."""

    RAPID_TEST = "rapid_test"
    SAMPLE_RETENTION = "sample_retention"
    CABINET = "cabinet"
    CAMERA = "camera"
    CAMERA_VIOLATION = "camera_violation"
    DEVICE_STATUS = "device_status"
    ALERT = "alert"
    GATEWAY = "gateway"
    #: The detector heartbeat (incubator temperature, reagent lot).
    DETECTOR = "detector"
    #: A delivery received (进货台账).
    DELIVERY = "delivery"


class Tag(_Name):
    """Tag keys: indexed, low-cardinality values only (never free text)."""

    CANTEEN = "canteen"
    DISTRICT = "district"
    DEVICE = "device"
    CABINET = "cabinet"  # the device tag of sample_retention, named after what it is
    KIND = "kind"
    ITEM_CODE = "item_code"
    METHOD_STD = "method_std"
    RESULT = "result"
    MEAL = "meal"
    ACTION = "action"
    VIOLATION = "violation"
    RULE = "rule"
    SEVERITY = "severity"
    STATE = "state"
    INSTANCE = "instance"


#: Tag keys of each measurement (docs/storage.md).
TAGS: dict[Measurement, tuple[Tag, ...]] = {
    Measurement.RAPID_TEST: (Tag.CANTEEN, Tag.DISTRICT, Tag.DEVICE, Tag.ITEM_CODE, Tag.METHOD_STD, Tag.RESULT),
    Measurement.SAMPLE_RETENTION: (Tag.CANTEEN, Tag.DISTRICT, Tag.CABINET, Tag.MEAL, Tag.ACTION),
    Measurement.CABINET: (Tag.CANTEEN, Tag.DISTRICT, Tag.DEVICE),
    Measurement.CAMERA: (Tag.CANTEEN, Tag.DISTRICT, Tag.DEVICE),
    Measurement.CAMERA_VIOLATION: (Tag.CANTEEN, Tag.DISTRICT, Tag.DEVICE, Tag.VIOLATION),
    Measurement.DEVICE_STATUS: (Tag.CANTEEN, Tag.DISTRICT, Tag.DEVICE, Tag.KIND),
    Measurement.ALERT: (Tag.CANTEEN, Tag.DISTRICT, Tag.RULE, Tag.SEVERITY, Tag.STATE),
    Measurement.GATEWAY: (Tag.INSTANCE,),
    Measurement.DETECTOR: (Tag.CANTEEN, Tag.DISTRICT, Tag.DEVICE),
    Measurement.DELIVERY: (Tag.CANTEEN, Tag.DISTRICT, Tag.DEVICE),
}


class FieldName(_Name):
    """Field names. Units live in the names, as on the wire."""

    MSG_ID = "msg_id"
    VALUE = "value"
    PASSED = "passed"  # 1.0 for a pass, 0.0 otherwise: sums and means give counts and pass rates
    SAMPLE_NO = "sample_no"
    SAMPLE_NAME = "sample_name"
    FOOD_CATEGORY = "food_category"
    SUPPLIER = "supplier"
    BATCH_NO = "batch_no"
    METHOD = "method"
    UNIT = "unit"
    OPERATOR = "operator"
    REVIEWER = "reviewer"
    RETEST_OF = "retest_of"
    CONTROL_DELTA_A = "control_delta_a"
    ENTERED_BY = "entered_by"  # a result entered by hand in the console: the account
    #: The device's (or typist's) own verdict, kept beside the platform's in the ``result`` tag.
    DEVICE_RESULT = "device_result"
    FOODS = "foods"  # a delivery's foods, joined by 、
    QUANTITY_KG = "quantity_kg"
    CERTIFICATES = "certificates"  # links, separated by spaces
    RECEIVED_BY = "received_by"
    SAMPLE_ID = "sample_id"
    SLOT = "slot"
    MEAL_DATE = "meal_date"
    DISH_NAME = "dish_name"
    WEIGHT_G = "weight_g"
    REASON = "reason"
    TEMP_C = "temp_c"
    DOOR_OPEN = "door_open"
    POWER_OK = "power_ok"
    SAMPLES_HELD = "samples_held"
    FPS = "fps"
    BITRATE_KBPS = "bitrate_kbps"
    RECORDING_OK = "recording_ok"
    RETENTION_DAYS = "retention_days"
    CONFIDENCE = "confidence"
    AREA = "area"
    SNAPSHOT_URL = "snapshot_url"
    CLIP_URL = "clip_url"
    STATE = "state"
    ONLINE = "online"  # 1.0 online, 0.0 offline
    RECEIVED_AT = "received_at"  # gateway clock, RFC 3339
    SKEW_S = "skew_s"
    INCUBATOR_C = "incubator_c"
    REAGENT_LOT = "reagent_lot"
    REAGENT_EXPIRES = "reagent_expires"
    COUNT = "count"
    # gateway (platform health), cumulative counters and gauges
    RECEIVED = "received"
    STORED = "stored"
    DUPLICATES = "duplicates"
    REJECTED = "rejected"
    SPOOL_BACKLOG = "spool_backlog"
    WRITE_LAG_S = "write_lag_s"
    # alert
    ALERT_ID = "alert_id"
    MESSAGE = "message"


#: A point's fields before the ones without a value are dropped.
Fields = dict[FieldName, FieldValue | None]


#: Per-reason reject counters of the gateway measurement are fields named ``rejected_{reason}``.
REJECTED_PREFIX = "rejected_"


@dataclass(frozen=True, slots=True)
class StoragePoint:
    """One point: measurement, tags, fields and time in nanoseconds."""

    measurement: Measurement
    tags: dict[str, str]
    fields: dict[str, FieldValue]
    time_ns: int

    def series_key(self) -> str:
        return ",".join([self.measurement, *(f"{k}={v}" for k, v in sorted(self.tags.items()))])


def epoch_ns(instant: dt.datetime) -> int:
    """Nanoseconds since the epoch, in integer arithmetic (no float rounding)."""
    return (instant - _EPOCH) // dt.timedelta(microseconds=1) * 1000


def gateway_point(
    instance: str,
    at: dt.datetime,
    *,
    received: int,
    stored: int,
    duplicates: int,
    rejected_by_reason: dict[str, int],
    spool_backlog: int,
    write_lag_s: float,
) -> StoragePoint:
    """One sample of the platform's health: the gateway's counters and the storage drain's backlog."""
    fields: dict[str, FieldValue] = {
        FieldName.RECEIVED: float(received),
        FieldName.STORED: float(stored),
        FieldName.DUPLICATES: float(duplicates),
        FieldName.REJECTED: float(sum(rejected_by_reason.values())),
        FieldName.SPOOL_BACKLOG: float(spool_backlog),
        FieldName.WRITE_LAG_S: float(write_lag_s),
        **{f"{REJECTED_PREFIX}{reason}": float(n) for reason, n in rejected_by_reason.items()},
    }
    return StoragePoint(Measurement.GATEWAY, {Tag.INSTANCE: instance}, fields, epoch_ns(at))


def alert_point(
    *,
    alert_id: str,
    canteen: str,
    district: str,
    rule: str,
    severity: str,
    state: str,
    message: str,
    at: dt.datetime,
) -> StoragePoint:
    """One state change of an alert (the rules engine writes one per change)."""
    return StoragePoint(
        Measurement.ALERT,
        {Tag.CANTEEN: canteen, Tag.DISTRICT: district, Tag.RULE: rule, Tag.SEVERITY: severity, Tag.STATE: state},
        {FieldName.ALERT_ID: alert_id, FieldName.MESSAGE: message, FieldName.COUNT: 1.0},
        epoch_ns(at),
    )


def point_time_ns(ts: dt.datetime, seq: int) -> int:
    """The device's time to the millisecond, plus the record's spool sequence (mod 10^6) as nanoseconds.

    Stable for a record (writing it again overwrites it) and distinct for two records of one device even within
    the same millisecond: their sequence numbers are adjacent, never 10^6 apart.
    """
    ms = (ts - _EPOCH) // dt.timedelta(milliseconds=1)  # exact integer arithmetic, no float rounding
    return ms * 1_000_000 + seq % 1_000_000


def _drop_none(fields: Fields) -> dict[str, FieldValue]:
    return {str(k): v for k, v in fields.items() if v is not None}


def _num(value: float | None) -> float | None:
    return None if value is None else float(value)


#: The platform's verdict on a test (``rules.units.verdict.judged_verdict`` with the region's limits): the
#: platform hands it to storage, which knows no thresholds. Without one, the device's verdict is stored as it is.
Judge = Callable[[TestResult], TestVerdict]


#: What a mapped point becomes: a :class:`StoragePoint` (:func:`points_for`) or a line of line protocol
#: (``storage.line_protocol.lines_for``), from its measurement, tags, fields (``None``: no value) and time.
Build = Callable[[Measurement, dict[Tag, str], Fields, int], T]


def _point(measurement: Measurement, tags: dict[Tag, str], fields: Fields, time_ns: int) -> StoragePoint:
    return StoragePoint(measurement, {str(k): v for k, v in tags.items()}, _drop_none(fields), time_ns)


def points_for(record: SpoolRecord, district: str, judge: Judge | None = None) -> list[StoragePoint]:
    """The points of one stored record. ``district`` comes from the registry (it is not on the wire); a test's
    ``result`` tag and ``passed`` field are the platform's verdict (``judge``), its ``device_result`` the
    device's."""
    return mapped(record, district, judge, _point)


def mapped(record: SpoolRecord, district: str, judge: Judge | None, build: Build[T]) -> list[T]:
    """The mapping from a record to its points, each handed to ``build``: the one place it is written."""
    message = hydrate(record)
    base = {Tag.CANTEEN: record.canteen_id, Tag.DISTRICT: district}
    time_ns = point_time_ns(message.ts, record.seq)
    common: Fields = {FieldName.RECEIVED_AT: record.received_at.isoformat(), FieldName.SKEW_S: record.skew_s}

    device = {**base, Tag.DEVICE: record.device_id}
    match message:
        case TestResult():
            verdict = judge(message) if judge is not None else message.result
            return [
                build(
                    Measurement.RAPID_TEST,
                    {
                        **device,
                        Tag.ITEM_CODE: message.item_code,
                        Tag.METHOD_STD: message.method_std,
                        Tag.RESULT: verdict,
                    },
                    {
                        FieldName.MSG_ID: message.msg_id,
                        FieldName.VALUE: _num(message.value),
                        FieldName.PASSED: 1.0 if verdict == "pass" else 0.0,
                        FieldName.DEVICE_RESULT: message.result,
                        FieldName.SAMPLE_NO: message.sample_no,
                        FieldName.SAMPLE_NAME: message.sample_name,
                        FieldName.FOOD_CATEGORY: message.food_category,
                        FieldName.SUPPLIER: message.supplier,
                        FieldName.BATCH_NO: message.batch_no,
                        FieldName.METHOD: message.method,
                        FieldName.UNIT: message.unit,
                        FieldName.OPERATOR: message.operator,
                        FieldName.REVIEWER: message.reviewer,
                        FieldName.RETEST_OF: message.retest_of,
                        FieldName.CONTROL_DELTA_A: _num(message.control_delta_a),
                        FieldName.ENTERED_BY: message.entered_by,
                        **common,
                    },
                    time_ns,
                )
            ]
        case DeliveryReceived():
            return [
                build(
                    Measurement.DELIVERY,
                    device,
                    {
                        FieldName.MSG_ID: message.msg_id,
                        FieldName.SUPPLIER: message.supplier,
                        FieldName.BATCH_NO: message.batch_no,
                        FieldName.FOODS: "、".join(message.foods),
                        FieldName.FOOD_CATEGORY: message.food_category,
                        FieldName.QUANTITY_KG: _num(message.quantity_kg),
                        FieldName.CERTIFICATES: " ".join(message.certificates) or None,  # no newline in line protocol
                        FieldName.RECEIVED_BY: message.received_by,
                        FieldName.ENTERED_BY: message.entered_by,
                        FieldName.COUNT: 1.0,
                        **common,
                    },
                    time_ns,
                )
            ]
        case DetectorHeartbeat():
            return [
                build(
                    Measurement.DETECTOR,
                    device,
                    {
                        FieldName.MSG_ID: message.msg_id,
                        FieldName.STATE: message.state,
                        FieldName.INCUBATOR_C: float(message.incubator_c),
                        FieldName.REAGENT_LOT: message.reagent_lot,
                        FieldName.REAGENT_EXPIRES: message.reagent_expires.isoformat(),
                        **common,
                    },
                    time_ns,
                )
            ]
        case CabinetReading():
            return [
                build(
                    Measurement.CABINET,
                    device,
                    {
                        FieldName.MSG_ID: message.msg_id,
                        FieldName.TEMP_C: float(message.temp_c),
                        FieldName.DOOR_OPEN: message.door_open,
                        FieldName.POWER_OK: message.power_ok,
                        FieldName.SAMPLES_HELD: float(message.samples_held),
                        **common,
                    },
                    time_ns,
                )
            ]
        case SampleRetained():
            return [
                build(
                    Measurement.SAMPLE_RETENTION,
                    {**base, Tag.CABINET: record.device_id, Tag.MEAL: message.meal, Tag.ACTION: "retained"},
                    {
                        FieldName.MSG_ID: message.msg_id,
                        FieldName.SAMPLE_ID: message.sample_id,
                        FieldName.SLOT: message.slot,
                        FieldName.MEAL_DATE: message.meal_date.isoformat(),
                        FieldName.DISH_NAME: message.dish_name,
                        FieldName.WEIGHT_G: float(message.weight_g),
                        FieldName.OPERATOR: message.operator,
                        FieldName.COUNT: 1.0,
                        **common,
                    },
                    time_ns,
                )
            ]
        case SampleDisposed():
            return [
                build(
                    Measurement.SAMPLE_RETENTION,
                    {**base, Tag.CABINET: record.device_id, Tag.ACTION: "disposed"},
                    {
                        FieldName.MSG_ID: message.msg_id,
                        FieldName.SAMPLE_ID: message.sample_id,
                        FieldName.OPERATOR: message.operator,
                        FieldName.REASON: message.reason,
                        FieldName.COUNT: 1.0,
                        **common,
                    },
                    time_ns,
                )
            ]
        case CameraStream():
            return [
                build(
                    Measurement.CAMERA,
                    device,
                    {
                        FieldName.MSG_ID: message.msg_id,
                        FieldName.FPS: float(message.fps),
                        FieldName.BITRATE_KBPS: float(message.bitrate_kbps),
                        FieldName.RECORDING_OK: message.recording_ok,
                        FieldName.RETENTION_DAYS: float(message.retention_days),
                        **common,
                    },
                    time_ns,
                )
            ]
        case AiViolation():
            return [
                build(
                    Measurement.CAMERA_VIOLATION,
                    {**device, Tag.VIOLATION: message.violation},
                    {
                        FieldName.MSG_ID: message.msg_id,
                        FieldName.CONFIDENCE: float(message.confidence),
                        FieldName.AREA: message.area,
                        FieldName.SNAPSHOT_URL: message.snapshot_url,
                        FieldName.CLIP_URL: message.clip_url,
                        FieldName.COUNT: 1.0,
                        **common,
                    },
                    time_ns,
                )
            ]
        case DeviceStatus():
            return [
                build(
                    Measurement.DEVICE_STATUS,
                    {**device, Tag.KIND: record.kind},
                    {
                        FieldName.STATE: message.state,
                        FieldName.ONLINE: 1.0 if message.state == "online" else 0.0,
                        **common,
                    },
                    time_ns,
                )
            ]
    raise TypeError(f"no storage mapping for {type(message).__name__}")
