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
from gateway.mqtt_link import LastWill, LinkOptions, MqttError, MqttLink
from shian.clock import Clock
from simulators.outbox import Outbox
from simulators.payloads import PayloadFactory

log = structlog.get_logger("shian.fleet")


@dataclass(frozen=True, kw_only=True)
class Behaviour:
    """Rates of the seeded behaviour (per tick, i.e. per heartbeat interval)."""

    test_per_tick_in_delivery_hours: float = 0.3
    fail_rate: float = 0.01
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
    ) -> None:
        self.canteen, self.entry, self.registry, self.clock = canteen, entry, registry, clock
        self.host, self.port = host, port
        self.stats, self.behaviour, self.speed = stats, behaviour, speed
        self.tz = ZoneInfo(registry.timezone)
        self.rng = random.Random(f"{entry.id}:{seed}")
        self.factory = PayloadFactory(entry.id, seed)
        self.outbox = Outbox()
        stats.outboxes.append(self.outbox)
        self.meals_done: set[str] = set()
        self.slot = 0

    def topic(self, channel: Channel) -> str:
        return str(DeviceTopic(self.canteen.id, self.entry.kind, self.entry.id, channel))

    async def run(self, stop: asyncio.Event) -> None:
        backoff = 0.5
        while not stop.is_set():
            will = LastWill(
                self.topic(Channel.STATUS), self.factory.status("offline", self.clock.now()).model_dump_json().encode()
            )
            options = LinkOptions(
                host=self.host,
                port=self.port,
                client_id=self.entry.id,
                username=self.entry.id,
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
                    backoff = 0.5
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
                    await asyncio.wait_for(stop.wait(), backoff)
                backoff = min(backoff * 2, 10.0)

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
            return self.factory.cabinet_reading(now, samples_held=self.slot)
        if not self._kitchen_hours(now) or self.rng.random() < self.behaviour.camera_dropout:
            return None
        return self.factory.camera_stream(now)

    def _events(self, now: dt.datetime) -> list[tuple[BaseModel, str]]:
        local, b = now.astimezone(self.tz), self.behaviour
        school_day = self.registry.is_school_day(self.canteen, local.date())
        events: list[tuple[BaseModel, str]] = []
        if self.entry.kind is DeviceKind.DETECTOR and school_day and 6 <= local.hour < 10:
            if self.rng.random() < b.test_per_tick_in_delivery_hours:
                test = self.factory.test_result(now, fail_rate=b.fail_rate)
                events.append((test, test.msg_id))
        elif self.entry.kind is DeviceKind.CABINET and school_day:
            for meal in self.canteen.meals:
                key = f"{local.date()}|{meal.meal}"
                served = dt.datetime.combine(local.date(), meal.end, self.tz)
                if key not in self.meals_done and local >= served and local.isoweekday() in meal.weekdays:
                    self.meals_done.add(key)
                    for dish in meal.dishes:
                        self.slot += 1
                        sample = self.factory.sample_retained(now, meal.meal, dish, self.slot % 100)
                        sample = sample.model_copy(update={"sample_id": f"{sample.sample_id}-{self.slot}"})
                        events.append((sample, sample.msg_id))
        elif (
            self.entry.kind is DeviceKind.CAMERA
            and self._kitchen_hours(now)
            and self.rng.random() < b.violation_per_tick
        ):
            violation = self.factory.ai_violation(now)
            events.append((violation, violation.msg_id))
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
) -> None:
    """Every device of ``registry``, each on its own connection, until ``stop`` is set."""
    raise_file_limit()
    devices = [
        FleetDevice(
            c, d, registry, clock, host=host, port=port, stats=stats, behaviour=behaviour or Behaviour(), speed=speed
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
