"""Bytes on a device topic -> a typed message, or a specific reason why not. Pure: no I/O."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Union

import pydantic_core
from pydantic import Field, TypeAdapter, ValidationError

from devices.messages import (
    CATALOG,
    MAX_PAYLOAD_BYTES,
    MODELS_BY_TYPE,
    RFC3339_PATTERN,
    DeviceMessage,
    WireModel,
    allowed_types,
)
from devices.reasons import Reason
from devices.topics import Channel, DeviceKind

# pydantic error type -> our reason. Anything not listed is an invalid value.
_ERROR_REASONS: dict[str, Reason] = {
    "extra_forbidden": Reason.UNKNOWN_FIELD,
    "missing": Reason.MISSING_FIELD,
    "timezone_aware": Reason.NAIVE_TIMESTAMP,
}
_TYPE_ERROR_SUFFIXES = ("_type", "_parsing")


class DecodeError(ValueError):
    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class _Problem:
    reason: Reason
    text: str


def _problem(error: Any) -> _Problem:
    kind: str = error["type"]
    loc = ".".join(str(part) for part in error["loc"]) or "payload"
    if kind == "string_pattern_mismatch" and error.get("ctx", {}).get("pattern") == RFC3339_PATTERN:
        example = "2026-11-25T11:30:00+08:00"
        return _Problem(
            Reason.INVALID_VALUE, f"{loc}: {str(error['input'])[:40]!r} is not an RFC 3339 timestamp such as {example}"
        )
    if kind in _ERROR_REASONS:
        reason = _ERROR_REASONS[kind]
    elif kind.endswith(_TYPE_ERROR_SUFFIXES):
        reason = Reason.WRONG_TYPE
    else:
        reason = Reason.INVALID_VALUE
    return _Problem(reason, f"{loc}: {error['msg']}")


def _adapter(models: tuple[type[WireModel], ...]) -> TypeAdapter[Any]:
    if len(models) == 1:
        return TypeAdapter(models[0])
    union: Any = Annotated[Union[models], Field(discriminator="type")]  # noqa: UP007 (a runtime tuple)
    return TypeAdapter(union)


def _decoder(kind: DeviceKind, channel: Channel, models: tuple[type[WireModel], ...]) -> Decoder:
    # pydantic-core's own validator, without TypeAdapter's Python wrapper around it
    validate: Callable[[bytes], DeviceMessage] = _adapter(models).validator.validate_json

    def decode_one(payload: bytes) -> DeviceMessage:
        if len(payload) > MAX_PAYLOAD_BYTES:
            raise DecodeError(Reason.TOO_LARGE, f"{len(payload)} bytes; at most {MAX_PAYLOAD_BYTES} are accepted")
        try:
            return validate(payload)  # its JSON parser refuses bytes that are not UTF-8 as well
        except ValidationError:
            return decode_carefully(payload, kind, channel)

    return decode_one


Decoder = Callable[[bytes], DeviceMessage]

#: (kind, channel) -> its decoder: one validator for every payload type allowed there, so that a valid payload
#: is parsed once; anything else goes through :func:`decode_carefully`, which finds the specific reason (and
#: accepts exactly what the one pass accepts).
_DECODERS: dict[tuple[DeviceKind, Channel], Decoder] = {
    (kind, channel): _decoder(kind, channel, models) for (kind, channel), models in CATALOG.items()
}


def decoder_for(kind: DeviceKind, channel: Channel) -> Decoder:
    """The decoder of payloads a device of ``kind`` publishes on ``channel`` (look it up once, call it often)."""
    return _DECODERS.get((kind, channel)) or functools.partial(decode_carefully, kind=kind, channel=channel)


def decode(payload: bytes, kind: DeviceKind, channel: Channel) -> DeviceMessage:
    """Decode and validate one payload published by a device of ``kind`` on ``channel``."""
    return decoder_for(kind, channel)(payload)


def decode_carefully(payload: bytes, kind: DeviceKind, channel: Channel) -> DeviceMessage:
    """Decode step by step, so that a rejection names its first problem precisely."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise DecodeError(Reason.TOO_LARGE, f"{len(payload)} bytes; at most {MAX_PAYLOAD_BYTES} are accepted")
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError(Reason.NOT_UTF8, f"byte {exc.start} is not valid UTF-8") from None
    try:
        raw = pydantic_core.from_json(payload)
    except ValueError as exc:
        raise DecodeError(Reason.INVALID_JSON, str(exc)) from None
    if not isinstance(raw, dict):
        raise DecodeError(Reason.NOT_OBJECT, f"the payload is a JSON {type(raw).__name__}, not an object")
    if "type" not in raw:
        raise DecodeError(Reason.MISSING_FIELD, "type: the 'type' field is required")
    allowed = allowed_types(kind, channel)
    declared = raw["type"]
    if not isinstance(declared, str) or declared not in MODELS_BY_TYPE:
        raise DecodeError(Reason.UNKNOWN_TYPE, f"type {declared!r} is not a message type of version 1")
    if declared not in allowed:
        raise DecodeError(
            Reason.TYPE_NOT_ALLOWED,
            f"a {kind} publishes {', '.join(allowed)} on {channel}, not {declared!r}",
        )
    try:
        message: DeviceMessage = MODELS_BY_TYPE[declared].model_validate_json(payload)  # type: ignore[assignment]
        return message
    except ValidationError as exc:
        problems = [_problem(error) for error in exc.errors(include_url=False)]
        raise DecodeError(problems[0].reason, "; ".join(p.text for p in problems)) from None
