"""Simulated time that runs faster than the wall clock, shared by the simulated fleet and the platform."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import NamedTuple


class ClockState(NamedTuple):
    """One stretch of simulated time at one speed: swapped whole, so a reader on another thread (the rules
    engine's) never sees half a change, and sent whole to a fleet's other processes (the monotonic clock is the
    machine's, so the same state gives the same time there)."""

    sim: dt.datetime
    real: float
    speed: float
    held: bool


class SimClock:
    """``now()`` starts at ``start`` and advances ``speed`` times as fast as real time (60: an hour a minute).

    A clock made ``held`` stands still at ``start`` until :meth:`release` (a fleet connecting is not part of the
    simulated morning); :meth:`set_speed` changes the pace without a jump, so a simulation that cannot keep up
    slows its own time instead of falling behind it."""

    def __init__(
        self,
        start: dt.datetime,
        speed: float = 1.0,
        *,
        held: bool = False,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if start.tzinfo is None:
            raise ValueError("SimClock needs a timezone-aware start")
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.start = start
        self._monotonic = monotonic
        self._run = ClockState(start, monotonic(), speed, held)

    @property
    def speed(self) -> float:
        return self._run.speed

    @property
    def held(self) -> bool:
        return self._run.held

    def now(self) -> dt.datetime:
        run = self._run
        if run.held:
            return run.sim
        return run.sim + dt.timedelta(seconds=(self._monotonic() - run.real) * run.speed)

    def release(self) -> None:
        """Start a held clock from where it stands."""
        if self._run.held:
            self._run = self._run._replace(real=self._monotonic(), held=False)

    def set_speed(self, speed: float) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        run, real = self._run, self._monotonic()
        sim = run.sim if run.held else run.sim + dt.timedelta(seconds=(real - run.real) * run.speed)
        self._run = ClockState(sim, real, speed, run.held)

    @property
    def state(self) -> ClockState:
        return self._run

    def follow(self, state: ClockState) -> None:
        """Take another clock's state (the fleet process's clock follows the platform's)."""
        self._run = state

    def real_seconds(self, simulated: dt.timedelta) -> float:
        """How long a simulated span takes in real time at the current pace."""
        return simulated.total_seconds() / self.speed
