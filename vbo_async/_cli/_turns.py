"""Turns: how many of ``serve``'s servers may use the network at the same time, resizable.

A sweep and a logout at shutdown each take a turn (`Turns.turn`). `Turns.resize` changes how
many may be taken at once while turns are held (a SIGHUP's reload counting the servers again):
those held count against the new number, so a reload never lets the old and the new number of
servers run side by side, and waiters are served in order of arrival. `close_in_turns` closes
clients (logging them out) in turns, within a time limit. `in_slot` runs work in a slot of a
semaphore that a silent server gives back after a while (poll's and check's listings).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from .._client import VBOClient

__all__ = ["Turns", "close_in_turns", "in_slot"]

log = logging.getLogger("vbo_async.cli")
T = TypeVar("T")


class Turns:
    """At most ``at_once`` turns held at the same time (None: no bound; every turn is still
    counted, so that a later `resize` bounds the turns already held too)."""

    def __init__(self, at_once: int | None = None) -> None:
        self.at_once = at_once
        self.held = 0
        """The turns held now."""
        self._waiting: deque[asyncio.Future[None]] = deque()

    @property
    def bounded(self) -> bool:
        """Whether turns are taken (fewer at once than asked for)."""
        return self.at_once is not None

    def resize(self, at_once: int | None) -> None:
        """From now on at most ``at_once`` turns at once (None: no bound); the turns held keep
        going and count against it."""
        self.at_once = at_once
        self._wake()

    async def acquire(self) -> None:
        """Wait for a turn (in order of arrival) and take it."""
        if not self._waiting and self._free():
            self.held += 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.cancelled():
                with contextlib.suppress(ValueError):
                    self._waiting.remove(waiter)
            else:  # given the turn, then cancelled before it could use it: the next one's
                self.release()
            raise

    def release(self) -> None:
        """Give a turn back."""
        self.held -= 1
        self._wake()

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """A turn, held while the block runs."""
        await self.acquire()
        try:
            yield
        finally:
            self.release()

    def _free(self) -> bool:
        return self.at_once is None or self.held < self.at_once

    def _wake(self) -> None:
        while self._waiting and self._free():
            waiter = self._waiting.popleft()
            if not waiter.done():
                self.held += 1
                waiter.set_result(None)


async def close_in_turns(
    clients: Sequence[VBOClient],
    turns: Turns,
    *,
    within: float | None = None,
    abandon: asyncio.Event | None = None,
) -> int:
    """Close ``clients``, each logging out in a turn of ``turns``; those whose logout has not
    ended ``within`` seconds from now (None: no bound but each logout's own), or once
    ``abandon`` is set, are closed without it. Returns how many were."""
    if not clients:
        return 0
    loop = asyncio.get_running_loop()
    ended = asyncio.Event()
    timer = loop.call_later(within, ended.set) if within is not None else None
    relay = loop.create_task(_relay(abandon, ended), name="vbo_async logouts") if abandon else None
    try:
        logged_out = await asyncio.gather(*(_close_in_turn(client, turns, ended) for client in clients))
    finally:
        if timer is not None:
            timer.cancel()
        if relay is not None:
            relay.cancel()
            await asyncio.gather(relay, return_exceptions=True)
    return len(clients) - sum(logged_out)


async def _relay(source: asyncio.Event, target: asyncio.Event) -> None:
    await source.wait()
    target.set()


async def _close_in_turn(client: VBOClient, turns: Turns, ended: asyncio.Event) -> bool:
    """Close ``client`` in a turn of ``turns``; whether it closed before ``ended`` was set. A
    client that gets no turn before then is closed at once, without logging out."""
    if ended.is_set() or not await _unless(ended, turns.acquire()):
        # No turn: the close sends nothing, and waits for no grant in flight (``aclose()`` would,
        # for the logout's few seconds, to log out the token it brings: past the time limit).
        await client._close(log_out=False)
        return False
    try:
        return await _unless(ended, client.aclose())
    finally:
        turns.release()


async def _unless(ended: asyncio.Event, work: Coroutine[Any, Any, object]) -> bool:
    """Run ``work`` until it ends (True) or ``ended`` is set (False: cancelled and waited for;
    a close cancelled still closes its client, without its logout). Its failure is logged, not
    raised: closing goes on."""
    loop = asyncio.get_running_loop()
    task = loop.create_task(work)
    waiting = loop.create_task(ended.wait())
    try:
        await asyncio.wait({task, waiting}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiting.cancel()
        if not task.done():
            task.cancel()
        outcome = (await asyncio.gather(task, waiting, return_exceptions=True))[0]
    if isinstance(outcome, Exception):  # a bug: the close goes on with the other clients
        log.error("closing a client failed on an internal error", exc_info=outcome)
    return not task.cancelled()


async def in_slot(slots: asyncio.Semaphore, hold: float, work: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """The outcome of ``work()``, begun once one of ``slots`` is free and holding it for at most
    ``hold`` seconds: work still running then (a server that accepts connections and never
    answers, whose attempts each last the client's 30 s) gives the slot to the next waiter and
    goes on outside it. A slot bounds the work being done at once, not the work waiting for
    an answer, so that a few silent servers cannot keep every other one waiting past a sweep's
    deadline. Cancelled, the work is cancelled and waited for: it never outlives the call."""
    async with slots:
        task = asyncio.get_running_loop().create_task(work())
        try:
            await asyncio.wait([task], timeout=hold)
        except BaseException:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            raise
    try:
        return await task
    finally:
        if not task.done():  # cancelled while waiting outside the slot
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
