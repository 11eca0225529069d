"""`/news`, `/story`, `/related`, `/topics` as members use them, on the seed archive."""

from __future__ import annotations

SEED_ID = "fyjmhv5j"
SEED_TITLE = "Technologists Use Facial Recognition on Parler Videos"


async def test_news_for_a_topic_lists_its_stories(newsroom):
    result = await newsroom.member.slash(newsroom.channel, "news", topic="computer vision")
    (embed,) = result.response.embeds
    assert embed.title == "Hot in Computer Vision"
    assert embed.fields[0].name == f"1. {SEED_TITLE}"
    assert SEED_ID in embed.fields[0].value
    assert not result.response.ephemeral


async def test_unknown_topic_names_the_closest(newsroom):
    result = await newsroom.member.slash(newsroom.channel, "news", topic="Computer Visio")
    assert result.ephemeral
    assert "Did you mean **Computer Vision**" in result.response.content
