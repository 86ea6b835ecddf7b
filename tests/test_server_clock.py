"""A server whose clock is off this machine's (a Windows server without NTP): its answers' ``Date``
headers say by how much, and health measures ages on the server's clock (`ServerClock`), in
`VBOClient.job_health` and in the sweeps of `poll_jobs`, whatever the skew (up to a day)."""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vbo_async import (
    HealthPolicy,
    HealthState,
    Job,
    JobHealth,
    JobSession,
    JobStatus,
    PollTarget,
    VBOClient,
    assess,
    poll_jobs,
)
from vbo_async._clocks import MIN_OFFSET, ServerClock
from vbo_async._health import CLOCK_SKEW, on_clock
from vbo_async._prefetch import LinkCache
from vbo_async._results import PollResult
from vbo_async._units import Batch, Context, Unit, run_unit
from vbo_async.simulator import Simulator, SimulatorConfig, create_app
from vbo_async.simulator._wireformat import TICKS_PER_SECOND

from .test_batch import ORGS, _job, scripted
from .test_health import JOB_ID, PASSWORD, v8_session
from .test_properties import PROPERTY

RECEIVED = dt.datetime(2026, 7, 1, 12, 0, 0, 400000, tzinfo=dt.UTC)


def http_date(moment: dt.datetime) -> str:
    return email.utils.format_datetime(moment.astimezone(dt.UTC), usegmt=True)


def wire_time(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


# --- the offset, pure ---------------------------------------------------------------------------------


def test_no_date_no_offset() -> None:
    clock = ServerClock()
    clock.observe(None, RECEIVED)
    assert clock.offset is None
    assert clock.now(RECEIVED) == RECEIVED


@pytest.mark.parametrize(
    ("skew", "moved"),
    [
        (dt.timedelta(hours=-3), True),
        (dt.timedelta(hours=5), True),
        (dt.timedelta(minutes=2), True),
        (dt.timedelta(seconds=20), False),  # noise of a header to the second: not moved
        (dt.timedelta(days=3), False),  # more than a day: not this server's clock
        (dt.timedelta(days=-400), False),
    ],
)
def test_the_offset_moves_now_between_a_minute_and_a_day(skew: dt.timedelta, moved: bool) -> None:
    clock = ServerClock()
    clock.observe(http_date(RECEIVED + skew), RECEIVED)
    assert clock.offset == dt.timedelta(
        seconds=round((skew - dt.timedelta(microseconds=400000)).total_seconds())
    )
    assert clock.now(RECEIVED) == (RECEIVED + clock.offset if moved else RECEIVED)


def test_the_offset_holds_still_through_the_jitter_of_the_header_and_follows_a_step() -> None:
    """Answers a second apart in their ``Date``'s rounding keep one offset (the tenants of one
    sweep are judged at one now); a server's clock set anew moves it."""
    clock = ServerClock()
    server = RECEIVED - dt.timedelta(hours=2)
    clock.observe(http_date(server), RECEIVED)
    kept = clock.offset
    assert kept is not None
    for lag in (0.1, 0.6, 0.9, 1.4):
        clock.observe(http_date(server + dt.timedelta(seconds=1)), RECEIVED + dt.timedelta(seconds=lag))
        assert clock.offset == kept
        clock.observe(http_date(server), RECEIVED + dt.timedelta(seconds=lag))
        assert clock.offset == kept
    clock.observe(http_date(server + dt.timedelta(minutes=10)), RECEIVED)
    assert clock.offset == kept + dt.timedelta(minutes=10)


@PROPERTY
@given(
    date=st.one_of(
        st.text(max_size=80), st.from_regex(r"[A-Za-z]{3}, \d{1,4} [A-Za-z]{3} \d{1,6} [\d:]{0,9} GMT")
    )
)
def test_any_date_header_is_read_or_ignored_never_raised(date: str) -> None:
    """A server controls the header: nothing it writes there raises, and now moves by a day at
    most."""
    clock = ServerClock()
    clock.observe(date, RECEIVED)
    moved = clock.now(RECEIVED) - RECEIVED
    assert abs(moved) <= CLOCK_SKEW
    assert moved == dt.timedelta(0) or abs(moved) >= MIN_OFFSET


# --- job_health on the server's clock -------------------------------------------------------------


def dated(routes: dict[str, Any], skew: dt.timedelta) -> httpx.MockTransport:
    """A v8 server whose clock is ``skew`` off this machine's: its ``Date`` and its runs say so."""

    def handle(request: httpx.Request) -> httpx.Response:
        head = {"Date": http_date(dt.datetime.now(dt.UTC) + skew)}
        path = request.url.raw_path.decode()
        if path.lower() == "/v8/token":
            token = {"access_token": "at", "refresh_token": "rt", "expires_in": 3600, "token_type": "bearer"}
            return httpx.Response(200, json=token, headers=head)
        if path not in routes:
            return httpx.Response(404, json={"message": f"no route {path}"}, headers=head)
        return httpx.Response(200, json=routes[path], headers=head)

    return httpx.MockTransport(handle)


SKEWS = st.one_of(
    st.timedeltas(min_value=-dt.timedelta(hours=23), max_value=-dt.timedelta(minutes=2)),
    st.timedeltas(min_value=dt.timedelta(minutes=2), max_value=dt.timedelta(hours=23)),
)
"""Skews a clock may have that move the judgement's now (`MIN_OFFSET` to `CLOCK_SKEW`)."""


@PROPERTY
@given(skew=SKEWS)
async def test_a_failure_about_to_be_retried_is_judged_on_the_servers_clock(skew: dt.timedelta) -> None:
    """A run that failed 5 minutes ago by the server's clock, which will retry it: a WARNING,
    "failed 5 min ago, will be retried". Judged on this machine's clock, a server 3 hours slow
    made it "failed 3 h ago", CRITICAL (past the retry window), and one 3 hours fast "just now"
    for 3 hours more."""
    server_now = dt.datetime.now(dt.UTC) + skew
    ended = server_now - dt.timedelta(minutes=5, seconds=30)
    failed = v8_session("c41d7e90-0000-4f6c-8d1e-3b9a0f7e2c55", "Failed",
                        wire_time(ended - dt.timedelta(minutes=20)), wire_time(ended),
                        jobWillBeRetried=True)  # fmt: skip
    job_wire = {"id": JOB_ID, "isEnabled": True, "lastStatus": "Failed", "lastRun": failed["creationTime"],
                "lastBackup": wire_time(server_now - dt.timedelta(hours=25))}  # fmt: skip
    routes = {f"/v8/JobSessions?jobId={JOB_ID}&limit=5": {"offset": 0, "limit": 5, "results": [failed]}}
    async with VBOClient(
        "https://vbo.test", username="svc", password=PASSWORD, api_version="v8", transport=dated(routes, skew)
    ) as vbo:
        health = await vbo.job_health(vbo.from_wire(job_wire, Job))
        offset = vbo.server_clock_offset
    assert offset is not None
    assert abs(offset - skew) <= dt.timedelta(seconds=2)
    assert health.state is HealthState.WARNING
    # On this machine's clock a server over 2 h slow made it CRITICAL (past the retry window):
    # the server's clock decided, and the reason says so.
    mine = "WARNING" if dt.timedelta(minutes=-110) < skew < dt.timedelta(minutes=5) else "CRITICAL"
    said = "failed 5 min ago, will be retried"
    assert health.reason == said or (
        mine == "CRITICAL" and health.reason.startswith(f"{said} (on the server's")
    )
    if health.reason != said:
        assert health.reason.endswith("behind this machine's; CRITICAL on this machine's)")


@PROPERTY
@given(skew=SKEWS)
async def test_a_success_25_hours_ago_is_not_stale_whatever_the_skew(skew: dt.timedelta) -> None:
    """The last success 25 hours ago by the server's clock is within the default 26 hours: OK.
    A server 2 hours slow made it 27 hours old on this machine's clock: CRITICAL, stale."""
    server_now = dt.datetime.now(dt.UTC) + skew
    ended = server_now - dt.timedelta(hours=25, seconds=30)  # the Date is to the second
    success = v8_session("c41d7e90-0000-4f6c-8d1e-3b9a0f7e2c56", "Success",
                         wire_time(ended - dt.timedelta(minutes=20)), wire_time(ended))  # fmt: skip
    job_wire = {"id": JOB_ID, "isEnabled": True, "lastStatus": "Success", "lastRun": success["creationTime"],
                "lastBackup": success["endTime"]}  # fmt: skip
    routes = {f"/v8/JobSessions?jobId={JOB_ID}&limit=5": {"offset": 0, "limit": 5, "results": [success]}}
    async with VBOClient(
        "https://vbo.test", username="svc", password=PASSWORD, api_version="v8", transport=dated(routes, skew)
    ) as vbo:
        health = await vbo.job_health(vbo.from_wire(job_wire, Job))
    assert health.state is HealthState.OK
    said = "last run succeeded 25 h ago"
    if skew >= dt.timedelta(0):
        assert health.reason == said
    elif health.reason != said:  # over an hour slow: stale on this machine's clock, and said so
        assert health.reason.startswith(f"{said} (on the server's clock, ")
        assert health.reason.endswith("behind this machine's; CRITICAL on this machine's)")


async def test_a_now_given_is_taken_as_it_is() -> None:
    """``job_health(now=...)``: the caller's time, not moved by the server's clock."""
    skew = dt.timedelta(hours=-3)
    server_now = dt.datetime.now(dt.UTC) + skew
    ended = server_now - dt.timedelta(hours=25)
    success = v8_session("c41d7e90-0000-4f6c-8d1e-3b9a0f7e2c57", "Success",
                         wire_time(ended - dt.timedelta(minutes=20)), wire_time(ended))  # fmt: skip
    job_wire = {"id": JOB_ID, "isEnabled": True, "lastStatus": "Success", "lastBackup": success["endTime"]}
    routes = {f"/v8/JobSessions?jobId={JOB_ID}&limit=5": {"offset": 0, "limit": 5, "results": [success]}}
    async with VBOClient(
        "https://vbo.test", username="svc", password=PASSWORD, api_version="v8", transport=dated(routes, skew)
    ) as vbo:
        health = await vbo.job_health(vbo.from_wire(job_wire, Job), now=ended + dt.timedelta(hours=27))
    assert health.state is HealthState.CRITICAL
    assert health.reason.startswith("no success for 27 h")


# --- a sweep on the server's clock ---------------------------------------------------------------------


class FrozenClock:
    def __call__(self) -> float:
        return 1000.0


class Dated(httpx.AsyncBaseTransport):
    """The simulator's app, each answer dated by the simulator's clock, as a server dates its own."""

    def __init__(self, simulator: Simulator) -> None:
        self._simulator = simulator
        self._inner = httpx.ASGITransport(app=create_app(simulator=simulator))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        seconds = self._simulator.now() / TICKS_PER_SECOND
        response.headers["Date"] = http_date(dt.datetime.fromtimestamp(seconds, dt.UTC))
        return response


@pytest.mark.parametrize("skew_hours", [-10, -2, 5])
@pytest.mark.parametrize(("version", "batch"), [("v8", True), ("v8", False), ("v6", True), ("v1", False)])
async def test_a_sweep_judges_on_the_servers_clock(skew_hours: int, version: str, batch: bool) -> None:
    """A sweep of a server hours off this machine's clock gives every job the verdict its runs
    give on the server's clock (its every session at the simulator's now), as if no clock were
    off: on this machine's clock a server 2 or 5 hours slow made fresh jobs stale and just-failed
    ones past their retry."""
    epoch = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(hours=skew_hours)
    simulator = Simulator(SimulatorConfig(seed=2, organizations=3, epoch=epoch), clock=FrozenClock())
    policy = HealthPolicy()
    async with VBOClient(
        "https://vbo.test",
        username="admin",
        password="admin",
        api_version=version,
        transport=Dated(simulator),
    ) as vbo:
        targets = [PollTarget(client=vbo, organization_id=org) for org in simulator.organization_ids()]
        found: dict[str, HealthState] = {}
        async with poll_jobs(targets, batch=batch, health=policy) as sweeping:
            async for result in sweeping:
                assert result.error is None
                found.update({job_id: health.state for job_id, health in result.health.items()})
        expected = {}
        unskewed = {}
        for job in await vbo.jobs():
            history = await vbo.job_sessions(job, limit=None)
            expected[job.id] = assess(job, history, policy=policy, now=epoch).state
            unskewed[job.id] = assess(job, history, policy=policy, now=dt.datetime.now(dt.UTC)).state
    assert found == expected
    if skew_hours < 0:
        assert unskewed != expected, "the scenario shows nothing"


# --- a token's lifetime on the server's clock -------------------------------------------------------


@pytest.mark.parametrize("skew_hours", [-3, 3])
async def test_a_token_that_says_only_when_it_expires_lives_as_long_on_the_servers_clock(
    skew_hours: int,
) -> None:
    """A token answer without ``expires_in`` gives its end as ``.expires``, a time on the server's
    clock: its lifetime is counted from the server's now (its ``Date``), not this machine's. A
    server 3 hours fast made a token of an hour live 4 (renewed 3 hours after it had expired),
    one 3 hours slow one that had "expired" 2 hours ago (taken as the default hour)."""
    skew = dt.timedelta(hours=skew_hours)

    def handle(request: httpx.Request) -> httpx.Response:
        server_now = dt.datetime.now(dt.UTC) + skew
        head = {"Date": http_date(server_now)}
        if request.url.path.lower() == "/v1/token":
            expires = http_date(server_now + dt.timedelta(minutes=30))
            token = {"access_token": "at", "refresh_token": "rt", "token_type": "bearer", ".expires": expires}
            return httpx.Response(200, json=token, headers=head)
        return httpx.Response(200, json=[], headers=head)

    async with VBOClient(
        "https://vbo.test",
        username="svc",
        password=PASSWORD,
        api_version="v1",
        transport=httpx.MockTransport(handle),
    ) as vbo:
        await vbo.jobs()
        token = await vbo._tokens.current()
        left = token.expires_at - time.monotonic()
    assert 30 * 60 - 5 <= left <= 30 * 60 + 1


def test_an_answer_dated_as_the_last_one_changes_nothing() -> None:
    """The same ``Date`` again (an answer within its second, or a ``Date`` that stopped moving)
    keeps the offset it gave: no clock to follow is read from it."""
    clock = ServerClock()
    date = http_date(RECEIVED - dt.timedelta(hours=2))
    clock.observe(date, RECEIVED)
    kept = clock.offset
    clock.observe(date, RECEIVED + dt.timedelta(hours=1))
    assert kept is not None
    assert clock.offset == kept


async def test_the_client_looks_at_a_date_a_second_and_follows_a_step_after_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The sender reads an answer's ``Date`` once a second (it changes no faster): answers in
    between leave the offset as it was, and the first answer after that second is read again,
    so a server's clock set anew is followed (here: 3 h, then 5 h ahead of this machine)."""
    ahead = [dt.timedelta(hours=3)]

    def handler(request: httpx.Request) -> httpx.Response:
        date = http_date(dt.datetime.now(dt.UTC) + ahead[0])
        if request.url.path.lower().endswith("/token"):
            token = {"access_token": "a", "token_type": "bearer", "expires_in": 3600, "refresh_token": "r"}
            return httpx.Response(200, json=token, headers={"Date": date})
        return httpx.Response(200, json=[], headers={"Date": date})

    monotonic = [1000.0]
    monkeypatch.setattr("vbo_async._sending.time.monotonic", lambda: monotonic[0])
    async with VBOClient(
        "https://vbo.test:4443", username="u", password=PASSWORD, api_version="v1",
        transport=httpx.MockTransport(handler),
    ) as vbo:  # fmt: skip
        await vbo.organizations()
        assert vbo.server_clock_offset is not None
        assert abs(vbo.server_clock_offset - dt.timedelta(hours=3)) <= dt.timedelta(seconds=2)
        ahead[0] = dt.timedelta(hours=5)
        monotonic[0] += 0.5  # within the second: not looked at
        await vbo.organizations()
        assert abs(vbo.server_clock_offset - dt.timedelta(hours=3)) <= dt.timedelta(seconds=2)
        monotonic[0] += 0.6  # past it: the next answer's Date is read
        await vbo.organizations()
        assert abs(vbo.server_clock_offset - dt.timedelta(hours=5)) <= dt.timedelta(seconds=2)


# --- one sweep, one instant per server -------------------------------------------------------------

FIXED = dt.datetime(2026, 3, 2, 0, 0, tzinfo=dt.UTC)
"""The sweep's "now" on this machine's clock (a midnight, the day after a February's end)."""


def moving(
    vbo_box: list[VBOClient], seen: list[str], move_on: Callable[[httpx.Request], bool]
) -> Callable[[httpx.Request], httpx.Response]:
    """`test_batch.scripted`'s v8 server, its one job last backed up exactly 26 hours before
    `FIXED`; its answer to the request ``move_on`` picks shows a clock 2 hours further ahead than
    the answers before it (as a ``Date`` that changed between two answers), and every
    ``/JobSessions`` request is noted in ``seen`` and answered with none."""
    ran, backed_up = FIXED - dt.timedelta(hours=26, minutes=20), FIXED - dt.timedelta(hours=26)
    jobs = [
        _job(number, org, isEnabled=True, lastRun=wire_time(ran), lastBackup=wire_time(backed_up))
        for number, org in enumerate(ORGS[:2], 1)
    ]
    serve = scripted(jobs)

    def handle(request: httpx.Request) -> httpx.Response:
        path = request.url.path.lower()
        if path == "/v8/jobsessions":
            seen.append(str(request.url.params))
        if move_on(request):
            vbo_box[0]._sender.clock.offset = dt.timedelta(hours=2)
        if path == "/v8/jobsessions":
            return httpx.Response(200, json={"offset": 0, "limit": 10000, "results": [], "_links": {}})
        return serve(request)

    return handle


async def swept(units: list[Unit], policy: HealthPolicy) -> dict[str, PollResult]:
    results: dict[str, PollResult] = {}
    async with asyncio.TaskGroup() as group:
        context = Context(
            follow=(),
            health=policy,
            now=FIXED,
            links=LinkCache(group),
            emit=lambda result: results.setdefault(result.target.organization_id, result),
        )
        for unit in units:
            await run_unit(unit, context)
    return results


async def test_a_batch_judges_at_the_instant_its_window_was_read_from() -> None:
    """A server's clock that moves between two answers of one batch (its recent sessions
    read, then its jobs judged) does not judge the jobs at another instant than the one the
    window was cut at: the window reaches back ``max_age`` + 2 h from the instant the jobs are
    judged at. A job last backed up exactly ``max_age`` before it is at the edge: OK at that
    instant, CRITICAL at the one two hours later, which the batch used for the verdicts."""
    box: list[VBOClient] = []
    seen: list[str] = []
    handler = moving(box, seen, lambda request: request.url.path.lower() == "/v8/jobsessions")
    async with VBOClient(
        "https://vbo.test:4443", username="u", password=PASSWORD, api_version="v8",
        transport=httpx.MockTransport(handler),
    ) as vbo:  # fmt: skip
        box.append(vbo)
        targets = tuple(PollTarget(client=vbo, organization_id=org) for org in ORGS[:2])
        results = await swept([Batch(vbo, targets)], HealthPolicy())
    assert len(seen) == 1
    bound = dt.datetime.fromisoformat(dict(httpx.QueryParams(seen[0]))["endTimeLowerBound"])
    judged_at = bound + dt.timedelta(hours=28)  # max_age and the window's 2 h of slack
    assert judged_at == FIXED
    for org in ORGS[:2]:
        (health,) = results[org].health.values()
        assert (health.state, health.reason) == (HealthState.OK, "last run succeeded 26 h ago")


async def test_tenants_swept_one_by_one_are_judged_at_one_instant() -> None:
    """Two tenants of one server swept alone, its clock moving 2 hours between their listings:
    both judged at the instant taken for the first, not the second at another."""
    box: list[VBOClient] = []
    handler = moving(box, [], lambda request: request.url.params.get("organizationId") == ORGS[1])
    async with VBOClient(
        "https://vbo.test:4443", username="u", password=PASSWORD, api_version="v8",
        transport=httpx.MockTransport(handler),
    ) as vbo:  # fmt: skip
        box.append(vbo)
        targets = [PollTarget(client=vbo, organization_id=org) for org in ORGS[:2]]
        results = await swept(list(targets), HealthPolicy())
    verdicts = {(h.state, h.reason) for org in ORGS[:2] for h in results[org].health.values()}
    assert verdicts == {(HealthState.OK, "last run succeeded 26 h ago")}


# --- a wrong Date says what it changed ---------------------------------------------------------------

CLOCK_NOTE = "on the server's clock"


@PROPERTY
@given(
    date=st.one_of(
        st.text(max_size=40),
        st.timedeltas(min_value=-dt.timedelta(days=3), max_value=dt.timedelta(days=3)).map(
            lambda skew: http_date(RECEIVED + skew)
        ),
    ),
    age=st.timedeltas(min_value=-dt.timedelta(days=2), max_value=dt.timedelta(days=4)),
    status=st.sampled_from(["Success", "Failed"]),
    retried=st.booleans(),
)
def test_a_date_header_changes_a_verdict_only_saying_so(
    date: str, age: dt.timedelta, status: str, retried: bool
) -> None:
    """Whatever a ``Date`` header says (a proxy's, a clock set wrong, not a date at all), the
    verdict judged on the server's clock it gives is the one this machine's clock gives, or says
    that the server's clock decided it (and which verdict this machine's clock gives); and that
    clock is at most a day off this machine's."""
    clock = ServerClock()
    clock.observe(date, RECEIVED)
    there = clock.now(RECEIVED)
    assert abs(there - RECEIVED) <= CLOCK_SKEW
    ended = RECEIVED - age
    began = ended - dt.timedelta(minutes=30)
    run = JobSession(id="s", job_id="j", status=JobStatus(status), creation_time=began, end_time=ended,
                     job_will_be_retried=retried)  # fmt: skip
    job = Job(id="j", name="Mail", is_enabled=True)

    def judge(at: dt.datetime) -> JobHealth:
        return assess(job, [run], now=at)

    health = on_clock(judge, RECEIVED, there)
    here = judge(RECEIVED)
    if health.state is here.state:
        assert health == judge(there)
    else:
        assert CLOCK_NOTE in health.reason
        assert health.reason.endswith(f"; {here.state.name} on this machine's)")
        assert health.state is judge(there).state


async def test_a_healthy_job_stale_by_a_wrong_date_says_so() -> None:
    """A server (or a proxy before it) whose ``Date`` is 20 hours ahead of this machine's makes
    a job that succeeded 10 hours ago 30 hours old on that clock: CRITICAL, and the reason says
    that the server's clock decided it, how far off it is, and what this machine's clock says.
    One 20 hours behind makes the success lie ahead of its clock: OK either way, nothing said."""
    skew = dt.timedelta(hours=20)
    ended = dt.datetime.now(dt.UTC) - dt.timedelta(hours=10)
    success = v8_session("c41d7e90-0000-4f6c-8d1e-3b9a0f7e2c59", "Success",
                         wire_time(ended - dt.timedelta(minutes=20)), wire_time(ended))  # fmt: skip
    job_wire = {"id": JOB_ID, "isEnabled": True, "lastStatus": "Success", "lastBackup": success["endTime"]}
    routes = {f"/v8/JobSessions?jobId={JOB_ID}&limit=5": {"offset": 0, "limit": 5, "results": [success]}}
    verdicts = []
    for moved in (-skew, skew):
        async with VBOClient(
            "https://vbo.test", username="svc", password=PASSWORD, api_version="v8",
            transport=dated(routes, moved),
        ) as vbo:  # fmt: skip
            verdicts.append(await vbo.job_health(vbo.from_wire(job_wire, Job)))
    behind, ahead = verdicts
    assert (behind.state, behind.reason) == (HealthState.OK, "last run succeeded just now")
    note = "(on the server's clock, 20 h ahead of this machine's; OK on this machine's)"
    assert ahead.state is HealthState.CRITICAL
    assert ahead.reason in {f"no success for {hours} h (max 26 h) {note}" for hours in (29, 30)}


@pytest.mark.parametrize(
    "date",
    [
        "2026-07-01",  # a day, no time of day: read as its midnight, up to a day "off"
        "20260701",
        "2026-W27-3",
        "2026-07-01T09:00",  # ISO 8601 is no HTTP date (RFC 9110 §5.6.7)
        "2026-07-01T09:00:00Z",
    ],
)
def test_a_date_header_that_is_no_http_date_moves_nothing(date: str) -> None:
    """Only an HTTP date (IMF-fixdate, or the obsolete RFC 850 and asctime forms a recipient
    accepts) is a reading of the server's clock: an ISO 8601 time, above all a day alone (read
    as midnight, hours from any clock), moved "now" by up to a day."""
    clock = ServerClock()
    clock.observe(date, RECEIVED)
    assert clock.offset is None
    assert clock.now(RECEIVED) == RECEIVED


@pytest.mark.parametrize(
    "date",
    ["Wed, 01 Jul 2026 09:00:00 GMT", "Wednesday, 01-Jul-26 09:00:00 GMT", "Wed Jul  1 09:00:00 2026"],
)
def test_the_three_http_date_forms_are_read(date: str) -> None:
    clock = ServerClock()
    clock.observe(date, RECEIVED)
    assert clock.offset == dt.timedelta(hours=-3)
