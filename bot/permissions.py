"""The Discord permissions the bot needs, in one place: the invite and the checks use it."""

from __future__ import annotations

import discord

from bot.errors import UserError

# What the bot needs in a channel to post a story, with the names Discord's UI shows.
POST_PERMISSIONS = {
    "view_channel": "View Channel",
    "send_messages": "Send Messages",
    "embed_links": "Embed Links",
}
# A forum post is a thread with a starter message: Send Messages creates posts there,
# and Send Messages in Threads lets the bot write into them.
FORUM_POST_PERMISSIONS = {
    **POST_PERMISSIONS,
    "send_messages_in_threads": "Send Messages in Threads",
}
# A discussion thread on each post (`/subscribe thread:True`).
THREAD_PERMISSIONS = {
    "create_public_threads": "Create Public Threads",
    "send_messages_in_threads": "Send Messages in Threads",
}

# Everything the bot does, and nothing more; `python -m bot invite` asks for exactly this.
REQUIRED_PERMISSIONS = discord.Permissions(
    view_channel=True,
    send_messages=True,  # also: create forum posts
    embed_links=True,
    read_message_history=True,  # to find its own posts again after a crash
    # Pinning needs Pin Messages since Discord split it from Manage Messages (Feb 2026);
    # reading a channel's pins needs Read Message History, already asked for above.
    pin_messages=True,
    create_public_threads=True,  # a discussion thread on each post (thread:True)
    send_messages_in_threads=True,  # forum posts and those threads
)


def is_forum(channel: object) -> bool:
    return isinstance(channel, discord.ForumChannel)


def missing_post_permissions(
    channel: discord.abc.GuildChannel | discord.Thread, *, threads: bool = False
) -> list[str]:
    """Names of the permissions the bot lacks to post stories in `channel` (empty: none).

    A forum channel needs what forum posts need; `threads`: each post opens a thread.
    """
    perms = channel.permissions_for(channel.guild.me)
    needed = dict(FORUM_POST_PERMISSIONS if is_forum(channel) else POST_PERMISSIONS)
    if threads and not is_forum(channel):
        needed.update(THREAD_PERMISSIONS)
    return [label for name, label in needed.items() if not getattr(perms, name)]


def check_can_post(
    channel: discord.abc.GuildChannel | discord.Thread, *, threads: bool = False
) -> None:
    """Refuse a command early, naming the permissions, when the bot could not post there."""
    if missing := missing_post_permissions(channel, threads=threads):
        raise UserError(
            f"I can't post in {channel.mention}: I'm missing {', '.join(missing)}. "
            "Grant it to my role there and try again."
        )


def missing_pin_permissions(channel: discord.abc.GuildChannel | discord.Thread) -> list[str]:
    """Names of the permissions the bot lacks to pin messages in `channel` (empty: none)."""
    perms = channel.permissions_for(channel.guild.me)
    needed = {"view_channel": "View Channel", "pin_messages": "Pin Messages"}
    return [label for name, label in needed.items() if not getattr(perms, name)]


def can_pin(permissions: discord.Permissions) -> bool:
    """A moderator, for pins: Pin Messages or Manage Messages in the channel."""
    return permissions.pin_messages or permissions.manage_messages


def can_manage_subscriptions(
    member: discord.Member, channel: discord.abc.GuildChannel | discord.Thread | None
) -> bool:
    """Staff, for subscriptions: Manage Channels in the channel the subscription posts in.

    Checked in the target channel, not where the command is typed: Manage Channels in
    one channel (an overwrite) must not reach another channel's subscriptions. A channel
    not cached (or gone), None: server-wide Manage Channels decides.
    """
    if channel is None:
        return member.guild_permissions.manage_channels
    return channel.permissions_for(member).manage_channels


def can_ping(member: discord.Member, channel: discord.abc.GuildChannel, role: discord.Role) -> bool:
    """Whether `member` may make the bot ping `role` in `channel`: as they could themselves."""
    return role.mentionable or channel.permissions_for(member).mention_everyone
