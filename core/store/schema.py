"""The database schema, as ordered migrations recorded inside the database.

Each migration is a tuple of statements applied in one transaction together
with the row that records it, so a crash never leaves a half-applied step.
Append new migrations; never edit one that has shipped.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 10_000

# Times are stored as integer Unix seconds (UTC): compact, indexable, sortable.
MIGRATIONS: list[tuple[str, tuple[str, ...]]] = [
    (
        "archive and stories",
        (
            """
            CREATE TABLE providers (
                id INTEGER PRIMARY KEY,
                name TEXT NOT NULL,
                domain TEXT NOT NULL DEFAULT '',
                icon_url TEXT,
                UNIQUE (name, domain)
            )
            """,
            """
            CREATE TABLE stories (
                rowid INTEGER PRIMARY KEY,
                id TEXT NOT NULL UNIQUE,
                canonical TEXT NOT NULL UNIQUE,
                url TEXT NOT NULL,
                fingerprint TEXT NOT NULL,
                title TEXT NOT NULL,
                excerpt TEXT NOT NULL DEFAULT '',
                published_at INTEGER,
                type TEXT NOT NULL DEFAULT 'article',
                heat INTEGER NOT NULL DEFAULT 0,
                quality INTEGER,
                published INTEGER NOT NULL DEFAULT 1,
                provider_id INTEGER REFERENCES providers (id),
                provider_name TEXT NOT NULL DEFAULT '',
                image_url TEXT,
                topics_text TEXT NOT NULL DEFAULT '',
                first_seen_at INTEGER NOT NULL,
                updated_at INTEGER NOT NULL,
                heat_changed_at INTEGER NOT NULL,
                removed_at INTEGER
            )
            """,
            # The stories anyone may see: published and still in the archive.
            """
            CREATE INDEX stories_visible_hot ON stories (heat DESC, published_at DESC)
            WHERE published = 1 AND removed_at IS NULL
            """,
            """
            CREATE INDEX stories_visible_new ON stories (published_at DESC)
            WHERE published = 1 AND removed_at IS NULL
            """,
            "CREATE INDEX stories_heat_changed ON stories (heat_changed_at)",
            """
            CREATE TABLE topics (
                id INTEGER PRIMARY KEY,
                name TEXT NOT NULL,
                key TEXT NOT NULL UNIQUE,
                story_count INTEGER NOT NULL DEFAULT 0
            )
            """,
            # heat, published_at and visible are copies of the story's, so that a
            # topic's page is one index range scan even for a topic of 100k stories.
            """
            CREATE TABLE story_topics (
                topic INTEGER NOT NULL REFERENCES topics (id),
                story INTEGER NOT NULL REFERENCES stories (rowid) ON DELETE CASCADE,
                visible INTEGER NOT NULL,
                heat INTEGER NOT NULL,
                published_at INTEGER,
                PRIMARY KEY (topic, story)
            ) WITHOUT ROWID
            """,
            "CREATE INDEX story_topics_story ON story_topics (story)",
            """
            CREATE INDEX story_topics_hot
            ON story_topics (topic, visible, heat DESC, published_at DESC)
            """,
            """
            CREATE INDEX story_topics_new ON story_topics (topic, visible, published_at DESC)
            """,
            """
            CREATE TABLE coverage (
                story INTEGER NOT NULL REFERENCES stories (rowid) ON DELETE CASCADE,
                position INTEGER NOT NULL,
                title TEXT NOT NULL,
                url TEXT NOT NULL,
                provider TEXT NOT NULL DEFAULT '',
                excerpt TEXT NOT NULL DEFAULT '',
                published_at INTEGER,
                type TEXT NOT NULL DEFAULT 'article',
                PRIMARY KEY (story, position)
            ) WITHOUT ROWID
            """,
            """
            CREATE TABLE heat_history (
                story INTEGER NOT NULL REFERENCES stories (rowid) ON DELETE CASCADE,
                at INTEGER NOT NULL,
                heat INTEGER NOT NULL
            )
            """,
            "CREATE INDEX heat_history_story ON heat_history (story, at)",
            """
            CREATE TABLE archive_files (
                path TEXT PRIMARY KEY,
                size INTEGER NOT NULL,
                mtime_ns INTEGER NOT NULL,
                hash TEXT NOT NULL,
                story TEXT, -- canonical URL of the story the file carries
                outcome TEXT NOT NULL CHECK (outcome IN ('story', 'rejected', 'skipped')),
                reason TEXT
            ) WITHOUT ROWID
            """,
            "CREATE INDEX archive_files_story ON archive_files (story)",
            """
            CREATE VIRTUAL TABLE stories_fts USING fts5 (
                title, excerpt, topics_text, provider_name,
                content = 'stories', content_rowid = 'rowid',
                tokenize = 'unicode61 remove_diacritics 2'
            )
            """,
            "CREATE VIRTUAL TABLE stories_vocab USING fts5vocab (stories_fts, 'row')",
            """
            CREATE TRIGGER stories_fts_insert AFTER INSERT ON stories BEGIN
                INSERT INTO stories_fts (rowid, title, excerpt, topics_text, provider_name)
                VALUES (new.rowid, new.title, new.excerpt, new.topics_text, new.provider_name);
            END
            """,
            """
            CREATE TRIGGER stories_fts_delete AFTER DELETE ON stories BEGIN
                INSERT INTO stories_fts
                    (stories_fts, rowid, title, excerpt, topics_text, provider_name)
                VALUES ('delete', old.rowid, old.title, old.excerpt, old.topics_text,
                        old.provider_name);
            END
            """,
            """
            CREATE TRIGGER stories_fts_update
            AFTER UPDATE OF title, excerpt, topics_text, provider_name ON stories BEGIN
                INSERT INTO stories_fts
                    (stories_fts, rowid, title, excerpt, topics_text, provider_name)
                VALUES ('delete', old.rowid, old.title, old.excerpt, old.topics_text,
                        old.provider_name);
                INSERT INTO stories_fts (rowid, title, excerpt, topics_text, provider_name)
                VALUES (new.rowid, new.title, new.excerpt, new.topics_text, new.provider_name);
            END
            """,
            """
            CREATE TABLE bot_state (
                key TEXT PRIMARY KEY,
                value TEXT NOT NULL
            ) WITHOUT ROWID
            """,
        ),
    ),
    (
        "subscriptions and deliveries",
        (
            """
            CREATE TABLE story_changes (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                story INTEGER NOT NULL REFERENCES stories (rowid) ON DELETE CASCADE
            )
            """,
            "CREATE INDEX story_changes_story ON story_changes (story)",
            # Stories already in the database count as changed once, for the first poll.
            "INSERT INTO story_changes (story) SELECT rowid FROM stories",
            """
            CREATE TABLE subscriptions (
                id INTEGER PRIMARY KEY,
                guild_id INTEGER NOT NULL,
                channel_id INTEGER NOT NULL,
                topic INTEGER NOT NULL REFERENCES topics (id),
                min_heat INTEGER NOT NULL,
                keywords TEXT NOT NULL DEFAULT '',
                exclude TEXT NOT NULL DEFAULT '',
                mention_role_id INTEGER,
                created_by INTEGER,
                created_at INTEGER NOT NULL,
                paused_reason TEXT,
                paused_at INTEGER,
                UNIQUE (channel_id, topic)
            )
            """,
            "CREATE INDEX subscriptions_topic ON subscriptions (topic, min_heat)",
            "CREATE INDEX subscriptions_guild ON subscriptions (guild_id)",
            # One row per story per channel: the record of what was (or will be) posted.
            # state: 'seen' (qualified when the channel subscribed; not posted), 'pending'
            # (due), 'sending' (a send was attempted and its outcome is not recorded yet),
            # 'sent', or 'dropped' (no longer postable: hidden, or too old; reason says).
            """
            CREATE TABLE deliveries (
                channel_id INTEGER NOT NULL,
                story INTEGER NOT NULL REFERENCES stories (rowid) ON DELETE CASCADE,
                guild_id INTEGER NOT NULL,
                state TEXT NOT NULL
                    CHECK (state IN ('seen', 'pending', 'sending', 'sent', 'dropped')),
                message_id INTEGER,
                created_at INTEGER NOT NULL,
                sent_at INTEGER,
                attempts INTEGER NOT NULL DEFAULT 0,
                last_error TEXT,
                PRIMARY KEY (channel_id, story)
            ) WITHOUT ROWID
            """,
            "CREATE INDEX deliveries_state ON deliveries (state, channel_id)",
            """
            CREATE TABLE channel_notices (
                channel_id INTEGER PRIMARY KEY,
                reason TEXT NOT NULL,
                notified_at INTEGER NOT NULL
            )
            """,
        ),
    ),
    (
        "pins",
        (
            # One row per pinned story message. `story` may be a story since removed from the
            # archive: the message stays pinned in Discord, so the record stays too.
            """
            CREATE TABLE pins (
                id INTEGER PRIMARY KEY,
                guild_id INTEGER NOT NULL,
                channel_id INTEGER NOT NULL,
                message_id INTEGER NOT NULL UNIQUE,
                story INTEGER NOT NULL REFERENCES stories (rowid) ON DELETE CASCADE,
                pinned_by INTEGER,
                pinned_at INTEGER NOT NULL
            )
            """,
            "CREATE INDEX pins_channel ON pins (channel_id, pinned_at DESC, id DESC)",
            "CREATE INDEX pins_guild ON pins (guild_id, pinned_at DESC, id DESC)",
            "CREATE INDEX pins_guild_story ON pins (guild_id, story)",
            "CREATE INDEX pins_story ON pins (story)",
        ),
    ),
    (
        "term document counts",
        (
            # Document counts of the full-text index's common terms, with the number of
            # visible stories, refreshed by each ingest that changes the archive: related
            # stories rank a story's words by rarity without walking long doclists in
            # stories_vocab. Terms below min_doc (see term_stats_meta) are not listed.
            """
            CREATE TABLE term_stats (
                term TEXT PRIMARY KEY,
                doc INTEGER NOT NULL
            ) WITHOUT ROWID
            """,
            """
            CREATE TABLE term_stats_meta (
                id INTEGER PRIMARY KEY CHECK (id = 1),
                min_doc INTEGER NOT NULL,
                visible INTEGER NOT NULL
            )
            """,
        ),
    ),
    (
        "subscription keyword matching and pausing by staff",
        (
            # 1: a story needs any of the keywords, 0: all of them (as before).
            "ALTER TABLE subscriptions ADD COLUMN match_any INTEGER NOT NULL DEFAULT 0",
            # Who paused the subscription, and when; apart from paused_reason, which is
            # the bot's own pause (a missing permission) and lifts by itself.
            "ALTER TABLE subscriptions ADD COLUMN paused_by INTEGER",
            "ALTER TABLE subscriptions ADD COLUMN paused_by_at INTEGER",
        ),
    ),
    (
        "stemmed full-text index",
        (
            # `porter` wraps unicode61: "canvas apps" finds "canvas app" (and "apps").
            # The index, its vocabulary and its triggers are rebuilt with the new tokenizer.
            "DROP TRIGGER stories_fts_insert",
            "DROP TRIGGER stories_fts_delete",
            "DROP TRIGGER stories_fts_update",
            "DROP TABLE stories_vocab",
            "DROP TABLE stories_fts",
            """
            CREATE VIRTUAL TABLE stories_fts USING fts5 (
                title, excerpt, topics_text, provider_name,
                content = 'stories', content_rowid = 'rowid',
                tokenize = 'porter unicode61 remove_diacritics 2'
            )
            """,
            "CREATE VIRTUAL TABLE stories_vocab USING fts5vocab (stories_fts, 'row')",
            """
            CREATE TRIGGER stories_fts_insert AFTER INSERT ON stories BEGIN
                INSERT INTO stories_fts (rowid, title, excerpt, topics_text, provider_name)
                VALUES (new.rowid, new.title, new.excerpt, new.topics_text, new.provider_name);
            END
            """,
            """
            CREATE TRIGGER stories_fts_delete AFTER DELETE ON stories BEGIN
                INSERT INTO stories_fts
                    (stories_fts, rowid, title, excerpt, topics_text, provider_name)
                VALUES ('delete', old.rowid, old.title, old.excerpt, old.topics_text,
                        old.provider_name);
            END
            """,
            """
            CREATE TRIGGER stories_fts_update
            AFTER UPDATE OF title, excerpt, topics_text, provider_name ON stories BEGIN
                INSERT INTO stories_fts
                    (stories_fts, rowid, title, excerpt, topics_text, provider_name)
                VALUES ('delete', old.rowid, old.title, old.excerpt, old.topics_text,
                        old.provider_name);
                INSERT INTO stories_fts (rowid, title, excerpt, topics_text, provider_name)
                VALUES (new.rowid, new.title, new.excerpt, new.topics_text, new.provider_name);
            END
            """,
            "INSERT INTO stories_fts (stories_fts) VALUES ('rebuild')",
            # Recounted with the stemmed terms, as `ArchiveWriter.count_terms` does.
            "DELETE FROM term_stats",
            """
            INSERT INTO term_stats (term, doc)
            SELECT term, doc FROM stories_vocab
            WHERE doc >= (SELECT min_doc FROM term_stats_meta WHERE id = 1)
            """,
        ),
    ),
    (
        "sources",
        (
            # What the bot knows of each source it follows (NEWS_SOURCES): when it last
            # fetched it, what went wrong, when it fetches next, and what lets the next
            # fetch be cheap (a feed's ETag / Last-Modified, a repository's last commit).
            """
            CREATE TABLE source_state (
                name TEXT PRIMARY KEY,
                kind TEXT NOT NULL,
                location TEXT NOT NULL,
                last_attempt_at INTEGER,
                last_success_at INTEGER,
                items INTEGER NOT NULL DEFAULT 0,
                last_error TEXT,
                failures INTEGER NOT NULL DEFAULT 0,
                next_fetch_at INTEGER,
                etag TEXT,
                last_modified TEXT,
                git_commit TEXT,
                title TEXT
            ) WITHOUT ROWID
            """,
            # Which sources carry a story (by canonical URL), in the order they brought it:
            # the first one's version is shown, the others are "also covered by".
            """
            CREATE TABLE story_sources (
                story TEXT NOT NULL,
                source TEXT NOT NULL,
                url TEXT NOT NULL,
                title TEXT NOT NULL,
                provider TEXT NOT NULL DEFAULT '',
                first_seen_at INTEGER NOT NULL,
                PRIMARY KEY (story, source)
            ) WITHOUT ROWID
            """,
        ),
    ),
    (
        "subscriptions by kind of filters",
        (
            # The poller decides once per kind of filters of a topic (not per channel):
            # grouping subscriptions by these columns is then a scan of this index.
            "DROP INDEX subscriptions_topic",
            """
            CREATE INDEX subscriptions_kind ON subscriptions
                (topic, min_heat, keywords, exclude, match_any, paused_by IS NULL)
            """,
        ),
    ),
    (
        "subscription looks: style, thread per post",
        (
            # How a subscription's posts look (full embed, compact line, bare link) and
            # whether each post opens a discussion thread; `thread_archive` (minutes) is
            # when that thread, or a forum post, archives itself after going quiet.
            "ALTER TABLE subscriptions ADD COLUMN style TEXT NOT NULL DEFAULT 'full'",
            "ALTER TABLE subscriptions ADD COLUMN thread INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE subscriptions ADD COLUMN thread_archive INTEGER NOT NULL DEFAULT 1440",
        ),
    ),
    (
        "posts that stay current and digests",
        (
            # live: 1 keeps the channel's posts current (edited when heat rises or coverage
            # arrives), 0 leaves them as posted. digest: NULL posts each story, 'daily' or
            # 'weekly' collects them into one message at digest_hour (UTC), weekly on
            # digest_day (0 = Monday), with the digest_size hottest.
            "ALTER TABLE subscriptions ADD COLUMN live INTEGER NOT NULL DEFAULT 1",
            """
            ALTER TABLE subscriptions ADD COLUMN digest TEXT
                CHECK (digest IS NULL OR digest IN ('daily', 'weekly'))
            """,
            "ALTER TABLE subscriptions ADD COLUMN digest_hour INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE subscriptions ADD COLUMN digest_day INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE subscriptions ADD COLUMN digest_size INTEGER NOT NULL DEFAULT 5",
            # What a sent post shows: heat and coverage count when posted (the "154" of
            # "154 → 231"), when last shown (posted or edited), when last edited, and
            # whether it can no longer be edited (the message was deleted).
            "ALTER TABLE deliveries ADD COLUMN posted_heat INTEGER",
            "ALTER TABLE deliveries ADD COLUMN posted_coverage INTEGER",
            "ALTER TABLE deliveries ADD COLUMN shown_heat INTEGER",
            "ALTER TABLE deliveries ADD COLUMN shown_coverage INTEGER",
            "ALTER TABLE deliveries ADD COLUMN edited_at INTEGER",
            "ALTER TABLE deliveries ADD COLUMN live_stopped INTEGER NOT NULL DEFAULT 0",
            "CREATE INDEX deliveries_sent ON deliveries (sent_at) WHERE state = 'sent'",
            # A story a digest subscription collected, when it qualified: each story goes
            # into one digest of the subscription at most (seen: qualified before it
            # subscribed, never in a digest).
            """
            CREATE TABLE digest_items (
                subscription INTEGER NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
                story INTEGER NOT NULL REFERENCES stories (rowid) ON DELETE CASCADE,
                collected_at INTEGER NOT NULL,
                seen INTEGER NOT NULL DEFAULT 0,
                PRIMARY KEY (subscription, story)
            ) WITHOUT ROWID
            """,
            "CREATE INDEX digest_items_time ON digest_items (subscription, collected_at)",
            # One row per digest period of a subscription, recorded before it is sent:
            # 'pending' (stories chosen), 'sending' (a send started at sent_at), 'sent'
            # (message_id), or 'empty' (nothing became hot: nothing is sent).
            """
            CREATE TABLE digests (
                subscription INTEGER NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
                period_end INTEGER NOT NULL,
                period_start INTEGER NOT NULL,
                guild_id INTEGER NOT NULL,
                channel_id INTEGER NOT NULL,
                state TEXT NOT NULL CHECK (state IN ('pending', 'sending', 'sent', 'empty')),
                stories TEXT NOT NULL DEFAULT '',
                message_id INTEGER,
                created_at INTEGER NOT NULL,
                sent_at INTEGER,
                attempts INTEGER NOT NULL DEFAULT 0,
                last_error TEXT,
                PRIMARY KEY (subscription, period_end)
            ) WITHOUT ROWID
            """,
            "CREATE INDEX digests_state ON digests (state, channel_id)",
        ),
    ),
    (
        "counts of visible and unpublished stories",
        (
            # Kept by triggers: the list of all stories shows the visible count on every
            # page (counting 300k rows took ~10 ms each time), and every ingest reports
            # the unpublished one (a scan of the table, even when nothing changed).
            """
            CREATE TABLE story_totals (
                id INTEGER PRIMARY KEY CHECK (id = 1),
                visible INTEGER NOT NULL,
                unpublished INTEGER NOT NULL
            )
            """,
            """
            INSERT INTO story_totals (id, visible, unpublished)
            SELECT 1, count(*) FILTER (WHERE published = 1), count(*) FILTER (WHERE published = 0)
            FROM stories WHERE removed_at IS NULL
            """,
            """
            CREATE TRIGGER story_totals_insert AFTER INSERT ON stories
            WHEN new.removed_at IS NULL BEGIN
                UPDATE story_totals SET visible = visible + (new.published = 1),
                    unpublished = unpublished + (new.published = 0)
                WHERE id = 1;
            END
            """,
            """
            CREATE TRIGGER story_totals_delete AFTER DELETE ON stories
            WHEN old.removed_at IS NULL BEGIN
                UPDATE story_totals SET visible = visible - (old.published = 1),
                    unpublished = unpublished - (old.published = 0)
                WHERE id = 1;
            END
            """,
            """
            CREATE TRIGGER story_totals_update AFTER UPDATE OF published, removed_at ON stories
            WHEN old.published IS NOT new.published
                OR (old.removed_at IS NULL) IS NOT (new.removed_at IS NULL) BEGIN
                UPDATE story_totals SET
                    visible = visible + (new.published = 1 AND new.removed_at IS NULL)
                        - (old.published = 1 AND old.removed_at IS NULL),
                    unpublished = unpublished + (new.published = 0 AND new.removed_at IS NULL)
                        - (old.published = 0 AND old.removed_at IS NULL)
                WHERE id = 1;
            END
            """,
        ),
    ),
    (
        "the look of each sent post",
        (
            # Which style a post went out in (full, compact, link): a live edit re-renders
            # it the same way. NULL for posts from before: kept current only as story cards.
            "ALTER TABLE deliveries ADD COLUMN style TEXT",
        ),
    ),
    (
        "leases and delivery claims, for several bot processes",
        (
            # A lease is held by one process until it expires (Unix seconds) unless its
            # holder renews it: 'rescan' (the one process that rescans and plans), and
            # 'alive:<process id>' (the process's claims are its own while it lasts).
            """
            CREATE TABLE leases (
                name TEXT PRIMARY KEY,
                holder TEXT NOT NULL,
                expires_at INTEGER NOT NULL
            )
            """,
            # The process that moved a delivery or digest to 'sending' (the claim), and
            # when it claimed it (or took over a dead process's claim). NULL: from before
            # claims, reconciled as a dead process's.
            "ALTER TABLE deliveries ADD COLUMN claimed_by TEXT",
            "ALTER TABLE deliveries ADD COLUMN claimed_at INTEGER",
            "ALTER TABLE digests ADD COLUMN claimed_by TEXT",
            "ALTER TABLE digests ADD COLUMN claimed_at INTEGER",
        ),
    ),
    (
        "archive files keyed by the story's row",
        (
            # A file's story by its row id instead of its canonical URL: the URL is stored
            # once (in stories), and the index over archive_files.story holds integers.
            # SQLite cannot change a column's type: the table is copied.
            """
            CREATE TABLE archive_files_by_row (
                path TEXT PRIMARY KEY,
                size INTEGER NOT NULL,
                mtime_ns INTEGER NOT NULL,
                hash TEXT NOT NULL,
                story INTEGER, -- rowid of the story the file carries
                outcome TEXT NOT NULL CHECK (outcome IN ('story', 'rejected', 'skipped')),
                reason TEXT
            ) WITHOUT ROWID
            """,
            """
            INSERT INTO archive_files_by_row (path, size, mtime_ns, hash, story, outcome, reason)
            SELECT f.path, f.size, f.mtime_ns, f.hash, s.rowid, f.outcome, f.reason
            FROM archive_files f LEFT JOIN stories s ON s.canonical = f.story
            """,
            "DROP TABLE archive_files",
            "ALTER TABLE archive_files_by_row RENAME TO archive_files",
            "CREATE INDEX archive_files_story ON archive_files (story)",
        ),
    ),
    (
        "indexes nothing reads",
        (
            # No query's plan uses them (EXPLAIN QUERY PLAN over every statement the tests
            # run): heat_changed_at is only shown, heat_history only written, story_changes
            # read by its sequence; and stories are never deleted, so no ON DELETE CASCADE
            # looks their rows up. 4.7 MB of a 100k-story database.
            "DROP INDEX stories_heat_changed",
            "DROP INDEX heat_history_story",
            "DROP INDEX story_changes_story",
        ),
    ),
    (
        "subscriptions by kind of filters, digest or not",
        (
            # Deciding a changed story groups its topic's subscriptions by kind of
            # filters: with every grouped column here, that is one ordered pass over
            # this index (no sort of the topic's subscriptions per story).
            "DROP INDEX subscriptions_kind",
            """
            CREATE INDEX subscriptions_kind ON subscriptions
                (topic, min_heat, keywords, exclude, match_any, paused_by IS NULL, digest IS NULL)
            """,
        ),
    ),
    (
        "files that are not stories",
        (
            # Every ingest reports the rejected and skipped files: a few rows, found here
            # without reading every file's row.
            """
            CREATE INDEX archive_files_not_stories ON archive_files (path)
                WHERE outcome != 'story'
            """,
        ),
    ),
    (
        "deliveries keyed by story first",
        (
            # Deciding a hot story records one row per subscribed channel: keyed by
            # channel first, those rows land on every page of the table (10,000 rows
            # into 400,000 sent ones: 55 MB of log, 45-115 ms); keyed by story first,
            # they fill adjacent pages however long the history (3.5 MB, 13-14 ms). A
            # channel's rows are found by state (deliveries_state) or by story.
            # SQLite cannot change a primary key: the table is copied.
            """
            CREATE TABLE deliveries_by_story (
                channel_id INTEGER NOT NULL,
                story INTEGER NOT NULL REFERENCES stories (rowid) ON DELETE CASCADE,
                guild_id INTEGER NOT NULL,
                state TEXT NOT NULL
                    CHECK (state IN ('seen', 'pending', 'sending', 'sent', 'dropped')),
                message_id INTEGER,
                created_at INTEGER NOT NULL,
                sent_at INTEGER,
                attempts INTEGER NOT NULL DEFAULT 0,
                last_error TEXT,
                posted_heat INTEGER,
                posted_coverage INTEGER,
                shown_heat INTEGER,
                shown_coverage INTEGER,
                edited_at INTEGER,
                live_stopped INTEGER NOT NULL DEFAULT 0,
                style TEXT,
                claimed_by TEXT,
                claimed_at INTEGER,
                PRIMARY KEY (story, channel_id)
            ) WITHOUT ROWID
            """,
            """
            INSERT INTO deliveries_by_story
                (channel_id, story, guild_id, state, message_id, created_at, sent_at,
                 attempts, last_error, posted_heat, posted_coverage, shown_heat,
                 shown_coverage, edited_at, live_stopped, style, claimed_by, claimed_at)
            SELECT channel_id, story, guild_id, state, message_id, created_at, sent_at,
                 attempts, last_error, posted_heat, posted_coverage, shown_heat,
                 shown_coverage, edited_at, live_stopped, style, claimed_by, claimed_at
            FROM deliveries
            """,
            "DROP TABLE deliveries",
            "ALTER TABLE deliveries_by_story RENAME TO deliveries",
            "CREATE INDEX deliveries_state ON deliveries (state, channel_id)",
            "CREATE INDEX deliveries_sent ON deliveries (sent_at) WHERE state = 'sent'",
        ),
    ),
    (
        "fan-outs of due stories",
        (
            # A story due for a kind of filters (see `changed_candidates`): its pending
            # deliveries, one per subscribed channel, are written after the decide that
            # records this row, a chunk of channels per transaction, in channel order
            # from `after_channel` on (10,000 rows in one transaction held the write lock
            # for 20-30 ms, 200 ms for 100,000). The kind's filters are kept, not a
            # subscription: any subscription of the kind may go meanwhile.
            """
            CREATE TABLE fanouts (
                id INTEGER PRIMARY KEY,
                story INTEGER NOT NULL REFERENCES stories (rowid) ON DELETE CASCADE,
                topic INTEGER NOT NULL REFERENCES topics (id),
                min_heat INTEGER NOT NULL,
                keywords TEXT NOT NULL,
                exclude TEXT NOT NULL,
                match_any INTEGER NOT NULL,
                paused INTEGER NOT NULL,
                created_at INTEGER NOT NULL,
                after_channel INTEGER NOT NULL DEFAULT 0,
                UNIQUE (story, topic, min_heat, keywords, exclude, match_any, paused)
            )
            """,
            # A kind's subscriptions in channel order: a fan-out's next chunk is a range.
            "DROP INDEX subscriptions_kind",
            """
            CREATE INDEX subscriptions_kind ON subscriptions
                (topic, min_heat, keywords, exclude, match_any, paused_by IS NULL, digest IS NULL,
                 channel_id)
            """,
        ),
    ),
]


def connect(path: str | Path) -> sqlite3.Connection:
    """A plain sqlite3 connection with the project's pragmas (autocommit; explicit BEGIN),
    its rows read by column name."""
    path = Path(path)
    if str(path) != ":memory:":
        path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    apply_pragmas(conn)
    return conn


def apply_pragmas(conn: sqlite3.Connection) -> None:
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")


def migrate(conn: sqlite3.Connection) -> list[str]:
    """Apply the migrations this database lacks; returns their names."""
    conn.execute(
        """
        CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
        )
        """
    )
    applied = {row["version"] for row in conn.execute("SELECT version FROM schema_migrations")}
    done = []
    for version, (name, statements) in enumerate(MIGRATIONS, start=1):
        if version in applied:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have migrated while we waited for the lock.
            if conn.execute(
                "SELECT 1 FROM schema_migrations WHERE version = ?", (version,)
            ).fetchone():
                conn.execute("COMMIT")
                continue
            for statement in statements:
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations (version, name) VALUES (?, ?)", (version, name)
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        log.info("applied migration %d: %s", version, name)
        done.append(name)
    return done
