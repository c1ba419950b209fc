"""Simulated time that runs faster than the wall clock, shared by the simulated fleet and the platform."""

from __future__ import annotations

import datetime as dt
import time


class SimClock:
    """``now()`` starts at ``start`` and advances ``speed`` times as fast as real time (60: an hour a minute)."""

    def __init__(self, start: dt.datetime, speed: float = 1.0) -> None:
        if start.tzinfo is None:
            raise ValueError("SimClock needs a timezone-aware start")
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.start = start
        self.speed = speed
        self._t0 = time.monotonic()

    def now(self) -> dt.datetime:
        return self.start + dt.timedelta(seconds=(time.monotonic() - self._t0) * self.speed)

    def real_seconds(self, simulated: dt.timedelta) -> float:
        """How long a simulated span takes in real time."""
        return simulated.total_seconds() / self.speed
