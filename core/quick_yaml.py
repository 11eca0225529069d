"""A fast path for the regular front matter the archive uses, with YAML as the fallback.

`load` understands a deliberately small subset of YAML: block mappings whose
keys are plain identifiers, block sequences (`- item`, `- key: value`), and
one-line scalars (double- or single-quoted, or plain words, decimal integers,
booleans, nulls and `YYYY-MM-DD[THH:MM:SSZ]` dates). It builds exactly the
objects PyYAML's SafeLoader would build for that subset, and returns None for
anything else (comments, tabs, anchors, tags, flow collections, multi-line or
escaped scalars, floats, unusual characters, unexpected indentation…) so that
the caller hands the text to PyYAML. Hostile YAML therefore always reaches
PyYAML and behaves exactly as before; `tests/test_quick_yaml.py` compares the
two on the whole corpus, the benchmark archive and generated inputs.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

# Characters YAML reads as plain text: no tabs, control characters, C1 controls,
# BOM, or the Unicode line breaks (NEL, LS, PS) that YAML 1.1 treats as newlines.
_UNUSUAL = re.compile(
    "[^\n\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]"
)
_KEY = re.compile(r"([A-Za-z][A-Za-z0-9_]*):(?: +(.*))?$")
# Possessive: a long unclosed string fails in linear time.
_DOUBLE = re.compile(r'"((?:[^"\\]++|\\["\\])*+)"$')
_SINGLE = re.compile(r"'((?:[^']++|'')*+)'$")
_INT = re.compile(r"(?:0|[1-9][0-9]{0,17})$")
_STAMP = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})Z$")
_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})$")
# What PyYAML's resolver turns into booleans and nulls; words it treats as text otherwise.
_BOOLS = {
    **dict.fromkeys(("yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"), True),
    **dict.fromkeys(("no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"), False),
}
_NULLS = frozenset(("null", "Null", "NULL"))
_FIRST_LETTER = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_FIRST_DIGIT = frozenset("0123456789")


class _Unsupported(Exception):
    """The text uses YAML this fast path does not handle: use PyYAML."""


def load(text: str) -> dict[str, Any] | None:
    """The mapping PyYAML would load from `text`, or None when PyYAML must decide."""
    if text.isascii():
        if not text.replace("\n", "").isprintable():  # ASCII controls, tabs, DEL
            return None
    elif _UNUSUAL.search(text):
        return None
    lines = []
    for raw in text.split("\n"):
        line = raw.rstrip(" ")
        if not line:
            continue
        content = line.lstrip(" ")
        lines.append((len(line) - len(content), content))
    if not lines or lines[0][0] != 0:
        return None
    try:
        meta, end = _mapping(lines, 0, 0)
    except _Unsupported:
        return None
    return meta if end == len(lines) else None


def _mapping(lines: list[tuple[int, str]], i: int, indent: int) -> tuple[dict[str, Any], int]:
    out: dict[str, Any] = {}
    n = len(lines)
    while i < n:
        ind, content = lines[i]
        if ind < indent:
            break
        if ind > indent:
            raise _Unsupported
        match = _KEY.match(content)
        if match is None:
            raise _Unsupported
        key, raw = match.group(1, 2)
        if key in _BOOLS or key in _NULLS:
            raise _Unsupported
        i += 1
        if raw:
            out[key] = _scalar(raw)
        elif i < n and lines[i][0] > indent:
            out[key], i = _block(lines, i)
        elif i < n and lines[i][0] == indent and lines[i][1][0] == "-":
            raise _Unsupported  # a sequence at the key's own indentation
        else:
            out[key] = None
    return out, i


def _block(lines: list[tuple[int, str]], i: int) -> tuple[Any, int]:
    if lines[i][1][0] == "-":
        return _sequence(lines, i, lines[i][0])
    return _mapping(lines, i, lines[i][0])


def _sequence(lines: list[tuple[int, str]], i: int, indent: int) -> tuple[list[Any], int]:
    out: list[Any] = []
    n = len(lines)
    while i < n:
        ind, content = lines[i]
        if ind < indent:
            break
        if ind > indent or not content.startswith("- "):
            raise _Unsupported
        rest = content[2:].lstrip(" ")
        if _KEY.match(rest):  # `- key: value` starts a mapping one level in
            lines[i] = (indent + len(content) - len(rest), rest)
            item, i = _mapping(lines, i, lines[i][0])
            out.append(item)
            continue
        out.append(_scalar(rest))
        i += 1
    return out, i


def _scalar(raw: str) -> Any:
    first = raw[0]
    if first == '"':
        value = raw[1:-1]
        if raw[-1] == '"' and len(raw) > 1 and "\\" not in value and '"' not in value:
            return value
        match = _DOUBLE.match(raw)
        if match is None:
            raise _Unsupported
        return _unescape(match.group(1))
    if first == "'":
        match = _SINGLE.match(raw)
        if match is None:
            raise _Unsupported
        return match.group(1).replace("''", "'")
    if first in _FIRST_LETTER:
        if ": " in raw or " #" in raw or raw[-1] == ":":
            raise _Unsupported
        if raw in _BOOLS:
            return _BOOLS[raw]
        if raw in _NULLS:
            return None
        return raw
    if first in _FIRST_DIGIT:
        if _INT.match(raw):
            return int(raw)
        match = _STAMP.match(raw)
        if match:
            try:
                year, month, day, hour, minute, second = map(int, match.groups())
                return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
            except ValueError:
                raise _Unsupported from None
        match = _DATE.match(raw)
        if match:
            try:
                return date(*map(int, match.groups()))
            except ValueError:
                raise _Unsupported from None
    raise _Unsupported


def _unescape(value: str) -> str:
    out = []
    i = 0
    while True:
        j = value.find("\\", i)
        if j < 0:
            out.append(value[i:])
            return "".join(out)
        out.append(value[i:j])
        out.append(value[j + 1])  # only \" and \\ pass the _DOUBLE pattern
        i = j + 2
