"""Flow control of QoS 0 deliveries on the service link. QoS 1 deliveries are bounded by the receive maximum the
link asks the broker for; QoS 0 ones are not, so the link counts them itself: past ``QOS0_HELD`` it stops
reading from the broker (which then queues or drops them for us), past twice that it drops what still arrives,
and counts it. Reading resumes once the consumer has taken half of them, and whenever a flush waits for PUBACKs
(they arrive on the read side too)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TypeGuard

from mqtt.bus import Incoming

#: QoS 0 deliveries held before the link stops reading.
QOS0_HELD = 1024


class QoS0Gate:
    def __init__(self) -> None:
        self.held = 0
        self.paused = False
        self.flushing = 0
        #: QoS 0 deliveries dropped because the link already held twice ``QOS0_HELD``.
        self.dropped = 0
        #: The most QoS 0 deliveries held at once.
        self.held_max = 0
        #: How often the link stopped reading because its consumer was behind.
        self.pauses = 0

    def admit(self) -> bool:
        """Whether to keep a QoS 0 delivery that just arrived (False: drop it, counted)."""
        if self.held >= 2 * QOS0_HELD:
            self.dropped += 1
            return False
        self.held += 1
        return True

    def arrived(self, transport: asyncio.Transport | None) -> None:
        """After a read: stop reading if too many are held (unless a flush waits for PUBACKs)."""
        self.held_max = max(self.held_max, self.held)
        if self.held > QOS0_HELD and not self.paused and not self.flushing and _open(transport):
            transport.pause_reading()
            self.paused = True
            self.pauses += 1

    def taken(self, batch: Sequence[Incoming], transport: asyncio.Transport | None) -> None:
        """After the consumer took ``batch``: read again once half of what was held is gone."""
        if self.held:  # nothing to count on the gateway's usual path, where every delivery is QoS 1
            self.held -= sum(1 for m in batch if not m.qos)
            if self.paused and self.held <= QOS0_HELD // 2:
                self.resume(transport)

    def resume(self, transport: asyncio.Transport | None) -> None:
        self.paused = False
        if _open(transport):
            transport.resume_reading()


def _open(transport: asyncio.Transport | None) -> TypeGuard[asyncio.Transport]:
    return transport is not None and not transport.is_closing()
