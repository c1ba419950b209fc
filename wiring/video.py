"""The bright kitchen's picture beside the platform: the media server (managed, or the operator's), the monitor
that reads its statistics into the picture board, one relay per pulled camera, the evidence taken from the
stream when an AI violation is raised, and the figures on /metrics."""

from __future__ import annotations

import asyncio
import contextlib
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import structlog
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from console.video_access import MediaLink, VideoAccess, relay_key
from devices.registry import Registry
from rules.alerts import Alert
from runtime.clock import Clock
from video.evidence import CLIP, CLIP_AFTER_S, CLIP_BEFORE_S, STILL, NoPicture, take_clip, take_still
from video.ffmpeg import publish_target, relay_argv
from video.keys import DIGESTS_FILE, streaming_cameras
from video.managed import ManagedMediaServer
from video.nginx_conf import APPLICATION
from video.pictures import PictureBoard
from video.served import ServedBytes
from video.stat import parse_stat
from video.supervise import Supervised
from video.viewers import ViewerBook
from wiring.settings import Settings

log = structlog.get_logger("shian.video")


class VideoPlant:
    """Made with the platform when ``[video]`` is not off; :meth:`start` once the console listens."""

    def __init__(self, settings: Settings, registry: Registry, clock: Clock) -> None:
        video = settings.video
        self.settings = settings
        self.registry = registry
        self.clock = clock
        self.board = PictureBoard(streaming_cameras(registry))
        self.book = ViewerBook(clock, video.max_viewers_per_stream, video.max_viewers)
        self.server: ManagedMediaServer | None = None
        hls_dir: Path | None = video.hls_dir
        if video.mode == "managed":
            self.server = ManagedMediaServer(
                settings.data_dir / "video",
                "http://127.0.0.1:9",  # the console's address is known once it listens (start)
                rtmp_bind=video.rtmp_bind,
                rtmp_port=video.rtmp_port,
                http_bind=video.http_bind,
                http_port=video.http_port,
            )
            self.publish_url = self.server.publish_url
            self.stat_url = self.server.stat_url
            hook_secret, hls_dir = self.server.config.hook_secret, self.server.hls_dir
            play_url = video.play_url or self.server.http_url
        else:
            # the settings refuse an external server without these
            self.publish_url, self.stat_url = str(video.publish_url), str(video.stat_url)
            hook_secret, play_url = str(video.hook_secret), str(video.play_url)
        self.link = MediaLink(
            play_url=play_url.rstrip("/"),
            hook_secret=hook_secret,
            hls_dir=hls_dir,
            evidence_dir=settings.data_dir / "evidence",
            stream_keys=video.stream_keys or settings.data_dir / DIGESTS_FILE,
        )
        #: What players were served, from the managed server's access log (an external server's own figures).
        self.served = ServedBytes(self.server.config.served_log, self.server.reopen_logs) if self.server else None
        self.relays: list[Supervised] = []
        self.access: VideoAccess | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stop = asyncio.Event()

    def make_access(self, **console_parts: Any) -> VideoAccess:
        """The console's side of the picture (who may publish and watch), over this plant's board and book."""
        self.access = VideoAccess(self.registry, link=self.link, board=self.board, book=self.book, **console_parts)
        return self.access

    async def start(self, console_url: str) -> None:
        if self.server is not None:
            self.server.set_console_url(console_url)
            log.info("video.starting", config=str(self.server.config_path))
            await asyncio.to_thread(self.server.start)
            log.info("video.started", publish=self.publish_url, play=self.link.play_url, stat=self.stat_url)
        self._tasks.append(asyncio.create_task(self._monitor()))
        if self.access is not None:
            for camera, source in self.access.pulled():
                target = publish_target(self.publish_url, camera, relay_key(self.link.hook_secret, camera))
                log_path = self.settings.data_dir / "video" / "relays" / f"{camera}.log"
                relay = Supervised(f"relay-{camera}", relay_argv(source, target), log_path, clock=self.clock)
                self.relays.append(relay)
                self._tasks.append(asyncio.create_task(relay.run(self._stop)))

    async def _monitor(self) -> None:
        """Read the media server's statistics into the board, and its served bytes, every ``stat_interval_s``."""
        interval = self.settings.video.stat_interval_s
        reported = False
        while not self._stop.is_set():
            try:
                body = await asyncio.to_thread(_fetch, self.stat_url)
                for camera, publishing in self.board.update(parse_stat(body, APPLICATION), self.clock.now()):
                    log.info("video.picture_started" if publishing else "video.picture_stopped", camera=camera)
                reported = False
            except (OSError, ValueError) as exc:
                self.board.unreachable = True
                if not reported:
                    log.warning("video.stat_unreachable", url=self.stat_url, error=str(exc))
                    reported = True
            if self.served is not None:
                self.served.read()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), interval)

    async def stop(self) -> None:
        self._stop.set()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=10)
        if self.server is not None:
            await asyncio.to_thread(self.server.stop)
            log.info("video.stopped")


def _fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as response:
        body: bytes = response.read()
        return body


class VideoEvidence:
    """A rules notifier: when a ``camera.violation`` opens, a still from the camera's stream at once and a clip
    from CLIP_BEFORE_S before to CLIP_AFTER_S after, kept with the alert (``{data_dir}/evidence/{alert}/``)."""

    def __init__(self, plant: VideoPlant) -> None:
        self.plant = plant
        self._tasks: set[asyncio.Task[None]] = set()

    async def notify(self, alert: Alert) -> None:
        hls = self.plant.link.hls_dir
        folder = self.plant.link.evidence_dir / alert.alert_id
        if alert.rule != "camera.violation" or alert.state != "open" or hls is None or alert.device_id is None:
            return
        if folder.exists():
            return  # taken already (the change was delivered again)
        folder.mkdir(parents=True)
        task = asyncio.ensure_future(self._take(hls, alert.device_id, folder))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _take(self, hls: Path, camera: str, folder: Path) -> None:
        try:
            await take_still(hls, camera, folder / STILL)
            log.info("video.still_taken", camera=camera, path=str(folder / STILL))
            await asyncio.sleep(CLIP_AFTER_S + 1.5)  # the fragment in progress closes first
            await take_clip(hls, camera, folder / CLIP, seconds=CLIP_BEFORE_S + CLIP_AFTER_S)
            log.info("video.clip_taken", camera=camera, path=str(folder / CLIP))
        except NoPicture:
            log.warning("video.no_picture_for_evidence", camera=camera)
        except Exception as exc:
            log.warning("video.evidence_failed", camera=camera, error=str(exc))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5)


class VideoCollector(Collector):
    """Streams up, viewers, bytes out and refusals on /metrics."""

    def __init__(self, plant: VideoPlant) -> None:
        self.plant = plant

    def collect(self) -> Iterator[Any]:
        plant = self.plant
        yield GaugeMetricFamily(
            "shian_video_streams_expected",
            "Cameras the registry expects a picture from",
            value=len(plant.board.cameras),
        )
        yield GaugeMetricFamily(
            "shian_video_streams_publishing", "Cameras publishing now", value=plant.board.publishing
        )
        yield GaugeMetricFamily("shian_video_viewers", "Players watching now", value=plant.book.total_watching)
        yield CounterMetricFamily(
            "shian_video_bytes_out",
            "Bytes of playlists and segments served",
            value=sum(plant.served.bytes_out.values()) if plant.served else 0,
        )
        yield CounterMetricFamily(
            "shian_video_relay_restarts",
            "Relays of pulled cameras started again",
            value=sum(r.restarts for r in plant.relays),
        )
        for name, counts, help_text in (
            ("shian_video_publish_refused", plant.access.publish_refused if plant.access else {}, "Publishes refused"),
            ("shian_video_view_refused", plant.access.view_refused if plant.access else {}, "Viewing refused"),
        ):
            family = CounterMetricFamily(name, help_text, labels=["reason"])
            for reason, count in sorted(counts.items()):
                family.add_metric([reason], count)
            yield family
