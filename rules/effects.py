"""What a rule unit asks for: raise (or update) an alert, or resolve one. The engine core applies them to the
alert store, in order, inside the unit of work's transaction."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from rules.alerts import Severity

#: Who resolves alerts that the rules themselves close (recorded in the audit log).
RULES_ACTOR = "rules"
#: The canteen id of alerts about the platform itself (a storage backlog, a fleet-wide outage, the engine's lag);
#: the city account reads them, as it reads every alert.
PLATFORM = "platform"


@dataclass(frozen=True, slots=True)
class Raise:
    """Open the alert of ``rule`` for ``key``, or update the one that is open (worse severity, more evidence)."""

    rule: str
    severity: Severity
    key: str
    canteen_id: str
    at: dt.datetime
    evidence: dict[str, Any]
    #: The alert's device and subject fields.
    device: str | None = None
    subject: str | None = None
    #: The values of the rule's message template (rules.messages), besides the canteen's name.
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Resolve:
    """Resolve the open alert of ``rule`` for ``key``, if there is one."""

    rule: str
    key: str
    why: str
    at: dt.datetime
    by: str = RULES_ACTOR


Effect = Raise | Resolve
