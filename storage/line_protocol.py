"""InfluxDB line protocol for the drain's points, encoded here rather than through influxdb-client's ``Point``.

Why not the library's: profiling the drain (docs/storage.md, "Measured") found ``Point`` was over half of its
time: an object per point, every key escaped one translate at a time, the same series escaped again for every
reading of a device. This encoder gives byte-for-byte the lines ``Point`` gives
(``tests/test_line_protocol.py`` compares them on generated points, escapes included) and escapes each series
(measurement and tags) once.

The drain encodes records with :func:`lines_for`: the schema's mapping (``storage.schema.mapped``) handed
straight to the encoder, without a :class:`~storage.schema.StoragePoint` in between. Each measurement's field
names are sorted and escaped once (the mapping names the same fields for every record of a kind), so a line
costs a few string joins.
"""

from __future__ import annotations

import math
from functools import lru_cache
from math import isfinite

from spool import SpoolRecord
from storage.schema import Fields, FieldValue, Judge, Measurement, StoragePoint, Tag, mapped

# The escapes of influxdb-client's Point, kept identical so that every line is the one it would write.
_MEASUREMENT = str.maketrans({",": r"\,", " ": r"\ ", "\n": r"\n", "\t": r"\t", "\r": r"\r"})
_KEY = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ ", "\n": r"\n", "\t": r"\t", "\r": r"\r"})
_STRING = str.maketrans({'"': r"\"", "\\": r"\\"})


@lru_cache(maxsize=100_000)
def _series(measurement: str, tags: tuple[tuple[str, str], ...]) -> str:
    """``measurement,k=v,…`` with the tags sorted by key; empty keys or values left out, as Point does."""
    parts = [measurement.translate(_MEASUREMENT)]
    for key, value in sorted(tags):
        escaped_key, escaped = key.translate(_KEY), value.translate(_KEY)
        if escaped.endswith("\\"):
            escaped += " "  # a trailing backslash would escape the separator
        if escaped_key and escaped:
            parts.append(f"{escaped_key}={escaped}")
    return ",".join(parts)


@lru_cache(maxsize=10_000)
def _field_key(key: str) -> str:
    return key.translate(_KEY)


def _field(key: str, value: FieldValue) -> str | None:
    if isinstance(value, float):
        if not math.isfinite(value):
            return None  # line protocol has no NaN or infinity: the field is left out, as Point does
        text = str(value)
        return f"{_field_key(key)}={text[:-2] if text.endswith('.0') else text}"
    if isinstance(value, bool):
        return f"{_field_key(key)}={'true' if value else 'false'}"
    if isinstance(value, int):
        return f"{_field_key(key)}={value}i"
    return f'{_field_key(key)}="{value.translate(_STRING)}"'


def to_line(point: StoragePoint) -> str:
    """One line; empty when the point has no field that can be written (Point gives "" too)."""
    fields = [f for key, value in sorted(point.fields.items()) if value is not None and (f := _field(key, value))]
    if not fields:
        return ""
    return f"{_series(str(point.measurement.value), tuple(point.tags.items()))} {','.join(fields)} {point.time_ns}"


#: (measurement, field names in the mapping's order) -> the names sorted, each with its escaped form and "=".
_LAYOUTS: dict[tuple[str, tuple[str, ...]], tuple[tuple[str, str], ...]] = {}


def _line(measurement: Measurement, tags: dict[Tag, str], fields: Fields, time_ns: int) -> str:
    """:func:`to_line` of the point the mapping describes, with its field order worked out once per layout."""
    names = tuple(fields)
    layout = _LAYOUTS.get((measurement, names))
    if layout is None:
        layout = _LAYOUTS.setdefault((measurement, names), tuple((k, _field_key(k) + "=") for k in sorted(names)))
    parts = []
    for key, prefix in layout:
        value = fields[key]  # type: ignore[index]  # the layout's names are the mapping's FieldNames
        kind = type(value)
        if kind is str:
            if '"' in value or "\\" in value:  # type: ignore[operator]
                value = value.translate(_STRING)  # type: ignore[union-attr]
            parts.append(f'{prefix}"{value}"')
        elif kind is float:
            if isfinite(value):  # type: ignore[arg-type]
                text = repr(value)
                parts.append(prefix + text[:-2] if text.endswith(".0") else prefix + text)
        elif kind is bool:
            parts.append(prefix + ("true" if value else "false"))
        elif value is not None and (field := _field(key, value)):
            parts.append(field)
    if not parts:
        return ""
    return f"{_series(measurement.value, tuple(tags.items()))} {','.join(parts)} {time_ns}"


def lines_for(record: SpoolRecord, district: str, judge: Judge | None = None) -> list[str]:
    """``[to_line(p) for p in points_for(record, district, judge)]``, without building the points."""
    return mapped(record, district, judge, _line)
