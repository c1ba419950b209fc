"""A media server Shian starts itself (nginx with the RTMP module) for ``shian run``, ``shian demo`` and tests."""

from __future__ import annotations

import dataclasses
import os
import pwd
import secrets
from pathlib import Path

from runtime.process import ManagedProcess, Server, ServerError, find_program, free_port, port_accepts
from video.nginx_conf import APPLICATION, RTMP_MODULE, MediaServerConfig

#: The user a root-started nginx's worker becomes (Debian's nginx package makes it).
WORKER_USER = "www-data"


def _worker_user() -> str | None:
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(WORKER_USER)
    except KeyError:
        return "root"  # no such user: the worker stays root, as the master is
    return WORKER_USER


def _give_to(user: str | None, path: Path) -> None:
    """Let the worker write the HLS fragments (and pass through the folders above them)."""
    if user in (None, "root"):
        return
    entry = pwd.getpwnam(user)
    os.chown(path, entry.pw_uid, entry.pw_gid)
    for parent in path.resolve().parents:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o001)


class ManagedMediaServer(Server):
    """nginx-rtmp on free loopback ports (or the ones given), its files under ``workdir``."""

    def __init__(
        self,
        workdir: Path,
        console_url: str,
        *,
        rtmp_bind: str = "127.0.0.1",
        rtmp_port: int = 0,
        http_bind: str = "127.0.0.1",
        http_port: int = 0,
        hook_secret: str | None = None,
        open_location: bool = False,
    ) -> None:
        self.workdir = workdir.resolve()
        self.config = MediaServerConfig(
            workdir=self.workdir,
            rtmp_bind=rtmp_bind,
            rtmp_port=rtmp_port or free_port(rtmp_bind),
            http_bind=http_bind,
            http_port=http_port or free_port(http_bind),
            console_url=console_url.rstrip("/"),
            hook_secret=hook_secret or secrets.token_urlsafe(24),
            worker_user=_worker_user(),
            open_location=open_location,
        )
        self._process: ManagedProcess | None = None

    def set_console_url(self, console_url: str) -> None:
        """Where the hooks go, once the console listens (its port may have been 0 until then)."""
        self.config = dataclasses.replace(self.config, console_url=console_url.rstrip("/"))

    @property
    def config_path(self) -> Path:
        return self.workdir / "nginx.conf"

    @property
    def log_path(self) -> Path:
        return self.workdir / "nginx.log"

    @property
    def hls_dir(self) -> Path:
        return self.config.hls_dir

    @property
    def publish_url(self) -> str:
        """rtmp://host:port/live: a camera publishes to {publish_url}/{camera}?key={key}."""
        return f"rtmp://{self._reach(self.config.rtmp_bind)}:{self.config.rtmp_port}/{APPLICATION}"

    @property
    def http_url(self) -> str:
        return f"http://{self._reach(self.config.http_bind)}:{self.config.http_port}"

    @property
    def stat_url(self) -> str:
        return f"http://127.0.0.1:{self.config.http_port}/stat"

    @staticmethod
    def _reach(bind: str) -> str:
        return "127.0.0.1" if bind in ("0.0.0.0", "::") else bind

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def start(self, timeout: float = 15.0) -> None:
        binary = find_program("nginx", "nginx")
        if not RTMP_MODULE.exists():
            raise ServerError(f"{RTMP_MODULE} was not found; install the Debian package 'libnginx-mod-rtmp'")
        for folder in (self.workdir, self.hls_dir, self.workdir / "temp"):
            folder.mkdir(parents=True, exist_ok=True)
        _give_to(self.config.worker_user, self.hls_dir)
        self.config_path.write_text(self.config.render(), encoding="utf-8")
        argv = [binary, "-p", str(self.workdir), "-c", str(self.config_path), "-e", str(self.workdir / "error.log")]
        self._process = ManagedProcess("nginx", argv, "127.0.0.1", self.config.http_port, self.log_path)
        self._process.start(timeout)
        if not port_accepts(self._reach(self.config.rtmp_bind), self.config.rtmp_port, timeout=2.0):
            self.stop()
            raise ServerError(f"nginx did not accept RTMP on port {self.config.rtmp_port}:\n{self.error_tail()}")

    def stop(self) -> None:
        if self._process:
            self._process.stop()

    def reopen_logs(self) -> None:
        """SIGUSR1: nginx reopens its log files (after the served log was moved aside)."""
        if self._process is not None and self._process.pid is not None and self._process.running:
            os.kill(self._process.pid, 10)

    def error_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join((self.workdir / "error.log").read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no error log)"
