"""The console made from the settings: its stores, its query layer over the configured time-series store, and
the demo's accounts."""

from __future__ import annotations

import datetime as dt
import os
import secrets
import urllib.parse
from collections.abc import Callable
from pathlib import Path

import yaml

from broker_config.web_passwords import WebPasswords
from console.context import Console, ManualIntake
from console.digest.outbox import DigestOutbox
from console.digest.service import DigestSchedule, DigestService
from console.feed import AlertFeed
from console.influx_readings import InfluxReadings
from console.readings import LocalReadings, Readings
from console.store import ConsoleStore, PublicPurpose
from devices.registry import Registry
from mqtt.bus import Publishing
from rules.config import RulesConfig, load_rules
from rules.store import RulesStore
from runtime.clock import Clock
from wiring.build import local_store_path, rules_store_path
from wiring.settings import ConfigError, Settings

#: The demo's console passwords in clear, so that every `shian demo` can print a login (mode 0600).
DEMO_LOGINS = "demo-logins.yaml"


def console_db_path(settings: Settings) -> Path:
    return settings.data_dir / "console.sqlite"


def build_digests(console: Console, settings: Settings, bus: Callable[[], Publishing | None]) -> DigestService:
    """The parents' digests over the console's stores, published through ``bus`` (the rules link's)."""
    assert console.digests is not None
    schedule = DigestSchedule(
        send_at=settings.digest.send_at,
        recheck=dt.timedelta(minutes=settings.digest.recheck_minutes),
        public_url=settings.web.public_url,
    )
    return DigestService(
        registry=console.registry,
        readings=console.readings,
        alerts=console.alerts,
        store=console.store,
        outbox=console.digests,
        clock=console.clock,
        schedule=schedule,
        bus=bus,
    )


def web_passwords_path(settings: Settings) -> Path:
    return settings.web.passwords or settings.data_dir / "web-passwords.yaml"


def build_readings(settings: Settings) -> Readings:
    st = settings.storage
    if st.backend == "influxdb1" and st.url:
        return InfluxReadings(st.url, st.database, username=st.username, password=st.password)
    if st.backend == "influxdb2":
        raise ConfigError("the console reads InfluxDB through its v1 query API: use storage.backend = 'influxdb1'")
    return LocalReadings(local_store_path(settings))


def secret_key(settings: Settings) -> str:
    """The configured key, or one generated once and kept in the data directory (mode 0600)."""
    if settings.web.secret_key:
        return settings.web.secret_key
    path = settings.data_dir / "console-secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def build_console(
    settings: Settings,
    registry: Registry,
    clock: Clock,
    feed: AlertFeed,
    *,
    manual_intake: ManualIntake | None = None,
    limits: RulesConfig | None = None,
) -> Console:
    """``limits``: the rules engine's thresholds, which the bulletins apply too (default: the rules file's)."""
    return Console(
        limits=limits or load_rules(settings.rules.file, registry.region),
        kiosk_stale_s=settings.web.kiosk_stale_minutes * 60,
        digests=DigestOutbox(console_db_path(settings)),
        digest_time=settings.digest.send_at,
        registry=registry,
        clock=clock,
        alerts=RulesStore(rules_store_path(settings)),
        readings=build_readings(settings),
        passwords=WebPasswords.load(web_passwords_path(settings)),
        store=ConsoleStore(console_db_path(settings)),
        feed=feed,
        secret_key=secret_key(settings),
        https_only=bool(settings.web.public_url and settings.web.public_url.startswith("https://")),
        public_origin=_origin_of(settings.web.public_url),
        manual_intake=manual_intake,
    )


def demo_logins(settings: Settings, registry: Registry) -> dict[str, str]:
    """A console password for each of the registry's people, made once per data directory and kept; their
    Argon2id hashes go where the console reads them."""
    path = settings.data_dir / DEMO_LOGINS
    kept = _read_private(path)
    logins = {name: str(value) for name, value in kept.items() if not name.startswith("_")}
    web = WebPasswords.load(web_passwords_path(settings))
    for account in registry.accounts:
        if account.role == "gateway":
            continue
        if account.username not in logins:
            logins[account.username] = secrets.token_urlsafe(9)
        if not web.verify(account.username, logins[account.username]):
            web.set_password(account.username, logins[account.username])
    web.save()
    _write_private(path, {**kept, **logins})
    return logins


def demo_public_links(console: Console, settings: Settings, canteen_id: str) -> tuple[str, str]:
    """Paths of the demo canteen's kiosk and parents' page, with tokens made once per data directory (kept in
    the clear beside the demo's passwords, so that every demo prints the same links)."""
    path = settings.data_dir / DEMO_LOGINS
    kept = _read_private(path)
    saved = kept.get("_links")
    links: dict[str, str] = {str(k): str(v) for k, v in saved.items()} if isinstance(saved, dict) else {}
    now = console.clock.now()
    purposes: tuple[PublicPurpose, ...] = ("kiosk", "public")
    for purpose in purposes:
        if not console.store.opens(links.get(purpose), canteen_id, purpose):
            links[purpose] = console.store.issue_public_token(canteen_id, purpose, now)[1]
    kept["_links"] = links
    _write_private(path, kept)
    return f"/kiosk/{canteen_id}?t={links['kiosk']}", f"/p/{canteen_id}/today?t={links['public']}"


def _read_private(path: Path) -> dict[str, object]:
    if not path.exists():
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else {}


def _write_private(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        yaml.safe_dump(data, handle, allow_unicode=True)


def _origin_of(url: str | None) -> str | None:
    if url is None:
        return None
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
