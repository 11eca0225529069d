"""Leases and claims: what keeps several bot processes on one database from doing a thing
twice. Each step that two processes could race on is ONE statement, atomic by itself on
both backends (SQLite serialises writers; PostgreSQL re-checks the WHERE of a row another
transaction changed meanwhile), so no transaction is held across a send to Discord.

- A lease (`leases`) is a row its holder renews; anyone may take it once it expired.
- A delivery (or digest) leaves 'pending' only through a claim: the UPDATE … WHERE
  state = 'pending' … RETURNING that names this process; exactly one process gets a row.
- A claim whose process's 'alive:' lease expired is taken over (the same kind of UPDATE,
  naming the new process) and reconciled from the channel by the one that took it.
"""

from __future__ import annotations

from datetime import datetime

from core.models import DeliveryState
from core.sharding import ALIVE_PREFIX, Shards
from core.store.base import StoreBase
from core.store.epochs import from_epoch, to_epoch

# The SQL types of a claim's (channel, story, time): the rows of `claim_delivery_batch`.
CLAIM_TYPES = ("BIGINT", "TEXT", "BIGINT")


class ClaimQueries(StoreBase):
    """Leases and claims (see the module's docstring)."""

    # -- leases --------------------------------------------------------------------

    async def take_lease(self, name: str, holder: str, now: datetime, until: datetime) -> bool:
        """Take or renew the lease `name` until `until`; False: another holder has it."""
        rows = await self._rows(
            """
            INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?)
            ON CONFLICT (name) DO UPDATE SET
                holder = excluded.holder, expires_at = excluded.expires_at
            WHERE leases.expires_at < ? OR leases.holder = excluded.holder
            RETURNING holder
            """,
            (name, holder, to_epoch(until), to_epoch(now)),
        )
        return bool(rows)

    async def release_lease(self, name: str, holder: str) -> None:
        """Give the lease up now (a clean stop): another process need not wait it out."""
        await self._execute("DELETE FROM leases WHERE name = ? AND holder = ?", (name, holder))

    async def leases(self) -> list[tuple[str, str, datetime]]:
        """Every lease as (name, holder, expires at), expired or not, by name."""
        rows = await self._rows("SELECT name, holder, expires_at FROM leases ORDER BY name")
        found = []
        for row in rows:
            expires = from_epoch(row["expires_at"])
            assert expires is not None
            found.append((row["name"], row["holder"], expires))
        return found

    # -- delivery claims -----------------------------------------------------------

    async def claim_deliveries(
        self, channel_id: int, story_ids: list[str], holder: str, now: datetime
    ) -> set[str]:
        """Claim the channel's pending deliveries of these stories for sending; returns
        those this process got (another process may have claimed or sent the rest).

        A claim counts an attempt; `sent_at` is when the send started (reconciliation
        reads the channel from then on).
        """
        if not story_ids:
            return set()
        marks = ",".join("?" * len(story_ids))
        rows = await self._rows(
            f"""
            UPDATE deliveries SET
                state = ?, claimed_by = ?, claimed_at = ?, sent_at = ?,
                attempts = attempts + 1, last_error = NULL
            WHERE channel_id = ? AND state = ?
              AND story IN (SELECT rowid FROM stories WHERE id IN ({marks}))
            RETURNING (SELECT id FROM stories WHERE rowid = deliveries.story) AS story_id
            """,
            (
                DeliveryState.SENDING,
                holder,
                to_epoch(now),
                to_epoch(now),
                channel_id,
                DeliveryState.PENDING,
                *story_ids,
            ),
        )
        return {row["story_id"] for row in rows}

    async def claim_delivery_batch(
        self, claims: list[tuple[int, str, datetime]], holder: str
    ) -> set[tuple[int, str]]:
        """`claim_deliveries` for (channel, story, time the send starts) of several
        channels at once, in one statement; returns the (channel, story) claimed."""
        if len({(channel, at) for channel, _, at in claims}) == 1:
            # One channel's (the only kind a burst in one channel makes): its own UPDATE
            # costs SQLite less than an UPDATE … FROM a list.
            channel, _, at = claims[0]
            stories = [story_id for _, story_id, _ in claims]
            return {(channel, s) for s in await self.claim_deliveries(channel, stories, holder, at)}
        return await self._claim_several(claims, holder) if claims else set()

    async def _claim_several(
        self, claims: list[tuple[int, str, datetime]], holder: str
    ) -> set[tuple[int, str]]:
        rows = await self._rows(
            f"""
            WITH wanted (channel_id, story_id, at) AS (
                VALUES {values_rows(CLAIM_TYPES, len(claims))}
            )
            UPDATE deliveries SET
                state = ?, claimed_by = ?, claimed_at = wanted.at, sent_at = wanted.at,
                attempts = attempts + 1, last_error = NULL
            FROM wanted JOIN stories s ON s.id = wanted.story_id
            WHERE deliveries.channel_id = wanted.channel_id AND deliveries.story = s.rowid
              AND deliveries.state = ?
            RETURNING deliveries.channel_id,
                (SELECT id FROM stories WHERE rowid = deliveries.story) AS story_id
            """,
            (
                *(v for c, story_id, at in claims for v in (c, story_id, to_epoch(at))),
                DeliveryState.SENDING,
                holder,
                DeliveryState.PENDING,
            ),
        )
        return {(row["channel_id"], row["story_id"]) for row in rows}

    async def release_claims(self, channel_id: int, story_ids: list[str], holder: str) -> int:
        """Give back claims whose send never started (a poll claims a channel's due stories
        at once and stops early when the channel fails): pending again, the attempt the
        claim counted undone. Only this process's claims; returns how many."""
        if not story_ids:
            return 0
        marks = ",".join("?" * len(story_ids))
        return await self._execute(
            f"""
            UPDATE deliveries SET state = ?, claimed_by = NULL, attempts = attempts - 1
            WHERE channel_id = ? AND state = ? AND claimed_by = ?
              AND story IN (SELECT rowid FROM stories WHERE id IN ({marks}))
            """,
            (DeliveryState.PENDING, channel_id, DeliveryState.SENDING, holder, *story_ids),
        )

    async def take_over_deliveries(
        self, holder: str, now: datetime, shards: Shards
    ) -> set[tuple[int, str]]:
        """Claims of processes whose alive lease expired (or from before claims), on these
        shards, become this process's; returns them, with this process's own claims, as
        (channel id, story id): those not in flight here are to be reconciled. `sent_at`
        stays: the send being reconciled started then."""
        where, params = shard_condition("guild_id", shards)
        rows = await self._rows(
            f"""
            UPDATE deliveries SET claimed_by = ?, claimed_at = ?
            WHERE state = ? AND {where} AND (
                claimed_by IS NULL OR claimed_by = ? OR NOT EXISTS (
                    SELECT 1 FROM leases l
                    WHERE l.name = ? || deliveries.claimed_by AND l.expires_at >= ?
                )
            )
            RETURNING channel_id, (SELECT id FROM stories WHERE rowid = deliveries.story)
                AS story_id
            """,
            (
                holder,
                to_epoch(now),
                DeliveryState.SENDING,
                *params,
                holder,
                ALIVE_PREFIX,
                to_epoch(now),
            ),
        )
        return {(row["channel_id"], row["story_id"]) for row in rows}

    # -- digest claims -------------------------------------------------------------

    async def claim_digest(
        self, subscription_id: int, end: datetime, holder: str, now: datetime
    ) -> bool:
        """Claim a pending digest for sending, as `claim_deliveries` does a delivery."""
        rows = await self._rows(
            """
            UPDATE digests SET
                state = 'sending', claimed_by = ?, claimed_at = ?, sent_at = ?,
                attempts = attempts + 1, last_error = NULL
            WHERE subscription = ? AND period_end = ? AND state = 'pending'
            RETURNING subscription
            """,
            (holder, to_epoch(now), to_epoch(now), subscription_id, to_epoch(end)),
        )
        return bool(rows)

    async def take_over_digests(
        self, holder: str, now: datetime, shards: Shards
    ) -> set[tuple[int, datetime]]:
        """Digest claims of dead processes and this one's, as `take_over_deliveries`:
        (subscription, end)."""
        where, params = shard_condition("guild_id", shards)
        rows = await self._rows(
            f"""
            UPDATE digests SET claimed_by = ?, claimed_at = ?
            WHERE state = 'sending' AND {where} AND (
                claimed_by IS NULL OR claimed_by = ? OR NOT EXISTS (
                    SELECT 1 FROM leases l
                    WHERE l.name = ? || digests.claimed_by AND l.expires_at >= ?
                )
            )
            RETURNING subscription, period_end
            """,
            (holder, to_epoch(now), *params, holder, ALIVE_PREFIX, to_epoch(now)),
        )
        taken = set()
        for row in rows:
            end = from_epoch(row["period_end"])
            assert end is not None
            taken.add((row["subscription"], end))
        return taken


def values_rows(types: tuple[str, ...], rows: int) -> str:
    """A VALUES list of `rows` rows of parameters of these SQL types (typed: PostgreSQL
    cannot infer a parameter's type there)."""
    row = "(" + ", ".join(f"CAST(? AS {t})" for t in types) + ")"
    return ", ".join([row] * rows)


def shard_condition(column: str, shards: Shards) -> tuple[str, list[int]]:
    """SQL true for rows whose guild (`column`) is on `shards`, and its parameters."""
    if shards.all:
        return "1 = 1", []
    marks = ",".join("?" * len(shards.ids))
    return f"({column} >> 22) % ? IN ({marks})", [shards.count or 1, *shards.ids]
