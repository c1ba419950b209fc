"""Live alert changes for the console's browsers (Server-Sent Events).

The feed is one more notifier of the rules engine: it hears every change the alerts topic carries, from the
same outbox, and passes each to the open event streams whose viewer may see that canteen. A slow browser
loses events rather than holding the engine up (its queue is bounded); the page then reloads its list.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from console.access import Viewer
from rules.alerts import Alert

#: Events one stream may have waiting; past that it is told to reload instead.
QUEUE_SIZE = 100
#: A comment line this often keeps proxies from closing an idle stream.
KEEPALIVE_S = 15.0
#: How often an open stream asks whether its viewer's session is still open: a logout, a changed password or a
#: removed account ends the stream within this long (and one event).
RECHECK_S = 5.0


@dataclass(eq=False)
class _Listener:
    viewer: Viewer
    queue: asyncio.Queue[str] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    overflowed: bool = False


def event_of(alert: Alert) -> str:
    """The event a browser receives: what changed, not the alert's evidence."""
    data = {
        "alert_id": alert.alert_id,
        "canteen_id": alert.canteen_id,
        "rule": alert.rule,
        "severity": alert.severity,
        "state": alert.state,
        "escalation": alert.escalation,
        "updated_at": alert.updated_at.isoformat(),
    }
    return f"event: alert\ndata: {json.dumps(data)}\n\n"


class AlertFeed:
    """Fans alert changes out to the streams that may see them. Create and use it on the event loop."""

    def __init__(self) -> None:
        self._listeners: set[_Listener] = set()

    @property
    def listeners(self) -> int:
        return len(self._listeners)

    async def notify(self, alert: Alert) -> None:
        event = event_of(alert)
        for listener in self._listeners:
            if not listener.viewer.sees(alert.canteen_id):
                continue
            try:
                listener.queue.put_nowait(event)
            except asyncio.QueueFull:
                listener.overflowed = True

    async def close(self) -> None:
        self._listeners.clear()

    async def stream(
        self,
        viewer: Viewer,
        keepalive_s: float = KEEPALIVE_S,
        *,
        still_valid: Callable[[], bool] = lambda: True,
        recheck_s: float = RECHECK_S,
    ) -> AsyncIterator[str]:
        """The event stream of one browser, until it goes away or ``still_valid`` says its session has ended
        (then a ``logout`` event: the page goes to the login)."""
        listener = _Listener(viewer)
        self._listeners.add(listener)
        loop = asyncio.get_running_loop()
        try:
            yield "retry: 3000\n\n"
            quiet_since = loop.time()
            while True:
                if not still_valid():
                    yield "event: logout\ndata: {}\n\n"
                    return
                try:
                    event = await asyncio.wait_for(listener.queue.get(), min(keepalive_s, recheck_s))
                except TimeoutError:
                    if loop.time() - quiet_since >= keepalive_s:
                        quiet_since = loop.time()
                        yield ": keepalive\n\n"
                    continue
                quiet_since = loop.time()
                if listener.overflowed:
                    listener.overflowed = False
                    yield "event: reload\ndata: {}\n\n"
                yield event
        finally:
            self._listeners.discard(listener)
