"""The stores: every SQL statement of the project lives in this package.

`NewsStore` and `ArchiveWriter` (protocol.py) are the contract the rest of the code
types against; `Store` is their SQLite implementation, `core.store.postgres` their
PostgreSQL one. `open_store(NEWS_DB)` picks by the setting: a `postgresql://` URL is
PostgreSQL, anything else a SQLite file.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from core.store.protocol import ArchiveWriter, NewsStore

if TYPE_CHECKING:
    from core.models import Pin
    from core.store.sqlite import Store, check_database, open_store, opened_store
    from core.store.stories import quote_fts

__all__ = [
    "ArchiveWriter",
    "NewsStore",
    "Pin",
    "Store",
    "check_database",
    "is_postgres_url",
    "open_store",
    "opened_store",
    "quote_fts",
]
URL_SCHEMES = ("postgresql://", "postgres://")
# Where the names below are, imported at their first use: the SQLite store loads asyncio
# and aiosqlite (11 MB), which `python -m bot ingest` into SQLite never needs.
_LAZY = {
    "Pin": "core.models",
    "Store": "core.store.sqlite",
    "check_database": "core.store.sqlite",
    "open_store": "core.store.sqlite",
    "opened_store": "core.store.sqlite",
    "quote_fts": "core.store.stories",
}


def is_postgres_url(target: object) -> bool:
    """Does NEWS_DB name a PostgreSQL database (else it is a SQLite file)?"""
    return isinstance(target, str) and target.startswith(URL_SCHEMES)


def __getattr__(name: str) -> object:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name]), name)
