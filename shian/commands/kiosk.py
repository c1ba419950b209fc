"""``shian kiosk token|list|revoke``: the tokens in the URLs of a canteen's kiosk and its parents' page."""

from __future__ import annotations

import argparse
import sys

from shian.commands.common import CommandError, Commands, add_common, settings_from
from shian.commands.console import open_store


def add(commands: Commands) -> None:
    kiosk = commands.add_parser(
        "kiosk",
        help="tokens for a canteen's door display (kiosk) and its parents' daily page",
        description="The kiosk at a canteen's test-room door and the parents' daily page need no login: each "
        "canteen gets a token in the URL, which opens that canteen's page of that kind and nothing else. "
        "Only the token's SHA-256 is kept ({data_dir}/console.sqlite); a revoked token opens nothing from the "
        "next request on. docs/public.md says what these pages show.",
    )
    actions = kiosk.add_subparsers(dest="kiosk_command", required=True, metavar="ACTION")
    token = actions.add_parser(
        "token",
        help="issue a token for a canteen and print its URL (once)",
        description="Print the URL with a new token on stdout: the kiosk's (/kiosk/CANTEEN), or with --public "
        "the parents' daily page (/p/CANTEEN/today). The address is [web] public_url, else bind and port.",
    )
    add_common(token)
    token.add_argument("canteen", help="the canteen's id in the registry")
    token.add_argument("--public", action="store_true", help="a token of the parents' page instead of the kiosk")
    token.set_defaults(handler=_token)
    listing = actions.add_parser("list", help="every token: id, canteen, kind, issued, revoked")
    add_common(listing)
    listing.set_defaults(handler=_list)
    revoke = actions.add_parser("revoke", help="revoke a token by its id (from 'list')")
    add_common(revoke)
    revoke.add_argument("token_id")
    revoke.set_defaults(handler=_revoke)


def _token(args: argparse.Namespace) -> int:
    from console.store import PublicPurpose
    from devices.registry import load_registry
    from runtime.clock import SystemClock

    settings = settings_from(args)
    if load_registry(settings.registry).canteen(args.canteen) is None:
        raise CommandError(f"no canteen {args.canteen!r} in the registry {settings.registry}")
    purpose: PublicPurpose = "public" if args.public else "kiosk"
    store = open_store(args)
    token_id, token = store.issue_public_token(args.canteen, purpose, SystemClock().now())
    web = settings.web
    base = (web.public_url or f"http://{web.bind}:{web.port}").rstrip("/")
    path = f"/p/{args.canteen}/today" if args.public else f"/kiosk/{args.canteen}"
    print(f"{base}{path}?t={token}")
    print(f"{purpose} token {token_id} for {args.canteen}: shown once", file=sys.stderr)
    return 0


def _list(args: argparse.Namespace) -> int:
    for token_id, canteen, purpose, created, revoked in open_store(args).public_tokens():
        print(f"{token_id}  {canteen}  {purpose}  {created}  {'revoked ' + revoked if revoked else 'active'}")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    from runtime.clock import SystemClock

    open_store(args).revoke_public_token(args.token_id, SystemClock().now())
    print(f"revoked {args.token_id}", file=sys.stderr)
    return 0
