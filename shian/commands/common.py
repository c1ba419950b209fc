"""What every command shares: the common flags, the settings they select, and small argument types.

Command modules import only what their parsers need at the top, and the platform's packages inside their
handlers: building the parser then costs no InfluxDB client, SQLite schema or pydantic model, and ``shian
--help`` answers at once."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runtime.errors import ShianError

if TYPE_CHECKING:
    from wiring.settings import Settings

#: What a command module's ``add`` receives: the ``shian`` parser's sub-parsers.
Commands = Any  # argparse's _SubParsersAction is private
Handler = Callable[[argparse.Namespace], int]


#: What --registry means for most commands; the ones it means something else for say so.
REGISTRY_HELP = "canteen registry YAML (default: registry in the configuration, else the bundled demo registry)"


def add_common(parser: argparse.ArgumentParser, *, registry: str | None = REGISTRY_HELP) -> None:
    """--config, --registry, --data-dir and the logging flags: every command that reads the platform's state.
    ``registry``: the help of --registry for this command, or None where a registry means nothing."""
    parser.add_argument("--config", type=Path, metavar="FILE", help="TOML configuration file (default: $SHIAN_CONFIG)")
    if registry is not None:
        parser.add_argument("--registry", type=Path, metavar="FILE", help=registry)
    parser.add_argument(
        "--data-dir", type=Path, metavar="DIR", help="where the managed broker, the spool and the stores keep files"
    )
    parser.add_argument(
        "--log-format", choices=["auto", "console", "json"], help="auto: console on a terminal, JSON otherwise"
    )
    parser.add_argument("--log-level", choices=["debug", "info", "warning", "error"])


def settings_from(args: argparse.Namespace) -> Settings:
    """The configuration file and environment, with the common flags over them."""
    from wiring.settings import load_settings

    return load_settings(
        args.config,
        registry=getattr(args, "registry", None),
        data_dir=args.data_dir,
        log_format=args.log_format,
        log_level=args.log_level,
    )


#: Days a report covers when --from is not given.
PERIOD_DAYS = 30


def add_period(parser: argparse.ArgumentParser) -> None:
    """--from and --to: a range of whole days in the registry's zone (see :func:`period`)."""
    parser.add_argument("--from", dest="start", type=date_argument, help="first day (default: 30 days ago)")
    parser.add_argument("--to", dest="end", type=date_argument, help="last day (default: today)")


def period(args: argparse.Namespace, tz: dt.tzinfo) -> tuple[dt.date, dt.date, dt.datetime, dt.datetime]:
    """The first and last day of --from/--to, and the instants they span (the first's midnight to the midnight
    after the last) in ``tz``."""
    today = dt.datetime.now(tz).date()
    first, last = args.start or today - dt.timedelta(days=PERIOD_DAYS), args.end or today
    return (
        first,
        last,
        dt.datetime.combine(first, dt.time(), tz),
        dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), tz),
    )


def date_argument(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-11-25") from None


class CommandError(ShianError):
    """A command cannot do what it was asked (a store that is not there, flags that do not go together)."""


def answer_no(message: str) -> int:
    """The command ran and the answer is no (nothing by that id, an alert not in that state): exit status 1."""
    print(f"shian: {message}", file=sys.stderr)
    return 1


def existing_spool(settings: Settings) -> Path:
    """The gateway's spool file for these settings; a one-line error when it is not there."""
    from wiring.build import spool_path

    path = spool_path(settings)
    if not path.exists():
        raise CommandError(f"no spool at {path} (is --data-dir or gateway.client_id right?)")
    return path
