"""The PostgreSQL store: `NEWS_DB=postgresql://…` (the `postgres` extra installs asyncpg).

`PostgresStore` is the second implementation of `NewsStore` (core/store/protocol.py):
the query families of the SQLite store run on it through a dialect translation
(dialect.py); full-text search is its own (queries.py, fts.py); the schema is a twin of
SQLite's migrations (schema.py); ingest writes through `PostgresArchiveWriter`.
asyncpg is imported only when a PostgreSQL store is opened: the default install (SQLite)
does without it.
"""

from __future__ import annotations

import asyncio
import sqlite3
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from core.store.pins import PinQueries
from core.store.postgres.base import PostgresBase
from core.store.postgres.claims import PostgresClaimQueries
from core.store.postgres.queries import PostgresStoryQueries
from core.store.postgres.schema import migrate
from core.store.protocol import NewsStore
from core.store.subscriptions import SubscriptionQueries

if TYPE_CHECKING:
    from core.store.postgres.writer import PostgresArchiveWriter

CONNECT_TIMEOUT_SECONDS = 10
# asyncpg prepares every statement; after five runs PostgreSQL may switch a prepared
# statement to a generic plan, blind to its parameters: one plan for a word in half the
# stories and for a word in three. Searches need a plan for their words.
SERVER_SETTINGS = {"plan_cache_mode": "force_custom_plan"}


class PostgresUnavailable(sqlite3.OperationalError):
    """The PostgreSQL server cannot be reached or refuses the connection.

    A `sqlite3.DatabaseError`, so that the places reporting a database problem in one
    line (the CLI, start-up) report this one too.
    """


def redacted(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


async def connect(url: str) -> Any:
    """An asyncpg connection, or `PostgresUnavailable` saying why there is none."""
    try:
        import asyncpg
    except ImportError as exc:
        raise PostgresUnavailable("asyncpg is not installed: pip install '.[postgres]'") from exc
    try:
        return await asyncpg.connect(
            url, timeout=CONNECT_TIMEOUT_SECONDS, server_settings=SERVER_SETTINGS
        )
    except (TimeoutError, OSError, asyncpg.PostgresError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise PostgresUnavailable(f"cannot connect: {reason}") from exc


def check_postgres(url: str) -> None:
    """At start-up (in a thread): raise `PostgresUnavailable` if the server cannot be
    reached or the database not written."""

    async def check() -> None:
        conn = await connect(url)
        try:
            await migrate(conn)
        except Exception as exc:
            raise PostgresUnavailable(str(exc).splitlines()[0]) from exc
        finally:
            await conn.close()

    asyncio.run(check())


class PostgresStore(
    PostgresStoryQueries, SubscriptionQueries, PinQueries, PostgresClaimQueries, PostgresBase
):
    """The PostgreSQL `NewsStore`: one asyncpg connection for the bot, and a connection
    of its own for each ingest (`archive_writer`)."""

    @classmethod
    async def open(cls, url: str) -> PostgresStore:
        conn = await connect(url)
        try:
            await migrate(conn)
        except BaseException:
            await conn.close()
            raise
        return cls(url, conn)

    async def close(self) -> None:
        await self.db.close()

    async def checkpoint(self) -> None:
        """Nothing to do: the server checkpoints on its own."""

    async def __aenter__(self) -> PostgresStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def archive_writer(self) -> PostgresArchiveWriter:
        from core.store.postgres.writer import PostgresArchiveWriter

        return PostgresArchiveWriter.open_url(self.url)


if TYPE_CHECKING:  # a type checker proves that the PostgreSQL store keeps the contract
    _keeps_the_contract: type[NewsStore] = PostgresStore
