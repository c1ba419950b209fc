"""Reading MQTT 5 from a byte stream: :class:`PacketReader` splits it into packets and turns PUBLISH packets
straight into :class:`mqtt.bus.Incoming`, the hot path of the gateway, so a delivery costs one slice of the
buffer and one small object. It refuses what the specification forbids (MQTT 5.0 section 1.5 and chapter 3).
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from mqtt.bus import Incoming
from mqtt.wire import (
    MAX_VARINT,
    U16,
    U32,
    Ack,
    Connack,
    Disconnect,
    Packet,
    PacketType,
    PingResp,
    Prop,
    ProtocolError,
)

#: Named tuples made straight from a tuple: their own constructors are Python functions, and one is made for
#: every delivery.
_new = tuple.__new__
_PUBLISH = int(PacketType.PUBLISH)
_PUBACK_BYTE = int(PacketType.PUBACK) << 4

# Property identifier -> how its value is encoded; every property of MQTT 5.0, so any can be skipped.
_BYTE, _U16, _U32, _VARINT, _STRING, _BINARY, _PAIR = range(7)
_PROPERTY_TYPES: dict[int, int] = {
    0x01: _BYTE, 0x02: _U32, 0x03: _STRING, 0x08: _STRING, 0x09: _BINARY, 0x0B: _VARINT, 0x11: _U32,
    0x12: _STRING, 0x13: _U16, 0x15: _STRING, 0x16: _BINARY, 0x17: _BYTE, 0x18: _U32, 0x19: _BYTE,
    0x1A: _STRING, 0x1C: _STRING, 0x1F: _STRING, 0x21: _U16, 0x22: _U16, 0x23: _U16, 0x24: _BYTE,
    0x25: _BYTE, 0x26: _PAIR, 0x27: _U32, 0x28: _BYTE, 0x29: _BYTE, 0x2A: _BYTE,
}  # fmt: skip


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
            if byte == 0 and shift:
                raise ProtocolError("variable byte integer not in its shortest form")
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
            (value,), pos = U16.unpack_from(data, pos), pos + 2
        elif kind == _U32:
            (value,), pos = U32.unpack_from(data, pos), pos + 4
        elif kind == _VARINT:
            value, pos = _read_varint(data, pos)
        else:
            first, pos = _read_field(data, pos)
            value = _text(first) if kind != _BINARY else first
            if kind == _PAIR:
                second, pos = _read_field(data, pos)
                value = (value, _text(second))
        props[ident] = value
    if pos != end:
        raise ProtocolError("property block length does not match its properties")
    return props, end


def _text(field: bytes) -> str:
    """A UTF-8 string field: valid UTF-8 without U+0000 (MQTT 5.0 section 1.5.4)."""
    try:
        text = field.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError("a string field is not UTF-8") from None
    if "\x00" in text:
        raise ProtocolError("a string field holds U+0000")
    return text


def _read_field(data: bytes, pos: int) -> tuple[bytes, int]:
    (length,) = U16.unpack_from(data, pos)
    end = pos + 2 + length
    if end > len(data):
        raise ProtocolError("string runs past the packet")
    return data[pos + 2 : end], end


def _decode_other(kind: int, flags: int, body: bytes) -> Packet | None:
    if flags and kind != PacketType.PUBREL:  # reserved bits: 0 on every packet a broker sends a client but PUBLISH
        raise ProtocolError(f"{_name(kind)} with reserved flag bits 0x{flags:x} set")
    try:
        if kind == PacketType.CONNACK:
            if body[0] & 0xFE:
                raise ProtocolError("CONNACK with reserved acknowledge flags set")
            props, _ = read_properties(body, 2) if len(body) > 2 else ({}, 2)
            return Connack(bool(body[0] & 0x01), body[1], props)
        if kind in (PacketType.SUBACK, PacketType.UNSUBACK):
            (packet_id,) = U16.unpack_from(body, 0)
            if packet_id == 0:
                raise ProtocolError(f"{_name(kind)} with packet identifier 0")
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
        raise ProtocolError(f"truncated {_name(kind)} packet") from exc
    if kind in (PacketType.PUBREC, PacketType.PUBREL, PacketType.PUBCOMP, PacketType.AUTH):
        raise ProtocolError(f"{_name(kind)} is not used by this client (it subscribes at QoS 1)")
    raise ProtocolError(f"a client never receives packet type {kind}")


def _name(kind: int) -> str:
    return PacketType(kind).name if kind in PacketType.__members__.values() else f"packet type {kind}"


class PacketReader:
    """Feed it bytes as they arrive; it returns the whole packets they complete, in order.

    A packet longer than ``max_packet_size`` (what the client announced in CONNECT) is a protocol error, and a
    long packet arriving in many reads is gathered in a list and joined once it is complete: joining the
    buffer on every read copied it quadratically (a 64 MiB packet blocked the event loop for seconds).
    """

    def __init__(self, max_packet_size: int = MAX_VARINT + 5) -> None:
        self.max_packet_size = max_packet_size
        self._rest = b""  # the start of a packet whose length is not complete yet
        self._parts: list[bytes] = []  # the reads of a packet whose length is known, while it is not complete
        self._missing = 0  # bytes that packet still needs

    def feed(self, data: bytes) -> Parsed:
        buffer = self._gather(data)
        if buffer is None:
            return Parsed([], [])
        packets: list[Packet] = []
        pubacks: list[int] = []
        append, puback = packets.append, pubacks.append
        pos, size, end = 0, len(buffer), 0
        while size - pos >= 2:
            first, length = buffer[pos], buffer[pos + 1]
            if length < 0x80:  # one-byte remaining lengths (acknowledgements) and two-byte ones (a device's
                start = pos + 2  # record), read without the general decoder
            elif size - pos > 2 and 0 < buffer[pos + 2] < 0x80:
                length, start = (length & 0x7F) | buffer[pos + 2] << 7, pos + 3
            else:
                try:
                    length, start = _read_varint(buffer, pos + 1)
                except IndexError:
                    break  # the length itself is not complete yet
            end = start + length
            if end - pos > self.max_packet_size:
                raise ProtocolError(f"a packet of {end - pos} bytes, over the {self.max_packet_size} announced")
            if end > size:
                break
            if first == _PUBACK_BYTE:  # one per receipt the gateway sends
                puback(_read_puback(buffer, start, length))
            elif first >> 4 == _PUBLISH:
                append(_read_publish(first, buffer, start, end))
            elif (packet := _decode_other(first >> 4, first & 0x0F, buffer[start:end])) is not None:
                append(packet)
            pos = end
        self._keep(buffer, pos, end)
        return Parsed(packets, pubacks)

    def _gather(self, data: bytes) -> bytes | None:
        """The bytes to parse now, or None while a long packet is still incomplete."""
        if not self._missing:
            # Parsed from immutable bytes, so that a payload or topic costs one slice: from a bytearray, each was
            # a slice and then a copy of it.
            return self._rest + data if self._rest else data
        self._parts.append(data)
        if len(data) < self._missing:
            self._missing -= len(data)
            return None
        buffer, self._missing = b"".join(self._parts), 0
        self._parts.clear()
        return buffer

    def _keep(self, buffer: bytes, pos: int, end: int) -> None:
        """Keep what follows the last whole packet for the next read."""
        self._rest = b""
        if end > len(buffer):  # a packet whose length is known: gather its reads until it is complete
            self._parts, self._missing = [buffer[pos:]], end - len(buffer)
        elif pos < len(buffer):
            self._rest = buffer[pos:]


def _read_puback(buffer: bytes, start: int, length: int) -> int:
    if length < 2:
        raise ProtocolError("truncated PUBACK packet")
    code = buffer[start + 2] if length > 2 else 0  # properties, if any, are not needed
    return buffer[start] << 8 | buffer[start + 1] | code << 16


def _read_publish(first: int, buffer: bytes, start: int, end: int) -> Incoming:
    try:
        return _parse_publish(first, buffer, start, end)
    except IndexError as exc:
        raise ProtocolError("truncated PUBLISH packet") from exc


def _parse_publish(first: int, buffer: bytes, start: int, end: int) -> Incoming:
    qos = (first >> 1) & 0x03
    if qos > 1:  # this client subscribes at QoS 1 at most, so the broker never sends QoS 2 (and 3 is invalid)
        raise ProtocolError(f"PUBLISH with QoS {qos}; this client subscribes at QoS 0 or 1 only")
    topic_length = buffer[start] << 8 | buffer[start + 1]
    if not topic_length:  # no topic alias was allowed in CONNECT, so a topic name is required
        raise ProtocolError("PUBLISH with an empty topic name")
    topic_end = start + 2 + topic_length
    try:
        topic = buffer[start + 2 : topic_end].decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError("PUBLISH topic is not UTF-8") from None
    if "\x00" in topic:
        raise ProtocolError("PUBLISH topic holds U+0000")
    pos, packet_id = topic_end, 0
    if qos:
        packet_id = buffer[pos] << 8 | buffer[pos + 1]
        if not packet_id:
            raise ProtocolError("QoS 1 PUBLISH with packet identifier 0")
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
