"""Alerts (docs/contract.md, "Alerts") and the rules engine's durable state, in one SQLite file.

One open alert per dedup key (a partial unique index makes two impossible); repeats update it. Every state
change is appended to an audit log that is never rewritten. The engine's per-key state and its checkpoint in
the spool live in the same file, so one transaction moves all three together: a crash replays records from
the checkpoint without raising anything twice.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from runtime.errors import ShianError
from runtime.sqlite import open_database

Severity = Literal["info", "warning", "critical"]
State = Literal["open", "acknowledged", "resolved"]
SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}
ESCALATION_LEVELS = ("school", "district", "city")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    alert_id TEXT PRIMARY KEY,
    dedup_key TEXT NOT NULL,
    body TEXT NOT NULL,
    state TEXT NOT NULL,
    version TEXT NOT NULL             -- changes with every state change; the outbox compares it
);
CREATE UNIQUE INDEX IF NOT EXISTS one_open_alert_per_key ON alerts (dedup_key) WHERE state != 'resolved';
CREATE INDEX IF NOT EXISTS alerts_by_state ON alerts (state);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    alert_id TEXT NOT NULL,
    action TEXT NOT NULL,
    actor TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS audit_is_append_only BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is never rewritten'); END;
CREATE TRIGGER IF NOT EXISTS audit_is_never_deleted BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is never rewritten'); END;
CREATE TABLE IF NOT EXISTS published (alert_id TEXT PRIMARY KEY, version TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS engine_state (ns TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
                                         PRIMARY KEY (ns, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS engine_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


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


class AlertError(ShianError, ValueError):
    """An operator's change an alert does not allow (no such alert, already resolved, not open)."""

    pass


class RulesStore:
    """Alerts, audit log, engine state and checkpoint. Use :meth:`transaction` around each unit of work."""

    MAX_EVIDENCE = 50

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = open_database(path)
        self._db.executescript(_SCHEMA)
        self._lock = threading.RLock()
        self._depth = 0

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._lock:
            outer = self._depth == 0
            if outer:
                self._db.execute("BEGIN IMMEDIATE")
            self._depth += 1
            try:
                yield
            except BaseException:
                self._depth -= 1
                if outer:
                    self._db.execute("ROLLBACK")
                raise
            self._depth -= 1
            if outer:
                self._db.execute("COMMIT")

    # --- alerts ---------------------------------------------------------------------------------------------

    def _save(self, alert: Alert) -> None:
        self._db.execute(
            "INSERT INTO alerts (alert_id, dedup_key, body, state, version) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (alert_id) DO UPDATE SET body = excluded.body, state = excluded.state, "
            "version = excluded.version",
            (alert.alert_id, alert.dedup_key, alert.model_dump_json(), alert.state, self._version(alert)),
        )

    def _audit(self, alert: Alert, action: str, actor: str, at: dt.datetime, **detail: Any) -> None:
        self._db.execute(
            "INSERT INTO audit (at, alert_id, action, actor, detail) VALUES (?, ?, ?, ?, ?)",
            (at.isoformat(), alert.alert_id, action, actor, json.dumps(detail, ensure_ascii=False, default=str)),
        )

    def open_for(self, dedup_key: str) -> Alert | None:
        row = self._db.execute(
            "SELECT body FROM alerts WHERE dedup_key = ? AND state != 'resolved'", (dedup_key,)
        ).fetchone()
        return Alert.model_validate_json(row[0]) if row else None

    def get(self, alert_id: str) -> Alert | None:
        row = self._db.execute("SELECT body FROM alerts WHERE alert_id = ?", (alert_id,)).fetchone()
        return Alert.model_validate_json(row[0]) if row else None

    def alerts(self, state: State | None = None, limit: int = 1000, offset: int = 0) -> list[Alert]:
        """The newest ``limit`` alerts (after skipping ``offset``), of one state or all; :meth:`count` says how
        many there are in all."""
        rows = self._db.execute(
            "SELECT body FROM alerts WHERE (? IS NULL OR state = ?) ORDER BY rowid DESC LIMIT ? OFFSET ?",
            (state, state, limit, offset),
        ).fetchall()
        return [Alert.model_validate_json(r[0]) for r in rows]

    def count(self, state: State | None = None, severity: Severity | None = None) -> int:
        """How many alerts there are, of one state and severity or all (exact, whatever their number)."""
        (total,) = self._db.execute(
            "SELECT COUNT(*) FROM alerts WHERE (? IS NULL OR state = ?)"
            " AND (? IS NULL OR json_extract(body, '$.severity') = ?)",
            (state, state, severity, severity),
        ).fetchone()
        return int(total)

    def audit_for(self, alert_id: str) -> list[dict[str, Any]]:
        rows = self._db.execute(
            "SELECT at, action, actor, detail FROM audit WHERE alert_id = ? ORDER BY id", (alert_id,)
        ).fetchall()
        return [{"at": r[0], "action": r[1], "actor": r[2], **json.loads(r[3])} for r in rows]

    def raise_alert(
        self,
        *,
        dedup_key: str,
        rule: str,
        severity: Severity,
        canteen_id: str,
        message: str,
        evidence: dict[str, Any],
        at: dt.datetime,
        device_id: str | None = None,
        subject: str | None = None,
    ) -> tuple[Alert, bool]:
        """Open an alert for the key, or update the one that is open. Returns (alert, changed)."""
        with self.transaction():
            current = self.open_for(dedup_key)
            if current is None:
                (occurrences,) = self._db.execute(
                    "SELECT COUNT(*) FROM alerts WHERE dedup_key = ?", (dedup_key,)
                ).fetchone()
                alert = Alert(
                    alert_id=alert_id_for(dedup_key, occurrences + 1),
                    rule=rule,
                    severity=severity,
                    state="open",
                    canteen_id=canteen_id,
                    device_id=device_id,
                    subject=subject,
                    message=message,
                    evidence=[evidence],
                    opened_at=at,
                    updated_at=at,
                    dedup_key=dedup_key,
                )
                self._save(alert)
                self._audit(alert, "opened", "rules", at, severity=severity, message=message, evidence=evidence)
                return alert, True
            if evidence in current.evidence and SEVERITY_RANK[severity] <= SEVERITY_RANK[current.severity]:
                return current, False  # the same cause again (a replay): nothing changes
            worse = SEVERITY_RANK[severity] > SEVERITY_RANK[current.severity]
            alert = current.model_copy(
                update={
                    "severity": severity if worse else current.severity,
                    "message": message if worse else current.message,
                    "evidence": [*current.evidence, evidence][-self.MAX_EVIDENCE :],
                    "updated_at": at,
                }
            )
            self._save(alert)
            self._audit(
                alert,
                "escalated_severity" if worse else "updated",
                "rules",
                at,
                severity=alert.severity,
                evidence=evidence,
            )
            return alert, True

    def acknowledge(self, alert_id: str, by: str, note: str | None, at: dt.datetime) -> Alert:
        with self.transaction():
            alert = self.get(alert_id)
            if alert is None:
                raise AlertError(f"no alert {alert_id}")
            if alert.state != "open":
                raise AlertError(f"alert {alert_id} is {alert.state}, not open")
            alert = alert.model_copy(
                update={"state": "acknowledged", "acked_by": by, "ack_note": note, "updated_at": at}
            )
            self._save(alert)
            self._audit(alert, "acknowledged", by, at, note=note)
            return alert

    def resolve(self, alert_id: str, by: str, why: str, at: dt.datetime) -> Alert:
        with self.transaction():
            alert = self.get(alert_id)
            if alert is None:
                raise AlertError(f"no alert {alert_id}")
            if alert.state == "resolved":
                raise AlertError(f"alert {alert_id} is already resolved")
            alert = alert.model_copy(update={"state": "resolved", "resolved_at": at, "updated_at": at})
            self._save(alert)
            self._audit(alert, "resolved", by, at, why=why)
            return alert

    def escalate(self, alert_id: str, level: Literal["district", "city"], at: dt.datetime) -> Alert:
        with self.transaction():
            alert = self.get(alert_id)
            if alert is None:
                raise AlertError(f"no alert {alert_id}")
            alert = alert.model_copy(update={"escalation": level, "updated_at": at})
            self._save(alert)
            self._audit(alert, "escalated", "rules", at, to=level)
            return alert

    def refuse(self, alert_id: str, actor: str, why: str, at: dt.datetime) -> None:
        """Record a refused action (an acknowledgement from an account that may not give it)."""
        alert = self.get(alert_id)
        if alert is not None:
            with self.transaction():
                self._audit(alert, "refused", actor, at, why=why)

    # --- the outbox: every change is published once, even across crashes ----------------------------------------

    @staticmethod
    def _version(alert: Alert) -> str:
        return f"{alert.updated_at.isoformat()}|{alert.state}|{alert.severity}|{alert.escalation}|{len(alert.evidence)}"

    def unpublished(self) -> list[Alert]:
        """Alerts changed since they were last published: found by the index, not by reading every alert."""
        rows = self._db.execute(
            "SELECT a.body FROM alerts a LEFT JOIN published p ON p.alert_id = a.alert_id "
            "WHERE p.version IS NULL OR p.version != a.version ORDER BY a.rowid"
        ).fetchall()
        return [Alert.model_validate_json(row[0]) for row in rows]

    def mark_published(self, alert: Alert) -> None:
        with self.transaction():
            self._db.execute(
                "INSERT INTO published (alert_id, version) VALUES (?, ?) "
                "ON CONFLICT (alert_id) DO UPDATE SET version = excluded.version",
                (alert.alert_id, self._version(alert)),
            )

    # --- engine state ---------------------------------------------------------------------------------------

    def load_state(self) -> dict[str, dict[str, Any]]:
        state: dict[str, dict[str, Any]] = {}
        for ns, key, value in self._db.execute("SELECT ns, key, value FROM engine_state"):
            state.setdefault(ns, {})[key] = json.loads(value)
        return state

    def put_state(self, ns: str, key: str, value: Any) -> None:
        if value is None:
            self._db.execute("DELETE FROM engine_state WHERE ns = ? AND key = ?", (ns, key))
        else:
            self._db.execute(
                "INSERT INTO engine_state (ns, key, value) VALUES (?, ?, ?) "
                "ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value",
                (ns, key, json.dumps(value, ensure_ascii=False)),
            )

    def checkpoint(self) -> int:
        row = self._db.execute("SELECT value FROM engine_meta WHERE key = 'checkpoint'").fetchone()
        return int(row[0]) if row else 0

    def set_checkpoint(self, seq: int) -> None:
        self._db.execute(
            "INSERT INTO engine_meta (key, value) VALUES ('checkpoint', ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (str(seq),),
        )
