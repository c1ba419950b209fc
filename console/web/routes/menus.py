"""A canteen's menu for the coming days: shown to its supervisors, imported by the school as CSV."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import UploadFile

from console.access import Viewer
from console.context import Console
from console.menus import MenuError, MenuProblem, decode_menu, parse_menu_csv
from console.scope import canteen_in_scope
from console.web.deps import ConsoleDep, PageViewer, words_of
from console.web.render import checked_form, render, text
from console.words import Words
from devices.registry import Canteen

router = APIRouter(include_in_schema=False)
#: A menu file's size at most: two weeks of four meals is a few kilobytes.
MAX_MENU_BYTES = 64 * 1024

#: Days of menus the menu page shows, from today.
MENU_DAYS = 14


def _menu_page(
    request: Request, console: Console, viewer: Viewer, canteen: Canteen, *, text: str = "", errors: list[str]
) -> Response:
    today = console.today()
    return render(
        request,
        "menu.html",
        viewer,
        status_code=422 if errors else 200,
        canteen=canteen,
        menus=console.alerts.menus.between(canteen.id, today, today + dt.timedelta(days=MENU_DAYS - 1)),
        may_edit=viewer.role == "school",
        text=text,
        errors=errors,
    )


def _in_words(words: Words, params: dict[str, object]) -> dict[str, object]:
    return {key: words("meal", str(value)) if key == "meal" else value for key, value in params.items()}


@router.get("/canteens/{canteen_id}/menu")
def menu_page(request: Request, canteen_id: str, viewer: PageViewer, console: ConsoleDep) -> Response:
    return _menu_page(request, console, viewer, canteen_in_scope(console, viewer, canteen_id), errors=[])


@router.post("/canteens/{canteen_id}/menu")
async def import_menu(request: Request, canteen_id: str, viewer: PageViewer, console: ConsoleDep) -> Response:
    """A school's menu, uploaded as a CSV file or pasted. Only days from today on: what sample.missing has
    already judged stays judged against what was known then."""
    canteen = canteen_in_scope(console, viewer, canteen_id)
    if viewer.role != "school":
        raise HTTPException(403)
    form = await checked_form(request)
    upload, source = form.get("file"), "menu.csv"
    serves = frozenset(m.meal for m in canteen.meals) or None
    content = ""
    try:
        if isinstance(upload, UploadFile) and upload.filename:
            source = upload.filename[:80]
            raw = await upload.read(MAX_MENU_BYTES + 1)
            if len(raw) > MAX_MENU_BYTES:
                raise MenuError([MenuProblem(source, "menu_too_large", {"kb": MAX_MENU_BYTES // 1024})])
            content = decode_menu(raw, source)
        else:
            content = text(form, "text", MAX_MENU_BYTES)
        rows = parse_menu_csv(content, source, serves=serves)
        past = [MenuProblem(source, "menu_past", {"day": r.day.isoformat()}) for r in rows if r.day < console.today()]
        if past:
            raise MenuError(past[:1])
    except MenuError as exc:
        words = words_of(request)
        errors = [
            words.t("field_error", where=p.where, reason=words.t(p.key, **_in_words(words, p.params)))
            for p in exc.problems
        ]
        return _menu_page(request, console, viewer, canteen, text=content, errors=errors)
    console.alerts.menus.set(
        canteen_id, [(r.day, r.meal, r.dishes) for r in rows], viewer.username, console.clock.now()
    )
    request.session["flash"] = words_of(request).t("menus_saved", count=len(rows))
    return RedirectResponse(f"/canteens/{canteen_id}/menu", status_code=303)
