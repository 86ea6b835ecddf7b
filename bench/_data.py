"""Benchmark data: v1 wire jobs from the simulator across many organizations, and variants of them."""

from __future__ import annotations

import copy
import math
import random
from typing import Any

from vbo_async.simulator import Simulator, SimulatorConfig

__all__ = ["JOBS_PER_ORGANIZATION", "distinct_windows", "wire_jobs"]

JOBS_PER_ORGANIZATION = (20, 60)
"""How many jobs each simulated organization has when benchmark data is drawn."""


def wire_jobs(count: int, *, seed: int = 2017) -> list[dict[str, Any]]:
    """The first ``count`` jobs (v1 wire dicts, as ``GET /v1/Jobs`` sends them) of a simulator
    with enough organizations. The simulator varies what a real server varies: statuses
    (Success/Warning/Failed, Stopped for never-run jobs), ``lastRun``/``nextRun`` null for jobs
    never run or disabled, ``Z`` and numeric UTC offsets, schedules and four 168-hour backup
    window patterns (three quarters of the jobs back up at any hour). The first jobs are the same
    whatever ``count`` is. Nothing is cached: callers serialise and drop the dicts, so they do not
    sit in the heap the garbage collector walks while other things are timed."""
    organizations = math.ceil(count / (sum(JOBS_PER_ORGANIZATION) / 2) * 1.1) + 1
    while True:
        simulator = Simulator(
            SimulatorConfig(
                seed=seed, organizations=organizations, jobs_per_organization=JOBS_PER_ORGANIZATION
            )
        )
        jobs = simulator.jobs_wire()
        if len(jobs) >= count:
            return jobs[:count]
        organizations *= 2


def distinct_windows(jobs: list[dict[str, Any]], *, seed: int = 7) -> list[dict[str, Any]]:
    """Copies of ``jobs`` whose backup windows are (almost surely) all different: each day allows
    one random block of hours. A worst case for decoders that share equal windows."""
    rng = random.Random(seed)
    out = copy.deepcopy(jobs)
    for job in out:
        window: list[bool] = []
        for _ in range(7):
            start, end = sorted(rng.sample(range(25), 2))
            window += [start <= hour < end for hour in range(24)]
        job["schedulePolicy"]["backupWindow"]["backupIntervalsArray"] = window
    return out
