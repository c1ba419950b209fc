"""Why a message was refused: the one list of reasons used in receipts and dead-letter topics."""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    """Each value is also the last level of ``shian/v1/deadletter/{reason}``."""

    # the topic
    BAD_TOPIC = "bad_topic"  # not a device topic of version 1
    BAD_ID = "bad_id"  # shaped like one, but an id breaks the id rule
    # who sent it
    UNKNOWN_DEVICE = "unknown_device"  # the device id is not in the registry
    WRONG_CANTEEN = "wrong_canteen"  # the registry assigns the device to another canteen
    WRONG_KIND = "wrong_kind"  # the registry knows the device as another kind
    # the bytes
    TOO_LARGE = "too_large"  # over 64 KiB
    NOT_UTF8 = "not_utf8"
    INVALID_JSON = "invalid_json"
    NOT_OBJECT = "not_object"  # valid JSON, but not a JSON object
    # the payload against its model
    UNKNOWN_TYPE = "unknown_type"  # no such ``type``
    TYPE_NOT_ALLOWED = "type_not_allowed"  # a real type, but not one this kind publishes on this channel
    UNKNOWN_FIELD = "unknown_field"
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"  # for example a string where a number belongs
    NAIVE_TIMESTAMP = "naive_timestamp"  # a timestamp without a UTC offset
    INVALID_VALUE = "invalid_value"  # the right type, but out of range or not one of the allowed values
    UNKNOWN_ITEM = "unknown_item"  # a test's item_code is not in the item catalogue (devices/items.py)
