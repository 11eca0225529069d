"""Sources: git repositories and feeds followed for real (git on disk, HTTP on loopback)."""

from __future__ import annotations

import contextlib
import http.server
import json
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import discord
import pytest

from bot import cli
from core.config import Config, ConfigError
from core.ingest import ingest_archive
from core.sources import feed, follow, source_states
from core.sources.config import Source, parse_sources
from core.store import Store
from tests.conftest import story_file

FEEDS = Path(__file__).parent / "feeds"
NOW = datetime(2026, 1, 1, tzinfo=UTC)
needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


# -- a feed server on 127.0.0.1 ----------------------------------------------------


class FeedServer:
    """Serves `routes[path] = (status, headers, body, delay)`; records each request."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, dict, bytes, float]] = {}
        self.requests: list[tuple[str, dict]] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append((self.path, dict(self.headers)))
                status, headers, body, delay = server.routes.get(
                    self.path, (404, {}, b"not found", 0)
                )
                etag = headers.get("ETag")
                if etag and self.headers.get("If-None-Match") == etag:
                    status, body = 304, b""
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if delay:
                    time.sleep(delay)
                with contextlib.suppress(OSError):
                    self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def serve(self, path, body, status=200, delay=0.0, **headers) -> str:
        data = body if isinstance(body, bytes) else (FEEDS / body).read_bytes()
        self.routes[path] = (status, headers, data, delay)
        return self.url(path)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    running = FeedServer()
    yield running
    running.close()


def feed_source(name, url, **kw) -> Source:
    return Source(name=name, kind="feed", location=url, **kw)


def rows(db, query, *params):
    conn = sqlite3.connect(db)
    try:
        return conn.execute(query, params).fetchall()
    finally:
        conn.close()


async def story_by_url(db, url):
    async with await Store.open(db) as store:
        page = await store.search("", None, "new", limit=100)
        return {s.url: s for s in page.stories}.get(url)


# -- the sources file ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"sources": []}, "non-empty list"),
        ({"feeds": []}, "one key, `sources:`"),
        ({"sources": [{"name": "Bad Name", "folder": "x"}]}, "source #1: name"),
        ({"sources": [{"name": "a", "folder": "x"}, {"name": "a", "folder": "y"}]}, "twice"),
        ({"sources": [{"name": "w", "feed": "ftp://x/a.rss"}]}, "source 'w': feed must be"),
        ({"sources": [{"name": "w", "feed": "https://x/a", "heat": "hot"}]}, "'w': heat"),
        ({"sources": [{"name": "w", "feed": "https://x/a", "every": "soon"}]}, "'w': every"),
        ({"sources": [{"name": "w", "feed": "https://x/a", "every": "1s"}]}, "'w': every"),
        ({"sources": [{"name": "g", "git": "file:///r", "path": "../up"}]}, "'g': path"),
        ({"sources": [{"name": "g", "git": "file:///r", "topics": ["AI"]}]}, "unknown field"),
        ({"sources": [{"name": "g", "git": "x", "feed": "https://x/a"}]}, "exactly one"),
    ],
)
def test_a_bad_sources_file_is_one_line_naming_source_and_field(data, message):
    with pytest.raises(ConfigError, match=message) as caught:
        parse_sources(data, "sources.yaml")
    assert "\n" not in str(caught.value)
    assert str(caught.value).startswith("NEWS_SOURCES sources.yaml:")


def test_the_sources_file_is_read_with_the_configuration(tmp_path):
    path = tmp_path / "sources.yaml"
    path.write_text(
        "sources:\n"
        "  - name: local\n    folder: seeds\n"
        "  - name: wire\n    feed: https://wire.example/ai.rss\n"
        "    topics: [AI]\n    heat: 120\n    every: 15m\n"
        "  - name: repo\n    git: file:///srv/news.git\n    branch: main\n    path: _news/\n"
    )
    config = Config.from_env({"NEWS_SOURCES": str(path)}, dotenv_path=None)
    local, wire, repo = config.sources
    assert local.location == str(tmp_path / "seeds")
    assert (wire.topics, wire.heat, wire.every) == (("AI",), 120, 900)
    assert (repo.branch, repo.path, repo.every) == ("main", "_news", None)
    assert Config.from_env({}, dotenv_path=None).sources[0].implicit
    path.write_text("sources: [")
    with pytest.raises(ConfigError, match="not valid YAML"):
        Config.from_env({"NEWS_SOURCES": str(path)}, dotenv_path=None)


# -- git ------------------------------------------------------------------------------------


def git(cwd, *args):
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
    )


@pytest.fixture
def repo(tmp_path):
    """A working repository and the bare one it pushes to (what the bot follows)."""
    work, bare = tmp_path / "work", tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    git(tmp_path, "init", "-q", "-b", "main", str(work))
    (work / "_news").mkdir()
    (work / "README.md").write_text("not in _news: never read\n")
    for n in range(3):
        url = f"https://news.example/git-{n}"
        (work / "_news" / f"s{n}.md").write_text(story_file(f"Git story {n}", url, heat=10 + n))
    git(work, "add", ".")
    git(work, "commit", "-qm", "three stories")
    git(work, "remote", "add", "origin", str(bare))
    git(work, "push", "-q", "origin", "main")
    return work, bare


def commit(work, message, push_args=()):
    git(work, "add", "-A")
    git(work, "commit", "-qm", message)
    git(work, "push", "-q", *push_args, "origin", "main")


@needs_git
def test_a_git_source_reads_only_what_changed_and_rescans_after_a_force_push(tmp_path, repo):
    work, bare = repo
    db, data = tmp_path / "news.db", tmp_path / "data"
    source = Source("repo", "git", f"file://{bare}", branch="main", path="_news")

    def run():
        (outcome,) = follow(db, (source,), data, 60, NOW, force=True)
        assert outcome.error is None
        return outcome.report

    first = run()
    assert (first.scanned, first.added) == (3, 3)
    assert (data / "sources" / "repo" / "_news" / "s0.md").is_file()

    # A new story, an edited one and a deleted one: only those three paths are looked at.
    (work / "_news" / "s3.md").write_text(story_file("Git story 3", "https://news.example/git-3"))
    (work / "_news" / "s1.md").write_text(
        story_file("Git story 1, edited", "https://news.example/git-1", heat=99)
    )
    (work / "_news" / "s0.md").unlink()
    commit(work, "one added, one edited, one removed")
    second = run()
    assert second.scanned == 2  # s1 and s3 exist; s0 is gone
    assert (second.added, second.updated, second.removed) == (1, 1, 1)
    assert run().scanned == 0  # nothing new: nothing read

    # History rewritten: the last ingested commit is no ancestor: everything is read again.
    (work / "_news" / "s2.md").write_text(
        story_file("Git story 2, rewritten", "https://news.example/git-2")
    )
    git(work, "add", "-A")
    git(work, "commit", "-q", "--amend", "-m", "rewritten")
    git(work, "push", "-q", "--force", "origin", "main")
    rewritten = run()
    assert rewritten.scanned == 3
    assert rewritten.updated == 1
    titles = {r[0] for r in rows(db, "SELECT title FROM stories WHERE removed_at IS NULL")}
    assert titles == {"Git story 1, edited", "Git story 2, rewritten", "Git story 3"}
    (state,) = source_states(db, (source,)).values()
    assert state.items == 3 and state.git_commit and state.last_error is None


@needs_git
def test_a_failing_git_source_keeps_its_stories_and_does_not_stop_the_others(tmp_path, repo):
    _, bare = repo
    db, data = tmp_path / "news.db", tmp_path / "data"
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "a.md").write_text(story_file("Folder story", "https://news.example/folder"))
    git_source = Source("repo", "git", f"file://{bare}", path="_news")
    sources = (git_source, Source("local", "folder", str(folder)))
    assert all(o.error is None for o in follow(db, sources, data, 60, NOW, force=True))
    shutil.rmtree(bare)  # the remote is gone
    broken, fine = follow(db, sources, data, 60, NOW + timedelta(minutes=1), force=True)
    assert "git fetch failed" in broken.error
    assert fine.error is None
    assert len(rows(db, "SELECT 1 FROM stories WHERE removed_at IS NULL")) == 4
    state = source_states(db, sources)["repo"]
    assert state.failures == 1 and "git fetch failed" in state.last_error
    # Backed off: retried after twice the interval, not at the next poll.
    assert state.next_fetch_at == int((NOW + timedelta(minutes=1)).timestamp()) + 120


# -- feeds ----------------------------------------------------------------------------------


def test_feed_entries_become_clean_stories(tmp_path, server):
    db = tmp_path / "news.db"
    sources = (
        feed_source("wire", server.serve("/wire.rss", "wire.rss"), topics=("AI",), heat=120),
        feed_source("lab", server.serve("/lab.atom", "lab.atom")),
        feed_source("notes", server.serve("/notes.json", "notes.json")),
    )
    outcomes = follow(db, sources, tmp_path / "data", 60, NOW, force=True)
    assert [o.error for o in outcomes] == [None, None, None]
    assert [o.report.added for o in outcomes] == [2, 1, 1]
    assert outcomes[0].report.skipped == 1  # the entry without a link
    import asyncio

    rss = asyncio.run(story_by_url(db, "https://wire.example/robots-rockets?utm_source=rss"))
    assert rss.title == "Robots & rockets"
    assert rss.excerpt == "Robots build rockets — fast."
    assert rss.heat == 120 and rss.topics == ("AI", "Space")
    assert rss.provider == "Example Wire"
    assert rss.image_url == "https://wire.example/robots.jpg"
    assert rss.published_at == datetime(2025, 12, 31, 10, tzinfo=UTC)
    atom = asyncio.run(story_by_url(db, "https://lab.example/vision"))
    assert atom.title == "Vision models see more"
    assert atom.excerpt == "Café tests of vision."
    assert atom.topics == ("Computer Vision",) and atom.heat == 0
    notes = asyncio.run(story_by_url(db, "https://notes.example/chips"))
    assert notes.excerpt == "Chips & more chips today."
    assert notes.image_url == "https://notes.example/chips.png"
    assert notes.provider == "JSON Notes"


def test_an_unchanged_feed_is_a_304_and_an_edited_entry_updates(tmp_path, server):
    db = tmp_path / "news.db"
    source = feed_source("wire", server.serve("/wire.rss", "wire.rss", ETag='"v1"'))
    (first,) = follow(db, (source,), tmp_path, 60, NOW, force=True)
    assert first.report.added == 2
    (second,) = follow(db, (source,), tmp_path, 60, NOW + timedelta(minutes=1), force=True)
    assert second.not_modified and second.error is None
    assert server.requests[-1][1]["If-None-Match"] == '"v1"'
    body = (FEEDS / "wire.rss").read_bytes().replace(b"Shared story", b"Shared story, updated")
    server.serve("/wire.rss", body, ETag='"v2"')
    (third,) = follow(db, (source,), tmp_path, 60, NOW + timedelta(minutes=2), force=True)
    assert (third.report.updated, third.report.unchanged) == (1, 1)


def test_feed_failures_are_one_line_each_and_leave_the_stories(tmp_path, server):
    db = tmp_path / "news.db"
    good = feed_source("good", server.serve("/ok.rss", "wire.rss"))
    follow(db, (good,), tmp_path, 60, NOW, force=True)
    server.serve("/ok.rss", b"oops", status=500)
    bad_xml = feed_source("badxml", server.serve("/bad.xml", b"<rss><channel><item><title>x"))
    html = feed_source("html", server.serve("/page", b"<html><body>hello</body></html>"))
    json_not_feed = feed_source("json", server.serve("/j", b'{"hello": 1}'))
    missing = feed_source("missing", server.url("/nothing-here"))
    outcomes = follow(
        db, (good, bad_xml, html, json_not_feed, missing), tmp_path, 60, NOW, force=True
    )
    errors = {o.source.name: o.error for o in outcomes}
    assert errors["good"] == "HTTP 500 Internal Server Error"
    assert errors["badxml"].startswith("not a valid RSS or Atom feed")
    assert "not an RSS, Atom or JSON feed" in errors["html"] or "not a valid" in errors["html"]
    assert "not a JSON Feed" in errors["json"]
    assert errors["missing"] == "HTTP 404 Not Found"
    assert len(rows(db, "SELECT 1 FROM stories WHERE removed_at IS NULL")) == 2


def test_slow_oversized_and_redirected_feeds_are_refused(server):
    slow = server.serve("/slow.rss", "wire.rss", delay=3)
    with pytest.raises(feed.FeedError, match=r"no answer within 0\.5s"):
        feed.fetch(slow, timeout=0.5)
    big = server.serve("/big.rss", b"<rss>" + b" " * 200_000 + b"</rss>")
    with pytest.raises(feed.FeedError, match="larger than 100,000 bytes"):
        feed.fetch(big, max_bytes=100_000)
    away = server.serve("/away", b"", status=302, Location="file:///etc/passwd")
    with pytest.raises(feed.FeedError, match="non-http"):
        feed.fetch(away)
    server.serve("/moved", b"", status=301, Location=server.url("/wire.rss"))
    server.serve("/wire.rss", "wire.rss")
    assert b"Example Wire" in feed.fetch(server.url("/moved")).body


def test_an_xml_bomb_and_external_entities_are_harmless(server):
    started = time.perf_counter()
    parsed = feed.parse((FEEDS / "bomb.xml").read_bytes(), feed_source("b", "https://b.x/"), "")
    assert time.perf_counter() - started < 2
    text = " ".join(s.title + s.excerpt for s in parsed.stories)
    assert "aaaa" not in text  # the entities were never expanded
    assert (
        Path("/etc/hostname").exists() is False
        or Path("/etc/hostname").read_text().strip() not in text
    )


@pytest.mark.parametrize("feed_first", [False, True])
async def test_the_same_story_from_two_sources_is_one_story_also_covered(
    tmp_path, server, feed_first
):
    db = tmp_path / "news.db"
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "shared.md").write_text(story_file("Shared story", "https://news.example/shared"))
    sources = (
        Source("local", "folder", str(folder)),
        feed_source("wire", server.serve("/wire.rss", "wire.rss"), heat=500),
    )
    if feed_first:  # the feed brings it first, the folder's version still wins
        follow(db, sources[1:], tmp_path, 60, NOW - timedelta(hours=1), force=True)
    follow(db, sources, tmp_path, 60, NOW, force=True)
    follow(db, sources, tmp_path, 60, NOW + timedelta(minutes=5), force=True)
    shared = rows(
        db, "SELECT title, heat FROM stories WHERE canonical = ?", "https://news.example/shared"
    )
    assert shared == [("Shared story", 50)]  # one story, the first source's version
    async with await Store.open(db) as store:
        story = (await store.search("shared", None, "relevance")).stories[0]
        related = await store.related(story.id)
    (also,) = [c for c in related.coverage if "also covered by" in c.provider]
    assert also.provider == "also covered by Example Wire (source wire)"
    assert also.url == "https://news.example/shared"


# -- the command line ------------------------------------------------------------------------


def test_cli_ingests_every_source_and_lists_their_state(tmp_path, server, monkeypatch, capsys):
    sources = tmp_path / "sources.yaml"
    sources.write_text(
        "sources:\n"
        f"  - name: wire\n    feed: {server.serve('/wire.rss', 'wire.rss')}\n    heat: 120\n"
        f"  - name: broken\n    feed: {server.serve('/x', b'no', status=500)}\n"
    )
    monkeypatch.setenv("NEWS_SOURCES", str(sources))
    monkeypatch.setenv("NEWS_DB", str(tmp_path / "news.db"))
    monkeypatch.setenv("NEWS_DATA", str(tmp_path / "data"))
    assert cli.main(["ingest"]) == 1  # one source failed; the other is in
    out = capsys.readouterr()
    assert "wire: 2 files: 2 added" in out.out
    assert "broken: failed: HTTP 500" in out.err
    assert cli.main(["sources", "--json"]) == 0
    listed = {s["name"]: s for s in json.loads(capsys.readouterr().out)}
    assert listed["wire"]["items"] == 2 and listed["wire"]["last_error"] is None
    assert listed["wire"]["last_success"] is not None
    assert listed["broken"]["last_error"] == "HTTP 500 Internal Server Error"
    assert listed["broken"]["failures"] == 1 and listed["broken"]["last_success"] is None
    assert cli.main(["sources"]) == 0
    text = capsys.readouterr().out
    assert "wire (feed)" in text and "last error (1 in a row): HTTP 500" in text


# -- the bot follows its sources -------------------------------------------------------------

POLL = 60


def rss(*items: tuple[str, str]) -> bytes:
    entries = "".join(
        f"<item><title>{title}</title><link>https://wire.example/{slug}</link>"
        f"<pubDate>Wed, 31 Dec 2025 12:00:00 GMT</pubDate></item>"
        for slug, title in items
    )
    return f'<rss version="2.0"><channel><title>Wire</title>{entries}</channel></rss>'.encode()


@pytest.fixture
def followed(tmp_path, server, repo):
    """The bot's sources: a feed (hot items, topic AI) and the git repository."""
    work, bare = repo
    url = server.serve("/ai.rss", rss(("first", "First wire story")), ETag='"1"')
    return (
        server,
        work,
        (
            Source("wire", "feed", url, topics=("AI",), heat=150),
            Source("repo", "git", f"file://{bare}", branch="main", path="_news"),
        ),
    )


@pytest.fixture
def bot_config(tmp_path, followed):
    return Config(
        archive=tmp_path / "unused",
        db_path=tmp_path / "bot.db",
        data_dir=tmp_path / "data",
        hot_heat=100,
        poll_seconds=POLL,
        source_list=followed[2],
    )


def posted(channel) -> list[str]:
    return [m.embeds[0].title for m in channel.history() if m.embeds]


@needs_git
async def test_the_poller_posts_a_new_hot_feed_item_and_git_story_once(simcord_env, followed):
    server, work, _ = followed
    env = simcord_env
    guild = env.create_guild(name="Newsroom")
    news = guild.create_text_channel("news")
    staff_role = guild.create_role("Staff", permissions=discord.Permissions(manage_channels=True))
    staff = guild.add_member(env.create_user("sam"), roles=[staff_role])
    await env.bot.archive_loaded.wait()
    assert len(rows(env.bot.store.path, "SELECT 1 FROM stories")) == 4  # 1 + 3 from git
    await staff.slash(news, "subscribe", topic="AI")
    await env.advance_time(POLL)
    assert posted(news) == []  # what was there when the channel subscribed is not pushed

    server.serve(
        "/ai.rss", rss(("first", "First wire story"), ("second", "Breaking wire story")), ETag='"2"'
    )
    (work / "_news" / "hot.md").write_text(
        story_file("Hot from the repository", "https://news.example/git-hot", heat=300)
    )
    commit(work, "a hot story")
    await env.advance_time(POLL)
    assert sorted(posted(news)) == ["Breaking wire story", "Hot from the repository"]
    await env.advance_time(POLL * 3)
    assert sorted(posted(news)) == ["Breaking wire story", "Hot from the repository"]
    # The unchanged feed was asked politely and answered 304.
    assert any(h.get("If-None-Match") == '"2"' for p, h in server.requests if p == "/ai.rss")


@needs_git
def test_python_m_bot_ingest_loads_a_repository_and_a_feed_and_follows_them(tmp_path, server, repo):
    work, bare = repo
    url = server.serve("/ai.rss", rss(("first", "First wire story")))
    sources = tmp_path / "sources.yaml"
    sources.write_text(
        "sources:\n"
        f"  - name: repo\n    git: file://{bare}\n    path: _news\n"
        f"  - name: wire\n    feed: {url}\n    topics: [AI]\n    heat: 120\n    every: 15m\n"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "NEWS_SOURCES": str(sources),
        "NEWS_DB": str(tmp_path / "news.db"),
        "NEWS_DATA": str(tmp_path / "data"),
    }
    root = Path(__file__).resolve().parent.parent

    def ingest() -> str:
        done = subprocess.run(
            [sys.executable, "-m", "bot", "ingest"],
            cwd=tmp_path,
            env={**env, "PYTHONPATH": str(root)},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    out = ingest()
    assert "repo: 3 files: 3 added" in out and "wire: 1 files: 1 added" in out
    (work / "_news" / "s9.md").write_text(story_file("Git story 9", "https://news.example/git-9"))
    commit(work, "one more")
    server.serve("/ai.rss", rss(("first", "First wire story"), ("second", "Second wire story")))
    out = ingest()
    assert "repo: 1 files: 1 added" in out and "wire: 2 files: 1 added" in out


def test_the_lone_archive_leaves_the_sources_stories_alone(tmp_path, server):
    """Ingesting a folder by path (or NEWS_ARCHIVE alone again) hides no source's story."""
    db = tmp_path / "news.db"
    follow(db, (feed_source("wire", server.serve("/w", "wire.rss")),), tmp_path, 60, NOW, True)
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "a.md").write_text(story_file("Folder story", "https://news.example/folder"))
    report = ingest_archive(db, folder, NOW)
    assert (report.added, report.removed) == (1, 0)
    assert len(rows(db, "SELECT 1 FROM stories WHERE removed_at IS NULL")) == 3


def test_each_source_is_fetched_at_its_own_interval(tmp_path, server):
    db = tmp_path / "news.db"
    quick = feed_source("quick", server.serve("/q", "wire.rss"))  # every poll (60 s)
    slow = feed_source("slow", server.serve("/s", "lab.atom"), every=900)
    for minute in range(0, 20):
        follow(db, (quick, slow), tmp_path, 60, NOW + timedelta(minutes=minute))
    fetched = [path for path, _ in server.requests]
    assert fetched.count("/q") == 20
    assert fetched.count("/s") == 2  # at 0 and 15 minutes


def test_a_source_past_the_ingest_time_limit_carries_on_at_its_next_fetch(tmp_path):
    db = tmp_path / "news.db"
    folder = tmp_path / "folder"
    folder.mkdir()
    for n in range(30):
        url = f"https://news.example/slow-{n}"
        (folder / f"s{n}.md").write_text(story_file(f"Story {n}", url))
    source = (Source("local", "folder", str(folder)),)
    (cut,) = follow(db, source, tmp_path, 60, NOW, force=True, time_limit=0)
    assert "took longer than 0s" in cut.error
    (done,) = follow(db, source, tmp_path, 60, NOW, force=True, time_limit=60)
    assert done.error is None
    assert len(rows(db, "SELECT 1 FROM stories WHERE removed_at IS NULL")) == 30
