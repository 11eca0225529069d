"""Subscriptions and deliveries: who wants which stories, and what was posted where."""

from __future__ import annotations

from datetime import datetime

import aiosqlite

from core.models import Delivery, DeliveryState, Digest, PostStyle, Story, Subscription
from core.planner import LivePost, Record
from core.store.stories import (
    STORY_COLUMNS,
    STORY_FROM,
    VISIBLE,
    from_epoch,
    story_from_row,
    to_epoch,
)

WATERMARK_KEY = "delivery_watermark"
SUBSCRIPTION_COLUMNS = """
    sub.id, sub.guild_id, sub.channel_id, t.name, sub.min_heat, sub.keywords, sub.exclude,
    sub.mention_role_id, sub.paused_reason, sub.created_at, sub.match_any, sub.paused_by,
    sub.paused_by_at, sub.style, sub.thread, sub.thread_archive, sub.live, sub.digest,
    sub.digest_hour, sub.digest_day, sub.digest_size
"""
SUBSCRIPTION_WIDTH = len(SUBSCRIPTION_COLUMNS.split(","))


def subscription_from_row(row, last_story=None, last_posted_at=None) -> Subscription:
    return Subscription(
        id=row[0],
        guild_id=row[1],
        channel_id=row[2],
        topic=row[3],
        min_heat=row[4],
        keywords=tuple(k for k in row[5].split("\n") if k),
        exclude=tuple(k for k in row[6].split("\n") if k),
        mention_role_id=row[7],
        paused_reason=row[8],
        created_at=from_epoch(row[9]),
        last_story=last_story,
        last_posted_at=from_epoch(last_posted_at),
        match_any=bool(row[10]),
        paused_by=row[11],
        paused_by_at=from_epoch(row[12]),
        style=PostStyle(row[13]),
        thread=bool(row[14]),
        thread_archive=row[15],
        live=bool(row[16]),
        digest=row[17],
        digest_hour=row[18],
        digest_day=row[19],
        digest_size=row[20],
    )


class SubscriptionQueries:
    """Mixed into `Store`; `self.db` is its aiosqlite connection."""

    db: aiosqlite.Connection

    # -- subscriptions -------------------------------------------------------------

    async def subscribe(
        self,
        *,
        guild_id: int,
        channel_id: int,
        topic: str,
        min_heat: int,
        keywords: tuple[str, ...] = (),
        exclude: tuple[str, ...] = (),
        mention_role_id: int | None = None,
        match_any: bool = False,
        paused_by: int | None = None,
        paused_by_at: datetime | None = None,
        style: PostStyle = PostStyle.FULL,
        thread: bool = False,
        thread_archive: int = 1440,
        created_by: int | None = None,
        live: bool = True,
        digest: str | None = None,
        digest_hour: int = 0,
        digest_day: int = 0,
        digest_size: int = 5,
        now: datetime,
    ) -> Subscription | None:
        """Create or replace the channel's subscription to `topic`, with exactly these values.

        Lifts the bot's own pause (a missing permission: staff say it is fixed); a pause
        by staff is `paused_by`. Returns None when the topic does not exist.
        """
        rows = await self.db.execute_fetchall(
            "SELECT id FROM topics WHERE key = ?", (topic.strip().casefold(),)
        )
        if not rows:
            return None
        await self.db.execute(
            """
            INSERT INTO subscriptions (guild_id, channel_id, topic, min_heat, keywords, exclude,
                                       mention_role_id, match_any, paused_by, paused_by_at,
                                       style, thread, thread_archive, created_by, created_at,
                                       live, digest, digest_hour, digest_day, digest_size)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (channel_id, topic) DO UPDATE SET
                min_heat = excluded.min_heat, keywords = excluded.keywords,
                exclude = excluded.exclude, mention_role_id = excluded.mention_role_id,
                match_any = excluded.match_any, paused_by = excluded.paused_by,
                paused_by_at = excluded.paused_by_at, style = excluded.style,
                thread = excluded.thread, thread_archive = excluded.thread_archive,
                paused_reason = NULL, paused_at = NULL,
                live = excluded.live, digest = excluded.digest,
                digest_hour = excluded.digest_hour, digest_day = excluded.digest_day,
                digest_size = excluded.digest_size
            """,
            (
                guild_id,
                channel_id,
                rows[0][0],
                min_heat,
                "\n".join(keywords),
                "\n".join(exclude),
                mention_role_id,
                int(match_any),
                paused_by,
                to_epoch(paused_by_at),
                str(style),
                int(thread),
                thread_archive,
                created_by,
                to_epoch(now),
                int(live),
                digest,
                digest_hour,
                digest_day,
                digest_size,
            ),
        )
        subs = await self._subscriptions(
            "sub.channel_id = ? AND sub.topic = ?", (channel_id, rows[0][0])
        )
        return subs[0]

    async def subscription(self, channel_id: int, topic: str) -> Subscription | None:
        """The channel's subscription to `topic` (any spelling of its name), if any."""
        subs = await self._subscriptions(
            "sub.channel_id = ? AND t.key = ?", (channel_id, topic.strip().casefold())
        )
        return subs[0] if subs else None

    async def unsubscribe(self, channel_id: int, topic: str | None) -> int:
        """Remove the channel's subscription to `topic`, or all of them (None)."""
        if topic is None:
            cursor = await self.db.execute(
                "DELETE FROM subscriptions WHERE channel_id = ?", (channel_id,)
            )
        else:
            cursor = await self.db.execute(
                """
                DELETE FROM subscriptions WHERE channel_id = ?
                AND topic = (SELECT id FROM topics WHERE key = ?)
                """,
                (channel_id, topic.strip().casefold()),
            )
        await self._drop_unsubscribed_pending(channel_id)
        return cursor.rowcount

    async def subscriptions(
        self, guild_id: int, channel_id: int | None = None
    ) -> list[Subscription]:
        """The guild's (or one channel's) subscriptions, with the last story posted for each."""
        if channel_id is None:
            return await self._subscriptions("sub.guild_id = ?", (guild_id,))
        return await self._subscriptions(
            "sub.guild_id = ? AND sub.channel_id = ?", (guild_id, channel_id)
        )

    async def channel_subscriptions(self, channel_id: int) -> list[Subscription]:
        return await self._subscriptions("sub.channel_id = ?", (channel_id,))

    async def delete_channel(self, channel_id: int) -> int:
        """Forget a channel that no longer exists: its subscriptions and unsent deliveries."""
        cursor = await self.db.execute(
            "DELETE FROM subscriptions WHERE channel_id = ?", (channel_id,)
        )
        await self.db.execute(
            "DELETE FROM deliveries WHERE channel_id = ? AND state IN (?, ?)",
            (channel_id, DeliveryState.PENDING, DeliveryState.SENDING),
        )
        await self.db.execute("DELETE FROM channel_notices WHERE channel_id = ?", (channel_id,))
        return cursor.rowcount

    async def delete_guild(self, guild_id: int) -> int:
        """Forget a guild the bot was removed from."""
        cursor = await self.db.execute("DELETE FROM subscriptions WHERE guild_id = ?", (guild_id,))
        await self.db.execute(
            "DELETE FROM deliveries WHERE guild_id = ? AND state IN (?, ?)",
            (guild_id, DeliveryState.PENDING, DeliveryState.SENDING),
        )
        return cursor.rowcount

    async def pause_channel(self, channel_id: int, reason: str, now: datetime) -> None:
        await self.db.execute(
            """
            UPDATE subscriptions SET paused_reason = ?, paused_at = ?
            WHERE channel_id = ? AND paused_reason IS NULL
            """,
            (reason, to_epoch(now), channel_id),
        )

    async def resume_channel(self, channel_id: int) -> None:
        await self.db.execute(
            "UPDATE subscriptions SET paused_reason = NULL, paused_at = NULL WHERE channel_id = ?",
            (channel_id,),
        )

    async def clear_notice(self, channel_id: int) -> None:
        """The channel works again: its next problem is worth telling the server about."""
        await self.db.execute("DELETE FROM channel_notices WHERE channel_id = ?", (channel_id,))

    async def paused_channels(self) -> list[tuple[int, int, str]]:
        """(guild id, channel id, reason) of every channel whose subscriptions are paused."""
        rows = await self.db.execute_fetchall(
            """
            SELECT guild_id, channel_id, min(paused_reason) FROM subscriptions
            WHERE paused_reason IS NOT NULL GROUP BY guild_id, channel_id
            """
        )
        return [tuple(r) for r in rows]

    async def claim_notice(self, channel_id: int, reason: str, now: datetime) -> bool:
        """True the first time a channel's problem is to be announced; False afterwards."""
        cursor = await self.db.execute(
            "INSERT OR IGNORE INTO channel_notices (channel_id, reason, notified_at)"
            " VALUES (?, ?, ?)",
            (channel_id, reason, to_epoch(now)),
        )
        return cursor.rowcount == 1

    # -- deciding what is due ------------------------------------------------------

    async def topic_stories(self, topic: str) -> list[Story]:
        """Every visible story of a topic, hottest first: what a subscription chooses from."""
        query = f"""
            SELECT {STORY_COLUMNS} FROM story_topics st
            JOIN stories s ON s.rowid = st.story LEFT JOIN providers p ON p.id = s.provider_id
            WHERE st.topic = (SELECT id FROM topics WHERE key = ?) AND st.visible = 1
            ORDER BY st.heat DESC, st.published_at DESC
        """
        rows = await self.db.execute_fetchall(query, (topic.strip().casefold(),))
        return [story_from_row(r) for r in rows]

    async def channel_story_ids(self, channel_id: int, topic: str) -> set[str]:
        """Ids of the topic's stories the channel already has a delivery of (any state)."""
        rows = await self.db.execute_fetchall(
            """
            SELECT s.id FROM deliveries d JOIN stories s ON s.rowid = d.story
            JOIN story_topics st ON st.story = d.story
            WHERE d.channel_id = ? AND st.topic = (SELECT id FROM topics WHERE key = ?)
            """,
            (channel_id, topic.strip().casefold()),
        )
        return {r[0] for r in rows}

    async def qualifying_stories(
        self, subscription: Subscription, cutoff: datetime | None
    ) -> list[Story]:
        """Stories the subscription would post now and the channel has not had, hottest first.

        Keyword filters are applied by the caller.
        """
        query = f"""
            SELECT {STORY_COLUMNS} FROM story_topics st
            JOIN stories s ON s.rowid = st.story LEFT JOIN providers p ON p.id = s.provider_id
            WHERE st.topic = (SELECT topic FROM subscriptions WHERE id = ?) AND st.visible = 1
              AND st.heat >= ? AND (? IS NULL OR st.published_at >= ?)
              AND NOT EXISTS (
                  SELECT 1 FROM deliveries d WHERE d.channel_id = ? AND d.story = st.story
              )
            ORDER BY st.heat DESC, st.published_at DESC
        """
        stamp = to_epoch(cutoff)
        rows = await self.db.execute_fetchall(
            query,
            (subscription.id, subscription.min_heat, stamp, stamp, subscription.channel_id),
        )
        return [story_from_row(r) for r in rows]

    async def changed_candidates(self) -> tuple[list[tuple[Story, list[Subscription]]], int]:
        """Stories changed since the last poll, each with the subscriptions that may want it.

        Pre-selected here (visible, a subscribed topic, heat at least the subscription's);
        the planner decides. Subscriptions with the same filters decide alike, so one of
        each kind comes back (see `record_due_like`): 10,000 channels with the default
        filters are one candidate. Also returns the change sequence to pass to
        `advance_watermark` once they are recorded.
        """
        watermark = int(await self.get_state(WATERMARK_KEY) or 0)
        rows = await self.db.execute_fetchall("SELECT max(seq) FROM story_changes")
        latest = rows[0][0] or 0
        if latest <= watermark:
            return [], latest
        query = f"""
            WITH kinds AS (
                SELECT s.rowid AS story, min(sub.id) AS sub
                FROM (SELECT DISTINCT story FROM story_changes WHERE seq > ? AND seq <= ?) c
                JOIN stories s ON s.rowid = c.story
                JOIN story_topics st ON st.story = s.rowid
                JOIN subscriptions sub ON sub.topic = st.topic AND sub.min_heat <= s.heat
                WHERE {VISIBLE}
                GROUP BY s.rowid, sub.topic, sub.min_heat, sub.keywords, sub.exclude,
                         sub.match_any, sub.paused_by IS NULL, sub.digest IS NULL
            )
            SELECT {SUBSCRIPTION_COLUMNS}, {STORY_COLUMNS}
            FROM kinds JOIN stories s ON s.rowid = kinds.story
            LEFT JOIN providers p ON p.id = s.provider_id
            JOIN subscriptions sub ON sub.id = kinds.sub JOIN topics t ON t.id = sub.topic
            ORDER BY s.rowid, sub.id
        """
        rows = await self.db.execute_fetchall(query, (watermark, latest))
        width = SUBSCRIPTION_WIDTH
        by_story: dict[str, tuple[Story, list[Subscription]]] = {}
        for r in rows:
            story = story_from_row(r[width:])
            by_story.setdefault(story.id, (story, []))[1].append(subscription_from_row(r[:width]))
        return list(by_story.values()), latest

    async def record_due_like(self, story_id: str, subscription_id: int, now: datetime) -> int:
        """Record the story as due for every subscription with the same filters as this one.

        Same topic, heat, keywords, exclude, match and staff pause, posting each story (not
        a digest): what the planner decided for one holds for all. Deliveries already
        recorded are kept.
        """
        cursor = await self.db.execute(
            """
            INSERT OR IGNORE INTO deliveries (channel_id, story, guild_id, state, created_at)
            SELECT sub.channel_id, s.rowid, sub.guild_id, ?, ?
            FROM subscriptions one
            JOIN subscriptions sub ON sub.topic = one.topic AND sub.min_heat = one.min_heat
              AND sub.keywords = one.keywords AND sub.exclude = one.exclude
              AND sub.match_any = one.match_any
              AND (sub.paused_by IS NULL) = (one.paused_by IS NULL)
              AND (sub.digest IS NULL) = (one.digest IS NULL)
            JOIN stories s ON s.id = ?
            WHERE one.id = ?
            """,
            (DeliveryState.PENDING, to_epoch(now), story_id, subscription_id),
        )
        return max(0, cursor.rowcount)

    async def collect_like(self, story_id: str, subscription_id: int, now: datetime) -> int:
        """Collect the story for the digest of every digest subscription like this one.

        Like `record_due_like`, for digest subscriptions: each story is collected once
        per subscription, at the poll it first qualified.
        """
        cursor = await self.db.execute(
            """
            INSERT OR IGNORE INTO digest_items (subscription, story, collected_at)
            SELECT sub.id, s.rowid, ?
            FROM subscriptions one
            JOIN subscriptions sub ON sub.topic = one.topic AND sub.min_heat = one.min_heat
              AND sub.keywords = one.keywords AND sub.exclude = one.exclude
              AND sub.match_any = one.match_any
              AND (sub.paused_by IS NULL) = (one.paused_by IS NULL)
              AND sub.digest IS NOT NULL
            JOIN stories s ON s.id = ?
            WHERE one.id = ?
            """,
            (to_epoch(now), story_id, subscription_id),
        )
        return max(0, cursor.rowcount)

    async def mark_collected_seen(
        self, subscription_id: int, story_ids: list[str], now: datetime
    ) -> None:
        """Stories that already qualified when a digest subscription started: never in it."""
        await self.db.executemany(
            """
            INSERT OR IGNORE INTO digest_items (subscription, story, collected_at, seen)
            SELECT ?, rowid, ?, 1 FROM stories WHERE id = ?
            """,
            [(subscription_id, to_epoch(now), story) for story in story_ids],
        )

    async def advance_watermark(self, seq: int) -> None:
        await self.set_state(WATERMARK_KEY, str(seq))
        await self.db.execute("DELETE FROM story_changes WHERE seq <= ?", (seq,))

    async def record_deliveries(
        self, rows: list[tuple[int, int, str, DeliveryState]], now: datetime
    ) -> int:
        """Record (guild id, channel id, story id, state) rows; existing ones are kept."""
        before = self.db.total_changes
        await self.db.executemany(
            """
            INSERT OR IGNORE INTO deliveries (channel_id, story, guild_id, state, created_at)
            SELECT ?, rowid, ?, ?, ? FROM stories WHERE id = ?
            """,
            [
                (channel, guild, state, to_epoch(now), story)
                for guild, channel, story, state in rows
            ],
        )
        return self.db.total_changes - before

    # -- sending -------------------------------------------------------------------

    async def due_deliveries(
        self,
        states: tuple[DeliveryState, ...] = (DeliveryState.PENDING,),
        channel_id: int | None = None,
    ) -> list[Delivery]:
        """Deliveries in `states` (of one channel, or all), by channel, oldest story first."""
        marks = ",".join("?" * len(states))
        query = f"""
            SELECT d.channel_id, d.guild_id, d.state, d.attempts,
                   s.published = 1 AND s.removed_at IS NULL, s.removed_at IS NOT NULL,
                   d.sent_at, {STORY_COLUMNS}
            FROM deliveries d JOIN stories s ON s.rowid = d.story
            LEFT JOIN providers p ON p.id = s.provider_id
            WHERE d.state IN ({marks}) AND (? IS NULL OR d.channel_id = ?)
            ORDER BY d.channel_id, s.published_at, s.rowid
        """
        rows = await self.db.execute_fetchall(query, (*states, channel_id, channel_id))
        return [
            Delivery(
                channel_id=r[0],
                guild_id=r[1],
                state=DeliveryState(r[2]),
                attempts=r[3],
                visible=bool(r[4]),
                removed=bool(r[5]),
                started_at=from_epoch(r[6]),
                story=story_from_row(r[7:]),
            )
            for r in rows
        ]

    async def mark_delivery(
        self,
        channel_id: int,
        story_id: str,
        state: DeliveryState,
        now: datetime,
        *,
        message_id: int | None = None,
        error: str | None = None,
    ) -> None:
        """Move one delivery to `state` (sending counts an attempt; sent keeps the message).

        `sent_at` is when the last send started (sending; sent passes the same time):
        after a crash, reconciliation looks for the post from that moment on.
        """
        started = state in (DeliveryState.SENDING, DeliveryState.SENT)
        await self.db.execute(
            """
            UPDATE deliveries SET
                state = ?,
                message_id = coalesce(?, message_id),
                sent_at = coalesce(?, sent_at),
                attempts = attempts + ?,
                last_error = ?
            WHERE channel_id = ? AND story = (SELECT rowid FROM stories WHERE id = ?)
            """,
            (
                state,
                message_id,
                to_epoch(now) if started else None,
                int(state == DeliveryState.SENDING),
                error,
                channel_id,
                story_id,
            ),
        )

    async def active_subscriptions(self, channel_id: int) -> list[Subscription]:
        """The channel's active subscriptions (without the last-posted lookup: cheap)."""
        rows = await self.db.execute_fetchall(
            f"""
            SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions sub JOIN topics t ON t.id = sub.topic
            WHERE sub.channel_id = ? AND sub.paused_reason IS NULL AND sub.paused_by IS NULL
            """,
            (channel_id,),
        )
        return [subscription_from_row(r) for r in rows]

    async def delivered_story(self, channel_id: int, story_id: str) -> bool:
        rows = await self.db.execute_fetchall(
            """
            SELECT 1 FROM deliveries d JOIN stories s ON s.rowid = d.story
            WHERE d.channel_id = ? AND s.id = ? AND d.state = ?
            """,
            (channel_id, story_id, DeliveryState.SENT),
        )
        return bool(rows)

    async def delivery_record(self, channel_id: int, story_id: str) -> tuple[Record | None, int]:
        """The channel's delivery of a story (None: never recorded), and for a due one how
        many of the channel's due stories are posted before it."""
        rows = await self.db.execute_fetchall(
            """
            SELECT d.state, d.guild_id, d.message_id, coalesce(d.sent_at, d.created_at),
                   d.last_error, s.removed_at IS NOT NULL, (
                       SELECT count(*) FROM deliveries o JOIN stories os ON os.rowid = o.story
                       WHERE o.channel_id = d.channel_id AND o.state = d.state
                         AND (os.published_at, os.rowid) < (s.published_at, s.rowid)
                   )
            FROM deliveries d JOIN stories s ON s.rowid = d.story
            WHERE d.channel_id = ? AND s.id = ?
            """,
            (channel_id, story_id),
        )
        if not rows:
            return None, 0
        state, guild_id, message_id, at, error, removed, ahead = rows[0]
        record = Record(
            state=DeliveryState(state),
            guild_id=guild_id,
            channel_id=channel_id,
            message_id=message_id,
            at=from_epoch(at),
            error=error,
            removed=bool(removed),
        )
        return record, ahead

    # -- internals -----------------------------------------------------------------

    async def _subscriptions(self, condition: str, params) -> list[Subscription]:
        query = f"""
            SELECT {SUBSCRIPTION_COLUMNS}, (
                SELECT s.title || char(10) || d.sent_at FROM deliveries d
                JOIN stories s ON s.rowid = d.story
                JOIN story_topics st ON st.story = d.story AND st.topic = sub.topic
                WHERE d.channel_id = sub.channel_id AND d.state = ?
                ORDER BY d.sent_at DESC LIMIT 1
            )
            FROM subscriptions sub JOIN topics t ON t.id = sub.topic
            WHERE {condition}
            ORDER BY sub.channel_id, t.key
        """
        rows = await self.db.execute_fetchall(query, (DeliveryState.SENT, *params))
        out = []
        for row in rows:
            last_title, last_at = None, None
            if last := row[SUBSCRIPTION_WIDTH]:
                last_title, _, stamp = last.rpartition("\n")
                last_at = int(stamp) if stamp.isdigit() else None
            out.append(subscription_from_row(row, last_title, last_at))
        return out

    async def _drop_unsubscribed_pending(self, channel_id: int) -> None:
        """Unsent deliveries no remaining subscription of the channel wants are dropped."""
        await self.db.execute(
            """
            UPDATE deliveries SET state = ?, last_error = 'unsubscribed'
            WHERE channel_id = ? AND state = ? AND NOT EXISTS (
                SELECT 1 FROM subscriptions sub JOIN story_topics st ON st.topic = sub.topic
                WHERE sub.channel_id = deliveries.channel_id AND st.story = deliveries.story
            )
            """,
            (DeliveryState.DROPPED, channel_id, DeliveryState.PENDING),
        )

    # -- posts that stay current ---------------------------------------------------

    async def record_posted(self, channel_id: int, story_id: str, heat: int) -> None:
        """What a post shows as it goes out: its heat and the story's coverage count."""
        rows = await self.db.execute_fetchall(
            "SELECT count(*) FROM coverage c JOIN stories s ON s.rowid = c.story WHERE s.id = ?",
            (story_id,),
        )
        coverage = rows[0][0]
        await self.db.execute(
            """
            UPDATE deliveries SET
                posted_heat = ?, shown_heat = ?, posted_coverage = ?, shown_coverage = ?,
                edited_at = NULL, live_stopped = 0
            WHERE channel_id = ? AND story = (SELECT rowid FROM stories WHERE id = ?)
            """,
            (heat, heat, coverage, coverage, channel_id, story_id),
        )

    async def live_posts(self, since: datetime) -> list[LivePost]:
        """Posts sent since `since` whose story's heat or coverage grew since last shown.

        The planner decides which of them to edit (`plan_edit`). Only story cards are
        kept current (a `full` style subscription covering the story: compact and link
        posts carry no heat); posts from before the bot recorded what they show are
        left alone.
        """
        query = f"""
            SELECT d.channel_id, d.message_id, d.sent_at, d.posted_heat, d.posted_coverage,
                   d.shown_heat, d.shown_coverage, d.edited_at, d.live_stopped,
                   EXISTS (
                       SELECT 1 FROM subscriptions sub JOIN story_topics st
                         ON st.topic = sub.topic AND st.story = d.story
                       WHERE sub.channel_id = d.channel_id AND sub.live = 1
                         AND sub.style = 'full'
                   ),
                   (SELECT count(*) FROM coverage c WHERE c.story = d.story) AS now_coverage,
                   {STORY_COLUMNS}
            FROM deliveries d JOIN stories s ON s.rowid = d.story
            LEFT JOIN providers p ON p.id = s.provider_id
            WHERE d.state = ? AND d.sent_at >= ? AND d.message_id IS NOT NULL
              AND d.live_stopped = 0 AND d.shown_heat IS NOT NULL AND {VISIBLE}
              AND (s.heat > d.shown_heat OR now_coverage > d.shown_coverage)
            ORDER BY d.channel_id, d.sent_at
        """
        rows = await self.db.execute_fetchall(query, (DeliveryState.SENT, to_epoch(since)))
        return [
            LivePost(
                channel_id=r[0],
                message_id=r[1],
                posted_at=from_epoch(r[2]),
                posted_heat=r[3],
                posted_coverage=r[4],
                shown_heat=r[5],
                shown_coverage=r[6],
                edited_at=from_epoch(r[7]),
                stopped=bool(r[8]),
                live=bool(r[9]),
                coverage=r[10],
                story=story_from_row(r[11:]),
            )
            for r in rows
        ]

    async def record_edit(
        self,
        channel_id: int,
        story_id: str,
        now: datetime,
        *,
        heat: int | None = None,
        coverage: int | None = None,
        stopped: bool = False,
    ) -> None:
        """An edit of a post: what it shows now (None: unchanged, the edit failed)."""
        await self.db.execute(
            """
            UPDATE deliveries SET
                shown_heat = coalesce(?, shown_heat),
                shown_coverage = coalesce(?, shown_coverage),
                edited_at = ?, live_stopped = max(live_stopped, ?)
            WHERE channel_id = ? AND story = (SELECT rowid FROM stories WHERE id = ?)
            """,
            (heat, coverage, to_epoch(now), int(stopped), channel_id, story_id),
        )

    # -- digests -------------------------------------------------------------------

    async def digest_subscriptions(self) -> list[tuple[Subscription, datetime | None]]:
        """Every digest subscription, with the end of its last recorded digest period."""
        rows = await self.db.execute_fetchall(
            f"""
            SELECT {SUBSCRIPTION_COLUMNS},
                   (SELECT max(period_end) FROM digests g WHERE g.subscription = sub.id)
            FROM subscriptions sub JOIN topics t ON t.id = sub.topic
            WHERE sub.digest IS NOT NULL
            ORDER BY sub.channel_id, sub.id
            """
        )
        return [
            (subscription_from_row(r[:SUBSCRIPTION_WIDTH]), from_epoch(r[SUBSCRIPTION_WIDTH]))
            for r in rows
        ]

    async def collected_stories(
        self, subscription_id: int, start: datetime, end: datetime
    ) -> list[tuple[Story, datetime]]:
        """Visible stories the subscription collected in (start, end], with when."""
        query = f"""
            SELECT i.collected_at, {STORY_COLUMNS}
            FROM digest_items i JOIN stories s ON s.rowid = i.story
            LEFT JOIN providers p ON p.id = s.provider_id
            WHERE i.subscription = ? AND i.seen = 0 AND i.collected_at > ?
              AND i.collected_at <= ? AND {VISIBLE}
        """
        rows = await self.db.execute_fetchall(
            query, (subscription_id, to_epoch(start), to_epoch(end))
        )
        return [(story_from_row(r[1:]), from_epoch(r[0])) for r in rows]

    async def record_digest(
        self,
        subscription: Subscription,
        start: datetime,
        end: datetime,
        story_ids: list[str],
        now: datetime,
    ) -> None:
        """Record a period's digest before it is sent: pending, or empty (nothing to send)."""
        await self.db.execute(
            """
            INSERT OR IGNORE INTO digests (subscription, period_end, period_start, guild_id,
                                           channel_id, state, stories, created_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            """,
            (
                subscription.id,
                to_epoch(end),
                to_epoch(start),
                subscription.guild_id,
                subscription.channel_id,
                "pending" if story_ids else "empty",
                "\n".join(story_ids),
                to_epoch(now),
            ),
        )

    async def digests(self, state: str) -> list[Digest]:
        """Recorded digests in `state` ('pending' or 'sending'), with their stories.

        Pending digests of a subscription paused by staff wait until it resumes.
        """
        rows = await self.db.execute_fetchall(
            """
            SELECT g.subscription, g.guild_id, g.channel_id, g.period_start, g.period_end,
                   g.stories, g.sent_at, sub.digest, t.name, sub.mention_role_id
            FROM digests g JOIN subscriptions sub ON sub.id = g.subscription
            JOIN topics t ON t.id = sub.topic
            WHERE g.state = ? AND (g.state = 'sending' OR sub.paused_by IS NULL)
            ORDER BY g.channel_id, g.period_end
            """,
            (state,),
        )
        out = []
        for r in rows:
            ids = [i for i in r[5].split("\n") if i]
            stories = {story.id: story for story in await self._stories_by_id(ids)}
            out.append(
                Digest(
                    subscription_id=r[0],
                    guild_id=r[1],
                    channel_id=r[2],
                    start=from_epoch(r[3]),
                    end=from_epoch(r[4]),
                    stories=[stories[i] for i in ids if i in stories],
                    started_at=from_epoch(r[6]),
                    kind=r[7] or "daily",
                    topic=r[8],
                    mention_role_id=r[9],
                )
            )
        return out

    async def mark_digest(
        self,
        subscription_id: int,
        end: datetime,
        state: str,
        now: datetime,
        *,
        message_id: int | None = None,
        error: str | None = None,
    ) -> None:
        """Move one digest to `state`, as `mark_delivery` does for a delivery."""
        started = state in ("sending", "sent")
        await self.db.execute(
            """
            UPDATE digests SET
                state = ?,
                message_id = coalesce(?, message_id),
                sent_at = coalesce(?, sent_at),
                attempts = attempts + ?,
                last_error = ?
            WHERE subscription = ? AND period_end = ?
            """,
            (
                state,
                message_id,
                to_epoch(now) if started else None,
                int(state == "sending"),
                error,
                subscription_id,
                to_epoch(end),
            ),
        )

    async def _stories_by_id(self, ids: list[str]) -> list[Story]:
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        query = f"SELECT {STORY_COLUMNS} FROM {STORY_FROM} WHERE s.id IN ({marks})"
        return [story_from_row(r) for r in await self.db.execute_fetchall(query, ids)]
