"""The SQLite store's statements, spelled for PostgreSQL.

The PostgreSQL store runs the same query families as the SQLite one (`StoryQueries`,
`SubscriptionQueries`, `PinQueries`, the archive writer): one place holds each query,
and the tests run every one of them on both backends. Their SQL is portable but for a
few spellings, translated here once per distinct statement (cached):

- `?` and `?N` placeholders become `$N`;
- `INSERT OR IGNORE` becomes `INSERT … ON CONFLICT DO NOTHING`;
- ORDER BY keys say where NULLs go as SQLite puts them (first ascending, last
  descending; PostgreSQL does the opposite by default), so both list stories in the
  same order when some have no publication date;
- `REWRITES`: the few fragments PostgreSQL spells otherwise or needs a type for.

What cannot be translated (full-text search: FTS5 tables and bm25) is written again
in `core.store.postgres.queries`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator

# Fragments of the SQLite store's SQL, as written there, and their PostgreSQL spelling.
# A fragment that no longer matches (its query was edited) leaves the query untranslated:
# the PostgreSQL run of the store tests then fails on it, pointing here.
REWRITES: dict[str, str] = {
    "BEGIN IMMEDIATE": "BEGIN",
    # `IS` compares with NULL as a value; PostgreSQL spells that IS NOT DISTINCT FROM.
    "k.kind IS 'feed'": "k.kind IS NOT DISTINCT FROM 'feed'",
    # Two-argument max() is SQLite's scalar maximum.
    "max(live_stopped, ?)": "greatest(live_stopped, ?)",
    # A parameter compared only with NULL has no type PostgreSQL could infer.
    "(? IS NULL OR d.channel_id = ?)": "(?::bigint IS NULL OR d.channel_id = ?)",
    "(?2 IS NULL OR s.id = ?2)": "(?2::text IS NULL OR s.id = ?2)",
    # A parameter in a SELECT list is text unless typed.
    "SELECT ?, rowid, ?, ?, ? FROM stories WHERE id = ?": (
        "SELECT ?::bigint, rowid, ?::bigint, ?::text, ?::bigint FROM stories WHERE id = ?"
    ),
    "SELECT ?, rowid, ?, 1 FROM stories WHERE id = ?": (
        "SELECT ?::bigint, rowid, ?::bigint, 1 FROM stories WHERE id = ?"
    ),
    "SELECT ?, ?, ?, rowid, ?, ? FROM stories WHERE id = ?": (
        "SELECT ?::bigint, ?::bigint, ?::bigint, rowid, ?::bigint, ?::bigint FROM stories"
        " WHERE id = ?"
    ),
    "THEN 0 ELSE 1 END, ?": "THEN 0 ELSE 1 END, ?::bigint",
    "SELECT sub.channel_id, ?, sub.guild_id, ?, ?": (
        "SELECT sub.channel_id, ?::bigint, sub.guild_id, ?::text, ?::bigint"
    ),
    "SELECT sub.id, s.rowid, ?": "SELECT sub.id, s.rowid, ?::bigint",
    # SQLite lets WHERE name a column of the SELECT list; PostgreSQL does not.
    "OR now_coverage > d.shown_coverage": (
        "OR (SELECT count(*) FROM coverage c WHERE c.story = d.story) > d.shown_coverage"
    ),
    # JSON arrays of strings: SQLite's json_each, PostgreSQL's json_array_elements_text.
    "SELECT value FROM json_each(?)": "SELECT value FROM json_array_elements_text(?::json) value",
}

_PLACEHOLDER = re.compile(r"\?(\d*)|'(?:[^']|'')*'")
_INSERT_OR_IGNORE = re.compile(r"\bINSERT OR IGNORE INTO\b", re.IGNORECASE)
_ORDER_BY = re.compile(r"\bORDER BY\b")
_CLAUSE_END = re.compile(r"\b(LIMIT|OFFSET)\b")


@functools.lru_cache(maxsize=1024)
def to_postgres(query: str) -> str:
    """A statement of the SQLite store as PostgreSQL runs it (see the module's notes)."""
    for sqlite, postgres in REWRITES.items():
        query = query.replace(sqlite, postgres)
    if _INSERT_OR_IGNORE.search(query):
        query = _INSERT_OR_IGNORE.sub("INSERT INTO", query).rstrip().rstrip(";")
        query += " ON CONFLICT DO NOTHING"
    return _numbered(_with_sqlite_nulls(query))


def _with_sqlite_nulls(query: str) -> str:
    """Every ORDER BY clause's keys with SQLite's NULL placement."""
    out, at = [], 0
    for match in _ORDER_BY.finditer(query):
        if match.start() < at:
            continue
        start = match.end()
        end = _clause_end(query, start)
        out += [query[at:start], _nulls_as_sqlite(query[start:end])]
        at = end
    out.append(query[at:])
    return "".join(out)


def _clause_end(query: str, start: int) -> int:
    """Where an ORDER BY clause starting at `start` ends: LIMIT, OFFSET, the parenthesis
    closing its subquery, or the end of the statement."""
    for i in _top_level(query, start):
        if query[i] == ")" or (_CLAUSE_END.match(query, i) and not query[i - 1].isalnum()):
            return i
    return len(query)


def _top_level(text: str, start: int = 0) -> Iterator[int]:
    """The positions in `text` from `start` that are outside string literals and
    parentheses, and that of a `)` closing a parenthesis opened before `start`."""
    depth, quoted = 0, False
    for i in range(start, len(text)):
        char = text[i]
        if char == "'":
            quoted = not quoted
        elif quoted:
            continue
        elif char == "(":
            depth += 1
        elif char == ")" and depth:
            depth -= 1
        elif depth == 0:
            yield i


def _numbered(query: str) -> str:
    """`?` and `?N` as `$N`, as SQLite numbers them (a bare `?` is one more than the
    highest number so far); string literals are left alone."""
    highest = 0

    def number(match: re.Match[str]) -> str:
        nonlocal highest
        if match.group(0).startswith("'"):
            return match.group(0)
        n = int(match.group(1)) if match.group(1) else highest + 1
        highest = max(highest, n)
        return f"${n}"

    return _PLACEHOLDER.sub(number, query)


def _nulls_as_sqlite(keys: str) -> str:
    """ORDER BY keys with SQLite's NULL placement: first ascending, last descending."""
    out = []
    for key in _split_top_level(keys):
        stripped = key.rstrip()
        trail = key[len(stripped) :]
        upper = stripped.upper()
        if "NULLS " in upper:
            out.append(key)
        elif upper.endswith(" DESC"):
            out.append(f"{stripped} NULLS LAST{trail}")
        else:
            out.append(f"{stripped} NULLS FIRST{trail}")
    return ",".join(out)


def _split_top_level(text: str) -> list[str]:
    """`text` split at the commas outside parentheses and string literals."""
    parts, begin = [], 0
    for i in _top_level(text):
        if text[i] == ",":
            parts.append(text[begin:i])
            begin = i + 1
    parts.append(text[begin:])
    return parts
