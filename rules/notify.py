"""Where alert changes go: the MQTT alerts topic (retained while open) and webhooks (the time-series store's
notifier is wired in ``wiring.stored_alerts``, since rules and storage are peers that never import each other).

Notifiers are driven by the rules store's outbox: a change is marked published only after every notifier that
must not lose it has taken it, so a crash publishes it again rather than never.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Literal, Protocol

import structlog

from devices.topics import alert_topic
from mqtt.bus import Publishing
from rules.alerts import Alert
from runtime.backoff import Backoff

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


WebhookFormat = Literal["json", "wecom", "dingtalk"]


def webhook_body(alert: Alert, fmt: WebhookFormat) -> dict[str, object]:
    """Generic JSON, or the text message of a WeCom (企业微信) or DingTalk (钉钉) group robot."""
    if fmt == "json":
        return json.loads(alert.model_dump_json(exclude={"dedup_key"}))  # type: ignore[no-any-return]
    level = {"critical": "【严重】", "warning": "【警告】", "info": "【提示】"}[alert.severity]
    state = {"open": "", "acknowledged": "（已确认）", "resolved": "（已解除）"}[alert.state]
    text = f"{level}{alert.message}{state}\n规则 {alert.rule} · 告警 {alert.alert_id}"
    return {"msgtype": "text", "text": {"content": text}}


@dataclass
class Webhook:
    """POSTs each change to a URL, retrying with backoff in the background: a slow or dead endpoint never
    blocks the engine (changes queue up to ``max_queue``, then the oldest are dropped with a warning)."""

    url: str
    fmt: WebhookFormat = "json"
    attempts: int = 5
    max_queue: int = 10_000
    timeout_s: float = 5.0

    def __post_init__(self) -> None:
        self._queue: asyncio.Queue[Alert] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.delivered = 0
        self.failed = 0

    async def notify(self, alert: Alert) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._deliver_forever())
        if self._queue.qsize() >= self.max_queue:
            dropped = self._queue.get_nowait()
            log.warning("webhook.dropped", url=self.url, alert_id=dropped.alert_id)
        self._queue.put_nowait(alert)

    def _post(self, alert: Alert) -> None:
        body = json.dumps(webhook_body(alert, self.fmt), ensure_ascii=False).encode()
        request = urllib.request.Request(
            self.url, data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
            response.read()

    async def _deliver_forever(self) -> None:
        while True:
            alert = await self._queue.get()
            retry = Backoff()
            for attempt in range(1, self.attempts + 1):
                try:
                    await asyncio.to_thread(self._post, alert)
                    self.delivered += 1
                    break
                except (urllib.error.URLError, OSError) as exc:
                    if attempt == self.attempts:
                        self.failed += 1
                        log.error("webhook.failed", url=self.url, alert_id=alert.alert_id, error=str(exc))
                    else:
                        await asyncio.sleep(retry.next_delay())

    async def close(self) -> None:
        if self._task:
            self._task.cancel()
