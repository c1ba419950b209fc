"""Pydantic models for every payload of wire contract version 1 (docs/contract.md).

Models are strict: unknown fields are rejected, a string is never coerced into a number, timestamps must carry
an offset and units live in the field names. The ``type`` field discriminates.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from typing import Annotated, Any, Literal, get_args

import pydantic_core
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

from devices.topics import Channel, DeviceKind

MAX_PAYLOAD_BYTES = 64 * 1024
#: How much of a refused payload its dead-letter notice carries; with base64 and the rest, a notice stays far
#: below the production broker's maximum packet size (65 KiB) whatever a device sends.
DEADLETTER_PAYLOAD_BYTES = 16 * 1024
#: How much of a refusal's explanation a notice or receipt carries.
DETAIL_CHARS = 1000

# RFC 3339 date-time. The offset is optional here so that a missing one is reported as a naive timestamp.
RFC3339_PATTERN = r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})?$"
#: What the published JSON Schema says of a timestamp: the offset is required.
RFC3339_WITH_OFFSET = r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$"


class _Rfc3339:
    """A wire timestamp: an RFC 3339 string with an offset in JSON (pydantic alone also takes epoch strings and
    dates), or an aware datetime from Python. All checked inside pydantic-core: a Python callback per message
    cost a sixth of the gateway's time."""

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {"type": "string", "format": "date-time", "pattern": RFC3339_WITH_OFFSET}

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        aware = core_schema.datetime_schema(strict=False, tz_constraint="aware")
        text = core_schema.chain_schema([core_schema.str_schema(pattern=RFC3339_PATTERN, strict=True), aware])
        return core_schema.json_or_python_schema(
            json_schema=text,
            python_schema=core_schema.union_schema(
                [core_schema.datetime_schema(strict=True, tz_constraint="aware"), text]
            ),
        )


#: A timezone-aware instant, written as RFC 3339 with an offset on the wire.
Timestamp = Annotated[dt.datetime, _Rfc3339]

MsgId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$")]
# Free text: no control characters (a newline cannot travel in InfluxDB line protocol, nor belongs in a name).
Text = Annotated[str, Field(min_length=1, max_length=256, pattern=r"^[^\x00-\x1f\x7f]+$")]
#: A standard's code, e.g. ``GB/T 5009.199-2003`` or ``NY/T 448-2001``; it is a storage tag, so no odd characters.
StandardCode = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ./:_-]*[A-Za-z0-9]$")]
Url = Annotated[str, Field(min_length=1, max_length=2048, pattern=r"^https?://\S+$")]
#: ``item_code``: ``{group}.{name}``, lower-case; which codes exist is the item catalogue's (devices/items.py).
ITEM_CODE_PATTERN = r"^[a-z][a-z0-9_]*\.[a-z0-9_]+$"
ItemCode = Annotated[str, Field(pattern=ITEM_CODE_PATTERN, max_length=64)]


class WireModel(BaseModel):
    """Common configuration of every wire payload."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


class Record(WireModel):
    """Telemetry and events: identified by ``msg_id`` and observed at ``ts`` on the device."""

    msg_id: MsgId
    ts: Timestamp


# --- detector ---------------------------------------------------------------------------------------------


class DetectorHeartbeat(Record):
    type: Literal["detector.heartbeat"]
    state: Literal["idle", "testing", "error"]
    incubator_c: float
    reagent_lot: Text
    reagent_expires: dt.date


FoodCategory = Literal["vegetable", "fruit", "meat", "aquatic", "egg", "grain", "other"]
TestMethod = Literal["enzyme_inhibition", "test_card", "colloidal_gold", "spectrophotometry"]
TestVerdict = Literal["pass", "fail", "suspect", "invalid"]
TestUnit = Literal["%", "mg/kg", "qualitative"]


class TestResult(Record):
    """One rapid test of one sample of a delivered batch."""

    __test__ = False  # not a pytest test class, whatever its name says
    #: The value/unit rules of the validator below, in the published JSON Schema too.
    model_config = ConfigDict(
        json_schema_extra={
            "allOf": [
                {
                    "if": {"properties": {"unit": {"const": "qualitative"}}},
                    "then": {"properties": {"value": {"type": "null"}}},
                    "else": {"properties": {"value": {"type": "number"}}},
                },
                {
                    "if": {"properties": {"unit": {"const": "%"}}},
                    "then": {"properties": {"value": {"maximum": 100}}},
                },
            ]
        }
    )

    type: Literal["test.result"]
    sample_no: Text
    sample_name: Text
    food_category: FoodCategory
    supplier: Text
    batch_no: Text
    item_code: ItemCode
    method: TestMethod
    method_std: StandardCode
    value: Annotated[float, Field(ge=0)] | None
    unit: TestUnit
    result: TestVerdict
    operator: Text
    reviewer: Text | None = None
    retest_of: Text | None = None
    control_delta_a: float | None = None
    #: Set by the platform's console on a result entered by hand (strip tests without a networked reader):
    #: the account that entered it. The gateway refuses it from a device.
    entered_by: Text | None = None

    @model_validator(mode="after")
    def _value_matches_unit(self) -> TestResult:
        if self.unit == "qualitative" and self.value is not None:
            raise ValueError("a qualitative test carries no value: value must be null when unit is 'qualitative'")
        if self.unit != "qualitative" and self.value is None:
            raise ValueError(f"a test measured in {self.unit!r} must carry its value")
        if self.unit == "%" and self.value is not None and self.value > 100:
            raise ValueError(f"an inhibition rate of {self.value} % is above 100 %")
        return self


class DeliveryReceived(Record):
    """One delivery a canteen received (进货台账, the programme's 索证索票): from whom, which batch, which foods,
    how much, and the supplier's certificates, so that a batch can be traced to every canteen that received it,
    tested or not. Sent from the test room's terminal (the detector's event channel) or entered in the console."""

    type: Literal["delivery.received"]
    supplier: Text
    batch_no: Text
    foods: Annotated[list[Text], Field(min_length=1, max_length=50)]
    food_category: FoodCategory
    quantity_kg: Annotated[float, Field(gt=0)] | None = None
    certificates: Annotated[list[Url], Field(max_length=10)] = Field(default_factory=list)
    received_by: Text
    #: As on ``test.result``: set only by the platform's console, for a delivery entered by hand.
    entered_by: Text | None = None


# --- cabinet ----------------------------------------------------------------------------------------------


class CabinetReading(Record):
    type: Literal["cabinet.reading"]
    temp_c: float
    door_open: bool
    power_ok: bool
    samples_held: Annotated[int, Field(ge=0)]


Meal = Literal["breakfast", "lunch", "dinner", "snack"]


class SampleRetained(Record):
    type: Literal["sample.retained"]
    sample_id: Text
    slot: Text
    meal_date: dt.date
    meal: Meal
    dish_name: Text
    weight_g: Annotated[float, Field(gt=0)]
    operator: Text


class SampleDisposed(Record):
    type: Literal["sample.disposed"]
    sample_id: Text
    operator: Text
    reason: Text


# --- camera -----------------------------------------------------------------------------------------------


class CameraStream(Record):
    type: Literal["camera.stream"]
    fps: Annotated[float, Field(ge=0)]
    bitrate_kbps: Annotated[float, Field(ge=0)]
    recording_ok: bool
    retention_days: Annotated[int, Field(ge=0)]


Violation = Literal[
    "no_mask", "no_hat", "no_uniform", "smoking", "phone", "rodent", "bin_open", "unattended_flame", "stranger"
]
KitchenArea = Literal["receiving", "prep", "cooking", "washing", "disinfection", "storage", "sample_room", "serving"]


class AiViolation(Record):
    type: Literal["ai.violation"]
    violation: Violation
    confidence: Annotated[float, Field(ge=0, le=1)]
    area: KitchenArea
    snapshot_url: Url
    clip_url: Url | None = None


# --- every device ----------------------------------------------------------------------------------------


class DeviceStatus(WireModel):
    """Availability, retained; the device's last will publishes ``offline``."""

    type: Literal["device.status"]
    state: Literal["online", "offline"]
    ts: Timestamp


# --- platform -> device ----------------------------------------------------------------------------------


ReceiptStatus = Literal["stored", "duplicate", "rejected"]


class Receipt(WireModel):
    msg_id: MsgId
    status: ReceiptStatus
    reason: str | None = None


#: What follows the ``msg_id`` in a receipt without a reason, per status.
_RECEIPT_ENDINGS: dict[str, bytes] = {
    status: b',"status":' + pydantic_core.to_json(status) + b',"reason":null}' for status in get_args(ReceiptStatus)
}


def receipt_payload(msg_id: str, status: ReceiptStatus, reason: str | None = None) -> bytes:
    """``Receipt(...).model_dump_json()`` for a ``msg_id`` already validated, in a tenth of the time: the
    gateway sends one per record (only the id needs encoding; the rest is the same bytes every time)."""
    if reason is None:
        return b'{"msg_id":' + pydantic_core.to_json(msg_id) + _RECEIPT_ENDINGS[status]
    return pydantic_core.to_json({"msg_id": msg_id, "status": status, "reason": reason})


RecordMessage = (
    DetectorHeartbeat
    | TestResult
    | DeliveryReceived
    | CabinetReading
    | SampleRetained
    | SampleDisposed
    | CameraStream
    | AiViolation
)
DeviceMessage = RecordMessage | DeviceStatus

#: The topic -> model table: which payload types each kind of device publishes on each channel.
CATALOG: dict[tuple[DeviceKind, Channel], tuple[type[WireModel], ...]] = {
    (DeviceKind.DETECTOR, Channel.TELEMETRY): (DetectorHeartbeat,),
    (DeviceKind.DETECTOR, Channel.EVENT): (TestResult, DeliveryReceived),
    (DeviceKind.CABINET, Channel.TELEMETRY): (CabinetReading,),
    (DeviceKind.CABINET, Channel.EVENT): (SampleRetained, SampleDisposed),
    (DeviceKind.CAMERA, Channel.TELEMETRY): (CameraStream,),
    (DeviceKind.CAMERA, Channel.EVENT): (AiViolation,),
    **{(kind, Channel.STATUS): (DeviceStatus,) for kind in DeviceKind},
}


def type_name(model: type[WireModel]) -> str:
    """The ``type`` discriminator value of a payload model."""
    field = model.model_fields["type"]
    (value,) = field.annotation.__args__  # type: ignore[union-attr]
    return str(value)


#: ``type`` value -> model, for every device payload.
MODELS_BY_TYPE: dict[str, type[WireModel]] = {
    type_name(model): model for models in CATALOG.values() for model in models
}


_ALLOWED_TYPES: dict[tuple[DeviceKind, Channel], tuple[str, ...]] = {
    key: tuple(type_name(model) for model in models) for key, models in CATALOG.items()
}


def allowed_types(kind: DeviceKind, channel: Channel) -> tuple[str, ...]:
    return _ALLOWED_TYPES.get((kind, channel), ())


# --- platform -> operators -------------------------------------------------------------------------------


class DeadLetter(WireModel):
    """A message the platform refused, published on ``shian/v1/deadletter/{reason}``."""

    reason: str
    detail: str
    topic: str
    #: The device the topic names: the broker's ACL ties a device's topics to its username and client id.
    client_id: str | None
    #: The payload, base64, cut to its first DEADLETTER_PAYLOAD_BYTES bytes when ``truncated``: a notice must
    #: fit the broker's maximum packet size. The spool keeps the whole payload (``shian deadletter show``).
    payload_b64: str
    received_at: AwareDatetime
    truncated: bool = False
    #: The whole payload's size and SHA-256, so the notice still identifies it when cut.
    payload_size: Annotated[int, Field(ge=0)] = 0
    payload_sha256: str = ""

    @classmethod
    def of(cls, payload: bytes, **fields: Any) -> DeadLetter:
        """The notice for a refused ``payload``: whole when it is small enough, cut otherwise."""
        kept = payload[:DEADLETTER_PAYLOAD_BYTES]
        return cls(
            payload_b64=base64.b64encode(kept).decode("ascii"),
            truncated=len(kept) < len(payload),
            payload_size=len(payload),
            payload_sha256=hashlib.sha256(payload).hexdigest(),
            **fields,
        )
