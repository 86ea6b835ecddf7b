# pyright: strict
"""A monitoring script's view of sweeps, health, errors and JSON: what each gives, per checker."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import logging
from typing import Any, assert_type

import attrs

import vbo_async
from vbo_async import (
    APIError,
    AuthenticationError,
    BackupRepository,
    ClientStateError,
    ConfigError,
    DecodeError,
    HealthPolicy,
    HealthState,
    Job,
    JobHealth,
    JobSession,
    LinkError,
    NotFoundError,
    NotSupportedError,
    Organization,
    PollProgress,
    PollResult,
    PollSweep,
    PollTarget,
    Proxy,
    RateLimitedError,
    ResponseTooLargeError,
    RetryPolicy,
    SelectedItem,
    ServerError,
    TransportError,
    VBOClient,
    VBOError,
    assess,
    configure_logging,
    poll_jobs,
    to_jsonable,
)


def on_progress(progress: PollProgress) -> None:
    assert_type(progress.done, int)
    assert_type(progress.total, int)
    assert_type(progress.failed, int)
    assert_type(progress.result, PollResult)


class Bar:
    """A progress bar whose update returns a value (tqdm's returns ``bool | None``)."""

    def update(self, count: int = 1) -> bool | None:
        return None


async def sweep(vbo: VBOClient, organizations: list[Organization], job: Job) -> None:
    targets = [
        PollTarget(client=vbo, organization_id=o.id, name=o.name, organization=o) for o in organizations
    ]
    assert_type(targets[0].label, str)
    assert_type({targets[0]: 1}, dict[PollTarget, int])
    started = poll_jobs(
        targets,
        concurrency=4,
        follow=("repository", "proxy"),
        on_progress=on_progress,
        health=HealthPolicy(max_age=dt.timedelta(hours=30)),
        batch=None,
        organization_counts={vbo: len(organizations)},
    )
    assert_type(started, PollSweep)
    assert_type(started.total, int)
    assert_type(started.follow, tuple[str, ...])
    async with started as results:
        assert_type(results, PollSweep)
        async for result in results:
            assert_type(result, PollResult)
            assert_type(result.target, PollTarget)
            assert_type(result.jobs, list[Job])
            assert_type(result.error, VBOError | None)
            assert_type(result.elapsed, float)
            assert_type(result.organization, Organization | None)
            assert_type(result.health[job.id], JobHealth)
            assert_type(result.link_errors[(job.id, "proxy")], VBOError)
            assert_type(result.prefetched[(job.id, "proxy")], object)
            assert_type(result.resolved(job, "repository"), BackupRepository | None)
            assert_type(result.resolved(job.id, "proxy"), Proxy | None)
            assert_type(result.resolved(job, "organization"), Organization | None)
            assert_type(result.resolved(job, "jobsessions"), list[JobSession] | None)
            assert_type(result.resolved(job, "selected_items"), list[SelectedItem] | None)
            for relation in started.follow:  # any str: the relation is not known here
                assert_type(result.resolved(job, relation), object | None)
    async with contextlib.aclosing(poll_jobs(targets)) as closing:
        async for result in closing:
            assert_type(result, PollResult)
    assert_type(await started.aclose(), None)
    bar = Bar()
    assert_type(poll_jobs(targets, on_progress=lambda progress: bar.update()), PollSweep)
    seen: list[PollProgress] = []
    assert_type(poll_jobs(targets, on_progress=seen.append), PollSweep)


def results_built_by_hand(target: PollTarget, job: Job, health: JobHealth, error: LinkError) -> PollResult:
    """A test of the caller's own report code builds results; their mappings are typed."""
    return PollResult(
        target=target,
        jobs=[job],
        follow=("proxy",),
        prefetched={(job.id, "repository"): None},
        link_errors={(job.id, "proxy"): error},
        health={job.id: health},
    )


def health(job: Job, sessions: list[JobSession]) -> None:
    judged = assess(job, sessions, policy=HealthPolicy(), now=dt.datetime.now(dt.UTC))
    assert_type(judged, JobHealth)
    assert_type(assess(job), JobHealth)
    assert_type(assess(job, error=ServerError("down", status_code=503)), JobHealth)
    assert_type(judged.job, Job)
    assert_type(judged.state, HealthState)
    assert_type(judged.state.severity, int)
    assert_type(judged.reason, str)
    assert_type(judged.last_session, JobSession | None)
    assert_type(judged.running, JobSession | None)
    assert_type(judged.last_success, dt.datetime | None)
    assert_type(max(judged.state, HealthState.OK), HealthState)
    policy = HealthPolicy(failed=HealthState.WARNING, disabled=None, schedule_aware=True)
    assert_type(policy.max_age, dt.timedelta | None)
    assert_type(policy.disabled, HealthState | None)
    assert_type(attrs.evolve(policy, max_age=None), HealthPolicy)


def a_value_error(error: ValueError) -> ValueError:
    return error


def errors(exc: Exception) -> None:
    if isinstance(exc, VBOError):
        assert_type(exc.message, str)
        assert_type(exc.method, str | None)
        assert_type(exc.url, str | None)
    if isinstance(exc, APIError):
        assert_type(exc.status_code, int)
        assert_type(exc.error_code, str | None)
        assert_type(exc.retry_after, float | None)
    if isinstance(exc, NotFoundError | RateLimitedError | ServerError):
        assert_type(exc.status_code, int)
    if isinstance(exc, DecodeError):
        assert_type(exc.path, str | None)
    if isinstance(exc, LinkError):
        assert_type(exc.relation, str | None)
        assert_type(exc.href, str | None)
    if isinstance(exc, NotSupportedError):
        assert_type(exc.version, str)
        assert_type(exc.operation, str)
    if isinstance(exc, ConfigError):
        assert_type(a_value_error(exc), ValueError)  # also a ValueError
    for kind in (AuthenticationError, ClientStateError, ResponseTooLargeError, TransportError):
        assert issubclass(kind, VBOError)


class Lines:
    """An application's own writer: configure_logging takes any object with a write method."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def write(self, text: str) -> None:
        self.lines.append(text)


def plain_data(jobs: list[Job]) -> None:
    assert_type(to_jsonable(jobs), Any)  # JSON, as json.loads gives it
    handler = configure_logging("debug", stream=io.StringIO(), fmt="%(message)s")
    assert_type(handler, logging.Handler)
    assert_type(configure_logging(logging.INFO), logging.Handler)
    assert_type(configure_logging("info", stream=Lines()), logging.Handler)
    assert_type(RetryPolicy().statuses, frozenset[int])
    assert_type(vbo_async.__version__, str)
