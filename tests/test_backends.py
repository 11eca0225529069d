"""SQLite and PostgreSQL side by side: one contract, one schema, the same answers.

The corpus is ingested into both; every list a user can see (topics, topic pages, the
hottest and newest stories) must be identical, every search must find the same set of
stories (the same first one for a clear query, the same page for ranked queries), and the
CLI must answer alike whichever database NEWS_DB names.
"""

from __future__ import annotations

import inspect
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest
from conftest import CORPUS, NOW, ROOT

from core.ingest import ingest
from core.store import NewsStore, Store
from core.store import schema as sqlite_schema
from core.store.postgres import PostgresStore
from core.store.postgres import schema as postgres_schema
from core.store.postgres.writer import PostgresArchiveWriter
from core.store.protocol import ArchiveWriter

# Text a user may type that FTS5 (or tsquery) syntax would choke on, and ordinary queries.
QUERIES = [
    "portals",
    "AI Builder",
    "GPT-3",
    "power fx",
    "canvas apps",
    "dataverse",
    "teams integration",
    "model-driven",
    "copilot",
    "the",
    '"unbalanced',
    "AND OR",
    "NOT",
    "title:x",
    "*",
    "power*",
    "(dataverse",
    "-canvas",
    "a'b",
    "café",
    "NEAR(power apps)",
    "",
]
# A query whose best match is clear: both backends rank it first.
CLEAR_QUERIES = ["GPT-3", "AI Builder", "power fx", "portals"]
# Which columns PostgreSQL has beyond SQLite's: its full-text data, which SQLite keeps in
# the FTS5 tables (stories_fts and its shadow tables, stories_vocab).
POSTGRES_ONLY = {("stories", "fts"), ("stories", "fts_tokens")}


@pytest.fixture
async def both(tmp_path: Path, postgres_url: str):
    """(SQLite store, PostgreSQL store), the corpus ingested into each."""
    lite = await Store.open(tmp_path / "news.db")
    pg = await PostgresStore.open(postgres_url)
    try:
        await ingest(lite, CORPUS, NOW)
        await ingest(pg, CORPUS, NOW)
        yield lite, pg
    finally:
        await lite.close()
        await pg.close()


def ids(page) -> list[str]:
    return [s.id for s in page.stories]


async def test_the_topic_lists_are_identical(both):
    lite, pg = both
    for prefix in ("", "power", "ai", "teams", "zzz", "%", "_"):
        assert await lite.topics(prefix, limit=500) == await pg.topics(prefix, limit=500)


async def test_topic_pages_and_the_hot_and_new_orders_are_identical(both):
    lite, pg = both
    for sort in ("hot", "new"):
        first = await lite.stories(sort=sort, limit=1000)
        assert first.total > 100
        assert ids(first) == ids(await pg.stories(sort=sort, limit=1000))
        assert ids(await lite.stories(sort=sort, limit=7, offset=14)) == ids(
            await pg.stories(sort=sort, limit=7, offset=14)
        )
        for topic in await lite.topics(limit=40):
            a = await lite.stories(topic.name, sort=sort, limit=100)
            b = await pg.stories(topic.name, sort=sort, limit=100)
            assert (a.total, ids(a)) == (b.total, ids(b)), topic.name
        assert ids(await lite.stories("Power Apps", sort, min_heat=50)) == ids(
            await pg.stories("Power Apps", sort, min_heat=50)
        )


async def test_every_search_finds_the_same_stories(both):
    lite, pg = both
    for text in QUERIES:
        for sort in ("relevance", "hot", "new"):
            a = await lite.search(text, sort=sort, limit=1000)
            b = await pg.search(text, sort=sort, limit=1000)
            assert (a.total, a.total_is_estimate) == (b.total, b.total_is_estimate), text
            assert set(ids(a)) == set(ids(b)), text
            if sort != "relevance":
                assert ids(a) == ids(b), (text, sort)
        a = await lite.search(text, "Power Apps", limit=1000)
        b = await pg.search(text, "Power Apps", limit=1000)
        assert set(ids(a)) == set(ids(b)), text


async def test_a_clear_query_has_the_same_first_result(both):
    lite, pg = both
    for text in CLEAR_QUERIES:
        a, b = await lite.search(text, limit=5), await pg.search(text, limit=5)
        assert ids(a)[:1] == ids(b)[:1] != [], text
        # PostgreSQL computes SQLite's bm25 itself: the whole page agrees.
        assert ids(a) == ids(b), text


async def test_stories_found_by_id_and_title_words_are_the_same(both):
    lite, pg = both
    some = (await lite.stories(limit=5)).stories
    for story in some:
        assert await pg.story(story.id) == story
    # Autocomplete (title words, each maybe unfinished): the same stories; PostgreSQL
    # orders them by ts_rank, not bm25, so only an unambiguous prefix has one order.
    for text in ("power", "canv", "ai bu", "gpt", some[0].id, '"', ""):
        a = [s.id for s in await lite.find_stories(text, limit=1000)]
        b = [s.id for s in await pg.find_stories(text, limit=1000)]
        assert set(a) == set(b), text
    assert [s.id for s in await lite.find_stories("gpt")] == [
        s.id for s in await pg.find_stories("gpt")
    ]
    assert await lite.closest_topics("powr apps") == await pg.closest_topics("powr apps")


async def test_did_you_mean_looks_among_neighbours_alike(both, monkeypatch):
    """A large archive compares only the topic names sorting next to the text typed
    (a JSON list of keys passed to the query): the same suggestions on both."""
    lite, pg = both
    monkeypatch.setattr("core.store.stories.SUGGEST_ALL_BELOW", 0)
    for typed in ("powr apps", "Power Platfrom", "teams", "x"):
        assert await lite.closest_topics(typed) == await pg.closest_topics(typed), typed


def _parameters(function) -> list[tuple[str, object, object]]:
    signature = inspect.signature(function)
    return [(p.name, p.kind, p.default) for p in signature.parameters.values()]


def test_the_postgres_store_has_every_method_of_the_protocol_with_its_signature():
    for protocol, implementation in (
        (NewsStore, PostgresStore),
        (ArchiveWriter, PostgresArchiveWriter),
    ):
        names = [n for n in vars(protocol) if not n.startswith("_") and callable(vars(protocol)[n])]
        assert names
        for name in names:
            assert hasattr(implementation, name), f"{implementation.__name__} lacks {name}"
            assert _parameters(getattr(protocol, name)) == _parameters(
                getattr(implementation, name)
            ), name


def _sqlite_columns(path: Path) -> set[tuple[str, str]]:
    conn = sqlite3.connect(path)
    try:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'"
                " AND name NOT LIKE 'sqlite_%' AND name NOT LIKE 'stories_fts%'"
                " AND name != 'stories_vocab'"
            )
        ]
        return {
            (table, row[1])
            for table in tables
            for row in conn.execute(f"PRAGMA table_info({table})")
        }
    finally:
        conn.close()


async def test_both_schemas_have_the_same_tables_and_columns(tmp_path: Path, postgres_url: str):
    assert [name for name, _ in postgres_schema.MIGRATIONS] == [
        name for name, _ in sqlite_schema.MIGRATIONS
    ], "each SQLite migration has its PostgreSQL twin, in the same place"
    await (await Store.open(tmp_path / "news.db")).close()
    conn = await asyncpg.connect(postgres_url)
    try:
        rows = await conn.fetch(
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_schema = 'public'"
        )
        recorded = await conn.fetch("SELECT version, name FROM schema_migrations ORDER BY version")
    finally:
        await conn.close()
    postgres = {(row["table_name"], row["column_name"]) for row in rows}
    sqlite_side = _sqlite_columns(tmp_path / "news.db")
    # schema_migrations' applied_at is a timestamp in both; stories_fts lives in FTS5.
    assert postgres - POSTGRES_ONLY == sqlite_side
    assert [(r["version"], r["name"]) for r in recorded] == [
        (n, name) for n, (name, _) in enumerate(postgres_schema.MIGRATIONS, start=1)
    ]


# One story row (rowid 7), for the tests of a migration that need a story to point to.
STORY_7 = (
    "INSERT INTO stories (rowid, id, canonical, url, fingerprint, title, first_seen_at,"
    " updated_at, heat_changed_at) VALUES (7, 'abc', 'https://example.com/a',"
    " 'https://example.com/a', 'f', 'A', 0, 0, 0)"
)


async def test_postgres_keys_archive_files_by_story_row_after_its_migration(postgres_url: str):
    # The twin of the SQLite migration (tests/test_ingest.py migrates an ingested archive):
    # a file's story, known by canonical URL before, becomes its row id; NULL if none.
    names = [name for name, _ in postgres_schema.MIGRATIONS]
    version = names.index("archive files keyed by the story's row") + 1
    conn = await asyncpg.connect(postgres_url)
    try:
        await conn.execute('ALTER TABLE archive_files ALTER COLUMN story TYPE TEXT COLLATE "C"')
        await conn.execute("DELETE FROM schema_migrations WHERE version = $1", version)
        await conn.execute(STORY_7)
        await conn.executemany(
            "INSERT INTO archive_files (path, size, mtime_ns, hash, story, outcome)"
            " VALUES ($1, 1, 2, 'h', $2, $3)",
            [
                ("a.md", "https://example.com/a", "story"),
                ("b.md", None, "skipped"),
                ("c.md", "https://example.com/unknown", "rejected"),
            ],
        )

        assert await postgres_schema.migrate(conn) == ["archive files keyed by the story's row"]

        rows = await conn.fetch("SELECT path, size, story, outcome FROM archive_files ORDER BY 1")
        assert [tuple(row) for row in rows] == [
            ("a.md", 1, 7, "story"),
            ("b.md", 1, None, "skipped"),
            ("c.md", 1, None, "rejected"),
        ]
    finally:
        await conn.close()


async def test_postgres_keys_deliveries_by_story_first_after_its_migration(postgres_url: str):
    # The twin of the SQLite migration (tests/test_store.py migrates recorded deliveries):
    # every delivery is kept, and one already recorded is not recorded a second time.
    names = [name for name, _ in postgres_schema.MIGRATIONS]
    version = names.index("deliveries keyed by story first") + 1
    key = (
        "SELECT a.attname FROM pg_index i"
        " CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n)"
        " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum"
        " WHERE i.indrelid = 'deliveries'::regclass AND i.indisprimary ORDER BY k.n"
    )
    every = "SELECT channel_id, story, state, message_id FROM deliveries ORDER BY 1, 2"
    record = (
        "INSERT INTO deliveries (channel_id, story, guild_id, state, created_at)"
        " VALUES ($1, 7, 1, 'pending', 0) ON CONFLICT DO NOTHING"
    )
    conn = await asyncpg.connect(postgres_url)
    try:
        await conn.execute("ALTER TABLE deliveries DROP CONSTRAINT deliveries_pkey")
        await conn.execute("ALTER TABLE deliveries ADD PRIMARY KEY (channel_id, story)")
        await conn.execute("DELETE FROM schema_migrations WHERE version = $1", version)
        await conn.execute(STORY_7)
        await conn.execute(
            "INSERT INTO deliveries (channel_id, story, guild_id, state, message_id, created_at)"
            " VALUES (555, 7, 1, 'sent', 99, 0), (556, 7, 1, 'pending', NULL, 0)"
        )
        before = [tuple(row) for row in await conn.fetch(every)]
        assert [row["attname"] for row in await conn.fetch(key)] == ["channel_id", "story"]

        assert await postgres_schema.migrate(conn) == ["deliveries keyed by story first"]

        assert [row["attname"] for row in await conn.fetch(key)] == ["story", "channel_id"]
        assert [tuple(row) for row in await conn.fetch(every)] == before
        assert await conn.execute(record, 555) == "INSERT 0 0"
        assert await conn.execute(record, 557) == "INSERT 0 1"
    finally:
        await conn.close()


# -- the CLI on either database -------------------------------------------------------


def cli(*args: str, db: str | Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWS_")}
    env.update(NEWS_DB=str(db), NEWS_ARCHIVE=str(CORPUS), LOG_LEVEL="WARNING")
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_cli_answers_alike_on_postgres(tmp_path: Path, postgres_url: str):
    lite = tmp_path / "news.db"
    for db in (lite, postgres_url):
        done = cli("ingest", str(CORPUS), db=db)
        assert done.returncode == 0, done.stderr
        assert " added," in done.stdout
    for args in (
        ("topics", "--json"),
        ("search", "portals", "--json"),
        ("search", "power", "apps", "--sort", "new", "--limit", "20", "--json"),
        ("search", '"unbalanced', "--json"),
        ("search", "--topic", "Power Apps", "--json"),
    ):
        a, b = cli(*args, db=lite), cli(*args, db=postgres_url)
        assert a.returncode == b.returncode == 0, (a.stderr, b.stderr)
        assert json.loads(a.stdout) == json.loads(b.stdout), args
    story = json.loads(cli("search", "portals", "--json", db=lite).stdout)[0]["id"]
    a, b = cli("story", story, db=lite), cli("story", story, db=postgres_url)
    assert a.stdout == b.stdout and b.returncode == 0


def test_an_unreachable_server_is_one_clear_line(tmp_path: Path):
    url = f"postgresql://news:secret@/news?host={tmp_path}"  # no server listens there
    done = cli("topics", db=url)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("database postgresql://news:***@/news")
    assert "cannot connect" in lines[0] and "secret" not in lines[0]


def test_news_db_names_either_backend():
    from core.config import Config

    url = "postgresql://newsbot:secret@db.example/newsbot"
    on_postgres = Config.from_env({"NEWS_DB": url}, dotenv_path=None)
    assert (on_postgres.database, on_postgres.db_url) == (url, url)
    assert "secret" not in repr(on_postgres)
    on_sqlite = Config.from_env({"NEWS_DB": "data/x.db"}, dotenv_path=None)
    assert (on_sqlite.database, on_sqlite.db_url) == (Path("data/x.db"), None)
