"""The form in which a canteen without a networked reader enters its strip results (``console.manual_entry``
makes the record or the errors), sent through the gateway's own intake."""

from __future__ import annotations

import json
import secrets

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from console.access import Viewer
from console.context import Console
from console.manual_entry import FORM_FIELDS, READ_AT, entry_payload
from console.scope import canteen_in_scope
from console.web.deps import ConsoleDep, PageViewer, words_of
from console.web.render import checked_form, render
from devices.registry import Canteen

router = APIRouter(include_in_schema=False)


def _school_canteen(console: Console, viewer: Viewer, canteen_id: str) -> Canteen:
    canteen = canteen_in_scope(console, viewer, canteen_id)
    if viewer.role != "school" or console.manual_intake is None:
        raise HTTPException(403)
    return canteen


@router.get("/canteens/{canteen_id}/tests/new")
def entry_form(request: Request, canteen_id: str, viewer: PageViewer, console: ConsoleDep) -> Response:
    canteen = _school_canteen(console, viewer, canteen_id)
    now = console.clock.now().astimezone(console.tz).strftime("%H:%M")
    return render(
        request,
        "test_entry.html",
        viewer,
        canteen=canteen,
        form_id=secrets.token_hex(8),
        values={READ_AT: now},
        items=[item.code for item in console.registry.catalogue],
        errors=[],
    )


@router.post("/canteens/{canteen_id}/tests/new")
async def enter_test(request: Request, canteen_id: str, viewer: PageViewer, console: ConsoleDep) -> Response:
    canteen = _school_canteen(console, viewer, canteen_id)
    form = await checked_form(request)
    values = {key: value for key in (*FORM_FIELDS, READ_AT, "form_id") if isinstance(value := form.get(key), str)}
    payload, errors = entry_payload(
        values, username=viewer.username, now=console.clock.now(), tz=console.tz, words=words_of(request)
    )
    if errors:
        return render(
            request,
            "test_entry.html",
            viewer,
            status_code=422,
            canteen=canteen,
            form_id=values.get("form_id", ""),
            values=values,
            items=[item.code for item in console.registry.catalogue],
            errors=errors,
        )
    assert console.manual_intake is not None
    status, reason = await console.manual_intake(canteen_id, json.dumps(payload, ensure_ascii=False).encode())
    words = words_of(request)
    request.session["flash"] = words.t(f"receipt_{status}", reason=reason or "")
    return RedirectResponse(f"/canteens/{canteen_id}", status_code=303)
