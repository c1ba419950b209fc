"""The live kitchen on the real media server (nginx-rtmp) with ffmpeg as the cameras: a camera publishes only
under its own key; every playlist and segment is authorised by the console, for this canteen's parents' token
and nobody else's, and a revoked token stops at once; viewers are limited; a stopped picture raises
camera.video_lost in kitchen hours and its return resolves it; a pulled camera is relayed and restarted; an AI
violation keeps a still frame from the stream; /metrics counts it all."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
import yaml

from broker_config.managed import ManagedMosquitto
from devices.topics import Channel, DeviceKind, DeviceTopic
from mqtt.device_link import MqttLink
from mqtt.link_options import LinkOptions
from rules.config import RulesConfig
from simulators.payloads import PayloadFactory
from tests.helpers import eventually
from tests.video_rig import (
    alerts_of,
    camera,
    first_segment,
    now,
    playlist_url,
    publish_violation,
    publishing,
    until,
    video_platform,
    video_registry,
)
from video.evidence import fragments, take_clip
from video.keys import clear_keys
from video.managed import ManagedMediaServer
from wiring.platform import Platform

pytestmark = pytest.mark.slow


def _public_token(platform: Platform, canteen: str) -> tuple[str, str]:
    assert platform.console is not None
    return platform.console.store.issue_public_token(canteen, "public", now())


async def test_a_camera_publishes_only_under_its_own_key(tmp_path: Path, mosquitto: ManagedMosquitto, uid: str) -> None:
    async with video_platform(tmp_path, mosquitto, uid, video_registry()) as platform:
        keys, access = clear_keys(tmp_path), platform.console.video  # type: ignore[union-attr]
        assert access is not None
        async with camera(platform, "c-a-cam", keys["c-b-cam"], tmp_path / "other"):  # another camera's key
            await eventually(lambda: access.publish_refused["wrong_key"] >= 1, what="the other camera's key refused")
        async with camera(platform, "c-a-cam", "a-key-nobody-was-given", tmp_path / "unknown"):
            await eventually(lambda: access.publish_refused["wrong_key"] >= 2, what="the unknown key refused")
        async with camera(platform, "c-a-old", keys.get("c-a-old", "retired"), tmp_path / "retired"):
            await eventually(lambda: access.publish_refused["retired_camera"] >= 1, what="the retired camera refused")
        async with camera(platform, "nobody-cam", "x" * 20, tmp_path / "stranger"):
            await eventually(lambda: access.publish_refused["unknown_camera"] >= 1, what="the unknown camera refused")
        assert not publishing(platform, "c-a-cam")
        assert "c-a-old" not in keys  # provisioning gives a retired camera no key
        async with camera(platform, "c-a-cam", keys["c-a-cam"], tmp_path / "own"):
            await eventually(lambda: publishing(platform, "c-a-cam"), what="the camera's own key accepted")


async def test_every_playlist_and_segment_is_authorised_by_the_console(
    tmp_path: Path, mosquitto: ManagedMosquitto, uid: str
) -> None:
    async with video_platform(tmp_path, mosquitto, uid, video_registry()) as platform:
        keys = clear_keys(tmp_path)
        token_id, token = _public_token(platform, "c-a")
        _, other_token = _public_token(platform, "c-b")
        async with camera(platform, "c-a-cam", keys["c-a-cam"], tmp_path), httpx.AsyncClient(timeout=10) as client:
            await eventually(lambda: publishing(platform, "c-a-cam"), what="the picture")
            own = playlist_url(platform, f"p.{token}", "c-a-cam")

            async def segment_listed() -> str | None:
                return (await first_segment(client, own))[1]

            segment = await until(segment_listed, what="a segment in the playlist")
            served = await client.get(segment)
            assert served.status_code == 200
            assert served.content[:1] == b"\x47"  # an MPEG-TS packet's sync byte: video, served by nginx
            assert platform.video is not None
            counted = platform.video.served
            assert counted is not None
            await eventually(lambda: counted.bytes_out["c-a-cam"] >= len(served.content), what="bytes out counted")
            assert "shian_video_bytes_out_total" in _metrics(platform)

            # another canteen's token, a forged one, no credential kind: refused by the media server itself
            for credential in (f"p.{other_token}", "p.forged-token-0000", f"x.{token}"):
                for address in (
                    playlist_url(platform, credential, "c-a-cam"),
                    segment.replace(f"p.{token}", credential),
                ):
                    refused = await client.get(address)
                    assert refused.status_code == 403, (credential, address)
                    assert refused.headers.get("server", "").startswith("nginx")

            # revoked: the same viewer's next playlist and segment are refused once nginx's cached yes expires
            platform.console.store.revoke_public_token(token_id, now())  # type: ignore[union-attr]

            async def refused_now() -> bool:
                return (await client.get(own)).status_code == 403 and (await client.get(segment)).status_code == 403

            await until(refused_now, timeout=10, what="the revoked token refused")


async def test_the_kiosk_shows_its_one_camera(tmp_path: Path, mosquitto: ManagedMosquitto, uid: str) -> None:
    async with video_platform(tmp_path, mosquitto, uid, video_registry()) as platform:
        assert platform.console is not None
        keys = clear_keys(tmp_path)
        _, kiosk = platform.console.store.issue_public_token("c-a", "kiosk", now())
        async with camera(platform, "c-a-cam", keys["c-a-cam"], tmp_path), httpx.AsyncClient(timeout=10) as client:
            await eventually(lambda: publishing(platform, "c-a-cam"), what="the picture")
            page = await client.get(f"{platform.console_server.url}/kiosk/c-a", params={"t": kiosk})  # type: ignore[union-attr]
            assert 'class="kiosk-camera camera ' in page.text
            own = playlist_url(platform, f"k.{kiosk}", "c-a-cam")

            async def plays() -> bool:
                return (await client.get(own)).status_code == 200

            await until(plays, what="the kiosk's camera playing")
            assert (await client.get(playlist_url(platform, f"k.{kiosk}", "c-b-cam"))).status_code == 403


async def test_viewers_beyond_the_limit_are_told_so(tmp_path: Path, mosquitto: ManagedMosquitto, uid: str) -> None:
    limits = {"max_viewers_per_stream": 1, "max_viewers": 1}
    async with video_platform(tmp_path, mosquitto, uid, video_registry(), video=limits) as platform:
        keys = clear_keys(tmp_path)
        _, token = _public_token(platform, "c-a")
        async with camera(platform, "c-a-cam", keys["c-a-cam"], tmp_path), httpx.AsyncClient(timeout=10) as client:
            await eventually(lambda: publishing(platform, "c-a-cam"), what="the picture")
            first_url = playlist_url(platform, f"p.{token}", "c-a-cam", viewer="first-viewer")

            async def first_plays() -> httpx.Response | None:
                response = await client.get(first_url)
                return response if response.status_code == 200 else None

            first = await until(first_plays, what="the first viewer's playlist")
            second = await client.get(playlist_url(platform, f"p.{token}", "c-a-cam", viewer="second-viewer"))
            assert (first.status_code, second.status_code) == (200, 403)
            state = await client.get(f"{platform.console_server.url}/media/state/c-a-cam", params={"c": f"p.{token}"})  # type: ignore[union-attr]
            assert state.json()["state"] == "busy"
            assert "人太多" in state.json()["words"]
            assert (
                await client.get(playlist_url(platform, f"p.{token}", "c-a-cam", viewer="first-viewer"))
            ).status_code == 200


async def test_a_stopped_picture_raises_video_lost_and_its_return_resolves_it(
    tmp_path: Path, mosquitto: ManagedMosquitto, uid: str
) -> None:
    rules = RulesConfig(video_lost_after=dt.timedelta(seconds=2))
    async with video_platform(tmp_path, mosquitto, uid, video_registry(), rules=rules) as platform:
        keys = clear_keys(tmp_path)
        heartbeat = _heartbeat(mosquitto, "c-a", "c-a-cam")
        async with camera(platform, "c-a-cam", keys["c-a-cam"], tmp_path / "first"):
            await eventually(lambda: publishing(platform, "c-a-cam"), what="the picture")
            await heartbeat()
        # the camera goes on beating on MQTT, but its picture stopped: an alert within the threshold (plus ticks)

        async def beating_without_picture() -> bool:
            await heartbeat()
            return _lost(platform) == "open"

        await until(beating_without_picture, what="camera.video_lost raised")
        async with camera(platform, "c-a-cam", keys["c-a-cam"], tmp_path / "again"):
            await eventually(lambda: _lost(platform) == "resolved", what="camera.video_lost resolved")
        assert len(alerts_of(platform, "camera.video_lost")) == 1


def _lost(platform: Platform) -> str | None:
    found = alerts_of(platform, "camera.video_lost")
    return found[0].state if found else None


def _heartbeat(broker: ManagedMosquitto, canteen: str, device: str):  # type: ignore[no-untyped-def]
    factory = PayloadFactory(device)

    async def send() -> None:
        topic = DeviceTopic(canteen, DeviceKind.CAMERA, device, Channel.TELEMETRY)
        async with MqttLink(LinkOptions(host=broker.host, port=broker.port, client_id=device)) as link:
            await link.publish(str(topic), factory.camera_stream(now()).model_dump_json().encode(), qos=1)

    return send


async def test_a_pulled_camera_is_relayed_and_its_relay_restarted(
    tmp_path: Path, mosquitto: ManagedMosquitto, uid: str
) -> None:
    """An NVR that only serves its streams: here a second nginx-rtmp serving c-b-cam's picture over HTTP."""
    nvr = ManagedMediaServer(tmp_path / "nvr", "http://127.0.0.1:9", open_location=True)
    registry = video_registry(pulled_from=f"{nvr.http_url}/open/c-b-cam/index.m3u8")
    async with video_platform(tmp_path / "platform", mosquitto, uid, registry) as platform:
        assert platform.console_server is not None
        assert platform.video is not None
        # the NVR's cameras are checked by the same console, with the same secret
        nvr.set_console_url(platform.console_server.url)
        nvr.config = dataclasses.replace(nvr.config, hook_secret=platform.video.link.hook_secret)
        nvr.start()
        try:
            keys = clear_keys(tmp_path / "platform")
            async with camera(platform, "c-b-cam", keys["c-b-cam"], tmp_path, publish_url=nvr.publish_url):
                await eventually(lambda: publishing(platform, "c-a-nvr"), what="the relay publishing")
                relay = platform.video.relays[0]
                await relay.kill()
                await eventually(lambda: relay.restarts >= 1 and relay.running, what="the relay started again")
                await eventually(lambda: publishing(platform, "c-a-nvr"), what="the relayed picture back")
                metrics = _metrics(platform)
                assert f"shian_video_relay_restarts_total {float(relay.restarts)}" in metrics
        finally:
            nvr.stop()


def _metrics(platform: Platform) -> str:
    from prometheus_client import generate_latest
    from prometheus_client.registry import CollectorRegistry

    from wiring.video import VideoCollector

    registry = CollectorRegistry()
    assert platform.video is not None
    registry.register(VideoCollector(platform.video))
    return generate_latest(registry).decode()


async def test_an_ai_violation_keeps_a_still_from_the_stream(
    tmp_path: Path, mosquitto: ManagedMosquitto, uid: str
) -> None:
    async with video_platform(tmp_path, mosquitto, uid, video_registry()) as platform:
        keys = clear_keys(tmp_path)
        async with camera(platform, "c-a-cam", keys["c-a-cam"], tmp_path):
            await eventually(lambda: publishing(platform, "c-a-cam"), what="the picture")
            await publish_violation(mosquitto, "c-a", "c-a-cam")
            await eventually(lambda: bool(alerts_of(platform, "camera.violation")), what="the violation alert")
            alert = alerts_of(platform, "camera.violation")[0]
            still = tmp_path / "evidence" / alert.alert_id / "still.jpg"
            await eventually(still.is_file, what="the still")
            assert still.read_bytes()[:2] == b"\xff\xd8"  # a JPEG
            # the clip is cut from the same rolling buffer: here its last few seconds, without waiting 20 s
            assert platform.video is not None
            hls = platform.video.link.hls_dir
            assert hls is not None
            await eventually(lambda: len(fragments(hls, "c-a-cam")) >= 4, what="four fragments in the buffer")
            clip = await take_clip(hls, "c-a-cam", tmp_path / "clip.mp4", seconds=3)
            assert _duration_s(clip) >= 2.0
            metrics = _metrics(platform)
            assert "shian_video_streams_publishing 1.0" in metrics
            assert f"shian_video_streams_expected {len(platform.video.board.cameras)}.0" in metrics


def _duration_s(path: Path) -> float:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return float(out.strip())


def test_the_stat_page_is_the_modules_own(tmp_path: Path) -> None:
    server = ManagedMediaServer(tmp_path, "http://127.0.0.1:9")
    with server:
        body = urllib.request.urlopen(server.stat_url, timeout=5).read()
    assert b"<nginx_rtmp_version>" in body


def test_a_share_of_the_simulated_city_streams_its_picture(tmp_path: Path) -> None:
    """`shian simulate --video-share`: that share of the city's cameras push a picture the platform accepts."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIAN_")} | {"SHIAN_WEB__PORT": "0"}
    argv = ["simulate", "--canteens", "2", "--video-share", "0.25", "--duration", "12", "--data-dir", str(tmp_path)]
    result = subprocess.run(
        [sys.executable, "-m", "shian.cli", *argv, "--log-format", "json"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    accepted = {e["camera"] for e in _events(result.stderr) if e["event"] == "video.publish_accepted"}
    registry = yaml.safe_load((tmp_path / "stream-key-credentials.yaml").read_text(encoding="utf-8"))
    assert accepted
    assert accepted == set(registry)  # every camera chosen, each under its own provisioned key
    assert any(e["event"] == "video.stopped" for e in _events(result.stderr))


def _events(stderr: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
