"""Bulletins recently compiled, by period and scope: a city's month reads millions of points (about 25 s on the
embedded store), and the supervisors who open it one after another should not each wait that long."""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

from console.bulletin.figures import Bulletin
from runtime.clock import Clock


class BulletinCache:
    """Keeps each bulletin for ``ttl`` (alerts handled since then show after it), at most ``size`` of them. Two
    requests for the same bulletin at once compile it once: the second waits for the first."""

    def __init__(self, clock: Clock, *, ttl: dt.timedelta = dt.timedelta(minutes=10), size: int = 32) -> None:
        self.clock, self.ttl, self.size = clock, ttl, size
        self._kept: OrderedDict[Hashable, tuple[dt.datetime, Bulletin]] = OrderedDict()
        self._locks: dict[Hashable, threading.Lock] = {}
        self._guard = threading.Lock()

    def get(self, key: Hashable, compile_: Callable[[], Bulletin]) -> Bulletin:
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            with self._guard:
                kept = self._kept.get(key)
            if kept is not None and self.clock.now() - kept[0] < self.ttl:
                return kept[1]
            bulletin = compile_()
            with self._guard:
                self._kept[key] = (self.clock.now(), bulletin)
                self._kept.move_to_end(key)
                while len(self._kept) > self.size:
                    self._kept.popitem(last=False)
            return bulletin
