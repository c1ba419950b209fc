"""The identifier rule shared by canteens, devices and message ids in topics.

An id is 1-64 characters of ``[A-Za-z0-9_-]``. Nothing else may appear in a topic level or a broker
username, so an id can never smuggle ``/``, ``+`` or ``#`` into a topic or an ACL pattern.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

ID_PATTERN = r"[A-Za-z0-9_-]{1,64}"
_ID_RE = re.compile(rf"\A{ID_PATTERN}\Z")

#: Topic words that can never be a canteen id: they name the platform's own topic trees.
RESERVED_CANTEEN_IDS = frozenset({"alerts", "deadletter", "public"})


def is_valid_id(value: str) -> bool:
    """True when ``value`` satisfies the id rule."""
    return bool(_ID_RE.match(value))


def check_id(value: str, what: str = "id") -> str:
    """Return ``value`` unchanged, or raise ``ValueError`` saying which rule it breaks."""
    if not isinstance(value, str):
        problem = f"must be a string, not {type(value).__name__}"
    elif not value:
        problem = "is empty"
    elif len(value) > 64:
        problem = f"{value[:20]!r}... is {len(value)} characters long"
    elif not _ID_RE.match(value):
        problem = f"{value!r} has a character outside A-Z a-z 0-9 _ -"
    else:
        return value
    raise ValueError(f"{what} {problem} (the id rule: 1-64 characters of A-Z a-z 0-9 _ -)")


def check_canteen_id(value: str) -> str:
    """Like :func:`check_id`, and refuse the reserved topic words."""
    check_id(value, "canteen id")
    if value in RESERVED_CANTEEN_IDS:
        raise ValueError(f"canteen id {value!r} is a reserved topic word")
    return value


#: Pydantic field types that apply the rule with the messages above.
CanteenId = Annotated[str, AfterValidator(check_canteen_id)]
DeviceId = Annotated[str, AfterValidator(lambda value: check_id(value, "device id"))]
