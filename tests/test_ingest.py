"""Incremental, idempotent ingest of an archive into the real SQLite store."""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from functools import partial
from pathlib import Path

import pytest
from conftest import CORPUS, NOW, ROOT, SEEDS, location, query_rows, story_file
from test_archive import HOSTILE, HOSTILE_OUTCOMES

import core.ingest
from core.archive import ArchiveFile, canonical_url, parse_story, short_id, walk_stamps
from core.config import Config
from core.ingest import ArchiveChanged, ingest, ingest_archive
from core.models import Rejection
from core.store import Store
from core.store.archive_writer import (
    CACHE_KIB,
    COLD_CACHE_KIB,
    SCAN_CACHE_KIB,
    SqliteArchiveWriter,
)
from core.store.schema import MIGRATIONS

LATER = NOW + timedelta(hours=1)
LATEST = NOW + timedelta(hours=2)
SEED_ID = "fyjmhv5j"
STORY_URL = "https://example.com/a-story"
STORY_ID = short_id(canonical_url(STORY_URL))


def dump(db_path: Path, skip: tuple[str, ...] = ()) -> list[str]:
    """Every row of every real table (the FTS index's shadow tables included), as text.

    Not `iterdump()`: it reads the external-content FTS table's columns, which fails
    because they are named differently from the `stories` columns they index.
    """
    conn = sqlite3.connect(db_path)
    try:
        tables = [
            name
            for name, sql in conn.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'table' ORDER BY name"
            )
            if not sql.upper().startswith("CREATE VIRTUAL TABLE") and name not in skip
        ]
        assert {"stories", "topics", "story_topics", "stories_fts_data"} <= set(tables)
        return [
            f"{table}: {row!r}"
            for table in tables
            for row in sorted(conn.execute(f'SELECT * FROM "{table}"'), key=repr)
        ]
    finally:
        conn.close()


def write(path: Path, text: str, mtime_s: int) -> None:
    """Write a file with an explicit mtime, so size+mtime change detection is deterministic."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    os.utime(path, ns=(mtime_s * 10**9, mtime_s * 10**9))


def rows(db: str | Path, query: str, params=()) -> list[tuple]:
    """Rows of a query beside the store: a SQLite file or a PostgreSQL URL."""
    return query_rows(db, query, params)


# -- idempotence -----------------------------------------------------------------------


def test_first_ingest_of_the_corpus(tmp_path: Path):
    report = ingest_archive(tmp_path / "news.db", CORPUS, NOW)

    assert (report.scanned, report.parsed, report.added, report.updated) == (192, 192, 191, 1)
    assert (report.unchanged, report.removed, report.skipped) == (0, 0, 0)
    assert report.rejected == []
    assert report.unpublished == 60  # loaded, never shown: counted apart
    assert report.summary().startswith(
        "192 files: 191 added, 1 updated, 0 unchanged, 0 removed, 0 skipped (not news), "
        "0 rejected, 60 unpublished, in "
    )


def test_second_ingest_of_the_corpus_changes_nothing_and_parses_nothing(tmp_path: Path):
    db = tmp_path / "news.db"
    ingest_archive(db, CORPUS, NOW)
    first = dump(db)

    again = ingest_archive(db, CORPUS, NOW + timedelta(days=3))

    assert dump(db) == first
    assert again.parsed == 0
    assert (again.scanned, again.unchanged) == (192, 192)
    assert (again.added, again.updated, again.removed) == (0, 0, 0)
    assert again.rejected == []
    assert not again.changed


def test_parallel_parse_gives_the_same_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    ingest_archive(tmp_path / "serial.db", CORPUS, NOW, workers=1)
    monkeypatch.setattr(core.ingest, "PARALLEL_THRESHOLD", 10)
    monkeypatch.setattr(core.ingest, "COLD_PARALLEL_THRESHOLD", 10)
    monkeypatch.setattr(core.ingest, "CHUNK", 50)
    report = ingest_archive(tmp_path / "parallel.db", CORPUS, NOW, workers=2)

    assert (report.parsed, report.added, report.updated) == (192, 191, 1)
    # schema_migrations records when each database was created: not content.
    skip = ("schema_migrations",)
    assert dump(tmp_path / "parallel.db", skip) == dump(tmp_path / "serial.db", skip)


def test_files_keyed_by_canonical_url_migrate_to_story_rows(corpus_copy: Path, tmp_path: Path):
    # A database from before "archive files keyed by the story's row" knew each file's
    # story by its canonical URL: migrated, it keeps every file's stamps and story, so an
    # unchanged rescan reads no file again, and a file gone still hides its story.
    db = tmp_path / "news.db"
    ingest_archive(db, corpus_copy, NOW)
    files = (
        "SELECT f.path, f.size, f.mtime_ns, f.hash, s.canonical, f.outcome, f.reason"
        " FROM archive_files f LEFT JOIN stories s ON s.rowid = f.story ORDER BY f.path"
    )
    before = rows(db, files)
    assert sum(canonical is not None for *_, canonical, _, _ in before) > 100
    names = [name for name, _ in MIGRATIONS]
    version = names.index("archive files keyed by the story's row") + 1
    (old_table,) = (s for s in MIGRATIONS[0][1] if "CREATE TABLE archive_files" in s)
    with contextlib.closing(sqlite3.connect(db, isolation_level=None)) as conn:
        conn.executescript(
            f"""
            BEGIN;
            ALTER TABLE archive_files RENAME TO by_row;
            {old_table};
            INSERT INTO archive_files
            SELECT f.path, f.size, f.mtime_ns, f.hash, s.canonical, f.outcome, f.reason
            FROM by_row f LEFT JOIN stories s ON s.rowid = f.story;
            DROP TABLE by_row;
            CREATE INDEX archive_files_story ON archive_files (story);
            DELETE FROM schema_migrations WHERE version = {version};
            COMMIT;
            """
        )

    report = ingest_archive(db, corpus_copy, LATER)

    assert (report.parsed, report.added, report.updated, report.removed) == (0, 0, 0, 0)
    assert rows(db, files) == before
    assert rows(db, "SELECT type FROM pragma_table_info('archive_files') WHERE name = 'story'") == [
        ("INTEGER",)
    ]
    sorted((corpus_copy / "_news").rglob("*.md"))[0].unlink()
    assert ingest_archive(db, corpus_copy, LATEST).removed == 1


def test_a_parse_worker_reads_regular_files_without_openssl_pyyaml_or_logging(tmp_path: Path):
    # Each worker is a process of its own: OpenSSL (hashlib), PyYAML and logging would
    # cost 5 MB more in each. PyYAML is loaded for front matter our parser does not take.
    for i in range(3):
        write(tmp_path / f"{i}.md", story_file(url=f"https://e.com/{i}"), 1)
    (tmp_path / "odd.md").write_text(
        "---\ntitle: Odd  # a comment\noriginalUrl: https://e.com/x\n---\n"
    )
    script = (
        "import sys\n"
        "from core.parse_worker import parse_chunk, unpack\n"
        "def parsed(paths):\n"
        "    return [type(unpack(p)[1]).__name__ for p in parse_chunk(sys.argv[1], paths, {})]\n"
        "heavy = ('hashlib', 'ssl', 'yaml', 'logging')\n"
        "print(parsed(['0.md', '1.md', '2.md']), [m for m in heavy if m in sys.modules])\n"
        "print(parsed(['odd.md']), [m for m in heavy if m in sys.modules])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )

    assert done.stdout.splitlines() == [
        "['Story', 'Story', 'Story'] []",
        "['Story'] ['yaml']",
    ]


def test_a_worker_killed_mid_ingest_stops_it_cleanly_and_loses_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    ingest_archive(tmp_path / "serial.db", CORPUS, NOW, workers=1)
    monkeypatch.setattr(core.ingest, "PARALLEL_THRESHOLD", 10)
    monkeypatch.setattr(core.ingest, "COLD_PARALLEL_THRESHOLD", 10)
    monkeypatch.setattr(core.ingest, "CHUNK", 10)
    monkeypatch.setattr(core.ingest, "BATCH", 20)  # some batches are written before the kill
    started: list[core.ingest._Worker] = []
    receive = core.ingest._Worker.receive

    def killed_on_the_sixth_chunk(worker: core.ingest._Worker) -> list:
        started.append(worker)
        if len(started) == 6:
            worker.process.kill()
        return receive(worker)

    monkeypatch.setattr(core.ingest._Worker, "receive", killed_on_the_sixth_chunk)
    with pytest.raises(core.ingest.ParseWorkerDied, match="exit code -9"):
        ingest_archive(tmp_path / "parallel.db", CORPUS, NOW, workers=2)
    assert all(worker.process.poll() is not None for worker in started)  # none left behind

    monkeypatch.setattr(core.ingest._Worker, "receive", receive)
    report = ingest_archive(tmp_path / "parallel.db", CORPUS, NOW, workers=2)

    assert report.added < 191  # what was written before the kill stayed
    # The full-text index holds the same terms, in other segments (written in two goes).
    segments = ("stories_fts_data:", "stories_fts_idx:")
    resumed, serial = (
        [
            row
            for row in dump(tmp_path / name, ("schema_migrations",))
            if not row.startswith(segments)
        ]
        for name in ("parallel.db", "serial.db")
    )
    assert resumed == serial
    vocabulary = "SELECT term, doc, cnt FROM stories_vocab ORDER BY term"
    assert query_rows(tmp_path / "parallel.db", vocabulary) == query_rows(
        tmp_path / "serial.db", vocabulary
    )


def test_counts_after_incremental_ingests_equal_a_fresh_ingest(corpus_copy: Path, tmp_path: Path):
    # Term statistics, topic counts and the visible total are refreshed in proportion to
    # what changed (a heat change leaves the full-text index alone); whatever the history,
    # they must equal a full recount (and the counts of one ingest of the final archive).
    db = tmp_path / "news.db"
    ingest_archive(db, CORPUS, NOW)
    files = sorted((corpus_copy / "_news").rglob("*.md"))
    text = files[0].read_text(encoding="utf-8")
    files[0].write_text(text.replace("heat: ", "heat: 1", 1), encoding="utf-8")
    ingest_archive(db, corpus_copy, LATER, replace=True)  # heat only
    for gone in files[1:30]:
        gone.unlink()
    ingest_archive(db, corpus_copy, LATER)  # removals only
    write(files[30], story_file(title="Quokka edited", url="https://example.com/edited"), 9)
    write(corpus_copy / "_news" / "new.md", story_file(title="Quokka sightings"), 9)
    ingest_archive(db, corpus_copy, LATEST)  # text changed

    fresh = tmp_path / "fresh.db"
    ingest_archive(fresh, corpus_copy, LATEST)
    for query in (
        "SELECT visible FROM term_stats_meta",
        "SELECT visible FROM story_totals",
        "SELECT name, story_count FROM topics WHERE story_count > 0 ORDER BY name",
    ):
        assert rows(db, query) == rows(fresh, query), query
    # Hidden stories stay in the full-text index: the terms are counted over all of it.
    (docs,) = rows(db, "SELECT count(*) FROM stories")[0]
    recount = "SELECT term, doc FROM stories_vocab WHERE doc >= ? ORDER BY term"
    assert rows(db, "SELECT min_doc FROM term_stats_meta") == [(max(2, docs // 500),)]
    assert rows(db, "SELECT term, doc FROM term_stats ORDER BY term") == rows(
        db, recount, (max(2, docs // 500),)
    )


def test_updates_keep_topics_and_coverage_as_a_fresh_ingest_has_them(archive: Path, tmp_path: Path):
    # A heat change rewrites only the heat of a story's topic rows and leaves its coverage
    # alone; a change of topics, of related coverage, of publication or a story back from
    # removal rewrites them. After every step the rows equal those of a fresh ingest.
    related = (
        'related:\n  - title: "Elsewhere"\n    webUrl: "https://other.example/a"\n'
        "    type: article\n    provider:\n      name: Other\n"
    )
    topic_rows = (
        "SELECT s.canonical, t.name, st.visible, st.heat, st.published_at FROM story_topics st"
        " JOIN stories s ON s.rowid = st.story JOIN topics t ON t.id = st.topic"
        " WHERE s.removed_at IS NULL ORDER BY 1, 2"
    )
    coverage_rows = (
        "SELECT s.canonical, c.position, c.title, c.url, c.provider FROM coverage c"
        " JOIN stories s ON s.rowid = c.story WHERE s.removed_at IS NULL ORDER BY 1, 2"
    )
    db = tmp_path / "news.db"
    first, second = archive / "first.md", archive / "second.md"
    write(first, story_file(heat=10, topics=("AI", "Robots"), extra=related), 1)
    write(second, story_file(title="Second", url="https://example.com/second", heat=5), 1)
    steps = [
        (first, story_file(heat=90, topics=("AI", "Robots"), extra=related)),  # heat only
        (first, story_file(heat=91, topics=("AI", "Chips"), extra=related)),  # topics
        (first, story_file(heat=91, topics=("AI", "Chips"))),  # coverage gone
        (first, story_file(heat=92, topics=("AI", "Chips"), extra=related)),  # and back
        (first, story_file(heat=92, topics=("AI", "Chips"), published="2025-12-30T12:00:00Z")),
        (second, None),  # removed
        (second, story_file(title="Second", url="https://example.com/second", heat=7)),
    ]
    ingest_archive(db, archive, NOW)
    covered: dict[int, int] = {}
    for step, (path, text) in enumerate(steps, start=2):
        if text is None:
            path.unlink()
        else:
            write(path, text, step)
        assert ingest_archive(db, archive, NOW + timedelta(minutes=step)).updated <= 1
        fresh = tmp_path / f"fresh-{step}.db"
        ingest_archive(fresh, archive, NOW)
        assert rows(db, topic_rows) == rows(fresh, topic_rows), step
        assert rows(db, coverage_rows) == rows(fresh, coverage_rows), step
        covered[step] = len(rows(db, coverage_rows))
    assert covered == {2: 1, 3: 1, 4: 0, 5: 1, 6: 0, 7: 0, 8: 0}
    assert [name for _, name, *_ in rows(db, topic_rows)] == ["AI", "Chips", "AI"]


def test_progress_is_reported_from_zero_to_total(tmp_path: Path):
    calls: list[tuple[int, int]] = []
    ingest_archive(tmp_path / "news.db", CORPUS, NOW, progress=lambda d, t: calls.append((d, t)))

    assert calls[0] == (0, 192)
    assert calls[-1] == (192, 192)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_a_cold_ingest_reads_and_writes_while_it_walks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # Its memory does not grow with the archive: no list of every file is made before
    # the first is read; the report and the progress are those of the whole archive.
    archive = tmp_path / "archive"
    for i in range(300):
        write(archive / f"{i // 10:02}/{i}.md", story_file(url=f"https://e.com/{i}"), 1)
    events: list[str] = []

    def walking(*args, **kwargs):
        for group in walk_stamps(*args, **kwargs):
            events.append("walked")
            yield group

    writer_write = SqliteArchiveWriter.write

    def writing(self, batch, now):
        events.append("wrote")
        return writer_write(self, batch, now)

    monkeypatch.setattr(core.ingest, "walk_stamps", partial(walking, group=10))
    monkeypatch.setattr(SqliteArchiveWriter, "write", writing)
    monkeypatch.setattr(core.ingest, "BATCH", 50)
    monkeypatch.setattr(core.ingest, "PARALLEL_THRESHOLD", 100)
    monkeypatch.setattr(core.ingest, "COLD_PARALLEL_THRESHOLD", 100)
    monkeypatch.setattr(core.ingest, "CHUNK", 20)
    calls: list[tuple[int, int]] = []

    report = ingest_archive(
        tmp_path / "news.db", archive, NOW, lambda d, t: calls.append((d, t)), workers=2
    )

    assert events.count("walked") == 30
    assert events.index("wrote") < len(events) - events[::-1].index("walked") - 1
    assert (report.scanned, report.parsed, report.added, report.unchanged) == (300, 300, 300, 0)
    assert (calls[0], calls[-1]) == ((0, 300), (300, 300))
    assert rows(tmp_path / "news.db", "SELECT count(*) FROM archive_files") == [(300,)]


def test_a_rescan_parses_the_changed_files_while_it_walks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # The parse worker gets the first changed files before the walk is done (the parse
    # hides behind the walk); a touched file keeps its story; the report and the progress,
    # whose total is known once the walk is done, are those of the whole rescan.
    archive, db = tmp_path / "archive", tmp_path / "news.db"
    for i in range(300):
        write(archive / f"{i // 10:02}/{i}.md", story_file(url=f"https://e.com/{i}"), 1)
    ingest_archive(db, archive, NOW)
    for i in range(0, 300, 6):  # 50 files: 25 edited, 25 touched
        heat = 60 if i % 12 else 50
        write(archive / f"{i // 10:02}/{i}.md", story_file(url=f"https://e.com/{i}", heat=heat), 2)
    events: list[str] = []

    def walking(*args, **kwargs):
        for group in walk_stamps(*args, **kwargs):
            events.append("walked")
            yield group

    worker_send = core.ingest._Worker.send

    def sending(self, paths, known_hashes):
        events.append(f"sent to {id(self)}")
        return worker_send(self, paths, known_hashes)

    monkeypatch.setattr(core.ingest, "walk_stamps", partial(walking, group=10))
    monkeypatch.setattr(core.ingest._Worker, "send", sending)
    monkeypatch.setattr(core.ingest, "PARALLEL_THRESHOLD", 10)
    monkeypatch.setattr(core.ingest, "CHUNK", 10)
    calls: list[tuple[int, int]] = []

    report = ingest_archive(db, archive, LATER, lambda d, t: calls.append((d, t)), workers=2)

    assert events.count("walked") == 30
    sent = [i for i, event in enumerate(events) if event.startswith("sent")]
    assert sent[0] < len(events) - events[::-1].index("walked") - 1
    assert len({events[i] for i in sent}) == 1  # one worker: a few files, found slowly
    assert (report.scanned, report.parsed, report.updated, report.unchanged) == (300, 25, 25, 275)
    assert (calls[0], calls[-1]) == ((0, 0), (50, 50))
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_a_file_gone_during_a_cold_ingest_still_ends_its_progress(
    corpus_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # The total comes from a first, quick count of the files; one removed before the
    # walk reaches it is not read, and the progress still ends at done == total.
    count = core.ingest.count_story_files

    def counting_then_removing(root):
        found = count(root)
        (corpus_copy / "_news/2021-01-28-microsoft-power-apps-cookbook.md").unlink()
        return found

    monkeypatch.setattr(core.ingest, "count_story_files", counting_then_removing)
    calls: list[tuple[int, int]] = []

    report = ingest_archive(
        tmp_path / "news.db", corpus_copy, NOW, progress=lambda d, t: calls.append((d, t))
    )

    assert (calls[0], calls[-1]) == ((0, 192), (191, 191))
    assert (report.scanned, report.parsed) == (191, 191)


def test_touched_file_is_not_parsed_again(corpus_copy: Path, tmp_path: Path):
    db = tmp_path / "news.db"
    ingest_archive(db, corpus_copy, NOW)
    before = dump(db)
    name = "_news/2021-01-28-microsoft-power-apps-cookbook.md"
    os.utime(corpus_copy / name, ns=(10**18, 10**18))

    touched = ingest_archive(db, corpus_copy, LATER)

    assert touched.parsed == 0
    assert (touched.unchanged, touched.added, touched.updated) == (192, 0, 0)
    # The new mtime is remembered, so the next run does not even read the file.
    assert rows(db, "SELECT mtime_ns FROM archive_files WHERE path = ?", (name,)) == [(10**18,)]
    (changed,) = [line for line in dump(db) if line not in before]
    assert changed.startswith("archive_files: ") and "cookbook" in changed


# Names whose path order is not a folder-by-folder order ("a-b.md" < "a/x.md" < "a0.md").
NESTED = ("a-b.md", "a.md", "a/x.md", "a/y/z.md", "a0.md", "b.md", "b/c.md", "c.md")


async def test_a_rescan_reads_only_the_changed_files(
    archive: Path, store: Store, monkeypatch: pytest.MonkeyPatch
):
    # Groups of 2 files: the changes fall in several groups and between them.
    monkeypatch.setattr(core.ingest, "walk_stamps", partial(walk_stamps, group=2))
    for i, name in enumerate(NESTED):
        write(archive / name, story_file(title=f"Story {i}", url=f"https://e.com/{i}"), 1)
    assert (await ingest(store, archive, NOW)).added == len(NESTED)
    read: list[str] = []
    parse_file = core.ingest.parse_file

    def reading(root: str, path: str, known_hash: str | None = None):
        read.append(path)
        return parse_file(root, path, known_hash)

    monkeypatch.setattr(core.ingest, "parse_file", reading)
    write(archive / "a/x.md", story_file(title="Story 2, edited", url="https://e.com/2"), 2)
    write(archive / "b.md", story_file(title="Story 5", url="https://e.com/5", heat=60), 2)
    write(archive / "a/new.md", story_file(title="New", url="https://e.com/new"), 2)
    (archive / "a0.md").unlink()
    shutil.rmtree(archive / "a/y")

    report = await ingest(store, archive, LATER)

    assert read == ["a/new.md", "a/x.md", "b.md"]  # in path order
    assert (report.scanned, report.added, report.updated, report.unchanged) == (7, 1, 2, 4)
    assert report.removed == 2
    assert (await store.stories()).total == 7


async def test_a_rescan_reads_the_stored_stamps_a_group_at_a_time(
    archive: Path, store: Store, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(core.ingest, "walk_stamps", partial(walk_stamps, group=3))
    for i in range(12):
        write(archive / f"{i % 4}/{i}.md", story_file(url=f"https://e.com/{i}"), 1)
    await ingest(store, archive, NOW)
    sizes: list[int] = []
    stamps_between = SqliteArchiveWriter.stamps_between

    def counting(self: SqliteArchiveWriter, low: str, high: str | None):
        found = stamps_between(self, low, high)
        sizes.append(len(found))
        return found

    monkeypatch.setattr(SqliteArchiveWriter, "stamps_between", counting)

    report = await ingest(store, archive, LATER)

    assert (report.unchanged, report.parsed) == (12, 0)
    # One range of paths per group of the walk (a folder each), never the whole table.
    assert sizes == [3, 3, 3, 3]


def test_reporting_the_files_that_are_not_stories_reads_only_their_rows(
    archive: Path, tmp_path: Path
):
    for i in range(300):
        write(archive / f"{i}.md", story_file(url=f"https://e.com/{i}"), 1)
    write(archive / "broken.md", "---\ntitle: [unclosed\n---\n", 1)
    write(archive / "event.md", story_file(url="https://e.com/e").replace("news", "events"), 1)
    ingest_archive(tmp_path / "news.db", archive, NOW)
    with SqliteArchiveWriter.open(tmp_path / "news.db") as writer:
        steps = 0

        def step() -> int:
            nonlocal steps
            steps += 1
            return 0

        writer.conn.set_progress_handler(step, 10)
        rejected, skipped = writer.not_stories()

    assert ([r.path for r in rejected], skipped) == (["broken.md"], 1)
    # Every unchanged rescan reports them: it must not read the 300 stories' rows.
    assert steps < 30


def test_the_writer_grows_its_cache_at_its_first_write(tmp_path: Path):
    # A rescan that writes nothing keeps the small cache: its memory stays small. A cold
    # ingest, beside its parse workers, takes less than a rescan updating stored stories.
    story = parse_story("a.md", story_file().encode())
    cache = "PRAGMA cache_size"
    with SqliteArchiveWriter.open(tmp_path / "news.db") as writer:
        assert writer.conn.execute(cache).fetchone()[0] == -SCAN_CACHE_KIB
        writer.write([(ArchiveFile("a.md", 1, 1), "hash", story, None)], NOW)
        assert writer.conn.execute(cache).fetchone()[0] == -COLD_CACHE_KIB
    with SqliteArchiveWriter.open(tmp_path / "news.db") as writer:
        assert writer.conn.execute(cache).fetchone()[0] == -SCAN_CACHE_KIB
        writer.write([(ArchiveFile("a.md", 1, 2), "hash2", story, None)], NOW)
        assert writer.conn.execute(cache).fetchone()[0] == -CACHE_KIB


# -- changes to one story -----------------------------------------------------------------


async def test_changed_heat_updates_the_story_and_its_history(archive: Path, store: Store):
    write(archive / "a.md", story_file(heat=50), 1)
    await ingest(store, archive, NOW)
    write(archive / "a.md", story_file(heat=150), 2)

    report = await ingest(store, archive, LATER)

    assert (report.parsed, report.added, report.updated) == (1, 0, 1)
    story = await store.story(STORY_ID)
    assert story.heat == 150
    assert story.first_seen_at == NOW
    assert story.heat_changed_at == LATER
    history = rows(location(store), "SELECT at, heat FROM heat_history ORDER BY at")
    assert history == [(int(NOW.timestamp()), 50), (int(LATER.timestamp()), 150)]
    page = await store.stories("AI")
    assert [(s.id, s.heat) for s in page.stories] == [(STORY_ID, 150)]


async def test_unchanged_heat_keeps_heat_changed_at(archive: Path, store: Store):
    write(archive / "a.md", story_file(heat=50), 1)
    await ingest(store, archive, NOW)
    write(archive / "a.md", story_file(heat=50, title="A story, retitled"), 2)

    report = await ingest(store, archive, LATER)

    assert report.updated == 1
    story = await store.story(STORY_ID)
    assert story.title == "A story, retitled"
    assert story.heat_changed_at == NOW
    assert story.first_seen_at == NOW
    assert rows(location(store), "SELECT count(*) FROM heat_history") == [(1,)]
    assert [s.id for s in (await store.search("retitled")).stories] == [STORY_ID]


async def test_same_content_rewritten_is_unchanged(archive: Path, store: Store):
    write(archive / "a.md", story_file(), 1)
    await ingest(store, archive, NOW)
    write(archive / "a.md", story_file() + "\n", 2)  # a different file, the same story

    report = await ingest(store, archive, LATER)

    assert (report.parsed, report.unchanged, report.updated) == (1, 1, 0)
    assert (await store.story(STORY_ID)).heat_changed_at == NOW


async def test_renamed_file_is_the_same_story(archive: Path, store: Store):
    write(archive / "a.md", story_file(heat=70), 1)
    await ingest(store, archive, NOW)
    (archive / "a.md").rename(archive / "renamed.md")

    report = await ingest(store, archive, LATER)

    assert (report.added, report.updated, report.removed) == (0, 0, 0)
    story = await store.story(STORY_ID)
    assert story is not None
    assert (story.first_seen_at, story.heat_changed_at) == (NOW, NOW)
    query = "SELECT f.path, s.canonical FROM archive_files f JOIN stories s ON s.rowid = f.story"
    assert rows(location(store), query) == [("renamed.md", canonical_url(STORY_URL))]


async def test_deleted_file_hides_its_story_everywhere_until_restored(archive: Path, store: Store):
    text = story_file(title="Quokka sightings", topics=("Wildlife",))
    write(archive / "a.md", text, 1)
    write(archive / "b.md", story_file(title="Other", url="https://example.com/b"), 1)
    await ingest(store, archive, NOW)
    (archive / "a.md").unlink()

    report = await ingest(store, archive, LATER)

    assert report.removed == 1
    assert await store.story(STORY_ID) is None
    assert await store.related(STORY_ID) is None
    assert (await store.search("quokka")).total == 0
    assert (await store.stories()).total == 1
    assert (await store.stories("Wildlife")).total == 0
    assert await store.topics("wild") == []
    assert STORY_ID not in [s.id for s in await store.find_stories("quokka")]
    # Kept for history, with when it disappeared.
    assert rows(location(store), "SELECT removed_at FROM stories WHERE id = ?", (STORY_ID,)) == [
        (int(LATER.timestamp()),)
    ]

    write(archive / "a.md", text, 3)
    restored = await ingest(store, archive, LATEST)

    assert restored.removed == 0
    story = await store.story(STORY_ID)
    assert story is not None and story.first_seen_at == NOW
    assert [s.id for s in (await store.search("quokka")).stories] == [STORY_ID]
    assert [(t.name, t.count) for t in await store.topics("wild")] == [("Wildlife", 1)]


async def test_deleting_the_whole_archive_hides_every_story(corpus_copy: Path, store: Store):
    await ingest(store, corpus_copy, NOW)
    shutil.rmtree(corpus_copy / "_news")

    report = await ingest(store, corpus_copy, LATER)

    assert (report.scanned, report.removed) == (0, 191)
    assert (await store.stories()).total == 0
    assert await store.topics() == []


async def test_same_story_in_two_files_is_one_story(archive: Path, store: Store):
    write(archive / "a.md", story_file(title="First copy"), 1)
    write(archive / "sub/b.md", story_file(title="Second copy"), 1)

    report = await ingest(store, archive, NOW)

    assert (report.scanned, report.added) == (2, 1)
    assert (await store.stories()).total == 1
    # Deleting one of the two files keeps the story: the other still carries it.
    (archive / "a.md").unlink()
    again = await ingest(store, archive, LATER)
    assert again.removed == 0
    assert (await store.story(STORY_ID)) is not None


async def test_when_the_shown_copy_goes_the_other_copy_shows(archive: Path, store: Store):
    write(archive / "a.md", story_file(title="First copy"), 1)
    write(archive / "sub/b.md", story_file(title="Second copy"), 1)
    await ingest(store, archive, NOW)
    assert (await store.story(STORY_ID)).title == "Second copy"  # the last file read

    (archive / "sub/b.md").unlink()
    report = await ingest(store, archive, LATER)

    assert (report.removed, report.updated) == (0, 1)
    assert (await store.story(STORY_ID)).title == "First copy"


async def test_edited_url_makes_a_new_story_and_hides_the_old(archive: Path, store: Store):
    write(archive / "a.md", story_file(), 1)
    await ingest(store, archive, NOW)
    write(archive / "a.md", story_file(url="https://example.com/moved"), 2)

    report = await ingest(store, archive, LATER)

    assert (report.added, report.removed) == (1, 1)
    assert await store.story(STORY_ID) is None
    assert [s.url for s in (await store.stories()).stories] == ["https://example.com/moved"]


async def test_published_false_edit_hides_the_story(archive: Path, store: Store):
    write(archive / "a.md", story_file(topics=("AI",)), 1)
    await ingest(store, archive, NOW)
    write(
        archive / "a.md",
        story_file(topics=("AI",)).replace("published: true", "published: false"),
        2,
    )

    report = await ingest(store, archive, LATER)

    assert report.updated == 1
    assert await store.story(STORY_ID) is None
    assert (await store.stories("AI")).total == 0
    assert await store.topics() == []


async def test_the_count_of_all_stories_follows_every_way_a_story_shows_or_hides(
    archive: Path, store: Store
):
    def counted() -> int:
        query = "SELECT count(*) FROM stories WHERE published = 1 AND removed_at IS NULL"
        return rows(location(store), query)[0][0]

    def unpublished() -> list[tuple]:
        query = "SELECT count(*) FROM stories WHERE published = 0 AND removed_at IS NULL"
        return [
            rows(location(store), "SELECT unpublished FROM story_totals")[0],
            rows(location(store), query)[0],
        ]

    texts = {n: story_file(title=f"Story {n}", url=f"https://example.com/{n}") for n in "abcd"}
    for n, text in texts.items():
        write(archive / f"{n}.md", text, 1)
    write(archive / "e.md", texts["a"], 1)  # the same story twice: counted once
    await ingest(store, archive, NOW)
    assert (await store.stories()).total == counted() == 4

    (archive / "b.md").unlink()  # removed
    write(archive / "c.md", texts["c"].replace("published: true", "published: false"), 2)
    write(archive / "d.md", texts["d"].replace("heat: 50", "heat: 60"), 2)  # still shown
    (archive / "e.md").unlink()  # a's other file: a stays
    report = await ingest(store, archive, LATER)
    assert (await store.stories()).total == counted() == 2
    assert report.unpublished == 1 and unpublished() == [(1,), (1,)]

    write(archive / "b.md", texts["b"], 3)  # back
    write(archive / "c.md", texts["c"], 3)  # published again
    report = await ingest(store, archive, LATEST)
    assert (await store.stories()).total == counted() == 4
    assert report.unpublished == 0 and unpublished() == [(0,), (0,)]


async def test_edit_into_another_category_hides_the_story(archive: Path, store: Store):
    write(archive / "a.md", story_file(), 1)
    await ingest(store, archive, NOW)
    write(archive / "a.md", story_file().replace("category: news", "category: blog"), 2)

    report = await ingest(store, archive, LATER)

    assert (report.skipped, report.removed) == (1, 1)
    assert await store.story(STORY_ID) is None


async def test_broken_edit_is_rejected_but_the_last_good_version_stays(archive: Path, store: Store):
    write(archive / "a.md", story_file(heat=80), 1)
    await ingest(store, archive, NOW)
    write(archive / "a.md", story_file(heat=90).replace("topics:\n", "topics: [\n"), 2)

    report = await ingest(store, archive, LATER)

    assert report.removed == 0
    assert [r.path for r in report.rejected] == ["a.md"]
    assert report.rejected[0].reason.startswith("malformed YAML")
    story = await store.story(STORY_ID)
    assert story is not None and story.heat == 80
    # The rejection stays listed on later runs until the file is fixed.
    assert [r.path for r in (await ingest(store, archive, LATER)).rejected] == ["a.md"]

    write(archive / "a.md", story_file(heat=90), 3)
    fixed = await ingest(store, archive, LATEST)
    assert fixed.rejected == []
    assert (await store.story(STORY_ID)).heat == 90


async def test_hostile_files_are_rejected_while_good_files_load(archive: Path, store: Store):
    shutil.copytree(HOSTILE, archive / "hostile")
    shutil.copy(SEEDS / "000_370428515c238e8f.txt", archive / "seed.txt")

    report = await ingest(store, archive, NOW)

    expected_rejected = sorted(
        f"hostile/{name}" for name, (outcome, _) in HOSTILE_OUTCOMES.items() if outcome != "story"
    )
    good = sum(1 for outcome, _ in HOSTILE_OUTCOMES.values() if outcome == "story")
    assert [r.path for r in report.rejected] == expected_rejected
    assert all(isinstance(r, Rejection) and r.reason for r in report.rejected)
    assert report.added == good + 1
    assert (await store.story(SEED_ID)).heat == 179
    assert (await store.stories()).total == good + 1
    assert f"{len(expected_rejected)} rejected" in report.summary()


async def test_the_shipped_seeds_all_load_and_most_are_hot(store: Store):
    """seeds/ is what a newcomer's first run shows: every file a story, and a lively #news."""
    files = sorted(p.name for p in SEEDS.iterdir())

    report = await ingest(store, SEEDS, NOW)

    assert report.rejected == []
    assert report.added == len(files) >= 15  # no two files share a URL
    assert (await store.story(SEED_ID)).heat == 179
    hot = await store.stories(min_heat=Config().hot_heat, limit=100)
    assert hot.total >= 12  # the seed and at least 11 sample stories
    assert hot.total < len(files)  # a few lukewarm ones show the threshold at work
    topics = {t.name: t.count for t in await store.topics()}
    assert topics["Computer Vision"] >= 4 and topics["AI"] >= 2 and len(topics) >= 5


async def test_skipped_files_are_counted(archive: Path, store: Store):
    write(archive / "a.md", story_file(), 1)
    write(archive / "b.md", story_file(url="https://e.com/b").replace("news", "events"), 1)

    report = await ingest(store, archive, NOW)

    assert (report.added, report.skipped, report.rejected) == (1, 1, [])


# -- an archive that fights back: FIFOs, unreadable folders, killed ingests ------------

NOBODY = 65534


@pytest.fixture
def open_tmp():
    """A temporary folder that an unprivileged user may use too (tmp_path is root's only)."""
    path = Path(tempfile.mkdtemp(prefix="newsbot-"))
    path.chmod(0o755)
    yield path
    for folder, dirs, _ in os.walk(path):  # give back what a test took away
        for name in dirs:
            os.chmod(os.path.join(folder, name), 0o755)
    shutil.rmtree(path)


def run_cli(args, db, archive, *, unprivileged=False, code="", timeout=60, give_files=True):
    """`python -m bot ARGS` in a subprocess; as an unprivileged user when asked.

    Root reads a chmod 000 folder anyway, so as root the command runs as `nobody`
    (owning the files unless `give_files` is false) and the permission really stops it.
    """
    env = {**os.environ, "NEWS_DB": str(db), "NEWS_ARCHIVE": str(archive), "PYTHONPATH": str(ROOT)}
    env.pop("DISCORD_TOKEN", None)
    user = None
    if unprivileged and os.geteuid() == 0:
        user = NOBODY
        for folder, dirs, files in os.walk(db.parent) if give_files else ():
            for name in [*dirs, *files]:
                os.lchown(os.path.join(folder, name), NOBODY, NOBODY)
        if give_files:
            os.chown(db.parent, NOBODY, NOBODY)
    start = f"{code}\nimport sys\nfrom bot.cli import main\nsys.exit(main(sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", start, *args],
        env=env,
        cwd=db.parent,
        user=user,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def visible_titles(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        query = "SELECT title FROM stories WHERE removed_at IS NULL ORDER BY title"
        return [title for (title,) in conn.execute(query)]


def test_fifos_in_the_archive_are_rejected_without_blocking(open_tmp):
    archive = open_tmp / "archive"
    archive.mkdir()
    (archive / "good.md").write_text(story_file(title="Good"), encoding="utf-8")
    (archive / "swapped.md").write_text(story_file(title="Swapped", url="https://e.com/s"))
    os.mkfifo(archive / "pipe.md")
    # swapped.md becomes a FIFO between the scan and the read.
    swap = (
        "import os, core.ingest as ingest\n"
        "walk = ingest.walk_stamps\n"
        "def walk_then_swap(root, unreadable=None):\n"
        "    yield from walk(root, unreadable)\n"
        "    os.remove(os.path.join(root, 'swapped.md'))\n"
        "    os.mkfifo(os.path.join(root, 'swapped.md'))\n"
        "ingest.walk_stamps = walk_then_swap\n"
    )
    done = run_cli(["ingest"], open_tmp / "news.db", archive, code=swap, timeout=30)
    assert done.returncode == 0, done.stderr
    assert "rejected pipe.md: not a regular file" in done.stdout
    assert "rejected swapped.md: not a regular file" in done.stdout
    assert visible_titles(open_tmp / "news.db") == ["Good"]


def test_an_unreadable_archive_fails_the_ingest_and_changes_nothing(open_tmp):
    archive, db = open_tmp / "archive", open_tmp / "news.db"
    archive.mkdir()
    (archive / "a.md").write_text(story_file(title="Kept"), encoding="utf-8")
    assert run_cli(["ingest"], db, archive).returncode == 0
    archive.chmod(0)

    done = run_cli(["ingest"], db, archive, unprivileged=True)

    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"cannot read the archive folder {archive}: Permission denied (nothing was changed)"
    ]
    assert visible_titles(db) == ["Kept"]


def test_an_unreadable_subfolder_keeps_its_stories(open_tmp):
    archive, db = open_tmp / "archive", open_tmp / "news.db"
    (archive / "locked").mkdir(parents=True)
    (archive / "top.md").write_text(story_file(title="Top"), encoding="utf-8")
    (archive / "locked" / "a.md").write_text(story_file(title="Locked", url="https://e.com/l"))
    assert run_cli(["ingest"], db, archive).returncode == 0
    (archive / "locked").chmod(0)

    done = run_cli(["ingest"], db, archive, unprivileged=True)

    assert done.returncode == 0, done.stderr
    assert "0 removed" in done.stdout
    assert "cannot read folder locked: its stories are kept as they were" in done.stdout
    assert "cannot read archive folder locked: Permission denied" in done.stderr
    assert visible_titles(db) == ["Locked", "Top"]


def test_killing_the_ingest_leaves_no_worker_processes(open_tmp):
    archive, db = open_tmp / "archive", open_tmp / "news.db"
    generate = [sys.executable, str(ROOT / "bench" / "generate.py"), str(archive)]
    subprocess.run([*generate, "--stories", "3000"], check=True, capture_output=True)
    env = {**os.environ, "NEWS_DB": str(db), "NEWS_ARCHIVE": str(archive), "PYTHONPATH": str(ROOT)}
    force_workers = (
        "import sys, core.ingest as ingest\n"
        "ingest.PARALLEL_THRESHOLD = ingest.COLD_PARALLEL_THRESHOLD = 1\n"
        "from bot.cli import main\n"
        "sys.exit(main(['ingest']))\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", force_workers], env=env, cwd=open_tmp)
    try:
        workers: set[int] = set()
        deadline = time.monotonic() + 30
        while len(workers) < 2 and time.monotonic() < deadline and proc.poll() is None:
            workers = children(proc.pid)
            time.sleep(0.01)
        assert len(workers) >= 2, "the ingest never started its workers"
        time.sleep(0.5)  # let them start their work
        workers |= children(proc.pid)
        proc.kill()
    finally:
        proc.kill()
        proc.wait()
    deadline = time.monotonic() + 5
    while (alive := {pid for pid in workers if running(pid)}) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive, f"orphaned workers: {alive}"


def test_run_on_a_corrupt_database_stops_in_one_line_before_connecting(open_tmp):
    db = open_tmp / "news.db"
    db.write_bytes(b"this is not a database, just garbage bytes " * 100)
    # A fake token; any attempt to reach Discord would say so and stop.
    no_network = (
        "import os, sys, discord\n"
        "os.environ['DISCORD_TOKEN'] = 'MTIz.fake.token'\n"
        "async def login(self, token):\n"
        "    print('tried to reach Discord', file=sys.stderr)\n"
        "    sys.exit(3)\n"
        "discord.Client.login = login\n"
    )
    done = run_cli(["run"], db, SEEDS, code=no_network)
    assert done.returncode == 1, done.stderr
    assert done.stderr.splitlines() == [
        f"database {db}: file is not a database; it is damaged: restore it from a backup"
        " (see the README, Data and backups)"
    ]


def test_ingest_into_a_read_only_database_is_named_in_one_line(open_tmp):
    db = open_tmp / "news.db"
    assert run_cli(["ingest"], db, SEEDS).returncode == 0
    db.chmod(0o644)  # owned by root, in root's 0755 folder: nobody may only read it
    if os.geteuid() != 0:  # without root to switch to nobody, take the rights away
        db.chmod(0o444)
        open_tmp.chmod(0o555)
    try:
        done = run_cli(["ingest"], db, SEEDS, unprivileged=True, give_files=False)
    finally:
        open_tmp.chmod(0o755)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"database {db}: attempt to write a readonly database; it is read-only: give the"
        " bot's user write access to it and its folder"
    ]


def children(pid: int) -> set[int]:
    found = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):  # a thread that just ended
            found.update(int(c) for c in (task / "children").read_text().split())
    return found


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited; only its parent's wait is missing


# -- text cleaned at ingest, archives kept apart -------------------------------------------


def test_a_database_read_by_an_older_parser_is_parsed_again(archive: Path, tmp_path: Path):
    db = tmp_path / "news.db"
    write(archive / "a.md", story_file("Nov&#8217;19 &#8220;news&#8221;", STORY_URL), 1000)
    ingest_archive(db, archive, NOW)
    assert rows(db, "SELECT title FROM stories") == [("Nov’19 “news”",)]
    # What a database of the previous version holds: raw text and no parser version.
    conn = sqlite3.connect(db)
    with conn:
        conn.execute(
            "UPDATE stories SET title = 'Nov&#8217;19 &#8220;news&#8221;', fingerprint = 'old'"
        )
        conn.execute("DELETE FROM bot_state WHERE key = 'parser_version'")
    conn.close()

    report = ingest_archive(db, archive, LATER)

    assert (report.parsed, report.updated) == (1, 1)  # unchanged file, read again
    assert rows(db, "SELECT title FROM stories") == [("Nov’19 “news”",)]
    assert ingest_archive(db, archive, LATEST).parsed == 0  # and only once


def test_reparsing_reads_every_file_and_still_notices_the_gone_ones(
    archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(core.ingest, "walk_stamps", partial(walk_stamps, group=2))
    db = tmp_path / "news.db"
    for i, name in enumerate(NESTED):
        write(archive / name, story_file(title=f"Story {i}", url=f"https://e.com/{i}"), 1)
    ingest_archive(db, archive, NOW)
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("DELETE FROM bot_state WHERE key = 'parser_version'")
    conn.close()
    (archive / "a0.md").unlink()
    write(archive / "a/new.md", story_file(title="New", url="https://e.com/new"), 2)

    report = ingest_archive(db, archive, LATER)

    assert (report.scanned, report.parsed, report.added, report.removed) == (8, 8, 1, 1)
    assert ingest_archive(db, archive, LATEST).parsed == 0


def test_another_archive_is_refused_unless_replacing(archive: Path, tmp_path: Path):
    db = tmp_path / "news.db"
    write(archive / "a.md", story_file("First archive's story", STORY_URL), 1000)
    ingest_archive(db, archive, NOW)
    other = tmp_path / "other"
    write(other / "b.md", story_file("Other archive's story", "https://example.com/b"), 1000)
    before = dump(db)

    with pytest.raises(ArchiveChanged) as refused:
        ingest_archive(db, other, LATER)

    assert dump(db) == before  # nothing hidden, nothing added
    assert str(archive.resolve()) in str(refused.value)
    assert "--replace" in str(refused.value)
    replaced = ingest_archive(db, other, LATER, replace=True)
    assert (replaced.added, replaced.removed) == (1, 1)
    visible = "SELECT title FROM stories WHERE removed_at IS NULL"
    assert rows(db, visible) == [("Other archive's story",)]
    assert ingest_archive(db, other, LATEST).parsed == 0  # the new archive is now the one


# -- the time limit -------------------------------------------------------------------


def slow_parsing(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """Each file takes `seconds` to parse (a huge archive on a slow disk, in miniature)."""
    parse = core.ingest.parse_file

    def slow_parse(*args):
        time.sleep(seconds)
        return parse(*args)

    monkeypatch.setattr(core.ingest, "parse_file", slow_parse)


def topic_counts(db: Path) -> list[tuple]:
    return rows(db, "SELECT name, story_count FROM topics WHERE story_count > 0 ORDER BY name")


def test_an_ingest_past_its_time_limit_is_abandoned_and_the_next_one_completes(
    archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    db = tmp_path / "news.db"
    write(archive / "gone.md", story_file(title="Gone", url="https://e.com/gone"), 1)
    write(archive / "kept.md", story_file(title="Kept", url="https://e.com/kept"), 1)
    ingest_archive(db, archive, NOW)
    (archive / "gone.md").unlink()
    for n in range(10):
        text = story_file(title=f"New {n}", url=f"https://e.com/{n}", topics=("Robotics",))
        write(archive / f"new-{n}.md", text, 2)
    monkeypatch.setattr(core.ingest, "BATCH", 2)
    slow_parsing(monkeypatch, 0.1)

    with pytest.raises(core.ingest.IngestTimeout, match=r"took longer than 0\.35s"):
        ingest_archive(db, archive, LATER, time_limit=0.35)

    # Whole batches were written; the incomplete scan hid nothing.
    written = [t for t in visible_titles(db) if t.startswith("New")]
    assert 0 < len(written) < 10
    assert "Gone" in visible_titles(db)

    monkeypatch.undo()
    report = ingest_archive(db, archive, LATEST)

    assert report.added == 10 - len(written)
    assert report.removed == 1
    assert visible_titles(db) == ["Kept", *(f"New {n}" for n in range(10))]
    fresh = tmp_path / "fresh.db"
    ingest_archive(fresh, archive, LATEST)
    assert topic_counts(db) == topic_counts(fresh) == [("AI", 1), ("Robotics", 10)]


def test_an_abandoned_ingest_is_finished_even_when_nothing_is_left_to_read(
    archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    db = tmp_path / "news.db"
    write(archive / "edited.md", story_file(title="Old link", url="https://e.com/old"), 1)
    write(archive / "zz-touched.md", story_file(title="Touched", url="https://e.com/t"), 1)
    ingest_archive(db, archive, NOW)
    # The edit gives the story a new link: the old story must be hidden.
    write(archive / "edited.md", story_file(title="New link", url="https://e.com/new"), 2)
    for n in range(3):
        write(archive / f"new-{n}.md", story_file(title=f"New {n}", url=f"https://e.com/{n}"), 2)
    os.utime(archive / "zz-touched.md", ns=(5 * 10**9, 5 * 10**9))  # same text, read last
    monkeypatch.setattr(core.ingest, "BATCH", 2)
    cancel = threading.Event()
    parse = core.ingest.parse_file

    def stop_at_the_touched_file(root, path, known_hash):
        if path == "zz-touched.md":
            cancel.set()
        return parse(root, path, known_hash)

    monkeypatch.setattr(core.ingest, "parse_file", stop_at_the_touched_file)

    with pytest.raises(core.ingest.IngestTimeout):
        ingest_archive(db, archive, LATER, cancel=cancel)
    # Both batches were written, so only the touched file is left for the next ingest.
    assert visible_titles(db) == ["New 0", "New 1", "New 2", "New link", "Old link", "Touched"]

    monkeypatch.undo()
    report = ingest_archive(db, archive, LATEST)

    assert report.parsed == 0
    assert report.removed == 1
    assert visible_titles(db) == ["New 0", "New 1", "New 2", "New link", "Touched"]
