"""The drain loop's promises: retry what may pass later, isolate what never will, keep going, keep the backlog
on disk — against scripted HTTP answers, the local store and a real InfluxDB that goes away."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import tracemalloc
from collections.abc import Iterator, Sequence
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from devices.topics import Channel, DeviceKind
from runtime.clock import FakeClock
from runtime.process import free_port
from simulators.payloads import PayloadFactory
from spool import NewRecord, Spool
from storage.drain import CONSUMER, StorageDrain
from storage.line_protocol import to_line
from storage.local import LocalStore
from storage.schema import Measurement, points_for
from storage.writers import InfluxV1Writer, PermanentWriteError, TransientWriteError
from tests.helpers import NOW, make_registry, one_of_each
from tests.servers import InfluxDB1
from tests.storage_helpers import ScriptedInflux, cabinet_records, influxql, new_record


@pytest.fixture
def scripted() -> Iterator[ScriptedInflux]:
    server = ScriptedInflux([])
    yield server
    server.close()


def _points(uid: str) -> list[NewRecord]:
    return [
        new_record(model, kind, channel, canteen=f"c0-{uid}", device=f"{kind}0-{uid}")
        for kind, channel, model in one_of_each(f"dev-{uid}")
    ]


@pytest.mark.parametrize(
    ("status", "headers", "expected"),
    [
        (503, {}, TransientWriteError),
        (500, {}, TransientWriteError),
        (429, {"Retry-After": "7"}, TransientWriteError),
        (400, {}, PermanentWriteError),
        (401, {}, PermanentWriteError),
        (404, {}, PermanentWriteError),
    ],
)
def test_http_answers_are_sorted_into_transient_and_permanent(
    scripted: ScriptedInflux, tmp_path: Path, uid: str, status: int, headers: dict[str, str], expected: type
) -> None:
    scripted.answers.append((status, headers, b'{"error":"scripted"}'))
    spool = Spool(tmp_path / "s.sqlite")
    spool.commit(_points(uid))
    drain = StorageDrain(spool, make_registry(uid), InfluxV1Writer(scripted.url, "db"), FakeClock(NOW))
    record = spool.read(0, 1)
    with pytest.raises(expected) as info:
        drain.writer.write(points_for(record[0], "城区"))
    assert "scripted" in str(info.value)
    if status == 429:
        assert info.value.retry_after_s == 7.0  # type: ignore[attr-defined]


def test_connection_refused_is_transient(uid: str) -> None:
    writer = InfluxV1Writer(f"http://127.0.0.1:{free_port()}", "db")
    with pytest.raises(TransientWriteError, match="cannot reach"):
        writer.write([])


async def test_transient_failures_are_retried_until_the_batch_lands(
    scripted: ScriptedInflux, tmp_path: Path, uid: str
) -> None:
    scripted.answers += [(503, {}, b"busy"), (429, {"Retry-After": "0"}, b"slow down"), (204, {}, b"")]
    spool = Spool(tmp_path / "s.sqlite")
    spool.commit(_points(uid))
    drain = StorageDrain(
        spool,
        make_registry(uid),
        InfluxV1Writer(scripted.url, "db"),
        FakeClock(NOW),
        poll_s=0.01,
        backoff_start_s=0.01,  # the same loop, faster
    )
    stop = asyncio.Event()
    task = asyncio.create_task(drain.run(stop))
    try:
        deadline = time.monotonic() + 10
        while spool.checkpoint(CONSUMER) < 8 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
    finally:
        stop.set()
        await task
    assert spool.checkpoint(CONSUMER) == 8
    assert drain.stats.retries == 2
    assert len(scripted.bodies) == 3
    assert scripted.bodies[0] == scripted.bodies[2]  # the same batch, sent again


def test_a_permanent_refusal_is_isolated_by_halving(scripted: ScriptedInflux, tmp_path: Path, uid: str) -> None:
    """8 points, the server refuses any batch holding the 6th: 1 reject, 7 written, checkpoint past all."""
    spool = Spool(tmp_path / "s.sqlite")
    spool.commit(_points(uid))
    records = spool.read(0, 8)

    poisoned = to_line(points_for(records[5], "城区")[0])

    class Picky(InfluxV1Writer):
        def write_lines(self, lines: Sequence[str]) -> None:
            if poisoned in lines:
                raise PermanentWriteError("HTTP 400: partial write: field type conflict")
            super().write_lines(lines)

    drain = StorageDrain(spool, make_registry(uid), Picky(scripted.url, "db"), FakeClock(NOW))
    assert drain.drain_once() == 8
    assert drain.stats.written_points == 7
    assert [reject.seq for reject in spool.downstream_rejects(CONSUMER)] == [records[5].seq]
    written = b"\n".join(scripted.bodies).split(b"\n")
    assert poisoned.encode() not in written
    assert len(set(written)) == 7


def test_local_store_overwrites_keeps_twins_prunes_and_answers(tmp_path: Path, uid: str) -> None:
    spool = Spool(tmp_path / "s.sqlite")
    factory = PayloadFactory(f"detector0-{uid}")
    tests = [factory.test_result(NOW, fail_rate=0.0) for _ in range(3)]
    failed = factory.test_result(NOW, fail_rate=1.0)  # the same millisecond as the others
    spool.commit(
        [
            new_record(t, DeviceKind.DETECTOR, Channel.EVENT, canteen=f"c0-{uid}", device=f"detector0-{uid}")
            for t in [*tests, failed]
        ]
    )
    spool.commit(cabinet_records(uid, 5))
    store = LocalStore(tmp_path / "store.sqlite", retention=dt.timedelta(days=30))
    drain = StorageDrain(spool, make_registry(uid), store, FakeClock(NOW))
    assert drain.drain_once() == 9
    store.write([p for r in spool.all_records() for p in points_for(r, "城区")])  # a replay after a crash
    assert store.count(Measurement.RAPID_TEST) == 4  # written twice, kept once each; twins both kept
    (today,) = store.tests_on(NOW.date(), ZoneInfo("Asia/Shanghai"))
    assert (today.canteen, today.tests, today.passed) == (f"c0-{uid}", 4, 3)
    assert today.pass_rate == 0.75
    (latest,) = store.latest_temperatures()
    assert latest.at == NOW + dt.timedelta(milliseconds=4)
    assert store.prune(NOW + dt.timedelta(days=31)) == 9
    assert store.count(Measurement.CABINET) == 0


async def test_influx_outage_under_steady_flow_loses_and_doubles_nothing(tmp_path: Path, uid: str) -> None:
    """500 records/s into the spool; InfluxDB stopped for 3 s and restarted. Afterwards every record is in
    InfluxDB exactly once, and the backlog drained at least twice as fast as it was filled."""
    influx = InfluxDB1(tmp_path / "influx")
    influx.start()
    db = f"outage_{uid}"
    influx.create_database(db)
    spool = Spool(tmp_path / "s.sqlite")
    drain = StorageDrain(
        Spool(tmp_path / "s.sqlite"),
        make_registry(uid),
        InfluxV1Writer(influx.url, db),
        FakeClock(NOW),
        batch_size=2000,
        poll_s=0.05,
        backoff_start_s=0.05,
    )
    records = cabinet_records(uid, 4000)
    stop = asyncio.Event()
    task = asyncio.create_task(drain.run(stop))
    rate = 500
    outage_began = restarted = caught_up = 0.0
    backlog_at_restart = 0
    try:
        started = time.monotonic()
        for i in range(0, len(records), 50):  # 50 every 0.1 s
            spool.commit(records[i : i + 50])
            now = time.monotonic()
            if not outage_began and now - started >= 2.0:
                await asyncio.to_thread(influx.stop)
                outage_began = time.monotonic()
            elif outage_began and not restarted and now - outage_began >= 3.0:
                await asyncio.to_thread(influx.start)
                restarted = time.monotonic()
                backlog_at_restart = spool.last_seq() - spool.checkpoint(CONSUMER)
            await asyncio.sleep(max(0.0, (i + 50) / rate - (time.monotonic() - started)))
        while spool.checkpoint(CONSUMER) < spool.last_seq():
            await asyncio.sleep(0.01)
        caught_up = time.monotonic()
    finally:
        stop.set()
        await task
    count = influxql(influx, db, "SELECT count(temp_c) FROM cabinet")[0]["count"]
    influx.stop()
    assert count == len(records)
    assert drain.stats.retries > 0
    # Between the restart and catching up, the drain cleared the backlog and kept up with the new flow.
    drained = backlog_at_restart + rate * (caught_up - restarted)
    assert drained / (caught_up - restarted) >= 2 * rate


def test_memory_stays_flat_while_the_backlog_grows(tmp_path: Path, uid: str, scripted: ScriptedInflux) -> None:
    """The drain reads the backlog from disk a batch at a time: draining 20,000 records takes no more memory
    than draining 2,000."""

    scripted.keep_bodies = False  # the fake server shares this process: it must not hoard what it receives

    def peak(count: int) -> int:
        spool = Spool(tmp_path / f"s{count}.sqlite")
        spool.commit(cabinet_records(uid, count))
        drain = StorageDrain(
            spool, make_registry(uid), InfluxV1Writer(scripted.url, "db"), FakeClock(NOW), batch_size=1000
        )
        tracemalloc.start()
        while drain.drain_once():
            pass
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top

    small, large = peak(2000), peak(20000)
    assert large < small * 1.5, (small, large)


def test_the_backlog_disk_alarm_is_raised_and_cleared(scripted: ScriptedInflux, tmp_path: Path, uid: str) -> None:
    """Past the threshold the drain says so (the platform turns it into an alert); below it again, it clears."""
    import storage.drain as drain_module

    calls: list[tuple[bool, int]] = []
    spool = Spool(tmp_path / "s.sqlite")
    spool.commit(cabinet_records(uid, 50))
    scripted.answers += [(503, {}, b"down")] * 3
    drain = StorageDrain(
        spool,
        make_registry(uid),
        InfluxV1Writer(scripted.url, "db"),
        FakeClock(NOW),
        batch_size=1000,
        disk_warn_bytes=1000,
        on_backlog_disk=lambda h, n: calls.append((h, n)),
    )
    original, drain_module.DISK_CHECK_EVERY_S = drain_module.DISK_CHECK_EVERY_S, 0.0
    try:
        with pytest.raises(TransientWriteError):
            drain.drain_once()  # InfluxDB is down: the backlog stays
        assert calls[0][0] is True
        assert calls[0][1] > 1000
        while True:
            try:
                if not drain.drain_once():
                    break
            except TransientWriteError:
                continue
        assert calls[-1] == (False, 0)
    finally:
        drain_module.DISK_CHECK_EVERY_S = original


def test_the_platform_turns_the_disk_alarm_into_an_alert(tmp_path: Path) -> None:
    from runtime.clock import FakeClock as Clock
    from wiring.platform import Platform
    from wiring.settings import Settings

    settings = Settings(data_dir=tmp_path)
    platform = Platform(settings, make_registry("disk"), Clock(NOW))
    platform._backlog_disk(True, 2 * 1024**3)
    (alert,) = platform.rules.engine.store.alerts(state="open")
    assert alert.rule == "storage.backlog_disk"
    assert alert.canteen_id == "platform"
    assert "2048.0 MB" in alert.message
    platform._backlog_disk(False, 0)
    assert platform.rules.engine.store.alerts(state="open") == []
