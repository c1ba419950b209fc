"""What the platform knows of each camera's picture, from the media server's statistics: publishing or not,
since when, at what frame rate and bitrate. Written by the monitor on the event loop, read by the rules thread
and the console (each update replaces one immutable entry, so a reader never sees half of one)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from video.stat import StreamStat


@dataclass(frozen=True, slots=True)
class Picture:
    publishing: bool
    #: When it last started or stopped publishing, as the platform saw it.
    since: dt.datetime
    checked_at: dt.datetime
    fps: float | None = None
    bitrate_kbps: float = 0.0
    width: int | None = None
    height: int | None = None


class PictureBoard:
    """camera id -> :class:`Picture`, for the cameras the registry expects a picture from."""

    def __init__(self, cameras: Iterable[str]) -> None:
        self.cameras = frozenset(cameras)
        self._pictures: dict[str, Picture] = {}
        #: Whether the last reading of the media server's statistics failed (its pictures are then unknown).
        self.unreachable = False

    def get(self, camera: str) -> Picture | None:
        return self._pictures.get(camera)

    def state(self, camera: str) -> tuple[bool, dt.datetime] | None:
        """(publishing, since) for the rules; None when the camera is not watched or nothing was read yet."""
        picture = self._pictures.get(camera)
        return (picture.publishing, picture.since) if picture else None

    def update(self, streams: dict[str, StreamStat], at: dt.datetime) -> list[tuple[str, bool]]:
        """Take one reading of the statistics; the cameras whose picture started (True) or stopped (False) since
        the last one."""
        self.unreachable = False
        changed = []
        for camera in self.cameras:
            stat = streams.get(camera)
            publishing = stat is not None and stat.publishing
            before = self._pictures.get(camera)
            since = before.since if before is not None and before.publishing == publishing else at
            if before is not None and before.publishing != publishing:
                changed.append((camera, publishing))
            self._pictures[camera] = Picture(
                publishing=publishing,
                since=since,
                checked_at=at,
                fps=stat.fps if stat and publishing else None,
                bitrate_kbps=stat.bitrate_kbps if stat and publishing else 0.0,
                width=stat.width if stat else None,
                height=stat.height if stat else None,
            )
        return changed

    @property
    def publishing(self) -> int:
        return sum(1 for p in self._pictures.values() if p.publishing)
