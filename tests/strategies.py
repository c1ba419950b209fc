"""Hypothesis strategies that build every valid wire model, and ids inside and outside the id rule."""

from __future__ import annotations

import datetime as dt
import string
from typing import Any, Literal, get_args

from hypothesis import strategies as st

from devices import messages as m
from devices.items import BUILTIN
from devices.topics import Channel, DeviceKind

_NO_SURROGATES: tuple[Literal["Cs"], ...] = ("Cs",)  # not encodable as UTF-8
ID_ALPHABET = string.ascii_letters + string.digits + "_-"
ids = st.text(ID_ALPHABET, min_size=1, max_size=64)
canteen_ids = ids.filter(lambda value: value not in {"alerts", "deadletter"})
#: Strings that break the id rule: empty, too long, or with at least one character outside the alphabet.
bad_ids = st.one_of(
    st.just(""),
    st.text(ID_ALPHABET, min_size=65, max_size=80),
    st.builds(
        lambda head, bad, tail: head + bad + tail,
        st.text(ID_ALPHABET, max_size=10),
        st.characters(exclude_characters=ID_ALPHABET, exclude_categories=_NO_SURROGATES),
        st.text(ID_ALPHABET, max_size=10),
    ),
)

_NO_CONTROLS: tuple[Literal["Cs", "Cc"], ...] = ("Cs", "Cc")
text = st.text(st.characters(exclude_categories=_NO_CONTROLS), min_size=1, max_size=40)
standards = st.sampled_from(["GB/T 5009.199-2003", "NY/T 448-2001", "GB 2763-2021", "SN/T 1234.5"])
offsets = st.integers(-12 * 60, 14 * 60).map(lambda minutes: dt.timezone(dt.timedelta(minutes=minutes)))
aware = st.builds(
    lambda naive, tz: naive.replace(tzinfo=tz),
    st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2100, 1, 1)),
    offsets,
)
dates = st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2100, 1, 1))
finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e9, max_value=1e9)
non_negative = st.floats(allow_nan=False, allow_infinity=False, min_value=0, max_value=1e9)
urls = st.builds(lambda path: f"https://video.example.invalid/{path}", st.text(ID_ALPHABET, min_size=1, max_size=20))
msg_ids = st.text(st.characters(exclude_categories=_NO_CONTROLS), min_size=1, max_size=64)


def _literal(model: type[m.WireModel], name: str) -> st.SearchStrategy[Any]:
    return st.sampled_from(get_args(model.model_fields[name].annotation))


def _record(model: type[m.WireModel], **fields: st.SearchStrategy[Any]) -> st.SearchStrategy[m.WireModel]:
    return st.builds(model, type=st.just(m.type_name(model)), msg_id=msg_ids, ts=aware, **fields)


def _value_of(unit: str) -> st.SearchStrategy[float | None]:
    if unit == "%":
        return st.floats(0, 100)
    return non_negative if unit == "mg/kg" else st.none()


#: A test of a catalogue item by one of its standards, or by a standard the catalogue does not list for it (a
#: region's own), always with a method and unit its item is tested by.
_item_tests = st.sampled_from([(item.code, s) for item in BUILTIN for s in item.standards]).flatmap(
    lambda pair: st.fixed_dictionaries(
        {
            "item_code": st.just(pair[0]),
            "method": st.just(pair[1].method),
            "unit": st.just(pair[1].unit),
            "method_std": st.just(pair[1].code) | standards,
            "value": _value_of(pair[1].unit),
        }
    )
)

test_results = st.builds(
    lambda item_test, **kw: m.TestResult(**item_test, **kw),
    _item_tests,
    type=st.just("test.result"),
    msg_id=msg_ids,
    ts=aware,
    sample_no=text,
    sample_name=text,
    food_category=_literal(m.TestResult, "food_category"),
    supplier=text,
    batch_no=text,
    result=_literal(m.TestResult, "result"),
    operator=text,
    reviewer=st.none() | text,
    retest_of=st.none() | text,
    control_delta_a=st.none() | finite,
)

#: (kind, channel) -> strategy of valid payload models published there.
BY_TOPIC: dict[tuple[DeviceKind, Channel], st.SearchStrategy[m.WireModel]] = {
    (DeviceKind.DETECTOR, Channel.TELEMETRY): _record(
        m.DetectorHeartbeat,
        state=_literal(m.DetectorHeartbeat, "state"),
        incubator_c=finite,
        reagent_lot=text,
        reagent_expires=dates,
    ),
    (DeviceKind.DETECTOR, Channel.EVENT): st.one_of(
        test_results,
        _record(
            m.DeliveryReceived,
            supplier=text,
            batch_no=text,
            foods=st.lists(text, min_size=1, max_size=5),
            food_category=_literal(m.DeliveryReceived, "food_category"),
            quantity_kg=st.none() | st.floats(min_value=0.1, max_value=1e6),
            certificates=st.lists(urls, max_size=3),
            received_by=text,
        ),
    ),
    (DeviceKind.CABINET, Channel.TELEMETRY): _record(
        m.CabinetReading,
        temp_c=finite,
        door_open=st.booleans(),
        power_ok=st.booleans(),
        samples_held=st.integers(0, 10_000),
    ),
    (DeviceKind.CABINET, Channel.EVENT): st.one_of(
        _record(
            m.SampleRetained,
            sample_id=text,
            slot=text,
            meal_date=dates,
            meal=_literal(m.SampleRetained, "meal"),
            dish_name=text,
            weight_g=st.floats(0.1, 5000),
            operator=text,
        ),
        _record(m.SampleDisposed, sample_id=text, operator=text, reason=text),
    ),
    (DeviceKind.CAMERA, Channel.TELEMETRY): _record(
        m.CameraStream,
        fps=st.floats(0, 120),
        bitrate_kbps=st.floats(0, 1e5),
        recording_ok=st.booleans(),
        retention_days=st.integers(0, 3650),
    ),
    (DeviceKind.CAMERA, Channel.EVENT): _record(
        m.AiViolation,
        violation=_literal(m.AiViolation, "violation"),
        confidence=st.floats(0, 1),
        area=_literal(m.AiViolation, "area"),
        snapshot_url=urls,
        clip_url=st.none() | urls,
    ),
    **{
        (kind, Channel.STATUS): st.builds(
            m.DeviceStatus, type=st.just("device.status"), state=st.sampled_from(["online", "offline"]), ts=aware
        )
        for kind in DeviceKind
    },
}

#: Any valid payload with the kind and channel it travels on.
any_message = st.sampled_from(sorted(BY_TOPIC, key=str)).flatmap(
    lambda key: BY_TOPIC[key].map(lambda model: (key[0], key[1], model))
)
