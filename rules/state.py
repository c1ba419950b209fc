"""A rule unit's durable state: typed tables of key -> value, saved in the rules store with the alerts.

A unit changes its tables in memory while it evaluates; the engine writes the changed keys in the same
transaction as the alerts and the checkpoint, so a crash never keeps one without the other. Each table is one
namespace of the store's ``engine_state``, its values JSON as pydantic dumps them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any, Generic, TypeVar

from pydantic import TypeAdapter

V = TypeVar("V")


class Table(Generic[V]):
    """key -> value of one type, remembering which keys changed since the last :meth:`changes`."""

    def __init__(self, namespace: str, value_type: Any) -> None:
        self.namespace = namespace
        self._adapter: TypeAdapter[V] = TypeAdapter(value_type)
        self._values: dict[str, V] = {}
        self._changed: set[str] = set()

    def load(self, saved: dict[str, Any]) -> None:
        """The values as the store kept them (JSON), checked against the table's type."""
        self._values = {key: self._adapter.validate_python(value) for key, value in saved.items()}
        self._changed.clear()

    def get(self, key: str) -> V | None:
        return self._values.get(key)

    def __contains__(self, key: str) -> bool:
        return key in self._values

    def __len__(self) -> int:
        return len(self._values)

    def put(self, key: str, value: V) -> None:
        self._values[key] = value
        self._changed.add(key)

    def drop(self, key: str) -> None:
        if self._values.pop(key, None) is not None:
            self._changed.add(key)

    def items(self) -> list[tuple[str, V]]:
        """A copy: callers may put and drop while they walk it."""
        return list(self._values.items())

    def changes(self) -> Iterator[tuple[str, Any]]:
        """(key, JSON value or None for a dropped key) of every key changed since the last call."""
        for key in sorted(self._changed):
            value = self._values.get(key)
            yield key, None if value is None else self._adapter.dump_python(value, mode="json")
        self._changed.clear()


def iso(instant: dt.datetime) -> str:
    """An instant as evidence shows it: RFC 3339 in UTC."""
    return instant.astimezone(dt.UTC).isoformat()
