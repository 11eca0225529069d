"""A feed source: RSS, Atom or JSON Feed over HTTP(S), fetched politely and parsed safely.

Fetching is urllib in the caller's thread (no new HTTP dependency): conditional
requests (ETag / Last-Modified, a 304 costs nothing), a timeout for the whole
fetch, a size cap, and redirects followed only to http(s). feedparser parses
the bytes fetched here (it never fetches anything itself): it is the standard,
well-kept parser of RSS and Atom, sanitises their HTML, and reads XML through a
SAX parser that resolves no external entities, so an entity bomb or an
`<!ENTITY … SYSTEM "file:…">` is harmless. JSON Feed is plain JSON, read here.
"""

from __future__ import annotations

import calendar
import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.client import HTTPMessage
from typing import IO, Any
from urllib.parse import urljoin, urlsplit

from core.archive import MAX_EXCERPT, MAX_TITLE, MAX_TOPIC_LEN, MAX_TOPICS, canonical_url, short_id
from core.models import Story
from core.sources.config import Source
from core.text import clean_excerpt, clean_line, http_url

TIMEOUT = 20  # seconds for the whole fetch
MAX_BYTES = 5_000_000
MAX_ITEMS = 500
USER_AGENT = "newsbot (follows the feeds its operator listed)"


class FeedError(Exception):
    """The feed could not be fetched or read; the message is one line."""


@dataclass
class Fetched:
    """The answer of one fetch: `body` is None when the feed has not changed (304)."""

    body: bytes | None
    etag: str | None = None
    last_modified: str | None = None


@dataclass
class Feed:
    title: str
    stories: list[Story] = field(default_factory=list)
    skipped: int = 0  # entries without a title or an http(s) link


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    max_redirections = 5

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        if urlsplit(urljoin(req.full_url, newurl)).scheme not in ("http", "https"):
            raise FeedError(f"redirected to a non-http(s) URL: {newurl[:200]}")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_opener = urllib.request.build_opener(_HttpOnlyRedirects)


def fetch(
    url: str,
    etag: str | None = None,
    last_modified: str | None = None,
    timeout: float = TIMEOUT,
    max_bytes: int = MAX_BYTES,
) -> Fetched:
    """GET the feed (blocking); raises `FeedError`."""
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    deadline = time.monotonic() + timeout
    try:
        with _opener.open(urllib.request.Request(url, headers=headers), timeout=timeout) as resp:
            chunks, size = [], 0
            while chunk := resp.read(64 * 1024):
                size += len(chunk)
                if size > max_bytes:
                    raise FeedError(f"the feed is larger than {max_bytes:,} bytes")
                if time.monotonic() > deadline:
                    raise FeedError(f"the feed took longer than {timeout:g}s to download")
                chunks.append(chunk)
            return Fetched(
                b"".join(chunks), resp.headers.get("ETag"), resp.headers.get("Last-Modified")
            )
    except urllib.error.HTTPError as exc:
        if exc.code == 304:
            return Fetched(None, etag, last_modified)
        if 300 <= exc.code < 400:  # urllib refused to follow it (not http(s))
            location = str(exc.headers.get("Location", ""))[:200]
            raise FeedError(f"redirected to a non-http(s) URL: {location}") from None
        raise FeedError(f"HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, TimeoutError):
            raise FeedError(f"no answer within {timeout:g}s") from None
        raise FeedError(f"cannot reach the feed: {reason}") from None
    except TimeoutError:
        raise FeedError(f"no answer within {timeout:g}s") from None
    except OSError as exc:
        raise FeedError(f"connection failed: {exc.strerror or exc}") from None


def parse(body: bytes, source: Source, url: str) -> Feed:
    """The feed's entries as stories; raises `FeedError` when it is not a feed."""
    if body.lstrip()[:1] in (b"{", b"["):
        return _json_feed(body, source, url)
    import feedparser  # the optional extra "feeds"

    parsed = feedparser.parse(body)  # bytes: never a URL or a file name
    if parsed.bozo and not parsed.entries:
        problem = " ".join(str(parsed.get("bozo_exception", "not a feed")).split())[:200]
        raise FeedError(f"not a valid RSS or Atom feed: {problem}")
    if not parsed.version and not parsed.entries:
        raise FeedError("not an RSS, Atom or JSON feed")
    info = parsed.feed
    title = clean_line(str(info.get("title", "")), 200)
    provider = title or _host(info.get("link")) or _host(url)
    feed = Feed(title or provider)
    for entry in parsed.entries[:MAX_ITEMS]:
        image = None
        for key in ("media_content", "media_thumbnail"):
            for media in entry.get(key) or ():
                if _http(media.get("url")) and media.get("medium", "image") == "image":
                    image = image or media["url"]
        for link in entry.get("links") or ():
            if link.get("rel") == "enclosure" and str(link.get("type", "")).startswith("image/"):
                image = image or _http(link.get("href"))
        when = entry.get("published_parsed") or entry.get("updated_parsed")
        story = _story(
            source,
            title=entry.get("title"),
            link=entry.get("link"),
            summary=entry.get("summary") or "",
            published=datetime.fromtimestamp(calendar.timegm(when), UTC) if when else None,
            provider=provider,
            provider_link=info.get("link") or url,
            image=image,
            categories=[t.get("term") for t in entry.get("tags") or ()],
        )
        _add(feed, story)
    if parsed.bozo and not feed.stories:  # broken XML that yielded nothing usable
        problem = " ".join(str(parsed.get("bozo_exception", "")).split())[:200]
        raise FeedError(f"not a valid RSS or Atom feed: {problem or 'no usable entry'}")
    return feed


def _json_feed(body: bytes, source: Source, url: str) -> Feed:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise FeedError(f"not valid JSON: {' '.join(str(exc).split())[:200]}") from None
    if not isinstance(data, dict) or not str(data.get("version", "")).startswith(
        "https://jsonfeed.org/version/"
    ):
        raise FeedError("JSON but not a JSON Feed (no jsonfeed.org version)")
    items = data.get("items")
    if not isinstance(items, list):
        raise FeedError("JSON Feed without an items list")
    title = clean_line(_str(data.get("title")), 200)
    provider = title or _host(data.get("home_page_url")) or _host(url)
    feed = Feed(title or provider)
    for item in items[:MAX_ITEMS]:
        if not isinstance(item, dict):
            feed.skipped += 1
            continue
        summary = _str(item.get("summary")) or _str(item.get("content_html"))
        summary = summary or _str(item.get("content_text"))
        story = _story(
            source,
            title=item.get("title"),
            link=item.get("url") or item.get("external_url"),
            summary=summary,
            published=_iso(item.get("date_published") or item.get("date_modified")),
            provider=provider,
            provider_link=_str(data.get("home_page_url")) or url,
            image=_http(item.get("image")) or _http(item.get("banner_image")),
            categories=tags if isinstance(tags := item.get("tags"), list) else [],
        )
        _add(feed, story)
    return feed


def _story(
    source: Source,
    *,
    title: Any,
    link: Any,
    summary: str,
    published: datetime | None,
    provider: str,
    provider_link: Any,
    image: str | None,
    categories: list[Any],
) -> Story | None:
    title = clean_line(_str(title), MAX_TITLE)
    url = _http(link)
    if not title or not url:
        return None
    topics = list(source.topics)
    for term in categories:
        name = clean_line(_str(term), MAX_TOPIC_LEN)
        if name and name.casefold() not in {t.casefold() for t in topics}:
            topics.append(name)
    canonical = canonical_url(url)
    return Story(
        id=short_id(canonical),
        url=url,
        title=title,
        canonical=canonical,
        excerpt=clean_excerpt(summary, MAX_EXCERPT),
        published_at=published,
        heat=source.heat,
        provider=provider,
        provider_domain=_host(provider_link),
        image_url=image,
        topics=tuple(topics[:MAX_TOPICS]),
    )


def _add(feed: Feed, story: Story | None) -> None:
    if story is None:
        feed.skipped += 1
    else:
        feed.stories.append(story)


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _http(value: Any) -> str | None:
    """`value` if it is a plain http(s) URL with a host and no user info, else None."""
    return http_url(value.strip(), 2000) if isinstance(value, str) else None


def _host(value: Any) -> str:
    url = _http(value)
    return (urlsplit(url).hostname or "") if url else ""


def _iso(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
