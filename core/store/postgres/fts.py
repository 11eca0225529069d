"""Full-text search on PostgreSQL with exactly the terms of the SQLite index.

The SQLite index tokenizes with FTS5's `porter unicode61 remove_diacritics 2`. Here the
same tokenizer (SQLite's own, in a private in-memory database, as `index_terms` does)
turns each story into its terms, which become a weighted `tsvector` (title A, excerpt B,
topics C, provider D); queries are made of the same terms under the `simple`
configuration (no further stemming, no stop words). Both backends thus find the same
set of stories for every query, which PostgreSQL's `english` configuration (Porter2
stemming, its own stop words, its own parser) would not quite do.
"""

from __future__ import annotations

import math
import sqlite3
import threading
from collections.abc import Iterable

from core.store.stories import TOKENIZER, index_terms, query_words

COLUMN_WEIGHTS = ("A", "B", "C", "D")  # title, excerpt, topics_text, provider_name
# ts_rank's weights {D, C, B, A}: FTS5's bm25 weights 10, 4, 3, 2 (title … provider).
RANK_WEIGHTS = "'{0.2, 0.3, 0.4, 1.0}'"
_MAX_POSITION = 16383  # tsvector positions stop there
_COLUMN_SPAN = 4000  # positions of one column start past the previous one's

# bot_state keys: the stories and tokens the index holds, counted by each ingest that
# changed it (`PostgresArchiveWriter.count_terms`).
SIZE_KEYS = ("fts:stories", "fts:tokens")

_lock = threading.Lock()
_conn: sqlite3.Connection | None = None


def document_vectors(rows: list[tuple[str, str, str, str]]) -> list[tuple[str, int]]:
    """The `tsvector` literal of each (title, excerpt, topics_text, provider_name), and
    how many tokens it holds (bm25's document length)."""
    global _conn
    with _lock:
        if _conn is None:
            _conn = sqlite3.connect(":memory:", check_same_thread=False)
            _conn.execute(
                "CREATE VIRTUAL TABLE docs USING fts5"
                f" (title, excerpt, topics_text, provider_name, tokenize = '{TOKENIZER}')"
            )
            _conn.execute("CREATE VIRTUAL TABLE terms USING fts5vocab (docs, 'instance')")
        conn = _conn
        conn.execute("BEGIN")
        try:
            conn.executemany(
                "INSERT INTO docs (rowid, title, excerpt, topics_text, provider_name)"
                " VALUES (?, ?, ?, ?, ?)",
                [(i, *row) for i, row in enumerate(rows, start=1)],
            )
            found = conn.execute(
                "SELECT doc, term, col, offset FROM terms ORDER BY doc, term, col, offset"
            ).fetchall()
        finally:
            conn.execute("ROLLBACK")  # nothing is kept: the table stays empty
    columns = {"title": 0, "excerpt": 1, "topics_text": 2, "provider_name": 3}
    positions: list[dict[str, list[str]]] = [{} for _ in rows]
    tokens = [0] * len(rows)
    for doc, term, col, offset in found:
        tokens[doc - 1] += 1
        index = columns[col]
        at = min(_MAX_POSITION, index * _COLUMN_SPAN + offset + 1)
        positions[doc - 1].setdefault(term, []).append(f"{at}{COLUMN_WEIGHTS[index]}")
    return [
        (" ".join(f"'{_escape(term)}':{','.join(at)}" for term, at in terms.items()), count)
        for terms, count in zip(positions, tokens, strict=True)
    ]


def search_terms(text: str) -> str:
    """The index terms of a query's words, for `plainto_tsquery('simple', …)` (all required)."""
    words = query_words(text)
    return words_terms(words)


def words_terms(words: list[str]) -> str:
    stems = index_terms(words)
    return " ".join(t for w in words for t in stems[w])


def prefix_query(text: str) -> str:
    """Autocomplete over titles: every word's terms as prefixes, for `to_tsquery('simple', …)`.

    Made only of index terms (letters and digits, quoted): no operator of the user's
    can reach the parser.
    """
    words = query_words(text)
    stems = index_terms(words)
    terms = [t for w in words for t in stems[w]]
    return " & ".join(f"'{_escape(t)}':*A" for t in terms)


def any_of(terms: list[str]) -> str:
    """Terms any of which may match, for `to_tsquery('simple', …)` (quoted: plain terms)."""
    return " | ".join(f"'{_escape(t)}'" for t in terms)


def _escape(term: str) -> str:
    return term.replace("\\", "\\\\").replace("'", "''")


_WEIGHT_COLUMN = {"A": 0, "B": 1, "C": 2, "D": 3}
BM25_K1 = 1.2
BM25_B = 0.75


class Bm25:
    """FTS5's bm25() (fts5_aux.c), from the same numbers: PostgreSQL ranks search results
    exactly as SQLite does. Lower is better (negative), as in SQLite.

    `rows` and `tokens` count every story of the index; `docs` is each query term's
    number of stories; `weights` those of the four columns.
    """

    def __init__(
        self,
        rows: int,
        tokens: int,
        docs: dict[str, int],
        weights: tuple[float, float, float, float],
    ) -> None:
        self.average = tokens / rows if rows else 1.0
        self.weights = weights
        self.idf = {}
        for term, n in docs.items():
            idf = math.log((rows - n + 0.5) / (n + 0.5))
            self.idf[term] = idf if idf > 0 else 1e-6

    def __call__(self, length: int, hits: Iterable[str]) -> float:
        """The score of a story of `length` tokens whose query terms are `hits`:
        "term WEIGHTS", one letter (A-D: the column) per occurrence."""
        found = dict.fromkeys(self.idf, 0.0)
        for hit in hits:
            term, _, letters = hit.rpartition(" ")
            if term in found:
                found[term] += sum(self.weights[_WEIGHT_COLUMN[w]] for w in letters)
        score = 0.0
        norm = BM25_K1 * (1 - BM25_B + BM25_B * length / self.average)
        for term, f in found.items():
            score += self.idf[term] * f * (BM25_K1 + 1) / (f + norm)
        return -score
