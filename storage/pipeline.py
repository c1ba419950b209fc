"""The drain's pipeline: the next batch read and encoded while earlier ones are written, settled in order.

A batch is read once. Writes may land in any order (InfluxDB keeps a point by series and time, so a batch
written again, or after a later one, changes nothing), but the checkpoint advances in order: past a batch only
when it and every batch before it have landed. A failed write is tried again from memory, with every later
batch that failed too; the ones that landed meanwhile stay landed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar


class Written(Protocol):
    last_seq: int
    written: bool


B = TypeVar("B", bound=Written)


class Pipeline(Generic[B]):
    """Reads ahead with ``prepare(after_seq)`` (None: nothing new), writes with ``write``, settles with ``settle``,
    each in a worker thread; at most ``in_flight`` batches written at once."""

    def __init__(
        self,
        after_seq: int,
        *,
        prepare: Callable[[int], B | None],
        write: Callable[[B], None],
        settle: Callable[[B], None],
        in_flight: int,
    ) -> None:
        self._after = after_seq
        self._prepare, self._write, self._settle = prepare, write, settle
        self._in_flight = max(1, in_flight)
        self._writing: deque[tuple[B, asyncio.Future[None]]] = deque()
        self._reading: asyncio.Future[B | None] | None = None
        #: The last read found nothing new: no more reads until the caller has waited (``idle``).
        self._caught_up = False
        #: Batches settled so far.
        self.settled = 0

    async def step(self) -> tuple[bool, BaseException | None]:
        """Read ahead, start writing what was read, settle what landed, in order.

        Returns (idle: caught up and nothing being written, so the caller waits before the next step; the oldest
        write's failure, if it failed: the caller waits, then calls :meth:`write_again`).
        """
        if self._caught_up and not self._writing:
            self._caught_up = False
            return True, None
        if self._reading is None and not self._caught_up and len(self._writing) < self._in_flight:
            self._reading = asyncio.ensure_future(asyncio.to_thread(self._prepare, self._after))
        waits: set[asyncio.Future[Any]] = {f for f in (self._reading, self._oldest()) if f is not None}
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        if self._reading is not None and self._reading.done():
            batch, self._reading = self._reading.result(), None
            if batch is None:
                self._caught_up = True
            else:
                self._after = batch.last_seq
                self._writing.append((batch, self._start(batch)))
        while (oldest := self._oldest()) is not None and oldest.done():
            if (failure := oldest.exception()) is not None:
                return False, failure
            batch, _ = self._writing.popleft()
            await asyncio.to_thread(self._settle, batch)
            self.settled += 1
        return False, None

    def write_again(self) -> None:
        """Write again every batch whose write failed, oldest first."""
        self._writing = deque(
            (batch, wrote if batch.written or not wrote.done() else self._start(batch))
            for batch, wrote in self._writing
        )

    async def finish(self) -> None:
        """Let the reads and writes in flight end (a worker thread cannot be cancelled); nothing more is settled,
        so what they wrote is written again from the checkpoint, to the same points."""
        futures: list[asyncio.Future[Any]] = [w for _, w in self._writing]
        for future in [*futures, *([self._reading] if self._reading else [])]:
            with contextlib.suppress(Exception):
                await future
        self._writing.clear()
        self._reading = None

    def _oldest(self) -> asyncio.Future[None] | None:
        return self._writing[0][1] if self._writing else None

    def _start(self, batch: B) -> asyncio.Future[None]:
        return asyncio.ensure_future(asyncio.to_thread(self._write, batch))
