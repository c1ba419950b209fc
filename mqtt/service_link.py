"""The platform's own MQTT 5 connection, for the gateway and the rules engine. The one module that sends
acknowledgements, and only when told to.

Why not aiomqtt here, as everywhere else: aiomqtt 2.x acknowledges a QoS 1 delivery before the application has
seen it, and going through paho's manual acknowledgement instead measured 6-8k msg/s, 40 % of it in paho's
per-packet Python (docs/gateway.md). This client speaks just what a service needs — CONNECT with a persistent
session, SUBSCRIBE, QoS 1 in and out, PUBACK, PING, DISCONNECT — on an asyncio protocol, handles every packet a
data chunk holds in one pass, and writes what a loop iteration produced (acknowledgements, receipts) in one call.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Sequence
from types import TracebackType

import structlog

from mqtt import wire, wire_reader
from mqtt.bus import BrokerRefusal, BusError, Incoming
from mqtt.flow import QoS0Gate
from mqtt.link_options import LinkOptions
from mqtt.reasons import describe, refusal

log = structlog.get_logger("shian.link")


#: Encoded topics kept for publishing; a fleet's receipt topics, with room to spare.
TOPICS_REMEMBERED = 65_536


class _Protocol(asyncio.Protocol):
    def __init__(self, link: ServiceLink) -> None:
        self.link = link
        self.reader = wire_reader.PacketReader(link.options.maximum_packet_size)

    def data_received(self, data: bytes) -> None:
        try:
            packets, pubacks = self.reader.feed(data)
        except wire.ProtocolError as exc:
            self.link._protocol_error(exc)
            return
        self.link._dispatch(packets, pubacks)

    def connection_lost(self, exc: Exception | None) -> None:
        self.link._fail(BusError(f"connection lost: {exc}" if exc else "connection closed by the broker"))


class ServiceLink:
    """An MQTT 5 connection implementing :class:`mqtt.bus.BusClient`. Use it as an async context manager.

    Deliveries queue here until :meth:`receive` takes them and are acknowledged only by :meth:`ack`, so with a
    persistent session whatever was not acknowledged waits in the broker across a crash.
    """

    def __init__(self, options: LinkOptions) -> None:
        self.options = options
        self._transport: asyncio.Transport | None = None
        self._error: BusError | None = None
        self._deliveries: collections.deque[Incoming] = collections.deque()
        self._arrived = asyncio.Event()
        self._connack: asyncio.Future[wire.Connack] | None = None
        self._requests: dict[int, asyncio.Future[wire.Ack]] = {}
        # Outgoing QoS 1: waiting for a packet id and a slot of the broker's receive maximum, then in flight.
        self._topic_fields: dict[str, bytes] = {}  # topic -> as a PUBLISH carries it (receipts repeat topics)
        self._outbox: collections.deque[tuple[str, bytes, bool, asyncio.Future[None] | None]] = collections.deque()
        self._in_flight: dict[int, asyncio.Future[None] | None] = {}
        self._send_window = wire.MAX_PACKET_ID
        self._next_id = 0
        self._writes: list[bytes] = []
        self._flush_scheduled = False
        self._posts_pending = 0
        self._post_settled = asyncio.Event()
        self._acks_unconfirmed = False
        self._last_heard = 0.0
        self._keepalive: asyncio.Task[None] | None = None
        self._max_packet_size = wire.MAX_VARINT + 5  # the broker's, once it has said
        self._retain_available = True
        #: Flow control of QoS 0 deliveries: what is held, dropped, and how often reading paused.
        self.qos0 = QoS0Gate()
        #: Posts that failed: refused by the broker, over its maximum packet size, or lost with the connection.
        self.posts_failed = 0
        #: Publications the link refused to send because they exceed the broker's maximum packet size.
        self.oversized = 0
        #: Whether the broker still had this client's persistent session (known after connecting).
        self.session_present = False

    # --- connection -----------------------------------------------------------------------------------------

    async def __aenter__(self) -> ServiceLink:
        opts, loop = self.options, asyncio.get_running_loop()
        context = opts.tls_context()
        try:
            async with asyncio.timeout(opts.connect_timeout_s):
                transport, _ = await loop.create_connection(
                    lambda: _Protocol(self),
                    opts.host,
                    opts.port,
                    ssl=context,
                    server_hostname=opts.host if context else None,
                )
                self._transport = transport
                self._connack = loop.create_future()
                self._send(
                    wire.connect(
                        opts.client_id,
                        keepalive_s=opts.keepalive_s,
                        clean_start=not opts.session_expiry_s,
                        session_expiry_s=opts.session_expiry_s or 0,
                        receive_maximum=opts.receive_maximum,
                        maximum_packet_size=opts.maximum_packet_size,
                        username=opts.username,
                        password=opts.password,
                        will=opts.will,
                    )
                )
                connack = await self._connack
        except BusError:  # the broker answered, and not with a CONNACK we can use
            self._close()
            raise
        except TimeoutError as exc:
            self._close()
            raise BusError(
                f"cannot connect to {opts.host}:{opts.port}: no CONNACK within {opts.connect_timeout_s:g} s"
            ) from exc
        except OSError as exc:
            self._close()
            raise BusError(f"cannot connect to {opts.host}:{opts.port}: {exc}") from exc
        except asyncio.CancelledError:  # given up (a platform stopping): leave no half-open socket behind
            self._close()
            raise
        self._accept(connack)
        keepalive = connack.properties.get(wire.Prop.SERVER_KEEP_ALIVE, opts.keepalive_s)
        self._last_heard = loop.time()
        self.session_present = connack.session_present
        if isinstance(keepalive, int) and keepalive > 0:
            self._keepalive = asyncio.create_task(self._keep_alive(keepalive))
        return self

    def _accept(self, connack: wire.Connack) -> None:
        """Take the broker's limits, or refuse a connection this client cannot work with."""
        error = refusal(connack, self.options)
        if error is not None:
            self._close()
            raise error
        self._send_window = connack.receive_maximum
        self._max_packet_size = connack.maximum_packet_size
        self._retain_available = connack.retain_available

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._keepalive is not None:
            self._keepalive.cancel()
        if exc_type is None and self._error is None:
            with contextlib.suppress(BusError, TimeoutError):
                async with asyncio.timeout(self.options.connect_timeout_s):
                    await self.flush()
                    if self._acks_unconfirmed:
                        await self.sync()
            if self._error is None:
                self._send(wire.DISCONNECT)
                self._flush_now()
        self._close()

    def _close(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()
        self._fail(BusError("the link is closed"))

    async def _keep_alive(self, keepalive_s: int) -> None:
        """Ping at half the keep-alive; a broker silent for 1.5 keep-alives is gone (MQTT 5.0 section 3.1.2.10)."""
        loop = asyncio.get_running_loop()
        while self._error is None:
            await asyncio.sleep(keepalive_s / 2)
            if loop.time() - self._last_heard > keepalive_s * 1.5:
                self._fail(BusError(f"no answer from the broker for {keepalive_s * 1.5:.0f} s"))
                if self._transport is not None:
                    self._transport.abort()
                return
            self._send(wire.PINGREQ)

    def _fail(self, error: BusError) -> None:
        """The connection is over: wake every waiter with ``error`` (the first error wins)."""
        if self._error is None:
            self._error = error
        self._arrived.set()
        self._post_settled.set()
        for future in [self._connack, *self._requests.values(), *self._in_flight.values()]:
            if future is not None and not future.done():
                future.set_exception(self._error)
        for *_, future in self._outbox:
            if future is not None and not future.done():
                future.set_exception(self._error)
        self.posts_failed += self._posts_pending
        self._posts_pending = 0
        self._requests.clear()
        self._in_flight.clear()
        self._outbox.clear()

    def _check(self) -> None:
        if self._error is not None:
            raise BusError(str(self._error))
        if self._transport is None:
            raise RuntimeError("ServiceLink is not connected; use it as 'async with ServiceLink(...)'")

    # --- incoming -------------------------------------------------------------------------------------------

    def _dispatch(self, packets: list[wire.Packet], pubacks: list[int]) -> None:
        self._last_heard = asyncio.get_running_loop().time()
        deliveries, in_flight = self._deliveries, self._in_flight
        deliver = deliveries.append
        for packet in packets:
            if type(packet) is Incoming:
                if not packet.qos and not self.qos0.admit():
                    continue  # at most once, and the consumer is far behind: dropped, counted
                deliver(packet)
            else:
                self._control(packet)
        self.qos0.arrived(self._transport)
        settled = 0
        for puback in pubacks:  # one per receipt: the usual case is settled right here
            if (packet_id := puback & 0xFFFF) in in_flight:
                future, code = in_flight.pop(packet_id), puback >> 16
                # 0x10 "no matching subscribers" is a success too
                settled += 1 if future is None and code < 0x80 else self._published(future, code)
        if self._deliveries:
            self._arrived.set()
        if settled:
            self._posts_pending -= settled
            self._post_settled.set()
        if self._outbox:
            self._flush_soon()

    def _control(self, packet: wire.Packet) -> None:
        if isinstance(packet, wire.Ack):  # SUBACK, UNSUBACK
            request = self._requests.pop(packet.packet_id, None)
            if request is not None and not request.done():
                request.set_result(packet)
        elif isinstance(packet, wire.Connack):
            if self._connack is not None and not self._connack.done():
                self._connack.set_result(packet)
        elif isinstance(packet, wire.Disconnect):
            reason = f": {packet.reason_string}" if packet.reason_string else ""
            self._fail(BusError(f"the broker disconnected us, {describe(packet.reason_code)}{reason}"))

    def _published(self, future: asyncio.Future[None] | None, code: int) -> int:
        """Settle one publication the broker answered with ``code``; returns 1 for a post, 0 for a publish."""
        if future is None:
            if code >= 0x80:
                self.posts_failed += 1
                log.warning("link.post_refused", reason=describe(code))
            return 1
        if not future.done():
            if code >= 0x80:
                future.set_exception(BusError(f"the broker refused the publication: {describe(code)}"))
            else:
                future.set_result(None)
        return 0

    async def receive(self, max_count: int) -> list[Incoming]:
        while not self._deliveries:
            self._check()
            self._arrived.clear()
            await self._arrived.wait()
        self._check()
        take = min(max_count, len(self._deliveries))
        popleft = self._deliveries.popleft
        taken = [popleft() for _ in range(take)]
        self.qos0.taken(taken, self._transport)
        return taken

    def ack(self, messages: Sequence[Incoming]) -> None:
        """Acknowledge in one write; lost if the connection is gone (the broker then delivers them again)."""
        acks = [m.mid for m in messages if m.qos]
        if acks and self._error is None:
            self._writes.append(wire.pubacks(acks))
            self._flush_soon()
            self._acks_unconfirmed = True

    async def sync(self) -> None:
        """Return once the broker has processed everything sent before, acknowledgements included.

        MQTT does not confirm a PUBACK. Measured here: disconnecting right after acknowledging lost the last
        PUBACKs, and the broker delivered those messages again. The broker handles a client's packets in
        order, so the UNSUBACK of a round trip (for a filter never subscribed, which no ACL checks) proves
        the acknowledgements before it arrived.
        """
        await self._request(lambda packet_id: wire.unsubscribe(packet_id, [f"shian/sync/{self.options.client_id}"]))
        self._acks_unconfirmed = False

    async def subscribe(self, filters: Sequence[str], qos: int = 1) -> None:
        if qos not in (0, 1):
            raise ValueError(f"the service link subscribes at QoS 0 or 1, not {qos}: it never answers QoS 2")

        # noLocal: never receive our own publications (the gateway's receipts and dead letters).
        # retainHandling=1: retained messages only for a new subscription, not on every reconnect of a
        # persistent session.
        def packet(packet_id: int) -> bytes:
            return wire.subscribe(packet_id, filters, qos=qos, no_local=True, retain_handling=1)

        suback = await self._request(packet)
        refused = [f for f, code in zip(filters, suback.reason_codes, strict=False) if code >= 0x80]
        if refused:
            raise BusError(f"the broker refused the subscription to {', '.join(refused)}")
        lower = [f for f, code in zip(filters, suback.reason_codes, strict=False) if code < qos]
        if lower:
            raise BrokerRefusal(
                f"the broker granted {', '.join(lower)} at QoS 0 only; Shian acknowledges a message only once it is "
                "stored, which needs QoS 1 (check the broker's max_qos)"
            )

    async def _request(self, build: collections.abc.Callable[[int], bytes]) -> wire.Ack:
        self._check()
        packet_id = self._packet_id()
        future: asyncio.Future[wire.Ack] = asyncio.get_running_loop().create_future()
        self._requests[packet_id] = future
        self._send(build(packet_id))
        timeout_s = self.options.connect_timeout_s * 3
        try:
            async with asyncio.timeout(timeout_s):
                return await future
        except TimeoutError:
            # A dead path (a half-open connection, a hung broker): the link is over, whoever serves reconnects.
            self._fail(BusError(f"no answer from the broker within {timeout_s:g} s"))
            if self._transport is not None:
                self._transport.abort()
            raise BusError(str(self._error)) from None

    # --- outgoing -------------------------------------------------------------------------------------------

    async def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None:
        self._check()
        if retain and not self._retain_available:
            raise BusError(f"the broker does not keep retained messages (retain_available 0): not publishing {topic}")
        if qos == 0:
            packet = wire.publish(topic, payload, qos=0, retain=retain)
            if len(packet) > self._max_packet_size:
                self.oversized += 1
                raise BusError(self._too_large(topic, len(packet)))
            self._send(packet)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._outbox.append((topic, payload, retain, future))
        self._flush_soon()
        await future

    def post(self, topic: str, payload: bytes) -> None:
        if self._error is not None:
            self.posts_failed += 1
            return
        self._posts_pending += 1
        self._outbox.append((topic, payload, False, None))
        if not self._flush_scheduled:
            self._flush_soon()

    @property
    def posts_pending(self) -> int:
        return self._posts_pending

    async def flush(self, at_most: int = 0) -> None:
        # The PUBACKs awaited here arrive on the read side: a link that paused reading reads again meanwhile.
        self.qos0.flushing += 1
        if self.qos0.paused:
            self.qos0.resume(self._transport)
        try:
            while self._error is None and self._posts_pending > at_most:
                self._post_settled.clear()
                await self._post_settled.wait()
        finally:
            self.qos0.flushing -= 1

    def _protocol_error(self, exc: wire.ProtocolError) -> None:
        """The broker sent what MQTT 5 forbids: say so (DISCONNECT 0x81) and close (MQTT 5.0 section 4.13)."""
        self._fail(BusError(f"the broker sent a malformed packet: {exc}"))
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(wire.DISCONNECT_MALFORMED)
            self._transport.close()

    def _pump(self) -> None:
        """Move publications from the outbox into flight while the broker's receive maximum allows."""
        outbox, in_flight, writes, publish = self._outbox, self._in_flight, self._writes, wire.publish_qos1
        fields = self._topic_fields
        while outbox and len(in_flight) < self._send_window:
            topic, payload, retain, future = outbox.popleft()
            field = fields.get(topic)
            if field is None:
                if len(fields) >= TOPICS_REMEMBERED:
                    fields.clear()
                field = fields[topic] = wire.encode_string(topic)
            packet_id = self._packet_id()
            packet = publish(field, payload, packet_id, retain=retain)
            if len(packet) > self._max_packet_size:  # the broker would drop the connection (0x95): refuse it here
                self._refuse_oversized(topic, len(packet), future)
                continue
            in_flight[packet_id] = future
            writes.append(packet)

    def _too_large(self, topic: str, size: int) -> str:
        limit = self._max_packet_size
        return f"a {size}-byte publication to {topic} exceeds the broker's maximum packet size ({limit})"

    def _refuse_oversized(self, topic: str, size: int, future: asyncio.Future[None] | None) -> None:
        self.oversized += 1
        if future is None:
            self.posts_failed += 1
            self._posts_pending -= 1
            self._post_settled.set()
            log.error("link.post_too_large", topic=topic, bytes=size, maximum=self._max_packet_size)
        elif not future.done():
            future.set_exception(BusError(self._too_large(topic, size)))

    def _packet_id(self) -> int:
        next_id = self._next_id % wire.MAX_PACKET_ID + 1
        if next_id not in self._in_flight and next_id not in self._requests:  # the usual case, without a loop
            self._next_id = next_id
            return next_id
        for _ in range(wire.MAX_PACKET_ID):
            self._next_id = self._next_id % wire.MAX_PACKET_ID + 1
            if self._next_id not in self._in_flight and self._next_id not in self._requests:
                return self._next_id
        raise BusError("no free packet identifier")

    def _send(self, packet: bytes) -> None:
        self._writes.append(packet)
        self._flush_soon()

    def _flush_soon(self) -> None:
        # Everything one loop iteration produced leaves in one call: a syscall per PUBACK or receipt would cost
        # more than the rest of the gateway's work on the message.
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush_now)

    def _flush_now(self) -> None:
        self._flush_scheduled = False
        if self._outbox:
            self._pump()
        if self._writes and self._transport is not None and not self._transport.is_closing():
            self._transport.write(b"".join(self._writes))
        self._writes.clear()
