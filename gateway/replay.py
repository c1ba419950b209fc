"""Re-run dead letters through validation, for an operator who has fixed the registry (or the contract)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from devices.registry import Registry
from gateway.entries import SkewLimits, spool_entry
from gateway.intake import Rejected, classify
from mqtt.bus import Incoming
from spool import Outcome, RecordRow, Spool, StoredDeadLetter


@dataclass(frozen=True, slots=True)
class ReplayResult:
    letter: StoredDeadLetter
    outcome: Outcome | None  # stored or duplicate; None when refused again
    note: str


def replay(
    spool: Spool, registry: Registry, letters: Sequence[StoredDeadLetter], now: dt.datetime, skew: SkewLimits
) -> list[ReplayResult]:
    """Classify each letter again with today's registry. Records that pass are stored (deduplicated, with the
    time they first arrived) and the letter is closed; letters refused again keep their place with a note."""
    results = []
    for letter in letters:
        incoming = Incoming(letter.topic, letter.payload, qos=1, retain=False, mid=0)
        decision = classify(incoming, registry)
        entry = spool_entry(incoming, decision, skew.window(letter.received_at))
        if isinstance(entry, RecordRow):
            (outcome,) = spool.commit([entry])
            note = f"replayed: {outcome}"
            spool.mark_replayed(letter.id, now, note, stored=True)
            results.append(ReplayResult(letter, outcome, note))
        else:
            why = f"{decision.reason}: {decision.detail}" if isinstance(decision, Rejected) else "not device input"
            note = f"refused again: {why}"
            spool.mark_replayed(letter.id, now, note, stored=False)
            results.append(ReplayResult(letter, None, note))
    return results
