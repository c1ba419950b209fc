"""``shian scenario run``: situations scripted in YAML, and the alerts they must (and must not) raise."""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from shian.commands.common import Commands, add_common, settings_from

if TYPE_CHECKING:
    from simulators.scenario import ScenarioResult


def add(commands: Commands) -> None:
    scenario = commands.add_parser(
        "scenario",
        help="run scenario files: situations and the alerts they must (not) raise",
        description="A scenario (YAML) scripts one canteen's devices on a simulated day and lists the alerts it must "
        "and must not raise. The run goes through a real broker (managed unless mqtt.host is set), the gateway and "
        "the rules engine; the simulated clock jumps from step to step. Shipped scenarios: simulators/scenarios/.",
    )
    actions = scenario.add_subparsers(dest="scenario_command", required=True, metavar="ACTION")
    run = actions.add_parser(
        "run",
        help="run scenarios; exit 1 if any expectation fails",
        description="Run scenario files, each in its own canteen on one broker. The platform's files go to a "
        "temporary directory, or under --data-dir when it is given (kept, for a look afterwards).",
    )
    add_common(run, registry=None)  # every scenario makes its own canteen
    run.add_argument("files", nargs="+", type=Path, metavar="FILE")
    run.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from runtime.logs import configure_logging
    from simulators.scenario import load_scenario, run_scenarios
    from wiring.broker import broker_for

    settings = settings_from(args)
    for path in args.files:
        load_scenario(path)  # every file is valid before anything runs
    configure_logging(settings.log_format, "error")  # the results are the output; alerts are expected here

    async def main(workdir: Path) -> list[ScenarioResult]:
        async with broker_for(settings.model_copy(update={"data_dir": workdir})) as address:
            return await run_scenarios(list(args.files), address.host, address.port, workdir)

    if args.data_dir is not None:
        args.data_dir.mkdir(parents=True, exist_ok=True)
        results = asyncio.run(main(args.data_dir))
    else:
        with tempfile.TemporaryDirectory() as work:
            results = asyncio.run(main(Path(work)))
    failures = 0
    for result in results:
        print(f"{'PASS' if result.ok else 'FAIL'}  {result.scenario}")
        for line in result.passed:
            print(f"      ok    {line}")
        for line in result.failed:
            print(f"      FAIL  {line}")
        failures += not result.ok
    print(f"{len(args.files) - failures} passed, {failures} failed")
    return 1 if failures else 0
