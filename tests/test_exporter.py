"""``vbo-async serve``: the metrics, the sweep loop, ``/metrics`` and ``/healthz``, and the command.

The servers are simulators behind `httpx.ASGITransport`, wrapped by `Wire` (the transport seam)
so a test can take one down, hold its organization listing at a gate, fail chosen paths or
rewrite answers (hostile names, a status from a newer server). The exposition is read back with
prometheus_client's own text parser.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import datetime as dt
import email.utils
import gc
import gzip
import json
import os
import random
import re
import select
import shutil
import signal
import socket
import string
import subprocess
import threading
import time
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from vbo_async import HealthPolicy, HealthState, VBOClient
from vbo_async._cli import _exporter as _exporter_module
from vbo_async._cli import _exposition as _exposition_module
from vbo_async._cli import _serve, _sweeps
from vbo_async._cli._exit import CLIError, Outcome
from vbo_async._cli._exporter import Exporter
from vbo_async._cli._exposition import CONTENT_TYPE, EMPTY, Exposition, crc32_combine, render
from vbo_async._cli._logging import LOG_CHARS, configured_logging
from vbo_async._cli._metrics import ERROR_KINDS, JOB_STATUSES, METRICS, PREFIX, SELF_PREFIX
from vbo_async._cli._reload import load
from vbo_async._cli._secrets import Passwords
from vbo_async._cli._sweeps import ServerSpec
from vbo_async._cli._threads import DaemonThreads, NoThread
from vbo_async._printable import printable_lines
from vbo_async.simulator import Simulator, SimulatorConfig, create_app

from .conftest import FAST, closed_port, release, serve, throttling_app
from .test_check import REFUSING_THREADS
from .test_cli import HANG_GUARD, child_environment, error_line, reaped, run, serve_command, write_targets
from .test_cli_install import python

SPECS = {spec.name.removesuffix("_total") if spec.type == "counter" else spec.name: spec for spec in METRICS}
SERVER_WIDE = {PREFIX + name for name in ("up", "sweep_duration_seconds", "last_sweep_timestamp_seconds")}
SERVER_WIDE.add(PREFIX + "sweep_errors")
LINTED = {PREFIX + "license_total", PREFIX + "job_last_session_retry_count"}
"""Names of the contract that promtool's lint dislikes (a gauge ending in _total, _count)."""
HOSTILE = 'Zürich "daily"\nline two \\ back\\slash ✓ 東京 \U0001f600'


# --- simulated servers behind the transport seam -----------------------------------------------------


class Wire(httpx.AsyncBaseTransport):
    """A simulator app that a test can take ``down``, hold at a ``gate`` (the organization
    listing waits for it), make answer 500 on paths containing one of ``failing``, or whose JSON
    answers ``edit`` rewrites. ``requests`` counts what reached it. Every answer carries a
    ``Date``, as a real server's does: the real time, plus ``skew``."""

    def __init__(self, app: Any) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.skew = dt.timedelta(0)
        self.down = False
        self.gate: asyncio.Event | None = None
        self.failing: set[str] = set()
        self.edit: Callable[[str, Any], Any] | None = None
        self.requests: list[tuple[float, str]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.lower()
        self.requests.append((time.time(), f"{request.method} {path}"))
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        if self.gate is not None and path.endswith("/organizations"):
            await self.gate.wait()
        if any(part in path for part in self.failing):
            return self.dated(httpx.Response(500, json={"message": "simulated failure"}))
        response = await self.inner.handle_async_request(request)
        if self.edit is None or request.method != "GET" or response.status_code != 200:
            return self.dated(response)
        data = json.loads(await response.aread())
        return self.dated(httpx.Response(200, json=self.edit(path, data)))

    def dated(self, response: httpx.Response) -> httpx.Response:
        when = dt.datetime.now(dt.UTC) + self.skew
        response.headers["Date"] = email.utils.format_datetime(when, usegmt=True)
        return response

    def listings(self) -> list[float]:
        """When the organizations were listed (one per sweep of a server that is up)."""
        return [when for when, what in self.requests if what.endswith("/organizations")]


class Server:
    """A simulated server, its `Wire` and a `VBOClient` talking to it."""

    def __init__(self, name: str, versions: tuple[str, ...], *, seed: int, organizations: int = 3) -> None:
        config = SimulatorConfig(
            seed=seed,
            organizations=organizations,
            jobs_per_organization=(2, 3),
            sessions_per_job=(4, 12),
            api_versions=versions,
        )
        app = create_app(config)
        self.name = name
        self.simulator: Simulator = app.state.simulator
        self.wire = Wire(app)
        self.client = VBOClient(
            f"https://{name}.test:4443", username="admin", password="admin", transport=self.wire, retry=FAST
        )
        self.spec = ServerSpec(name=name, client=self.client)


@pytest.fixture
async def servers() -> AsyncIterator[dict[str, Server]]:
    """``v8`` and ``v1``, two servers of different API versions with different tenants."""
    made = {"v8": Server("v8", ("v8",), seed=7), "v1": Server("v1", ("v1",), seed=8)}
    yield made
    for server in made.values():
        await server.client.aclose()


def exporter_of(*servers: Server, interval: float = 60.0, budget: float | None = None) -> Exporter:
    return Exporter([server.spec for server in servers], interval=interval, budget=budget)


# --- reading the exposition -----------------------------------------------------------------------


def families(body: bytes) -> dict[str, Any]:
    return {family.name: family for family in text_string_to_metric_families(body.decode("utf-8"))}


def samples(body: bytes, name: str, **labels: str) -> list[Sample]:
    """The samples named ``name`` (a counter's end in ``_total``, its family's name does not)
    whose labels include ``labels``."""
    found = families(body)
    family = found.get(name) or found.get(name.removesuffix("_total"))
    if family is None:
        return []
    return [
        s for s in family.samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    ]


def value(body: bytes, name: str, **labels: str) -> float:
    (found,) = samples(body, name, **labels)
    return float(found.value)


def jobs_of(body: bytes, server: str) -> set[str]:
    return {s.labels["job_id"] for s in samples(body, PREFIX + "job_enabled", server=server)}


async def swept(exporter: Exporter) -> bytes:
    await exporter.sweep()
    return exporter.body(gzip=False)


# --- the metrics ------------------------------------------------------------------------------------


async def test_every_metric_has_its_type_and_labels_and_every_series_its_server(
    servers: dict[str, Server],
) -> None:
    down = Server("down", ("v8",), seed=9)
    down.wire.down = True
    try:
        body = await swept(exporter_of(servers["v8"], servers["v1"], down))
    finally:
        await down.client.aclose()
    found = families(body)
    ours = {name: family for name, family in found.items() if name.startswith(PREFIX)}
    assert set(ours) == set(SPECS), "every metric of the table, and no other, is exported"
    for name, family in ours.items():
        spec = SPECS[name]
        assert family.type == spec.type, name
        assert family.documentation == spec.help, name
        for sample in family.samples:
            assert set(sample.labels) == {"server", *spec.labels}, (name, sample.labels)
            assert sample.labels["server"] in {"v8", "v1", "down"}
    others = {name for name in found if not name.startswith(PREFIX)}
    assert others, "the exporter's own metrics follow"
    assert all(name.startswith((SELF_PREFIX, "process_", "python_")) for name in others), others


async def test_job_series_match_what_the_servers_list(servers: dict[str, Server]) -> None:
    body = await swept(exporter_of(servers["v8"], servers["v1"]))
    for name in ("v8", "v1"):
        server = servers[name]
        jobs = await server.client.jobs()
        assert jobs_of(body, name) == {job.id for job in jobs}
        organizations = {o.id: o.name for o in await server.client.organizations()}
        for job in jobs:
            labels = {"server": name, "job_id": job.id}
            (enabled,) = samples(body, PREFIX + "job_enabled", **labels)
            assert enabled.value == float(bool(job.is_enabled))
            assert enabled.labels["job_name"] == job.name
            assert enabled.labels["organization_id"] == job.organization_id
            assert enabled.labels["organization"] == organizations[job.organization_id or ""]
            if job.last_run is not None:
                stamp = value(body, PREFIX + "job_last_run_timestamp_seconds", **labels)
                assert stamp == pytest.approx(job.last_run.timestamp())
        health = await server.client.job_health(jobs[0])
        assert value(body, PREFIX + "job_health", server=name, job_id=jobs[0].id) == health.state.value
        assert value(body, PREFIX + "up", server=name) == 1
    # v8 knows sessions' transferred bytes, v1 does not: absent there, never a fake 0.
    assert samples(body, PREFIX + "job_last_session_transferred_bytes", server="v8")
    assert not samples(body, PREFIX + "job_last_session_transferred_bytes", server="v1")
    assert samples(body, PREFIX + "job_last_session_duration_seconds", server="v1")


def blanking(job_id: str, key: str) -> Callable[[str, Any], Any]:
    """A wire edit giving the job ``job_id`` an empty ``key`` (``""``) in every listing of it."""

    def edit(path: str, data: Any) -> Any:
        items = data.get("results", []) if isinstance(data, dict) else data
        for item in items if isinstance(items, list) else []:
            if item.get("id") == job_id and key in item:
                item[key] = ""
        return data

    return edit


@pytest.mark.parametrize("version", ["v8", "v1"])
async def test_a_job_with_an_empty_name_is_named_by_its_id(servers: dict[str, Server], version: str) -> None:
    """Prometheus takes a label whose value is empty for a label the series does not have: a job
    the server names ``""`` had job series without ``job_name`` (its alerts named nothing). Its id
    stands in, as an organization's or a repository's does for an empty name."""
    server = servers[version]
    nameless = (await server.client.jobs())[0].id
    server.wire.edit = blanking(nameless, "name")
    body = await swept(exporter_of(server))
    (enabled,) = samples(body, PREFIX + "job_enabled", server=version, job_id=nameless)
    assert enabled.labels["job_name"] == nameless
    assert all(s.labels["job_name"] for s in samples(body, PREFIX + "job_enabled"))


async def test_the_last_status_is_a_state_set_and_a_new_status_gets_its_own_series(
    servers: dict[str, Server],
) -> None:
    server = servers["v8"]
    odd = (await server.client.jobs())[0].id

    def newer_server(path: str, data: Any) -> Any:
        for item in data.get("results", []) if isinstance(data, dict) else []:
            if item.get("id") == odd:
                item["lastStatus"] = "Paused"
        return data

    server.wire.edit = newer_server
    body = await swept(exporter_of(server))
    jobs = {job.id: job for job in await server.client.jobs()}
    for job_id, job in jobs.items():
        states = {
            s.labels["status"]: s.value for s in samples(body, PREFIX + "job_last_status", job_id=job_id)
        }
        assert sum(states.values()) == 1
        if job_id == odd:
            assert states == {**dict.fromkeys(JOB_STATUSES, 0.0), "Paused": 1.0}
        else:
            assert set(states) == set(JOB_STATUSES)
            assert states[str(job.last_status)] == 1


@pytest.mark.parametrize(
    ("last_run", "next_run", "other_next"),
    [
        ("0001-01-01T00:00:00", "1601-01-01T00:00:00+02:00", "1900-01-01T00:00:00Z"),
        ("9999-12-31T23:59:59.9999999Z", "9999-12-31T23:59:59.9999999", "9999-12-31T23:59:59.9999999-05:00"),
    ],
    ids=["MinValue", "MaxValue"],
)
@pytest.mark.parametrize("version", ["v8", "v1"])
async def test_a_time_the_server_says_never_is_no_timestamp(
    servers: dict[str, Server], version: str, last_run: str, next_run: str, other_next: str
) -> None:
    """.NET's "never", 0001-01-01 (``DateTime.MinValue``), was exported as a Unix time of
    -62135596800 s, 1,969 years ago, which a dashboard shows and an alert on the age of a run
    reads as a real time (Windows' 1601 and SQL Server's 1900 likewise); such a time, any up to
    Unix time 0, has no sample, as a job without one. So has its ``DateTime.MaxValue``
    (9999-12-31T23:59:59.9999999), the next run of a job that has none: it was 253402300800 s,
    a next run 7,974 years ahead."""
    server = servers[version]
    jobs = await server.client.jobs()
    never, other = jobs[0].id, jobs[1]

    def dated_never(path: str, data: Any) -> Any:
        items = data.get("results", []) if isinstance(data, dict) else data
        for item in items if isinstance(items, list) else []:
            if item.get("id") == never:
                item["lastRun"] = last_run
                item["nextRun"] = next_run
            elif item.get("id") == other.id:
                item["nextRun"] = other_next
        return data

    server.wire.edit = dated_never
    body = await swept(exporter_of(server))
    assert samples(body, PREFIX + "job_enabled", server=version, job_id=never)
    for name in ("job_last_run_timestamp_seconds", "job_next_run_timestamp_seconds"):
        assert samples(body, PREFIX + name, server=version, job_id=never) == []
    assert samples(body, PREFIX + "job_next_run_timestamp_seconds", server=version, job_id=other.id) == []
    assert all(s.value > 0 for s in samples(body, PREFIX + "job_last_run_timestamp_seconds"))
    assert other.last_run is not None
    stamp = value(body, PREFIX + "job_last_run_timestamp_seconds", server=version, job_id=other.id)
    assert stamp == pytest.approx(other.last_run.timestamp())


@pytest.mark.parametrize(
    ("key", "never"),
    [("endTime", "9999-12-31T23:59:59.9999999"), ("creationTime", "0001-01-01T00:00:00Z")],
    ids=["ended at MaxValue", "created at MinValue"],
)
@pytest.mark.parametrize("version", ["v8", "v1"])
async def test_a_session_time_that_never_was_gives_no_duration(
    servers: dict[str, Server], version: str, key: str, never: str
) -> None:
    """A run's duration is its end less its start: one of them .NET's "never" (its MaxValue end,
    its MinValue start) made a duration of some 250 or 63 billion seconds, centuries to a
    dashboard. Such a time is no time: the run has no duration sample, its other series stay."""
    server = servers[version]

    def dated_never(path: str, data: Any) -> Any:
        items = data.get("results", []) if isinstance(data, dict) else data
        if "jobsessions" in path:
            for item in items if isinstance(items, list) else []:
                if item.get("endTime") is not None:
                    item[key] = never
        return data

    server.wire.edit = dated_never
    body = await swept(exporter_of(server))
    assert samples(body, PREFIX + "job_health", server=version)
    if version != "v1":  # (v1 sessions carry no retry count)
        assert samples(body, PREFIX + "job_last_session_retry_count", server=version)
    assert samples(body, PREFIX + "job_last_session_duration_seconds", server=version) == []


@pytest.mark.parametrize("version", ["v8", "v1"])
async def test_a_job_whose_last_status_is_empty_has_no_state_set(
    servers: dict[str, Server], version: str
) -> None:
    """Prometheus takes a label whose value is empty for a label the series does not have: a job
    whose ``lastStatus`` is ``""`` had a ``status=""`` series at 1, read as one without
    ``status``, beside the eight known ones at 0 (the state set's sum 0, not 1). An empty status
    is no status: such a job has none of these series, as a job without ``lastStatus``."""
    server = servers[version]
    blank = (await server.client.jobs())[0].id
    server.wire.edit = blanking(blank, "lastStatus")
    body = await swept(exporter_of(server))
    assert samples(body, PREFIX + "job_enabled", server=version, job_id=blank)
    assert samples(body, PREFIX + "job_last_status", server=version, job_id=blank) == []
    assert all(s.labels["status"] for s in samples(body, PREFIX + "job_last_status"))
    others = {s.labels["job_id"] for s in samples(body, PREFIX + "job_last_status", server=version)}
    assert others == jobs_of(body, version) - {blank}


async def test_hostile_names_are_escaped_and_read_back_unchanged(servers: dict[str, Server]) -> None:
    server = servers["v8"]

    def hostile(path: str, data: Any) -> Any:
        items = data.get("results", []) if isinstance(data, dict) else data
        for item in items if isinstance(items, list) else []:
            if "name" in item:
                item["name"] = HOSTILE + item["name"][-4:]
            if "hostName" in item:
                item["hostName"] = HOSTILE
        return data

    server.wire.edit = hostile
    body = await swept(exporter_of(server))
    enabled = samples(body, PREFIX + "job_enabled")
    assert enabled
    assert all(s.labels["job_name"].startswith(HOSTILE) for s in enabled)
    assert all(s.labels["organization"].startswith(HOSTILE) for s in enabled)
    assert {s.labels["proxy_name"] for s in samples(body, PREFIX + "proxy_up")} == {HOSTILE}
    assert all(
        s.labels["repository_name"].startswith(HOSTILE)
        for s in samples(body, PREFIX + "repository_free_bytes")
    )
    if shutil.which("promtool"):  # Prometheus' own parser agrees; it only lints two contract names
        checked = await asyncio.to_thread(
            subprocess.run,
            ["promtool", "check", "metrics"],
            input=body,
            capture_output=True,
            timeout=HANG_GUARD,
            check=False,
        )
        assert checked.returncode in (0, 3), checked
        complaints = (checked.stdout + checked.stderr).decode().strip().splitlines()
        assert [line.split()[0] for line in complaints] == sorted(LINTED), complaints


async def promtool_complaints(body: bytes) -> list[str]:
    """The metric names ``promtool check metrics`` complains of (a skip without promtool)."""
    if not shutil.which("promtool"):
        pytest.skip("promtool is not installed (Debian: apt-get install prometheus)")
    checked = await asyncio.to_thread(
        subprocess.run,
        ["promtool", "check", "metrics"],
        input=body,
        capture_output=True,
        timeout=HANG_GUARD,
        check=False,
    )
    assert checked.returncode in (0, 3), checked
    return [line.split()[0] for line in (checked.stdout + checked.stderr).decode().strip().splitlines()]


@pytest.mark.parametrize("version", ["v8", "v1"])
async def test_a_job_listed_twice_is_one_series_of_its_first_listing(
    servers: dict[str, Server], version: str
) -> None:
    """A tenant's listing repeats a job (pages shifted by offset), the repeat disabled meanwhile,
    renamed and its id in capitals: one series per metric for the job, every value that of the
    first listing (its health too, which was the repeat's: judged per job, filed by id), and
    Prometheus' own parser finds nothing else to say."""
    server = servers[version]
    plain = await swept(exporter_of(server))
    first = samples(plain, PREFIX + "job_enabled")[0].labels
    job_id = first["job_id"]

    def repeated(path: str, data: Any) -> Any:
        if path.lower().endswith("/jobs"):
            items = data["results"] if isinstance(data, dict) else data
            items += [
                {**item, "id": job_id.upper(), "name": "renamed", "isEnabled": False}
                for item in list(items)
                if item["id"] == job_id
            ]
        return data

    server.wire.edit = repeated
    body = await swept(exporter_of(server))
    for family in families(body).values():
        keys = [(s.name, tuple(sorted(s.labels.items()))) for s in family.samples]
        assert len(keys) == len(set(keys)), family.name
    for name in ("job_enabled", "job_health", "job_last_run_timestamp_seconds"):
        assert [(s.labels, s.value) for s in samples(body, PREFIX + name, job_id=job_id)] == [
            (s.labels, s.value) for s in samples(plain, PREFIX + name, job_id=job_id)
        ]
    assert not samples(body, PREFIX + "job_enabled", job_id=job_id.upper())
    assert not samples(body, PREFIX + "job_enabled", job_name="renamed")
    assert await promtool_complaints(body) == await promtool_complaints(plain)  # a lint, no error


@pytest.mark.parametrize("spelled", [str, str.upper])
async def test_a_repository_or_proxy_listed_twice_is_one_series_of_its_first_listing(
    servers: dict[str, Server], spelled: Callable[[str], str]
) -> None:
    """A listing that repeats a repository or a proxy, the repeat renamed and its values changed
    (and its id in capitals, or not): one series each, the first listing's, as for a job (the
    repeat's values replaced the first's, and an id in capitals made a second series, counted
    twice by a sum of capacities)."""
    server = servers["v8"]
    plain = await swept(exporter_of(server))

    def repeated(path: str, data: Any) -> Any:
        if path.lower().endswith(("/backuprepositories", "/proxies")):
            items = data["results"] if isinstance(data, dict) else data
            items.append({**items[0], "id": spelled(items[0]["id"]), "name": "again", "hostName": "again"})
            for key in ("freeSpaceBytes", "freeSpace", "cpuUsagePercent"):
                if key in items[-1]:
                    items[-1][key] = 0
        return data

    server.wire.edit = repeated
    body = await swept(exporter_of(server))
    for name in ("repository_capacity_bytes", "repository_free_bytes", "proxy_up", "proxy_cpu_usage_percent"):
        assert [(s.labels, s.value) for s in samples(body, PREFIX + name)] == [
            (s.labels, s.value) for s in samples(plain, PREFIX + name)
        ], name
    assert await promtool_complaints(body) == await promtool_complaints(plain)


async def test_a_repository_or_proxy_that_cannot_be_decoded_loses_only_its_own_series(
    servers: dict[str, Server],
) -> None:
    """One repository whose ``capacityBytes`` and one proxy whose ``cpuUsagePercent`` no model
    field holds: every repository and proxy series of the server was absent (the listing failed
    whole), so VB365ProxyOffline and the repository alerts could fire for none of them. Now the
    others are published and each bad one counts as an error of its kind."""
    server = servers["v8"]
    plain = await swept(exporter_of(server))
    refused: dict[str, str] = {}

    def one_bad(path: str, data: Any) -> Any:
        for suffix, key in (("/backuprepositories", "capacityBytes"), ("/proxies", "cpuUsagePercent")):
            if path.lower().endswith(suffix):
                items = data["results"] if isinstance(data, dict) else data
                items[0][key] = "a lot"
                refused[suffix] = items[0]["id"]
        return data

    server.wire.edit = one_bad
    exporter = exporter_of(server)
    body = await swept(exporter)
    assert set(refused) == {"/backuprepositories", "/proxies"}
    for name, label, suffix in (
        ("repository_free_bytes", "repository_id", "/backuprepositories"),
        ("proxy_up", "proxy_id", "/proxies"),
    ):
        before = {s.labels[label]: s.value for s in samples(plain, PREFIX + name)}
        assert len(before) >= 2, name
        del before[refused[suffix]]
        assert {s.labels[label]: s.value for s in samples(body, PREFIX + name)} == before, name
    counted = {s.labels["kind"]: s.value for s in samples(body, PREFIX + "sweep_errors_total", server="v8")}
    assert (counted["repositories"], counted["proxies"]) == (1.0, 1.0)
    assert value(body, PREFIX + "up", server="v8") == 1

    def two_without_id(path: str, data: Any) -> Any:
        if path.lower().endswith("/proxies"):
            for item in (data["results"] if isinstance(data, dict) else data)[:2]:
                item["id"], item["cpuUsagePercent"] = None, "busy"
        return data

    server.wire.edit = two_without_id  # each counted, not one for every item without an id
    body = await swept(exporter_of(server))
    assert value(body, PREFIX + "sweep_errors_total", server="v8", kind="proxies") == 2.0


async def test_megabyte_names_give_bounded_labels_and_exposition(servers: dict[str, Server]) -> None:
    """A server naming every tenant, job, repository and proxy with a megabyte of text deflate
    cannot shorten made the exporter keep each name in every series that carries it (a job's 16,
    each too far from the last for deflate to refer back): 19 MB of names made it hold 202 MB
    from one sweep to the next, for as long as it ran. A label value is now at most
    `MAX_LABEL_LENGTH` characters, values cut alike kept apart by a digest."""
    server = servers["v8"]
    rnd = random.Random(5)
    huge = "".join(rnd.choices(string.ascii_letters + string.digits, k=1_000_000))
    sent = 0

    def megabyte_names(path: str, data: Any) -> Any:
        nonlocal sent
        items = data.get("results", []) if isinstance(data, dict) else data
        for item in items if isinstance(items, list) else []:
            for key in ("name", "hostName"):
                if isinstance(item.get(key), str):
                    item[key] = huge + item[key]  # alike for a megabyte, then each its own
                    sent += len(item[key])
        return data

    server.wire.edit = megabyte_names
    exporter = exporter_of(server)
    await server.client.organizations()  # the client's lasting state, before measuring
    gc.collect()
    tracemalloc.start()
    try:
        await exporter.sweep()
        gc.collect()
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sent > 10_000_000
    assert held < 2_000_000, (held, sent)
    assert exporter.exposition.size < 2_000_000
    body = exporter.body(gzip=False)
    enabled = samples(body, PREFIX + "job_enabled", server="v8")
    jobs = {job.id: job for job in await server.client.jobs()}
    assert {s.labels["job_id"] for s in enabled} == set(jobs)
    names = {s.labels["job_name"] for s in enabled}
    assert len(names) == len(jobs)  # one series each: the cut names are told apart
    for found in samples(body, PREFIX + "organization_up") + enabled + samples(body, PREFIX + "proxy_up"):
        for label, text in found.labels.items():
            assert len(text) <= _sweeps.MAX_LABEL_LENGTH, label
    assert all(name.startswith(huge[:1000]) and re.fullmatch("…[0-9a-f]{16}", name[-17:]) for name in names)


async def test_control_characters_a_server_sends_are_written_out_in_label_values(
    servers: dict[str, Server],
) -> None:
    """An escape sequence, a carriage return or a NUL in a tenant's or a job's name went into
    the exposition as it was sent (only backslashes, quotes and line breaks are escaped by the
    format), and from there into alert texts and terminals. They are written out as escapes,
    as tables show them (tabs and line feeds stay as they are: see
    `test_hostile_names_are_escaped_and_read_back_unchanged`)."""
    server = servers["v8"]
    hostile = "\x1b[31mred\r\x00\u202e"

    def hostile_names(path: str, data: Any) -> Any:
        items = data.get("results", []) if isinstance(data, dict) else data
        for item in items if isinstance(items, list) else []:
            if isinstance(item.get("name"), str):
                item["name"] = hostile + item["name"]
        return data

    server.wire.edit = hostile_names
    exporter = exporter_of(server)
    await exporter.sweep()
    body = exporter.body(gzip=False)
    for control in ("\x1b", "\r", "\x00", "\u202e"):
        assert control.encode() not in body
    enabled = samples(body, PREFIX + "job_enabled", server="v8")
    tenants = samples(body, PREFIX + "organization_up", server="v8")
    assert enabled
    assert tenants
    written = "\\x1b[31mred\\r\\x00\\u202e"
    assert all(s.labels["job_name"].startswith(written) for s in enabled)
    assert all(s.labels["organization"].startswith(written) for s in tenants)


@settings(max_examples=300)
@given(st.text())
def test_a_label_value_of_printable_text_is_what_printable_gives(text: str) -> None:
    """`_sweeps._text` skips `printable_lines` for text that ``str.isprintable`` passes: the
    same value as writing it out, cut and encoded alike, for any text."""
    slow = printable_lines(text)
    if not slow.isascii():
        slow = slow.encode("utf-8", "replace").decode("utf-8")
    if len(slow) > _sweeps.MAX_LABEL_LENGTH:
        slow = _sweeps._text(slow)
    assert _sweeps._text(text) == slow


def test_long_label_values_are_cut_and_kept_apart() -> None:
    short = "5f0c8a2e-7d1b-4c3e-9a6f-0b1c2d3e4f50"
    assert _sweeps._text(short) == short
    assert _sweeps._text("x" * _sweeps.MAX_LABEL_LENGTH) == "x" * _sweeps.MAX_LABEL_LENGTH
    first, second = "a" * 5000 + "1", "a" * 5000 + "2"
    cut = {_sweeps._text(first), _sweeps._text(second)}
    assert len(cut) == 2
    assert all(len(value) == _sweeps.MAX_LABEL_LENGTH and value.startswith("a" * 1000) for value in cut)
    assert _sweeps._text(first) == _sweeps._text(first)  # the same series on every sweep
    lone = "\ud800" + "é" * 3000
    assert len(_sweeps._text(lone)) == _sweeps.MAX_LABEL_LENGTH
    _sweeps._text(lone).encode("utf-8")


async def test_v1_has_no_license_storage_or_proxy_load_series(servers: dict[str, Server]) -> None:
    exporter = exporter_of(servers["v1"])
    body = await swept(exporter)
    for name in (
        "license_expiration_timestamp_seconds",
        "license_used",
        "license_total",
        "organization_used_bytes",
        "proxy_cpu_usage_percent",
        "proxy_memory_usage_percent",
    ):
        assert not samples(body, PREFIX + name), name
    assert samples(body, PREFIX + "proxy_up", server="v1")
    assert value(body, PREFIX + "server_info", server="v1", api_version="v1", build="") == 1
    assert exporter.errors["v1"] == dict.fromkeys(ERROR_KINDS, 0), "absent is not an error"


async def test_v8_license_storage_and_proxies(servers: dict[str, Server]) -> None:
    server = servers["v8"]
    body = await swept(exporter_of(server))
    licence = await server.client.license()
    assert licence.license_expires is not None
    assert value(body, PREFIX + "license_expiration_timestamp_seconds") == licence.license_expires.timestamp()
    assert value(body, PREFIX + "license_used") == licence.used_number
    assert value(body, PREFIX + "license_total") == licence.total_number
    for proxy in await server.client.proxies():
        assert value(body, PREFIX + "proxy_cpu_usage_percent", proxy_id=proxy.id) == proxy.cpu_usage_percent
    organization = (await server.client.organizations())[0]
    for row in await server.client.organization_used_repositories(organization):
        assert row.repository_id is not None
        used = value(
            body,
            PREFIX + "organization_used_bytes",
            organization_id=organization.id,
            repository_id=row.repository_id,
        )
        assert used == row.used_space_bytes
    for repository in await server.client.backup_repositories():
        assert (
            value(body, PREFIX + "repository_free_bytes", repository_id=repository.id)
            == repository.free_space
        )


async def test_repository_state_series_follow_the_server(servers: dict[str, Server]) -> None:
    """``repository_out_of_order`` is 1 for a repository a v8 server took out of service and 0
    for the others, and goes back to 0 once it is in order; ``repository_out_of_sync`` follows
    ``isOutOfSync``; ``repository_object_storage_used_bytes`` is there for each object storage
    repository only. A v1 server reports none of them, so none has a series there (never a
    made-up 0)."""
    server = servers["v8"]
    repositories = await server.client.backup_repositories()
    broken = repositories[0].id
    server.simulator.set_out_of_order(broken, "Object storage is unavailable")
    body = await swept(exporter_of(server))
    order = {s.labels["repository_id"]: s.value for s in samples(body, PREFIX + "repository_out_of_order")}
    assert order == {r.id: float(r.id == broken) for r in repositories}
    sync = {s.labels["repository_id"]: s.value for s in samples(body, PREFIX + "repository_out_of_sync")}
    assert sync == {r.id: float(bool(r.is_out_of_sync)) for r in repositories}
    assert all(r.is_out_of_sync is not None for r in repositories)
    used = {
        s.labels["repository_id"]: s.value
        for s in samples(body, PREFIX + "repository_object_storage_used_bytes")
    }
    stores = {r.id: r.object_storage.used_space_bytes for r in repositories if r.object_storage is not None}
    assert used == stores
    assert 0 < len(stores) < len(repositories)  # none for a repository on disk
    server.simulator.set_out_of_order(broken, None)
    again = await swept(exporter_of(server))
    assert value(again, PREFIX + "repository_out_of_order", repository_id=broken) == 0
    v1 = await swept(exporter_of(servers["v1"]))
    assert samples(v1, PREFIX + "repository_free_bytes")
    assert not samples(v1, PREFIX + "repository_out_of_order")
    assert not samples(v1, PREFIX + "repository_out_of_sync")
    assert not samples(v1, PREFIX + "repository_object_storage_used_bytes")


async def test_a_v6_repository_s_object_storage_is_read_from_its_own_resource() -> None:
    """v6/v7 name a repository's object storage by ``objectStorageId``: the sweep reads each
    (``/objectstoragerepositories/{id}``, once) for ``repository_object_storage_used_bytes``;
    one that cannot be read is an ``object_storage`` error and only its series is missing."""
    server = Server("v6", ("v6",), seed=9)
    try:
        repositories = await server.client.backup_repositories()
        stored = [r for r in repositories if r.object_storage_id is not None]
        assert stored
        expected = {r.id: (await server.client.object_storage(r)).used_space_bytes for r in stored}  # type: ignore[union-attr]
        exporter = exporter_of(server)
        body = await swept(exporter)
        used = {
            s.labels["repository_id"]: s.value
            for s in samples(body, PREFIX + "repository_object_storage_used_bytes")
        }
        assert used == expected
        assert exporter.errors["v6"]["object_storage"] == 0

        def unreadable(path: str, data: Any) -> Any:
            if "/objectstoragerepositories/" in path.lower():
                data["usedSpaceBytes"] = "a lot"
            return data

        server.wire.edit = unreadable
        exporter = exporter_of(server)
        body = await swept(exporter)
        assert not samples(body, PREFIX + "repository_object_storage_used_bytes")
        assert exporter.errors["v6"]["object_storage"] == len(stored)
        assert {s.labels["repository_id"] for s in samples(body, PREFIX + "repository_free_bytes")} == {
            r.id for r in repositories
        }
    finally:
        await server.client.aclose()


# --- failures ---------------------------------------------------------------------------------------


async def test_a_server_going_down_drops_its_tenant_series_and_keeps_the_others(
    servers: dict[str, Server],
) -> None:
    exporter = exporter_of(servers["v8"], servers["v1"])
    before = await swept(exporter)
    assert jobs_of(before, "v8")
    servers["v8"].wire.down = True
    after = await swept(exporter)
    assert value(after, PREFIX + "up", server="v8") == 0
    assert value(after, PREFIX + "up", server="v1") == 1
    left = {
        name
        for name, family in families(after).items()
        if any(s.labels.get("server") == "v8" for s in family.samples)
    }
    assert left == SERVER_WIDE, "nothing but up, the sweep's gauges and the error counter"
    assert jobs_of(after, "v1") == jobs_of(before, "v1")
    assert value(after, PREFIX + "sweep_errors_total", server="v8", kind="server") == 1
    servers["v8"].wire.down = False
    again = await swept(exporter)
    assert jobs_of(again, "v8") == jobs_of(before, "v8")
    assert value(again, PREFIX + "sweep_errors_total", server="v8", kind="server") == 1, "a counter"


async def test_sweep_errors_count_each_failed_read(servers: dict[str, Server]) -> None:
    server = servers["v8"]
    tenants = len(await server.client.organizations())
    server.wire.failing = {"/license", "/usedrepositories", "/jobsessions", "/proxies"}
    exporter = exporter_of(server)
    body = await swept(exporter)
    body = await swept(exporter)
    counted = {s.labels["kind"]: s.value for s in samples(body, PREFIX + "sweep_errors_total", server="v8")}
    assert counted == {
        **dict.fromkeys(ERROR_KINDS, 0.0),
        "license": 2.0,
        "proxies": 2.0,
        "used_repositories": 2.0 * tenants,
        "sessions": 2.0 * tenants,  # one failed listing leaves every tenant's jobs without sessions
    }
    assert value(body, PREFIX + "up", server="v8") == 1
    enabled = {s.labels["job_id"]: s.value for s in samples(body, PREFIX + "job_enabled")}
    for health in samples(body, PREFIX + "job_health"):  # a disabled job stays OK, "disabled"
        expected = HealthState.UNKNOWN if enabled[health.labels["job_id"]] else HealthState.OK
        assert health.value == expected
    assert not samples(body, PREFIX + "license_used")
    assert not samples(body, PREFIX + "organization_used_bytes")


async def test_a_tenant_that_cannot_be_read_is_down_alone(servers: dict[str, Server]) -> None:
    server = servers["v8"]
    organizations = await server.client.organizations()
    broken = organizations[0].id

    def undecodable(path: str, data: Any) -> Any:
        for item in data.get("results", []) if isinstance(data, dict) else []:
            if item.get("organizationId") == broken:
                item["isEnabled"] = {"not": "a boolean"}
        return data

    server.wire.edit = undecodable
    exporter = exporter_of(server)
    body = await swept(exporter)
    assert value(body, PREFIX + "organization_up", organization_id=broken) == 0
    assert not samples(body, PREFIX + "job_enabled", organization_id=broken)
    for organization in organizations[1:]:
        assert value(body, PREFIX + "organization_up", organization_id=organization.id) == 1
        assert samples(body, PREFIX + "job_enabled", organization_id=organization.id)
    assert exporter.errors["v8"]["organization"] == 1


@pytest.mark.parametrize("version", ["v8", "v1"])
@pytest.mark.parametrize(
    ("field", "spoilt"),
    [("id", ""), ("id", "  "), ("name", {"not": "a name"})],
    ids=["empty id", "blank id", "undecodable"],
)
async def test_a_tenant_listed_without_an_id_or_undecodable_is_counted_alone(
    servers: dict[str, Server], version: str, field: str, spoilt: object
) -> None:
    """A server listing an organization with an empty or blank id, or one that cannot be
    decoded (a name that is an object): that tenant is an ``organization`` error, the server
    stays up with its other tenants' series (an undecodable one used to be a ``server`` error,
    every tenant of the server without series). The undecodable one, whose id is known, is
    ``organization_up`` 0 under its id, so an alert on that series sees it."""
    server = servers[version]
    organizations = await server.client.organizations()

    def spoil(path: str, data: Any) -> Any:
        if path.endswith("/organizations"):
            (data["results"] if isinstance(data, dict) else data)[0][field] = spoilt
        return data

    server.wire.edit = spoil
    exporter = exporter_of(server)
    body = await swept(exporter)
    assert value(body, PREFIX + "up", server=version) == 1
    assert exporter.errors[version]["organization"] == 1
    assert exporter.errors[version]["server"] == 0
    up = {s.labels["organization_id"]: s.value for s in samples(body, PREFIX + "organization_up")}
    spoilt_id = organizations[0].id
    assert up == {
        **({spoilt_id.lower(): 0.0} if field == "name" else {}),
        **{organization.id: 1.0 for organization in organizations[1:]},
    }
    for organization in organizations[1:]:
        assert samples(body, PREFIX + "job_enabled", organization_id=organization.id)
    assert not samples(body, PREFIX + "job_enabled", organization_id=spoilt_id.lower())


async def test_an_undecodable_tenant_named_twice_is_one_series(servers: dict[str, Server]) -> None:
    """A targets file naming one tenant twice, its id in two cases (pasted from two consoles),
    whose organization the listing cannot decode: one ``organization_up`` 0 and one error, as
    a readable tenant named twice is polled and published once (two samples under one set of
    labels were a duplicate series)."""
    server = servers["v8"]
    organizations = await server.client.organizations()
    spoilt = organizations[0].id

    def spoil(path: str, data: Any) -> Any:
        if path.endswith("/organizations"):
            data["results"][0]["name"] = {"not": "a name"}
        return data

    server.wire.edit = spoil
    named = (spoilt, spoilt.upper(), organizations[1].id, organizations[1].id.upper())
    exporter = Exporter([ServerSpec(name="v8", client=server.client, organizations=named)], interval=60)
    body = await swept(exporter)
    up = [(s.labels["organization_id"], s.value) for s in samples(body, PREFIX + "organization_up")]
    assert up == [(spoilt.lower(), 0.0), (organizations[1].id, 1.0)]
    assert exporter.errors["v8"]["organization"] == 1


async def test_an_undecodable_copy_of_a_listed_organization_adds_no_second_series(
    servers: dict[str, Server],
) -> None:
    """A listing holding one organization twice, once readable and once not: one ``organization``
    error, and its ``organization_up`` stays the readable copy's single 1 (a 0 under the same
    labels would be a duplicate series)."""
    server = servers["v8"]
    organizations = await server.client.organizations()
    first = organizations[0]

    def doubled(path: str, data: Any) -> Any:
        if path.endswith("/organizations"):
            listed = data["results"] if isinstance(data, dict) else data
            listed.append({**listed[0], "name": {"not": "a name"}})
        return data

    server.wire.edit = doubled
    exporter = exporter_of(server)
    body = await swept(exporter)
    assert exporter.errors["v8"]["organization"] == 1
    ups = [
        s
        for s in samples(body, PREFIX + "organization_up")
        if s.labels["organization_id"].lower() == first.id.lower()
    ]
    assert [(s.labels["organization_id"], s.value) for s in ups] == [(first.id, 1.0)]


async def test_a_server_over_its_budget_is_down_and_the_others_are_not(servers: dict[str, Server]) -> None:
    servers["v8"].wire.gate = asyncio.Event()  # never opened
    # v1's sweep must end within the budget too: 0.3 s was within what a loaded machine takes.
    exporter = exporter_of(servers["v8"], servers["v1"], budget=3.0)
    body = await swept(exporter)
    assert value(body, PREFIX + "up", server="v8") == 0
    assert value(body, PREFIX + "sweep_errors_total", server="v8", kind="timeout") == 1
    assert value(body, PREFIX + "up", server="v1") == 1
    assert jobs_of(body, "v1")


async def test_an_internal_error_downs_its_server_alone(
    servers: dict[str, Server], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real = _sweeps._Reader._proxies

    async def buggy(self: Any) -> None:
        if self.spec.name == "v8":
            raise RuntimeError("a bug")
        await real(self)

    monkeypatch.setattr(_sweeps._Reader, "_proxies", buggy)
    exporter = exporter_of(servers["v8"], servers["v1"])
    body = await swept(exporter)
    assert value(body, PREFIX + "up", server="v8") == 0
    assert exporter.errors["v8"]["server"] == 1
    assert value(body, PREFIX + "up", server="v1") == 1
    assert jobs_of(body, "v1")
    assert "internal error while sweeping v8" in caplog.text
    assert "server v8 is down: internal error: RuntimeError: a bug" in caplog.text
    # The exporter's own failure, counted where an operator looks for the exporter's bugs.
    assert value(body, SELF_PREFIX + "sweep_failures_total") == 1


async def test_an_unknown_organization_in_the_targets_is_counted(servers: dict[str, Server]) -> None:
    server = servers["v8"]
    first = (await server.client.organizations())[0]
    spec = ServerSpec(name="v8", client=server.client, organizations=(first.name or "", "no-such-tenant"))
    exporter = Exporter([spec], interval=60)
    body = await swept(exporter)
    assert {s.labels["organization_id"] for s in samples(body, PREFIX + "organization_up")} == {first.id}
    assert exporter.errors["v8"]["organization"] == 1


@pytest.mark.parametrize(("named", "batched"), [(10, False), (16, True)])
async def test_named_tenants_are_batched_only_when_they_are_enough_of_the_server(
    named: int, batched: bool
) -> None:
    """10 named tenants of a server of 320 organizations (3%) are read one by one, 16 (5%) in one
    batch; the sweep's own listing counted the organizations, which are not listed twice."""
    server = Server("big", ("v1", "v8"), seed=41, organizations=320)  # v1: jobs_wire(org)
    chosen = server.simulator.organization_ids()[:named]
    spec = ServerSpec(name="big", client=server.client, organizations=tuple(chosen))
    try:
        body = await swept(Exporter([spec], interval=60))
    finally:
        await server.client.aclose()
    assert {s.labels["organization_id"] for s in samples(body, PREFIX + "organization_up")} == set(chosen)
    assert jobs_of(body, "big") == {job["id"] for org in chosen for job in server.simulator.jobs_wire(org)}
    sent = [what for _, what in server.wire.requests]
    assert sent.count("GET /v8/organizations") == 1
    assert sent.count("GET /v8/jobs") == (1 if batched else named)  # the server's, or ?organizationId= each


# --- /metrics and /healthz ---------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def http(exporter: Exporter) -> AsyncIterator[httpx.AsyncClient]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    runner = web.AppRunner(exporter.app(), access_log=None, handle_signals=False)
    await runner.setup()
    try:
        await web.SockSite(runner, sock).start()
        base = f"http://127.0.0.1:{sock.getsockname()[1]}"
        async with httpx.AsyncClient(base_url=base, timeout=HANG_GUARD) as client:
            yield client
    finally:
        await runner.cleanup()
        sock.close()


async def test_a_plain_head_gives_the_length_without_decompressing_the_text(
    servers: dict[str, Server], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A HEAD without gzip answers the plain body's length from what the exposition knows: it
    decompressed the whole text (67 MiB for 20,000 jobs) to count it."""
    exporter = exporter_of(servers["v8"], servers["v1"])
    await exporter.sweep()
    async with http(exporter) as client:
        got = await client.get("/metrics", headers={"Accept-Encoding": "identity"})

        def unwanted(self: Any) -> bytes:
            raise AssertionError("a HEAD decompressed the exposition")

        monkeypatch.setattr(_exposition_module.Exposition, "text", unwanted)
        head = await client.head("/metrics", headers={"Accept-Encoding": "identity"})
    assert (got.status_code, head.status_code, head.content) == (200, 200, b"")
    assert head.headers.get("content-encoding") is None
    assert abs(int(head.headers["content-length"]) - len(got.content)) < 100  # own metrics moved on


async def test_scrapes_never_send_a_request_to_a_server(servers: dict[str, Server]) -> None:
    exporter = exporter_of(servers["v8"], servers["v1"])
    await exporter.sweep()
    sent = {name: len(server.wire.requests) for name, server in servers.items()}
    simulated = {name: server.simulator.stats.requests for name, server in servers.items()}
    async with http(exporter) as client:
        bodies = []
        for number in range(20):
            plain = {"Accept-Encoding": "identity"} if number % 2 else {}
            answer = await client.get("/metrics", headers=plain)
            assert answer.status_code == 200
            assert answer.headers["content-type"] == CONTENT_TYPE
            assert answer.headers.get("content-encoding") == (None if number % 2 else "gzip")
            bodies.append(answer.content)
            assert (await client.get("/healthz")).status_code == 503  # the loop is not running
    assert {name: len(server.wire.requests) for name, server in servers.items()} == sent
    assert {name: server.simulator.stats.requests for name, server in servers.items()} == simulated
    assert len({jobs_of(body, "v8").__len__() for body in bodies}) == 1
    assert value(bodies[-1], SELF_PREFIX + "scrapes_total") == 20


async def test_before_the_first_sweep_only_the_exporters_own_metrics(servers: dict[str, Server]) -> None:
    exporter = exporter_of(servers["v8"])
    assert exporter.exposition is EMPTY
    async with http(exporter) as client:
        body = (await client.get("/metrics")).content
    names = set(families(body))
    assert names
    assert not any(name.startswith(PREFIX) for name in names)
    assert {SELF_PREFIX + "build_info", SELF_PREFIX + "sweeps", "process_resident_memory_bytes"} <= names
    assert value(body, SELF_PREFIX + "sweeps_total") == 0
    assert servers["v8"].wire.requests == []


async def test_a_plain_scrape_during_a_publish_is_one_sweep(
    servers: dict[str, Server], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plain-text body is made in a worker thread; a sweep published while that thread runs
    must not give a body with the servers' series of one sweep and the loop's figures
    (``servers_up``, ``sweeps_total``) of the next."""
    exporter = exporter_of(servers["v8"], servers["v1"])
    await exporter.sweep()
    reading, resume = threading.Event(), threading.Event()
    collect, text = ProcessCollector.collect, Exposition.text

    def hold() -> None:  # the worker thread stops at the first of the two it reaches
        if threading.current_thread() is not threading.main_thread() and not reading.is_set():
            reading.set()
            resume.wait(HANG_GUARD)

    def collecting(self: ProcessCollector) -> Any:
        hold()
        return collect(self)

    def decompressing(self: Exposition) -> bytes:
        hold()
        return text(self)

    monkeypatch.setattr(ProcessCollector, "collect", collecting)
    monkeypatch.setattr(Exposition, "text", decompressing)
    async with http(exporter) as client:
        scrape = asyncio.ensure_future(client.get("/metrics", headers={"Accept-Encoding": "identity"}))
        try:
            assert await asyncio.to_thread(reading.wait, HANG_GUARD), "the worker thread was held"
            servers["v8"].wire.down = True
            await exporter.sweep()  # the loop publishes the next sweep meanwhile
        finally:
            resume.set()
        body = (await scrape).content
    ups = [s.value for s in samples(body, PREFIX + "up")]
    assert ups == [1.0, 1.0]
    assert value(body, SELF_PREFIX + "servers_up") == sum(ups)
    assert value(body, SELF_PREFIX + "sweeps_total") == 1


async def test_a_scraper_that_stops_reading_is_disconnected(
    servers: dict[str, Server], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client that asks for /metrics and reads nothing is disconnected once its answer has not
    been sent within `SEND_WITHIN`: it held the answer (the whole body: 67 MiB of plain text for
    20,000 jobs) and its connection for good, so a few such clients held gigabytes, and as many as
    the connection limit left every later scrape refused. HEAD answers the length alone."""
    monkeypatch.setattr(_exporter_module, "SEND_WITHIN", 0.5)
    exporter = exporter_of(servers["v8"], servers["v1"])
    await exporter.sweep()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)  # inherited by what it accepts
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    runner = web.AppRunner(exporter.app(), access_log=None, handle_signals=False)
    await runner.setup()
    assert runner.server is not None
    try:
        await web.SockSite(runner, sock).start()
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as stalled:
            stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            stalled.connect(sock.getsockname())
            stalled.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept-Encoding: identity\r\n\r\n" * 64)
            await wait_for(lambda: select.select([stalled], [], [], 0)[0] != [])  # answers begun
            assert runner.server.connections
            await wait_for(lambda: not runner.server.connections)
        base = f"http://127.0.0.1:{sock.getsockname()[1]}"
        async with httpx.AsyncClient(base_url=base, timeout=HANG_GUARD) as client:
            got = await client.get("/metrics", headers={"Accept-Encoding": "identity"})
            head = await client.head("/metrics", headers={"Accept-Encoding": "identity"})
        assert got.status_code == head.status_code == 200
        assert value(got.content, PREFIX + "up", server="v8") == 1
        assert head.content == b""
        assert abs(int(head.headers["content-length"]) - len(got.content)) < 100  # own metrics moved on
    finally:
        await runner.cleanup()
        sock.close()


async def test_a_gzip_body_is_one_member_holding_the_plain_text(servers: dict[str, Server]) -> None:
    exporter = exporter_of(servers["v8"], servers["v1"])
    await exporter.sweep()
    compressed = exporter.body(gzip=True)
    reader = zlib.decompressobj(wbits=31)
    text = reader.decompress(compressed)
    assert reader.eof
    assert reader.unused_data == b""
    assert gzip.decompress(compressed) == text
    assert text.startswith(exporter.exposition.text())
    assert families(text).keys() == families(exporter.body(gzip=False)).keys()


def _large_exposition(lines: int) -> Exposition:
    """An exposition of ``lines`` samples with random job ids (deflate halves it, no more)."""
    rnd = random.Random(11)
    text = b"".join(
        b'veeam_vb365_job_enabled{server="s",job_id="%s"} 1.0\n' % rnd.randbytes(24).hex().encode()
        for _ in range(lines)
    )
    compressor = zlib.compressobj(1, zlib.DEFLATED, -15)
    deflated = compressor.compress(text) + compressor.flush(zlib.Z_FULL_FLUSH)
    return Exposition((deflated,), zlib.crc32(text), len(text))


@pytest.mark.parametrize("encoding", ["identity", "gzip"])
async def test_concurrent_scrapes_share_one_body(encoding: str) -> None:
    """Scrapers reading slowly at the same time hold one copy of the exposition between them, not
    one each: a plain scrape decompressed a copy of its own (and a gzip scrape joined one), held
    while it was sent, so as many slow scrapers as the connection limit held as many copies of a
    body of many MiB. Measured with tracemalloc while every answer has begun and none is read;
    then each answer is read whole and is the exposition."""
    exposition = _large_exposition(150_000)
    sent = exposition.size if encoding == "identity" else sum(map(len, exposition.deflated))
    assert sent > 4_000_000
    exporter = Exporter([], interval=60)
    exporter.exposition = exposition
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)  # inherited by what it accepts
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    runner = web.AppRunner(exporter.app(), access_log=None, handle_signals=False)
    await runner.setup()
    readers: list[socket.socket] = []
    gc.collect()
    tracemalloc.start()
    try:
        await web.SockSite(runner, sock).start()
        baseline, _ = tracemalloc.get_traced_memory()
        for _ in range(8):
            reader = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            readers.append(reader)
            reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            reader.connect(sock.getsockname())
            reader.sendall(
                b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept-Encoding: " + encoding.encode() + b"\r\n\r\n"
            )
        await wait_for(lambda: all(select.select([r], [], [], 0)[0] for r in readers))  # answers begun
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - baseline
        tracemalloc.stop()
        assert held < 2 * sent, (held, sent)
        answers = await asyncio.gather(*(asyncio.to_thread(_read_answer, r) for r in readers))
    finally:
        tracemalloc.stop()
        for reader in readers:
            reader.close()
        await runner.cleanup()
        sock.close()
    text = exposition.text()
    for head, body in answers:
        assert head.startswith(b"HTTP/1.1 200 ")
        assert (b"content-encoding: gzip" in head.lower()) is (encoding == "gzip")
        assert (gzip.decompress(body) if encoding == "gzip" else body).startswith(text)


def _read_answer(conn: socket.socket) -> tuple[bytes, bytes]:
    """An answer's head and its body (as long as its Content-Length says), read from ``conn``."""
    conn.settimeout(HANG_GUARD)
    data = b""
    while b"\r\n\r\n" not in data:
        data += conn.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    (length,) = re.findall(rb"(?i)\r\ncontent-length: *(\d+)", head)
    chunks = [body]
    left = int(length) - len(body)
    while left > 0:
        chunk = conn.recv(min(left, 1 << 20))
        assert chunk, "the answer ended early"
        chunks.append(chunk)
        left -= len(chunk)
    return head, b"".join(chunks)


async def test_healthz_follows_the_loop(servers: dict[str, Server]) -> None:
    server = servers["v8"]
    server.wire.gate = asyncio.Event()
    exporter = exporter_of(server, interval=5)
    assert exporter.health() == (False, "the sweep loop is not running")
    async with http(exporter) as client:
        exporter.start()
        try:
            answer = await client.get("/healthz")
            assert answer.status_code == 503
            assert answer.text.startswith("no sweep completed yet")
            assert answer.text.count("\n") == 1
            server.wire.gate.set()
            await wait_for(lambda: exporter.stats.sweeps == 1)
            answer = await client.get("/healthz")
            assert answer.status_code == 200
            assert answer.text.startswith("ok: the last sweep completed")
            assert exporter.stats.last_end is not None
            healthy, line = exporter.health(now=exporter.stats.last_end + 3 * 5 + 1)
            assert not healthy
            assert "more than 3 intervals of 5 s" in line
        finally:
            await exporter.stop()
        answer = await client.get("/healthz")
        assert answer.status_code == 503
        assert answer.text == "the sweep loop is not running\n"


@pytest.mark.parametrize("step", [-86_400.0, 86_400.0], ids=["clock set back a day", "clock set on a day"])
async def test_healthz_is_not_fooled_by_a_step_of_the_system_clock(
    servers: dict[str, Server], monkeypatch: pytest.MonkeyPatch, step: float
) -> None:
    """An exporter runs for months, through NTP corrections and VM migrations that step the
    system clock: ``/healthz`` judges how long ago the last sweep completed on a clock no such
    step moves. Set back a day, it said "ok" (a sweep completed -86,400 s ago) for a whole day
    whatever the loop did; set on a day, it called a fresh sweep stale (liveness probes restart
    the exporter for that)."""
    exporter = exporter_of(servers["v8"], interval=60)
    exporter.start()
    try:
        await wait_for(lambda: exporter.stats.sweeps == 1)
        wall, steady = time.time(), time.monotonic()
        for elapsed, fresh in ((1.0, True), (3 * 60 + 1.0, False)):
            with monkeypatch.context() as clocks:  # no await inside: the event loop's clock is untouched
                clocks.setattr(time, "time", lambda elapsed=elapsed: wall + step + elapsed)
                clocks.setattr(time, "monotonic", lambda elapsed=elapsed: steady + elapsed)
                healthy, line = exporter.health()
            assert healthy is fresh, line
            assert f"{elapsed:.0f} s ago" in line
    finally:
        await exporter.stop()


async def test_a_timeout_longer_than_the_interval_widens_the_healthy_window(
    servers: dict[str, Server],
) -> None:
    """``--interval 2 --timeout 30``: a sweep may wait 30 s out on a hanging server, which is the
    loop working as configured; ``/healthz`` (and the stale alert, through
    ``vbo_async_exporter_stale_after_seconds``) allow three budgets then, not three intervals."""
    server = servers["v8"]
    exporter = exporter_of(server, interval=2, budget=30)
    default = exporter_of(server, interval=5)
    assert default.stats.stale_after == 3 * 5
    assert exporter.stats.stale_after == 3 * 30
    exporter.start()
    try:
        await wait_for(lambda: exporter.stats.sweeps >= 1)
        end = exporter.stats.last_end
        assert end is not None
        assert exporter.health(now=end + 3 * 2 + 25)[0]  # mid-way through a sweep waiting out 30 s
        healthy, line = exporter.health(now=end + 3 * 30 + 1)
        assert not healthy
        assert "more than 3 per-server time budgets of 30 s (--timeout)" in line
        stale_after = samples(exporter.body(gzip=False), "vbo_async_exporter_stale_after_seconds")
        assert [sample.value for sample in stale_after] == [90.0]
    finally:
        await exporter.stop()


async def wait_for(condition: Callable[[], bool], within: float = HANG_GUARD) -> None:
    """Poll ``condition`` (state owned by the code under test, which offers no event to wait on)."""
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def test_a_slow_sweep_does_not_pile_up(servers: dict[str, Server]) -> None:
    """The interval is 0.2 s; the first sweep is held for 1 s: no second sweep starts meanwhile,
    none catches up afterwards, and the next starts after the minimum gap (0.02 s)."""
    server = servers["v8"]
    server.wire.gate = gate = asyncio.Event()
    exporter = exporter_of(server, interval=0.2, budget=30)
    exporter.start()
    try:
        await wait_for(lambda: len(server.wire.listings()) == 1)
        await asyncio.sleep(1.0)
        assert len(server.wire.listings()) == 1
        assert exporter.stats.in_progress
        assert exporter.stats.sweeps == 0
        gate.set()
        await wait_for(lambda: exporter.stats.sweeps == 1)
        ended = exporter.stats.last_end
        assert ended is not None
        await wait_for(lambda: len(server.wire.listings()) == 2)
        assert server.wire.listings()[1] - ended >= 0.02 - 0.002
        # Counted as the first sweep ended, before the second began; read after the second ended,
        # it also counted a second sweep slower than 0.2 s (a loaded machine's).
        assert exporter.stats.overruns == 1
        await wait_for(lambda: exporter.stats.sweeps == 2)
        await asyncio.sleep(0.1)
        assert len(server.wire.listings()) <= 3, "no burst of sweeps catching up"
    finally:
        await exporter.stop()


async def test_the_render_of_no_server_is_empty() -> None:
    assert render([], {}).text() == b""


async def test_servers_rendered_apart_and_joined_are_what_prometheus_client_renders_at_once(
    servers: dict[str, Server],
) -> None:
    """Each server's series are rendered on their own and joined family by family: the text is
    byte for byte prometheus_client's rendering of every server's families at once (one ``# HELP``
    and ``# TYPE`` per family, its samples together), and its CRC and size are right."""
    down = Server("down", ("v8",), seed=9)
    down.wire.down = True
    try:
        exporter = exporter_of(servers["v8"], down, servers["v1"])
        snapshots = await exporter.sweep()
    finally:
        await down.client.aclose()
    registry = CollectorRegistry(auto_describe=False)
    for spec in METRICS:
        labels = ("server", *spec.labels)
        if spec.type == "counter":
            family: Any = CounterMetricFamily(spec.name, spec.help, labels=labels)
            for snapshot in snapshots:
                for kind in ERROR_KINDS:
                    family.add_metric((snapshot.server, kind), exporter.errors[snapshot.server][kind])
        else:
            family = GaugeMetricFamily(spec.name, spec.help, labels=labels)
            for snapshot in snapshots:
                for found, number in snapshot.samples.get(spec.name, ()):
                    family.add_metric((snapshot.server, *found), number)
        if family.samples:
            registry.register(Fixed(family))
    expected = generate_latest(registry)
    for exposition in (exporter.exposition, render(snapshots, exporter.errors)):
        assert exposition.text() == expected
        assert (exposition.crc, exposition.size) == (zlib.crc32(expected), len(expected))
    assert gzip.decompress(exporter.body(gzip=True)).startswith(expected)


class Fixed:
    """A collector of one metric family."""

    def __init__(self, family: Any) -> None:
        self.family = family

    def collect(self) -> Any:
        return [self.family]


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (b"", b""),
        (b"abc", b""),
        (b"", b"xyz"),
        (b"veeam_vb365_up 1.0\n", b"x" * 100_003),
        (bytes(256), b"\xff" * 7),
    ],
)
def test_crc32_combine_is_the_crc_of_the_joined_texts(first: bytes, second: bytes) -> None:
    combined = crc32_combine(zlib.crc32(first), zlib.crc32(second), len(second))
    assert combined == zlib.crc32(first + second)


@pytest.mark.parametrize(
    "sizes",
    [[], [0], [10], [8], [3, 5, 0, 2, 7], [1] * 20, [25, 1, 1, 30], [0, 0, 9, 0]],
)
def test_pieces_are_the_parts_size_at_a_time_and_views_within_one_part(sizes: list[int]) -> None:
    """What `_send` hands the connection: every piece ``size`` bytes but the last, in order; a
    piece within one part is a view of that part (no copy), small parts are joined."""
    parts = [bytes([number]) * size for number, size in enumerate(sizes)]
    got = list(_exporter_module.pieces(parts, 8))
    assert b"".join(got) == b"".join(parts)
    assert all(len(piece) == 8 for piece in got[:-1])
    assert 0 < len(got[-1]) <= 8 if got else not any(sizes)
    owner = [number for number, size in enumerate(sizes) for _ in range(size)]  # each byte's part
    starts = range(0, len(owner), 8)
    within = [owner[start] == owner[min(start + 8, len(owner)) - 1] for start in starts]
    assert [isinstance(piece, memoryview) for piece in got] == within
    for piece in got:
        if isinstance(piece, memoryview):
            assert any(piece.obj is part for part in parts)


# --- the command ------------------------------------------------------------------------------------


def test_listen_addresses() -> None:
    assert _serve.parse_listen("127.0.0.1:9810") == ("127.0.0.1", 9810)
    assert _serve.parse_listen("[::1]:0") == ("::1", 0)
    assert _serve.parse_listen(":9810") == ("0.0.0.0", 9810)
    assert _serve.parse_listen("exporter.local:80") == ("exporter.local", 80)
    for bad in ("9810", "127.0.0.1", "host:99999", "::1:80", "host:port"):
        with pytest.raises(CLIError):
            _serve.parse_listen(bad)


@pytest.mark.parametrize("bad", ["[]:9810", "127.0.0.1:\u0663", "[::1]:\uff19\uff18\uff11\uff10"])
def test_listen_addresses_that_name_no_address_or_port_are_refused(bad: str) -> None:
    """``--listen "[$ADDRESS]:9810"`` with the variable empty served every IPv4 interface (the
    network, not the IPv6 address meant), and a port of other scripts' digits (Arabic-Indic 3,
    fullwidth 9810) was read as that number: each is a usage error naming what was given."""
    with pytest.raises(CLIError) as info:
        _serve.parse_listen(bad)
    assert info.value.lines == (
        f"--listen must be HOST:PORT, [IPv6]:PORT or :PORT (port 0-65535), got {bad!r}",
    )


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--listen", "nowhere"], "--listen must be HOST:PORT"),
        (["--interval", "0"], "'--interval'"),
        (["--interval", "nan"], "Invalid value for '--interval': 'nan' is not a duration such as 90m"),
        (["--timeout", "nan"], "Invalid value for '-t' / '--timeout': 'nan' is not a duration such as 90m"),
        (["--interval", "inf"], "Invalid value for '--interval': 'inf' is not a duration such as 90m"),
        (["--timeout", "inf"], "Invalid value for '-t' / '--timeout': 'inf' is not a duration such as 90m"),
        # Longer than 100 years is refused in seconds as it is with a unit ('3200000000s').
        (
            ["--interval", "3200000000"],
            "Invalid value for '--interval': '3200000000' is longer than 100 years",
        ),
        (
            ["--interval", "3200000000s"],
            "Invalid value for '--interval': '3200000000s' is longer than 100 years",
        ),
        (
            ["--timeout", "1e308"],
            "Invalid value for '-t' / '--timeout': '1e308' is not a duration such as 90m",
        ),
    ],
    ids=[
        "bad-listen",
        "zero-interval",
        "nan-interval",
        "nan-timeout",
        "inf-interval",
        "inf-timeout",
        "century-in-seconds",
        "century-with-a-unit",
        "huge-timeout",
    ],
)
def test_bad_serve_arguments_are_usage_errors(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str], expected: str
) -> None:
    targets = write_targets(tmp_path / "targets.toml", _table("east", "http://127.0.0.1:1"))
    line = error_line(run(capsys, "serve", "--targets", str(targets), *argv), code=2)
    assert expected in line


@pytest.mark.parametrize(
    ("argv", "interval", "timeout"),
    [
        ([], 60.0, None),
        (["--interval", "90", "--timeout", "30"], 90.0, 30.0),
        (["--interval", "1.5", "--timeout", " 45 "], 1.5, 45.0),
        (["--interval", "5m", "--timeout", "2m"], 300.0, 120.0),
        (["--interval", "1h30m", "--timeout", "90s"], 5400.0, 90.0),
        (["--interval", "1M", "--timeout", " 1m30s "], 60.0, 90.0),
    ],
    ids=["defaults", "seconds", "fractions", "minutes", "hours", "case-and-blanks"],
)
def test_serve_interval_and_timeout_take_durations_as_poll_and_check_do(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    argv: list[str],
    interval: float,
    timeout: float | None,
) -> None:
    """``serve --timeout 2m`` as ``poll --timeout 2m`` and ``check -t 2m``: a duration was refused
    ('2m' is not a valid seconds), only a number of seconds taken, which still is."""
    given: dict[str, Any] = {}

    def run_serve(targets: Path, **kwargs: Any) -> Outcome:
        given.update(kwargs)
        return Outcome.OK

    monkeypatch.setattr(_serve, "serve", run_serve)
    targets = write_targets(tmp_path / "targets.toml", _table("east", "http://127.0.0.1:1"))
    result = run(capsys, "serve", "--targets", str(targets), *argv)
    assert result.code == 0, result.err
    assert (given["interval"], given["timeout"]) == (interval, timeout)
    assert type(given["interval"]) is float


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--interval", "soon"], "Invalid value for '--interval': 'soon' is not a duration such as 90m"),
        (["--timeout", "2 minutes"], "Invalid value for '-t' / '--timeout': '2 minutes' is not a duration"),
        (["--timeout", "0s"], "Invalid value for '-t' / '--timeout': '0s' must be longer than zero"),
        (["--interval", "0.5"], "Invalid value for '--interval': 0.5 is not in the range x>=1"),
    ],
    ids=["word", "spelt-out", "zero-duration", "under-a-second"],
)
def test_bad_serve_durations_are_usage_errors_naming_the_option(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str], expected: str
) -> None:
    targets = write_targets(tmp_path / "targets.toml", _table("east", "http://127.0.0.1:1"))
    line = error_line(run(capsys, "serve", "--targets", str(targets), *argv), code=2)
    assert expected in line


@pytest.mark.parametrize("given", ["\u0663\u0660\u0660", "\uff11\uff12\uff10", "1_000", "1e3"])
def test_serve_refuses_the_numbers_poll_and_check_refuse(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, given: str
) -> None:
    """A number alone is seconds "as for poll's and check's --timeout", in ASCII digits as
    there: ``float()`` read ``--interval`` and ``--timeout`` before, taking the Arabic-Indic and
    full-width digits, ``1_000`` and ``1e3`` that ``poll --timeout`` and ``check -t`` refuse."""
    monkeypatch.setattr(_serve, "serve", lambda targets, **kwargs: Outcome.OK)
    targets = write_targets(tmp_path / "targets.toml", _table("east", "http://127.0.0.1:1"))
    said = f"{given!r} is not a duration such as 90m, 26h, 2d or 1d12h (units d, h, m, s)"
    for option, named in (("--interval", "'--interval'"), ("--timeout", "'-t' / '--timeout'")):
        line = error_line(run(capsys, "serve", "--targets", str(targets), option, given), code=2)
        assert line == f"vbo-async: error: Invalid value for {named}: {said} (see 'vbo-async serve --help')"
    poll = error_line(run(capsys, "poll", "--targets", str(targets), "--timeout", given), code=2)
    assert poll == line.replace("vbo-async serve --help", "vbo-async poll --help")


def test_a_bad_targets_file_is_a_usage_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    targets = write_targets(tmp_path / "targets.toml", _table("east", "http://127.0.0.1:1") + "colour = 1\n")
    line = error_line(run(capsys, "serve", "--targets", str(targets)), code=2)
    assert "servers[0].colour: extra field" in line


def _table(name: str, url: str, organizations: str = '"all"') -> str:
    return (
        f'[[servers]]\nname = "{name}"\nurl = "{url}"\nusername = "admin"\n'
        f'password_env = "VBO_PASSWORD"\norganizations = {organizations}\n'
    )


def test_the_library_does_not_import_prometheus_client(tmp_path: Path) -> None:
    code = "import sys, vbo_async, vbo_async.cli\nprint('prometheus_client' in sys.modules)\n"
    done = python(code, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_serve_names_the_extra_to_install(tmp_path: Path) -> None:
    code = "import sys\nfrom vbo_async.cli import main\nsys.exit(main(['serve', '--targets', 'x.toml']))\n"
    done = python(code, blocked=("prometheus_client",), cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr == (
        "vbo-async: error: 'vbo-async serve' needs the 'exporter' extra (prometheus_client is not "
        "installed): pip install 'vbo-async[exporter]'\n"
    )


@contextlib.asynccontextmanager
async def _serving(
    tmp_path: Path, url: str, *, interval: float = 60, policy: HealthPolicy | None = None
) -> AsyncIterator[tuple[socket.socket, asyncio.Task[Outcome]]]:
    """`_serve._serve` of the one server ``url`` (named east) in a task of this test's loop,
    listening on a socket of its own; on leaving, the task is cancelled if still running and
    awaited, and the socket closed."""
    path = write_targets(tmp_path / "t.toml", _table("east", url))
    passwords = Passwords(prompt=False, given={"VBO_PASSWORD": "admin"})
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    task = asyncio.create_task(
        _serve._serve(
            path,
            load(path, passwords),
            passwords,
            sock,
            interval=interval,
            budget=None,
            concurrency=8,
            policy=policy,
        )
    )
    try:
        yield sock, task
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        sock.close()


async def test_sigterm_stops_cleanly_and_logs_out(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """In process, on this test's loop: SIGTERM ends `serve` with `Outcome.OK`, after every
    client has logged out and the listening socket has closed."""
    app = create_app(SimulatorConfig(seed=3, organizations=2, api_versions=("v8",)))
    simulator: Simulator = app.state.simulator
    async with serve(app) as port, _serving(tmp_path, f"http://127.0.0.1:{port}/v8") as (sock, task):
        address = sock.getsockname()
        shown: list[str] = []

        def banner() -> bool:
            shown.append(capsys.readouterr().out)
            return "Serving the metrics of 1 server" in shown[-1]

        await wait_for(banner)
        assert "(a sweep every 1m; Ctrl-C stops)" in shown[-1]  # a duration, not "60 s" ("1e+09 s" for 1e9)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{address[1]}") as client:
            await wait_for_async(lambda: _healthy(client))
        assert simulator.stats.logouts["v8"] == 0
        os.kill(os.getpid(), signal.SIGTERM)
        outcome = await asyncio.wait_for(task, HANG_GUARD)
    assert outcome is Outcome.OK
    assert simulator.stats.logouts["v8"] == 1
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient() as client:
            await client.get(f"http://127.0.0.1:{address[1]}/healthz")


async def test_sigterm_is_not_held_by_a_scrape_client_that_stopped_reading(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A scraper that asked for /metrics (pipelined, many times) and then reads nothing holds its
    answer in flight; SIGTERM still ends `serve` promptly (within the systemd unit's
    TimeoutStopSec of 30 s, well inside HANG_GUARD), logged out: aiohttp waited 60 s for the
    answer to be written, then 60 s more, and systemd's SIGKILL came first."""
    app = create_app(SimulatorConfig(seed=3, organizations=2, api_versions=("v8",)))
    simulator: Simulator = app.state.simulator
    async with serve(app) as port, _serving(tmp_path, f"http://127.0.0.1:{port}/v8") as (sock, task):
        address = sock.getsockname()
        await wait_for(lambda: "Serving the metrics of 1 server" in capsys.readouterr().out)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{address[1]}") as client:
            await wait_for_async(lambda: _healthy(client))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)  # the connections accepted next
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as stalled:
            stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            stalled.connect(address)
            stalled.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept-Encoding: identity\r\n\r\n" * 64)
            await wait_for(lambda: select.select([stalled], [], [], 0)[0] != [])  # answers begun
            os.kill(os.getpid(), signal.SIGTERM)
            outcome = await asyncio.wait_for(task, HANG_GUARD / 2)
    assert outcome is Outcome.OK
    assert simulator.stats.logouts["v8"] == 1


async def test_a_second_signal_while_stopping_is_still_the_commands(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """SIGINT and SIGTERM stay `serve`'s own until it has closed its clients: once the first had
    stopped the loop, a second Ctrl-C while the clients logged out (or an answer was still being
    sent) was a KeyboardInterrupt raised through aiohttp's or the clients' code, a traceback of 50
    lines, and a second SIGTERM killed the process before any client logged out. The logout is
    held here while the handlers are looked at."""
    app = create_app(SimulatorConfig(seed=3, organizations=2, api_versions=("v8",)))
    simulator: Simulator = app.state.simulator
    logging_out, release = asyncio.Event(), asyncio.Event()

    async def holding(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].endswith("/token/logout"):
            logging_out.set()
            await release.wait()
        await app(scope, receive, send)

    async with serve(holding) as port, _serving(tmp_path, f"http://127.0.0.1:{port}/v8") as (sock, task):
        await wait_for(lambda: "Serving the metrics of 1 server" in capsys.readouterr().out)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{sock.getsockname()[1]}") as client:
            await wait_for_async(lambda: _healthy(client))
        os.kill(os.getpid(), signal.SIGTERM)
        try:
            await asyncio.wait_for(logging_out.wait(), HANG_GUARD)
            assert not task.done()
            assert signal.getsignal(signal.SIGINT) is not signal.default_int_handler
            assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
        finally:
            release.set()
        outcome = await asyncio.wait_for(task, HANG_GUARD)
    assert outcome is Outcome.OK
    assert simulator.stats.logouts["v8"] == 1


def _closed_by_server(conn: socket.socket) -> bool:
    """Whether the exporter ended ``conn`` (an answer, then end of stream, or a reset), from what
    has arrived: it never waits. The exporter runs on this thread's loop: a blocking read of an
    answer whose end of stream had not come yet waited for good (the loop could not close it)."""
    while select.select([conn], [], [], 0)[0]:
        try:
            if not conn.recv(65536):
                return True
        except ConnectionResetError:
            return True
    return False


@pytest.mark.parametrize(
    "idle_timeout",
    [
        3600.0,
        pytest.param(
            0.5,
            marks=pytest.mark.skipif(
                release("aiohttp") < (3, 14, 4),
                reason="aiohttp closes a connection without a complete request from 3.14.4 (the "
                "exporter extra's floor; the client's is lower)",
            ),
        ),
    ],
    ids=["bounded", "closed"],
)
async def test_idle_connections_are_bounded_and_closed(
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    idle_timeout: float,
) -> None:
    """Connections that send nothing (or a request a byte at a time) neither pile up nor stay: past
    `connection_limit` open connections a new one is answered 503 and closed at once, though all
    arrived together, and one without a complete request is closed after `IDLE_TIMEOUT` (an hour
    before, and any number were held: a client holding a thousand of them took every file
    descriptor of a service's default limit, so no scrape was answered, no server could be
    reached, and stderr had tens of thousands of tracebacks a second). Scrapes are answered again
    once they are gone."""
    monkeypatch.setattr(_serve, "connection_limit", lambda nofile: 4)
    monkeypatch.setattr(_serve, "IDLE_TIMEOUT", idle_timeout)
    app = create_app(SimulatorConfig(seed=3, organizations=2, api_versions=("v8",)))
    async with serve(app) as port, _serving(tmp_path, f"http://127.0.0.1:{port}/v8") as (sock, task):
        address = sock.getsockname()
        await wait_for(lambda: "Serving the metrics of 1 server" in capsys.readouterr().out)
        idle = [socket.create_connection(address) for _ in range(12)]  # accepted in one go
        try:
            idle[0].sendall(b"GET /metr")  # a request begun, never finished
            await wait_for(lambda: all(_closed_by_server(conn) for conn in idle[4:]))
            if idle_timeout > HANG_GUARD:
                await asyncio.sleep(0.2)  # time to close them too, if they were to be closed
                assert not any(_closed_by_server(conn) for conn in idle[:4])
                refusals = [r for r in caplog.records if "HTTP connections are open" in r.getMessage()]
                assert [r.getMessage() for r in refusals] == [
                    "4 HTTP connections are open: new ones are refused until some close"
                ]
            else:
                await wait_for(lambda: all(_closed_by_server(conn) for conn in idle[:4]))
        finally:
            for conn in idle:
                conn.close()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{address[1]}") as client:
            await wait_for_async(lambda: _healthy(client))
            assert (await client.get("/metrics")).status_code == 200
        assert not task.done()


def test_the_connection_limit_leaves_most_descriptors_to_the_clients() -> None:
    assert _serve.connection_limit(1024) == 256
    assert _serve.connection_limit(256) == 64
    assert _serve.connection_limit(1_048_576) == _serve.MAX_CONNECTIONS
    assert _serve.connection_limit(20) == 16


async def test_serve_judges_health_under_its_policy(tmp_path: Path) -> None:
    """``serve --max-age``/``--schedule-aware`` reach the exporter: every ``job_health`` is what
    `job_health` gives under the same policy (with a one-minute ``max_age`` and warnings
    CRITICAL, a job the default calls WARNING is CRITICAL; the hour of daylight-saving slack
    ``schedule_aware`` adds keeps this seed's periodic jobs OK)."""
    app = create_app(SimulatorConfig(seed=3, organizations=2, api_versions=("v8",)))
    policy = HealthPolicy(max_age=dt.timedelta(minutes=1), schedule_aware=True, warning=HealthState.CRITICAL)
    async with (
        serve(app) as port,
        _serving(tmp_path, f"http://127.0.0.1:{port}/v8", policy=policy) as (sock, _),
    ):
        address = sock.getsockname()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{address[1]}") as client:
            await wait_for_async(lambda: _healthy(client))
            body = (await client.get("/metrics")).content
        async with VBOClient(f"http://127.0.0.1:{port}", username="admin", password="admin") as vbo:
            jobs = await vbo.jobs()
            judged = {job.id: (await vbo.job_health(job, policy=policy)).state for job in jobs}
            default = {job.id: (await vbo.job_health(job)).state for job in jobs}
    assert judged != default  # the policy changes something here
    for job_id, state in judged.items():
        assert value(body, PREFIX + "job_health", server="east", job_id=job_id) == state.value


async def _healthy(client: httpx.AsyncClient) -> bool:
    return (await client.get("/healthz")).status_code == 200


async def wait_for_async(condition: Callable[[], Any], within: float = HANG_GUARD) -> None:
    async with asyncio.timeout(within):
        while not await condition():  # noqa: ASYNC110
            await asyncio.sleep(0.02)


UNANSWERED = ".unanswered.test"
"""Host names whose lookups never end in these tests (a DNS server that does not answer)."""
NEVER_RESOLVED = f"""
import os, pathlib, socket, threading
_lookup = socket.getaddrinfo
def getaddrinfo(host, *args, **kwargs):
    if isinstance(host, str) and host.endswith({UNANSWERED!r}):
        pathlib.Path(os.environ["LOOKUP_STARTED"]).touch()
        threading.Event().wait()
    return _lookup(host, *args, **kwargs)
socket.getaddrinfo = getaddrinfo
"""
"""A ``sitecustomize`` for a child process: lookups of `UNANSWERED` names hang for ever, once
they have created the file named by ``LOOKUP_STARTED``."""


def _dead_servers(count: int) -> str:
    return "".join(_table(f"dead{n}", f"https://vbo{n}{UNANSWERED}:4443") for n in range(count))


async def _published(client: httpx.AsyncClient, server: str, up: str = "1.0") -> bool:
    body = (await client.get("/metrics", headers={"Accept-Encoding": "gzip"})).content
    return f'{PREFIX}up{{server="{server}"}} {up}' in body.decode()


async def test_name_lookups_that_hang_do_not_starve_the_exporter(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Two servers whose names never resolve, on a loop whose default executor has two threads
    (a small machine's share): each hanging lookup holds a thread, which used to leave none to
    render the exposition, so the healthy server's metrics were not published."""
    release = threading.Event()
    real = socket.getaddrinfo

    def lookup(host: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and host.endswith(UNANSWERED):
            release.wait()
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", lookup)
    small = concurrent.futures.ThreadPoolExecutor(max_workers=2)
    asyncio.get_running_loop().set_default_executor(small)
    app = create_app(SimulatorConfig(seed=3, organizations=2, api_versions=("v8",)))
    try:
        async with serve(app) as port:
            text = _table("east", f"http://127.0.0.1:{port}/v8") + _dead_servers(2)
            path = write_targets(tmp_path / "t.toml", text)
            passwords = Passwords(prompt=False, given={"VBO_PASSWORD": "admin"})
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
            sock.bind(("127.0.0.1", 0))
            sock.listen(16)
            task = asyncio.create_task(
                _serve._serve(
                    path,
                    load(path, passwords),
                    passwords,
                    sock,
                    interval=1,
                    budget=None,
                    concurrency=8,
                )
            )
            try:
                base = f"http://127.0.0.1:{sock.getsockname()[1]}"
                async with httpx.AsyncClient(base_url=base) as client:
                    await wait_for_async(lambda: _published(client, "east"))
                    await wait_for_async(lambda: _published(client, "dead0", up="0.0"))
                    body = (await client.get("/metrics")).text  # plain text: rendered in a thread too
                os.kill(os.getpid(), signal.SIGTERM)
                outcome = await asyncio.wait_for(task, HANG_GUARD)
            finally:
                task.cancel()
                sock.close()
    finally:
        release.set()
        small.shutdown(wait=True)
    assert outcome is Outcome.OK
    assert f'{PREFIX}up{{server="dead0"}} 0.0' in body


def test_a_name_lookup_that_hangs_does_not_hold_the_exit(tmp_path: Path) -> None:
    """SIGTERM ends ``serve`` while a lookup of a server's name hangs (its thread cannot be
    stopped): the process used to wait for that thread before exiting."""
    started = tmp_path / "lookup-started"
    with serving(
        tmp_path, tables=_dead_servers(1), sitecustomize=NEVER_RESOLVED, LOOKUP_STARTED=str(started)
    ) as (process, _):
        deadline = time.monotonic() + HANG_GUARD
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert started.exists()
        status, err = stopped(process)
    assert status == 0
    assert "Traceback" not in err


def test_a_request_that_cannot_be_parsed_is_no_traceback(tmp_path: Path) -> None:
    """An over-long request line or header (a browser's cookies, a scanner) is answered 400 and
    logged at debug level only: each wrote aiohttp's traceback on stderr, a journal's lines for
    every such request."""
    with serving(tmp_path) as (process, base):
        port = int(base.rsplit(":", 1)[1])
        for request in (
            b"GET /metrics?" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET /metrics HTTP/1.1\r\nHost: x\r\nCookie: " + b"a" * 20_000 + b"\r\n\r\n",
        ):
            with socket.create_connection(("127.0.0.1", port), timeout=HANG_GUARD) as conn:
                conn.sendall(request)
                assert conn.recv(65536).split(b"\r\n")[0].endswith(b" 400 Bad Request")
        assert httpx.get(f"{base}/metrics").status_code == 200
        status, err = stopped(process)
    assert status == 0
    assert "Traceback" not in err
    assert "Error handling request" not in err


@contextlib.contextmanager
def serving(
    tmp_path: Path, *args: str, tables: str | None = None, sitecustomize: str | None = None, **env: str
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """``vbo-async serve`` of one server (``tables``; by default one nothing listens for) as a real
    process, with ``env`` and a ``sitecustomize`` module if given; yields it and its base URL once
    it serves."""
    targets = write_targets(
        tmp_path / "targets.toml", tables or _table("east", f"http://127.0.0.1:{closed_port()}")
    )
    if sitecustomize is not None:
        (tmp_path / "sitecustomize.py").write_text(sitecustomize, encoding="utf-8")
        env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), *filter(None, [os.environ.get("PYTHONPATH")])])
    process = subprocess.Popen(
        serve_command(targets, *args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_environment(VBO_PASSWORD="admin", **env),
    )
    with reaped(process):
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("Serving the metrics of 1 server at http://127.0.0.1:"), line
        yield process, line.split(" at ", 1)[1].split("/metrics", 1)[0]


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_banner_that_cannot_be_written_is_said_so(tmp_path: Path) -> None:
    """``vbo-async serve > /dev/full``: its banner is output as any other ('cannot write the
    output', exit 1), not an internal error."""
    targets = write_targets(tmp_path / "t.toml", _table("east", f"http://127.0.0.1:{closed_port()}"))
    with open("/dev/full", "w") as full:
        completed = subprocess.run(
            serve_command(targets),
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            env=child_environment(VBO_PASSWORD="admin"),
            timeout=HANG_GUARD,
            check=False,
        )
    assert (completed.returncode, completed.stderr.splitlines()) == (
        1,
        ["vbo-async: error: cannot write the output: No space left on device"],
    )


def stopped(process: subprocess.Popen[str], how: signal.Signals = signal.SIGTERM) -> tuple[int, str]:
    """Send ``how`` to ``process`` and wait for it to end: its exit status and its stderr."""
    process.send_signal(how)
    status = process.wait(timeout=HANG_GUARD)
    assert process.stderr is not None
    return status, process.stderr.read()


@pytest.mark.parametrize(("how", "status"), [(signal.SIGTERM, 0), (signal.SIGINT, 130)], ids=["term", "int"])
def test_signals_end_the_process_with_the_cli_exit_codes(
    tmp_path: Path, how: signal.Signals, status: int
) -> None:
    with serving(tmp_path) as (process, base):
        assert httpx.get(f"{base}/").status_code == 200
        ended, err = stopped(process, how)
    assert ended == status
    assert "Traceback" not in err


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="SIGHUP is POSIX")
@pytest.mark.parametrize(
    ("how", "burst", "status"),
    [
        (signal.SIGTERM, [signal.SIGTERM, signal.SIGHUP], 0),
        (signal.SIGINT, [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], 130),
    ],
    ids=["term", "int"],
)
def test_signals_while_stopping_do_not_change_the_exit_status(
    tmp_path: Path, how: signal.Signals, burst: list[signal.Signals], status: int
) -> None:
    """SIGTERM (or Ctrl-C), then more signals every 2 ms until the process ends (a service
    manager's second SIGTERM, a ``systemctl reload`` racing the stop): it still ends with the first
    one's status, without a traceback. Once the loop's handlers were removed, SIGTERM and SIGHUP
    were at their default actions for the last quarter of a second or so: the process was killed
    by the signal (-15, -1), or a SIGINT raised where it stood."""
    again = (
        "vbo-async: warning: 1 client closed without waiting for its logout (stopped again): "
        "its token stays valid on the server until it expires"
    )
    with serving(tmp_path) as (process, base):
        assert httpx.get(f"{base}/").status_code == 200
        process.send_signal(how)
        ended, _, err = _burst_until_it_ends(process, burst, time.monotonic() + HANG_GUARD, pause=0.002)
    assert (ended, set(err.splitlines()) - {again}) == (status, set())


def _burst_until_it_ends(
    process: subprocess.Popen[str], burst: list[signal.Signals], deadline: float, *, pause: float
) -> tuple[int, int, str]:
    """Send ``burst``'s signals in turn, ``pause`` apart, until ``process`` ends: its exit status,
    how many were sent, and its stderr."""
    sent = 0
    while process.poll() is None and time.monotonic() < deadline:
        process.send_signal(burst[sent % len(burst)])
        sent += 1
        time.sleep(pause)
    ended = process.wait(timeout=HANG_GUARD)
    assert process.stderr is not None
    return ended, sent, process.stderr.read()


def _catches(pid: int, number: int) -> bool:
    """Whether process ``pid`` handles signal ``number`` (``SigCgt`` in /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) >> (number - 1) & 1)
    return False


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc/PID/status")
@pytest.mark.parametrize(
    ("how", "burst", "statuses"),
    [
        (signal.SIGTERM, [signal.SIGTERM, signal.SIGHUP], {0}),
        (signal.SIGINT, [signal.SIGINT, signal.SIGHUP], {130}),
        # A Ctrl-C and a SIGTERM within a millisecond: which is taken first is the process's
        # (pending handlers run by signal number); either status, never a kill or a traceback.
        (signal.SIGTERM, [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], {0, 130}),
    ],
    ids=["term", "int", "both"],
)
def test_signals_while_starting_and_stopping_change_neither_status_nor_output(
    tmp_path: Path, how: signal.Signals, burst: list[signal.Signals], statuses: set[int]
) -> None:
    """A signal while ``serve`` starts (its modules importing), then more every 2 ms until it
    ends: it ends with the first one's status, without a traceback. A second signal as it
    ended found SIGTERM and SIGHUP at their default actions again (killed: -15, -1) or raised
    `Terminated` outside any handler (a traceback, exit status 1)."""
    targets = write_targets(tmp_path / "targets.toml", _table("east", f"http://127.0.0.1:{closed_port()}"))
    process = subprocess.Popen(
        serve_command(targets),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_environment(VBO_PASSWORD="admin"),
    )
    with reaped(process):
        deadline = time.monotonic() + HANG_GUARD
        while time.monotonic() < deadline and not (
            _catches(process.pid, signal.SIGTERM) and _catches(process.pid, signal.SIGHUP)
        ):
            time.sleep(0.001)  # the entry point handles both from its first lines on
        process.send_signal(how)
        # The others come as it ends: a start-up stopped takes milliseconds.
        ended, sent, err = _burst_until_it_ends(process, burst, deadline, pause=0.0005)
    assert sent > 0  # some came while it ended
    assert "Traceback" not in _without_unraisable(err), err
    assert ended in statuses, err


def _without_unraisable(err: str) -> str:
    """``err`` without Python's own reports of an exception it could not raise ("Exception
    ignored in ...": a signal's handler that landed in a weakref callback or a ``__del__``, where
    an exception is printed and dropped; the next signal of the burst stops the process)."""
    kept: list[str] = []
    lines = iter(err.splitlines())
    for line in lines:
        if not line.startswith("Exception ignored in"):
            kept.append(line)
            continue
        for inner in lines:  # the traceback, up to its last line: the exception, unindented
            if not inner.startswith((" ", "Traceback")):
                break
    return "\n".join(kept)


# --- the monitoring guide ----------------------------------------------------------------------------

GUIDE = Path(__file__).parents[1] / "docs" / "monitoring.md"
RULES = Path(__file__).parents[1] / "docs" / "monitoring-rules.yml"


async def test_the_guide_documents_every_metric_kind_and_alert(servers: dict[str, Server]) -> None:
    text = GUIDE.read_text(encoding="utf-8")
    rows = {
        match["name"]: (match["type"], re.findall(r"`(\w+)`", match["labels"]))
        for match in re.finditer(
            r"^\| `(?P<name>veeam_vb365_\w+)` \| (?P<type>gauge|counter) \| (?P<labels>[^|]*) \|", text, re.M
        )
    }
    assert rows == {spec.name: (spec.type, ["server", *spec.labels]) for spec in METRICS}
    for kind in ERROR_KINDS:
        assert f"`{kind}`" in text.split("**`veeam_vb365_sweep_errors_total`**", 1)[1], kind
    exporter = exporter_of(servers["v8"])
    own = {name for name in families(await swept(exporter)) if name.startswith(SELF_PREFIX)}
    documented = set(re.findall(r"^\| `(vbo_async_exporter_\w+)` \|", text, re.M))
    assert {name.removesuffix("_total") for name in documented} == own
    alerts = re.findall(r"^ +- alert: (\w+)$", RULES.read_text(encoding="utf-8"), re.M)
    assert alerts
    assert all(f"| `{alert}` |" in text for alert in alerts), alerts


async def test_a_server_too_big_to_list_whole_is_read_tenant_by_tenant() -> None:
    """A server whose whole job listing is over the client's ``max_response_bytes`` while each
    tenant's is not: ``poll`` and ``check`` read it tenant by tenant (``poll_jobs(batch=None)``),
    and so does ``serve``, instead of every tenant failing with the whole listing's error."""
    server = Server("big", ("v1",), seed=12, organizations=8)
    await server.client.aclose()
    server.client = VBOClient(
        "https://big.test:4443",
        username="admin",
        password="admin",
        transport=server.wire,
        retry=FAST,
        max_response_bytes=256 * 1024,
    )
    server.spec = ServerSpec(name="big", client=server.client)

    def padded(path: str, data: Any) -> Any:
        if path.endswith("/v1/jobs"):  # the server-wide listing only, not a tenant's
            for item in data:
                item["description"] = "x" * 64 * 1024
        return data

    try:
        expected = {job.id for job in await server.client.jobs()}  # before the padding
        server.wire.edit = padded
        exporter = exporter_of(server)
        body = await swept(exporter)
    finally:
        await server.client.aclose()
    assert expected
    assert jobs_of(body, "big") == expected
    assert {s.value for s in samples(body, PREFIX + "organization_up")} == {1.0}
    assert exporter.errors["big"]["organization"] == 0


async def test_the_storage_of_many_tenants_is_read_by_a_bounded_number_of_tasks() -> None:
    """A server listing 200 tenants (a hostile one may list a million) to a client of 4 slots:
    each tenant's ``usedRepositories`` is read, at most as many at once as the client allows, by
    a bounded number of tasks, not one task per tenant waiting for a slot (about 6 KB each, which
    a huge listing turns into gigabytes)."""
    server = Server("many", ("v8",), seed=13, organizations=200)
    await server.client.aclose()
    held: list[str] = []
    four, release = asyncio.Event(), asyncio.Event()

    class Holding(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if request.url.path.lower().endswith("/usedrepositories"):
                held.append(request.url.path)
                if len(held) == 4:
                    four.set()
                await release.wait()
            return await server.wire.handle_async_request(request)

    async with VBOClient(
        "https://many.test:4443",
        username="admin",
        password="admin",
        transport=Holding(),
        retry=FAST,
        max_concurrency=4,
    ) as client:
        sweep = asyncio.create_task(
            _sweeps.sweep_server(ServerSpec(name="many", client=client), policy=HealthPolicy())
        )
        async with asyncio.timeout(HANG_GUARD):  # a guard against a hang only
            await four.wait()
            alive = len(asyncio.all_tasks())
            release.set()
            snapshot = await sweep
    assert alive < 50
    assert snapshot.up
    assert sorted(held) == sorted(f"/v8/Organizations/{o.id}/usedRepositories" for o in await _listed(server))


async def _listed(server: Server) -> list[Any]:
    async with VBOClient(
        "https://many.test:4443", username="admin", password="admin", transport=server.wire, retry=FAST
    ) as client:
        return await client.organizations()


def test_a_whole_server_is_batched_and_a_choice_of_tenants_is_left_to_poll_jobs() -> None:
    """``poll_jobs``'s own choice (``batch=None``: a batch for 8 or more tenants of a server, with
    its fallback for listings too big to read whole), as poll and check make it; a server swept
    whole with fewer tenants is one batch still, its whole listing being all that is swept."""
    assert _sweeps.batch_mode("all", 3) is True
    assert _sweeps.batch_mode("all", 8) is None
    assert _sweeps.batch_mode("all", 500) is None
    assert _sweeps.batch_mode(("a", "b", "c"), 3) is None
    assert _sweeps.batch_mode(tuple("abcdefghij"), 10) is None


async def test_each_server_is_published_as_soon_as_its_sweep_ends() -> None:
    """A server hanging within a long ``--timeout`` holds up only itself: the others' series are
    published as soon as their sweeps end, and they go on being swept every interval meanwhile,
    while the hanging one is never swept twice at once."""
    fast, slow = Server("fast", ("v8",), seed=21), Server("slow", ("v8",), seed=22)
    slow.wire.gate = gate = asyncio.Event()
    exporter = exporter_of(fast, slow, interval=0.2, budget=10 * HANG_GUARD)
    exporter.start()
    try:
        await wait_for(lambda: bool(jobs_of(exporter.body(gzip=False), "fast")))
        body = exporter.body(gzip=False)
        assert value(body, PREFIX + "up", server="fast") == 1
        assert not samples(body, PREFIX + "up", server="slow"), "nothing of a server not swept yet"
        await wait_for(lambda: len(fast.wire.listings()) >= 3)
        assert len(slow.wire.listings()) == 1
        assert exporter.stats.sweeps == 0, "no sweep of every server completed yet"
        gate.set()
        await wait_for(lambda: bool(jobs_of(exporter.body(gzip=False), "slow")))
        await wait_for(lambda: exporter.stats.sweeps >= 1)
        body = exporter.body(gzip=False)
        assert jobs_of(body, "fast") == {job.id for job in await fast.client.jobs()}
        assert jobs_of(body, "slow") == {job.id for job in await slow.client.jobs()}
        assert value(body, SELF_PREFIX + "servers_up") == 2
    finally:
        await exporter.stop()
        await fast.client.aclose()
        await slow.client.aclose()


async def test_cancelling_serve_leaves_no_task_behind(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """``_serve`` cancelled (by whoever embeds it) stops its loops and closes its clients, and
    leaves no task of its own running: its wait for a signal included."""
    app = create_app(SimulatorConfig(seed=3, organizations=2, api_versions=("v8",)))
    simulator: Simulator = app.state.simulator
    async with serve(app) as port:
        before = asyncio.all_tasks()
        async with _serving(tmp_path, f"http://127.0.0.1:{port}/v8") as (sock, task):
            await wait_for(lambda: "Serving the metrics of 1 server" in capsys.readouterr().out)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{sock.getsockname()[1]}") as client:
                await wait_for_async(lambda: _healthy(client))
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await asyncio.sleep(0)  # a task cancelled but not awaited would end here
            left = [t for t in asyncio.all_tasks() - before if "uvicorn" not in _code_file(t)]
            assert left == []
    assert simulator.stats.logouts["v8"] == 1


def _code_file(task: asyncio.Task[Any]) -> str:
    """The file of the code ``task`` runs (the simulator's server runs its own tasks)."""
    code = getattr(task.get_coro(), "cr_code", None)
    return code.co_filename if code is not None else ""


async def test_a_server_whose_publishing_fails_holds_up_only_itself(
    servers: dict[str, Server], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An internal error after a server's sweep (rendering its series) is logged and counted,
    that server's loop goes on, and the other server is published and swept as before."""
    real = _exposition_module.render_server

    def buggy(snapshot: Any, errors: Any) -> Any:
        if snapshot.server == "v8":
            raise RuntimeError("a rendering bug")
        return real(snapshot, errors)

    monkeypatch.setattr(_exporter_module, "render_server", buggy)
    exporter = exporter_of(
        servers["v8"], servers["v1"], interval=0.2, budget=60
    )  # no sweep cut short on a loaded machine
    exporter.start()
    try:
        await wait_for(lambda: exporter.stats.failed_sweeps >= 2 and len(servers["v1"].wire.listings()) >= 2)
        body = exporter.body(gzip=False)
        assert jobs_of(body, "v1")
        assert not samples(body, PREFIX + "up", server="v8")
        assert exporter.stats.sweeps == 0, "v8 was never published"
        assert not exporter.health()[0]
        assert len(servers["v8"].wire.listings()) >= 2, "v8's loop goes on"
    finally:
        await exporter.stop()
    assert "the sweep of v8 failed on an internal error" in caplog.text


async def test_the_servers_clock_offset_is_exported(servers: dict[str, Server]) -> None:
    """A server whose ``Date`` is two hours behind the exporter's clock: its offset is a gauge,
    to the second (an age from its timestamps can take it out), the other server's about 0."""
    servers["v1"].wire.skew = dt.timedelta(hours=-2)
    body = await swept(exporter_of(servers["v8"], servers["v1"]))
    assert abs(value(body, PREFIX + "server_clock_offset_seconds", server="v1") + 7200) <= 2
    assert abs(value(body, PREFIX + "server_clock_offset_seconds", server="v8")) <= 2
    assert servers["v1"].client.server_clock_offset is not None


async def test_healthz_names_what_it_waits_for(servers: dict[str, Server]) -> None:
    """Before every server is published, ``/healthz`` says how many are; once stale, it names
    the server published longest ago."""
    servers["v1"].wire.gate = gate = asyncio.Event()
    exporter = exporter_of(servers["v8"], servers["v1"], interval=60)
    exporter.start()
    try:
        await wait_for(lambda: exporter.stats.published == 1)
        healthy, line = exporter.health()
        assert not healthy
        assert line.startswith("no sweep completed yet (started ")
        assert line.endswith("; 1 of 2 servers published)")
        gate.set()
        await wait_for(lambda: exporter.stats.sweeps == 1)
        assert exporter.stats.last_end is not None
        healthy, line = exporter.health(now=exporter.stats.last_end + 3 * 60 + 1)
        assert not healthy
        assert line == "the last sweep of v8 completed 181 s ago, more than 3 intervals of 60 s"
    finally:
        await exporter.stop()


async def test_healthz_counts_the_wait_for_a_first_sweep_on_the_steady_clock(
    servers: dict[str, Server], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The system clock stepped back an hour (an NTP correction) while the first sweep runs:
    ``/healthz`` said the loop had started "-3600 s ago". It counts on the monotonic clock, as
    the age of the last sweep is counted."""
    servers["v1"].wire.gate = gate = asyncio.Event()
    exporter = exporter_of(servers["v1"], interval=60)
    exporter.start()
    try:
        await wait_for(lambda: exporter.stats.started is not None)
        stepped = type(
            "Stepped",
            (),
            {
                "time": staticmethod(lambda: time.time() - 3600),
                "monotonic": staticmethod(time.monotonic),
                "perf_counter": staticmethod(time.perf_counter),
            },
        )
        monkeypatch.setattr(_exporter_module, "time", stepped)
        healthy, line = exporter.health()
        assert not healthy
        since = re.fullmatch(
            r"no sweep completed yet \(started (-?\d+) s ago; 0 of 1 servers published\)", line
        )
        assert since is not None, line
        assert int(since.group(1)) >= 0
    finally:
        gate.set()
        await exporter.stop()


async def test_serve_without_a_timeout_retries_within_the_interval(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Without ``--timeout`` a server's sweep may take the interval, so its client waits for no
    retry past it: a server throttling the exporter (429, ``Retry-After: 30``) under a 3 s interval
    is down as rate limited, saying when to retry, not as a sweep that timed out."""
    asked: list[str] = []

    throttled = throttling_app(asked)

    async def published(client: httpx.AsyncClient) -> bool:
        return bool(samples((await client.get("/metrics")).content, PREFIX + "up", server="east"))

    caplog.set_level("WARNING", logger="vbo_async.cli")
    async with (
        serve(throttled) as port,
        _serving(tmp_path, f"http://127.0.0.1:{port}/v8", interval=3) as (sock, _),
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{sock.getsockname()[1]}") as client,
    ):
        await wait_for_async(lambda: published(client))
    (down,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("server east is down")]
    assert "retry after 30 s" in down
    assert "timed out" not in down
    assert len(asked) == 1  # the token request, not retried into the throttle


async def test_a_retry_wait_past_the_sweeps_budget_is_not_begun_late_in_the_sweep(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A request first tried late in a server's sweep (45 s into a 50 s budget: the sweep's clock
    is moved back) throttled with ``Retry-After: 30`` is not waited for: the budget would cut
    the wait short and the server be down as "timed out" instead of rate limited."""
    from vbo_async._cli._connect import retries_within
    from vbo_async._sending import Sender

    from .conftest import FakeVBO, client_for, json_response

    waits: list[float] = []

    async def no_wait(self: Any, seconds: float, **_: Any) -> None:
        waits.append(seconds)

    late = type(
        "LateClock",
        (),
        {
            "monotonic": staticmethod(lambda: time.monotonic() - 45.0),
            "perf_counter": staticmethod(time.perf_counter),
            "time": staticmethod(time.time),
        },
    )
    monkeypatch.setattr(_sweeps, "time", late)
    monkeypatch.setattr(Sender, "_pause", no_wait)
    fake = FakeVBO()
    fake.token_script = [json_response(429, {"message": "Quota Exceeded"}, headers={"Retry-After": "30"})] * 4
    async with client_for(fake, retry=retries_within(50.0)) as client:
        snapshot = await _sweeps.sweep_server(
            ServerSpec(name="east", client=client), policy=HealthPolicy(), budget=50
        )
    assert waits == []
    assert len(fake.token_requests) == 1
    assert not snapshot.up
    assert snapshot.problem is not None
    assert "retry after 30 s" in snapshot.problem


async def test_no_free_worker_thread_holds_back_no_publish_and_no_scrape(servers: dict[str, Server]) -> None:
    """Every thread of serve's executor taken (name lookups that never end, or a process limit
    refusing threads: `NoThread`): a sweep's series are still published, rendered on the event
    loop, and a plain-text scrape is still answered, not a sweep failing on an internal error and
    an exposition left as it was (a server's old series kept for ever) or a 500."""
    loop = asyncio.get_running_loop()
    executor = DaemonThreads(max_threads=1)
    release = threading.Event()
    held = loop.run_in_executor(executor, release.wait, HANG_GUARD)
    loop.set_default_executor(executor)
    try:
        with pytest.raises(NoThread):
            await asyncio.to_thread(int)  # the executor's one thread is taken
        exporter = exporter_of(servers["v8"], servers["v1"])
        await exporter.sweep()
        assert exporter.stats.sweeps == 1
        assert exporter.stats.failed_sweeps == 0
        assert jobs_of(exporter.body(gzip=False), "v8") == {
            job.id for job in await servers["v8"].client.jobs()
        }
        async with http(exporter) as client:
            answer = await client.get("/metrics", headers={"Accept-Encoding": "identity"})
        assert answer.status_code == 200
        assert answer.content.startswith(exporter.exposition.text())
        assert value(answer.content, SELF_PREFIX + "servers_up") == 2
    finally:
        release.set()
        await held


def test_serve_refused_every_thread_publishes_and_stops_cleanly(tmp_path: Path) -> None:
    """A process that may start no thread (a container at its process limit): each sweep is
    still published, and SIGTERM still ends ``serve`` with 0. Rendering failed on `NoThread`
    (logged as an internal error, the server never published), and asyncio's end of the run
    started a thread anyway, ending the process with an internal error (1)."""
    with serving(tmp_path, sitecustomize=REFUSING_THREADS) as (process, base):
        deadline = time.monotonic() + HANG_GUARD
        body = ""
        while f'{PREFIX}up{{server="east"}} 0.0' not in body and time.monotonic() < deadline:
            time.sleep(0.05)
            body = httpx.get(f"{base}/metrics", headers={"Accept-Encoding": "identity"}).text
        assert f'{PREFIX}up{{server="east"}} 0.0' in body
        status, err = stopped(process)
    assert "internal error" not in err
    assert status == 0, err


async def test_a_build_that_could_not_be_read_gives_no_server_info(servers: dict[str, Server]) -> None:
    """A v8 server whose ``ServiceInstance`` fails for a sweep has no ``server_info`` then (the
    error counted), not one with an empty build: that is what v1 servers say, and a new series
    that came and went with each failed read."""
    server = servers["v8"]
    exporter = exporter_of(server)
    body = await swept(exporter)
    (info,) = samples(body, PREFIX + "server_info", server="v8")
    assert info.labels["api_version"] == "v8"
    assert info.labels["build"]
    server.wire.failing = {"/serviceinstance"}
    body = await swept(exporter)
    assert not samples(body, PREFIX + "server_info", server="v8")
    assert value(body, PREFIX + "sweep_errors_total", server="v8", kind="service_instance") == 1
    assert value(body, PREFIX + "up", server="v8") == 1


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("gzip", True),
        ("GZip", True),
        ("deflate, gzip;q=0.5", True),
        ("gzip; q=1.0", True),
        ("*", True),
        ("br, *;q=0.1", True),
        ("", False),
        ("identity", False),
        ("gzip;q=0", False),
        ("gzip; q=0.000", False),
        ("gzip;q=0, *", False),
        ("*;q=0", False),
        ("*, gzip;q=0", False),
        ("gzip;q=bad", False),
        ("x-gzip", True),
        ("X-GZIP;q=0.5", True),
        ("x-gzip;q=0, *", False),
        ("gzip;q=0, x-gzip", False),
    ],
)
def test_gzip_is_sent_only_when_accepted_with_a_q_value_above_zero(header: str, expected: bool) -> None:
    assert _exporter_module.accepts_gzip(header) is expected


async def test_a_scrape_refusing_gzip_with_q_zero_gets_plain_text(servers: dict[str, Server]) -> None:
    exporter = exporter_of(servers["v8"])
    await exporter.sweep()
    async with http(exporter) as client:
        answer = await client.get("/metrics", headers={"Accept-Encoding": "gzip;q=0, identity"})
    assert answer.status_code == 200
    assert "content-encoding" not in answer.headers
    assert jobs_of(answer.content, "v8")


@pytest.mark.parametrize("version", ["v1", "v8"])
async def test_a_sweep_logs_a_bounded_number_of_refused_tenants(
    servers: dict[str, Server], version: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A hostile server listing 300 organizations the client cannot decode: each is an
    ``organization`` error, but a sweep logs the first `MAX_TENANT_WARNINGS` of them and one
    line counting the rest, not a warning per tenant on every sweep (10,000 such tenants made
    10,000 lines a minute for as long as ``serve`` ran)."""
    server = servers[version]

    def spoil(path: str, data: Any) -> Any:
        if path.endswith("/organizations"):
            listed = data["results"] if isinstance(data, dict) else data
            listed += [{"id": f"bad-{n}", "name": {"not": "a name"}} for n in range(300)]
        return data

    server.wire.edit = spoil
    caplog.set_level("WARNING", logger="vbo_async")
    exporter = exporter_of(server)
    for sweep in range(2):
        caplog.clear()
        body = await swept(exporter)
        assert value(body, PREFIX + "up", server=version) == 1
        assert exporter.errors[version]["organization"] == 300 * (sweep + 1)
        lines = [record.getMessage() for record in caplog.records]
        limit = _sweeps.MAX_TENANT_WARNINGS
        assert len(lines) == limit + 1, lines
        assert all(line.startswith(f"{version}: bad-") for line in lines[:limit])
        assert lines[-1] == (
            f"{version}: {300 - limit} more tenants that could not be swept are not logged "
            '(sweep_errors_total{kind="organization"} counts every one)'
        )


async def test_serve_log_lines_quote_a_bounded_part_of_the_servers_text(
    servers: dict[str, Server], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each line ``serve`` writes on stderr is one line of at most `LOG_CHARS` characters (and its
    length), whatever the server's text it quotes: an organization listed without an id under a
    name of 100,000 characters, and a sweep's internal error quoting as much, were logged whole
    on every sweep."""
    server = servers["v8"]
    huge = "\u202eevil\x1b[2J\n" + "n" * 100_000

    def spoil(path: str, data: Any) -> Any:
        if path.endswith("/organizations"):
            data["results"].append({"id": "", "name": huge})
        return data

    async def buggy(self: Any) -> None:
        raise RuntimeError(huge)

    server.wire.edit = spoil
    monkeypatch.setattr(_sweeps._Reader, "_proxies", buggy)
    with configured_logging(None):
        await swept(exporter_of(server))
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 3, [line[:100] for line in lines]
    assert lines[0].startswith("vbo-async: warning: v8: \\u202eevil\\x1b[2J\\nnnn")
    assert lines[1] == "vbo-async: error: internal error while sweeping v8"
    assert lines[2].startswith("vbo-async: warning: server v8 is down: internal error: RuntimeError: \\u202e")
    for line in lines:
        assert len(line) <= LOG_CHARS + 100
        assert not re.search(r"[\x00-\x1f\x7f-\x9f\u202e]", line)
    for line in (lines[0], lines[2]):
        said = re.search(r"\.\.\. \(([0-9]+) characters\)$", line)
        assert said is not None
        assert int(said[1]) > 100_000
