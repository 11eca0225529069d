"""A parse worker: `python -m core.parse_worker ROOT STRIP`, started by `core.ingest`.

It imports the parser only (no store, no bot, no multiprocessing: ~20 MB instead of a
spawned worker's ~30 MB and its resource tracker). Requests come pickled on stdin, one
per chunk: (paths, {path: known hash}); for each, in order, the list of packed results
(`pack`: hash, result, fingerprint) goes back pickled on stdout. It exits at the end of
stdin, which is also what it sees when the ingest process dies (it holds the only write
end), so no worker outlives its parent.
"""

from __future__ import annotations

import operator
import os
import pickle
import queue
import sys
import threading
from typing import Any, BinaryIO

from core.archive import ParseResult, parse_file
from core.fingerprint import fingerprint
from core.models import Coverage, Story

# Between processes a Story travels as a plain tuple of its fields (its related links as
# tuples too): pickling frozen slots dataclasses costs about twice as much, both ways.
_story_fields = operator.attrgetter(*Story.__slots__)
_coverage_fields = operator.attrgetter(*Coverage.__slots__)
_RELATED = Story.__slots__.index("related")
# (hash, result, fingerprint) as a worker sends it back
Packed = tuple[str, ParseResult | tuple[Any, ...] | None, str | None]


def parse_chunk(
    root: str, paths: list[str], known_hashes: dict[str, str], strip: int = 0
) -> list[Packed]:
    """Parse the files of one chunk: (hash, result, fingerprint) each, a Story as a tuple."""
    out: list[Packed] = []
    for path in paths:
        digest, result = parse_file(root, path[strip:], known_hashes.get(path))
        if type(result) is Story:
            fields = _story_fields(result)
            if result.related:
                related = tuple(map(_coverage_fields, result.related))
                fields = (*fields[:_RELATED], related, *fields[_RELATED + 1 :])
            out.append((digest, fields, fingerprint(result)))
        else:
            out.append((digest, result, None))
    return out


def unpack(packed: Packed) -> tuple[str, ParseResult | None, str | None]:
    """The (hash, result, fingerprint) that `parse_chunk` packed."""
    digest, result, print_ = packed
    if isinstance(result, tuple):  # a Story (no other result is a tuple)
        related = result[_RELATED]
        if related:
            result = (
                *result[:_RELATED],
                tuple(Coverage(*c) for c in related),
                *result[_RELATED + 1 :],
            )
        result = Story(*result)
    return digest, result, print_


def serve(root: str, strip: int, requests: BinaryIO, replies: BinaryIO) -> None:
    """Answer each request of `requests` on `replies`, until `requests` ends."""
    # stdin is drained by a thread: the ingest may send the next chunks while this
    # process waits for it to read a large reply, and neither must wait for the other.
    waiting: queue.SimpleQueue[Any] = queue.SimpleQueue()

    def read() -> None:
        try:
            while True:
                waiting.put(pickle.load(requests))
        except (EOFError, OSError, pickle.UnpicklingError):
            waiting.put(None)

    # Replies are written by a thread too: a rescan reads them only once its walk is
    # done, and meanwhile this process parses on instead of waiting on a full pipe.
    answers: queue.SimpleQueue[Any] = queue.SimpleQueue()

    def write() -> None:
        try:
            while (answer := answers.get()) is not None:
                pickle.dump(answer, replies, protocol=5)
                replies.flush()
        except BrokenPipeError:  # the ingest stopped reading (closing or gone)
            os._exit(0)

    threading.Thread(target=read, daemon=True).start()
    writing = threading.Thread(target=write)
    writing.start()
    while (request := waiting.get()) is not None:
        paths, known_hashes = request
        answers.put(parse_chunk(root, paths, known_hashes, strip))
    answers.put(None)
    writing.join()


def main() -> None:
    root, strip = sys.argv[1], int(sys.argv[2])
    try:
        serve(root, strip, sys.stdin.buffer, sys.stdout.buffer)
    except BrokenPipeError:  # the ingest stopped reading (closing or gone): nothing to flush
        os._exit(0)


if __name__ == "__main__":
    main()
