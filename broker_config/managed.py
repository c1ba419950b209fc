"""A Mosquitto that Shian starts itself: for ``shian run``, ``shian demo`` and the test harness."""

from __future__ import annotations

import dataclasses
import os
import pwd
import signal
from dataclasses import dataclass
from pathlib import Path

from broker_config.mosquitto_conf import DEFAULT_AUTOSAVE_CHANGES, DEV_MAX_PACKET_BYTES, MosquittoConfig, TlsFiles
from runtime.process import ManagedProcess, Server, ServerError, find_program, free_port

# Mosquitto started as root drops to this user before it opens its persistence, password and ACL files.
_DROP_USER = "mosquitto"


def give_to_broker_user(path: Path) -> None:
    """Make ``path`` readable and writable by the user a root-started Mosquitto becomes, and its parents
    passable."""
    if os.geteuid() != 0:
        return
    try:
        user = pwd.getpwnam(_DROP_USER)
    except KeyError:
        return  # no such user: Mosquitto keeps running as root
    for entry in [path, *(path.rglob("*") if path.is_dir() else [])]:
        os.chown(entry, user.pw_uid, user.pw_gid)
    # A private temporary directory (mode 0700) above it would still lock the broker out.
    for parent in path.resolve().parents:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o001)


@dataclass(frozen=True, kw_only=True)
class SecureOptions:
    """Run the managed broker the production way: accounts, ACL, optional TLS, a tight packet limit."""

    password_file: Path
    acl_file: Path
    tls: TlsFiles | None = None
    max_packet_bytes: int = DEV_MAX_PACKET_BYTES


class ManagedMosquitto(Server):
    """A Mosquitto child process on a free loopback port, with persistence under ``workdir``.

    ``restart()`` keeps the port and the persistence, so tests can kill the broker and bring it back.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        port: int | None = None,
        persistence: bool = True,
        autosave_changes: int = DEFAULT_AUTOSAVE_CHANGES,
        secure: SecureOptions | None = None,
        max_qos: int = 2,
    ) -> None:
        self.workdir = workdir
        self.host = "127.0.0.1"
        self.port = port or free_port(self.host)
        self.persistence = persistence
        self.autosave_changes = autosave_changes
        self.secure = secure
        self.max_qos = max_qos
        self._process: ManagedProcess | None = None

    @property
    def config_path(self) -> Path:
        return self.workdir / "mosquitto.conf"

    @property
    def log_path(self) -> Path:
        return self.workdir / "mosquitto.log"

    @property
    def process(self) -> ManagedProcess:
        if self._process is None:
            raise ServerError("the managed Mosquitto has not been started")
        return self._process

    def write_config(self) -> MosquittoConfig:
        persistence_dir = self.workdir / "data" if self.persistence else None
        if persistence_dir:
            persistence_dir.mkdir(parents=True, exist_ok=True)
            give_to_broker_user(persistence_dir)
        config = MosquittoConfig(
            port=self.port,
            persistence_dir=persistence_dir,
            autosave_changes=self.autosave_changes,
            max_qos=self.max_qos,
        )
        if self.secure:
            sec = self.secure
            files = [f for f in (sec.password_file, sec.acl_file) if f]
            if sec.tls:
                files += [sec.tls.cafile, sec.tls.certfile, sec.tls.keyfile]
            for path in files:
                give_to_broker_user(path)
            config = dataclasses.replace(
                config,
                allow_anonymous=False,
                password_file=sec.password_file,
                acl_file=sec.acl_file,
                tls=sec.tls,
                use_username_as_clientid=True,
                max_packet_bytes=sec.max_packet_bytes,
            )
        self.config_path.write_text(config.render(), encoding="utf-8")
        return config

    def start(self, timeout: float = 15.0) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        binary = find_program("mosquitto", "mosquitto")
        self.write_config()
        self._process = ManagedProcess(
            "mosquitto", [binary, "-c", str(self.config_path)], self.host, self.port, self.log_path
        )
        self._process.start(timeout)

    def stop(self) -> None:
        if self._process:
            self._process.stop()

    def kill(self) -> None:
        self.process.kill()

    def reload(self) -> None:
        """SIGHUP: Mosquitto reads its password and ACL files again; connected clients stay connected."""
        pid = self.process.pid
        if pid is None or not self.process.running:
            raise ServerError("the managed Mosquitto is not running")
        os.kill(pid, signal.SIGHUP)

    def restart(self, timeout: float = 15.0) -> None:
        self.stop()
        self.process.start(timeout)
