"""The page kit every route module uses: the templates and how a page is rendered with the viewer's words, the
error page, a posted form checked against its CSRF token, text and dates taken from a form or a query."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from fastapi import HTTPException, Request
from fastapi.responses import Response
from fastapi.templating import Jinja2Templates
from starlette.datastructures import FormData

from console.access import Viewer, csrf_matches, new_csrf_token
from console.context import Console
from console.days import DayOutOfRange, parse_day
from console.web.deps import console_of, session_viewer, words_of
from console.words import CATALOGUES

#: The console package's folder: its templates and static files.
CONSOLE_DIR = Path(__file__).resolve().parent.parent
templates = Jinja2Templates(directory=CONSOLE_DIR / "templates")
# Page data in <script type="application/json"> blocks keeps its Chinese as it is (still escaping < > & ').
templates.env.policies["json.dumps_kwargs"] = {"sort_keys": True, "ensure_ascii": False}


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
    return "/"  # the viewer's own home (routes.login.home)


def choice(value: str | None, catalogue: str) -> Any:
    """A form's value if it is one of its catalogue's, else None."""
    return value if value in CATALOGUES[catalogue] else None


def list_filter(value: str | None, catalogue: str) -> Any:
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
