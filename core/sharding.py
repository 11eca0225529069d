"""Several bot processes: which guilds each serves, who it is, how long its word holds.

Discord splits a bot's guilds into shards by id: guild `g` is on shard
`(g >> 22) % shard_count`. A process runs a range of shards (NEWS_SHARD_IDS of
NEWS_SHARD_COUNT) and delivers only to channels of guilds on them. What two processes
must never both do is settled in the store, not here: a delivery is claimed with one
atomic statement before it is sent, and one process at a time holds the rescan lease.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.store.protocol import NewsStore

log = logging.getLogger(__name__)

RESCAN_LEASE = "rescan"  # the one process that rescans the archive and plans deliveries
ALIVE_PREFIX = "alive:"  # + a process id: its claims are its own while this lease lasts
# Never shorter than this: a process renews its leases once per poll, and a poll's sends
# must finish well within the lease (see `lease_length`).
MIN_LEASE = timedelta(seconds=90)


def shard_of(guild_id: int, shard_count: int) -> int:
    """The shard Discord puts a guild on."""
    return (guild_id >> 22) % shard_count


@dataclass(frozen=True, slots=True)
class Shards:
    """The shards one process serves: `ids` of `count`; no count serves every guild."""

    count: int | None = None
    ids: tuple[int, ...] = ()

    @classmethod
    def everything(cls) -> Shards:
        return cls()

    @property
    def all(self) -> bool:
        return self.count is None or set(self.ids) >= set(range(self.count))

    def serves(self, guild_id: int) -> bool:
        return self.all or shard_of(guild_id, self.count or 1) in self.ids

    def describe(self) -> str:
        if self.count is None:
            return "every shard"
        return f"shards {format_shard_ids(self.ids)} of {self.count}"


EVERY_SHARD = Shards.everything()  # one process for every guild (the default)


def parse_shard_ids(text: str, count: int) -> tuple[int, ...]:
    """`0-3`, `0,2` or `0-1,4`: sorted, unique shard ids below `count`.

    Raises ValueError with a message for the operator.
    """
    ids: set[int] = set()
    for part in text.replace(" ", "").split(","):
        low, dash, high = part.partition("-")
        try:
            first = int(low)
            last = int(high) if dash else first
        except ValueError:
            raise ValueError(f"{part!r} is not a shard id or a range like 0-3") from None
        if first > last:
            raise ValueError(f"{part!r} is an empty range")
        if first < 0 or last >= count:
            raise ValueError(f"{part!r} is outside 0-{count - 1} (NEWS_SHARD_COUNT is {count})")
        ids.update(range(first, last + 1))
    return tuple(sorted(ids))


def format_shard_ids(ids: tuple[int, ...]) -> str:
    """The shortest `0-3,5` spelling of sorted ids."""
    runs: list[list[int]] = []
    for shard in ids:
        if runs and shard == runs[-1][-1] + 1:
            runs[-1].append(shard)
        else:
            runs.append([shard])
    return ",".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs)


def new_process_id() -> str:
    """This process's name in leases and claims: `host:pid:scope:random` (a restarted
    process is a new one: its predecessor's claims are reconciled, never assumed)."""
    import secrets  # here: it loads OpenSSL (3.5 MB), which an ingest never needs

    return f"{socket.gethostname()}:{os.getpid()}:{pid_scope()}:{secrets.token_hex(3)}"


def pid_scope() -> str:
    """Where a pid names one process: this kernel's boot and this pid namespace (host
    names can repeat, and every container's first process is pid 1)."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip().replace("-", "")
    except OSError:  # not Linux: the host name stands in for the machine
        boot = socket.gethostname()
    try:
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        namespace = 0
    return f"{boot[:12]}.{namespace}"


def machine_of(process_id: str) -> str | None:
    """The machine (kernel boot) a process id names, None for a name of another form."""
    parts = process_id.split(":")
    return parts[2].partition(".")[0] if len(parts) == 4 else None


def gone_from_this_machine(process_id: str) -> bool:
    """True when the process named `process_id` ran in this pid namespace of this machine
    and is no more: its pid is not running, or is this very process (a bot rebuilt
    within it, as the tests and the playground do). Then its leases need not be waited
    out: a restart after a crash takes over at once. Anything else (another machine or
    container, a live or foreign pid) waits for the lease to expire."""
    parts = process_id.split(":")
    if len(parts) != 4 or parts[2] != pid_scope() or not parts[1].isdigit():
        return False
    pid = int(parts[1])
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return True
    except OSError:  # alive, another user's (or unknowable): wait for the lease
        return False
    return False


def lease_length(poll_seconds: int) -> timedelta:
    """How long a lease (and the claims under an alive lease) lasts without renewal:
    three polls, so that one slow poll never lets it lapse."""
    return max(MIN_LEASE, timedelta(seconds=3 * poll_seconds))


class ProcessLeases:
    """This process among the others on one database: its id, its alive lease (its
    claims are its own while it lasts), and whether it holds the rescan lease."""

    def __init__(self, store: NewsStore, poll_seconds: int, process_id: str | None = None) -> None:
        self.store = store
        self.id = process_id or new_process_id()
        self.length = lease_length(poll_seconds)
        self.rescanner = False
        self._alive_until: datetime | None = None

    async def start(self, now: datetime) -> bool:
        """At start-up: free what earlier processes of this machine left (see
        `gone_from_this_machine`), renew the alive lease, and try for the rescan lease;
        True if this process is the rescanner."""
        for name, holder, _ in await self.store.leases():
            if holder != self.id and gone_from_this_machine(holder):
                log.info("lease %s of the stopped process %s is free", name, holder)
                await self.store.release_lease(name, holder)
        await self.keep_alive(now)
        return await self.take_rescan(now)

    async def other_machines(self, now: datetime) -> set[str]:
        """The host names of other machines (kernels: containers of one machine are one)
        whose processes hold a live lease here."""
        here = machine_of(self.id) or machine_of(new_process_id())
        return {
            holder.partition(":")[0]
            for _, holder, expires in await self.store.leases()
            if expires >= now and machine_of(holder) not in (None, here)
        }

    async def keep_alive(self, now: datetime) -> None:
        """Renew the alive lease (once a poll). Warns when it had lapsed: the process
        stalled, and another may have taken over (and re-sent) what it was sending."""
        if self._alive_until is not None and now > self._alive_until:
            log.warning(
                "process %s stalled past its lease (expired %s): its sends may have been"
                " taken over by another process",
                self.id,
                self._alive_until.isoformat(),
            )
        await self.store.take_lease(ALIVE_PREFIX + self.id, self.id, now, now + self.length)
        self._alive_until = now + self.length

    async def keep_alive_if_due(self, now: datetime) -> None:
        """Within a long poll: renew once a third of the lease is used, else do nothing."""
        if self._alive_until is None or self._alive_until - now < self.length * 2 / 3:
            await self.keep_alive(now)

    async def take_rescan(self, now: datetime) -> bool:
        """Take or renew the rescan lease; True while this process is the rescanner."""
        was = self.rescanner
        self.rescanner = await self.store.take_lease(RESCAN_LEASE, self.id, now, now + self.length)
        if self.rescanner and not was:
            log.info("process %s rescans the archive and plans deliveries", self.id)
        elif was and not self.rescanner:
            log.warning("process %s lost the rescan lease to another process", self.id)
        return self.rescanner

    async def release(self) -> None:
        """A clean stop: the others need not wait for the leases to expire."""
        await self.store.release_lease(RESCAN_LEASE, self.id)
        await self.store.release_lease(ALIVE_PREFIX + self.id, self.id)
