"""Incremental, idempotent ingest of the archive into the store.

scan (size + mtime) → read + hash the files that look changed → parse only
those whose hash changed (in worker processes when there are many, so both
cores parse) → write in batches → hide stories whose files disappeared.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import operator
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from core.archive import ArchiveFile, ParseResult, parse_file, scan_stamps
from core.models import Coverage, Rejection, Story
from core.store.archive_writer import ArchiveWriter, WriteCounts, epoch, fingerprint
from core.store.schema import connect, migrate

log = logging.getLogger(__name__)

# Below this many changed files, worker start-up costs more than it saves.
PARALLEL_THRESHOLD = 400
CHUNK = 200
# Rows per write transaction: larger batches let FTS5 flush bigger segments (fewer merges).
BATCH = 2000
# Page cache of the ingest connection (KiB): the default 2 MB thrashes on the random
# inserts into the unique and FTS indexes once the archive has ~100k stories.
CACHE_KIB = 64 * 1024

Progress = Callable[[int, int], None]


@dataclass
class IngestReport:
    scanned: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    parsed: int = 0
    skipped: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)  # folders whose stories were kept
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)

    def summary(self) -> str:
        return (
            f"{self.scanned} files: {self.added} added, {self.updated} updated, "
            f"{self.unchanged} unchanged, {self.removed} removed, {self.skipped} skipped "
            f"(not news), {len(self.rejected)} rejected, in {self.seconds:.2f}s"
        )


def ingest_archive(
    db_path: str | Path,
    root: str | Path,
    now: datetime,
    progress: Progress | None = None,
    workers: int | None = None,
) -> IngestReport:
    """Bring the database in line with the archive at `root`. Synchronous: run it in a thread.

    Raises `ArchiveUnreadable` (and changes nothing) when `root` cannot be listed. The
    files of a subfolder that cannot be listed are kept as they were, not removed.
    """
    started = time.perf_counter()
    root = os.fspath(root)
    report = IngestReport()
    conn = connect(db_path)
    try:
        conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        migrate(conn)
        writer = ArchiveWriter(conn)
        known = writer.known_stamps()
        stamps = scan_stamps(root, report.unreadable)
        for folder in report.unreadable:  # unknown is not gone: keep what we knew
            prefix = folder + "/"
            stamps.update((p, known[p]) for p in known if p.startswith(prefix) and p not in stamps)
        report.scanned = len(stamps)
        if stamps == known:  # the common rescan: one comparison in C, no per-file work
            gone: list[str] = []
            candidates: list[ArchiveFile] = []
        else:
            gone = [path for path in known if path not in stamps]
            candidates = [
                ArchiveFile(path, *stamp)
                for path, stamp in stamps.items()
                if known.get(path) != stamp
            ]
        # A story filed twice shows its last-written file: when that file goes, the
        # other file's text must show again, so it is read again too.
        reread = {p for p in writer.sibling_paths(gone) if p in stamps} if gone else set()
        candidates += [
            ArchiveFile(path, *stamps[path])
            for path in sorted(reread - {f.path for f in candidates})
        ]
        report.unchanged = len(stamps) - len(candidates)
        total = len(candidates)
        if progress:
            progress(0, total)
        stamp = epoch(now)
        counts = WriteCounts()
        touched: list[ArchiveFile] = []
        batch: list[tuple[ArchiveFile, str, ParseResult, str | None]] = []

        def flush() -> None:
            part, _ = writer.write(batch, stamp)
            counts.added += part.added
            counts.updated += part.updated
            counts.unchanged += part.unchanged
            batch.clear()

        known_hashes = writer.known_hashes(
            [f.path for f in candidates if f.path in known and f.path not in reread]
        )
        parsed = _parse_all(root, candidates, known_hashes, workers)
        for done, item in enumerate(parsed, start=1):
            if item[2] is None:  # same content, new mtime (a touch or a checkout)
                touched.append(item[0])
                report.unchanged += 1
            else:
                report.parsed += 1
                batch.append(item)
                if len(batch) >= BATCH:
                    flush()
            if progress and (done % 100 == 0 or done == total):
                progress(done, total)
        if batch:
            flush()
        if touched:
            writer.touch_files(touched)
        if gone:
            writer.forget_files(gone)
        if gone or report.parsed:
            report.removed = writer.mark_removed(stamp)
            writer.count_topics()
            writer.count_terms()
        report.added, report.updated = counts.added, counts.updated
        report.unchanged += counts.unchanged
        report.rejected = writer.rejections()
        report.skipped = writer.skipped_count()
    finally:
        conn.close()
    report.seconds = time.perf_counter() - started
    log.debug("ingest of %s: %s", root, report.summary())  # the caller says what matters
    return report


def _parse_all(
    root: str, files: list[ArchiveFile], known_hashes: dict[str, str], workers: int | None
) -> Iterator[tuple[ArchiveFile, str, ParseResult | None, str | None]]:
    """Yield (file, hash, result, fingerprint) in order.

    The result is None when the hash is unchanged; the fingerprint is the story's
    (see `ArchiveWriter.write`), computed here so that the workers share that work.
    """
    chunks = [files[i : i + CHUNK] for i in range(0, len(files), CHUNK)]
    workers = workers or os.cpu_count() or 1
    if len(files) < PARALLEL_THRESHOLD or workers < 2:
        for chunk in chunks:
            yield from _parse_chunk(root, chunk, known_hashes)
        return
    # spawn, not fork: the bot calls this from a thread beside a running event loop.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=context,
        initializer=_die_with_parent,
        initargs=(os.getpid(),),
    ) as pool:
        jobs = pool.map(
            _parse_chunk_packed,
            [root] * len(chunks),
            [[f.path for f in c] for c in chunks],
            [{f.path: known_hashes[f.path] for f in c if f.path in known_hashes} for c in chunks],
        )
        for chunk, results in zip(chunks, jobs, strict=True):
            yield from map(_unpack, chunk, results)


def _die_with_parent(parent: int) -> None:
    """In a worker: exit once the ingest process is gone, so `kill -9` leaves no orphans.

    (A worker blocked on its job queue never sees the parent die otherwise: each
    worker holds the queue's write end too.)
    """

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.2)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _parse_chunk(
    root: str, files: Iterable[ArchiveFile], known_hashes: dict[str, str]
) -> list[tuple[ArchiveFile, str, ParseResult | None, str | None]]:
    out = []
    for file in files:
        digest, result = parse_file(root, file.path, known_hashes.get(file.path))
        out.append((file, digest, result, fingerprint(result) if type(result) is Story else None))
    return out


# Between processes a Story travels as a plain tuple of its fields (its related links as
# tuples too): pickling frozen slots dataclasses costs about twice as much, both ways.
_story_fields = operator.attrgetter(*Story.__slots__)
_coverage_fields = operator.attrgetter(*Coverage.__slots__)
_RELATED = Story.__slots__.index("related")


def _parse_chunk_packed(
    root: str, paths: list[str], known_hashes: dict[str, str]
) -> list[tuple[str, ParseResult | tuple | None, str | None]]:
    """`_parse_chunk` in a worker: (hash, result, fingerprint), a Story as a tuple."""
    out = []
    for path in paths:
        digest, result = parse_file(root, path, known_hashes.get(path))
        if type(result) is Story:
            fields = _story_fields(result)
            if result.related:
                related = tuple(map(_coverage_fields, result.related))
                fields = (*fields[:_RELATED], related, *fields[_RELATED + 1 :])
            out.append((digest, fields, fingerprint(result)))
        else:
            out.append((digest, result, None))
    return out


def _unpack(
    file: ArchiveFile, packed: tuple[str, ParseResult | tuple | None, str | None]
) -> tuple[ArchiveFile, str, ParseResult | None, str | None]:
    digest, result, print_ = packed
    if type(result) is tuple:
        related = result[_RELATED]
        if related:
            result = (
                *result[:_RELATED],
                tuple(Coverage(*c) for c in related),
                *result[_RELATED + 1 :],
            )
        result = Story(*result)
    return file, digest, result, print_


async def ingest(store, root: str | Path, now: datetime, progress: Progress | None = None):
    """Run `ingest_archive` for an open `Store` without blocking the event loop."""
    return await asyncio.to_thread(ingest_archive, store.path, root, now, progress)
