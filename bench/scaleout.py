"""Delivery throughput with one and two bot processes on one database (issue 13).

    python bench/scaleout.py [--subscriptions 10000] [--rounds 3] [--backends sqlite postgresql]

One story becomes hot in a topic that 10,000 channels subscribe to (10,000 guilds, one
channel each, spread evenly over 2 shards): 10,000 deliveries are due. Then 1 or 2 real
OS processes (spawned, each with its own store connection and process id, started
together) run `Deliverer.deliver_all()` until nothing of their shards is due. The sender
does not touch the network: each channel's `send` returns at once (bench/delivery.py's
FakeChannel), so what is measured is the bot's own work per post and the database's:
the claim (one UPDATE … RETURNING), the confirmation and the record of what was shown.

On SQLite (a file) and on PostgreSQL (a throwaway server started for the run,
tests/pgcluster.py: Unix socket, fsync off, as SQLite runs with synchronous=NORMAL).
Scenarios, each from a copy of the same prepared database:
- 1 process running both shards;
- 2 processes, shards 0 and 1 (the normal split: no claim is contested);
- 2 processes both running both shards (misconfigured overlap: every claim contested).

posts/s = stories posted by all processes / wall time from the common start to the last
process's end; claims/s = deliveries claimed or tried by all processes / the same time
(the channels sent to at once share a statement; a lost claim, one another process won,
counts as a claim but posts nothing). The script checks
that every channel got the story exactly once.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SHARDS = 2
STORY = """---
title: "Story {n} about robots"
excerpt: "A story about robots, number {n}."
publishedDateTime: {published}
originalUrl: "https://bench.example/story-{n}"
heat: {heat}
provider:
  name: Bench
  domain: bench.example
topics:
  - Robotics
---
"""


def guild_of(channel: int) -> int:
    """Guild ids spread over the shards as Discord's are: (id >> 22) % shards."""
    return channel << 22


async def prepare(db: str | Path, archive: Path, subscriptions: int) -> None:
    """A database where one story is due in `subscriptions` channels."""
    import discord

    from bot.delivery import Deliverer
    from core.config import Config
    from core.ingest import ingest
    from core.store import Store, open_store

    now = discord.utils.utcnow()
    published = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    (archive / "0.md").write_text(STORY.format(n=0, heat=10, published=published))
    store = await open_store(db)
    await ingest(store, archive, now)
    for channel in range(1, subscriptions + 1):
        await store.subscribe(
            guild_id=guild_of(channel), channel_id=channel, topic="Robotics", min_heat=100, now=now
        )
    config = Config(archive=archive, max_age_hours=0)
    deliverer = Deliverer(SimpleNamespace(store=store, config=config, get_channel=dict().get))
    await deliverer.decide(now)  # the initial change log
    (archive / "0.md").write_text(STORY.format(n=0, heat=500, published=published))
    await ingest(store, archive, now)
    await deliverer.decide(now)
    assert await deliverer.fan_out(now) == subscriptions
    if isinstance(store, Store):
        await store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    await store.close()


def worker(db: str, shard_ids: tuple[int, ...], subscriptions: int, start, results) -> None:
    """One bot process: deliver everything due on its shards, report what it did."""
    results.put(asyncio.run(_deliver(db, shard_ids, subscriptions, start)))


async def _deliver(db: str, shard_ids: tuple[int, ...], subscriptions: int, start) -> dict:
    import discord

    from bench.delivery import FakeChannel
    from bot.delivery import Deliverer
    from core.config import Config
    from core.sharding import ProcessLeases, Shards
    from core.store import open_store

    store = await open_store(db if db.startswith("postgresql://") else Path(db))
    config = Config(max_age_hours=0, posts_per_poll=50)
    channels = {i: FakeChannel(i) for i in range(1, subscriptions + 1)}
    shards = Shards(SHARDS, shard_ids)
    bot = SimpleNamespace(store=store, config=config, get_channel=channels.get, user_id=1)
    process = ProcessLeases(store, 60)
    deliverer = Deliverer(bot, store=store, process=process, shards=shards)
    claims = {"statements": 0, "won": 0}
    claim = store.claim_delivery_batch

    async def counted(wanted, holder):
        got = await claim(wanted, holder)
        claims["statements"] += len(wanted)  # one claim per delivery asked for
        claims["won"] += len(got)
        return got

    store.claim_delivery_batch = counted  # type: ignore[method-assign]  # counting, not changing
    now = discord.utils.utcnow()
    await process.keep_alive(now)
    start.wait()
    began = time.time()
    while await store.due_deliveries(shards=shards):
        await deliverer.deliver_all(now)
    ended = time.time()
    posted = {channel_id: channel.sent for channel_id, channel in channels.items() if channel.sent}
    await store.close()
    return {"began": began, "ended": ended, "posted": posted, **claims}


def run_scenario(db: str, shard_sets, subscriptions: int) -> dict:
    context = multiprocessing.get_context("spawn")
    start, results = context.Event(), context.Queue()
    processes = [
        context.Process(target=worker, args=(db, ids, subscriptions, start, results))
        for ids in shard_sets
    ]
    for process in processes:
        process.start()
    time.sleep(3)  # every process has opened its store and is waiting
    start.set()
    reports = [results.get() for _ in processes]
    for process in processes:
        process.join()
    posts: dict[int, int] = {}
    for report in reports:
        for channel_id, count in report["posted"].items():
            posts[channel_id] = posts.get(channel_id, 0) + count
    assert posts == {c: 1 for c in range(1, subscriptions + 1)}, "not exactly once"
    wall = max(r["ended"] for r in reports) - min(r["began"] for r in reports)
    statements = sum(r["statements"] for r in reports)
    return {
        "seconds": wall,
        "posts_per_s": subscriptions / wall,
        "claims_per_s": statements / wall,
        "contested": statements - sum(r["won"] for r in reports),
    }


SCENARIOS = {
    "1 process, shards 0-1": [(0, 1)],
    "2 processes, shards 0 | 1": [(0,), (1,)],
    "2 processes, both 0-1 (overlap)": [(0, 1), (0, 1)],
}


class SqliteCopies:
    """The prepared database, and a fresh copy of it for each scenario (a file copy)."""

    def __init__(self, workdir: Path) -> None:
        self.prepared = workdir / "prepared.db"
        self.scenario = workdir / "scenario.db"

    def fresh(self) -> str:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.scenario}{suffix}").unlink(missing_ok=True)
        shutil.copy(self.prepared, self.scenario)
        return str(self.scenario)


class PostgresCopies:
    """The same on a throwaway PostgreSQL server (CREATE DATABASE … TEMPLATE)."""

    def __init__(self) -> None:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
        from pgcluster import Cluster, find_bindir

        bindir = find_bindir()
        if bindir is None:
            sys.exit("PostgreSQL is not installed (Debian: apt-get install postgresql)")
        self.cluster = Cluster(bindir).start()
        asyncio.run(self._sql("CREATE DATABASE prepared"))
        self.prepared = self.cluster.url("prepared")

    def fresh(self) -> str:
        asyncio.run(self._sql("DROP DATABASE IF EXISTS scenario WITH (FORCE)"))
        asyncio.run(self._sql("CREATE DATABASE scenario TEMPLATE prepared"))
        return self.cluster.url("scenario")

    async def _sql(self, statement: str) -> None:
        import asyncpg

        conn = await asyncpg.connect(self.cluster.url())
        try:
            await conn.execute(statement)
        finally:
            await conn.close()


def measure(backend: str, subscriptions: int, rounds: int) -> dict[str, list[dict]]:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        archive = workdir / "archive"
        archive.mkdir()
        copies = SqliteCopies(workdir) if backend == "sqlite" else PostgresCopies()
        try:
            asyncio.run(prepare(copies.prepared, archive, subscriptions))
            figures: dict[str, list[dict]] = {name: [] for name in SCENARIOS}
            for _ in range(rounds):
                for name, shard_sets in SCENARIOS.items():
                    figures[name].append(run_scenario(copies.fresh(), shard_sets, subscriptions))
        finally:
            if isinstance(copies, PostgresCopies):
                copies.cluster.stop()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscriptions", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--backends", nargs="+", choices=("sqlite", "postgresql"), default=["sqlite", "postgresql"]
    )
    args = parser.parse_args()
    for backend in args.backends:
        figures = measure(backend, args.subscriptions, args.rounds)
        print(
            f"{backend}, {args.subscriptions} channels due one story,"
            f" median of {args.rounds} rounds"
        )
        print(f"{'scenario':<34} {'posts/s':>9} {'claims/s':>9} {'seconds':>8} {'lost claims':>12}")
        for name, rounds in figures.items():
            posts = statistics.median(r["posts_per_s"] for r in rounds)
            claims = statistics.median(r["claims_per_s"] for r in rounds)
            seconds = statistics.median(r["seconds"] for r in rounds)
            lost = statistics.median(r["contested"] for r in rounds)
            print(f"{name:<34} {posts:>9.0f} {claims:>9.0f} {seconds:>8.1f} {lost:>12.0f}")


if __name__ == "__main__":
    main()
