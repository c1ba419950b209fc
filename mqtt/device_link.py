"""The device-side MQTT 5 client (aiomqtt over paho-mqtt): simulated devices, the load generator and tools.

The platform's own services (the gateway and the rules engine) use :mod:`mqtt.service_link` instead: they
acknowledge deliveries only once they are safe, in batches, which paho makes slow (docs/gateway.md).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from types import TracebackType

import aiomqtt
import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from mqtt.bus import Incoming
from mqtt.link_options import LinkOptions

MqttError = aiomqtt.MqttError


class MqttLink:
    """An MQTT 5 connection that acknowledges deliveries on arrival. Use it as an async context manager."""

    def __init__(self, options: LinkOptions) -> None:
        self.options = options
        self._client: aiomqtt.Client | None = None

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
            timeout=opts.connect_timeout_s,
        )
        # aiomqtt warns from 10 concurrent publishes on; Shian keeps up to ``max_inflight`` in flight on purpose.
        client.pending_calls_threshold = max(opts.max_inflight * 2, 10)
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
        client, self._client = self._client, None
        if client is not None:
            await client.__aexit__(exc_type, exc, tb)

    async def sync(self) -> None:
        """Return once the broker has processed everything this client sent before (an UNSUBSCRIBE round trip
        for a filter never subscribed; the broker handles a client's packets in order)."""
        await self.client.unsubscribe(f"shian/sync/{self.options.client_id}")

    async def subscribe(self, filters: Sequence[str], qos: int = 1, *, retain_as_published: bool = False) -> None:
        # noLocal: never receive our own publications (the gateway's receipts and dead letters).
        # retainHandling=1: retained messages only for a new subscription, not on every reconnect of a
        # persistent session. retain_as_published: live messages keep the publisher's retained flag (the
        # conformance check looks at it); otherwise only replays of stored ones have it.
        options = SubscribeOptions(qos=qos, noLocal=True, retainHandling=1, retainAsPublished=retain_as_published)
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
