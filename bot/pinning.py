"""Pinning story messages, and keeping the pin record equal to the channels' real pins.

The `Pinner` is the one place that pins or unpins a story message: it records
the pin in the same per-channel critical section as the Discord call, so the
pin-update event that call triggers never sees a half-done pin. Discord's
refusals become `UserError`s with a message a moderator can act on.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
from collections import defaultdict
from typing import TYPE_CHECKING, TypedDict

import discord

from bot import embeds
from bot.errors import UserError, reply_privately
from bot.permissions import can_pin, missing_pin_permissions
from bot.views import STORY_ID, story_view
from core.store import NewsStore

if TYPE_CHECKING:
    from bot.app import NewsBot
    from core.models import Story
    from core.store import Pin

log = logging.getLogger(__name__)

PIN_LIMIT_REACHED = 30003
UNKNOWN_MESSAGE = 10008
UNKNOWN_CHANNEL = 10003
MISSING_ACCESS = {50001, 50013}

# How the bot marks its story messages: the buttons' custom ids and the embed footer.
_CUSTOM_ID = re.compile(f"^news:(?:related|pin):{STORY_ID}$")

NOT_A_MODERATOR = (
    "Only moderators can pin or unpin stories: that takes the Pin Messages "
    "or Manage Messages permission in this channel."
)
STORY_GONE = "That story is no longer in the archive, so I can't pin it."


class MessageUpdate(TypedDict, total=False):
    """What changes on a story message when its pin state does."""

    view: discord.ui.View
    embed: discord.Embed


def story_id_of(message: discord.Message) -> str | None:
    """The id of the story a bot message shows: from its buttons, else its embed footer."""
    for row in message.components:
        for item in getattr(row, "children", [row]):
            if (custom_id := getattr(item, "custom_id", None)) and (
                match := _CUSTOM_ID.match(custom_id)
            ):
                return match["story"]
    for embed in message.embeds:
        if story_id := embeds.footer_story_id(embed):
            return story_id
    return None


def is_story_embed(embed: discord.Embed, story_id: str) -> bool:
    """Whether `embed` is the full embed of that story (not, say, its /related list)."""
    return embeds.footer_story_id(embed, full_story=True) == story_id


class Pinner:
    def __init__(self, bot: NewsBot) -> None:
        self.bot = bot
        self._locks: dict[int, asyncio.Lock] = defaultdict(asyncio.Lock)

    @property
    def store(self) -> NewsStore:
        return self.bot.store

    # -- pinning and unpinning ------------------------------------------------------

    def check_can_pin(self, channel) -> None:
        """Refuse early, naming the permission, when the bot could not pin in `channel`."""
        if missing := missing_pin_permissions(channel):
            raise UserError(
                f"I can't pin messages in {channel.mention}: I'm missing the "
                f"**{'** and **'.join(missing)}** permission there. Give it to my role "
                "(or allow it in the channel's settings) and try again."
            )

    async def pin(self, message: discord.Message, story_id: str, by: discord.abc.User) -> None:
        """Pin a story message and record the pin; UserError if Discord refuses."""
        channel = message.channel
        self.check_can_pin(channel)
        assert message.guild is not None  # pins are made in server channels only
        async with self._locks[channel.id]:
            recorded = await self.store.record_pin(
                guild_id=message.guild.id,
                channel_id=channel.id,
                message_id=message.id,
                story_id=story_id,
                pinned_by=by.id,
                now=discord.utils.utcnow(),
            )
            if not recorded:
                raise UserError(STORY_GONE)
            try:
                await message.pin(reason=f"story {story_id}, pinned by {by} ({by.id})")
            except discord.HTTPException as exc:
                await self.store.remove_pins([message.id])
                raise UserError(self.explain(exc, channel, "pin")) from exc
        log.info("%s pinned story %s in channel %s", by.id, story_id, channel.id)

    async def unpin(self, channel, message_id: int, by: discord.abc.User) -> Pin | None:
        """Unpin a message and forget its pin; returns the pin that was recorded."""
        self.check_can_pin(channel)
        async with self._locks[channel.id]:
            try:
                await channel.get_partial_message(message_id).unpin(
                    reason=f"unpinned by {by} ({by.id})"
                )
            except discord.HTTPException as exc:
                if exc.code == UNKNOWN_MESSAGE:
                    await self.store.remove_pins([message_id])
                raise UserError(self.explain(exc, channel, "unpin")) from exc
            removed = await self.store.remove_pins([message_id])
        log.info("%s unpinned message %s in channel %s", by.id, message_id, channel.id)
        return removed[0] if removed else None

    def explain(self, exc: discord.HTTPException, channel, action: str) -> str:
        """Discord's refusal as a sentence a moderator can act on."""
        if exc.code == PIN_LIMIT_REACHED:
            return (
                f"{channel.mention} already has as many pins as Discord allows. "
                "Unpin a message there first (/unpin or its Unpin button), then try again."
            )
        if exc.code == UNKNOWN_MESSAGE:
            return (
                f"That message no longer exists (it was deleted), so there is nothing to {action}."
                " I've taken it off the list of pinned stories."
            )
        if exc.code == UNKNOWN_CHANNEL:
            return "That channel no longer exists."
        if isinstance(exc, discord.Forbidden) or exc.code in MISSING_ACCESS:
            return (
                f"I can't {action} messages in {channel.mention}: I'm missing the "
                "**Pin Messages** permission there. Give it to my role (or allow it in the "
                "channel's settings) and try again."
            )
        log.warning("could not %s in channel %s: %s %s", action, channel.id, exc.status, exc)
        return f"Discord did not let me {action} it ({exc.status}). Try again in a moment."

    # -- the Pin / Unpin button -------------------------------------------------------

    async def toggle(self, interaction: discord.Interaction, story_id: str) -> None:
        """The story button: pin the message it is on, or unpin it if it is pinned."""
        message = interaction.message
        if interaction.guild is None or message is None:
            await reply_privately(interaction, "Pins work in server channels only.")
            return
        if not can_pin(interaction.permissions):
            await reply_privately(interaction, NOT_A_MODERATOR)
            return
        try:
            if message.pinned or await self.store.pin(message.id) is not None:
                pin = await self.unpin(message.channel, message.id, interaction.user)
                story = pin.story if pin else await self.store.story(story_id)
                pinned_here = False
            else:
                story = await self.store.story(story_id)
                if story is None:
                    raise UserError(STORY_GONE)
                await self.pin(message, story.id, interaction.user)
                pinned_here = True
        except UserError as exc:
            await reply_privately(interaction, exc.message)
            return
        if story is None:  # unpinned a story no longer in the archive: keep the message as is
            await reply_privately(interaction, "Unpinned.")
            return
        update = await self.message_update(message, story, pinned_here=pinned_here)
        await interaction.response.edit_message(**update)

    # -- keeping messages and the record true ---------------------------------------------

    async def message_update(
        self, message: discord.Message, story: Story, *, pinned_here: bool
    ) -> MessageUpdate:
        """The edit that makes a story message show its pin state (button, footer mark)."""
        update = MessageUpdate(view=story_view(story, pinned=pinned_here))
        if message.embeds and is_story_embed(message.embeds[0], story.id):
            assert message.guild is not None  # story messages with pins are in servers
            marked = pinned_here or await self.store.is_story_pinned(message.guild.id, story.id)
            live: dict = {}
            # A pushed post kept current keeps showing what its last edit showed
            # ("🔥 154 → 231 · 3 more outlets"): the pin mark is no live edit.
            for post in await self.store.message_posts(message.channel.id, message.id):
                if post.story.id == story.id and post.shown_heat is not None:
                    story = dataclasses.replace(story, heat=post.shown_heat)
                    live = {
                        "since_heat": post.posted_heat,
                        "more_outlets": post.shown_coverage - post.posted_coverage,
                    }
            update["embed"] = embeds.story_embed(
                story, self.bot.config.hot_heat, pinned=marked, **live
            )
        return update

    async def refresh(self, message: discord.Message, story: Story, *, pinned_here: bool) -> None:
        """Best effort: a failed edit only leaves a stale label."""
        try:
            await message.edit(**await self.message_update(message, story, pinned_here=pinned_here))
        except discord.HTTPException as exc:
            log.info("could not relabel message %s: %s", message.id, exc)

    async def refresh_by_id(self, channel, message_id: int, story: Story, *, pinned_here: bool):
        try:
            message = await channel.fetch_message(message_id)
        except discord.HTTPException:
            return  # deleted, or no longer readable: nothing to relabel
        await self.refresh(message, story, pinned_here=pinned_here)

    async def reconcile(self, channel) -> tuple[int, int]:
        """Make the channel's pin record equal its real pins; returns (dropped, adopted).

        Records of messages no longer pinned are dropped (their button goes back
        to Pin); the bot's own story messages pinned directly in Discord are adopted.
        """
        async with self._locks[channel.id]:
            recorded = await self.store.pinned_message_ids(channel.id)
            try:
                pinned = [message async for message in channel.pins(limit=None)]
            except discord.HTTPException as exc:
                log.warning("cannot read the pins of channel %s: %s", channel.id, exc)
                return 0, 0
            pinned_ids = {message.id for message in pinned}
            dropped = await self.store.remove_pins(recorded - pinned_ids)
            adopted = []
            for message in pinned:
                if message.id in recorded or message.author.id != self.bot.user_id:
                    continue
                story_id = story_id_of(message)
                story = await self.store.story(story_id) if story_id else None
                if story is not None and await self.store.record_pin(
                    guild_id=channel.guild.id,
                    channel_id=channel.id,
                    message_id=message.id,
                    story_id=story.id,
                    pinned_by=None,
                    now=message.pinned_at or discord.utils.utcnow(),
                ):
                    adopted.append((message, story))
        for pin in dropped:
            log.info("message %s is no longer pinned: forgot its pin", pin.message_id)
            await self.refresh_by_id(channel, pin.message_id, pin.story, pinned_here=False)
        for message, story in adopted:
            log.info("adopted pinned story %s in channel %s", story.id, channel.id)
            await self.refresh(message, story, pinned_here=True)
        return len(dropped), len(adopted)

    async def reconcile_all(self) -> None:
        """At start-up: every channel with recorded pins against its real pins."""
        for guild_id, channel_id in await self.store.pin_channels():
            guild = self.bot.get_guild(guild_id)
            if guild is None:
                continue  # not in that server (now): keep its record
            channel: discord.abc.GuildChannel | discord.Thread | discord.abc.PrivateChannel | None
            channel = guild.get_channel_or_thread(channel_id)
            if channel is None:
                try:
                    channel = await self.bot.fetch_channel(channel_id)
                except discord.NotFound:
                    removed = await self.store.delete_channel_pins(channel_id)
                    log.info("channel %s is gone: forgot its %d pins", channel_id, removed)
                    continue
                except discord.HTTPException as exc:
                    log.warning("cannot reach channel %s: %s", channel_id, exc)
                    continue
            try:
                await self.reconcile(channel)
            except Exception:
                log.exception("reconciling the pins of channel %s failed", channel_id)
