"""The spool on its own: order, group commit outcomes, dedup within the window, pruning behind consumers."""

from __future__ import annotations

import dataclasses
import datetime as dt
import sqlite3
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spool import SCHEMA_VERSION, Entry, NewDeadLetter, NewRecord, Outcome, Spool, SpoolVersionError

T0 = dt.datetime(2026, 11, 25, 3, 30, tzinfo=dt.UTC)


def _record(msg_id: str, device: str = "d1", at: dt.datetime = T0) -> NewRecord:
    return NewRecord(
        device_id=device,
        msg_id=msg_id,
        canteen_id="c1",
        kind="cabinet",
        channel="telemetry",
        type="cabinet.reading",
        payload=b"{}",
        device_ts=at,
        received_at=at,
    )


def _letter() -> NewDeadLetter:
    return NewDeadLetter(reason="invalid_json", detail="EOF", topic="t", client_id=None, payload=b"{", received_at=T0)


def test_batch_outcomes_in_order_with_duplicates_inside_one_batch(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.sqlite")
    outcomes = spool.commit([_record("a"), None, _record("a"), _letter(), _record("a", device="d2")])
    assert outcomes == [Outcome.STORED, Outcome.SKIPPED, Outcome.DUPLICATE, Outcome.DEAD_LETTERED, Outcome.STORED]
    assert [(r.device_id, r.msg_id, r.seq) for r in spool.all_records()] == [("d1", "a", 1), ("d2", "a", 2)]
    assert spool.count_dead_letters() == 1


def test_what_was_committed_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    first = Spool(path)
    first.commit([_record(str(i)) for i in range(10)])
    first.close()
    again = Spool(path)
    assert again.commit([_record("3")]) == [Outcome.DUPLICATE]
    assert [r.msg_id for r in again.all_records()] == [str(i) for i in range(10)]


def test_dedup_window(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.sqlite", dedup_window=dt.timedelta(days=7))
    spool.commit([_record("a")])
    spool.prune(T0 + dt.timedelta(days=6, hours=23))
    assert spool.commit([_record("a", at=T0 + dt.timedelta(days=6, hours=23))]) == [Outcome.DUPLICATE]
    spool.prune(T0 + dt.timedelta(days=7, minutes=1))
    assert spool.commit([_record("a", at=T0 + dt.timedelta(days=7, minutes=1))]) == [Outcome.STORED]


def test_records_are_pruned_only_behind_every_consumer(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.sqlite")
    spool.commit([_record(str(i)) for i in range(10)])
    later = T0 + dt.timedelta(days=2)
    assert spool.prune(later) == (0, 0)  # no consumer yet: keep everything
    assert spool.backlog() == 10
    spool.advance("storage", 8)
    spool.advance("rules", 4)
    spool.advance("rules", 2)  # a checkpoint never moves back
    assert spool.checkpoint("rules") == 4
    assert spool.backlog() == 6
    assert spool.prune(later) == (0, 4)
    assert [r.seq for r in spool.all_records()] == [5, 6, 7, 8, 9, 10]
    assert [r.seq for r in spool.read(after_seq=spool.checkpoint("storage"))] == [9, 10]


def test_skew_is_kept_with_both_times(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.sqlite")
    ahead = dt.datetime(2026, 11, 25, 11, 40, tzinfo=dt.timezone(dt.timedelta(hours=8)))  # T0 + 10 min
    spool.commit([dataclasses.replace(_record("a"), device_ts=ahead, skew_flagged=True)])
    (record,) = spool.all_records()
    assert record.device_ts == ahead
    assert record.device_ts.utcoffset() == dt.timedelta(hours=8)  # as the device wrote it
    assert record.received_at == T0
    assert record.skew_s == 600
    assert record.skew_flagged


def test_keys_stored_by_earlier_batches_are_found_among_new_ones(tmp_path: Path) -> None:
    """The commit claims every key with one statement and looks keys up only when some were stored before."""
    spool = Spool(tmp_path / "s.sqlite")
    spool.commit([_record("old-1"), _record("old-2")])
    batch: list[Entry] = [
        _record("new-1"),
        _record("old-2"),
        _letter(),
        _record("new-1"),
        None,
        _record("old-1"),
        _record("new-2"),
    ]
    assert spool.commit(batch) == [
        Outcome.STORED,
        Outcome.DUPLICATE,
        Outcome.DEAD_LETTERED,
        Outcome.DUPLICATE,
        Outcome.SKIPPED,
        Outcome.DUPLICATE,
        Outcome.STORED,
    ]
    assert [r.msg_id for r in spool.all_records()] == ["old-1", "old-2", "new-1", "new-2"]


def test_batches_larger_than_one_statement_keep_order_and_dedup(tmp_path: Path) -> None:
    """12,000 records span several multi-row statements (5,000 keys, 2,000 rows each)."""
    spool = Spool(tmp_path / "s.sqlite")
    spool.commit([_record(f"m{i}") for i in range(0, 12_000, 7)])  # every seventh is there already
    outcomes = spool.commit([_record(f"m{i}") for i in range(12_000)])
    assert [i for i, o in enumerate(outcomes) if o is Outcome.DUPLICATE] == list(range(0, 12_000, 7))
    stored = [r.msg_id for r in spool.all_records()]
    assert stored == [f"m{i}" for i in range(0, 12_000, 7)] + [f"m{i}" for i in range(12_000) if i % 7]


@given(st.lists(st.lists(st.sampled_from("abcdefgh"), max_size=12), max_size=6))
@settings(max_examples=60, deadline=None)
def test_outcomes_match_a_set_of_keys_seen(batches: list[list[str]]) -> None:
    """Whatever the batches, a key is stored the first time it comes and a duplicate every time after."""
    with tempfile.TemporaryDirectory() as tmp:
        spool = Spool(Path(tmp) / "s.sqlite")
        seen: list[str] = []
        for batch in batches:
            expected = []
            for key in batch:
                expected.append(Outcome.DUPLICATE if key in seen else Outcome.STORED)
                if key not in seen:
                    seen.append(key)
            assert spool.commit([_record(key) for key in batch]) == expected
        assert [r.msg_id for r in spool.all_records()] == seen
        spool.close()


@settings(max_examples=300, deadline=None)
@given(
    instant=st.datetimes(min_value=dt.datetime(1970, 1, 2), max_value=dt.datetime(2105, 12, 31)),
    offset_min=st.integers(min_value=-14 * 60, max_value=14 * 60),
)
def test_a_device_time_comes_back_as_written(instant: dt.datetime, offset_min: int) -> None:
    """The spool keeps ts as Unix seconds and the offset: the same instant, offset and microsecond come back."""
    written = instant.replace(tzinfo=dt.timezone(dt.timedelta(minutes=offset_min)))
    with tempfile.TemporaryDirectory() as tmp:
        spool = Spool(Path(tmp) / "s.sqlite")
        spool.commit([dataclasses.replace(_record("a"), device_ts=written)])
        (record,) = spool.all_records()
        spool.close()
    assert record.device_ts == written
    assert record.device_ts.utcoffset() == written.utcoffset()
    assert record.device_ts.isoformat() == written.isoformat()
    assert record.skew_s == pytest.approx((written - T0).total_seconds(), abs=1e-6)


def test_payloads_are_stored_as_blobs(tmp_path: Path) -> None:
    """bytes reach SQLite through the adapter spool_write registers; they must still land as the same BLOB."""
    spool = Spool(tmp_path / "s.sqlite")
    payload = '{"sample_name":"青菜"}'.encode()
    spool.commit([dataclasses.replace(_record("a"), payload=payload)])
    with sqlite3.connect(tmp_path / "s.sqlite") as db:
        assert db.execute("SELECT typeof(payload), payload FROM records").fetchone() == ("blob", payload)


# The records table as version 1 of the spool wrote it: ts as RFC 3339 text, skew_s stored.
_V1_RECORDS = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO meta VALUES ('schema_version', '1');
CREATE TABLE records (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id TEXT NOT NULL, msg_id TEXT NOT NULL, canteen_id TEXT NOT NULL, kind TEXT NOT NULL,
    channel TEXT NOT NULL, type TEXT NOT NULL, topic TEXT NOT NULL, payload BLOB NOT NULL,
    device_ts TEXT NOT NULL, received_at REAL NOT NULL, skew_s REAL NOT NULL, skew_flagged INTEGER NOT NULL
);
CREATE TABLE checkpoints (consumer TEXT PRIMARY KEY, seq INTEGER NOT NULL);
"""


def test_a_version_1_spool_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    received = T0.timestamp()
    written = ["2026-11-25T11:40:00.123456+08:00", "2026-11-25T03:29:59+00:00", "2026-11-24T22:30:00-05:00"]
    with sqlite3.connect(path) as db:
        db.executescript(_V1_RECORDS)
        for seq, ts in enumerate(written, start=1):
            skew = dt.datetime.fromisoformat(ts).timestamp() - received
            db.execute(
                "INSERT INTO records VALUES (?, 'd1', ?, 'c1', 'cabinet', 'telemetry', 'cabinet.reading',"
                " 'shian/v1/c1/cabinet/d1/telemetry', ?, ?, ?, ?, ?)",
                (seq, f"m{seq}", b"{}", ts, received, skew, int(seq == 1)),
            )
        db.execute(
            "INSERT INTO records (seq, device_id, msg_id, canteen_id, kind, channel, type, topic, payload,"
            " device_ts, received_at, skew_s, skew_flagged) VALUES (9, 'd1', 'm9', 'c1', 'cabinet',"
            " 'telemetry', 'cabinet.reading', 't', x'', '2026-11-25T03:30:00+00:00', 0, 0, 0)"
        )
        db.execute("DELETE FROM records WHERE seq = 9")  # pruned: its number must never be given again
        db.execute("INSERT INTO checkpoints VALUES ('storage', 2)")

    spool = Spool(path)
    records = list(spool.all_records())
    assert [r.seq for r in records] == [1, 2, 3]
    assert [r.device_ts for r in records] == [dt.datetime.fromisoformat(ts) for ts in written]
    assert [r.device_ts.isoformat() for r in records] == written
    assert records[0].skew_s == pytest.approx(600.123456)
    assert [r.skew_flagged for r in records] == [True, False, False]
    assert spool.checkpoint("storage") == 2
    assert spool.commit([_record("new")]) == [Outcome.STORED]
    assert [r.seq for r in spool.read(after_seq=3)] == [10]
    spool.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (str(SCHEMA_VERSION),)
    Spool(path).close()  # opening an upgraded spool again changes nothing


def test_a_spool_from_a_newer_version_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript(
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT); INSERT INTO meta VALUES ('schema_version', '99');"
        )
    with pytest.raises(SpoolVersionError, match=r"s\.sqlite is a version 99 spool; this Shian reads up to version 3"):
        Spool(path)


def test_a_version_1_spool_that_cannot_be_upgraded_is_left_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript(_V1_RECORDS)
        db.execute(
            "INSERT INTO records VALUES (1, 'd1', 'm1', 'c1', 'cabinet', 'telemetry', 'cabinet.reading', 't', x'',"
            " 'yesterday', 0, 0, 0)"
        )
    with pytest.raises(SpoolVersionError, match=r"s\.sqlite: upgrading this version 1 spool to version 2 failed"):
        Spool(path)
    with sqlite3.connect(path) as db:  # rolled back: still version 1, the record untouched
        assert db.execute("SELECT value FROM meta").fetchone() == ("1",)
        assert db.execute("SELECT device_ts FROM records").fetchone() == ("yesterday",)


def _content(record: NewRecord, payload: bytes) -> NewRecord:
    return dataclasses.replace(record, payload=payload)


def test_a_reused_msg_id_with_other_content_is_stored_flagged_never_dropped(tmp_path: Path) -> None:
    """A device whose counter restarted sends a failing test under a msg_id it used for a passing one: that is
    another record, stored and flagged. A resend of either, byte for byte, is a duplicate."""
    spool = Spool(tmp_path / "s.sqlite")
    passing, failing = _content(_record("7"), b'{"result":"pass"}'), _content(_record("7"), b'{"result":"fail"}')
    assert spool.commit([passing]) == [Outcome.STORED]
    assert spool.commit([failing]) == [Outcome.REUSED]
    assert spool.commit([passing, failing]) == [Outcome.DUPLICATE, Outcome.DUPLICATE]  # resends
    third = _content(_record("7"), b'{"result":"suspect"}')
    assert spool.commit([third]) == [Outcome.REUSED]
    stored = list(spool.all_records())
    assert [(r.payload, r.msg_id_reused) for r in stored] == [
        (b'{"result":"pass"}', False),
        (b'{"result":"fail"}', True),
        (b'{"result":"suspect"}', True),
    ]


def test_a_reused_msg_id_inside_one_batch(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.sqlite")
    one, other = _content(_record("9"), b"one"), _content(_record("9"), b"other")
    assert spool.commit([one, one, other, other, _record("10")]) == [
        Outcome.STORED,
        Outcome.DUPLICATE,
        Outcome.REUSED,
        Outcome.DUPLICATE,
        Outcome.STORED,
    ]
    assert [(r.msg_id, r.payload, r.msg_id_reused) for r in spool.all_records()] == [
        ("9", b"one", False),
        ("9", b"other", True),
        ("10", b"{}", False),
    ]


def test_keys_a_version_2_spool_kept_stay_duplicates(tmp_path: Path) -> None:
    """A key stored before the spool knew contents: a redelivery of it is still a duplicate, not a reuse."""
    path = tmp_path / "s.sqlite"
    spool = Spool(path)
    spool.commit([_record("a")])
    spool.close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE seen SET content = NULL")
    spool = Spool(path)
    assert spool.commit([_content(_record("a"), b"other bytes")]) == [Outcome.DUPLICATE]


def test_a_record_set_aside_by_a_consumer_is_kept_until_replayed(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.sqlite")
    spool.commit([_record("a"), _record("b")])
    spool.advance("storage", 2)
    spool.advance("rules", 2)
    spool.reject_downstream("storage", 1, "field type conflict", "cabinet temp_c=...", T0)
    later = T0 + dt.timedelta(days=8)  # past the dedup window too
    assert spool.prune(later) == (2, 1)  # record 2 goes; record 1 waits for its replay
    assert spool.record(1) is not None
    (reject,) = spool.downstream_rejects("storage", pending_only=True)
    spool.mark_reject_replayed(reject.id, later, "written", through=True)
    assert spool.downstream_rejects("storage", pending_only=True) == []
    assert spool.prune(later) == (0, 1)
    assert spool.record(1) is None
