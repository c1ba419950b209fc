"""Strip results typed into the console's form, several samples at once, made into the contract's
``test.result`` records or refused field by field in the form's language: nothing is cut, nothing unknown passes,
and the day cannot be rewritten.

What the samples of one delivery share is typed once: the supplier, the delivery batch, the tester and the time
the strips were read (HH:MM, required: always today in the region's zone, whatever the browser sends, and never
later than now). Each sample row names the food, its category, the test (an item of the catalogue with one of its
standards, which brings the method and unit with it), the reading and the verdict read off the strip. Who entered
it is the account (``entered_by``).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from console.words import Words
from devices.items import ItemCatalogue
from devices.messages import TestResult

#: Typed once for the whole form: field -> its label's key.
SHARED_FIELDS = {"supplier": "supplier", "batch_no": "batch", "operator": "tester"}
#: Typed per sample row (``{field}-{row}``): field -> its label's key.
ROW_FIELDS = {
    "sample_no": "sample_no",
    "sample_name": "sample",
    "food_category": "food_category",
    "test": "item_method",
    "value": "value",
    "result": "verdict",
}
#: The time the strips were read, HH:MM.
READ_AT = "read_at"
#: Sample rows the form offers, and at most.
ROWS, MAX_ROWS = 5, 20
#: A clock a little ahead of the server's is not "the future".
FUTURE_TOLERANCE = dt.timedelta(minutes=1)
#: What any one form value may be at most, whatever the field (the contract's own limits are checked per field).
MAX_VALUE_CHARS = 1000
_SCHEMA = TestResult.model_json_schema()["properties"]
_VERDICTS = ("pass", "fail", "suspect", "invalid")
_CATEGORIES = ("vegetable", "fruit", "meat", "aquatic", "egg", "grain", "other")


def _limit(field: str) -> int | None:
    spec = _SCHEMA.get(field, {})
    limits = [s.get("maxLength") for s in (spec, *spec.get("anyOf", [])) if s.get("maxLength")]
    return limits[0] if limits else None


LIMITS = {field: limit for field in (*SHARED_FIELDS, *ROW_FIELDS) if (limit := _limit(field)) is not None}


@dataclass(frozen=True)
class TestChoice:
    """One way to test: an item by one of its standards (the method and unit come with the standard)."""

    __test__ = False  # not a pytest class
    item_code: str
    method_std: str
    method: str
    unit: str

    @property
    def key(self) -> str:
        return f"{self.item_code}|{self.method_std}|{self.method}"

    def label(self, words: Words) -> str:
        unit = words("unit", self.unit)
        return f"{words('item', self.item_code)} · {words('method', self.method)} · {self.method_std}（{unit}）"


def test_choices(items: ItemCatalogue) -> list[TestChoice]:
    return [TestChoice(item.code, s.code, s.method, s.unit) for item in items for s in item.standards]


def row_count(text: str | None) -> int:
    """How many sample rows a form has (its hidden ``rows``), within 1..MAX_ROWS."""
    try:
        return max(1, min(MAX_ROWS, int(text or ROWS)))
    except ValueError:
        return ROWS


def read_time(text: str, *, now: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    """Today (in ``tz``) at HH:MM; ValueError with the reason's key when it is no such time or is still ahead."""
    try:
        clock = dt.time.fromisoformat(text)
    except ValueError:
        raise ValueError("bad_read_time") from None
    today = now.astimezone(tz).date()
    at = dt.datetime.combine(today, clock.replace(second=0, microsecond=0, tzinfo=None), tz)
    if at > now + FUTURE_TOLERANCE:
        raise ValueError("future_read_time")
    return at


def _number(text: str) -> float | None:
    """The value as a finite number; ValueError when it is none; None if empty."""
    if not text:
        return None
    number = float(text)  # ValueError for text that is no number
    if not math.isfinite(number):
        raise ValueError(text)
    return number


class _Errors:
    """The form's errors, one per field, each naming it (and its row) in the form's words."""

    def __init__(self, words: Words) -> None:
        self.words = words
        self.lines: list[str] = []
        self._named: set[str] = set()

    def add(self, field: str, reason: str, row: int | None = None, **params: object) -> None:
        label = self.words.t(ROW_FIELDS.get(field) or SHARED_FIELDS.get(field) or field)
        where = self.words.t("row_field", n=row + 1, label=label) if row is not None else label
        if where not in self._named:
            self._named.add(where)
            self.lines.append(self.words.t("field_error", where=where, reason=self.words.t(reason, **params)))


def entry_payloads(
    form: Mapping[str, str],
    *,
    username: str,
    now: dt.datetime,
    tz: ZoneInfo,
    words: Words,
    rows: int = ROWS,
) -> tuple[list[dict[str, Any]], list[str]]:
    """The ``test.result`` of every filled-in sample row of a submitted form, or the errors that refuse the
    form (each naming its field and row). A row is filled in when its sample, number or reading is."""
    errors = _Errors(words)
    shared = {field: form.get(field, "").strip() for field in SHARED_FIELDS}
    for field, text in shared.items():
        _check_text(errors, field, text)
    ts = now.astimezone(tz)
    try:
        ts = read_time(form.get(READ_AT, "").strip()[:16], now=now, tz=tz)
    except ValueError as exc:
        errors.add(READ_AT, str(exc), now=now.astimezone(tz).strftime("%H:%M"))
    choices = {choice.key: choice for choice in test_choices(words.items)}
    form_id = (form.get("form_id") or "")[:48] or secrets.token_hex(8)
    common = _Shared(shared, ts, username, form_id, choices)
    payloads = []
    for row in range(rows):
        typed = {field: form.get(f"{field}-{row}", "").strip() for field in ROW_FIELDS}
        if not (typed["sample_no"] or typed["sample_name"] or typed["value"]):
            continue
        payload = _row_payload(errors, row, typed, common)
        if payload is not None:
            payloads.append(payload)
    if not payloads and not errors.lines:
        errors.add("sample_name", "no_samples", 0)
    return payloads, errors.lines


def _check_text(errors: _Errors, field: str, text: str, row: int | None = None) -> None:
    limit = LIMITS.get(field, MAX_VALUE_CHARS)
    if not text:
        errors.add(field, "required", row)
    elif len(text) > limit:
        errors.add(field, "too_long", row, limit=limit, length=len(text))


@dataclass(frozen=True)
class _Shared:
    """What every row of one form shares."""

    fields: dict[str, str]
    ts: dt.datetime
    username: str
    form_id: str
    choices: dict[str, TestChoice]


def _row_payload(errors: _Errors, row: int, typed: dict[str, str], shared: _Shared) -> dict[str, Any] | None:
    ts, form_id, choices = shared.ts, shared.form_id, shared.choices
    before = len(errors.lines)
    sample_no = typed["sample_no"] or f"{ts:%Y%m%d}-{form_id[:6]}-{row + 1}"
    _check_text(errors, "sample_name", typed["sample_name"], row)
    if len(sample_no) > LIMITS.get("sample_no", MAX_VALUE_CHARS):
        _check_text(errors, "sample_no", sample_no, row)
    if typed["food_category"] not in _CATEGORIES:
        errors.add("food_category", "not_a_choice", row)
    if typed["result"] not in _VERDICTS:
        errors.add("result", "not_a_choice", row)
    choice = choices.get(typed["test"])
    if choice is None:
        errors.add("test", "unknown_item", row)
    value: float | None = None
    try:
        value = _number(typed["value"])
    except ValueError:
        errors.add("value", "not_a_number", row)
    if choice is not None and choice.unit == "qualitative" and typed["value"]:
        errors.add("value", "no_value_for_qualitative", row)
    elif choice is not None and choice.unit != "qualitative" and not typed["value"]:
        errors.add("value", "value_required", row, unit=choice.unit)
    elif choice is not None and value is not None and (value < 0 or (choice.unit == "%" and value > 100)):
        errors.add("value", "value_out_of_range", row, unit=choice.unit)
    if len(errors.lines) > before or choice is None:
        return None
    payload: dict[str, Any] = {
        "type": "test.result",
        # One form row, one record: the msg_id is the form's own (made when it was opened) and the row's, so
        # that a second submit of the same page is the same records again (duplicates), as a device's resend is.
        "msg_id": f"{form_id}-{row + 1}",
        "ts": ts.isoformat(),
        "sample_no": sample_no,
        "sample_name": typed["sample_name"],
        "food_category": typed["food_category"],
        **shared.fields,
        "item_code": choice.item_code,
        "method": choice.method,
        "method_std": choice.method_std,
        "value": value,
        "unit": choice.unit,
        "result": typed["result"],
        "entered_by": shared.username,
    }
    try:  # the contract's own model: the form says what is wrong before anything is sent
        TestResult.model_validate_json(json.dumps(payload))
    except ValidationError as exc:
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "value"
            errors.add(field if field in ROW_FIELDS or field in SHARED_FIELDS else "value", "invalid", row)
        return None
    return payload
