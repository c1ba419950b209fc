"""What a bulletin sets its period against: the period before it (tests, passes, failures, canteens tested),
and why a day looks odd (a Saturday with no tests is a day without school, not a failure to test)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from console.bulletin.periods import Period, last_label, period_of
from console.readings import Readings
from devices.registry import Canteen, Registry
from storage.schema import FieldName as F
from storage.schema import Measurement as M
from storage.schema import Tag


@dataclass(frozen=True)
class PeriodTotals:
    label: str
    tests: int
    passed: int
    failed: int
    canteens_tested: int

    @property
    def pass_rate(self) -> float | None:
        return self.passed / self.tests if self.tests else None


def previous_period(period: Period) -> Period:
    return period_of(period.kind, last_label(period.kind, period.first), period.tz)


def totals(readings: Readings, canteens: frozenset[str], period: Period) -> PeriodTotals:
    """A period's tests at ``canteens``, counted from the stored verdicts (only two tags are read)."""
    tests = passed = failed = 0
    tested: set[str] = set()
    for _, row in readings.every(M.RAPID_TEST, [Tag.CANTEEN, Tag.RESULT], canteens, period.start, period.end):
        tests += 1
        passed += row[Tag.RESULT] == "pass"
        failed += row[Tag.RESULT] == "fail"
        tested.add(row[Tag.CANTEEN])
    return PeriodTotals(period.label, tests, passed, failed, len(tested))


def delivery_counts(
    readings: Readings, canteens: frozenset[str], period: Period, tested: set[tuple[str, str, str]]
) -> tuple[int, int]:
    """Deliveries received in the period (the receiving ledger), and how many of them the receiving canteen never
    tested: no (canteen, supplier, batch) among ``tested``, the period's tests (read once, by the bulletin)."""
    names = [Tag.CANTEEN, F.SUPPLIER, F.BATCH_NO]
    received = [tuple(r.values()) for _, r in readings.every(M.DELIVERY, names, canteens, period.start, period.end)]
    return len(received), sum(1 for key in received if key not in tested)


#: Why a day of the bulletin's table looks as it does, (zh, en).
DAY_NOTES: dict[str, tuple[str, str]] = {
    "no_school": ("非上课日", "no school"),
    "no_school_tested": ("非上课日，部分食堂供餐并检测", "no school; some canteens served and tested"),
    "school_untested": ("上课日但无检测记录", "a school day without tests"),
}


def day_notes(
    registry: Registry, schools: list[Canteen], tests_by_day: dict[dt.date, tuple[int, int]]
) -> dict[dt.date, str]:
    """The note key of each day that needs one: days without school, and school days without tests."""
    notes = {}
    for day, (tests, _) in tests_by_day.items():
        school = any(registry.is_school_day(c, day) for c in schools)
        if not school:
            notes[day] = "no_school_tested" if tests else "no_school"
        elif not tests:
            notes[day] = "school_untested"
    return notes
