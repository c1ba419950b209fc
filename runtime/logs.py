"""structlog set-up, called once by the command-line entry point; library modules only get loggers."""

from __future__ import annotations

import logging
import sys
from collections.abc import Collection
from typing import Literal, TextIO

import structlog

LogFormat = Literal["auto", "console", "json"]


class _CurrentStderr:
    """Whatever ``sys.stderr`` is when a line is written, not when logging was set up (pytest swaps it)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        return sys.stderr.isatty()


def configure_logging(
    fmt: LogFormat = "auto", level: str = "info", stream: TextIO | None = None, *, mute: Collection[str] = ()
) -> None:
    """Console rendering on a terminal, one JSON object per line otherwise (or as ``fmt`` forces). ``mute``:
    events never written (a month of history would bury its progress under each alert's line)."""
    out: TextIO = stream or _CurrentStderr()  # type: ignore[assignment]
    as_json = fmt == "json" or (fmt == "auto" and not out.isatty())
    numeric_level = logging.getLevelNamesMapping()[level.upper()]
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if as_json
        else structlog.dev.ConsoleRenderer(colors=out.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            *([_Mute(frozenset(mute))] if mute else []),
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info if as_json else structlog.dev.set_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=True,
    )
    # paho and aiomqtt log through the standard library; keep their warnings, in the same stream.
    logging.basicConfig(level=max(numeric_level, logging.WARNING), stream=out, format="%(name)s: %(message)s")


class _Mute:
    def __init__(self, events: frozenset[str]) -> None:
        self.events = events

    def __call__(self, logger: object, name: str, event: structlog.typing.EventDict) -> structlog.typing.EventDict:
        if event.get("event") in self.events:
            raise structlog.DropEvent
        return event
