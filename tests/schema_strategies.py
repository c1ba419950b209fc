"""Hypothesis strategies for JSON a JSON Schema accepts, for the constructs the exported contract uses:
objects (required and optional properties, no others), const, enum, anyOf, $ref to $defs, strings with a length,
pattern or format (date-time, date), numbers and integers with bounds, booleans, null and arrays. Conditions
(allOf with if/then/else) are left to the caller's filter: draw, then keep what the schema's validator accepts.

Written here because hypothesis-jsonschema 0.23 does not run with the Hypothesis this project pins."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import strategies as st

_ZONES = st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=8)), dt.timezone(dt.timedelta(hours=-5, minutes=-30))])


def from_schema(schema: dict[str, Any], root: dict[str, Any] | None = None) -> st.SearchStrategy[Any]:
    root = root if root is not None else schema
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return from_schema(root["$defs"][name], root)
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "anyOf" in schema:
        return st.one_of([from_schema(option, root) for option in schema["anyOf"]])
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        return _object(schema, root)
    if kind == "string":
        return _string(schema)
    if kind in ("number", "integer"):
        return _number(schema, integer=kind == "integer")
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    if kind == "array":
        items = from_schema(schema.get("items", {}), root)
        return st.lists(items, min_size=schema.get("minItems", 0), max_size=min(schema.get("maxItems", 5), 5))
    return st.none() | st.booleans() | st.integers() | st.text(max_size=5)  # unconstrained


def _object(schema: dict[str, Any], root: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    required = set(schema.get("required", []))
    properties = schema.get("properties", {})
    return st.fixed_dictionaries(
        {name: from_schema(sub, root) for name, sub in properties.items() if name in required},
        optional={name: from_schema(sub, root) for name, sub in properties.items() if name not in required},
    )


def _string(schema: dict[str, Any]) -> st.SearchStrategy[str]:
    low, high = schema.get("minLength", 0), min(schema.get("maxLength", 40), 40)
    if schema.get("format") == "date-time":
        return st.builds(
            lambda at, zone: at.replace(tzinfo=zone).isoformat(),
            st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2099, 12, 31)),
            _ZONES,
        )
    if schema.get("format") == "date":
        return st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2099, 12, 31)).map(dt.date.isoformat)
    if "pattern" in schema:
        return st.from_regex(schema["pattern"], fullmatch=True).filter(lambda text: low <= len(text) <= high)
    return st.text(min_size=low, max_size=max(low, high))


def _number(schema: dict[str, Any], *, integer: bool) -> st.SearchStrategy[float | int]:
    low = schema.get("minimum", schema.get("exclusiveMinimum"))
    high = schema.get("maximum", schema.get("exclusiveMaximum"))
    if integer:
        low_int = None if low is None else int(low) + ("exclusiveMinimum" in schema)
        high_int = None if high is None else int(high) - ("exclusiveMaximum" in schema)
        return st.integers(min_value=low_int, max_value=high_int)
    floats = st.floats(
        min_value=low,
        max_value=high,
        exclude_min="exclusiveMinimum" in schema,
        exclude_max="exclusiveMaximum" in schema,
        allow_nan=False,
        allow_infinity=False,
    )
    ints = st.integers(min_value=None if low is None else int(low) + 1, max_value=None if high is None else int(high))
    return floats | ints  # JSON numbers without a fraction are numbers too
