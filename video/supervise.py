"""One child process kept running: a relay of a pulled camera, or a simulated camera. When it exits it is
started again after the project's backoff (runtime/backoff.py), which starts over once a run lasted."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Sequence
from pathlib import Path

import structlog

from runtime.backoff import Backoff
from runtime.clock import Clock, SystemClock

log = structlog.get_logger("shian.video")

#: A run this long counts as healthy: the next failure waits the shortest delay again.
HEALTHY_RUN_S = 30.0
STOP_TIMEOUT_S = 5.0


class Supervised:
    """``argv`` run until :meth:`run`'s stop event is set, restarted whenever it ends by itself."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        *,
        backoff: Backoff | None = None,
        clock: Clock | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.backoff = backoff or Backoff()
        self.clock = clock or SystemClock()
        #: Times it was started again after ending by itself.
        self.restarts = 0
        self.env = {**os.environ, **env} if env else None
        self.process: asyncio.subprocess.Process | None = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def run(self, stop: asyncio.Event) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        while not stop.is_set():
            started = self.clock.now()
            with self.log_path.open("ab") as output:
                self.process = await asyncio.create_subprocess_exec(
                    *self.argv,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=output,
                    stderr=output,
                    start_new_session=True,
                    env=self.env,
                )
            ended = asyncio.ensure_future(self.process.wait())
            stopping = asyncio.ensure_future(stop.wait())
            try:
                await asyncio.wait([ended, stopping], return_when=asyncio.FIRST_COMPLETED)
            finally:
                stopping.cancel()
                if not ended.done():
                    await self._end(ended)
            if stop.is_set():
                return
            if (self.clock.now() - started).total_seconds() >= HEALTHY_RUN_S:
                self.backoff.reset()
            delay = self.backoff.next_delay()
            self.restarts += 1
            log.warning("video.process_exited", name=self.name, code=self.process.returncode, retry_in_s=delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)

    async def _end(self, ended: asyncio.Future[int]) -> None:
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            self.process.terminate()
        try:
            await asyncio.wait_for(asyncio.shield(ended), STOP_TIMEOUT_S)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            await ended
        except asyncio.CancelledError:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            raise

    async def kill(self) -> None:
        """End the current run as a crash would (tests: the supervisor must start it again)."""
        if self.running and self.process is not None:
            self.process.kill()
