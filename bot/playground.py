"""The offline playground: the real bot in a simulated Discord, shown in a browser.

`python -m bot playground` (and `python -m bot` when no token is set) builds the bot
with `create_bot()` — the same cogs, the same SQLite store code — and attaches it to
simcord, an in-memory Discord that runs discord.py's real machinery. It sets up a
server "Newsroom":

- `#news`, subscribed to the archive's topics by the moderator running the real
  `/subscribe` command (from `#general`, with a backfill), so the hottest stories
  arrive as the bot's pushed posts;
- `#general`, where those `/subscribe` confirmations are and where commands can be typed;
- `#forum-news`, a forum channel subscribed to the first topics: each hot story is a
  forum post titled with the story, tagged with the forum's tags that match its topics
  (staff made one tag per topic, as the bot never makes tags);
- `#daily-digest`, subscribed with `digest:daily` to the biggest topic: one message with
  its hottest stories (a first digest, by `backfill`) instead of a post per story;
- `#compact-news` and `#link-news`, subscribed to the first topics with `style:compact`
  (one line per story, the stories going out together in one message) and `style:link`
  (the bare link, for Discord's own preview);
- two people: "you", a moderator (Manage Channels, Manage Messages, Pin Messages), and
  "reader", an ordinary member; the page switches between them.

simcord's preview serves one channel per session, so the page shows `#news` (its
composer runs commands there too); `--channel general` (or `daily-digest`,
`compact-news`, `link-news`) opens that channel instead. It has
no forum view (a forum's posts are threads, each a channel of its own), so
`#forum-news` is there for the bot, `/why` and the tests, not for the page.

Virtual time runs at real speed (button timeouts feel as in Discord) and the poller
rescans the archive every `--poll` seconds instead of NEWS_POLL_SECONDS, so a story
file dropped into the archive shows up in `#news` within seconds if it is hot. The
database is a temporary file: the production NEWS_DB is never touched.

This module is a terminal program (like `bot/cli.py`): it prints what the person
running it needs to read; everything else goes to the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import os
import signal
import sqlite3
import sys
import tempfile
import webbrowser
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, cast

import discord

from bot.app import NewsBot, create_bot
from core.config import Config
from core.ingest import ingest
from core.store import Store, check_database

if TYPE_CHECKING:
    import simcord  # the playground's extra, imported when it runs

log = logging.getLogger(__name__)

GUILD_NAME = "Newsroom"
BOT_NAME = "newsbot"
QUICK_LOAD_SECONDS = 10.0  # an archive loaded within this is complete when the URL is shown
PROGRESS_SECONDS = 2.0  # how often the loading message in #news is updated
LOADING = "Loading the archive…"
CHANNELS = ("news", "general", "daily-digest", "compact-news", "link-news")
DEFAULT_POLL_SECONDS = 10
TICK_SECONDS = 1.0  # virtual seconds advanced per real second: real speed
BACKFILL = 10  # per topic, posted when #news subscribes (the most /subscribe allows)
FORUM_TOPICS = 3  # topics #forum-news follows
FORUM_BACKFILL = 3  # per topic, posted when #forum-news subscribes
FORUM_TAGS = 20  # the forum's tags: one per topic, up to Discord's 20
STYLE_BACKFILL = 3  # per topic, posted when #compact-news and #link-news subscribe
DIGEST_HOUR = 8  # UTC: when #daily-digest's next digests go out
DIGEST_SIZE = 5
MAX_TOPICS = 50  # the biggest topics get a subscription; a huge archive stays quick to start
SETTLE_SECONDS = 60.0  # a large archive's rescan may take a while

MODERATOR_PERMISSIONS = discord.Permissions(
    manage_channels=True,  # /subscribe, /unsubscribe, /subscriptions
    manage_messages=True,  # /pin, /unpin, the Pin button
    pin_messages=True,
)

NEWS_WELCOME = (
    "**Welcome to the newsbot playground.** This is a simulated Discord server running "
    "the real bot: no token, nothing leaves this computer.\n"
    "#news follows the archive's topics, so hot stories arrive here as the bot's posts. "
    "Type `/` below to try `/news`, `/story`, `/related`, `/topics`, and as a moderator "
    "`/subscribe` or `/pin`. Switch between **you** (a moderator) and **reader** "
    "(an ordinary member) to see who may do what."
)
GENERAL_WELCOME = (
    "**#general** is for commands: try `/news topic:` and pick a topic, "
    "`/news query:` with a few words, or `/topics`. The `/subscribe` replies below "
    "are how #news was set up."
)


class PlaygroundUnavailable(RuntimeError):
    """The optional `playground` packages (simcord's preview) are not installed."""


@dataclasses.dataclass
class Newsroom:
    """The simulated server and the people in it."""

    env: simcord.Env
    guild: simcord.GuildHandle
    news: simcord.ChannelHandle
    general: simcord.ChannelHandle
    moderator: simcord.MemberActor
    member: simcord.MemberActor
    forum: simcord.ChannelHandle
    digest: simcord.ChannelHandle
    compact: simcord.ChannelHandle
    link: simcord.ChannelHandle

    @property
    def bot(self) -> NewsBot:
        return cast(NewsBot, self.env.bot)  # simcord runs any client; ours is a NewsBot

    def channel(self, name: str):
        return {
            "news": self.news,
            "general": self.general,
            "daily-digest": self.digest,
            "compact-news": self.compact,
            "link-news": self.link,
        }[name]


def playground_config(config: Config, archive: Path | None, db_path: Path, poll: int) -> Config:
    """The bot's configuration in the playground.

    A database of its own; no token (nothing connects to Discord); no development
    guild (the simulated server has its own id); no age limit, because an archive's
    stories are usually older than the simulated clock's 2026-01-01.
    """
    return dataclasses.replace(
        config,
        token=None,
        archive=archive if archive is not None else config.archive,
        db_path=db_path,
        poll_seconds=poll,
        max_age_hours=0,
        dev_guild=None,
    )


def build_newsroom(env) -> Newsroom:
    guild = env.create_guild(name=GUILD_NAME)
    news = guild.create_text_channel("news", topic="Hot stories, pushed by the bot")
    general = guild.create_text_channel("general", topic="Type slash commands here")
    digest = guild.create_text_channel("daily-digest", topic="One message a day: the hottest")
    moderators = guild.create_role("Moderators", permissions=MODERATOR_PERMISSIONS)
    moderator = guild.add_member(env.create_user("you"), roles=[moderators])
    member = guild.add_member(env.create_user("reader"))
    forum = guild.create_forum_channel("forum-news")
    compact = guild.create_text_channel("compact-news", topic="One line per story")
    link = guild.create_text_channel("link-news", topic="Bare links, Discord's preview")
    return Newsroom(env, guild, news, general, moderator, member, forum, digest, compact, link)


def tag_forum(room: Newsroom, names: list[str]) -> None:
    """Give the forum one tag per name, as staff would in the forum's settings (simcord
    has no staff-side channel editing; the bot itself never makes tags)."""
    backend = room.env.backend
    backend.channels[room.forum.id].available_tags = [
        {
            "id": str(backend.snowflake()),
            "name": name[:20],  # Discord's limit for a tag's name
            "moderated": False,
            "emoji_id": None,
            "emoji_name": None,
        }
        for name in names[:FORUM_TAGS]
    ]
    backend.announce_channel_update(room.forum.id)


async def subscribe_news(room: Newsroom) -> tuple[int, int]:
    """The moderator subscribes #news to the topics with /subscribe, as a person would.

    Returns (subscribed topics, topics of the archive).
    """
    import simcord

    topics = await room.bot.store.topics(limit=100_000)
    subscribed = 0
    for topic in topics[:MAX_TOPICS]:
        try:
            await room.moderator.slash(
                room.general, "subscribe", topic=topic.name, channel=room.news, backfill=BACKFILL
            )
            subscribed += 1
        except (simcord.SetupError, simcord.BackendError) as exc:  # e.g. a name over 100 chars
            log.warning("could not subscribe #news to %r: %s", topic.name, exc)
    # The forum follows the first few topics, each story a post tagged with its topics.
    forum_topics = [t.name for t in topics[:FORUM_TOPICS]]
    tag_forum(room, [t.name for t in topics])
    for name in forum_topics:
        try:
            await room.moderator.slash(
                room.general, "subscribe", topic=name, channel=room.forum, backfill=FORUM_BACKFILL
            )
        except (simcord.SetupError, simcord.BackendError) as exc:
            log.warning("could not subscribe #forum-news to %r: %s", name, exc)
    # The same topics in the other looks: compact lines, and bare links.
    for channel, style in ((room.compact, "compact"), (room.link, "link")):
        for name in forum_topics:
            try:
                await room.moderator.slash(
                    room.general,
                    "subscribe",
                    topic=name,
                    channel=channel,
                    style=style,
                    backfill=STYLE_BACKFILL,
                )
            except (simcord.SetupError, simcord.BackendError) as exc:
                log.warning("could not subscribe #%s to %r: %s", channel.name, name, exc)
    if topics:
        # The biggest topic as a daily digest; its backfill sends a first digest now.
        try:
            await room.moderator.slash(
                room.general,
                "subscribe",
                topic=topics[0].name,
                channel=room.digest,
                digest="daily",
                digest_hour=DIGEST_HOUR,
                digest_size=DIGEST_SIZE,
                backfill=DIGEST_SIZE,
            )
        except (simcord.SetupError, simcord.BackendError) as exc:
            log.warning("could not subscribe #daily-digest to %r: %s", topics[0].name, exc)
    return subscribed, len(topics)


class Clock:
    """Moves virtual time on at real speed, so the poller and button timeouts run.

    simcord runs one operation at a time, so the clock and the page's actions take
    turns through one lock; the page is republished when the bot did something.
    """

    def __init__(self, env, preview, room, images, step: float = TICK_SECONDS) -> None:
        self.env, self.preview, self.step = env, preview, step
        self.room, self.images = room, images
        self.lock = asyncio.Lock()
        self._seen = -1
        self._serialize_page_actions()

    def _serialize_page_actions(self) -> None:
        # The preview's HTTP handler runs each page action through `_action`; an action
        # arriving mid-tick would otherwise fail as an overlapping simcord operation.
        original = getattr(self.preview, "_action", None)
        if original is None:  # a simcord without it: actions may rarely be refused
            log.warning("this simcord version cannot serialise page actions with the clock")
            return

        async def serialized(*args, **kwargs):
            async with self.lock:
                return await original(*args, **kwargs)

        self.preview._action = serialized

    async def refresh(self) -> None:
        """Republish the page (with images for new posts)."""
        async with self.lock:
            await self._refresh()

    async def _refresh(self) -> None:
        room = self.room
        self.images.supply(self.preview, (room.news, room.general, room.digest, room.compact))
        await self.preview.refresh()
        self._seen = len(self.env.http_requests)

    async def run(self) -> None:
        import simcord

        while True:
            await asyncio.sleep(self.step)
            async with self.lock:
                try:
                    await self.env.advance_time(self.step)
                    if len(self.env.http_requests) != self._seen:
                        await self._refresh()
                except TimeoutError:
                    log.warning("the bot is busy (a large archive rescan?); the clock waits")
                except simcord.SetupError as exc:
                    log.debug("clock tick skipped: %s", exc)
                except Exception:  # the clock must keep going whatever one tick does
                    log.exception("the playground's clock tick failed")


async def serve(
    config: Config,
    *,
    archive: Path | None = None,
    port: int = 0,
    open_browser: bool = True,
    channel: str = "news",
    poll: int = DEFAULT_POLL_SECONDS,
    say: Callable[[str], None] | None = None,
) -> int:
    """Run the playground until Ctrl-C, SIGTERM or "End preview session" in the page."""
    say = say or functools.partial(print, flush=True)
    try:
        import aiohttp  # noqa: F401 - the preview's web server, part of simcord[preview]

        # simcord probes discord.py with a client of its own on import; its warnings
        # (no guilds intent, no voice libraries) are about that probe, not this bot.
        with _quiet("discord.state", "discord.client"):
            import simcord
    except ImportError as exc:
        raise PlaygroundUnavailable(str(exc)) from exc

    with tempfile.TemporaryDirectory(prefix="newsbot-playground-") as tmp:
        settings = playground_config(config, archive, Path(tmp) / "playground.db", poll)
        if not settings.archive.is_dir():
            say(f"archive not found: {settings.archive} (use --archive PATH or set NEWS_ARCHIVE)")
            return 1
        try:  # the temporary database: a read-only or full temporary folder shows here
            check_database(settings.db_path)
        except sqlite3.DatabaseError as exc:
            from bot.cli import database_problem

            say(database_problem(settings.db_path, exc))
            return 1
        # While the archive loads, a stand-in runs: the same bot on an empty archive and a
        # database of its own. simcord waits for everything the attached bot does, so a
        # bot busy loading 100,000 files for a minute would stall the simulated server.
        waiting = Path(tmp) / "waiting"
        waiting.mkdir()
        stand_in = create_bot(
            dataclasses.replace(settings, archive=waiting, db_path=Path(tmp) / "waiting.db")
        )
        bot = create_bot(settings)
        try:
            return await _serve(stand_in, bot, settings, port, open_browser, channel, say, simcord)
        finally:
            await _close(stand_in)
            await _close(bot)


async def _serve(stand_in, bot, settings: Config, port, open_browser, channel, say, simcord):
    say(f"Starting a simulated Discord server with the archive {settings.archive} ...")
    # One shard: the playground is one small server (the bot is an AutoShardedBot).
    async with simcord.run(
        stand_in, check_errors=False, settle_timeout=SETTLE_SECONDS, shard_count=1
    ) as env:
        await stand_in.user.edit(username=BOT_NAME)
        room = build_newsroom(env)
        await room.guild.create_webhook(room.news, "Playground").send(NEWS_WELCOME)
        await room.guild.create_webhook(room.general, "Playground").send(GENERAL_WELCOME)
        status = await stand_in.get_channel(room.news.id).send(LOADING)
        loader = ArchiveLoader(settings)
        loading = asyncio.create_task(loader.run(), name="playground-archive-load")
        # A small archive loads in a moment: then the page is complete when it opens.
        await asyncio.wait({loading}, timeout=QUICK_LOAD_SECONDS)
        shown = room.channel(channel)
        images = Images()
        async with (
            env.preview(
                shown, viewers=[room.moderator, room.member], layout="channel", port=port
            ) as preview,
            _stop_signals() as stop,
        ):
            clock = Clock(env, preview, room, images)
            progress = asyncio.create_task(
                _report_loading(loader, loading, clock, room, bot, status.id, settings),
                name="playground-loading",
            )
            if loading.done():
                await progress
            await clock.refresh()
            other = "general" if channel == "news" else "news"
            say(
                f'Server "{GUILD_NAME}": the page shows #{channel} (--channel {other} shows '
                f"#{other}); you are a moderator, reader a member. The archive is rescanned "
                f"every {settings.poll_seconds} s: a hot story file dropped into "
                f"{settings.archive} appears in #news. Ctrl-C stops."
            )
            if open_browser and not _graphical_session():
                say("(No browser can be opened here: open the URL below yourself.)")
                open_browser = False
            say(f"Open {preview.url}")
            if open_browser:
                await _open_browser(preview.url, say)
            ticking = asyncio.create_task(clock.run(), name="playground-clock")
            closed = asyncio.create_task(preview.wait_closed())
            stopped = asyncio.create_task(stop.wait())
            tasks = (ticking, closed, stopped, progress, loading)
            try:
                await asyncio.wait({closed, stopped}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
    say("Playground stopped.")
    return 0


class ArchiveLoader:
    """The first load of the archive, run by the playground itself, with its progress."""

    def __init__(self, settings: Config) -> None:
        self.settings = settings
        self.done, self.total = 0, 0

    def progress(self, done: int, total: int) -> None:  # called from the ingest thread
        self.done, self.total = done, total

    async def run(self):
        async with await Store.open(self.settings.db_path) as store:
            return await ingest(store, self.settings.archive, discord.utils.utcnow(), self.progress)


async def _report_loading(loader, loading, clock, room, bot, status_id, settings) -> None:
    """Show the load's progress in #news; once loaded, hand over to the real bot."""
    env = room.env
    while not loading.done():
        if loader.total:
            async with clock.lock:
                await (
                    env.bot.get_channel(room.news.id)
                    .get_partial_message(status_id)
                    .edit(content=f"{LOADING} {loader.done:,} of {loader.total:,} new files read.")
                )
            await clock.refresh()
        await asyncio.wait({loading}, timeout=PROGRESS_SECONDS)
    try:
        report = loading.result()
    except Exception:
        log.exception("loading the archive %s failed", settings.archive)
        report = None
    async with clock.lock:
        # The database is loaded: the bot's own start-up load finds nothing new.
        await env.restart_bot(bot)
        await bot.archive_loaded.wait()
        subscribed, topics = await subscribe_news(room)
        # Past the next poll: the backfill beyond one poll's posts_per_poll is out too.
        await env.advance_time(settings.poll_seconds)
        if report is None:
            text = f"Could not load the archive {settings.archive}: see the terminal."
        else:
            text = (
                f"Loaded the archive: {report.scanned:,} files in {report.seconds:.1f} s. "
                f"#news follows {subscribed} of {topics} topics; its hottest stories follow. "
                f"#forum-news, a forum, gets a tagged post per story of the first "
                f"{min(topics, FORUM_TOPICS)}, #compact-news a line and #link-news a link "
                "(this preview shows one channel, not forums)."
            )
        await bot.get_channel(room.news.id).get_partial_message(status_id).edit(content=text)
    await clock.refresh()


class Images:
    """Offline stand-ins for the images of story embeds: the playground never goes online.

    Each image URL gets one of a few bundled pictures (always the same one for a
    URL); author and footer icons get the provider icon.
    """

    def __init__(self) -> None:
        folder = Path(__file__).with_name("playground_images")
        self.pictures = [p.read_bytes() for p in sorted(folder.glob("story-*.png"))]
        self.icon = (folder / "provider.png").read_bytes()

    def supply(self, preview, channels) -> None:
        assets = getattr(preview, "_explicit_assets", None)
        if assets is None:  # a simcord without it: the page says "image unavailable"
            return
        for channel in channels:
            for message in channel.history():
                for embed in message.embeds:
                    for url in (embed.image.url, embed.thumbnail.url):
                        if url and url not in assets:
                            digest = zlib.crc32(url.encode())
                            assets[url] = ("story.png", self.pictures[digest % len(self.pictures)])
                    for url in (embed.author.icon_url, embed.footer.icon_url):
                        if url and url not in assets:
                            assets[url] = ("provider.png", self.icon)


@contextlib.contextmanager
def _quiet(*loggers: str):
    """Only errors from `loggers` while the block runs."""
    saved = {name: logging.getLogger(name).level for name in loggers}
    for name in loggers:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        yield
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


@contextlib.asynccontextmanager
async def _stop_signals():
    """An event set by Ctrl-C or SIGTERM, so the playground can shut down in order."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    handled = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(signum, stop.set)
            handled.append(signum)
        except (NotImplementedError, RuntimeError, ValueError):  # Windows: KeyboardInterrupt
            pass
    try:
        yield stop
    finally:
        for signum in handled:
            loop.remove_signal_handler(signum)


def _graphical_session() -> bool:
    """Whether a browser window can open here.

    Without a display, `webbrowser` would fall back to a console browser (lynx,
    w3m…) that takes over the terminal; better to print the URL.
    """
    if os.environ.get("BROWSER") or sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


async def _open_browser(url: str, say) -> None:
    opened = False
    if _graphical_session():
        try:
            opened = await asyncio.to_thread(webbrowser.open, url)
        except webbrowser.Error:
            opened = False
    if not opened:
        say("(No browser could be opened here: open the URL above yourself.)")


async def _close(bot: NewsBot) -> None:
    """simcord detaches the bot without closing it: close what it opened."""
    loader = getattr(bot, "_loader", None)
    if loader is not None and not loader.done():
        loader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await loader
    if bot.store is not None:
        await bot.store.close()


def run(config: Config, **options) -> int:
    """`python -m bot playground`: the blocking entry point."""
    try:
        return asyncio.run(serve(config, **options))
    except KeyboardInterrupt:  # Ctrl-C while starting, or where signal handlers are unavailable
        print("Playground stopped.", flush=True)
        return 0
    except PlaygroundUnavailable as exc:
        print(
            "The playground needs its optional packages (simcord's preview): "
            "pip install -e '.[playground]' (python3 dev.py run installs them).\n"
            f"({exc})",
            file=sys.stderr,
        )
        return 2
