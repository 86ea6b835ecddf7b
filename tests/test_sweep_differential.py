"""Differential tests of the sweeps: a batch (one server-wide job listing split by tenant, the
server's recent sessions for health) against tenant by tenant and against `VBOClient.job_health`
per job, on generated hostile-but-valid server states (ids in odd cases, duplicated across
tenants, ids no request can name, sessions of unknown jobs, running sessions, jobs never run,
``lastBackup`` newer or older than the sessions or .NET's "never", a session dated decades
ahead, tenants without jobs, empty names), under health policies with and without
``schedule_aware`` (jobs run daily, on workdays, weekly, by hand or in a periodic window) and
``warning_is_success``."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, unquote

import attrs
import httpx
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from vbo_async import (
    ConfigError,
    HealthPolicy,
    HealthState,
    JobHealth,
    PollResult,
    PollTarget,
    RetryPolicy,
    VBOClient,
)
from vbo_async._health import _WINDOW_SLACK, RETRY_WITHIN, assess, health_window
from vbo_async._prefetch import LinkCache
from vbo_async._units import Batch, Context, run_unit

from .test_properties import FEW

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
NEVER = dt.datetime(1, 1, 1, tzinfo=dt.UTC)
""".NET's DateTime.MinValue, the ``lastBackup`` of a job never backed up."""
AHEAD = dt.datetime(2099, 1, 1, tzinfo=dt.UTC)
"""A time a server's clock gave while it was set decades ahead."""
MAX_VALUE = dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC)
""".NET's DateTime.MaxValue, which stands for no time."""
NO_WAIT = RetryPolicy(attempts=1, wait_initial=0, wait_max=0, wait_jitter=0)
BASE = "https://vbo.test:4443"
VERSIONS = ("v1", "v6", "v7", "v8")


@attrs.frozen
class Org:
    id: str
    name: str


@attrs.frozen
class Run:
    id: str
    job_id: str
    status: str
    created: dt.datetime
    ended: dt.datetime | None
    will_retry: bool


@attrs.frozen
class JobState:
    id: str
    org_id: str
    name: str
    enabled: bool
    last_status: str | None
    last_run: dt.datetime | None
    last_backup: dt.datetime | None
    retry_wait: int | None = None
    """The schedule's ``retryWaitInterval`` (minutes); None: none on the wire."""
    schedule: str | None = None
    """The name of its schedule in `SCHEDULES`; None: none on the wire."""


BOUNDS = ("end, or creation while running", "end", "creation")
"""What ``/JobSessions?endTimeLowerBound=`` may filter on (v6+): the reference leaves it
unconfirmed (the vendor's OpenAPI file says "created after"; vb365-v6-v8.md 6.3). The simulator
reads it as the first. A batch judges every job as `job_health` does under the first two; under
the third, a run begun before the window and ended within it is not in it, and the job is judged
from its own fields (docs/monitoring.md, "What the window holds"), so only some tests use it."""


@attrs.frozen
class State:
    orgs: tuple[Org, ...]
    jobs: tuple[JobState, ...]
    runs: tuple[Run, ...]
    bound: str = BOUNDS[0]
    """How the server reads ``endTimeLowerBound`` (one of `BOUNDS`)."""


def _within(run: Run, since: dt.datetime, bound: str) -> bool:
    """Whether ``run`` is one a server reading ``endTimeLowerBound`` as ``bound`` lists."""
    if bound == "creation":
        return run.created >= since
    if bound == "end":
        return run.ended is not None and run.ended >= since
    return (run.ended or run.created) >= since


def _guid(number: int) -> str:
    return f"{number:08x}-0000-4000-8000-{number:012x}"


def _cased(text: str, upper: bool) -> str:
    return text.upper() if upper else text


ODD_IDS = [
    "job/1",
    "50%",
    "100%25",
    " job",
    "job\t",
    "..",
    "a?b",
    "a#b",
    "a\\b",
    "jöb-ünï",
    "job 1",
    "ＪＯＢ",
]


WEEKDAYS_8_TO_18 = [1 <= day <= 5 and 8 <= hour < 18 for day in range(7) for hour in range(24)]
SCHEDULES: dict[str, dict[str, Any]] = {
    "daily": {"type": "Daily", "dailyType": "Everyday", "dailyTime": "22:00:00", "scheduleEnabled": True},
    "workdays": {"type": "Daily", "dailyType": "Workdays", "dailyTime": "22:00:00", "scheduleEnabled": True},
    "weekly": {"type": "Daily", "dailyType": "Monday", "dailyTime": "22:00:00", "scheduleEnabled": True},
    "by hand": {"type": "ManualOnly", "scheduleEnabled": True},
    "hourly on weekdays": {
        "type": "Periodically",
        "periodicallyEvery": "Hours1",
        "scheduleEnabled": True,
        "periodicallyWindowEnabled": True,
        "periodicallyWindowSettings": {"backupWindow": WEEKDAYS_8_TO_18, "minuteOffset": 0},
    },
}
"""Schedules whose allowance under ``HealthPolicy(schedule_aware=True)`` reaches from ``max_age``
+ 1 h to + 6 days (a weekly job) beyond it, or is none (run by hand)."""


@st.composite
def states(draw: st.DrawFn) -> State:
    """A server's organizations, jobs and sessions: valid by the reference's rules, hostile
    where the rules leave room (a failure said to be retried, ``jobWillBeRetried``, that no
    retry followed, however long ago). One thing a server does not do is left out, where a
    batch, which reads the runs ended within its window, cannot tell: one job's runs
    overlapping."""
    org_count = draw(st.integers(1, 4))
    orgs = tuple(
        Org(_cased(_guid(0xA000 + n), draw(st.booleans())), draw(st.sampled_from(["", "Contoso", "ü"])))
        for n in range(org_count)
    )
    jobs: list[JobState] = []
    for n in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["guid", "guid", "odd", "duplicate"]))
        if kind == "odd":
            job_id = draw(st.sampled_from(ODD_IDS))
        elif kind == "duplicate" and jobs:
            job_id = _cased(draw(st.sampled_from(jobs)).id, draw(st.booleans()))
        else:
            job_id = _cased(_guid(0xB000 + n), draw(st.booleans()))
        org = draw(st.sampled_from(orgs))
        last_run = draw(st.none() | st.integers(0, 24 * 60).map(lambda m: NOW - dt.timedelta(minutes=m * 3)))
        jobs.append(
            JobState(
                id=job_id,
                org_id=_cased(org.id, draw(st.booleans())),
                name=draw(st.sampled_from(["", "Daily", "nächtlich"])),
                enabled=draw(st.booleans() | st.just(True)),
                last_status=None
                if last_run is None
                else draw(st.sampled_from([None, "Success", "Warning", "Failed", "Running", "Stopped"])),
                last_run=last_run,
                last_backup=draw(
                    st.none()
                    | st.just(NEVER)
                    | st.integers(0, 24 * 60).map(lambda m: NOW - dt.timedelta(minutes=m * 3))
                    # Beyond a weekly job's schedule-aware allowance (26 h + 6 days + 1 h).
                    | st.integers(3 * 24, 10 * 24).map(lambda h: NOW - dt.timedelta(hours=h))
                ),
                schedule=draw(st.none() | st.sampled_from(sorted(SCHEDULES))),
            )
        )
    runs: list[Run] = []
    job_ids = [job.id for job in jobs] + [_guid(0xDEAD)]  # one job the server does not list
    for n in range(draw(st.integers(0, 14))):
        job_id = _cased(draw(st.sampled_from(job_ids)), draw(st.booleans()))
        created = NOW - dt.timedelta(minutes=draw(st.integers(1, 24 * 60)) * 3)
        status = draw(st.sampled_from(["Success", "Warning", "Failed", "Running", "Stopped", "Queued"]))
        running = status in ("Running", "Queued")
        ended = None if running else created + dt.timedelta(minutes=draw(st.integers(0, 600)))
        runs.append(
            Run(
                id=_cased(_guid(0xC000 + n), draw(st.booleans())),
                job_id=job_id,
                status=status,
                created=created,
                ended=None if ended is None else min(ended, NOW),
                will_retry=status == "Failed" and draw(st.booleans()),
            )
        )
    # One job's runs follow each other (a run ends before the next one begins).
    runs.sort(key=_newest_first)
    for index, run in enumerate(runs):
        later = [other.created for other in runs[index + 1 :] if other.job_id.lower() == run.job_id.lower()]
        if run.ended is not None and later and run.ended > later[0]:
            runs[index] = attrs.evolve(run, ended=later[0])
    if runs and draw(st.integers(0, 3)) == 0:  # a run dated while the server's clock was decades ahead
        job_id = draw(st.sampled_from([run.job_id for run in runs]))
        status = draw(st.sampled_from(["Success", "Warning", "Failed", "Running"]))
        ended = None if status == "Running" else AHEAD + dt.timedelta(minutes=9)
        runs.append(Run(_guid(0xC0FF), job_id, status, AHEAD, ended, False))
    # A job's lastRun and lastStatus are its newest run's (its own or, for a job without
    # sessions, whatever the generator drew: their history may be gone); a job listed twice is
    # one job, under one summary.
    for index, job in enumerate(jobs):
        mine = [run for run in runs if run.job_id.lower() == job.id.lower()]
        if mine:
            newest = max(mine, key=_newest_first)
            jobs[index] = attrs.evolve(job, last_run=newest.created, last_status=newest.status)
        first = next(other for other in jobs if other.id.lower() == job.id.lower())
        jobs[index] = attrs.evolve(
            jobs[index], last_run=first.last_run, last_status=first.last_status, last_backup=first.last_backup
        )
    return State(orgs=orgs, jobs=tuple(jobs), runs=tuple(runs), bound=draw(st.sampled_from(BOUNDS[:2])))


def _stamp(moment: dt.datetime | None) -> str | None:
    return None if moment is None else f"{moment.year:04}" + moment.strftime("-%m-%dT%H:%M:%S.%fZ")


def _newest_first(run: Run) -> tuple[dt.datetime, str]:
    return run.created, run.id


def server(state: State, version: str) -> Callable[[httpx.Request], httpx.Response]:
    """``state`` as a VBO server of ``version`` speaks it (the wire of the reference notes: v1
    bare arrays, absolute hrefs and string booleans; v6+ pages, v7 ``lastBackup`` and
    ``jobWillBeRetried``, v8 ``organizationId`` and ``jobId``); ids matched ignoring case, as
    the servers do; a job's sessions newest first."""
    v1 = version == "v1"
    root = f"{BASE}/{version}" if v1 else f"/{version}"

    def href(*segments: str) -> dict[str, str]:
        return {"href": root + "".join("/" + quote(segment, safe="") for segment in segments)}

    def org_wire(org: Org) -> dict[str, Any]:
        return {"id": org.id, "name": org.name, "_links": {"self": href("Organizations", org.id)}}

    def job_wire(job: JobState) -> dict[str, Any]:
        wire: dict[str, Any] = {
            "id": job.id,
            "name": job.name,
            "lastStatus": job.last_status,
            "lastRun": _stamp(job.last_run),
            "isEnabled": ("true" if job.enabled else "false") if v1 else job.enabled,
        }
        if version in ("v7", "v8"):
            wire["lastBackup"] = _stamp(job.last_backup)
        if version == "v8":
            wire["organizationId"] = job.org_id
        schedule = {} if job.schedule is None else dict(SCHEDULES[job.schedule])
        if job.retry_wait is not None:
            schedule |= {"retryEnabled": True, "retryNumber": 3, "retryWaitInterval": job.retry_wait}
        if schedule:
            wire["schedulePolicy"] = schedule
        wire["_links"] = {
            "self": href("Jobs", job.id),
            "organization": href("Organizations", job.org_id),
            "jobsessions": href("Jobs", job.id, "JobSessions"),
        }
        return wire

    def run_wire(run: Run) -> dict[str, Any]:
        wire: dict[str, Any] = {
            "id": run.id,
            "creationTime": _stamp(run.created),
            "endTime": _stamp(run.ended),
            "status": run.status,
        }
        if version in ("v7", "v8"):
            wire["jobWillBeRetried"] = run.will_retry
            wire["mainSessionId"] = run.id
        if version == "v8":
            wire["jobId"] = run.job_id
        wire["_links"] = {"self": href("JobSessions", run.id), "job": href("Jobs", run.job_id)}
        return wire

    def listing(items: list[dict[str, Any]], request: httpx.Request) -> httpx.Response:
        if v1:
            return httpx.Response(200, json=items)
        params = {key.lower(): value for key, value in request.url.params.items()}
        offset, limit = int(params.get("offset", 0)), int(params.get("limit", 30))
        page = {"offset": offset, "limit": limit, "results": items[offset : offset + limit], "_links": {}}
        return httpx.Response(200, json=page)

    def handle(request: httpx.Request) -> httpx.Response:
        segments = [unquote(s) for s in request.url.raw_path.decode().split("?")[0].split("/")[1:]]
        if segments[0] != version:
            return httpx.Response(404, json={"message": "not routed"})
        path = [segment.lower() for segment in segments[1:]]
        params = {key.lower(): value for key, value in request.url.params.items()}
        if path == ["token"]:
            return httpx.Response(200, json={"access_token": "t", "refresh_token": "r", "expires_in": 3600})
        if path == ["organizations"]:
            return listing([org_wire(org) for org in state.orgs], request)
        if len(path) >= 2 and path[0] == "organizations":
            org = next((o for o in state.orgs if o.id.lower() == path[1]), None)
            if org is None:
                return httpx.Response(404, json={"message": "Organization not found."})
            if len(path) == 2:
                return httpx.Response(200, json=org_wire(org))
            if path[2:] == ["jobs"] and version != "v8":
                return httpx.Response(
                    200, json=[job_wire(j) for j in state.jobs if j.org_id.lower() == path[1]]
                )
        if path == ["jobs"]:
            wanted = params.get("organizationid") if version == "v8" else None
            jobs = [j for j in state.jobs if wanted is None or j.org_id.lower() == wanted.lower()]
            return listing([job_wire(job) for job in jobs], request)
        runs = sorted(state.runs, key=_newest_first, reverse=True)
        if len(path) == 3 and path[0] == "jobs" and path[2] == "jobsessions" and version in ("v1", "v6"):
            return listing([run_wire(run) for run in runs if run.job_id.lower() == path[1]], request)
        if path == ["jobsessions"] and not v1:
            if "jobid" in params and version != "v6":
                runs = [run for run in runs if run.job_id.lower() == params["jobid"].lower()]
            if "endtimelowerbound" in params:
                since = dt.datetime.fromisoformat(params["endtimelowerbound"])
                runs = [run for run in runs if _within(run, since, state.bound)]
            return listing([run_wire(run) for run in runs], request)
        return httpx.Response(404, json={"message": "no such path"})

    return handle


def client(state: State, version: str) -> VBOClient:
    return VBOClient(
        BASE,
        username="u",
        password="p",
        api_version=version,
        transport=httpx.MockTransport(server(state, version)),
        retry=NO_WAIT,
    )


async def delivered(
    vbo: VBOClient, state: State, policy: HealthPolicy, *, batched: bool
) -> dict[str, PollResult]:
    """What `run_unit` delivers for every tenant of ``state``, as one batch or tenant by tenant,
    judged at `NOW`."""
    results: dict[str, PollResult] = {}
    targets = [PollTarget(client=vbo, organization_id=org.id) for org in state.orgs]
    async with asyncio.TaskGroup() as group:
        context = Context(
            follow=(),
            health=policy,
            now=NOW,
            links=LinkCache(group),
            emit=lambda result: results.setdefault(result.target.organization_id, result),
        )
        units = [Batch(vbo, tuple(targets))] if batched else targets
        for unit in units:
            await run_unit(unit, context)
    return results


def verdict(health: JobHealth) -> tuple[Any, ...]:
    """What must not depend on how the job was read: the state, and the reason but for its
    figures (a batch dates a last run that ended before its window by the job's ``lastRun``,
    its start, where `job_health` reads the run's end; ``last_session`` may differ likewise:
    docs/monitoring.md, "The newest finished run")."""
    return (health.state, re.sub("[0-9]+ (min|h|days)", "#", health.reason))


async def job_health(vbo: VBOClient, result: PollResult, policy: HealthPolicy) -> dict[str, tuple[Any, ...]]:
    """`VBOClient.job_health` of every job of ``result`` (an id no request can name: the
    `ConfigError` it raises, as a sweep's ``policy.unreadable``)."""
    judged = {}
    for job in result.jobs:
        try:
            health = await vbo.job_health(job, policy=policy, now=NOW)
        except ConfigError as exc:
            health = assess(job, (), policy=policy, now=NOW, error=exc)
        judged[job.id] = verdict(health)
    return judged


def _tenant(*jobs: JobState, runs: tuple[Run, ...] = (), bound: str = BOUNDS[0]) -> State:
    return State(orgs=(Org(_guid(0xA000), "Contoso"),), jobs=jobs, runs=runs, bound=bound)


def _warned_before_the_window(schedule: str) -> State:
    """A job whose last plain Success is 21 days old (``lastBackup``), which ended with warnings
    6 days 23 h ago, and whose last run failed 30 min ago (to be retried): a batch's window
    (26 h + 2 h) holds no success of it."""
    job_id = _guid(0xB000)
    failed = NOW - dt.timedelta(minutes=30)
    warned = NOW - dt.timedelta(days=6, hours=23)
    success = NOW - dt.timedelta(days=21)
    runs = (
        Run(_guid(0xC002), job_id, "Failed", failed - dt.timedelta(minutes=10), failed, True),
        Run(_guid(0xC001), job_id, "Warning", warned - dt.timedelta(hours=1), warned, False),
        Run(_guid(0xC000), job_id, "Success", success - dt.timedelta(hours=1), success, False),
    )
    job = JobState(
        id=job_id,
        org_id=_guid(0xA000),
        name="Weekly",
        enabled=True,
        last_status="Failed",
        last_run=runs[0].created,
        last_backup=success,
        retry_wait=10,
        schedule=schedule,
    )
    return _tenant(job, runs=runs)


COUNTED = HealthPolicy(schedule_aware=True, warning_is_success=True)
SUCCESS_ONLY = HealthPolicy(schedule_aware=True)
DAYLIGHT = "+ 1 h for daylight saving)"


POLICIES = st.sampled_from(
    [
        HealthPolicy(),
        HealthPolicy(max_age=dt.timedelta(hours=6)),
        HealthPolicy(max_age=None),
        HealthPolicy(max_age=dt.timedelta(days=3), disabled=None),
        HealthPolicy(warning_is_success=True),
        HealthPolicy(max_age=dt.timedelta(hours=6), schedule_aware=True),
        HealthPolicy(max_age=dt.timedelta(hours=6), schedule_aware=True, warning_is_success=True),
        HealthPolicy(schedule_aware=True, warning_is_success=True),
    ]
)


@settings(FEW, max_examples=100)
@given(state=states(), version=st.sampled_from(VERSIONS), policy=POLICIES)
@example(state=_warned_before_the_window("weekly"), version="v8", policy=COUNTED)
async def test_a_batch_tenant_by_tenant_and_job_health_agree_on_any_server_state(
    state: State, version: str, policy: HealthPolicy
) -> None:
    """Per tenant: the same error and jobs (every field), and per job the same state and
    reason (`verdict`), whichever way the server was swept, and as `job_health` judges it."""
    async with client(state, version) as vbo:
        batched = await delivered(vbo, state, policy, batched=True)
        alone = await delivered(vbo, state, policy, batched=False)
        assert batched.keys() == alone.keys() == {org.id for org in state.orgs}
        for org_id, result in batched.items():
            other = alone[org_id]
            assert type(result.error) is type(other.error), (org_id, result.error, other.error)
            assert sorted(result.jobs, key=repr) == sorted(other.jobs, key=repr)
            mine = {job_id: verdict(health) for job_id, health in result.health.items()}
            theirs = {job_id: verdict(health) for job_id, health in other.health.items()}
            assert mine == theirs, org_id
            assert theirs == await job_health(vbo, other, policy), org_id


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("ran", [False, True], ids=["never-run", "ran"])
async def test_a_job_id_no_request_can_name_is_unknown_batched_as_alone(version: str, ran: bool) -> None:
    """``job/1`` cannot name its sessions in a request: tenant by tenant its health is UNKNOWN
    ("sessions could not be read"); a batch said "never run" (or judged it from the
    server-wide window, a running session included) instead."""
    job = JobState(
        id="job/1",
        org_id=_guid(0xA000),
        name="odd",
        enabled=True,
        last_status="Running" if ran else None,
        last_run=NOW - dt.timedelta(hours=1) if ran else None,
        last_backup=None,
    )
    runs = (Run(_guid(0xC000), "job/1", "Running", NOW - dt.timedelta(hours=1), None, False),) if ran else ()
    state = _tenant(job, runs=runs)
    async with client(state, version) as vbo:
        batched = await delivered(vbo, state, HealthPolicy(), batched=True)
        alone = await delivered(vbo, state, HealthPolicy(), batched=False)
    for results in (batched, alone):
        health = results[_guid(0xA000)].health["job/1"]
        assert health.state == HealthState.UNKNOWN, health
        assert health.reason == (
            "sessions could not be read: job.id must be one URL path segment: "
            "no slash, backslash, question mark, hash sign or percent sign"
        )
        assert health.running is None  # no session of it was read


@pytest.mark.parametrize("version", ["v7", "v8"])
@pytest.mark.parametrize(
    "odd",
    ["lastBackup never", "lastBackup ahead", "lastBackup MaxValue", "session ahead", "session MaxValue"],
)
async def test_a_success_never_or_dated_ahead_is_no_success_batched_as_alone(version: str, odd: str) -> None:
    """A ``lastBackup`` of .NET's "never" (0001-01-01 or its MaxValue) or a success dated decades
    ahead or at MaxValue (the job's ``lastBackup``, or a session in the window) is no last
    success: a batch whose window holds no other reads the job's own newest runs, as
    `job_health` does, and finds the real success there (stale past ``max_age``); it judged the
    job from the window alone (WARNING)."""
    odd_backups = {"lastBackup never": NEVER, "lastBackup ahead": AHEAD, "lastBackup MaxValue": MAX_VALUE}
    last_backup = odd_backups.get(odd)
    job = JobState(
        id=_guid(0xB000),
        org_id=_guid(0xA000),
        name="Daily",
        enabled=True,
        last_status="Warning",
        last_run=NOW - dt.timedelta(hours=5),
        last_backup=last_backup,
    )
    runs = [
        Run(
            _guid(0xC000),
            job.id,
            "Success",
            NOW - dt.timedelta(hours=40),
            NOW - dt.timedelta(hours=39),
            False,
        ),
        Run(
            _guid(0xC001), job.id, "Warning", NOW - dt.timedelta(hours=5), NOW - dt.timedelta(hours=4), False
        ),
    ]
    if odd == "session ahead":
        runs.append(Run(_guid(0xC002), job.id, "Success", AHEAD, AHEAD + dt.timedelta(minutes=9), False))
    if odd == "session MaxValue":
        runs.append(Run(_guid(0xC002), job.id, "Success", MAX_VALUE, MAX_VALUE, False))
    state = _tenant(job, runs=tuple(runs))
    policy = HealthPolicy(max_age=dt.timedelta(hours=6))
    async with client(state, version) as vbo:
        batched = await delivered(vbo, state, policy, batched=True)
        alone = await delivered(vbo, state, policy, batched=False)
    for results in (batched, alone):
        health = results[_guid(0xA000)].health[job.id]
        assert (health.state, health.reason) == (HealthState.CRITICAL, "no success for 39 h (max 6 h)")


NO_AGE = HealthPolicy(max_age=None)
SIX_HOURS = HealthPolicy(max_age=dt.timedelta(hours=6), stale=HealthState.WARNING)
"""A window of 8 h, and staleness no worse than the failure's finding (which then decides)."""


@pytest.mark.parametrize("version", ["v7", "v8"])
@pytest.mark.parametrize(
    ("failed_ago", "retrying", "policy", "state", "retry_wait"),
    [
        pytest.param(1, False, NO_AGE, HealthState.WARNING, None, id="recent"),
        pytest.param(8 * 24, False, NO_AGE, HealthState.CRITICAL, None, id="before a 7-day window"),
        pytest.param(10, False, SIX_HOURS, HealthState.CRITICAL, None, id="before an 8 h window"),
        pytest.param(3, False, SIX_HOURS, HealthState.CRITICAL, None, id="in the window"),
        pytest.param(3, True, SIX_HOURS, HealthState.WARNING, None, id="retry running"),
        pytest.param(
            10, True, SIX_HOURS, HealthState.WARNING, None, id="retry running, failure before the window"
        ),
        pytest.param(4, False, NO_AGE, HealthState.WARNING, 180, id="within a 3 h retry wait"),
        pytest.param(6, False, NO_AGE, HealthState.CRITICAL, 180, id="past a 3 h retry wait"),
        pytest.param(7, False, SIX_HOURS, HealthState.WARNING, 600, id="a 10 h wait counts 6 h"),
        pytest.param(9, False, SIX_HOURS, HealthState.CRITICAL, 600, id="a 10 h wait, before the window"),
    ],
)
@pytest.mark.parametrize("bound", BOUNDS)
async def test_a_failure_said_to_be_retried_is_judged_batched_as_alone(
    version: str,
    failed_ago: int,
    retrying: bool,
    policy: HealthPolicy,
    state: HealthState,
    retry_wait: int | None,
    bound: str,
) -> None:
    """A failed run the server said it would retry (``jobWillBeRetried``) is WARNING while the
    retry can still come (the failure ended within `RETRY_WITHIN`) or runs; past that, with no
    run after it, no retry came and it is the failure it is (CRITICAL). A batch that sees the
    failure only through the job's ``lastStatus`` (it ended before the window) said CRITICAL
    where `job_health`, reading it, said WARNING for as long as it stayed the last run. So did
    a batch from a server whose ``endTimeLowerBound`` leaves out runs without an end (the retry
    running): the job says a run is in progress, and its own sessions are read."""
    job_id = _guid(0xB000)
    ended = NOW - dt.timedelta(hours=failed_ago)
    runs = [Run(_guid(0xC000), job_id, "Failed", ended - dt.timedelta(minutes=20), ended, True)]
    if retrying:
        runs.append(Run(_guid(0xC001), job_id, "Running", ended + dt.timedelta(minutes=10), None, False))
    newest = runs[-1]
    job = JobState(
        id=job_id,
        org_id=_guid(0xA000),
        name="Daily",
        enabled=True,
        last_status=newest.status,
        last_run=newest.created,
        last_backup=NOW - 40 * 24 * dt.timedelta(hours=1),
        retry_wait=retry_wait,
    )
    state_of_server = _tenant(job, runs=tuple(runs), bound=bound)
    async with client(state_of_server, version) as vbo:
        batched = await delivered(vbo, state_of_server, policy, batched=True)
        alone = await delivered(vbo, state_of_server, policy, batched=False)
        (listed,) = alone[_guid(0xA000)].jobs
        single = await vbo.job_health(listed, policy=policy, now=NOW)
    for health in (batched[_guid(0xA000)].health[job_id], alone[_guid(0xA000)].health[job_id], single):
        assert health.state is state, health.reason
        assert health.reason.startswith("failed ")
        assert health.reason.endswith(", will be retried") is (state is HealthState.WARNING), health.reason


def test_a_retry_is_awaited_no_longer_than_a_batch_reads_beyond_max_age() -> None:
    """A batch's window reaches `_WINDOW_SLACK` beyond ``max_age`` (at least that far back): a
    failure it knows only from the job's ``lastStatus`` ended longer ago than `RETRY_WITHIN`, so
    `assess` no longer awaits its retry, whichever way the job was read."""
    assert RETRY_WITHIN <= _WINDOW_SLACK
    for age in (None, dt.timedelta(seconds=1)):
        assert health_window(HealthPolicy(max_age=age)) > RETRY_WITHIN


@pytest.mark.parametrize("version", ["v7", "v8"])
@pytest.mark.parametrize("enabled", [True, False], ids=["enabled", "disabled"])
async def test_a_job_whose_last_run_is_older_than_the_window_has_its_verdict_from_its_own_fields(
    version: str, enabled: bool
) -> None:
    """A job whose newest run ended before a batch's window (a weekly job, a stale or disabled
    one) is judged from its ``lastStatus``, ``lastRun`` and ``lastBackup``, without a request of
    its own: the same state, reason and last success as `job_health` gives from its sessions.
    Only ``last_session`` (the run itself: its end, statistics, retries) is not known to the
    batch, as documented (`poll_jobs`, docs/monitoring.md); no field of the job can stand for it,
    and reading it would cost a request per such job (209 of 1,055 on the 300-tenant benchmark)."""
    job_id = _guid(0xB000)
    warned = Run(
        _guid(0xC001),
        job_id,
        "Warning",
        NOW - dt.timedelta(days=3, hours=1),
        NOW - dt.timedelta(days=3),
        False,
    )
    success = Run(
        _guid(0xC000),
        job_id,
        "Success",
        NOW - dt.timedelta(days=4, hours=1),
        NOW - dt.timedelta(days=4),
        False,
    )
    job = JobState(
        id=job_id,
        org_id=_guid(0xA000),
        name="Weekly",
        enabled=enabled,
        last_status="Warning",
        last_run=warned.created,
        last_backup=success.ended,
    )
    state = _tenant(job, runs=(warned, success))
    policy = HealthPolicy(disabled=None)
    async with client(state, version) as vbo:
        batched = (await delivered(vbo, state, policy, batched=True))[_guid(0xA000)].health[job_id]
        alone = (await delivered(vbo, state, policy, batched=False))[_guid(0xA000)].health[job_id]
        asked = vbo.requests_sent
        await delivered(vbo, state, policy, batched=True)
        assert vbo.requests_sent - asked == 3  # organizations, jobs, the window: none for the job
    assert (
        (batched.state, batched.reason)
        == (alone.state, alone.reason)
        == (HealthState.CRITICAL, "no success for 4 days (max 26 h)")
    )
    assert batched.last_success == alone.last_success == success.ended
    assert batched.running is alone.running is None
    assert alone.last_session is not None
    assert alone.last_session.id == warned.id
    assert batched.last_session is None


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("counted", [False, True], ids=["success only", "warning is success"])
async def test_a_job_ending_with_warnings_every_night_is_judged_batched_as_alone(
    version: str, counted: bool
) -> None:
    """``HealthPolicy(warning_is_success=True)`` counts a run that ended with warnings as a
    success for staleness in a batch (whose window then holds one) as tenant by tenant: WARNING
    for the last run either way, CRITICAL for staleness only when warnings do not count."""
    job_id = _guid(0xB100)
    runs = []
    for day in range(10):
        created = NOW - dt.timedelta(days=day, hours=3)
        runs.append(
            Run(_guid(0xC100 + day), job_id, "Warning", created, created + dt.timedelta(minutes=30), False)
        )
    job = JobState(
        id=job_id,
        org_id=_guid(0xA000),
        name="Nightly",
        enabled=True,
        last_status="Warning",
        last_run=runs[0].created,
        last_backup=None,
    )
    state_of_server = _tenant(job, runs=tuple(runs))
    policy = HealthPolicy(warning_is_success=counted)
    async with client(state_of_server, version) as vbo:
        batched = await delivered(vbo, state_of_server, policy, batched=True)
        alone = await delivered(vbo, state_of_server, policy, batched=False)
        (listed,) = alone[_guid(0xA000)].jobs
        single = await vbo.job_health(listed, policy=policy, now=NOW)
    expected = HealthState.WARNING if counted else HealthState.CRITICAL
    verdicts = [batched[_guid(0xA000)].health[job_id], alone[_guid(0xA000)].health[job_id], single]
    for health in verdicts:
        assert health.state is expected, health.reason
    assert len({health.reason for health in verdicts}) == 1


@pytest.mark.parametrize("version", ["v7", "v8"])
@pytest.mark.parametrize(
    ("schedule", "policy", "state", "reason", "own"),
    [
        ("weekly", COUNTED, HealthState.WARNING, "failed 30 min ago, will be retried", 1),
        (
            "hourly on weekdays",
            COUNTED,
            HealthState.CRITICAL,
            f"no success for 6 days (max 26 h + 62 h: its window is closed that long; {DAYLIGHT}",
            1,
        ),
        (
            "workdays",
            COUNTED,
            HealthState.CRITICAL,
            f"no success for 6 days (max 26 h + 2 days: runs on workdays; {DAYLIGHT}",
            1,
        ),
        ("daily", COUNTED, HealthState.CRITICAL, f"no success for 6 days (max 26 h {DAYLIGHT}", 1),
        ("daily", SUCCESS_ONLY, HealthState.CRITICAL, f"no success for 21 days (max 26 h {DAYLIGHT}", 0),
    ],
)
async def test_a_run_with_warnings_before_the_window_counts_batched_as_alone(
    version: str, schedule: str, policy: HealthPolicy, state: HealthState, reason: str, own: int
) -> None:
    """``HealthPolicy(schedule_aware=True, warning_is_success=True)``: a weekly job whose last
    counted success (warnings, 6 days 23 h ago, which ``lastBackup`` does not count) lies before
    a batch's window (26 h + 2 h) but within its allowance (26 h + 6 days + 1 h) is not stale in a
    batch, as read alone; a batch judged it from ``lastBackup`` (CRITICAL, "no success for 21
    days"), and dated the staleness of any other schedule so. Such a job, stale by its own
    fields, reads its own newest sessions (one request); a job whose allowance the window covers,
    with only Success counted, is stale from ``lastBackup`` either way and reads none."""
    state_of_server = _warned_before_the_window(schedule)
    job_id = _guid(0xB000)
    async with client(state_of_server, version) as vbo:
        batched = await delivered(vbo, state_of_server, policy, batched=True)
        asked = vbo.requests_sent
        await delivered(vbo, state_of_server, policy, batched=True)
        requests = vbo.requests_sent - asked
        alone = await delivered(vbo, state_of_server, policy, batched=False)
        (listed,) = alone[_guid(0xA000)].jobs
        single = await vbo.job_health(listed, policy=policy, now=NOW)
    for health in (batched[_guid(0xA000)].health[job_id], alone[_guid(0xA000)].health[job_id], single):
        assert (health.state, health.reason) == (state, reason)
    assert requests == 3 + own  # organizations, jobs, the window, and the job's own sessions
