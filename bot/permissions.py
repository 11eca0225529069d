"""The Discord permissions the bot needs, in one place: the invite and the checks use it."""

from __future__ import annotations

import discord

# What the bot needs in a channel to post a story, with the names Discord's UI shows.
POST_PERMISSIONS = {
    "view_channel": "View Channel",
    "send_messages": "Send Messages",
    "embed_links": "Embed Links",
}

# Everything the bot does, and nothing more; `python -m bot invite` asks for exactly this.
REQUIRED_PERMISSIONS = discord.Permissions(
    view_channel=True,
    send_messages=True,
    embed_links=True,
    read_message_history=True,  # to find its own posts again after a crash
)


def missing_post_permissions(channel: discord.abc.GuildChannel) -> list[str]:
    """Names of the permissions the bot lacks to post stories in `channel` (empty: none)."""
    perms = channel.permissions_for(channel.guild.me)
    return [label for name, label in POST_PERMISSIONS.items() if not getattr(perms, name)]
