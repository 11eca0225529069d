"""The SQLite store without an event loop, for the command line's read commands.

`python -m bot search`, `story`, `related` and `topics` make a few queries and exit:
importing asyncio and aiosqlite took a quarter of such a process (≈20 ms of 80 at 100k
stories; BENCHMARKS.md, issue 12, figure 7). The store's query methods are coroutines that
only ever wait for aiosqlite; on `DirectConnection`, whose methods run each statement
on a plain sqlite3 connection and return at once, they never wait, and `run_now` runs
them to their end without an event loop. The same queries, one copy of each.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Coroutine, Iterable
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from core.store import STORE_PRAGMAS, Store
from core.store.base import Params
from core.store.schema import connect, migrate

if TYPE_CHECKING:
    import aiosqlite

T = TypeVar("T")


def run_now(coroutine: Coroutine[Any, Any, T]) -> T:
    """The result of a coroutine that never waits, run without an event loop."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return cast(T, done.value)
    coroutine.close()
    raise RuntimeError(f"{coroutine!r} waited for something: it needs an event loop")


class DirectCursor:
    """What the store reads of an aiosqlite cursor: `rowcount`, and `close()`."""

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self.rowcount = cursor.rowcount
        cursor.close()

    async def close(self) -> None:
        pass


class DirectConnection:
    """The part of aiosqlite's `Connection` that `StoreBase` calls, run on the spot."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    @property
    def total_changes(self) -> int:
        return self.conn.total_changes

    async def execute(self, sql: str, parameters: Params = ()) -> DirectCursor:
        return DirectCursor(self.conn.execute(sql, parameters))

    async def execute_fetchall(self, sql: str, parameters: Params = ()) -> list[sqlite3.Row]:
        return self.conn.execute(sql, parameters).fetchall()

    async def executemany(self, sql: str, parameters: Iterable[Params]) -> DirectCursor:
        return DirectCursor(self.conn.executemany(sql, parameters))

    async def close(self) -> None:
        self.conn.close()


class DirectStore(Store):
    """`Store` on a `DirectConnection`: its coroutines run with `run_now`, one at a time.

    No other task shares the connection, so statements take no turns (no lock); a
    transaction (`atomic`) needs an event loop and is not for this store.
    """

    @classmethod
    def open_now(cls, path: str | Path) -> DirectStore:
        """The database at `path`, created and migrated as `Store.open` does."""
        path = Path(path)
        conn = connect(path)
        try:
            migrate(conn)
            for pragma in STORE_PRAGMAS:
                conn.execute(pragma)
        except BaseException:
            conn.close()
            raise
        # Duck-typed: DirectConnection has every method of aiosqlite's the store calls.
        return cls(path, cast("aiosqlite.Connection", DirectConnection(conn)), nullcontext())

    async def _in_thread(self, work: Callable[..., T], *args: Any) -> T:
        return work(*args)  # no event loop to keep free
