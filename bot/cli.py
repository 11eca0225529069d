"""The command line: `python -m bot <command>` (also installed as `newsbot`)."""

from __future__ import annotations

import argparse
import logging
import os
import sqlite3
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from core.config import Config, ConfigError
from core.models import Coverage, Story
from core.store import NewsStore, is_postgres_url

if TYPE_CHECKING:
    from core.ingest import IngestReport

# The parser, ingest and the sources (YAML, worker processes, HTTP), and asyncio, are
# imported by the commands that use them: `search`, `story`, `related` and `topics` on
# SQLite answer without loading them (their coroutines run on `DirectStore`), and
# `ingest` into SQLite runs without asyncio (9.5 MB with the ssl it loads).

HELP = ("-h", "--help")


def story_json(story: Story) -> dict:
    """The stable JSON shape of a story (documented in the README)."""
    return {
        "id": story.id,
        "title": story.title,
        "url": story.url,
        "provider": story.provider,
        "published": story.published_at.isoformat() if story.published_at else None,
        "heat": story.heat,
        "topics": list(story.topics),
        "type": story.type,
        "excerpt": story.excerpt,
    }


def coverage_json(link: Coverage) -> dict:
    return {
        "title": link.title,
        "url": link.url,
        "provider": link.provider,
        "published": link.published_at.isoformat() if link.published_at else None,
    }


def story_line(story: Story) -> str:
    when = story.published_at.strftime("%Y-%m-%d") if story.published_at else "undated"
    video = " [video]" if story.is_video else ""
    return f"{story.heat:>5}  {story.id}  {story.title}{video} — {story.provider or '?'}, {when}"


SORTS = ("relevance", "hot", "new")
READ_COMMANDS = ("search", "topics", "story", "related")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="newsbot", description="A Discord bot for topical news.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("run", help="connect to Discord with DISCORD_TOKEN")
    playground = commands.add_parser(
        "playground",
        help="try the bot offline, in a simulated Discord shown in your browser (no token)",
        description=(
            'Run the real bot against a simulated Discord server "Newsroom" and open it in '
            "a browser: #news receives the archive's hot stories as posts, #general is for "
            "commands; you are a moderator and can switch to an ordinary member. Virtual "
            "time runs at real speed; the archive is rescanned every --poll seconds (instead "
            "of NEWS_POLL_SECONDS), so a hot story file dropped into the archive shows up in "
            "#news. Uses a temporary database, never NEWS_DB. Ctrl-C stops it."
        ),
    )
    playground.add_argument("--archive", help="archive directory (default: NEWS_ARCHIVE)")
    playground.add_argument(
        "--port", type=int, default=0, help="port on 127.0.0.1 (default 0: a free port)"
    )
    playground.add_argument(
        "--no-browser", action="store_true", help="print the URL without opening a browser"
    )
    playground.add_argument(
        "--channel",
        choices=("news", "general", "daily-digest", "compact-news", "link-news"),
        default="news",
        help="the channel the page shows (news); the preview shows one channel",
    )
    playground.add_argument(
        "--poll",
        type=int,
        default=10,
        help="seconds between archive rescans in the playground (10)",
    )
    backup = commands.add_parser(
        "backup", help="copy the database to PATH safely, even while the bot runs"
    )
    backup.add_argument("path", help="the backup file to write (replaced if it exists)")
    move = commands.add_parser(
        "migrate",
        help="copy a SQLite database (NEWS_DB) into PostgreSQL: subscriptions, posts, pins…",
    )
    move.add_argument("--to", required=True, help="the PostgreSQL URL (postgresql://…)")
    move.add_argument("--from", dest="source", help="the SQLite file (default: NEWS_DB)")
    ingest_cmd = commands.add_parser("ingest", help="load the archive into the database")
    ingest_cmd.add_argument(
        "path",
        nargs="?",
        help="archive directory (default: every source of NEWS_SOURCES, else NEWS_ARCHIVE)",
    )
    ingest_cmd.add_argument(
        "--replace",
        action="store_true",
        help="load this archive into a database built from another one (hides the other's stories)",
    )
    sources = commands.add_parser(
        "sources", help="the sources followed, with their state: last success, items, errors"
    )
    sources.add_argument("--json", action="store_true", help="print JSON")
    search = commands.add_parser("search", help="full-text search; an empty QUERY lists stories")
    search.add_argument("query", nargs="*", help="words to find, no quotes needed (default: none)")
    search.add_argument("--topic", help="only stories of this topic")
    search.add_argument(
        "--sort",
        choices=SORTS,
        help="order: relevance (the default with a query), hot (heat, the default without) or new",
    )
    search.add_argument("--limit", type=int, default=10, help="how many stories (10)")
    search.add_argument("--json", action="store_true", help="print JSON")
    topics = commands.add_parser("topics", help="the topics with their story counts")
    topics.add_argument("--json", action="store_true", help="print JSON")
    related = commands.add_parser("related", help="a story's related coverage and similar stories")
    related.add_argument("story_id", help="the story's short id")
    related.add_argument("--json", action="store_true", help="print JSON")
    story = commands.add_parser("story", help="one story in full")
    story.add_argument("story_id", help="the story's short id")
    story.add_argument("--json", action="store_true", help="print JSON")
    commands.add_parser("invite", help="print the URL that adds the bot to a server")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # `python -m bot --no-browser` (what `python3 dev.py run --no-browser` runs): options
    # without a command are the playground's, the only command the first run can start
    # that takes any.
    implied_playground = bool(argv) and argv[0].startswith("-") and argv[0] not in HELP
    if implied_playground:
        argv = ["playground", *argv]
    args = build_parser().parse_args(argv)
    try:
        config = Config.from_env()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    command = args.command
    _configure_logging(config, command)
    if implied_playground:
        print(
            "Playground options given: starting the offline playground"
            + (" (DISCORD_TOKEN is not used by it)." if config.token else "."),
            file=sys.stderr,
        )
    if command is None:  # the first run: Discord with a token, else the playground
        if config.token:
            print("DISCORD_TOKEN is set: connecting to Discord.", file=sys.stderr)
            command = "run"
        else:
            print(
                "No DISCORD_TOKEN (environment or .env): starting the offline playground. "
                "Set one to run the bot in Discord (see the README).",
                file=sys.stderr,
            )
            args = build_parser().parse_args(["playground"])
            command = "playground"
            _configure_logging(config, command)
    if command == "run":
        from bot.app import run_bot

        if config.token:  # checked before connecting: a bad database fails in one line
            from core.store import check_database

            try:
                check_database(config.database)
            except sqlite3.DatabaseError as exc:
                print(database_problem(config.database, exc), file=sys.stderr)
                return 1
        return run_bot(config)
    if command == "playground":
        from bot import playground

        return playground.run(
            config,
            archive=Path(args.archive) if args.archive else None,
            port=args.port,
            open_browser=not args.no_browser,
            channel=args.channel,
            poll=max(1, args.poll),
        )
    if command == "backup":
        if config.db_url:
            print(
                "NEWS_DB is PostgreSQL: back it up with pg_dump (see the README)", file=sys.stderr
            )
            return 1
        return backup(config.db_path, Path(args.path))
    if command == "migrate":
        return migrate_to_postgres(Path(args.source) if args.source else config.db_path, args.to)
    if command == "invite":
        from bot.app import invite_url

        print(invite_url(config))
        if not config.token:
            print(
                "(Set DISCORD_TOKEN, or replace YOUR_APPLICATION_ID with the application id"
                " from the developer portal.)",
                file=sys.stderr,
            )
        return 0
    try:
        if command in READ_COMMANDS and not config.db_url:
            return _read_now(command, args, config.db_path)
        if command == "ingest" and (args.path or not config.source_list) and not config.db_url:
            return _ingest_archive(config, args, config.database)
        import asyncio

        return asyncio.run(_archive_command(command, args, config))
    except sqlite3.DatabaseError as exc:
        print(database_problem(config.database, exc), file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, and keep Python from
        # complaining again when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def database_problem(db_path: str | Path, exc: sqlite3.DatabaseError) -> str:
    """One line naming the database (file or PostgreSQL URL), what is wrong and what to do."""
    text = str(exc)
    if is_postgres_url(db_path):
        from core.store.postgres import redacted

        advice = (
            "check that the PostgreSQL server runs and that NEWS_DB's host, port, user,"
            " password and database name are right (see the README, PostgreSQL)"
        )
        return f"database {redacted(str(db_path))}: {text}; {advice}"
    if "not a database" in text or "malformed" in text:
        advice = "it is damaged: restore it from a backup (see the README, Data and backups)"
    elif "readonly" in text or "read-only" in text:
        advice = "it is read-only: give the bot's user write access to it and its folder"
    elif "unable to open" in text:
        advice = "it cannot be opened: give the bot's user write access to it and its folder"
    elif "full" in text:
        advice = "the disk is full: free some space, then run the command again"
    else:
        advice = "check the file, or restore it from a backup"
    return f"database {db_path}: {text}; {advice}"


def _read_now(command: str, args: argparse.Namespace, db_path: Path) -> int:
    """A read command on SQLite, without an event loop (see `DirectStore`)."""
    from core.store.direct import DirectStore, run_now

    store = DirectStore.open_now(db_path)
    try:
        return run_now(_read_command(command, args, store))
    finally:
        run_now(store.close())


async def _archive_command(command: str, args: argparse.Namespace, config: Config) -> int:
    import asyncio

    from core.store import opened_store

    async with opened_store(config.database) as opened:
        store: NewsStore = opened
        if command == "ingest" and not args.path and config.source_list:
            return await _ingest_sources(config, args.replace)
        if command == "sources":
            return await _list_sources(config, args.json)
        if command == "ingest":
            return await asyncio.to_thread(_ingest_archive, config, args, store)
        return await _read_command(command, args, store)


async def _read_command(command: str, args: argparse.Namespace, store: NewsStore) -> int:
    """`search`, `topics`, `story` or `related`: on SQLite run by `run_now`, else by asyncio."""
    if command == "search":
        query = " ".join(args.query)
        topic = args.topic
        if topic is not None:
            topic = await store.topic_name(topic)
            if topic is None:
                close = await store.closest_topics(args.topic)
                hint = f" Did you mean: {', '.join(close)}?" if close else ""
                print(
                    f"unknown topic {args.topic!r}.{hint} (list them with: topics)",
                    file=sys.stderr,
                )
                return 1
        sort = args.sort or ("relevance" if query.strip() else "hot")
        page = await store.search(query, topic, sort, limit=max(1, args.limit))
        if args.json:
            _print_json([story_json(s) for s in page.stories])
        elif not page.stories:
            print("No stories found.")
        else:
            for found in page.stories:
                print(story_line(found))
            more = "+" if page.total_is_estimate else ""
            print(f"({len(page.stories)} of {page.total}{more})")
        return 0
    if command == "topics":
        topics = await store.topics(limit=10_000)
        if args.json:
            _print_json([{"name": t.name, "count": t.count} for t in topics])
        else:
            for topic in topics:
                print(f"{topic.count:>6}  {topic.name}")
        return 0
    if command == "story":
        story = await store.story(args.story_id)
        if story is None:
            return _no_story(args.story_id)
        if args.json:
            _print_json({**story_json(story), "related": [coverage_json(c) for c in story.related]})
        else:
            print(f"{story.title}\n{story.url}\n{story_line(story)}\n")
            print(story.excerpt)
            print("Topics: " + (", ".join(story.topics) or "none"))
        return 0
    if command == "related":
        related = await store.related(args.story_id)
        if related is None:
            return _no_story(args.story_id)
        if args.json:
            _print_json(
                {
                    "story": story_json(related.story),
                    "coverage": [coverage_json(c) for c in related.coverage],
                    "similar": [story_json(s) for s in related.similar],
                }
            )
        else:
            print(f"Related to: {related.story.title}\n\nCoverage elsewhere:")
            for link in related.coverage:
                print(f"  {link.title} — {link.provider or '?'}\n    {link.url}")
            if not related.coverage:
                print("  (none)")
            print("\nSimilar stories in the archive:")
            for story in related.similar:
                print("  " + story_line(story))
            if not related.similar:
                print("  (none)")
        return 0
    raise AssertionError(command)


def _configure_logging(config: Config, command: str | None) -> None:
    """The log goes to stderr; the playground shows only warnings, unless LOG_LEVEL is set.

    A person trying the playground reads the terminal: the bot's, discord.py's and
    simcord's INFO lines would bury the URL. LOG_LEVEL in the environment still wins.
    """
    config.configure_logging()
    if command == "playground" and not os.environ.get("LOG_LEVEL", "").strip():
        logging.getLogger().setLevel(logging.WARNING)


def _ingest_archive(config: Config, args: argparse.Namespace, store: NewsStore | str | Path) -> int:
    """`ingest [PATH]` into `store`. Into SQLite, `store` is the file: ingest writes through
    a connection of its own, and the async store (asyncio, aiosqlite: 11 MB) is not even
    imported."""
    from core.archive import ArchiveUnreadable
    from core.ingest import ArchiveChanged, ParseWorkerDied, ingest_archive

    archive = Path(args.path) if args.path else config.archive
    if not archive.is_dir():
        print(f"archive not found: {archive} (set NEWS_ARCHIVE)", file=sys.stderr)
        return 1
    try:
        report = ingest_archive(
            store, archive, datetime.now(UTC), _progress_bar(), replace=args.replace
        )
    except ArchiveUnreadable as exc:
        print(f"{exc} (nothing was changed)", file=sys.stderr)
        return 1
    except ArchiveChanged as exc:
        print(f"not ingesting: {exc}", file=sys.stderr)
        return 1
    except ParseWorkerDied as exc:
        print(str(exc), file=sys.stderr)
        return 1
    _print_report(report)
    return 0


async def _ingest_sources(config: Config, replace: bool) -> int:
    """Fetch and ingest every source now; one failing source does not stop the others."""
    import asyncio

    from core.sources import follow

    outcomes = await asyncio.to_thread(
        follow,
        config.database,
        config.source_list,
        config.data_dir,
        config.poll_seconds,
        datetime.now(UTC),
        True,
        replace,
    )
    for outcome in outcomes:
        name = outcome.source.name
        if outcome.error is not None:
            print(f"{name}: failed: {outcome.error}", file=sys.stderr)
        elif outcome.report is None:
            print(f"{name}: not modified since the last fetch")
        else:
            print(f"{name}: {outcome.report.summary()}")
            for rejection in outcome.report.rejected[:20]:
                print(f"  rejected {rejection.path}: {rejection.reason}", file=sys.stderr)
    return 1 if any(o.error for o in outcomes) else 0


async def _list_sources(config: Config, as_json: bool) -> int:
    import asyncio

    from core.sources import source_states

    states = await asyncio.to_thread(source_states, config.database, config.sources)

    def when(epoch: int | None) -> str | None:
        return datetime.fromtimestamp(epoch, UTC).isoformat() if epoch is not None else None

    rows = []
    for source in config.sources:
        state = states[source.name]
        rows.append(
            {
                "name": source.name,
                "kind": source.kind,
                "location": source.location,
                "last_success": when(state.last_success_at),
                "items": state.items,
                "last_error": state.last_error,
                "failures": state.failures,
                "next_fetch": when(state.next_fetch_at),
            }
        )
    if as_json:
        _print_json(rows)
        return 0
    for row in rows:
        print(f"{row['name']} ({row['kind']}) {row['location']}")
        print(
            f"  last success: {row['last_success'] or 'never'} · items: {row['items']}"
            f" · next fetch: {row['next_fetch'] or 'at the next poll'}"
        )
        if row["last_error"]:
            print(f"  last error ({row['failures']} in a row): {row['last_error']}")
    return 0


def migrate_to_postgres(source: Path, url: str) -> int:
    """`migrate --to URL`: the SQLite deployment copied into PostgreSQL (see
    core/store/postgres/move.py)."""
    import asyncio

    if not is_postgres_url(url):
        print(f"--to must be a postgresql:// URL, not {url!r}", file=sys.stderr)
        return 2
    if is_postgres_url(str(source)) or not source.is_file():
        print(f"no SQLite database at {source} (set NEWS_DB or --from)", file=sys.stderr)
        return 1

    from core.store.postgres.move import MoveRefused, move_to_postgres

    try:
        report = asyncio.run(move_to_postgres(source, url))
    except MoveRefused as exc:
        print(f"not migrating: {exc}", file=sys.stderr)
        return 1
    except sqlite3.DatabaseError as exc:
        print(database_problem(url if "connect" in str(exc) else source, exc), file=sys.stderr)
        return 1
    print(f"{source} → {_redacted(url)}: {report.summary()}")
    print(f"Now set NEWS_DB={_redacted(url)} (with its password) and start the bot.")
    return 0


def _redacted(url: str) -> str:
    from core.store.postgres import redacted

    return redacted(url)


def backup(db_path: Path, target: Path) -> int:
    """`backup PATH`: SQLite's online backup, a consistent copy while the bot keeps writing."""
    import asyncio

    if not db_path.is_file():
        print(f"no database at {db_path} (set NEWS_DB)", file=sys.stderr)
        return 1
    if target.resolve() == db_path.resolve():
        print("the backup must be another file than the database", file=sys.stderr)
        return 1

    target.parent.mkdir(parents=True, exist_ok=True)
    asyncio.run(_copy_database(db_path, target))
    print(f"backed up {db_path} to {target}")
    return 0


async def _copy_database(db_path: Path, target: Path) -> None:
    import aiosqlite

    async with aiosqlite.connect(db_path) as source, aiosqlite.connect(target) as copy:
        await source.backup(copy)


def _no_story(story_id: str) -> int:
    print(f"No story with id {story_id!r}.", file=sys.stderr)
    return 1


def _print_json(value) -> None:
    import json

    print(json.dumps(value, ensure_ascii=False, indent=2))


def _print_report(report: IngestReport) -> None:
    print(report.summary())
    for folder in report.unreadable:
        print(f"  cannot read folder {folder}: its stories are kept as they were")
    for rejection in report.rejected:
        print(f"  rejected {rejection.path}: {rejection.reason}")


def _progress_bar():
    """A one-line progress bar on a terminal; nothing when output is redirected."""
    if not sys.stderr.isatty():
        return None

    def show(done: int, total: int) -> None:
        if total:
            filled = 30 * done // total
            bar = "#" * filled + "-" * (30 - filled)
            end = "\n" if done == total else ""
            print(f"\r  parsing [{bar}] {done}/{total}", end=end, file=sys.stderr, flush=True)
        elif done:  # a rescan still walking: how many files it has read so far
            print(f"\r  parsing {done} changed files…", end="", file=sys.stderr, flush=True)

    return show
