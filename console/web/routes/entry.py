"""The form in which a canteen without a networked reader enters its strip results (``console.manual_entry``
makes the record or the errors), sent through the gateway's own intake."""

from __future__ import annotations

import json
import secrets

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from console.access import Viewer
from console.context import Console
from console.manual_entry import MAX_ROWS, READ_AT, ROW_FIELDS, SHARED_FIELDS, entry_payloads, row_count, test_choices
from console.scope import canteen_in_scope
from console.web.deps import ConsoleDep, PageViewer, words_of
from console.web.render import checked_form, render
from devices.registry import Canteen
from devices.vocabulary import CATEGORIES

router = APIRouter(include_in_schema=False)


def _school_canteen(console: Console, viewer: Viewer, canteen_id: str) -> Canteen:
    canteen = canteen_in_scope(console, viewer, canteen_id)
    if viewer.role != "school" or console.manual_intake is None:
        raise HTTPException(403)
    return canteen


def _form(
    request: Request,
    viewer: Viewer,
    console: Console,
    canteen: Canteen,
    *,
    form_id: str,
    rows: int,
    values: dict[str, str],
    errors: list[str],
) -> Response:
    return render(
        request,
        "test_entry.html",
        viewer,
        status_code=422 if errors else 200,
        canteen=canteen,
        form_id=form_id,
        rows=rows,
        max_rows=MAX_ROWS,
        values=values,
        choices=test_choices(console.registry.catalogue),
        categories=CATEGORIES,
        errors=errors,
    )


@router.get("/canteens/{canteen_id}/tests/new")
def entry_form(
    request: Request, canteen_id: str, viewer: PageViewer, console: ConsoleDep, rows: str | None = None
) -> Response:
    canteen = _school_canteen(console, viewer, canteen_id)
    now = console.clock.now().astimezone(console.tz).strftime("%H:%M")
    form_id = secrets.token_hex(8)
    return _form(
        request, viewer, console, canteen, form_id=form_id, rows=row_count(rows), values={READ_AT: now}, errors=[]
    )


@router.post("/canteens/{canteen_id}/tests/new")
async def enter_tests(request: Request, canteen_id: str, viewer: PageViewer, console: ConsoleDep) -> Response:
    """Every filled-in row, each through the gateway's own intake as its own record; the receipts are shown
    on the canteen's page, row by row."""
    canteen = _school_canteen(console, viewer, canteen_id)
    form = await checked_form(request)
    rows = row_count(form.get("rows") if isinstance(form.get("rows"), str) else None)  # type: ignore[arg-type]
    keys = [*SHARED_FIELDS, READ_AT, "form_id", *(f"{f}-{i}" for i in range(rows) for f in ROW_FIELDS)]
    values = {key: value for key in keys if isinstance(value := form.get(key), str)}
    words = words_of(request)
    payloads, errors = entry_payloads(
        values, username=viewer.username, now=console.clock.now(), tz=console.tz, words=words, rows=rows
    )
    if errors:
        form_id = values.get("form_id", "")
        return _form(request, viewer, console, canteen, form_id=form_id, rows=rows, values=values, errors=errors)
    assert console.manual_intake is not None
    receipts = []
    for payload in payloads:
        body = json.dumps(payload, ensure_ascii=False).encode()
        status, reason = await console.manual_intake(canteen_id, body)
        row = int(payload["msg_id"].rsplit("-", 1)[1])
        receipt = words.t(f"receipt_{status}", reason=reason or "")
        receipts.append(words.t("receipt_rows", n=row, sample=payload["sample_name"], receipt=receipt))
    request.session["flash"] = "；".join(receipts)
    return RedirectResponse(f"/canteens/{canteen_id}", status_code=303)
