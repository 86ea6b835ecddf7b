"""One long-lived client swept again and again against a server whose data changes.

An application (``vbo-async serve``, a web backend) keeps one `VBOClient` for weeks while jobs are
created and deleted, repositories renamed and schedules changed. Its caches (links per href,
shared schedule policies) must never serve what the server no longer says: every sweep reads
what a new client reads, the prefetched repositories carry their new names, a deleted job is
gone and a new one is there; and the exporter's series follow (a deleted job's and tenant's
series leave ``/metrics``). The caches' own bounds are the decoding tests'; here what is held
from one sweep to the next is counted: the exposition of a server whose data does not change
stays the same size.
"""

from __future__ import annotations

import datetime as dt

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from vbo_async import BackupRepository, HealthPolicy, PollResult, PollTarget, VBOClient, poll_jobs
from vbo_async._cli._exporter import Exporter
from vbo_async._cli._sweeps import ServerSpec
from vbo_async.simulator import Simulator, SimulatorConfig, create_app

from .conftest import FAST

EPOCH = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
SWEEPS = 8


def config(*, seed: int, organizations: int) -> SimulatorConfig:
    return SimulatorConfig(seed=seed, organizations=organizations, epoch=EPOCH, jobs_per_organization=(3, 4))


def client_of(simulator: Simulator, version: str) -> VBOClient:
    return VBOClient(
        "https://vbo.test:4443",
        username="admin",
        password="admin",
        api_version=version,
        transport=httpx.ASGITransport(app=create_app(simulator=simulator)),
        retry=FAST,
    )


def change(simulator: Simulator, sweep: int) -> None:
    """What an administrator does between two sweeps: every repository renamed, every job's
    retries changed, the first job of each organization deleted and a new one created (backing
    up to another repository), so ids come and go."""
    repositories = simulator.repository_ids()
    for repository_id in repositories:
        simulator.rename_repository(repository_id, f"Repository {repository_id[:8]} as of sweep {sweep}")
    for job_id in simulator.job_ids():
        simulator.set_retries(job_id, sweep % 5 + 1)
    for org in simulator.organization_ids():
        jobs = [job_id for job_id in simulator.job_ids() if job_id in _jobs_of(simulator, org)]
        if len(jobs) < 2:
            continue
        simulator.delete_job(jobs[0])
        target = repositories[sweep % len(repositories)]
        simulator.copy_job(jobs[1], name=f"created at sweep {sweep}", repository_id=target)


def _jobs_of(simulator: Simulator, org: str) -> set[str]:
    return {job["id"].lower() for job in simulator.jobs_wire(org, version="v1")}


async def sweep(client: VBOClient, organizations: list[str]) -> dict[str, PollResult]:
    targets = [PollTarget(client=client, organization_id=org) for org in organizations]
    async with poll_jobs(targets, follow=("repository",), health=HealthPolicy()) as results:
        return {result.target.organization_id: result async for result in results}


@pytest.mark.parametrize("version", ["v1", "v6", "v8"])
async def test_every_sweep_of_a_long_lived_client_reads_what_a_new_client_reads(version: str) -> None:
    simulator = Simulator(config(seed=11, organizations=4))
    organizations = simulator.organization_ids()
    async with client_of(simulator, version) as kept:
        for number in range(SWEEPS):
            change(simulator, number)
            results = await sweep(kept, organizations)
            async with client_of(simulator, version) as new:
                fresh = await sweep(new, organizations)
            for org, result in results.items():
                assert result.error is None, result.error
                assert not result.link_errors
                assert result.jobs == fresh[org].jobs  # the same, field by field, links and policies too
                assert {job.id.lower() for job in result.jobs} == _jobs_of(simulator, org)
                for job in result.jobs:
                    assert job.schedule_policy is not None
                    assert job.schedule_policy.retry_number == number % 5 + 1
                    repository = result.resolved(job, "repository")
                    assert isinstance(repository, BackupRepository)
                    assert repository == fresh[org].resolved(job, "repository")
                    assert repository.name == f"Repository {repository.id.lower()[:8]} as of sweep {number}"
                assert {job_id: health.state for job_id, health in result.health.items()} == {
                    job_id: health.state for job_id, health in fresh[org].health.items()
                }


def labels(body: bytes, label: str) -> set[str]:
    return {
        sample.labels[label]
        for family in text_string_to_metric_families(body.decode("utf-8"))
        for sample in family.samples
        if label in sample.labels
    }


@pytest.mark.parametrize("version", ["v1", "v8"])
async def test_the_exporter_drops_the_series_of_deleted_jobs_and_follows_renamed_repositories(
    version: str,
) -> None:
    simulator = Simulator(config(seed=12, organizations=3))
    async with client_of(simulator, version) as client:
        exporter = Exporter([ServerSpec(name="s", client=client)], interval=60)
        sizes: list[int] = []
        for number in range(SWEEPS):
            before = set(simulator.job_ids())
            change(simulator, number)
            await exporter.sweep()
            body = exporter.body(gzip=False)
            jobs = labels(body, "job_id")
            assert {job_id.lower() for job_id in jobs} == set(simulator.job_ids())
            assert not {job_id.lower() for job_id in jobs} & (before - set(simulator.job_ids()))
            names = labels(body, "repository_name")
            assert names
            assert all(name.endswith(f"as of sweep {number}") for name in names), names
            sizes.append(len(jobs))
        assert len(set(sizes)) == 1, "as many jobs as the server has: a deleted job's series do not linger"
