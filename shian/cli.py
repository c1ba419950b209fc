"""The ``shian`` command."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

import structlog

from shian.config import ConfigError, Settings, load_settings
from shian.logs import configure_logging
from shian.process import ServerError

DESCRIPTION = """\
Shian (食安): supervision of school-canteen food safety over MQTT.

Devices (rapid-test detectors, sample-retention cabinets, bright-kitchen cameras) publish to an MQTT broker;
the gateway validates every message and dead-letters what is bad, with the reason.

Configuration comes from a TOML file (--config or $SHIAN_CONFIG) and SHIAN_* environment variables
(nested keys with '__', e.g. SHIAN_MQTT__HOST=broker.local); command-line flags win over both.
"""

EPILOG = """\
examples:
  shian demo                      managed broker + gateway + simulated devices of one canteen
  shian demo --duration 20        the same, stopping by itself after 20 seconds
  shian run --config shian.toml   the platform alone, against the configured broker
  shian registry check city.yaml  validate a canteen registry, naming file and line of every problem
"""


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, metavar="FILE", help="TOML configuration file (default: $SHIAN_CONFIG)")
    parser.add_argument("--registry", type=Path, metavar="FILE", help="canteen registry YAML (default: bundled demo)")
    parser.add_argument("--data-dir", type=Path, metavar="DIR", help="where the managed broker keeps its files")
    parser.add_argument(
        "--log-format", choices=["auto", "console", "json"], help="auto: console on a terminal, JSON otherwise"
    )
    parser.add_argument("--log-level", choices=["debug", "info", "warning", "error"])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shian", description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run",
        help="run the platform: broker (managed unless mqtt.host is set) and gateway",
        description="Run the gateway against the configured broker. With no mqtt.host configured, start a "
        "managed Mosquitto on loopback first and stop it on exit. Stop with Ctrl-C.",
    )
    _common(run)
    run.add_argument("--duration", type=float, metavar="SECONDS", help="stop by itself after this long")

    demo = commands.add_parser(
        "demo",
        help="run the platform with simulated devices of one canteen, one of them buggy",
        description="Everything 'run' does, plus simulated devices of the registry's first canteen: a detector, "
        "a sample cabinet and cameras, one of which sends malformed messages so that the dead-letter path shows. "
        "Stop with Ctrl-C.",
    )
    _common(demo)
    demo.add_argument("--duration", type=float, metavar="SECONDS", help="stop by itself after this long")

    registry = commands.add_parser("registry", help="work with canteen registry files")
    registry_commands = registry.add_subparsers(dest="registry_command", required=True, metavar="ACTION")
    check = registry_commands.add_parser(
        "check",
        help="validate registry files",
        description="Validate registry files; exit 1 naming the file and line of every problem.",
    )
    check.add_argument("files", nargs="+", type=Path, metavar="FILE")

    broker = commands.add_parser("broker", help="Mosquitto configuration")
    broker_commands = broker.add_subparsers(dest="broker_command", required=True, metavar="ACTION")
    config = broker_commands.add_parser(
        "config",
        help="print the Mosquitto configuration the managed broker uses",
        description="Print the generated Mosquitto configuration (development listener on loopback).",
    )
    config.add_argument("--port", type=int, default=1883)
    config.add_argument("--persistence-dir", type=Path, default=Path("/var/lib/mosquitto"))
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(
        args.config,
        registry=args.registry,
        data_dir=args.data_dir,
        log_format=args.log_format,
        log_level=args.log_level,
    )


def _run(args: argparse.Namespace, *, demo: bool) -> int:
    from shian.app import run_platform

    settings = _settings(args)
    configure_logging(settings.log_format, settings.log_level)

    async def main() -> None:
        task = asyncio.current_task()
        assert task is not None
        stop = asyncio.Event()

        def on_signal() -> None:
            # The first Ctrl-C or SIGTERM drains the gateway and stops everything, broker included;
            # a second one does not wait for the drain.
            if stop.is_set():
                task.cancel()
            stop.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(sig, on_signal)
        await run_platform(settings, demo=demo, duration_s=args.duration, stop=stop)

    try:
        asyncio.run(main())
    except (KeyboardInterrupt, asyncio.CancelledError):
        structlog.get_logger("shian").info("shian.stopped")
    return 0


def _registry_check(args: argparse.Namespace) -> int:
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


def _broker_config(args: argparse.Namespace) -> int:
    from broker_config.mosquitto_conf import MosquittoConfig

    print(MosquittoConfig(port=args.port, persistence_dir=args.persistence_dir).render(), end="")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command in ("run", "demo"):
            return _run(args, demo=args.command == "demo")
        if args.command == "registry":
            return _registry_check(args)
        return _broker_config(args)
    except (ConfigError, ServerError) as exc:
        print(f"shian: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
