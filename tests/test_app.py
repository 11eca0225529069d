"""The wiring: intents, the command line, the invite, syncing once, the error handler."""

from __future__ import annotations

import base64
import logging
import os
import subprocess
import sys
from dataclasses import replace
from urllib.parse import parse_qs, urlsplit

import discord
import pytest
import simcord
from conftest import ROOT, story_file

from bot.app import REQUIRED_PERMISSIONS, create_bot
from core.config import Config

APP_ID = 1234567890123456789
TOKEN = base64.b64encode(str(APP_ID).encode()).decode().rstrip("=") + ".GhIjKl.s3cr3t-t0ken-VALUE"


def cli(*args: str, cwd, token: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "DISCORD_TOKEN"}
    env["PYTHONPATH"] = str(ROOT)
    if token:
        env["DISCORD_TOKEN"] = token
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=cwd,  # a folder without .env, so only `env` is read
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


# -- intents ------------------------------------------------------------------------


def test_create_bot_asks_for_no_privileged_intent(tmp_path):
    bot = create_bot(Config(db_path=tmp_path / "bot.db"))
    intents = bot.intents
    assert not intents.members and not intents.presences and not intents.message_content
    assert intents.guilds


@pytest.mark.simcord(approved_intents=discord.Intents.default())
async def test_bot_starts_without_approved_privileged_intents(newsroom):
    assert newsroom.bot.is_ready()
    result = await newsroom.member.slash(newsroom.channel, "topics")
    assert result.response.embeds[0].title == "Topics"


# -- command line -------------------------------------------------------------------


def test_run_without_a_token_explains_how_to_get_one(tmp_path):
    done = cli("run", cwd=tmp_path)
    assert done.returncode != 0
    assert "DISCORD_TOKEN" in done.stderr
    assert "https://discord.com/developers/applications" in done.stderr
    assert ".env" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_invite_prints_the_oauth_url_with_the_required_permissions(tmp_path):
    done = cli("invite", cwd=tmp_path)
    assert done.returncode == 0
    url = done.stdout.strip()
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc) == ("https", "discord.com")
    query = parse_qs(parts.query)
    assert query["scope"] == ["bot applications.commands"]
    assert query["permissions"] == [str(REQUIRED_PERMISSIONS.value)]
    assert query["client_id"] == ["YOUR_APPLICATION_ID"]
    assert "DISCORD_TOKEN" in done.stderr


def test_invite_with_a_token_uses_the_application_id_and_hides_the_token(tmp_path):
    done = cli("invite", cwd=tmp_path, token=TOKEN)
    assert done.returncode == 0
    assert parse_qs(urlsplit(done.stdout.strip()).query)["client_id"] == [str(APP_ID)]
    assert "s3cr3t" not in done.stdout + done.stderr


def test_required_permissions_are_minimal():
    assert REQUIRED_PERMISSIONS.send_messages and REQUIRED_PERMISSIONS.embed_links
    assert not REQUIRED_PERMISSIONS.administrator
    assert not REQUIRED_PERMISSIONS.mention_everyone
    assert not REQUIRED_PERMISSIONS.manage_guild


# -- the token is never shown ---------------------------------------------------------


def test_config_repr_hides_the_token(tmp_path):
    config = Config(token=TOKEN, db_path=tmp_path / "bot.db")
    assert "s3cr3t" not in repr(config) and "s3cr3t" not in str(config)
    assert "s3cr3t" not in repr(create_bot(config).config)


class TestWithToken:
    @pytest.fixture
    def bot_config(self, tmp_path):
        return Config(token=TOKEN, archive=ROOT / "seeds", db_path=tmp_path / "bot.db")

    async def test_the_token_never_reaches_the_logs(self, newsroom, caplog):
        caplog.set_level(logging.DEBUG)
        await newsroom.member.slash(newsroom.channel, "news")
        await newsroom.member.slash(newsroom.channel, "story", story="nope")
        assert caplog.records
        assert "s3cr3t" not in caplog.text
        assert all("s3cr3t" not in repr(r.args) for r in caplog.records)


# -- syncing once -----------------------------------------------------------------------


def command_puts(env) -> list[str]:
    return [e.path for e in env.http_requests if e.method == "PUT" and e.path.endswith("/commands")]


async def test_a_restart_with_unchanged_commands_does_not_sync_again(
    newsroom, make_bot, bot_config
):
    env = newsroom.env
    assert len(command_puts(env)) == 1
    await env.restart_bot(make_bot(bot_config))
    assert len(command_puts(env)) == 1
    await newsroom.bot.archive_loaded.wait()
    # The commands synced before still work with the new bot.
    result = await newsroom.member.slash(newsroom.channel, "news", topic="AI")
    assert result.response.embeds[0].title == "Hot in AI"


async def test_a_changed_command_set_syncs_again(newsroom, make_bot, bot_config):
    env = newsroom.env
    bot = make_bot(bot_config)

    @bot.tree.command(name="ping", description="Check that the bot answers")
    async def ping(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("pong", ephemeral=True)

    await env.restart_bot(bot)
    assert len(command_puts(env)) == 2
    assert "ping" in newsroom.member.available_commands(newsroom.channel)
    assert (await newsroom.member.slash(newsroom.channel, "ping")).response.content == "pong"
    # ... and the next restart, unchanged again, does not.
    again = make_bot(bot_config)
    again.tree.add_command(ping)
    await env.restart_bot(again)
    assert len(command_puts(env)) == 2


async def test_a_changed_news_archive_is_refused_at_start_and_logged_once(
    newsroom, make_bot, bot_config, tmp_path, caplog
):
    other = tmp_path / "other-archive"
    other.mkdir()
    (other / "a.md").write_text(story_file("Another archive's story", "https://e.com/a"))
    caplog.set_level(logging.INFO)
    moved = make_bot(replace(bot_config, archive=other))

    await newsroom.env.restart_bot(moved)
    await moved.archive_loaded.wait()
    await moved.load_archive()  # the next poll: refused again, not logged again

    refusals = [r for r in caplog.records if "not loading NEWS_ARCHIVE" in r.getMessage()]
    assert [r.levelno for r in refusals] == [logging.ERROR]
    assert "python -m bot ingest --replace" in refusals[0].getMessage()
    # The database still shows the archive it was built from.
    result = await newsroom.member.slash(newsroom.channel, "story", story="fyjmhv5j")
    assert result.response.embeds[0].footer.text.endswith("id fyjmhv5j")
    missing = await newsroom.member.slash(newsroom.channel, "news", query="another archive")
    assert missing.ephemeral


DEV_GUILD = 987654321098765432


class TestDevGuild:
    @pytest.fixture
    def bot_config(self, tmp_path):
        return Config(archive=ROOT / "seeds", db_path=tmp_path / "bot.db", dev_guild=DEV_GUILD)

    async def test_commands_sync_to_the_dev_guild_only(self, simcord_env):
        env = simcord_env
        assert command_puts(env) == [
            f"/applications/{env.bot.application_id}/guilds/{DEV_GUILD}/commands"
        ]
        dev = env.create_guild(name="Dev", id=DEV_GUILD)
        channel = dev.create_text_channel("dev")
        member = dev.add_member(env.create_user("dana"))
        assert set(member.available_commands(channel)) >= {"news", "related", "story", "topics"}
        other = env.create_guild(name="Elsewhere")
        elsewhere = other.create_text_channel("general")
        assert other.add_member(env.create_user("eve")).available_commands(elsewhere) == ()


# -- the error handler -------------------------------------------------------------------


async def test_a_failing_command_apologises_privately_and_logs_the_traceback(
    newsroom, monkeypatch, caplog
):
    async def broken(*args, **kwargs):
        raise RuntimeError("kaboom in the store")

    monkeypatch.setattr(newsroom.bot.store, "stories", broken)
    caplog.set_level(logging.ERROR)
    result = await newsroom.member.slash(newsroom.channel, "news", sort="new")

    assert result.acknowledged and result.ephemeral
    assert result.response.content == "Sorry, something went wrong on our side. It has been logged."
    assert result.response.embeds == []

    (record,) = [r for r in caplog.records if "failed" in r.getMessage()]
    message = record.getMessage()
    assert "/news" in message and str(newsroom.guild.id) in message and "sort" in message
    assert record.exc_info and record.exc_info[0] is RuntimeError
    assert "kaboom in the store" in caplog.text and "Traceback" in caplog.text


async def test_a_failing_button_never_leaves_the_click_unanswered(newsroom, monkeypatch, caplog):
    story = await newsroom.member.slash(newsroom.channel, "story", story="fyjmhv5j")

    async def broken(*args, **kwargs):
        raise RuntimeError("kaboom in related")

    monkeypatch.setattr(newsroom.bot.store, "related", broken)
    caplog.set_level(logging.ERROR)
    click = await newsroom.member.click(story.response, label="Related")
    assert click.acknowledged and click.ephemeral
    assert click.response.content == "Sorry, something went wrong on our side. It has been logged."
    (record,) = [r for r in caplog.records if "kaboom" in caplog.text and r.exc_info]
    assert "news:related:fyjmhv5j" in record.getMessage()


async def test_a_failing_page_turn_is_answered_too(newsroom, monkeypatch, caplog):
    make_two_pages = newsroom.bot.store.stories

    async def two_pages(*args, **kwargs):
        page = await make_two_pages(*args, **kwargs)
        return replace(page, total=6)

    monkeypatch.setattr(newsroom.bot.store, "stories", two_pages)
    listing = await newsroom.member.slash(newsroom.channel, "news")
    assert listing.response.embeds[0].footer.text == "Page 1 of 2 · 6 stories · sorted by heat"

    async def broken(*args, **kwargs):
        raise RuntimeError("kaboom while paging")

    monkeypatch.setattr(newsroom.bot.store, "stories", broken)
    caplog.set_level(logging.ERROR)
    click = await newsroom.member.click(listing.response, label="Next")
    assert click.ephemeral and "went wrong" in click.response.content
    assert listing.response.embeds[0].footer.text.startswith("Page 1 of 2")
    assert "kaboom while paging" in caplog.text and "'Next'" in caplog.text
    simcord.assert_error(newsroom.env, RuntimeError, contains="kaboom while paging")


async def test_user_errors_are_shown_as_they_are(newsroom):
    result = await newsroom.member.slash(newsroom.channel, "news", topic="Nope")
    assert result.ephemeral and result.response.content.startswith("There is no topic “Nope”")
    assert newsroom.env.errors == []


# -- bad input is answered plainly ----------------------------------------------------


@pytest.fixture
def crafted_options(monkeypatch):
    """Let a test put another server's channel in an option, as a modified client could.

    simcord, like Discord's own client, only offers the server's channels; the
    bot must still cope with any channel id an interaction carries.
    """
    real = simcord.builders._require_handle
    monkeypatch.setattr(
        simcord.builders, "_require_handle", lambda env, handle, guild_id=None: real(env, handle)
    )


@pytest.mark.parametrize(
    ("command", "options"),
    [
        ("pinned", {}),
        ("subscriptions", {}),
        ("subscribe", {"topic": "Computer Vision"}),
        ("unsubscribe", {"topic": "Computer Vision"}),
    ],
)
async def test_a_channel_of_another_server_is_a_plain_user_error(
    newsroom, crafted_options, caplog, command, options
):
    elsewhere = newsroom.env.create_guild(name="Elsewhere")
    secret = elsewhere.create_text_channel("secret")
    elsewhere.add_member(newsroom.moderator.user)
    result = await newsroom.moderator.slash(newsroom.channel, command, channel=secret, **options)
    assert result.ephemeral
    assert result.response.content == "That channel is not in this server."
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert await newsroom.bot.store.subscriptions(newsroom.guild.id, None) == []


@pytest.mark.parametrize(
    ("command", "options"),
    [
        ("news", {"query": "\ud800abc"}),
        ("news", {"topic": "Computer \udfffVision"}),
        ("story", {"story": "\udfff"}),
        ("related", {"story": "abc\ud800"}),
        ("subscribe", {"topic": "Computer Vision", "keywords": "face \ud83d"}),
    ],
)
async def test_unencodable_text_in_an_option_gets_a_clear_private_answer(
    newsroom, caplog, command, options
):
    result = await newsroom.moderator.slash(newsroom.channel, command, **options)
    assert result.ephemeral
    (name,) = [n for n, v in options.items() if "\\u" in ascii(v)]
    assert result.response.content.startswith(f"Your `{name}:` has characters that cannot be sent")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert await newsroom.bot.store.subscriptions(newsroom.guild.id, None) == []


async def test_autocomplete_ignores_a_lone_surrogate(newsroom, caplog):
    topics = await newsroom.member.autocomplete(newsroom.channel, "news", "topic", "vis\udfffion")
    assert topics and topics[0]["value"] == "Computer Vision"
    stories = await newsroom.member.autocomplete(newsroom.channel, "story", "story", "\ud800")
    assert stories  # what was typed, without the broken character: nothing, so the latest
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


# -- the poller's log ------------------------------------------------------------------


async def test_an_unchanged_rescan_logs_nothing_and_a_rejection_is_logged_once(
    tmp_path, caplog, make_bot
):
    from conftest import story_file

    from core.store import Store

    archive = tmp_path / "archive"
    archive.mkdir()
    (archive / "a.md").write_text(story_file(title="Solar kites", url="https://e.com/a"))
    (archive / "broken.md").write_text("---\ntitle: [unclosed\n---\n")
    bot = make_bot(Config(archive=archive, db_path=tmp_path / "bot.db"))
    bot.store = await Store.open(bot.config.db_path)  # what setup_hook does
    caplog.set_level(logging.DEBUG)

    await bot.load_archive()  # the start-up load says what it loaded
    first = [(r.levelno, r.getMessage()) for r in caplog.records if r.levelno >= logging.INFO]
    assert any(level == logging.INFO and "1 added" in text for level, text in first), first
    assert [text for level, text in first if level == logging.WARNING] == [
        f"rejected broken.md: {bot.last_ingest.rejected[0].reason}"
    ]

    caplog.clear()
    await bot.load_archive()  # the poller's rescan, nothing changed
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO] == []

    caplog.clear()
    (archive / "b.md").write_text(story_file(title="Tidal turbines", url="https://e.com/b"))
    await bot.load_archive()  # a rescan that found a new story
    changed = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert len(changed) == 1 and "1 added" in changed[0], changed
