from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.ingest import ingest
from bot.store import Store

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
