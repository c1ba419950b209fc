"""The rules engine on an event loop of its own, in a thread of its own.

In one process with a busy event loop — a city's simulated fleet, or a gateway under a flood — every await of the
rules runner waited its turn behind thousands of other tasks, and the engine fell ever further behind (issue 17).
On its own loop it waits only for its own work; what must happen on the platform's loop (publishing on the
broker connection, the console's live feed, the time-series writer) is handed back there.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any

from rules.alerts import Alert
from rules.notify import Notifier
from rules.runner import RulesRunner

#: How long a notification handed to the platform's loop may take before the rules loop gives up on it (the
#: change stays in the outbox and is tried again): never wait forever on a loop that is shutting down.
HANDOVER_TIMEOUT_S = 30.0


class OnLoop:
    """A notifier of the platform's loop, called from the rules loop: each call runs on the platform's loop."""

    def __init__(self, notifier: Notifier, loop: asyncio.AbstractEventLoop) -> None:
        self.notifier = notifier
        self.loop = loop

    async def _there(self, call: Coroutine[Any, Any, None]) -> None:
        if asyncio.get_running_loop() is self.loop:
            await call  # already there (the last step at shutdown runs on the platform's loop)
            return
        if self.loop.is_closed() or not self.loop.is_running():
            call.close()
            raise ConnectionError("the platform's loop has stopped")  # the change stays in the outbox
        future = asyncio.run_coroutine_threadsafe(call, self.loop)
        try:
            await asyncio.wait_for(asyncio.wrap_future(future), HANDOVER_TIMEOUT_S)
        except TimeoutError:
            future.cancel()
            raise

    async def notify(self, alert: Alert) -> None:
        await self._there(self.notifier.notify(alert))

    async def close(self) -> None:
        await self._there(self.notifier.close())

    def __getattr__(self, name: str) -> Any:
        return getattr(self.notifier, name)  # e.g. the webhooks' delivery loop, started on the platform's loop


class RulesThread:
    """Runs ``runner`` until :meth:`stop`; wake it with :meth:`wake` from any thread."""

    def __init__(self, runner: RulesRunner) -> None:
        self.runner = runner
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started = concurrent.futures.Future[None]()
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="shian-rules")

    def adopt_notifiers(self, loop: asyncio.AbstractEventLoop) -> None:
        """Make every notifier run on ``loop`` (the platform's), whichever loop calls it."""
        self.runner.notifiers = [OnLoop(n, loop) for n in self.runner.notifiers]

    async def run(self) -> None:
        """Until stopped: the runner in the thread; raises what the runner raised."""
        await asyncio.get_running_loop().run_in_executor(self._executor, self._main)
        self._executor.shutdown(wait=False)

    def _main(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        self.runner.wake = asyncio.Event()
        self._started.set_result(None)
        await self.runner.run(self._stop)

    def wake(self) -> None:
        self._call(self.runner.wake.set)

    def stop(self) -> None:
        if self._stop is not None:
            self._call(self._stop.set)

    def _call(self, callback: Callable[[], None]) -> None:
        loop = self._loop
        if loop is None or not self._started.done():
            return
        with contextlib.suppress(RuntimeError):  # the thread's loop has finished: nothing left to tell
            loop.call_soon_threadsafe(callback)
