"""The rules engine core: records in spool order and timer ticks go to every rule unit (``rules/units``); the
effects they return are applied to the alert store, and the units' changed state and the checkpoint are saved,
all in one transaction per unit of work. A crash replays records from the checkpoint without raising anything
twice. Time comes from the clock passed in, so the rules about what did NOT happen are tested by moving it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

import structlog

from devices.registry import Registry
from rules.alerts import Severity
from rules.config import RulesConfig
from rules.effects import PLATFORM, Effect, Raise, Resolve
from rules.escalation import escalate, remind
from rules.messages import render
from rules.state import Table
from rules.store import RulesStore
from rules.units import UNITS, Observation, RuleContext, RuleUnit
from rules.units.base import Pictures
from runtime.clock import Clock
from spool import SpoolRecord, hydrate

#: While records stream in, the timers (silence, deadlines, escalation) run at most once per this much event
#: time: they read every canteen, and the shortest of them is a camera's 90 s of silence. ``tick`` always runs
#: them.
TIMER_STEP = dt.timedelta(seconds=5)

log = structlog.get_logger("shian.rules")


class RulesEngine:
    """Applies records and ticks to the rule units; one transaction per :meth:`process` or :meth:`tick`."""

    def __init__(
        self,
        registry: Registry,
        config: RulesConfig,
        store: RulesStore,
        clock: Clock,
        units: Sequence[type[RuleUnit]] = UNITS,
        *,
        pictures: Pictures | None = None,
    ) -> None:
        self.registry = registry
        self.config = config
        self.store = store
        self.clock = clock
        #: The inspectors' records (rules/inspections.py), in the store's file: their deadlines are rules too.
        self.inspections = store.inspections
        context = RuleContext(
            registry,
            config,
            menu=store.menus.dishes,
            overdue=self.inspections.overdue,
            picture=pictures or (lambda camera: None),
        )
        self.units = [unit(context) for unit in units]
        #: When the engine began watching: no deadline before it is judged.
        self._since = Table[dt.datetime]("meta", dt.datetime)
        #: When the timers last ran (not kept: after a restart they run at once).
        self._timers_at: dt.datetime | None = None
        self._tables = [self._since, *(table for unit in self.units for table in unit.tables())]
        saved = store.load_state()
        for table in self._tables:
            table.load(saved.get(table.namespace, {}))

    def process(self, records: Sequence[SpoolRecord], *, caught_up: bool = True) -> None:
        """Apply records (in spool order) and the timers (every ``TIMER_STEP`` of event time), then commit
        alerts, state and checkpoint together.

        ``caught_up``: whether these reach the spool's head. When they do not, the timers run at the engine's
        watermark — the receive time of the last record applied, never later than the clock — so that a device
        whose records are still waiting in the spool is not called silent, nor a deadline judged, for a moment
        the engine has not read up to yet."""
        if not records:
            return
        with self.store.transaction():
            checkpoint = self.store.checkpoint()
            for record in records:
                if record.seq <= checkpoint:
                    continue  # already applied before a crash: never twice
                seen = Observation(record, hydrate(record))
                for unit in self.units:
                    self._apply(unit.on_record(seen))
            self.store.set_checkpoint(max(checkpoint, records[-1].seq))
            now = self.clock.now()
            watermark = now if caught_up else min(now, records[-1].received_at)
            if self._timers_at is None or watermark - self._timers_at >= TIMER_STEP:
                self._timers(watermark)
            self._save_state()

    def close(self) -> None:
        """Close the store and the inspection book."""
        self.inspections.close()
        self.store.close()

    def tick(self) -> None:
        with self.store.transaction():
            self._timers(self.clock.now())
            self._save_state()

    def report(self, rule: str, severity: Severity, at: dt.datetime, evidence: dict[str, Any], **params: Any) -> None:
        """Raise (or update) an alert about the platform itself, e.g. a storage backlog filling the disk."""
        with self.store.transaction():
            self._apply([Raise(rule, severity, PLATFORM, PLATFORM, at, evidence, params=params)])

    def clear(self, rule: str, why: str, at: dt.datetime, *, by: str) -> None:
        """Resolve the platform alert of ``rule``, if one is open."""
        with self.store.transaction():
            self._apply([Resolve(rule, PLATFORM, why, at, by)])

    def _timers(self, now: dt.datetime) -> None:
        self._timers_at = now
        since = self._since.get("since")
        if since is None:
            since = now
            self._since.put("since", since)
        for unit in self.units:
            self._apply(unit.on_tick(now, since))
        escalate(self.store, self.config, now)
        remind(self.store, self.config, now)

    def _apply(self, effects: Iterable[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, Raise):
                self._raise(effect)
            else:
                self._resolve(effect)

    def _raise(self, effect: Raise) -> None:
        canteen = self.registry.canteen(effect.canteen_id)
        name = canteen.name if canteen else effect.canteen_id
        alert, changed = self.store.raise_alert(
            dedup_key=f"{effect.rule}|{effect.key}",
            rule=effect.rule,
            severity=effect.severity,
            canteen_id=effect.canteen_id,
            device_id=effect.device,
            subject=effect.subject,
            message=render(effect.rule, self.config.language, self.registry.catalogue, canteen=name, **effect.params),
            evidence=effect.evidence,
            at=effect.at,
        )
        if changed:
            log.warning(
                "alert.raised",
                rule=effect.rule,
                severity=alert.severity,
                alert_id=alert.alert_id,
                canteen=effect.canteen_id,
                device=effect.device,
            )

    def _resolve(self, effect: Resolve) -> None:
        alert = self.store.open_for(f"{effect.rule}|{effect.key}")
        if alert is not None:
            self.store.resolve(alert.alert_id, effect.by, effect.why, effect.at)
            log.info("alert.resolved", rule=effect.rule, alert_id=alert.alert_id, why=effect.why)

    def _save_state(self) -> None:
        for table in self._tables:
            for key, value in table.changes():
                self.store.put_state(table.namespace, key, value)
