"""Rapid tests: a failed, suspect or void run, a device verdict the platform disagrees with, and a failed sample
not retested in time (a day without any test is ``rules.units.coverage``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from devices.messages import TestResult
from rules.alerts import Severity
from rules.effects import Effect, Raise, Resolve
from rules.state import Table
from rules.units.base import Observation, RuleContext, RuleUnit
from rules.units.verdict import judged_verdict, platform_verdict


@dataclass
class Followup:
    """A failed sample waiting for its retest."""

    deadline: dt.datetime
    device: str
    msg_id: str
    sample_name: str = ""


class TestsUnit(RuleUnit):
    """``test.*`` but coverage: failed, suspect, void and mismatched tests, overdue retests."""

    def __init__(self, context: RuleContext) -> None:
        super().__init__(context)
        #: "canteen|sample_no" -> the failed sample's retest deadline
        self.followups = Table[Followup]("followups", Followup)

    def on_record(self, seen: Observation) -> list[Effect]:
        test = seen.message
        if not isinstance(test, TestResult):
            return []
        record, cfg = seen.record, self.config
        canteen = record.canteen_id
        items = self.context.registry.catalogue
        verdict = platform_verdict(test, cfg, items)
        judged = judged_verdict(test, cfg, items)
        evidence = {
            **seen.evidence,
            "sample_no": test.sample_no,
            "sample_name": test.sample_name,
            "supplier": test.supplier,
            "batch_no": test.batch_no,
            "item_code": test.item_code,
            "method_std": test.method_std,
            "value": test.value,
            "unit": test.unit,
            "result": test.result,
            "platform_verdict": verdict,
            "entered_by": test.entered_by,
        }
        params: dict[str, Any] = {
            "sample_no": test.sample_no,
            "sample_name": test.sample_name,
            "batch_no": test.batch_no,
            "supplier": test.supplier,
            "item_code": test.item_code,
            "method_std": test.method_std,
            "value": test.value,
            "unit": test.unit,
            "result": judged,
            "entered_by": test.entered_by,
        }
        effects: list[Effect] = []

        def alert(rule: str, severity: Severity, key: str, **values: Any) -> None:
            effects.append(
                Raise(
                    rule,
                    severity,
                    key,
                    canteen,
                    test.ts,
                    evidence,
                    device=record.device_id,
                    subject=test.sample_no,
                    params=values,
                )
            )

        if test.retest_of:
            self.followups.drop(f"{canteen}|{test.retest_of}")
            effects.append(Resolve("test.followup_missing", f"{canteen}|{test.retest_of}", "retested", test.ts))
        sample_key = f"{canteen}|{test.sample_no}"
        if verdict == "invalid":  # the platform's own finding: a void run, whatever the device said
            alert(
                "test.invalid_control",
                "warning",
                sample_key,
                device=record.device_id,
                item_code=test.item_code,
                control_delta_a=test.control_delta_a,
                minimum=cfg.control_delta_a_min,
            )
            return effects  # a void run proves nothing either way
        failed = judged == "fail"  # the verdict every page and bulletin shows
        if failed:
            alert("test.failed", "critical", f"{sample_key}|{test.item_code}", **params)
            if not test.retest_of:
                deadline = test.ts + cfg.followup_within
                followup = Followup(deadline, record.device_id, record.msg_id, test.sample_name)
                self.followups.put(sample_key, followup)
        if verdict is not None and verdict != test.result:
            alert(
                "test.verdict_mismatch",
                "warning",
                sample_key,
                device_result=test.result,
                platform_result=verdict,
                **params,
            )
        if verdict == "suspect" and not failed:
            alert("test.suspect", "warning", sample_key, **params)
        return effects

    def on_tick(self, now: dt.datetime, since: dt.datetime) -> list[Effect]:
        effects: list[Effect] = []
        hours = round(self.config.followup_within.total_seconds() / 3600, 2)
        for key, followup in self.followups.items():
            if now < followup.deadline:
                continue
            canteen_id, sample_no = key.split("|", 1)
            effects.append(
                Raise(
                    "test.followup_missing",
                    "critical",
                    key,
                    canteen_id,
                    now,
                    {"device": followup.device, "msg_id": followup.msg_id},
                    device=followup.device,
                    subject=sample_no,
                    params={"sample_no": sample_no, "sample_name": followup.sample_name or sample_no, "hours": hours},
                )
            )
            self.followups.drop(key)
        return effects
