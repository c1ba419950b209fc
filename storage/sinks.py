"""What the drain hands its writer: lines of line protocol for an InfluxDB, points for the embedded store.

Both come from the one mapping (``storage.schema.mapped``). A writer that takes lines (``LineWriter``) gets them
encoded straight from the records, with no point object in between; that is most of the drain's time saved.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Generic, Protocol, TypeVar, runtime_checkable

from spool import SpoolRecord
from storage.line_protocol import lines_for, to_line
from storage.schema import Judge, StoragePoint, points_for
from storage.writers import PointWriter

Item = TypeVar("Item")


@runtime_checkable
class LineWriter(PointWriter, Protocol):
    """A writer that also takes lines of line protocol as they are."""

    def write_lines(self, lines: Sequence[str]) -> None: ...


class Sink(Protocol, Generic[Item]):
    """How a record becomes what the writer takes, how that is written, and how it reads in a reject."""

    def encode(self, record: SpoolRecord, district: str, judge: Judge | None) -> list[Item]: ...

    def write(self, items: Sequence[Item]) -> None: ...

    def describe(self, item: Item) -> str: ...


class LineSink:
    def __init__(self, writer: LineWriter) -> None:
        self._writer = writer

    def encode(self, record: SpoolRecord, district: str, judge: Judge | None) -> list[str]:
        return lines_for(record, district, judge)

    def write(self, items: Sequence[str]) -> None:
        self._writer.write_lines(items)

    def describe(self, item: str) -> str:
        return item


class PointSink:
    def __init__(self, writer: PointWriter) -> None:
        self._writer = writer

    def encode(self, record: SpoolRecord, district: str, judge: Judge | None) -> list[StoragePoint]:
        return points_for(record, district, judge)

    def write(self, items: Sequence[StoragePoint]) -> None:
        self._writer.write(items)

    def describe(self, item: StoragePoint) -> str:
        return to_line(item)


def sink_for(writer: PointWriter) -> LineSink | PointSink:
    return LineSink(writer) if isinstance(writer, LineWriter) else PointSink(writer)
