"""The client against the simulator, in-process and over real loopback sockets (plain and TLS).

Everything the client returns is compared with the simulator's own wire data (``Simulator.*_wire``),
read independently of the client's decoder: ids, names, statuses, string booleans, timestamps and the
hrefs of every link. The client's base URL is never the host the simulator writes into its hrefs, so
every link followed has been rebased. Fault-injected runs still return every job.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest

from vbo_async import (
    APIError,
    BackupRepository,
    DecodeError,
    Job,
    JobSession,
    JobStatus,
    Organization,
    Proxy,
    RetryPolicy,
    SelectedMailbox,
    ServerError,
    TransportError,
    VBOClient,
)
from vbo_async._auth import UNREADABLE_REST
from vbo_async.simulator import Faults, Simulator, SimulatorConfig, create_app, make_tls_material

from .conftest import serve

BASE = "https://vbo.test:4443"
"""Where in-process clients think the server is; the simulator advertises another host."""
ADVERTISED = "https://vbo-sim.east.local:4443/v1/"
NO_WAIT = RetryPolicy(attempts=8, wait_initial=0, wait_max=0.01, wait_jitter=0, max_retry_after=0)
FINISHED = {JobStatus.SUCCESS, JobStatus.WARNING, JobStatus.FAILED}


class FakeClock:
    """A hand-driven clock: job runs end when the test says so, not when time passes."""

    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# --- reading the wire independently of the client's decoder ---------------------------------------


def when(text: str | None) -> dt.datetime | None:
    """A wire timestamp as a datetime (7 fractional digits truncated to 6; zone-less read as UTC)."""
    if text is None:
        return None
    value = dt.datetime.fromisoformat(text)
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def flag(text: str | None) -> bool | None:
    """A v1 string boolean."""
    return None if text is None else {"true": True, "false": False}[text]


def clock_time(text: str | None) -> dt.time | None:
    return None if text is None else dt.time.fromisoformat(text)


def hrefs(links: Any) -> dict[str, str]:
    """The hrefs of a model's ``links``, keyed by the wire relation names."""
    wire_names = {"selected_mailboxes": "selectedMailboxes"}
    return {
        wire_names.get(field.name, field.name): getattr(links, field.name).href
        for field in attrs.fields(type(links))
        if getattr(links, field.name) is not None
    }


def wire_hrefs(wire: dict[str, Any]) -> dict[str, str]:
    return {relation: link["href"] for relation, link in wire["_links"].items()}


def check_organization(org: Organization, wire: dict[str, Any]) -> None:
    assert org.id == wire["id"]
    assert org.name == wire["name"]
    assert org.type == wire["type"]
    assert org.username == wire["username"]
    assert org.region == wire["region"]
    assert org.is_backedup is flag(wire["isBackedup"])
    assert org.first_backuptime == when(wire["firstBackuptime"])
    assert org.last_backuptime == when(wire["lastBackuptime"])
    assert hrefs(org.links) == wire_hrefs(wire)


def check_job(job: Job, wire: dict[str, Any]) -> None:
    assert job.id == wire["id"]
    assert job.name == wire["name"]
    assert job.description == wire["description"]
    assert job.all_mailboxes is flag(wire["allMailboxes"])
    assert job.is_enabled is flag(wire["isEnabled"])
    assert job.last_status == wire["lastStatus"]
    assert job.last_run == when(wire["lastRun"])
    assert job.next_run == when(wire["nextRun"])
    policy, expected = job.schedule_policy, wire["schedulePolicy"]
    assert policy is not None
    assert policy.type == expected["type"]
    assert policy.periodically_every == expected["periodicallyEvery"]
    assert policy.daily_type == expected["dailyType"]
    assert policy.daily_time == clock_time(expected["dailyTime"])
    assert policy.retry_enabled is flag(expected["retryEnabled"])
    assert policy.retry_number == expected["retryNumber"]
    assert policy.retry_wait_interval == expected["retryWaitInterval"]
    assert policy.backup_window is not None
    window = expected["backupWindow"]
    assert list(policy.backup_window.backup_intervals_array) == window["backupIntervalsArray"]
    assert policy.backup_window.minute_offset == window["minuteOffset"]
    assert hrefs(job.links) == wire_hrefs(wire)


def check_session(session: JobSession, wire: dict[str, Any]) -> None:
    assert session.id == wire["id"]
    assert session.creation_time == when(wire["creationTime"])
    assert session.end_time == when(wire["endTime"])
    assert session.progress == wire["progress"]
    assert session.status == wire["status"]
    assert session.statistics is not None
    statistics = wire["statistics"]
    assert session.statistics.processed_objects == statistics["processedObjects"]
    assert session.statistics.transferred_data == statistics["transferredData"]
    assert session.statistics.processing_rate == statistics["processingRate"]
    assert session.statistics.bottleneck == statistics["bottleneck"]
    assert hrefs(session.links) == wire_hrefs(wire)


def check_repository(repository: BackupRepository, wire: dict[str, Any]) -> None:
    assert repository.id == wire["id"]
    assert repository.name == wire["name"]
    assert repository.proxy_id == wire["proxyId"]
    assert repository.path == wire["path"]
    assert repository.daily_retention_period == int(wire["dailyRetentionPeriod"])
    assert repository.daily_time == clock_time(wire["dailyTime"])
    assert repository.capacity == wire["capacity"]
    assert repository.free_space == wire["freeSpace"]
    assert hrefs(repository.links) == wire_hrefs(wire)


def check_proxy(proxy: Proxy, wire: dict[str, Any]) -> None:
    assert proxy.id == wire["id"]
    assert proxy.host_name == wire["hostName"]
    assert proxy.port == wire["port"]
    assert proxy.threads_number == wire["threadsNumber"]
    assert proxy.enable_network_throttling is flag(wire["enableNetworkthrottling"])
    assert proxy.status == wire["status"]
    assert hrefs(proxy.links) == wire_hrefs(wire)


def check_mailbox(mailbox: SelectedMailbox, wire: dict[str, Any]) -> None:
    assert mailbox.id == wire["id"]
    assert mailbox.email == wire["email"]
    assert mailbox.name == wire["name"]
    assert mailbox.is_backed_up is flag(wire["isBackedUp"])
    assert hrefs(mailbox.links) == wire_hrefs(wire)


def last_segment(href: str) -> str:
    return href.rstrip("/").rsplit("/", 1)[1]


def pages(count: int, page_size: int) -> int:
    """How many GETs a paged collection of ``count`` items takes."""
    return max(1, math.ceil(count / page_size))


# --- the shared comparisons ------------------------------------------------------------------------


async def check_every_organization_and_job(vbo: VBOClient, simulator: Simulator) -> None:
    organizations = await vbo.organizations()
    wires = simulator.organizations_wire()
    assert [org.id for org in organizations] == simulator.organization_ids()
    for org, wire in zip(organizations, wires, strict=True):
        check_organization(org, wire)
        jobs = await vbo.organization_jobs(org.id)
        job_wires = simulator.jobs_wire(org.id)
        assert [job.id for job in jobs] == [w["id"] for w in job_wires]
        for job, job_wire in zip(jobs, job_wires, strict=True):
            check_job(job, job_wire)
    every_job = await vbo.jobs()
    assert [job.id for job in every_job] == simulator.job_ids()


async def check_every_link(vbo: VBOClient, simulator: Simulator, job: Job) -> None:
    """Follow each link of ``job`` and compare with the simulator; counts the paged GETs."""
    wire = simulator.job_wire(job.id)
    links = job.links
    for link in (links.self, links.organization, links.repository, links.proxy):
        assert link is not None
        assert link.href.startswith(ADVERTISED)
        assert link.url.startswith(vbo.api_root + "/")  # rebased onto the client's base URL
        assert link.url.removeprefix(vbo.api_root) == link.href.removeprefix(ADVERTISED[:-1])

    assert links.self is not None
    check_job(await links.self, wire)
    assert links.organization is not None
    organization = await links.organization
    check_organization(
        organization, simulator.organization_wire(last_segment(wire["_links"]["organization"]["href"]))
    )
    assert links.repository is not None
    repository = await links.repository
    check_repository(
        repository, simulator.repository_wire(last_segment(wire["_links"]["repository"]["href"]))
    )
    assert links.proxy is not None
    proxy = await links.proxy
    check_proxy(proxy, simulator.proxy_wire(last_segment(wire["_links"]["proxy"]["href"])))

    page_size = simulator.config.page_size
    sessions_path = ("GET", f"/v1/jobs/{job.id.lower()}/jobsessions")
    mailboxes_path = ("GET", f"/v1/jobs/{job.id.lower()}/selectedmailboxes")
    session_wires = simulator.job_sessions_wire(job.id)
    mailbox_wires = simulator.selected_mailboxes_wire(job.id)

    assert links.selected_mailboxes is not None
    before = simulator.stats.by_endpoint[mailboxes_path]
    mailboxes = await links.selected_mailboxes
    assert simulator.stats.by_endpoint[mailboxes_path] - before == pages(len(mailbox_wires), page_size)
    assert [m.id for m in mailboxes] == [w["id"] for w in mailbox_wires]
    for mailbox, mailbox_wire in zip(mailboxes, mailbox_wires, strict=True):
        check_mailbox(mailbox, mailbox_wire)

    assert links.jobsessions is not None
    before = simulator.stats.by_endpoint[sessions_path]
    sessions = await links.jobsessions
    assert simulator.stats.by_endpoint[sessions_path] - before == pages(len(session_wires), page_size)
    assert [s.id for s in sessions] == [w["id"] for w in session_wires]
    for session, session_wire in zip(sessions, session_wires, strict=True):
        check_session(session, session_wire)
    streamed = [session async for session in links.jobsessions]
    assert streamed == sessions


# --- in-process ------------------------------------------------------------------------------------


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def simulator(clock: FakeClock) -> Simulator:
    # A small page size, so sessions and selected mailboxes take several pages.
    return Simulator(SimulatorConfig(seed=41, organizations=6, page_size=8), clock=clock)


@pytest.fixture
async def vbo(simulator: Simulator) -> AsyncIterator[VBOClient]:
    transport = httpx.ASGITransport(app=create_app(simulator=simulator))
    async with VBOClient(
        BASE, username="admin", password="admin", transport=transport, retry=NO_WAIT, api_version="v1"
    ) as client:
        yield client


async def test_every_organization_and_job_matches_the_simulator(vbo: VBOClient, simulator: Simulator) -> None:
    await check_every_organization_and_job(vbo, simulator)
    assert simulator.stats.token_requests == {"password": 1}
    assert simulator.stats.unauthorized == 0


async def test_every_link_of_every_job_matches_the_simulator(vbo: VBOClient, simulator: Simulator) -> None:
    jobs = await vbo.jobs()
    assert len(jobs) == len(simulator.job_ids()) > 10
    # The data has multi-page collections and empty ones, so both paths are exercised.
    counts = [len(simulator.job_sessions_wire(job.id)) for job in jobs]
    assert max(counts) > 2 * simulator.config.page_size
    assert min(counts) == 0
    assert (
        max(len(simulator.selected_mailboxes_wire(job.id)) for job in jobs) > 2 * simulator.config.page_size
    )
    for job in jobs:
        await check_every_link(vbo, simulator, job)


async def test_a_selected_mailbox_links_to_its_organization(vbo: VBOClient, simulator: Simulator) -> None:
    job_id = next(j for j in simulator.job_ids() if simulator.selected_mailboxes_wire(j))
    job = await vbo.job(job_id)
    assert job.links.selected_mailboxes is not None
    mailbox = (await job.links.selected_mailboxes)[0]
    assert mailbox.links.self is not None
    assert mailbox.links.organization is not None
    check_mailbox(await mailbox.links.self, simulator.selected_mailboxes_wire(job_id)[0])
    organization = await mailbox.links.organization
    assert job.links.organization is not None
    assert organization == await job.links.organization


async def test_start_runs_a_session_that_finishes_on_the_clock(
    vbo: VBOClient, simulator: Simulator, clock: FakeClock
) -> None:
    job_id = next(
        j["id"] for j in simulator.jobs_wire() if j["isEnabled"] == "true" and j["lastStatus"] != "Running"
    )
    action = ("POST", f"/v1/jobs/{job_id.lower()}/action")
    job = await vbo.job(job_id)
    assert job.links.jobsessions is not None
    before = [s.id for s in await job.links.jobsessions]

    await vbo.start_job(job)

    running = await vbo.job(job_id)
    assert running.last_status == JobStatus.RUNNING
    assert running.links.jobsessions is not None
    sessions = await running.links.jobsessions
    assert [s.id for s in sessions[1:]] == before
    new = sessions[0]
    assert new.id not in before
    assert new.status == JobStatus.RUNNING
    assert new.end_time is None
    assert running.last_run == new.creation_time
    check_session(new, simulator.session_wire(new.id))

    # A second start is refused by the server and sent exactly once.
    with pytest.raises(APIError) as info:
        await vbo.start_job(job_id)
    assert info.value.status_code == 400
    assert "already running" in info.value.message
    assert info.value.method == "POST"
    assert simulator.stats.by_endpoint[action] == 2
    assert simulator.stats.job_actions[(job_id, "start")] == 1

    clock.advance(simulator.config.session_duration)
    finished = await vbo.job(job_id)
    assert finished.last_status in FINISHED
    ended = await vbo.job_session(new.id)
    assert ended.status == finished.last_status
    assert ended.end_time is not None
    assert new.creation_time is not None
    assert ended.end_time > new.creation_time
    check_session(ended, simulator.session_wire(new.id))
    check_job(finished, simulator.job_wire(job_id))
    assert simulator.stats.job_actions[(job_id, "start")] == 1


async def test_stop_enable_and_disable_are_reflected_in_the_job(vbo: VBOClient, simulator: Simulator) -> None:
    job_id = next(
        j["id"] for j in simulator.jobs_wire() if j["isEnabled"] == "true" and j["lastStatus"] != "Running"
    )
    with pytest.raises(APIError) as idle:
        await vbo.stop_job(job_id)
    assert idle.value.status_code == 400
    assert simulator.stats.job_actions[(job_id, "stop")] == 0

    await vbo.start_job(job_id)
    await vbo.stop_job(job_id)
    stopped = await vbo.job(job_id)
    assert stopped.last_status == JobStatus.STOPPED
    assert stopped.links.jobsessions is not None
    latest = (await stopped.links.jobsessions)[0]
    assert latest.status == JobStatus.STOPPED
    assert latest.end_time is not None

    await vbo.disable_job(stopped)
    disabled = await vbo.job(job_id)
    assert disabled.is_enabled is False
    assert disabled.next_run is None
    with pytest.raises(APIError) as refused:
        await vbo.start_job(job_id)
    assert refused.value.status_code == 400
    assert "disabled" in refused.value.message

    await vbo.enable_job(job_id)
    enabled = await vbo.job(job_id)
    assert enabled.is_enabled is True
    assert enabled.next_run is not None
    check_job(enabled, simulator.job_wire(job_id))
    assert simulator.stats.job_actions == {
        (job_id, "start"): 1,
        (job_id, "stop"): 1,
        (job_id, "disable"): 1,
        (job_id, "enable"): 1,
    }
    # Two refusals and four applied actions: six requests, none of them repeated.
    assert simulator.stats.by_endpoint[("POST", f"/v1/jobs/{job_id.lower()}/action")] == 6


async def test_a_failed_start_is_never_sent_twice(vbo: VBOClient, simulator: Simulator) -> None:
    job_id = next(
        j["id"] for j in simulator.jobs_wire() if j["isEnabled"] == "true" and j["lastStatus"] != "Running"
    )
    action = ("POST", f"/v1/jobs/{job_id.lower()}/action")
    await vbo.job(job_id)  # the token first: the faults below would spoil the token request too
    healthy = simulator.config

    simulator.config = attrs.evolve(healthy, faults=Faults(error_rate=1.0))
    with pytest.raises(ServerError):
        await vbo.start_job(job_id)
    assert simulator.stats.by_endpoint[action] == 1
    assert simulator.stats.job_actions[(job_id, "start")] == 0

    # A dropped answer after the server acted: the start happened once and is not repeated.
    simulator.config = attrs.evolve(healthy, faults=Faults(drop_rate=1.0))
    with pytest.raises(TransportError):
        await vbo.start_job(job_id)
    assert simulator.stats.by_endpoint[action] == 2
    assert simulator.stats.job_actions[(job_id, "start")] == 1

    simulator.config = healthy
    assert (await vbo.job(job_id)).last_status == JobStatus.RUNNING


# --- faults ----------------------------------------------------------------------------------------


def faults(*, latency: float, revoke_every: float) -> Faults:
    """A quarter of the attempts spoiled (500/502/503, 429, dropped, truncated), every answer delayed
    by ``latency`` and every token revoked each ``revoke_every`` seconds.

    The client below makes its requests one after another, so a run of N requests lasts at least
    N x ``latency``: with more than ``revoke_every / latency`` requests, tokens are surely revoked
    mid-run. ``revoke_every`` stays far above the few requests a renewal and its replay take.
    """
    return Faults(
        error_rate=0.1,
        rate_limit_rate=0.05,
        retry_after=0,  # nothing sleeps (one past max_retry_after=0 would not be retried at all)
        drop_rate=0.05,
        truncate_rate=0.05,
        revoke_every=revoke_every,
        latency=latency,
        fault_seed=20,
    )


FAULT_RETRY = RetryPolicy(attempts=12, wait_initial=0, wait_max=0.01, wait_jitter=0, max_retry_after=0)
"""Twelve tries: with a quarter of the attempts spoiled, eight would fail one request in ~65000, and
each run makes a few hundred requests; twelve make that one in ~17 million."""


async def fetch_every_job(vbo: VBOClient, simulator: Simulator) -> None:
    """List every job of every organization, one request at a time, following each job's repository
    link, and compare everything with the simulator."""
    organizations = await vbo.organizations()
    assert [org.id for org in organizations] == simulator.organization_ids()
    seen = 0
    for org in organizations:
        jobs = await vbo.organization_jobs(org)
        job_wires = simulator.jobs_wire(org.id)
        assert [job.id for job in jobs] == [w["id"] for w in job_wires]
        for job, wire in zip(jobs, job_wires, strict=True):
            check_job(job, wire)
            assert job.links.repository is not None
            repository_id = last_segment(wire["_links"]["repository"]["href"])
            check_repository(await job.links.repository, simulator.repository_wire(repository_id))
            seen += 1
    assert seen == len(simulator.job_ids())


def check_faults_were_injected(simulator: Simulator, vbo: VBOClient) -> None:
    faults = simulator.stats.faults
    config = simulator.config.faults
    assert config.revoke_every is not None
    data_requests = 1 + len(simulator.organization_ids()) + len(simulator.job_ids())
    assert data_requests * config.latency > 2 * config.revoke_every  # so revocations are certain
    assert faults["latency"] == simulator.stats.requests > data_requests
    assert faults["error"] + faults["rate_limit"] + faults["drop"] + faults["truncate"] > 0
    # Tokens were revoked mid-run, refused (401) and renewed, and the run carried on.
    assert faults["revoke"] >= 1
    assert simulator.stats.unauthorized >= 1
    assert vbo.token_requests >= 2
    assert sum(simulator.stats.token_requests.values()) >= vbo.token_requests


async def test_faults_in_process_every_job_still_returned() -> None:
    # 188 requests of at least 5 ms: revocations are certain. 0.4 s between two of them: a renewal
    # and its replay (about 15 ms) would have to be held up that long twice in a row to fail the
    # request (0.15 s was within what a loaded machine's stalls can take).
    config = SimulatorConfig(seed=43, organizations=40, faults=faults(latency=0.005, revoke_every=0.4))
    simulator = Simulator(config)
    transport = httpx.ASGITransport(app=create_app(simulator=simulator))
    async with VBOClient(
        BASE, username="admin", password="admin", transport=transport, retry=FAULT_RETRY, api_version="v1"
    ) as vbo:
        await fetch_every_job(vbo, simulator)
    check_faults_were_injected(simulator, vbo)
    # A few hundred attempts: each kind of fault is all but certain to have happened.
    assert min(simulator.stats.faults[kind] for kind in ("error", "rate_limit", "drop", "truncate")) > 0


async def test_malformed_bodies_are_decode_errors() -> None:
    simulator = Simulator(SimulatorConfig(seed=44, organizations=2, faults=Faults(malformed_rate=1.0)))
    transport = httpx.ASGITransport(app=create_app(simulator=simulator))
    async with VBOClient(
        BASE, username="admin", password="admin", transport=transport, retry=NO_WAIT, api_version="v1"
    ) as vbo:
        now = [1000.0]
        vbo._tokens._clock = lambda: now[0]
        # The token answer itself is not JSON.
        with pytest.raises(DecodeError) as token:
            await vbo.organizations()
        assert token.value.method == "POST"
        assert token.value.url == f"{BASE}/v1/Token"

        # With a token in hand (asked again after the rest), a job list that is not JSON: raised
        # once, not retried.
        malformed = simulator.config
        simulator.config = attrs.evolve(malformed, faults=Faults())
        now[0] += UNREADABLE_REST
        org_id = (await vbo.organizations())[0].id
        simulator.config = malformed
        with pytest.raises(DecodeError) as jobs:
            await vbo.organization_jobs(org_id)
        assert jobs.value.method == "GET"
        assert jobs.value.url == f"{BASE}/v1/Organizations/{org_id}/Jobs"
        assert simulator.stats.by_endpoint[("GET", f"/v1/organizations/{org_id}/jobs")] == 1
        assert simulator.stats.faults["malformed"] == 2

        # The client is still usable afterwards.
        simulator.config = attrs.evolve(malformed, faults=Faults())
        assert [j.id for j in await vbo.organization_jobs(org_id)] == [
            w["id"] for w in simulator.jobs_wire(org_id)
        ]


# --- over real loopback sockets --------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(server key + certificate chain in one PEM, CA bundle) from `make_tls_material`."""
    folder = tmp_path_factory.mktemp("simulator-tls")
    cert, key, ca = make_tls_material(folder)
    combined = folder / "server.pem"
    combined.write_bytes(key.read_bytes() + cert.read_bytes())
    return combined, ca


@pytest.fixture
def socket_simulator() -> Simulator:
    return Simulator(SimulatorConfig(seed=45, organizations=3, page_size=10))


async def test_over_plain_http(socket_simulator: Simulator) -> None:
    simulator = socket_simulator
    async with serve(create_app(simulator=simulator)) as port:
        base = f"http://127.0.0.1:{port}"
        async with VBOClient(
            base, username="admin", password="admin", retry=NO_WAIT, api_version="v1"
        ) as vbo:
            await check_every_organization_and_job(vbo, simulator)
            jobs = await vbo.organization_jobs(simulator.organization_ids()[0])
            for job in jobs:
                await check_every_link(vbo, simulator, job)
            assert all(job.links.self is not None and job.links.self.url.startswith(base) for job in jobs)
    assert simulator.stats.token_requests == {"password": 1}


async def test_over_https_with_the_simulator_ca(socket_simulator: Simulator, tls: tuple[Path, Path]) -> None:
    simulator = socket_simulator
    server_pem, ca = tls
    async with serve(create_app(simulator=simulator), certfile=server_pem) as port:
        base = f"https://127.0.0.1:{port}"
        async with VBOClient(
            base, username="admin", password="admin", verify=ca, retry=NO_WAIT, api_version="v1"
        ) as vbo:
            await check_every_organization_and_job(vbo, simulator)
            jobs = await vbo.organization_jobs(simulator.organization_ids()[-1])
            for job in jobs:
                await check_every_link(vbo, simulator, job)
            assert all(job.links.self is not None and job.links.self.url.startswith(base) for job in jobs)


async def test_https_is_refused_with_default_verification(
    socket_simulator: Simulator, tls: tuple[Path, Path]
) -> None:
    simulator = socket_simulator
    async with (
        serve(create_app(simulator=simulator), certfile=tls[0]) as port,
        VBOClient(
            f"https://127.0.0.1:{port}", username="admin", password="admin", retry=NO_WAIT, api_version="v1"
        ) as vbo,
    ):
        with pytest.raises(TransportError, match="certificate"):
            await vbo.organizations()
    assert simulator.stats.requests == 0  # nothing got past the handshake


async def test_faults_over_uvicorn_every_job_still_returned() -> None:
    # Fewer, slower requests over sockets; revocations further apart than a renewal and replay take.
    config = SimulatorConfig(seed=46, organizations=10, faults=faults(latency=0.02, revoke_every=0.5))
    simulator = Simulator(config)
    async with (
        serve(create_app(simulator=simulator)) as port,
        VBOClient(
            f"http://127.0.0.1:{port}",
            username="admin",
            password="admin",
            retry=FAULT_RETRY,
            api_version="v1",
        ) as vbo,
    ):
        await fetch_every_job(vbo, simulator)
    check_faults_were_injected(simulator, vbo)
