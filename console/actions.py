"""What a supervisor does to an alert, for the pages and the API alike: acknowledge it, resolve it. Typed
arguments, nothing of HTTP; the rule of what a resolution must say is the domain's (``rules.handling``)."""

from __future__ import annotations

from console.access import Viewer
from console.context import Console
from rules.alerts import Alert, Disposition, Review
from rules.handling import resolve_by_person


def acknowledge(console: Console, viewer: Viewer, alert: Alert, note: str | None) -> Alert:
    changed = console.alerts.acknowledge(alert.alert_id, viewer.username, note or None, console.clock.now())
    console.wake_rules()
    return changed


def resolve(
    console: Console,
    viewer: Viewer,
    alert: Alert,
    note: str,
    *,
    disposition: Disposition | None,
    review: Review | None,
) -> Alert:
    """Close an alert (an :class:`~rules.alerts.AlertError` saying why when it cannot be)."""
    changed = resolve_by_person(
        console.alerts,
        alert.alert_id,
        viewer.username,
        note or "resolved in the console",
        console.clock.now(),
        disposition=disposition,
        review=review,
    )
    console.wake_rules()
    return changed
