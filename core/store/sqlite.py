"""The SQLite `NewsStore` (`Store`), and opening the store NEWS_DB names.

Imported at first use through `core.store` (see there): it loads asyncio and aiosqlite.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import aiosqlite

from core.store import is_postgres_url
from core.store.claims import ClaimQueries
from core.store.pins import PinQueries
from core.store.protocol import NewsStore
from core.store.schema import BUSY_TIMEOUT_MS, connect, migrate
from core.store.stories import StoryQueries
from core.store.subscriptions import SubscriptionQueries


async def open_store(target: str | Path) -> NewsStore:
    """The store NEWS_DB names: a `postgresql://` URL, else a SQLite file (created)."""
    if is_postgres_url(target):
        from core.store.postgres import PostgresStore

        return await PostgresStore.open(str(target))
    return await Store.open(target)


@asynccontextmanager
async def opened_store(target: str | Path) -> AsyncIterator[NewsStore]:
    """`open_store` for an `async with`: the store is closed at its end."""
    store = await open_store(target)
    try:
        yield store
    finally:
        await store.close()


# Address space, not memory: the OS page cache backs it. Large enough to map a 300k-story
# database (565 MB) whole; SQLite caps it at its compile-time maximum (2 GB by default).
MMAP_BYTES = 2048 * 1024 * 1024
AUTOCHECKPOINT_PAGES = 10_000  # 40 MB of log at most (SQLite's default: 1,000 pages)


def check_database(path: str | Path) -> None:
    """At start-up: raise `sqlite3.DatabaseError` if the database is damaged or read-only.

    A missing database is created (with its folder), as `Store.open` would. A
    PostgreSQL URL: the server is reached and the schema migrated, else
    `PostgresUnavailable` (a `sqlite3.DatabaseError` too) says why not.
    """
    if is_postgres_url(path):
        from core.store.postgres import check_postgres

        return check_postgres(str(path))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = connect(path)
    try:
        problems = [row["quick_check"] for row in conn.execute("PRAGMA quick_check")]
        if problems != ["ok"]:
            raise sqlite3.DatabaseError(f"database disk image is malformed: {problems[0]}")
        # A write lock shows a database the bot's user may read but not write.
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
    finally:
        conn.close()


class Store(StoryQueries, SubscriptionQueries, PinQueries, ClaimQueries):
    """The SQLite `NewsStore`: one aiosqlite connection (see `StoreBase`) for the bot, and
    a synchronous connection of its own for each ingest (`archive_writer`)."""

    @classmethod
    async def open(cls, path: str | Path) -> Store:
        path = Path(path)
        await asyncio.to_thread(_migrate, path)
        db = await aiosqlite.connect(path, isolation_level=None)
        db.row_factory = sqlite3.Row
        await db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        await db.execute("PRAGMA foreign_keys = ON")
        await db.execute("PRAGMA synchronous = NORMAL")
        # The poller checkpoints after its sends (`checkpoint`): a commit that crosses the
        # default 1,000 pages would copy the log into the database before the posts go
        # out. The higher bound keeps the log from growing should nothing checkpoint.
        await db.execute(f"PRAGMA wal_autocheckpoint = {AUTOCHECKPOINT_PAGES}")
        # Searches read scattered story rows: mapped pages skip a copy per page read.
        await db.execute(f"PRAGMA mmap_size = {MMAP_BYTES}")
        return cls(path, db)

    async def close(self) -> None:
        await self.db.close()

    async def checkpoint(self) -> None:
        # PASSIVE: copies what no reader still needs; never waits for one.
        await self._rows("PRAGMA wal_checkpoint(PASSIVE)")

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def archive_writer(self) -> SqliteArchiveWriter:
        # Imported here: it loads the parser, which the read commands never need.
        from core.store.archive_writer import SqliteArchiveWriter

        return SqliteArchiveWriter.open(self.path)


def _migrate(path: Path) -> None:
    conn = connect(path)
    try:
        migrate(conn)
    finally:
        conn.close()


if TYPE_CHECKING:
    from core.store.archive_writer import SqliteArchiveWriter

if TYPE_CHECKING:  # a type checker proves that the SQLite store keeps the contract
    _keeps_the_contract: type[NewsStore] = Store
