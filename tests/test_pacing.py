"""The simulated clock and its pacer, on a fake monotonic clock: held while the fleet connects, never jumping when
its speed changes, slowed while the fleet runs late and brought back up to the speed asked for."""

from __future__ import annotations

import datetime as dt

import pytest

from simulators.pacer import Pacer
from simulators.simclock import SimClock

START = dt.datetime(2026, 11, 25, 6, 30, tzinfo=dt.timezone(dt.timedelta(hours=8)))


class Monotonic:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_a_held_clock_stands_still_until_released_then_runs_at_its_speed() -> None:
    real = Monotonic()
    clock = SimClock(START, 60, held=True, monotonic=real)
    real.t += 30  # thirty real seconds of connecting
    assert clock.now() == START
    clock.release()
    real.t += 2
    assert clock.now() == START + dt.timedelta(minutes=2)


def test_changing_speed_neither_jumps_nor_loses_time() -> None:
    real = Monotonic()
    clock = SimClock(START, 60, monotonic=real)
    real.t += 10
    before = clock.now()
    clock.set_speed(6)
    assert clock.now() == before
    real.t += 10
    assert clock.now() == before + dt.timedelta(seconds=60)
    assert clock.real_seconds(dt.timedelta(seconds=60)) == 10


def test_a_clock_refuses_a_naive_start_and_a_standstill_speed() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        SimClock(START.replace(tzinfo=None))
    with pytest.raises(ValueError, match="positive"):
        SimClock(START).set_speed(0)


def test_the_pacer_slows_while_the_late_tail_is_long_and_recovers_to_the_target() -> None:
    clock = SimClock(START, 60, monotonic=Monotonic())
    pacer = Pacer(clock, target=60)
    for _ in range(90):
        pacer.observe(0.0)
    for _ in range(10):
        pacer.observe(0.8)  # a tenth of the ticks most of an interval late: the 95th percentile is late
    assert pacer.adjust() == pytest.approx(42)
    assert clock.speed == pytest.approx(42)
    for _ in range(100):
        pacer.observe(0.15)  # between the bounds: hold the pace
    assert pacer.adjust() == pytest.approx(42)
    speeds = []
    for _ in range(10):
        pacer.observe(0.01)
        speeds.append(pacer.adjust())
    assert speeds[0] == pytest.approx(46.2)
    assert speeds[-1] == 60  # back to the speed asked for, never above it
    assert pacer.adjust() == 60  # a second with nothing observed changes nothing


def test_the_pacer_never_goes_below_real_time_nor_below_a_slow_target() -> None:
    clock = SimClock(START, 2, monotonic=Monotonic())
    pacer = Pacer(clock, target=2)
    for _ in range(5):
        pacer.observe(3.0)
        pacer.adjust()
    assert clock.speed == 1.0
    slow = SimClock(START, 0.5, monotonic=Monotonic())
    late = Pacer(slow, target=0.5)
    late.observe(3.0)
    assert late.adjust() == 0.5


def test_a_run_starts_slow_and_speeds_up_while_the_fleet_keeps_up() -> None:
    clock = SimClock(START, 60, held=True, monotonic=Monotonic())
    pacer = Pacer(clock, target=60)
    pacer.observe(5.0)  # late while connecting: forgotten
    pacer.begin()
    assert clock.speed == 4.0
    speeds = []
    for _ in range(40):
        pacer.observe(0.0)
        speeds.append(pacer.adjust())
    assert speeds[0] == pytest.approx(4.4)
    assert speeds == sorted(speeds)
    assert speeds[-1] == 60


def test_the_pacer_slows_while_the_platform_falls_behind_even_when_the_fleet_is_on_time() -> None:
    clock = SimClock(START, 60, monotonic=Monotonic())
    pacer = Pacer(clock, target=60)
    pacer.observe(0.0)  # every device on time (a fleet in its own process)
    assert pacer.adjust(behind_s=3.0) == pytest.approx(51)  # but three seconds of messages unanswered
    pacer.observe(0.0)
    assert pacer.adjust(behind_s=3.0) == pytest.approx(43.35)  # still behind: slower again, the ceiling kept
    pacer.observe(0.0)
    assert pacer.adjust(behind_s=1.0) == pytest.approx(43.35)  # catching up: hold the pace
    pacer.observe(0.0)
    assert pacer.adjust(behind_s=0.1) == pytest.approx(43.35 * 1.1)  # caught up: speeding up again
    speeds = []
    for _ in range(8):
        pacer.observe(0.0)
        speeds.append(pacer.adjust(behind_s=0.1))
    # up to just below the 60 it fell behind at (54, creeping up by a percent a second), not back into it at 10 %
    assert speeds == sorted(speeds)
    assert all(speed <= 54 * 1.01 ** (n + 3) + 1e-9 for n, speed in enumerate(speeds))
    assert speeds[-1] / speeds[-2] == pytest.approx(1.01)
    assert speeds[-1] < 60


def test_a_clock_in_another_process_that_follows_the_state_tells_the_same_time() -> None:
    real = Monotonic()
    pacing = SimClock(START, 60, held=True, monotonic=real)
    following = SimClock(START + dt.timedelta(days=3), 1, monotonic=real)
    following.follow(pacing.state)
    real.t += 5
    assert following.now() == pacing.now() == START  # held in both
    pacing.release()
    pacing.set_speed(30)
    following.follow(pacing.state)
    real.t += 2
    assert following.now() == pacing.now() == START + dt.timedelta(minutes=1)
    assert following.speed == 30
