"""When digests are made and sent: at the configured local time on each canteen's school days, once; again as a
correction ("更正") when a record that arrives later changes the day's result; delivered to the public topic
(retained) and the canteen's parents' groups, retried with backoff until each has it."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import structlog

from console.digest.compose import DailyDigest, compose, webhook_body
from console.digest.outbox import DigestOutbox
from console.readings import Readings, ReadingsError
from console.store import ConsoleStore
from devices.registry import Canteen, Registry
from devices.topics import public_daily_topic
from mqtt.bus import Publishing
from rules.store import RulesStore
from runtime.clock import Clock

log = structlog.get_logger("shian.digest")

MQTT = "mqtt"
#: Retries of one delivery wait 30 s, 1 min, 2 min … up to an hour.
FIRST_RETRY_S = 30.0
LAST_RETRY_S = 3600.0


@dataclass(frozen=True)
class DigestSchedule:
    #: Local time (the registry's zone) the day's digest is made.
    send_at: dt.time = dt.time(17, 30)
    #: How often a day already sent is looked at again for a correction.
    recheck: dt.timedelta = dt.timedelta(minutes=5)
    #: The address of the public pages, for the link in a digest (None: no link).
    public_url: str | None = None


def channels_of(canteen: Canteen) -> list[str]:
    """The public topic, then each parents' channel by its place in the registry and its format."""
    return [MQTT, *(f"{i}:{c.format}" for i, c in enumerate(canteen.parent_channels))]


class DigestService:
    def __init__(
        self,
        *,
        registry: Registry,
        readings: Readings,
        alerts: RulesStore,
        store: ConsoleStore,
        outbox: DigestOutbox,
        clock: Clock,
        schedule: DigestSchedule = DigestSchedule(),
        bus: Callable[[], Publishing | None] = lambda: None,
        timeout_s: float = 10.0,
    ) -> None:
        self.registry = registry
        self.readings = readings
        self.alerts = alerts
        self.store = store
        self.outbox = outbox
        self.clock = clock
        self.schedule = schedule
        self.bus = bus
        self.timeout_s = timeout_s
        self.tz = ZoneInfo(registry.timezone)
        self._checked: dict[tuple[str, dt.date], dt.datetime] = {}

    async def run(self, stop: asyncio.Event, every_s: float = 15.0) -> None:
        while not stop.is_set():
            try:
                await self.step()
            except ReadingsError as exc:  # the store is down: the digest waits, it is not made from nothing
                log.warning("digest.store_unreadable", error=str(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every_s)

    async def step(self) -> None:
        """Make what is due, then deliver what is owed."""
        now = self.clock.now()
        await asyncio.to_thread(self.make_due, now)
        await self.deliver(now)

    def make_due(self, now: dt.datetime) -> list[DailyDigest]:
        since = self.outbox.since(now)
        today = now.astimezone(self.tz).date()
        made = []
        for day in (today - dt.timedelta(days=1), today):
            due_at = dt.datetime.combine(day, self.schedule.send_at, self.tz)
            if now < due_at or due_at < since:
                continue  # not yet; or due before digests began here (a new installation owes no past day)
            for canteen in self.registry.canteens:
                if canteen.type == "supplier" or not self.registry.is_school_day(canteen, day):
                    continue
                digest = self._make(canteen, day, now)
                if digest is not None:
                    made.append(digest)
        return made

    def _make(self, canteen: Canteen, day: dt.date, now: dt.datetime) -> DailyDigest | None:
        latest = self.outbox.latest(canteen.id, day)
        key = (canteen.id, day)
        if latest is not None:
            checked = self._checked.get(key)
            if checked is not None and now - checked < self.schedule.recheck:
                return None
        self._checked[key] = now
        version = latest.version + 1 if latest else 1
        digest = compose(self.registry, self.readings, self.alerts, canteen, day, version=version, at=now)
        if latest is not None and digest.facts() == latest.facts():
            return None
        if not self.outbox.add(digest, channels_of(canteen)):
            return None
        log.info("digest.made", canteen=canteen.id, day=day.isoformat(), version=version)
        return digest

    def link(self, canteen_id: str, day: dt.date) -> str | None:
        token = self.store.link_token(canteen_id)
        if self.schedule.public_url is None or token is None:
            return None
        return f"{self.schedule.public_url.rstrip('/')}/p/{canteen_id}/{day.isoformat()}?t={token}"

    async def deliver(self, now: dt.datetime) -> None:
        for delivery in self.outbox.due(now):
            digest = self.outbox.version(delivery.canteen_id, delivery.day, delivery.version)
            canteen = self.registry.canteen(delivery.canteen_id)
            if digest is None or canteen is None:
                continue
            try:
                await self._send(canteen, digest, delivery.channel)
            except (OSError, ValueError, urllib.error.URLError, ConnectionError) as exc:
                wait = min(LAST_RETRY_S, FIRST_RETRY_S * 2**delivery.attempts)
                self.outbox.failed(delivery, str(exc), now + dt.timedelta(seconds=wait))
                log.warning("digest.delivery_failed", channel=delivery.channel, canteen=canteen.id, error=str(exc))
                continue
            self.outbox.delivered(delivery, now)

    async def _send(self, canteen: Canteen, digest: DailyDigest, channel: str) -> None:
        digest = digest.model_copy(update={"url": self.link(canteen.id, digest.date)})
        if channel == MQTT:
            bus = self.bus()
            if bus is None:
                raise ConnectionError("no broker connection yet")
            body = webhook_body(digest, "json")
            await bus.publish(
                public_daily_topic(canteen.id), json.dumps(body, ensure_ascii=False).encode(), retain=True
            )
            return
        index, fmt = channel.split(":", 1)
        target = canteen.parent_channels[int(index)]
        message = json.dumps(webhook_body(digest, fmt), ensure_ascii=False).encode()
        await asyncio.to_thread(self._post, target.url, message)

    def _post(self, url: str, body: bytes) -> None:
        request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
            answer = response.read()
        # WeCom and DingTalk answer 200 with an error code in the body when they refuse a message
        try:
            errcode = json.loads(answer or b"{}").get("errcode", 0)
        except (ValueError, AttributeError):
            errcode = 0
        if errcode:
            raise ValueError(f"the robot refused the message: {answer[:200]!r}")
