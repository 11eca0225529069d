"""Channel subscriptions: `/subscribe`, `/unsubscribe`, `/subscriptions`, and the poller."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands, tasks

from bot import embeds
from bot.autocomplete import topic_choices
from bot.delivery import Deliverer, parse_terms
from bot.errors import UserError
from bot.permissions import missing_post_permissions
from bot.views import NO_MENTIONS, Paginator
from core.models import Subscription

if TYPE_CHECKING:
    from bot.app import NewsBot

log = logging.getLogger(__name__)

ALL = "all"
SUBSCRIPTIONS_PAGE_SIZE = 8


def staff_only():
    """Hidden from members without Manage Channels, and checked again when run."""

    def decorator(func):
        func = app_commands.default_permissions(manage_channels=True)(func)
        func = app_commands.checks.has_permissions(manage_channels=True)(func)
        return app_commands.guild_only()(func)

    return decorator


class Subscriptions(commands.Cog):
    def __init__(self, bot: NewsBot) -> None:
        self.bot = bot
        self.deliverer = Deliverer(bot)

    @property
    def store(self):
        return self.bot.store

    async def cog_load(self) -> None:
        self.poller.change_interval(seconds=self.bot.config.poll_seconds)
        self.poller.start()

    async def cog_unload(self) -> None:
        self.poller.cancel()

    # -- the poller -----------------------------------------------------------------

    @tasks.loop(seconds=300)
    async def poller(self) -> None:
        try:
            # The first round follows the start-up load: no need to rescan yet.
            await self.deliverer.poll(rescan=self.poller.current_loop > 0)
        except Exception:  # the loop must survive anything one round does
            log.exception("poll failed")

    @poller.before_loop
    async def before_poller(self) -> None:
        await self.bot.wait_until_ready()
        await self.bot.archive_loaded.wait()

    # -- events ---------------------------------------------------------------------

    @commands.Cog.listener()
    async def on_guild_channel_delete(self, channel: discord.abc.GuildChannel) -> None:
        if removed := await self.store.delete_channel(channel.id):
            log.info("channel %s deleted: removed %d subscriptions", channel.id, removed)

    @commands.Cog.listener()
    async def on_guild_remove(self, guild: discord.Guild) -> None:
        removed = await self.store.delete_guild(guild.id)
        log.info("removed from guild %s: deleted %d subscriptions", guild.id, removed)

    # -- autocomplete -----------------------------------------------------------------

    async def topic_autocomplete(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await topic_choices(self.store, current)

    async def subscribed_topic_autocomplete(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        channel = getattr(interaction.namespace, "channel", None) or interaction.channel
        subs = await self.store.channel_subscriptions(channel.id) if channel else []
        wanted = current.strip().casefold()
        names = [s.topic for s in subs if wanted in s.topic.casefold()]
        choices = [app_commands.Choice(name=embeds.choice_name(n), value=n[:100]) for n in names]
        if subs and ALL.startswith(wanted):
            choices.insert(0, app_commands.Choice(name="all (every subscription here)", value=ALL))
        return choices[: embeds.CHOICES_LIMIT]

    # -- commands -----------------------------------------------------------------------

    @app_commands.command(name="subscribe", description="Post a topic's hot stories in a channel")
    @app_commands.describe(
        topic="The topic to follow",
        channel="Where to post (default: this channel)",
        min_heat="Post stories at least this hot (default: the bot's hot heat)",
        keywords="Only stories with all these words (comma-separated for phrases)",
        exclude="Never stories with any of these words",
        mention="A role to ping with each post",
        backfill="Also post this many of the hottest current stories now (default 0)",
    )
    @app_commands.autocomplete(topic=topic_autocomplete)
    @staff_only()
    async def subscribe(
        self,
        interaction: discord.Interaction,
        topic: app_commands.Range[str, 1, 100],
        channel: discord.TextChannel | None = None,
        min_heat: app_commands.Range[int, 0, 1000] | None = None,
        keywords: app_commands.Range[str, 1, 300] | None = None,
        exclude: app_commands.Range[str, 1, 300] | None = None,
        mention: discord.Role | None = None,
        backfill: app_commands.Range[int, 0, 10] = 0,
    ) -> None:
        target = self._target_channel(interaction, channel)
        if missing := missing_post_permissions(target):
            raise UserError(
                f"I can't post in {target.mention}: I'm missing {', '.join(missing)}. "
                "Grant it to my role there and try again."
            )
        if mention is not None and mention.is_default():
            raise UserError("I don't ping @everyone; pick a role instead.")
        topic_name = await self.store.topic_name(topic)
        if topic_name is None:
            close = await self.store.closest_topics(topic)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise UserError(f"There is no topic “{embeds.plain_truncated(topic, 80)}”.{hint}")
        subscription = await self.store.subscribe(
            guild_id=interaction.guild_id,
            channel_id=target.id,
            topic=topic_name,
            min_heat=self.bot.config.hot_heat if min_heat is None else min_heat,
            keywords=parse_terms(keywords),
            exclude=parse_terms(exclude),
            mention_role_id=mention.id if mention else None,
            created_by=interaction.user.id,
            now=discord.utils.utcnow(),
        )
        await self.store.clear_notice(target.id)
        backfilled = await self.deliverer.start_subscription(subscription, backfill)
        lines = [
            f"✅ {target.mention} now gets **{embeds.plain(topic_name)}** stories "
            f"with heat ≥ {subscription.min_heat}."
        ]
        lines += _filter_lines(subscription)
        if mention is not None and not mention.mentionable:
            lines.append(
                f"Note: {mention.mention} is not mentionable, so Discord will not ping it "
                "unless you make it mentionable."
            )
        if backfilled:
            noun = "story" if backfilled == 1 else "stories"
            lines.append(f"Posting the {backfilled} hottest current {noun} now.")
        await interaction.response.send_message(
            "\n".join(lines), ephemeral=True, allowed_mentions=NO_MENTIONS
        )
        if backfilled:
            await self.deliverer.deliver_channel(target.id)

    @app_commands.command(name="unsubscribe", description="Stop posting a topic in a channel")
    @app_commands.describe(
        topic="The subscribed topic, or “all” for every subscription of the channel",
        channel="The channel (default: this channel)",
    )
    @app_commands.autocomplete(topic=subscribed_topic_autocomplete)
    @staff_only()
    async def unsubscribe(
        self,
        interaction: discord.Interaction,
        topic: app_commands.Range[str, 1, 100],
        channel: discord.TextChannel | None = None,
    ) -> None:
        target = self._target_channel(interaction, channel)
        everything = topic.strip().casefold() == ALL
        removed = await self.store.unsubscribe(target.id, None if everything else topic)
        if not removed:
            raise UserError(
                f"{target.mention} has no subscription to “{embeds.plain_truncated(topic, 80)}”. "
                "See them with /subscriptions."
            )
        what = f"all {removed} subscriptions" if everything else f"**{embeds.plain(topic)}**"
        await interaction.response.send_message(
            f"Removed {what} from {target.mention}.", ephemeral=True, allowed_mentions=NO_MENTIONS
        )

    @app_commands.command(name="subscriptions", description="The server's topic subscriptions")
    @app_commands.describe(channel="Only this channel's subscriptions")
    @staff_only()
    async def subscriptions(
        self, interaction: discord.Interaction, channel: discord.TextChannel | None = None
    ) -> None:
        if channel is not None:
            self._target_channel(interaction, channel)
        subs = await self.store.subscriptions(interaction.guild_id, channel.id if channel else None)
        if not subs:
            where = channel.mention if channel else "this server"
            raise UserError(f"There are no subscriptions in {where}. Add one with /subscribe.")

        async def render(offset: int) -> tuple[discord.Embed, int]:
            page = subs[offset : offset + SUBSCRIPTIONS_PAGE_SIZE]
            embed = discord.Embed(
                title=f"Subscriptions{f' of #{channel.name}' if channel else ''}",
                colour=embeds.COLD,
            )
            for sub in page:
                embed.add_field(
                    name=embeds.truncate(f"{sub.topic} · {_state(sub)}", embeds.FIELD_NAME_LIMIT),
                    value=embeds.truncate(_describe(sub), embeds.FIELD_VALUE_LIMIT),
                    inline=False,
                )
            embed.set_footer(
                text=embeds.page_footer(
                    offset, len(subs), SUBSCRIPTIONS_PAGE_SIZE, "subscription", "subscriptions"
                )
            )
            return embeds.fit(embed), len(subs)

        embed, total = await render(0)
        paginator = Paginator(interaction.user, render, SUBSCRIPTIONS_PAGE_SIZE, total)
        if paginator.needed:
            await interaction.response.send_message(embed=embed, view=paginator, ephemeral=True)
            paginator.message = await interaction.original_response()
        else:
            await interaction.response.send_message(embed=embed, ephemeral=True)

    # -- helpers ------------------------------------------------------------------------

    def _target_channel(
        self, interaction: discord.Interaction, channel: discord.abc.GuildChannel | None
    ) -> discord.TextChannel:
        """The channel option (same guild only), else the channel the command was run in."""
        if channel is not None and channel.guild.id != interaction.guild_id:
            raise UserError("That channel belongs to another server.")
        target = channel or interaction.channel
        if not isinstance(target, discord.TextChannel):
            raise UserError("Subscriptions post in text or announcement channels; pick one.")
        # Resolved channel options are partial: use the cached channel for permissions.
        return interaction.guild.get_channel(target.id) or target


def _state(sub: Subscription) -> str:
    return "active" if sub.active else "paused"


def _filter_lines(sub: Subscription) -> list[str]:
    lines = []
    if sub.keywords:
        lines.append("Only with: " + ", ".join(f"“{k}”" for k in sub.keywords))
    if sub.exclude:
        lines.append("Never with: " + ", ".join(f"“{k}”" for k in sub.exclude))
    return [embeds.plain(line) for line in lines]


def _describe(sub: Subscription) -> str:
    lines = [f"<#{sub.channel_id}> · heat ≥ {sub.min_heat}"]
    lines += _filter_lines(sub)
    if sub.mention_role_id:
        lines.append(f"Mentions <@&{sub.mention_role_id}>")
    if not sub.active:
        lines.append(f"⏸ Paused: {embeds.plain(sub.paused_reason or '')}")
    if sub.last_story:
        when = (
            f" ({discord.utils.format_dt(sub.last_posted_at, 'R')})" if sub.last_posted_at else ""
        )
        lines.append(f"Last posted: {embeds.plain_truncated(sub.last_story, 150)}{when}")
    else:
        lines.append("Nothing posted yet.")
    return "\n".join(lines)


async def setup(bot: NewsBot) -> None:
    await bot.add_cog(Subscriptions(bot))
