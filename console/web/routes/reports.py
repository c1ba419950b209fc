"""The bulletins in the console: the monthly bulletin and the weekly report for download (HTML, XLSX, CSV in a
zip), each of the viewer's scope: the city's, a district's, a school's own canteen."""

from __future__ import annotations

import io
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from console.access import Viewer
from console.bulletin.figures import Bulletin, compile_bulletin
from console.bulletin.periods import Period, last_label, period_of
from console.bulletin.render import csv_zip, stem, to_html, write_xlsx
from console.context import Console
from console.scope import own_canteen
from console.web.deps import ConsoleDep, PageViewer, words_of
from console.web.render import render

router = APIRouter()

_TYPES = {
    "html": "text/html; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "application/zip",
}


@router.get("/reports")
def reports_page(request: Request, viewer: PageViewer, console: ConsoleDep) -> Response:
    """The form: which month or week, which district (the city's accounts), which format."""
    today = console.today()
    districts = sorted({c.district for c in console.registry.canteens}) if viewer.role == "city" else []
    return render(
        request,
        "reports.html",
        viewer,
        month=last_label("monthly", today),
        week=last_label("weekly", today),
        districts=districts,
    )


@router.get("/reports/{kind}")
def report_download(
    request: Request,
    kind: str,
    viewer: PageViewer,
    console: ConsoleDep,
    *,
    period: str,
    format: str = "html",
    district: str | None = None,
) -> Response:
    if format not in _TYPES:
        raise HTTPException(404, f"no {format!r} format: html, xlsx or csv")
    bulletin = _bulletin(console, viewer, kind, period, district or None)
    lang = words_of(request).language
    name = f"{stem(bulletin)}.{'zip' if format == 'csv' else format}"
    if format == "html":
        return HTMLResponse(to_html(bulletin, lang))
    if format == "xlsx":
        out = io.BytesIO()
        write_xlsx(bulletin, out, lang)
        body = out.getvalue()
    else:
        body = csv_zip(bulletin, lang)
    disposition = f"attachment; filename*=UTF-8''{quote(name)}"
    return Response(body, media_type=_TYPES[format], headers={"Content-Disposition": disposition})


def _bulletin(console: Console, viewer: Viewer, kind: str, label: str, district: str | None) -> Bulletin:
    """The bulletin of the viewer's scope: a district's account always gets its district's, a school's its own
    canteen's; the city chooses a district or none."""
    period = _period(console, kind, label)
    if viewer.role == "district":
        district = viewer.district
    elif viewer.role != "city":
        district = None
    if district is not None and not any(c.district == district for c in console.registry.canteens):
        raise HTTPException(404, f"no district {district!r}")
    scope_name = district
    if (school := own_canteen(viewer)) is not None:
        canteen = console.registry.canteen(school)
        scope_name = canteen.name if canteen else None
    canteens = viewer.canteens if viewer.role == "school" else None

    def compile_() -> Bulletin:
        return compile_bulletin(
            console.readings,
            console.alerts,
            console.alerts.inspections,
            console.registry,
            period,
            district=district,
            canteens=canteens,
            scope_name=scope_name,
            config=console.limits,
            now=console.clock.now(),
        )

    return console.bulletins.get((period.kind, period.label, district, canteens, scope_name), compile_)


def _period(console: Console, kind: str, label: str) -> Period:
    try:
        return period_of(kind, label, console.tz)
    except ValueError as exc:
        raise HTTPException(404, str(exc)) from None
