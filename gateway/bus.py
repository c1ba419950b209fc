"""The narrow interface between Shian and a message bus: subscribe, receive, acknowledge, publish.

``gateway.mqtt_link`` implements it over a real MQTT broker and ``gateway.memory_bus`` in memory, so the same
component tests run on both.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Incoming:
    """One delivered message. ``mid`` identifies the delivery for the manual acknowledgement."""

    topic: str
    payload: bytes
    qos: int
    retain: bool
    mid: int


class BusClient(Protocol):
    async def subscribe(self, filters: Sequence[str], qos: int = 1) -> None: ...

    async def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None:
        """Publish and, for QoS 1, return once the broker has acknowledged it."""
        ...

    def messages(self) -> AsyncIterator[Incoming]:
        """Deliveries in arrival order. A QoS 1 delivery stays unacknowledged until :meth:`ack`."""
        ...

    def ack(self, message: Incoming) -> None:
        """Acknowledge a delivery; call in arrival order, only once the message is safe."""
        ...
