"""A canteen's menu for the coming days: shown to its supervisors, imported by the school as CSV."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import UploadFile

from console.access import Viewer
from console.context import Console
from console.menus import MenuError, parse_menu_csv
from console.scope import canteen_in_scope
from console.web.deps import ConsoleDep, PageViewer, words_of
from console.web.render import checked_form, render, text
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
    if isinstance(upload, UploadFile) and upload.filename:
        source = upload.filename
        raw = await upload.read(MAX_MENU_BYTES + 1)
        content = raw.decode("utf-8", "replace") if len(raw) <= MAX_MENU_BYTES else ""
    else:
        content = text(form, "text", MAX_MENU_BYTES)
    try:
        rows = parse_menu_csv(content, source)
        past = [
            f"{source}: {r.day} is before today; a menu can be set from today on"
            for r in rows
            if r.day < console.today()
        ]
        if past:
            raise MenuError(past[:1])
    except MenuError as exc:
        return _menu_page(request, console, viewer, canteen, text=content, errors=exc.problems)
    console.alerts.menus.set(
        canteen_id, [(r.day, r.meal, r.dishes) for r in rows], viewer.username, console.clock.now()
    )
    request.session["flash"] = words_of(request).t("menus_saved", count=len(rows))
    return RedirectResponse(f"/canteens/{canteen_id}/menu", status_code=303)
