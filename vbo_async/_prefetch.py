"""Prefetching the links a sweep follows: one request per distinct link and client for a whole sweep."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ._client import VBOClient
from ._exceptions import VBOError
from ._links import Link, ThroughLink
from ._models import Job
from ._results import LinkKey

__all__ = ["LinkCache"]

log = logging.getLogger("vbo_async")

_Outcome = tuple[object, VBOError | None]


class LinkCache:
    """One task per distinct link for the whole sweep; every job naming the link awaits it.

    Keyed by the client and the rebased URL (and the link's kind and model, which a URL implies in
    practice), so fifty jobs sharing one repository cost one GET per client. A `ThroughLink` (a
    v6+ job's proxy, through its repository) resolves both steps through the same cache, so the
    repository is fetched once for ``repository`` and ``proxy`` alike. The tasks belong to the
    sweep's task group and never raise a `VBOError` (they return it), so a failed link fails only
    the (job, relation) pairs that name it.
    """

    def __init__(self, group: asyncio.TaskGroup) -> None:
        self._group = group
        self._tasks: dict[tuple[VBOClient, str, type[Any], type[Any] | None], asyncio.Task[_Outcome]] = {}

    async def resolve(
        self, client: VBOClient, jobs: list[Job], follow: tuple[str, ...]
    ) -> tuple[dict[LinkKey, object], dict[LinkKey, VBOError]]:
        """(prefetched, link errors) of ``follow`` for ``jobs``, both keyed by (job id, relation)."""
        errors: dict[LinkKey, VBOError] = {}
        wanted: list[tuple[LinkKey, asyncio.Task[_Outcome]]] = []
        for job in jobs:
            for relation in follow:
                link: Link[Any] | None = getattr(job.links, relation)
                if link is None:
                    continue
                try:
                    url = link.url
                except VBOError as exc:  # an href that cannot be followed safely: no request
                    errors[(job.id, relation)] = exc
                    continue
                wanted.append(((job.id, relation), self._task(client, url, link)))

        if wanted:
            # asyncio.wait, not gather: other jobs may share these tasks, so they are never
            # cancelled on this job's behalf.
            await asyncio.wait({task for _, task in wanted})
        prefetched: dict[LinkKey, object] = {}
        for key, task in wanted:
            value, error = task.result()
            if error is None:
                prefetched[key] = value
            else:
                errors[key] = error
        return prefetched, errors

    def _task(self, client: VBOClient, url: str, link: Link[Any]) -> asyncio.Task[_Outcome]:
        key = (client, url, type(link), link.target)
        task = self._tasks.get(key)
        if task is None:
            work = self._through(client, link) if isinstance(link, ThroughLink) else _follow(link)
            task = self._group.create_task(work, name=f"vbo_async.poll_jobs prefetch {url}")
            self._tasks[key] = task
        return task

    async def _through(self, client: VBOClient, link: ThroughLink[Any]) -> _Outcome:
        """Both steps of a `ThroughLink`, each through the cache."""
        middle, error = await self._step(client, link.via)
        if error is not None:
            return None, error
        try:
            second = link.next_step(middle)
        except VBOError as exc:
            return None, exc
        return await self._step(client, second)

    async def _step(self, client: VBOClient, link: Link[Any]) -> _Outcome:
        try:
            url = link.url
        except VBOError as exc:
            return None, exc
        task = self._task(client, url, link)
        await asyncio.wait({task})
        return task.result()


async def _follow(link: Link[Any]) -> _Outcome:
    try:
        return await link, None
    except VBOError as exc:
        log.debug("prefetching the %s link failed: %s", link.relation, exc)  # exc names its URL, scrubbed
        return None, exc
