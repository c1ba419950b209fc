"""The device side of the reliability contract: every record stays in the outbox until its ``stored`` or
``duplicate`` receipt arrives, and is sent again after a reconnect or when its receipt is overdue.

A real device keeps its outbox in flash; the simulator keeps it in memory, which is enough to prove the platform
side: whatever the broker loses, the device sends again, and the gateway's dedup stores it once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class Pending:
    topic: str
    payload: bytes
    sent_at: float = 0.0
    attempts: int = 0


@dataclass
class Outbox:
    #: Send again when no receipt came within this many seconds (real time).
    resend_after_s: float = 5.0
    pending: dict[str, Pending] = field(default_factory=dict)
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0

    def add(self, msg_id: str, topic: str, payload: bytes) -> Pending:
        entry = Pending(topic, payload)
        self.pending[msg_id] = entry
        return entry

    def sent(self, msg_id: str) -> None:
        entry = self.pending.get(msg_id)
        if entry is not None:
            entry.sent_at = time.monotonic()
            entry.attempts += 1

    def receipt(self, msg_id: str, status: str) -> None:
        """``stored`` and ``duplicate`` close a record; ``rejected`` does too (sending it again cannot help)."""
        if self.pending.pop(msg_id, None) is None:
            return
        if status == "stored":
            self.stored += 1
        elif status == "duplicate":
            self.duplicates += 1
        else:
            self.rejected += 1

    def due(self, *, all_unacknowledged: bool = False) -> list[tuple[str, Pending]]:
        """Records to send (again): all after a reconnect, else those whose receipt is overdue."""
        now = time.monotonic()
        return [
            (msg_id, entry)
            for msg_id, entry in self.pending.items()
            if all_unacknowledged or entry.attempts == 0 or now - entry.sent_at >= self.resend_after_s
        ]
