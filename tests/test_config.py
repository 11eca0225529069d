"""Configuration from the environment and `.env`."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import ROOT

from core.config import Config, ConfigError

KEYS = (
    "DISCORD_TOKEN",
    "NEWS_ARCHIVE",
    "NEWS_DB",
    "NEWS_HOT_HEAT",
    "NEWS_POLL_SECONDS",
    "NEWS_MAX_AGE_HOURS",
    "NEWS_POSTS_PER_POLL",
    "NEWS_INGEST_TIMEOUT_SECONDS",
    "NEWS_DEV_GUILD",
    "NEWS_SHARD_COUNT",
    "NEWS_SHARD_IDS",
    "LOG_LEVEL",
)


def test_defaults():
    config = Config.from_env({}, dotenv_path=None)

    assert config == Config()
    assert config.token is None
    assert config.archive == Path("seeds")
    assert config.db_path == Path("data/news.db")
    assert (config.hot_heat, config.poll_seconds, config.max_age_hours) == (100, 300, 72)
    assert config.dev_guild is None
    assert config.ingest_timeout_seconds == 600
    assert config.log_level == "INFO"


def test_env_example_copied_as_is_gives_the_defaults(tmp_path: Path):
    shutil.copy(ROOT / ".env.example", tmp_path / ".env")
    assert Config.from_env({}, tmp_path / ".env") == Config()


def test_env_example_lists_every_key():
    text = (ROOT / ".env.example").read_text()
    assert [k for k in KEYS if f"\n{k}=" not in text] == []


def test_dotenv_file_is_read(tmp_path: Path):
    (tmp_path / ".env").write_text(
        "DISCORD_TOKEN=abc.def\nNEWS_ARCHIVE=/srv/news\nNEWS_DB=/var/news.db\n"
        "NEWS_HOT_HEAT=150\nNEWS_POLL_SECONDS=60\nNEWS_MAX_AGE_HOURS=0\n"
        "NEWS_DEV_GUILD=123456789012345678\nLOG_LEVEL=debug\n"
    )

    config = Config.from_env({}, tmp_path / ".env")

    assert config.token == "abc.def"
    assert config.archive == Path("/srv/news")
    assert config.db_path == Path("/var/news.db")
    assert (config.hot_heat, config.poll_seconds, config.max_age_hours) == (150, 60, 0)
    assert config.dev_guild == 123456789012345678
    assert config.log_level == "DEBUG"


def test_default_dotenv_is_the_one_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    for key in KEYS:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("NEWS_HOT_HEAT=140\n")
    monkeypatch.setenv("NEWS_POLL_SECONDS", "30")

    config = Config.from_env()

    assert (config.hot_heat, config.poll_seconds) == (140, 30)


def test_environment_wins_over_dotenv(tmp_path: Path):
    (tmp_path / ".env").write_text("NEWS_HOT_HEAT=150\nNEWS_DB=from-file.db\n")

    config = Config.from_env({"NEWS_HOT_HEAT": " 200 "}, tmp_path / ".env")

    assert config.hot_heat == 200
    assert config.db_path == Path("from-file.db")


def test_missing_dotenv_is_fine(tmp_path: Path):
    assert Config.from_env({"NEWS_HOT_HEAT": "7"}, tmp_path / "absent.env").hot_heat == 7


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("NEWS_HOT_HEAT", "hot", "NEWS_HOT_HEAT must be a whole number, got 'hot'"),
        ("NEWS_HOT_HEAT", "1.5", "NEWS_HOT_HEAT must be a whole number, got '1.5'"),
        ("NEWS_HOT_HEAT", "-1", "NEWS_HOT_HEAT must be between 0 and 1000000, got -1"),
        ("NEWS_POLL_SECONDS", "1", "NEWS_POLL_SECONDS must be between 5 and 86400, got 1"),
        ("NEWS_MAX_AGE_HOURS", "-5", "NEWS_MAX_AGE_HOURS must be between 0 and 100000, got -5"),
        (
            "NEWS_INGEST_TIMEOUT_SECONDS",
            "0",
            "NEWS_INGEST_TIMEOUT_SECONDS must be between 1 and 86400, got 0",
        ),
        ("NEWS_DEV_GUILD", "my-server", "NEWS_DEV_GUILD must be a whole number, got 'my-server'"),
        ("NEWS_DEV_GUILD", "0", "NEWS_DEV_GUILD must be between 1 and"),
        ("LOG_LEVEL", "LOUD", "LOG_LEVEL must be one of CRITICAL, ERROR, WARNING, INFO, DEBUG"),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str, message: str, tmp_path: Path):
    with pytest.raises(ConfigError) as raised:
        Config.from_env({name: value}, dotenv_path=None)
    text = str(raised.value)
    assert text.startswith(message)
    assert "\n" not in text

    # The same from a .env file.
    (tmp_path / ".env").write_text(f"{name}={value}\n")
    with pytest.raises(ConfigError, match=name):
        Config.from_env({}, tmp_path / ".env")


def test_token_is_never_in_repr():
    secret = "MTIzNDU2Nzg5.secret-token-value"
    config = Config.from_env({"DISCORD_TOKEN": secret}, dotenv_path=None)

    assert config.token == secret
    assert secret not in repr(config)
    assert secret not in str(config)
    assert "hot_heat=100" in repr(config)


def test_empty_values_mean_the_default():
    config = Config.from_env({k: "  " for k in KEYS}, dotenv_path=None)
    assert config == Config()


def test_process_environment_is_the_default_source(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("NEWS_MAX_AGE_HOURS", "5")
    assert Config.from_env(dotenv_path=None).max_age_hours == 5


def test_shards_of_this_process():
    assert Config().shards.all
    config = Config.from_env({"NEWS_SHARD_COUNT": "8", "NEWS_SHARD_IDS": "0-1, 4"}, None)
    assert (config.shard_count, config.shard_ids) == (8, (0, 1, 4))
    assert config.shards.describe() == "shards 0-1,4 of 8"
    guild_on_4 = 4 << 22
    assert config.shards.serves(guild_on_4) and not config.shards.serves(3 << 22)
    # A count alone: this process runs every shard of that count.
    config = Config.from_env({"NEWS_SHARD_COUNT": "4"}, None)
    assert (config.shard_count, config.shard_ids) == (4, None)
    assert config.shards.all


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"NEWS_SHARD_IDS": "0-3"}, "NEWS_SHARD_IDS needs NEWS_SHARD_COUNT"),
        ({"NEWS_SHARD_COUNT": "4", "NEWS_SHARD_IDS": "2-5"}, "'2-5' is outside 0-3"),
        ({"NEWS_SHARD_COUNT": "4", "NEWS_SHARD_IDS": "3-1"}, "'3-1' is an empty range"),
        ({"NEWS_SHARD_COUNT": "4", "NEWS_SHARD_IDS": "one"}, "'one' is not a shard id"),
        ({"NEWS_SHARD_COUNT": "0"}, "NEWS_SHARD_COUNT must be between 1"),
    ],
)
def test_bad_shard_settings_say_what_is_wrong(environ: dict[str, str], message: str):
    with pytest.raises(ConfigError, match=message):
        Config.from_env(environ, dotenv_path=None)
