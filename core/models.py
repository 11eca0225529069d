"""The news domain's small value objects, shared by the archive, the store and the cogs."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

# A story's short id (`core.archive.short_id`): eight characters of base32, a-z and 2-7.
# Commands, buttons' custom ids and embed footers all carry it; match it with this.
STORY_ID_PATTERN = "[a-z2-7]{8}"


@dataclass(frozen=True, slots=True)
class Coverage:
    """One curated `related:` link of a story: coverage of the same news elsewhere."""

    title: str
    url: str
    provider: str = ""
    excerpt: str = ""
    published_at: datetime | None = None
    type: str = "article"


@dataclass(frozen=True, slots=True)
class Story:
    """One news item of the archive, identified by its canonical (normalised) URL.

    `id` is the short id people type (`/story story:ab12cd34`); it is derived
    from the canonical URL, so it is stable across renames and re-ingests.
    """

    id: str
    url: str  # the link as the archive wrote it
    title: str
    canonical: str = ""  # the normalised URL: the story's identity
    excerpt: str = ""
    published_at: datetime | None = None
    type: str = "article"
    heat: int = 0
    quality: int | None = None
    published: bool = True
    provider: str = ""
    provider_domain: str = ""
    provider_icon: str | None = None
    image_url: str | None = None
    topics: tuple[str, ...] = ()
    related: tuple[Coverage, ...] = field(default=(), compare=False)
    # Set by the store only.
    first_seen_at: datetime | None = field(default=None, compare=False)
    heat_changed_at: datetime | None = field(default=None, compare=False)

    @property
    def is_video(self) -> bool:
        return self.type == "video"


@dataclass(frozen=True, slots=True)
class Rejection:
    """An archive file that is not a story, with a one-line reason for the operator."""

    path: str
    reason: str


@dataclass(frozen=True, slots=True)
class Skipped:
    """An archive file that is valid but not a news story (another `category`)."""

    path: str
    category: str


@dataclass(frozen=True, slots=True)
class TopicCount:
    name: str
    count: int


@dataclass(frozen=True, slots=True)
class Page:
    """One page of stories plus the total, so replies can say "page 2 of 7".

    `total_is_estimate`: there are more than `total` matches, but only `total` of them
    can be paged through (a search of a large archive ranks a bounded set): "1000+".
    """

    stories: list[Story]
    total: int
    offset: int
    limit: int
    total_is_estimate: bool = False

    @property
    def has_next(self) -> bool:
        return self.offset + len(self.stories) < self.total


@dataclass(frozen=True, slots=True)
class Related:
    """What `/related` shows: the curated coverage and the archive's similar stories."""

    story: Story
    coverage: list[Coverage]
    similar: list[Story]


class PostStyle(StrEnum):
    """How a subscription's posts look; the database stores these strings."""

    FULL = "full"  # the story embed with its buttons
    COMPACT = "compact"  # one line: title as a link, source, heat (several per message)
    LINK = "link"  # the bare URL: Discord's own preview shows


# Discord's auto-archive durations, in minutes, by the names /subscribe offers.
THREAD_ARCHIVE_MINUTES = {"1 hour": 60, "1 day": 1440, "3 days": 4320, "1 week": 10080}


@dataclass(frozen=True, slots=True)
class Subscription:
    """A channel's standing order for a topic's hot stories."""

    id: int
    guild_id: int
    channel_id: int
    topic: str
    min_heat: int
    keywords: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    mention_role_id: int | None = None
    paused_reason: str | None = None
    created_at: datetime | None = None
    last_story: str | None = None  # title of the last story posted for it
    last_posted_at: datetime | None = None
    match_any: bool = False  # keywords: any of them is enough (default: all of them)
    paused_by: int | None = None  # a person paused it (apart from `paused_reason`)
    paused_by_at: datetime | None = None  # when that person paused it
    style: PostStyle = PostStyle.FULL
    thread: bool = False  # open a discussion thread on each post (text channels)
    thread_archive: int = 1440  # minutes of quiet before a thread or forum post archives
    live: bool = True  # its posts are edited when the story's heat rises or coverage arrives
    digest: str | None = None  # "daily" or "weekly": one message per period, not per story
    digest_hour: int = 0  # UTC hour the digest goes out
    digest_day: int = 0  # weekly digests: 0 = Monday … 6 = Sunday
    digest_size: int = 5  # stories per digest

    @property
    def active(self) -> bool:
        """Posting: neither paused by someone nor by the bot (a missing permission)."""
        return self.paused_reason is None and self.paused_by is None


class DeliveryState(StrEnum):
    """A delivery's state; the database stores these strings."""

    SEEN = "seen"  # qualified when the channel subscribed (or resumed): not posted
    PENDING = "pending"  # due
    SENDING = "sending"  # a send started and its outcome is not recorded yet
    SENT = "sent"
    DROPPED = "dropped"  # no longer postable; its error says why


@dataclass(frozen=True, slots=True)
class Delivery:
    """One story due to (or being) posted to one channel."""

    channel_id: int
    guild_id: int
    story: Story
    state: DeliveryState
    attempts: int = 0
    visible: bool = True  # published and still in the archive
    removed: bool = False  # its file is missing from the archive (it may come back)
    started_at: datetime | None = None  # when the last send of it started
    pinned: bool = False  # the story is pinned in the delivery's guild (its card says so)


@dataclass(frozen=True, slots=True)
class Confirmation:
    """A claimed delivery that went out: its message, what the post shows, and when."""

    channel_id: int
    story_id: str
    message_id: int
    heat: int
    style: PostStyle
    at: datetime


@dataclass(frozen=True, slots=True)
class Pin:
    """A story message pinned in a channel; `pinned_by` is None when pinned outside the bot."""

    guild_id: int
    channel_id: int
    message_id: int
    story: Story
    pinned_by: int | None
    pinned_at: datetime

    @property
    def jump_url(self) -> str:
        return f"https://discord.com/channels/{self.guild_id}/{self.channel_id}/{self.message_id}"


@dataclass(frozen=True, slots=True)
class Digest:
    """One period's digest of a subscription, recorded before it is sent."""

    subscription_id: int
    guild_id: int
    channel_id: int
    start: datetime
    end: datetime
    stories: list[Story]
    kind: str = "daily"  # or "weekly"
    topic: str = ""
    started_at: datetime | None = None  # when the last send started
    mention_role_id: int | None = None  # the role the subscription pings
