"""A handful of simulated devices in one canteen, one of them buggy, so that a fresh machine shows something.

The full city and its scenarios live in their own modules; this one is the smallest fleet that exercises every
message type and the dead-letter path.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from dataclasses import dataclass

import structlog
from pydantic import BaseModel

from devices.registry import Canteen, DeviceEntry, Registry
from devices.topics import Channel, DeviceKind, DeviceTopic
from gateway.mqtt_link import LastWill, LinkOptions, MqttLink
from shian.clock import Clock
from simulators.payloads import PayloadFactory

log = structlog.get_logger("shian.demo")


@dataclass(frozen=True, kw_only=True)
class DemoOptions:
    host: str
    port: int
    #: Seconds between two readings of one device.
    interval_s: float = 2.0
    seed: int = 0


def _topic(canteen: Canteen, device: DeviceEntry, channel: Channel) -> str:
    return str(DeviceTopic(canteen.id, device.kind, device.id, channel))


def _malformed_payloads(factory: PayloadFactory, clock: Clock) -> list[tuple[str, bytes]]:
    """What a device with a firmware bug sends: each is refused by the gateway for its own reason."""
    good = factory.camera_stream(clock.now()).model_dump(mode="json")
    return [
        ("truncated JSON", b'{"type": "camera.stream", "msg_id": "cut-off'),
        ("string for a number", json.dumps({**good, "fps": "25"}).encode()),
        ("timestamp without offset", json.dumps({**good, "ts": "2026-11-25T11:30:00"}).encode()),
        ("unknown field", json.dumps({**good, "firmware": "1.0.3"}).encode()),
    ]


async def run_device(
    registry: Registry, canteen: Canteen, device: DeviceEntry, options: DemoOptions, clock: Clock, *, buggy: bool
) -> None:
    """Connect as ``device`` (its own client id and last will) and publish until cancelled."""
    factory = PayloadFactory(device.id, options.seed)
    status_topic = _topic(canteen, device, Channel.STATUS)
    will = LastWill(status_topic, factory.status("offline", clock.now()).model_dump_json().encode())
    link_options = LinkOptions(host=options.host, port=options.port, client_id=device.id, username=device.id,
                               will=will)
    async with MqttLink(link_options) as link:
        await link.publish(status_topic, factory.status("online", clock.now()).model_dump_json().encode(),
                           retain=True)
        log.info("device.online", device=device.id, kind=str(device.kind), buggy=buggy)
        bad = itertools.cycle(_malformed_payloads(factory, clock) if buggy else [])
        for tick in itertools.count():
            now = clock.now()
            telemetry: BaseModel
            events: list[BaseModel] = []
            if device.kind is DeviceKind.DETECTOR:
                telemetry = factory.detector_heartbeat(now)
                if tick % 2 == 0:
                    events.append(factory.test_result(now, fail_rate=0.1))
            elif device.kind is DeviceKind.CABINET:
                lunch = next((m for m in canteen.meals if m.meal == "lunch"), None)
                telemetry = factory.cabinet_reading(now, samples_held=len(lunch.dishes) if lunch else 0)
                if tick == 0 and lunch:
                    events += [factory.sample_retained(now, "lunch", dish, i + 1) for i, dish in enumerate(lunch.dishes)]
            else:
                telemetry = factory.camera_stream(now)
                if tick % 3 == 2:
                    events.append(factory.ai_violation(now))
            await link.publish(_topic(canteen, device, Channel.TELEMETRY), telemetry.model_dump_json().encode())
            for event in events:
                await link.publish(_topic(canteen, device, Channel.EVENT), event.model_dump_json().encode())
            if buggy and tick % 2 == 1:
                what, payload = next(bad)
                log.info("device.sends_malformed", device=device.id, what=what)
                await link.publish(_topic(canteen, device, Channel.TELEMETRY), payload)
            await asyncio.sleep(options.interval_s)


async def run_fleet(registry: Registry, options: DemoOptions, clock: Clock) -> None:
    """Every device of the registry's first canteen; the last camera is the buggy one."""
    canteen = registry.canteens[0]
    cameras = [d for d in canteen.devices if d.kind is DeviceKind.CAMERA]
    buggy = cameras[-1].id if cameras else None
    async with asyncio.TaskGroup() as group:
        for device in canteen.devices:
            group.create_task(run_device(registry, canteen, device, options, clock, buggy=device.id == buggy))
