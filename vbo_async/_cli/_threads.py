"""The event loop's default executor for ``check``, ``poll`` and ``serve``: daemon threads, never waited for.

The loop runs name lookups (``getaddrinfo``) in its default executor, and cancelling cannot stop
a lookup that a silent DNS server leaves hanging (30 s and more). With the standard executor
``asyncio.run`` waits for such a thread as it ends, and so does the interpreter as it exits: a
check ended long after its ``--timeout``, past the 60 s a monitoring system allows it (and a
``poll --timeout`` in a cron job long after its own). Its few
threads can also all be taken by such lookups, which leaves none for the exporter's own work.

The threads are still bounded (`MAX_THREADS` at once): a call beyond that, or one the system
refuses a thread, fails at once with `NoThread`. A name lookup failing on it fails as a lookup
does: that server's request raises a `TransportError`, a bare ``RuntimeError`` never escapes.
The commands run on a loop of their own (`run_unheld`) whose end starts no thread either.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import signal
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from _vbo_async_cli import SigtermHandler, Terminated, sigterm_handled, terminated_raises

from .._exceptions import ConfigError, TransportError

__all__ = [
    "MAX_THREADS",
    "DaemonThreads",
    "NoThread",
    "Terminated",
    "run_unheld",
    "terminated_raises",
    "unheld",
]

T = TypeVar("T")

MAX_THREADS = 256
"""How many calls a `DaemonThreads` runs at once. A name lookup that never ends holds its thread
for good, but a client shares a lookup in progress between its requests (one thread per server
whose lookups hang, not one per sweep); a targets file needs far fewer."""


class NoThread(TransportError, OSError):
    """A call `DaemonThreads` cannot run: `MAX_THREADS` of its calls are still running (name
    lookups that never end), or the system refused a new thread. Also an ``OSError``, as a failed
    name lookup is: the request that needed the lookup raises a `TransportError`."""


class DaemonThreads(concurrent.futures.ThreadPoolExecutor):
    """An executor whose calls each run in a daemon thread of their own, at most ``max_threads``
    at once (beyond that a call raises `NoThread` at once), and whose shutdown does not wait for
    them."""

    def __init__(self, max_threads: int = MAX_THREADS) -> None:
        if isinstance(max_threads, bool) or not isinstance(max_threads, int) or max_threads < 1:
            raise ConfigError(f"max_threads must be a positive integer, got {max_threads!r}")
        super().__init__()
        self.max_threads = max_threads
        self._running = 0
        self._counting = threading.Lock()

    @property
    def running(self) -> int:
        """How many calls are running (or about to) in threads of this executor."""
        return self._running

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[T]:
        with self._counting:
            if self._running >= self.max_threads:
                raise NoThread(
                    f"cannot start a thread: {self.max_threads} threads are still running"
                    " (name lookups that do not end?)"
                )
            self._running += 1
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def call() -> None:
            result: Any = None
            failure: BaseException | None = None
            started = future.set_running_or_notify_cancel()
            if started:
                try:
                    result = fn(*args, **kwargs)
                except BaseException as exc:
                    failure = exc
            self._release()  # before the outcome is delivered: whoever gets it may call again
            if not started:
                return
            if failure is not None:
                future.set_exception(failure)
            else:
                future.set_result(result)

        try:
            threading.Thread(target=call, name="vbo-async worker", daemon=True).start()
        except RuntimeError as exc:  # "can't start new thread": a process or system limit
            self._release()
            raise NoThread(f"cannot start a thread: {exc}") from exc
        return future

    def _release(self) -> None:
        with self._counting:
            self._running -= 1

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Nothing to wait for: the threads are daemons."""


async def unheld(work: Awaitable[T]) -> T:
    """Await ``work`` with `DaemonThreads` as the running loop's default executor."""
    asyncio.get_running_loop().set_default_executor(DaemonThreads())
    return await work


class _UnheldLoop(asyncio.SelectorEventLoop):
    """An event loop whose end does not shut a `DaemonThreads` default executor down: asyncio
    starts a thread for that whatever the executor, and in a process refused every thread (a
    container at its process limit) the command failed there, after its work was done."""

    _daemons = False

    def set_default_executor(self, executor: Any) -> None:
        super().set_default_executor(executor)
        self._daemons = isinstance(executor, DaemonThreads)

    async def shutdown_default_executor(self, *args: Any, **kwargs: Any) -> None:
        # From Python 3.12 asyncio passes a timeout, which 3.11's method does not take: pass on
        # whatever was given.
        if not self._daemons:  # DaemonThreads has nothing to wait for (see its `shutdown`)
            await super().shutdown_default_executor(*args, **kwargs)


def run_unheld(work: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(unheld(work))``, on a loop whose end starts no thread (`_UnheldLoop`). A
    SIGTERM meanwhile ends it as `asyncio.Runner` ends it on Ctrl-C: the work is cancelled by the
    loop, between callbacks (its cleanup runs, no callback is cut in the middle), then
    `Terminated` is raised; a second SIGTERM, or one before the work started, raises it at once.
    A prompt, which blocks the loop, has SIGTERM raise where it waits (`terminated_raises`)."""
    received: list[int] = []
    started: list[asyncio.Task[Any]] = []
    with asyncio.Runner(loop_factory=_UnheldLoop) as runner:
        loop = runner.get_loop()

        def on_sigterm() -> None:
            if received or not started:
                raise Terminated
            received.append(signal.SIGTERM)
            loop.call_soon_threadsafe(started[0].cancel)

        async def tracked() -> T:
            task = asyncio.current_task()
            assert task is not None  # run by the runner
            started.append(task)
            return await unheld(work)

        with sigterm_handled(SigtermHandler(on_sigterm)):
            try:
                return runner.run(tracked())
            except asyncio.CancelledError:
                if received:
                    raise Terminated from None
                raise
