"""The rules engine on its own loop in its own thread: it keeps applying records while the platform's loop is
busy, and every notification still runs on the platform's loop (where the broker connection and the console's
feed live)."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time
from pathlib import Path

from devices.topics import Channel, DeviceKind
from rules.alerts import Alert
from rules.runner import RulesRunner
from spool import Spool
from tests.helpers import eventually
from tests.rules_helpers import MORNING, Harness
from tests.storage_helpers import new_record
from wiring.rules_thread import RulesThread


class LoopRecorder:
    """A notifier that notes on which thread it ran."""

    def __init__(self) -> None:
        self.threads: set[int] = set()
        self.alerts: list[Alert] = []

    async def notify(self, alert: Alert) -> None:
        self.threads.add(threading.get_ident())
        self.alerts.append(alert)

    async def close(self) -> None:
        pass


async def test_the_engine_keeps_up_on_its_own_loop_and_notifies_on_the_platforms(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    spool = Spool(tmp_path / "spool.sqlite")
    det = h.factories["det1"]
    failed = det.test_result(MORNING, fail_rate=1.0)
    records = [new_record(failed, DeviceKind.DETECTOR, Channel.EVENT, canteen="c1", device="det1")]
    records += [
        new_record(
            det.detector_heartbeat(MORNING + dt.timedelta(seconds=n)),
            DeviceKind.DETECTOR,
            Channel.TELEMETRY,
            canteen="c1",
            device="det1",
        )
        for n in range(3000)
    ]
    spool.commit(records)
    recorder = LoopRecorder()
    # small steps: on a busy shared loop each would wait for the loop several times (31 steps, 3 hops each)
    runner = RulesRunner(h.engine, Spool(tmp_path / "spool.sqlite"), [recorder], batch=100, catch_up_batch=100)
    rules = RulesThread(runner)
    rules.adopt_notifiers(asyncio.get_running_loop())
    task = asyncio.create_task(rules.run())

    # The platform's loop is kept busy: it yields only every 100 ms, for at most two seconds.
    busy_until = time.monotonic() + 2.0
    while time.monotonic() < busy_until and runner.stats.applied < len(records):
        time.sleep(0.1)  # noqa: ASYNC251  # on purpose: a loop too busy to serve anybody else
        await asyncio.sleep(0)
    assert runner.stats.applied == len(records)  # the engine did not wait for the busy loop
    await eventually(lambda: any(a.rule == "test.failed" for a in recorder.alerts), what="the alert notified")
    assert recorder.threads == {threading.get_ident()}  # on the platform's loop, not the rules thread
    rules.wake()  # from this thread: harmless, and wakes the engine at once
    rules.stop()
    await asyncio.wait_for(task, 5)
