"""A canteen's day (tests, samples against the menu, the cabinet's temperature, devices, open alerts) and the
district and city overviews."""

from __future__ import annotations

import collections
import datetime as dt
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from console.access import Viewer
from console.context import Console
from console.readings import SampleRow, TestRow
from console.scope import canteen_in_scope, own_canteen
from console.web.deps import ConsoleDep, PageViewer, words_of
from console.web.render import parse_date, render
from devices.registry import Canteen
from rules.alerts import AlertQuery

router = APIRouter(include_in_schema=False)


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
    menus = console.alerts.menus.between(canteen.id, day, day)
    rows = [MealSamples(m.meal, menus.get((day, m.meal), list(m.dishes)), by_meal.pop(m.meal, [])) for m in served]
    return rows + [MealSamples(meal, [], kept) for meal, kept in sorted(by_meal.items())]


def temperature_chart(points: list[Any], console: Console) -> dict[str, Any]:
    """ECharts series of each cabinet's readings, times in the region's zone."""
    series: dict[str, list[list[Any]]] = collections.defaultdict(list)
    for point in points:
        series[point.device].append([point.at.astimezone(console.tz).isoformat(), point.temp_c])
    return {"series": [{"name": device, "data": data} for device, data in sorted(series.items())]}


@router.get("/canteens/{canteen_id}")
def canteen_page(
    request: Request, canteen_id: str, viewer: PageViewer, console: ConsoleDep, date: str | None = None
) -> Response:
    """The canteen's day: today, or ``date`` (an earlier day; a later one is today)."""
    canteen = canteen_in_scope(console, viewer, canteen_id)
    today = console.today()
    day = min(parse_date(date) or today, today)
    start, end = console.day_bounds(day)
    now = min(console.clock.now(), end)
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
        earlier=day - dt.timedelta(days=1),
        later=day + dt.timedelta(days=1) if day < today else None,
        is_today=day == today,
        tests=tests,
        deliveries=console.readings.deliveries(frozenset([canteen_id]), start, end),
        meals=samples_by_meal(console, canteen, day, console.readings.samples(canteen_id, start, end)),
        chart=temperature_chart(console.readings.temperatures(canteen_id, now - dt.timedelta(hours=24), now), console),
        devices=devices,
        cameras_online=sum(1 for _, s in cameras if s is not None and s.state == "online"),
        cameras=len(cameras),
        open_alerts=open_alerts,
        may_enter=viewer.role == "school" and console.manual_intake is not None and day == today,
    )


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
    if (school := own_canteen(viewer)) is not None:
        return RedirectResponse(f"/canteens/{school}", status_code=303)
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
