"""The rules engine's durable state, in one SQLite file: alerts, their audit log, the outbox of what was
published, the engine's per-key state and its checkpoint in the spool, and the canteens' menus beside them.

One open alert per dedup key (a partial unique index makes two impossible); repeats update it. Every state
change is appended to an audit log that is never rewritten. The engine's state and its checkpoint live in the
same file, so one transaction moves all of them together: a crash replays records from the checkpoint without
raising anything twice. The file has one owner, :class:`RulesStore`, whose connection the menus
(:class:`rules.menus.MenuBook`) share.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from rules.alerts import (
    SEVERITY_RANK,
    Alert,
    AlertError,
    AlertQuery,
    Disposition,
    Handled,
    Review,
    Severity,
    State,
    alert_id_for,
)
from rules.inspections import InspectionBook
from rules.menus import MenuBook
from rules.store_schema import INBOX_COLUMNS, INBOX_INDEXES, SCHEMA
from runtime.sqlite import open_database


class RulesStore:
    """Alerts, audit log, engine state and checkpoint. Use :meth:`transaction` around each unit of work."""

    MAX_EVIDENCE = 50

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = open_database(path)
        self._db.executescript(SCHEMA)
        self._add_inbox_columns()
        self._lock = threading.RLock()
        self._depth = 0
        #: The canteens' menus, on this connection and in its transactions.
        self.menus = MenuBook(self._db, self.transaction)
        #: The offline inspections and the plan's secret, on this connection.
        self.inspections = InspectionBook.on(self._db)

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

    def _add_inbox_columns(self) -> None:
        present = {row[1] for row in self._db.execute("PRAGMA table_info(alerts)")}
        missing = {name: source for name, source in INBOX_COLUMNS.items() if name not in present}
        if missing:
            self._db.execute("BEGIN IMMEDIATE")
            for name in missing:
                self._db.execute(f"ALTER TABLE alerts ADD COLUMN {name}")
            assignments = ", ".join(f"{name} = {source}" for name, source in missing.items())
            self._db.execute(f"UPDATE alerts SET {assignments}")
            self._db.execute("COMMIT")
        self._db.executescript(INBOX_INDEXES)

    # --- alerts ---------------------------------------------------------------------------------------------

    def _save(self, alert: Alert) -> None:
        self._db.execute(
            "INSERT INTO alerts (alert_id, dedup_key, body, state, version, canteen_id, rule, severity, opened_ts,"
            " escalation, noticed_ts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (alert_id) DO UPDATE SET"
            " body = excluded.body, state = excluded.state, version = excluded.version,"
            " severity = excluded.severity, escalation = excluded.escalation, noticed_ts = excluded.noticed_ts",
            (
                alert.alert_id,
                alert.dedup_key,
                alert.model_dump_json(),
                alert.state,
                self.version_of(alert),
                alert.canteen_id,
                alert.rule,
                alert.severity,
                alert.opened_at.timestamp(),
                alert.escalation,
                (alert.reminded_at or alert.opened_at).timestamp(),
            ),
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

    def search(self, query: AlertQuery, *, limit: int = 50, offset: int = 0) -> tuple[list[Alert], int]:
        """One page of the alerts ``query`` selects, newest first, and how many it selects in all."""
        where, params = query.where()
        rows = self._db.execute(
            f"SELECT body FROM alerts WHERE {where} ORDER BY rowid DESC LIMIT ? OFFSET ?", (*params, limit, offset)
        ).fetchall()
        (total,) = self._db.execute(f"SELECT COUNT(*) FROM alerts WHERE {where}", params).fetchone()
        return [Alert.model_validate_json(r[0]) for r in rows], int(total)

    def open_by(self, canteens: frozenset[str] | None) -> list[tuple[str, str, int]]:
        """(canteen, rule, how many) of the alerts not yet resolved, in ``canteens`` (None: all)."""
        where, params = AlertQuery(canteens=canteens, active=True).where()
        rows = self._db.execute(
            f"SELECT canteen_id, rule, COUNT(*) FROM alerts WHERE {where} GROUP BY 1, 2",
            params,
        ).fetchall()
        return [(str(r[0]), str(r[1]), int(r[2])) for r in rows]

    def escalation_candidates(self, opened_before: dt.datetime) -> list[Alert]:
        """Open critical alerts opened before ``opened_before`` that have not reached the city: by index, however
        many other alerts are open."""
        rows = self._db.execute(
            "SELECT body FROM alerts INDEXED BY alerts_to_escalate"  # SQLite's own choice was alerts_by_state
            " WHERE state = 'open' AND severity = 'critical' AND escalation != 'city' AND opened_ts <= ?"
            " ORDER BY opened_ts",
            (opened_before.timestamp(),),
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

    def handled(self, start: dt.datetime, end: dt.datetime) -> list[Handled]:
        """Every alert opened in [start, end) with when it was first acknowledged and who resolved it."""
        rows = self._db.execute(
            "SELECT body,"
            " (SELECT MIN(at) FROM audit WHERE audit.alert_id = alerts.alert_id AND action = 'acknowledged'),"
            " (SELECT actor FROM audit WHERE audit.alert_id = alerts.alert_id AND action = 'resolved'"
            "  ORDER BY id DESC LIMIT 1)"
            " FROM alerts WHERE opened_ts >= ? AND opened_ts < ? ORDER BY opened_ts",
            (start.timestamp(), end.timestamp()),
        )
        return [
            Handled(Alert.model_validate_json(body), dt.datetime.fromisoformat(acked) if acked else None, resolver)
            for body, acked, resolver in rows
        ]

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

    def resolve(
        self,
        alert_id: str,
        by: str,
        why: str,
        at: dt.datetime,
        *,
        disposition: Disposition | None = None,
        review: Review | None = None,
    ) -> Alert:
        """Close an alert; a person closing a failed test says what was done with the food (``disposition``),
        one closing a camera violation whether the AI was right (``review``)."""
        with self.transaction():
            alert = self.get(alert_id)
            if alert is None:
                raise AlertError(f"no alert {alert_id}")
            if alert.state == "resolved":
                raise AlertError(f"alert {alert_id} is already resolved")
            update: dict[str, Any] = {"state": "resolved", "resolved_at": at, "updated_at": at}
            detail: dict[str, Any] = {"why": why}
            if disposition is not None:
                update["disposition"] = detail["disposition"] = disposition
            if review is not None:
                update["review"] = detail["review"] = review
            alert = alert.model_copy(update=update)
            self._save(alert)
            self._audit(alert, "resolved", by, at, **detail)
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

    def remind(self, alert_id: str, at: dt.datetime) -> Alert:
        """One more reminder of an unacknowledged alert: its notifiers hear it again."""
        with self.transaction():
            alert = self.get(alert_id)
            if alert is None:
                raise AlertError(f"no alert {alert_id}")
            alert = alert.model_copy(update={"reminders": alert.reminders + 1, "reminded_at": at})
            self._save(alert)
            self._audit(alert, "reminded", "rules", at, reminders=alert.reminders)
            return alert

    def due_reminders(self, last_before: dt.datetime) -> list[Alert]:
        """Unacknowledged critical alerts whose last reminder (or opening) is before ``last_before``: chosen by
        the ``alerts_to_remind`` index, so a tick costs what is due, not what is open."""
        rows = self._db.execute(
            "SELECT body FROM alerts INDEXED BY alerts_to_remind"
            " WHERE state = 'open' AND severity = 'critical' AND noticed_ts <= ?"
            " ORDER BY opened_ts",
            (last_before.timestamp(),),
        ).fetchall()
        return [Alert.model_validate_json(r[0]) for r in rows]

    def notified(self, alert_id: str, to: str, at: dt.datetime, *, error: str | None = None) -> None:
        """Who a notification of the alert went to, or that it could not be delivered, in the audit log."""
        alert = self.get(alert_id)
        if alert is None:
            return
        with self.transaction():
            if error is None:
                self._audit(alert, "notified", "rules", at, to=to)
            else:
                self._audit(alert, "notify_failed", "rules", at, to=to, error=error[:300])

    def refuse(self, alert_id: str, actor: str, why: str, at: dt.datetime) -> None:
        """Record a refused action (an acknowledgement from an account that may not give it)."""
        alert = self.get(alert_id)
        if alert is not None:
            with self.transaction():
                self._audit(alert, "refused", actor, at, why=why)

    # --- the outbox: every change is published once, even across crashes ----------------------------------------

    @staticmethod
    def version_of(alert: Alert) -> str:
        """What changes with every change a notifier must hear of (state, severity, escalation, evidence,
        reminders); the outbox compares it."""
        return (
            f"{alert.updated_at.isoformat()}|{alert.state}|{alert.severity}|{alert.escalation}|{len(alert.evidence)}"
            f"|{alert.reminders}"
        )

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
                (alert.alert_id, self.version_of(alert)),
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
