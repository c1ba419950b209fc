"""A handful of simulated devices in one canteen, one of them buggy, so that a fresh machine shows something.

The full city and its scenarios live in their own modules; this one is the smallest fleet that exercises every
message type and the dead-letter path.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import sys
from dataclasses import dataclass, field

import structlog
from pydantic import BaseModel

from devices.registry import Canteen, DeviceEntry, Registry
from devices.topics import Channel, DeviceKind, DeviceTopic
from mqtt.device_link import MqttError, MqttLink
from mqtt.link_options import LastWill, LinkOptions
from runtime.backoff import Backoff
from runtime.clock import Clock
from simulators.cameras import chosen_cameras, pushers_for
from simulators.payloads import PayloadFactory, boot_stamp
from video.supervise import Supervised
from wiring.broker import BrokerAddress
from wiring.console import demo_logins, demo_public_links
from wiring.loops import watch_operator_topics
from wiring.platform import Platform

log = structlog.get_logger("shian.demo")

OFFLINE_TIMEOUT_S = 2.0
#: The demo detector's share of failed tests: the programme sees about 1–3 %.
DEMO_FAIL_RATE = 0.02
#: The client id of the demo's view of the operator topics.
WATCHER = "shian-demo-watch"


@dataclass(frozen=True, kw_only=True)
class DemoOptions:
    host: str
    port: int
    #: Seconds between two readings of one device.
    interval_s: float = 2.0
    seed: int = 0
    #: The msg_ids' start stamp: a restarted demo never sends an id it sent before.
    boot: str = field(default_factory=boot_stamp)


def _malformed_payloads(factory: PayloadFactory, clock: Clock) -> list[tuple[str, bytes]]:
    """What a device with a firmware bug sends: each is refused by the gateway for its own reason."""
    good = factory.camera_stream(clock.now()).model_dump(mode="json")
    return [
        ("truncated JSON", b'{"type": "camera.stream", "msg_id": "cut-off'),
        ("string for a number", json.dumps({**good, "fps": "25"}).encode()),
        ("timestamp without offset", json.dumps({**good, "ts": "2026-11-25T11:30:00"}).encode()),
        ("unknown field", json.dumps({**good, "firmware": "1.0.3"}).encode()),
    ]


@dataclass
class DemoDevice:
    canteen: Canteen
    device: DeviceEntry
    options: DemoOptions
    clock: Clock
    buggy: bool
    #: Set to stop. Cancellation alone is not enough on Python 3.11: asyncio.wait_for (inside aiomqtt's
    #: publish) can swallow a cancel that arrives as the PUBACK does, and the device would go on forever.
    stop: asyncio.Event

    def __post_init__(self) -> None:
        self.factory = PayloadFactory(self.device.id, self.options.seed, boot=self.options.boot)

    def topic(self, channel: Channel) -> str:
        return str(DeviceTopic(self.canteen.id, self.device.kind, self.device.id, channel))

    def _status(self, state: str) -> bytes:
        return self.factory.status(state, self.clock.now()).model_dump_json().encode()

    async def run(self) -> None:
        """Connect as the device (its own client id and last will) and publish until ``stop`` is set. A dropped
        connection, or one taken over by a client using the device's id (a developer's ``mosquitto_pub -i``),
        is logged and made again with backoff: a device never ends the demo."""
        backoff = Backoff(cap_s=10.0)
        while not self.stop.is_set():
            try:
                await self._connected()
                return
            except MqttError as exc:
                delay = backoff.next_delay()
                log.warning("device.reconnecting", device=self.device.id, error=str(exc), retry_in_s=delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), delay)

    async def _connected(self) -> None:
        will = LastWill(self.topic(Channel.STATUS), self._status("offline"))
        link_options = LinkOptions(
            host=self.options.host,
            port=self.options.port,
            client_id=self.device.id,
            username=self.device.id,
            will=will,
        )
        async with MqttLink(link_options) as link:
            await link.publish(self.topic(Channel.STATUS), self._status("online"), retain=True)
            log.info("device.online", device=self.device.id, kind=str(self.device.kind), buggy=self.buggy)
            try:
                await self._publish_forever(link)
            finally:
                # A clean stop says so; the last will covers the unclean ones.
                try:
                    async with asyncio.timeout(OFFLINE_TIMEOUT_S):
                        await link.publish(self.topic(Channel.STATUS), self._status("offline"), retain=True)
                except (TimeoutError, MqttError):  # a lost connection leaves it to the last will
                    log.warning("device.offline_not_confirmed", device=self.device.id)

    def _readings(self, tick: int) -> tuple[BaseModel, list[BaseModel]]:
        """The telemetry and events of one tick."""
        now, factory = self.clock.now(), self.factory
        if self.device.kind is DeviceKind.DETECTOR:
            events: list[BaseModel] = [factory.test_result(now, fail_rate=DEMO_FAIL_RATE)] if tick % 2 == 0 else []
            if tick == 0:  # the morning's deliveries, in the receiving ledger before their tests
                events = [*factory.deliveries(now), *events]
            return factory.detector_heartbeat(now), events
        if self.device.kind is DeviceKind.CABINET:
            lunch = next((m for m in self.canteen.meals if m.meal == "lunch"), None)
            reading = factory.cabinet_reading(now, samples_held=len(lunch.dishes) if lunch else 0)
            if tick == 0 and lunch:
                return reading, [
                    factory.sample_retained(now, "lunch", dish, slot) for slot, dish in enumerate(lunch.dishes, 1)
                ]
            return reading, []
        return factory.camera_stream(now), [factory.ai_violation(now)] if tick % 3 == 2 else []

    async def _publish_forever(self, link: MqttLink) -> None:
        bad = itertools.cycle(_malformed_payloads(self.factory, self.clock) if self.buggy else [])
        for tick in itertools.count():
            if self.stop.is_set():
                return
            telemetry, events = self._readings(tick)
            await link.publish(self.topic(Channel.TELEMETRY), telemetry.model_dump_json().encode())
            for event in events:
                await link.publish(self.topic(Channel.EVENT), event.model_dump_json().encode())
            if self.buggy and tick % 2 == 1:
                what, payload = next(bad)
                log.info("device.sends_malformed", device=self.device.id, what=what)
                await link.publish(self.topic(Channel.TELEMETRY), payload)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), self.options.interval_s)


async def run_demo_fleet(registry: Registry, options: DemoOptions, clock: Clock, stop: asyncio.Event) -> None:
    """Every device of the registry's first canteen, until ``stop`` is set; the last camera is the buggy one."""
    canteen = registry.canteens[0]
    cameras = [d for d in canteen.devices if d.kind is DeviceKind.CAMERA]
    buggy = cameras[-1].id if cameras else None
    async with asyncio.TaskGroup() as group:
        for device in canteen.devices:
            group.create_task(DemoDevice(canteen, device, options, clock, buggy=device.id == buggy, stop=stop).run())


async def demo_devices(platform: Platform, address: BrokerAddress, stop: asyncio.Event) -> None:
    """What ``shian demo`` adds to the platform: the operator's view of dead letters and alerts in the log, and
    the demo fleet of the registry's first canteen, until ``stop`` is set. Prints the console's address and a
    school's login first, so that a newcomer has something to open."""
    announce_console(platform)
    platform.add_helper(watch_operator_topics(LinkOptions(host=address.host, port=address.port, client_id=WATCHER)))
    if platform.video is not None:
        for pusher in demo_pictures(platform):
            platform.attach(pusher.run(stop))
    await run_demo_fleet(platform.registry, DemoOptions(host=address.host, port=address.port), platform.clock, stop)


def demo_pictures(platform: Platform) -> list[Supervised]:
    """The demo canteen's cameras streaming a generated picture (``[video] simulated_share`` of them)."""
    own = {d.id for d in platform.registry.canteens[0].devices}
    share = platform.settings.video.simulated_share
    return pushers_for(platform, [c for c in chosen_cameras(platform.registry, share) if c in own])


def announce_console(platform: Platform) -> None:
    """The console's URL and the demo accounts' logins (each made once per data directory), on stderr."""
    server = platform.console_server
    if server is None:
        return
    logins = demo_logins(platform.settings, platform.registry)
    url = platform.settings.web.public_url or server.url
    lines = [f"控制台 Console: {url}"]
    lines += [f"  登录 login: {username}  密码 password: {password}" for username, password in logins.items()]
    if platform.console is not None and platform.registry.canteens:
        kiosk, public = demo_public_links(platform.console, platform.settings, platform.registry.canteens[0].id)
        lines += [f"快检公示屏 Kiosk: {url}{kiosk}", f"家长日报 Parents' page: {url}{public}"]
    print("\n".join(lines), file=sys.stderr, flush=True)
