"""Batched sweeps: a server listed once for all its tenants, with the per-tenant results unchanged."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import json
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import attrs
import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vbo_async import (
    APIError,
    ConfigError,
    DecodeError,
    HealthPolicy,
    HealthState,
    JobHealth,
    NotFoundError,
    PollResult,
    PollTarget,
    ResponseTooLargeError,
    RetryPolicy,
    ServerError,
    VBOClient,
    poll_jobs,
)
from vbo_async._prefetch import LinkCache
from vbo_async._units import BATCH_MIN_SHARE, BATCH_MIN_TENANTS, Batch, Context, run_unit
from vbo_async.simulator import Simulator, SimulatorConfig, create_app

from .conftest import FakeVBO, Gate, client_for, json_response
from .test_properties import FEW

EPOCH = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
NO_WAIT = RetryPolicy(attempts=2, wait_initial=0, wait_max=0, wait_jitter=0)


def client(app: Any, version: str, **options: Any) -> VBOClient:
    return VBOClient(
        "https://vbo.test:4443",
        username="admin",
        password="admin",
        api_version=version,
        transport=httpx.ASGITransport(app=app),
        retry=NO_WAIT,
        **options,
    )


async def sweep(targets: list[PollTarget], **options: Any) -> dict[str, PollResult]:
    results: dict[str, PollResult] = {}
    async with poll_jobs(targets, **options) as sweeping:
        async for result in sweeping:
            assert result.target.organization_id not in results
            results[result.target.organization_id] = result
    return results


def api_requests(simulator: Simulator) -> dict[str, int]:
    """Requests per (method, path shape) the simulator saw, token and logout left out."""
    kinds: dict[str, int] = {}
    for (method, path), count in simulator.stats.by_endpoint.items():
        if path.endswith(("/token", "/token/logout")):
            continue
        parts = path.split("/")
        shape = "/".join(part if len(part) != 36 else "{id}" for part in parts)
        key = f"{method} {shape}"
        kinds[key] = kinds.get(key, 0) + count
    return kinds


def expected_jobs(simulator: Simulator, org_id: str) -> list[str]:
    return sorted(job["id"] for job in simulator.jobs_wire(org_id))


@pytest.fixture
def big() -> Simulator:
    return Simulator(SimulatorConfig(seed=12, organizations=300, epoch=EPOCH))


@pytest.mark.parametrize("version", ["v1", "v8"])
async def test_a_300_tenant_sweep_costs_a_handful_of_requests(big: Simulator, version: str) -> None:
    app = create_app(simulator=big)
    async with client(app, version) as vbo:
        targets = [PollTarget(client=vbo, organization_id=org) for org in big.organization_ids()]
        results = await sweep(targets)
    kinds = api_requests(big)
    assert sum(kinds.values()) <= 10, kinds
    assert kinds[f"GET /{version}/jobs"] == 1  # 1,055 jobs in one page (v8 asks for 10,000)
    assert kinds[f"GET /{version}/organizations"] == 1
    assert len(results) == 300
    for org_id, result in results.items():
        assert result.error is None
        assert sorted(job.id for job in result.jobs) == expected_jobs(big, org_id)
        assert result.organization is not None
        assert result.organization.id == org_id


@pytest.mark.parametrize("version", ["v1", "v6", "v7", "v8"])
async def test_batched_and_per_tenant_sweeps_give_the_same_jobs_and_health(version: str) -> None:
    simulator = Simulator(SimulatorConfig(seed=3, organizations=12, epoch=EPOCH))
    app = create_app(simulator=simulator)
    policy = HealthPolicy()
    async with client(app, version) as vbo:
        targets = [PollTarget(client=vbo, organization_id=org) for org in simulator.organization_ids()]
        batched = await sweep(targets, batch=True, health=policy, follow=("repository",))
        alone = await sweep(targets, batch=False, health=policy, follow=("repository",))
    assert batched.keys() == alone.keys()
    for org_id, result in batched.items():
        other = alone[org_id]
        assert result.error is None
        assert other.error is None
        assert result.jobs == sorted(other.jobs, key=lambda job: [j.id for j in result.jobs].index(job.id))
        assert dict(result.prefetched) == dict(other.prefetched)
        assert {job_id: h.state for job_id, h in result.health.items()} == {
            job_id: h.state for job_id, h in other.health.items()
        }, org_id
        assert set(result.health) == {job.id for job in result.jobs}


async def test_health_for_300_tenants_on_v8_costs_at_most_20_requests(big: Simulator) -> None:
    app = create_app(simulator=big)
    async with client(app, "v8") as vbo:
        targets = [PollTarget(client=vbo, organization_id=org) for org in big.organization_ids()]
        results = await sweep(targets, health=HealthPolicy())
    kinds = api_requests(big)
    assert sum(kinds.values()) <= 20, kinds
    assert kinds["GET /v8/jobsessions"] >= 1
    states = [health.state for result in results.values() for health in result.health.values()]
    assert len(states) == sum(len(result.jobs) for result in results.values()) == len(big.job_ids())
    assert {HealthState.OK, HealthState.CRITICAL} <= set(states)


async def test_health_on_v1_costs_one_request_per_job() -> None:
    simulator = Simulator(SimulatorConfig(seed=4, organizations=10, epoch=EPOCH))
    app = create_app(simulator=simulator)
    async with client(app, "v1") as vbo:
        targets = [PollTarget(client=vbo, organization_id=org) for org in simulator.organization_ids()]
        results = await sweep(targets, health=HealthPolicy())
    kinds = api_requests(simulator)
    jobs = len(simulator.job_ids())
    # v1 pages a job's sessions by 30: like job_health, a batch reads the first page only
    assert kinds["GET /v1/jobs/{id}/jobsessions"] == jobs
    assert kinds["GET /v1/jobs"] == 1
    assert all(len(result.health) == len(result.jobs) for result in results.values())


async def test_the_default_batches_a_server_only_with_enough_tenants() -> None:
    simulator = Simulator(SimulatorConfig(seed=5, organizations=BATCH_MIN_TENANTS + 4, epoch=EPOCH))
    app = create_app(simulator=simulator)
    org_ids = simulator.organization_ids()
    async with client(app, "v8") as vbo:
        few = [PollTarget(client=vbo, organization_id=org) for org in org_ids[: BATCH_MIN_TENANTS - 1]]
        await sweep(few)
        assert api_requests(simulator) == {"GET /v8/jobs": BATCH_MIN_TENANTS - 1}  # ?organizationId=
        simulator.reset_stats()
        many = [PollTarget(client=vbo, organization_id=org) for org in org_ids[:BATCH_MIN_TENANTS]]
        await sweep(many)
        assert api_requests(simulator) == {"GET /v8/jobs": 1, "GET /v8/organizations": 1}


async def test_a_few_tenants_of_a_large_server_are_swept_one_by_one(big: Simulator) -> None:
    # 300 organizations: fewer than 5% of them (15) are cheaper polled alone than by listing
    # every job of the server; the organizations listed still catch an unknown id.
    app = create_app(simulator=big)
    org_ids = big.organization_ids()
    few = int(BATCH_MIN_SHARE * len(org_ids)) - 2  # with the unknown id: one short of the share
    assert few >= BATCH_MIN_TENANTS
    unknown = "00000000-0000-0000-0000-00000000beef"
    async with client(app, "v8") as vbo:
        targets = [PollTarget(client=vbo, organization_id=org) for org in [*org_ids[:few], unknown]]
        results = await sweep(targets, health=HealthPolicy())
        assert api_requests(big) == {
            "GET /v8/organizations": 1,
            "GET /v8/jobs": few,  # ?organizationId=, one per tenant
            "GET /v8/jobsessions": sum(len(r.jobs) for r in results.values()),  # ?jobId=&limit=
        }
        assert isinstance(results[unknown].error, NotFoundError)
        for org in org_ids[:few]:
            result = results[org]
            assert result.error is None
            assert result.organization is not None
            assert result.organization.id == org
            assert sorted(job.id for job in result.jobs) == expected_jobs(big, org)
            assert set(result.health) == {job.id for job in result.jobs}
        big.reset_stats()
        enough = [PollTarget(client=vbo, organization_id=org) for org in org_ids[: few + 2]]  # 5%
        await sweep(enough)
        assert api_requests(big) == {"GET /v8/organizations": 1, "GET /v8/jobs": 1}
        big.reset_stats()
        await sweep(targets[:few], batch=True)  # asked for: batched whatever the share
        assert api_requests(big) == {"GET /v8/organizations": 1, "GET /v8/jobs": 1}


async def test_targets_carrying_their_organization_spare_the_listing() -> None:
    simulator = Simulator(SimulatorConfig(seed=6, organizations=9, epoch=EPOCH))
    app = create_app(simulator=simulator)
    async with client(app, "v8") as vbo:
        organizations = await vbo.organizations()
        simulator.reset_stats()
        targets = [PollTarget(client=vbo, organization_id=o.id, organization=o) for o in organizations]
        results = await sweep(targets)
    assert api_requests(simulator) == {"GET /v8/jobs": 1}
    assert all(
        result.target.label == result.organization.name for result in results.values() if result.organization
    )


async def test_a_known_organization_count_keeps_the_share_rule_without_a_listing(big: Simulator) -> None:
    # The caller listed the server's 300 organizations to find its tenants: 10 of them (3%) are
    # polled one by one, 15 (5%) in one batch, and neither sweep lists the organizations again.
    app = create_app(simulator=big)
    async with client(app, "v8") as vbo:
        organizations = await vbo.organizations()
        counts = {vbo: len(organizations)}
        carried = [PollTarget(client=vbo, organization_id=o.id, organization=o) for o in organizations]
        few = int(BATCH_MIN_SHARE * len(organizations)) - 5
        assert few >= BATCH_MIN_TENANTS
        big.reset_stats()
        results = await sweep(carried[:few], organization_counts=counts, health=HealthPolicy())
        assert api_requests(big) == {
            "GET /v8/jobs": few,  # ?organizationId=, one per tenant
            "GET /v8/jobsessions": sum(len(r.jobs) for r in results.values()),  # ?jobId=&limit=
        }
        for target in carried[:few]:
            result = results[target.organization_id]
            assert result.error is None
            assert result.organization == target.organization
            assert sorted(job.id for job in result.jobs) == expected_jobs(big, target.organization_id)
            assert set(result.health) == {job.id for job in result.jobs}
        big.reset_stats()
        enough = int(BATCH_MIN_SHARE * len(organizations))
        results = await sweep(carried[:enough], organization_counts=counts)
        assert api_requests(big) == {"GET /v8/jobs": 1}
        assert all(sorted(j.id for j in r.jobs) == expected_jobs(big, o) for o, r in results.items())
        big.reset_stats()
        await sweep(carried[:few])  # no count: batched (the share is not known without a request)
        assert api_requests(big) == {"GET /v8/jobs": 1}


@pytest.mark.parametrize("kind", ["list", "str-key", "str", "str-value", "negative", "bool"])
async def test_organization_counts_must_map_clients_to_counts(big: Simulator, kind: str) -> None:
    async with client(create_app(simulator=big), "v8") as vbo:
        counts = {
            "list": [1, 2],
            "str-key": {"vbo": 3},
            "str": "counts",
            "str-value": {vbo: "300"},
            "negative": {vbo: -1},
            "bool": {vbo: True},
        }[kind]
        with pytest.raises(ConfigError, match="organization_counts"):
            poll_jobs([PollTarget(client=vbo, organization_id=ORGS[0])], organization_counts=counts)
    assert big.stats.requests == 0


# --- isolation, with a server whose answers are scripted -------------------------------------------------

ORGS = ["0a000000-0000-4000-8000-000000000001", "0b000000-0000-4000-8000-000000000002"]
ORGS += ["0c000000-0000-4000-8000-000000000003"]
UNKNOWN = "0d000000-0000-4000-8000-00000000000d"


def _job(number: int, org: str, **extra: Any) -> dict[str, Any]:
    job_id = f"1{number:07d}-0000-4000-8000-000000000000"
    return {
        "id": job_id,
        "name": f"job {number}",
        "organizationId": org,
        "lastStatus": "Success",
        "_links": {
            "self": {"href": f"/v8/Jobs/{job_id}"},
            "organization": {"href": f"/v8/Organizations/{org}"},
        },
        **extra,
    }


def scripted(
    jobs: list[dict[str, Any]], *, fail: str | None = None
) -> Callable[[httpx.Request], httpx.Response]:
    """A v8 server listing ``ORGS`` (each also by its id) and ``jobs`` (those of one organization
    for ``?organizationId=``); ``fail`` names a path answered 500."""

    def handle(request: httpx.Request) -> httpx.Response:
        path = request.url.path.lower()
        if path == "/v8/token":
            return httpx.Response(
                200, json={"access_token": "tok", "refresh_token": "ref", "expires_in": 3600}
            )
        if not path.startswith("/v8/"):
            return httpx.Response(404, json={"message": "not routed"})
        if fail is not None and path == fail:
            return httpx.Response(500, json={"message": "database busy"})
        if path == "/v8/organizations":
            results = [{"id": org, "name": f"tenant-{org[:2]}"} for org in ORGS]
            return httpx.Response(200, json={"offset": 0, "limit": 10000, "results": results, "_links": {}})
        if path.removeprefix("/v8/organizations/") in ORGS:
            org = path.removeprefix("/v8/organizations/")
            return httpx.Response(200, json={"id": org, "name": f"tenant-{org[:2]}"})
        if path == "/v8/jobs":
            org = request.url.params.get("organizationId")
            listed = [job for job in jobs if org is None or job.get("organizationId") == org]
            return httpx.Response(200, json={"offset": 0, "limit": 10000, "results": listed, "_links": {}})
        return httpx.Response(404, json={"message": "no such path"})

    return handle


@pytest.fixture
async def scripted_client() -> AsyncIterator[Callable[..., VBOClient]]:
    made: list[VBOClient] = []

    def make(handler: Callable[[httpx.Request], Any], **options: Any) -> VBOClient:
        made.append(
            VBOClient(
                "https://vbo.test:4443",
                username="u",
                password="p",
                api_version="v8",
                transport=httpx.MockTransport(handler),
                retry=NO_WAIT,
                **options,
            )
        )
        return made[-1]

    yield make
    for vbo in made:
        await vbo.aclose()


async def test_a_job_that_cannot_be_decoded_fails_only_its_tenant(
    scripted_client: Callable[..., VBOClient],
) -> None:
    jobs = [_job(1, ORGS[0]), _job(2, ORGS[1], lastRun=12), _job(3, ORGS[1]), _job(4, ORGS[2])]
    vbo = scripted_client(scripted(jobs))
    targets = [PollTarget(client=vbo, organization_id=org) for org in [*ORGS, UNKNOWN]]
    results = await sweep(targets, batch=True)
    assert results[ORGS[0]].error is None
    assert [job.name for job in results[ORGS[0]].jobs] == ["job 1"]
    assert isinstance(results[ORGS[1]].error, DecodeError)
    assert "lastRun" in str(results[ORGS[1]].error)
    assert results[ORGS[1]].jobs == []
    assert [job.name for job in results[ORGS[2]].jobs] == ["job 4"]
    unknown = results[UNKNOWN].error
    assert isinstance(unknown, NotFoundError)
    assert UNKNOWN in str(unknown)


async def test_a_tenant_without_jobs_is_not_an_unknown_tenant(
    scripted_client: Callable[..., VBOClient],
) -> None:
    vbo = scripted_client(scripted([_job(1, ORGS[0])]))
    results = await sweep([PollTarget(client=vbo, organization_id=org) for org in ORGS], batch=True)
    assert results[ORGS[2]].error is None
    assert results[ORGS[2]].jobs == []


async def test_a_failing_server_fails_its_tenants_and_no_other(
    scripted_client: Callable[..., VBOClient],
) -> None:
    broken = scripted_client(scripted([_job(1, ORGS[0])], fail="/v8/jobs"))
    healthy = scripted_client(scripted([_job(1, ORGS[0]), _job(2, ORGS[1])]))
    targets = [PollTarget(client=broken, organization_id=org, name=f"b{n}") for n, org in enumerate(ORGS)]
    targets += [PollTarget(client=healthy, organization_id=org, name=f"h{n}") for n, org in enumerate(ORGS)]
    results: list[PollResult] = []
    async with poll_jobs(targets, batch=True) as sweeping:
        async for result in sweeping:
            results.append(result)
    assert len(results) == 6
    for result in results:
        if result.target.client is broken:
            assert isinstance(result.error, ServerError)
            assert "database busy" in str(result.error)
        else:
            assert result.error is None
    assert sum(len(r.jobs) for r in results) == 2


async def test_unreadable_sessions_make_health_unknown_not_the_tenant_failed(
    scripted_client: Callable[..., VBOClient],
) -> None:
    handler = scripted([_job(1, ORGS[0])], fail="/v8/jobsessions")
    vbo = scripted_client(handler)
    results = await sweep(
        [PollTarget(client=vbo, organization_id=ORGS[0])], batch=True, health=HealthPolicy()
    )
    (result,) = results.values()
    assert result.error is None
    (health,) = result.health.values()
    assert health.state is HealthState.UNKNOWN
    assert "database busy" in health.reason


async def test_a_batch_lists_the_recent_sessions_while_it_lists_the_jobs(
    scripted_client: Callable[..., VBOClient],
) -> None:
    """The server-wide sessions a batch judges health from do not depend on its jobs: both
    listings are in flight at once (the job listing here answers only once the session listing
    has been asked for, or after 5 s), so a sweep waits for the slower, not for the two in turn."""
    serve = scripted([_job(1, ORGS[0])])
    asked = asyncio.Event()
    seen_while_listing_jobs: list[bool] = []

    async def handle(request: httpx.Request) -> httpx.Response:
        path = request.url.path.lower()
        if path == "/v8/jobsessions":
            asked.set()
            return httpx.Response(200, json={"offset": 0, "limit": 10000, "results": [], "_links": {}})
        if path == "/v8/jobs":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asked.wait(), 5)
            seen_while_listing_jobs.append(asked.is_set())
        return serve(request)

    vbo = scripted_client(handle)
    targets = [PollTarget(client=vbo, organization_id=org) for org in ORGS]
    results = await sweep(targets, batch=True, health=HealthPolicy())
    assert seen_while_listing_jobs == [True]
    (health,) = results[ORGS[0]].health.values()
    assert health.state is not HealthState.UNKNOWN, health.reason


def _run(number: int, job_id: str, status: str, created: dt.datetime, ended: dt.datetime) -> dict[str, Any]:
    session_id = f"2{number:07d}-0000-4000-8000-000000000000"
    return {
        "id": session_id,
        "jobId": job_id,
        "creationTime": created.isoformat(),
        "endTime": ended.isoformat(),
        "status": status,
        "_links": {"self": {"href": f"/v8/JobSessions/{session_id}"}},
    }


@pytest.mark.parametrize("ahead", [False, True], ids=["", "a run dated ahead"])
@pytest.mark.parametrize(("status", "state"), [("Failed", HealthState.CRITICAL), ("Success", HealthState.OK)])
async def test_a_run_ending_while_the_jobs_are_listed_is_judged_as_the_job_listing_reports_it(
    scripted_client: Callable[..., VBOClient], status: str, state: HealthState, ahead: bool
) -> None:
    """A batch reads the recent sessions while it lists the jobs, so the sessions may be read
    before a run ends that the job listing, answered after, already reports (lastStatus,
    lastRun). The job's verdict is then that run's, as `VBOClient.job_health` gives it, not the
    one of the older run the sessions hold (a job whose last run failed was judged OK); a run
    among them dated decades ahead (a clock once set wrong) does not stand for the one missed."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    job_id = _job(1, ORGS[0])["id"]
    older_status = "Failed" if status == "Success" else "Success"
    older = _run(1, job_id, older_status, now - dt.timedelta(hours=20), now - dt.timedelta(hours=19))
    newer = _run(2, job_id, status, now - dt.timedelta(minutes=30), now - dt.timedelta(minutes=10))
    dated_ahead = dt.datetime(2099, 1, 1, tzinfo=dt.UTC)
    bogus = [_run(3, job_id, older_status, dated_ahead, dated_ahead)] if ahead else []
    last_backup = (now - dt.timedelta(minutes=10 if status == "Success" else 19 * 60)).isoformat()
    job = _job(
        1, ORGS[0], isEnabled=True, lastStatus=status, lastRun=newer["creationTime"], lastBackup=last_backup
    )
    serve = scripted([job])
    ended = [False]  # whether the newer run has ended
    window_read = asyncio.Event()

    async def handle(request: httpx.Request) -> httpx.Response:
        path = request.url.path.lower()
        if path == "/v8/jobsessions":
            runs = [*bogus, newer, older] if ended[0] else [*bogus, older]
            if "endTimeLowerBound" in str(request.url):
                window_read.set()
            return httpx.Response(200, json={"offset": 0, "limit": 10000, "results": runs, "_links": {}})
        if path == "/v8/jobs":
            with contextlib.suppress(TimeoutError):  # a guard: the sessions are read beside the jobs
                await asyncio.wait_for(window_read.wait(), 5)
            ended[0] = True  # the run ends once the sessions were read, before the jobs answer
        return serve(request)

    vbo = scripted_client(handle)
    results = await sweep(
        [PollTarget(client=vbo, organization_id=org) for org in ORGS], batch=True, health=HealthPolicy()
    )
    (health,) = results[ORGS[0]].health.values()
    alone = await vbo.job_health(results[ORGS[0]].jobs[0])
    assert alone.state is state, alone.reason
    assert (health.state, health.last_session and health.last_session.id) == (state, newer["id"]), (
        health.reason
    )


async def test_a_window_naming_a_job_in_another_case_judges_it_as_job_health_does(
    scripted_client: Callable[..., VBOClient],
) -> None:
    """The server-wide sessions may name a job in another case than the job listing (ids are
    compared ignoring case everywhere else): the batch's verdict is still the one `job_health`
    gives from the same runs (a failure that will be retried is a WARNING), not one from the
    job's own fields alone (CRITICAL)."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    job_id = "5f0c8a2e-1b7d-4c3a-9e61-2d4b8f7a9c10"
    failed = _run(1, job_id.upper(), "Failed", now - dt.timedelta(hours=2), now - dt.timedelta(minutes=70))
    failed["jobWillBeRetried"] = True
    job = _job(1, ORGS[0], id=job_id, isEnabled=True, lastStatus="Failed", lastRun=failed["creationTime"],
               lastBackup=(now - dt.timedelta(hours=5)).isoformat())  # fmt: skip
    serve = scripted([job])

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path.lower() == "/v8/jobsessions":
            return httpx.Response(200, json={"offset": 0, "limit": 10000, "results": [failed], "_links": {}})
        return serve(request)

    vbo = scripted_client(handle)
    results = await sweep(
        [PollTarget(client=vbo, organization_id=org) for org in ORGS], batch=True, health=HealthPolicy()
    )
    (health,) = results[ORGS[0]].health.values()
    alone = await vbo.job_health(results[ORGS[0]].jobs[0])
    assert (alone.state, alone.reason) == (HealthState.WARNING, "failed 1 h ago, will be retried")
    assert (health.state, health.reason) == (alone.state, alone.reason)


@pytest.mark.parametrize("failure", ["server error", "too big"])
async def test_a_failing_job_listing_stops_the_session_listing_beside_it(
    scripted_client: Callable[..., VBOClient], failure: str
) -> None:
    """When a batch's job listing fails (for good, or for its size: the tenants are then swept
    one by one), the session listing that ran beside it is cancelled, not left running."""
    serve = scripted([_job(1, ORGS[0])], fail="/v8/jobs" if failure == "server error" else None)
    entered = asyncio.Event()
    cancelled: list[str] = []

    async def handle(request: httpx.Request) -> httpx.Response:
        path = request.url.path.lower()
        if path == "/v8/jobsessions" and "endTimeLowerBound" in str(request.url):
            entered.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cancelled.append(path)
                raise
        if path == "/v8/jobs" and request.url.params.get("organizationId") is None:
            await entered.wait()
            if failure == "too big":
                return httpx.Response(200, content=b"[" + b" " * 70_000 + b"]")
        if path == "/v8/jobsessions":
            return httpx.Response(200, json={"offset": 0, "limit": 5, "results": [], "_links": {}})
        return serve(request)

    vbo = scripted_client(handle, max_response_bytes=65_536)
    targets = tuple(PollTarget(client=vbo, organization_id=org) for org in ORGS)
    results: dict[str, PollResult] = {}
    before = asyncio.all_tasks()
    async with asyncio.TaskGroup() as group:
        context = Context(
            follow=(),
            health=HealthPolicy(),
            now=EPOCH,
            links=LinkCache(group),
            emit=lambda result: results.setdefault(result.target.organization_id, result),
        )
        # chosen: the batch the default plan picks, which falls back to tenant by tenant
        await asyncio.wait_for(run_unit(Batch(vbo, targets, chosen=True), context), 30)
    assert asyncio.all_tasks() == before
    assert cancelled == ["/v8/jobsessions"]
    if failure == "server error":
        assert all(isinstance(result.error, ServerError) for result in results.values())
    else:
        assert all(result.error is None for result in results.values())
        assert [job.id for job in results[ORGS[0]].jobs] == [_job(1, ORGS[0])["id"]]


async def test_on_v1_a_job_whose_sessions_fail_is_the_only_unknown_one() -> None:
    # v1 cannot list recent sessions server-wide: a batch judges each job as job_health does,
    # so one job's unreadable sessions leave its neighbours (and its tenant) judged.
    simulator = Simulator(SimulatorConfig(seed=4, organizations=BATCH_MIN_TENANTS, epoch=EPOCH))
    asgi = httpx.ASGITransport(app=create_app(simulator=simulator))
    broken = simulator.job_ids()[3]

    async def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path.lower() == f"/v1/jobs/{broken}/jobsessions":
            return httpx.Response(500, json={"message": "database busy"})
        return await asgi.handle_async_request(request)

    class Broken(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            return await handle(request)

    org_ids = simulator.organization_ids()
    async with VBOClient(
        "https://vbo.test:4443",
        username="admin",
        password="admin",
        api_version="v1",
        transport=Broken(),
        retry=NO_WAIT,
    ) as vbo:
        targets = [PollTarget(client=vbo, organization_id=org) for org in org_ids]
        batched = await sweep(targets, batch=True, health=HealthPolicy())
        alone = await sweep(targets, batch=False, health=HealthPolicy())
    judged = {job_id: h for r in batched.values() for job_id, h in r.health.items()}
    assert len(judged) == len(simulator.job_ids())
    assert all(result.error is None for result in batched.values())
    assert judged[broken].state is HealthState.UNKNOWN
    assert "database busy" in judged[broken].reason
    assert not any(h.reason.startswith("sessions could not") for j, h in judged.items() if j != broken)

    def seen(health: JobHealth) -> tuple[HealthState, str, str | None]:
        last = health.last_session
        return health.state, health.reason, None if last is None else last.id

    by_tenant = {job_id: seen(h) for r in alone.values() for job_id, h in r.health.items()}
    assert {job_id: seen(h) for job_id, h in judged.items()} == by_tenant


async def test_recent_sessions_file_a_job_named_in_two_cases_under_one_id() -> None:
    """A .NET server may name one job in its sessions in either case (GUIDs are case-insensitive):
    its sessions are filed under one id, the first spelling read, newest first, not split in two."""
    simulator = Simulator(SimulatorConfig(seed=7, organizations=5, epoch=EPOCH))
    app = create_app(simulator=simulator)

    class Recased(httpx.AsyncBaseTransport):
        """Every other session names its job in upper case."""

        def __init__(self) -> None:
            self.inner = httpx.ASGITransport(app=app)

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            answer = await self.inner.handle_async_request(request)
            if request.url.path.lower() != "/v8/jobsessions":
                return answer
            page = json.loads(await answer.aread())
            for index, session in enumerate(page["results"]):
                if index % 2:
                    session["jobId"] = session["jobId"].upper()
            return httpx.Response(200, json=page)

    since = EPOCH - dt.timedelta(days=2)
    async with VBOClient(
        "https://vbo.test:4443", username="admin", password="admin", api_version="v8", transport=Recased()
    ) as vbo:
        recent = await vbo.recent_sessions(since)
        jobs = await vbo.jobs()
        upper = [attrs.evolve(job, id=job.id.upper()) for job in jobs]  # ids as a job listing may spell them
        given = await vbo.recent_sessions(since, jobs=upper)
    assert recent
    assert len({job_id.lower() for job_id in recent}) == len(recent), "a job filed under two ids"
    # Given the jobs, each is filed under the job's own id, whatever the sessions' spelling.
    assert set(given) <= {job.id for job in upper}
    assert {job_id.lower(): sessions for job_id, sessions in given.items()} == {
        job_id.lower(): sessions for job_id, sessions in recent.items()
    }
    everything = simulator.sessions_wire(version="v8", limit=10_000)["results"]
    wanted: dict[str, list[str]] = {}
    for session in everything:
        end = session["endTime"] or session["creationTime"]
        if dt.datetime.fromisoformat(end) >= since:
            wanted.setdefault(session["jobId"].lower(), []).append(session["id"])
    assert {job.lower(): sorted(s.id for s in sessions) for job, sessions in recent.items()} == {
        job: sorted(ids) for job, ids in wanted.items()
    }
    for sessions in recent.values():
        times = [s.creation_time for s in sessions]
        assert times == sorted(times, reverse=True)  # newest first


async def test_recent_sessions_are_one_listing_on_v8_filed_by_job() -> None:
    simulator = Simulator(SimulatorConfig(seed=7, organizations=5, epoch=EPOCH))
    app = create_app(simulator=simulator)
    since = EPOCH - dt.timedelta(days=2)
    async with client(app, "v8") as vbo:
        recent = await vbo.recent_sessions(since)
    assert api_requests(simulator) == {"GET /v8/jobsessions": 1}
    everything = simulator.sessions_wire(version="v8", limit=10_000)["results"]
    wanted: dict[str, list[str]] = {}
    for session in everything:
        end = session["endTime"] or session["creationTime"]
        if dt.datetime.fromisoformat(end) >= since:
            wanted.setdefault(session["jobId"], []).append(session["id"])
    assert {job: [s.id for s in sessions] for job, sessions in recent.items()} == wanted
    for sessions in recent.values():
        times = [s.creation_time for s in sessions]
        assert times == sorted(times, reverse=True)  # newest first


@pytest.mark.parametrize("version", ["v1", "v6", "v7", "v8"])
async def test_recent_sessions_of_some_jobs_answer_for_those_jobs_on_every_version(version: str) -> None:
    """``recent_sessions(since, jobs=[one])`` answered for that job on v1 and for every job of the
    server on v6-v8 (the listing is server-wide): code reading the answer as its jobs' sessions
    judged other tenants' jobs on newer servers."""
    simulator = Simulator(SimulatorConfig(seed=7, organizations=5, epoch=EPOCH, api_versions=(version,)))
    since = EPOCH - dt.timedelta(days=2)
    async with client(create_app(simulator=simulator), version) as vbo:
        everyone = await vbo.recent_sessions(since)
        jobs = [job for job in await vbo.jobs() if job.id in everyone]
        chosen = jobs[:2]
        some = await vbo.recent_sessions(since, jobs=chosen)
    assert len(everyone) > 2
    assert some == {job.id: everyone[job.id] for job in chosen}
    sent = sum(simulator.stats.by_endpoint.values())
    async with client(create_app(simulator=simulator), version) as vbo:
        assert await vbo.recent_sessions(since, jobs=[]) == {}
    # No jobs, no request (v6+ read the server-wide listing to keep nothing of it): the grant only.
    assert sum(simulator.stats.by_endpoint.values()) - sent <= 1


async def test_a_v1_run_whose_end_is_the_net_never_is_still_running() -> None:
    """A .NET server writes a run in progress's ``endTime`` as ``0001-01-01T00:00:00``
    (``DateTime.MinValue``, its "never"): v1's `recent_sessions` took it for a run that ended in
    the year 1 and left it out, where a run without an end is kept; a finished run so written is
    dated by its start."""
    fake = FakeVBO()
    never = "0001-01-01T00:00:00"
    fake.route(
        "GET",
        "/v1/Jobs/j1/JobSessions",
        [
            {"id": "running", "creationTime": "2026-06-01T11:00:00Z", "endTime": never, "status": "Running"},
            {"id": "recent", "creationTime": "2026-06-01T10:00:00Z", "endTime": never, "status": "Failed"},
            {"id": "old", "creationTime": "2026-05-01T10:00:00Z", "endTime": never, "status": "Success"},
        ],
    )
    fake.route("GET", "/v1/Jobs", [{"id": "j1", "name": "a"}])
    async with client_for(fake) as vbo:
        recent = await vbo.recent_sessions(EPOCH - dt.timedelta(days=1))
    assert {job: [s.id for s in sessions] for job, sessions in recent.items()} == {
        "j1": ["running", "recent"]
    }


async def test_a_failing_v1_job_listing_leaves_no_other_listing_running() -> None:
    """v1 reads each job's sessions in a request of its own: when one fails, `recent_sessions`
    raises its error only once the others have stopped (none keeps running after the call)."""
    fake = FakeVBO()
    entered = asyncio.Event()
    cancelled: list[str] = []

    async def held(request: httpx.Request) -> httpx.Response:
        entered.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(request.url.path)
            raise
        return json_response(200, [])  # pragma: no cover - never reached

    async def refused(request: httpx.Request) -> httpx.Response:
        await entered.wait()
        return json_response(404, {"message": "Job was not found."})

    fake.route("GET", "/v1/Jobs/j1/JobSessions", refused)
    fake.route("GET", "/v1/Jobs/j2/JobSessions", held)
    fake.route("GET", "/v1/Jobs", [{"id": "j1", "name": "a"}, {"id": "j2", "name": "b"}])
    async with client_for(fake) as vbo:
        jobs = await vbo.jobs()
        before = asyncio.all_tasks()
        with pytest.raises(NotFoundError):
            await vbo.recent_sessions(EPOCH, jobs=jobs)
        assert asyncio.all_tasks() == before
        assert cancelled == ["/v1/Jobs/j2/JobSessions"]


async def test_v1_recent_sessions_of_many_jobs_are_read_by_a_bounded_number_of_tasks() -> None:
    """v1 reads each job's sessions in a request of its own: 30 jobs on a client of 2 slots are
    taken as the slots free up, not a task per job waiting for one (about 6 KB each, which a
    server of a hundred thousand jobs made hundreds of megabytes of), as a sweep takes them."""
    fake = FakeVBO()
    jobs_wire = [{"id": f"j{number}", "name": f"job {number}"} for number in range(30)]
    gate = Gate()

    async def sessions(request: httpx.Request) -> httpx.Response:
        await gate.hold()
        job = request.url.path.split("/")[3]
        return json_response(
            200, [{"id": f"s-{job}", "status": "Success", "endTime": "2026-06-01T12:00:00Z"}]
        )

    fake.route("GET", "/v1/Jobs", jobs_wire)
    for job in jobs_wire:
        fake.route("GET", f"/v1/Jobs/{job['id']}/JobSessions", sessions)
    async with client_for(fake, max_concurrency=2) as vbo:
        jobs = await vbo.jobs()
        baseline = asyncio.all_tasks()
        reading_all = asyncio.ensure_future(vbo.recent_sessions(EPOCH, jobs=jobs))
        async with asyncio.timeout(5):  # a guard against a hang only
            await gate.two.wait()
        alive = len(asyncio.all_tasks() - baseline)
        gate.release.set()
        recent = await reading_all
    assert alive < 30
    assert gate.count == 30
    assert {job: [s.id for s in found] for job, found in recent.items()} == {
        job["id"]: [f"s-{job['id']}"] for job in jobs_wire
    }


@pytest.mark.parametrize("version", ["v1", "v7", "v8"])
@pytest.mark.parametrize(
    ("too_big", "organizations", "jobs", "limit"),
    [("jobs", 10, (3, 3), 40_000), ("organizations", 40, (1, 1), 10_000)],
)
async def test_a_server_too_big_to_list_whole_is_swept_one_by_one_by_default(
    version: str, too_big: str, organizations: int, jobs: tuple[int, int], limit: int
) -> None:
    """The default batch is only a cheaper way to the same results: when a server-wide listing
    (its jobs, or its organizations) is over ``max_response_bytes`` but each tenant's own listing
    is not, every tenant gets its jobs, as ``batch=False`` gives them (each used to fail with the
    whole listing's error)."""
    config = SimulatorConfig(seed=3, organizations=organizations, jobs_per_organization=jobs, epoch=EPOCH)
    simulator = Simulator(config)
    app = create_app(simulator=simulator)
    async with client(app, version, max_response_bytes=limit) as vbo:
        targets = [PollTarget(client=vbo, organization_id=org) for org in simulator.organization_ids()]
        alone = await sweep(targets, batch=False)
        assert all(result.error is None for result in alone.values())
        results = await sweep(targets)
        with pytest.raises(ResponseTooLargeError):
            await (vbo.jobs() if too_big == "jobs" else vbo.organizations())  # what is too big whole
    assert len(results) == organizations
    for org_id, result in results.items():
        assert result.error is None, result.error
        assert sorted(job.id for job in result.jobs) == expected_jobs(simulator, org_id)
        assert (result.organization is not None) == (too_big == "jobs")


@pytest.mark.parametrize("version", ["v1", "v8"])
async def test_a_server_listing_more_than_max_listing_items_is_swept_one_by_one_by_default(
    version: str,
) -> None:
    """``max_listing_items`` bounds a listing as ``max_response_bytes`` bounds a body: a server
    whose every job is more than it allows (30 jobs, a bound of 10) is swept tenant by tenant
    (3 jobs each), with the same results as ``batch=False``."""
    config = SimulatorConfig(seed=3, organizations=10, jobs_per_organization=(3, 3), epoch=EPOCH)
    simulator = Simulator(config)
    async with client(create_app(simulator=simulator), version, max_listing_items=10) as vbo:
        targets = [PollTarget(client=vbo, organization_id=org) for org in simulator.organization_ids()]
        results = await sweep(targets)
        with pytest.raises(APIError, match="max_listing_items=10"):
            await vbo.jobs()
    assert len(results) == 10
    for org_id, result in results.items():
        assert result.error is None, result.error
        assert sorted(job.id for job in result.jobs) == expected_jobs(simulator, org_id)


# --- the same verdicts either way, on generated servers -------------------------------------------


async def unit_results(
    simulator: Simulator, version: str, policy: HealthPolicy, now: dt.datetime, *, batched: bool
) -> dict[str, PollResult]:
    """What `run_unit` delivers for every tenant of ``simulator``, as one batch or tenant by
    tenant, judged at ``now`` (a sweep's own clock is the real time)."""

    delivered: dict[str, PollResult] = {}
    async with client(create_app(simulator=simulator), version) as vbo:
        targets = [PollTarget(client=vbo, organization_id=org) for org in simulator.organization_ids()]
        async with asyncio.TaskGroup() as group:
            context = Context(
                follow=(),
                health=policy,
                now=now,
                links=LinkCache(group),
                emit=lambda result: delivered.setdefault(result.target.organization_id, result),
            )
            units = [Batch(vbo, tuple(targets))] if batched else targets
            for unit in units:
                await run_unit(unit, context)
    return delivered


def undated(reason: str) -> str:
    """``reason`` without its figures: ``failed # h ago``."""
    return re.sub("[0-9]+", "#", reason)


@settings(FEW)
@given(
    seed=st.integers(0, 2**16),
    version=st.sampled_from(["v1", "v6", "v7", "v8"]),
    max_age=st.sampled_from([None, 1, 6, 26, 48]),
    hours_later=st.integers(0, 60),
    started=st.integers(0, 5),
)
async def test_a_batch_and_tenant_by_tenant_give_every_job_the_same_state_and_reason(
    seed: int, version: str, max_age: int | None, hours_later: int, started: int
) -> None:
    """The verdicts of a batch (the server's recent sessions) and of `job_health` (each job's
    newest sessions) agree job by job, reason included, on any generated server judged at any
    moment after its history, with some jobs running again. Only how long ago may differ: a
    batch dates a last run that ended before its window by the job's ``last_run`` (its start),
    `job_health` by the run's end."""
    simulator = Simulator(SimulatorConfig(seed=seed, organizations=4, epoch=EPOCH, session_duration=1e9))
    enabled = [job["id"] for org in simulator.organization_ids() for job in simulator.jobs_wire(org)]
    for job_id in enabled[:started]:
        with contextlib.suppress(Exception):  # a disabled job refuses to start
            simulator.job_action(job_id, "start")
    policy = HealthPolicy(max_age=None if max_age is None else dt.timedelta(hours=max_age))
    now = EPOCH + dt.timedelta(hours=hours_later)
    batched = await unit_results(simulator, version, policy, now, batched=True)
    alone = await unit_results(simulator, version, policy, now, batched=False)
    assert batched.keys() == alone.keys() == set(simulator.organization_ids())
    for org_id, result in batched.items():
        assert result.error is None
        assert alone[org_id].error is None
        verdicts = {job_id: (h.state, undated(h.reason)) for job_id, h in result.health.items()}
        assert verdicts == {
            job_id: (h.state, undated(h.reason)) for job_id, h in alone[org_id].health.items()
        }
        assert set(verdicts) == {job.id for job in result.jobs}


@pytest.mark.parametrize("batch", [True, False])
@pytest.mark.parametrize("version", ["v1", "v6", "v7", "v8"])
@pytest.mark.parametrize("unknown", ["00000000-0000-0000-0000-00000000beef", "contoso"])
async def test_an_unknown_organization_id_is_a_not_found_error_on_every_version(
    version: str, batch: bool, unknown: str
) -> None:
    """Whether or not it has the form of the server's ids (a v8 server refuses a filter
    ``organizationId=contoso`` with a 400), and batched or not: the tenant's `NotFoundError`."""
    simulator = Simulator(SimulatorConfig(seed=3, organizations=3, epoch=EPOCH))
    async with client(create_app(simulator=simulator), version) as vbo:
        org_ids = simulator.organization_ids()
        targets = [PollTarget(client=vbo, organization_id=org) for org in [*org_ids, unknown]]
        results = await sweep(targets, batch=batch)
        with pytest.raises(NotFoundError, match=unknown):
            await vbo.organization_jobs(unknown)
    assert isinstance(results[unknown].error, NotFoundError), results[unknown].error
    assert unknown in str(results[unknown].error)
    for org in org_ids:
        assert sorted(job.id for job in results[org].jobs) == expected_jobs(simulator, org)


@pytest.mark.parametrize(
    ("batch", "organizations"),
    [(True, 12), (False, 12), (None, 12), (None, 300)],
    ids=["batched", "per-tenant", "default", "default-few-of-many"],
)
async def test_an_organization_id_that_is_no_path_segment_is_the_same_config_error_either_way(
    batch: bool | None, organizations: int
) -> None:
    """`` id`` or ``a/b`` cannot name an organization on any version: that tenant's `ConfigError`,
    as `organization_jobs` says for it, whether the server is swept in a batch or not."""
    simulator = Simulator(SimulatorConfig(seed=12, organizations=organizations, epoch=EPOCH))
    org_ids = simulator.organization_ids()[:9]
    bad = [f" {org_ids[0]}", f"{org_ids[1]}/jobs"]
    async with client(create_app(simulator=simulator), "v8") as vbo:
        targets = [PollTarget(client=vbo, organization_id=org) for org in [*org_ids[2:], *bad]]
        results = await sweep(targets, batch=batch)
    for org in bad:
        assert type(results[org].error).__name__ == "ConfigError", results[org].error
        assert "organization must" in str(results[org].error)
    for org in org_ids[2:]:
        assert sorted(job.id for job in results[org].jobs) == expected_jobs(simulator, org)


@settings(FEW)
@given(
    seed=st.integers(0, 2**16),
    versions=st.tuples(st.sampled_from(["v1", "v6", "v7", "v8"]), st.sampled_from(["v1", "v8"])),
    organizations=st.integers(0, 12),
    picks=st.lists(st.tuples(st.integers(0, 1), st.integers(0, 14)), max_size=25),
    health=st.booleans(),
)
async def test_every_mode_gives_one_result_per_target_and_the_same_results(
    seed: int, versions: tuple[str, str], organizations: int, picks: list[tuple[int, int]], health: bool
) -> None:
    """Targets on two servers, duplicates, ids no server knows, none at all: batched, tenant by
    tenant and by default, one result per target, and the same error, jobs, health states and
    prefetched links for each."""
    simulators = [
        Simulator(SimulatorConfig(seed=seed, organizations=organizations, epoch=EPOCH)),
        Simulator(SimulatorConfig(seed=seed + 1, organizations=3, epoch=EPOCH)),
    ]
    clients = [
        client(create_app(simulator=simulator), version)
        for simulator, version in zip(simulators, versions, strict=True)
    ]
    targets = []
    for server, index in picks:
        org_ids = simulators[server].organization_ids()
        org = org_ids[index] if index < len(org_ids) else f"00000000-0000-0000-0000-{index:012d}"
        targets.append(PollTarget(client=clients[server], organization_id=org))
    delivered = []
    async with clients[0], clients[1]:
        for batch in (True, False, None):
            seen: collections.Counter[tuple[Any, ...]] = collections.Counter()
            policy = HealthPolicy() if health else None
            async with poll_jobs(targets, batch=batch, health=policy, follow=("repository",)) as sweeping:
                async for result in sweeping:
                    seen[
                        (
                            id(result.target),
                            type(result.error).__name__,
                            tuple(sorted(job.id for job in result.jobs)),
                            tuple(sorted((job_id, h.state) for job_id, h in result.health.items())),
                            tuple(sorted(result.prefetched)),
                        )
                    ] += 1
            assert collections.Counter(key[0] for key in seen.elements()) == collections.Counter(
                map(id, targets)
            )
            delivered.append(seen)
    assert delivered[0] == delivered[1] == delivered[2]


@pytest.mark.parametrize(
    "max_age",
    [
        dt.timedelta(days=36_500),
        dt.timedelta(days=700_000),
        dt.timedelta(days=999_999_999),
        dt.timedelta.max,  # the window's slack added to it overflows timedelta itself
    ],
    ids=["100 years", "700,000 days", "999,999,999 days", "timedelta.max"],
)
@pytest.mark.parametrize("version", ["v6", "v8"])
async def test_a_max_age_reaching_back_before_any_session_reads_them_all(
    version: str, max_age: dt.timedelta
) -> None:
    """A window of more than 2,000 years or longer than the calendar: no `OverflowError`, no
    year ``110`` the server refuses; every job judged as `job_health` judges it."""
    simulator = Simulator(SimulatorConfig(seed=3, organizations=8, epoch=EPOCH))
    policy = HealthPolicy(max_age=max_age)
    batched = await unit_results(simulator, version, policy, EPOCH, batched=True)
    alone = await unit_results(simulator, version, policy, EPOCH, batched=False)
    for org_id, result in batched.items():
        assert result.error is None
        verdicts = {job_id: (h.state, h.reason) for job_id, h in result.health.items()}
        assert verdicts == {job_id: (h.state, h.reason) for job_id, h in alone[org_id].health.items()}
        assert all(h.state is not HealthState.UNKNOWN for h in result.health.values())


async def test_recent_sessions_since_a_year_before_1000_is_written_with_four_digits() -> None:
    simulator = Simulator(SimulatorConfig(seed=3, organizations=2, epoch=EPOCH))
    async with client(create_app(simulator=simulator), "v8") as vbo:
        everything = await vbo.recent_sessions(dt.datetime(1, 1, 1, tzinfo=dt.UTC))
        since_1970 = await vbo.recent_sessions(dt.datetime(1970, 1, 1, tzinfo=dt.UTC))
    assert everything == since_1970
    assert sum(map(len, everything.values())) == sum(
        len(simulator.job_sessions_wire(job_id)) for job_id in simulator.job_ids()
    )


@pytest.mark.parametrize("version", ["v1", "v8"])
async def test_recent_sessions_since_the_ends_of_the_calendar_in_any_offset(version: str) -> None:
    """A ``since`` whose time in UTC lies before the year 1 (its first hours east of UTC) or
    after 9999 (its last hours west of it) raised a bare `OverflowError` on v6+, where it is
    written in UTC: it reads as the calendar's first or last moment in UTC."""
    simulator = Simulator(SimulatorConfig(seed=3, organizations=2, epoch=EPOCH))
    first = dt.datetime.min.replace(tzinfo=dt.timezone(dt.timedelta(hours=2)))
    last = dt.datetime.max.replace(tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    async with client(create_app(simulator=simulator), version) as vbo:
        assert await vbo.recent_sessions(first) == await vbo.recent_sessions(
            dt.datetime(1, 1, 1, tzinfo=dt.UTC)
        )
        assert await vbo.recent_sessions(last) == await vbo.recent_sessions(
            dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.UTC)
        )
        assert sum(map(len, (await vbo.recent_sessions(first)).values())) == sum(
            len(simulator.job_sessions_wire(job_id)) for job_id in simulator.job_ids()
        )


# --- jobs the batch cannot file, and health from a long window, against a filtering server ---------------


def filtering(
    jobs: list[dict[str, Any]],
    owners: list[str],
    runs: tuple[dict[str, Any], ...] = (),
    *,
    page_size: int | None = None,
) -> Callable[[httpx.Request], httpx.Response]:
    """A v8 server listing ``ORGS`` and ``jobs``, ``jobs[n]`` belonging to ``owners[n]`` whatever
    it says of itself (``/Jobs?organizationId=`` filters by owner); ``/JobSessions`` honours
    ``jobId``, ``endTimeLowerBound`` and ``limit`` over ``runs`` (newest first). With
    ``page_size``, job listings come in pages of that many, linked by ``next``."""

    def handle(request: httpx.Request) -> httpx.Response:
        path, query = request.url.path.lower(), request.url.params
        if path == "/v8/token":
            return httpx.Response(
                200, json={"access_token": "tok", "refresh_token": "ref", "expires_in": 3600}
            )
        if path == "/v8/organizations":
            results = [{"id": org, "name": f"tenant-{org[:2]}"} for org in ORGS]
            return httpx.Response(200, json={"offset": 0, "limit": 10000, "results": results, "_links": {}})
        if path.startswith("/v8/organizations/") and path.rpartition("/")[2] in ORGS:
            return httpx.Response(200, json={"id": path.rpartition("/")[2], "name": "tenant"})
        if path in ("/v8/jobs", "/v8/jobsessions"):
            if path == "/v8/jobs":
                owner = query.get("organizationId")
                chosen = [job for job, of in zip(jobs, owners, strict=True) if owner in (None, of)]
                if page_size is not None:
                    offset = int(query.get("offset", 0))
                    links = {}
                    if offset + page_size < len(chosen):
                        more = request.url.copy_set_param("offset", offset + page_size)
                        links["next"] = {"href": str(more.copy_set_param("limit", page_size))}
                    page = {"offset": offset, "limit": page_size, "_links": links}
                    return httpx.Response(200, json={**page, "results": chosen[offset : offset + page_size]})
            else:
                since = query.get("endTimeLowerBound")
                chosen = [
                    run
                    for run in runs
                    if query.get("jobId") in (None, run["jobId"])
                    and (since is None or run["endTime"] >= dt.datetime.fromisoformat(since).isoformat())
                ]
            limit = int(query.get("limit", 30))
            page = {"offset": 0, "limit": limit, "results": chosen[:limit], "_links": {}}
            return httpx.Response(200, json=page)
        return httpx.Response(404, json={"message": "no such path"})

    return handle


def outcome(results: dict[str, PollResult]) -> dict[str, tuple[str | None, list[str]]]:
    return {
        org: (None if r.error is None else type(r.error).__name__, sorted(job.name for job in r.jobs))
        for org, r in results.items()
    }


def _orphan(job: dict[str, Any], organization_id: object) -> dict[str, Any]:
    """``job`` naming ``organization_id`` (None: no organization at all) and no organization link."""
    links = {key: value for key, value in job["_links"].items() if key != "organization"}
    return {**job, "organizationId": organization_id, "_links": links}


@pytest.mark.parametrize(
    "orphan",
    [
        _orphan(_job(2, ORGS[1]), None),
        _orphan(_job(2, ORGS[1], lastRun=12), None),
        _orphan(_job(2, ORGS[1], lastRun=12), 12),
        _job(2, "12", lastRun=12) | {"organizationId": 12},
    ],
    ids=[
        "no-organization",
        "undecodable-no-organization",
        "undecodable-organization-not-a-string",
        "undecodable-organization-not-listed",
    ],
)
async def test_a_job_naming_no_organization_is_not_lost_by_a_batch(
    scripted_client: Callable[..., VBOClient], orphan: dict[str, Any]
) -> None:
    """A job whose organization cannot be read from the server-wide listing belongs to a tenant
    the batch cannot tell: it is neither dropped (its tenant reported complete without it) nor
    anyone else's; the results are those of a sweep tenant by tenant."""
    jobs = [_job(1, ORGS[0]), orphan, _job(3, ORGS[2])]
    vbo = scripted_client(filtering(jobs, [ORGS[0], ORGS[1], ORGS[2]]))
    targets = [PollTarget(client=vbo, organization_id=org) for org in ORGS]
    alone = outcome(await sweep(targets, batch=False))
    if "organization" not in orphan["_links"]:  # nothing readable names its organization
        assert alone[ORGS[1]] != (None, [])  # the tenant owning the job gets it, or its DecodeError
    else:
        # Its organization link names organization "12": v8's listing of ORGS[1] leaves out a job naming
        # another organization, readable or not (a page past a /v7/ next lists every tenant's).
        assert alone[ORGS[1]] == (None, [])
    assert outcome(await sweep(targets, batch=True)) == alone


class _Rewriting(httpx.AsyncBaseTransport):
    """The simulator's answers, with ``change`` applied to every job of every JSON answer."""

    def __init__(self, app: Any, change: Callable[[dict[str, Any]], None]) -> None:
        self._inner = httpx.ASGITransport(app=app)
        self._change = change

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        body = await response.aread()
        if "/jobs" not in request.url.path.lower() or "jobsessions" in request.url.path.lower():
            return httpx.Response(response.status_code, headers=response.headers, content=body)
        data = json.loads(body)
        items = data if isinstance(data, list) else data.get("results", [])
        for item in items:
            if isinstance(item, dict):
                self._change(item)
        headers = {k: v for k, v in response.headers.items() if k.lower() not in ("content-length",)}
        return httpx.Response(response.status_code, headers=headers, content=json.dumps(data).encode())


@pytest.mark.parametrize("version", ["v1", "v6", "v7", "v8"])
async def test_a_readable_job_naming_an_organization_the_server_does_not_list_is_not_lost_by_a_batch(
    version: str,
) -> None:
    """A job a tenant's listing holds (v1-v7: under that tenant's path) whose own organization is
    one the server does not list. A batch filed it by its own word under that organization, which
    no target named: the tenant was reported complete without it, while tenant by tenant it has
    it. Such a job now sends the batch tenant by tenant, as an undecodable one did."""
    simulator = Simulator(SimulatorConfig(seed=3, organizations=3, epoch=EPOCH, jobs_per_organization=(2, 2)))
    owner = simulator.organization_ids()[0]
    victim = simulator.jobs_wire(owner, version="v7")[0]["id"]

    def ghostly(job: dict[str, Any]) -> None:
        if str(job.get("id", "")).lower() == victim.lower():
            if "organizationId" in job:
                job["organizationId"] = UNKNOWN
            link = job.get("_links", {}).get("organization")
            if isinstance(link, dict) and "href" in link:
                link["href"] = link["href"].replace(owner, UNKNOWN)

    def vbo() -> VBOClient:
        return VBOClient(
            "https://vbo.test:4443",
            username="admin",
            password="admin",
            api_version=version,
            transport=_Rewriting(create_app(simulator=simulator), ghostly),
            retry=NO_WAIT,
        )

    outcomes = {}
    for batch in (False, True):
        async with vbo() as client_:
            orgs = simulator.organization_ids()
            targets = [PollTarget(client=client_, organization_id=org) for org in orgs]
            simulator.reset_stats()
            outcomes[batch] = outcome(await sweep(targets, batch=batch))
    assert outcomes[True] == outcomes[False]
    if version != "v8":
        assert len(outcomes[False][owner][1]) == 2
    else:
        # v8 lists a tenant's jobs by filter, leaving out those naming another organization: the
        # batch gives the same without a request per tenant (it went tenant by tenant).
        assert len(outcomes[False][owner][1]) == 1
        assert api_requests(simulator) == {"GET /v8/organizations": 1, "GET /v8/jobs": 1}


async def test_on_v8_another_tenants_undecodable_job_on_a_v7_page_fails_only_that_tenant() -> None:
    """A v8 ``/Jobs?organizationId=`` page whose ``next`` names v7 (whose ``/Jobs`` ignores the
    filter: every tenant's jobs), with one of tenant B's jobs undecodable. Swept tenant by
    tenant, every tenant whose listing reached that page failed on B's job; only B fails now,
    as in a batch, and the others get their jobs."""
    simulator = Simulator(SimulatorConfig(seed=3, organizations=3, epoch=EPOCH, jobs_per_organization=(3, 3)))
    orgs = simulator.organization_ids()
    broken = simulator.jobs_wire(orgs[1], version="v7")[0]["id"]

    class V7Next(_Rewriting):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if request.url.path.lower() == "/v8/jobs":  # pages of two, to reach the next link
                request = httpx.Request(
                    "GET", request.url.copy_set_param("limit", 2), headers=request.headers
                )
            response = await super().handle_async_request(request)
            if request.url.path.lower() != "/v8/jobs":
                return response
            data = json.loads(await response.aread())
            if data.get("_links", {}).get("next"):
                data["_links"]["next"]["href"] = data["_links"]["next"]["href"].replace("/v8/", "/v7/")
            return httpx.Response(200, json=data)

    def malformed(job: dict[str, Any]) -> None:
        if job.get("id") == broken:
            job["lastRun"] = 12

    results = {}
    for batch in (False, True):
        async with VBOClient(
            "https://vbo.test:4443",
            username="admin",
            password="admin",
            api_version="v8",
            transport=V7Next(create_app(simulator=simulator), malformed),
            retry=NO_WAIT,
        ) as vbo:
            results[batch] = outcome(
                await sweep([PollTarget(client=vbo, organization_id=o) for o in orgs], batch=batch)
            )
    for swept in results.values():
        assert swept[orgs[1]][0] == "DecodeError"
        assert [swept[org] for org in (orgs[0], orgs[2])] == [
            (None, sorted(job["name"] for job in simulator.jobs_wire(org))) for org in (orgs[0], orgs[2])
        ]


async def test_a_job_failing_every_run_is_judged_in_a_batch_as_job_health_judges_it(
    scripted_client: Callable[..., VBOClient],
) -> None:
    """A job that never succeeded and runs every hour: `job_health` sees its five newest runs and
    grades the last one (WARNING); a batch, whose window of sessions reaches back further than
    ``max_age``, must not call it stale (CRITICAL) where `job_health` does not."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    job = _job(1, ORGS[0], isEnabled=True, lastStatus="Warning", lastBackup=None)
    job["lastRun"] = (now - dt.timedelta(minutes=30)).isoformat()
    runs = [
        _run(
            n,
            job["id"],
            "Warning",
            now - dt.timedelta(hours=n, minutes=30),
            now - dt.timedelta(hours=n, minutes=20),
        )
        for n in range(30)
    ]
    vbo = scripted_client(filtering([job], [ORGS[0]], runs))
    targets = [PollTarget(client=vbo, organization_id=org) for org in ORGS]
    alone = await vbo.job_health((await vbo.organization_jobs(ORGS[0]))[0])
    assert alone.state is HealthState.WARNING, alone.reason
    for batch in (True, False):
        (health,) = (await sweep(targets, batch=batch, health=HealthPolicy()))[ORGS[0]].health.values()
        assert (health.state, health.reason) == (alone.state, alone.reason), batch


def bodies_kept(error: BaseException | None, size: int) -> list[str]:
    """The local variables of the frames that ``error`` (and the errors chained to it) keeps
    alive through its traceback holding a body of at least ``size`` bytes."""
    kept: list[str] = []
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        tb = error.__traceback__
        while tb is not None:
            frame = tb.tb_frame
            while frame is not None and id(frame) not in seen:
                seen.add(id(frame))
                kept += [
                    f"{frame.f_code.co_name}.{name}"
                    for name, value in frame.f_locals.items()
                    if isinstance(value, bytes | bytearray | str) and len(value) >= size
                ]
                frame = frame.f_back
            tb = tb.tb_next
        error = error.__cause__ or error.__context__
    return kept


@pytest.mark.parametrize(
    ("batch", "broken"),
    [(True, "job"), (False, "job"), (True, "page")],
    ids=["batched-bad-job", "per-tenant-bad-job", "batched-bad-page"],
)
async def test_a_tenant_error_keeps_no_page_of_the_listing_alive(
    scripted_client: Callable[..., VBOClient], batch: bool, broken: str
) -> None:
    """The error a result holds (for as long as the caller keeps the results) does not keep the
    listing's page (megabytes on a large server) alive through the frames of its traceback."""
    padding = "x" * 1000
    jobs = [_job(n, ORGS[n % 2], description=padding) for n in range(2000)]
    jobs.append(_job(9999, ORGS[1], lastRun=12))
    handler = filtering(jobs, [job["organizationId"] for job in jobs])
    if broken == "page":
        serve = handler

        def handler(request: httpx.Request) -> httpx.Response:
            if request.url.path.lower() == "/v8/jobs":
                return httpx.Response(200, json={"results": {"not": "a list", "padding": padding * 2000}})
            return serve(request)

    vbo = scripted_client(handler)
    results = await sweep([PollTarget(client=vbo, organization_id=org) for org in ORGS], batch=batch)
    error = results[ORGS[1]].error
    assert isinstance(error, DecodeError), error
    assert bodies_kept(error, 1_000_000) == []


@pytest.mark.parametrize("batch", [True, None])
@pytest.mark.parametrize("version", ["v1", "v6", "v7", "v8"])
async def test_a_carried_organization_the_server_does_not_know_is_a_not_found_error(
    version: str, batch: bool | None
) -> None:
    """Targets carrying their `Organization` spare the batch its listing of organizations; one
    of them the server does not know (another server's, or one deleted since it was listed) is
    still that tenant's `NotFoundError`, as tenant by tenant, not a tenant without jobs."""
    simulator = Simulator(SimulatorConfig(seed=3, organizations=BATCH_MIN_TENANTS, epoch=EPOCH))
    other = Simulator(SimulatorConfig(seed=4, organizations=1, epoch=EPOCH))
    async with client(create_app(simulator=simulator), version) as vbo:
        async with client(create_app(simulator=other), version) as elsewhere:
            (stranger,) = await elsewhere.organizations()
        organizations = [*await vbo.organizations(), stranger]
        targets = [PollTarget(client=vbo, organization_id=o.id, organization=o) for o in organizations]
        results = await sweep(targets, batch=batch)
        alone = await sweep(targets, batch=False)
    assert isinstance(alone[stranger.id].error, NotFoundError)
    assert isinstance(results[stranger.id].error, NotFoundError), results[stranger.id]
    assert stranger.id in str(results[stranger.id].error)
    for org in simulator.organization_ids():
        assert sorted(job.id for job in results[org].jobs) == expected_jobs(simulator, org)


@pytest.mark.parametrize("version", ["v1", "v8"])
async def test_organization_counts_vouch_for_carried_organizations(version: str) -> None:
    """A caller that gives the server's organization count listed the organizations it carries
    (the CLI and the exporter, just before the sweep): a tenant of theirs without jobs is then
    not asked for by id, which would cost a request per jobless tenant on every sweep; without
    the count, each is (an organization the server no longer knows is its NotFoundError)."""
    simulator = Simulator(
        SimulatorConfig(
            seed=3, organizations=2 * BATCH_MIN_TENANTS, jobs_per_organization=(0, 2), epoch=EPOCH
        )
    )
    async with client(create_app(simulator=simulator), version) as vbo:
        organizations = await vbo.organizations()
        targets = [PollTarget(client=vbo, organization_id=o.id, organization=o) for o in organizations]
        jobless = [o.id for o in organizations if not expected_jobs(simulator, o.id)]
        assert jobless, "the data must hold tenants without jobs"
        by_id: list[int] = []
        for counts in ({vbo: len(organizations)}, None):
            simulator.stats.by_endpoint.clear()
            results = await sweep(targets, organization_counts=counts)
            by_id.append(
                sum(
                    n
                    for (_, path), n in simulator.stats.by_endpoint.items()
                    if path.count("/") == 3 and "/organizations/" in path
                )
            )
            for org in simulator.organization_ids():
                assert results[org].error is None, results[org].error
                assert sorted(job.id for job in results[org].jobs) == expected_jobs(simulator, org)
    assert by_id == [0, len(jobless)]


class _Undecodable(httpx.AsyncBaseTransport):
    """The simulator behind ``inner``, its job ``job_id`` sent with a ``lastRun`` that cannot be
    decoded wherever it is listed."""

    def __init__(self, app: Any, job_id: str) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.job_id = job_id

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.url.path.lower() != "/v8/jobs" or response.status_code != 200:
            return response
        page = json.loads(await response.aread())
        for job in page["results"]:
            if job["id"] == self.job_id:
                job["lastRun"] = 12
        return httpx.Response(200, json=page)


async def test_an_undecodable_job_of_a_tenant_not_swept_keeps_a_vouched_batch_whole() -> None:
    """Half the tenants of a server, carrying their `Organization`, with its organization count
    (as ``serve`` and ``poll`` sweep a list of tenants): a job of a tenant *not* swept that cannot be
    decoded is that tenant's, whom the server lists; the sweep stays one batch, as it does when
    the targets carry nothing (the listing read first). It was swept tenant by tenant on every
    sweep, as if that job named no organization the server lists: a request per tenant (and with
    health one or two per job) instead of one listing."""
    simulator = Simulator(SimulatorConfig(seed=3, organizations=2 * BATCH_MIN_TENANTS, epoch=EPOCH))
    swept, others = (
        simulator.organization_ids()[:BATCH_MIN_TENANTS],
        simulator.organization_ids()[BATCH_MIN_TENANTS:],
    )
    odd = next(job["id"] for org in others for job in simulator.jobs_wire(org))
    transport = _Undecodable(create_app(simulator=simulator), odd)
    async with VBOClient(
        "https://vbo.test:4443", username="admin", password="admin", api_version="v8", transport=transport
    ) as vbo:
        organizations = {o.id: o for o in await vbo.organizations()}
        carried = [
            PollTarget(client=vbo, organization_id=org, organization=organizations[org]) for org in swept
        ]
        plain = [PollTarget(client=vbo, organization_id=org) for org in swept]
        found: list[dict[str, PollResult]] = []
        requests: list[dict[str, int]] = []
        for targets, counts in ((carried, {vbo: len(organizations)}), (plain, None)):
            simulator.reset_stats()
            found.append(await sweep(targets, organization_counts=counts))
            requests.append(api_requests(simulator))
    # One batch both ways; carried, not even the listing (v8 leaves another organization's job
    # out of a tenant's listing by filter: whose it is needs no asking).
    assert requests[0] == {"GET /v8/jobs": 1}, requests[0]
    assert requests[1] == {"GET /v8/organizations": 1, "GET /v8/jobs": 1}
    for org in swept:
        assert [found[0][org].error, found[1][org].error] == [None, None]
        assert sorted(job.id for job in found[0][org].jobs) == expected_jobs(simulator, org)
        assert sorted(job.id for job in found[1][org].jobs) == expected_jobs(simulator, org)


async def test_duplicate_targets_count_once_toward_a_batch() -> None:
    """The default batches a server for `BATCH_MIN_TENANTS` distinct tenants: one tenant named
    that many times (a target list built from several sources) is still polled on its own,
    not by listing the server's organizations and every job it has."""
    simulator = Simulator(SimulatorConfig(seed=5, organizations=BATCH_MIN_TENANTS + 4, epoch=EPOCH))
    org = simulator.organization_ids()[0]
    async with client(create_app(simulator=simulator), "v8") as vbo:
        targets = [
            PollTarget(client=vbo, organization_id=org, name=f"copy {n}") for n in range(BATCH_MIN_TENANTS)
        ]
        results: list[PollResult] = []
        async with poll_jobs(targets) as sweeping:
            results += [result async for result in sweeping]
        assert "GET /v8/organizations" not in api_requests(simulator)
        simulator.reset_stats()
        carried = [
            PollTarget(client=vbo, organization_id=o.id, organization=o) for o in await vbo.organizations()
        ]
        simulator.reset_stats()
        few = carried[:2] * BATCH_MIN_TENANTS  # 2 of 12 tenants: under the share, however often named
        async with poll_jobs(few, organization_counts={vbo: len(carried)}) as sweeping:
            results += [result async for result in sweeping]
        kinds = api_requests(simulator)
        assert set(kinds) == {"GET /v8/jobs"}
        assert kinds["GET /v8/jobs"] >= 2  # ?organizationId=, per tenant (not once for the server)
    assert [result.error for result in results] == [None] * (3 * BATCH_MIN_TENANTS)
    assert all(result.jobs for result in results)


@pytest.mark.parametrize("version", ["v6", "v7", "v8"])
async def test_a_session_window_too_big_to_read_is_judged_job_by_job_by_default(version: str) -> None:
    """A batch the default plan chose whose server-wide session listing is over
    ``max_response_bytes`` (the jobs are not) judges each job as `job_health` does, as it
    sweeps tenant by tenant a server whose jobs are too big to list, instead of calling every
    job UNKNOWN."""
    simulator = Simulator(SimulatorConfig(seed=5, organizations=8, epoch=EPOCH, sessions_per_job=(40, 60)))
    policy = HealthPolicy(max_age=dt.timedelta(days=30))
    delivered: dict[bool, dict[str, PollResult]] = {True: {}, False: {}}
    async with client(create_app(simulator=simulator), version, max_response_bytes=200_000) as vbo:
        with pytest.raises(ResponseTooLargeError):
            await vbo.recent_sessions(EPOCH - dt.timedelta(days=30))
        targets = tuple(PollTarget(client=vbo, organization_id=org) for org in simulator.organization_ids())
        for batched in (True, False):
            async with asyncio.TaskGroup() as group:
                context = Context(
                    follow=(),
                    health=policy,
                    now=EPOCH,
                    links=LinkCache(group),
                    emit=lambda result, into=delivered[batched]: into.setdefault(
                        result.target.organization_id, result
                    ),
                )
                units = [Batch(vbo, targets, chosen=True)] if batched else targets
                for unit in units:
                    await run_unit(unit, context)
    for org_id, result in delivered[True].items():
        assert result.error is None
        verdicts = {job_id: (h.state, h.reason) for job_id, h in result.health.items()}
        assert verdicts == {
            job_id: (h.state, h.reason) for job_id, h in delivered[False][org_id].health.items()
        }
        assert all(h.state is not HealthState.UNKNOWN for h in result.health.values())


@pytest.mark.parametrize("version", ["v6", "v7", "v8"])
async def test_a_success_older_than_the_runs_job_health_reads_is_not_seen_by_a_batch_either(
    version: str,
) -> None:
    """A job run every 20 minutes, with warnings, since its last success 27 h ago (within the
    batch's window, beyond the newest runs `job_health` reads: 50 on v6, 5 on v7/v8, whose
    ``lastBackup`` is absent here): a batch grades it as `job_health` does, from those runs
    alone, not stale (CRITICAL) where `job_health` says WARNING."""
    org, job_id = ORGS[0], _job(1, ORGS[0])["id"]
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    minutes = [20 * n for n in range(85)]
    runs = [
        _run(n, job_id, "Warning", now - dt.timedelta(minutes=m + 15), now - dt.timedelta(minutes=m + 5))
        for n, m in enumerate(minutes)
    ]
    runs.append(
        _run(999, job_id, "Success", now - dt.timedelta(hours=27, minutes=30), now - dt.timedelta(hours=27))
    )
    job = {
        "id": job_id,
        "name": "every 20 minutes",
        "isEnabled": True,
        "lastStatus": "Warning",
        "lastRun": runs[0]["creationTime"],
        "_links": {"organization": {"href": f"/{version}/Organizations/{org}"}},
    }

    def handle(request: httpx.Request) -> httpx.Response:
        path, query = request.url.path.lower(), request.url.params
        if path == f"/{version}/token":
            return httpx.Response(200, json={"access_token": "tok", "refresh_token": "r", "expires_in": 3600})
        if path == f"/{version}/organizations":
            chosen: list[dict[str, Any]] = [{"id": org, "name": "tenant"}]
        elif path in (f"/{version}/jobs", f"/{version}/organizations/{org}/jobs"):
            chosen = [job]
        elif path in (f"/{version}/jobsessions", f"/{version}/jobs/{job_id}/jobsessions"):
            since = query.get("endTimeLowerBound")
            chosen = [
                r
                for r in runs
                if since is None or r["endTime"] >= dt.datetime.fromisoformat(since).isoformat()
            ]
        else:
            return httpx.Response(404, json={"message": "no such path"})
        limit = int(query.get("limit", 30))
        return httpx.Response(
            200, json={"offset": 0, "limit": limit, "results": chosen[:limit], "_links": {}}
        )

    async with VBOClient(
        "https://vbo.test:4443",
        username="u",
        password="p",
        api_version=version,
        transport=httpx.MockTransport(handle),
        retry=NO_WAIT,
    ) as vbo:
        alone = await vbo.job_health((await vbo.organization_jobs(org))[0])
        assert alone.state is HealthState.WARNING, alone.reason
        for batch in (True, False):
            (health,) = (
                await sweep([PollTarget(client=vbo, organization_id=org)], batch=batch, health=HealthPolicy())
            )[org].health.values()
            assert (health.state, health.reason) == (alone.state, alone.reason), batch


@pytest.mark.parametrize("page_size", [None, 1], ids=["one-page", "a-page-each"])
async def test_a_job_id_listed_under_two_tenants_is_judged_for_each_of_them(
    scripted_client: Callable[..., VBOClient], page_size: int | None
) -> None:
    """A server listing the same job id under two organizations (ids are the server's to keep
    unique): each tenant's health is of its own job, never its neighbour's (name and verdict),
    whether the server-wide listing has them on one page or on two (a repeat on a later page is
    one only within its tenant: the second tenant's job was dropped)."""
    ours = _job(1, ORGS[0], name="ours", lastStatus="Success", lastRun=EPOCH.isoformat())
    theirs = _job(1, ORGS[1], name="theirs", lastStatus="Failed", lastRun=EPOCH.isoformat())
    vbo = scripted_client(filtering([ours, theirs], [ORGS[0], ORGS[1]], page_size=page_size))
    targets = [PollTarget(client=vbo, organization_id=org) for org in ORGS]
    for batch in (True, False):
        results = await sweep(targets, batch=batch, health=HealthPolicy(max_age=None))
        for org, name, state in [
            (ORGS[0], "ours", HealthState.OK),
            (ORGS[1], "theirs", HealthState.CRITICAL),
        ]:
            (job,) = results[org].jobs
            assert job.name == name
            assert results[org].health[job.id].job is job, batch
            assert results[org].health[job.id].state is state, batch


@pytest.mark.parametrize(
    "spelling",
    [
        lambda org: "{" + org.upper() + "}",
        lambda org: "(" + org + ")",
        lambda org: org.replace("-", "").upper(),
        lambda org: "{" + org.replace("-", "") + "}",
    ],
    ids=["braces", "parentheses", "digits-only", "digits-in-braces"],
)
async def test_a_tenant_named_in_another_guid_spelling_is_that_tenant(
    scripted_client: Callable[..., VBOClient], spelling: Callable[[str], str]
) -> None:
    """A target's organization id written as .NET also reads a GUID (in braces, in parentheses,
    without dashes): batched or not, it is the tenant the server lists. Before, a v8 server
    answered ``organizationId={...}`` with the tenant's jobs and the client left them all out
    (compared by text): an empty tenant without an error; batched, a NotFoundError."""
    jobs = [_job(n, org) for n, org in enumerate(ORGS)]
    vbo = scripted_client(filtering(jobs, list(ORGS)))
    targets = [PollTarget(client=vbo, organization_id=spelling(org)) for org in ORGS]
    for batch in (True, False):
        results = await sweep(targets, batch=batch)
        assert [outcome(results)[target.organization_id] for target in targets] == [
            (None, [f"job {n}"]) for n in range(3)
        ], batch
    assert [job.name for job in await vbo.organization_jobs(spelling(ORGS[1]))] == ["job 1"]


@pytest.mark.parametrize(
    "malformed", [{"id": ORGS[2], "name": 12}, {"name": "no id"}], ids=["bad-name", "no-id"]
)
async def test_a_malformed_organization_fails_no_tenant_of_a_batch(
    scripted_client: Callable[..., VBOClient], malformed: dict[str, Any]
) -> None:
    """One organization of the server-wide listing that cannot be decoded (a tenant's bad data)
    fails none of the other tenants of a batch, and is not an unknown organization itself: the
    results are those of a sweep tenant by tenant (which never decodes the organizations)."""
    jobs = [_job(n, org) for n, org in enumerate(ORGS)]
    serve = filtering(jobs, list(ORGS))

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path.lower() == "/v8/organizations":
            results = [{"id": org, "name": "tenant"} for org in ORGS[:2]] + [malformed]
            return httpx.Response(200, json={"offset": 0, "limit": 10000, "results": results, "_links": {}})
        return serve(request)

    vbo = scripted_client(handle)
    targets = [PollTarget(client=vbo, organization_id=org) for org in [*ORGS, UNKNOWN]]
    alone = await sweep(targets, batch=False)
    batched = await sweep(targets, batch=True)
    assert outcome(batched) == outcome(alone)
    assert [outcome(batched)[org] for org in ORGS] == [(None, [f"job {n}"]) for n in range(3)]
    assert isinstance(batched[UNKNOWN].error, NotFoundError)


async def test_a_batch_whose_organizations_cannot_be_listed_stops_listing_the_jobs() -> None:
    """``batch=True`` lists a server's organizations and its jobs at the same time: when the
    organizations fail (a 404 here), the job listing beside them is cancelled and the tenants get
    that error at once. It was read to its end first, every page of it (a job listing that never
    ends held the sweep until its timeout)."""
    fake = FakeVBO()
    cancelled: list[str] = []

    async def held(request: httpx.Request) -> httpx.Response:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(request.url.path)
            raise
        return json_response(200, [])  # pragma: no cover - never reached

    fake.route("GET", "/v1/Organizations", json_response(404, {"message": "Not found."}))
    fake.route("GET", "/v1/Jobs", held)
    async with client_for(fake) as vbo:
        targets = [PollTarget(client=vbo, organization_id=org) for org in ORGS]
        async with asyncio.timeout(5):  # a guard against a hang only
            results = await sweep(targets, batch=True)
    assert sorted(results) == sorted(ORGS)
    assert all(isinstance(result.error, NotFoundError) for result in results.values())
    assert cancelled == ["/v1/Jobs"]
