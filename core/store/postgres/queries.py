"""The story queries PostgreSQL answers its own way: full-text search and related stories.

Everything else of `StoryQueries` runs as written for SQLite (see dialect.py). These
mirror their SQLite versions step by step (the same cap on ranked matches, the same
words left out, the same orders), over `stories.fts` instead of FTS5 (see fts.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from core.models import Page, Story
from core.store import stories as sqlite_side  # its settings, read at each call
from core.store.postgres import fts
from core.store.postgres.base import PostgresBase
from core.store.stories import (
    SHORT_ID,
    VISIBLE,
    StoryQueries,
    index_terms,
    query_words,
    story_from_row,
)

# ts_rank with the column weights of bm25 (fts.RANK_WEIGHTS), lifted by heat as SQLite's
# SEARCH_RANK is; ties go to the hotter, then the newer story.
SEARCH_RANK = (
    f"ts_rank({fts.RANK_WEIGHTS}, s.fts, q) * (1.0 + least(s.heat, 1000) / 250.0) DESC,"
    " s.heat DESC, s.rowid DESC"
)
SEARCH_WEIGHTS = (10.0, 4.0, 3.0, 2.0)  # SQLite's SEARCH_RANK: title, excerpt, topics, provider
SEARCH_FROM = "stories s CROSS JOIN plainto_tsquery('simple', ?) q"
# For words in few stories: their matches first (the GIN index), then the other
# conditions and the order. `OFFSET 0` keeps the planner from walking an ordered index
# of all stories instead, hoping to meet enough matches early (it cannot know how rare
# a word is; term_stats does).
SEARCH_FROM_RARE = (
    "plainto_tsquery('simple', ?) q"
    " CROSS JOIN LATERAL (SELECT * FROM stories WHERE fts @@ q OFFSET 0) s"
)
# Up to this many stories with the rarest word, its matches are gathered first;
# above, the newest stories are walked until enough match (as FTS5 does).
RARE_MATCHES = 10_000


class PostgresStoryQueries(StoryQueries, PostgresBase):
    async def search(
        self,
        text: str,
        topic: str | None = None,
        sort: str = "relevance",
        *,
        min_heat: int | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 10,
        offset: int = 0,
    ) -> Page:
        """As SQLite's `search`: every word's terms required, the newest SEARCH_CAP
        matches ranked when there are more."""
        words = query_words(text)
        if not words:
            return await self.stories(
                topic, sort, min_heat=min_heat, since=since, until=until, limit=limit, offset=offset
            )
        words, _terms, at_most, _together = await self._search_words(words)
        source = SEARCH_FROM_RARE if at_most <= RARE_MATCHES else SEARCH_FROM
        where = ["s.fts @@ q", VISIBLE]
        params: list[object] = [fts.words_terms(words)]
        if topic is not None:
            topic_id = await self._topic_id(topic)
            if topic_id is None:
                return Page([], 0, offset, limit)
            where.append(
                "EXISTS (SELECT 1 FROM story_topics st"
                " WHERE st.story = s.rowid AND st.topic = ? AND st.visible = 1)"
            )
            params.append(topic_id)
        self._date_filters(where, params, min_heat, since, until)
        counted = await self._row(
            f"""SELECT count(*) AS total, min(r) AS oldest FROM (
                SELECT s.rowid AS r FROM {source}
                WHERE {" AND ".join(where)} ORDER BY s.rowid DESC LIMIT ?) found""",
            (*params, sqlite_side.SEARCH_CAP + 1),
        )
        assert counted is not None  # an aggregate always has its row
        total, oldest = counted["total"], counted["oldest"]
        estimate = total > sqlite_side.SEARCH_CAP
        if estimate:
            where.append("s.rowid > ?")
            params.append(oldest)
            total = sqlite_side.SEARCH_CAP
        if sort in ("hot", "new"):
            order = {
                "hot": "s.heat DESC, s.published_at DESC, s.rowid DESC",
                "new": "s.published_at DESC, s.rowid DESC",
            }[sort]
            query = f"""
                SELECT {sqlite_side.STORY_COLUMNS} FROM {source}
                LEFT JOIN providers p ON p.id = s.provider_id
                WHERE {" AND ".join(where)} ORDER BY {order} LIMIT ? OFFSET ?
            """
            rows = await self._rows(query, (*params, limit, offset))
            return Page([story_from_row(r) for r in rows], total, offset, limit, estimate)
        # Relevance: SQLite's bm25, computed here over the (at most SEARCH_CAP) matches.
        terms = str(params[0]).split()
        # Of each match only what bm25 needs: its length and the query terms' weights.
        matches = await self._rows(
            f"""SELECT s.rowid, s.heat, s.fts_tokens AS tokens, (
                    SELECT array_agg(u.lexeme || ' ' || array_to_string(u.weights, ''))
                    FROM unnest(s.fts) u WHERE u.lexeme = any(?::text[])
                ) AS hits
                FROM {source} WHERE {" AND ".join(where)}""",
            (terms, *params),
        )
        ranked = await self._bm25_order(matches, terms)
        wanted = ranked[offset : offset + limit]
        rows = await self._rows(
            f"SELECT {sqlite_side.STORY_COLUMNS} FROM {sqlite_side.STORY_FROM}"
            " WHERE s.rowid = any(?::bigint[])",
            (wanted,),
        )
        by_rowid = {row["story_rowid"]: row for row in rows}
        stories = [story_from_row(by_rowid[r]) for r in wanted if r in by_rowid]
        return Page(stories, total, offset, limit, estimate)

    async def _bm25_order(self, matches: list[Any], terms: list[str]) -> list[int]:
        """Rowids of `matches` (rowid, heat, fts) in SQLite's relevance order: FTS5's
        bm25 with the column weights of SEARCH_RANK, lifted by heat the same way."""
        if not matches:
            return []
        rows, tokens = await self._index_size()
        found = await self._pg_rows(
            "SELECT term, doc FROM term_stats WHERE term = any($1::text[])", terms
        )
        docs = {row["term"]: row["doc"] for row in found}
        missing = [t for t in terms if t not in docs]
        if missing:
            docs.update(await self._term_docs(missing))
        score = fts.Bm25(rows, tokens, {t: docs.get(t, 0) for t in terms}, SEARCH_WEIGHTS)
        ranked = sorted(
            (
                score(match["tokens"], match["hits"] or ())
                * (1.0 + min(match["heat"], 1000) / 250.0),
                match["rowid"],
            )
            for match in matches
        )
        return [rowid for _, rowid in ranked]

    async def _index_size(self) -> tuple[int, int]:
        """Stories and tokens in the full-text index (bm25's N and average length), as the
        last ingest counted them; counted now if none has yet."""
        found = await self._pg_rows(
            "SELECT key, value FROM bot_state WHERE key = any($1::text[])", list(fts.SIZE_KEYS)
        )
        known = {row["key"]: int(row["value"]) for row in found}
        if len(known) == len(fts.SIZE_KEYS):
            return known[fts.SIZE_KEYS[0]], known[fts.SIZE_KEYS[1]]
        totals = await self._row(
            "SELECT count(*) AS n, coalesce(sum(fts_tokens), 0) AS tokens FROM stories"
        )
        assert totals is not None  # an aggregate always has its row
        return totals["n"], int(totals["tokens"])

    async def find_stories(self, text: str, limit: int = 25) -> list[Story]:
        """Autocomplete for a story option: by short id, else by words of the title."""
        text = text.strip()
        if SHORT_ID.match(text.lower()):
            story = await self.story(text)
            if story:
                return [story]
        match = fts.prefix_query(text)
        if not match:
            return (await self.stories(limit=limit)).stories
        query = f"""
            SELECT {sqlite_side.STORY_COLUMNS} FROM stories s CROSS JOIN to_tsquery('simple', ?) q
            LEFT JOIN providers p ON p.id = s.provider_id
            WHERE s.fts @@ q AND {VISIBLE} ORDER BY {SEARCH_RANK} LIMIT ?
        """
        rows = await self._rows(query, (match, limit))
        return [story_from_row(r) for r in rows]

    async def _sharing_terms(
        self, story: Story, words: list[str]
    ) -> dict[str, tuple[Story, float]]:
        """As SQLite's: the candidates sharing the rarest terms come from `stories.fts`,
        ranked by ts_rank (growing with relevance, as the negated bm25) instead of bm25."""
        stems = index_terms(words)
        terms = [t for w in words for t in stems[w]]
        query = f"""
            SELECT {sqlite_side.STORY_COLUMNS},
                   ts_rank({fts.RANK_WEIGHTS}, s.fts, q) AS text_rank
            FROM stories s CROSS JOIN to_tsquery('simple', ?) q
            LEFT JOIN providers p ON p.id = s.provider_id
            WHERE s.fts @@ q AND {VISIBLE} AND s.id != ?
            ORDER BY text_rank DESC, s.rowid DESC LIMIT 60
        """
        rows = await self._rows(query, (fts.any_of(terms), story.id))
        return {r["id"]: (story_from_row(r), float(r["text_rank"])) for r in rows}

    async def _term_counts(self, terms: list[str]) -> tuple[dict[str, int], int]:
        """As SQLite's: term_stats for the common terms, the index for the rarer ones."""
        meta = await self._row("SELECT min_doc, visible FROM term_stats_meta WHERE id = 1")
        if meta is None:
            total = await self._count("SELECT visible AS n FROM story_totals WHERE id = 1") or 1
            return await self._term_docs(terms), total
        found = await self._pg_rows(
            "SELECT term, doc FROM term_stats WHERE term = any($1::text[])", terms
        )
        docs = {row["term"]: row["doc"] for row in found}
        rest = [t for t in terms if t not in docs]
        if rest and meta["min_doc"] > 2:
            docs.update(await self._term_docs(rest))
        return docs, meta["visible"] or 1

    async def _term_docs(self, terms: list[str]) -> dict[str, int]:
        """How many stories hold each term (what SQLite's stories_vocab says); 0s left out."""
        rows = await self._pg_rows(
            """
            SELECT term, (
                SELECT count(*) FROM stories s
                WHERE s.fts @@ to_tsquery('simple', quote_literal(term))
            ) AS doc
            FROM unnest($1::text[]) term
            """,
            terms,
        )
        return {row["term"]: row["doc"] for row in rows if row["doc"]}
