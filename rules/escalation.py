"""Unacknowledged critical alerts go up: school -> district -> city, after the configured delays; and are
repeated to whoever is told every ``remind_every`` until somebody acknowledges them."""

from __future__ import annotations

import datetime as dt
from typing import Literal

import structlog

from rules.alerts import ESCALATION_LEVELS
from rules.config import RulesConfig
from rules.store import RulesStore

log = structlog.get_logger("shian.rules")


def escalate(store: RulesStore, config: RulesConfig, now: dt.datetime) -> None:
    delays = config.escalate_after
    if not delays:
        return
    for alert in store.escalation_candidates(now - delays[0]):
        age = now - alert.opened_at
        target: Literal["district", "city"] | None = None
        if len(delays) > 1 and age >= delays[1]:
            target = "city"
        elif delays and age >= delays[0]:
            target = "district"
        if target and ESCALATION_LEVELS.index(target) > ESCALATION_LEVELS.index(alert.escalation):
            store.escalate(alert.alert_id, target, now)
            log.warning("alert.escalated", alert_id=alert.alert_id, to=target)


def remind(store: RulesStore, config: RulesConfig, now: dt.datetime) -> None:
    if config.remind_every is None:
        return
    for alert in store.due_reminders(now - config.remind_every):
        store.remind(alert.alert_id, now)
        log.info("alert.reminded", alert_id=alert.alert_id, reminders=alert.reminders + 1)
