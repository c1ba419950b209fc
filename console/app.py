"""The console's web application: pages for people, ``/api/v1`` for machines, one scope rule for both.

Sessions are signed HttpOnly SameSite cookies (Starlette's session middleware over itsdangerous) naming a
session the console's store keeps, so that logging out, signing out everywhere, a changed or removed password
end it on the server too, whatever copy of the cookie is left. Every form carries the session's CSRF token, and
a state-changing request must also come from the console's own origin (``Origin``, else ``Referer``); the API
also takes bearer tokens issued with ``shian console token``. Nothing a logged-in page or the API answers is
cached (``Cache-Control: no-store``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware

from console.access import Viewer, viewer_for
from console.context import Console
from console.days import DayOutOfRange
from console.readings import ReadingsError
from console.words import LANGUAGES, Language, Words

HERE = Path(__file__).resolve().parent
SESSION_COOKIE = "shian_session"
SESSION_MAX_AGE_S = 8 * 3600
LANGUAGE_COOKIE = "shian_lang"


class LoginRequired(Exception):
    """A page asked for by nobody logged in: answered with a redirect to the login page."""


def console_of(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


def language_of(request: Request) -> Language:
    chosen = request.cookies.get(LANGUAGE_COOKIE)
    return chosen if chosen in LANGUAGES else "zh"


def words_of(request: Request) -> Words:
    return Words(language_of(request))


def session_viewer(request: Request) -> Viewer | None:
    """The viewer of the session cookie, if it is signed and unexpired, its session is still open on the server,
    the account's password is the one it was opened with, and the account still exists."""
    username, session_id = request.session.get("user"), request.session.get("sid")
    if not isinstance(username, str) or not isinstance(session_id, str):
        return None
    console = console_of(request)
    opened = console.store.session(session_id)
    if opened is None or opened[0] != username:
        return None
    console.passwords.refresh()
    if console.passwords.fingerprint(username) != opened[1]:
        return None
    return viewer_for(console.registry, username)


def page_viewer(request: Request) -> Viewer:
    viewer = session_viewer(request)
    if viewer is None:
        raise LoginRequired
    return viewer


def api_viewer(request: Request) -> Viewer:
    """A bearer token's account, or the session's (a browser calling the API)."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        console = console_of(request)
        username = console.store.token_user(header[7:].strip())
        viewer = viewer_for(console.registry, username) if username else None
        if viewer is None:
            raise HTTPException(401, "invalid or revoked token", headers={"WWW-Authenticate": "Bearer"})
        request.state.by_token = True
        return viewer
    viewer = session_viewer(request)
    if viewer is None:
        raise HTTPException(401, "log in or send a bearer token", headers={"WWW-Authenticate": "Bearer"})
    request.state.by_token = False
    return viewer


PageViewer = Annotated[Viewer, Depends(page_viewer)]
ApiViewer = Annotated[Viewer, Depends(api_viewer)]
ConsoleDep = Annotated[Console, Depends(console_of)]
WordsDep = Annotated[Words, Depends(words_of)]


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _from_own_origin(request: Request, console: Console) -> bool:
    """Whether a state-changing request comes from the console's own pages, as Django's CSRF middleware judges
    it: ``Origin`` must be the console's; without it, ``Referer`` must be; without either, a request over HTTPS
    is refused and one over plain HTTP (a loopback console) is left to the CSRF token. A bearer-token client
    carries no cookie for a foreign page to ride on, and is not asked."""
    if request.headers.get("authorization", "").lower().startswith("bearer ") and SESSION_COOKIE not in request.cookies:
        return True
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


def create_app(console: Console) -> FastAPI:
    from console import (  # the routes need the dependencies above
        api,
        canteen_pages,
        inspection_pages,
        pages,
        public_pages,
        report_pages,
    )

    app = FastAPI(
        title="Shian console API",
        version="1",
        docs_url=None,  # FastAPI's Swagger page loads its scripts from a CDN: /api/docs is served by pages
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.console = console

    @app.middleware("http")
    async def security_headers(request: Request, call_next):  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        response: Response
        if request.method not in SAFE_METHODS and not _from_own_origin(request, console):
            message = words_of(request).t("foreign_origin")
            if request.url.path.startswith("/api/"):
                response = JSONResponse({"detail": message}, status_code=403)
            else:
                response = pages.error_page(request, 403, message)
        else:
            response = await call_next(request)
        # How long the server took, for the browser's network panel and the benchmark (benchmarks/console.py).
        response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
        if not request.url.path.startswith("/static/"):
            response.headers.setdefault("Cache-Control", "no-store")  # pages and answers of one viewer's scope
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
        )
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

    @app.exception_handler(LoginRequired)
    async def to_login(request: Request, exc: LoginRequired) -> Response:
        return RedirectResponse(f"/login?next={request.url.path}", status_code=303)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
        return pages.error_page(request, exc.status_code, str(exc.detail))

    @app.exception_handler(DayOutOfRange)
    async def day_out_of_range(request: Request, exc: DayOutOfRange) -> Response:
        return await http_error(request, HTTPException(400, str(exc)))

    @app.exception_handler(ReadingsError)
    async def store_down(request: Request, exc: ReadingsError) -> Response:
        return await http_error(request, HTTPException(503, f"the time-series store cannot be read: {exc}"))

    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(api.router)
    app.include_router(pages.router)
    app.include_router(canteen_pages.router)
    app.include_router(report_pages.router)
    app.include_router(inspection_pages.router)
    app.include_router(public_pages.router)
    return app
