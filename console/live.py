"""Today's test results as they arrive, for the kiosks at the test-room doors (Server-Sent Events).

The feed follows the spool — the records the gateway has just committed, before storage has written them — in
memory, from where the spool stood when the platform started (a kiosk loads what came before from the store).
It also notes when each canteen's devices last sent anything, so that a kiosk can say its data is stale.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import hashlib
import json
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from console.privacy import scrub
from console.readings import TestRow
from console.words import Words
from devices.messages import TestResult
from devices.registry import Registry
from rules.alerts import Alert, alerts_by_record
from runtime.clock import Clock
from spool import Spool, SpoolRecord, hydrate
from storage.schema import Judge

#: Rows of one canteen's day kept for a kiosk that connects later (a canteen tests tens a day, not hundreds).
RECENT_ROWS = 500
#: Events one kiosk may have waiting before it is told to reload instead.
QUEUE_SIZE = 200
#: How often a kiosk hears the date and the freshness of its canteen's data.
TICK_S = 10.0
#: How often an open kiosk stream asks whether its token is still valid: a revoked token ends it within this.
RECHECK_S = 5.0
#: How often the spool is looked at for new records (an indexed read that usually finds none). Polling, not the
#: gateway's commit event: the rules runner clears that event, and two consumers clearing one event miss wakes.
POLL_S = 0.5


@dataclass(frozen=True)
class KioskRow:
    """One test as the door display shows it: in words, with nothing internal (docs/public.md)."""

    key: str
    time: str
    sample: str
    supplier: str
    batch: str
    item: str
    method: str
    value: str
    verdict: str  # the platform's
    verdict_code: str  # pass / fail / suspect / invalid: the row's colour
    tester: str
    #: What the device or typist said, when the platform's verdict differs ("" when it agrees).
    note: str = ""


def kiosk_key(device: str, msg_id: str | None) -> str:
    """Which record a row is, so that the page shows it once; opaque: ids are not for the public."""
    return hashlib.sha256(f"{device}|{msg_id}".encode()).hexdigest()[:16]


def handling_by_key(alerts: Iterable[Alert], words: Words) -> dict[str, str]:
    """Kiosk key of each failed test -> what was done with the food, from its ``test.failed`` alert."""
    return {
        kiosk_key(device, msg_id): words.handling(alert)
        for (device, msg_id), alert in alerts_by_record(alerts, "test.failed").items()
    }


def kiosk_row(test: TestRow, tz: ZoneInfo, words: Words) -> KioskRow:
    return KioskRow(
        key=kiosk_key(test.device, test.msg_id),
        time=test.at.astimezone(tz).strftime("%H:%M"),
        sample=scrub(test.sample_name),
        supplier=scrub(test.supplier),
        batch=scrub(test.batch_no),
        item=words("item", test.item_code),
        method=words("method", test.method),
        value=words.reading(test),
        verdict=words("verdict", test.result),
        verdict_code=test.result,
        tester=scrub(test.operator),
        note=words.note_for(test) or "",
    )


def _test_row(canteen: str, device: str, test: TestResult, judge: Judge | None) -> TestRow:
    """A row as storage will store it: with the platform's verdict."""
    return TestRow(
        at=test.ts,
        canteen=canteen,
        device=device,
        item_code=test.item_code,
        method=test.method,
        method_std=test.method_std,
        value=test.value,
        unit=test.unit,
        result=judge(test) if judge is not None else test.result,
        device_result=test.result,
        sample_no=test.sample_no,
        sample_name=test.sample_name,
        supplier=test.supplier,
        batch_no=test.batch_no,
        operator=test.operator,
        entered_by=test.entered_by,
        msg_id=test.msg_id,
    )


def js_time(instant: dt.datetime) -> str:
    """RFC 3339 to the millisecond: JavaScript's Date.parse refuses microseconds (NaN, and every comparison
    with NaN is false: a kiosk that never turns stale)."""
    return instant.isoformat(timespec="milliseconds")


def freshness(clock: Clock, tz: ZoneInfo, seen: dt.datetime | None) -> dict[str, str | None]:
    """What a kiosk is told of its data: the date, the time now and when the canteen's devices last sent anything
    (also as HH:MM in the region's zone: a display's own clock and zone are often wrong)."""
    now = clock.now()
    return {
        "date": now.astimezone(tz).date().isoformat(),
        "now": js_time(now),
        "last_seen": js_time(seen) if seen else None,
        "last_seen_text": seen.astimezone(tz).strftime("%H:%M") if seen else None,
    }


def _event(name: str, data: object) -> str:
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


class LiveTests:
    """Follows the spool; fans each canteen's new test results out to that canteen's kiosks only."""

    def __init__(self, spool_path: Path, registry: Registry, clock: Clock, judge: Judge | None = None) -> None:
        self.spool_path = spool_path
        #: The platform's verdict, the one storage stores (storage/schema.py ``Judge``).
        self.judge = judge
        self.registry = registry
        self.clock = clock
        self.tz = ZoneInfo(registry.timezone)
        self.words = Words("zh", registry.catalogue)
        self.last_seen: dict[str, dt.datetime] = {}
        self._recent: dict[str, collections.deque[tuple[dt.date, KioskRow]]] = {}
        self._listeners: dict[str, set[asyncio.Queue[str]]] = collections.defaultdict(set)
        self._after: int | None = None

    def today(self) -> dt.date:
        return self.clock.now().astimezone(self.tz).date()

    async def run(self, stop: asyncio.Event) -> None:
        spool = Spool(self.spool_path)
        try:
            self._after = spool.last_seq() if self._after is None else self._after
            while not stop.is_set():
                records = await asyncio.to_thread(spool.read, self._after, 1000)
                if records:
                    self._after = records[-1].seq
                    self.take(records)
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), POLL_S)
        finally:
            spool.close()

    def take(self, records: list[SpoolRecord]) -> None:
        today = self.today()
        for record in records:
            seen = self.last_seen.get(record.canteen_id)
            if seen is None or record.received_at > seen:
                self.last_seen[record.canteen_id] = record.received_at
            if record.type != "test.result":
                continue
            test = hydrate(record)
            assert isinstance(test, TestResult)
            if test.ts.astimezone(self.tz).date() != today:
                continue  # a late record of another day never shows as today's
            row = kiosk_row(_test_row(record.canteen_id, record.device_id, test, self.judge), self.tz, self.words)
            recent = self._recent.setdefault(record.canteen_id, collections.deque(maxlen=RECENT_ROWS))
            recent.append((today, row))
            event = _event("test", asdict(row))
            for queue in self._listeners.get(record.canteen_id, ()):
                try:
                    queue.put_nowait(event)
                except asyncio.QueueFull:
                    _overflowed(queue)

    async def stream(
        self,
        canteen_id: str,
        since: dt.datetime | None,
        *,
        still_open: Callable[[], bool] = lambda: True,
        handling: Callable[[], dict[str, str]] = dict,
        recheck_s: float = RECHECK_S,
    ) -> AsyncIterator[str]:
        """One kiosk's events: today's rows so far, then each new one, and a tick with the date, the time the
        canteen's devices last sent anything (``since``: what the store knew when the page was made) and what was
        done with each failed food (``handling``: kiosk key -> words). Ends with a ``revoked`` event once
        ``still_open`` says its token no longer opens the page."""
        queue: asyncio.Queue[str] = asyncio.Queue(QUEUE_SIZE)
        self._listeners[canteen_id].add(queue)
        loop = asyncio.get_running_loop()
        try:
            yield "retry: 3000\n\n"
            today = self.today()
            for day, row in list(self._recent.get(canteen_id, ())):
                if day == today:
                    yield _event("test", asdict(row))
            ticked = float("-inf")
            while True:
                if not still_open():
                    yield _event("revoked", {})
                    return
                if loop.time() - ticked >= TICK_S:
                    ticked = loop.time()
                    seen = max(filter(None, [since, self.last_seen.get(canteen_id)]), default=None)
                    yield _event("tick", {**freshness(self.clock, self.tz, seen), "handling": handling()})
                try:
                    event = await asyncio.wait_for(queue.get(), min(TICK_S, recheck_s))
                except TimeoutError:
                    continue
                if event == _RELOAD:
                    yield _event("reload", {})
                    return
                yield event
                ticked = float("-inf")  # a tick follows each event, with its canteen's freshness
        finally:
            self._listeners[canteen_id].discard(queue)


_RELOAD = "reload"


def _overflowed(queue: asyncio.Queue[str]) -> None:
    """A kiosk that cannot keep up: drop what waits and tell it to reload the page instead."""
    while not queue.empty():
        queue.get_nowait()
    queue.put_nowait(_RELOAD)
