"""``shian console token issue|list|revoke``: bearer tokens for the console's REST API (docs/console.md)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from shian.commands.common import CommandError, Commands, add_common, settings_from

if TYPE_CHECKING:
    from console.store import ConsoleStore


def add(commands: Commands) -> None:
    console = commands.add_parser(
        "console",
        help="the supervisors' web console: API tokens",
        description="The web console is served by 'shian run' and 'shian demo' ([web] settings). Its REST API "
        "under /api/v1 takes bearer tokens issued here; a token acts for one registry account (school, "
        "district or city) and sees exactly what that account sees. Only the token's SHA-256 is kept, in "
        "{data_dir}/console.sqlite; a running console honours a revocation at once.",
    )
    tokens = console.add_subparsers(dest="console_command", required=True, metavar="ACTION")
    token = tokens.add_parser("token", help="issue, list and revoke API tokens")
    actions = token.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    issue = actions.add_parser(
        "issue",
        help="issue a token for an account and print it (once)",
        description="Print a new token for ACCOUNT on stdout; it is not shown again. Use it as "
        "'Authorization: Bearer TOKEN'.",
    )
    add_common(issue)
    issue.add_argument("account", help="a school, district or city account of the registry")
    issue.add_argument("--label", default="", help="what the token is for, shown by 'list'")
    issue.set_defaults(handler=_issue)
    listing = actions.add_parser("list", help="every token: id, account, label, issued, revoked")
    add_common(listing)
    listing.set_defaults(handler=_list)
    revoke = actions.add_parser("revoke", help="revoke a token by its id (from 'list')")
    add_common(revoke)
    revoke.add_argument("token_id")
    revoke.set_defaults(handler=_revoke)


def open_store(args: argparse.Namespace) -> ConsoleStore:
    """The console's file of the configured data directory (its tokens)."""
    from console.store import ConsoleStore
    from wiring.console import console_db_path

    return ConsoleStore(console_db_path(settings_from(args)))


def _issue(args: argparse.Namespace) -> int:
    from console.access import viewer_for
    from devices.registry import load_registry
    from runtime.clock import SystemClock

    settings = settings_from(args)
    if viewer_for(load_registry(settings.registry), args.account) is None:
        raise CommandError(
            f"{args.account!r} is not a school, district or city account of the registry {settings.registry}"
        )
    store = open_store(args)
    token_id, token = store.issue_token(args.account, args.label, SystemClock().now())
    print(token)
    print(f"token {token_id} for {args.account}: shown once, keep it secret", file=sys.stderr)
    return 0


def _list(args: argparse.Namespace) -> int:
    for token in open_store(args).tokens():
        state = f"revoked {token.revoked_at}" if token.revoked_at else "active"
        print(f"{token.token_id}  {token.username}  {token.created_at}  {state}  {token.label}")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    from runtime.clock import SystemClock

    open_store(args).revoke_token(args.token_id, SystemClock().now())
    print(f"revoked {args.token_id}", file=sys.stderr)
    return 0
