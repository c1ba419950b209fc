"""The narrow interface between the platform's services and a message bus: subscribe, receive in batches,
acknowledge once safe, publish.

``mqtt.service_link`` implements it over a real MQTT broker and ``mqtt.memory_bus`` in memory, so the same
component tests run on both.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, Protocol

from runtime.errors import ShianError


class BusError(ConnectionError):
    """The connection to the bus failed or dropped; whoever serves on it reconnects."""


class BrokerRefusal(BusError, ShianError):
    """The broker refused us for a reason that trying again will not change (bad credentials, a banned client,
    QoS 1 not granted): whoever serves on the link stops and says why, instead of reconnecting forever."""


class Incoming(NamedTuple):
    """One delivered message. ``mid`` identifies the delivery for the acknowledgement.

    A named tuple rather than a frozen dataclass: one is made per delivery, and this is three times cheaper."""

    topic: str
    payload: bytes
    qos: int
    retain: bool
    mid: int


class Publishing(Protocol):
    """Anything that can publish (the alerts notifier needs no more)."""

    async def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None:
        """Publish and, for QoS 1, return once the broker has acknowledged it."""
        ...


class BusClient(Publishing, Protocol):
    """A connection to the bus: implemented by :class:`mqtt.service_link.ServiceLink` and the in-memory bus."""

    async def subscribe(self, filters: Sequence[str], qos: int = 1) -> None: ...

    async def receive(self, max_count: int) -> list[Incoming]:
        """Wait for deliveries, then return up to ``max_count`` of them in arrival order. QoS 1 deliveries stay
        unacknowledged until :meth:`ack`. Raises :class:`BusError` once the connection is gone."""
        ...

    def ack(self, messages: Sequence[Incoming]) -> None:
        """Acknowledge deliveries; call in arrival order, only once they are safe."""
        ...

    def post(self, topic: str, payload: bytes) -> None:
        """Publish at QoS 1 without waiting: best effort, for notices the spool already backs (receipts)."""
        ...

    @property
    def posts_pending(self) -> int:
        """Posts not yet acknowledged by the broker."""
        ...

    async def flush(self, at_most: int = 0) -> None:
        """Wait until at most ``at_most`` posts are pending (or the connection is gone)."""
        ...
