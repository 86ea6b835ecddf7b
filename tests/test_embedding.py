"""Embedding: the documented Starlette backend under a real uvicorn, against the simulator."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import importlib.util
import re
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
import respx
import uvicorn

from vbo_async import HealthState, Job, RetryPolicy, TransportError, VBOClient, to_jsonable
from vbo_async.simulator import Simulator, SimulatorConfig, create_app

from .conftest import closed_port, serve

EXAMPLE = Path(__file__).parents[1] / "docs" / "examples" / "backend.py"
EPOCH = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("vbo_async_backend_example", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextlib.asynccontextmanager
async def serve_with_lifespan(app: Any) -> AsyncIterator[int]:
    """``app`` on a real uvicorn on 127.0.0.1 with its lifespan run (the clients open and close)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on", http="h11", timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:  # however long a loaded machine takes (it was 5 s at most)
            if task.done():
                task.result()
                raise RuntimeError("uvicorn stopped before it started")
            await asyncio.sleep(0.01)
        yield port
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        sock.close()


async def test_the_backend_serves_jobs_health_and_errors_concurrently() -> None:
    simulator = Simulator(SimulatorConfig(seed=8, organizations=6, epoch=EPOCH))
    backend = load_example()
    async with serve(create_app(simulator=simulator)) as simulator_port:
        app = backend.create_app(
            {"east": f"http://127.0.0.1:{simulator_port}", "down": f"http://127.0.0.1:{closed_port()}"},
            username="admin",
            password="admin",
        )
        async with (
            serve_with_lifespan(app) as port,
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as web,
        ):
            orgs = simulator.organization_ids()
            answers = await asyncio.gather(
                *(web.get(f"/servers/east/organizations/{org}/jobs") for org in orgs * 5),
                web.get("/servers/east/organizations"),
                web.get(f"/servers/east/organizations/{orgs[0]}/health"),
                web.get("/servers/east/organizations/00000000-0000-4000-8000-000000000000/jobs"),
                web.get("/servers/nowhere/organizations"),
                web.get("/servers/down/organizations"),
            )
    *job_answers, listing, health, unknown_org, unknown_server, down = answers
    for org, answer in zip(orgs * 5, job_answers, strict=True):
        assert answer.status_code == 200
        wanted = sorted(
            job["id"]
            for job in simulator.jobs_wire(version="v8", organization_id=org, limit=10_000)["results"]
        )
        assert sorted(job["id"] for job in answer.json()) == wanted
        assert all(job["organization_id"] == org for job in answer.json())
    assert listing.status_code == 200
    assert {org["id"] for org in listing.json()} == set(orgs)
    assert health.status_code == 200
    assert {entry["state"] for entry in health.json()} <= {state.name for state in HealthState}
    assert unknown_org.status_code == 404
    assert unknown_server.status_code == 404
    assert "nowhere" in unknown_server.json()["error"]
    assert down.status_code == 502
    assert "cannot connect" in down.json()["error"]
    assert "admin" not in down.text
    # one token for the whole life of the app, not one per request
    assert simulator.stats.token_requests_by_version == {("v8", "password"): 1}
    assert simulator.stats.logouts == {"v8": 1}  # logged out when the app shut down


async def test_the_backend_answers_a_bad_id_with_a_400_not_a_502() -> None:
    """An id the library refuses before sending anything (`ConfigError`: a backslash, spaces
    around it) is the caller's mistake, not the VB365 server's failure: a 400, and no request."""
    simulator = Simulator(SimulatorConfig(seed=8, organizations=1, epoch=EPOCH))
    backend = load_example()
    async with serve(create_app(simulator=simulator)) as simulator_port:
        app = backend.create_app(
            {"east": f"http://127.0.0.1:{simulator_port}"}, username="admin", password="admin"
        )
        async with (
            serve_with_lifespan(app) as port,
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as web,
        ):
            answers = [await web.get(f"/servers/east/organizations/{bad}/jobs") for bad in ("a%5Cb", "%20a")]
    assert [answer.status_code for answer in answers] == [400, 400]
    assert "organization" in answers[0].json()["error"]
    assert simulator.stats.requests == 0


def test_to_jsonable_of_models_is_plain_json() -> None:
    import json

    simulator = Simulator(SimulatorConfig(seed=9, organizations=2, epoch=EPOCH))

    async def decode() -> Any:
        app = create_app(simulator=simulator)
        from vbo_async import VBOClient

        async with VBOClient(
            "https://vbo.test", username="admin", password="admin", transport=httpx.ASGITransport(app=app)
        ) as vbo:
            jobs = await vbo.organization_jobs(simulator.organization_ids()[0])
            return jobs, await vbo.job_health(jobs[0])

    jobs, health = asyncio.run(decode())
    data = to_jsonable(jobs)
    text = json.dumps(data)  # no TypeError: everything is JSON
    first = json.loads(text)[0]
    assert first["id"] == jobs[0].id
    assert first["last_run"] == (jobs[0].last_run.isoformat() if jobs[0].last_run else None)
    assert first["links"]["self"].startswith("/v8/Jobs/")
    assert first["links"]["proxy"] is None  # derived through the repository: no server href
    assert first["links"]["jobsessions"] == f"/v8/JobSessions?jobId={jobs[0].id}"
    assert first["schedule_policy"]["backup_window"]["backup_intervals_array"][:1] in ([True], [False])
    judged = to_jsonable(health)
    assert judged["state"] == health.state.name
    assert judged["job"]["id"] == jobs[0].id


def test_to_jsonable_writes_a_time_sent_without_an_offset_without_one() -> None:
    """A time the server sent without an offset names no zone; ``+00:00`` would make one up."""
    vbo = VBOClient("https://vbo.test", username="u", password="p", api_version="v1")
    wire = {"id": "j", "lastRun": "2017-04-05T08:04:55.1234567", "nextRun": "2017-04-05T08:04:55+02:00"}
    job = vbo.from_wire(wire, Job)
    data = to_jsonable(job)
    assert (data["last_run"], data["next_run"]) == ("2017-04-05T08:04:55.123456", "2017-04-05T08:04:55+02:00")
    assert to_jsonable({job.last_run: job.last_run}) == {
        "2017-04-05T08:04:55.123456": "2017-04-05T08:04:55.123456"
    }
    assert vbo.to_wire(job)["lastRun"] == "2017-04-05T08:04:55.123456"


@pytest.mark.parametrize("value", [object(), {1, 2}, b"bytes"])
def test_to_jsonable_refuses_what_is_not_a_model_or_json(value: object) -> None:
    from vbo_async import ConfigError

    with pytest.raises(ConfigError, match=type(value).__name__):
        to_jsonable({"x": [value]})


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_to_jsonable_refuses_a_float_json_has_no_number_for(value: float) -> None:
    """ "JSON-ready": a NaN or an infinity (a value built by hand; the decoder refuses them) went
    through, and Starlette's ``JSONResponse`` raised a bare ValueError on it."""
    from vbo_async import ConfigError

    with pytest.raises(ConfigError, match=r"JSON has no number for \(at \$\.x\[0\]\)"):
        to_jsonable({"x": [value]})
    with pytest.raises(ConfigError, match="JSON has no number for"):
        to_jsonable({value: 1})
    assert to_jsonable({"x": [1.5, -0.0, 1e308]}) == {"x": [1.5, -0.0, 1e308]}


def test_to_jsonable_writes_keys_as_it_writes_values() -> None:
    """A key is written as the same value would be (a `HealthState` by its name, an enum by
    its value, a datetime in ISO 8601, True, False and None as JSON spells them): a count of
    jobs by state was ``{"2": 1}`` while each job's state read ``"CRITICAL"``."""
    import collections

    from vbo_async import JobStatus

    when = dt.datetime(2026, 7, 1, 12, 0, tzinfo=dt.UTC)
    states = collections.Counter([HealthState.CRITICAL, HealthState.OK, HealthState.OK])
    assert to_jsonable(states) == {"CRITICAL": 1, "OK": 2}
    assert to_jsonable({JobStatus.SUCCESS: 1, JobStatus("Later"): 2}) == {"Success": 1, "Later": 2}
    assert to_jsonable({when: "run"}) == {when.isoformat(): "run"}
    assert to_jsonable({True: 1, None: 2, 3: 3, 1.5: 4}) == {"true": 1, "null": 2, "3": 3, "1.5": 4}


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ({("job", "repository"): 1}, "tuple"),  # a PollResult's prefetched, keyed (job id, relation)
        ({1: "one", "1": "another"}, "'1'"),  # two keys written alike: one value would be lost
        ({HealthState.OK: 1, "OK": 2}, "'OK'"),
    ],
)
def test_to_jsonable_refuses_keys_it_cannot_write_apart(value: dict[Any, Any], named: str) -> None:
    """A key JSON cannot hold, or two keys written as the same string, is a `ConfigError`
    naming it: a tuple key became its Python repr, and of two keys written alike one value was
    silently dropped."""
    from vbo_async import ConfigError

    with pytest.raises(ConfigError, match=re.escape(named)):
        to_jsonable({"x": value})


def test_to_jsonable_of_raw_json_nested_too_deeply_is_a_config_error() -> None:
    """A collection link without a model (an organization's users) gives the server's JSON as
    parsed, up to 1024 levels deep: more than the conversion's recursion goes."""
    from vbo_async import ConfigError
    from vbo_async._decode import parse_json

    assert to_jsonable(parse_json(b"[" * 100 + b"]" * 100)) == parse_json(b"[" * 100 + b"]" * 100)
    with pytest.raises(ConfigError, match="nested too deeply"):
        to_jsonable(parse_json(b'{"a":' * 1000 + b"1" + b"}" * 1000))


async def test_a_respx_router_mocks_a_client_only_given_as_its_transport() -> None:
    """The README: ``respx.mock`` patches httpx's own transport, which a client built without
    ``transport=`` does not use (it sends through aiohttp): its requests go to ``base_url`` (here a
    loopback port nothing listens on). Given as the transport, the same router answers them."""
    base = f"http://127.0.0.1:{closed_port()}"
    with respx.mock(base_url=base, assert_all_called=False) as router:
        router.post("/v8/Token").respond(200, json={"access_token": "access-Zq9xKp2", "expires_in": 3600})
        router.get("/v8/Jobs").respond(200, json={"offset": 0, "limit": 30, "results": [{"id": "j1"}]})
        router.post("/v8/token/logout").respond(204)
        once = RetryPolicy(attempts=1)
        async with VBOClient(base, username="svc", password="pw-S3cret", api_version="v8", retry=once) as vbo:
            with pytest.raises(TransportError):
                await vbo.jobs()
        assert not router.calls
        mocked = httpx.MockTransport(router.async_handler)
        async with VBOClient(base, username="svc", password="pw-S3cret", transport=mocked) as vbo:
            assert [job.id for job in await vbo.jobs()] == ["j1"]
        assert [call.request.url.path for call in router.calls] == [
            "/v8/Token",
            "/v8/Jobs",
            "/v8/token/logout",
        ]
