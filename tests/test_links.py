"""Following ``_links``: rebased onto the client's own base URL, refused before any request when unsafe."""

from __future__ import annotations

import copy
import pickle
from typing import Any
from urllib.parse import quote

import attrs
import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vbo_async import (
    BackupRepository,
    ClientStateError,
    CollectionLink,
    ConfigError,
    Job,
    JobSession,
    Link,
    LinkError,
    Organization,
    Proxy,
    SelectedMailbox,
    VBOClient,
)
from vbo_async._dialects import DIALECTS, Route
from vbo_async._dialects._base import quote_segment
from vbo_async._urls import _LONGEST_HREF, ApiRoot, _check_each_segment, _check_segments, with_query

from .conftest import FOREIGN, PASSWORD, FakeVBO, client_for

JOB_ID = "70a8cbaf-642f-4c6f-934d-fb10e597a82a"
ORG_ID = "b2d9414d-c417-4a94-be3b-b38a3c2e8a7b"
REPO_ID = "a740fb93-4de8-4de4-977e-765dd092748f"
PROXY_ID = "5a905bb5-9071-433c-9d2f-f805d4da2cf4"
SESSION_ID = "9c8b7a6d-3333-4c5d-9e0f-1a2b3c4d5e6f"


def serve_link_targets(fake: FakeVBO, seed: list[dict[str, Any]]) -> None:
    fake.route("GET", "/v1/Jobs", seed)
    fake.route("GET", f"/v1/Jobs/{JOB_ID}", seed[0])
    fake.route("GET", f"/v1/Organizations/{ORG_ID}", {"id": ORG_ID, "name": "contoso.onmicrosoft.com"})
    fake.route("GET", f"/v1/BackupRepositories/{REPO_ID}", {"id": REPO_ID, "dailyRetentionPeriod": "14"})
    fake.route("GET", f"/v1/Proxies/{PROXY_ID}", {"id": PROXY_ID, "hostName": "proxy01"})
    fake.route(
        "GET",
        f"/v1/Jobs/{JOB_ID}/SelectedMailboxes",
        [{"id": "m1", "email": "a@contoso.onmicrosoft.com"}, {"id": "m2"}],
    )
    fake.route("GET", f"/v1/Jobs/{JOB_ID}/JobSessions", [{"id": SESSION_ID, "status": "Success"}])


@pytest.mark.parametrize("prefix", ["", "/api"], ids=["root", "path-prefix"])
async def test_every_seed_link_goes_to_the_clients_host(seed: list[dict[str, Any]], prefix: str) -> None:
    base = f"https://vbo.test:4443{prefix}"
    fake = FakeVBO(prefix=prefix)
    serve_link_targets(fake, seed)
    async with client_for(fake, base_url=base) as vbo:
        (job,) = await vbo.jobs()
        assert job.links.self.href.startswith(FOREIGN)

        again = await job.links.self
        org = await job.links.organization
        repo = await job.links.repository
        proxy = await job.links.proxy
        mailboxes = await job.links.selected_mailboxes
        sessions = await job.links.jobsessions

    assert isinstance(again, Job)
    assert again.id == JOB_ID
    assert isinstance(org, Organization)
    assert org.id == ORG_ID
    assert isinstance(repo, BackupRepository)
    assert repo.daily_retention_period == 14
    assert isinstance(proxy, Proxy)
    assert proxy.host_name == "proxy01"
    assert [type(m) for m in mailboxes] == [SelectedMailbox, SelectedMailbox]
    assert [m.id for m in mailboxes] == ["m1", "m2"]
    assert [type(s) for s in sessions] == [JobSession]
    assert sessions[0].id == SESSION_ID

    assert len(fake.requests) == 8  # token + jobs + six links
    for request in fake.requests:
        assert request.url.host == "vbo.test", request.url
        assert request.url.port == 4443
        assert request.url.scheme == "https"
        assert request.url.path.startswith(f"{prefix}/v1/")
        assert "support.east.local" not in str(request.url)
    assert fake.paths()[2:] == [
        f"{prefix}/v1/Jobs/{JOB_ID}",
        f"{prefix}/v1/Organizations/{ORG_ID}",
        f"{prefix}/v1/BackupRepositories/{REPO_ID}",
        f"{prefix}/v1/Proxies/{PROXY_ID}",
        f"{prefix}/v1/Jobs/{JOB_ID}/SelectedMailboxes",
        f"{prefix}/v1/Jobs/{JOB_ID}/JobSessions",
    ]
    # The bearer token goes with every link request, to our host only.
    assert all(r.headers["authorization"].startswith("Bearer ") for r in fake.api_requests)


async def test_async_for_over_a_collection_link(
    fake: FakeVBO, vbo: VBOClient, seed: list[dict[str, Any]]
) -> None:
    serve_link_targets(fake, seed)
    (job,) = await vbo.jobs()
    ids = [mailbox.id async for mailbox in job.links.selected_mailboxes]
    assert ids == ["m1", "m2"]
    assert fake.paths()[-1] == f"/v1/Jobs/{JOB_ID}/SelectedMailboxes"


@pytest.mark.parametrize("relation", ["users", "groups", "sites", "teams"])
async def test_a_collection_link_to_raw_json_gives_the_items_as_sent(
    fake: FakeVBO, vbo: VBOClient, relation: str
) -> None:
    """An organization's users, groups, sites and teams have no model: their items are raw JSON,
    every page followed, by ``await`` and ``async for`` alike."""
    path = f"/v1/Organizations/o1/{relation.title()}"
    fake.route("GET", "/v1/Organizations/o1", {"id": "o1", "_links": {relation: {"href": path}}})
    items = [{"id": "u1", "name": "Ann"}, {"id": "u2", "flags": [1, None]}, "odd", None]
    fake.route("GET", path, {"results": items[:2], "_links": {"next": {"href": f"{path}?offset=2"}}})
    fake.route("GET", f"{path}?offset=2", {"results": items[2:]})
    link = getattr((await vbo.organization("o1")).links, relation)
    assert await link == items
    assert [item async for item in link] == items


async def test_absent_link_is_none(fake: FakeVBO, vbo: VBOClient, seed: list[dict[str, Any]]) -> None:
    del seed[0]["_links"]["proxy"]
    seed[0]["_links"]["repository"] = {"href": None}
    seed[0]["_links"]["organization"] = None
    fake.route("GET", "/v1/Jobs", seed)
    (job,) = await vbo.jobs()
    assert job.links.proxy is None
    assert job.links.repository is None
    assert job.links.organization is None
    assert job.links.self is not None


@pytest.mark.parametrize("name", ["repositories", "Repository", "", "links", "__class__"])
async def test_a_relation_named_at_run_time_that_the_resource_lacks_is_a_link_error(
    fake: FakeVBO, vbo: VBOClient, seed: list[dict[str, Any]], name: str
) -> None:
    """``links.require`` takes any str (a name from a config or CLI option): one the resource has
    no relation of is a `LinkError` naming it and the relations there are (it was a
    `ConfigError`, so one ``except LinkError`` did not cover both ways a link can be missing)."""
    fake.route("GET", "/v1/Jobs", seed)
    (job,) = await vbo.jobs()
    relation: str = name  # as read at run time
    with pytest.raises(LinkError, match=r"JobLinks has no relation .*; it has self, .*repository") as caught:
        job.links.require(relation)
    assert caught.value.relation == name
    known: str = "".join(["repo", "sitory"])
    assert job.links.require(known) is job.links.repository is not None


async def test_job_without_links(fake: FakeVBO, vbo: VBOClient, seed: list[dict[str, Any]]) -> None:
    del seed[0]["_links"]
    fake.route("GET", "/v1/Jobs", seed)
    (job,) = await vbo.jobs()
    assert job.links.self is None
    assert job.links.jobsessions is None


async def job_with_link(fake: FakeVBO, vbo: VBOClient, seed: list[dict[str, Any]], href: str) -> Job:
    job = copy.deepcopy(seed[0])
    job["_links"]["self"] = {"href": href}
    fake.route("GET", "/v1/Jobs", [job])
    (decoded,) = await vbo.jobs()
    return decoded


@pytest.mark.parametrize(
    "href",
    [
        "https://support.east.local:4443/v2/Jobs/70a8cbaf",
        "https://support.east.local:4443/Jobs/70a8cbaf",
        "https://evil.example/steal",
        "Jobs/70a8cbaf",
        "/api/v10/Jobs/x",
        "https://support.east.local:4443/v1",
        "https://support.east.local:4443/v1/",
    ],
)
async def test_href_without_the_version_segment_is_refused_before_any_request(
    fake: FakeVBO, vbo: VBOClient, seed: list[dict[str, Any]], href: str
) -> None:
    job = await job_with_link(fake, vbo, seed, href)
    sent = len(fake.requests)

    with pytest.raises(LinkError) as info:
        await job.links.self

    assert len(fake.requests) == sent
    assert info.value.href == href
    assert info.value.relation == "self"
    with pytest.raises(LinkError):
        _ = job.links.self.url


@pytest.mark.parametrize(
    "href",
    [
        f"{FOREIGN}/v1/Jobs/../../admin",
        f"{FOREIGN}/v1/../secret",
        f"{FOREIGN}/v1/Jobs/%2e%2e/%2e%2e/admin",
        f"{FOREIGN}/v1/Jobs/%2E%2E/x",
        f"{FOREIGN}/v1/Jobs/%2e/x",
        f"{FOREIGN}/v1/Jobs/./x",
        f"{FOREIGN}/v1/Jobs\\..\\..\\admin",
        f"{FOREIGN}/v1/Jobs/%5c..%5cadmin",
        f"{FOREIGN}/v1/Jobs/a%2f..%2f..%2fb",
        f"{FOREIGN}/v1/Jobs/x%00y",
        f"{FOREIGN}/v1/Jobs/x?a=1 b",
        # IIS's %uNNNN escapes, which http.sys (VB365's web server) decodes by default
        # (PercentUAllowed) before it removes dot segments and routes: '..', '/' and '\\'.
        f"{FOREIGN}/v1/Jobs/%u002e%u002e/%u002e%u002e/admin",
        f"{FOREIGN}/v1/Jobs/%U002E%U002E/x",
        f"{FOREIGN}/v1/Jobs/a%u002f..%u002f..%u002fb",
        f"{FOREIGN}/v1/Jobs/%u005c..%u005cadmin",
    ],
)
async def test_hrefs_that_would_leave_the_api_root_are_refused(
    fake: FakeVBO, vbo: VBOClient, seed: list[dict[str, Any]], href: str
) -> None:
    job = await job_with_link(fake, vbo, seed, href)
    sent = len(fake.requests)
    with pytest.raises(LinkError) as info:
        await job.links.self
    assert len(fake.requests) == sent
    assert info.value.relation == "self"


MEGABYTES = 4_000_000


@pytest.mark.parametrize(
    "href",
    [
        "/elsewhere/" + "a" * MEGABYTES,  # names no API version
        "/v1/Jobs/../" + "a" * MEGABYTES,  # would leave the API root
        "/v1/Jobs?x=" + "a" * MEGABYTES + " ",  # a malformed query
        "/v1/Jobs?x=" + "a" * MEGABYTES,  # below the root, too long to request
    ],
    ids=["no-version", "leaving", "query", "too-long"],
)
@pytest.mark.parametrize("relation", ["next", "self"])
async def test_a_refused_megabyte_href_is_kept_once_and_quoted_in_part(
    fake: FakeVBO, vbo: VBOClient, seed: list[dict[str, Any]], href: str, relation: str
) -> None:
    """A `LinkError` quoted the whole href in its message besides keeping it in ``href``: a
    server's next link of megabytes was held twice by every error kept (a sweep's result of each
    tenant) and printed whole in every log line naming the error. The message quotes its first
    500 characters and says how long it is."""
    if relation == "next":
        fake.route("GET", "/v1/Jobs", {"results": seed, "_links": {"next": {"href": href}}})
        with pytest.raises(LinkError) as info:
            await vbo.jobs()
    else:
        job = await job_with_link(fake, vbo, seed, href)
        with pytest.raises(LinkError) as info:
            await job.links.self
    error = info.value
    assert error.href is not None
    assert len(error.href) > MEGABYTES  # kept whole, for the caller
    assert len(str(error)) < 1_000
    assert f"{error.href[:500]!r}... ({len(error.href)} characters)" in str(error)
    assert len(pickle.dumps(error)) < 1.1 * MEGABYTES  # the href once, not twice


@pytest.mark.parametrize("secret", [False, True], ids=["plain", "quoting-the-password"])
async def test_a_through_link_whose_middle_lacks_the_link_quotes_the_via_href_cut(secret: bool) -> None:
    """A v6+ job's proxy is its repository's: when the repository has no proxy link, the
    `LinkError` names the repository's href, quoted as every `LinkError` quotes one (its first
    500 characters and its length), not whole (a server's href may be tens of kilobytes); a
    password the href quotes is masked in the message as in ``href``."""
    query = f"k={PASSWORD}&pad=" if secret else "pad="
    href = f"/v8/BackupRepositories/r1?{query}" + "a" * 60_000

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/v8/Token":
            return httpx.Response(
                200, json={"access_token": "access-Zq9xKp2", "token_type": "bearer", "expires_in": 3599}
            )
        if path == "/v8/Jobs/j1":
            return httpx.Response(
                200, json={"id": "j1", "name": "D", "_links": {"backupRepository": {"href": href}}}
            )
        if path == "/v8/BackupRepositories/r1":
            return httpx.Response(200, json={"id": "r1", "name": "repo", "_links": {}})
        return httpx.Response(404, json={})

    async with client_for(handler, api_version="v8") as vbo:
        proxy = (await vbo.job("j1")).links.proxy
        assert proxy is not None
        with pytest.raises(LinkError) as info:
            await proxy
    shown = href.replace(PASSWORD, "***")
    assert info.value.href == shown
    assert info.value.relation == "proxy"
    assert str(info.value) == (
        f"cannot follow 'proxy': the 'backupRepository' resource at {shown[:500]!r}... "
        f"({len(shown)} characters) has no 'proxy' link"
    )


async def test_collection_link_refused_for_async_for_too(
    fake: FakeVBO, vbo: VBOClient, seed: list[dict[str, Any]]
) -> None:
    seed[0]["_links"]["jobsessions"] = {"href": f"{FOREIGN}/v1/Jobs/%2e%2e/%2e%2e"}
    fake.route("GET", "/v1/Jobs", seed)
    (job,) = await vbo.jobs()
    sent = len(fake.requests)

    async def drain() -> list[Any]:
        return [session async for session in job.links.jobsessions]

    with pytest.raises(LinkError):
        await drain()
    with pytest.raises(LinkError):
        await job.links.jobsessions
    assert len(fake.requests) == sent


async def test_query_string_is_kept(fake: FakeVBO, vbo: VBOClient, seed: list[dict[str, Any]]) -> None:
    seed[0]["_links"]["jobsessions"] = {
        "href": f"{FOREIGN}/v1/Jobs/{JOB_ID}/JobSessions?offset=30&limit=30#frag"
    }
    fake.route("GET", "/v1/Jobs", seed)
    fake.route("GET", f"/v1/Jobs/{JOB_ID}/JobSessions?offset=30&limit=30", [{"id": SESSION_ID}])
    (job,) = await vbo.jobs()

    sessions = await job.links.jobsessions

    assert [s.id for s in sessions] == [SESSION_ID]
    url = fake.requests[-1].url
    assert url.host == "vbo.test"
    assert url.path == f"/v1/Jobs/{JOB_ID}/JobSessions"
    assert url.query == b"offset=30&limit=30"
    assert url.fragment == ""


@pytest.mark.parametrize(
    "href",
    [
        f"/v1/Jobs/{JOB_ID}",  # v6-style server-relative
        f"https://support.east.local:4443/V1/jobs/{JOB_ID}",  # other case
        f"http://support.east.local/v1/Jobs/{JOB_ID}",  # other scheme and port
        f"https://support.east.local:4443/some/prefix/v1/Jobs/{JOB_ID}",
    ],
)
async def test_other_href_shapes_are_rebased(
    fake: FakeVBO, vbo: VBOClient, seed: list[dict[str, Any]], href: str
) -> None:
    job = await job_with_link(fake, vbo, seed, href)
    fake.route("GET", f"/v1/Jobs/{JOB_ID}", seed[0])
    again = await job.links.self
    assert again.id == JOB_ID
    url = fake.requests[-1].url
    assert (url.scheme, url.host, url.port) == ("https", "vbo.test", 4443)
    assert url.path.lower() == f"/v1/jobs/{JOB_ID}"


async def test_follow_a_link(fake: FakeVBO, vbo: VBOClient, seed: list[dict[str, Any]]) -> None:
    serve_link_targets(fake, seed)
    (job,) = await vbo.jobs()
    org = await vbo.follow(job.links.organization)
    sessions = await vbo.follow(job.links.jobsessions)
    assert isinstance(org, Organization)
    assert org.id == ORG_ID
    assert [s.id for s in sessions] == [SESSION_ID]
    assert fake.requests[-1].url.host == "vbo.test"


async def test_follow_a_link_decoded_by_another_client(seed: list[dict[str, Any]]) -> None:
    first, second = FakeVBO(), FakeVBO(prefix="/other")
    serve_link_targets(first, seed)
    serve_link_targets(second, seed)
    async with client_for(first) as a, client_for(second, base_url="https://backup.test:9443/other") as b:
        (job,) = await a.jobs()
        before = len(first.requests)
        org = await b.follow(job.links.organization)
    assert org.id == ORG_ID
    assert len(first.requests) == before
    assert second.paths() == ["/other/v1/Token", f"/other/v1/Organizations/{ORG_ID}"]
    assert second.requests[-1].url.host == "backup.test"


async def test_a_fresh_auto_client_finds_its_version_before_following_a_link(
    seed: list[dict[str, Any]],
) -> None:
    """A link kept from earlier (pickled, or decoded by another client) may be the first thing an
    ``"auto"`` client is asked for: it finds the server's version first, as any first call does,
    instead of failing for want of a token endpoint. So does a link of a model made by
    ``from_wire``."""
    first, second = FakeVBO(), FakeVBO()
    serve_link_targets(first, seed)
    serve_link_targets(second, seed)
    async with client_for(first) as a:
        (job,) = await a.jobs()
    thawed = pickle.loads(pickle.dumps(job))
    async with client_for(second, api_version="auto") as b:
        org = await b.follow(thawed.links.organization)
        assert b.api_version == "v1"
    assert org.id == ORG_ID
    assert second.paths()[-1] == f"/v1/Organizations/{ORG_ID}"
    third = FakeVBO()
    serve_link_targets(third, seed)
    async with client_for(third, api_version="auto") as c:
        rebuilt = c.from_wire(seed[0], Job, api_version="v1")
        repository = await rebuilt.links.repository
    assert repository.id == REPO_ID
    assert third.paths()[-1] == f"/v1/BackupRepositories/{REPO_ID}"


async def test_follow_refuses_an_unsafe_link_and_non_links(
    fake: FakeVBO, vbo: VBOClient, seed: list[dict[str, Any]]
) -> None:
    job = await job_with_link(fake, vbo, seed, f"{FOREIGN}/v1/%2e%2e/x")
    sent = len(fake.requests)
    with pytest.raises(LinkError):
        await vbo.follow(job.links.self)
    with pytest.raises(ConfigError):
        await vbo.follow(f"{FOREIGN}/v1/Jobs/{JOB_ID}")  # type: ignore[arg-type]
    assert len(fake.requests) == sent


async def test_a_pickled_job_keeps_its_links_unbound_until_followed(
    fake: FakeVBO, vbo: VBOClient, seed: list[dict[str, Any]]
) -> None:
    """Pickling leaves the client behind (it holds a connection pool and locks); the links of the
    copy are followed through a client, and awaiting one directly says how."""
    serve_link_targets(fake, seed)
    (job,) = await vbo.jobs()
    thawed = pickle.loads(pickle.dumps(job))
    assert thawed == job
    assert type(thawed.links.jobsessions) is CollectionLink
    sent = len(fake.requests)
    with pytest.raises(ClientStateError, match=r"client\.follow"):
        await thawed.links.repository
    with pytest.raises(ClientStateError):
        [session async for session in thawed.links.jobsessions]
    with pytest.raises(ClientStateError):
        _ = thawed.links.proxy.url
    assert len(fake.requests) == sent
    repository = await vbo.follow(thawed.links.repository)
    sessions = await vbo.follow(thawed.links.jobsessions)
    assert repository.id == REPO_ID
    assert [s.id for s in sessions] == [SESSION_ID]


async def test_copies_of_a_job_keep_their_links_bound(
    fake: FakeVBO, vbo: VBOClient, seed: list[dict[str, Any]]
) -> None:
    serve_link_targets(fake, seed)
    (job,) = await vbo.jobs()
    for duplicate in (copy.copy(job), copy.deepcopy(job)):
        assert duplicate == job
        assert duplicate.links.proxy is job.links.proxy
        proxy = await duplicate.links.proxy
        assert proxy.id == PROXY_ID


@pytest.mark.parametrize("api_version", ["v1", "v8"])
def test_a_link_cannot_be_changed(api_version: str) -> None:
    """Links are immutable (copies are the link itself, and jobs naming one repository share one
    link): assigning a job's link another href changed every job sharing it, the jobs the client
    decoded afterwards from answers naming the first href, and the hash of a job held in a set."""
    vbo = VBOClient("https://vbo.test:4443", username="u", password="p", api_version=api_version)
    version = f"/{api_version}"
    repository = {"backupRepository" if api_version == "v8" else "repository": {"href": f"{version}/Repo/r"}}
    wire = [
        {"id": job_id, "_links": {"self": {"href": f"{version}/Jobs/{job_id}"}, **repository}}
        for job_id in "ab"
    ]
    first, second = (vbo.from_wire(item, Job) for item in wire)
    held = {first}
    links = [link for job in (first, second) for link in attrs.astuple(job.links, recurse=False) if link]
    assert len(links) >= 4
    for link in links:
        for name, value in (("href", f"{version}/Repo/other"), ("relation", "other")):
            with pytest.raises(AttributeError):
                setattr(link, name, value)
            with pytest.raises(AttributeError):
                delattr(link, name)
    assert first in held
    assert second.links.repository is not None
    assert second.links.repository.href == f"{version}/Repo/r"
    assert vbo.from_wire(wire[0], Job) == first


async def test_links_compare_by_relation_and_href(
    fake: FakeVBO, vbo: VBOClient, seed: list[dict[str, Any]]
) -> None:
    fake.route("GET", "/v1/Jobs", seed)
    (one,) = await vbo.jobs()
    (two,) = await vbo.jobs()
    assert one.links.self == two.links.self
    assert hash(one.links.self) == hash(two.links.self)
    assert one.links.self != one.links.organization
    assert "support.east.local" in repr(one.links.self)
    assert isinstance(one.links.jobsessions, CollectionLink)
    assert isinstance(one.links.jobsessions, Link)


# --- the pure rebasing rule ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base", "href", "expected"),
    [
        ("https://vbo.test:4443", f"{FOREIGN}/v1/Jobs/1", "https://vbo.test:4443/v1/Jobs/1"),
        ("https://vbo.test:4443/", f"{FOREIGN}/v1/Jobs/1", "https://vbo.test:4443/v1/Jobs/1"),
        ("https://vbo.test:4443/api", f"{FOREIGN}/v1/Jobs/1", "https://vbo.test:4443/api/v1/Jobs/1"),
        (
            "https://vbo.test:4443/api/",
            "/v1/Jobs?offset=2&limit=2",
            "https://vbo.test:4443/api/v1/Jobs?offset=2&limit=2",
        ),
        ("https://vbo.test", f"{FOREIGN}/V1/Jobs/1", "https://vbo.test/v1/Jobs/1"),
    ],
)
def test_rebase(base: str, href: str, expected: str) -> None:
    root = ApiRoot(base, ["v1"])
    assert root.rebase(href) == expected
    assert root.contains(root.rebase(href))


def test_the_longest_href_rebase_reads_is_the_longest_url_httpx_requests() -> None:
    """`_LONGEST_HREF` is httpx's own bound (private to httpx): a URL of that many characters
    is one httpx takes, one character more is "URL too long"."""
    url = "https://vbo.test/v1/Jobs?x="
    assert _LONGEST_HREF == 65_536
    assert len(str(httpx.URL(url + "a" * (_LONGEST_HREF - len(url))))) == _LONGEST_HREF
    with pytest.raises(httpx.InvalidURL, match="URL too long"):
        httpx.URL(url + "a" * (_LONGEST_HREF + 1 - len(url)))


@pytest.mark.parametrize(
    ("prefix", "suffix"),
    [
        (f"{FOREIGN}/v1/Jobs?x=", ""),
        ("/v1/Jobs?x=", ""),
        ("?x=", ""),
        ("/v1/Jobs?x=", " "),  # a malformed query, found only by reading it
        ("/v1/Jobs?x=", "\ud800"),  # a lone surrogate, found only by encoding it
        ("/v1/" + "a/" * 10, ""),  # a path, its segments checked one by one
    ],
    ids=["absolute", "server-relative", "relative", "malformed-query", "surrogate", "long-path"],
)
def test_an_href_longer_than_any_url_httpx_requests_is_refused_before_it_is_read(
    prefix: str, suffix: str
) -> None:
    """A server's href (a ``next`` link of most of a 64 MiB page) was read whole, rebasing
    scanning its query and a listing parsing it for loops, seconds of CPU before httpx refused
    it: one longer than httpx's bound is refused first, quoted as every refused href is."""
    root = ApiRoot("https://vbo.test:4443", ["v1"])
    context = "https://vbo.test:4443/v1/Jobs"
    longest = prefix + "a" * (_LONGEST_HREF - len(prefix))
    assert root.rebase(longest, context=context).endswith("a" * 1_000)  # at the bound: read
    href = longest + "a" * 300_000 + suffix
    with pytest.raises(LinkError) as info:
        root.rebase(href, context=context, relation="next")
    assert info.value.href == href
    assert info.value.relation == "next"
    assert str(info.value) == (
        f"href {href[:500]!r}... ({len(href)} characters) is longer than any URL httpx requests "
        "(65,536 characters); refusing to follow it"
    )


async def test_a_link_longer_than_any_url_httpx_requests_is_refused_each_time_it_is_followed(
    fake: FakeVBO, vbo: VBOClient, seed: list[dict[str, Any]]
) -> None:
    """The client keeps the URLs of the hrefs it rebased (short ones): an href over httpx's
    bound is refused again at every use, without a request, never kept as rebased."""
    href = "/v1/Jobs/" + "a" * _LONGEST_HREF
    job = await job_with_link(fake, vbo, seed, href)
    fake.requests.clear()
    for _ in range(2):
        with pytest.raises(LinkError, match="is longer than any URL httpx requests"):
            job.links.self.url  # noqa: B018 - the refusal is the test
        with pytest.raises(LinkError, match="is longer than any URL httpx requests"):
            await job.links.self
        with pytest.raises(LinkError, match="is longer than any URL httpx requests"):
            await vbo.follow(job.links.self)
    assert fake.requests == []


def test_rebase_resolves_relative_hrefs_against_their_context() -> None:
    root = ApiRoot("https://vbo.test:4443", ["v1"])
    context = "https://vbo.test:4443/v1/Jobs/1/JobSessions?offset=0&limit=2"
    assert root.rebase("JobSessions?offset=2&limit=2", context=context) == (
        "https://vbo.test:4443/v1/Jobs/1/JobSessions?offset=2&limit=2"
    )
    with pytest.raises(LinkError):
        root.rebase("../../../x", context=context)


@pytest.mark.parametrize(
    "href", ["/v1/Organizations/\ud800", "/v1/Jobs?name=\udfff", "/v1/Jobs/\u00e9t\u00e9"]
)
async def test_an_href_no_url_can_carry_is_a_link_error(href: str) -> None:
    """A lone surrogate (a model built with ``from_wire`` from data decoded elsewhere: the
    decoder itself mends them) is a `LinkError` before any request, not httpx's bare
    `UnicodeEncodeError`; other non-ASCII text is followed, percent-encoded."""
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        if request.url.path.endswith("/Token"):
            return httpx.Response(200, json={"access_token": "a", "token_type": "bearer", "expires_in": 3600})
        return httpx.Response(200, json={"id": "o1"})

    transport = httpx.MockTransport(answer)
    async with VBOClient(
        "https://vbo.test", username="u", password="p", api_version="v1", transport=transport
    ) as vbo:
        job = vbo.from_wire({"id": "J1", "_links": {"organization": {"href": href}}}, Job)
        if href.isascii() or "\u00e9" in href:
            assert (await vbo.follow(job.links.organization)).id == "o1"
            assert seen[-1] == "https://vbo.test/v1/Jobs/%C3%A9t%C3%A9"
        else:
            with pytest.raises(LinkError, match="no text a URL can carry"):
                await job.links.organization
            assert seen == []


@pytest.mark.parametrize("base", ["vbo.test:4443", "ftp://vbo.test", "https://", "https://vbo.test/?x=1"])
def test_bad_base_urls(base: str) -> None:
    with pytest.raises(ConfigError):
        ApiRoot(base, ["v1"])


# --- _check_segments' short cut for plain paths agrees with checking each segment ---------------------

_SEGMENT_TEXT = st.text(alphabet="aZ09_~-./%2e5C\\ #\x00", max_size=20)


def _refused(check: Any, rest: str) -> bool:
    try:
        check(rest, f"/v8/{rest}", "self")
    except LinkError:
        return True
    return False


@given(rest=_SEGMENT_TEXT)
def test_the_plain_path_short_cut_agrees_with_checking_each_segment(rest: str) -> None:
    assert _refused(_check_segments, rest) == _refused(_check_each_segment, rest)


@pytest.mark.parametrize(
    ("rest", "refused"),
    [
        ("Jobs/4d87f7dd-cd9f-466c-9753-bd041bb65caf/JobSessions", False),
        ("Jobs/job~1_x", False),
        ("Jobs/..", True),
        ("Jobs/%2e%2e", True),
        ("Jobs/a%2Fb", True),
        ("Jobs/a%5Cb", True),
        ("Jobs/%u002e%u002e", True),
        ("Jobs/%", True),
        ("Jobs/a%2", True),
        ("Jobs/a%zz", True),
        ("Jobs/a%41b", False),
        ("", True),
        ("Jobs/.", True),
    ],
)
def test_plain_and_hostile_paths(rest: str, refused: bool) -> None:
    assert _refused(_check_segments, rest) is refused


# --- query parameters a version asks for a linked resource -------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://h/v7/Organizations/a", "https://h/v7/Organizations/a?extendedView=true"),
        ("https://h/v7/Organizations/a?x=1", "https://h/v7/Organizations/a?x=1&extendedView=true"),
        (
            "https://h/v7/Organizations/a?EXTENDEDVIEW=false&x=%20",
            "https://h/v7/Organizations/a?x=%20&extendedView=true",
        ),
        ("https://h/v7/Organizations/a?extended%56iew=0&&", "https://h/v7/Organizations/a?extendedView=true"),
        ("https://h/v7/Organizations/a?extendedView=true", "https://h/v7/Organizations/a?extendedView=true"),
    ],
)
def test_with_query_sets_each_parameter_once(url: str, expected: str) -> None:
    assert with_query(url, (("extendedView", "true"),)) == expected
    assert with_query(url, ()) == url


def test_links_to_organizations_and_v7_proxies_carry_their_route_s_query() -> None:
    extended = (("extendedView", "true"),)
    assert {v: DIALECTS[v].link_query(Organization) for v in DIALECTS} == {
        "v1": (),
        "v6": extended,  # shown by default, yet marked required by v6's API file
        "v7": extended,
        "v8": extended,
    }
    assert {v: DIALECTS[v].link_query(Proxy) for v in DIALECTS} == {
        "v1": (),
        "v6": (),
        "v7": extended,
        "v8": (),
    }
    assert all(DIALECTS[v].link_query(Job) == () and DIALECTS[v].link_query(None) == () for v in DIALECTS)


def test_a_link_query_with_placeholders_is_a_developer_error() -> None:
    v7 = DIALECTS["v7"]
    broken = v7.evolve(
        version="v7", paths={"organization": Route("Organizations/{organization}", query=(("x", "{id}"),))}
    )
    with pytest.raises(ConfigError, match="organization route"):
        broken.check()


@given(
    st.one_of(
        st.text(),
        st.text(alphabet="azAZ09_.~-/%?#& \n\u00e9"),
        st.from_regex(r"[A-Za-z0-9_.~-]*", fullmatch=True),
    )
)
def test_an_id_is_quoted_as_quote_quotes_it(value: str) -> None:
    """`quote_segment` returns an id with nothing to escape as it is, without `quote`: the same."""
    assert quote_segment(value) == quote(value, safe="")
    assert Route("Jobs/{job}").render(job=value) == f"Jobs/{quote(value, safe='')}"
