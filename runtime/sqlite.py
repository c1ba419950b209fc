"""How Shian opens its SQLite files (the spool, the rules store, the local time-series store): one place for
the settings every one of them needs."""

from __future__ import annotations

import sqlite3
from pathlib import Path

#: Seconds a writer waits for another process's transaction (gateway, drain and rules share the spool).
BUSY_TIMEOUT_S = 30.0


def open_database(path: Path) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit: ``BEGIN IMMEDIATE``), usable from the threads
    that ``asyncio.to_thread`` picks, with the write-ahead log so that readers never block the writer, and an
    fsync of the log on every commit: a commit here is a promise (an acknowledgement, an alert, a checkpoint)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_S)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
    except sqlite3.Error:
        db.close()
        raise
    return db
