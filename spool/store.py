"""The spool: the platform's durable, ordered log (SQLite in WAL mode, fsync on every commit).

Everything the gateway acknowledges is here first: accepted records in arrival order, and dead letters with
their reason. Consumers (the storage writer, the rules engine) read records from their own checkpoints, so a
crash anywhere replays from the spool instead of losing or doubling work. A (device, msg_id) pair is stored at
most once within the dedup window.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from runtime.sqlite import open_database
from spool.records import DownstreamReject, NewRecord, SpoolRecord, StoredDeadLetter
from spool.schema import upgrade
from spool.write import CommitPlan, Entry, Outcome, device_time, plan, record_row, write


def _epoch(instant: dt.datetime) -> float:
    return instant.timestamp()


def _instant(epoch: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, dt.UTC)


class Spool:
    """One SQLite file. ``commit`` is called from one thread at a time; readers may use other instances."""

    def __init__(self, path: Path, *, dedup_window: dt.timedelta = dt.timedelta(days=7)) -> None:
        self.path = path
        self.dedup_window = dedup_window
        self._db = open_database(path)
        self._lock = threading.Lock()
        try:
            upgrade(self._db, path)
        except BaseException:
            self._db.close()
            raise

    def close(self) -> None:
        self._db.close()

    # --- writing --------------------------------------------------------------------------------------------

    def commit(self, batch: Sequence[Entry]) -> list[Outcome]:
        """Write a batch in one transaction (group commit) and say what became of each entry, in order.

        ``None`` entries (deliveries that are not device input) are skipped but keep their place.
        """
        return self.commit_plan(plan([record_row(e) if isinstance(e, NewRecord) else e for e in batch]))

    def commit_plan(self, planned: CommitPlan) -> list[Outcome]:
        """:meth:`commit` for a batch already planned (:func:`spool.write.plan`), in one transaction
        ending with an fsync."""
        with self._lock:
            return write(self._db.cursor(), planned)

    def prune(self, now: dt.datetime, *, keep_consumed: dt.timedelta = dt.timedelta(days=1)) -> tuple[int, int]:
        """Forget dedup keys older than the window, and records every consumer has passed and that are older
        than ``keep_consumed``. Records are never pruned while no consumer has a checkpoint.
        Returns (dedup keys removed, records removed)."""
        with self._lock:
            oldest = _epoch(now - self.dedup_window)
            seen = self._db.execute("DELETE FROM seen WHERE received_at < ?", (oldest,)).rowcount
            seen += self._db.execute("DELETE FROM seen_reused WHERE received_at < ?", (oldest,)).rowcount
            (floor,) = self._db.execute("SELECT MIN(seq) FROM checkpoints").fetchone()
            records = 0
            if floor is not None:
                # A record a consumer set aside stays until a replay got it through.
                records = self._db.execute(
                    "DELETE FROM records WHERE seq <= ? AND received_at < ?"
                    " AND seq NOT IN (SELECT seq FROM consumer_rejects WHERE replayed_at IS NULL)",
                    (floor, _epoch(now - keep_consumed)),
                ).rowcount
        return seen, records

    # --- reading --------------------------------------------------------------------------------------------

    def read(self, after_seq: int, limit: int = 1000) -> list[SpoolRecord]:
        rows = self._db.execute(
            "SELECT seq, device_id, msg_id, canteen_id, kind, channel, type, payload, device_ts,"
            " device_utc_offset_s, received_at, skew_flagged, msg_id_reused FROM records WHERE seq > ?"
            " ORDER BY seq LIMIT ?",
            (after_seq, limit),
        ).fetchall()
        return [
            SpoolRecord(
                seq=row[0],
                device_id=row[1],
                msg_id=row[2],
                canteen_id=row[3],
                kind=row[4],
                channel=row[5],
                type=row[6],
                payload=bytes(row[7]),
                device_ts=device_time(row[8], row[9]),
                received_at=_instant(row[10]),
                skew_flagged=bool(row[11]),
                msg_id_reused=bool(row[12]),
            )
            for row in rows
        ]

    def all_records(self, batch: int = 5000) -> Iterator[SpoolRecord]:
        seq = 0
        while chunk := self.read(seq, batch):
            yield from chunk
            seq = chunk[-1].seq

    def checkpoint(self, consumer: str) -> int:
        row = self._db.execute("SELECT seq FROM checkpoints WHERE consumer = ?", (consumer,)).fetchone()
        return int(row[0]) if row else 0

    def advance(self, consumer: str, seq: int) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO checkpoints (consumer, seq) VALUES (?, ?) "
                "ON CONFLICT (consumer) DO UPDATE SET seq = MAX(seq, excluded.seq)",
                (consumer, seq),
            )

    def reject_downstream(self, consumer: str, seq: int, detail: str, item: str, when: dt.datetime) -> None:
        """A consumer's dead letter: ``seq`` could not be taken downstream, for good; the consumer moves on."""
        with self._lock:
            self._db.execute(
                "INSERT INTO consumer_rejects (consumer, seq, detail, item, at) VALUES (?, ?, ?, ?, ?)",
                (consumer, seq, detail, item, _epoch(when)),
            )

    def downstream_rejects(
        self, consumer: str, *, pending_only: bool = False, ids: Sequence[int] = (), limit: int = 100
    ) -> list[DownstreamReject]:
        """A consumer's rejects, oldest first: all, the ones not replayed yet, or these."""
        where, params = _filter(["consumer = ?"], [consumer], pending_only, ids)
        rows = self._db.execute(
            f"SELECT id, consumer, seq, detail, item, at, replayed_at, replay_note FROM consumer_rejects {where}"
            " ORDER BY id LIMIT ?",
            (*params, limit),
        ).fetchall()
        return [
            DownstreamReject(
                id=row[0],
                consumer=row[1],
                seq=row[2],
                detail=row[3],
                item=row[4],
                at=_instant(row[5]),
                replayed_at=_instant(row[6]) if row[6] is not None else None,
                replay_note=row[7],
            )
            for row in rows
        ]

    def mark_reject_replayed(self, reject_id: int, when: dt.datetime, note: str, *, through: bool) -> None:
        """Record a replay's result: ``through`` closes the reject (its record may then be pruned)."""
        with self._lock:
            self._db.execute(
                "UPDATE consumer_rejects SET replayed_at = ?, replay_note = ? WHERE id = ?",
                (_epoch(when) if through else None, note, reject_id),
            )

    def record(self, seq: int) -> SpoolRecord | None:
        """One record by its number, if the spool still has it."""
        found = self.read(seq - 1, 1)
        return found[0] if found and found[0].seq == seq else None

    def oldest_after(self, seq: int) -> dt.datetime | None:
        """When the first record after ``seq`` arrived: the age of a consumer's oldest unwritten record."""
        row = self._db.execute("SELECT received_at FROM records WHERE seq > ? ORDER BY seq LIMIT 1", (seq,)).fetchone()
        return _instant(row[0]) if row else None

    def backlog_bytes(self, after_seq: int) -> int:
        """Payload bytes of the records after ``after_seq``: what a consumer's backlog holds on disk."""
        (size,) = self._db.execute(
            "SELECT COALESCE(SUM(length(payload)), 0) FROM records WHERE seq > ?", (after_seq,)
        ).fetchone()
        return int(size)

    def disk_bytes(self) -> int:
        """The spool's size on disk, write-ahead log included."""
        return sum(p.stat().st_size for p in (self.path, self.path.with_name(self.path.name + "-wal")) if p.exists())

    def last_seq(self) -> int:
        (seq,) = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM records").fetchone()
        return int(seq)

    def backlog(self) -> int:
        """Records the slowest consumer has not passed yet (every record, while there is no consumer)."""
        (floor,) = self._db.execute("SELECT MIN(seq) FROM checkpoints").fetchone()
        (count,) = self._db.execute("SELECT COUNT(*) FROM records WHERE seq > ?", (floor or 0,)).fetchone()
        return int(count)

    def count_records(self) -> int:
        (count,) = self._db.execute("SELECT COUNT(*) FROM records").fetchone()
        return int(count)

    # --- dead letters ---------------------------------------------------------------------------------------

    def dead_letters(
        self, *, reason: str | None = None, pending_only: bool = False, limit: int = 100, ids: Sequence[int] = ()
    ) -> list[StoredDeadLetter]:
        clauses, params = ([], []) if not reason else (["reason = ?"], [reason])
        where, params = _filter(clauses, params, pending_only, ids)
        rows = self._db.execute(
            "SELECT id, reason, detail, topic, client_id, payload, received_at, replayed_at, replay_note "
            f"FROM dead_letters {where} ORDER BY id LIMIT ?",
            (*params, limit),
        ).fetchall()
        return [
            StoredDeadLetter(
                id=row[0],
                reason=row[1],
                detail=row[2],
                topic=row[3],
                client_id=row[4],
                payload=bytes(row[5]),
                received_at=_instant(row[6]),
                replayed_at=_instant(row[7]) if row[7] is not None else None,
                replay_note=row[8],
            )
            for row in rows
        ]

    def count_dead_letters(self) -> int:
        (count,) = self._db.execute("SELECT COUNT(*) FROM dead_letters").fetchone()
        return int(count)

    def mark_replayed(self, letter_id: int, when: dt.datetime, note: str, *, stored: bool) -> None:
        """Record a replay's result: stored (or found a duplicate) closes the letter; a new refusal updates it."""
        with self._lock:
            self._db.execute(
                "UPDATE dead_letters SET replayed_at = ?, replay_note = ? WHERE id = ?",
                (_epoch(when) if stored else None, note, letter_id),
            )


def _filter(clauses: list[str], params: list[str], pending_only: bool, ids: Sequence[int]) -> tuple[str, list[str]]:
    """The WHERE clause of a listing of dead letters or consumer rejects: not replayed yet, and/or these ids."""
    if pending_only:
        clauses = [*clauses, "replayed_at IS NULL"]
    if ids:
        clauses = [*clauses, f"id IN ({','.join('?' * len(ids))})"]
        params = [*params, *(str(i) for i in ids)]
    return (f"WHERE {' AND '.join(clauses)}" if clauses else ""), params
