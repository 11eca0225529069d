"""Where communities read: forum posts, discussion threads, and a look per subscription.

The same simulated Newsroom as tests/test_subscriptions.py (its fixtures), with a forum
channel whose tags staff made, and subscriptions in each style.
"""

from __future__ import annotations

import logging

import discord
import pytest

from core.config import Config
from core.models import DeliveryState
from tests.conftest import buttons
from tests.test_subscriptions import archive, posts, room, write  # noqa: F401

CAP = 12  # posts per poll here: enough compact lines to need a second message


@pytest.fixture
def bot_config(tmp_path, archive):  # noqa: F811
    return Config(
        archive=archive,
        db_path=tmp_path / "bot.db",
        hot_heat=100,
        poll_seconds=60,
        max_age_hours=72,
        posts_per_poll=CAP,
    )


def make_forum(where, name="forum-news", tags=()):
    """A forum channel with these tags, made by staff (the bot never makes tags)."""
    forum = where.guild.create_forum_channel(name)
    backend = where.env.backend
    backend.channels[forum.id].available_tags = [
        {
            "id": str(backend.snowflake()),
            "name": t,
            "moderated": False,
            "emoji_id": None,
            "emoji_name": None,
        }
        for t in tags
    ]
    backend.announce_channel_update(forum.id)
    return forum


def forum_posts(forum):
    """(thread, starter message) of each post of a forum, oldest first."""
    out = []
    for thread in sorted(forum.threads, key=lambda t: t.id):
        history = thread.history()
        out.append((thread, history[0] if history else None))
    return out


def tag_names(where, forum, thread) -> list[str]:
    channels = where.env.backend.channels
    tags = {int(t["id"]): t["name"] for t in channels[forum.id].available_tags}
    return [tags[t] for t in channels[thread.id].applied_tags]


async def settle(where, polls=1):
    await where.env.advance_time(60 * polls)


# -- forum channels --------------------------------------------------------------------


async def test_each_story_becomes_a_forum_post_with_the_matching_tags(room, archive):  # noqa: F811
    topics = ("AI", "Robotics", "Vision", "Chips", "Cooking", "Hardware")
    forum = make_forum(room, tags=("hardware", "ai", "ROBOTICS", "vision", "chips", "cooking"))
    forum.tags_before = list(room.env.backend.channels[forum.id].available_tags)
    result = await room.staff.slash(room.news, "subscribe", topic="AI", channel=forum)
    assert "a forum post per story" in result.response.content
    long_title = "Robots " + "and more robots " * 10
    write(archive, "f1", long_title, 200, topics=topics)
    write(archive, "f2", "Only the news topic", 180, topics=("AI", "Gardening"))
    await settle(room)
    (first, starter), (second, _) = forum_posts(forum)
    # Titled with the story (cut to Discord's 100), the starter is the story card.
    assert first.name == long_title.strip()[:99].rstrip() + "…"
    assert len(first.name) <= 100
    assert starter.embeds[0].url == "https://news.example/f1"
    assert [b[0] for b in buttons(starter)] == ["Read", "Related", "Pin"]
    # Topics matching tags, case-insensitively, in the story's order, at most 5.
    assert tag_names(room, forum, first) == ["ai", "ROBOTICS", "vision", "chips", "cooking"]
    assert second.name == "Only the news topic"
    assert tag_names(room, forum, second) == ["ai"]
    # No tag was made ("Gardening" has none), and nothing else is posted in the forum.
    assert room.env.backend.channels[forum.id].available_tags == forum.tags_before
    await settle(room, 2)
    assert len(forum_posts(forum)) == 2
    # /why links to the post (its thread).
    why = await room.staff.slash(room.news, "why", story="Only the news topic", channel=forum)
    assert f"/channels/{room.guild.id}/{second.id}/{second.id}" in why.response.content


async def test_a_forum_without_tags_gets_untagged_posts_and_its_archive_duration(
    room,  # noqa: F811
    archive,  # noqa: F811
):
    forum = make_forum(room)
    await room.staff.slash(room.news, "subscribe", topic="AI", channel=forum, thread_archive=60)
    write(archive, "f1", "Untagged", 200)
    await settle(room)
    ((thread, _),) = forum_posts(forum)
    assert room.env.backend.channels[thread.id].applied_tags == []
    assert room.env.backend.channels[thread.id].thread_metadata.auto_archive_duration == 60
    refused = await room.staff.slash(room.news, "subscribe", topic="AI", channel=forum, thread=True)
    assert "a thread already" in refused.response.content


async def test_a_crash_between_creating_a_forum_post_and_recording_it_posts_once(
    room,  # noqa: F811
    archive,  # noqa: F811
    bot_config,
    make_bot,
    monkeypatch,
):
    forum = make_forum(room, tags=("AI",))
    await room.staff.slash(room.news, "subscribe", topic="AI", channel=forum)
    store = room.env.bot.store

    async def crash_after_send(*args, **kw):  # confirming the post is recording it
        raise RuntimeError("simulated crash after Discord created the post")

    monkeypatch.setattr(store, "confirm_delivery_batch", crash_after_send)
    write(archive, "f1", "Posted but not recorded", 200)
    await settle(room)
    ((post, _),) = forum_posts(forum)
    # It went quiet and archived while the bot was down: found among archived posts.
    room.env.backend.channels[post.id].thread_metadata.archived = True
    room.env.backend.announce_channel_update(post.id)
    await room.env.restart_bot(make_bot(bot_config))
    await room.env.bot.archive_loaded.wait()
    await settle(room, 3)
    ((thread, _),) = forum_posts(forum)
    record, _ = await room.env.bot.store.delivery_record(forum.id, _story_id(thread))
    assert record.state is DeliveryState.SENT and record.message_id == thread.id


def _story_id(thread) -> str:
    starter = thread.history()[0]
    return starter.embeds[0].footer.text.rsplit("id ", 1)[1].split(" ")[0]


async def test_a_refused_forum_post_pauses_the_subscription_and_says_so(room, archive):  # noqa: F811
    forum = make_forum(room)
    room.env.backend.edit_guild(room.guild.id, {"system_channel_id": room.other.id})
    await room.staff.slash(room.news, "subscribe", topic="AI", channel=forum)
    room.env.inject_error(
        "POST", f"/channels/{forum.id}/threads", status=403, code=50013, message="Missing"
    )
    write(archive, "f1", "Refused post", 200)
    await settle(room)
    assert forum_posts(forum) == []
    # The forum takes no plain messages: the server's system channel hears it, once.
    notices = [m for m in room.other.history() if "Its subscriptions are paused" in m.content]
    assert len(notices) == 1 and forum.mention in notices[0].content
    await settle(room)  # the permissions look fine again: resumed and retried
    assert [t.name for t, _ in forum_posts(forum)] == ["Refused post"]


async def test_missing_forum_and_thread_permissions_are_named(room, archive):  # noqa: F811
    me = room.guild.me
    forum = make_forum(room)
    locked = room.guild.create_forum_channel("locked-forum")
    await room.env.bot.get_channel(locked.id).set_permissions(
        me, overwrite=discord.PermissionOverwrite(send_messages_in_threads=False)
    )
    refused = await room.staff.slash(room.news, "subscribe", topic="AI", channel=locked)
    assert "missing Send Messages in Threads" in refused.response.content
    quiet = room.guild.create_text_channel(
        "no-threads", overwrites={me: discord.PermissionOverwrite(create_public_threads=False)}
    )
    refused = await room.staff.slash(room.news, "subscribe", topic="AI", channel=quiet, thread=True)
    assert "missing Create Public Threads" in refused.response.content
    assert await room.env.bot.store.subscriptions(room.guild.id) == []
    # Taken away later: the subscription pauses and /subscriptions names it.
    await room.staff.slash(room.news, "subscribe", topic="AI", channel=forum)
    await room.env.bot.get_channel(forum.id).set_permissions(
        me, overwrite=discord.PermissionOverwrite(send_messages_in_threads=False)
    )
    write(archive, "f1", "Locked out", 200)
    await settle(room)
    assert forum_posts(forum) == []
    listing = await room.staff.slash(room.news, "subscriptions", channel=forum)
    field = listing.response.embeds[0].fields[0]
    assert field.name == "AI · paused"
    assert "missing permission: Send Messages in Threads" in field.value


def require_tags(where, forum) -> None:
    """Staff tick "Require people to select tags" (simcord does not model a forum's flags:
    the bot's copy of the channel gets what Discord would send it)."""
    where.env.bot.get_channel(forum.id)._flags = discord.ChannelFlags(require_tag=True).value


def thread_posts(where, forum) -> list:
    """The bot's requests to create a post in the forum."""
    path = f"/channels/{forum.id}/threads"
    return [r for r in where.env.http_requests if r.method == "POST" and r.path == path]


async def test_a_forum_requiring_tags_takes_only_subscriptions_it_can_tag(room, archive):  # noqa: F811
    forum = make_forum(room, tags=("Robotics",))
    require_tags(room, forum)
    refused = await room.staff.slash(room.news, "subscribe", topic="AI", channel=forum)
    assert f"{forum.mention} requires a tag on each post" in refused.response.content
    assert "none of the tags I may apply there is named **AI**" in refused.response.content
    assert await room.env.bot.store.subscriptions(room.guild.id) == []
    taken = await room.staff.slash(room.news, "subscribe", topic="Robotics", channel=forum)
    assert "a forum post per story" in taken.response.content
    write(archive, "r1", "Tagged robots", 200, topics=("Robotics",))
    await settle(room)
    ((thread, _),) = forum_posts(forum)
    assert tag_names(room, forum, thread) == ["Robotics"]


async def test_an_untaggable_story_in_a_forum_requiring_tags_is_skipped_once(
    room,  # noqa: F811
    archive,  # noqa: F811
    caplog,
):
    forum = make_forum(room, tags=("Robotics",))
    await room.staff.slash(room.news, "subscribe", topic="AI", channel=forum)
    require_tags(room, forum)  # turned on after subscribing
    edited = await room.staff.slash(room.news, "subscribe", topic="AI", channel=forum, live=False)
    assert "live: on → off" in edited.response.content
    assert "⚠️" in edited.response.content and "requires a tag" in edited.response.content
    write(archive, "t1", "Tagged AI robots", 200, topics=("AI", "Robotics"))
    write(archive, "u1", "Untaggable AI news", 190, topics=("AI",))
    with caplog.at_level(logging.INFO, logger="bot.delivery"):
        await settle(room, 3)
    assert [t.name for t, _ in forum_posts(forum)] == ["Tagged AI robots"]
    assert len(thread_posts(room, forum)) == 1  # never tried, never retried
    reason = "the forum requires a tag and none matches its topics"
    assert caplog.text.count(reason) == 1
    why = await room.staff.slash(room.news, "why", story="Untaggable AI news", channel=forum)
    assert f"Not posted: {reason}" in why.response.content


async def test_discord_refusing_an_untagged_forum_post_skips_it_once(room, archive):  # noqa: F811
    forum = make_forum(room, tags=("Robotics",))
    await room.staff.slash(room.news, "subscribe", topic="AI", channel=forum)
    # The forum began requiring tags and the bot has not heard yet: Discord says so.
    room.env.inject_error(
        "POST",
        f"/channels/{forum.id}/threads",
        status=400,
        code=40067,
        message="A tag is required to create a forum post in this channel",
    )
    write(archive, "u1", "Untaggable AI news", 200, topics=("AI",))
    await settle(room, 3)
    assert forum_posts(forum) == [] and len(thread_posts(room, forum)) == 1
    assert await room.env.bot.store.paused_channels() == []
    why = await room.staff.slash(room.news, "why", story="Untaggable AI news", channel=forum)
    assert "Not posted: the forum requires a tag and none matches its topics" in (
        why.response.content
    )


# -- a thread on each post -----------------------------------------------------------


async def test_thread_true_opens_a_thread_on_each_post(room, archive):  # noqa: F811
    result = await room.staff.slash(
        room.news, "subscribe", topic="AI", thread=True, thread_archive=10080
    )
    assert "a thread on each post, archived after 1 week of quiet" in result.response.content
    write(archive, "t1", "Talk about this " + "x" * 120, 200)
    await settle(room)
    (post,) = posts(room.news)
    (thread,) = room.news.threads
    assert thread.id == post.id
    assert thread.name == ("Talk about this " + "x" * 120)[:99] + "…"
    assert room.env.backend.channels[thread.id].thread_metadata.auto_archive_duration == 10080
    # Editing another option keeps the thread; /subscriptions shows it.
    await room.staff.slash(room.news, "subscribe", topic="AI", min_heat=150)
    listing = await room.staff.slash(room.news, "subscriptions", channel=room.news)
    assert "a thread on each post" in listing.response.embeds[0].fields[0].value


async def test_a_crash_before_the_thread_opens_it_at_reconcile(
    room,  # noqa: F811
    archive,  # noqa: F811
    bot_config,
    make_bot,
    monkeypatch,
):
    await room.staff.slash(room.news, "subscribe", topic="AI", thread=True)
    store = room.env.bot.store

    async def crash_after_send(*args, **kw):  # confirming the post is recording it
        raise RuntimeError("simulated crash after the post, before its thread")

    monkeypatch.setattr(store, "confirm_delivery_batch", crash_after_send)
    write(archive, "t1", "Thread comes later", 200)
    await settle(room)
    assert room.news.threads == []
    await room.env.restart_bot(make_bot(bot_config))
    await room.env.bot.archive_loaded.wait()
    await settle(room, 3)
    (post,) = posts(room.news)
    assert [t.id for t in room.news.threads] == [post.id]


# -- a look per subscription -----------------------------------------------------------


async def test_compact_combines_stories_of_one_poll_within_2000_characters(
    room,  # noqa: F811
    archive,  # noqa: F811
):
    result = await room.staff.slash(room.news, "subscribe", topic="AI", style="compact")
    assert "Style: compact" in result.response.content
    for n in range(CAP):
        title = f"Story {n:02d} " + "long words " * 15
        write(archive, f"c{n}", title, 200 + n, published=f"2025-12-31T10:{n:02d}:00Z")
    await settle(room)
    messages = [m for m in room.news.history() if m.author.id == room.env.bot.user.id]
    assert len(messages) == 2  # 12 lines of ~190 characters do not fit in one message
    lines = [line for m in messages for line in m.content.splitlines()]
    assert len(lines) == CAP
    assert all(len(m.content) <= 2000 and not m.embeds and not buttons(m) for m in messages)
    assert lines[0].startswith("[Story ") and "(<https://news.example/c" in lines[0]
    assert lines[0].endswith(" · Example · 🔥 200")
    await settle(room, 2)  # posted once
    assert len([m for m in room.news.history() if m.author.id == room.env.bot.user.id]) == 2


async def test_link_style_posts_the_bare_url_and_full_keeps_the_card(room, archive):  # noqa: F811
    await room.staff.slash(room.news, "subscribe", topic="AI", style="link")
    await room.staff.slash(room.other, "subscribe", topic="AI")
    write(archive, "l1", "Just the link", 200)
    await settle(room)
    (message,) = [m for m in room.news.history() if m.author.id == room.env.bot.user.id]
    assert message.content == "https://news.example/l1"
    assert buttons(message) == []
    (card,) = posts(room.other)
    assert card.embeds[0].title == "Just the link"
    edited = await room.staff.slash(room.news, "subscribe", topic="AI", style="compact")
    assert "style: link → compact" in edited.response.content


# The crash hits the first message: with compact both stories are in it, with link one.
@pytest.mark.parametrize(("style", "messages", "reconciled"), [("compact", 1, 2), ("link", 2, 1)])
async def test_a_crash_after_compact_or_link_posts_records_both_stories_once(
    room,  # noqa: F811
    archive,  # noqa: F811
    bot_config,
    make_bot,
    monkeypatch,
    caplog,
    style,
    messages,
    reconciled,
):
    await room.staff.slash(room.news, "subscribe", topic="AI", style=style)
    store = room.env.bot.store

    async def crash_after_send(*args, **kw):  # confirming the post is recording it
        raise RuntimeError("simulated crash after Discord accepted the post")

    monkeypatch.setattr(store, "confirm_delivery_batch", crash_after_send)
    write(archive, "c1", "First of two", 200)
    write(archive, "c2", "Second of two", 210)
    await settle(room)
    with caplog.at_level(logging.INFO, logger="bot.delivery"):
        await room.env.restart_bot(make_bot(bot_config))
        await room.env.bot.archive_loaded.wait()
        await settle(room, 3)
    sent = [m for m in room.news.history() if m.author.id == room.env.bot.user.id]
    assert len(sent) == messages
    assert sum(len(m.content.splitlines()) for m in sent) == 2
    assert caplog.text.count("was already posted") == reconciled


async def test_the_playground_newsroom_has_a_forum_with_tagged_posts(simcord_env):
    from bot.playground import build_newsroom, subscribe_news

    newsroom = build_newsroom(simcord_env)
    await simcord_env.bot.archive_loaded.wait()
    await subscribe_news(newsroom)
    posted = forum_posts(newsroom.forum)
    assert {t.name for t, _ in posted} >= {"Vision models see more", "Gardening tips"}
    for thread, starter in posted:
        assert starter.embeds and tag_names(newsroom, newsroom.forum, thread)


async def test_the_playground_newsroom_shows_each_style_and_a_digest(simcord_env):
    from bot.playground import build_newsroom, subscribe_news

    newsroom = build_newsroom(simcord_env)
    await simcord_env.bot.archive_loaded.wait()
    await subscribe_news(newsroom)
    me = simcord_env.bot.user.id
    # #compact-news: lines of title, source and heat, several stories to a message.
    compact = [m for m in newsroom.compact.history() if m.author.id == me]
    lines = [line for m in compact for line in m.content.splitlines()]
    assert compact and not any(m.embeds for m in compact)
    assert any(len(m.content.splitlines()) > 1 for m in compact)
    assert all(line.startswith("[") and " · 🔥 " in line for line in lines)
    # #link-news: each post the bare link.
    links = [m.content for m in newsroom.link.history() if m.author.id == me]
    assert links and all(c.startswith("https://") and " " not in c for c in links)
    assert len(links) == len(set(links))
    # The same stories in both.
    assert sorted(links) == sorted(line.split("(<", 1)[1].split(">)", 1)[0] for line in lines)
    # #daily-digest: one digest of the biggest topic; #forum-news: its posts.
    (digest,) = [m for m in newsroom.digest.history() if m.author.id == me]
    assert "Daily digest" in digest.embeds[0].title
    assert forum_posts(newsroom.forum)
