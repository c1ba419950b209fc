"""Run a server program as a child process on a free loopback port, and stop it cleanly.

Used for the managed Mosquitto of ``shian run`` and by the test harness for Mosquitto, InfluxDB and
VictoriaMetrics, so that all of them start, wait and stop the same way.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

from runtime.errors import ShianError


class ServerError(ShianError, RuntimeError):
    """A managed server could not be found, started or reached."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago. The caller retries if another process takes it first."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def find_program(name: str, package: str, extra_dirs: Sequence[str] = ("/usr/sbin", "/usr/bin")) -> str:
    """The path of ``name``, or a :class:`ServerError` saying which Debian package provides it."""
    found = shutil.which(name) or next(
        (str(Path(d) / name) for d in extra_dirs if os.access(Path(d) / name, os.X_OK)), None
    )
    if not found:
        raise ServerError(f"{name!r} was not found; install the Debian package {package!r} (./dev does this for you)")
    return found


def port_accepts(host: str, port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class Server:
    """Something started and stopped, and a ``with`` block that does both."""

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


#: Every managed child still running, so that a process stopping by force can end them first.
_running: set[ManagedProcess] = set()


def stop_all_managed(timeout: float = 2.0) -> list[str]:
    """SIGTERM every managed child still running (SIGKILL after ``timeout``): for a process about to exit
    without its orderly shutdown, which would otherwise leave its broker behind. The names of those stopped."""
    stopped = []
    for process in list(_running):
        process.stop(timeout)
        stopped.append(process.name)
    return stopped


class ManagedProcess(Server):
    """A child server process that listens on ``host:port``; its output goes to ``log_path``."""

    def __init__(self, name: str, argv: Sequence[str], host: str, port: int, log_path: Path) -> None:
        self.name = name
        self.argv = list(argv)
        self.host = host
        self.port = port
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = 15.0) -> None:
        """Start the program and return once its port accepts connections."""
        if self.running:
            return
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                self.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
            )
        _running.add(self)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise ServerError(
                    f"{self.name} exited with code {self._process.returncode} while starting:\n{self.log_tail()}"
                )
            if port_accepts(self.host, self.port):
                return
            time.sleep(0.05)
        self.stop()
        raise ServerError(
            f"{self.name} did not accept connections on {self.host}:{self.port} within {timeout} s:\n{self.log_tail()}"
        )

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL if it has not exited within ``timeout``."""
        self._signal_and_wait(signal.SIGTERM, timeout)

    def kill(self) -> None:
        """SIGKILL: the crash that persistence has to survive."""
        self._signal_and_wait(signal.SIGKILL, 10.0)

    def _signal_and_wait(self, sig: signal.Signals, timeout: float) -> None:
        process = self._process
        if process is None or process.poll() is not None:
            _running.discard(self)
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        _running.discard(self)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
