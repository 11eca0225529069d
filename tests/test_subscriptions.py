"""Subscriptions as staff and members see them: what gets posted, once, through faults.

Virtual time drives the poller (60 s here); the archive is a temporary folder
the tests edit while the bot runs, as an operator's cron job would.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import shutil
import sqlite3
import struct
import time
from pathlib import Path

import discord
import pytest
import simcord
import yaml

from core.config import Config
from tests.conftest import CORPUS, ROOT, buttons, story_file

POLL = 60


def write(archive, name, title, heat, topics=("AI",), published="2025-12-31T12:00:00Z", **kw):
    """Write (or rewrite) one story file; its URL derives from `name`."""
    url = f"https://news.example/{name}"
    text = story_file(title=title, url=url, heat=heat, topics=topics, published=published, **kw)
    (archive / f"{name}.md").write_text(text, encoding="utf-8")
    return url


def posts(channel) -> list[discord.Message]:
    """The story posts in a channel (messages with an embed), oldest first."""
    return [m for m in channel.history() if m.embeds]


def refuse_next_post(env, channel) -> None:
    """Discord refuses the channel's next message: the bot lacks a permission there."""
    env.inject_error(
        "POST",
        f"/channels/{channel.id}/messages",
        status=403,
        code=50013,
        message="Missing Permissions",
    )


def posted_titles(channel) -> list[str]:
    return [m.embeds[0].title for m in posts(channel)]


@pytest.fixture
def archive(tmp_path):
    path = tmp_path / "archive"
    path.mkdir()
    write(path, "hot-1", "Robots learn to cook", 150, published="2025-12-31T10:00:00Z")
    write(path, "hot-2", "Vision models see more", 300, published="2025-12-31T11:00:00Z")
    write(path, "hot-3", "Chips get faster", 120, published="2025-12-31T09:00:00Z")
    write(path, "cold", "A quiet day in AI", 20)
    write(path, "other", "Gardening tips", 500, topics=("Gardening",))
    write(path, "robotics", "Robot arms, slowly", 10, topics=("Robotics",))
    return path


@pytest.fixture
def bot_config(tmp_path, archive, request, db_url):
    marker = request.node.get_closest_marker("max_age_hours")
    return Config(
        archive=archive,
        db_path=tmp_path / "bot.db",
        db_url=db_url,
        hot_heat=100,
        poll_seconds=POLL,
        max_age_hours=marker.args[0] if marker else 72,
    )


@pytest.fixture
async def room(simcord_env):
    env = simcord_env
    guild = env.create_guild(name="Newsroom")
    news = guild.create_text_channel("news")
    other = guild.create_text_channel("other")
    staff_role = guild.create_role(
        "Staff", permissions=discord.Permissions(manage_channels=True, manage_messages=True)
    )
    staff = guild.add_member(env.create_user("sam"), roles=[staff_role])
    member = guild.add_member(env.create_user("alice"))
    await env.bot.archive_loaded.wait()
    return Room(env, guild, news, other, staff, member)


@dataclasses.dataclass
class Room:
    env: simcord.Env
    guild: object
    news: object
    other: object
    staff: object
    member: object

    async def poll(self, times: int = 1) -> None:
        await self.env.advance_time(POLL * times)

    async def rescan(self) -> None:
        """Let the bot pick up archive edits: the next poll rescans."""
        await self.poll()


# -- commands and permissions -------------------------------------------------------


async def test_subscribe_is_hidden_from_members_and_refused_at_run_time(room):
    assert "subscribe" in room.staff.available_commands(room.news)
    assert "subscribe" not in room.member.available_commands(room.news)
    with pytest.raises(simcord.SetupError, match="default-member-permissions"):
        await room.member.slash(room.news, "subscribe", topic="AI")
    # A server may override the visibility: the bot still checks.
    commands = {c.name: c for c in await room.env.bot.tree.fetch_commands()}
    room.guild.set_command_permissions(commands["subscribe"], {room.member: True})
    result = await room.member.slash(room.news, "subscribe", topic="AI")
    assert result.ephemeral
    assert "Manage Channels" in result.response.content
    assert await room.env.bot.store.subscriptions(room.guild.id) == []


async def test_subscribe_confirms_without_flooding_the_channel(room):
    result = await room.staff.slash(room.news, "subscribe", topic="ai")
    assert result.ephemeral
    assert f"<#{room.news.id}> now gets **AI** stories with heat ≥ 100" in result.response.content
    await room.poll(3)
    assert posts(room.news) == []


async def test_backfill_posts_the_hottest_at_once_oldest_first(room):
    await room.staff.slash(room.news, "subscribe", topic="AI", backfill=2)
    # The two hottest (300 and 150), in publication order.
    assert posted_titles(room.news) == ["Robots learn to cook", "Vision models see more"]
    await room.poll(2)
    assert len(posts(room.news)) == 2


async def test_the_topics_suggested_for_a_typo_are_escaped(room, archive):
    # An archive topic is text of the archive's: Markdown in it must show as typed.
    write(archive, "weird", "Snakes and ladders", 200, topics=("snake_case *tips*",))
    await room.rescan()
    result = await room.staff.slash(room.news, "subscribe", topic="snake_case tip")
    assert result.ephemeral
    assert "Did you mean **snake\\_case \\*tips\\***?" in result.response.content
    assert await room.env.bot.store.subscriptions(room.guild.id) == []


async def test_unknown_topic_and_missing_permission_are_explained(room):
    result = await room.staff.slash(room.news, "subscribe", topic="Gardenin")
    assert "There is no topic" in result.response.content
    assert "Gardening" in result.response.content
    bot_member = room.guild.me
    locked = room.guild.create_text_channel(
        "locked", overwrites={bot_member: discord.PermissionOverwrite(embed_links=False)}
    )
    result = await room.staff.slash(room.news, "subscribe", topic="AI", channel=locked)
    assert result.ephemeral
    assert "missing Embed Links" in result.response.content
    assert await room.env.bot.store.subscriptions(room.guild.id) == []


async def test_unsubscribe_and_list(room):
    await room.staff.slash(room.news, "subscribe", topic="AI", min_heat=200, keywords="vision")
    await room.staff.slash(room.news, "subscribe", topic="Gardening")
    listing = await room.staff.slash(room.news, "subscriptions")
    (embed,) = listing.response.embeds
    names = [f.name for f in embed.fields]
    assert names == ["AI · active", "Gardening · active"]
    assert "heat ≥ 200" in embed.fields[0].value and "“vision”" in embed.fields[0].value
    choices = await room.staff.autocomplete(room.news, "unsubscribe", "topic", "")
    assert [c["value"] for c in choices] == ["all", "AI", "Gardening"]
    result = await room.staff.slash(room.news, "unsubscribe", topic="gardening")
    assert "Removed **gardening**" in result.response.content
    # `all` with one subscription left removes it without asking.
    result = await room.staff.slash(room.news, "unsubscribe", topic="all")
    assert "Removed **AI**" in result.response.content
    result = await room.staff.slash(room.news, "subscriptions")
    assert "There are no subscriptions" in result.response.content


# -- what gets pushed ----------------------------------------------------------------


async def test_a_story_crossing_the_threshold_is_posted_once(room, archive):
    await room.staff.slash(room.news, "subscribe", topic="AI")
    write(archive, "cold", "A quiet day in AI", 130)
    await room.rescan()
    assert posted_titles(room.news) == ["A quiet day in AI"]
    (post,) = posts(room.news)
    assert post.embeds[0].url == "https://news.example/cold"
    assert [b.label for row in post.components for b in row.children][:2] == ["Read", "Related"]
    # Falls below and rises again: never posted twice.
    write(archive, "cold", "A quiet day in AI", 40)
    await room.rescan()
    write(archive, "cold", "A quiet day in AI", 180)
    await room.poll(3)
    assert posted_titles(room.news) == ["A quiet day in AI"]


async def test_a_new_hot_file_is_posted_and_old_stories_are_not(room, archive):
    await room.staff.slash(room.news, "subscribe", topic="AI")
    write(archive, "fresh", "Fresh AI news", 200, published="2025-12-31T23:00:00Z")
    write(archive, "stale", "Old AI news", 200, published="2025-12-20T00:00:00Z")
    write(archive, "hidden", "Unpublished AI news", 200, extra="")
    (archive / "hidden.md").write_text(
        (archive / "hidden.md").read_text().replace("published: true", "published: false")
    )
    await room.rescan()
    assert posted_titles(room.news) == ["Fresh AI news"]


async def test_two_subscriptions_of_one_channel_post_once_and_ping_both_roles(room, archive):
    robots = room.guild.create_role("Robot fans", mentionable=True)
    vision = room.guild.create_role("Vision fans", mentionable=True)
    await room.staff.slash(room.news, "subscribe", topic="AI", mention=robots)
    await room.staff.slash(room.news, "subscribe", topic="Robotics", mention=vision)
    write(archive, "both", "Robots with eyes", 250, topics=("AI", "Robotics"))
    await room.rescan()
    (post,) = posts(room.news)
    assert post.content == f"<@&{robots.id}> <@&{vision.id}>"
    sent = [
        e.json
        for e in room.env.http_requests
        if e.method == "POST" and e.path == f"/channels/{room.news.id}/messages"
    ]
    allowed = sent[-1]["allowed_mentions"]
    assert allowed["parse"] == []  # no @everyone, no users
    assert {str(r) for r in allowed["roles"]} == {str(robots.id), str(vision.id)}


async def test_keyword_filters_are_whole_words(room, archive):
    await room.staff.slash(room.news, "subscribe", topic="AI", keywords="robot", exclude="cook")
    write(archive, "a", "A robot walks", 200)
    write(archive, "b", "Robotics is big", 200)  # "robot" is not a whole word here
    write(archive, "c", "A robot learns to cook", 200)
    await room.rescan()
    assert posted_titles(room.news) == ["A robot walks"]


async def test_per_poll_cap_posts_oldest_first_and_keeps_the_rest(room, archive):
    await room.staff.slash(room.news, "subscribe", topic="AI")
    for hour in range(7):
        write(archive, f"s{hour}", f"Story {hour}", 200, published=f"2025-12-31T1{hour}:00:00Z")
    await room.rescan()
    assert posted_titles(room.news) == [f"Story {h}" for h in range(5)]
    await room.poll()
    assert posted_titles(room.news) == [f"Story {h}" for h in range(7)]


async def test_announcement_channel_posts_are_published(room, archive, caplog):
    announcements = room.guild.create_news_channel("announcements")
    await room.staff.slash(announcements, "subscribe", topic="AI")
    write(archive, "p1", "Published news", 200)
    await room.rescan()
    (post,) = posts(announcements)
    assert post.flags.value & 0b11  # crossposted (simcord sets bit 1, Discord bit 0)
    # A refused publish (rate limit) keeps the post and is logged.
    room.env.inject_error("POST", f"/channels/{announcements.id}/messages/*/crosspost", status=429)
    write(archive, "p2", "Second news", 200)
    with caplog.at_level(logging.WARNING, logger="bot.delivery"):
        await room.rescan()
    assert posted_titles(announcements) == ["Published news", "Second news"]
    assert "could not publish" in caplog.text


# -- a hot story for many channels: its fan-out ----------------------------------------


@pytest.fixture
async def channels(room, monkeypatch):
    """Ten channels subscribed to AI alike; a fan-out writes three of them per transaction."""
    monkeypatch.setattr("bot.delivery.FANOUT_CHUNK", 3)
    found = []
    for n in range(10):
        channel = room.guild.create_text_channel(f"news-{n}")
        await room.staff.slash(channel, "subscribe", topic="AI")
        found.append(channel)
    return found


async def test_a_hot_story_is_posted_once_in_every_subscribed_channel(room, archive, channels):
    write(archive, "burst", "Everyone wants this", 400)
    await room.rescan()  # all in the poll that found it
    assert [posted_titles(c) for c in channels] == [["Everyone wants this"]] * 10
    await room.poll(2)
    assert [posted_titles(c) for c in channels] == [["Everyone wants this"]] * 10


async def test_a_fan_out_cut_short_by_a_restart_is_finished_once(
    room, archive, channels, bot_config, make_bot, monkeypatch
):
    store = room.env.bot.store
    fan_out = store.fan_out
    chunks = 0

    async def crash_after_two_chunks(count):
        nonlocal chunks
        chunks += 1
        if chunks > 2:
            raise RuntimeError("simulated crash in the middle of a fan-out")
        return await fan_out(count)

    monkeypatch.setattr(store, "fan_out", crash_after_two_chunks)
    write(archive, "burst", "Everyone wants this", 400)
    await room.rescan()
    assert sum(bool(posts(c)) for c in channels) == 6  # the two chunks written
    await room.env.restart_bot(make_bot(bot_config))
    await room.env.bot.archive_loaded.wait()
    await room.poll(3)
    assert [posted_titles(c) for c in channels] == [["Everyone wants this"]] * 10


async def test_the_fan_out_follows_subscriptions_changed_after_the_decision(
    room, archive, channels, monkeypatch
):
    store = room.env.bot.store

    async def busy(count):
        raise RuntimeError("the database is busy")

    with monkeypatch.context() as patch:
        patch.setattr(store, "fan_out", busy)
        write(archive, "burst", "Everyone wants this", 400)
        await room.rescan()  # decided; its deliveries are not written yet
        assert not any(posts(c) for c in channels)
        why = await room.staff.slash(channels[0], "why", story="Everyone wants this")
        assert "Due: it is posted at the next poll." in why.response.content
        await room.staff.slash(channels[0], "unsubscribe", topic="AI")
        late = room.guild.create_text_channel("late")
        await room.staff.slash(late, "subscribe", topic="AI")  # no flood: it is seen there
    await room.poll()
    assert [posted_titles(c) for c in channels] == [[]] + [["Everyone wants this"]] * 9
    assert posts(late) == []


# -- faults ---------------------------------------------------------------------------


async def test_403_pauses_tells_once_and_resumes_when_the_permission_is_back(room, archive):
    await room.staff.slash(room.news, "subscribe", topic="AI")
    await room.staff.slash(room.other, "subscribe", topic="AI")
    bot = room.env.bot
    news = bot.get_channel(room.news.id)
    await news.set_permissions(bot.user, overwrite=discord.PermissionOverwrite(send_messages=False))
    write(archive, "n1", "News while locked", 200)
    await room.rescan()
    assert posts(room.news) == []
    assert posted_titles(room.other) == ["News while locked"]
    listing = await room.staff.slash(room.news, "subscriptions", channel=room.news)
    field = listing.response.embeds[0].fields[0]
    assert field.name == "AI · paused"
    assert "missing permission: Send Messages" in field.value
    await room.poll(3)  # still locked: no repeated notices
    await news.set_permissions(bot.user, overwrite=None)
    await room.poll()
    assert posted_titles(room.news) == ["News while locked"]
    listing = await room.staff.slash(room.news, "subscriptions", channel=room.news)
    assert listing.response.embeds[0].fields[0].name == "AI · active"


async def test_injected_403_pauses_and_says_so_once(room, archive):
    await room.staff.slash(room.news, "subscribe", topic="AI")
    refuse_next_post(room.env, room.news)
    write(archive, "n1", "Refused news", 200)
    await room.rescan()
    notices = [m for m in room.news.history() if not m.embeds]
    assert len(notices) == 1 and "Its subscriptions are paused" in notices[0].content
    await room.poll()  # the permissions look fine again: resumed and retried
    assert posted_titles(room.news) == ["Refused news"]


async def test_a_post_retried_after_a_discord_error_is_one_post_to_discord(room, archive):
    # Discord may carry out a send that it answers with an error (a 5xx, a timeout). The
    # retry, at the next poll, carries the first attempt's nonce, which Discord enforces
    # for a few minutes: it returns the message it made instead of posting it twice.
    await room.staff.slash(room.news, "subscribe", topic="AI")
    room.env.inject_error("POST", f"/channels/{room.news.id}/messages", status=503)
    write(archive, "n1", "Flaky news", 200)
    await room.rescan()
    assert posted_titles(room.news) == []
    await room.poll()
    assert posted_titles(room.news) == ["Flaky news"]
    sends = [
        r.json
        for r in room.env.http_requests
        if r.method == "POST" and r.path.endswith(f"/channels/{room.news.id}/messages")
    ]
    assert len(sends) == 2
    assert sends[0]["nonce"] == sends[1]["nonce"]
    assert all(send["enforce_nonce"] for send in sends)


async def test_a_channel_posting_again_tells_of_its_next_problem(room, archive):
    await room.staff.slash(room.news, "subscribe", topic="AI")
    await room.staff.slash(room.other, "subscribe", topic="AI")
    for n in (1, 2):
        refuse_next_post(room.env, room.news)
        write(archive, f"n{n}", f"Refused news {n}", 200)
        await room.rescan()
        await room.poll()  # resumed and posted: the notice is done with
    notices = [m for m in room.news.history() if not m.embeds]
    assert len(notices) == 2
    assert posted_titles(room.news) == ["Refused news 1", "Refused news 2"]


async def test_unknown_channel_deletes_its_subscriptions_and_others_carry_on(room, archive):
    await room.staff.slash(room.news, "subscribe", topic="AI")
    await room.staff.slash(room.other, "subscribe", topic="AI")
    room.env.inject_error(
        "POST",
        f"/channels/{room.news.id}/messages",
        status=404,
        code=10003,
        message="Unknown Channel",
    )
    write(archive, "n1", "Where did it go", 200)
    await room.rescan()
    assert posted_titles(room.other) == ["Where did it go"]
    subs = await room.env.bot.store.subscriptions(room.guild.id)
    assert [s.channel_id for s in subs] == [room.other.id]


@pytest.mark.parametrize("status", [429, 500, 503])
async def test_rate_limits_and_server_errors_are_retried(room, archive, status):
    await room.staff.slash(room.news, "subscribe", topic="AI")
    await room.staff.slash(room.other, "subscribe", topic="AI")
    room.env.inject_error("POST", f"/channels/{room.news.id}/messages", status=status)
    write(archive, "n1", "Try again", 200)
    await room.rescan()
    assert posts(room.news) == []
    assert posted_titles(room.other) == ["Try again"]
    await room.poll()
    assert posted_titles(room.news) == ["Try again"]
    await room.poll(2)
    assert posted_titles(room.news) == ["Try again"]


async def test_deleted_channel_and_removed_guild_forget_subscriptions(room):
    await room.staff.slash(room.news, "subscribe", topic="AI")
    await room.staff.slash(room.other, "subscribe", topic="AI")
    bot = room.env.bot
    await bot.get_channel(room.news.id).delete()
    await room.env.settle()
    subs = await bot.store.subscriptions(room.guild.id)
    assert [s.channel_id for s in subs] == [room.other.id]
    await bot.get_guild(room.guild.id).leave()
    await room.env.settle()
    assert await bot.store.subscriptions(room.guild.id) == []


# -- restarts --------------------------------------------------------------------------


async def test_crash_between_send_and_record_never_posts_twice(
    room, archive, bot_config, make_bot, monkeypatch
):
    await room.staff.slash(room.news, "subscribe", topic="AI")
    store = room.env.bot.store

    async def crash_after_send(*args, **kw):  # confirming the post is recording it
        raise RuntimeError("simulated crash after Discord accepted the post")

    monkeypatch.setattr(store, "confirm_delivery_batch", crash_after_send)
    write(archive, "n1", "Sent but not recorded", 200)
    await room.rescan()
    assert posted_titles(room.news) == ["Sent but not recorded"]
    await room.env.restart_bot(make_bot(bot_config))
    await room.env.bot.archive_loaded.wait()
    await room.poll(3)
    assert posted_titles(room.news) == ["Sent but not recorded"]


async def test_stories_that_got_hot_while_down_are_posted_after_restart(
    room, archive, bot_config, make_bot
):
    await room.staff.slash(room.news, "subscribe", topic="AI")
    write(archive, "cold", "A quiet day in AI", 400)
    await room.env.restart_bot(make_bot(bot_config))
    await room.env.bot.archive_loaded.wait()
    await room.poll()
    assert posted_titles(room.news) == ["A quiet day in AI"]


async def test_an_ingest_by_another_process_is_picked_up(room, archive, bot_config, tmp_path):
    import os
    import subprocess
    import sys

    await room.staff.slash(room.news, "subscribe", topic="AI")
    write(archive, "cli", "Ingested from cron", 300)
    env = {
        **os.environ,
        "NEWS_DB": str(bot_config.database),
        "NEWS_ARCHIVE": str(archive),
        "PYTHONPATH": str(ROOT),
    }
    env.pop("DISCORD_TOKEN", None)
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "bot", "ingest"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "1 added" in done.stdout
    await room.poll()
    assert posted_titles(room.news) == ["Ingested from cron"]


async def test_subscribing_again_resumes_a_paused_channel(room, archive):
    await room.staff.slash(room.news, "subscribe", topic="AI")
    await room.env.bot.store.pause_channel(
        room.news.id, "missing permission: Send Messages", room.env.now()
    )
    await room.staff.slash(room.news, "subscribe", topic="AI", min_heat=150)
    (sub,) = await room.env.bot.store.subscriptions(room.guild.id)
    assert sub.active and sub.min_heat == 150


# -- a replayed history of the shared corpus ------------------------------------------


def _front_matter(path) -> dict:
    text = path.read_text(encoding="utf-8-sig").replace("\r\n", "\n")
    return yaml.safe_load(text.split("---\n")[1])


def _set_heat(path, heat: int) -> None:
    data = path.read_bytes()
    new = re.sub(rb"(?m)^heat: *\d+", b"heat: %d" % heat, data, count=1)
    assert new != data or f"heat: {heat}".encode() in data
    path.write_bytes(new)


def _should_post(meta: dict) -> bool:
    return (
        "Power Apps" in (meta.get("topics") or [])
        and meta.get("published") is not False
        and int(meta.get("heat") or 0) >= 100
    )


@pytest.mark.max_age_hours(0)  # the corpus is from 2019-2021
async def test_replayed_corpus_history_posts_exactly_the_stories_that_became_hot(
    simcord_env, archive
):
    """Write the corpus in steps, with heats changing, and check every post."""
    env = simcord_env
    guild = env.create_guild(name="Replay")
    news = guild.create_text_channel("news")
    staff = guild.add_member(
        env.create_user("sam"),
        roles=[guild.create_role("Staff", permissions=discord.Permissions(manage_channels=True))],
    )
    await env.bot.archive_loaded.wait()
    source = sorted((CORPUS / "_news").glob("*.md"))
    first, second, third = source[:64], source[64:128], source[128:]
    target = archive / "_news"
    target.mkdir()

    def copy(files):
        for f in files:
            shutil.copyfile(f, target / f.name)

    async def settle_polls():
        for _ in range(30):  # at most 5 posts per poll
            await env.advance_time(POLL)

    def urls(files) -> set[str]:
        metas = [_front_matter(target / f.name) for f in files]
        return {m.get("originalUrl") or m["webUrl"] for m in metas if _should_post(m)}

    def posted() -> list[str]:
        return [m.embeds[0].url for m in news.history() if m.embeds]

    # 1. The archive starts with a third of the corpus; subscribing posts nothing.
    copy(first)
    await env.advance_time(POLL)
    await staff.slash(news, "subscribe", topic="Power Apps")
    await settle_polls()
    assert posted() == []

    # 2. New files arrive: the hot ones are posted.
    copy(second)
    await settle_polls()
    expected = urls(second)
    assert len(expected) >= 5
    assert sorted(posted()) == sorted(expected)

    # 3. Heats change in old files: those that cross the threshold are posted, once;
    #    hot stories that cool down and heat up again are not posted again.
    raised = [f for f in first if not _should_post(_front_matter(f))][::3]
    for f in raised:
        _set_heat(target / f.name, 150)
    rewarmed = [f for f in second if _should_post(_front_matter(f))][:3]
    for f in rewarmed:
        _set_heat(target / f.name, 10)
    await settle_polls()
    for f in rewarmed:
        _set_heat(target / f.name, 500)
    await settle_polls()
    assert urls(raised), "the replay must raise some stories over the threshold"
    expected |= urls(raised)
    assert sorted(posted()) == sorted(expected)

    # 4. The rest arrives, and a few files disappear: only the hot new ones are posted.
    copy(third)
    for f in first[:5]:
        (target / f.name).unlink()
    await settle_polls()
    expected |= urls(third)
    assert sorted(posted()) == sorted(expected)
    assert len(posted()) == len(set(posted()))  # never twice


async def test_a_waiting_story_removed_from_the_archive_is_not_posted(room, archive):
    await room.staff.slash(room.news, "subscribe", topic="AI")
    for hour in range(7):
        write(archive, f"s{hour}", f"Story {hour}", 200, published=f"2025-12-31T1{hour}:00:00Z")
    await room.rescan()
    assert len(posts(room.news)) == 5
    (archive / "s6.md").unlink()
    await room.poll(3)
    assert posted_titles(room.news) == [f"Story {h}" for h in range(6)]


# -- permissions where the change lands (issue 9) ---------------------------------------


@pytest.fixture
def own_channel_staff(room):
    """A member with Manage Channels only in #own, through the channel's overwrite."""
    user = room.guild.add_member(room.env.create_user("olga"))
    own = room.guild.create_text_channel(
        "own", overwrites={user: discord.PermissionOverwrite(manage_channels=True)}
    )
    return user, own


async def test_manage_channels_in_one_channel_does_not_reach_another(room, own_channel_staff):
    olga, own = own_channel_staff
    store = room.env.bot.store
    await room.staff.slash(room.news, "subscribe", topic="AI")
    refused = [
        await olga.slash(own, "unsubscribe", topic="AI", channel=room.news),
        await olga.slash(own, "unsubscribe", topic="all", channel=room.news),
        await olga.slash(own, "subscribe", topic="Gardening", channel=room.other),
        await olga.slash(own, "subscriptions", channel=room.news),
    ]
    for result in refused:
        assert result.ephemeral
        assert f"Manage Channels permission in <#{room.news.id}>" in result.response.content or (
            f"Manage Channels permission in <#{room.other.id}>" in result.response.content
        )
    subs = await store.subscriptions(room.guild.id)
    assert [(s.channel_id, s.topic) for s in subs] == [(room.news.id, "AI")]
    # In her own channel she may.
    done = await olga.slash(own, "subscribe", topic="Gardening")
    assert f"<#{own.id}> now gets **Gardening**" in done.response.content
    # Suggestions name only the topics of a channel she may manage.
    assert await olga.autocomplete(own, "unsubscribe", "topic", "", channel=room.news) == []
    choices = await olga.autocomplete(own, "unsubscribe", "topic", "")
    assert [c["value"] for c in choices] == ["all", "Gardening"]
    # The listing shows only what she can manage, and says so.
    listing = await olga.slash(own, "subscriptions")
    (embed,) = listing.response.embeds
    assert [f.name for f in embed.fields] == ["Gardening · active"]
    assert "Showing the channels where you can manage subscriptions" in embed.description
    assert "1 more in other channels" in embed.description


async def test_mention_needs_the_right_to_ping_that_role_there(room, own_channel_staff):
    olga, own = own_channel_staff
    quiet = room.guild.create_role("Quiet")  # not mentionable
    loud = room.guild.create_role("Loud", mentionable=True)
    refused = await olga.slash(own, "subscribe", topic="AI", mention=quiet)
    assert "You can't ping" in refused.response.content
    assert await room.env.bot.store.subscriptions(room.guild.id) == []
    done = await olga.slash(own, "subscribe", topic="AI", mention=loud)
    assert "now gets **AI**" in done.response.content
    # With Mention Everyone in the channel, a role that is not mentionable is allowed too.
    pinger = room.guild.add_member(room.env.create_user("pia"))
    shouty = room.guild.create_text_channel(
        "shouty",
        overwrites={
            pinger: discord.PermissionOverwrite(manage_channels=True, mention_everyone=True)
        },
    )
    done = await pinger.slash(shouty, "subscribe", topic="Gardening", mention=quiet)
    assert "now gets **Gardening**" in done.response.content


# -- subscriptions that never surprise (issue 10) -------------------------------------


async def test_subscribing_again_edits_and_says_what_changed(room):
    robots = room.guild.create_role("Robot fans", mentionable=True)
    await room.staff.slash(room.news, "subscribe", topic="AI", keywords="robots", mention=robots)
    result = await room.staff.slash(room.news, "subscribe", topic="AI", min_heat=150)
    assert result.response.content.startswith(
        f"Updated **AI** in <#{room.news.id}>: min heat 100 → 150."
    )
    (sub,) = await room.env.bot.store.subscriptions(room.guild.id)
    # Options left out keep their values.
    assert sub.min_heat == 150 and sub.keywords == ("robots",)
    assert sub.mention_role_id == robots.id
    result = await room.staff.slash(room.news, "subscribe", topic="AI", min_heat=150)
    assert result.response.content.startswith(f"Nothing changed for **AI** in <#{room.news.id}>.")
    result = await room.staff.slash(room.news, "subscribe", topic="AI", clear="all filters")
    assert "keywords: robots → (none)" in result.response.content
    assert f"mention: <@&{robots.id}> → (none)" in result.response.content
    (sub,) = await room.env.bot.store.subscriptions(room.guild.id)
    assert sub.keywords == () and sub.mention_role_id is None and sub.min_heat == 150
    both = await room.staff.slash(
        room.news, "subscribe", topic="AI", keywords="x", clear="keywords"
    )
    assert "Pick either `keywords:` or `clear:keywords`" in both.response.content


async def test_subscribe_says_how_many_stories_qualify_and_why_none_do(room):
    result = await room.staff.slash(room.news, "subscribe", topic="AI", min_heat=200)
    # AI has 4 stories: 300 qualifies; 150, 120 and 20 are below 200.
    assert "1 current story qualifies" in result.response.content
    result = await room.staff.slash(room.news, "subscribe", topic="AI", min_heat=400)
    assert "No current story qualifies: 4 of AI's 4 stories are below heat 400." in (
        result.response.content
    )


@pytest.mark.max_age_hours(1)
async def test_subscribe_counts_stories_too_old_to_post(room):
    result = await room.staff.slash(room.news, "subscribe", topic="AI", backfill=3)
    assert "No current story qualifies: 4 of AI's 4 stories are older than 1 h." in (
        result.response.content
    )
    assert posts(room.news) == []


def _story(title, heat, hours_ago, excerpt=""):
    from datetime import timedelta

    from core.models import Story
    from tests.conftest import NOW

    return Story(
        id=title[:8].ljust(8, "a"),
        url=f"https://news.example/{title}",
        title=title,
        excerpt=excerpt,
        heat=heat,
        topics=("AI",),
        published_at=NOW - timedelta(hours=hours_ago),
    )


def test_qualify_counts_each_story_under_the_first_reason_it_fails():
    from core.models import Subscription
    from core.planner import Limits, qualify
    from tests.conftest import NOW

    stories = [
        _story("Old robots", 500, 100),
        _story("Cold robots", 50, 1),
        _story("Hot cats", 500, 1),
        _story("Hot robots and cats", 400, 1, excerpt="cats everywhere"),
        _story("Hot robots", 300, 2),
        _story("Hotter robots", 600, 2),
    ]
    sub = Subscription(
        id=1, guild_id=1, channel_id=1, topic="AI", min_heat=100,
        keywords=("robots",), exclude=("cats",),
    )  # fmt: skip
    result = qualify(stories, sub, NOW, Limits(max_age_hours=72), already_here={"Hot robo"})
    assert (result.total, result.too_old, result.too_cold) == (6, 1, 1)
    assert (result.without_keywords, result.excluded, result.already_here) == (1, 1, 1)
    assert [s.title for s in result.stories] == ["Hotter robots"]
    # match any: one of the keywords is enough.
    anyone = dataclasses.replace(sub, keywords=("robots", "cats"), exclude=(), match_any=True)
    assert len(qualify(stories, anyone, NOW, Limits(max_age_hours=0)).stories) == 5
    every = dataclasses.replace(anyone, match_any=False)
    assert [s.title for s in qualify(stories, every, NOW, Limits(max_age_hours=0)).stories] == [
        "Hot robots and cats"
    ]


async def test_keywords_match_any_or_all(room, archive):
    result = await room.staff.slash(
        room.news, "subscribe", topic="AI", keywords="robot, vision", match="any"
    )
    assert "Only with any of: “robot”, “vision”" in result.response.content
    write(archive, "a", "A robot walks", 200)
    write(archive, "b", "Vision for all", 200)
    write(archive, "c", "Chips only", 200)
    await room.rescan()
    assert sorted(posted_titles(room.news)) == ["A robot walks", "Vision for all"]
    result = await room.staff.slash(room.news, "subscribe", topic="AI", match="all")
    assert "match: any → all" in result.response.content
    listing = await room.staff.slash(room.news, "subscriptions")
    assert "Only with all of: “robot”, “vision”" in listing.response.embeds[0].fields[0].value


async def test_pause_posts_nothing_and_resume_does_not_flood(room, archive):
    await room.staff.slash(room.news, "subscribe", topic="AI")
    result = await room.staff.slash(room.news, "subscribe", topic="AI", paused=True)
    assert "paused" in result.response.content
    write(archive, "p1", "News while paused", 200)
    await room.rescan()
    assert posts(room.news) == []
    # Both pauses show: by staff, and the bot's own (a missing permission).
    await room.env.bot.store.pause_channel(
        room.news.id, "missing permission: Send Messages", room.env.now()
    )
    field = (await room.staff.slash(room.news, "subscriptions")).response.embeds[0].fields[0]
    assert field.name == "AI · paused"
    assert f"Paused by <@{room.staff.id}>" in field.value
    assert "Paused: missing permission: Send Messages" in field.value
    await room.poll()  # the permission is fine: the bot's pause lifts, the staff's stays
    field = (await room.staff.slash(room.news, "subscriptions")).response.embeds[0].fields[0]
    assert "Paused by" in field.value and "missing permission" not in field.value
    assert posts(room.news) == []
    result = await room.staff.slash(room.news, "subscribe", topic="AI", paused=False)
    assert "resumed" in result.response.content
    assert "came while it was paused are marked as seen" in result.response.content
    await room.poll(2)
    assert posts(room.news) == []
    write(archive, "p2", "News after resuming", 200)
    await room.rescan()
    assert posted_titles(room.news) == ["News after resuming"]


async def test_unsubscribe_all_asks_first_and_only_the_caller_answers(room):
    await room.staff.slash(room.news, "subscribe", topic="AI")
    await room.staff.slash(room.news, "subscribe", topic="Gardening")
    store = room.env.bot.store
    ask = await room.staff.slash(room.news, "unsubscribe", topic="all")
    assert ask.ephemeral and "Remove all 2 subscriptions" in ask.response.content
    assert len(await store.subscriptions(room.guild.id)) == 2
    cancel = await room.staff.click(ask.response, label="Cancel")
    assert "nothing was removed" in cancel.response.content
    assert all(disabled for *_, disabled in buttons(cancel.response))
    assert len(await store.subscriptions(room.guild.id)) == 2
    # Timing out changes nothing and disables the buttons.
    ask = await room.staff.slash(room.news, "unsubscribe", topic="all")
    await room.env.advance_time(120)
    assert ask.response.content == "Timed out: nothing was removed."
    assert all(disabled for *_, disabled in buttons(ask.response))
    assert len(await store.subscriptions(room.guild.id)) == 2
    ask = await room.staff.slash(room.news, "unsubscribe", topic="all")
    other = room.guild.add_member(room.env.create_user("otto"), roles=[])
    try:
        refused = await other.click(ask.response, label="Confirm")
    except simcord.SetupError:  # Discord shows an ephemeral message only to the caller
        pass
    else:
        assert "Only <@" in refused.response.content
    assert len(await store.subscriptions(room.guild.id)) == 2
    done = await room.staff.click(ask.response, label="Confirm")
    assert f"Removed all 2 subscriptions from <#{room.news.id}>" in done.response.content
    assert all(disabled for *_, disabled in buttons(done.response))
    assert await store.subscriptions(room.guild.id) == []


# -- robustness: busy channels, missing files, failing poll steps -------------------------


async def test_crash_recovery_finds_the_post_behind_200_later_messages(
    room, archive, bot_config, make_bot, monkeypatch
):
    await room.staff.slash(room.news, "subscribe", topic="AI")
    store = room.env.bot.store

    async def crash_after_send(*args, **kw):  # confirming the post is recording it
        raise RuntimeError("simulated crash after Discord accepted the post")

    monkeypatch.setattr(store, "confirm_delivery_batch", crash_after_send)
    write(archive, "n1", "Sent but not recorded", 200)
    await room.rescan()
    for i in range(200):  # a busy channel: the post scrolls far up
        await room.member.send(room.news, f"chatter {i}")
    await room.env.restart_bot(make_bot(bot_config))
    await room.env.bot.archive_loaded.wait()
    await room.poll(3)
    assert posted_titles(room.news) == ["Sent but not recorded"]


async def test_a_story_whose_file_is_missing_for_one_rescan_is_still_posted(
    room, archive, bot_config, make_bot
):
    config = dataclasses.replace(bot_config, posts_per_poll=1)
    await room.env.restart_bot(make_bot(config))
    await room.env.bot.archive_loaded.wait()
    await room.staff.slash(room.news, "subscribe", topic="AI")
    write(archive, "first", "First hot story", 200, published="2025-12-31T10:00:00Z")
    write(archive, "second", "Second hot story", 200, published="2025-12-31T11:00:00Z")
    await room.rescan()  # both due; one post per poll: the second waits
    assert posted_titles(room.news) == ["First hot story"]
    moved = archive / "second.md.away"
    (archive / "second.md").rename(moved)
    await room.rescan()  # a checkout took the file away for this rescan
    assert posted_titles(room.news) == ["First hot story"]
    moved.rename(archive / "second.md")
    await room.rescan()
    assert posted_titles(room.news) == ["First hot story", "Second hot story"]


async def test_a_failing_poll_step_does_not_stop_the_delivery(room, archive, monkeypatch, caplog):
    await room.staff.slash(room.news, "subscribe", topic="AI")
    store = room.env.bot.store

    # Reconciliation's look-up fails (the step before deciding and delivering).
    async def broken_reconcile_lookup(*args, **kwargs):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(store, "take_over_deliveries", broken_reconcile_lookup)
    write(archive, "due", "Due despite the failures", 200)
    with caplog.at_level(logging.ERROR, logger="bot.delivery"):
        await room.rescan()
    assert posted_titles(room.news) == ["Due despite the failures"]
    failed = [r.getMessage() for r in caplog.records if "poll step" in r.getMessage()]
    assert any("reconcile" in m for m in failed), failed


async def test_a_rescan_past_its_time_limit_is_abandoned_and_the_bot_carries_on(
    room, archive, monkeypatch, caplog
):
    import core.ingest

    await room.staff.slash(room.news, "subscribe", topic="AI")
    room.env.bot.config = dataclasses.replace(
        room.env.bot.config, ingest_timeout_seconds=1, posts_per_poll=1
    )
    write(archive, "due", "Due while the archive is slow", 200)
    write(archive, "due-2", "Also due", 210, published="2025-12-31T13:00:00Z")
    await room.rescan()  # one post per poll: the second waits for the next
    assert posted_titles(room.news) == ["Due while the archive is slow"]

    # A huge archive arrives: each file takes 0.3 s to read, 20 files take 6 s.
    for n in range(20):
        write(archive, f"bulk-{n}", f"Bulk story {n}", 10)
    parse = core.ingest.parse_file

    def slow_parse(*args):
        time.sleep(0.3)
        return parse(*args)

    monkeypatch.setattr(core.ingest, "parse_file", slow_parse)
    started = time.monotonic()
    with caplog.at_level(logging.INFO):
        await room.rescan()
    # Abandoned after about a second; the delivery of this poll still went out.
    assert time.monotonic() - started < 4
    assert posted_titles(room.news) == ["Due while the archive is slow", "Also due"]
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any("took longer than 1s" in m and "abandoned" in m for m in errors), errors
    # Commands are answered (with what is loaded so far).
    result = await room.member.slash(room.news, "news", topic="AI")
    assert "Robots learn to cook" in str(result.response.embeds[0].to_dict())

    monkeypatch.undo()
    await room.rescan()  # the next poll carries on and completes
    titles = {s.title for s in (await room.env.bot.store.stories(limit=100)).stories}
    assert {f"Bulk story {n}" for n in range(20)} <= titles


def wal_backlog(db: Path) -> int:
    """Frames of SQLite's write-ahead log not yet copied into the database, read from the
    log's index (-shm) without checkpointing: mxFrame (offset 16) minus nBackfill (96)."""
    shm = (db.parent / (db.name + "-shm")).read_bytes()
    return struct.unpack_from("=I", shm, 16)[0] - struct.unpack_from("=I", shm, 96)[0]


async def test_a_poll_checkpoints_the_log_after_its_posts(room, archive, bot_config):
    # The store's own commits leave the log alone up to 10,000 pages (deciding for
    # thousands of channels must not copy the log before the posts go out); each poll
    # copies it after sending, so the log does not grow from poll to poll.
    if bot_config.db_url:
        pytest.skip("PostgreSQL checkpoints on its own")
    await room.staff.slash(room.news, "subscribe", topic="AI")
    write(archive, "due", "Posted, then checkpointed", 200)
    await room.rescan()
    assert posted_titles(room.news) == ["Posted, then checkpointed"]
    assert wal_backlog(bot_config.db_path) == 0
