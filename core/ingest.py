"""Incremental, idempotent ingest of the archive into the store.

scan (size + mtime) → read + hash the files that look changed → parse only
those whose hash changed (in worker processes when there are many, so both
cores parse) → write in batches → hide stories whose files disappeared.

An ingest past its time limit is abandoned between two files: the batches
written so far stay (each is one transaction), nothing is marked removed, and
the next ingest reads the rest.
"""

from __future__ import annotations

import contextlib
import logging
import operator
import os
import pickle
import stat
import subprocess
import sys
import threading
import time
from array import array
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from itertools import chain, islice
from pathlib import Path
from typing import TYPE_CHECKING

from core.archive import (
    PARSER_VERSION,
    STORY_SUFFIXES,
    ArchiveFile,
    ParseResult,
    Stamped,
    count_story_files,
    parse_file,
    walk_stamps,
)
from core.fingerprint import fingerprint
from core.models import Rejection, Story
from core.parse_worker import Packed, unpack
from core.store import is_postgres_url
from core.store.archive_writer import SqliteArchiveWriter, _prefix_range
from core.store.protocol import ArchiveWriter, NewsStore, ParsedFile, WriteCounts

if TYPE_CHECKING:  # asyncio only for `ingest`: `python -m bot ingest` runs without it
    import asyncio

log = logging.getLogger(__name__)

# Below this many files to read, worker start-up costs more than it saves. A rescan's
# are found as its walk goes on: the workers start once this many are, and parse while
# the walk continues (in a 1%-changed rescan of 100k files, the parse hides behind it).
PARALLEL_THRESHOLD = 200
# A cold ingest has no walk to hide the workers' start behind: they pay from ≈2,000 files
# (whole process, 5 rounds: 1,000 files 0.23 s in-process vs 0.27 s with workers; 3,000
# files 0.51 vs 0.43 s).
COLD_PARALLEL_THRESHOLD = 2000
CHUNK = 200
# Chunks in flight per worker: enough to keep the workers busy while the writer works,
# few enough that parsed stories do not pile up in this process when the writer lags.
WINDOW_PER_WORKER = 3
# A rescan's files found before its other workers start (see `_parse_all`'s `trickle`).
MANY_FILES = 4000
# Rows per write transaction: larger batches let FTS5 flush bigger segments (fewer merges).
# (1,500 held 2.5 MB fewer parsed stories, but with a 4 MB cache took 5% longer at 100k.)
BATCH = 2000

Progress = Callable[[int, int], None]
# bot_state keys: the archive the database was built from, and the parser that read it.
ARCHIVE_PATH_KEY = "archive_path"
PARSER_VERSION_KEY = "parser_version"


class ArchiveChanged(Exception):
    """The database was built from another archive: ingesting this one would hide it all."""

    def __init__(self, recorded: str, requested: str) -> None:
        super().__init__(
            f"the database was built from the archive {recorded}, not {requested}; "
            "ingesting this one would hide every story of the other. To switch archives, "
            "run `python -m bot ingest --replace` (with NEWS_ARCHIVE or PATH set to the new "
            "one), or set NEWS_DB to another database."
        )
        self.recorded = recorded
        self.requested = requested


class IngestTimeout(Exception):
    """The ingest ran past its time limit and was abandoned; it resumes at the next one."""

    def __init__(
        self, root: str | Path, seconds: float, stopping: asyncio.Future[IngestReport] | None = None
    ):
        super().__init__(
            f"ingest of {os.fspath(root)} took longer than {seconds:g}s "
            "(NEWS_INGEST_TIMEOUT_SECONDS) and was abandoned; what it wrote stays, "
            "the next ingest carries on"
        )
        # The abandoned ingest's thread, still finishing its current file (bot: don't overlap).
        self.stopping = stopping


@dataclass
class IngestReport:
    scanned: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    parsed: int = 0
    skipped: int = 0
    unpublished: int = 0
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
            f"(not news), {len(self.rejected)} rejected, {self.unpublished} unpublished, "
            f"in {self.seconds:.2f}s"
        )


def ingest_archive(
    store: NewsStore | str | Path,
    root: str | Path,
    now: datetime,
    progress: Progress | None = None,
    workers: int | None = None,
    replace: bool = False,
    time_limit: float | None = None,
    cancel: threading.Event | None = None,
    source: str = "",
    changed: list[str] | None = None,
) -> IngestReport:
    """Bring the store in line with the archive at `root`. Synchronous: run it in a thread.

    Everything is written through the store's `archive_writer()`; a path stands for the
    SQLite store at that path.

    `source` names the source (see core/sources) whose folder `root` is: its files are
    recorded as "source:path", apart from other sources' ("": the lone NEWS_ARCHIVE).
    `changed` lists the only paths that may have changed (git knows): the rescan then
    looks at those alone instead of walking the whole folder.

    Raises `ArchiveUnreadable` (and changes nothing) when `root` cannot be listed. The
    files of a subfolder that cannot be listed are kept as they were, not removed.
    Raises `ArchiveChanged` when the database was built from another archive folder,
    unless `replace` (then that archive's stories are hidden, this one's shown).
    Raises `IngestTimeout` once `time_limit` seconds have passed or `cancel` is set,
    checked between files.
    """
    started = time.perf_counter()
    deadline = None if time_limit is None else started + time_limit  # real seconds of work

    def abandon_if_due() -> None:
        if (cancel is not None and cancel.is_set()) or (
            deadline is not None and time.perf_counter() > deadline
        ):
            raise IngestTimeout(root, time_limit or 0)

    root = os.fspath(root)
    here = str(Path(root).resolve())
    scope = f"{source}:" if source else ""  # this source's paths start so
    path_key = f"{ARCHIVE_PATH_KEY}:{source}" if source else ARCHIVE_PATH_KEY
    parser_key = f"{PARSER_VERSION_KEY}:{source}" if source else PARSER_VERSION_KEY
    report = IngestReport()
    writer = open_writer(store)
    try:
        recorded = writer.state(path_key)
        if recorded is not None and recorded != here and not replace:
            raise ArchiveChanged(recorded, here)
        # Files read by an older parser are parsed again, changed or not.
        reparse = writer.state(parser_key) != str(PARSER_VERSION)
        low, end = _prefix_range(scope) if scope else ("", None)
        cold = changed is None and not writer.has_files(low, end)
        scan = _Scan(scope)
        if cold:
            # Nothing stored to compare with: every file is read as the walk finds it,
            # with no list of the archive's files (memory does not grow with its size).
            files: Iterable[ArchiveFile] = _walk_files(root, scope, scan, report.unreadable)
            total = count_story_files(root) if progress else 0  # the walk, names only
        else:
            # The files found changed are read as the compare finds them (the parse
            # overlaps the walk); their number, the total, is known once it is done.
            if changed is not None and not reparse:
                found: Iterable[ArchiveFile] = list(_compare_paths(writer, root, changed, scan))
            else:
                found = _compare_walk(writer, root, reparse, report.unreadable, low, end, scan)
            files, total = _and_siblings(writer, found, scan), 0
        if progress:
            progress(0, total)
        counts = WriteCounts()
        touched: list[ArchiveFile] = []
        batch: list[ParsedFile] = []

        def flush() -> None:
            part, _ = writer.write(batch, now)
            counts.added += part.added
            counts.updated += part.updated
            counts.unchanged += part.unchanged
            batch.clear()

        def known_hashes(paths: list[str]) -> dict[str, str]:
            """The stored hashes of those of `paths` that changed (a touch keeps its hash)."""
            stored = [path for path in paths if path in scan.changed]
            return writer.known_hashes(stored) if stored else {}

        unfinished = writer.ingest_unfinished()
        carried: list[Story] = []
        # closing: an abandoned parse also cancels the worker processes' queued chunks.
        done = 0
        with contextlib.closing(
            _parse_all(root, files, known_hashes, workers, len(scope), trickle=not cold)
        ) as parsed:
            for item in parsed:
                done += 1
                abandon_if_due()
                file, digest, result, print_ = item
                if result is None:  # same content, new mtime (a touch or a checkout)
                    touched.append(file)
                    report.unchanged += 1
                else:
                    report.parsed += 1
                    batch.append((file, digest, result, print_))
                    if scope and type(result) is Story:
                        carried.append(result)
                    if len(batch) >= BATCH:
                        if not unfinished:  # recorded before the first batch commits
                            writer.set_ingest_unfinished(True)
                            unfinished = True
                        flush()
                if progress and not total and scan.complete:  # a rescan's, now known
                    total = len(scan.files)
                if progress and (done % 100 == 0 or done == total):
                    progress(done, total)
        if progress and done != total:  # a rescan's total came late, or a cold one's count
            progress(done, done)
        if batch:
            flush()
        gone = scan.gone  # complete with the walk
        if not cold:
            report.unchanged += scan.scanned - len(scan.files)
        if carried:
            writer.note_sources(source, carried, now)
        if touched:
            writer.touch_files(touched)
        if gone:
            writer.forget_files(gone)
        # The scan is complete only here: an abandoned one must not hide anything.
        if gone or report.parsed or unfinished:
            report.removed = writer.mark_removed(now)
            writer.count_topics()
            writer.count_terms()
            if unfinished:
                writer.set_ingest_unfinished(False)
        report.scanned = scan.scanned  # a cold ingest's, complete with the walk
        report.unreadable = [scope + folder for folder in report.unreadable]
        report.added, report.updated = counts.added, counts.updated
        report.unchanged += counts.unchanged
        report.rejected, report.skipped = writer.not_stories()
        report.unpublished = writer.unpublished_count()
        states = {path_key: here}
        if reparse and not scan.kept:  # else the kept files still wait for the new parser
            states[parser_key] = str(PARSER_VERSION)
        if recorded != here or parser_key in states:
            writer.set_states(states)
    finally:
        writer.close()
    report.seconds = time.perf_counter() - started
    return report


def open_writer(store: NewsStore | str | Path) -> ArchiveWriter:
    """The store's writer for one ingest; a path stands for the SQLite store there, a
    `postgresql://` URL for the PostgreSQL one."""
    if is_postgres_url(store):
        from core.store.postgres.writer import PostgresArchiveWriter

        return PostgresArchiveWriter.open_url(str(store))
    if isinstance(store, str | os.PathLike):
        return SqliteArchiveWriter.open(store)
    return store.archive_writer()


class _Files:
    """Files a rescan must read, in order, held compactly: after a parser change that is
    every file of the archive, and a path with two machine integers costs about half an
    `ArchiveFile` (≈120 B a file instead of ≈230 B)."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.sizes = array("q")
        self.mtimes = array("q")

    def append(self, path: str, size: int, mtime_ns: int) -> None:
        self.paths.append(path)
        self.sizes.append(size)
        self.mtimes.append(mtime_ns)

    def __len__(self) -> int:
        return len(self.paths)

    def __iter__(self) -> Iterator[ArchiveFile]:
        return map(ArchiveFile, self.paths, self.sizes, self.mtimes)


@dataclass
class _Scan:
    """What a rescan found to do: compact, whatever the archive's size."""

    scope: str = ""  # the source's prefix of each path (see `ingest_archive`)
    files: _Files = field(default_factory=_Files)  # to read, in path order
    changed: set[str] = field(default_factory=set)  # those whose stored hash may match
    gone: list[str] = field(default_factory=list)  # stored files the scan did not find
    scanned: int = 0
    kept: int = 0  # stored files of folders that cannot be read: kept as they were
    complete: bool = False  # every file to read is found (the walk is done)

    def found(self, path: str, size: int, mtime_ns: int) -> ArchiveFile:
        self.files.append(path, size, mtime_ns)
        return ArchiveFile(path, size, mtime_ns)


def _compare_paths(
    writer: ArchiveWriter, root: str, changed: list[str], scan: _Scan
) -> Iterator[ArchiveFile]:
    """The rescan of the paths git says changed (no walk of the folder): those to read."""
    known = writer.known_stamps_of([scan.scope + path for path in changed])
    stamps = _stamp_paths(root, changed, scan.scope)
    scan.scanned = len(stamps)
    for path, stamp in stamps.items():
        old = known.get(path)
        if old != stamp:
            if old is not None:
                scan.changed.add(path)
            yield scan.found(path, *stamp)
    scan.gone = [path for path in known if path not in stamps]


def _compare_walk(
    writer: ArchiveWriter,
    root: str,
    reparse: bool,
    unreadable: list[str],
    low: str,
    end: str | None,
    scan: _Scan,
) -> Iterator[ArchiveFile]:
    """Walk the archive and compare it with the stored stamps, one group of files at a
    time: each group's range of paths is read from the store (`stamps_between`), so
    memory holds a group, not the archive. Yields the files to read as each group is
    compared (every file when `reparse`); the rest of `scan` is complete at the end.

    The ranges follow each other without gaps (from the scope's first path, `low`, to
    its last, before `end`), so a stored file the walk did not find falls in one: gone,
    unless it is in a folder that could not be read (`unreadable`, relative to `root`).
    """
    scope = scan.scope
    named = set() if scope else writer.source_names()

    def compare(walked: list[Stamped], low: str, high: str | None) -> Iterator[ArchiveFile]:
        stored = writer.stamps_between(low, high)
        scan.scanned += len(walked)
        if walked == stored and not reparse:  # the common rescan: one comparison in C
            return
        if not reparse and len(walked) == len(stored):
            # The same files with a few changed (a rescan after edits): pairs compared
            # in order, cheaper than the sets below when no file came or went.
            pairs = [(new, old) for new, old in zip(walked, stored, strict=True) if new != old]
            if all(new[0] == old[0] for new, old in pairs):
                for (path, size, mtime_ns), _ in pairs:
                    scan.changed.add(path)
                    yield scan.found(path, size, mtime_ns)
                return
        # The files that differ, found by set operations in C rather than one by one.
        to_read = walked if reparse else sorted(set(walked).difference(stored))
        differ = {path for path, _, _ in set(stored).difference(walked)}  # changed or gone
        for path, size, mtime_ns in to_read:
            if path in differ and not reparse:  # (a reparse reads every file in full)
                scan.changed.add(path)
            yield scan.found(path, size, mtime_ns)
        differ.difference_update(path for path, _, _ in to_read)
        for path in sorted(differ):  # stored, not found
            if not _in_scope(path, scope, named):
                continue
            if any(path.startswith(f"{scope}{folder}/") for folder in unreadable):
                scan.kept += 1  # unknown is not gone: keep what we knew
            else:
                scan.gone.append(path)

    pending: list[Stamped] = []
    for group in walk_stamps(root, unreadable):
        if scope:
            group = [(scope + path, size, mtime_ns) for path, size, mtime_ns in group]
        if pending:
            yield from compare(pending, low, group[0][0])
            low = group[0][0]
        pending = group
    yield from compare(pending, low, end)
    scan.scanned += scan.kept


def _and_siblings(
    writer: ArchiveWriter, found: Iterable[ArchiveFile], scan: _Scan
) -> Iterator[ArchiveFile]:
    """The files `found` to read, then the other files of the stories whose file went: a
    story filed twice shows its last-written file, so when that file goes, the other
    file's text must show again."""
    yield from found
    if scan.gone:
        left = set(scan.gone)
        named = set() if scan.scope else writer.source_names()
        reread = {
            p
            for p in writer.sibling_paths(scan.gone)
            if p not in left and _in_scope(p, scan.scope, named)
        }
        reread.difference_update(scan.files.paths)
        again = writer.known_stamps_of(sorted(reread))
        for path in sorted(again):
            yield scan.found(path, *again[path])
    scan.complete = True


def _walk_files(root: str, scope: str, scan: _Scan, unreadable: list[str]) -> Iterator[ArchiveFile]:
    """Every story file of the archive as the walk finds it, each counted as scanned."""
    for group in walk_stamps(root, unreadable):
        scan.scanned += len(group)
        for path, size, mtime_ns in group:
            yield ArchiveFile(scope + path, size, mtime_ns)


def _in_scope(path: str, scope: str, named: set[str]) -> bool:
    """Is `path` one of this scope's files? The lone archive ("") leaves the files of the
    sources file's sources (`named`) alone."""
    if scope:
        return path.startswith(scope)
    return not named or path.partition(":")[0] not in named


def _stamp_paths(root: str, paths: list[str], prefix: str) -> dict[str, tuple[int, int]]:
    """(size, mtime_ns) of the story files among `paths`, as the folder scan would see them.

    A path that is gone, hidden, not a story file or not a file is left out (so a
    file that went is "gone" to the ingest).
    """
    out: dict[str, tuple[int, int]] = {}
    real_root = os.path.realpath(root)
    for path in paths:
        name = path.rsplit("/", 1)[-1]
        if any(part.startswith(".") for part in path.split("/")):
            continue
        if name[name.rfind(".") :].lower() not in STORY_SUFFIXES:
            continue
        full = os.path.join(root, path)
        if not os.path.realpath(full).startswith(real_root.rstrip(os.sep) + os.sep):
            continue  # through a link out of the folder: the scan would not follow it
        try:
            st = os.stat(full)
        except OSError:
            continue
        if not stat.S_ISDIR(st.st_mode):
            out[prefix + path] = (st.st_size, st.st_mtime_ns)
    return out


def ingest_stories(
    store: NewsStore | str | Path, source: str, stories: list[Story], now: datetime
) -> IngestReport:
    """Write the stories of a feed source through the store's `archive_writer()` (a path
    stands for the SQLite store there). Synchronous: run it in a thread.

    Each item is recorded as "source:canonical URL" with its fingerprint as its hash, so
    an unchanged item costs one lookup. Items that leave the feed stay: a feed lists only
    its latest entries. A story another source already carries keeps that source's
    version; this source is then listed as further coverage of it.
    """
    started = time.perf_counter()
    prefix = f"{source}:"
    report = IngestReport(scanned=len(stories))
    by_path = {prefix + story.canonical: story for story in stories}
    writer = open_writer(store)
    try:
        known = writer.known_hashes(list(by_path))
        elsewhere = writer.carried_elsewhere([s.canonical for s in by_path.values()], prefix)
        batch: list[ParsedFile] = []
        covered: list[tuple[str, str, str]] = []
        for path, story in by_path.items():
            print_ = fingerprint(story)
            if known.get(path) == print_:
                report.unchanged += 1
            elif story.canonical in elsewhere:
                covered.append((path, print_, story.canonical))
                report.unchanged += 1
            else:
                batch.append((ArchiveFile(path, 0, 0), print_, story, print_))
        report.parsed = len(batch)
        if batch:
            counts, _ = writer.write(batch, now)
            report.added, report.updated = counts.added, counts.updated
            report.unchanged += counts.unchanged
        if covered:
            writer.carry(covered)
        changed = [by_path[item[0].path] for item in batch] + [by_path[c[0]] for c in covered]
        if changed:
            writer.note_sources(source, changed, now)
        if batch:
            writer.count_topics()
            writer.count_terms()
    finally:
        writer.close()
    report.seconds = time.perf_counter() - started
    return report


def _parse_all(
    root: str,
    files: Iterable[ArchiveFile],
    known_hashes: Callable[[list[str]], dict[str, str]],
    workers: int | None,
    strip: int = 0,
    trickle: bool = False,
) -> Generator[tuple[ArchiveFile, str, ParseResult | None, str | None], None, None]:
    """Yield (file, hash, result, fingerprint) in order.

    `strip`: the length of the source's prefix of each path (the file is at the rest).
    `trickle`: the files are found over a rescan's walk, which the parse should hide
    behind: one worker keeps up with a few, and others would slow the walk; they start
    once there are `MANY_FILES`.

    `known_hashes` gives the stored hashes of a chunk's paths, looked up as it is read.
    The result is None when the hash is unchanged; the fingerprint is the story's
    (see `core.fingerprint`), computed here so that the workers share that work.
    Raises `ParseWorkerDied` when a worker process ends before its work is done.
    """
    workers = workers or os.cpu_count() or 1
    files = iter(files)  # a stream (found as the walk goes on): their number is not known
    threshold = PARALLEL_THRESHOLD if trickle else COLD_PARALLEL_THRESHOLD
    first = list(islice(files, threshold))  # enough to be worth the workers?
    serial = len(first) < threshold or workers < 2
    files = chain(iter(first), files)  # (the list goes once read)
    del first
    waiting = iter(lambda: list(islice(files, CHUNK)), [])
    if serial:
        for chunk in waiting:
            yield from _parse_each(root, chunk, known_hashes([f.path for f in chunk]), strip)
        return
    pool: list[_Worker] = []  # started by the first chunks sent
    found = 0
    try:
        in_flight: deque[tuple[list[ArchiveFile], _Worker]] = deque()

        def send(chunk: list[ArchiveFile]) -> None:
            nonlocal found
            found += len(chunk)
            if len(pool) < (1 if trickle and found < MANY_FILES else workers):
                pool.append(_Worker(root, strip))
            worker = min(pool, key=_pending)  # the least busy one
            paths = [f.path for f in chunk]
            worker.send(paths, known_hashes(paths))
            in_flight.append((chunk, worker))

        for chunk in islice(waiting, workers * WINDOW_PER_WORKER):
            send(chunk)
        while in_flight:
            # Each worker answers its chunks in the order it got them, so the oldest
            # chunk in flight is the next answer of the worker it went to.
            chunk, worker = in_flight.popleft()
            results = worker.receive()
            if (following := next(waiting, None)) is not None:
                send(following)
            for file, packed in zip(chunk, results, strict=True):
                yield (file, *unpack(packed))
    finally:  # also when the ingest is abandoned: the chunks not sent are dropped
        for worker in pool:
            worker.close()


class ParseWorkerDied(Exception):
    """A parse worker process ended before answering (killed, out of memory, crashed)."""

    def __init__(self, code: int | None) -> None:
        super().__init__(
            f"a parse worker process ended unexpectedly (exit code {code}) and the ingest "
            "stopped; what it wrote stays, the next ingest reads the rest"
        )


class _Worker:
    """One `core.parse_worker` process: chunks of paths in on its stdin, results out."""

    def __init__(self, root: str, strip: int) -> None:
        self.pending = 0  # chunks sent, not yet answered
        # A plain interpreter that imports only the parser (not multiprocessing's spawn,
        # which imports this process's __main__ again and starts a resource tracker).
        self.process = subprocess.Popen(
            [sys.executable, "-m", "core.parse_worker", root, str(strip)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=_worker_env(),
        )

    def send(self, paths: list[str], known_hashes: dict[str, str]) -> None:
        assert self.process.stdin is not None
        try:
            pickle.dump((paths, known_hashes), self.process.stdin, protocol=5)
            self.process.stdin.flush()
        except OSError:  # a broken pipe: the worker is gone
            raise ParseWorkerDied(self._ended()) from None
        self.pending += 1

    def receive(self) -> list[Packed]:
        assert self.process.stdout is not None
        try:
            results: list[Packed] = pickle.load(self.process.stdout)
        except (EOFError, OSError, pickle.UnpicklingError):
            raise ParseWorkerDied(self._ended()) from None
        self.pending -= 1
        return results

    def _ended(self) -> int | None:
        try:
            return self.process.wait(5)
        except subprocess.TimeoutExpired:
            return None

    def close(self) -> None:
        """End the worker: at the end of its stdin it exits; a reply it is still writing
        fails on the closed stdout. Killed if it does not exit at once."""
        for pipe in (self.process.stdin, self.process.stdout):
            with contextlib.suppress(OSError):
                pipe.close()  # type: ignore[union-attr]
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


_pending = operator.attrgetter("pending")
_CODE_FOLDER = str(Path(__file__).resolve().parent.parent)  # where `core` is


def _worker_env() -> dict[str, str]:
    """This process's environment, with `core` importable whatever the working folder."""
    paths = [_CODE_FOLDER, os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, paths))}


def _parse_each(
    root: str, files: Iterable[ArchiveFile], known_hashes: dict[str, str], strip: int = 0
) -> Iterator[tuple[ArchiveFile, str, ParseResult | None, str | None]]:
    """In this process, one file at a time (so the time limit is checked after each)."""
    for file in files:
        digest, result = parse_file(root, file.path[strip:], known_hashes.get(file.path))
        yield file, digest, result, fingerprint(result) if type(result) is Story else None


async def ingest(
    store: NewsStore | str | Path,
    root: str | Path,
    now: datetime,
    progress: Progress | None = None,
    *,
    replace: bool = False,
    time_limit: float | None = None,
) -> IngestReport:
    """Run `ingest_archive` for an open store (or a path, as there) without blocking the
    event loop.

    Past `time_limit` seconds it raises `IngestTimeout` even if the ingest's thread is
    stuck inside one step; the thread stops at its next check, and
    `IngestTimeout.stopping` completes when it has.
    """
    import asyncio

    cancel = threading.Event()
    work = asyncio.ensure_future(
        asyncio.to_thread(
            ingest_archive,
            store,
            root,
            now,
            progress,
            None,
            replace,
            time_limit=time_limit,
            cancel=cancel,
        )
    )
    work.add_done_callback(_retrieve_outcome)
    try:
        # A little grace: the thread normally notices the time limit itself.
        limit = None if time_limit is None else time_limit + 1
        return await asyncio.wait_for(asyncio.shield(work), limit)
    except TimeoutError:
        cancel.set()
        raise IngestTimeout(root, time_limit or 0, work) from None
    except asyncio.CancelledError:  # the bot is closing: let the thread stop too
        cancel.set()
        raise


def _retrieve_outcome(work: asyncio.Future[IngestReport]) -> None:
    """An abandoned ingest ends in `IngestTimeout` that nobody awaits: not an error."""
    if not work.cancelled() and isinstance(work.exception(), IngestTimeout):
        log.info("the abandoned ingest has stopped")
