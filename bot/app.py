"""Wiring the bot together (grows with the Discord issue)."""

from __future__ import annotations

import sys

from bot.config import Config


def run_bot(config: Config) -> int:
    print(
        "Connecting to Discord arrives with the next issue; for now use ingest/search.",
        file=sys.stderr,
    )
    return 1


def invite_url() -> str:
    raise SystemExit("not yet")
