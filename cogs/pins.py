"""Moderators pin stories: `/pin`, `/unpin`, `/pinned`, the "Pin story" menu, pin events."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot import embeds
from bot.autocomplete import resolve_story, story_choices
from bot.errors import UserError, channel_in_guild, command_channel, server_member
from bot.permissions import can_pin, check_can_post
from bot.pinning import NOT_A_MODERATOR, STORY_GONE, story_id_of
from bot.views import NO_MENTIONS, Paginator, story_view
from core.store import NewsStore

if TYPE_CHECKING:
    from bot.app import NewsBot
    from core.store import Pin

log = logging.getLogger(__name__)

PINS_PAGE_SIZE = 5


async def _is_moderator(interaction: discord.Interaction) -> bool:
    if not can_pin(interaction.permissions):
        raise UserError(NOT_A_MODERATOR)
    return True


def moderators_only():
    """Hidden from members without Pin Messages, and checked again when run.

    Discord's default permissions can only require permissions, not offer a
    choice, so the command shows for Pin Messages (the permission pinning takes
    since Discord split it from Manage Messages); the run-time check also lets
    in Manage Messages, e.g. when a server shows the command to such a role.
    """

    def decorator(func):
        func = app_commands.default_permissions(pin_messages=True)(func)
        func = app_commands.check(_is_moderator)(func)
        return app_commands.guild_only()(func)

    return decorator


class Pins(commands.Cog):
    def __init__(self, bot: NewsBot) -> None:
        self.bot = bot
        self.pin_menu = app_commands.ContextMenu(name="Pin story", callback=self.pin_story)
        self._startup: asyncio.Task | None = None

    @property
    def store(self) -> NewsStore:
        return self.bot.store

    @property
    def pinner(self):
        return self.bot.pinner

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.pin_menu)
        self._startup = asyncio.create_task(self._reconcile_at_start(), name="pins-reconcile")

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.pin_menu.name, type=self.pin_menu.type)
        if self._startup is not None and not self._startup.done():
            self._startup.cancel()

    async def _reconcile_at_start(self) -> None:
        """Pins changed while the bot was away: make the record match the channels."""
        await self.bot.wait_until_ready()
        try:
            await self.pinner.reconcile_all()
        except Exception:
            log.exception("reconciling pins at start-up failed")

    # -- events: the record follows Discord -------------------------------------------

    @commands.Cog.listener()
    async def on_guild_channel_pins_update(self, channel, last_pin) -> None:
        await self.pinner.reconcile(channel)

    @commands.Cog.listener()
    async def on_raw_message_delete(self, payload: discord.RawMessageDeleteEvent) -> None:
        if await self.store.remove_pins([payload.message_id]):
            log.info("pinned message %s was deleted: forgot its pin", payload.message_id)

    @commands.Cog.listener()
    async def on_raw_bulk_message_delete(self, payload: discord.RawBulkMessageDeleteEvent) -> None:
        if removed := await self.store.remove_pins(payload.message_ids):
            log.info("%d pinned messages were deleted in bulk: forgot them", len(removed))

    @commands.Cog.listener()
    async def on_guild_channel_delete(self, channel: discord.abc.GuildChannel) -> None:
        await self.store.delete_channel_pins(channel.id)

    @commands.Cog.listener()
    async def on_guild_remove(self, guild: discord.Guild) -> None:
        await self.store.delete_guild_pins(guild.id)

    # -- autocomplete -------------------------------------------------------------------

    async def story_autocomplete(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await story_choices(self.store, current)

    async def pinned_story_autocomplete(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        wanted = current.strip().casefold()
        choices, seen = [], set()
        if interaction.channel_id is None:
            return []
        for pin in await self.store.channel_pins(interaction.channel_id):
            story = pin.story
            if story.id in seen or (
                wanted not in story.title.casefold() and not story.id.startswith(wanted)
            ):
                continue
            seen.add(story.id)
            name = embeds.choice_name(f"{embeds.truncate(story.title, 85)} · {story.id}")
            choices.append(app_commands.Choice(name=name, value=story.id))
        return choices[: embeds.CHOICES_LIMIT]

    # -- commands -------------------------------------------------------------------------

    @app_commands.command(name="pin", description="Post a story in this channel and pin it")
    @app_commands.describe(story="The story: type words of its title or its id")
    @app_commands.autocomplete(story=story_autocomplete)
    @moderators_only()
    async def pin(self, interaction: discord.Interaction, story: str) -> None:
        found = await resolve_story(self.bot, story)
        channel = command_channel(interaction)
        if existing := await self.store.channel_pins(channel.id, found.id):
            raise UserError(
                f"**{embeds.plain(found.title)}** is already pinned here: {existing[0].jump_url}"
            )
        check_can_post(channel)
        self.pinner.check_can_pin(channel)
        await interaction.response.defer(ephemeral=True, thinking=True)
        try:
            message = await channel.send(
                embed=embeds.story_embed(found, self.bot.config.hot_heat, pinned=True),
                view=story_view(found, pinned=True),
                allowed_mentions=NO_MENTIONS,
            )
        except discord.HTTPException as exc:
            raise UserError(
                f"Discord did not let me post in {channel.mention} ({exc.status})."
            ) from exc
        try:
            await self.pinner.pin(message, found.id, interaction.user)
        except UserError:
            await _delete_quietly(message)  # an unpinned copy is not what was asked for
            raise
        await interaction.followup.send(
            f"📌 Pinned **{embeds.plain(found.title)}** in {channel.mention}: {message.jump_url}",
            ephemeral=True,
            allowed_mentions=NO_MENTIONS,
        )

    @app_commands.command(name="unpin", description="Unpin a story pinned in this channel")
    @app_commands.describe(story="One of this channel's pinned stories")
    @app_commands.autocomplete(story=pinned_story_autocomplete)
    @moderators_only()
    async def unpin(self, interaction: discord.Interaction, story: str) -> None:
        channel = command_channel(interaction)
        pins = await self._channel_pins_of(channel.id, story)
        if not pins:
            raise UserError(
                f"No story “{embeds.plain_truncated(story, 80)}” is pinned in {channel.mention}. "
                "See the pinned stories with /pinned."
            )
        self.pinner.check_can_pin(channel)
        await interaction.response.defer(ephemeral=True, thinking=True)
        for pin in pins:
            await self.pinner.unpin(channel, pin.message_id, interaction.user)
            await self.pinner.refresh_by_id(channel, pin.message_id, pin.story, pinned_here=False)
        await interaction.followup.send(
            f"Unpinned **{embeds.plain(pins[0].story.title)}** in {channel.mention}.",
            ephemeral=True,
            allowed_mentions=NO_MENTIONS,
        )

    @app_commands.command(name="pinned", description="The stories moderators pinned, newest first")
    @app_commands.describe(channel="Only this channel's pins (default: the whole server)")
    @app_commands.guild_only()
    async def pinned(
        self, interaction: discord.Interaction, channel: discord.TextChannel | None = None
    ) -> None:
        guild, member = server_member(interaction)
        channel = channel_in_guild(interaction, channel)
        if channel is not None and not channel.permissions_for(member).view_channel:
            raise UserError("You can't see that channel.")

        async def visible_pins() -> list[Pin]:
            if channel is not None:
                return await self.store.channel_pins(channel.id)
            # Never reveal what is pinned in channels this member cannot see.
            return [
                pin
                for pin in await self.store.guild_pins(guild.id)
                if (where := guild.get_channel_or_thread(pin.channel_id)) is not None
                and where.permissions_for(member).view_channel
            ]

        where = channel.mention if channel else "this server"
        title = f"Pinned stories in #{channel.name}" if channel else f"Pinned stories in {guild}"

        async def render(offset: int) -> tuple[discord.Embed, int]:
            pins = await visible_pins()
            embed = embeds.pins_embed(
                title, pins, offset, PINS_PAGE_SIZE, show_channel=channel is None
            )
            return embed, len(pins)

        embed, total = await render(0)
        if total == 0:
            raise UserError(
                f"No stories are pinned in {where} yet. Moderators pin them with /pin "
                "or the 📌 Pin button under a story."
            )
        paginator = Paginator(member, render, PINS_PAGE_SIZE, total)
        await paginator.send(interaction, embed, ephemeral=True)

    @moderators_only()
    async def pin_story(self, interaction: discord.Interaction, message: discord.Message) -> None:
        """The "Pin story" message menu: pin one of the bot's story messages where it is."""
        story_id = story_id_of(message) if message.author.id == self.bot.user_id else None
        if story_id is None:
            raise UserError(
                "That is not one of my story messages. I pin the stories I post "
                "(/story, /pin and subscription posts)."
            )
        story = await self.store.story(story_id)
        if story is None:
            raise UserError(STORY_GONE)
        if message.pinned:
            raise UserError(
                f"**{embeds.plain(story.title)}** is already pinned here: {message.jump_url}"
            )
        self.pinner.check_can_pin(message.channel)
        await interaction.response.defer(ephemeral=True, thinking=True)
        await self.pinner.pin(message, story.id, interaction.user)
        await self.pinner.refresh(message, story, pinned_here=True)
        await interaction.followup.send(
            f"📌 Pinned **{embeds.plain(story.title)}**: {message.jump_url}",
            ephemeral=True,
            allowed_mentions=NO_MENTIONS,
        )

    # -- helpers ----------------------------------------------------------------------------

    async def _channel_pins_of(self, channel_id: int, text: str) -> list[Pin]:
        """The channel's pins of the story typed: its id, else words of its title."""
        text = text.strip()
        if pins := await self.store.channel_pins(channel_id, text.lower()):
            return pins
        wanted = text.casefold()
        everything = await self.store.channel_pins(channel_id)
        pins = [p for p in everything if wanted in p.story.title.casefold()]
        ids = {p.story.id for p in pins}
        return pins if len(ids) == 1 else []


async def _delete_quietly(message: discord.Message) -> None:
    try:
        await message.delete()
    except discord.HTTPException as exc:
        log.info("could not delete message %s: %s", message.id, exc)


async def setup(bot: NewsBot) -> None:
    await bot.add_cog(Pins(bot))
