"""An in-memory message bus with MQTT's matching, retained-message and acknowledgement rules.

For fast component tests; everything proven here is proven again on the real Mosquitto.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

from paho.mqtt.client import topic_matches_sub

from mqtt.bus import Incoming


@dataclass
class MemoryBroker:
    """An in-memory broker: topic filters, QoS 1 redelivery of what was not acknowledged, no network."""

    retained: dict[str, bytes] = field(default_factory=dict)
    clients: list[MemoryClient] = field(default_factory=list)
    published: list[tuple[str, bytes, bool]] = field(default_factory=list)

    def client(self, client_id: str) -> MemoryClient:
        client = MemoryClient(self, client_id)
        self.clients.append(client)
        return client

    def route(self, sender: MemoryClient, topic: str, payload: bytes, qos: int, retain: bool) -> None:
        self.published.append((topic, payload, retain))
        if retain:
            if payload:
                self.retained[topic] = payload
            else:
                self.retained.pop(topic, None)
        for client in self.clients:
            if client is sender:
                continue  # MQTT 5 "no local", as both MQTT links subscribe
            if any(topic_matches_sub(sub, topic) for sub in client.subscriptions):
                client.deliver(topic, payload, qos, retain=False)


class MemoryClient:
    """A :class:`~mqtt.bus.BusClient` of the in-memory broker."""

    def __init__(self, broker: MemoryBroker, client_id: str) -> None:
        self.broker = broker
        self.client_id = client_id
        self.subscriptions: list[str] = []
        self.unacked: list[int] = []
        self.acked: list[int] = []
        self._queue: asyncio.Queue[Incoming] = asyncio.Queue()
        self._mids = itertools.count(1)

    def deliver(self, topic: str, payload: bytes, qos: int, *, retain: bool) -> None:
        mid = next(self._mids)
        if qos > 0:
            self.unacked.append(mid)
        self._queue.put_nowait(Incoming(topic, payload, qos, retain, mid))

    async def subscribe(self, filters: Sequence[str], qos: int = 1) -> None:
        for sub in filters:
            if sub not in self.subscriptions:
                self.subscriptions.append(sub)
                for topic, payload in self.broker.retained.items():
                    if topic_matches_sub(sub, topic):
                        self.deliver(topic, payload, qos, retain=True)

    async def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None:
        self.broker.route(self, topic, payload, qos, retain)

    async def receive(self, max_count: int) -> list[Incoming]:
        batch = [await self._queue.get()]
        while len(batch) < max_count and not self._queue.empty():
            batch.append(self._queue.get_nowait())
        return batch

    def ack(self, messages: Sequence[Incoming]) -> None:
        for message in messages:
            if message.qos == 0:
                continue
            if not self.unacked or self.unacked[0] != message.mid:
                raise AssertionError(f"ack of {message.mid} out of arrival order; waiting: {self.unacked[:5]}")
            self.acked.append(self.unacked.pop(0))

    def post(self, topic: str, payload: bytes) -> None:
        self.broker.route(self, topic, payload, 1, False)

    @property
    def posts_pending(self) -> int:
        return 0  # routed at once

    async def flush(self, at_most: int = 0) -> None:
        return None
