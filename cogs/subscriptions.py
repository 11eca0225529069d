"""Channel subscriptions: `/subscribe`, `/unsubscribe`, `/subscriptions`, `/why`, the poller."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands, tasks

from bot import embeds, errors
from bot.autocomplete import resolve_story, story_choices, topic_choices, unknown_topic
from bot.delivery import Deliverer
from bot.errors import UserError
from bot.permissions import (
    can_manage_subscriptions,
    can_ping,
    check_can_post,
    is_forum,
)
from bot.views import NO_MENTIONS, Confirmation, Paginator
from core.filters import parse_terms
from core.models import THREAD_ARCHIVE_MINUTES, PostStyle, Subscription
from core.planner import WEEKDAYS, Limits, Qualification, explain
from core.store import NewsStore

if TYPE_CHECKING:
    from bot.app import NewsBot

log = logging.getLogger(__name__)

ALL = "all"
SUBSCRIPTIONS_PAGE_SIZE = 8
MATCHES = ("all", "any")  # keywords: a story needs all of them, or any one
CLEARABLE = ("keywords", "exclude", "mention", "all filters")
# Channels a subscription can post in: text and announcement channels, and forums.
PostChannel = discord.TextChannel | discord.ForumChannel
STYLES = {
    PostStyle.FULL: "full (the story card with its buttons)",
    PostStyle.COMPACT: "compact (one line each, several per message)",
    PostStyle.LINK: "link (the bare link, with Discord's preview)",
}
DIGESTS = ("off", "daily", "weekly")  # off: a post per story


def staff_only():
    """Hidden from members without Manage Channels; each command checks it again when run,
    in the channel it changes (see `_target_channel`), not where it is typed."""

    def decorator(func):
        func = app_commands.default_permissions(manage_channels=True)(func)
        return app_commands.guild_only()(func)

    return decorator


class Subscriptions(commands.Cog):
    def __init__(self, bot: NewsBot) -> None:
        self.bot = bot
        self.deliverer = Deliverer(bot)

    @property
    def store(self) -> NewsStore:
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
        # Only a channel the caller may manage: topic names are the server's business.
        if channel is None or interaction.guild is None:
            return []
        if interaction.guild.get_channel(channel.id) is None or not self._manages(
            interaction, channel.id
        ):
            return []
        subs = await self.store.channel_subscriptions(channel.id)
        wanted = current.strip().casefold()
        names = [s.topic for s in subs if wanted in s.topic.casefold()]
        choices = [app_commands.Choice(name=embeds.choice_name(n), value=n[:100]) for n in names]
        if subs and ALL.startswith(wanted):
            choices.insert(0, app_commands.Choice(name="all (every subscription here)", value=ALL))
        return choices[: embeds.CHOICES_LIMIT]

    async def story_autocomplete(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await story_choices(self.store, current)

    # -- commands -----------------------------------------------------------------------

    @app_commands.command(name="subscribe", description="Post a topic's hot stories in a channel")
    @app_commands.describe(
        topic="The topic to follow",
        channel="Where to post (default: this channel)",
        min_heat="Post stories at least this hot (default: the bot's hot heat)",
        keywords="Only stories with these words (comma-separated for phrases)",
        match="Whether a story needs all the keywords or any of them (default: all)",
        exclude="Never stories with any of these words",
        mention="A role to ping with each post",
        clear="Remove a filter of an existing subscription",
        paused="Pause the subscription (True) or resume it (False)",
        style="How posts look: full card (default), compact line, or bare link",
        thread="Open a discussion thread on each post (text and announcement channels)",
        thread_archive="When a quiet thread or forum post archives itself (default 1 day)",
        backfill="Also post this many of the hottest current stories now (a digest: in one)",
        live="Edit posts when their story gets hotter or more coverage (default: True)",
        digest="One message per day or week with the hottest stories, instead of a post each",
        digest_hour="The hour (UTC, 0-23) the digest goes out (default 0)",
        digest_day="The day a weekly digest goes out (default mon)",
        digest_size="How many stories a digest lists (1-10, default 5)",
    )
    @app_commands.choices(
        match=[app_commands.Choice(name=m, value=m) for m in MATCHES],
        clear=[app_commands.Choice(name=c, value=c) for c in CLEARABLE],
        style=[app_commands.Choice(name=label, value=str(s)) for s, label in STYLES.items()],
        digest=[app_commands.Choice(name=d, value=d) for d in DIGESTS],
        digest_day=[app_commands.Choice(name=d, value=d) for d in WEEKDAYS],
    )
    @app_commands.choices(  # apart: its values are numbers, the others' text
        thread_archive=[
            app_commands.Choice(name=name, value=minutes)
            for name, minutes in THREAD_ARCHIVE_MINUTES.items()
        ],
    )
    @app_commands.autocomplete(topic=topic_autocomplete)
    @staff_only()
    async def subscribe(
        self,
        interaction: discord.Interaction,
        topic: app_commands.Range[str, 1, 100],
        channel: PostChannel | None = None,
        min_heat: app_commands.Range[int, 0, 1000] | None = None,
        keywords: app_commands.Range[str, 1, 300] | None = None,
        match: str | None = None,
        exclude: app_commands.Range[str, 1, 300] | None = None,
        mention: discord.Role | None = None,
        clear: str | None = None,
        paused: bool | None = None,
        backfill: app_commands.Range[int, 0, 10] = 0,
        style: str | None = None,
        thread: bool | None = None,
        thread_archive: int | None = None,
        live: bool | None = None,
        digest: str | None = None,
        digest_hour: app_commands.Range[int, 0, 23] | None = None,
        digest_day: str | None = None,
        digest_size: app_commands.Range[int, 1, 10] | None = None,
    ) -> None:
        guild, member = errors.server_member(interaction)
        target = self._target_channel(interaction, channel)
        if thread and is_forum(target):
            raise UserError(
                f"Each story in {target.mention} is a forum post, a thread already: leave out "
                "`thread:` (`thread_archive:` sets when posts archive)."
            )
        clearing = _clearing(clear)
        for name, value in (("keywords", keywords), ("exclude", exclude), ("mention", mention)):
            if value is not None and name in clearing:
                raise UserError(f"Pick either `{name}:` or `clear:{clear}`, not both.")
        if mention is not None:
            if mention.is_default():
                raise UserError("I don't ping @everyone; pick a role instead.")
            if not can_ping(member, target, mention):
                raise UserError(
                    f"You can't ping {mention.mention} in {target.mention}: it is not "
                    "mentionable and you lack Mention Everyone there."
                )
        topic_name = await self.store.topic_name(topic)
        if topic_name is None:
            raise UserError(await unknown_topic(self.bot, topic))
        before = await self.store.subscription(target.id, topic_name)
        wants_thread = thread if thread is not None else bool(before and before.thread)
        check_can_post(target, threads=wants_thread)
        untaggable = _untaggable(target, topic_name)
        if untaggable and before is None:
            raise UserError(
                untaggable + " Add that tag in the forum's settings (I never "
                "create tags), or turn off “Require people to select tags”, then try again."
            )
        now = discord.utils.utcnow()
        digest_kind = (before.digest if before else None) if digest is None else digest
        digest_kind = None if digest_kind == "off" else digest_kind
        if digest_kind is not None and is_forum(target):
            raise UserError(
                f"{target.mention} is a forum: each story is a post of its own there. "
                "Digests go to text or announcement channels."
            )
        if digest_kind is None and (digest_hour, digest_day, digest_size) != (None, None, None):
            raise UserError(
                "`digest_hour:`, `digest_day:` and `digest_size:` set up a digest: "
                "add `digest:daily` or `digest:weekly`."
            )

        def kept(name: str, given, default):
            """An option left out keeps its value; `clear:` empties it."""
            if given is not None:
                return given
            if name in clearing:
                return default
            return getattr(before, name) if before else default

        paused_by, paused_by_at = (
            (before.paused_by, before.paused_by_at) if before else (None, None)
        )
        if paused is False:
            paused_by, paused_by_at = None, None
        elif paused and paused_by is None:
            paused_by, paused_by_at = member.id, now
        subscription = await self.store.subscribe(
            guild_id=guild.id,
            channel_id=target.id,
            topic=topic_name,
            min_heat=kept("min_heat", min_heat, self.bot.config.hot_heat),
            keywords=kept("keywords", parse_terms(keywords) if keywords else None, ()),
            exclude=kept("exclude", parse_terms(exclude) if exclude else None, ()),
            match_any=kept("match_any", None if match is None else match == "any", False),
            mention_role_id=kept("mention_role_id", mention.id if mention else None, None),
            paused_by=paused_by,
            paused_by_at=paused_by_at,
            style=PostStyle(kept("style", style, PostStyle.FULL)),
            thread=kept("thread", thread, False),
            thread_archive=kept("thread_archive", thread_archive, 1440),
            created_by=member.id,
            live=kept("live", live, True),
            digest=digest_kind,
            digest_hour=kept("digest_hour", digest_hour, 0),
            digest_day=kept(
                "digest_day", None if digest_day is None else WEEKDAYS.index(digest_day), 0
            ),
            digest_size=kept("digest_size", digest_size, 5),
            now=now,
        )
        if subscription is None:  # the topic went away meanwhile (a rescan)
            raise UserError(await unknown_topic(self.bot, topic))
        await self.store.clear_notice(target.id)
        qualification, backfilled = await self.deliverer.start_subscription(
            subscription, now, backfill
        )
        where = f"**{embeds.plain(topic_name)}** in {target.mention}"
        if before is None:
            lines = [
                f"✅ {target.mention} now gets **{embeds.plain(topic_name)}** stories "
                f"with heat ≥ {subscription.min_heat}."
            ]
            lines += _filter_lines(subscription)
            lines.append(_look_line(subscription, is_forum(target)))
            if subscription.digest:
                lines.append(
                    f"📰 Instead of a post per story: {_digest(subscription)}; "
                    "nothing is sent when no story became hot."
                )
            if not subscription.active:
                lines.append("⏸ Paused: nothing is posted until you resume it (`paused:False`).")
        elif changes := _changes(before, subscription):
            lines = [f"Updated {where}: " + "; ".join(changes) + "."]
        else:
            lines = [f"Nothing changed for {where}."]
        if before is not None and before.paused_reason:
            lines.append(f"Resumed after: {embeds.plain(before.paused_reason)}.")
        if _link_not_live(subscription) and (style is not None or live is not None):
            lines.append(LINK_NOT_LIVE)
        if untaggable:  # an existing subscription: edited, with the warning
            lines.append(f"⚠️ {untaggable} Those no tag matches are skipped (`/why` says so).")
        if subscription.active:
            lines.append(self._outlook(topic_name, subscription, qualification, backfilled))
            if before is not None and before.paused_by is not None:
                lines.append(
                    "Stories that came while it was paused are marked as seen, not posted; "
                    "new hot stories are."
                )
        if mention is not None and not mention.mentionable:
            lines.append(
                f"Note: {mention.mention} is not mentionable, so Discord will not ping it "
                "unless you make it mentionable."
            )
        await interaction.response.send_message(
            "\n".join(lines), ephemeral=True, allowed_mentions=NO_MENTIONS
        )
        if backfilled and subscription.digest:
            await self.deliverer.deliver_digests(now, target.id)
        elif backfilled:
            await self.deliverer.deliver_channel(target.id, now)

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
        channel: PostChannel | None = None,
    ) -> None:
        target = self._target_channel(interaction, channel)
        if topic.strip().casefold() == ALL:
            subs = await self.store.channel_subscriptions(target.id)
            if not subs:
                raise UserError(f"{target.mention} has no subscriptions.")
            if len(subs) > 1:
                await self._confirm_unsubscribe_all(interaction, target, len(subs))
                return
            topic = subs[0].topic
        removed = await self.store.unsubscribe(target.id, topic)
        if not removed:
            raise UserError(
                f"{target.mention} has no subscription to “{embeds.plain_truncated(topic, 80)}”. "
                "See them with /subscriptions."
            )
        await interaction.response.send_message(
            f"Removed **{embeds.plain(topic)}** from {target.mention}.",
            ephemeral=True,
            allowed_mentions=NO_MENTIONS,
        )

    async def _confirm_unsubscribe_all(
        self, interaction: discord.Interaction, target: PostChannel, count: int
    ) -> None:
        async def remove_all() -> str:
            removed = await self.store.unsubscribe(target.id, None)
            return f"Removed all {removed} subscriptions from {target.mention}."

        view = Confirmation(interaction.user, remove_all, "/unsubscribe")
        await interaction.response.send_message(
            f"Remove all {count} subscriptions of {target.mention}?",
            view=view,
            ephemeral=True,
            allowed_mentions=NO_MENTIONS,
        )
        view.message = await interaction.original_response()

    @app_commands.command(name="subscriptions", description="The server's topic subscriptions")
    @app_commands.describe(channel="Only this channel's subscriptions")
    @staff_only()
    async def subscriptions(
        self, interaction: discord.Interaction, channel: PostChannel | None = None
    ) -> None:
        guild, _ = errors.server_member(interaction)
        note = None
        if channel is not None:
            self._target_channel(interaction, channel)
            subs = await self.store.subscriptions(guild.id, channel.id)
        else:
            every = await self.store.subscriptions(guild.id)
            subs = [s for s in every if self._manages(interaction, s.channel_id)]
            note = "Showing the channels where you can manage subscriptions."
            if hidden := len(every) - len(subs):
                note += f" ({hidden} more in other channels.)"
        if not subs:
            where = channel.mention if channel else "the channels you manage"
            raise UserError(f"There are no subscriptions in {where}. Add one with /subscribe.")

        async def render(offset: int) -> tuple[discord.Embed, int]:
            entries = [
                (
                    f"{sub.topic} · {_state(sub)}",
                    _describe(sub, is_forum(guild.get_channel(sub.channel_id))),
                )
                for sub in subs[offset : offset + SUBSCRIPTIONS_PAGE_SIZE]
            ]
            embed = embeds.subscriptions_embed(
                f"Subscriptions{f' of #{channel.name}' if channel else ''}",
                note,
                entries,
                offset=offset,
                total=len(subs),
                page_size=SUBSCRIPTIONS_PAGE_SIZE,
            )
            return embed, len(subs)

        embed, total = await render(0)
        paginator = Paginator(interaction.user, render, SUBSCRIPTIONS_PAGE_SIZE, total)
        await paginator.send(interaction, embed, ephemeral=True)

    @app_commands.command(name="why", description="Why a story was posted in a channel, or not")
    @app_commands.describe(
        story="The story: type words of its title or its id",
        channel="The channel (default: this channel)",
    )
    @app_commands.autocomplete(story=story_autocomplete)
    @staff_only()
    async def why(
        self,
        interaction: discord.Interaction,
        story: app_commands.Range[str, 1, 200],
        channel: PostChannel | None = None,
    ) -> None:
        target = self._target_channel(interaction, channel)
        found = await resolve_story(self.bot, story)
        subscriptions = await self.store.channel_subscriptions(target.id)
        record, ahead = await self.store.delivery_record(target.id, found.id)
        if record is not None and record.message_id and is_forum(target):
            # A forum post's link is its thread's: the starter message's id is the thread's.
            record = dataclasses.replace(record, channel_id=record.message_id)
        decision = explain(
            found,
            subscriptions,
            record,
            ahead,
            discord.utils.utcnow(),
            Limits.of(self.bot.config),
        )
        title = embeds.plain_truncated(found.title, 200)
        await interaction.response.send_message(
            f"**{title}** in {target.mention}: {decision.sentence(embeds.plain)}",
            ephemeral=True,
            allowed_mentions=NO_MENTIONS,
        )

    # -- helpers ------------------------------------------------------------------------

    def _target_channel(
        self, interaction: discord.Interaction, channel: discord.abc.GuildChannel | None
    ) -> PostChannel:
        """The channel option (same guild only), else the channel the command was run in.

        The caller must be able to manage subscriptions there (Manage Channels in it).
        """
        _, member = errors.server_member(interaction)
        target = errors.channel_in_guild(interaction, channel) or interaction.channel
        if not isinstance(target, PostChannel):
            raise UserError("Subscriptions post in text, announcement or forum channels; pick one.")
        if not can_manage_subscriptions(member, target):
            raise UserError(
                f"You need the Manage Channels permission in {target.mention} "
                "to manage its subscriptions."
            )
        return target

    def _manages(self, interaction: discord.Interaction, channel_id: int) -> bool:
        guild, member = errors.server_member(interaction)
        return can_manage_subscriptions(member, guild.get_channel(channel_id))

    def _outlook(
        self,
        topic: str,
        subscription: Subscription,
        qualification: Qualification,
        backfilled: int,
    ) -> str:
        """What happens now: how many current stories qualify, and if none, why."""
        count = len(qualification.stories)
        if count:
            noun = "story qualifies" if count == 1 else "stories qualify"
            if backfilled and subscription.digest:
                return (
                    f"{count} current {noun}: a first digest of the {backfilled} hottest "
                    "goes out now; from now on, those that become hot go into the next one."
                )
            if backfilled:
                posted = "story" if backfilled == 1 else "stories"
                return (
                    f"{count} current {noun}: posting the {backfilled} hottest {posted} now; "
                    "from now on, each story that becomes hot."
                )
            return (
                f"{count} current {noun}; they are not posted (`backfill:` posts some now). "
                "From now on, each story that becomes hot is."
            )
        if not qualification.total:
            return f"No current story qualifies: {embeds.plain(topic)} has no stories now."
        reasons = [
            (qualification.too_old, f"older than {self.bot.config.max_age_hours} h"),
            (qualification.too_cold, f"below heat {subscription.min_heat}"),
            (qualification.without_keywords, "without the keywords"),
            (qualification.excluded, "excluded by a keyword"),
            (qualification.already_here, "already posted here"),
        ]
        parts = [f"{n} {'is' if n == 1 else 'are'} {why}" for n, why in reasons if n]
        parts[0] = (
            f"{parts[0].split(' ', 1)[0]} of {embeds.plain(topic)}'s {qualification.total} "
            f"{'story' if qualification.total == 1 else 'stories'} " + parts[0].split(" ", 1)[1]
        )
        return "No current story qualifies: " + ", ".join(parts) + "."


def _clearing(clear: str | None) -> set[str]:
    """The fields `clear:` empties (names as in `Subscription`, plus the option names)."""
    if clear is None:
        return set()
    if clear == "all filters":
        return {"keywords", "exclude", "mention", "mention_role_id"}
    if clear == "mention":
        return {"mention", "mention_role_id"}
    return {clear}


def _state(sub: Subscription) -> str:
    return "active" if sub.active else "paused"


def _terms(terms: tuple[str, ...]) -> str:
    return ", ".join(terms) if terms else "(none)"


def _changes(before: Subscription, after: Subscription) -> list[str]:
    """What an edit changed, as "min heat 100 → 150", in the order of the options."""

    def role(role_id):
        return f"<@&{role_id}>" if role_id else "(none)"

    # (what, before, after, how to show a value)
    compared: list[tuple[str, Any, Any, Callable[[Any], str]]] = [
        ("min heat", before.min_heat, after.min_heat, str),
        ("keywords", before.keywords, after.keywords, _terms),
        ("match", before.match_any, after.match_any, lambda a: "any" if a else "all"),
        ("exclude", before.exclude, after.exclude, _terms),
        ("mention", before.mention_role_id, after.mention_role_id, role),
        ("style", before.style, after.style, str),
        ("thread", before.thread, after.thread, lambda t: "yes" if t else "no"),
        ("thread archive", before.thread_archive, after.thread_archive, _archive_name),
        ("live", before.live, after.live, lambda on: "on" if on else "off"),
        ("digest", _digest(before), _digest(after), str),
    ]
    changes = [
        f"{name} {show(old)} → {show(new)}"
        if name == "min heat"
        else f"{name}: {show(old)} → {show(new)}"
        for name, old, new, show in compared
        if old != new
    ]
    changes = [embeds.plain(c) if not c.startswith("mention") else c for c in changes]
    if (before.paused_by is None) != (after.paused_by is None):
        changes.append("paused" if after.paused_by else "resumed")
    return changes


def _filter_lines(sub: Subscription) -> list[str]:
    lines = []
    if sub.keywords:
        need = "any" if sub.match_any else "all"
        lines.append(f"Only with {need} of: " + ", ".join(f"“{k}”" for k in sub.keywords))
    if sub.exclude:
        lines.append("Never with: " + ", ".join(f"“{k}”" for k in sub.exclude))
    return [embeds.plain(line) for line in lines]


def _digest(sub: Subscription) -> str:
    """`daily at 08:00 UTC, top 5`, `weekly on mon at 08:00 UTC, top 3`, or `off`."""
    if not sub.digest:
        return "off"
    day = f" on {WEEKDAYS[sub.digest_day]}" if sub.digest == "weekly" else ""
    return f"{sub.digest}{day} at {sub.digest_hour:02d}:00 UTC, top {sub.digest_size}"


def _archive_name(minutes: int) -> str:
    names = {m: name for name, m in THREAD_ARCHIVE_MINUTES.items()}
    return names.get(minutes, f"{minutes} min")


LINK_NOT_LIVE = (
    "Note: a link post is the bare URL (Discord shows its own preview), so it is not "
    "kept current when the story gets hotter; `live:` applies to `full` and `compact` posts."
)


def _untaggable(target: PostChannel, topic: str) -> str | None:
    """Why a forum that requires a tag on each post cannot take the topic (None: it can):
    Discord refuses an untagged post there, and the bot never makes tags."""
    if not isinstance(target, discord.ForumChannel) or not target.flags.require_tag:
        return None
    moderated = target.permissions_for(target.guild.me).manage_threads
    if topic.casefold() in embeds.usable_tags(target.available_tags, moderated=moderated):
        return None
    return (
        f"{target.mention} requires a tag on each post, and none of the tags I may apply "
        f"there is named **{embeds.plain(topic)}**, so Discord would refuse its stories."
    )


def _link_not_live(sub: Subscription) -> bool:
    """A subscription whose posts would be kept current, but are bare links: nothing to edit."""
    return sub.style is PostStyle.LINK and sub.live and not sub.digest


def _look_line(sub: Subscription, forum: bool) -> str:
    """`Style: compact · a thread on each post, archived after 1 day of quiet`."""
    quiet = f"archived after {_archive_name(sub.thread_archive)} of quiet"
    if forum:
        return f"Style: {sub.style} · a forum post per story, {quiet}"
    if sub.thread:
        return f"Style: {sub.style} · a thread on each post, {quiet}"
    return f"Style: {sub.style}"


def _describe(sub: Subscription, forum: bool = False) -> str:
    lines = [f"<#{sub.channel_id}> · heat ≥ {sub.min_heat}"]
    lines += _filter_lines(sub)
    lines.append(_look_line(sub, forum))
    if sub.digest:
        lines.append(f"📰 Digest: {_digest(sub)}")
    elif _link_not_live(sub):
        lines.append("Bare links: not kept current")
    else:
        lines.append("Posts kept current" if sub.live else "Posts left as posted (live: off)")
    if sub.mention_role_id:
        lines.append(f"Mentions <@&{sub.mention_role_id}>")
    if sub.paused_by is not None:
        since = f" ({discord.utils.format_dt(sub.paused_by_at, 'R')})" if sub.paused_by_at else ""
        lines.append(f"⏸ Paused by <@{sub.paused_by}>{since}")
    if sub.paused_reason:
        lines.append(f"⏸ Paused: {embeds.plain(sub.paused_reason)}")
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
