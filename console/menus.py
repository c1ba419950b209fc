"""A canteen's weekly menu as CSV: ``date,meal,dishes`` with the dishes separated by ``、`` or ``;``.

    date,meal,dishes
    2026-12-07,lunch,番茄炒蛋、青椒肉丝、清炒白菜、米饭

Every problem names its line, so that a school fixing a spreadsheet export knows where to look.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from typing import NamedTuple, get_args

from devices.messages import Meal

MEALS: tuple[str, ...] = get_args(Meal)
#: Dishes per meal at most, and characters per dish: a menu, not a document.
MAX_DISHES = 30
MAX_DISH_CHARS = 64
_SEPARATORS = re.compile(r"[、;；,，]")


class MenuRow(NamedTuple):
    day: dt.date
    meal: str
    dishes: list[str]


class MenuError(ValueError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def parse_menu_csv(text: str, source: str = "menu.csv") -> list[MenuRow]:
    """The rows of a menu file; :class:`MenuError` lists every bad line (``menu.csv:3: ...``)."""
    rows: list[MenuRow] = []
    problems: list[str] = []
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))  # spreadsheets save UTF-8 with a byte-order mark
    for number, fields in enumerate(reader, start=1):
        if not fields or all(not f.strip() for f in fields):
            continue
        if number == 1 and fields[0].strip().lower() in ("date", "日期"):
            continue  # the header
        if len(fields) < 3:
            problems.append(f"{source}:{number}: expected date,meal,dishes; got {len(fields)} column(s)")
            continue
        day_text, meal, dishes_text = fields[0].strip(), fields[1].strip().lower(), ",".join(fields[2:])
        try:
            day = dt.date.fromisoformat(day_text)
        except ValueError:
            problems.append(f"{source}:{number}: {day_text!r} is not a date (YYYY-MM-DD)")
            continue
        if meal not in MEALS:
            problems.append(f"{source}:{number}: meal {meal!r} is not one of {', '.join(MEALS)}")
            continue
        dishes = [d.strip() for d in _SEPARATORS.split(dishes_text) if d.strip()]
        if not dishes:
            problems.append(f"{source}:{number}: no dishes")
        elif len(dishes) > MAX_DISHES or any(len(d) > MAX_DISH_CHARS for d in dishes):
            problems.append(f"{source}:{number}: at most {MAX_DISHES} dishes of {MAX_DISH_CHARS} characters")
        elif any(not d.isprintable() for d in dishes):
            problems.append(f"{source}:{number}: a dish name has a control character")
        else:
            rows.append(MenuRow(day, meal, dishes))
    if problems:
        raise MenuError(problems)
    if not rows:
        raise MenuError([f"{source}: no menu rows (date,meal,dishes)"])
    return rows
