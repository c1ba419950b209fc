"""Who is watching: a viewer is a player (one page's video element) that fetched a playlist or a segment
lately. The media server asks the console about every viewer at least every few seconds (its answers are kept
for AUTH_CACHE_S), so a viewer not heard for IDLE_S has gone. New viewers beyond the limits are refused, with
words the page shows, rather than let in to stall every player of the stream."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field

from runtime.clock import Clock

IDLE_S = 15.0


@dataclass
class ViewerBook:
    clock: Clock
    per_stream: int
    total: int
    idle_s: float = IDLE_S
    #: camera -> viewer -> when last heard (POSIX seconds)
    _seen: dict[str, dict[str, float]] = field(default_factory=dict)
    _count: int = 0
    _expired_at: float = 0.0
    #: new viewers turned away because a limit was reached, per camera
    refused: Counter[str] = field(default_factory=Counter)
    #: The console answers from its worker threads: one book, one writer at a time.
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _expire(self, now: float) -> None:
        if now - self._expired_at < 1.0:
            return  # once a second is enough: an auth call must not walk every viewer
        self._expired_at = now
        for camera, viewers in list(self._seen.items()):
            for viewer in [v for v, at in viewers.items() if now - at > self.idle_s]:
                del viewers[viewer]
                self._count -= 1
            if not viewers:
                del self._seen[camera]

    def admit(self, camera: str, viewer: str) -> bool:
        """Whether ``viewer`` may watch ``camera`` now: a viewer already watching always may; a new one while both
        the stream's and the total limit have room."""
        now = self.clock.now().timestamp()
        with self._lock:
            self._expire(now)
            viewers = self._seen.setdefault(camera, {})
            if viewer not in viewers:
                if self._count >= self.total or len(viewers) >= self.per_stream:
                    self.refused[camera] += 1
                    return False
                self._count += 1
            viewers[viewer] = now
            return True

    def full(self, camera: str) -> bool:
        """Whether a new viewer of ``camera`` would be refused now."""
        with self._lock:
            self._expire(self.clock.now().timestamp())
            return self._count >= self.total or self.watching(camera) >= self.per_stream

    def watching(self, camera: str) -> int:
        return len(self._seen.get(camera, ()))

    @property
    def total_watching(self) -> int:
        return self._count

    def by_camera(self) -> dict[str, int]:
        with self._lock:
            self._expire(self.clock.now().timestamp())
            return {camera: len(viewers) for camera, viewers in self._seen.items() if viewers}
