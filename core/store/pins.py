"""Pins: which story messages moderators pinned, where, by whom and when."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import aiosqlite

from core.models import Story
from core.store.stories import STORY_COLUMNS, from_epoch, story_from_row, to_epoch

PIN_COLUMNS = "pin.guild_id, pin.channel_id, pin.message_id, pin.pinned_by, pin.pinned_at"
PIN_FROM = """
    pins pin JOIN stories s ON s.rowid = pin.story LEFT JOIN providers p ON p.id = s.provider_id
"""


@dataclass(frozen=True, slots=True)
class Pin:
    """A story message pinned in a channel; `pinned_by` is None when pinned outside the bot."""

    guild_id: int
    channel_id: int
    message_id: int
    story: Story
    pinned_by: int | None
    pinned_at: datetime

    @property
    def jump_url(self) -> str:
        return f"https://discord.com/channels/{self.guild_id}/{self.channel_id}/{self.message_id}"


def pin_from_row(row) -> Pin:
    # The story's columns come first (see STORY_COLUMNS), the pin's after them.
    story = story_from_row(row)
    guild_id, channel_id, message_id, pinned_by, pinned_at = row[17:22]
    return Pin(guild_id, channel_id, message_id, story, pinned_by, from_epoch(pinned_at))


class PinQueries:
    """Mixed into `Store`; `self.db` is its aiosqlite connection."""

    db: aiosqlite.Connection

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
        cursor = await self.db.execute(
            """
            INSERT INTO pins (guild_id, channel_id, message_id, story, pinned_by, pinned_at)
            SELECT ?, ?, ?, rowid, ?, ? FROM stories WHERE id = ?
            ON CONFLICT (message_id) DO UPDATE SET
                story = excluded.story, pinned_by = excluded.pinned_by,
                pinned_at = excluded.pinned_at
            """,
            (guild_id, channel_id, message_id, pinned_by, to_epoch(now), story_id),
        )
        return cursor.rowcount > 0

    async def remove_pins(self, message_ids: Iterable[int]) -> list[Pin]:
        """Forget the pins of these messages; returns the pins that were recorded."""
        ids = list(dict.fromkeys(message_ids))
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        query = f"""
            SELECT {STORY_COLUMNS}, {PIN_COLUMNS} FROM {PIN_FROM} WHERE pin.message_id IN ({marks})
        """
        rows = await self.db.execute_fetchall(query, ids)
        await self.db.execute(f"DELETE FROM pins WHERE message_id IN ({marks})", ids)
        return [pin_from_row(r) for r in rows]

    async def pin(self, message_id: int) -> Pin | None:
        query = f"SELECT {STORY_COLUMNS}, {PIN_COLUMNS} FROM {PIN_FROM} WHERE pin.message_id = ?"
        rows = await self.db.execute_fetchall(query, (message_id,))
        return pin_from_row(rows[0]) if rows else None

    async def channel_pins(self, channel_id: int, story_id: str | None = None) -> list[Pin]:
        """The channel's pinned stories, newest pin first (of one story if given)."""
        query = f"""
            SELECT {STORY_COLUMNS}, {PIN_COLUMNS} FROM {PIN_FROM}
            WHERE pin.channel_id = ? AND (?2 IS NULL OR s.id = ?2)
            ORDER BY pin.pinned_at DESC, pin.id DESC
        """
        rows = await self.db.execute_fetchall(query, (channel_id, story_id))
        return [pin_from_row(r) for r in rows]

    async def guild_pins(self, guild_id: int) -> list[Pin]:
        """The server's pinned stories, newest pin first."""
        query = f"""
            SELECT {STORY_COLUMNS}, {PIN_COLUMNS} FROM {PIN_FROM}
            WHERE pin.guild_id = ? ORDER BY pin.pinned_at DESC, pin.id DESC
        """
        rows = await self.db.execute_fetchall(query, (guild_id,))
        return [pin_from_row(r) for r in rows]

    async def is_story_pinned(self, guild_id: int | None, story_id: str) -> bool:
        """Whether the story is pinned in any channel of the server."""
        if guild_id is None:
            return False
        rows = await self.db.execute_fetchall(
            """
            SELECT 1 FROM pins JOIN stories s ON s.rowid = pins.story
            WHERE pins.guild_id = ? AND s.id = ? LIMIT 1
            """,
            (guild_id, story_id),
        )
        return bool(rows)

    async def pinned_message_ids(self, channel_id: int) -> set[int]:
        rows = await self.db.execute_fetchall(
            "SELECT message_id FROM pins WHERE channel_id = ?", (channel_id,)
        )
        return {row[0] for row in rows}

    async def pin_channels(self) -> list[tuple[int, int]]:
        """(guild_id, channel_id) of every channel with recorded pins."""
        rows = await self.db.execute_fetchall(
            "SELECT DISTINCT guild_id, channel_id FROM pins ORDER BY guild_id, channel_id"
        )
        return [(guild_id, channel_id) for guild_id, channel_id in rows]

    async def delete_channel_pins(self, channel_id: int) -> int:
        cursor = await self.db.execute("DELETE FROM pins WHERE channel_id = ?", (channel_id,))
        return cursor.rowcount

    async def delete_guild_pins(self, guild_id: int) -> int:
        cursor = await self.db.execute("DELETE FROM pins WHERE guild_id = ?", (guild_id,))
        return cursor.rowcount
