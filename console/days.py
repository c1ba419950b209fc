"""The days the console answers for: one range for every date a page, a form or the API is given, checked where
text becomes a date, so that a date far outside the calendar (9999-12-31, 0001-01-01) is refused with its reason
(400 or 422) instead of overflowing the arithmetic of day bounds into a 500."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import AfterValidator

from runtime.errors import ShianError

EARLIEST_DAY = dt.date(2000, 1, 1)
LATEST_DAY = dt.date(2099, 12, 31)


class DayOutOfRange(ShianError, ValueError):
    """A date outside :data:`EARLIEST_DAY` .. :data:`LATEST_DAY`, or text that is no date at all."""


def check_day(day: dt.date) -> dt.date:
    if not EARLIEST_DAY <= day <= LATEST_DAY:
        raise DayOutOfRange(f"{day.isoformat()} is outside {EARLIEST_DAY.isoformat()} to {LATEST_DAY.isoformat()}")
    return day


def parse_day(text: str | None) -> dt.date | None:
    """A YYYY-MM-DD value, None when missing; :class:`DayOutOfRange` when it is no date or out of range."""
    if not text:
        return None
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise DayOutOfRange(f"{text[:40]!r} is not a date (YYYY-MM-DD)") from None
    return check_day(day)


#: A date the API accepts: out of range is a 422 naming the parameter, like any other invalid value.
Day = Annotated[dt.date, AfterValidator(check_day)]
