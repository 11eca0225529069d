"""Reading the news: `/news`, `/story`, `/related`, `/topics`."""

from __future__ import annotations

import logging
from enum import Enum
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot import embeds
from bot.autocomplete import (
    LOADING,
    STORY_REMOVED,
    resolve_story,
    story_choices,
    topic_choices,
    unknown_topic,
)
from bot.errors import UserError
from bot.views import NO_MENTIONS, Paginator, related_view, story_view
from core.store import NewsStore

if TYPE_CHECKING:
    from bot.app import NewsBot

log = logging.getLogger(__name__)

PAGE_SIZE = 5
TOPICS_PAGE_SIZE = 20


class Sort(Enum):
    relevance = "relevance"
    hot = "hot"
    new = "new"


# How the footer of a list names its order.
ORDER_NAMES = {"relevance": "relevance", "hot": "heat", "new": "date"}


class News(commands.Cog):
    def __init__(self, bot: NewsBot) -> None:
        self.bot = bot

    @property
    def store(self) -> NewsStore:
        return self.bot.store

    # -- autocomplete -------------------------------------------------------------

    async def topic_autocomplete(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await topic_choices(self.store, current)

    async def story_autocomplete(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await story_choices(self.store, current)

    # -- commands -----------------------------------------------------------------

    @app_commands.command(name="news", description="Show the news: a topic's stories, or search")
    @app_commands.describe(
        topic="A topic, e.g. Computer Vision",
        query="Words to search for in titles and excerpts",
        sort="Best match, hottest or newest first (default: relevance with a query, else hot)",
    )
    @app_commands.autocomplete(topic=topic_autocomplete)
    async def news(
        self,
        interaction: discord.Interaction,
        topic: app_commands.Range[str, 1, 100] | None = None,
        query: app_commands.Range[str, 1, 200] | None = None,
        sort: Sort | None = None,
    ) -> None:
        topic_name = None
        if topic is not None:
            topic_name = await self.store.topic_name(topic)
            if topic_name is None:
                raise UserError(await unknown_topic(self.bot, topic))
        if sort is None:
            sort = Sort.relevance if query else Sort.hot
        elif sort is Sort.relevance and not query:
            sort = Sort.hot  # nothing to be relevant to: the hottest first
        order = sort.value

        async def render(offset: int) -> tuple[discord.Embed, int]:
            if query:
                page = await self.store.search(
                    query, topic_name, order, limit=PAGE_SIZE, offset=offset
                )
            else:
                page = await self.store.stories(topic_name, order, limit=PAGE_SIZE, offset=offset)
            title = _news_title(topic_name, query, order)
            embed = embeds.story_list_embed(
                title,
                page.stories,
                offset=offset,
                total=page.total,
                page_size=PAGE_SIZE,
                hot_heat=self.bot.config.hot_heat,
                total_is_estimate=page.total_is_estimate,
                order=ORDER_NAMES[order],
            )
            return embed, page.total

        embed, total = await render(0)
        if total == 0:
            raise UserError(await self._nothing_found(topic_name, query))
        await self._send_pages(interaction, embed, render, PAGE_SIZE, total)

    @app_commands.command(name="story", description="Show one story in full")
    @app_commands.describe(story="The story: type words of its title or its id")
    @app_commands.autocomplete(story=story_autocomplete)
    async def story(self, interaction: discord.Interaction, story: str) -> None:
        found = await resolve_story(self.bot, story)
        pinned = await self.store.is_story_pinned(interaction.guild_id, found.id)
        await interaction.response.send_message(
            embed=embeds.story_embed(found, self.bot.config.hot_heat, pinned=pinned),
            view=story_view(found),
            allowed_mentions=NO_MENTIONS,
        )

    @app_commands.command(name="related", description="Coverage and stories related to a story")
    @app_commands.describe(story="The story: type words of its title or its id")
    @app_commands.autocomplete(story=story_autocomplete)
    async def related(self, interaction: discord.Interaction, story: str) -> None:
        found = await resolve_story(self.bot, story)
        related = await self.store.related(found.id)
        if related is None:  # gone from the archive since it was found
            raise UserError(STORY_REMOVED)
        await interaction.response.send_message(
            embed=embeds.related_embed(related, self.bot.config.hot_heat),
            view=related_view(related, story_view(found)),
            allowed_mentions=NO_MENTIONS,
        )

    @app_commands.command(name="topics", description="The topics of the archive with their sizes")
    async def topics(self, interaction: discord.Interaction) -> None:
        all_topics = await self.store.topics(limit=100_000)
        if not all_topics:
            raise UserError(LOADING if not self.bot.archive_loaded.is_set() else "No topics yet.")

        async def render(offset: int) -> tuple[discord.Embed, int]:
            page = all_topics[offset : offset + TOPICS_PAGE_SIZE]
            embed = embeds.topics_embed(
                page, offset=offset, total=len(all_topics), page_size=TOPICS_PAGE_SIZE
            )
            return embed, len(all_topics)

        embed, total = await render(0)
        await self._send_pages(interaction, embed, render, TOPICS_PAGE_SIZE, total)

    # -- helpers ------------------------------------------------------------------

    async def _send_pages(self, interaction, embed, render, page_size: int, total: int) -> None:
        await Paginator(interaction.user, render, page_size, total).send(interaction, embed)

    async def _nothing_found(self, topic: str | None, query: str | None) -> str:
        if not self.bot.archive_loaded.is_set():
            return LOADING
        if query:
            where = f" in **{embeds.plain(topic)}**" if topic else ""
            return (
                f"No stories match “{embeds.plain_truncated(query, 80)}”{where}. "
                "Try fewer or other words."
            )
        return "There are no stories yet."


def _news_title(topic: str | None, query: str | None, sort: str) -> str:
    """The list's title: Discord renders Markdown there, so the topic and query are escaped."""
    order = "Hot" if sort == "hot" else "Latest"
    topic = embeds.plain(topic) if topic else topic
    query = embeds.plain_truncated(query, 120) if query else query
    if query and topic:
        return f"Stories about “{query}” in {topic}"
    if query:
        return f"Stories about “{query}”"
    if topic:
        return f"{order} in {topic}"
    return f"{order} stories"


async def setup(bot: NewsBot) -> None:
    await bot.add_cog(News(bot))
