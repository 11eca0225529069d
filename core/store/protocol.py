"""The store's contract: what the bot, the cogs, delivery, the CLI and ingest may call.

`core.store.Store` (SQLite) implements `NewsStore`; a second backend implements the
same two protocols and passes the same tests. Nothing outside `core.store` touches a
connection or writes SQL.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol, TypeAlias

from core.models import (
    Confirmation,
    Delivery,
    DeliveryState,
    Digest,
    Page,
    Pin,
    PostStyle,
    Rejection,
    Related,
    Story,
    Subscription,
    TopicCount,
)
from core.sharding import EVERY_SHARD, Shards
from core.store.source_state import SourceState

if TYPE_CHECKING:  # the parser (and YAML) is ingest's: the read commands never load it
    from core.archive import ArchiveFile, ParseResult
    from core.planner import LivePost, Record

# One parsed archive file as ingest hands it over: the file, its content hash, what it
# holds, and the story's content fingerprint (`core.fingerprint`) if computed already.
ParsedFile: TypeAlias = "tuple[ArchiveFile, str, ParseResult, str | None]"


@dataclass
class WriteCounts:
    added: int = 0
    updated: int = 0
    unchanged: int = 0


class ArchiveWriter(Protocol):
    """Ingest's side of the store, for one ingest: synchronous, used from one thread.

    Ingest is bulk work off the event loop (`core.ingest.ingest` runs it in a thread);
    a writer is opened with `NewsStore.archive_writer()` and closed when ingest ends.
    """

    def close(self) -> None: ...

    def state(self, key: str) -> str | None: ...

    def set_states(self, values: dict[str, str]) -> None: ...

    def stamps_between(self, low: str, high: str | None) -> list[tuple[str, int, int]]:
        """(path, size, mtime_ns) tuples of the archive files the store knows from `low`
        (included) to `high` (excluded; None: to the last), in path order (code points)."""
        ...

    def has_files(self, low: str, high: str | None) -> bool:
        """Does the store know an archive file in `stamps_between`'s range?"""
        ...

    def known_stamps_of(self, paths: list[str]) -> dict[str, tuple[int, int]]:
        """(size, mtime_ns) of the given paths only: a rescan of what git says changed."""
        ...

    def source_names(self) -> set[str]:
        """The sources (of a sources file) the store has followed."""
        ...

    def source_states(self) -> dict[str, SourceState]: ...

    def save_source_state(self, state: SourceState) -> None: ...

    def file_count(self, prefix: str = "") -> int:
        """Story files (or feed items) a source carries."""
        ...

    def carried_elsewhere(self, canonicals: list[str], prefix: str) -> set[str]:
        """The stories among `canonicals` that a file outside this source carries."""
        ...

    def carry(self, items: list[tuple[str, str, str]]) -> None:
        """Record (path, hash, canonical) items that carry a story another source shows."""
        ...

    def note_sources(self, source: str, stories: list[Story], now: datetime) -> None:
        """Remember that `source` carries these stories."""
        ...

    def known_hashes(self, paths: list[str]) -> dict[str, str]:
        """path -> content hash, for the given paths that the store knows."""
        ...

    def sibling_paths(self, paths: list[str]) -> list[str]:
        """Other files carrying a story that one of `paths` carries (the same URL twice)."""
        ...

    def write(self, batch: list[ParsedFile], now: datetime) -> tuple[WriteCounts, list[Rejection]]:
        """Apply one batch atomically; returns the counts and stories rejected on the way."""
        ...

    def touch_files(self, files: list[ArchiveFile]) -> None:
        """Record a new size/mtime for files whose content hash did not change."""
        ...

    def forget_files(self, paths: list[str]) -> None: ...

    def mark_removed(self, now: datetime) -> int:
        """Hide stories no archive file carries any more; returns how many were hidden."""
        ...

    def count_topics(self) -> None: ...

    def count_terms(self) -> None: ...

    def not_stories(self) -> tuple[list[Rejection], int]:
        """The rejected files (in path order) and how many were skipped (not news)."""
        ...

    def unpublished_count(self) -> int: ...

    def ingest_unfinished(self) -> bool:
        """Did an abandoned ingest write batches that no complete scan has followed yet?"""
        ...

    def set_ingest_unfinished(self, unfinished: bool) -> None: ...


class NewsStore(Protocol):
    """The bot's async handle on stories, subscriptions, deliveries and pins."""

    async def close(self) -> None: ...

    async def checkpoint(self) -> None:
        """Between polls: the backend's housekeeping of its write-ahead log, kept off the
        commits that delay a post (SQLite: a passive WAL checkpoint)."""
        ...

    def atomic(self) -> AbstractAsyncContextManager[None]:
        """A transaction (a savepoint when nested): all of it happens, or none of it."""
        ...

    def archive_writer(self) -> ArchiveWriter:
        """A writer for one ingest (synchronous: use it from a worker thread)."""
        ...

    async def get_state(self, key: str) -> str | None: ...

    async def set_state(self, key: str, value: str) -> None: ...

    # -- stories -------------------------------------------------------------------

    async def story(self, story_id: str) -> Story | None: ...

    async def stories(
        self,
        topic: str | None = None,
        sort: str = "hot",
        *,
        min_heat: int | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 10,
        offset: int = 0,
    ) -> Page: ...

    async def search(
        self,
        text: str,
        topic: str | None = None,
        sort: str = "relevance",
        *,
        min_heat: int | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 10,
        offset: int = 0,
    ) -> Page: ...

    async def find_stories(self, text: str, limit: int = 25) -> list[Story]: ...

    async def topics(self, prefix: str = "", limit: int = 25) -> list[TopicCount]: ...

    async def topic_name(self, topic: str) -> str | None: ...

    async def closest_topics(self, topic: str, n: int = 3) -> list[str]: ...

    async def related(self, story_id: str, limit: int = 5) -> Related | None: ...

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
    ) -> Subscription | None: ...

    async def subscription(self, channel_id: int, topic: str) -> Subscription | None: ...

    async def unsubscribe(self, channel_id: int, topic: str | None) -> int: ...

    async def subscriptions(
        self, guild_id: int, channel_id: int | None = None
    ) -> list[Subscription]: ...

    async def channel_subscriptions(
        self, channel_id: int, *, last: bool = True
    ) -> list[Subscription]:
        """The channel's subscriptions (`last`: with the last story posted for each)."""
        ...

    async def subscriptions_of_channels(
        self, channel_ids: Sequence[int]
    ) -> dict[int, list[Subscription]]:
        """The subscriptions of these channels (without the last posted), by channel."""
        ...

    async def active_subscriptions(self, channel_id: int) -> list[Subscription]: ...

    async def delete_channel(self, channel_id: int) -> int: ...

    async def delete_guild(self, guild_id: int) -> int: ...

    async def pause_channel(self, channel_id: int, reason: str, now: datetime) -> None: ...

    async def resume_channel(self, channel_id: int) -> None: ...

    async def paused_channels(self) -> list[tuple[int, int, str]]: ...

    async def claim_notice(self, channel_id: int, reason: str, now: datetime) -> bool: ...

    async def clear_notice(self, channel_id: int) -> None: ...

    async def noticed_channels(self) -> set[int]: ...

    # -- deliveries ----------------------------------------------------------------

    async def topic_stories(self, topic: str) -> list[Story]: ...

    async def channel_story_ids(self, channel_id: int, topic: str) -> set[str]: ...

    async def changed_candidates(self) -> tuple[list[tuple[Story, list[Subscription]]], int]:
        """Stories changed since the last poll with one subscription of each kind of
        filters that may want it, and the change sequence for `advance_watermark`."""
        ...

    async def record_fanout(self, story_id: str, subscription_id: int, now: datetime) -> int:
        """Record the story as due for every subscription with this one's filters: one
        fan-out, whose deliveries `fan_out` writes."""
        ...

    async def fan_out(self, channels: int) -> int | None:
        """Write the next `channels` deliveries of the oldest fan-out, in one transaction;
        how many were new (None: no fan-out left)."""
        ...

    async def collect_like(self, story_id: str, subscription_id: int, now: datetime) -> int:
        """Collect the story for the digest of every digest subscription with these filters."""
        ...

    async def mark_collected_seen(
        self, subscription_id: int, story_ids: list[str], now: datetime
    ) -> None:
        """Stories that qualified before a digest subscription started: never in a digest."""
        ...

    async def advance_watermark(self, seq: int) -> None: ...

    async def record_deliveries(
        self, rows: list[tuple[int, int, str, DeliveryState]], now: datetime
    ) -> int: ...

    async def due_deliveries(
        self,
        states: tuple[DeliveryState, ...] = (DeliveryState.PENDING,),
        channel_id: int | None = None,
        *,
        shards: Shards = EVERY_SHARD,
        claimed_by: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Delivery]: ...

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
    ) -> bool: ...

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
        """A claimed delivery went out: sent, and what its post shows, in one statement."""
        ...

    async def confirm_delivery_batch(
        self, confirmations: list[Confirmation], holder: str
    ) -> set[tuple[int, str]]:
        """Several confirmations in one statement; the (channel, story) that held."""
        ...

    async def delivery_record(self, channel_id: int, story_id: str) -> tuple[Record | None, int]:
        """The channel's delivery of a story (None: never), and how many due ones precede it."""
        ...

    # -- posts that stay current ---------------------------------------------------

    async def record_posted(
        self, channel_id: int, story_id: str, heat: int, style: PostStyle = PostStyle.FULL
    ) -> None:
        """What a post shows as it goes out: its look, its heat and the story's coverage."""
        ...

    async def live_posts(self, since: datetime, shards: Shards = EVERY_SHARD) -> list[LivePost]:
        """Posts sent since `since` whose story's heat or coverage grew since last shown."""
        ...

    async def message_posts(self, channel_id: int, message_id: int) -> list[LivePost]:
        """Every story one sent message carries, in posting order, with what it shows."""
        ...

    async def record_edit(
        self,
        channel_id: int,
        story_id: str,
        now: datetime,
        *,
        heat: int | None = None,
        coverage: int | None = None,
        stopped: bool = False,
    ) -> None: ...

    # -- digests -------------------------------------------------------------------

    async def digest_subscriptions(self) -> list[tuple[Subscription, datetime | None]]:
        """Every digest subscription, with the end of its last recorded digest period."""
        ...

    async def collected_stories(
        self, subscription_id: int, start: datetime, end: datetime
    ) -> list[tuple[Story, datetime]]:
        """Visible stories the subscription collected in (start, end], with when."""
        ...

    async def record_digest(
        self,
        subscription: Subscription,
        start: datetime,
        end: datetime,
        story_ids: list[str],
        now: datetime,
    ) -> None:
        """Record a period's digest before it is sent: pending, or empty."""
        ...

    async def digests(self, state: str, shards: Shards = EVERY_SHARD) -> list[Digest]:
        """Recorded digests in `state` ('pending' or 'sending'), with their stories."""
        ...

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
    ) -> bool: ...

    # -- several processes: leases and claims (core/store/claims.py) ---------------

    async def take_lease(self, name: str, holder: str, now: datetime, until: datetime) -> bool:
        """Take or renew a lease; False while another holder's has not expired."""
        ...

    async def release_lease(self, name: str, holder: str) -> None: ...

    async def leases(self) -> list[tuple[str, str, datetime]]:
        """(name, holder, expires at) of every lease, expired or not."""
        ...

    async def claim_deliveries(
        self, channel_id: int, story_ids: list[str], holder: str, now: datetime
    ) -> set[str]:
        """Pending → sending for this process, atomically; the story ids it got."""
        ...

    async def claim_delivery_batch(
        self, claims: list[tuple[int, str, datetime]], holder: str
    ) -> set[tuple[int, str]]:
        """Claims of (channel, story, send start) of several channels in one statement."""
        ...

    async def release_claims(self, channel_id: int, story_ids: list[str], holder: str) -> int:
        """This process's claims whose send never started: pending again."""
        ...

    async def take_over_deliveries(
        self, holder: str, now: datetime, shards: Shards
    ) -> set[tuple[int, str]]:
        """Claims of dead processes become this one's, to reconcile: (channel, story)."""
        ...

    async def claim_digest(
        self, subscription_id: int, end: datetime, holder: str, now: datetime
    ) -> bool: ...

    async def take_over_digests(
        self, holder: str, now: datetime, shards: Shards
    ) -> set[tuple[int, datetime]]: ...

    # -- pins ----------------------------------------------------------------------

    async def record_pin(
        self,
        *,
        guild_id: int,
        channel_id: int,
        message_id: int,
        story_id: str,
        pinned_by: int | None,
        now: datetime,
    ) -> bool: ...

    async def remove_pins(self, message_ids: Iterable[int]) -> list[Pin]: ...

    async def pin(self, message_id: int) -> Pin | None: ...

    async def channel_pins(self, channel_id: int, story_id: str | None = None) -> list[Pin]: ...

    async def guild_pins(self, guild_id: int) -> list[Pin]: ...

    async def is_story_pinned(self, guild_id: int | None, story_id: str) -> bool: ...

    async def pinned_message_ids(self, channel_id: int) -> set[int]: ...

    async def pin_channels(self) -> list[tuple[int, int]]: ...

    async def delete_channel_pins(self, channel_id: int) -> int: ...

    async def delete_guild_pins(self, guild_id: int) -> int: ...
