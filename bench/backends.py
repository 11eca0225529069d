"""SQLite against PostgreSQL in the same run: cold ingest rate and query latency.

    nice -n 5 .venv/bin/python bench/backends.py [--stories 100000] [--rounds 3]
        [--samples 300] [--workdir DIR]

The archive comes from bench/generate.py (generated once, reused). PostgreSQL is a
throwaway server started for the run (tests/pgcluster.py: Unix socket, fsync off — as
the SQLite side runs with synchronous=NORMAL, neither waits for the disk at each
commit). Each round, in alternating order so that neither backend always goes first:

* cold ingest of the whole archive into an empty database (`ingest_archive`);
* queries through each store, after a warm-up: the search mix of bench/run.py, topic
  pages (hot and new, popular and rare topics) and `/news` with no option (the hottest
  stories of all).

The figures are the median over the rounds; each round's are in the JSON written to
bench/out/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

import asyncpg  # noqa: E402
from pgcluster import Cluster, find_bindir  # noqa: E402
from run import SEED, ensure_archive, make_search_calls, query_material, remove_db  # noqa: E402

from core.ingest import ingest_archive  # noqa: E402
from core.store import open_store  # noqa: E402

BACKENDS = ("sqlite", "postgresql")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def fresh_postgres(server: str, name: str) -> str:
    conn = await asyncpg.connect(server)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await conn.execute(f"CREATE DATABASE {name}")
    finally:
        await conn.close()
    base, _, query = server.partition("?")
    return f"{base.rsplit('/', 1)[0]}/{name}?{query}"


def cold_ingest(target: str | Path, archive: Path) -> dict:
    report = ingest_archive(target, archive, datetime.now(UTC))
    assert not report.rejected, report.summary()
    return {
        "files": report.scanned,
        "seconds": report.seconds,
        "rate": report.added / report.seconds,
    }


async def query_round(target: str | Path, material: dict, samples: int, seed: int) -> dict:
    rng = random.Random(seed)
    store = await open_store(target)
    try:
        warmup = max(20, samples // 10)
        count = samples + warmup
        search = make_search_calls(store, material, rng, count)
        topic = []
        for _ in range(count):
            pool = material["popular_topics"] if rng.random() < 0.5 else material["rare_topics"]
            name, sort = rng.choice(pool), rng.choice(("hot", "new"))
            offset = rng.choice((0, 0, 0, 10, 20, 40))
            topic.append(lambda t=name, s=sort, o=offset: store.stories(t, s, limit=10, offset=o))
        offsets = [rng.choice((0, 0, 0, 10)) for _ in range(count)]
        hot = [lambda o=o: store.stories(limit=10, offset=o) for o in offsets]
        out = {}
        for kind, calls in (("search", search), ("topic", topic), ("news_hot", hot)):
            for call in calls[:warmup]:
                await call()
            times = []
            for call in calls[warmup:]:
                started = time.perf_counter()
                await call()
                times.append((time.perf_counter() - started) * 1000)
            out[kind] = {"p50_ms": percentile(times, 50), "p99_ms": percentile(times, 99)}
        return out
    finally:
        await store.close()


async def main_async(args: argparse.Namespace) -> dict:
    workdir = Path(args.workdir)
    archive = ensure_archive(workdir, args.stories)
    bindir = find_bindir()
    if bindir is None:
        sys.exit("PostgreSQL is not installed (Debian: apt-get install postgresql)")
    cluster = Cluster(bindir).start()
    rounds = []
    material = None
    try:
        for n in range(args.rounds):
            order = BACKENDS if n % 2 == 0 else BACKENDS[::-1]
            result: dict = {}
            targets: dict[str, str | Path] = {}
            for backend in order:
                if backend == "sqlite":
                    db = workdir / "backends-bench.db"
                    remove_db(db)
                    targets[backend] = db
                else:
                    targets[backend] = await fresh_postgres(cluster.url(), "bench")
                print(f"round {n + 1}: {backend} cold ingest …", flush=True)
                ingest = await asyncio.to_thread(cold_ingest, targets[backend], archive)
                result[backend] = {"ingest": ingest}
            if material is None:
                material = query_material(workdir / "backends-bench.db", random.Random(SEED))
            for backend in order:
                print(f"round {n + 1}: {backend} queries …", flush=True)
                queries = await query_round(targets[backend], material, args.samples, SEED + n)
                result[backend]["queries"] = queries
            rounds.append(result)
            print(json.dumps(result, indent=1), flush=True)
    finally:
        cluster.stop()
    return {"stories": args.stories, "rounds": rounds}


def median_table(figures: dict) -> str:
    rows = [
        "| figure | SQLite | PostgreSQL |",
        "| --- | --- | --- |",
    ]

    def med(backend: str, *path: str) -> float:
        values = []
        for r in figures["rounds"]:
            value = r[backend]
            for key in path:
                value = value[key]
            values.append(value)
        return statistics.median(values)

    rows.append(
        "| cold ingest (stories/s) | "
        + " | ".join(f"{med(b, 'ingest', 'rate'):,.0f}" for b in BACKENDS)
        + " |"
    )
    for kind, label in (("search", "search mix"), ("topic", "topic page"), ("news_hot", "/news")):
        for p in ("p50_ms", "p99_ms"):
            rows.append(
                f"| {label} {p[:3]} (ms) | "
                + " | ".join(f"{med(b, 'queries', kind, p):.2f}" for b in BACKENDS)
                + " |"
            )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stories", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--workdir", default="/tmp/newsbot-bench")
    args = parser.parse_args(argv)
    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    figures = asyncio.run(main_async(args))
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    path = out / f"backends-{args.stories}.json"
    path.write_text(json.dumps(figures, indent=1))
    print(median_table(figures))
    print(f"figures: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
