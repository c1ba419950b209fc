"""The web console's password file: one Argon2id hash per person's account, never a clear-text password.

``shian broker provision`` writes it beside the broker's files from the passwords it keeps, so that a school,
district or city account logs in to the console with the same password as to the broker; the console reads
only this file. The broker's own ``$7$`` hashes (PBKDF2, 101 rounds, fixed by Mosquitto) are too cheap to
guess to be offered on a web login form, hence a second hash of the same password.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

FILE_NAME = "web-passwords.yaml"
#: OWASP's second Argon2id configuration (19 MiB, 2 passes): about 25 ms per check here.
HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
#: Checked against when the username is unknown, so that a miss costs as long as a wrong password.
_DUMMY = HASHER.hash("not a password of anyone's")


@dataclass
class WebPasswords:
    """username -> Argon2id hash, kept in a 0600 YAML file."""

    path: Path
    hashes: dict[str, str] = field(default_factory=dict)
    _mtime_ns: int | None = None

    @classmethod
    def load(cls, path: Path) -> WebPasswords:
        passwords = cls(path)
        passwords.refresh()
        return passwords

    def refresh(self) -> None:
        """Read the file again if it changed: a re-provisioning takes effect without a restart."""
        try:
            mtime_ns = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            self.hashes, self._mtime_ns = {}, None
            return
        if mtime_ns != self._mtime_ns:
            data = yaml.safe_load(self.path.read_text(encoding="utf-8")) or {}
            self.hashes, self._mtime_ns = {str(k): str(v) for k, v in data.items()}, mtime_ns

    def set_password(self, username: str, password: str) -> None:
        self.hashes[username] = HASHER.hash(password)

    def keep_only(self, usernames: set[str]) -> None:
        self.hashes = {name: digest for name, digest in self.hashes.items() if name in usernames}

    def fingerprint(self, username: str) -> str | None:
        """A short digest of the account's current hash (None: no console login): a session made under one
        fingerprint ends when the password changes, is rotated or is removed."""
        digest = self.hashes.get(username)
        return hashlib.sha256(digest.encode()).hexdigest()[:16] if digest else None

    def verify(self, username: str, password: str) -> bool:
        digest = self.hashes.get(username)
        try:
            return HASHER.verify(digest or _DUMMY, password) and digest is not None
        except (VerificationError, InvalidHashError):
            return False

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write("# Argon2id hashes of the console accounts' passwords (shian broker provision).\n")
            yaml.safe_dump(dict(sorted(self.hashes.items())), handle)
