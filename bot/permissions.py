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
    # Pinning needs Pin Messages since Discord split it from Manage Messages (Feb 2026);
    # reading a channel's pins needs Read Message History, already asked for above.
    pin_messages=True,
)


def missing_post_permissions(channel: discord.abc.GuildChannel) -> list[str]:
    """Names of the permissions the bot lacks to post stories in `channel` (empty: none)."""
    perms = channel.permissions_for(channel.guild.me)
    return [label for name, label in POST_PERMISSIONS.items() if not getattr(perms, name)]


def missing_pin_permissions(channel: discord.abc.GuildChannel) -> list[str]:
    """Names of the permissions the bot lacks to pin messages in `channel` (empty: none)."""
    perms = channel.permissions_for(channel.guild.me)
    needed = {"view_channel": "View Channel", "pin_messages": "Pin Messages"}
    return [label for name, label in needed.items() if not getattr(perms, name)]


def can_pin(permissions: discord.Permissions) -> bool:
    """A moderator, for pins: Pin Messages or Manage Messages in the channel."""
    return permissions.pin_messages or permissions.manage_messages


def can_manage_subscriptions(member: discord.Member, channel: discord.abc.GuildChannel) -> bool:
    """Staff, for subscriptions: Manage Channels in the channel the subscription posts in.

    Checked in the target channel, not where the command is typed: Manage Channels in
    one channel (an overwrite) must not reach another channel's subscriptions.
    """
    return channel.permissions_for(member).manage_channels


def can_ping(member: discord.Member, channel: discord.abc.GuildChannel, role: discord.Role) -> bool:
    """Whether `member` may make the bot ping `role` in `channel`: as they could themselves."""
    return role.mentionable or channel.permissions_for(member).mention_everyone
