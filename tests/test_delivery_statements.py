"""Delivery's own cost per post, counted in SQL statements (SQLite), in its two shapes:
many stories due in one channel (each post is one statement, its confirmation; reading,
claiming and the rest are once per channel per poll) and one hot story due in many
channels (reads are once per poll; claims and confirmations of the channels sent to at
once share their statements). A read or write per post slipping back in fails here."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import discord

from bot import delivery
from bot.delivery import Deliverer
from core.config import Config
from core.ingest import ingest
from core.models import DeliveryState
from core.store import Store
from tests.conftest import story_file

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)
CHANNEL = 555
POSTS = 40


class Channel:
    """A text channel whose sends cost nothing."""

    guild = SimpleNamespace(id=7, me=None, system_channel=None)

    def __init__(self, channel_id: int = CHANNEL) -> None:
        self.id = channel_id
        self.mention = f"<#{channel_id}>"
        self.sent = 0

    def permissions_for(self, member) -> discord.Permissions:
        return discord.Permissions.all()

    def is_news(self) -> bool:
        return False

    async def send(self, **kwargs):
        self.sent += 1
        return SimpleNamespace(id=self.id * 1000 + self.sent)


async def hot_story_due_in(channels: dict[int, Channel], store: Store, config: Config) -> Deliverer:
    """The archive's one story ingested, subscribed to and due in every channel."""
    await ingest(store, config.archive, NOW)
    for channel_id in channels:
        await store.subscribe(guild_id=7, channel_id=channel_id, topic="AI", min_heat=100, now=NOW)
    [story] = (await store.stories(limit=1)).stories
    rows = [(7, channel_id, story.id, DeliveryState.PENDING) for channel_id in channels]
    await store.record_deliveries(rows, NOW)
    return Deliverer(SimpleNamespace(store=store, config=config, get_channel=channels.get))


async def test_each_post_costs_one_statement(tmp_path):
    archive = tmp_path / "archive"
    archive.mkdir()
    for n in range(POSTS):
        published = f"2026-01-01T{n // 60:02}:{n % 60:02}:00Z"
        text = story_file(f"Story {n}", f"https://example.com/{n}", 500, published=published)
        (archive / f"s{n}.md").write_text(text)
    config = Config(
        archive=archive, db_path=tmp_path / "news.db", posts_per_poll=20, max_age_hours=0
    )
    store = await Store.open(config.db_path)
    try:
        await ingest(store, archive, NOW)
        await store.subscribe(guild_id=7, channel_id=CHANNEL, topic="AI", min_heat=100, now=NOW)
        ids = [s.id for s in (await store.stories(limit=POSTS)).stories]
        rows = [(7, CHANNEL, story_id, DeliveryState.PENDING) for story_id in ids]
        await store.record_deliveries(rows, NOW)
        channel = Channel()
        bot = SimpleNamespace(store=store, config=config, get_channel={CHANNEL: channel}.get)
        deliverer = Deliverer(bot)
        await deliverer.process.keep_alive(NOW)  # renewing the lease is not the posts' cost
        statements: list[str] = []
        await store.db.set_trace_callback(statements.append)
        sent = 0
        while posted := await deliverer.deliver_channel(CHANNEL, NOW):
            sent += posted
        await store.db.set_trace_callback(None)
    finally:
        await store.close()
    assert sent == channel.sent == POSTS
    # One confirmation per post, and a handful of statements per poll of 20 posts.
    assert len(statements) / POSTS < 1.5, "\n".join(statements)


async def test_a_hot_story_to_many_channels_shares_their_statements(tmp_path):
    # One story due in many channels: per channel, only what exactly-once needs (a claim
    # before the send, a confirmation after it), and the channels sent to at once share
    # those statements; the subscriptions and notices are read once for the poll.
    archive = tmp_path / "archive"
    archive.mkdir()
    (archive / "hot.md").write_text(story_file("Hot", "https://example.com/hot", 500))
    config = Config(archive=archive, db_path=tmp_path / "news.db", max_age_hours=0)
    channels = {n: Channel(n) for n in range(1001, 1031)}
    store = await Store.open(config.db_path)
    try:
        deliverer = await hot_story_due_in(channels, store, config)
        await deliverer.process.keep_alive(discord.utils.utcnow())  # not the posts' cost
        statements: list[str] = []
        await store.db.set_trace_callback(statements.append)
        await deliverer.deliver_all(NOW)
        await store.db.set_trace_callback(None)
        assert await store.due_deliveries() == []
    finally:
        await store.close()
    assert [c.sent for c in channels.values()] == [1] * len(channels)
    # One claim and one confirmation per channel would be 2 (and 4 before reads were
    # batched): the channels sent to at once (8) share them (0.5 per channel here).
    assert len(statements) / len(channels) < 1.0, "\n".join(statements)


async def test_a_staff_pause_during_a_long_poll_holds_for_channels_not_reached_yet(
    tmp_path, monkeypatch
):
    # Subscriptions are read for a few channels at a time, as their turns come, not once
    # for the whole poll: staff who pause a channel while a hot story is still going out
    # to others see nothing posted there.
    monkeypatch.setattr(delivery, "CHANNELS_AT_ONCE", 1)
    monkeypatch.setattr(delivery, "SUBSCRIPTIONS_AHEAD", 2)
    archive = tmp_path / "archive"
    archive.mkdir()
    (archive / "hot.md").write_text(story_file("Hot", "https://example.com/hot", 500))
    config = Config(archive=archive, db_path=tmp_path / "news.db", max_age_hours=0)
    store = await Store.open(config.db_path)

    class PausingChannel(Channel):
        async def send(self, **kwargs):  # staff pause the last channel meanwhile
            await store.subscribe(
                guild_id=7, channel_id=1004, topic="AI", min_heat=100, paused_by=42, now=NOW
            )
            return await super().send(**kwargs)

    channels = {n: Channel(n) for n in range(1001, 1005)}
    channels[1001] = PausingChannel(1001)
    try:
        deliverer = await hot_story_due_in(channels, store, config)
        await deliverer.deliver_all(NOW)
    finally:
        await store.close()
    assert [c.sent for c in channels.values()] == [1, 1, 1, 0]


async def test_deciding_a_hot_story_writes_as_much_whatever_the_history(tmp_path):
    # One hot story for every subscribed channel: its rows go into pages of their own,
    # not into every page of the channels' past deliveries (keyed by channel first, the
    # 20th story's rows rewrote the pages of the 19 before it: 10x the log of the first).
    archive = tmp_path / "archive"
    archive.mkdir()
    stories, channels = 20, 1000
    for n in range(stories):
        text = story_file(f"Story {n}", f"https://example.com/{n}", 10)
        (archive / f"s{n}.md").write_text(text)
    config = Config(archive=archive, db_path=tmp_path / "news.db", max_age_hours=0)
    log = tmp_path / "news.db-wal"
    store = await Store.open(config.db_path)
    try:
        await ingest(store, archive, NOW)
        for channel in range(1, channels + 1):
            await store.subscribe(guild_id=7, channel_id=channel, topic="AI", min_heat=100, now=NOW)
        deliverer = Deliverer(SimpleNamespace(store=store, config=config))
        await deliverer.decide(NOW)
        written = []
        for n in range(stories):
            text = story_file(f"Story {n}", f"https://example.com/{n}", 500)
            (archive / f"s{n}.md").write_text(text)
            await ingest(store, archive, NOW)
            await store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            assert await deliverer.decide(NOW) == 1  # one kind of filters
            assert await deliverer.fan_out(NOW) == channels
            written.append(log.stat().st_size)
            # Posted meanwhile: the channels' history grows by one story.
            await store.db.execute("UPDATE deliveries SET state = 'sent', sent_at = 1")
    finally:
        await store.close()
    assert max(written) < 2 * written[0], written


async def test_deciding_a_hot_story_writes_a_row_per_kind_of_filters_not_per_channel(
    tmp_path, monkeypatch
):
    # The decide is one transaction (SQLite's write lock held throughout): it records a
    # fan-out per kind of filters; the 1,000 deliveries follow, a chunk per transaction.
    monkeypatch.setattr("bot.delivery.FANOUT_CHUNK", 300)
    archive = tmp_path / "archive"
    archive.mkdir()
    (archive / "hot.md").write_text(story_file("Hot", "https://example.com/hot", 10))
    config = Config(archive=archive, db_path=tmp_path / "news.db", max_age_hours=0)
    store = await Store.open(config.db_path)
    try:
        await ingest(store, archive, NOW)
        for n in range(1000):  # two kinds of filters, channels in no particular order
            channel, heat = (n * 7919) % 1000 + 1, 100 if n % 2 else 50
            await store.subscribe(
                guild_id=7, channel_id=channel, topic="AI", min_heat=heat, now=NOW
            )
        deliverer = Deliverer(SimpleNamespace(store=store, config=config))
        await deliverer.decide(NOW)
        (archive / "hot.md").write_text(story_file("Hot", "https://example.com/hot", 500))
        await ingest(store, archive, NOW)
        before = store.db.total_changes
        assert await deliverer.decide(NOW) == 2
        decided = store.db.total_changes - before
        transactions: list[str] = []
        await store.db.set_trace_callback(
            lambda sql: transactions.append(sql) if sql.startswith("BEGIN") else None
        )
        assert await deliverer.fan_out(NOW) == 1000
        await store.db.set_trace_callback(None)
        due = await store.due_deliveries()
    finally:
        await store.close()
    # Two fan-outs, the watermark and the change log's row: not a row per channel.
    assert decided <= 5, decided
    assert sorted(d.channel_id for d in due) == list(range(1, 1001))
    # Two kinds of 500 channels: 2 chunks of 300 each, and the look that finds none left.
    assert len(transactions) == 5, transactions
