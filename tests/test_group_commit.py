"""Group commit: the claims and confirmations of the channels sent to at once share a
statement, and each caller learns only its own outcome, once it is written."""

from __future__ import annotations

import asyncio

from bot.group_commit import GroupCommit


async def test_calls_made_while_a_batch_is_written_go_out_together_each_with_its_result():
    batches: list[list[int]] = []

    async def write(requests: list[int]) -> list[int]:
        batches.append(requests)
        await asyncio.sleep(0)  # the round trip: others call meanwhile
        return [r * 10 for r in requests]

    double = GroupCommit(write)
    assert await asyncio.gather(*(double(n) for n in range(5))) == [0, 10, 20, 30, 40]
    assert batches == [[0], [1, 2, 3, 4]]


async def test_a_failed_batch_fails_every_call_in_it_and_not_the_next():
    calls = 0

    async def write(requests: list[int]) -> list[int]:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0)
        if calls == 2:
            raise OSError("disk I/O error")
        return requests

    echo = GroupCommit(write)
    results = await asyncio.gather(*(echo(n) for n in range(4)), return_exceptions=True)
    # The second batch failed: none of its callers takes its claim as made.
    assert results[0] == 0
    assert all(isinstance(r, OSError) for r in results[1:])
    assert await echo(7) == 7


async def test_two_kinds_sharing_a_turn_write_one_batch_at_a_time_and_gather_meanwhile():
    batches: list[tuple[str, list[int]]] = []
    writing = 0

    def writer(kind: str):
        async def write(requests: list[int]) -> list[int]:
            nonlocal writing
            writing += 1
            assert writing == 1, "two batches written at once"
            batches.append((kind, requests))
            await asyncio.sleep(0)
            writing -= 1
            return requests

        return write

    turn = asyncio.Lock()
    claim, confirm = GroupCommit(writer("claim"), turn), GroupCommit(writer("confirm"), turn)
    calls = [claim(0), confirm(1), claim(2), confirm(3), claim(4)]
    assert await asyncio.gather(*calls) == [0, 1, 2, 3, 4]
    assert batches == [("claim", [0]), ("confirm", [1, 3]), ("claim", [2, 4])]
