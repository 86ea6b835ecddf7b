"""Single-flight sharing: identical GETs in flight make one request, whoever waits for them.

The first caller (the leader) runs the work itself, in its own task: a request nobody else asks
for at the same time costs no task, no future and no extra trip through the event loop. Callers
asking for the same key meanwhile (followers) each wait on a future of their own, which the
leader resolves as the work ends: cancelling a follower cancels only its future.

The leader cancelled while followers still wait cannot leave them its work (it ran in the
leader's task, and was cancelled with it): the work starts again in a task of its own for them
(one more request, a GET), and from then on the flight works as a shared one: a waiter
cancelled leaves the task running for the others, the last one cancelled cancels it, so nothing
outlives its callers. Work started to finish alone (`Flights.run`'s ``finish_alone``: a token
renewal: its grant may use up the refresh token it sends, and is counted by the server whether
or not it is awaited) always runs in a task of its own and
goes on when its last waiter is cancelled. Only a `Flights` made with ``lead=True`` (the
fetcher's navigation GETs) lets the first caller run the work; the others (token renewals, the
discovery of the API version) run every work in a task, shared as above.

Closing (`Flights.cancel_all`) cancels every work in flight: a task by cancelling it, a leader's
by cancelling the leader's task, as `asyncio.timeout` does, and turning that cancellation, once
delivered and taken back (``Task.uncancel``), into `ClientStateError`; a leader also cancelled
from outside still ends cancelled. Every waiter gets `ClientStateError`.

After a job action the work in flight is no longer joined (`Flights.detach_all`): a read asked
for after the action must not get an answer sent before it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Hashable
from typing import Any, TypeVar

from ._exceptions import ClientStateError

__all__ = ["Flights"]

T = TypeVar("T")


class _Flight:
    """One shared piece of work: who runs it (its leader, or a task) and who waits for it."""

    __slots__ = ("closing", "finish_alone", "key", "leader", "owner", "stopped", "task", "waiters", "work")

    def __init__(self, owner: Flights, key: Hashable, *, finish_alone: bool = False) -> None:
        self.owner = owner
        self.key = key
        self.finish_alone = finish_alone
        """Whether the work goes on once its last waiter is cancelled (until it ends, or
        `Flights.cancel_all`): it runs in a task of its own."""
        self.leader: asyncio.Task[Any] | None = None
        """The caller's task running the work itself, while it runs (None in a task's flight)."""
        self.task: asyncio.Task[None] | None = None
        self.waiters: list[asyncio.Future[Any]] = []
        """The followers' futures (and, in a task's flight, every caller's)."""
        self.work: Coroutine[Any, Any, Any] | None = None
        """A task's work, closed unstarted if the task is cancelled before it runs."""
        self.closing = False
        """`Flights.cancel_all` has cancelled the leader."""
        self.stopped: asyncio.Future[None] | None = None
        """What `Flights.cancel_all` waits on until the cancelled leader's work has unwound."""

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

    def deliver(self, result: Any) -> None:
        for waiter in self.waiters:
            if not waiter.done():
                waiter.set_result(result)

    def fail(self, exc: BaseException) -> None:
        for waiter in self.waiters:
            if not waiter.done():
                waiter.set_exception(exc)

    def ended(self, task: asyncio.Task[None]) -> None:
        """A task's done callback. A task cancelled before it started never ran `_fly`: its
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

    def start_task(self, work: Coroutine[Any, Any, Any]) -> None:
        """Run ``work`` in a task of its own for the waiters listed (before the task is made: an
        eager task, Python 3.12's eager_task_factory, may run the work to its end inside
        create_task, and hands its outcome to the waiters listed by then)."""
        self.work = work
        started = self.task = asyncio.get_running_loop().create_task(_fly(self, work))
        started.add_done_callback(self.ended)


class Flights:
    """The shared work of one client, by key (a URL and what it is decoded into)."""

    def __init__(self, closed_message: str, *, lead: bool = False) -> None:
        self._lead_inline = lead
        """Whether the first caller runs the work itself (else every work runs in a task: work
        whose caller's task must not be the one running it, as a token grant closing the
        client from inside, whose task that close cancels when its time is over)."""
        self._flights: dict[Hashable, _Flight] = {}
        self._detached: set[_Flight] = set()
        """Work still in flight that no later caller joins (`detach_all`), until it ends."""
        self._closed_message = closed_message

    async def run(
        self, key: Hashable, load: Callable[[], Coroutine[Any, Any, T]], *, finish_alone: bool = False
    ) -> T:
        """Run ``load`` once for every caller waiting on ``key`` at the same time: the first
        runs it, the others wait for its outcome. Work started ``finish_alone`` runs in a task
        and is not cancelled when its last waiter is: it ends on its own (or at `cancel_all`),
        and a caller arriving meanwhile joins it."""
        flight = self._flights.get(key)
        if flight is not None:
            waiter: asyncio.Future[T] = asyncio.get_running_loop().create_future()
            flight.waiters.append(waiter)
            return await self._wait(flight, waiter)
        work = load()  # before the flight is listed: a load that raises leaves no flight to join
        flight = self._flights[key] = _Flight(self, key, finish_alone=finish_alone)
        leader = asyncio.current_task()
        if finish_alone or not self._lead_inline or leader is None:
            waiter = asyncio.get_running_loop().create_future()
            flight.waiters.append(waiter)
            flight.start_task(work)
            return await self._wait(flight, waiter)
        flight.leader = leader
        return await self._lead(flight, leader, work, load)  # type: ignore[no-any-return]

    async def _lead(
        self,
        flight: _Flight,
        leader: asyncio.Task[Any],
        work: Coroutine[Any, Any, Any],
        load: Callable[[], Coroutine[Any, Any, Any]],
    ) -> Any:
        """Run ``work`` in the leader's own task and hand its outcome to the followers."""
        try:
            try:
                result = await work
            finally:
                flight.leader = None
                if flight.closing:
                    leader.uncancel()  # `cancel_all`'s cancellation, delivered by now
        except asyncio.CancelledError:
            if flight.closing:
                flight.land()
                error = ClientStateError(self._closed_message)
                flight.fail(error)
                if leader.cancelling():  # also cancelled from outside: that wins
                    raise
                raise error from None
            # Followers cancelled too (with it, say) have their futures cancelled already.
            if any(not waiter.done() for waiter in flight.waiters):
                self._hand_on(flight, load)
            else:
                flight.land()
            raise
        except BaseException as exc:
            flight.land()
            flight.fail(exc)
            raise
        else:
            flight.land()
            flight.deliver(result)
            return result
        finally:
            if flight.stopped is not None and not flight.stopped.done():
                flight.stopped.set_result(None)

    @staticmethod
    def _hand_on(flight: _Flight, load: Callable[[], Coroutine[Any, Any, Any]]) -> None:
        """The followers of a leader cancelled still want the work: anew, in a task (a ``load``
        that raises at once fails them instead)."""
        try:
            work = load()
        except Exception as exc:
            flight.land()
            flight.fail(exc)
        else:
            flight.start_task(work)

    async def _wait(self, flight: _Flight, waiter: asyncio.Future[T]) -> T:
        """Wait for ``flight``'s outcome on ``waiter``; the last waiter of a task's flight (not
        started to finish alone) cancelled cancels the task."""
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
        """Cancel every work still running and wait until it has stopped; all but the work
        of the caller of this, if it is one (closing from inside a request in flight): a task
        that waits for itself never ends."""
        current = asyncio.current_task()
        stopping: list[asyncio.Future[Any]] = []
        for flight in (*self._flights.values(), *self._detached):
            task, leader = flight.task, flight.leader
            if task is not None and task is not current:
                task.cancel()
                stopping.append(task)
            elif leader is not None and leader is not current:
                if not flight.closing:  # once, also when closed twice at a time
                    flight.closing = True
                    flight.stopped = asyncio.get_running_loop().create_future()
                    leader.cancel()
                if flight.stopped is not None:
                    stopping.append(flight.stopped)
        if stopping:
            await asyncio.gather(*stopping, return_exceptions=True)
        self._flights.clear()
        self._detached.clear()


async def _fly(flight: _Flight, work: Coroutine[Any, Any, Any]) -> None:
    """Run ``work`` in a task and hand its outcome to every waiter still waiting for it."""
    try:
        result = await work
    except asyncio.CancelledError:
        flight.land()
        for waiter in flight.waiters:
            waiter.cancel()
        raise
    except BaseException as exc:
        flight.land()
        flight.fail(exc)
        if not isinstance(exc, Exception):
            raise  # KeyboardInterrupt, SystemExit: the event loop's to handle
    else:
        flight.land()
        flight.deliver(result)


def _being_cancelled() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
