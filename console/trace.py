"""Tracing food back to whoever supplied it (退回并溯源): every canteen that tested a batch or a supplier's food
in a period, each result, what was done with each failure and who handled it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from console.readings import MAX_ROWS, DeliveryRow, Readings, SupplierTally, TestRow
from console.words import Words
from devices.registry import Registry
from rules.alerts import Alert, AlertQuery, RecordKey, alerts_by_record
from rules.store import RulesStore


@dataclass(frozen=True)
class TraceLine:
    test: TestRow
    canteen_name: str
    district: str
    #: For a failure: what was done with the food (the alert's disposition), or its alert's state.
    handling: str | None
    #: Who acknowledged or resolved the failure's alert.
    handled_by: str | None
    alert_id: str | None


def trace(
    registry: Registry,
    readings: Readings,
    alerts: RulesStore,
    words: Words,
    *,
    canteens: frozenset[str] | None,
    start: dt.datetime,
    end: dt.datetime,
    supplier: str | None = None,
    batch: str | None = None,
) -> tuple[list[TraceLine], bool]:
    """Every test of ``supplier`` and/or ``batch`` in the range and scope, oldest first; and whether there were
    more than a query returns (then the caller says so: narrow the range)."""
    tests = readings.tests(canteens, start, end, supplier=supplier, batch=batch)
    truncated = len(tests) >= MAX_ROWS
    by_record: dict[RecordKey, Alert] = {}
    if any(t.result == "fail" for t in tests):
        failures, _ = alerts.search(AlertQuery(canteens=canteens, rule="test.failed", opened_from=start), limit=10_000)
        by_record = alerts_by_record(failures, "test.failed")
    lines = []
    for test in sorted(tests, key=lambda t: t.at):
        canteen = registry.canteen(test.canteen)
        alert = by_record.get((test.device, test.msg_id or "")) if test.result == "fail" else None
        handling, handled_by = None, None
        if alert is not None:
            handling = words("disposition", alert.disposition) if alert.disposition else words("state", alert.state)
            handled_by = alert.acked_by or next(
                (e["actor"] for e in alerts.audit_for(alert.alert_id) if e["action"] == "resolved"), None
            )
        elif test.result == "fail":
            handling = words("state", "open")
        lines.append(
            TraceLine(
                test=test,
                canteen_name=canteen.name if canteen else test.canteen,
                district=canteen.district if canteen else "",
                handling=handling,
                handled_by=handled_by,
                alert_id=alert.alert_id if alert else None,
            )
        )
    return lines, truncated


@dataclass(frozen=True)
class ReceivedLine:
    """A canteen that received a batch (its receiving ledger) and never tested it in the period."""

    delivery: DeliveryRow
    canteen_name: str
    district: str


def received_untested(
    registry: Registry,
    readings: Readings,
    lines: list[TraceLine],
    *,
    canteens: frozenset[str] | None,
    start: dt.datetime,
    end: dt.datetime,
    supplier: str | None = None,
    batch: str | None = None,
) -> list[ReceivedLine]:
    """Every delivery of ``supplier``'s ``batch`` in the range and scope at a canteen that has no test of it among
    ``lines``: who received the food, not only who tested it. Oldest first."""
    tested = {(line.test.canteen, line.test.supplier, line.test.batch_no) for line in lines}
    found = []
    for delivery in sorted(
        readings.deliveries(canteens, start, end, supplier=supplier, batch=batch), key=lambda d: d.at
    ):
        if (delivery.canteen, delivery.supplier, delivery.batch_no) in tested:
            continue
        canteen = registry.canteen(delivery.canteen)
        name, district = (canteen.name, canteen.district) if canteen else (delivery.canteen, "")
        found.append(ReceivedLine(delivery, name, district))
    return found


def scorecard(
    readings: Readings, *, canteens: frozenset[str] | None, start: dt.datetime, end: dt.datetime
) -> list[SupplierTally]:
    """Every supplier's tests, failures and failure rate in the range and scope: the worst first (by failure
    rate, then the most failures, then the most tests), tests naming no supplier last."""
    tallies = readings.suppliers(canteens, start, end)
    return sorted(tallies, key=lambda t: (t.supplier == "", -t.failure_rate, -t.failed, -t.tests, t.supplier))
