"""The SQLite store's `ArchiveWriter` (see `core.store.protocol`): ingest's writes.

Ingest is bulk work done off the event loop, so this writer uses a plain synchronous
sqlite3 connection of its own, in ingest's worker thread: per-story statements cost
microseconds there instead of a thread hop each. WAL lets the bot keep reading meanwhile.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from core.archive import ArchiveFile
from core.fingerprint import fingerprint
from core.models import Rejection, Skipped, Story
from core.store.epochs import to_epoch
from core.store.protocol import ParsedFile, WriteCounts
from core.store.schema import connect, migrate
from core.store.source_state import SourceState, load_states, save_state

# Page cache of the ingest connection (KiB) once it writes. The random inserts into the
# unique and FTS indexes read pages back from the OS's cache when they miss.
# Into stored stories: updates land anywhere in the tables and their indexes (1,000
# changed heats at 100k dirty ≈15 MB of pages); the 1%-changed rescan at 100k, 3 paired
# rounds: 16 MB 1.50x the unchanged one, 8 MB 1.57x (issue 12, figure 4).
CACHE_KIB = 16 * 1024
# A cold ingest (an empty archive_files) is the ingest's largest memory, its parse
# workers beside it: 100k stories, in-process, 3 interleaved rounds: 16 MB 9.99 s,
# 8 MB 10.18 s (8.7 MB less: figure 2), 4 MB with batches of 1,500 10.49 s.
COLD_CACHE_KIB = 8 * 1024

# Until the first write, the cache stays small: a rescan that finds nothing to write
# reads every stored stamp once, and keeping those pages would only grow its memory.
SCAN_CACHE_KIB = 2 * 1024


class SqliteArchiveWriter:
    """Rows are read by column name (`sqlite3.Row`)."""

    # The index's terms with their document counts, from `?` documents up (`count_terms`).
    _TERM_COUNTS = "SELECT term, doc FROM stories_vocab WHERE doc >= ?"

    @classmethod
    def open(cls, path: str | Path) -> SqliteArchiveWriter:
        """A writer on its own connection to the database at `path`, migrated."""
        conn = connect(path)
        try:
            conn.execute(f"PRAGMA cache_size = -{SCAN_CACHE_KIB}")
            migrate(conn)
            return cls(conn, small_cache=True)
        except BaseException:
            conn.close()
            raise

    def __init__(self, conn: sqlite3.Connection, small_cache: bool = False) -> None:
        conn.row_factory = sqlite3.Row
        self.conn = conn
        self._topic_ids: dict[str, int] = {}
        # What this ingest changed, so that the work after the scan is proportional to it:
        # the stories (row ids) whose files went or now carry another story
        # (`mark_removed`), and whether the full-text index changed at all (`count_terms`).
        self._maybe_orphaned: set[int] = set()
        self._text_changed = False
        self._flagged_unfinished = False  # this writer recorded `ingest:unfinished`
        self._small_cache = small_cache  # until the first write (see SCAN_CACHE_KIB)
        self._provider_ids: dict[tuple[str, str], int] = {}
        # New stories are staged here and inserted with one statement per batch. SQLite
        # 3.40's FTS5 flushes its pending index data at every statement savepoint, so a
        # row-by-row INSERT (whose trigger feeds stories_fts) wrote one FTS segment per
        # story; one INSERT … SELECT per batch writes one segment per batch.
        self._prepare_staging()

    def _prepare_staging(self) -> None:
        self.conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS {_STAGE} ({', '.join(_NEW_COLUMNS)})")

    def _insert_new(self, rows: list[tuple[object, ...]]) -> None:
        """A batch's new stories, through the staging table (see `__init__`)."""
        columns = ", ".join(_NEW_COLUMNS)
        self.conn.executemany(
            f"INSERT INTO {_STAGE} VALUES ({', '.join('?' * len(_NEW_COLUMNS))})", rows
        )
        self.conn.execute(
            f"INSERT INTO stories ({columns}) SELECT {columns} FROM {_STAGE} ORDER BY rowid"
        )
        self.conn.execute(f"DELETE FROM {_STAGE}")

    def _text_updated(self, rowid: int, text: tuple[str, ...]) -> None:
        """A story's text changed: the FTS5 update trigger has re-indexed it already."""

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> SqliteArchiveWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def stamps_between(self, low: str, high: str | None) -> list[tuple[str, int, int]]:
        """(path, size, mtime_ns) from `low` (included) to `high` (excluded; None: to the
        last), in path order: a range of the primary key, what a rescan compares one group
        of files with. Plain tuples: they compare with the scan's in C."""
        query = "SELECT path, size, mtime_ns FROM archive_files WHERE path >= ?"
        if high is None:
            return self._tuples(query + " ORDER BY path", (low,))
        return self._tuples(query + " AND path < ? ORDER BY path", (low, high))

    def has_files(self, low: str, high: str | None) -> bool:
        """Does the store know an archive file in `stamps_between`'s range? (No: a cold
        ingest, with nothing to compare.)"""
        query = "SELECT 1 FROM archive_files WHERE path >= ?"
        if high is None:
            return self.conn.execute(query + " LIMIT 1", (low,)).fetchone() is not None
        return (
            self.conn.execute(query + " AND path < ? LIMIT 1", (low, high)).fetchone() is not None
        )

    def known_stamps_of(self, paths: list[str]) -> dict[str, tuple[int, int]]:
        """(size, mtime_ns) of the given paths only: a rescan of what git says changed."""
        out: dict[str, tuple[int, int]] = {}
        for i in range(0, len(paths), _LOOKUP_CHUNK):
            part = paths[i : i + _LOOKUP_CHUNK]
            marks = ",".join("?" * len(part))
            query = f"SELECT path, size, mtime_ns FROM archive_files WHERE path IN ({marks})"
            out.update(
                (row["path"], (row["size"], row["mtime_ns"]))
                for row in self.conn.execute(query, part)
            )
        return out

    def source_names(self) -> set[str]:
        """The sources (of a sources file) the database has followed."""
        return {row["name"] for row in self.conn.execute("SELECT name FROM source_state")}

    def source_states(self) -> dict[str, SourceState]:
        """What the database remembers of each source it followed, by name."""
        return load_states(self.conn)

    def save_source_state(self, state: SourceState) -> None:
        with self._transaction():
            save_state(self.conn, state)

    def file_count(self, prefix: str = "") -> int:
        """Story files (or feed items) a source carries."""
        if not prefix:
            query = "SELECT count(*) AS n FROM archive_files WHERE outcome = 'story'"
            return int(self.conn.execute(query).fetchone()["n"])
        query = (
            "SELECT count(*) AS n FROM archive_files"
            " WHERE path >= ? AND path < ? AND outcome = 'story'"
        )
        return int(self.conn.execute(query, _prefix_range(prefix)).fetchone()["n"])

    def carried_elsewhere(self, canonicals: list[str], prefix: str) -> set[str]:
        """The stories among `canonicals` that a file outside this source carries."""
        out: set[str] = set()
        low, high = _prefix_range(prefix)
        for i in range(0, len(canonicals), _LOOKUP_CHUNK):
            part = canonicals[i : i + _LOOKUP_CHUNK]
            marks = ",".join("?" * len(part))
            query = f"""
                SELECT DISTINCT s.canonical FROM stories s JOIN archive_files f ON f.story = s.rowid
                WHERE s.canonical IN ({marks}) AND f.outcome = 'story'
                  AND (f.path < ? OR f.path >= ?)
            """
            out.update(row["canonical"] for row in self.conn.execute(query, [*part, low, high]))
        return out

    def carry(self, items: list[tuple[str, str, str]]) -> None:
        """Record (path, hash, canonical) items that carry a story another source shows."""
        query = """
            INSERT INTO archive_files (path, size, mtime_ns, hash, story, outcome, reason)
            VALUES (?, 0, 0, ?, (SELECT rowid FROM stories WHERE canonical = ?), 'story', NULL)
            ON CONFLICT (path) DO UPDATE SET hash = excluded.hash, story = excluded.story
        """
        with self._transaction():
            self._maybe_orphaned.update(self._stories_of([path for path, _, _ in items]))
            self.conn.executemany(query, items)

    def note_sources(self, source: str, stories: list[Story], now: datetime) -> None:
        """Remember that `source` carries these stories (the first source to bring one wins)."""
        query = """
            INSERT INTO story_sources (story, source, url, title, provider, first_seen_at)
            VALUES (?, ?, ?, ?, ?, ?)
            ON CONFLICT (story, source) DO UPDATE SET
                url = excluded.url, title = excluded.title, provider = excluded.provider
        """
        stamp = to_epoch(now)
        rows = [(s.canonical, source, s.url, s.title, s.provider, stamp) for s in stories]
        with self._transaction():
            self.conn.executemany(query, rows)

    def known_hashes(self, paths: list[str]) -> dict[str, str]:
        """path -> content hash, for the given paths that the database knows."""
        out: dict[str, str] = {}
        for i in range(0, len(paths), _LOOKUP_CHUNK):
            part = paths[i : i + _LOOKUP_CHUNK]
            marks = ",".join("?" * len(part))
            query = f"SELECT path, hash FROM archive_files WHERE path IN ({marks})"
            out.update((row["path"], row["hash"]) for row in self.conn.execute(query, part))
        return out

    def touch_files(self, files: list[ArchiveFile]) -> None:
        """Record a new size/mtime for files whose content hash did not change."""
        query = "UPDATE archive_files SET size = ?, mtime_ns = ? WHERE path = ?"
        with self._transaction():
            self.conn.executemany(query, [(f.size, f.mtime_ns, f.path) for f in files])

    def sibling_paths(self, paths: list[str]) -> list[str]:
        """Other files carrying a story that one of `paths` carries (the same URL twice)."""
        out: list[str] = []
        for i in range(0, len(paths), _LOOKUP_CHUNK):
            part = paths[i : i + _LOOKUP_CHUNK]
            marks = ",".join("?" * len(part))
            query = f"""
                SELECT path FROM archive_files
                WHERE story IN (SELECT story FROM archive_files WHERE path IN ({marks}))
                  AND path NOT IN ({marks})
            """
            out.extend(row["path"] for row in self.conn.execute(query, part + part))
        return out

    def forget_files(self, paths: list[str]) -> None:
        query = "DELETE FROM archive_files WHERE path = ?"
        with self._transaction():
            self._maybe_orphaned.update(self._stories_of(paths))
            self.conn.executemany(query, [(p,) for p in paths])

    def write(self, batch: list[ParsedFile], now: datetime) -> tuple[WriteCounts, list[Rejection]]:
        """Apply one batch of parsed files in one transaction."""
        counts = WriteCounts()
        late_rejections: list[Rejection] = []
        self._grow_cache()
        with self._transaction():
            # A file rewritten may now carry another story (or none): the old one's check.
            self._maybe_orphaned.update(self._stories_of([file.path for file, *_ in batch]))
            plan = _BatchPlan(self, to_epoch(now) or 0)
            plan.look_up([result for _, _, result, _ in batch if isinstance(result, Story)])
            for file, digest, result, print_ in batch:
                story = None  # the row id of the story the file carries
                outcome, reason = "story", None
                if isinstance(result, Story):
                    print_ = print_ or fingerprint(result)
                    change = plan.upsert(result, print_)
                    if change is None:
                        result = Rejection(file.path, f"short id {result.id} collides")
                        late_rejections.append(result)
                    else:
                        setattr(counts, change, getattr(counts, change) + 1)
                        story = plan.known[result.canonical][0]
                if isinstance(result, Rejection):
                    outcome, reason = "rejected", result.reason
                    # A broken edit keeps the story's last good version visible.
                    story = self._story_of(file.path)
                elif isinstance(result, Skipped):
                    outcome, reason = "skipped", result.category
                plan.files.append(
                    (file.path, file.size, file.mtime_ns, digest, story, outcome, reason)
                )
            plan.flush()
        return counts, late_rejections

    def mark_removed(self, now: datetime) -> int:
        """Hide stories no archive file carries any more; returns how many were hidden.

        Only the stories whose files this writer forgot or rewrote are checked, unless
        an abandoned ingest (another writer) left changes unchecked: then every story.
        """
        stamp = to_epoch(now)
        with self._transaction():
            if self._abandoned_changes():
                rows = self.conn.execute(
                    """
                    SELECT rowid FROM stories
                    WHERE removed_at IS NULL AND NOT EXISTS (
                        SELECT 1 FROM archive_files f WHERE f.story = stories.rowid
                    )
                    """
                ).fetchall()
            else:
                rows = []
                candidates = sorted(self._maybe_orphaned)
                for i in range(0, len(candidates), _LOOKUP_CHUNK):
                    part = candidates[i : i + _LOOKUP_CHUNK]
                    query = f"""
                        SELECT rowid FROM stories
                        WHERE rowid IN ({",".join("?" * len(part))}) AND removed_at IS NULL
                          AND NOT EXISTS (
                              SELECT 1 FROM archive_files f WHERE f.story = stories.rowid
                          )
                    """
                    rows += self.conn.execute(query, part).fetchall()
            hidden = [row["rowid"] for row in rows]
            self.conn.executemany(
                "UPDATE stories SET removed_at = ?, updated_at = ? WHERE rowid = ?",
                [(stamp, stamp, rowid) for rowid in hidden],
            )
            self.conn.executemany(
                "UPDATE story_topics SET visible = 0 WHERE story = ?", [(r,) for r in hidden]
            )
        self._maybe_orphaned.clear()
        return len(hidden)

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

    def count_terms(self) -> None:
        """Refresh `term_stats`: document counts of the index's common terms (see schema).

        The counts change only with the full-text index: when this writer changed no
        story's text, only the number of visible stories is refreshed.
        """
        with self._transaction():
            visible = self.conn.execute("SELECT visible FROM story_totals WHERE id = 1").fetchone()[
                "visible"
            ]
            if not self._text_changed and not self._abandoned_changes():
                cursor = self.conn.execute(
                    "UPDATE term_stats_meta SET visible = ? WHERE id = 1", (visible,)
                )
                if cursor.rowcount:  # else nothing counted yet: count below
                    return
            docs = self.conn.execute("SELECT count(*) AS docs FROM stories").fetchone()["docs"]
            # Rarer terms have short doclists: the index counts them quickly.
            min_doc = max(2, docs // 500)
            self.conn.execute("DELETE FROM term_stats")
            self.conn.execute(f"INSERT INTO term_stats (term, doc) {self._TERM_COUNTS}", (min_doc,))
            self.conn.execute(
                "INSERT INTO term_stats_meta (id, min_doc, visible) VALUES (1, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET min_doc = excluded.min_doc,"
                " visible = excluded.visible",
                (min_doc, visible),
            )
            self._terms_counted()

    def _terms_counted(self) -> None:
        """After `count_terms` recounted: what else the backend's search keeps (SQLite's
        FTS5 keeps its own sizes)."""

    def unpublished_count(self) -> int:
        """Stories the archive carries with `published: false` (never shown)."""
        query = "SELECT unpublished FROM story_totals WHERE id = 1"
        return int(self.conn.execute(query).fetchone()["unpublished"])

    def state(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM bot_state WHERE key = ?", (key,)).fetchone()
        return None if row is None else row["value"]

    def set_states(self, values: dict[str, str]) -> None:
        with self._transaction():
            self.conn.executemany(
                "INSERT INTO bot_state (key, value) VALUES (?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                list(values.items()),
            )

    def ingest_unfinished(self) -> bool:
        """Did an abandoned ingest write batches that no complete scan has followed yet?"""
        query = "SELECT 1 FROM bot_state WHERE key = 'ingest:unfinished'"
        return self.conn.execute(query).fetchone() is not None

    def set_ingest_unfinished(self, unfinished: bool) -> None:
        with self._transaction():
            self._flagged_unfinished = unfinished
            if unfinished:
                self.conn.execute(
                    "INSERT OR REPLACE INTO bot_state (key, value)"
                    " VALUES ('ingest:unfinished', '1')"
                )
            else:
                self.conn.execute("DELETE FROM bot_state WHERE key = 'ingest:unfinished'")

    def not_stories(self) -> tuple[list[Rejection], int]:
        """The rejected files (in path order) and how many were skipped: one pass."""
        query = (
            "SELECT path, outcome, reason FROM archive_files WHERE outcome != 'story' ORDER BY path"
        )
        rejected, skipped = [], 0
        for path, outcome, reason in self.conn.execute(query):
            if outcome == "rejected":
                rejected.append(Rejection(path, reason))
            else:
                skipped += 1
        return rejected, skipped

    # -- internals -------------------------------------------------------------

    def _tuples(self, query: str, params: Sequence[object]) -> list[Any]:
        """The rows of `query` as plain tuples (not `sqlite3.Row`)."""
        cursor = self.conn.cursor()
        cursor.row_factory = None
        return cursor.execute(query, params).fetchall()

    def _grow_cache(self) -> None:
        """At the first write: the cache that writing into large indexes needs."""
        if self._small_cache:
            cold = not self.has_files("", None)  # nothing stored: a cold ingest
            self.conn.execute(f"PRAGMA cache_size = -{COLD_CACHE_KIB if cold else CACHE_KIB}")
            self._small_cache = False

    def _transaction(self) -> _Transaction:
        return _Transaction(self.conn)

    def _abandoned_changes(self) -> bool:
        """Did an abandoned ingest (not this writer) write changes nobody followed up?"""
        return not self._flagged_unfinished and self.ingest_unfinished()

    def _stories_of(self, paths: list[str]) -> set[int]:
        """The stories the given files carry now (their row ids)."""
        out: set[int] = set()
        for i in range(0, len(paths), _LOOKUP_CHUNK):
            part = paths[i : i + _LOOKUP_CHUNK]
            query = (
                "SELECT story FROM archive_files"
                f" WHERE path IN ({','.join('?' * len(part))}) AND story IS NOT NULL"
            )
            out.update(row["story"] for row in self.conn.execute(query, part))
        return out

    def _story_of(self, path: str) -> int | None:
        row = self.conn.execute(
            "SELECT story FROM archive_files WHERE path = ?", (path,)
        ).fetchone()
        return None if row is None else row["story"]

    def _topic_id(self, name: str) -> int:
        key = name.casefold()
        if key not in self._topic_ids:
            self.conn.execute(
                "INSERT INTO topics (name, key) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
                (name, key),
            )
            row = self.conn.execute("SELECT id FROM topics WHERE key = ?", (key,)).fetchone()
            self._topic_ids[key] = row["id"]
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
            self._provider_ids[key] = row["id"]
        return self._provider_ids[key]


_STAGE = "temp.stage_new_stories"
_TEXT_COLUMNS = ("title", "excerpt", "topics_text", "provider_name")
_NEW_COLUMNS = (
    "rowid",
    "url",
    "title",
    "excerpt",
    "published_at",
    "type",
    "heat",
    "quality",
    "published",
    "provider_id",
    "provider_name",
    "image_url",
    "topics_text",
    "id",
    "canonical",
    "fingerprint",
    "first_seen_at",
    "updated_at",
    "heat_changed_at",
)
_LOOKUP_CHUNK = 500  # canonical URLs per IN (…) lookup


def _prefix_range(prefix: str) -> tuple[str, str]:
    """Bounds of the paths that start with `prefix` ("name:"): `low <= path < high`."""
    return prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)


class _BatchPlan:
    """The rows one batch writes, gathered so that each table gets one executemany.

    New stories wait in the staging table until `flush`; an update (rare on a
    cold ingest) flushes what is pending first, so statements apply in file order.
    """

    def __init__(self, writer: SqliteArchiveWriter, now: int) -> None:
        self.writer = writer
        self.conn = writer.conn
        self.now = now
        # canonical -> (rowid, fingerprint, heat, removed_at, text columns, what its
        # story_topics rows copy besides heat: (published, published_at))
        self.known: dict[
            str,
            tuple[int, str, int, int | None, tuple[str, ...], tuple[int, int | None]],
        ] = {}
        self.ids: dict[str, str] = {}  # short id -> canonical, for collision checks
        self.next_rowid = 0
        # Rows of parameters, staged for one executemany each at the next flush.
        self.new: list[tuple[object, ...]] = []
        self.topics: list[tuple[object, ...]] = []
        self.coverage: list[tuple[object, ...]] = []
        self.heat: list[tuple[object, ...]] = []
        self.changes: list[tuple[object, ...]] = []
        self.files: list[tuple[object, ...]] = []
        self.staged: set[int] = set()  # rowids with rows staged above

    def look_up(self, stories: list[Story]) -> None:
        """One query per chunk instead of one per story (none when the table is empty)."""
        last = self.conn.execute("SELECT coalesce(max(rowid), 0) AS n FROM stories").fetchone()
        self.next_rowid = last["n"] + 1
        if self.next_rowid == 1:
            return
        canonicals = list(dict.fromkeys(s.canonical for s in stories))
        ids = list(dict.fromkeys(s.id for s in stories))
        for i in range(0, len(canonicals), _LOOKUP_CHUNK):
            part = canonicals[i : i + _LOOKUP_CHUNK]
            rows = self.conn.execute(
                "SELECT canonical, rowid, fingerprint, heat, removed_at, title, excerpt,"
                " topics_text, provider_name, published, published_at FROM stories"
                f" WHERE canonical IN ({','.join('?' * len(part))})",
                part,
            )
            for row in rows:
                text = (row["title"], row["excerpt"], row["topics_text"], row["provider_name"])
                self.known[row["canonical"]] = (
                    row["rowid"],
                    row["fingerprint"],
                    row["heat"],
                    row["removed_at"],
                    text,
                    (row["published"], row["published_at"]),
                )
        for i in range(0, len(ids), _LOOKUP_CHUNK):
            part = ids[i : i + _LOOKUP_CHUNK]
            rows = self.conn.execute(
                f"SELECT id, canonical FROM stories WHERE id IN ({','.join('?' * len(part))})",
                part,
            )
            self.ids.update((row["id"], row["canonical"]) for row in rows)

    def upsert(self, story: Story, print_: str) -> str | None:
        """'added', 'updated' or 'unchanged'; None when the short id is another story's."""
        writer = self.writer
        published_at = to_epoch(story.published_at)
        topics_text = "\n".join(story.topics)
        coverage = self._coverage_rows(story) if story.related else []
        existing = self.known.get(story.canonical)
        if existing is None:
            if self.ids.get(story.id, story.canonical) != story.canonical:
                return None
            rowid = self.next_rowid
            self.next_rowid += 1
            self.new.append(
                (
                    rowid,
                    story.url,
                    story.title,
                    story.excerpt,
                    published_at,
                    story.type,
                    story.heat,
                    story.quality,
                    int(story.published),
                    writer._provider_id(story),
                    story.provider,
                    story.image_url,
                    topics_text,
                    story.id,
                    story.canonical,
                    print_,
                    self.now,
                    self.now,
                    self.now,
                )
            )
            self.ids[story.id] = story.canonical
            change = "added"
            heat_changed = True
            keep_topics = keep_coverage = False
        else:
            rowid, old_print, old_heat, removed_at, old_text, old_shown = existing
            if old_print == print_ and removed_at is None:
                return "unchanged"
            if rowid in self.staged:  # its rows may still be staged; statements apply in order
                self.flush()
            heat_changed = old_heat != story.heat
            text = (story.title, story.excerpt, topics_text, story.provider)
            # Naming a text column fires the FTS update trigger (a delete and an insert in
            # the index), so a change that leaves the text alone (heat, the common case)
            # does not name them.
            set_text = (
                ""
                if text == old_text
                else "title = ?, excerpt = ?, topics_text = ?, provider_name = ?,"
            )
            writer._text_changed |= text != old_text
            self.conn.execute(
                f"""
                UPDATE stories SET {set_text}
                    url = ?, published_at = ?, type = ?, heat = ?, quality = ?, published = ?,
                    provider_id = ?, image_url = ?, fingerprint = ?, updated_at = ?,
                    removed_at = NULL,
                    heat_changed_at = CASE WHEN heat != ? THEN ? ELSE heat_changed_at END
                WHERE rowid = ?
                """,
                (
                    *(() if text == old_text else text),
                    story.url,
                    published_at,
                    story.type,
                    story.heat,
                    story.quality,
                    int(story.published),
                    writer._provider_id(story),
                    story.image_url,
                    print_,
                    self.now,
                    story.heat,
                    self.now,
                    rowid,
                ),
            )
            if text != old_text:
                writer._text_updated(rowid, text)
            change = "updated"
            # A heat change (the common update) leaves topics and coverage as they are:
            # rewriting their rows would only add pages to the write (and its checkpoint).
            shown = (int(story.published), published_at)
            keep_topics = removed_at is None and topics_text == old_text[2] and shown == old_shown
            if keep_topics and heat_changed:
                self.conn.execute(
                    "UPDATE story_topics SET heat = ? WHERE story = ?", (story.heat, rowid)
                )
            elif not keep_topics:
                self.conn.execute("DELETE FROM story_topics WHERE story = ?", (rowid,))
            keep_coverage = self._coverage_of(rowid) == coverage
            if not keep_coverage:
                self.conn.execute("DELETE FROM coverage WHERE story = ?", (rowid,))
        self.staged.add(rowid)
        self.known[story.canonical] = (
            rowid,
            print_,
            story.heat,
            None,
            (story.title, story.excerpt, topics_text, story.provider),
            (int(story.published), published_at),
        )
        if heat_changed:
            self.heat.append((rowid, self.now, story.heat))
        # The delivery poller reads this log past its watermark: a sequence, not a clock,
        # so that ingests from another process (another clock) are never missed.
        self.changes.append((rowid,))
        visible = int(story.published)
        if not keep_topics:
            for name in story.topics:
                self.topics.append(
                    (writer._topic_id(name), rowid, visible, story.heat, published_at)
                )
        if not keep_coverage:
            self.coverage.extend((rowid, i, *c) for i, c in enumerate(coverage))
        return change

    def _coverage_of(self, rowid: int) -> list[tuple[object, ...]]:
        query = (
            "SELECT title, url, provider, excerpt, published_at, type FROM coverage"
            " WHERE story = ? ORDER BY position"
        )
        return [tuple(row) for row in self.conn.execute(query, (rowid,))]

    @staticmethod
    def _coverage_rows(story: Story) -> list[tuple[object, ...]]:
        return [
            (c.title, c.url, c.provider, c.excerpt, to_epoch(c.published_at), c.type)
            for c in story.related
        ]

    def flush(self) -> None:
        """Write what the batch gathered so far, new stories first (the others refer to them)."""
        conn = self.conn
        self.staged.clear()
        if self.new:
            self.writer._text_changed = True
            self.writer._insert_new(self.new)
            self.new.clear()
        if self.heat:
            conn.executemany(
                "INSERT INTO heat_history (story, at, heat) VALUES (?, ?, ?)", self.heat
            )
            self.heat.clear()
        if self.changes:
            conn.executemany("INSERT INTO story_changes (story) VALUES (?)", self.changes)
            self.changes.clear()
        if self.topics:
            conn.executemany(
                "INSERT OR IGNORE INTO story_topics (topic, story, visible, heat, published_at)"
                " VALUES (?, ?, ?, ?, ?)",
                self.topics,
            )
            self.topics.clear()
        if self.coverage:
            conn.executemany(
                """
                INSERT INTO coverage
                    (story, position, title, url, provider, excerpt, published_at, type)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """,
                self.coverage,
            )
            self.coverage.clear()
        if self.files:
            conn.executemany(
                """
                INSERT INTO archive_files (path, size, mtime_ns, hash, story, outcome, reason)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (path) DO UPDATE SET
                    size = excluded.size, mtime_ns = excluded.mtime_ns, hash = excluded.hash,
                    story = excluded.story, outcome = excluded.outcome,
                    reason = excluded.reason
                """,
                self.files,
            )
            self.files.clear()


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any error."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        self.conn.execute("ROLLBACK" if exc_type else "COMMIT")
