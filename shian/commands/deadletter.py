"""``shian deadletter list|show|replay``: what the gateway refused, kept in its spool with the reason."""

from __future__ import annotations

import argparse
import base64
import json
from typing import TYPE_CHECKING

from shian.commands.common import Commands, add_common, answer_no, existing_spool, settings_from

if TYPE_CHECKING:
    from spool import StoredDeadLetter


def add(commands: Commands) -> None:
    deadletter = commands.add_parser(
        "deadletter",
        help="inspect and replay the dead letters kept in the gateway's spool",
        description="Every message the gateway refused is kept in its spool with the reason, the topic, the "
        "client id and the raw payload. List and show them; after fixing the registry, replay them.",
    )
    actions = deadletter.add_subparsers(dest="deadletter_command", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="one line per dead letter, oldest first")
    add_common(listing)
    listing.add_argument("--reason", help="only this reason (e.g. wrong_canteen)")
    listing.add_argument("--pending", action="store_true", help="only letters not yet replayed successfully")
    listing.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    listing.set_defaults(handler=_list)
    show = actions.add_parser("show", help="one dead letter in full, payload included")
    add_common(show)
    show.add_argument("id", type=int)
    show.set_defaults(handler=_show)
    again = actions.add_parser(
        "replay",
        help="validate dead letters again with the current registry; store the ones that now pass",
        description="Validate dead letters again with the current registry. Those that pass are stored "
        "(deduplicated, with their original arrival time) and closed; the others stay, with a note.",
    )
    add_common(again)
    which = again.add_mutually_exclusive_group(required=True)
    which.add_argument("ids", type=int, nargs="*", default=[], metavar="ID", help="these letters")
    which.add_argument("--reason", help="every pending letter with this reason")
    which.add_argument("--all", action="store_true", help="every pending letter")
    again.set_defaults(handler=_replay)


def _list(args: argparse.Namespace) -> int:
    from spool import Spool

    spool = Spool(existing_spool(settings_from(args)))
    for letter in spool.dead_letters(reason=args.reason, pending_only=args.pending, limit=args.limit):
        state = "replayed" if letter.replayed_at else "pending"
        print(
            f"{letter.id}\t{letter.received_at:%Y-%m-%dT%H:%M:%SZ}\t{letter.reason}\t{letter.client_id or '-'}"
            f"\t{state}\t{letter.topic}\t{letter.detail[:120]}"
        )
    return 0


def _show(args: argparse.Namespace) -> int:
    from spool import Spool

    path = existing_spool(settings_from(args))
    found = Spool(path).dead_letters(ids=[args.id], limit=1)
    if not found:
        return answer_no(f"no dead letter {args.id} in {path}")
    print(json.dumps(_document(found[0]), ensure_ascii=False, indent=2))
    return 0


def _document(letter: StoredDeadLetter) -> dict[str, object]:
    try:
        payload: object = letter.payload.decode("utf-8")
    except UnicodeDecodeError:
        payload = None
    return {
        "id": letter.id,
        "reason": letter.reason,
        "detail": letter.detail,
        "topic": letter.topic,
        "client_id": letter.client_id,
        "received_at": letter.received_at.isoformat(),
        "replayed_at": letter.replayed_at.isoformat() if letter.replayed_at else None,
        "replay_note": letter.replay_note,
        "payload": payload,
        "payload_b64": base64.b64encode(letter.payload).decode("ascii"),
    }


def _replay(args: argparse.Namespace) -> int:
    from devices.registry import load_registry
    from gateway.replay import replay
    from runtime.clock import SystemClock
    from wiring.build import build_gateway

    settings = settings_from(args)
    existing_spool(settings)
    registry = load_registry(settings.registry)
    clock = SystemClock()
    gateway = build_gateway(settings, registry, clock)
    spool = gateway.spool
    letters = spool.dead_letters(ids=args.ids, reason=args.reason, pending_only=not args.ids, limit=1_000_000)
    results = replay(spool, registry, letters, clock.now(), gateway.skew)
    for result in results:
        print(f"{result.letter.id}\t{result.note}")
    stored = sum(1 for r in results if r.outcome is not None)
    print(f"{len(results)} replayed: {stored} stored or duplicate, {len(results) - stored} refused again")
    return 0
