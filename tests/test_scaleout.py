"""Several bot processes on one database: shards, the rescan lease, claims, takeover.

The simulated Discord runs one bot; a second (or third) "process" is another delivery
engine with its own store connection and its own process id, sending through the same
client, which is all a second process is to the database. What is asserted is what a
member sees: every story once in every subscribed channel, whatever the processes did.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from pathlib import Path

import discord
import pytest
from discord.ext import commands

from bot.delivery import Deliverer
from core.config import Config
from core.ingest import ingest
from core.models import Confirmation, DeliveryState, PostStyle
from core.sharding import (
    ALIVE_PREFIX,
    RESCAN_LEASE,
    ProcessLeases,
    Shards,
    gone_from_this_machine,
    lease_length,
    pid_scope,
)
from core.store import NewsStore, open_store
from tests.conftest import NOW, story_file

POLL = 60
LEASE = lease_length(POLL)


def write(archive: Path, name: str, title: str, heat: int, topics=("AI",)) -> None:
    url = f"https://news.example/{name}"
    text = story_file(title=title, url=url, heat=heat, topics=topics)
    (archive / f"{name}.md").write_text(text, encoding="utf-8")


def titles(channel) -> Counter[str]:
    """How many times each story shows in the channel, as a member scrolls it."""
    return Counter(m.embeds[0].title for m in channel.history() if m.embeds)


@pytest.fixture
def archive(tmp_path):
    path = tmp_path / "archive"
    path.mkdir()
    write(path, "old", "Yesterday's AI news", 150)
    return path


@pytest.fixture
def process_shards() -> tuple[int, ...] | None:
    """NEWS_SHARD_IDS of the bot (of NEWS_SHARD_COUNT=4); None: every shard. A test
    parametrises it to run a process with fewer."""
    return None


@pytest.fixture
def bot_config(tmp_path, archive, process_shards, db_url):
    # Posts enough per poll that a burst goes out in one round.
    return Config(
        archive=archive,
        db_path=tmp_path / "bot.db",
        db_url=db_url,  # on PostgreSQL (the `backend` parameter), else the SQLite file
        poll_seconds=POLL,
        posts_per_poll=50,
        shard_count=4 if process_shards else None,
        shard_ids=process_shards,
    )


async def newsroom_on_shard(env, shard: int):
    """A guild on `shard` with a #news channel subscribed to AI by its staff."""
    guild = env.create_guild(name=f"Newsroom {shard}", shard_id=shard)
    news = guild.create_text_channel("news")
    staff_role = guild.create_role(
        "Staff", permissions=discord.Permissions(manage_channels=True, manage_messages=True)
    )
    staff = guild.add_member(env.create_user(f"sam{shard}"), roles=[staff_role])
    result = await staff.slash(news, "subscribe", topic="AI")
    assert "now gets **AI**" in result.response.content
    return news


# -- the sharded bot -------------------------------------------------------------------


@pytest.mark.simcord(shard_count=4)
async def test_an_autosharded_bot_delivers_to_guilds_on_every_shard(simcord_env, archive):
    env = simcord_env
    await env.bot.archive_loaded.wait()
    assert isinstance(env.bot, commands.AutoShardedBot) and env.bot.shard_count == 4
    channels = [await newsroom_on_shard(env, shard) for shard in range(4)]
    shards = {env.bot.get_channel(channel.id).guild.shard_id for channel in channels}
    assert shards == {0, 1, 2, 3}
    write(archive, "hot", "Robots learn to cook", 300)
    await env.advance_time(POLL)
    assert [titles(c) for c in channels] == [Counter({"Robots learn to cook": 1})] * 4


@pytest.mark.simcord(shard_count=4)
@pytest.mark.parametrize("process_shards", [(0, 1)])
async def test_a_process_posts_only_to_its_shards_and_plans_for_all(simcord_env, archive):
    env = simcord_env
    bot = env.bot
    await bot.archive_loaded.wait()
    assert sorted(bot.shards) == [0, 1]
    ours = [await newsroom_on_shard(env, shard) for shard in (0, 1)]
    # Guilds on shards 2 and 3 belong to another process, which took their /subscribe.
    theirs = []
    for shard in (2, 3):
        guild = env.create_guild(name=f"Far {shard}", shard_id=shard)
        theirs.append(guild.create_text_channel("news"))
        await bot.store.subscribe(
            guild_id=guild.id, channel_id=theirs[-1].id, topic="AI", min_heat=100, now=NOW
        )
    write(archive, "hot", "Robots learn to cook", 300)
    await env.advance_time(POLL)
    assert [titles(c) for c in ours] == [Counter({"Robots learn to cook": 1})] * 2
    assert [titles(c) for c in theirs] == [Counter()] * 2
    # Planned all the same: the other process sends them.
    story_id = (await bot.store.search("Robots learn to cook")).stories[0].id
    for channel in theirs:
        record, _ = await bot.store.delivery_record(channel.id, story_id)
        assert record is not None and record.state is DeliveryState.PENDING


# -- two processes on one database -----------------------------------------------------


@pytest.fixture
async def quiet_bot(simcord_env):
    """The bot, its own poller stopped and its leases given up: the engines are the
    processes."""
    bot = simcord_env.bot
    await bot.archive_loaded.wait()
    bot.get_cog("Subscriptions").poller.cancel()
    await bot.process.release()
    return bot


@pytest.fixture
async def engines(simcord_env, quiet_bot, bot_config):
    opened: list[NewsStore] = []

    async def make(name: str, shards: Shards) -> Deliverer:
        store = await open_store(bot_config.database)
        opened.append(store)
        process = ProcessLeases(store, POLL, process_id=name)
        return Deliverer(quiet_bot, store=store, process=process, shards=shards)

    yield make
    for store in opened:
        await store.close()


@pytest.mark.simcord(shard_count=4)
async def test_two_processes_with_overlapping_shards_post_a_burst_exactly_once(
    simcord_env, engines, archive
):
    env = simcord_env
    channels = [await newsroom_on_shard(env, shard) for shard in range(4)]
    # Misconfigured: both run shards 1 and 2.
    a = await engines("process-a", Shards(4, (0, 1, 2)))
    b = await engines("process-b", Shards(4, (1, 2, 3)))
    burst = [f"Hot story {n}" for n in range(12)]
    for n, title in enumerate(burst):
        write(archive, f"hot-{n}", title, 200 + n)
    # The rescanner plans the burst for every channel...
    now = discord.utils.utcnow()
    assert await a.process.take_rescan(now)
    await a.rescan(now)
    await a.decide(now)
    assert await a.fan_out(now) == 12 * 4
    # ...then both processes (and a second round of one) send from the same due list.
    await asyncio.gather(a.poll(), b.poll(), a.deliver_all(now))
    expected = Counter({title: 1 for title in burst})
    assert [titles(c) for c in channels] == [expected] * 4
    assert (a.process.rescanner, b.process.rescanner) == (True, False)


@pytest.mark.simcord(shard_count=2)
@pytest.mark.parametrize("killed", ["before the post", "after the post"])
async def test_a_process_killed_between_claim_and_confirm_is_taken_over(
    simcord_env, engines, archive, monkeypatch, killed, caplog
):
    env = simcord_env
    channels = [await newsroom_on_shard(env, shard) for shard in range(2)]
    a = await engines("process-a", Shards(2, (0, 1)))
    b = await engines("process-b", Shards(2, (0, 1)))
    await a.poll()  # a rescans (nothing new yet) and holds the rescan lease
    write(archive, "hot-1", "Robots learn to cook", 300)
    write(archive, "hot-2", "Vision models see more", 250)

    class Killed(Exception):
        """The process dies here: nothing after this line of it runs."""

    if killed == "before the post":

        async def die(*args, **kwargs):
            raise Killed

        monkeypatch.setattr(a, "_post", die)
    else:

        async def die_after_send(*args, **kw):  # confirming the post is recording it
            raise Killed

        monkeypatch.setattr(a.store, "confirm_delivery_batch", die_after_send)
    with caplog.at_level(logging.CRITICAL, logger="bot.delivery"):
        await a.poll()  # claims, then dies (before or after Discord got the post)
    claimed = await b.store.due_deliveries((DeliveryState.SENDING,), claimed_by="process-a")
    assert len(claimed) == 2  # one in each channel

    # While a's alive lease lasts, b leaves its claims alone (a may be slow, not dead);
    # it sends what a had not claimed.
    await b.poll()
    assert not b.process.rescanner
    still = await b.store.due_deliveries((DeliveryState.SENDING,), claimed_by="process-a")
    assert [(d.channel_id, d.story.id) for d in still] == [
        (d.channel_id, d.story.id) for d in claimed
    ]
    assert all(count == 1 for c in channels for count in titles(c).values())

    await env.advance_time(LEASE.total_seconds() + POLL)
    await b.poll()
    await b.poll()
    expected = Counter({"Robots learn to cook": 1, "Vision models see more": 1})
    assert [titles(c) for c in channels] == [expected] * 2
    assert b.process.rescanner  # the rescan lease moved on too
    holders = {name: holder for name, holder, _ in await b.store.leases()}
    assert holders[RESCAN_LEASE] == "process-b"
    for channel in channels:
        for delivery in await b.store.due_deliveries(
            (DeliveryState.SENDING, DeliveryState.PENDING), channel_id=channel.id
        ):
            raise AssertionError(f"left unsent: {delivery}")


# -- the store's claims and leases -----------------------------------------------------


@pytest.fixture
async def two_connections(database, archive):
    """Two connections to one database (two processes), with hot stories pending in a
    channel of a guild on shard 1 of 2."""
    for n in range(20):
        write(archive, f"s{n}", f"Story {n}", 200)
    first = await open_store(database)
    second = await open_store(database)
    await ingest(first, archive, NOW)
    page = await first.stories(limit=50)
    ids = [s.id for s in page.stories]
    guild = (1 << 22) + 7  # on shard 1 of 2
    await first.record_deliveries(
        [(guild, 555, story_id, DeliveryState.PENDING) for story_id in ids], NOW
    )
    yield first, second, ids
    await first.close()
    await second.close()


async def test_two_connections_racing_for_claims_get_each_delivery_once(two_connections):
    first, second, ids = two_connections
    rounds = await asyncio.gather(
        *(
            store.claim_deliveries(555, [story_id], holder, NOW)
            for story_id in ids
            for store, holder in ((first, "a"), (second, "b"), (first, "a2"))
        )
    )
    won = [story for claimed in rounds for story in claimed]
    assert sorted(won) == sorted(ids)  # each claimed once, none lost
    # A whole batch at once: nothing left to claim.
    assert await second.claim_deliveries(555, ids, "c", NOW) == set()


async def test_a_confirmation_needs_the_claim(two_connections):
    first, second, ids = two_connections
    story = ids[0]
    assert await first.claim_deliveries(555, [story], "a", NOW) == {story}
    sent = DeliveryState.SENT
    assert not await second.mark_delivery(555, story, sent, NOW, message_id=9, holder="b")
    assert not await second.mark_delivery(555, story, DeliveryState.DROPPED, NOW, holder="b")
    assert await first.mark_delivery(555, story, sent, NOW, message_id=8, holder="a")
    record, _ = await second.delivery_record(555, story)
    assert record is not None and (record.state, record.message_id) == (sent, 8)
    # The confirmation of a post (sent, and what it shows) too.
    other = ids[1]
    assert await first.claim_deliveries(555, [other], "a", NOW) == {other}
    assert not await second.confirm_delivery(555, other, "b", NOW, message_id=9, heat=200)
    assert await first.confirm_delivery(555, other, "a", NOW, message_id=8, heat=200)
    record, _ = await second.delivery_record(555, other)
    assert record is not None and (record.state, record.message_id) == (sent, 8)


async def test_claims_and_confirmations_of_several_channels_at_once_are_each_once(
    two_connections,
):
    first, second, ids = two_connections
    guild = (1 << 22) + 7
    await first.record_deliveries([(guild, 556, ids[0], DeliveryState.PENDING)], NOW)
    # Two processes claim overlapping batches: each delivery goes to exactly one.
    wanted = [(555, ids[0], NOW), (556, ids[0], NOW), (555, ids[1], NOW)]
    assert await second.claim_deliveries(555, [ids[1]], "b", NOW) == {ids[1]}
    assert await first.claim_delivery_batch(wanted, "a") == {(555, ids[0]), (556, ids[0])}
    assert await second.claim_delivery_batch(wanted, "b") == set()
    # A batch of confirmations: those whose claim is the holder's hold, the others not.
    sent = [
        Confirmation(555, ids[0], 8, 200, PostStyle.FULL, NOW),
        Confirmation(556, ids[0], 9, 200, PostStyle.LINK, NOW),
        Confirmation(555, ids[1], 10, 200, PostStyle.FULL, NOW),
    ]
    assert await first.confirm_delivery_batch(sent, "a") == {(555, ids[0]), (556, ids[0])}
    for channel, story, message in ((555, ids[0], 8), (556, ids[0], 9), (555, ids[1], None)):
        record, _ = await second.delivery_record(channel, story)
        assert record is not None and record.message_id == message
    assert await second.confirm_delivery_batch(sent[2:], "b") == {(555, ids[1])}


async def test_claims_a_poll_did_not_reach_are_given_back(two_connections):
    first, second, ids = two_connections
    assert await first.claim_deliveries(555, ids[:3], "a", NOW) == set(ids[:3])
    # Only the holder's claims: b cannot give a's back.
    assert await second.release_claims(555, ids[:3], "b") == 0
    assert await first.release_claims(555, ids[1:3], "a") == 2
    pending = await second.due_deliveries(channel_id=555)
    assert ids[0] not in {d.story.id for d in pending}
    assert {ids[1], ids[2]} <= {d.story.id for d in pending}
    assert {d.attempts for d in pending} == {0}  # never attempted
    assert await second.claim_deliveries(555, ids[:3], "b", NOW) == {ids[1], ids[2]}


async def test_a_dead_processs_claims_are_taken_over_once_its_lease_expires(two_connections):
    first, second, ids = two_connections
    later = NOW + LEASE
    await first.take_lease(ALIVE_PREFIX + "a", "a", NOW, later)
    await first.claim_deliveries(555, ids[:3], "a", NOW)
    everything = Shards.everything()
    assert await second.take_over_deliveries("b", NOW, everything) == set()
    # Past a's lease: b takes them, once; only on b's shards.
    past = later + LEASE
    await second.take_lease(ALIVE_PREFIX + "b", "b", past, past + LEASE)
    assert await second.take_over_deliveries("b", past, Shards(2, (0,))) == set()
    taken = await second.take_over_deliveries("b", past, Shards(2, (1,)))
    assert taken == {(555, story) for story in ids[:3]}
    assert await first.take_over_deliveries("c", past, everything) == set()
    # The send started before the takeover: reconciliation reads the channel from then.
    (delivery, *_) = await second.due_deliveries((DeliveryState.SENDING,), claimed_by="b")
    assert delivery.started_at == NOW
    # a wakes up: its confirmation no longer counts.
    assert not await first.mark_delivery(
        555, ids[0], DeliveryState.SENT, past, message_id=1, holder="a"
    )
    assert not await first.confirm_delivery(555, ids[1], "a", past, message_id=1, heat=200)


async def test_one_lease_holder_at_a_time_and_takeover_after_expiry(two_connections):
    first, second, _ = two_connections
    until = NOW + LEASE
    assert await first.take_lease(RESCAN_LEASE, "a", NOW, until)
    assert not await second.take_lease(RESCAN_LEASE, "b", NOW, until)
    assert await first.take_lease(RESCAN_LEASE, "a", NOW + LEASE / 2, until + LEASE / 2)
    racing = await asyncio.gather(
        first.take_lease(RESCAN_LEASE, "c", until + LEASE, until + 2 * LEASE),
        second.take_lease(RESCAN_LEASE, "b", until + LEASE, until + 2 * LEASE),
    )
    assert sorted(racing) == [False, True]
    holder = (await first.leases())[0][1]
    assert holder in ("b", "c")
    await first.release_lease(RESCAN_LEASE, holder)
    assert await first.leases() == []


async def test_digest_claims_are_once_too(two_connections):
    store, _, ids = two_connections
    sub = await store.subscribe(
        guild_id=1, channel_id=2, topic="AI", min_heat=0, digest="daily", now=NOW
    )
    assert sub is not None
    ids = ids[:3]
    await store.record_digest(sub, NOW, NOW + LEASE, ids, NOW)
    end = NOW + LEASE
    claims = await asyncio.gather(*(store.claim_digest(sub.id, end, h, NOW) for h in "abc"))
    assert sorted(claims) == [False, False, True]
    assert not await store.mark_digest(sub.id, end, "sent", NOW, message_id=1, holder="z")
    assert [d.subscription_id for d in await store.digests("sending")] == [sub.id]
    taken = await store.take_over_digests("z", NOW + 3 * LEASE, Shards.everything())
    assert taken == {(sub.id, end)}


async def test_processes_of_other_machines_are_seen_in_the_leases(two_connections):
    """What makes a SQLite deployment refuse to start when another machine's processes
    use the same file (the bot raises a ConfigError at start-up, see bot/app.py)."""
    first, _, _ = two_connections
    here = ProcessLeases(first, POLL)
    await here.keep_alive(NOW)
    assert await here.other_machines(NOW) == set()
    other = "elsewhere:41:0123456789ab.4026531836:beef"  # another kernel's boot
    await first.take_lease(ALIVE_PREFIX + other, other, NOW, NOW + LEASE)
    # A container of this machine (its own pid namespace and host name) is no other machine.
    container = f"box:1:{pid_scope().partition('.')[0]}.99:cafe"
    await first.take_lease(ALIVE_PREFIX + container, container, NOW, NOW + LEASE)
    assert await here.other_machines(NOW) == {"elsewhere"}
    assert await here.other_machines(NOW + 2 * LEASE) == set()  # stopped long ago


def test_a_stopped_process_of_this_machine_holds_nothing():
    import os
    import socket

    host, scope = socket.gethostname(), pid_scope()
    assert gone_from_this_machine(f"{host}:{os.getpid()}:{scope}:0ld")  # rebuilt in this process
    assert not gone_from_this_machine(f"{host}:{os.getppid()}:{scope}:abc")  # running
    assert gone_from_this_machine(f"{host}:{2**22 + 12345}:{scope}:abc")  # above any pid
    # Another machine, or another container (pid namespace) of this one: unknowable, wait.
    assert not gone_from_this_machine(f"{host}:{os.getpid()}:0123456789ab.1:abc")
    assert not gone_from_this_machine(f"{host}:{os.getpid()}:{scope}1:abc")
    assert not gone_from_this_machine("process-a")  # a name, not a process id


async def test_a_send_lost_midway_is_reconciled_by_its_own_process(simcord_env, archive):
    """The connection drops after Discord got the post: the process, alive all along,
    finds the post at its next poll instead of posting again."""
    env = simcord_env
    await env.bot.archive_loaded.wait()
    (news,) = [await newsroom_on_shard(env, 0)]
    deliverer = env.bot.get_cog("Subscriptions").deliverer
    real_post = deliverer._post
    dropped = []

    async def post_then_lose_the_connection(*args, **kwargs):
        message = await real_post(*args, **kwargs)
        if not dropped:
            dropped.append(message)
            raise ConnectionResetError("connection reset by peer")
        return message

    deliverer._post = post_then_lose_the_connection
    write(archive, "hot", "Robots learn to cook", 300)
    await env.advance_time(POLL)
    assert dropped and titles(news) == Counter({"Robots learn to cook": 1})
    await env.advance_time(POLL)
    assert titles(news) == Counter({"Robots learn to cook": 1})
    story_id = (await env.bot.store.search("Robots learn to cook")).stories[0].id
    record, _ = await env.bot.store.delivery_record(news.id, story_id)
    assert record is not None and record.state is DeliveryState.SENT
    assert record.message_id == dropped[0].id


def test_python_m_bot_run_makes_an_autosharded_bot_for_the_configured_shards(tmp_path):
    from bot.app import create_bot

    config = Config.from_env(
        {"NEWS_SHARD_COUNT": "8", "NEWS_SHARD_IDS": "4-7", "NEWS_DB": str(tmp_path / "x.db")},
        dotenv_path=None,
    )
    bot = create_bot(config)
    assert isinstance(bot, commands.AutoShardedBot)
    assert (bot.shard_count, bot.shard_ids) == (8, [4, 5, 6, 7])
    assert bot.served_shards.describe() == "shards 4-7 of 8"
    # Unset: Discord's recommended count, every shard in this process.
    bot = create_bot(Config(db_path=tmp_path / "x.db"))
    assert (bot.shard_count, bot.shard_ids) == (None, None)
    assert bot.served_shards.all
