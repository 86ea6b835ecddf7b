"""Polling the jobs of many tenants at once: `poll_jobs` and its `PollSweep`.

A service provider watches hundreds of organizations on several VBO servers. `poll_jobs` lists each
tenant's jobs with a bound on the work in progress (on top of each client's own request bound),
yields one `PollResult` per tenant as it finishes, and turns a tenant's `VBOError` into that
tenant's result instead of stopping the sweep. A server with many tenants in the sweep is listed
once and its jobs split by tenant (`_units`); links named in ``follow`` are fetched once per
distinct (client, URL) for the whole sweep. The task group runs in one task owned by the sweep and
joined whenever the sweep ends, because a task group must not stay open across a ``yield``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
import logging
import time
from collections import Counter, deque
from collections.abc import AsyncGenerator, Callable, Iterable, Mapping
from types import TracebackType
from typing import Self

from ._client import VBOClient
from ._exceptions import ClientStateError, ConfigError
from ._health import HealthPolicy
from ._prefetch import LinkCache
from ._results import RELATIONS, PollProgress, PollResult, PollTarget
from ._units import Context, Unit, plan, run_unit

__all__ = ["RELATIONS", "PollProgress", "PollResult", "PollSweep", "PollTarget", "poll_jobs"]

log = logging.getLogger("vbo_async")


ProgressCallback = Callable[[PollProgress], object]
"""What ``on_progress`` is: called with each `PollProgress`, its return value ignored (a progress
bar's ``update`` may return one). It is called, never awaited: an async one is a `ConfigError`."""

_NOT_AWAITED = (
    "on_progress is called, not awaited, in the task consuming the sweep: give a plain function "
    "(an async one would never run)"
)


def poll_jobs(
    targets: Iterable[PollTarget],
    *,
    concurrency: int = 8,
    follow: Iterable[str] = (),
    on_progress: ProgressCallback | None = None,
    health: HealthPolicy | None = None,
    batch: bool | None = None,
    organization_counts: Mapping[VBOClient, int] | None = None,
) -> PollSweep:
    """Poll the jobs of every target, at most ``concurrency`` units of work at a time.

    Returns a `PollSweep` that yields one `PollResult` per target, in the order the targets
    finish. A target's `VBOError` becomes its result (``error``) and never stops the others;
    any other exception is a bug: the sweep is cancelled and the exception propagates out of the
    iteration (an ``ExceptionGroup`` if several tasks failed at once).

    - ``batch``: a server whose tenants are swept together costs a handful of requests whatever
      its number of tenants (its organizations, every job of the server split by tenant, and the
      recent sessions for ``health``) instead of one or more per tenant. ``None`` (the default)
      batches a server when the sweep covers at least `BATCH_MIN_TENANTS` of its tenants and
      at least `BATCH_MIN_SHARE` (5%) of the organizations it lists. Those are listed first
      (the listing also tells an unknown id) unless every target carries its `Organization`;
      then their count is taken from ``organization_counts``, and without it there the server
      is batched without the share rule (and a tenant of theirs without jobs costs a
      ``GET /Organizations/{id}``, which tells an organization the server does not know; with
      it, the caller's listing vouches for them).
      ``True`` always, ``False`` never. The results are the same either way, isolation
      included: a job that cannot be decoded fails only its tenant, an unknown organization id
      is that tenant's `NotFoundError`, a server listing a job that names no organization is
      swept tenant by tenant after all; with ``None``, a server whose listings are too big to
      read whole (``max_response_bytes``, ``max_page_items``, ``max_pages``) is swept tenant by
      tenant after all.
    - ``organization_counts``: how many organizations each client's server lists, where the
      caller knows it (it listed them to choose its targets): with ``batch=None`` and targets
      carrying their `Organization`, the 5% rule then holds without a request. Ten named
      tenants of a server of 1,000 are polled one by one, not by listing its every job.
    - ``concurrency`` bounds the units in work (a single tenant, or a server batch); each
      client's ``max_concurrency`` still bounds its own requests. A free slot goes to the
      server with the fewest units in work, so one that hangs holds no more than its share.
    - ``follow`` names `JobLinks` relations (``"repository"``, ``"proxy"``, ...) to resolve for
      every job, one request per distinct link URL and client for the whole sweep; a link that
      fails lands in ``result.link_errors`` and leaves the tenant's ``error`` None.
    - ``health``: judge every job with this `HealthPolicy`, into ``result.health[job.id]``;
      batched servers read their sessions once for all jobs (`VBOClient.recent_sessions`; a
      job whose last result or success that window misses reads its own, v1 every job), single
      tenants per job (`VBOClient.job_health`). The states and reasons are the same, but for a
      job whose last run ended before the window (a weekly job, one stale for days), which a
      batch dates by the job's ``last_run``, when that run started, where `job_health` reads
      when it ended: its reason's age is longer by the run's length ("failed 39 h ago" for a
      9-hour run that ended 30 h ago); where that length could cross a limit (a schedule-aware
      allowance), the job's own sessions are read. A batch judges such a job from the listings
      alone: a server that fails only that job's own sessions (a 500 to ``JobSessions?jobId=``)
      leaves it judged, where `job_health` says UNKNOWN. A batch's `JobHealth` names a
      ``last_session`` only when its window, or the job's own sessions it read, held it, and a
      disabled v6 job (none of whose sessions are read, its verdict needing none) whose last
      success the window missed has as
      ``last_success`` its ``last_run`` when its ``last_status`` is Success (or Warning, with
      ``warning_is_success``), else None.
      Every job is judged at one "now", taken when the sweep starts, read on each server's
      clock (`VBOClient.server_clock_offset`: a server a minute to a day off this machine's has
      its runs' ages measured on its own clock) once, when the sweep first needs it for that
      server: an offset that moves during the sweep judges none of its jobs at another instant.
    - ``on_progress`` is called in the consuming task with a `PollProgress` just before each
      result is delivered; what it returns is ignored. It is not awaited: an async function is a
      `ConfigError` (here, or from the iteration when a plain one returns an awaitable).

    Arguments are checked here, before any request: a bad one raises `ConfigError`.

    ```python
    async with poll_jobs(targets, follow=("repository",), health=HealthPolicy()) as results:
        async for result in results:
            for job in result.jobs:
                print(result.target.label, job.name, result.health[job.id].state.name)
    ```
    """
    return PollSweep(
        targets,
        concurrency=concurrency,
        follow=follow,
        on_progress=on_progress,
        health=health,
        batch=batch,
        organization_counts=organization_counts,
    )


class PollSweep:
    """A sweep started by `poll_jobs`: an async iterator of `PollResult`, and an async context
    manager that closes it. Built directly, it takes `poll_jobs`'s arguments and checks them alike
    (a bad one is a `ConfigError`).

    Work starts with the first ``__anext__``. Closing (``aclose()``, leaving ``async with``, or
    `contextlib.aclosing`) cancels the work still running and waits until it has stopped. A plain
    ``async for result in poll_jobs(...)`` left early by ``break`` is closed by the event loop's
    async generator hooks a few loop iterations later, once nothing refers to the sweep; a sweep
    kept in a variable works on until it is closed (or dropped): use ``async with``. A cancelled
    consumer stops the work before the cancellation goes on.
    A sweep is consumed by one task at a time (a second task reading or closing it while the first
    awaits a result gets a `ClientStateError`; once a close has begun, reading ends the iteration
    and a second close waits for the first); to stop it from elsewhere, cancel that task.
    """

    def __init__(
        self,
        targets: Iterable[PollTarget],
        *,
        concurrency: int = 8,
        follow: Iterable[str] = (),
        on_progress: ProgressCallback | None = None,
        health: HealthPolicy | None = None,
        batch: bool | None = None,
        organization_counts: Mapping[VBOClient, int] | None = None,
    ) -> None:
        # Built by `poll_jobs`, or directly with the same arguments: checked alike, here.
        if health is not None and not isinstance(health, HealthPolicy):
            raise ConfigError(f"health must be a HealthPolicy or None, got {type(health).__name__}")
        if batch is not None and not isinstance(batch, bool):
            raise ConfigError(f"batch must be True, False or None, got {batch!r}")
        self._counts = _check_counts(organization_counts)
        self._targets = _check_targets(targets)
        self._concurrency = _check_concurrency(concurrency)
        self._follow = _check_follow(follow)
        self._on_progress = _check_callback(on_progress)
        self._health = health
        self._batch = batch
        # The generator must not refer back to this object: dropping the sweep after a `break`
        # then finalises it at once (no reference cycle to wait for the garbage collector).
        self._results: AsyncGenerator[PollResult, None] | None = None
        self._closed = False
        self._waiting = False  # a task is inside ``__anext__``
        self._closing: asyncio.Event | None = None  # set once the generator is closed

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
        self._refuse_a_second_consumer("read")
        if self._closing is not None:  # closed, or being closed by another task: no more results
            raise StopAsyncIteration
        if self._results is None:
            if self._closed:
                raise StopAsyncIteration
            units = plan(self._targets, self._batch, self._counts)
            self._results = _sweep(
                units, len(self._targets), self._concurrency, self._follow, self._health, self._on_progress
            )
        self._waiting = True
        try:
            return await self._results.__anext__()
        finally:
            self._waiting = False

    def _refuse_a_second_consumer(self, action: str) -> None:
        # An async generator awaited by two tasks raises a bare RuntimeError ("already running").
        if self._waiting:
            raise ClientStateError(
                f"cannot {action} this PollSweep while another task awaits its next result: a sweep is "
                "consumed by one task at a time (to stop it from elsewhere, cancel that task)"
            )

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
        """Stop the sweep: cancel the work still running and wait for it to stop. Idempotent.

        Called while another task awaits the next result, it is a `ClientStateError` and changes
        nothing: cancel that task instead. Called while another task closes the sweep, it waits
        for that close to end."""
        self._refuse_a_second_consumer("close")
        self._closed = True
        if self._results is None:
            return
        if self._closing is not None:
            await self._closing.wait()
            return
        self._closing = asyncio.Event()
        try:
            await self._results.aclose()
        finally:
            self._closing.set()


# --- the sweep --------------------------------------------------------------------------------------


async def _sweep(
    units: list[Unit],
    total: int,
    concurrency: int,
    follow: tuple[str, ...],
    health: HealthPolicy | None,
    on_progress: ProgressCallback | None,
) -> AsyncGenerator[PollResult, None]:
    """Deliver results from the runner task, and join it however the iteration ends."""
    queue: asyncio.Queue[PollResult | None] = asyncio.Queue()
    runner = asyncio.get_running_loop().create_task(
        _run(units, concurrency, follow, health, queue.put_nowait), name="vbo_async.poll_jobs"
    )
    runner.add_done_callback(lambda _: queue.put_nowait(None))
    done = failed = 0
    try:
        while (result := await queue.get()) is not None and not _crashed(runner):
            done += 1
            failed += result.error is not None
            if on_progress is not None:
                returned = on_progress(PollProgress(done=done, total=total, failed=failed, result=result))
                if inspect.isawaitable(returned):
                    if inspect.iscoroutine(returned):
                        returned.close()  # never run: no "never awaited" warning
                    raise ConfigError(f"{_NOT_AWAITED}; it returned a {type(returned).__name__}")
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
    units: list[Unit],
    concurrency: int,
    follow: tuple[str, ...],
    health: HealthPolicy | None,
    emit: Callable[[PollResult], None],
) -> None:
    """Do every unit with ``concurrency`` workers taking units from one shared `_Pending`."""
    pending = _Pending(units)
    async with asyncio.TaskGroup() as group:
        context = Context(
            follow=follow, health=health, now=dt.datetime.now(dt.UTC), links=LinkCache(group), emit=emit
        )
        workers: list[asyncio.Task[None]] = []
        for number in range(min(concurrency, len(units))):
            if any(worker.done() for worker in workers):
                # Ended inside create_task (an eager task, Python 3.12+): with a bug the group is
                # shutting down and would refuse another task; else no unit is left for it.
                break
            workers.append(
                group.create_task(_worker(pending, context), name=f"vbo_async.poll_jobs worker {number}")
            )


async def _worker(pending: _Pending, context: Context) -> None:
    while (unit := pending.take()) is not None:
        try:
            await run_unit(unit, context)
        finally:
            pending.done(unit)


class _Pending:
    """The units not yet taken, handed out server by server: the next unit of the server with
    the fewest units in work (of those with units left; on a tie, the one whose units have taken
    the least time so far, in work or done, then the one given first). A server that hangs
    holds at most its share of the workers while other servers have work waiting, and one whose
    unit just timed out, having taken the most time, does not take its worker back before the
    servers whose units were quick (by units handed out instead, a hung server listed first took
    it back as soon as the others had had as many). With a single server, the units come in the
    order given. ``clock`` is `time.monotonic` (a test's may be its own)."""

    def __init__(self, units: list[Unit], clock: Callable[[], float] = time.monotonic) -> None:
        self._left: dict[VBOClient, deque[tuple[int, Unit]]] = {}
        for index, unit in enumerate(units):
            self._left.setdefault(unit.client, deque()).append((index, unit))
        self._working: Counter[VBOClient] = Counter()
        # Per server: the time its units took, less the start of each still in work (the time in
        # work so far is this plus ``working`` times now; no unit needs to be told from another).
        self._spent: dict[VBOClient, float] = {}
        self._clock = clock

    def take(self) -> Unit | None:
        if not self._left:
            return None
        now = self._clock()
        spent, working = self._spent, self._working

        def rank(client: VBOClient) -> tuple[int, float, int]:
            busy = working[client]
            return busy, spent.get(client, 0.0) + busy * now, self._left[client][0][0]

        client = min(self._left, key=rank)
        left = self._left[client]
        _, unit = left.popleft()
        if not left:
            del self._left[client]
        working[client] += 1
        spent[client] = spent.get(client, 0.0) - now
        return unit

    def done(self, unit: Unit) -> None:
        self._working[unit.client] -= 1
        self._spent[unit.client] = self._spent.get(unit.client, 0.0) + self._clock()


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


def _check_counts(counts: object) -> dict[VBOClient, int] | None:
    if counts is None:
        return None
    if not isinstance(counts, Mapping):
        raise ConfigError(f"organization_counts must map VBOClient to int, got {type(counts).__name__}")
    checked: dict[VBOClient, int] = {}
    for client, count in counts.items():
        if not isinstance(client, VBOClient):
            raise ConfigError(f"organization_counts keys must be VBOClient, got {type(client).__name__}")
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ConfigError(f"organization_counts values must be integers >= 0, got {count!r}")
        checked[client] = count
    return checked


def _check_callback(on_progress: object) -> ProgressCallback | None:
    if on_progress is not None and not callable(on_progress):
        raise ConfigError(f"on_progress must be callable or None, got {type(on_progress).__name__}")
    # A function, or an object whose class has an async __call__.
    if on_progress is not None and (
        inspect.iscoroutinefunction(on_progress) or inspect.iscoroutinefunction(type(on_progress).__call__)
    ):
        raise ConfigError(_NOT_AWAITED)
    return on_progress
