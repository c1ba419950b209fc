"""The wire contract in code: topic grammar, id rule and models, proven with properties and boundaries."""

from __future__ import annotations

import json

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from devices.decode import DecodeError, decode
from devices.ids import check_canteen_id, check_id, is_valid_id
from devices.messages import CATALOG, MODELS_BY_TYPE, Receipt, ReceiptStatus, WireModel, receipt_payload
from devices.registry import RegistryError, parse_registry
from devices.topics import (
    Channel,
    DeviceKind,
    DeviceTopic,
    TopicError,
    alert_topic,
    deadletter_topic,
    device_subscription,
    format_device_topic,
    parse_device_topic,
)
from tests import strategies as s
from tests.helpers import one_of_each

kinds = st.sampled_from(list(DeviceKind))
channels = st.sampled_from(list(Channel))


@given(s.canteen_ids, kinds, s.ids, channels)
def test_topic_parse_inverts_format(canteen: str, kind: DeviceKind, device: str, channel: Channel) -> None:
    topic = DeviceTopic(canteen, kind, device, channel)
    assert parse_device_topic(str(topic)) == topic
    assert format_device_topic(canteen, kind, device, channel) == str(topic)


@given(s.bad_ids)
def test_ids_outside_the_rule_are_rejected_everywhere(bad: str) -> None:
    assert not is_valid_id(bad)
    for reject in (
        check_id,
        lambda v: DeviceTopic("c1", DeviceKind.CABINET, v, Channel.TELEMETRY),
        lambda v: DeviceTopic(v, DeviceKind.CABINET, "d1", Channel.TELEMETRY),
        lambda v: alert_topic("c1", v),
        deadletter_topic,
    ):
        with pytest.raises(ValueError, match="the id rule"):
            reject(bad)
    if "/" not in bad:  # with a '/', the topic has the wrong number of levels: bad_topic, tested below
        with pytest.raises(TopicError) as info:
            parse_device_topic(f"shian/v1/c1/cabinet/{bad}/telemetry")
        assert info.value.reason == "bad_id"
    # the id as YAML writes it (a double-quoted scalar, escaped as YAML escapes, \U for beyond the BMP)
    quoted = yaml.safe_dump(bad, default_style='"', width=10**9).strip().removesuffix("...").strip()
    registry = (
        f"region: r\ncanteens:\n  - id: c1\n    name: n\n    district: d\n    type: primary\n"
        f"    devices:\n      - id: {quoted}\n        kind: cabinet\n"
    )
    # a lone surrogate cannot be written in YAML at all: libyaml refuses its escape, on the same line
    surrogate = any(0xD800 <= ord(c) <= 0xDFFF for c in bad)
    expected = r"r\.yaml:8: not valid YAML" if surrogate else r"r\.yaml:8: canteens\.0\.devices\.0\.id"
    with pytest.raises(RegistryError, match=expected):
        parse_registry(registry, "r.yaml")


@pytest.mark.parametrize("word", ["alerts", "deadletter"])
def test_reserved_words_are_never_canteen_ids(word: str) -> None:
    with pytest.raises(ValueError, match="reserved"):
        check_canteen_id(word)
    with pytest.raises(TopicError):
        parse_device_topic(f"shian/v1/{word}/cabinet/d1/telemetry")


@pytest.mark.parametrize(
    "topic",
    [
        "shian/v1/c1/cabinet/d1",  # too short
        "shian/v1/c1/cabinet/d1/telemetry/extra",
        "shian/v2/c1/cabinet/d1/telemetry",
        "other/v1/c1/cabinet/d1/telemetry",
        "shian/v1/c1/fridge/d1/telemetry",  # unknown kind
        "shian/v1/c1/cabinet/d1/gossip",  # unknown channel
    ],
)
def test_topics_that_are_not_device_topics(topic: str) -> None:
    with pytest.raises(TopicError) as info:
        parse_device_topic(topic)
    assert info.value.reason == "bad_topic"


def test_subscription_filters() -> None:
    assert device_subscription() == "shian/v1/+/+/+/+"
    assert device_subscription("c1", Channel.EVENT) == "shian/v1/c1/+/+/event"
    with pytest.raises(ValueError, match="id"):
        device_subscription("c/1")


@given(s.any_message)
def test_every_model_round_trips_through_json(case: tuple[DeviceKind, Channel, WireModel]) -> None:
    kind, channel, model = case
    assert decode(model.model_dump_json().encode(), kind, channel) == model


def test_catalog_covers_every_message_type_once_per_channel() -> None:
    assert set(MODELS_BY_TYPE) == {
        "detector.heartbeat",
        "test.result",
        "delivery.received",
        "cabinet.reading",
        "sample.retained",
        "sample.disposed",
        "camera.stream",
        "ai.violation",
        "device.status",
    }
    assert {(kind, Channel.STATUS) for kind in DeviceKind} <= set(CATALOG)
    assert all(channel is not Channel.RECEIPT for _, channel in CATALOG)


def _payload(index: int, **changes: object) -> tuple[DeviceKind, Channel, bytes]:
    kind, channel, model = one_of_each()[index]
    data = {**model.model_dump(mode="json"), **changes}
    return kind, channel, json.dumps({k: v for k, v in data.items() if v is not ...}).encode()


@pytest.mark.parametrize(
    ("index", "changes", "reason"),
    [
        (1, {"result": ...}, "missing_field"),  # a missing result is never a pass
        (1, {"value": None}, "invalid_value"),  # a percentage test must carry its value
        (1, {"unit": "qualitative"}, "invalid_value"),  # a qualitative test carries none
        (1, {"value": 100.5}, "invalid_value"),
        (1, {"result": "ok"}, "invalid_value"),
        (2, {"door_open": 0}, "wrong_type"),  # no int-for-bool coercion
        (2, {"samples_held": 2.5}, "wrong_type"),
        (2, {"ts": "1764041400"}, "invalid_value"),  # epoch seconds are not RFC 3339
        (2, {"ts": "2026-11-25 11:30:00+08:00"}, "invalid_value"),
        (2, {"ts": "2026-11-25T11:30:00"}, "naive_timestamp"),
        (2, {"msg_id": ""}, "invalid_value"),
        (2, {"msg_id": "m" * 65}, "invalid_value"),
        (2, {"type": "test.result"}, "type_not_allowed"),  # a real type, but not from a cabinet's telemetry
        (2, {"type": 7}, "unknown_type"),
        (6, {"confidence": 1.2}, "invalid_value"),
        (6, {"snapshot_url": "file:///etc/passwd"}, "invalid_value"),
    ],
)
def test_decode_refuses_with_a_specific_reason(index: int, changes: dict[str, object], reason: str) -> None:
    kind, channel, payload = _payload(index, **changes)
    with pytest.raises(DecodeError) as info:
        decode(payload, kind, channel)
    assert info.value.reason == reason


def test_nan_is_not_a_temperature() -> None:
    kind, channel, payload = _payload(2)
    payload = payload.replace(b'"temp_c": ', b'"temp_c": NaN, "x": ', 1)
    with pytest.raises(DecodeError):
        decode(payload, kind, channel)


def test_decode_refuses_bytes_that_are_not_utf8() -> None:
    with pytest.raises(DecodeError) as info:
        decode(b'{"type": "\xff"}', DeviceKind.CABINET, Channel.TELEMETRY)
    assert info.value.reason == "not_utf8"


@given(
    st.text(st.characters(blacklist_categories=["Cc", "Cs"]), min_size=1, max_size=64),
    st.sampled_from(["stored", "duplicate", "rejected"]),
    st.none() | st.text(max_size=40),
)
def test_the_fast_receipt_encoding_is_the_models_json(msg_id: str, status: ReceiptStatus, reason: str | None) -> None:
    """The gateway builds receipts without the model; a device must not be able to tell."""
    fast = receipt_payload(msg_id, status, reason)
    assert fast == Receipt(msg_id=msg_id, status=status, reason=reason).model_dump_json().encode()
    assert Receipt.model_validate_json(fast) == Receipt(msg_id=msg_id, status=status, reason=reason)
