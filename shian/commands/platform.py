"""``shian run`` and ``shian demo``: the platform, with simulated devices for the demo."""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import signal
import threading

from shian.commands.common import Commands, add_common, settings_from

#: After SIGTERM (or Ctrl-C) the process is gone within this many seconds, whatever the broker, InfluxDB or the
#: console's clients are doing: past it, it ends its managed broker and exits without the rest of its orderly
#: stop. Nothing accepted is lost that way: deliveries are acknowledged only once committed to the spool, and
#: storage and rules resume from their checkpoints in it.
STOP_BOUND_S = 10.0

#: (command, short help, description, whether simulated devices run too)
_COMMANDS = (
    (
        "run",
        "run the platform: broker (managed unless mqtt.host is set), gateway, storage and rules",
        "Run the gateway, the storage drain and the rules engine against the configured broker. With no "
        "mqtt.host configured, start a managed Mosquitto on loopback first and stop it on exit; with [video] "
        "mode = 'managed', the live kitchen's media server (nginx-rtmp) too (docs/video.md). The first "
        "Ctrl-C (or SIGTERM) drains the gateway and stops everything, within 10 seconds whatever the broker, "
        "InfluxDB or the console's clients do; a second one does not wait for the drain.",
        False,
    ),
    (
        "demo",
        "run the platform with simulated devices of one canteen, one of them buggy",
        "Everything 'run' does, plus simulated devices of the registry's first canteen: a detector, a sample "
        "cabinet and cameras, one of which sends malformed messages so that the dead-letter path shows; the "
        "cameras stream a generated picture to a managed media server, which the parents' page plays (unless "
        "[video] is configured otherwise). Dead letters and alerts are logged as they arrive. Stop with Ctrl-C.",
        True,
    ),
)


def add(commands: Commands) -> None:
    for name, summary, description, demo in _COMMANDS:
        parser = commands.add_parser(name, help=summary, description=description)
        add_common(parser)
        parser.add_argument("--duration", type=float, metavar="SECONDS", help="stop by itself after this long")
        parser.set_defaults(handler=functools.partial(_serve, demo=demo))


def _serve(args: argparse.Namespace, *, demo: bool) -> int:
    import structlog

    from runtime.logs import configure_logging
    from simulators.demo import demo_devices
    from wiring.platform import run_platform

    settings = settings_from(args)
    if demo and not settings.video.model_fields_set:
        # the demo shows the live kitchen unless [video] says otherwise
        settings = settings.model_copy(update={"video": settings.video.model_copy(update={"mode": "managed"})})
    configure_logging(settings.log_format, settings.log_level)

    async def main() -> None:
        task = asyncio.current_task()
        assert task is not None
        stop = asyncio.Event()

        def on_signal() -> None:
            if stop.is_set():  # the second Ctrl-C: do not wait for the drain
                task.cancel()
            else:
                _arm_stop_bound(STOP_BOUND_S)
            stop.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(sig, on_signal)
        await run_platform(settings, devices=demo_devices if demo else None, duration_s=args.duration, stop=stop)

    try:
        asyncio.run(main())
    except (KeyboardInterrupt, asyncio.CancelledError):
        structlog.get_logger("shian").info("shian.stopped")
    return 0


def _arm_stop_bound(bound_s: float) -> None:
    """A timer that ends the process ``bound_s`` from now if its orderly stop has not: a write to an InfluxDB
    that never answers, a backoff, a console client that holds on must not keep a stopping platform up."""
    import structlog

    def overdue() -> None:
        from runtime.process import stop_all_managed

        structlog.get_logger("shian").warning(
            "shian.stop_forced",
            bound_s=bound_s,
            meaning="the orderly stop took too long; the spool keeps everything acknowledged, and storage and rules "
            "resume from their checkpoints at the next start",
        )
        log = structlog.get_logger("shian")
        for name in stop_all_managed(timeout=1.0):
            log.info("broker.stopped" if name == "mosquitto" else f"{name}.stopped", forced=True)
        os._exit(0)

    timer = threading.Timer(bound_s, overdue)
    timer.daemon = True
    timer.start()
