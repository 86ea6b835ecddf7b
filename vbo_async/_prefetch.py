"""Prefetching the links a sweep follows: one request per distinct link and client for a whole sweep."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, deque
from collections.abc import Iterable
from typing import Any

from ._client import VBOClient
from ._exceptions import VBOError
from ._links import Link, ThroughLink
from ._models import Job
from ._results import LinkKey, detached

__all__ = ["LinkCache"]

log = logging.getLogger("vbo_async")

_Outcome = tuple[object, VBOError | None]


class LinkCache:
    """One read per distinct link for the whole sweep; every job naming the link awaits it.

    Keyed by the client and the rebased URL (and the link's kind and model, which a URL implies in
    practice), so fifty jobs sharing one repository cost one GET per client. A `ThroughLink` (a
    v6+ job's proxy, through its repository) resolves both steps through the same cache, so the
    repository is fetched once for ``repository`` and ``proxy`` alike. The links are read by as
    many tasks per client as it sends requests at once, taking them in turn (not a task per link
    waiting for a slot: a server naming a new repository in each of a hundred thousand jobs made
    hundreds of megabytes of them); the tasks belong to the sweep's task group and never raise a
    `VBOError` (they return it), so a failed link fails only the (job, relation) pairs that name it.
    The errors keep no traceback (`detached`): its frames held the error answer's body, or this
    cache and every resource it read, for as long as the caller keeps the results.
    """

    def __init__(self, group: asyncio.TaskGroup) -> None:
        self._group = group
        self._outcomes: dict[
            tuple[VBOClient, str, type[Any], type[Any] | None], asyncio.Future[_Outcome]
        ] = {}
        self._unread: dict[VBOClient, deque[tuple[Link[Any], asyncio.Future[_Outcome]]]] = {}
        self._readers: Counter[VBOClient] = Counter()

    async def resolve(
        self, client: VBOClient, jobs: list[Job], follow: tuple[str, ...]
    ) -> tuple[dict[LinkKey, object], dict[LinkKey, VBOError]]:
        """(prefetched, link errors) of ``follow`` for ``jobs``, both keyed by (job id, relation)."""
        errors: dict[LinkKey, VBOError] = {}
        wanted: list[tuple[LinkKey, Link[Any], asyncio.Future[_Outcome]]] = []
        for job in jobs:
            for relation in follow:
                link: Link[Any] | None = getattr(job.links, relation)
                if link is None:
                    continue
                try:
                    link.url  # noqa: B018 - an href that cannot be followed safely: no request
                    first = link.via if isinstance(link, ThroughLink) else link
                    wanted.append(((job.id, relation), link, self._outcome(client, first)))
                except VBOError as exc:
                    errors[(job.id, relation)] = detached(exc)
        # asyncio.wait, not gather: other jobs may share these reads, never cancelled on this
        # job's behalf.
        await _settled(future for _, _, future in wanted)
        seconds: list[tuple[LinkKey, asyncio.Future[_Outcome]]] = []
        prefetched: dict[LinkKey, object] = {}
        for key, link, future in wanted:
            value, error = future.result()
            if error is None and isinstance(link, ThroughLink):
                try:
                    seconds.append((key, self._outcome(client, link.next_step(value))))
                except VBOError as exc:
                    errors[key] = detached(exc)
            elif error is None:
                prefetched[key] = value
            else:
                errors[key] = error
        await _settled(future for _, future in seconds)
        for key, future in seconds:
            value, error = future.result()
            if error is None:
                prefetched[key] = value
            else:
                errors[key] = error
        return prefetched, errors

    def _outcome(self, client: VBOClient, link: Link[Any]) -> asyncio.Future[_Outcome]:
        """The outcome of reading ``link`` through ``client``, read once for the sweep (queued
        for the client's readers the first time); `VBOError` when it cannot be followed."""
        key = (client, link.url, type(link), link.target)
        future = self._outcomes.get(key)
        if future is None:
            future = self._outcomes[key] = asyncio.get_running_loop().create_future()
            self._unread.setdefault(client, deque()).append((link, future))
            if self._readers[client] < client._max_concurrency:
                self._readers[client] += 1
                # Not named by the link: its URL may be an href quoting a secret.
                self._group.create_task(self._read(client), name="vbo_async.poll_jobs prefetch")
        return future

    async def _read(self, client: VBOClient) -> None:
        """Read ``client``'s queued links one after the other until none is left."""
        unread = self._unread[client]
        try:
            while unread:
                link, future = unread.popleft()
                outcome = await _follow(link)
                if not future.done():
                    future.set_result(outcome)
        finally:
            self._readers[client] -= 1


async def _settled(futures: Iterable[asyncio.Future[_Outcome]]) -> None:
    waited = set(futures)
    if waited:
        await asyncio.wait(waited)


async def _follow(link: Link[Any]) -> _Outcome:
    try:
        return await link, None
    except VBOError as exc:
        log.debug("prefetching the %r link failed: %s", link.relation, exc)  # not its href
        return None, detached(exc)
