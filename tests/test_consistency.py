"""One server state, every surface: the library's verdicts (`poll_jobs`, batched and tenant by
tenant) against ``poll --json``, ``check``, ``jobs --json`` and ``serve``'s metrics."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

import vbo_async._sending
from vbo_async import HealthPolicy, PollTarget, VBOClient, poll_jobs
from vbo_async._cli._exporter import Exporter
from vbo_async._cli._flows import NO_ID
from vbo_async._cli._metrics import PREFIX
from vbo_async._cli._sweeps import ServerSpec
from vbo_async.simulator import Simulator, SimulatorConfig, create_app

from .conftest import as_asgi, closed_port, serve
from .test_check import expected_perf, first_line, perf_values
from .test_cli import expected_rows, judge_at, run_in_thread, server_table, write_targets
from .test_exporter import samples

EPOCH = dt.datetime(2017, 4, 4, 10, 0, tzinfo=dt.UTC)


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries still happen, without waiting between them."""
    monkeypatch.setattr(vbo_async._sending, "backoff", lambda *args, **kwargs: 0.0)


STATE_NAMES = ("OK", "WARNING", "CRITICAL", "UNKNOWN")


async def library(url: str, version: str, batch: bool) -> dict[str, tuple[str, str, str]]:
    found = {}
    async with VBOClient(url, username="admin", password="admin", api_version=version) as vbo:
        orgs = await vbo.organizations()
        targets = [PollTarget(client=vbo, organization_id=o.id, name=o.name, organization=o) for o in orgs]
        async with poll_jobs(targets, health=HealthPolicy(), batch=batch) as results:
            async for result in results:
                assert result.error is None, result.error
                for job in result.jobs:
                    h = result.health[job.id]
                    found[job.id] = (
                        h.state.name,
                        h.reason,
                        str(job.last_status) if job.last_status else None,
                    )
    return found


def pinned(seed: int, organizations: int, version: str) -> Simulator:
    """A simulator of ``seed`` serving ``version`` alone, its clock pinned at `EPOCH`: 1 to 4 jobs
    per tenant, 1 to 30 sessions per job."""
    config = SimulatorConfig(
        seed=seed,
        epoch=EPOCH,
        organizations=organizations,
        jobs_per_organization=(1, 4),
        sessions_per_job=(1, 30),
        api_versions=(version,),
    )
    return Simulator(config)


@pytest.mark.parametrize("version", ["v1", "v6", "v7", "v8"])
@pytest.mark.parametrize("seed", [3, 43, 101])
@pytest.mark.parametrize("organizations", [3, 9])
async def test_every_surface_agrees(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    version: str,
    seed: int,
    organizations: int,
) -> None:
    judge_at(monkeypatch, EPOCH)
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    sim = pinned(seed, organizations, version)
    async with serve(create_app(simulator=sim)) as port:
        url = f"http://127.0.0.1:{port}"
        alone = await library(url, version, batch=False)
        batched = await library(url, version, batch=True)
        assert batched == alone
        targets = write_targets(tmp_path / "t.toml", server_table("s", url, "VBO_PASSWORD"))
        polled = await run_in_thread(capsys, "poll", "--targets", str(targets), "--json")
        assert polled.code == 0, polled
        rows = json.loads(polled.out)
        assert {r["job_id"]: (r["health"], r["health_reason"], r["last_status"]) for r in rows} == alone
        checked = await run_in_thread(capsys, "check", "--targets", str(targets))
        states = [s for s, _, _ in alone.values()]
        perf = perf_values(first_line(checked.out)["perf"])
        assert perf == expected_perf(states), checked.out
        code = 2 if "CRITICAL" in states else 1 if "WARNING" in states else 3 if "UNKNOWN" in states else 0
        assert checked.code == code
        findings = sorted(
            f"{row['health']}: s/{row['organization']}/{row['job']}: {row['health_reason']}"
            for row in rows
            if row["health"] != "OK"
        )
        assert sorted(checked.out.splitlines()[1:]) == findings
        org = rows[0]["organization_id"]
        argv = ["jobs", "--server", url, "--username", "admin", "--password-env", "VBO_PASSWORD"]
        listed = await run_in_thread(capsys, *argv, "--org", org, "--json")
        assert listed.code == 0, listed
        assert {
            r["job_id"]: (r["health"], r["health_reason"], r["last_status"]) for r in json.loads(listed.out)
        } == {
            r["job_id"]: (r["health"], r["health_reason"], r["last_status"])
            for r in rows
            if r["organization_id"] == org
        }
        async with VBOClient(url, username="admin", password="admin") as client:
            exporter = Exporter([ServerSpec(name="s", client=client)], interval=60.0)
            await exporter.sweep()
            body = exporter.body(gzip=False)
        metric = {s.labels["job_id"]: STATE_NAMES[int(s.value)] for s in samples(body, PREFIX + "job_health")}
        assert metric == {job: state for job, (state, _, _) in alone.items()}
        status = {
            s.labels["job_id"]: s.labels["status"]
            for s in samples(body, PREFIX + "job_last_status")
            if s.value == 1
        }
        assert status == {job: st for job, (_, _, st) in alone.items() if st is not None}


def hostile(sim: Simulator, case: str, first_job: str) -> Any:
    import httpx

    inner = httpx.ASGITransport(app=create_app(simulator=sim))

    async def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path.lower()
        if case == "jobs_500" and "jobs" in path and "session" not in path:
            return httpx.Response(500, json={"message": "boom"})
        if case == "sessions_500" and "jobsessions" in path:
            return httpx.Response(500, json={"message": "boom"})
        response = await inner.handle_async_request(request)
        body = await response.aread()
        if request.method != "GET" or response.status_code != 200:
            return httpx.Response(response.status_code, headers=response.headers, content=body)
        try:
            data = json.loads(body)
        except ValueError:
            return httpx.Response(response.status_code, headers=response.headers, content=body)
        items = data["results"] if isinstance(data, dict) and "results" in data else data
        if isinstance(items, list) and items:
            if case == "undecodable_org" and path.endswith("/organizations"):
                items[0]["name"] = {"not": "a name"}
            if case == "dup_org" and path.endswith("/organizations"):
                items.append(dict(items[0]))
            if case == "dup_org_case" and path.endswith("/organizations"):
                items.append({**items[0], "id": items[0]["id"].upper()})
            if case == "blank_org" and path.endswith("/organizations"):
                items[0]["id"] = ""
            if case == "slash_org" and path.endswith("/organizations"):
                items[0]["id"] = "tenant/one"
            if case == "bad_job" and path.endswith("/jobs"):
                for item in items:
                    if item.get("id") == first_job:
                        item["isEnabled"] = {"not": "a boolean"}
        return httpx.Response(200, json=data)

    return handler


async def library_with_failures(
    url: str, version: str, *, batch: bool, reasons: bool
) -> tuple[dict[str, tuple[str, str]], int]:
    """Per job id, its (state, reason) as `poll_jobs` judges every tenant the server lists
    (the reason left out unless ``reasons``), and how many tenants could not be read (listed
    undecodable or without an id, or whose jobs failed)."""
    jobs = {}
    async with VBOClient(url, username="admin", password="admin", api_version=version) as vbo:
        organizations, undecoded = await vbo._organizations_filed()
        usable = {o.id.lower(): o for o in organizations if o.id.strip()}.values()
        errors = len(undecoded) + sum(not o.id.strip() for o in organizations)
        targets = [PollTarget(client=vbo, organization_id=o.id, name=o.name, organization=o) for o in usable]
        async with poll_jobs(targets, health=HealthPolicy(), batch=batch) as results:
            async for result in results:
                if result.error is not None:
                    errors += 1
                    continue
                for job in result.jobs:
                    health = result.health[job.id]
                    jobs[job.id] = (health.state.name, health.reason if reasons else "")
    return jobs, errors


@pytest.mark.parametrize(
    "case", ["dup_org", "dup_org_case", "undecodable_org", "blank_org", "bad_job", "jobs_500", "sessions_500"]
)
@pytest.mark.parametrize("version", ["v1", "v6", "v7", "v8"])
@pytest.mark.parametrize("organizations", [3, 9])
@pytest.mark.usefixtures("no_backoff")
async def test_failures_agree(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    version: str,
    case: str,
    organizations: int,
) -> None:
    judge_at(monkeypatch, EPOCH)
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    sim = pinned(43, organizations, version)
    first = sim.organization_ids()[0]
    first_job = min(expected_rows(sim, [first], version=version))
    async with serve(as_asgi(hostile(sim, case, first_job))) as port:
        url = f"http://127.0.0.1:{port}"
        alone, errors = await library_with_failures(url, version, batch=False, reasons=case != "sessions_500")
        assert await library_with_failures(url, version, batch=True, reasons=case != "sessions_500") == (
            alone,
            errors,
        )
        targets = write_targets(tmp_path / "t.toml", server_table("s", url, "VBO_PASSWORD"))
        polled = await run_in_thread(capsys, "poll", "--targets", str(targets), "--json")
        rows = json.loads(polled.out)
        assert {
            r["job_id"]: (r["health"], r["health_reason"] if case != "sessions_500" else "")
            for r in rows
            if r["error"] is None
        } == alone
        assert sum(r["error"] is None for r in rows) == len(alone), "each job once"
        assert sum(r["error"] is not None for r in rows) == errors, rows
        checked = await run_in_thread(capsys, "check", "--targets", str(targets))
        states = [s for s, _ in alone.values()]
        perf = perf_values(first_line(checked.out)["perf"])
        assert perf == expected_perf(states, tenants_unreadable=errors), checked.out
        worst = (
            2
            if "CRITICAL" in states
            else 1
            if "WARNING" in states
            else 3
            if "UNKNOWN" in states or errors
            else 0
        )
        assert checked.code == worst
        async with VBOClient(url, username="admin", password="admin") as client:
            exporter = Exporter([ServerSpec(name="s", client=client)], interval=60.0)
            await exporter.sweep()
            body = exporter.body(gzip=False)
            kinds = dict(exporter.errors["s"])
        metric = {s.labels["job_id"]: STATE_NAMES[int(s.value)] for s in samples(body, PREFIX + "job_health")}
        assert metric == {job: state for job, (state, _) in alone.items()}
        up = {s.labels["organization_id"]: s.value for s in samples(body, PREFIX + "organization_up")}
        judged = {s.labels["organization_id"] for s in samples(body, PREFIX + "job_health")}
        assert judged <= {org for org, value in up.items() if value == 1}
        assert kinds.get("organization", 0) == errors


@pytest.mark.parametrize("case", ["dup_org", "dup_org_case"])
@pytest.mark.parametrize("version", ["v1", "v8"])
async def test_an_organization_listed_twice_is_found_by_name_on_every_surface(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    version: str,
    case: str,
) -> None:
    """A listing that repeats an organization (offset pages shifting under a change; its id
    in another case): asked for by name, every surface finds that one tenant, as ``check --org``
    does, instead of calling the name ambiguous between an organization and itself."""
    judge_at(monkeypatch, EPOCH)
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    sim = Simulator(
        SimulatorConfig(
            seed=43, epoch=EPOCH, organizations=3, jobs_per_organization=(1, 4), api_versions=(version,)
        )
    )
    first = sim.organization_ids()[0]
    rows = expected_rows(sim, [first], version=version)
    (name,) = {row["organization"] for row in rows.values()}
    async with serve(as_asgi(hostile(sim, case, ""))) as port:
        url = f"http://127.0.0.1:{port}"
        targets = write_targets(tmp_path / "t.toml", server_table("s", url, "VBO_PASSWORD"))
        checked = await run_in_thread(capsys, "check", "--targets", str(targets), "--org", name)
        assert perf_values(first_line(checked.out)["perf"])["jobs"] == len(rows), checked.out
        named = server_table("s", url, "VBO_PASSWORD", organizations=json.dumps([name]))
        polled = await run_in_thread(
            capsys, "poll", "--targets", str(write_targets(targets, named)), "--json"
        )
        assert polled.code == 0, polled
        assert sorted(row["job_id"] for row in json.loads(polled.out)) == sorted(rows)
        argv = ["jobs", "--server", url, "--username", "admin", "--password-env", "VBO_PASSWORD"]
        listed = await run_in_thread(capsys, *argv, "--org", name, "--json")
        assert listed.code == 0, listed
        assert sorted(row["job_id"] for row in json.loads(listed.out)) == sorted(rows)
        async with VBOClient(url, username="admin", password="admin") as client:
            exporter = Exporter([ServerSpec(name="s", client=client, organizations=(name,))], interval=60.0)
            await exporter.sweep()
            body = exporter.body(gzip=False)
            assert exporter.errors["s"]["organization"] == 0
        assert {s.labels["job_id"] for s in samples(body, PREFIX + "job_health")} == set(rows)


@pytest.mark.parametrize("version", ["v1", "v8"])
async def test_jobs_of_an_organization_listed_without_an_id_is_what_poll_and_check_say(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, version: str
) -> None:
    """``jobs --org NAME`` of a tenant the server lists with an empty id fails as that tenant's
    row of poll and line of check do (the server's doing: exit 1), not as a usage error about
    `PollTarget`."""
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    sim = Simulator(SimulatorConfig(seed=43, epoch=EPOCH, organizations=3, api_versions=(version,)))
    (name,) = {
        row["organization"]
        for row in expected_rows(sim, [sim.organization_ids()[0]], version=version).values()
    }
    async with serve(as_asgi(hostile(sim, "blank_org", ""))) as port:
        url = f"http://127.0.0.1:{port}"
        targets = write_targets(tmp_path / "t.toml", server_table("s", url, "VBO_PASSWORD"))
        checked = await run_in_thread(capsys, "check", "--targets", str(targets), "--org", name)
        assert f"UNKNOWN: s/{name}: {NO_ID}" in checked.out.splitlines()
        argv = ["jobs", "--server", url, "--username", "admin", "--password-env", "VBO_PASSWORD"]
        listed = await run_in_thread(capsys, *argv, "--org", name, "--json")
    assert listed.code == 1
    assert listed.err == f"vbo-async: error: {name}: {NO_ID}\n"


@pytest.mark.usefixtures("no_backoff")
async def test_a_server_that_is_down_is_down_on_every_surface(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A server nothing answers on: check's UNKNOWN (servers_down), poll's server row, serve's up 0."""
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    url = f"http://127.0.0.1:{closed_port()}"
    targets = write_targets(tmp_path / "t.toml", server_table("s", url, "VBO_PASSWORD"))
    checked = await run_in_thread(capsys, "check", "--targets", str(targets))
    assert checked.code == 3
    perf = perf_values(first_line(checked.out)["perf"])
    assert (perf["jobs"], perf["servers_down"], perf["tenants_unreadable"]) == (0, 1, 0)
    polled = await run_in_thread(capsys, "poll", "--targets", str(targets), "--json")
    assert polled.code == 1
    ((row),) = json.loads(polled.out)
    assert (row["server"], row["organization"], row["job"]) == ("s", None, None)
    assert row["error"]
    async with VBOClient(url, username="admin", password="admin") as client:
        exporter = Exporter([ServerSpec(name="s", client=client)], interval=60.0)
        await exporter.sweep()
        body = exporter.body(gzip=False)
        assert exporter.errors["s"]["server"] == 1
    assert [s.value for s in samples(body, PREFIX + "up")] == [0.0]
    assert not samples(body, PREFIX + "organization_up")


@pytest.mark.parametrize("version", ["v1", "v8"])
async def test_jobs_of_an_organization_whose_id_no_request_can_name_is_what_poll_and_check_say(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, version: str
) -> None:
    """``jobs --org NAME`` of a tenant the server lists under an id the client refuses to put in
    a path (``tenant/one``) fails as that tenant's row of poll and line of check do (the
    server's doing: exit 1, the tenant named, a --json row), not as a usage error (exit 2) that
    names no tenant and prints no JSON."""
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    sim = Simulator(SimulatorConfig(seed=43, epoch=EPOCH, organizations=3, api_versions=(version,)))
    (name,) = {
        row["organization"]
        for row in expected_rows(sim, [sim.organization_ids()[0]], version=version).values()
    }
    async with serve(as_asgi(hostile(sim, "slash_org", ""))) as port:
        url = f"http://127.0.0.1:{port}"
        targets = write_targets(tmp_path / "t.toml", server_table("s", url, "VBO_PASSWORD"))
        checked = await run_in_thread(capsys, "check", "--targets", str(targets), "--org", name)
        (line,) = [line for line in checked.out.splitlines() if line.startswith(f"UNKNOWN: s/{name}: ")]
        why = line.removeprefix(f"UNKNOWN: s/{name}: ")
        polled = await run_in_thread(capsys, "poll", "--targets", str(targets), "--json")
        argv = ["jobs", "--server", url, "--username", "admin", "--password-env", "VBO_PASSWORD"]
        listed = await run_in_thread(capsys, *argv, "--org", name, "--json")
    assert "one URL path segment" in why
    assert {row["error"] for row in json.loads(polled.out) if row["organization"] == name} == {why}
    assert listed.code == 1
    assert listed.err == f"vbo-async: error: {name}: {why}\n"
    (row,) = json.loads(listed.out)
    assert row["error"] == f"{name}: {why}"
