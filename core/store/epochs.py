"""Moments as the store keeps them: whole seconds since the epoch, UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import overload


@overload
def to_epoch(moment: datetime) -> int: ...
@overload
def to_epoch(moment: datetime | None) -> int | None: ...
def to_epoch(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp())


@overload
def from_epoch(value: int) -> datetime: ...
@overload
def from_epoch(value: int | None) -> datetime | None: ...
def from_epoch(value: int | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)
