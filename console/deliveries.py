"""A delivery typed into the receiving ledger (进货台账) in the console, made into the contract's
``delivery.received`` or refused field by field in the form's language, as strip results are
(``console.manual_entry``): nothing cut, nothing unknown passes, always today and never ahead."""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import secrets
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from console.manual_entry import read_time
from console.words import Words
from devices.messages import DeliveryReceived
from devices.vocabulary import CATEGORIES

#: The form's fields: field -> its label's key.
FIELDS = {
    "supplier": "supplier",
    "batch_no": "batch",
    "foods": "foods",
    "food_category": "food_category",
    "quantity_kg": "quantity_kg",
    "certificates": "certificates",
    "received_by": "received_by",
}
RECEIVED_AT = "received_at"
_SEPARATORS = re.compile(r"[、,，;；\n]")
_MAX_CHARS = 4000


def delivery_payload(
    form: Mapping[str, str], *, username: str, now: dt.datetime, tz: ZoneInfo, words: Words
) -> tuple[dict[str, Any], list[str]]:
    """The ``delivery.received`` of a submitted form, or the errors that refuse it (each naming its field)."""
    errors: list[str] = []

    def refuse(field: str, reason: str, **params: object) -> None:
        label = words.t(FIELDS.get(field, field))
        errors.append(words.t("field_error", where=label, reason=words.t(reason, **params)))

    values = {field: form.get(field, "").strip() for field in FIELDS}
    for field, text in values.items():
        if len(text) > _MAX_CHARS:
            refuse(field, "too_long", limit=_MAX_CHARS, length=len(text))
    for field in ("supplier", "batch_no", "foods", "received_by"):
        if not values[field]:
            refuse(field, "required")
    if values["food_category"] not in CATEGORIES:
        refuse("food_category", "not_a_choice")
    quantity: float | None = None
    if values["quantity_kg"]:
        try:
            quantity = float(values["quantity_kg"])
        except ValueError:
            quantity = math.nan
        if not math.isfinite(quantity) or quantity <= 0:
            refuse("quantity_kg", "not_a_number")
    ts = now.astimezone(tz)
    try:
        ts = read_time(form.get(RECEIVED_AT, "").strip()[:16], now=now, tz=tz)
    except ValueError as exc:
        errors.append(
            words.t(
                "field_error",
                where=words.t(RECEIVED_AT),
                reason=words.t(str(exc), now=now.astimezone(tz).strftime("%H:%M")),
            )
        )
    payload: dict[str, Any] = {
        "type": "delivery.received",
        "msg_id": (form.get("form_id") or "")[:64] or secrets.token_hex(8),
        "ts": ts.isoformat(),
        "supplier": values["supplier"],
        "batch_no": values["batch_no"],
        "foods": [f.strip() for f in _SEPARATORS.split(values["foods"]) if f.strip()],
        "food_category": values["food_category"],
        "quantity_kg": quantity,
        "certificates": values["certificates"].split(),
        "received_by": values["received_by"],
        "entered_by": username,
    }
    if errors:
        return payload, errors
    try:  # the contract's own model: what no check above names (a link that is no link, too many foods)
        DeliveryReceived.model_validate_json(json.dumps(payload))
    except ValidationError as exc:
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "foods"
            refuse(field if field in FIELDS else "foods", "invalid")
    return payload, errors
