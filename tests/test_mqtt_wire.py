"""The MQTT 5 codec of the platform's own connection: what it writes, and what it makes of any byte stream."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mqtt import wire, wire_reader
from mqtt.bus import Incoming
from mqtt.link_options import LastWill

topics = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), min_size=1, max_size=80)
deliveries = st.builds(
    Incoming,
    topic=topics,
    payload=st.binary(max_size=300),
    qos=st.sampled_from([0, 1]),
    retain=st.booleans(),
    mid=st.integers(1, wire.MAX_PACKET_ID),
)


def _packet_bytes(message: Incoming) -> bytes:
    return wire.publish(message.topic, message.payload, qos=message.qos, retain=message.retain, packet_id=message.mid)


@given(st.integers(0, wire.MAX_VARINT))
def test_variable_byte_integers_round_trip(value: int) -> None:
    encoded = wire.encode_varint(value)
    assert 1 <= len(encoded) <= 4
    assert wire_reader._read_varint(encoded + b"rest", 0) == (value, len(encoded))


@pytest.mark.parametrize("value", [-1, wire.MAX_VARINT + 1])
def test_out_of_range_integers_are_refused(value: int) -> None:
    with pytest.raises(ValueError, match="variable byte integer"):
        wire.encode_varint(value)


pubacks = st.tuples(st.integers(1, wire.MAX_PACKET_ID), st.sampled_from([0x00, 0x10, 0x80, 0x87]))


def _puback_bytes(packet_id: int, code: int) -> bytes:
    return wire.pubacks([packet_id]) if code == 0 else b"\x40\x03" + struct.pack("!HB", packet_id, code)


@given(st.lists(st.one_of(deliveries, pubacks), max_size=30), st.lists(st.integers(1, 400), max_size=30))
def test_packets_survive_any_split_of_the_stream(items: list[Incoming | tuple[int, int]], cuts: list[int]) -> None:
    """TCP delivers bytes in arbitrary chunks: however they are cut, the same deliveries and PUBACKs come out,
    each in order."""
    stream = b"".join(_packet_bytes(i) if isinstance(i, Incoming) else _puback_bytes(*i) for i in items)
    reader, packets, acks, pos = wire_reader.PacketReader(), [], [], 0
    for cut in [*cuts, len(stream)]:
        parsed = reader.feed(stream[pos : pos + cut])
        packets += parsed.packets
        acks += parsed.pubacks
        pos += cut
    assert packets == [m if m.qos else m._replace(mid=0) for m in items if isinstance(m, Incoming)]
    assert acks == [wire_reader.puback_of(*i) for i in items if not isinstance(i, Incoming)]


def test_a_publish_with_properties_is_read_past_them() -> None:
    """Brokers may add properties (here a message expiry and a subscription identifier)."""
    props = b"\x02" + struct.pack("!I", 60) + b"\x0b\x05"
    body = wire.encode_string("a/b") + struct.pack("!H", 7) + wire.encode_varint(len(props)) + props + b"data"
    packet = bytes((0x32,)) + wire.encode_varint(len(body)) + body
    assert wire_reader.PacketReader().feed(packet).packets == [Incoming("a/b", b"data", 1, False, 7)]


def test_a_long_property_block_is_read_past() -> None:
    pair = b"\x26" + wire.encode_string("k" * 100) + wire.encode_string("v" * 100)  # a user property
    body = wire.encode_string("t") + b"\x00\x01" + wire.encode_varint(len(pair)) + pair + b"p"
    packet = bytes((0x32,)) + wire.encode_varint(len(body)) + body
    assert wire_reader.PacketReader().feed(packet).packets == [Incoming("t", b"p", 1, False, 1)]


def test_connack_gives_the_session_flag_and_the_brokers_limits() -> None:
    props = b"\x21" + struct.pack("!H", 1000) + b"\x13" + struct.pack("!H", 20) + b"\x1f" + wire.encode_string("hi")
    body = b"\x01\x00" + wire.encode_varint(len(props)) + props
    (connack,) = wire_reader.PacketReader().feed(b"\x20" + wire.encode_varint(len(body)) + body).packets
    assert isinstance(connack, wire.Connack)
    assert connack.session_present
    assert connack.reason_code == 0
    assert connack.receive_maximum == 1000
    assert connack.properties[wire.Prop.SERVER_KEEP_ALIVE] == 20
    assert connack.properties[wire.Prop.REASON_STRING] == "hi"


def test_acknowledgements_and_disconnect_are_decoded() -> None:
    suback = b"\x90\x05\x00\x09\x00\x01\x87"  # packet 9: granted QoS 1, then "not authorized"
    puback_refused = b"\x40\x03\x00\x0a\x87"
    disconnect = b"\xe0\x06\x8e\x04\x1f" + wire.encode_string("x")  # session taken over, "x"
    puback_with_reason_string = b"\x40\x08\x00\x0c\x10\x04\x1f" + wire.encode_string("x")
    stream = suback + wire.pubacks([11]) + puback_refused + b"\xd0\x00" + puback_with_reason_string + disconnect
    packets, pubacks = wire_reader.PacketReader().feed(stream)
    assert packets == [wire.Ack(wire.PacketType.SUBACK, 9, (1, 0x87)), wire.PingResp(), wire.Disconnect(0x8E, "x")]
    assert pubacks == [wire_reader.puback_of(11), wire_reader.puback_of(10, 0x87), wire_reader.puback_of(12, 0x10)]


@pytest.mark.parametrize(
    ("stream", "problem"),
    [
        (b"\x36\x05\x00\x01t\x00\x01", "QoS 3"),
        (b"\x30\xff\xff\xff\xff\x01", "longer than four bytes"),
        (b"\x32\x03\x00\x09t", "truncated PUBLISH"),
        (b"\x20\x05\x00\x00\x02\x7f\x00", "unknown property"),
        (b"\x50\x02\x00\x01", "PUBREC is not used"),
        (b"\x10\x00", "never receives packet type 1"),
        (b"\x40\x01\x00", "truncated PUBACK"),
        (b"\x20\x04\x00\x00\x09\x21", "property block runs past"),
    ],
)
def test_malformed_input_is_a_protocol_error(stream: bytes, problem: str) -> None:
    with pytest.raises(wire.ProtocolError, match=problem):
        wire_reader.PacketReader().feed(stream)


def test_connect_carries_session_will_and_credentials() -> None:
    packet = wire.connect(
        "gw-1",
        keepalive_s=30,
        clean_start=False,
        session_expiry_s=3600,
        receive_maximum=500,
        username="gateway",
        password="s3cret",
        will=LastWill("shian/v1/c1/cabinet/cab1/status", b"offline", qos=1, retain=True),
    )
    assert packet[0] == 0x10
    length, start = wire_reader._read_varint(packet, 1)
    body = packet[start:]
    assert len(body) == length
    assert body[:7] == b"\x00\x04MQTT\x05"
    flags = body[7]
    assert flags == 0x80 | 0x40 | 0x20 | 0x08 | 0x04  # username, password, will retain, will QoS 1, will
    assert struct.unpack("!H", body[8:10]) == (30,)
    props, pos = wire_reader.read_properties(body, 10)
    assert props == {wire.Prop.RECEIVE_MAXIMUM: 500, wire.Prop.SESSION_EXPIRY_INTERVAL: 3600}
    assert body[pos:].endswith(wire.encode_string("gateway") + wire.encode_binary(b"s3cret"))


def test_a_clean_session_connect_sets_clean_start_and_no_expiry() -> None:
    packet = wire.connect("probe", keepalive_s=10, clean_start=True)
    body = packet[2:]
    assert body[7] == 0x02
    props, _ = wire_reader.read_properties(body, 10)
    assert wire.Prop.SESSION_EXPIRY_INTERVAL not in props


def test_subscribe_options_ask_for_no_local_and_retained_only_when_new() -> None:
    packet = wire.subscribe(3, ["shian/v1/#"], qos=1, no_local=True, retain_handling=1)
    assert packet[0] == 0x82
    assert packet.endswith(wire.encode_string("shian/v1/#") + bytes((0x01 | 0x04 | 0x10,)))


def _publish(topic: bytes, *, first: int = 0x32, packet_id: int = 1, payload: bytes = b"p") -> bytes:
    body = struct.pack("!H", len(topic)) + topic + (struct.pack("!H", packet_id) if first & 0x06 else b"")
    body += b"\x00" + payload
    return bytes((first,)) + wire.encode_varint(len(body)) + body


@pytest.mark.parametrize(
    ("stream", "message"),
    [
        (_publish(b""), "empty topic name"),
        (_publish(b"a\x00b"), "U\\+0000"),
        (_publish(b"a/b", packet_id=0), "packet identifier 0"),
        (_publish(b"a/b", first=0x34), "QoS 2"),
        (_publish(b"a/b", first=0x36), "QoS 3"),
        (b"\x41\x02\x00\x01", "PUBACK with reserved flag bits"),
        (b"\xd1\x00", "PINGRESP with reserved flag bits"),
        (b"\x20\x03\x02\x00\x00", "CONNACK with reserved acknowledge flags"),
        (b"\x90\x04\x00\x00\x00\x01", "SUBACK with packet identifier 0"),
        (b"\x30\x80\x00", "shortest form"),  # a two-byte length of 0
        (b"\xd0\x80\x80\x00", "shortest form"),
    ],
)
def test_the_reader_refuses_what_mqtt_5_forbids(stream: bytes, message: str) -> None:
    with pytest.raises(wire.ProtocolError, match=message):
        wire_reader.PacketReader().feed(stream)


def test_a_connack_reason_string_with_u0000_is_refused() -> None:
    props = b"\x1f" + wire.encode_binary(b"bad\x00")
    body = b"\x00\x00" + wire.encode_varint(len(props)) + props
    with pytest.raises(wire.ProtocolError, match="U\\+0000"):
        wire_reader.PacketReader().feed(b"\x20" + wire.encode_varint(len(body)) + body)


def test_a_packet_over_the_announced_maximum_is_refused_before_it_is_read() -> None:
    reader, packet = wire_reader.PacketReader(max_packet_size=1000), _publish(b"a/b", payload=b"x" * 1993)
    with pytest.raises(wire.ProtocolError, match=f"a packet of {len(packet)} bytes, over the 1000 announced"):
        reader.feed(packet[:50])  # its header alone says how long it is


@pytest.mark.parametrize("size", [200, 20_000, 3_000_000])  # two-, three- and four-byte remaining lengths
def test_a_long_packet_in_many_reads_is_gathered_not_rejoined(size: int) -> None:
    packet = _publish(b"a/b", payload=bytes(range(256)) * (size // 256))
    reader, chunk = wire_reader.PacketReader(), 4096
    got = []
    for start in range(0, len(packet), chunk):
        parsed = reader.feed(packet[start : start + chunk])
        got += parsed.packets
        if start + chunk < len(packet) and start >= chunk:
            # once the length is known, the reads wait in a list, each kept once: no buffer grows read by read
            assert reader._rest == b""
            assert len(reader._parts) == start // chunk + 1
    assert got == [Incoming("a/b", bytes(range(256)) * (size // 256), 1, False, 1)]


def test_the_client_announces_its_maximum_packet_size() -> None:
    packet = wire.connect("c", keepalive_s=30, clean_start=True, maximum_packet_size=4 * 1024 * 1024)
    _, start = wire_reader._read_varint(packet, 1)
    props, _ = wire_reader.read_properties(packet, start + 10)
    assert props[wire.Prop.MAXIMUM_PACKET_SIZE] == 4 * 1024 * 1024
