"""The platform's own MQTT connection against the real Mosquitto (and, for a broker that misbehaves, a fake).

Its peer here is aiomqtt/paho (``MqttLink``), an independent implementation of the same protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from broker_config.managed import ManagedMosquitto
from mqtt import service_link, wire
from mqtt.bus import BusError, Incoming
from mqtt.device_link import MqttLink
from mqtt.link_options import LinkOptions
from mqtt.service_link import ServiceLink
from runtime.process import free_port


def _options(broker: ManagedMosquitto, client_id: str, **kw: object) -> LinkOptions:
    return LinkOptions(host=broker.host, port=broker.port, client_id=client_id, **kw)  # type: ignore[arg-type]


async def _take(link: ServiceLink, count: int, timeout: float = 10.0) -> list[Incoming]:
    got: list[Incoming] = []
    async with asyncio.timeout(timeout):
        while len(got) < count:
            batch = await link.receive(count - len(got))
            link.ack(batch)
            got += batch
    return got


async def test_deliveries_arrive_in_order_with_qos_and_retain(mosquitto: ManagedMosquitto, uid: str) -> None:
    async with ServiceLink(_options(mosquitto, f"svc-{uid}")) as link:
        await link.subscribe([f"t/{uid}/#"])
        async with MqttLink(_options(mosquitto, f"dev-{uid}")) as device:
            await device.publish(f"t/{uid}/a", b"one", qos=1)
            await device.publish(f"t/{uid}/b", b"", qos=0)
            await device.publish(f"t/{uid}/c", "三".encode(), qos=1)
        got = await _take(link, 3)
    assert [(m.topic, m.payload, m.qos, m.retain) for m in got] == [
        (f"t/{uid}/a", b"one", 1, False),
        (f"t/{uid}/b", b"", 0, False),
        (f"t/{uid}/c", "三".encode(), 1, False),
    ]


async def test_receive_hands_over_at_most_what_is_asked(mosquitto: ManagedMosquitto, uid: str) -> None:
    async with ServiceLink(_options(mosquitto, f"svc-{uid}")) as link:
        await link.subscribe([f"t/{uid}"])
        async with MqttLink(_options(mosquitto, f"dev-{uid}")) as device:
            for i in range(10):
                await device.publish(f"t/{uid}", str(i).encode(), qos=1)
        await link.sync()  # everything published has been routed to us by now
        first = await link.receive(4)
        rest = await _take(link, 6)
        link.ack(first)
    assert [int(m.payload) for m in first + rest] == list(range(10))


async def test_the_broker_sends_no_more_than_the_receive_maximum_unacknowledged(
    mosquitto: ManagedMosquitto, uid: str
) -> None:
    """The receive maximum bounds what the link holds in memory: the rest waits in the broker until acks."""
    async with ServiceLink(_options(mosquitto, f"svc-{uid}", receive_maximum=20)) as link:
        await link.subscribe([f"t/{uid}"])
        async with ServiceLink(_options(mosquitto, f"pub-{uid}")) as publisher:
            for i in range(50):
                await publisher.publish(f"t/{uid}", str(i).encode())
        await link.sync()  # every publication has been routed by now: the broker sent what the window allows
        held = await link.receive(100)
        assert len(held) == 20
        link.ack(held)
        rest = await _take(link, 30)
    assert [int(m.payload) for m in held + rest] == list(range(50))


async def test_posts_beyond_the_brokers_receive_maximum_wait_their_turn(mosquitto: ManagedMosquitto, uid: str) -> None:
    """Mosquitto allows 1,000 QoS 1 messages in flight from a client (max_inflight_messages) and disconnects one
    that sends more; 5,000 posts must all arrive, and the connection stay up."""
    count = 5000
    async with (
        ServiceLink(_options(mosquitto, f"watch-{uid}")) as watcher,
        ServiceLink(_options(mosquitto, f"svc-{uid}")) as link,
    ):
        await watcher.subscribe([f"t/{uid}"])
        for i in range(count):
            link.post(f"t/{uid}", str(i).encode())
        assert link.posts_pending == count
        await asyncio.wait_for(link.flush(), 30)
        assert link.posts_pending == 0
        assert link.posts_failed == 0
        got = await _take(watcher, count, timeout=30)
    assert [int(m.payload) for m in got] == list(range(count))


async def test_encoded_topics_are_remembered_within_a_bound(
    mosquitto: ManagedMosquitto, uid: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Receipts go to a few topics per device, so the link keeps each topic encoded; past the bound it starts
    over, and every post still reaches its own topic."""
    monkeypatch.setattr(service_link, "TOPICS_REMEMBERED", 3)
    topics = [f"t/{uid}/{n % 7}" for n in range(30)]
    async with (
        ServiceLink(_options(mosquitto, f"watch-{uid}")) as watcher,
        ServiceLink(_options(mosquitto, f"svc-{uid}")) as link,
    ):
        await watcher.subscribe([f"t/{uid}/#"])
        for n, topic in enumerate(topics):
            link.post(topic, str(n).encode())
            await asyncio.sleep(0)  # one loop iteration: the outbox is pumped and the topic remembered
            assert len(link._topic_fields) <= 3
        await asyncio.wait_for(link.flush(), 10)
        got = await _take(watcher, len(topics))
    assert [(m.topic, int(m.payload)) for m in got] == [(topic, n) for n, topic in enumerate(topics)]


async def test_publish_waits_for_the_brokers_acknowledgement(mosquitto: ManagedMosquitto, uid: str) -> None:
    async with ServiceLink(_options(mosquitto, f"svc-{uid}")) as link:
        await link.subscribe([f"t/{uid}"])
        async with ServiceLink(_options(mosquitto, f"pub-{uid}")) as publisher:
            await publisher.publish(f"t/{uid}", b"retained", qos=1, retain=True)
            await publisher.publish(f"t/{uid}", b"", qos=1, retain=True)  # and cleared again
        got = await _take(link, 2)
    assert [m.payload for m in got] == [b"retained", b""]


async def test_no_local_keeps_our_own_publications_from_us(mosquitto: ManagedMosquitto, uid: str) -> None:
    async with ServiceLink(_options(mosquitto, f"svc-{uid}")) as link:
        await link.subscribe([f"t/{uid}"])
        await link.publish(f"t/{uid}", b"mine", qos=1)
        async with MqttLink(_options(mosquitto, f"dev-{uid}")) as device:
            await device.publish(f"t/{uid}", b"theirs", qos=1)
        got = await _take(link, 1)
        await link.sync()
        assert [m.payload for m in got] == [b"theirs"]
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(link.receive(1), 0.3)


async def test_a_session_taken_over_ends_the_older_connection(mosquitto: ManagedMosquitto, uid: str) -> None:
    """Two gateways configured with one client id: the broker keeps the newer, and the older learns of it."""
    async with ServiceLink(_options(mosquitto, f"svc-{uid}")) as first:
        await first.subscribe([f"t/{uid}"])
        async with ServiceLink(_options(mosquitto, f"svc-{uid}")):
            with pytest.raises(BusError, match="connection closed by the broker"):
                await asyncio.wait_for(first.receive(1), 10)
            first.post(f"t/{uid}", b"x")  # counted as failed, never raised
            assert first.posts_failed == 1
            with pytest.raises(BusError):
                await first.publish(f"t/{uid}", b"x")


async def test_a_broker_that_is_not_there_is_a_clear_error() -> None:
    port = free_port("127.0.0.1")
    with pytest.raises(BusError, match=f"cannot connect to 127.0.0.1:{port}"):
        async with ServiceLink(LinkOptions(host="127.0.0.1", port=port, client_id="nobody")):
            pass


@contextlib.asynccontextmanager
async def _fake_broker(after_connack: bytes, connack: bytes = b"\x20\x03\x00\x00\x00") -> AsyncIterator[int]:
    """A server that answers CONNECT, sends ``after_connack``, then reads and says nothing more."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1024)
        writer.write(connack + after_connack)
        await writer.drain()
        with contextlib.suppress(ConnectionError):
            while await reader.read(1024):
                pass
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[1]


async def test_a_silent_broker_is_given_up_after_one_and_a_half_keepalives() -> None:
    async with _fake_broker(b"") as port:
        options = LinkOptions(host="127.0.0.1", port=port, client_id="c", keepalive_s=1)
        async with ServiceLink(options) as link:
            started = asyncio.get_running_loop().time()
            with pytest.raises(BusError, match="no answer from the broker"):
                await asyncio.wait_for(link.receive(1), 5)
            assert asyncio.get_running_loop().time() - started < 3


async def test_a_malformed_packet_from_the_broker_ends_the_connection() -> None:
    async with _fake_broker(b"\x36\x05\x00\x01t\x00\x01") as port:  # a PUBLISH with QoS 3
        with pytest.raises(BusError, match="malformed packet: PUBLISH with QoS 3"):
            async with ServiceLink(LinkOptions(host="127.0.0.1", port=port, client_id="c")) as link:
                await asyncio.wait_for(link.receive(1), 5)


async def test_a_refused_connection_names_the_reason() -> None:
    async with _fake_broker(b"", connack=b"\x20\x03\x00\x86\x00") as port:
        with pytest.raises(BusError, match=r"bad user name or password \(0x86\)"):
            async with ServiceLink(LinkOptions(host="127.0.0.1", port=port, client_id="c")):
                pass


def test_packet_ids_skip_those_in_flight() -> None:
    link = ServiceLink(LinkOptions(host="h", port=1, client_id="c"))
    link._in_flight = {1: None, 2: None}
    link._next_id = wire.MAX_PACKET_ID
    assert link._packet_id() == 3
