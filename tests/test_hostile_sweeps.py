"""Hostile tenants in a sweep: one tenant's server sends what breaks parsers, and ``poll_jobs``
still completes with every other tenant's result.

The hostile tenant has a server of its own (a `FakeVBO` through ``httpx.MockTransport``); the
healthy tenants are on the simulator (in process, ``httpx.ASGITransport``). Each sweep runs per
tenant (``batch=False``) and batched (``batch=True``: the hostile server's ``GET /Jobs`` is then
the listing that breaks). After the sweep, the healthy tenants' jobs are exactly the simulator's,
the hostile tenant has a result (its jobs, or a `VBOError`), and no task is left over.

What breaks (`HOSTILE_TENANTS`): an href no URL parser accepts (``https:/\\t/[x/v1/Jobs``), token
lifetimes that ``int()`` refuses (``"²"``, 5,000 digits) or that no double holds (``1e400``: orjson
refuses the whole answer; read leniently, the number is its text, which no lifetime reads: the
token lives an hour), HTTP dates in year 10^20
(``.expires``, ``.issued``, ``Retry-After``); and a tiny lifetime (0.001 s). Before the fixes
(2ff99dd), the href and ``"²"`` raised a bare ``ValueError`` that cancelled the whole sweep (the
batched mode did not exist), and a tiny lifetime cost 5 token requests for 13 API requests; the
dates raised ``OverflowError`` until `_tokens.parse_http_date` caught it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import httpx
import pytest

from vbo_async import (
    HealthPolicy,
    Job,
    LinkError,
    PollResult,
    PollTarget,
    RetryPolicy,
    VBOClient,
    VBOError,
    poll_jobs,
)
from vbo_async.simulator import Simulator, SimulatorConfig, create_app

from .conftest import FakeVBO, client_for

EPOCH = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
HOSTILE_ORG = "0b5e1b7a-4f3c-4d6e-9a51-6c1f0d2e8b3a"
HOSTILE = "hostile"
BAD_HREF = "https:/\t/[x/v1/Jobs"
"""``urlsplit`` drops the tab and then refuses ``[x`` as an IPv6 host (``ValueError``)."""
FAR_DATE = "Mon, 01 Jan 99999999999999999999 00:00:00 GMT"
"""``email.utils.parsedate_to_datetime`` raises ``OverflowError`` for it, not ``ValueError``."""
NO_WAIT = RetryPolicy(attempts=2, wait_initial=0, wait_max=0, wait_jitter=0)
BATCHES = [pytest.param(False, id="per-tenant"), pytest.param(True, id="batched")]

Handler = Callable[[httpx.Request], Awaitable[httpx.Response]]


@attrs.frozen
class Sweep:
    """What one sweep with a hostile tenant delivered."""

    results: dict[str, PollResult]
    expected: dict[str, list[str]]
    """The healthy tenants' job ids, as the simulator holds them."""
    leftover_tasks: int

    @property
    def hostile(self) -> PollResult:
        return self.results[HOSTILE]

    @property
    def hostile_outcome(self) -> str:
        """The hostile tenant's error class, else ``"jobs"`` (``+ link errors`` when it has some)."""
        if self.hostile.error is not None:
            return type(self.hostile.error).__name__
        return "jobs + link errors" if self.hostile.link_errors else "jobs"

    def check(self) -> None:
        """Every tenant delivered once; the healthy ones exactly their jobs; the hostile one
        models or `VBOError` (its link errors too); nothing left running."""
        assert set(self.results) == {HOSTILE, *self.expected}
        for org_id, job_ids in self.expected.items():
            result = self.results[org_id]
            assert result.error is None, (org_id, result.error)
            assert sorted(job.id for job in result.jobs) == job_ids
            assert not result.link_errors
        hostile = self.hostile
        assert hostile.error is None or isinstance(hostile.error, VBOError), repr(hostile.error)
        assert all(isinstance(job, Job) for job in hostile.jobs)
        assert all(isinstance(error, VBOError) for error in hostile.link_errors.values())
        assert self.leftover_tasks == 0


async def sweep_with(
    hostile: VBOClient,
    *,
    batch: bool | None,
    follow: tuple[str, ...] = ("repository",),
    health: HealthPolicy | None = None,
    simulator: Simulator | None = None,
) -> Sweep:
    """Sweep the hostile tenant (`HOSTILE_ORG` on ``hostile``) and every tenant of ``simulator``
    (three, on a fresh one, when None); close both clients."""
    simulator = simulator or Simulator(SimulatorConfig(seed=5, organizations=3, epoch=EPOCH))
    healthy = VBOClient(
        "https://vbo.test:4443",
        username="admin",
        password="admin",
        api_version="v1",
        transport=httpx.ASGITransport(app=create_app(simulator=simulator)),
        retry=NO_WAIT,
    )
    orgs = simulator.organization_ids()
    targets = [
        PollTarget(client=hostile, organization_id=HOSTILE_ORG, name=HOSTILE),
        *(PollTarget(client=healthy, organization_id=org, name=org) for org in orgs),
    ]
    before = asyncio.all_tasks()
    results: dict[str, PollResult] = {}
    async with healthy, hostile, poll_jobs(targets, batch=batch, follow=follow, health=health) as sweep:
        async for result in sweep:
            assert result.target.label not in results
            results[result.target.label] = result
    await asyncio.sleep(0)
    expected = {org: sorted(job["id"] for job in simulator.jobs_wire(org)) for org in orgs}
    return Sweep(results, expected, leftover_tasks=len(asyncio.all_tasks() - before))


def hostile_job(seed_job: dict[str, Any], **links: str) -> dict[str, Any]:
    """The seed job in the hostile tenant's organization, with ``links`` replacing its hrefs."""
    organization = f"https://vbo.test/v1/Organizations/{HOSTILE_ORG}"
    overrides = {"organization": organization, **links}
    return {**seed_job, "_links": {**seed_job["_links"], **{k: {"href": v} for k, v in overrides.items()}}}


def serving_jobs(fake: FakeVBO, seed_job: dict[str, Any], page: Any = None) -> FakeVBO:
    """``fake`` answering the hostile tenant's listings (per tenant and batched) with ``page``
    (`hostile_job`, by default) and its repository link."""
    page = [hostile_job(seed_job)] if page is None else page
    fake.route("GET", "/v1/Organizations", [{"id": HOSTILE_ORG, "name": "Hostile Inc."}])
    fake.route("GET", f"/v1/Organizations/{HOSTILE_ORG}/Jobs", page)
    fake.route("GET", "/v1/Jobs", page)
    repository = seed_job["_links"]["repository"]["href"].rsplit("/", 1)[-1]
    fake.route("GET", f"/v1/BackupRepositories/{repository}", {"id": repository, "name": "repo"})
    return fake


def with_token_fields(fake: FakeVBO, **raw: str) -> Handler:
    """``fake``'s handler, with each named field of its successful token answers replaced by the
    raw JSON text given (``expires_in="1e400"`` puts a number no float holds on the wire)."""

    async def handler(request: httpx.Request) -> httpx.Response:
        response = await fake.handler(request)
        if not request.url.path.lower().endswith("/token") or response.status_code != 200:
            return response
        data = response.json()
        data.update({name: f"@@{name}@@" for name in raw})
        text = json.dumps(data)
        for name, value in raw.items():
            text = text.replace(json.dumps(f"@@{name}@@"), value)
        return httpx.Response(200, content=text.encode(), headers={"content-type": "application/json"})

    return handler


def next_href(seed_job: dict[str, Any]) -> FakeVBO:
    page = {"results": [hostile_job(seed_job)], "_links": {"next": {"href": BAD_HREF}}}
    return serving_jobs(FakeVBO(), seed_job, page)


def repository_href(seed_job: dict[str, Any]) -> FakeVBO:
    return serving_jobs(FakeVBO(), seed_job, [hostile_job(seed_job, repository=BAD_HREF)])


def token_fields(**raw: str) -> Callable[[dict[str, Any]], Handler]:
    return lambda seed_job: with_token_fields(serving_jobs(FakeVBO(), seed_job), **raw)


def retry_after_far(seed_job: dict[str, Any]) -> FakeVBO:
    fake = serving_jobs(FakeVBO(), seed_job)
    unavailable = httpx.Response(503, headers={"Retry-After": FAR_DATE})
    fake.route("GET", f"/v1/Organizations/{HOSTILE_ORG}/Jobs", unavailable)
    fake.route("GET", "/v1/Jobs", unavailable)
    return fake


HOSTILE_TENANTS: dict[str, tuple[Callable[[dict[str, Any]], Handler | FakeVBO], str]] = {
    # name: (the hostile server, built from the seed job; what its tenant must end with)
    "next href https:/\\t/[x/v1/Jobs": (next_href, "LinkError"),
    "repository href https:/\\t/[x/v1/Jobs": (repository_href, "jobs + link errors"),
    'token expires_in "²"': (token_fields(expires_in='"²"'), "jobs"),
    "token expires_in of 5,000 digits (a string)": (token_fields(expires_in=json.dumps("9" * 5000)), "jobs"),
    # orjson refuses a number no double holds; read leniently, it is its text, a lifetime no
    # better than "²" (an hour). Before, the token answer was no JSON: a DecodeError.
    "token expires_in of 5,000 digits (a number)": (token_fields(expires_in="9" * 5000), "jobs"),
    "token expires_in 1e400": (token_fields(expires_in="1e400"), "jobs"),
    "token expires_in -1e400": (token_fields(expires_in="-1e400"), "jobs"),
    "token .expires in year 10^20": (
        token_fields(expires_in="null", **{".expires": json.dumps(FAR_DATE)}),
        "jobs",
    ),
    "token .issued in year 10^20": (
        token_fields(expires_in="null", **{".issued": json.dumps(FAR_DATE)}),
        "jobs",
    ),
    "503 with Retry-After in year 10^20": (retry_after_far, "ServerError"),
}
"""The hostile tenants of `scenario_sweep` (the report runs them too)."""


async def scenario_sweep(name: str, seed_job: dict[str, Any], *, batch: bool) -> Sweep:
    """`sweep_with` the hostile tenant ``name`` of `HOSTILE_TENANTS`."""
    server, _ = HOSTILE_TENANTS[name]
    return await sweep_with(client_for(server(seed_job), retry=NO_WAIT), batch=batch)


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("name", list(HOSTILE_TENANTS))
async def test_a_hostile_tenant_leaves_the_sweep_whole(
    seed_job: dict[str, Any], name: str, batch: bool
) -> None:
    swept = await scenario_sweep(name, seed_job, batch=batch)
    swept.check()
    assert swept.hostile_outcome == HOSTILE_TENANTS[name][1], swept.hostile.error
    if swept.hostile.error is None:
        assert [job.id for job in swept.hostile.jobs] == [seed_job["id"]]


async def test_an_unparsable_next_href_is_a_link_error_naming_it(seed_job: dict[str, Any]) -> None:
    async with client_for(next_href(seed_job)) as vbo:
        with pytest.raises(LinkError, match="malformed href") as caught:
            await vbo.organization_jobs(HOSTILE_ORG)
        with pytest.raises(LinkError):
            await vbo.jobs()
    assert caught.value.relation == "next"
    assert caught.value.href == BAD_HREF


TINY = {"number": "0.001", "string": '"0.001"'}
"""``expires_in`` of a millisecond, as a JSON number and as a string."""


async def scenario_tiny_lifetime(
    seed_job: dict[str, Any], spelling: str, tenants: int = 12
) -> dict[str, Any]:
    """``tenants`` tenants of one server whose tokens live a millisecond, polled one by one with
    their repository links: the errors, and the API and token requests the server saw."""
    fake = serving_jobs(FakeVBO(), seed_job)
    orgs = [f"{HOSTILE_ORG[:-2]}{n:02d}" for n in range(tenants)]
    for org in orgs:
        fake.route("GET", f"/v1/Organizations/{org}/Jobs", [seed_job])
    vbo = client_for(with_token_fields(fake, expires_in=TINY[spelling]), retry=NO_WAIT)
    targets = [PollTarget(client=vbo, organization_id=org) for org in orgs]
    async with vbo, poll_jobs(targets, batch=False, follow=("repository",), concurrency=4) as sweep:
        results = [result async for result in sweep]
    return {
        "errors": [result.error for result in results],
        "api_requests": len(fake.api_requests),
        "token_requests": len(fake.token_requests),
        "client_token_requests": vbo.token_requests,
    }


@pytest.mark.parametrize("spelling", list(TINY))
async def test_a_tiny_token_lifetime_costs_one_token_request_for_a_whole_sweep(
    seed_job: dict[str, Any], spelling: str
) -> None:
    """Twelve tenants: thirteen API requests (one shared repository), one token request (a
    refresh is due 30 s after issue at the soonest)."""
    found = await scenario_tiny_lifetime(seed_job, spelling)
    assert found["errors"] == [None] * 12
    assert found["api_requests"] == 12 + 1
    assert found["token_requests"] == found["client_token_requests"] == 1


@pytest.mark.parametrize("job_id", ["a/b", "..", "50%25", "x?y"])
@pytest.mark.parametrize("batch", BATCHES)
async def test_a_job_id_that_is_no_path_segment_is_unknown_health_not_a_crash(
    seed_job: dict[str, Any], job_id: str, batch: bool
) -> None:
    """A v1 job whose id cannot go into ``/Jobs/{id}/JobSessions``: its health is UNKNOWN,
    naming the id's fault; its tenant keeps its jobs and the other tenants their results."""
    fake = serving_jobs(FakeVBO(), seed_job, [{**hostile_job(seed_job), "id": job_id}])
    swept = await sweep_with(client_for(fake, retry=NO_WAIT), batch=batch, health=HealthPolicy())
    swept.check()
    assert [job.id for job in swept.hostile.jobs] == [job_id]
    health = swept.hostile.health[job_id]
    assert health.state.name == "UNKNOWN"
    assert health.reason.startswith("sessions could not be read: job.id must")
    assert not any("jobsessions" in path.lower() for path in fake.paths())
    for org_id in swept.expected:
        assert set(swept.results[org_id].health) == set(swept.expected[org_id])
