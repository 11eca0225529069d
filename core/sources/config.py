"""The sources file (`NEWS_SOURCES`): which folders, git repositories and feeds to follow.

The operator writes it; nobody on Discord can add a source, so the bot fetches
nothing a member chose. It is validated strictly: every mistake is one line
naming the file, the source and the field.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from core.config import ConfigError

KINDS = ("folder", "git", "feed")
# Fields each kind accepts besides `name` and its own key.
FIELDS = {
    "folder": {"every"},
    "git": {"branch", "path", "every"},
    "feed": {"topics", "heat", "every"},
}
NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
BRANCH = re.compile(r"[A-Za-z0-9._/-]{1,200}")
EVERY = re.compile(r"(\d+)\s*([smhd]?)")
UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86_400}
MIN_EVERY, MAX_EVERY = 5, 7 * 86_400
MAX_HEAT = 1_000_000


@dataclass(frozen=True, slots=True)
class Source:
    """One place stories come from."""

    name: str
    kind: str  # folder, git or feed
    location: str  # the folder's path or the repository's / feed's URL
    branch: str | None = None  # git: the branch to follow (default: the remote's)
    path: str = ""  # git: only this folder of the repository
    topics: tuple[str, ...] = ()  # feed: added to every item
    heat: int = 0  # feed: the heat of its items
    every: int | None = None  # seconds between fetches (None: NEWS_POLL_SECONDS)
    # The lone NEWS_ARCHIVE of a set-up without a sources file: its files keep
    # their bare paths in the database, as before sources existed.
    implicit: bool = False

    @property
    def key(self) -> str:
        """What the database files this source's records under ("" for the implicit one)."""
        return "" if self.implicit else self.name


def archive_source(archive: Path) -> Source:
    """NEWS_ARCHIVE as the one source, when there is no sources file."""
    return Source(name="archive", kind="folder", location=str(archive), implicit=True)


def load_sources(path: Path) -> tuple[Source, ...]:
    """Read and validate the sources file; raises `ConfigError` with one line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"NEWS_SOURCES {path}: cannot read it: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise ConfigError(f"NEWS_SOURCES {path}: not valid YAML{where}") from None
    return parse_sources(data, str(path), base=path.parent)


def parse_sources(data: Any, where: str, base: Path = Path()) -> tuple[Source, ...]:
    def fail(message: str) -> ConfigError:
        return ConfigError(f"NEWS_SOURCES {where}: {message}")

    if not isinstance(data, dict) or set(data) != {"sources"}:
        raise fail("must be a mapping with one key, `sources:`, holding a list")
    items = data["sources"]
    if not isinstance(items, list) or not items:
        raise fail("`sources:` must be a non-empty list")
    out: list[Source] = []
    seen: set[str] = set()
    for number, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            raise fail(f"source #{number} must be a mapping (name: ..., folder|git|feed: ...)")
        name = item.get("name")
        if not isinstance(name, str) or not NAME.fullmatch(name):
            raise fail(
                f"source #{number}: name must be 1-40 lowercase letters, digits, '-' or '_',"
                f" starting with a letter or digit, got {name!r}"
            )
        if name in seen:
            raise fail(f"source {name!r}: the name is used twice")
        seen.add(name)
        kinds = [k for k in KINDS if k in item]
        if len(kinds) != 1:
            raise fail(f"source {name!r}: needs exactly one of folder, git or feed")
        kind = kinds[0]
        unknown = set(item) - {"name", kind} - FIELDS[kind]
        if unknown:
            allowed = ", ".join(sorted({"name", kind} | FIELDS[kind]))
            raise fail(
                f"source {name!r}: unknown field {sorted(unknown)[0]!r} for a {kind} source"
                f" (allowed: {allowed})"
            )

        def field_error(field: str, message: str, name: str = name) -> ConfigError:
            return fail(f"source {name!r}: {field} {message}")

        location = item[kind]
        if not isinstance(location, str) or not location.strip():
            raise field_error(kind, "must be a non-empty string")
        location = location.strip()
        source: dict[str, Any] = {"name": name, "kind": kind, "location": location}
        if kind == "folder":
            folder = Path(location).expanduser()
            source["location"] = str(folder if folder.is_absolute() else base / folder)
        elif kind == "git":
            if location.startswith("-") or any(c in location for c in "\n\r\0"):
                raise field_error("git", f"is not a repository URL: {location!r}")
            branch = item.get("branch")
            if branch is not None:
                if not isinstance(branch, str) or not BRANCH.fullmatch(branch) or ".." in branch:
                    raise field_error("branch", f"is not a branch name: {branch!r}")
                source["branch"] = branch
            sub = item.get("path")
            if sub is not None:
                parts = sub.strip("/").split("/") if isinstance(sub, str) else None
                if not parts or any(p in ("", ".", "..") for p in parts):
                    raise field_error("path", f"must be a folder inside the repository: {sub!r}")
                source["path"] = "/".join(parts)
        else:
            url = urlsplit(location)
            if url.scheme not in ("http", "https") or not url.hostname:
                raise field_error("feed", f"must be an http(s) URL, got {location!r}")
            topics = item.get("topics", [])
            if isinstance(topics, str):
                topics = [topics]
            if not isinstance(topics, list) or not all(
                isinstance(t, str) and t.strip() and len(t) <= 100 for t in topics
            ):
                raise field_error("topics", "must be a list of topic names")
            source["topics"] = tuple(dict.fromkeys(t.strip() for t in topics))
            heat = item.get("heat", 0)
            if isinstance(heat, bool) or not isinstance(heat, int) or not 0 <= heat <= MAX_HEAT:
                raise field_error("heat", f"must be a whole number 0-{MAX_HEAT}, got {heat!r}")
            source["heat"] = heat
        if "every" in item:
            source["every"] = _every(item["every"], field_error)
        out.append(Source(**source))
    return tuple(out)


def _every(value: Any, field_error: Callable[[str, str], ConfigError]) -> int:
    """`15m`, `30s`, `2h`, `1d` or a number of seconds."""
    match = None if isinstance(value, bool) else EVERY.fullmatch(str(value).strip())
    if match is None:
        raise field_error("every", f"must be like 30s, 15m, 2h or 1d, got {value!r}")
    seconds = int(match[1]) * UNITS[match[2]]
    if not MIN_EVERY <= seconds <= MAX_EVERY:
        raise field_error("every", f"must be between {MIN_EVERY}s and 7d, got {value!r}")
    return seconds
