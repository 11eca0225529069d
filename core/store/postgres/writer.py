"""The PostgreSQL store's `ArchiveWriter`: the SQLite writer's logic on a PostgreSQL link.

Ingest calls its writer synchronously from a worker thread. `SyncConnection` gives
that thread a blocking handle on an asyncpg connection, on a private event loop run in
that thread. It speaks enough of sqlite3's connection API (`execute` → rows, `fetchone`,
`rowcount`; `executemany`) for `SqliteArchiveWriter`'s statements, translated by
`dialect.to_postgres`; what differs (new stories with their full-text vectors, term
counts, upserts SQLite spells INSERT OR REPLACE) is overridden here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterable, Iterator, Sequence
from typing import Any, TypeVar

from core.store.archive_writer import _NEW_COLUMNS, SqliteArchiveWriter
from core.store.postgres import fts
from core.store.postgres.base import changed_rows
from core.store.postgres.dialect import to_postgres
from core.store.postgres.schema import migrate
from core.store.source_state import SourceState

T = TypeVar("T")
_READS = ("SELECT", "WITH")


class Rows:
    """What `SyncConnection.execute` returns: its rows, iterable, and sqlite3's helpers."""

    def __init__(self, rows: list[Any], rowcount: int) -> None:
        self.rows = rows
        self.rowcount = rowcount

    def __iter__(self) -> Iterator[Any]:
        return iter(self.rows)

    def fetchone(self) -> Any:
        return self.rows[0] if self.rows else None

    def fetchall(self) -> list[Any]:
        return self.rows


class SyncConnection:
    """A blocking asyncpg connection for a worker thread (see the module's notes).

    Its event loop is private and runs only inside `run`, in the calling thread: the
    writer belongs to the one thread that uses it, as ingest's does.
    """

    def __init__(self, url: str) -> None:
        import asyncpg  # the optional extra: loaded only when PostgreSQL is used

        self._loop = asyncio.new_event_loop()
        try:
            self.conn = self.run(asyncpg.connect(url))
        except BaseException:
            self._loop.close()
            raise

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        return self._loop.run_until_complete(work)

    def execute(self, query: str, params: Sequence[Any] = ()) -> Rows:
        statement = to_postgres(query)
        if statement.lstrip().upper().startswith(_READS):
            rows = self.run(self.conn.fetch(statement, *params))
            return Rows(list(rows), len(rows))
        return Rows([], changed_rows(self.run(self.conn.execute(statement, *params))))

    def executemany(self, query: str, params: Iterable[Sequence[Any]]) -> None:
        rows = list(params)
        if rows:
            self.run(self.conn.executemany(to_postgres(query), rows))

    def close(self) -> None:
        try:
            self.run(self.conn.close())
        finally:
            self._loop.close()


class PostgresArchiveWriter(SqliteArchiveWriter):
    """`SqliteArchiveWriter` on a `SyncConnection` (its rows are asyncpg `Record`s)."""

    conn: Any
    # As SQLite's stories_vocab: the terms of the vectors (the terms FTS5 would list).
    _TERM_COUNTS = "SELECT word, ndoc FROM ts_stat('SELECT fts FROM stories') WHERE ndoc >= ?"
    _new_stories = 0  # inserted by this writer since its last VACUUM

    @classmethod
    def open_url(cls, url: str) -> PostgresArchiveWriter:
        """A writer on its own connection to the database at `url`, migrated."""
        conn = SyncConnection(url)
        try:
            conn.run(migrate(conn.conn))
            return cls(conn)  # type: ignore[arg-type]  # sqlite3's API, as far as it is used
        except BaseException:
            conn.close()
            raise

    def _prepare_staging(self) -> None:
        """Nothing to stage: PostgreSQL takes a batch's new stories in one executemany."""

    def _insert_new(self, rows: list[tuple[object, ...]]) -> None:
        """New stories, with the full-text vector of their text (see fts.py)."""
        self._new_stories += len(rows)
        text_at = [_NEW_COLUMNS.index(c) for c in _TEXT]
        vectors = fts.document_vectors(
            [tuple(str(row[i]) for i in text_at) for row in rows]  # type: ignore[misc]
        )
        columns = ", ".join((*_NEW_COLUMNS, "fts", "fts_tokens"))
        n = len(_NEW_COLUMNS)
        marks = ", ".join(f"${i}" for i in range(1, n + 3))
        query = f"INSERT INTO stories ({columns}) VALUES ({marks})"
        self.conn.run(
            self.conn.conn.executemany(
                query, [(*row, *vector) for row, vector in zip(rows, vectors, strict=True)]
            )
        )

    def _text_updated(self, rowid: int, text: tuple[str, ...]) -> None:
        """A story's text changed: its full-text vector too (SQLite's trigger does this)."""
        ((vector, tokens),) = fts.document_vectors([text])  # type: ignore[list-item]
        self.conn.execute(
            "UPDATE stories SET fts = ?::tsvector, fts_tokens = ? WHERE rowid = ?",
            (vector, tokens, rowid),
        )

    def _tuples(self, query: str, params: Sequence[object]) -> list[Any]:
        return [tuple(row) for row in self.conn.execute(query, params)]

    def source_states(self) -> dict[str, SourceState]:
        columns = tuple(SourceState.__dataclass_fields__)
        rows = self.conn.execute(f"SELECT {', '.join(columns)} FROM source_state")
        return {row["name"]: SourceState(**dict(row)) for row in rows}

    def save_source_state(self, state: SourceState) -> None:
        columns = tuple(SourceState.__dataclass_fields__)
        updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c != "name")
        query = f"""
            INSERT INTO source_state ({", ".join(columns)})
            VALUES ({", ".join("?" * len(columns))})
            ON CONFLICT (name) DO UPDATE SET {updates}
        """
        with self._transaction():
            self.conn.execute(query, [getattr(state, c) for c in columns])

    def set_ingest_unfinished(self, unfinished: bool) -> None:
        with self._transaction():
            self._flagged_unfinished = unfinished
            if unfinished:
                self.conn.execute(
                    "INSERT INTO bot_state (key, value) VALUES ('ingest:unfinished', '1')"
                    " ON CONFLICT (key) DO UPDATE SET value = excluded.value"
                )
            else:
                self.conn.execute("DELETE FROM bot_state WHERE key = 'ingest:unfinished'")

    def count_terms(self) -> None:
        super().count_terms()
        if self._new_stories >= BULK_STORIES:
            # After a bulk load, what autovacuum would do a while later, now: planner
            # statistics (the first searches get good plans) and the visibility map
            # (counting a topic's stories reads the index alone). Outside a transaction.
            self.conn.execute("VACUUM (ANALYZE) stories, story_topics, topics, term_stats")
            self._new_stories = 0

    def _terms_counted(self) -> None:
        """bm25's collection sizes, which FTS5 keeps itself (see fts.py)."""
        size = self.conn.execute(
            "SELECT count(*) AS n, coalesce(sum(fts_tokens), 0) AS tokens FROM stories"
        ).fetchone()
        self.conn.executemany(
            "INSERT INTO bot_state (key, value) VALUES (?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            list(zip(fts.SIZE_KEYS, (str(size["n"]), str(size["tokens"])), strict=True)),
        )


_TEXT = ("title", "excerpt", "topics_text", "provider_name")
BULK_STORIES = 1000  # new stories from which an ingest vacuums and analyzes
