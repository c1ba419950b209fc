"""Keeping a simulation honest: when the fleet cannot keep its devices' schedules at the asked speed, the
simulated clock slows down instead of the devices falling behind it.

A device late on its schedule looks, to the platform, exactly like a device going silent: at 60x a camera's
30-second heartbeat is half a real second, and a machine busy for a second and a half would make the rules
engine call the whole city offline. So each device reports how late it woke, as a share of its interval; the
pacer reads those once a second and eases the speed down while the late tail is long, back up towards the
speed asked for while it is short. A run starts slow and speeds up, as a fleet's first ticks all come at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from simulators.simclock import SimClock


@dataclass
class Pacer:
    clock: SimClock
    target: float
    #: Slow down while the 95th percentile of lateness exceeds this share of an interval (the offline rules
    #: allow several intervals; a quarter keeps far from them) ...
    slow_above: float = 0.25
    #: ... and speed up again while it is below this one.
    fast_below: float = 0.1
    slower: float = 0.7
    faster: float = 1.1
    #: Where a run starts (then it speeds up by ``faster`` a second while the fleet keeps up): a whole fleet's
    #: first ticks come at once, and at full speed they would be late before anything is measured.
    initial: float = 4.0
    #: Slow down, too, while the platform is more than this many seconds of messages behind the fleet (sent,
    #: not yet answered by a receipt): a fleet in processes of its own keeps its schedule at any speed, and
    #: would bury the platform in a backlog (docs/simulators.md).
    behind_above_s: float = 2.0
    slower_when_behind: float = 0.85
    #: Once the platform fell behind at some speed, speeding up again stops just below it (a ceiling that then
    #: creeps up by a percent a second): otherwise the pace saws between the platform's limit and far below it.
    ceiling_below: float = 0.9
    ceiling_creep: float = 1.01
    ceiling: float | None = None
    #: Never slower than real time: below it the simulation would no longer be a simulation of the fleet.
    floor: float = 1.0
    lateness: list[float] = field(default_factory=list)

    def begin(self) -> None:
        """Start slow: call before the clock is released."""
        self.clock.set_speed(min(self.target, self.initial))
        self.lateness.clear()

    def observe(self, late_share: float) -> None:
        """A device woke ``late_share`` of its interval after it was due."""
        self.lateness.append(late_share)

    def adjust(self, behind_s: float = 0.0) -> float:
        """Set the clock's speed from the lateness seen since the last call and how far behind the platform is
        (``behind_s``: seconds of messages without a receipt yet); returns the new speed."""
        seen, self.lateness = sorted(self.lateness), []
        speed = self.clock.speed
        if seen:
            p95 = seen[min(len(seen) - 1, int(len(seen) * 0.95))]
            if p95 > self.slow_above:
                speed = max(min(self.floor, self.target), speed * self.slower)
            elif behind_s > self.behind_above_s:  # gentler: the backlog answers a change a second later
                if self.ceiling is None or speed > self.ceiling:  # met the limit from below: remember it once
                    self.ceiling = speed * self.ceiling_below
                speed = max(min(self.floor, self.target), speed * self.slower_when_behind)
            elif p95 < self.fast_below and behind_s < self.behind_above_s / 4:
                speed = min(self.target, self.ceiling or self.target, speed * self.faster)
        if self.ceiling is not None and behind_s <= self.behind_above_s:
            self.ceiling *= self.ceiling_creep
        if speed != self.clock.speed:
            self.clock.set_speed(speed)
        return speed
