"""The fleet's one schedule (simulators/ticker.py), on a fast simulated clock: each joined device is stepped
once per interval on a fixed schedule, a device that left is not stepped again, and lateness reaches the
pacer."""

from __future__ import annotations

import asyncio
import datetime as dt

from simulators.simclock import SimClock
from simulators.ticker import Ticker
from tests.helpers import eventually

START = dt.datetime(2026, 11, 25, 6, 30, tzinfo=dt.timezone(dt.timedelta(hours=8)))


class Device:
    def __init__(self, interval_s: float) -> None:
        self.interval = dt.timedelta(seconds=interval_s)
        self.steps: list[dt.datetime] = []

    def step(self, now: dt.datetime) -> None:
        self.steps.append(now)


async def test_joined_devices_tick_once_per_interval_and_a_device_that_left_stops() -> None:
    clock = SimClock(START, 600)  # a simulated minute in a tenth of a real second
    lateness: list[float] = []
    ticker = Ticker(clock, lateness.append)
    camera, cabinet, gone = Device(30), Device(60), Device(30)
    for device in (camera, cabinet, gone):
        ticker.join(device, clock.now())
    stop = asyncio.Event()
    running = asyncio.create_task(ticker.run(stop))
    try:
        await eventually(lambda: len(gone.steps) >= 2, timeout=30, what="the third device ticking")
        ticker.leave(gone)
        left_at = len(gone.steps)
        await eventually(lambda: len(cabinet.steps) >= 6, timeout=30, what="six cabinet ticks")
    finally:
        stop.set()
        await asyncio.wait_for(running, 5)
    assert len(gone.steps) == left_at  # not stepped once it left
    assert len(ticker) == 2
    # the camera ticks twice as often as the cabinet, each on its own fixed schedule
    assert abs(len(camera.steps) - 2 * len(cabinet.steps)) <= 2
    gaps = [(b - a).total_seconds() for a, b in zip(camera.steps, camera.steps[1:], strict=False)]
    assert all(gap >= 29 for gap in gaps)  # never early (a late tick is skipped, not sent in a burst)
    assert len(lateness) == len(camera.steps) + len(cabinet.steps) + len(gone.steps)
    assert all(share >= 0 for share in lateness)


async def test_a_device_joining_with_an_earlier_tick_wakes_a_sleeping_ticker() -> None:
    clock = SimClock(START, 1)  # real time: the ticker would sleep its whole minute for the later tick
    ticker = Ticker(clock, lambda share: None, max_sleep_s=60)
    later, sooner = Device(60), Device(60)
    ticker.join(later, clock.now() + dt.timedelta(minutes=1))
    stop = asyncio.Event()
    running = asyncio.create_task(ticker.run(stop))
    try:
        await asyncio.sleep(0)  # the ticker is asleep
        ticker.join(sooner, clock.now() + dt.timedelta(milliseconds=50))
        await eventually(lambda: bool(sooner.steps), timeout=20, what="the sooner device stepped")
    finally:
        stop.set()
        await asyncio.wait_for(running, 5)
    assert later.steps == []
