"""`/help`: what the bot does, who may run which command, and what "heat" means."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot import embeds
from bot.views import NO_MENTIONS

if TYPE_CHECKING:
    from bot.app import NewsBot

# Who may run a command, from the permissions it asks of members by default.
AUDIENCES = (
    ("Everyone", None),
    ("Staff (Manage Channels)", "manage_channels"),
    ("Moderators (Pin Messages)", "pin_messages"),
)


class Help(commands.Cog):
    def __init__(self, bot: NewsBot) -> None:
        self.bot = bot

    @app_commands.command(name="help", description="What this bot does, its commands, and heat")
    async def help(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(
            embed=help_embed(self.bot), ephemeral=True, allowed_mentions=NO_MENTIONS
        )


def audience(
    command: app_commands.Command | app_commands.Group | app_commands.ContextMenu,
) -> str | None:
    """The permission a command asks of members by default (None: everyone)."""
    wanted = command.default_permissions
    if wanted is None or wanted.value == 0:
        return None
    for _, permission in AUDIENCES[1:]:
        if getattr(wanted, permission):
            return permission
    return "other"


def help_embed(bot: NewsBot) -> discord.Embed:
    """Built from the command tree, so that a new command shows up here by itself."""
    config = bot.config
    embed = discord.Embed(
        title="News bot: help",
        description=(
            "I bring the news of this server's archive to Discord: browse it with `/news`, "
            "read one story with `/story`, find more like it with `/related`. Staff can "
            "subscribe channels to topics, so hot stories are posted there as they happen."
        ),
        colour=embeds.COLD,
    )
    groups: dict[str | None, list[str]] = {}
    for command in sorted(bot.tree.get_commands(), key=lambda c: c.name):
        if isinstance(command, app_commands.ContextMenu):
            line = f"*{command.name}* (message menu: right-click a story post → Apps)"
        else:
            line = f"`/{command.name}` — {command.description}"
        groups.setdefault(audience(command), []).append(line)
    for title, permission in AUDIENCES:
        if lines := groups.pop(permission, []):
            embed.add_field(name=title, value="\n".join(lines), inline=False)
    if lines := [line for rest in groups.values() for line in rest]:
        embed.add_field(name="Others", value="\n".join(lines), inline=False)
    embed.add_field(
        name="🔥 Heat",
        value=(
            "The archive's trending score of a story (shown as 🔥 and in each story's "
            f"footer). A story is **hot** at heat {config.hot_heat} or more (the footer says "
            "`hot`); `/news sort:hot` lists the hottest first."
        ),
        inline=False,
    )
    age = f", published in the last {config.max_age_hours} hours," if config.max_age_hours else ""
    embed.add_field(
        name="Subscriptions",
        value=(
            "A channel subscribed to a topic gets each story of that topic once, when its "
            f"heat reaches the subscription's `min_heat` (default {config.hot_heat}){age} "
            "if it has the `keywords` (all of them, or any with `match:any`) and none of the "
            "`exclude` words, unless it is paused. See them with `/subscriptions`; "
            "`/why` says why a story was posted in a channel, or not."
        ),
        inline=False,
    )
    return embeds.fit(embed)


async def setup(bot: NewsBot) -> None:
    await bot.add_cog(Help(bot))
