"""Many simulated devices over a few shared connections: the fleet's behaviour (simulators/behaviour.py) for runs
bigger or faster than a connection per device allows — a province of 54,000 devices (more than a process may
hold sockets), or a city at 60x.

For the open development broker only: one connection speaks for many devices, which the production ACL
forbids, and a device has no last will of its own (a connection's will could speak for one device only). Each
connection carries whole canteens and subscribes to their receipts, so every record still waits in its device's
outbox until the gateway confirms it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import heapq
import random

import structlog

from devices.messages import Receipt
from devices.registry import Registry
from devices.topics import Channel, device_subscription
from mqtt.device_link import MqttError, MqttLink
from mqtt.link_options import LinkOptions
from runtime.backoff import Backoff
from simulators.behaviour import Behaviour, DeviceModel, FleetStats
from simulators.fleet import reconnect_wait, sleep_until, start_and_pace
from simulators.pacer import Pacer
from simulators.payloads import boot_stamp
from simulators.simclock import SimClock

log = structlog.get_logger("shian.fleet")

#: QoS 1 messages in flight on one connection: the load mode's window (docs/simulators.md).
WINDOW = 100


class Shard:
    """The devices of some canteens on one connection, ticking from one schedule (a heap of due times)."""

    def __init__(
        self, number: int, models: list[DeviceModel], clock: SimClock, pacer: Pacer, *, host: str, port: int
    ) -> None:
        self.number, self.models, self.clock, self.pacer = number, models, clock, pacer
        self.host, self.port = host, port
        self.by_receipt_topic = {m.topic(Channel.RECEIPT): m for m in models}
        self.canteens = sorted({m.canteen.id for m in models})
        self.stats = models[0].stats
        self.rng = random.Random(number)
        #: The devices with records waiting for a receipt: only their outboxes are looked at on each wake (looking
        #: at all of a shard's thousands starved the process of the time to read its receipts).
        self.waiting: set[int] = set()

    async def run(self, stop: asyncio.Event) -> None:
        backoff = Backoff(cap_s=10.0)
        options = LinkOptions(
            host=self.host, port=self.port, client_id=f"shian-sim-{self.number}", max_inflight=WINDOW, keepalive_s=60
        )
        while not stop.is_set():
            try:
                async with MqttLink(options) as link:
                    await link.subscribe([device_subscription(c, Channel.RECEIPT) for c in self.canteens])
                    now = self.clock.now()
                    await self._publish(link, [(m.topic(Channel.STATUS), m.status("online", now)) for m in self.models])
                    self.stats.online += len(self.models)
                    backoff.reset()
                    try:
                        await self._publish(link, self._due_records(everything=True))
                        receipts = asyncio.create_task(self._receipts(link))
                        try:
                            await self._live(link, stop)
                        finally:
                            receipts.cancel()
                    finally:
                        self.stats.online -= len(self.models)
            except MqttError as exc:
                self.stats.disconnects += 1
                log.warning("fleet.shard_disconnected", shard=self.number, devices=len(self.models), error=str(exc))
                await reconnect_wait(self.clock, backoff, self.rng, stop)

    async def _live(self, link: MqttLink, stop: asyncio.Event) -> None:
        """Every device on its own fixed schedule of simulated time, as on a connection of its own."""
        now = self.clock.now()
        schedule = [
            (now + dt.timedelta(seconds=m.entry.heartbeat_s) * m.rng.random(), n) for n, m in enumerate(self.models)
        ]
        heapq.heapify(schedule)
        while not stop.is_set():
            if await sleep_until(self.clock, schedule[0][0], stop):
                return
            now, out = self.clock.now(), []
            while schedule[0][0] <= now:
                due, n = heapq.heappop(schedule)
                model = self.models[n]
                interval = dt.timedelta(seconds=model.entry.heartbeat_s)
                self.pacer.observe((now - due) / interval)
                telemetry = model.tick(now)
                if telemetry is not None:
                    out.append((model.topic(Channel.TELEMETRY), telemetry))
                if model.outbox.pending:
                    self.waiting.add(n)
                heapq.heappush(schedule, (max(due + interval, now), n))
            await self._publish(link, out + self._due_records())

    def _due_records(self, *, everything: bool = False) -> list[tuple[str, bytes]]:
        out = []
        for n in list(self.waiting):
            outbox = self.models[n].outbox
            if not outbox.pending:
                self.waiting.discard(n)  # every record confirmed
                continue
            for msg_id, entry in outbox.due(all_unacknowledged=everything):
                out.append((entry.topic, entry.payload))
                outbox.sent(msg_id)
        return out

    async def _publish(self, link: MqttLink, messages: list[tuple[str, bytes]]) -> None:
        for i in range(0, len(messages), WINDOW):
            window = messages[i : i + WINDOW]
            await asyncio.gather(*(link.publish(t, p, qos=1, retain=t.endswith("/status")) for t, p in window))
            self.stats.published += len(window)

    async def _receipts(self, link: MqttLink) -> None:
        """Most receipts answer telemetry, and most devices have no record waiting: those are counted and not
        parsed (a province's fleet hears over a thousand a second)."""
        async for incoming in link.messages():
            self.stats.receipts += 1
            model = self.by_receipt_topic.get(incoming.topic)
            if model is None or not model.outbox.pending:
                continue
            with contextlib.suppress(ValueError):
                receipt = Receipt.model_validate_json(incoming.payload, strict=False)
                model.outbox.receipt(receipt.msg_id, receipt.status)


async def run_multiplexed(
    registry: Registry,
    clock: SimClock,
    *,
    host: str,
    port: int,
    stop: asyncio.Event,
    stats: FleetStats,
    connections: int = 8,
    behaviour: Behaviour | None = None,
) -> None:
    """Every device of ``registry`` on ``connections`` shared connections (whole canteens on each), until
    ``stop`` is set; the clock held until they are all connected, then paced as the fleet's."""
    pacer = Pacer(clock, clock.speed)
    stats.pacer = pacer
    behaviour, boot = behaviour or Behaviour(), boot_stamp()  # a restart sends no msg_id it sent before
    shards: list[list[DeviceModel]] = [[] for _ in range(connections)]
    for n, canteen in enumerate(registry.canteens):
        shards[n % connections] += [
            DeviceModel(canteen, d, registry, stats=stats, behaviour=behaviour, boot=boot)
            for d in canteen.devices
            if not d.revoked
        ]
    devices = sum(len(s) for s in shards)
    async with asyncio.TaskGroup() as group:
        for n, models in enumerate(shards):
            if models:
                group.create_task(Shard(n, models, clock, pacer, host=host, port=port).run(stop))
        group.create_task(start_and_pace(pacer, stats, devices, stop, timeout_s=120.0))
