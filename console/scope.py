"""The viewer's scope applied: the one place that decides which canteen, alert or list a viewer may see, for the
pages, the API, the live feed and the reports alike. The rule itself is :meth:`console.access.Viewer.sees`;
this module applies it to the console's objects, with typed arguments and nothing of HTTP: an object outside
the scope is :class:`NotInScope`, which the web wing answers as if it did not exist (404)."""

from __future__ import annotations

import datetime as dt

from console.access import Viewer
from console.context import Console
from devices.registry import Canteen
from rules.alerts import Alert, AlertQuery, Severity, State
from runtime.errors import ShianError

#: Alerts a list shows a page.
PAGE_SIZE = 50
#: The deepest page of a list anyone pages to (and far below where the database's offsets overflow).
MAX_PAGE = 100_000


class NotInScope(ShianError, LookupError):
    """No such object, or not the viewer's to see: the same answer for both."""


def canteen_in_scope(console: Console, viewer: Viewer, canteen_id: str) -> Canteen:
    canteen = console.registry.canteen(canteen_id)
    if canteen is None or not viewer.sees(canteen_id):
        raise NotInScope(canteen_id)
    return canteen


def alert_in_scope(console: Console, viewer: Viewer, alert_id: str) -> Alert:
    alert = console.alerts.get(alert_id)
    if alert is None or not viewer.sees(alert.canteen_id):
        raise NotInScope(alert_id)
    return alert


def own_canteen(viewer: Viewer) -> str | None:
    """A school's one canteen; None for district and city accounts."""
    if viewer.role == "school" and viewer.canteens:
        return next(iter(viewer.canteens))
    return None


def alert_query(
    console: Console,
    viewer: Viewer,
    *,
    state: State | None = None,
    severity: Severity | None = None,
    rule: str | None = None,
    district: str | None = None,
    canteen: str | None = None,
    opened_from: dt.date | None = None,
    opened_to: dt.date | None = None,
) -> AlertQuery:
    """The viewer's scope narrowed by the filters; a filter outside the scope selects nothing."""
    scope = viewer.canteens
    if district:
        in_district = frozenset(c.id for c in console.registry.canteens if c.district == district)
        scope = in_district if scope is None else scope & in_district
    if canteen:
        scope = frozenset([canteen]) if scope is None else scope & {canteen}
    return AlertQuery(
        canteens=scope,
        state=state,
        severity=severity,
        rule=rule or None,
        opened_from=console.day_bounds(opened_from)[0] if opened_from else None,
        opened_to=console.day_bounds(opened_to)[1] if opened_to else None,
    )
