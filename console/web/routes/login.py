"""Logging in and out (here, or everywhere at once), the language, the home page and the API's documentation."""

from __future__ import annotations

import asyncio
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from console.access import new_csrf_token, viewer_for
from console.web.deps import LANGUAGE_COOKIE, ConsoleDep, PageViewer, words_of
from console.web.render import checked_form, render, safe_next, templates, text
from console.words import LANGUAGES

router = APIRouter(include_in_schema=False)


@router.get("/login")
def login_form(request: Request, next: str | None = None) -> Response:
    return render(request, "login.html", None, next=safe_next(next), error=None)


@router.post("/login")
async def login(request: Request, console: ConsoleDep) -> Response:
    form = await checked_form(request)
    username, password, target = text(form, "username", 64), text(form, "password", 256), text(form, "next")
    words = words_of(request)
    client = request.client.host if request.client else "unknown"
    keys = (f"user:{username}", f"client:{client}")
    wait = console.throttle.wait_s(*keys)
    if wait:
        error = words.t("throttled", seconds=wait)
        return render(request, "login.html", None, status_code=429, next=safe_next(target), error=error)
    known = viewer_for(console.registry, username) is not None
    console.passwords.refresh()
    ok = await asyncio.to_thread(console.passwords.verify, username, password)
    if not (ok and known):
        console.throttle.failed(*keys)
        error = words.t("login_failed")
        return render(request, "login.html", None, status_code=401, next=safe_next(target), error=error)
    console.throttle.succeeded(keys[0])
    fingerprint = console.passwords.fingerprint(username)
    assert fingerprint is not None  # the password was just verified against it
    session_id = console.store.start_session(username, fingerprint, console.clock.now())
    request.session.clear()  # a new session on every login: a planted cookie never becomes a logged-in one
    request.session.update({"user": username, "sid": session_id, "csrf": new_csrf_token()})
    return RedirectResponse(safe_next(target), status_code=303)


@router.post("/logout")
async def logout(request: Request, console: ConsoleDep) -> Response:
    """End this session on the server as well: a copy of the cookie is worth nothing afterwards."""
    await checked_form(request)
    session_id = request.session.get("sid")
    if isinstance(session_id, str):
        console.store.end_session(session_id, console.clock.now())
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


@router.post("/logout/everywhere")
async def logout_everywhere(request: Request, viewer: PageViewer, console: ConsoleDep) -> Response:
    """End every session of the account, on every browser and phone (a lost phone, a shared computer)."""
    await checked_form(request)
    console.store.end_sessions_of(viewer.username, console.clock.now())
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


@router.get("/lang/{language}")
def choose_language(language: str, next: str | None = None) -> Response:
    response = RedirectResponse(safe_next(next), status_code=303)
    if language in LANGUAGES:
        response.set_cookie(LANGUAGE_COOKIE, language, max_age=365 * 86400, samesite="lax", httponly=True)
    return response


@router.get("/")
def home(viewer: PageViewer) -> Response:
    """Where a viewer lands: a school on its own canteen's day, a district on its overview, the city on the
    city's overview."""
    if viewer.role == "school" and viewer.canteens is not None and len(viewer.canteens) == 1:
        return RedirectResponse(f"/canteens/{next(iter(viewer.canteens))}", status_code=303)
    if viewer.role == "district" and viewer.district is not None:
        return RedirectResponse(f"/districts/{quote(viewer.district)}", status_code=303)
    return RedirectResponse("/overview", status_code=303)


@router.get("/api/docs")
def api_docs(request: Request) -> HTMLResponse:
    """The API's operations, from its OpenAPI document, without the CDN scripts of Swagger UI."""
    spec = request.app.openapi()
    operations = [
        (method.upper(), path, op.get("summary", ""), op.get("description", ""))
        for path, methods in spec["paths"].items()
        for method, op in methods.items()
    ]
    response = templates.TemplateResponse(
        request, "api_docs.html", {"operations": operations, "w": words_of(request), "viewer": None, "csrf": ""}
    )
    assert isinstance(response, HTMLResponse)
    return response
