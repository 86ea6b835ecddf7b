"""The simulator's v1, v6, v7 and v8 APIs: shapes, quirks, auth rules and one state behind them all.

Raw HTTP through ``httpx.ASGITransport`` (not the vbo-async client), compared with the facts in
the reference notes (vb365-v6-v8.md wins over vbo-api.md) and with the simulator's own
``*_wire(version=...)`` answers.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import AsyncIterator
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from vbo_async.simulator import Faults, SimulatedError, Simulator, SimulatorConfig, create_app
from vbo_async.simulator._throttle import TokenThrottle

EPOCH = dt.datetime(2026, 7, 1, 12, 0, tzinfo=dt.UTC)
PASSWORD = "pw-Sim-S3cret!"
FORM = {"grant_type": "password", "username": "admin", "password": PASSWORD}
HOST = "vbo-sim.east.local:4443"
V6_PLUS = ("v6", "v7", "v8")
ISO_6 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


class FakeClock:
    """A hand-driven clock (token expiry, token throttle, job runs)."""

    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def config(**overrides: Any) -> SimulatorConfig:
    options: dict[str, Any] = {"seed": 13, "epoch": EPOCH, "password": PASSWORD}
    return SimulatorConfig(**{**options, **overrides})


def client_for(simulator: Simulator) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(simulator=simulator))
    return httpx.AsyncClient(transport=transport, base_url="https://testserver")


async def bearer(client: httpx.AsyncClient, version: str = "v8") -> dict[str, str]:
    response = await client.post(f"/{version}/Token", data={**FORM, "disable_antiforgery_token": "true"})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def iso(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def simulator(clock: FakeClock) -> Simulator:
    return Simulator(config(organizations=12, jobs_per_organization=(3, 4)), clock=clock)


@pytest.fixture
async def client(simulator: Simulator) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(simulator) as client:
        yield client


@pytest.fixture
async def auth(client: httpx.AsyncClient) -> dict[str, str]:
    return await bearer(client)


def idle_enabled_job(simulator: Simulator, skip: int = 0) -> str:
    jobs = [simulator.job_wire(job_id, version="v8") for job_id in simulator.job_ids()]
    idle = [job["id"] for job in jobs if job["isEnabled"] and job["lastStatus"] != "Running"]
    return idle[skip]


# -- configuration ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"api_versions": ()},
        {"api_versions": ("v5",)},
        {"api_versions": ("v8", "v8")},
        {"api_versions": "v8"},
        {"epoch": dt.datetime(2026, 7, 1)},  # naive
        {"epoch": "2026-07-01T00:00:00Z"},
        # Too late for the runs, next runs and tokens dated after it: a bare ValueError ("year
        # 10000 is out of range") from every answer.
        {"epoch": dt.datetime(9999, 12, 31, 23, 30, tzinfo=dt.UTC)},
        {"epoch": dt.datetime(9000, 1, 1, tzinfo=dt.UTC)},
    ],
)
def test_config_refuses_bad_versions_and_epochs(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        SimulatorConfig(**kwargs)


def test_config_defaults_serve_every_version_and_take_lists() -> None:
    assert SimulatorConfig().api_versions == ("v1", "v6", "v7", "v8")
    assert SimulatorConfig(api_versions=["v8", "v6"]).api_versions == ("v8", "v6")  # type: ignore[arg-type]
    assert SimulatorConfig().epoch is None
    assert Faults().token_throttle is False
    assert SimulatorConfig().token_quota == ((1, 1), (60, 5), (3600, 1500))
    with pytest.raises(ValueError, match="token_throttle"):
        Faults(token_throttle=1)  # type: ignore[arg-type]


# -- routing ------------------------------------------------------------------------------------------


async def test_unserved_versions_are_404_token_included(clock: FakeClock) -> None:
    simulator = Simulator(config(api_versions=("v8",)), clock=clock)
    async with client_for(simulator) as client:
        headers = await bearer(client, "v8")
        for path in ("/v1/Token", "/v6/Token", "/v7/token"):
            response = await client.post(path, data=FORM)
            assert response.status_code == 404, path
            assert "No HTTP resource" in response.json()["message"]
        for path in ("/v1/Jobs", "/v7/Jobs", "/v6/Organizations", "/v7/token/logout"):
            assert (await client.get(path, headers=headers)).status_code in (404, 405), path
        assert (await client.get("/v7/Jobs", headers=headers)).status_code == 404
        assert (await client.get("/v8/Jobs", headers=headers)).status_code == 200
    with pytest.raises(SimulatedError) as caught:
        simulator.jobs_wire(version="v7")
    assert caught.value.status_code == 404


async def test_only_v1_means_no_v6_plus_at_all(clock: FakeClock) -> None:
    simulator = Simulator(config(api_versions=("v1",)), clock=clock)
    async with client_for(simulator) as client:
        assert (await client.post("/v8/Token", data=FORM)).status_code == 404
        assert (await client.post("/v1/Token", data=FORM)).status_code == 200


async def test_paths_and_parameter_names_are_case_insensitive_and_unknown_ones_ignored(
    client: httpx.AsyncClient, auth: dict[str, str], simulator: Simulator
) -> None:
    job_id = simulator.job_ids()[0]
    upper = await client.get(f"/V8/JOBSESSIONS?JobId={job_id.upper()}&LIMIT=2&Offset=0&foo=bar", headers=auth)
    lower = await client.get(f"/v8/jobsessions?jobid={job_id}&limit=2", headers=auth)
    assert upper.status_code == lower.status_code == 200
    assert upper.json()["results"] == lower.json()["results"]
    assert upper.json()["limit"] == 2
    assert all(session["jobId"] == job_id for session in upper.json()["results"])
    # An unknown or meaningless parameter is ignored (TSS sends limit to non-paged v6 endpoints).
    arrays = await client.get("/v6/Jobs?limit=1000000&whatever=1", headers=auth)
    assert arrays.status_code == 200
    assert arrays.json() == simulator.jobs_wire(version="v6")


# -- collections and paging ---------------------------------------------------------------------------


@pytest.mark.parametrize("collection", ["Organizations", "Jobs", "BackupRepositories", "Proxies"])
async def test_main_collections_are_arrays_before_v8_and_pages_on_v8(
    client: httpx.AsyncClient, auth: dict[str, str], simulator: Simulator, collection: str
) -> None:
    wire = {
        "Organizations": simulator.organizations_wire,
        "Jobs": simulator.jobs_wire,
        "BackupRepositories": simulator.repositories_wire,
        "Proxies": simulator.proxies_wire,
    }[collection]
    bodies = {}
    for version in ("v1", "v6", "v7", "v8"):
        response = await client.get(f"/{version}/{collection}", headers=auth)
        assert response.status_code == 200
        bodies[version] = response.json()
        assert bodies[version] == wire(version=version)
    for version in ("v1", "v6", "v7"):
        assert isinstance(bodies[version], list)
    page = bodies["v8"]
    assert set(page) == {"offset", "limit", "results", "_links"}  # no totalCount, no setId
    assert page["offset"] == 0
    assert page["limit"] == 30
    assert [item["id"] for item in page["results"]] == [item["id"] for item in bodies["v7"]][:30]
    assert page["_links"]["self"]["href"] == f"/v8/{collection}?offset=0&limit=30"


async def test_v8_pages_default_to_30_follow_next_and_stop(
    client: httpx.AsyncClient, auth: dict[str, str], simulator: Simulator
) -> None:
    total = len(simulator.job_ids())
    assert total > 30
    url: str | None = "/v8/Jobs"
    pages = []
    while url is not None:
        response = await client.get(url, headers=auth)
        assert response.status_code == 200
        pages.append(response.json())
        next_link = pages[-1]["_links"].get("next")
        url = None if next_link is None else next_link["href"]
        assert url is None or url.startswith("/v8/Jobs?")
    assert [page["offset"] for page in pages] == list(range(0, total, 30))
    assert all(page["limit"] == 30 for page in pages)
    assert "next" not in pages[-1]["_links"]
    assert "prev" not in pages[1]["_links"]
    assert "first" not in pages[1]["_links"]
    assert [job["id"] for page in pages for job in page["results"]] == simulator.job_ids()


async def test_v8_limit_10000_is_the_maximum(
    client: httpx.AsyncClient, auth: dict[str, str], simulator: Simulator
) -> None:
    everything = await client.get("/v8/Jobs?limit=10000", headers=auth)
    assert everything.status_code == 200
    assert len(everything.json()["results"]) == len(simulator.job_ids())
    assert "next" not in everything.json()["_links"]
    for query in ("limit=10001", "limit=0", "offset=-1", "limit=abc", "LIMIT=20000"):
        response = await client.get(f"/v8/Jobs?{query}", headers=auth)
        assert response.status_code == 400, query
        assert set(response.json()) == {"message"}
    with pytest.raises(SimulatedError) as caught:
        simulator.jobs_wire(version="v8", limit=10_001)
    assert caught.value.status_code == 400


async def test_hrefs_are_absolute_on_v1_and_server_relative_on_v6_plus(
    client: httpx.AsyncClient, auth: dict[str, str], simulator: Simulator
) -> None:
    job_id = simulator.job_ids()[0]
    v1 = (await client.get(f"/v1/Jobs/{job_id}", headers=auth)).json()
    assert v1["_links"]["self"]["href"] == f"https://{HOST}/v1/Jobs/{job_id}"
    for version in V6_PLUS:
        job = (await client.get(f"/{version}/Jobs/{job_id}", headers=auth)).json()
        assert job["_links"]["self"]["href"] == f"/{version}/Jobs/{job_id}"
        for link in job["_links"].values():
            assert link["href"].startswith(f"/{version}/")
        page = (await client.get(f"/{version}/JobSessions?limit=1", headers=auth)).json()
        assert page["_links"]["self"]["href"].startswith(f"/{version}/JobSessions?")
        assert page["_links"]["next"]["href"].startswith("/v")
        for session in page["results"]:
            assert all(link["href"].startswith(f"/{version}/") for link in session["_links"].values())


async def test_organization_jobs_are_arrays_on_v6_v7_and_removed_on_v8(
    client: httpx.AsyncClient, auth: dict[str, str], simulator: Simulator
) -> None:
    org_id = simulator.organization_ids()[0]
    for version in ("v6", "v7"):
        response = await client.get(f"/{version}/Organizations/{org_id}/Jobs", headers=auth)
        assert response.status_code == 200
        assert response.json() == simulator.jobs_wire(org_id, version=version)
        assert {job["id"] for job in response.json()} == {
            job["id"] for job in simulator.jobs_wire(org_id, version="v1")
        }
    removed = await client.get(f"/v8/Organizations/{org_id}/Jobs", headers=auth)
    assert removed.status_code == 404
    # ... and the v8 organization's jobs link leads to the filtered job list instead.
    org = (await client.get(f"/v8/Organizations/{org_id}", headers=auth)).json()
    assert org["_links"]["jobs"]["href"] == f"/v8/Jobs?organizationId={org_id}"
    filtered = (await client.get(org["_links"]["jobs"]["href"], headers=auth)).json()
    assert [job["id"] for job in filtered["results"]] == [job["id"] for job in simulator.jobs_wire(org_id)]
    assert all(job["organizationId"] == org_id for job in filtered["results"])
    assert parse_qs(urlsplit(filtered["_links"]["self"]["href"]).query)["organizationId"] == [org_id]


async def test_v8_jobs_filter_by_repository(
    client: httpx.AsyncClient, auth: dict[str, str], simulator: Simulator
) -> None:
    repository_id = simulator.repository_ids()[1]
    page = (await client.get(f"/v8/Jobs?repositoryId={repository_id}&limit=10000", headers=auth)).json()
    expected = [
        job["id"] for job in simulator.jobs_wire(version="v7") if job["repositoryId"] == repository_id
    ]
    assert [job["id"] for job in page["results"]] == expected
    assert expected
    bad = await client.get("/v8/Jobs?organizationId=not-a-guid", headers=auth)
    assert bad.status_code == 400


async def test_job_sessions_link_is_dead_on_v7_and_v8_but_served_on_v6(
    client: httpx.AsyncClient, auth: dict[str, str], simulator: Simulator
) -> None:
    job_id = next(j for j in simulator.job_ids() if simulator.job_wire(j)["lastRun"] is not None)
    for version in V6_PLUS:
        job = (await client.get(f"/{version}/Jobs/{job_id}", headers=auth)).json()
        href = job["_links"]["jobsessions"]["href"]
        assert href == f"/{version}/Jobs/{job_id}/jobsessions"
        response = await client.get(href, headers=auth)
        if version == "v6":
            assert response.status_code == 200
            page = response.json()
            assert page == simulator.job_sessions_wire(job_id, version="v6")
            assert [s["id"] for s in page["results"]] == [
                s["id"] for s in simulator.job_sessions_wire(job_id)
            ][:30]
        else:
            assert response.status_code == 404
            with pytest.raises(SimulatedError):
                simulator.job_sessions_wire(job_id, version=version)


async def test_v8_session_pages_link_next_to_v7_which_serves_it(
    client: httpx.AsyncClient, auth: dict[str, str], simulator: Simulator
) -> None:
    first = (await client.get("/v8/JobSessions?limit=5&status=Failed", headers=auth)).json()
    assert first["_links"]["self"]["href"] == "/v8/JobSessions?status=Failed&offset=0&limit=5"
    next_href = first["_links"]["next"]["href"]
    assert next_href == "/v7/JobSessions?status=Failed&offset=5&limit=5"
    following = await client.get(next_href, headers=auth)
    assert following.status_code == 200
    page = following.json()
    assert page["offset"] == 5
    assert page["limit"] == 5
    assert all("jobId" not in session for session in page["results"])  # v7's shape
    assert all(session["_links"]["self"]["href"].startswith("/v7/") for session in page["results"])
    # v7 ignores the v8-only status filter: the quirk hands the client unfiltered sessions.
    assert page == simulator.sessions_wire(version="v7", status="Failed", offset=5, limit=5)
    assert page["results"] == simulator.sessions_wire(version="v7", offset=5, limit=5)["results"]
    assert {session["status"] for session in page["results"]} != {"Failed"}


async def test_without_v7_the_v8_next_link_stays_on_v8(clock: FakeClock) -> None:
    simulator = Simulator(config(api_versions=("v8",)), clock=clock)
    async with client_for(simulator) as client:
        page = (await client.get("/v8/JobSessions?limit=2", headers=await bearer(client))).json()
    assert page["_links"]["next"]["href"] == "/v8/JobSessions?offset=2&limit=2"


async def test_job_sessions_are_newest_first_and_filtered_per_version(
    client: httpx.AsyncClient, auth: dict[str, str], simulator: Simulator
) -> None:
    job_id = next(j for j in simulator.job_ids() if len(simulator.job_sessions_wire(j)) > 2)
    everything = simulator.sessions_wire(version="v8", limit=10_000)["results"]
    created = [iso(s["creationTime"]) for s in everything]
    assert created == sorted(created, reverse=True)
    mine = [s["id"] for s in everything if s["jobId"] == job_id]

    v6 = (await client.get(f"/v6/JobSessions?jobId={job_id}&limit=10000", headers=auth)).json()
    assert len(v6["results"]) == len(everything)  # v6 ignores jobId
    v7 = (await client.get(f"/v7/JobSessions?jobId={job_id}&limit=10000", headers=auth)).json()
    assert [s["id"] for s in v7["results"]] == mine

    succeeded = (await client.get("/v8/JobSessions?status=Succeeded&limit=10000", headers=auth)).json()
    expected = [s["id"] for s in everything if s["status"] == "Success"]
    assert [s["id"] for s in succeeded["results"]] == expected
    assert expected
    refused = await client.get("/v8/JobSessions?status=Success", headers=auth)
    assert refused.status_code == 400
    assert "Succeeded" in refused.json()["message"]
    v7_status = (await client.get("/v7/JobSessions?status=Failed&limit=10000", headers=auth)).json()
    assert len(v7_status["results"]) == len(everything)  # v7 has no status filter

    copies = (await client.get("/v6/JobSessions?jobType=Copy", headers=auth)).json()
    assert copies["results"] == []
    assert (await client.get("/v6/JobSessions?jobType=Nope", headers=auth)).status_code == 400


async def test_end_time_bounds_use_end_or_creation_while_running(
    client: httpx.AsyncClient, auth: dict[str, str], simulator: Simulator, clock: FakeClock
) -> None:
    job_id = idle_enabled_job(simulator)
    started = await client.post(f"/v8/Jobs/{job_id}/start", json={}, headers=auth)
    running = started.json()
    assert running["endTime"] is None
    bound = running["creationTime"]
    after = (await client.get(f"/v7/JobSessions?endTimeLowerBound={bound}&limit=10000", headers=auth)).json()
    assert running["id"] in [s["id"] for s in after["results"]]
    for session in after["results"]:
        assert iso(session["endTime"] or session["creationTime"]) >= iso(bound)
    everything = simulator.sessions_wire(version="v7", limit=10_000)["results"]
    later = [s for s in everything if iso(s["endTime"] or s["creationTime"]) >= iso(bound)]
    assert len(after["results"]) == len(later)
    upper = (await client.get(f"/v8/JobSessions?endTimeUpperBound={bound}&limit=10000", headers=auth)).json()
    assert running["id"] in [s["id"] for s in upper["results"]]
    assert all(iso(s["endTime"] or s["creationTime"]) <= iso(bound) for s in upper["results"])
    assert len(after["results"]) + len(upper["results"]) == len(everything) + 1  # the running one is in both
    six = (await client.get(f"/v6/JobSessions?endTimeUpperBound={bound}&limit=10000", headers=auth)).json()
    assert len(six["results"]) == len(everything)  # v6 has no upper bound
    assert (await client.get("/v7/JobSessions?endTimeLowerBound=yesterday", headers=auth)).status_code == 400


async def test_selected_and_excluded_items_are_user_rows(
    client: httpx.AsyncClient, auth: dict[str, str], simulator: Simulator
) -> None:
    selected_job = next(j for j in simulator.job_ids() if simulator.selected_mailboxes_wire(j))
    mailboxes = simulator.selected_mailboxes_wire(selected_job)
    for version in V6_PLUS:
        response = await client.get(f"/{version}/Jobs/{selected_job}/SelectedItems?limit=10000", headers=auth)
        body = response.json()
        assert body == simulator.selected_items_wire(selected_job, version=version, limit=10_000)
        rows = body["results"] if version == "v8" else body
        assert isinstance(body, dict if version == "v8" else list)
        assert [row["user"]["id"] for row in rows] == [mailbox["id"] for mailbox in mailboxes]
        for row, mailbox in zip(rows, mailboxes, strict=True):
            assert row["type"] == "User"
            assert row["mailbox"] is True
            assert row["user"]["name"] == mailbox["email"]
            assert row["user"]["displayName"] == mailbox["name"]
            assert len(row["id"]) == 72
    whole = next(
        j
        for j in simulator.job_ids()
        if simulator.job_wire(j, version="v8")["backupType"] == "EntireOrganization"
        and simulator.excluded_items_wire(j, version="v7")
    )
    assert simulator.selected_items_wire(whole, version="v7") == []
    excluded = (await client.get(f"/v8/Jobs/{whole}/ExcludedItems", headers=auth)).json()
    assert 1 <= len(excluded["results"]) <= 3
    assert excluded["_links"]["self"]["href"] == f"/v8/Jobs/{whole}/ExcludedItems?offset=0&limit=30"


async def test_used_repositories_link_to_live_repositories(
    client: httpx.AsyncClient, auth: dict[str, str], simulator: Simulator
) -> None:
    org_id = simulator.organization_ids()[0]
    jobs = simulator.jobs_wire(org_id, version="v7")
    for version in V6_PLUS:
        org = (await client.get(f"/{version}/Organizations/{org_id}", headers=auth)).json()
        assert set(org["_links"]) == {
            "self", "jobs", "groups", "users", "sites", "teams", "usedRepositories", "rbacRoles"
        }  # fmt: skip
        page = (await client.get(org["_links"]["usedRepositories"]["href"], headers=auth)).json()
        assert page == simulator.used_repositories_wire(org_id, version=version)
        assert set(page) == {"offset", "limit", "results", "_links"}
        linked = []
        for row in page["results"]:
            repository = (await client.get(row["_links"]["backupRepository"]["href"], headers=auth)).json()
            linked.append(repository["id"])
            assert isinstance(row["usedSpaceBytes"], int)
            if version == "v8":
                assert row["repositoryId"] == repository["id"]
                assert isinstance(row["protectedObjectsCount"], int)
            else:
                assert "repositoryId" not in row
        assert set(linked) == {job["repositoryId"] for job in jobs}


# -- resources ------------------------------------------------------------------------------------------


async def test_job_fields_per_version(
    client: httpx.AsyncClient, auth: dict[str, str], simulator: Simulator
) -> None:
    jobs = {version: simulator.jobs_wire(version=version) for version in ("v6", "v7")}
    jobs["v8"] = simulator.jobs_wire(version="v8", limit=10_000)["results"]
    for version, listed in jobs.items():
        for job in listed:
            assert "selectedItems" not in job
            assert "runNow" not in job
            assert "excludedItems" not in job
            assert ("lastBackup" in job) == (version != "v6")
            assert ("organizationId" in job) == (version == "v8")
            assert ("eTag" in job) == (version == "v8")
            assert isinstance(job["isEnabled"], bool)
            links = set(job["_links"]) - {"copyJob"}
            assert links == {
                "self",
                "organization",
                "backupRepository",
                "jobsessions",
                "selectedItems",
                "excludedItems",
            }
            policy = job["schedulePolicy"]
            assert isinstance(policy["scheduleEnabled"], bool)
            assert isinstance(policy["backupWindowEnabled"], bool)
            assert isinstance(policy["retryEnabled"], bool)
            assert len(policy["backupWindowSettings"]["backupWindow"]) == 168
            assert ("periodicallyWindowEnabled" in policy) == (version != "v6")
    assert any("copyJob" in job["_links"] for job in jobs["v8"])
    assert any("copyJob" not in job["_links"] for job in jobs["v8"])
    # v6 leaves null properties out; v7 writes them.
    never_run = next(job for job in jobs["v7"] if job["lastRun"] is None)
    assert "lastRun" not in next(job for job in jobs["v6"] if job["id"] == never_run["id"])
    for job in jobs["v8"]:
        sessions = simulator.sessions_wire(version="v8", job_id=job["id"], limit=10_000)["results"]
        successes = [s["endTime"] for s in sessions if s["status"] == "Success"]
        assert job["lastBackup"] == (successes[0] if successes else None)
        if sessions:
            assert job["lastRun"] == sessions[0]["creationTime"]
    assert any(job["lastBackup"] and job["lastStatus"] != "Success" for job in jobs["v8"])


async def test_session_fields_per_version_and_retries(simulator: Simulator) -> None:
    keys_v6 = {
        "id",
        "details",
        "creationTime",
        "endTime",
        "retryCount",
        "progress",
        "status",
        "statistics",
        "_links",
    }
    keys_v7 = keys_v6 | {"repositoryId", "mainSessionId", "jobWillBeRetried", "jobType"}
    keys_v8 = keys_v7 | {"jobId", "jobSessionConfigType", "eTag", "proxyId", "proxyPoolId"}
    pages = {
        version: simulator.sessions_wire(version=version, limit=10_000)["results"] for version in V6_PLUS
    }
    for version, keys in (("v6", keys_v6), ("v7", keys_v7), ("v8", keys_v8)):
        for session in pages[version]:
            assert set(session) == keys
            assert set(session["_links"]) == {"self", "log", "job"}
            stats = session["statistics"]
            assert all(isinstance(stats[name], int) for name in stats if name != "bottleneck")
            assert ISO_6.match(session["creationTime"])
    v1 = simulator.sessions_wire()[0]["statistics"]
    assert isinstance(v1["processingRate"], str)
    assert v1["processingRate"].endswith("items/s)")
    by_id = {session["id"]: session for session in pages["v8"]}
    retries = [s for s in pages["v8"] if s["retryCount"] > 0]
    assert retries
    for retry in retries:
        main = by_id[retry["mainSessionId"]]
        assert main["retryCount"] == 0
        assert main["status"] == "Failed"
        assert main["jobWillBeRetried"] is True
        assert main["jobId"] == retry["jobId"]
        assert iso(retry["creationTime"]) > iso(main["endTime"])
    assert all(s["mainSessionId"] == s["id"] for s in pages["v8"] if s["retryCount"] == 0)
    assert {s["jobSessionConfigType"] for s in pages["v8"]} == {"Full", "Incremental"}


async def test_repositories_and_a_proxy_pool_per_version(
    client: httpx.AsyncClient, auth: dict[str, str], simulator: Simulator
) -> None:
    pooled_id = simulator.repository_ids()[-1]
    v8 = (await client.get(f"/v8/BackupRepositories/{pooled_id}", headers=auth)).json()
    assert v8["proxyPoolId"] is not None
    assert v8["proxyId"] is None
    assert set(v8["_links"]) == {"self"}
    others = simulator.repositories_wire(version="v8")["results"][:-1]
    assert all(r["proxyPoolId"] is None and set(r["_links"]) == {"self", "proxy"} for r in others)
    for version in ("v1", "v6", "v7"):
        older = (await client.get(f"/{version}/BackupRepositories/{pooled_id}", headers=auth)).json()
        assert "proxyPoolId" not in older
        proxy = (await client.get(urlsplit(older["_links"]["proxy"]["href"]).path, headers=auth)).json()
        assert proxy["id"] == older["proxyId"]
    v6 = simulator.repository_wire(pooled_id, version="v6")
    assert isinstance(v6["capacityBytes"], int)
    assert "capacity" not in v6
    assert v6["retentionType"] in ("ItemLevel", "SnapshotBased")
    pool = (await client.get(f"/v8/BackupRepositories?proxyPoolId={v8['proxyPoolId']}", headers=auth)).json()
    assert [r["id"] for r in pool["results"]] == [pooled_id]


async def test_proxy_fields_and_extended_view(
    client: httpx.AsyncClient, auth: dict[str, str], simulator: Simulator
) -> None:
    proxy_id = simulator.proxy_ids()[0]
    v6 = (await client.get(f"/v6/Proxies/{proxy_id}", headers=auth)).json()
    assert isinstance(v6["threadsNumber"], int)
    assert "fqdn" not in v6
    v7 = (await client.get(f"/v7/Proxies/{proxy_id}", headers=auth)).json()
    assert "threadsNumber" not in v7
    assert "throttlingUnit" not in v7
    assert v7["fqdn"] == v7["hostName"]
    v7_full = (await client.get(f"/v7/Proxies/{proxy_id}?extendedView=true", headers=auth)).json()
    assert v7_full["threadsNumber"] == v6["threadsNumber"]
    v8 = (await client.get(f"/v8/Proxies/{proxy_id}", headers=auth)).json()
    assert "threadsNumber" not in v8
    assert isinstance(v8["cpuUsagePercent"], float)
    assert v8["maintenanceModeState"] in ("Disabled", "Enabling", "Enabled")
    assert v8["version"] == "8.5.0.1014"
    assert set(v8["_links"]) == {"self", "repositories"}
    own = (await client.get(v8["_links"]["repositories"]["href"], headers=auth)).json()
    assert own["results"]
    assert all(repository["proxyId"] == proxy_id for repository in own["results"])


async def test_organization_extended_view_defaults(
    client: httpx.AsyncClient, auth: dict[str, str], simulator: Simulator
) -> None:
    backup_fields = {"isBackedup", "firstBackuptime", "lastBackuptime"}
    org_id = next(
        o for o in simulator.organization_ids() if simulator.organization_wire(o)["isBackedup"] == "true"
    )
    for version, shown in (("v6", True), ("v7", False), ("v8", False)):
        org = (await client.get(f"/{version}/Organizations/{org_id}", headers=auth)).json()
        assert (backup_fields <= set(org)) == shown, version
        assert ("description" in org) == (version != "v6")
        assert ("msid" in org) == (version == "v8")
        forced = (
            await client.get(f"/{version}/Organizations/{org_id}?extendedView=TRUE", headers=auth)
        ).json()
        assert forced["isBackedup"] is True
        hidden = (
            await client.get(f"/{version}/Organizations/{org_id}?extendedView=false", headers=auth)
        ).json()
        assert not backup_fields & set(hidden)
    assert (
        await client.get(f"/v8/Organizations/{org_id}?extendedView=maybe", headers=auth)
    ).status_code == 400


async def test_v8_organizations_filter_by_msid_and_backed_up_organization_id(
    client: httpx.AsyncClient, auth: dict[str, str], simulator: Simulator
) -> None:
    """v8 declares ``msid`` (a GUID) and ``backedUpOrganizationId`` filters on ``/Organizations``;
    v6/v7 have neither (ignored there, as every unknown parameter)."""
    wanted = simulator.organization_wire(simulator.organization_ids()[3], version="v8")
    for name in ("msid", "backedUpOrganizationId"):
        for value in (wanted[name], wanted[name].upper()):
            page = (await client.get(f"/v8/Organizations?{name}={value}", headers=auth)).json()
            assert [org["id"] for org in page["results"]] == [wanted["id"]], (name, value)
            assert parse_qs(urlsplit(page["_links"]["self"]["href"]).query)[name] == [value]
    unknown = "00000000-0000-0000-0000-000000000001"
    page = (await client.get(f"/v8/Organizations?msid={unknown}", headers=auth)).json()
    assert page["results"] == []
    assert (await client.get("/v8/Organizations?msid=not-a-guid", headers=auth)).status_code == 400
    everyone = len(simulator.organization_ids())
    for version in ("v6", "v7"):
        listed = (await client.get(f"/{version}/Organizations?msid={wanted['msid']}", headers=auth)).json()
        assert len(listed) == everyone


@pytest.mark.parametrize("version", V6_PLUS)
async def test_directory_listings_apply_the_declared_filters(
    client: httpx.AsyncClient, simulator: Simulator, version: str
) -> None:
    """An organization's ``Users``, ``Groups``, ``Sites`` and ``Teams`` take the filters the
    vendor's OpenAPI declares (``userName``, ``displayName``, ``groupName``, ``locationFilter``,
    ``parentId``, ``setId``, v7+ ``dataSource`` and the sites' ``filter``...): a name filter keeps
    the items whose name holds it (any case), every simulated item is a cloud one, a bad value is
    the vendor's 400 ``{"message": ...}``, and the page's links carry the filters."""
    auth = await bearer(client, version)
    org_id = simulator.organization_ids()[0]
    base = f"/{version}/Organizations/{org_id}"

    async def listed(path: str) -> list[dict[str, Any]]:
        response = await client.get(f"{base}/{path}", headers=auth)
        assert response.status_code == 200, (path, response.text)
        results: list[dict[str, Any]] = response.json()["results"]
        return results

    users = await listed("Users?limit=10000")
    assert len(users) >= 2
    one = users[1]
    by_name = await listed(f"Users?limit=10000&userName={one['name'][:-2].upper()}")
    assert one in by_name
    assert all(one["name"][:-2].lower() in user["name"].lower() for user in by_name)
    assert (
        await listed(f"Users?displayName={one['displayName']}")
        == [user for user in users if one["displayName"].lower() in user["displayName"].lower()][:30]
    )
    assert await listed("Users?locationFilter=OnPremises") == []
    assert await listed("Users?locationFilter=cloudorhybrid&limit=10000") == users
    groups = await listed("Groups")
    assert await listed(f"Groups?groupName={groups[0]['name']}") == [groups[0]]
    assert await listed("Groups?groupName=no-such-group") == []
    sites = await listed("Sites")
    assert await listed(f"Sites?parentId={sites[0]['id']}") == []
    teams = await listed("Teams")
    assert await listed(f"Teams?displayName={teams[-1]['displayName']}") == [teams[-1]]
    assert await listed(f"Teams?setId={uuid.uuid4()}") == teams
    page = (await client.get(f"{base}/Users?limit=1&displayName=a", headers=auth)).json()
    for relation in page["_links"]:
        assert parse_qs(urlsplit(page["_links"][relation]["href"]).query)["displayName"] == ["a"]
    bad = [
        "Users?locationFilter=Everywhere",
        "Sites?locationFilter=Hybrid",
        "Teams?setId=not-a-guid",
        "Sites?includePersonalSites=maybe",
    ]
    if version != "v6":
        bad.append("Groups?dataSource=Somewhere")
        assert await listed(f"Sites?filter={sites[0]['title'].upper()}") == [sites[0]]
    if version == "v8":
        bad.append("Users?detectedSkuType=Business")
        assert await listed("Users?detectedSkuType=Education") == []
    for path in bad:
        response = await client.get(f"{base}/{path}", headers=auth)
        assert response.status_code == 400, path
        assert set(response.json()) == {"message"}
        assert "not valid" in response.json()["message"]


async def test_service_instance_license_and_health(
    client: httpx.AsyncClient, auth: dict[str, str], simulator: Simulator, clock: FakeClock
) -> None:
    for version in V6_PLUS:
        instance = (await client.get(f"/{version}/ServiceInstance", headers=auth)).json()
        assert instance == {"installationId": instance["installationId"], "version": "8.5.0.1014"}
        anonymous = await client.get(f"/{version}/ServiceInstance")
        assert anonymous.status_code == 401
        license_ = (await client.get(f"/{version}/License", headers=auth)).json()
        assert license_ == simulator.license_wire(version=version)
        assert ("expirationDate" in license_) == (version == "v6")
        assert ("contactPerson" in license_) == (version == "v6")
        assert ("licenseExpires" in license_) == (version != "v6")
        assert 0 < license_["usedNumber"] <= license_["totalNumber"]
    health = await client.get("/v8/Health")  # anonymous
    assert health.status_code == 200
    assert health.json()["status"] == "Healthy"
    assert set(health.json()["entries"]) == {"configurationDb", "nats"}
    assert (await client.get("/v7/Health", headers=auth)).status_code == 404
    older = Simulator(config(api_versions=("v6", "v7")), clock=clock)
    assert older.service_instance_wire(version="v6")["version"] == "7.0.0.2911"


# -- actions and one state -------------------------------------------------------------------------------


@pytest.mark.parametrize("version", V6_PLUS)
async def test_start_answers_204_before_v8_and_the_new_session_on_v8(
    client: httpx.AsyncClient, auth: dict[str, str], simulator: Simulator, version: str
) -> None:
    job_id = idle_enabled_job(simulator)
    before = len(simulator.sessions_wire(version="v7", job_id=job_id, limit=10_000)["results"])
    response = await client.post(f"/{version}/Jobs/{job_id}/start", json={"full": False}, headers=auth)
    newest = simulator.sessions_wire(version="v8", job_id=job_id, limit=10_000)["results"]
    assert len(newest) == before + 1
    assert newest[0]["status"] == "Running"
    if version == "v8":
        assert response.status_code == 200
        assert response.json() == newest[0]
        assert response.json()["jobId"] == job_id
        assert response.json()["jobSessionConfigType"] == "Incremental"
    else:
        assert response.status_code == 204
        assert response.content == b""
    # The same state through every version: v1 sees the run that v6/v7/v8 started.
    assert simulator.job_wire(job_id)["lastStatus"] == "Running"
    v1 = (await client.get(f"/v1/Jobs/{job_id}", headers=auth)).json()
    assert v1["lastStatus"] == "Running"
    assert (await client.get(f"/v1/JobSessions/{newest[0]['id']}", headers=auth)).json()[
        "status"
    ] == "Running"
    again = await client.post(f"/{version}/Jobs/{job_id}/start", json={}, headers=auth)
    assert again.status_code == 400
    assert "already running" in again.json()["message"]


async def test_stop_enable_disable_are_204_everywhere_and_shared(
    client: httpx.AsyncClient, auth: dict[str, str], simulator: Simulator, clock: FakeClock
) -> None:
    job_id = idle_enabled_job(simulator)
    full = await client.post(f"/v8/Jobs/{job_id}/start", json={"full": True}, headers=auth)
    assert full.json()["jobSessionConfigType"] == "Full"
    etag = simulator.job_wire(job_id, version="v8")["eTag"]
    stopped = await client.post(f"/v7/Jobs/{job_id}/stop", headers=auth)
    assert stopped.status_code == 204
    assert simulator.job_wire(job_id, version="v8")["eTag"] > etag
    assert (await client.get(f"/v1/Jobs/{job_id}", headers=auth)).json()["lastStatus"] == "Stopped"
    assert (await client.get(f"/v6/JobSessions/{full.json()['id']}", headers=auth)).json()[
        "status"
    ] == "Stopped"
    assert (await client.post(f"/v8/Jobs/{job_id}/stop", headers=auth)).status_code == 400
    assert (await client.post(f"/v6/Jobs/{job_id}/disable", headers=auth)).status_code == 204
    assert (await client.get(f"/v8/Jobs/{job_id}", headers=auth)).json()["isEnabled"] is False
    refused = await client.post(f"/v8/Jobs/{job_id}/start", json={}, headers=auth)
    assert refused.status_code == 400
    assert "disabled" in refused.json()["message"]
    assert (await client.post(f"/v8/Jobs/{job_id}/enable", headers=auth)).status_code == 204
    assert (await client.get(f"/v1/Jobs/{job_id}", headers=auth)).json()["isEnabled"] == "true"
    # A run started on v1 finishes on the clock and v8 shows the outcome.
    assert (
        await client.post(f"/v1/Jobs/{job_id}/Action", json={"start": None}, headers=auth)
    ).status_code == 200
    clock.advance(simulator.config.session_duration)
    job = (await client.get(f"/v8/Jobs/{job_id}", headers=auth)).json()
    assert job["lastStatus"] in ("Success", "Warning", "Failed")
    assert simulator.stats.job_actions[(job_id, "start")] == 2


@pytest.mark.parametrize("content", [b"", b"not json", b"[]", b'{"full": "yes"}'])
async def test_bad_start_bodies_are_400(
    client: httpx.AsyncClient, auth: dict[str, str], simulator: Simulator, content: bytes
) -> None:
    job_id = idle_enabled_job(simulator)
    headers = {**auth, "Content-Type": "application/json"}
    response = await client.post(f"/v8/Jobs/{job_id}/start", content=content, headers=headers)
    assert response.status_code == 400
    assert response.json()["message"]
    assert not simulator.stats.job_actions


# -- authentication ---------------------------------------------------------------------------------------


async def test_one_token_store_for_every_version(client: httpx.AsyncClient, simulator: Simulator) -> None:
    from_v8 = await bearer(client, "v8")
    from_v7 = await bearer(client, "v7")
    assert (await client.get("/v7/Jobs", headers=from_v8)).status_code == 200
    assert (await client.get("/v8/Jobs", headers=from_v7)).status_code == 200
    assert (await client.get("/v1/Jobs", headers=from_v8)).status_code == 200
    assert simulator.stats.token_requests_by_version == {("v8", "password"): 1, ("v7", "password"): 1}


async def test_token_answers_per_version(client: httpx.AsyncClient, clock: FakeClock) -> None:
    clock.advance(90)
    v6 = (await client.post("/v6/Token", data=FORM)).json()
    assert v6["userName"] == "admin"
    assert parsedate_to_datetime(v6[".issued"]) == EPOCH + dt.timedelta(seconds=90)
    assert v6[".expires"].endswith(" GMT")
    v8 = (await client.post("/v8/token", json={**FORM, "disable_antiforgery_token": True})).json()
    assert iso(v8[".issued"]) == EPOCH + dt.timedelta(seconds=90)
    assert iso(v8[".expires"]) - iso(v8[".issued"]) == dt.timedelta(seconds=v8["expires_in"])


@pytest.mark.parametrize("version", V6_PLUS)
async def test_refresh_needs_the_antiforgery_flag_from_v7_on(
    client: httpx.AsyncClient, simulator: Simulator, version: str
) -> None:
    plain = await client.post(f"/{version}/Token", data=FORM)  # the password grant works either way
    assert plain.status_code == 200
    refresh = {"grant_type": "refresh_token", "refresh_token": plain.json()["refresh_token"]}
    without = await client.post(f"/{version}/Token", data=refresh)
    if version == "v6":
        assert without.status_code == 200
        return
    assert without.status_code == 400
    assert "antiforgery" in without.json()["error_description"]
    flagged = await client.post(f"/{version}/Token", data={**refresh, "disable_antiforgery_token": "True"})
    assert flagged.status_code == 200  # the refused attempt did not use the refresh token up
    log = simulator.stats.token_log
    assert [(entry.grant_type, entry.status) for entry in log] == [
        ("password", 200),
        ("refresh_token", 400),
        ("refresh_token", 200),
    ]
    assert log[1].disable_antiforgery_token is None
    assert log[2].disable_antiforgery_token == "True"
    assert log[2].form_keys == ("disable_antiforgery_token", "grant_type", "refresh_token")
    assert all(entry.version == version for entry in log)
    assert PASSWORD not in repr(simulator.stats)
    assert plain.json()["refresh_token"] not in repr(simulator.stats)


@pytest.mark.parametrize(("version", "status"), [("v6", 404), ("v7", 200), ("v8", 204)])
async def test_logout_codes_and_revocation(
    client: httpx.AsyncClient, simulator: Simulator, version: str, status: int
) -> None:
    token = (await client.post(f"/{version}/Token", data=FORM)).json()
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    other = await bearer(client, "v8")
    response = await client.post(f"/{version}/token/logout", headers=headers)
    assert response.status_code == status
    assert response.content == b"" or status == 404
    if status == 404:
        assert (await client.get(f"/{version}/Jobs", headers=headers)).status_code == 200
        return
    assert simulator.stats.logouts == {version: 1}
    assert (await client.get("/v8/Jobs", headers=headers)).status_code == 401
    refresh = {"grant_type": "refresh_token", "refresh_token": token["refresh_token"]}
    again = await client.post(f"/{version}/Token", data={**refresh, "disable_antiforgery_token": "true"})
    assert again.status_code == 400
    assert (await client.get("/v8/Jobs", headers=other)).status_code == 200  # only that token
    assert (await client.post(f"/{version}/token/logout")).status_code == 401


async def test_refused_bearers_get_an_empty_401_on_v6_plus(
    client: httpx.AsyncClient, simulator: Simulator
) -> None:
    for version in V6_PLUS:
        response = await client.get(f"/{version}/Jobs", headers={"Authorization": "Bearer nonsense"})
        assert response.status_code == 401
        assert response.content == b""
        assert response.headers["www-authenticate"] == "Bearer"
    v1 = await client.get("/v1/Jobs")
    assert v1.status_code == 401
    assert v1.json() == {"message": "Authorization has been denied for this request."}
    assert simulator.stats.unauthorized == 4


async def test_token_throttle_answers_429_within_a_second(clock: FakeClock) -> None:
    simulator = Simulator(config(faults=Faults(token_throttle=True)), clock=clock)
    async with client_for(simulator) as client:
        assert (await client.post("/v8/Token", data=FORM)).status_code == 200
        clock.advance(0.5)
        throttled = await client.post("/v7/Token", data=FORM)
        assert throttled.status_code == 429
        assert throttled.headers["retry-after"] == "1"
        assert throttled.content == b""
        assert (await client.post("/v1/Token", data=FORM)).status_code == 200  # v1 is not throttled
        other_user = await client.post("/v8/Token", data={**FORM, "username": "someone"})
        assert other_user.status_code == 400  # a bad login, not a throttled one
        clock.advance(0.75)  # the window is over (a second, its end included)
        assert (await client.post("/v6/Token", data=FORM)).status_code == 200
    assert simulator.stats.faults["token_throttle"] == 1
    assert [entry.status for entry in simulator.stats.token_log] == [200, 429, 200, 400, 200]


def test_the_throttle_window_is_fixed_and_per_user() -> None:
    throttle = TokenThrottle()
    assert throttle.retry_after("admin", 10.0) is None
    assert throttle.retry_after("admin", 10.9) == 1  # a refusal does not open a new window...
    assert throttle.retry_after("other", 10.9) is None
    assert throttle.retry_after("admin", 11.0) == 1  # ...the first request's lasts a second, end included
    assert throttle.retry_after("admin", 11.25) is None
    assert throttle.retry_after("admin", 11.5) == 1


async def test_token_throttle_is_off_by_default(client: httpx.AsyncClient, simulator: Simulator) -> None:
    statuses = [(await client.post("/v8/Token", data=FORM)).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    assert simulator.stats.faults["token_throttle"] == 0


async def test_random_faults_apply_to_every_served_version() -> None:
    simulator = Simulator(config(faults=Faults(error_rate=1.0)))
    async with client_for(simulator) as client:
        responses = [await client.get(f"/{version}/Jobs") for version in ("v1", "v6", "v7", "v8")]
        token = await client.post("/v8/Token", data=FORM)
    assert all(response.status_code in (500, 502, 503) for response in responses)
    assert token.status_code in (500, 502, 503)
    assert simulator.stats.faults["error"] == 5
    assert simulator.stats.by_endpoint[("GET", "/v8/jobs")] == 1


# -- the epoch ------------------------------------------------------------------------------------------


def test_default_epoch_is_the_real_now() -> None:
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    simulator = Simulator(SimulatorConfig(seed=4))
    after = dt.datetime.now(dt.UTC)
    jobs = simulator.jobs_wire(version="v7")
    runs = [iso(job["lastRun"]) for job in jobs if job["lastRun"]]
    upcoming = [iso(job["nextRun"]) for job in jobs if job["nextRun"]]
    assert runs
    assert upcoming
    # Jobs ran within their schedule's interval, or (broken or disabled) up to five days ago.
    assert all(before - dt.timedelta(days=5) <= run <= after for run in runs)
    assert sum(run > before - dt.timedelta(days=1) for run in runs) > len(runs) / 2
    assert all(moment > before for moment in upcoming)


def test_a_pinned_epoch_is_reproducible_and_moves_history() -> None:
    first = Simulator(config())
    again = Simulator(config())
    later = Simulator(config(epoch=EPOCH + dt.timedelta(days=10)))
    assert first.jobs_wire(version="v8") == again.jobs_wire(version="v8")
    assert first.sessions_wire(version="v7") == again.sessions_wire(version="v7")
    runs = {job["id"]: job["lastRun"] for job in first.jobs_wire(version="v7") if job["lastRun"]}
    moved = {job["id"]: job["lastRun"] for job in later.jobs_wire(version="v7") if job["lastRun"]}
    assert runs.keys() == moved.keys()
    for job_id, run in runs.items():
        assert iso(moved[job_id]) - iso(run) == dt.timedelta(days=10)
        assert iso(run) < EPOCH
