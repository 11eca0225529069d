"""Writing ingest results into SQLite.

Ingest is bulk work done off the event loop, so it uses a plain synchronous
sqlite3 connection in a worker thread: per-story statements cost microseconds
there instead of a thread hop each. WAL lets the bot keep reading meanwhile.
"""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass

from bot.archive import ArchiveFile, ParseResult
from bot.models import Rejection, Skipped, Story


@dataclass(frozen=True, slots=True)
class KnownFile:
    size: int
    mtime_ns: int
    hash: str


@dataclass
class WriteCounts:
    added: int = 0
    updated: int = 0
    unchanged: int = 0


def epoch(moment) -> int | None:
    return None if moment is None else int(moment.timestamp())


def fingerprint(story: Story) -> str:
    """Changes whenever anything a reader could see of the story changes."""
    return hashlib.blake2b(repr(story).encode(), digest_size=16).hexdigest()


class ArchiveWriter:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self._topic_ids: dict[str, int] = {}
        self._provider_ids: dict[tuple[str, str], int] = {}

    def known_files(self) -> dict[str, KnownFile]:
        query = "SELECT path, size, mtime_ns, hash FROM archive_files"
        return {row[0]: KnownFile(*row[1:]) for row in self.conn.execute(query)}

    def touch_files(self, files: list[ArchiveFile]) -> None:
        """Record a new size/mtime for files whose content hash did not change."""
        query = "UPDATE archive_files SET size = ?, mtime_ns = ? WHERE path = ?"
        with self._transaction():
            self.conn.executemany(query, [(f.size, f.mtime_ns, f.path) for f in files])

    def forget_files(self, paths: list[str]) -> None:
        query = "DELETE FROM archive_files WHERE path = ?"
        with self._transaction():
            self.conn.executemany(query, [(p,) for p in paths])

    def write(
        self, batch: list[tuple[ArchiveFile, str, ParseResult]], now: int
    ) -> tuple[WriteCounts, list[Rejection]]:
        """Apply one batch of parsed files in one transaction."""
        counts = WriteCounts()
        late_rejections: list[Rejection] = []
        with self._transaction():
            for file, digest, result in batch:
                story_url = None
                outcome, reason = "story", None
                if isinstance(result, Story):
                    try:
                        change = self._upsert_story(result, now)
                    except sqlite3.IntegrityError:
                        result = Rejection(file.path, f"short id {result.id} collides")
                        late_rejections.append(result)
                    else:
                        setattr(counts, change, getattr(counts, change) + 1)
                        story_url = result.canonical
                if isinstance(result, Rejection):
                    outcome, reason = "rejected", result.reason
                    # A broken edit keeps the story's last good version visible.
                    story_url = self._story_url_of(file.path)
                elif isinstance(result, Skipped):
                    outcome, reason = "skipped", result.category
                self.conn.execute(
                    """
                    INSERT INTO archive_files (path, size, mtime_ns, hash, story, outcome, reason)
                    VALUES (?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT (path) DO UPDATE SET
                        size = excluded.size, mtime_ns = excluded.mtime_ns, hash = excluded.hash,
                        story = excluded.story, outcome = excluded.outcome,
                        reason = excluded.reason
                    """,
                    (file.path, file.size, file.mtime_ns, digest, story_url, outcome, reason),
                )
        return counts, late_rejections

    def mark_removed(self, now: int) -> int:
        """Hide stories no archive file carries any more; returns how many were hidden."""
        with self._transaction():
            rows = self.conn.execute(
                """
                SELECT rowid FROM stories
                WHERE removed_at IS NULL
                  AND NOT EXISTS (SELECT 1 FROM archive_files f WHERE f.story = stories.canonical)
                """
            ).fetchall()
            for (rowid,) in rows:
                self.conn.execute(
                    "UPDATE stories SET removed_at = ?, updated_at = ? WHERE rowid = ?",
                    (now, now, rowid),
                )
                self.conn.execute("UPDATE story_topics SET visible = 0 WHERE story = ?", (rowid,))
        return len(rows)

    def count_topics(self) -> None:
        """Refresh each topic's count of visible stories (autocomplete reads it often)."""
        with self._transaction():
            self.conn.execute(
                """
                UPDATE topics SET story_count = (
                    SELECT count(*) FROM story_topics WHERE topic = topics.id AND visible = 1
                )
                """
            )

    def rejections(self) -> list[Rejection]:
        query = "SELECT path, reason FROM archive_files WHERE outcome = 'rejected' ORDER BY path"
        return [Rejection(path, reason) for path, reason in self.conn.execute(query)]

    def skipped_count(self) -> int:
        query = "SELECT count(*) FROM archive_files WHERE outcome = 'skipped'"
        return self.conn.execute(query).fetchone()[0]

    # -- internals -------------------------------------------------------------

    def _transaction(self):
        return _Transaction(self.conn)

    def _story_url_of(self, path: str) -> str | None:
        row = self.conn.execute(
            "SELECT story FROM archive_files WHERE path = ?", (path,)
        ).fetchone()
        return row[0] if row else None

    def _upsert_story(self, story: Story, now: int) -> str:
        """Insert or update one story; returns 'added', 'updated' or 'unchanged'."""
        print_ = fingerprint(story)
        existing = self.conn.execute(
            "SELECT rowid, fingerprint, heat, removed_at FROM stories WHERE canonical = ?",
            (story.canonical,),
        ).fetchone()
        values = (
            story.url,
            story.title,
            story.excerpt,
            epoch(story.published_at),
            story.type,
            story.heat,
            story.quality,
            int(story.published),
            self._provider_id(story),
            story.provider,
            story.image_url,
            "\n".join(story.topics),
        )
        if existing is None:
            rowid = self.conn.execute(
                """
                INSERT INTO stories (
                    url, title, excerpt, published_at, type, heat, quality, published, provider_id,
                    provider_name, image_url, topics_text,
                    id, canonical, fingerprint, first_seen_at, updated_at, heat_changed_at
                ) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
                (*values, story.id, story.canonical, print_, now, now, now),
            ).lastrowid
            change = "added"
            heat_changed = True
        else:
            rowid, old_print, old_heat, removed_at = existing
            if old_print == print_ and removed_at is None:
                return "unchanged"
            heat_changed = old_heat != story.heat
            self.conn.execute(
                """
                UPDATE stories SET
                    url = ?, title = ?, excerpt = ?, published_at = ?, type = ?, heat = ?,
                    quality = ?, published = ?, provider_id = ?, provider_name = ?, image_url = ?,
                    topics_text = ?, fingerprint = ?, updated_at = ?, removed_at = NULL,
                    heat_changed_at = CASE WHEN heat != ? THEN ? ELSE heat_changed_at END
                WHERE rowid = ?
                """,
                (*values, print_, now, story.heat, now, rowid),
            )
            change = "updated"
            self.conn.execute("DELETE FROM story_topics WHERE story = ?", (rowid,))
            self.conn.execute("DELETE FROM coverage WHERE story = ?", (rowid,))
        if heat_changed:
            self.conn.execute(
                "INSERT INTO heat_history (story, at, heat) VALUES (?, ?, ?)",
                (rowid, now, story.heat),
            )
        # The delivery poller reads this log past its watermark: a sequence, not a clock,
        # so that ingests from another process (another clock) are never missed.
        self.conn.execute("INSERT INTO story_changes (story) VALUES (?)", (rowid,))
        visible = int(story.published)
        published_at = epoch(story.published_at)
        self.conn.executemany(
            "INSERT OR IGNORE INTO story_topics (topic, story, visible, heat, published_at)"
            " VALUES (?, ?, ?, ?, ?)",
            [
                (self._topic_id(name), rowid, visible, story.heat, published_at)
                for name in story.topics
            ],
        )
        self.conn.executemany(
            """
            INSERT INTO coverage
                (story, position, title, url, provider, excerpt, published_at, type)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            """,
            [
                (rowid, i, c.title, c.url, c.provider, c.excerpt, epoch(c.published_at), c.type)
                for i, c in enumerate(story.related)
            ],
        )
        return change

    def _topic_id(self, name: str) -> int:
        key = name.casefold()
        if key not in self._topic_ids:
            self.conn.execute(
                "INSERT INTO topics (name, key) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
                (name, key),
            )
            row = self.conn.execute("SELECT id FROM topics WHERE key = ?", (key,)).fetchone()
            self._topic_ids[key] = row[0]
        return self._topic_ids[key]

    def _provider_id(self, story: Story) -> int | None:
        if not story.provider:
            return None
        key = (story.provider, story.provider_domain)
        if key not in self._provider_ids:
            self.conn.execute(
                """
                INSERT INTO providers (name, domain, icon_url) VALUES (?, ?, ?)
                ON CONFLICT (name, domain) DO UPDATE SET icon_url = excluded.icon_url
                """,
                (*key, story.provider_icon),
            )
            row = self.conn.execute(
                "SELECT id FROM providers WHERE name = ? AND domain = ?", key
            ).fetchone()
            self._provider_ids[key] = row[0]
        return self._provider_ids[key]


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any error."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, exc, tb) -> None:
        self.conn.execute("ROLLBACK" if exc_type else "COMMIT")
