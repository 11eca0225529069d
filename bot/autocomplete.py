"""Story and topic options shared by the cogs: autocomplete choices (at most 25, names of
at most 100 characters) and turning what was typed into a story.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from discord import app_commands

from bot import embeds
from bot.errors import UserError
from core.models import Story

if TYPE_CHECKING:
    from bot.app import NewsBot

LOADING = "The news archive is still loading; try again in a moment."
STORY_REMOVED = "That story is no longer in the archive."


async def topic_choices(store, current: str) -> list[app_commands.Choice[str]]:
    topics = await store.topics(current, limit=embeds.CHOICES_LIMIT)
    return [
        app_commands.Choice(
            name=embeds.choice_name(f"{t.name} ({t.count})"),
            value=t.name[: embeds.CHOICE_NAME_LIMIT],
        )
        for t in topics
    ]


async def story_choices(store, current: str) -> list[app_commands.Choice[str]]:
    stories = await store.find_stories(current, limit=embeds.CHOICES_LIMIT)
    return [
        app_commands.Choice(
            name=embeds.choice_name(f"{embeds.truncate(s.title, 85)} · {s.id}"), value=s.id
        )
        for s in stories
    ]


async def unknown_topic(bot: NewsBot, topic: str) -> str:
    """The answer to a `topic:` naming no topic: the closest names (escaped), if any."""
    if not bot.archive_loaded.is_set():
        return LOADING
    close = await bot.store.closest_topics(topic)
    shown = embeds.plain_truncated(topic, 80)
    if close:
        names = ", ".join(f"**{embeds.plain(c)}**" for c in close)
        return f"There is no topic “{shown}”. Did you mean {names}? See all with /topics."
    return f"There is no topic “{shown}”. See the topics with /topics."


async def resolve_story(bot, text: str) -> Story:
    """The story a `story:` option names: a short id, else the best match of title words."""
    text = text.strip()
    found = await bot.store.story(text)
    if found is None:  # typed words instead of choosing: take the best title match
        matches = await bot.store.find_stories(text, limit=1)
        found = matches[0] if matches else None
    if found is None:
        if not bot.archive_loaded.is_set():
            raise UserError(LOADING)
        raise UserError(
            f"No story matches “{embeds.plain_truncated(text, 80)}”. "
            "Pick one from the suggestions, or find it with /news query:…"
        )
    return found
