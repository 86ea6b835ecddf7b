"""A long-lived client's caches keep the entries in use, past their bound.

An exporter sweeps the same thousands of tenants for months; its clients' caches (links and ids
per href, schedule policies, parsed URLs) are bounded, so what they do once full is what such a
process sees for good. Hits are counted, not timed: a cached value is the same object again.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from yarl import URL

from vbo_async import BackupRepository, Job, LinkError, Organization, VBOClient
from vbo_async import _convert as convert_module
from vbo_async import _fastpath as fastpath_module
from vbo_async._aiohttp import AiohttpTransport
from vbo_async._convert import FastHooks, make_converter
from vbo_async._dialects import DIALECTS
from vbo_async._fastpath import CACHED_HREF_LENGTH, CACHED_HREFS
from vbo_async._kept import Kept
from vbo_async._pages import page_identity, with_limit
from vbo_async._sending import _URLS_KEPT, _Call
from vbo_async._urls import ApiRoot, split_url

from .test_fast_path import NAVIGATOR, assert_same, simulator_wires
from .test_properties import mutated

BASE = "https://vbo.test:4443"
TENANTS = CACHED_HREFS + 1500  # past the bound: what a large service provider's exporter sweeps
JOBS = 5  # per tenant, linking its organization and its repository, sharing its policy


def _tenant_jobs(version: str, tenant: int) -> list[dict[str, Any]]:
    links = {
        "organization": {"href": f"/{version}/Organizations/org-{tenant}"},
        ("repository" if version == "v1" else "backupRepository"): {
            "href": f"/{version}/BackupRepositories/repo-{tenant}"
        },
    }
    policy = {"type": "Daily", "dailyTime": "22:00:00", "retryEnabled": True, "retryNumber": tenant}
    return [{"id": f"job-{tenant}-{n}", "_links": links, "schedulePolicy": policy} for n in range(JOBS)]


def _sweep(version: str, tenants: range) -> Iterator[list[Job]]:
    hook = FastHooks(NAVIGATOR, DIALECTS[version]).get(Job)
    for tenant in tenants:
        yield [hook(wire, Job) for wire in _tenant_jobs(version, tenant)]


def _shared(jobs: list[Job], value: Any) -> int:
    """How many of a tenant's jobs after the first got the first one's object (cache hits)."""
    first = value(jobs[0])
    assert first is not None
    return sum(value(job) is first for job in jobs[1:])


@pytest.mark.parametrize("version", ["v1", "v6", "v8"])
def test_tenants_swept_after_the_caches_filled_share_their_links_ids_and_policies(version: str) -> None:
    """The link and policy caches stopped adding once they held 4,096 entries: every tenant
    swept after the first 4,096 of a client's life got a new link per job for its organization
    and its repository, a new id string per job (v1), a new proxy link (v6+) and a new policy per
    job (nothing shared, each decoded whole). Now they keep what is in use."""
    values = {
        "organization link": lambda job: job.links.organization,
        "repository link": lambda job: job.links.repository,
        "schedule policy": lambda job: job.schedule_policy,
    }
    if version == "v1":
        values |= {
            "organization id": lambda job: job.organization_id,
            "repository id": lambda job: job.repository_id,
        }
    else:
        values["proxy link (through the repository)"] = lambda job: job.links.proxy
    hits = dict.fromkeys(values, 0)
    late = range(CACHED_HREFS, TENANTS)
    for number, jobs in enumerate(_sweep(version, range(TENANTS))):
        if number in late:
            for name, value in values.items():
                hits[name] += _shared(jobs, value)
    expected = len(late) * (JOBS - 1)
    assert hits == dict.fromkeys(values, expected)


def _kept_by(function: Any, seen: set[int] | None = None) -> Iterator[Kept[Any, Any]]:
    """The `Kept` caches a generated function holds, and those of the functions it calls."""
    seen = set() if seen is None else seen
    for cell in getattr(function, "__closure__", None) or ():
        value = cell.cell_contents
        if id(value) in seen:
            continue
        seen.add(id(value))
        if isinstance(value, Kept):
            yield value
        elif callable(value):
            yield from _kept_by(value, seen)


@pytest.mark.parametrize("version", ["v1", "v8"])
def test_the_caches_stay_bounded_with_a_new_tenant_every_sweep(version: str) -> None:
    hook = FastHooks(NAVIGATOR, DIALECTS[version]).get(Job)
    for tenant in range(3 * CACHED_HREFS):
        for wire in _tenant_jobs(version, tenant)[:1]:
            hook(wire, Job)
    kept = list(_kept_by(hook))
    assert len(kept) >= 3  # the links' caches, the ids' (v1) or proxies' (v6+), the policies'
    assert all(len(cache) <= CACHED_HREFS for cache in kept)
    assert any(len(cache) > CACHED_HREFS // 2 for cache in kept)  # the bound was reached


_POOL = {
    version: [
        *[wire for cls, wire in simulator_wires(version, seed=9) if cls is Job][:4],
        *[wire for tenant in range(3) for wire in _tenant_jobs(version, tenant)[:2]],
    ]
    for version in DIALECTS
}
"""Jobs of every version, some sharing their links and policies, some not."""


@st.composite
def job_sequences(draw: st.DrawFn) -> tuple[str, list[Any]]:
    version = draw(st.sampled_from(sorted(DIALECTS)))
    pool = _POOL[version]
    wire = st.sampled_from(pool) | mutated(draw(st.sampled_from(pool)), max_mutations=2)
    return version, draw(st.lists(wire, min_size=1, max_size=10))


def _decoded(structure: Any, wire: Any) -> Any:
    try:
        return structure(copy.deepcopy(wire), Job)
    except Exception:
        return Exception


@settings(max_examples=80, deadline=None, derandomize=True, database=None)
@given(case=job_sequences(), generation=st.integers(1, 3))
def test_jobs_read_through_caches_that_evict_are_those_the_detailed_pass_builds(
    case: tuple[str, list[Any]], generation: int
) -> None:
    """Every `Kept` of the fast pass (links and ids per href, proxies through a repository,
    schedule policies) made tiny, so that entries come and go within a few jobs: whatever came
    before, a job is what the detailed pass, which keeps nothing, builds of it (an entry kept
    for one wire value must never answer another, before or after it moved generations)."""
    version, wires = case
    dialect = DIALECTS[version]
    detailed = make_converter(NAVIGATOR, dialect, detailed=True)
    with pytest.MonkeyPatch.context() as patch:  # hooks are bound on first use: patched throughout
        patch.setattr(fastpath_module, "CACHED_HREFS", 2 * generation)
        patch.setattr(convert_module, "_POLICY_CACHE_SIZE", 2 * generation)
        hook = FastHooks(NAVIGATOR, dialect).get(Job)
        for wire in [*wires, *reversed(wires), *wires]:
            fast, slow = _decoded(hook, wire), _decoded(detailed.structure, wire)
            if fast is Exception or slow is Exception:
                assert fast is slow is Exception
            else:
                assert_same(fast, slow)
        kept = list(_kept_by(hook))
    assert kept
    assert all(len(cache) <= 2 * generation for cache in kept)


def test_the_caches_of_the_property_test_do_evict() -> None:
    """The property test above reaches past its caches' bound: a sequence of its jobs drops
    entries (`Kept` moved a generation on and the one before was dropped)."""
    dialect = DIALECTS["v8"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fastpath_module, "CACHED_HREFS", 2)
        patch.setattr(convert_module, "_POLICY_CACHE_SIZE", 2)
        hook = FastHooks(NAVIGATOR, dialect).get(Job)
        for wire in _POOL["v8"]:
            hook(copy.deepcopy(wire), Job)
        kept = list(_kept_by(hook))
    assert len(kept) >= 3
    assert all(len(cache) <= 2 for cache in kept)
    assert sum(len(cache) == 2 for cache in kept) >= 3  # full: the next new entry drops one


@pytest.fixture
def sender() -> Any:
    client = VBOClient(
        BASE, username="u", password="p", transport=httpx.MockTransport(lambda r: httpx.Response(500))
    )
    yield client._fetcher.sender
    asyncio.run(client.aclose())


def test_urls_in_use_stay_parsed_while_new_ones_come(sender: Any) -> None:
    """The sender's parsed URLs were all dropped each time 1,024 were kept: a hot URL (a
    repository every tenant's jobs link to) was parsed again after each drop. Now a URL in use
    stays parsed, however many others come and go."""
    hot = [f"{BASE}/v8/BackupRepositories/repo-{n}" for n in range(50)]
    parsed = {url: sender._url(url) for url in hot}
    again = 0
    for tenant in range(4 * _URLS_KEPT):
        sender._build(
            _Call("GET", f"{BASE}/v8/Jobs?organizationId=org-{tenant}", None, None, None, False), None
        )
        url = hot[tenant % len(hot)]
        if sender._url(url) is not parsed[url]:
            again += 1
            parsed[url] = sender._url(url)
    assert again == 0
    assert len(sender._urls) <= _URLS_KEPT


async def test_the_aiohttp_transport_keeps_its_targets_in_use() -> None:
    transport = AiohttpTransport()
    try:
        hot = f"{BASE}/v8/BackupRepositories/repo-1"
        first = transport._target(hot)
        again = 0
        for tenant in range(4 * 1024):
            transport._target(f"{BASE}/v8/Jobs?organizationId=org-{tenant}")
            again += transport._target(hot) is not first
        assert again == 0
    finally:
        await transport.aclose()


_URL_POOL = [
    f"{BASE}/v8/Jobs",
    f"{BASE}/v8/jobs",
    f"{BASE}/v8/Jobs?organizationId=a",
    f"{BASE}/v8/Jobs?organizationId=A",
    f"{BASE}/v8/Jobs?organizationId=a%20b",
    f"{BASE}/v8/BackupRepositories/r%C3%BC",
    f"{BASE}/v8/BackupRepositories/rü",
    "https://vbo.test/v8/Jobs",
]


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(generation=st.integers(1, 3), urls=st.lists(st.sampled_from(_URL_POOL), max_size=30))
def test_parsed_urls_kept_past_their_bound_are_those_parsed_afresh(generation: int, urls: list[str]) -> None:
    """The sender's and the aiohttp transport's parsed URLs (each a `Kept`, made tiny here so
    that entries come and go): a URL is always answered with its own parse, never a neighbour's
    (URLs differing only in case, in an escape or in the host), before or after eviction."""
    client = VBOClient(
        BASE, username="u", password="p", transport=httpx.MockTransport(lambda r: httpx.Response(500))
    )
    sender = client._fetcher.sender
    sender._urls = Kept(generation)
    sender._parsed = sender._urls.current

    async def targets() -> list[str]:
        transport = AiohttpTransport()
        transport._targets = Kept(generation)
        transport._parsed = transport._targets.current
        try:
            return [str(transport._target(url)) for url in urls]
        finally:
            await transport.aclose()

    try:
        assert [sender._url(url) for url in urls] == [httpx.URL(url) for url in urls]
        assert asyncio.run(targets()) == [str(URL(url, encoded=True)) for url in urls]
        assert len(sender._urls) <= 2 * generation
    finally:
        asyncio.run(client.aclose())


_HREF_POOL = [
    "/v8/BackupRepositories/r1",
    "/v8/backuprepositories/R1",
    "/V8/BackupRepositories/r1",
    "/v7/Organizations/o1",
    "/v8/Organizations/o1",
    f"{BASE}/v1/Proxies/p1",
    "https://elsewhere.test/v1/Proxies/p1",
    "/v8/BackupRepositories/r%C3%BC",
    "/v8/BackupRepositories/rü",
    "/v8/Jobs/../../admin",
    "/nowhere/Jobs/j1",
    "",
]


def _rebased(fetcher: Any, href: str, target: Any) -> tuple[str, str]:
    try:
        return "url", fetcher.rebase(href, relation="r", target=target)
    except LinkError as error:
        return "refused", error.message


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(
    generation=st.integers(1, 3),
    reads=st.lists(
        st.tuples(st.sampled_from(_HREF_POOL), st.sampled_from([None, Organization, BackupRepository])),
        max_size=30,
    ),
)
def test_rebased_urls_kept_past_their_bound_are_those_rebased_afresh(
    generation: int, reads: list[tuple[str, Any]]
) -> None:
    """The fetcher keeps the URL of each href it rebased (a sweep following every job's repository
    and proxy rebased each shared href four times a job): a kept URL is the one `ApiRoot.rebase`
    and the dialect's link query give that href and model afresh (hrefs differing in case or an
    escape, the same href for another model: v7/v8 organizations get their extended view), before
    and after eviction, and an href refused is refused again on every read, never kept."""
    client = VBOClient(
        BASE, username="u", password="p", transport=httpx.MockTransport(lambda r: httpx.Response(500))
    )
    fetcher = client._fetcher
    fresh = VBOClient(
        BASE, username="u", password="p", transport=httpx.MockTransport(lambda r: httpx.Response(500))
    )
    fetcher._rebased = Kept(generation)
    try:
        for href, target in reads:
            fresh._fetcher._rebased = Kept(generation)  # nothing kept: every read rebased afresh
            assert _rebased(fetcher, href, target) == _rebased(fresh._fetcher, href, target)
        assert len(fetcher._rebased) <= 2 * generation
        assert all(url.startswith(f"{BASE}/") for url in fetcher._rebased.current.values())
    finally:
        asyncio.run(client.aclose())
        asyncio.run(fresh.aclose())


def test_a_rebased_href_is_kept_unless_it_is_long_refused_or_read_in_a_context() -> None:
    client = VBOClient(
        BASE, username="u", password="p", transport=httpx.MockTransport(lambda r: httpx.Response(500))
    )
    fetcher = client._fetcher
    try:
        href = "/v8/BackupRepositories/r1"
        url = fetcher.rebase(href, relation="backupRepository", target=BackupRepository)
        assert fetcher._rebased.get((href, BackupRepository)) == url == f"{BASE}/v8/BackupRepositories/r1"
        organization = fetcher.rebase("/v8/Organizations/o1", relation="organization", target=Organization)
        assert organization == fetcher._rebased.get(("/v8/Organizations/o1", Organization))
        assert organization != fetcher.rebase("/v8/Organizations/o1", relation="organization")  # its view
        long_href = "/v8/BackupRepositories/" + "r" * CACHED_HREF_LENGTH
        assert fetcher.rebase(long_href, relation="backupRepository").endswith("r" * CACHED_HREF_LENGTH)
        assert (long_href, None) not in fetcher._rebased
        with pytest.raises(LinkError):
            fetcher.rebase("/v8/Jobs/../x", relation="next")
        assert ("/v8/Jobs/../x", None) not in fetcher._rebased
        page = f"{BASE}/v8/Jobs?offset=0"
        assert fetcher.rebase("Jobs?offset=30", relation="next", context=page) == f"{BASE}/v8/Jobs?offset=30"
        assert ("Jobs?offset=30", None) not in fetcher._rebased  # relative: its meaning is its context's
        assert len(fetcher._rebased) == 3
    finally:
        asyncio.run(client.aclose())


@settings(max_examples=200, deadline=None)
@given(
    generation=st.integers(1, 8),
    operations=st.lists(st.tuples(st.integers(0, 20), st.integers()), max_size=200),
)
def test_kept_answers_as_a_dict_would_or_not_at_all(
    generation: int, operations: list[tuple[int, int]]
) -> None:
    """Whatever it was given, a `Kept` answers a key with the value last kept for it, or with
    nothing (then the caller builds it again); it never holds more than two generations."""
    kept: Kept[int, int] = Kept(generation)
    last: dict[int, int] = {}
    for key, value in operations:
        found = kept.get(key)
        if found is None:
            found = kept.recall(key)
        if found is None:
            kept.keep(key, value)
            last[key] = value
        else:
            assert found == last[key]
        assert len(kept) <= 2 * generation
        assert kept.get(key) == last[key]  # what was just used is in the current generation


def test_kept_keeps_what_is_used_once_a_generation() -> None:
    kept: Kept[str, int] = Kept(4)
    kept.keep("hot", 0)
    for number in range(1000):
        kept.keep(f"cold {number}", number)
        if number % 3 == 0:  # used at least once while four others were added
            assert kept.get("hot") == 0 or kept.recall("hot") == 0
    assert "hot" in kept
    assert "cold 0" not in kept
    assert len(kept) <= 8


class _CountedKey:
    """A key that counts how often it is hashed."""

    hashed = 0

    def __hash__(self) -> int:
        _CountedKey.hashed += 1
        return 1


def test_a_kept_whose_first_generation_is_not_full_recalls_without_hashing() -> None:
    """A new client's caches miss on almost every first sighting and then `recall` from a
    previous generation that is still empty: asking it cost a hash of the key (a 30-item tuple
    for a schedule policy, three hashes per miss instead of two). Once a generation has passed,
    the previous one is asked as before."""
    kept: Kept[object, int] = Kept(2)
    key = _CountedKey()
    _CountedKey.hashed = 0
    assert kept.recall(key) is None
    assert kept.recall(key, -1) == -1
    assert _CountedKey.hashed == 0
    kept.keep(key, 1)
    kept.keep("a", 2)
    kept.keep("b", 3)  # the first generation, ``key`` and "a", is now the previous one
    assert kept.get(key) is None
    assert kept.recall(key) == 1
    assert kept.get(key) == 1


@pytest.mark.parametrize("length", [100, 60_000])
def test_server_urls_are_split_without_pinning_long_ones_in_python_s_urlsplit_cache(length: int) -> None:
    """``urllib.parse.urlsplit`` keeps its last 128 URLs whole, for the process: reading a page's
    identity, its query context or rebasing an href split the server's URLs through it, so a
    hostile server's 64 KiB ``next`` links stayed pinned there (8 MB) after the listing ended."""
    url = f"{BASE}/v1/Jobs?offset=30&pad={'x' * length}"
    root = ApiRoot(BASE, ("v1",))
    urlsplit.cache_clear()  # type: ignore[attr-defined]  # the lru_cache Python 3.11+ gives it
    page_identity(url)
    with_limit(url, 10)
    root.rebase(url, relation="next")
    kept = urlsplit.cache_info().currsize  # type: ignore[attr-defined]
    assert (kept == 0) if length > 512 else (kept >= 1)  # short ones keep the cache's speed
    assert split_url(url) == urlsplit(url)
