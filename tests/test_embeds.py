"""bot/embeds.py on its own: limits, escaping, URLs, colours (no Discord needed)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import discord
import pytest

from bot import embeds
from bot.views import story_view
from core.models import Coverage, Related, Story, TopicCount

# A masked link whose opening bracket is not escaped: `[text](target)`.
MASKED_LINK = re.compile(r"(?<!\\)\[(?:\\.|[^\\\]])*\]\(([^)]*)\)")


def make_story(**fields) -> Story:
    base = dict(
        id="abcdefgh",
        url="https://example.com/story",
        title="A story",
        excerpt="About a story.",
        published_at=datetime(2025, 12, 31, 12, tzinfo=UTC),
        heat=50,
        provider="Example",
        provider_domain="example.com",
        provider_icon="https://example.com/icon.png",
        image_url="https://example.com/lead.jpg",
        topics=("AI",),
    )
    base.update(fields)
    return Story(**base)


def assert_within_limits(embed: discord.Embed) -> None:
    assert len(embed.title or "") <= embeds.TITLE_LIMIT
    assert len(embed.description or "") <= embeds.DESCRIPTION_LIMIT
    assert len(embed.fields) <= embeds.FIELDS_PER_EMBED
    for field in embed.fields:
        assert 0 < len(field.name) <= embeds.FIELD_NAME_LIMIT
        assert 0 < len(field.value) <= embeds.FIELD_VALUE_LIMIT
    assert len(embed.footer.text or "") <= embeds.FOOTER_LIMIT
    assert len(embed.author.name or "") <= embeds.AUTHOR_LIMIT
    assert len(embed) <= embeds.TOTAL_LIMIT


# -- truncate / plain -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("short", 10, "short"),
        ("exactly10!", 10, "exactly10!"),
        ("eleven char", 10, "eleven ch…"),
        ("word then   spaces", 13, "word then…"),
        ("", 5, ""),
        (None, 5, ""),
    ],
)
def test_truncate_cuts_with_an_ellipsis_only_when_needed(text, limit, expected):
    assert embeds.truncate(text, limit) == expected
    assert len(embeds.truncate(text, limit)) <= limit


def test_truncate_never_exceeds_tiny_limits():
    assert len(embeds.truncate("abcdef", 1)) == 1
    assert embeds.truncate("abcdef", 1) == "…"


def test_plain_escapes_links_mentions_and_formatting():
    text = "[click](https://evil.example) @everyone <@123> **bold** # head `code` > quote"
    shown = embeds.plain(text)
    assert not MASKED_LINK.search(shown)
    assert r"\[click\](https://evil.example)" in shown
    assert r"\@everyone" in shown and r"\<\@123\>" in shown
    assert r"\*\*bold\*\*" in shown and r"\# head" in shown and r"\`code\`" in shown
    # Escaping keeps every character of the text: nothing is lost.
    assert shown.replace("\\", "") == text


def test_plain_truncated_never_ends_in_a_dangling_escape():
    text = "a" * 9 + "*" * 20
    for limit in range(2, 30):
        cut = embeds.plain_truncated(text, limit)
        assert len(cut) <= limit
        body = cut.removesuffix(embeds.ELLIPSIS)
        trailing = len(body) - len(body.rstrip("\\"))
        assert trailing % 2 == 0, (limit, cut)


# -- safe_url ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["https://example.com/a", "http://example.com", "HTTPS://Example.com/x?y=1#z"],
)
def test_safe_url_keeps_http_urls(url):
    assert embeds.safe_url(url) == url


@pytest.mark.parametrize(
    "url",
    [
        None,
        "",
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        "data:image/png;base64,AAAA",
        "ftp://example.com/file",
        "file:///etc/passwd",
        "//example.com/no-scheme",
        "https://",
        "https://exa mple.com/space",
        "https://example.com/\nnewline",
        "https://[::1",
        "https://example.com/" + "a" * embeds.URL_LIMIT,
        "https://discord.com@evil.example/",
        "https://user:pass@evil.example/a",
    ],
)
def test_safe_url_refuses_everything_else(url):
    assert embeds.safe_url(url) is None


def test_safe_url_respects_a_smaller_limit_for_buttons():
    url = "https://example.com/" + "a" * 600
    assert embeds.safe_url(url) == url
    assert embeds.safe_url(url, embeds.BUTTON_URL_LIMIT) is None


# -- heat colour ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("heat", "colour"),
    [
        (0, embeds.COLD),
        (49, embeds.COLD),
        (50, embeds.WARM),
        (99, embeds.WARM),
        (100, embeds.HOT),
        (199, embeds.HOT),
        (200, embeds.BLAZING),
        (1_000_000, embeds.BLAZING),
    ],
)
def test_heat_colour_grows_with_heat(heat, colour):
    assert embeds.heat_colour(heat, 100) == colour


def test_story_embed_colour_says_how_hot_it_is():
    assert embeds.story_embed(make_story(heat=10), 100).colour.value == embeds.COLD
    assert embeds.story_embed(make_story(heat=500), 100).colour.value == embeds.BLAZING


# -- fit ----------------------------------------------------------------------------


def test_fit_enforces_every_limit_with_many_huge_fields():
    embed = discord.Embed(title="T" * 1000, description="D" * 10_000)
    embed.set_footer(text="F" * 100)
    for i in range(40):
        embed.add_field(name=f"{i}" * 500, value="v" * 5000, inline=False)
    embeds.fit(embed)
    assert_within_limits(embed)
    assert embed.title.endswith(embeds.ELLIPSIS)
    assert embed.fields, "fields that fit are kept"


def test_fit_trims_the_description_before_dropping_fields():
    embed = discord.Embed(title="t", description="d" * 4096)
    for i in range(3):
        embed.add_field(name=f"field {i}", value="v" * 1000)
    embeds.fit(embed)
    assert len(embed) <= embeds.TOTAL_LIMIT
    assert [f.name for f in embed.fields] == ["field 0", "field 1", "field 2"]
    assert embed.description.endswith(embeds.ELLIPSIS)


def test_fit_fills_empty_field_names_and_values():
    embed = discord.Embed(title="t")
    embed.add_field(name="", value="")
    embeds.fit(embed)
    assert embed.fields[0].name and embed.fields[0].value


def test_fit_leaves_a_small_embed_alone():
    embed = discord.Embed(title="Title", description="Body")
    embed.add_field(name="n", value="v")
    before = embed.to_dict()
    assert embeds.fit(embed).to_dict() == before


# -- story embeds -------------------------------------------------------------------


def test_story_embed_shows_the_whole_story():
    story = make_story(topics=("AI", "Computer Vision"), heat=179)
    embed = embeds.story_embed(story, 100)
    assert embed.title == "A story"
    assert embed.url == "https://example.com/story"
    assert embed.description == "About a story."
    assert embed.author.name == "Example"
    assert embed.author.icon_url == "https://example.com/icon.png"
    assert embed.author.url == "https://example.com"
    assert embed.image.url == "https://example.com/lead.jpg"
    assert embed.timestamp == datetime(2025, 12, 31, 12, tzinfo=UTC)
    assert [(f.name, f.value) for f in embed.fields] == [("Topics", "AI, Computer Vision")]
    assert embed.footer.text == "🔥 heat 179 · hot · id abcdefgh"
    cool = embeds.story_embed(make_story(heat=99), 100)
    assert cool.footer.text == "🔥 heat 99 · id abcdefgh"  # "hot" from NEWS_HOT_HEAT on


def test_footer_story_id_reads_old_and_new_footers():
    for text in (
        "🔥 heat 179 · hot · id abcdefgh",
        "🔥 heat 179 · id abcdefgh",  # posted before the footer said "hot"
        "🔥 heat 179 · hot · id abcdefgh · 📌 pinned",
    ):
        embed = discord.Embed().set_footer(text=text)
        assert embeds.footer_story_id(embed, full_story=True) == "abcdefgh", text
        assert embeds.footer_story_id(embed) == "abcdefgh", text


def test_video_stories_say_so():
    assert embeds.story_embed(make_story(type="video")).title == "🎬 Video: A story"
    name, _ = embeds.story_line(make_story(type="video"), 1)
    assert name == "1. 🎬 A story"


async def test_story_embed_and_buttons_drop_unsafe_urls():
    story = make_story(
        url="javascript:alert(1)",
        image_url="data:image/png;base64,AAAA",
        provider_icon="javascript:alert(2)",
        provider_domain="",
    )
    embed = embeds.story_embed(story)
    assert embed.url is None
    assert embed.image.url is None
    assert embed.author.icon_url is None
    assert embed.author.name == "Example"
    labels = [getattr(item, "item", item).label for item in story_view(story).children]
    assert "Read" not in labels and "Related" in labels, "no Read button without http(s)"


def test_story_embed_with_absurd_fields_fits():
    story = make_story(
        title="T" * 10_000,
        excerpt="[click](https://evil.example) @everyone " * 2000,
        provider="P" * 5000,
        topics=tuple(f"{i:03d}" + "t" * 97 for i in range(300)),
    )
    embed = embeds.story_embed(story, 100)
    assert_within_limits(embed)
    assert not MASKED_LINK.search(embed.description)
    assert "@everyone" not in embed.description.replace("\\@", "")


def test_story_line_fits_in_a_field_and_escapes_the_excerpt():
    story = make_story(
        title="T" * 1000, excerpt="[click](https://evil.example) " * 100, provider="*P*" * 100
    )
    name, value = embeds.story_line(story, 7)
    assert name.startswith("7. ") and len(name) <= embeds.FIELD_NAME_LIMIT
    assert len(value) <= embeds.FIELD_VALUE_LIMIT
    links = MASKED_LINK.findall(value)
    assert links == ["https://example.com/story"], "only the Read link is a link"
    assert "`abcdefgh`" in value


def test_story_list_embed_numbers_the_page_and_says_where_it_is():
    stories = [make_story(id=f"story{i:03d}", title=f"Story {i}") for i in range(5)]
    embed = embeds.story_list_embed(
        "Hot in AI", stories, offset=5, total=1000, page_size=5, hot_heat=100
    )
    assert [f.name for f in embed.fields] == [f"{n}. Story {n - 6}" for n in range(6, 11)]
    assert embed.footer.text == "Page 2 of 200 · 1000 stories"
    assert embeds.page_footer(0, 1, 5) == "Page 1 of 1 · 1 story"
    assert embeds.page_footer(0, 0, 5) == "Page 1 of 1 · 0 stories"


def test_related_embed_lists_coverage_with_publishers_and_similar_stories():
    story = make_story()
    coverage = [
        Coverage("Wired's take", "https://wired.com/x", "Wired"),
        Coverage("[click](https://evil.example)", "https://news.example/y", "@everyone"),
        Coverage("Bad link", "javascript:alert(1)", "Evil"),
    ]
    similar = [make_story(id="zzzzzzzz", title="Similar *one*", heat=12)]
    embed = embeds.related_embed(Related(story, coverage, similar), 100)
    assert embed.title == "Related to: A story"
    coverage_field, similar_field = embed.fields
    assert coverage_field.value.splitlines()[0] == "• [Wired's take](https://wired.com/x) — Wired"
    assert MASKED_LINK.findall(coverage_field.value) == [
        "https://wired.com/x",
        "https://news.example/y",
    ]
    assert "javascript" not in coverage_field.value
    assert r"\@everyone" in coverage_field.value
    assert similar_field.value == (
        r"1. [Similar \*one\*](https://example.com/story) · 🔥 12 · `zzzzzzzz`"
    )
    assert embed.footer.text == "id abcdefgh · open one with the menu below"


def test_related_embed_with_nothing_related_says_so():
    embed = embeds.related_embed(Related(make_story(), [], []))
    assert embed.fields == []  # empty sections are left out
    assert embed.description == "No curated coverage and no similar stories in the archive."


def test_related_embed_with_fifty_huge_links_fits():
    coverage = [
        Coverage("[x](https://evil.example) " * 200, f"https://news.example/{i}", "P" * 5000)
        for i in range(50)
    ]
    similar = [make_story(id=f"s{i:07d}", title="S" * 5000) for i in range(50)]
    embed = embeds.related_embed(Related(make_story(title="T" * 5000), coverage, similar))
    assert_within_limits(embed)
    for field in embed.fields:
        for target in MASKED_LINK.findall(field.value):
            assert target.startswith(("https://news.example/", "https://example.com/"))


def test_a_link_target_cannot_smuggle_a_second_masked_link():
    """A URL with parentheses must not close the link and open another one."""
    sneaky = "https://news.example/a)[click](https://evil.example/b"
    encoded = "https://news.example/a%29[click]%28https://evil.example/b"
    line = embeds.coverage_line(Coverage("Title", sneaky, "Pub"))
    assert line == f"• [Title]({encoded}) — Pub"
    assert MASKED_LINK.findall(line) == [encoded]
    _, value = embeds.story_line(make_story(url=sneaky))
    assert MASKED_LINK.findall(value) == [encoded]
    # A trailing backslash cannot escape the closing parenthesis either.
    assert embeds.coverage_line(Coverage("T", "https://x.example/a\\", "")) == (
        "• [T](https://x.example/a%5C)"
    )


def test_topics_embed_counts_and_escapes():
    topics = [TopicCount("AI", 3), TopicCount("[x](https://evil.example)", 1)]
    embed = embeds.topics_embed(topics, offset=0, total=2, page_size=20)
    assert embed.description.splitlines()[0] == "**AI** · 3"
    assert not MASKED_LINK.search(embed.description)
    assert embed.footer.text == "Page 1 of 1 · 2 topics"


def test_choice_name_is_short_single_line_and_never_empty():
    assert embeds.choice_name("a\nb   c") == "a b c"
    assert len(embeds.choice_name("x" * 300)) == embeds.CHOICE_NAME_LIMIT
    assert embeds.choice_name("   ") == "?"


def test_titles_and_field_names_escape_archive_text_too():
    """Discord renders bold, spoilers, code and headings in titles and field names."""
    evil = "||spoiler|| **bold** [x](https://evil.example) <@123> `code` # heading"
    escaped = (
        r"\|\|spoiler\|\| \*\*bold\*\* \[x\](https://evil.example) \<\@123\> \`code\` \# heading"
    )
    story = make_story(title=evil, provider=evil)
    assert embeds.story_embed(story).title == escaped
    assert embeds.story_line(story, 1)[0] == "1. " + escaped
    assert embeds.related_embed(Related(story, [], [])).title == "Related to: " + escaped
    # Author names render no Markdown at all: an escape would show as a backslash.
    assert embeds.story_embed(story).author.name == evil
    long = embeds.story_embed(make_story(title="|" * 500))
    assert len(long.title) <= embeds.TITLE_LIMIT and not long.title.endswith("\\…")


@pytest.mark.parametrize(
    "domain", ["discord.com@evil.example", "example.com:8080", "example.com/x", "a b.example"]
)
def test_the_provider_links_home_only_from_a_plain_host_name(domain):
    """A database filled before the archive checked domains may still hold such a value."""
    assert embeds.story_embed(make_story()).author.url == "https://example.com"
    embed = embeds.story_embed(make_story(provider_domain=domain))
    assert embed.author.name == "Example" and embed.author.url is None
