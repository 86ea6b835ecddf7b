# pyright: strict
"""A script's view of the client, its links and its models: what each call gives, per checker."""

from __future__ import annotations

import datetime as dt
import os
import ssl
from pathlib import Path
from typing import Any, assert_type

import attrs
import httpx

from vbo_async import (
    API_VERSIONS,
    DEFAULT_MAX_RESPONSE_BYTES,
    BackupRepository,
    BackupRepositoryLinks,
    BackupWindow,
    CollectionLink,
    HealthPolicy,
    HourFlags,
    Job,
    JobHealth,
    JobLinks,
    JobSession,
    JobSessionLinks,
    JobSessionStatistics,
    JobStatus,
    License,
    Link,
    ObjectStorage,
    Organization,
    OrganizationLinks,
    Proxy,
    ProxyLinks,
    ProxyRole,
    RetryPolicy,
    SavedSession,
    SchedulePolicy,
    SelectedItem,
    SelectedItemObject,
    SelectedMailbox,
    SelectedMailboxLinks,
    ServiceInstance,
    ThroughLink,
    UsedRepository,
    UsedRepositoryLinks,
    VBOClient,
)


def clients(context: ssl.SSLContext, transport: httpx.AsyncBaseTransport) -> list[VBOClient]:
    """Every documented form of each keyword argument is accepted as it is."""
    verifies: list[bool | str | os.PathLike[str] | ssl.SSLContext] = [
        True,
        False,
        "/ca.pem",
        Path("/ca.pem"),
        context,
    ]
    built = [
        VBOClient("https://vb365.example.com:4443", username="u", password="p", verify=v) for v in verifies
    ]
    built.append(
        VBOClient(
            "https://vb365.example.com:4443",
            username="u",
            password="p",
            api_version="v8",
            timeout=None,
            max_concurrency=4,
            transport=transport,
            retry=RetryPolicy(attempts=2, statuses={502, 503}),
            max_response_bytes=DEFAULT_MAX_RESPONSE_BYTES,
            max_page_items=100,
            max_pages=10,
            max_listing_items=1000,
        )
    )
    built.append(VBOClient("https://x", username="u", password="p", timeout=5))  # an int is a float
    assert_type(API_VERSIONS, tuple[str, ...])
    return built


async def calls(vbo: VBOClient, since: dt.datetime) -> None:
    async with vbo as client:
        assert_type(client, VBOClient)
    assert_type(vbo.api_version, str | None)
    assert_type(await vbo.discover_api_version(), str)
    assert_type(await vbo.sign_in(), None)
    assert_type(await vbo.sign_in(valid_for=50), None)
    assert_type(vbo.username, str)
    session = vbo.saved_session()
    assert_type(session, SavedSession | None)
    if session is not None:
        assert_type(session.to_json(), str)
        assert_type(SavedSession.from_json(session.to_json().encode()), SavedSession)
        assert_type(session.expires, dt.datetime)
        assert_type(session.refresh_token, str | None)
        assert_type(session.version_found, dt.datetime | None)
        assert_type(session.same_tokens(vbo.saved_session()), bool)
        assert_type(VBOClient(vbo.base_url, username="u", password="p", log_out=False).resume(session), bool)
    assert_type(vbo.api_root, str | None)
    assert_type(vbo.base_url, str)
    assert_type(vbo.token_requests, int)
    assert_type(vbo.requests_sent, int)
    assert_type(await vbo.organizations(), list[Organization])
    org = await vbo.organization("id")
    assert_type(org, Organization)
    assert_type(await vbo.organization_jobs(org), list[Job])
    assert_type(await vbo.organization_jobs("id"), list[Job])
    jobs = await vbo.jobs()
    assert_type(jobs, list[Job])
    job = await vbo.job("id")
    assert_type(job, Job)
    assert_type(await vbo.job_sessions(job), list[JobSession])
    assert_type(await vbo.job_sessions("id", limit=None), list[JobSession])
    assert_type(await vbo.job_session("id"), JobSession)
    assert_type(await vbo.recent_sessions(since, jobs=jobs), dict[str, list[JobSession]])
    assert_type(await vbo.backup_repositories(), list[BackupRepository])
    assert_type(await vbo.backup_repository("id"), BackupRepository)
    assert_type(await vbo.proxies(), list[Proxy])
    assert_type(await vbo.proxy("id"), Proxy)
    assert_type(await vbo.service_instance(), ServiceInstance)
    assert_type(await vbo.license(), License)
    assert_type(await vbo.organization_used_repositories(org), list[UsedRepository])
    assert_type(await vbo.job_health(job, policy=HealthPolicy(), now=since), JobHealth)
    assert_type(await vbo.start_job(job, full=True), JobSession | None)
    assert_type(await vbo.start_job("id"), JobSession | None)
    assert_type(await vbo.stop_job(job), None)
    assert_type(await vbo.enable_job("id"), None)
    assert_type(await vbo.disable_job(job), None)
    assert_type(vbo.from_wire({"id": "x"}, Job, api_version="v8"), Job)
    assert_type(vbo.from_wire({}, SchedulePolicy), SchedulePolicy)
    assert_type(vbo.to_wire(job), Any)  # JSON, as json.loads gives it
    assert_type(await vbo.aclose(), None)


async def links(vbo: VBOClient, job: Job) -> None:
    link = job.links.repository
    assert_type(link, Link[BackupRepository] | None)
    if link is not None:
        assert_type(await link, BackupRepository)
        assert_type(await vbo.follow(link), BackupRepository)
        assert_type(link.href, str)
        assert_type(link.url, str)
        assert_type(link.relation, str)
    repository = await job.links.require("repository")
    assert_type(repository, BackupRepository)
    assert_type(await job.links.require("self"), Job)
    assert_type(await job.links.require("organization"), Organization)
    assert_type(await job.links.require("proxy"), Proxy)
    assert_type(await job.links.require("selected_mailboxes"), list[SelectedMailbox])
    assert_type(await job.links.require("selected_items"), list[SelectedItem])
    assert_type(await job.links.require("excluded_items"), list[SelectedItem])
    assert_type(await job.links.require("jobsessions"), list[JobSession])
    assert_type(await job.links.require("copy_job"), object)
    sessions = job.links.require("jobsessions")
    assert_type(sessions, CollectionLink[JobSession])
    assert_type(await vbo.follow(sessions), list[JobSession])
    async for session in sessions:
        assert_type(session, JobSession)
        assert_type(session.status, JobStatus | None)
        assert_type(session.links, JobSessionLinks)
        assert_type(session.statistics, JobSessionStatistics | None)
        assert_type(await session.links.require("job"), Job)
        assert_type(await session.links.require("log"), list[object])
    assert_type(repository.links, BackupRepositoryLinks)
    assert_type(repository.object_storage, ObjectStorage | None)
    assert_type(await vbo.object_storage(repository), ObjectStorage | None)
    if repository.object_storage is not None:
        assert_type(repository.object_storage.used_space_bytes, int | None)
    assert_type(await repository.links.require("proxy"), Proxy)
    if repository.links.proxy is not None:
        assert_type(await repository.links.proxy, Proxy)
    proxy = await vbo.proxy("id")
    assert_type(proxy.links, ProxyLinks)
    assert_type(proxy.roles, tuple[ProxyRole, ...] | None)
    assert_type(await proxy.links.require("repositories"), list[BackupRepository])
    org = await job.links.require("organization")
    assert_type(org.links, OrganizationLinks)
    assert_type(await org.links.require("jobs"), list[Job])
    assert_type(await org.links.require("used_repositories"), list[UsedRepository])
    assert_type(await org.links.require("mailboxes"), list[SelectedMailbox])
    used = (await vbo.organization_used_repositories(org))[0]
    assert_type(used.links, UsedRepositoryLinks)
    assert_type(await used.links.require("backup_repository"), BackupRepository)
    mailbox = (await job.links.require("selected_mailboxes"))[0]
    assert_type(mailbox.links, SelectedMailboxLinks)
    assert_type(await mailbox.links.require("organization"), Organization)
    item = (await job.links.require("selected_items"))[0]
    assert_type(item.user, SelectedItemObject | None)


def every_links_class_takes_a_name_read_at_run_time(
    name: str,
    repository: BackupRepositoryLinks,
    proxy: ProxyLinks,
    session: JobSessionLinks,
    mailbox: SelectedMailboxLinks,
    used: UsedRepositoryLinks,
) -> None:
    """Each links class's ``require`` takes a str, typed ``Link[object]`` (`JobLinks` and
    `OrganizationLinks`: `relations_read_at_run_time`)."""
    assert_type(repository.require(name), Link[object])
    assert_type(proxy.require(name), Link[object])
    assert_type(session.require(name), Link[object])
    assert_type(mailbox.require(name), Link[object])
    assert_type(used.require(name), Link[object])


def takes_any_link(link: Link[object]) -> str:
    return link.href


def takes_any_collection(link: CollectionLink[object]) -> str:
    return link.href


async def every_item(link: CollectionLink[object]) -> list[object]:
    return await link


async def relations_read_at_run_time(vbo: VBOClient, job: Job, org: Organization, name: str) -> None:
    """A relation named by a str (a config or CLI option): the broadest link, a LinkError at run
    time for a name the resource lacks; a literal name keeps its precise type."""
    link = job.links.require(name)
    assert_type(link, Link[object])
    assert_type(await link, object)
    assert_type(await vbo.follow(link), object)
    assert_type(org.links.require(name), Link[object])
    assert_type(job.links.require("repository"), Link[BackupRepository])
    sessions = job.links.require("jobsessions")
    assert_type(takes_any_collection(sessions), str)  # covariant, as Link is
    assert_type(takes_any_link(sessions), str)
    assert_type(await vbo.follow(sessions), list[JobSession])
    assert_type(await every_item(sessions), list[object])


async def links_are_read_only(job: Job, through: ThroughLink[Proxy]) -> None:
    """A link of a model is a link of any wider model: links are read-only (covariant)."""
    if job.links.repository is not None:
        takes_any_link(job.links.repository)
    if job.links.jobsessions is not None:
        takes_any_link(job.links.jobsessions)
    takes_any_link(through)
    present: list[Link[object]] = [
        link for link in (job.links.repository, job.links.proxy, job.links.organization) if link is not None
    ]
    assert_type(present, list[Link[object]])
    assert_type(await widened(job.links.require("proxy")), object)


async def widened(link: Link[object]) -> object:
    return await link


def models(job: Job, session: JobSession) -> None:
    """Frozen attrs classes: evolve, hash, equality and construction type-check."""
    renamed = attrs.evolve(job, name="renamed", last_status=JobStatus.SUCCESS)
    assert_type(renamed, Job)
    assert_type(renamed == job, bool)
    assert_type({job, renamed}, set[Job])
    assert_type({session: 1}, dict[JobSession, int])
    assert_type(hash(job), int)
    built = Job(id="x", name="n", links=JobLinks(self_=None, repository=job.links.repository))
    assert_type(built.links.self, Link[Job] | None)
    assert_type(built.last_run, dt.datetime | None)
    policy = job.schedule_policy
    if policy is not None and policy.backup_window is not None:
        window = policy.backup_window
        assert_type(window.allows(day=1, hour=9), bool)
        assert_type(window.allows_at(dt.datetime.now(dt.UTC)), bool)
        assert_type(window.backup_intervals_array[0], bool)
    window = BackupWindow(backup_intervals_array=[True] * 168, minute_offset=60)
    assert_type(BackupWindow(backup_intervals_array=HourFlags([True] * 168)), BackupWindow)
    assert_type(HourFlags([True, False])[0:1], tuple[bool, ...])
    assert_type(attrs.evolve(window, minute_offset=None), BackupWindow)
    assert_type(job.selected_mailboxes, tuple[SelectedMailbox, ...] | None)
    assert_type(JobStatus.FAILED.is_known, bool)
