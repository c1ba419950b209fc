"""A month of history, fast: the live fleet's behaviour model stepped on a virtual clock, its records committed
through the gateway's own path (classify, spool entry, group commit), then stored and judged by the rules engine,
with simulated supervisors handling the alerts. No MQTT: a month of the reference city takes minutes.

Every test, sample, disposal, violation and status change is kept. Periodic telemetry is thinned (``Thinning``):
a cabinet reading and a detector heartbeat every 30 minutes, a camera stream every 30 minutes in kitchen hours.
The rules engine judges silence against the thinned intervals, so thinning raises no offline alert of its own.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from devices.messages import CabinetReading
from devices.registry import Canteen, Registry
from devices.topics import Channel, DeviceKind
from gateway.entries import SkewLimits, spool_entry
from gateway.intake import Classifier
from mqtt.bus import Incoming
from rules.alerts import Alert, AlertQuery, Disposition, Review
from rules.config import RulesConfig
from rules.engine import RulesEngine
from rules.inspections import iso_week, weekly_plan
from rules.store import RulesStore
from runtime.clock import FakeClock
from runtime.errors import ShianError
from simulators.behaviour import Behaviour, DeviceModel, FleetStats, in_kitchen_hours
from spool import Spool, plan
from spool.write import Outcome
from storage.drain import StorageDrain
from storage.writers import PointWriter
from wiring.build import judge_for

#: The virtual clock's step: a detector may test, a cabinet keep a meal's samples, at most once per step.
STEP = dt.timedelta(minutes=10)
#: How often the rules engine reads what the steps committed and runs its timers (the handling follows).
RULES_EVERY = dt.timedelta(minutes=30)


@dataclass(frozen=True)
class Thinning:
    """How often each kind of device's periodic telemetry is kept (a multiple of ``STEP``)."""

    detector: dt.timedelta = dt.timedelta(minutes=30)
    cabinet: dt.timedelta = dt.timedelta(minutes=30)
    camera: dt.timedelta = dt.timedelta(minutes=30)

    def of(self, kind: DeviceKind) -> dt.timedelta:
        return {DeviceKind.DETECTOR: self.detector, DeviceKind.CABINET: self.cabinet, DeviceKind.CAMERA: self.camera}[
            kind
        ]


#: The live fleet's rates, per tick of the history: a detector's tick is one STEP (about six tests a morning),
#: a camera's one thinned interval (a violation or two per canteen and week of kitchen hours).
HISTORY_BEHAVIOUR = Behaviour(test_per_tick_in_delivery_hours=0.25, violation_per_tick=0.002, camera_dropout=0.001)


@dataclass
class Handling:
    """How the simulated supervisors answer alerts: within minutes in office hours (07:00-19:00), the rest the
    next morning; a failed test's food returned or destroyed, a camera violation judged right or wrong."""

    ack_median_min: dict[str, float] = field(default_factory=lambda: {"critical": 12, "warning": 45, "info": 120})
    resolve_median_min: float = 90
    returned_share: float = 0.7
    false_positive_share: float = 0.25


@dataclass
class HistoryResult:
    records: int = 0
    rejected: int = 0
    alerts: int = 0
    acknowledged: int = 0
    resolved: int = 0
    inspections: int = 0
    days: int = 0


_INSPECTORS = ["市场监管局 赵敏", "市场监管局 孙磊", "教育局 周洁"]
_FINDINGS = [
    "留样记录与菜谱不一致，个别菜品未留样",
    "操作人员未戴帽子，已当场纠正",
    "冷藏柜内生熟食品混放",
    "进货查验记录不全，缺少供应商资质复印件",
]
_ALL_WELL = ["未发现问题", "台账齐全，现场整洁"]


class HistoryError(ShianError):
    """A history that cannot be written where it was asked to be."""


def thinned_registry(registry: Registry, thinning: Thinning) -> Registry:
    """The registry with each device's heartbeat the thinned interval: what the rules engine judges silence by."""
    data = registry.model_dump()
    for canteen in data["canteens"]:
        for device in canteen["devices"]:
            device["heartbeat_s"] = thinning.of(DeviceKind(device["kind"])).total_seconds()
    return Registry.model_validate(data)


class History:
    """Writes ``registry``'s devices' records between two instants into ``spool``, the store behind ``writer``
    and the rules store, stepping a virtual clock."""

    def __init__(
        self,
        registry: Registry,
        spool: Spool,
        writer: PointWriter,
        rules: RulesStore,
        *,
        seed: int = 2026,
        thinning: Thinning | None = None,
        behaviour: Behaviour = HISTORY_BEHAVIOUR,
        handling: Handling | None = None,
        config: RulesConfig | None = None,
    ) -> None:
        self.registry, self.spool = registry, spool
        self.thinning = thinning or Thinning()
        self.handling = handling or Handling()
        self.clock = FakeClock(dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
        self.tz = ZoneInfo(registry.timezone)
        self.classify = Classifier(registry)
        config = config or RulesConfig()
        self.drain = StorageDrain(spool, registry, writer, self.clock, judge=judge_for(config, registry))
        self.engine = RulesEngine(thinned_registry(registry, self.thinning), config, rules, self.clock)
        self.rng = random.Random(f"history:{seed}")
        self.stats = FleetStats()
        self.models = [
            DeviceModel(canteen, entry, registry, stats=self.stats, behaviour=behaviour, seed=seed)
            for canteen in registry.canteens
            for entry in canteen.devices
        ]
        self.handlers = {c.id: _handler_of(registry, c) for c in registry.canteens}
        #: Handling still to do: (when, alert or inspection id, action), kept in time order.
        self.todo: list[tuple[dt.datetime, str, str]] = []
        self.scheduled: set[str] = set()
        #: Alerts opened up to here have been scheduled.
        self._handled_to = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
        self.result = HistoryResult()
        #: Surprise visits a week (about one canteen in fifty, at least one).
        self.inspections_per_week = max(1, len(registry.canteens) // 50)

    def run(self, start: dt.datetime, end: dt.datetime, progress: Callable[[dt.date, HistoryResult], None]) -> None:
        if self.spool.last_seq() or self.engine.store.count():
            raise HistoryError(
                f"{self.spool.path} or the rules store already holds records: write a history into a data "
                "directory of its own (--data-dir), never into a live platform's"
            )
        now = start
        for model in self.models:
            model.started = start
        while now < end:
            self.clock.set(now)
            self._commit(now, list(self._step(now)))
            now += STEP
            if _aligned(now, RULES_EVERY):
                self.clock.set(now)
                self.engine.process(self.spool.read(self.engine.store.checkpoint(), 1_000_000))
                self._handle(now)
            local = now.astimezone(self.tz)
            if local.isoweekday() == 1 and local.time() == dt.time(9):
                self._inspect(local)
            if local.time() == dt.time():
                self._store()
                self.result.days += 1
                progress((now - dt.timedelta(days=1)).astimezone(self.tz).date(), self.result)
        self._store()
        self.result.alerts = self.engine.store.count()

    def _store(self) -> None:
        """What the steps committed, into the time-series store; the rules store's outbox marked published."""
        while self.drain.drain_once():
            pass
        self._publish()

    def _step(self, now: dt.datetime) -> Iterator[tuple[str, bytes]]:
        """Every message the devices send in this step: their records, and their thinned telemetry."""
        due_now = {kind: _aligned(now, self.thinning.of(kind)) for kind in DeviceKind}
        kitchen: dict[str, bool] = {}  # canteen -> in kitchen hours now (asked once per canteen, not per camera)
        for model in self.models:
            kind = model.entry.kind
            due = due_now[kind]
            if kind is DeviceKind.CAMERA:
                if not due:
                    continue
                canteen = model.canteen
                if canteen.id not in kitchen:
                    kitchen[canteen.id] = in_kitchen_hours(self.registry, canteen, now)
                if not kitchen[canteen.id]:
                    continue  # a camera's records and telemetry are those of kitchen hours, on its own interval
            for event, _ in model.events(now):
                yield model.topic(Channel.EVENT), event.model_dump_json().encode()
            if due and (telemetry := model.telemetry(now)) is not None:
                if isinstance(telemetry, CabinetReading) and telemetry.door_open:
                    # a door's moment open does not survive thinning: a reading 30 minutes apart would say it
                    # stood open all that time
                    telemetry = telemetry.model_copy(update={"door_open": False})
                yield model.topic(Channel.TELEMETRY), telemetry.model_dump_json().encode()

    def _commit(self, now: dt.datetime, messages: list[tuple[str, bytes]]) -> None:
        """The gateway's path: classify, spool entry (the skew window around the virtual clock), group commit."""
        if not messages:
            return
        window = SkewLimits().window(now + STEP)
        entries = [
            spool_entry(d, self.classify(d), window)
            for d in (Incoming(topic, payload, 1, False, i) for i, (topic, payload) in enumerate(messages))
        ]
        outcomes = self.spool.commit_plan(plan(entries))
        self.result.records += sum(1 for o in outcomes if o in (Outcome.STORED, Outcome.REUSED))
        self.result.rejected += sum(1 for o in outcomes if o is Outcome.DEAD_LETTERED)

    def _handle(self, until: dt.datetime) -> None:
        """Schedule the handling of alerts raised since the last step; carry out what is due by ``until`` (in
        one transaction: a commit per acknowledgement would be most of a month's time)."""
        store = self.engine.store
        raised, _ = store.search(AlertQuery(opened_from=self._handled_to), limit=1_000_000)
        self._handled_to = until
        for alert in raised:
            if alert.alert_id not in self.scheduled and alert.canteen_id in self.handlers:
                self.scheduled.add(alert.alert_id)
                self._schedule(alert)
        self.todo.sort()
        due = []
        while self.todo and self.todo[0][0] <= until:
            due.append(self.todo.pop(0))
        for at, inspection_id, _ in [d for d in due if d[2] == "rectify"]:  # the book has its own connection
            inspection = self.engine.inspections.get(inspection_id)
            if inspection is not None:
                self.engine.inspections.rectified(inspection_id, by=self.handlers[inspection.canteen_id], at=at)
        with store.transaction():
            for at, alert_id, action in due:
                if action != "rectify":
                    self._carry_out(at, alert_id, action)

    def _carry_out(self, at: dt.datetime, alert_id: str, action: str) -> None:
        store = self.engine.store
        current = store.get(alert_id)
        if current is None or current.state == "resolved":
            return  # the rules closed it first (a device back online, a retest passed)
        by = self.handlers[current.canteen_id]
        if action == "ack" and current.state == "open":
            store.acknowledge(alert_id, by, "已收到，正在处理", at)
            self.result.acknowledged += 1
        elif action == "resolve":
            self._resolve(current, by, at)

    def _schedule(self, alert: Alert) -> None:
        h = self.handling
        ack = _office_hours(alert.opened_at + _minutes(self.rng, h.ack_median_min[alert.severity]), self.tz)
        self.todo.append((ack, alert.alert_id, "ack"))
        self.todo.append((ack + _minutes(self.rng, h.resolve_median_min), alert.alert_id, "resolve"))

    def _resolve(self, alert: Alert, by: str, at: dt.datetime) -> None:
        h, store = self.handling, self.engine.store
        if alert.rule == "test.failed":
            disposition: Disposition = "returned_to_supplier" if self.rng.random() < h.returned_share else "destroyed"
            store.resolve(alert.alert_id, by, "已处置", at, disposition=disposition)
        elif alert.rule == "camera.violation":
            review: Review = "false_positive" if self.rng.random() < h.false_positive_share else "confirmed"
            store.resolve(alert.alert_id, by, "已复核", at, review=review)
        elif alert.rule.startswith(("test.", "sample.", "supplier.", "inspection.")):
            store.resolve(alert.alert_id, by, "已整改", at)
        else:
            return  # device and cabinet alerts close when the device recovers
        self.result.resolved += 1

    def _inspect(self, monday: dt.datetime) -> None:
        """The week's surprise visits: the plan drawn from the risk as the week began, each canteen visited on a
        weekday of the week; one visit in three finds something to put right within a week."""
        week = iso_week(monday.date())
        book = self.engine.inspections
        chosen, _ = weekly_plan(self.registry, self.engine.store, book, week=week, count=self.inspections_per_week)
        for canteen_id in chosen:
            visited = monday + dt.timedelta(days=self.rng.randrange(5), hours=self.rng.randrange(1, 7))
            problem = self.rng.random() < 1 / 3
            inspection = book.record(
                self.registry,
                canteen_id,
                inspector=self.rng.choice(_INSPECTORS),
                visited_at=visited,
                findings=self.rng.choice(_FINDINGS if problem else _ALL_WELL),
                rectify_by=(visited + dt.timedelta(days=7)).date() if problem else None,
                week=week,
                by=self.rng.choice(_INSPECTORS),
                at=visited,
            )
            self.result.inspections += 1
            if inspection.rectify_by is not None and self.rng.random() < 0.85:  # the rest go overdue
                fixed = visited + dt.timedelta(days=self.rng.uniform(1, 6))
                self.todo.append((fixed, inspection.inspection_id, "rectify"))

    def _publish(self) -> None:
        """The rules store's outbox, marked published: the history has no subscribers to tell."""
        with self.engine.store.transaction():
            for alert in self.engine.store.unpublished():
                self.engine.store.mark_published(alert)


def _aligned(now: dt.datetime, every: dt.timedelta) -> bool:
    return int(now.timestamp()) % int(every.total_seconds()) == 0


def _minutes(rng: random.Random, median: float) -> dt.timedelta:
    """A handling delay: log-normal around ``median`` minutes (most quick, a few slow)."""
    return dt.timedelta(minutes=median * rng.lognormvariate(0.0, 0.6))


def _office_hours(at: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    """``at``, or when it falls outside 07:00-19:00, a few minutes after 07:00 the next morning."""
    local = at.astimezone(tz)
    if 7 <= local.hour < 19:
        return at
    day = local.date() + dt.timedelta(days=1 if local.hour >= 19 else 0)
    return dt.datetime.combine(day, dt.time(7, 5), tz) + (at - at.replace(second=0, microsecond=0))


def _handler_of(registry: Registry, canteen: Canteen) -> str:
    """Who handles a canteen's alerts: its school's account, else its district's, else the city's."""
    for role, match in (("school", canteen.id), ("district", canteen.district), ("city", None)):
        for account in registry.accounts:
            if account.role == role and (match is None or match in (account.canteen, account.district)):
                return account.username
    return "supervisor"
