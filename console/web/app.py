"""The console's web application: pages for people, ``/api/v1`` for machines, one scope rule for both. This is
the wing's front door and nothing imports it but the platform's wiring: it adds the middleware and the error
answers, and includes one router per route family (``console/web/routes/``).

Every form carries the session's CSRF token, and a state-changing request must also come from the console's own
origin (``Origin``, else ``Referer``); the API also takes bearer tokens issued with ``shian console token``.
Nothing a logged-in page or the API answers is cached (``Cache-Control: no-store``).
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware

from console.context import Console
from console.days import DayOutOfRange
from console.readings import ReadingsError
from console.scope import NotInScope
from console.web.deps import SESSION_COOKIE, SESSION_MAX_AGE_S, LoginRequired, words_of
from console.web.render import CONSOLE_DIR, error_page
from console.web.routes import (
    alerts,
    api,
    cameras,
    canteens,
    deliveries,
    entry,
    inspections,
    login,
    media,
    menus,
    public,
    reports,
    trace,
)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _from_own_origin(request: Request, console: Console) -> bool:
    """Whether a state-changing request comes from the console's own pages, as Django's CSRF middleware judges
    it: ``Origin`` must be the console's; without it, ``Referer`` must be; without either, a request over HTTPS
    is refused and one over plain HTTP (a loopback console) is left to the CSRF token. A bearer-token client
    carries no cookie for a foreign page to ride on, and is not asked."""
    if request.headers.get("authorization", "").lower().startswith("bearer ") and SESSION_COOKIE not in request.cookies:
        return True
    if request.url.path == "/media/publish":
        return True  # the media server's hook, which carries its own secret and no cookie
    own = {f"{request.url.scheme}://{request.headers.get('host', '')}"}
    if console.public_origin:
        own.add(console.public_origin)
    origin = request.headers.get("origin")
    if origin is not None:
        return origin in own
    referer = request.headers.get("referer")
    if referer is not None:
        parts = urlsplit(referer)
        return f"{parts.scheme}://{parts.netloc}" in own
    return not console.https_only


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def create_app(console: Console) -> FastAPI:
    app = FastAPI(
        title="Shian console API",
        version="1",
        docs_url=None,  # FastAPI's Swagger page loads its scripts from a CDN: /api/docs is served by pages
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.console = console
    # Players fetch from the media server (another origin) and play through Media Source Extensions (blob:).
    player_origin = _origin(console.video.link.play_url) if console.video is not None else ""
    policy = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'"
    if player_origin:
        policy += f"; media-src 'self' blob: {player_origin}; connect-src 'self' {player_origin}"
        policy += "; worker-src 'self' blob:"

    @app.middleware("http")
    async def security_headers(request: Request, call_next):  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        response: Response
        if request.method not in SAFE_METHODS and not _from_own_origin(request, console):
            message = words_of(request).t("foreign_origin")
            if request.url.path.startswith("/api/"):
                response = JSONResponse({"detail": message}, status_code=403)
            else:
                response = error_page(request, 403, message)
        else:
            response = await call_next(request)
        # How long the server took, for the browser's network panel and the benchmark (benchmarks/console.py).
        response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
        if not request.url.path.startswith("/static/"):
            response.headers.setdefault("Cache-Control", "no-store")  # pages and answers of one viewer's scope
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("Content-Security-Policy", policy)
        return response

    # added after the middleware above, so that it runs outside it: the origin check's refusal has a session
    app.add_middleware(
        SessionMiddleware,
        secret_key=console.secret_key,
        session_cookie=SESSION_COOKIE,
        max_age=SESSION_MAX_AGE_S,
        same_site="lax",
        https_only=console.https_only,
    )

    # outermost: nginx's questions about each playlist and segment skip the page middleware above
    app.add_middleware(media.MediaAuthorise, console=console)

    @app.exception_handler(LoginRequired)
    async def to_login(request: Request, exc: LoginRequired) -> Response:
        return RedirectResponse(f"/login?next={request.url.path}", status_code=303)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
        return error_page(request, exc.status_code, str(exc.detail))

    @app.exception_handler(DayOutOfRange)
    async def day_out_of_range(request: Request, exc: DayOutOfRange) -> Response:
        return await http_error(request, HTTPException(400, str(exc)))

    @app.exception_handler(ReadingsError)
    async def store_down(request: Request, exc: ReadingsError) -> Response:
        return await http_error(request, HTTPException(503, f"the time-series store cannot be read: {exc}"))

    @app.exception_handler(NotInScope)
    async def not_in_scope(request: Request, exc: NotInScope) -> Response:
        return await http_error(request, HTTPException(404))

    app.mount("/static", StaticFiles(directory=CONSOLE_DIR / "static"), name="static")
    for routes in (
        api,
        login,
        alerts,
        canteens,
        entry,
        deliveries,
        menus,
        trace,
        reports,
        inspections,
        public,
        media,
        cameras,
    ):
        app.include_router(routes.router)
    return app
