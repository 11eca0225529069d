"""Sources: where stories come from (a folder, a git repository, a feed), and following them.

`follow` fetches the sources that are due, each on its own: a failing source is
recorded (with a backoff) and never stops the others; the stories the bot has
stay. A folder or a git checkout is ingested as a folder (git also says which
paths changed); a feed's entries are ingested as parsed stories.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from core.archive import ArchiveUnreadable
from core.ingest import (
    ArchiveChanged,
    IngestReport,
    IngestTimeout,
    ingest_archive,
    ingest_stories,
    open_writer,
)
from core.sources import feed, git
from core.sources.config import Source
from core.store.epochs import to_epoch
from core.store.protocol import NewsStore
from core.store.source_state import SourceState

log = logging.getLogger(__name__)

MAX_BACKOFF = 6 * 3600  # seconds: a source failing for days is still tried 4 times a day


@dataclass
class Outcome:
    """What one fetch of one source did: a report, or an error (one line)."""

    source: Source
    report: IngestReport | None = None
    error: str | None = None
    not_modified: bool = False


def follow(
    store: NewsStore | str | Path,
    sources: tuple[Source, ...],
    data_dir: Path,
    poll_seconds: int,
    now: datetime,
    force: bool = False,
    replace: bool = False,
    time_limit: float | None = None,
) -> list[Outcome]:
    """Fetch and ingest every due source (all with `force`). Blocking: run it in a thread.

    Everything is written through the store's `archive_writer()` (a path stands for the
    SQLite store there).

    `time_limit` bounds the ingest of each folder or git source (NEWS_INGEST_TIMEOUT_SECONDS):
    past it, that ingest stops between files and carries on at the next fetch.
    """
    states = source_states(store, sources)
    outcomes = []
    for source in sources:
        state = states[source.name]
        if not force and state.next_fetch_at is not None and state.next_fetch_at > to_epoch(now):
            continue
        outcome = Outcome(source)
        state.last_attempt_at = to_epoch(now)
        try:
            outcome.report = _fetch(store, source, state, data_dir, now, replace, time_limit)
            outcome.not_modified = outcome.report is None
            state.last_success_at, state.last_error, state.failures = to_epoch(now), None, 0
        except (
            git.GitError,
            feed.FeedError,
            ArchiveUnreadable,
            ArchiveChanged,
            IngestTimeout,
        ) as exc:
            outcome.error = str(exc)
        except Exception as exc:  # one broken source must not stop the others
            log.exception("source %s failed", source.name)
            outcome.error = f"unexpected {type(exc).__name__}: {exc}"
        every = source.every or poll_seconds
        if outcome.error is not None:
            state.last_error = " ".join(outcome.error.split())[:500]
            state.failures += 1
            # Back off: twice the interval per failure in a row, up to MAX_BACKOFF.
            wait = min(every * 2 ** min(state.failures, 16), max(MAX_BACKOFF, every))
            log.warning("source %s: %s (retry in %ds)", source.name, state.last_error, wait)
        else:
            wait = every
        state.next_fetch_at = to_epoch(now) + wait
        _save(store, source, state)
        outcomes.append(outcome)
    return outcomes


def source_states(
    store: NewsStore | str | Path, sources: tuple[Source, ...]
) -> dict[str, SourceState]:
    """Each source's state (a fresh one for a source never fetched)."""
    writer = open_writer(store)
    try:
        known = writer.source_states()
    finally:
        writer.close()
    out = {}
    for source in sources:
        state = known.get(source.name)
        if state is None or state.kind != source.kind or state.location != source.location:
            # A new source, or the file now names another place under this name.
            state = SourceState(source.name, source.kind, source.location)
        out[source.name] = state
    return out


def _fetch(
    store: NewsStore | str | Path,
    source: Source,
    state: SourceState,
    data_dir: Path,
    now: datetime,
    replace: bool,
    time_limit: float | None,
) -> IngestReport | None:
    if source.kind == "folder":
        return ingest_archive(
            store,
            source.location,
            now,
            replace=replace or not source.implicit,
            source=source.key,
            time_limit=time_limit,
        )
    if source.kind == "git":
        checkout = git.update(source, data_dir, state.git_commit)
        report = ingest_archive(
            store,
            checkout.folder,
            now,
            replace=True,
            source=source.key,
            changed=checkout.changed,
            time_limit=time_limit,
        )
        state.git_commit = checkout.commit  # only once its files are in
        return report
    fetched = feed.fetch(source.location, state.etag, state.last_modified)
    if fetched.body is None:
        return None  # 304: nothing new
    parsed = feed.parse(fetched.body, source, source.location)
    report = ingest_stories(store, source.key, parsed.stories, now)
    report.skipped = parsed.skipped
    state.etag, state.last_modified, state.title = fetched.etag, fetched.last_modified, parsed.title
    return report


def _save(store: NewsStore | str | Path, source: Source, state: SourceState) -> None:
    writer = open_writer(store)
    try:
        state.items = writer.file_count(f"{source.key}:" if source.key else "")
        writer.save_source_state(state)
    finally:
        writer.close()
