"""The SQLite store: every SQL statement of the project lives in this package."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import aiosqlite

from core.store.pins import Pin, PinQueries
from core.store.schema import BUSY_TIMEOUT_MS, connect, migrate
from core.store.stories import StoryQueries, quote_fts
from core.store.subscriptions import SubscriptionQueries

__all__ = ["Pin", "Store", "check_database", "quote_fts"]

MMAP_BYTES = 256 * 1024 * 1024  # address space, not memory: the OS page cache backs it


def check_database(path: str | Path) -> None:
    """At start-up: raise `sqlite3.DatabaseError` if the database is damaged or read-only.

    A missing database is created (with its folder), as `Store.open` would.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = connect(path)
    try:
        problems = [row[0] for row in conn.execute("PRAGMA quick_check")]
        if problems != ["ok"]:
            raise sqlite3.DatabaseError(f"database disk image is malformed: {problems[0]}")
        # A write lock shows a database the bot's user may read but not write.
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
    finally:
        conn.close()


class Store(StoryQueries, SubscriptionQueries, PinQueries):
    """The bot's async handle on the database (one aiosqlite connection)."""

    def __init__(self, path: Path, db: aiosqlite.Connection) -> None:
        self.path = path
        self.db = db

    @classmethod
    async def open(cls, path: str | Path) -> Store:
        path = Path(path)
        await asyncio.to_thread(_migrate, path)
        db = await aiosqlite.connect(path, isolation_level=None)
        await db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        await db.execute("PRAGMA foreign_keys = ON")
        await db.execute("PRAGMA synchronous = NORMAL")
        # Searches read scattered story rows: mapped pages skip a copy per page read.
        await db.execute(f"PRAGMA mmap_size = {MMAP_BYTES}")
        return cls(path, db)

    async def close(self) -> None:
        await self.db.close()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def get_state(self, key: str) -> str | None:
        rows = await self.db.execute_fetchall("SELECT value FROM bot_state WHERE key = ?", (key,))
        return rows[0][0] if rows else None

    async def set_state(self, key: str, value: str) -> None:
        await self.db.execute(
            "INSERT INTO bot_state (key, value) VALUES (?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )


def _migrate(path: Path) -> None:
    conn = connect(path)
    try:
        migrate(conn)
    finally:
        conn.close()
