"""Moderators pin stories: the Pin button, /pin, /unpin, /pinned, "Pin story", the record.

A small archive of seven hot AI stories; `newsroom` gives #general, alice (a
member) and morgan (a moderator: Pin Messages and Manage Messages).
"""

from __future__ import annotations

import logging
import re

import discord
import pytest
import simcord
from discord.http import Route

from bot.permissions import REQUIRED_PERMISSIONS
from core.config import Config, redact_secrets_in_logs
from tests.conftest import buttons, story_file

TITLES = [f"Story number {n}" for n in range(1, 8)]
REFUSAL = "Only moderators can pin or unpin stories"


@pytest.fixture
def bot_config(tmp_path, archive, db_url):
    for n, title in enumerate(TITLES, start=1):
        text = story_file(title=title, url=f"https://news.example/s{n}", heat=100 + n)
        (archive / f"s{n}.md").write_text(text, encoding="utf-8")
    return Config(
        archive=archive, db_path=tmp_path / "bot.db", db_url=db_url, hot_heat=100, max_age_hours=0
    )


@pytest.fixture
async def ids(newsroom) -> dict[str, str]:
    """Story id by title."""
    page = await newsroom.bot.store.stories(limit=100)
    return {story.title: story.id for story in page.stories}


def labels(message) -> list[str | None]:
    return [b[0] for b in buttons(message)]


def said(result) -> str:
    """The last thing the bot told the person (a deferred answer arrives as a followup)."""
    return result.followups[-1].content if result.followups else result.response.content


def pinned_ids(channel) -> list[int]:
    return [m.id for m in channel.pinned_messages()]


async def show(world, ids, n=1, who=None, channel=None):
    """/story for story `n`: the public message carrying the story and its buttons."""
    who = who or world.member
    return await who.slash(channel or world.channel, "story", story=ids[TITLES[n - 1]])


async def command_id(world, name: str) -> int:
    for command in await world.bot.tree.fetch_commands():
        if command.name == name:
            return command.id
    raise AssertionError(f"/{name} was not synced")


# -- who may pin ------------------------------------------------------------------------------


async def test_the_invite_asks_for_pin_messages_and_not_manage_messages():
    assert REQUIRED_PERMISSIONS.pin_messages
    assert not REQUIRED_PERMISSIONS.manage_messages


async def test_a_member_cannot_see_pin_unpin_or_the_menu_but_can_list_pins(newsroom, ids):
    available = newsroom.member.available_commands(newsroom.channel)
    assert "pinned" in available
    assert "pin" not in available and "unpin" not in available
    with pytest.raises(simcord.SetupError, match="default-member-permissions"):
        await newsroom.member.slash(newsroom.channel, "pin", story=ids[TITLES[0]])
    with pytest.raises(simcord.SetupError, match="default-member-permissions"):
        await newsroom.member.slash(newsroom.channel, "unpin", story=ids[TITLES[0]])
    story = await show(newsroom, ids)
    with pytest.raises(simcord.SetupError, match="default-member-permissions"):
        await newsroom.member.context_menu(newsroom.channel, "Pin story", story.response)
    assert {"pin", "unpin"} <= set(newsroom.moderator.available_commands(newsroom.channel))


async def test_a_member_clicking_pin_is_refused_and_nothing_changes(newsroom, ids):
    story = await show(newsroom, ids)
    click = await newsroom.member.click(story.response, label="Pin")
    assert click.ephemeral and REFUSAL in click.response.content
    assert newsroom.channel.pinned_messages() == []
    assert labels(story.response)[-1] == "Pin"
    assert await newsroom.bot.store.guild_pins(newsroom.guild.id) == []


async def test_commands_shown_by_a_server_override_still_refuse_a_member(newsroom, ids):
    """A server may show the commands to anyone; the bot still checks at run time."""
    guild, member = newsroom.guild, newsroom.member
    for name in ("pin", "unpin", "Pin story"):
        guild.set_command_permissions(await command_id(newsroom, name), {member: True})
    pin = await member.slash(newsroom.channel, "pin", story=ids[TITLES[0]])
    assert pin.ephemeral and REFUSAL in pin.response.content
    unpin = await member.slash(newsroom.channel, "unpin", story=ids[TITLES[0]])
    assert unpin.ephemeral and REFUSAL in unpin.response.content
    story = await show(newsroom, ids)
    menu = await member.context_menu(newsroom.channel, "Pin story", story.response)
    assert menu.ephemeral and REFUSAL in menu.response.content
    assert newsroom.channel.pinned_messages() == []
    assert len(newsroom.channel.history()) == 1  # only the /story answer: nothing was posted


async def test_manage_messages_alone_is_enough_for_the_button(newsroom, ids):
    role = newsroom.guild.create_role(
        "Cleaners", permissions=discord.Permissions(manage_messages=True)
    )
    cleaner = newsroom.guild.add_member(newsroom.env.create_user("casey"), roles=[role])
    story = await show(newsroom, ids)
    await cleaner.click(story.response, label="Pin")
    assert pinned_ids(newsroom.channel) == [story.response.id]


# -- pinning and unpinning --------------------------------------------------------------------


async def test_a_moderator_pins_and_unpins_with_the_button(newsroom, ids):
    story = await show(newsroom, ids)
    assert labels(story.response) == ["Read", "Related", "Pin"]
    assert buttons(story.response)[-1][1] == f"news:pin:{ids[TITLES[0]]}"

    click = await newsroom.moderator.click(story.response, label="Pin")
    assert click.acknowledged and not click.followups
    assert pinned_ids(newsroom.channel) == [story.response.id]
    assert labels(story.response)[-1] == "Unpin"
    assert story.response.embeds[0].footer.text.endswith("· 📌 pinned")
    (pin,) = await newsroom.bot.store.channel_pins(newsroom.channel.id)
    assert (pin.message_id, pin.story.id) == (story.response.id, ids[TITLES[0]])
    assert pin.pinned_by == newsroom.moderator.id

    await newsroom.moderator.click(story.response, label="Unpin")
    assert newsroom.channel.pinned_messages() == []
    assert labels(story.response)[-1] == "Pin"
    assert "📌" not in story.response.embeds[0].footer.text
    assert await newsroom.bot.store.channel_pins(newsroom.channel.id) == []


async def test_pin_posts_the_story_pins_it_and_says_where(newsroom, ids):
    mod, channel = newsroom.moderator, newsroom.channel
    result = await mod.slash(channel, "pin", story=ids[TITLES[2]])
    assert result.ephemeral
    (message,) = channel.pinned_messages()
    assert message.embeds[0].title == TITLES[2]
    assert message.embeds[0].footer.text.endswith("· 📌 pinned")
    assert labels(message)[-1] == "Unpin"
    assert said(result).startswith(f"📌 Pinned **{TITLES[2]}**")
    assert message.jump_url in said(result)

    again = await mod.slash(channel, "pin", story=ids[TITLES[2]])
    assert again.ephemeral and "already pinned here" in again.response.content
    assert message.jump_url in again.response.content
    assert len(channel.pinned_messages()) == 1


async def test_unpin_offers_this_channels_pins_and_unpins(newsroom, ids):
    mod, channel = newsroom.moderator, newsroom.channel
    await mod.slash(channel, "pin", story=ids[TITLES[0]])
    await mod.slash(channel, "pin", story=ids[TITLES[1]])
    elsewhere = newsroom.guild.create_text_channel("elsewhere")
    await mod.slash(elsewhere, "pin", story=ids[TITLES[2]])

    choices = await mod.autocomplete(channel, "unpin", "story", "")
    assert [c["value"] for c in choices] == [ids[TITLES[1]], ids[TITLES[0]]]
    choices = await mod.autocomplete(channel, "unpin", "story", "number 1")
    assert [c["value"] for c in choices] == [ids[TITLES[0]]]

    message = next(m for m in channel.pinned_messages() if m.embeds[0].title == TITLES[0])
    result = await mod.slash(channel, "unpin", story=ids[TITLES[0]])
    assert result.ephemeral and said(result).startswith("Unpinned")
    assert [m.embeds[0].title for m in channel.pinned_messages()] == [TITLES[1]]
    refreshed = next(m for m in channel.history() if m.id == message.id)
    assert labels(refreshed)[-1] == "Pin"
    assert "📌" not in refreshed.embeds[0].footer.text

    missing = await mod.slash(channel, "unpin", story=ids[TITLES[2]])  # pinned elsewhere only
    assert missing.ephemeral and "is pinned in" in missing.response.content


async def test_the_menu_pins_a_story_message_where_it_is(newsroom, ids):
    mod, channel = newsroom.moderator, newsroom.channel
    story = await show(newsroom, ids, 4)
    result = await mod.context_menu(channel, "Pin story", story.response)
    assert result.ephemeral and said(result).startswith("📌 Pinned")
    assert pinned_ids(channel) == [story.response.id]
    assert labels(story.response)[-1] == "Unpin"

    again = await mod.context_menu(channel, "Pin story", story.response.message)
    assert again.ephemeral and "already pinned here" in again.response.content

    chatter = await newsroom.member.send(channel, "id abcdefgh")
    other = await mod.context_menu(channel, "Pin story", chatter)
    assert other.ephemeral and "not one of my story messages" in other.response.content
    assert pinned_ids(channel) == [story.response.id]


async def test_a_pinned_story_is_marked_wherever_it_shows_in_the_server(newsroom, ids):
    await newsroom.moderator.slash(newsroom.channel, "pin", story=ids[TITLES[0]])
    lounge = newsroom.guild.create_text_channel("lounge")
    again = await show(newsroom, ids, 1, channel=lounge)
    assert (
        again.response.embeds[0].footer.text
        == f"🔥 heat 101 · hot · id {ids[TITLES[0]]} · 📌 pinned"
    )
    assert labels(again.response)[-1] == "Pin"  # this message itself is not pinned
    other = await show(newsroom, ids, 2, channel=lounge)
    assert "📌" not in other.response.embeds[0].footer.text


async def test_pushed_posts_of_a_pinned_story_carry_the_mark_and_the_button(newsroom, ids):
    await newsroom.moderator.slash(newsroom.channel, "pin", story=ids[TITLES[6]])
    feed = newsroom.guild.create_text_channel("feed")
    await newsroom.moderator.slash(
        newsroom.channel, "subscribe", topic="AI", channel=feed, backfill=1
    )
    (post,) = [m for m in feed.history() if m.embeds]
    assert post.embeds[0].title == TITLES[6]  # the hottest
    assert post.embeds[0].footer.text.endswith("· 📌 pinned")
    assert labels(post)[-1] == "Pin"
    await newsroom.moderator.click(post, label="Pin")
    assert pinned_ids(feed) == [post.id]


# -- /pinned -----------------------------------------------------------------------------------


async def test_pinned_lists_newest_first_with_who_and_pages(newsroom, ids):
    mod, env = newsroom.moderator, newsroom.env
    for title in TITLES[:6]:
        await mod.slash(newsroom.channel, "pin", story=ids[title])
        await env.advance_time(60)
    result = await newsroom.member.slash(newsroom.channel, "pinned")
    assert result.ephemeral
    (embed,) = result.response.embeds
    assert embed.title == "Pinned stories in Newsroom"
    assert [f.name for f in embed.fields] == [f"{n}. {TITLES[6 - n]}" for n in range(1, 6)]
    assert f"pinned by <@{mod.id}>" in embed.fields[0].value
    assert f"<#{newsroom.channel.id}>" in embed.fields[0].value
    assert "https://discord.com/channels/" in embed.fields[0].value
    assert embed.footer.text == "Page 1 of 2 · 6 pins"
    assert labels(result.response) == ["Previous", "Next"]

    page2 = await newsroom.member.click(result.response, label="Next")
    (embed,) = page2.response.embeds
    assert [f.name for f in embed.fields] == [f"6. {TITLES[0]}"]
    assert embed.footer.text == "Page 2 of 2 · 6 pins"


async def test_pinned_for_one_channel_and_never_a_hidden_one(newsroom, ids):
    guild, mod = newsroom.guild, newsroom.moderator
    await mod.slash(newsroom.channel, "pin", story=ids[TITLES[0]])
    lounge = guild.create_text_channel("lounge")
    await mod.slash(lounge, "pin", story=ids[TITLES[1]])
    staff = guild.create_text_channel(
        "staff",
        overwrites={
            guild.default_role: discord.PermissionOverwrite(view_channel=False),
            mod: discord.PermissionOverwrite(view_channel=True),
            guild.me: discord.PermissionOverwrite(view_channel=True),
        },
    )
    await mod.slash(staff, "pin", story=ids[TITLES[2]])

    one = await newsroom.member.slash(newsroom.channel, "pinned", channel=lounge)
    (embed,) = one.response.embeds
    assert embed.title == "Pinned stories in #lounge"
    assert [f.name for f in embed.fields] == [f"1. {TITLES[1]}"]
    assert one.response.components == []  # a single page: no buttons

    everywhere = await newsroom.member.slash(newsroom.channel, "pinned")
    assert [f.name for f in everywhere.response.embeds[0].fields] == [
        f"1. {TITLES[1]}",
        f"2. {TITLES[0]}",
    ]
    as_mod = await mod.slash(newsroom.channel, "pinned")
    assert len(as_mod.response.embeds[0].fields) == 3


async def test_pinned_says_when_nothing_is_pinned(newsroom):
    result = await newsroom.member.slash(newsroom.channel, "pinned")
    assert result.ephemeral and result.response.content.startswith("No stories are pinned")


# -- the record follows Discord --------------------------------------------------------------


async def test_the_record_follows_a_manual_unpin(newsroom, ids):
    mod, channel, store = newsroom.moderator, newsroom.channel, newsroom.bot.store
    await mod.slash(channel, "pin", story=ids[TITLES[0]])
    (message,) = channel.pinned_messages()
    await mod.set_pinned(message, False)
    assert await store.channel_pins(channel.id) == []
    refreshed = next(m for m in channel.history() if m.id == message.id)
    assert labels(refreshed)[-1] == "Pin"
    listing = await newsroom.member.slash(channel, "pinned")
    assert listing.response.content.startswith("No stories are pinned")


async def test_a_story_pinned_directly_in_discord_is_recorded(newsroom, ids):
    story = await show(newsroom, ids, 3)
    await newsroom.moderator.set_pinned(story.response.message, True)
    (pin,) = await newsroom.bot.store.channel_pins(newsroom.channel.id)
    assert (pin.message_id, pin.pinned_by) == (story.response.id, None)
    assert labels(story.response)[-1] == "Unpin"
    listing = await newsroom.member.slash(newsroom.channel, "pinned")
    assert "pinned by someone in Discord" in listing.response.embeds[0].fields[0].value


async def test_the_record_follows_a_deleted_message(newsroom, ids):
    mod, channel, store = newsroom.moderator, newsroom.channel, newsroom.bot.store
    story = await show(newsroom, ids)
    await mod.click(story.response, label="Pin")
    assert len(await store.channel_pins(channel.id)) == 1
    await mod.delete(story.response.message)
    assert await store.channel_pins(channel.id) == []
    assert not await store.is_story_pinned(newsroom.guild.id, ids[TITLES[0]])


async def test_start_up_drops_pins_the_channel_no_longer_has(newsroom, ids, make_bot, bot_config):
    env, channel = newsroom.env, newsroom.channel
    kept = await show(newsroom, ids, 1)
    await newsroom.moderator.click(kept.response, label="Pin")
    stale = await show(newsroom, ids, 2)  # recorded, but not pinned (e.g. a missed event)
    await newsroom.bot.store.record_pin(
        guild_id=newsroom.guild.id,
        channel_id=channel.id,
        message_id=stale.response.id,
        story_id=ids[TITLES[1]],
        pinned_by=newsroom.moderator.id,
        now=env.now(),
    )
    await env.restart_bot(make_bot(bot_config))
    await env.settle()
    pins = await newsroom.bot.store.channel_pins(channel.id)
    assert [p.message_id for p in pins] == [kept.response.id]


async def test_pin_buttons_work_after_a_restart(newsroom, ids, make_bot, bot_config):
    env, mod, channel = newsroom.env, newsroom.moderator, newsroom.channel
    story = await show(newsroom, ids)
    await mod.click(story.response, label="Pin")
    await env.restart_bot(make_bot(bot_config))
    await newsroom.bot.archive_loaded.wait()
    await env.settle()

    refused = await newsroom.member.click(story.response, label="Unpin")
    assert refused.ephemeral and REFUSAL in refused.response.content
    await mod.click(story.response, label="Unpin")
    assert channel.pinned_messages() == []
    assert labels(story.response)[-1] == "Pin"
    await mod.click(story.response, label="Pin")
    assert pinned_ids(channel) == [story.response.id]
    assert len(await newsroom.bot.store.channel_pins(channel.id)) == 1


# -- Discord says no ---------------------------------------------------------------------------


async def test_the_pin_limit_gets_a_clear_answer(newsroom, ids):
    env, mod, channel = newsroom.env, newsroom.moderator, newsroom.channel
    story = await show(newsroom, ids)
    limit = dict(status=400, code=30003, message="Maximum number of pins reached (50)")
    env.inject_error("PUT", f"/channels/{channel.id}/messages/pins/*", **limit)
    click = await mod.click(story.response, label="Pin")
    assert click.ephemeral and "already has as many pins as Discord allows" in (
        click.response.content
    )
    assert labels(story.response)[-1] == "Pin"

    env.inject_error("PUT", f"/channels/{channel.id}/messages/pins/*", **limit)
    result = await mod.slash(channel, "pin", story=ids[TITLES[1]])
    assert "already has as many pins" in said(result)
    assert channel.pinned_messages() == []
    assert [m.id for m in channel.history() if m.embeds] == [story.response.id]  # copy removed
    assert await newsroom.bot.store.channel_pins(channel.id) == []


async def test_a_bot_without_pin_messages_says_so(newsroom, ids):
    guild, mod = newsroom.guild, newsroom.moderator
    locked = guild.create_text_channel(
        "locked", overwrites={guild.me: discord.PermissionOverwrite(pin_messages=False)}
    )
    story = await show(newsroom, ids, channel=locked)
    click = await mod.click(story.response, label="Pin")
    assert click.ephemeral and "missing the **Pin Messages** permission" in click.response.content
    result = await mod.slash(locked, "pin", story=ids[TITLES[1]])
    assert "missing the **Pin Messages** permission" in result.response.content
    assert locked.pinned_messages() == []
    assert len([m for m in locked.history() if m.embeds]) == 1  # nothing posted by /pin


async def test_discord_refusing_the_pin_names_the_permission(newsroom, ids):
    env, mod, channel = newsroom.env, newsroom.moderator, newsroom.channel
    story = await show(newsroom, ids)
    env.inject_error(
        "PUT",
        f"/channels/{channel.id}/messages/pins/*",
        status=403,
        code=50013,
        message="Missing Permissions",
    )
    click = await mod.click(story.response, label="Pin")
    assert "missing the **Pin Messages** permission" in click.response.content
    assert await newsroom.bot.store.channel_pins(channel.id) == []


async def test_unpinning_a_message_that_is_gone(newsroom, ids):
    env, mod, channel = newsroom.env, newsroom.moderator, newsroom.channel
    await mod.slash(channel, "pin", story=ids[TITLES[0]])
    env.inject_error(
        "DELETE",
        f"/channels/{channel.id}/messages/pins/*",
        status=404,
        code=10008,
        message="Unknown Message",
    )
    result = await mod.slash(channel, "unpin", story=ids[TITLES[0]])
    assert "no longer exists" in said(result)
    assert await newsroom.bot.store.channel_pins(channel.id) == []


async def test_debug_logs_never_show_interaction_webhook_or_bot_tokens(newsroom, ids, caplog):
    factory = logging.getLogRecordFactory()
    bot_token = "MTAxMjM0NTY3ODkw.GabcDE.not-a-real-token-but-secret"
    try:
        redact_secrets_in_logs(bot_token)
        with caplog.at_level(logging.DEBUG):  # every logger, discord.py's http one too
            mod, channel = newsroom.moderator, newsroom.channel
            await mod.slash(channel, "pin", story=ids[TITLES[2]])  # deferred, then a followup
            await mod.slash(channel, "news")
            logging.getLogger("test").debug("config: token=%s", bot_token)
            # What discord.py's http logger writes for a followup and a callback (simcord
            # answers below that layer, so it is written here the way discord.py does).
            for route in (
                Route(
                    "POST",
                    "/webhooks/{webhook_id}/{webhook_token}",
                    webhook_id=1,
                    webhook_token="SECRET-webhook",
                ),
                Route(
                    "POST",
                    "/interactions/{interaction_id}/{interaction_token}/callback",
                    interaction_id=2,
                    interaction_token="SECRET-interaction",
                ),
            ):
                logging.getLogger("discord.http").debug(
                    "%s %s with %s has returned %s", route.method, route.url, "{}", 200
                )
    finally:
        logging.setLogRecordFactory(factory)
    text = caplog.text
    assert "/interactions/" in text and "[redacted]" in text  # the URLs were logged
    assert "simcord_interaction_" not in text  # simcord's interaction tokens
    assert "SECRET-" not in text
    assert re.search(r"/webhooks/\d+/[^\[/\s]", text) is None
    assert bot_token not in text
