"""What the media server asks the console (who may publish, who may watch each playlist and segment), and what
a stopped player asks: why it has no picture, in words. docs/video.md shows the nginx side of each question."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

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


class MediaAuthorise:
    """nginx's ``auth_request`` for one playlist or segment, answered in front of the console's page middleware
    (pure ASGI): 200 serves it, 403 refuses it, and nginx keeps either answer AUTH_CACHE_S for the same viewer of
    the same camera. The answer itself is a dictionary and an indexed lookup (14 µs); through FastAPI's
    middleware and dependencies it cost a millisecond, which capped a console at about 1,000 answers a second
    (benchmarks/video.py, step 5)."""

    PATH = "/media/authorise"

    def __init__(self, app: ASGIApp, console: Console) -> None:
        self.app = app
        self.console = console

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.PATH:
            await self.app(scope, receive, send)
            return
        video = self.console.video
        headers = dict(scope["headers"])
        secret = headers.get(b"x-shian-media-secret")
        uri = headers.get(b"x-original-uri", b"").decode("latin-1")
        refused = "video_off" if video is None else video.authorise(uri, secret.decode("latin-1") if secret else None)
        answer = [(b"content-length", b"0"), (b"cache-control", b"no-store")]
        if refused is not None:
            answer.append((b"x-shian-refusal", refused.encode()))
        await send({"type": "http.response.start", "status": 200 if refused is None else 403, "headers": answer})
        await send({"type": "http.response.body", "body": b""})


@router.get("/media/state/{camera}")
def state(camera: str, console: ConsoleDep, c: str = "", lang: str = "zh") -> Response:
    """A player's question when it stops: the camera's state for its credential, and what to say."""
    video = _video(console)
    now = video.state_now(camera, c)
    words = STATE_WORDS[now][1 if lang == "en" else 0]
    return JSONResponse({"state": now, "words": words}, headers={"Cache-Control": "no-store"})
