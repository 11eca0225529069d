"""Group commit: concurrent writes of one kind gathered into one statement.

The channels of a poll are sent to several at a time, and each needs a claim before its
send and a confirmation after it. A statement costs a round trip however many rows it
writes: the requests made while one batch is being written wait, and go out together as
the next batch. Each caller gets its own result only once its batch is written (a
single statement: committed), so nothing is taken as claimed or sent before it is.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

Request = TypeVar("Request")
Result = TypeVar("Result")


class GroupCommit(Generic[Request, Result]):
    """Calls `write` with the requests gathered meanwhile, one batch at a time; `write`
    returns one result per request, in their order.

    Group commits of several kinds may share a `turn`: then one batch of any of them is
    written at a time, and while it is, the requests of every kind gather (claims and
    confirmations taking turns make batches twice as large as each on its own).
    """

    def __init__(
        self,
        write: Callable[[list[Request]], Awaitable[list[Result]]],
        turn: asyncio.Lock | None = None,
    ) -> None:
        self._write = write
        self._waiting: list[tuple[Request, asyncio.Future[Result]]] = []
        self._turn = turn or asyncio.Lock()  # one batch written at a time

    async def __call__(self, request: Request) -> Result:
        done: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._waiting.append((request, done))
        async with self._turn:
            if not done.done():  # not written with the batch before: write it, with those
                batch, self._waiting = self._waiting, []  # gathered since
                await self._write_batch(batch, done)
        return done.result()

    async def _write_batch(
        self, batch: list[tuple[Request, asyncio.Future[Result]]], own: asyncio.Future[Result]
    ) -> None:
        try:
            results = await self._write([request for request, _ in batch])
        except Exception as exc:  # every caller of the batch gets the failure
            for _, done in batch:
                done.set_exception(exc)
        except BaseException:  # cancelled: written or not, nobody can tell
            for _, done in batch:
                if done is not own:
                    done.set_exception(RuntimeError("the batch was cancelled"))
            raise
        else:
            for (_, done), result in zip(batch, results, strict=True):
                done.set_result(result)
