"""The delivery planner: which stories each channel gets, and why the others are not posted.

Pure: the same subscriptions, stories, delivery records and `now` give the same
decisions; nothing here reads the clock, the database or Discord. The poller asks it
what became due (`plan_change`) and what to post now (`plan_channel`); `/why` asks it
about one story in one channel (`explain`). Each decision carries a `Reason` and the
data to say it in one sentence (`Decision.sentence`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum, StrEnum
from typing import TYPE_CHECKING, Any

from core.filters import excluded_by, has_keywords
from core.models import DeliveryState, PostStyle, Story, Subscription

if TYPE_CHECKING:
    from core.config import Config

__all__ = [
    "Action",
    "Decision",
    "DeliveryState",
    "Edit",
    "EditReason",
    "Limits",
    "LivePost",
    "Qualification",
    "Reason",
    "Record",
    "digest_due",
    "explain",
    "judge",
    "plan_change",
    "plan_channel",
    "plan_digest",
    "plan_edit",
    "qualify",
]

# Posts that stay current: a sent post is edited when its story's heat rose by a step
# (at least LIVE_HEAT_STEP_SHARE of the heat it shows, and at least LIVE_HEAT_STEP_POINTS)
# or more related coverage arrived; at most once per LIVE_EDIT_EVERY (counted from the
# post too), and only within LIVE_WINDOW of posting. Small wobbles never edit.
LIVE_HEAT_STEP_SHARE = 0.25
LIVE_HEAT_STEP_POINTS = 20
LIVE_EDIT_EVERY = timedelta(hours=1)
LIVE_WINDOW = timedelta(days=7)

DIGEST_PERIODS = {"daily": timedelta(days=1), "weekly": timedelta(days=7)}
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class Action(StrEnum):
    POST = "post"
    WAIT = "wait"  # not now, maybe later: the delivery is kept
    SKIP = "skip"  # never (a pending delivery is dropped)
    COLLECT = "collect"  # not on its own: it goes into the subscription's digest


class Reason(Enum):
    """Why a story is (not) posted in a channel; `action` is what it means for the delivery."""

    DUE = "due"
    WAITING_FOR_CAP = "waiting for the cap"
    WAITING_FOR_FILE = "waiting for its file"
    PAUSED_FOR_PERMISSION = "paused for a permission"
    BEING_SENT = "being sent"
    POSTED = "posted"
    SEEN = "seen"
    DROPPED = "dropped"
    NOT_IN_TOPIC = "not in the topics"
    UNPUBLISHED = "unpublished"
    TOO_OLD = "too old"
    BELOW_HEAT = "below heat"
    MISSING_KEYWORDS = "missing keywords"
    EXCLUDED = "excluded"
    PAUSED_BY_STAFF = "paused by staff"
    IN_DIGEST = "in a digest"

    @property
    def action(self) -> Action:
        if self is Reason.DUE:
            return Action.POST
        if self is Reason.IN_DIGEST:
            return Action.COLLECT
        if self in _WAITING:
            return Action.WAIT
        return Action.SKIP


_WAITING = {
    Reason.WAITING_FOR_CAP,
    Reason.WAITING_FOR_FILE,
    Reason.PAUSED_FOR_PERMISSION,
    Reason.BEING_SENT,
}


@dataclass(frozen=True, slots=True)
class Limits:
    """The settings the planner needs (from `Config`)."""

    max_age_hours: int = 72  # 0: no limit
    posts_per_poll: int = 5

    def cutoff(self, now: datetime) -> datetime | None:
        """Stories published before this are never pushed (None: no limit)."""
        return now - timedelta(hours=self.max_age_hours) if self.max_age_hours else None

    @classmethod
    def of(cls, config: Config) -> Limits:
        return cls(max_age_hours=config.max_age_hours, posts_per_poll=config.posts_per_poll)


@dataclass(frozen=True, slots=True)
class Record:
    """What was already done about one story in one channel (a `deliveries` row)."""

    state: DeliveryState
    guild_id: int = 0
    channel_id: int = 0
    message_id: int | None = None
    at: datetime | None = None  # when the last send started (sent) or the row was made
    error: str | None = None  # why it was dropped
    removed: bool = False  # the story's file is missing from the archive


@dataclass(frozen=True, slots=True)
class Decision:
    story: Story
    reason: Reason
    subscriptions: tuple[Subscription, ...] = ()  # who gets it (post) or whose rule said no
    now: datetime | None = None
    limits: Limits = field(default_factory=Limits)
    record: Record | None = None
    term: str = ""  # the keyword that excluded it
    ahead: int = 0  # stories ahead of it in the channel's queue

    @property
    def action(self) -> Action:
        return self.reason.action

    @property
    def subscription(self) -> Subscription | None:
        return self.subscriptions[0] if self.subscriptions else None

    def sentence(self, plain: Callable[[str], str] = str) -> str:
        """The decision in one sentence; `plain` escapes archive and typed text."""
        r, sub, story = self.reason, self.subscription, self.story
        topic = plain(sub.topic) if sub else ""
        if r is Reason.DUE:
            return "Due: it is posted at the next poll."
        if r is Reason.WAITING_FOR_CAP:
            cap = self.limits.posts_per_poll
            per = f"{cap} post{'' if cap == 1 else 's'} per poll"
            where = "it is next" if self.ahead <= cap else f"{self.ahead} stories are ahead of it"
            return f"Waiting: {per}, {where}."
        if r is Reason.WAITING_FOR_FILE:
            return "Waiting: its file is missing from the archive; it is posted when it is back."
        if r is Reason.BEING_SENT:
            return "Being posted right now."
        if r is Reason.POSTED:
            return f"Posted {self._ago()}: {self._link()}"
        if r is Reason.SEEN:
            return (
                "Not posted: it already qualified when the subscription started or resumed, "
                "so it was marked as seen."
            )
        if r is Reason.DROPPED:
            error = self.record.error if self.record else None
            return f"Not posted: {plain(error or 'dropped')}"
        if r is Reason.NOT_IN_TOPIC:
            topics = ", ".join(plain(t) for t in story.topics) or "none"
            return f"Not posted: no subscription of this channel covers its topics ({topics})."
        if r is Reason.UNPUBLISHED:
            return "Not posted: it is unpublished in the archive."
        if r is Reason.TOO_OLD:
            return f"Not posted: older than {self.limits.max_age_hours} h."
        # The other reasons are a subscription's own rule or state: it is always given.
        assert sub is not None, r
        if r is Reason.PAUSED_FOR_PERMISSION:
            return f"Waiting: the subscription is paused ({plain(sub.paused_reason or '')})."
        if r is Reason.BELOW_HEAT:
            return (
                f"Not posted: heat {story.heat} is below this subscription's "
                f"{sub.min_heat} ({topic})."
            )
        if r is Reason.MISSING_KEYWORDS:
            need = "any of" if sub.match_any else "all of"
            if len(sub.keywords) == 1:
                need = ""
            terms = ", ".join(f"'{plain(k)}'" for k in sub.keywords)
            return f"Not posted: keywords: needs {need + ' ' if need else ''}{terms} ({topic})."
        if r is Reason.EXCLUDED:
            return f"Not posted: excluded by '{plain(self.term)}' ({topic})."
        if r is Reason.PAUSED_BY_STAFF:
            return f"Not posted: paused by <@{sub.paused_by}> ({topic})."
        if r is Reason.IN_DIGEST:
            return f"Not posted on its own: it goes into the {sub.digest} digest ({topic})."
        raise AssertionError(r)

    def _ago(self) -> str:
        at = self.record.at if self.record else None
        if at is None or self.now is None:
            return "earlier"
        minutes = max(0, int((self.now - at).total_seconds() // 60))
        if minutes < 60:
            return f"{minutes} min ago"
        if minutes < 48 * 60:
            return f"{minutes // 60} h ago"
        return f"{minutes // (24 * 60)} d ago"

    def _link(self) -> str:
        rec = self.record
        assert rec is not None  # a posted story has its delivery record
        return f"https://discord.com/channels/{rec.guild_id}/{rec.channel_id}/{rec.message_id}"


def covers(subscription: Subscription, story: Story) -> bool:
    topic = subscription.topic.casefold()
    return any(t.casefold() == topic for t in story.topics)


def judge(
    story: Story,
    subscriptions: Sequence[Subscription],
    now: datetime,
    limits: Limits,
    *,
    removed: bool = False,
) -> Decision:
    """What one channel's subscriptions make of one story, whatever was delivered before.

    Rules in order: a subscription covers its topics; it is published; it is recent
    enough; a covering subscription wants it (heat, keywords, exclude); one of those is
    active; its file is there. The first that fails is the reason.
    """

    def decision(reason: Reason, subs: Iterable[Subscription] = (), **kw: Any) -> Decision:
        return Decision(story, reason, tuple(subs), now, limits, **kw)

    covering = [s for s in subscriptions if covers(s, story)]
    if not covering:
        return decision(Reason.NOT_IN_TOPIC)
    if not story.published:
        return decision(Reason.UNPUBLISHED, covering)
    cutoff = limits.cutoff(now)
    if cutoff is not None and (story.published_at is None or story.published_at < cutoff):
        return decision(Reason.TOO_OLD, covering)
    wanting, refusals = [], []
    for sub in sorted(covering, key=lambda s: s.min_heat):
        if story.heat < sub.min_heat:
            refusals.append(decision(Reason.BELOW_HEAT, [sub]))
        elif not has_keywords(story, sub):
            refusals.append(decision(Reason.MISSING_KEYWORDS, [sub]))
        elif term := excluded_by(story, sub):
            refusals.append(decision(Reason.EXCLUDED, [sub], term=term))
        else:
            wanting.append(sub)
    if not wanting:
        # The filter that came closest: a keyword refusal says more than a heat one.
        return min(refusals, key=lambda d: d.reason is Reason.BELOW_HEAT)
    active = [s for s in wanting if s.active]
    if not active:
        staff = [s for s in wanting if s.paused_by is not None]
        if staff:
            return decision(Reason.PAUSED_BY_STAFF, staff)
        return decision(Reason.PAUSED_FOR_PERMISSION, wanting)
    posting = [s for s in active if not s.digest]
    if not posting:  # only digests want it: collected, never posted on its own by them
        return decision(Reason.IN_DIGEST, active)
    if removed:
        return decision(Reason.WAITING_FOR_FILE, posting)
    return decision(Reason.DUE, posting)


def plan_change(
    story: Story, subscriptions: Sequence[Subscription], now: datetime, limits: Limits
) -> list[tuple[Subscription, Decision]]:
    """A story changed: what each subscription makes of it.

    Post, or wait (a channel paused for a missing permission): record it as due; collect:
    record it for the subscription's digest; skip: nothing to record. Subscriptions with
    the same filters decide alike, so the store may pass one of each kind.
    """
    return [(sub, judge(story, [sub], now, limits)) for sub in subscriptions]


def plan_channel(
    pending: Sequence[tuple[Story, bool]],
    subscriptions: Sequence[Subscription],
    now: datetime,
    limits: Limits,
) -> list[Decision]:
    """What to do with a channel's due stories ((story, file missing), oldest first).

    At most `posts_per_poll` are posted; the rest of those still wanted wait their turn.
    """
    decisions, postable = [], 0
    for story, removed in pending:
        decision = judge(story, subscriptions, now, limits, removed=removed)
        if decision.reason is Reason.DUE:
            if postable >= limits.posts_per_poll:
                decision = Decision(
                    story,
                    Reason.WAITING_FOR_CAP,
                    decision.subscriptions,
                    now,
                    limits,
                    ahead=postable,
                )
            postable += 1
        decisions.append(decision)
    return decisions


def explain(
    story: Story,
    subscriptions: Sequence[Subscription],
    record: Record | None,
    ahead: int,
    now: datetime,
    limits: Limits,
) -> Decision:
    """Why `story` is (or is not) posted in a channel: what `/why` says.

    `record` is the channel's delivery of it, if any; `ahead` how many of the channel's
    due stories come before it.
    """
    final = {
        DeliveryState.SENT: Reason.POSTED,
        DeliveryState.SENDING: Reason.BEING_SENT,
        DeliveryState.SEEN: Reason.SEEN,
        DeliveryState.DROPPED: Reason.DROPPED,
    }
    if record is not None and record.state in final:
        return Decision(story, final[record.state], (), now, limits, record=record)
    decision = judge(story, subscriptions, now, limits, removed=bool(record and record.removed))
    if decision.reason is Reason.DUE and ahead >= limits.posts_per_poll:
        return Decision(
            story, Reason.WAITING_FOR_CAP, decision.subscriptions, now, limits, ahead=ahead
        )
    return decision


@dataclass
class Qualification:
    """Which of a topic's current stories a subscription would post, and why not the rest.

    Each story is counted once, under the first rule it fails (see `judge`).
    """

    total: int = 0
    too_old: int = 0  # published before the age cutoff (or undated, with a cutoff)
    too_cold: int = 0  # below the subscription's heat
    without_keywords: int = 0
    excluded: int = 0
    already_here: int = 0  # already posted (or marked seen) in the channel
    stories: list[Story] = field(default_factory=list)  # qualifying, hottest first


def qualify(
    stories: Iterable[Story],
    subscription: Subscription,
    now: datetime,
    limits: Limits,
    already_here: Collection[str] = (),
) -> Qualification:
    """Sort a topic's visible stories into those the subscription would post now and the rest.

    What `/subscribe` reports (and backfills); a pause does not count: it is about what
    the subscription would post once active.
    """
    active = dataclasses.replace(subscription, paused_by=None, paused_reason=None)
    counters = {
        Reason.TOO_OLD: "too_old",
        Reason.BELOW_HEAT: "too_cold",
        Reason.MISSING_KEYWORDS: "without_keywords",
        Reason.EXCLUDED: "excluded",
    }
    result = Qualification()
    for story in stories:
        result.total += 1
        reason = judge(story, [active], now, limits).reason
        if reason in counters:
            name = counters[reason]
            setattr(result, name, getattr(result, name) + 1)
        elif reason not in (Reason.DUE, Reason.IN_DIGEST):
            continue  # not the topic's, or unpublished: the store does not pass those
        elif story.id in already_here:
            result.already_here += 1
        else:
            result.stories.append(story)
    result.stories.sort(
        key=lambda s: (s.heat, s.published_at.timestamp() if s.published_at else 0), reverse=True
    )
    return result


# -- posts that stay current ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LivePost:
    """A sent post of a story and what it shows (a sent `deliveries` row, with the story)."""

    channel_id: int
    message_id: int
    story: Story  # as it is now
    coverage: int  # its related coverage links now
    posted_at: datetime
    posted_heat: int  # what the post showed when it went out
    posted_coverage: int
    shown_heat: int  # what it shows now (posted, or last edited)
    shown_coverage: int
    edited_at: datetime | None = None  # last edit (or attempt)
    live: bool = True  # a subscription of the channel covering the story keeps posts current
    stopped: bool = False  # the message is gone: never edited again
    style: PostStyle = PostStyle.FULL  # the look it went out in: an edit keeps it


class EditReason(Enum):
    """Why a post is (not) edited now."""

    HEAT_ROSE = "heat rose"
    NEW_COVERAGE = "new coverage"
    STOPPED = "message gone"
    LIVE_OFF = "live off"
    PAST_WINDOW = "past the window"
    UNCHANGED = "no meaningful change"
    TOO_SOON = "edited less than an hour ago"


@dataclass(frozen=True, slots=True)
class Edit:
    post: LivePost
    reason: EditReason

    @property
    def due(self) -> bool:
        return self.reason in (EditReason.HEAT_ROSE, EditReason.NEW_COVERAGE)


def heat_step(shown: int, heat: int) -> bool:
    """A meaningful rise: at least LIVE_HEAT_STEP_POINTS and LIVE_HEAT_STEP_SHARE of `shown`."""
    rise = heat - shown
    return rise >= LIVE_HEAT_STEP_POINTS and rise >= LIVE_HEAT_STEP_SHARE * max(shown, 0)


def plan_edit(post: LivePost, now: datetime) -> Edit:
    """Whether to edit one sent post now, and why (not).

    Rules in order: the message still exists; a subscription keeps it current; it is
    within LIVE_WINDOW of posting; something meaningful changed since it was last shown;
    its last edit (or the post) is at least LIVE_EDIT_EVERY ago.
    """
    if post.stopped:
        return Edit(post, EditReason.STOPPED)
    if not post.live:
        return Edit(post, EditReason.LIVE_OFF)
    if now - post.posted_at > LIVE_WINDOW:
        return Edit(post, EditReason.PAST_WINDOW)
    if heat_step(post.shown_heat, post.story.heat):
        reason = EditReason.HEAT_ROSE
    elif post.coverage > post.shown_coverage:
        reason = EditReason.NEW_COVERAGE
    else:
        return Edit(post, EditReason.UNCHANGED)
    if now - (post.edited_at or post.posted_at) < LIVE_EDIT_EVERY:
        return Edit(post, EditReason.TOO_SOON)
    return Edit(post, reason)


# -- digests -------------------------------------------------------------------------


def digest_due(
    subscription: Subscription, last_end: datetime | None, now: datetime
) -> tuple[datetime, datetime] | None:
    """The period (start, end] whose digest is due now, or None.

    A period ends at the subscription's hour (UTC), daily or on its weekday. The due one
    is the latest that has ended, if its digest was not recorded yet (`last_end`: the
    end of the last recorded one) and it ended after the subscription started. It starts
    where the last one ended: after a downtime of several periods, one digest covers
    them all (nothing collected is lost), and a digest sent by `backfill` between two
    hours is not repeated.
    """
    length = DIGEST_PERIODS.get(subscription.digest or "")
    if length is None:
        return None
    end = now.replace(hour=subscription.digest_hour, minute=0, second=0, microsecond=0)
    if end > now:
        end -= timedelta(days=1)
    if subscription.digest == "weekly":
        end -= timedelta(days=(end.weekday() - subscription.digest_day) % 7)
    if last_end is not None and end <= last_end:
        return None
    if subscription.created_at is not None and end <= subscription.created_at:
        return None
    # From the last digest on: nothing collected is in two digests, or in none.
    return (last_end if last_end is not None else end - length), end


def plan_digest(
    collected: Iterable[tuple[Story, datetime]], start: datetime, end: datetime, size: int
) -> list[Story]:
    """The digest of period (start, end]: the `size` hottest stories collected in it.

    `collected` pairs each story with when it qualified (became hot) for the
    subscription; ties go to the earlier one. An empty list: nothing is sent.
    """
    inside = [(story, at) for story, at in collected if start < at <= end]
    inside.sort(key=lambda pair: (-pair[0].heat, pair[1], pair[0].id))
    return [story for story, _ in inside[: max(0, size)]]
