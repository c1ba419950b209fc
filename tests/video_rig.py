"""A platform with its managed media server (nginx-rtmp) on the real Mosquitto, cameras that are ffmpeg
processes pushing a generated picture under a stream key, and the HTTP requests a player makes."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx2 as httpx

from broker_config.managed import ManagedMosquitto
from devices.messages import AiViolation
from devices.registry import Registry
from devices.topics import Channel, DeviceKind, DeviceTopic
from mqtt.device_link import MqttLink
from mqtt.link_options import LinkOptions
from rules.alerts import Alert
from rules.config import RulesConfig
from runtime.clock import SystemClock
from simulators.payloads import PayloadFactory
from tests.console_helpers import tenants_registry, write_passwords
from tests.platform_rig import serving
from video.ffmpeg import publish_target, synthetic_camera_argv
from video.keys import provision_stream_keys
from video.supervise import Supervised
from wiring.console import web_passwords_path
from wiring.platform import Platform
from wiring.settings import GatewaySettings, MqttSettings, RulesSettings, Settings, VideoSettings, WebSettings

T = TypeVar("T")
ALL_DAY = [{"start": "00:00", "end": "23:59:59", "every_day": True}]


def video_registry(*, pulled_from: str | None = None, kitchen_hours: list[dict[str, Any]] | None = None) -> Registry:
    """The console tests' three canteens (two districts), each camera pushing its picture and watched by parents
    all day; c-a also has a retired camera, and a pulled one when ``pulled_from`` is given."""
    data = tenants_registry().model_dump(mode="json", exclude_none=True)
    for canteen in data["canteens"]:
        canteen["live_to_parents"] = "all_day"
        canteen["kitchen_hours"] = kitchen_hours if kitchen_hours is not None else ALL_DAY
        for device in canteen["devices"]:
            if device["kind"] == "camera":
                device.update(video="push", area="cooking", heartbeat_s=5)
        if canteen["id"] == "c-a":
            canteen["kiosk_camera"] = "c-a-cam"
            canteen["devices"].append({"id": "c-a-old", "kind": "camera", "video": "push", "revoked": True})
            if pulled_from:
                canteen["devices"].append({"id": "c-a-nvr", "kind": "camera", "video": {"pull": pulled_from}})
    return Registry.model_validate(data)


@asynccontextmanager
async def video_platform(
    tmp: Path,
    broker: ManagedMosquitto,
    uid: str,
    registry: Registry,
    *,
    video: dict[str, Any] | None = None,
    rules: RulesConfig | None = None,
    open_location: bool = False,
) -> AsyncIterator[Platform]:
    """The platform with ``[video] mode = "managed"`` and the stream keys provisioned in ``tmp``; with
    ``open_location`` its media server also serves the fragments unauthorised (the benchmark's baseline)."""
    settings = Settings(
        data_dir=tmp,
        mqtt=MqttSettings(host=broker.host, port=broker.port),
        gateway=GatewaySettings(client_id=f"video-{uid}", canteens=[c.id for c in registry.canteens]),
        rules=RulesSettings(tick_s=0.2),
    )
    settings = settings.model_copy(
        update={
            "web": WebSettings(port=0),
            "video": VideoSettings(mode="managed", stat_interval_s=0.5, **(video or {})),
        }
    )
    provision_stream_keys(registry, tmp)
    write_passwords(web_passwords_path(settings), registry)
    platform = Platform(settings, registry, SystemClock(), rules_config=rules)
    if open_location and platform.video is not None and platform.video.server is not None:
        server = platform.video.server
        server.config = dataclasses.replace(server.config, open_location=True)
    async with serving(platform, broker):
        yield platform


def publishing(platform: Platform, camera_id: str) -> bool:
    """Whether the media server's statistics say the camera publishes its picture."""
    assert platform.video is not None
    picture = platform.video.board.get(camera_id)
    return picture is not None and picture.publishing


def _label(folder: Path, camera_id: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    label = folder / f"{camera_id}.label"
    label.write_text(camera_id, encoding="utf-8")
    return label


@asynccontextmanager
async def camera(
    platform: Platform, camera_id: str, key: str, tmp: Path, *, publish_url: str | None = None
) -> AsyncIterator[Supervised]:
    """An ffmpeg camera pushing a generated picture as ``camera_id`` with ``key``, until the block ends."""
    assert platform.video is not None
    label = _label(tmp, camera_id)
    target = publish_target(publish_url or platform.video.publish_url, camera_id, key)
    pusher = Supervised(f"test-{camera_id}", synthetic_camera_argv(target, label), tmp / f"{camera_id}.ffmpeg.log")
    stop = asyncio.Event()
    task = asyncio.create_task(pusher.run(stop))
    try:
        yield pusher
    finally:
        stop.set()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(task, 10)


def playlist_url(platform: Platform, credential: str, camera_id: str, viewer: str = "viewer-0001") -> str:
    assert platform.video is not None
    return f"{platform.video.link.play_url}/video/{credential}/{viewer}/{camera_id}/index.m3u8"


async def first_segment(client: httpx.AsyncClient, playlist: str) -> tuple[httpx.Response, str | None]:
    """The playlist's response, and the address of its newest segment (None when refused)."""
    response = await client.get(playlist)
    if response.status_code != 200:
        return response, None
    names = [line for line in response.text.splitlines() if line and not line.startswith("#")]
    return response, playlist.rsplit("/", 1)[0] + "/" + names[-1] if names else None


def now() -> dt.datetime:
    return SystemClock().now()


async def until(condition: Callable[[], Awaitable[T | None]], *, timeout: float = 60.0, what: str) -> T:
    """Ask an asynchronous ``condition`` (an HTTP request, say) until it gives a value, backing off to a quarter
    of a second between asks; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    pause = 0.05
    while True:
        value = await condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not hold within {timeout} s")
        await asyncio.sleep(pause)
        pause = min(pause * 1.5, 0.25)


def alerts_of(platform: Platform, rule: str) -> list[Alert]:
    """The platform's alerts of one rule, newest first, through the console's own connection to the store."""
    assert platform.console is not None
    return [a for a in platform.console.alerts.alerts() if a.rule == rule]


async def publish_violation(broker: ManagedMosquitto, canteen: str, camera_id: str) -> AiViolation:
    """An AI violation from ``camera_id`` over MQTT, above the rules' confidence floor."""
    violation = PayloadFactory(camera_id).ai_violation(now()).model_copy(update={"confidence": 0.97})
    topic = DeviceTopic(canteen, DeviceKind.CAMERA, camera_id, Channel.EVENT)
    async with MqttLink(LinkOptions(host=broker.host, port=broker.port, client_id=camera_id)) as link:
        await link.publish(str(topic), violation.model_dump_json().encode(), qos=1)
    return violation
