"""The rules store's tables and indexes (``rules.store.RulesStore`` owns the file and applies them).

Columns copied out of an alert's JSON body let the inbox, escalation and reminders filter by index: their cost
follows the alerts they return, not the alerts that are open.
"""

from __future__ import annotations

SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    alert_id TEXT PRIMARY KEY,
    dedup_key TEXT NOT NULL,
    body TEXT NOT NULL,
    state TEXT NOT NULL,
    version TEXT NOT NULL             -- changes with every state change; the outbox compares it
);
CREATE UNIQUE INDEX IF NOT EXISTS one_open_alert_per_key ON alerts (dedup_key) WHERE state != 'resolved';
CREATE INDEX IF NOT EXISTS alerts_by_state ON alerts (state);
-- Raising counts a key's earlier occurrences: without this, a scan of every alert ever raised.
CREATE INDEX IF NOT EXISTS alerts_by_key ON alerts (dedup_key);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    alert_id TEXT NOT NULL,
    action TEXT NOT NULL,
    actor TEXT NOT NULL,
    detail TEXT NOT NULL
);
-- An alert's history (the console's alert page, the bulletins' response times) without a scan of the log.
CREATE INDEX IF NOT EXISTS audit_by_alert ON audit (alert_id);
CREATE TRIGGER IF NOT EXISTS audit_is_append_only BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is never rewritten'); END;
CREATE TRIGGER IF NOT EXISTS audit_is_never_deleted BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is never rewritten'); END;
CREATE TABLE IF NOT EXISTS published (alert_id TEXT PRIMARY KEY, version TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS engine_state (ns TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
                                         PRIMARY KEY (ns, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS engine_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

#: Columns copied out of the body so that the console's inbox filters by index, not by parsing JSON: a store
#: made before they existed gains them (and their values) when it is opened.
INBOX_COLUMNS = {
    "canteen_id": "json_extract(body, '$.canteen_id')",
    "rule": "json_extract(body, '$.rule')",
    "severity": "json_extract(body, '$.severity')",
    "opened_ts": "(julianday(json_extract(body, '$.opened_at')) - 2440587.5) * 86400.0",
    "escalation": "json_extract(body, '$.escalation')",
    #: When the alert was last brought to someone's notice: its last reminder, else its opening.
    "noticed_ts": "(julianday(COALESCE(json_extract(body, '$.reminded_at'), json_extract(body, '$.opened_at')))"
    " - 2440587.5) * 86400.0",
}
INBOX_INDEXES = """
CREATE INDEX IF NOT EXISTS alerts_by_canteen ON alerts (canteen_id, state);
CREATE INDEX IF NOT EXISTS alerts_by_rule ON alerts (rule, state);
CREATE INDEX IF NOT EXISTS alerts_by_canteen_rule ON alerts (canteen_id, rule);
CREATE INDEX IF NOT EXISTS alerts_by_opened ON alerts (opened_ts);
-- The few alerts escalation may still move: without it, every step read every open alert.
CREATE INDEX IF NOT EXISTS alerts_to_escalate ON alerts (opened_ts)
    WHERE state = 'open' AND severity = 'critical' AND escalation != 'city';
-- The alerts due a reminder, by when they were last noticed: without it, every tick parsed every open alert.
CREATE INDEX IF NOT EXISTS alerts_to_remind ON alerts (noticed_ts) WHERE state = 'open' AND severity = 'critical';
"""
