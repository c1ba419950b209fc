"""A strip result typed into the console's form, made into the contract's ``test.result`` or refused field by
field in the form's language: nothing is cut, nothing unknown passes, and the day cannot be rewritten.

The test's time is the time the strip was read, typed as HH:MM (required): always today (the server's day in the
region's zone, whatever the browser sends) and never later than now. Who entered it is the account
(``entered_by``); when, the gateway's own receipt time of the record.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import secrets
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from console.words import Words
from devices.messages import TestResult

#: The form's fields in its order, each a field of ``test.result`` (docs/contract.md), with its label's key.
FORM_FIELDS = {
    "sample_no": "sample_no",
    "sample_name": "sample",
    "food_category": "food_category",
    "supplier": "supplier",
    "batch_no": "batch",
    "item_code": "item",
    "method": "method",
    "method_std": "method_std",
    "value": "value",
    "unit": "unit",
    "result": "verdict",
    "operator": "tester",
}
#: The time the strip was read, HH:MM.
READ_AT = "read_at"
#: A clock a little ahead of the server's is not "the future".
FUTURE_TOLERANCE = dt.timedelta(minutes=1)
#: What any one form value may be at most, whatever the field (the contract's own limits are checked per field).
MAX_VALUE_CHARS = 1000
_SCHEMA = TestResult.model_json_schema()["properties"]


def _limit(field: str) -> int | None:
    spec = _SCHEMA.get(field, {})
    limits = [s.get("maxLength") for s in (spec, *spec.get("anyOf", [])) if s.get("maxLength")]
    return limits[0] if limits else None


LIMITS = {field: limit for field in FORM_FIELDS if (limit := _limit(field)) is not None}


def _label(words: Words, field: str) -> str:
    return words.t(FORM_FIELDS.get(field, field)) if field in FORM_FIELDS or field == READ_AT else field


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


def _number(text: str) -> float | str | None:
    """The value as a finite number; the text itself when it is none (the form then says so); None if empty."""
    if not text:
        return None
    try:
        number = float(text)
    except ValueError:
        return text
    return number if math.isfinite(number) else text


def entry_payload(
    form: Mapping[str, str], *, username: str, now: dt.datetime, tz: ZoneInfo, words: Words
) -> tuple[dict[str, Any], list[str]]:
    """The ``test.result`` of a submitted form, or the errors that refuse it (each naming its field)."""
    errors: list[str] = []
    values = {field: form.get(field, "").strip() for field in FORM_FIELDS}
    for field, text in values.items():
        limit = LIMITS.get(field, MAX_VALUE_CHARS)
        if len(text) > limit:
            errors.append(f"{_label(words, field)}：{words.t('too_long', limit=limit, length=len(text))}")
    if values["item_code"] and values["item_code"] not in words.items:
        errors.append(f"{_label(words, 'item_code')}：{words.t('unknown_item')}")
    ts = now.astimezone(tz)
    try:
        ts = read_time(form.get(READ_AT, "").strip()[:16], now=now, tz=tz)
    except ValueError as exc:
        errors.append(f"{_label(words, READ_AT)}：{words.t(str(exc), now=now.astimezone(tz).strftime('%H:%M'))}")
    value = _number(values["value"])
    if value is not None and not isinstance(value, float):
        errors.append(f"{_label(words, 'value')}：{words.t('not_a_number')}")
    payload: dict[str, Any] = {
        "type": "test.result",
        # One form, one record: the msg_id is the form's own, made when it was opened, so that a second submit
        # of the same page is the same record again (a duplicate), as a device's resend is.
        "msg_id": (form.get("form_id") or "")[:64] or secrets.token_hex(8),
        "ts": ts.isoformat(),
        **{field: v for field, v in values.items() if field != "value" and v},
        "value": value,
        "entered_by": username,
    }
    named = {error.split("：", 1)[0] for error in errors}
    try:  # the contract's own model: the form says what is wrong before anything is sent
        TestResult.model_validate_json(json.dumps(payload))
    except ValidationError as exc:
        for error in exc.errors():
            # the model's own checks (no field in loc) are of the value against its unit
            field = str(error["loc"][0]) if error["loc"] else "value"
            label = _label(words, field)
            if label not in named:  # one reason per field: the first, in the form's words
                errors.append(f"{label}：{error['msg']}")
    return payload, errors
