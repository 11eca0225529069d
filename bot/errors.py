"""One error handler for application commands.

In order: a `UserError` is shown as it is (it carries a user-safe message);
a channel option this server does not have says so;
a failed check says the person lacks permission; a cooldown says to wait;
anything else is logged with its traceback, command, guild and options, and
the person gets a short apology. The interaction is always answered.

Text Discord cannot carry (a lone surrogate in an option) is turned away before
any command runs, by `NewsTree`: see `unencodable_options`.
"""

from __future__ import annotations

import logging
from typing import Any, cast

import discord
from discord import app_commands

log = logging.getLogger(__name__)

APOLOGY = "Sorry, something went wrong on our side. It has been logged."
NOT_IN_GUILD = "That channel is not in this server."
UNENCODABLE = (
    "Your `{option}` has characters that cannot be sent as text (a broken emoji or "
    "symbol, e.g. half of a surrogate pair). Please type it again."
)


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
    elif (
        isinstance(error, app_commands.TransformerError)
        and error.type is discord.AppCommandOptionType.channel
    ):  # discord.py resolves a channel option in this server only: another's is not found
        await reply_privately(interaction, NOT_IN_GUILD)
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


# The channels a command can be typed in, in a server: where `/pin` posts, for one.
CommandChannel = discord.TextChannel | discord.VoiceChannel | discord.StageChannel | discord.Thread


def server_member(interaction: discord.Interaction) -> tuple[discord.Guild, discord.Member]:
    """The server and the member of a command that runs in servers only (`guild_only`)."""
    if interaction.guild is None or not isinstance(interaction.user, discord.Member):
        raise app_commands.NoPrivateMessage()
    return interaction.guild, interaction.user


def command_channel(interaction: discord.Interaction) -> CommandChannel:
    """The server channel a `guild_only` command was typed in."""
    channel = interaction.channel
    if not isinstance(channel, CommandChannel):
        raise app_commands.NoPrivateMessage()
    return channel


def channel_in_guild(interaction: discord.Interaction, channel):
    """This server's own copy of a channel option, or a `UserError` when it has none.

    Discord resolves a channel option by id, and an id can name another server's
    channel; the cached channel also carries the overwrites permissions need.
    """
    if channel is None:
        return None
    found = interaction.guild.get_channel_or_thread(channel.id) if interaction.guild else None
    if found is None:
        raise UserError(NOT_IN_GUILD)
    return found


def _unencodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: SQLite and Discord's JSON refuse them
        return True
    return False


def unencodable_options(options: list[dict], *, clean: bool = False) -> list[str]:
    """Names of the string options (subcommands included) holding text UTF-8 cannot carry.

    With `clean`, such text is mended in place (unencodable characters dropped),
    which is what autocomplete wants: suggestions for what can be read.
    """
    names = []
    for option in options:
        value = option.get("value")
        if isinstance(value, str) and _unencodable(value):
            names.append(option["name"])
            if clean:
                option["value"] = value.encode("utf-8", "ignore").decode("utf-8")
        names += unencodable_options(option.get("options") or [], clean=clean)
    return names


class NewsTree(app_commands.CommandTree):
    """The command tree: options that are not valid text never reach a command."""

    async def interaction_check(self, interaction: discord.Interaction, /) -> bool:
        # Every kind of interaction's options, read alike (discord.py types each kind apart).
        data = cast(dict[str, Any], interaction.data or {})
        if interaction.type is discord.InteractionType.autocomplete:
            unencodable_options(data.get("options") or [], clean=True)
            return True
        if bad := unencodable_options(data.get("options") or []):
            log.info(
                "refused unencodable text in option %s from user %s", bad[0], interaction.user.id
            )
            await reply_privately(interaction, UNENCODABLE.format(option=f"{bad[0]}:"))
            return False
        return True
