"""The one builder: each part of the platform made from :class:`~wiring.settings.Settings`, and the files it
keeps in the data directory. ``Platform``, the scenario runner, the commands and the end-to-end tests all make
their parts here, so there is one answer to "how is the gateway (or the rules engine) set up"."""

from __future__ import annotations

import datetime as dt
import functools
import zlib
from collections.abc import Sequence
from pathlib import Path

from devices.registry import Registry
from gateway.entries import SkewLimits
from gateway.service import Gateway
from rules.config import RulesConfig, load_rules
from rules.engine import RulesEngine
from rules.notify import MqttAlerts, Notifier
from rules.runner import RulesRunner
from rules.store import RulesStore
from rules.units.base import Pictures
from rules.units.verdict import judged_verdict
from rules.webhooks import Route, Webhooks
from runtime.clock import Clock
from spool import Spool
from storage.drain import StorageDrain
from storage.local import LocalStore
from storage.schema import Judge
from storage.writers import InfluxV1Writer, InfluxV2Writer, PointWriter
from wiring.settings import BUNDLED_REGISTRY, ConfigError, Settings
from wiring.stored_alerts import StoredAlerts


def spool_path(settings: Settings) -> Path:
    """One spool per gateway identity: two gateways in one data directory never share state."""
    return settings.data_dir / f"spool-{settings.gateway.client_id}.sqlite"


def rules_store_path(settings: Settings) -> Path:
    return settings.data_dir / f"rules-{settings.gateway.client_id}.sqlite"


def data_registry_path(settings: Settings) -> Path:
    """The registry a generated history was made with, kept beside its data: the reports read it from there."""
    return settings.data_dir / "registry.yaml"


def registry_for_reports(settings: Settings) -> Path:
    """The registry a report reads: the one configured or given, else the one the data directory's history was
    made with, else the bundled demo registry."""
    kept = data_registry_path(settings)
    return kept if settings.registry == BUNDLED_REGISTRY and kept.exists() else settings.registry


def local_store_path(settings: Settings) -> Path:
    return settings.storage.local_path or settings.data_dir / "store.sqlite"


def skew_limits(settings: Settings) -> SkewLimits:
    g = settings.gateway
    return SkewLimits(future=dt.timedelta(seconds=g.skew_future_s), past=dt.timedelta(seconds=g.skew_past_s))


def owned_canteens(settings: Settings, registry: Registry) -> list[str]:
    """The canteens this platform owns: its gateway's ``canteens``, or its ``partition`` of the registry's
    (empty: all of them)."""
    g = settings.gateway
    if g.partition is None:
        unknown = sorted(set(g.canteens) - {c.id for c in registry.canteens})
        if unknown:
            raise ConfigError(f"gateway.canteens: not in the registry: {', '.join(unknown)}")
        return list(g.canteens)
    k, n = g.partition_numbers()
    owned = [c.id for c in registry.canteens if zlib.crc32(c.id.encode()) % n == k - 1]
    if not owned:
        raise ConfigError(f"gateway.partition {g.partition}: none of the registry's canteens falls in it")
    return owned


def owned_registry(settings: Settings, registry: Registry) -> Registry:
    """The registry as far as this platform owns it: a partition's gateway, rules engine and console know only
    its own canteens (a rules engine judging a canteen it never hears would call it silent)."""
    owned = owned_canteens(settings, registry)
    return registry.only(owned) if owned else registry


def build_gateway(settings: Settings, registry: Registry, clock: Clock) -> Gateway:
    g = settings.gateway
    spool = Spool(spool_path(settings), dedup_window=dt.timedelta(days=g.dedup_window_days))
    canteens = owned_canteens(settings, registry)
    return Gateway(registry, clock, spool, canteens=canteens, skew=skew_limits(settings), max_batch=g.max_batch)


def build_writer(settings: Settings) -> PointWriter:
    """The store the configuration names: the embedded SQLite one unless an InfluxDB is configured."""
    st = settings.storage
    # StorageSettings has checked that the chosen backend has what it needs; _given only narrows the types.
    if st.backend == "influxdb1":
        return InfluxV1Writer(
            _given(st.url),
            st.database,
            retention_policy=st.retention_policy,
            username=st.username,
            password=st.password,
            create_database=st.create_database,
        )
    if st.backend == "influxdb2":
        return InfluxV2Writer(_given(st.url), org=_given(st.org), bucket=_given(st.bucket), token=_given(st.token))
    return LocalStore(local_store_path(settings), retention=dt.timedelta(days=st.local_retention_days))


def _given(value: str | None) -> str:
    if value is None:
        raise ConfigError("storage settings are incomplete")
    return value


def judge_for(config: RulesConfig, registry: Registry) -> Judge:
    """The platform's verdict on a test, by the region's item catalogue and ``config``, as storage stores it."""
    return functools.partial(judged_verdict, config=config, items=registry.catalogue)


def build_drain(
    settings: Settings, registry: Registry, clock: Clock, *, config: RulesConfig | None = None
) -> StorageDrain:
    """The storage drain, storing each test's verdict as the rules engine judges it (``config``: the rules
    file's limits unless given)."""
    return StorageDrain(
        Spool(spool_path(settings)),
        registry,
        build_writer(settings),
        clock,
        batch_size=settings.storage.batch_size,
        writes_in_flight=settings.storage.writes_in_flight,
        disk_warn_bytes=int(settings.storage.backlog_disk_warn_mb * 1024 * 1024),
        judge=judge_for(config or load_rules(settings.rules.file, registry.region), registry),
    )


def build_rules(
    settings: Settings,
    registry: Registry,
    clock: Clock,
    *,
    config: RulesConfig | None = None,
    also_notify: Sequence[Notifier] = (),
    pictures: Pictures | None = None,
) -> tuple[RulesRunner, MqttAlerts]:
    """The rules engine over its store, following the spool, with every configured notifier: the alerts topic
    (returned too: the rules link gives it its connection), the time-series store, the webhooks and
    ``also_notify`` (the console's live feed). ``config``: thresholds given directly instead of from the rules
    file. ``pictures``: each camera's picture as the media server reports it (camera.video_lost)."""
    config = config or load_rules(settings.rules.file, registry.region)
    engine = RulesEngine(registry, config, RulesStore(rules_store_path(settings)), clock, pictures=pictures)
    alerts_topic = MqttAlerts(None)
    notifiers: list[Notifier] = [alerts_topic, StoredAlerts(build_writer(settings), registry)]
    routes = [
        Route(hook.route_name(i), hook.url, hook.format, hook.level, hook.district, hook.quiet_hours)
        for i, hook in enumerate(settings.rules.webhooks)
    ]
    if routes:
        # its own connection to the rules store: the delivery loop writes its outbox and the audit log
        notifiers.append(Webhooks(routes, RulesStore(rules_store_path(settings)), registry, clock))
    notifiers += also_notify
    return RulesRunner(engine, Spool(spool_path(settings)), notifiers, tick_s=settings.rules.tick_s), alerts_topic
