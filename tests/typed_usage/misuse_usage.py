# pyright: strict
"""Mistakes a checker must catch: each line below is an error, its ignore comment is needed.

mypy (``--strict`` warns about unused ignores) and pyright (``reportUnnecessaryTypeIgnoreComment``,
which reads only its own ``pyright: ignore`` comments here) fail the test when a mistake goes
unnoticed, that is when the library's annotations are too wide for it.
"""

from __future__ import annotations

import datetime as dt

from vbo_async import (
    BackupRepository,
    CollectionLink,
    HealthPolicy,
    Job,
    JobHealth,
    Link,
    PollResult,
    PollTarget,
    Proxy,
    RetryPolicy,
    VBOClient,
    configure_logging,
)
from vbo_async.simulator import SimulatorConfig


async def mistakes(vbo: VBOClient, job: Job, target: PollTarget, health: JobHealth) -> None:
    RetryPolicy(statuses=503)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
    RetryPolicy(statuses=["503"])  # type: ignore[list-item]  # pyright: ignore[reportArgumentType]
    PollResult(target=target, health={job.id: "OK"})  # type: ignore[dict-item]  # pyright: ignore[reportArgumentType]
    PollResult(target=target, health={job: health})  # type: ignore[dict-item]  # pyright: ignore[reportArgumentType]
    PollResult(target=target, link_errors={job.id: None})  # type: ignore[dict-item]  # pyright: ignore[reportArgumentType]
    PollResult(target=target, prefetched={"proxy": None})  # type: ignore[dict-item]  # pyright: ignore[reportArgumentType]
    VBOClient("https://x", username="u", password="p", verify=1.5)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
    HealthPolicy(max_age=26)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
    await vbo.job_health("job id")  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
    await job.links.repository  # type: ignore[misc]  # pyright: ignore[reportGeneralTypeIssues]
    # A typo'd relation is the broadest link (a str may name one at run time): caught where used.
    typo: Proxy = await job.links.require("repositories")  # type: ignore[assignment]  # pyright: ignore[reportAssignmentType]
    narrower: CollectionLink[Job] = job.links.require("jobsessions")  # type: ignore[assignment]  # pyright: ignore[reportAssignmentType]
    repository: Link[BackupRepository] = job.links.require("proxy")  # type: ignore[assignment]  # pyright: ignore[reportAssignmentType]
    proxy: Proxy = await job.links.require("repository")  # type: ignore[assignment]  # pyright: ignore[reportAssignmentType]
    job.name = "renamed"  # type: ignore[misc]  # pyright: ignore[reportAttributeAccessIssue]
    await vbo.recent_sessions(dt.date.today())  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
    configure_logging("info", stream=42)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
    SimulatorConfig(api_versions="v8")  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
    SimulatorConfig(api_versions=8)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
    del repository, proxy, typo, narrower
