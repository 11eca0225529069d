"""The floor of any rescan: walk an archive's folders and stat every file, nothing else.

    python bench/walk_floor.py ARCHIVE

An unchanged rescan cannot be faster than this (it must notice a changed file by its
size and time). Prints the number of files, the walk's time and the time in `stat`.
"""

from __future__ import annotations

import os
import sys
import time


def main(root: str) -> None:
    started, in_stat, files = time.perf_counter(), 0.0, 0
    folders = [root]
    while folders:
        with os.scandir(folders.pop()) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    folders.append(entry.path)
                    continue
                before = time.perf_counter()
                entry.stat()
                in_stat += time.perf_counter() - before
                files += 1
    walked = time.perf_counter() - started
    print(f"{files} files: walk and stat {walked:.3f} s, of which stat {in_stat:.3f} s")


if __name__ == "__main__":
    main(sys.argv[1])
