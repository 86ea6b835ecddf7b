"""Polling the jobs of many tenants at once: `poll_jobs`, `PollTarget`, `PollResult`, `PollProgress`.

A service provider watches hundreds of organizations on several VBO servers. `poll_jobs` lists each
tenant's jobs with a bound on the tenants in work (on top of each client's own request bound),
yields one `PollResult` per tenant as it finishes, and turns a tenant's `VBOError` into that
tenant's result instead of stopping the sweep. Links named in ``follow`` are fetched once per
distinct (client, URL) for the whole sweep. The task group runs in one task owned by the sweep and
joined whenever the sweep ends, because a task group must not stay open across a ``yield``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Callable, Iterable, Iterator, Mapping
from types import MappingProxyType, TracebackType
from typing import Any, Final, Literal, Self, overload

import attrs

from ._client import VBOClient
from ._exceptions import ConfigError, VBOError
from ._links import Link, ThroughLink
from ._models import (
    BackupRepository,
    Job,
    JobLinks,
    JobSession,
    Organization,
    Proxy,
    SelectedItem,
    SelectedMailbox,
)

__all__ = ["RELATIONS", "PollProgress", "PollResult", "PollSweep", "PollTarget", "poll_jobs"]

log = logging.getLogger("vbo_async")

RELATIONS: Final[tuple[str, ...]] = tuple(field.name for field in attrs.fields(JobLinks))
"""The relations ``follow`` accepts: the attribute names of `JobLinks`."""

LinkKey = tuple[str, str]
"""``(job id, relation)``: how prefetched objects and link errors are filed in a `PollResult`."""


def _check_client(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, VBOClient):
        raise ConfigError(f"PollTarget.client must be a VBOClient, got {type(value).__name__}")


def _check_organization_id(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"PollTarget.organization_id must be a non-empty string, got {value!r}")


def _check_name(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"PollTarget.name must be a string or None, got {type(value).__name__}")


@attrs.frozen(kw_only=True)
class PollTarget:
    """One tenant to poll: the organization ``organization_id`` on the server of ``client``.

    Targets may share a client (one client per server is the usual setup: it holds one token and
    one connection pool). ``name`` is a label for reports; `label` falls back to the id.
    Invalid arguments raise `ConfigError` at once.
    """

    client: VBOClient = attrs.field(validator=_check_client)
    organization_id: str = attrs.field(validator=_check_organization_id)
    name: str | None = attrs.field(default=None, validator=_check_name)

    @property
    def label(self) -> str:
        """``name``, or the organization id when there is no name."""
        return self.name if self.name is not None else self.organization_id


def _read_only(value: Mapping[LinkKey, Any]) -> Mapping[LinkKey, Any]:
    return MappingProxyType(dict(value))


def _count(items: Any) -> str:
    return f"<{len(items)}>"


@attrs.frozen(kw_only=True, eq=False)
class PollResult:
    """What polling one target gave: its jobs, or the `VBOError` that stopped it.

    ``error`` is None when the jobs were listed; otherwise it is the tenant's error and ``jobs``
    is empty. ``elapsed`` is the seconds from the start of the tenant's work to its result,
    prefetch included (time spent waiting for a free slot is not counted).

    With ``follow``, ``prefetched`` maps ``(job id, relation)`` to the resolved object, and
    ``link_errors`` maps it to the `VBOError` of a prefetch that failed. A failed link does not
    fail the tenant: ``error`` stays None and ``jobs`` stay filled. A relation the job does not
    carry appears in neither mapping. `resolved` reads ``prefetched`` without any request.
    """

    target: PollTarget
    jobs: list[Job] = attrs.field(factory=list, repr=_count)
    error: VBOError | None = None
    elapsed: float = 0.0
    follow: tuple[str, ...] = ()
    prefetched: Mapping[LinkKey, object] = attrs.field(factory=dict, converter=_read_only, repr=_count)
    link_errors: Mapping[LinkKey, VBOError] = attrs.field(factory=dict, converter=_read_only)

    @overload
    def resolved(self, job: Job | str, relation: Literal["organization"]) -> Organization | None: ...
    @overload
    def resolved(self, job: Job | str, relation: Literal["repository"]) -> BackupRepository | None: ...
    @overload
    def resolved(self, job: Job | str, relation: Literal["proxy"]) -> Proxy | None: ...
    @overload
    def resolved(self, job: Job | str, relation: Literal["self"]) -> Job | None: ...
    @overload
    def resolved(
        self, job: Job | str, relation: Literal["selected_mailboxes"]
    ) -> list[SelectedMailbox] | None: ...
    @overload
    def resolved(self, job: Job | str, relation: Literal["jobsessions"]) -> list[JobSession] | None: ...
    @overload
    def resolved(
        self, job: Job | str, relation: Literal["selected_items", "excluded_items"]
    ) -> list[SelectedItem] | None: ...
    @overload
    def resolved(self, job: Job | str, relation: str) -> object | None: ...

    def resolved(self, job: Job | str, relation: str) -> object | None:
        """The prefetched object behind ``relation`` of ``job`` (a `Job` or a job id).

        None when the job has no such link or its prefetch failed (then the error is in
        ``link_errors``). A relation that was not in ``follow`` raises `ConfigError`.

        ```python
        repository = result.resolved(job, "repository")
        ```
        """
        if relation not in self.follow:
            raise ConfigError(f"{relation!r} was not prefetched in this sweep (follow={self.follow!r})")
        job_id = job if isinstance(job, str) else job.id
        return self.prefetched.get((job_id, relation))


@attrs.frozen(kw_only=True, eq=False)
class PollProgress:
    """How far a sweep is: ``done`` of ``total`` targets have their result, ``failed`` of them
    with an error; ``result`` is the one just delivered."""

    done: int
    total: int
    failed: int
    result: PollResult


ProgressCallback = Callable[[PollProgress], None]


def poll_jobs(
    targets: Iterable[PollTarget],
    *,
    concurrency: int = 8,
    follow: Iterable[str] = (),
    on_progress: ProgressCallback | None = None,
) -> PollSweep:
    """Poll the jobs of every target, at most ``concurrency`` targets at a time.

    Returns a `PollSweep` that yields one `PollResult` per target, in the order the targets
    finish. A target's `VBOError` becomes its result (``error``) and never stops the others;
    any other exception is a bug: the sweep is cancelled and the exception propagates out of the
    iteration (an ``ExceptionGroup`` if several tasks failed at once).
    ``concurrency`` bounds the targets in work; each client's ``max_concurrency`` still bounds its
    own requests. ``follow`` names `JobLinks` relations (``"repository"``, ``"proxy"``, ...) to
    resolve for every job, one request per distinct link URL and client for the whole sweep; a
    link that fails lands in ``result.link_errors`` and leaves the tenant's ``error`` None.
    ``on_progress`` is called in the consuming task with a `PollProgress` just before each result
    is delivered.
    Arguments are checked here, before any request: a bad one raises `ConfigError`.

    ```python
    async with poll_jobs(targets, concurrency=8, follow=("repository",)) as results:
        async for result in results:
            for job in result.jobs:
                print(result.target.label, job.name, result.resolved(job, "repository"))
    ```
    """
    return PollSweep(
        _check_targets(targets),
        concurrency=_check_concurrency(concurrency),
        follow=_check_follow(follow),
        on_progress=_check_callback(on_progress),
    )


class PollSweep:
    """A sweep started by `poll_jobs`: an async iterator of `PollResult`, and an async context
    manager that closes it.

    Work starts with the first ``__anext__``. Closing (``aclose()``, leaving ``async with``, or
    `contextlib.aclosing`) cancels the work still running and waits until it has stopped. A plain
    ``async for`` left early by ``break`` is closed by the event loop's async generator hooks a
    few loop iterations later; a cancelled consumer stops the work before the cancellation goes on.
    A sweep is consumed by one task at a time; to stop it from elsewhere, cancel that task.
    """

    def __init__(
        self,
        targets: tuple[PollTarget, ...],
        *,
        concurrency: int,
        follow: tuple[str, ...],
        on_progress: ProgressCallback | None,
    ) -> None:
        self._targets = targets
        self._concurrency = concurrency
        self._follow = follow
        self._on_progress = on_progress
        # The generator must not refer back to this object: dropping the sweep after a `break`
        # then finalises it at once (no reference cycle to wait for the garbage collector).
        self._results: AsyncGenerator[PollResult, None] | None = None
        self._closed = False

    def __repr__(self) -> str:
        state = "closed" if self._closed else "started" if self._results is not None else "new"
        return f"<PollSweep {len(self._targets)} targets concurrency={self._concurrency} {state}>"

    @property
    def total(self) -> int:
        """How many results the sweep yields when it runs to the end."""
        return len(self._targets)

    @property
    def follow(self) -> tuple[str, ...]:
        """The relations prefetched for every job."""
        return self._follow

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> PollResult:
        if self._results is None:
            if self._closed:
                raise StopAsyncIteration
            self._results = _sweep(self._targets, self._concurrency, self._follow, self._on_progress)
        return await self._results.__anext__()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop the sweep: cancel the work still running and wait for it to stop. Idempotent."""
        self._closed = True
        if self._results is not None:
            await self._results.aclose()


# --- the sweep --------------------------------------------------------------------------------------


async def _sweep(
    targets: tuple[PollTarget, ...],
    concurrency: int,
    follow: tuple[str, ...],
    on_progress: ProgressCallback | None,
) -> AsyncGenerator[PollResult, None]:
    """Deliver results from the runner task, and join it however the iteration ends."""
    queue: asyncio.Queue[PollResult | None] = asyncio.Queue()
    runner = asyncio.get_running_loop().create_task(
        _run(targets, concurrency, follow, queue.put_nowait), name="vbo_async.poll_jobs"
    )
    runner.add_done_callback(lambda _: queue.put_nowait(None))
    done = failed = 0
    try:
        while (result := await queue.get()) is not None and not _crashed(runner):
            done += 1
            failed += result.error is not None
            if on_progress is not None:
                on_progress(PollProgress(done=done, total=len(targets), failed=failed, result=result))
            yield result
        if runner.cancelled():
            raise asyncio.CancelledError  # cancelled by someone else: as `await runner` would
    finally:
        runner.cancel()
        await _join(runner)


async def _join(runner: asyncio.Task[None]) -> None:
    """Wait until ``runner`` (already cancelled, or done) has stopped, even when cancelled meanwhile;
    then raise the bug it ended with, or the cancellation received while waiting."""
    cancelled = False
    while not runner.done():
        try:
            await asyncio.wait({runner})
        except asyncio.CancelledError:
            cancelled = True
    if runner.cancelled():
        bug = None
    else:
        error = runner.exception()
        bug = _unwrap(error) if error is not None else None
    if bug is not None:
        raise bug
    if cancelled:
        raise asyncio.CancelledError


def _crashed(runner: asyncio.Task[None]) -> bool:
    return runner.done() and not runner.cancelled() and runner.exception() is not None


def _unwrap(error: BaseException) -> BaseException:
    """The one bug of a task group's exception group, or the whole group when there are several."""
    if isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        return error.exceptions[0]
    return error


async def _run(
    targets: tuple[PollTarget, ...],
    concurrency: int,
    follow: tuple[str, ...],
    emit: Callable[[PollResult], None],
) -> None:
    """Poll every target with ``concurrency`` workers taking targets from one shared iterator."""
    pending = iter(targets)
    async with asyncio.TaskGroup() as group:
        links = _LinkCache(group)
        for number in range(min(concurrency, len(targets))):
            group.create_task(
                _worker(pending, follow, links, emit), name=f"vbo_async.poll_jobs worker {number}"
            )


async def _worker(
    pending: Iterator[PollTarget],
    follow: tuple[str, ...],
    links: _LinkCache,
    emit: Callable[[PollResult], None],
) -> None:
    for target in pending:
        emit(await _poll(target, follow, links))


async def _poll(target: PollTarget, follow: tuple[str, ...], links: _LinkCache) -> PollResult:
    started = time.perf_counter()
    try:
        jobs = await target.client.organization_jobs(target.organization_id)
    except VBOError as exc:
        log.debug("polling %s failed: %s", target.label, exc)
        return PollResult(target=target, error=exc, elapsed=time.perf_counter() - started, follow=follow)
    prefetched, link_errors = await links.resolve(target.client, jobs, follow)
    return PollResult(
        target=target,
        jobs=jobs,
        elapsed=time.perf_counter() - started,
        follow=follow,
        prefetched=prefetched,
        link_errors=link_errors,
    )


_Outcome = tuple[object, VBOError | None]


class _LinkCache:
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
        log.debug("prefetching %r failed: %s", link, exc)
        return None, exc


# --- argument checks --------------------------------------------------------------------------------


def _check_targets(targets: object) -> tuple[PollTarget, ...]:
    if isinstance(targets, str | bytes) or not isinstance(targets, Iterable):
        raise ConfigError(f"targets must be an iterable of PollTarget, got {type(targets).__name__}")
    checked = tuple(targets)
    for index, target in enumerate(checked):
        if not isinstance(target, PollTarget):
            raise ConfigError(f"targets[{index}] is a {type(target).__name__}, not a PollTarget")
    return checked


def _check_concurrency(concurrency: object) -> int:
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ConfigError(f"concurrency must be a positive integer, got {concurrency!r}")
    return concurrency


def _check_follow(follow: object) -> tuple[str, ...]:
    if isinstance(follow, str | bytes) or not isinstance(follow, Iterable):
        raise ConfigError(f"follow must be relation names such as ('repository',), got {follow!r}")
    relations = tuple(follow)
    for relation in relations:
        if relation not in RELATIONS:
            raise ConfigError(f"unknown relation {relation!r} in follow; known: {', '.join(RELATIONS)}")
    return tuple(dict.fromkeys(relations))


def _check_callback(on_progress: object) -> ProgressCallback | None:
    if on_progress is not None and not callable(on_progress):
        raise ConfigError(f"on_progress must be callable or None, got {type(on_progress).__name__}")
    return on_progress
