"""Store queries with literal expected results on the shared corpus (and the seed)."""

from __future__ import annotations

import contextlib
import difflib
import shutil
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import CORPUS, NOW, SEEDS, query_rows, story_file

from core.ingest import ingest
from core.models import DeliveryState, Page
from core.store import Store, quote_fts
from core.store.schema import MIGRATIONS

SEED_ID = "fyjmhv5j"
# Corpus stories with `published: false`: never shown anywhere.
UNPUBLISHED_ID = "mwseii3r"  # "Announcing the new solution import experience with …"
UNPUBLISHED_LICENSING = "Power Apps and Power Automate licensing FAQ"
VISIBLE_TOTAL = 131  # 191 distinct stories, 60 of them unpublished


def ids(page_or_list) -> list[str]:
    stories = page_or_list.stories if isinstance(page_or_list, Page) else page_or_list
    return [s.id for s in stories]


# -- topics ------------------------------------------------------------------------------


async def test_topics_with_counts_in_order(corpus_store: Store):
    assert [(t.name, t.count) for t in await corpus_store.topics()] == [
        ("Power Apps", 131),
        ("Portals", 15),
        ("Teams integration", 13),
        ("Model-driven apps", 9),
        ("Canvas apps", 5),
        ("AI Builder", 4),
        ("Common Data Service", 1),
    ]


async def test_topics_prefix_matches_come_before_contains_matches(corpus_store: Store):
    # "AI Builder" starts with "a": first, although "Power Apps" has far more stories.
    assert [t.name for t in await corpus_store.topics("a")][:3] == [
        "AI Builder",
        "Power Apps",
        "Portals",
    ]
    assert [(t.name, t.count) for t in await corpus_store.topics("app")] == [
        ("Power Apps", 131),
        ("Model-driven apps", 9),
        ("Canvas apps", 5),
    ]
    assert [t.name for t in await corpus_store.topics("  APPS ")] == [
        "Power Apps",
        "Model-driven apps",
        "Canvas apps",
    ]
    assert [t.name for t in await corpus_store.topics("c")] == [
        "Canvas apps",
        "Common Data Service",
    ]
    assert [t.name for t in await corpus_store.topics("a", limit=2)] == ["AI Builder", "Power Apps"]


@pytest.mark.parametrize("pattern", ["%", "_", "\\", "zzz", "'; DROP TABLE topics; --"])
async def test_topics_with_like_wildcards_or_no_match_are_empty(corpus_store: Store, pattern: str):
    assert await corpus_store.topics(pattern) == []


async def test_topic_name_is_case_insensitive_and_displayed_as_written(corpus_store: Store):
    assert await corpus_store.topic_name("teams INTEGRATION") == "Teams integration"
    assert await corpus_store.topic_name("Computer Vision") is None


async def test_closest_topics(corpus_store: Store):
    assert await corpus_store.closest_topics("portal") == ["Portals", "Power Apps"]
    assert await corpus_store.closest_topics("teams") == ["Teams integration", "Portals"]
    assert await corpus_store.closest_topics("powerapps") == [
        "Power Apps",
        "Portals",
        "Model-driven apps",
    ]
    assert await corpus_store.closest_topics("xyzzy") == []


async def test_closest_topics_compares_few_names_in_a_huge_archive(
    store: Store, archive: Path, monkeypatch
):
    """difflib over every name took seconds at 100k topics (bench/suggest.py)."""
    names = [f"Topic {n:04d} {word}" for n in range(1000) for word in ("Alpha",)]
    names += ["Computer Vision", "Computational Biology", "Teams integration"]
    for n in range(0, len(names), 25):
        (archive / f"s{n}.md").write_text(
            story_file(
                title=f"Story {n}", url=f"https://news.example/{n}", topics=names[n : n + 25]
            ),
            encoding="utf-8",
        )
    await ingest(store, archive, NOW)
    compared: list[int] = []
    real = difflib.get_close_matches
    monkeypatch.setattr(
        difflib,
        "get_close_matches",
        lambda word, possibilities, **kw: (
            compared.append(len(possibilities)) or real(word, possibilities, **kw)
        ),
    )
    assert (await store.closest_topics("computer vsion"))[0] == "Computer Vision"
    assert (await store.closest_topics("ocmputer vision"))[0] == "Computer Vision"
    assert await store.closest_topics("teams") == ["Teams integration"]
    assert (await store.closest_topics("topic 0421 alpah"))[0] == "Topic 0421 Alpha"
    assert compared and max(compared) <= 100
    # Topics added later are suggested too.
    (archive / "later.md").write_text(
        story_file(title="Later", url="https://news.example/later", topics=("Quantum Networking",)),
        encoding="utf-8",
    )
    await ingest(store, archive, NOW)
    assert await store.closest_topics("quantum netwroking") == ["Quantum Networking"]


# -- topic pages ---------------------------------------------------------------------------


async def test_topic_hot_order(corpus_store: Store):
    page = await corpus_store.stories("power apps")

    assert page.total == 131
    assert [(s.id, s.heat) for s in page.stories[:5]] == [
        ("ht5waumu", 189),
        ("behvbedr", 154),  # three at 154: newest first
        ("hbubsdqr", 154),
        ("eczf5yr4", 154),
        ("cdu2hag7", 148),
    ]
    top = page.stories[0]
    assert top.title == "Considerations for optimized performance in Power Apps"
    assert top.provider == "Microsoft"
    assert top.topics == ("Power Apps", "Model-driven apps")
    assert top.published_at == datetime(2020, 12, 3, 7, 40, 36, tzinfo=UTC)
    assert top.first_seen_at == NOW
    hot = [(s.heat, s.published_at) for s in page.stories]
    assert hot == sorted(hot, key=lambda h: (-h[0], -h[1].timestamp()))


async def test_topic_new_order(corpus_store: Store):
    page = await corpus_store.stories("Power Apps", "new", limit=5)

    assert page.total == 131
    assert ids(page) == ["ycgp574s", "zxzorbdi", "afphvuq5", "jkshdcyc", "mgdeb5hn"]
    dates = [s.published_at for s in page.stories]
    assert dates == sorted(dates, reverse=True)
    assert dates[0] == datetime(2021, 6, 2, 16, 12, 27, tzinfo=UTC)


async def test_all_stories_hot_and_new(corpus_store: Store):
    hot = await corpus_store.stories(limit=3)
    assert (hot.total, ids(hot)) == (VISIBLE_TOTAL, ["ht5waumu", "behvbedr", "hbubsdqr"])
    new = await corpus_store.stories(sort="new", limit=3)
    assert (new.total, ids(new)) == (VISIBLE_TOTAL, ["ycgp574s", "zxzorbdi", "afphvuq5"])


async def test_paging_through_a_topic(corpus_store: Store):
    everything = await corpus_store.stories("Portals", limit=15)
    pages = [await corpus_store.stories("Portals", limit=5, offset=o) for o in (0, 5, 10)]

    assert ids(everything) == [
        "behvbedr",
        "hbubsdqr",
        "eczf5yr4",
        "lpez35gr",
        "ykty2f5a",
        "5v3qispk",
        "xza7ozon",
        "px2qjau2",
        "2d7jwzdv",
        "3bqkn6dx",
        "ieboe7ft",
        "zxzorbdi",
        "t3vreubr",
        "ycgp574s",
        "mgdeb5hn",
    ]
    assert [i for p in pages for i in ids(p)] == ids(everything)
    assert [(p.total, p.offset, p.limit, p.has_next) for p in pages] == [
        (15, 0, 5, True),
        (15, 5, 5, True),
        (15, 10, 5, False),
    ]
    beyond = await corpus_store.stories("Portals", limit=5, offset=15)
    assert (beyond.stories, beyond.total, beyond.has_next) == ([], 15, False)


async def test_topic_is_case_insensitive(corpus_store: Store):
    expected = ids(await corpus_store.stories("Portals", limit=20))
    assert ids(await corpus_store.stories("PORTALS", limit=20)) == expected
    assert ids(await corpus_store.stories("  portals ", limit=20)) == expected


async def test_unknown_topic_is_an_empty_page(corpus_store: Store):
    for call in (
        corpus_store.stories("Quantum Knitting"),
        corpus_store.stories("Quantum Knitting", min_heat=1),
        corpus_store.search("power", "Quantum Knitting"),
    ):
        page = await call
        assert (page.stories, page.total, page.has_next) == ([], 0, False)


async def test_min_heat_since_until_filters(corpus_store: Store):
    hot = await corpus_store.stories(min_heat=150, limit=20)
    assert [(s.id, s.heat) for s in hot.stories] == [
        ("ht5waumu", 189),
        ("behvbedr", 154),
        ("hbubsdqr", 154),
        ("eczf5yr4", 154),
    ]
    since = await corpus_store.stories(sort="new", since=datetime(2021, 5, 25, tzinfo=UTC))
    assert (since.total, ids(since)[:3]) == (7, ["ycgp574s", "zxzorbdi", "afphvuq5"])
    until = await corpus_store.stories(sort="new", until=datetime(2020, 1, 1, tzinfo=UTC))
    assert ids(until) == ["srtb7t3j", "eczf5yr4", "cs7yk72e"]
    both = await corpus_store.stories(
        "Portals", since=datetime(2019, 1, 1, tzinfo=UTC), until=datetime(2020, 1, 1, tzinfo=UTC)
    )
    assert ids(both) == ["eczf5yr4"]
    assert (await corpus_store.stories(min_heat=190)).total == 0


# -- search --------------------------------------------------------------------------------


async def test_search_ranks_matches_with_heat(corpus_store: Store):
    portals = await corpus_store.search("portals", limit=5)
    assert portals.total == 17  # with "portal" (stemmed)
    assert ids(portals) == ["hbubsdqr", "behvbedr", "eczf5yr4", "xza7ozon", "ykty2f5a"]

    builder = await corpus_store.search("AI Builder")
    assert (builder.total, ids(builder)) == (4, ["xvhvmpgu", "cdu2hag7", "srtb7t3j", "tkygiiof"])

    gpt = await corpus_store.search("GPT-3")
    assert [(s.id, s.title) for s in gpt.stories] == [
        ("afphvuq5", "Microsoft uses GPT-3 to add AI features to Power Apps")
    ]
    fx = await corpus_store.search("power fx")
    assert (fx.total, ids(fx)) == (2, ["mnfa2wit", "36ntzuam"])


async def test_search_within_a_topic(corpus_store: Store):
    page = await corpus_store.search("power automate", "teams integration")
    assert (page.total, ids(page)) == (2, ["lpgtmfnt", "dlt3syrn"])
    assert (await corpus_store.search("facial", "Teams integration")).total == 0


async def test_search_sorted_new(corpus_store: Store):
    page = await corpus_store.search("portals", sort="new", limit=3)
    assert (page.total, ids(page)) == (17, ["ycgp574s", "zxzorbdi", "mgdeb5hn"])


async def test_search_with_min_heat_and_paging(corpus_store: Store):
    page = await corpus_store.search("portals", min_heat=150)
    assert (page.total, ids(page)) == (3, ["hbubsdqr", "behvbedr", "eczf5yr4"])
    second = await corpus_store.search("portals", limit=5, offset=5)
    assert (second.total, second.has_next, len(second.stories)) == (17, True, 5)
    assert not set(ids(second)) & set(ids(await corpus_store.search("portals", limit=5)))


async def test_search_is_case_and_diacritic_insensitive(corpus_store: Store):
    expected = ids(await corpus_store.search("portals"))
    assert ids(await corpus_store.search("PORTÂLS")) == expected


@pytest.mark.parametrize(
    "query",
    [
        "AND",
        "OR",
        "NOT",
        "power AND",
        "OR portals",
        "NOT portals",
        '"',
        '"power',
        "*",
        "power*",
        "(",
        "(power",
        ")",
        "-",
        "-power",
        "title:foo",
        "title:portals",
        "excerpt : power",
        "NEAR(a b)",
        "NEAR(power apps, 2)",
        "{title excerpt}: power",
        "^power",
        "power + apps",
        "a:b:c",
        "\x00",
        "'; DROP TABLE stories; --",
        "🚀 power",
        "power " * 2_000,
    ],
)
async def test_fts_syntax_never_raises(corpus_store: Store, query: str):
    page = await corpus_store.search(query)
    assert 0 <= page.total <= VISIBLE_TOTAL
    assert len(page.stories) == min(10, page.total)
    assert isinstance(await corpus_store.find_stories(query), list)


@pytest.mark.parametrize("query", ["", "   ", "!!!", "*-()\"':^", "…—–"])
async def test_query_without_words_lists_stories(corpus_store: Store, query: str):
    page = await corpus_store.search(query, limit=3)
    assert (page.total, ids(page)) == (VISIBLE_TOTAL, ["ht5waumu", "behvbedr", "hbubsdqr"])
    in_topic = await corpus_store.search(query, "Portals", "new", limit=1)
    assert (in_topic.total, ids(in_topic)) == (15, ["ycgp574s"])


def test_quote_fts():
    assert quote_fts('title:foo OR "bar" NEAR(a b)*') == '"title" "foo" "bar" "near" "b"'
    assert quote_fts("the and of") == '"the" "and" "of"'  # only stop words: keep them
    assert quote_fts("power ap", prefix=True) == '"power"* "ap"*'
    assert quote_fts("-(*)") == ""


# -- published: false ---------------------------------------------------------------------


async def test_unpublished_stories_never_appear(corpus_store: Store):
    assert await corpus_store.story(UNPUBLISHED_ID) is None
    assert await corpus_store.related(UNPUBLISHED_ID) is None
    assert await corpus_store.find_stories(UNPUBLISHED_ID) == []
    assert (await corpus_store.search("solution import experience")).total == 0
    assert (await corpus_store.search("licensing")).total == 0  # the FAQ is unpublished
    assert UNPUBLISHED_LICENSING not in [s.title for s in await corpus_store.find_stories("FAQ")]
    every = await corpus_store.stories(limit=1_000)
    assert len(every.stories) == every.total == VISIBLE_TOTAL
    assert UNPUBLISHED_ID not in ids(every)
    for topic in await corpus_store.topics():
        assert (await corpus_store.stories(topic.name, limit=1)).total == topic.count
    for story in every.stories[:20]:
        similar = (await corpus_store.related(story.id)).similar
        assert UNPUBLISHED_ID not in ids(similar)
        assert all(s.published for s in similar)


# -- one story, find, related ---------------------------------------------------------------


async def test_story_by_short_id(corpus_store: Store):
    story = await corpus_store.story("  HT5WAUMU ")

    assert story.id == "ht5waumu"
    assert story.url == (
        "https://powerapps.microsoft.com/en-us/blog/"
        "considerations-for-optimized-performance-in-power-apps/"
    )
    assert story.heat == 189
    assert story.provider_domain == "microsoft.com"
    assert story.related == ()
    assert await corpus_store.story("zzzzzzzz") is None


async def test_story_in_two_files_is_one_story(corpus_store: Store):
    page = await corpus_store.search("on boarding")
    assert [(s.id, s.title) for s in page.stories if s.id == "pj63emzn"] == [
        ("pj63emzn", "User on boarding Walkthrough: PowerApps Portal way")
    ]
    assert page.stories[0].id == "pj63emzn"


async def test_find_stories_by_id_and_partial_title(corpus_store: Store):
    assert ids(await corpus_store.find_stories("HT5WAUMU")) == ["ht5waumu"]
    assert ids(await corpus_store.find_stories("optim perf")) == ["ht5waumu"]
    assert ids(await corpus_store.find_stories("receipt scan")) == ["xvhvmpgu"]
    assert ids(await corpus_store.find_stories("", limit=3)) == ["ht5waumu", "behvbedr", "hbubsdqr"]
    assert await corpus_store.find_stories("xylophone") == []
    # Only the title is searched: "Recommendations" is in ht5waumu's excerpt alone.
    assert "ht5waumu" not in ids(await corpus_store.find_stories("recommendations"))


async def test_related_on_the_corpus_excludes_itself(corpus_store: Store):
    related = await corpus_store.related("ht5waumu")

    assert related.story.id == "ht5waumu"
    assert related.coverage == []
    assert len(related.similar) == 5
    assert "ht5waumu" not in ids(related.similar)
    assert len(set(ids(related.similar))) == 5
    assert len((await corpus_store.related("ht5waumu", limit=2)).similar) == 2
    assert await corpus_store.related("nope1234") is None


@pytest.fixture
async def seed_store(store: Store, archive: Path) -> Store:
    """The seed, a duplicate of it under another URL, two similar stories and unrelated ones."""
    shutil.copy(SEEDS / "000_370428515c238e8f.txt", archive / "seed.txt")
    seed_title = "Technologists Use Facial Recognition on Parler Videos"
    files = {
        "duplicate.md": story_file(seed_title, "https://mirror.example/parler", 120, ("AI",)),
        "similar1.md": story_file(
            "Minneapolis bans police facial recognition", "https://e.com/s1", 60, ("AI",)
        ),
        "similar2.md": story_file(
            "Parler videos archived by researchers", "https://e.com/s2", 40, ("Computer Vision",)
        ),
    }
    for i in range(8):  # an archive of some size: words in every story are not significant
        files[f"other{i}.md"] = story_file(
            f"Gardening tips for spring, part {i}", f"https://e.com/o{i}", 300, ("Garden",)
        )
    for name, text in files.items():
        (archive / name).write_text(text)
    await ingest(store, archive, NOW)
    return store


async def test_related_returns_curated_coverage_of_the_seed(seed_store: Store):
    related = await seed_store.related(SEED_ID)

    assert related.story.title == "Technologists Use Facial Recognition on Parler Videos"
    assert [c.provider for c in related.coverage] == [
        "Wired",
        "Mint",
        "Ars Technica",
        "U.S. News & World Report",
        "The Straits Times",
        "Associated Press",
        "WEAU",
        "StarTribune",
        "StarTribune",
    ]
    assert related.coverage[0].url == (
        "https://www.wired.com/story/faces-of-the-riot-capitol-insurrection-facial-recognition/"
    )
    assert related.coverage[0].published_at == datetime(2021, 1, 21, 0, 33, tzinfo=UTC)
    assert (await seed_store.story(SEED_ID)).related == tuple(related.coverage)


async def test_related_excludes_itself_and_duplicates(seed_store: Store):
    related = await seed_store.related(SEED_ID)
    titles = [s.title for s in related.similar]

    assert SEED_ID not in ids(related.similar)
    assert "Technologists Use Facial Recognition on Parler Videos" not in titles
    # Sharing words with the seed beats sharing its first topic; gardening is not similar.
    assert sorted(titles) == [
        "Minneapolis bans police facial recognition",
        "Parler videos archived by researchers",
    ]


# -- search on an archive larger than the search cap ------------------------------------


@pytest.fixture
async def crowded_store(store: Store, archive: Path, monkeypatch) -> Store:
    """40 stories that all say "common" (8 of them in Wildlife), 3 of which say "zebra".

    The search cap is lowered to 10 so that "common" matches more than it.
    """
    monkeypatch.setattr("core.store.stories.SEARCH_CAP", 10)
    for i in range(40):
        rare = " zebra" if i in (3, 17, 31) else ""
        (archive / f"2025-12-{i % 28 + 1:02d}-story-{i:02d}.md").write_text(
            story_file(
                title=f"Common story{rare} number {i}",
                url=f"https://example.com/common/{i}",
                heat=10 + i,
                topics=("Wildlife",) if i % 5 == 0 else ("Markets",),
                published=f"2025-12-{i % 28 + 1:02d}T10:00:00Z",
            )
        )
    await ingest(store, archive, NOW)
    return store


async def test_search_of_a_common_word_ranks_a_bounded_set(crowded_store: Store):
    first = await crowded_store.search("common", limit=4)
    assert (first.total, first.total_is_estimate, first.has_next) == (10, True, True)
    assert all("Common story" in s.title for s in first.stories)
    heats = [s.heat for s in first.stories]
    assert heats == sorted(heats, reverse=True)  # equal relevance: hotter first
    pages = [first] + [await crowded_store.search("common", limit=4, offset=o) for o in (4, 8)]
    seen = [s.id for page in pages for s in page.stories]
    assert len(seen) == len(set(seen)) == 10  # the 10 ranked stories, each once
    assert not pages[-1].has_next
    newest = await crowded_store.search("common", sort="new", limit=10)
    assert (newest.total, newest.total_is_estimate) == (10, True)
    dates = [s.published_at for s in newest.stories]
    assert dates == sorted(dates, reverse=True)


async def test_search_drops_a_very_common_word_next_to_a_rare_one(crowded_store: Store):
    page = await crowded_store.search("common zebra")
    assert (page.total, page.total_is_estimate) == (3, False)
    assert sorted(s.title for s in page.stories) == [
        "Common story zebra number 17",
        "Common story zebra number 3",
        "Common story zebra number 31",
    ]
    assert ids(await crowded_store.search("zebra")) == ids(page)


@pytest.mark.parametrize("broad", [False, True], ids=["bm25", "title-then-heat"])
async def test_search_shows_the_story_titled_with_the_word_first(
    store: Store, archive: Path, monkeypatch, broad: bool
):
    """Hotter stories only tagged "Otters" do not bury the one about otters, whether the
    query is ranked by bm25 or (a very broad query) by title words, then heat."""
    if broad:  # every query counts as too broad for bm25
        monkeypatch.setattr("core.store.stories.SEARCH_RANK_BUDGET", -1)
    for i in range(6):
        (archive / f"2025-12-0{i + 1}-river-{i}.md").write_text(
            story_file(
                title=f"River report {i}",
                url=f"https://example.com/river/{i}",
                heat=60 + i,
                topics=("Otters",),
            )
        )
    (archive / "2025-12-09-otters.md").write_text(
        story_file(
            title="Otters return to the river",
            url="https://example.com/otters",
            heat=20,
            topics=("Wildlife",),
        )
    )
    await ingest(store, archive, NOW)
    page = await store.search("otters")
    assert page.total == 7
    assert [s.title for s in page.stories][:3] == [
        "Otters return to the river",
        "River report 5",
        "River report 4",
    ]


async def test_search_within_a_topic_above_the_cap(crowded_store: Store, monkeypatch):
    bounded = await crowded_store.search("common", "wildlife", limit=20)
    assert (bounded.total, bounded.total_is_estimate) == (8, False)
    assert all(s.topics == ("Wildlife",) for s in bounded.stories)
    monkeypatch.setattr("core.store.stories.SEARCH_CAP", 1_000)  # the exact path
    exact = await crowded_store.search("common", "wildlife", limit=20)
    assert sorted(ids(bounded)) == sorted(ids(exact)) and exact.total == 8
    assert [s.heat for s in bounded.stories] == sorted(
        (s.heat for s in bounded.stories), reverse=True
    )


# -- deliveries --------------------------------------------------------------------------


async def test_deliveries_keyed_by_channel_migrate_keeping_every_delivery(tmp_path: Path):
    # A database from before "deliveries keyed by story first": migrated, every delivery
    # (queued, posted, seen) is kept as it was, and none is recorded a second time.
    db = tmp_path / "news.db"
    store = await Store.open(db)
    await ingest(store, CORPUS, NOW)
    first, second, third = ids(await store.stories(limit=3))
    rows = [
        (7, 555, first, DeliveryState.PENDING),
        (7, 555, second, DeliveryState.PENDING),
        (7, 556, first, DeliveryState.SEEN),
        (7, 556, third, DeliveryState.PENDING),
    ]
    assert await store.record_deliveries(rows, NOW) == 4
    assert await store.mark_delivery(555, second, DeliveryState.SENT, NOW, message_id=99)
    await store.close()
    every = "SELECT * FROM deliveries ORDER BY channel_id, story"
    key = "SELECT name FROM pragma_index_info('sqlite_autoindex_deliveries_1') ORDER BY seqno"
    before = query_rows(db, every)
    names = [name for name, _ in MIGRATIONS]
    version = names.index("deliveries keyed by story first") + 1
    statements = MIGRATIONS[version - 1][1]
    indexes = [s for s in statements if s.startswith("CREATE INDEX")]
    old_table = (
        statements[0]
        .replace("deliveries_by_story", "by_channel")
        .replace("PRIMARY KEY (story, channel_id)", "PRIMARY KEY (channel_id, story)")
    )
    with contextlib.closing(sqlite3.connect(db, isolation_level=None)) as conn:
        conn.executescript(
            f"""
            BEGIN;
            {old_table};
            INSERT INTO by_channel SELECT * FROM deliveries;
            DROP TABLE deliveries;
            ALTER TABLE by_channel RENAME TO deliveries;
            {";".join(indexes)};
            DELETE FROM schema_migrations WHERE version = {version};
            COMMIT;
            """
        )
    assert query_rows(db, key) == [("channel_id",), ("story",)]

    store = await Store.open(db)
    try:
        assert query_rows(db, key) == [("story",), ("channel_id",)]
        assert query_rows(db, every) == before
        assert await store.record_deliveries(rows, NOW) == 0
        due = [(d.channel_id, d.story.id) for d in await store.due_deliveries()]
        assert due == [(555, first), (556, third)]
    finally:
        await store.close()
