"""What a subscription asks for: its keyword filters.

Plain functions over `Story` and `Subscription`, used by the planner (core/planner.py).
"""

from __future__ import annotations

import re

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
