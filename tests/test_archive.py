"""The archive loader: the seed, the shared corpus, hostile files and arbitrary bytes."""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import re
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from conftest import CORPUS, SEEDS, story_file
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.archive import (
    MAX_EXCERPT,
    MAX_FILE_BYTES,
    MAX_HEAT,
    MAX_TITLE,
    MAX_TOPICS,
    ArchiveUnreadable,
    canonical_url,
    content_hash,
    parse_file,
    parse_story,
    scan_archive,
    short_id,
    walk_stamps,
)
from core.models import Rejection, Skipped, Story

HOSTILE = Path(__file__).resolve().parent / "hostile"
SEED_FILE = SEEDS / "000_370428515c238e8f.txt"
SHORT_ID = re.compile(r"^[a-z2-7]{8}$")


def parse_text(text: str, path: str = "story.md") -> Story | Rejection | Skipped:
    return parse_story(path, text.encode())


# -- the seed ------------------------------------------------------------------------


def test_seed_parses_to_the_exact_story():
    story = parse_story(SEED_FILE.name, SEED_FILE.read_bytes())

    assert isinstance(story, Story)
    assert story.id == "fyjmhv5j"
    assert story.url == "https://www.vice.com/en/article/xgz7g7/facial-recognition-parler-videos"
    assert story.canonical == story.url
    assert story.title == "Technologists Use Facial Recognition on Parler Videos"
    assert story.excerpt.startswith("Technologists have used facial recognition techniques")
    assert story.heat == 179
    assert story.quality == 89
    assert story.published is True
    assert story.type == "article"
    assert story.topics == ("Computer Vision", "AI")
    assert story.provider == "VICE"
    assert story.provider_domain == "vice.com"
    assert story.provider_icon == (
        "https://smartableai.github.io/artificial-intelligence/assets/images/"
        "organizations/vice.com-50x50.jpg"
    )
    assert story.image_url is not None
    assert story.image_url.startswith("https://video-images.vice.com/articles/")
    assert story.published_at == datetime(2021, 1, 20, 21, 34, tzinfo=UTC)


def test_seed_related_coverage_is_all_nine_links_in_order():
    story = parse_story(SEED_FILE.name, SEED_FILE.read_bytes())

    assert [c.provider for c in story.related] == [
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
    first = story.related[0]
    assert first.title == "This Site Published Every Face From Parler's Capitol Riot Videos"
    assert first.url == (
        "https://www.wired.com/story/faces-of-the-riot-capitol-insurrection-facial-recognition/"
    )
    assert first.published_at == datetime(2021, 1, 21, 0, 33, tzinfo=UTC)
    assert first.type == "article"


# -- the shared corpus -----------------------------------------------------------------


def test_whole_corpus_parses_without_a_rejection():
    files = list(scan_archive(CORPUS))
    results = [parse_file(os.fspath(CORPUS), f.path)[1] for f in files]

    assert len(files) == 192
    assert all(f.path.startswith("_news/") for f in files)  # _data/topics/*.yaml is not news
    assert [r for r in results if not isinstance(r, Story)] == []
    assert sum(1 for r in results if not r.published) == 60
    assert sum(1 for r in results if r.is_video) == 12
    # Two files carry the same URL: 191 distinct stories.
    assert len({r.id for r in results}) == 191


def test_corpus_crlf_files_parse_like_the_others():
    crlf = [p for p in sorted((CORPUS / "_news").glob("*.md")) if b"\r\n" in p.read_bytes()]

    assert len(crlf) == 57
    for path in crlf:
        story = parse_story(path.name, path.read_bytes())
        assert isinstance(story, Story), story
        assert "\r" not in story.title
        assert story.topics and "Power Apps" in story.topics


# -- URLs and ids ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        (
            "HTTPS://WWW.Example.COM:443/News/Item/?utm_source=x&b=2&fbclid=y&UTM_Medium=z#top",
            "https://www.example.com/News/Item?b=2",
        ),
        ("http://example.com:80", "http://example.com/"),
        ("http://example.com:8080/a/", "http://example.com:8080/a"),
        ("  https://example.com/a?gclid=1  ", "https://example.com/a"),
        ("https://example.com/a?q=&x=1", "https://example.com/a?q=&x=1"),
    ],
)
def test_canonical_url(url: str, canonical: str):
    assert canonical_url(url) == canonical


def test_short_id_is_stable_and_typeable():
    seed = "https://www.vice.com/en/article/xgz7g7/facial-recognition-parler-videos"
    assert short_id(seed) == "fyjmhv5j"
    assert SHORT_ID.match(short_id("https://example.com/a"))
    assert short_id("https://example.com/a") != short_id("https://example.com/b")
    for n in range(2000):  # the base32 of the SHA-1's first 5 bytes, as it always was
        url = f"https://example.com/{n}"
        digest = hashlib.sha1(url.encode()).digest()[:5]
        assert short_id(url) == base64.b32encode(digest).decode().lower()


def test_spellings_of_one_url_are_one_story():
    a = parse_text(story_file(url="https://Example.com/a-story/?utm_source=feed"))
    b = parse_text(story_file(url="https://example.com:443/a-story#comments"))

    assert isinstance(a, Story)
    assert isinstance(b, Story)
    assert a.id == b.id
    assert a.canonical == b.canonical == "https://example.com/a-story"
    assert a.url == "https://Example.com/a-story/?utm_source=feed"  # shown as written


def test_web_url_is_used_when_original_url_is_not_http():
    text = '---\ntitle: "T"\noriginalUrl: "ftp://example.com/x"\nwebUrl: "https://example.com/w"\n---\n'
    story = parse_text(text)

    assert isinstance(story, Story)
    assert story.url == "https://example.com/w"


# -- fields ------------------------------------------------------------------------------


def test_topics_keep_their_spelling_and_drop_case_duplicates():
    story = parse_text(story_file(topics=("Computer Vision", "computer vision", "AI", "ai", "Ai")))

    assert story.topics == ("Computer Vision", "AI")


def test_topics_single_string_and_whitespace():
    text = '---\ntitle: "T"\noriginalUrl: "https://e.com/t"\ntopics: "  Machine   Learning "\n---\n'
    assert parse_text(text).topics == ("Machine Learning",)


def test_too_many_topics_are_cut():
    story = parse_text(story_file(topics=tuple(f"Topic {i}" for i in range(40))))
    assert len(story.topics) == MAX_TOPICS
    assert story.topics[-1] == f"Topic {MAX_TOPICS - 1}"


@pytest.mark.parametrize("value", ["false", '"false"', "no", '"off"', "0"])
def test_published_false_spellings(value: str):
    text = story_file().replace("published: true", f"published: {value}")
    story = parse_text(text)

    assert isinstance(story, Story)
    assert story.published is False


def test_published_missing_means_published():
    text = story_file().replace("published: true\n", "")
    assert parse_text(text).published is True


def test_published_nonsense_is_rejected():
    text = story_file().replace("published: true", "published: maybe")
    result = parse_text(text)

    assert isinstance(result, Rejection)
    assert result.reason == "published must be true or false, got 'maybe'"


@pytest.mark.parametrize("category", ["blog", "Events", "42"])
def test_other_categories_are_skipped(category: str):
    text = story_file().replace("category: news", f"category: {category}")
    assert parse_text(text, "x.md") == Skipped("x.md", category)


@pytest.mark.parametrize("line", ["category: News", "category: ' NEWS '", ""])
def test_news_category_in_any_case_or_none_is_a_story(line: str):
    text = story_file().replace("category: news", line)
    assert isinstance(parse_text(text), Story)


@pytest.mark.parametrize(
    ("heat", "expected"), [("42", 42), ('"42"', 42), ("41.6", 42), ("-5", 0), ("1e12", MAX_HEAT)]
)
def test_heat_is_clamped_and_rounded(heat: str, expected: int):
    assert parse_text(story_file(heat=heat)).heat == expected


def test_huge_integer_heat_is_clamped_not_an_unexpected_error():
    assert parse_text(story_file(heat="9" * 400)).heat == MAX_HEAT


def test_infinite_heat_is_rejected():
    result = parse_text(story_file(heat=".inf"))
    assert result == Rejection("story.md", "heat must be a number, got inf")


def test_unreadable_dates_become_none_not_a_rejection():
    for value in ["yesterday", "9999-12-31T23:59:59-05:00", '"2021-13-45"']:
        text = story_file(published=value)
        story = parse_text(text)
        assert isinstance(story, Story), (value, story)
        assert story.published_at is None


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("2021-13-45", "malformed YAML value: month must be in 1..12"),
        ("0000-01-01", "malformed YAML value: year 0 is out of range"),
    ],
)
def test_impossible_yaml_dates_are_rejected_with_a_reason(value: str, reason: str):
    assert parse_text(story_file(published=value)) == Rejection("story.md", reason)


def test_dates_are_stored_in_utc():
    story = parse_text(story_file(published="2021-01-20T23:34:00+02:00"))
    assert story.published_at == datetime(2021, 1, 20, 21, 34, tzinfo=UTC)
    naive = parse_text(story_file(published="2021-01-20"))
    assert naive.published_at == datetime(2021, 1, 20, tzinfo=UTC)


def test_video_type():
    story = parse_text(story_file().replace("type: article", "type: VIDEO"))
    assert story.type == "video"
    assert story.is_video


def test_secured_field_is_ignored():
    plain = parse_text(story_file())
    secured = parse_text(story_file(extra='secured: "gkRFNGp8bupyncd5vyLF==;rAJMuLvK3=="\n'))
    assert plain == secured


def test_body_after_front_matter_may_hold_anything():
    text = story_file() + "\n---\nnot: [yaml\n\x07\n"
    assert isinstance(parse_text(text), Story)


# -- hostile files -----------------------------------------------------------------------

# file name → ("story", expected title) or ("rejected", a fragment of the reason)
HOSTILE_OUTCOMES: dict[str, tuple[str, str]] = {
    "empty.txt": ("rejected", "empty file"),
    "whitespace_only.txt": ("rejected", "empty file"),
    "utf8_bom.txt": ("story", "A story with a byte order mark"),
    "crlf_line_endings.txt": ("story", "A story with CRLF line endings"),
    "latin1_bytes.txt": ("rejected", "not UTF-8 text (bad byte at offset 30)"),
    "no_front_matter.txt": ("rejected", "no front matter"),
    "unclosed_front_matter.txt": ("rejected", "front matter is not closed"),
    "malformed_yaml.txt": ("rejected", "malformed YAML"),
    "python_object_tag.txt": ("rejected", "python/object/apply:os.system"),
    "alias_bomb.txt": ("rejected", "heat must be a number, got list"),
    "alias_bomb_category.txt": ("rejected", "category must be text, got list"),
    "deeply_nested.txt": ("rejected", "nest"),
    "list_front_matter.txt": ("rejected", "front matter is not a mapping"),
    "heat_hot.txt": ("rejected", "heat must be a number, got 'hot'"),
    "missing_title.txt": ("rejected", "missing title"),
    "missing_url.txt": ("rejected", "missing an http(s) originalUrl or webUrl"),
    "javascript_url.txt": ("rejected", "missing an http(s) originalUrl or webUrl"),
    "long_title_excerpt.txt": ("story", "Long Long Long"),
    "topics_wrong_type.txt": ("rejected", "topics must be a list, got dict"),
    "topics_mixed_items.txt": ("story", "Topics of mixed types"),
    "related_garbage.txt": ("story", "Related links that are garbage"),
    "title_is_a_list.txt": ("rejected", "title must be text, got list"),
    "nul_in_front_matter.txt": ("rejected", "#x0000"),
    "nul_in_body.txt": ("story", "NUL bytes only in the body"),
    "userinfo_url.txt": ("rejected", "originalUrl has a user name before '@'"),
    "userinfo_links.txt": ("story", "Links that hide their host"),
}


def test_every_hostile_file_has_an_expected_outcome():
    on_disk = {f.path for f in scan_archive(HOSTILE)}
    assert on_disk == set(HOSTILE_OUTCOMES)


@pytest.mark.parametrize(("name", "expected"), sorted(HOSTILE_OUTCOMES.items()))
def test_hostile_file(name: str, expected: tuple[str, str]):
    outcome, detail = expected
    _, result = parse_file(os.fspath(HOSTILE), name)

    if outcome == "story":
        assert isinstance(result, Story), result
        assert result.title.startswith(detail)
    else:
        assert isinstance(result, Rejection), result
        assert result.path == name
        assert detail in result.reason
        assert "\n" not in result.reason and len(result.reason) < 300
        assert not result.reason.startswith("unexpected")  # a reason, not a crash report


def test_links_that_hide_their_host_are_dropped():
    """https://discord.com@evil.example/ opens evil.example: no such link is kept."""
    _, story = parse_file(os.fspath(HOSTILE), "userinfo_links.txt")

    assert story.image_url is None and story.provider_icon is None
    assert [c.title for c in story.related] == ["Honest coverage"]
    assert story.provider == "Look-alike" and story.provider_domain == ""


@pytest.mark.parametrize(
    ("domain", "kept"),
    [
        ("example.com", "example.com"),
        ("news-site.example.co.uk", "news-site.example.co.uk"),
        ("discord.com@evil.example", ""),
        ("example.com:8080", ""),
        ("example.com/path", ""),
        ("two words.example", ""),
        ("-", ""),
    ],
)
def test_provider_domain_is_kept_only_as_a_plain_host_name(domain: str, kept: str):
    text = story_file(extra="").replace("domain: example.com", f'domain: "{domain}"')
    story = parse_story("s.md", text.encode())

    assert story.provider_domain == kept


def test_long_title_and_excerpt_are_truncated_not_rejected():
    _, story = parse_file(os.fspath(HOSTILE), "long_title_excerpt.txt")

    # Cut at a word boundary, not in the middle of a word.
    assert MAX_TITLE - 10 < len(story.title) <= MAX_TITLE
    assert story.title.endswith(" Long…")
    assert MAX_EXCERPT - 20 < len(story.excerpt) <= MAX_EXCERPT
    assert story.excerpt.endswith("…") and story.excerpt[-2].isalnum()


def test_mixed_topics_keep_the_usable_ones():
    _, story = parse_file(os.fspath(HOSTILE), "topics_mixed_items.txt")
    assert story.topics == ("42", "AI", "Computer Vision")


def test_garbage_related_entries_are_dropped():
    _, story = parse_file(os.fspath(HOSTILE), "related_garbage.txt")

    assert len(story.related) == 1
    link = story.related[0]
    assert (link.title, link.url, link.provider) == (
        "The one good link",
        "https://example.org/good",
        "Good News",
    )


def test_bom_and_crlf_files_equal_the_plain_story():
    _, bom = parse_file(os.fspath(HOSTILE), "utf8_bom.txt")
    assert bom.url == "https://example.com/bom"
    assert bom.heat == 50
    assert bom.topics == ("AI",)
    _, crlf = parse_file(os.fspath(HOSTILE), "crlf_line_endings.txt")
    assert crlf.excerpt == "About A story with CRLF line endings."


@pytest.mark.parametrize("field", ["title", "heat", "category", "published", "topics", "related"])
def test_alias_bomb_in_any_field_is_handled(field: str):
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    previous = "a"
    for name in "bcdefghi":
        lines.append(f"{name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]")
        previous = name
    text = (
        '---\ntitle: "Bomb"\noriginalUrl: "https://example.com/bomb"\n'
        + "\n".join(lines)
        + f"\n{field}: *i\n---\n"
    )
    result = parse_text(text)

    if field in ("topics", "related"):  # items of the wrong type are dropped
        assert isinstance(result, Story)
        assert result.topics == () and result.related == ()
    else:
        assert isinstance(result, Rejection)
        assert "got list" in result.reason


def test_file_over_one_megabyte_is_rejected(tmp_path: Path):
    big = story_file().encode() + b"x" * MAX_FILE_BYTES
    (tmp_path / "big.md").write_bytes(big)
    digest, result = parse_file(os.fspath(tmp_path), "big.md")

    assert result == Rejection("big.md", "file larger than 1,000,000 bytes")
    assert digest  # still hashed, so an unchanged big file is not read again


def test_file_of_exactly_the_limit_is_a_story(tmp_path: Path):
    head = story_file().encode()
    (tmp_path / "limit.md").write_bytes(head + b"x" * (MAX_FILE_BYTES - len(head)))
    _, result = parse_file(os.fspath(tmp_path), "limit.md")
    assert isinstance(result, Story)


def test_unreadable_file_is_rejected_with_a_reason(tmp_path: Path):
    digest, result = parse_file(os.fspath(tmp_path), "gone.md")
    assert digest == ""
    assert isinstance(result, Rejection)
    assert result.reason.startswith("cannot read file")


def test_parse_file_skips_an_unchanged_hash(tmp_path: Path):
    data = story_file().encode()
    (tmp_path / "a.md").write_bytes(data)

    assert parse_file(os.fspath(tmp_path), "a.md", content_hash(data)) == (
        content_hash(data),
        None,
    )
    assert isinstance(parse_file(os.fspath(tmp_path), "a.md", "other")[1], Story)


# -- properties --------------------------------------------------------------------------

RESULT_TYPES = (Story, Rejection, Skipped)


def check_result(result) -> None:
    assert isinstance(result, RESULT_TYPES)
    if isinstance(result, Rejection):
        assert result.reason and "\n" not in result.reason
    if isinstance(result, Story):
        assert result.title and len(result.title) <= MAX_TITLE
        assert result.url.lower().startswith(("http://", "https://"))
        assert SHORT_ID.match(result.id)
        assert result.id == short_id(result.canonical)
        assert 0 <= result.heat <= MAX_HEAT
        assert len(result.topics) <= MAX_TOPICS
        assert len({t.casefold() for t in result.topics}) == len(result.topics)
        assert result.published_at is None or result.published_at.tzinfo is not None


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2_000))
def test_arbitrary_bytes_never_raise(data: bytes):
    check_result(parse_story("fuzz.md", data))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=1_000))
def test_arbitrary_bytes_inside_front_matter_never_raise(data: bytes):
    check_result(parse_story("fuzz.md", b"---\n" + data + b"\n---\n"))


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="-:[]{}&*!|>'\"#%@`?,\n\t abc123\r\x00\ufeff", max_size=300))
def test_yaml_punctuation_never_raises(text: str):
    check_result(parse_story("fuzz.md", ("---\n" + text + "\n---\n").encode()))


SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=40)
    | st.dates()
    | st.datetimes()
    | st.sampled_from(["https://example.com/x", "javascript:alert(1)", "news", "false", "hot"])
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=12,
)
FIELDS = [
    "category",
    "title",
    "excerpt",
    "publishedDateTime",
    "originalUrl",
    "webUrl",
    "type",
    "quality",
    "heat",
    "published",
    "provider",
    "topics",
    "images",
    "related",
]


@st.composite
def front_matter(draw) -> dict:
    meta = {}
    for name in draw(st.lists(st.sampled_from(FIELDS), unique=True)):
        meta[name] = draw(VALUES)
    if draw(st.booleans()):  # often a valid core, so the other fields get exercised
        meta["title"] = draw(st.text(min_size=1, max_size=60))
        meta["originalUrl"] = draw(
            st.sampled_from(["https://example.com/a", "http://EXAMPLE.com/b/?utm_source=x"])
        )
    return meta


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(front_matter())
def test_random_front_matter_never_raises(meta: dict):
    text = "---\n" + yaml.safe_dump(meta, allow_unicode=True) + "---\nbody\n"
    result = parse_story("fuzz.md", text.encode("utf-8", "surrogatepass"))
    check_result(result)
    if isinstance(result, Skipped):
        assert str(meta.get("category", "")).strip().lower() != "news"


# -- scanning ------------------------------------------------------------------------------


def test_scan_skips_hidden_folders_and_other_suffixes(archive: Path):
    for rel in [
        "a.md",
        "b.markdown",
        "c.txt",
        "D.MD",
        "sub/deeper/e.md",
        ".git/objects/f.md",
        ".hidden.md",
        "sub/.cache/g.md",
        "_data/topics/ai.yaml",
        "notes.rst",
        "image.png",
        "README",
    ]:
        path = archive / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(story_file())

    assert [f.path for f in scan_archive(archive)] == [
        "D.MD",
        "a.md",
        "b.markdown",
        "c.txt",
        "sub/deeper/e.md",
    ]


def test_the_walk_yields_paths_in_the_order_of_the_database(archive: Path):
    names = ["a-b.md", "a.md", "a/x.md", "a/y/z.md", "a0.md", "ab/c.md", "b.md", "é.md", "Z.md"]
    for name in names:
        (archive / name).parent.mkdir(parents=True, exist_ok=True)
        (archive / name).write_text(story_file())

    groups = list(walk_stamps(archive, group=2))

    paths = [path for group in groups for path, _, _ in group]
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE files (path TEXT PRIMARY KEY) WITHOUT ROWID")
    conn.executemany("INSERT INTO files VALUES (?)", [(name,) for name in names])
    assert paths == [path for (path,) in conn.execute("SELECT path FROM files ORDER BY path")]
    assert all(len(group) >= 2 for group in groups[:-1])


def test_scan_reports_size_and_mtime(archive: Path):
    (archive / "a.md").write_text("hello")
    os.utime(archive / "a.md", ns=(1_000_000_000, 2_000_000_000))
    (found,) = scan_archive(archive)
    assert (found.path, found.size, found.mtime_ns) == ("a.md", 5, 2_000_000_000)


def test_scan_survives_a_directory_symlink_cycle(archive: Path, tmp_path: Path):
    (archive / "sub").mkdir()
    (archive / "sub" / "a.md").write_text(story_file())
    (archive / "sub" / "loop").symlink_to(archive, target_is_directory=True)
    (archive / "alias").symlink_to(archive / "sub", target_is_directory=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "b.md").write_text(story_file(url="https://example.com/b"))
    (archive / "linked").symlink_to(outside, target_is_directory=True)

    paths = [f.path for f in scan_archive(archive)]

    # Each real folder is walked once (under the first name met); the cycle back to the
    # root is not followed, nor is the link to a folder outside the archive.
    assert paths == ["alias/a.md"]


def test_scan_never_follows_links_out_of_the_archive(archive: Path, tmp_path: Path, caplog):
    (archive / "a.md").write_text(story_file())
    (archive / "machine").symlink_to("/", target_is_directory=True)
    (archive / "passwd.md").symlink_to("/etc/passwd")
    (archive / "inside.md").symlink_to(archive / "a.md")

    with caplog.at_level(logging.WARNING, logger="core.archive"):
        paths = [f.path for f in scan_archive(archive)]

    assert paths == ["a.md", "inside.md"]  # a link that stays inside is a story file
    warnings = caplog.text
    assert "not following machine: it links outside the archive" in warnings
    assert "not following passwd.md: it links outside the archive" in warnings


def test_a_link_swapped_in_after_the_scan_is_not_read(archive: Path, tmp_path: Path):
    secret = tmp_path / "secret.md"
    secret.write_text(story_file(title="Not for the archive"))
    (archive / "a.md").symlink_to(secret)
    _, result = parse_file(os.fspath(archive), "a.md")
    assert result == Rejection("a.md", "links to a file outside the archive")
    (archive / "b.md").write_text(story_file(title="Inside"))
    (archive / "c.md").symlink_to(archive / "b.md")
    assert parse_file(os.fspath(archive), "c.md")[1].title == "Inside"


def test_a_fifo_is_a_candidate_so_that_reading_rejects_it(archive: Path):
    # Reading it is tested in a subprocess with a time limit (test_ingest.py): a
    # regression there would block.
    os.mkfifo(archive / "pipe.md")
    assert [f.path for f in scan_archive(archive)] == ["pipe.md"]


def test_scan_of_a_missing_folder_fails_instead_of_emptying_the_archive(tmp_path: Path):
    with pytest.raises(ArchiveUnreadable, match=r"cannot read the archive folder .*nope"):
        list(scan_archive(tmp_path / "nope"))
