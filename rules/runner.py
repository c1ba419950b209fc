"""Run the rules engine: follow the spool, tick the timers, publish alert changes, take acknowledgements."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Sequence

import structlog
from pydantic import ValidationError

from devices.registry import Registry
from devices.topics import ROOT
from mqtt.bus import BusClient, Incoming
from rules.alerts import AlertAck, AlertError
from rules.effects import PLATFORM
from rules.engine import RulesEngine
from rules.notify import Notifier
from rules.stats import RulesStats
from spool import Spool

log = structlog.get_logger("shian.rules")

CONSUMER = "rules"
LAG_RULE = "platform.rules_lag"
#: The actor the audit log names for an acknowledgement whose sender could not be read.
UNREADABLE = "(unreadable)"
ACK_SUBSCRIPTION = f"{ROOT}/alerts/+/+/ack"


def may_acknowledge(registry: Registry, canteen_id: str, username: str) -> bool:
    """A school's account for its own canteen, its district's account, or the city's."""
    canteen = registry.canteen(canteen_id)
    for account in registry.accounts:
        if account.username != username:
            continue
        if account.role == "city":
            return True
        if account.role == "school" and account.canteen == canteen_id:
            return True
        if account.role == "district" and canteen is not None and account.district == canteen.district:
            return True
    return False


class RulesRunner:
    """Keeps the engine fed from the spool (woken by the gateway's commits), ticking, and its outbox published."""

    def __init__(
        self,
        engine: RulesEngine,
        spool: Spool,
        notifiers: Sequence[Notifier],
        *,
        batch: int = 1000,
        catch_up_batch: int = 10_000,
        tick_s: float = 1.0,
        wake: asyncio.Event | None = None,
    ) -> None:
        self.engine = engine
        self.spool = spool
        self.notifiers = list(notifiers)
        self.batch = batch
        #: Records per step while behind: fewer hops through a busy event loop, one transaction each.
        self.catch_up_batch = max(batch, catch_up_batch)
        self.tick_s = tick_s
        #: Set by the gateway after each commit (same process): records are taken at once instead of at the tick.
        self.wake = wake or asyncio.Event()
        self.stats = RulesStats()

    async def run(self, stop: asyncio.Event) -> None:
        """Apply records and ticks until ``stop``; publish what changed alongside, so that a slow notifier (a
        busy broker connection) never holds the engine up — the outbox keeps each change until it is out."""
        changed = asyncio.Event()
        publisher = asyncio.create_task(self._publish_forever(changed))
        try:
            while not stop.is_set():
                self.wake.clear()
                processed = await self.step(publish=False)
                changed.set()
                if not processed:
                    waiters = [asyncio.create_task(stop.wait()), asyncio.create_task(self.wake.wait())]
                    await asyncio.wait(waiters, timeout=self.tick_s, return_when=asyncio.FIRST_COMPLETED)
                    for waiter in waiters:
                        waiter.cancel()
                if publisher.done():
                    publisher.result()  # a publisher that failed: say so rather than stop publishing quietly
        finally:
            publisher.cancel()
            await asyncio.gather(publisher, return_exceptions=True)
        await self.publish_pending()

    async def _publish_forever(self, changed: asyncio.Event) -> None:
        while True:
            await changed.wait()
            changed.clear()
            await self.publish_pending()

    async def step(self, *, publish: bool = True) -> int:
        """One batch of records (or a timer tick), then (unless ``run`` publishes alongside) publish what
        changed. Returns records processed."""
        store = self.engine.store
        limit = self.catch_up_batch if self.stats.lag_records > self.batch else self.batch
        records = await asyncio.to_thread(self.spool.read, store.checkpoint(), limit)
        head = await asyncio.to_thread(self.spool.last_seq)  # once a step: for the watermark and for the lag
        if records:
            caught_up = records[-1].seq >= head
            await asyncio.to_thread(functools.partial(self.engine.process, records, caught_up=caught_up))
            self.spool.advance(CONSUMER, records[-1].seq)  # lets the spool prune; the truth is in the store
            self.stats.applied += len(records)
        else:
            await asyncio.to_thread(self.engine.tick)
        await asyncio.to_thread(self.measure_lag, head)
        if publish:
            await self.publish_pending()
        return len(records)

    def measure_lag(self, head: int) -> None:
        """How far behind the spool's head the engine is, in records and in seconds; past the configured bound,
        ``platform.rules_lag`` is raised (and cleared once the lag is under half of it, and the alert has been
        open for a whole bound). ``head``: the spool's last sequence number."""
        checkpoint, now = self.engine.store.checkpoint(), self.engine.clock.now()
        self.stats.lag_records = max(0, head - checkpoint)
        oldest = self.spool.oldest_after(checkpoint) if self.stats.lag_records else None
        self.stats.lag_s = max(0.0, (now - oldest).total_seconds()) if oldest else 0.0
        bound = self.engine.config.rules_lag_alert_after
        lagging = self.engine.store.open_for(f"{LAG_RULE}|{PLATFORM}")
        if self.stats.lag_s > bound.total_seconds() and lagging is None:
            evidence = {"lag_records": self.stats.lag_records, "lag_s": round(self.stats.lag_s, 1)}
            self.engine.report(
                LAG_RULE, "warning", now, evidence, seconds=round(self.stats.lag_s), records=self.stats.lag_records
            )
        elif lagging is not None and self.stats.lag_s < bound.total_seconds() / 2 and now - lagging.updated_at >= bound:
            # cleared only once it has stayed open a whole bound: a lag that comes and goes is one alert, not many
            self.engine.clear(LAG_RULE, "the rules engine caught up", now, by="rules")

    async def close(self) -> None:
        """Close the notifiers, the spool reader and the rules store."""
        for notifier in self.notifiers:
            await notifier.close()
        self.spool.close()
        self.engine.close()

    async def publish_pending(self) -> None:
        for alert in self.engine.store.unpublished():
            try:
                for notifier in self.notifiers:
                    await notifier.notify(alert)
            except Exception as exc:  # any failure: keep the change in the outbox, retry on the next step
                log.warning("alert.publish_retry", alert_id=alert.alert_id, error=str(exc))
                return
            self.engine.store.mark_published(alert)

    async def take_acknowledgements(self, bus: BusClient) -> None:
        """Apply ``{"by", "note"}`` on ``shian/v1/alerts/{canteen}/{alert_id}/ack`` from allowed accounts."""
        await bus.subscribe([ACK_SUBSCRIPTION])
        while True:
            batch = await bus.receive(100)
            for incoming in batch:
                self.acknowledge(incoming)
            bus.ack(batch)

    def acknowledge(self, incoming: Incoming) -> None:
        parts = incoming.topic.split("/")
        if len(parts) != 6 or parts[-1] != "ack":
            return
        canteen_id, alert_id = parts[3], parts[4]
        store, now = self.engine.store, self.engine.clock.now()
        alert = store.get(alert_id)
        if alert is None or alert.canteen_id != canteen_id:
            log.warning("alert.ack_unknown", topic=incoming.topic)
            return
        try:
            ack = AlertAck.model_validate_json(incoming.payload)
            by, note = ack.by, ack.note
        except ValidationError:  # refused into the audit log: nothing stops over it
            why = 'an acknowledgement that cannot be read (expected {"by": account, "note": text})'
            store.refuse(alert_id, UNREADABLE, why, now)
            log.warning("alert.ack_malformed", topic=incoming.topic, payload=incoming.payload[:200])
            return
        if not may_acknowledge(self.engine.registry, canteen_id, by):
            store.refuse(alert_id, by, "this account may not acknowledge this canteen's alerts", now)
            log.warning("alert.ack_refused", alert_id=alert_id, by=by)
            return
        try:
            store.acknowledge(alert_id, by, note, now)
            log.info("alert.acknowledged", alert_id=alert_id, by=by)
        except AlertError as exc:
            log.info("alert.ack_ignored", alert_id=alert_id, by=by, why=str(exc))
