"""`python -m bot …` as an operator runs it: a real process, a real database in a temp dir."""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CORPUS, ROOT, SEEDS, story_file
from test_archive import HOSTILE

from bot import cli
from bot.cli import build_parser
from core.archive import canonical_url, short_id
from core.store.stories import SUGGEST_ALL_BELOW

STORY_KEYS = {"id", "title", "url", "provider", "published", "heat", "topics", "type", "excerpt"}
SUMMARY = re.compile(
    r"^(\d+) files: (\d+) added, (\d+) updated, (\d+) unchanged, (\d+) removed, "
    r"(\d+) skipped \(not news\), (\d+) rejected, (\d+) unpublished, in \d+\.\d\ds$"
)


def run_cli(*args: str, db: Path, archive: Path = CORPUS, **env: str):
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("NEWS_") and k not in ("DISCORD_TOKEN", "LOG_LEVEL")
    }
    clean.update(NEWS_DB=str(db), NEWS_ARCHIVE=str(archive), LOG_LEVEL="WARNING")
    clean.update(env)
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
    )


def ok_json(*args: str, db: Path):
    done = run_cli(*args, "--json", db=db)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def corpus_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database with the corpus ingested once through the CLI, shared by read-only tests."""
    db = tmp_path_factory.mktemp("cli") / "news.db"
    done = run_cli("ingest", db=db)
    assert done.returncode == 0, done.stderr
    return db


def test_ingest_prints_a_summary_and_is_incremental(tmp_path: Path):
    db = tmp_path / "data" / "news.db"  # the folder is created on demand

    first = run_cli("ingest", db=db)
    second = run_cli("ingest", db=db)

    assert first.returncode == 0, first.stderr
    assert SUMMARY.match(first.stdout.strip()).groups() == (
        "192",
        "191",
        "1",
        "0",
        "0",
        "0",
        "0",
        "60",
    )
    assert "parsing [" not in first.stderr  # no progress bar when not on a terminal
    assert second.returncode == 0
    assert SUMMARY.match(second.stdout.strip()).groups() == (
        "192",
        "0",
        "0",
        "192",
        "0",
        "0",
        "0",
        "60",
    )


def test_ingest_path_lists_rejections_with_reasons(tmp_path: Path):
    done = run_cli("ingest", str(HOSTILE), db=tmp_path / "news.db")

    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert SUMMARY.match(lines[0]).groups() == ("26", "7", "0", "0", "0", "0", "19", "0")
    assert "  rejected heat_hot.txt: heat must be a number, got 'hot'" in lines
    assert "  rejected empty.txt: empty file" in lines
    hidden_host = "  rejected userinfo_url.txt: originalUrl has a user name before '@'"
    assert any(line.startswith(hidden_host) for line in lines)
    assert len(lines) == 1 + 19


def test_ingest_prints_its_summary_once_even_when_logging_at_info(tmp_path: Path):
    done = run_cli("ingest", db=tmp_path / "news.db", LOG_LEVEL="INFO")

    assert done.returncode == 0, done.stderr
    assert (done.stdout + done.stderr).count("192 files:") == 1
    assert SUMMARY.match(done.stdout.strip())


def test_ingest_refuses_another_archive_unless_replace(tmp_path: Path):
    db = tmp_path / "news.db"
    assert run_cli("ingest", db=db, archive=SEEDS).returncode == 0

    refused = run_cli("ingest", db=db)  # NEWS_ARCHIVE is now the corpus

    assert refused.returncode == 1
    assert refused.stdout == ""
    assert f"built from the archive {SEEDS.resolve()}, not {CORPUS.resolve()}" in refused.stderr
    assert "python -m bot ingest --replace" in refused.stderr
    still = ok_json("story", "fyjmhv5j", db=db)  # the seed archive is still shown
    assert still["heat"] == 179
    seeds = len(ok_json("search", "--limit", "1000", db=db))
    replaced = run_cli("ingest", "--replace", db=db)
    assert replaced.returncode == 0, replaced.stderr
    assert SUMMARY.match(replaced.stdout.strip()).groups()[:5] == (
        "192",
        "191",
        "1",
        "0",
        str(seeds),  # the seed archive's stories are hidden
    )
    assert run_cli("story", "fyjmhv5j", db=db).returncode == 1  # hidden now
    assert run_cli("ingest", db=db).returncode == 0


def test_ingest_of_a_missing_archive_fails_clearly(tmp_path: Path):
    done = run_cli("ingest", db=tmp_path / "news.db", archive=tmp_path / "nowhere")

    assert done.returncode == 1
    assert done.stdout == ""
    assert f"archive not found: {tmp_path / 'nowhere'} (set NEWS_ARCHIVE)" in done.stderr


def test_search_json_shape(corpus_db: Path):
    stories = ok_json("search", "portals", "--limit", "2", db=corpus_db)

    assert [s["id"] for s in stories] == ["hbubsdqr", "behvbedr"]
    assert all(set(s) == STORY_KEYS for s in stories)
    first = stories[0]
    assert first["title"] == "Microsoft Power Apps portals | 2020 release wave 1 overview"
    assert first["provider"] == "Microsoft"
    assert first["heat"] == 154
    assert first["type"] == "video"
    assert first["topics"] == ["Power Apps", "Portals"]
    assert first["url"].startswith("https://")
    assert first["published"] == "2020-05-12T00:10:15+00:00"


def test_search_topic_sort_and_limit(corpus_db: Path):
    by_topic = ok_json("search", "--topic", "teams integration", "--limit", "3", db=corpus_db)
    assert [s["id"] for s in by_topic] == ["wxl53wgq", "c46xyozp", "ny7uqrb5"]
    assert all("Teams integration" in s["topics"] for s in by_topic)

    newest = ok_json("search", "--sort", "new", "--limit", "2", db=corpus_db)
    assert [(s["id"], s["published"]) for s in newest] == [
        ("ycgp574s", "2021-06-02T16:12:27+00:00"),
        ("zxzorbdi", "2021-05-28T04:34:00+00:00"),
    ]


def test_search_text_output(corpus_db: Path):
    done = run_cli("search", "--limit", "2", db=corpus_db)
    assert done.returncode == 0
    assert done.stdout.splitlines() == [
        "  189  ht5waumu  Considerations for optimized performance in Power Apps"
        " — Microsoft, 2020-12-03",
        "  154  behvbedr  Power Apps portals improvements [video] — Microsoft, 2021-01-22",
        "(2 of 131)",
    ]
    nothing = run_cli("search", "xylophone NOT (", db=corpus_db)
    assert (nothing.returncode, nothing.stdout) == (0, "No stories found.\n")


def test_search_words_need_no_quotes_and_plurals_match(corpus_db: Path):
    unquoted = ok_json("search", "canvas", "apps", "--limit", "50", db=corpus_db)
    quoted = ok_json("search", "canvas apps", "--limit", "50", db=corpus_db)
    singular = ok_json("search", "canvas", "app", "--limit", "50", db=corpus_db)

    assert unquoted == quoted
    assert len(unquoted) == 10
    assert {s["id"] for s in singular} == {s["id"] for s in unquoted}


def test_search_sorts(corpus_db: Path):
    def order(*sort: str) -> list[tuple[str, int]]:
        found = ok_json("search", "portals", "--limit", "50", *sort, db=corpus_db)
        return [(s["id"], s["heat"]) for s in found]

    hot, relevance, default = order("--sort", "hot"), order("--sort", "relevance"), order()
    heats = [heat for _, heat in hot]
    assert heats == sorted(heats, reverse=True)  # hot: really by heat
    assert default == relevance  # a query's default order is relevance
    assert relevance != hot and sorted(relevance) == sorted(hot)  # the same stories
    # behvbedr is hotter news (newer) but hbubsdqr says "portals" more prominently.
    assert (hot[0][0], relevance[0][0]) == ("behvbedr", "hbubsdqr")


def test_unknown_topic_says_so_with_suggestions(corpus_db: Path):
    done = run_cli("search", "apps", "--topic", "Canvas", db=corpus_db)

    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.startswith("unknown topic 'Canvas'. Did you mean: Canvas apps?")


def test_unknown_topic_suggestions_in_an_archive_of_many_topics(tmp_path: Path):
    # Above SUGGEST_ALL_BELOW topics the names are indexed first (work for a thread).
    archive, db = tmp_path / "archive", tmp_path / "news.db"
    archive.mkdir()
    names = [f"Topic {n:03d}" for n in range(SUGGEST_ALL_BELOW)] + ["Computer Vision"]
    for n in range(0, len(names), 25):
        topics = names[n : n + 25]
        text = story_file(title=f"Story {n}", url=f"https://news.example/{n}", topics=topics)
        (archive / f"s{n}.md").write_text(text, encoding="utf-8")
    assert run_cli("ingest", db=db, archive=archive).returncode == 0

    done = run_cli("search", "story", "--topic", "computer vsion", db=db)

    assert done.returncode == 1
    assert done.stderr.startswith("unknown topic 'computer vsion'. Did you mean: Computer Vision")


def test_output_piped_into_head_ends_quietly(corpus_db: Path):
    # 80 kB of JSON: more than a pipe holds, so writing goes on after head has gone.
    done = subprocess.run(
        f"{sys.executable} -m bot search --limit 1000 --json | head -1",
        shell=True,
        cwd=ROOT,
        env={**os.environ, "NEWS_DB": str(corpus_db), "LOG_LEVEL": "WARNING"},
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.stdout == "[\n"
    assert done.stderr == ""


def test_topics_json(corpus_db: Path):
    assert ok_json("topics", db=corpus_db) == [
        {"name": "Power Apps", "count": 131},
        {"name": "Portals", "count": 15},
        {"name": "Teams integration", "count": 13},
        {"name": "Model-driven apps", "count": 9},
        {"name": "Canvas apps", "count": 5},
        {"name": "AI Builder", "count": 4},
        {"name": "Common Data Service", "count": 1},
    ]


def test_related_json_on_the_corpus(corpus_db: Path):
    related = ok_json("related", "HT5WAUMU", db=corpus_db)

    assert set(related) == {"story", "coverage", "similar"}
    assert related["story"]["id"] == "ht5waumu"
    assert related["coverage"] == []
    assert len(related["similar"]) == 5
    assert all(set(s) == STORY_KEYS and s["id"] != "ht5waumu" for s in related["similar"])
    text = run_cli("related", "ht5waumu", db=corpus_db).stdout
    assert "Coverage elsewhere:\n  (none)\n" in text


def test_story_and_related_json_of_the_seed(tmp_path: Path):
    db = tmp_path / "news.db"
    assert run_cli("ingest", db=db, archive=SEEDS).returncode == 0

    story = run_cli("story", "fyjmhv5j", "--json", db=db, archive=SEEDS)
    assert story.returncode == 0, story.stderr
    data = json.loads(story.stdout)
    assert set(data) == STORY_KEYS | {"related"}
    assert (data["title"], data["heat"], data["topics"]) == (
        "Technologists Use Facial Recognition on Parler Videos",
        179,
        ["Computer Vision", "AI"],
    )
    assert data["published"] == "2021-01-20T21:34:00+00:00"
    assert len(data["related"]) == 9
    assert data["related"][0] == {
        "title": "This Site Published Every Face From Parler's Capitol Riot Videos",
        "url": "https://www.wired.com/story/faces-of-the-riot-capitol-insurrection-facial-recognition/",
        "provider": "Wired",
        "published": "2021-01-21T00:33:00+00:00",
    }

    related = run_cli("related", "fyjmhv5j", "--json", db=db, archive=SEEDS)
    assert related.returncode == 0
    data = json.loads(related.stdout)
    assert [c["provider"] for c in data["coverage"]][:3] == ["Wired", "Mint", "Ars Technica"]
    # The sample stories of seeds/ are similar; never the seed itself.
    assert len(data["similar"]) == 5
    assert all(set(s) == STORY_KEYS and s["id"] != "fyjmhv5j" for s in data["similar"])


def test_related_text_says_none_for_an_empty_section(tmp_path: Path):
    archive = tmp_path / "archive"
    archive.mkdir()
    (archive / "only.md").write_text(story_file("The only story", "https://e.com/only"))
    db = tmp_path / "news.db"
    assert run_cli("ingest", db=db, archive=archive).returncode == 0

    done = run_cli("related", short_id(canonical_url("https://e.com/only")), db=db)

    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith(
        "Coverage elsewhere:\n  (none)\n\nSimilar stories in the archive:\n  (none)\n"
    )


@pytest.mark.parametrize("command", ["story", "related"])
def test_unknown_story_id(corpus_db: Path, command: str):
    done = run_cli(command, "nope1234", db=corpus_db)

    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.strip() == "No story with id 'nope1234'."


def test_bad_setting_exits_2_naming_the_variable(tmp_path: Path):
    done = run_cli("topics", db=tmp_path / "news.db", NEWS_HOT_HEAT="hot")

    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        "configuration error: NEWS_HOT_HEAT must be a whole number, got 'hot'"
    ]
    assert not (tmp_path / "news.db").exists()


def _walk(parser: argparse.ArgumentParser, name: str):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for sub_name, sub in action.choices.items():
                yield f"{name} {sub_name}", helps.get(sub_name)
                yield from _walk(sub, f"{name} {sub_name}")
        elif not isinstance(action, argparse._HelpAction):
            yield f"{name} {'/'.join(action.option_strings) or action.dest}", action.help


def test_every_subcommand_and_option_has_help():
    entries = list(_walk(build_parser(), "newsbot"))
    names = {n for n, _ in entries}

    assert {"newsbot search", "newsbot ingest", "newsbot topics", "newsbot story"} <= names
    assert "newsbot search --limit" in names
    assert [n for n, text in entries if not (text and text.strip())] == []


# -- database problems, answered in one line ---------------------------------------------


def test_a_corrupt_database_is_named_in_one_line(tmp_path, monkeypatch, capsys):
    db = tmp_path / "news.db"
    db.write_bytes(b"this is not a database, just garbage bytes " * 100)
    monkeypatch.setenv("NEWS_DB", str(db))
    assert cli.main(["search", "robots"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"database {db}: file is not a database; it is damaged: restore")


def test_a_full_database_is_named_in_one_line(tmp_path, monkeypatch, capsys):
    import core.store.archive_writer

    db = tmp_path / "news.db"
    monkeypatch.setenv("NEWS_DB", str(db))
    monkeypatch.setenv("NEWS_ARCHIVE", str(CORPUS))
    real_connect = core.store.archive_writer.connect

    def connect_to_a_full_disk(path):
        conn = real_connect(path)
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages + 5}")  # SQLite's real SQLITE_FULL
        return conn

    monkeypatch.setattr(core.store.archive_writer, "connect", connect_to_a_full_disk)
    assert cli.main(["ingest"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"database {db}: database or disk is full; the disk is full" in err


def run_and_list_loaded(args: list[str], heavy: tuple[str, ...], db: Path) -> list[str]:
    """`python -m bot ARGS` in a process of its own: its output, then the list of the
    `heavy` modules it loaded."""
    script = (
        "import sys, runpy\n"
        f"sys.argv = ['bot', *{args!r}]\n"
        "try:\n"
        "    runpy.run_module('bot', run_name='__main__')\n"
        "except SystemExit as stop:\n"
        "    assert not stop.code, stop.code\n"
        f"print(sorted(m for m in {heavy!r} if m in sys.modules))\n"
    )
    env = {**os.environ, "NEWS_DB": str(db), "LOG_LEVEL": "WARNING"}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=db.parent, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_ingest_into_sqlite_loads_neither_asyncio_nor_openssl(tmp_path: Path):
    # `ingest` runs beside its parse workers: the async store (asyncio, aiosqlite) and
    # OpenSSL would cost 13 MB more in its process, for nothing it does.
    heavy = ("asyncio", "aiosqlite", "ssl", "hashlib")
    lines = run_and_list_loaded(["ingest", str(CORPUS)], heavy, tmp_path / "news.db")

    assert lines[0].startswith("192 files: 191 added")
    assert lines[-1] == "[]"


@pytest.mark.parametrize(
    "command", [["search", "vision"], ["story", "ht5waumu"], ["related", "ht5waumu"], ["topics"]]
)
def test_read_commands_answer_without_loading_asyncio_ingest_or_discord(
    corpus_db: Path, command: list[str]
):
    # The read commands should start at once: asyncio and aiosqlite (≈25 ms, as much as
    # the rest of the command), the parser (YAML), ingest (its worker processes), the
    # sources (HTTP), the planner and discord.py stay unloaded.
    heavy = ("asyncio", "aiosqlite", "yaml", "core.archive", "core.ingest", "core.sources")
    heavy += ("core.planner", "multiprocessing", "dotenv", "discord")

    assert run_and_list_loaded(command, heavy, corpus_db)[-1] == "[]"


def test_the_progress_bar_counts_a_rescans_files_before_their_total_is_known(monkeypatch):
    # A rescan parses the changed files its walk finds before the walk ends: until then
    # there is no total for a bar, and the operator sees a count instead of nothing.
    class Terminal:
        text = ""

        def isatty(self) -> bool:
            return True

        def write(self, text: str) -> None:
            self.text += text

        def flush(self) -> None:
            pass

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    show = cli._progress_bar()

    show(0, 0)
    assert terminal.text == ""
    show(200, 0)
    assert terminal.text.endswith("parsing 200 changed files…")
    show(300, 400)
    assert terminal.text.endswith(f"parsing [{'#' * 22}{'-' * 8}] 300/400")
