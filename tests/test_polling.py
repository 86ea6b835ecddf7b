"""Polling many tenants: one result per target, isolation, bounds, prefetch, order, cancellation."""

from __future__ import annotations

import asyncio
import contextlib
import copy
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import httpx
import pytest

import vbo_async
from vbo_async import (
    BackupRepository,
    ConfigError,
    LinkError,
    NotFoundError,
    Organization,
    PollProgress,
    PollResult,
    PollTarget,
    Proxy,
    RateLimitedError,
    RetryPolicy,
    ServerError,
    VBOClient,
    poll_jobs,
)

from .conftest import BASE, FOREIGN, FakeVBO, Gate, client_for, json_response

REPOSITORY = {"id": "repo-1", "name": "Primary", "capacity": 10**12, "freeSpace": 4 * 10**11}
PROXY = {"id": "proxy-1", "hostName": "proxy01.east.local", "port": 9193, "status": "Online"}
MakeClient = Callable[..., VBOClient]


def job_list(seed_job: dict[str, Any], org_id: str, count: int, *, repository: str | None = "repo-1") -> Any:
    """``count`` jobs of ``org_id`` shaped like the seed, their hrefs on the server's own (foreign) host."""
    jobs = []
    for n in range(count):
        job = copy.deepcopy(seed_job)
        job_id = f"{org_id}-job-{n}"
        job["id"] = job_id
        job["name"] = f"{org_id} backup {n}"
        links = job["_links"]
        links["self"]["href"] = f"{FOREIGN}/v1/Jobs/{job_id}"
        links["organization"]["href"] = f"{FOREIGN}/v1/Organizations/{org_id}"
        links["selectedMailboxes"]["href"] = f"{FOREIGN}/v1/Jobs/{job_id}/SelectedMailboxes"
        links["jobsessions"]["href"] = f"{FOREIGN}/v1/Jobs/{job_id}/JobSessions"
        links["proxy"]["href"] = f"{FOREIGN}/v1/Proxies/proxy-1"
        if repository is None:
            del links["repository"]
        else:
            links["repository"]["href"] = f"{FOREIGN}/v1/BackupRepositories/{repository}"
        jobs.append(job)
    return jobs


class Tenants:
    """Organizations served by a `FakeVBO`; their job lists go through `answer`, so a test can hold
    (``gates``), fail (``failing``: 500) or break (``broken``: a bug in the transport) each one,
    and see how many job-list requests were in flight at once."""

    def __init__(self, fake: FakeVBO, seed_job: dict[str, Any], count: int, *, jobs_each: int = 2) -> None:
        self.fake = fake
        self.ids = [f"org-{n:02d}" for n in range(count)]
        self.jobs = {org: job_list(seed_job, org, jobs_each) for org in self.ids}
        self.gates: dict[str, asyncio.Event] = {}
        self.failing: set[str] = set()
        self.broken: set[str] = set()
        self.delay = 0.0
        self.in_flight = 0
        self.peak = 0
        self.cancelled = 0
        self.arrived = asyncio.Event()
        self.at_gates = 0
        self.bug_after_held = 0
        """A broken tenant's bug strikes once this many held tenants wait at their gates (so
        that it finds them in flight whatever order the loop starts tasks in)."""
        for org in self.ids:
            self.serve(org)
        fake.route("GET", "/v1/BackupRepositories/repo-1", REPOSITORY)
        fake.route("GET", "/v1/Proxies/proxy-1", PROXY)

    def serve(self, org: str) -> None:
        async def answer(request: httpx.Request) -> httpx.Response:
            return await self.answer(org)

        self.fake.route("GET", f"/v1/Organizations/{org}/Jobs", answer)
        self.fake.route("GET", f"/v1/Organizations/{org}", {"id": org, "name": f"Tenant {org}"})

    async def answer(self, org: str) -> httpx.Response:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        self.arrived.set()
        try:
            if org in self.broken:
                async with asyncio.timeout(5):  # a hang guard only
                    while self.at_gates < self.bug_after_held:
                        self.arrived.clear()
                        await self.arrived.wait()
                raise ZeroDivisionError("a bug, not a VBO error")
            if org in self.gates:
                self.at_gates += 1
                self.arrived.set()
                try:
                    await self.gates[org].wait()
                finally:
                    self.at_gates -= 1
            await asyncio.sleep(self.delay)
            if org in self.failing:
                return json_response(500, {"message": "An error has occurred."})
            return json_response(200, self.jobs[org])
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            self.in_flight -= 1

    def hold(self, *orgs: str) -> None:
        for org in orgs:
            self.gates[org] = asyncio.Event()

    async def until_in_flight(self, count: int) -> None:
        """Wait until ``count`` job lists are being answered at once."""
        async with asyncio.timeout(5):
            while self.in_flight < count:
                self.arrived.clear()
                await self.arrived.wait()

    def gets(self, path: str) -> int:
        return sum(1 for r in self.fake.api_requests if r.method == "GET" and r.url.path == path)


@pytest.fixture
def tenants(fake: FakeVBO, seed_job: dict[str, Any]) -> Tenants:
    return Tenants(fake, seed_job, 12)


@pytest.fixture
async def make_client(fake: FakeVBO) -> AsyncIterator[MakeClient]:
    """Clients of the fake (one per server base URL), closed after the test."""
    made: list[VBOClient] = []

    def make(**options: Any) -> VBOClient:
        made.append(client_for(fake, **options))
        return made[-1]

    yield make
    for client in made:
        await client.aclose()


def targets_for(tenants: Tenants, *clients: VBOClient) -> list[PollTarget]:
    """One target per organization, spread over ``clients`` (shared between targets)."""
    return [
        PollTarget(client=clients[n % len(clients)], organization_id=org, name=f"tenant {org}")
        for n, org in enumerate(tenants.ids)
    ]


async def collect(sweep: AsyncIterator[PollResult]) -> list[PollResult]:
    return [result async for result in sweep]


async def strays(baseline: set[asyncio.Task[Any]], *, rounds: int = 10) -> set[asyncio.Task[Any]]:
    """The tasks beyond ``baseline`` still alive after ``rounds`` loop iterations (cancelled tasks
    and the loop's async generator finaliser need a few to finish)."""
    for _ in range(rounds):
        if not asyncio.all_tasks() - baseline:
            break
        await asyncio.sleep(0)
    return asyncio.all_tasks() - baseline


def assert_held_requests_cancelled(tenants: Tenants) -> None:
    """Every job list held at the server was cancelled there (3 or 4 reached it: a worker may take
    its next target between the delivery of a result and the consumer's break)."""
    reached = sum(tenants.gets(f"/v1/Organizations/{org}/Jobs") for org in tenants.gates)
    assert reached >= 3
    assert tenants.cancelled == reached
    assert tenants.in_flight == 0


def sweep_tasks() -> list[str]:
    return [t.get_name() for t in asyncio.all_tasks() if t.get_name().startswith("vbo_async.poll_jobs")]


# --- one result per target, errors isolated ---------------------------------------------------------


async def test_a_failing_tenant_does_not_stop_the_others(tenants: Tenants, make_client: MakeClient) -> None:
    tenants.failing.add("org-07")
    a, b = make_client(), make_client(base_url="https://vbo02.test:4443")
    targets = targets_for(tenants, a, b)

    results = await collect(poll_jobs(targets, concurrency=4, batch=False))

    assert len(results) == 12
    assert {id(r.target) for r in results} == {id(t) for t in targets}  # every target, exactly once
    failed = [r for r in results if r.error is not None]
    assert [r.target.organization_id for r in failed] == ["org-07"]
    error = failed[0].error
    assert isinstance(error, ServerError)  # an APIError: 500 after every retry
    assert error.status_code == 500
    assert error.url is not None
    assert error.url.endswith("/v1/Organizations/org-07/Jobs")
    assert failed[0].jobs == []
    for result in results:
        if result.error is None:
            org = result.target.organization_id
            assert [job.id for job in result.jobs] == [f"{org}-job-0", f"{org}-job-1"]
            assert result.elapsed > 0
    assert tenants.gets("/v1/Organizations/org-07/Jobs") == 4  # retried like any GET, then given up
    assert len(tenants.fake.token_requests) == 2  # one token per client, however many targets


async def test_a_throttled_server_fails_its_tenants_at_once_and_only_them(
    tenants: Tenants, make_client: MakeClient, sleeps: list[float]
) -> None:
    """A server whose token endpoint is over its hourly quota (429, ``Retry-After: 3600``) is
    asked once: each of its tenants gets the `RateLimitedError` saying when to retry, at once, and
    the other server's tenants their jobs."""
    throttled: list[httpx.Request] = []

    def over_quota(request: httpx.Request) -> httpx.Response:
        throttled.append(request)
        return httpx.Response(429, headers={"Retry-After": "3600"})

    a = make_client()
    b = client_for(over_quota, base_url="https://vbo02.test:4443")
    try:
        results = await collect(poll_jobs(targets_for(tenants, a, b), concurrency=4, batch=False))
    finally:
        await b.aclose()

    assert len(results) == 12
    failed = [r for r in results if r.error is not None]
    assert {r.target.client for r in failed} == {b}
    assert len(failed) == 6
    for result in failed:
        assert isinstance(result.error, RateLimitedError)
        assert result.error.retry_after is not None
        assert 3590 <= result.error.retry_after <= 3600
        assert "retry after" in str(result.error)
    assert all(len(r.jobs) == 2 for r in results if r.error is None)
    assert len(throttled) == 1
    assert max(sleeps, default=0.0) == 0  # nothing waited for the throttle


async def test_results_arrive_in_completion_order(tenants: Tenants, make_client: MakeClient) -> None:
    tenants.hold("org-00")
    vbo = make_client()
    order: list[str] = []

    async with asyncio.timeout(5):  # delivering in input order would wait forever
        async for result in poll_jobs(targets_for(tenants, vbo), concurrency=12, batch=False):
            order.append(result.target.organization_id)
            if len(order) == 11:
                tenants.gates["org-00"].set()  # the first target finishes only now

    assert order[-1] == "org-00"
    assert sorted(order) == tenants.ids


async def test_no_targets_no_requests(fake: FakeVBO) -> None:
    assert await collect(poll_jobs([], batch=False)) == []
    assert fake.requests == []


async def test_a_closed_client_fails_only_its_targets(tenants: Tenants, make_client: MakeClient) -> None:
    open_client, closed_client = make_client(), make_client(base_url="https://vbo02.test:4443")
    await closed_client.aclose()

    results = await collect(poll_jobs(targets_for(tenants, open_client, closed_client), batch=False))

    errors = {r.target.organization_id: r.error for r in results}
    assert all(errors[org] is None for org in tenants.ids[::2])
    assert all(isinstance(errors[org], vbo_async.ClientStateError) for org in tenants.ids[1::2])


async def test_a_client_closed_while_its_tenant_is_judged_fails_only_that_tenant(
    tenants: Tenants, make_client: MakeClient
) -> None:
    """One server's client closed while its tenant's job sessions are being read (its jobs listed
    already): that tenant's result is the `ClientStateError`, the other server's tenants are all
    delivered, and no task is left (the error used to end the whole sweep as a bug)."""
    closing, healthy = make_client(), make_client(base_url="https://vbo02.test:4443")
    reached = asyncio.Event()

    async def sessions(request: httpx.Request) -> httpx.Response:
        if request.url.host == "vbo.test":
            reached.set()
            await asyncio.Event().wait()  # never answered: the client is closed meanwhile
        return json_response(200, [])

    for org in tenants.ids:
        for job in tenants.jobs[org]:
            tenants.fake.route("GET", f"/v1/Jobs/{job['id']}/JobSessions", sessions)
    first, *others = tenants.ids
    targets = [PollTarget(client=closing, organization_id=first)]
    targets += [PollTarget(client=healthy, organization_id=org) for org in others]
    baseline = asyncio.all_tasks()

    async def close_when_reached() -> None:
        await reached.wait()
        await closing.aclose()

    closer = asyncio.create_task(close_when_reached())
    async with asyncio.timeout(10):  # a guard against a hang only
        results = await collect(poll_jobs(targets, batch=False, health=vbo_async.HealthPolicy()))
        await closer

    errors = {r.target.organization_id: r.error for r in results}
    assert sorted(errors) == sorted(tenants.ids)
    assert isinstance(errors[first], vbo_async.ClientStateError)
    assert all(errors[org] is None for org in others)
    assert sweep_tasks() == []
    assert await strays(baseline) == set()


# --- bounds -----------------------------------------------------------------------------------------


async def test_a_hanging_server_holds_no_more_than_its_share_of_the_workers(
    tenants: Tenants, make_client: MakeClient
) -> None:
    """Six tenants of a server that does not answer, listed before six of a healthy one, with two
    workers: a free worker takes the tenant of the server with the fewest in work, so the healthy
    server's tenants all arrive while the other's are still held (taken in the given order, both
    workers waited on the hung server and the healthy one waited for its timeouts)."""
    a, b = make_client(), make_client(base_url="https://vbo02.test:4443")
    held, healthy = tenants.ids[:6], tenants.ids[6:]
    tenants.hold(*held)
    targets = [PollTarget(client=a, organization_id=org) for org in held]
    targets += [PollTarget(client=b, organization_id=org) for org in healthy]
    order: list[str] = []
    async with poll_jobs(targets, concurrency=2, batch=False) as sweeping:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10):  # a guard: unfair, nothing arrives until the timeouts
                async for result in sweeping:
                    order.append(result.target.organization_id)
                    if set(healthy) <= set(order):
                        for gate in tenants.gates.values():
                            gate.set()
    assert order[:6] == healthy
    assert sorted(order[6:]) == sorted(held)


async def test_a_batch_swept_tenant_by_tenant_holds_a_bounded_number_of_tasks(
    tenants: Tenants, make_client: MakeClient
) -> None:
    """A batch the plan chose, swept tenant by tenant after all (too small a share of its server),
    takes its tenants as the client's slots free up: not a task per tenant (with the request it
    shares) waiting for one of them, which a server of a hundred thousand tenants made gigabytes."""
    vbo = make_client(max_concurrency=2)
    tenants.hold(*tenants.ids)
    targets = [
        PollTarget(client=vbo, organization_id=org, organization=Organization(id=org, name=org))
        for org in tenants.ids
    ]
    baseline = asyncio.all_tasks()
    async with poll_jobs(targets, concurrency=1, organization_counts={vbo: 1000}) as sweeping:
        first = asyncio.ensure_future(anext(sweeping))
        await tenants.until_in_flight(2)
        alive = len(asyncio.all_tasks() - baseline)
        for gate in tenants.gates.values():
            gate.set()
        results = [await first, *[result async for result in sweeping]]
    assert alive < len(targets)
    assert sorted(r.target.organization_id for r in results) == tenants.ids
    assert all(r.error is None for r in results)


@pytest.mark.parametrize("batch", [False, True])
async def test_the_health_of_many_jobs_is_read_by_a_bounded_number_of_tasks(
    fake: FakeVBO, seed_job: dict[str, Any], make_client: MakeClient, batch: bool
) -> None:
    """A tenant of 30 jobs judged on a client of 2 slots, alone or in a v1 batch (each job's
    sessions read as `job_health` reads them): the jobs are taken as the slots free up, not a
    task per job (with the request it shares) waiting for one, which a tenant listing a million
    jobs made gigabytes of."""
    tenants = Tenants(fake, seed_job, 1, jobs_each=30)
    (org,) = tenants.ids
    fake.route("GET", "/v1/Organizations", [{"id": org, "name": org}])
    fake.route("GET", "/v1/Jobs", tenants.jobs[org])
    gate = Gate()

    async def sessions(request: httpx.Request) -> httpx.Response:
        await gate.hold()
        return json_response(200, [])

    for job in tenants.jobs[org]:
        fake.route("GET", f"/v1/Jobs/{job['id']}/JobSessions", sessions)
    vbo = make_client(max_concurrency=2)
    baseline = asyncio.all_tasks()
    targets = [PollTarget(client=vbo, organization_id=org)]
    async with poll_jobs(targets, batch=batch, health=vbo_async.HealthPolicy()) as sweeping:
        first = asyncio.ensure_future(anext(sweeping))
        async with asyncio.timeout(5):  # a guard against a hang only
            await gate.two.wait()
        alive = len(asyncio.all_tasks() - baseline)
        gate.release.set()
        (result,) = [await first, *[result async for result in sweeping]]
    assert alive < 30
    assert result.error is None
    assert sorted(result.health) == sorted(job["id"] for job in tenants.jobs[org])
    assert gate.count == 30


@pytest.mark.parametrize("batch", [False, True])
async def test_a_job_listed_twice_is_one_job_as_first_listed(
    fake: FakeVBO, seed_job: dict[str, Any], make_client: MakeClient, batch: bool
) -> None:
    """A tenant whose listing repeats a job (pages shifted by offset), the repeat saying
    something else (disabled meanwhile) and spelling the id in capitals: the job is listed and
    judged once, as first listed (the repeat's verdict replaced the first's in ``health``, keyed
    by id, while the CLI's row and the exporter's series showed the first listing)."""
    tenants = Tenants(fake, seed_job, 1, jobs_each=2)
    (org,) = tenants.ids
    first, other = tenants.jobs[org]
    repeat = {**copy.deepcopy(first), "id": first["id"].upper(), "isEnabled": False, "name": "again"}
    tenants.jobs[org].append(repeat)
    fake.route("GET", "/v1/Organizations", [{"id": org, "name": org}])
    fake.route("GET", "/v1/Jobs", tenants.jobs[org])
    for job in (first, other):
        fake.route("GET", f"/v1/Jobs/{job['id']}/JobSessions", [])
    vbo = make_client()
    assert [job.id for job in await vbo.organization_jobs(org)] == [first["id"], other["id"]]
    policy = vbo_async.HealthPolicy(never_run=vbo_async.HealthState.CRITICAL)
    targets = [PollTarget(client=vbo, organization_id=org)]
    (result,) = await collect(poll_jobs(targets, batch=batch, health=policy))
    assert result.error is None
    listed = [(job.id, job.name) for job in result.jobs]
    assert listed == [(first["id"], first["name"]), (other["id"], other["name"])]
    assert sorted(result.health) == sorted([first["id"], other["id"]])
    assert result.health[first["id"]].job is result.jobs[0]
    assert result.health[first["id"]].reason != "disabled"


async def test_an_organization_listed_twice_is_named_as_first_listed(
    fake: FakeVBO, seed_job: dict[str, Any], make_client: MakeClient
) -> None:
    """A batched sweep's organizations listing repeats a tenant (the repeat renamed and its id
    in capitals): the tenant's result carries the first listing, as its jobs do."""
    tenants = Tenants(fake, seed_job, 1, jobs_each=1)
    (org,) = tenants.ids
    fake.route(
        "GET", "/v1/Organizations", [{"id": org, "name": "first"}, {"id": org.upper(), "name": "again"}]
    )
    fake.route("GET", "/v1/Jobs", tenants.jobs[org])
    targets = [PollTarget(client=make_client(), organization_id=org)]
    (result,) = await collect(poll_jobs(targets, batch=True))
    assert result.error is None
    assert result.organization is not None
    assert result.organization.name == "first"
    assert [job.id for job in result.jobs] == [tenants.jobs[org][0]["id"]]


async def test_concurrency_bounds_the_targets_in_flight(tenants: Tenants, make_client: MakeClient) -> None:
    tenants.delay = 0.01
    vbo = make_client(max_concurrency=10)

    results = await collect(poll_jobs(targets_for(tenants, vbo), concurrency=3, batch=False))

    assert len(results) == 12
    assert tenants.peak == 3  # reached, never exceeded


async def test_the_client_bound_still_applies(tenants: Tenants, make_client: MakeClient) -> None:
    tenants.delay = 0.01
    vbo = make_client(max_concurrency=2)

    await collect(poll_jobs(targets_for(tenants, vbo), concurrency=8, batch=False))

    assert tenants.peak == 2


# --- link prefetch ----------------------------------------------------------------------------------


@pytest.mark.parametrize("concurrency", [1, 8])
async def test_prefetch_gets_each_shared_link_once(
    fake: FakeVBO, seed_job: dict[str, Any], make_client: MakeClient, concurrency: int
) -> None:
    tenants = Tenants(fake, seed_job, 3, jobs_each=10)  # 30 jobs, one repository, one proxy
    vbo = make_client()

    results = await collect(
        poll_jobs(
            targets_for(tenants, vbo),
            concurrency=concurrency,
            follow=("repository", "proxy", "organization"),
            batch=False,
        )
    )

    assert tenants.gets("/v1/BackupRepositories/repo-1") == 1
    assert tenants.gets("/v1/Proxies/proxy-1") == 1
    assert all(tenants.gets(f"/v1/Organizations/{org}") == 1 for org in tenants.ids)
    assert len(fake.api_requests) == 3 + 1 + 1 + 3  # job lists, repository, proxy, organizations
    repositories = set()
    for result in results:
        assert result.error is None
        assert result.link_errors == {}
        assert len(result.jobs) == 10
        for job in result.jobs:
            repository = result.resolved(job, "repository")
            assert isinstance(repository, BackupRepository)
            assert repository.id == "repo-1"
            assert repository.free_space == 4 * 10**11
            repositories.add(id(repository))
            assert result.prefetched[(job.id, "repository")] is repository
            proxy = result.resolved(job.id, "proxy")  # a job id works too
            assert isinstance(proxy, Proxy)
            assert proxy.host_name == "proxy01.east.local"
            organization = result.resolved(job, "organization")
            assert isinstance(organization, Organization)
            assert organization.id == result.target.organization_id
    assert len(repositories) == 1  # one object, shared by all 30 jobs
    assert len(fake.api_requests) == 8  # reading the resolved objects made no request


@pytest.mark.parametrize("relation", ["repository", "proxy"])
async def test_distinct_links_are_prefetched_by_a_bounded_number_of_tasks(
    fake: FakeVBO, seed_job: dict[str, Any], make_client: MakeClient, relation: str
) -> None:
    """A tenant of 40 jobs, each naming a repository (and proxy) of its own, prefetched on a
    client of 2 slots: the links are taken as the slots free up, not a task per link (with the
    request it shares) waiting for one, which a server naming a new repository in each of a
    hundred thousand jobs made hundreds of megabytes of (3.5 KB a link, measured with tracemalloc)."""
    tenants = Tenants(fake, seed_job, 1, jobs_each=40)
    (org,) = tenants.ids
    gate = Gate()

    async def resource(request: httpx.Request) -> httpx.Response:
        await gate.hold()
        number = request.url.path.rsplit("-", 1)[1]
        if "/Proxies/" in request.url.path:
            return json_response(200, {**PROXY, "id": f"proxy-{number}"})
        links = {"proxy": {"href": f"{FOREIGN}/v1/Proxies/proxy-{number}"}}
        return json_response(200, {**REPOSITORY, "id": f"repo-{number}", "_links": links})

    for n, job in enumerate(tenants.jobs[org]):
        job["_links"]["repository"]["href"] = f"{FOREIGN}/v1/BackupRepositories/repo-{n}"
        job["_links"]["proxy"]["href"] = f"{FOREIGN}/v1/Proxies/proxy-{n}"
        fake.route("GET", f"/v1/BackupRepositories/repo-{n}", resource)
        fake.route("GET", f"/v1/Proxies/proxy-{n}", resource)
    vbo = make_client(max_concurrency=2)
    baseline = asyncio.all_tasks()
    targets = [PollTarget(client=vbo, organization_id=org)]
    async with poll_jobs(targets, follow=(relation,), batch=False) as sweeping:
        first = asyncio.ensure_future(anext(sweeping))
        async with asyncio.timeout(5):  # a guard against a hang only
            await gate.two.wait()
        alive = len(asyncio.all_tasks() - baseline)
        gate.release.set()
        (result,) = [await first, *[result async for result in sweeping]]
    assert alive < 40
    assert result.error is None
    assert result.link_errors == {}
    for n, job in enumerate(result.jobs):
        found = result.resolved(job, relation)
        assert found is not None
        assert found.id == f"{relation.replace('sitory', '')}-{n}"
    assert gate.count == 40


async def test_prefetch_is_keyed_per_client(tenants: Tenants, make_client: MakeClient) -> None:
    a, b = make_client(), make_client(base_url="https://vbo02.test:4443")

    await collect(poll_jobs(targets_for(tenants, a, b), follow=("repository",), batch=False))

    hosts = [r.url.host for r in tenants.fake.api_requests if r.url.path == "/v1/BackupRepositories/repo-1"]
    assert sorted(hosts) == ["vbo.test", "vbo02.test"]


async def test_a_failed_link_does_not_fail_the_tenant(
    tenants: Tenants, make_client: MakeClient, seed_job: dict[str, Any]
) -> None:
    tenants.jobs["org-01"] = job_list(seed_job, "org-01", 2, repository="gone")  # answered 404
    tenants.jobs["org-02"] = job_list(seed_job, "org-02", 2, repository=None)  # no repository link
    tenants.jobs["org-03"][0]["_links"]["repository"]["href"] = "https://evil.example/steal"
    vbo = make_client()

    results = {
        r.target.organization_id: r
        for r in await collect(
            poll_jobs(targets_for(tenants, vbo), follow=("repository", "proxy"), batch=False)
        )
    }

    broken = results["org-01"]
    assert broken.error is None
    assert [job.id for job in broken.jobs] == ["org-01-job-0", "org-01-job-1"]
    for job in broken.jobs:
        assert isinstance(broken.link_errors[(job.id, "repository")], NotFoundError)
        assert broken.resolved(job, "repository") is None
        assert isinstance(broken.resolved(job, "proxy"), Proxy)  # the other relation is unaffected
    assert tenants.gets("/v1/BackupRepositories/gone") == 1  # one GET for both jobs

    absent = results["org-02"]
    assert absent.error is None
    assert absent.link_errors == {}
    assert all(absent.resolved(job, "repository") is None for job in absent.jobs)
    assert all((job.id, "repository") not in absent.prefetched for job in absent.jobs)

    unsafe = results["org-03"]
    assert unsafe.error is None
    assert isinstance(unsafe.link_errors[("org-03-job-0", "repository")], LinkError)
    assert isinstance(unsafe.resolved("org-03-job-1", "repository"), BackupRepository)
    assert not any(r.url.host == "evil.example" for r in tenants.fake.requests)


def frames_kept(error: BaseException) -> list[str]:
    """The functions whose frames ``error`` (or an error chained to it) keeps alive through its
    traceback, with the names of their locals holding a body of 1 MB or more."""
    kept: list[str] = []
    chained: BaseException | None = error
    while chained is not None:
        tb = chained.__traceback__
        while tb is not None:
            frame = tb.tb_frame
            big = [name for name, value in frame.f_locals.items() if len(getattr(value, "body", "")) >= 10**6]
            kept.append(f"{frame.f_code.co_name}{big or ''}")
            tb = tb.tb_next
        chained = chained.__cause__ or chained.__context__
    return kept


async def test_a_link_error_keeps_no_frame_alive(
    tenants: Tenants, make_client: MakeClient, seed_job: dict[str, Any]
) -> None:
    """A result keeps its link errors for as long as the caller keeps the result (a poller keeps
    each tenant's last one): as a tenant's error, they keep no frame alive, which held the error
    answer's body (up to max_response_bytes for each link) or, for an href that cannot be
    followed, the sweep's every prefetched resource."""
    tenants.jobs["org-01"] = job_list(seed_job, "org-01", 2, repository="gone")
    tenants.fake.route(
        "GET", "/v1/BackupRepositories/gone", httpx.Response(404, text="<html>" + "x" * 2 * 10**6 + "</html>")
    )
    tenants.jobs["org-03"][0]["_links"]["repository"]["href"] = "https://evil.example/steal"
    vbo = make_client()

    results = await collect(poll_jobs(targets_for(tenants, vbo), follow=("repository",), batch=False))

    errors = {key: error for result in results for key, error in result.link_errors.items()}
    assert set(errors) == {
        ("org-01-job-0", "repository"),
        ("org-01-job-1", "repository"),
        ("org-03-job-0", "repository"),
    }
    assert isinstance(errors[("org-01-job-0", "repository")], NotFoundError)
    assert isinstance(errors[("org-03-job-0", "repository")], LinkError)
    assert {key: frames_kept(error) for key, error in errors.items()} == {key: [] for key in errors}


async def test_resolved_refuses_a_relation_that_was_not_followed(
    tenants: Tenants, make_client: MakeClient
) -> None:
    vbo = make_client()
    result = await anext(poll_jobs(targets_for(tenants, vbo)[:1], follow=("proxy",), batch=False))
    with pytest.raises(ConfigError, match="'repository' was not prefetched"):
        result.resolved(result.jobs[0], "repository")


# --- arguments --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"follow": ("repository", "repo")}, "unknown relation 'repo'"),
        ({"follow": ("selectedMailboxes",)}, "unknown relation"),  # attribute names, not wire names
        ({"follow": "repository"}, "relation names"),
        ({"concurrency": 0}, "concurrency"),
        ({"concurrency": -1}, "concurrency"),
        ({"concurrency": 1.5}, "concurrency"),
        ({"concurrency": True}, "concurrency"),
        ({"concurrency": "3"}, "concurrency"),
        ({"on_progress": 42}, "on_progress"),
    ],
)
async def test_bad_options_raise_before_any_request(
    tenants: Tenants, make_client: MakeClient, options: dict[str, Any], message: str
) -> None:
    targets = targets_for(tenants, make_client())
    with pytest.raises(ConfigError, match=message):
        poll_jobs(targets, **options, batch=False)
    assert tenants.fake.requests == []


async def test_targets_must_be_poll_targets(tenants: Tenants, make_client: MakeClient) -> None:
    vbo = make_client()
    with pytest.raises(ConfigError, match=r"targets\[1\] is a tuple"):
        poll_jobs([PollTarget(client=vbo, organization_id="org-00"), (vbo, "org-01")], batch=False)  # type: ignore[list-item]
    with pytest.raises(ConfigError, match="iterable of PollTarget"):
        poll_jobs("org-00", batch=False)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="VBOClient"):
        PollTarget(client="https://vbo.test:4443", organization_id="org-00")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="organization_id"):
        PollTarget(client=vbo, organization_id=" ")
    with pytest.raises(ValueError, match="organization_id"):  # ConfigError is a ValueError too
        PollTarget(client=vbo, organization_id=None)  # type: ignore[arg-type]
    assert tenants.fake.requests == []


@pytest.mark.parametrize("organization_id", [None, 5, ["org-00"]])
def test_a_target_s_organization_without_a_string_id_is_a_config_error(organization_id: Any) -> None:
    """A hand-built `Organization` may hold any id (models validate nothing): the target says its
    organization is not the one named, as for another id, not a bare AttributeError ('lower')."""
    vbo = VBOClient("https://vbo.test:4443", username="u", password="p", api_version="v1")
    with pytest.raises(ConfigError, match=r"PollTarget\.organization must be the organization named"):
        PollTarget(client=vbo, organization_id="org-00", organization=Organization(id=organization_id))
    carried = Organization(id="ORG-00")  # the same tenant, its id in another case
    assert PollTarget(client=vbo, organization_id="org-00", organization=carried).organization is carried


def test_targets_are_frozen_and_labelled() -> None:
    vbo = VBOClient("https://vbo.test:4443", username="u", password="p", api_version="v1")
    target = PollTarget(client=vbo, organization_id="org-00")
    assert target.label == "org-00"
    assert PollTarget(client=vbo, organization_id="org-00", name="Contoso").label == "Contoso"
    with pytest.raises(AttributeError):
        target.organization_id = "org-01"  # type: ignore[misc]


# --- progress ---------------------------------------------------------------------------------------


async def test_progress_once_per_target(tenants: Tenants, make_client: MakeClient) -> None:
    tenants.failing.add("org-03")
    seen: list[PollProgress] = []
    vbo = make_client()

    sweep = poll_jobs(targets_for(tenants, vbo), concurrency=5, on_progress=seen.append, batch=False)
    assert sweep.total == 12
    results = await collect(sweep)

    assert [p.done for p in seen] == list(range(1, 13))
    assert {p.total for p in seen} == {12}
    assert [p.result for p in seen] == results  # announced just before each is delivered
    assert seen[-1].failed == 1
    assert [p.failed for p in seen] == sorted(p.failed for p in seen)


async def test_an_error_in_on_progress_propagates(tenants: Tenants, make_client: MakeClient) -> None:
    tenants.hold(*tenants.ids[4:])
    vbo = make_client()
    baseline = asyncio.all_tasks()

    def broken_bar(progress: PollProgress) -> None:
        raise RuntimeError("the progress bar broke")

    with pytest.raises(RuntimeError, match="progress bar broke"):
        async with asyncio.timeout(5):
            await collect(
                poll_jobs(targets_for(tenants, vbo), concurrency=6, on_progress=broken_bar, batch=False)
            )

    assert sweep_tasks() == []
    assert await strays(baseline) == set()


async def test_an_async_on_progress_is_a_config_error_before_any_request(
    tenants: Tenants, make_client: MakeClient
) -> None:
    """on_progress is called, never awaited: an async one would never run (its coroutine dropped,
    a RuntimeWarning at best). Its return value is otherwise ignored (``bar.update`` may return one)."""

    async def async_bar(progress: PollProgress) -> None:
        raise AssertionError("never runs")

    class AsyncBar:
        async def __call__(self, progress: PollProgress) -> None:
            raise AssertionError("never runs")

    targets = targets_for(tenants, make_client())
    for callback in (async_bar, AsyncBar()):
        with pytest.raises(ConfigError, match="on_progress is called, not awaited"):
            poll_jobs(targets, on_progress=callback, batch=False)
    assert tenants.fake.requests == []


async def test_an_on_progress_that_returns_an_awaitable_stops_the_sweep(
    tenants: Tenants, make_client: MakeClient
) -> None:
    tenants.hold(*tenants.ids[4:])
    vbo = make_client()
    baseline = asyncio.all_tasks()
    made: list[Coroutine[Any, Any, None]] = []

    async def later(progress: PollProgress) -> None:
        raise AssertionError("never runs")

    def scheduling_bar(progress: PollProgress) -> Coroutine[Any, Any, None]:
        made.append(later(progress))  # a plain function that returns a coroutine: seen only when called
        return made[-1]

    with pytest.raises(ConfigError, match="on_progress is called, not awaited"):
        async with asyncio.timeout(5):
            await collect(
                poll_jobs(targets_for(tenants, vbo), concurrency=6, on_progress=scheduling_bar, batch=False)
            )
    assert len(made) == 1
    assert made[0].cr_frame is None  # closed: no "never awaited" warning
    assert sweep_tasks() == []
    assert await strays(baseline) == set()


async def test_on_progress_may_return_a_value(tenants: Tenants, make_client: MakeClient) -> None:
    counted: list[int] = []

    def bar_update(progress: PollProgress) -> bool:  # as tqdm's update() returns
        counted.append(progress.done)
        return True

    results = await collect(
        poll_jobs(targets_for(tenants, make_client()), on_progress=bar_update, batch=False)
    )
    assert counted == list(range(1, len(results) + 1))


# --- bugs, cancellation and closing ------------------------------------------------------------------


async def test_a_bug_propagates_and_stops_the_sweep(tenants: Tenants, make_client: MakeClient) -> None:
    tenants.broken.add("org-05")
    tenants.hold(*tenants.ids[6:])  # still in flight when the bug strikes
    # The bug waits for them: a worker of an eager loop (3.12's eager_task_factory) runs at once
    # inside create_task, and struck before the later workers had started.
    tenants.bug_after_held = 6
    vbo = make_client()
    baseline = asyncio.all_tasks()

    with pytest.raises(ZeroDivisionError, match="a bug"):
        async with asyncio.timeout(5):
            await collect(poll_jobs(targets_for(tenants, vbo), concurrency=12, batch=False))

    assert sweep_tasks() == []
    assert await strays(baseline) == set()
    assert tenants.cancelled == 6


async def test_a_bug_propagates_alone_on_an_eager_loop(tenants: Tenants, make_client: MakeClient) -> None:
    """On an eager loop (Python 3.12's ``asyncio.eager_task_factory``) a worker runs inside
    ``create_task``: one that struck a bug before its first suspension had the task group
    shutting down while the sweep still started workers, and the sweep raised an ExceptionGroup
    of the bug and ``RuntimeError: TaskGroup ... is shutting down`` (3.12 also warned of a worker
    coroutine never awaited) instead of the bug."""
    factory = getattr(asyncio, "eager_task_factory", None)
    if factory is None:
        pytest.skip("asyncio.eager_task_factory is new in Python 3.12")
    asyncio.get_running_loop().set_task_factory(factory)
    tenants.broken.add(tenants.ids[0])  # the first worker's first unit
    vbo = make_client()
    baseline = asyncio.all_tasks()

    with pytest.raises(ZeroDivisionError, match="a bug"):
        async with asyncio.timeout(5):
            await collect(poll_jobs(targets_for(tenants, vbo), concurrency=12, batch=False))

    assert sweep_tasks() == []
    assert await strays(baseline) == set()


async def test_cancelling_the_consumer_stops_every_task(tenants: Tenants, make_client: MakeClient) -> None:
    tenants.hold(*tenants.ids[3:])
    vbo = make_client()
    received: list[PollResult] = []
    three = asyncio.Event()
    baseline = asyncio.all_tasks()

    async def consume() -> None:
        async for result in poll_jobs(
            targets_for(tenants, vbo), concurrency=4, follow=("repository",), batch=False
        ):
            received.append(result)
            if len(received) == 3:
                three.set()

    consumer = asyncio.create_task(consume())
    async with asyncio.timeout(5):
        await three.wait()
    await tenants.until_in_flight(4)  # four held targets in work, as many as the bound allows
    consumer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await consumer

    assert sweep_tasks() == []  # joined before the cancellation went on
    assert await strays(baseline) == set()
    assert tenants.cancelled == 4
    assert tenants.in_flight == 0


async def test_break_cleans_up_promptly(tenants: Tenants, make_client: MakeClient) -> None:
    tenants.hold(*tenants.ids[1:])
    vbo = make_client()
    baseline = asyncio.all_tasks()

    async for result in poll_jobs(targets_for(tenants, vbo), concurrency=4, batch=False):
        assert result.target.organization_id == "org-00"
        break

    # Closed by the loop's async generator finaliser: no `aclose()` needed, and no garbage collection.
    assert await strays(baseline) == set()
    assert_held_requests_cancelled(tenants)


@pytest.mark.parametrize("closing", ["async with", "aclosing", "aclose"])
async def test_closing_stops_every_task_at_once(
    tenants: Tenants, make_client: MakeClient, closing: str
) -> None:
    tenants.hold(*tenants.ids[1:])
    vbo = make_client()
    baseline = asyncio.all_tasks()

    if closing == "async with":
        async with poll_jobs(targets_for(tenants, vbo), concurrency=4, batch=False) as results:
            async for _ in results:
                break
    elif closing == "aclosing":
        async with contextlib.aclosing(
            poll_jobs(targets_for(tenants, vbo), concurrency=4, batch=False)
        ) as results:
            async for _ in results:
                break
    else:
        results = poll_jobs(targets_for(tenants, vbo), concurrency=4, batch=False)
        await anext(results)
        await results.aclose()
        await results.aclose()  # idempotent
        assert await collect(results) == []  # a closed sweep yields nothing more

    assert sweep_tasks() == []  # joined by the close itself
    assert await strays(baseline) == set()
    assert_held_requests_cancelled(tenants)


async def test_a_sweep_never_iterated_starts_nothing(tenants: Tenants, make_client: MakeClient) -> None:
    vbo = make_client()
    async with poll_jobs(targets_for(tenants, vbo), batch=False):
        assert sweep_tasks() == []
    assert tenants.fake.requests == []


# --- against the simulator --------------------------------------------------------------------------


async def test_200_tenants_against_the_simulator_with_faults() -> None:
    simulator_module = pytest.importorskip("vbo_async.simulator")
    faults = simulator_module.Faults(error_rate=0.08, rate_limit_rate=0.08, retry_after=0, fault_seed=3)
    config = simulator_module.SimulatorConfig(seed=5, organizations=200, faults=faults)
    app = simulator_module.create_app(config)
    simulator = app.state.simulator
    # Retry-After: 0 and no backoff: the 429s are retried at once, nothing waits.
    retry = RetryPolicy(attempts=10, wait_initial=0, wait_max=0, wait_jitter=0, max_retry_after=0)
    clients = [
        VBOClient(
            "https://vbo.test:4443",
            username="admin",
            password="admin",
            transport=httpx.ASGITransport(app=app),
            retry=retry,
            max_concurrency=max_concurrency,
            api_version="v1",
        )
        for max_concurrency in (4, 8)
    ]
    org_ids = [org["id"] for org in simulator.organizations_wire()]
    assert len(org_ids) == 200
    targets = [
        PollTarget(client=clients[n % 2], organization_id=org, name=f"tenant {n}")
        for n, org in enumerate(org_ids)
    ]

    try:
        results = await collect(
            poll_jobs(targets, concurrency=16, follow=("repository", "proxy"), batch=False)
        )
    finally:
        for client in clients:
            await client.aclose()

    assert simulator.stats.faults["error"] > 0
    assert simulator.stats.faults["rate_limit"] > 0
    assert len(results) == 200
    assert [r.error for r in results if r.error is not None] == []
    polled = {r.target.organization_id: [job.id for job in r.jobs] for r in results}
    assert polled == {org: [job["id"] for job in simulator.jobs_wire(org)] for org in org_ids}
    for result in results:
        assert result.link_errors == {}
        wires = {job["id"]: job for job in simulator.jobs_wire(result.target.organization_id)}
        for job in result.jobs:
            repository = result.resolved(job, "repository")
            assert repository is not None
            assert wires[job.id]["_links"]["repository"]["href"].endswith(f"/{repository.id}")
            assert result.resolved(job, "proxy") is not None


def test_a_result_s_repr_counts_its_link_errors() -> None:
    """A tenant of thousands of jobs whose links fail (a v8 proxy pool's repositories have no
    proxy link) printed every key and error in one log line: 900 KB for 10,000 jobs."""
    errors = {(f"job-{n}", "proxy"): LinkError(f"no proxy link {n}", relation="proxy") for n in range(10_000)}
    target = PollTarget(client=VBOClient(BASE, username="u", password="p"), organization_id="org")
    result = PollResult(target=target, link_errors=errors, follow=("proxy",))
    shown = repr(result)
    assert "link_errors=<10000>" in shown
    assert len(shown) < 1000


def _finished(units: list[Any], workers: int, takes: dict[object, float]) -> dict[int, float]:
    """When each unit (by ``n``) ends, ``workers`` taking them from one `_Pending` on a simulated
    clock, each of a server's units taking ``takes[server]`` seconds."""
    import heapq

    from vbo_async._poll import _Pending

    now = [0.0]
    pending = _Pending(units, clock=lambda: now[0])
    running: list[tuple[float, int, Any]] = []
    ended: dict[int, float] = {}
    for _ in range(workers):
        if (unit := pending.take()) is not None:
            heapq.heappush(running, (takes[unit.client], unit.n, unit))
    while running:
        now[0], _, unit = heapq.heappop(running)
        ended[unit.n] = now[0]
        pending.done(unit)
        if (nxt := pending.take()) is not None:
            heapq.heappush(running, (now[0] + takes[nxt.client], nxt.n, nxt))
    return ended


def test_servers_that_hang_listed_first_hold_no_more_than_their_share_of_the_workers() -> None:
    """Hung servers listed first: each of their units times out and ties at no unit in work with
    servers whose units are quick. The tie went to the server given first, so a hung one took its
    worker back at once, and the healthy servers waited for nearly every hung tenant (4 hung
    servers of 3 tenants, 2 healthy of 20, 4 workers: done after 15 s where they need 5). On a
    tie the server whose units took the least time goes first."""
    from types import SimpleNamespace

    hung = [object() for _ in range(4)]
    healthy = [object(), object()]
    units: list[Any] = [SimpleNamespace(client=c, n=10 * i + k) for i, c in enumerate(hung) for k in range(3)]
    units += [
        SimpleNamespace(client=c, n=100 * (i + 1) + k) for i, c in enumerate(healthy) for k in range(20)
    ]
    takes: dict[object, float] = {**dict.fromkeys(hung, 5.0), **dict.fromkeys(healthy, 0.01)}
    ended = _finished(units, 4, takes)
    last_healthy = max(at for n, at in ended.items() if n >= 100)
    assert last_healthy < 5.5  # within the first hung timeouts, not after 3 rounds of them (15 s)
    assert len(ended) == len(units)
    # One worker: the hung server's first unit, then the quick ones, then the rest of it.
    one = [object(), object(), object()]
    queue: list[Any] = [SimpleNamespace(client=one[0], n=n) for n in range(3)]
    queue += [SimpleNamespace(client=one[1], n=10), SimpleNamespace(client=one[2], n=20)]
    order = sorted(
        _finished(queue, 1, {one[0]: 1.0, one[1]: 0.01, one[2]: 0.01}).items(), key=lambda kv: kv[1]
    )
    assert [n for n, _ in order] == [0, 10, 20, 1, 2]
