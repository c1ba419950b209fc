"""What an alert is (docs/contract.md, "Alerts"): its model, severities, states and escalation levels, the
dispositions and reviews a person closes one with, the console's query over them, and the errors of a change an
alert does not allow. Their store is ``rules.store``."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from runtime.errors import ShianError

Severity = Literal["info", "warning", "critical"]
State = Literal["open", "acknowledged", "resolved"]
SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}
ESCALATION_LEVELS = ("school", "district", "city")

Disposition = Literal["returned_to_supplier", "destroyed", "other"]
Review = Literal["confirmed", "false_positive"]


class Alert(BaseModel):
    """An alert as it is stored and published (docs/contract.md, "Alerts")."""

    model_config = ConfigDict(extra="forbid")

    alert_id: str
    rule: str
    severity: Severity
    state: State
    canteen_id: str
    device_id: str | None = None
    subject: str | None = None
    message: str
    evidence: list[dict[str, Any]]
    opened_at: AwareDatetime
    updated_at: AwareDatetime
    acked_by: str | None = None
    ack_note: str | None = None
    resolved_at: AwareDatetime | None = None
    #: Who has been told so far: school, then district, then city (unacknowledged critical alerts escalate).
    escalation: Literal["school", "district", "city"] = "school"
    dedup_key: str
    #: For a failed test, what was done with the food (退回 / 销毁); set when the alert is resolved.
    disposition: Disposition | None = None
    #: For a camera violation, the supervisor's review of the AI's finding; set when the alert is resolved.
    review: Review | None = None
    #: Reminders sent so far for an unacknowledged critical alert, and the last one's time.
    reminders: int = 0
    reminded_at: AwareDatetime | None = None


class AlertAck(BaseModel):
    """A supervisor's acknowledgement, published on ``shian/v1/alerts/{canteen}/{alert_id}/ack``."""

    model_config = ConfigDict(extra="forbid", strict=True)

    #: The registry account acknowledging (a school's, its district's or the city's).
    by: str = Field(min_length=1, max_length=64)
    #: For a camera violation: ``confirmed`` or ``false_positive``; otherwise free text.
    note: str | None = Field(default=None, max_length=1000)


def alert_id_for(dedup_key: str, occurrence: int) -> str:
    """Stable for a dedup key; a key that fires again after being resolved gets the next occurrence."""
    return f"{hashlib.sha256(dedup_key.encode()).hexdigest()[:16]}-{occurrence}"


@dataclass(frozen=True)
class AlertQuery:
    """The console inbox's filters; ``canteens`` is the reader's scope (None: every canteen)."""

    canteens: frozenset[str] | None = None
    state: State | None = None
    #: Only alerts not yet resolved (open or acknowledged).
    active: bool = False
    severity: Severity | None = None
    rule: str | None = None
    opened_from: dt.datetime | None = None
    opened_to: dt.datetime | None = None
    #: Only alerts that were open (not yet resolved) at this instant: what was known then, whatever came after.
    open_at: dt.datetime | None = None

    def where(self) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        if self.canteens is not None:
            clauses.append(f"canteen_id IN ({','.join('?' * len(self.canteens))})")
            params += sorted(self.canteens)
        for column, value in (("state", self.state), ("severity", self.severity), ("rule", self.rule)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if self.active:
            clauses.append("state != 'resolved'")
        if self.opened_from is not None:
            clauses.append("opened_ts >= ?")
            params.append(self.opened_from.timestamp())
        if self.opened_to is not None:
            clauses.append("opened_ts < ?")
            params.append(self.opened_to.timestamp())
        if self.open_at is not None:
            resolved_ts = "(julianday(json_extract(body, '$.resolved_at')) - 2440587.5) * 86400.0"
            clauses.append(f"opened_ts < ? AND (state != 'resolved' OR {resolved_ts} > ?)")
            params += [self.open_at.timestamp()] * 2
        return " AND ".join(clauses) or "1", params


#: A stored record's identity: its device and msg_id (a msg_id is unique only per device).
RecordKey = tuple[str, str]


def alerts_by_record(alerts: Iterable[Alert], rule: str) -> dict[RecordKey, Alert]:
    """(device, msg_id) of a record -> the alert of ``rule`` it is evidence of. Evidence names its record by
    device and msg_id (evidence written before it named the device is the alert's own device's)."""
    found: dict[RecordKey, Alert] = {}
    for alert in alerts:
        if alert.rule == rule:
            for evidence in alert.evidence:
                msg_id, device = evidence.get("msg_id"), evidence.get("device", alert.device_id)
                if isinstance(msg_id, str) and isinstance(device, str):
                    found[(device, msg_id)] = alert
    return found


class Handled(NamedTuple):
    """An alert and how people answered it: first acknowledged when, resolved by whom (None: not yet)."""

    alert: Alert
    acked_at: dt.datetime | None
    resolved_by: str | None


class AlertError(ShianError, ValueError):
    """An operator's change an alert does not allow (no such alert, already resolved, not open)."""

    pass
