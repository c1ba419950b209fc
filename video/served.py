"""Bytes the media server served to players, per camera, read from its own access log (one short line per
playlist or segment) as it grows; moved aside and reopened (SIGUSR1) once it is large."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

#: Past this size the log is moved aside and nginx told to reopen it.
ROTATE_BYTES = 16 * 2**20


class ServedBytes:
    def __init__(self, log: Path, reopen: Callable[[], None]) -> None:
        self.log = log
        self.reopen = reopen
        self._offset = 0
        self.bytes_out: Counter[str] = Counter()
        self.requests: Counter[str] = Counter()

    def read(self) -> None:
        """Count what was appended since the last call."""
        try:
            with self.log.open("rb") as handle:
                handle.seek(self._offset)
                chunk = handle.read()
        except FileNotFoundError:
            return
        complete = chunk[: chunk.rfind(b"\n") + 1]  # a line being written waits for the next read
        self._offset += len(complete)
        for line in complete.splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[1].isdigit():
                camera = parts[0].decode(errors="replace")
                self.bytes_out[camera] += int(parts[1])
                self.requests[camera] += 1
        if self._offset >= ROTATE_BYTES:
            self.log.replace(self.log.with_suffix(".old"))
            self._offset = 0
            self.reopen()
