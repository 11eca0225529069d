"""Pushing hot stories to subscribed channels: exactly once, nothing lost.

One poll: renew this process's leases → rescan the archive → resume channels whose
permissions are back → reconcile sends whose outcome was never recorded → decide
what became due → write its deliveries, a chunk of channels at a time (the fan-out)
→ send it, channel by channel. The clock is read once per poll; what to post and why
not is decided by the pure planner (core/planner.py); this module is the sender: it
turns "post" decisions into messages and records what happened.

A delivery is recorded before its send (pending, then claimed: sending, in the name of
this process, with the time the sending started; one atomic statement for a channel's
due stories of the poll, so of several processes on one database exactly one sends each;
claims the poll does not reach are given back) and marked sent with the message id (and
what the post shows) only once Discord accepted it, if the claim is still this
process's, in one statement; a crash in between
(this process's, or another's whose alive lease expired: its claim is taken over) is
reconciled against every message of the channel since that send started (in a forum:
the posts the bot made since then, active or archived), before anything is sent again.
The rescan, `decide` and `fan_out` are the rescanner's alone (the process holding the
rescan lease); every process sends to the channels of its shards.

A post looks as its subscription's style says (a story card, compact lines several
to a message, or a bare link); in a forum each story is a post of its own; `thread`
subscriptions open a thread on each post (a post found by reconciliation without its
thread gets it then).

Posts stay current: a sent post whose story's heat rose by a step, or got more related
coverage, is edited in place (footer "🔥 154 → 231 · 3 more outlets"); the planner
decides which (`plan_edit`: at most hourly, within a week of posting, unless the
subscription is `live: false`). No new message, no ping. Each post is re-rendered in
the look it went out in (recorded with it): a card's embed, a compact message's lines
(all the stories it holds), a forum post's starter message (until the post archives);
a link post is the bare URL, with nothing of ours to edit.

A forum that requires a tag on each post gets no post for a story none of its tags
matches: the delivery is dropped once, with the reason `/why` gives.

Digest subscriptions collect their stories instead of posting each; once per period
the planner picks the hottest (`digest_due`, `plan_digest`), and the digest is recorded
(pending, or empty: nothing is sent) before it is sent, with the same discipline as a
delivery: sending, then sent with its message id, reconciled from the channel after a
crash by the reference in its footer.

A story whose file is missing from the archive keeps its pending deliveries:
a checkout or a sync can take a file away for one rescan, and the story is
posted when it is back. They wait until the story is older than
`NEWS_MAX_AGE_HOURS` (then they are dropped like any stale story); with no age
limit they wait for as long as the file is missing.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, TypedDict, cast

import discord

from bot import embeds
from bot.group_commit import GroupCommit
from bot.permissions import is_forum, missing_post_permissions
from bot.views import story_view
from core.models import Confirmation, Delivery, Digest, PostStyle, Story, Subscription
from core.planner import (
    DIGEST_PERIODS,
    LIVE_WINDOW,
    Action,
    Decision,
    DeliveryState,
    Limits,
    LivePost,
    Qualification,
    covers,
    digest_due,
    plan_change,
    plan_channel,
    plan_digest,
    plan_edit,
    qualify,
)
from core.sharding import ProcessLeases, Shards
from core.store import NewsStore

if TYPE_CHECKING:
    from discord.types.threads import ThreadArchiveDuration

    from bot.app import NewsBot

log = logging.getLogger(__name__)

# Reconciliation reads the channel from this long before the send started (clock skew).
RECONCILE_MARGIN = timedelta(minutes=2)
CHANNELS_AT_ONCE = 8
# The channels whose subscriptions a poll reads in one query, as their turns come.
SUBSCRIPTIONS_AHEAD = 64
# Deliveries a fan-out writes per transaction: each holds SQLite's write lock ~2 ms.
FANOUT_CHUNK = 1000
MISSING_ACCESS = {50001, 50013}
UNKNOWN_CHANNEL = 10003
THREAD_ALREADY_CREATED = 160004
THREAD_ARCHIVED = 50083
TAG_REQUIRED = 40067  # a post in this forum needs a tag
NO_MATCHING_TAG = "the forum requires a tag and none matches its topics"
NO_PINGS = discord.AllowedMentions.none()


class Deliverer:
    """The delivery engine of one process (the bot's, by default). A second engine with its
    own store connection and process id is another process, as far as the database can
    tell: the tests run two against one database this way."""

    def __init__(
        self,
        bot: NewsBot,
        *,
        store: NewsStore | None = None,
        process: ProcessLeases | None = None,
        shards: Shards | None = None,
    ) -> None:
        self.bot = bot
        self._store = store
        self._process = process
        self._shards = shards
        # Within this process, one task per channel at a time (the claim is the lock
        # between processes).
        self._locks: dict[int, asyncio.Lock] = defaultdict(asyncio.Lock)
        # What this engine is sending right now: (channel id, story id) of deliveries,
        # (subscription id, period end) of digests. Its other claims are left from a
        # send that failed midway: reconciled like a dead process's.
        self._sending: set[tuple[int, object]] = set()
        # While `deliver_all` runs: the channels with a notice on record (read once for
        # the poll, kept up to date by `pause`), so a post clears only a notice there is.
        # None: not known, a post clears the channel's notice whether there is one or not.
        self._noticed: set[int] | None = None
        # The claims and confirmations of the channels sent to at once, written together,
        # one batch at a time: while a batch of one kind is written, both kinds gather.
        turn = asyncio.Lock()
        self._claim = GroupCommit(self._claim_batch, turn)
        self._confirm = GroupCommit(self._confirm_batch, turn)

    @property
    def store(self) -> NewsStore:
        return self._store or self.bot.store

    @property
    def process(self) -> ProcessLeases:
        if self._process is None:  # a bot whose setup_hook made none (a bench, a test)
            self._process = getattr(self.bot, "process", None) or ProcessLeases(
                self.store, self.config.poll_seconds
            )
        return self._process

    @property
    def shards(self) -> Shards:
        return self._shards or getattr(self.bot, "served_shards", None) or Shards.everything()

    @property
    def config(self):
        return self.bot.config

    @property
    def limits(self) -> Limits:
        return Limits.of(self.config)

    async def poll(self, rescan: bool = True) -> None:
        """One round of the poller; one failing step is logged and never stops the others.

        Every process renews its alive lease; the one holding the rescan lease rescans
        and plans (for every channel: `decide` records deliveries the others send).
        """
        now = discord.utils.utcnow()  # the one clock reading of the round
        try:
            await self.process.keep_alive(now)
            rescanner = await self.process.take_rescan(now)
        except Exception:
            log.exception("renewing this process's leases failed; no sends this round")
            return
        steps = [
            self.resume_channels,
            self.reconcile,
            self.deliver_all,
            self.send_digests,
            self.refresh_posts,
        ]
        if rescanner:
            steps[2:2] = [self.decide, self.fan_out]
            if rescan:
                steps.insert(0, self.rescan)
        for step in steps:
            try:
                await step(now)
            except Exception:
                log.exception("poll step %s failed; carrying on with the others", step.__name__)
        try:
            await self.store.checkpoint()  # after the sends: never delays a post
        except Exception:
            log.exception("checkpointing the store's log failed; the next poll tries again")

    async def rescan(self, now: datetime) -> None:
        await self.bot.load_archive()

    async def decide(self, now: datetime) -> int:
        """Record what became due: a fan-out for each story and kind of filters that wants
        it (`fan_out` writes its deliveries, one per channel), a digest item for each
        digest subscription. Returns how many fan-outs were recorded."""
        candidates, latest = await self.store.changed_candidates()
        recorded = 0
        # One short transaction, with the watermark: a few rows per story, however many
        # channels subscribe.
        async with self.store.atomic():
            for story, subscriptions in candidates:
                recorded += await self._record_change(story, subscriptions, now)
            await self.store.advance_watermark(latest)
        return recorded

    async def _record_change(
        self, story: Story, subscriptions: list[Subscription], now: datetime
    ) -> int:
        recorded = 0
        for sub, decision in plan_change(story, subscriptions, now, self.limits):
            if decision.action is Action.SKIP:
                log.debug("story %s, subscription %s: %s", story.id, sub.id, decision.reason)
                continue
            if sub.digest:
                # Collected for its digest (also while its channel waits for a
                # permission: the digest goes out once it is back).
                await self.store.collect_like(story.id, sub.id, now)
                continue
            # Waiting (a channel paused for a permission) is recorded too: it is
            # posted once the permission is back.
            recorded += await self.store.record_fanout(story.id, sub.id, now)
        return recorded

    async def fan_out(self, now: datetime) -> int:
        """Write the pending deliveries of every recorded fan-out, `FANOUT_CHUNK` channels
        per transaction (other writers, a slash command's, get in between). A fan-out
        left half done by a restart is carried on from its cursor. Returns how many
        deliveries were written."""
        recorded = 0
        while (written := await self.store.fan_out(FANOUT_CHUNK)) is not None:
            recorded += written
        if recorded:
            log.info("%d new deliveries due", recorded)
        return recorded

    async def start_subscription(
        self, subscription: Subscription, now: datetime, backfill: int = 0
    ) -> tuple[Qualification, int]:
        """No flood: what already qualifies is marked seen, except the `backfill` hottest.

        Also run when a paused subscription resumes. Returns what qualified (and why the
        rest did not) and how many stories are now due.
        """
        qualification = qualify(
            await self.store.topic_stories(subscription.topic),
            subscription,
            now,
            self.limits,
            await self.store.channel_story_ids(subscription.channel_id, subscription.topic),
        )
        if not subscription.active:
            backfill = 0  # a paused subscription posts nothing
        if subscription.digest:
            # What already qualifies is not news for its digests, except the `backfill`
            # hottest: they make a first digest, now.
            first = qualification.stories[:backfill]
            rest = [s.id for s in qualification.stories[backfill:]]
            async with self.store.atomic():  # all of it or, on any failure, none of it
                await self.store.mark_collected_seen(subscription.id, rest, now)
                if first:
                    for story in first:
                        await self.store.collect_like(story.id, subscription.id, now)
                    length = DIGEST_PERIODS[subscription.digest]
                    ids = [s.id for s in first]
                    await self.store.record_digest(subscription, now - length, now, ids, now)
            return qualification, len(first)
        rows = [
            (
                subscription.guild_id,
                subscription.channel_id,
                s.id,
                DeliveryState.PENDING if i < backfill else DeliveryState.SEEN,
            )
            for i, s in enumerate(qualification.stories)
        ]
        await self.store.record_deliveries(rows, now)
        return qualification, min(backfill, len(qualification.stories))

    async def deliver_all(self, now: datetime) -> None:
        by_channel: dict[int, list[Delivery]] = defaultdict(list)
        for delivery in await self.store.due_deliveries(shards=self.shards):
            by_channel[delivery.channel_id].append(delivery)
        paused = {channel for _, channel, _ in await self.store.paused_channels()}
        order = [channel_id for channel_id in by_channel if channel_id not in paused]
        subscriptions = SubscriptionsAhead(self.store, order)
        self._noticed = await self.store.noticed_channels()
        # Channels are independent: a slow or failing one never holds up the others.
        # A few at a time, so a burst across many channels stays within Discord's limits.
        slots = asyncio.Semaphore(CHANNELS_AT_ONCE)

        async def deliver(channel_id: int) -> None:
            async with slots:
                subs = await subscriptions.of(channel_id)
                await self.deliver_channel(channel_id, now, by_channel[channel_id], subs)

        try:
            await asyncio.gather(*(deliver(channel_id) for channel_id in order))
        finally:
            self._noticed = None

    async def deliver_channel(
        self,
        channel_id: int,
        now: datetime,
        items: list[Delivery] | None = None,
        subscriptions: list[Subscription] | None = None,
    ) -> int:
        """Post up to `posts_per_poll` due stories to one channel, oldest first (`items`,
        `subscriptions`: its due deliveries and subscriptions, if read already)."""
        async with self._locks[channel_id]:
            try:
                return await self._deliver_channel(channel_id, now, items, subscriptions)
            except Exception:
                log.exception("delivering to channel %s failed", channel_id)
                return 0

    async def _deliver_channel(
        self,
        channel_id: int,
        now: datetime,
        items: list[Delivery] | None,
        subscriptions: list[Subscription] | None,
    ) -> int:
        # Read here, the channel's queue is read from its head, a page at a time, until a
        # poll's worth of stories is due (stories further back are judged when they near
        # the head: one that went stale meanwhile is dropped then).
        page = self.limits.posts_per_poll
        more = items is None
        if items is None:
            items = await self._due_page(channel_id, page, 0)
            more = len(items) == page
        if not items:
            return 0
        channel = await self._channel(channel_id)
        if channel is None:
            return 0
        # Paused ones too: the planner says why (a staff pause drops, a bot pause waits).
        if subscriptions is None:
            subscriptions = await self.store.channel_subscriptions(channel_id, last=False)
        if missing := self._missing(channel, subscriptions):
            await self.pause(channel, f"missing permission: {', '.join(missing)}", now)
            return 0
        while True:
            pending = [(d.story, d.removed) for d in items]
            decisions = plan_channel(pending, subscriptions, now, self.limits)
            if not more or sum(d.action is Action.POST for d in decisions) >= page:
                break
            further = await self._due_page(channel_id, page, len(items))
            items += further
            more = len(further) == page
        due, waiting = [], 0
        for decision in decisions:
            story = decision.story
            if decision.action in (Action.SKIP, Action.COLLECT):
                await self._drop(channel_id, story, decision, now)
            elif decision.action is Action.WAIT:
                waiting += 1
                log.debug("story %s waits in %s: %s", story.id, channel_id, decision.sentence())
            else:
                due.append(decision)
        if waiting:
            log.info("channel %s: %d stories wait for a later poll", channel_id, waiting)
        if is_forum(channel) and channel.flags.require_tag:
            # Discord refuses an untagged post there: drop it once, with the reason /why gives.
            taggable = []
            for decision in due:
                if self._forum_tags(channel, decision.story):
                    taggable.append(decision)
                else:
                    await self._drop_story(channel_id, decision.story, NO_MATCHING_TAG, now)
            due = taggable
        if not due:
            return 0
        pinned = {d.story.id for d in items if d.pinned}
        sent = await self._send_due(channel, due, pinned, now)
        if sent and (self._noticed is None or channel_id in self._noticed):
            await self.store.clear_notice(channel_id)
            if self._noticed is not None:
                self._noticed.discard(channel_id)
        return sent

    async def _due_page(self, channel_id: int, limit: int, offset: int) -> list[Delivery]:
        return await self.store.due_deliveries(
            channel_id=channel_id, shards=self.shards, limit=limit, offset=offset
        )

    async def _send_due(self, channel, due: list[Decision], pinned: set[str], now: datetime) -> int:
        """Claim the due stories at once, then post them in order; claims the posting did
        not reach (the channel failed) are given back."""
        me = self.process.id
        await self.process.keep_alive_if_due(discord.utils.utcnow())
        # The claim is the lock between processes: only the stories this process claimed
        # go out (another process may have claimed, or sent, the others meanwhile).
        claimed = await self._claim([(channel.id, d.story.id, now) for d in due])
        due = [d for d in due if d.story.id in claimed]
        sending = {(channel.id, story_id) for story_id in claimed}
        self._sending |= sending
        unsent = set(claimed)  # claimed, and no send of it started yet
        sent = 0
        try:
            while due:
                look = Look.of(due[0].subscriptions)
                if look.style is PostStyle.COMPACT and not is_forum(channel):
                    # Compact stories going out together share a message, as many as fit.
                    run = []
                    for decision in due:
                        if Look.of(decision.subscriptions).style is not PostStyle.COMPACT:
                            break
                        run.append(decision)
                    stories = [d.story for d in run]
                    _, count = embeds.compact_message(stories, _mentions(run)[0] or "")
                    batch = run[:count]
                else:
                    batch = due[:1]
                await self.process.keep_alive_if_due(discord.utils.utcnow())
                unsent -= {d.story.id for d in batch}
                if not await self._send_claimed(channel, batch, pinned, now):
                    break  # the channel failed: the rest waits for the next poll
                sent += len(batch)
                due = due[len(batch) :]
        finally:
            if unsent:
                await self.store.release_claims(channel.id, list(unsent), me)
            self._sending -= sending
        return sent

    async def _claim_batch(self, requests: list[list[tuple[int, str, datetime]]]) -> list[set[str]]:
        """Claims of (channel, story, send start) of several callers: one statement; each
        gets the story ids it claimed (a delivery asked for twice goes to the first only:
        the channel's lock keeps that from happening, and it must never send twice)."""
        claims = [claim for request in requests for claim in request]
        claimed = await self.store.claim_delivery_batch(claims, self.process.id)
        got = []
        for request in requests:
            mine = {(channel, story) for channel, story, _ in request} & claimed
            claimed -= mine
            got.append({story for _, story in mine})
        return got

    async def _confirm_batch(self, requests: list[list[Confirmation]]) -> list[set[str]]:
        """Confirmations of several callers: one statement; each gets the story ids whose
        confirmation held (the claim was still this process's)."""
        sent = [confirmation for request in requests for confirmation in request]
        confirmed = await self.store.confirm_delivery_batch(sent, self.process.id)
        return [
            {c.story_id for c in request if (c.channel_id, c.story_id) in confirmed}
            for request in requests
        ]

    def _missing(self, channel, subscriptions: list[Subscription]) -> list[str]:
        """The permissions the bot lacks for what the channel's subscriptions ask for."""
        threads = any(s.thread for s in subscriptions)
        return missing_post_permissions(channel, threads=threads)

    async def _send_claimed(
        self, channel, decisions: list[Decision], pinned: set[str], now: datetime
    ) -> bool:
        """Post what this process claimed, then confirm it (or give it back on a refusal)."""
        me = self.process.id
        stories = [d.story for d in decisions]
        look = Look.of([s for d in decisions for s in d.subscriptions])
        content, allowed = _mentions(decisions)
        try:
            message = await self._post(channel, stories, look, content, allowed, pinned)
        except discord.HTTPException as exc:
            if exc.code == TAG_REQUIRED:  # the forum began requiring tags since it was cached
                for story in stories:
                    await self._drop_story(channel.id, story, NO_MATCHING_TAG, now)
                return True
            for story in stories:
                await self.store.mark_delivery(
                    channel.id,
                    story.id,
                    DeliveryState.PENDING,
                    now,
                    error=_describe(exc),
                    holder=me,
                )
            await self.handle_failure(channel, exc, now)
            return False
        confirmed = await self._confirm(
            [Confirmation(channel.id, s.id, message.id, s.heat, look.style, now) for s in stories]
        )
        for story in stories:
            if story.id not in confirmed:
                log.warning(
                    "process %s lost its claim on story %s in channel %s while sending it"
                    " (it stalled past its lease): another process may post it too",
                    me,
                    story.id,
                    channel.id,
                )
                continue
            log.info("posted story %s to channel %s", story.id, channel.id)
        # Not in a forum, `message` is a message (in a forum: the post's thread).
        if isinstance(message, discord.Message) and channel.is_news():
            try:
                await message.publish()
            except discord.HTTPException as exc:
                log.warning("could not publish stories in %s: %s", channel.id, _describe(exc))
        if look.thread and isinstance(message, discord.Message):
            await self._open_thread(channel, message, stories, look, now)
        return True

    async def _post(
        self,
        channel,
        stories: list[Story],
        look: Look,
        mentions: str | None,
        allowed,
        pinned: set[str],
    ) -> discord.Message | discord.Thread:
        """Send the stories in the subscription's style; a forum gets one post per story."""
        story = stories[0]
        body: _Body
        if look.style is PostStyle.COMPACT:
            body = {"content": embeds.compact_message(stories, mentions or "")[0]}
        elif look.style is PostStyle.LINK:
            body = {"content": embeds.link_content(story, mentions or "")}
        else:
            body = {
                "content": mentions,
                "embed": _card(story, self.config.hot_heat, story.id in pinned),
                "view": story_view(story),
            }
        if not is_forum(channel):
            nonce = _nonce("post", channel.id, *(s.id for s in stories))
            return await channel.send(**body, allowed_mentions=allowed, nonce=nonce)
        post = await channel.create_thread(
            name=embeds.thread_name(story),
            applied_tags=self._forum_tags(channel, story),
            auto_archive_duration=look.thread_archive,
            allowed_mentions=allowed,
            **body,
        )
        # Recorded by the post's id: the thread's, which is its starter message's on Discord.
        return post.thread

    def _forum_tags(self, forum: discord.ForumChannel, story: Story) -> list[discord.ForumTag]:
        """The forum's tags for the story's topics (moderated ones with Manage Threads)."""
        moderated = forum.permissions_for(forum.guild.me).manage_threads
        return embeds.forum_tags(forum.available_tags, story, moderated=moderated)

    async def _open_thread(
        self, channel, message: discord.Message, stories: list[Story], look: Look, now: datetime
    ) -> None:
        """A discussion thread on a post; the post stands even when the thread fails."""
        try:
            await message.create_thread(
                name=embeds.thread_name(stories[0], more=len(stories) - 1),
                auto_archive_duration=look.thread_archive,
            )
        except discord.HTTPException as exc:
            if exc.code == THREAD_ALREADY_CREATED:
                return
            log.warning(
                "could not open a thread on %s in %s: %s", message.id, channel.id, _describe(exc)
            )
            if isinstance(exc, discord.Forbidden) or exc.code in MISSING_ACCESS:
                await self.handle_failure(channel, exc, now)

    async def handle_failure(self, channel, exc: discord.HTTPException, now: datetime) -> None:
        if isinstance(exc, discord.Forbidden) or exc.code in MISSING_ACCESS:
            missing = self._missing(channel, await self.store.channel_subscriptions(channel.id))
            reason = (
                f"missing permission: {', '.join(missing)}"
                if missing
                else "Discord refused the post (missing access)"
            )
            await self.pause(channel, reason, now)
        elif isinstance(exc, discord.NotFound) and exc.code == UNKNOWN_CHANNEL:
            removed = await self.store.delete_channel(channel.id)
            log.warning("channel %s is gone: removed its %d subscriptions", channel.id, removed)
        else:  # 429, 5xx and the like: retried at the next poll
            log.warning("posting to channel %s failed, will retry: %s", channel.id, _describe(exc))

    async def pause(self, channel, reason: str, now: datetime) -> None:
        await self.store.pause_channel(channel.id, reason, now)
        log.warning("paused subscriptions of channel %s: %s", channel.id, reason)
        if not await self.store.claim_notice(channel.id, reason, now):
            return
        if self._noticed is not None:
            self._noticed.add(channel.id)
        notice = (
            f"I can't post news in {channel.mention}: {reason}. Its subscriptions are paused "
            "and resume by themselves once the permission is back (or when staff run "
            "/subscribe again)."
        )
        targets = [channel, channel.guild.system_channel]
        for target in targets:
            if not isinstance(target, discord.abc.Messageable):
                continue  # none, or a forum: only posts go there
            try:
                await target.send(notice, allowed_mentions=discord.AllowedMentions.none())
                return
            except discord.HTTPException:
                continue
        log.warning(
            "could not tell guild %s that channel %s is paused", channel.guild.id, channel.id
        )

    async def resume_channels(self, now: datetime) -> None:
        for guild_id, channel_id, reason in await self.store.paused_channels():
            if not self.shards.serves(guild_id):
                continue
            channel = self.bot.get_channel(channel_id)
            subscriptions = await self.store.channel_subscriptions(channel_id)
            if channel is not None and not self._missing(channel, subscriptions):
                await self.store.resume_channel(channel_id)
                log.info("resumed channel %s (was: %s)", channel_id, reason)

    async def reconcile(self, now: datetime) -> None:
        """Sends whose outcome was never recorded (a crash): find the post, or retry it.

        Those of a process whose alive lease expired (this one's before a restart, or
        another's that died), taken over first: then this process is their only owner;
        and this process's own that are not in flight (a send that failed midway).
        """
        me = self.process.id
        taken = await self.store.take_over_deliveries(me, now, self.shards) - self._sending
        if not taken:
            return
        log.info("reconciling %d sends a stopped process left unconfirmed", len(taken))
        for delivery in await self.store.due_deliveries(
            (DeliveryState.SENDING,), shards=self.shards, claimed_by=me
        ):
            if (delivery.channel_id, delivery.story.id) not in taken:
                continue  # this process's own send, in flight
            async with self._locks[delivery.channel_id]:
                await self._reconcile_one(delivery, now)

    async def _reconcile_one(self, delivery: Delivery, now: datetime) -> None:
        story = delivery.story
        channel = await self._channel(delivery.channel_id)
        if channel is None:
            return
        # Every post since the send started, however busy the channel was since.
        started = (delivery.started_at or now - timedelta(days=1)) - RECONCILE_MARGIN
        try:
            async for message, post_id in self._posts_since(channel, started):
                if message.author.id == self.bot.user_id and embeds.carries(message, story):
                    await self.store.mark_delivery(
                        channel.id,
                        story.id,
                        DeliveryState.SENT,
                        now,
                        message_id=post_id,
                        holder=self.process.id,
                    )
                    await self.store.record_posted(
                        channel.id, story.id, story.heat, embeds.post_style(message)
                    )
                    log.info("story %s was already posted in %s", story.id, channel.id)
                    await self._reconcile_thread(channel, message, story, now)
                    return
        except discord.HTTPException as exc:
            log.warning("cannot read channel %s to reconcile: %s", channel.id, _describe(exc))
            return  # try again at the next poll rather than risk a double post
        # Not posted: pending again, claimed anew (by whichever process) before it is sent.
        await self.store.mark_delivery(
            channel.id, story.id, DeliveryState.PENDING, now, holder=self.process.id
        )

    async def _posts_since(self, channel, started: datetime):
        """(message, the id to record) of the channel's messages since `started`, newest
        first; of a forum: the starter message of each post (active, or archived since)
        the bot made since then, with the post's id."""
        if not is_forum(channel):
            # Paged back until the page that reaches the start (`after` without oldest_first).
            async for message in channel.history(limit=None, after=started, oldest_first=False):
                yield message, message.id
            return
        threads = [t for t in await channel.guild.active_threads() if t.parent_id == channel.id]
        async for thread in channel.archived_threads(limit=None):
            if thread.archive_timestamp < started:
                break  # archived before the send started: created before it too
            threads.append(thread)
        for thread in sorted(threads, key=lambda t: t.id, reverse=True):
            if thread.owner_id != self.bot.user_id:
                continue
            if discord.utils.snowflake_time(thread.id) < started:
                break
            async for starter in thread.history(limit=1, oldest_first=True):
                yield starter, thread.id

    async def _reconcile_thread(self, channel, message, story: Story, now: datetime) -> None:
        """A post found after a crash gets its discussion thread now if it has none (the
        crash may have come before it was opened); Discord refuses a second one."""
        if is_forum(channel) or message.thread is not None:
            return
        subscriptions = [s for s in await self.store.channel_subscriptions(channel.id)]
        look = Look.of([s for s in subscriptions if covers(s, story)])
        if look.thread:
            await self._open_thread(channel, message, [story], look, now)

    # -- posts that stay current -----------------------------------------------------

    async def refresh_posts(self, now: datetime) -> int:
        """Edit the sent posts whose story changed meaningfully (the planner says which)."""
        edited = 0
        done: set[tuple[int, int]] = set()
        for post in await self.store.live_posts(now - LIVE_WINDOW, self.shards):
            edit = plan_edit(post, now)
            if not edit.due:
                log.debug(
                    "post %s of story %s not edited: %s",
                    post.message_id,
                    post.story.id,
                    edit.reason.value,
                )
                continue
            # A compact message with several changed stories is edited once for all.
            if (post.channel_id, post.message_id) in done:
                continue
            done.add((post.channel_id, post.message_id))
            async with self._locks[post.channel_id]:
                edited += await self._edit_post(post, now)
        return edited

    async def _edit_post(self, post: LivePost, now: datetime) -> bool:
        """Re-render one post in its look with what changed; a compact message re-renders
        every story it carries. Link posts are never here (nothing of ours to edit)."""
        story = post.story
        channel = self.bot.get_channel(post.channel_id)
        if channel is None:
            return False  # gone or not cached: posting finds out and cleans up
        shown = [post]
        if post.style is PostStyle.COMPACT and not is_forum(channel):
            shown = await self.store.message_posts(channel.id, post.message_id) or [post]
        try:
            message = await self._live_message(channel, post)
            if isinstance(message, str):
                await self._stop_live(channel.id, shown, now, message)
                return False
            update = await self._live_update(channel, message, shown)
            if update is None:
                await self._stop_live(channel.id, shown, now, "its lines no longer fit")
                return False
            # Buttons stay as they are; an edit never pings.
            await message.edit(**update, allowed_mentions=NO_PINGS)
        except discord.NotFound as exc:
            if exc.code == UNKNOWN_CHANNEL and not is_forum(channel):
                return False  # the channel is gone: posting finds out and cleans up
            await self._stop_live(channel.id, shown, now, "it is gone")
            return False
        except discord.Forbidden as exc:
            # Only the edit is refused: posting carries on; tried again after the hour.
            for item in shown:
                await self.store.record_edit(channel.id, item.story.id, now)
            log.warning(
                "cannot edit post %s in %s: %s", post.message_id, channel.id, _describe(exc)
            )
            return False
        except discord.HTTPException as exc:
            if exc.code == THREAD_ARCHIVED:
                await self._stop_live(channel.id, shown, now, "its forum post is archived")
                return False
            log.warning("editing post %s failed, will retry: %s", post.message_id, _describe(exc))
            return False
        for item in shown:
            await self.store.record_edit(
                channel.id, item.story.id, now, heat=item.story.heat, coverage=item.coverage
            )
        log.info("kept post %s of story %s current", post.message_id, story.id)
        return True

    async def _live_message(
        self, channel, post: LivePost
    ) -> discord.Message | discord.PartialMessage | str:
        """The message to edit, or why it cannot be: in a forum, the post's starter
        message (Discord refuses edits in an archived post); a compact message as it is
        (its role mentions stay); a card by id alone."""
        if is_forum(channel):
            thread = channel.guild.get_thread(post.message_id)
            if thread is None:
                thread = await self.bot.fetch_channel(post.message_id)
            if thread.archived:
                return "its forum post is archived"
            async for starter in thread.history(limit=1, oldest_first=True):
                return starter
            return "its starter message is gone"
        if post.style is PostStyle.COMPACT:
            return await channel.fetch_message(post.message_id)
        return channel.get_partial_message(post.message_id)

    async def _live_update(self, channel, message, shown: list[LivePost]) -> dict | None:
        """The edit that shows how the stories changed since they went out (None: a compact
        message that would no longer hold all its lines)."""
        if shown[0].style is PostStyle.COMPACT:
            first = (message.content or "").split("\n", 1)[0]
            mentions = first if first.startswith("<@&") else ""
            stories = [item.story for item in shown]
            changes = {
                item.story.id: (item.posted_heat, item.coverage - item.posted_coverage)
                for item in shown
                if item.posted_heat is not None  # shown as it is where nothing was recorded
            }
            content, count = embeds.compact_message(stories, mentions, changes)
            if count < len(stories):  # without the arrows, as long as when it went out
                content, count = embeds.compact_message(stories, mentions)
            return {"content": content} if count == len(stories) else None
        post = shown[0]
        pinned = await self.store.is_story_pinned(channel.guild.id, post.story.id)
        embed = embeds.story_embed(
            post.story,
            self.config.hot_heat,
            pinned=pinned,
            since_heat=post.posted_heat,
            more_outlets=post.coverage - post.posted_coverage,
        )
        return {"embed": embed}

    async def _stop_live(
        self, channel_id: int, shown: list[LivePost], now: datetime, why: str
    ) -> None:
        for item in shown:
            await self.store.record_edit(channel_id, item.story.id, now, stopped=True)
        log.info(
            "post %s of story %s is no longer kept current: %s",
            shown[0].message_id,
            shown[0].story.id,
            why,
        )

    # -- digests -------------------------------------------------------------------------

    async def send_digests(self, now: datetime) -> int:
        """Record each digest that came due, then send the recorded ones (of this process's
        shards; two processes recording the same period record it once)."""
        me = self.process.id
        taken = await self.store.take_over_digests(me, now, self.shards) - self._sending
        if taken:
            for digest in await self.store.digests("sending", self.shards):
                if (digest.subscription_id, digest.end) in taken:
                    async with self._locks[digest.channel_id]:
                        await self._reconcile_digest(digest, now)
        for subscription, last_end in await self.store.digest_subscriptions():
            if not subscription.active or not self.shards.serves(subscription.guild_id):
                continue  # when it resumes, its next digest covers the time it was paused
            period = digest_due(subscription, last_end, now)
            if period is None:
                continue
            start, end = period
            collected = await self.store.collected_stories(subscription.id, start, end)
            stories = plan_digest(collected, start, end, subscription.digest_size)
            await self.store.record_digest(subscription, start, end, [s.id for s in stories], now)
            if not stories:
                log.info("digest of subscription %s: nothing became hot", subscription.id)
        return await self.deliver_digests(now)

    async def deliver_digests(self, now: datetime, channel_id: int | None = None) -> int:
        """Send the recorded digests that wait (of one channel, or all)."""
        paused = {channel for _, channel, _ in await self.store.paused_channels()}
        sent = 0
        for digest in await self.store.digests("pending", self.shards):
            if digest.channel_id in paused or channel_id not in (None, digest.channel_id):
                continue
            async with self._locks[digest.channel_id]:
                sent += await self._send_digest(digest, now)
        return sent

    async def _send_digest(self, digest: Digest, now: datetime) -> bool:
        channel = await self._channel(digest.channel_id)
        if channel is None:
            return False
        if missing := missing_post_permissions(channel):
            await self.pause(channel, f"missing permission: {', '.join(missing)}", now)
            return False
        sub, end = digest.subscription_id, digest.end
        me = self.process.id
        if not await self.store.claim_digest(sub, end, me, now):
            return False  # another process claimed it first
        self._sending.add((sub, end))
        try:
            return await self._send_claimed_digest(channel, digest, now)
        finally:
            self._sending.discard((sub, end))

    async def _send_claimed_digest(self, channel, digest: Digest, now: datetime) -> bool:
        """Send a digest this process claimed, then confirm it (or give it back)."""
        role = digest.mention_role_id
        sub, end = digest.subscription_id, digest.end
        me = self.process.id
        try:
            message = await channel.send(
                content=f"<@&{role}>" if role else None,
                embed=embeds.digest_embed(digest, self.config.hot_heat),
                allowed_mentions=discord.AllowedMentions(
                    everyone=False, users=False, roles=[discord.Object(role)] if role else False
                ),
                nonce=_nonce("digest", channel.id, sub, int(end.timestamp())),
            )
        except discord.HTTPException as exc:
            await self.store.mark_digest(sub, end, "pending", now, error=_describe(exc), holder=me)
            await self.handle_failure(channel, exc, now)
            return False
        if not await self.store.mark_digest(
            sub, end, "sent", now, message_id=message.id, holder=me
        ):
            log.warning(
                "process %s lost its claim on the digest %s:%s while sending it (it stalled"
                " past its lease): another process may send it too",
                me,
                sub,
                int(end.timestamp()),
            )
        await self.store.clear_notice(channel.id)
        log.info("sent the digest of subscription %s to channel %s", sub, channel.id)
        return True

    async def _reconcile_digest(self, digest: Digest, now: datetime) -> None:
        """A digest send whose outcome was never recorded: find the message, or send again."""
        channel = await self._channel(digest.channel_id)
        if channel is None:
            return
        ref = (digest.subscription_id, int(digest.end.timestamp()))
        started = (digest.started_at or now - timedelta(days=1)) - RECONCILE_MARGIN
        try:
            async for message in channel.history(limit=None, after=started, oldest_first=False):
                if message.author.id == self.bot.user_id and any(
                    embeds.digest_ref(embed) == ref for embed in message.embeds
                ):
                    await self.store.mark_digest(
                        digest.subscription_id,
                        digest.end,
                        "sent",
                        now,
                        message_id=message.id,
                        holder=self.process.id,
                    )
                    log.info("digest %s:%s was already sent", *ref)
                    return
        except discord.HTTPException as exc:
            log.warning("cannot read channel %s to reconcile: %s", channel.id, _describe(exc))
            return
        await self.store.mark_digest(
            digest.subscription_id, digest.end, "pending", now, holder=self.process.id
        )

    async def _channel(self, channel_id: int):
        channel = self.bot.get_channel(channel_id)
        if channel is not None:
            return channel
        try:
            return await self.bot.fetch_channel(channel_id)
        except discord.NotFound:
            removed = await self.store.delete_channel(channel_id)
            log.warning(
                "channel %s no longer exists: removed %d subscriptions", channel_id, removed
            )
        except discord.HTTPException as exc:
            log.warning("cannot reach channel %s: %s", channel_id, _describe(exc))
        return None

    async def _drop(self, channel_id: int, story: Story, decision: Decision, now: datetime) -> None:
        reason = decision.sentence().removeprefix("Not posted: ")
        await self._drop_story(channel_id, story, reason, now)

    async def _drop_story(self, channel_id: int, story: Story, reason: str, now: datetime) -> None:
        """Never post `story` here; `reason` is what /why says."""
        await self.store.mark_delivery(
            channel_id, story.id, DeliveryState.DROPPED, now, error=reason, holder=self.process.id
        )
        log.info("not posting story %s to channel %s: %s", story.id, channel_id, reason)


class _Body(TypedDict, total=False):
    """What a post carries, whatever its style."""

    content: str | None
    embed: discord.Embed
    view: discord.ui.View


@dataclass(frozen=True, slots=True)
class Look:
    """How a post looks, from the subscriptions it goes out for: the richest style any of
    them asks for; a thread if any asks for one, archiving after the longest quiet."""

    style: PostStyle = PostStyle.FULL
    thread: bool = False
    thread_archive: ThreadArchiveDuration = 1440

    @classmethod
    def of(cls, subscriptions) -> Look:
        if not subscriptions:
            return cls()
        order = list(PostStyle)  # full, compact, link: richest first
        return cls(
            style=min((s.style for s in subscriptions), key=order.index),
            thread=any(s.thread for s in subscriptions),
            # One of THREAD_ARCHIVE_MINUTES: the only values /subscribe offers.
            thread_archive=cast(
                "ThreadArchiveDuration", max(s.thread_archive for s in subscriptions)
            ),
        )


@functools.lru_cache(maxsize=256)
def _card(story: Story, hot_heat: int, pinned: bool) -> discord.Embed:
    """A story's card, built once for all the channels it goes to (a hot story goes to
    thousands in one poll); sending only reads it."""
    return embeds.story_embed(story, hot_heat, pinned=pinned)


class SubscriptionsAhead:
    """The subscriptions of a poll's channels (in their order), read `SUBSCRIPTIONS_AHEAD`
    channels at a time when the first of them comes to its turn: one query for many
    channels, and a staff pause or a new style set during a long poll still holds for
    every channel read after it (not only from the next poll on)."""

    def __init__(self, store: NewsStore, order: list[int]) -> None:
        self._store = store
        self._order = order
        self._position = {channel_id: i for i, channel_id in enumerate(order)}
        self._read: dict[int, list[Subscription]] = {}
        self._reading = asyncio.Lock()

    async def of(self, channel_id: int) -> list[Subscription]:
        async with self._reading:
            if channel_id not in self._read:
                start = self._position[channel_id]
                ahead = self._order[start : start + SUBSCRIPTIONS_AHEAD]
                found = await self._store.subscriptions_of_channels(ahead)
                self._read.update((c, found.get(c, [])) for c in ahead)
            return self._read.pop(channel_id)


def _nonce(*parts: object) -> str:
    """The same for every attempt at one message. discord.py asks Discord to enforce a
    nonce, and Discord, asked again within a few minutes, returns the message it made
    instead of making another: a send Discord carried out but answered with an error (a
    5xx, a timeout) is not posted twice by the next poll's retry. 24 characters (≤ 25)."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=15).digest()
    return base64.b32encode(digest).decode()


def _mentions(decisions: list[Decision]) -> tuple[str | None, discord.AllowedMentions]:
    """The role pings of the subscriptions the stories go out for, and exactly those allowed."""
    roles = list(
        dict.fromkeys(
            s.mention_role_id for d in decisions for s in d.subscriptions if s.mention_role_id
        )
    )
    content = " ".join(f"<@&{role}>" for role in roles) or None
    allowed = discord.AllowedMentions(
        everyone=False, users=False, roles=[discord.Object(r) for r in roles]
    )
    return content, allowed


def _describe(exc: discord.HTTPException) -> str:
    return f"{exc.status} (code {exc.code}): {exc.text or type(exc).__name__}"
