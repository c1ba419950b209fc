"""What a person must say when closing an alert, whoever closes it: the console, the API and ``shian alerts
resolve`` all go through :func:`resolve_by_person`. The rules engine's own resolutions (a device back online,
a retest that passed) are not a person's and need neither."""

from __future__ import annotations

import datetime as dt

from rules.alerts import Alert, AlertError, Disposition, Review
from rules.store import RulesStore

#: The reasons a person's resolution is refused, in the words the console and the CLI show alike.
NEEDS_DISPOSITION = "a failed test is resolved with its disposition (returned_to_supplier, destroyed, other)"
NEEDS_REVIEW = "a camera violation is resolved with its review (confirmed, false_positive)"


def check_resolution(rule: str, *, disposition: Disposition | None, review: Review | None) -> None:
    """An :class:`AlertError` saying what is missing: a failed test's food's disposition, a violation's review."""
    if rule == "test.failed" and disposition is None:
        raise AlertError(NEEDS_DISPOSITION)
    if rule == "camera.violation" and review is None:
        raise AlertError(NEEDS_REVIEW)


def resolve_by_person(
    store: RulesStore,
    alert_id: str,
    by: str,
    why: str,
    at: dt.datetime,
    *,
    disposition: Disposition | None = None,
    review: Review | None = None,
) -> Alert:
    """Close an alert as a person: refused, with the reason, when what the alert's rule asks for is missing."""
    alert = store.get(alert_id)
    if alert is None:
        raise AlertError(f"no alert {alert_id}")
    check_resolution(alert.rule, disposition=disposition, review=review)
    return store.resolve(alert_id, by, why, at, disposition=disposition, review=review)
