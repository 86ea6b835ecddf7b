"""The event loop's default executor for ``check``, ``poll`` and ``serve``: daemon threads, never waited for.

The loop runs name lookups (``getaddrinfo``) in its default executor, and cancelling cannot stop
a lookup that a silent DNS server leaves hanging (30 s and more). With the standard executor
``asyncio.run`` waits for such a thread as it ends, and so does the interpreter as it exits: a
check ended long after its ``--timeout``, past the 60 s a monitoring system allows it (and a
``poll --timeout`` in a cron job long after its own). Its few
threads can also all be taken by such lookups, which leaves none for the exporter's own work.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

__all__ = ["DaemonThreads", "unheld"]

T = TypeVar("T")


class DaemonThreads(concurrent.futures.ThreadPoolExecutor):
    """An executor whose calls each run in a daemon thread of their own, and whose shutdown does
    not wait for them."""

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[T]:
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def call() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                future.set_exception(exc)
            else:
                future.set_result(result)

        threading.Thread(target=call, name="vbo-async worker", daemon=True).start()
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Nothing to wait for: the threads are daemons."""


async def unheld(work: Awaitable[T]) -> T:
    """Await ``work`` with `DaemonThreads` as the running loop's default executor."""
    asyncio.get_running_loop().set_default_executor(DaemonThreads())
    return await work
