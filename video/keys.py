"""Cameras' stream keys: a camera publishes its picture under its own id with a key only it holds.

Made like the broker's passwords, by ``shian broker provision``: the clear keys go to a 0600 file beside the
broker's credentials (for flashing cameras), the platform keeps only their SHA-256 digests (a key is 32 random
bytes, so a slow hash adds nothing). The media server asks the platform at every publish (``on_publish``); a
key of another camera, an unknown key or a retired camera is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from devices.registry import Registry

#: The digests the platform checks publishes against (``[video] stream_keys``).
DIGESTS_FILE = "stream-keys.yaml"
#: The clear keys, for whoever configures the cameras.
CLEAR_FILE = "stream-key-credentials.yaml"


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def streaming_cameras(registry: Registry) -> list[str]:
    """Every camera the platform expects a picture from (pushed or pulled), retired ones left out."""
    return [d.id for c in registry.canteens for d in c.devices if d.streams]


@dataclass
class StreamKeys:
    """camera id -> the digest of its key."""

    digests: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> StreamKeys:
        if not path.exists():
            return cls()
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        return cls({str(k): str(v) for k, v in (data.get("digests") or {}).items()})

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        body = {"version": 1, "digests": dict(sorted(self.digests.items()))}
        text = "# SHA-256 digests of the cameras' stream keys (shian broker provision). Not secret.\n"
        path.write_text(text + yaml.safe_dump(body), encoding="utf-8")

    def matches(self, camera: str, key: str | None) -> bool:
        """Whether ``key`` is ``camera``'s own key."""
        known = self.digests.get(camera)
        return bool(key) and known is not None and hmac.compare_digest(known, _digest(str(key)))


def _load_clear(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return {str(k): str(v) for k, v in data.items()}


def _save_clear(path: Path, keys: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write("# Stream keys by camera. Secret: configure each camera (or its relay) with its own only.\n")
        yaml.safe_dump(dict(sorted(keys.items())), handle)


@dataclass(frozen=True)
class ProvisionedKeys:
    digests: Path
    clear: Path
    created: list[str]
    rotated: list[str]
    removed: list[str]


def provision_stream_keys(registry: Registry, out_dir: Path, *, rotate: Iterable[str] = ()) -> ProvisionedKeys:
    """Give every streaming camera a key, keep the keys already given, renew those in ``rotate`` and drop the
    keys of cameras no longer streaming (retired, removed)."""
    clear_path = out_dir / CLEAR_FILE
    keys = _load_clear(clear_path)
    cameras = streaming_cameras(registry)
    rotate = set(rotate) & set(cameras)
    created = [c for c in cameras if c not in keys]
    removed = sorted(set(keys) - set(cameras))
    for camera in [*created, *rotate]:
        keys[camera] = secrets.token_urlsafe(32)
    for camera in removed:
        del keys[camera]
    _save_clear(clear_path, keys)
    digests_path = out_dir / DIGESTS_FILE
    StreamKeys({camera: _digest(key) for camera, key in keys.items()}).save(digests_path)
    return ProvisionedKeys(digests_path, clear_path, created, sorted(rotate), removed)


def clear_keys(out_dir: Path) -> dict[str, str]:
    """The clear keys provisioning keeps (the demo's simulated cameras publish with them)."""
    return _load_clear(out_dir / CLEAR_FILE)
