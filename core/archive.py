"""Reading the news archive: one story per file, YAML front matter between `---` lines.

Everything here is plain, synchronous Python so that it can run in worker
processes. `parse_story` never raises: every file becomes a `Story`, a
`Rejection` with a one-line reason, or `Skipped` (another category).
"""

from __future__ import annotations

import errno
import math
import os
import re
import stat
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from core import quick_yaml
from core.models import Coverage, Rejection, Skipped, Story
from core.text import clean_excerpt, clean_line, http_url

# The digests built into Python rather than hashlib's: importing hashlib loads OpenSSL,
# 3.5 MB more in each parse worker (hashlib.blake2b is this very function anyway).
try:
    from _blake2 import blake2b
    from _sha1 import sha1  # type: ignore[import-not-found,unused-ignore]  # no stub
except ImportError:  # pragma: no cover - a Python built without its own digests
    from hashlib import blake2b, sha1

if TYPE_CHECKING:
    import yaml

STORY_SUFFIXES = frozenset({".md", ".markdown", ".txt"})
MAX_FILE_BYTES = 1_000_000
MAX_TITLE = 500
# Excerpts are teasers: longer ones are cut at a word boundary (an embed shows them whole).
MAX_EXCERPT = 1_000
MAX_COVERAGE_EXCERPT = 500
# Bump when parsing changes what a file's story looks like (e.g. how text is cleaned):
# the next ingest then parses every file again, even those whose content is unchanged.
PARSER_VERSION = 2
MAX_TOPICS = 25
MAX_TOPIC_LEN = 100
MAX_RELATED = 25
MAX_HEAT = 1_000_000
MAX_URL = 2_000

_TRACKING_PARAMS = re.compile(r"^(utm_\w+|fbclid|gclid|mc_cid|mc_eid|ocid)$", re.IGNORECASE)
_WHITESPACE = re.compile(r"\s+")
# Blank lines, then a '---' line (trailing whitespace allowed), on "\n"-separated text.
_OPENING = re.compile(r"(?:[^\S\n]*\n)*---[^\S\n]*(?:\n|\Z)")
# The line that closes the front matter: '---' or '...', trailing whitespace allowed.
_CLOSING = re.compile(r"^(?:---|\.\.\.)[^\S\n]*$", re.MULTILINE)
# An http(s) URL whose netloc is a plain host name (no userinfo, port or brackets) and that
# has no "?" at all: urlsplit gives scheme, netloc (= hostname) and path + fragment exactly so.
# Letters, digits and hyphens in dot-separated labels: no user info, port, path or space.
HOST_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9-]{1,63})*\.?\Z")
_SIMPLE_URL = re.compile(r"([Hh][Tt][Tt][Pp][Ss]?)://([A-Za-z0-9.-]+)([/#][^?\t\n\r]*)?\Z")
_FALSE_WORDS = frozenset({"false", "no", "off", "0"})
_TRUE_WORDS = frozenset({"true", "yes", "on", "1"})

ParseResult = Story | Rejection | Skipped


def _warn(message: str, *args: object) -> None:
    """A warning of the walk. logging is imported here: the parse workers never walk,
    and need not load it (≈1 MB each)."""
    import logging

    logging.getLogger(__name__).warning(message, *args)


class ArchiveUnreadable(Exception):
    """The archive folder itself cannot be read; the message is one line."""


class _Reject(Exception):
    """Raised inside the parser to turn a file into a `Rejection`."""


@dataclass(frozen=True, slots=True)
class ArchiveFile:
    """A file found by the scan, with what we compare to skip unchanged files."""

    path: str  # relative to the archive root, with forward slashes
    size: int
    mtime_ns: int


def scan_archive(root: str | os.PathLike[str]) -> Iterator[ArchiveFile]:
    """Yield the candidate story files under `root`, in path order.

    Hidden files and folders (`.git`) are skipped, symlinked folders inside the
    archive are followed once (a cycle is never walked twice), links that lead
    outside it are not, and only story suffixes are considered: topic files
    such as `_data/topics/*.yaml` are not stories.
    """
    for group in walk_stamps(root):
        for found in group:
            yield ArchiveFile(*found)


# Files per group of `walk_stamps` (at least): one lookup of stored stamps each on a rescan.
WALK_GROUP = 1000
Stamped = tuple[str, int, int]  # (path, size, mtime_ns)


def walk_stamps(
    root: str | os.PathLike[str], unreadable: list[str] | None = None, group: int = WALK_GROUP
) -> Iterator[list[Stamped]]:
    """`scan_archive`'s files as groups of (path, size, mtime_ns) tuples, in path order.

    Path order (code point order, that of the database's primary key) lets a rescan
    compare each group with the stored stamps of its range of paths instead of holding
    every file in memory: each folder is walked where its paths fall among its
    parent's files ("name/…"). A group holds runs of whole folders, `group` files or
    more. Each folder is opened once and its entries are stat'ed relative to that
    descriptor.

    Raises `ArchiveUnreadable` when `root` cannot be listed. A subfolder that
    cannot be listed is logged and appended to `unreadable` (its files are then
    unknown, not gone) before the walk yields any path after it. A story-named
    entry that is not a regular file (a FIFO) is included: reading it rejects it
    with a reason.
    """
    return _groups(_Walk(os.fspath(root), unreadable), group)


def count_story_files(root: str | os.PathLike[str]) -> int:
    """How many files `walk_stamps` finds (barring changes meanwhile), quickly: by their
    names only, with no stat and no warnings (the walk itself gives those)."""
    return sum(map(len, _groups(_Walk(os.fspath(root), None, names_only=True), WALK_GROUP)))


def _groups(walk: _Walk, group: int) -> Iterator[list[Stamped]]:
    found: list[Stamped] = []
    stack = [iter(walk.folder(""))]
    while stack:
        for part in stack[-1]:
            if isinstance(part, str):  # a subfolder: its paths come next
                stack.append(iter(walk.folder(part)))
                break
            found += part
            if len(found) >= group:
                yield found
                found = []
        else:
            stack.pop()
    if found:
        yield found


class _Walk:
    """The folders `walk_stamps` has met, and how it reads one."""

    def __init__(self, root: str, unreadable: list[str] | None, names_only: bool = False) -> None:
        self.root = root
        self.names_only = names_only  # files as (path, 0, 0), no warnings: for counting
        self.real_root = os.path.realpath(root)
        self.unreadable = unreadable
        self.seen_dirs: set[tuple[int, int]] = set()

    def folder(self, rel_dir: str) -> list[list[Stamped] | str]:
        """One folder in path order: runs of its story files, between its subfolders."""
        root = self.root
        full_dir = os.path.join(root, rel_dir) if rel_dir else root
        fd = None
        try:
            try:
                fd = os.open(full_dir, _DIR_FLAGS) if _SCANDIR_FD else None
                st = os.stat(full_dir) if fd is None else os.fstat(fd)
                with os.scandir(full_dir if fd is None else fd) as it:
                    entries = list(it)
            except OSError as exc:
                if not rel_dir:
                    raise ArchiveUnreadable(
                        f"cannot read the archive folder {root}: {exc.strerror or exc}"
                    ) from None
                if not self.names_only:
                    _warn("cannot read archive folder %s: %s", rel_dir, exc.strerror or exc)
                if self.unreadable is not None:
                    self.unreadable.append(rel_dir)
                return []
            if (st.st_dev, st.st_ino) in self.seen_dirs:
                return []
            self.seen_dirs.add((st.st_dev, st.st_ino))
            # With a descriptor, entry.stat() is relative to it: keep it open meanwhile.
            files, subdirs = _scan_entries(
                entries, rel_dir, full_dir, self.real_root, self.names_only
            )
        finally:
            if fd is not None:
                os.close(fd)
        files.sort()  # by path: paths are unique
        if not subdirs:
            return [files]
        subdirs.sort()  # as "name/": where the subfolder's paths fall
        parts: list[list[Stamped] | str] = []
        start = 0
        for key in subdirs:
            end = bisect_left(files, (key,), start)
            if end > start:
                parts.append(files[start:end])
                start = end
            parts.append(key[:-1])
        parts.append(files[start:])
        return parts


def _scan_entries(
    entries: list[os.DirEntry[str]],
    rel_dir: str,
    full_dir: str,
    real_root: str,
    names_only: bool = False,
) -> tuple[list[Stamped], list[str]]:
    """One folder's story files with their stamps (0, 0 when `names_only`), and its
    subfolders as "path/"."""
    prefix = f"{rel_dir}/" if rel_dir else ""
    files: list[Stamped] = []
    subdirs: list[str] = []
    for entry in entries:
        name = entry.name
        if name[0] == ".":
            continue
        # name has no leading dot, so this is os.path.splitext's extension
        is_story = name[name.rfind(".") :].lower() in STORY_SUFFIXES
        try:
            if entry.is_symlink() and (is_story or entry.is_dir()):
                target = os.path.realpath(os.path.join(full_dir, name))
                if not _inside(target, real_root):
                    if not names_only:
                        _warn("not following %s%s: it links outside the archive", prefix, name)
                    continue
            if entry.is_dir():
                subdirs.append(f"{prefix}{name}/")
            elif is_story and names_only:
                files.append((prefix + name, 0, 0))
            elif is_story:
                est = entry.stat()
                files.append((prefix + name, est.st_size, est.st_mtime_ns))
        except OSError:
            continue
    return files, subdirs


def _inside(path: str, real_root: str) -> bool:
    return path == real_root or path.startswith(real_root.rstrip(os.sep) + os.sep)


_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
# With a descriptor, DirEntry.stat() is an fstatat relative to it: no walk of the full path.
_SCANDIR_FD = os.scandir in os.supports_fd


def content_hash(data: bytes) -> str:
    return blake2b(data, digest_size=16).hexdigest()


def canonical_url(url: str) -> str:
    """Normalise a story URL so that trivially different spellings are one story."""
    url = url.strip()
    simple = _SIMPLE_URL.match(url)
    if simple is not None:
        # What the general path below gives for an http(s) URL with a plain host, no
        # userinfo, no port and no query (the common case), without urlsplit & co.
        scheme, host, path = simple.groups()
        path = (path or "").partition("#")[0] or "/"
        if len(path) > 1 and path.endswith("/"):
            path = path.rstrip("/") or "/"
        return f"{scheme.lower()}://{host.lower()}{path}"
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if parts.port and not (
        (scheme == "http" and parts.port == 80) or (scheme == "https" and parts.port == 443)
    ):
        host = f"{host}:{parts.port}"
    path = parts.path or "/"
    if len(path) > 1 and path.endswith("/"):
        path = path.rstrip("/") or "/"
    query = urlencode(
        [
            (k, v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
            if not _TRACKING_PARAMS.match(k)
        ]
    )
    return urlunsplit((scheme, host, path, query, ""))


_B32 = "abcdefghijklmnopqrstuvwxyz234567"
_B32_PAIRS = [a + b for a in _B32 for b in _B32]  # every 10-bit value as two characters


def short_id(canonical: str) -> str:
    """Eight characters of base32 (a-z, 2-7) from the canonical URL: easy to type, stable."""
    # The base32 of the digest's first 5 bytes (40 bits, 8 characters), spelled two
    # characters (10 bits) at a time: a third of the time of b32encode().decode().lower().
    n = int.from_bytes(sha1(canonical.encode()).digest()[:5], "big")
    return (
        _B32_PAIRS[n >> 30]
        + _B32_PAIRS[n >> 20 & 1023]
        + _B32_PAIRS[n >> 10 & 1023]
        + _B32_PAIRS[n & 1023]
    )


def parse_file(
    root: str, path: str, known_hash: str | None = None
) -> tuple[str, ParseResult | None]:
    """Read and parse one archive file; returns (content hash, result).

    The result is None when the content hash equals `known_hash`: the file was
    touched but not changed, so it is not parsed again.
    """
    full = os.path.join(root, path)
    try:
        try:
            fd = os.open(full, _READ_FLAGS)
        except OSError as exc:
            if exc.errno != errno.ELOOP:
                raise
            # A symlink: read only when it resolves inside the archive.
            full = os.path.realpath(full)
            if not _inside(full, os.path.realpath(root)):
                return "", Rejection(path, "links to a file outside the archive")
            fd = os.open(full, _READ_FLAGS)
        try:
            st = os.fstat(fd)
            # Never read a FIFO or a device: it could block the ingest for ever.
            if not stat.S_ISREG(st.st_mode):
                return "", Rejection(path, "not a regular file")
            # read(MAX_FILE_BYTES + 1) would allocate a 1 MB buffer for every 1.5 kB story.
            data = _read_up_to(fd, min(st.st_size, MAX_FILE_BYTES) + 1)
            if len(data) > st.st_size and len(data) <= MAX_FILE_BYTES:  # it grew
                data += _read_up_to(fd, MAX_FILE_BYTES + 1 - len(data))
        finally:
            os.close(fd)
    except OSError as exc:
        return "", Rejection(path, f"cannot read file: {exc.strerror or exc}")
    digest = content_hash(data)
    if digest == known_hash:
        return digest, None
    return digest, parse_story(path, data)


# Non-blocking: opening a FIFO swapped in after the scan returns at once (then fstat rejects it).
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)


def _read_up_to(fd: int, size: int) -> bytes:
    chunks = []
    while size > 0:
        chunk = os.read(fd, size)
        if not chunk:
            break
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def parse_story(path: str, data: bytes) -> ParseResult:
    """Turn the bytes of one archive file into a Story, a Rejection or Skipped. Never raises."""
    try:
        return _parse(path, data)
    except _Reject as exc:
        return Rejection(path, str(exc))
    except RecursionError:
        return Rejection(path, "front matter is nested too deeply")
    except Exception as exc:  # the loader must never stop on one bad file
        return Rejection(path, f"unexpected {type(exc).__name__}: {_one_line(str(exc))}")


def _parse(path: str, data: bytes) -> ParseResult:
    if len(data) > MAX_FILE_BYTES:
        raise _Reject(f"file larger than {MAX_FILE_BYTES:,} bytes")
    if not data.strip():
        raise _Reject("empty file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _Reject(f"not UTF-8 text (bad byte at offset {exc.start})") from None
    meta = _front_matter(text)
    category = meta.get("category")
    # _text rejects containers: str() of an alias bomb would take forever.
    if category is not None and (category := _text(category, "category", 50)).lower() != "news":
        return Skipped(path, _one_line(category))

    title = clean_line(_text(meta.get("title"), "title", MAX_FILE_BYTES), MAX_TITLE)
    if not title:
        raise _Reject("missing title")
    for field in ("originalUrl", "webUrl"):
        if _has_user_info(meta.get(field)):
            raise _Reject(
                f"{field} has a user name before '@' (as in https://site.example@other.example/), "
                "which hides the host it really opens"
            )
    raw_url = _http_url(meta.get("originalUrl")) or _http_url(meta.get("webUrl"))
    if not raw_url:
        raise _Reject("missing an http(s) originalUrl or webUrl")
    canonical = canonical_url(raw_url)
    provider = found if isinstance(found := meta.get("provider"), dict) else {}
    story_type = _text(meta.get("type"), "type", 20).lower() or "article"
    return Story(
        id=short_id(canonical),
        url=raw_url,
        title=title,
        canonical=canonical,
        excerpt=clean_excerpt(_text(meta.get("excerpt"), "excerpt", MAX_FILE_BYTES), MAX_EXCERPT),
        published_at=_datetime(meta.get("publishedDateTime")),
        type="video" if story_type == "video" else "article",
        heat=_heat(meta.get("heat")),
        quality=_optional_int(meta.get("quality")),
        published=_published(meta.get("published")),
        provider=clean_line(_text(provider.get("name"), "provider name", MAX_FILE_BYTES), 200),
        provider_domain=_host_name(_text(provider.get("domain"), "provider domain", 200)),
        provider_icon=_first_image(provider.get("images")),
        image_url=_first_image(meta.get("images")),
        topics=_topics(meta.get("topics")),
        related=_related(meta.get("related")),
    )


def _front_matter(text: str) -> dict[str, Any]:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    opening = _OPENING.match(text)
    if opening is None:
        raise _Reject("no front matter (the file must start with a '---' line)")
    start = opening.end()
    if start == len(text):  # the opening line is the last one
        raise _Reject("front matter is not closed by a '---' line")
    # Only the front matter is scanned: a long body after it costs nothing.
    closing = _CLOSING.search(text, start)
    if closing is None:
        raise _Reject("front matter is not closed by a '---' line")
    source = text[start : max(start, closing.start() - 1)]
    meta = quick_yaml.load(source)
    if meta is not None:
        return meta
    # Imported only now: the archive's regular files never need it (1 MB less in each
    # parse worker).
    import yaml

    # libyaml is several times faster; PyYAML falls back to pure Python without it.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        meta = yaml.load(source, Loader=loader)
    except yaml.YAMLError as exc:
        raise _Reject(f"malformed YAML: {_yaml_problem(exc)}") from None
    except (ValueError, OverflowError) as exc:  # a value YAML recognised but cannot build
        raise _Reject(f"malformed YAML value: {_one_line(str(exc))[:120]}") from None
    if not isinstance(meta, dict):
        raise _Reject("front matter is not a mapping of fields")
    return meta


def _yaml_problem(exc: yaml.YAMLError) -> str:
    problem = getattr(exc, "problem", None) or str(exc)
    mark = getattr(exc, "problem_mark", None)
    where = f" (line {mark.line + 2})" if mark is not None else ""
    return _one_line(str(problem))[:120] + where


def _one_line(text: str) -> str:
    return _WHITESPACE.sub(" ", text).strip()


def _text(value: Any, name: str, limit: int) -> str:
    """A single-line-ish string field; numbers are accepted, containers are not."""
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float | date):
        raise _Reject(f"{name} must be text, got {type(value).__name__}")
    text = str(value).replace("\x00", "").strip()
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


def _http_url(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    url = value.strip()
    if len(url) > MAX_URL or _WHITESPACE.search(url):
        return None
    if _SIMPLE_URL.match(url):  # urlsplit would accept it: http(s), a host, no port
        return url
    return http_url(url, MAX_URL)


def _has_user_info(value: Any) -> bool:
    # No "@" at all (nearly every URL): urlsplit cannot find one in the netloc.
    if not isinstance(value, str) or "@" not in value:
        return False
    try:
        return "@" in urlsplit(value.strip()).netloc
    except ValueError:
        return False


def _host_name(domain: str) -> str:
    """The provider's domain if it is a plain host name (it becomes a link), else ''."""
    return domain if HOST_NAME.match(domain) else ""


def _heat(value: Any) -> int:
    if value is None:
        return 0
    number = _number(value)
    if number is None:
        # Never repr() a container: an alias bomb's repr is exponentially long.
        if isinstance(value, str):
            shown = _one_line(repr(value[:40]))
        elif isinstance(value, float):
            shown = repr(value)
        else:
            shown = type(value).__name__
        raise _Reject(f"heat must be a number, got {shown}")
    return max(0, min(MAX_HEAT, round(number)))


def _optional_int(value: Any) -> int | None:
    number = _number(value)
    return None if number is None else max(-MAX_HEAT, min(MAX_HEAT, round(number)))


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):  # clamped first: float() of a huge int overflows
        number = float(max(-(10**18), min(10**18, value)))
    elif isinstance(value, float):
        number = value
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _published(value: Any) -> bool:
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _FALSE_WORDS:
            return False
        if word in _TRUE_WORDS or not word:
            return True
        raise _Reject(f"published must be true or false, got {word[:40]!r}")
    if value is None:
        return True
    if not isinstance(value, int | float):  # a list is not "true"
        raise _Reject(f"published must be true or false, got {type(value).__name__}")
    return bool(value)


def _datetime(value: Any) -> datetime | None:
    """The publish time as an aware UTC datetime; unreadable or missing dates become None."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # e.g. 9999-12-31T23:59-05:00 is past year 9999 in UTC
        return None


def _first_image(images: Any) -> str | None:
    if isinstance(images, list):
        for image in images:
            if isinstance(image, dict) and (url := _http_url(image.get("url"))):
                return url
    return None


def _topics(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise _Reject(f"topics must be a list, got {type(value).__name__}")
    topics: list[str] = []
    seen: set[str] = set()
    for item in value:
        if not isinstance(item, str | int | float) or isinstance(item, bool):
            continue
        name = clean_line(str(item), MAX_TOPIC_LEN)
        key = name.casefold()
        if name and key not in seen:
            seen.add(key)
            topics.append(name)
        if len(topics) == MAX_TOPICS:
            break
    return tuple(topics)


def _related(value: Any) -> tuple[Coverage, ...]:
    """Curated coverage; links without a title or an http(s) URL are dropped, not fatal."""
    if not isinstance(value, list):
        return ()
    links: list[Coverage] = []
    for item in value:
        if not isinstance(item, dict):
            continue
        try:
            title = clean_line(_text(item.get("title"), "related title", MAX_FILE_BYTES), MAX_TITLE)
            excerpt = clean_excerpt(
                _text(item.get("excerpt"), "related excerpt", MAX_FILE_BYTES), MAX_COVERAGE_EXCERPT
            )
        except _Reject:
            continue
        url = _http_url(item.get("webUrl")) or _http_url(item.get("originalUrl"))
        if not title or not url:
            continue
        provider = found if isinstance(found := item.get("provider"), dict) else {}
        provider_name = provider.get("name")
        links.append(
            Coverage(
                title=title,
                url=url,
                provider=clean_line(provider_name, 200) if isinstance(provider_name, str) else "",
                excerpt=excerpt,
                published_at=_datetime(item.get("publishedDateTime")),
                type="video" if item.get("type") == "video" else "article",
            )
        )
        if len(links) == MAX_RELATED:
            break
    return tuple(links)
