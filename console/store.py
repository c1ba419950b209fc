"""The console's own file: people's sessions, API tokens for machine clients and the tokens in public URLs (of
every secret only its SHA-256 is kept)."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from runtime.errors import ShianError
from runtime.sqlite import open_database

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    digest TEXT PRIMARY KEY,            -- of the session id the signed cookie carries
    username TEXT NOT NULL,
    password TEXT NOT NULL,             -- the fingerprint of the password it was opened with
    started_at TEXT NOT NULL,
    ended_at TEXT,
    ended_why TEXT                      -- logout / everywhere
);
CREATE INDEX IF NOT EXISTS sessions_by_user ON sessions (username) WHERE ended_at IS NULL;
CREATE TABLE IF NOT EXISTS api_tokens (
    token_id TEXT PRIMARY KEY,
    digest TEXT NOT NULL UNIQUE,
    username TEXT NOT NULL,
    label TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
"""
CREATE_PUBLIC = """
CREATE TABLE IF NOT EXISTS public_tokens (
    token_id TEXT PRIMARY KEY,
    digest TEXT NOT NULL UNIQUE,
    canteen_id TEXT NOT NULL,
    purpose TEXT NOT NULL,            -- kiosk: the display at the test-room door; public: the parents' pages
    created_at TEXT NOT NULL,
    revoked_at TEXT,
    -- public tokens only: the platform puts the link in every digest it pushes, so it must know the token
    link_token TEXT
);
"""
PublicPurpose = Literal["kiosk", "public"]
#: A token's visible prefix: names it in listings and logs without revealing it.
TOKEN_PREFIX = "shian_"


class TokenError(ShianError):
    """No such token, or it is revoked already."""


@dataclass(frozen=True)
class ApiToken:
    token_id: str
    username: str
    label: str
    created_at: str
    revoked_at: str | None


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


session_digest = _digest  # how a session is named where its id must not appear


class ConsoleStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = open_database(path)
        self._db.executescript(_SCHEMA + CREATE_PUBLIC)

    def close(self) -> None:
        self._db.close()

    # --- people's sessions: ended on the server, so that a copied cookie dies with its logout ---------------

    def start_session(self, username: str, password_fingerprint: str, at: dt.datetime) -> str:
        """A new session id for the cookie; the store keeps its digest."""
        session_id = secrets.token_urlsafe(32)
        self._db.execute(
            "INSERT INTO sessions (digest, username, password, started_at) VALUES (?, ?, ?, ?)",
            (_digest(session_id), username, password_fingerprint, at.isoformat()),
        )
        return session_id

    def session(self, session_id: str) -> tuple[str, str] | None:
        """(username, password fingerprint) of an open session, or None."""
        row = self._db.execute(
            "SELECT username, password FROM sessions WHERE digest = ? AND ended_at IS NULL", (_digest(session_id),)
        ).fetchone()
        return (str(row[0]), str(row[1])) if row else None

    def session_by_digest(self, digest: str) -> tuple[str, str] | None:
        """The same, for a session named by its digest (a viewing pass names it so, never by its id)."""
        row = self._db.execute(
            "SELECT username, password FROM sessions WHERE digest = ? AND ended_at IS NULL", (digest,)
        ).fetchone()
        return (str(row[0]), str(row[1])) if row else None

    def end_session(self, session_id: str, at: dt.datetime, why: str = "logout") -> None:
        self._db.execute(
            "UPDATE sessions SET ended_at = ?, ended_why = ? WHERE digest = ? AND ended_at IS NULL",
            (at.isoformat(), why, _digest(session_id)),
        )

    def end_sessions_of(self, username: str, at: dt.datetime, why: str = "everywhere") -> int:
        """End every open session of ``username``; how many there were."""
        return self._db.execute(
            "UPDATE sessions SET ended_at = ?, ended_why = ? WHERE username = ? AND ended_at IS NULL",
            (at.isoformat(), why, username),
        ).rowcount

    # --- bearer tokens of machine clients ----------------------------------------------------------------

    def issue_token(self, username: str, label: str, at: dt.datetime) -> tuple[str, str]:
        """A new bearer token for ``username``: (token id, the token). The token is shown once, never stored."""
        token_id = secrets.token_hex(4)
        token = f"{TOKEN_PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
        self._db.execute(
            "INSERT INTO api_tokens (token_id, digest, username, label, created_at) VALUES (?, ?, ?, ?, ?)",
            (token_id, _digest(token), username, label, at.isoformat()),
        )
        return token_id, token

    def revoke_token(self, token_id: str, at: dt.datetime) -> None:
        changed = self._db.execute(
            "UPDATE api_tokens SET revoked_at = ? WHERE token_id = ? AND revoked_at IS NULL", (at.isoformat(), token_id)
        ).rowcount
        if not changed:
            raise TokenError(f"no active token {token_id!r} (see `shian console token list`)")

    def tokens(self) -> list[ApiToken]:
        rows = self._db.execute(
            "SELECT token_id, username, label, created_at, revoked_at FROM api_tokens ORDER BY created_at"
        ).fetchall()
        return [ApiToken(*row) for row in rows]

    def token_user(self, token: str) -> str | None:
        """The account an active token acts for, or None."""
        row = self._db.execute(
            "SELECT username FROM api_tokens WHERE digest = ? AND revoked_at IS NULL", (_digest(token),)
        ).fetchone()
        return str(row[0]) if row else None

    # --- the tokens in public URLs: one canteen's kiosk or parents' pages, and nothing else -----------------

    def issue_public_token(self, canteen_id: str, purpose: PublicPurpose, at: dt.datetime) -> tuple[str, str]:
        token_id = secrets.token_hex(4)
        token = secrets.token_urlsafe(24)  # goes into a URL typed on a display's remote: no prefix
        self._db.execute(
            "INSERT INTO public_tokens (token_id, digest, canteen_id, purpose, created_at, link_token)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (token_id, _digest(token), canteen_id, purpose, at.isoformat(), token if purpose == "public" else None),
        )
        return token_id, token

    def link_token(self, canteen_id: str) -> str | None:
        """The newest active token of the canteen's parents' page, for the link a digest carries."""
        row = self._db.execute(
            "SELECT link_token FROM public_tokens WHERE canteen_id = ? AND purpose = 'public' AND revoked_at IS NULL"
            " ORDER BY created_at DESC LIMIT 1",
            (canteen_id,),
        ).fetchone()
        return str(row[0]) if row and row[0] else None

    def revoke_public_token(self, token_id: str, at: dt.datetime) -> None:
        changed = self._db.execute(
            "UPDATE public_tokens SET revoked_at = ? WHERE token_id = ? AND revoked_at IS NULL",
            (at.isoformat(), token_id),
        ).rowcount
        if not changed:
            raise TokenError(f"no active token {token_id!r} (see `shian kiosk list`)")

    def public_tokens(self) -> list[tuple[str, str, str, str, str | None]]:
        """(token id, canteen, purpose, issued, revoked) of every public token."""
        rows = self._db.execute(
            "SELECT token_id, canteen_id, purpose, created_at, revoked_at FROM public_tokens ORDER BY created_at"
        ).fetchall()
        return [(str(r[0]), str(r[1]), str(r[2]), str(r[3]), r[4]) for r in rows]

    def opens(self, token: str | None, canteen_id: str, purpose: PublicPurpose) -> bool:
        """Whether ``token`` is an active token of ``purpose`` for exactly this canteen."""
        if not token:
            return False
        row = self._db.execute(
            "SELECT 1 FROM public_tokens WHERE digest = ? AND canteen_id = ? AND purpose = ? AND revoked_at IS NULL",
            (_digest(token), canteen_id, purpose),
        ).fetchone()
        return row is not None
