"""What the media server asks the console (who may publish, who may watch each playlist and segment), and what
a stopped player asks: why it has no picture, in words. docs/video.md shows the nginx side of each question."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, Response

from console.context import Console
from console.video_access import STATE_WORDS, VideoAccess
from console.web.deps import ConsoleDep

router = APIRouter(include_in_schema=False)


def _video(console: Console) -> VideoAccess:
    if console.video is None:
        raise HTTPException(404)
    return console.video


@router.post("/media/publish")
async def publish(request: Request, console: ConsoleDep, secret: str | None = None) -> Response:
    """nginx-rtmp's ``on_publish``: 2xx lets the camera publish, anything else ends its connection."""
    video = _video(console)
    if secret is None or not hmac.compare_digest(secret, video.link.hook_secret):
        raise HTTPException(403)
    form = await request.form()
    name, key, address = (form.get(k) for k in ("name", "key", "addr"))
    refused = video.publish(
        str(name or ""), str(key) if key is not None else None, str(address) if address is not None else None
    )
    if refused is not None:
        return Response(status_code=403, headers={"X-Shian-Refusal": refused})
    return Response(status_code=204)


@router.get("/media/authorise")
def authorise(request: Request, console: ConsoleDep) -> Response:
    """nginx's ``auth_request`` for one playlist or segment: 200 serves it, 403 refuses it (nginx keeps either
    answer AUTH_CACHE_S for the same viewer of the same camera)."""
    video = _video(console)
    refused = video.authorise(request.headers.get("x-original-uri", ""), request.headers.get("x-shian-media-secret"))
    if refused is not None:
        return Response(status_code=403, headers={"X-Shian-Refusal": refused})
    return Response(status_code=200)


@router.get("/media/state/{camera}")
def state(camera: str, console: ConsoleDep, c: str = "", lang: str = "zh") -> Response:
    """A player's question when it stops: the camera's state for its credential, and what to say."""
    video = _video(console)
    now = video.state_now(camera, c)
    words = STATE_WORDS[now][1 if lang == "en" else 0]
    return JSONResponse({"state": now, "words": words}, headers={"Cache-Control": "no-store"})
