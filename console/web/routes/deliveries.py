"""The receiving ledger (进货台账): a school records each delivery its canteen received, with the supplier's
certificates as links (``console.deliveries`` makes the record or the errors), sent through the gateway's own
intake as the canteen's manual detector sends its strip results."""

from __future__ import annotations

import json
import secrets

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from console.deliveries import FIELDS, RECEIVED_AT, delivery_payload
from console.scope import canteen_in_scope
from console.web.deps import ConsoleDep, PageViewer, words_of
from console.web.render import checked_form, render
from devices.vocabulary import CATEGORIES

router = APIRouter(include_in_schema=False)


@router.get("/canteens/{canteen_id}/deliveries/new")
def delivery_form(request: Request, canteen_id: str, viewer: PageViewer, console: ConsoleDep) -> Response:
    canteen = canteen_in_scope(console, viewer, canteen_id)
    if viewer.role != "school" or console.manual_intake is None:
        raise HTTPException(403)
    now = console.clock.now().astimezone(console.tz).strftime("%H:%M")
    values = {RECEIVED_AT: now, "food_category": "vegetable"}
    return render(
        request,
        "delivery_entry.html",
        viewer,
        canteen=canteen,
        form_id=secrets.token_hex(8),
        values=values,
        categories=CATEGORIES,
        errors=[],
    )


@router.post("/canteens/{canteen_id}/deliveries/new")
async def enter_delivery(request: Request, canteen_id: str, viewer: PageViewer, console: ConsoleDep) -> Response:
    canteen = canteen_in_scope(console, viewer, canteen_id)
    if viewer.role != "school" or console.manual_intake is None:
        raise HTTPException(403)
    form = await checked_form(request)
    values = {key: value for key in (*FIELDS, RECEIVED_AT, "form_id") if isinstance(value := form.get(key), str)}
    words = words_of(request)
    payload, errors = delivery_payload(
        values, username=viewer.username, now=console.clock.now(), tz=console.tz, words=words
    )
    if errors:
        return render(
            request,
            "delivery_entry.html",
            viewer,
            status_code=422,
            canteen=canteen,
            form_id=values.get("form_id", ""),
            values=values,
            categories=CATEGORIES,
            errors=errors,
        )
    status, reason = await console.manual_intake(canteen_id, json.dumps(payload, ensure_ascii=False).encode())
    request.session["flash"] = words.t(f"receipt_{status}", reason=reason or "")
    return RedirectResponse(f"/canteens/{canteen_id}", status_code=303)
