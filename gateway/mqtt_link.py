"""The one module that talks to the MQTT client library (aiomqtt over paho-mqtt).

aiomqtt 2.x acknowledges a QoS 1 delivery before the application has seen it, so a crash loses whatever was
queued. Here paho's manual acknowledgement is switched on through aiomqtt's underlying client (aiomqtt has no
public switch for it yet, see empicano/aiomqtt#345), and :meth:`MqttLink.ack` sends the PUBACK when the caller
says the message is safe.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import aiomqtt
import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from gateway.bus import Incoming

MqttError = aiomqtt.MqttError


@dataclass(frozen=True, slots=True)
class LastWill:
    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


@dataclass(frozen=True, kw_only=True)
class LinkOptions:
    host: str
    port: int
    client_id: str
    username: str | None = None
    password: str | None = None
    keepalive_s: int = 30
    #: Keep the session (subscriptions and queued messages) this long after a disconnect; None: clean session.
    session_expiry_s: int | None = None
    #: Acknowledge QoS 1 deliveries only through :meth:`MqttLink.ack`.
    manual_ack: bool = False
    will: LastWill | None = None
    #: Outgoing QoS 1 messages awaiting PUBACK; paho stalls past 65,535 and about 100 is fastest.
    max_inflight: int = 100
    #: TLS: the CA to trust (None: plain TCP), and a client certificate and key when the broker demands one.
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None

    def tls_context(self) -> ssl.SSLContext | None:
        if self.tls_ca is None:
            return None
        context = ssl.create_default_context(cafile=str(self.tls_ca))
        if self.tls_cert is not None:
            context.load_cert_chain(str(self.tls_cert), str(self.tls_key) if self.tls_key else None)
        return context


class MqttLink:
    """An MQTT 5 connection implementing :class:`gateway.bus.BusClient`. Use it as an async context manager."""

    def __init__(self, options: LinkOptions) -> None:
        self.options = options
        self._client: aiomqtt.Client | None = None
        self._acks_unconfirmed = False

    def _build(self) -> aiomqtt.Client:
        opts = self.options
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        if opts.session_expiry_s:
            properties.SessionExpiryInterval = opts.session_expiry_s
        will = aiomqtt.Will(opts.will.topic, opts.will.payload, opts.will.qos, opts.will.retain) if opts.will else None
        client = aiomqtt.Client(
            opts.host,
            opts.port,
            identifier=opts.client_id,
            username=opts.username,
            password=opts.password,
            protocol=aiomqtt.ProtocolVersion.V5,
            clean_start=paho.MQTT_CLEAN_START_FIRST_ONLY if not opts.session_expiry_s else False,
            properties=properties,
            keepalive=opts.keepalive_s,
            will=will,
            max_inflight_messages=opts.max_inflight,
            tls_context=opts.tls_context(),
            timeout=10,
        )
        # aiomqtt warns from 10 concurrent publishes on; Shian keeps up to ``max_inflight`` in flight on purpose.
        client.pending_calls_threshold = max(opts.max_inflight * 2, 10)
        if opts.manual_ack:
            client._client.manual_ack_set(True)
        return client

    @property
    def client(self) -> aiomqtt.Client:
        if self._client is None:
            raise RuntimeError("MqttLink is not connected; use it as 'async with MqttLink(...)'")
        return self._client

    async def __aenter__(self) -> MqttLink:
        self._client = self._build()
        await self._client.__aenter__()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._client is not None and self._acks_unconfirmed and exc_type is None:
            await self.sync()
        client, self._client = self._client, None
        if client is not None:
            await client.__aexit__(exc_type, exc, tb)

    async def sync(self) -> None:
        """Return once the broker has processed everything sent before, acknowledgements included.

        MQTT does not confirm a PUBACK. Measured here: disconnecting right after ``ack()`` lost the last
        PUBACKs, and the broker delivered those messages again. The broker handles a client's packets in
        order, so the UNSUBACK of a round trip (for a filter never subscribed, which no ACL checks) proves
        the acknowledgements before it arrived.
        """
        await self.client.unsubscribe(f"shian/sync/{self.options.client_id}")
        self._acks_unconfirmed = False

    async def subscribe(self, filters: Sequence[str], qos: int = 1) -> None:
        # noLocal: never receive our own publications (the gateway's receipts and dead letters).
        # retainHandling=1: retained messages only for a new subscription, not on every reconnect of a
        # persistent session.
        options = SubscribeOptions(qos=qos, noLocal=True, retainHandling=1)
        await self.client.subscribe([(topic, options) for topic in filters])

    async def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None:
        await self.client.publish(topic, payload, qos=qos, retain=retain)

    async def messages(self) -> AsyncIterator[Incoming]:
        async for message in self.client.messages:
            payload = message.payload
            if isinstance(payload, str):
                payload = payload.encode()
            elif not isinstance(payload, bytes | bytearray):
                payload = b"" if payload is None else str(payload).encode()
            yield Incoming(message.topic.value, bytes(payload), message.qos, message.retain, message.mid)

    def ack(self, message: Incoming) -> None:
        if self.options.manual_ack and message.qos > 0:
            self.client._client.ack(message.mid, message.qos)
            self._acks_unconfirmed = True
