"""Single-flight sharing: identical GETs in flight make one request, whoever waits for them.

The work runs in its own task, so a waiter cancelled leaves it running for the others (one
request, many waiters); the last waiter cancelled cancels it, so nothing outlives its callers.
After a job action the work in flight is no longer joined (`Flights.detach_all`): a read asked
for after the action must not get an answer sent before it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Hashable
from typing import Any, TypeVar

import attrs

from ._exceptions import ClientStateError

__all__ = ["Flights"]

T = TypeVar("T")


@attrs.define(eq=False)
class _Flight:
    task: asyncio.Task[Any]
    waiters: int = 0


class Flights:
    """The shared work of one client, by key (a URL and what it is decoded into)."""

    def __init__(self, closed_message: str) -> None:
        self._flights: dict[Hashable, _Flight] = {}
        self._detached: set[_Flight] = set()
        """Work still in flight that no later caller joins (`detach_all`), until it ends."""
        self._closed_message = closed_message

    async def run(self, key: Hashable, load: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """Run ``load`` once for every caller waiting on ``key`` at the same time."""
        flight = self._flights.get(key)
        if flight is None:
            flight = _Flight(asyncio.get_running_loop().create_task(load()))
            self._flights[key] = flight
            flight.task.add_done_callback(self._landed(key, flight))
        flight.waiters += 1
        try:
            return await asyncio.shield(flight.task)
        except asyncio.CancelledError:
            if flight.task.cancelled() and not _being_cancelled():
                raise ClientStateError(self._closed_message) from None
            raise
        finally:
            flight.waiters -= 1
            if flight.waiters == 0 and not flight.task.done():
                flight.task.cancel()
                # A caller arriving before the cancelled task unwinds must start a new flight,
                # not join this one and see its cancellation.
                if self._flights.get(key) is flight:
                    del self._flights[key]

    def detach_all(self) -> None:
        """Let every later caller start work of its own: what is in flight now began before
        something changed on the server (a job action), and its waiters keep it."""
        self._detached.update(self._flights.values())
        self._flights.clear()

    async def cancel_all(self) -> None:
        """Cancel every shared work still running and wait until it has stopped."""
        tasks = [flight.task for flight in (*self._flights.values(), *self._detached)]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._flights.clear()
        self._detached.clear()

    def _landed(self, key: Hashable, flight: _Flight) -> Callable[[asyncio.Task[Any]], None]:
        def done(task: asyncio.Task[Any]) -> None:
            if self._flights.get(key) is flight:
                del self._flights[key]
            self._detached.discard(flight)
            if not task.cancelled():
                task.exception()  # retrieved: every waiter re-raises it

        return done


def _being_cancelled() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
