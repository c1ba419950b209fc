"""Alert changes to people's group robots and webhooks, routed by level, kept in an outbox until delivered.

A route receives the alerts that have reached its level — a school route every change, a district route those
escalated to the district (and, with ``district``, only its district's), a city route those escalated to the city
— and critical alerts' reminders. Warnings that fall in a route's quiet hours wait until they end. Each change
is written to an outbox in the rules store before it counts as published, so a restart delivers what was owed;
a delivery is retried with backoff, WeCom's and DingTalk's ``errcode`` checked as well as the HTTP status, and
every delivery or final failure is written to the alert's audit log with the route it went to.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

import structlog

from devices.registry import Registry
from rules.alerts import ESCALATION_LEVELS, Alert
from rules.messages import rule_name
from rules.store import RulesStore
from runtime.clock import Clock
from runtime.sqlite import open_database

log = structlog.get_logger("shian.rules")

WebhookFormat = Literal["json", "wecom", "dingtalk"]
Level = Literal["school", "district", "city"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS webhook_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    route TEXT NOT NULL,
    alert_id TEXT NOT NULL,
    version TEXT NOT NULL,
    body TEXT NOT NULL,
    next_at REAL NOT NULL,            -- Unix seconds: when to try (the end of quiet hours, or after a backoff)
    attempts INTEGER NOT NULL DEFAULT 0,
    done INTEGER NOT NULL DEFAULT 0,  -- 1 delivered, 2 given up
    UNIQUE (route, alert_id, version)
);
CREATE INDEX IF NOT EXISTS webhook_due ON webhook_outbox (next_at) WHERE done = 0;
"""
#: Retries wait 30 s, 1 min, 2 min … up to an hour; after ATTEMPTS tries a delivery is given up and reported.
FIRST_RETRY_S = 30.0
LAST_RETRY_S = 3600.0
ATTEMPTS = 5


@dataclass(frozen=True)
class Route:
    """One configured destination (``[[rules.webhooks]]``)."""

    name: str
    url: str
    fmt: WebhookFormat = "json"
    level: Level = "school"
    #: Only the alerts of this district's canteens.
    district: str | None = None
    #: Local times between which warnings wait (quiet hours), e.g. 22:00-07:00.
    quiet: tuple[dt.time, dt.time] | None = None

    def takes(self, alert: Alert, district: str | None) -> bool:
        reached = ESCALATION_LEVELS.index(alert.escalation) >= ESCALATION_LEVELS.index(self.level)
        return reached and (self.district is None or self.district == district)

    def quiet_until(self, local: dt.datetime) -> dt.datetime | None:
        """The end of the quiet hours ``local`` falls in, or None."""
        if self.quiet is None:
            return None
        start, end = self.quiet
        t = local.timetz().replace(tzinfo=None)
        if start <= end:
            inside = start <= t < end
        else:  # across midnight
            inside = t >= start or t < end
        if not inside:
            return None
        day = local.date() + dt.timedelta(days=1 if start > end and t >= start else 0)
        return dt.datetime.combine(day, end, local.tzinfo)


def body_for(alert: Alert, fmt: WebhookFormat, to: str) -> dict[str, object]:
    """Generic JSON, or the text message of a WeCom (企业微信) or DingTalk (钉钉) group robot, saying who it is for."""
    if fmt == "json":
        data: dict[str, object] = json.loads(alert.model_dump_json(exclude={"dedup_key"}))
        return {**data, "to": to}
    level = {"critical": "【严重】", "warning": "【警告】", "info": "【提示】"}[alert.severity]
    state = {"open": "", "acknowledged": "（已确认）", "resolved": "（已解除）"}[alert.state]
    reminder = f"【第{alert.reminders}次提醒】" if alert.reminders and alert.state == "open" else ""
    # a group robot's reader sees words: the rule by its name, the alert by its number
    footer = f"{rule_name(alert.rule, 'zh')} · 告警编号 {alert.alert_id} · 通知 {to}"
    text = f"{reminder}{level}{alert.message}{state}\n{footer}"
    return {"msgtype": "text", "text": {"content": text}}


class Webhooks:
    """The notifier (it enqueues) and the delivery loop (:meth:`deliver_forever`). It owns ``store``, a
    connection of its own to the rules store, and closes it."""

    def __init__(self, routes: list[Route], store: RulesStore, registry: Registry, clock: Clock) -> None:
        self.routes = {route.name: route for route in routes}
        self.store = store
        self.registry = registry
        self.clock = clock
        self.tz = ZoneInfo(registry.timezone)
        self._db = open_database(Path(store.path))
        self._db.executescript(_SCHEMA)
        self._wake = asyncio.Event()
        self.delivered = 0
        self.failed = 0

    async def notify(self, alert: Alert) -> None:
        canteen = self.registry.canteen(alert.canteen_id)
        district = canteen.district if canteen else None
        now, version = self.clock.now(), RulesStore.version_of(alert)
        rows = []
        for route in self.routes.values():
            if not route.takes(alert, district):
                continue
            wait = route.quiet_until(now.astimezone(self.tz)) if alert.severity != "critical" else None
            body = json.dumps(body_for(alert, route.fmt, route.name), ensure_ascii=False)
            rows.append((route.name, alert.alert_id, version, body, (wait or now).timestamp()))
        if rows:
            self._db.executemany(
                "INSERT OR IGNORE INTO webhook_outbox (route, alert_id, version, body, next_at) VALUES (?, ?, ?, ?, ?)",
                rows,
            )
            self._wake.set()

    async def close(self) -> None:
        self._db.close()
        self.store.close()

    async def deliver_forever(self, every_s: float = 1.0) -> None:
        while True:
            await self.deliver_due()
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), every_s)

    async def deliver_due(self) -> int:
        """Try every delivery that is due; return how many were delivered."""
        now = self.clock.now()
        due = self._db.execute(
            "SELECT id, route, alert_id, body, attempts FROM webhook_outbox WHERE done = 0 AND next_at <= ?"
            " ORDER BY id",
            (now.timestamp(),),
        ).fetchall()
        delivered = 0
        for row_id, name, alert_id, body, attempts in due:
            route = self.routes.get(name)
            if route is None:  # a route removed from the configuration: nothing to send it to
                self._db.execute("UPDATE webhook_outbox SET done = 2 WHERE id = ?", (row_id,))
                continue
            try:
                await asyncio.to_thread(post, route.url, body.encode())
            except (OSError, ValueError) as exc:
                self._failed(row_id, route, alert_id, attempts=attempts + 1, error=str(exc), now=now)
                continue
            self._db.execute("UPDATE webhook_outbox SET done = 1, attempts = ? WHERE id = ?", (attempts + 1, row_id))
            self.store.notified(alert_id, route.name, now)
            self.delivered += 1
            delivered += 1
        return delivered

    def _failed(self, row_id: int, route: Route, alert_id: str, *, attempts: int, error: str, now: dt.datetime) -> None:
        if attempts >= ATTEMPTS:
            self._db.execute("UPDATE webhook_outbox SET done = 2, attempts = ? WHERE id = ?", (attempts, row_id))
            self.store.notified(alert_id, route.name, now, error=error)
            self.failed += 1
            log.error("webhook.failed", route=route.name, alert_id=alert_id, error=error)
            return
        retry = now.timestamp() + min(LAST_RETRY_S, FIRST_RETRY_S * 2 ** (attempts - 1))
        self._db.execute("UPDATE webhook_outbox SET attempts = ?, next_at = ? WHERE id = ?", (attempts, retry, row_id))
        log.warning("webhook.retry", route=route.name, alert_id=alert_id, attempt=attempts, error=error)

    def owed(self) -> int:
        (count,) = self._db.execute("SELECT COUNT(*) FROM webhook_outbox WHERE done = 0").fetchone()
        return int(count)


def post(url: str, body: bytes, timeout_s: float = 10.0) -> None:
    """POST JSON; a WeCom or DingTalk robot that answers 200 with an ``errcode`` refused the message."""
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            answer = response.read()
    except urllib.error.HTTPError as exc:
        raise ValueError(f"HTTP {exc.code}") from None
    try:
        parsed = json.loads(answer) if answer else {}
    except ValueError:
        return  # not JSON: a plain webhook that said 2xx
    if isinstance(parsed, dict) and parsed.get("errcode", 0) != 0:
        raise ValueError(f"the robot refused the message: errcode {parsed.get('errcode')}: {parsed.get('errmsg', '')}")
