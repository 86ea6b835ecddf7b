"""Tests for the v1 simulator: auth, routing, wire shapes, paging, state, actions, faults, serving."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import socket
import ssl
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import uvicorn
from hypothesis import given
from hypothesis import strategies as st

import vbo_async.simulator as simulator_module
import vbo_async.simulator._stats as stats_module
import vbo_async.simulator._tokens as tokens_module
from vbo_async import ConfigError
from vbo_async._tokens import parse_http_date, parse_token_response
from vbo_async.simulator import (
    Faults,
    SimulatedError,
    Simulator,
    SimulatorConfig,
    create_app,
    make_tls_material,
)
from vbo_async.simulator._schedule import DAILY_TYPES, PERIODS, WINDOWS, next_run, previous_run
from vbo_async.simulator._wireformat import TICKS_PER_SECOND

from .conftest import serve

SEED_JOB = json.loads((Path(__file__).resolve().parent / "data" / "seed-job.json").read_text())[0]
HOST = "vbo-sim.east.local:4443"
STAMP_7 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}(Z|[+-]\d\d:\d\d)$")
STAMP_WHOLE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
PASSWORD_FORM = {"grant_type": "password", "username": "admin", "password": "admin"}


class FakeClock:
    """A hand-driven clock for token expiry and job run timing."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def client_for(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://testserver")


async def bearer(client: httpx.AsyncClient) -> dict[str, str]:
    response = await client.post("/v1/Token", data=PASSWORD_FORM)
    assert response.status_code == 200
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def local(href: str) -> str:
    """An advertised href rebased onto the test server (path and query only)."""
    parts = urlsplit(href)
    assert parts.scheme == "https"
    assert parts.netloc == HOST
    return parts.path + (f"?{parts.query}" if parts.query else "")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def simulator(clock: FakeClock) -> Simulator:
    return Simulator(SimulatorConfig(seed=11, session_duration=30.0), clock=clock)


@pytest.fixture
async def client(simulator: Simulator) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(create_app(simulator=simulator)) as client:
        yield client


@pytest.fixture
async def auth(client: httpx.AsyncClient) -> dict[str, str]:
    return await bearer(client)


def idle_enabled_job(simulator: Simulator) -> str:
    for job_id in simulator.job_ids():
        wire = simulator.job_wire(job_id)
        if wire["isEnabled"] == "true" and wire["lastStatus"] != "Running":
            return job_id
    raise AssertionError("no idle enabled job in the simulated data")


# -- public API and configuration ----------------------------------------------------------------


def test_all_is_sorted_and_complete() -> None:
    names = simulator_module.__all__
    assert list(names) == sorted(names)
    public = {name for name in vars(simulator_module) if not name.startswith("_")}
    assert public - {"annotations"} == set(names)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"organizations": -1},
        {"jobs_per_organization": (3, 2)},
        {"mailboxes_per_job": (0,)},
        {"page_size": 0},
        {"page_size": 10_001},
        {"advertised_host": "https://x"},
        {"link_origin": "ftp://x"},
        {"link_origin": "https://x/v1"},
        {"link_origin": "https://user@x"},
        {"link_origin": "https://[::1"},
        {"link_origin": "https://x:99999"},
        {"link_origin": 4443},
        {"unauthorized_body": "html"},
        {"token_lifetime": 0},
        {"refresh_token_lifetime": 0},
        {"refresh_token_lifetime": "1h"},
        {"faults": "none"},
        # An int too large for a float: no bare OverflowError from math.isfinite.
        {"token_lifetime": 10**400},
        {"session_duration": 10**400},
    ],
)
def test_config_rejects_invalid_values(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match=next(iter(kwargs))):
        SimulatorConfig(**kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"error_rate": 1.5},
        {"latency": -1},
        {"revoke_every": 0},
        {"latency": 10**400},
        {"error_rate": 10**400},
        {"retry_after": 10**400},
        {"revoke_every": 10**400},
    ],
)
def test_faults_reject_invalid_values(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match=next(iter(kwargs))):
        Faults(**kwargs)


def test_faults_reject_rates_summing_past_one() -> None:
    with pytest.raises(ConfigError, match="must not exceed 1"):
        Faults(error_rate=0.6, drop_rate=0.6)


@pytest.mark.parametrize(
    ("build", "named"),
    [
        (lambda: Simulator({"seed": 1}), "config"),  # a dict of the config's fields
        (lambda: Simulator(Faults()), "config"),
        (lambda: Simulator(clock=5), "clock"),
        (lambda: create_app({"seed": 1}), "config"),
        (lambda: create_app(simulator=SimulatorConfig()), "simulator"),  # a config where the simulator goes
        (lambda: create_app(simulator="sim"), "simulator"),
    ],
)
def test_the_simulator_refuses_arguments_of_another_type(build: Any, named: str) -> None:
    """A ConfigError naming the argument, not an AttributeError or TypeError from inside."""
    with pytest.raises(ConfigError, match=named):
        build()


def test_create_app_exposes_and_checks_the_simulator(simulator: Simulator) -> None:
    assert create_app(simulator=simulator).state.simulator is simulator
    assert create_app(SimulatorConfig(seed=3)).state.simulator.config.seed == 3
    with pytest.raises(ValueError, match="simulator"):
        create_app(SimulatorConfig(seed=99), simulator=simulator)


# -- authentication ------------------------------------------------------------------------------


async def test_password_grant_issues_a_token_pair(client: httpx.AsyncClient, simulator: Simulator) -> None:
    first = await client.post("/v1/Token", data=PASSWORD_FORM)
    second = await client.post("/v1/Token", data=PASSWORD_FORM)
    assert first.status_code == 200
    assert first.headers["content-type"] == "application/json; charset=utf-8"
    body = first.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 3600
    assert body["userName"] == "admin"
    assert isinstance(body["refresh_token"], str)
    issued, expires = parsedate_to_datetime(body[".issued"]), parsedate_to_datetime(body[".expires"])
    assert body[".issued"].endswith(" GMT")
    assert (expires - issued).total_seconds() == 3600
    assert body["access_token"] != second.json()["access_token"]
    assert simulator.stats.token_requests["password"] == 2


@pytest.mark.parametrize(
    "form",
    [
        {"grant_type": "password", "username": "admin", "password": "wrong"},
        {"grant_type": "password", "username": "root", "password": "admin"},
        {"grant_type": "refresh_token", "refresh_token": "never-issued"},
    ],
)
async def test_bad_grant_is_an_oauth_400(client: httpx.AsyncClient, form: dict[str, str]) -> None:
    response = await client.post("/v1/token", data=form)
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid_grant"
    assert body["error_description"]


async def test_unsupported_grant_type(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/Token", data={"grant_type": "client_credentials"})
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


async def test_refresh_rotates_and_refuses_the_old_refresh_token(
    client: httpx.AsyncClient, simulator: Simulator
) -> None:
    first = (await client.post("/v1/Token", data=PASSWORD_FORM)).json()
    form = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    refreshed = await client.post("/v1/Token", data=form)
    assert refreshed.status_code == 200
    second = refreshed.json()
    assert second["access_token"] != first["access_token"]
    assert second["refresh_token"] != first["refresh_token"]
    again = await client.post("/v1/Token", data=form)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"
    ok = await client.get("/v1/Proxies", headers={"Authorization": f"Bearer {second['access_token']}"})
    assert ok.status_code == 200
    assert simulator.stats.token_requests == {"password": 1, "refresh_token": 2}


@pytest.mark.parametrize(
    ("style", "expected"),
    [("message", {"message": "Authorization has been denied for this request."}), ("empty", None)],
)
async def test_unauthorized_requests_get_401(style: Any, expected: dict[str, str] | None) -> None:
    simulator = Simulator(SimulatorConfig(unauthorized_body=style))
    async with client_for(create_app(simulator=simulator)) as client:
        headers = await bearer(client)
        assert (await client.get("/v1/Organizations", headers=headers)).status_code == 200
        assert simulator.revoke_tokens() == 1
        attempts = [
            await client.get("/v1/Organizations"),
            await client.get("/v1/Organizations", headers={"Authorization": "Bearer nonsense"}),
            await client.get("/v1/Organizations", headers=headers),
        ]
    for response in attempts:
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        if expected is None:
            assert response.content == b""
        else:
            assert response.json() == expected
    assert simulator.stats.unauthorized == 3


async def test_access_tokens_expire_by_the_clock(clock: FakeClock) -> None:
    simulator = Simulator(SimulatorConfig(token_lifetime=60), clock=clock)
    async with client_for(create_app(simulator=simulator)) as client:
        headers = await bearer(client)
        clock.advance(59)
        assert (await client.get("/v1/Jobs", headers=headers)).status_code == 200
        clock.advance(2)
        assert (await client.get("/v1/Jobs", headers=headers)).status_code == 401


@pytest.mark.parametrize("version", ["v1", "v6", "v7", "v8"])
async def test_every_token_lifetime_the_config_accepts_is_served(version: str) -> None:
    """A lifetime whose ``.expires`` no date can hold (``token_lifetime=1e12``, 31,000 years) was
    accepted, then every token request raised a bare ValueError inside the simulator (a 500):
    it is a ConfigError naming the field, and the longest accepted gets its token."""
    for too_long in (tokens_module.MAX_TOKEN_LIFETIME * 1.01, 1e12, 1e300, 10**20):
        with pytest.raises(ConfigError, match="token_lifetime must be <= "):
            SimulatorConfig(token_lifetime=too_long)
    config = SimulatorConfig(token_lifetime=tokens_module.MAX_TOKEN_LIFETIME, api_versions=(version,))
    async with client_for(create_app(config)) as client:
        response = await client.post(f"/{version}/Token", data=PASSWORD_FORM)
    assert response.status_code == 200
    answer = response.json()
    assert answer["expires_in"] == int(tokens_module.MAX_TOKEN_LIFETIME)
    assert parse_http_date(answer[".expires"]).year > 2100  # RFC 1123 (v8: ISO 8601)


def test_refresh_tokens_expire_after_the_lifetime_configured(clock: FakeClock) -> None:
    """`SimulatorConfig.refresh_token_lifetime` bounds a refresh token's life, even below the
    access token's: a client refreshing later than that must use its password again."""
    simulator = Simulator(SimulatorConfig(token_lifetime=60, refresh_token_lifetime=100), clock=clock)
    first, second = (simulator.password_grant("admin", "admin") for _ in range(2))
    assert first["expires_in"] == 60
    clock.advance(99)
    assert simulator.refresh_grant(str(first["refresh_token"]))["access_token"]
    clock.advance(1)
    with pytest.raises(SimulatedError, match="refresh token is invalid"):
        simulator.refresh_grant(str(second["refresh_token"]))
    short = Simulator(SimulatorConfig(token_lifetime=60, refresh_token_lifetime=10), clock=clock)
    pair = short.password_grant("admin", "admin")
    clock.advance(10)
    assert short.authenticate(f"Bearer {pair['access_token']}") == pair["access_token"]
    with pytest.raises(SimulatedError, match="refresh token is invalid"):
        short.refresh_grant(str(pair["refresh_token"]))


def test_the_token_store_forgets_expired_tokens(clock: FakeClock) -> None:
    """A client that logs in every sweep and never logs out (v1, v6) must not grow the simulator's
    tables for ever: expired access tokens and unused refresh tokens past their lifetime are dropped,
    while a recent token still refreshes after its access token expired, and an expired one still
    gets the version's 401."""
    simulator = Simulator(SimulatorConfig(token_lifetime=60), clock=clock)
    pairs = [simulator.password_grant("admin", "admin") for _ in range(500)]
    clock.advance(61)
    refreshed = simulator.refresh_grant(str(pairs[-1]["refresh_token"]))  # access expired, refresh not
    for version, body in (
        ("v1", {"message": "Authorization has been denied for this request."}),
        ("v8", None),
    ):
        with pytest.raises(SimulatedError) as refused:
            simulator.authenticate(f"Bearer {pairs[0]['access_token']}", version=version)
        assert (refused.value.status_code, refused.value.body) == (401, body)
    assert simulator.authenticate(f"Bearer {refreshed['access_token']}") == refreshed["access_token"]
    clock.advance(tokens_module.REFRESH_LIFETIME)
    with pytest.raises(SimulatedError, match="refresh token is invalid"):
        simulator.refresh_grant(str(pairs[0]["refresh_token"]))
    last = simulator.password_grant("admin", "admin")
    assert simulator.authenticate(f"Bearer {last['access_token']}") == last["access_token"]
    assert simulator.revoke_tokens(refresh_tokens=True) == 2  # the last pair alone is held


def test_the_token_store_is_bounded_however_fast_clients_log_in(
    clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Logins faster than tokens expire (or a stopped clock) keep at most `MAX_TOKENS` pairs: the
    oldest are forgotten first, the newest keep working."""
    monkeypatch.setattr(tokens_module, "MAX_TOKENS", 50)
    simulator = Simulator(SimulatorConfig(token_lifetime=3600), clock=clock)
    pairs = [simulator.password_grant("admin", "admin") for _ in range(200)]
    with pytest.raises(SimulatedError):
        simulator.authenticate(f"Bearer {pairs[0]['access_token']}")
    with pytest.raises(SimulatedError, match="refresh token is invalid"):
        simulator.refresh_grant(str(pairs[0]["refresh_token"]))
    newest = pairs[-1]
    assert simulator.authenticate(f"Bearer {newest['access_token']}") == newest["access_token"]
    simulator.refresh_grant(str(newest["refresh_token"]))
    assert simulator.revoke_tokens(refresh_tokens=True) <= 2 * 50


def test_the_token_log_keeps_the_newest_requests_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """A long-running simulator with a client logging in every sweep: the log of token requests
    keeps the newest `TOKEN_LOG_KEPT`, while the counters count them all."""
    monkeypatch.setattr(stats_module, "TOKEN_LOG_KEPT", 5)
    stats = stats_module.SimulatorStats()
    for status in range(12):
        stats.record_token_request(stats_module.TokenRequest("v8", "password", (), None, status))
    assert [request.status for request in stats.token_log] == [7, 8, 9, 10, 11]
    assert stats.token_requests == {"password": 12}


async def test_token_endpoint_accepts_json_bodies(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/Token", json=PASSWORD_FORM)
    assert response.status_code == 200
    assert response.json()["access_token"]


# -- routing and wire shapes ---------------------------------------------------------------------


async def test_routing_is_case_insensitive(
    client: httpx.AsyncClient, auth: dict[str, str], simulator: Simulator
) -> None:
    assert (await client.post("/V1/TOKEN", data=PASSWORD_FORM)).status_code == 200
    org_id = simulator.organization_ids()[0]
    variants = [f"/v1/organizations/{org_id}/jobs", f"/V1/Organizations/{org_id.upper()}/JOBS"]
    bodies = []
    for path in variants:
        response = await client.get(path, headers=auth)
        assert response.status_code == 200
        bodies.append(response.json())
    assert bodies[0] == bodies[1] == simulator.jobs_wire(org_id)
    assert simulator.stats.by_endpoint[("GET", f"/v1/organizations/{org_id}/jobs")] == 2


def _key_tree(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _key_tree(item) for key, item in value.items()}
    return type(value).__name__ if not isinstance(value, list) else "list"


async def test_jobs_match_the_seed_job_shape(
    client: httpx.AsyncClient, auth: dict[str, str], simulator: Simulator
) -> None:
    response = await client.get("/v1/Jobs", headers=auth)
    assert response.status_code == 200
    jobs = response.json()
    assert isinstance(jobs, list)
    assert jobs == simulator.jobs_wire()
    seed_links = set(SEED_JOB["_links"])
    for job in jobs:
        assert list(job) == list(SEED_JOB)
        assert list(job["schedulePolicy"]) == list(SEED_JOB["schedulePolicy"])
        assert set(job["_links"]) == seed_links
        for flag in (job["allMailboxes"], job["isEnabled"], job["schedulePolicy"]["retryEnabled"]):
            assert flag in ("true", "false")
        window = job["schedulePolicy"]["backupWindow"]
        assert len(window["backupIntervalsArray"]) == 168
        assert all(isinstance(hour, bool) for hour in window["backupIntervalsArray"])
        assert isinstance(job["schedulePolicy"]["retryNumber"], int)
        assert re.fullmatch(r"\d\d:\d\d:\d\d", job["schedulePolicy"]["dailyTime"])
        assert job["lastRun"] is None or STAMP_7.match(job["lastRun"])
        assert job["nextRun"] is None or STAMP_WHOLE.match(job["nextRun"])
        for link in job["_links"].values():
            assert link["href"].startswith(f"https://{HOST}/v1/")
        assert job["_links"]["self"]["href"] == f"https://{HOST}/v1/Jobs/{job['id']}"
        assert job["_links"]["jobsessions"]["href"].endswith(f"/v1/Jobs/{job['id']}/JobSessions")


def test_generated_jobs_vary_like_real_ones() -> None:
    jobs = Simulator(SimulatorConfig(seed=2, organizations=40)).jobs_wire()
    policies = [job["schedulePolicy"] for job in jobs]
    windows = [policy["backupWindow"]["backupIntervalsArray"] for policy in policies]
    assert {policy["type"] for policy in policies} == {"Periodically", "Daily"}
    assert len({policy["periodicallyEvery"] for policy in policies}) > 3
    assert any(all(window) for window in windows)
    assert any(not all(window) and any(window) for window in windows)
    assert any(job["isEnabled"] == "false" for job in jobs)
    assert any(job["lastRun"] is None for job in jobs)
    assert any(job["nextRun"] is None for job in jobs)
    assert {job["lastStatus"] for job in jobs} >= {"Success", "Warning", "Failed"}


async def test_other_resources_have_v1_shapes(
    client: httpx.AsyncClient, auth: dict[str, str], simulator: Simulator
) -> None:
    orgs = (await client.get("/v1/Organizations", headers=auth)).json()
    assert orgs == simulator.organizations_wire()
    assert len(orgs) == 5
    org = orgs[0]
    assert set(org) == {
        "type", "username", "region", "id", "name", "isBackedup", "firstBackuptime", "lastBackuptime",
        "_links",
    }  # fmt: skip
    assert org["isBackedup"] in ("true", "false")
    assert set(org["_links"]) == {"self", "jobs", "mailboxes"}
    assert (await client.get(local(org["_links"]["self"]["href"]), headers=auth)).json() == org

    repositories = (await client.get("/v1/BackupRepositories", headers=auth)).json()
    assert len(repositories) == 3
    repository = repositories[0]
    assert isinstance(repository["dailyRetentionPeriod"], str)
    assert repository["dailyRetentionPeriod"].isdigit()
    assert isinstance(repository["capacity"], int)
    assert set(repository["_links"]) == {"self", "proxy"}
    proxy = (await client.get(local(repository["_links"]["proxy"]["href"]), headers=auth)).json()
    assert proxy["id"] == repository["proxyId"]
    assert proxy["port"] == 9193
    assert proxy["enableNetworkthrottling"] in ("true", "false")
    assert proxy["status"] in ("Online", "Offline")
    own = await client.get(local(proxy["_links"]["repositories"]["href"]), headers=auth)
    assert repository in own.json()
    assert len((await client.get("/v1/Proxies", headers=auth)).json()) == 2

    jobs = simulator.jobs_wire()
    shared = {job["_links"]["repository"]["href"] for job in jobs}
    assert len(shared) < len(jobs)

    job_id = next(job["id"] for job in jobs if job["lastRun"] is not None)
    sessions = simulator.job_sessions_wire(job_id)
    session = (await client.get(f"/v1/JobSessions/{sessions[0]['id']}", headers=auth)).json()
    assert session == sessions[0]
    assert set(session["statistics"]) == {
        "processingRate", "readRate", "writeRate", "transferredData", "processedObjects", "bottleneck"
    }  # fmt: skip
    assert re.fullmatch(r"[\d.]+ [KMGT]?B/s \(\d+ items/s\)", session["statistics"]["processingRate"])
    assert isinstance(session["statistics"]["processedObjects"], int)
    assert STAMP_7.match(session["creationTime"])
    assert set(session["_links"]) == {"self", "log", "job"}
    assert local(session["_links"]["job"]["href"]) == f"/v1/Jobs/{job_id}"


def test_session_times_sometimes_carry_offsets() -> None:
    simulator = Simulator(SimulatorConfig(seed=4, organizations=10))
    stamps = [
        session["creationTime"]
        for job_id in simulator.job_ids()
        for session in simulator.job_sessions_wire(job_id)[:1]
    ]
    assert any(stamp.endswith("Z") for stamp in stamps)
    assert any(re.search(r"[+-]\d\d:\d\d$", stamp) for stamp in stamps)


async def test_a_fresh_server_finds_any_session_by_id() -> None:
    config = SimulatorConfig(seed=5)
    reference = Simulator(config)
    job_id = next(j for j in reference.job_ids() if reference.job_wire(j)["lastRun"] is not None)
    wanted = reference.job_sessions_wire(job_id)[-1]
    async with client_for(create_app(config)) as client:
        response = await client.get(f"/v1/JobSessions/{wanted['id']}", headers=await bearer(client))
    assert response.status_code == 200
    assert response.json() == wanted


@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        ("/v1/Jobs/00000000-0000-4000-8000-000000000000", "Job with id"),
        ("/v1/Organizations/nope", "Organization with id"),
        ("/v1/Organizations/nope/Jobs", "Organization with id"),
        ("/v1/JobSessions/nope", "Job session with id"),
        ("/v1/BackupRepositories/nope", "Backup repository with id"),
        ("/v1/Proxies/nope", "Proxy with id"),
        ("/v1/Jobs/nope/JobSessions", "Job with id"),
        ("/v1/NoSuchThing", "No HTTP resource"),
    ],
)
async def test_unknown_things_are_404_with_a_message(
    client: httpx.AsyncClient, auth: dict[str, str], path: str, fragment: str
) -> None:
    response = await client.get(path, headers=auth)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert fragment in response.json()["message"]


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/v8/Jobs/", 200),
        ("GET", "/v8/Jobs//", 404),
        ("GET", "/v8/JobSessions//", 404),
        ("GET", "/V8/Organizations//", 404),
        ("POST", "/v8/token//", 404),
        ("GET", "/v1/Jobs//", 404),
    ],
)
async def test_a_path_ending_in_two_slashes_is_404_not_redirected(
    client: httpx.AsyncClient, auth: dict[str, str], method: str, path: str, status: int
) -> None:
    """One trailing slash is ignored, as ASP.NET routing does; two are no route, answered 404
    with the usual message. Starlette answered 307 with a Location on the lower-cased path
    (``/v8/jobs``), which no VB365 server does, for a token request too."""
    response = await client.request(method, path, headers=auth)
    assert (response.status_code, response.headers.get("location")) == (status, None)
    if status == 404:
        assert response.headers["content-type"] == "application/json; charset=utf-8"
        assert response.json() == {
            "message": f"No HTTP resource was found that matches the request URI '{path[:-1]}'."
        }


async def test_unknown_mailbox_is_404(
    client: httpx.AsyncClient, auth: dict[str, str], simulator: Simulator
) -> None:
    org_id = simulator.organization_ids()[0]
    response = await client.get(f"/v1/Organizations/{org_id}/Mailboxes/nope", headers=auth)
    assert response.status_code == 404
    assert response.json()["message"].endswith("was not found.")


# -- paging --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("count", "sizes"), [(100, [30, 30, 30, 10]), (90, [30, 30, 30])])
async def test_job_sessions_page_through_next_links(count: int, sizes: list[int]) -> None:
    simulator = Simulator(SimulatorConfig(seed=8, sessions_per_job=(count, count)))
    job_id = next(j for j in simulator.job_ids() if simulator.job_wire(j)["lastRun"] is not None)
    async with client_for(create_app(simulator=simulator)) as client:
        headers = await bearer(client)
        url: str | None = f"/V1/jobs/{job_id}/JOBSESSIONS?limit=30"
        pages = []
        while url is not None:
            response = await client.get(url, headers=headers)
            assert response.status_code == 200
            page = response.json()
            pages.append(page)
            next_link = page["_links"].get("next")
            url = None if next_link is None else local(next_link["href"])
    assert [len(page["results"]) for page in pages] == sizes
    assert [page["offset"] for page in pages] == [30 * number for number in range(len(sizes))]
    assert all(page["limit"] == 30 for page in pages)
    assert "next" not in pages[-1]["_links"]
    assert "prev" not in pages[0]["_links"]
    assert "first" not in pages[0]["_links"]
    assert pages[2]["_links"]["prev"]["href"].endswith("?offset=30&limit=30")
    assert pages[2]["_links"]["first"]["href"].endswith("?offset=0&limit=30")
    assert pages[1]["_links"]["self"]["href"] == (
        f"https://{HOST}/V1/jobs/{job_id}/JOBSESSIONS?offset=30&limit=30"
    )
    results = [item for page in pages for item in page["results"]]
    assert results == simulator.job_sessions_wire(job_id)


async def test_default_limit_is_the_page_size() -> None:
    simulator = Simulator(SimulatorConfig(seed=8, page_size=7, mailboxes_per_job=(20, 20)))
    job_id = simulator.job_ids()[0]
    async with client_for(create_app(simulator=simulator)) as client:
        page = (await client.get(f"/v1/Jobs/{job_id}/SelectedMailboxes", headers=await bearer(client))).json()
    assert page["limit"] == 7
    assert len(page["results"]) == 7
    assert page["_links"]["next"]["href"].endswith("?offset=7&limit=7")


async def test_selected_mailboxes_link_to_their_organization_mailbox(
    client: httpx.AsyncClient, auth: dict[str, str], simulator: Simulator
) -> None:
    job_id = next(j for j in simulator.job_ids() if simulator.selected_mailboxes_wire(j))
    page = (await client.get(f"/v1/Jobs/{job_id}/SelectedMailboxes?limit=10000", headers=auth)).json()
    assert page["results"] == simulator.selected_mailboxes_wire(job_id)
    assert "next" not in page["_links"]
    mailbox = page["results"][0]
    assert set(mailbox) == {"id", "email", "name", "isBackedUp", "_links"}
    assert mailbox["isBackedUp"] in ("true", "false")
    org_href = simulator.job_wire(job_id)["_links"]["organization"]["href"]
    assert mailbox["_links"]["organization"]["href"] == org_href
    assert mailbox["_links"]["self"]["href"] == f"{org_href}/Mailboxes/{mailbox['id']}"
    response = await client.get(local(mailbox["_links"]["self"]["href"]), headers=auth)
    assert response.json() == mailbox


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=-1",
        "limit=abc",
        "limit=10001",
        "offset=-5",
        "offset=x",
        "offset=2147483648",  # the servers bind offset as an int32
        "offset=" + "9" * 40,  # was a 500: orjson cannot write it back into the page's links
    ],
)
async def test_bad_paging_values_are_400(
    client: httpx.AsyncClient, auth: dict[str, str], simulator: Simulator, query: str
) -> None:
    response = await client.get(f"/v1/Jobs/{simulator.job_ids()[0]}/JobSessions?{query}", headers=auth)
    assert response.status_code == 400
    assert response.json()["message"]
    v8 = await client.get(f"/v8/Jobs?{query}", headers=auth)
    assert v8.status_code == 400
    assert v8.json()["message"]


# -- reproducibility and scale -------------------------------------------------------------------


def _snapshot(simulator: Simulator) -> list[Any]:
    return [
        simulator.organizations_wire(),
        simulator.jobs_wire(),
        simulator.repositories_wire(),
        simulator.proxies_wire(),
        [simulator.job_sessions_wire(job_id) for job_id in simulator.job_ids()],
        [simulator.selected_mailboxes_wire(job_id) for job_id in simulator.job_ids()],
    ]


def test_same_seed_same_data_and_other_seed_other_data() -> None:
    # One epoch for both: by default each simulator dates everything from the wall clock when it is
    # built, and on a loaded machine the second was built in the next second (every date 1 s apart).
    config = SimulatorConfig(seed=21, organizations=8, epoch=datetime(2026, 6, 1, 12, tzinfo=UTC))
    first = Simulator(config, clock=FakeClock())
    second = Simulator(config, clock=FakeClock())
    # Access order must not matter: read the second one backwards.
    for job_id in reversed(second.job_ids()):
        second.selected_mailboxes_wire(job_id)
        second.job_sessions_wire(job_id)
    assert _snapshot(first) == _snapshot(second)
    other = Simulator(SimulatorConfig(seed=22, organizations=8), clock=FakeClock())
    assert first.job_ids() != other.job_ids()
    assert first.organizations_wire() != other.organizations_wire()


def test_an_organization_s_mailboxes_do_not_depend_on_when_its_first_backup_ran() -> None:
    """The mailbox pool is drawn from its own generator: reading it before or after the
    organization's first backup ends gives the same mailboxes (ids, names, addresses)."""
    config = SimulatorConfig(seed=5, organizations=40, jobs_per_organization=(1, 1), session_duration=1.0)
    early_clock, late_clock = FakeClock(), FakeClock()
    early = Simulator(config, clock=early_clock)
    late = Simulator(config, clock=late_clock)
    org_id = next(org["id"] for org in early.organizations_wire() if org["isBackedup"] == "false")
    (job,) = late.jobs_wire(org_id)
    before = early.mailboxes_page(org_id, limit=10_000)[0]
    late.job_action(job["id"], "enable")
    late.job_action(job["id"], "start")
    late_clock.advance(5)
    assert late.organization_wire(org_id)["isBackedup"] == "true"
    after = late.mailboxes_page(org_id, limit=10_000)[0]
    assert [(m["id"], m["name"], m["email"]) for m in after] == [
        (m["id"], m["name"], m["email"]) for m in before
    ]


def test_large_configurations_build() -> None:
    simulator = Simulator(SimulatorConfig(organizations=1000, jobs_per_organization=(5, 5)))
    assert len(simulator.job_ids()) == 5000
    assert len(simulator.organization_ids()) == 1000


def test_ranges_bound_the_generated_counts() -> None:
    simulator = Simulator(
        SimulatorConfig(
            organizations=6, jobs_per_organization=(1, 3), mailboxes_per_job=(4, 9), sessions_per_job=(2, 6)
        )
    )
    for org_id in simulator.organization_ids():
        assert 1 <= len(simulator.jobs_wire(org_id)) <= 3
    for job_id in simulator.job_ids():
        assert 4 <= len(simulator.selected_mailboxes_wire(job_id)) <= 9
        sessions = simulator.job_sessions_wire(job_id)
        assert sessions == [] or 2 <= len(sessions) <= 6


# -- job actions ---------------------------------------------------------------------------------


async def test_start_runs_a_session_that_finishes_on_the_clock(
    client: httpx.AsyncClient, auth: dict[str, str], simulator: Simulator, clock: FakeClock
) -> None:
    job_id = idle_enabled_job(simulator)
    before = simulator.job_sessions_wire(job_id)
    response = await client.post(f"/v1/Jobs/{job_id}/Action", json={"start": None}, headers=auth)
    assert response.status_code == 200
    assert response.content == b""
    sessions = simulator.job_sessions_wire(job_id)
    assert len(sessions) == len(before) + 1
    running = sessions[0]
    assert running["status"] == "Running"
    assert running["endTime"] is None
    job = (await client.get(f"/v1/Jobs/{job_id}", headers=auth)).json()
    assert job["lastStatus"] == "Running"
    assert STAMP_7.match(job["lastRun"])

    again = await client.post(f"/v1/jobs/{job_id}/action", json={"start": None}, headers=auth)
    assert again.status_code == 400
    assert "already running" in again.json()["message"]

    clock.advance(29)
    still = (await client.get(f"/v1/JobSessions/{running['id']}", headers=auth)).json()
    assert still["status"] == "Running"
    clock.advance(1)
    done = (await client.get(f"/v1/JobSessions/{running['id']}", headers=auth)).json()
    assert done["status"] in ("Success", "Warning", "Failed")
    assert done["endTime"] is not None
    job = (await client.get(f"/v1/Jobs/{job_id}", headers=auth)).json()
    assert job["lastStatus"] == done["status"]
    assert job["nextRun"] is not None
    assert simulator.stats.job_actions[(job_id, "start")] == 1


def test_run_outcomes_are_reproducible() -> None:
    outcomes = []
    for _ in range(2):
        clock = FakeClock()
        simulator = Simulator(SimulatorConfig(seed=31), clock=clock)
        job_id = idle_enabled_job(simulator)
        for _ in range(3):
            simulator.job_action(job_id, "start")
            clock.advance(30)
        outcomes.append([s["status"] for s in simulator.job_sessions_wire(job_id)[:3]])
    assert outcomes[0] == outcomes[1]


async def test_stop_ends_a_running_job_and_is_refused_when_idle(
    client: httpx.AsyncClient, auth: dict[str, str], simulator: Simulator
) -> None:
    job_id = idle_enabled_job(simulator)
    url = f"/v1/Jobs/{job_id}/Action"
    idle = await client.post(url, json={"stop": None}, headers=auth)
    assert idle.status_code == 400
    assert "not running" in idle.json()["message"]
    assert (await client.post(url, json={"start": None}, headers=auth)).status_code == 200
    assert (await client.post(url, json={"stop": None}, headers=auth)).status_code == 200
    session = simulator.job_sessions_wire(job_id)[0]
    assert session["status"] == "Stopped"
    assert session["endTime"] is not None
    assert simulator.job_wire(job_id)["lastStatus"] == "Stopped"
    assert simulator.stats.job_actions[(job_id, "stop")] == 1


async def test_disable_and_enable_change_the_job(
    client: httpx.AsyncClient, auth: dict[str, str], simulator: Simulator
) -> None:
    job_id = idle_enabled_job(simulator)
    url = f"/v1/Jobs/{job_id}/Action"
    assert (await client.post(url, json={"disable": None}, headers=auth)).status_code == 200
    job = (await client.get(f"/v1/Jobs/{job_id}", headers=auth)).json()
    assert job["isEnabled"] == "false"
    assert job["nextRun"] is None
    refused = await client.post(url, json={"start": None}, headers=auth)
    assert refused.status_code == 400
    assert "disabled" in refused.json()["message"]
    assert (await client.post(url, json={"enable": None}, headers=auth)).status_code == 200
    job = (await client.get(f"/v1/Jobs/{job_id}", headers=auth)).json()
    assert job["isEnabled"] == "true"
    assert STAMP_WHOLE.match(job["nextRun"])
    assert simulator.stats.job_actions[(job_id, "disable")] == 1
    assert simulator.stats.job_actions[(job_id, "enable")] == 1
    assert (job_id, "start") not in simulator.stats.job_actions


@pytest.mark.parametrize(
    "content",
    [b'{"explore": null}', b'{"start": null, "stop": null}', b"[]", b"not json", b'{"start": 1}', b""],
)
async def test_bad_action_bodies_are_400(
    client: httpx.AsyncClient, auth: dict[str, str], simulator: Simulator, content: bytes
) -> None:
    headers = {**auth, "Content-Type": "application/json"}
    job_id = simulator.job_ids()[0]
    response = await client.post(f"/v1/Jobs/{job_id}/Action", content=content, headers=headers)
    assert response.status_code == 400
    assert response.json()["message"]
    assert not simulator.stats.job_actions


def test_python_api_raises_simulated_errors(simulator: Simulator) -> None:
    with pytest.raises(SimulatedError) as caught:
        simulator.job_wire("missing")
    assert caught.value.status_code == 404
    with pytest.raises(SimulatedError) as caught:
        simulator.job_action(simulator.job_ids()[0], "explode")
    assert caught.value.status_code == 400
    with pytest.raises(SimulatedError, match="endTimeLowerBound") as caught:
        simulator.sessions_wire(version="v8", end_time_lower_bound=datetime(2026, 7, 1))  # no zone
    assert caught.value.status_code == 400


async def test_stats_count_requests_and_reset(
    client: httpx.AsyncClient, auth: dict[str, str], simulator: Simulator
) -> None:
    await client.get("/v1/Organizations", headers=auth)
    await client.get("/v1/ORGANIZATIONS", headers=auth)
    assert simulator.stats.requests == 3
    assert simulator.stats.by_endpoint[("GET", "/v1/organizations")] == 2
    assert simulator.stats.by_endpoint[("POST", "/v1/token")] == 1
    simulator.reset_stats()
    assert simulator.stats.requests == 0
    assert not simulator.stats.by_endpoint


# -- faults --------------------------------------------------------------------------------------


def faulty(**faults: Any) -> Simulator:
    return Simulator(SimulatorConfig(seed=1, faults=Faults(**faults)))


async def test_error_faults_answer_500_502_503() -> None:
    simulator = faulty(error_rate=1.0)
    async with client_for(create_app(simulator=simulator)) as client:
        responses = [await client.get("/v1/Organizations") for _ in range(30)]
        outside = await client.get("/not-api")
    assert {response.status_code for response in responses} == {500, 502, 503}
    assert all(response.json()["message"] for response in responses)
    assert outside.status_code == 404
    assert simulator.stats.faults["error"] == 30
    assert simulator.stats.requests == 31


async def test_rate_limit_faults_answer_429_with_retry_after() -> None:
    simulator = faulty(rate_limit_rate=1.0, retry_after=2.5)
    async with client_for(create_app(simulator=simulator)) as client:
        response = await client.post("/v1/Token", data=PASSWORD_FORM)
    assert response.status_code == 429
    assert response.headers["retry-after"] == "3"
    assert response.json()["message"]
    assert simulator.stats.faults["rate_limit"] == 1
    assert not simulator.stats.token_requests


async def test_drop_faults_reset_the_connection_after_the_app_ran() -> None:
    simulator = faulty(drop_rate=1.0)
    async with client_for(create_app(simulator=simulator)) as client:
        with pytest.raises(ConnectionResetError, match="simulated connection drop"):
            await client.post("/v1/Token", data=PASSWORD_FORM)
    assert simulator.stats.faults["drop"] == 1
    assert simulator.stats.token_requests["password"] == 1


async def test_cut_answers_without_a_body_over_a_real_server() -> None:
    """Over uvicorn, as over ASGITransport: a dropped empty 200 (a v1 job action) is cut before
    its end, after the action was applied. A 204 is complete with its head and an empty body
    cannot be cut short, so those are left alone, and no fault is counted that did not happen."""
    dropping, truncating = faulty(drop_rate=1.0), faulty(truncate_rate=1.0)
    outcomes = []
    for simulator in (dropping, truncating):
        token = simulator.token(PASSWORD_FORM)["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        job_id = simulator.job_ids()[0]
        async with (
            serve(create_app(simulator=simulator)) as port,
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers) as client,
        ):
            try:
                action = await client.post(f"/v1/Jobs/{job_id}/Action", json={"disable": None})
                outcomes.append((action.status_code, action.content))
            except httpx.RemoteProtocolError:
                outcomes.append("cut")
            enabled = await client.post(f"/v8/Jobs/{job_id}/enable")
            outcomes.append((enabled.status_code, enabled.content))
        assert simulator.stats.job_actions[(job_id, "disable")] == 1
    assert outcomes == ["cut", (204, b""), (200, b""), (204, b"")]
    assert dropping.stats.faults["drop"] == 1
    assert truncating.stats.faults["truncate"] == 0


async def test_truncate_faults_send_less_than_content_length() -> None:
    simulator = faulty(truncate_rate=1.0)
    async with client_for(create_app(simulator=simulator)) as client:
        response = await client.post("/v1/Token", data=PASSWORD_FORM)
    assert response.status_code == 200
    assert 0 < len(response.content) < int(response.headers["content-length"])
    assert simulator.stats.faults["truncate"] == 1


async def test_malformed_faults_send_a_200_that_is_not_json() -> None:
    simulator = faulty(malformed_rate=1.0)
    async with client_for(create_app(simulator=simulator)) as client:
        response = await client.post("/v1/Token", data=PASSWORD_FORM)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert len(response.content) == int(response.headers["content-length"])
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.content)
    assert simulator.stats.faults["malformed"] == 1


async def test_malformed_faults_leave_answers_that_are_not_successes_alone() -> None:
    """A refusal stays a refusal: a malformed body is a fault of successful answers only, so a
    client under malformed_rate still sees the 401 that makes it renew its token."""
    simulator = faulty(malformed_rate=1.0)
    async with client_for(create_app(simulator=simulator)) as client:
        refused = await client.get("/v1/Jobs")  # no token
        wrong = await client.post("/v1/Token", data={**PASSWORD_FORM, "password": "wrong"})
    assert refused.status_code == 401
    assert "message" in refused.json()
    assert wrong.status_code in (400, 401)
    assert wrong.json()
    assert simulator.stats.faults["malformed"] == 0


async def test_malformed_faults_leave_answers_without_a_body_alone() -> None:
    """A 204 cannot carry a body (a real server cannot send one; uvicorn refuses to), so
    malformed_rate leaves the 204s of v6+ job actions and logout as they are, uncounted."""
    simulator = faulty(malformed_rate=1.0)
    token = simulator.token(PASSWORD_FORM, version="v8")["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    job_id = simulator.job_ids()[0]
    async with client_for(create_app(simulator=simulator)) as client:
        enabled = await client.post(f"/v8/Jobs/{job_id}/enable", headers=headers)
        logged_out = await client.post("/v8/token/logout", headers=headers)
    assert (enabled.status_code, enabled.content) == (204, b"")
    assert (logged_out.status_code, logged_out.content) == (204, b"")
    assert simulator.stats.faults["malformed"] == 0


async def test_revoke_every_invalidates_access_tokens() -> None:
    """The tokens are revoked once ``revoke_every`` has passed since the last revocation. The test
    moves that last revocation an hour back instead of waiting: with ``revoke_every=0.3`` and a
    real wait, a machine slow for 0.3 s (shared, loaded) revoked the first token before its first
    request, or twice, and the test failed by chance."""
    simulator = faulty(revoke_every=3600)
    async with client_for(create_app(simulator=simulator)) as client:
        headers = await bearer(client)
        assert (await client.get("/v1/Jobs", headers=headers)).status_code == 200
        assert simulator.stats.faults["revoke"] == 0  # not due within the hour
        simulator.last_revocation -= 3600  # an hour has passed
        assert (await client.get("/v1/Jobs", headers=headers)).status_code == 401
        assert (await client.get("/v1/Jobs", headers=await bearer(client))).status_code == 200
    assert simulator.stats.faults["revoke"] == 1


@pytest.mark.parametrize("faults", [{"latency": 0.15}, {"latency_spike_rate": 1.0, "latency_spike": 0.15}])
async def test_latency_faults_delay_responses(faults: dict[str, float]) -> None:
    simulator = faulty(**faults)
    async with client_for(create_app(simulator=simulator)) as client:
        started = time.perf_counter()
        response = await client.post("/v1/Token", data=PASSWORD_FORM)
        elapsed = time.perf_counter() - started
    assert response.status_code == 200
    assert elapsed >= 0.14
    assert sum(simulator.stats.faults.values()) == 1


async def _fault_statuses(fault_seed: int) -> list[int]:
    simulator = faulty(error_rate=0.3, rate_limit_rate=0.3, fault_seed=fault_seed)
    async with client_for(create_app(simulator=simulator)) as client:
        return [(await client.get("/v1/Proxies")).status_code for _ in range(40)]


async def test_faults_are_deterministic_per_fault_seed() -> None:
    first, again, other = await _fault_statuses(7), await _fault_statuses(7), await _fault_statuses(8)
    assert first == again
    assert first != other
    assert {401, 429} <= set(first)
    assert set(first) & {500, 502, 503}


# -- serving -------------------------------------------------------------------------------------


def test_tls_material_names_the_hosts_asked_for(tmp_path: Path) -> None:
    """The server certificate names 127.0.0.1 and localhost, and the hosts given: a simulator
    served on ``::1`` or a machine's own address is verified under the URL it prints."""
    from cryptography import x509

    def names(cert_path: Path) -> set[str]:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        extension = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        return {str(n) for n in extension.get_values_for_type(x509.IPAddress)} | set(
            extension.get_values_for_type(x509.DNSName)
        )

    default, _, _ = make_tls_material(tmp_path / "default")
    assert names(default) == {"127.0.0.1", "localhost"}
    given, _, _ = make_tls_material(tmp_path / "given", hosts=("::1", "vbo01.lab.local", "10.1.2.3"))
    assert names(given) == {"127.0.0.1", "localhost", "::1", "vbo01.lab.local", "10.1.2.3"}
    for bad in (["vbo 01"], [""], [4443]):
        with pytest.raises(ConfigError, match="hosts"):
            make_tls_material(tmp_path / "bad", hosts=bad)


@pytest.mark.parametrize(
    "hosts",
    ["vbohost", "vbo01.lab", "10.1.2.3", b"vbohost", 4443],
    ids=["name", "dotted", "ip", "bytes", "int"],
)
def test_tls_material_refuses_one_host_not_in_a_collection(tmp_path: Path, hosts: Any) -> None:
    """``hosts="vbohost"`` is refused, and nothing written: a str was taken letter by letter (a
    certificate for ``v``, ``b``, ``o``, ...), or refused for the empty labels between the
    letters of ``vbo01.lab`` (``Empty Label``); 4443 was a bare `TypeError`."""
    with pytest.raises(ConfigError) as caught:
        make_tls_material(tmp_path / "tls", hosts=hosts)
    assert str(caught.value) == (
        f"hosts must be a collection of names or IP addresses (a tuple or list), got {hosts!r}"
    )
    assert not (tmp_path / "tls").exists()


async def test_serves_https_over_uvicorn(tmp_path: Path) -> None:
    cert_path, key_path, ca_path = make_tls_material(tmp_path)
    app = create_app(SimulatorConfig(seed=9))
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = uvicorn.Config(
            app, log_level="warning", ssl_certfile=str(cert_path), ssl_keyfile=str(key_path)
        )
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve(sockets=[sock]))
        try:
            for _ in range(500):
                if server.started or task.done():
                    break
                await asyncio.sleep(0.01)
            assert server.started
            verify = ssl.create_default_context(cafile=str(ca_path))
            async with httpx.AsyncClient(base_url=f"https://127.0.0.1:{port}", verify=verify) as client:
                headers = await bearer(client)
                response = await client.get("/V1/Organizations", headers=headers)
        finally:
            server.should_exit = True
            await asyncio.wait_for(task, 10)
    assert response.status_code == 200
    assert response.json() == app.state.simulator.organizations_wire()
    assert response.json()[0]["_links"]["self"]["href"].startswith(f"https://{HOST}/v1/")


@pytest.mark.parametrize(
    ("lifetime", "expires_in"), [(0.001, 1), (0.5, 1), (0.999, 1), (1.5, 1), (59.9, 59), (60, 60)]
)
def test_a_lifetime_under_a_second_is_served_as_one_second_not_zero(
    clock: FakeClock, lifetime: float, expires_in: int
) -> None:
    """``expires_in: 0`` says no lifetime at all (a client reads it as absent and falls back to
    the documented hour): a simulator configured for tokens living half a second served it, so a
    client believed them for an hour. Under a second is served as 1; longer ones are cut down to
    whole seconds as before (never longer than the token is accepted, but for the sub-second)."""
    simulator = Simulator(SimulatorConfig(token_lifetime=lifetime), clock=clock)
    answer = simulator.password_grant("admin", "admin")
    assert answer["expires_in"] == expires_in
    token = parse_token_response(answer, now=0.0, wall_now=datetime.now(UTC))
    assert token.expires_at == expires_in


def test_a_repository_taken_out_of_order_shows_it_on_v8_until_it_is_back(simulator: Simulator) -> None:
    repository_id = simulator.repository_ids()[0]
    simulator.set_out_of_order(repository_id.upper(), "Cannot reach the object storage")  # ids ignore case
    wire = simulator.repository_wire(repository_id, version="v8")
    assert (wire["isOutOfOrder"], wire["outOfOrderReason"]) == (True, "Cannot reach the object storage")
    assert "isOutOfOrder" not in simulator.repository_wire(repository_id, version="v7")
    simulator.set_out_of_order(repository_id, None)
    wire = simulator.repository_wire(repository_id, version="v8")
    assert (wire["isOutOfOrder"], wire["outOfOrderReason"]) == (False, None)
    with pytest.raises(SimulatedError, match="Backup repository with id 'nope' was not found") as missing:
        simulator.set_out_of_order("nope", "x")
    assert missing.value.status_code == 404


def _first(ids: list[str]) -> str:
    return ids[0]


@pytest.mark.parametrize(
    ("hook", "message"),
    [
        (lambda s: s.set_free_space(_first(s.repository_ids()), 1.5), "free_space must be an int, got 1.5"),
        (lambda s: s.set_free_space(_first(s.repository_ids()), True), "free_space must be an int, got True"),
        (lambda s: s.set_free_space(_first(s.repository_ids()), "5"), "free_space must be an int, got '5'"),
        (lambda s: s.set_free_space(_first(s.repository_ids()), -1), "free_space must be >= 0, got -1"),
        (lambda s: s.set_retries(_first(s.job_ids()), -3), "number must be >= 0, got -3"),
        (lambda s: s.set_retries(_first(s.job_ids()), 2.0), "number must be an int, got 2.0"),
        (
            lambda s: s.rename_repository(_first(s.repository_ids()), 5),
            "name must be a non-empty string, got 5",
        ),
        (
            lambda s: s.rename_repository(_first(s.repository_ids()), ""),
            "name must be a non-empty string, got ''",
        ),
        (
            lambda s: s.set_out_of_order(_first(s.repository_ids()), 5),
            "reason must be None or a string, got 5",
        ),
        (
            lambda s: s.set_proxy_status(_first(s.proxy_ids()), None),
            "status must be a non-empty string, got None",
        ),
        (
            lambda s: s.set_proxy_status(_first(s.proxy_ids()), "Online", maintenance=1),
            "maintenance must be None or a non-empty string, got 1",
        ),
        (lambda s: s.copy_job(_first(s.job_ids()), name=7), "name must be a non-empty string, got 7"),
    ],
    ids=[
        "free-space-float",
        "free-space-bool",
        "free-space-str",
        "free-space-negative",
        "retries-negative",
        "retries-float",
        "name-int",
        "name-empty",
        "reason-int",
        "status-none",
        "maintenance-int",
        "copy-name-int",
    ],
)
def test_admin_hooks_refuse_values_no_server_holds(hook: Callable[[Simulator], object], message: str) -> None:
    """The hooks check their values as `SimulatorConfig` does (a `ConfigError` naming the
    argument), and change nothing: they took a float or a bool of free bytes, negative retries,
    a numeric name or a None status and served it, or failed with a bare `TypeError` ('5')."""
    config = SimulatorConfig(organizations=1, epoch=datetime(2026, 6, 1, 12, tzinfo=UTC))
    simulator, before = Simulator(config, clock=FakeClock()), Simulator(config, clock=FakeClock())
    with pytest.raises(ConfigError) as caught:
        hook(simulator)
    assert str(caught.value) == message
    assert simulator.repositories_wire(version="v8") == before.repositories_wire(version="v8")
    assert simulator.proxies_wire(version="v8") == before.proxies_wire(version="v8")
    assert simulator.jobs_wire(version="v8") == before.jobs_wire(version="v8")


def test_admin_hooks_take_the_values_a_server_holds() -> None:
    simulator = Simulator(SimulatorConfig(organizations=1))
    repository, job, proxy = simulator.repository_ids()[0], simulator.job_ids()[0], simulator.proxy_ids()[0]
    simulator.set_free_space(repository, 0)
    simulator.rename_repository(repository, "Repo X")
    simulator.set_out_of_order(repository, "")
    simulator.set_retries(job, 0)
    simulator.set_proxy_status(proxy, "Unknown", maintenance="Enabling")
    wire = simulator.repository_wire(repository, version="v8")
    assert (wire["freeSpaceBytes"], wire["name"], wire["isOutOfOrder"]) == (0, "Repo X", True)
    assert simulator.job_wire(job, version="v8")["schedulePolicy"]["retryNumber"] == 0
    proxy_wire = simulator.proxy_wire(proxy, version="v8")
    assert (proxy_wire["status"], proxy_wire["maintenanceModeState"]) == ("Unknown", "Enabling")


# --- scheduled runs (SimulatorConfig.run_schedules) -----------------------------------------------

SCHEDULE_EPOCH = dt.datetime(2026, 7, 1, 12, 0, tzinfo=dt.UTC)


def scheduled(clock: FakeClock, *, run_schedules: bool = True) -> Simulator:
    config = SimulatorConfig(
        seed=5, organizations=3, epoch=SCHEDULE_EPOCH, session_duration=30.0, run_schedules=run_schedules
    )
    return Simulator(config, clock=clock)


def v8_jobs(sim: Simulator) -> dict[str, dict[str, Any]]:
    return {job["id"]: job for job in sim.jobs_wire(version="v8", limit=10_000)["results"]}


def sessions_of(sim: Simulator, job_id: str) -> list[dict[str, Any]]:
    return list(sim.sessions_wire(version="v8", job_id=job_id, limit=10_000)["results"])


def at(stamp: str | None) -> dt.datetime | None:
    return None if stamp is None else dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def seconds_to(when: dt.datetime) -> float:
    return (when - SCHEDULE_EPOCH).total_seconds()


def test_without_run_schedules_no_job_runs_on_its_own(clock: FakeClock) -> None:
    sim = scheduled(clock, run_schedules=False)
    before = v8_jobs(sim)
    clock.advance(3 * 86400)
    assert v8_jobs(sim) == before


def test_a_job_runs_when_its_next_run_comes_and_is_scheduled_again(clock: FakeClock) -> None:
    sim = scheduled(clock)
    jobs = v8_jobs(sim)
    job_id, job = min(
        ((i, j) for i, j in jobs.items() if j["isEnabled"] and j["nextRun"]),
        key=lambda item: item[1]["nextRun"],
    )
    due = at(job["nextRun"])
    assert due is not None
    clock.advance(seconds_to(due) - 1)
    assert v8_jobs(sim)[job_id]["lastStatus"] == job["lastStatus"]  # a second early: not yet
    clock.advance(2)
    running = v8_jobs(sim)[job_id]
    assert running["lastStatus"] == "Running"
    assert at(running["lastRun"]) == due
    (newest,) = sim.sessions_wire(version="v8", job_id=job_id, limit=1)["results"]
    assert newest["status"] == "Running"
    assert at(newest["creationTime"]) == due
    clock.advance(30)
    done = v8_jobs(sim)[job_id]
    assert done["lastStatus"] in ("Success", "Warning", "Failed")
    following = at(done["nextRun"])
    assert following is not None
    assert following > due + dt.timedelta(seconds=30)
    (newest,) = sim.sessions_wire(version="v8", job_id=job_id, limit=1)["results"]
    assert at(newest["endTime"]) == due + dt.timedelta(seconds=30)
    assert sim.stats.job_actions == {}  # no action was asked for


def test_runs_missed_while_nothing_was_asked_are_made_once_at_the_latest_time(clock: FakeClock) -> None:
    sim = scheduled(clock)
    before = v8_jobs(sim)
    counts = {job_id: len(sessions_of(sim, job_id)) for job_id in before}
    clock.advance(3 * 86400)
    now = SCHEDULE_EPOCH + dt.timedelta(days=3)
    after = v8_jobs(sim)
    ran = 0
    for job_id, job in before.items():
        sessions = sessions_of(sim, job_id)
        due = at(job["nextRun"])
        if not job["isEnabled"] or due is None or due > now:
            assert len(sessions) == counts[job_id]  # disabled, or not due yet (a weekly job)
            assert after[job_id]["lastRun"] == job["lastRun"]
            continue
        ran += 1
        assert len(sessions) == counts[job_id] + 1, job["name"]  # once, however many were missed
        last_run = at(after[job_id]["lastRun"])
        following = at(after[job_id]["nextRun"])
        assert last_run is not None
        assert following is not None
        assert due <= last_run <= now
        assert following > now  # the latest time due: the next one is still to come
        assert following - last_run <= dt.timedelta(days=7)
    assert ran >= 3


def test_a_job_running_by_hand_skips_its_scheduled_run(clock: FakeClock) -> None:
    sim = scheduled(clock)
    jobs = v8_jobs(sim)
    job_id, job = next((i, j) for i, j in jobs.items() if j["isEnabled"] and j["nextRun"])
    due = at(job["nextRun"])
    assert due is not None
    clock.advance(seconds_to(due) - 10)
    sim.job_action(job_id, "start")
    count = len(sessions_of(sim, job_id))
    clock.advance(15)  # the scheduled time passes while the run started by hand goes on
    assert len(sessions_of(sim, job_id)) == count
    clock.advance(30)
    newest = sessions_of(sim, job_id)
    assert len(newest) == count  # no run was started for the time that passed meanwhile
    assert at(newest[0]["creationTime"]) == due - dt.timedelta(seconds=10)  # the one by hand
    assert newest[0]["status"] in ("Success", "Warning", "Failed")
    assert at(v8_jobs(sim)[job_id]["nextRun"]) > due  # type: ignore[operator]


def test_run_schedules_must_be_a_boolean() -> None:
    with pytest.raises(ConfigError, match="run_schedules"):
        SimulatorConfig(run_schedules="yes")  # type: ignore[arg-type]


@given(
    kind=st.sampled_from(["Periodically", "Daily"]),
    every=st.sampled_from(sorted(PERIODS)),
    daily_type=st.sampled_from(sorted(DAILY_TYPES)),
    hour=st.integers(0, 23),
    window=st.sampled_from(WINDOWS),
    at=st.integers(1_700_000_000, 1_900_000_000),
)
def test_the_last_scheduled_run_is_the_one_stepping_through_them_finds(
    kind: str, every: str, daily_type: str, hour: int, window: str, at: int
) -> None:
    """`previous_run` finds the last start at or before a time directly (a simulator nobody
    asked anything for a month stepped through every period); it must agree with stepping
    `next_run` from a week before."""
    from vbo_async.simulator._records import Schedule

    schedule = Schedule(kind, every, daily_type, f"{hour:02}:30:00", window, 0, False, 0, 0)
    now = at * TICKS_PER_SECOND
    stepped = next_run(schedule, now - 9 * 86400 * TICKS_PER_SECOND)
    while (following := next_run(schedule, stepped)) <= now:
        stepped = following
    assert previous_run(schedule, now) == stepped
    assert previous_run(schedule, stepped) == stepped  # at a start, that start


def test_a_run_long_over_does_not_make_its_job_skip_its_turn(clock: FakeClock) -> None:
    """A run started, then nothing asked for a day: the run was still "running" when the due
    runs were started (its job skipped its turn), and nextRun was left in the past."""
    sim = scheduled(clock)
    jobs = v8_jobs(sim)
    enabled = [(i, j) for i, j in jobs.items() if j["isEnabled"] and j["nextRun"]]
    job_id, job = min(enabled, key=lambda item: item[1]["nextRun"])
    due = at(job["nextRun"])
    assert due is not None
    clock.advance(seconds_to(due) + 1)
    assert v8_jobs(sim)[job_id]["lastStatus"] == "Running"
    clock.advance(86400)
    after = v8_jobs(sim)[job_id]
    now = due + dt.timedelta(days=1, seconds=1)
    last_run, following = at(after["lastRun"]), at(after["nextRun"])
    assert last_run is not None
    assert following is not None
    assert last_run > due + dt.timedelta(hours=1)  # the latest run due, not the one a day ago
    assert following > now


def test_a_deleted_or_copied_job_with_a_run_due(clock: FakeClock) -> None:
    sim = scheduled(clock)
    jobs = v8_jobs(sim)
    enabled = sorted((j["nextRun"], i) for i, j in jobs.items() if j["isEnabled"] and j["nextRun"])
    (_, gone), (due_at, copied) = enabled[0], enabled[1]
    sim.delete_job(gone)
    copy = sim.copy_job(copied, name="Copy of a job")
    due = at(due_at)
    assert due is not None
    clock.advance(seconds_to(due) + 86400)
    after = v8_jobs(sim)  # the deleted job's turn is skipped: no KeyError
    assert gone not in after
    last_run = at(after[copy]["lastRun"])
    assert last_run is not None
    assert last_run > due  # the copy runs on its schedule too
