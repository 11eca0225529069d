from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.ingest import ingest
from core.store import Store

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
CORPUS = ROOT.parent / "shared" / "corpus" / "power-apps"
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def story_file(
    title: str = "A story",
    url: str = "https://example.com/a-story",
    heat: int | str = 50,
    topics: tuple[str, ...] = ("AI",),
    extra: str = "",
    published: str = "2025-12-31T12:00:00Z",
) -> str:
    """The text of one archive file, for tests that build their own archive."""
    topic_lines = "".join(f"  - {t}\n" for t in topics)
    return (
        f'---\ncategory: news\ntitle: "{title}"\nexcerpt: "About {title}."\n'
        f"publishedDateTime: {published}\n"
        f'originalUrl: "{url}"\nwebUrl: "{url}"\ntype: article\nheat: {heat}\n'
        f"published: true\nprovider:\n  name: Example\n  domain: example.com\n"
        f"topics:\n{topic_lines}{extra}---\n"
    )


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    """An empty archive folder the test fills."""
    path = tmp_path / "archive"
    path.mkdir()
    return path


@pytest.fixture
def corpus_copy(tmp_path: Path) -> Path:
    path = tmp_path / "corpus"
    shutil.copytree(CORPUS, path)
    return path


@pytest.fixture
async def store(tmp_path: Path):
    async with await Store.open(tmp_path / "news.db") as opened:
        yield opened


@pytest.fixture
async def corpus_store(store: Store) -> Store:
    await ingest(store, CORPUS, NOW)
    return store


# -- the bot in a simulated Discord (simcord) --------------------------------------


# simcord waits up to 5 s of real time for the bot to settle after each step; a loaded
# 2-core machine can exceed that on a busy step, which would fail a correct test.
SETTLE_TIMEOUT_SECONDS = 30.0


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Give every simcord test the longer settle timeout, keeping its own simcord options."""
    for item in items:
        if "simcord_env" not in getattr(item, "fixturenames", ()):
            continue
        marker = item.get_closest_marker("simcord")
        # The bot is an AutoShardedBot; one shard unless the test asks for more.
        defaults = {"settle_timeout": SETTLE_TIMEOUT_SECONDS, "shard_count": 1}
        options = {**defaults, **(marker.kwargs if marker else {})}
        item.add_marker(pytest.mark.simcord(**options), append=False)


@pytest.fixture
def bot_config(tmp_path: Path):
    """The bot's configuration for one test: its own database, the seed archive."""
    from core.config import Config

    return Config(archive=SEEDS, db_path=tmp_path / "bot.db", hot_heat=100)


@pytest.fixture
async def bots():
    """Every bot a test builds; their stores are closed at the end.

    simcord detaches a bot without calling `close()`, so an open store would
    keep its aiosqlite thread alive and pytest would hang on exit.
    """
    built: list = []
    yield built
    for bot in built:
        if bot.store is not None:
            await bot.store.close()


@pytest.fixture
def make_bot(bots):
    """A fresh bot (e.g. for `env.restart_bot`), closed at the end of the test."""
    from bot.app import create_bot

    def make(config):
        bot = create_bot(config)
        bots.append(bot)
        return bot

    return make


@pytest.fixture
def simcord_bot(bot_config, make_bot):
    return make_bot(bot_config)


@pytest.fixture
async def newsroom(simcord_env):
    """A server with #general, a member and a moderator; the archive loaded."""
    import discord

    env = simcord_env
    guild = env.create_guild(name="Newsroom")
    general = guild.create_text_channel("general")
    member = guild.add_member(env.create_user("alice"))
    mods = guild.create_role(
        "Mods",
        permissions=discord.Permissions(
            manage_messages=True, manage_channels=True, pin_messages=True
        ),
    )
    moderator = guild.add_member(env.create_user("morgan"), roles=[mods])
    await env.bot.archive_loaded.wait()
    return World(env, guild, general, member, moderator)


class World:
    def __init__(self, env, guild, channel, member, moderator):
        self.env, self.guild, self.channel = env, guild, channel
        self.member, self.moderator = member, moderator

    @property
    def bot(self):
        return self.env.bot


def buttons(message) -> list[tuple[str | None, str | None, str | None, bool]]:
    """(label, custom_id, url, disabled) of every button of a message."""
    import discord

    message = getattr(message, "message", message)
    out = []
    for row in message.components:
        for item in getattr(row, "children", [row]):
            if isinstance(item, discord.Button):
                out.append((item.label, item.custom_id, item.url, item.disabled))
    return out
