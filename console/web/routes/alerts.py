"""The alert inbox (with its live feed), one alert, and what a supervisor does to it in the pages."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse

from console.actions import acknowledge, resolve
from console.context import Console
from console.evidence import audit_sentence, evidence_facts
from console.scope import MAX_PAGE, PAGE_SIZE, alert_in_scope, alert_query
from console.web.deps import ConsoleDep, PageViewer, session_viewer, words_of
from console.web.render import checked_form, choice, list_filter, parse_date, render, text
from console.words import CATALOGUES
from rules.alerts import ESCALATION_LEVELS, Alert, AlertError
from video.evidence import CLIP, STILL

router = APIRouter(include_in_schema=False)


@router.get("/alerts")
def inbox(request: Request, viewer: PageViewer, console: ConsoleDep) -> Response:
    params = {k: v for k, v in request.query_params.items() if v}
    try:
        page = min(max(1, int(params.get("page", "1"))), MAX_PAGE)
    except ValueError:
        page = 1
    query = alert_query(
        console,
        viewer,
        state=list_filter(params.get("state"), "state"),
        severity=list_filter(params.get("severity"), "severity"),
        rule=params.get("rule"),
        district=params.get("district"),
        canteen=params.get("canteen"),
        opened_from=parse_date(params.get("from")),
        opened_to=parse_date(params.get("to")),
    )
    alerts, total = console.alerts.search(query, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
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


def alert_links(alert: Alert, console: Console) -> dict[str, str]:
    """Where to look next: the batch's trace (a test or batch alert), and the canteen's day."""
    links = {}
    latest = alert.evidence[-1] if alert.evidence else {}
    if latest.get("supplier") and latest.get("batch_no"):
        links["trace_batch"] = "/trace?" + urlencode({"supplier": latest["supplier"], "batch": latest["batch_no"]})
    if console.registry.canteen(alert.canteen_id) is not None:
        day = alert.opened_at.astimezone(console.tz).date()
        links["canteen_day"] = f"/canteens/{alert.canteen_id}?date={day.isoformat()}"
    return links


@router.get("/alerts/{alert_id}")
def alert_page(request: Request, alert_id: str, viewer: PageViewer, console: ConsoleDep) -> Response:
    alert = alert_in_scope(console, viewer, alert_id)
    words = words_of(request)
    canteen_name = lambda cid: c.name if (c := console.registry.canteen(cid)) else cid  # noqa: E731
    return render(
        request,
        "alert.html",
        viewer,
        alert=alert,
        facts=[evidence_facts(entry, words, console.tz, canteen_name) for entry in alert.evidence],
        links=alert_links(alert, console),
        audit=[(entry["at"], audit_sentence(entry, words)) for entry in console.alerts.audit_for(alert_id)],
        notified=notified(console, alert),
        levels=ESCALATION_LEVELS,
        pictures=_pictures(console, alert_id),
    )


def _pictures(console: Console, alert_id: str) -> list[str]:
    """The still and the clip the platform took from the stream for this alert (docs/video.md)."""
    if console.video is None:
        return []
    folder = console.video.link.evidence_dir / alert_id
    return [name for name in (STILL, CLIP) if (folder / name).is_file()]


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
            disposition=choice(text(form, "disposition"), "disposition"),
            review=choice(text(form, "review"), "review"),
        )
        request.session["flash"] = words_of(request).t("done")
    except AlertError as exc:
        request.session["flash"] = str(exc)
    return RedirectResponse(f"/alerts/{alert_id}", status_code=303)
