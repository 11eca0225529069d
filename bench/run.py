"""The benchmark of issue 2: ingest throughput, rescan time and query latency.

    python bench/run.py [--sizes 10000 100000] [--workdir DIR] [--samples N] [--only ingest]

For each size: generate the archive (once; reused while present), then

* parse-only: read every file, split the front matter, `yaml.load` it with
  CSafeLoader, single core: the floor of what ingest has to do;
* cold ingest: `core.ingest.ingest_archive` into an empty database;
* rescan: the same call again on the unchanged archive;
* query latency through the async `Store` (aiosqlite), after a warm-up:
  topic pages, full-text search and related stories.

Prints a table and writes the figures as JSON to bench/out/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import sqlite3
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from generate import generate  # noqa: E402

from core.archive import scan_archive  # noqa: E402
from core.ingest import ingest_archive  # noqa: E402
from core.store import Store  # noqa: E402

TARGETS = {
    "ingest_vs_parse": 1.5,  # ingest rate ≥ 1.5x the single-core parse-only rate
    "rescan_share": 0.05,  # unchanged rescan < 5% of the cold ingest time
    "topic_p99_ms": 5.0,
    "search_p99_ms": 5.0,
    "related_p99_ms": 20.0,
}
MARKER = ".bench-complete"  # hidden: the archive scan ignores it
SEED = 1


def ensure_archive(workdir: Path, stories: int, seed: int = SEED) -> Path:
    root = workdir / f"archive-{stories}-s{seed}"
    if (root / MARKER).exists():
        return root
    if root.exists():
        subprocess.run(["rm", "-rf", str(root)], check=True)
    root.mkdir(parents=True)
    print(f"generating {stories:,} stories into {root} …", flush=True)
    seconds = generate(str(root), stories, seed)
    (root / MARKER).write_text(f"{stories} {seed} {seconds:.1f}s\n")
    return root


# -- ingest and parse-only -------------------------------------------------------


def parse_only(root: Path, paths: list[str]) -> float:
    """Seconds to read, split and YAML-load every file on one core."""
    loader = yaml.CSafeLoader
    started = time.perf_counter()
    for rel in paths:
        with open(os.path.join(root, rel), "rb") as fh:
            text = fh.read().decode("utf-8-sig").replace("\r\n", "\n")
        end = text.find("\n---", 3)
        yaml.load(text[4:end], Loader=loader)
    return time.perf_counter() - started


def remove_db(db: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)


def bench_ingest(root: Path, db: Path) -> dict:
    paths = [f.path for f in scan_archive(root)]
    n = len(paths)
    parse_only(root, paths[: min(n, 2000)])  # warm the page cache and the interpreter
    parse_s = parse_only(root, paths)
    remove_db(db)
    now = datetime.now(UTC)
    cold = ingest_archive(db, root, now)
    rescan = ingest_archive(db, root, now)
    assert cold.added == n and not cold.rejected, cold.summary()
    assert rescan.unchanged == n and not rescan.changed, rescan.summary()
    ingest_rate = n / cold.seconds
    parse_rate = n / parse_s
    return {
        "files": n,
        "parse_only_s": parse_s,
        "parse_only_rate": parse_rate,
        "cold_ingest_s": cold.seconds,
        "cold_ingest_rate": ingest_rate,
        "ingest_vs_parse": ingest_rate / parse_rate,
        "rescan_s": rescan.seconds,
        "rescan_share": rescan.seconds / cold.seconds,
        "db_mb": sum(os.path.getsize(p) for p in db.parent.glob(db.name + "*")) / 1e6,
    }


# -- queries -----------------------------------------------------------------------


def query_material(db: Path, rng: random.Random) -> dict:
    """Topics, words and story ids to query, read straight from the database."""
    conn = sqlite3.connect(db)
    try:
        topics = [
            name
            for (name,) in conn.execute(
                "SELECT name FROM topics WHERE story_count > 0 ORDER BY story_count DESC"
            )
        ]
        total = conn.execute("SELECT count(*) FROM stories").fetchone()[0]
        vocab = conn.execute(
            "SELECT term, doc FROM stories_vocab WHERE length(term) > 3 ORDER BY doc DESC"
        ).fetchall()
        ids = [
            i
            for (i,) in conn.execute(
                "SELECT id FROM stories WHERE published = 1 AND removed_at IS NULL"
            )
        ]
    finally:
        conn.close()
    common = [t for t, doc in vocab if doc >= total * 0.01][:200]
    rare = [t for t, doc in vocab if 2 <= doc <= max(3, total * 0.0005)]
    return {
        "popular_topics": topics[:10],
        "rare_topics": topics[len(topics) // 2 :],
        "common_words": common,
        "rare_words": rng.sample(rare, min(len(rare), 2000)),
        "story_ids": rng.sample(ids, min(len(ids), 5000)),
    }


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def timed(calls, warmup: int) -> list[float]:
    for call in calls[:warmup]:
        await call()
    out = []
    for call in calls[warmup:]:
        started = time.perf_counter()
        await call()
        out.append((time.perf_counter() - started) * 1000)
    return out


def summary(samples: list[float]) -> dict:
    return {
        "n": len(samples),
        "p50_ms": percentile(samples, 50),
        "p99_ms": percentile(samples, 99),
        "max_ms": max(samples),
        "mean_ms": statistics.fmean(samples),
    }


def make_search_calls(store, m: dict, rng: random.Random, count: int) -> list:
    """The search mix: 1-3 words (60% common, 40% rare), 40% within a topic, 75% relevance."""
    calls = []
    for _ in range(count):
        words = []
        for _ in range(rng.choice((1, 1, 2, 2, 3))):
            pool = m["common_words"] if rng.random() < 0.6 else m["rare_words"]
            words.append(rng.choice(pool))
        topic = None
        if rng.random() < 0.4:
            pool = m["popular_topics"] if rng.random() < 0.7 else m["rare_topics"]
            topic = rng.choice(pool)
        sort = "relevance" if rng.random() < 0.75 else "new"
        offset = rng.choice((0, 0, 0, 10))
        text = " ".join(words)
        calls.append(
            lambda q=text, t=topic, s=sort, o=offset: store.search(q, t, s, limit=10, offset=o)
        )
    return calls


async def bench_queries(db: Path, samples: int, seed: int = SEED) -> dict:
    rng = random.Random(seed)
    m = query_material(db, rng)
    warmup = max(20, samples // 10)
    count = samples + warmup
    store = await Store.open(db)
    try:
        topic_calls = []
        for _ in range(count):
            pool = m["popular_topics"] if rng.random() < 0.5 else m["rare_topics"]
            topic, sort = rng.choice(pool), rng.choice(("hot", "new"))
            offset = rng.choice((0, 0, 0, 10, 20, 40))
            topic_calls.append(
                lambda t=topic, s=sort, o=offset: store.stories(t, s, limit=10, offset=o)
            )

        search_calls = make_search_calls(store, m, rng, count)
        related_calls = [
            lambda i=story_id: store.related(i)
            for story_id in rng.sample(m["story_ids"], min(count, len(m["story_ids"])))
        ]
        return {
            "topic": summary(await timed(topic_calls, warmup)),
            "search": summary(await timed(search_calls, warmup)),
            "related": summary(await timed(related_calls, warmup)),
        }
    finally:
        await store.close()


# -- reporting ---------------------------------------------------------------------


def verdicts(result: dict) -> dict:
    ing, q = result["ingest"], result["queries"]
    return {
        "ingest_vs_parse": ing["ingest_vs_parse"] >= TARGETS["ingest_vs_parse"],
        "rescan_share": ing["rescan_share"] < TARGETS["rescan_share"],
        "topic_p99_ms": q["topic"]["p99_ms"] < TARGETS["topic_p99_ms"],
        "search_p99_ms": q["search"]["p99_ms"] < TARGETS["search_p99_ms"],
        "related_p99_ms": q["related"]["p99_ms"] < TARGETS["related_p99_ms"],
    }


def mark(ok: bool) -> str:
    return "met" if ok else "NOT MET"


def table(results: list[dict]) -> str:
    sizes = [f"{r['stories']:,}" for r in results]
    rows: list[tuple[str, list[str], str]] = []

    def row(label, fmt, target=""):
        rows.append((label, [fmt(r) for r in results], target))

    row("parse-only, 1 core (stories/s)", lambda r: f"{r['ingest']['parse_only_rate']:,.0f}")
    row("cold ingest (stories/s)", lambda r: f"{r['ingest']['cold_ingest_rate']:,.0f}")
    row("cold ingest (s)", lambda r: f"{r['ingest']['cold_ingest_s']:.2f}")
    row(
        "ingest / parse-only",
        lambda r: f"{r['ingest']['ingest_vs_parse']:.2f}x",
        "≥ 1.5x",
    )
    row("unchanged rescan (s)", lambda r: f"{r['ingest']['rescan_s']:.3f}")
    row(
        "rescan / cold ingest",
        lambda r: f"{100 * r['ingest']['rescan_share']:.1f}%",
        "< 5%",
    )
    for kind, target in (("topic", "< 5 ms"), ("search", "< 5 ms"), ("related", "< 20 ms")):
        row(f"{kind} p50 (ms)", lambda r, k=kind: f"{r['queries'][k]['p50_ms']:.2f}")
        row(f"{kind} p99 (ms)", lambda r, k=kind: f"{r['queries'][k]['p99_ms']:.2f}", target)
    row("database size (MB)", lambda r: f"{r['ingest']['db_mb']:.0f}")

    width = max(len(label) for label, _, _ in rows)
    header = f"| {'stories':<{width}} | " + " | ".join(f"{s:>9}" for s in sizes)
    header += " | target (at 100k) |"
    lines = [header, "|" + "-" * (width + 2) + "|" + "|".join("-" * 11 for _ in sizes) + "|---|"]
    for label, values, target in rows:
        line = f"| {label:<{width}} | " + " | ".join(f"{v:>9}" for v in values)
        lines.append(line + f" | {target} |")
    return "\n".join(lines)


def ingest_line(size: int, ing: dict) -> str:
    return (
        f"{size:,}: parse-only {ing['parse_only_rate']:,.0f}/s, "
        f"cold ingest {ing['cold_ingest_rate']:,.0f}/s ({ing['cold_ingest_s']:.2f} s), "
        f"ratio {ing['ingest_vs_parse']:.2f}x, rescan {ing['rescan_s']:.3f} s "
        f"({100 * ing['rescan_share']:.1f}%)"
    )


def machine() -> dict:
    cpu = platform.processor()
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                cpu = line.split(":", 1)[1].strip()
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "pyyaml": yaml.__version__,
        "libyaml": hasattr(yaml, "CSafeLoader"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/newsbot-bench"))
    parser.add_argument("--samples", type=int, default=300, help="timed queries of each kind")
    parser.add_argument(
        "--only",
        choices=["ingest"],
        help="run only the ingest part (parse-only, cold ingest, rescan); writes no JSON",
    )
    args = parser.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    results = []
    for size in args.sizes:
        root = ensure_archive(args.workdir, size)
        db = args.workdir / f"news-{size}.db"
        print(f"{size:,} stories: ingest …", flush=True)
        ingest = bench_ingest(root, db)
        if args.only == "ingest":
            print(ingest_line(size, ingest), flush=True)
            continue
        print(f"{size:,} stories: queries …", flush=True)
        queries = asyncio.run(bench_queries(db, args.samples))
        result = {"stories": size, "archive": str(root), "ingest": ingest, "queries": queries}
        result["targets_met"] = verdicts(result)
        results.append(result)
    if not results:
        return 0
    print()
    print(table(results))
    largest = results[-1]
    print(f"\ntargets at {largest['stories']:,} stories:")
    for key, ok in largest["targets_met"].items():
        print(f"  {key:<16} {mark(ok)}")
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    doc = {"at": stamp, "machine": machine(), "targets": TARGETS, "results": results}
    for name in (f"bench-{stamp}.json", "latest.json"):
        (out / name).write_text(json.dumps(doc, indent=2) + "\n")
    print(f"\nwrote {out / 'latest.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
