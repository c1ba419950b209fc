"""The console's pages for people: logging in and out, the alert inbox, an alert and what is done with it."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from fastapi.templating import Jinja2Templates
from starlette.datastructures import FormData

from console.access import Viewer, csrf_matches, new_csrf_token, viewer_for
from console.app import HERE, LANGUAGE_COOKIE, ConsoleDep, PageViewer, console_of, session_viewer, words_of
from console.context import Console
from console.days import DayOutOfRange, parse_day
from console.words import CATALOGUES, LANGUAGES
from rules.alerts import ESCALATION_LEVELS, Alert, AlertError, AlertQuery, Disposition, Review

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=HERE / "templates")
# Page data in <script type="application/json"> blocks keeps its Chinese as it is (still escaping < > & ').
templates.env.policies["json.dumps_kwargs"] = {"sort_keys": True, "ensure_ascii": False}
PAGE_SIZE = 50
#: The deepest page of a list anyone pages to (and far below where the database's offsets overflow).
MAX_PAGE = 100_000


def local_time(value: dt.datetime | str | None, console: Console, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    if value is None:
        return ""
    instant = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    return instant.astimezone(console.tz).strftime(fmt)


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = request.session["csrf"] = new_csrf_token()
    return token


def render(request: Request, template: str, viewer: Viewer | None, status_code: int = 200, **context: Any) -> Response:
    console = console_of(request)
    words = words_of(request)
    return templates.TemplateResponse(
        request,
        template,
        {
            "w": words,
            "viewer": viewer,
            "csrf": csrf_token(request),
            "tz": console.registry.timezone,
            "time": lambda value, fmt="%Y-%m-%d %H:%M:%S": local_time(value, console, fmt),
            "canteen_name": lambda cid: c.name if (c := console.registry.canteen(cid)) else cid,
            "flash": request.session.pop("flash", None),
            **context,
        },
        status_code=status_code,
    )


def error_page(request: Request, status: int, detail: str) -> Response:
    words = words_of(request)
    message = {404: words.t("not_found"), 403: words.t("forbidden")}.get(status, detail)
    if status == 503:
        message = f"{words.t('store_down')} ({detail})"
    return render(request, "error.html", session_viewer(request), status_code=status, message=message)


async def checked_form(request: Request) -> FormData:
    """The posted form, once its CSRF token matches the session's; a 403 otherwise."""
    form = await request.form()
    given = form.get("csrf_token")
    if not csrf_matches(request.session.get("csrf"), given if isinstance(given, str) else None):
        raise HTTPException(403, words_of(request).t("csrf"))
    return form


def text(form: FormData, key: str, limit: int = 1000) -> str:
    value = form.get(key)
    return value.strip()[:limit] if isinstance(value, str) else ""


def safe_next(target: str | None) -> str:
    """Only a path of this site: never an absolute URL an attacker chose (an open redirect)."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return "/alerts"


# --- logging in and out, language -------------------------------------------------------------------------


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
    return RedirectResponse("/alerts", status_code=303)


# --- the inbox --------------------------------------------------------------------------------------------


def _choice(value: str | None, catalogue: str) -> Any:
    return value if value in CATALOGUES[catalogue] else None


def _filter(value: str | None, catalogue: str) -> Any:
    """A list filter's value: one of its catalogue's, or none; a 400 naming it otherwise."""
    if value and value not in CATALOGUES[catalogue]:
        raise HTTPException(
            400, f"{catalogue}: {value[:40]!r} is not one of {', '.join(sorted(CATALOGUES[catalogue]))}"
        )
    return value or None


def parse_date(value: str | None) -> dt.date | None:
    """A YYYY-MM-DD query parameter, or None when it is missing; a 400 saying why when it is no date, or one
    outside the console's calendar."""
    try:
        return parse_day(value)
    except DayOutOfRange as exc:
        raise HTTPException(400, str(exc)) from None


def inbox_query(console: Console, viewer: Viewer, params: dict[str, str]) -> AlertQuery:
    """The viewer's scope narrowed by the filters; a filter outside the scope selects nothing."""
    scope = viewer.canteens
    if district := params.get("district"):
        in_district = frozenset(c.id for c in console.registry.canteens if c.district == district)
        scope = in_district if scope is None else scope & in_district
    if canteen := params.get("canteen"):
        scope = frozenset([canteen]) if scope is None else scope & {canteen}
    start, end = parse_date(params.get("from")), parse_date(params.get("to"))
    return AlertQuery(
        canteens=scope,
        state=_filter(params.get("state"), "state"),
        severity=_filter(params.get("severity"), "severity"),
        rule=params.get("rule") or None,
        opened_from=console.day_bounds(start)[0] if start else None,
        opened_to=console.day_bounds(end)[1] if end else None,
    )


@router.get("/alerts")
def inbox(request: Request, viewer: PageViewer, console: ConsoleDep) -> Response:
    params = {k: v for k, v in request.query_params.items() if v}
    try:
        page = min(max(1, int(params.get("page", "1"))), MAX_PAGE)
    except ValueError:
        page = 1
    alerts, total = console.alerts.search(
        inbox_query(console, viewer, params), limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
    )
    filters = {k: v for k, v in params.items() if k not in ("page", "fragment")}
    context: dict[str, Any] = {
        "alerts": alerts,
        "total": total,
        "page": page,
        "pages": max(1, -(-total // PAGE_SIZE)),
        "filters": filters,
        "query": lambda **change: "?" + urlencode({**filters, **change}),
        "districts": sorted({c.district for c in console.registry.canteens if viewer.sees(c.id)}),
        "canteens": [c for c in console.registry.canteens if viewer.sees(c.id)],
        "rules": sorted(CATALOGUES["rule"]),
    }
    template = "_alert_rows.html" if params.get("fragment") else "inbox.html"
    return render(request, template, viewer, **context)


@router.get("/events")
async def events(request: Request, viewer: PageViewer, console: ConsoleDep) -> Response:
    """The inbox's live feed; it ends within seconds of the session's end (logout anywhere, a new password)."""
    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    stream = console.feed.stream(viewer, still_valid=lambda: session_viewer(request) is not None)
    return StreamingResponse(stream, media_type="text/event-stream", headers=headers)


# --- one alert --------------------------------------------------------------------------------------------


def alert_in_scope(console: Console, viewer: Viewer, alert_id: str) -> Alert:
    alert = console.alerts.get(alert_id)
    if alert is None or not viewer.sees(alert.canteen_id):
        raise HTTPException(404)
    return alert


def notified(console: Console, alert: Alert) -> list[tuple[str, str]]:
    """(level, account) of everyone told so far: the school, then the district and the city as it escalates."""
    reached = ESCALATION_LEVELS[: ESCALATION_LEVELS.index(alert.escalation) + 1]
    canteen = console.registry.canteen(alert.canteen_id)
    told: list[tuple[str, str]] = []
    for account in console.registry.accounts:
        if account.role not in reached:
            continue
        if account.role == "school" and account.canteen != alert.canteen_id:
            continue
        if account.role == "district" and (canteen is None or account.district != canteen.district):
            continue
        told.append((account.role, account.username))
    return told


@router.get("/alerts/{alert_id}")
def alert_page(request: Request, alert_id: str, viewer: PageViewer, console: ConsoleDep) -> Response:
    alert = alert_in_scope(console, viewer, alert_id)
    return render(
        request,
        "alert.html",
        viewer,
        alert=alert,
        audit=console.alerts.audit_for(alert_id),
        notified=notified(console, alert),
        levels=ESCALATION_LEVELS,
    )


def acknowledge(console: Console, viewer: Viewer, alert: Alert, note: str | None) -> Alert:
    changed = console.alerts.acknowledge(alert.alert_id, viewer.username, note or None, console.clock.now())
    console.wake_rules()
    return changed


def resolve(
    console: Console,
    viewer: Viewer,
    alert: Alert,
    note: str,
    *,
    disposition: str | None,
    review: str | None,
) -> Alert:
    """Close an alert. A failed test needs what was done with the food, a camera violation the review."""
    chosen_disposition: Disposition | None = _choice(disposition, "disposition")
    chosen_review: Review | None = _choice(review, "review")
    if alert.rule == "test.failed" and chosen_disposition is None:
        raise AlertError("a failed test is resolved with its disposition (returned_to_supplier, destroyed, other)")
    if alert.rule == "camera.violation" and chosen_review is None:
        raise AlertError("a camera violation is resolved with its review (confirmed, false_positive)")
    changed = console.alerts.resolve(
        alert.alert_id,
        viewer.username,
        note or "resolved in the console",
        console.clock.now(),
        disposition=chosen_disposition,
        review=chosen_review,
    )
    console.wake_rules()
    return changed


@router.post("/alerts/{alert_id}/ack")
async def ack_form(request: Request, alert_id: str, viewer: PageViewer, console: ConsoleDep) -> Response:
    form = await checked_form(request)
    alert = alert_in_scope(console, viewer, alert_id)
    try:
        acknowledge(console, viewer, alert, text(form, "note"))
        request.session["flash"] = words_of(request).t("done")
    except AlertError as exc:
        request.session["flash"] = str(exc)
    return RedirectResponse(f"/alerts/{alert_id}", status_code=303)


@router.post("/alerts/{alert_id}/resolve")
async def resolve_form(request: Request, alert_id: str, viewer: PageViewer, console: ConsoleDep) -> Response:
    form = await checked_form(request)
    alert = alert_in_scope(console, viewer, alert_id)
    try:
        resolve(
            console,
            viewer,
            alert,
            text(form, "note"),
            disposition=text(form, "disposition"),
            review=text(form, "review"),
        )
        request.session["flash"] = words_of(request).t("done")
    except AlertError as exc:
        request.session["flash"] = str(exc)
    return RedirectResponse(f"/alerts/{alert_id}", status_code=303)


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
