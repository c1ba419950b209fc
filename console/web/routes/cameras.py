"""The camera walls (a canteen's cameras, a district's, any hour, in the viewer's scope), a still taken from the
console, and the pictures kept with an alert (the still and clip of an AI violation)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from console.access import Viewer
from console.context import Console
from console.scope import NotInScope, alert_in_scope, canteen_in_scope
from console.video_access import STATE_WORDS, VideoAccess
from console.web.deps import ConsoleDep, PageViewer
from console.web.render import checked_form, render
from devices.registry import Canteen
from video.evidence import CLIP, STILL, NoPicture, take_still

router = APIRouter(include_in_schema=False)

#: The files a page may ask for from an alert's or a camera's pictures.
_EVIDENCE = {STILL: "image/jpeg", CLIP: "video/mp4"}
_STILL_NAME = re.compile(r"^[0-9]{8}T[0-9]{6}\.jpg$")


def _video(console: Console) -> VideoAccess:
    if console.video is None:
        raise HTTPException(404)
    return console.video


def _credential(request: Request, video: VideoAccess, viewer: Viewer) -> str:
    session_id = request.session.get("sid")
    if not isinstance(session_id, str):
        raise HTTPException(403)
    return video.session_pass(viewer.username, session_id)


def _wall(request: Request, viewer: Viewer, console: Console, canteens: list[Canteen], title: str) -> Response:
    video = _video(console)
    credential = _credential(request, video, viewer)
    walls = [(canteen, video.tiles(canteen, credential, parents=False)) for canteen in canteens]
    pictures = {t.camera: video.board.get(t.camera) for _, tiles in walls for t in tiles}
    context: dict[str, Any] = {"walls": walls, "pictures": pictures, "watching": video.book.by_camera()}
    return render(request, "cameras.html", viewer, title=title, states=STATE_WORDS, **context)


@router.get("/canteens/{canteen_id}/cameras")
def canteen_wall(request: Request, canteen_id: str, viewer: PageViewer, console: ConsoleDep) -> Response:
    canteen = canteen_in_scope(console, viewer, canteen_id)
    return _wall(request, viewer, console, [canteen], canteen.name)


@router.get("/cameras")
def district_wall(request: Request, viewer: PageViewer, console: ConsoleDep, district: str | None = None) -> Response:
    """Every streaming camera of a district (the viewer's own by default) that the viewer may see."""
    district = district or viewer.district
    canteens = [
        c
        for c in console.registry.canteens
        if viewer.sees(c.id) and (district is None or c.district == district) and _video(console).cameras_of(c)
    ]
    if district is not None and not canteens:
        raise NotInScope(district)
    return _wall(request, viewer, console, canteens, district or "")


@router.post("/cameras/{camera}/still")
async def take_a_still(request: Request, camera: str, viewer: PageViewer, console: ConsoleDep) -> Response:
    """A supervisor's still of the camera's picture now, kept under the camera's stills."""
    await checked_form(request)
    video = _video(console)
    found = video.camera(camera)
    if found is None or not viewer.sees(found[0].id) or video.link.hls_dir is None:
        raise NotInScope(camera)
    name = f"{console.clock.now().astimezone(dt.UTC):%Y%m%dT%H%M%S}.jpg"
    try:
        await take_still(video.link.hls_dir, camera, video.link.evidence_dir / "stills" / camera / name)
    except NoPicture:
        raise HTTPException(409, "the camera has no picture now") from None
    return RedirectResponse(f"/cameras/{camera}/stills/{name}", status_code=303)


@router.get("/cameras/{camera}/stills/{name}")
def a_still(camera: str, name: str, viewer: PageViewer, console: ConsoleDep) -> Response:
    video = _video(console)
    found = video.camera(camera)
    path = video.link.evidence_dir / "stills" / camera / name
    if found is None or not viewer.sees(found[0].id) or not _STILL_NAME.match(name) or not path.is_file():
        raise NotInScope(camera)
    return FileResponse(path, media_type="image/jpeg")


@router.get("/alerts/{alert_id}/pictures/{name}")
def alert_picture(alert_id: str, name: str, viewer: PageViewer, console: ConsoleDep) -> Response:
    """The still or the clip the platform took from the stream when the alert was raised."""
    alert = alert_in_scope(console, viewer, alert_id)
    video = _video(console)
    path = video.link.evidence_dir / alert.alert_id / name
    if name not in _EVIDENCE or not path.is_file():
        raise NotInScope(name)
    return FileResponse(path, media_type=_EVIDENCE[name])
