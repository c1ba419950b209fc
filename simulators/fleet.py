"""A simulated fleet: every device of a registry on its own MQTT connection (its id as client id and username),
behaving like the real thing (simulators/behaviour.py) on a shared simulated clock, with an outbox for its
records."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import random
import resource
from pathlib import Path

import structlog

from devices.messages import Receipt
from devices.registry import Registry
from devices.topics import Channel
from mqtt.device_link import MqttError, MqttLink
from mqtt.link_options import LastWill, LinkOptions
from runtime.backoff import Backoff
from simulators.behaviour import Behaviour, DeviceModel, FleetStats
from simulators.pacer import Pacer
from simulators.payloads import boot_stamp
from simulators.simclock import SimClock

log = structlog.get_logger("shian.fleet")


def raise_file_limit() -> int:
    """Each device holds a socket: lift the soft descriptor limit to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class FleetDevice:
    """A device on a connection of its own, as in the field: its id as client id and username, ``online``
    retained and an ``offline`` last will, reconnecting with backoff."""

    def __init__(
        self,
        model: DeviceModel,
        clock: SimClock,
        *,
        host: str,
        port: int,
        pacer: Pacer,
        password: str | None = None,
        tls_ca: Path | None = None,
    ) -> None:
        self.model, self.clock, self.pacer = model, clock, pacer
        self.host, self.port, self.password, self.tls_ca = host, port, password, tls_ca

    async def run(self, stop: asyncio.Event) -> None:
        model, stats = self.model, self.model.stats
        backoff = Backoff(cap_s=10.0)
        while not stop.is_set():
            will = LastWill(model.topic(Channel.STATUS), model.status("offline", self.clock.now()))
            options = LinkOptions(
                host=self.host,
                port=self.port,
                client_id=model.entry.id,
                username=model.entry.id,
                password=self.password,
                tls_ca=self.tls_ca,
                will=will,
                keepalive_s=60,
            )
            try:
                async with MqttLink(options) as link:
                    await link.subscribe([model.topic(Channel.RECEIPT)])
                    await link.publish(
                        model.topic(Channel.STATUS), model.status("online", self.clock.now()), retain=True
                    )
                    stats.online += 1
                    backoff.reset()
                    try:
                        await self._flush(link, everything=True)  # what the last connection left unconfirmed
                        receipts = asyncio.create_task(self._receipts(link))
                        try:
                            await self._live(link, stop)
                        finally:
                            receipts.cancel()
                    finally:
                        stats.online -= 1
            except MqttError as exc:
                stats.disconnects += 1
                # debug: a broker restart under a city would log thousands; the status line counts them
                log.debug("device.reconnecting", device=model.entry.id, error=str(exc))
                await reconnect_wait(self.clock, backoff, model.rng, stop)

    async def _receipts(self, link: MqttLink) -> None:
        async for incoming in link.messages():
            self.model.stats.receipts += 1
            with contextlib.suppress(ValueError):
                receipt = Receipt.model_validate_json(incoming.payload, strict=False)
                self.model.outbox.receipt(receipt.msg_id, receipt.status)

    async def _flush(self, link: MqttLink, *, everything: bool = False) -> None:
        outbox = self.model.outbox
        for msg_id, entry in outbox.due(all_unacknowledged=everything):
            await link.publish(entry.topic, entry.payload, qos=1)
            outbox.sent(msg_id)
            self.model.stats.published += 1

    async def _live(self, link: MqttLink, stop: asyncio.Event) -> None:
        """One tick per heartbeat interval, on a fixed schedule of simulated time: a slow tick does not push the
        next one later (a drifting heartbeat is one the offline rules would, rightly, call late)."""
        model = self.model
        interval = dt.timedelta(seconds=model.entry.heartbeat_s)
        due = self.clock.now() + interval * model.rng.random()  # spread the fleet over a tick
        while not stop.is_set():
            if await sleep_until(self.clock, due, stop):
                return
            now = self.clock.now()
            self.pacer.observe((now - due) / interval)
            telemetry = model.tick(now)
            if telemetry is not None:
                await link.publish(model.topic(Channel.TELEMETRY), telemetry, qos=1)
                model.stats.published += 1
            await self._flush(link)
            due = max(due + interval, now)  # a tick missed altogether is skipped, not sent in a burst


async def reconnect_wait(clock: SimClock, backoff: Backoff, rng: random.Random, stop: asyncio.Event) -> None:
    """Wait out the next backoff delay, in simulated seconds and jittered (a restarted broker is not met by the
    whole fleet in the same instant), or until ``stop``."""
    delay = dt.timedelta(seconds=backoff.next_delay() * rng.uniform(0.5, 1.0))
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), max(clock.real_seconds(delay), 0.05))


async def sleep_until(clock: SimClock, due: dt.datetime, stop: asyncio.Event) -> bool:
    """Wait for simulated ``due``, re-reading the pace (the pacer may change it) at least once a real second;
    True once stopped. A plain sleep, not a wait on ``stop``: thousands of devices wake every second."""
    while not stop.is_set():
        left = due - clock.now()
        if left <= dt.timedelta(0):
            return False
        await asyncio.sleep(min(max(clock.real_seconds(left), 0.01), 1.0))
    return True


async def run_fleet(
    registry: Registry,
    clock: SimClock,
    *,
    host: str,
    port: int,
    stop: asyncio.Event,
    stats: FleetStats,
    behaviour: Behaviour | None = None,
    connects_per_s: float = 500.0,
    passwords: dict[str, str] | None = None,
    tls_ca: Path | None = None,
    connect_timeout_s: float = 120.0,
) -> None:
    """Every device of ``registry``, each on its own connection (with its password from ``passwords``, as
    ``shian broker provision`` wrote them, and over TLS when ``tls_ca`` names the broker's CA), until ``stop``
    is set.

    A held ``clock`` is released once every device is online (or after ``connect_timeout_s``): connecting
    thousands of devices is not part of the simulated day. From then on the pacer holds the clock to a speed
    the fleet can keep, at most the one it was made with."""
    raise_file_limit()
    passwords = passwords or {}
    pacer = Pacer(clock, clock.speed)
    stats.pacer = pacer
    boot = boot_stamp()  # a restarted fleet sends no msg_id it sent before
    devices = [
        FleetDevice(
            DeviceModel(c, d, registry, stats=stats, behaviour=behaviour or Behaviour(), boot=boot),
            clock,
            host=host,
            port=port,
            pacer=pacer,
            password=passwords.get(d.id),
            tls_ca=tls_ca,
        )
        for c in registry.canteens
        for d in c.devices
        if not d.revoked
    ]
    async with asyncio.TaskGroup() as group:
        for n, device in enumerate(devices):
            group.create_task(device.run(stop))
            if n % 50 == 49:
                await asyncio.sleep(50 / connects_per_s)  # no connection storm
        group.create_task(start_and_pace(pacer, stats, len(devices), stop, timeout_s=connect_timeout_s))


async def start_and_pace(
    pacer: Pacer, stats: FleetStats, devices: int, stop: asyncio.Event, *, timeout_s: float
) -> None:
    clock, loop = pacer.clock, asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while clock.held and stats.online < devices and loop.time() < deadline and not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.1)
    if clock.held:
        log.info("fleet.connected", online=stats.online, devices=devices, sim_time=clock.now().isoformat())
    pacer.begin()  # what the fleet saw while connecting says nothing about its pace
    clock.release()
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0)
        pacer.adjust()
