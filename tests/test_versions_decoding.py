"""Decoding v6, v7 and v8 answers into the one model graph, and back with ``to_wire``.

The reference note's examples (§6.1 job, §6.3 session, §6.5 organization, the §6.6/§6.7
repository and proxy fields), shaped per version as §7 says, decoded with
``from_wire(..., api_version=...)`` and through requests: every field a monitor reads, the
schedule windows (``backupWindowSettings``) with ``allows``/``allows_at``, the links each
version spells differently or sends dead, and a session's ``job_id`` from the wire, its link or
the request that listed it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import attrs
import httpx
import pytest
import respx
from cattrs.errors import ClassValidationError

from vbo_async import (
    BackupRepository,
    BackupType,
    Bottleneck,
    ClientStateError,
    CollectionLink,
    ConfigError,
    DailyType,
    DecodeError,
    Job,
    JobSession,
    JobSessionConfigType,
    JobStatus,
    JobType,
    Link,
    LinkError,
    MaintenanceModeState,
    ObjectStorage,
    OperatingSystem,
    Organization,
    PeriodicallyEvery,
    Proxy,
    ProxyRole,
    ProxyStatus,
    ProxyType,
    ScheduleType,
    UsedRepository,
    VBOClient,
)
from vbo_async._convert import make_converter
from vbo_async._dialects import DIALECTS, LinkFromId
from vbo_async._links import ThroughLink

from .conftest import offline_client
from .versions_data import (
    JOB_ID,
    ORG_ID,
    PROXY_ID,
    REPO_ID,
    SESSION_ID,
    V6_PLUS,
    WINDOW,
    job_wire,
    organization_wire,
    proxy_wire,
    repository_wire,
    session_wire,
    token_body,
    windowed_policy,
)

BASE = "https://vbo.test:4443"
UTC = dt.UTC


def _refuse(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"no request expected, got {request.method} {request.url}")


@pytest.fixture(scope="module")
def vbo() -> Iterator[VBOClient]:
    """A v8 client used only to decode and encode (any version, with ``api_version=``)."""
    client = VBOClient(
        BASE,
        username="u",
        password="p",
        api_version="v8",
        transport=httpx.MockTransport(_refuse),
    )
    yield client
    asyncio.run(client.aclose())


@pytest.fixture(params=V6_PLUS)
def version(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


# --- jobs ------------------------------------------------------------------------------------------


def test_a_job_decodes_into_the_one_model(vbo: VBOClient, version: str) -> None:
    job = vbo.from_wire(job_wire(version), Job, api_version=version)
    assert job.id == JOB_ID
    assert job.name == "Contoso - Exchange daily"
    assert job.description == ""
    assert job.backup_type is BackupType.ENTIRE_ORGANIZATION
    assert job.organization_id == ORG_ID  # v8 organizationId; before, the organization link's id
    assert job.repository_id == REPO_ID
    assert job.last_status is JobStatus.SUCCESS
    assert job.is_enabled is True
    assert job.last_run == dt.datetime(2026, 6, 30, 22, 0, 4, 512337, tzinfo=UTC)
    assert job.next_run == dt.datetime(2026, 7, 1, 22, 0, tzinfo=UTC)
    expected_backup = None if version == "v6" else dt.datetime(2026, 6, 30, 22, 41, 17, 118902, tzinfo=UTC)
    assert job.last_backup == expected_backup
    assert job.e_tag == (412 if version == "v8" else None)
    assert job.all_mailboxes is None  # v1's field
    policy = job.schedule_policy
    assert policy is not None
    assert policy.type is ScheduleType.DAILY
    assert policy.daily_type is DailyType.EVERYDAY
    assert policy.daily_time == dt.time(22, 0)
    assert policy.schedule_enabled is True
    assert policy.backup_window_enabled is False
    assert policy.periodically_window_enabled is (None if version == "v6" else False)
    assert (policy.retry_enabled, policy.retry_number, policy.retry_wait_interval) == (True, 3, 10)
    assert policy.backup_window is None


def test_v8_organization_id_is_read_from_the_wire_first(vbo: VBOClient) -> None:
    wire = job_wire("v8")
    wire["organizationId"] = "11111111-2222-4333-8444-555555555555"  # the link says otherwise
    assert vbo.from_wire(wire, Job, api_version="v8").organization_id == wire["organizationId"]
    # v7 has no such field: it reads it all the same (what ``to_wire`` writes of a job whose link
    # does not name its organization), as a v6/v7 session's ``jobId``.
    assert vbo.from_wire(wire, Job, api_version="v7").organization_id == wire["organizationId"]
    del wire["organizationId"]
    assert vbo.from_wire(wire, Job, api_version="v8").organization_id == ORG_ID  # the link, then


@pytest.mark.parametrize("api_version", ["v1", *V6_PLUS])
def test_an_id_a_model_holds_without_its_link_survives_to_wire(vbo: VBOClient, api_version: str) -> None:
    """An id the wire of some versions carries only in a link (a job's organization before v8, a
    session's job on v1, a used repository's repository before v8), held by a model built by hand
    or changed with `attrs.evolve`, was written as ``{"_links": {}}`` and read back as None:
    ``to_wire`` writes it under v8's name then, and only then."""
    held: list[tuple[Any, str]] = [
        (Job(id=JOB_ID, organization_id=ORG_ID), "organization_id"),
        (JobSession(id="s1", job_id=JOB_ID), "job_id"),
        (UsedRepository(repository_id=REPO_ID, used_space_bytes=7), "repository_id"),
    ]
    for model, field in held:
        wire = vbo.to_wire(model, api_version=api_version)
        back = vbo.from_wire(wire, type(model), api_version=api_version)
        # (v7+ builds a job's sessions link from its id: the one other difference)
        assert getattr(back, field) == getattr(model, field), (api_version, wire)
    if api_version == "v1":
        return
    # A decoded job whose link names its organization: written as the version's own wire.
    decoded = vbo.from_wire(job_wire(api_version), Job, api_version=api_version)
    assert decoded.organization_id == ORG_ID
    assert ("organizationId" in vbo.to_wire(decoded, api_version=api_version)) == (api_version == "v8")


def test_backup_windows_are_read_from_backup_window_settings(vbo: VBOClient, version: str) -> None:
    wire = job_wire(version)
    wire["schedulePolicy"] = windowed_policy(version)
    policy = vbo.from_wire(wire, Job, api_version=version).schedule_policy
    assert policy is not None
    assert policy.type is ScheduleType.PERIODICALLY
    assert policy.periodically_every is PeriodicallyEvery.HOURS4
    assert policy.backup_window_enabled is True
    assert policy.periodically_window_enabled is (None if version == "v6" else True)
    assert policy.periodically_offset_minutes == 15

    window = policy.backup_window
    assert window is not None
    assert window.backup_intervals_array == tuple(WINDOW)
    assert window.minute_offset == 120
    assert window.allows(1, 8)
    assert window.allows(5, 17)
    assert not window.allows(0, 12)
    assert not window.allows(1, 18)
    # The window's zone is UTC+2 (minuteOffset 120): Monday 06:30 UTC is 08:30 there.
    assert window.allows_at(dt.datetime(2026, 6, 29, 6, 30, tzinfo=UTC))
    assert not window.allows_at(dt.datetime(2026, 6, 29, 5, 59, tzinfo=UTC))
    assert window.allows_at(dt.datetime(2026, 6, 29, 15, 59, tzinfo=UTC))  # 17:59 local
    assert not window.allows_at(dt.datetime(2026, 6, 29, 16, 0, tzinfo=UTC))  # 18:00 local

    periodic = policy.periodically_window
    assert periodic is not None
    assert periodic.backup_intervals_array == tuple(not flag for flag in WINDOW)
    assert periodic.minute_offset == -60
    # UTC-1: Monday 09:00 UTC is 08:00 there, inside the backup window, so outside this one.
    assert not periodic.allows_at(dt.datetime(2026, 6, 29, 9, 0, tzinfo=UTC))
    assert periodic.allows_at(dt.datetime(2026, 6, 29, 8, 59, tzinfo=UTC))


def test_v1_window_spelling_is_not_v6_plus_s(vbo: VBOClient, version: str) -> None:
    # v1's ``backupWindow.backupIntervalsArray`` under a v6+ dialect is an unknown key.
    wire = job_wire(version)
    wire["schedulePolicy"] = {"backupWindow": {"backupIntervalsArray": WINDOW, "minuteOffset": 0}}
    policy = vbo.from_wire(wire, Job, api_version=version).schedule_policy
    assert policy is not None
    assert policy.backup_window is None
    v1_job = vbo.from_wire(wire, Job, api_version="v1")
    assert v1_job.schedule_policy is not None
    assert v1_job.schedule_policy.backup_window is not None
    assert v1_job.schedule_policy.backup_window.backup_intervals_array == tuple(WINDOW)


# --- job links -------------------------------------------------------------------------------------


def test_job_links_per_version(vbo: VBOClient, version: str) -> None:
    job = vbo.from_wire(job_wire(version), Job, api_version=version)
    links = job.links
    assert links.self is not None
    assert links.self.href == f"/{version}/Jobs/{JOB_ID}"
    assert links.organization is not None
    assert links.organization.href == f"/{version}/Organizations/{ORG_ID}"
    repository = links.repository
    assert repository is not None
    assert repository.href == f"/{version}/BackupRepositories/{REPO_ID}"  # read from backupRepository
    assert repository.relation == "backupRepository"
    assert repository.target is BackupRepository
    assert repository.url == f"{BASE}/{version}/BackupRepositories/{REPO_ID}"

    proxy = links.proxy
    assert isinstance(proxy, ThroughLink)
    assert proxy.via == repository
    assert proxy.then == "proxy"
    assert proxy.relation == "proxy"
    assert proxy.target is Proxy

    assert isinstance(links.selected_items, CollectionLink)
    assert links.selected_items.href == f"/{version}/Jobs/{JOB_ID}/selectedItems"
    assert links.selected_mailboxes is None

    sessions = links.jobsessions
    assert isinstance(sessions, CollectionLink)
    assert sessions.target is JobSession
    if version == "v6":
        assert sessions.href == f"/v6/Jobs/{JOB_ID}/jobsessions"  # served on v6: the server's own
    else:
        assert sessions.href == f"/{version}/JobSessions?jobId={JOB_ID}"  # the server's is dead
        assert sessions.url == f"{BASE}/{version}/JobSessions?jobId={JOB_ID}"


@pytest.mark.parametrize("version", ["v6", "v7", "v8"])
def test_v6_plus_never_read_a_selected_mailboxes_link(vbo: VBOClient, version: str) -> None:
    # Issue 10: from v2 on, a job's selection is ``selectedItems`` (another shape, reached through
    # ``links.selected_items``); v6+ ``selected_mailboxes`` is None even if a server sends the v1 link.
    wire = job_wire(version)
    wire["_links"]["selectedMailboxes"] = {"href": f"/{version}/Jobs/{JOB_ID}/SelectedMailboxes"}
    job = vbo.from_wire(wire, Job, api_version=version)
    assert job.links.selected_mailboxes is None
    assert job.links.selected_items is not None
    (listed,) = vbo._fetcher.decoder.many([wire], Job, DIALECTS[version])
    assert listed == job
    assert listed.links.selected_mailboxes is None


def test_jobsessions_is_built_from_the_id_whatever_the_server_says(vbo: VBOClient) -> None:
    for version in ("v7", "v8"):
        wire = job_wire(version)
        wire["id"] = "job 1/2"  # quoted as a query value
        wire["_links"]["jobsessions"] = {"href": "/v9/elsewhere"}
        job = vbo.from_wire(wire, Job, api_version=version)
        assert job.links.jobsessions is not None
        assert job.links.jobsessions.href == f"/{version}/JobSessions?jobId=job%201%2F2"
        del wire["_links"]["jobsessions"]  # absent: built all the same
        job = vbo.from_wire(wire, Job, api_version=version)
        assert job.links.jobsessions is not None
        assert job.links.jobsessions.href == f"/{version}/JobSessions?jobId=job%201%2F2"
    wire = job_wire("v6")
    del wire["_links"]["jobsessions"]
    assert vbo.from_wire(wire, Job, api_version="v6").links.jobsessions is None


def test_no_repository_link_means_no_proxy_link(vbo: VBOClient, version: str) -> None:
    wire = job_wire(version)
    del wire["_links"]["backupRepository"]
    wire["_links"]["proxy"] = {"href": f"/{version}/Proxies/{PROXY_ID}"}  # not a v6+ job link
    job = vbo.from_wire(wire, Job, api_version=version)
    assert job.links.repository is None
    assert job.links.proxy is None
    with pytest.raises(LinkError) as caught:  # it said the server sent no proxy link, as v6+ never does
        job.links.require("proxy")
    assert caught.value.relation == "repository"
    assert "nor the 'repository' link through which v6+ servers give a job's proxy" in str(caught.value)
    # v1's ``repository`` spelling is not read on v6+ either.
    wire["_links"]["repository"] = {"href": f"/{version}/BackupRepositories/{REPO_ID}"}
    assert vbo.from_wire(wire, Job, api_version=version).links.repository is None


def test_v1_jobs_keep_their_own_proxy_link(vbo: VBOClient) -> None:
    host = "https://vbo-sim.east.local:4443/v1"
    wire = {
        "id": JOB_ID,
        "_links": {
            "repository": {"href": f"{host}/BackupRepositories/{REPO_ID}"},
            "proxy": {"href": f"{host}/Proxies/{PROXY_ID}"},
            "backupRepository": {"href": f"{host}/BackupRepositories/other"},
        },
    }
    job = vbo.from_wire(wire, Job, api_version="v1")
    assert type(job.links.proxy) is Link
    assert job.links.proxy.href == f"{host}/Proxies/{PROXY_ID}"
    assert job.links.repository is not None
    assert job.links.repository.href == f"{host}/BackupRepositories/{REPO_ID}"
    assert job.repository_id == REPO_ID
    assert job.proxy_id == PROXY_ID  # from the proxy link, as the repository's id is


def test_v6_plus_jobs_name_no_proxy_id(vbo: VBOClient, version: str) -> None:
    """A v6+ job's ``proxy`` link is its repository's (two steps): its last segment is the
    repository's id, no proxy's."""
    job = vbo.from_wire(job_wire(version), Job, api_version=version)
    assert isinstance(job.links.proxy, ThroughLink)
    assert (job.proxy_id, job.repository_id) == (None, REPO_ID)


@pytest.mark.parametrize("api_version", ["v1", "v6", "v7", "v8"])
async def test_a_job_naming_no_organization_is_the_one_its_listing_asked_for(api_version: str) -> None:
    """A job without ``organizationId`` or an organization link, listed by an organization's
    jobs listing (``/Organizations/{id}/Jobs``; v8 ``/Jobs?organizationId=``), is that
    organization's, as a session listed by its job's gets the job's id."""
    router = respx.MockRouter(base_url=BASE, assert_all_called=False)
    router.post(f"/{api_version}/Token").respond(json=token_body(1))
    router.post(f"/{api_version}/token/logout").respond(204)
    bare = [{"id": JOB_ID, "name": "No organization named"}]
    router.get(f"/{api_version}/Organizations/{ORG_ID}/Jobs").respond(json=bare)
    router.get(f"/{api_version}/Jobs").respond(json={"offset": 0, "limit": 10000, "results": bare})
    transport = httpx.MockTransport(router.async_handler)
    async with VBOClient(
        BASE, username="u", password="p", api_version=api_version, transport=transport
    ) as vbo:
        (job,) = await vbo.organization_jobs(ORG_ID)
        (unfiltered,) = await vbo.jobs()
    assert job.organization_id == ORG_ID
    assert unfiltered.organization_id is None  # a server-wide listing names no organization


# --- sessions --------------------------------------------------------------------------------------


def test_a_session_decodes_into_the_one_model(vbo: VBOClient, version: str) -> None:
    session = vbo.from_wire(session_wire(version), JobSession, api_version=version)
    assert session.id == SESSION_ID
    assert session.job_id == JOB_ID  # v8 jobId; before, the job link's id
    assert session.status is JobStatus.SUCCESS
    assert session.creation_time == _at("2026-06-30T22:00:04.512337Z")
    assert session.end_time == _at("2026-06-30T22:41:17.118902Z")
    assert session.progress == 8412
    assert session.retry_count == 0
    assert session.details is not None
    assert session.details.startswith("Transferred: 1.2 GB")
    v7_plus = version != "v6"
    assert session.repository_id == (REPO_ID if v7_plus else None)
    assert session.main_session_id == (SESSION_ID if v7_plus else None)
    assert session.job_will_be_retried is (False if v7_plus else None)
    assert session.job_type is (JobType.BACKUP if v7_plus else None)
    expected_config = JobSessionConfigType.INCREMENTAL if version == "v8" else None
    assert session.job_session_config_type is expected_config
    statistics = session.statistics
    assert statistics is not None
    assert statistics.processing_rate_bytes_ps == 2202009
    assert statistics.processing_rate_items_ps == 14
    assert statistics.read_rate_bytes_ps == 2516582
    assert statistics.write_rate_bytes_ps == 1048576
    assert statistics.transferred_data_bytes == 1288490188
    assert statistics.processed_objects == 8412
    assert statistics.bottleneck is Bottleneck.SOURCE
    assert statistics.processing_rate is None  # v1's display strings
    assert session.links.job is not None
    assert session.links.job.href == f"/{version}/Jobs/{JOB_ID}"
    assert session.links.log is not None
    assert session.links.log.href == f"/{version}/JobSessions/{SESSION_ID}/LogItems"


def test_a_retried_run(vbo: VBOClient) -> None:
    wire = session_wire("v8")
    wire.update(
        id="d0000000-0000-4000-8000-000000000001",
        status="Failed",
        retryCount=2,
        jobWillBeRetried=True,
        mainSessionId=SESSION_ID,
        jobSessionConfigType="Full",
        endTime=None,
    )
    session = vbo.from_wire(wire, JobSession, api_version="v8")
    assert session.status is JobStatus.FAILED
    assert session.retry_count == 2
    assert session.job_will_be_retried is True
    assert session.main_session_id == SESSION_ID != session.id
    assert session.job_session_config_type is JobSessionConfigType.FULL
    assert session.end_time is None


def test_a_session_s_job_id_prefers_the_wire_then_the_link(vbo: VBOClient, version: str) -> None:
    other = "99999999-8888-4777-8666-555555555555"
    wire = session_wire(version)
    wire["_links"]["job"] = {"href": f"/{version}/Jobs/{other}"}
    expected = JOB_ID if version == "v8" else other  # v8's jobId first; earlier versions have none
    assert vbo.from_wire(wire, JobSession, api_version=version).job_id == expected
    wire.pop("jobId", None)
    assert vbo.from_wire(wire, JobSession, api_version=version).job_id == other
    del wire["_links"]["job"]
    assert vbo.from_wire(wire, JobSession, api_version=version).job_id is None


# --- repositories, proxies, organizations --------------------------------------------------------------


def test_a_repository_decodes_with_byte_counts(vbo: VBOClient, version: str) -> None:
    repository = vbo.from_wire(repository_wire(version), BackupRepository, api_version=version)
    assert repository.id == REPO_ID
    assert repository.name == "Repository 1"
    assert repository.path == "E:\\Backups\\Repository 1"
    assert repository.capacity == 4398046511104  # capacityBytes
    assert repository.free_space == 1649267441664  # freeSpaceBytes
    assert repository.proxy_id == PROXY_ID
    assert repository.proxy_pool_id is None
    assert repository.is_long_term is False
    assert repository.is_out_of_sync is False
    assert repository.is_outdated is (False if version == "v8" else None)
    assert repository.links.proxy is not None
    assert repository.links.proxy.href == f"/{version}/Proxies/{PROXY_ID}"
    assert repository.links.proxy.target is Proxy


def test_a_v8_repository_of_a_proxy_pool(vbo: VBOClient) -> None:
    wire = repository_wire("v8")
    wire["proxyId"] = None
    wire["proxyPoolId"] = "3f4e5d6c-7b8a-4d9e-8f0a-1b2c3d4e5f6a"
    del wire["_links"]["proxy"]
    repository = vbo.from_wire(wire, BackupRepository, api_version="v8")
    assert repository.proxy_pool_id == wire["proxyPoolId"]
    assert repository.proxy_id is None
    assert repository.links.proxy is None


def test_v1_repository_spellings_are_not_v6_plus_s(vbo: VBOClient, version: str) -> None:
    wire = repository_wire(version)
    del wire["capacityBytes"], wire["freeSpaceBytes"]
    wire.update(capacity=1, freeSpace=2)
    repository = vbo.from_wire(wire, BackupRepository, api_version=version)
    assert (repository.capacity, repository.free_space) == (None, None)
    v1 = vbo.from_wire(wire, BackupRepository, api_version="v1")
    assert (v1.capacity, v1.free_space) == (1, 2)


@pytest.mark.parametrize("detailed", [False, True], ids=["fast", "detailed"])
def test_a_proxy_role_list_sent_as_a_string_is_refused_not_read_letter_by_letter(
    vbo: VBOClient, detailed: bool
) -> None:
    wire = {**proxy_wire("v8"), "role": "Processor"}
    if detailed:
        converter = make_converter(vbo._fetcher, DIALECTS["v8"], detailed=True)
        with pytest.raises(ClassValidationError) as caught:
            converter.structure(wire, Proxy)
        (error,) = caught.value.exceptions
        assert str(error) == "expected an array of ProxyRole values, got str"
        return
    with pytest.raises(DecodeError, match=r"expected an array of ProxyRole values, got str at \$\.role"):
        vbo.from_wire(wire, Proxy, api_version="v8")
    roles = vbo.from_wire({**wire, "role": ["Processor", "Scheduler"]}, Proxy, api_version="v8").roles
    assert roles == (ProxyRole.PROCESSOR, ProxyRole.SCHEDULER)


def test_a_null_among_a_proxy_s_roles_is_refused_as_a_null_folder_is(vbo: VBOClient) -> None:
    """``roles`` is a tuple of `ProxyRole`: a null item was read as None, and a caller reading
    ``role.is_known`` of each got a bare AttributeError. A null list is still None."""
    wire = {**proxy_wire("v8"), "role": ["Processor", None]}
    with pytest.raises(DecodeError, match=r"expected a ProxyRole string, got null at \$\.role\[1\]$"):
        vbo.from_wire(wire, Proxy, api_version="v8")
    assert vbo.from_wire({**wire, "role": None}, Proxy, api_version="v8").roles is None


def test_a_proxy_decodes_per_version(vbo: VBOClient, version: str) -> None:
    proxy = vbo.from_wire(proxy_wire(version), Proxy, api_version=version)
    assert proxy.id == PROXY_ID
    assert proxy.host_name == "proxy01"
    assert proxy.port == 9193
    assert proxy.type is ProxyType.DOMAIN
    assert proxy.status is ProxyStatus.ONLINE
    assert proxy.enable_network_throttling is True  # the v6+ spelling
    assert (proxy.throttling_value, proxy.throttling_unit) == (100, "Mbps")
    assert proxy.fqdn == (None if version == "v6" else "proxy01.contoso.local")
    if version == "v8":
        assert proxy.operating_system is OperatingSystem.WINDOWS
        assert proxy.maintenance_mode_state is MaintenanceModeState.DISABLED
        assert proxy.cpu_usage_percent == 12.5
        assert proxy.memory_usage_percent == 41.25
        assert proxy.version == "8.5.0.1014"
        assert proxy.service_account == "CONTOSO\\svc-vb365"
        (role,) = proxy.roles or ()
        assert role == "BackupProxy"
        assert not role.is_known  # no RESTProxyRole value: kept as the server sent it
    else:
        assert proxy.operating_system is None
        assert proxy.maintenance_mode_state is None
        assert proxy.cpu_usage_percent is None
        assert proxy.version is None
        assert (proxy.roles, proxy.service_account) == (None, None)
    assert proxy.use_internet_proxy is False
    assert proxy.links.repositories is not None
    assert proxy.links.repositories.href == f"/{version}/BackupRepositories?proxyId={PROXY_ID}"
    assert proxy.links.repositories.target is BackupRepository


def test_a_proxy_s_repositories_link_is_built_from_the_id_whatever_the_server_says(
    vbo: VBOClient, version: str
) -> None:
    # v2 proxies linked /Proxies/{id}/repositories; v6-v8 serve no such path (their OpenAPI has
    # none), only /BackupRepositories?proxyId=, while proxies still carry a ``repositories`` link.
    wire = proxy_wire(version)
    wire["_links"]["repositories"] = {"href": f"/{version}/Proxies/{PROXY_ID}/repositories"}
    proxy = vbo.from_wire(wire, Proxy, api_version=version)
    assert proxy.links.repositories is not None
    assert proxy.links.repositories.href == f"/{version}/BackupRepositories?proxyId={PROXY_ID}"
    assert proxy.links.repositories.target is BackupRepository
    del wire["_links"]["repositories"]  # absent: built all the same
    proxy = vbo.from_wire(wire, Proxy, api_version=version)
    assert proxy.links.repositories is not None
    assert proxy.links.repositories.href == f"/{version}/BackupRepositories?proxyId={PROXY_ID}"


def test_an_organization_decodes_per_version(vbo: VBOClient, version: str) -> None:
    org = vbo.from_wire(organization_wire(version), Organization, api_version=version)
    assert org.id == ORG_ID
    assert org.name == org.office_name == "contoso.onmicrosoft.com"
    assert org.type == "Office365"
    assert org.region == "Worldwide"
    assert org.description == (None if version == "v6" else "")
    assert org.is_exchange_online is True
    assert org.is_sharepoint_online is True
    assert org.is_teams_online is True
    assert org.is_teams_chats_online is False
    assert org.is_backedup is None  # extendedView only
    tenant = "0b1c2d3e-4f5a-6b7c-8d9e-0f1a2b3c4d5e" if version == "v8" else None
    assert org.msid == org.backed_up_organization_id == tenant  # the Microsoft 365 tenant's id
    links = org.links
    assert links.self is not None
    assert links.self.href == f"/{version}/Organizations/{ORG_ID}"
    assert isinstance(links.jobs, CollectionLink)
    assert links.jobs.target is Job
    jobs_href = (
        f"/v8/Jobs?organizationId={ORG_ID}" if version == "v8" else f"/{version}/Organizations/{ORG_ID}/Jobs"
    )
    assert links.jobs.href == jobs_href
    assert links.used_repositories is not None
    assert links.used_repositories.href == f"/{version}/Organizations/{ORG_ID}/usedRepositories"
    for relation in ("users", "groups", "sites", "teams"):
        link = getattr(links, relation)
        assert link is not None
        assert link.href == f"/{version}/Organizations/{ORG_ID}/{relation.title()}"
    assert links.mailboxes is None


def test_v8_organization_jobs_link_is_built_from_the_id_whatever_the_server_says(vbo: VBOClient) -> None:
    # v8 removed /Organizations/{id}/Jobs, yet organizations still carry a ``jobs`` link whose
    # target is unconfirmed (reference §4): the jobs of the tenant are /v8/Jobs?organizationId=.
    wire = organization_wire("v8")
    wire["_links"]["jobs"] = {"href": f"/v8/Organizations/{ORG_ID}/Jobs"}
    org = vbo.from_wire(wire, Organization, api_version="v8")
    assert org.links.jobs is not None
    assert org.links.jobs.href == f"/v8/Jobs?organizationId={ORG_ID}"
    assert org.links.jobs.target is Job
    del wire["_links"]["jobs"]  # absent: built all the same
    org = vbo.from_wire(wire, Organization, api_version="v8")
    assert org.links.jobs is not None
    assert org.links.jobs.href == f"/v8/Jobs?organizationId={ORG_ID}"
    wire = organization_wire("v7")  # v7 still serves the path its link names
    wire["_links"]["jobs"] = {"href": f"/v7/Organizations/{ORG_ID}/Jobs"}
    v7_jobs = vbo.from_wire(wire, Organization, api_version="v7").links.jobs
    assert v7_jobs is not None
    assert v7_jobs.href == f"/v7/Organizations/{ORG_ID}/Jobs"


def test_extended_view_organization_fields(vbo: VBOClient, version: str) -> None:
    wire = organization_wire(version)
    wire.update(isBackedup=True, firstBackuptime="2026-01-02T03:04:05.123456Z", lastBackuptime=None)
    org = vbo.from_wire(wire, Organization, api_version=version)
    assert org.is_backedup is True
    assert org.first_backuptime == _at("2026-01-02T03:04:05.123456Z")
    assert org.last_backuptime is None


# --- round trips ---------------------------------------------------------------------------------------


def _examples(version: str) -> list[tuple[type[Any], dict[str, Any]]]:
    windowed = job_wire(version)
    windowed["schedulePolicy"] = windowed_policy(version)
    pooled = repository_wire(version)
    pooled.update(proxyId=None, proxyPoolId="3f4e5d6c-7b8a-4d9e-8f0a-1b2c3d4e5f6a")
    del pooled["_links"]["proxy"]
    linkless = job_wire(version)
    linkless["_links"] = {}
    return [
        (Job, job_wire(version)),
        (Job, windowed),
        (Job, linkless),
        (JobSession, session_wire(version)),
        (Organization, organization_wire(version)),
        (BackupRepository, repository_wire(version)),
        (BackupRepository, pooled),
        (Proxy, proxy_wire(version)),
    ]


def test_round_trips_per_version(vbo: VBOClient, version: str) -> None:
    for cls, wire in _examples(version):
        model = vbo.from_wire(wire, cls, api_version=version)
        again = vbo.to_wire(model, api_version=version)
        assert vbo.from_wire(again, cls, api_version=version) == model
        assert vbo.from_wire(json.loads(json.dumps(again)), cls, api_version=version) == model
        # Written back in the version's own spelling, nothing from another version's wire.
        if cls is Job:
            assert ("eTag" in again) is (version == "v8" and "eTag" in wire)
            assert "organizationId" not in again or version == "v8"
            assert "repository" not in again.get("_links", {})
            assert "proxy" not in again.get("_links", {})
            if "schedulePolicy" in wire and "backupWindowSettings" in wire["schedulePolicy"]:
                assert again["schedulePolicy"]["backupWindowSettings"]["backupWindow"] == WINDOW
        if cls is BackupRepository:
            assert again["capacityBytes"] == wire["capacityBytes"]
            assert "capacity" not in again


def test_a_v8_model_written_as_v6_reads_back_as_the_same_job(vbo: VBOClient) -> None:
    job = vbo.from_wire(job_wire("v8"), Job, api_version="v8")
    v6 = vbo.to_wire(job, api_version="v6")
    assert "organizationId" not in v6  # v6 reads it from the organization link
    assert v6["_links"]["backupRepository"] == {"href": f"/v8/BackupRepositories/{REPO_ID}"}
    assert v6["eTag"] == 412
    assert v6["lastBackup"] == "2026-06-30T22:41:17.118902+00:00"
    again = vbo.from_wire(v6, Job, api_version="v6")
    assert again.organization_id == ORG_ID
    assert (again.e_tag, again.last_backup) == (job.e_tag, job.last_backup)
    assert again.links.repository == job.links.repository
    assert again.links.proxy == job.links.proxy


def test_a_v6_job_written_as_v1_has_no_proxy_link_naming_its_repository(vbo: VBOClient) -> None:
    """A v6+ job's proxy link is derived (through its repository): it has no href of its own. v1's
    wire has a ``proxy`` link, which must not be written with the repository's href: read back,
    it would fetch the repository as a `Proxy`."""
    for version in V6_PLUS:
        job = vbo.from_wire(job_wire(version), Job, api_version=version)
        assert isinstance(job.links.proxy, ThroughLink)
        v1 = vbo.to_wire(job, api_version="v1")
        assert v1["_links"]["repository"] == {"href": f"/{version}/BackupRepositories/{REPO_ID}"}
        assert "proxy" not in v1["_links"]
        again = vbo.from_wire(v1, Job, api_version="v1")
        assert again.links.proxy is None
        assert again.links.repository is not None
        assert job.links.repository is not None
        assert again.links.repository.href == job.links.repository.href


def test_from_wire_needs_a_version_before_discovery() -> None:
    auto = VBOClient(BASE, username="u", password="p", transport=httpx.MockTransport(_refuse))
    try:
        assert auto.api_version is None
        with pytest.raises(ClientStateError, match="api_version"):
            auto.from_wire(job_wire("v8"), Job)
        with pytest.raises(ClientStateError, match="api_version"):
            auto.to_wire(Job(id=JOB_ID))
        assert auto.from_wire(job_wire("v8"), Job, api_version="v8").e_tag == 412
    finally:
        asyncio.run(auto.aclose())


# --- through requests: the job of a session known only from the request -----------------------------------


@pytest.fixture
async def sessions_server(version: str) -> AsyncIterator[tuple[respx.MockRouter, VBOClient]]:
    router = respx.MockRouter(base_url=BASE, assert_all_called=False)
    router.post(f"/{version}/Token").respond(json=token_body(1))
    router.post(f"/{version}/token/logout").respond(204)
    linkless = session_wire(version)
    linkless.pop("jobId", None)
    del linkless["_links"]["job"]
    page = {"offset": 0, "limit": 10000, "results": [linkless], "_links": {}}
    router.get(f"/{version}/JobSessions").respond(json=page)
    router.get(f"/{version}/Jobs/{JOB_ID}/JobSessions").respond(json=page)
    router.get(f"/{version}/Jobs/{JOB_ID}/jobsessions").respond(json=page)
    client = VBOClient(
        BASE,
        username="u",
        password="p",
        api_version=version,
        transport=httpx.MockTransport(router.async_handler),
    )
    async with client:
        yield router, client


async def test_a_session_s_job_id_comes_from_the_request(
    sessions_server: tuple[respx.MockRouter, VBOClient], version: str
) -> None:
    router, vbo = sessions_server
    (session,) = await vbo.job_sessions(JOB_ID)
    assert session.job_id == JOB_ID
    job = vbo.from_wire(job_wire(version), Job)
    assert job.links.jobsessions is not None
    (listed,) = await job.links.jobsessions  # v7/v8 ?jobId=; v6 the job's own link, no query
    assert listed.job_id == JOB_ID  # from the query, or from the job's own link's path (v6)
    # However the id was found, it survives a trip through the wire.
    assert vbo.from_wire(vbo.to_wire(session), JobSession) == session
    urls = [str(call.request.url) for call in router.calls if call.request.method == "GET"]
    if version == "v6":
        assert urls == [
            f"{BASE}/v6/Jobs/{JOB_ID}/JobSessions?limit=5",
            f"{BASE}/v6/Jobs/{JOB_ID}/jobsessions?limit=10000",
        ]
    else:
        assert urls == [
            f"{BASE}/{version}/JobSessions?jobId={JOB_ID}&limit=5",
            f"{BASE}/{version}/JobSessions?jobId={JOB_ID}&limit=10000",
        ]


@pytest.mark.parametrize("link_version", ["v1", "v6"])
async def test_sessions_listed_by_a_job_s_own_link_get_the_job_s_id(link_version: str) -> None:
    # Issue 10: "JobSession.job_id is filled on every version (from the request or the session's
    # job link where the wire has no jobId)". Through a v1/v6 job's own sessions link
    # (/Jobs/{id}/JobSessions, which lists that one job's sessions) the request names the job,
    # as ?jobId= does on v7/v8: a session sent without a ``job`` link still belongs to it.
    router = respx.MockRouter(base_url=BASE, assert_all_called=False)
    router.post(f"/{link_version}/Token").respond(json=token_body(1))
    linkless = session_wire("v6")
    linkless.pop("jobId", None)
    del linkless["_links"]["job"]
    page = {"offset": 0, "limit": 10000, "results": [linkless], "_links": {}}
    router.get(f"/{link_version}/Jobs/{JOB_ID}/JobSessions").respond(json=page)
    client = VBOClient(
        BASE,
        username="u",
        password="p",
        api_version=link_version,
        transport=httpx.MockTransport(router.async_handler),
    )
    async with client as vbo:
        link = CollectionLink(f"/{link_version}/Jobs/{JOB_ID}/JobSessions", "jobsessions", None, JobSession)
        (listed,) = await vbo.follow(link)
        assert listed.job_id == JOB_ID
        (called,) = await vbo.job_sessions(JOB_ID)
        assert called == listed
        # The id a request names is the job's, quoted or not, in any case of the path.
        other = CollectionLink(f"/{link_version}/jobs/{JOB_ID.upper()}/jobsessions", "x", None, JobSession)
        router.get(f"/{link_version}/jobs/{JOB_ID.upper()}/jobsessions").respond(json=page)
        (upper,) = await vbo.follow(other)
        assert upper.job_id == JOB_ID.upper()
        # Another listing of sessions names no job: nothing is filled from its path.
        router.get(f"/{link_version}/JobSessions").respond(json=page)
        every = CollectionLink(f"/{link_version}/JobSessions", "x", None, JobSession)
        (unowned,) = await vbo.follow(every)
        assert unowned.job_id is None


@pytest.mark.parametrize("detailed", [False, True], ids=["fast", "detailed"])
def test_a_link_built_from_an_empty_id_is_none(vbo: VBOClient, detailed: bool) -> None:
    """A link the dialect builds from the resource's id (`LinkFromId`: a v7 job's sessions, a v8
    organization's jobs, a proxy's repositories) names no resource when the server sent an empty
    id: with ``?jobId=`` or ``?organizationId=`` empty it would list every job's sessions or every
    tenant's jobs as this one's. It is None, whatever link the server sent."""
    built = [(version, d) for version, dialect in DIALECTS.items() for d in dialect.derived]
    built = [(version, d) for version, d in built if isinstance(d, LinkFromId)]
    assert {d.relation for _, d in built} == {"jobsessions", "repositories", "jobs"}
    for version, derivation in built:
        wire = {"id": "", "_links": {derivation.relation: {"href": f"/{version}/Elsewhere/x"}}}
        if detailed:
            converter = make_converter(vbo._fetcher, DIALECTS[version], detailed=True)
            model = converter.structure(wire, derivation.model)
        else:
            model = vbo.from_wire(wire, derivation.model, api_version=version)
        assert model.id == ""
        assert getattr(model.links, derivation.relation) is None, (version, derivation)
        named = vbo.from_wire({"id": "x"}, derivation.model, api_version=version)
        assert getattr(named.links, derivation.relation) is not None


@pytest.mark.parametrize("version", ["v1", "v6", "v8"])
async def test_object_storage_asks_nothing_it_need_not_and_refuses_what_is_no_repository(
    version: str,
) -> None:
    """`VBOClient.object_storage` sends no request for a repository on disk or a v8 repository
    holding its storage; anything but a `BackupRepository`, or an ``object_storage_id`` that
    cannot be a path segment, is a `ConfigError` before any request."""
    async with offline_client(version) as vbo:
        on_disk = BackupRepository(id=REPO_ID)
        assert await vbo.object_storage(on_disk) is None
        held = ObjectStorage(id="s1", used_space_bytes=5)
        assert await vbo.object_storage(attrs.evolve(on_disk, object_storage=held)) is held
        with pytest.raises(ConfigError, match="repository must be a BackupRepository, got str"):
            await vbo.object_storage(REPO_ID)  # type: ignore[arg-type]
        with pytest.raises(ConfigError, match="object_storage_id"):
            await vbo.object_storage(attrs.evolve(on_disk, object_storage_id="../Jobs"))
        assert vbo.requests_sent == 0
