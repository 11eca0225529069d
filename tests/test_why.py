"""`/why`: staff ask why a story was posted in a channel, or not, and get one sentence."""

from __future__ import annotations

import dataclasses

import discord
import pytest
import simcord

from tests import test_subscriptions as subscriptions
from tests.test_subscriptions import posts, write

# The newsroom of the subscription tests: #news and #other, staff and a member.
archive, bot_config, room = subscriptions.archive, subscriptions.bot_config, subscriptions.room


async def why(room, story, channel=None, *, who=None, where=None) -> str:
    options = {"story": story}
    if channel is not None:
        options["channel"] = channel
    result = await (who or room.staff).slash(where or room.news, "why", **options)
    assert result.ephemeral
    return result.response.content


async def test_posted_says_when_with_a_link_to_the_post(room, archive):
    await room.staff.slash(room.news, "subscribe", topic="AI")
    write(archive, "fresh", "Fresh AI news", 200, published="2025-12-31T23:00:00Z")
    await room.rescan()
    (post,) = posts(room.news)
    answer = await why(room, "Fresh AI news")
    link = f"https://discord.com/channels/{room.guild.id}/{room.news.id}/{post.id}"
    assert answer.startswith(f"**Fresh AI news** in <#{room.news.id}>: Posted ")
    assert answer.endswith(f" min ago: {link}")


async def test_below_heat_gives_both_numbers(room):
    await room.staff.slash(room.news, "subscribe", topic="AI")
    answer = await why(room, "A quiet day in AI")
    assert answer.endswith("Not posted: heat 20 is below this subscription's 100 (AI).")


async def test_keyword_filtered_and_excluded(room):
    await room.staff.slash(room.news, "subscribe", topic="AI", keywords="vision")
    answer = await why(room, "Robots learn to cook")
    assert answer.endswith("Not posted: keywords: needs 'vision' (AI).")
    await room.staff.slash(room.news, "subscribe", topic="AI", clear="keywords", exclude="cook")
    answer = await why(room, "Robots learn to cook")
    assert answer.endswith("Not posted: excluded by 'cook' (AI).")


async def test_older_than_max_age(room, archive):
    await room.staff.slash(room.news, "subscribe", topic="AI")
    write(archive, "stale", "Old AI news", 200, published="2025-12-20T00:00:00Z")
    await room.rescan()
    assert posts(room.news) == []
    assert (await why(room, "Old AI news")).endswith("Not posted: older than 72 h.")


async def test_paused_names_who_paused_it(room, archive):
    await room.staff.slash(room.news, "subscribe", topic="AI", paused=True)
    write(archive, "p1", "News while paused", 200)
    await room.rescan()
    answer = await why(room, "News while paused")
    assert answer.endswith(f"Not posted: paused by <@{room.staff.id}> (AI).")


async def test_waiting_for_the_cap_says_its_place(room, archive, bot_config, make_bot):
    config = dataclasses.replace(bot_config, posts_per_poll=1)
    await room.env.restart_bot(make_bot(config))
    await room.env.bot.archive_loaded.wait()
    await room.staff.slash(room.news, "subscribe", topic="AI")
    for n, hour in enumerate(("10", "11", "12")):
        write(archive, f"q{n}", f"Queued story {n}", 200, published=f"2025-12-31T{hour}:00:00Z")
    await room.rescan()
    assert [m.embeds[0].title for m in posts(room.news)] == ["Queued story 0"]
    assert (await why(room, "Queued story 1")).endswith("Due: it is posted at the next poll.")
    assert (await why(room, "Queued story 2")).endswith("Waiting: 1 post per poll, it is next.")


async def test_no_subscription_of_the_channel_covers_it(room):
    await room.staff.slash(room.news, "subscribe", topic="Gardening")
    answer = await why(room, "Robots learn to cook", room.news, where=room.other)
    assert answer == (
        f"**Robots learn to cook** in <#{room.news.id}>: "
        "Not posted: no subscription of this channel covers its topics (AI)."
    )


async def test_story_autocompletes_and_an_unknown_one_is_explained(room):
    choices = await room.staff.autocomplete(room.news, "why", "story", "robots")
    assert any("Robots learn to cook" in c["name"] for c in choices)
    assert "No story matches" in await why(room, "zzzz qqqq")


async def test_not_permitted_without_manage_channels_there(room):
    assert "why" in room.staff.available_commands(room.news)
    assert "why" not in room.member.available_commands(room.news)
    with pytest.raises(simcord.SetupError, match="default-member-permissions"):
        await room.member.slash(room.news, "why", story="Robots learn to cook")
    # Manage Channels in another channel does not reach #news.
    olga = room.guild.add_member(room.env.create_user("olga"))
    own = room.guild.create_text_channel(
        "own", overwrites={olga: discord.PermissionOverwrite(manage_channels=True)}
    )
    answer = await why(room, "Robots learn to cook", room.news, who=olga, where=own)
    assert f"Manage Channels permission in <#{room.news.id}>" in answer
    assert "Robots learn to cook" not in answer
