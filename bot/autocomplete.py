"""Autocomplete choices shared by the cogs (at most 25, names of at most 100 characters)."""

from __future__ import annotations

from discord import app_commands

from bot import embeds


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
