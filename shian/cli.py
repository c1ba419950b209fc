"""The ``shian`` command: the parser and the dispatch; each command group lives in ``shian/commands/``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from runtime.errors import ShianError
from shian.commands import COMMANDS

DESCRIPTION = """\
Shian (食安): supervision of school-canteen food safety over MQTT.

Devices (rapid-test detectors, sample-retention cabinets, bright-kitchen cameras) publish to an MQTT broker;
the gateway validates every message and dead-letters what is bad, with the reason; storage keeps the time
series; the rules engine raises alerts to supervisors.

Configuration comes from a TOML file (--config or $SHIAN_CONFIG) and SHIAN_* environment variables
(nested keys with '__', e.g. SHIAN_MQTT__HOST=broker.local); command-line flags win over both.
"""

EPILOG = """\
examples:
  shian demo                      managed broker + platform + simulated devices of one canteen
  shian demo --duration 20        the same, stopping by itself after 20 seconds
  shian run --config shian.toml   the platform alone, against the configured broker
  shian registry check city.yaml  validate a canteen registry, naming file and line of every problem
  shian deadletter list --pending what the gateway refused and has not replayed
  shian query tests               rapid tests per canteen today, with pass rate (local store)
  shian alerts list --state open  the alerts supervisors have not handled yet
  shian console token issue city-jincheng   a bearer token for the console's REST API
  shian trace batch B2026112501   every canteen that tested that batch, and what was done with it
  shian deadletter replay --reason unknown_device   after adding the devices to the registry

exit status: 0 done; 1 the answer is no (problems found, no such alert, an expectation failed);
2 the command could not run (bad configuration or file, unreachable server, bad flags).
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shian", description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.handler(args)
    except ShianError as exc:
        print(f"shian: {exc}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
