"""What the PostgreSQL store's query families share: one asyncpg connection, transactions.

`PostgresBase` stands where `StoreBase` does for SQLite: the query families of
`core.store` (written once, run on both backends) call `_rows`, `_row`, `_execute` and
`_executemany`, which here translate the statement (`dialect.to_postgres`) and run it
on asyncpg. Rows are asyncpg `Record`s, read by column name like `sqlite3.Row`.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable
from typing import Any

from core.store.base import Params, StoreBase
from core.store.postgres.dialect import to_postgres

_COUNT = re.compile(r"(\d+)$")


def changed_rows(status: str) -> int:
    """How many rows a statement changed, from asyncpg's status ("UPDATE 3", "INSERT 0 1")."""
    found = _COUNT.search(status or "")
    return int(found.group(1)) if found else 0


class PostgresBase(StoreBase):
    """One asyncpg connection shared by every coroutine of the bot, as SQLite's store has.

    `atomic()` is `StoreBase.atomic` (BEGIN, SAVEPOINT, ROLLBACK TO, RELEASE are spelled
    alike): a lock held for the transaction, so another task's statement waits for the
    COMMIT instead of joining the transaction.
    """

    BEGIN = "BEGIN"
    db: Any  # an asyncpg connection (asyncpg has no type hints)

    def __init__(self, url: str, db: Any) -> None:
        self.url = url
        self.db = db
        self._lock = asyncio.Lock()
        self._owner: asyncio.Task[object] | None = None
        self._savepoints = 0

    async def _rows(self, query: str, params: Params = ()) -> list[Any]:
        async with self._turn():
            return list(await self.db.fetch(to_postgres(query), *params))

    async def _execute(self, query: str, params: Params = ()) -> int:
        async with self._turn():
            return changed_rows(await self.db.execute(to_postgres(query), *params))

    async def _executemany(self, query: str, params: Iterable[Params]) -> int:
        """One statement per parameter row (asyncpg's executemany does not count rows)."""
        statement = to_postgres(query)
        changed = 0
        async with self._turn():
            for row in params:
                changed += changed_rows(await self.db.execute(statement, *row))
        return changed

    async def _pg_rows(self, query: str, *params: object) -> list[Any]:
        """A statement written for PostgreSQL (`$1` placeholders), not translated."""
        async with self._turn():
            return list(await self.db.fetch(query, *params))
