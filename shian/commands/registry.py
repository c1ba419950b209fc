"""``shian registry check``: validate canteen registry files, naming the file and line of every problem."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from shian.commands.common import Commands


def add(commands: Commands) -> None:
    registry = commands.add_parser("registry", help="work with canteen registry files")
    actions = registry.add_subparsers(dest="registry_command", required=True, metavar="ACTION")
    check = actions.add_parser(
        "check",
        help="validate registry files",
        description="Validate registry files; exit 1 naming the file and line of every problem.",
    )
    check.add_argument("files", nargs="+", type=Path, metavar="FILE")
    check.set_defaults(handler=_check)


def _check(args: argparse.Namespace) -> int:
    from devices.registry import RegistryError, load_registry

    failed = False
    for path in args.files:
        try:
            registry = load_registry(path)
        except RegistryError as exc:
            failed = True
            print(exc, file=sys.stderr)
        else:
            devices = sum(len(c.devices) for c in registry.canteens)
            print(f"{path}: ok, {len(registry.canteens)} canteens, {devices} devices")
    return 1 if failed else 0
