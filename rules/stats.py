"""What the rules engine has done and how far behind the spool it is: for the status line, /metrics and the
``platform.rules_lag`` alert."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class RulesStats:
    #: Records applied since the process started.
    applied: int = 0
    #: Records in the spool the engine has not applied yet.
    lag_records: int = 0
    #: How long the oldest of those has waited (0 when caught up).
    lag_s: float = 0.0

    def snapshot(self) -> dict[str, float | int]:
        return {**asdict(self), "lag_s": round(self.lag_s, 3)}
