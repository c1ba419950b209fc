"""Who may publish and who may watch: the answers the console gives the media server, and the camera tiles the
pages show. Nothing of HTTP here; ``console.web.routes.media`` carries the questions in.

A player's address carries its credential in the path, ``/video/{credential}/{viewer}/{camera}/index.m3u8``, so
that the playlist's relative segment names carry it too:
- ``p.{token}``: a parents' token of the camera's canteen, in the canteen's hours for parents;
- ``k.{token}``: the canteen's kiosk token, for the one camera the kiosk shows, in the same hours;
- ``s.{pass}``: a signed pass naming a console session (never its id) whose scope holds the camera, any hour.
The media server asks about every request (keeping each answer ``AUTH_CACHE_S``), so a revoked token, an ended
session or a closing hour stops a playing viewer within seconds. No stream key, pull address or camera address
is ever part of a tile.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import quote

import structlog
from itsdangerous import BadSignature, URLSafeSerializer

from broker_config.web_passwords import WebPasswords
from console.access import Viewer, viewer_of_session
from console.store import ConsoleStore, PublicPurpose, session_digest
from devices.kitchen import live_now, live_windows
from devices.kitchen_fields import PulledStream
from devices.registry import Canteen, DeviceEntry, Registry
from devices.topics import DeviceKind
from rules.config import RulesConfig
from runtime.clock import Clock
from video.keys import StreamKeys
from video.nginx_conf import VIDEO_LOCATION
from video.pictures import PictureBoard
from video.viewers import ViewerBook

log = structlog.get_logger("shian.video")

_LOCATION = re.compile(VIDEO_LOCATION.replace("(?<", "(?P<"))
#: Why a tile shows no picture, or why a request was refused.
TileState = Literal["live", "closed", "down", "busy", "denied"]


#: What a tile says when it shows no picture, (zh, en).
STATE_WORDS = {
    "live": ("直播中", "Live"),
    "closed": (
        "现在不是后厨工作时间，画面在工作时间直播。",
        "The kitchen is not working now; it is shown live in its hours.",
    ),
    "down": (
        "这路摄像头暂时没有画面，平台已记录。",
        "This camera has no picture at the moment; the platform has noted it.",
    ),
    "busy": ("现在观看的人太多，请稍后再试。", "Too many viewers now; please try again shortly."),
    "denied": ("链接已失效，请向学校索取新的链接。", "This link no longer works; ask the school for a new one."),
}


@dataclass(frozen=True)
class MediaLink:
    """What the console knows of the media server."""

    #: Where players fetch from: {play_url}/video/...
    play_url: str
    #: What the media server's hooks carry, so no one else can ask.
    hook_secret: str
    #: The HLS folder the server writes (stills are cut from it); None: no stills.
    hls_dir: Path | None
    #: Where stills and clips are kept.
    evidence_dir: Path
    #: The stream keys' digests (read again at each publish, so provisioning applies without a restart).
    stream_keys: Path


@dataclass(frozen=True)
class Tile:
    """One camera as a page shows it."""

    camera: str
    canteen_id: str
    area: str | None
    state: TileState
    #: The playlist to play (only when the state is live).
    playlist: str | None
    #: Where its player asks why it stopped (the console's /media/state, with the same credential).
    state_url: str = ""
    #: Today's hours for parents, "05:40–07:40、09:40–12:30" (parents' tiles).
    hours: str = ""


def relay_key(hook_secret: str, camera: str) -> str:
    """The key the platform's own relay of a pulled camera publishes with: no clear camera key is needed."""
    return "relay." + hmac.new(hook_secret.encode(), camera.encode(), hashlib.sha256).hexdigest()


class VideoAccess:
    def __init__(
        self,
        registry: Registry,
        *,
        store: ConsoleStore,
        passwords: WebPasswords,
        clock: Clock,
        limits: RulesConfig,
        link: MediaLink,
        board: PictureBoard,
        book: ViewerBook,
        secret_key: str,
    ) -> None:
        self.registry = registry
        self.store = store
        self.passwords = passwords
        self.clock = clock
        self.limits = limits
        self.link = link
        self.board = board
        self.book = book
        self._passes = URLSafeSerializer(secret_key, salt="shian-video-pass")
        #: Refused publishes and viewing requests, by reason (``/metrics``).
        self.publish_refused: Counter[str] = Counter()
        self.view_refused: Counter[str] = Counter()

    # --- cameras ------------------------------------------------------------------------------------------

    def camera(self, camera_id: str) -> tuple[Canteen, DeviceEntry] | None:
        """A camera the platform expects a picture from (not retired), and its canteen."""
        found = self.registry.assignment(camera_id)
        if found is None or found.device.kind is not DeviceKind.CAMERA or not found.device.streams:
            return None
        return found.canteen, found.device

    def cameras_of(self, canteen: Canteen) -> list[DeviceEntry]:
        return [d for d in canteen.devices if d.kind is DeviceKind.CAMERA and d.streams]

    def pulled(self) -> list[tuple[str, str]]:
        """(camera, source) of every camera the platform pulls."""
        return [
            (d.id, d.video.pull)
            for c in self.registry.canteens
            for d in c.devices
            if d.streams and isinstance(d.video, PulledStream)
        ]

    # --- publishing ---------------------------------------------------------------------------------------

    def publish(self, name: str, key: str | None, address: str | None) -> str | None:
        """None when ``name`` may publish with ``key``; otherwise why not (logged and counted)."""
        found = self.registry.assignment(name)
        reason = None
        if found is None or found.device.kind is not DeviceKind.CAMERA:
            reason = "unknown_camera"
        elif found.device.revoked:
            reason = "retired_camera"
        elif found.device.video == "none":
            reason = "no_video"
        elif isinstance(found.device.video, PulledStream):
            if not key or not hmac.compare_digest(key, relay_key(self.link.hook_secret, name)):
                reason = "wrong_key"  # a pulled camera is published by the platform's relay only
        elif not StreamKeys.load(self.link.stream_keys).matches(name, key):
            reason = "wrong_key"
        if reason is not None:
            self.publish_refused[reason] += 1
            log.warning("video.publish_refused", camera=name, reason=reason, address=address)
        else:
            log.info("video.publish_accepted", camera=name, address=address)
        return reason

    # --- watching -----------------------------------------------------------------------------------------

    def session_pass(self, username: str, session_id: str) -> str:
        """The credential a console page's players carry for its session."""
        return "s." + self._passes.dumps([username, session_digest(session_id)])

    def _pass_viewer(self, signed: str) -> Viewer | None:
        try:
            username, digest = self._passes.loads(signed)
        except (BadSignature, ValueError, TypeError):
            return None
        opened = self.store.session_by_digest(str(digest))
        return viewer_of_session(self.registry, self.passwords, str(username), opened)

    def _credential_allows(self, credential: str, canteen: Canteen, camera: str) -> TileState:
        kind, _, secret = credential.partition(".")
        if kind in ("p", "k"):  # a parents' token: any of the canteen's cameras; a kiosk's: its one camera
            purpose: PublicPurpose = "public" if kind == "p" else "kiosk"
            if (kind == "k" and camera != canteen.kiosk_camera) or not self.store.opens(secret, canteen.id, purpose):
                return "denied"
            return "live" if self.live_for_parents(canteen) else "closed"
        if kind == "s":
            viewer = self._pass_viewer(secret)
            return "live" if viewer is not None and viewer.sees(canteen.id) else "denied"
        return "denied"

    def authorise(self, uri: str, secret: str | None) -> str | None:
        """The media server's question about one playlist or segment request: None to serve it, else why not."""
        if not secret or not hmac.compare_digest(secret, self.link.hook_secret):
            reason = "not_the_media_server"
        elif (match := _LOCATION.match(uri.split("?", 1)[0])) is None:
            reason = "bad_address"
        elif (found := self.camera(match["camera"])) is None:
            reason = "unknown_camera"
        elif (state := self._credential_allows(match["credential"], found[0], match["camera"])) != "live":
            reason = state
        elif not self.book.admit(match["camera"], match["viewer"]):
            reason = "busy"
        else:
            return None
        self.view_refused[reason] += 1
        return reason

    def live_for_parents(self, canteen: Canteen) -> bool:
        return live_now(self.registry, canteen, self.clock.now(), self.limits.kitchen_opens_before_meal)

    def hours_today(self, canteen: Canteen) -> str:
        """Today's hours for parents, in local time."""
        now = self.clock.now()
        spans = live_windows(
            self.registry, canteen, now.astimezone(self.registry.zone).date(), self.limits.kitchen_opens_before_meal
        )
        tz = self.registry.zone
        if len(spans) == 1 and spans[0][1] - spans[0][0] >= dt.timedelta(days=1):
            return "全天"
        return "、".join(f"{a.astimezone(tz):%H:%M}–{b.astimezone(tz):%H:%M}" for a, b in spans)

    def tiles(self, canteen: Canteen, credential: str, *, parents: bool, only: str | None = None) -> list[Tile]:
        """The canteen's cameras for one page (or ``only`` that one): each with its state and, when live, a
        playlist of its own viewer."""
        tiles = []
        hours = self.hours_today(canteen) if parents else ""
        for device in self.cameras_of(canteen):
            if only is not None and device.id != only:
                continue
            picture = self.board.get(device.id)
            if parents and not self.live_for_parents(canteen):
                state: TileState = "closed"
            elif picture is None or not picture.publishing:
                state = "down"
            elif self.book.full(device.id):
                state = "busy"
            else:
                state = "live"
            viewer = secrets.token_urlsafe(12)
            playlist = f"{self.link.play_url}/video/{credential}/{viewer}/{device.id}/index.m3u8"
            tiles.append(
                Tile(
                    device.id,
                    canteen.id,
                    device.area,
                    state,
                    playlist if state == "live" else None,
                    state_url=f"/media/state/{device.id}?c={quote(credential)}",
                    hours=hours,
                )
            )
        return tiles

    def state_now(self, camera: str, credential: str) -> TileState:
        """What a player that stopped should say: the camera's state for this credential now."""
        found = self.camera(camera)
        if found is None:
            return "denied"
        allowed = self._credential_allows(credential, found[0], camera)
        if allowed != "live":
            return allowed
        picture = self.board.get(camera)
        if picture is None or not picture.publishing:
            return "down"
        return "busy" if self.book.full(camera) else "live"
