"""``/api/v1``: the console's data for machine clients, scoped exactly as the pages are.

Authenticated by a bearer token (``shian console token issue``) or, from a browser, by the session cookie;
a change made with the cookie must carry the session's CSRF token in ``X-CSRF-Token``.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Query, Request
from pydantic import BaseModel, Field

from console.access import csrf_matches
from console.actions import acknowledge, resolve
from console.context import Console
from console.days import Day
from console.readings import DeviceSeen, SampleRow, TestRow
from console.scope import PAGE_SIZE, alert_in_scope, alert_query, canteen_in_scope
from console.web.deps import ApiViewer, ConsoleDep
from rules.alerts import Alert, AlertError, Disposition, Review, Severity, State

router = APIRouter(prefix="/api/v1", tags=["v1"])
#: The furthest any list is paged into (SQLite's offsets are 64-bit: past that, a 500).
MAX_OFFSET = 10_000_000


class AlertPage(BaseModel):
    total: int
    offset: int
    alerts: list[Alert]


class AckBody(BaseModel):
    note: str | None = Field(default=None, max_length=1000)


class ResolveBody(BaseModel):
    note: str = Field(default="resolved through the API", max_length=1000)
    #: Required for a failed test: what was done with the food.
    disposition: Disposition | None = None
    #: Required for a camera violation: whether the AI was right.
    review: Review | None = None


class CanteenOut(BaseModel):
    id: str
    name: str
    district: str
    type: str
    testing_tier: str


class DeviceOut(BaseModel):
    id: str
    kind: str
    heartbeat_s: float
    last_message: dt.datetime | None
    state: str | None


def _change_allowed(request: Request, csrf: str | None) -> None:
    if not request.state.by_token and not csrf_matches(request.session.get("csrf"), csrf):
        raise HTTPException(403, "a change made with the session cookie needs the X-CSRF-Token header")


@router.get("/alerts", summary="List alerts, newest first")
def list_alerts(
    *,
    viewer: ApiViewer,
    console: ConsoleDep,
    state: State | None = None,
    severity: Severity | None = None,
    rule: str | None = None,
    district: str | None = None,
    canteen: str | None = None,
    opened_from: Annotated[Day | None, Query(alias="from")] = None,
    opened_to: Annotated[Day | None, Query(alias="to")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = PAGE_SIZE,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> AlertPage:
    query = alert_query(
        console,
        viewer,
        state=state,
        severity=severity,
        rule=rule,
        district=district,
        canteen=canteen,
        opened_from=opened_from,
        opened_to=opened_to,
    )
    alerts, total = console.alerts.search(query, limit=limit, offset=offset)
    return AlertPage(total=total, offset=offset, alerts=alerts)


@router.get("/alerts/{alert_id}", summary="One alert, with its audit trail")
def get_alert(alert_id: str, viewer: ApiViewer, console: ConsoleDep) -> dict[str, Any]:
    alert = alert_in_scope(console, viewer, alert_id)
    return {"alert": alert.model_dump(mode="json"), "audit": console.alerts.audit_for(alert_id)}


@router.post("/alerts/{alert_id}/ack", summary="Acknowledge an open alert")
def ack_alert(
    *,
    request: Request,
    alert_id: str,
    body: AckBody,
    viewer: ApiViewer,
    console: ConsoleDep,
    x_csrf_token: Annotated[str | None, Header()] = None,
) -> Alert:
    _change_allowed(request, x_csrf_token)
    alert = alert_in_scope(console, viewer, alert_id)
    try:
        return acknowledge(console, viewer, alert, body.note)
    except AlertError as exc:
        raise HTTPException(409, str(exc)) from None


@router.post("/alerts/{alert_id}/resolve", summary="Resolve an alert (with a disposition or review)")
def resolve_alert(
    *,
    request: Request,
    alert_id: str,
    body: ResolveBody,
    viewer: ApiViewer,
    console: ConsoleDep,
    x_csrf_token: Annotated[str | None, Header()] = None,
) -> Alert:
    _change_allowed(request, x_csrf_token)
    alert = alert_in_scope(console, viewer, alert_id)
    try:
        return resolve(console, viewer, alert, body.note, disposition=body.disposition, review=body.review)
    except AlertError as exc:
        raise HTTPException(409, str(exc)) from None


@router.get("/canteens", summary="The canteens the caller may see")
def list_canteens(viewer: ApiViewer, console: ConsoleDep) -> list[CanteenOut]:
    return [_canteen_out(c) for c in console.registry.canteens if viewer.sees(c.id)]


@router.get("/canteens/{canteen_id}", summary="One canteen")
def get_canteen(canteen_id: str, viewer: ApiViewer, console: ConsoleDep) -> CanteenOut:
    return _canteen_out(canteen_in_scope(console, viewer, canteen_id))


def _day_range(console: Console, day: dt.date | None) -> tuple[dt.datetime, dt.datetime]:
    return console.day_bounds(day or console.today())


@router.get("/canteens/{canteen_id}/tests", summary="A canteen's rapid tests on one day (default today)")
def canteen_tests(canteen_id: str, viewer: ApiViewer, console: ConsoleDep, date: Day | None = None) -> list[TestRow]:
    canteen_in_scope(console, viewer, canteen_id)
    return console.readings.tests(frozenset([canteen_id]), *_day_range(console, date))


@router.get("/canteens/{canteen_id}/samples", summary="A canteen's retained samples on one day (default today)")
def canteen_samples(
    canteen_id: str, viewer: ApiViewer, console: ConsoleDep, date: Day | None = None
) -> list[SampleRow]:
    canteen_in_scope(console, viewer, canteen_id)
    return console.readings.samples(canteen_id, *_day_range(console, date))


@router.get("/canteens/{canteen_id}/devices", summary="A canteen's devices and their last message")
def canteen_devices(canteen_id: str, viewer: ApiViewer, console: ConsoleDep) -> list[DeviceOut]:
    canteen = canteen_in_scope(console, viewer, canteen_id)
    seen = console.readings.devices(canteen_id)
    return [_device_out(d.id, d.kind, d.heartbeat_s, seen.get(d.id)) for d in canteen.devices]


def _canteen_out(canteen: Any) -> CanteenOut:
    return CanteenOut(
        id=canteen.id,
        name=canteen.name,
        district=canteen.district,
        type=canteen.type,
        testing_tier=canteen.testing_tier,
    )


def _device_out(device_id: str, kind: str, heartbeat_s: float, seen: DeviceSeen | None) -> DeviceOut:
    return DeviceOut(
        id=device_id,
        kind=kind,
        heartbeat_s=heartbeat_s,
        last_message=seen.last_message if seen else None,
        state=seen.state if seen else None,
    )
