"""MQTT 5 packets as bytes: the subset the platform's own connection speaks (OASIS MQTT 5.0, chapters 2-3).

Pure: no I/O. Encoders return whole packets; :class:`PacketReader` splits a byte stream into packets and turns
PUBLISH packets straight into :class:`mqtt.bus.Incoming`, the hot path of the gateway, so a delivery costs
one slice of the buffer and one small object.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import NamedTuple

from mqtt.bus import Incoming
from mqtt.link_options import LastWill

PROTOCOL_LEVEL = 5
MAX_PACKET_ID = 0xFFFF
#: The largest value a Variable Byte Integer holds (four bytes), and so the largest remaining length.
MAX_VARINT = 268_435_455


class PacketType(IntEnum):
    CONNECT = 1
    CONNACK = 2
    PUBLISH = 3
    PUBACK = 4
    PUBREC = 5
    PUBREL = 6
    PUBCOMP = 7
    SUBSCRIBE = 8
    SUBACK = 9
    UNSUBSCRIBE = 10
    UNSUBACK = 11
    PINGREQ = 12
    PINGRESP = 13
    DISCONNECT = 14
    AUTH = 15


class Prop(IntEnum):
    """Property identifiers this module writes or reads by name (MQTT 5.0 section 2.2.2.2)."""

    SESSION_EXPIRY_INTERVAL = 0x11
    ASSIGNED_CLIENT_IDENTIFIER = 0x12
    SERVER_KEEP_ALIVE = 0x13
    REASON_STRING = 0x1F
    RECEIVE_MAXIMUM = 0x21
    MAXIMUM_PACKET_SIZE = 0x27


# Property identifier -> how its value is encoded; every property of MQTT 5.0, so any can be skipped.
_BYTE, _U16, _U32, _VARINT, _STRING, _BINARY, _PAIR = range(7)
_PROPERTY_TYPES: dict[int, int] = {
    0x01: _BYTE, 0x02: _U32, 0x03: _STRING, 0x08: _STRING, 0x09: _BINARY, 0x0B: _VARINT, 0x11: _U32,
    0x12: _STRING, 0x13: _U16, 0x15: _STRING, 0x16: _BINARY, 0x17: _BYTE, 0x18: _U32, 0x19: _BYTE,
    0x1A: _STRING, 0x1C: _STRING, 0x1F: _STRING, 0x21: _U16, 0x22: _U16, 0x23: _U16, 0x24: _BYTE,
    0x25: _BYTE, 0x26: _PAIR, 0x27: _U32, 0x28: _BYTE, 0x29: _BYTE, 0x2A: _BYTE,
}  # fmt: skip

_U16_STRUCT = struct.Struct("!H")
_U32_STRUCT = struct.Struct("!I")
_PUBLISH = 3
_PUBACK_BYTE = 0x40
_PUBLISH_QOS1 = _PUBLISH << 4 | 0x02
#: Named tuples made straight from a tuple: their own constructors are Python functions, and one is made for
#: every delivery.
_new = tuple.__new__
PINGREQ = b"\xc0\x00"
#: DISCONNECT with reason 0 (normal disconnection): the session is kept and the will is not sent.
DISCONNECT = b"\xe0\x00"


class ProtocolError(ValueError):
    """The peer sent bytes that are not MQTT 5 as this client speaks it."""


def encode_varint(value: int) -> bytes:
    if not 0 <= value <= MAX_VARINT:
        raise ValueError(f"{value} does not fit an MQTT variable byte integer")
    out = bytearray()
    while True:
        digit, value = value & 0x7F, value >> 7
        out.append(digit | 0x80 if value else digit)
        if not value:
            return bytes(out)


def encode_string(text: str) -> bytes:
    return encode_binary(text.encode("utf-8"))


def encode_binary(data: bytes) -> bytes:
    if len(data) > 0xFFFF:
        raise ValueError(f"{len(data)} bytes do not fit an MQTT string or binary field")
    return _U16_STRUCT.pack(len(data)) + data


def _packet(first_byte: int, body: bytes) -> bytes:
    return bytes((first_byte,)) + encode_varint(len(body)) + body


def _properties(*items: tuple[Prop, int]) -> bytes:
    body = bytearray()
    for prop, value in items:
        body.append(prop)
        body += _U16_STRUCT.pack(value) if _PROPERTY_TYPES[prop] == _U16 else _U32_STRUCT.pack(value)
    return encode_varint(len(body)) + body


def connect(
    client_id: str,
    *,
    keepalive_s: int,
    clean_start: bool,
    session_expiry_s: int = 0,
    receive_maximum: int = MAX_PACKET_ID,
    username: str | None = None,
    password: str | None = None,
    will: LastWill | None = None,
) -> bytes:
    flags = 0x02 if clean_start else 0
    if will is not None:
        flags |= 0x04 | (will.qos << 3) | (0x20 if will.retain else 0)
    if password is not None:
        flags |= 0x40
    if username is not None:
        flags |= 0x80
    props = [(Prop.RECEIVE_MAXIMUM, receive_maximum)]
    if session_expiry_s:
        props.append((Prop.SESSION_EXPIRY_INTERVAL, session_expiry_s))
    body = bytearray(encode_string("MQTT"))
    body += bytes((PROTOCOL_LEVEL, flags)) + _U16_STRUCT.pack(keepalive_s) + _properties(*props)
    body += encode_string(client_id)
    if will is not None:
        body += b"\x00" + encode_string(will.topic) + encode_binary(will.payload)
    if username is not None:
        body += encode_string(username)
    if password is not None:
        body += encode_binary(password.encode("utf-8"))
    return _packet(PacketType.CONNECT << 4, bytes(body))


def subscribe(packet_id: int, filters: Sequence[str], *, qos: int, no_local: bool, retain_handling: int) -> bytes:
    options = qos | (0x04 if no_local else 0) | (retain_handling << 4)
    body = _U16_STRUCT.pack(packet_id) + b"\x00" + b"".join(encode_string(f) + bytes((options,)) for f in filters)
    return _packet(PacketType.SUBSCRIBE << 4 | 0x02, body)


def unsubscribe(packet_id: int, filters: Sequence[str]) -> bytes:
    body = _U16_STRUCT.pack(packet_id) + b"\x00" + b"".join(encode_string(f) for f in filters)
    return _packet(PacketType.UNSUBSCRIBE << 4 | 0x02, body)


def publish(topic: str, payload: bytes, *, qos: int, retain: bool, packet_id: int = 0) -> bytes:
    if qos:
        return publish_qos1(encode_string(topic), payload, packet_id, retain=retain)
    field = encode_string(topic)
    # topic, an empty property block, the payload
    return b"".join((_publish_head(_PUBLISH << 4 | retain, len(field) + 1 + len(payload)), field, b"\x00", payload))


def publish_qos1(topic_field: bytes, payload: bytes, packet_id: int, *, retain: bool = False) -> bytes:
    """A QoS 1 PUBLISH of a topic already encoded (:func:`encode_string`): the gateway sends one receipt per
    record, to a few topics per device, and encoding each topic once saves a third of the work."""
    head = _publish_head(_PUBLISH_QOS1 | retain, len(topic_field) + 3 + len(payload))
    # topic, packet id, an empty property block, the payload
    return b"".join((head, topic_field, packet_id.to_bytes(2, "big"), b"\x00", payload))


def _publish_head(first: int, body_length: int) -> bytes:
    return bytes((first, body_length)) if body_length < 0x80 else bytes((first,)) + encode_varint(body_length)


def pubacks(packet_ids: Sequence[int]) -> bytes:
    """PUBACKs with reason 0 (success) in their short form (section 3.4.2.1), packed in one call: each is the four
    bytes 0x40 0x02 and the packet id."""
    return struct.pack(f"!{len(packet_ids)}I", *[0x40020000 | packet_id for packet_id in packet_ids])


@dataclass(frozen=True, slots=True)
class Connack:
    session_present: bool
    reason_code: int
    properties: dict[int, object]

    @property
    def receive_maximum(self) -> int:
        value = self.properties.get(Prop.RECEIVE_MAXIMUM, MAX_PACKET_ID)
        return value if isinstance(value, int) else MAX_PACKET_ID


class Ack(NamedTuple):
    """SUBACK or UNSUBACK: the packet it answers and its reason codes."""

    type: PacketType
    packet_id: int
    reason_codes: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Disconnect:
    reason_code: int
    reason_string: str | None


@dataclass(frozen=True, slots=True)
class PingResp:
    pass


Packet = Incoming | Connack | Ack | Disconnect | PingResp


class Parsed(NamedTuple):
    """What a chunk of the stream completed: the packets in order, and the PUBACKs apart, each as
    ``packet_id | reason_code << 16`` (:func:`puback_of`). One PUBACK arrives for every receipt the gateway
    publishes, and an object apiece cost more than reading it."""

    packets: list[Packet]
    pubacks: list[int]


def puback_of(packet_id: int, reason_code: int = 0) -> int:
    """A PUBACK as :attr:`Parsed.pubacks` holds it."""
    return packet_id | reason_code << 16


def _read_varint(data: bytes | bytearray, pos: int) -> tuple[int, int]:
    """(value, position after it); raises IndexError when the data ends inside it."""
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 21:
            raise ProtocolError("variable byte integer longer than four bytes")


def read_properties(data: bytes, pos: int) -> tuple[dict[int, object], int]:
    """Decode a property block; user properties keep only their last pair (nothing here reads them)."""
    length, pos = _read_varint(data, pos)
    end = pos + length
    if end > len(data):
        raise ProtocolError("property block runs past the packet")
    props: dict[int, object] = {}
    while pos < end:
        ident = data[pos]
        pos += 1
        kind = _PROPERTY_TYPES.get(ident)
        value: object
        if kind is None:
            raise ProtocolError(f"unknown property identifier 0x{ident:02x}")
        if kind == _BYTE:
            value, pos = data[pos], pos + 1
        elif kind == _U16:
            (value,), pos = _U16_STRUCT.unpack_from(data, pos), pos + 2
        elif kind == _U32:
            (value,), pos = _U32_STRUCT.unpack_from(data, pos), pos + 4
        elif kind == _VARINT:
            value, pos = _read_varint(data, pos)
        else:
            first, pos = _read_field(data, pos)
            value = first.decode("utf-8", "replace") if kind != _BINARY else first
            if kind == _PAIR:
                second, pos = _read_field(data, pos)
                value = (value, second.decode("utf-8", "replace"))
        props[ident] = value
    if pos != end:
        raise ProtocolError("property block length does not match its properties")
    return props, end


def _read_field(data: bytes, pos: int) -> tuple[bytes, int]:
    (length,) = _U16_STRUCT.unpack_from(data, pos)
    end = pos + 2 + length
    if end > len(data):
        raise ProtocolError("string runs past the packet")
    return data[pos + 2 : end], end


def _decode_other(kind: int, flags: int, body: bytes) -> Packet | None:
    try:
        if kind == PacketType.CONNACK:
            props, _ = read_properties(body, 2) if len(body) > 2 else ({}, 2)
            return Connack(bool(body[0] & 0x01), body[1], props)
        if kind in (PacketType.SUBACK, PacketType.UNSUBACK):
            (packet_id,) = _U16_STRUCT.unpack_from(body, 0)
            _, pos = read_properties(body, 2)
            return Ack(PacketType(kind), packet_id, tuple(body[pos:]))
        if kind == PacketType.PINGRESP:
            return PingResp()
        if kind == PacketType.DISCONNECT:
            code = body[0] if body else 0
            props, _ = read_properties(body, 1) if len(body) > 1 else ({}, 1)
            reason = props.get(Prop.REASON_STRING)
            return Disconnect(code, reason if isinstance(reason, str) else None)
    except (IndexError, struct.error) as exc:
        raise ProtocolError(f"truncated {PacketType(kind).name} packet") from exc
    if kind in (PacketType.PUBREC, PacketType.PUBREL, PacketType.PUBCOMP, PacketType.AUTH):
        raise ProtocolError(f"{PacketType(kind).name} is not used by this client (it subscribes at QoS 1)")
    raise ProtocolError(f"a client never receives packet type {kind}")


class PacketReader:
    """Feed it bytes as they arrive; it returns the whole packets they complete, in order."""

    def __init__(self) -> None:
        self._rest = b""  # the start of a packet not complete yet

    def feed(self, data: bytes) -> Parsed:
        # Parsed from immutable bytes, so that a payload or topic costs one slice: from a bytearray, each was
        # a slice and then a copy of it.
        buffer = self._rest + data if self._rest else data
        packets: list[Packet] = []
        pubacks: list[int] = []
        append, puback = packets.append, pubacks.append
        pos, size = 0, len(buffer)
        while size - pos >= 2:
            first, length = buffer[pos], buffer[pos + 1]
            if length < 0x80:  # one-byte remaining lengths (acknowledgements) and two-byte ones (a device's
                start = pos + 2  # record), read without the general decoder
            elif size - pos > 2 and buffer[pos + 2] < 0x80:
                length, start = (length & 0x7F) | buffer[pos + 2] << 7, pos + 3
            else:
                try:
                    length, start = _read_varint(buffer, pos + 1)
                except IndexError:
                    break  # the length itself is not complete yet
            end = start + length
            if end > size:
                break
            if first == _PUBACK_BYTE:  # one per receipt the gateway sends
                if length < 2:
                    raise ProtocolError("truncated PUBACK packet")
                code = buffer[start + 2] if length > 2 else 0  # properties, if any, are not needed
                puback(buffer[start] << 8 | buffer[start + 1] | code << 16)
            elif first >> 4 == _PUBLISH:
                try:
                    append(_read_publish(first, buffer, start, end))
                except IndexError as exc:
                    raise ProtocolError("truncated PUBLISH packet") from exc
            else:
                packet = _decode_other(first >> 4, first & 0x0F, buffer[start:end])
                if packet is not None:
                    append(packet)
            pos = end
        self._rest = buffer[pos:] if pos < size else b""
        return Parsed(packets, pubacks)


def _read_publish(first: int, buffer: bytes, start: int, end: int) -> Incoming:
    qos = (first >> 1) & 0x03
    if qos == 3:
        raise ProtocolError("PUBLISH with QoS 3")
    topic_end = start + 2 + (buffer[start] << 8 | buffer[start + 1])
    try:
        topic = buffer[start + 2 : topic_end].decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError("PUBLISH topic is not UTF-8") from None
    pos, packet_id = topic_end, 0
    if qos:
        packet_id = buffer[pos] << 8 | buffer[pos + 1]
        pos += 2
    props_length = buffer[pos]
    if props_length < 0x80:  # the usual one-byte length, read without the general decoder
        pos += 1 + props_length
    else:
        props_length, pos = _read_varint(buffer, pos)
        pos += props_length
    if pos > end:
        raise ProtocolError("PUBLISH properties run past the packet")
    return _new(Incoming, (topic, buffer[pos:end], qos, bool(first & 0x01), packet_id))
