"""Who is asking and what they may see: viewers and their scope, login throttling, CSRF tokens.

A school sees its canteen, a district its canteens, the city everything. Every page, query and API call takes
the viewer's scope; an object outside it is answered as if it did not exist (404), never with its data.
"""

from __future__ import annotations

import collections
import hmac
import secrets
from dataclasses import dataclass

from broker_config.web_passwords import WebPasswords
from devices.registry import Account, Registry
from runtime.clock import Clock

Role = str  # school / district / city

#: Wrong passwords allowed per account (and per client address) in THROTTLE_WINDOW_S; the next is refused.
THROTTLE_LIMIT = 10
THROTTLE_WINDOW_S = 60.0


@dataclass(frozen=True)
class Viewer:
    """A logged-in account and the canteens it may see (None: all of them)."""

    username: str
    role: Role
    canteens: frozenset[str] | None
    district: str | None = None

    def sees(self, canteen_id: str) -> bool:
        return self.canteens is None or canteen_id in self.canteens


def viewer_for(registry: Registry, username: str) -> Viewer | None:
    """The viewer of a registry account of a person (school, district, city); None for anyone else."""
    account = next((a for a in registry.accounts if a.username == username), None)
    if account is None or account.role == "gateway":
        return None
    return Viewer(account.username, account.role, _canteens_of(registry, account), account.district)


def viewer_of_session(
    registry: Registry, passwords: WebPasswords, username: str, opened: tuple[str, str] | None
) -> Viewer | None:
    """The viewer of a session the console's store says is ``opened`` (its username and password fingerprint),
    if it is this account's, the password is still the one it was opened with, and the account still exists."""
    if opened is None or opened[0] != username:
        return None
    passwords.refresh()
    if passwords.fingerprint(username) != opened[1]:
        return None
    return viewer_for(registry, username)


def _canteens_of(registry: Registry, account: Account) -> frozenset[str] | None:
    if account.role == "city":
        return None
    if account.role == "school":
        return frozenset([account.canteen]) if account.canteen else frozenset()
    return frozenset(c.id for c in registry.canteens if c.district == account.district)


class LoginThrottle:
    """Counts wrong passwords per account and per client address over a sliding minute (on the platform's
    clock, so that tests need not sleep)."""

    def __init__(self, clock: Clock, limit: int = THROTTLE_LIMIT, window_s: float = THROTTLE_WINDOW_S) -> None:
        self.clock = clock
        self.limit = limit
        self.window_s = window_s
        self._failures: dict[str, collections.deque[float]] = {}

    def _recent(self, key: str) -> collections.deque[float]:
        now = self.clock.now().timestamp()
        failures = self._failures.setdefault(key, collections.deque())
        while failures and failures[0] <= now - self.window_s:
            failures.popleft()
        if not failures:
            del self._failures[key]  # the table holds only keys with recent failures
            return collections.deque()
        return failures

    def wait_s(self, *keys: str) -> int:
        """Seconds until another attempt is allowed for all ``keys``; 0 when it is allowed now."""
        now = self.clock.now().timestamp()
        waits = [failures[0] + self.window_s - now for key in keys if len(failures := self._recent(key)) >= self.limit]
        return max(1, round(max(waits))) if waits else 0

    def failed(self, *keys: str) -> None:
        now = self.clock.now().timestamp()
        for key in keys:
            self._failures.setdefault(key, collections.deque()).append(now)

    def succeeded(self, key: str) -> None:
        self._failures.pop(key, None)


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def csrf_matches(expected: str | None, given: str | None) -> bool:
    return bool(expected) and bool(given) and hmac.compare_digest(str(expected), str(given))
