"""The console's pages about canteens: one canteen's day, the district and city overviews, and the form in
which a canteen without a networked reader enters its strip results."""

from __future__ import annotations

import collections
import datetime as dt
import json
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import UploadFile

from console.access import Viewer
from console.app import ConsoleDep, PageViewer, words_of
from console.context import Console
from console.manual_entry import FORM_FIELDS, READ_AT, entry_payload
from console.menus import MenuError, parse_menu_csv
from console.pages import checked_form, parse_date, render, text
from console.readings import SampleRow, TestRow
from console.trace import TraceLine, scorecard, trace
from console.words import ITEMS
from devices.registry import Canteen
from rules.alerts import AlertQuery

router = APIRouter(include_in_schema=False)
#: A menu file's size at most: two weeks of four meals is a few kilobytes.
MAX_MENU_BYTES = 64 * 1024


def canteen_in_scope(console: Console, viewer: Viewer, canteen_id: str) -> Canteen:
    canteen = console.registry.canteen(canteen_id)
    if canteen is None or not viewer.sees(canteen_id):
        raise HTTPException(404)
    return canteen


@dataclass(frozen=True)
class MealSamples:
    meal: str
    dishes: list[str]
    kept: list[SampleRow]

    @property
    def missing(self) -> list[str]:
        named = {s.dish_name for s in self.kept}
        return [dish for dish in self.dishes if dish not in named]


def samples_by_meal(console: Console, canteen: Canteen, day: dt.date, samples: list[SampleRow]) -> list[MealSamples]:
    """Each meal served on ``day`` with its dishes (the day's menu, else the fixed ones) and the samples kept."""
    by_meal: dict[str, list[SampleRow]] = collections.defaultdict(list)
    for sample in samples:
        if sample.meal_date in (None, day.isoformat()):
            by_meal[sample.meal].append(sample)
    served = [m for m in canteen.meals if day.isoweekday() in m.weekdays]
    menus = console.alerts.menus_between(canteen.id, day, day)
    rows = [MealSamples(m.meal, menus.get((day, m.meal), list(m.dishes)), by_meal.pop(m.meal, [])) for m in served]
    return rows + [MealSamples(meal, [], kept) for meal, kept in sorted(by_meal.items())]


def temperature_chart(points: list[Any], console: Console) -> dict[str, Any]:
    """ECharts series of each cabinet's readings, times in the region's zone."""
    series: dict[str, list[list[Any]]] = collections.defaultdict(list)
    for point in points:
        series[point.device].append([point.at.astimezone(console.tz).isoformat(), point.temp_c])
    return {"series": [{"name": device, "data": data} for device, data in sorted(series.items())]}


@router.get("/canteens/{canteen_id}")
def canteen_page(request: Request, canteen_id: str, viewer: PageViewer, console: ConsoleDep) -> Response:
    canteen = canteen_in_scope(console, viewer, canteen_id)
    day = console.today()
    start, end = console.day_bounds(day)
    now = console.clock.now()
    tests = console.readings.tests(frozenset([canteen_id]), start, end)
    seen = console.readings.devices(canteen_id)
    devices = [(d, seen.get(d.id)) for d in canteen.devices]
    cameras = [entry for entry in devices if entry[0].kind == "camera"]
    open_alerts, _ = console.alerts.search(AlertQuery(canteens=frozenset([canteen_id]), active=True), limit=100)
    return render(
        request,
        "canteen.html",
        viewer,
        canteen=canteen,
        day=day,
        tests=tests,
        meals=samples_by_meal(console, canteen, day, console.readings.samples(canteen_id, start, end)),
        chart=temperature_chart(console.readings.temperatures(canteen_id, now - dt.timedelta(hours=24), now), console),
        devices=devices,
        cameras_online=sum(1 for _, s in cameras if s is not None and s.state == "online"),
        cameras=len(cameras),
        open_alerts=open_alerts,
        may_enter=viewer.role == "school" and console.manual_intake is not None,
    )


# --- overviews --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Overview:
    covered: int
    tested: int
    tests: int
    passed: int
    by_district: list[tuple[str, int]]
    by_rule: list[tuple[str, int]]
    top_canteens: list[tuple[str, int]]

    @property
    def pass_rate(self) -> float | None:
        return self.passed / self.tests if self.tests else None


def overview_of(console: Console, canteens: list[Canteen]) -> Overview:
    ids = frozenset(c.id for c in canteens)
    start, end = console.day_bounds(console.today())
    tests: list[TestRow] = console.readings.tests(ids, start, end)
    district_of = {c.id: c.district for c in canteens}
    by_district: collections.Counter[str] = collections.Counter()
    by_rule: collections.Counter[str] = collections.Counter()
    by_canteen: collections.Counter[str] = collections.Counter()
    for canteen_id, rule, n in console.alerts.open_by(ids):
        by_district[district_of.get(canteen_id, "—")] += n
        by_rule[rule] += n
        by_canteen[canteen_id] += n
    return Overview(
        covered=sum(1 for c in canteens if c.testing_tier != "none"),
        tested=len({t.canteen for t in tests}),
        tests=len(tests),
        passed=sum(1 for t in tests if t.result == "pass"),
        by_district=sorted(by_district.items(), key=lambda kv: (-kv[1], kv[0])),
        by_rule=by_rule.most_common(),
        top_canteens=by_canteen.most_common(10),
    )


@router.get("/overview")
def overview(request: Request, viewer: PageViewer, console: ConsoleDep) -> Response:
    if viewer.role == "school" and viewer.canteens:
        return RedirectResponse(f"/canteens/{next(iter(viewer.canteens))}", status_code=303)
    if viewer.role == "district" and viewer.district:
        return RedirectResponse(f"/districts/{quote(viewer.district)}", status_code=303)
    return _overview_page(request, viewer, console, None)


@router.get("/districts/{district}")
def district_page(request: Request, district: str, viewer: PageViewer, console: ConsoleDep) -> Response:
    if viewer.role == "school" or (viewer.role == "district" and viewer.district != district):
        raise HTTPException(404)
    if not any(c.district == district for c in console.registry.canteens):
        raise HTTPException(404)
    return _overview_page(request, viewer, console, district)


def _overview_page(request: Request, viewer: Viewer, console: Console, district: str | None) -> Response:
    canteens = [
        c for c in console.registry.canteens if viewer.sees(c.id) and (district is None or c.district == district)
    ]
    summary = overview_of(console, canteens)
    words = words_of(request)
    charts = {
        "by_district": {"labels": [d for d, _ in summary.by_district], "values": [n for _, n in summary.by_district]},
        "by_rule": {
            "labels": [words("rule", r) for r, _ in summary.by_rule],
            "values": [n for _, n in summary.by_rule],
        },
    }
    districts = sorted({c.district for c in canteens})
    return render(
        request, "overview.html", viewer, district=district, summary=summary, charts=charts, districts=districts
    )


# --- strip results entered by hand ------------------------------------------------------------------------

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
        items=list(ITEMS),
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
            items=list(ITEMS),
            errors=errors,
        )
    assert console.manual_intake is not None
    status, reason = await console.manual_intake(canteen_id, json.dumps(payload, ensure_ascii=False).encode())
    words = words_of(request)
    request.session["flash"] = words.t(f"receipt_{status}", reason=reason or "")
    return RedirectResponse(f"/canteens/{canteen_id}", status_code=303)


# --- menus ------------------------------------------------------------------------------------------------

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
        menus=console.alerts.menus_between(canteen.id, today, today + dt.timedelta(days=MENU_DAYS - 1)),
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
    console.alerts.set_menus(
        canteen_id, [(r.day, r.meal, r.dishes) for r in rows], viewer.username, console.clock.now()
    )
    request.session["flash"] = words_of(request).t("menus_saved", count=len(rows))
    return RedirectResponse(f"/canteens/{canteen_id}/menu", status_code=303)


# --- tracing a batch or a supplier ------------------------------------------------------------------------

#: Days a trace covers when the form gives no range.
TRACE_DAYS = 30


@router.get("/trace")
def trace_page(request: Request, viewer: PageViewer, console: ConsoleDep) -> Response:
    """Every canteen (of the viewer's) that tested a batch or a supplier's food, and what became of each; asked
    for neither, the suppliers' scorecard of the period."""
    params = {k: v.strip() for k, v in request.query_params.items() if v.strip()}
    today = console.today()
    first = parse_date(params.get("from")) or today - dt.timedelta(days=TRACE_DAYS)
    last = parse_date(params.get("to")) or today
    supplier, batch = params.get("supplier"), params.get("batch")
    lines: list[TraceLine] = []
    truncated = False
    start, end = console.day_bounds(first)[0], console.day_bounds(last)[1]
    if supplier or batch:
        lines, truncated = trace(
            console.registry,
            console.readings,
            console.alerts,
            words_of(request),
            canteens=viewer.canteens,
            start=start,
            end=end,
            supplier=supplier,
            batch=batch,
        )
    tallies = [] if supplier or batch else scorecard(console.readings, canteens=viewer.canteens, start=start, end=end)
    return render(
        request,
        "trace.html",
        viewer,
        lines=lines,
        truncated=truncated,
        supplier=supplier or "",
        batch=batch or "",
        first=first,
        last=last,
        asked=bool(supplier or batch),
        tallies=tallies,
        failed=sum(1 for line in lines if line.test.result == "fail"),
        canteens=len({line.test.canteen for line in lines}),
    )
