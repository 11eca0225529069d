"""What a subscription asks for: keyword filters, and which of a topic's stories qualify.

Plain functions over `Story` and `Subscription`, used by the deliverer (what to post)
and by `/subscribe` (what will happen, and if nothing, why).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from core.models import Story, Subscription


def parse_terms(text: str | None) -> tuple[str, ...]:
    """Keyword terms as typed: comma-separated phrases, or else space-separated words."""
    if not text:
        return ()
    parts = text.split(",") if "," in text else text.split()
    terms = [" ".join(p.split()).casefold() for p in parts]
    return tuple(dict.fromkeys(t for t in terms if t))[:20]


def _has_term(text: str, term: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(term)}(?!\w)", text) is not None


def wants(subscription: Subscription, story: Story) -> bool:
    """Whether the subscription asks for the story: topic, heat and keyword filters."""
    topic = subscription.topic.casefold()
    return (
        any(t.casefold() == topic for t in story.topics)
        and story.heat >= subscription.min_heat
        and matches_filters(story, subscription)
    )


def has_keywords(story: Story, subscription: Subscription) -> bool:
    """The `keywords` filter: all of them (or any, with match any) in the title or excerpt."""
    if not subscription.keywords:
        return True
    text = f"{story.title}\n{story.excerpt}".casefold()
    found = (_has_term(text, term) for term in subscription.keywords)
    return any(found) if subscription.match_any else all(found)


def excluded_by(story: Story, subscription: Subscription) -> str | None:
    """The first `exclude` term the story has (whole word, any case), if any."""
    text = f"{story.title}\n{story.excerpt}".casefold()
    return next((term for term in subscription.exclude if _has_term(text, term)), None)


def is_excluded(story: Story, subscription: Subscription) -> bool:
    return excluded_by(story, subscription) is not None


def matches_filters(story: Story, subscription: Subscription) -> bool:
    """Whole-word, case-insensitive keyword filters on the title and excerpt."""
    return has_keywords(story, subscription) and not is_excluded(story, subscription)


@dataclass
class Qualification:
    """Which of a topic's current stories a subscription would post, and why not the rest.

    Each story is counted once, under the first test it fails, in the order of the fields.
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
    cutoff: datetime | None,
    already_here: Collection[str] = (),
) -> Qualification:
    """Sort a topic's visible stories into those the subscription would post now and the rest."""
    result = Qualification()
    for story in stories:
        result.total += 1
        if cutoff is not None and (story.published_at is None or story.published_at < cutoff):
            result.too_old += 1
        elif story.heat < subscription.min_heat:
            result.too_cold += 1
        elif not has_keywords(story, subscription):
            result.without_keywords += 1
        elif is_excluded(story, subscription):
            result.excluded += 1
        elif story.id in already_here:
            result.already_here += 1
        else:
            result.stories.append(story)
    result.stories.sort(
        key=lambda s: (s.heat, s.published_at.timestamp() if s.published_at else 0), reverse=True
    )
    return result
