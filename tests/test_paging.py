"""Collections: bare arrays and VBO page objects, followed through ``next`` by ``await`` and ``async for``."""

from __future__ import annotations

import contextlib
import gc
import tracemalloc
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest

from vbo_async import APIError, ConfigError, DecodeError, Job, JobSession, LinkError, VBOClient

from .conftest import BASE, FOREIGN, FakeVBO, client_for

JOB_ID = "70a8cbaf-642f-4c6f-934d-fb10e597a82a"


def page(
    items: list[dict[str, Any]], *, offset: int, limit: int, path: str, next_offset: int | None
) -> dict[str, Any]:
    links: dict[str, Any] = {"self": {"href": f"{FOREIGN}{path}?offset={offset}&limit={limit}"}}
    if next_offset is not None:
        links["next"] = {"href": f"{FOREIGN}{path}?offset={next_offset}&limit={limit}"}
    if offset:
        links["prev"] = {"href": f"{FOREIGN}{path}?offset={max(offset - limit, 0)}&limit={limit}"}
        links["first"] = {"href": f"{FOREIGN}{path}?offset=0&limit={limit}"}
    return {"offset": offset, "limit": limit, "setId": None, "results": items, "_links": links}


def serve_three_pages(fake: FakeVBO, path: str, items: list[dict[str, Any]]) -> None:
    """``path`` answers the first page; pages of two follow through foreign ``next`` hrefs."""
    fake.route("GET", path, page(items[0:2], offset=0, limit=2, path=path, next_offset=2))
    fake.route(
        "GET", f"{path}?offset=2&limit=2", page(items[2:4], offset=2, limit=2, path=path, next_offset=4)
    )
    fake.route(
        "GET", f"{path}?offset=4&limit=2", page(items[4:], offset=4, limit=2, path=path, next_offset=None)
    )


JOBS = [{"id": f"job-{i}", "name": f"Job {i}"} for i in range(5)]
SESSIONS = [{"id": f"session-{i}", "status": "Success"} for i in range(5)]


async def test_await_follows_three_pages(fake: FakeVBO, vbo: VBOClient) -> None:
    serve_three_pages(fake, "/v1/Jobs", JOBS)

    jobs = await vbo.jobs()

    assert [job.id for job in jobs] == [f"job-{i}" for i in range(5)]
    assert all(isinstance(job, Job) for job in jobs)
    assert fake.paths()[1:] == ["/v1/Jobs", "/v1/Jobs?offset=2&limit=2", "/v1/Jobs?offset=4&limit=2"]
    assert {r.url.host for r in fake.requests} == {"vbo.test"}


async def test_paths_with_a_prefix() -> None:
    fake = FakeVBO(prefix="/api")
    serve_three_pages(fake, "/v1/Jobs", JOBS)
    async with client_for(fake, base_url="https://vbo.test:4443/api") as vbo:
        jobs = await vbo.jobs()
    assert len(jobs) == 5
    assert fake.paths()[1:] == [
        "/api/v1/Jobs",
        "/api/v1/Jobs?offset=2&limit=2",
        "/api/v1/Jobs?offset=4&limit=2",
    ]


async def job_with_sessions_link(fake: FakeVBO, vbo: VBOClient, seed: list[dict[str, Any]]) -> Job:
    fake.route("GET", "/v1/Jobs", seed)
    (job,) = await vbo.jobs()
    return job


async def test_await_a_collection_link_over_pages(
    fake: FakeVBO, vbo: VBOClient, seed: list[dict[str, Any]]
) -> None:
    path = f"/v1/Jobs/{JOB_ID}/JobSessions"
    serve_three_pages(fake, path, SESSIONS)
    job = await job_with_sessions_link(fake, vbo, seed)

    sessions = await job.links.jobsessions

    assert [s.id for s in sessions] == [f"session-{i}" for i in range(5)]
    assert all(isinstance(s, JobSession) for s in sessions)
    assert fake.paths()[2:] == [path, f"{path}?offset=2&limit=2", f"{path}?offset=4&limit=2"]


async def test_async_for_streams_page_by_page(
    fake: FakeVBO, vbo: VBOClient, seed: list[dict[str, Any]]
) -> None:
    path = f"/v1/Jobs/{JOB_ID}/JobSessions"
    serve_three_pages(fake, path, SESSIONS)
    job = await job_with_sessions_link(fake, vbo, seed)
    before = len(fake.requests)

    seen: list[tuple[str, int]] = []
    async for session in job.links.jobsessions:
        seen.append((session.id, len(fake.requests) - before))

    # Items of a page are yielded before the next page is requested.
    assert seen == [
        ("session-0", 1),
        ("session-1", 1),
        ("session-2", 2),
        ("session-3", 2),
        ("session-4", 3),
    ]


async def test_async_for_stops_requesting_when_the_loop_stops(
    fake: FakeVBO, vbo: VBOClient, seed: list[dict[str, Any]]
) -> None:
    path = f"/v1/Jobs/{JOB_ID}/JobSessions"
    serve_three_pages(fake, path, SESSIONS)
    job = await job_with_sessions_link(fake, vbo, seed)
    before = len(fake.requests)

    async with contextlib.aclosing(aiter(job.links.jobsessions)) as sessions:
        async for session in sessions:
            assert session.id == "session-0"
            break

    assert len(fake.requests) - before == 1


@pytest.mark.parametrize("mode", ["await", "async for"])
async def test_bare_arrays(fake: FakeVBO, vbo: VBOClient, seed: list[dict[str, Any]], mode: str) -> None:
    path = f"/v1/Jobs/{JOB_ID}/JobSessions"
    fake.route("GET", path, SESSIONS)
    job = await job_with_sessions_link(fake, vbo, seed)
    before = len(fake.requests)

    if mode == "await":
        sessions = await job.links.jobsessions
    else:
        sessions = [s async for s in job.links.jobsessions]

    assert [s.id for s in sessions] == [f"session-{i}" for i in range(5)]
    assert len(fake.requests) - before == 1


async def test_empty_array_and_empty_page(fake: FakeVBO, vbo: VBOClient) -> None:
    fake.route("GET", "/v1/Jobs", [])
    fake.route("GET", "/v1/Proxies", {"offset": 0, "limit": 30, "results": [], "_links": {}})
    fake.route("GET", "/v1/BackupRepositories", {"offset": 0, "limit": 30, "results": None})
    assert await vbo.jobs() == []
    assert await vbo.proxies() == []
    assert await vbo.backup_repositories() == []


async def test_relative_next_links(fake: FakeVBO, vbo: VBOClient) -> None:
    """v6 page links are server-relative."""
    fake.route(
        "GET", "/v1/Jobs", {"results": JOBS[:3], "_links": {"next": {"href": "/v1/Jobs?offset=3&limit=3"}}}
    )
    fake.route("GET", "/v1/Jobs?offset=3&limit=3", {"results": JOBS[3:], "_links": {"next": None}})
    jobs = await vbo.jobs()
    assert [j.id for j in jobs] == [f"job-{i}" for i in range(5)]
    assert fake.paths()[1:] == ["/v1/Jobs", "/v1/Jobs?offset=3&limit=3"]


@pytest.mark.parametrize("mode", ["await", "async for", "entry point"])
async def test_a_self_linking_page_is_an_error_naming_the_listing(
    fake: FakeVBO, vbo: VBOClient, seed: list[dict[str, Any]], mode: str
) -> None:
    """A ``next`` back to a page already read is a loop: the listing cannot be known complete,
    so it is an `APIError` (of a 200) naming it, after one request, not an end nor max_pages
    requests."""
    path = f"/v1/Jobs/{JOB_ID}/JobSessions"
    for where in ("/v1/Jobs", path):
        fake.route(
            "GET",
            where,
            {
                "offset": 0,
                "limit": 2,
                "results": SESSIONS[:2],
                "_links": {"next": {"href": f"{FOREIGN}{where}"}},
            },
        )
    listed = f"{BASE}/v1/Jobs" if mode == "entry point" else f"{BASE}{path}"

    async def listing() -> list[Any]:
        if mode == "entry point":
            return await vbo.jobs()
        seed[0]["_links"]["jobsessions"] = {"href": f"{FOREIGN}{path}"}
        job = await job_with_sessions_link(fake, vbo, [seed[0]])
        fake.requests.clear()
        if mode == "await":
            return await job.links.jobsessions
        return [s async for s in job.links.jobsessions]

    with pytest.raises(APIError) as info:
        await listing()
    assert len(fake.api_requests) == 1
    assert info.value.status_code == 200
    assert info.value.url == listed
    assert f"the listing {listed} loops" in str(info.value)


async def test_a_page_cycle_is_an_error_naming_the_listing(fake: FakeVBO, vbo: VBOClient) -> None:
    fake.route("GET", "/v1/Jobs", page(JOBS[:2], offset=0, limit=2, path="/v1/Jobs", next_offset=2))
    fake.route(
        "GET",
        "/v1/Jobs?offset=2&limit=2",
        {"results": JOBS[2:4], "_links": {"next": {"href": f"{FOREIGN}/v1/Jobs"}}},
    )
    with pytest.raises(APIError) as info:
        await vbo.jobs()
    assert len(fake.api_requests) == 2
    assert info.value.url == f"{BASE}/v1/Jobs?offset=2&limit=2"  # the page whose next loops
    assert f"the listing {BASE}/v1/Jobs loops" in str(info.value)
    assert f"names {BASE + '/v1/Jobs'!r} already read" in str(info.value)


async def test_a_loop_error_quotes_a_next_link_padded_with_query_noise_cut(
    fake: FakeVBO, vbo: VBOClient
) -> None:
    """Empty query parameters are ignored when pages are compared, so a ``next`` padded with
    them (up to the 65,536 characters of the longest href followed) still names the page it was
    read on: the error quotes its first 500 characters and its length, not all of it (the
    message goes into every log line and sweep result naming the error)."""
    noise = "&" * 60_000
    fake.route("GET", "/v1/Jobs", page(JOBS[:2], offset=0, limit=2, path="/v1/Jobs", next_offset=2))
    fake.route(
        "GET",
        "/v1/Jobs?offset=2&limit=2",
        {"results": JOBS[2:4], "_links": {"next": {"href": f"{FOREIGN}/v1/Jobs?limit=2&offset=2{noise}"}}},
    )
    with pytest.raises(APIError) as info:
        await vbo.jobs()
    assert len(fake.api_requests) == 2
    looping = f"{BASE}/v1/Jobs?limit=2&offset=2{noise}"
    assert str(info.value) == (
        f"HTTP 200: the listing {BASE}/v1/Jobs loops: the next link of this page names "
        f"{looping[:500]!r}... ({len(looping)} characters) already read; refusing to read on "
        f"(the listing cannot be known complete) (GET {BASE}/v1/Jobs?offset=2&limit=2)"
    )


async def test_an_empty_page_ends_the_listing_whatever_its_next_says(fake: FakeVBO, vbo: VBOClient) -> None:
    """Pages are cut by offset: a page with no item has none after it either, so its ``next``
    (servers send one only while more remain; a broken one always) is not followed, instead of
    ``max_pages`` requests for empty pages."""
    fake.route("GET", "/v1/Jobs", page(JOBS[:2], offset=0, limit=2, path="/v1/Jobs", next_offset=2))
    for offset in range(2, 12, 2):
        fake.route(
            "GET",
            f"/v1/Jobs?offset={offset}&limit=2",
            page([], offset=offset, limit=2, path="/v1/Jobs", next_offset=offset + 2),
        )
    assert [j.id for j in await vbo.jobs()] == ["job-0", "job-1"]
    assert len(fake.api_requests) == 2
    fake.requests.clear()
    assert [j.id async for j in vbo._fetcher.iterate(f"{BASE}/v1/Jobs", Job)] == ["job-0", "job-1"]
    assert len(fake.api_requests) == 2


async def test_a_page_whose_every_item_is_refused_is_not_empty(fake: FakeVBO) -> None:
    """A sweep files the items it cannot decode: a page of nothing but those still goes on."""
    fake.route(
        "GET",
        "/v1/Jobs",
        page([{"id": "bad", "isEnabled": "maybe"}], offset=0, limit=1, path="/v1/Jobs", next_offset=1),
    )
    fake.route(
        "GET",
        "/v1/Jobs?offset=1&limit=1",
        page(JOBS[:1], offset=1, limit=1, path="/v1/Jobs", next_offset=None),
    )
    async with client_for(fake) as vbo:
        jobs, filed = await vbo._jobs_filed()
    assert [j.id for j in jobs] == ["job-0"]
    assert len(filed) == 1
    assert len(fake.api_requests) == 2


@pytest.mark.parametrize("mode", ["await", "async for"])
async def test_an_item_a_later_page_repeats_in_another_case_is_given_once(
    fake: FakeVBO, vbo: VBOClient, mode: str
) -> None:
    """A .NET server may write a GUID in upper case on one page and lower case on the next (a
    page boundary moved while listing): GUIDs are case-insensitive, so it is one job, given once
    in its first spelling."""
    upper = "8F2C5A1E-3B4D-4C6E-9A7B-1D2E3F4A5B6C"
    first = [{"id": upper, "name": "Mail"}, {"id": "job-1", "name": "Sites"}]
    later = [
        {"id": upper.lower(), "name": "Mail"},
        {"id": "JOB-1", "name": "Sites"},
        {"id": "job-2", "name": "Teams"},
    ]
    fake.route("GET", "/v1/Jobs", page(first, offset=0, limit=2, path="/v1/Jobs", next_offset=2))
    fake.route(
        "GET", "/v1/Jobs?offset=2&limit=2", page(later, offset=2, limit=2, path="/v1/Jobs", next_offset=None)
    )
    if mode == "await":
        jobs = await vbo.jobs()
    else:
        jobs = [job async for job in vbo._fetcher.iterate(f"{BASE}/v1/Jobs", Job)]
    assert [job.id for job in jobs] == [upper, "job-1", "job-2"]


async def test_page_without_results_is_a_decode_error(fake: FakeVBO, vbo: VBOClient) -> None:
    fake.route("GET", "/v1/Jobs", {"offset": 0, "limit": 30, "_links": {}})
    with pytest.raises(DecodeError) as info:
        await vbo.jobs()
    assert "results" in str(info.value)
    assert info.value.url == "https://vbo.test:4443/v1/Jobs"


async def test_page_with_non_array_results(fake: FakeVBO, vbo: VBOClient) -> None:
    fake.route("GET", "/v1/Jobs", {"results": {"id": "x"}})
    with pytest.raises(DecodeError) as info:
        await vbo.jobs()
    assert info.value.path == "$.results"


async def test_bad_item_on_a_later_page_names_its_path(fake: FakeVBO, vbo: VBOClient) -> None:
    fake.route("GET", "/v1/Jobs", {"results": JOBS[:2], "_links": {"next": {"href": "/v1/Jobs?offset=2"}}})
    fake.route("GET", "/v1/Jobs?offset=2", {"results": [{"id": "ok"}, {"name": "no id"}]})
    with pytest.raises(DecodeError) as info:
        await vbo.jobs()
    assert info.value.path == "$.results[1].id"
    assert info.value.url == "https://vbo.test:4443/v1/Jobs?offset=2"


async def test_unsafe_next_link_is_refused(fake: FakeVBO, vbo: VBOClient) -> None:
    fake.route(
        "GET", "/v1/Jobs", {"results": JOBS[:2], "_links": {"next": {"href": "https://evil.example/steal"}}}
    )
    with pytest.raises(LinkError):
        await vbo.jobs()
    assert len(fake.api_requests) == 1


async def test_non_string_next_href(fake: FakeVBO, vbo: VBOClient) -> None:
    fake.route("GET", "/v1/Jobs", {"results": JOBS[:2], "_links": {"next": {"href": 42}}})
    with pytest.raises(DecodeError):
        await vbo.jobs()


@pytest.mark.parametrize(
    ("links", "path"),
    [
        ({"next": [{"href": "/v1/Jobs?offset=2"}]}, "$._links.next"),
        ({"next": 2}, "$._links.next"),
        ({"next": True}, "$._links.next"),
        ([{"rel": "next", "href": "/v1/Jobs?offset=2"}], "$._links"),
        ("/v1/Jobs?offset=2", "$._links"),
    ],
)
async def test_an_unreadable_next_link_is_not_the_last_page(
    fake: FakeVBO, vbo: VBOClient, links: Any, path: str
) -> None:
    """A ``next`` the client cannot read must not end the listing as if no items remained."""
    fake.route("GET", "/v1/Jobs", {"results": JOBS[:2], "_links": links})
    with pytest.raises(DecodeError) as info:
        await vbo.jobs()
    assert info.value.path == path


@pytest.mark.parametrize(
    ("links", "path"),
    [({"next": {"href": ""}}, "$._links.next.href"), ({"next": ""}, "$._links.next")],
    ids=["object", "bare"],
)
async def test_an_empty_next_href_is_not_the_last_page(
    fake: FakeVBO, vbo: VBOClient, links: Any, path: str
) -> None:
    """An empty href names no page: it ended the listing silently, the items of the pages after
    it lost, where a ``next`` the client cannot read is a `DecodeError`."""
    fake.route("GET", "/v1/Jobs", {"results": JOBS[:2], "_links": links})
    fake.route("GET", "/v1/Jobs?offset=2", {"results": JOBS[2:]})
    with pytest.raises(DecodeError) as info:
        await vbo.jobs()
    assert info.value.path == path
    assert info.value.url == f"{BASE}/v1/Jobs"
    assert "page link 'next' has an empty href" in str(info.value)
    assert len(fake.api_requests) == 1


@pytest.mark.parametrize("links", [{}, {"next": None}, {"next": {"href": None}}, {"next": {}}])
async def test_a_next_without_an_href_ends_the_listing(fake: FakeVBO, vbo: VBOClient, links: Any) -> None:
    """No ``next``, or one whose href is absent: ``null``, or left out (``{}``, as a serializer
    told to omit nulls writes ``{"href": null}``) is the last page."""
    fake.route("GET", "/v1/Jobs", {"results": JOBS[:2], "_links": links})
    assert [job.id for job in await vbo.jobs()] == ["job-0", "job-1"]
    assert len(fake.api_requests) == 1


async def test_a_next_link_sent_as_a_bare_href_is_followed(fake: FakeVBO, vbo: VBOClient) -> None:
    """As a resource's links are read: ``"next": "/v1/..."`` is the href itself."""
    fake.route("GET", "/v1/Jobs", {"results": JOBS[:2], "_links": {"next": "/v1/Jobs?offset=2"}})
    fake.route("GET", "/v1/Jobs?offset=2", {"results": JOBS[2:], "_links": {"next": {"href": None}}})
    assert [job.id for job in await vbo.jobs()] == [job["id"] for job in JOBS]


def serve_endless_pages(fake: FakeVBO, path: str, per_page: int, pages: int) -> None:
    """``pages`` pages of ``per_page`` distinct jobs each, every one linking to the next."""
    for number in range(pages):
        offset = number * per_page
        items = [{"id": f"job-{offset + i}", "name": "x"} for i in range(per_page)]
        where = path if number == 0 else f"{path}?offset={offset}&limit={per_page}"
        fake.route(
            "GET", where, page(items, offset=offset, limit=per_page, path=path, next_offset=offset + per_page)
        )


@pytest.mark.parametrize("mode", ["await", "async for"])
async def test_a_listing_over_max_listing_items_is_refused_when_the_page_going_over_arrives(
    fake: FakeVBO, mode: str
) -> None:
    """Pages of 3 for ever, ``max_listing_items=7``: the third page takes the listing to 9 items,
    so it is an `APIError` (of a 200) naming the bound and the listing, after three requests,
    and no item of that page is handed on (``max_pages`` alone would let a fast server make one
    listing hold 10,000 pages of 50,000 items)."""
    serve_endless_pages(fake, "/v1/Jobs", per_page=3, pages=5)
    seen: list[str] = []
    async with client_for(fake, max_listing_items=7) as vbo:

        async def listing() -> None:
            if mode == "await":
                await vbo.jobs()
            else:
                async for job in vbo._fetcher.iterate(f"{BASE}/v1/Jobs", Job):
                    seen.append(job.id)

        with pytest.raises(APIError) as info:
            await listing()
    assert len(fake.api_requests) == 3
    assert info.value.status_code == 200
    assert info.value.url == f"{BASE}/v1/Jobs"
    assert "max_listing_items=7" in str(info.value)
    assert "9 in its first 3 pages" in str(info.value)
    assert seen == ([] if mode == "await" else [f"job-{i}" for i in range(6)])


async def test_a_listing_of_exactly_max_listing_items_is_read_whole(fake: FakeVBO) -> None:
    serve_endless_pages(fake, "/v1/Jobs", per_page=3, pages=2)
    fake.route(
        "GET", "/v1/Jobs?offset=6&limit=3", page([], offset=6, limit=3, path="/v1/Jobs", next_offset=None)
    )
    async with client_for(fake, max_listing_items=6) as vbo:
        jobs = await vbo.jobs()
    assert [job.id for job in jobs] == [f"job-{i}" for i in range(6)]


async def test_refused_items_count_towards_max_listing_items(fake: FakeVBO) -> None:
    """A sweep files the items it cannot decode (it holds them): they count as held."""
    bad = [{"id": f"bad-{i}", "isEnabled": "maybe"} for i in range(3)]
    fake.route("GET", "/v1/Jobs", page(bad, offset=0, limit=3, path="/v1/Jobs", next_offset=3))
    fake.route(
        "GET",
        "/v1/Jobs?offset=3&limit=3",
        page(JOBS[:3], offset=3, limit=3, path="/v1/Jobs", next_offset=None),
    )
    async with client_for(fake, max_listing_items=5) as vbo:
        with pytest.raises(APIError, match="max_listing_items=5"):
            await vbo._jobs_filed()
    async with client_for(fake, max_listing_items=6) as vbo:
        jobs, filed = await vbo._jobs_filed()
    assert len(jobs) == 3
    assert sum(len(errors) for errors in filed.values()) == 3


@pytest.mark.parametrize("value", [0, -1, True, 1.5, "10", None])
def test_max_listing_items_must_be_a_positive_integer(value: object) -> None:
    with pytest.raises(ConfigError, match="max_listing_items must be a positive integer"):
        VBOClient(BASE, username="u", password="p", max_listing_items=value)  # type: ignore[arg-type]


async def test_a_listing_keeps_no_page_s_next_href(fake: FakeVBO) -> None:
    """A listing remembers the pages it read (to find a loop), not their hrefs: a server linking
    each page of one item to the next through an href of 60,000 characters (httpx takes up to
    65,536) held about 75 KB a page, about 750 MB at ``max_pages``. Measured by tracemalloc at
    the 60th and the 300th page: what the 240 pages between leave held."""
    pad = "x" * 60_000
    held: dict[int, int] = {}

    def answer(request: httpx.Request) -> dict[str, Any]:
        offset = int(dict(parse_qsl(request.url.query.decode())).get("offset", 0))
        fake.requests.clear()  # the fake's record of them is not the client's
        if offset in (60, 300):
            gc.collect()
            held[offset] = tracemalloc.get_traced_memory()[0]
        links = {"next": {"href": f"/v1/Jobs?offset={offset + 1}&pad={pad}"}} if offset < 300 else {}
        return {"results": [{"id": f"job-{offset}", "name": "x"}], "_links": links}

    fake.route("GET", "/v1/Jobs", answer)
    tracemalloc.start()
    try:
        async with client_for(fake) as vbo:
            jobs = await vbo.jobs()
    finally:
        tracemalloc.stop()
    assert len(jobs) == 301
    assert held[300] - held[60] < 5_000_000  # the 240 jobs: about 1 MB; 16 MB more before


def serve_ignoring_offset(fake: FakeVBO, path: str, items: list[dict[str, Any]], *, fold: bool) -> None:
    """``path`` answers ``items`` whatever its offset, each time with a next link to a new offset
    (a server that ignores ``offset`` but counts it on); with ``fold``, their ids in lower case
    after the first page."""

    def answer(request: httpx.Request) -> dict[str, Any]:
        offset = int(dict(parse_qsl(request.url.query.decode())).get("offset", 0))
        answered = [item | {"id": item["id"].lower()} for item in items] if fold and offset else items
        return page(answered, offset=offset, limit=len(items), path=path, next_offset=offset + len(items))

    fake.route("GET", path, answer)


@pytest.mark.parametrize("listing", ["await", "async for", "filed", "raw"])
async def test_a_page_bringing_nothing_new_is_an_error_naming_the_listing(
    fake: FakeVBO, listing: str
) -> None:
    """A server that ignores ``offset`` but links each page to a new one answers the first items
    again and again: every next link is new, so only ``max_pages`` (10,000 requests) ended it.
    The second page, bringing nothing the first did not (the same ids, in any case; the same
    raw items; the same items refused), is an `APIError` (of a 200) naming the listing and that
    page, after two requests, and none of its items is handed on."""
    items = [{"id": f"JOB-{i}", "name": f"Job {i}"} for i in range(3)]
    if listing == "filed":
        items.append({"id": "bad", "isEnabled": "maybe"})
    serve_ignoring_offset(fake, "/v1/Jobs", items, fold=listing != "raw")
    seen: list[Any] = []
    async with client_for(fake) as vbo:

        async def read() -> None:
            if listing == "await":
                seen.extend(await vbo.jobs())
            elif listing == "filed":
                seen.extend((await vbo._jobs_filed())[0])
            else:
                target = object if listing == "raw" else Job
                async for item in vbo._fetcher.iterate(f"{BASE}/v1/Jobs", target):
                    seen.append(item)

        with pytest.raises(APIError) as info:
            await read()
    assert len(fake.api_requests) == 2
    assert info.value.status_code == 200
    assert info.value.url == f"{BASE}/v1/Jobs?offset={len(items)}&limit={len(items)}"
    assert f"the listing {BASE}/v1/Jobs does not advance" in str(info.value)
    assert len(seen) == (3 if listing in ("async for", "raw") else 0)


async def test_a_page_repeating_some_items_and_bringing_others_goes_on(fake: FakeVBO, vbo: VBOClient) -> None:
    """A page boundary that moved while listing repeats an item: the page still brings new ones."""
    fake.route("GET", "/v1/Jobs", page(JOBS[:2], offset=0, limit=2, path="/v1/Jobs", next_offset=2))
    fake.route(
        "GET", "/v1/Jobs?offset=2&limit=2", page(JOBS[1:3], offset=2, limit=2, path="/v1/Jobs", next_offset=4)
    )
    fake.route(
        "GET",
        "/v1/Jobs?offset=4&limit=2",
        page(JOBS[3:], offset=4, limit=2, path="/v1/Jobs", next_offset=None),
    )
    assert [job.id for job in await vbo.jobs()] == [job["id"] for job in JOBS]


async def test_a_last_page_of_items_already_read_ends_the_listing(fake: FakeVBO, vbo: VBOClient) -> None:
    """A next link to a collection that is not paged (v7's ``/Jobs``) may answer only what was
    read: without a next of its own, it is the end, not an error."""
    fake.route("GET", "/v1/Jobs", page(JOBS[:2], offset=0, limit=2, path="/v1/Jobs", next_offset=2))
    fake.route("GET", "/v1/Jobs?offset=2&limit=2", JOBS[:2])
    assert [job.id for job in await vbo.jobs()] == ["job-0", "job-1"]
    assert len(fake.api_requests) == 2
