"""A story's content fingerprint: what ingest compares to decide whether to rewrite a story.

It hashes a canonical JSON of the story's fields, sorted by name, leaving out every field
that holds its default value. A field added to `Story` (with a default) therefore leaves
the fingerprint of every story that does not use it unchanged: the next ingest rewrites
only the stories whose files actually say something new.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from functools import cache
from typing import Any

from core.archive import content_hash
from core.models import Story

# Set by the store, not read from the archive: not part of what a file says.
STORE_ONLY = frozenset({"first_seen_at", "heat_changed_at"})
_MISSING = object()


def fingerprint(story: Story) -> str:
    """Changes whenever anything a reader could see of the story changes."""
    text = _encoder.encode(_fields(story))
    return content_hash(text.encode())  # the same digest as a file's content


def _fields(value: Any) -> dict[str, Any]:
    """A dataclass's fields that do not hold their default value."""
    cls: type = type(value)  # so mypy sees a class, which is hashable, not type[Any]
    return {
        name: item for name, default in _defaults(cls) if (item := getattr(value, name)) != default
    }


def _plain(value: Any) -> Any:
    """JSON for what `json` does not know: a nested dataclass (coverage), a datetime."""
    if isinstance(value, datetime):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _fields(value)
    raise TypeError(f"no canonical JSON for {type(value).__name__}")


_encoder = json.JSONEncoder(
    sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=_plain
)


@cache
def _defaults(cls: type) -> tuple[tuple[str, Any], ...]:
    """(name, default) of the fields a fingerprint covers; no default: never equal."""
    out = []
    for f in dataclasses.fields(cls):
        if f.name in STORE_ONLY:
            continue
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = _MISSING
        out.append((f.name, default))
    return tuple(out)
