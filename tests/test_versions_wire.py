"""Wire shapes per API version (v1, v6, v7, v8), seen through respx as the client's transport.

One client per version, pinned, talking to a respx router through ``httpx.MockTransport``: the
exact method, path, query string and body of every entry point and job action, the token forms
of the password and refresh grants, the logout on ``aclose()`` and what may go wrong with it,
an empty-body 401 renewing the token, what v1 refuses without sending anything, and the
``api_version`` values refused up front.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import attrs
import httpx
import pytest
import respx

from vbo_async import (
    BackupWindow,
    Bottleneck,
    ClientStateError,
    ConfigError,
    DecodeError,
    HourFlags,
    Job,
    JobLinks,
    JobSession,
    JobSessionStatistics,
    JobStatus,
    LinkError,
    NotSupportedError,
    Organization,
    Proxy,
    SchedulePolicy,
    ScheduleType,
    SelectedItem,
    SelectedItemObject,
    SelectedItemType,
    ServiceInstance,
    VBOClient,
)
from vbo_async import _client as client_module
from vbo_async import _models as models_module
from vbo_async._convert import MODELS

from .conftest import FAST, PASSWORD, USERNAME, assert_closing_ends_waiting_calls
from .versions_data import (
    JOB_ID,
    ORG_ID,
    PROXY_ID,
    REPO_ID,
    SESSION_ID,
    job_wire,
    organization_wire,
    proxy_wire,
    repository_wire,
    session_wire,
    token_body,
)

BASE = "https://vbo.test:4443"
VERSIONS = ("v1", "v6", "v7", "v8")
V6_PLUS = ("v6", "v7", "v8")
_UNUSED_TLS = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


class Server:
    """A respx router playing one API version: a token endpoint recording every form it gets
    (and issuing ``access-1-…``, ``access-2-…``), plus the routes a test adds."""

    def __init__(self, version: str) -> None:
        self.version = version
        self.router = respx.MockRouter(base_url=BASE, assert_all_called=False)
        self.forms: list[dict[str, str]] = []
        self.router.post(f"/{version}/Token").mock(side_effect=self._token)
        if version in ("v7", "v8"):  # closing logs out; a test may replace this route
            self.router.post(f"/{version}/token/logout").respond(200 if version == "v7" else 204)

    def _token(self, request: httpx.Request) -> httpx.Response:
        self.forms.append(dict(parse_qsl(request.content.decode())))
        return httpx.Response(200, json=token_body(len(self.forms)))

    def client(self, **options: Any) -> VBOClient:
        options.setdefault("retry", FAST)
        options.setdefault("api_version", self.version)
        return VBOClient(
            BASE,
            username=USERNAME,
            password=PASSWORD,
            transport=httpx.MockTransport(self.router.async_handler),
            **options,
        )

    @property
    def requests(self) -> list[httpx.Request]:
        """Every request but the token and logout requests, in order."""
        return [
            call.request
            for call in self.router.calls
            if urlsplit(str(call.request.url)).path.lower()
            not in (f"/{self.version}/token", f"/{self.version}/token/logout")
        ]

    def urls(self) -> list[str]:
        return [str(request.url) for request in self.requests]

    def collection(self, items: list[Any], path: str) -> Any:
        """What the version answers for a collection: a page object on v8, a bare array before."""
        if self.version != "v8":
            return items
        return {
            "offset": 0,
            "limit": 10000,
            "results": items,
            "_links": {"self": {"href": f"/v8/{path}?offset=0&limit=10000"}},
        }


@pytest.fixture(params=VERSIONS)
def version(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def server(version: str) -> Server:
    return Server(version)


@pytest.fixture
async def vbo(server: Server) -> AsyncIterator[VBOClient]:
    async with server.client() as client:
        yield client


def _v1_job() -> dict[str, Any]:
    return {
        "id": JOB_ID,
        "name": "Contoso - Exchange daily",
        "lastStatus": "Success",
        "isEnabled": "true",
        "_links": {
            "self": {"href": f"https://vbo-sim.east.local:4443/v1/Jobs/{JOB_ID}"},
            "organization": {"href": f"https://vbo-sim.east.local:4443/v1/Organizations/{ORG_ID}"},
        },
    }


def _job(version: str) -> dict[str, Any]:
    return _v1_job() if version == "v1" else job_wire(version)


def _organization(version: str) -> dict[str, Any]:
    if version == "v1":
        return {"id": ORG_ID, "name": "contoso.onmicrosoft.com", "_links": {}}
    return organization_wire(version)


def _session(version: str, number: int, *, day: int) -> dict[str, Any]:
    if version == "v1":
        wire: dict[str, Any] = {
            "id": f"{number:08d}-0000-4000-8000-000000000000",
            "creationTime": f"2026-06-{day:02d}T22:00:00.0000000Z",
            "status": "Success",
            "_links": {},
        }
        return wire
    wire = session_wire(version)
    wire["id"] = f"{number:08d}-0000-4000-8000-000000000000"
    wire["creationTime"] = f"2026-06-{day:02d}T22:00:04.512337Z"
    wire.pop("jobId", None)
    del wire["_links"]["job"]  # the job is known only from the request (or the client's argument)
    return wire


# --- entry points ----------------------------------------------------------------------------------

_LIST_PATHS = {
    "v1": {
        "organizations": "/v1/Organizations",
        "organization_jobs": f"/v1/Organizations/{ORG_ID}/Jobs",
        "jobs": "/v1/Jobs",
        "backup_repositories": "/v1/BackupRepositories",
        "proxies": "/v1/Proxies",
    },
    "v6": {
        "organizations": "/v6/Organizations?extendedView=true&limit=10000",
        "organization_jobs": f"/v6/Organizations/{ORG_ID}/Jobs?limit=10000",
        "jobs": "/v6/Jobs?limit=10000",
        "backup_repositories": "/v6/BackupRepositories?limit=10000",
        "proxies": "/v6/Proxies?limit=10000",
    },
    "v7": {
        "organizations": "/v7/Organizations?extendedView=true&limit=10000",
        "organization_jobs": f"/v7/Organizations/{ORG_ID}/Jobs?limit=10000",
        "jobs": "/v7/Jobs?limit=10000",
        "backup_repositories": "/v7/BackupRepositories?limit=10000",
        "proxies": "/v7/Proxies?extendedView=true&limit=10000",
    },
    "v8": {
        "organizations": "/v8/Organizations?extendedView=true&limit=10000",
        "organization_jobs": f"/v8/Jobs?organizationId={ORG_ID}&limit=10000",
        "jobs": "/v8/Jobs?limit=10000",
        "backup_repositories": "/v8/BackupRepositories?limit=10000",
        "proxies": "/v8/Proxies?limit=10000",
    },
}


async def test_list_entry_points_ask_each_version_its_own_way(
    server: Server, vbo: VBOClient, version: str
) -> None:
    router = server.router
    router.get(f"/{version}/Organizations").respond(
        json=server.collection([_organization(version)], "Organizations")
    )
    router.get(f"/{version}/Organizations/{ORG_ID}/Jobs").respond(json=[_job(version)])
    router.get(f"/{version}/Jobs").respond(json=server.collection([_job(version)], "Jobs"))
    repository = {"id": "r1"} if version == "v1" else repository_wire(version)
    proxy = {"id": "p1"} if version == "v1" else proxy_wire(version)
    router.get(f"/{version}/BackupRepositories").respond(
        json=server.collection([repository], "BackupRepositories")
    )
    router.get(f"/{version}/Proxies").respond(json=server.collection([proxy], "Proxies"))

    (org,) = await vbo.organizations()
    assert org.id == ORG_ID
    (job,) = await vbo.organization_jobs(org)  # a model or its id
    assert job.id == JOB_ID
    assert [j.id for j in await vbo.jobs()] == [JOB_ID]
    assert len(await vbo.backup_repositories()) == 1
    assert len(await vbo.proxies()) == 1

    paths = _LIST_PATHS[version]
    expected = [
        paths[name]
        for name in ("organizations", "organization_jobs", "jobs", "backup_repositories", "proxies")
    ]
    assert server.urls() == [BASE + path for path in expected]
    assert all(request.method == "GET" for request in server.requests)
    assert all(request.content == b"" for request in server.requests)
    assert [form["grant_type"] for form in server.forms] == ["password"]


async def test_single_resources_ask_by_id(server: Server, vbo: VBOClient, version: str) -> None:
    router = server.router
    router.get(f"/{version}/Organizations/{ORG_ID}").respond(json=_organization(version))
    router.get(f"/{version}/Jobs/{JOB_ID}").respond(json=_job(version))
    session = _session(version, 1, day=30)
    router.get(f"/{version}/JobSessions/{session['id']}").respond(json=session)

    assert (await vbo.organization(ORG_ID)).id == ORG_ID
    assert (await vbo.job(JOB_ID)).id == JOB_ID
    assert (await vbo.job_session(session["id"])).id == session["id"]
    extended = "?extendedView=true" if version != "v1" else ""  # backup state shown
    assert server.urls() == [
        f"{BASE}/{version}/Organizations/{ORG_ID}{extended}",
        f"{BASE}/{version}/Jobs/{JOB_ID}",
        f"{BASE}/{version}/JobSessions/{session['id']}",
    ]


_EXTENDED_LINKS = {
    # (a followed link to an organization, to a proxy): v7 and v8 leave an organization's backup
    # state out unless asked for extendedView=true, v7 a proxy's thread and throttling figures
    # too; v1 and v6 show them by default (v6's API file marks the parameter required on its
    # organization routes: it is sent), v8 proxies have no such parameter.
    "v1": ("", ""),
    "v6": ("?extendedView=true", ""),
    "v7": ("?extendedView=true", "?extendedView=true"),
    "v8": ("?extendedView=true", ""),
}


async def test_links_to_organizations_and_proxies_ask_for_the_extended_view(
    server: Server, vbo: VBOClient, version: str
) -> None:
    org_query, proxy_query = _EXTENDED_LINKS[version]
    router = server.router
    router.get(f"/{version}/Jobs/{JOB_ID}").respond(json=_job(version))
    router.get(f"/{version}/Organizations/{ORG_ID}").respond(json=_organization(version))
    job = await vbo.job(JOB_ID)
    assert job.links.organization is not None
    assert job.links.organization.url == f"{BASE}/{version}/Organizations/{ORG_ID}{org_query}"
    org = await job.links.organization
    assert org.id == ORG_ID
    expected = [f"{BASE}/{version}/Jobs/{JOB_ID}", f"{BASE}/{version}/Organizations/{ORG_ID}{org_query}"]
    if version != "v1":
        assert org.links.self is not None
        assert (await org.links.self).id == ORG_ID  # the same URL again (not shared: sequential)
        expected.append(expected[-1])
        router.get(f"/{version}/BackupRepositories/{REPO_ID}").respond(json=repository_wire(version))
        router.get(f"/{version}/Proxies/{PROXY_ID}").respond(json=proxy_wire(version))
        assert job.links.proxy is not None
        assert job.links.proxy.url == f"{BASE}/{version}/BackupRepositories/{REPO_ID}"  # the first step
        assert (await job.links.proxy).id == PROXY_ID
        expected += [
            f"{BASE}/{version}/BackupRepositories/{REPO_ID}",
            f"{BASE}/{version}/Proxies/{PROXY_ID}{proxy_query}",
        ]
    assert server.urls() == expected


@pytest.mark.parametrize("version", ["v7", "v8"])
async def test_a_link_s_own_extended_view_query_is_replaced_and_unsafe_hrefs_still_refused(
    server: Server, version: str
) -> None:
    wire = _job(version)
    wire["_links"]["organization"] = {"href": f"/{version}/Organizations/{ORG_ID}?ExtendedView=false&x=1"}
    async with server.client() as vbo:
        job = vbo.from_wire(wire, Job)
        assert job.links.organization is not None
        assert job.links.organization.url == f"{BASE}/{version}/Organizations/{ORG_ID}?x=1&extendedView=true"
        for href in (
            f"https://evil.test/elsewhere/Organizations/{ORG_ID}",
            f"/{version}/../Organizations/{ORG_ID}",
        ):
            wire["_links"]["organization"] = {"href": href}
            link = vbo.from_wire(wire, Job).links.organization
            assert link is not None
            with pytest.raises(LinkError):
                await link
    assert server.urls() == []


async def test_v8_pages_are_followed_by_their_next_link() -> None:
    server = Server("v8")
    second = organization_wire("v8")
    second["id"] = "0d1e2f3a-4b5c-4d6e-8f7a-9b0c1d2e3f4a"
    server.router.get("/v8/Organizations").mock(
        side_effect=[
            httpx.Response(
                200,
                json={
                    "offset": 0,
                    "limit": 1,
                    "results": [organization_wire("v8")],
                    "_links": {"next": {"href": "/v8/Organizations?offset=1&limit=1"}},
                },
            ),
            httpx.Response(200, json={"offset": 1, "limit": 1, "results": [second], "_links": {}}),
        ]
    )
    async with server.client() as vbo:
        orgs = await vbo.organizations()
    assert [org.id for org in orgs] == [ORG_ID, second["id"]]
    assert server.urls() == [
        f"{BASE}/v8/Organizations?extendedView=true&limit=10000",
        f"{BASE}/v8/Organizations?offset=1&limit=1&extendedView=true",  # the view asked for
    ]


@pytest.mark.parametrize("shape", ["array", "page"])
async def test_every_version_accepts_arrays_and_page_objects(
    server: Server, version: str, shape: str
) -> None:
    # Issue 10: "arrays and page objects are both accepted", whatever the version: v6/v7 serve some
    # lists as pages (usedRepositories, a v6 job's sessions) and v8 may answer a bare array.
    wire = _job(version)
    body: Any = [wire] if shape == "array" else {"offset": 0, "limit": 10000, "results": [wire], "_links": {}}
    server.router.get(f"/{version}/Jobs").respond(json=body)
    async with server.client() as vbo:
        (job,) = await vbo.jobs()
        assert job == vbo.from_wire(wire, Job)
    assert job.id == JOB_ID
    assert len(server.requests) == 1


def _jobs_of(version: str, *owners: str) -> list[dict[str, Any]]:
    """One job wire per owner organization, numbered from 1."""
    jobs = []
    for number, owner in enumerate(owners, 1):
        wire = job_wire(version)
        wire["id"] = f"{number:08d}-1111-4000-8000-000000000000"
        wire["_links"]["organization"] = {"href": f"/{version}/Organizations/{owner}"}
        if "organizationId" in wire:
            wire["organizationId"] = owner
        jobs.append(wire)
    return jobs


async def test_a_listing_reads_each_item_once_when_a_later_page_repeats_some() -> None:
    # A v8 page links on to v7 (servers send next links of another version), whose /Jobs pages
    # nothing: it answers every job, those of the first page again among them.
    server = Server("v8")
    server.router.get("/v8/Jobs").respond(
        json={
            "offset": 0,
            "limit": 2,
            "results": _jobs_of("v8", ORG_ID, ORG_ID),
            "_links": {"next": {"href": "/v7/Jobs?offset=2&limit=2"}},
        }
    )
    server.router.get("/v7/Jobs").respond(json=_jobs_of("v7", ORG_ID, ORG_ID, ORG_ID))
    async with server.client() as vbo:
        jobs = await vbo.jobs()
        link = vbo.from_wire(organization_wire("v8"), Organization).links.require("jobs")
        streamed = [job async for job in link]

    expected = [f"{number:08d}-1111-4000-8000-000000000000" for number in (1, 2, 3)]
    assert [job.id for job in jobs] == expected
    assert [job.id for job in streamed] == expected


async def test_selected_items_without_an_id_are_each_kept_over_pages() -> None:
    # OAS7/OAS8 make RESTJobItemComposed's id nullable: a row without one (a whole organization's
    # `PartialOrganization`) was a DecodeError failing the whole listing, and on a later page it
    # would have been read as a repeat of the first such row.
    server = Server("v8")
    path = f"/v8/Jobs/{JOB_ID}/selectedItems"
    whole = {"id": None, "type": "PartialOrganization", "mailbox": True, "_links": {}}
    user = {"id": "x1", "type": "User", "user": {"id": "u1"}, "mailbox": True}
    server.router.get(path).mock(
        side_effect=[
            httpx.Response(
                200,
                json={
                    "offset": 0,
                    "limit": 2,
                    "results": [whole, user],
                    "_links": {"next": {"href": f"{path}?offset=2&limit=2"}},
                },
            ),
            httpx.Response(
                200, json={"offset": 2, "limit": 2, "results": [dict(whole, teams=True), user], "_links": {}}
            ),
        ]
    )
    async with server.client() as vbo:
        job = vbo.from_wire(_job("v8"), Job)
        items = await job.links.require("selected_items")
        assert vbo.from_wire(whole, SelectedItem).id is None
    assert [(item.id, item.type, item.teams) for item in items] == [
        (None, SelectedItemType.PARTIAL_ORGANIZATION, None),
        ("x1", SelectedItemType.USER, None),
        (None, SelectedItemType.PARTIAL_ORGANIZATION, True),  # not the first one again
    ]


@pytest.mark.parametrize("onward", ["v8", "v7"])
async def test_every_page_of_organizations_is_asked_for_the_extended_view(onward: str) -> None:
    # The first page's next link names no extendedView (or names v7, as servers send next links
    # of another version, whose default is false too): the organizations of the pages after it
    # came without their backup state, which organizations() asks for however they are reached.
    server = Server("v8")

    def organization(version: str, number: int, extended: bool) -> dict[str, Any]:
        wire = organization_wire(version)
        wire["id"] = f"{number:08d}-2222-4000-8000-000000000000"
        if extended:
            wire.update(isBackedup=True, lastBackuptime="2026-06-30T22:41:17Z")
        return wire

    def extended(request: httpx.Request) -> bool:
        query = {key.lower(): value for key, value in parse_qsl(request.url.query.decode())}
        return query.get("extendedview") == "true"

    def v8(request: httpx.Request) -> httpx.Response:
        offset = int(dict(parse_qsl(request.url.query.decode())).get("offset", 0))
        page: dict[str, Any] = {
            "offset": offset,
            "limit": 1,
            "results": [organization("v8", offset + 1, extended(request))],
        }
        if offset == 0:
            page["_links"] = {"next": {"href": f"/{onward}/Organizations?offset=1&limit=1"}}
        return httpx.Response(200, json=page)

    def v7(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=[organization("v7", n, extended(request)) for n in (1, 2)])

    server.router.get("/v8/Organizations").mock(side_effect=v8)
    server.router.get("/v7/Organizations").mock(side_effect=v7)
    async with server.client() as vbo:
        organizations = await vbo.organizations()

    assert [org.id for org in organizations] == [f"{n:08d}-2222-4000-8000-000000000000" for n in (1, 2)]
    assert [org.is_backedup for org in organizations] == [True, True]
    assert all(extended(request) for request in server.requests)


async def test_organization_jobs_leave_out_the_jobs_of_other_organizations() -> None:
    # The v8 filter's page links on to v7, whose /Jobs ignores organizationId (and the offset):
    # it answers every tenant's jobs, each naming its organization.
    other = "0d1e2f3a-4b5c-4d6e-8f7a-9b0c1d2e3f4a"
    server = Server("v8")
    server.router.get("/v8/Jobs").respond(
        json={
            "offset": 0,
            "limit": 1,
            "results": _jobs_of("v8", ORG_ID),
            "_links": {"next": {"href": f"/v7/Jobs?organizationId={ORG_ID}&offset=1&limit=1"}},
        }
    )
    server.router.get("/v7/Jobs").respond(json=_jobs_of("v7", ORG_ID, other, ORG_ID, other))
    async with server.client() as vbo:
        jobs = await vbo.organization_jobs(ORG_ID.upper())

    assert [job.id for job in jobs] == [f"{n:08d}-1111-4000-8000-000000000000" for n in (1, 3)]
    assert {job.organization_id for job in jobs} == {ORG_ID}


@pytest.mark.parametrize("version", V6_PLUS)
async def test_no_link_is_built_from_an_empty_id(server: Server, version: str) -> None:
    # A link the version builds from an id filters a listing by it: built from an empty id, it
    # would ask for the unfiltered listing (every session, job or repository of the server).
    job, org, proxy = job_wire(version), organization_wire(version), proxy_wire(version)
    job["id"] = org["id"] = proxy["id"] = ""
    async with server.client() as vbo:
        built = {
            "jobsessions": vbo.from_wire(job, Job).links,
            "jobs": vbo.from_wire(org, Organization).links,
            "repositories": vbo.from_wire(proxy, Proxy).links,
        }
        for relation, links in built.items():
            link = getattr(links, relation)
            assert link is None or "=" not in link.href, (relation, link)
        assert vbo.from_wire(job_wire(version), Job).links.jobsessions is not None
        if version != "v6":  # v6 keeps the server's own link to a job's sessions
            with pytest.raises(LinkError, match="jobsessions") as caught:
                built["jobsessions"].require("jobsessions")
            assert caught.value.relation == "jobsessions"
    assert server.urls() == []


_SESSION_PATHS = {
    "v1": (f"/v1/Jobs/{JOB_ID}/JobSessions", f"/v1/Jobs/{JOB_ID}/JobSessions"),
    "v6": (f"/v6/Jobs/{JOB_ID}/JobSessions?limit=5", f"/v6/Jobs/{JOB_ID}/JobSessions?limit=10000"),
    "v7": (f"/v7/JobSessions?jobId={JOB_ID}&limit=5", f"/v7/JobSessions?jobId={JOB_ID}&limit=10000"),
    "v8": (f"/v8/JobSessions?jobId={JOB_ID}&limit=5", f"/v8/JobSessions?jobId={JOB_ID}&limit=10000"),
}


async def test_job_sessions_paths_limits_order_and_job_ids(
    server: Server, vbo: VBOClient, version: str
) -> None:
    # Seven sessions in no particular order; v6+ pages hold what `limit` asked for and link on.
    days = [3, 9, 1, 12, 7, 5, 11]
    sessions = [_session(version, number, day=day) for number, day in enumerate(days, 1)]

    def answer(request: httpx.Request) -> httpx.Response:
        query = dict(parse_qsl(request.url.query.decode()))
        if version == "v1":
            return httpx.Response(200, json=sessions)
        offset, limit = int(query.get("offset", 0)), int(query["limit"])
        page: dict[str, Any] = {
            "offset": offset,
            "limit": limit,
            "results": sessions[offset : offset + limit],
            "_links": {},
        }
        if offset + limit < len(sessions):
            nxt = request.url.copy_merge_params({"offset": offset + limit})
            page["_links"]["next"] = {"href": nxt.raw_path.decode()}
        return httpx.Response(200, json=page)

    path = f"/{version}/Jobs/{JOB_ID}/JobSessions" if version in ("v1", "v6") else f"/{version}/JobSessions"
    server.router.get(path).mock(side_effect=answer)

    newest = await vbo.job_sessions(JOB_ID, limit=5)
    limited_urls = server.urls()
    everything = await vbo.job_sessions(JOB_ID, limit=None)

    assert limited_urls == [BASE + _SESSION_PATHS[version][0]]  # one page: the next is not read
    assert server.urls()[1] == BASE + _SESSION_PATHS[version][1]
    assert len(server.urls()) == 2  # all seven fit in the first page of 10000
    assert all(session.job_id == JOB_ID for session in newest + everything)
    assert len(everything) == 7
    times = [session.creation_time for session in everything]
    assert times == sorted(times, reverse=True)  # newest first
    if version == "v1":
        # v1 cannot limit: every session is read and the newest five kept.
        assert [s.creation_time.day for s in newest if s.creation_time] == [12, 11, 9, 7, 5]
    else:
        # v6+ ask for five and sort those (the server's own order is newest first in practice).
        assert sorted(s.id for s in newest) == sorted(s["id"] for s in sessions[:5])
        assert [s.creation_time for s in newest] == sorted(
            (s.creation_time for s in newest), key=lambda t: t.timestamp() if t else 0, reverse=True
        )


@pytest.mark.parametrize("version", V6_PLUS)
async def test_job_sessions_read_a_session_a_later_page_repeats_once(server: Server, version: str) -> None:
    # Seven sessions, newest first. The server pages by three whatever `limit` asks, and each
    # later page starts one item early: a session started between two requests shifts a
    # newest-first listing cut by offset, so the last session of a page comes again on the next.
    sessions = [_session(version, number, day=20 - number) for number in range(1, 8)]

    def answer(request: httpx.Request) -> httpx.Response:
        offset = int(dict(parse_qsl(request.url.query.decode())).get("offset", 0))
        page: dict[str, Any] = {"offset": offset, "limit": 3, "results": sessions[offset : offset + 3]}
        if offset + 3 < len(sessions):
            nxt = request.url.copy_merge_params({"offset": offset + 2, "limit": 3})
            page["_links"] = {"next": {"href": nxt.raw_path.decode()}}
        return httpx.Response(200, json=page)

    path = f"/{version}/Jobs/{JOB_ID}/JobSessions" if version == "v6" else f"/{version}/JobSessions"
    server.router.get(path).mock(side_effect=answer)
    async with server.client() as vbo:
        newest = await vbo.job_sessions(JOB_ID, limit=5)
        everything = await vbo.job_sessions(JOB_ID, limit=None)

    assert [s.id for s in newest] == [s["id"] for s in sessions[:5]]  # five distinct, the newest
    assert [s.id for s in everything] == [s["id"] for s in sessions]


@pytest.mark.parametrize("version", V6_PLUS)
async def test_job_sessions_leave_out_the_sessions_of_other_jobs(server: Server, version: str) -> None:
    # The first page links on to v6's /JobSessions?jobId= (servers send next links of another
    # version), which ignores jobId: that page holds every job's sessions, each naming its job.
    other = "0b9d3c1e-7f2a-4e5b-8c6d-1a2b3c4d5e6f"
    mine = [_session(version, number, day=20 - number) for number in (1, 2)]

    def v6_session(number: int, job: str) -> dict[str, Any]:
        wire = _session("v6", number, day=20 - number)
        wire["_links"]["job"] = {"href": f"/v6/Jobs/{job}"}
        return wire

    later = [v6_session(3, other), v6_session(4, JOB_ID), v6_session(5, other), v6_session(6, JOB_ID)]
    path = f"/v6/Jobs/{JOB_ID.upper()}/JobSessions" if version == "v6" else f"/{version}/JobSessions"
    server.router.get(path).respond(
        json={
            "offset": 0,
            "limit": 2,
            "results": mine,
            "_links": {"next": {"href": f"/v6/JobSessions?jobId={JOB_ID}&offset=2&limit=10"}},
        }
    )
    server.router.get("/v6/JobSessions").respond(json={"offset": 2, "limit": 10, "results": later})
    async with server.client() as vbo:
        sessions = await vbo.job_sessions(JOB_ID.upper(), limit=None)

    assert [s.id for s in sessions] == [mine[0]["id"], mine[1]["id"], later[1]["id"], later[3]["id"]]
    assert {s.job_id.lower() for s in sessions if s.job_id} == {JOB_ID}


@pytest.mark.parametrize("version", V6_PLUS)
async def test_recent_sessions_read_a_session_a_later_page_repeats_once(server: Server, version: str) -> None:
    # The server-wide listing, paged by two, each later page starting one item early.
    sessions = []
    for number in range(1, 6):
        wire = session_wire(version)
        wire["id"] = f"{number:08d}-0000-4000-8000-000000000000"
        wire["creationTime"] = wire["endTime"] = f"2026-06-{20 - number:02d}T22:00:04Z"
        sessions.append(wire)

    def answer(request: httpx.Request) -> httpx.Response:
        offset = int(dict(parse_qsl(request.url.query.decode())).get("offset", 0))
        page: dict[str, Any] = {"offset": offset, "limit": 2, "results": sessions[offset : offset + 2]}
        if offset + 2 < len(sessions):
            nxt = request.url.copy_merge_params({"offset": offset + 1, "limit": 2})
            page["_links"] = {"next": {"href": nxt.raw_path.decode()}}
        return httpx.Response(200, json=page)

    server.router.get(f"/{version}/JobSessions").mock(side_effect=answer)
    async with server.client() as vbo:
        recent = await vbo.recent_sessions(dt.datetime(2026, 6, 1, tzinfo=dt.UTC))

    assert list(recent) == [JOB_ID]
    assert [s.id for s in recent[JOB_ID]] == [s["id"] for s in sessions]


@pytest.mark.parametrize("version", V6_PLUS)
async def test_service_instance_on_v6_plus(server: Server, vbo: VBOClient, version: str) -> None:
    server.router.get(f"/{version}/ServiceInstance").respond(
        json={"installationId": "6a3f2b1c-0d9e-4f8a-b7c6-d5e4f3a2b1c0", "version": "8.5.0.1014"}
    )
    instance = await vbo.service_instance()
    assert instance == ServiceInstance(
        installation_id="6a3f2b1c-0d9e-4f8a-b7c6-d5e4f3a2b1c0", version="8.5.0.1014"
    )
    assert server.urls() == [f"{BASE}/{version}/ServiceInstance"]


async def test_v1_refuses_without_sending_anything() -> None:
    server = Server("v1")
    async with server.client() as vbo:
        with pytest.raises(NotSupportedError, match="v1") as caught:
            await vbo.service_instance()
        assert caught.value.operation == "service_instance"
        with pytest.raises(NotSupportedError, match="full") as caught:
            await vbo.start_job(JOB_ID, full=True)
        assert caught.value.operation == "start_job"
        assert vbo.requests_sent == 0
        assert vbo.token_requests == 0
    assert server.router.calls.call_count == 0  # not even a token, not even a logout


# --- job actions -----------------------------------------------------------------------------------

ACTIONS = ("start", "stop", "enable", "disable")


def _expected_action(version: str, action: str, *, full: bool) -> tuple[str, Any]:
    """(path, JSON body or None for no body) of a job action."""
    if version == "v1":
        return f"/v1/Jobs/{JOB_ID}/Action", {action: None}
    return f"/{version}/Jobs/{JOB_ID}/{action}", ({"full": full} if action == "start" else None)


@pytest.mark.parametrize("status", [200, 204])
@pytest.mark.parametrize("action", ACTIONS)
async def test_job_actions_per_version(
    server: Server, vbo: VBOClient, version: str, action: str, status: int
) -> None:
    path, body = _expected_action(version, action, full=False)
    server.router.post(path).respond(status)

    method = getattr(vbo, f"{action}_job")
    result = await method(JOB_ID)

    assert result is None  # an empty answer, even from v8
    (request,) = server.requests
    assert request.method == "POST"
    assert str(request.url) == BASE + path
    if body is None:
        assert request.content == b""
        assert "content-type" not in request.headers
    else:
        assert json.loads(request.content) == body
        assert request.headers["content-type"] == "application/json"
    assert request.headers["authorization"] == f"Bearer {token_body(1)['access_token']}"


@pytest.mark.parametrize("version", V6_PLUS)
@pytest.mark.parametrize("full", [False, True])
async def test_start_sends_full_on_v6_plus(version: str, full: bool) -> None:
    server = Server(version)
    path, body = _expected_action(version, "start", full=full)
    server.router.post(path).respond(204)
    async with server.client() as vbo:
        assert await vbo.start_job(Job(id=JOB_ID), full=full) is None
    (request,) = server.requests
    assert json.loads(request.content) == body == {"full": full}


async def test_v8_start_answers_with_the_new_session() -> None:
    server = Server("v8")
    running = session_wire("v8")
    running.update(status="Running", endTime=None, jobWillBeRetried=None, jobSessionConfigType="Full")
    server.router.post(f"/v8/Jobs/{JOB_ID}/start").respond(200, json=running)
    async with server.client() as vbo:
        session = await vbo.start_job(JOB_ID, full=True)
    assert isinstance(session, JobSession)
    assert session.id == SESSION_ID
    assert session.job_id == JOB_ID
    assert session.status is JobStatus.RUNNING
    assert session.end_time is None
    assert session.statistics is not None
    assert session.statistics.transferred_data_bytes == 1288490188
    assert session.links.job is not None
    assert session.links.job.href == f"/v8/Jobs/{JOB_ID}"


async def test_v8_start_session_without_job_id_gets_the_job_s() -> None:
    server = Server("v8")
    running = session_wire("v8")
    del running["jobId"]
    del running["_links"]["job"]
    server.router.post(f"/v8/Jobs/{JOB_ID}/start").respond(200, json=running)
    async with server.client() as vbo:
        session = await vbo.start_job(JOB_ID)
    assert session is not None
    assert session.job_id == JOB_ID


@pytest.mark.parametrize(
    "answer",
    [b"<html>Job started</html>", b"[]", b'{"status": "Running"}'],
    ids=["not-json", "not-an-object", "no-id"],
)
async def test_v8_start_answered_with_no_session_says_the_job_was_started(answer: bytes) -> None:
    """A 200 whose body is not a session still started the job: the `DecodeError` names the
    request, as every other one does, and says the start was accepted, so that nobody sends it
    again thinking it failed."""
    server = Server("v8")
    server.router.post(f"/v8/Jobs/{JOB_ID}/start").respond(
        200, content=answer, headers={"Content-Type": "application/json"}
    )
    async with server.client() as vbo:
        with pytest.raises(DecodeError) as caught:
            await vbo.start_job(JOB_ID)
    assert caught.value.method == "POST"
    assert caught.value.url == f"{BASE}/v8/Jobs/{JOB_ID}/start"
    assert "the job was started" in str(caught.value)
    assert len(server.requests) == 1


@pytest.mark.parametrize("version", ["v1", "v6", "v7"])
async def test_a_body_before_v8_is_not_taken_for_a_session(version: str) -> None:
    server = Server(version)
    path, _ = _expected_action(version, "start", full=False)
    server.router.post(path).respond(200, json=session_wire("v8"))
    async with server.client() as vbo:
        assert await vbo.start_job(JOB_ID) is None


# --- token forms -------------------------------------------------------------------------------------


async def test_token_forms_of_password_and_refresh_grants(server: Server, version: str) -> None:
    # The first GET is refused (an empty 401, as v6+ servers send): the client refreshes and replays.
    server.router.get(f"/{version}/Jobs").mock(
        side_effect=[httpx.Response(401), httpx.Response(200, json=server.collection([], "Jobs"))]
    )
    async with server.client() as vbo:
        assert await vbo.jobs() == []
    extras = {"disable_antiforgery_token": "true"} if version in ("v7", "v8") else {}
    assert server.forms == [
        {"grant_type": "password", "username": USERNAME, "password": PASSWORD, **extras},
        {"grant_type": "refresh_token", "refresh_token": token_body(1)["refresh_token"], **extras},
    ]
    token_calls = [c.request for c in server.router.calls if c.request.url.path.endswith("/Token")]
    assert all(r.headers["content-type"] == "application/x-www-form-urlencoded" for r in token_calls)
    assert all(str(r.url) == f"{BASE}/{version}/Token" for r in token_calls)


async def test_an_empty_401_on_v8_renews_the_token_and_replays() -> None:
    server = Server("v8")
    page = server.collection([organization_wire("v8")], "Organizations")
    answers = [httpx.Response(401, content=b""), httpx.Response(200, json=page)]
    seen: list[tuple[str, str]] = []  # the auth flow replays the same Request object: copy now

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append((str(request.url), request.headers["authorization"]))
        return answers.pop(0)

    server.router.get("/v8/Organizations").mock(side_effect=answer)
    async with server.client() as vbo:
        (org,) = await vbo.organizations()
        assert org.id == ORG_ID
        assert vbo.token_requests == 2
    url = f"{BASE}/v8/Organizations?extendedView=true&limit=10000"
    assert seen == [
        (url, f"Bearer {token_body(1)['access_token']}"),
        (url, f"Bearer {token_body(2)['access_token']}"),
    ]
    assert [form["grant_type"] for form in server.forms] == ["password", "refresh_token"]


# --- logout ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("version", "status"), [("v7", 200), ("v8", 204)])
async def test_aclose_logs_out_on_v7_and_v8(version: str, status: int) -> None:
    server = Server(version)
    logout = server.router.post(f"/{version}/token/logout").respond(status)
    server.router.get(f"/{version}/Jobs").respond(json=server.collection([], "Jobs"))
    vbo = server.client()
    await vbo.jobs()
    assert not logout.called
    await vbo.aclose()
    assert logout.call_count == 1
    request = logout.calls.last.request
    assert str(request.url) == f"{BASE}/{version}/token/logout"
    assert request.headers["authorization"] == f"Bearer {token_body(1)['access_token']}"
    with pytest.raises(ClientStateError):
        await vbo.jobs()
    await vbo.aclose()  # twice is harmless, and logs out no more
    assert logout.call_count == 1


@pytest.mark.parametrize("version", ["v7", "v8"])
async def test_closing_with_an_expired_token_of_a_server_that_does_not_rotate_refresh_tokens_logs_it_out(
    version: str,
) -> None:
    """A server that gives the same refresh token back on a refresh grant (it does not rotate
    them): that token was not used up, so a close after the renewed access token expired redeems
    it to log out, as it does any live refresh token (it was left live on the server, the close
    taking it for one a renewal had used up)."""
    server = Server(version)
    grants: list[str] = []

    def token(request: httpx.Request) -> httpx.Response:
        grants.append(dict(parse_qsl(request.content.decode()))["grant_type"])
        return httpx.Response(200, json={**token_body(len(grants)), "refresh_token": "same-refresh-Wm4"})

    server.router.post(f"/{version}/Token").mock(side_effect=token)
    logout = server.router.post(f"/{version}/token/logout").respond(200 if version == "v7" else 204)
    server.router.get(f"/{version}/Jobs").respond(json=server.collection([], "Jobs"))
    vbo = server.client()
    await vbo.jobs()
    now = [0.0]
    vbo._tokens._clock = lambda: now[0]
    now[0] = 10**9  # the first access token has expired: the next call renews it
    await vbo.jobs()
    now[0] = 2 * 10**9  # and so has the renewed one by the time the client closes
    await vbo.aclose()
    assert grants == ["password", "refresh_token", "refresh_token"]  # never the password to log out
    assert logout.call_count == 1
    assert logout.calls.last.request.headers["authorization"] == f"Bearer {token_body(3)['access_token']}"


@pytest.mark.parametrize("version", ["v1", "v6"])
async def test_no_logout_before_v7(version: str) -> None:
    server = Server(version)
    logout = server.router.post(path__regex=r"(?i)/token/logout$").respond(200)
    server.router.get(f"/{version}/Jobs").respond(json=[])
    async with server.client() as vbo:
        await vbo.jobs()
    assert not logout.called
    assert [r.url.path for r in server.requests] == [f"/{version}/Jobs"]


async def test_no_logout_without_a_token() -> None:
    server = Server("v8")
    logout = server.router.post("/v8/token/logout").respond(204)
    async with server.client():
        pass
    assert not logout.called
    assert server.router.calls.call_count == 0


@pytest.mark.parametrize("version", ["v7", "v8"])
@pytest.mark.parametrize(
    "failure",
    [
        httpx.Response(500, json={"message": "An error has occurred."}),
        httpx.Response(401),
        httpx.ConnectError("connection refused"),
        RuntimeError("a custom transport's bug"),  # not even what no transport should raise
    ],
    ids=["500", "401", "connect-error", "transport-bug"],
)
async def test_a_failing_logout_never_makes_aclose_raise(version: str, failure: Any) -> None:
    server = Server(version)
    logout = server.router.post(f"/{version}/token/logout")
    if isinstance(failure, Exception):
        logout.mock(side_effect=failure)
    else:
        logout.mock(return_value=failure)
    server.router.get(f"/{version}/Jobs").respond(json=server.collection([], "Jobs"))
    vbo = server.client()
    await vbo.jobs()
    await vbo.aclose()  # must not raise
    # token, jobs, one logout attempt: never retried; a 401 (the token expired on the server's
    # clock) redeems the refresh token and logs that pair out, once.
    assert vbo.requests_sent == (5 if getattr(failure, "status_code", None) == 401 else 3)
    with pytest.raises(ClientStateError, match="closed"):
        await vbo.jobs()


def logout_then(version: str, server: Server, *statuses: int) -> respx.Route:
    return server.router.post(f"/{version}/token/logout").mock(
        side_effect=[httpx.Response(status) for status in statuses]
    )


@pytest.mark.parametrize("version", ["v7", "v8"])
async def test_a_logout_refused_401_redeems_the_refresh_token_and_logs_that_pair_out(version: str) -> None:
    """The access token expired on the server's clock: its logout is answered 401 and its refresh
    token stays live. The refresh grant (with v7+'s ``disable_antiforgery_token``), then the logout
    of the new pair; never the password."""
    server = Server(version)
    logout = logout_then(version, server, 401, 200 if version == "v7" else 204)
    server.router.get(f"/{version}/Jobs").respond(json=server.collection([], "Jobs"))
    vbo = server.client()
    await vbo.jobs()
    await vbo.aclose()
    bearers = [call.request.headers["authorization"] for call in logout.calls]
    assert bearers == [f"Bearer {token_body(n)['access_token']}" for n in (1, 2)]
    assert [form["grant_type"] for form in server.forms] == ["password", "refresh_token"]
    assert server.forms[1]["refresh_token"] == token_body(1)["refresh_token"]
    assert server.forms[1]["disable_antiforgery_token"] == "true"


@pytest.mark.parametrize("version", ["v7", "v8"])
async def test_an_access_token_expired_on_the_clients_clock_is_not_sent_to_log_out(version: str) -> None:
    """Expired on the client's own clock: the dead bearer is not sent; the refresh token is
    redeemed and the new pair logged out. Without a refresh token nothing is left to end:
    nothing is sent."""
    server = Server(version)
    logout = logout_then(version, server, 200 if version == "v7" else 204)
    server.router.get(f"/{version}/Jobs").respond(json=server.collection([], "Jobs"))
    vbo = server.client()
    await vbo.jobs()
    vbo._tokens._clock = lambda: float("inf")
    await vbo.aclose()
    assert [call.request.headers["authorization"] for call in logout.calls] == [
        f"Bearer {token_body(2)['access_token']}"
    ]
    assert [form["grant_type"] for form in server.forms] == ["password", "refresh_token"]

    bare = Server(version)
    bare.router.post(f"/{version}/Token").respond(json={"access_token": "only-access-Wq4", "expires_in": 60})
    logout = logout_then(version, bare, 204)
    bare.router.get(f"/{version}/Jobs").respond(json=bare.collection([], "Jobs"))
    vbo = bare.client()
    await vbo.jobs()
    vbo._tokens._clock = lambda: float("inf")
    await vbo.aclose()
    assert not logout.called
    assert vbo.requests_sent == 2  # the grant and the jobs


async def test_a_hanging_logout_is_given_up_within_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    # No clock is read: the bound is made tiny and the logout endless; aclose must return, having
    # cancelled the logout (the wait_for only guards against a hang). The bound itself is seconds.
    assert 0 < client_module.LOGOUT_TIMEOUT <= 5
    monkeypatch.setattr(client_module, "LOGOUT_TIMEOUT", 0.01)
    server = Server("v8")
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def hang(request: httpx.Request) -> httpx.Response:
        started.set()
        try:
            await asyncio.Event().wait()  # never answers
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return httpx.Response(204)  # pragma: no cover - never reached

    server.router.post("/v8/token/logout").mock(side_effect=hang)
    server.router.get("/v8/Jobs").respond(json=server.collection([], "Jobs"))
    vbo = server.client(timeout=None)  # no request timeout: only the logout's bound can end it
    await vbo.jobs()
    await asyncio.wait_for(vbo.aclose(), timeout=60)  # guards against a hang only
    assert started.is_set()
    assert cancelled.is_set()  # given up by the bound, not answered
    with pytest.raises(ClientStateError, match="closed"):
        await vbo.jobs()


async def test_a_cancelled_aclose_still_closes_the_client() -> None:
    server = Server("v8")
    started = asyncio.Event()

    async def hang(request: httpx.Request) -> httpx.Response:
        started.set()
        await asyncio.sleep(60)
        return httpx.Response(204)  # pragma: no cover - never reached

    server.router.post("/v8/token/logout").mock(side_effect=hang)
    server.router.get("/v8/Jobs").respond(json=server.collection([], "Jobs"))
    vbo = server.client()
    await vbo.jobs()
    closing = asyncio.create_task(vbo.aclose())
    await started.wait()
    closing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await closing
    # Cancelled while logging out (a shutdown with a deadline): the pool is closed all the same.
    with pytest.raises(ClientStateError, match="closed"):
        await vbo.jobs()
    assert "closed" in repr(vbo)


def test_closing_from_another_event_loop_still_raises() -> None:
    server = Server("v8")
    logout = server.router.post("/v8/token/logout").respond(204)
    server.router.get("/v8/Jobs").respond(json=server.collection([], "Jobs"))
    vbo = server.client()
    home = asyncio.new_event_loop()
    other = asyncio.new_event_loop()
    try:
        home.run_until_complete(vbo.jobs())
        with pytest.raises(ClientStateError, match="event loop"):
            other.run_until_complete(vbo.aclose())
        assert not logout.called
        home.run_until_complete(vbo.aclose())  # the client's own loop closes it, logging out
        assert logout.call_count == 1
    finally:
        other.close()
        home.close()


# A transport error whose exception chain loops (respx builds one when a side-effect function
# raises: the error's __cause__ is respx's wrapper, whose __cause__ is the error). Run in a
# child process: the bug spins in a synchronous loop that no asyncio timeout can interrupt.
_CYCLIC_CHAIN = """
import asyncio, ssl, httpx, respx
from vbo_async import TransportError, VBOClient

router = respx.MockRouter(base_url="https://vbo.test:4443", assert_all_called=False)

def refuse(request):
    raise httpx.ConnectError("connection refused", request=request)

router.post("/v8/Token").mock(side_effect=refuse)

async def main():
    async with VBOClient("https://vbo.test:4443", username="u", password="p", api_version="v8",
                         transport=httpx.MockTransport(router.async_handler)) as vbo:
        try:
            await vbo.jobs()
        except TransportError as exc:
            print(type(exc).__name__, exc.message)

asyncio.run(main())
"""


def test_a_transport_error_with_a_cyclic_chain_is_reported() -> None:
    """A cyclic exception chain (respx side effects build one) is walked a bounded number of steps
    (it used to spin forever inside the event loop). The child takes about 3 s alone; the limit
    only catches a spin, so it leaves a loaded machine room."""
    done = subprocess.run(
        [sys.executable, "-c", _CYCLIC_CHAIN], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("TransportError cannot connect")


# --- api_version values ----------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["v5", "V8", "..", "auto ", "", "v8/", "/v8", "v9", "v 8", "latest"])
def test_unknown_api_versions_are_refused_up_front(value: str) -> None:
    with pytest.raises(ConfigError, match="api_version"):
        VBOClient(BASE, username=USERNAME, password=PASSWORD, api_version=value, verify=_UNUSED_TLS)


@pytest.mark.parametrize("version", ["v1", "v6", "v7", "v8"])
def test_the_models_nested_in_resources_round_trip_alone(version: str) -> None:
    """``from_wire(to_wire(model), type(model)) == model`` for the models nested in resources
    too (a job's schedule policy cached apart): from_wire refused them ('decodes vbo-async
    models, not SchedulePolicy'). A resource's links need their resource (v6+ derives some from
    it): those stay a ConfigError saying to decode the resource."""
    vbo = VBOClient(BASE, username="u", password="p", api_version=version)
    window = BackupWindow(backup_intervals_array=HourFlags([True, False] * 84), minute_offset=60)
    nested = [
        SchedulePolicy(
            type=ScheduleType.DAILY, daily_time=dt.time(22, 0), retry_number=3, backup_window=window
        ),
        window,
        JobSessionStatistics(
            processing_rate="1 MB/s", transferred_data_bytes=10, bottleneck=Bottleneck.SOURCE
        ),
        SelectedItemObject(id="u1", name="Ann", mail="ann@example.com"),
    ]
    for model in nested:
        wire = json.loads(json.dumps(vbo.to_wire(model)))
        assert vbo.from_wire(wire, type(model)) == model
    with pytest.raises(DecodeError, match="retryNumber"):
        vbo.from_wire({"retryNumber": "many"}, SchedulePolicy)
    with pytest.raises(ConfigError, match="JobLinks"):
        vbo.from_wire({}, JobLinks)
    models = {value for value in vars(models_module).values() if isinstance(value, type) and attrs.has(value)}
    links = {model for model in models if model.__name__.endswith("Links")}
    assert set(MODELS) == models - links  # every resource and nested model, no links


@pytest.mark.parametrize("value", ["v5", "V8", "..", "auto", "auto "])
def test_from_wire_and_to_wire_refuse_unknown_versions(value: str) -> None:
    vbo = Server("v8").client()
    try:
        with pytest.raises(ConfigError, match="api_version"):
            vbo.from_wire(job_wire("v8"), Job, api_version=value)
        with pytest.raises(ConfigError, match="api_version"):
            vbo.to_wire(Job(id=JOB_ID), api_version=value)
    finally:
        asyncio.run(vbo.aclose())


async def test_a_call_made_while_aclose_logs_out_gets_no_new_token() -> None:
    """A call made (or a 401 renewed) while ``aclose()`` waits for the logout must not obtain a
    fresh token: nothing would ever log it out, and the client is closing."""
    server = Server("v8")
    started = asyncio.Event()
    release = asyncio.Event()

    async def hold(request: httpx.Request) -> httpx.Response:
        started.set()
        await release.wait()
        return httpx.Response(204)

    server.router.post("/v8/token/logout").mock(side_effect=hold)
    server.router.get("/v8/Jobs").respond(json=server.collection([], "Jobs"))
    vbo = server.client()
    await vbo.jobs()
    closing = asyncio.create_task(vbo.aclose())
    await started.wait()
    try:
        with pytest.raises(ClientStateError, match="clos"):
            await vbo.jobs()
    finally:
        release.set()
        await closing
    assert [form["grant_type"] for form in server.forms] == ["password"]
    assert vbo.token_requests == 1


async def test_a_token_renewed_while_aclose_logs_out_is_logged_out_too() -> None:
    """A renewal in flight when ``aclose()`` begins may still be granted (here the server answers
    it after the logout of the old token arrived): that token is logged out as well, once."""
    server = Server("v8")
    logout_seen = asyncio.Event()
    renewing = asyncio.Event()
    bearers: list[str] = []

    async def token(request: httpx.Request) -> httpx.Response:
        server.forms.append(dict(parse_qsl(request.content.decode())))
        if len(server.forms) == 2:
            renewing.set()
            await logout_seen.wait()  # granted while the client logs out
        return httpx.Response(200, json=token_body(len(server.forms)))

    def logout(request: httpx.Request) -> httpx.Response:
        bearers.append(request.headers["authorization"])
        logout_seen.set()
        return httpx.Response(204)

    server.router.post("/v8/Token").mock(side_effect=token)
    server.router.post("/v8/token/logout").mock(side_effect=logout)
    server.router.get("/v8/Jobs").mock(
        side_effect=[httpx.Response(200, json=server.collection([], "Jobs")), httpx.Response(401)]
    )
    vbo = server.client()
    await vbo.jobs()
    call = asyncio.create_task(vbo.jobs())  # its 401 renews the token
    await renewing.wait()
    await vbo.aclose()
    with pytest.raises(ClientStateError, match="clos"):
        await call
    assert [form["grant_type"] for form in server.forms] == ["password", "refresh_token"]
    assert bearers == [f"Bearer {token_body(n)['access_token']}" for n in (1, 2)]


async def test_a_version_found_while_aclose_runs_is_logged_out() -> None:
    """An ``"auto"`` client closed while its first grant (the v8 probe) is in flight: the token
    that grant brings is logged out at that version's endpoint, though the client never used it."""
    server = Server("v8")
    asked = asyncio.Event()
    answer = asyncio.Event()

    async def token(request: httpx.Request) -> httpx.Response:
        server.forms.append(dict(parse_qsl(request.content.decode())))
        asked.set()
        await answer.wait()
        return httpx.Response(200, json=token_body(len(server.forms)))

    server.router.post("/v8/Token").mock(side_effect=token)
    logout = server.router.post("/v8/token/logout").respond(204)
    vbo = server.client(api_version="auto")
    call = asyncio.create_task(vbo.jobs())
    await asked.wait()
    closing = asyncio.create_task(vbo.aclose())
    await asyncio.sleep(0)  # aclose has begun (nothing before its first await suspends)
    answer.set()
    await closing
    with pytest.raises(ClientStateError, match="clos"):
        await call
    assert len(server.forms) == 1
    assert logout.call_count == 1
    assert logout.calls.last.request.headers["authorization"] == f"Bearer {token_body(1)['access_token']}"
    assert vbo.api_version is None  # found while closing: not taken up


async def test_a_renewal_that_never_answers_holds_aclose_only_within_its_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``aclose()`` waits for a grant in flight (its token would need logging out) no longer than
    it waits for the logout: a token endpoint that never answers is given up, its caller ends with
    `ClientStateError`, the old token was logged out and no task is left behind."""
    monkeypatch.setattr(client_module, "LOGOUT_TIMEOUT", 0.05)
    server = Server("v8")
    renewing = asyncio.Event()

    async def token(request: httpx.Request) -> httpx.Response:
        server.forms.append(dict(parse_qsl(request.content.decode())))
        if len(server.forms) > 1:
            renewing.set()
            await asyncio.Event().wait()  # never answers
        return httpx.Response(200, json=token_body(len(server.forms)))

    server.router.post("/v8/Token").mock(side_effect=token)
    logout = server.router.post("/v8/token/logout").respond(204)
    server.router.get("/v8/Jobs").mock(
        side_effect=[httpx.Response(200, json=server.collection([], "Jobs")), httpx.Response(401)]
    )
    vbo = server.client()
    await vbo.jobs()
    await assert_closing_ends_waiting_calls(vbo, [vbo.jobs], renewing)
    assert logout.call_count == 1
    assert logout.calls.last.request.headers["authorization"] == f"Bearer {token_body(1)['access_token']}"


async def test_a_refresh_refused_while_aclose_logs_out_sends_no_password() -> None:
    """The logout of the old token revokes its refresh token, so a refresh in flight is refused:
    the client is closing, so the password is not sent again for a token nothing would use."""
    server = Server("v8")
    logout_seen = asyncio.Event()
    renewing = asyncio.Event()

    async def token(request: httpx.Request) -> httpx.Response:
        server.forms.append(dict(parse_qsl(request.content.decode())))
        if server.forms[-1]["grant_type"] == "refresh_token":
            renewing.set()
            await logout_seen.wait()
            return httpx.Response(400, json={"error": "invalid_grant"})
        return httpx.Response(200, json=token_body(len(server.forms)))

    def logout(request: httpx.Request) -> httpx.Response:
        logout_seen.set()
        return httpx.Response(204)

    server.router.post("/v8/Token").mock(side_effect=token)
    logouts = server.router.post("/v8/token/logout").mock(side_effect=logout)
    server.router.get("/v8/Jobs").mock(
        side_effect=[httpx.Response(200, json=server.collection([], "Jobs")), httpx.Response(401)]
    )
    vbo = server.client()
    await vbo.jobs()
    call = asyncio.create_task(vbo.jobs())
    await renewing.wait()
    await vbo.aclose()
    with pytest.raises(ClientStateError, match="clos"):
        await call
    assert [form["grant_type"] for form in server.forms] == ["password", "refresh_token"]
    assert logouts.call_count == 1


REDEEM_ANSWERS = {
    "400": lambda: httpx.Response(400, json={"error": "invalid_grant"}),
    "401": lambda: httpx.Response(401),
    "429": lambda: httpx.Response(429, headers={"Retry-After": "0"}),
    "503": lambda: httpx.Response(503),
    "a read error": lambda: httpx.ReadError("connection reset"),
    "no answer": None,
}


@pytest.mark.parametrize("answer", list(REDEEM_ANSWERS))
async def test_a_redeem_to_log_out_that_fails_never_sends_the_password_nor_the_refresh_token_twice(
    answer: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Closing with an expired access token redeems its refresh token to log out. Whatever the
    token endpoint does with that redeem (refuses it, throttles it, fails, drops it, never
    answers within the logout's time: shortened here), ``aclose()`` returns and raises nothing;
    the password is never sent, the refresh token is sent again only when no server handed out
    anything for it (a 429 or 503 is retried like a GET), no logout goes out without a valid
    bearer, and no token appears in the log."""
    monkeypatch.setattr(client_module, "LOGOUT_TIMEOUT", 0.5)
    caplog.set_level("DEBUG", logger="vbo_async")
    server = Server("v8")
    make = REDEEM_ANSWERS[answer]

    async def token(request: httpx.Request) -> httpx.Response:
        form = dict(parse_qsl(request.content.decode()))
        server.forms.append(form)
        if form["grant_type"] == "refresh_token":
            if make is None:
                await asyncio.Event().wait()
            made = make()
            if isinstance(made, Exception):
                raise made
            return made
        return httpx.Response(200, json=token_body(len(server.forms)))

    server.router.post("/v8/Token").mock(side_effect=token)
    logout = server.router.post("/v8/token/logout").respond(204)
    server.router.get("/v8/Jobs").respond(json=server.collection([], "Jobs"))
    vbo = server.client(retry=attrs.evolve(FAST, attempts=2))
    await vbo.jobs()
    vbo._tokens._clock = lambda: float("inf")  # the access token has expired
    await asyncio.wait_for(vbo.aclose(), timeout=30)  # guards against a hang only
    grants = [form["grant_type"] for form in server.forms]
    retried = answer in ("429", "503")
    assert grants[0] == "password"
    assert grants[1:] == ["refresh_token"] * (2 if retried else 1)
    assert not logout.called
    first = token_body(1)
    said = caplog.text
    assert first["access_token"] not in said
    assert first["refresh_token"] not in said
