"""The processes tests start: each in a process group of its own, ended with the test that started it however
that test ends (failure, timeout, Ctrl-C), and none left behind when the session ends.

The test process is made a child subreaper, so that a grandchild whose parent died (the managed Mosquitto of a
SIGKILLed ``shian run``) is reparented to it rather than to init, and the end-of-session check still finds it.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

PR_SET_CHILD_SUBREAPER = 36
#: How long a terminated child's group gets to exit before it is killed.
TERM_GRACE_S = 10.0

_running: set[Child] = set()


def become_subreaper() -> bool:
    """Orphaned descendants of this process become its children (Linux); False where that is not possible."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


class Child:
    """A program a test runs, its output in ``log``, in a process group of its own (what it starts goes too)."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        log: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.argv = list(argv)
        self.log = log
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                self.argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                start_new_session=True,
            )
        _running.add(self)

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def events(self) -> list[dict[str, Any]]:
        """The JSON log lines it has written so far (other lines are skipped)."""
        found = []
        for line in self.text().splitlines():
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if isinstance(event, dict):
                    found.append(event)
        return found

    def wait_for(self, event: str, timeout: float, what: str | None = None) -> dict[str, Any]:
        """The first JSON log line of ``event``; fails, naming it, if the child exits or it takes longer."""
        deadline = time.monotonic() + timeout
        while True:
            for logged in self.events():
                if logged.get("event") == event:
                    return logged
            if not self.running():
                raise AssertionError(
                    f"{self.argv[0]} exited with {self.process.returncode} before {what or event!r}:\n{self.tail()}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"{what or event!r} was not logged within {timeout} s:\n{self.tail()}")
            time.sleep(0.1)

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.text().splitlines()[-lines:])

    def signal(self, sig: signal.Signals) -> None:
        """``sig`` to the child alone (as systemd's KillMode=mixed does first)."""
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(sig)

    def wait(self, timeout: float) -> int:
        """Its exit status; fails if it is still running after ``timeout`` (the child is then killed)."""
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.end()
            raise AssertionError(f"{self.argv[0]} was still running {timeout} s later:\n{self.tail()}") from None

    def end(self, grace_s: float = TERM_GRACE_S) -> None:
        """SIGTERM to the whole group, then SIGKILL to what is left of it after ``grace_s``."""
        _signal_group(self.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(grace_s)
        _signal_group(self.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(5.0)
        _running.discard(self)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def end_all() -> list[str]:
    """End every child still tracked; the command lines of those that were still running."""
    left = [" ".join(child.argv) for child in _running if child.running()]
    for child in list(_running):
        child.end(grace_s=2.0)
    _running.clear()
    return left


def _parent_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] == "Z":
        return None  # a zombie holds nothing; it is reaped below
    return int(fields[1])


def descendants(root: int | None = None) -> dict[int, str]:
    """Live processes below ``root`` (this process): pid -> command line."""
    root = os.getpid() if root is None else root
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (parent := _parent_of(int(entry.name))) is not None:
            parents[int(entry.name)] = parent
    found: dict[int, str] = {}
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent and pid not in found:
                try:
                    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                except OSError:
                    continue
                found[pid] = cmdline.strip()
                frontier.append(pid)
    return found


def reap_leftovers() -> dict[int, str]:
    """Kill whatever still runs below this process and reap it; what was found."""
    left = descendants()
    for pid in left:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            if not descendants():
                break
            time.sleep(0.05)
    return left
