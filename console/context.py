"""Everything the console's routes read and change, made once by the platform (``wiring``) and shared."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from broker_config.web_passwords import WebPasswords
from console.access import LoginThrottle
from console.bulletin.cache import BulletinCache
from console.days import check_day
from console.digest.outbox import DigestOutbox
from console.feed import AlertFeed
from console.live import LiveTests
from console.readings import Readings
from console.store import ConsoleStore
from console.video_access import VideoAccess
from devices.messages import ReceiptStatus
from devices.registry import Registry
from rules.config import RulesConfig
from rules.store import RulesStore
from runtime.clock import Clock

#: Takes a hand-entered ``test.result`` (canteen, JSON) through the gateway's intake; returns its receipt.
ManualIntake = Callable[[str, bytes], Awaitable[tuple[ReceiptStatus, str | None]]]


@dataclass
class Console:
    registry: Registry
    clock: Clock
    alerts: RulesStore
    readings: Readings
    passwords: WebPasswords
    store: ConsoleStore
    feed: AlertFeed
    secret_key: str
    #: Cookies only over HTTPS: true whenever the console is reached through TLS (the public base URL's scheme).
    https_only: bool = False
    #: scheme://host[:port] of ``[web] public_url``: state-changing requests must come from it (or the request's
    #: own host); None when the console is reached at its bind address.
    public_origin: str | None = None
    #: Tells the rules engine to publish a change made here (an acknowledgement) without waiting for its tick.
    wake_rules: Callable[[], None] = lambda: None
    manual_intake: ManualIntake | None = None
    #: Today's test results as they arrive, for the kiosks (None: kiosks load the store and poll nothing).
    live: LiveTests | None = None
    #: A kiosk whose canteen's devices sent nothing for this long says its data is stale.
    kiosk_stale_s: float = 15 * 60
    #: The parents' digests made so far, and the local time they are made (the public page says when).
    digests: DigestOutbox | None = None
    digest_time: dt.time = dt.time(17, 30)
    #: The rules engine's thresholds: the bulletins count lapses by the same limits the alerts are raised by.
    limits: RulesConfig = field(default_factory=RulesConfig)
    #: The bright kitchen's picture: who may publish and watch, the cameras' tiles (None: video is off).
    video: VideoAccess | None = None
    throttle: LoginThrottle = field(init=False)
    bulletins: BulletinCache = field(init=False)

    def __post_init__(self) -> None:
        self.throttle = LoginThrottle(self.clock)
        self.bulletins = BulletinCache(self.clock)
        self.tz = ZoneInfo(self.registry.timezone)

    def today(self) -> dt.date:
        return self.clock.now().astimezone(self.tz).date()

    def day_bounds(self, day: dt.date) -> tuple[dt.datetime, dt.datetime]:
        """The day's first instant and the next day's, in the region's zone (:class:`DayOutOfRange` outside the
        console's calendar)."""
        start = dt.datetime.combine(check_day(day), dt.time(), self.tz)
        return start, start + dt.timedelta(days=1)

    def close(self) -> None:
        if self.digests is not None:
            self.digests.close()
        self.alerts.close()
        self.readings.close()
        self.store.close()
