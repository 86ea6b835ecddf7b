"""Running several awaitables as one call: all of them or none (`all_or_nothing`, `both` for two
of different types), and the same for many items by a bounded number of tasks (`each`). Either
way no task outlives the call: on the first failure the others are cancelled and waited for
before it is raised."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, TypeVar, cast

__all__ = ["all_or_nothing", "both", "each"]

T = TypeVar("T")
R = TypeVar("R")
A = TypeVar("A")
B = TypeVar("B")


async def all_or_nothing(calls: list[Coroutine[Any, Any, T]]) -> list[T]:
    """The results of ``calls``, run at the same time; on the first failure the others are
    cancelled and waited for before it is raised (no request outlives the call that made it)."""
    tasks = [asyncio.ensure_future(call) for call in calls]
    try:
        return await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        raise


async def both(first: Coroutine[Any, Any, A], second: Coroutine[Any, Any, B]) -> tuple[A, B]:
    """`all_or_nothing` of two calls whose results differ in type."""
    one, two = await all_or_nothing([first, second])
    return cast(A, one), cast(B, two)


async def each(items: Sequence[T], work: Callable[[T], Awaitable[R]], limit: int) -> list[R]:
    """``work`` of every item (the results in the items' order), at most ``limit`` at once, by
    that many tasks taking the items in turn: not a task per item waiting for one of the
    client's slots (about 6 KB each, which a listing of a million turns into gigabytes). The
    first failure is raised as it is once the others are cancelled and have ended."""
    pending = enumerate(items)
    done: dict[int, R] = {}

    async def take() -> None:
        for index, item in pending:
            done[index] = await work(item)

    await all_or_nothing([take() for _ in range(min(limit, len(items)))])
    return [done[index] for index in range(len(items))]
