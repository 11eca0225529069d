"""Subscriptions and deliveries: who wants which stories, and what was posted where."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from core.models import (
    Confirmation,
    Delivery,
    DeliveryState,
    Digest,
    PostStyle,
    Story,
    Subscription,
)
from core.sharding import EVERY_SHARD, Shards
from core.store.base import Params, StoreBase
from core.store.claims import shard_condition, values_rows
from core.store.epochs import from_epoch, to_epoch
from core.store.stories import (
    STORY_COLUMNS,
    STORY_FROM,
    VISIBLE,
    story_from_row,
)

if TYPE_CHECKING:
    from core.planner import LivePost, Record

WATERMARK_KEY = "delivery_watermark"
# The subscriptions a fan-out has yet to write deliveries for (parameters: its kind of
# filters and its cursor, see `fan_out`): in channel order, a range of `subscriptions_kind`.
FANOUT_SUBSCRIPTIONS = """
    subscriptions sub
    WHERE sub.topic = ? AND sub.min_heat = ? AND sub.keywords = ? AND sub.exclude = ?
      AND sub.match_any = ? AND (sub.paused_by IS NULL) = ? AND (sub.digest IS NULL) = TRUE
      AND sub.channel_id > ?
"""
LAST_CHANNEL = 2**63 - 1  # above any Discord id
# Prefixed, so that they can be selected beside STORY_COLUMNS and read by name.
SUBSCRIPTION_COLUMNS = """
    sub.id AS sub_id, sub.guild_id AS sub_guild_id, sub.channel_id AS sub_channel_id,
    t.name AS sub_topic, sub.min_heat AS sub_min_heat, sub.keywords AS sub_keywords,
    sub.exclude AS sub_exclude, sub.mention_role_id AS sub_mention_role_id,
    sub.paused_reason AS sub_paused_reason, sub.created_at AS sub_created_at,
    sub.match_any AS sub_match_any, sub.paused_by AS sub_paused_by,
    sub.paused_by_at AS sub_paused_by_at, sub.style AS sub_style, sub.thread AS sub_thread,
    sub.thread_archive AS sub_thread_archive, sub.live AS sub_live, sub.digest AS sub_digest,
    sub.digest_hour AS sub_digest_hour, sub.digest_day AS sub_digest_day,
    sub.digest_size AS sub_digest_size
"""
DELIVERY_COLUMNS = """
    d.channel_id AS delivery_channel_id, d.guild_id AS delivery_guild_id,
    d.state AS delivery_state, d.attempts AS delivery_attempts,
    d.sent_at AS delivery_sent_at,
    s.published = 1 AND s.removed_at IS NULL AS story_visible,
    s.removed_at IS NOT NULL AS story_removed,
    EXISTS (
        SELECT 1 FROM pins WHERE pins.guild_id = d.guild_id AND pins.story = d.story
    ) AS delivery_pinned
"""


def subscription_from_row(row: sqlite3.Row, with_last: bool = False) -> Subscription:
    """A subscription from a row selecting `SUBSCRIPTION_COLUMNS` (and, `with_last`, the
    `last_story` and `last_posted_at` of `_subscriptions`)."""
    return Subscription(
        id=row["sub_id"],
        guild_id=row["sub_guild_id"],
        channel_id=row["sub_channel_id"],
        topic=row["sub_topic"],
        min_heat=row["sub_min_heat"],
        keywords=tuple(k for k in row["sub_keywords"].split("\n") if k),
        exclude=tuple(k for k in row["sub_exclude"].split("\n") if k),
        mention_role_id=row["sub_mention_role_id"],
        paused_reason=row["sub_paused_reason"],
        created_at=from_epoch(row["sub_created_at"]),
        last_story=row["last_story"] if with_last else None,
        last_posted_at=from_epoch(row["last_posted_at"]) if with_last else None,
        match_any=bool(row["sub_match_any"]),
        paused_by=row["sub_paused_by"],
        paused_by_at=from_epoch(row["sub_paused_by_at"]),
        style=PostStyle(row["sub_style"]),
        thread=bool(row["sub_thread"]),
        thread_archive=row["sub_thread_archive"],
        live=bool(row["sub_live"]),
        digest=row["sub_digest"],
        digest_hour=row["sub_digest_hour"],
        digest_day=row["sub_digest_day"],
        digest_size=row["sub_digest_size"],
    )


# A sent post and its story, for keeping posts current (see `live_post_from_row`).
LIVE_POST_COLUMNS = f"""
    d.channel_id AS post_channel_id, d.message_id AS post_message_id,
    d.sent_at AS post_sent_at, d.posted_heat AS post_posted_heat,
    d.posted_coverage AS post_posted_coverage, d.shown_heat AS post_shown_heat,
    d.shown_coverage AS post_shown_coverage, d.edited_at AS post_edited_at,
    d.live_stopped AS post_stopped, coalesce(d.style, 'full') AS post_style,
    EXISTS (
        SELECT 1 FROM subscriptions sub JOIN story_topics st
          ON st.topic = sub.topic AND st.story = d.story
        WHERE sub.channel_id = d.channel_id AND sub.live = 1
          AND (d.style IS NOT NULL OR sub.style = 'full')
    ) AS post_live,
    (SELECT count(*) FROM coverage c WHERE c.story = d.story) AS now_coverage,
    {STORY_COLUMNS}
"""


# What a post shows as it goes out (parameters: its heat twice, its style): one statement,
# so the coverage count written is the count of that moment.


def posted_look(heat: str, style: str) -> str:
    """The SET of what a sent post shows (its heat and coverage, its style), given the
    SQL of its heat and style, for `record_posted` and confirmations."""
    return f"""
        posted_heat = {heat}, shown_heat = {heat}, style = {style},
        posted_coverage = (SELECT count(*) FROM coverage c WHERE c.story = deliveries.story),
        shown_coverage = (SELECT count(*) FROM coverage c WHERE c.story = deliveries.story),
        edited_at = NULL, live_stopped = 0
    """


POSTED_LOOK = posted_look("?", "?")
# The SQL types of a confirmation's (channel, story, message, heat, style, time).
CONFIRMATION_TYPES = ("BIGINT", "TEXT", "BIGINT", "BIGINT", "TEXT", "BIGINT")


def live_post_from_row(row: sqlite3.Row) -> LivePost:
    """A post kept current from a row selecting `LIVE_POST_COLUMNS`."""
    from core.planner import LivePost  # the planner is delivery's: not loaded by the CLI

    return LivePost(
        channel_id=row["post_channel_id"],
        message_id=row["post_message_id"],
        posted_at=from_epoch(row["post_sent_at"]),
        posted_heat=row["post_posted_heat"],
        posted_coverage=row["post_posted_coverage"],
        shown_heat=row["post_shown_heat"],
        shown_coverage=row["post_shown_coverage"],
        edited_at=from_epoch(row["post_edited_at"]),
        stopped=bool(row["post_stopped"]),
        live=bool(row["post_live"]),
        style=PostStyle(row["post_style"]),
        coverage=row["now_coverage"],
        story=story_from_row(row),
    )


def delivery_from_row(row: sqlite3.Row, story: Story | None = None) -> Delivery:
    """A delivery from a row selecting `DELIVERY_COLUMNS` and `STORY_COLUMNS` (`story`:
    the row's story, already built)."""
    return Delivery(
        channel_id=row["delivery_channel_id"],
        guild_id=row["delivery_guild_id"],
        state=DeliveryState(row["delivery_state"]),
        attempts=row["delivery_attempts"],
        visible=bool(row["story_visible"]),
        removed=bool(row["story_removed"]),
        started_at=from_epoch(row["delivery_sent_at"]),
        pinned=bool(row["delivery_pinned"]),
        story=story or story_from_row(row),
    )


def pack_story_ids(story_ids: list[str]) -> str:
    """A digest's stories, in order, as its `stories` column keeps them (one id a line:
    ids are short base32 strings, never containing a newline)."""
    return "\n".join(story_ids)


def unpack_story_ids(packed: str) -> list[str]:
    """The story ids of a digest's `stories` column, in order."""
    return [story_id for story_id in packed.split("\n") if story_id]


class SubscriptionQueries(StoreBase):
    """Subscriptions and deliveries: who wants which stories, and what was posted where."""

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
        async with self.atomic():
            topic_id = await self._topic_id(topic)
            if topic_id is None:
                return None
            await self._upsert_subscription(
                (
                    guild_id,
                    channel_id,
                    topic_id,
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
                )
            )
            subs = await self._subscriptions(
                "sub.channel_id = ? AND sub.topic = ?", (channel_id, topic_id)
            )
        return subs[0]

    async def _upsert_subscription(self, values: tuple[object, ...]) -> None:
        await self._execute(
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
            values,
        )

    async def subscription(self, channel_id: int, topic: str) -> Subscription | None:
        """The channel's subscription to `topic` (any spelling of its name), if any."""
        subs = await self._subscriptions(
            "sub.channel_id = ? AND t.key = ?", (channel_id, topic.strip().casefold())
        )
        return subs[0] if subs else None

    async def unsubscribe(self, channel_id: int, topic: str | None) -> int:
        """Remove the channel's subscription to `topic`, or all of them (None)."""
        async with self.atomic():
            if topic is None:
                removed = await self._execute(
                    "DELETE FROM subscriptions WHERE channel_id = ?", (channel_id,)
                )
            else:
                removed = await self._execute(
                    """
                    DELETE FROM subscriptions WHERE channel_id = ?
                    AND topic = (SELECT id FROM topics WHERE key = ?)
                    """,
                    (channel_id, topic.strip().casefold()),
                )
            await self._drop_unsubscribed_pending(channel_id)
        return removed

    async def subscriptions(
        self, guild_id: int, channel_id: int | None = None
    ) -> list[Subscription]:
        """The guild's (or one channel's) subscriptions, with the last story posted for each."""
        if channel_id is None:
            return await self._subscriptions("sub.guild_id = ?", (guild_id,))
        return await self._subscriptions(
            "sub.guild_id = ? AND sub.channel_id = ?", (guild_id, channel_id)
        )

    async def channel_subscriptions(
        self, channel_id: int, *, last: bool = True
    ) -> list[Subscription]:
        """The channel's subscriptions; `last`: with the last story posted for each (what
        /subscriptions shows; delivery needs none, and finding it is most of the cost)."""
        if last:
            return await self._subscriptions("sub.channel_id = ?", (channel_id,))
        return await self._bare_subscriptions("sub.channel_id = ?", (channel_id,))

    async def subscriptions_of_channels(
        self, channel_ids: Sequence[int]
    ) -> dict[int, list[Subscription]]:
        """The subscriptions (without the last posted) of these channels, by channel: the
        sender reads those of the next channels of a poll at once, not one at a time."""
        if not channel_ids:
            return {}
        marks = ",".join("?" * len(channel_ids))
        found: dict[int, list[Subscription]] = {}
        for sub in await self._bare_subscriptions(f"sub.channel_id IN ({marks})", channel_ids):
            found.setdefault(sub.channel_id, []).append(sub)
        return found

    async def delete_channel(self, channel_id: int) -> int:
        """Forget a channel that no longer exists: its subscriptions and unsent deliveries."""
        async with self.atomic():
            removed = await self._execute(
                "DELETE FROM subscriptions WHERE channel_id = ?", (channel_id,)
            )
            await self._execute(
                "DELETE FROM deliveries WHERE channel_id = ? AND state IN (?, ?)",
                (channel_id, DeliveryState.PENDING, DeliveryState.SENDING),
            )
            await self._execute("DELETE FROM channel_notices WHERE channel_id = ?", (channel_id,))
        return removed

    async def delete_guild(self, guild_id: int) -> int:
        """Forget a guild the bot was removed from."""
        async with self.atomic():
            removed = await self._execute(
                "DELETE FROM subscriptions WHERE guild_id = ?", (guild_id,)
            )
            await self._execute(
                "DELETE FROM deliveries WHERE guild_id = ? AND state IN (?, ?)",
                (guild_id, DeliveryState.PENDING, DeliveryState.SENDING),
            )
        return removed

    async def pause_channel(self, channel_id: int, reason: str, now: datetime) -> None:
        await self._execute(
            """
            UPDATE subscriptions SET paused_reason = ?, paused_at = ?
            WHERE channel_id = ? AND paused_reason IS NULL
            """,
            (reason, to_epoch(now), channel_id),
        )

    async def resume_channel(self, channel_id: int) -> None:
        await self._execute(
            "UPDATE subscriptions SET paused_reason = NULL, paused_at = NULL WHERE channel_id = ?",
            (channel_id,),
        )

    async def clear_notice(self, channel_id: int) -> None:
        """The channel works again: its next problem is worth telling the server about."""
        await self._execute("DELETE FROM channel_notices WHERE channel_id = ?", (channel_id,))

    async def noticed_channels(self) -> set[int]:
        """The channels whose problem was announced and not cleared since."""
        return {
            row["channel_id"] for row in await self._rows("SELECT channel_id FROM channel_notices")
        }

    async def paused_channels(self) -> list[tuple[int, int, str]]:
        """(guild id, channel id, reason) of every channel whose subscriptions are paused."""
        rows = await self._rows(
            """
            SELECT guild_id, channel_id, min(paused_reason) AS reason FROM subscriptions
            WHERE paused_reason IS NOT NULL GROUP BY guild_id, channel_id
            """
        )
        return [(row["guild_id"], row["channel_id"], row["reason"]) for row in rows]

    async def claim_notice(self, channel_id: int, reason: str, now: datetime) -> bool:
        """True the first time a channel's problem is to be announced; False afterwards."""
        claimed = await self._execute(
            "INSERT OR IGNORE INTO channel_notices (channel_id, reason, notified_at)"
            " VALUES (?, ?, ?)",
            (channel_id, reason, to_epoch(now)),
        )
        return claimed == 1

    # -- deciding what is due ------------------------------------------------------

    async def topic_stories(self, topic: str) -> list[Story]:
        """Every visible story of a topic, hottest first: what a subscription chooses from."""
        query = f"""
            SELECT {STORY_COLUMNS} FROM story_topics st
            JOIN stories s ON s.rowid = st.story LEFT JOIN providers p ON p.id = s.provider_id
            WHERE st.topic = (SELECT id FROM topics WHERE key = ?) AND st.visible = 1
            ORDER BY st.heat DESC, st.published_at DESC
        """
        rows = await self._rows(query, (topic.strip().casefold(),))
        return [story_from_row(r) for r in rows]

    async def channel_story_ids(self, channel_id: int, topic: str) -> set[str]:
        """Ids of the topic's stories the channel already has a delivery of (any state)."""
        rows = await self._rows(
            """
            SELECT s.id FROM deliveries d JOIN stories s ON s.rowid = d.story
            JOIN story_topics st ON st.story = d.story
            WHERE d.channel_id = ? AND st.topic = (SELECT id FROM topics WHERE key = ?)
            """,
            (channel_id, topic.strip().casefold()),
        )
        return {row["id"] for row in rows}

    async def changed_candidates(self) -> tuple[list[tuple[Story, list[Subscription]]], int]:
        """Stories changed since the last poll, each with the subscriptions that may want it.

        Pre-selected here (visible, a subscribed topic, heat at least the subscription's);
        the planner decides. Subscriptions with the same filters decide alike, so one of
        each kind comes back (see `record_fanout`): 10,000 channels with the default
        filters are one candidate. Also returns the change sequence to pass to
        `advance_watermark` once they are recorded.
        """
        watermark = int(await self.get_state(WATERMARK_KEY) or 0)
        last = await self._row("SELECT coalesce(max(seq), 0) AS latest FROM story_changes")
        latest = 0 if last is None else last["latest"]
        if latest <= watermark:
            return [], latest
        # Per changed story and topic, one ordered pass over the topic's subscriptions in
        # `subscriptions_kind` (the GROUP BY follows it): the first of each kind.
        query = f"""
            SELECT {SUBSCRIPTION_COLUMNS}, {STORY_COLUMNS}
            FROM (SELECT DISTINCT story FROM story_changes WHERE seq > ? AND seq <= ?) c
            JOIN stories s ON s.rowid = c.story
            JOIN story_topics st ON st.story = s.rowid
            JOIN subscriptions sub ON sub.id IN (
                SELECT min(k.id) FROM subscriptions k
                WHERE k.topic = st.topic AND k.min_heat <= s.heat
                GROUP BY k.min_heat, k.keywords, k.exclude, k.match_any, k.paused_by IS NULL,
                         k.digest IS NULL
            )
            JOIN topics t ON t.id = sub.topic
            LEFT JOIN providers p ON p.id = s.provider_id
            WHERE {VISIBLE}
            ORDER BY s.rowid, sub.id
        """
        rows = await self._rows(query, (watermark, latest))
        by_story: dict[str, tuple[Story, list[Subscription]]] = {}
        for row in rows:
            story = story_from_row(row)
            by_story.setdefault(story.id, (story, []))[1].append(subscription_from_row(row))
        return list(by_story.values()), latest

    async def record_fanout(self, story_id: str, subscription_id: int, now: datetime) -> int:
        """Record the story as due for every subscription with the same filters as this one.

        Same topic, heat, keywords, exclude, match and staff pause, posting each story (not
        a digest): what the planner decided for one holds for all. One row, the fan-out:
        `fan_out` writes its deliveries afterwards, a chunk of channels at a time. A
        fan-out of the story to these filters already waiting is kept.
        """
        recorded = await self._execute(
            """
            INSERT OR IGNORE INTO fanouts (story, topic, min_heat, keywords, exclude,
                                           match_any, paused, created_at)
            SELECT s.rowid, one.topic, one.min_heat, one.keywords, one.exclude, one.match_any,
                   CASE WHEN one.paused_by IS NULL THEN 0 ELSE 1 END, ?
            FROM subscriptions one JOIN stories s ON s.id = ?
            WHERE one.id = ?
            """,
            (to_epoch(now), story_id, subscription_id),
        )
        return max(0, recorded)

    async def fan_out(self, channels: int) -> int | None:
        """Write the pending deliveries of the oldest fan-out for its next `channels`
        subscribed channels, in one transaction; how many were new (None: no fan-out left).

        The subscriptions are those of the moment: a channel that unsubscribed meanwhile
        gets nothing; one that subscribed meanwhile keeps the row its subscription made
        (a story already there is 'seen', not posted: no flood), as does any channel
        that has the story already. The fan-out is deleted with its last chunk.
        """
        async with self.atomic():
            fanout = await self._row("SELECT * FROM fanouts ORDER BY id LIMIT 1")
            if fanout is None:
                return None
            # Its values, not the fan-out's row joined: PostgreSQL then reads the index
            # in channel order too (NULLS LAST: as its index is ordered; there are none).
            kind = (
                fanout["topic"],
                fanout["min_heat"],
                fanout["keywords"],
                fanout["exclude"],
                fanout["match_any"],
                not fanout["paused"],
                fanout["after_channel"],
            )
            last = await self._row(
                f"""
                SELECT sub.channel_id FROM {FANOUT_SUBSCRIPTIONS}
                ORDER BY sub.channel_id NULLS LAST LIMIT 1 OFFSET ?
                """,
                (*kind, channels - 1),
            )
            upto = last["channel_id"] if last else LAST_CHANNEL
            recorded = await self._execute(
                f"""
                INSERT OR IGNORE INTO deliveries (channel_id, story, guild_id, state, created_at)
                SELECT sub.channel_id, ?, sub.guild_id, ?, ?
                FROM {FANOUT_SUBSCRIPTIONS} AND sub.channel_id <= ?
                """,
                (fanout["story"], DeliveryState.PENDING, fanout["created_at"], *kind, upto),
            )
            if last is None:
                await self._execute("DELETE FROM fanouts WHERE id = ?", (fanout["id"],))
            else:
                await self._execute(
                    "UPDATE fanouts SET after_channel = ? WHERE id = ?", (upto, fanout["id"])
                )
        return max(0, recorded)

    async def collect_like(self, story_id: str, subscription_id: int, now: datetime) -> int:
        """Collect the story for the digest of every digest subscription like this one.

        Like `record_fanout`, for digest subscriptions: each story is collected once
        per subscription, at the poll it first qualified.
        """
        collected = await self._execute(
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
        return max(0, collected)

    async def mark_collected_seen(
        self, subscription_id: int, story_ids: list[str], now: datetime
    ) -> None:
        """Stories that already qualified when a digest subscription started: never in it."""
        async with self.atomic():
            await self._executemany(
                """
                INSERT OR IGNORE INTO digest_items (subscription, story, collected_at, seen)
                SELECT ?, rowid, ?, 1 FROM stories WHERE id = ?
                """,
                [(subscription_id, to_epoch(now), story) for story in story_ids],
            )

    async def advance_watermark(self, seq: int) -> None:
        async with self.atomic():
            await self.set_state(WATERMARK_KEY, str(seq))
            await self._execute("DELETE FROM story_changes WHERE seq <= ?", (seq,))

    async def record_deliveries(
        self, rows: list[tuple[int, int, str, DeliveryState]], now: datetime
    ) -> int:
        """Record (guild id, channel id, story id, state) rows; existing ones are kept."""
        async with self.atomic():
            return await self._executemany(
                """
                INSERT OR IGNORE INTO deliveries (channel_id, story, guild_id, state, created_at)
                SELECT ?, rowid, ?, ?, ? FROM stories WHERE id = ?
                """,
                [
                    (channel, guild, state, to_epoch(now), story)
                    for guild, channel, story, state in rows
                ],
            )

    # -- sending -------------------------------------------------------------------

    async def due_deliveries(
        self,
        states: tuple[DeliveryState, ...] = (DeliveryState.PENDING,),
        channel_id: int | None = None,
        *,
        shards: Shards = EVERY_SHARD,
        claimed_by: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Delivery]:
        """Deliveries in `states` (of one channel, or all; of guilds on `shards`; claimed
        by one process), by channel, oldest story first; with a `limit`, that many from
        `offset` on (a channel's queue is read a page at a time).

        Each story is built once, however many channels it is due in."""
        marks = ",".join("?" * len(states))
        on_shards, shard_params = shard_condition("d.guild_id", shards)
        where = f"d.state IN ({marks}) AND {on_shards}"
        params: tuple[object, ...] = (*states, *shard_params)
        if channel_id is not None:  # in the SQL only when given: then the index finds it
            where, params = f"{where} AND d.channel_id = ?", (*params, channel_id)
        if claimed_by is not None:
            where, params = f"{where} AND d.claimed_by = ?", (*params, claimed_by)
        order = "d.channel_id, s.published_at, s.rowid"
        if limit is None:
            chosen = "deliveries d JOIN stories s ON s.rowid = d.story"
        else:
            # The page's keys first: only its rows are read in full.
            chosen = f"""
                (SELECT d.channel_id, d.story FROM deliveries d
                 JOIN stories s ON s.rowid = d.story
                 WHERE {where} ORDER BY {order} LIMIT ? OFFSET ?) page
                JOIN deliveries d ON d.channel_id = page.channel_id AND d.story = page.story
                JOIN stories s ON s.rowid = d.story
            """
            params, where = (*params, limit, offset), "1 = 1"
        query = f"""
            SELECT {DELIVERY_COLUMNS}, {STORY_COLUMNS}
            FROM {chosen} LEFT JOIN providers p ON p.id = s.provider_id
            WHERE {where} ORDER BY {order}
        """
        stories: dict[int, Story] = {}
        found = []
        for row in await self._rows(query, params):
            story = stories.get(row["story_rowid"])
            if story is None:
                story = stories[row["story_rowid"]] = story_from_row(row)
            found.append(delivery_from_row(row, story))
        return found

    async def mark_delivery(
        self,
        channel_id: int,
        story_id: str,
        state: DeliveryState,
        now: datetime,
        *,
        message_id: int | None = None,
        error: str | None = None,
        holder: str | None = None,
    ) -> bool:
        """Move one delivery to `state` (sending counts an attempt; sent keeps the message).

        `sent_at` is when the last send started (sending; sent passes the same time):
        after a crash, reconciliation looks for the post from that moment on. With a
        `holder` (a process), only a pending delivery or one that process claimed moves:
        False when another process claimed it meanwhile (see `claim_deliveries`).
        """
        started = state in (DeliveryState.SENDING, DeliveryState.SENT)
        guard = "" if holder is None else " AND (state = ? OR claimed_by = ?)"
        params: tuple[object, ...] = (
            state,
            message_id,
            to_epoch(now) if started else None,
            int(state == DeliveryState.SENDING),
            error,
            channel_id,
            story_id,
        )
        if holder is not None:
            params = (*params, DeliveryState.PENDING, holder)
        changed = await self._execute(
            f"""
            UPDATE deliveries SET
                state = ?,
                message_id = coalesce(?, message_id),
                sent_at = coalesce(?, sent_at),
                attempts = attempts + ?,
                last_error = ?
            WHERE channel_id = ? AND story = (SELECT rowid FROM stories WHERE id = ?){guard}
            """,
            params,
        )
        return changed > 0

    async def confirm_delivery(
        self,
        channel_id: int,
        story_id: str,
        holder: str,
        now: datetime,
        *,
        message_id: int,
        heat: int,
        style: PostStyle = PostStyle.FULL,
    ) -> bool:
        """A claimed delivery went out: sent, with its message and what the post shows
        (`record_posted`), in one statement; False when the claim is no longer this
        process's (another process took it over meanwhile), as `mark_delivery`."""
        rows = await self._rows(
            f"""
            UPDATE deliveries SET
                state = ?, message_id = ?, sent_at = ?, last_error = NULL, {POSTED_LOOK}
            WHERE channel_id = ? AND story = (SELECT rowid FROM stories WHERE id = ?)
              AND (state = ? OR claimed_by = ?)
            RETURNING channel_id
            """,
            (
                DeliveryState.SENT,
                message_id,
                to_epoch(now),
                heat,
                heat,
                str(style),
                channel_id,
                story_id,
                DeliveryState.PENDING,
                holder,
            ),
        )
        return bool(rows)

    async def confirm_delivery_batch(
        self, confirmations: list[Confirmation], holder: str
    ) -> set[tuple[int, str]]:
        """`confirm_delivery` for several deliveries (of several channels) at once, in one
        statement; returns the (channel, story) confirmed: the claims still `holder`'s."""
        if len(confirmations) == 1:
            # One (a burst in one channel confirms each post on its own): a plain UPDATE
            # costs SQLite a third of an UPDATE … FROM a list (≈35 against ≈110 µs).
            (c,) = confirmations
            held = await self.confirm_delivery(
                c.channel_id,
                c.story_id,
                holder,
                c.at,
                message_id=c.message_id,
                heat=c.heat,
                style=c.style,
            )
            return {(c.channel_id, c.story_id)} if held else set()
        if not confirmations:
            return set()
        rows = await self._rows(
            f"""
            WITH sent (channel_id, story_id, message_id, heat, style, at) AS (
                VALUES {values_rows(CONFIRMATION_TYPES, len(confirmations))}
            )
            UPDATE deliveries SET
                state = ?, message_id = sent.message_id, sent_at = sent.at, last_error = NULL,
                {posted_look("sent.heat", "sent.style")}
            FROM sent JOIN stories s ON s.id = sent.story_id
            WHERE deliveries.channel_id = sent.channel_id AND deliveries.story = s.rowid
              AND (deliveries.state = ? OR deliveries.claimed_by = ?)
            RETURNING deliveries.channel_id,
                (SELECT id FROM stories WHERE rowid = deliveries.story) AS story_id
            """,
            (
                *(
                    value
                    for c in confirmations
                    for value in (
                        c.channel_id,
                        c.story_id,
                        c.message_id,
                        c.heat,
                        str(c.style),
                        to_epoch(c.at),
                    )
                ),
                DeliveryState.SENT,
                DeliveryState.PENDING,
                holder,
            ),
        )
        return {(row["channel_id"], row["story_id"]) for row in rows}

    async def active_subscriptions(self, channel_id: int) -> list[Subscription]:
        """The channel's active subscriptions (without the last-posted lookup: cheap)."""
        return await self._bare_subscriptions(
            "sub.channel_id = ? AND sub.paused_reason IS NULL AND sub.paused_by IS NULL",
            (channel_id,),
        )

    async def delivery_record(self, channel_id: int, story_id: str) -> tuple[Record | None, int]:
        """The channel's delivery of a story (None: never recorded), and for a due one how
        many of the channel's due stories are posted before it."""
        row = await self._row(
            """
            SELECT d.state, d.guild_id, d.message_id, coalesce(d.sent_at, d.created_at) AS at,
                   d.last_error, s.removed_at IS NOT NULL AS removed, (
                       SELECT count(*) FROM deliveries o JOIN stories os ON os.rowid = o.story
                       WHERE o.channel_id = d.channel_id AND o.state = d.state
                         AND (os.published_at, os.rowid) < (s.published_at, s.rowid)
                   ) AS ahead
            FROM deliveries d JOIN stories s ON s.rowid = d.story
            WHERE d.channel_id = ? AND s.id = ?
            """,
            (channel_id, story_id),
        )
        if row is None:
            return None, 0
        from core.planner import Record  # the planner is delivery's: not loaded by the CLI

        record = Record(
            state=DeliveryState(row["state"]),
            guild_id=row["guild_id"],
            channel_id=channel_id,
            message_id=row["message_id"],
            at=from_epoch(row["at"]),
            error=row["last_error"],
            removed=bool(row["removed"]),
        )
        return record, row["ahead"]

    # -- internals -----------------------------------------------------------------

    async def _bare_subscriptions(self, condition: str, params: Params) -> list[Subscription]:
        """Subscriptions matching `condition` (over `sub` and its topic `t`), by topic,
        without the last story posted for each."""
        rows = await self._rows(
            f"""
            SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions sub JOIN topics t ON t.id = sub.topic
            WHERE {condition} ORDER BY t.key
            """,
            params,
        )
        return [subscription_from_row(r) for r in rows]

    async def _subscriptions(self, condition: str, params: Params) -> list[Subscription]:
        """Subscriptions matching `condition` (over `sub` and its topic `t`), each with the
        last story posted for it (`last_story`, `last_posted_at`)."""
        query = f"""
            SELECT found.*, last_story.title AS last_story, last.sent_at AS last_posted_at
            FROM (
                SELECT {SUBSCRIPTION_COLUMNS}, t.key AS sub_key, (
                    SELECT d.story FROM deliveries d
                    JOIN story_topics st ON st.story = d.story AND st.topic = sub.topic
                    WHERE d.channel_id = sub.channel_id AND d.state = ?
                    ORDER BY d.sent_at DESC LIMIT 1
                ) AS last_story_rowid
                FROM subscriptions sub JOIN topics t ON t.id = sub.topic
                WHERE {condition}
            ) found
            LEFT JOIN stories last_story ON last_story.rowid = found.last_story_rowid
            LEFT JOIN deliveries last
                ON last.channel_id = found.sub_channel_id AND last.story = found.last_story_rowid
            ORDER BY found.sub_channel_id, found.sub_key
        """
        rows = await self._rows(query, (DeliveryState.SENT, *params))
        return [subscription_from_row(row, with_last=True) for row in rows]

    async def _drop_unsubscribed_pending(self, channel_id: int) -> None:
        """Unsent deliveries no remaining subscription of the channel wants are dropped."""
        await self._execute(
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

    async def record_posted(
        self, channel_id: int, story_id: str, heat: int, style: PostStyle = PostStyle.FULL
    ) -> None:
        """What a post shows as it goes out: its look, its heat and the story's coverage."""
        await self._execute(
            f"""
            UPDATE deliveries SET {POSTED_LOOK}
            WHERE channel_id = ? AND story = (SELECT rowid FROM stories WHERE id = ?)
            """,
            (heat, heat, str(style), channel_id, story_id),
        )

    async def live_posts(self, since: datetime, shards: Shards = EVERY_SHARD) -> list[LivePost]:
        """Posts sent since `since` whose story's heat or coverage grew since last shown.

        The planner decides which of them to edit (`plan_edit`). Link posts are left
        alone (a bare URL: Discord's preview shows the page, nothing of ours to edit);
        posts from before the bot recorded what they show, too, and those from before it
        recorded their look unless a `full` subscription covers the story (a card).
        Only those in guilds on `shards`.
        """
        on_shards, shard_params = shard_condition("d.guild_id", shards)
        query = f"""
            SELECT {LIVE_POST_COLUMNS}
            FROM deliveries d JOIN stories s ON s.rowid = d.story
            LEFT JOIN providers p ON p.id = s.provider_id
            WHERE d.state = ? AND d.sent_at >= ? AND d.message_id IS NOT NULL
              AND d.live_stopped = 0 AND d.shown_heat IS NOT NULL AND {VISIBLE}
              AND coalesce(d.style, 'full') != 'link'
              AND (s.heat > d.shown_heat OR now_coverage > d.shown_coverage)
              AND {on_shards}
            ORDER BY d.channel_id, d.sent_at
        """
        rows = await self._rows(query, (DeliveryState.SENT, to_epoch(since), *shard_params))
        return [live_post_from_row(row) for row in rows]

    async def message_posts(self, channel_id: int, message_id: int) -> list[LivePost]:
        """Every story one sent message carries (a compact message holds several), in the
        order they were posted, with what the message shows of each."""
        query = f"""
            SELECT {LIVE_POST_COLUMNS}
            FROM deliveries d JOIN stories s ON s.rowid = d.story
            LEFT JOIN providers p ON p.id = s.provider_id
            WHERE d.channel_id = ? AND d.message_id = ? AND d.state = ?
            ORDER BY s.published_at, s.rowid
        """
        rows = await self._rows(query, (channel_id, message_id, DeliveryState.SENT))
        return [live_post_from_row(row) for row in rows]

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
        await self._execute(
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
        rows = await self._rows(
            f"""
            SELECT {SUBSCRIPTION_COLUMNS},
                   (SELECT max(period_end) FROM digests g WHERE g.subscription = sub.id)
                       AS last_period_end
            FROM subscriptions sub JOIN topics t ON t.id = sub.topic
            WHERE sub.digest IS NOT NULL
            ORDER BY sub.channel_id, sub.id
            """
        )
        return [(subscription_from_row(row), from_epoch(row["last_period_end"])) for row in rows]

    async def collected_stories(
        self, subscription_id: int, start: datetime, end: datetime
    ) -> list[tuple[Story, datetime]]:
        """Visible stories the subscription collected in (start, end], with when."""
        query = f"""
            SELECT i.collected_at AS item_collected_at, {STORY_COLUMNS}
            FROM digest_items i JOIN stories s ON s.rowid = i.story
            LEFT JOIN providers p ON p.id = s.provider_id
            WHERE i.subscription = ? AND i.seen = 0 AND i.collected_at > ?
              AND i.collected_at <= ? AND {VISIBLE}
        """
        rows = await self._rows(query, (subscription_id, to_epoch(start), to_epoch(end)))
        return [(story_from_row(row), from_epoch(row["item_collected_at"])) for row in rows]

    async def record_digest(
        self,
        subscription: Subscription,
        start: datetime,
        end: datetime,
        story_ids: list[str],
        now: datetime,
    ) -> None:
        """Record a period's digest before it is sent: pending, or empty (nothing to send).

        A period already recorded is kept as it is (one statement: nothing to make atomic).
        """
        await self._execute(
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
                pack_story_ids(story_ids),
                to_epoch(now),
            ),
        )

    async def digests(self, state: str, shards: Shards = EVERY_SHARD) -> list[Digest]:
        """Recorded digests in `state` ('pending' or 'sending'), with their stories, of
        guilds on `shards`.

        Pending digests of a subscription paused by staff wait until it resumes.
        """
        on_shards, shard_params = shard_condition("g.guild_id", shards)
        rows = await self._rows(
            f"""
            SELECT g.subscription, g.guild_id, g.channel_id, g.period_start, g.period_end,
                   g.stories, g.sent_at, sub.digest AS kind, t.name AS topic,
                   sub.mention_role_id
            FROM digests g JOIN subscriptions sub ON sub.id = g.subscription
            JOIN topics t ON t.id = sub.topic
            WHERE g.state = ? AND (g.state = 'sending' OR sub.paused_by IS NULL)
              AND {on_shards}
            ORDER BY g.channel_id, g.period_end
            """,
            (state, *shard_params),
        )
        found = []
        for row in rows:
            ids = unpack_story_ids(row["stories"])
            stories = {story.id: story for story in await self._stories_by_id(ids)}
            found.append(
                Digest(
                    subscription_id=row["subscription"],
                    guild_id=row["guild_id"],
                    channel_id=row["channel_id"],
                    start=from_epoch(row["period_start"]),
                    end=from_epoch(row["period_end"]),
                    # In the digest's order; a story gone from the store since is left out.
                    stories=[stories[i] for i in ids if i in stories],
                    started_at=from_epoch(row["sent_at"]),
                    kind=row["kind"] or "daily",
                    topic=row["topic"],
                    mention_role_id=row["mention_role_id"],
                )
            )
        return found

    async def mark_digest(
        self,
        subscription_id: int,
        end: datetime,
        state: str,
        now: datetime,
        *,
        message_id: int | None = None,
        error: str | None = None,
        holder: str | None = None,
    ) -> bool:
        """Move one digest to `state`, as `mark_delivery` does for a delivery (with a
        `holder`: only a pending digest or one that process claimed)."""
        started = state in ("sending", "sent")
        guard = "" if holder is None else " AND (state = 'pending' OR claimed_by = ?)"
        params: tuple[object, ...] = (
            state,
            message_id,
            to_epoch(now) if started else None,
            int(state == "sending"),
            error,
            subscription_id,
            to_epoch(end),
        )
        changed = await self._execute(
            f"""
            UPDATE digests SET
                state = ?,
                message_id = coalesce(?, message_id),
                sent_at = coalesce(?, sent_at),
                attempts = attempts + ?,
                last_error = ?
            WHERE subscription = ? AND period_end = ?{guard}
            """,
            params if holder is None else (*params, holder),
        )
        return changed > 0

    async def _stories_by_id(self, ids: list[str]) -> list[Story]:
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        query = f"SELECT {STORY_COLUMNS} FROM {STORY_FROM} WHERE s.id IN ({marks})"
        return [story_from_row(row) for row in await self._rows(query, ids)]
