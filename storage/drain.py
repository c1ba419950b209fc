"""From the spool to the time-series store, without losing a point.

The drain reads committed records in order from its own checkpoint, writes them in batches and advances the
checkpoint only after the store said yes. Transient failures (server away, timeouts, 5xx, 429) are retried with
capped exponential backoff for as long as it takes; the backlog waits on disk, in the spool, not in memory.
A batch the server refuses for good is split in halves until the refused records are isolated: those go to the
spool's consumer rejects with the server's message, and the rest of the batch lands.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from devices.registry import Registry
from runtime import backoff
from runtime.clock import Clock
from spool import Spool, SpoolRecord
from storage.pipeline import Pipeline
from storage.schema import Judge
from storage.sinks import Sink, sink_for
from storage.writers import PermanentWriteError, PointWriter, TransientWriteError

log = structlog.get_logger("shian.storage")

CONSUMER = "storage"
DISK_CHECK_EVERY_S = 10.0


@dataclass
class StorageStats:
    """The drain's counters, logged every few seconds and written as the ``gateway`` measurement's lag."""

    written_points: int = 0
    written_records: int = 0
    rejected: int = 0
    retries: int = 0
    backlog: int = 0
    oldest_unwritten_age_s: float = 0.0
    spool_bytes: int = 0
    backlog_bytes: int = 0
    last_error: str | None = field(default=None)

    def snapshot(self) -> dict[str, object]:
        return {
            "written_points": self.written_points,
            "written_records": self.written_records,
            "rejected": self.rejected,
            "retries": self.retries,
            "backlog": self.backlog,
            "oldest_unwritten_age_s": round(self.oldest_unwritten_age_s, 3),
            "spool_bytes": self.spool_bytes,
            "backlog_bytes": self.backlog_bytes,
        }


@dataclass(slots=True)
class Batch:
    """Records read after ``after_seq``, encoded for the writer: written as a whole or halved on refusal."""

    after_seq: int
    last_seq: int
    records: int
    items: list[tuple[SpoolRecord, Any]]
    set_aside: set[int] = field(default_factory=set)
    written: bool = False


class StorageDrain:
    """Follows the spool from the ``storage`` checkpoint into a :class:`~storage.writers.PointWriter`.

    While it runs (:meth:`run`), the next batch is read and encoded while up to ``writes_in_flight`` earlier ones
    are being written, and the checkpoint advances in order (``storage.pipeline``).
    """

    def __init__(
        self,
        spool: Spool,
        registry: Registry,
        writer: PointWriter,
        clock: Clock,
        *,
        batch_size: int = 5000,
        writes_in_flight: int = 2,
        poll_s: float = 0.2,
        disk_warn_bytes: int = 1024**3,
        backoff_start_s: float = backoff.START_S,
        on_backlog_disk: Callable[[bool, int], None] | None = None,
        judge: Judge | None = None,
    ) -> None:
        self.spool = spool
        self.registry = registry
        self.writer = writer
        self.clock = clock
        self.batch_size = batch_size
        self.writes_in_flight = max(1, writes_in_flight)
        self.poll_s = poll_s
        self.disk_warn_bytes = disk_warn_bytes
        self.backoff_start_s = backoff_start_s
        self.stats = StorageStats()
        self._disk_warned = False
        #: Told (high?, backlog bytes) when the backlog's disk use crosses ``disk_warn_bytes``, either way.
        self.on_backlog_disk = on_backlog_disk
        #: The platform's verdict on a test, stored as its result (storage/schema.py, ``Judge``).
        self.judge = judge
        self._sink: Sink[Any] = sink_for(writer)
        self._districts: dict[str, str] = {}
        #: The pipeline reads, settles and measures in worker threads: one SQLite connection, one user at a time.
        self._spool_use = threading.Lock()
        self._disk_checked_at = float("-inf")

    async def run(self, stop: asyncio.Event) -> None:
        """Drain until ``stop`` is set; then write what has been committed so far, if the store is up."""
        await self._follow(stop)
        with contextlib.suppress(TransientWriteError):
            while await asyncio.to_thread(self.drain_once):
                pass
        log.info("storage.stopped", **self.stats.snapshot())

    async def _follow(self, stop: asyncio.Event) -> None:
        after = await asyncio.to_thread(self._measure)
        pipeline = Pipeline(
            after, prepare=self.prepare, write=self.write, settle=self.settle, in_flight=self.writes_in_flight
        )
        retry = backoff.Backoff(start_s=self.backoff_start_s)
        settled = 0
        try:
            while not stop.is_set():
                idle, failure = await pipeline.step()
                if failure is not None:
                    if not isinstance(failure, TransientWriteError):
                        raise failure
                    if await self._retry_later(failure, retry, stop):
                        return
                    pipeline.write_again()
                    continue
                if pipeline.settled > settled:
                    settled = pipeline.settled
                    retry.reset()
                if idle:
                    await asyncio.to_thread(self._measure)
                    if await _wait(stop, self.poll_s):
                        return
        finally:
            await pipeline.finish()

    async def _retry_later(self, failure: TransientWriteError, retry: backoff.Backoff, stop: asyncio.Event) -> bool:
        """Wait before writing again; True if ``stop`` was set meanwhile."""
        self.stats.retries += 1
        self.stats.last_error = str(failure)
        await asyncio.to_thread(self._measure)  # the backlog grows while the store is away: its alarm, too
        wait = retry.next_delay(at_least_s=failure.retry_after_s or 0.0)
        log.warning(
            "storage.write_retry",
            writer=self.writer.name,
            error=str(failure),
            retry_in_s=wait,
            backlog=self.stats.backlog,
        )
        return await _wait(stop, wait)

    def drain_once(self) -> int:
        """Write one batch after the checkpoint; return how many records it covered (0: nothing to do)."""
        checkpoint = self._measure()
        batch = self.prepare(checkpoint)
        if batch is None:
            return 0
        self.write(batch)
        self.settle(batch)
        return batch.records

    def prepare(self, after_seq: int) -> Batch | None:
        """Read and encode the next batch after ``after_seq``; None when there is nothing new."""
        with self._spool_use:
            records = self.spool.read(after_seq, self.batch_size)
        if not records:
            return None
        batch = Batch(after_seq, records[-1].seq, len(records), [])
        encode, district = self._sink.encode, self._district
        for record in records:
            try:
                batch.items += [(record, item) for item in encode(record, district(record.canteen_id), self.judge)]
            except Exception as exc:  # a record today's schema cannot map must not block the rest
                self._reject(record, f"cannot map to points: {exc}", "", batch.set_aside)
        return batch

    def write(self, batch: Batch) -> None:
        """Write a prepared batch, setting aside what the store refuses for good."""
        self._write(batch.items, batch.set_aside)
        batch.written = True

    def settle(self, batch: Batch) -> None:
        """Advance the checkpoint past a written batch (every batch before it has been settled)."""
        with self._spool_use:
            self.spool.advance(CONSUMER, batch.last_seq)
        self.stats.written_records += batch.records - len(batch.set_aside)  # a set-aside record is not written
        self._measure()

    def _write(self, items: Sequence[tuple[SpoolRecord, Any]], set_aside: set[int]) -> None:
        """Write, isolating what the server refuses for good by halving the batch."""
        if not items:
            return
        try:
            self._sink.write([item for _, item in items])
        except PermanentWriteError as exc:
            if len(items) == 1:
                record, item = items[0]
                self._reject(record, str(exc), self._sink.describe(item), set_aside)
                return
            middle = len(items) // 2
            self._write(items[:middle], set_aside)
            self._write(items[middle:], set_aside)
            return
        self.stats.written_points += len(items)

    def _reject(self, record: SpoolRecord, detail: str, item: str, set_aside: set[int]) -> None:
        """Set a record aside for good (``shian storage rejects replay`` drains it again once fixed)."""
        set_aside.add(record.seq)
        self.stats.rejected += 1
        log.error("storage.rejected", seq=record.seq, device=record.device_id, msg_id=record.msg_id, detail=detail)
        with self._spool_use:
            self.spool.reject_downstream(CONSUMER, record.seq, detail, item, self.clock.now())

    def _district(self, canteen_id: str) -> str:
        district = self._districts.get(canteen_id)
        if district is None:
            canteen = self.registry.canteen(canteen_id)
            district = self._districts[canteen_id] = canteen.district if canteen else "unknown"
        return district

    def _measure(self) -> int:
        """Update the backlog's figures (and its disk alarm) from the checkpoint, which it returns."""
        with self._spool_use:
            return self._measure_spool()

    def _measure_spool(self) -> int:
        checkpoint = self.spool.checkpoint(CONSUMER)
        self.stats.backlog = self.spool.last_seq() - checkpoint
        oldest = self.spool.oldest_after(checkpoint)
        self.stats.oldest_unwritten_age_s = (self.clock.now() - oldest).total_seconds() if oldest else 0.0
        self.stats.spool_bytes = self.spool.disk_bytes()
        if time.monotonic() - self._disk_checked_at < DISK_CHECK_EVERY_S:
            return checkpoint  # summing the backlog's payloads reads it: not on every batch
        self._disk_checked_at = time.monotonic()
        self.stats.backlog_bytes = self.spool.backlog_bytes(checkpoint)
        high = self.stats.backlog_bytes > self.disk_warn_bytes
        if high != self._disk_warned:
            if high:
                log.warning(
                    "storage.backlog_disk_high",
                    backlog_bytes=self.stats.backlog_bytes,
                    threshold_bytes=self.disk_warn_bytes,
                    backlog=self.stats.backlog,
                )
            if self.on_backlog_disk is not None:
                self.on_backlog_disk(high, self.stats.backlog_bytes)
        self._disk_warned = high
        return checkpoint


async def _wait(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep, waking early when ``stop`` is set; True if it is."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
    return stop.is_set()
