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
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import structlog

from devices.registry import Registry
from runtime import backoff
from runtime.clock import Clock
from spool import Spool, SpoolRecord
from storage.line_protocol import to_line
from storage.schema import Judge, StoragePoint, points_for
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


class StorageDrain:
    """Follows the spool from the ``storage`` checkpoint into a :class:`~storage.writers.PointWriter`."""

    def __init__(
        self,
        spool: Spool,
        registry: Registry,
        writer: PointWriter,
        clock: Clock,
        *,
        batch_size: int = 5000,
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
        self.poll_s = poll_s
        self.disk_warn_bytes = disk_warn_bytes
        self.backoff_start_s = backoff_start_s
        self.stats = StorageStats()
        self._disk_warned = False
        #: Told (high?, backlog bytes) when the backlog's disk use crosses ``disk_warn_bytes``, either way.
        self.on_backlog_disk = on_backlog_disk
        #: The platform's verdict on a test, stored as its result (storage/schema.py, ``Judge``).
        self.judge = judge
        self._disk_checked_at = float("-inf")

    async def run(self, stop: asyncio.Event) -> None:
        """Drain until ``stop`` is set; then write what has been committed so far, if the store is up."""
        await self._follow(stop)
        with contextlib.suppress(TransientWriteError):
            while await asyncio.to_thread(self.drain_once):
                pass
        log.info("storage.stopped", **self.stats.snapshot())

    async def _follow(self, stop: asyncio.Event) -> None:
        retry = backoff.Backoff(start_s=self.backoff_start_s)
        while True:
            try:
                written = await asyncio.to_thread(self.drain_once)
                retry.reset()
            except TransientWriteError as exc:
                self.stats.retries += 1
                self.stats.last_error = str(exc)
                wait = retry.next_delay(at_least_s=exc.retry_after_s or 0.0)
                log.warning(
                    "storage.write_retry",
                    writer=self.writer.name,
                    error=str(exc),
                    retry_in_s=wait,
                    backlog=self.stats.backlog,
                )
                if await _wait(stop, wait):
                    return
                continue
            if written == 0 and await _wait(stop, self.poll_s):
                return

    def drain_once(self) -> int:
        """Write one batch after the checkpoint; return how many records it covered (0: nothing to do)."""
        checkpoint = self.spool.checkpoint(CONSUMER)
        self._measure(checkpoint)
        records = self.spool.read(checkpoint, self.batch_size)
        if not records:
            return 0
        points: list[tuple[SpoolRecord, StoragePoint]] = []
        set_aside: set[int] = set()
        for record in records:
            try:
                points += [(record, p) for p in points_for(record, self._district(record.canteen_id), self.judge)]
            except Exception as exc:  # a record today's schema cannot map must not block the rest
                self._reject(record, f"cannot map to points: {exc}", "", set_aside)
        self._write(points, set_aside)
        self.spool.advance(CONSUMER, records[-1].seq)
        self.stats.written_records += len(records) - len(set_aside)  # a set-aside record is not written
        self._measure(records[-1].seq)
        return len(records)

    def _write(self, points: Sequence[tuple[SpoolRecord, StoragePoint]], set_aside: set[int]) -> None:
        """Write, isolating what the server refuses for good by halving the batch."""
        if not points:
            return
        try:
            self.writer.write([p for _, p in points])
        except PermanentWriteError as exc:
            if len(points) == 1:
                record, point = points[0]
                self._reject(record, str(exc), to_line(point), set_aside)
                return
            middle = len(points) // 2
            self._write(points[:middle], set_aside)
            self._write(points[middle:], set_aside)
            return
        self.stats.written_points += len(points)

    def _reject(self, record: SpoolRecord, detail: str, item: str, set_aside: set[int]) -> None:
        """Set a record aside for good (``shian storage rejects replay`` drains it again once fixed)."""
        set_aside.add(record.seq)
        self.stats.rejected += 1
        log.error("storage.rejected", seq=record.seq, device=record.device_id, msg_id=record.msg_id, detail=detail)
        self.spool.reject_downstream(CONSUMER, record.seq, detail, item, self.clock.now())

    def _district(self, canteen_id: str) -> str:
        canteen = self.registry.canteen(canteen_id)
        return canteen.district if canteen else "unknown"

    def _measure(self, checkpoint: int) -> None:
        self.stats.backlog = self.spool.last_seq() - checkpoint
        oldest = self.spool.oldest_after(checkpoint)
        self.stats.oldest_unwritten_age_s = (self.clock.now() - oldest).total_seconds() if oldest else 0.0
        self.stats.spool_bytes = self.spool.disk_bytes()
        if time.monotonic() - self._disk_checked_at < DISK_CHECK_EVERY_S:
            return  # summing the backlog's payloads reads it: not on every batch
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


async def _wait(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep, waking early when ``stop`` is set; True if it is."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
    return stop.is_set()
