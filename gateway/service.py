"""The gateway: receive -> validate -> dedup -> spool (group commit, fsync) -> acknowledge -> receipt.

A delivery is acknowledged to the broker only after the batch holding it is committed to the spool, and
acknowledgements go out in arrival order. Bad input is committed as a dead letter before it is acknowledged,
then published on the dead-letter topic; receipts tell devices what became of their records.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import time
from collections.abc import Iterable
from dataclasses import dataclass

import structlog

from devices.messages import DeadLetter, DeviceStatus, Receipt
from devices.registry import Registry
from devices.topics import ROOT, Channel, deadletter_topic
from gateway.bus import BusClient, Incoming
from gateway.entries import SkewLimits, spool_entry
from gateway.intake import Accepted, Ignored, Rejected, Verdict, classify
from gateway.publisher import Publisher
from gateway.spool import NewDeadLetter, NewRecord, Outcome, Spool
from gateway.stats import GatewayStats
from shian.clock import Clock

log = structlog.get_logger("shian.gateway")

DEFAULT_SKEW = SkewLimits()


@dataclass(frozen=True, slots=True)
class _Delivery:
    incoming: Incoming
    arrived: float  # monotonic, for the acknowledgement latency


class Gateway:
    """Ingests device messages for the canteens it owns (all of them when ``canteens`` is empty)."""

    def __init__(
        self,
        registry: Registry,
        clock: Clock,
        spool: Spool,
        *,
        canteens: Iterable[str] = (),
        skew: SkewLimits = DEFAULT_SKEW,
        max_batch: int = 2000,
    ) -> None:
        self.registry = registry
        self.clock = clock
        self.spool = spool
        self.canteens = tuple(sorted(set(canteens)))
        self.skew = skew
        self.max_batch = max_batch
        self.stats = GatewayStats()
        #: Set once the gateway's subscriptions are in place (after every reconnect).
        self.subscribed = asyncio.Event()
        #: Set after every commit, so that consumers in this process need not poll the spool.
        self.committed = asyncio.Event()
        self._stopping = asyncio.Event()

    def subscriptions(self) -> list[str]:
        # The whole tree, not just device-shaped topics, so that a malformed topic is dead-lettered rather
        # than unseen; the platform's own subtrees are ignored on arrival.
        if not self.canteens:
            return [f"{ROOT}/#"]
        return [f"{ROOT}/{canteen}/#" for canteen in self.canteens]

    def request_stop(self) -> None:
        """Drain: stop taking deliveries, finish the batch in hand, acknowledge it, then return from serve."""
        self._stopping.set()

    async def serve(self, bus: BusClient) -> None:
        """Subscribe and ingest until :meth:`request_stop`, cancellation or a dropped connection."""
        queue: asyncio.Queue[_Delivery] = asyncio.Queue()
        publisher = Publisher(bus)
        reader = asyncio.create_task(self._read(bus, queue))
        stopping = asyncio.create_task(self._stopping.wait())
        try:
            await bus.subscribe(self.subscriptions(), qos=1)
            self.subscribed.set()
            log.info("gateway.subscribed", filters=self.subscriptions())
            while not self._stopping.is_set():
                getter = asyncio.create_task(queue.get())
                await asyncio.wait([getter, reader, stopping], return_when=asyncio.FIRST_COMPLETED)
                if not getter.done():
                    getter.cancel()
                    if reader.done():
                        reader.result()  # the connection dropped: raise its error to the runner
                    continue
                batch = [getter.result()]
                while len(batch) < self.max_batch and not queue.empty():
                    batch.append(queue.get_nowait())
                await self._ingest(bus, publisher, batch)
            await publisher.drain()
        finally:
            self.subscribed.clear()
            reader.cancel()
            stopping.cancel()
            await publisher.close()

    @staticmethod
    async def _read(bus: BusClient, queue: asyncio.Queue[_Delivery]) -> None:
        async for incoming in bus.messages():
            queue.put_nowait(_Delivery(incoming, time.monotonic()))

    async def _ingest(self, bus: BusClient, publisher: Publisher, batch: list[_Delivery]) -> None:
        received_at = self.clock.now()
        verdicts = [classify(d.incoming, self.registry) for d in batch]
        entries = [spool_entry(d.incoming, v, received_at, self.skew) for d, v in zip(batch, verdicts, strict=True)]
        # The fsync runs in a worker thread: meanwhile the event loop keeps receiving the next batch.
        outcomes = await asyncio.to_thread(self.spool.commit, entries)
        self.committed.set()
        now = time.monotonic()
        for delivery in batch:
            bus.ack(delivery.incoming)
            self.stats.ack_latency.observe(now - delivery.arrived)
        self.stats.batches += 1
        for delivery, verdict, entry, outcome in zip(batch, verdicts, entries, outcomes, strict=True):
            self._count(verdict, entry, outcome)
            try:
                self._answer(publisher, delivery.incoming, verdict, outcome, received_at)
            except ValueError as exc:  # a notice that cannot be built must never stop the gateway
                log.error("gateway.answer_failed", topic=delivery.incoming.topic, error=str(exc))

    def _count(self, verdict: Verdict, entry: NewRecord | NewDeadLetter | None, outcome: Outcome) -> None:
        self.stats.received += 1
        match verdict:
            case Accepted(message=message):
                self.stats.accepted[message.type] += 1
                if outcome is Outcome.STORED:
                    self.stats.stored += 1
                    if isinstance(entry, NewRecord) and entry.skew_flagged:
                        self.stats.clock_skew += 1
                        log.warning(
                            "device.clock_skew",
                            device=entry.device_id,
                            msg_id=entry.msg_id,
                            device_ts=entry.device_ts.isoformat(),
                            received_at=entry.received_at.isoformat(),
                        )
                else:
                    self.stats.duplicates += 1
            case Rejected(reason=reason):
                self.stats.rejected[reason] += 1
            case Ignored(why=why):
                self.stats.ignored[why] += 1

    def _answer(
        self, publisher: Publisher, incoming: Incoming, verdict: Verdict, outcome: Outcome, received_at: dt.datetime
    ) -> None:
        """Receipts and dead-letter notices, after the commit. Best effort: the spool already holds the truth,
        and a device without a receipt sends again (and then hears ``duplicate``)."""
        match verdict:
            case Accepted(topic=topic, message=message) if incoming.qos > 0 and not isinstance(message, DeviceStatus):
                receipt = Receipt(msg_id=message.msg_id, status="stored" if outcome is Outcome.STORED else "duplicate")
                publisher.publish(str(topic.with_channel(Channel.RECEIPT)), receipt.model_dump_json().encode())
            case Rejected():
                log.warning(
                    "message.rejected",
                    reason=str(verdict.reason),
                    detail=verdict.detail,
                    topic=incoming.topic,
                    client_id=verdict.device_id,
                )
                letter = DeadLetter(
                    reason=verdict.reason,
                    detail=verdict.detail,
                    topic=incoming.topic,
                    client_id=verdict.device_id,
                    payload_b64=base64.b64encode(incoming.payload).decode("ascii"),
                    received_at=received_at,
                )
                publisher.publish(deadletter_topic(verdict.reason), letter.model_dump_json().encode())
                if verdict.reply_to is not None and verdict.msg_id is not None:
                    receipt = Receipt(
                        msg_id=verdict.msg_id, status="rejected", reason=f"{verdict.reason}: {verdict.detail}"
                    )
                    publisher.publish(
                        str(verdict.reply_to.with_channel(Channel.RECEIPT)), receipt.model_dump_json().encode()
                    )
            case _:
                pass
