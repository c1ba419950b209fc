"""A simulated fleet: every device of a registry on its own MQTT connection (its id as client id and username),
behaving like the real thing (simulators/behaviour.py) on a shared simulated clock, with an outbox for its
records."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import random
import resource
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import structlog

from devices.messages import Receipt
from devices.registry import Registry
from devices.topics import Channel
from mqtt.bus import BusError
from mqtt.link_options import LastWill, LinkOptions
from mqtt.service_link import ServiceLink
from runtime.backoff import Backoff
from simulators.behaviour import Behaviour, DeviceModel, FleetStats
from simulators.pacer import Pacer
from simulators.payloads import boot_stamp
from simulators.simclock import SimClock
from simulators.ticker import Ticker

log = structlog.get_logger("shian.fleet")

#: Some messages never get a receipt (a record the gateway ignores, a status a partition does not own): in a
#: small fleet sending a few a second those alone would look like seconds of backlog.
BACKLOG_WORTH_NOTING = 1000


def raise_file_limit() -> int:
    """Each device holds a socket: lift the soft descriptor limit to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class FleetDevice:
    """A device on a connection of its own, as in the field: its id as client id and username, ``online``
    retained and an ``offline`` last will, reconnecting with backoff. While online it is on the fleet's
    :class:`~simulators.ticker.Ticker`, which steps it once per heartbeat interval.

    The connection is the platform's own asyncio client (:class:`mqtt.service_link.ServiceLink`), not the
    device SDK's aiomqtt: the same MQTT 5, without paho's per-client housekeeping, which for a city's 4,934
    connections cost about a core at real time (docs/simulators.md)."""

    def __init__(
        self,
        model: DeviceModel,
        clock: SimClock,
        *,
        host: str,
        port: int,
        ticker: Ticker,
        password: str | None = None,
        tls_ca: Path | None = None,
    ) -> None:
        self.model, self.clock, self.ticker = model, clock, ticker
        self.host, self.port, self.password, self.tls_ca = host, port, password, tls_ca
        self.interval = dt.timedelta(seconds=model.entry.heartbeat_s)
        self._telemetry_topic = model.topic(Channel.TELEMETRY)
        self._link: ServiceLink | None = None

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
                async with ServiceLink(options) as link:
                    await link.subscribe([model.topic(Channel.RECEIPT)])
                    await link.publish(
                        model.topic(Channel.STATUS), model.status("online", self.clock.now()), retain=True
                    )
                    stats.online += 1
                    backoff.reset()
                    self._link = link
                    try:
                        self._flush(link, everything=True)  # what the last connection left unconfirmed
                        # spread the fleet over a tick
                        self.ticker.join(self, self.clock.now() + self.interval * model.rng.random())
                        await until_stopped_or_failed(self._receipts(link), stop)
                    finally:
                        self.ticker.leave(self)
                        self._link = None
                        stats.online -= 1
            except BusError as exc:
                stats.disconnects += 1
                # debug: a broker restart under a city would log thousands; the status line counts them
                log.debug("device.reconnecting", device=model.entry.id, error=str(exc))
                await reconnect_wait(self.clock, backoff, model.rng, stop)

    async def _receipts(self, link: ServiceLink) -> None:
        """Most receipts answer telemetry and find no record waiting: those are counted, not parsed."""
        outbox, stats = self.model.outbox, self.model.stats
        while True:
            incoming = await link.receive(256)
            link.ack(incoming)
            stats.receipts += len(incoming)
            for message in incoming:
                if outbox.pending:
                    with contextlib.suppress(ValueError):
                        receipt = Receipt.model_validate_json(message.payload, strict=False)
                        outbox.receipt(receipt.msg_id, receipt.status)

    def step(self, now: dt.datetime) -> None:
        """One tick: the telemetry, then the records that wait for a receipt. Posted, not awaited: the broker's
        acknowledgements settle on the read side, and a record lost with the connection is sent again."""
        link, model = self._link, self.model
        if link is None:
            return
        telemetry = model.tick(now)
        if telemetry is not None:
            link.post(self._telemetry_topic, telemetry)
            model.stats.published += 1
        if model.outbox.pending:
            self._flush(link)

    def _flush(self, link: ServiceLink, *, everything: bool = False) -> None:
        outbox = self.model.outbox
        for msg_id, entry in outbox.due(all_unacknowledged=everything):
            link.post(entry.topic, entry.payload)
            outbox.sent(msg_id)
            self.model.stats.published += 1


async def until_stopped_or_failed(work: Coroutine[Any, Any, None], stop: asyncio.Event) -> None:
    """Run ``work`` until ``stop`` is set (then cancel it) or it fails (then raise its error)."""
    task, stopped = asyncio.ensure_future(work), asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait((task, stopped), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for pending in (task, stopped):
            pending.cancel()
    if task.done() and not task.cancelled() and (error := task.exception()) is not None:
        raise error


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
    pacer = Pacer(clock, clock.speed)
    stats.pacer = pacer
    ticker = Ticker(clock, pacer.observe)
    devices = fleet_devices(
        registry,
        clock,
        ticker,
        host=host,
        port=port,
        stats=stats,
        behaviour=behaviour,
        passwords=passwords,
        tls_ca=tls_ca,
    )
    async with asyncio.TaskGroup() as group:
        group.create_task(run_devices(devices, ticker, stop, connects_per_s=connects_per_s))
        group.create_task(start_and_pace(pacer, stats, len(devices), stop, timeout_s=connect_timeout_s))


def fleet_devices(
    registry: Registry,
    clock: SimClock,
    ticker: Ticker,
    *,
    host: str,
    port: int,
    stats: FleetStats,
    behaviour: Behaviour | None = None,
    passwords: dict[str, str] | None = None,
    tls_ca: Path | None = None,
) -> list[FleetDevice]:
    """A device on a connection of its own for every device of ``registry`` that is not revoked."""
    passwords, boot = passwords or {}, boot_stamp()  # a restarted fleet sends no msg_id it sent before
    return [
        FleetDevice(
            DeviceModel(c, d, registry, stats=stats, behaviour=behaviour or Behaviour(), boot=boot),
            clock,
            host=host,
            port=port,
            ticker=ticker,
            password=passwords.get(d.id),
            tls_ca=tls_ca,
        )
        for c in registry.canteens
        for d in c.devices
        if not d.revoked
    ]


async def run_devices(
    devices: list[FleetDevice], ticker: Ticker, stop: asyncio.Event, *, connects_per_s: float = 500.0
) -> None:
    """Connect ``devices`` (``connects_per_s`` at most: no connection storm) and tick them until ``stop``."""
    raise_file_limit()
    async with asyncio.TaskGroup() as group:
        group.create_task(ticker.run(stop))
        for n, device in enumerate(devices):
            group.create_task(device.run(stop))
            if n % 50 == 49:
                await asyncio.sleep(50 / connects_per_s)


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
    sent = stats.published
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0)
        # the gateway answers every QoS 1 message: what has no receipt yet is the platform's backlog
        rate, sent = max(stats.published - sent, 1), stats.published
        backlog = stats.published - stats.receipts
        pacer.adjust(behind_s=backlog / rate if backlog > BACKLOG_WORTH_NOTING else 0.0)
