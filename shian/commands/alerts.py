"""``shian alerts list|show|ack|resolve``: the rules engine's alerts, from its store."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from shian.commands.common import CommandError, Commands, add_common, answer_no, settings_from

if TYPE_CHECKING:
    from rules.alerts import Alert
    from rules.store import RulesStore

#: How the audit log names a person acting at the server without a registry account.
OPERATOR_PREFIX = "operator:"


def add(commands: Commands) -> None:
    alerts = commands.add_parser(
        "alerts",
        help="list, show, acknowledge and resolve alerts",
        description="Alerts from the rules engine's store ({data_dir}/rules-{gateway.client_id}.sqlite). A running "
        "platform publishes the changes made here on the alerts topic within a tick.",
    )
    actions = alerts.add_subparsers(dest="alerts_command", required=True, metavar="ACTION")
    listing = actions.add_parser(
        "list",
        help="one line per alert, newest first",
        description="One line per alert, newest first, with its time in the registry's time zone (its UTC offset "
        "shown). Long lists come a page at a time: --limit and --offset, and a line on stderr says how many "
        "there are in all.",
    )
    add_common(listing)
    listing.add_argument("--state", choices=["open", "acknowledged", "resolved"])
    listing.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    listing.add_argument("--offset", type=int, default=0, help="skip this many of the newest first")
    listing.set_defaults(handler=_list)
    show = actions.add_parser("show", help="one alert with its audit log")
    add_common(show)
    show.add_argument("alert_id")
    show.set_defaults(handler=_show)
    ack = actions.add_parser("ack", help="acknowledge an open alert", description=_WHO)
    add_common(ack)
    ack.add_argument("alert_id")
    _add_who(ack)
    ack.add_argument("--note", help="e.g. confirmed / false_positive for a camera violation")
    ack.set_defaults(handler=_ack)
    resolve = actions.add_parser("resolve", help="resolve an alert", description=_WHO)
    add_common(resolve)
    resolve.add_argument("alert_id")
    _add_who(resolve)
    resolve.add_argument("--why", required=True, help="recorded in the audit log")
    resolve.add_argument(
        "--disposition",
        choices=["returned_to_supplier", "destroyed", "other"],
        help="what was done with the food: required for a failed test (test.failed)",
    )
    resolve.add_argument(
        "--review",
        choices=["confirmed", "false_positive"],
        help="whether the AI was right: required for a camera violation (camera.violation)",
    )
    resolve.set_defaults(handler=_resolve)


_WHO = (
    "The audit log records who did it: --by names a registry account that may handle this canteen's alerts (its "
    "school's, its district's or the city's, checked as for an acknowledgement over MQTT); --operator names a "
    "person at the server, recorded as such ('operator:NAME')."
)


def _add_who(parser: argparse.ArgumentParser) -> None:
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--by", metavar="ACCOUNT", help="a registry account allowed to handle this canteen's alerts")
    who.add_argument("--operator", metavar="NAME", help="a person acting at the server, without an account")


def _actor(args: argparse.Namespace, store: RulesStore) -> str:
    """Who the audit log names: an account checked against the registry, or an operator said to be one."""
    from devices.registry import load_registry
    from rules.runner import may_acknowledge

    if args.operator:
        return f"{OPERATOR_PREFIX}{args.operator}"
    alert = store.get(args.alert_id)
    if alert is None:
        raise CommandError(f"no alert {args.alert_id}")
    registry = load_registry(settings_from(args).registry)
    if not may_acknowledge(registry, alert.canteen_id, args.by):
        raise CommandError(
            f"{args.by!r} is not a registry account that may handle alerts of {alert.canteen_id} (the canteen's school "
            "account, its district's or the city's); an operator at the server uses --operator NAME"
        )
    return str(args.by)


@contextmanager
def _store(args: argparse.Namespace) -> Iterator[RulesStore]:
    from rules.store import RulesStore
    from wiring.build import rules_store_path

    path = rules_store_path(settings_from(args))
    if not path.exists():
        raise CommandError(f"no rules store at {path} (is --data-dir right?)")
    store = RulesStore(path)
    try:
        yield store
    finally:
        store.close()


def _list(args: argparse.Namespace) -> int:
    from devices.registry import load_registry

    tz = ZoneInfo(load_registry(settings_from(args).registry).timezone)
    with _store(args) as store:
        alerts, total = store.alerts(state=args.state, limit=args.limit, offset=args.offset), store.count(args.state)
    for alert in alerts:
        opened = alert.opened_at.astimezone(tz).isoformat(timespec="seconds")
        print(
            f"{alert.alert_id}\t{opened}\t{alert.state}\t{alert.severity}\t{alert.rule}\t{alert.canteen_id}\t{alert.message}"
        )
    if args.offset or len(alerts) < total:
        shown = f"{args.offset + 1}-{args.offset + len(alerts)}" if alerts else "none"
        print(f"showing {shown} of {total:,} alerts (--limit, --offset for more)", file=sys.stderr)
    return 0


def _show(args: argparse.Namespace) -> int:
    with _store(args) as store:
        found = store.get(args.alert_id)
        if found is None:
            return answer_no(f"no alert {args.alert_id}")
        document = {**json.loads(found.model_dump_json()), "audit": store.audit_for(found.alert_id)}
    print(json.dumps(document, ensure_ascii=False, indent=2))
    return 0


def _ack(args: argparse.Namespace) -> int:
    return _change(args, lambda store, now: store.acknowledge(args.alert_id, _actor(args, store), args.note, now))


def _resolve(args: argparse.Namespace) -> int:
    from rules.handling import resolve_by_person

    def change(store: RulesStore, now: dt.datetime) -> Alert:
        who = _actor(args, store)
        return resolve_by_person(
            store, args.alert_id, who, args.why, now, disposition=args.disposition, review=args.review
        )

    return _change(args, change)


def _change(args: argparse.Namespace, change: Callable[[RulesStore, dt.datetime], Alert]) -> int:
    """Apply an operator's change and print the alert's new state; an alert not in a state that allows it
    is an answer, not a failure (exit 1)."""
    from rules.alerts import AlertError
    from runtime.clock import SystemClock

    with _store(args) as store:
        try:
            print(change(store, SystemClock().now()).state)
        except AlertError as exc:
            return answer_no(str(exc))
    return 0
