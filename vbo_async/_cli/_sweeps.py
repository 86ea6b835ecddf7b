"""One server's part of an exporter sweep: what ``vbo-async serve`` reads, turned into samples.

`sweep_server` reads one server through its long-lived client (one token and one connection
pool for the exporter's whole life):

- its organizations, once: the tenants' names, and proof that the server is reachable and the
  account accepted (``up``). When that fails nothing else is asked.
- every chosen tenant's jobs and their health through `poll_jobs` with a `HealthPolicy`: a
  server whose tenants are all swept costs a handful of requests whatever its number of tenants
  (its jobs and its recent sessions, from v6 on), and
- at the same time its repositories, proxies, license and build (v6+), and each tenant's
  ``usedRepositories`` (v6+, one request per tenant).

It returns a `ServerSnapshot` of plain label tuples and numbers, no model objects: nothing of a
sweep is held once its exposition has been rendered. A value the server did not send gives no
sample (never a made-up 0). No prometheus_client here.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator, Mapping, Sequence
from typing import Any, Literal, TypeVar

import attrs

from .._client import VBOClient
from .._enums import ProxyStatus
from .._exceptions import DecodeError, NotSupportedError, VBOError
from .._health import UNREADABLE_SESSIONS, HealthPolicy, JobHealth, is_never
from .._models import BackupRepository, Job, JobSession, License, Organization, Proxy, UsedRepository
from .._poll import PollResult, PollTarget, poll_jobs
from .._printable import printable_lines
from .._units import BATCH_MIN_TENANTS
from ._connect import explain
from ._descriptors import for_want_of_descriptors
from ._flows import choose_tenants
from ._metrics import JOB_STATUSES, PREFIX

__all__ = [
    "MAX_LABEL_LENGTH",
    "MAX_TENANT_WARNINGS",
    "Samples",
    "ServerSnapshot",
    "ServerSpec",
    "batch_mode",
    "sweep_server",
]

log = logging.getLogger("vbo_async.cli")
T = TypeVar("T")
M = TypeVar("M", BackupRepository, Proxy)

Samples = dict[str, list[tuple[tuple[str, ...], float]]]
"""Metric name → ``(label values after server, value)`` pairs."""

MAX_LABEL_LENGTH = 1024
"""The most characters of a label value (a name, an id, a status, a build), far more than a real
server's names and ids take. The server's text is the label, and a job's is in each of its 16
series: a server naming its jobs with a megabyte each made the exporter keep about 12 megabytes
per job from one sweep to the next (deflate cannot refer back that far)."""

MAX_TENANT_WARNINGS = 10
"""The most tenants a sweep logs a warning for (one it cannot take: an organization it cannot
decode, one listed without an id, an entry of the targets file naming none); one more line counts
the others. A server listing 10,000 tenants it cannot decode made 10,000 lines every sweep."""


@attrs.frozen(kw_only=True)
class ServerSpec:
    """A server the exporter sweeps: its ``name`` (the ``server`` label), its open ``client``,
    and which ``organizations`` to sweep (``"all"``, or ids or names)."""

    name: str
    client: VBOClient = attrs.field(eq=False)
    organizations: Literal["all"] | tuple[str, ...] = "all"


@attrs.frozen(kw_only=True)
class ServerSnapshot:
    """What one sweep read from one server.

    ``samples`` holds every series of the server (``up`` and the sweep's own gauges included);
    ``errors`` counts this sweep's failed reads by kind (`ERROR_KINDS`); ``problem`` is the
    one-line reason a server is down (None when up), ``starved`` whether that is the process's
    own lack of a file descriptor, ``internal`` whether it is an internal error (a bug, not the
    server's state); ``jobs`` is how many jobs were published.
    """

    server: str
    up: bool
    samples: Samples
    errors: Mapping[str, int]
    problem: str | None = None
    jobs: int = 0
    starved: bool = False
    internal: bool = False


async def sweep_server(
    spec: ServerSpec,
    *,
    policy: HealthPolicy,
    budget: float | None = None,
    concurrency: int = 8,
) -> ServerSnapshot:
    """Read ``spec``'s server within ``budget`` seconds (None: no limit) and return its snapshot.

    A server that cannot be listed, or whose sweep runs out of time, is down: its snapshot holds
    only ``up`` 0 and the sweep's gauges. An unexpected exception is logged with its traceback
    and makes the server down too, so one server never stops the sweep of the others.
    """
    began = time.perf_counter()
    # No retry's wait ends past the budget (a request first tried late in the sweep included):
    # the server's own answer is reported, not a sweep that timed out.
    spec.client._retry_until(None if budget is None else time.monotonic() + budget)
    reader = _Reader(spec, policy, concurrency)
    problem: str | None = None
    internal = False
    try:
        async with asyncio.timeout(budget):
            await reader.read()
    except TimeoutError:
        reader.fail("timeout")
        problem = "its sweep timed out" + (f" (budget {budget:g} s)" if budget is not None else "")
    except Exception as exc:  # a bug, or hostile data nothing else caught: this server only
        log.error("internal error while sweeping %s", spec.name, exc_info=True)
        reader.fail("server")
        internal = True
        cause: BaseException = exc
        while isinstance(cause, BaseExceptionGroup) and len(cause.exceptions) == 1:
            cause = cause.exceptions[0]
        problem = f"internal error: {type(cause).__name__}: {cause}"
    else:
        problem = reader.problem
    up = problem is None
    samples = reader.samples if up else {}
    _add(samples, "up", (), 1.0 if up else 0.0)
    if up and (offset := spec.client.server_clock_offset) is not None:
        _add(samples, "server_clock_offset_seconds", (), offset.total_seconds())
    _add(samples, "sweep_duration_seconds", (), time.perf_counter() - began)
    _add(samples, "last_sweep_timestamp_seconds", (), time.time())
    return ServerSnapshot(
        server=spec.name,
        up=up,
        samples=samples,
        errors=dict(reader.errors),
        problem=problem,
        jobs=reader.jobs if up else 0,
        starved=reader.starved and not up,
        internal=internal,
    )


def batch_mode(organizations: Literal["all"] | tuple[str, ...], tenants: int) -> bool | None:
    """The ``batch`` of `poll_jobs` for a server's sweep of ``tenants`` tenants: None, as ``poll``
    and ``check`` sweep (a server with `BATCH_MIN_TENANTS` or more of them in the sweep is listed
    whole, and tenant by tenant after all when its listings are too big to read whole), except
    for a server swept whole (``"all"``) with fewer tenants, which poll_jobs would read tenant by
    tenant: its whole listing holds nothing but what is swept, so one batch is cheaper there."""
    return True if organizations == "all" and tenants < BATCH_MIN_TENANTS else None


def _add(samples: Samples, name: str, labels: tuple[str, ...], value: float | None) -> None:
    if value is not None:
        samples.setdefault(PREFIX + name, []).append((labels, float(value)))


def _text(value: str) -> str:
    """A label value prometheus_client can encode (lone surrogates replaced), its control
    characters but tabs and line feeds written out as escapes (`printable_lines`: an escape
    sequence, a carriage return or a NUL a server sends would otherwise reach alert texts and
    terminals as it is; the exposition format escapes line feeds itself), of at most
    `MAX_LABEL_LENGTH` characters: a longer one is cut, ending in ``…`` and 16 hex digits of
    its SHA-256, so that values cut alike stay apart (one series each) and a value gives the
    same label on every sweep. Anything else passes as is."""
    if not value.isprintable():  # printable text has nothing `printable_lines` writes out
        value = printable_lines(value)
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            value = value.encode("utf-8", "replace").decode("utf-8")
    if len(value) <= MAX_LABEL_LENGTH:
        return value
    digest = hashlib.sha256(value.encode("utf-8")).hexdigest()[:16]
    return f"{value[: MAX_LABEL_LENGTH - 17]}…{digest}"


def _stamp(moment: dt.datetime | None) -> float | None:
    """``moment`` as a Unix time; None (no sample) for none, or for one that never was or never
    will be (`is_never`: up to Unix time 0, as .NET's 0001-01-01, or in 9999, as its MaxValue, the
    next run of a job that has none), no time to show or to alert on the age of."""
    if moment is None or is_never(moment):
        return None
    if moment.tzinfo is None or moment.utcoffset() is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()


def _duration(session: JobSession) -> float | None:
    """How long ``session`` ran, in seconds; None (no sample) without a start and an end, with
    one that never was (`is_never`: .NET's MinValue start or MaxValue end made centuries), or
    with an end before the start."""
    started, ended = _stamp(session.creation_time), _stamp(session.end_time)
    if started is None or ended is None or ended < started:
        return None
    return ended - started


def _flag(value: bool | None) -> float | None:
    return None if value is None else float(value)


class _Reader:
    """The reads of one server's sweep and the samples and errors they give."""

    def __init__(self, spec: ServerSpec, policy: HealthPolicy, concurrency: int) -> None:
        self.spec = spec
        self.client = spec.client
        self.policy = policy
        self.concurrency = concurrency
        self.samples: Samples = {}
        self.errors: Counter[str] = Counter()
        self.problem: str | None = None
        self.starved = False
        self.jobs = 0

    def fail(self, kind: str) -> None:
        self.errors[kind] += 1

    def add(self, name: str, labels: tuple[str, ...], value: float | None) -> None:
        _add(self.samples, name, labels, value)

    async def read(self) -> None:
        try:
            organizations, undecoded = await self.client._organizations_filed()
        except VBOError as exc:
            self.fail("server")
            self.problem = explain(exc, source="targets")
            self.starved = for_want_of_descriptors(exc)
            return
        chosen = self._choose(organizations, undecoded)
        tenants = iter(chosen)
        readers: list[Callable[[], Coroutine[Any, Any, None]]] = [
            lambda: self._jobs(chosen, len(organizations) + len(undecoded)),
            self._repositories,
            self._proxies,
            self._license,
            self._service_instance,
            # As many readers as the client sends requests at once, not a task per tenant waiting
            # for a slot: a server listing a million tenants would make gigabytes of them.
            *[lambda: self._used_each(tenants)] * min(self.client._max_concurrency, len(chosen)),
        ]
        async with asyncio.TaskGroup() as group:
            started: list[asyncio.Task[None]] = []
            for reader in readers:
                if any(task.done() and not task.cancelled() and task.exception() for task in started):
                    # Failed inside create_task (an eager task, Python 3.12+): the group is
                    # shutting down and would refuse another task, a second error beside the bug.
                    break
                started.append(group.create_task(reader()))

    def _choose(
        self, organizations: Sequence[Organization], undecoded: Mapping[str, DecodeError]
    ) -> list[Organization]:
        """The tenants to sweep (`choose_tenants`); each it cannot take is an ``organization``
        error (the first `MAX_TENANT_WARNINGS` logged, the others counted in one line), its
        neighbours still swept. One the server lists but the client cannot decode, whose id
        could be read, is also ``organization_up`` 0 (named by its id), as a tenant whose jobs
        could not be read is, unless a readable copy of it is swept."""
        usable, refused = choose_tenants(
            self.spec.organizations, organizations, undecoded, server=self.spec.name
        )
        swept = {organization.id.lower() for organization in usable}
        for number, tenant in enumerate(refused):
            self.fail("organization")
            if number < MAX_TENANT_WARNINGS:
                log.warning("%s", tenant.said(self.spec.name))
            key = tenant.organization_id
            if key and key not in swept:
                self.add("organization_up", (_text(key), _text(key)), 0.0)
        if len(refused) > MAX_TENANT_WARNINGS:
            log.warning(
                "%s: %d more tenants that could not be swept are not logged "
                '(sweep_errors_total{kind="organization"} counts every one)',
                self.spec.name,
                len(refused) - MAX_TENANT_WARNINGS,
            )
        return usable

    async def _jobs(self, organizations: list[Organization], listed: int) -> None:
        """Poll the chosen ``organizations`` of a server listing ``listed`` of them."""
        targets = [
            PollTarget(client=self.client, organization_id=o.id, name=_tenant(o), organization=o)
            for o in organizations
        ]
        batch = batch_mode(self.spec.organizations, len(targets))
        counts = {self.client: listed}
        async with poll_jobs(
            targets, concurrency=self.concurrency, health=self.policy, batch=batch, organization_counts=counts
        ) as results:
            async for result in results:
                self._tenant(result)

    def _tenant(self, result: PollResult) -> None:
        organization = result.target.organization
        assert organization is not None
        tenant = (_text(_tenant(organization)), _text(organization.id))
        if result.error is not None:
            self.fail("organization")
            log.debug("%s: tenant %s could not be read: %s", self.spec.name, tenant[0], result.error)
            self.add("organization_up", tenant, 0.0)
            return
        self.add("organization_up", tenant, 1.0)
        unreadable = False
        seen: set[str] = set()
        for job in result.jobs:
            # A server listing a job twice must not make a duplicate series (`poll_jobs` gives
            # each job once already, as first listed: `first_listed`).
            if (key := job.id.lower()) in seen:
                continue
            seen.add(key)
            health = result.health.get(job.id)
            if health is not None and health.reason.startswith(UNREADABLE_SESSIONS):
                unreadable = True
            self._job(tenant, job, health)
        self.jobs += len(seen)
        if unreadable:
            self.fail("sessions")

    def _job(self, tenant: tuple[str, str], job: Job, health: JobHealth | None) -> None:
        # An empty label value is no label to Prometheus: a job named "" is named by its id.
        labels = (*tenant, _text(job.id), _text(job.name or job.id))
        # An empty status is no status (its ``status=""`` would be no label): no state set, as
        # for a job without one.
        if job.last_status is not None and job.last_status.value:
            status = job.last_status.value
            for known in JOB_STATUSES:
                self.add("job_last_status", (*labels, known), 1.0 if known == status else 0.0)
            if status not in JOB_STATUSES:
                self.add("job_last_status", (*labels, _text(status)), 1.0)
        self.add("job_enabled", labels, _flag(job.is_enabled))
        self.add("job_last_run_timestamp_seconds", labels, _stamp(job.last_run))
        self.add("job_next_run_timestamp_seconds", labels, _stamp(job.next_run))
        if health is None:
            return
        self.add("job_health", labels, float(health.state.value))
        self.add("job_last_success_timestamp_seconds", labels, _stamp(health.last_success))
        session = health.last_session
        if session is None:
            return
        self.add("job_last_session_duration_seconds", labels, _duration(session))
        statistics = session.statistics
        transferred = statistics.transferred_data_bytes if statistics is not None else None
        self.add("job_last_session_transferred_bytes", labels, transferred)
        self.add("job_last_session_retry_count", labels, session.retry_count)

    async def _read(self, kind: str, call: Awaitable[T]) -> T | None:
        """Await ``call``; None when the API version lacks it (v1) or it failed (an error of
        ``kind``)."""
        try:
            return await call
        except NotSupportedError:
            return None
        except VBOError as exc:
            self.fail(kind)
            log.debug("%s: reading %s failed: %s", self.spec.name, kind, exc)
            return None

    async def _listed(self, kind: str, route: str, cls: type[T]) -> list[T]:
        """The items of the listing ``route`` that could be decoded; each that could not counts
        as an error of ``kind`` (its series absent, its neighbours' published), as does a
        listing that failed (none then)."""
        filed = await self._read(kind, self.client._filed(route, cls))
        if filed is None:
            return []
        found, refused = filed
        for key, error in refused:
            self.fail(kind)
            log.debug("%s: reading %s %r failed: %s", self.spec.name, kind, key, error)
        return found

    async def _repositories(self) -> None:
        found = await self._listed("repositories", "backup_repositories", BackupRepository)
        for repository in _unique(found):
            labels = (_text(repository.id), _text(repository.name or repository.id))
            self.add("repository_capacity_bytes", labels, repository.capacity)
            self.add("repository_free_bytes", labels, repository.free_space)
            self.add("repository_out_of_sync", labels, _flag(repository.is_out_of_sync))
            self.add("repository_out_of_order", labels, _flag(repository.is_out_of_order))
            # None on disk; v8: in the repository already; v6/v7: one request each, one at a time.
            store = await self._read("object_storage", self.client.object_storage(repository))
            if store is not None:
                self.add("repository_object_storage_used_bytes", labels, store.used_space_bytes)

    async def _proxies(self) -> None:
        found = await self._listed("proxies", "proxies", Proxy)
        for proxy in _unique(found):
            labels = (_text(proxy.id), _text(proxy.host_name or proxy.fqdn or proxy.id))
            if proxy.status is not None:
                self.add("proxy_up", labels, 1.0 if proxy.status == ProxyStatus.ONLINE else 0.0)
            self.add("proxy_cpu_usage_percent", labels, proxy.cpu_usage_percent)
            self.add("proxy_memory_usage_percent", labels, proxy.memory_usage_percent)

    async def _license(self) -> None:
        found: License | None = await self._read("license", self.client.license())
        if found is not None:
            self.add("license_expiration_timestamp_seconds", (), _stamp(found.license_expires))
            self.add("license_used", (), found.used_number)
            self.add("license_total", (), found.total_number)

    async def _service_instance(self) -> None:
        """``server_info``: its build empty where the version has none to tell (v1), and no
        sample when it could not be read (an empty build would be a made-up one)."""
        try:
            instance = await self.client.service_instance()
        except NotSupportedError:
            instance = None
        except VBOError as exc:
            self.fail("service_instance")
            log.debug("%s: reading service_instance failed: %s", self.spec.name, exc)
            return
        build = getattr(instance, "version", None) or ""
        self.add("server_info", (self.client.api_version or "", _text(build)), 1.0)

    async def _used_each(self, organizations: Iterator[Organization]) -> None:
        """`_used` of the organizations ``organizations`` gives, one after the other (other
        readers take from the same iterator)."""
        for organization in organizations:
            await self._used(organization)

    async def _used(self, organization: Organization) -> None:
        found: list[UsedRepository] | None = await self._read(
            "used_repositories", self.client.organization_used_repositories(organization)
        )
        tenant = (_text(_tenant(organization)), _text(organization.id))
        seen: set[str] = set()
        for row in found or ():
            if row.repository_id is None or (key := row.repository_id.lower()) in seen:
                continue
            seen.add(key)
            self.add("organization_used_bytes", (*tenant, _text(row.repository_id)), row.used_space_bytes)


def _tenant(organization: Organization) -> str:
    return organization.name or organization.id


def _unique(items: Iterable[M]) -> list[M]:
    """``items`` with each id once (compared ignoring case), as first listed: one series each, with
    the values of the listing its neighbours were read from, as a job listed twice has
    (`first_listed`)."""
    seen: set[str] = set()
    kept = []
    for item in items:
        if (key := item.id.lower()) not in seen:
            seen.add(key)
            kept.append(item)
    return kept
