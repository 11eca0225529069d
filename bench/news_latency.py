"""The benchmark of issue 3: latency of the `/news` callback inside the simulated Discord.

    python bench/news_latency.py [--stories 100000] [--samples 500] [--workdir DIR]
                                 [--db PATH] [--seed N] [--profile FILE]

1. The synthetic archive of `--stories` stories (`bench/generate.py`, under `--workdir`,
   reused while present) is ingested with `core.ingest.ingest_archive` into a temporary
   database (or `--db`), outside the measured part.
2. The real bot, `create_bot(Config(archive=…, db_path=…))`, runs in simcord (the offline
   simulated Discord, `simcord.run(bot)`); its own start-up ingest is then an unchanged rescan.
   Once `archive_loaded` is set, a member in a guild channel runs a mix of `/news` calls,
   first page only, after a warm-up:

   * `topic-popular` / `topic-rare`: `topic:` only, one of the 10 largest topics or one of
     the smaller half, both from the store's `topics()`;
   * `query`: `query:` only, 1 or 2 words (60% common words, in at least 1% of the stories;
     40% rare words, in 2 to 0.05% of them, as in `bench/run.py`);
   * `topic+query`: both (a popular topic 70% of the time);
   * `neither`: no option (the hottest or newest stories overall);
   * `sort` is `hot` 70% of the time, `new` otherwise.

What is measured, per call, with instrumentation installed by this script only:

* callback latency (the figure of the target): from the moment discord.py hands the
  interaction to the command tree (`CommandTree._from_interaction`, called by the gateway
  parser) to the moment the bot's initial response call (`InteractionResponse.send_message`
  or `defer`) returns. It includes the store queries, building the embed and the view, and
  the response's round trip to the simulated Discord. It is split into "bot work" (up to the
  response call) and the response call itself, and the time spent in the store is recorded;
* end-to-end: `await member.slash(...)` in the harness, which adds simcord building and
  dispatching the interaction, and waiting for the bot to settle (`original_response()` and
  the paginator included). A secondary figure.

Prints p50/p95/p99/max per kind and overall, says whether p99 < 25 ms is met, and writes
the figures as JSON to bench/out/ (git-ignored).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import functools
import json
import logging
import pstats
import random
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import discord
import simcord

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from run import ensure_archive, machine, percentile, remove_db  # noqa: E402

from bot.app import create_bot  # noqa: E402
from bot.views import PAGE_TIMEOUT  # noqa: E402
from core.config import Config  # noqa: E402
from core.ingest import ingest_archive  # noqa: E402

TARGET_P99_MS = 25.0
SIMCORD_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)  # simcord's virtual clock starts here
KINDS = ("topic-popular", "topic-rare", "query", "topic+query", "neither")
MIX = (("topic-popular", 20), ("topic-rare", 15), ("query", 25), ("topic+query", 20))
MIX += (("neither", 20),)


# -- instrumentation (this script only; the bot's code is not changed) ---------------


class Probe:
    """Timestamps of each interaction: dispatched to the tree, response called, returned."""

    def __init__(self) -> None:
        self.started: dict[int, float] = {}
        self.responding: dict[int, float] = {}
        self.responded: dict[int, float] = {}
        self.ephemeral: dict[int, bool] = {}
        self.order: list[int] = []
        self.store_s = 0.0  # time inside the store's query methods, since the last reset
        self._undo: list = []

    def install(self, bot) -> None:
        tree = bot.tree
        from_interaction = tree._from_interaction

        def timed_from_interaction(interaction):
            self.started[interaction.id] = time.perf_counter()
            self.order.append(interaction.id)
            from_interaction(interaction)

        tree._from_interaction = timed_from_interaction
        self._undo.append(lambda: delattr(tree, "_from_interaction"))
        for name in ("send_message", "defer"):
            self._wrap_response(name)

    def _wrap_response(self, name: str) -> None:
        original = getattr(discord.InteractionResponse, name)

        @functools.wraps(original)
        async def timed(response, *args, **kwargs):
            key = response._parent.id
            self.responding.setdefault(key, time.perf_counter())
            self.ephemeral.setdefault(key, bool(kwargs.get("ephemeral")))
            try:
                return await original(response, *args, **kwargs)
            finally:
                self.responded.setdefault(key, time.perf_counter())

        setattr(discord.InteractionResponse, name, timed)
        self._undo.append(lambda: setattr(discord.InteractionResponse, name, original))

    def wrap_store(self, store) -> None:
        """Add up the time spent in the store's methods that `/news` calls."""
        for name in ("topic_name", "stories", "search", "closest_topics"):
            original = getattr(store, name)

            @functools.wraps(original)
            async def timed(*args, _original=original, **kwargs):
                started = time.perf_counter()
                try:
                    return await _original(*args, **kwargs)
                finally:
                    self.store_s += time.perf_counter() - started

            setattr(store, name, timed)

    def uninstall(self) -> None:
        for undo in reversed(self._undo):
            undo()
        self._undo.clear()


# -- the calls ------------------------------------------------------------------------


async def call_material(store, rng: random.Random) -> dict:
    """Topics from the store's `topics()`, words from the FTS vocabulary (as bench/run.py)."""
    topics = [t.name for t in await store.topics(limit=100_000)]  # largest first
    total = (await store.db.execute_fetchall("SELECT count(*) FROM stories"))[0][0]
    vocab = await store.db.execute_fetchall(
        "SELECT term, doc FROM stories_vocab WHERE length(term) > 3 ORDER BY doc DESC"
    )
    common = [t for t, doc in vocab if doc >= total * 0.01][:200]
    rare = [t for t, doc in vocab if 2 <= doc <= max(3, total * 0.0005)]
    return {
        "popular_topics": topics[:10],
        "rare_topics": topics[len(topics) // 2 :],
        "common_words": common,
        "rare_words": rng.sample(rare, min(len(rare), 2000)),
        "doc": {t: doc for t, doc in vocab},
    }


def make_calls(m: dict, n: int, rng: random.Random) -> list[tuple[str, dict]]:
    kinds, weights = zip(*MIX, strict=True)

    def words() -> str:
        picked = []
        for _ in range(rng.choice((1, 1, 2))):
            pool = m["common_words"] if rng.random() < 0.6 else m["rare_words"]
            picked.append(rng.choice(pool))
        return " ".join(picked)

    calls = []
    for kind in rng.choices(kinds, weights, k=n):
        options: dict = {}
        if kind == "topic-popular":
            options["topic"] = rng.choice(m["popular_topics"])
        elif kind == "topic-rare":
            options["topic"] = rng.choice(m["rare_topics"])
        elif kind == "query":
            options["query"] = words()
        elif kind == "topic+query":
            pool = m["popular_topics"] if rng.random() < 0.7 else m["rare_topics"]
            options["topic"] = rng.choice(pool)
            options["query"] = words()
        options["sort"] = "hot" if rng.random() < 0.7 else "new"
        calls.append((kind, options))
    return calls


# -- the run ----------------------------------------------------------------------------


async def measure(
    archive: Path, db: Path, samples: int, seed: int, profile: Path | None, keep_views: bool
):
    rng = random.Random(seed)
    # The poller rescans the archive on each round after the first: with a day between rounds,
    # advancing virtual time to expire the paginators (below) triggers only a few of them.
    bot = create_bot(Config(archive=archive, db_path=db, poll_seconds=86_400))
    probe = Probe()
    probe.install(bot)
    profiler = cProfile.Profile() if profile else None
    try:
        # strict_sync=False: with a reused --db the bot skips syncing (unchanged command hash).
        async with simcord.run(bot, settle_timeout=120.0, strict_sync=False) as env:
            started = time.perf_counter()
            await bot.archive_loaded.wait()
            startup_rescan_s = time.perf_counter() - started
            guild = env.create_guild(name="Bench")
            channel = guild.create_text_channel("news")
            member = guild.add_member(env.create_user("reader"))
            probe.wrap_store(bot.store)

            m = await call_material(bot.store, rng)
            warmup = max(20, samples // 10)
            calls = make_calls(m, warmup + samples, rng)
            records = []
            for index, (kind, options) in enumerate(calls):
                if index == warmup and profiler is not None:
                    profiler.enable()
                probe.store_s = 0.0
                before = len(probe.order)
                t0 = time.perf_counter()
                result = await member.slash(channel, "news", **options)
                e2e = time.perf_counter() - t0
                assert len(probe.order) == before + 1, "expected exactly one interaction"
                key = probe.order[-1]
                assert result.acknowledged and key in probe.responded, (kind, options)
                if not keep_views:
                    # Let this call's paginator time out (virtual time) before the next call:
                    # simcord's settlement scans every live view on each loop turn, a cost
                    # that grows with the calls made so far and that Discord does not have.
                    await env.advance_time(PAGE_TIMEOUT + 1)
                if index < warmup:
                    continue
                if (index - warmup + 1) % 100 == 0:
                    print(f"  {index - warmup + 1} calls", flush=True)
                start = probe.started[key]
                words = (options.get("query") or "").split()
                records.append(
                    {
                        "kind": kind,
                        "options": options,
                        "callback_ms": (probe.responded[key] - start) * 1000,
                        "bot_work_ms": (probe.responding[key] - start) * 1000,
                        "response_call_ms": (probe.responded[key] - probe.responding[key]) * 1000,
                        "store_ms": probe.store_s * 1000,
                        "e2e_ms": e2e * 1000,
                        "friendly_reply": probe.ephemeral[key],
                        "word_docs": [m["doc"].get(w, 0) for w in words],
                    }
                )
            if profiler is not None:
                profiler.disable()
            await bot.store.close()  # simcord detaches the bot without closing it
    finally:
        probe.uninstall()
    if profiler is not None:
        profiler.dump_stats(profile)
        stats = pstats.Stats(profiler).sort_stats("cumulative")
        stats.print_stats(40)
    return records, startup_rescan_s, warmup


def stats(values: list[float]) -> dict:
    return {
        "n": len(values),
        "p50_ms": percentile(values, 50),
        "p95_ms": percentile(values, 95),
        "p99_ms": percentile(values, 99),
        "max_ms": max(values),
    }


def summarise(records: list[dict]) -> dict:
    groups = {kind: [r for r in records if r["kind"] == kind] for kind in KINDS}
    groups["overall"] = records
    out = {}
    for name, rows in groups.items():
        if not rows:
            continue
        out[name] = {
            field: stats([r[field] for r in rows])
            for field in ("callback_ms", "bot_work_ms", "response_call_ms", "store_ms", "e2e_ms")
        }
        out[name]["friendly_replies"] = sum(r["friendly_reply"] for r in rows)
    return out


def table(summary: dict) -> str:
    head = (
        "| kind          |   n | callback p50 | p95 | p99 | max | store p99 "
        "| end-to-end p50 | p99 |"
    )
    lines = [head, "|---|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for name, s in summary.items():
        cb, e2e = s["callback_ms"], s["e2e_ms"]
        lines.append(
            f"| {name:<13} | {cb['n']:>3} | {cb['p50_ms']:.1f} | {cb['p95_ms']:.1f} "
            f"| {cb['p99_ms']:.1f} | {cb['max_ms']:.1f} | {s['store_ms']['p99_ms']:.1f} "
            f"| {e2e['p50_ms']:.1f} | {e2e['p99_ms']:.1f} |"
        )
    return "\n".join(lines)


def slowest(records: list[dict], n: int = 10) -> str:
    lines = []
    for r in sorted(records, key=lambda r: -r["callback_ms"])[:n]:
        lines.append(
            f"  {r['callback_ms']:7.1f} ms (store {r['store_ms']:6.1f}, "
            f"response call {r['response_call_ms']:4.1f})  {r['kind']:<13} {r['options']} "
            f"word docs {r['word_docs']}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stories", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=500, help="timed /news calls")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/newsbot-bench"))
    parser.add_argument("--db", type=Path, help="database to ingest into (default: a temp one)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--profile", type=Path, help="cProfile the timed calls into FILE")
    parser.add_argument(
        "--keep-views",
        action="store_true",
        help="do not expire each call's paginator (shows simcord's per-live-view cost)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    args.workdir.mkdir(parents=True, exist_ok=True)
    archive = ensure_archive(args.workdir, args.stories)

    with tempfile.TemporaryDirectory(prefix="news-latency-") as tmp:
        db = args.db or Path(tmp) / "news.db"
        if args.db is None:
            remove_db(db)
        print(f"{args.stories:,} stories: ingesting {archive} into {db} …", flush=True)
        report = ingest_archive(db, archive, SIMCORD_EPOCH)
        print(f"  {report.summary()}", flush=True)
        print(f"{args.stories:,} stories: {args.samples} timed /news calls in simcord …")
        records, rescan_s, warmup = asyncio.run(
            measure(archive, db, args.samples, args.seed, args.profile, args.keep_views)
        )

    summary = summarise(records)
    overall = summary["overall"]["callback_ms"]["p99_ms"]
    met = overall < TARGET_P99_MS
    print()
    print(table(summary))
    print(
        f"\n/news callback p99 at {args.stories:,} stories: {overall:.1f} ms "
        f"(target < {TARGET_P99_MS:.0f} ms): {'met' if met else 'NOT MET'}"
    )
    print("\nslowest calls:")
    print(slowest(records))

    out = HERE / "out"
    out.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    doc = {
        "at": stamp,
        "machine": machine(),
        "stories": args.stories,
        "samples": args.samples,
        "warmup": warmup,
        "seed": args.seed,
        "keep_views": args.keep_views,
        "archive": str(archive),
        "startup_rescan_s": rescan_s,
        "target_p99_ms": TARGET_P99_MS,
        "met": met,
        "summary": summary,
        "records": records,
    }
    for name in (f"news-latency-{args.stories}-{stamp}.json", "news-latency-latest.json"):
        (out / name).write_text(json.dumps(doc, indent=2) + "\n")
    print(f"\nwrote {out / 'news-latency-latest.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
