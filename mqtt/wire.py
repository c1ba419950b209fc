"""MQTT 5 packets as bytes: the subset the platform's own connection speaks (OASIS MQTT 5.0, chapters 2-3).

Pure: no I/O. This module holds the constants, the packet types a client receives, and the encoders, which
return whole packets; :mod:`mqtt.wire_reader` turns a byte stream back into packets.
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
    MAXIMUM_QOS = 0x24
    RETAIN_AVAILABLE = 0x25
    MAXIMUM_PACKET_SIZE = 0x27


#: The properties this module writes that are two-byte integers; the others it writes are four-byte ones.
_TWO_BYTE_PROPERTIES = frozenset({Prop.RECEIVE_MAXIMUM, Prop.SERVER_KEEP_ALIVE})
#: Two- and four-byte integers, big-endian, as MQTT writes them (section 1.5.2, 1.5.3).
U16 = struct.Struct("!H")
U32 = struct.Struct("!I")
_PUBLISH = int(PacketType.PUBLISH)
_PUBLISH_QOS1 = _PUBLISH << 4 | 0x02
PINGREQ = b"\xc0\x00"
#: DISCONNECT with reason 0 (normal disconnection): the session is kept and the will is not sent.
DISCONNECT = b"\xe0\x00"
#: DISCONNECT with reason 0x81 (malformed packet), before closing on a broker that broke the protocol.
DISCONNECT_MALFORMED = b"\xe0\x01\x81"


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
    return U16.pack(len(data)) + data


def _packet(first_byte: int, body: bytes) -> bytes:
    return bytes((first_byte,)) + encode_varint(len(body)) + body


def _properties(*items: tuple[Prop, int]) -> bytes:
    body = bytearray()
    for prop, value in items:
        body.append(prop)
        body += U16.pack(value) if prop in _TWO_BYTE_PROPERTIES else U32.pack(value)
    return encode_varint(len(body)) + body


def connect(
    client_id: str,
    *,
    keepalive_s: int,
    clean_start: bool,
    session_expiry_s: int = 0,
    receive_maximum: int = MAX_PACKET_ID,
    maximum_packet_size: int | None = None,
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
    if maximum_packet_size is not None:
        props.append((Prop.MAXIMUM_PACKET_SIZE, maximum_packet_size))
    if session_expiry_s:
        props.append((Prop.SESSION_EXPIRY_INTERVAL, session_expiry_s))
    body = bytearray(encode_string("MQTT"))
    body += bytes((PROTOCOL_LEVEL, flags)) + U16.pack(keepalive_s) + _properties(*props)
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
    body = U16.pack(packet_id) + b"\x00" + b"".join(encode_string(f) + bytes((options,)) for f in filters)
    return _packet(PacketType.SUBSCRIBE << 4 | 0x02, body)


def unsubscribe(packet_id: int, filters: Sequence[str]) -> bytes:
    body = U16.pack(packet_id) + b"\x00" + b"".join(encode_string(f) for f in filters)
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
    """The broker's answer to CONNECT, and the limits it sets for this connection."""

    session_present: bool
    reason_code: int
    properties: dict[int, object]

    def _int(self, prop: Prop, default: int) -> int:
        value = self.properties.get(prop, default)
        return value if isinstance(value, int) else default

    @property
    def receive_maximum(self) -> int:
        """QoS 1 publications the broker takes unacknowledged at once."""
        return self._int(Prop.RECEIVE_MAXIMUM, MAX_PACKET_ID)

    @property
    def maximum_packet_size(self) -> int:
        """The largest packet the broker accepts; a larger one costs the connection (reason 0x95)."""
        return self._int(Prop.MAXIMUM_PACKET_SIZE, MAX_VARINT + 5)

    @property
    def maximum_qos(self) -> int:
        return self._int(Prop.MAXIMUM_QOS, 2)

    @property
    def retain_available(self) -> bool:
        return self._int(Prop.RETAIN_AVAILABLE, 1) == 1

    @property
    def reason_string(self) -> str | None:
        value = self.properties.get(Prop.REASON_STRING)
        return value if isinstance(value, str) else None


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
