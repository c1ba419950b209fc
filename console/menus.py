"""A canteen's weekly menu as CSV, as a school's spreadsheet saves it: ``日期,餐次,菜品`` with the dishes separated
by ``、``, ``;`` or commas (half- or full-width).

    日期,餐次,菜品
    2026-12-07,午餐,番茄炒蛋、青椒肉丝、清炒白菜、米饭

A file comes in UTF-8 (with or without the byte-order mark) or in GB18030/GBK, as Excel on Chinese Windows saves
it. Dates may be written 2026-12-07, 2026/12/7 or 2026年12月7日; meals by their Chinese names (早餐, 午餐 or 中餐,
晚餐, 加餐) or their codes. Every problem names its line and is said in the reader's language, so that a school
fixing a spreadsheet knows where to look.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from typing import NamedTuple, get_args

from devices.messages import Meal

MEALS: tuple[str, ...] = get_args(Meal)
#: What a school may write for each meal, besides its code.
MEAL_NAMES: dict[str, str] = {
    "早餐": "breakfast",
    "早饭": "breakfast",
    "午餐": "lunch",
    "中餐": "lunch",
    "午饭": "lunch",
    "晚餐": "dinner",
    "晚饭": "dinner",
    "加餐": "snack",
    "点心": "snack",
}
#: Dishes per meal at most, and characters per dish: a menu, not a document.
MAX_DISHES = 30
MAX_DISH_CHARS = 64
_SEPARATORS = re.compile(r"[、;；,，]")
_DATE = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?$")


class MenuRow(NamedTuple):
    day: dt.date
    meal: str
    dishes: list[str]


class MenuProblem(NamedTuple):
    """One problem: where (``menu.csv:3``), the key of its words (console.words ``menu_*``) and their values."""

    where: str
    key: str
    params: dict[str, object]


class MenuError(ValueError):
    def __init__(self, problems: list[MenuProblem]) -> None:
        super().__init__("\n".join(f"{p.where}: {p.key} {p.params}" for p in problems))
        self.problems = problems


def decode_menu(raw: bytes, source: str = "menu.csv") -> str:
    """The text of an uploaded file: UTF-8 if it is, else GB18030 (which reads GBK and GB2312 too)."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("gb18030")
    except UnicodeDecodeError:
        raise MenuError([MenuProblem(source, "menu_encoding", {})]) from None


def _day(text: str) -> dt.date | None:
    match = _DATE.match(text)
    if match is None:
        return None
    try:
        return dt.date(*(int(part) for part in match.groups()))
    except ValueError:
        return None


def _fields(line: list[str]) -> list[str]:
    """A row's columns; a line written with full-width commas between its columns is split on them."""
    if len(line) == 1 and "，" in line[0]:
        return line[0].split("，", 2)
    return line


def _row(where: str, fields: list[str], serves: frozenset[str] | None) -> MenuRow | MenuProblem:
    if len(fields) < 3:
        return MenuProblem(where, "menu_columns", {"count": len(fields)})
    day_text, meal_text, dishes_text = fields[0].strip(), fields[1].strip(), ",".join(fields[2:])
    day = _day(day_text)
    meal = MEAL_NAMES.get(meal_text, meal_text.lower())
    dishes = [d.strip() for d in _SEPARATORS.split(dishes_text) if d.strip()]
    if day is None:
        return MenuProblem(where, "menu_bad_date", {"text": day_text[:40]})
    if meal not in MEALS:
        return MenuProblem(where, "menu_bad_meal", {"text": meal_text[:40]})
    if serves is not None and meal not in serves:
        return MenuProblem(where, "menu_not_served", {"meal": meal})
    if not dishes:
        return MenuProblem(where, "menu_no_dishes", {})
    if len(dishes) > MAX_DISHES or any(len(d) > MAX_DISH_CHARS for d in dishes):
        return MenuProblem(where, "menu_too_many", {"dishes": MAX_DISHES, "chars": MAX_DISH_CHARS})
    if any(not d.isprintable() for d in dishes):
        return MenuProblem(where, "menu_control", {})
    return MenuRow(day, meal, dishes)


def parse_menu_csv(text: str, source: str = "menu.csv", *, serves: frozenset[str] | None = None) -> list[MenuRow]:
    """The rows of a menu file; :class:`MenuError` lists every bad line. ``serves``: the meals the canteen
    serves (a menu for another meal is refused); None: any."""
    rows: list[MenuRow] = []
    problems: list[MenuProblem] = []
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    for number, line in enumerate(reader, start=1):
        where = f"{source}:{number}"
        fields = _fields(line)
        if not fields or all(not f.strip() for f in fields):
            continue
        if number == 1 and fields[0].strip().lower() in ("date", "日期"):
            continue  # the header
        row = _row(where, fields, serves)
        if isinstance(row, MenuRow):
            rows.append(row)
        else:
            problems.append(row)
    if problems:
        raise MenuError(problems)
    if not rows:
        raise MenuError([MenuProblem(source, "menu_empty", {})])
    return rows
