"""`python -m bot migrate --to postgresql://…`: a SQLite deployment moved, nothing lost,
nothing posted twice."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import discord
import pytest
from conftest import CORPUS, NOW, ROOT, query_rows, story_file

from core.config import Config
from core.ingest import ingest
from core.models import DeliveryState, PostStyle
from core.store import Store
from core.store.postgres import PostgresStore
from core.store.postgres.move import TABLES

GUILD, NEWS, OTHER = 10, 20, 30
POLL = 60


def migrate(source: Path, url: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWS_")}
    env.update(NEWS_DB=str(source), LOG_LEVEL="WARNING")
    return subprocess.run(
        [sys.executable, "-m", "bot", "migrate", "--to", url],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def dump(db: str | Path, like: Path) -> dict[str, list[tuple]]:
    """Every row of every table the move copies, in a stable order, with the columns
    the SQLite database `like` has (PostgreSQL's own full-text columns left out)."""
    out = {}
    for table in TABLES:
        columns = [row[1] for row in query_rows(like, f"PRAGMA table_info({table})")]
        out[table] = sorted(query_rows(db, f"SELECT {', '.join(columns)} FROM {table}"))
    return out


@pytest.fixture
async def deployment(tmp_path: Path) -> Path:
    """A SQLite deployment with every kind of state: subscriptions (live, digest, paused by
    staff), deliveries sent (with their message and look), pending and seen, a fan-out
    not written out yet, a notice, pins, a digest sent, and the delivery watermark."""
    path = tmp_path / "news.db"
    async with await Store.open(path) as store:
        await ingest(store, CORPUS, NOW)
        hot = (await store.stories(limit=4)).stories
        topic = hot[0].topics[0]
        news = await store.subscribe(
            guild_id=GUILD, channel_id=NEWS, topic=topic, min_heat=0, now=NOW
        )
        assert news is not None
        digest = await store.subscribe(
            guild_id=GUILD,
            channel_id=OTHER,
            topic=topic,
            min_heat=0,
            digest="daily",
            style=PostStyle.COMPACT,
            now=NOW,
        )
        assert digest is not None
        await store.subscribe(
            guild_id=GUILD,
            channel_id=NEWS,
            topic=hot[1].topics[-1],
            min_heat=50,
            keywords=("apps",),
            paused_by=7,
            paused_by_at=NOW,
            now=NOW,
        )
        stories, seq = await store.changed_candidates()
        assert stories
        await store.advance_watermark(seq)
        await store.record_deliveries(
            [
                (GUILD, NEWS, hot[0].id, DeliveryState.PENDING),
                (GUILD, NEWS, hot[1].id, DeliveryState.PENDING),
                (GUILD, NEWS, hot[2].id, DeliveryState.SEEN),
            ],
            NOW,
        )
        await store.mark_delivery(NEWS, hot[1].id, DeliveryState.SENDING, NOW)
        await store.mark_delivery(NEWS, hot[1].id, DeliveryState.SENT, NOW, message_id=555)
        await store.record_posted(NEWS, hot[1].id, hot[1].heat - 5, PostStyle.COMPACT)
        await store.claim_notice(NEWS, "missing permission", NOW)
        await store.record_pin(
            guild_id=GUILD,
            channel_id=NEWS,
            message_id=555,
            story_id=hot[1].id,
            pinned_by=7,
            now=NOW,
        )
        await store.record_fanout(hot[3].id, news.id, NOW)  # its deliveries not written yet
        await store.collect_like(hot[3].id, digest.id, NOW)
        await store.record_digest(digest, NOW - timedelta(days=1), NOW, [hot[3].id], NOW)
        await store.mark_digest(digest.id, NOW, "sent", NOW, message_id=777)
    return path


async def test_a_move_copies_every_row_and_running_it_again_changes_nothing(
    deployment: Path, postgres_url: str
):
    before = dump(deployment, deployment)
    tables = ("subscriptions", "deliveries", "fanouts", "pins", "digests")
    assert all(before[t] for t in tables)
    done = migrate(deployment, postgres_url)
    assert done.returncode == 0, done.stderr
    assert "3 subscriptions" in done.stdout and "1 pins" in done.stdout
    moved = dump(postgres_url, deployment)
    origin = ("migrated_from", str(deployment))
    assert moved == {**before, "bot_state": sorted([*before["bot_state"], origin])}

    again = migrate(deployment, postgres_url)
    assert again.returncode == 0, again.stderr
    assert dump(postgres_url, deployment) == moved


async def test_the_moved_store_answers_as_the_old_one(deployment: Path, postgres_url: str):
    assert migrate(deployment, postgres_url).returncode == 0
    async with await Store.open(deployment) as old:
        new = await PostgresStore.open(postgres_url)
        try:
            assert await new.subscriptions(GUILD) == await old.subscriptions(GUILD)
            assert await new.channel_pins(NEWS) == await old.channel_pins(NEWS)
            assert await new.due_deliveries() == await old.due_deliveries()
            # The fan-out left waiting writes the same deliveries.
            assert await new.fan_out(10) == await old.fan_out(10) == 1
            assert await new.due_deliveries() == await old.due_deliveries()
            assert await new.changed_candidates() == ([], (await old.changed_candidates())[1])
            assert await new.digests("pending") == await old.digests("pending")
            assert await new.message_posts(NEWS, 555) == await old.message_posts(NEWS, 555)
            assert not await new.claim_notice(NEWS, "missing permission", NOW)
            assert (await new.search("portals")).stories == (await old.search("portals")).stories
            # New rows are numbered after the copied ones.
            again = await new.subscribe(
                guild_id=GUILD, channel_id=99, topic="Power Apps", min_heat=0, now=NOW
            )
            assert again is not None and again.id == 4
        finally:
            await new.close()


async def test_a_database_of_another_deployment_is_refused(
    deployment: Path, postgres_url: str, tmp_path: Path
):
    other = tmp_path / "other.db"
    async with await Store.open(other) as store:
        await ingest(store, CORPUS, NOW)
    assert migrate(other, postgres_url).returncode == 0
    refused = migrate(deployment, postgres_url)
    assert refused.returncode == 1
    assert refused.stderr.startswith("not migrating: ")
    assert "already holds stories copied from" in refused.stderr


# -- the bot, before and after the move ----------------------------------------------


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    path = tmp_path / "archive"
    path.mkdir()
    text = story_file(title="Story 0", url="https://news.example/0", heat=150)
    (path / "s0.md").write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def bot_config(tmp_path: Path, archive: Path) -> Config:
    return Config(archive=archive, db_path=tmp_path / "bot.db", hot_heat=100, poll_seconds=POLL)


def titles(channel) -> list[str]:
    return [m.embeds[0].title for m in channel.history() if m.embeds]


async def test_a_bot_moved_to_postgres_does_not_post_again(
    simcord_env, bot_config: Config, make_bot, postgres_url: str, archive: Path
):
    env = simcord_env
    guild = env.create_guild(name="Newsroom")
    news = guild.create_text_channel("news")
    staff_role = guild.create_role("Staff", permissions=discord.Permissions(manage_channels=True))
    staff = guild.add_member(env.create_user("sam"), roles=[staff_role])
    await env.bot.archive_loaded.wait()
    await staff.slash(news, "subscribe", topic="AI")  # what is hot already counts as seen
    for n in (1, 2):
        text = story_file(title=f"Story {n}", url=f"https://news.example/{n}", heat=200)
        (archive / f"s{n}.md").write_text(text, encoding="utf-8")
    await env.advance_time(POLL * 3)
    posted = titles(news)
    assert sorted(posted) == ["Story 1", "Story 2"]

    await env.bot.store.close()
    env.bot.store = None
    done = await _in_thread(migrate, bot_config.db_path, postgres_url)
    assert done.returncode == 0, done.stderr
    await env.restart_bot(make_bot(dataclasses.replace(bot_config, db_url=postgres_url)))
    await env.bot.archive_loaded.wait()
    await env.advance_time(POLL * 3)
    assert titles(news) == posted  # nothing posted twice
    listing = await staff.slash(news, "subscriptions")
    (embed,) = listing.response.embeds
    assert [f.name for f in embed.fields] == ["AI · active"]

    (archive / "s4.md").write_text(
        story_file(title="Story 4", url="https://news.example/4", heat=300), encoding="utf-8"
    )
    await env.advance_time(POLL * 2)
    assert titles(news).count("Story 4") == 1


async def _in_thread(function, *args):
    import asyncio

    return await asyncio.to_thread(function, *args)
