"""``shian run`` and ``shian demo``: the platform, with simulated devices for the demo."""

from __future__ import annotations

import argparse
import asyncio
import signal

import structlog

from runtime.logs import configure_logging
from shian.commands.common import Commands, add_common, settings_from


def add(commands: Commands) -> None:
    run = commands.add_parser(
        "run",
        help="run the platform: broker (managed unless mqtt.host is set), gateway, storage and rules",
        description="Run the gateway, the storage drain and the rules engine against the configured broker. With "
        "no mqtt.host configured, start a managed Mosquitto on loopback first and stop it on exit. The first "
        "Ctrl-C (or SIGTERM) drains the gateway and stops everything; a second one does not wait for the drain.",
    )
    add_common(run)
    run.add_argument("--duration", type=float, metavar="SECONDS", help="stop by itself after this long")
    run.set_defaults(handler=_run)

    demo = commands.add_parser(
        "demo",
        help="run the platform with simulated devices of one canteen, one of them buggy",
        description="Everything 'run' does, plus simulated devices of the registry's first canteen: a detector, "
        "a sample cabinet and cameras, one of which sends malformed messages so that the dead-letter path shows. "
        "Dead letters and alerts are logged as they arrive. Stop with Ctrl-C.",
    )
    add_common(demo)
    demo.add_argument("--duration", type=float, metavar="SECONDS", help="stop by itself after this long")
    demo.set_defaults(handler=_demo)


def _run(args: argparse.Namespace) -> int:
    return _serve(args, demo=False)


def _demo(args: argparse.Namespace) -> int:
    return _serve(args, demo=True)


def _serve(args: argparse.Namespace, *, demo: bool) -> int:
    from simulators.demo import demo_devices
    from wiring.platform import run_platform

    settings = settings_from(args)
    configure_logging(settings.log_format, settings.log_level)

    async def main() -> None:
        task = asyncio.current_task()
        assert task is not None
        stop = asyncio.Event()

        def on_signal() -> None:
            if stop.is_set():  # the second Ctrl-C: do not wait for the drain
                task.cancel()
            stop.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(sig, on_signal)
        await run_platform(settings, devices=demo_devices if demo else None, duration_s=args.duration, stop=stop)

    try:
        asyncio.run(main())
    except (KeyboardInterrupt, asyncio.CancelledError):
        structlog.get_logger("shian").info("shian.stopped")
    return 0
