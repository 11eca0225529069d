"""Posts that stay current and digests, as a channel's readers see them.

Virtual time drives the poller (60 s, as in test_subscriptions); the archive is a
temporary folder the tests edit while the bot runs.
"""

from __future__ import annotations

import logging
import sqlite3
from datetime import timedelta

import discord

from core.planner import LIVE_WINDOW
from tests import test_subscriptions as subscriptions
from tests.conftest import buttons
from tests.test_forums import forum_posts, make_forum
from tests.test_subscriptions import POLL, posts, write

# The newsroom of the subscription tests: #news and #other, staff and a member.
archive, bot_config, room = subscriptions.archive, subscriptions.bot_config, subscriptions.room


def related(*outlets: str) -> str:
    """The `related:` front matter of a story covered by these outlets."""
    items = "".join(
        f'  - title: "Coverage by {o}"\n    webUrl: "https://{o}.example/story"\n'
        f"    type: article\n    provider:\n      name: {o}\n"
        for o in outlets
    )
    return f"related:\n{items}"


def footer(message: discord.Message) -> str:
    return message.embeds[0].footer.text


def edits(env, channel) -> list:
    """The bot's edits of messages in a channel (PATCH requests)."""
    prefix = f"/channels/{channel.id}/messages/"
    return [r for r in env.http_requests if r.method == "PATCH" and r.path.startswith(prefix)]


async def hours(room, count: float) -> None:
    await room.env.advance_time(count * 3600)


# -- posts that stay current -------------------------------------------------------------


async def test_a_post_is_edited_when_its_heat_rises_at_most_hourly(room, archive):
    await room.staff.slash(room.news, "subscribe", topic="AI")
    write(archive, "fresh", "Fresh AI news", 154, published="2025-12-31T23:00:00Z")
    await room.rescan()
    (post,) = posts(room.news)
    story_id = footer(post).rsplit("id ", 1)[1]
    assert footer(post) == f"🔥 heat 154 · hot · id {story_id}"
    # A wobble is no news: +10 is below the step.
    write(archive, "fresh", "Fresh AI news", 164, published="2025-12-31T23:00:00Z")
    await hours(room, 1.1)
    assert footer(posts(room.news)[0]) == f"🔥 heat 154 · hot · id {story_id}"
    write(archive, "fresh", "Fresh AI news", 231, published="2025-12-31T23:00:00Z")
    await room.rescan()
    (post,) = posts(room.news)  # the same message, edited: no new post
    assert footer(post) == f"🔥 154 → 231 · hot · id {story_id}"
    assert post.content in (None, "")
    assert len(edits(room.env, room.news)) == 1
    # Hotter again within the hour: the post waits for the hour to pass.
    write(archive, "fresh", "Fresh AI news", 400, published="2025-12-31T23:00:00Z")
    await room.rescan()
    assert footer(posts(room.news)[0]) == f"🔥 154 → 231 · hot · id {story_id}"
    await hours(room, 1)
    assert footer(posts(room.news)[0]) == f"🔥 154 → 400 · hot · id {story_id}"
    assert len(edits(room.env, room.news)) == 2
    assert len(posts(room.news)) == 1


async def test_new_coverage_edits_the_post_without_pinging(room, archive):
    role = room.guild.create_role("News", mentionable=True)
    await room.staff.slash(room.news, "subscribe", topic="AI", mention=role)
    write(archive, "fresh", "Fresh AI news", 150, published="2025-12-31T23:00:00Z")
    await room.rescan()
    (post,) = posts(room.news)
    content = post.content
    assert f"<@&{role.id}>" in content
    await hours(room, 1)
    write(
        archive,
        "fresh",
        "Fresh AI news",
        150,
        published="2025-12-31T23:00:00Z",
        extra=related("wire", "daily", "tribune"),
    )
    await room.rescan()
    (post,) = posts(room.news)
    assert "3 more outlets" in footer(post)
    assert post.content == content  # unchanged
    (edit,) = edits(room.env, room.news)
    assert edit.json.get("allowed_mentions") == {"parse": []}
    assert "content" not in edit.json


async def test_each_post_counts_its_own_story_s_coverage(room, archive):
    await room.staff.slash(room.news, "subscribe", topic="AI")
    covered = related("wire", "daily", "tribune")
    write(archive, "a", "Covered AI news", 150, published="2025-12-31T22:00:00Z", extra=covered)
    write(archive, "b", "Lone AI news", 150, published="2025-12-31T23:00:00Z")
    await room.rescan()
    assert len(posts(room.news)) == 2
    await hours(room, 1)
    # The lone story gets one outlet: more than its post shows (0), fewer than the other's.
    write(
        archive, "b", "Lone AI news", 150, published="2025-12-31T23:00:00Z", extra=related("wire")
    )
    await room.rescan()

    (edit,) = edits(room.env, room.news)
    (lone,) = [p for p in posts(room.news) if p.embeds[0].title == "Lone AI news"]
    assert edit.path.endswith(f"/{lone.id}")


async def test_no_edit_past_the_window_or_with_live_off(room, archive):
    await room.staff.slash(room.news, "subscribe", topic="AI")
    await room.staff.slash(room.other, "subscribe", topic="AI", live=False)
    listing = await room.staff.slash(room.other, "subscriptions", channel=room.other)
    assert "Posts left as posted (live: off)" in listing.response.embeds[0].fields[0].value
    write(archive, "old", "Week-old AI news", 150, published="2025-12-31T23:00:00Z")
    write(archive, "new", "Recent AI news", 150, published="2025-12-31T23:00:00Z")
    await room.rescan()
    assert len(posts(room.news)) == 2 and len(posts(room.other)) == 2
    # One post of #news went out longer ago than the window.
    with sqlite3.connect(room.env.bot.config.db_path) as db:
        db.execute(
            "UPDATE deliveries SET sent_at = sent_at - ? WHERE story ="
            " (SELECT rowid FROM stories WHERE title = 'Week-old AI news')",
            (int((LIVE_WINDOW + timedelta(minutes=5)).total_seconds()),),
        )
    await hours(room, 1)
    write(archive, "old", "Week-old AI news", 300, published="2025-12-31T23:00:00Z")
    write(archive, "new", "Recent AI news", 300, published="2025-12-31T23:00:00Z")
    await room.rescan()
    feet = {m.embeds[0].title: footer(m) for m in posts(room.news)}
    assert feet["Recent AI news"].startswith("🔥 150 → 300")
    assert feet["Week-old AI news"].startswith("🔥 heat 150")
    assert edits(room.env, room.other) == []
    assert all(footer(m).startswith("🔥 heat 150") for m in posts(room.other))


async def test_a_deleted_post_stops_being_edited_and_a_403_never_pauses(room, archive):
    await room.staff.slash(room.news, "subscribe", topic="AI")
    write(archive, "a", "First AI news", 150, published="2025-12-31T23:00:00Z")
    await room.rescan()
    await hours(room, 1)
    room.env.inject_error(
        "PATCH",
        f"/channels/{room.news.id}/messages/*",
        status=404,
        code=10008,
        message="Unknown Message",
    )
    write(archive, "a", "First AI news", 300, published="2025-12-31T23:00:00Z")
    await room.rescan()
    tried = len(edits(room.env, room.news))
    assert tried == 1
    write(archive, "a", "First AI news", 600, published="2025-12-31T23:00:00Z")
    await hours(room, 1.1)
    assert len(edits(room.env, room.news)) == tried  # never tried again
    # A refused edit is skipped: posting carries on, nothing is paused.
    write(archive, "b", "Second AI news", 150, published="2025-12-31T23:00:00Z")
    await room.rescan()
    await hours(room, 1)
    room.env.inject_error(
        "PATCH",
        f"/channels/{room.news.id}/messages/*",
        status=403,
        code=50013,
        message="Missing Permissions",
    )
    write(archive, "b", "Second AI news", 300, published="2025-12-31T23:00:00Z")
    write(archive, "c", "Third AI news", 150, published="2025-12-31T23:00:00Z")
    await room.rescan()
    assert [m.embeds[0].title for m in posts(room.news)][-1] == "Third AI news"
    assert await room.env.bot.store.paused_channels() == []
    assert not [m for m in room.news.history() if not m.embeds]  # no pause notice


async def test_pinning_a_post_kept_current_keeps_its_change_in_the_footer(room, archive):
    await room.staff.slash(room.news, "subscribe", topic="AI")
    write(archive, "fresh", "Fresh AI news", 154, published="2025-12-31T23:00:00Z")
    await room.rescan()
    await hours(room, 1)
    write(archive, "fresh", "Fresh AI news", 231, published="2025-12-31T23:00:00Z")
    await room.rescan()
    (post,) = posts(room.news)
    story_id = footer(post).rsplit("id ", 1)[1]
    assert footer(post) == f"🔥 154 → 231 · hot · id {story_id}"
    await room.staff.click(post, label="Pin")
    (post,) = posts(room.news)
    assert post.pinned
    assert footer(post) == f"🔥 154 → 231 · hot · id {story_id} · 📌 pinned"
    await room.staff.click(post, label="Unpin")
    assert footer(posts(room.news)[0]) == f"🔥 154 → 231 · hot · id {story_id}"


def bot_lines(channel) -> list[str]:
    """The lines of the bot's text posts (compact or link) in a channel."""
    return [
        line
        for m in channel.history()
        if m.author.bot and not m.embeds
        for line in m.content.splitlines()
    ]


async def test_a_forum_post_s_starter_is_kept_current_until_it_archives(room, archive, caplog):
    forum = make_forum(room, tags=("AI",))
    await room.staff.slash(room.news, "subscribe", topic="AI", channel=forum)
    write(archive, "fresh", "Fresh AI news", 154, published="2025-12-31T23:00:00Z")
    await room.rescan()
    ((thread, starter),) = forum_posts(forum)
    assert footer(starter).startswith("🔥 heat 154 · hot")
    # Hotter within the hour of posting: the post waits for the hour.
    write(archive, "fresh", "Fresh AI news", 231, published="2025-12-31T23:00:00Z")
    await room.rescan()
    assert footer(forum_posts(forum)[0][1]).startswith("🔥 heat 154 · hot")
    assert edits(room.env, thread) == []
    await hours(room, 1)
    ((same, starter),) = forum_posts(forum)  # the same post, its starter edited
    assert same.id == thread.id
    assert footer(starter).startswith("🔥 154 → 231 · hot")
    assert [b[0] for b in buttons(starter)] == ["Read", "Related", "Pin"]
    (edit,) = edits(room.env, thread)
    assert edit.json.get("allowed_mentions") == {"parse": []}
    # Archived (quiet for a day): Discord refuses edits there, so the bot stops trying.
    room.env.backend.edit_channel(thread.id, {}, thread_metadata={"archived": True})
    write(archive, "fresh", "Fresh AI news", 500, published="2025-12-31T23:00:00Z")
    with caplog.at_level(logging.INFO, logger="bot.delivery"):
        await hours(room, 1.1)
    assert len(edits(room.env, thread)) == 1
    assert "no longer kept current: its forum post is archived" in caplog.text
    assert caplog.text.count("no longer kept current") == 1  # never tried again
    assert len(forum_posts(forum)) == 1


async def test_a_compact_message_is_re_rendered_whole_at_most_hourly(room, archive):
    role = room.guild.create_role("News", mentionable=True)
    await room.staff.slash(room.news, "subscribe", topic="AI", style="compact", mention=role)
    await room.staff.slash(room.other, "subscribe", topic="AI", style="compact", live=False)
    write(archive, "a", "First AI news", 154, published="2025-12-31T22:00:00Z")
    write(archive, "b", "Second AI news", 150, published="2025-12-31T23:00:00Z")
    await room.rescan()
    mention, a_line, b_line = bot_lines(room.news)  # one message: the ping, two stories
    assert mention == f"<@&{role.id}>"
    assert a_line.startswith("[First AI news](") and a_line.endswith(" · 🔥 154")
    assert b_line.startswith("[Second AI news](") and b_line.endswith(" · 🔥 150")
    await hours(room, 1)
    write(archive, "a", "First AI news", 231, published="2025-12-31T22:00:00Z")
    await room.rescan()
    # The whole message again, the risen story with its change; no new message, no ping.
    assert bot_lines(room.news) == [mention, a_line.replace("🔥 154", "🔥 154 → 231"), b_line]
    (edit,) = edits(room.env, room.news)
    assert edit.json.get("allowed_mentions") == {"parse": []}
    # The other story of the message changes within the hour: the message waits.
    covered = related("wire", "daily")
    write(archive, "b", "Second AI news", 150, published="2025-12-31T23:00:00Z", extra=covered)
    await room.rescan()
    assert len(edits(room.env, room.news)) == 1
    await hours(room, 1)
    assert bot_lines(room.news) == [
        mention,
        a_line.replace("🔥 154", "🔥 154 → 231"),
        b_line + " · 2 more outlets",
    ]
    assert len(edits(room.env, room.news)) == 2
    # `live: false` left #other's message as it went out.
    assert edits(room.env, room.other) == []
    assert bot_lines(room.other) == [a_line, b_line]
    # Past the window, nothing is edited any more.
    with sqlite3.connect(room.env.bot.config.db_path) as db:
        db.execute(
            "UPDATE deliveries SET sent_at = sent_at - ?", (int(LIVE_WINDOW.total_seconds()),)
        )
    write(archive, "a", "First AI news", 600, published="2025-12-31T22:00:00Z")
    await hours(room, 1.1)
    assert len(edits(room.env, room.news)) == 2


async def test_link_posts_are_not_kept_current_and_subscribe_says_so(room, archive):
    reply = await room.staff.slash(room.news, "subscribe", topic="AI", style="link", live=True)
    assert "not kept current" in reply.response.content
    listing = await room.staff.slash(room.news, "subscriptions", channel=room.news)
    assert "Bare links: not kept current" in listing.response.embeds[0].fields[0].value
    write(archive, "l", "Linked AI news", 150, published="2025-12-31T23:00:00Z")
    await room.rescan()
    assert bot_lines(room.news) == ["https://news.example/l"]
    await hours(room, 1)
    write(archive, "l", "Linked AI news", 400, published="2025-12-31T23:00:00Z")
    await hours(room, 1.1)
    assert edits(room.env, room.news) == []
    assert bot_lines(room.news) == ["https://news.example/l"]


# -- digests -------------------------------------------------------------------------------


async def subscribe_digest(room, channel, **options):
    """A daily digest of AI at the next full hour; returns that moment."""
    now = room.env.now()
    hour = (now.hour + 1) % 24
    done = await room.staff.slash(
        channel, "subscribe", topic="AI", digest="daily", digest_hour=hour, **options
    )
    assert "📰 Instead of a post per story: daily at" in done.response.content
    return now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)


async def until(room, moment) -> None:
    """Advance the virtual clock to one poll past `moment`."""
    await room.env.advance_time((moment - room.env.now()).total_seconds() + POLL)


def digests(channel) -> list[discord.Message]:
    return [m for m in channel.history() if m.embeds and "digest" in m.embeds[0].title]


async def test_a_digest_at_its_hour_lists_the_hottest_in_order(room, archive):
    due = await subscribe_digest(room, room.news, digest_size=3)
    for name, heat in (("d1", 150), ("d2", 400), ("d3", 120), ("d4", 250), ("cold", 40)):
        write(archive, name, f"Story {name}", heat, published="2025-12-31T23:00:00Z")
    await room.rescan()
    assert list(room.news.history()) == []  # collected, not posted one by one
    await until(room, due)
    (digest,) = digests(room.news)
    embed = digest.embeds[0]
    assert embed.title == "📰 Daily digest: AI"
    lines = embed.description.split("\n")
    assert lines == [
        "1. [Story d2](https://news.example/d2) — Example · 🔥 400",
        "2. [Story d4](https://news.example/d4) — Example · 🔥 250",
        "3. [Story d1](https://news.example/d1) — Example · 🔥 150",
    ]
    assert embed.footer.text.startswith("3 stories that became hot since")
    assert len(list(room.news.history())) == 1
    await room.poll(3)
    assert len(list(room.news.history())) == 1


async def test_an_empty_period_sends_nothing(room, archive):
    due = await subscribe_digest(room, room.news)
    write(archive, "cold", "A quiet day in AI", 40)
    await until(room, due)
    assert list(room.news.history()) == []


async def test_a_digest_due_while_the_bot_was_down_is_sent_once_after_restart(
    room, archive, bot_config, make_bot, monkeypatch
):
    due = await subscribe_digest(room, room.news)
    write(archive, "d1", "Story while up", 200, published="2025-12-31T23:00:00Z")
    await room.rescan()

    async def down(rescan=True):
        return None

    monkeypatch.setattr(room.env.bot.cogs["Subscriptions"].deliverer, "poll", down)
    await until(room, due + timedelta(minutes=30))  # the bot is down at the hour
    assert list(room.news.history()) == []
    await room.env.restart_bot(make_bot(bot_config))
    await room.env.bot.archive_loaded.wait()
    await room.poll()
    (digest,) = digests(room.news)
    assert "Story while up" in digest.embeds[0].description
    await room.env.restart_bot(make_bot(bot_config))
    await room.env.bot.archive_loaded.wait()
    await room.poll(3)
    assert len(digests(room.news)) == 1


async def test_a_crash_after_sending_a_digest_never_sends_it_twice(
    room, archive, bot_config, make_bot, monkeypatch
):
    due = await subscribe_digest(room, room.news)
    write(archive, "d1", "Sent but not recorded", 200, published="2025-12-31T23:00:00Z")
    await room.rescan()
    store = room.env.bot.store
    real_mark = store.mark_digest

    async def crash_after_send(subscription_id, end, state, now, **kw):
        if state == "sent":
            raise RuntimeError("simulated crash after Discord accepted the digest")
        return await real_mark(subscription_id, end, state, now, **kw)

    monkeypatch.setattr(store, "mark_digest", crash_after_send)
    await until(room, due)
    assert len(digests(room.news)) == 1
    await room.env.restart_bot(make_bot(bot_config))
    await room.env.bot.archive_loaded.wait()
    await room.poll(3)
    assert len(digests(room.news)) == 1


async def test_a_403_on_a_digest_channel_pauses_and_the_digest_follows(room, archive):
    due = await subscribe_digest(room, room.news)
    write(archive, "d1", "Refused digest story", 200, published="2025-12-31T23:00:00Z")
    await room.rescan()
    room.env.inject_error(
        "POST",
        f"/channels/{room.news.id}/messages",
        status=403,
        code=50013,
        message="Missing Permissions",
    )
    await until(room, due - timedelta(seconds=POLL))
    notices = [m for m in room.news.history() if not m.embeds]
    assert len(notices) == 1 and "Its subscriptions are paused" in notices[0].content
    assert digests(room.news) == []
    await room.poll()  # the permissions look fine again: resumed and sent
    (digest,) = digests(room.news)
    assert "Refused digest story" in digest.embeds[0].description
    await room.poll(2)
    assert len(digests(room.news)) == 1


async def test_digest_options_are_checked_and_listed(room):
    done = await room.staff.slash(room.news, "subscribe", topic="AI", digest_hour=8)
    assert "add `digest:daily` or `digest:weekly`" in done.response.content
    done = await room.staff.slash(room.news, "subscribe", topic="AI", digest="daily", backfill=2)
    assert "a first digest of the 2 hottest goes out now" in done.response.content
    (first,) = digests(room.news)
    assert first.embeds[0].description.split("\n") == [
        "1. [Vision models see more](https://news.example/hot-2) — Example · 🔥 300",
        "2. [Robots learn to cook](https://news.example/hot-1) — Example · 🔥 150",
    ]
    await room.staff.slash(
        room.news, "subscribe", topic="AI", digest="weekly", digest_day="fri", digest_hour=8
    )
    listing = await room.staff.slash(room.news, "subscriptions", channel=room.news)
    assert (
        "📰 Digest: weekly on fri at 08:00 UTC, top 5" in listing.response.embeds[0].fields[0].value
    )
    done = await room.staff.slash(room.news, "subscribe", topic="AI", digest="off")
    assert "digest: weekly on fri at 08:00 UTC, top 5 → off" in done.response.content
