"""The client against the simulator for every API version (v1, v6, v7, v8 pinned, and auto).

In process through ``httpx.ASGITransport`` (and once over a real uvicorn socket): what the client
lists is compared with the simulator's own ``*_wire(version=...)`` answers; links are followed
(the repository, the proxy through it, a v8 proxy pool's missing proxy, the job sessions whose
server link is dead on v7/v8, a v8 ``next`` link naming ``/v7/``); job actions change the state
and are sent once even when answered 500; one `poll_jobs` sweep covers a v1 and a v8 server.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import attrs
import httpx
import pytest

from vbo_async import (
    BackupRepository,
    CollectionLink,
    Job,
    JobSession,
    JobStatus,
    LinkError,
    ObjectStorage,
    ObjectStorageType,
    Organization,
    PollTarget,
    Proxy,
    ProxyRole,
    RetryPolicy,
    ServerError,
    VBOClient,
    poll_jobs,
)
from vbo_async._links import ThroughLink
from vbo_async.simulator import Simulator, SimulatorConfig, create_app

from .conftest import serve

BASE = "https://vbo.test:4443"
EPOCH = dt.datetime(2026, 7, 1, 12, 0, tzinfo=dt.UTC)
VERSIONS = ("v1", "v6", "v7", "v8")
MODES = (*VERSIONS, "auto")
NO_WAIT = RetryPolicy(attempts=4, wait_initial=0, wait_max=0, wait_jitter=0, max_retry_after=0)


class FakeClock:
    """A hand-driven clock: started runs stay Running until the test moves it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_simulator(**overrides: Any) -> Simulator:
    options: dict[str, Any] = {
        "seed": 23,
        "organizations": 4,
        "jobs_per_organization": (2, 4),
        "sessions_per_job": (3, 12),
        "epoch": EPOCH,
    }
    return Simulator(SimulatorConfig(**{**options, **overrides}), clock=FakeClock())


def items(body: Any) -> list[dict[str, Any]]:
    """The items of a collection answer (a bare array, or a page object's results)."""
    return list(body["results"]) if isinstance(body, dict) else list(body)


def client(app: Any, mode: str, **options: Any) -> VBOClient:
    return VBOClient(
        BASE,
        username="admin",
        password="admin",
        api_version=mode,
        transport=httpx.ASGITransport(app=app),
        retry=NO_WAIT,
        **options,
    )


@pytest.fixture
def simulator() -> Simulator:
    return make_simulator()


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def vbo(simulator: Simulator, mode: str) -> AsyncIterator[VBOClient]:
    async with client(create_app(simulator=simulator), mode) as vbo:
        yield vbo


def version_of(vbo: VBOClient) -> str:
    assert vbo.api_version is not None
    return vbo.api_version


def jobs_wire(simulator: Simulator, org_id: str, version: str) -> list[dict[str, Any]]:
    if version == "v8":
        return items(simulator.jobs_wire(version="v8", organization_id=org_id, limit=10_000))
    return items(simulator.jobs_wire(org_id, version=version))


def sessions_wire(simulator: Simulator, job_id: str, version: str) -> list[dict[str, Any]]:
    """A job's sessions as the version lists them (newest first)."""
    if version in ("v1", "v6"):
        return items(simulator.job_sessions_wire(job_id, version=version, limit=10_000))
    return items(simulator.sessions_wire(version=version, job_id=job_id, limit=10_000))


def pooled_repositories(simulator: Simulator) -> set[str]:
    return {
        rid
        for rid in simulator.repository_ids()
        if simulator.repository_wire(rid, version="v8")["proxyPoolId"]
    }


# --- listing -----------------------------------------------------------------------------------------


async def check_listing(vbo: VBOClient, simulator: Simulator) -> list[Job]:
    """Every organization and every tenant's jobs, compared with the simulator's answers."""
    orgs = await vbo.organizations()
    version = version_of(vbo)
    org_wires = items(simulator.organizations_wire(version=version, extended_view=True, limit=10_000))
    assert [org.id for org in orgs] == [wire["id"] for wire in org_wires]
    assert [org.name for org in orgs] == [wire["name"] for wire in org_wires]
    assert orgs == [vbo.from_wire(wire, Organization) for wire in org_wires]
    every_job: list[Job] = []
    for org, org_wire in zip(orgs, org_wires, strict=True):
        assert org.links.self is not None
        assert org.links.self.href == org_wire["_links"]["self"]["href"]
        jobs = await vbo.organization_jobs(org)
        wires = jobs_wire(simulator, org.id, version)
        assert [job.id for job in jobs] == [wire["id"] for wire in wires]
        assert jobs == [vbo.from_wire(wire, Job) for wire in wires]
        for job, wire in zip(jobs, wires, strict=True):
            assert type(job) is Job
            assert job.organization_id == org.id
            assert job.name == wire["name"]
            assert job.last_status is not None
            assert job.last_status.value == wire["lastStatus"]
            assert job.is_enabled is (wire["isEnabled"] in (True, "true"))
            links = wire["_links"]
            assert job.links.self is not None
            assert job.links.self.href == links["self"]["href"]
            repository_key = "repository" if version == "v1" else "backupRepository"
            assert job.links.repository is not None
            assert job.links.repository.href == links[repository_key]["href"]
            assert job.repository_id == job.links.repository.href.rpartition("/")[2]
        every_job += jobs
    assert len(every_job) == len(simulator.job_ids())
    return every_job


async def test_organizations_and_every_tenant_s_jobs_match_the_simulator(
    vbo: VBOClient, simulator: Simulator, mode: str
) -> None:
    assert vbo.api_version == (None if mode == "auto" else mode)
    await check_listing(vbo, simulator)
    assert vbo.api_version == ("v8" if mode == "auto" else mode)
    version = version_of(vbo)
    assert simulator.stats.token_requests_by_version == {(version, "password"): 1}
    assert simulator.stats.unauthorized == 0
    listed = [path for (method, path) in simulator.stats.by_endpoint if method == "GET"]
    assert all(path.startswith(f"/{version}/") for path in listed)
    if version == "v8":
        assert not any(path.endswith("/jobs") and "/organizations/" in path for path in listed)


async def test_organizations_and_proxies_are_read_in_their_extended_view(
    vbo: VBOClient, simulator: Simulator, mode: str
) -> None:
    # v7 and v8 leave an organization's backup state (isBackedup, first/lastBackuptime) out, and v7
    # a proxy's thread and throttling figures, unless asked for ``extendedView=true`` (v6 shows
    # them by default): the model's fields would be None on every v7/v8 server.
    orgs = await vbo.organizations()
    version = version_of(vbo)
    wires = items(simulator.organizations_wire(version=version, extended_view=True, limit=10_000))
    assert orgs == [vbo.from_wire(wire, Organization) for wire in wires]
    assert all(org.is_backedup is not None for org in orgs)
    assert any(org.last_backuptime is not None for org in orgs)
    assert await vbo.organization(orgs[0].id) == orgs[0]
    proxies = await vbo.proxies()
    proxy_wires = items(simulator.proxies_wire(version=version, extended_view=True, limit=10_000))
    assert proxies == [vbo.from_wire(wire, Proxy) for wire in proxy_wires]
    assert all(proxy.throttling_unit is not None for proxy in proxies)
    assert await vbo.proxy(proxies[0].id) == proxies[0]


# --- links -------------------------------------------------------------------------------------------


async def test_an_organization_reached_by_link_is_its_extended_view(
    vbo: VBOClient, simulator: Simulator, mode: str
) -> None:
    # A followed link (a job's organization, an organization's self) asks for the extended view
    # as organization() does: the same organization decodes the same however it was reached.
    jobs = await vbo.jobs()
    version = version_of(vbo)
    seen: set[str] = set()
    for job in jobs:
        assert job.links.organization is not None
        org = await job.links.organization
        wire = simulator.organization_wire(job.organization_id or "", version=version, extended_view=True)
        assert org == vbo.from_wire(wire, Organization)
        assert org == await vbo.organization(org.id)
        assert org.is_backedup is not None
        if org.links.self is not None:
            assert await org.links.self == org
        seen.add(org.id)
    assert len(seen) >= 2
    assert any(org.last_backuptime is not None for org in await vbo.organizations())
    if version in ("v7", "v8"):  # the simulator shows the backup state only when asked
        plain = simulator.organization_wire(next(iter(seen)), version=version)
        assert vbo.from_wire(plain, Organization).is_backedup is None


async def test_repository_and_proxy_links(vbo: VBOClient, simulator: Simulator, mode: str) -> None:
    jobs = await vbo.jobs()
    version = version_of(vbo)
    pooled = pooled_repositories(simulator)
    assert pooled
    assert any(job.repository_id in pooled for job in jobs)
    for job in jobs:
        assert job.repository_id is not None
        repository = await job.links.repository
        assert isinstance(repository, BackupRepository)
        wire = simulator.repository_wire(job.repository_id, version=version)
        assert repository == vbo.from_wire(wire, BackupRepository)
        capacity_key = "capacity" if version == "v1" else "capacityBytes"
        assert repository.capacity == int(wire[capacity_key])
        proxy_link = job.links.proxy
        assert proxy_link is not None
        assert isinstance(proxy_link, ThroughLink) is (version != "v1")
        if version == "v8" and job.repository_id in pooled:
            with pytest.raises(LinkError, match="proxy") as caught:
                await proxy_link
            assert caught.value.relation == "proxy"
            assert repository.proxy_pool_id is not None
            continue
        proxy = await proxy_link
        assert isinstance(proxy, Proxy)
        proxy_id = wire["proxyId"] if version != "v1" else job.links.proxy.href.rpartition("/")[2]
        assert proxy.id == proxy_id
        # Reached by link, a v7 proxy is its extended view (thread and throttling figures) too.
        proxy_wire = simulator.proxy_wire(proxy.id, version=version, extended_view=True)
        assert proxy == vbo.from_wire(proxy_wire, Proxy)
        assert proxy == await vbo.proxy(proxy.id)
        assert proxy.throttling_unit is not None
        assert proxy.links.repositories is not None  # v6+: built from the id (/BackupRepositories?proxyId=)
        assert job.repository_id in {r.id for r in await proxy.links.repositories}


@pytest.mark.parametrize("version", VERSIONS)
async def test_repository_state_proxy_roles_and_session_proxies_per_version(version: str) -> None:
    """v8 tells a repository out of service and why, a proxy's roles, pool and account, and
    which proxy ran a session; v6/v7 the repository's encryption and sync state; an object
    storage repository names its storage by id (and its cache path) on v6/v7 and holds it as an
    object on v8; v1 none of it (None, never a made-up False)."""
    simulator = make_simulator()
    broken, *_ = simulator.repository_ids()
    simulator.set_out_of_order(broken, "The repository is not reachable")
    async with client(create_app(simulator=simulator), version) as vbo:
        repositories = {r.id: r for r in await vbo.backup_repositories()}
        proxies = await vbo.proxies()
        job = (await vbo.jobs())[0]
        sessions = await vbo.job_sessions(job, limit=3)
        simulator.reset_stats()
        storages = {r.id: await vbo.object_storage(r) for r in repositories.values()}
        storage_requests = dict(simulator.stats.by_endpoint)
    assert repositories
    assert proxies
    assert sessions
    for repository in repositories.values():
        expected = repository.id == broken
        assert repository.is_out_of_order is (expected if version == "v8" else None)
        assert repository.out_of_order_reason == (
            "The repository is not reachable" if version == "v8" and expected else None
        )
        assert repository.is_indexed is (True if version == "v8" else None)
        assert repository.object_storage_encryption_enabled is (None if version == "v1" else False)
    stores = {
        r.id: r.object_storage_id if version in ("v6", "v7") else r.object_storage
        for r in repositories.values()
        if (r.object_storage_id or r.object_storage) is not None
    }
    if version == "v1":
        assert not stores  # v1 knows no object storage
    else:
        assert stores
        assert len(stores) < len(repositories)  # some on disk
    # `object_storage` on every version: v8's own object, v6/v7's read once each, None on disk.
    assert {r for r, found in storages.items() if found is not None} == set(stores)
    read = {path: n for (method, path), n in storage_requests.items() if "objectstorage" in path}
    if version in ("v6", "v7"):
        assert read == {f"/{version}/objectstoragerepositories/{stores[r]}": 1 for r in stores}
        for repository_id, found in storages.items():
            if found is None:
                continue
            sent = simulator.object_storage_wire(str(stores[repository_id]), version=version)
            assert isinstance(found, ObjectStorage)
            assert found.id == sent["id"] == stores[repository_id]
            assert found.type == ObjectStorageType(sent["type"])
            assert (found.name, found.used_space_bytes) == (sent["name"], sent["usedSpaceBytes"])
            assert found.enable_immutability is (None if version == "v6" else sent["enableImmutability"])
    else:
        assert read == {}  # v8 holds it in the repository; v1 and disks have none
        assert storages == {r.id: r.object_storage for r in repositories.values()}
    for repository_id, store in stores.items():
        wire = simulator.repository_wire(repository_id, version=version)
        if isinstance(store, ObjectStorage):
            sent = wire["objectStorage"]
            assert store.id == sent["id"]
            assert store.type == ObjectStorageType(sent["type"])
            assert store.type.is_known
            assert store.used_space_bytes == sent["usedSpaceBytes"] > 0
            assert store.size_limit_gb == sent["sizeLimitGB"]
            assert store.size_limit_enabled is (sent["sizeLimitGB"] is not None)
            assert repositories[repository_id].object_storage_id is None
        else:
            assert store == wire["objectStorageId"]
            assert repositories[repository_id].object_storage_cache_path == wire["path"]
            assert repositories[repository_id].object_storage is None
    for proxy in proxies:
        wire = simulator.proxy_wire(proxy.id, version=version)
        if version == "v8":
            assert proxy.roles == tuple(ProxyRole(role) for role in wire["role"])
            assert ProxyRole.PROCESSOR in proxy.roles
            assert proxy.service_account == wire["serviceAccount"]
            assert proxy.use_internet_proxy is False
        else:
            assert (proxy.roles, proxy.service_account, proxy.proxy_pool_id) == (None, None, None)
            assert proxy.use_internet_proxy is (None if version == "v1" else False)
    for session in sessions:
        wire = simulator.session_wire(session.id, version=version)
        if version == "v8":
            assert (session.proxy_id, session.proxy_pool_id, session.e_tag) == (
                wire["proxyId"],
                wire["proxyPoolId"],
                wire["eTag"],
            )
            assert session.e_tag is not None
            assert session.proxy_id or session.proxy_pool_id
        else:
            assert (session.proxy_id, session.proxy_pool_id, session.e_tag) == (None, None, None)


@pytest.mark.parametrize("version", ["v6", "v7", "v8"])
async def test_a_job_s_proxy_shares_the_repository_request_with_its_repository_link(version: str) -> None:
    # Issue 10: v6+ ``job.links.proxy`` fetches the job's repository, shared with
    # ``job.links.repository``: awaited together, the repository is asked for once.
    simulator = make_simulator()
    app = create_app(simulator=simulator)

    async def suspending(scope: Any, receive: Any, send: Any) -> None:
        # Every answer after a suspension: the two requests are in flight together even when an
        # eager task factory runs the first to its end inside create_task (an in-memory app
        # need never suspend), as they are over a network.
        await asyncio.sleep(0)
        await app(scope, receive, send)

    async with client(suspending, version) as vbo:
        jobs = await vbo.jobs()
        job = next(j for j in jobs if j.repository_id not in pooled_repositories(simulator))
        simulator.reset_stats()
        repository, proxy = await asyncio.gather(job.links.repository, job.links.proxy)
    assert isinstance(repository, BackupRepository)
    assert isinstance(proxy, Proxy)
    assert repository.id == job.repository_id
    assert proxy.id == simulator.repository_wire(repository.id, version=version)["proxyId"]
    gets = {path: n for (method, path), n in simulator.stats.by_endpoint.items() if method == "GET"}
    assert gets == {
        f"/{version}/backuprepositories/{repository.id}": 1,
        f"/{version}/proxies/{proxy.id}": 1,
    }


@pytest.mark.parametrize("version", ["v6", "v7", "v8"])
async def test_a_session_s_log_link_gives_every_item_of_its_pages(version: str) -> None:
    """A session's ``log`` link names a paged list (``LogItems``, 30 items by default): awaiting
    it gives every item, as raw JSON, asked for 10,000 at a time and every page followed, as any
    list is, not the first page's object cut at 30."""
    simulator = make_simulator(mailboxes_per_job=(31, 40))
    async with client(create_app(simulator=simulator), version) as vbo:
        job = (await vbo.jobs())[0]
        session = next(s for s in await vbo.job_sessions(job, limit=None) if s.end_time is not None)
        assert session.links.log is not None
        log = await session.links.log
        streamed = [item async for item in session.links.require("log")]
    expected = items(simulator.log_items_wire(session.id, version=version, limit=10_000))
    assert len(expected) > 30
    assert log == streamed == expected


async def test_a_v1_session_s_log_link_is_served() -> None:
    """v1 links each session's log at ``/JobSessions/{id}/log`` (vbo-api.md §2.3; its shape is
    unconfirmed, a bare array of log items here): awaiting it gives the run's log, the last
    item of a finished run saying how it ended, never a 404 for a link the simulator wrote."""
    simulator = make_simulator()
    async with client(create_app(simulator=simulator), "v1") as vbo:
        sessions = [s for job in await vbo.jobs() for s in await vbo.job_sessions(job, limit=None)]
        assert sessions
        for session in sessions:
            log = await session.links.require("log")
            assert log == simulator.log_items_wire(session.id, version="v1")
            assert log[0]["title"] == "Job started"
            if session.end_time is not None:
                assert str(log[-1]["title"]).startswith(f"[{session.status}]")
    logs = [path for (_, path) in simulator.stats.by_endpoint if path.endswith("/log")]
    assert len(logs) == len(sessions)


async def test_job_sessions_by_link_and_by_call(vbo: VBOClient, simulator: Simulator, mode: str) -> None:
    jobs = await vbo.jobs()
    version = version_of(vbo)
    checked = 0
    for job in jobs:
        expected = [wire["id"] for wire in sessions_wire(simulator, job.id, version)]
        assert job.links.jobsessions is not None
        by_link = await job.links.jobsessions
        everything = await vbo.job_sessions(job, limit=None)
        newest = await vbo.job_sessions(job.id, limit=5)
        assert [s.id for s in everything] == expected  # newest first, as the server lists them
        assert sorted(s.id for s in by_link) == sorted(expected)
        assert [s.id for s in newest] == expected[:5]
        assert all(s.job_id == job.id for s in [*by_link, *everything, *newest])
        times = [s.creation_time for s in everything]
        assert times == sorted(times, reverse=True)  # type: ignore[type-var]
        checked += bool(expected)
    assert checked >= 5
    # v7 and v8 jobs link to /Jobs/{id}/jobsessions, which they do not serve: never asked.
    dead = [path for (_, path) in simulator.stats.by_endpoint if path.endswith("/jobsessions")]
    if version in ("v7", "v8"):
        assert all(path == f"/{version}/jobsessions" for path in dead)
        assert simulator.stats.by_endpoint[("GET", f"/{version}/jobsessions")] == 3 * len(jobs)
    else:
        assert dead
        assert all(path.startswith(f"/{version}/jobs/") for path in dead)
    assert all(path.startswith(f"/{version}/") for (_, path) in simulator.stats.by_endpoint)


async def test_v8_next_links_naming_v7_are_followed_with_v7_s_dialect() -> None:
    simulator = make_simulator(sessions_per_job=(8, 12))
    async with client(create_app(simulator=simulator), "v8") as vbo:
        (job, *_) = [job for job in await vbo.jobs() if job.last_run is not None]
        all_at_once = await vbo.job_sessions(job, limit=None)
        assert len(all_at_once) >= 8
        simulator.reset_stats()
        small_pages = CollectionLink(
            f"/v8/JobSessions?jobId={job.id}&limit=3", "jobsessions", None, JobSession
        )
        paged = await vbo.follow(small_pages)
    assert [s.id for s in paged] == [s.id for s in all_at_once]
    assert all(s.job_id == job.id for s in paged)  # v7 has no jobId: from the request's ?jobId=
    pages = -(-len(paged) // 3)
    assert simulator.stats.by_endpoint[("GET", "/v8/jobsessions")] == 1
    assert simulator.stats.by_endpoint[("GET", "/v7/jobsessions")] == pages - 1
    # The first page is v8's (with jobSessionConfigType), the others v7's (without).
    assert all(s.job_session_config_type is not None for s in paged[:3])
    assert all(s.job_session_config_type is None for s in paged[3:])
    assert paged[:3] == all_at_once[:3]
    assert [s.links.self.href.split("/")[1] for s in paged if s.links.self] == ["v8"] * 3 + ["v7"] * (
        len(paged) - 3
    )


# --- job actions ---------------------------------------------------------------------------------------


def idle_enabled_job(simulator: Simulator) -> str:
    for job_id in simulator.job_ids():
        wire = simulator.job_wire(job_id, version="v8")
        if wire["isEnabled"] and wire["lastStatus"] != "Running":
            return job_id
    raise AssertionError("no idle enabled job")


async def test_job_actions_change_the_state(vbo: VBOClient, simulator: Simulator, mode: str) -> None:
    job_id = idle_enabled_job(simulator)
    before = await vbo.job_sessions(job_id, limit=None)
    started = await vbo.start_job(job_id)
    version = version_of(vbo)
    newest = (await vbo.job_sessions(job_id, limit=1))[0]
    assert newest.id not in {s.id for s in before}
    assert newest.status is JobStatus.RUNNING
    assert newest.job_id == job_id
    if version == "v8":
        assert isinstance(started, JobSession)
        assert started.id == newest.id
        assert started.status is JobStatus.RUNNING
        assert started.job_id == job_id
    else:
        assert started is None
    assert (await vbo.job(job_id)).last_status is JobStatus.RUNNING
    await vbo.stop_job(job_id)
    assert (await vbo.job(job_id)).last_status is JobStatus.STOPPED
    assert (await vbo.job_sessions(job_id, limit=1))[0].status is JobStatus.STOPPED
    await vbo.disable_job(job_id)
    disabled = await vbo.job(job_id)
    assert disabled.is_enabled is False
    assert disabled.next_run is None
    await vbo.enable_job(job_id)
    assert (await vbo.job(job_id)).is_enabled is True
    assert {
        action: simulator.stats.job_actions[(job_id, action)]
        for action in ("start", "stop", "enable", "disable")
    } == {
        "start": 1,
        "stop": 1,
        "enable": 1,
        "disable": 1,
    }


def answering_500_to_posts(app: Any) -> Callable[..., Awaitable[None]]:
    """An ASGI app that lets ``app`` handle every request (so a job action is applied) but
    answers every POST below ``/Jobs/`` with 500, the worst case for a non-idempotent call."""

    async def wrapper(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or "/jobs/" not in scope["path"].lower():
            await app(scope, receive, send)
            return

        async def swallow(message: dict[str, Any]) -> None:
            pass

        await app(scope, receive, swallow)
        body = b'{"message": "An error has occurred."}'
        await send(
            {
                "type": "http.response.start",
                "status": 500,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return wrapper


async def test_a_job_action_is_sent_once_even_when_answered_500(simulator: Simulator, mode: str) -> None:
    job_id = idle_enabled_job(simulator)
    async with client(answering_500_to_posts(create_app(simulator=simulator)), mode) as vbo:
        await vbo.jobs()  # the version is known and a token held
        sent = vbo.requests_sent
        with pytest.raises(ServerError) as caught:
            await vbo.start_job(job_id)
        assert caught.value.status_code == 500
        assert vbo.requests_sent == sent + 1
        version = version_of(vbo)
        with pytest.raises(ServerError):
            await vbo.disable_job(job_id)
    path = f"/v1/jobs/{job_id}/action" if version == "v1" else f"/{version}/jobs/{job_id}/start"
    assert simulator.stats.by_endpoint[("POST", path)] == 1 + (version == "v1")
    assert simulator.stats.job_actions[(job_id, "start")] == 1
    assert simulator.stats.job_actions[(job_id, "disable")] == 1


# --- polling a mix of servers -----------------------------------------------------------------------


async def test_poll_jobs_over_a_v1_and_a_v8_server() -> None:
    old, new = make_simulator(seed=31), make_simulator(seed=32)
    pooled = pooled_repositories(new)
    async with (
        client(create_app(simulator=old), "v1") as v1,
        client(create_app(simulator=new), "auto") as v8,
    ):
        targets = [
            PollTarget(client=v1, organization_id=org, name=f"old {org}") for org in old.organization_ids()
        ]
        targets += [
            PollTarget(client=v8, organization_id=org, name=f"new {org}") for org in new.organization_ids()
        ]
        old.reset_stats()
        new.reset_stats()
        results = []
        async with poll_jobs(targets, concurrency=4, follow=("repository", "proxy")) as sweep:
            async for result in sweep:
                results.append(result)
        assert v8.api_version == "v8"
    assert len(results) == len(targets)
    assert all(result.error is None for result in results)
    jobs = [job for result in results for job in result.jobs]
    assert {type(job) for job in jobs} == {Job}
    assert len(jobs) == len(old.job_ids()) + len(new.job_ids())

    pool_errors = 0
    for result in results:
        server = old if result.target.client is v1 else new
        version = "v1" if server is old else "v8"
        for job in result.jobs:
            repository = result.resolved(job, "repository")
            assert isinstance(repository, BackupRepository)
            assert repository.id == job.repository_id
            if version == "v8" and job.repository_id in pooled:
                error = result.link_errors[(job.id, "proxy")]
                assert isinstance(error, LinkError)
                assert error.relation == "proxy"
                assert result.resolved(job, "proxy") is None
                pool_errors += 1
                continue
            proxy = result.resolved(job, "proxy")
            assert isinstance(proxy, Proxy)
            assert (job.id, "proxy") not in result.link_errors
            wire = server.repository_wire(repository.id, version=version)
            if version == "v8":
                assert proxy.id == wire["proxyId"]
    assert pool_errors > 0
    # Each repository once per server, though both relations of every job need it (v8 proxies go
    # through the repository); each proxy once.
    for server, vbo in ((old, v1), (new, v8)):
        used = {job.repository_id for r in results if r.target.client is vbo for job in r.jobs}
        counts = server.stats.by_endpoint
        repo_gets = {path: n for (_, path), n in counts.items() if "/backuprepositories/" in path}
        assert {path.rpartition("/")[2] for path in repo_gets} == used
        assert all(n == 1 for n in repo_gets.values()), repo_gets
        proxy_gets = {path: n for (_, path), n in counts.items() if "/proxies/" in path}
        assert proxy_gets
        assert all(n == 1 for n in proxy_gets.values()), proxy_gets


# --- over a real socket ----------------------------------------------------------------------------------


async def test_auto_over_a_real_socket() -> None:
    simulator = make_simulator(organizations=3)
    async with serve(create_app(simulator=simulator)) as port:
        base = f"http://127.0.0.1:{port}"
        async with VBOClient(base, username="admin", password="admin", retry=NO_WAIT) as vbo:
            assert vbo.api_version is None
            assert vbo.api_root is None
            jobs = await check_listing(vbo, simulator)
            assert vbo.api_version == "v8"
            assert vbo.api_root == f"{base}/v8"
            job = jobs[0]
            repository = await job.links.repository
            assert repository.id == job.repository_id
            sessions = await vbo.job_sessions(job, limit=3)
            assert all(s.job_id == job.id for s in sessions)
            assert job.links.self is not None
            assert job.links.self.url.startswith(f"{base}/v8/Jobs/")
    assert simulator.stats.token_requests_by_version == {("v8", "password"): 1}
    assert simulator.stats.logouts == {"v8": 1}


@pytest.mark.parametrize("version", ["v1", "v6", "v7", "v8"])
async def test_an_organization_s_directory_links_are_served(version: str) -> None:
    """``users``, ``groups``, ``sites`` and ``teams`` (v6+; v1's organizations have none) name
    the vendor's pages ``/Organizations/{id}/Users`` etc.: awaiting each gives every item, as the
    simulator lists them, the same on every run of a seed, at least one of each."""
    simulator = make_simulator()
    async with client(create_app(simulator=simulator), version) as vbo:
        orgs = await vbo.organizations()
        if version == "v1":
            assert all(org.links.users is None and org.links.teams is None for org in orgs)
            return
        seen: dict[str, set[str]] = {}
        for org in orgs:
            for relation in ("users", "groups", "sites", "teams"):
                link = getattr(org.links, relation)
                assert link is not None, relation
                assert link.href.lower() == f"/{version}/organizations/{org.id}/{relation}".lower()
                listed = await link
                streamed = [item async for item in org.links.require(relation)]
                wire = simulator.directory_wire(org.id, relation, version=version, limit=10_000)
                assert listed == streamed == wire["results"]
                assert listed, (org.id, relation)
                ids = {item["id"] for item in listed}  # type: ignore[index]
                assert len(ids) == len(listed)
                assert not ids & seen.get(relation, set())  # each tenant its own
                seen.setdefault(relation, set()).update(ids)
    again = make_simulator()
    first = simulator.organization_ids()[0]
    for relation in ("users", "groups", "sites", "teams"):
        wire = simulator.directory_wire(first, relation, version=version, limit=10_000)
        assert again.directory_wire(first, relation, version=version, limit=10_000) == wire


@pytest.mark.parametrize("version", ["v6", "v7", "v8"])
async def test_a_job_s_copy_job_link_is_served(version: str) -> None:
    """A job with a backup copy job links ``copyJob`` to ``/CopyJobs/{id}`` (a ``RESTCopyJob``
    naming the job as ``backupJobId``); jobs without one send no such link."""
    simulator = make_simulator(organizations=8)
    async with client(create_app(simulator=simulator), version) as vbo:
        jobs = await vbo.jobs()
        copied = [job for job in jobs if job.links.copy_job is not None]
        assert copied
        assert len(copied) < len(jobs)
        for job in copied:
            copy = await job.links.require("copy_job")
            assert isinstance(copy, dict)
            assert copy["backupJobId"] == job.id
            assert job.links.require("copy_job").href.lower().endswith(f"/copyjobs/{copy['id']}")


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_job_named_in_another_guid_spelling_owns_its_sessions_and_links(version: str) -> None:
    """A job built with its id in another of .NET's GUID spellings (``{...}``, as a script or a
    config file may hold it) is the job the server lists: requests ask for its sessions by the
    server's spelling, and the client kept none of the answer (compared by text, no session was
    that job's): its health said "never run", `recent_sessions` filed them under the server's
    spelling, and a sweep's `PollResult.resolved` found none of its links."""
    simulator = make_simulator()
    async with client(create_app(simulator=simulator), version) as vbo:
        run = [job for job in await vbo.jobs() if await vbo.job_sessions(job, limit=1)]
        listed = run[0]
        braced = attrs.evolve(listed, id="{" + listed.id.upper() + "}")
        plain, spelled = await vbo.job_health(listed), await vbo.job_health(braced)
        assert plain.last_session is not None
        assert spelled.last_session == plain.last_session
        assert (spelled.state, spelled.reason) == (plain.state, plain.reason)
        since = EPOCH - dt.timedelta(days=3650)
        filed = await vbo.recent_sessions(since, jobs=[braced])  # v6+: every job's, the given one's as given
        assert braced.id in filed
        assert listed.id not in filed
        assert listed.organization_id is not None
        target = PollTarget(client=vbo, organization_id=listed.organization_id)
        async with poll_jobs([target], follow=("repository",)) as sweep:
            (result,) = [result async for result in sweep]
    owner = next(job for job in result.jobs if job.id.lower() == listed.id.lower())
    assert result.resolved(owner.id, "repository") is not None
    assert result.resolved(braced.id, "repository") == result.resolved(owner.id, "repository")
