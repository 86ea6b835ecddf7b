"""Misuse: a client used where it cannot work fails at once, with a typed error and no request.

- bound to the event loop it was first used on: another loop (a later ``asyncio.run``, or a loop
  in another thread) gets `ClientStateError` from every method, before anything is sent;
- after ``aclose()`` every method that talks to the server fails the same way (``aclose()`` again
  is fine; the pure ``to_wire``/``from_wire`` keep working);
- ``verify=False`` logs one warning per client;
- bad options raise `ConfigError` (also a ``ValueError``) naming the option, never the password.
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import gc
import io
import logging
import math
import os
import pickle
import re
import ssl
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from vbo_async import (
    BackupRepository,
    ClientStateError,
    CollectionLink,
    ConfigError,
    HealthPolicy,
    HealthState,
    Job,
    JobSession,
    Link,
    NotFoundError,
    Organization,
    PollProgress,
    PollResult,
    PollSweep,
    PollTarget,
    Proxy,
    RetryPolicy,
    ThroughLink,
    VBOClient,
    VBOError,
    assess,
    configure_logging,
    poll_jobs,
    to_jsonable,
)

from .conftest import BASE, PASSWORD, USERNAME, FakeVBO, client_for, offline_client

ORG = "b2d9414d-c417-4a94-be3b-b38a3c2e8a7b"
JOB = "70a8cbaf-642f-4c6f-934d-fb10e597a82a"

Call = Callable[[VBOClient, Job], Awaitable[Any]]


async def _drain(vbo: VBOClient, job: Job) -> list[Any]:
    assert job.links.jobsessions is not None
    return [session async for session in job.links.jobsessions]


async def _follow(vbo: VBOClient, job: Job) -> Any:
    assert job.links.repository is not None
    return await vbo.follow(job.links.repository)


async def _await_link(vbo: VBOClient, job: Job) -> Any:
    assert job.links.organization is not None
    return await job.links.organization


async def _enter(vbo: VBOClient, job: Job) -> None:
    async with vbo:
        pass  # pragma: no cover - entering must fail


CALLS: dict[str, Call] = {
    "organizations": lambda vbo, job: vbo.organizations(),
    "organization": lambda vbo, job: vbo.organization(ORG),
    "organization_jobs": lambda vbo, job: vbo.organization_jobs(ORG),
    "jobs": lambda vbo, job: vbo.jobs(),
    "job": lambda vbo, job: vbo.job(JOB),
    "job_session": lambda vbo, job: vbo.job_session("s1"),
    "backup_repositories": lambda vbo, job: vbo.backup_repositories(),
    "proxies": lambda vbo, job: vbo.proxies(),
    "start_job": lambda vbo, job: vbo.start_job(job),
    "stop_job": lambda vbo, job: vbo.stop_job(JOB),
    "enable_job": lambda vbo, job: vbo.enable_job(JOB),
    "disable_job": lambda vbo, job: vbo.disable_job(job),
    "job_health": lambda vbo, job: vbo.job_health(job),
    # Both answered without a request once the version was known (v1, no jobs: nothing to ask).
    "discover_api_version": lambda vbo, job: vbo.discover_api_version(),
    "recent_sessions": lambda vbo, job: vbo.recent_sessions(dt.datetime(2026, 1, 1, tzinfo=dt.UTC), jobs=[]),
    "follow": _follow,
    "await link": _await_link,
    "async for link": _drain,
    "async with": _enter,
}
"""Every way the public API can make a request."""


def serving(fake: FakeVBO, seed_job: dict[str, Any]) -> FakeVBO:
    """``fake`` answering every entry point, so that only the misuse can make a call fail."""
    fake.route("GET", "/v1/Organizations", [])
    fake.route("GET", f"/v1/Organizations/{ORG}", {"id": ORG})
    fake.route("GET", f"/v1/Organizations/{ORG}/Jobs", [seed_job])
    fake.route("GET", "/v1/Jobs", [seed_job])
    fake.route("GET", f"/v1/Jobs/{JOB}", seed_job)
    fake.route("GET", "/v1/JobSessions/s1", {"id": "s1"})
    fake.route("GET", f"/v1/Jobs/{JOB}/JobSessions", [])
    fake.route("GET", "/v1/BackupRepositories", [])
    fake.route("GET", "/v1/Proxies", [])
    for action in ("Action",):
        fake.route("POST", f"/v1/Jobs/{JOB}/{action}", httpx.Response(200))
    return fake


# --- another event loop -----------------------------------------------------------------------------


def test_a_client_used_in_a_later_asyncio_run_fails_at_once(seed_job: dict[str, Any]) -> None:
    fake = serving(FakeVBO(), seed_job)
    clients = [client_for(fake)]  # dropped at the end

    async def first() -> Job:
        return await clients[0].job(JOB)  # binds the client to this loop

    jobs = [asyncio.run(first())]
    sent = len(fake.requests)

    async def second() -> dict[str, BaseException | None]:
        outcomes: dict[str, BaseException | None] = {}
        for name, call in CALLS.items():
            try:
                await call(clients[0], jobs[0])
            except BaseException as error:
                outcomes[name] = error
            else:  # pragma: no cover - a failure, reported below
                outcomes[name] = None
        return outcomes

    outcomes = asyncio.run(second())
    assert {name: type(error).__name__ for name, error in outcomes.items()} == dict.fromkeys(
        CALLS, "ClientStateError"
    )
    assert all("event loop" in str(error) for error in outcomes.values())
    assert len(fake.requests) == sent  # nothing was sent from the second loop

    async def close() -> None:
        await clients[0].aclose()

    # Closing from another event loop is the same misuse, with the same clear error (the pool
    # belongs to the first loop and cannot be closed from this one), which says that loop ended
    # and what to do instead.
    with pytest.raises(ClientStateError, match="event loop") as refused:
        asyncio.run(close())
    assert "has ended" in str(refused.value)
    assert "create the client in the loop that uses it and closes it" in str(refused.value)
    # Dropped unclosed (here it cannot be closed), it says which client it was.
    del outcomes, refused  # (the error's traceback holds the client)
    jobs.clear()
    clients.clear()
    with pytest.warns(ResourceWarning, match=r"<VBOClient .* was never closed: use 'async with"):
        gc.collect()


def test_poll_jobs_in_another_loop_reports_each_tenant(seed_job: dict[str, Any]) -> None:
    fake = serving(FakeVBO(), seed_job)
    clients = [client_for(fake)]  # dropped at the end
    asyncio.run(clients[0].job(JOB))
    sent = len(fake.requests)

    async def sweep() -> list[Any]:
        targets = [PollTarget(client=clients[0], organization_id=ORG, name=f"t{i}") for i in range(3)]
        return [result async for result in poll_jobs(targets, follow=("repository",))]

    results = asyncio.run(sweep())
    assert [type(result.error).__name__ for result in results] == ["ClientStateError"] * 3
    assert all(result.jobs == [] for result in results)
    assert len(fake.requests) == sent
    del results
    clients.clear()
    with pytest.warns(ResourceWarning, match="was never closed"):
        gc.collect()


async def test_a_loop_in_another_thread_fails_at_once(fake: FakeVBO, seed_job: dict[str, Any]) -> None:
    serving(fake, seed_job)
    async with client_for(fake) as vbo:
        job = await vbo.job(JOB)
        sent = len(fake.requests)
        outcomes: dict[str, str] = {}

        def other_loop() -> None:
            async def use() -> None:
                for name, call in CALLS.items():
                    try:
                        await call(vbo, job)
                    except BaseException as error:
                        outcomes[name] = type(error).__name__
                    else:  # pragma: no cover - a failure, reported below
                        outcomes[name] = "nothing"

            asyncio.run(use())

        thread = threading.Thread(target=other_loop)
        thread.start()
        await asyncio.to_thread(thread.join)

        assert outcomes == dict.fromkeys(CALLS, "ClientStateError")
        assert len(fake.requests) == sent
        assert (await vbo.job(JOB)).id == JOB  # still fine on its own loop


# --- after aclose() -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(CALLS))
async def test_every_method_fails_at_once_after_aclose(
    fake: FakeVBO, seed_job: dict[str, Any], name: str
) -> None:
    serving(fake, seed_job)
    vbo = client_for(fake)
    job = await vbo.job(JOB)
    await vbo.aclose()
    sent = len(fake.requests)

    with pytest.raises(ClientStateError, match="closed"):
        await CALLS[name](vbo, job)

    assert len(fake.requests) == sent
    await vbo.aclose()  # twice is fine
    await vbo.aclose()
    assert "closed" in repr(vbo)


async def test_poll_jobs_after_aclose_reports_each_tenant(fake: FakeVBO, seed_job: dict[str, Any]) -> None:
    serving(fake, seed_job)
    vbo = client_for(fake)
    await vbo.aclose()
    targets = [PollTarget(client=vbo, organization_id=ORG) for _ in range(2)]
    async with poll_jobs(targets) as sweep:
        results = [result async for result in sweep]
    assert [type(result.error) for result in results] == [ClientStateError, ClientStateError]
    assert fake.requests == []


async def test_pure_conversions_still_work_after_aclose(seed_job: dict[str, Any]) -> None:
    vbo = VBOClient(BASE, username=USERNAME, password=PASSWORD, api_version="v1")
    await vbo.aclose()
    job = vbo.from_wire(seed_job, Job)
    assert vbo.from_wire(vbo.to_wire(job), Job) == job
    with pytest.raises(ClientStateError):
        await job.links.organization  # type: ignore[misc]


@pytest.mark.parametrize(
    ("arguments", "said"),
    [
        ({"concurrency": 0}, "concurrency"),
        ({"concurrency": 1.5}, "concurrency"),
        ({"follow": ("nope",)}, "follow"),
        ({"follow": "repository"}, "follow"),
        ({"on_progress": 5}, "on_progress"),
        ({"health": "strict"}, "health"),
        ({"batch": "yes"}, "batch"),
        ({"organization_counts": [1]}, "organization_counts"),
        ({"targets": None}, "targets"),
    ],
)
def test_a_poll_sweep_built_directly_checks_its_arguments_as_poll_jobs_does(
    arguments: dict[str, Any], said: str
) -> None:
    """`PollSweep` is public: built directly, it took anything (``concurrency=0`` yielded nothing,
    ``follow=("nope",)`` raised a bare AttributeError from the iteration)."""
    vbo = offline_client()
    given: dict[str, Any] = {"targets": [PollTarget(client=vbo, organization_id=ORG)], **arguments}
    targets = given.pop("targets")
    with pytest.raises(ConfigError, match=said):
        PollSweep(targets, **given)
    with pytest.raises(ConfigError, match=said):
        poll_jobs(targets, **given)


async def test_a_poll_sweep_built_directly_sweeps_as_poll_jobs_does(
    fake: FakeVBO, seed_job: dict[str, Any]
) -> None:
    vbo = client_for(serving(fake, seed_job))
    async with vbo, PollSweep([PollTarget(client=vbo, organization_id=ORG)], follow=["repository"]) as sweep:
        assert (sweep.total, sweep.follow) == (1, ("repository",))
        (result,) = [result async for result in sweep]
    assert result.error is None
    assert [job.id for job in result.jobs] == [JOB]


async def test_a_sweep_read_or_closed_by_a_second_task_is_a_client_state_error(
    fake: FakeVBO, seed_job: dict[str, Any]
) -> None:
    """While one task awaits a sweep's next result, a second task reading or closing it gets a
    typed error (not the async generator's bare ``RuntimeError: anext(): asynchronous generator is
    already running``), and the first task still gets its result."""
    release, asked = asyncio.Event(), asyncio.Event()

    async def held(request: httpx.Request) -> Any:
        asked.set()
        await release.wait()
        return [seed_job]

    serving(fake, seed_job)
    fake.route("GET", f"/v1/Organizations/{ORG}/Jobs", held)
    async with client_for(fake) as vbo:
        sweep = poll_jobs([PollTarget(client=vbo, organization_id=ORG)])
        first = asyncio.ensure_future(anext(sweep))
        await asked.wait()
        with pytest.raises(ClientStateError, match="one task at a time"):
            await anext(sweep)
        with pytest.raises(ClientStateError, match="cancel that task"):
            await sweep.aclose()
        assert "closed" not in repr(sweep)
        release.set()
        result = await first
        assert [job.id for job in result.jobs] == [JOB]
        assert result.error is None
        await sweep.aclose()
        assert "closed" in repr(sweep)
        with pytest.raises(StopAsyncIteration):
            await anext(sweep)


async def test_a_sweep_read_or_closed_while_another_task_closes_it_ends_or_waits(
    fake: FakeVBO, seed_job: dict[str, Any]
) -> None:
    """While one task closes a sweep (its work slow to stop), another task reading it or closing
    it met the async generator's bare ``RuntimeError`` ("already running"): reading now ends the
    iteration, and a second close waits for the first."""
    asked, stopping, stopped = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def slow_to_stop(request: httpx.Request) -> Any:
        asked.set()
        try:
            await asyncio.Event().wait()
        finally:
            stopping.set()
            await stopped.wait()  # cleaning up takes a while
        return []  # pragma: no cover - cancelled

    serving(fake, seed_job)
    other = "c0ffee00-0000-4000-8000-000000000001"
    fake.route("GET", f"/v1/Organizations/{other}/Jobs", slow_to_stop)
    async with client_for(fake) as vbo:
        targets = [PollTarget(client=vbo, organization_id=org) for org in (ORG, other)]
        sweep = poll_jobs(targets, batch=False)
        first = await anext(sweep)
        assert first.target.organization_id == ORG
        await asked.wait()
        closing = asyncio.ensure_future(sweep.aclose())
        await stopping.wait()
        with pytest.raises(StopAsyncIteration):
            await anext(sweep)
        second = asyncio.ensure_future(sweep.aclose())
        await asyncio.sleep(0)
        assert not second.done()  # waits for the first close
        stopped.set()
        await asyncio.wait_for(asyncio.gather(closing, second), 5)
        assert "closed" in repr(sweep)


# --- pickling and copying -----------------------------------------------------------------------------


async def test_a_client_is_never_pickled_and_its_copies_are_itself(
    fake: FakeVBO, seed_job: dict[str, Any]
) -> None:
    """A client holds a connection pool, its token and the password: pickling one (or a target or
    result holding it) is a `ClientStateError` saying what to pickle instead, never an httpx
    internal's ``cannot pickle '_thread.RLock'`` nor, should that one go, a pickle of the token.
    A copy of a target keeps its client, as a copied model keeps its links bound to it."""
    async with client_for(serving(fake, seed_job)) as vbo:
        target = PollTarget(client=vbo, organization_id=ORG)
        async with poll_jobs([target]) as sweep:
            (result,) = [result async for result in sweep]
        for holder in (vbo, target, result):
            with pytest.raises(ClientStateError, match="cannot be pickled") as caught:
                pickle.dumps(holder)
            assert PASSWORD not in str(caught.value)
        assert copy.copy(vbo) is vbo
        assert copy.deepcopy(vbo) is vbo
        copied = copy.deepcopy(target)
        assert copied == target
        assert copied.client is vbo
        assert [job.id for job in pickle.loads(pickle.dumps(result.jobs))] == [JOB]  # the models pickle


def test_a_results_mappings_pickle_and_a_result_deep_copies() -> None:
    """``prefetched``, ``link_errors`` and ``health`` are read-only mappings that pickle and
    copy as the models in them do (``health`` sent to another process, a result kept as a
    snapshot): a ``mappingproxy`` made pickle and ``copy.deepcopy`` fail with a bare TypeError."""
    vbo = VBOClient(BASE, username=USERNAME, password=PASSWORD, api_version="v8")
    job = Job(id=JOB, name="daily")
    health = assess(job, now=dt.datetime(2026, 7, 1, tzinfo=dt.UTC))
    error = NotFoundError("gone", status_code=404, url=f"{BASE}/v8/BackupRepositories/r")
    result = PollResult(
        target=PollTarget(client=vbo, organization_id=ORG),
        jobs=[job],
        follow=("organization", "repository"),
        prefetched={(JOB, "organization"): Organization(id=ORG)},
        link_errors={(JOB, "repository"): error},
        health={JOB: health},
    )
    for mapping in (result.prefetched, result.link_errors, result.health):
        thawed = pickle.loads(pickle.dumps(mapping))
        assert dict(thawed).keys() == dict(mapping).keys()
        assert dict(copy.deepcopy(mapping)).keys() == dict(mapping).keys()
        with pytest.raises(TypeError):
            thawed[JOB] = None  # type: ignore[index]
    assert pickle.loads(pickle.dumps(result.health)) == {JOB: health}
    assert pickle.loads(pickle.dumps(result.prefetched)) == {(JOB, "organization"): Organization(id=ORG)}
    assert str(pickle.loads(pickle.dumps(result.link_errors))[(JOB, "repository")]) == str(error)
    copied = copy.deepcopy(result)
    assert copied.target.client is vbo
    assert copied.jobs == [job]
    assert copied.health == {JOB: health}
    assert copied.prefetched == result.prefetched
    progress = PollProgress(done=1, total=1, failed=0, result=result)
    assert copy.deepcopy(progress).result.health == result.health


@pytest.mark.parametrize("api_version", [["v1"], {"v": 1}, 1, "v2"], ids=["list", "dict", "int", "unknown"])
def test_a_bad_api_version_of_to_wire_or_from_wire_is_a_config_error(
    seed_job: dict[str, Any], api_version: Any
) -> None:
    vbo = VBOClient(BASE, username=USERNAME, password=PASSWORD, api_version="v1")
    job = vbo.from_wire(seed_job, Job)
    with pytest.raises(ConfigError, match="api_version"):
        vbo.to_wire(job, api_version=api_version)
    with pytest.raises(ConfigError, match="api_version"):
        vbo.from_wire(seed_job, Job, api_version=api_version)


@pytest.mark.parametrize("api_version", ["v1", "v8"])
def test_to_wire_of_data_nested_too_deeply_is_a_config_error(api_version: str) -> None:
    """``to_wire`` takes a list of models or data that is JSON already (as ``to_jsonable``);
    nested deeper than Python's recursion goes, that is a `ConfigError`, not a RecursionError."""
    vbo = VBOClient(BASE, username=USERNAME, password=PASSWORD, api_version=api_version)
    deep: list[Any] = [Job(id="j")]
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(ConfigError, match="nested too deeply") as caught:
        vbo.to_wire(deep)
    assert caught.value.__context__ is None
    assert vbo.to_wire([[Job(id="j")]]) == [[{"id": "j", "_links": {}}]]


class _Opaque:
    pass


@pytest.mark.parametrize("api_version", ["v1", "v8"])
@pytest.mark.parametrize(
    ("value", "says"),
    [
        (object(), "an object (at $)"),
        (_Opaque(), "a _Opaque (at $)"),
        (HealthPolicy(), "a HealthPolicy (at $)"),
        ([Job(id="j"), b"raw"], "a bytes (at $[1])"),
        ({"jobs": [Job(id="j"), {1, 2}]}, "a set (at $.jobs[1])"),
        ({"when": dt.timedelta(hours=1)}, "a timedelta (at $.when)"),
        ({("a", "b"): 1}, "a tuple as a key (at $)"),
        (dt.date(2026, 1, 1), "a date (at $)"),
        (HealthState.OK, "a HealthState (at $)"),
    ],
    ids=["object", "class", "policy", "bytes", "set", "timedelta", "tuple-key", "date", "health"],
)
def test_to_wire_of_what_is_not_a_model_or_json_is_a_config_error(
    api_version: str, value: Any, says: str
) -> None:
    """``to_wire`` writes models, lists, tuples and dicts of them and JSON values, as its
    docstring and `to_jsonable` say: anything else came back as it was (a client, a policy with
    a timedelta inside, which ``json.dumps`` then refuses far from the call), or as a bare
    TypeError (a tuple key)."""
    vbo = VBOClient(BASE, username=USERNAME, password=PASSWORD, api_version=api_version)
    with pytest.raises(ConfigError, match=re.escape(f"to_wire() cannot write {says}")):
        vbo.to_wire(value)
    with pytest.raises(ConfigError, match="cannot write a VBOClient"):
        vbo.to_wire(vbo)


@pytest.mark.parametrize("api_version", ["v1", "v8"])
@pytest.mark.parametrize(
    ("model", "says"),
    [
        (Job(id="j", name={"a"}), "a set (at $.name)"),  # type: ignore[arg-type]
        (Job(id="j", last_run=dt.date(2026, 1, 1)), "a date (at $.lastRun)"),  # type: ignore[arg-type]
        (Job(id="j", schedule_policy=HealthPolicy()), "a HealthPolicy (at $.schedulePolicy)"),  # type: ignore[arg-type]
        (Job(id="j", name=b"Mail"), "a bytes (at $.name)"),  # type: ignore[arg-type]
        (Job(id="j", name=frozenset()), "a frozenset (at $.name)"),  # type: ignore[arg-type]
        ({"jobs": [Job(id="j", name=object())]}, "an object (at $.jobs[0].name)"),  # type: ignore[arg-type]
        # Inside a model, keys and items as at the top level (a bare TypeError, two "1" keys):
        (Job(id="j", name={("a", "b"): 1}), "a tuple as a key (at $.name)"),  # type: ignore[arg-type]
        (Job(id="j", name={1: "a", "1": "b"}), "two keys as '1' (at $.name)"),  # type: ignore[arg-type]
        (Job(id="j", name=[1.0, math.nan]), "nan, which JSON has no number for (at $.name[1])"),  # type: ignore[arg-type]
        (Job(id="j", name={"a": [{1}]}), "a set (at $.name.a[0])"),  # type: ignore[arg-type]
    ],
    ids=[
        "set",
        "date",
        "policy",
        "bytes",
        "frozenset",
        "nested",
        "tuple-key",
        "two-keys",
        "nan-item",
        "deep",
    ],
)
def test_to_wire_of_a_model_holding_what_is_not_json_is_a_config_error(
    api_version: str, model: Any, says: str
) -> None:
    """A model built by hand with a value no wire field holds: the value came back in the wire
    JSON as it was, for ``json.dumps`` to refuse with a bare TypeError naming no place (the same
    value outside a model was refused already; `to_jsonable` refuses it in a model too)."""
    vbo = VBOClient(BASE, username=USERNAME, password=PASSWORD, api_version=api_version)
    with pytest.raises(ConfigError, match=re.escape(f"to_wire() cannot write {says}")):
        vbo.to_wire(model)


@pytest.mark.parametrize("api_version", ["v6", "v8"])
async def test_to_wire_of_a_jobs_proxy_link_alone_names_no_repository(api_version: str) -> None:
    """A v6+ job's ``links.proxy`` goes through its repository, whose href it carries: left out
    of a job's wire JSON, it was written alone (or in a list or dict) as ``{"href": <the
    repository's>}``, which read back is a proxy link that fetches the repository. No href, as
    `to_jsonable` says it."""
    repository = f"/{api_version}/BackupRepositories/r1"
    wire = {
        "id": "j1",
        "_links": {"self": {"href": f"/{api_version}/Jobs/j1"}, "backupRepository": {"href": repository}},
    }
    vbo = VBOClient(BASE, username=USERNAME, password=PASSWORD, api_version=api_version)
    job = vbo.from_wire(wire, Job)
    assert isinstance(job.links.proxy, ThroughLink)
    assert vbo.to_wire(job.links.proxy) is None
    assert vbo.to_wire({"proxy": job.links.proxy, "repository": job.links.repository}) == {
        "proxy": None,
        "repository": {"href": repository},
    }
    assert to_jsonable(job.links.proxy) is None
    assert vbo.to_wire(job)["_links"] == wire["_links"]


@pytest.mark.parametrize("api_version", ["v1", "v8"])
def test_to_wire_keeps_models_their_containers_and_json_as_before(api_version: str) -> None:
    vbo = VBOClient(BASE, username=USERNAME, password=PASSWORD, api_version=api_version)
    job = {"id": "j", "_links": {}}
    given = {"jobs": (Job(id="j"),), "n": 1, "x": 1.5, "ok": True, "none": None, 2: "int key"}
    assert vbo.to_wire(given) == {"jobs": [job], "n": 1, "x": 1.5, "ok": True, "none": None, 2: "int key"}
    assert vbo.to_wire([Job(id="j"), "text"]) == [job, "text"]
    assert vbo.to_wire(Job(id="j").links) == {}
    assert vbo.to_wire(dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)) == "2026-01-02T03:04:05+00:00"


@pytest.mark.parametrize("api_version", ["v1", "v8"])
@pytest.mark.parametrize(
    ("value", "says"),
    [
        (math.nan, "cannot write nan, which JSON has no number for (at $)"),
        ({"ratio": [1.0, -math.inf]}, "cannot write -inf, which JSON has no number for (at $.ratio[1])"),
        (
            Proxy(id="p", cpu_usage_percent=math.nan),
            "cannot write nan, which JSON has no number for (at $.cpuUsagePercent)",
        ),
        ({1: "a", "1": "b"}, "would write two keys as '1' (at $)"),
        ({True: "a", "true": "b"}, "would write two keys as 'true' (at $)"),
        ({math.inf: "a"}, "cannot write inf, which JSON has no number for (at $)"),
        ({"a": {10**5000: 1}}, "cannot write an int that long as a key (at $.a)"),
    ],
    ids=[
        "nan",
        "inf-in-list",
        "nan-in-model",
        "int-and-str-key",
        "bool-and-str-key",
        "inf-key",
        "huge-int-key",
    ],
)
def test_to_wire_of_what_json_cannot_hold_is_a_config_error(api_version: str, value: Any, says: str) -> None:
    """``to_wire`` gave NaN and infinities back (``json.dumps`` then writes ``NaN``, which no
    JSON parser reads: `from_wire` refused its own output), and two keys ``json.dumps`` writes
    alike; `to_jsonable` refused both. So does ``to_wire`` now, naming where."""
    vbo = VBOClient(BASE, username=USERNAME, password=PASSWORD, api_version=api_version)
    with pytest.raises(ConfigError, match=re.escape(f"to_wire() {says}")):
        vbo.to_wire(value)
    if isinstance(value, dict):  # to_jsonable says the same
        with pytest.raises(ConfigError, match=re.escape(f"to_jsonable() {says}")):
            to_jsonable(value)


@pytest.mark.parametrize("api_version", ["v1", "v8"])
@pytest.mark.parametrize(
    "jobs",
    [5, "j1", ["j1"], [None], [Job(id=None)], [Job(id=5)]],  # type: ignore[arg-type]
    ids=["int", "str", "ids", "none-item", "job-without-id", "job-with-int-id"],
)
async def test_recent_sessions_refuses_jobs_that_are_not_jobs_before_any_request(
    api_version: str, jobs: Any
) -> None:
    """``jobs`` is `Job` models: an int (not iterable), a string (iterated as one-letter ids) or
    ids (each listed, then filed under ``job.id``) are a `ConfigError` before anything is sent,
    on every version (v6+ do not need the jobs, and still say the call is wrong)."""
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(404)

    vbo = VBOClient(
        BASE,
        username=USERNAME,
        password=PASSWORD,
        api_version=api_version,
        transport=httpx.MockTransport(handler),
    )
    async with vbo:
        with pytest.raises(ConfigError, match="jobs"):
            await vbo.recent_sessions(dt.datetime(2026, 1, 1, tzinfo=dt.UTC), jobs=jobs)
    assert sent == []


def _refusing_client(sent: list[httpx.Request], api_version: str = "v8") -> VBOClient:
    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(404)

    return VBOClient(
        BASE,
        username=USERNAME,
        password=PASSWORD,
        api_version=api_version,
        transport=httpx.MockTransport(handler),
    )


_SESSION = JobSession(id="4a3190ea-0000-4000-8000-000000000001")
_REPOSITORY = BackupRepository(id="c4647159-0000-4000-8000-000000000002")


@pytest.mark.parametrize(
    ("call", "named"),
    [
        (lambda vbo: vbo.start_job(Organization(id=ORG)), "job must be an id or a Job, got Organization"),
        (lambda vbo: vbo.stop_job(_SESSION), "job must be an id or a Job, got JobSession"),
        (lambda vbo: vbo.disable_job(_REPOSITORY), "job must be an id or a Job, got BackupRepository"),
        (lambda vbo: vbo.job_sessions(Organization(id=ORG)), "job must be an id or a Job, got Organization"),
        (
            lambda vbo: vbo.organization_jobs(Job(id=JOB)),
            "organization must be an id or an Organization, got Job",
        ),
        (lambda vbo: vbo.start_job(Job(id=None)), "job must be a string, got NoneType"),  # type: ignore[arg-type]
        (lambda vbo: vbo.job("a" * 70_000), "job_id is too long: 70,000 characters, at most 1,024"),
    ],
    ids=[
        "start-org",
        "stop-session",
        "disable-repository",
        "sessions-org",
        "jobs-of-a-job",
        "id-none",
        "long",
    ],
)
async def test_a_model_of_another_kind_or_an_impossible_id_is_refused_before_any_request(
    call: Callable[[VBOClient], Awaitable[Any]], named: str
) -> None:
    """Any model with an id passed for a job was taken as one: ``start_job(organization)`` posted
    to ``/Jobs/{organization id}/start``, ``job_sessions(organization)`` gave ``[]``. An id of
    70,000 characters was a `LinkError` of a URL too long to send (a 502 to a web backend)."""
    sent: list[httpx.Request] = []
    async with _refusing_client(sent) as vbo:
        with pytest.raises(ConfigError) as info:
            await call(vbo)
    assert named in info.value.message
    assert sent == []


async def test_a_sweep_refuses_a_too_long_organization_id_alike_batched_or_not() -> None:
    """Batched, a too long id was an organization the server does not list (`NotFoundError`), a
    request per tenant a URL too long (`LinkError`): both are now the caller's `ConfigError`."""
    from vbo_async.simulator import Simulator, SimulatorConfig, create_app

    simulator = Simulator(SimulatorConfig(seed=3, organizations=3))
    org = simulator.organization_ids()[0]
    errors: dict[tuple[bool, str], VBOError | None] = {}
    for batch in (False, True):
        transport = httpx.ASGITransport(app=create_app(simulator=simulator))
        async with VBOClient(
            "https://vbo.test", username="admin", password="admin", transport=transport
        ) as vbo:
            targets = [
                PollTarget(client=vbo, organization_id="a" * 5000),
                PollTarget(client=vbo, organization_id=org),
            ]
            async for result in poll_jobs(targets, batch=batch):
                errors[(batch, result.target.organization_id)] = result.error
    for batch in (False, True):
        assert errors[(batch, org)] is None
        error = errors[(batch, "a" * 5000)]
        assert isinstance(error, ConfigError), error
        assert "organization is too long: 5,000 characters" in error.message


@pytest.mark.parametrize(
    ("link", "named"),
    [
        (Link(f"/v8/Jobs/{JOB}", "self", None, 5), "not 5"),  # type: ignore[arg-type]
        (CollectionLink("/v8/Jobs", "jobs", None, HealthPolicy), "not <class"),
        (
            ThroughLink(
                Link(f"/v8/BackupRepositories/{JOB}", "backupRepository", None, BackupRepository),
                5,
                "proxy",
                Proxy,
            ),
            "then must be a relation name",
        ),  # type: ignore[arg-type]
        (
            ThroughLink(
                Link(f"/v8/BackupRepositories/{JOB}", "backupRepository", None, int), "proxy", "proxy", Proxy
            ),
            "not <class 'int'>",
        ),
    ],
    ids=["int-target", "policy-target", "int-then", "bad-first-step"],
)
async def test_following_a_link_built_by_hand_to_no_model_is_refused_before_any_request(
    link: Link[Any], named: str
) -> None:
    """A link's target decides what its answer is decoded into: one built by hand with another
    target decoded a job as a `HealthPolicy`, or failed inside the decoder (AttributeError,
    an internal FastPathUnsupported)."""
    sent: list[httpx.Request] = []
    async with _refusing_client(sent) as vbo:
        with pytest.raises(ConfigError) as info:
            await vbo.follow(link)
    assert named in info.value.message
    assert sent == []
    with pytest.raises(ConfigError, match="goes via a Link, got str"):
        ThroughLink("x", "proxy", "proxy", Proxy)  # type: ignore[arg-type]


def test_a_results_links_are_found_by_a_job_id_in_any_case_and_anything_else_is_refused() -> None:
    job = Job(id="AbC-1")
    repository = BackupRepository(id="r")
    result = PollResult(
        target=PollTarget(client=offline_client(), organization_id=ORG),
        jobs=[job],
        follow=("repository",),
        prefetched={("AbC-1", "repository"): repository},
    )
    assert result.resolved(job, "repository") is repository
    assert result.resolved("abc-1", "repository") is repository
    assert result.resolved("ABC-1", "repository") is repository
    assert result.resolved("other", "repository") is None
    for bad, kind in ((None, "NoneType"), (5, "int"), (Job(id=["x"]), "a Job whose id is list")):  # type: ignore[arg-type]
        with pytest.raises(ConfigError, match=f"job must be a Job or a job id, got {kind}"):
            result.resolved(bad, "repository")  # type: ignore[arg-type]


# --- verify=False ---------------------------------------------------------------------------------------


async def test_verify_false_warns_once_per_client(fake: FakeVBO, caplog: pytest.LogCaptureFixture) -> None:
    fake.route("GET", "/v1/Jobs", [])
    caplog.set_level(logging.DEBUG, logger="vbo_async")

    def warnings() -> list[logging.LogRecord]:
        return [
            r for r in caplog.records if r.levelno >= logging.WARNING and "verification" in r.getMessage()
        ]

    async with VBOClient(BASE, username=USERNAME, password=PASSWORD, verify=False, api_version="v1"):
        pass  # the warning comes with the transport the client builds, before any request
    assert len(warnings()) == 1
    (record,) = warnings()
    assert record.name == "vbo_async"
    assert "verify=False" in record.getMessage()
    assert PASSWORD not in record.getMessage()

    second = VBOClient(BASE, username=USERNAME, password=PASSWORD, verify=False, api_version="v1")
    await second.aclose()
    assert len(warnings()) == 2  # once per client, not once per process

    async with VBOClient(
        BASE,
        username=USERNAME,
        password=PASSWORD,
        transport=httpx.MockTransport(fake.handler),
        api_version="v1",
    ) as verified:
        await verified.jobs()
    assert len(warnings()) == 2


@pytest.mark.parametrize(
    "verify", [False, ssl.create_default_context(), "/etc/ssl/certs"], ids=["off", "context", "bundle"]
)
def test_verify_with_a_transport_given_is_a_config_error(fake: FakeVBO, verify: Any) -> None:
    """``verify`` configures the transport the client builds: given with ``transport=`` it was
    ignored in silence (a stricter context not applied; ``verify=False`` logged verification off
    while the transport verified)."""
    with pytest.raises(ConfigError, match="transport= keeps its own TLS settings"):
        VBOClient(
            BASE,
            username=USERNAME,
            password=PASSWORD,
            verify=verify,
            transport=httpx.MockTransport(fake.handler),
        )


# --- bad options ------------------------------------------------------------------------------------------


BAD_OPTIONS: list[tuple[str, dict[str, Any], str]] = [
    ("no scheme", {"base_url": "vbo.test:4443"}, "base_url"),
    ("ftp", {"base_url": "ftp://vbo.test"}, "base_url"),
    ("not a string", {"base_url": 4443}, "base_url"),
    ("None", {"base_url": None}, "base_url"),
    ("credentials", {"base_url": f"https://admin:{PASSWORD}@vbo.test:4443"}, "credentials"),
    ("user only", {"base_url": "https://admin@vbo.test:4443"}, "credentials"),
    ("space", {"base_url": "https://vbo test:4443"}, "base_url"),
    ("control character", {"base_url": "https://vbo.test\x01:4443"}, "base_url"),
    ("bad port", {"base_url": "https://vbo.test:44x3"}, "port"),
    ("port out of range", {"base_url": "https://vbo.test:99999"}, "port"),
    ("no host", {"base_url": "https://:4443"}, "host"),
    ("bad IPv6", {"base_url": "https://[::1:4443"}, "base_url"),
    ("query", {"base_url": "https://vbo.test/?x=1"}, "query"),
    ("dot segments", {"base_url": "https://vbo.test/a/../b"}, "base_url"),
    ("empty username", {"username": ""}, "username"),
    ("username None", {"username": None}, "username"),
    ("password None", {"password": None}, "password"),
    ("password bytes", {"password": PASSWORD.encode()}, "password"),
    ("negative max_concurrency", {"max_concurrency": -1}, "max_concurrency"),
    ("zero max_concurrency", {"max_concurrency": 0}, "max_concurrency"),
    ("bool max_concurrency", {"max_concurrency": True}, "max_concurrency"),
    ("str max_concurrency", {"max_concurrency": "4"}, "max_concurrency"),
    ("zero timeout", {"timeout": 0}, "timeout"),
    ("negative timeout", {"timeout": -1.0}, "timeout"),
    ("NaN timeout", {"timeout": math.nan}, "timeout"),
    ("infinite timeout", {"timeout": math.inf}, "timeout"),  # None is no limit
    ("timeout too large for a float", {"timeout": 10**400}, "timeout"),  # a bare OverflowError per request
    ("timeout too long to show", {"timeout": -(10**5000)}, "timeout"),  # repr() refuses it
    ("str timeout", {"timeout": "30"}, "timeout"),
    ("zero max_response_bytes", {"max_response_bytes": 0}, "max_response_bytes"),
    ("bool max_response_bytes", {"max_response_bytes": True}, "max_response_bytes"),
    ("verify int", {"verify": 42}, "verify"),
    ("verify None", {"verify": None}, "verify"),
    ("verify bytes", {"verify": b"/etc/ssl"}, "verify"),
    ("retry not a policy", {"retry": {"attempts": 3}}, "retry"),
    ("transport not a transport", {"transport": "http://proxy"}, "transport"),
    ("api_version empty", {"api_version": ""}, "api_version"),
    ("api_version two segments", {"api_version": "v1/x"}, "api_version"),
    ("api_version None", {"api_version": None}, "api_version"),
]


@pytest.mark.parametrize(("case", "options", "names"), BAD_OPTIONS, ids=[case for case, _, _ in BAD_OPTIONS])
def test_bad_options_are_config_errors_without_the_password(
    case: str, options: dict[str, Any], names: str
) -> None:
    kwargs: dict[str, Any] = {"base_url": BASE, "username": USERNAME, "password": PASSWORD, **options}
    base_url = kwargs.pop("base_url")
    with pytest.raises(ConfigError) as info:
        VBOClient(base_url, **kwargs)
    error = info.value
    assert isinstance(error, ValueError)
    assert isinstance(error, VBOError)
    assert names in str(error)
    assert PASSWORD not in str(error)
    assert PASSWORD not in repr(error)
    assert error.__cause__ is None or PASSWORD not in str(error.__cause__)


@pytest.mark.parametrize("fmt", ["no fields", "%(message)", "{message}", 42, b"%(message)s"])
def test_configure_logging_refuses_a_bad_format_with_a_config_error(fmt: Any) -> None:
    """A format `logging.Formatter` refuses is a `ConfigError` naming ``fmt`` (not logging's bare
    ValueError), and the ``vbo_async`` logger is left as it was."""
    logger = logging.getLogger("vbo_async")
    before = (list(logger.handlers), logger.level)
    with pytest.raises(ConfigError, match="fmt"):
        configure_logging("debug", fmt=fmt)
    assert (list(logger.handlers), logger.level) == before


@pytest.mark.parametrize("stream", ["stderr", b"log", 2, Path("vbo.log")])
def test_configure_logging_refuses_a_stream_that_cannot_be_written(stream: Any) -> None:
    """A stream without ``write`` (a name, a path, a file descriptor) is a `ConfigError` naming
    ``stream`` at once, not a "--- Logging error ---" traceback on stderr for every record later;
    the ``vbo_async`` logger is left as it was."""
    logger = logging.getLogger("vbo_async")
    before = (list(logger.handlers), logger.level)
    with pytest.raises(ConfigError, match="stream"):
        configure_logging("debug", stream=stream)
    assert (list(logger.handlers), logger.level) == before


@pytest.fixture
def library_logger() -> Iterator[logging.Logger]:
    """The ``vbo_async`` logger, put back as it was after the test: its handlers, its level, and
    what `configure_logging` kept on it."""
    logger = logging.getLogger("vbo_async")
    handlers, level = list(logger.handlers), logger.level
    kept = vars(logger).pop("_vbo_async_levels", None)  # each test from a logger never configured
    try:
        yield logger
    finally:
        for handler in list(logger.handlers):
            if handler not in handlers:
                logger.removeHandler(handler)
        logger.setLevel(level)
        vars(logger).pop("_vbo_async_levels", None)
        if kept is not None:
            vars(logger)["_vbo_async_levels"] = kept


def test_configure_logging_called_again_writes_each_record_once_per_stream(
    library_logger: logging.Logger,
) -> None:
    """Called twice for one stream (a notebook cell run again, an application and its framework
    both setting it up), each record was written twice; the second call replaces the first's
    handler there. Another stream gets its own handler, and the application's handlers stay."""
    logger = library_logger
    before = len(logger.handlers)
    first, second, own = io.StringIO(), io.StringIO(), logging.StreamHandler(io.StringIO())
    logger.addHandler(own)
    configure_logging("info", stream=first, fmt="%(message)s")
    configure_logging("info", stream=first, fmt="%(message)s")
    configure_logging("info", stream=second, fmt="%(message)s")
    logger.info("one record")
    assert first.getvalue() == "one record\n"
    assert second.getvalue() == "one record\n"
    assert own in logger.handlers
    assert len(logger.handlers) == before + 3


@pytest.mark.parametrize("order", ["quiet first", "verbose first"])
def test_configure_logging_keeps_each_stream_at_its_own_level(
    library_logger: logging.Logger, order: str
) -> None:
    """The docstring sends each stream the records at its level and above: the level was set on
    the shared logger only, so the last call decided every stream's (a warnings-only stream got
    every request's DEBUG line; called the other way round, the debug stream got none)."""
    logger = library_logger
    quiet, verbose = io.StringIO(), io.StringIO()
    calls = [("warning", quiet), ("debug", verbose)]
    for level, stream in calls if order == "quiet first" else calls[::-1]:
        configure_logging(level, stream=stream, fmt="%(levelname)s %(message)s")
    logger.debug("a request")
    logger.warning("plain http")
    assert quiet.getvalue() == "WARNING plain http\n"
    assert verbose.getvalue() == "DEBUG a request\nWARNING plain http\n"
    assert logger.level == logging.DEBUG


def test_configure_logging_after_its_handler_was_removed_sets_the_level_anew(
    library_logger: logging.Logger,
) -> None:
    """``configure_logging("debug")``, its handler removed as the docstring says, then
    ``configure_logging("warning")``: the DEBUG it had set was taken for the application's, and
    kept (every request's line formatted, and sent on to the root logger's handlers)."""
    logger = library_logger
    logger.setLevel(logging.NOTSET)
    handler = configure_logging("debug", stream=io.StringIO())
    assert logger.level == logging.DEBUG
    logger.removeHandler(handler)
    configure_logging("warning", stream=io.StringIO())
    assert logger.level == logging.WARNING
    logger.setLevel(logging.INFO)  # the application's own, after the calls: kept as such
    configure_logging("error", stream=io.StringIO())
    assert logger.level == logging.INFO


def test_configure_logging_never_raises_the_level_the_application_gave_the_logger(
    library_logger: logging.Logger,
) -> None:
    """An application sending the ``vbo_async`` logger's INFO records to its own log, then
    asking for warnings on stderr: the logger's level was set to WARNING, and its own handler
    silently lost the INFO records."""
    logger = library_logger
    mine, warnings_only = io.StringIO(), io.StringIO()
    logger.addHandler(logging.StreamHandler(mine))
    logger.setLevel(logging.INFO)
    configure_logging("warning", stream=warnings_only, fmt="%(message)s")
    configure_logging("error", stream=io.StringIO())  # a second stream: the level kept still
    logger.info("a job action")
    logger.debug("a request")
    assert mine.getvalue() == "a job action\n"
    assert warnings_only.getvalue() == ""
    assert logger.level == logging.INFO


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("https://vb365.example.com:4443/v8",
         "without it ('https://vb365.example.com:4443') and, to use that version only, "
         "api_version='v8'"),
        ("https://vb365.example.com:4443/v6/", "without it ('https://vb365.example.com:4443') and"),
        ("https://proxy.example.com/vb365/V7", "without it ('https://proxy.example.com/vb365') and"),
        ("https://proxy.example.com/%76%38", "/v8: give"),
    ],
)  # fmt: skip
def test_a_base_url_ending_in_a_version_segment_is_a_config_error_saying_what_to_give(
    url: str, said: str
) -> None:
    """A URL copied from the server's Swagger page was kept as a path prefix: every request went
    to ``/v8/v8/...`` and an auto client said the server "serves none of the API versions"."""
    with pytest.raises(ConfigError, match="ends in the API version segment") as caught:
        VBOClient(url, username=USERNAME, password=PASSWORD)
    assert said in str(caught.value)
    assert "api_version='v" in str(caught.value)


@pytest.mark.parametrize(
    "url",
    ["https://vb365.example.com/vault", "https://vb365.example.com/v8x/", "https://gw.example.com/backup/v2"],
)
def test_a_base_url_ending_in_a_segment_like_a_version_is_taken(url: str) -> None:
    """A segment that names no API version the client speaks is a path prefix, as before (a
    reverse proxy's own ``/v2``)."""
    vbo = VBOClient(url, username=USERNAME, password=PASSWORD)
    # What names the server before its version is known (an auto client's api_root is None then).
    assert (vbo.base_url, vbo.api_root) == (url.rstrip("/"), None)


def test_a_missing_ca_bundle_is_a_config_error(tmp_path: Path) -> None:
    missing = tmp_path / "missing-ca.pem"
    with pytest.raises(ConfigError, match="CA bundle") as info:
        VBOClient(BASE, username=USERNAME, password=PASSWORD, verify=missing, api_version="v1")
    assert str(missing) in str(info.value)
    assert PASSWORD not in str(info.value)


def test_a_file_that_is_not_a_ca_bundle_is_a_config_error(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.pem"
    bogus.write_text("not a certificate\n")
    with pytest.raises(ConfigError, match="CA bundle"):
        VBOClient(BASE, username=USERNAME, password=PASSWORD, verify=bogus, api_version="v1")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_ca_bundle_that_is_a_named_pipe_is_a_config_error_not_a_hang(tmp_path: Path) -> None:
    """OpenSSL opens a CA bundle to read it: a named pipe with no writer held the client's
    constructor (and every CLI command naming it) for good."""
    pipe = tmp_path / "ca.pem"
    os.mkfifo(pipe)
    outcome: list[BaseException | None] = []

    def construct() -> None:
        try:
            VBOClient(BASE, username=USERNAME, password=PASSWORD, verify=pipe, api_version="v1")
        except BaseException as exc:
            outcome.append(exc)
        else:  # pragma: no cover - the failure asserted below
            outcome.append(None)

    worker = threading.Thread(target=construct, daemon=True)
    worker.start()
    worker.join(30)
    if worker.is_alive():  # unblock the hung open, so the thread ends with the test
        os.close(os.open(pipe, os.O_WRONLY | os.O_NONBLOCK))
        worker.join(30)
        pytest.fail("the client waited for a writer of the CA bundle pipe")
    (error,) = outcome
    assert isinstance(error, ConfigError)
    assert f"cannot load the CA bundle {str(pipe)!r}: a named pipe, not a file" in str(error)


def test_a_retry_policy_is_validated_where_it_is_built() -> None:
    with pytest.raises(ValueError, match="attempts"):
        RetryPolicy(attempts=0)


async def test_a_client_dropped_open_after_requests_says_so(seed_job: dict[str, Any]) -> None:
    """A client that sent requests and was never closed warns (ResourceWarning) when collected,
    naming itself: aiohttp's "Unclosed connector" named neither the client nor what to do, and the
    token stayed logged in. One closed, one never used and one whose options were refused do not."""
    fake = serving(FakeVBO(), seed_job)
    clients = [client_for(fake) for _ in range(3)]
    for vbo in clients[:2]:
        await vbo.job(JOB)
    await clients[1].aclose()
    with pytest.raises(ConfigError):
        VBOClient(BASE, username="u", password="p", max_concurrency=0)
    clients.clear()
    del vbo
    with pytest.warns(ResourceWarning) as caught:
        gc.collect()
    assert [str(warning.message) for warning in caught] == [
        f"<VBOClient {BASE}/v1 user={USERNAME!r} open> was never closed: use 'async with "
        "VBOClient(...) as vbo' or 'await vbo.aclose()' (closing logs its token out on v7+ and "
        "closes its connections)"
    ]
