"""Offline inspections in the console: the week's plan and the records for the regulators (district and city
accounts), entered and confirmed as rectified here as with ``shian inspect``; a school sees its own canteen's
visits and deadlines, never the plan (it would tell it when to expect a surprise visit)."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from console.access import Viewer
from console.context import Console
from console.scope import canteen_in_scope
from console.web.deps import ConsoleDep, PageViewer, words_of
from console.web.render import checked_form, parse_date, render, text
from rules.inspections import Inspection, InspectionBook, InspectionError, describe, iso_week, week_start, weekly_plan

router = APIRouter()

#: Days the list covers when the filter gives no range.
LIST_DAYS = 30
#: Canteens the page's plan draws for a week.
PLAN_COUNT = 10
INSPECTORS = ("district", "city")


@router.get("/inspections")
def inspections_page(request: Request, viewer: PageViewer, console: ConsoleDep) -> Response:
    return _page(request, console, viewer)


@router.post("/inspections")
async def record_inspection(request: Request, viewer: PageViewer, console: ConsoleDep) -> Response:
    if viewer.role not in INSPECTORS:
        raise HTTPException(403)
    form = await checked_form(request)
    values = {k: text(form, k, 4000) for k in ("canteen", "inspector", "visited_at", "findings", "photos")}
    values |= {k: text(form, k, 20) for k in ("rectify_by", "week")}
    canteen = canteen_in_scope(console, viewer, values["canteen"])
    book = console.alerts.inspections
    try:
        visited = dt.datetime.fromisoformat(values["visited_at"]).replace(tzinfo=console.tz)
        rectify_by = dt.date.fromisoformat(values["rectify_by"]) if values["rectify_by"] else None
        book.record(
            console.registry,
            canteen.id,
            inspector=values["inspector"],
            visited_at=visited,
            findings=values["findings"],
            photos=[line.strip() for line in values["photos"].splitlines() if line.strip()],
            rectify_by=rectify_by,
            week=values["week"] or None,
            by=viewer.username,
            at=console.clock.now(),
        )
    except ValidationError as exc:
        errors = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors(include_url=False)]
        return _page(request, console, viewer, values=values, errors=errors, status_code=422)
    except (InspectionError, ValueError) as exc:
        return _page(request, console, viewer, values=values, errors=[str(exc)], status_code=422)
    request.session["flash"] = words_of(request).t("inspection_saved", canteen=canteen.name)
    return RedirectResponse("/inspections", status_code=303)


@router.post("/inspections/{inspection_id}/rectified")
async def confirm_rectified(request: Request, inspection_id: str, viewer: PageViewer, console: ConsoleDep) -> Response:
    """The inspector's confirmation that what was found has been put right (it resolves the overdue alert)."""
    if viewer.role not in INSPECTORS:
        raise HTTPException(403)
    await checked_form(request)
    book = console.alerts.inspections
    try:
        inspection = book.get(inspection_id)
        if inspection is None or not viewer.sees(inspection.canteen_id):
            raise HTTPException(404)
        book.rectified(inspection_id, by=viewer.username, at=console.clock.now())
    except InspectionError as exc:
        request.session["flash"] = str(exc)
    console.wake_rules()
    return RedirectResponse("/inspections", status_code=303)


def _page(
    request: Request,
    console: Console,
    viewer: Viewer,
    *,
    values: dict[str, str] | None = None,
    errors: list[str] | None = None,
    status_code: int = 200,
) -> Response:
    params = request.query_params
    today = console.today()
    first = parse_date(params.get("from")) or today - dt.timedelta(days=LIST_DAYS)
    last = parse_date(params.get("to")) or today
    start, end = console.day_bounds(first)[0], console.day_bounds(last)[1]
    week = iso_week(today)
    book = console.alerts.inspections
    visits: list[Inspection] = sorted(book.between(start, end, viewer.canteens), key=lambda i: i.visited_at)
    chosen = _plan(console, viewer, book, week, words_of(request).language) if viewer.role in INSPECTORS else []
    canteens = [c for c in console.registry.canteens if c.type != "supplier" and viewer.sees(c.id)]
    return render(
        request,
        "inspections.html",
        viewer,
        status_code=status_code,
        visits=list(reversed(visits)),
        first=first,
        last=last,
        week=week,
        plan=chosen,
        canteens=canteens,
        may_record=viewer.role in INSPECTORS,
        values=values or {"week": week},
        errors=errors or [],
        today=today,
    )


def _plan(
    console: Console, viewer: Viewer, book: InspectionBook, week: str, language: str = "zh"
) -> list[tuple[str, float, str]]:
    """This week's draw for the viewer's scope (as ``shian inspect plan``), with each canteen's weight and its
    reasons in words."""
    chosen, found = weekly_plan(
        console.registry, console.alerts, book, week=week, count=PLAN_COUNT, canteens=viewer.canteens
    )
    return [(c, found[c].weight, describe(found[c], language)) for c in chosen]


#: What an inspector checks on a surprise visit (the visit sheet's checklist), (zh, en).
CHECKLIST: list[tuple[str, str]] = [
    (
        "快检记录与台账：每批进货均已检测，不合格品已退回并记录",
        "Rapid tests: every delivery tested, failures returned and logged",
    ),
    ("进货查验：供应商资质与索证索票齐全", "Receiving: suppliers' licences and certificates on file"),
    ("留样：每道菜 ≥ 125 g，0–8 °C 冷藏，≥ 48 小时", "Samples: ≥ 125 g a dish, kept at 0–8 °C for ≥ 48 h"),
    ("留样柜温度记录连续，无超温", "Sample cabinet: continuous temperature record, no excursion"),
    ("从业人员健康证有效，着装（口罩、帽子、工作服）规范", "Staff: valid health certificates; masks, hats, uniforms"),
    ("加工区生熟分开，餐用具清洗消毒", "Kitchen: raw and cooked kept apart, utensils washed and disinfected"),
    ("明厨亮灶：摄像头在线、画面清晰、录像保存", "Bright kitchen: cameras online, pictures clear, recordings kept"),
    ("上次检查问题已整改", "What the last inspection found has been put right"),
]


@router.get("/inspections/sheet")
def visit_sheet(request: Request, viewer: PageViewer, console: ConsoleDep, week: str, canteen: str) -> Response:
    """A printable visit sheet for one canteen of a week's plan: why it was drawn, the checklist, the deadline
    (the week's Sunday) and lines to sign."""
    if viewer.role not in INSPECTORS:
        raise HTTPException(403)
    chosen = canteen_in_scope(console, viewer, canteen)
    try:
        monday = week_start(week)
    except InspectionError:
        raise HTTPException(400, f"week: {week[:20]!r} is not a week such as 2026-W48") from None
    words = words_of(request)
    plan = {c: reasons for c, _, reasons in _plan(console, viewer, console.alerts.inspections, week, words.language)}
    index = 0 if words.language == "zh" else 1
    return render(
        request,
        "visit_sheet.html",
        viewer,
        canteen=chosen,
        week=week,
        monday=monday,
        deadline=monday + dt.timedelta(days=6),
        reasons=plan.get(canteen),
        checklist=[pair[index] for pair in CHECKLIST],
    )
