"""The fleet over processes of its own, on the platform's one simulated clock.

In the platform's process the devices wake when the platform's event loop lets them: a group commit or a rules
tick of a few hundred milliseconds makes a whole city late, and the pacer slows the clock for it. Here each
process runs whole canteens' devices on its own loop (simulators/fleet.py, one connection each) and follows the
clock of the process that paces it: the pacing process sends the clock's state whenever it changes (the state
gives the same time in every process, since the monotonic clock is the machine's), and each fleet process sends
back, four times a second, how late its devices woke and its counters.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import signal
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import structlog

from devices.registry import Registry
from runtime.logs import LogFormat, configure_logging
from simulators.behaviour import Behaviour, FleetStats, OutboxTotals
from simulators.fleet import fleet_devices, run_devices, start_and_pace
from simulators.pacer import Pacer
from simulators.simclock import ClockState, SimClock
from simulators.ticker import Ticker

log = structlog.get_logger("shian.fleet")

REPORT_EVERY_S = 0.25
#: How often the pacing process looks whether the clock changed (the pacer changes it once a second).
CLOCK_EVERY_S = 0.05
#: A fleet process that has not finished this long after being told to stop is killed.
STOP_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class WorkerPlan:
    """What one fleet process runs: these canteens of the registry, against this broker."""

    number: int
    registry: dict[str, Any]  # the registry's data: the process validates it itself
    canteens: tuple[str, ...]
    host: str
    port: int
    passwords: dict[str, str]
    tls_ca: Path | None
    behaviour: Behaviour
    clock: ClockState
    log_format: LogFormat
    log_level: str
    connects_per_s: float


@dataclass(frozen=True)
class Command:
    """From the pacing process: the clock, whether to make new records, and whether to stop."""

    clock: ClockState
    producing: bool
    stop: bool = False


@dataclass(frozen=True)
class Report:
    """From a fleet process: how late its devices woke since its last report, its counters, new records."""

    number: int
    lateness: list[float]
    published: int
    online: int
    disconnects: int
    receipts: int
    outboxes: OutboxTotals
    produced: list[str] = field(default_factory=list)
    failed_tests: list[tuple[str, str]] = field(default_factory=list)
    final: bool = False


def split(registry: Registry, processes: int) -> list[tuple[str, ...]]:
    """Whole canteens per process, dealt by device count so each carries about as many connections."""
    shares: list[list[str]] = [[] for _ in range(processes)]
    loads = [0] * processes
    for canteen in sorted(registry.canteens, key=lambda c: -len(c.devices)):
        least = loads.index(min(loads))
        shares[least].append(canteen.id)
        loads[least] += len(canteen.devices)
    return [tuple(share) for share in shares if share]


async def run_fleet_processes(
    registry: Registry,
    clock: SimClock,
    *,
    processes: int,
    host: str,
    port: int,
    stop: asyncio.Event,
    stats: FleetStats,
    behaviour: Behaviour | None = None,
    passwords: dict[str, str] | None = None,
    tls_ca: Path | None = None,
    connect_timeout_s: float = 120.0,
    connects_per_s: float = 500.0,
    log_format: LogFormat = "json",
    log_level: str = "info",
) -> None:
    """Every device of ``registry`` on a connection of its own, over ``processes`` processes, until ``stop``; the
    clock held until they are all online, then paced as one fleet's (simulators/fleet.py, :func:`run_fleet`).
    Raises if a fleet process dies on its own."""
    pacer = Pacer(clock, clock.speed)
    stats.pacer = pacer
    data = registry.model_dump(mode="json")
    plans = [
        WorkerPlan(
            n,
            data,
            canteens,
            host,
            port,
            _passwords_of(registry, canteens, passwords or {}),
            tls_ca,
            behaviour or Behaviour(),
            clock.state,
            log_format,
            log_level,
            connects_per_s / processes,
        )
        for n, canteens in enumerate(split(registry, processes))
    ]
    devices = sum(1 for c in registry.canteens for d in c.devices if not d.revoked)
    fleet = _Workers(plans, stats, pacer)
    fleet.start()
    pacing = asyncio.ensure_future(start_and_pace(pacer, stats, devices, stop, timeout_s=connect_timeout_s))
    try:
        await fleet.follow(stop)
    finally:
        pacing.cancel()
        await fleet.stop()


def _passwords_of(registry: Registry, canteens: tuple[str, ...], passwords: dict[str, str]) -> dict[str, str]:
    """Only the passwords of a process's own devices go to it."""
    ours = set(canteens)
    return {d.id: passwords[d.id] for c in registry.canteens if c.id in ours for d in c.devices if d.id in passwords}


class _Workers:
    """The fleet processes, seen from the pacing process."""

    def __init__(self, plans: list[WorkerPlan], stats: FleetStats, pacer: Pacer) -> None:
        self.plans, self.stats, self.pacer = plans, stats, pacer
        self.processes: dict[int, multiprocessing.process.BaseProcess] = {}
        self.pipes: dict[int, Connection] = {}
        self.latest: dict[int, Report] = {}
        self.finished: set[int] = set()
        self.died: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.stopping = False
        self.all_finished = asyncio.Event()

    def start(self) -> None:
        context, loop = multiprocessing.get_context("spawn"), asyncio.get_running_loop()
        for plan in self.plans:
            ours, theirs = context.Pipe()
            process = context.Process(target=work, args=(plan, theirs), name=f"shian-fleet-{plan.number}", daemon=True)
            process.start()
            theirs.close()
            self.processes[plan.number], self.pipes[plan.number] = process, ours
            loop.add_reader(ours.fileno(), self._read, plan.number)
        log.info("fleet.processes", processes=len(self.plans), pids=[p.pid for p in self.processes.values()])

    def _read(self, number: int) -> None:
        pipe = self.pipes[number]
        try:
            while pipe.poll():
                self._absorb(pipe.recv())
        except (EOFError, OSError):
            asyncio.get_running_loop().remove_reader(pipe.fileno())
            self._finished(number)

    def _finished(self, number: int) -> None:
        self.finished.add(number)
        if len(self.finished) == len(self.processes):
            self.all_finished.set()
        if not self.stopping and not self.died.done():
            self.died.set_result(number)

    def _absorb(self, report: Report) -> None:
        stats = self.stats
        self.latest[report.number] = report
        self.pacer.lateness.extend(report.lateness)
        latest = self.latest.values()
        stats.published = sum(r.published for r in latest)
        stats.online = sum(r.online for r in latest)
        stats.disconnects = sum(r.disconnects for r in latest)
        stats.receipts = sum(r.receipts for r in latest)
        stats.remote_outboxes[report.number] = report.outboxes
        stats.produced.update(report.produced)
        stats.failed_tests.update(report.failed_tests)
        if report.final:
            self._finished(report.number)

    async def follow(self, stop: asyncio.Event) -> None:
        """Send the clock to every fleet process whenever it changes, until ``stop``; raise if one dies."""
        sent: Command | None = None
        while not stop.is_set():
            command = Command(self.pacer.clock.state, self.stats.producing)
            if command != sent:
                self._send(command)
                sent = command
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self.died), CLOCK_EVERY_S)
            if self.died.done():
                number = self.died.result()
                process = self.processes[number]
                await asyncio.to_thread(process.join, 5.0)  # its pipe may close before it is reaped
                code = process.exitcode
                raise RuntimeError(f"fleet process {number} exited on its own (exit code {code})")

    def _send(self, command: Command) -> None:
        for number, pipe in self.pipes.items():
            if number not in self.finished:
                with contextlib.suppress(OSError):
                    pipe.send(command)

    async def stop(self) -> None:
        """Tell every fleet process to stop, wait for its last report, and leave no process behind."""
        self.stopping = True
        self._send(Command(self.pacer.clock.state, self.stats.producing, stop=True))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STOP_TIMEOUT_S
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.all_finished.wait(), STOP_TIMEOUT_S)
        for number, process in self.processes.items():
            await asyncio.to_thread(process.join, max(deadline - loop.time(), 0.1))
            if process.is_alive():
                log.warning("fleet.process_killed", process=number, pid=process.pid)
                process.kill()
                await asyncio.to_thread(process.join, 5.0)
            pipe = self.pipes[number]
            with contextlib.suppress(ValueError, OSError):
                loop.remove_reader(pipe.fileno())
            pipe.close()


def work(plan: WorkerPlan, pipe: Connection) -> None:
    """A fleet process: the entry point :func:`run_fleet_processes` spawns. Ctrl-C reaches the whole process
    group: the pacing process decides when this one stops (its devices saying goodbye, not leaving wills)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    configure_logging(plan.log_format, plan.log_level)
    asyncio.run(_work(plan, pipe))


async def _work(plan: WorkerPlan, pipe: Connection) -> None:
    registry = Registry.model_validate(plan.registry).only(plan.canteens)
    clock, stats, lateness = SimClock(plan.clock.sim), FleetStats(), list[float]()
    clock.follow(plan.clock)
    stop, ticker = asyncio.Event(), Ticker(clock, lateness.append)
    devices = fleet_devices(
        registry,
        clock,
        ticker,
        host=plan.host,
        port=plan.port,
        stats=stats,
        behaviour=plan.behaviour,
        passwords=plan.passwords,
        tls_ca=plan.tls_ca,
    )

    def commands() -> None:
        try:
            while pipe.poll():
                command: Command = pipe.recv()
                clock.follow(command.clock)
                stats.producing = command.producing
                if command.stop:
                    stop.set()
        except (EOFError, OSError):  # the pacing process is gone: so is the point of this one
            loop.remove_reader(pipe.fileno())
            stop.set()

    loop = asyncio.get_running_loop()
    loop.add_reader(pipe.fileno(), commands)
    fleet = asyncio.create_task(run_devices(devices, ticker, stop, connects_per_s=plan.connects_per_s))
    reported: set[str] = set()
    failed: set[tuple[str, str]] = set()
    while True:
        await asyncio.wait({fleet}, timeout=REPORT_EVERY_S)
        produced, reported = stats.produced - reported, set(stats.produced)
        new_failures, failed = stats.failed_tests - failed, set(stats.failed_tests)
        report = Report(
            plan.number,
            lateness.copy(),
            stats.published,
            stats.online,
            stats.disconnects,
            stats.receipts,
            stats.outbox_totals(),
            sorted(produced),
            sorted(new_failures),
            final=fleet.done(),
        )
        lateness.clear()
        with contextlib.suppress(OSError):
            pipe.send(report)
        if fleet.done():
            break
    fleet.result()
