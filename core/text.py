"""Clean archive text once, at ingest, so that every surface shows the same words.

Archive files are often scraped from HTML: they carry entities (`Nov&#8217;19`),
stray tags (`<br>`, `<script>`) and runs of whitespace. `clean_line` makes a
title or a name one line of plain text; `clean_excerpt` does the same for an
excerpt but keeps a bullet list readable, one bullet per line, and cuts it at
a word boundary.
"""

from __future__ import annotations

import html
import re
from urllib.parse import urlsplit

ELLIPSIS = "…"


def http_url(url: str, limit: int) -> str | None:
    """`url` if it is a plain http(s) link, else None: a host, a valid port if any, no
    user name (`https://site.example@other.example/` opens other.example), no spaces."""
    if len(url) > limit or any(c.isspace() for c in url):
        return None
    try:
        parts = urlsplit(url)  # the scheme comes back in lowercase
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname or "@" in parts.netloc:
        return None
    return url


# Elements whose content is never text a reader should see.
_HIDDEN = re.compile(r"<(script|style|iframe|noscript)\b[^>]*>.*?(?:</\1\s*>|\Z)", re.I | re.S)
# Tags that end a line: a list item or a paragraph starts on a new line.
_BREAK_TAGS = re.compile(r"<\s*(?:br|/?p|/?div|/?li|/?ul|/?ol|/?h[1-6])\b[^>]*>", re.I)
_LIST_ITEM = re.compile(r"<\s*li\b[^>]*>", re.I)
_TAG = re.compile(r"</?[A-Za-z][^<>]*>|<!--.*?(?:-->|\Z)", re.S)
_SPACES = re.compile(r"[^\S\n]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")
# Blank lines before a list item (HTML lists leave them): the list stays together.
_BEFORE_ITEM = re.compile(r"\n\s*\n(?=[^\S\n]*• )")
# A line that starts a bullet: "•", "*", "-" or "–" and a space.
_BULLET = re.compile(r"^(?:[•*·▪‣◦-]|–)\s+")


def clean_line(text: str, limit: int) -> str:
    """Plain text on one line: entities decoded, tags removed, whitespace collapsed."""
    text = " ".join(_plain(text).split())
    return cut(text, limit)


def clean_excerpt(text: str, limit: int) -> str:
    """Plain text; bullets stay one per line ("• …"), other lines join into paragraphs."""
    text = _plain(_LIST_ITEM.sub("\n• ", text), breaks=True)
    text = _BEFORE_ITEM.sub("\n", text)
    paragraphs = []
    for block in _BLANK_LINES.split(text):
        lines = [_SPACES.sub(" ", line).strip() for line in block.split("\n")]
        out: list[str] = []
        for line in filter(None, lines):
            if _BULLET.match(line):
                out.append(_BULLET.sub("• ", line))
            elif out and not out[-1].startswith("• "):
                out[-1] += " " + line
            else:
                out.append(line)
        if out:
            paragraphs.append("\n".join(out))
    return cut("\n\n".join(paragraphs), limit)


def cut(text: str, limit: int) -> str:
    """`text` of at most `limit` characters, cut at a word boundary with an ellipsis."""
    if len(text) <= limit:
        return text
    head = text[: max(0, limit - 1)]
    space = max(head.rfind(" "), head.rfind("\n"))
    if space > limit // 2:  # a word boundary not too far back; else cut the long word
        head = head[:space]
    return head.rstrip(" \n,;:-–—") + ELLIPSIS


def _plain(text: str, breaks: bool = False) -> str:
    text = text.replace("\x00", "").replace("\r\n", "\n").replace("\r", "\n")
    if "<" in text:
        text = _HIDDEN.sub(" ", text)
        if breaks:
            text = _BREAK_TAGS.sub("\n", text)
        text = _TAG.sub(" ", text)
    if "&" in text:
        # After the tags are gone: a tag an entity spells (`&lt;b&gt;`) is text the
        # author wrote, and stays (Discord embeds escape it).
        text = html.unescape(text)
    return text.replace("\u00a0", " ").replace("\u200b", "")
