"""The canteens' menus: one meal of one day, entered or imported in the console. ``sample.missing`` expects a
sample of each dish on it (the registry's fixed dishes on days without one). Not alerts, but kept in the rules
engine's file, on its store's connection, so that a menu and the judgement made against it move together."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager

_SCHEMA = """
CREATE TABLE IF NOT EXISTS menus (
    canteen_id TEXT NOT NULL,
    day TEXT NOT NULL,
    meal TEXT NOT NULL,
    dishes TEXT NOT NULL,
    entered_by TEXT NOT NULL,
    entered_at TEXT NOT NULL,
    PRIMARY KEY (canteen_id, day, meal)
) WITHOUT ROWID;
"""


class MenuBook:
    """Menus on the rules store's connection, each change in one of its transactions."""

    def __init__(self, db: sqlite3.Connection, transaction: Callable[[], AbstractContextManager[None]]) -> None:
        self._db = db
        self._transaction = transaction
        db.executescript(_SCHEMA)

    def set(self, canteen_id: str, menus: list[tuple[dt.date, str, list[str]]], by: str, at: dt.datetime) -> None:
        """(day, meal, dishes) of one canteen, each replacing what that meal of that day had."""
        with self._transaction():
            self._db.executemany(
                "INSERT INTO menus VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (canteen_id, day, meal) DO UPDATE SET "
                "dishes = excluded.dishes, entered_by = excluded.entered_by, entered_at = excluded.entered_at",
                [
                    (canteen_id, day.isoformat(), meal, json.dumps(dishes, ensure_ascii=False), by, at.isoformat())
                    for day, meal, dishes in menus
                ],
            )

    def dishes(self, canteen_id: str, day: dt.date, meal: str) -> list[str] | None:
        """The dishes on that meal's menu, or None when the canteen entered no menu for it."""
        row = self._db.execute(
            "SELECT dishes FROM menus WHERE canteen_id = ? AND day = ? AND meal = ?",
            (canteen_id, day.isoformat(), meal),
        ).fetchone()
        return list(json.loads(row[0])) if row else None

    def between(self, canteen_id: str, first: dt.date, last: dt.date) -> dict[tuple[dt.date, str], list[str]]:
        rows = self._db.execute(
            "SELECT day, meal, dishes FROM menus WHERE canteen_id = ? AND day BETWEEN ? AND ? ORDER BY day, meal",
            (canteen_id, first.isoformat(), last.isoformat()),
        ).fetchall()
        return {(dt.date.fromisoformat(r[0]), str(r[1])): list(json.loads(r[2])) for r in rows}
