"""The console made from the settings: its stores, its query layer over the configured time-series store, and
the demo's accounts."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import yaml

from broker_config.web_passwords import WebPasswords
from console.context import Console, ManualIntake
from console.feed import AlertFeed
from console.readings import InfluxReadings, LocalReadings, Readings
from console.store import ConsoleStore
from devices.registry import Registry
from rules.alerts import RulesStore
from runtime.clock import Clock
from wiring.build import local_store_path, rules_store_path
from wiring.settings import ConfigError, Settings

#: The demo's console passwords in clear, so that every `shian demo` can print a login (mode 0600).
DEMO_LOGINS = "demo-logins.yaml"


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
) -> Console:
    return Console(
        registry=registry,
        clock=clock,
        alerts=RulesStore(rules_store_path(settings)),
        readings=build_readings(settings),
        passwords=WebPasswords.load(web_passwords_path(settings)),
        store=ConsoleStore(settings.data_dir / "console.sqlite"),
        feed=feed,
        secret_key=secret_key(settings),
        https_only=bool(settings.web.public_url and settings.web.public_url.startswith("https://")),
        manual_intake=manual_intake,
    )


def demo_logins(settings: Settings, registry: Registry) -> dict[str, str]:
    """A console password for each of the registry's people, made once per data directory and kept; their
    Argon2id hashes go where the console reads them."""
    path = settings.data_dir / DEMO_LOGINS
    logins: dict[str, str] = yaml.safe_load(path.read_text(encoding="utf-8")) or {} if path.exists() else {}
    web = WebPasswords.load(web_passwords_path(settings))
    for account in registry.accounts:
        if account.role == "gateway":
            continue
        if account.username not in logins:
            logins[account.username] = secrets.token_urlsafe(9)
        if not web.verify(account.username, logins[account.username]):
            web.set_password(account.username, logins[account.username])
    web.save()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        yaml.safe_dump(logins, handle, allow_unicode=True)
    return logins
