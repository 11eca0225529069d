"""Claims as PostgreSQL takes them: several channels' claims in one statement lock their
rows in one order, skipping those another process is claiming right now (one channel's
claim, `claim_deliveries`, meets its rows in one order already).

SQLite runs one writer at a time; PostgreSQL runs two processes' claims side by side,
and an UPDATE of several rows locks them in whatever order its plan meets them: two
batches of overlapping channels, met in opposite orders, would deadlock (and one would
fail). Locked in (story, channel) order, they cannot; a row another process holds is
skipped rather than waited for: that process gets it (or, if its claim fails, the row
stays pending for the next poll).
"""

from __future__ import annotations

from datetime import datetime

from core.models import DeliveryState
from core.store.claims import ClaimQueries
from core.store.epochs import to_epoch
from core.store.postgres.base import PostgresBase


class PostgresClaimQueries(ClaimQueries, PostgresBase):
    """`ClaimQueries` with the batch of claims locked in order (see the module)."""

    async def _claim_several(
        self, claims: list[tuple[int, str, datetime]], holder: str
    ) -> set[tuple[int, str]]:
        values = ", ".join(
            f"(${n}::bigint, ${n + 1}::text, ${n + 2}::bigint)"
            for n in range(1, 3 * len(claims), 3)
        )
        after = 3 * len(claims)
        rows = await self._pg_rows(
            f"""
            WITH wanted (channel_id, story_id, at) AS (VALUES {values}),
            claimable AS (
                SELECT d.channel_id, d.story, wanted.at
                FROM wanted JOIN stories s ON s.id = wanted.story_id
                JOIN deliveries d ON d.channel_id = wanted.channel_id AND d.story = s.rowid
                WHERE d.state = ${after + 1}
                ORDER BY d.story, d.channel_id
                FOR UPDATE OF d SKIP LOCKED
            )
            UPDATE deliveries SET
                state = ${after + 2}, claimed_by = ${after + 3}, claimed_at = claimable.at,
                sent_at = claimable.at, attempts = attempts + 1, last_error = NULL
            FROM claimable
            WHERE deliveries.channel_id = claimable.channel_id
              AND deliveries.story = claimable.story
            RETURNING deliveries.channel_id,
                (SELECT id FROM stories WHERE rowid = deliveries.story) AS story_id
            """,
            *(v for channel, story_id, at in claims for v in (channel, story_id, to_epoch(at))),
            DeliveryState.PENDING,
            DeliveryState.SENDING,
            holder,
        )
        return {(row["channel_id"], row["story_id"]) for row in rows}
