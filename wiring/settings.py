"""Configuration: a TOML file, then ``SHIAN_*`` environment variables over it, checked once at start-up.

Nested keys use ``__`` in the environment: ``SHIAN_MQTT__PORT=1884`` overrides ``[mqtt] port``.
"""

from __future__ import annotations

import datetime as dt
import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from devices.ids import CanteenId, check_id
from gateway.service import MAX_BATCH
from runtime.errors import ShianError

#: The one-canteen registry of ``shian demo`` and of ``shian run`` on its embedded defaults.
BUNDLED_REGISTRY = Path(__file__).resolve().parent / "demo-registry.yaml"
CONFIG_ENV = "SHIAN_CONFIG"


class ConfigError(ShianError, ValueError):
    """The configuration cannot be used; the message says which key and why."""


class MqttSettings(BaseModel):
    """``[mqtt]``: the broker to use, or none for a managed one."""

    model_config = ConfigDict(extra="forbid")

    #: Broker host. Unset: Shian starts and manages its own Mosquitto on loopback.
    host: str | None = None
    #: Broker port. Unset: 1883 for a broker of your own, a free port for the managed one.
    port: int | None = Field(default=None, ge=1, le=65535)
    username: str | None = None
    password: str | None = None
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    #: How long the broker keeps the gateway's session (and queues its messages) while it is away.
    session_expiry_s: int = Field(default=7 * 24 * 3600, ge=0)
    #: TLS: the CA that signed the broker's certificate; a client certificate and key if the broker wants one.
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None


class GatewaySettings(BaseModel):
    """``[gateway]``: its identity, its partition of canteens, and the limits of its intake."""

    model_config = ConfigDict(extra="forbid")

    #: MQTT client id; also the name of its persistent session. Two gateways need two ids.
    client_id: str = "shian-gateway"
    #: The canteens this gateway owns: gateways partition the canteens between them (docs/gateway.md). Empty: all.
    canteens: list[CanteenId] = Field(default_factory=list)
    #: Or a share of them by number, "K/N": the canteens whose id hashes (CRC-32) to K-1 modulo N — the same
    #: split on every machine, whatever the registry's order (docs/scaling.md). Not together with ``canteens``.
    partition: str | None = Field(default=None, pattern=r"^[1-9][0-9]*/[1-9][0-9]*$")
    #: A (device, msg_id) seen within this window is a duplicate: the longest a device may buffer offline.
    dedup_window_days: float = Field(default=7.0, gt=0)
    #: Records whose ``ts`` is further ahead of / behind the gateway's clock are flagged as clock skew.
    skew_future_s: float = Field(default=300.0, ge=0)
    skew_past_s: float = Field(default=86400.0, ge=0)
    #: Deliveries committed to the spool in one transaction at most.
    max_batch: int = Field(default=MAX_BATCH, ge=1, le=100_000)
    #: Deliveries the broker may send before the gateway has acknowledged them (MQTT 5 receive maximum): what
    #: the gateway holds in memory at most, each up to the broker's max_packet_size. Keep it at least twice
    #: max_batch, so that a batch arrives while another commits; 4,096 and 8,192 drained as fast as 65,535.
    receive_maximum: int = Field(default=8192, ge=1, le=65_535)
    #: Serve Prometheus metrics on this port (0: a free port, logged at start-up). Unset: no endpoint.
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    metrics_bind: str = "127.0.0.1"

    @field_validator("client_id")
    @classmethod
    def _client_id(cls, value: str) -> str:
        return check_id(value, "gateway client id")

    @model_validator(mode="after")
    def _one_way_to_partition(self) -> GatewaySettings:
        if self.partition is not None:
            k, n = self.partition_numbers()
            if k > n:
                raise ValueError(f"partition {self.partition!r}: K/N needs K between 1 and N")
            if self.canteens:
                raise ValueError("set either 'canteens' or 'partition', not both")
        return self

    def partition_numbers(self) -> tuple[int, int]:
        k, _, n = (self.partition or "1/1").partition("/")
        return int(k), int(n)

    @model_validator(mode="after")
    def _window_holds_two_batches(self) -> GatewaySettings:
        if self.receive_maximum < 2 * self.max_batch:
            raise ValueError(
                f"receive_maximum ({self.receive_maximum}) must be at least twice max_batch ({self.max_batch}), "
                "so that the next batch arrives while one commits"
            )
        return self


class StorageSettings(BaseModel):
    """``[storage]``: the time-series store the drain writes to."""

    model_config = ConfigDict(extra="forbid")

    #: local: the embedded SQLite store; influxdb1: the v1 /write API; influxdb2: /api/v2/write.
    backend: Literal["local", "influxdb1", "influxdb2"] = "local"
    url: str | None = None
    #: influxdb1: database, optional retention policy, optional user and password.
    database: str = "shian"
    #: influxdb1: create the database when InfluxDB says it is missing (as Telegraf does); false: wait (and
    #: retry) until an operator creates it. Either way no record is set aside for it.
    create_database: bool = True
    retention_policy: str | None = None
    username: str | None = None
    password: str | None = None
    #: influxdb2: organisation, bucket and API token.
    org: str | None = None
    bucket: str | None = None
    token: str | None = None
    batch_size: int = Field(default=5000, ge=1, le=100_000)
    #: Writes the drain keeps in flight while it reads and encodes the next batch (docs/storage.md).
    writes_in_flight: int = Field(default=2, ge=1, le=8)
    #: The local store's file (default: {data_dir}/store.sqlite) and how long it keeps points.
    local_path: Path | None = None
    local_retention_days: float = Field(default=90.0, gt=0)
    #: Warn when the spool (the backlog waiting for the store) grows past this on disk.
    backlog_disk_warn_mb: float = Field(default=1024.0, gt=0)

    @model_validator(mode="after")
    def _complete(self) -> StorageSettings:
        if self.backend != "local" and not self.url:
            raise ValueError(f"backend {self.backend!r} needs storage.url (e.g. http://127.0.0.1:8086)")
        if self.backend == "influxdb2":
            missing = [key for key in ("org", "bucket", "token") if not getattr(self, key)]
            if missing:
                raise ValueError(f"backend 'influxdb2' needs storage.{', storage.'.join(missing)}")
        return self


class WebhookSettings(BaseModel):
    """One ``[[rules.webhooks]]`` entry: where to post alert changes, in which format, and which of them."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(pattern=r"^https?://")
    #: json: the alert as JSON; wecom / dingtalk: a group robot's text message.
    format: Literal["json", "wecom", "dingtalk"] = "json"
    #: Who it is for, as the message and the audit log name it (default: the level and district).
    name: str | None = Field(default=None, min_length=1, max_length=64)
    #: school: every change; district: alerts escalated to the district; city: those escalated to the city.
    level: Literal["school", "district", "city"] = "school"
    #: Only the alerts of this district's canteens (a district education bureau's group).
    district: str | None = None
    #: Warnings between these local times wait until the end ("22:00", "07:00"); critical alerts never wait.
    quiet_hours: tuple[dt.time, dt.time] | None = None

    def route_name(self, index: int) -> str:
        return self.name or f"{self.level}{'-' + self.district if self.district else ''}-{index}"


class RulesSettings(BaseModel):
    """``[rules]``: the rules file, the timer tick, the webhooks."""

    model_config = ConfigDict(extra="forbid")

    #: The rules file (YAML: ``defaults`` and per-region overrides). Unset: the built-in defaults.
    file: Path | None = None
    #: How often timers (deadlines, durations, silence) are evaluated.
    tick_s: float = Field(default=1.0, gt=0, le=60)
    webhooks: list[WebhookSettings] = Field(default_factory=list)


class WebSettings(BaseModel):
    """``[web]``: the supervisors' console (docs/console.md)."""

    model_config = ConfigDict(extra="forbid")

    #: Serve the console with ``shian run`` and ``shian demo``.
    enabled: bool = True
    bind: str = "127.0.0.1"
    #: 0: a free port, logged at start-up.
    port: int = Field(default=8080, ge=0, le=65535)
    #: The address people reach the console at (behind a reverse proxy, say); https makes cookies Secure.
    public_url: str | None = Field(default=None, pattern=r"^https?://")
    #: Signs the session cookies. Unset: a random key kept in {data_dir}/console-secret (sessions survive
    #: restarts). Two consoles behind one address need the same key.
    secret_key: str | None = Field(default=None, min_length=32)
    #: The Argon2id password hashes that ``shian broker provision`` writes (web-passwords.yaml in its --out).
    #: Unset: {data_dir}/web-passwords.yaml, where ``shian demo`` puts its demo accounts'.
    passwords: Path | None = None
    #: A door display whose canteen's devices sent nothing for this long says its data is stale.
    kiosk_stale_minutes: float = Field(default=15.0, gt=0)


class DigestSettings(BaseModel):
    """``[digest]``: the parents' daily digest of each canteen (docs/public.md)."""

    model_config = ConfigDict(extra="forbid")

    #: Make and send digests (needs the console: [web] enabled).
    enabled: bool = True
    #: The local time (the registry's zone) each school day's digest is made.
    send_at: dt.time = dt.time(17, 30)
    #: How often a day already sent is looked at again for a correction (更正).
    recheck_minutes: float = Field(default=5.0, gt=0)


class VideoSettings(BaseModel):
    """``[video]``: the bright kitchen's picture (docs/video.md): off, a media server Shian manages, or one of
    your own."""

    model_config = ConfigDict(extra="forbid")

    #: off: cameras send health messages only; managed: Shian starts nginx-rtmp beside the platform; external:
    #: a media server of your own, configured as docs/video.md shows, at the URLs below.
    mode: Literal["off", "managed", "external"] = "off"
    #: managed: where cameras publish (RTMP) and players fetch (HTTP); port 0: a free port, logged at start-up.
    rtmp_bind: str = "127.0.0.1"
    rtmp_port: int = Field(default=0, ge=0, le=65535)
    http_bind: str = "127.0.0.1"
    http_port: int = Field(default=0, ge=0, le=65535)
    #: The address players reach the media server's HTTP side at (a CDN or proxy in front of it). Unset: its
    #: own address (managed), required for external.
    play_url: str | None = Field(default=None, pattern=r"^https?://")
    #: external: the RTMP application cameras publish to, the statistics page and the HLS folder it writes.
    publish_url: str | None = Field(default=None, pattern=r"^rtmps?://")
    stat_url: str | None = Field(default=None, pattern=r"^https?://")
    hls_dir: Path | None = None
    #: external: the secret its hooks (on_publish, auth_request) carry. Managed: a random one per start.
    hook_secret: str | None = Field(default=None, min_length=16)
    #: The cameras' stream-key digests (shian broker provision). Unset: {data_dir}/stream-keys.yaml.
    stream_keys: Path | None = None
    #: Viewers of one camera, and of all cameras, at once: the next one is told "too many viewers now".
    max_viewers_per_stream: int = Field(default=200, ge=1)
    max_viewers: int = Field(default=2000, ge=1)
    #: How often the media server's statistics are read (the pictures' health, viewers, bytes out).
    stat_interval_s: float = Field(default=2.0, gt=0, le=60)
    #: shian demo, shian simulate: this share of the simulated cameras push a generated picture.
    simulated_share: float = Field(default=1.0, ge=0, le=1)

    @model_validator(mode="after")
    def _external_complete(self) -> VideoSettings:
        if self.mode == "external":
            missing = [k for k in ("play_url", "publish_url", "stat_url", "hook_secret") if not getattr(self, k)]
            if missing:
                raise ValueError(f"mode 'external' needs video.{', video.'.join(missing)}")
        if self.max_viewers < self.max_viewers_per_stream:
            raise ValueError("max_viewers must not be below max_viewers_per_stream")
        return self


class Settings(BaseSettings):
    """The whole configuration: a TOML file, then ``SHIAN_*`` environment variables, then flags."""

    model_config = SettingsConfigDict(env_prefix="SHIAN_", env_nested_delimiter="__", extra="forbid")

    #: The canteen registry (YAML). Default: the bundled one-canteen demo registry.
    registry: Path = BUNDLED_REGISTRY
    #: Where the managed broker, spool and local store keep their files.
    data_dir: Path = Path("var")
    log_format: Literal["auto", "console", "json"] = "auto"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    mqtt: MqttSettings = Field(default_factory=MqttSettings)
    gateway: GatewaySettings = Field(default_factory=GatewaySettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    rules: RulesSettings = Field(default_factory=RulesSettings)
    web: WebSettings = Field(default_factory=WebSettings)
    digest: DigestSettings = Field(default_factory=DigestSettings)
    video: VideoSettings = Field(default_factory=VideoSettings)

    @model_validator(mode="after")
    def _video_needs_console(self) -> Settings:
        if self.video.mode != "off" and not self.web.enabled:
            raise ValueError("video needs the console ([web] enabled): it answers the media server's questions")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The file's values arrive through init_settings (see load_settings); the environment wins over them.
        return (env_settings, init_settings)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{path}: configuration file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def load_settings(path: Path | None = None, **overrides: Any) -> Settings:
    """Settings from ``path`` (or ``$SHIAN_CONFIG``), then the environment, then ``overrides`` (CLI flags)."""
    path = path or (Path(os.environ[CONFIG_ENV]) if os.environ.get(CONFIG_ENV) else None)
    values = _read_toml(path) if path else {}
    source = str(path) if path else "the defaults"
    try:
        settings = Settings(**values)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            key = ".".join(str(part) for part in error["loc"])
            env = "SHIAN_" + "__".join(str(part) for part in error["loc"]).upper()
            problems.append(f"  {key} (in {source} or ${env}): {error['msg']}")
        raise ConfigError("invalid configuration:\n" + "\n".join(problems)) from None
    # Command-line flags win over the file and the environment; argparse has already typed them.
    return settings.model_copy(update={key: value for key, value in overrides.items() if value is not None})
