"""Simulated cameras that stream a picture: ffmpeg's generated test picture with the canteen, camera, kitchen
area and clock burned in, pushed to the media server under each camera's own stream key, as a real camera
would. Low resolution and bitrate, so that a laptop carries the demo's cameras and a share of a city's."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import structlog

from devices.registry import Registry
from devices.vocabulary import AREAS
from runtime.clock import Clock
from video.ffmpeg import publish_target, synthetic_camera_argv
from video.keys import clear_keys, provision_stream_keys
from video.supervise import Supervised
from wiring.platform import Platform

log = structlog.get_logger("shian.simulate")


def with_pictures(data: dict[str, Any], share: float, seed: int = 0) -> dict[str, Any]:
    """A registry's data (a generated city's) whose cameras, ``share`` of them chosen the same on every run,
    push a picture (``video: push``); the others keep sending health messages only."""
    cameras = [d for c in data["canteens"] for d in c["devices"] if d["kind"] == "camera"]
    chosen = random.Random(seed).sample(range(len(cameras)), round(len(cameras) * share))
    for index in chosen:
        cameras[index]["video"] = "push"
    return data


def chosen_cameras(registry: Registry, share: float, seed: int = 0) -> list[str]:
    """The pushing cameras (``video: push``) that stream a picture: ``share`` of them, the same on every run."""
    cameras = [d.id for c in registry.canteens for d in c.devices if d.streams and d.video == "push"]
    if share >= 1:
        return cameras
    picker = random.Random(seed)
    return sorted(picker.sample(cameras, round(len(cameras) * share)))


def pushers_for(platform: Platform, cameras: list[str]) -> list[Supervised]:
    """The pushers of ``cameras`` against the platform's media server, each under a stream key provisioned
    here (in the data directory, where the platform reads the keys' digests)."""
    settings, video = platform.settings, platform.video
    assert video is not None
    keys_dir = settings.video.stream_keys.parent if settings.video.stream_keys else settings.data_dir
    provision_stream_keys(platform.registry, keys_dir)
    return picture_pushers(
        platform.registry,
        cameras,
        publish_url=video.publish_url,
        keys=clear_keys(keys_dir),
        workdir=settings.data_dir / "video" / "simulated",
        clock=platform.clock,
    )


def picture_pushers(
    registry: Registry, cameras: list[str], *, publish_url: str, keys: dict[str, str], workdir: Path, clock: Clock
) -> list[Supervised]:
    """One supervised ffmpeg per camera, to run until the caller's stop event (a camera without a provisioned
    key is skipped, and said so)."""
    workdir.mkdir(parents=True, exist_ok=True)
    zone = {"TZ": registry.timezone}
    pushers = []
    for camera in cameras:
        found = registry.assignment(camera)
        if found is None or camera not in keys:
            log.warning("simulate.camera_without_key", camera=camera)
            continue
        area = AREAS.get(found.device.area or "", ("后厨", "kitchen"))[0]
        label = workdir / f"{camera}.txt"
        label.write_text(f"{found.canteen.name} · {area}\n{camera} · 模拟画面", encoding="utf-8")
        target = publish_target(publish_url, camera, keys[camera])
        argv = synthetic_camera_argv(target, label)
        # the clock burned in is the region's local time, as a real camera's on-screen clock is
        pushers.append(Supervised(f"camera-{camera}", argv, workdir / f"{camera}.log", clock=clock, env=zone))
    return pushers
