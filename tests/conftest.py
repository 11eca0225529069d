from __future__ import annotations

import itertools
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.ingest import ingest
from core.store import Store, open_store

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
CORPUS = ROOT.parent / "shared" / "corpus" / "power-apps"
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def story_file(
    title: str = "A story",
    url: str = "https://example.com/a-story",
    heat: int | str = 50,
    topics: tuple[str, ...] = ("AI",),
    extra: str = "",
    published: str = "2025-12-31T12:00:00Z",
) -> str:
    """The text of one archive file, for tests that build their own archive."""
    topic_lines = "".join(f"  - {t}\n" for t in topics)
    return (
        f'---\ncategory: news\ntitle: "{title}"\nexcerpt: "About {title}."\n'
        f"publishedDateTime: {published}\n"
        f'originalUrl: "{url}"\nwebUrl: "{url}"\ntype: article\nheat: {heat}\n'
        f"published: true\nprovider:\n  name: Example\n  domain: example.com\n"
        f"topics:\n{topic_lines}{extra}---\n"
    )


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    """An empty archive folder the test fills."""
    path = tmp_path / "archive"
    path.mkdir()
    return path


@pytest.fixture
def corpus_copy(tmp_path: Path) -> Path:
    path = tmp_path / "corpus"
    shutil.copytree(CORPUS, path)
    return path


# -- the two backends ----------------------------------------------------------------

BACKENDS = ("sqlite", "postgresql")
# Modules whose bot (through `bot_config`) runs on both backends; every test using the
# `store` fixture does anyway.
BOTH_BACKENDS_MODULES = {"test_subscriptions", "test_pins", "test_scaleout"}
# NEWS_TEST_POSTGRES: the URL of a server the tests may create databases on, instead of
# the throwaway cluster they start themselves (tests/pgcluster.py).
EXTERNAL_SERVER = "NEWS_TEST_POSTGRES"
TEMPLATE = "news_template"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """`backend` is parametrised (ids `sqlite`, `postgresql`) for the tests of the store
    and of the modules in BOTH_BACKENDS_MODULES; elsewhere it is SQLite."""
    if "backend" not in metafunc.fixturenames:
        return
    module = metafunc.module.__name__.rpartition(".")[2]
    if "store" in metafunc.fixturenames or module in BOTH_BACKENDS_MODULES:
        metafunc.parametrize("backend", BACKENDS, indirect=True)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    return getattr(request, "param", "sqlite")


@pytest.fixture(scope="session")
def postgres_server():
    """The URL of a PostgreSQL server's maintenance database, with a migrated template.

    A throwaway cluster, started once for the session and removed at its end. Without
    PostgreSQL the PostgreSQL tests are skipped, except in CI (CI=true): there they fail.
    """
    import asyncio

    from pgcluster import Cluster, find_bindir

    cluster = None
    url = os.environ.get(EXTERNAL_SERVER)
    if not url:
        bindir = find_bindir()
        if bindir is None:
            reason = "PostgreSQL is not installed (Debian: apt-get install postgresql)"
            if os.environ.get("CI") == "true":
                pytest.fail(f"{reason}: CI runs every test on both backends", pytrace=False)
            pytest.skip(reason)
        cluster = Cluster(bindir).start()
        url = cluster.url()
    try:
        asyncio.run(_make_template(url))
        yield url
    finally:
        if cluster is not None:
            cluster.stop()


async def _make_template(url: str) -> None:
    import asyncpg

    from core.store.postgres import PostgresStore

    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)")
        await conn.execute(f"CREATE DATABASE {TEMPLATE}")
    finally:
        await conn.close()
    store = await PostgresStore.open(_database_url(url, TEMPLATE))
    await store.close()


def _database_url(server: str, dbname: str) -> str:
    base, _, query = server.partition("?")
    return f"{base.rsplit('/', 1)[0]}/{dbname}" + (f"?{query}" if query else "")


_database_numbers = itertools.count(1)


@pytest.fixture
async def postgres_url(postgres_server: str):
    """A fresh, migrated PostgreSQL database for one test (a copy of the template)."""
    import asyncpg

    name = f"news_test_{os.getpid()}_{next(_database_numbers)}"
    conn = await asyncpg.connect(postgres_server)
    try:
        await conn.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE} STRATEGY FILE_COPY")
    finally:
        await conn.close()
    yield _database_url(postgres_server, name)
    conn = await asyncpg.connect(postgres_server)
    try:
        await conn.execute(f"DROP DATABASE {name} WITH (FORCE)")
    finally:
        await conn.close()


@pytest.fixture
def database(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str | Path:
    """NEWS_DB for the test's backend: a SQLite file, or a fresh PostgreSQL database."""
    if backend == "postgresql":
        return request.getfixturevalue("postgres_url")
    return tmp_path / "news.db"


def location(store) -> str | Path:
    """Where a store keeps its data: the SQLite file, or the PostgreSQL URL."""
    return store.path if isinstance(store, Store) else store.url


def query_rows(db: str | Path, query: str, params=()) -> list[tuple]:
    """Rows of a query (SQLite's spelling) run beside the store, on either backend."""
    if not (isinstance(db, str) and db.startswith("postgresql://")):
        import sqlite3

        conn = sqlite3.connect(db)
        try:
            return conn.execute(query, params).fetchall()
        finally:
            conn.close()
    import asyncio
    import concurrent.futures

    import asyncpg

    from core.store.postgres.dialect import to_postgres

    async def fetch() -> list[tuple]:
        conn = await asyncpg.connect(db)
        try:
            return [tuple(r) for r in await conn.fetch(to_postgres(query), *params)]
        finally:
            await conn.close()

    # In a thread of its own: the calling test may be running an event loop.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, fetch()).result()


@pytest.fixture
async def store(database: str | Path):
    opened = await open_store(database)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def corpus_store(store: Store) -> Store:
    await ingest(store, CORPUS, NOW)
    return store


# -- the bot in a simulated Discord (simcord) --------------------------------------


# simcord waits up to 5 s of real time for the bot to settle after each step; a loaded
# 2-core machine can exceed that on a busy step, which would fail a correct test.
SETTLE_TIMEOUT_SECONDS = 30.0


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Give every simcord test the longer settle timeout, keeping its own simcord options."""
    for item in items:
        if "simcord_env" not in getattr(item, "fixturenames", ()):
            continue
        marker = item.get_closest_marker("simcord")
        # The bot is an AutoShardedBot; one shard unless the test asks for more.
        defaults = {"settle_timeout": SETTLE_TIMEOUT_SECONDS, "shard_count": 1}
        options = {**defaults, **(marker.kwargs if marker else {})}
        item.add_marker(pytest.mark.simcord(**options), append=False)


@pytest.fixture
def db_url(backend: str, request: pytest.FixtureRequest) -> str | None:
    """A bot's `Config.db_url`: a fresh PostgreSQL database on that backend, else None
    (its db_path, a SQLite file)."""
    return request.getfixturevalue("postgres_url") if backend == "postgresql" else None


@pytest.fixture
def bot_config(tmp_path: Path, db_url: str | None):
    """The bot's configuration for one test: its own database, the seed archive."""
    from core.config import Config

    return Config(archive=SEEDS, db_path=tmp_path / "bot.db", db_url=db_url, hot_heat=100)


@pytest.fixture
async def bots():
    """Every bot a test builds; their stores are closed at the end.

    simcord detaches a bot without calling `close()`, so an open store would
    keep its aiosqlite thread alive and pytest would hang on exit.
    """
    built: list = []
    yield built
    for bot in built:
        if bot.store is not None:
            await bot.store.close()


@pytest.fixture
def make_bot(bots):
    """A fresh bot (e.g. for `env.restart_bot`), closed at the end of the test."""
    from bot.app import create_bot

    def make(config):
        bot = create_bot(config)
        bots.append(bot)
        return bot

    return make


@pytest.fixture
def simcord_bot(bot_config, make_bot):
    return make_bot(bot_config)


@pytest.fixture
async def newsroom(simcord_env):
    """A server with #general, a member and a moderator; the archive loaded."""
    import discord

    env = simcord_env
    guild = env.create_guild(name="Newsroom")
    general = guild.create_text_channel("general")
    member = guild.add_member(env.create_user("alice"))
    mods = guild.create_role(
        "Mods",
        permissions=discord.Permissions(
            manage_messages=True, manage_channels=True, pin_messages=True
        ),
    )
    moderator = guild.add_member(env.create_user("morgan"), roles=[mods])
    await env.bot.archive_loaded.wait()
    return World(env, guild, general, member, moderator)


class World:
    def __init__(self, env, guild, channel, member, moderator):
        self.env, self.guild, self.channel = env, guild, channel
        self.member, self.moderator = member, moderator

    @property
    def bot(self):
        return self.env.bot


def buttons(message) -> list[tuple[str | None, str | None, str | None, bool]]:
    """(label, custom_id, url, disabled) of every button of a message."""
    import discord

    message = getattr(message, "message", message)
    out = []
    for row in message.components:
        for item in getattr(row, "children", [row]):
            if isinstance(item, discord.Button):
                out.append((item.label, item.custom_id, item.url, item.disabled))
    return out
