"""The benchmark of issue 12: every figure against its baseline, measured in the same run.

    python bench/paired.py [--sizes 10000 100000 300000] [--rounds 3] [--only 1,2,5]
                           [--workdir DIR] [--samples 1000]

Each round runs the baseline and the project back to back, so a figure is a ratio of two
measurements taken under the same machine load; the table gives the median over the rounds
and the min–max spread. Archives come from `bench/generate.py` (seed 1), cached in the
workdir as for `bench/run.py`. Per size and round, in this order:

1. parse-only (`bench/baselines.py parse`, its own process): read, split and
   `yaml.load` with CSafeLoader every file, one core. Whole-process wall time.
2. cold ingest: `python -m bot ingest ARCHIVE` into an empty database, its own process.
   Figure 1 = ingest rate / parse-only rate (= parse-only time / ingest time).
3. naive: `bench/baselines.py naive`: the same parse plus one INSERT per story into a
   plain sqlite3 table with the same text columns, no FTS, no index. Figure 2 = peak
   memory of the ingest / of the naive script; figure 8 = database size / naive size.
4. unchanged rescan: `python -m bot ingest` again. Figure 3 = rescan / cold ingest.
5. 1% changed: the heat of 1% of the files (a different sample each round) goes up by
   one, `python -m bot ingest`, then the files are restored (content and mtime) and an
   untimed rescan brings the database back. Figure 4 = this rescan / the unchanged one.
6. command line: `python -m bot search WORD`, `story ID`, `related ID`, each against
   `python -c "import sqlite3, yaml"`, interleaved, 5 times each; figure 7 = the median
   of each command / the median of the baseline, whole processes.
7. queries through the async `Store`, after a warm-up: the search mix of `bench/run.py`
   (figure 5, p99) and what `/news` with no option calls, `store.stories(None, "hot",
   limit=PAGE_SIZE)` (figure 6, p99).

Then, once per round, `bench/delivery.py`'s measure (no archive): figure 9 = the bot's own
work per post, the worse of its two shapes (2,000 stories due in one channel; one story due
in 2,000 channels), figure 10 = the slowest of the 5 `decide()` calls for 10,000
subscriptions; beside it, the fan-out that writes their deliveries afterwards (its slowest
transaction, and the slowest of the 5 whole fan-outs).

Peak memory of a process tree (figure 2): a thread sums the RSS (VmRSS) of the process
and all its descendants (ingest's spawned workers included) every 20 ms, looking for new
descendants every 0.2 s; the figure is the highest sum. Pages shared between processes
(the interpreter, libraries) count once per process, so a tree of 3 processes is charged
3 interpreters. Each run also records `ru_maxrss` from `wait4` in the JSON, but it is
not used: it is a per-process maximum (the largest of the child and its reaped
descendants, not a sum), and Linux carries the RSS of this benchmark's own process at
fork into it, so every child shows at least that (~50 MB).

Prints the table and writes everything (every round's raw values) to bench/out/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(HERE))

import delivery  # noqa: E402
from run import (  # noqa: E402
    ensure_archive,
    machine,
    make_search_calls,
    percentile,
    query_material,
    remove_db,
)

from cogs.news import PAGE_SIZE  # noqa: E402
from core.store import Store  # noqa: E402

# figure: (label, unit, "min"/"max" target kind, target, size the issue judges it at)
FIGURES = {
    "1": ("cold ingest rate / parse-only rate", "x", "min", 2.0, 100_000),
    "2": ("ingest peak RSS / naive script", "x", "max", 1.5, None),
    "3": ("unchanged rescan / cold ingest", "%", "max", 3.0, 100_000),
    "4": ("1%-changed rescan / unchanged", "x", "max", 1.5, 100_000),
    "5": ("search p99 (run.py mix)", "ms", "max", 5.0, 300_000),
    "6": ("/news no option p99", "ms", "max", 3.0, 300_000),
    "7": ("CLI {} / python -c import", "x", "max", 3.0, 100_000),
    "8": ("database size / naive", "x", "max", 1.3, 100_000),
    "9": ("delivery overhead per post", "ms", "max", 0.3, None),
    "10": ("delivery decide, 10k subs", "ms", "max", 30.0, None),
}
# Informative rows, no target of the issue: the in-process ingest times (what ingest
# reports itself, without interpreter start-up) and the absolute figures behind the ratios.
INFO = {
    "3i": "unchanged rescan / cold, in-process",
    "4i": "1%-changed / unchanged, in-process",
    "cold_s": "cold ingest, whole process (s)",
    "parse_s": "parse-only, whole process (s)",
    "rss_mb": "ingest peak RSS, tree (MB)",
    "naive_rss_mb": "naive peak RSS (MB)",
    "db_mb": "database size (MB)",
    "fanout_chunk_ms": "fan-out, slowest 1,000-row transaction (ms)",
    "fanout_ms": "fan-out of 10k deliveries, slowest (ms)",
}
CLI_COMMANDS = ("search", "story", "related")
CHANGED_SHARE = 0.01
HEAT = re.compile(rb"^heat: (\d+)", re.MULTILINE)


# -- processes ------------------------------------------------------------------------


def _descendants(root: int) -> list[int]:
    """`root` and its descendants, from the parent ids in /proc/*/stat."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(b")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, ()))
    return found


def _rss_kb(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status", "rb") as fh:
                for line in fh:
                    if line.startswith(b"VmRSS:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            pass  # exited since the last look at the tree
    return total


def run_process(cmd: list[str], env: dict | None = None, sample_rss: bool = False) -> dict:
    """Run `cmd` to completion: wall seconds, peak tree RSS, largest process, stdout."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=tempfile.gettempdir())
        peak = [0]
        done = threading.Event()

        def sample() -> None:
            # Listing /proc costs ~1.5 ms: look for new processes every 0.2 s only, and
            # read the RSS of the known ones every 20 ms.
            tick = 0
            while not done.is_set():
                if tick % 10 == 0:
                    pids = _descendants(proc.pid)
                peak[0] = max(peak[0], _rss_kb(pids))
                tick += 1
                done.wait(0.02)

        sampler = threading.Thread(target=sample, daemon=True) if sample_rss else None
        if sampler:
            sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        done.set()
        if sampler:
            sampler.join()
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{stderr[-2000:]}")
    return {
        "seconds": seconds,
        "peak_tree_rss_mb": peak[0] / 1024 if sample_rss else None,
        "max_process_rss_mb": usage.ru_maxrss / 1024,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "stdout": stdout,
    }


def bot_env(db: Path, archive: Path) -> dict:
    env = dict(os.environ, NEWS_DB=str(db), NEWS_ARCHIVE=str(archive), LOG_LEVEL="WARNING")
    env["PYTHONPATH"] = str(REPO)
    return env


def bot_ingest(db: Path, archive: Path, sample_rss: bool = False) -> dict:
    run = run_process(
        [sys.executable, "-m", "bot", "ingest", str(archive)], bot_env(db, archive), sample_rss
    )
    found = re.search(r"in (\d+\.\d+)s", run["stdout"])
    run["reported_s"] = float(found.group(1)) if found else None
    run["summary"] = run["stdout"].strip().splitlines()[-1:]
    return run


def db_size_mb(db: Path) -> float:
    return sum(os.path.getsize(p) for p in db.parent.glob(db.name + "*")) / 1e6


# -- one round at one size --------------------------------------------------------------


def story_paths(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.md") if not p.name.startswith("."))


def bump_heat(paths: list[Path]) -> list[tuple[Path, bytes, os.stat_result]]:
    saved = []
    for path in paths:
        data, stat = path.read_bytes(), path.stat()
        changed = HEAT.sub(lambda m: b"heat: %d" % (int(m.group(1)) + 1), data, count=1)
        saved.append((path, data, stat))
        path.write_bytes(changed)
    return saved


def restore(saved: list[tuple[Path, bytes, os.stat_result]]) -> None:
    for path, data, stat in saved:
        path.write_bytes(data)
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def cli_round(db: Path, archive: Path, material: dict, reps: int = 5) -> dict:
    env = bot_env(db, archive)
    story_id = material["story_ids"][0]
    args = {
        "search": ["search", material["common_words"][0]],
        "story": ["story", story_id],
        "related": ["related", story_id],
    }
    times: dict[str, list[float]] = {"baseline": [], **{c: [] for c in CLI_COMMANDS}}
    for _ in range(reps):
        baseline = [sys.executable, "-c", "import sqlite3, yaml"]
        times["baseline"].append(run_process(baseline, env)["seconds"])
        for command in CLI_COMMANDS:
            cmd = [sys.executable, "-m", "bot", *args[command]]
            times[command].append(run_process(cmd, env)["seconds"])
    return {k: statistics.median(v) for k, v in times.items()}


async def query_round(db: Path, samples: int, seed: int) -> dict:
    rng = random.Random(seed)
    m = query_material(db, rng)
    warmup = max(50, samples // 10)
    store = await Store.open(db)
    try:
        figures = {}
        search = make_search_calls(store, m, rng, samples + warmup)
        news = [lambda: store.stories(None, "hot", limit=PAGE_SIZE)] * (samples + warmup)
        for name, calls in (("search", search), ("news", news)):
            for call in calls[:warmup]:
                await call()
            timings = []
            for call in calls[warmup:]:
                started = time.perf_counter()
                await call()
                timings.append((time.perf_counter() - started) * 1000)
            figures[name] = {
                "p50_ms": percentile(timings, 50),
                "p99_ms": percentile(timings, 99),
                "max_ms": max(timings),
            }
        return figures
    finally:
        await store.close()


def size_round(workdir: Path, size: int, round_no: int, wanted: set[str], samples: int) -> dict:
    """One paired round at one size: the raw measurements and the figures they give."""
    root = ensure_archive(workdir, size)
    db, naive_db = workdir / f"paired-{size}.db", workdir / f"paired-naive-{size}.db"
    raw: dict = {}
    figures: dict = {}
    say = lambda what: print(f"  {size:,} round {round_no}: {what} …", flush=True)  # noqa: E731

    if "1" in wanted:
        say("parse-only")
        raw["parse"] = run_process([sys.executable, str(HERE / "baselines.py"), "parse", str(root)])
    say("cold ingest")
    remove_db(db)
    raw["cold"] = bot_ingest(db, root, sample_rss=True)
    raw["db_mb"] = db_size_mb(db)
    if wanted & {"2", "8"}:
        say("naive parse + insert")
        remove_db(naive_db)
        cmd = [sys.executable, str(HERE / "baselines.py"), "naive", str(root), str(naive_db)]
        raw["naive"] = run_process(cmd, sample_rss=True)
        raw["naive_db_mb"] = db_size_mb(naive_db)
    if wanted & {"3", "4"}:
        say("unchanged rescan")
        raw["rescan"] = bot_ingest(db, root)
    if "4" in wanted:
        say("1% changed rescan")
        paths = story_paths(root)
        sample = random.Random(round_no).sample(paths, max(1, round(len(paths) * CHANGED_SHARE)))
        saved = bump_heat(sample)
        try:
            raw["changed"] = bot_ingest(db, root)
        finally:
            restore(saved)
        bot_ingest(db, root)  # back to the archive as it is
    if "7" in wanted:
        say("command line")
        raw["cli"] = cli_round(db, root, query_material(db, random.Random(round_no)))
    if wanted & {"5", "6"}:
        say("queries")
        raw["queries"] = asyncio.run(query_round(db, samples, seed=round_no))

    cold = raw["cold"]
    figures["cold_s"] = cold["seconds"]
    figures["rss_mb"] = cold["peak_tree_rss_mb"]
    figures["db_mb"] = raw["db_mb"]
    if "parse" in raw:
        figures["parse_s"] = raw["parse"]["seconds"]
        figures["1"] = raw["parse"]["seconds"] / cold["seconds"]
    if "naive" in raw:
        figures["naive_rss_mb"] = raw["naive"]["peak_tree_rss_mb"]
        figures["2"] = cold["peak_tree_rss_mb"] / raw["naive"]["peak_tree_rss_mb"]
        figures["8"] = raw["db_mb"] / raw["naive_db_mb"]
    if "rescan" in raw:
        figures["3"] = 100 * raw["rescan"]["seconds"] / cold["seconds"]
        figures["3i"] = 100 * raw["rescan"]["reported_s"] / cold["reported_s"]
    if "changed" in raw:
        figures["4"] = raw["changed"]["seconds"] / raw["rescan"]["seconds"]
        figures["4i"] = raw["changed"]["reported_s"] / max(raw["rescan"]["reported_s"], 0.005)
    if "cli" in raw:
        for command in CLI_COMMANDS:
            figures[f"7 {command}"] = raw["cli"][command] / raw["cli"]["baseline"]
    if "queries" in raw:
        figures["5"] = raw["queries"]["search"]["p99_ms"]
        figures["6"] = raw["queries"]["news"]["p99_ms"]
    for run in raw.values():
        if isinstance(run, dict):
            run.pop("stdout", None)
    kept = {k: v for k, v in figures.items() if figure_key(k) in wanted or k in INFO}
    return {"raw": raw, "figures": kept}


def delivery_round() -> dict:
    result = asyncio.run(delivery.measure())
    figures = {
        # Figure 9: the worse of its two shapes (a burst in one channel, a story in many).
        "9": max(result["per_post_ms"], result["per_post_spread_ms"]),
        "10": max(result["decide_ms"]),
        # What the decide no longer writes: its deliveries, a chunk per transaction.
        "fanout_chunk_ms": result["fanout_chunk_ms"],
        "fanout_ms": max(result["fanout_ms"]),
    }
    return {"raw": result, "figures": figures}


# -- the table ------------------------------------------------------------------------


def figure_key(key: str) -> str:
    return key.split()[0]


def label_of(key: str) -> str:
    if key in INFO:
        return INFO[key]
    label = FIGURES[figure_key(key)][0]
    return label.format(key.split()[1]) if "{}" in label else label


def fmt(value: float, unit: str) -> str:
    if unit == "%":
        return f"{value:.1f}%"
    if unit == "ms":
        return f"{value:.2f} ms"
    if unit == "x":
        return f"{value:.2f}x"
    return f"{value:,.1f}"


def met(key: str, values: list[float]) -> bool:
    _, _, kind, target, _ = FIGURES[figure_key(key)]
    if key == "10":  # "in every run": the slowest round decides
        return max(values) <= target
    value = statistics.median(values)
    return value >= target if kind == "min" else value <= target


def rows(series: dict[tuple[str, int | None], list[float]]) -> list[dict]:
    out = []

    def order(item):
        key, size = item[0]
        num = figure_key(key)
        if num in FIGURES:
            return (int(num), key, size or 0)
        return (100 + list(INFO).index(key), key, size or 0)

    for (key, size), values in sorted(series.items(), key=order):
        row = {
            "figure": key,
            "label": label_of(key),
            "size": size,
            "median": statistics.median(values),
            "min": min(values),
            "max": max(values),
            "rounds": len(values),
            "values": values,
        }
        if figure_key(key) in FIGURES:
            _, unit, kind, target, judged_at = FIGURES[figure_key(key)]
            row.update(unit=unit, target=("≥ " if kind == "min" else "≤ ") + fmt(target, unit))
            ok = met(key, values)
            official = judged_at is None or judged_at == size
            row["met"] = ok
            # Judged at the size; at other sizes the verdict is shown in brackets.
            verdict = "met" if ok else "NOT MET"
            row["verdict"] = verdict if official else f"({verdict.lower()})"
        else:
            unit = {"3i": "%", "4i": "x"}.get(key, "")
            row.update(unit=unit, target="", verdict="")
        out.append(row)
    return out


def growth_rows(series: dict) -> list[dict]:
    """Figure 2's "flat in N": the peak RSS at each size over that at the smallest."""
    out = []
    for key, label in (("rss_mb", "ingest peak RSS"), ("naive_rss_mb", "naive peak RSS")):
        sizes = sorted(s for (k, s) in series if k == key)
        if len(sizes) < 2:
            continue
        first = statistics.median(series[(key, sizes[0])])
        for size in sizes[1:]:
            value = statistics.median(series[(key, size)]) / first
            out.append(
                {
                    "figure": "2 flat",
                    "label": f"{label} at N / at {sizes[0]:,}",
                    "size": size,
                    "median": value,
                    "min": value,
                    "max": value,
                    "rounds": 1,
                    "unit": "x",
                    "target": "≈ 1 (flat)",
                    "verdict": "",
                }
            )
    return out


def table(all_rows: list[dict]) -> str:
    lines = [
        "| # | figure | stories | median | min–max | target | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in all_rows:
        size = f"{r['size']:,}" if r["size"] else "—"
        unit = r["unit"]
        spread = f"{fmt(r['min'], unit)}–{fmt(r['max'], unit)}" if r["rounds"] > 1 else ""
        num = figure_key(r["figure"]) if figure_key(r["figure"]) in FIGURES else ""
        lines.append(
            f"| {num} | {r['label']} | {size} | {fmt(r['median'], unit)} | {spread} "
            f"| {r['target']} | {r['verdict']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 300_000])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--only", default=",".join(FIGURES), help="comma-separated figures (default: all)"
    )
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/newsbot-bench"))
    parser.add_argument("--samples", type=int, default=1000, help="timed queries of each kind")
    args = parser.parse_args(argv)
    wanted = {f.strip() for f in args.only.split(",") if f.strip()}
    unknown = wanted - set(FIGURES)
    if unknown:
        parser.error(f"unknown figures: {', '.join(sorted(unknown))} (1 to 10)")
    args.workdir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    series: dict[tuple[str, int | None], list[float]] = {}
    rounds: list[dict] = []
    archive_figures = wanted - {"9", "10"}
    for size in args.sizes if archive_figures else []:
        for round_no in range(1, args.rounds + 1):
            result = size_round(args.workdir, size, round_no, archive_figures, args.samples)
            rounds.append({"size": size, "round": round_no, **result})
            for key, value in result["figures"].items():
                series.setdefault((key, size), []).append(value)
    if wanted & {"9", "10"}:
        for round_no in range(1, args.rounds + 1):
            print(f"  delivery round {round_no} …", flush=True)
            result = delivery_round()
            rounds.append({"size": None, "round": round_no, **result})
            for key, value in result["figures"].items():
                if key in wanted or key in INFO:
                    series.setdefault((key, None), []).append(value)
    elapsed = time.perf_counter() - started
    all_rows = rows(series) + growth_rows(series)
    print()
    print(table(all_rows))
    print(f"\n{args.rounds} round(s), sizes {args.sizes}, {elapsed / 60:.1f} min")
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    doc = {
        "at": stamp,
        "machine": machine(),
        "loadavg_at_end": os.getloadavg(),
        "args": {"sizes": args.sizes, "rounds": args.rounds, "only": sorted(wanted)},
        "minutes": elapsed / 60,
        "figures": FIGURES,
        "rows": all_rows,
        "rounds": rounds,
        "sqlite": sqlite3.sqlite_version,
    }
    for name in (f"paired-{stamp}.json", "paired-latest.json"):
        (out / name).write_text(json.dumps(doc, indent=2, default=str) + "\n")
    print(f"wrote {out / 'paired-latest.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
