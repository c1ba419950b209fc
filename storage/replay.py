"""Drain records again that the store once refused for good, after the cause was fixed (a missing database, a
field type conflict resolved by a new database): each set-aside record is mapped and written again, and its
reject closed once the store took it, so a replay is done exactly once."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from devices.registry import Registry
from spool import DownstreamReject, Spool
from storage.drain import CONSUMER
from storage.schema import Judge, points_for
from storage.writers import PointWriter, WriteError


@dataclass(frozen=True, slots=True)
class RejectReplay:
    reject: DownstreamReject
    through: bool
    note: str


def replay_rejects(
    spool: Spool,
    registry: Registry,
    writer: PointWriter,
    rejects: Sequence[DownstreamReject],
    now: dt.datetime,
    *,
    judge: Judge | None = None,
) -> list[RejectReplay]:
    """Write each reject's record again; close the ones the store takes, note why for the others."""
    results = []
    for reject in rejects:
        if reject.consumer != CONSUMER or reject.replayed_at is not None:
            results.append(RejectReplay(reject, False, "not a pending storage reject: left as it is"))
            continue
        record = spool.record(reject.seq)
        if record is None:
            note = f"record {reject.seq} is no longer in the spool (pruned before this version kept it)"
            results.append(RejectReplay(reject, False, note))
            spool.mark_reject_replayed(reject.id, now, note, through=False)
            continue
        canteen = registry.canteen(record.canteen_id)
        try:
            writer.write(points_for(record, canteen.district if canteen else "unknown", judge))
        except (WriteError, ValueError) as exc:
            note, through = f"refused again: {exc}", False
        else:
            note, through = "written", True
        spool.mark_reject_replayed(reject.id, now, note, through=through)
        results.append(RejectReplay(reject, through, note))
    return results
