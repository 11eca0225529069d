#!/usr/bin/env python3
"""Set up the project's virtual environment and run it: the README's two commands.

    python3 dev.py run     # install (first time), then start the bot: connected to
                           # Discord with DISCORD_TOKEN, else the offline playground;
                           # playground options pass on: dev.py run --no-browser
    python3 dev.py test    # install with the test tools, then lint, type-check (mypy)
                           # and run every test

Needs only Python 3.11+. Installing is skipped when pyproject.toml has not
changed since the last install, so the second run starts at once.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")


def ensure_installed(extras: str) -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py may be run by any python3
        sys.exit(f"Python 3.11 or newer is needed, this is {sys.version.split()[0]}.")
    if not PYTHON.exists():
        print("Creating the virtual environment in .venv ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    stamp = VENV / f".installed-{extras or 'base'}"
    if stamp.exists() and stamp.read_text() == digest:
        return
    print(f"Installing the project{f' with [{extras}]' if extras else ''} ...", flush=True)
    target = f"{ROOT}[{extras}]" if extras else str(ROOT)
    subprocess.run(
        [PYTHON, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-e", target],
        check=True,
    )
    stamp.write_text(digest)


def run(*args: str | Path) -> int:
    """Run a command in the project; Ctrl-C and SIGTERM are passed on, not fatal to us.

    On a terminal, Ctrl-C reaches the child directly; a signal sent to this process
    alone (a service manager, `kill`) is forwarded, so the bot shuts down cleanly.
    """
    child = subprocess.Popen([str(a) for a in args], cwd=ROOT)

    def forward(signum, _frame) -> None:
        if child.poll() is None:
            child.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "run"
    rest = argv[1:]
    if command == "run":
        ensure_installed("playground")
        return run(PYTHON, "-m", "bot", *rest)
    if command == "test":
        ensure_installed("test")
        checks = (
            ("ruff", "check", "."),
            ("ruff", "format", "--check", "."),
            ("mypy",),  # what and how strictly: [tool.mypy] in pyproject.toml
        )
        for check in checks:
            if code := run(PYTHON, "-m", *check):
                return code
        return run(PYTHON, "-m", "pytest", *rest)
    sys.exit(f"usage: python3 dev.py [run|test] [args...] (got {command!r})")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
