"""`python -m bot migrate --to postgresql://…`: a SQLite deployment moved to PostgreSQL.

Every table is copied as it is, stories included, rather than re-ingested: deliveries,
pins, digests and the change log refer to stories by their row number, and a pinned
story since removed from the archive exists only in the database. With the stories'
rows the archive's file stamps are copied too, so the bot's first rescan on PostgreSQL
finds nothing changed, and the delivery watermark, so nothing is posted again: a sent
delivery keeps its message id and its look (`style`), a pending one stays pending.

Idempotent: the copy replaces what the target holds, in one transaction; a second run
copies the same rows again. It refuses a target that holds stories it did not copy
(another deployment's database).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.store.postgres import connect, fts, redacted
from core.store.postgres.schema import migrate
from core.store.schema import connect as sqlite_connect
from core.store.schema import migrate as sqlite_migrate

# In the order the foreign keys need (a table after those it refers to).
TABLES = (
    "providers",
    "stories",
    "topics",
    "story_topics",
    "coverage",
    "heat_history",
    "archive_files",
    "bot_state",
    "story_changes",
    "subscriptions",
    "deliveries",
    "fanouts",
    "channel_notices",
    "pins",
    "term_stats",
    "term_stats_meta",
    "source_state",
    "story_sources",
    "digest_items",
    "digests",
    "story_totals",
)
# Columns numbered by the database: the next number follows the copied ones.
IDENTITIES = (
    ("providers", "id"),
    ("topics", "id"),
    ("story_changes", "seq"),
    ("subscriptions", "id"),
    ("fanouts", "id"),
    ("pins", "id"),
)
MIGRATED_FROM = "migrated_from"  # bot_state key: the SQLite file the copy came from
_TEXT = ("title", "excerpt", "topics_text", "provider_name")


class MoveRefused(Exception):
    """The target is another deployment's database; the message says so in one line."""


@dataclass
class MoveReport:
    rows: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        interesting = ("stories", "subscriptions", "deliveries", "pins", "digests")
        counts = ", ".join(f"{self.rows.get(t, 0)} {t}" for t in interesting)
        return f"copied {sum(self.rows.values())} rows ({counts})"


async def move_to_postgres(source: Path, url: str) -> MoveReport:
    """Copy the SQLite database at `source` into the PostgreSQL database at `url`."""
    tables = _read_sqlite(source)
    conn = await connect(url)
    try:
        await migrate(conn)
        report = MoveReport()
        async with conn.transaction():
            await _refuse_another_deployment(conn, source, url)
            await conn.execute(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY")
            for table in TABLES:
                columns, rows = tables[table]
                if table == "stories":
                    columns, rows = _with_text_vectors(columns, rows)
                if table == "bot_state":
                    rows = [r for r in rows if r[columns.index("key")] != MIGRATED_FROM]
                    rows.append(
                        tuple(MIGRATED_FROM if c == "key" else str(source) for c in columns)
                    )
                if table == "stories":  # COPY's binary format has no tsvector: INSERT
                    marks = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
                    await conn.executemany(
                        f"INSERT INTO stories ({', '.join(columns)}) VALUES ({marks})", rows
                    )
                else:
                    await conn.copy_records_to_table(table, records=rows, columns=columns)
                report.rows[table] = len(rows)
            for table, column in IDENTITIES:
                await conn.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'),"
                    f" coalesce((SELECT max({column}) FROM {table}), 0) + 1, false)"
                )
        return report
    finally:
        await conn.close()


async def _refuse_another_deployment(conn: Any, source: Path, url: str) -> None:
    has_stories = await conn.fetchval("SELECT EXISTS (SELECT 1 FROM stories)")
    origin = await conn.fetchval("SELECT value FROM bot_state WHERE key = $1", MIGRATED_FROM)
    if has_stories and origin != str(source):
        raise MoveRefused(
            f"{redacted(url)} already holds stories"
            + (f" copied from {origin}" if origin else " not copied from this database")
            + ": migrate into an empty database"
        )


def _read_sqlite(source: Path) -> dict[str, tuple[list[str], list[tuple[Any, ...]]]]:
    """Every table's columns and rows (a consistent snapshot: one read transaction)."""
    if not source.is_file():
        raise sqlite3.OperationalError(f"unable to open database file {source}")
    conn = sqlite_connect(source)
    try:
        sqlite_migrate(conn)  # an older deployment's database is brought up to date first
        conn.execute("BEGIN")
        out = {}
        for table in TABLES:
            cursor = conn.execute(f"SELECT * FROM {table}")
            columns = [d[0] for d in cursor.description]
            out[table] = (columns, [tuple(row) for row in cursor])
        conn.execute("COMMIT")
        return out
    finally:
        conn.close()


def _with_text_vectors(
    columns: list[str], rows: list[tuple[Any, ...]]
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Stories with their full-text vector (what the archive writer adds as it inserts)."""
    at = [columns.index(c) for c in _TEXT]
    vectors = fts.document_vectors([tuple(row[i] for i in at) for row in rows])
    return [*columns, "fts", "fts_tokens"], [
        (*row, vector, tokens) for row, (vector, tokens) in zip(rows, vectors, strict=True)
    ]
