"""Capped exponential backoff: the one retry schedule of every loop that reconnects or retries.

A small object rather than a retry decorator (tenacity, stamina): the loops that use it are not "call this
until it succeeds" but "serve until the link drops, then wait and serve again", and a link that came up must
start the schedule over. The object only says how long to wait; the caller sleeps (or waits on its stop event),
so the schedule is tested without sleeping.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: The first wait, and the longest: the defaults of every loop unless it says otherwise.
START_S = 0.5
CAP_S = 30.0


@dataclass
class Backoff:
    """``start_s``, then twice as long after each further failure, never more than ``cap_s``."""

    start_s: float = START_S
    cap_s: float = CAP_S
    factor: float = 2.0
    #: Failures since the last :meth:`reset`.
    failures: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if not 0 < self.start_s <= self.cap_s:
            raise ValueError(f"backoff needs 0 < start_s <= cap_s, not {self.start_s} and {self.cap_s}")
        if self.factor < 1:
            raise ValueError(f"backoff factor must be at least 1, not {self.factor}")

    def next_delay(self, at_least_s: float = 0.0) -> float:
        """Count a failure and return how long to wait before the next try; ``at_least_s`` is a wait the other
        side asked for (an HTTP Retry-After), honoured up to the cap."""
        delay = min(self.start_s * self.factor ** min(self.failures, 64), self.cap_s)  # no float overflow
        self.failures += 1
        return min(max(delay, at_least_s), self.cap_s)

    def reset(self) -> None:
        """The link came up or the write went through: the next failure waits ``start_s`` again."""
        self.failures = 0
