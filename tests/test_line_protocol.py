"""The drain's line-protocol encoder writes exactly the lines influxdb-client's Point writes: every kind of
field, escapes in measurement, tag and field names, values that are empty, not finite or end in a backslash."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from influxdb_client.client.write.point import Point
from influxdb_client.domain.write_precision import WritePrecision

from storage.line_protocol import to_line
from storage.schema import Measurement, StoragePoint

TEXT = st.text(alphabet=st.sampled_from(list('ab, =\\"\n\t\r中é')), max_size=6)
VALUES = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.booleans(), st.integers(), TEXT)


def _library(point: StoragePoint) -> str:
    p = Point(point.measurement.value)
    for key, value in point.tags.items():
        p.tag(key, value)
    for key, field in point.fields.items():
        p.field(key, field)
    p.time(point.time_ns, WritePrecision.NS)
    line: str = p.to_line_protocol()
    return line


@settings(max_examples=400)
@given(
    measurement=st.sampled_from(list(Measurement)),
    tags=st.dictionaries(TEXT, TEXT, max_size=4),
    fields=st.dictionaries(TEXT, VALUES, max_size=5),
    time_ns=st.integers(min_value=0, max_value=2**62),
)
def test_each_line_is_the_one_influxdb_clients_point_writes(
    measurement: Measurement, tags: dict[str, str], fields: dict[str, object], time_ns: int
) -> None:
    point = StoragePoint(measurement, tags, fields, time_ns)  # type: ignore[arg-type]
    assert to_line(point) == _library(point)


def test_a_reading_of_every_kind_is_the_same_line() -> None:
    point = StoragePoint(
        Measurement.RAPID_TEST,
        {"canteen": "c 1", "device": "d,1", "district": "城区", "result": "pass"},
        {"value": 62.0, "passed": 1.0, "msg_id": 'a"b\\c', "ok": True, "n": 3, "gone": float("nan")},
        1_795_564_800_000_000_001,
    )
    assert to_line(point) == _library(point)
    assert "value=62 " in to_line(point)  # whole floats without ".0", as Point writes them
