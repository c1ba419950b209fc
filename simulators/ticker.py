"""One schedule for a fleet's devices: a heap of due times in simulated time, woken by one timer.

Every device sleeping on its own put about half a million timer handles a minute through the event loop's heap
at 60x (a profile of the reference city: more time in the heap's comparisons than in the devices' work). Here a
device that is online joins the schedule, is stepped when its tick is due, and leaves it when its connection
breaks; the ticker sleeps once until the earliest tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import heapq
import itertools
from collections.abc import Callable
from typing import Protocol

from simulators.simclock import SimClock

#: Steps taken before the ticker lets the loop read (receipts, the platform beside it): a whole fleet's
#: first ticks come at once.
STEPS_PER_TURN = 200


class Ticking(Protocol):
    """A device the ticker steps: ``interval`` apart, on a fixed schedule of simulated time."""

    @property
    def interval(self) -> dt.timedelta: ...

    def step(self, now: dt.datetime) -> None: ...


class Ticker:
    """Steps every joined device once per its interval. A slow step does not push the next one later (a drifting
    heartbeat is one the offline rules would, rightly, call late); a tick missed altogether is skipped, not sent
    in a burst. How late each device woke, as a share of its interval, goes to ``observe`` (the pacer's)."""

    def __init__(self, clock: SimClock, observe: Callable[[float], None], *, max_sleep_s: float = 1.0) -> None:
        self.clock, self.observe, self.max_sleep_s = clock, observe, max_sleep_s
        self._heap: list[tuple[dt.datetime, int, Ticking]] = []
        self._joined: dict[Ticking, int] = {}  # device -> the token of its live entry (older entries are stale)
        self._tokens = itertools.count()
        self._earlier = asyncio.Event()  # a device joined with a tick before the one the ticker sleeps for

    def __len__(self) -> int:
        return len(self._joined)

    def join(self, device: Ticking, first_due: dt.datetime) -> None:
        token = next(self._tokens)
        self._joined[device] = token
        if not self._heap or first_due < self._heap[0][0]:
            self._earlier.set()
        heapq.heappush(self._heap, (first_due, token, device))

    def leave(self, device: Ticking) -> None:
        """No more steps for ``device`` (its entry in the heap is dropped when it comes up)."""
        self._joined.pop(device, None)

    async def run(self, stop: asyncio.Event) -> None:
        stopping = asyncio.ensure_future(stop.wait())
        stopping.add_done_callback(lambda _: self._earlier.set())  # a stop ends the sleep at once
        try:
            while not stop.is_set():
                await self._sleep()
                await self._step_due()
        finally:
            stopping.cancel()

    async def _sleep(self) -> None:
        """Until the earliest tick, re-reading the pace (the pacer may change it) every ``max_sleep_s`` at most."""
        left = (self._heap[0][0] - self.clock.now()) if self._heap else dt.timedelta(days=1)
        if left <= dt.timedelta(0):
            return
        self._earlier.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                self._earlier.wait(), min(max(self.clock.real_seconds(left), 0.005), self.max_sleep_s)
            )

    async def _step_due(self) -> None:
        heap, joined, observe = self._heap, self._joined, self.observe
        now, steps = self.clock.now(), 0
        while heap and heap[0][0] <= now:
            due, token, device = heapq.heappop(heap)
            if joined.get(device) != token:
                continue  # left (or left and joined again) since this entry was made
            interval = device.interval
            observe((now - due) / interval)
            device.step(now)
            heapq.heappush(heap, (max(due + interval, now), token, device))
            steps += 1
            if steps % STEPS_PER_TURN == 0:
                await asyncio.sleep(0)
                now = self.clock.now()
