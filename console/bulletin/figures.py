"""The figures of a bulletin (月通报 / 周安排), computed from the stored records and the rules store.

Every figure is defined here once (docs/reports.md says the same in words); the renderers only lay them out.
Scope: the registry's school canteens (meal suppliers are not), of one district or all. The limits (a sample's
weight and hold, the cabinet's range, the retest window, the kitchen's hours) are the rules engine's own
(``RulesConfig``), so that a region's overrides count in its bulletins as in its alerts.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from console.bulletin.comparison import PeriodTotals, day_notes, delivery_counts, previous_period, totals
from console.bulletin.periods import Period
from console.readings import Readings
from devices.items import BUILTIN, ItemCatalogue
from devices.kitchen import kitchen_windows
from devices.registry import Canteen, Registry
from devices.topics import DeviceKind
from rules.alerts import SEVERITY_RANK, Alert, Handled, alerts_by_record
from rules.config import RulesConfig
from rules.inspections import Inspection, InspectionBook
from rules.store import RulesStore
from storage.schema import FieldName as F
from storage.schema import Measurement as M
from storage.schema import Tag

#: How far back alerts still open at the period's start are looked for.
LOOK_BACK = dt.timedelta(days=7)


@dataclass
class Coverage:
    """School canteens: all of them, those equipped to test (lab or strips), those that tested at least once."""

    total: int = 0
    covered: int = 0
    tested: int = 0


@dataclass(frozen=True)
class Failure:
    at: dt.datetime
    canteen: str
    district: str
    sample: str
    supplier: str
    batch: str
    value: str
    disposition: str | None
    handled_by: str | None
    retested: bool
    item_code: str = ""
    method_std: str = ""
    #: What the device (or the person who typed it) said, where the platform judged it failed (None: agreed).
    device_result: str | None = None
    entered_by: str | None = None


@dataclass(frozen=True)
class Response:
    """Alert response times in minutes over the alerts opened in the period (nearest-rank percentiles)."""

    alerts: int
    acknowledged: int
    ack_p50: float | None
    ack_p90: float | None
    resolved: int
    resolve_p50: float | None
    resolve_p90: float | None


@dataclass
class CanteenScore:
    canteen: str
    name: str
    district: str
    tests: int = 0
    failed: int = 0
    missing_dishes: int = 0
    underweight: int = 0
    early_disposals: int = 0
    excursions: int = 0
    violations_confirmed: int = 0

    @property
    def issues(self) -> int:
        """The ranking's measure: a failed test weighs three, every other lapse one."""
        return (
            3 * self.failed
            + self.missing_dishes
            + self.underweight
            + self.early_disposals
            + self.excursions
            + self.violations_confirmed
        )


@dataclass
class Bulletin:
    period: Period
    limits: RulesConfig
    #: Whose bulletin: a district's or a canteen's name (None: the whole city).
    scope: str | None
    generated_at: dt.datetime
    coverage: Coverage = field(default_factory=Coverage)
    coverage_by_district: dict[str, Coverage] = field(default_factory=dict)
    coverage_by_tier: dict[str, Coverage] = field(default_factory=dict)
    tests: int = 0
    passed: int = 0
    results: Counter[str] = field(default_factory=Counter)
    batches: int = 0
    tests_by_day: dict[dt.date, tuple[int, int]] = field(default_factory=dict)  # day -> (tests, passed)
    pass_by_district: dict[str, tuple[int, int]] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    #: The region's item catalogue, for the items' names.
    items: ItemCatalogue = BUILTIN
    meals_expected: int = 0
    dishes_expected: int = 0
    dishes_retained: int = 0
    underweight: int = 0
    early_disposals: int = 0
    readings_out_of_range: int = 0
    cabinets_out_of_range: int = 0
    temperature_alerts: int = 0
    camera_minutes: float = 0.0
    camera_offline_minutes: float = 0.0
    violations: int = 0
    violations_by_kind: Counter[str] = field(default_factory=Counter)
    violations_confirmed: int = 0
    violations_false: int = 0
    response_by_severity: dict[str, Response] = field(default_factory=dict)
    response_by_district: dict[str, Response] = field(default_factory=dict)
    canteens: list[CanteenScore] = field(default_factory=list)
    inspections: list[Inspection] = field(default_factory=list)
    #: The period before, to compare with; the note key of each odd day (comparison.DAY_NOTES); who issues it.
    previous: PeriodTotals | None = None
    day_notes: dict[dt.date, str] = field(default_factory=dict)
    issuer: str = ""
    deliveries: tuple[int, int] = (0, 0)  # received, of them never tested

    @property
    def pass_rate(self) -> float | None:
        return self.passed / self.tests if self.tests else None

    @property
    def camera_online_rate(self) -> float | None:
        if not self.camera_minutes:
            return None
        return 1.0 - self.camera_offline_minutes / self.camera_minutes


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (the smallest value with at least q of them at or below it)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


@dataclass(frozen=True)
class _Scope:
    """Where a bulletin's figures come from, and whose they are."""

    readings: Readings
    rules: RulesStore
    registry: Registry
    schools: list[Canteen]
    ids: frozenset[str]
    scores: dict[str, CanteenScore]


def compile_bulletin(
    readings: Readings,
    rules: RulesStore,
    book: InspectionBook,
    registry: Registry,
    period: Period,
    *,
    district: str | None = None,
    canteens: frozenset[str] | None = None,
    scope_name: str | None = None,
    config: RulesConfig | None = None,
    now: dt.datetime | None = None,
) -> Bulletin:
    """The bulletin of ``period`` over the school canteens of ``district`` (None: all) and, if given, only of
    ``canteens`` (a school's own); ``scope_name`` names that scope in the title (default: the district)."""
    schools = [
        c
        for c in registry.canteens
        if c.type != "supplier"
        and (district is None or c.district == district)
        and (canteens is None or c.id in canteens)
    ]
    scope = frozenset(c.id for c in schools)
    b = Bulletin(period, config or RulesConfig(), scope_name or district, now or dt.datetime.now(period.tz))
    b.items = registry.catalogue
    scores = {c.id: CanteenScore(c.id, c.name, c.district) for c in schools}
    # a week before: an offline alert opened before the period may still cover its first kitchen hours
    earlier = [h for h in rules.handled(period.start - LOOK_BACK, period.end) if h.alert.canteen_id in scope]
    handled = [h for h in earlier if h.alert.opened_at >= period.start]
    alerts = [h.alert for h in handled]
    src = _Scope(readings, rules, registry, schools, scope, scores)
    tested_batches = _tests(b, src, alerts)
    _samples(b, src)
    _cabinets(b, src, alerts)
    _cameras(b, src, [h.alert for h in earlier])
    _responses(b, handled, registry)
    b.canteens = sorted(scores.values(), key=lambda s: (-s.issues, s.canteen))
    b.inspections = book.between(period.start, period.end, scope)
    b.previous = totals(readings, scope, previous_period(period))
    b.day_notes = day_notes(registry, schools, b.tests_by_day)
    b.issuer = registry.authority or ""
    b.deliveries = delivery_counts(readings, scope, period, tested_batches)
    return b


def _tests(b: Bulletin, src: _Scope, alerts: list[Alert]) -> set[tuple[str, str, str]]:
    readings, schools, scope, scores = src.readings, src.schools, src.ids, src.scores
    names = [
        Tag.CANTEEN,
        Tag.DEVICE,
        Tag.RESULT,
        F.MSG_ID,
        F.SAMPLE_NO,
        F.SAMPLE_NAME,
        F.SUPPLIER,
        F.BATCH_NO,
        F.VALUE,
        F.UNIT,
    ]
    names += [F.RETEST_OF, Tag.ITEM_CODE, Tag.METHOD_STD, F.DEVICE_RESULT, F.ENTERED_BY]
    rows = list(readings.every(M.RAPID_TEST, names, scope, b.period.start, b.period.end + b.limits.followup_within))
    failed_alerts = alerts_by_record(alerts, "test.failed")
    retests = {(r[Tag.CANTEEN], r[F.RETEST_OF]): at for at, r in rows if r[F.RETEST_OF]}
    batches: set[tuple[str, str]] = set()
    by_day: dict[dt.date, list[int]] = {day: [0, 0] for day in b.period.days()}
    by_district: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    tested: set[str] = set()
    tested_batches: set[tuple[str, str, str]] = set()
    for at, r in rows:
        if at >= b.period.end:
            continue  # read only to find retests of the last hours' failures
        canteen, result = r[Tag.CANTEEN], r[Tag.RESULT]
        passed = result == "pass"
        b.tests += 1
        b.passed += passed
        b.results[result] += 1
        tested.add(canteen)
        tested_batches.add((canteen, r[F.SUPPLIER], r[F.BATCH_NO]))
        scores[canteen].tests += 1
        if r[F.BATCH_NO]:
            batches.add((r[F.SUPPLIER] or "", r[F.BATCH_NO]))
        day = by_day[at.astimezone(b.period.tz).date()]
        day[0], day[1] = day[0] + 1, day[1] + passed
        district = by_district[scores[canteen].district]
        district[0], district[1] = district[0] + 1, district[1] + passed
        if result != "fail":
            continue
        scores[canteen].failed += 1
        alert = failed_alerts.get((r[Tag.DEVICE], r[F.MSG_ID]))
        retest_at = retests.get((canteen, r[F.SAMPLE_NO]))
        b.failures.append(
            Failure(
                at=at.astimezone(b.period.tz),
                canteen=scores[canteen].name,
                district=scores[canteen].district,
                sample=r[F.SAMPLE_NAME] or "",
                supplier=r[F.SUPPLIER] or "",
                batch=r[F.BATCH_NO] or "",
                value="" if r[F.VALUE] is None else f"{r[F.VALUE]:g} {r[F.UNIT] or ''}".strip(),
                disposition=alert.disposition if alert else None,
                handled_by=src.registry.office_of(alert.acked_by) if alert else None,
                retested=retest_at is not None and at < retest_at <= at + b.limits.followup_within,
                item_code=r[Tag.ITEM_CODE] or "",
                method_std=r[Tag.METHOD_STD] or "",
                device_result=r[F.DEVICE_RESULT],
                entered_by=r[F.ENTERED_BY],
            )
        )
    b.batches = len(batches)
    b.tests_by_day = {day: (n, p) for day, (n, p) in by_day.items()}
    b.pass_by_district = {d: (n, p) for d, (n, p) in sorted(by_district.items())}
    for canteen in schools:
        equipped = canteen.testing_tier != "none" and any(d.kind is DeviceKind.DETECTOR for d in canteen.devices)
        for tally in (b.coverage, b.coverage_by_district.setdefault(canteen.district, Coverage())):
            _count(tally, equipped, canteen.id in tested)
        _count(b.coverage_by_tier.setdefault(canteen.testing_tier, Coverage()), equipped, canteen.id in tested)
    b.coverage_by_district = dict(sorted(b.coverage_by_district.items()))
    return tested_batches  # each (canteen, supplier, batch) tested: the receiving ledger's untested are the rest


def _count(tally: Coverage, equipped: bool, tested: bool) -> None:
    tally.total += 1
    tally.covered += equipped
    tally.tested += tested


def _samples(b: Bulletin, src: _Scope) -> None:
    """Each meal served against its menu (the one entered for the day, else the registry's dishes)."""
    readings, rules, registry, schools, scope, scores = (
        src.readings,
        src.rules,
        src.registry,
        src.schools,
        src.ids,
        src.scores,
    )
    names = [Tag.CANTEEN, Tag.ACTION, Tag.MEAL, F.SAMPLE_ID, F.MEAL_DATE, F.DISH_NAME, F.WEIGHT_G]
    # from two days before: a sample disposed of early in the period was retained before it
    since = b.period.start - b.limits.sample_min_hold
    retained_at: dict[str, dt.datetime] = {}
    kept: dict[tuple[str, str, str], set[str]] = defaultdict(set)  # (canteen, day, meal) -> dishes
    for at, r in readings.every(M.SAMPLE_RETENTION, names, scope, since, b.period.end):
        if r[Tag.ACTION] == "retained":
            retained_at[r[F.SAMPLE_ID]] = at
            if at < b.period.start:
                continue
            kept[(r[Tag.CANTEEN], r[F.MEAL_DATE], r[Tag.MEAL])].add(r[F.DISH_NAME])
            if r[F.WEIGHT_G] is not None and r[F.WEIGHT_G] < b.limits.sample_min_weight_g:
                b.underweight += 1
                scores[r[Tag.CANTEEN]].underweight += 1
        elif (
            at >= b.period.start and (held := retained_at.get(r[F.SAMPLE_ID])) and at - held < b.limits.sample_min_hold
        ):
            b.early_disposals += 1
            scores[r[Tag.CANTEEN]].early_disposals += 1
    for canteen in schools:
        if not any(d.kind is DeviceKind.CABINET for d in canteen.devices):
            continue
        menus = rules.menus.between(canteen.id, b.period.first, b.period.last)
        for day in b.period.days():
            if not registry.is_school_day(canteen, day):
                continue
            for meal in canteen.meals:
                if day.isoweekday() not in meal.weekdays:
                    continue
                dishes = set(menus.get((day, meal.meal)) or meal.dishes)
                have = kept.get((canteen.id, day.isoformat(), meal.meal), set())
                b.meals_expected += 1
                b.dishes_expected += len(dishes)
                b.dishes_retained += len(dishes & have)
                scores[canteen.id].missing_dishes += len(dishes - have)


def _cabinets(b: Bulletin, src: _Scope, alerts: list[Alert]) -> None:
    readings, scope, scores = src.readings, src.ids, src.scores
    low, high = b.limits.cabinet_min_c, b.limits.cabinet_max_c
    out: set[str] = set()
    for _, r in readings.every(M.CABINET, [Tag.CANTEEN, Tag.DEVICE, F.TEMP_C], scope, b.period.start, b.period.end):
        if r[F.TEMP_C] is not None and not low <= r[F.TEMP_C] <= high:
            b.readings_out_of_range += 1
            out.add(r[Tag.DEVICE])
    b.cabinets_out_of_range = len(out)
    for alert in alerts:
        if alert.rule == "cabinet.temperature":
            b.temperature_alerts += 1
            scores[alert.canteen_id].excursions += 1


def _cameras(b: Bulletin, src: _Scope, alerts: list[Alert]) -> None:
    """Online rate: the share of camera-minutes in kitchen hours not covered by an offline alert (the camera's
    own, or its canteen's). ``alerts``: those opened in the period and the week before it."""
    readings, registry, schools, scope, scores = src.readings, src.registry, src.schools, src.ids, src.scores
    windows: dict[str, list[tuple[dt.datetime, dt.datetime]]] = {}
    cameras: dict[str, list[str]] = {}
    for canteen in schools:
        cameras[canteen.id] = [d.id for d in canteen.devices if d.kind is DeviceKind.CAMERA]
        windows[canteen.id] = _kitchen_windows(registry, canteen, b.period, b.limits.kitchen_opens_before_meal)
        minutes = sum((end - start).total_seconds() / 60 for start, end in windows[canteen.id])
        b.camera_minutes += minutes * len(cameras[canteen.id])
    for alert in alerts:
        if alert.rule == "device.offline" and alert.device_id in cameras.get(alert.canteen_id, []):
            count = 1
        elif alert.rule == "canteen.offline":
            count = len(cameras.get(alert.canteen_id, []))
        else:
            continue
        until = alert.resolved_at or b.period.end
        for start, end in windows.get(alert.canteen_id, []):
            overlap = (min(end, until) - max(start, alert.opened_at)).total_seconds() / 60
            b.camera_offline_minutes += max(0.0, overlap) * count
    names = [Tag.CANTEEN, Tag.DEVICE, Tag.VIOLATION, F.MSG_ID]
    in_period = [a for a in alerts if a.opened_at >= b.period.start]
    violations = alerts_by_record(in_period, "camera.violation")
    for _, r in readings.every(M.CAMERA_VIOLATION, names, scope, b.period.start, b.period.end):
        b.violations += 1
        b.violations_by_kind[r[Tag.VIOLATION]] += 1
        judged = violations.get((r[Tag.DEVICE], r[F.MSG_ID]))
        review = judged.review if judged else None
        b.violations_confirmed += review == "confirmed"
        b.violations_false += review == "false_positive"
        scores[r[Tag.CANTEEN]].violations_confirmed += review == "confirmed"


def _kitchen_windows(
    registry: Registry, canteen: Canteen, period: Period, lead: dt.timedelta
) -> list[tuple[dt.datetime, dt.datetime]]:
    """The canteen's kitchen hours in the period."""
    return [span for day in period.days() for span in kitchen_windows(registry, canteen, day, lead)]


def _responses(b: Bulletin, handled: Iterable[Handled], registry: Registry) -> None:
    """Over the alerts people handle (not the platform's own): acknowledged by a person, resolved by one."""
    accounts = {a.username for a in registry.accounts}
    by_severity: dict[str, list[Handled]] = defaultdict(list)
    by_district: dict[str, list[Handled]] = defaultdict(list)
    for h in handled:  # the scope's canteens only: never the platform's own alerts
        canteen = registry.canteen(h.alert.canteen_id)
        by_severity[h.alert.severity].append(h)
        by_district[canteen.district if canteen else ""].append(h)
    b.response_by_severity = {
        s: _response(hs, accounts) for s, hs in sorted(by_severity.items(), key=lambda kv: -SEVERITY_RANK[kv[0]])
    }
    b.response_by_district = {d: _response(hs, accounts) for d, hs in sorted(by_district.items())}


def _response(handled: list[Handled], accounts: set[str]) -> Response:
    acks = [(h.acked_at - h.alert.opened_at).total_seconds() / 60 for h in handled if h.acked_at is not None]
    resolves = [
        (h.alert.resolved_at - h.alert.opened_at).total_seconds() / 60
        for h in handled
        if h.alert.resolved_at is not None and h.resolved_by in accounts
    ]
    return Response(
        len(handled),
        len(acks),
        percentile(acks, 0.5),
        percentile(acks, 0.9),
        len(resolves),
        percentile(resolves, 0.5),
        percentile(resolves, 0.9),
    )
