"""The work of a sweep: one tenant at a time, or every tenant of a server in one batch.

A tenant polled alone costs a request for its jobs (and, with a health policy, one or two per
job). A server batch costs a handful of requests whatever its number of tenants: the server's
organizations (to tell an unknown organization id from one without jobs), every job of the
server (``GET /Jobs``, pages of 10,000 from v6 on) split by tenant, and, with a health policy,
the sessions of every job ended within the policy's window (``VBOClient.recent_sessions``: one
listing from v6 on, read at the same time as the jobs, which it does not depend on; plus a
request for each job whose last result or last success that window misses, once the jobs are
read; on v1, which cannot list them, each job is judged as ``job_health`` judges it, one request
per job, after the jobs are listed). Isolation is kept: a job that cannot be decoded fails only
the tenant it names, and an organization the server does not list is that tenant's
`NotFoundError` (targets carrying their `Organization` spare the listing: a tenant of theirs
without jobs is asked for by id, ``GET /Organizations/{id}``, unless the caller gave the server's
organization count, having listed them); a server listing a job that names
no organization (none, or none readable) is swept tenant by tenant, each tenant's own listing
telling whose the job is.

`plan` decides which targets go in batches (pure); `run_unit` does the work and hands each
tenant's `PollResult` to ``emit`` as soon as it is complete.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from typing import Any, TypeVar

import attrs

from ._checks import id_argument, id_key
from ._client import VBOClient, first_listed
from ._exceptions import (
    APIError,
    ConfigError,
    DecodeError,
    NotFoundError,
    ResponseTooLargeError,
    VBOError,
)
from ._health import (
    HEALTH_WINDOW,
    HealthPolicy,
    JobHealth,
    assess,
    finished,
    health_window,
    on_clock,
    window_falls_short,
)
from ._models import Job, JobSession, Organization
from ._prefetch import LinkCache
from ._results import PollResult, PollTarget, detached
from ._tasks import both, each

__all__ = [
    "BATCH_MIN_SHARE",
    "BATCH_MIN_TENANTS",
    "HEALTH_WINDOW",
    "Batch",
    "Context",
    "Unit",
    "plan",
    "run_unit",
]

log = logging.getLogger("vbo_async")

BATCH_MIN_TENANTS = 8
"""With ``batch=None`` a server is swept in one batch when the sweep covers at least this many of
its tenants; for fewer, a request per tenant is cheaper than listing the whole server."""
BATCH_MIN_SHARE = 0.05
"""With ``batch=None``, a batch whose targets are fewer than this share of the organizations the
server lists is swept tenant by tenant after all: 10 tenants of a server of 1,000 would
otherwise list 3,500 jobs for 36 (about 3× the time of 10 requests on loopback). Between about
3% and 10% the two take about the same time on loopback (docs/benchmarks.md, section 5), and the
batch sends far fewer requests. The count is the listing's (read first) or, when the caller
gave it (`poll_jobs`'s ``organization_counts``), that one; targets that all carry their
`Organization` and come without a count are batched without this rule (no listing is read)."""
_EARLIEST = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
"""No window starts before this: a longer ``max_age`` reads every session there is."""

Emit = Callable[[PollResult], None]
_T = TypeVar("_T")


@attrs.frozen
class Batch:
    """Every target of one server, swept together. A batch the plan chose by itself (not
    asked for with ``batch=True``) may still be swept tenant by tenant (`BATCH_MIN_SHARE`);
    ``organizations`` is how many the server lists, when the caller said."""

    client: VBOClient
    targets: tuple[PollTarget, ...]
    chosen: bool = False
    organizations: int | None = None


Unit = Batch | PollTarget
"""What a sweep's workers take: a server batch or a single target."""


def plan(
    targets: Sequence[PollTarget], batch: bool | None, counts: Mapping[VBOClient, int] | None = None
) -> list[Unit]:
    """The units of work for ``targets`` (pure): each server's targets as one `Batch` when
    ``batch`` is True, or None and they name at least `BATCH_MIN_TENANTS` distinct tenants (a
    batch the plan ``chosen``, carrying its server's organization count from ``counts``); the
    others alone.
    Batches come first (they take longest), then the single targets in their given order."""
    counts = counts or {}
    if batch is False:
        return list(targets)
    by_client: dict[VBOClient, list[PollTarget]] = {}
    for target in targets:
        by_client.setdefault(target.client, []).append(target)
    batched = {
        client for client, group in by_client.items() if batch is True or _tenants(group) >= BATCH_MIN_TENANTS
    }
    units: list[Unit] = [
        Batch(client, tuple(by_client[client]), chosen=batch is None, organizations=counts.get(client))
        for client in by_client
        if client in batched
    ]
    units += [target for target in targets if target.client not in batched]
    return units


@attrs.frozen(kw_only=True)
class Context:
    """What every unit of one sweep shares."""

    follow: tuple[str, ...]
    health: HealthPolicy | None
    now: dt.datetime
    links: LinkCache
    emit: Emit
    _server_nows: dict[VBOClient, dt.datetime] = attrs.field(factory=dict, init=False)

    def server_now(self, client: VBOClient) -> dt.datetime:
        """The sweep's ``now`` on ``client``'s server's clock (`VBOClient._server_now`), taken
        the first time it is asked for and the same for the rest of the sweep: every tenant and
        every job of a server, and the window of sessions a batch reads, are judged at one
        instant, though the offset its answers show may move meanwhile (a ``Date`` that changes
        from answer to answer, a clock set anew). Judged at two, a job at the edge of the window
        (last backed up exactly ``max_age`` before one of them) was inside it one way and
        outside it the other."""
        found = self._server_nows.get(client)
        if found is None:
            found = self._server_nows[client] = client._server_now(self.now)
        return found


async def run_unit(unit: Unit, context: Context) -> None:
    """Do one unit of work, emitting one `PollResult` per target."""
    if isinstance(unit, Batch):
        await _batch(unit, context)
    else:
        context.emit(await _tenant(unit, context))


async def _tenant(target: PollTarget, context: Context) -> PollResult:
    started = time.perf_counter()
    try:
        jobs = await target.client.organization_jobs(target.organization_id)
    except VBOError as exc:
        return _failed(target, exc, started, context)
    health: dict[str, JobHealth] = {}
    prefetch = context.links.resolve(target.client, jobs, context.follow)
    if context.health is not None:
        client = target.client
        # The sweep's one "now" on this server's clock (its answers' Date): ages on one clock.
        policy, now = context.health, context.server_now(client)

        async def judged(job: Job) -> JobHealth:
            return await _judged(client, job, policy, now, context.now)

        # Run beside the links; ended before any failure is raised (none is left running): the
        # client closed meanwhile (`job_health` raises its `ClientStateError`) fails this tenant.
        judging = asyncio.ensure_future(each(jobs, judged, client._max_concurrency))
        try:
            prefetched, link_errors = await prefetch
        except BaseException:
            judging.cancel()
            await asyncio.wait({judging})
            raise
        try:
            assessed = await judging
        except VBOError as exc:
            return _failed(target, exc, started, context)
        health = {job.id: found for job, found in zip(jobs, assessed, strict=True)}
    else:
        prefetched, link_errors = await prefetch
    return PollResult(
        target=target,
        jobs=jobs,
        elapsed=time.perf_counter() - started,
        follow=context.follow,
        prefetched=prefetched,
        link_errors=link_errors,
        health=health,
    )


def _failed(target: PollTarget, error: VBOError, started: float, context: Context) -> PollResult:
    """The result of ``target`` failed with ``error`` (a sweep started at ``started``)."""
    log.debug("polling %r failed: %s", target.label, error)  # the server's name: quoted
    elapsed = time.perf_counter() - started
    return PollResult(target=target, error=detached(error), elapsed=elapsed, follow=context.follow)


async def _batch(batch: Batch, context: Context) -> None:
    started = time.perf_counter()
    client = batch.client
    carried = [target.organization for target in batch.targets if target.organization is not None]
    listed: list[Organization] | None = None
    # The errors of the listed organizations that could not be decoded, by id.
    undecoded: dict[str, DecodeError] = {}
    vouched = True  # whether the server listed the organizations (else the targets carried them)
    whole = True  # whether ``listed`` is the server's listing (else the targets' own organizations)
    try:
        if len(carried) == len(batch.targets):
            listed = carried
            whole = False
            # A caller giving the server's organization count listed them to choose its targets
            # (the CLI and the exporter do, just before the sweep): their listing vouches.
            vouched = batch.organizations is not None
            if batch.chosen and not _covers_enough(_tenants(batch.targets), batch.organizations):
                await _one_by_one(batch, listed, started, context)
                return
            filed, window = await _alongside(client._jobs_filed(), _window(client, context))
        elif batch.chosen:
            # Whether the batch pays depends on how much of the server it covers: list first.
            listed, undecoded = await client._organizations_filed()
            if not _covers_enough(_tenants(batch.targets), len(listed) + len(undecoded)):
                await _one_by_one(batch, None if undecoded else listed, started, context)
                return
            filed, window = await _alongside(client._jobs_filed(), _window(client, context))
        else:
            both, window = await _alongside(_listings(client), _window(client, context))
            (listed, undecoded), filed = both
    except VBOError as exc:
        if batch.chosen and _too_big_to_batch(exc):
            # The batch the plan chose is only a cheaper way to the same results.
            log.debug("listing %s whole failed (%s); polling its tenants one by one", client.api_root, exc)
            await _one_by_one(batch, None if undecoded else listed, started, context)
            return
        _fail_all(batch, exc, started, context)
        return
    if batch.chosen and isinstance(window, VBOError) and _too_big_to_batch(window):
        # As for the jobs: a window too big to read whole, each job judged as `job_health` does.
        log.debug(
            "listing the recent sessions of %s failed (%s); reading them job by job", client.api_root, window
        )
        window = None
    # A listed organization that cannot be decoded is still known (without its `Organization`).
    organizations: dict[str, Organization | None] = dict.fromkeys(undecoded)
    organizations.update(_by_id(listed))
    jobs, refused = filed
    by_tenant: dict[str, list[Job]] = {}
    for job in jobs:
        by_tenant.setdefault(id_key(job.organization_id or ""), []).append(job)
    # Each tenant's jobs once, as first listed: what `VBOClient.organization_jobs` gives when
    # the tenant is swept alone.
    by_tenant = {key: first_listed(tenant_jobs) for key, tenant_jobs in by_tenant.items()}
    # A job naming an organization the server does not list: whose it is, only a tenant's own
    # listing says where that lists by path (v1-v7: one under the tenant's path is its), and
    # filed by its own word here it was nobody's, its tenant complete without it. v8 lists a
    # tenant's jobs by filter and leaves out those naming another organization: there the batch
    # gives what tenant by tenant gives, without a request per tenant.
    by_path = not (await client._found_dialect()).organization_jobs_filter
    strays = [key for key in refused if key not in organizations] if by_path else []
    if whole and by_path:
        strays += [key for key in by_tenant if key and key not in organizations]
    if strays and vouched and not whole and "" not in refused and "" not in by_tenant:
        # Vouched for by a count, the targets' organizations are not all the server lists: a
        # job of a tenant not swept (whom the server lists) names no stray organization.
        strays = await _not_listed(client, strays)
    unfiled = "" in refused or (vouched and bool(strays))
    if "" in by_tenant or unfiled or "" in undecoded:
        # A job naming no organization (or, undecodable, none the server lists) belongs to a
        # tenant the listing cannot tell (and an organization without a readable id may be any
        # tenant's): each tenant's own listing says whose it is (or whose DecodeError it is).
        log.debug(
            "%s lists a job or organization without an id; polling its tenants one by one", client.api_root
        )
        await _one_by_one(batch, None if undecoded else listed, started, context)
        return
    wanted = {id_key(target.organization_id) for target in batch.targets}
    try:
        health = await _batch_health(
            client, [job for key in wanted for job in by_tenant.get(key, ())], context, window
        )
    except VBOError as exc:  # the version, known already: not expected
        _fail_all(batch, exc, started, context)
        return

    async def finish(target: PollTarget) -> None:
        key = id_key(target.organization_id)
        organization = organizations.get(key)
        tenant_jobs = by_tenant.get(key, [])
        error: VBOError | None = None
        if key not in organizations:
            error = _unknown(client, target, len(organizations))
        elif refused.get(key):
            error = refused[key][0]
        elif not tenant_jobs and not vouched:
            # No job, and no listing to tell a tenant without jobs from an organization the
            # server does not know (a carried one it deleted since, or another server's).
            error = await _unlisted(client, target.organization_id)
        if error is not None:
            context.emit(
                PollResult(
                    target=target,
                    error=error,
                    elapsed=time.perf_counter() - started,
                    follow=context.follow,
                    organization=organization,
                )
            )
            return
        prefetched, link_errors = await context.links.resolve(client, tenant_jobs, context.follow)
        context.emit(
            PollResult(
                target=target,
                jobs=tenant_jobs,
                elapsed=time.perf_counter() - started,
                follow=context.follow,
                prefetched=prefetched,
                link_errors=link_errors,
                health={job.id: health[id(job)] for job in tenant_jobs} if health else {},
                organization=organization,
            )
        )

    await asyncio.gather(*(finish(target) for target in batch.targets))


async def _not_listed(client: VBOClient, keys: list[str]) -> list[str]:
    """Those of ``keys`` (lower-cased organization ids) that name no organization the server
    lists; all of them when the listing cannot be read or holds one without a readable id."""
    try:
        listed, undecoded = await client._organizations_filed()
    except VBOError:
        return keys
    if "" in undecoded:
        return keys
    known = {id_key(organization.id) for organization in listed}.union(undecoded)
    return [key for key in keys if key not in known]


async def _unlisted(client: VBOClient, organization_id: str) -> VBOError | None:
    """Why ``GET /Organizations/{id}`` fails (its `NotFoundError` for an organization the server
    does not know), or None when the server has it."""
    try:
        await client.organization(organization_id)
    except VBOError as exc:
        return detached(exc)
    return None


def _tenants(targets: Sequence[PollTarget]) -> int:
    """How many distinct tenants ``targets`` name (a tenant named twice is polled once more,
    not listed at twice the share of its server)."""
    return len({id_key(target.organization_id) for target in targets})


def _covers_enough(tenants: int, organizations: int | None) -> bool:
    """Whether a batch of ``tenants`` covers `BATCH_MIN_SHARE` of a server listing
    ``organizations`` (True when that count is unknown)."""
    return organizations is None or tenants >= BATCH_MIN_SHARE * organizations


def _fail_all(batch: Batch, failure: VBOError, started: float, context: Context) -> None:
    failure = detached(failure)
    for target in batch.targets:
        elapsed = time.perf_counter() - started
        context.emit(PollResult(target=target, error=failure, elapsed=elapsed, follow=context.follow))


async def _one_by_one(
    batch: Batch, listed: list[Organization] | None, started: float, context: Context
) -> None:
    """A batch covering too little of its server, or too big to list whole: each tenant on its
    own (the organizations listed, if they were, still tell an unknown id, and name each
    tenant's organization)."""
    organizations = None if listed is None else _by_id(listed)

    async def alone(target: PollTarget) -> None:
        if organizations is None:
            context.emit(await _tenant(target, context))
            return
        organization = organizations.get(id_key(target.organization_id))
        if organization is None:
            error = _unknown(batch.client, target, len(organizations))
            elapsed = time.perf_counter() - started
            context.emit(PollResult(target=target, error=error, elapsed=elapsed, follow=context.follow))
            return
        context.emit(attrs.evolve(await _tenant(target, context), organization=organization))

    await each(batch.targets, alone, batch.client._max_concurrency)


def _too_big_to_batch(error: VBOError) -> bool:
    """Whether a server-wide listing failed for its size alone, which a tenant's own, smaller
    listing may not: a body over ``max_response_bytes``, a page over ``max_page_items`` (or
    unreadable), a listing over ``max_pages`` (an `APIError` of a 200)."""
    return isinstance(error, ResponseTooLargeError | DecodeError) or (
        isinstance(error, APIError) and error.status_code == 200
    )


def _unknown(client: VBOClient, target: PollTarget, listed: int) -> VBOError:
    """Why a batch has no organization for ``target``: the `ConfigError` of an id that cannot
    name one (as ``organization_jobs`` raises for it), else a `NotFoundError`."""
    try:
        id_argument(target.organization_id, "organization")
    except ConfigError as exc:
        return exc
    return NotFoundError(
        f"organization {target.organization_id!r} is not among the {listed} organizations this server lists",
        status_code=404,
        method="GET",
        url=client.api_root,
    )


async def _listings(
    client: VBOClient,
) -> tuple[tuple[list[Organization], dict[str, DecodeError]], tuple[list[Job], dict[str, list[DecodeError]]]]:
    """The server's organizations (and the ids of those that could not be decoded) and its jobs
    filed by tenant, read at the same time: when one fails, the other is cancelled, and waited
    for, before that failure is raised (not read to its end first, nor left running)."""
    return await both(client._organizations_filed(), client._jobs_filed())


Window = dict[str, list[JobSession]] | VBOError | None
"""What `_window` read: the sessions ended within a health policy's window, per job id; why they
could not be read; or None where nothing is read (no policy, or v1, which cannot list them)."""


async def _window(client: VBOClient, context: Context) -> Window:
    """The server-wide sessions `_batch_health` judges from (`VBOClient.recent_sessions`, one
    listing from v6 on), read while the server's jobs are listed: neither depends on the other.
    Never raises a `VBOError`: it returns it, so a failure makes the jobs UNKNOWN rather than fail
    their tenants."""
    policy = context.health
    if policy is None:
        return None
    try:
        if not (await client._found_dialect()).lists_recent_sessions:
            return None
        # Signed in first (as the listing would be): its answer's Date tells the server's clock
        # before the instant the whole batch is judged at is taken from it.
        await client._tokens.current()
        now = context.server_now(client)
        return await client.recent_sessions(_window_start(now, health_window(policy)))
    except VBOError as exc:
        log.debug("reading recent sessions from %s failed: %s", client.api_root, exc)
        return exc


async def _alongside(main: Awaitable[_T], side: Coroutine[Any, Any, Window]) -> tuple[_T, Window]:
    """``main``'s result and ``side``'s, the two run at the same time. ``side`` returns its
    failures; it is cancelled, and waited for, when ``main`` fails or the caller is cancelled, so
    no request is left running."""
    task = asyncio.ensure_future(side)
    try:
        result = await main
    except BaseException:
        task.cancel()
        await asyncio.wait({task})
        raise
    return result, await task


async def _batch_health(
    client: VBOClient, jobs: list[Job], context: Context, window: Window
) -> dict[int, JobHealth]:
    """Every job of ``jobs`` judged under the sweep's policy (none without one), by the
    identity (``id()``) of the `Job`: a server may list one job id under two tenants, each of
    which gets its own job's health.

    From v6 on, from ``window``: one server-wide listing of the sessions ended within the policy's
    window (`_window`); a failure to read it makes every job UNKNOWN rather than fail its tenant
    (except in a batch the plan chose, where a window too big to read whole is None here).
    A job whose last result or last success the window may miss (`window_falls_short`: on v6,
    whose jobs lack ``last_backup``, any job without a success in the window; a job stale by
    its ``last_backup`` with none in the window, where a success before it can count: a
    schedule-aware allowance longer than the window, ``warning_is_success``) also reads its own
    newest sessions as `VBOClient.job_health` does, so that both give the same verdict. v1 has no
    such listing (``window`` is None): each job is judged as `VBOClient.job_health` judges it (one
    request for its newest sessions, a failure that job's UNKNOWN), which is also what a tenant
    swept alone gets."""
    policy = context.health
    if policy is None or not jobs:
        return {}
    now = context.server_now(client)  # the sweep's "now" on this server's clock, as `_window`'s
    if window is None:
        judged = await each(
            jobs, lambda job: _judged(client, job, policy, now, context.now), client._max_concurrency
        )
        return {id(job): health for job, health in zip(jobs, judged, strict=True)}
    sessions, error = ({}, window) if isinstance(window, VBOError) else (window, None)
    # An id no request can name (``a/b``): its sessions cannot be read, as `_judged` says for
    # a tenant swept alone, whatever the server-wide window holds of them.
    failures: dict[str, VBOError] = {job.id: refusal for job in jobs if (refusal := _unnamable(job))}
    if error is None:
        # What `VBOClient.job_health` would read of each job's newest runs, and no more: a run
        # beyond them (a success 27 h ago behind 50 newer runs) must not change the verdict.
        pages = (await client._found_dialect()).health_pages
        # By the job id's `id_key`, as ids are compared everywhere (`recent_sessions` files the
        # sessions of one job under one spelling, whatever cases the server wrote).
        sessions = {id_key(job_id): _within(found, pages) for job_id, found in sessions.items()}
        # A job whose last result or last success lies before the window (and which does not
        # carry it itself) reads its own newest sessions, as `VBOClient.job_health` does, and is
        # judged from those alone: the window's older runs would make a job that never succeeded
        # look stale for longer than the runs `job_health` sees.
        lacking = [
            job
            for job in jobs
            if job.id not in failures
            and window_falls_short(job, sessions.get(id_key(job.id), ()), policy, now=now)
        ]
        own = await each(lacking, lambda job: _own_sessions(client, job), client._max_concurrency)
        for job, found in zip(lacking, own, strict=True):
            if isinstance(found, VBOError):
                failures[job.id] = found
            else:
                sessions[id_key(job.id)] = found

    def judge(job: Job) -> Callable[[dt.datetime], JobHealth]:
        # A job whose own sessions could not be read is judged from none, as `job_health` judges it.
        found = () if job.id in failures else sessions.get(id_key(job.id), ())
        problem = failures.get(job.id, error)
        return lambda at: assess(job, found, policy=policy, now=at, error=problem)

    return {id(job): on_clock(judge(job), context.now, now) for job in jobs}


def _within(sessions: list[JobSession], pages: tuple[int, ...]) -> list[JobSession]:
    """The newest of ``sessions`` (newest first) that `VBOClient.job_health` reads within the
    dialect's ``health_pages`` budget: a page of ``limit``, a larger one only when that was full
    and held no finished run (pure)."""
    seen = sessions
    for limit in pages:
        seen = sessions[:limit]
        if len(seen) < limit or any(finished(session) for session in seen):
            break
    return seen


def _window_start(now: dt.datetime, window: dt.timedelta) -> dt.datetime:
    """``now - window``, but not before `_EARLIEST` (nor beyond the calendar: no `OverflowError`)."""
    return now - window if window < now - _EARLIEST else _EARLIEST


async def _judged(
    client: VBOClient, job: Job, policy: HealthPolicy, now: dt.datetime, here: dt.datetime
) -> JobHealth:
    """`VBOClient.job_health` at ``now``, the server's reading of this machine's ``here`` (a
    verdict the server's clock decided says so), for a job the server listed: an id of it that
    cannot name its sessions (``a/b``) is that job's ``policy.unreadable``, not a `ConfigError`
    of the sweep."""
    try:
        return await client._job_health(job, policy, now, here)
    except ConfigError as exc:
        return assess(job, (), policy=policy, now=now, error=exc)


def _unnamable(job: Job) -> ConfigError | None:
    """The `ConfigError` of a job id that cannot name its sessions in a request (``a/b``), as
    `VBOClient.job_health` raises it; None for an id that can (pure)."""
    try:
        id_argument(job.id, "job.id")
    except ConfigError as exc:
        return exc
    return None


async def _own_sessions(client: VBOClient, job: Job) -> list[JobSession] | VBOError:
    """The newest sessions of ``job`` as `VBOClient.job_health` reads them, or why they could
    not be read."""
    try:
        return await client._health_sessions(id_argument(job.id, "job.id"))
    except VBOError as exc:
        # The id scrubbed as the URL in ``exc`` is: a server may name a job by the token it was sent.
        log.debug("reading the sessions of job %r failed: %s", client._fetcher.shown_id(job.id), exc)
        return exc


def _by_id(listed: list[Organization]) -> dict[str, Organization]:
    """The organizations listed, by id lower-cased, each as first listed (as a tenant's jobs
    are, `first_listed`): a listing that repeats one (shifted by offset) names it after its
    first reading."""
    found: dict[str, Organization] = {}
    for organization in listed:
        found.setdefault(id_key(organization.id), organization)
    return found
