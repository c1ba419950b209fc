"""``shian storage rejects list|show|replay``: records the time-series store refused for good, set aside so the
rest could go on, and drained again once the cause is fixed."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from shian.commands.common import Commands, add_common, answer_no, existing_spool, settings_from

if TYPE_CHECKING:
    from spool import DownstreamReject, Spool
    from wiring.settings import Settings


def add(commands: Commands) -> None:
    storage = commands.add_parser(
        "storage",
        help="records the time-series store refused: list, show, replay",
        description="When InfluxDB refuses a record for good (a field type conflict, a line it cannot parse), the "
        "storage drain sets it aside in the spool with the server's message and goes on. Once the cause is fixed, "
        "replay writes those records again; each reject is closed once the store takes it, so a replay happens "
        "exactly once. A set-aside record stays in the spool until then.",
    )
    groups = storage.add_subparsers(dest="storage_command", required=True, metavar="GROUP")
    rejects = groups.add_parser("rejects", help="records the store refused").add_subparsers(
        dest="rejects_command", required=True, metavar="ACTION"
    )
    listing = rejects.add_parser("list", help="one line per reject, oldest first")
    add_common(listing)
    listing.add_argument("--pending", action="store_true", help="only those not replayed yet")
    listing.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    listing.set_defaults(handler=_list)
    show = rejects.add_parser("show", help="one reject in full, with its record")
    add_common(show)
    show.add_argument("id", type=int)
    show.set_defaults(handler=_show)
    again = rejects.add_parser("replay", help="write set-aside records again with the configured store")
    add_common(again)
    which = again.add_mutually_exclusive_group(required=True)
    which.add_argument("ids", type=int, nargs="*", default=[], metavar="ID", help="these rejects")
    which.add_argument("--all", action="store_true", help="every pending reject")
    again.set_defaults(handler=_replay)


def _spool(settings: Settings) -> Spool:
    from spool import Spool

    return Spool(existing_spool(settings))


def _list(args: argparse.Namespace) -> int:
    from storage.drain import CONSUMER

    spool = _spool(settings_from(args))
    for reject in spool.downstream_rejects(CONSUMER, pending_only=args.pending, limit=args.limit):
        state = "replayed" if reject.replayed_at else "pending"
        print(f"{reject.id}\t{reject.at.isoformat()}\trecord {reject.seq}\t{state}\t{reject.detail[:120]}")
    return 0


def _show(args: argparse.Namespace) -> int:
    from storage.drain import CONSUMER

    spool = _spool(settings_from(args))
    found = spool.downstream_rejects(CONSUMER, ids=[args.id], limit=1)
    if not found:
        return answer_no(f"no storage reject {args.id}")
    print(json.dumps(_document(found[0], spool), ensure_ascii=False, indent=2))
    return 0


def _document(reject: DownstreamReject, spool: Spool) -> dict[str, object]:
    record = spool.record(reject.seq)
    return {
        "id": reject.id,
        "record": reject.seq,
        "detail": reject.detail,
        "line_protocol": reject.item,
        "at": reject.at.isoformat(),
        "replayed_at": reject.replayed_at.isoformat() if reject.replayed_at else None,
        "replay_note": reject.replay_note,
        "device": record.device_id if record else None,
        "msg_id": record.msg_id if record else None,
        "payload": record.payload.decode("utf-8", "replace") if record else None,
    }


def _replay(args: argparse.Namespace) -> int:
    from devices.registry import load_registry
    from rules.config import load_rules
    from runtime.clock import SystemClock
    from storage.drain import CONSUMER
    from storage.replay import replay_rejects
    from wiring.build import build_writer, judge_for

    settings = settings_from(args)
    spool = _spool(settings)
    rejects = spool.downstream_rejects(CONSUMER, ids=args.ids, pending_only=not args.ids, limit=1_000_000)
    writer = build_writer(settings)
    registry = load_registry(settings.registry)
    judge = judge_for(load_rules(settings.rules.file, registry.region), registry)  # the verdict as the drain stores it
    try:
        results = replay_rejects(spool, registry, writer, rejects, SystemClock().now(), judge=judge)
    finally:
        writer.close()
    for result in results:
        print(f"{result.reject.id}\t{result.note}")
    through = sum(result.through for result in results)
    print(f"{len(results)} replayed: {through} written, {len(results) - through} not")
    return 0 if through == len(results) else 1
