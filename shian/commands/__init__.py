"""One module per command group, each with ``add(commands)``, which adds its parsers and sets the ``handler``
that :func:`shian.cli.main` calls. :data:`COMMANDS` is the table, in the order ``shian --help`` lists them."""

from types import ModuleType

from shian.commands import (
    alerts,
    broker,
    conformance,
    console,
    contract,
    dashboards,
    deadletter,
    inspect,
    kiosk,
    platform,
    query,
    registry,
    report,
    scenario,
    simulate,
    storage,
    trace,
)

COMMANDS: tuple[ModuleType, ...] = (
    platform,
    registry,
    deadletter,
    storage,
    query,
    broker,
    dashboards,
    contract,
    conformance,
    alerts,
    console,
    kiosk,
    scenario,
    simulate,
    trace,
    inspect,
    report,
)
