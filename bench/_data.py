"""Benchmark data: wire jobs from the simulator (v1 arrays, v8 page objects) and variants of them."""

from __future__ import annotations

import copy
import math
import random
from typing import Any

import orjson

from vbo_async.simulator import Simulator, SimulatorConfig

__all__ = [
    "JOBS_PER_ORGANIZATION",
    "ORGANIZATION",
    "distinct_windows",
    "token_body",
    "wire_body",
    "wire_jobs",
]

JOBS_PER_ORGANIZATION = (20, 60)
"""How many jobs each simulated organization has when benchmark data is drawn."""
ORGANIZATION = "4d87f7dd-cd9f-466c-9753-bd041bb65caf"
"""The organization the request-path rows ask for (the canned answer is the same whatever it is)."""
_WINDOW_PATH = {
    "v1": ("schedulePolicy", "backupWindow", "backupIntervalsArray"),
    "v8": ("schedulePolicy", "backupWindowSettings", "backupWindow"),
}


def _simulator(organizations: int, seed: int) -> Simulator:
    config = SimulatorConfig(
        seed=seed, organizations=organizations, jobs_per_organization=JOBS_PER_ORGANIZATION
    )
    return Simulator(config)


def wire_jobs(count: int, *, seed: int = 2017, version: str = "v1") -> list[dict[str, Any]]:
    """The first ``count`` jobs (wire dicts of ``version``, as ``GET /{version}/Jobs`` sends them)
    of a simulator with enough organizations. The simulator varies what a real server varies:
    statuses (Success/Warning/Failed, Stopped for never-run jobs), ``lastRun``/``nextRun`` null
    for jobs never run or disabled, schedules and four 168-hour backup window patterns (three
    quarters of the jobs back up at any hour); v1 writes string booleans, 7-digit fractions and
    absolute hrefs, v8 real booleans, ``organizationId``/``eTag``, ``backupWindowSettings``,
    periodic jobs' second window and server-relative hrefs. The first jobs are the same whatever
    ``count`` is. Nothing is cached: callers serialise and drop the dicts, so they do not sit in
    the heap the garbage collector walks while other things are timed."""
    organizations = math.ceil(count / (sum(JOBS_PER_ORGANIZATION) / 2) * 1.1) + 1
    while True:
        simulator = _simulator(organizations, seed)
        if version == "v1":
            jobs = simulator.jobs_wire()
        else:
            jobs = simulator.jobs_wire(version=version, limit=10_000)["results"]
        if len(jobs) >= count:
            return jobs[:count]
        organizations *= 2


def distinct_windows(
    jobs: list[dict[str, Any]], *, seed: int = 7, version: str = "v1"
) -> list[dict[str, Any]]:
    """Copies of ``jobs`` whose backup windows are (almost surely) all different: each day allows
    one random block of hours. A worst case for decoders that share equal windows."""
    rng = random.Random(seed)
    out = copy.deepcopy(jobs)
    policy_key, settings_key, array_key = _WINDOW_PATH[version]
    for job in out:
        window: list[bool] = []
        for _ in range(7):
            start, end = sorted(rng.sample(range(25), 2))
            window += [start <= hour < end for hour in range(24)]
        job[policy_key][settings_key][array_key] = window
    return out


def wire_body(version: str, count: int, *, distinct: bool = False) -> bytes:
    """What the server answers when asked for one organization's ``count`` jobs: v1's bare JSON
    array (``GET /v1/Organizations/{id}/Jobs``), or v8's page object ``{offset, limit, results,
    _links}`` (``GET /v8/Jobs?organizationId={id}&limit=10000``, one page holding them all, so
    without a ``next`` link, every job's ``organizationId`` that one: the client leaves out a job
    naming another). ``distinct`` gives every job its own backup window."""
    jobs = wire_jobs(count, version=version)
    if distinct:
        jobs = distinct_windows(jobs, version=version)
    if version == "v1":
        return orjson.dumps(jobs)
    for job in jobs:  # v8 filters by organizationId: a server answers that tenant's jobs alone
        if "organizationId" in job:
            job["organizationId"] = ORGANIZATION
    query = f"organizationId={ORGANIZATION}&offset=0&limit=10000"
    page = {
        "offset": 0,
        "limit": 10_000,
        "results": jobs,
        "_links": {"self": {"href": f"/{version}/Jobs?{query}"}},
    }
    return orjson.dumps(page)


def token_body(version: str) -> bytes:
    """The simulator's answer to a password grant on ``version``'s token endpoint."""
    simulator = _simulator(1, 1)
    form = {"grant_type": "password", "username": "admin", "password": "admin"}
    if version not in ("v1", "v6"):
        form["disable_antiforgery_token"] = "true"
    return orjson.dumps(simulator.token(form, version=version))
