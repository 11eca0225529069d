"""One error handler for application commands.

In order: a `UserError` is shown as it is (it carries a user-safe message);
a failed check says the person lacks permission; a cooldown says to wait;
anything else is logged with its traceback, command, guild and options, and
the person gets a short apology. The interaction is always answered.
"""

from __future__ import annotations

import logging

import discord
from discord import app_commands

log = logging.getLogger(__name__)

APOLOGY = "Sorry, something went wrong on our side. It has been logged."


class UserError(app_commands.AppCommandError):
    """A problem the user can fix; `message` is shown to them as it is."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


async def reply_privately(interaction: discord.Interaction, message: str) -> None:
    """An ephemeral answer, whether or not the interaction was already answered."""
    try:
        if interaction.response.is_done():
            await interaction.followup.send(
                message, ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
            )
        else:
            await interaction.response.send_message(
                message, ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
            )
    except discord.HTTPException:
        log.warning("could not tell %s about an error", interaction.user, exc_info=True)


async def on_app_command_error(
    interaction: discord.Interaction, error: app_commands.AppCommandError
) -> None:
    original = getattr(error, "original", error)
    if isinstance(original, UserError):
        await reply_privately(interaction, original.message)
    elif isinstance(error, app_commands.MissingPermissions | app_commands.BotMissingPermissions):
        await reply_privately(interaction, str(error))
    elif isinstance(error, app_commands.NoPrivateMessage):
        await reply_privately(interaction, "This command works in a server channel only.")
    elif isinstance(error, app_commands.CheckFailure):
        await reply_privately(interaction, "You are not allowed to use this command here.")
    elif isinstance(error, app_commands.CommandOnCooldown):
        await reply_privately(interaction, f"Slow down: try again in {error.retry_after:.0f}s.")
    else:
        command = interaction.command.qualified_name if interaction.command else "?"
        options = {k: v for k, v in interaction.namespace}
        log.error(
            "command /%s failed (guild %s, channel %s, user %s, options %r)",
            command,
            interaction.guild_id,
            interaction.channel_id,
            interaction.user.id,
            options,
            exc_info=original,
        )
        await reply_privately(interaction, APOLOGY)


async def on_component_error(
    interaction: discord.Interaction, error: Exception, item: discord.ui.Item
) -> None:
    """A button failed: log it like a command, and answer the click anyway."""
    log.error(
        "button %r (%s) failed (guild %s, channel %s, user %s)",
        getattr(item, "label", None),
        getattr(item, "custom_id", None),
        interaction.guild_id,
        interaction.channel_id,
        interaction.user.id,
        exc_info=error,
    )
    await reply_privately(interaction, APOLOGY)
