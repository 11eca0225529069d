"""The fast front-matter path must give exactly what PyYAML gives, or defer to it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core import archive, quick_yaml
from core.archive import parse_story, scan_archive

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus" / "power-apps" / "_news"
HOSTILE = ROOT / "tests" / "hostile"
SEEDS = ROOT / "seeds"


def _front_matter_source(data: bytes) -> str | None:
    try:
        text = data.decode("utf-8-sig").replace("\r\n", "\n").replace("\r", "\n")
    except UnicodeDecodeError:
        return None
    opening = archive._OPENING.match(text)
    if opening is None:
        return None
    closing = archive._CLOSING.search(text, opening.end())
    if closing is None:
        return None
    return text[opening.end() : max(opening.end(), closing.start() - 1)]


def _yaml_only(monkeypatch: pytest.MonkeyPatch, path: str, data: bytes):
    with monkeypatch.context() as m:
        m.setattr(quick_yaml, "load", lambda text: None)
        return parse_story(path, data)


def _check_file(monkeypatch: pytest.MonkeyPatch, path: str, data: bytes) -> bool:
    """Same Story / Rejection / Skipped (related links included) both ways; True if fast."""
    fast = parse_story(path, data)
    slow = _yaml_only(monkeypatch, path, data)
    assert repr(fast) == repr(slow), path
    source = _front_matter_source(data)
    if source is None:
        return False
    meta = quick_yaml.load(source)
    if meta is not None:
        assert meta == yaml.load(source, Loader=yaml.CSafeLoader), path
    return meta is not None


def _files(root: Path):
    for f in scan_archive(root):
        yield f.path, (root / f.path).read_bytes()


@pytest.mark.skipif(not CORPUS.is_dir(), reason="shared corpus not present")
def test_whole_corpus_fast_path_equals_yaml(monkeypatch):
    fast = [_check_file(monkeypatch, path, data) for path, data in _files(CORPUS)]
    assert len(fast) > 150 and sum(fast) > len(fast) * 0.8  # the fast path does apply


def test_seed_and_hostile_files_fast_path_equals_yaml(monkeypatch):
    for root in (SEEDS, HOSTILE):
        for path, data in _files(root):
            _check_file(monkeypatch, path, data)


def test_generated_bench_archive_fast_path_equals_yaml(monkeypatch):
    sys.path.insert(0, os.fspath(ROOT / "bench"))
    try:
        from generate import Generator
    finally:
        sys.path.remove(os.fspath(ROOT / "bench"))
    gen = Generator(seed=7)
    fast = [_check_file(monkeypatch, *gen.story(i, 400)) for i in range(400)]
    assert all(fast)


# Pieces of front matter, plain and tricky: PyYAML decides whenever the fast path is unsure.
_VALUES = [
    "plain words",
    "Microsoft",
    "true",
    "False",
    "yes",
    "off",
    "null",
    "Null",
    "~",
    "",
    "0",
    "010",
    "42",
    "-5",
    "1.5",
    "1e3",
    "1_000",
    "12:30",
    ".inf",
    "2019-03-01",
    "2019-13-01",
    "2019-03-01T08:59:00Z",
    "2019-03-01T08:59:00.5Z",
    "2019-02-30T08:59:00Z",
    "2019-03-01 08:59:00",
    '"quoted"',
    '"with \\" escape"',
    '"with \\\\ backslash"',
    '"tab\\tescape"',
    '"unclosed',
    '"a" trailing',
    "'single'",
    "'it''s'",
    "'bad'quote'",
    "a: b",
    "a #comment",
    "a#b",
    "ends:",
    "http://example.com/a?b=c",
    "&anchor x",
    "*alias",
    "!!python/object:os.system",
    "[a, b]",
    "{a: b}",
    "| block",
    "> folded",
    "@at",
    "`tick`",
    "%pct",
    "- item",
    "é ünïcödé",
    "nbsp\u00a0x",
    "line\u2028sep",
    "nel\x85x",
    "bom\ufeffx",
    "ctrl\x07x",
    "tab\tx",
]
_KEYS = ["title", "heat", "on", "null", "1", "a b", "key_2", "<<", "x-y"]


@st.composite
def _documents(draw) -> str:
    lines = []
    for _ in range(draw(st.integers(1, 6))):
        key = draw(st.sampled_from(_KEYS))
        shape = draw(st.sampled_from(["scalar", "list", "map", "maplist", "raw"]))
        indent = " " * draw(st.sampled_from([2, 2, 4, 0, 1]))
        if shape == "scalar":
            lines.append(f"{key}: {draw(st.sampled_from(_VALUES))}")
        elif shape == "list":
            lines.append(f"{key}:")
            for _ in range(draw(st.integers(0, 3))):
                lines.append(f"{indent}- {draw(st.sampled_from(_VALUES))}")
        elif shape == "map":
            lines.append(f"{key}:")
            for _ in range(draw(st.integers(0, 3))):
                sub = draw(st.sampled_from(_KEYS))
                lines.append(f"{indent}{sub}: {draw(st.sampled_from(_VALUES))}")
        elif shape == "maplist":
            lines.append(f"{key}:")
            for _ in range(draw(st.integers(1, 2))):
                lines.append(f"{indent}- url: {draw(st.sampled_from(_VALUES))}")
                lines.append(f"{indent}  width: {draw(st.sampled_from(_VALUES))}")
        else:
            lines.append(draw(st.text(max_size=20)))
        if draw(st.booleans()):
            lines.append(draw(st.sampled_from(["", "   ", "# comment", "  more", "\t"])))
    return "\n".join(lines)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_documents())
def test_generated_front_matter_fast_path_equals_yaml(text: str):
    meta = quick_yaml.load(text)
    if meta is None:
        return
    assert meta == yaml.load(text, Loader=yaml.CSafeLoader)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_fast_path_equals_yaml_or_defers(text: str):
    meta = quick_yaml.load(text)
    if meta is not None:
        assert meta == yaml.load(text, Loader=yaml.CSafeLoader)


def _old_split(text: str) -> str | None:
    """The front matter split as it was before it stopped at the closing line."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    start = 0
    while start < len(lines) and not lines[start].strip():
        start += 1
    if start == len(lines) or lines[start].rstrip() != "---":
        return None
    for end in range(start + 1, len(lines)):
        if lines[end].rstrip() in ("---", "..."):
            return "\n".join(lines[start + 1 : end])
    return None


@settings(max_examples=500, deadline=None)
@given(
    st.lists(
        st.sampled_from(["", " ", "\t", "\x0c", "---", "--- ", " ---", "...", "a: 1", "---x"]),
        max_size=8,
    ).map("\n".join)
    | st.text(alphabet="-.\n\r a\t\x0c\u2028", max_size=30)
)
def test_front_matter_split_is_unchanged(text: str):
    old = _old_split(text)
    try:
        new = _front_matter_source(text.encode())
    except Exception:  # pragma: no cover
        new = "raised"
    assert new == old
