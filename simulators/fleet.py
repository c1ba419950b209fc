"""A simulated fleet: every device of a registry on its own MQTT connection (its id as client id and username),
behaving like the real thing on a shared simulated clock, with an outbox for its records."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import random
import resource
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import structlog
from pydantic import BaseModel

from devices.messages import Receipt
from devices.registry import Canteen, DeviceEntry, Registry
from devices.topics import Channel, DeviceKind, DeviceTopic
from mqtt.device_link import MqttError, MqttLink
from mqtt.link_options import LastWill, LinkOptions
from runtime.backoff import Backoff
from runtime.clock import Clock
from simulators.outbox import Outbox
from simulators.payloads import PayloadFactory

log = structlog.get_logger("shian.fleet")


@dataclass(frozen=True, kw_only=True)
class Behaviour:
    """Rates of the seeded behaviour (per tick, i.e. per heartbeat interval)."""

    test_per_tick_in_delivery_hours: float = 0.3
    #: Of the tests: failures (each retested 30-90 min later), suspects, and runs with an inactive enzyme.
    fail_rate: float = 0.01
    suspect_rate: float = 0.01
    invalid_control_rate: float = 0.005
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
    #: Cleared to wind down: devices make no new records but keep sending what waits for a receipt.
    producing: bool = True

    @property
    def pending(self) -> int:
        return sum(len(o.pending) for o in self.outboxes)


def raise_file_limit() -> int:
    """Each device holds a socket: lift the soft descriptor limit to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class FleetDevice:
    def __init__(
        self,
        canteen: Canteen,
        entry: DeviceEntry,
        registry: Registry,
        clock: Clock,
        *,
        host: str,
        port: int,
        stats: FleetStats,
        behaviour: Behaviour,
        speed: float,
        seed: int = 0,
        password: str | None = None,
    ) -> None:
        self.canteen, self.entry, self.registry, self.clock = canteen, entry, registry, clock
        self.host, self.port, self.password = host, port, password
        self.stats, self.behaviour, self.speed = stats, behaviour, speed
        self.tz = ZoneInfo(registry.timezone)
        self.rng = random.Random(f"{entry.id}:{seed}")
        self.factory = PayloadFactory(entry.id, seed)
        self.outbox = Outbox()
        stats.outboxes.append(self.outbox)
        self.meals_done: set[str] = set()
        self.slot = 0
        self.retests: list[tuple[dt.datetime, str]] = []  # (due, sample_no) after a failure
        self.kept: list[tuple[dt.datetime, str]] = []  # (dispose at, sample_id)
        self.compressor_down: tuple[dt.datetime, dt.datetime] | None = None
        self.compressor_days: set[dt.date] = set()

    def topic(self, channel: Channel) -> str:
        return str(DeviceTopic(self.canteen.id, self.entry.kind, self.entry.id, channel))

    async def run(self, stop: asyncio.Event) -> None:
        backoff = Backoff(cap_s=10.0)
        while not stop.is_set():
            will = LastWill(
                self.topic(Channel.STATUS), self.factory.status("offline", self.clock.now()).model_dump_json().encode()
            )
            options = LinkOptions(
                host=self.host,
                port=self.port,
                client_id=self.entry.id,
                username=self.entry.id,
                password=self.password,
                will=will,
                keepalive_s=60,
            )
            try:
                async with MqttLink(options) as link:
                    await link.subscribe([self.topic(Channel.RECEIPT)])
                    await link.publish(
                        self.topic(Channel.STATUS),
                        self.factory.status("online", self.clock.now()).model_dump_json().encode(),
                        retain=True,
                    )
                    self.stats.online += 1
                    backoff.reset()
                    try:
                        await self._flush(link, everything=True)  # what the last connection left unconfirmed
                        receipts = asyncio.create_task(self._receipts(link))
                        try:
                            await self._live(link, stop)
                        finally:
                            receipts.cancel()
                    finally:
                        self.stats.online -= 1
            except MqttError:
                self.stats.disconnects += 1
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), backoff.next_delay())

    async def _receipts(self, link: MqttLink) -> None:
        async for incoming in link.messages():
            with contextlib.suppress(ValueError):
                receipt = Receipt.model_validate_json(incoming.payload, strict=False)
                self.outbox.receipt(receipt.msg_id, receipt.status)

    async def _flush(self, link: MqttLink, *, everything: bool = False) -> None:
        for msg_id, entry in self.outbox.due(all_unacknowledged=everything):
            await link.publish(entry.topic, entry.payload, qos=1)
            self.outbox.sent(msg_id)
            self.stats.published += 1

    async def _record(self, link: MqttLink, model: BaseModel, msg_id: str) -> None:
        self.outbox.add(msg_id, self.topic(Channel.EVENT), model.model_dump_json().encode())
        self.stats.produced.add(msg_id)
        await self._flush(link)

    async def _live(self, link: MqttLink, stop: asyncio.Event) -> None:
        tick_s = max(self.entry.heartbeat_s / self.speed, 0.05)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), self.rng.uniform(0, tick_s))  # spread the fleet over a tick
        while not stop.is_set():
            now = self.clock.now()
            telemetry = self._telemetry(now)
            if telemetry is not None and self.stats.producing:
                await link.publish(self.topic(Channel.TELEMETRY), telemetry.model_dump_json().encode(), qos=1)
                self.stats.published += 1
            for model, msg_id in self._events(now) if self.stats.producing else []:
                await self._record(link, model, msg_id)
            await self._flush(link)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), tick_s)

    def _kitchen_hours(self, now: dt.datetime) -> bool:
        local = now.astimezone(self.tz)
        if not self.registry.is_school_day(self.canteen, local.date()):
            return False
        return any(
            dt.datetime.combine(local.date(), m.start, self.tz) - dt.timedelta(hours=2)
            <= local
            <= dt.datetime.combine(local.date(), m.end, self.tz)
            for m in self.canteen.meals
        )

    def _telemetry(self, now: dt.datetime) -> BaseModel | None:
        kind = self.entry.kind
        if kind is DeviceKind.DETECTOR:
            return self.factory.detector_heartbeat(now)
        if kind is DeviceKind.CABINET:
            reading = self.factory.cabinet_reading(now, samples_held=len(self.kept))
            if self._compressor_failed(now):
                reading = reading.model_copy(update={"temp_c": round(self.rng.uniform(11.0, 14.0), 2)})
            return reading
        if not self._kitchen_hours(now) or self.rng.random() < self.behaviour.camera_dropout:
            return None
        return self.factory.camera_stream(now)

    def _compressor_failed(self, now: dt.datetime) -> bool:
        local = now.astimezone(self.tz)
        if local.date() not in self.compressor_days and local.hour == 9:
            self.compressor_days.add(local.date())
            if self.rng.random() < self.behaviour.compressor_failure_per_day:
                self.compressor_down = (now, now + dt.timedelta(minutes=40))
        return self.compressor_down is not None and self.compressor_down[0] <= now < self.compressor_down[1]

    def _events(self, now: dt.datetime) -> list[tuple[BaseModel, str]]:
        local = now.astimezone(self.tz)
        school_day = self.registry.is_school_day(self.canteen, local.date())
        if self.entry.kind is DeviceKind.DETECTOR:
            return self._tests(now, delivery_hours=school_day and 6 <= local.hour < 10)
        if self.entry.kind is DeviceKind.CABINET:
            return self._samples(now, school_day)
        if self._kitchen_hours(now) and self.rng.random() < self.behaviour.violation_per_tick:
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


async def run_fleet(
    registry: Registry,
    clock: Clock,
    *,
    host: str,
    port: int,
    speed: float,
    stop: asyncio.Event,
    stats: FleetStats,
    behaviour: Behaviour | None = None,
    connects_per_s: float = 500.0,
    passwords: dict[str, str] | None = None,
) -> None:
    """Every device of ``registry``, each on its own connection (with its password from ``passwords``, as
    ``shian broker provision`` wrote them), until ``stop`` is set."""
    raise_file_limit()
    passwords = passwords or {}
    devices = [
        FleetDevice(
            c,
            d,
            registry,
            clock,
            host=host,
            port=port,
            stats=stats,
            behaviour=behaviour or Behaviour(),
            speed=speed,
            password=passwords.get(d.id),
        )
        for c in registry.canteens
        for d in c.devices
        if not d.revoked
    ]
    tasks = []
    for n, device in enumerate(devices):
        tasks.append(asyncio.create_task(device.run(stop)))
        if n % 50 == 49:
            await asyncio.sleep(50 / connects_per_s)  # no connection storm
    await asyncio.gather(*tasks)
