"""The rules engine: typed events against small explicit per-key state, with the clock passed in.

Records arrive in spool order (:meth:`RulesEngine.process`); timers for deadlines, durations and silence fire
from :meth:`RulesEngine.tick`, so the rules about what did NOT happen fire even when nothing arrives. Each unit
of work is one transaction over alerts, state and checkpoint (see :mod:`rules.alerts`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any, Literal
from zoneinfo import ZoneInfo

import structlog

from devices.decode import decode
from devices.messages import (
    AiViolation,
    CabinetReading,
    DeviceStatus,
    SampleDisposed,
    SampleRetained,
    TestResult,
)
from devices.registry import Canteen, Registry
from devices.topics import Channel, DeviceKind
from gateway.spool import SpoolRecord
from rules.alerts import Alert, RulesStore, Severity
from rules.config import RulesConfig
from rules.messages import phrase, render
from rules.verdict import platform_verdict
from shian.clock import Clock

log = structlog.get_logger("shian.rules")

RULES_ACTOR = "rules"


def _iso(instant: dt.datetime) -> str:
    return instant.astimezone(dt.UTC).isoformat()


def _at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


class RulesEngine:
    def __init__(self, registry: Registry, config: RulesConfig, store: RulesStore, clock: Clock) -> None:
        self.registry = registry
        self.config = config
        self.store = store
        self.clock = clock
        self.tz = ZoneInfo(registry.timezone)
        self.state: dict[str, dict[str, Any]] = store.load_state()
        self._dirty: set[tuple[str, str]] = set()

    # --- state --------------------------------------------------------------------------------------------

    def _get(self, ns: str, key: str, default: Any = None) -> Any:
        return self.state.get(ns, {}).get(key, default)

    def _put(self, ns: str, key: str, value: Any) -> None:
        if value is None:
            self.state.get(ns, {}).pop(key, None)
        else:
            self.state.setdefault(ns, {})[key] = value
        self._dirty.add((ns, key))

    def _flush(self) -> None:
        for ns, key in self._dirty:
            self.store.put_state(ns, key, self.state.get(ns, {}).get(key))
        self._dirty.clear()

    # --- units of work ------------------------------------------------------------------------------------

    def process(self, records: Sequence[SpoolRecord]) -> None:
        """Apply records (in spool order) and the timers, then commit state, alerts and checkpoint together."""
        if not records:
            return
        with self.store.transaction():
            for record in records:
                if record.seq <= self.store.checkpoint():
                    continue  # already applied before a crash: never twice
                self._on_record(record)
                self.store.set_checkpoint(record.seq)
            self._timers(self.clock.now())
            self._flush()

    def tick(self) -> None:
        with self.store.transaction():
            self._timers(self.clock.now())
            self._flush()

    # --- alerts -------------------------------------------------------------------------------------------

    def _canteen(self, canteen_id: str) -> Canteen | None:
        return self.registry.canteen(canteen_id)

    def _raise(
        self,
        rule: str,
        severity: Severity,
        key: str,
        canteen_id: str,
        at: dt.datetime,
        *,
        device: str | None = None,
        subject: str | None = None,
        evidence: dict[str, Any],
        **params: Any,
    ) -> Alert:
        canteen = self._canteen(canteen_id)
        if "device_" in params:  # the template's {device}; ``device`` above is the alert's field
            params["device"] = params.pop("device_")
        message = render(rule, self.config.language, canteen=canteen.name if canteen else canteen_id, **params)
        alert, changed = self.store.raise_alert(
            dedup_key=f"{rule}|{key}",
            rule=rule,
            severity=severity,
            canteen_id=canteen_id,
            device_id=device,
            subject=subject,
            message=message,
            evidence=evidence,
            at=at,
        )
        if changed:
            log.warning(
                "alert.raised",
                rule=rule,
                severity=alert.severity,
                alert_id=alert.alert_id,
                canteen=canteen_id,
                device=device,
            )
        return alert

    def _resolve(self, rule: str, key: str, why: str, at: dt.datetime) -> None:
        alert = self.store.open_for(f"{rule}|{key}")
        if alert is not None:
            self.store.resolve(alert.alert_id, RULES_ACTOR, why, at)
            log.info("alert.resolved", rule=rule, alert_id=alert.alert_id, why=why)

    # --- per record ---------------------------------------------------------------------------------------

    def _on_record(self, record: SpoolRecord) -> None:
        message = decode(record.payload, DeviceKind(record.kind), Channel(record.channel))
        device, canteen = record.device_id, record.canteen_id
        self._put("last_seen", device, _iso(record.received_at))
        if self._get("offline", device) == "silent":
            self._put("offline", device, None)
            self._resolve("device.offline", device, "the device spoke again", record.received_at)
        evidence = {"msg_id": record.msg_id if not isinstance(message, DeviceStatus) else None, "seq": record.seq}
        if record.skew_flagged:
            self._raise(
                "device.clock_skew",
                "warning",
                device,
                canteen,
                record.received_at,
                device=device,
                evidence={**evidence, "skew_s": record.skew_s},
                device_=device,
                skew_s=round(record.skew_s),
            )
        match message:
            case TestResult():
                self._on_test(record, message, evidence)
            case SampleRetained():
                self._on_retained(record, message, evidence)
            case SampleDisposed():
                self._on_disposed(record, message, evidence)
            case CabinetReading():
                self._on_cabinet(record, message, evidence)
            case AiViolation():
                self._on_violation(record, message, evidence)
            case DeviceStatus():
                self._on_status(record, message, evidence)
            case _:
                pass  # heartbeats and stream reports only count as signs of life

    def _on_test(self, record: SpoolRecord, test: TestResult, evidence: dict[str, Any]) -> None:
        canteen, cfg = record.canteen_id, self.config
        self._put("tested_on", canteen, test.ts.astimezone(self.tz).date().isoformat())
        verdict = platform_verdict(test, cfg)
        evidence = {
            **evidence,
            "sample_no": test.sample_no,
            "value": test.value,
            "result": test.result,
            "platform_verdict": verdict,
        }
        params = {
            "sample_no": test.sample_no,
            "sample_name": test.sample_name,
            "batch_no": test.batch_no,
            "supplier": test.supplier,
            "item_code": test.item_code,
            "method_std": test.method_std,
            "value": test.value if test.value is not None else test.result,
        }

        def raise_for_sample(rule: str, severity: Severity, key: str, **extra: Any) -> None:
            self._raise(
                rule,
                severity,
                key,
                canteen,
                test.ts,
                device=record.device_id,
                subject=test.sample_no,
                evidence=evidence,
                **extra,
            )

        if test.retest_of:
            self._put("followups", f"{canteen}|{test.retest_of}", None)
            self._resolve("test.followup_missing", f"{canteen}|{test.retest_of}", "retested", test.ts)
        if verdict == "invalid":
            raise_for_sample(
                "test.invalid_control",
                "warning",
                f"{canteen}|{test.sample_no}",
                device_=record.device_id,
                control_delta_a=test.control_delta_a,
                minimum=cfg.control_delta_a_min,
            )
            return  # a void run proves nothing either way
        failed = test.result == "fail" or verdict == "fail"
        if failed:
            raise_for_sample("test.failed", "critical", f"{canteen}|{test.sample_no}|{test.item_code}", **params)
            if not test.retest_of:
                self._put(
                    "followups",
                    f"{canteen}|{test.sample_no}",
                    {
                        "deadline": _iso(test.ts + cfg.followup_within),
                        "device": record.device_id,
                        "msg_id": record.msg_id,
                    },
                )
        if verdict is not None and verdict != test.result:
            raise_for_sample(
                "test.verdict_mismatch",
                "warning",
                f"{canteen}|{test.sample_no}",
                device_result=test.result,
                platform_result=verdict,
                **params,
            )
        if verdict == "suspect" and not failed:
            raise_for_sample("test.suspect", "warning", f"{canteen}|{test.sample_no}", **params)

    def _on_retained(self, record: SpoolRecord, sample: SampleRetained, evidence: dict[str, Any]) -> None:
        canteen = record.canteen_id
        key = f"{canteen}|{sample.meal_date.isoformat()}|{sample.meal}"
        kept = set(self._get("samples", key, []))
        kept.add(sample.sample_id)
        self._put("samples", key, sorted(kept))
        self._put("retained_at", sample.sample_id, _iso(sample.ts))
        if sample.weight_g < self.config.sample_min_weight_g:
            self._raise(
                "sample.underweight",
                "warning",
                sample.sample_id,
                canteen,
                sample.ts,
                device=record.device_id,
                subject=sample.sample_id,
                evidence={**evidence, "weight_g": sample.weight_g},
                sample_id=sample.sample_id,
                dish_name=sample.dish_name,
                weight_g=sample.weight_g,
                minimum=self.config.sample_min_weight_g,
            )

    def _on_disposed(self, record: SpoolRecord, sample: SampleDisposed, evidence: dict[str, Any]) -> None:
        retained = self._get("retained_at", sample.sample_id)
        if retained is None:
            log.info("rules.disposal_of_unknown_sample", sample_id=sample.sample_id, device=record.device_id)
            return
        held = sample.ts - _at(retained)
        if held < self.config.sample_min_hold:
            self._raise(
                "sample.early_disposal",
                "critical",
                sample.sample_id,
                record.canteen_id,
                sample.ts,
                device=record.device_id,
                subject=sample.sample_id,
                evidence={**evidence, "retained_at": retained, "held_s": held.total_seconds()},
                sample_id=sample.sample_id,
                held_h=round(held.total_seconds() / 3600, 2),
                minimum_h=round(self.config.sample_min_hold.total_seconds() / 3600, 2),
            )
        self._put("retained_at", sample.sample_id, None)

    def _on_cabinet(self, record: SpoolRecord, reading: CabinetReading, evidence: dict[str, Any]) -> None:
        cfg, device = self.config, record.device_id
        cab = dict(self._get("cabinet", device, {}))
        cab["canteen"] = record.canteen_id
        cab["temp_c"] = reading.temp_c
        cab["msg_id"] = record.msg_id
        if reading.temp_c < cfg.cabinet_min_c or reading.temp_c > cfg.cabinet_max_c:
            cab.setdefault("out_since", _iso(reading.ts))
            cab.pop("in_since", None)
        else:
            cab.pop("out_since", None)
            cab.setdefault("in_since", _iso(reading.ts))
        if reading.door_open:
            cab.setdefault("door_since", _iso(reading.ts))
        else:
            cab.pop("door_since", None)
            self._resolve("cabinet.door_open", device, "door closed", reading.ts)
        self._put("cabinet", device, cab)
        self._check_cabinet(device, reading.ts)

    def _check_cabinet(self, device: str, now: dt.datetime) -> None:
        cfg = self.config
        cab = self._get("cabinet", device)
        if not cab:
            return
        canteen = cab["canteen"]
        evidence = {"msg_id": cab.get("msg_id"), "temp_c": cab.get("temp_c")}
        if "out_since" in cab:
            out_for = now - _at(cab["out_since"])
            if out_for >= cfg.temperature_warning_after:
                severity: Severity = "critical" if out_for >= cfg.temperature_critical_after else "warning"
                self._raise(
                    "cabinet.temperature",
                    severity,
                    device,
                    canteen,
                    now,
                    device=device,
                    evidence={**evidence, "out_since": cab["out_since"]},
                    device_=device,
                    temp_c=cab.get("temp_c"),
                    low=cfg.cabinet_min_c,
                    high=cfg.cabinet_max_c,
                    minutes=int(out_for.total_seconds() // 60),
                )
        elif "in_since" in cab and now - _at(cab["in_since"]) >= cfg.temperature_clear_after:
            self._resolve("cabinet.temperature", device, "back in range", now)
        if "door_since" in cab:
            open_for = now - _at(cab["door_since"])
            if open_for >= cfg.door_open_after:
                self._raise(
                    "cabinet.door_open",
                    "warning",
                    device,
                    canteen,
                    now,
                    device=device,
                    evidence={**evidence, "door_since": cab["door_since"]},
                    device_=device,
                    minutes=int(open_for.total_seconds() // 60),
                )

    def _on_violation(self, record: SpoolRecord, event: AiViolation, evidence: dict[str, Any]) -> None:
        if event.confidence < self.config.camera_confidence_min:
            return
        self._raise(
            "camera.violation",
            "warning",
            f"{record.device_id}|{event.violation}",
            record.canteen_id,
            event.ts,
            device=record.device_id,
            subject=event.violation,
            evidence={**evidence, "confidence": event.confidence, "snapshot_url": event.snapshot_url},
            device_=record.device_id,
            area=event.area,
            violation=event.violation,
            confidence=event.confidence,
        )

    def _on_status(self, record: SpoolRecord, status: DeviceStatus, evidence: dict[str, Any]) -> None:
        device = record.device_id
        if status.state == "offline":
            self._put("offline", device, "status")
            self._raise(
                "device.offline",
                "warning",
                device,
                record.canteen_id,
                record.received_at,
                device=device,
                evidence={**evidence, "state": "offline"},
                device_=device,
                kind=record.kind,
                why=phrase("reported_offline", self.config.language),
            )
        else:
            self._put("offline", device, None)
            self._resolve("device.offline", device, "the device is online", record.received_at)

    # --- timers -------------------------------------------------------------------------------------------

    def _timers(self, now: dt.datetime) -> None:
        since = self._get("meta", "since")
        if since is None:
            since = _iso(now)
            self._put("meta", "since", since)
        for key, followup in list(self.state.get("followups", {}).items()):
            if now >= _at(followup["deadline"]):
                canteen_id, sample_no = key.split("|", 1)
                self._raise(
                    "test.followup_missing",
                    "critical",
                    key,
                    canteen_id,
                    now,
                    device=followup["device"],
                    subject=sample_no,
                    evidence={"msg_id": followup["msg_id"]},
                    sample_no=sample_no,
                    hours=round(self.config.followup_within.total_seconds() / 3600, 2),
                )
                self._put("followups", key, None)
        for device in list(self.state.get("cabinet", {})):
            self._check_cabinet(device, now)
        for canteen in self.registry.canteens:
            self._coverage(canteen, now, _at(since))
            self._samples(canteen, now, _at(since))
            self._silence(canteen, now, _at(since))
        self._escalate(now)

    def _days(self, now: dt.datetime, since: dt.datetime) -> Iterable[dt.date]:
        """Today and yesterday (local), never before the engine started watching."""
        today = now.astimezone(self.tz).date()
        first = since.astimezone(self.tz).date()
        return [d for d in (today - dt.timedelta(days=1), today) if d >= first]

    def _coverage(self, canteen: Canteen, now: dt.datetime, since: dt.datetime) -> None:
        if canteen.testing_tier == "none":
            return
        for day in self._days(now, since):
            deadline = dt.datetime.combine(day, self.config.coverage_deadline, self.tz)
            key = f"{canteen.id}|{day.isoformat()}"
            if now < deadline or deadline < since or self._get("coverage_checked", key):
                continue
            self._put("coverage_checked", key, True)
            if not self.registry.is_school_day(canteen, day):
                continue
            if self._get("tested_on", canteen.id) != day.isoformat():
                self._raise(
                    "test.coverage_missing",
                    "warning",
                    key,
                    canteen.id,
                    now,
                    subject=day.isoformat(),
                    evidence={"date": day.isoformat()},
                    date=day.isoformat(),
                    deadline=self.config.coverage_deadline.strftime("%H:%M"),
                )

    def _samples(self, canteen: Canteen, now: dt.datetime, since: dt.datetime) -> None:
        for day in self._days(now, since):
            if not self.registry.is_school_day(canteen, day):
                continue
            for meal in canteen.meals:
                if day.isoweekday() not in meal.weekdays:
                    continue
                deadline = dt.datetime.combine(day, meal.end, self.tz) + self.config.sample_grace
                key = f"{canteen.id}|{day.isoformat()}|{meal.meal}"
                if now < deadline or deadline < since or self._get("samples_checked", key):
                    continue
                self._put("samples_checked", key, True)
                kept = len(self._get("samples", key, []))
                if kept < max(1, len(meal.dishes)):
                    self._raise(
                        "sample.missing",
                        "critical",
                        key,
                        canteen.id,
                        now,
                        subject=f"{day} {meal.meal}",
                        evidence={"kept": kept, "dishes": len(meal.dishes)},
                        date=day.isoformat(),
                        meal=meal.meal,
                        count=kept,
                        dishes=len(meal.dishes),
                    )

    def _kitchen_opened(self, canteen: Canteen, now: dt.datetime) -> dt.datetime | None:
        """When the kitchen hours ``now`` falls in began (None outside kitchen hours)."""
        local = now.astimezone(self.tz)
        if not self.registry.is_school_day(canteen, local.date()):
            return None
        for meal in canteen.meals:
            if local.isoweekday() not in meal.weekdays:
                continue
            start = dt.datetime.combine(local.date(), meal.start, self.tz) - self.config.kitchen_opens_before_meal
            if start <= local <= dt.datetime.combine(local.date(), meal.end, self.tz):
                return start
        return None

    def _silence(self, canteen: Canteen, now: dt.datetime, since: dt.datetime) -> None:
        for device in canteen.devices:
            if device.revoked or self._get("offline", device.id):
                continue
            last = self._get("last_seen", device.id)
            silent_since = _at(last) if last else since
            if device.kind is DeviceKind.CAMERA:
                opened = self._kitchen_opened(canteen, now)
                if opened is None:
                    continue
                silent_since = max(silent_since, opened)  # a camera's silence counts from the kitchen's opening
            limit = dt.timedelta(seconds=device.heartbeat_s * self.config.offline_missed_heartbeats)
            if now - silent_since >= limit:
                self._put("offline", device.id, "silent")
                self._raise(
                    "device.offline",
                    "warning",
                    device.id,
                    canteen.id,
                    now,
                    device=device.id,
                    evidence={"last_seen": last},
                    device_=device.id,
                    kind=device.kind.value,
                    why=phrase("silent_since", self.config.language, time=f"{silent_since.astimezone(self.tz):%H:%M}"),
                )

    def _escalate(self, now: dt.datetime) -> None:
        """Unacknowledged critical alerts go up: school -> district -> city, after the configured delays."""
        order = {"school": 0, "district": 1, "city": 2}
        delays = self.config.escalate_after
        for alert in self.store.alerts(state="open"):
            if alert.severity != "critical":
                continue
            age = now - alert.opened_at
            target: Literal["district", "city"] | None = None
            if len(delays) > 1 and age >= delays[1]:
                target = "city"
            elif delays and age >= delays[0]:
                target = "district"
            if target and order[target] > order[alert.escalation]:
                self.store.escalate(alert.alert_id, target, now)
                log.warning("alert.escalated", alert_id=alert.alert_id, to=target)
