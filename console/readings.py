"""The console's one query layer over the time-series store: the embedded SQLite store or InfluxDB 1.x.

Both answer the same questions with the same rows, built from the storage schema's names; alerts are read
from the rules store, not from here. Queries are bounded by time and canteen, never "everything".
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from runtime.errors import ShianError
from runtime.sqlite import open_database
from storage.local import POINTS_SCHEMA
from storage.schema import TAGS, Tag, epoch_ns
from storage.schema import FieldName as F
from storage.schema import Measurement as M

#: Measurements that say a device is alive (its telemetry, records and status).
DEVICE_MEASUREMENTS = (M.DETECTOR, M.CABINET, M.CAMERA, M.RAPID_TEST, M.SAMPLE_RETENTION, M.DEVICE_STATUS)
#: Rows a page or an API call reads at most.
MAX_ROWS = 5000


class ReadingsError(ShianError):
    """The store could not be read (InfluxDB down, a query refused)."""


@dataclass(frozen=True)
class TestRow:
    __test__ = False  # not a pytest class

    at: dt.datetime
    canteen: str
    device: str
    item_code: str
    method: str | None
    method_std: str
    value: float | None
    unit: str | None
    result: str
    sample_no: str | None
    sample_name: str | None
    supplier: str | None
    batch_no: str | None
    operator: str | None
    entered_by: str | None
    msg_id: str | None = None
    #: The device's (or typist's) own verdict; ``result`` is the platform's (None: stored before it was kept).
    device_result: str | None = None


@dataclass(frozen=True)
class DeliveryRow:
    """A delivery a canteen received (进货台账)."""

    at: dt.datetime
    canteen: str
    supplier: str
    batch_no: str
    foods: str
    food_category: str | None
    quantity_kg: float | None
    certificates: list[str]
    received_by: str | None
    entered_by: str | None


@dataclass(frozen=True)
class SampleRow:
    at: dt.datetime
    canteen: str
    cabinet: str
    meal: str
    meal_date: str | None
    dish_name: str | None
    weight_g: float | None
    sample_id: str | None
    operator: str | None


@dataclass(frozen=True, order=True)
class TempPoint:
    at: dt.datetime
    device: str
    temp_c: float


@dataclass(frozen=True)
class SupplierTally:
    """A supplier's tests in a period (the scorecard's raw counts)."""

    supplier: str
    tests: int
    failed: int
    batches: int
    canteens: int

    @property
    def failure_rate(self) -> float:
        return self.failed / self.tests if self.tests else 0.0


@dataclass(frozen=True)
class DeviceSeen:
    device: str
    last_message: dt.datetime | None
    state: str | None  # the latest status message: online / offline


class Readings(Protocol):
    """What the console asks of the store. ``canteens`` None means every canteen (the city's scope)."""

    def tests(
        self,
        canteens: frozenset[str] | None,
        start: dt.datetime,
        end: dt.datetime,
        *,
        supplier: str | None = None,
        batch: str | None = None,
    ) -> list[TestRow]:
        """Rapid tests in the range, newest first; ``supplier`` and ``batch`` narrow them (the supplier trace)."""
        ...

    def suppliers(self, canteens: frozenset[str] | None, start: dt.datetime, end: dt.datetime) -> list[SupplierTally]:
        """Every supplier's tests, failures, batches and canteens in the range (all of them, not a page of
        rows); tests that name no supplier are counted under ""."""
        ...

    def samples(self, canteen: str, start: dt.datetime, end: dt.datetime) -> list[SampleRow]: ...

    def deliveries(
        self,
        canteens: frozenset[str] | None,
        start: dt.datetime,
        end: dt.datetime,
        *,
        supplier: str | None = None,
        batch: str | None = None,
    ) -> list[DeliveryRow]:
        """Deliveries received in the range, newest first; ``supplier`` and ``batch`` narrow them (the trace)."""
        ...

    def every(
        self,
        measurement: M,
        names: Sequence[str],
        canteens: frozenset[str] | None,
        start: dt.datetime,
        end: dt.datetime,
    ) -> Iterator[tuple[dt.datetime, dict[str, Any]]]:
        """Every point of ``measurement`` in the range and scope, oldest first, with the tags and fields
        ``names`` (absent ones None): not a page but all of them, read in slices (the bulletins)."""
        ...

    def temperatures(self, canteen: str, start: dt.datetime, end: dt.datetime) -> list[TempPoint]: ...

    def devices(self, canteen: str) -> dict[str, DeviceSeen]: ...

    def close(self) -> None: ...


def instant(ns: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ns // 1000 / 1e6, dt.UTC)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def delivery_row(at: dt.datetime, row: dict[str, Any]) -> DeliveryRow:
    return DeliveryRow(
        at=at,
        canteen=row[Tag.CANTEEN],
        supplier=row.get(F.SUPPLIER) or "",
        batch_no=row.get(F.BATCH_NO) or "",
        foods=row.get(F.FOODS) or "",
        food_category=row.get(F.FOOD_CATEGORY),
        quantity_kg=row.get(F.QUANTITY_KG),
        certificates=(row.get(F.CERTIFICATES) or "").split(),
        received_by=row.get(F.RECEIVED_BY),
        entered_by=row.get(F.ENTERED_BY),
    )


def test_row(at: dt.datetime, row: dict[str, Any]) -> TestRow:
    return TestRow(
        at=at,
        canteen=row[Tag.CANTEEN],
        device=row[Tag.DEVICE],
        item_code=row[Tag.ITEM_CODE],
        method=_str(row.get(F.METHOD)),
        method_std=row[Tag.METHOD_STD],
        value=_float(row.get(F.VALUE)),
        unit=_str(row.get(F.UNIT)),
        result=row[Tag.RESULT],
        sample_no=_str(row.get(F.SAMPLE_NO)),
        sample_name=_str(row.get(F.SAMPLE_NAME)),
        supplier=_str(row.get(F.SUPPLIER)),
        batch_no=_str(row.get(F.BATCH_NO)),
        operator=_str(row.get(F.OPERATOR)),
        entered_by=_str(row.get(F.ENTERED_BY)),
        msg_id=_str(row.get(F.MSG_ID)),
        device_result=_str(row.get(F.DEVICE_RESULT)),
    )


def sample_row(at: dt.datetime, row: dict[str, Any]) -> SampleRow:
    return SampleRow(
        at=at,
        canteen=row[Tag.CANTEEN],
        cabinet=row[Tag.CABINET],
        meal=row[Tag.MEAL],
        meal_date=_str(row.get(F.MEAL_DATE)),
        dish_name=_str(row.get(F.DISH_NAME)),
        weight_g=_float(row.get(F.WEIGHT_G)),
        sample_id=_str(row.get(F.SAMPLE_ID)),
        operator=_str(row.get(F.OPERATOR)),
    )


class LocalReadings:
    """Reads the embedded store's file (its own connection: the drain writes through another)."""

    def __init__(self, path: Path) -> None:
        self._db = open_database(path)
        # The table as the store makes it: a console opened before the store ever was still answers (empty).
        self._db.executescript(POINTS_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def _points(
        self,
        measurement: M,
        canteens: frozenset[str] | None,
        start: dt.datetime,
        end: dt.datetime,
        matching: dict[str, str] | None = None,
    ) -> Iterator[tuple[dt.datetime, dict[str, Any]]]:
        where, params = _where(measurement, canteens, start, end, matching)
        rows = self._db.execute(
            f"SELECT time_ns, tags, fields FROM points WHERE {where} ORDER BY time_ns DESC LIMIT {MAX_ROWS}", params
        )
        for time_ns, tags, fields in rows:
            yield instant(time_ns), {**json.loads(tags), **json.loads(fields)}

    def tests(
        self,
        canteens: frozenset[str] | None,
        start: dt.datetime,
        end: dt.datetime,
        *,
        supplier: str | None = None,
        batch: str | None = None,
    ) -> list[TestRow]:
        return [test_row(at, row) for at, row in self._points(M.RAPID_TEST, canteens, start, end, _of(supplier, batch))]

    def suppliers(self, canteens: frozenset[str] | None, start: dt.datetime, end: dt.datetime) -> list[SupplierTally]:
        where, params = _where(M.RAPID_TEST, canteens, start, end)
        rows = self._db.execute(
            f"SELECT COALESCE(json_extract(fields, '$.{F.SUPPLIER}'), ''), COUNT(*),"
            f" SUM(json_extract(tags, '$.{Tag.RESULT}') = 'fail'),"
            f" COUNT(DISTINCT json_extract(fields, '$.{F.BATCH_NO}')),"
            f" COUNT(DISTINCT json_extract(tags, '$.{Tag.CANTEEN}'))"
            f" FROM points WHERE {where} GROUP BY 1",
            params,
        )
        return [
            SupplierTally(supplier, tests, failed, batches, sites) for supplier, tests, failed, batches, sites in rows
        ]

    def deliveries(
        self,
        canteens: frozenset[str] | None,
        start: dt.datetime,
        end: dt.datetime,
        *,
        supplier: str | None = None,
        batch: str | None = None,
    ) -> list[DeliveryRow]:
        return [
            delivery_row(at, row) for at, row in self._points(M.DELIVERY, canteens, start, end, _of(supplier, batch))
        ]

    def samples(self, canteen: str, start: dt.datetime, end: dt.datetime) -> list[SampleRow]:
        points = self._points(M.SAMPLE_RETENTION, frozenset([canteen]), start, end)
        return [sample_row(at, row) for at, row in points if row.get(Tag.ACTION) == "retained"]

    def every(
        self,
        measurement: M,
        names: Sequence[str],
        canteens: frozenset[str] | None,
        start: dt.datetime,
        end: dt.datetime,
    ) -> Iterator[tuple[dt.datetime, dict[str, Any]]]:
        tags = set(TAGS[measurement])
        columns = ", ".join(f"json_extract({'tags' if n in tags else 'fields'}, '$.{n}')" for n in names)
        where, params = _where(measurement, canteens, start, end)
        rows = self._db.execute(f"SELECT time_ns, {columns} FROM points WHERE {where} ORDER BY time_ns", params)
        while batch := rows.fetchmany(10_000):
            for time_ns, *values in batch:
                yield instant(time_ns), dict(zip(names, values, strict=True))

    def temperatures(self, canteen: str, start: dt.datetime, end: dt.datetime) -> list[TempPoint]:
        points = self._points(M.CABINET, frozenset([canteen]), start, end)
        return sorted(TempPoint(at, row[Tag.DEVICE], float(row[F.TEMP_C])) for at, row in points)

    def devices(self, canteen: str) -> dict[str, DeviceSeen]:
        seen: dict[str, DeviceSeen] = {}
        for measurement in DEVICE_MEASUREMENTS:
            device_tag = Tag.CABINET if measurement is M.SAMPLE_RETENTION else Tag.DEVICE
            rows = self._db.execute(
                f"SELECT json_extract(tags, '$.{device_tag}'), MAX(time_ns), json_extract(fields, '$.{F.STATE}')"
                f" FROM points WHERE measurement = ? AND json_extract(tags, '$.{Tag.CANTEEN}') = ? GROUP BY 1",
                (measurement.value, canteen),
            )
            for device, time_ns, state in rows:
                merge_seen(seen, device, instant(time_ns), state if measurement is M.DEVICE_STATUS else None)
        return seen


def _of(supplier: str | None, batch: str | None) -> dict[str, str]:
    """The fields a trace narrows by."""
    return {str(k): v for k, v in ((F.SUPPLIER, supplier), (F.BATCH_NO, batch)) if v is not None}


def _where(
    measurement: M,
    canteens: frozenset[str] | None,
    start: dt.datetime,
    end: dt.datetime,
    matching: dict[str, str] | None = None,
) -> tuple[str, list[Any]]:
    """The embedded store's WHERE clause for one measurement in a range and scope, and its parameters."""
    where = "measurement = ? AND time_ns >= ? AND time_ns < ?"
    params: list[Any] = [measurement.value, epoch_ns(start), epoch_ns(end)]
    for name, value in (matching or {}).items():
        where += f" AND json_extract(fields, '$.{name}') = ?"  # names come from the schema, values are bound
        params.append(value)
    if canteens is not None:
        where += f" AND json_extract(tags, '$.{Tag.CANTEEN}') IN ({','.join('?' * len(canteens))})"
        params += sorted(canteens)
    return where, params


def merge_seen(seen: dict[str, DeviceSeen], device: str, at: dt.datetime, state: str | None) -> None:
    known = seen.get(device)
    if known is None:
        seen[device] = DeviceSeen(device, at, state)
        return
    latest = max(at, known.last_message) if known.last_message else at
    seen[device] = DeviceSeen(device, latest, state or known.state)
