"""The baselines of issue 12, each run as its own process by `bench/paired.py`.

    python bench/baselines.py parse ARCHIVE          # parse-only, single core
    python bench/baselines.py naive ARCHIVE DB       # naive parse + insert

Both use nothing of the project: walk the archive, read each story file, split the
front matter, `yaml.load` it with libyaml's CSafeLoader, on one core.

* `parse` stops there: the floor of what any ingest has to do.
* `naive` also inserts one row per story into a plain sqlite3 table with the same text
  columns as the project's `stories` (no FTS, no topics or providers tables, no index
  besides the primary key), in one transaction: what a straightforward script would need
  in memory and on disk.

Prints one line: the number of stories.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import sys

import yaml

SUFFIXES = (".md", ".markdown", ".txt")
NAIVE_SCHEMA = """
CREATE TABLE stories (
    rowid INTEGER PRIMARY KEY,
    id TEXT, canonical TEXT, url TEXT, fingerprint TEXT, title TEXT, excerpt TEXT,
    published_at TEXT, type TEXT, heat INTEGER, quality INTEGER, published INTEGER,
    provider_name TEXT, image_url TEXT, topics_text TEXT
)
"""


def story_files(root: str):
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.endswith(SUFFIXES) and not name.startswith("."):
                yield os.path.join(folder, name)


def front_matters(root: str):
    for path in story_files(root):
        with open(path, "rb") as fh:
            text = fh.read().decode("utf-8-sig").replace("\r\n", "\n")
        end = text.find("\n---", 3)
        yield text, yaml.load(text[4:end], Loader=yaml.CSafeLoader)


def parse(root: str) -> int:
    return sum(1 for _ in front_matters(root))


def naive(root: str, db: str) -> int:
    conn = sqlite3.connect(db)
    conn.execute(NAIVE_SCHEMA)
    count = 0
    with conn:
        for text, fm in front_matters(root):
            if not isinstance(fm, dict) or not fm.get("title"):
                continue
            url = fm.get("originalUrl") or fm.get("webUrl") or ""
            images = fm.get("images") or [{}]
            provider = fm.get("provider") or {}
            conn.execute(
                "INSERT INTO stories VALUES (NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    hashlib.sha1(url.encode()).hexdigest()[:8],
                    url.lower(),
                    url,
                    hashlib.sha1(text.encode()).hexdigest(),
                    str(fm["title"]),
                    str(fm.get("excerpt") or ""),
                    str(fm.get("publishedDateTime") or ""),
                    str(fm.get("type") or "article"),
                    fm.get("heat") or 0,
                    fm.get("quality"),
                    0 if fm.get("published") is False else 1,
                    str(provider.get("name") or ""),
                    (images[0] or {}).get("url"),
                    ", ".join(map(str, fm.get("topics") or [])),
                ),
            )
            count += 1
    conn.close()
    return count


if __name__ == "__main__":
    mode, *rest = sys.argv[1:]
    print(parse(*rest) if mode == "parse" else naive(*rest))
