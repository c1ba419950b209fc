"""Where alert changes go: the MQTT alerts topic (retained while open) and webhooks (``rules.webhooks``; the
time-series store's notifier is wired in ``wiring.stored_alerts``, since rules and storage are peers that never
import each other).

Notifiers are driven by the rules store's outbox: a change is marked published only after every notifier that
must not lose it has taken it, so a crash publishes it again rather than never.
"""

from __future__ import annotations

from typing import Protocol

import structlog

from devices.topics import alert_topic
from mqtt.bus import Publishing
from rules.alerts import Alert

log = structlog.get_logger("shian.rules")


class Notifier(Protocol):
    async def notify(self, alert: Alert) -> None:
        """Deliver one change; raise to have it retried later."""
        ...

    async def close(self) -> None:
        """Let go of what the notifier holds (connections, files, background tasks)."""
        ...


class MqttAlerts:
    """Retained on ``shian/v1/alerts/{canteen}/{alert_id}`` while open or acknowledged; when resolved, the final
    state is published once and the retained copy cleared."""

    def __init__(self, bus: Publishing | None) -> None:
        #: The current connection; None while disconnected (changes then wait in the outbox).
        self.bus = bus

    async def notify(self, alert: Alert) -> None:
        if self.bus is None:
            raise ConnectionError("not connected to the broker")
        topic = alert_topic(alert.canteen_id, alert.alert_id)
        body = alert.model_dump_json(exclude={"dedup_key"}).encode()
        if alert.state == "resolved":
            await self.bus.publish(topic, body, qos=1, retain=False)
            await self.bus.publish(topic, b"", qos=1, retain=True)  # clears the retained alert
        else:
            await self.bus.publish(topic, body, qos=1, retain=True)

    async def close(self) -> None:
        self.bus = None  # the connection belongs to the rules link
