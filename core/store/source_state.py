"""What the bot remembers of each source it follows (the `source_state` table)."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass


@dataclass
class SourceState:
    name: str
    kind: str
    location: str
    last_attempt_at: int | None = None
    last_success_at: int | None = None
    items: int = 0
    last_error: str | None = None
    failures: int = 0
    next_fetch_at: int | None = None
    etag: str | None = None
    last_modified: str | None = None
    git_commit: str | None = None
    title: str | None = None


_COLUMNS = tuple(SourceState.__dataclass_fields__)


def load_states(conn: sqlite3.Connection) -> dict[str, SourceState]:
    query = f"SELECT {', '.join(_COLUMNS)} FROM source_state"
    cursor = conn.cursor()
    cursor.row_factory = sqlite3.Row  # read by name whatever the connection's factory
    return {row["name"]: SourceState(**dict(row)) for row in cursor.execute(query)}


def save_state(conn: sqlite3.Connection, state: SourceState) -> None:
    query = f"""
        INSERT OR REPLACE INTO source_state ({", ".join(_COLUMNS)})
        VALUES ({", ".join("?" * len(_COLUMNS))})
    """
    conn.execute(query, [getattr(state, c) for c in _COLUMNS])
