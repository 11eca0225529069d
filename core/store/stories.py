"""Read-side queries over stories: topic pages, full-text search, topics, related."""

from __future__ import annotations

import bisect
import math
import re
import sqlite3
import threading
from datetime import datetime

from core.models import STORY_ID_PATTERN, Coverage, Page, Related, Story, TopicCount
from core.store.base import Params, StoreBase
from core.store.epochs import from_epoch, to_epoch

# "Did you mean": every topic name is compared below this many topics, else only the
# names sorting next to the text typed, SUGGEST_NEIGHBOURS on each side (`closest_topics`).
SUGGEST_ALL_BELOW = 500
SUGGEST_NEIGHBOURS = 12
VISIBLE = "s.published = 1 AND s.removed_at IS NULL"
# Read by name (`story_from_row`): other tables' columns joined to these take a prefix.
STORY_COLUMNS = """
    s.rowid AS story_rowid, s.id, s.url, s.title, s.excerpt, s.published_at, s.type, s.heat,
    s.quality, s.published, s.provider_name, p.domain AS provider_domain,
    p.icon_url AS provider_icon, s.image_url, s.topics_text, s.first_seen_at,
    s.heat_changed_at, s.canonical
"""
STORY_FROM = "stories s LEFT JOIN providers p ON p.id = s.provider_id"
# bm25 weights: title, excerpt, topics, provider. bm25 is negative (lower is better), so
# multiplying by a factor that grows with heat lifts hot stories among equally good matches.
SEARCH_BM25 = "bm25(stories_fts, 10.0, 4.0, 3.0, 2.0)"
HEAT_LIFT = "(1.0 + min({heat}, 1000) / 250.0)"
SEARCH_RANK = f"{SEARCH_BM25} * {HEAT_LIFT.format(heat='s.heat')}"
# The same within a topic when FTS5 also matches the topic's name in the topics column
# (see `search`): that column gets no weight, so the name, found in every candidate,
# does not favour stories with few topics; ties go to the hotter story.
SEARCH_BM25_IN_TOPIC = "bm25(stories_fts, 10.0, 4.0, 0.0, 2.0)"
# FTS5 computes bm25 for every match before sorting, so a search matching tens of
# thousands of stories would take ~100 ms (BENCHMARKS.md). At most SEARCH_CAP matches
# are counted and ranked: with more, the newest SEARCH_CAP (rowids follow arrival) are
# ranked and paged, and the total is an estimate ("250+"). 250 is 50 pages of /news;
# 500 cost ≈1.3 ms more at the p99 of 300k stories (BENCHMARKS.md, issue 12).
SEARCH_CAP = 250
# bm25 also walks the whole doclist of every query word once per query to count the
# stories having it (≈0.1 ms per 1,000 stories here). `relevance` ranks by bm25 only
# when the kept words are in at most this many stories together; a broader query lists
# its matches with more of the query's words in the title first, then the hottest
# (`search`): on very broad queries, the hottest matching stories first.
SEARCH_RANK_BUDGET = 10_000
# A query word in more than this share of the visible stories, and in more than
# SEARCH_CAP of them, is left out when the query has rarer words: like a stop word it
# adds almost nothing to bm25 (nothing at all above 50%), but bm25 walks its whole
# doclist. Of a query made only of such words, the rarest is kept.
SEARCH_COMMON_SHARE = 0.20

MAX_QUERY_TERMS = 16
# Related stories: at most about this many stories matching the chosen terms get scored.
RELATED_MATCH_BUDGET = 2_000
SHORT_ID = re.compile(f"^{STORY_ID_PATTERN}$")
_WORD = re.compile(r"\w+")
STOPWORDS = frozenset(
    """a an and are as at be but by for from has have how in into is it its new not of on or
    that the their this to was were what when where which who why will with you your""".split()  # noqa: SIM905
)


def quote_fts(text: str, prefix: bool = False) -> str:
    """User text as a safe FTS5 query: every word a quoted term, all of them required.

    Only word characters survive, so `AND`, `OR`, `NOT`, quotes, `*`, `(`, `-`
    and column filters are plain words or nothing: MATCH can never fail.
    """
    terms = [f'"{w}"' for w in query_words(text)]
    if prefix:  # autocomplete: every word may still be unfinished
        terms = [f"{t}*" for t in terms]
    return " ".join(terms)


def query_words(text: str) -> list[str]:
    """The words of a query that FTS5 matches: stop words only if there is nothing else."""
    words = _WORD.findall(text.casefold())[:MAX_QUERY_TERMS]
    return [w for w in words if w not in STOPWORDS] or words


def story_from_row(row: sqlite3.Row, related: tuple[Coverage, ...] = ()) -> Story:
    """A story from a row selecting `STORY_COLUMNS`."""
    return Story(
        id=row["id"],
        url=row["url"],
        title=row["title"],
        excerpt=row["excerpt"],
        published_at=from_epoch(row["published_at"]),
        type=row["type"],
        heat=row["heat"],
        quality=row["quality"],
        published=bool(row["published"]),
        provider=row["provider_name"],
        provider_domain=row["provider_domain"] or "",
        provider_icon=row["provider_icon"],
        image_url=row["image_url"],
        topics=tuple(t for t in row["topics_text"].split("\n") if t),
        related=related,
        first_seen_at=from_epoch(row["first_seen_at"]),
        heat_changed_at=from_epoch(row["heat_changed_at"]),
        canonical=row["canonical"],
    )


def coverage_from_row(row: sqlite3.Row) -> Coverage:
    return Coverage(
        title=row["title"],
        url=row["url"],
        provider=row["provider"],
        excerpt=row["excerpt"],
        published_at=from_epoch(row["published_at"]),
        type=row["type"],
    )


class StoryQueries(StoreBase):
    """Stories, topics, search and related stories: the read side of the archive."""

    async def story(self, story_id: str) -> Story | None:
        """One visible story by short id, with its curated coverage."""
        query = f"SELECT {STORY_COLUMNS} FROM {STORY_FROM} WHERE s.id = ? AND {VISIBLE}"
        row = await self._row(query, (story_id.strip().lower(),))
        if row is None:
            return None
        return story_from_row(row, tuple(await self._coverage(row["story_rowid"])))

    async def stories(
        self,
        topic: str | None = None,
        sort: str = "hot",
        *,
        min_heat: int | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 10,
        offset: int = 0,
    ) -> Page:
        """Visible stories, of one topic or all, hottest (`hot`) or newest (`new`) first.

        Without a query there is no relevance: `relevance` lists the hottest first.
        """
        if min_heat is not None or since is not None or until is not None:
            return await self._filtered_list(topic, sort, min_heat, since, until, limit, offset)
        if topic is None:
            order = (
                "s.published_at DESC, s.rowid DESC"
                if sort == "new"
                else "s.heat DESC, s.published_at DESC, s.rowid DESC"
            )
            query = f"SELECT {STORY_COLUMNS} FROM {STORY_FROM} WHERE {VISIBLE} ORDER BY {order}"
            rows = await self._rows(f"{query} LIMIT ? OFFSET ?", (limit, offset))
            total = await self._count("SELECT visible AS n FROM story_totals WHERE id = 1")
            return Page([story_from_row(r) for r in rows], total, offset, limit)
        topic_id = await self._topic_id(topic)
        if topic_id is None:
            return Page([], 0, offset, limit)
        order = (
            "st.published_at DESC, st.story DESC"
            if sort == "new"
            else "st.heat DESC, st.published_at DESC, st.story DESC"
        )
        query = f"""
            SELECT {STORY_COLUMNS} FROM story_topics st
            JOIN stories s ON s.rowid = st.story LEFT JOIN providers p ON p.id = s.provider_id
            WHERE st.topic = ? AND st.visible = 1 ORDER BY {order} LIMIT ? OFFSET ?
        """
        rows = await self._rows(query, (topic_id, limit, offset))
        total = await self._count(
            "SELECT count(*) AS n FROM story_topics WHERE topic = ? AND visible = 1", (topic_id,)
        )
        return Page([story_from_row(r) for r in rows], total, offset, limit)

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
        """Full-text search: `relevance` (bm25 lifted by heat), `hot` (heat) or `new` (date).

        On very broad queries (SEARCH_RANK_BUDGET) `relevance` lists the matches with more
        of the words in their title first, then the hottest. Text without a single word
        lists stories instead (never an error).
        """
        words = query_words(text)
        if not words:
            return await self.stories(
                topic, sort, min_heat=min_heat, since=since, until=until, limit=limit, offset=offset
            )
        words, terms, at_most, in_stories = await self._search_words(words)
        match = " ".join(f'"{w}"' for w in words)
        # `k`: the row with the story's heat and date, the story itself or, in a topic,
        # its story_topics row, which also holds its visibility: a topic search reads a
        # story's own row only to read its title or when it is shown.
        source = "JOIN stories k ON k.rowid = stories_fts.rowid"
        where = ["stories_fts MATCH ?", "k.published = 1 AND k.removed_at IS NULL"]
        params: list[object] = [match]
        bm25 = SEARCH_BM25
        if topic is not None:
            found = await self._row(
                "SELECT id, name, story_count FROM topics WHERE key = ?",
                (topic.strip().casefold(),),
            )
            if found is None:
                return Page([], 0, offset, limit)
            source = (
                "JOIN story_topics k ON k.story = stories_fts.rowid"
                " AND k.topic = ? AND k.visible = 1"
            )
            where = where[:1]
            params.insert(0, found["id"])
            if at_most > SEARCH_CAP and (narrow := _topic_term(found["name"])):
                # Many stories have the words: FTS5 intersects them with (a word of) the
                # topic's name in the topics column, so mostly the topic's matches are
                # visited; the join still checks the topic itself. bm25 would walk the
                # name's doclist too.
                params[1] = f"{match} AND topics_text : {narrow}"
                in_stories += found["story_count"]
                bm25 = SEARCH_BM25_IN_TOPIC
        self._date_filters(where, params, min_heat, since, until, table="k")
        if sort == "hot":
            keys = "k.heat AS heat, k.published_at AS at"
            order = "{t}heat DESC, {t}at DESC, {t}r DESC"
        elif sort == "new":
            keys, order = "k.published_at AS at", "{t}at DESC, {t}r DESC"
        elif in_stories <= SEARCH_RANK_BUDGET:  # -1: no term statistics yet
            keys = f"{bm25} * {HEAT_LIFT.format(heat='k.heat')} AS score, k.heat AS heat"
            order = "{t}score, {t}heat DESC, {t}r DESC"
        else:
            # More of the words in the title first (a term is a prefix of the title's
            # word it stems from: `app` of "Apps"; SQLite's lower() folds ASCII only).
            title = "k.title"
            if topic is not None:  # the title is in the story's own row
                source += " JOIN stories s ON s.rowid = stories_fts.rowid"
                title = "s.title"
            lifts = " + ".join(f"(instr(lower({title}), ?) > 0)" for _ in terms) or "0"
            keys = f"{lifts} AS lift, k.heat AS heat, k.published_at AS at"
            order = "{t}lift DESC, {t}heat DESC, {t}at DESC, {t}r DESC"
            params[:0] = terms
        # One statement: the newest SEARCH_CAP + 1 matches (FTS5 walks rowids newest first
        # and stops there) give the count, exact up to the cap; the page is ranked among
        # the newest SEARCH_CAP, and only its rows are read in full. The outer LEFT JOIN
        # keeps one row, with the count, when the page is empty.
        query = f"""
            WITH found AS MATERIALIZED (
                SELECT stories_fts.rowid AS r, {keys} FROM stories_fts {source}
                WHERE {" AND ".join(where)} ORDER BY stories_fts.rowid DESC LIMIT ?
            ),
            page AS MATERIALIZED (
                SELECT * FROM found
                WHERE r > (SELECT iif(count(*) > ?, min(r), 0) FROM found)
                ORDER BY {order.format(t="")} LIMIT ? OFFSET ?
            )
            SELECT {STORY_COLUMNS}, counted.total FROM (SELECT count(*) AS total FROM found) counted
            LEFT JOIN page LEFT JOIN stories s ON s.rowid = page.r
            LEFT JOIN providers p ON p.id = s.provider_id
            ORDER BY {order.format(t="page.")}
        """
        rows = await self._rows(query, (*params, SEARCH_CAP + 1, SEARCH_CAP, limit, offset))
        total = max(row["total"] for row in rows)  # every row carries the count
        estimate = total > SEARCH_CAP
        stories = [story_from_row(r) for r in rows if r["id"] is not None]
        return Page(stories, SEARCH_CAP if estimate else total, offset, limit, estimate)

    async def find_stories(self, text: str, limit: int = 25) -> list[Story]:
        """Autocomplete for a story option: by short id, else by words of the title."""
        text = text.strip()
        if SHORT_ID.match(text.lower()):
            story = await self.story(text)
            if story:
                return [story]
        match = quote_fts(text, prefix=True)
        if not match:
            return (await self.stories(limit=limit)).stories
        query = f"""
            SELECT {STORY_COLUMNS} FROM stories_fts
            JOIN stories s ON s.rowid = stories_fts.rowid
            LEFT JOIN providers p ON p.id = s.provider_id
            WHERE stories_fts MATCH ? AND {VISIBLE} ORDER BY {SEARCH_RANK} LIMIT ?
        """
        rows = await self._rows(query, (f"title : ({match})", limit))
        return [story_from_row(r) for r in rows]

    async def topics(self, prefix: str = "", limit: int = 25) -> list[TopicCount]:
        """Topics with visible stories: names starting with `prefix` first, then by count.

        Names merely containing `prefix` follow, so `vision` finds `Computer Vision`.
        """
        needle = _like_escape(prefix.strip().casefold())
        query = r"""
            SELECT name, story_count FROM topics
            WHERE story_count > 0 AND key LIKE '%' || ? || '%' ESCAPE '\'
            ORDER BY key LIKE ? || '%' ESCAPE '\' DESC, story_count DESC, key
            LIMIT ?
        """
        rows = await self._rows(query, (needle, needle, limit))
        return [TopicCount(row["name"], row["story_count"]) for row in rows]

    async def topic_name(self, topic: str) -> str | None:
        """The topic's display name if it has visible stories (case-insensitive match)."""
        row = await self._row(
            "SELECT name FROM topics WHERE key = ? AND story_count > 0", (topic.strip().casefold(),)
        )
        return None if row is None else row["name"]

    async def closest_topics(self, topic: str, n: int = 3) -> list[str]:
        """Topic names that look like `topic`, for "did you mean" replies.

        difflib compares every name it is given (25 µs each: 2.5 s for 100,000 topics,
        on the event loop). A small archive still offers it every name; a large one only
        the names sorting next to the text typed, forwards and backwards (a name with one
        typo shares a long beginning or a long end with it), and of those only the few
        with the most letters in common get difflib's ratio (bench/suggest.py).
        """
        import difflib  # here, as in `_close_keys`: most commands never suggest a topic
        import json

        wanted = topic.strip().casefold()
        if not wanted:
            return []
        last_id = await self._count("SELECT coalesce(max(id), 0) AS n FROM topics")
        if last_id <= SUGGEST_ALL_BELOW:
            rows = await self._rows(
                "SELECT name, key FROM topics WHERE story_count > 0 ORDER BY story_count DESC"
            )
            by_key = {row["key"]: row["name"] for row in rows}
            close = difflib.get_close_matches(wanted, list(by_key), n=n, cutoff=0.5)
        else:
            index = await self._topic_index(last_id)
            query = """
                SELECT name, key FROM topics
                WHERE key IN (SELECT value FROM json_each(?)) AND story_count > 0
                ORDER BY story_count DESC
            """
            rows = await self._rows(query, (json.dumps(index.near(wanted)),))
            by_key = {row["key"]: row["name"] for row in rows}
            close = _close_keys(wanted, list(by_key), n)
        contained = [k for k in by_key if wanted in k or k in wanted]
        # A name containing the text ("teams" → "Teams integration") beats a look-alike.
        keys = list(dict.fromkeys([*contained, *close]))[:n]
        return [by_key[k] for k in keys]

    async def _topic_index(self, last_id: int) -> TopicIndex:
        """Every topic key, sorted both ways; read again when topics were added."""
        index: TopicIndex | None = getattr(self, "_topic_keys", None)
        if index is None or index.last_id != last_id:
            rows = await self._rows("SELECT key FROM topics")
            index = await self._in_thread(TopicIndex, last_id, [row["key"] for row in rows])
            self._topic_keys = index
        return index

    async def related(self, story_id: str, limit: int = 5) -> Related | None:
        """The story's curated coverage and the archive stories most similar to it."""
        story = await self.story(story_id)
        if story is None:
            return None
        coverage = list(story.related) + await self._source_coverage(story)
        return Related(story, coverage, await self._similar(story, limit))

    async def _source_coverage(self, story: Story) -> list[Coverage]:
        """The further sources that carry the story: "also covered by".

        The shown version is an archive source's (folder, git) if any carries it, else
        the first feed's: a feed never overwrites another source's story.
        """
        rows = await self._rows(
            """
            SELECT s.source, s.url, s.title, s.provider FROM story_sources s
            JOIN stories t ON t.canonical = s.story
            LEFT JOIN source_state k ON k.name = s.source
            WHERE s.story = ?
              AND EXISTS (
                  SELECT 1 FROM archive_files f
                  WHERE f.story = t.rowid AND f.path >= s.source || ':'
                    AND f.path < s.source || ';'
              )
            ORDER BY k.kind IS 'feed', s.first_seen_at, s.source
            """,
            (story.canonical,),
        )
        shown_elsewhere = rows[1:]  # the first carrier's version is the one shown
        return [
            Coverage(
                row["title"],
                row["url"],
                f"also covered by {row['provider'] or row['source']} (source {row['source']})",
            )
            for row in shown_elsewhere
        ]

    # -- internals ---------------------------------------------------------------

    async def _similar(self, story: Story, limit: int) -> list[Story]:
        """Similar stories: shared significant terms (FTS), shared topics, closeness in time."""
        chosen = await self._significant_terms(story.title, 6)
        seen = {term for _, term in chosen}
        chosen += [
            (doc, term)
            for doc, term in await self._significant_terms(story.excerpt, 4)
            if term not in seen
        ]
        # FTS5 scores every story matching any term: the rarest terms, up to a budget of
        # matches, keep that bounded (the common terms barely move bm25 anyway).
        terms: list[str] = []
        budget = 0
        for doc, term in sorted(chosen):
            if terms and budget + doc > RELATED_MATCH_BUDGET:
                break
            terms.append(term)
            budget += doc
        candidates = await self._sharing_terms(story, terms) if terms else {}
        if len(candidates) < limit and story.topics:
            for same_topic in (await self.stories(story.topics[0], limit=limit + 1)).stories:
                candidates.setdefault(same_topic.id, (same_topic, 0.0))
        best_text = max((score for _, score in candidates.values()), default=0.0) or 1.0
        title_key = story.title.casefold()
        own_topics = {t.casefold() for t in story.topics}
        scored = []
        for other, text_score in candidates.values():
            if other.id == story.id or other.canonical == story.canonical:
                continue
            if other.title.casefold() == title_key:  # the same story filed twice
                continue
            shared = len(own_topics & {t.casefold() for t in other.topics})
            topic_score = shared / len(own_topics) if own_topics else 0.0
            score = text_score / best_text + 0.5 * topic_score + 0.3 * _closeness(story, other)
            scored.append((score, other.heat, other.id, other))
        scored.sort(key=lambda item: (-item[0], -item[1], item[2]))
        return [item[3] for item in scored[:limit]]

    async def _sharing_terms(
        self, story: Story, words: list[str]
    ) -> dict[str, tuple[Story, float]]:
        """The 60 stories best matching any of `words`, by id: (story, text score), the
        score growing with relevance (FTS5's bm25, negated)."""
        query = f"""
            SELECT {STORY_COLUMNS}, bm25(stories_fts, 10.0, 4.0, 3.0, 1.0) AS text_rank
            FROM stories_fts
            JOIN stories s ON s.rowid = stories_fts.rowid
            LEFT JOIN providers p ON p.id = s.provider_id
            WHERE stories_fts MATCH ? AND {VISIBLE} AND s.id != ?
            ORDER BY rank LIMIT 60
        """
        match = " OR ".join(f'"{t}"' for t in words)
        rows = await self._rows(query, (match, story.id))
        return {r["id"]: (story_from_row(r), -r["text_rank"]) for r in rows}

    async def _significant_terms(self, text: str, n: int) -> list[tuple[int, str]]:
        """The story's rarest words that other stories share: what makes it distinctive.

        Each comes with the number of stories it is in: (doc, word), rarest first.

        Counted by the index's term (its stem: `apps` is `app`); each comes back as a
        word of the text, which MATCH turns into that term again.
        """
        candidates = list(
            dict.fromkeys(
                w for w in _WORD.findall(text.casefold()) if len(w) > 2 and w not in STOPWORDS
            )
        )[:40]
        stems = index_terms(candidates)
        by_term: dict[str, str] = {}
        for word in candidates:
            if len(stems[word]) == 1:
                by_term.setdefault(stems[word][0], word)
        if not by_term:
            return []
        docs, total = await self._term_counts(list(by_term))
        useful = [
            (doc, by_term[term]) for term, doc in docs.items() if 2 <= doc <= max(2, total * 0.25)
        ]
        return sorted(useful)[:n]

    async def _term_counts(self, terms: list[str]) -> tuple[dict[str, int], int]:
        """How many stories hold each index term, and how many stories are visible."""
        meta = await self._row("SELECT min_doc, visible FROM term_stats_meta WHERE id = 1")
        marks = ",".join("?" * len(terms))
        if meta is not None:
            # Common terms' counts were kept by the last ingest; only the rarer terms
            # (short doclists, so cheap) are counted in stories_vocab.
            total = meta["visible"] or 1
            found = await self._rows(
                f"SELECT term, doc FROM term_stats WHERE term IN ({marks})", terms
            )
            docs = {row["term"]: row["doc"] for row in found}
            rest = [w for w in terms if w not in docs]
            if rest and meta["min_doc"] > 2:  # below min_doc, but maybe shared by 2 or more
                rest_marks = ",".join("?" * len(rest))
                found = await self._rows(
                    f"SELECT term, doc FROM stories_vocab WHERE term IN ({rest_marks})", rest
                )
                docs.update((row["term"], row["doc"]) for row in found)
        else:  # a database not ingested since term_stats exists
            total = await self._count("SELECT visible AS n FROM story_totals WHERE id = 1") or 1
            found = await self._rows(
                f"SELECT term, doc FROM stories_vocab WHERE term IN ({marks})", terms
            )
            docs = {row["term"]: row["doc"] for row in found}
        return docs, total

    async def _search_words(self, words: list[str]) -> tuple[list[str], list[str], int, int]:
        """The words worth matching, their index terms, how many stories the rarest word
        is in, and how many the kept words are in together (-1, -1: unknown).

        Document counts come from `term_stats` (kept by ingest); a word missing there is
        rarer than its `min_doc`, so it counts as 0.
        """
        stems = index_terms(words)
        words = list({tuple(stems[w]): w for w in reversed(words)}.values())[::-1]
        terms = sorted({t for w in words for t in stems[w]})
        marks = ",".join("?" * len(terms))
        rows = await self._rows(
            f"""SELECT NULL AS term, visible AS doc FROM term_stats_meta WHERE id = 1
                UNION ALL SELECT term, doc FROM term_stats WHERE term IN ({marks})""",
            terms,
        )
        visible = [row["doc"] for row in rows if row["term"] is None]
        if not visible:  # a database not ingested since term_stats exists
            return words, terms, -1, -1
        counts = {row["term"]: row["doc"] for row in rows if row["term"] is not None}
        # A word the index splits (`e_mail`) is at most as common as its rarest part.
        docs = [min((counts.get(t, 0) for t in stems[w]), default=0) for w in words]
        common = max(SEARCH_COMMON_SHARE * visible[0], SEARCH_CAP)
        rarest = min(docs)
        if len(words) > 1 and max(docs) > common:
            # Keep the rarer words; if every word is common, the rarest one.
            keep = max(rarest, common)
            kept = [w for w, doc in zip(words, docs, strict=True) if doc <= keep]
            if rarest > common:
                kept = kept[:1]
            words = list(dict.fromkeys(kept))
        terms = sorted({t for w in words for t in stems[w]})
        return words, terms, rarest, sum(counts.get(t, 0) for t in terms)

    async def _coverage(self, rowid: int) -> list[Coverage]:
        rows = await self._rows(
            """
            SELECT title, url, provider, excerpt, published_at, type FROM coverage
            WHERE story = ? ORDER BY position
            """,
            (rowid,),
        )
        return [coverage_from_row(row) for row in rows]

    async def _filtered_list(
        self,
        topic: str | None,
        sort: str,
        min_heat: int | None,
        since: datetime | None,
        until: datetime | None,
        limit: int,
        offset: int,
    ) -> Page:
        where = [VISIBLE]
        params: list[object] = []
        if topic is not None:
            topic_id = await self._topic_id(topic)
            if topic_id is None:
                return Page([], 0, offset, limit)
            where.append(
                "EXISTS (SELECT 1 FROM story_topics st WHERE st.story = s.rowid AND st.topic = ?)"
            )
            params.append(topic_id)
        self._date_filters(where, params, min_heat, since, until)
        condition = " AND ".join(where)
        order = (
            "s.published_at DESC, s.rowid DESC"
            if sort == "new"
            else "s.heat DESC, s.published_at DESC, s.rowid DESC"
        )
        rows = await self._rows(
            f"SELECT {STORY_COLUMNS} FROM {STORY_FROM} WHERE {condition} ORDER BY {order}"
            " LIMIT ? OFFSET ?",
            (*params, limit, offset),
        )
        total = await self._count(f"SELECT count(*) AS n FROM stories s WHERE {condition}", params)
        return Page([story_from_row(r) for r in rows], total, offset, limit)

    @staticmethod
    def _date_filters(
        where: list[str],
        params: list[object],
        min_heat: int | None,
        since: datetime | None,
        until: datetime | None,
        table: str = "s",
    ) -> None:
        """On `table`: stories or story_topics (which copies their heat and date)."""
        if min_heat is not None:
            where.append(f"{table}.heat >= ?")
            params.append(min_heat)
        if since is not None:
            where.append(f"{table}.published_at >= ?")
            params.append(to_epoch(since))
        if until is not None:
            where.append(f"{table}.published_at < ?")
            params.append(to_epoch(until))

    async def _count(self, query: str, params: Params = ()) -> int:
        """The `n` column of an aggregate query's one row."""
        row = await self._row(query, params)
        return 0 if row is None else row["n"]


def _closeness(a: Story, b: Story) -> float:
    """1.0 for stories published together, fading over about a month."""
    if a.published_at is None or b.published_at is None:
        return 0.0
    days = abs((a.published_at - b.published_at).total_seconds()) / 86400
    return math.exp(-days / 30)


def _topic_term(name: str) -> str | None:
    """An FTS5 term found in the topics column of every story of the topic `name`.

    An ASCII name's longest word (unicode61 splits ASCII exactly as `[a-z0-9]+`: one
    word is cheaper than a phrase); otherwise the whole name as a quoted phrase.
    """
    if name.isascii():
        words = re.findall(r"[a-z0-9]+", name.lower())
        return f'"{max(words, key=len)}"' if words else None
    if not any(c.isalnum() for c in name):
        return None
    return '"' + name.replace('"', '""') + '"'


# The index's tokenizer (see the schema), in a private in-memory database: SQLite itself
# says which terms a word becomes (`Apps` → `app`, `généralisé` → `general`), so the
# term statistics are looked up exactly as the index spells them. Microseconds, no I/O.
TOKENIZER = "porter unicode61 remove_diacritics 2"
_tokenizer_lock = threading.Lock()
_tokenizer: sqlite3.Connection | None = None


def index_terms(words: list[str]) -> dict[str, list[str]]:
    """word -> the terms the full-text index makes of it (usually one, its stem)."""
    global _tokenizer
    words = list(dict.fromkeys(words))
    with _tokenizer_lock:
        if _tokenizer is None:
            _tokenizer = sqlite3.connect(":memory:", check_same_thread=False)
            _tokenizer.execute(
                f"CREATE VIRTUAL TABLE words USING fts5 (w, tokenize = '{TOKENIZER}')"
            )
            _tokenizer.execute("CREATE VIRTUAL TABLE terms USING fts5vocab (words, 'instance')")
        conn = _tokenizer
        conn.execute("BEGIN")
        try:
            conn.executemany(
                "INSERT INTO words (rowid, w) VALUES (?, ?)", list(enumerate(words, start=1))
            )
            rows = conn.execute("SELECT doc, term FROM terms ORDER BY doc, offset").fetchall()
        finally:
            conn.execute("ROLLBACK")  # nothing is kept: the table stays empty
    out: dict[str, list[str]] = {w: [] for w in words}
    for doc, term in rows:
        out[words[doc - 1]].append(term)
    return out


class TopicIndex:
    """Topic keys sorted forwards and backwards (reversed), to find look-alikes quickly."""

    def __init__(self, last_id: int, keys: list[str]) -> None:
        self.last_id = last_id
        self.forwards = sorted(keys)
        self.backwards = sorted(key[::-1] for key in keys)

    def near(self, text: str) -> list[str]:
        """Keys sorting next to `text` (or to its start mended: first letters swapped,
        first doubled, second dropped), and next to it read backwards."""
        m = SUGGEST_NEIGHBOURS
        found = []
        for start in {text, text[1::-1] + text[2:], text[1:], text[:1] + text[2:]}:
            found += _around(self.forwards, start, m)
        found += [key[::-1] for key in _around(self.backwards, text[::-1], 2 * m)]
        return list(dict.fromkeys(found))


def _around(ordered: list[str], text: str, m: int) -> list[str]:
    at = bisect.bisect_left(ordered, text)
    return ordered[max(0, at - m) : at + m]


def _close_keys(wanted: str, keys: list[str], n: int) -> list[str]:
    """difflib's closest `n` keys, its slow ratio taken only for the 4n with the most
    letters in common (one typo leaves all but one or two)."""
    import difflib

    matcher = difflib.SequenceMatcher(b=wanted)
    shared = []
    for key in keys:
        matcher.set_seq1(key)
        shared.append((matcher.quick_ratio(), key))
    likely = [key for _, key in sorted(shared, reverse=True)[: 4 * n]]
    return difflib.get_close_matches(wanted, likely, n=n, cutoff=0.5)


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
