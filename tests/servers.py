"""The real InfluxDB 1.x and VictoriaMetrics servers of the test harness, on free loopback ports."""

from __future__ import annotations

import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from runtime.process import ManagedProcess, ServerError, find_program, free_port


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def http_post(url: str, body: bytes, timeout: float = 5.0) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _wait_http(url: str, ok: int, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if http_get(url, timeout=1.0)[0] == ok:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise ServerError(f"{what} did not answer {url} with {ok} within {timeout} s")


class InfluxDB1:
    """``influxd`` 1.x with its own directories and a generated configuration."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.host = "127.0.0.1"
        self.port = free_port()
        self.rpc_port = free_port()
        self.url = f"http://{self.host}:{self.port}"
        config = workdir / "influxdb.conf"
        workdir.mkdir(parents=True, exist_ok=True)
        config.write_text(
            "reporting-disabled = true\n"
            f'bind-address = "{self.host}:{self.rpc_port}"\n'
            f'[meta]\n  dir = "{workdir}/meta"\n'
            f'[data]\n  dir = "{workdir}/data"\n  wal-dir = "{workdir}/wal"\n  query-log-enabled = false\n'
            f'[http]\n  bind-address = "{self.host}:{self.port}"\n  log-enabled = false\n'
            "[monitor]\n  store-enabled = false\n"
            "[continuous_queries]\n  enabled = false\n"
            "[subscriber]\n  enabled = false\n",
            encoding="utf-8",
        )
        binary = find_program("influxd", "influxdb")
        self.process = ManagedProcess(
            "influxd", [binary, "-config", str(config)], self.host, self.port, workdir / "influxd.log"
        )

    def start(self) -> None:
        self.process.start(timeout=30)
        _wait_http(f"{self.url}/ping", 204, "influxd")

    def stop(self) -> None:
        self.process.stop()

    def query(self, q: str, db: str | None = None) -> tuple[int, bytes]:
        params = {"q": q, **({"db": db} if db else {})}
        return http_get(f"{self.url}/query?{urllib.parse.urlencode(params)}")

    def create_database(self, db: str) -> None:
        status, body = http_post(f"{self.url}/query?{urllib.parse.urlencode({'q': f'CREATE DATABASE {db}'})}", b"")
        if status != 200:
            raise ServerError(f"CREATE DATABASE {db} failed: {status} {body!r}")


class VictoriaMetrics:
    """A single-node ``victoria-metrics`` that shows freshly written samples at once."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.host = "127.0.0.1"
        self.port = free_port()
        self.url = f"http://{self.host}:{self.port}"
        binary = find_program("victoria-metrics", "victoria-metrics")
        self.process = ManagedProcess(
            "victoria-metrics",
            [
                binary,
                f"-httpListenAddr={self.host}:{self.port}",
                f"-storageDataPath={workdir}/data",
                "-retentionPeriod=100y",
                "-search.latencyOffset=0s",
                "-loggerLevel=ERROR",
            ],
            self.host,
            self.port,
            workdir / "victoria-metrics.log",
        )

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.process.start(timeout=30)
        _wait_http(f"{self.url}/health", 200, "victoria-metrics")

    def stop(self) -> None:
        self.process.stop()

    def flush(self) -> None:
        """Make everything written so far searchable (VictoriaMetrics buffers writes for about a second).

        Query only after this: an export that ran before the flush can leave an empty answer cached.
        """
        status, body = http_get(f"{self.url}/internal/force_flush")
        if status != 200:
            raise ServerError(f"force_flush failed: {status} {body!r}")
