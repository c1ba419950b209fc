"""The console's read side on InfluxDB 1.x (InfluxQL over ``/query``, the v1 API also served by 2.x and 3.x):
the same answers as the embedded store's ``console.readings.LocalReadings``."""

from __future__ import annotations

import datetime as dt
import json
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from typing import Any

from console.readings import (
    DEVICE_MEASUREMENTS,
    MAX_ROWS,
    DeliveryRow,
    DeviceSeen,
    ReadingsError,
    SampleRow,
    SupplierTally,
    TempPoint,
    TestRow,
    delivery_row,
    instant,
    merge_seen,
    sample_row,
    test_row,
)
from storage.schema import FieldName as F
from storage.schema import Measurement as M
from storage.schema import Tag, epoch_ns


class InfluxReadings:
    """Reads InfluxDB 1.x with InfluxQL over ``/query`` (the v1 API, also served by 2.x and 3.x)."""

    def __init__(self, url: str, database: str, *, username: str | None = None, password: str | None = None) -> None:
        self._base = f"{url.rstrip('/')}/query"
        self._params = {"db": database, "epoch": "ns", **({"u": username, "p": password or ""} if username else {})}

    def close(self) -> None:
        pass

    def _query(self, query: str) -> list[dict[str, Any]]:
        url = f"{self._base}?{urllib.parse.urlencode({**self._params, 'q': query})}"
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                body = json.load(response)
        except urllib.error.HTTPError as exc:
            raise ReadingsError(f"InfluxDB refused a query ({exc.code}): {exc.read()[:200]!r}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise ReadingsError(f"cannot reach InfluxDB: {exc}") from None
        rows: list[dict[str, Any]] = []
        for result in body.get("results", []):
            if "error" in result and "database not found" not in result["error"]:
                raise ReadingsError(f"InfluxDB: {result['error']}")
            for series in result.get("series", []):
                tags = series.get("tags", {})
                rows += [{**tags, **dict(zip(series["columns"], values, strict=True))} for values in series["values"]]
        return rows

    @staticmethod
    def _where(canteens: frozenset[str] | None, start: dt.datetime, end: dt.datetime) -> str:
        where = f"time >= {epoch_ns(start)} AND time < {epoch_ns(end)}"
        if canteens is not None:
            # Canteen ids follow the id rule ([a-z0-9-]): nothing in them can break out of the regex.
            where += f' AND "{Tag.CANTEEN}" =~ /^({"|".join(sorted(canteens))})$/'
        return where

    def tests(
        self,
        canteens: frozenset[str] | None,
        start: dt.datetime,
        end: dt.datetime,
        *,
        supplier: str | None = None,
        batch: str | None = None,
    ) -> list[TestRow]:
        rows = self._traced(M.RAPID_TEST, canteens, start, end, supplier=supplier, batch=batch)
        return [test_row(instant(row["time"]), row) for row in rows]

    def _traced(
        self,
        measurement: M,
        canteens: frozenset[str] | None,
        start: dt.datetime,
        end: dt.datetime,
        *,
        supplier: str | None,
        batch: str | None,
    ) -> list[dict[str, Any]]:
        """Rows of ``measurement`` in the range and scope, of ``supplier`` and ``batch`` when given, newest first."""
        if canteens is not None and not canteens:
            return []  # an empty scope: nothing (an empty regex group would match every canteen)
        where = self._where(canteens, start, end)
        for name, value in ((F.SUPPLIER, supplier), (F.BATCH_NO, batch)):
            if value is not None:
                where += f' AND "{name}" = {_influx_string(value)}'
        return self._query(f'SELECT * FROM "{measurement}" WHERE {where} ORDER BY time DESC LIMIT {MAX_ROWS}')

    def deliveries(
        self,
        canteens: frozenset[str] | None,
        start: dt.datetime,
        end: dt.datetime,
        *,
        supplier: str | None = None,
        batch: str | None = None,
    ) -> list[DeliveryRow]:
        rows = self._traced(M.DELIVERY, canteens, start, end, supplier=supplier, batch=batch)
        return [delivery_row(instant(row["time"]), row) for row in rows]

    def suppliers(self, canteens: frozenset[str] | None, start: dt.datetime, end: dt.datetime) -> list[SupplierTally]:
        """InfluxQL cannot group by a field (the supplier is one: free text from a device, not a tag), so this
        reads the tests' supplier, batch and verdict a day at a time and counts them here."""
        if canteens is not None and not canteens:
            return []
        tests: Counter[str] = Counter()
        failed: Counter[str] = Counter()
        batches: dict[str, set[str]] = defaultdict(set)
        sites: dict[str, set[str]] = defaultdict(set)
        day = start
        while day < end:
            until = min(day + dt.timedelta(days=1), end)
            fields = f'"{F.SUPPLIER}", "{F.BATCH_NO}", "{Tag.RESULT}", "{Tag.CANTEEN}"'
            for row in self._query(f'SELECT {fields} FROM "{M.RAPID_TEST}" WHERE {self._where(canteens, day, until)}'):
                supplier = row.get(F.SUPPLIER) or ""
                tests[supplier] += 1
                failed[supplier] += row.get(Tag.RESULT) == "fail"
                if row.get(F.BATCH_NO):
                    batches[supplier].add(row[F.BATCH_NO])
                sites[supplier].add(row[Tag.CANTEEN])
            day = until
        return [
            SupplierTally(name, count, failed[name], len(batches[name]), len(sites[name]))
            for name, count in tests.items()
        ]

    def every(
        self,
        measurement: M,
        names: Sequence[str],
        canteens: frozenset[str] | None,
        start: dt.datetime,
        end: dt.datetime,
    ) -> Iterator[tuple[dt.datetime, dict[str, Any]]]:
        if canteens is not None and not canteens:
            return
        selected = ", ".join(f'"{n}"' for n in names)
        day = start
        while day < end:  # a day at a time: a month of a city's cameras is more than one answer should carry
            until = min(day + dt.timedelta(days=1), end)
            query = f'SELECT {selected} FROM "{measurement}" WHERE {self._where(canteens, day, until)} ORDER BY time'
            for row in self._query(query):
                yield instant(row["time"]), {n: row.get(n) for n in names}
            day = until

    def samples(self, canteen: str, start: dt.datetime, end: dt.datetime) -> list[SampleRow]:
        where = f"{self._where(frozenset([canteen]), start, end)} AND \"{Tag.ACTION}\" = 'retained'"
        rows = self._query(f'SELECT * FROM "{M.SAMPLE_RETENTION}" WHERE {where} ORDER BY time DESC LIMIT {MAX_ROWS}')
        return [sample_row(instant(row["time"]), row) for row in rows]

    def temperatures(self, canteen: str, start: dt.datetime, end: dt.datetime) -> list[TempPoint]:
        where = self._where(frozenset([canteen]), start, end)
        rows = self._query(f'SELECT "{F.TEMP_C}", "{Tag.DEVICE}" FROM "{M.CABINET}" WHERE {where} LIMIT {MAX_ROWS}')
        return sorted(TempPoint(instant(row["time"]), row[Tag.DEVICE], float(row[F.TEMP_C])) for row in rows)

    def devices(self, canteen: str) -> dict[str, DeviceSeen]:
        seen: dict[str, DeviceSeen] = {}
        where = f"\"{Tag.CANTEEN}\" = '{canteen}'"
        for measurement in DEVICE_MEASUREMENTS:
            device_tag = Tag.CABINET if measurement is M.SAMPLE_RETENTION else Tag.DEVICE
            field = F.STATE if measurement is M.DEVICE_STATUS else F.RECEIVED_AT
            rows = self._query(f'SELECT last("{field}") FROM "{measurement}" WHERE {where} GROUP BY "{device_tag}"')
            for row in rows:
                state = row["last"] if measurement is M.DEVICE_STATUS else None
                merge_seen(seen, row[device_tag], instant(row["time"]), state)
        return seen


def _influx_string(value: str) -> str:
    """A string literal of InfluxQL: a supplier's name is free text from a device."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
