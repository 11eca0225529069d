"""How fast "did you mean" topic suggestions are with a huge number of topics.

    python bench/suggest.py [--topics 100000] [--lookups 500] [--workdir DIR] [--seed N]

1. An archive of `--topics / 25` story files, each with 25 distinct topics (the most a
   story keeps), is written under `--workdir` (reused while present) and ingested with
   `core.ingest.ingest_archive` into a fresh SQLite database: `--topics` real topics.
   Topic names are two or three words from a made-up vocabulary ("Solar Kerrin Data").
2. `Store.closest_topics` (what `/news topic:` answers an unknown topic with) is called for
   `--lookups` misspelled topics after 30 warm-up calls: a real topic with one typo (a
   letter dropped, doubled, swapped with the next or replaced) anywhere in the name,
   first letter included.

Prints the first lookup's time (it builds the store's sorted index of topic keys),
p50/p95/p99/max in ms of the others and how often the intended topic was among the suggestions
(overall, and with the typo in the first two letters or later).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import string
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from core.ingest import ingest_archive  # noqa: E402
from core.store import Store  # noqa: E402

PER_STORY = 25
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def vocabulary(rng: random.Random, size: int) -> list[str]:
    syllables = ["ka", "ri", "lo", "men", "tas", "vu", "on", "bre", "qui", "sol", "dar", "ex"]
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(syllables) for _ in range(rng.randint(2, 3))).title())
    return sorted(words)


def topic_names(count: int, rng: random.Random) -> list[str]:
    words = vocabulary(rng, 600)
    names: set[str] = set()
    while len(names) < count:
        names.add(" ".join(rng.choice(words) for _ in range(rng.choice((2, 2, 3)))))
    return sorted(names)


def write_archive(folder: Path, names: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(0, len(names), PER_STORY):
        topics = "".join(f'  - "{name}"\n' for name in names[n : n + PER_STORY])
        (folder / f"s{n // PER_STORY:06d}.md").write_text(
            f'---\ncategory: news\ntitle: "Story {n}"\nexcerpt: "About topics."\n'
            f"publishedDateTime: 2025-12-31T12:00:00Z\n"
            f'originalUrl: "https://news.example/{n}"\ntype: article\nheat: 50\n'
            f"published: true\ntopics:\n{topics}---\n",
            encoding="utf-8",
        )


def misspell(name: str, rng: random.Random) -> tuple[str, int]:
    """`name` with one typo, and where it is."""
    at = rng.randrange(len(name) - 1)
    kind = rng.choice(("drop", "double", "swap", "replace"))
    if kind == "drop":
        typo = name[:at] + name[at + 1 :]
    elif kind == "double":
        typo = name[:at] + name[at] + name[at:]
    elif kind == "swap":
        typo = name[:at] + name[at + 1] + name[at] + name[at + 2 :]
    else:
        typo = name[:at] + rng.choice(string.ascii_lowercase) + name[at + 1 :]
    return typo, at


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def measure(db: Path, names: list[str], lookups: int, rng: random.Random) -> None:
    async with await Store.open(db) as store:
        calls = []
        for _ in range(30 + lookups):
            name = rng.choice(names)
            calls.append((name, *misspell(name, rng)))
        times: list[float] = []
        hits: dict[str, list[bool]] = {"in the first two letters": [], "later": []}
        for i, (name, typo, at) in enumerate(calls):
            started = time.perf_counter()
            suggested = await store.closest_topics(typo)
            elapsed = (time.perf_counter() - started) * 1000
            if i == 0:
                first = elapsed
            if i >= 30:  # after the warm-up
                times.append(elapsed)
                hits["in the first two letters" if at < 2 else "later"].append(name in suggested)
    print(f"closest_topics over {len(names):,} topics, {lookups} misspelled lookups:")
    print(f"  first lookup (reads and sorts every key, in a thread): {first:.0f} ms")
    print(
        "  "
        + ", ".join(f"p{p} {percentile(times, p):.2f} ms" for p in (50, 95, 99))
        + f", max {max(times):.2f} ms"
    )
    everything = [hit for found in hits.values() for hit in found]
    print(f"  intended topic suggested: {sum(everything) / len(everything):.0%} overall")
    for where, found in hits.items():
        if found:
            print(f"    typo {where}: {sum(found) / len(found):.0%} of {len(found)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topics", type=int, default=100_000)
    parser.add_argument("--lookups", type=int, default=500)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/newsbot-bench"))
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    names = topic_names(args.topics, rng)
    folder = args.workdir / f"suggest-{args.topics}-{args.seed}"
    if not folder.is_dir():
        print(f"writing {len(names) // PER_STORY:,} story files to {folder} ...")
        write_archive(folder, names)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "news.db"
        started = time.perf_counter()
        report = ingest_archive(db, folder, NOW)
        print(f"ingested in {time.perf_counter() - started:.1f}s: {report.summary()}")
        asyncio.run(measure(db, names, args.lookups, rng))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
