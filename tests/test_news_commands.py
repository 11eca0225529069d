"""`/news`, `/story`, `/related`, `/topics` as members use them, on the seed archive.

seeds/ holds the original seed story (SEED_ID) and the sample stories written for the
project; the expected lists below are those files.
"""

from __future__ import annotations

SEED_ID = "fyjmhv5j"
SEED_TITLE = "Technologists Use Facial Recognition on Parler Videos"


async def test_news_for_a_topic_lists_its_stories(newsroom):
    result = await newsroom.member.slash(newsroom.channel, "news", topic="computer vision")
    (embed,) = result.response.embeds
    assert embed.title == "Hot in Computer Vision"
    assert [f.name for f in embed.fields] == [
        "1. Residual connections make very deep image networks trainable",  # heat 236
        "2. Segment Anything: one promptable model for image segmentation",  # 201
        "3. YOLO treats object detection as a single regression problem",  # 188
        f"4. {SEED_TITLE}",  # 179
        "5. Latent diffusion makes high-resolution image synthesis cheaper",  # 176
    ]
    assert SEED_ID in embed.fields[3].value
    assert embed.footer.text == "Page 1 of 2 · 9 stories · sorted by heat"
    assert not result.response.ephemeral


async def test_unknown_topic_names_the_closest(newsroom):
    result = await newsroom.member.slash(newsroom.channel, "news", topic="Computer Visio")
    assert result.ephemeral
    assert "Did you mean **Computer Vision**" in result.response.content


# -- helpers ----------------------------------------------------------------------

import re  # noqa: E402
from pathlib import Path  # noqa: E402
from urllib.parse import urlsplit  # noqa: E402

import discord  # noqa: E402
import pytest  # noqa: E402
import simcord  # noqa: E402
import yaml  # noqa: E402
from conftest import CORPUS, buttons, story_file  # noqa: E402

from bot import embeds  # noqa: E402
from core.config import Config  # noqa: E402

# A masked link whose opening bracket is not escaped: `[text](target)`.
MASKED_LINK = re.compile(r"(?<!\\)\[(?:\\.|[^\\\]])*\]\(([^)]*)\)")
HTTP = re.compile(r"^https?://", re.IGNORECASE)
# Markdown that would start a link, a mention, code or emphasis, not escaped.
UNESCAPED_MARKUP = re.compile(r"(?<!\\)[\[<`*_~@]")


def payloads(env) -> list[dict]:
    """Every message the bot sent or edited (interaction responses, webhooks, channels)."""
    out = []
    for entry in env.http_requests:
        if entry.method not in ("POST", "PATCH") or not isinstance(entry.json, dict):
            continue
        if entry.path.endswith("/commands"):
            continue
        data = entry.json.get("data", entry.json) if "type" in entry.json else entry.json
        if isinstance(data, dict) and {"content", "embeds", "components"} & data.keys():
            out.append(data)
    return out


def component_urls(components) -> list[str]:
    urls = []
    for component in components or []:
        if component.get("url"):
            urls.append(component["url"])
        urls += component_urls(component.get("components"))
    return urls


def check_everything_sent(env) -> list[dict]:
    """What Discord would enforce and more: limits, http(s) URLs only, no pings, no links.

    Returns the embeds (as dicts) for further checks.
    """
    sent = payloads(env)
    assert sent, "the bot sent nothing"
    all_embeds = []
    for data in sent:
        if data.get("content") or data.get("embeds"):
            assert data.get("allowed_mentions") == {"parse": []}, data.get("allowed_mentions")
        rendered = [data.get("content") or ""]
        embeds_ = data.get("embeds") or []
        assert len(embeds_) <= 10
        for raw in embeds_:
            all_embeds.append(raw)
            embed = discord.Embed.from_dict(raw)
            assert len(embed.title or "") <= 256
            assert len(embed.description or "") <= 4096
            assert len(embed.fields) <= 25
            for field in embed.fields:
                assert 0 < len(field.name) <= 256
                assert 0 < len(field.value) <= 1024
                rendered.append(field.value)
            assert len(embed.footer.text or "") <= 2048
            assert len(embed.author.name or "") <= 256
            assert len(embed) <= 6000
            rendered.append(embed.description or "")
            # Titles and field names render bold, italics, spoilers and code (not links):
            # nothing of the archive may format them.
            for text in [embed.title or "", *(f.name for f in embed.fields)]:
                assert "||" not in text and "**" not in text, text
                assert not UNESCAPED_MARKUP.search(text), text
            urls = [raw.get("url"), raw.get("image", {}).get("url")]
            urls += [raw.get("thumbnail", {}).get("url")]
            urls += [raw.get("author", {}).get("icon_url"), raw.get("author", {}).get("url")]
            for url in filter(None, urls):
                assert HTTP.match(url), url
        for url in component_urls(data.get("components")):
            assert HTTP.match(url) and len(url) <= 512, url
        for text in rendered:  # where Discord renders Markdown links and mentions
            for target in MASKED_LINK.findall(text):
                assert HTTP.match(target) and urlsplit(target).hostname != "evil.example", text
            assert "@everyone" not in text.replace("\\@", ""), text
            assert not re.search(r"(?<!\\)<@&?(123|456)>", text), text  # the archive's
    return all_embeds


def field_names(result) -> list[str]:
    (embed,) = result.response.embeds
    return [f.name for f in embed.fields]


async def autocomplete(world, command: str, option: str, typed: str) -> list[dict]:
    choices = await world.member.autocomplete(world.channel, command, option, typed)
    assert len(choices) <= 25
    for choice in choices:
        assert 1 <= len(choice["name"]) <= 100
        assert 1 <= len(str(choice["value"])) <= 100
    return choices


def write_archive(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def front_matter(meta: dict) -> str:
    return "---\n" + yaml.safe_dump(meta, allow_unicode=True, width=10**9) + "---\n"


# -- commands and sync ------------------------------------------------------------


async def test_commands_are_synced_once_with_the_reading_commands(newsroom):
    puts = [e for e in newsroom.env.http_requests if e.method == "PUT"]
    assert len(puts) == 1 and puts[0].path.endswith("/commands")
    # What an ordinary member can run: the reading commands (later issues add more).
    names = set(newsroom.member.available_commands(newsroom.channel))
    assert names >= {"news", "related", "story", "topics", "help"}
    # Everything in the tree was synced, in that one PUT.
    tree = {c.name for c in newsroom.bot.tree.get_commands()}
    assert {c["name"] for c in puts[0].json} == tree


async def test_every_command_and_option_is_described(newsroom):
    commands = newsroom.bot.tree.get_commands()
    names = [c.name for c in commands]
    assert len(names) == len(set(names)), names
    assert set(names) >= {"news", "story", "related", "topics", "help"}

    def walk(command):
        assert command.description.strip(), command.qualified_name
        assert len(command.description) <= 100
        for param in getattr(command, "parameters", []):
            assert param.description.strip() and param.description != "…", (
                command.qualified_name,
                param.name,
            )
            assert len(param.description) <= 100
        for sub in getattr(command, "commands", []):
            walk(sub)

    for command in commands:
        if isinstance(command, discord.app_commands.ContextMenu):
            continue
        walk(command)


async def test_help_explains_commands_by_audience_and_heat(newsroom):
    result = await newsroom.member.slash(newsroom.channel, "help")

    assert result.ephemeral
    (embed,) = result.response.embeds
    fields = {f.name: f.value for f in embed.fields}
    assert list(fields)[:3] == [
        "Everyone",
        "Staff (Manage Channels)",
        "Moderators (Pin Messages)",
    ]
    assert "`/news`" in fields["Everyone"] and "`/help`" in fields["Everyone"]
    assert "`/subscribe`" in fields["Staff (Manage Channels)"]
    assert "`/subscribe`" not in fields["Everyone"]
    assert "`/pin`" in fields["Moderators (Pin Messages)"]
    assert "*Pin story*" in fields["Moderators (Pin Messages)"]
    assert "hot** at heat 100 or more" in fields["🔥 Heat"]
    assert "trending score" in fields["🔥 Heat"]
    assert "`min_heat`" in fields["Subscriptions"]
    check_everything_sent(newsroom.env)


# -- /news on the seed -------------------------------------------------------------


async def test_news_topic_is_case_insensitive_and_single_page_has_no_buttons(newsroom):
    result = await newsroom.member.slash(newsroom.channel, "news", topic="ROBOTICS")
    (embed,) = result.response.embeds
    assert embed.title == "Hot in Robotics"
    assert embed.footer.text == "Page 1 of 1 · 3 stories · sorted by heat"
    assert result.response.components == []
    assert newsroom.channel.last_message.id == result.response.id  # public


async def test_news_query_searches(newsroom):
    result = await newsroom.member.slash(newsroom.channel, "news", query="facial recognition")
    (embed,) = result.response.embeds
    assert embed.title == "Stories about “facial recognition”"
    assert field_names(result) == [f"1. {SEED_TITLE}"]
    assert not result.ephemeral


async def test_news_query_within_a_topic(newsroom):
    found = await newsroom.member.slash(newsroom.channel, "news", topic="AI", query="parler")
    assert found.response.embeds[0].title == "Stories about “parler” in AI"
    assert field_names(found) == [f"1. {SEED_TITLE}"]
    missing = await newsroom.member.slash(newsroom.channel, "news", topic="AI", query="banana")
    assert missing.ephemeral
    assert missing.response.content == (
        "No stories match “banana” in **AI**. Try fewer or other words."
    )


async def test_news_without_options_shows_the_hottest(newsroom):
    result = await newsroom.member.slash(newsroom.channel, "news")
    assert result.response.embeds[0].title == "Hot stories"
    assert field_names(result) == [
        "1. Attention alone: the paper that introduced the Transformer",  # heat 258
        "2. Residual connections make very deep image networks trainable",  # 236
        "3. A 175-billion-parameter language model learns tasks from a few examples",  # 219
        "4. Segment Anything: one promptable model for image segmentation",  # 201
        "5. AlphaFold predicts protein structures from their sequences",  # 196
    ]


async def test_no_result_is_a_friendly_private_reply(newsroom):
    result = await newsroom.member.slash(newsroom.channel, "news", query="xylophone")
    assert result.ephemeral and result.response.embeds == []
    assert result.response.content.startswith("No stories match “xylophone”")
    assert "wrong" not in result.response.content


@pytest.mark.parametrize(
    "query",
    ['"AND OR NOT * ( - title:x NEAR(', '"', "*", "NEAR(", "-", "title:", "((((", "AND"],
)
async def test_fts_syntax_in_a_query_never_errors(newsroom, query):
    result = await newsroom.member.slash(newsroom.channel, "news", query=query)
    assert result.acknowledged
    if result.response.embeds:
        assert not result.ephemeral
    else:
        assert result.ephemeral and "No stories match" in result.response.content
    assert "went wrong" not in (result.response.content or "")
    assert newsroom.env.errors == []


async def test_unknown_topic_with_nothing_close(newsroom):
    result = await newsroom.member.slash(newsroom.channel, "news", topic="Gardening")
    assert result.ephemeral
    assert result.response.content == "There is no topic “Gardening”. See the topics with /topics."


# -- autocomplete -----------------------------------------------------------------


async def test_story_autocomplete_by_title_words_and_short_id(newsroom):
    by_words = await autocomplete(newsroom, "story", "story", "facial recog")
    assert by_words == [{"name": f"{SEED_TITLE} · {SEED_ID}", "value": SEED_ID}]
    by_id = await autocomplete(newsroom, "related", "story", SEED_ID.upper())
    assert [c["value"] for c in by_id] == [SEED_ID]
    assert await autocomplete(newsroom, "story", "story", "zebra") == []


async def test_topic_autocomplete_on_the_seed(newsroom):
    choices = await autocomplete(newsroom, "news", "topic", "vis")
    assert choices == [{"name": "Computer Vision (9)", "value": "Computer Vision"}]


# -- /story, /related, buttons -------------------------------------------------------


async def test_story_shows_the_full_embed_and_its_buttons(newsroom):
    result = await newsroom.member.slash(newsroom.channel, "story", story=SEED_ID)
    assert not result.ephemeral
    (embed,) = result.response.embeds
    assert embed.title == SEED_TITLE
    assert embed.url == "https://www.vice.com/en/article/xgz7g7/facial-recognition-parler-videos"
    assert embed.description.startswith("Technologists have used facial recognition")
    assert embed.author.name == "VICE"
    assert embed.author.icon_url.endswith("/vice.com-50x50.jpg")
    assert embed.image.url.startswith("https://video-images.vice.com/")
    assert embed.timestamp.isoformat() == "2021-01-20T21:34:00+00:00"
    assert [(f.name, f.value) for f in embed.fields] == [("Topics", "Computer Vision, AI")]
    assert embed.footer.text == f"🔥 heat 179 · hot · id {SEED_ID}"
    assert embed.colour.value == 0xE67E22  # hot: 179 ≥ hot_heat 100
    assert buttons(result.response)[:2] == [
        ("Read", None, embed.url, False),
        ("Related", f"news:related:{SEED_ID}", None, False),
    ]
    check_everything_sent(newsroom.env)


async def test_story_by_title_words_when_no_suggestion_was_picked(newsroom):
    result = await newsroom.member.slash(newsroom.channel, "story", story="parler videos")
    assert result.response.embeds[0].title == SEED_TITLE


async def test_unknown_story_is_a_friendly_private_reply(newsroom):
    result = await newsroom.member.slash(newsroom.channel, "story", story="zzzzzzzz")
    assert result.ephemeral
    assert result.response.content.startswith("No story matches “zzzzzzzz”")
    related = await newsroom.member.slash(newsroom.channel, "related", story="nothing like it")
    assert related.ephemeral and "No story matches" in related.response.content


async def test_related_button_answers_privately(newsroom):
    story = await newsroom.member.slash(newsroom.channel, "story", story=SEED_ID)
    click = await newsroom.moderator.click(story.response, custom_id=f"news:related:{SEED_ID}")
    assert click.ephemeral
    (embed,) = click.response.embeds
    assert embed.title == f"Related to: {SEED_TITLE}"
    assert "Wired" in embed.fields[0].value
    assert story.response.embeds[0].title == SEED_TITLE  # the story message is unchanged
    check_everything_sent(newsroom.env)


async def test_related_lists_coverage_with_publishers(newsroom):
    result = await newsroom.member.slash(newsroom.channel, "related", story=SEED_ID)
    (embed,) = result.response.embeds
    coverage, similar = embed.fields
    assert coverage.name == "Coverage elsewhere"
    lines = coverage.value.splitlines()
    assert lines[0] == (
        "• [This Site Published Every Face From Parler's Capitol Riot Videos]"
        "(https://www.wired.com/story/faces-of-the-riot-capitol-insurrection-facial-recognition/)"
        " — Wired"
    )
    assert any(line.endswith(" — Ars Technica") for line in lines)
    similar_ids = re.findall(r"`(\w{8})`$", similar.value, re.MULTILINE)
    assert len(similar_ids) == 5 and SEED_ID not in similar_ids
    assert embed.footer.text == f"id {SEED_ID} · open one with the menu below"
    assert f"news:related:{SEED_ID}" in [b[1] for b in buttons(result.response)]


async def test_related_button_still_works_after_a_restart(newsroom, make_bot, bot_config):
    story = await newsroom.member.slash(newsroom.channel, "story", story=SEED_ID)
    old_bot = newsroom.bot
    await newsroom.env.restart_bot(make_bot(bot_config))
    assert newsroom.bot is not old_bot
    await newsroom.bot.archive_loaded.wait()
    click = await newsroom.member.click(story.response, label="Related")
    assert click.ephemeral
    assert click.response.embeds[0].title == f"Related to: {SEED_TITLE}"


async def test_similar_story_menu_still_works_after_a_restart(newsroom, make_bot, bot_config):
    result = await newsroom.member.slash(newsroom.channel, "related", story=SEED_ID)
    wanted = (await newsroom.bot.store.related(SEED_ID)).similar[0]
    await newsroom.env.restart_bot(make_bot(bot_config))
    await newsroom.bot.archive_loaded.wait()

    chosen = await newsroom.member.select(
        result.response, [wanted.id], custom_id=f"news:similar:{SEED_ID}"
    )

    assert chosen.ephemeral
    assert chosen.response.embeds[0].footer.text.endswith(f"id {wanted.id}")


# -- /topics ----------------------------------------------------------------------


async def test_topics_lists_topics_with_counts(newsroom):
    result = await newsroom.member.slash(newsroom.channel, "topics")
    (embed,) = result.response.embeds
    assert embed.title == "Topics"
    assert sorted(embed.description.splitlines()) == [
        "**AI** · 9",
        "**Computer Vision** · 9",
        "**Machine Learning** · 7",
        "**Natural Language Processing** · 4",
        "**Open Source** · 5",
        "**Robotics** · 3",
    ]
    assert embed.footer.text == "Page 1 of 1 · 6 topics"
    assert result.response.components == []


# -- the shared corpus --------------------------------------------------------------


class TestCorpus:
    @pytest.fixture
    def bot_config(self, tmp_path):
        return Config(archive=CORPUS, db_path=tmp_path / "bot.db", hot_heat=100)

    async def test_story_text_shows_decoded_entities(self, newsroom):
        # The archive file says "In Nov&#8217;19, we introduced …".
        result = await newsroom.member.slash(newsroom.channel, "story", story="wxl53wgq")
        (embed,) = result.response.embeds
        assert embed.description.startswith("In Nov’19, we introduced a way to add your")
        assert "&#" not in embed.description
        assert embed.footer.text == "🔥 heat 136 · hot · id wxl53wgq"
        cold = await newsroom.member.slash(newsroom.channel, "story", story="ycgp574s")
        assert " · hot" not in cold.response.embeds[0].footer.text  # heat below 100

    async def test_news_query_orders_by_relevance_or_heat_and_says_which(self, newsroom):
        def shown(result) -> list[tuple[str, int]]:
            return [
                (re.search(r"`([a-z2-7]{8})`", f.value)[1], int(re.search(r"🔥 (\d+)", f.value)[1]))
                for f in result.response.embeds[0].fields
            ]

        best = await newsroom.member.slash(newsroom.channel, "news", query="portals")
        hot = await newsroom.member.slash(newsroom.channel, "news", query="portals", sort="hot")

        assert (
            best.response.embeds[0].footer.text == "Page 1 of 4 · 17 stories · sorted by relevance"
        )
        assert hot.response.embeds[0].footer.text == "Page 1 of 4 · 17 stories · sorted by heat"
        heats = [heat for _, heat in shown(hot)]
        assert heats == sorted(heats, reverse=True)
        page = await newsroom.bot.store.search("portals", sort="relevance", limit=5)
        assert [story_id for story_id, _ in shown(best)] == [s.id for s in page.stories]
        assert shown(best) != shown(hot)

    async def test_news_topic_pages_by_the_author_only(self, newsroom):
        result = await newsroom.member.slash(newsroom.channel, "news", topic="portals")
        (embed,) = result.response.embeds
        assert embed.title == "Hot in Portals"
        assert embed.footer.text == "Page 1 of 3 · 15 stories · sorted by heat"
        page1 = field_names(result)
        assert [n.split(".")[0] for n in page1] == ["1", "2", "3", "4", "5"]
        assert [b[0] for b in buttons(result.response)] == ["Previous", "Next"]
        assert [b[3] for b in buttons(result.response)] == [True, False]

        refused = await newsroom.moderator.click(result.response, label="Next")
        assert refused.ephemeral
        assert refused.response.content.startswith("Only <@")
        assert "can turn these pages" in refused.response.content
        assert result.response.embeds[0].footer.text.startswith("Page 1 of 3")

        turned = await newsroom.member.click(result.response, label="Next")
        assert turned.response.id == result.response.id
        assert result.response.embeds[0].footer.text == "Page 2 of 3 · 15 stories · sorted by heat"
        page2 = field_names(result)
        assert [n.split(".")[0] for n in page2] == ["6", "7", "8", "9", "10"]
        assert {n.split(". ", 1)[1] for n in page2}.isdisjoint(n.split(". ", 1)[1] for n in page1)
        assert [b[3] for b in buttons(result.response)] == [False, False]

        await newsroom.member.click(result.response, label="Next")
        assert result.response.embeds[0].footer.text.startswith("Page 3 of 3")
        assert [b[3] for b in buttons(result.response)] == [False, True]

        await newsroom.member.click(result.response, label="Previous")
        await newsroom.member.click(result.response, label="Previous")
        assert result.response.embeds[0].footer.text.startswith("Page 1 of 3")
        assert field_names(result) == page1
        check_everything_sent(newsroom.env)

    async def test_page_buttons_are_disabled_after_the_timeout(self, newsroom):
        result = await newsroom.member.slash(newsroom.channel, "news", topic="Portals")
        await newsroom.env.advance_time(599)
        assert not any(b[3] for b in buttons(result.response) if b[0] == "Next")
        await newsroom.env.advance_time(1)
        assert [b[3] for b in buttons(result.response)] == [True, True]
        with pytest.raises(simcord.SetupError, match="disabled"):
            await newsroom.member.click(result.response, label="Next")
        assert result.response.embeds[0].footer.text.startswith("Page 1 of 3")

    async def test_buttons_are_disabled_after_the_timeout_even_after_paging(self, newsroom):
        """Paging restarts the 600 s timeout, past the 15 min life of the first token."""
        result = await newsroom.member.slash(newsroom.channel, "news", topic="Portals")
        await newsroom.env.advance_time(500)
        await newsroom.member.click(result.response, label="Next")
        await newsroom.env.advance_time(500)
        await newsroom.member.click(result.response, label="Next")
        await newsroom.env.advance_time(600)
        assert result.response.embeds[0].footer.text.startswith("Page 3 of 3")
        assert [b[3] for b in buttons(result.response)] == [True, True]

    async def test_sort_new_lists_newest_first(self, newsroom):
        hot = await newsroom.member.slash(newsroom.channel, "news", topic="Power Apps")
        new = await newsroom.member.slash(newsroom.channel, "news", topic="Power Apps", sort="new")
        assert new.response.embeds[0].title == "Latest in Power Apps"
        dates = [
            int(re.search(r"<t:(\d+):d>", f.value).group(1)) for f in new.response.embeds[0].fields
        ]
        assert dates == sorted(dates, reverse=True) and len(dates) == 5
        assert field_names(new) != field_names(hot)
        await newsroom.member.click(new.response, label="Next")
        more = [
            int(re.search(r"<t:(\d+):d>", f.value).group(1)) for f in new.response.embeds[0].fields
        ]
        assert max(more) <= min(dates)

    async def test_news_query_and_topic_on_the_corpus(self, newsroom):
        result = await newsroom.member.slash(
            newsroom.channel, "news", topic="Portals", query="web api"
        )
        names = field_names(result)
        assert names and all("Web API" in n for n in names)
        assert result.response.embeds[0].footer.text.endswith(" · sorted by relevance")

    async def test_hottest_overall(self, newsroom):
        result = await newsroom.member.slash(newsroom.channel, "news")
        assert result.response.embeds[0].title == "Hot stories"
        heats = [
            int(re.search(r"🔥 (\d+)", f.value).group(1)) for f in result.response.embeds[0].fields
        ]
        assert heats == sorted(heats, reverse=True)
        assert (
            result.response.embeds[0].footer.text == "Page 1 of 27 · 131 stories · sorted by heat"
        )

    async def test_unknown_topic_names_the_closest(self, newsroom):
        result = await newsroom.member.slash(newsroom.channel, "news", topic="Power Aps")
        assert result.ephemeral
        assert result.response.content.startswith("There is no topic “Power Aps”. Did you mean")
        assert "**Power Apps**" in result.response.content

    async def test_topic_autocomplete_prefix_then_contains(self, newsroom):
        choices = await autocomplete(newsroom, "news", "topic", "p")
        values = [c["value"] for c in choices]
        assert values[:2] == ["Power Apps", "Portals"]  # start with "p", biggest first
        assert set(values[2:]) == {"Model-driven apps", "Canvas apps"}  # contain "p"
        assert choices[0]["name"] == "Power Apps (131)"
        everything = await autocomplete(newsroom, "news", "topic", "")
        assert len(everything) == 7

    async def test_story_autocomplete_on_the_corpus(self, newsroom):
        choices = await autocomplete(newsroom, "story", "story", "table permiss")
        assert choices[0]["value"] == "ycgp574s"
        assert choices[0]["name"].startswith("Table Permissions in portals Studio")
        by_id = await autocomplete(newsroom, "story", "story", "ycgp574s")
        assert [c["value"] for c in by_id] == ["ycgp574s"]
        many = await autocomplete(newsroom, "story", "story", "power")
        assert len(many) == 25

    async def test_related_shows_similar_stories(self, newsroom):
        result = await newsroom.member.slash(newsroom.channel, "related", story="behvbedr")
        (embed,) = result.response.embeds
        # No curated coverage: that section is left out, not shown empty.
        names = [f.name for f in embed.fields]
        assert names[0] == "Similar stories in the archive"
        assert set(names[1:]) <= {"\u200b"}  # the list goes on when links are long
        lines = [line for f in embed.fields for line in f.value.splitlines()]
        assert 1 <= len(lines) <= 10
        link = re.compile(r"^(\d+)\. \[(.+)\]\((https://[^)]+)\) · 🔥 \d+ · `([a-z2-7]{8})`$")
        found = [link.match(line) for line in lines]
        assert all(found), lines
        assert [int(m[1]) for m in found] == list(range(1, len(lines) + 1))
        ids = [m[4] for m in found]
        assert "behvbedr" not in ids
        # The same stories, in the same (similarity) order, as the store ranks them.
        related = await newsroom.bot.store.related("behvbedr")
        assert ids == [s.id for s in related.similar]
        assert found[0][2] == embeds.plain(related.similar[0].title)
        # A menu opens one of them, shown only to whoever chose it.
        (menu,) = [
            c
            for row in result.response.components
            for c in row.get("components", [])
            if c["type"] == 3
        ]
        assert menu["custom_id"] == "news:similar:behvbedr"
        assert [o["value"] for o in menu["options"]] == ids
        chosen = await newsroom.moderator.select(
            result.response, [ids[1]], custom_id="news:similar:behvbedr"
        )
        assert chosen.ephemeral
        (story,) = chosen.response.embeds
        assert story.title.endswith(related.similar[1].title)
        assert story.footer.text.endswith(f"id {ids[1]}")
        assert "Pin" not in [b[0] for b in buttons(chosen.response)]  # ephemeral: no pin
        check_everything_sent(newsroom.env)

    async def test_video_story(self, newsroom):
        result = await newsroom.member.slash(newsroom.channel, "story", story="behvbedr")
        assert result.response.embeds[0].title == "🎬 Video: Power Apps portals improvements"

    async def test_topics_with_counts(self, newsroom):
        result = await newsroom.member.slash(newsroom.channel, "topics")
        lines = result.response.embeds[0].description.splitlines()
        assert lines[0] == "**Power Apps** · 131"
        assert "**Portals** · 15" in lines and len(lines) == 7


# -- a topic with a thousand stories -----------------------------------------------


class TestThousandStories:
    @pytest.fixture
    def bot_config(self, tmp_path):
        files = {
            f"big-{i:04d}.md": story_file(
                title=f"Big story {i:04d}",
                url=f"https://example.com/big/{i}",
                heat=5000 - i,
                topics=("Big",),
            )
            for i in range(1000)
        }
        files |= {
            f"small-{i}.md": story_file(
                title=f"Small story {i}", url=f"https://example.com/small/{i}", topics=("Small",)
            )
            for i in range(3)
        }
        archive = write_archive(tmp_path / "archive", files)
        return Config(archive=archive, db_path=tmp_path / "bot.db", hot_heat=100)

    async def test_pages_through_a_thousand(self, newsroom):
        result = await newsroom.member.slash(newsroom.channel, "news", topic="big")
        assert (
            result.response.embeds[0].footer.text == "Page 1 of 200 · 1000 stories · sorted by heat"
        )
        assert field_names(result) == [f"{n}. Big story {n - 1:04d}" for n in range(1, 6)]
        await newsroom.member.click(result.response, label="Next")
        assert (
            result.response.embeds[0].footer.text == "Page 2 of 200 · 1000 stories · sorted by heat"
        )
        assert field_names(result) == [f"{n}. Big story {n - 1:04d}" for n in range(6, 11)]
        everything = await newsroom.member.slash(newsroom.channel, "news")
        assert (
            everything.response.embeds[0].footer.text
            == "Page 1 of 201 · 1003 stories · sorted by heat"
        )
        topics = await newsroom.member.slash(newsroom.channel, "topics")
        assert topics.response.embeds[0].description.splitlines() == [
            "**Big** · 1000",
            "**Small** · 3",
        ]


# -- absurd and hostile archive content ----------------------------------------------

EVIL = "@everyone <@123> <@&456> [click](https://evil.example) **bold** ||spoiler|| `code` "


def hostile_story(n: int, url: str, **extra) -> str:
    meta = {
        "category": "news",
        "title": f"Hostile {n} " + EVIL + "T" * 10_000,
        "excerpt": ("hostile words " + EVIL) * 800,
        "publishedDateTime": "2025-12-30T10:00:00Z",
        "originalUrl": url,
        "type": "article",
        "heat": 150 + n,
        "published": True,
        "provider": {
            "name": EVIL + "P" * 5000,
            "domain": "example.com",
            "images": [{"url": "data:image/png;base64,AAAA"}],
        },
        "images": [{"url": "javascript:alert(1)"}],
        "topics": ["Hostile"] + [f"{EVIL}{i:03d}".ljust(100, "x") for i in range(300)],
        "related": [
            {
                "title": EVIL * 30,
                "webUrl": f"https://news.example/{i})[click](https://evil.example/{i}",
                "provider": {"name": EVIL * 10},
            }
            for i in range(50)
        ]
        + [{"title": "bad", "webUrl": "javascript:alert(1)"}],
    }
    meta.update(extra)
    return front_matter(meta)


class TestHostileArchive:
    @pytest.fixture
    def bot_config(self, tmp_path):
        files = {
            f"hostile-{n}.md": hostile_story(n, f"https://example.com/hostile/{n}")
            for n in range(5)
        }
        files["long-urls.md"] = hostile_story(
            9, "https://example.com/" + "u" * 1900, topics=["Hostile"]
        )
        archive = write_archive(tmp_path / "archive", files)
        return Config(archive=archive, db_path=tmp_path / "bot.db", hot_heat=100)

    async def test_every_embed_respects_the_limits_and_never_pings(self, newsroom):
        world, member, channel = newsroom, newsroom.member, newsroom.channel
        assert world.bot.last_ingest is not None and not world.bot.last_ingest.rejected
        listing = await member.slash(channel, "news", topic="Hostile")
        assert listing.response.embeds[0].footer.text == "Page 1 of 2 · 6 stories · sorted by heat"
        assert len(listing.response.embeds[0].fields) == 5, "no story is dropped from a page"
        await member.click(listing.response, label="Next")
        await member.slash(channel, "news", query="hostile words")
        story_id = (await autocomplete(world, "story", "story", "hostile"))[0]["value"]
        story = await member.slash(channel, "story", story=story_id)
        (embed,) = story.response.embeds
        assert embed.image.url is None, "javascript: image is not shown"
        assert embed.author.icon_url is None, "data: icon is not shown"
        await member.click(story.response, label="Related")
        related = await member.slash(channel, "related", story=story_id)
        coverage = related.response.embeds[0].fields[0].value
        assert "javascript" not in coverage
        topics = await member.slash(channel, "topics")
        await member.click(topics.response, label="Next")
        await member.slash(channel, "news", topic="no such topic " + EVIL)
        await member.slash(channel, "story", story="nothing " + EVIL)

        sent = check_everything_sent(world.env)
        described = [e.get("description", "") for e in sent]
        values = [f["value"] for e in sent for f in e.get("fields", [])]
        assert any(r"\[click\](https://evil.example)" in t for t in described + values)
        assert any(r"\@everyone" in t for t in described)

    async def test_autocomplete_limits_with_many_and_long_topics(self, newsroom):
        choices = await autocomplete(newsroom, "news", "topic", "")
        assert len(choices) == 25
        long = await autocomplete(newsroom, "news", "topic", "@everyone")
        assert long and all(len(c["value"]) == 100 for c in long)
        result = await newsroom.member.slash(newsroom.channel, "news", topic=long[0]["value"])
        assert not result.ephemeral, "a suggested topic is always found"
        stories = await autocomplete(newsroom, "story", "story", "hostile")
        assert len(stories) == 6


# -- a search matching more stories than the search ranks -----------------------------


class TestSearchAboveTheCap:
    @pytest.fixture
    def bot_config(self, tmp_path, monkeypatch):
        monkeypatch.setattr("core.store.stories.SEARCH_CAP", 10)
        files = {
            f"busy-{i:02d}.md": story_file(
                title=f"Busy market day {i:02d}", url=f"https://example.com/busy/{i}", heat=60 + i
            )
            for i in range(25)
        }
        archive = write_archive(tmp_path / "archive", files)
        return Config(archive=archive, db_path=tmp_path / "bot.db", hot_heat=100)

    async def test_footer_says_there_are_more(self, newsroom):
        result = await newsroom.member.slash(newsroom.channel, "news", query="market")
        footer = result.response.embeds[0].footer.text
        assert footer == "Page 1 of 2+ · 10+ stories · sorted by relevance"
        assert [b[3] for b in buttons(result.response)] == [True, False]
        await newsroom.member.click(result.response, label="Next")
        assert (
            result.response.embeds[0].footer.text
            == "Page 2 of 2+ · 10+ stories · sorted by relevance"
        )
        assert len(field_names(result)) == 5
        assert [b[3] for b in buttons(result.response)] == [False, True]
        exact = await newsroom.member.slash(newsroom.channel, "news", query="market day 07")
        assert exact.response.embeds[0].footer.text == "Page 1 of 1 · 1 story · sorted by relevance"
        check_everything_sent(newsroom.env)
