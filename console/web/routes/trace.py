"""The supplier trace: every canteen (of the viewer's) that tested a batch or a supplier's food, and what
became of each; asked for neither, the suppliers' scorecard."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Request
from fastapi.responses import Response

from console.trace import ReceivedLine, TraceLine, received_untested, scorecard, trace
from console.web.deps import ConsoleDep, PageViewer, words_of
from console.web.render import parse_date, render

router = APIRouter(include_in_schema=False)

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
    received: list[ReceivedLine] = []
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
        received = received_untested(
            console.registry,
            console.readings,
            lines,
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
        received=received,
        truncated=truncated,
        supplier=supplier or "",
        batch=batch or "",
        first=first,
        last=last,
        asked=bool(supplier or batch),
        tallies=tallies,
        failed=sum(1 for line in lines if line.test.result == "fail"),
        canteens=len({line.test.canteen for line in lines} | {r.delivery.canteen for r in received}),
    )
