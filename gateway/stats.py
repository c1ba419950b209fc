"""What the gateway did, counted in one place: read by the log line, the tests and the /metrics endpoint."""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass, field

#: Upper bounds (seconds) of the acknowledgement-latency histogram buckets.
ACK_LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass
class LatencyHistogram:
    """Acknowledgement latency in fixed buckets, cheap enough to observe once per batch."""

    buckets: tuple[float, ...] = ACK_LATENCY_BUCKETS_S
    counts: list[int] = field(default_factory=lambda: [0] * (len(ACK_LATENCY_BUCKETS_S) + 1))
    total: float = 0.0
    count: int = 0

    def observe(self, seconds: float, times: int = 1) -> None:
        """``times`` observations of the same value (a batch acknowledged at once)."""
        self.counts[bisect.bisect_left(self.buckets, seconds)] += times
        self.total += seconds * times
        self.count += times

    def cumulative(self) -> list[tuple[str, int]]:
        running, out = 0, []
        for bound, count in zip([*map(str, self.buckets), "+Inf"], self.counts, strict=True):
            running += count
            out.append((bound, running))
        return out

    def quantile(self, q: float) -> float | None:
        """An upper bound of the q-quantile (the bucket it falls in)."""
        if not self.count:
            return None
        target = q * self.count
        for bound, running in self.cumulative():
            if running >= target:
                return float(bound)
        return float("inf")


@dataclass
class GatewayStats:
    """What the gateway has done since it started: counters by type and reason, and acknowledgement latency."""

    received: int = 0
    accepted: Counter[str] = field(default_factory=Counter)  # valid, by message type (stored or duplicate)
    stored: int = 0
    duplicates: int = 0
    rejected: Counter[str] = field(default_factory=Counter)  # dead-lettered, by reason
    ignored: Counter[str] = field(default_factory=Counter)  # not device input, by why
    clock_skew: int = 0
    #: Records stored although their device had used the msg_id before, for other content.
    msg_id_reused: int = 0
    batches: int = 0
    #: Connections served (1 while the broker has never dropped the gateway).
    connections: int = 0
    ack_latency: LatencyHistogram = field(default_factory=LatencyHistogram)

    def snapshot(self) -> dict[str, object]:
        return {
            "received": self.received,
            "accepted": sum(self.accepted.values()),
            "accepted_by_type": dict(self.accepted),
            "stored": self.stored,
            "duplicates": self.duplicates,
            "rejected": sum(self.rejected.values()),
            "rejected_by_reason": dict(self.rejected),
            "ignored": sum(self.ignored.values()),
            "clock_skew": self.clock_skew,
            "msg_id_reused": self.msg_id_reused,
            "batches": self.batches,
            "connections": self.connections,
            "ack_latency_p99_le_s": self.ack_latency.quantile(0.99),
        }
