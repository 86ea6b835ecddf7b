"""Requests per sweep: what `poll_jobs` sends for 300 tenants of one server, against the minimum.

Issue 12's goal 1: a sweep of many tenants of one server costs requests in proportion to servers,
not tenants; the 300-tenant sweep in ≤ 10 requests on v1 and on v8. For each API version, one
in-process simulator (``httpx.ASGITransport``: the counts do not depend on timing) holds 300
organizations (seed 0, 1,055 jobs, as the CLI benchmark's), and a fresh client polls all of them
batched and one request per tenant, with and without a health policy. The simulator counts what it
receives; the client's own count (`VBOClient.requests_sent`) must agree.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
from typing import Any

import httpx
from _common import Table, fmt_ratio
from _server import KINDS, kind_of

from vbo_async import HealthPolicy, PollTarget, VBOClient, poll_jobs
from vbo_async._dialects import DIALECTS
from vbo_async._health import health_window
from vbo_async.simulator import Simulator, SimulatorConfig, create_app

__all__ = ["run"]

VERSIONS = ("v1", "v6", "v7", "v8")
SWEEPS: dict[str, dict[str, Any]] = {
    "batched": {"batch": True},
    "a request per tenant (batch=False)": {"batch": False},
    "batched, health": {"batch": True, "health": HealthPolicy()},
    "a request per tenant, health": {"batch": False, "health": HealthPolicy()},
}
GOAL = 10
"""Requests for the 300-tenant sweep on v1 and on v8, without health (issue 12, goal 1)."""


def _client(app: Any, version: str) -> VBOClient:
    return VBOClient(
        "https://vbo.test:4443",
        username="admin",
        password="admin",
        api_version=version,
        transport=httpx.ASGITransport(app=app),
    )


async def _sweep(app: Any, version: str, org_ids: list[str], options: dict[str, Any]) -> tuple[int, int]:
    """Poll every organization; (jobs listed, requests the client counted)."""
    jobs = 0
    async with _client(app, version) as vbo:
        targets = [PollTarget(client=vbo, organization_id=org_id) for org_id in org_ids]
        async with poll_jobs(targets, **options) as sweep:
            async for result in sweep:
                if result.error is not None:
                    raise result.error
                if "health" in options and len(result.health) != len(result.jobs):
                    raise AssertionError(f"{result.target.label}: not every job judged")
                jobs += len(result.jobs)
    return jobs, vbo.requests_sent


async def _sessions_in_window(app: Any, version: str) -> int:
    """How many sessions a batched health sweep needs: those ended within its window."""
    window = health_window(HealthPolicy())
    async with _client(app, version) as vbo:
        found = await vbo.recent_sessions(dt.datetime.now(dt.UTC) - window)
    return sum(len(sessions) for sessions in found.values())


def _minimum(version: str, organizations: int, jobs: int, sessions: int, *, health: bool) -> int:
    """The fewest requests the data needs on one server: a token, the organizations (to tell an
    unknown id from a tenant without jobs), every job, and with health the sessions of the window:
    all in pages of `page_limit` where the version pages (v1 answers each listing whole), except
    v1's sessions, which can only be listed job by job."""
    dialect = DIALECTS[version]
    limit = dialect.page_limit

    def pages(items: int) -> int:
        return 1 if limit is None else max(1, math.ceil(items / limit))

    needed = 1 + pages(organizations) + pages(jobs)
    if health:
        needed += pages(sessions) if "sessions_since" in dialect.paths else jobs
    return needed


def run(*, smoke: bool) -> list[str]:
    """Print the requests table; return the verdicts."""
    organizations = 12 if smoke else 300
    table = Table(
        f"Requests per sweep of {organizations} tenants of one server, against the minimum the data needs "
        "(in-process simulator, seed 0; counted by the simulator)",
        [
            "sweep",
            "jobs",
            "requests",
            " · ".join(kind for kind in KINDS if kind != "other"),
            "minimum",
            "× minimum",
        ],
    )
    verdicts = []
    for version in VERSIONS:
        simulator = Simulator(SimulatorConfig(seed=0, organizations=organizations, api_versions=(version,)))
        app = create_app(simulator=simulator)
        org_ids = simulator.organization_ids()
        in_window = asyncio.run(_sessions_in_window(app, version))
        for name, options in SWEEPS.items():
            simulator.reset_stats()
            jobs, counted = asyncio.run(_sweep(app, version, org_ids, options))
            kinds = dict.fromkeys(KINDS, 0)
            for (method, path), count in simulator.stats.by_endpoint.items():
                kinds[kind_of(method, path)] += count
            total = sum(kinds.values())
            if total != counted or kinds["other"]:
                raise AssertionError(f"{version} {name}: client counted {counted}, server {kinds}")
            minimum = _minimum(version, len(org_ids), jobs, in_window, health="health" in options)
            table.add(
                f"{version}, {name}",
                f"{jobs:,}",
                f"{total:,}",
                " · ".join(f"{kinds[kind]:,}" for kind in KINDS if kind != "other"),
                f"{minimum:,}",
                fmt_ratio(total / minimum),
            )
            if name == "batched" and version in ("v1", "v8"):
                verdicts.append(
                    f"requests for {organizations} tenants on {version}, batched: {total} "
                    f"(minimum {minimum}); goal ≤ {GOAL} → {'MET' if total <= GOAL else 'NOT MET'}"
                )
    command = "python bench/run.py requests" + (" --smoke" if smoke else "")
    table.notes.append(
        f"Command: `{command}`. A fresh client per sweep (`api_version` pinned, so no version probes), "
        "`poll_jobs(targets, batch=..., health=...)` without `follow`. The minimum per server is a token, "
        "the organizations and every job, in pages of 10,000 from v6 on (v1 answers each listing whole), "
        "and with health the sessions that ended in the policy's window (28 h for `HealthPolicy()`), in "
        "one listing from v6 on (`/JobSessions?endTimeLowerBound=`, pages of 10,000) but one listing per "
        "job on v1, which can neither filter sessions nor list them by tenant. The minimum leaves out "
        "the logout of v7+ (`POST /token/logout` when the client closes), which the data does not need "
        "but a well-behaved client sends."
    )
    table.print()
    for line in verdicts:
        print("*", line)
    print()
    return verdicts
