"""Configuration from the environment (and `.env`), read once into a validated object.

Nothing else in the project reads `os.environ`; every key is explained in `.env.example`.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

from core.sharding import Shards, parse_shard_ids

if TYPE_CHECKING:
    from core.sources.config import Source


class ConfigError(ValueError):
    """A bad setting; the message is one line naming the variable."""


LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")


@dataclass(frozen=True)
class Config:
    token: str | None = field(default=None, repr=False)  # never printed
    archive: Path = Path("seeds")
    db_path: Path = Path("data/news.db")
    # NEWS_DB as a postgresql:// URL: the store is PostgreSQL there, db_path is unused.
    db_url: str | None = field(default=None, repr=False)  # may hold a password
    hot_heat: int = 100
    poll_seconds: int = 300
    max_age_hours: int = 72
    posts_per_poll: int = 5
    ingest_timeout_seconds: int = 600
    dev_guild: int | None = None
    log_level: str = "INFO"
    sources_file: Path | None = None  # NEWS_SOURCES; None: NEWS_ARCHIVE is the one source
    data_dir: Path = Path("data")  # NEWS_DATA: clones of git sources live here
    # The parsed sources file (see core/sources/config.py), read once with the rest.
    source_list: tuple[Source, ...] = ()
    # NEWS_SHARD_COUNT / NEWS_SHARD_IDS: the shards this process runs (None: as Discord
    # recommends, all of them in this one process).
    shard_count: int | None = None
    shard_ids: tuple[int, ...] | None = None

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, dotenv_path: str | Path | None = ".env"
    ) -> Config:
        """Values from `environ` (default: the process environment) over those of `.env`."""
        values: dict[str, str | None] = {}
        if dotenv_path is not None and Path(dotenv_path).is_file():
            from dotenv import dotenv_values  # only when there is a .env (a slow import)

            values.update(dotenv_values(dotenv_path))
        values.update(os.environ if environ is None else environ)

        def get(name: str) -> str | None:
            value = values.get(name)
            return value.strip() if value and value.strip() else None

        database = get("NEWS_DB")
        return cls(
            token=get("DISCORD_TOKEN"),
            archive=Path(get("NEWS_ARCHIVE") or "seeds"),
            db_path=Path(database if database and not _is_url(database) else "data/news.db"),
            db_url=database if database and _is_url(database) else None,
            hot_heat=_int(get, "NEWS_HOT_HEAT", 100, 0, 1_000_000),
            poll_seconds=_int(get, "NEWS_POLL_SECONDS", 300, 5, 86_400),
            max_age_hours=_int(get, "NEWS_MAX_AGE_HOURS", 72, 0, 100_000),
            posts_per_poll=_int(get, "NEWS_POSTS_PER_POLL", 5, 1, 50),
            ingest_timeout_seconds=_int(get, "NEWS_INGEST_TIMEOUT_SECONDS", 600, 1, 86_400),
            dev_guild=_int(get, "NEWS_DEV_GUILD", None, 1, 2**64 - 1),
            log_level=_log_level(get("LOG_LEVEL")),
            sources_file=Path(sources) if (sources := get("NEWS_SOURCES")) else None,
            data_dir=Path(get("NEWS_DATA") or "data"),
            source_list=_sources(sources),
            **_shards(get),
        )

    @property
    def shards(self) -> Shards:
        """The guilds this process delivers to: those on its shards."""
        if self.shard_count is None:
            return Shards.everything()
        return Shards(self.shard_count, self.shard_ids or tuple(range(self.shard_count)))

    @property
    def database(self) -> str | Path:
        """What NEWS_DB names, for `core.store.open_store`: a PostgreSQL URL or a file."""
        return self.db_url or self.db_path

    @property
    def sources(self) -> tuple[Source, ...]:
        """The sources to follow: the sources file's, else NEWS_ARCHIVE alone."""
        from core.sources.config import archive_source

        return self.source_list or (archive_source(self.archive),)

    def configure_logging(self) -> None:
        logging.basicConfig(
            level=self.log_level, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s"
        )
        redact_secrets_in_logs(self.token)


_Get = Callable[[str], str | None]  # a setting by name, None when unset or blank

# Interaction and webhook tokens sit in request URLs, which discord.py logs at DEBUG.
_TOKEN_IN_URL = re.compile(r"(/(?:webhooks|interactions)/\d+/)[^/\s?'\"]+")
_secrets: set[str] = set()


def redact_secrets_in_logs(token: str | None = None) -> None:
    """Rewrite every log record, of every logger and handler, without tokens.

    Installed as the record factory, so it holds for handlers added later too
    (pytest's, a journal's). Installing it again only adds `token`.
    """
    if token:
        _secrets.add(token)
    factory = logging.getLogRecordFactory()
    if getattr(factory, "redacts", False):
        return

    def make_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: logging reports it when emitting
            return record
        clean = _TOKEN_IN_URL.sub(r"\1[redacted]", message)
        for secret in _secrets:
            clean = clean.replace(secret, "[redacted]")
        if clean != message:
            record.msg, record.args = clean, None
        return record

    make_record.redacts = True  # type: ignore[attr-defined]  # a mark: installed already
    logging.setLogRecordFactory(make_record)


@overload
def _int(get: _Get, name: str, default: int, low: int, high: int) -> int: ...
@overload
def _int(get: _Get, name: str, default: None, low: int, high: int) -> int | None: ...
def _int(get: _Get, name: str, default: int | None, low: int, high: int) -> int | None:
    raw = get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}, got {value}")
    return value


def _sources(path: str | None) -> tuple[Source, ...]:
    if path is None:
        return ()
    from core.sources.config import load_sources  # it needs ConfigError from here

    return load_sources(Path(path))


def _shards(get: _Get) -> dict[str, Any]:
    count = _int(get, "NEWS_SHARD_COUNT", None, 1, 65_535)
    raw = get("NEWS_SHARD_IDS")
    if raw is None:
        return {"shard_count": count, "shard_ids": None}
    if count is None:
        raise ConfigError("NEWS_SHARD_IDS needs NEWS_SHARD_COUNT (the total over every process)")
    try:
        ids = parse_shard_ids(raw, count)
    except ValueError as exc:
        raise ConfigError(f"NEWS_SHARD_IDS: {exc}") from None
    return {"shard_count": count, "shard_ids": ids}


def _log_level(raw: str | None) -> str:
    level = (raw or "INFO").upper()
    if level not in LOG_LEVELS:
        raise ConfigError(f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, got {raw!r}")
    return level


def _is_url(value: str) -> bool:
    return value.startswith(("postgresql://", "postgres://"))
