"""How stories look in Discord: the one place that turns a Story into an embed.

Discord's limits are enforced here (truncate with an ellipsis, never fail),
only http(s) URLs reach an embed, and archive text is escaped so that it can
neither inject Markdown links nor format the message: wherever Discord renders
Markdown in an embed (title, description, field names and values). Author names
and footers render none, so they show archive text as it is: an escape would
show as a backslash there.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import discord

from core.archive import HOST_NAME
from core.models import (
    STORY_ID_PATTERN,
    Coverage,
    Digest,
    Pin,
    PostStyle,
    Related,
    Story,
    TopicCount,
)
from core.text import http_url

TITLE_LIMIT = 256
DESCRIPTION_LIMIT = 4096
FIELD_NAME_LIMIT = 256
FIELD_VALUE_LIMIT = 1024
FOOTER_LIMIT = 2048
AUTHOR_LIMIT = 256
TOTAL_LIMIT = 6000
EMBEDS_PER_MESSAGE = 10
FIELDS_PER_EMBED = 25
CHOICES_LIMIT = 25
CHOICE_NAME_LIMIT = 100
SELECT_OPTIONS_LIMIT = 25
SIMILAR_URL_LIMIT = 400  # longer links of similar stories are left out (see similar_line)
BUTTON_URL_LIMIT = 512
URL_LIMIT = 2048
MESSAGE_LIMIT = 2000  # characters of a message's content
THREAD_NAME_LIMIT = 100  # a thread's (and a forum post's) name
FORUM_TAGS_LIMIT = 5  # tags on one forum post
COMPACT_URL_LIMIT = 500  # a compact line's link; a longer one leaves the title unlinked

ELLIPSIS = "…"
COLD, WARM, HOT, BLAZING = 0x5865F2, 0xF1C40F, 0xE67E22, 0xE74C3C
# Without [ and ] no masked link can form; the rest would format or mention.
_MARKDOWN = re.compile(r"([\\*_~`|>\[\]#<@])")


def truncate(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, with an ellipsis when something was cut."""
    text = text or ""
    if len(text) <= limit:
        return text
    return text[: max(0, limit - 1)].rstrip() + ELLIPSIS


def plain(text: str) -> str:
    """Archive text shown as typed: Markdown (links, bold, headings, masks) is escaped."""
    return _MARKDOWN.sub(r"\\\1", text or "")


def plain_truncated(text: str, limit: int) -> str:
    """Escape, then fit: never cut in the middle of an escape sequence."""
    escaped = plain(text)
    if len(escaped) <= limit:
        return escaped
    cut = escaped[: max(0, limit - 1)]
    if cut.endswith("\\") and not cut.endswith("\\\\"):
        cut = cut[:-1]
    return cut.rstrip() + ELLIPSIS


def safe_url(url: str | None, limit: int = URL_LIMIT) -> str | None:
    """The URL if it is http(s) and fits Discord's limits, else None."""
    return http_url(url, limit) if url else None


def provider_link(domain: str | None) -> str | None:
    """The provider's home page, when its domain is a plain host name."""
    return safe_url(f"https://{domain}") if domain and HOST_NAME.match(domain) else None


# In `[text](target)` these would end the target early (and open a link of the archive's
# choosing) or escape our closing parenthesis; percent-encoded, the URL means the same.
_LINK_TARGET = str.maketrans({"(": "%28", ")": "%29", "\\": "%5C", "<": "%3C", ">": "%3E"})


def link_target(url: str) -> str:
    """An http(s) URL made safe to put between the parentheses of a Markdown link."""
    return url.translate(_LINK_TARGET)


def heat_colour(heat: int, hot_heat: int) -> int:
    if heat >= 2 * hot_heat:
        return BLAZING
    if heat >= hot_heat:
        return HOT
    if heat >= hot_heat // 2:
        return WARM
    return COLD


# Parses what `story_footer` writes: the bot finds its own story posts again by it.
# (" · hot" is new: posts made before it have none; a post kept current shows
# "🔥 154 → 231" and "3 more outlets".)
_STORY_FOOTER = re.compile(
    r"^🔥 (?:heat -?\d+|-?\d+ → -?\d+)(?: · hot)?(?: · \d+ more outlets?)?"
    rf" · id (?P<story>{STORY_ID_PATTERN})(?: · 📌 pinned)?$"
)
_FOOTER_ID = re.compile(rf"(?:^|· )id (?P<story>{STORY_ID_PATTERN})(?= ·|$)")


def footer_story_id(embed: discord.Embed, *, full_story: bool = False) -> str | None:
    """The story id an embed's footer names; with `full_story`, only a story's own embed."""
    text = embed.footer.text or ""
    match = (_STORY_FOOTER.match if full_story else _FOOTER_ID.search)(text)
    return match["story"] if match else None


def story_footer(
    story: Story,
    pinned: bool = False,
    hot_heat: int | None = None,
    *,
    since_heat: int | None = None,
    more_outlets: int = 0,
) -> str:
    """`🔥 heat 179 · hot · id fyjmhv5j`: "hot" from `hot_heat` on (what /help explains).

    A post kept current says how it changed since it went out: `since_heat` (its heat
    then) gives `🔥 154 → 231`, `more_outlets` adds `3 more outlets`.
    """
    if since_heat is not None and since_heat != story.heat:
        parts = [f"🔥 {since_heat} → {story.heat}"]
    else:
        parts = [f"🔥 heat {story.heat}"]
    if hot_heat is not None and story.heat >= hot_heat:
        parts.append("hot")
    if more_outlets > 0:
        parts.append(f"{more_outlets} more outlet{'' if more_outlets == 1 else 's'}")
    parts.append(f"id {story.id}")
    if pinned:
        parts.append("📌 pinned")
    return truncate(" · ".join(parts), FOOTER_LIMIT)


def story_embed(
    story: Story,
    hot_heat: int = 100,
    *,
    pinned: bool = False,
    since_heat: int | None = None,
    more_outlets: int = 0,
) -> discord.Embed:
    """The full embed of one story: what `/story`, buttons and pushed posts show.

    `since_heat` and `more_outlets`: a post kept current (see `story_footer`).
    """
    prefix = "🎬 Video: " if story.is_video else ""
    embed = discord.Embed(
        title=prefix + plain_truncated(story.title, TITLE_LIMIT - len(prefix)),
        url=safe_url(story.url),
        description=plain_truncated(story.excerpt, 1500) or None,
        colour=heat_colour(story.heat, hot_heat),
        timestamp=story.published_at,
    )
    if story.provider:
        embed.set_author(
            name=truncate(story.provider, AUTHOR_LIMIT),
            icon_url=safe_url(story.provider_icon),
            url=provider_link(story.provider_domain),
        )
    if image := safe_url(story.image_url):
        embed.set_image(url=image)
    if story.topics:
        embed.add_field(
            name="Topics",
            value=plain_truncated(", ".join(story.topics), FIELD_VALUE_LIMIT),
            inline=False,
        )
    footer = story_footer(story, pinned, hot_heat, since_heat=since_heat, more_outlets=more_outlets)
    embed.set_footer(text=footer)
    return fit(embed)


def thread_name(story: Story, more: int = 0) -> str:
    """A forum post's or discussion thread's name: the story's title (names render no
    Markdown, so nothing is escaped); `more` other stories of the same message are counted."""
    title = " ".join(story.title.split()) or story.id
    suffix = f" (+{more} more)" if more else ""
    return truncate(title, THREAD_NAME_LIMIT - len(suffix)) + suffix


def forum_tags(
    forum_tags: Sequence[discord.ForumTag], story: Story, *, moderated: bool
) -> list[discord.ForumTag]:
    """The forum's existing tags that name one of the story's topics (case-insensitive),
    in the order of its topics, at most Discord's 5; `moderated` tags only if allowed."""
    by_name = usable_tags(forum_tags, moderated=moderated)
    chosen = []
    for topic in story.topics:
        tag = by_name.get(topic.casefold())
        if tag is not None and tag not in chosen:
            chosen.append(tag)
    return chosen[:FORUM_TAGS_LIMIT]


def usable_tags(
    forum_tags: Sequence[discord.ForumTag], *, moderated: bool
) -> dict[str, discord.ForumTag]:
    """A forum's tags the bot may apply, by case-folded name (`moderated` ones if allowed)."""
    return {tag.name.casefold(): tag for tag in forum_tags if moderated or not tag.moderated}


def compact_line(story: Story, *, since_heat: int | None = None, more_outlets: int = 0) -> str:
    """`[Title](<url>) · Provider · 🔥 231`: a story in one line, without a link preview.

    A story without a usable link shows its id instead, so the bot can still find it.
    A line kept current says how the story changed since it went out, as a card's footer
    does: `🔥 154 → 231 · 3 more outlets`.
    """
    title = plain_truncated(story.title, 200)
    if url := safe_url(story.url, COMPACT_URL_LIMIT):
        bits = [f"[{title}](<{link_target(url)}>)"]
    else:
        bits = [f"{title} `{story.id}`"]
    if story.provider:
        bits.append(plain_truncated(story.provider, 60))
    if since_heat is not None and since_heat != story.heat:
        bits.append(f"🔥 {since_heat} → {story.heat}")
    else:
        bits.append(f"🔥 {story.heat}")
    if more_outlets > 0:
        bits.append(f"{more_outlets} more outlet{'' if more_outlets == 1 else 's'}")
    return "🎬 " * story.is_video + " · ".join(bits)


def compact_message(
    stories: list[Story],
    mentions: str = "",
    changes: Mapping[str, tuple[int, int]] | None = None,
) -> tuple[str, int]:
    """Compact lines of as many of `stories` as fit in one message (at least one), after
    the role `mentions`; returns the content and how many stories it holds.

    `changes`: for a message kept current, each story's (heat when posted, more outlets
    since) by story id (see `compact_line`).
    """
    lines = [mentions] if mentions else []
    size, count = len(mentions), 0
    for story in stories:
        since_heat, more = (changes or {}).get(story.id, (None, 0))
        line = compact_line(story, since_heat=since_heat, more_outlets=more)
        if count and size + 1 + len(line) > MESSAGE_LIMIT:
            break
        lines.append(line)
        size += len(line) + (1 if size else 0)
        count += 1
    return truncate("\n".join(lines), MESSAGE_LIMIT), count


def link_content(story: Story, mentions: str = "") -> str:
    """The bare link (Discord shows its own preview); a story without one, as a compact line."""
    body = safe_url(story.url, MESSAGE_LIMIT - len(mentions) - 1) or compact_line(story)
    return truncate(f"{mentions} {body}".strip(), MESSAGE_LIMIT)


def post_style(message: discord.Message) -> PostStyle:
    """The look of one of the bot's posts, from what it shows (a post found again after a
    crash): a card has an embed, a compact line its heat, a link post neither."""
    if message.embeds:
        return PostStyle.FULL
    return PostStyle.COMPACT if "🔥" in (message.content or "") else PostStyle.LINK


def carries(message: discord.Message, story: Story) -> bool:
    """Whether a message of the bot shows `story`, in any style: the bot finds its posts
    again by it after a crash."""
    if any(
        embed.url == story.url or footer_story_id(embed, full_story=True) == story.id
        for embed in message.embeds
    ):
        return True
    content = message.content or ""
    url = safe_url(story.url)
    if url and (url in content.split() or f"(<{link_target(url)}>)" in content):
        return True
    return f"`{story.id}`" in content


def story_line(story: Story, number: int | None = None) -> tuple[str, str]:
    """A story as one field of a list: (name, value)."""
    label = f"{number}. " if number is not None else ""
    video = "🎬 " if story.is_video else ""
    name = label + video + plain_truncated(story.title, FIELD_NAME_LIMIT - len(label + video))
    bits = []
    if url := safe_url(story.url):
        bits.append(f"[Read]({link_target(url)})")
    if story.provider:
        bits.append(plain_truncated(story.provider, 80))
    if story.published_at:
        bits.append(discord.utils.format_dt(story.published_at, "d"))
    bits.append(f"🔥 {story.heat}")
    bits.append(f"`{story.id}`")
    meta = " · ".join(bits)
    room = FIELD_VALUE_LIMIT - len(meta) - 1
    excerpt = plain_truncated(story.excerpt, min(200, room)) if story.excerpt else ""
    return name, truncate(f"{meta}\n{excerpt}".strip(), FIELD_VALUE_LIMIT)


def story_list_embed(
    title: str,
    stories: list[Story],
    *,
    offset: int,
    total: int,
    page_size: int,
    hot_heat: int,
    total_is_estimate: bool = False,
    order: str | None = None,
) -> discord.Embed:
    """One page of a list of stories (`/news`); `order` ("relevance") is named in the footer."""
    embed = discord.Embed(
        title=truncate(title, TITLE_LIMIT),
        colour=heat_colour(max((s.heat for s in stories), default=0), hot_heat),
    )
    for number, story in enumerate(stories[:FIELDS_PER_EMBED], start=offset + 1):
        name, value = story_line(story, number)
        embed.add_field(name=name, value=value, inline=False)
    footer = page_footer(offset, total, page_size, estimate=total_is_estimate)
    if order:
        footer += f" · sorted by {order}"
    embed.set_footer(text=footer)
    return fit(embed)


def page_footer(
    offset: int,
    total: int,
    page_size: int,
    singular: str = "story",
    plural: str = "stories",
    *,
    estimate: bool = False,
) -> str:
    """`Page 2 of 7 · 31 stories`; with `estimate` (more than `total`): `of 50+ · 250+`."""
    pages = max(1, -(-total // page_size))
    page = offset // page_size + 1
    more = "+" if estimate else ""
    noun = singular if total == 1 and not estimate else plural
    return f"Page {page} of {pages}{more} · {total}{more} {noun}"


_DIGEST_REF = re.compile(r"· digest (?P<subscription>\d+):(?P<end>\d+)$")


def digest_ref(embed: discord.Embed) -> tuple[int, int] | None:
    """(subscription id, period end as Unix seconds) of a digest embed, from its footer."""
    match = _DIGEST_REF.search(embed.footer.text or "")
    return (int(match["subscription"]), int(match["end"])) if match else None


def digest_line(story: Story, number: int) -> str:
    """`1. [Title](url) — Provider · 🔥 231`: one story of a digest, a link with its source."""
    title = plain_truncated(story.title, 150)
    if url := safe_url(story.url, SIMILAR_URL_LIMIT):
        title = f"[{title}]({link_target(url)})"
    source = f" — {plain_truncated(story.provider, 60)}" if story.provider else ""
    return f"{number}. {title}{source} · 🔥 {story.heat}"


def digest_embed(digest: Digest, hot_heat: int = 100) -> discord.Embed:
    """One period's digest: its stories, hottest first, each a link with its source.

    The footer names the subscription and period (`digest 17:1767268800`): after a crash
    the bot finds the message again by it.
    """
    kind = "Weekly" if digest.kind == "weekly" else "Daily"
    lines, size = [], 0
    for number, story in enumerate(digest.stories, start=1):
        line = truncate(digest_line(story, number), DESCRIPTION_LIMIT)
        if size + len(line) + 1 > DESCRIPTION_LIMIT:
            break
        lines.append(line)
        size += len(line) + 1
    embed = discord.Embed(
        title=f"📰 {kind} digest: " + plain_truncated(digest.topic, TITLE_LIMIT - 20),
        description="\n".join(lines),
        colour=heat_colour(max((s.heat for s in digest.stories), default=0), hot_heat),
        timestamp=digest.end,
    )
    count = len(lines)
    noun = "story" if count == 1 else "stories"
    since = digest.start.strftime("%d %b %H:%M UTC")
    ref = f"digest {digest.subscription_id}:{int(digest.end.timestamp())}"
    embed.set_footer(text=f"{count} {noun} that became hot since {since} · {ref}")
    return fit(embed)


def related_embed(related: Related, hot_heat: int = 100, *, limit: int = 10) -> discord.Embed:
    """`/related`: the curated coverage (external links) and similar archive stories.

    Similar stories are links, most similar first; a section with nothing is left out.
    """
    story = related.story
    embed = discord.Embed(
        title="Related to: " + plain_truncated(story.title, TITLE_LIMIT - 12),
        url=safe_url(story.url),
        colour=heat_colour(story.heat, hot_heat),
    )
    coverage = [line for c in related.coverage[:limit] if (line := coverage_line(c))]
    if coverage:
        embed.add_field(name="Coverage elsewhere", value=_lines(coverage), inline=False)
    similar = [similar_line(s, n) for n, s in enumerate(related.similar[:limit], start=1)]
    # Links are long: the list goes on in further fields rather than losing stories.
    name = "Similar stories in the archive"
    while similar:
        value = _lines(similar)
        embed.add_field(name=name, value=value, inline=False)
        similar, name = similar[value.count("\n") + 1 :], "\u200b"
    if not coverage and not similar:
        embed.description = "No curated coverage and no similar stories in the archive."
    hint = " · open one with the menu below" if related.similar else ""
    embed.set_footer(text=truncate(f"id {story.id}{hint}", FOOTER_LIMIT))
    return fit(embed)


def similar_line(story: Story, number: int) -> str:
    """`1. [Title](url) · 🔥 120 · `ab12cd34``: a similar story, as a link when it has one."""
    title = plain_truncated(story.title, 120)
    # A very long URL would not leave room for the others: the title stays plain text.
    if url := safe_url(story.url, SIMILAR_URL_LIMIT):
        title = f"[{title}]({link_target(url)})"
    return f"{number}. {title} · 🔥 {story.heat} · `{story.id}`"


def related_choice(story: Story) -> tuple[str, str]:
    """A similar story as a select option: (label, description)."""
    label = choice_name(story.title)
    bits = [f"🔥 {story.heat}", story.id]
    if story.provider:
        bits.append(story.provider)
    return label, truncate(" · ".join(bits), CHOICE_NAME_LIMIT)


def coverage_line(link: Coverage) -> str | None:
    url = safe_url(link.url)
    if url is None:
        return None
    title = plain_truncated(link.title, 150)
    provider = f" — {plain_truncated(link.provider, 60)}" if link.provider else ""
    return f"• [{title}]({link_target(url)}){provider}"


def topics_embed(
    topics: list[TopicCount], *, offset: int, total: int, page_size: int
) -> discord.Embed:
    lines = [f"**{plain_truncated(t.name, 100)}** · {t.count}" for t in topics]
    embed = discord.Embed(
        title="Topics",
        description=truncate("\n".join(lines), DESCRIPTION_LIMIT) or "No topics yet.",
        colour=COLD,
    )
    embed.set_footer(text=page_footer(offset, total, page_size, "topic", "topics"))
    return embed


def pins_embed(
    title: str, pins: list[Pin], offset: int, page_size: int, *, show_channel: bool
) -> discord.Embed:
    """A page of pinned stories: each with its message's link, who pinned it and when."""
    embed = discord.Embed(title=truncate(title, TITLE_LIMIT), colour=COLD)
    for number, pin in enumerate(pins[offset : offset + page_size], start=offset + 1):
        story = pin.story
        who = f"<@{pin.pinned_by}>" if pin.pinned_by else "someone in Discord"
        bits = [f"[Jump to the message]({pin.jump_url})"]
        if show_channel:
            bits.append(f"<#{pin.channel_id}>")
        bits.append(f"pinned by {who} {discord.utils.format_dt(pin.pinned_at, 'R')}")
        bits.append(f"`{story.id}`")
        embed.add_field(
            name=f"{number}. {plain_truncated(story.title, FIELD_NAME_LIMIT - 8)}",
            value=truncate(" · ".join(bits), FIELD_VALUE_LIMIT),
            inline=False,
        )
    embed.set_footer(text=page_footer(offset, len(pins), page_size, "pin", "pins"))
    return fit(embed)


def subscriptions_embed(
    title: str,
    note: str | None,
    entries: list[tuple[str, str]],
    *,
    offset: int,
    total: int,
    page_size: int,
) -> discord.Embed:
    """A page of subscriptions: (topic and state, description), the description's archive
    text already escaped."""
    embed = discord.Embed(title=title, description=note, colour=COLD)
    for name, description in entries:
        embed.add_field(
            name=plain_truncated(name, FIELD_NAME_LIMIT),
            value=truncate(description, FIELD_VALUE_LIMIT),
            inline=False,
        )
    embed.set_footer(text=page_footer(offset, total, page_size, "subscription", "subscriptions"))
    return fit(embed)


def choice_name(text: str) -> str:
    """An autocomplete choice's label: at most 100 characters, never empty."""
    return truncate(" ".join(text.split()), CHOICE_NAME_LIMIT) or "?"


def _lines(lines: list[str]) -> str:
    """Whole lines only, as many as fit in a field."""
    out, size = [], 0
    for line in lines:
        line = truncate(line, FIELD_VALUE_LIMIT)
        if size + len(line) + 1 > FIELD_VALUE_LIMIT:
            break
        out.append(line)
        size += len(line) + 1
    return "\n".join(out)


def fit(embed: discord.Embed) -> discord.Embed:
    """Enforce every per-embed limit, and the 6000-character total by trimming the description."""
    if embed.title:
        embed.title = truncate(embed.title, TITLE_LIMIT)
    if embed.description:
        embed.description = truncate(embed.description, DESCRIPTION_LIMIT)
    while len(embed.fields) > FIELDS_PER_EMBED:
        embed.remove_field(-1)
    for i, f in enumerate(embed.fields):
        embed.set_field_at(
            i,
            name=truncate(f.name or "\u200b", FIELD_NAME_LIMIT),
            value=truncate(f.value or "\u200b", FIELD_VALUE_LIMIT),
            inline=f.inline,
        )
    excess = len(embed) - TOTAL_LIMIT
    if excess > 0 and embed.description:
        embed.description = truncate(embed.description, max(1, len(embed.description) - excess))
    while len(embed) > TOTAL_LIMIT and embed.fields:
        embed.remove_field(-1)
    return embed
