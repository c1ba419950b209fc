"""The drain's pipeline (storage/pipeline.py) as the platform runs it: several writes in flight, a checkpoint that
advances only in order, a batch read once and written again from memory, and the lines it writes the same as
the schema's points."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices import messages as m
from devices.topics import Channel, DeviceKind
from runtime.clock import FakeClock
from spool import Spool, SpoolRecord
from storage.drain import CONSUMER, StorageDrain
from storage.line_protocol import lines_for, to_line
from storage.schema import points_for
from storage.writers import InfluxV1Writer, TransientWriteError
from tests.helpers import NOW, eventually, make_registry
from tests.storage_helpers import ScriptedInflux, cabinet_records, new_record, spool_record
from tests.strategies import BY_TOPIC

BATCH = 4


@pytest.fixture
def scripted() -> Iterator[ScriptedInflux]:
    server = ScriptedInflux([])
    yield server
    server.close()


def _spool(tmp_path: Path, uid: str, count: int) -> Spool:
    spool = Spool(tmp_path / "s.sqlite")
    spool.commit(cabinet_records(uid, count))
    return spool


@asynccontextmanager
async def _running(drain: StorageDrain) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(drain.run(stop))
    try:
        yield
    finally:
        stop.set()
        await task


async def test_the_checkpoint_waits_for_an_earlier_batch_that_lands_last(
    scripted: ScriptedInflux, tmp_path: Path, uid: str
) -> None:
    """The first batch's write is held until the second has landed: the checkpoint stays before both."""
    spool = _spool(tmp_path, uid, 3 * BATCH)
    second_landed, release_first = threading.Event(), threading.Event()
    calls: list[int] = []

    class HoldsTheFirst(InfluxV1Writer):
        def write_lines(self, lines: Sequence[str]) -> None:
            calls.append(len(lines))
            if len(calls) == 1:
                release_first.wait(30)
            super().write_lines(lines)
            if len(calls) == 2:
                second_landed.set()

    drain = StorageDrain(
        spool, make_registry(uid), HoldsTheFirst(scripted.url, "db"), FakeClock(NOW), batch_size=BATCH, poll_s=0.01
    )
    try:
        async with _running(drain):
            await eventually(second_landed.is_set, what="the second batch landed")
            assert spool.checkpoint(CONSUMER) == 0  # not past the first batch, still in flight
            release_first.set()
            await eventually(lambda: spool.checkpoint(CONSUMER) == 3 * BATCH, what="every batch settled")
    finally:
        release_first.set()
    written = {line for body in scripted.bodies for line in body.decode().split("\n")}
    assert written == {line for r in spool.read(0, 100) for line in lines_for(r, "城区")}


async def test_a_failed_write_is_sent_again_from_memory(scripted: ScriptedInflux, tmp_path: Path, uid: str) -> None:
    """The first batch fails once, after the second has landed: only the first goes again, and each record is
    read from the spool once."""
    spool = _spool(tmp_path, uid, 3 * BATCH)
    first = {line for r in spool.read(0, BATCH) for line in lines_for(r, "城区")}
    second_landed = threading.Event()
    sent: list[str] = []
    reads: list[int] = []

    class FailsTheFirstOnce(InfluxV1Writer):
        def write_lines(self, lines: Sequence[str]) -> None:
            sent.append("first" if set(lines) == first else "other")
            if sent == ["first"]:
                second_landed.wait(30)
                raise TransientWriteError("HTTP 503: busy")
            super().write_lines(lines)
            second_landed.set()

    class CountingSpool(Spool):
        def read(self, after_seq: int, limit: int = 1000) -> list[SpoolRecord]:
            records = super().read(after_seq, limit)
            reads.extend(r.seq for r in records)
            return records

    drain = StorageDrain(
        CountingSpool(spool.path),
        make_registry(uid),
        FailsTheFirstOnce(scripted.url, "db"),
        FakeClock(NOW),
        batch_size=BATCH,
        poll_s=0.01,
        backoff_start_s=0.01,
    )
    try:
        async with _running(drain):
            await eventually(lambda: spool.checkpoint(CONSUMER) == 3 * BATCH, what="every batch settled")
    finally:
        second_landed.set()
    assert drain.stats.retries == 1
    assert sent.count("first") == 2
    assert sent.count("other") == 2  # the second and the third, once each
    assert sorted(reads) == list(range(1, 3 * BATCH + 1))  # each record read once
    assert drain.stats.written_records == 3 * BATCH


@settings(max_examples=150, deadline=None)
@given(message=st.sampled_from(sorted(BY_TOPIC, key=str)).flatmap(lambda key: BY_TOPIC[key].map(lambda m: (key, m))))
def test_the_lines_are_the_schemas_points(message: tuple[tuple[DeviceKind, Channel], m.WireModel]) -> None:
    """Every kind of record, any valid content: the drain's lines are the points' lines, byte for byte."""
    (kind, channel), model = message
    record = spool_record(new_record(model, kind, channel, canteen="c 1", device="d=1"), seq=7)
    assert lines_for(record, "城 区") == [to_line(p) for p in points_for(record, "城 区")]
