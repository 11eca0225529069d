"""The offline playground as a person meets it: a real process, its page, a real browser.

`python -m bot playground --no-browser --port 0` runs in a subprocess on a small
archive of its own; the tests read the page through the preview's HTTP API (the one
the bundled page uses) and, where Debian's chromium is installed, in a headless
browser. Every process is stopped in `finally`, with timeouts, so nothing can hang.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from bot import cli
from tests.conftest import story_file

HOT = [
    ("Solar kites light up a mountain village", ("Energy", "Climate")),
    ("Tidal turbines beat their power forecast", ("Energy",)),
    ("Glacier melt maps drawn from satellite radar", ("Climate",)),
]
COLD = ("A quiet week for wind farm permits", ("Energy",))
DROPPED = ("Heat pumps outsell gas boilers for the first time", ("Energy",))
STARTUP_SECONDS = 60
ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def story_text(title: str, topics: tuple[str, ...], heat: int) -> str:
    slug = "-".join(title.lower().split())
    return story_file(
        title=title,
        url=f"https://news.example.com/{slug}",
        heat=heat,
        topics=topics,
        published="2021-03-01T09:00:00Z",
    )


@pytest.fixture
def playground_archive(tmp_path: Path) -> Path:
    archive = tmp_path / "archive"
    archive.mkdir()
    for i, (title, topics) in enumerate(HOT):
        (archive / f"hot{i}.md").write_text(story_text(title, topics, 150 + 10 * i))
    (archive / "cold.md").write_text(story_text(*COLD, heat=20))
    return archive


class Playground:
    """A `python -m bot …` process printing the preview URL; always stopped."""

    def __init__(
        self, args: list[str], cwd: Path, env: dict[str, str], command: list | None = None
    ) -> None:
        self.stderr_path = cwd / "playground.stderr"
        self._stderr = self.stderr_path.open("w")
        self.process = subprocess.Popen(
            [*(command or [sys.executable, "-m", "bot"]), *args],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        self.url = self._wait_for_url()
        self.base, self.capability = self.url.split("/#", 1)

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def _wait_for_url(self) -> str:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                break
            self.output.append(line)
            if line.startswith("Open http://127.0.0.1:"):
                return line.split()[1]
        self.stop()
        pytest.fail(f"the playground printed no URL:\n{self.transcript()}")

    def transcript(self) -> str:
        return "".join(self.output) + "\n--- stderr ---\n" + self.stderr_path.read_text()[-4000:]

    def stop(self) -> int | None:
        """Ctrl-C, then wait; killed if it does not stop in time."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        while True:  # the rest of stdout, for assertions on the goodbye
            try:
                line = self.lines.get(timeout=2)
            except queue.Empty:
                break
            if line is None:
                break
            self.output.append(line)
        self._stderr.close()
        return self.process.returncode

    # -- the preview's HTTP API, as the bundled page calls it -----------------------

    def request(self, method: str, path: str, body=None, context: str | None = None):
        headers = {"X-Simcord-Capability": self.capability, "Content-Type": "application/json"}
        if context:
            headers["X-Simcord-Context"] = context
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data, headers, method=method)
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def open_page(self, viewer_id: str | None = None) -> Page:
        body = {} if viewer_id is None else {"viewer_id": viewer_id}
        return Page(self, self.request("POST", "/api/pages", body))


class Page:
    def __init__(self, playground: Playground, opened: dict) -> None:
        self.playground = playground
        self.context = opened["context"]["id"]
        self.sequence = 0
        self.state = opened

    def refresh(self) -> dict:
        self.state = self.playground.request("GET", "/api/state", context=self.context)
        return self.state

    def messages(self) -> list[dict]:
        state = self.refresh()
        return [state["messages"][i] for i in state["timeline"] if i in state["messages"]]

    def story_posts(self) -> list[dict]:
        return [m for m in self.messages() if m["author"]["bot"] and story_titles(m)]

    def commands(self) -> list[dict]:
        """The slash commands this page's viewer may run (its command catalog)."""
        return self.playground.request("GET", "/api/commands", context=self.context)["entries"]

    def run_command(self, name: str, **options: str) -> dict:
        entry = next(e for e in self.commands() if e["invocation"] == name)
        state = self.refresh()
        self.sequence += 1
        return self.playground.request(
            "POST",
            "/api/action",
            {
                "protocol_version": 3,
                "sequence": self.sequence,
                "request_id": f"test-{self.sequence}",
                "generation": state["context"]["generation"],
                "bot_generation": state["botGeneration"],
                "published_revision": state["publishedRevision"],
                "kind": "run_command",
                "command_id": entry["commandId"],
                "path": entry["path"],
                "schema_fingerprint": entry["schemaFingerprint"],
                "options": options,
            },
            context=self.context,
        )


def story_titles(message: dict) -> list[str]:
    """The titles of a message's story embeds (a pushed post has one)."""
    return [e["title"] for e in message.get("embeds", []) if e.get("title") and e.get("url")]


def embed_text(message: dict) -> str:
    """Everything a message's embeds say: titles, descriptions, fields."""
    parts = []
    for embed in message.get("embeds", []):
        parts += [embed.get("title") or "", embed.get("description") or ""]
        parts += [f"{f['name']}\n{f['value']}" for f in embed.get("fields", [])]
    return "\n".join(parts)


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("NEWS_") and k not in ("DISCORD_TOKEN", "LOG_LEVEL", "BROWSER")
    }
    # Run from a bare directory (no .env of the developer's), importing this checkout.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    # Where the production database would be: the playground must never create it.
    env["NEWS_DB"] = str(tmp_path / "data" / "news.db")
    return {**env, **extra}


@pytest.fixture
def playground(tmp_path: Path, playground_archive: Path):
    started = Playground(
        ["playground", "--no-browser", "--port", "0", "--poll", "2"],
        cwd=tmp_path,
        env=clean_env(tmp_path, NEWS_ARCHIVE=str(playground_archive)),
    )
    try:
        yield started
    finally:
        started.stop()


def wait_for(check, timeout: float = 20.0, every: float = 0.5):
    deadline = time.monotonic() + timeout
    while True:
        if result := check():
            return result
        if time.monotonic() > deadline:
            return result
        time.sleep(every)


# -- the page over HTTP ----------------------------------------------------------------


def test_news_channel_holds_the_hot_stories_as_pushed_posts(playground):
    page = playground.open_page()
    assert page.state["channel"]["name"] == "news"
    posts = page.story_posts()
    titles = sorted(t for post in posts for t in story_titles(post))
    assert titles == sorted(title for title, _ in HOT)  # each once; the cold one never
    assert all(post["components"] for post in posts)  # Read / Related buttons
    assert all(post["author"]["name"] == "newsbot" for post in posts)
    loaded = [m["content"] for m in page.messages() if "Loaded the archive" in m["content"]]
    assert loaded == ["Loaded the archive: 4 files in " + loaded[0].split(" in ")[1]]
    assert "#news follows 2 of 2 topics" in loaded[0]


def test_the_digest_channel_holds_one_digest(tmp_path, playground_archive):
    started = Playground(
        ["playground", "--no-browser", "--port", "0", "--poll", "2", "--channel", "daily-digest"],
        cwd=tmp_path,
        env=clean_env(tmp_path, NEWS_ARCHIVE=str(playground_archive)),
    )
    try:
        page = started.open_page()
        assert page.state["channel"]["name"] == "daily-digest"
        digests = wait_for(lambda: [m for m in page.messages() if "Daily digest" in embed_text(m)])
        (digest,) = digests
        text = embed_text(digest)
        # The biggest topic (Energy): its hot stories, hottest first, as links.
        energy = [title for title, topics in HOT if "Energy" in topics]
        assert all(f"[{title}](" in text for title in energy)
        assert COLD[0] not in text
    finally:
        started.stop()


def test_the_compact_channel_holds_each_hot_story_as_a_line(tmp_path, playground_archive):
    started = Playground(
        ["playground", "--no-browser", "--port", "0", "--poll", "2", "--channel", "compact-news"],
        cwd=tmp_path,
        env=clean_env(tmp_path, NEWS_ARCHIVE=str(playground_archive)),
    )
    try:
        page = started.open_page()
        assert page.state["channel"]["name"] == "compact-news"
        posts = wait_for(lambda: [m for m in page.messages() if m["author"]["bot"]])
        lines = [line for m in posts for line in m["content"].splitlines()]
        # Each hot story once, as a line with its heat; several to a message; no cards.
        assert sorted(line.split("](", 1)[0].lstrip("[") for line in lines) == sorted(
            title for title, _ in HOT
        )
        assert all(" · 🔥 " in line for line in lines)
        assert any(len(m["content"].splitlines()) > 1 for m in posts)
        assert not any(m.get("embeds") for m in posts)
    finally:
        started.stop()


def test_a_slash_command_from_the_page_answers_with_story_embeds(playground):
    page = playground.open_page()
    result = page.run_command("news", topic="Energy")
    assert not result["rejected"], result["diagnostics"]
    assert result["settlement"] == "settled"
    (outcome,) = [o for o in result["outcomes"] if o["kind"] == "response"]
    answer = page.refresh()["messages"][outcome["messageId"]]
    shown = embed_text(answer)
    assert "Solar kites light up a mountain village" in shown
    assert "Tidal turbines beat their power forecast" in shown
    assert "Glacier melt" not in shown  # not an Energy story


def test_both_people_can_view_the_page(playground):
    page = playground.open_page()
    viewers = {v["name"]: v["id"] for v in page.state["viewers"]}
    assert set(viewers) == {"you", "reader"}
    as_member = playground.open_page(viewers["reader"])
    commands = {e["invocation"] for e in as_member.commands()}
    assert "news" in commands
    assert "subscribe" not in commands  # staff only: hidden from an ordinary member
    mod_commands = {e["invocation"] for e in page.commands()}
    assert "subscribe" in mod_commands


def test_a_story_file_dropped_into_the_archive_appears_in_news(playground, playground_archive):
    page = playground.open_page()
    (playground_archive / "dropped.md").write_text(story_text(*DROPPED, heat=300))

    def posted():
        return any(DROPPED[0] in story_titles(p) for p in page.story_posts())

    assert wait_for(posted, timeout=30), "the dropped story was not posted to #news"


def test_ctrl_c_stops_it_cleanly_without_touching_news_db(tmp_path, playground):
    assert playground.stop() == 0, playground.transcript()
    assert "Playground stopped." in "".join(playground.output), playground.transcript()
    assert "Traceback" not in playground.stderr_path.read_text()
    assert not (tmp_path / "data").exists()


# -- the first run ----------------------------------------------------------------------


def test_the_first_run_without_a_token_starts_the_playground(tmp_path, playground_archive):
    started = Playground(
        [],  # no subcommand, as `python3 dev.py run` runs it
        cwd=tmp_path,
        env=clean_env(tmp_path, NEWS_ARCHIVE=str(playground_archive)),
    )
    try:
        assert started.open_page().story_posts()
    finally:
        started.stop()
    err = started.stderr_path.read_text()
    assert "No DISCORD_TOKEN" in err and "offline playground" in err
    # No display here: it says so instead of launching a console browser.
    assert "open the URL below yourself" in "".join(started.output)


def test_the_first_run_with_a_token_connects_to_discord(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for name in ("NEWS_DB", "NEWS_ARCHIVE", "NEWS_DEV_GUILD", "LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / ".env").write_text("DISCORD_TOKEN=from-the-dotenv-file\n")
    ran = []
    monkeypatch.setattr("bot.app.run_bot", lambda config: ran.append(config.token) or 0)
    monkeypatch.setattr("bot.playground.run", lambda *a, **k: pytest.fail("not the playground"))
    assert cli.main([]) == 0
    assert ran == ["from-the-dotenv-file"]
    err = capsys.readouterr().err
    assert "DISCORD_TOKEN is set: connecting to Discord" in err
    assert "from-the-dotenv-file" not in err


def test_run_still_requires_the_token(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DISCORD_TOKEN", raising=False)
    monkeypatch.setattr("bot.playground.run", lambda *a, **k: pytest.fail("not the playground"))
    assert cli.main(["run"]) == 2
    assert "No DISCORD_TOKEN is set" in capsys.readouterr().err


async def test_backup_copies_the_database(tmp_path):
    import sqlite3
    from datetime import UTC, datetime

    from core.ingest import ingest
    from core.store import Store

    db = tmp_path / "news.db"
    async with await Store.open(db) as store:
        await ingest(store, ROOT / "seeds", datetime.now(UTC))
        copy = tmp_path / "backups" / "news-copy.db"
        # While the store is open, as with a running bot (the CLI runs it in a thread here,
        # since it starts its own event loop).
        assert await asyncio.to_thread(cli.backup, db, copy) == 0
    story_files = len(list((ROOT / "seeds").iterdir()))
    assert story_files > 1
    with sqlite3.connect(copy) as conn:
        assert conn.execute("SELECT count(*) FROM stories").fetchone()[0] == story_files


# -- in a real browser --------------------------------------------------------------------


@pytest.mark.skipif(
    CHROMIUM is None,
    reason="Debian's chromium is not installed (apt-get install chromium; .ci/run installs it)",
)
def test_a_real_browser_shows_the_story_titles(tmp_path, playground):
    profile = tmp_path / "chromium-profile"
    profile.mkdir()
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=8000",
        "--dump-dom",
        playground.url,
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=90)
    except subprocess.TimeoutExpired:
        pytest.fail("chromium did not finish within 90 s")
    dom = done.stdout
    assert done.returncode == 0, done.stderr[-2000:]
    for title, _ in HOT:
        assert title in dom, f"{title!r} is not on the page"
    assert "Welcome to the newsbot playground" in dom


# -- first impressions: the default archive, dev.py, a quiet terminal, a big archive -------


def assert_quiet_start(started: Playground, stderr_allowed: tuple[str, ...] = ()) -> None:
    """The URL is the last line printed at start; the log shows nothing below WARNING."""
    time.sleep(3)  # anything printed after the URL would have arrived by now
    started.stop()
    out = [line for line in started.output if line.strip()]
    assert out[-1] == "Playground stopped.\n", started.transcript()
    assert out[-2].startswith("Open http://127.0.0.1:"), started.transcript()
    chatter = [
        line
        for line in started.stderr_path.read_text().splitlines()
        if line.strip() and not any(allowed in line for allowed in stderr_allowed)
    ]
    assert chatter == [], started.transcript()


def test_the_default_archive_makes_a_living_news_channel(tmp_path):
    (tmp_path / "seeds").symlink_to(ROOT / "seeds")  # the default NEWS_ARCHIVE, `seeds/`
    started = Playground(["playground", "--no-browser"], cwd=tmp_path, env=clean_env(tmp_path))
    try:
        page = started.open_page()
        posts = page.story_posts()
        assert len(posts) >= 10
        assert {p["author"]["name"] for p in posts} == {"newsbot"}
        topics = embed_text({"embeds": [e for p in posts for e in p["embeds"]]})
        assert "Computer Vision" in topics and "Robotics" in topics
        # Story images render from the bundled stand-ins: nothing is "unavailable".
        images = [e["image"] for p in posts for e in p["embeds"] if e.get("image")]
        assert images and all(image["available"] for image in images)
    finally:
        assert_quiet_start(started)


def test_dev_py_run_passes_the_playground_options(tmp_path, playground_archive):
    env = clean_env(tmp_path, NEWS_ARCHIVE=str(playground_archive))
    for args in (["run", "--no-browser", "--poll", "3"], ["run", "playground", "--no-browser"]):
        started = Playground(
            args, cwd=tmp_path, env=env, command=[sys.executable, str(ROOT / "dev.py")]
        )
        try:
            assert len(started.open_page().story_posts()) == len(HOT)
        finally:
            started.stop()
        assert "Traceback" not in started.stderr_path.read_text(), started.transcript()


def test_the_playground_start_is_quiet_and_ends_with_the_url(playground):
    assert_quiet_start(playground)


SLOW_INGEST = """
import os, sys, time
import core.ingest

original = core.ingest.ingest_archive

def slow(db, root, now, progress=None, *args, **kwargs):
    # The first load of the archive (the stand-in's empty one and later rescans are quick)
    # takes 20 s and reports progress, as a 100,000-file archive would.
    if str(root) == os.environ["NEWS_ARCHIVE"] and not slow.done:
        slow.done = True
        for done in range(4):
            if progress:
                progress(done, 4)
            time.sleep(5)
    return original(db, root, now, progress, *args, **kwargs)

slow.done = False

core.ingest.ingest_archive = slow
from bot.cli import main
sys.exit(main())
"""


def test_a_slow_first_load_runs_in_the_background_and_the_page_says_so(
    tmp_path, playground_archive
):
    started = Playground(
        ["playground", "--no-browser", "--poll", "2"],
        cwd=tmp_path,
        env=clean_env(tmp_path, NEWS_ARCHIVE=str(playground_archive)),
        command=[sys.executable, "-c", SLOW_INGEST],
    )
    try:
        page = started.open_page()  # the URL came before the load finished
        contents = [m["content"] for m in page.messages()]
        assert any(c.startswith("Loading the archive…") for c in contents), contents
        assert page.story_posts() == []

        def loaded():
            return any("Loaded the archive" in m["content"] for m in page.messages())

        assert wait_for(loaded, timeout=60), started.transcript()
        assert wait_for(lambda: len(page.story_posts()) == len(HOT), timeout=20)
    finally:
        started.stop()
    assert "Traceback" not in started.stderr_path.read_text(), started.transcript()
