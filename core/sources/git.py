"""A git source: a shallow clone in the data folder, fetched at each poll.

The `git` command line, run as a subprocess with a timeout: it is what operators
already have (Debian's `git`), it adds no dependency, and a hung fetch can be
killed cleanly. Nothing from the repository runs: no hooks (core.hooksPath is
empty), no fsmonitor, no submodules, no prompts for credentials.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from core.sources.config import Source

log = logging.getLogger(__name__)

TIMEOUT = 120  # seconds for one git command (a first clone of a large archive included)
# Options that keep the repository's content from running anything here.
SAFE = (
    "-c",
    "core.hooksPath=/dev/null",
    "-c",
    "core.fsmonitor=false",
    "-c",
    "protocol.ext.allow=never",
)


class GitError(Exception):
    """A git command failed; the message is one line."""


@dataclass(frozen=True, slots=True)
class Checkout:
    """The source's files at `commit`; `changed` lists the paths (relative to `folder`)
    that differ from the last ingested commit, or is None: rescan everything."""

    folder: Path
    commit: str
    changed: list[str] | None


def clone_folder(source: Source, data_dir: Path) -> Path:
    return data_dir / "sources" / source.name


def update(
    source: Source, data_dir: Path, last_commit: str | None, timeout: int = TIMEOUT
) -> Checkout:
    """Clone or fetch the repository and check out its newest commit (blocking)."""
    repo = clone_folder(source, data_dir)
    if not (repo / ".git").is_dir() or _origin(repo, timeout) != source.location:
        if repo.exists():
            shutil.rmtree(repo)
        repo.parent.mkdir(parents=True, exist_ok=True)
        branch = ["--branch", source.branch] if source.branch else []
        _git(
            None,
            timeout,
            "clone", "--quiet", "--depth", "1", "--single-branch", "--no-tags",
            *branch, "--", source.location, str(repo),
        )  # fmt: skip
    else:
        # No --depth: the fetch brings just the commits since ours, so the new commit's
        # history reaches the last ingested one (a plain push) or it does not (a force-push).
        followed = source.branch or _git(repo, timeout, "rev-parse", "--abbrev-ref", "HEAD")
        _git(
            repo, timeout, "fetch", "--quiet", "--no-tags", "origin",
            f"+refs/heads/{followed}:refs/remotes/origin/{followed}",
        )  # fmt: skip
        _git(repo, timeout, "reset", "--quiet", "--hard", f"refs/remotes/origin/{followed}")
    commit = _git(repo, timeout, "rev-parse", "HEAD")
    folder = repo / source.path if source.path else repo
    if not folder.is_dir():
        raise GitError(f"the repository has no folder {source.path!r} at {commit[:12]}")
    return Checkout(folder, commit, _changes(repo, source, last_commit, commit, timeout))


def _changes(
    repo: Path, source: Source, last: str | None, new: str, timeout: int
) -> list[str] | None:
    """Paths under the source's folder changed from `last` to `new`; None: rescan all."""
    if last is None:
        return None
    if last == new:
        return []
    try:
        # A force-push rewrote history (or the commit is gone): trust nothing, rescan.
        _git(repo, timeout, "merge-base", "--is-ancestor", last, new)
    except GitError:
        log.info(
            "git source %s: %s is not an ancestor of %s; rescanning all",
            source.name,
            last[:12],
            new[:12],
        )
        return None
    scope = ["--", source.path] if source.path else []
    out = _git(repo, timeout, "diff", "--name-only", "--no-renames", "-z", last, new, *scope)
    strip = len(source.path) + 1 if source.path else 0
    return [path[strip:] for path in out.split("\0") if path]


def _origin(repo: Path, timeout: int) -> str | None:
    try:
        return _git(repo, timeout, "remote", "get-url", "origin")
    except GitError:
        return None


def _git(repo: Path | None, timeout: int, *args: str) -> str:
    where = ["-C", str(repo)] if repo is not None else []
    env = {
        **os.environ,
        "GIT_TERMINAL_PROMPT": "0",  # never wait for a password on a private URL
        "GIT_ASKPASS": "true",
        "GIT_CONFIG_NOSYSTEM": "1",
        "LC_ALL": "C",
    }
    try:
        done = subprocess.run(
            ["git", *SAFE, *where, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except FileNotFoundError:
        raise GitError("the git command is not installed (apt-get install git)") from None
    except subprocess.TimeoutExpired:
        raise GitError(f"git {args[0]} took longer than {timeout}s") from None
    if done.returncode != 0:
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        raise GitError(f"git {args[0]} failed: {lines[-1] if lines else f'exit {done.returncode}'}")
    return done.stdout.strip("\n") if "-z" not in args else done.stdout
