"""The gateway: receive -> validate -> dedup -> spool (group commit, fsync) -> acknowledge -> receipt.

A delivery is acknowledged to the broker only after the batch holding it is committed to the spool, and
acknowledgements go out in arrival order. Bad input is committed as a dead letter before it is acknowledged,
then published on the dead-letter topic; receipts tell devices what became of their records.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections.abc import Iterable
from dataclasses import dataclass

import structlog

from devices.messages import DETAIL_CHARS, DeadLetter, DeviceStatus, ReceiptStatus, receipt_payload
from devices.registry import Registry, manual_device_id
from devices.topics import ROOT, Channel, DeviceKind, DeviceTopic, deadletter_topic, receipt_topic
from gateway.entries import SkewLimits, spool_entry
from gateway.intake import Accepted, Classifier, Decision, Ignored, Rejected, Route, decide
from gateway.stats import GatewayStats
from mqtt.bus import BusClient, Incoming
from runtime.clock import Clock
from spool import CommitPlan, NewDeadLetter, Outcome, RecordRow, Spool, SpoolEntry, device_time, plan

log = structlog.get_logger("shian.gateway")

DEFAULT_SKEW = SkewLimits()


#: Deliveries committed to the spool in one transaction at most, unless configured otherwise.
MAX_BATCH = 2000
#: The reason a receipt gives for a record stored under a msg_id its device had used for other content.
MSG_ID_REUSED = "msg_id_reused"
#: The reason a stored record's receipt gives when its ``ts`` is outside the skew limits (the device should
#: synchronise its clock; the record is stored, flagged).
CLOCK_SKEW = "clock_skew"
#: Receipts and notices awaiting the broker's PUBACK beyond which intake waits.
POSTS_HIGH_WATER = 20_000
#: Deliveries validated between two yields to the event loop.
PREPARE_SLICE = 250
#: How long a draining gateway waits for its last receipts to be acknowledged.
DRAIN_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class _Batch:
    deliveries: list[Incoming]
    decisions: list[Decision]
    entries: list[SpoolEntry]
    plan: CommitPlan
    taken: float  # monotonic, for the acknowledgement latency


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
        max_batch: int = MAX_BATCH,
    ) -> None:
        self.registry = registry
        self.classify = Classifier(registry)
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

    @property
    def stopping(self) -> asyncio.Event:
        """Set by :meth:`request_stop`."""
        return self._stopping

    async def serve(self, bus: BusClient) -> None:
        """Subscribe and ingest until :meth:`request_stop`, cancellation or a dropped connection.

        Two stages overlap: while one batch is committed (the fsync runs in a worker thread), the next is
        received and validated.
        """
        self.stats.connections += 1
        handoff: asyncio.Queue[_Batch | None] = asyncio.Queue(maxsize=1)
        # Take deliveries before the SUBACK: a persistent session's backlog arrives right after the CONNACK,
        # ahead of the SUBACK, and waiting for it left a whole receive window parsed but unprocessed.
        taker = asyncio.create_task(self._take(bus, handoff))
        storer = asyncio.create_task(self._store(bus, handoff))
        try:
            await bus.subscribe(self.subscriptions(), qos=1)
            self.subscribed.set()
            log.info("gateway.subscribed", filters=self.subscriptions())
            done, _ = await asyncio.wait([taker, storer], return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()  # a dropped connection or a failed commit: raise it to the runner
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(DRAIN_TIMEOUT_S):
                    await bus.flush()
        finally:
            self.subscribed.clear()
            for task in (taker, storer):
                task.cancel()
            await asyncio.gather(taker, storer, return_exceptions=True)

    async def _take(self, bus: BusClient, handoff: asyncio.Queue[_Batch | None]) -> None:
        stopping = asyncio.create_task(self._stopping.wait())
        receive: asyncio.Future[list[Incoming]] | None = None
        try:
            while not self._stopping.is_set():
                receive = asyncio.ensure_future(bus.receive(self.max_batch))
                await asyncio.wait([receive, stopping], return_when=asyncio.FIRST_COMPLETED)
                if not receive.done():
                    receive.cancel()  # still waiting: nothing was taken from the link
                    break
                await handoff.put(await self._prepare(receive.result()))
        finally:
            stopping.cancel()
            if receive is not None and receive.done() and not receive.cancelled():
                receive.exception()  # a link that failed as we were cancelled: the runner hears it from serve
        await handoff.put(None)

    async def _prepare(self, deliveries: list[Incoming]) -> _Batch:
        """Validate a batch a slice at a time, yielding between slices: the commit thread's completion must not
        wait for a whole batch's validation before the next commit can start (measured: it idled a third of
        the time)."""
        received_at = self.clock.now()
        classify, window = self.classify, self.skew.window(received_at)
        decisions: list[Decision] = []
        entries: list[SpoolEntry] = []
        for start in range(0, len(deliveries), PREPARE_SLICE):
            if start:
                await asyncio.sleep(0)
            chunk = deliveries[start : start + PREPARE_SLICE]
            chunk_decisions = [classify(incoming) for incoming in chunk]
            entries += [spool_entry(d, v, window) for d, v in zip(chunk, chunk_decisions, strict=True)]
            decisions += chunk_decisions
        return _Batch(deliveries, decisions, entries, plan(entries), time.monotonic())

    async def _store(self, bus: BusClient, handoff: asyncio.Queue[_Batch | None]) -> None:
        """Commit batches one after the other; acknowledge each as soon as it is committed, and answer it while
        the next one commits (answers are not durable state, the worker thread need not wait for them)."""
        unanswered: tuple[_Batch, list[Outcome]] | None = None
        while (batch := await handoff.get()) is not None:
            committing = asyncio.ensure_future(asyncio.to_thread(self.spool.commit_plan, batch.plan))
            if unanswered is not None:
                self._answer(bus, *unanswered)
                unanswered = None
            outcomes = await committing
            self.committed.set()
            bus.ack(batch.deliveries)
            self.stats.ack_latency.observe(time.monotonic() - batch.taken, len(batch.deliveries))
            self.stats.batches += 1
            if handoff.empty():  # nothing to overlap with: answer now rather than when traffic resumes
                self._answer(bus, batch, outcomes)
            else:
                unanswered = (batch, outcomes)
            if bus.posts_pending > POSTS_HIGH_WATER:
                await bus.flush(POSTS_HIGH_WATER // 2)  # a slow broker pushes back on intake
        if unanswered is not None:
            self._answer(bus, *unanswered)

    async def submit_manual(self, canteen_id: str, payload: bytes) -> tuple[ReceiptStatus, str | None]:
        """A ``test.result`` entered by hand in the console, taken as if its canteen's manual detector had sent
        it: the same validation, dedup, spool and rules as a delivery, and the receipt a device would get.
        A rejected entry is dead-lettered like any other."""
        topic = DeviceTopic(canteen_id, DeviceKind.DETECTOR, manual_device_id(canteen_id), Channel.EVENT)
        route = Route.of(topic)
        incoming = Incoming(str(topic), payload, 1, False, 0)
        decision = decide(route, payload, self.registry.catalogue)
        entry = spool_entry(incoming, decision, self.skew.window(self.clock.now()))
        [outcome] = await asyncio.to_thread(self.spool.commit, [entry])
        self.committed.set()
        if isinstance(decision, Rejected):
            self.stats.rejected[decision.reason] += 1
            return "rejected", f"{decision.reason}: {decision.detail[:DETAIL_CHARS]}"
        self.stats.received += 1
        self.stats.accepted[decision.message.type] += 1
        if outcome is Outcome.DUPLICATE:
            self.stats.duplicates += 1
            return "duplicate", None
        self.stats.stored += 1
        return "stored", None

    def _answer(self, bus: BusClient, batch: _Batch, outcomes: list[Outcome]) -> None:
        """Count each delivery and answer it, after the commit. Answers are best effort: the spool already holds
        the truth, and a device without a receipt sends again (and then hears ``duplicate``)."""
        stats, post, stored_outcome = self.stats, bus.post, Outcome.STORED
        accepted = stats.accepted
        stored = duplicates = 0
        for incoming, decision, entry, outcome in zip(
            batch.deliveries, batch.decisions, batch.entries, outcomes, strict=True
        ):
            if type(decision) is not Accepted:
                self._answer_other(bus, incoming, decision, entry)
                continue
            route, message = decision
            accepted[message.type] += 1
            reason = None
            if outcome is stored_outcome:
                stored += 1
                status: ReceiptStatus = "stored"
                if isinstance(entry, RecordRow) and entry.skew_flagged:
                    reason = self._clock_skew(entry)
            elif outcome is Outcome.REUSED and isinstance(entry, RecordRow):  # rare: stored, and the device told
                stored += 1
                status, reason = "stored", self._reused(entry)
            else:
                duplicates += 1
                status = "duplicate"
            if incoming.qos and not isinstance(message, DeviceStatus):
                post(route.receipt_topic, receipt_payload(message.msg_id, status, reason))
        stats.received += len(outcomes)
        stats.stored += stored
        stats.duplicates += duplicates

    def _reused(self, entry: RecordRow) -> str:
        self.stats.msg_id_reused += 1
        log.warning("device.msg_id_reused", device=entry.device_id, msg_id=entry.msg_id)
        return f"{MSG_ID_REUSED}: msg_id {entry.msg_id!r} was used before for other content; stored as another record"

    def _answer_other(self, bus: BusClient, incoming: Incoming, decision: Decision, entry: SpoolEntry) -> None:
        if isinstance(decision, Rejected):
            self.stats.rejected[decision.reason] += 1
            if isinstance(entry, NewDeadLetter):
                try:
                    self._dead_letter(bus, incoming, decision, entry.received_at)
                except ValueError as exc:  # a notice that cannot be built must never stop the gateway
                    log.error("gateway.answer_failed", topic=incoming.topic, error=str(exc))
        elif isinstance(decision, Ignored):
            self.stats.ignored[decision.why] += 1

    def _clock_skew(self, entry: RecordRow) -> str:
        self.stats.clock_skew += 1
        log.warning(
            "device.clock_skew",
            device=entry.device_id,
            msg_id=entry.msg_id,
            device_ts=device_time(entry.device_ts, entry.device_utc_offset_s).isoformat(),
            received_at=dt.datetime.fromtimestamp(entry.received_at, dt.UTC).isoformat(),
            skew_s=round(entry.skew_s, 3),
        )
        return f"{CLOCK_SKEW}: ts is {entry.skew_s:+.0f} s from the platform's clock; stored, flagged"

    def _dead_letter(self, bus: BusClient, incoming: Incoming, decision: Rejected, received_at: dt.datetime) -> None:
        log.warning(
            "message.rejected",
            reason=str(decision.reason),
            detail=decision.detail,
            topic=incoming.topic,
            client_id=decision.device_id,
        )
        letter = DeadLetter.of(
            incoming.payload,
            reason=decision.reason,
            detail=decision.detail[:DETAIL_CHARS],
            topic=incoming.topic,
            client_id=decision.device_id,
            received_at=received_at,
        )
        bus.post(deadletter_topic(decision.reason), letter.model_dump_json().encode())
        if decision.reply_to is not None and decision.msg_id is not None:
            reason = f"{decision.reason}: {decision.detail[:DETAIL_CHARS]}"
            bus.post(receipt_topic(decision.reply_to), receipt_payload(decision.msg_id, "rejected", reason))
