"""``shian alerts list|show|ack|resolve``: the rules engine's alerts, from its store."""

from __future__ import annotations

import argparse
import datetime as dt
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rules.alerts import Alert, AlertError, RulesStore
from runtime.clock import SystemClock
from shian.commands.common import CommandError, Commands, add_common, answer_no, settings_from
from wiring.build import rules_store_path


def add(commands: Commands) -> None:
    alerts = commands.add_parser(
        "alerts",
        help="list, show, acknowledge and resolve alerts",
        description="Alerts from the rules engine's store ({data_dir}/rules-{gateway.client_id}.sqlite). A running "
        "platform publishes the changes made here on the alerts topic within a tick.",
    )
    actions = alerts.add_subparsers(dest="alerts_command", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="one line per alert, newest first")
    add_common(listing)
    listing.add_argument("--state", choices=["open", "acknowledged", "resolved"])
    listing.set_defaults(handler=_list)
    show = actions.add_parser("show", help="one alert with its audit log")
    add_common(show)
    show.add_argument("alert_id")
    show.set_defaults(handler=_show)
    ack = actions.add_parser("ack", help="acknowledge an open alert")
    add_common(ack)
    ack.add_argument("alert_id")
    ack.add_argument("--by", required=True, help="who acknowledges (recorded in the audit log)")
    ack.add_argument("--note", help="e.g. confirmed / false_positive for a camera violation")
    ack.set_defaults(handler=_ack)
    resolve = actions.add_parser("resolve", help="resolve an alert")
    add_common(resolve)
    resolve.add_argument("alert_id")
    resolve.add_argument("--by", required=True)
    resolve.add_argument("--why", required=True, help="recorded in the audit log")
    resolve.set_defaults(handler=_resolve)


@contextmanager
def _store(args: argparse.Namespace) -> Iterator[RulesStore]:
    path = rules_store_path(settings_from(args))
    if not path.exists():
        raise CommandError(f"no rules store at {path} (is --data-dir right?)")
    store = RulesStore(path)
    try:
        yield store
    finally:
        store.close()


def _list(args: argparse.Namespace) -> int:
    with _store(args) as store:
        for alert in store.alerts(state=args.state):
            print(
                f"{alert.alert_id}\t{alert.opened_at:%Y-%m-%dT%H:%M:%SZ}\t{alert.state}\t{alert.severity}\t"
                f"{alert.rule}\t{alert.canteen_id}\t{alert.message}"
            )
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
    return _change(args, lambda store, now: store.acknowledge(args.alert_id, args.by, args.note, now))


def _resolve(args: argparse.Namespace) -> int:
    return _change(args, lambda store, now: store.resolve(args.alert_id, args.by, args.why, now))


def _change(args: argparse.Namespace, change: Callable[[RulesStore, dt.datetime], Alert]) -> int:
    """Apply an operator's change and print the alert's new state; an alert not in a state that allows it
    is an answer, not a failure (exit 1)."""
    with _store(args) as store:
        try:
            print(change(store, SystemClock().now()).state)
        except AlertError as exc:
            return answer_no(str(exc))
    return 0
