"""Benchmark: a generated province on one machine, through one platform and then through partitions of it.

    .venv/bin/python -m benchmarks.province [--cities 11] [--partitions 1 2] [--duration 120] [--multiplex 16]

For each partition count: a managed Mosquitto, one ``shian run`` per partition (``gateway.partition = K/N``,
its own data directory, the local store, no console), and ``shian simulate --fleet-only --multiplex M`` driving
every device of the province in real time with the realistic mix, on a clock set to the last 09:55 (whenever
the benchmark runs: deliveries being tested and kitchens open). Every process is sampled from /proc every two
seconds; the platforms' own status lines give what they stored and how far behind their rules engines were.
Printed: messages/s stored, the rules lag (records and seconds, p50 and p99 over the run), and the CPU (share
of one core) and peak memory of each process. The figures are in docs/scaling.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from broker_config.managed import ManagedMosquitto
from simulators.city import generate_province

TICKS_PER_S = os.sysconf("SC_CLK_TCK")


@dataclass
class Usage:
    """CPU seconds and peak resident memory of one process, from /proc."""

    pid: int
    first_cpu: float | None = None
    last_cpu: float = 0.0
    first_at: float = 0.0
    last_at: float = 0.0
    peak_rss_mb: float = 0.0

    def sample(self) -> None:
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
            status = Path(f"/proc/{self.pid}/status").read_text()
        except OSError:
            return  # ended
        cpu = (int(fields[11]) + int(fields[12])) / TICKS_PER_S  # utime + stime
        rss = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")) / 1024
        now = time.monotonic()
        if self.first_cpu is None:
            self.first_cpu, self.first_at = cpu, now
        self.last_cpu, self.last_at = cpu, now
        self.peak_rss_mb = max(self.peak_rss_mb, rss)

    @property
    def cores(self) -> float:
        span = self.last_at - self.first_at
        return (self.last_cpu - (self.first_cpu or 0.0)) / span if span > 0 else 0.0


@dataclass
class Partition:
    number: int
    process: subprocess.Popen[bytes]
    log: Path
    usage: Usage = field(init=False)

    def __post_init__(self) -> None:
        self.usage = Usage(self.process.pid)

    def lines(self, event: str) -> list[dict[str, object]]:
        found = []
        for line in self.log.read_text(encoding="utf-8", errors="replace").splitlines():
            if f'"{event}"' in line:
                try:
                    found.append(json.loads(line))
                except ValueError:
                    continue
        return found


def busy_morning() -> dt.datetime:
    """The last 09:55 in the province (UTC+8) that has passed: the devices' clock whenever the benchmark runs,
    within the day the gateway accepts records from. Deliveries are still being tested (until 10:00) and every
    kitchen is open for lunch (from two hours before it: 09:30-09:50), so every camera streams. On a weekend or
    holiday morning the schools are quiet: run it on a school day's."""
    cst = dt.timezone(dt.timedelta(hours=8))
    now = dt.datetime.now(cst)
    morning = now.replace(hour=9, minute=55, second=0, microsecond=0)
    return morning if morning <= now else morning - dt.timedelta(days=1)


def stamp(line: dict[str, object]) -> float:
    return dt.datetime.fromisoformat(str(line["timestamp"])).timestamp()


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else 0.0


def shian(*args: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, "-m", "shian.cli", *args], env=env, stdout=out, stderr=out)


def wait_for(predicate: object, what: str, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.5)


def run(registry: Path, partitions: int, duration: float, multiplex: int, workdir: Path) -> None:
    broker = ManagedMosquitto(workdir / "broker", persistence=False)
    broker.start()
    base = {
        **os.environ,
        "SHIAN_MQTT__HOST": broker.host,
        "SHIAN_MQTT__PORT": str(broker.port),
        "SHIAN_LOG_FORMAT": "json",
        "SHIAN_WEB__ENABLED": "false",
    }
    platforms: list[Partition] = []
    fleet = None
    try:
        for k in range(1, partitions + 1):
            env = {
                **base,
                "SHIAN_DATA_DIR": str(workdir / f"p{k}"),
                "SHIAN_GATEWAY__CLIENT_ID": f"gw-{k}-of-{partitions}",
            }
            if partitions > 1:
                env["SHIAN_GATEWAY__PARTITION"] = f"{k}/{partitions}"
            log = workdir / f"platform-{k}.log"
            platforms.append(Partition(k, shian("run", "--registry", str(registry), env=env, log=log), log))
        for p in platforms:
            wait_for(lambda p=p: p.lines("gateway.subscribed") or p.process.poll() is not None, "a gateway")
            if p.process.poll() is not None:
                raise SystemExit(f"platform {p.number} ended: see {p.log}")
        fleet_log = workdir / "fleet.log"
        fleet = shian(
            "simulate",
            "--fleet-only",
            "--registry",
            str(registry),
            "--multiplex",
            str(multiplex),
            "--duration",
            str(duration),
            "--start",
            busy_morning().isoformat(),
            env=base,
            log=fleet_log,
        )
        usages = {
            "mosquitto": Usage(broker.process.pid or 0),
            "fleet": Usage(fleet.pid),
            **{f"platform {p.number}": p.usage for p in platforms},
        }
        while fleet.poll() is None:
            for usage in usages.values():
                usage.sample()
            time.sleep(2.0)
        if fleet.returncode != 0:
            raise SystemExit(f"the fleet failed: see {fleet_log}")
        time.sleep(6)  # one more status line from each platform
    finally:
        for p in platforms:
            p.process.send_signal(signal.SIGINT)
        for p in platforms:
            try:
                p.process.wait(60)
            except subprocess.TimeoutExpired:
                p.process.kill()
        broker.stop()
    report(platforms, usages, partitions, duration, workdir)


def report(
    platforms: list[Partition], usages: dict[str, Usage], partitions: int, duration: float, workdir: Path
) -> None:
    print(f"\n== {partitions} partition(s), {duration:.0f} s of the fleet ({workdir}) ==")
    stored_total = 0.0
    for p in platforms:
        gateway = [g for g in p.lines("gateway.stats") if "stored" in g]
        rules = [r for r in p.lines("rules.stats") if "lag_records" in r]
        rates = [
            (float(b["stored"]) - float(a["stored"])) / (stamp(b) - stamp(a))  # type: ignore[arg-type]
            for a, b in itertools.pairwise(gateway)
        ]
        busy = [r for r in rates if r > 0]
        stored_total += sum(busy) / len(busy) if busy else 0.0
        lag_records = [float(r["lag_records"]) for r in rules]  # type: ignore[arg-type]
        lag_s = [float(r["lag_s"]) for r in rules]  # type: ignore[arg-type]
        print(
            f"platform {p.number}: stored {gateway[-1]['stored'] if gateway else 0} records, "
            f"{(sum(busy) / len(busy)) if busy else 0:,.0f} msg/s while the fleet ran; rules lag p50/p99 "
            f"{quantile(lag_records, 0.5):,.0f}/{quantile(lag_records, 0.99):,.0f} records, "
            f"{quantile(lag_s, 0.5):.1f}/{quantile(lag_s, 0.99):.1f} s"
        )
    print(f"all platforms: {stored_total:,.0f} msg/s stored")
    for name, usage in usages.items():
        print(f"{name:>12}: CPU {usage.cores:.2f} cores, peak RSS {usage.peak_rss_mb:,.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cities", type=int, default=11)
    parser.add_argument("--partitions", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--duration", type=float, default=120.0, help="seconds of the fleet per run")
    parser.add_argument("--multiplex", type=int, default=16, help="the fleet's shared connections")
    parser.add_argument("--keep", type=Path, help="keep logs and stores here instead of a temporary directory")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        registry = root / "province.yaml"
        data = generate_province(cities=args.cities)
        registry.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
        devices = sum(len(c["devices"]) for c in data["canteens"])
        print(f"province: {args.cities} cities, {len(data['canteens'])} canteens, {devices} devices")
        for n in args.partitions:
            run(registry, n, args.duration, args.multiplex, root / f"{n}-partitions")


if __name__ == "__main__":
    main()
