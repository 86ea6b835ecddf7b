"""Single-flight sharing: identical GETs in flight make one request, whoever waits for them.

The work runs in its own task, so a waiter cancelled leaves it running for the others (one
request, many waiters); the last waiter cancelled cancels it, so nothing outlives its callers,
unless it was started to finish alone (`Flights.run`'s ``finish_alone``: a token renewal, whose
grant may use up the refresh token it sends).
Each waiter waits on a future of its own, which the task resolves as the work ends: cancelling a
waiter cancels only its future. (That is what `asyncio.shield` gives, without its second future,
its callbacks and the extra trip through the event loop they cost every request.) After a job
action the work in flight is no longer joined (`Flights.detach_all`): a read asked for after the
action must not get an answer sent before it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Hashable
from typing import Any, TypeVar

from ._exceptions import ClientStateError

__all__ = ["Flights"]

T = TypeVar("T")


class _Flight:
    """One shared piece of work: its task and the futures of those waiting for it."""

    __slots__ = ("finish_alone", "key", "owner", "task", "waiters", "work")

    def __init__(self, owner: Flights, key: Hashable, *, finish_alone: bool = False) -> None:
        self.owner = owner
        self.key = key
        self.finish_alone = finish_alone
        """Whether the work goes on once its last waiter is cancelled (until it ends, or
        `Flights.cancel_all`)."""
        self.task: asyncio.Task[None] | None = None
        self.waiters: list[asyncio.Future[Any]] = []
        self.work: Coroutine[Any, Any, Any] | None = None

    def unlist(self) -> None:
        """Leave the table of work callers join: the next caller for the key starts new work."""
        flights = self.owner._flights
        if flights.get(self.key) is self:
            del flights[self.key]

    def land(self) -> None:
        """The work has ended: `unlist`, and no longer among the detached (`Flights.detach_all`).
        The key (a URL a server chose, up to 64 KiB) is let go: the task's done callback holds
        the flight until the loop runs it, which a listing whose every page ends without
        suspending (an in-memory transport on an eager loop) put off until its last page."""
        self.unlist()
        self.key = None
        self.owner._detached.discard(self)

    def ended(self, task: asyncio.Task[None]) -> None:
        """The task's done callback. A task cancelled before it started never ran `_fly`: its
        waiters are cancelled here, and its work closed unstarted (otherwise `_fly` has resolved
        them all and run the work, and this does nothing). A KeyboardInterrupt or SystemExit the
        task ended with went to its waiters and out of the event loop: retrieved here, it is not
        reported once more as "Task exception was never retrieved"."""
        if not task.cancelled():
            task.exception()
        self.land()
        if self.work is not None:
            self.work.close()
        for waiter in self.waiters:
            waiter.cancel()


class Flights:
    """The shared work of one client, by key (a URL and what it is decoded into)."""

    def __init__(self, closed_message: str) -> None:
        self._flights: dict[Hashable, _Flight] = {}
        self._detached: set[_Flight] = set()
        """Work still in flight that no later caller joins (`detach_all`), until it ends."""
        self._closed_message = closed_message

    async def run(
        self, key: Hashable, load: Callable[[], Coroutine[Any, Any, T]], *, finish_alone: bool = False
    ) -> T:
        """Run ``load`` once for every caller waiting on ``key`` at the same time. Work started
        ``finish_alone`` is not cancelled when its last waiter is: it ends on its own (or at
        `cancel_all`), and a caller arriving meanwhile joins it."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[T] = loop.create_future()
        flight = self._flights.get(key)
        if flight is None:
            work = load()  # before the flight is listed: a load that raises leaves no flight to join
            flight = self._flights[key] = _Flight(self, key, finish_alone=finish_alone)
            flight.work = work
            # Listed before the task is made: an eager task (Python 3.12's eager_task_factory)
            # may run the work to its end inside create_task, and hands its outcome to the
            # waiters listed by then.
            flight.waiters.append(waiter)
            started = flight.task = loop.create_task(_fly(flight, work))
            started.add_done_callback(flight.ended)
        else:
            flight.waiters.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            shared = flight.task
            if shared is not None and shared.cancelled() and not _being_cancelled():
                raise ClientStateError(self._closed_message) from None
            raise
        finally:
            waiters = flight.waiters
            waiters.remove(waiter)
            if waiter.done() and not waiter.cancelled():
                waiter.exception()  # retrieved, also when this caller was cancelled before reading it
            shared = flight.task
            if not waiters and shared is not None and not shared.done() and not flight.finish_alone:
                shared.cancel()
                # A caller arriving before the cancelled task unwinds must start a new flight,
                # not join this one and see its cancellation.
                flight.unlist()

    def detach_all(self) -> None:
        """Let every later caller start work of its own: what is in flight now began before
        something changed on the server (a job action), and its waiters keep it."""
        self._detached.update(self._flights.values())
        self._flights.clear()

    async def cancel_all(self) -> None:
        """Cancel every shared work still running and wait until it has stopped; all but the
        work calling this, if it does (closing from inside a request in flight): a task that
        waits for itself never ends."""
        flights = (*self._flights.values(), *self._detached)
        current = asyncio.current_task()
        tasks = [flight.task for flight in flights if flight.task is not None and flight.task is not current]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._flights.clear()
        self._detached.clear()


async def _fly(flight: _Flight, work: Coroutine[Any, Any, Any]) -> None:
    """Run ``work`` and hand its outcome to every waiter still waiting for it."""
    try:
        result = await work
    except asyncio.CancelledError:
        flight.land()
        for waiter in flight.waiters:
            waiter.cancel()
        raise
    except BaseException as exc:
        flight.land()
        for waiter in flight.waiters:
            if not waiter.done():
                waiter.set_exception(exc)
        if not isinstance(exc, Exception):
            raise  # KeyboardInterrupt, SystemExit: the event loop's to handle
    else:
        flight.land()
        for waiter in flight.waiters:
            if not waiter.done():
                waiter.set_result(result)


def _being_cancelled() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
