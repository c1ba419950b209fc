"""The simulated devices' behaviour, apart from how they connect: what each kind of device sends on each tick
of the shared simulated clock, with the seeded rates of failures and faults."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from typing import NamedTuple
from zoneinfo import ZoneInfo

from pydantic import BaseModel

from devices.registry import Canteen, DeviceEntry, Registry
from devices.topics import Channel, DeviceKind, DeviceTopic
from simulators.outbox import Outbox
from simulators.pacer import Pacer
from simulators.payloads import PayloadFactory


@dataclass(frozen=True, kw_only=True)
class Behaviour:
    """Rates of the seeded behaviour (per tick, i.e. per heartbeat interval)."""

    test_per_tick_in_delivery_hours: float = 0.3
    #: Of the tests: failures (each retested 30-90 min later), suspects, and runs with an inactive enzyme.
    #: About 1 % of tests do not pass, as in the programme's bulletins.
    fail_rate: float = 0.008
    suspect_rate: float = 0.002
    invalid_control_rate: float = 0.001
    #: Of the samples: underweight ones, dishes nobody kept, and samples thrown away after a day, not two.
    underweight_rate: float = 0.01
    missing_rate: float = 0.005
    early_disposal_rate: float = 0.005
    #: Chance per day that a cabinet's compressor fails for 40 minutes during the morning.
    compressor_failure_per_day: float = 0.01
    violation_per_tick: float = 0.002
    #: The fraction of ticks on which a camera drops out during kitchen hours.
    camera_dropout: float = 0.001


@dataclass
class FleetStats:
    published: int = 0
    online: int = 0
    disconnects: int = 0
    outboxes: list[Outbox] = field(default_factory=list)
    #: msg_id of every record (event) the devices produced, for the exactly-once checks.
    produced: set[str] = field(default_factory=set)
    #: (device, msg_id) of every failed test among them, as an alert's evidence names it: each must be alerted.
    failed_tests: set[tuple[str, str]] = field(default_factory=set)
    #: Receipts the devices heard (for their telemetry too: the gateway answers every QoS 1 message).
    receipts: int = 0
    #: Cleared to wind down: devices make no new records but keep sending what waits for a receipt.
    producing: bool = True
    #: Set by run_fleet: the pace the fleet can keep.
    pacer: Pacer | None = None

    #: The outboxes of the fleet's other processes (simulators/fleet_processes.py), by process.
    remote_outboxes: dict[int, OutboxTotals] = field(default_factory=dict)

    @property
    def pending(self) -> int:
        return sum(len(o.pending) for o in self.outboxes) + sum(t.pending for t in self.remote_outboxes.values())

    @property
    def stored(self) -> int:
        return sum(o.stored for o in self.outboxes) + sum(t.stored for t in self.remote_outboxes.values())

    @property
    def duplicates(self) -> int:
        return sum(o.duplicates for o in self.outboxes) + sum(t.duplicates for t in self.remote_outboxes.values())

    @property
    def rejected(self) -> int:
        return sum(o.rejected for o in self.outboxes) + sum(t.rejected for t in self.remote_outboxes.values())

    def outbox_totals(self) -> OutboxTotals:
        """This process's outboxes, summed (what a fleet process reports)."""
        outboxes = self.outboxes
        return OutboxTotals(
            sum(len(o.pending) for o in outboxes),
            sum(o.stored for o in outboxes),
            sum(o.duplicates for o in outboxes),
            sum(o.rejected for o in outboxes),
        )


class OutboxTotals(NamedTuple):
    pending: int
    stored: int
    duplicates: int
    rejected: int


def in_kitchen_hours(registry: Registry, canteen: Canteen, now: dt.datetime) -> bool:
    """From two hours before each meal to its end, on the canteen's school days: when its cameras stream."""
    tz = ZoneInfo(registry.timezone)
    local = now.astimezone(tz)
    if not registry.is_school_day(canteen, local.date()):
        return False
    return any(
        dt.datetime.combine(local.date(), m.start, tz) - dt.timedelta(hours=2)
        <= local
        <= dt.datetime.combine(local.date(), m.end, tz)
        for m in canteen.meals
    )


class DeviceModel:
    """What one device does, tick by tick: its telemetry and its records (tests, samples, violations), from the
    seeded behaviour, and the outbox its records wait in until their receipts come. The link that carries them
    is someone else's: a connection of its own (simulators/fleet.py) or one shared with many (multiplex.py)."""

    def __init__(
        self,
        canteen: Canteen,
        entry: DeviceEntry,
        registry: Registry,
        *,
        stats: FleetStats,
        behaviour: Behaviour,
        seed: int = 0,
        boot: str | None = None,
    ) -> None:
        self.canteen, self.entry, self.registry = canteen, entry, registry
        self.stats, self.behaviour = stats, behaviour
        self.tz = ZoneInfo(registry.timezone)
        self.rng = random.Random(f"{entry.id}:{seed}")
        self.factory = PayloadFactory(entry.id, seed, boot=boot)
        self.outbox = Outbox()
        stats.outboxes.append(self.outbox)
        self.meals_done: set[str] = set()
        self.slot = 0
        self.retests: list[tuple[dt.datetime, str]] = []  # (due, sample_no) after a failure
        self.kept: list[tuple[dt.datetime, str]] = []  # (dispose at, sample_id)
        self.compressor_down: tuple[dt.datetime, dt.datetime] | None = None
        self.compressor_days: set[dt.date] = set()
        #: The first tick: meals served before it are not retained by this run.
        self.started: dt.datetime | None = None

    def topic(self, channel: Channel) -> str:
        return str(DeviceTopic(self.canteen.id, self.entry.kind, self.entry.id, channel))

    def status(self, state: str, now: dt.datetime) -> bytes:
        return self.factory.status(state, now).model_dump_json().encode()

    def tick(self, now: dt.datetime) -> bytes | None:
        """One tick: the telemetry to publish now (None: nothing), its records put in the outbox."""
        if self.started is None:
            self.started = now
        if not self.stats.producing:
            return None
        telemetry = self.telemetry(now)
        for model, msg_id in self.events(now):
            self.outbox.add(msg_id, self.topic(Channel.EVENT), model.model_dump_json().encode())
            self.stats.produced.add(msg_id)
        return None if telemetry is None else telemetry.model_dump_json().encode()

    def kitchen_hours(self, now: dt.datetime) -> bool:
        return in_kitchen_hours(self.registry, self.canteen, now)

    def telemetry(self, now: dt.datetime) -> BaseModel | None:
        kind = self.entry.kind
        if kind is DeviceKind.DETECTOR:
            return self.factory.detector_heartbeat(now)
        if kind is DeviceKind.CABINET:
            reading = self.factory.cabinet_reading(now, samples_held=len(self.kept))
            if self._compressor_failed(now):
                reading = reading.model_copy(update={"temp_c": round(self.rng.uniform(11.0, 14.0), 2)})
            return reading
        if not self.kitchen_hours(now) or self.rng.random() < self.behaviour.camera_dropout:
            return None
        return self.factory.camera_stream(now)

    def _compressor_failed(self, now: dt.datetime) -> bool:
        local = now.astimezone(self.tz)
        if local.date() not in self.compressor_days and local.hour == 9:
            self.compressor_days.add(local.date())
            if self.rng.random() < self.behaviour.compressor_failure_per_day:
                self.compressor_down = (now, now + dt.timedelta(minutes=40))
        return self.compressor_down is not None and self.compressor_down[0] <= now < self.compressor_down[1]

    def events(self, now: dt.datetime) -> list[tuple[BaseModel, str]]:
        local = now.astimezone(self.tz)
        school_day = self.registry.is_school_day(self.canteen, local.date())
        if self.entry.kind is DeviceKind.DETECTOR:
            return self._tests(now, delivery_hours=school_day and 6 <= local.hour < 10)
        if self.entry.kind is DeviceKind.CABINET:
            return self._samples(now, school_day)
        if self.kitchen_hours(now) and self.rng.random() < self.behaviour.violation_per_tick:
            violation = self.factory.ai_violation(now)
            return [(violation, violation.msg_id)]
        return []

    def _tests(self, now: dt.datetime, *, delivery_hours: bool) -> list[tuple[BaseModel, str]]:
        b = self.behaviour
        events: list[tuple[BaseModel, str]] = []
        for due, sample_no in [r for r in self.retests if r[0] <= now]:
            self.retests.remove((due, sample_no))
            retest = self.factory.test_result(now, fail_rate=0.0)
            retest = retest.model_copy(update={"sample_no": f"{sample_no}-R", "retest_of": sample_no})
            events.append((retest, retest.msg_id))
        if delivery_hours and self.rng.random() < b.test_per_tick_in_delivery_hours:
            test = self.factory.test_result(now, fail_rate=b.fail_rate)
            roll = self.rng.random()
            if test.result == "fail":
                self.stats.failed_tests.add((self.entry.id, test.msg_id))
                self.retests.append((now + dt.timedelta(minutes=self.rng.uniform(30, 90)), test.sample_no))
            elif roll < b.suspect_rate and test.unit == "%":
                test = test.model_copy(
                    update={
                        "value": round(self.rng.uniform(40.0, 49.9), 1),
                        "result": "suspect",
                        "method_std": "GB/T 5009.199-2003",
                    }
                )
            elif roll < b.suspect_rate + b.invalid_control_rate and test.control_delta_a is not None:
                test = test.model_copy(
                    update={"control_delta_a": round(self.rng.uniform(0.1, 0.29), 3), "result": "invalid"}
                )
            events.append((test, test.msg_id))
        return events

    def _samples(self, now: dt.datetime, school_day: bool) -> list[tuple[BaseModel, str]]:
        b, local = self.behaviour, now.astimezone(self.tz)
        events: list[tuple[BaseModel, str]] = []
        for dispose_at, sample_id in [k for k in self.kept if k[0] <= now]:
            self.kept.remove((dispose_at, sample_id))
            disposal = self.factory.sample_disposed(now, sample_id)
            events.append((disposal, disposal.msg_id))
        if not school_day:
            return events
        for meal in self.canteen.meals:
            key = f"{local.date()}|{meal.meal}"
            served = dt.datetime.combine(local.date(), meal.end, self.tz)
            if key in self.meals_done or local < served or local.isoweekday() not in meal.weekdays:
                continue
            self.meals_done.add(key)
            if self.started is not None and served < self.started:
                continue  # served before the device was switched on: kept, if at all, by someone else
            for dish in meal.dishes:
                if self.rng.random() < b.missing_rate:
                    continue  # nobody kept this dish
                self.slot += 1
                sample = self.factory.sample_retained(now, meal.meal, dish, self.slot % 100)
                update: dict[str, object] = {"sample_id": f"{sample.sample_id}-{self.slot}"}
                if self.rng.random() < b.underweight_rate:
                    update["weight_g"] = round(self.rng.uniform(90.0, 124.0), 1)
                sample = sample.model_copy(update=update)
                hold = dt.timedelta(hours=24 if self.rng.random() < b.early_disposal_rate else 49)
                self.kept.append((now + hold, sample.sample_id))
                events.append((sample, sample.msg_id))
        return events
