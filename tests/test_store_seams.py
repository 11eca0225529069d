"""The store's seams: one interface, atomic changes, rows read by name, stable fingerprints."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import sqlite3
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import asyncpg
import pytest
from conftest import CORPUS, NOW, ROOT, story_file

import core.store.pins
import core.store.stories
import core.store.subscriptions
from bot.delivery import Deliverer
from core.config import Config
from core.fingerprint import fingerprint
from core.ingest import ingest, ingest_archive
from core.models import Coverage, Story
from core.sources import follow, source_states
from core.sources.config import Source
from core.store import NewsStore, Store
from core.store.archive_writer import SqliteArchiveWriter
from core.store.direct import DirectStore, run_now

GUILD, CHANNEL, OTHER_CHANNEL = 10, 20, 30


def sql(db: Path, query: str) -> None:
    """A change made beside the store, as another process (or a broken migration) would."""
    conn = sqlite3.connect(db)
    try:
        conn.executescript(query)
    finally:
        conn.close()


# What a failing statement raises, on either backend.
DATABASE_ERRORS = (sqlite3.DatabaseError, asyncpg.PostgresError)


async def beside(store: NewsStore, script: str) -> None:
    """`sql` on either backend: statements run on a connection of their own."""
    if isinstance(store, Store):
        sql(store.path, script)
        return
    conn = await asyncpg.connect(store.url)  # type: ignore[attr-defined]
    try:
        await conn.execute(script)
    finally:
        await conn.close()


async def fail_before(store: NewsStore, event: str, table: str) -> None:
    """A fault injected: every row `event` (INSERT, UPDATE, DELETE) on `table` fails."""
    name = f"{table}_fails"
    if isinstance(store, Store):
        sql(
            store.path,
            f"""CREATE TRIGGER {name} BEFORE {event} ON {table}
                BEGIN SELECT RAISE(ABORT, 'injected failure'); END""",
        )
        return
    await beside(
        store,
        f"""CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'injected failure'; END $$;
            CREATE TRIGGER {name} BEFORE {event} ON {table}
            FOR EACH ROW EXECUTE FUNCTION {name}()""",
    )


async def heal(store: NewsStore, table: str) -> None:
    """The fault of `fail_before` gone."""
    name = f"{table}_fails"
    on_table = "" if isinstance(store, Store) else f" ON {table}"
    await beside(store, f"DROP TRIGGER {name}{on_table}")


async def table_counts(store: Store) -> dict[str, int]:
    out = {}
    for table in ("subscriptions", "deliveries", "channel_notices", "pins"):
        row = await store._row(f"SELECT count(*) AS n FROM {table}")
        assert row is not None
        out[table] = row["n"]
    return out


@pytest.fixture
async def busy_store(corpus_store: Store) -> Store:
    """A channel with a subscription, deliveries (one pending, one sent), a notice and a pin."""
    hot = (await corpus_store.stories(limit=3)).stories
    topic = hot[0].topics[0]
    await corpus_store.subscribe(
        guild_id=GUILD, channel_id=CHANNEL, topic=topic, min_heat=0, now=NOW
    )
    await corpus_store.record_deliveries(
        [(GUILD, CHANNEL, hot[0].id, "pending"), (GUILD, CHANNEL, hot[1].id, "pending")], NOW
    )
    await corpus_store.mark_delivery(CHANNEL, hot[1].id, "sent", NOW, message_id=555)
    await corpus_store.claim_notice(CHANNEL, "missing permission", NOW)
    await corpus_store.record_pin(
        guild_id=GUILD,
        channel_id=CHANNEL,
        message_id=555,
        story_id=hot[1].id,
        pinned_by=7,
        now=NOW,
    )
    return corpus_store


# -- atomic() ---------------------------------------------------------------------


async def test_a_failure_inside_delete_channel_leaves_everything_as_it_was(busy_store: Store):
    before = await table_counts(busy_store)
    # The last of delete_channel's three statements fails, after the first two ran.
    await fail_before(busy_store, "DELETE", "channel_notices")

    with pytest.raises(DATABASE_ERRORS, match="injected failure"):
        await busy_store.delete_channel(CHANNEL)

    assert await table_counts(busy_store) == before
    assert [s.channel_id for s in await busy_store.subscriptions(GUILD)] == [CHANNEL]
    assert len(await busy_store.due_deliveries(channel_id=CHANNEL)) == 1
    # No transaction is left open: once the fault is gone, the same call goes through.
    await heal(busy_store, "channel_notices")
    assert await busy_store.delete_channel(CHANNEL) == 1
    after = await table_counts(busy_store)
    assert (after["subscriptions"], after["channel_notices"]) == (0, 0)
    assert after["deliveries"] == 1  # the sent one stays: it was posted


async def test_a_failure_while_unsubscribing_keeps_the_pending_stories(busy_store: Store):
    before = await table_counts(busy_store)
    await fail_before(busy_store, "UPDATE", "deliveries")
    with pytest.raises(DATABASE_ERRORS, match="injected failure"):
        await busy_store.unsubscribe(CHANNEL, None)
    assert await table_counts(busy_store) == before
    assert len(await busy_store.subscriptions(GUILD)) == 1


async def test_a_failure_while_starting_a_digest_leaves_nothing_half_written(
    corpus_store: Store,
):
    """A digest's first round marks what already qualifies as seen, collects the
    `backfill` hottest and records that first digest: all of it, or none of it."""
    topic = (await corpus_store.stories(limit=1)).stories[0].topics[0]
    subscription = await corpus_store.subscribe(
        guild_id=GUILD, channel_id=CHANNEL, topic=topic, min_heat=0, digest="daily", now=NOW
    )
    assert subscription is not None
    # The sender needs the store and the limits of its bot, nothing of Discord here.
    deliverer = Deliverer(SimpleNamespace(store=corpus_store, config=Config(max_age_hours=0)))

    async def digest_rows() -> tuple[int, int]:
        items = await corpus_store._row("SELECT count(*) AS n FROM digest_items")
        digests = await corpus_store._row("SELECT count(*) AS n FROM digests")
        assert items is not None and digests is not None
        return items["n"], digests["n"]

    # The last statement fails, after the seen marks and the collected story were written.
    await fail_before(corpus_store, "INSERT", "digests")
    with pytest.raises(DATABASE_ERRORS, match="injected failure"):
        await deliverer.start_subscription(subscription, NOW, backfill=1)
    assert await digest_rows() == (0, 0)

    # Nothing is left open: once the fault is gone, the same start goes through.
    await heal(corpus_store, "digests")
    qualification, backfilled = await deliverer.start_subscription(subscription, NOW, backfill=1)
    assert backfilled == 1 and len(qualification.stories) > 1
    assert await digest_rows() == (len(qualification.stories), 1)


async def test_atomic_nests_as_savepoints(store: Store):
    async with store.atomic():
        await store.set_state("outer", "kept")
        with pytest.raises(RuntimeError):
            async with store.atomic():
                await store.set_state("inner", "undone")
                raise RuntimeError("inner fails")
        assert await store.get_state("inner") is None
    assert await store.get_state("outer") == "kept"

    with pytest.raises(RuntimeError):
        async with store.atomic():
            await store.set_state("outer2", "undone")
            async with store.atomic():
                await store.set_state("inner2", "undone with the outer one")
            raise RuntimeError("outer fails")
    assert (await store.get_state("outer2"), await store.get_state("inner2")) == (None, None)


async def test_another_tasks_write_is_not_rolled_back_with_a_failed_transaction(store: Store):
    inside = asyncio.Event()

    async def failing_change() -> None:
        async with store.atomic():
            await store.set_state("failed", "1")
            inside.set()
            await asyncio.sleep(0.05)  # the other task tries to write now
            raise RuntimeError("fails")

    async def other_change() -> None:
        await inside.wait()
        await store.set_state("other", "2")

    failing = asyncio.create_task(failing_change())
    await other_change()
    with pytest.raises(RuntimeError):
        await failing
    assert await store.get_state("failed") is None
    assert await store.get_state("other") == "2"


# -- rows read by name --------------------------------------------------------------


async def snapshot(store: Store) -> tuple:
    """What the bot reads back: stories, related, subscriptions, deliveries, pins, posts
    kept current, digests."""
    hot = (await store.stories(limit=3)).stories
    related = await store.related(hot[0].id)
    (digest_sub, _), *_ = await store.digest_subscriptions()
    return (
        hot,
        await store.story(hot[0].id),
        related,
        await store.search("power apps", limit=5),
        await store.subscriptions(GUILD),
        await store.active_subscriptions(CHANNEL),
        await store.due_deliveries(),
        await store.channel_pins(CHANNEL),
        await store.pin(555),
        await store.live_posts(NOW - timedelta(days=1)),
        await store.digest_subscriptions(),
        await store.collected_stories(digest_sub.id, NOW - timedelta(days=1), NOW),
        await store.digests("pending"),
    )


async def test_an_added_column_changes_no_read(busy_store: Store, monkeypatch):
    hot = (await busy_store.stories(limit=3)).stories
    # The sent post showed less heat than the story has now: it is a post to keep current.
    await busy_store.record_posted(CHANNEL, hot[1].id, hot[1].heat - 1)
    digest_sub = await busy_store.subscribe(
        guild_id=GUILD,
        channel_id=OTHER_CHANNEL,
        topic=hot[0].topics[0],
        min_heat=0,
        digest="daily",
        now=NOW,
    )
    assert digest_sub is not None
    await busy_store.collect_like(hot[0].id, digest_sub.id, NOW)
    await busy_store.record_digest(
        digest_sub, NOW - timedelta(days=1), NOW, [hot[2].id, hot[0].id], NOW
    )
    before = await snapshot(busy_store)
    assert before[2] is not None and before[2].similar  # related scores are compared too
    assert before[4][0].last_story is not None  # and the last story posted
    assert [post.story.id for post in before[9]] == [hot[1].id]
    assert [story.id for story, _ in before[11]] == [hot[0].id]
    assert [story.id for story in before[12][0].stories] == [hot[2].id, hot[0].id]

    # A new column in front of every shared column list (a positional reader shifts)…
    for module in (core.store.stories, core.store.subscriptions, core.store.pins):
        for name in ("STORY_COLUMNS", "SUBSCRIPTION_COLUMNS", "DELIVERY_COLUMNS", "PIN_COLUMNS"):
            if hasattr(module, name):
                columns = getattr(module, name)
                monkeypatch.setattr(module, name, f"'new' AS new_column, {columns}")
    # …and in every table the reads use.
    await beside(
        busy_store,
        """
        ALTER TABLE stories ADD COLUMN new_column TEXT DEFAULT 'x';
        ALTER TABLE subscriptions ADD COLUMN new_column TEXT DEFAULT 'x';
        ALTER TABLE deliveries ADD COLUMN new_column TEXT DEFAULT 'x';
        ALTER TABLE pins ADD COLUMN new_column TEXT DEFAULT 'x';
        ALTER TABLE coverage ADD COLUMN new_column TEXT DEFAULT 'x';
        ALTER TABLE digests ADD COLUMN new_column TEXT DEFAULT 'x';
        ALTER TABLE digest_items ADD COLUMN new_column TEXT DEFAULT 'x';
        """,
    )

    assert await snapshot(busy_store) == before


def test_the_store_reads_no_row_by_position():
    """A guard for new code: rows are read by column name (see STYLE.md, point 9)."""
    by_position = re.compile(
        r"\b(row|r)\[\d|\brows\[\w+\]\[|(fetchone|fetchall)\(\)\[\d"
        r"|\.split\(\",\"\)|\|\|\s*char\(|for \(\w+,\) in"
    )
    modules = sorted((ROOT / "core" / "store").glob("*.py"))
    # Every module of the package, the sources' state and the ingest writer among them.
    assert {"source_state.py", "archive_writer.py", "subscriptions.py"} <= {
        path.name for path in modules
    }
    found = [
        f"{path.name}:{number}: {line.strip()}"
        for path in modules
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if by_position.search(line)
    ]
    assert found == []


# -- one interface --------------------------------------------------------------------


def test_everything_the_bot_and_ingest_call_is_in_the_store_protocol():
    called = set()
    for folder in ("bot", "cogs", "core"):
        for path in (ROOT / folder).rglob("*.py"):
            if path.relative_to(ROOT).parts[:2] == ("core", "store"):
                continue
            called |= set(re.findall(r"\bstore\.([a-z]\w*)\(", path.read_text()))
    assert called, "no store call found: the pattern is out of date"
    missing = {name for name in called if not hasattr(NewsStore, name)}
    assert missing == set()
    assert all(hasattr(Store, name) for name in called)


def test_the_direct_store_answers_as_the_store_does(tmp_path: Path):
    async def answers(store: NewsStore) -> list[object]:
        return [
            await store.search("portals", None, "relevance"),
            await store.topics(),
            await store.story("ht5waumu"),
            await store.related("ht5waumu"),
            await store.closest_topics("teams"),
        ]

    async def in_the_event_loop() -> list[object]:
        async with await Store.open(tmp_path / "news.db") as store:
            await ingest(store, CORPUS, NOW)
            return await answers(store)

    expected = asyncio.run(in_the_event_loop())
    assert all(expected)
    direct = DirectStore.open_now(tmp_path / "news.db")
    try:
        assert run_now(answers(direct)) == expected
    finally:
        run_now(direct.close())


def test_run_now_refuses_a_coroutine_that_waits():
    async def waits() -> None:
        await asyncio.sleep(0)  # gives the event loop a turn: there is none

    with pytest.raises(RuntimeError, match="needs an event loop"):
        run_now(waits())


async def test_ingest_writes_through_the_stores_archive_writer(tmp_path: Path):
    opened = []

    class WatchedStore(Store):
        def archive_writer(self) -> SqliteArchiveWriter:
            writer = super().archive_writer()
            opened.append(writer)
            return writer

    db = tmp_path / "news.db"
    await (await Store.open(db)).close()  # migrated
    async with await WatchedStore.open(db) as store:
        report = await ingest(store, CORPUS, NOW)
        assert len(opened) == 1 and report.added > 0
        assert (await store.stories(limit=1)).total > 0


async def test_following_sources_writes_through_the_stores_archive_writer(tmp_path: Path):
    opened = []

    class WatchedStore(Store):
        def archive_writer(self) -> SqliteArchiveWriter:
            writer = super().archive_writer()
            opened.append(writer)
            return writer

    db = tmp_path / "news.db"
    await (await Store.open(db)).close()  # migrated
    source = Source("local", "folder", str(CORPUS))
    async with await WatchedStore.open(db) as store:
        (outcome,) = await asyncio.to_thread(follow, store, (source,), tmp_path, 60, NOW)
        assert outcome.error is None and outcome.report is not None
        assert outcome.report.added > 0
        # The states read, the ingest, the state saved: each through the store.
        assert len(opened) == 3
        assert (await store.stories(limit=1)).total > 0
    (state,) = source_states(db, (source,)).values()
    assert state.items == outcome.report.scanned and state.last_error is None  # story files


# -- fingerprints -------------------------------------------------------------------


STORY = Story(
    id="abcd2345",
    url="https://example.com/a",
    title="A title",
    canonical="https://example.com/a",
    excerpt="About it.",
    published_at=NOW,
    heat=120,
    provider="Example",
    topics=("AI", "Power Apps"),
    related=(Coverage("Elsewhere", "https://example.org/b", provider="Org"),),
)


def with_new_field(cls: type, name: str, default: object) -> type:
    """`cls` as a later version of the code would define it: one more defaulted field."""
    fields = [(f.name, f.type, f) for f in dataclasses.fields(cls)]
    fields.append((name, type(default), dataclasses.field(default=default)))
    return dataclasses.make_dataclass(cls.__name__, fields, frozen=True, slots=True)


def test_a_new_defaulted_field_keeps_every_fingerprint():
    NewCoverage = with_new_field(Coverage, "language", "")
    NewStory = with_new_field(Story, "wire_service", None)
    values = {f.name: getattr(STORY, f.name) for f in dataclasses.fields(Story)}
    values["related"] = tuple(NewCoverage(**dataclasses.asdict(c)) for c in STORY.related)
    same = NewStory(**values)

    assert fingerprint(same) == fingerprint(STORY)
    # A story that uses the new field has something new to show: it is rewritten.
    assert fingerprint(NewStory(**{**values, "wire_service": "AP"})) != fingerprint(STORY)


def test_the_fingerprint_follows_what_readers_see_and_nothing_else():
    assert fingerprint(dataclasses.replace(STORY, heat=121)) != fingerprint(STORY)
    assert fingerprint(dataclasses.replace(STORY, related=())) != fingerprint(STORY)
    assert fingerprint(dataclasses.replace(STORY, published_at=None)) != fingerprint(STORY)
    # Set by the store, not by the file.
    first_seen = dataclasses.replace(STORY, first_seen_at=NOW, heat_changed_at=NOW)
    assert fingerprint(first_seen) == fingerprint(STORY)


def test_reading_every_unchanged_file_again_rewrites_nothing(archive: Path, tmp_path: Path):
    for n in range(3):
        title, url = f"Story {n}", f"https://example.com/{n}"
        (archive / f"{n}.md").write_text(story_file(title, url, heat=50 * n))
    db = tmp_path / "news.db"
    ingest_archive(db, archive, NOW)
    written = "SELECT id, fingerprint, updated_at FROM stories ORDER BY id"
    before = _query(db, written)

    rescan = ingest_archive(db, archive, NOW + timedelta(days=1))
    assert (rescan.parsed, rescan.added, rescan.updated) == (0, 0, 0)
    # Force every file through the parser and the fingerprint comparison.
    sql(db, "UPDATE bot_state SET value = 'old' WHERE key = 'parser_version'")
    reparse = ingest_archive(db, archive, NOW + timedelta(days=2))

    assert reparse.parsed == rescan.scanned == 3
    assert (reparse.added, reparse.updated, reparse.removed) == (0, 0, 0)
    assert _query(db, written) == before


def _query(db: Path, query: str) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(query).fetchall()
    finally:
        conn.close()
