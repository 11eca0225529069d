"""What every query family of the SQLite store shares: the connection, transactions, state.

`StoryQueries`, `SubscriptionQueries` and `PinQueries` each derive from `StoreBase` and
use only what it defines (plus the row functions of their modules); `Store` combines them.
Rows come back as `sqlite3.Row`, read by column name.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

# asyncio and aiosqlite are imported where they are used: the command line's read commands
# run the store without an event loop, and never load them (core/store/direct.py).
if TYPE_CHECKING:
    import asyncio

    import aiosqlite

Params = Sequence[Any]
T = TypeVar("T")


class StoreBase:
    """One aiosqlite connection shared by every coroutine of the bot (the command line's
    read commands: a `DirectConnection`, core/store/direct.py).

    `atomic()` holds a lock for its whole transaction: a statement of another task waits
    for the COMMIT instead of joining (and maybe being rolled back with) the transaction.
    """

    # IMMEDIATE: wait for ingest's write lock now (busy_timeout), rather than fail when a
    # read inside the transaction turns into a write. (PostgreSQL's store: plain BEGIN.)
    BEGIN = "BEGIN IMMEDIATE"

    def __init__(
        self, path: Path, db: aiosqlite.Connection, lock: AbstractAsyncContextManager[Any]
    ) -> None:
        self.path = path
        self.db = db
        self._lock = lock  # an asyncio.Lock; `DirectStore`, with no other task, has none
        self._owner: asyncio.Task[object] | None = None  # the task inside `atomic()`
        self._savepoints = 0

    @asynccontextmanager
    async def atomic(self) -> AsyncIterator[None]:
        """A transaction: BEGIN … COMMIT at the top level, a SAVEPOINT when nested.

        On any error (or cancellation) everything done inside is rolled back.
        """
        if self._owner is not None and self._owner is _current_task():
            self._savepoints += 1
            name = f"atomic_{self._savepoints}"
            await self.db.execute(f"SAVEPOINT {name}")
            try:
                yield
            except BaseException:
                await self.db.execute(f"ROLLBACK TO {name}")
                await self.db.execute(f"RELEASE {name}")
                raise
            else:
                await self.db.execute(f"RELEASE {name}")
            finally:
                self._savepoints -= 1
            return
        async with self._lock:
            self._owner = _current_task()
            try:
                await self.db.execute(self.BEGIN)
                try:
                    yield
                    await self.db.execute("COMMIT")
                except BaseException:
                    await self.db.execute("ROLLBACK")
                    raise
            finally:
                self._owner = None

    def _turn(self) -> AbstractAsyncContextManager[Any]:
        """Outside the task holding a transaction, wait until it ends."""
        if self._owner is not None and self._owner is _current_task():
            return nullcontext()
        return self._lock

    async def _rows(self, query: str, params: Params = ()) -> list[sqlite3.Row]:
        async with self._turn():
            return list(await self.db.execute_fetchall(query, params))

    async def _row(self, query: str, params: Params = ()) -> sqlite3.Row | None:
        rows = await self._rows(query, params)
        return rows[0] if rows else None

    async def _execute(self, query: str, params: Params = ()) -> int:
        """Run one statement; returns how many rows it changed."""
        async with self._turn():
            cursor = await self.db.execute(query, params)
            count = cursor.rowcount
            await cursor.close()
            return count

    async def _executemany(self, query: str, params: Iterable[Params]) -> int:
        """Run one statement per parameter row; returns how many rows they changed."""
        async with self._turn():
            before = self.db.total_changes
            await self.db.executemany(query, params)
            return self.db.total_changes - before

    async def _in_thread(self, work: Callable[..., T], *args: Any) -> T:
        """`work(*args)` in a worker thread, for work long enough to hold up the event loop."""
        import asyncio

        return await asyncio.to_thread(work, *args)

    async def get_state(self, key: str) -> str | None:
        row = await self._row("SELECT value FROM bot_state WHERE key = ?", (key,))
        return None if row is None else row["value"]

    async def set_state(self, key: str, value: str) -> None:
        await self._execute(
            "INSERT INTO bot_state (key, value) VALUES (?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    async def _topic_id(self, topic: str) -> int | None:
        row = await self._row("SELECT id FROM topics WHERE key = ?", (topic.strip().casefold(),))
        return None if row is None else row["id"]


def _current_task() -> asyncio.Task[Any] | None:
    import asyncio

    return asyncio.current_task()
