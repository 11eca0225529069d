"""Wiring: `create_bot()` builds the bot that production, the tests and the playground run."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import logging
import sys
from typing import Any

import discord
from discord.ext import commands

from bot import errors, views
from bot.permissions import REQUIRED_PERMISSIONS
from bot.pinning import Pinner
from core.archive import ArchiveUnreadable
from core.config import Config, ConfigError
from core.ingest import ArchiveChanged, IngestReport, IngestTimeout, ParseWorkerDied, ingest
from core.sharding import ProcessLeases
from core.sources import follow
from core.store import NewsStore, Store, check_database, open_store

log = logging.getLogger(__name__)

EXTENSIONS = ("cogs.news", "cogs.subscriptions", "cogs.pins", "cogs.help")

TOKEN_HELP = """\
No DISCORD_TOKEN is set, so the bot cannot connect to Discord.

To get one:
  1. Open https://discord.com/developers/applications and create an application.
  2. In its "Bot" page, press "Reset Token" and copy the token.
  3. Put it in a .env file next to pyproject.toml:  DISCORD_TOKEN=your-token
     (or export DISCORD_TOKEN in the environment), then run this again.
  4. Invite the bot to your server with the URL from:  python -m bot invite
"""


class NewsBot(commands.AutoShardedBot):
    """The news bot. Its state lives in the store; the archive is loaded in the background.

    Always sharded: the shards of NEWS_SHARD_COUNT / NEWS_SHARD_IDS, else as many as
    Discord recommends, all in this process. Several processes share one database; each
    delivers to the guilds on its shards (see core/sharding.py).
    """

    def __init__(self, config: Config) -> None:
        intents = discord.Intents.none()
        intents.guilds = True  # channels, roles and pin updates
        intents.guild_messages = True  # message deletions (no message content: not privileged)
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents,
            help_command=None,
            allowed_mentions=discord.AllowedMentions.none(),
            tree_cls=errors.NewsTree,
            **_shard_options(config),
        )
        self.config = config
        # The guilds this process delivers to (discord.py's `shards` are its connections).
        self.served_shards = config.shards
        self.process: ProcessLeases = None  # type: ignore[assignment]  # needs the store
        self.store: NewsStore = None  # type: ignore[assignment]  # opened in setup_hook
        self.archive_loaded = asyncio.Event()
        self.last_ingest: IngestReport | None = None
        self._loader: asyncio.Task | None = None
        self._archive_refused = False  # logged once, not at every poll
        self._stopping: asyncio.Future | None = None  # an abandoned ingest still finishing
        self.pinner = Pinner(self)  # pins story messages; keeps the pin record true

    @property
    def user_id(self) -> int:
        """The bot's own user id: known once logged in, before any event or command."""
        assert self.user is not None, "not logged in yet"
        return self.user.id

    async def setup_hook(self) -> None:
        # A damaged or read-only database stops the start here, before anything else.
        await asyncio.to_thread(check_database, self.config.database)
        self.store = await open_store(self.config.database)
        self.process = ProcessLeases(self.store, self.config.poll_seconds)
        now = discord.utils.utcnow()
        if isinstance(self.store, Store) and (hosts := await self.process.other_machines(now)):
            # A SQLite file is one machine's: over a network file system its locks do not
            # hold, and two machines' processes could both send (or damage the file).
            raise ConfigError(
                f"NEWS_DB is a SQLite file that bot processes on {', '.join(sorted(hosts))}"
                " also use; SQLite serves one machine only. Run the processes of several"
                " machines on one PostgreSQL database (see the README, Scaling out)."
            )
        rescanner = await self.process.start(now)
        shards = self.served_shards.describe()
        log.info("process %s delivers to guilds on %s", self.process.id, shards)
        self.tree.error(errors.on_app_command_error)
        self.add_dynamic_items(views.RelatedButton, views.PinButton, views.OpenSimilarSelect)
        for extension in EXTENSIONS:
            try:
                await self.load_extension(extension)
            except Exception:
                log.exception("extension %s failed to load; carrying on without it", extension)
        await self.sync_commands()
        # The bot answers while a large archive loads; replies say when it is still loading.
        # Only the rescanner loads it: the others read what it stores.
        if rescanner:
            self._loader = asyncio.create_task(self.load_archive(), name="archive-loader")
        else:
            self.archive_loaded.set()

    async def load_archive(self) -> IngestReport | None:
        """Ingest the archive (incremental); never raises, logs what went wrong."""
        if self.config.source_list:
            await self.follow_sources()
            return None
        try:
            if not self.config.archive.is_dir():
                log.error("archive folder %s not found (NEWS_ARCHIVE)", self.config.archive)
                return None
            if self._stopping is not None and not self._stopping.done():
                log.warning("the abandoned ingest is still stopping; rescanning at the next poll")
                return None
            report = await ingest(
                self.store,
                self.config.archive,
                discord.utils.utcnow(),
                time_limit=self.config.ingest_timeout_seconds,
            )
            previous = self.last_ingest
            self.last_ingest = report
            # The poller rescans every few minutes: only a load that changed something is
            # news in the log, and a rejection is reported once, not on every rescan.
            if previous is None or report.changed:
                log.info("archive %s: %s", self.config.archive, report.summary())
            known = {(r.path, r.reason) for r in previous.rejected} if previous else set()
            for rejection in report.rejected:
                if (rejection.path, rejection.reason) not in known:
                    log.warning("rejected %s: %s", rejection.path, rejection.reason)
            return report
        except IngestTimeout as exc:
            self._stopping = exc.stopping
            log.error("%s", exc)
            return None
        except ArchiveUnreadable as exc:
            log.error("%s; the stories stay as they were", exc)
            return None
        except ParseWorkerDied as exc:  # the next poll carries on
            log.error("%s", exc)
            return None
        except ArchiveChanged as exc:
            # NEWS_ARCHIVE changed: loading it would hide every story (and its pins and
            # deliveries' context) of the database. The operator decides.
            if not self._archive_refused:
                log.error("not loading NEWS_ARCHIVE: %s", exc)
                self._archive_refused = True
            return None
        except Exception:
            log.exception("loading the archive %s failed", self.config.archive)
            return None
        finally:
            self.archive_loaded.set()

    async def follow_sources(self) -> None:
        """Fetch the sources of NEWS_SOURCES that are due; never raises, logs each failure."""
        try:
            outcomes = await asyncio.to_thread(
                follow,
                self.store,
                self.config.source_list,
                self.config.data_dir,
                self.config.poll_seconds,
                discord.utils.utcnow(),
                time_limit=self.config.ingest_timeout_seconds,
            )
            for outcome in outcomes:
                if outcome.report is not None:
                    self.last_ingest = outcome.report
                    log.info("source %s: %s", outcome.source.name, outcome.report.summary())
        except Exception:
            log.exception("following the sources failed")
        finally:
            self.archive_loaded.set()

    async def sync_commands(self) -> bool:
        """Sync the command tree only when it changed since the last sync; True if synced."""
        guild = discord.Object(self.config.dev_guild) if self.config.dev_guild else None
        if guild is not None:
            self.tree.copy_global_to(guild=guild)
        payload = [command.to_dict(self.tree) for command in self.tree.get_commands(guild=guild)]
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
        key = f"command_sync:{guild.id if guild else 'global'}"
        if await self.store.get_state(key) == digest:
            log.info("commands unchanged since the last sync; not syncing")
            return False
        await self.tree.sync(guild=guild)
        await self.store.set_state(key, digest)
        log.info("synced %d commands %s", len(payload), f"to guild {guild.id}" if guild else "")
        return True

    async def close(self) -> None:
        if self._loader is not None and not self._loader.done():
            self._loader.cancel()
        await super().close()
        if self.store is not None:
            if self.process is not None:
                try:
                    await self.process.release()
                except Exception:  # a stop carries on: the leases expire by themselves
                    log.exception("could not release this process's leases")
            await self.store.close()


def _shard_options(config: Config) -> dict[str, Any]:
    """AutoShardedBot's shard_count and shard_ids when set (unset: Discord recommends)."""
    options: dict[str, Any] = {}
    if config.shard_count is not None:
        options["shard_count"] = config.shard_count
    if config.shard_ids is not None:
        options["shard_ids"] = list(config.shard_ids)
    return options


def create_bot(config: Config | None = None) -> NewsBot:
    """The bot, ready to start (production) or to attach to a simulated Discord (tests)."""
    return NewsBot(config or Config.from_env())


def run_bot(config: Config) -> int:
    """`python -m bot run`: connect to Discord with the token, until stopped."""
    if not config.token:
        print(TOKEN_HELP, file=sys.stderr)
        return 2
    bot = create_bot(config)
    try:
        bot.run(config.token, log_handler=None)  # logging is configured by Config
    except discord.LoginFailure:
        print("Discord refused the token: check DISCORD_TOKEN.", file=sys.stderr)
        return 1
    except ConfigError as exc:  # found at start-up (e.g. SQLite shared by two machines)
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    return 0


def application_id_from_token(token: str | None) -> int | None:
    """A bot token starts with the base64 of the bot's user id, which is the application id."""
    if not token:
        return None
    head = token.split(".", 1)[0]
    try:
        return int(base64.b64decode(head + "=" * (-len(head) % 4)).decode())
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


def invite_url(config: Config) -> str:
    """The OAuth2 URL that adds the bot to a server with exactly the permissions it needs."""
    app_id = application_id_from_token(config.token)
    return discord.utils.oauth_url(
        app_id or 0,
        permissions=REQUIRED_PERMISSIONS,
        scopes=("bot", "applications.commands"),
    ).replace("client_id=0", "client_id=YOUR_APPLICATION_ID")
