"""Counters of what the gateway did, for logs and (later) the metrics endpoint."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class GatewayStats:
    received: int = 0
    accepted: Counter[str] = field(default_factory=Counter)  # by message type
    rejected: Counter[str] = field(default_factory=Counter)  # by reason
    ignored: Counter[str] = field(default_factory=Counter)  # by why

    def snapshot(self) -> dict[str, object]:
        return {
            "received": self.received,
            "accepted": sum(self.accepted.values()),
            "accepted_by_type": dict(self.accepted),
            "rejected": sum(self.rejected.values()),
            "rejected_by_reason": dict(self.rejected),
            "ignored": sum(self.ignored.values()),
        }
