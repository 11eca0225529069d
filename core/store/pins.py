"""Pins: which story messages moderators pinned, where, by whom and when."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from datetime import datetime

from core.models import Pin
from core.store.base import StoreBase
from core.store.epochs import from_epoch, to_epoch
from core.store.stories import STORY_COLUMNS, story_from_row

# Prefixed, so that they can be selected beside STORY_COLUMNS and read by name.
PIN_COLUMNS = """
    pin.guild_id AS pin_guild_id, pin.channel_id AS pin_channel_id,
    pin.message_id AS pin_message_id, pin.pinned_by AS pin_pinned_by,
    pin.pinned_at AS pin_pinned_at
"""
PIN_FROM = """
    pins pin JOIN stories s ON s.rowid = pin.story LEFT JOIN providers p ON p.id = s.provider_id
"""


def pin_from_row(row: sqlite3.Row) -> Pin:
    """A pin from a row selecting `PIN_COLUMNS` and `STORY_COLUMNS`."""
    pinned_at = from_epoch(row["pin_pinned_at"])
    assert pinned_at is not None  # NOT NULL in the schema
    return Pin(
        guild_id=row["pin_guild_id"],
        channel_id=row["pin_channel_id"],
        message_id=row["pin_message_id"],
        story=story_from_row(row),
        pinned_by=row["pin_pinned_by"],
        pinned_at=pinned_at,
    )


class PinQueries(StoreBase):
    """Pins: which story messages moderators pinned, where, by whom and when."""

    async def record_pin(
        self,
        *,
        guild_id: int,
        channel_id: int,
        message_id: int,
        story_id: str,
        pinned_by: int | None,
        now: datetime,
    ) -> bool:
        """Remember that `message_id` (carrying the story) is pinned; False if no such story.

        Pinning a message already recorded makes the new pin the one remembered.
        """
        recorded = await self._execute(
            """
            INSERT INTO pins (guild_id, channel_id, message_id, story, pinned_by, pinned_at)
            SELECT ?, ?, ?, rowid, ?, ? FROM stories WHERE id = ?
            ON CONFLICT (message_id) DO UPDATE SET
                story = excluded.story, pinned_by = excluded.pinned_by,
                pinned_at = excluded.pinned_at
            """,
            (guild_id, channel_id, message_id, pinned_by, to_epoch(now), story_id),
        )
        return recorded > 0

    async def remove_pins(self, message_ids: Iterable[int]) -> list[Pin]:
        """Forget the pins of these messages; returns the pins that were recorded."""
        ids = list(dict.fromkeys(message_ids))
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        query = f"""
            SELECT {STORY_COLUMNS}, {PIN_COLUMNS} FROM {PIN_FROM} WHERE pin.message_id IN ({marks})
        """
        async with self.atomic():
            rows = await self._rows(query, ids)
            await self._execute(f"DELETE FROM pins WHERE message_id IN ({marks})", ids)
        return [pin_from_row(r) for r in rows]

    async def pin(self, message_id: int) -> Pin | None:
        query = f"SELECT {STORY_COLUMNS}, {PIN_COLUMNS} FROM {PIN_FROM} WHERE pin.message_id = ?"
        row = await self._row(query, (message_id,))
        return None if row is None else pin_from_row(row)

    async def channel_pins(self, channel_id: int, story_id: str | None = None) -> list[Pin]:
        """The channel's pinned stories, newest pin first (of one story if given)."""
        query = f"""
            SELECT {STORY_COLUMNS}, {PIN_COLUMNS} FROM {PIN_FROM}
            WHERE pin.channel_id = ? AND (?2 IS NULL OR s.id = ?2)
            ORDER BY pin.pinned_at DESC, pin.id DESC
        """
        rows = await self._rows(query, (channel_id, story_id))
        return [pin_from_row(r) for r in rows]

    async def guild_pins(self, guild_id: int) -> list[Pin]:
        """The server's pinned stories, newest pin first."""
        query = f"""
            SELECT {STORY_COLUMNS}, {PIN_COLUMNS} FROM {PIN_FROM}
            WHERE pin.guild_id = ? ORDER BY pin.pinned_at DESC, pin.id DESC
        """
        rows = await self._rows(query, (guild_id,))
        return [pin_from_row(r) for r in rows]

    async def is_story_pinned(self, guild_id: int | None, story_id: str) -> bool:
        """Whether the story is pinned in any channel of the server."""
        if guild_id is None:
            return False
        rows = await self._rows(
            """
            SELECT 1 FROM pins JOIN stories s ON s.rowid = pins.story
            WHERE pins.guild_id = ? AND s.id = ? LIMIT 1
            """,
            (guild_id, story_id),
        )
        return bool(rows)

    async def pinned_message_ids(self, channel_id: int) -> set[int]:
        rows = await self._rows("SELECT message_id FROM pins WHERE channel_id = ?", (channel_id,))
        return {row["message_id"] for row in rows}

    async def pin_channels(self) -> list[tuple[int, int]]:
        """(guild_id, channel_id) of every channel with recorded pins."""
        rows = await self._rows(
            "SELECT DISTINCT guild_id, channel_id FROM pins ORDER BY guild_id, channel_id"
        )
        return [(row["guild_id"], row["channel_id"]) for row in rows]

    async def delete_channel_pins(self, channel_id: int) -> int:
        return await self._execute("DELETE FROM pins WHERE channel_id = ?", (channel_id,))

    async def delete_guild_pins(self, guild_id: int) -> int:
        return await self._execute("DELETE FROM pins WHERE guild_id = ?", (guild_id,))
