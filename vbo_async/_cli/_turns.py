"""Turns: how many of ``serve``'s servers may use the network at the same time, resizable.

A sweep and a logout at shutdown each take a turn (`Turns.turn`). `Turns.resize` changes how
many may be taken at once while turns are held (a SIGHUP's reload counting the servers again):
those held count against the new number, so a reload never lets the old and the new number of
servers run side by side, and waiters are served in order of arrival.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator

__all__ = ["Turns"]


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
