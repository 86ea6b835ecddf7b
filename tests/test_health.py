"""Job health: the pure `assess` decision (plain synchronous tests) and `VBOClient.job_health`
against the simulator on v1, v6, v7 and v8, with the requests it costs counted per job."""

from __future__ import annotations

import copy
import datetime as dt
import pickle
import random
import re
import zoneinfo
from collections.abc import AsyncIterator, Sequence
from typing import Any

import attrs
import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vbo_async import (
    BackupWindow,
    ConfigError,
    DailyType,
    HealthPolicy,
    HealthState,
    HourFlags,
    Job,
    JobHealth,
    JobSession,
    JobStatus,
    NotFoundError,
    PeriodicallyEvery,
    SchedulePolicy,
    ScheduleType,
    VBOClient,
    assess,
)
from vbo_async._health import (
    HEALTH_WINDOW,
    RETRY_WITHIN,
    _allowance,
    _beyond,
    _span,
    is_never,
    retry_allowance,
    window_falls_short,
)
from vbo_async._zones import UNZONED
from vbo_async.simulator import Simulator, SimulatorConfig, create_app

from .test_properties import PROPERTY

NOW = dt.datetime(2026, 7, 1, 12, 0, tzinfo=dt.UTC)
OK, WARNING, CRITICAL, UNKNOWN = (
    HealthState.OK,
    HealthState.WARNING,
    HealthState.CRITICAL,
    HealthState.UNKNOWN,
)
VERSIONS = ("v1", "v6", "v7", "v8")
PASSWORD = "pw-Health-S3cret!"


def hours(value: float) -> dt.timedelta:
    return dt.timedelta(hours=value)


def make_job(**fields: Any) -> Job:
    return Job(**{"id": "job-1", "name": "Exchange daily", "is_enabled": True, **fields})


_ids = iter(range(10**6))


def run(
    status: str | None,
    ago: float,
    *,
    minutes: float = 10,
    will_retry: bool | None = None,
    job_id: str | None = "job-1",
    ended: bool = True,
) -> JobSession:
    """A session created ``ago`` hours before NOW that took ``minutes`` (no end while running)."""
    created = NOW - hours(ago)
    end = created + dt.timedelta(minutes=minutes) if ended and status not in ("Running", "Queued") else None
    return JobSession(
        id=f"s{next(_ids)}",
        job_id=job_id,
        creation_time=created,
        end_time=end,
        status=None if status is None else JobStatus(status),
        job_will_be_retried=will_retry,
    )


def check(job: Job, sessions: Sequence[JobSession] = (), **policy: Any) -> JobHealth:
    return assess(job, sessions, policy=HealthPolicy(**policy), now=NOW)


# --- HealthState and HealthPolicy ------------------------------------------------------------------


def test_states_are_numbered_as_nagios_exits_and_ranked_as_plugins_rank_them() -> None:
    assert [int(s) for s in (OK, WARNING, CRITICAL, UNKNOWN)] == [0, 1, 2, 3]
    ranked = sorted(HealthState, key=lambda s: s.severity)
    assert ranked == [OK, UNKNOWN, WARNING, CRITICAL]
    assert max([OK, UNKNOWN, WARNING], key=lambda s: s.severity) is WARNING


def test_policy_defaults() -> None:
    policy = HealthPolicy()
    assert policy.failed is CRITICAL
    assert policy.failed_will_retry is WARNING
    assert policy.warning is WARNING
    assert policy.other_result is UNKNOWN
    assert policy.stale is CRITICAL
    assert policy.max_age == hours(26)
    assert policy.never_run is WARNING
    assert policy.disabled is OK
    assert policy.unreadable is UNKNOWN
    assert policy.schedule_aware is False
    assert policy.warning_is_success is False


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("failed", 2),
        ("failed", "CRITICAL"),
        ("warning", None),
        ("stale", True),
        ("never_run", JobStatus.FAILED),
        ("disabled", 0),
        ("unreadable", None),
        ("max_age", 26),
        ("max_age", dt.timedelta(0)),
        ("max_age", -hours(1)),
        ("schedule_aware", 1),
        ("schedule_aware", "yes"),
        ("schedule_aware", None),
    ],
)
def test_policy_refuses_bad_values(option: str, value: Any) -> None:
    with pytest.raises(ConfigError, match=option):
        HealthPolicy(**{option: value})


def test_policy_is_frozen_and_keyword_only() -> None:
    policy = HealthPolicy(max_age=None, disabled=None)
    assert policy.max_age is None
    assert policy.disabled is None
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        policy.failed = OK  # type: ignore[misc]
    with pytest.raises(TypeError):
        HealthPolicy(CRITICAL)  # type: ignore[misc]


# --- the last finished run -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "state", "reason"),
    [
        ("Success", OK, "last run succeeded 3 h ago"),
        ("Warning", WARNING, "last run ended with warnings 3 h ago"),
        ("Failed", CRITICAL, "failed 3 h ago"),
        ("Disconnected", UNKNOWN, "last run ended with status Disconnected 3 h ago"),
        ("NotConfigured", UNKNOWN, "last run ended with status NotConfigured 3 h ago"),
        ("Paused", UNKNOWN, "last run ended with status Paused 3 h ago"),  # newer than vbo-async
        (None, UNKNOWN, "last run ended with no status 3 h ago"),
    ],
)
def test_the_last_finished_run_is_graded(status: str | None, state: HealthState, reason: str) -> None:
    last = run(status, 3.2)
    health = check(make_job(), [last, run("Success", 20)])
    assert (health.state, health.reason) == (state, reason)
    assert health.last_session is last
    assert health.running is None


def test_a_failure_the_server_will_retry_is_a_warning() -> None:
    failed = run("Failed", 2, will_retry=True)
    health = check(make_job(), [failed, run("Success", 10)])
    assert (health.state, health.reason) == (WARNING, "failed 1 h ago, will be retried")
    assert health.last_session is failed


@pytest.mark.parametrize(
    ("ago", "retrying", "state", "reason"),
    [
        (2 + 10 / 60, False, WARNING, "failed 2 h ago, will be retried"),
        (2.2, False, CRITICAL, "failed 2 h ago"),
        (49, False, CRITICAL, "failed 2 days ago"),
        (49, True, WARNING, "failed 2 days ago, will be retried"),
    ],
)
def test_a_retry_that_never_came_is_not_awaited(
    ago: float, retrying: bool, state: HealthState, reason: str
) -> None:
    """A failure the server said it would retry, that ended more than `RETRY_WITHIN` (2 h) ago
    with no run after it, was not retried: it is the failure it is (CRITICAL). It was a WARNING
    'will be retried' for as long as it stayed the last run (days), where a batch, seeing it
    only through the job's lastStatus once it left its window, said CRITICAL. A run in progress
    after it is the retry on its way."""
    failed = run("Failed", ago, will_retry=True)
    sessions = [failed, run("Running", ago - 0.5)] if retrying else [failed]
    health = check(make_job(), sessions, max_age=None)
    assert (health.state, health.reason, health.last_session) == (state, reason, failed)


@pytest.mark.parametrize(
    ("wait", "ago", "max_age", "state"),
    [
        (180, 4.5, hours(26), WARNING),  # ended 4 h 20 min ago: within the 3 h wait and 2 h more
        (180, 5.5, hours(26), CRITICAL),  # ended 5 h 20 min ago: the retry would have started
        (10, 2.5, hours(26), CRITICAL),  # a 10 min wait: 2 h 10 min, as before
        (180, 4.5, hours(1), CRITICAL),  # the wait counts at most max_age (a batch's window)
        (-30, 2.5, hours(26), CRITICAL),  # a wait no server means moves nothing
        (10**12, 2.5, None, WARNING),  # nor does an absurd one raise: at most HEALTH_WINDOW
        (10**12, 7 * 24 + 2.5, None, CRITICAL),
    ],
)
def test_a_retry_is_awaited_for_the_job_s_own_retry_wait(
    wait: int, ago: float, max_age: dt.timedelta | None, state: HealthState
) -> None:
    """VB365 retries a failed job after its ``retryWaitInterval`` (minutes). A job set to wait 3 h
    between attempts was called failed (CRITICAL) 2 h after its run, its retry still to come."""
    job = make_job(
        schedule_policy=SchedulePolicy(retry_enabled=True, retry_number=3, retry_wait_interval=wait)
    )
    health = check(job, [run("Failed", ago, will_retry=True)], max_age=max_age, stale=OK)  # the retry alone
    assert health.state is state, health.reason
    assert health.reason.endswith(", will be retried") is (state is WARNING)
    allowance = retry_allowance(job, HealthPolicy(max_age=max_age))
    assert RETRY_WITHIN <= allowance <= RETRY_WITHIN + (max_age or HEALTH_WINDOW)


@pytest.mark.parametrize("counted", [False, True], ids=["success only", "warning is success"])
@pytest.mark.parametrize("source", ["sessions", "job fields"])
def test_a_job_ending_with_warnings_every_night_is_stale_unless_warnings_count(
    counted: bool, source: str
) -> None:
    """Runs that end with warnings (items skipped, throttled) back up all but some items. By
    default only a Success is a success, so such a job is CRITICAL after ``max_age``; with
    ``warning_is_success`` it is the WARNING its last run is, and its last success that run."""
    nightly = [run("Warning", 24 * day + 2) for day in range(10)]
    if source == "sessions":
        job, sessions = make_job(), nightly
    else:  # v1/v6 batch: the job's own last run, no session read
        job = make_job(last_status=JobStatus.WARNING, last_run=NOW - hours(2))
        sessions = []
    health = check(job, sessions, warning_is_success=counted)
    if counted:
        assert health.state is WARNING
        assert health.reason.startswith("last run ended with warnings ")
        assert health.last_success is not None
        assert NOW - health.last_success < hours(3)
    elif source == "sessions":
        assert health.state is CRITICAL
        assert health.reason.startswith("no success for at least 9 days")
        assert health.last_success is None
    else:
        assert health.state is WARNING  # a single run known: no proof of staleness
        assert health.last_success is None


def test_a_schedule_policy_of_the_wrong_type_is_a_config_error_when_a_retry_is_judged() -> None:
    """A job built by hand with ``schedule_policy="daily"``: judging a failure that will be
    retried reads its retry wait, and says what is wrong instead of a bare AttributeError."""
    job = make_job(schedule_policy="daily")
    with pytest.raises(ConfigError, match=r"job\.schedule_policy must be a SchedulePolicy or None, got str"):
        check(job, [run("Failed", 1, will_retry=True)])


def test_the_example_reasons() -> None:
    retried = check(make_job(), [run("Failed", 0.5, will_retry=True)], max_age=None)
    assert retried.reason == "failed 20 min ago, will be retried"
    assert check(make_job(), [run("Success", 3.5)]).reason == "last run succeeded 3 h ago"
    stale = check(make_job(), [run("Success", 31.5, minutes=1)])
    assert (stale.state, stale.reason) == (CRITICAL, "no success for 31 h (max 26 h)")
    assert check(make_job()).reason == "never run"
    assert check(make_job(is_enabled=False)).reason == "disabled"


# --- runs in progress, stops and retries never hide the last result ----------------------------------


@pytest.mark.parametrize("in_progress", ["Running", "Queued"])
def test_a_run_in_progress_does_not_hide_the_last_result(in_progress: str) -> None:
    current = run(in_progress, 0.1)
    failed = run("Failed", 5)
    job = make_job(last_status=JobStatus(in_progress), last_run=NOW - hours(0.1))
    health = check(job, [current, failed, run("Success", 8)])
    assert (health.state, health.reason) == (CRITICAL, "failed 4 h ago")
    assert health.running is current
    assert health.last_session is failed


def test_runs_stopped_by_the_user_are_not_results() -> None:
    warning = run("Warning", 6)
    health = check(make_job(last_status=JobStatus.STOPPED), [run("Stopped", 1), run("Stopped", 2), warning])
    assert (health.state, health.reason) == (WARNING, "last run ended with warnings 5 h ago")
    assert health.last_session is warning
    assert health.running is None


def test_a_retry_in_progress_keeps_the_failure_it_retries() -> None:
    retry = run("Running", 0.2)
    failed = run("Failed", 0.5, will_retry=True)
    health = check(make_job(last_status=JobStatus.RUNNING), [retry, failed, run("Success", 12)])
    assert (health.state, health.reason) == (WARNING, "failed 20 min ago, will be retried")
    assert health.running is retry


def test_a_retry_decides_once_it_has_finished() -> None:
    first = run("Failed", 2, will_retry=True)
    assert check(make_job(), [run("Failed", 1, will_retry=False), first]).state is CRITICAL
    assert check(make_job(), [run("Success", 1), first]).state is OK
    assert check(make_job(), [run("Warning", 1), first]).state is WARNING


def test_an_old_stuck_run_behind_newer_results_is_not_running() -> None:
    health = check(make_job(), [run("Success", 1), run("Running", 30)])
    assert health.running is None
    assert health.state is OK


def test_order_and_other_jobs_sessions_do_not_matter() -> None:
    sessions = [
        run("Success", 9),
        run("Failed", 4),
        run("Running", 0.5),
        run("Success", 1, job_id="other-job"),
        run("Stopped", 2),
    ]
    expected = check(make_job(), sessions)
    assert (expected.state, expected.reason) == (CRITICAL, "failed 3 h ago")
    shuffled = sessions[:]
    random.Random(4).shuffle(shuffled)
    assert check(make_job(), shuffled) == expected
    assert check(make_job(), iter(sessions)) == expected  # any iterable, read once
    assert expected.last_success == NOW - hours(9) + dt.timedelta(minutes=10)


# --- the last success --------------------------------------------------------------------------------


def test_last_success_is_the_jobs_last_backup_on_v7_plus() -> None:
    backup = NOW - hours(20)
    job = make_job(last_backup=backup)
    health = check(job, [run("Warning", 2), run("Warning", 6)])
    assert health.last_success == backup
    assert (health.state, health.reason) == (WARNING, "last run ended with warnings 1 h ago")
    assert check(job, [run("Warning", 2)], max_age=hours(12)).reason == "no success for 20 h (max 12 h)"


def test_last_success_is_the_newest_successful_run_without_last_backup() -> None:
    newest = run("Success", 5, minutes=30)
    health = check(make_job(), [run("Warning", 1), newest, run("Success", 30)])
    assert health.last_success == newest.end_time
    assert newest.end_time is not None


def test_last_success_takes_the_later_of_last_backup_and_the_runs() -> None:
    seen = run("Success", 2)
    assert check(make_job(last_backup=NOW - hours(40)), [seen]).last_success == seen.end_time
    assert check(make_job(last_backup=NOW - hours(1)), [seen]).last_success == NOW - hours(1)


def test_a_successful_last_run_newer_than_last_backup_is_the_last_success() -> None:
    """v7+: ``lastStatus`` Success of a run begun 62 h ago while ``lastBackup`` still said 83 h
    (a server that had not moved it yet): the job succeeded 62 h ago. A batch, whose window held
    neither run, judged it stale from ``lastBackup`` alone (CRITICAL where `job_health`, reading
    the run, said OK); every reader now takes the later of the two."""
    job = make_job(last_status=JobStatus.SUCCESS, last_run=NOW - hours(62), last_backup=NOW - hours(83))
    alone = check(job, [])
    assert alone.last_success == NOW - hours(62)
    assert check(job, [], max_age=hours(70)).state is OK  # 62 h: within, where 83 h was not
    read = check(job, [run("Success", 59)], max_age=hours(70))  # the run itself, when read
    assert read.last_success is not None
    assert read.last_success > alone.last_success
    # A last run that failed is no success: lastBackup stands.
    failed = make_job(last_status=JobStatus.FAILED, last_run=NOW - hours(62), last_backup=NOW - hours(83))
    assert check(failed, []).last_success == NOW - hours(83)


def test_a_successful_run_without_an_end_counts_from_its_start() -> None:
    seen = run("Success", 2, ended=False)
    assert check(make_job(), [seen]).last_success == seen.creation_time


def test_without_sessions_the_job_fields_decide() -> None:
    """v1-style: nothing but ``last_status`` and ``last_run`` (also a sweep that saw no session)."""
    failed = make_job(last_status=JobStatus.FAILED, last_run=NOW - hours(3))
    health = check(failed)
    assert (health.state, health.reason) == (CRITICAL, "failed 3 h ago")
    assert health.last_session is None
    assert health.last_success is None
    succeeded = make_job(last_status=JobStatus.SUCCESS, last_run=NOW - hours(2))
    health = check(succeeded)
    assert (health.state, health.reason, health.last_success) == (
        OK,
        "last run succeeded 2 h ago",
        NOW - hours(2),
    )
    running = make_job(last_status=JobStatus.RUNNING, last_run=NOW - hours(1), last_backup=NOW - hours(25))
    health = check(running)
    assert (health.state, health.reason) == (OK, "last success 25 h ago")


def test_a_job_without_any_success_known() -> None:
    assert check(make_job()).last_success is None
    assert check(make_job(), [run("Failed", 1), run("Warning", 3)]).last_success is None


# --- staleness --------------------------------------------------------------------------------------


def test_stale_at_max_age_edges() -> None:
    def at(age: dt.timedelta, **policy: Any) -> JobHealth:
        return check(make_job(last_backup=NOW - age), [run("Success", 900)], **policy)

    assert at(hours(26)).state is OK
    assert at(hours(26) + dt.timedelta(seconds=1)).state is CRITICAL
    # Said to the second where a rounder reading would not be past the limit (26 h, max 26 h).
    assert at(hours(26) + dt.timedelta(seconds=1)).reason == "no success for 26 h 0 min 1 s (max 26 h)"
    assert at(hours(26) + dt.timedelta(minutes=50)).reason == "no success for 26 h 50 min (max 26 h)"
    assert at(hours(500), max_age=None).state is OK
    assert at(hours(500), max_age=None).reason == "last run succeeded 37 days ago"
    assert at(dt.timedelta(minutes=45), max_age=dt.timedelta(minutes=30)).reason == (
        "no success for 45 min (max 30 min)"
    )
    assert at(hours(100), max_age=hours(80)).reason == "no success for 4 days (max 80 h)"
    assert at(hours(200), max_age=hours(168)).reason == "no success for 8 days (max 7 days)"
    assert at(hours(2), max_age=dt.timedelta(minutes=90)).reason == "no success for 2 h (max 90 min)"
    assert at(hours(1), max_age=dt.timedelta(seconds=59.5)).reason == "no success for 1 h (max 59.5 s)"
    assert at(hours(-1)).state is OK  # a clock ahead of ours: not stale


@pytest.mark.parametrize(
    ("seconds", "said"), [(0.5, "0.5 s"), (3600.5, "3600.5 s"), (60.25, "60.25 s"), (259200.5, "259200.5 s")]
)
def test_a_max_age_with_a_fraction_of_a_second_is_said_as_it_is(seconds: float, said: str) -> None:
    health = check(make_job(last_backup=NOW - hours(80)), max_age=dt.timedelta(seconds=seconds))
    over = "3 days 8 h" if seconds > 259200 else "3 days"  # 3 days (72 h) would not be past 72 h 0.5 s
    assert (health.state, health.reason) == (CRITICAL, f"no success for {over} (max {said})")


def test_without_a_known_success_only_runs_reaching_past_max_age_prove_staleness() -> None:
    short = [run("Warning", hour) for hour in (1, 2, 3)]
    assert check(make_job(), short).state is WARNING  # three hours of warnings prove nothing more
    long = [*short, run("Warning", 30)]
    health = check(make_job(), long)
    assert (health.state, health.reason) == (CRITICAL, "no success for at least 30 h (max 26 h)")
    only_job = make_job(last_status=JobStatus.WARNING, last_run=NOW - hours(40))
    assert check(only_job).reason == "no success for at least 40 h (max 26 h)"


# --- schedule-aware staleness -----------------------------------------------------------------------


def daily(day_type: str | None, **fields: Any) -> SchedulePolicy:
    return SchedulePolicy(
        type=ScheduleType.DAILY, daily_type=None if day_type is None else DailyType(day_type), **fields
    )


def aware(job: Job, sessions: Sequence[JobSession] = (), **policy: Any) -> JobHealth:
    return check(job, sessions, schedule_aware=True, **policy)


BY_HAND = [
    SchedulePolicy(type=ScheduleType.MANUAL_ONLY),
    daily("Everyday", schedule_enabled=False),
    SchedulePolicy(type=ScheduleType.PERIODICALLY, schedule_enabled=False),
    SchedulePolicy(type=ScheduleType.MANUAL_ONLY, schedule_enabled=True),
]


@pytest.mark.parametrize("schedule", BY_HAND)
def test_a_job_run_only_by_hand_is_never_stale_when_schedule_aware(schedule: SchedulePolicy) -> None:
    succeeded = make_job(schedule_policy=schedule, last_backup=NOW - hours(2000))
    sessions = [run("Success", 2000)]
    assert check(succeeded, sessions).state is CRITICAL  # the default: max_age alone
    health = aware(succeeded, sessions)
    assert (health.state, health.reason) == (OK, "last run succeeded 83 days ago")
    # Its last run is still graded as it is without a schedule.
    job = make_job(schedule_policy=schedule)
    failed = aware(job, [run("Failed", 900)])
    assert (failed.state, failed.reason) == (CRITICAL, "failed 37 days ago")
    warnings = [run("Warning", 1), run("Warning", 900)]
    assert (aware(job, warnings).state, aware(job, warnings).reason) == (
        WARNING,
        "last run ended with warnings 50 min ago",
    )
    assert check(job, warnings).state is CRITICAL  # stale by default
    assert (aware(job).state, aware(job).reason) == (WARNING, "never run")
    disabled = aware(make_job(schedule_policy=schedule, is_enabled=False), [run("Failed", 1)])
    assert (disabled.state, disabled.reason) == (OK, "disabled")


@pytest.mark.parametrize(
    ("day_type", "extra", "name"),
    [
        ("Workdays", 2, "workdays"),
        ("Weekends", 5, "weekends"),
        ("Monday", 6, "Mondays"),
        ("Wednesday", 6, "Wednesdays"),
        ("Sunday", 6, "Sundays"),
    ],
)
def test_a_daily_schedule_on_some_days_extends_max_age_by_its_longest_gap(
    day_type: str, extra: int, name: str
) -> None:
    def at(age: dt.timedelta, **policy: Any) -> JobHealth:
        job = make_job(schedule_policy=daily(day_type), last_backup=NOW - age)
        return aware(job, [run("Success", 5000)], **policy)

    limit = hours(27) + dt.timedelta(days=extra)  # and an hour for daylight saving
    assert at(limit).state is OK
    assert at(limit).reason == "last run succeeded 208 days ago"
    late = at(limit + dt.timedelta(seconds=1))
    assert late.state is CRITICAL
    assert (
        late.reason == f"no success for {(27 + 24 * extra) // 24} days 3 h 0 min 1 s"
        f" (max 26 h + {extra} days: runs on {name}; + 1 h for daylight saving)"
    )
    short = at(hours(60), max_age=hours(10))
    if extra == 2:
        assert (short.state, short.reason) == (
            CRITICAL,
            "no success for 60 h (max 10 h + 2 days: runs on workdays; + 1 h for daylight saving)",
        )
    else:
        assert short.state is OK
    # Without schedule_aware, max_age alone decides.
    job = make_job(schedule_policy=daily(day_type), last_backup=NOW - hours(27))
    assert check(job, [run("Success", 5000)]).reason == "no success for 27 h (max 26 h)"


def test_the_allowance_also_bounds_a_job_without_any_success_known() -> None:
    job = make_job(schedule_policy=daily("Workdays"))
    warnings = [run("Warning", 1), run("Warning", 60)]
    assert check(job, warnings).reason == "no success for at least 60 h (max 26 h)"
    assert (aware(job, warnings).state, aware(job, warnings).reason) == (
        WARNING,
        "last run ended with warnings 50 min ago",
    )
    older = aware(job, [*warnings, run("Warning", 80)])
    assert (older.state, older.reason) == (
        CRITICAL,
        "no success for at least 3 days 8 h (max 26 h + 2 days: runs on workdays; + 1 h for daylight saving)",
    )


def window(flags: Sequence[bool], minute_offset: int | None = 0) -> BackupWindow:
    return BackupWindow(backup_intervals_array=tuple(flags), minute_offset=minute_offset)


def periodically(flags: Sequence[bool] | None, *, enabled: bool | None = True) -> SchedulePolicy:
    return SchedulePolicy(
        type=ScheduleType.PERIODICALLY,
        periodically_every=PeriodicallyEvery.HOURS1,
        periodically_window_enabled=enabled,
        periodically_window=None if flags is None else window(flags),
    )


WEEKDAYS_8_TO_18 = [1 <= day <= 5 and 8 <= hour < 18 for day in range(7) for hour in range(24)]
"""Monday to Friday 08:00-18:00 (day 0 is Sunday): closed Friday 18:00 to Monday 08:00, 62 h."""
CLOSED = [False] * 168


@pytest.mark.parametrize(
    "schedule",
    [
        None,
        SchedulePolicy(),
        daily("Everyday"),
        daily(None),
        daily("Holidays"),  # a day type of a newer server: open enum, not known here
        SchedulePolicy(type=ScheduleType.PERIODICALLY, daily_type=DailyType.WORKDAYS),
        SchedulePolicy(type=ScheduleType("Monthly"), daily_type=DailyType.MONDAY),
        SchedulePolicy(daily_type=DailyType.WEEKENDS),  # no type: not known to be Daily
        daily("Everyday", schedule_enabled=True),
        # A Daily job's backup window ends a run that exceeds it; it picks no day.
        daily("Everyday", backup_window_enabled=True, backup_window=window(WEEKDAYS_8_TO_18)),
        # A Periodically job's window counts only when it is on (v7+; v6 has no switch).
        periodically(WEEKDAYS_8_TO_18, enabled=False),
        periodically(WEEKDAYS_8_TO_18, enabled=None),
        periodically(CLOSED, enabled=None),
        periodically([True] * 168),  # open every hour: closed for no hour
        periodically(None),
        SchedulePolicy(
            type=ScheduleType.PERIODICALLY, backup_window_enabled=True, backup_window=window(WEEKDAYS_8_TO_18)
        ),
    ],
)
def test_other_schedules_get_max_age_and_an_hour_for_daylight_saving(schedule: SchedulePolicy | None) -> None:
    def at(age: float) -> JobHealth:
        return aware(make_job(schedule_policy=schedule, last_backup=NOW - hours(age)))

    assert at(27).state is OK  # stale after 26 h without schedule_aware
    assert check(make_job(schedule_policy=schedule, last_backup=NOW - hours(27))).state is CRITICAL
    late = at(27.01)
    assert (late.state, late.reason) == (
        CRITICAL,
        "no success for 27 h 0 min 36 s (max 26 h + 1 h for daylight saving)",
    )
    assert aware(make_job(schedule_policy=schedule, last_backup=NOW - hours(28)), max_age=None).state is OK


def test_a_periodic_window_closed_over_the_weekend_widens_max_age_by_that_stretch() -> None:
    """A job every hour in working hours, Monday to Friday 08:00-18:00, is not stale on a
    Monday morning (its last success Friday 17:xx, 62 h and more ago)."""
    schedule = periodically(WEEKDAYS_8_TO_18)

    def at(age: float, **policy: Any) -> JobHealth:
        return aware(make_job(schedule_policy=schedule, last_backup=NOW - hours(age)), **policy)

    assert check(make_job(schedule_policy=schedule, last_backup=NOW - hours(63))).state is CRITICAL
    assert at(63).state is OK
    limit = 26 + 62 + 1
    assert at(limit).state is OK
    late = at(limit + 0.01)
    assert (late.state, late.reason) == (
        CRITICAL,
        "no success for 3 days 17 h 0 min 36 s"
        " (max 26 h + 62 h: its window is closed that long; + 1 h for daylight saving)",
    )
    short = at(70, max_age=hours(4))
    assert (
        short.reason
        == "no success for 70 h (max 4 h + 62 h: its window is closed that long; + 1 h for daylight saving)"
    )
    # No success known: the runs seen bound how long it has been, against the same allowance.
    job = make_job(schedule_policy=schedule)
    assert aware(job, [run("Warning", 1), run("Warning", 80)]).state is WARNING
    older = aware(job, [run("Warning", 1), run("Warning", 100)])
    assert older.reason == (
        "no success for at least 4 days"
        " (max 26 h + 62 h: its window is closed that long; + 1 h for daylight saving)"
    )


@pytest.mark.parametrize("minute_offset", [0, 60, -300, 330, None])
@pytest.mark.parametrize(
    ("flags", "extra", "said"),
    [
        # Open Monday to Friday only: closed from Saturday 00:00 to Monday 00:00.
        ([1 <= day <= 5 for day in range(7) for _ in range(24)], 48, "48 h"),
        # Open one hour a week: closed 167 h, across the week's end (cyclic).
        ([index == 100 for index in range(168)], 167, "167 h"),
        # Open in Sunday's first and Saturday's last hour only: the stretch between them, not around.
        ([index in (0, 167) for index in range(168)], 166, "166 h"),
        # 72 hours of flags (a short array): the 96 hours it does not cover are closed.
        ([True] * 72, 96, "4 days"),
    ],
)
def test_the_closed_stretch_is_cyclic_and_missing_hours_are_closed(
    flags: list[bool], extra: int, said: str, minute_offset: int | None
) -> None:
    schedule = attrs.evolve(periodically(flags), periodically_window=window(flags, minute_offset))
    limit = 26 + extra + 1
    assert aware(make_job(schedule_policy=schedule, last_backup=NOW - hours(limit))).state is OK
    late = aware(make_job(schedule_policy=schedule, last_backup=NOW - hours(limit + 0.01)))
    assert late.state is CRITICAL
    assert f"(max 26 h + {said}: its window is closed that long; + 1 h for daylight saving)" in late.reason


@pytest.mark.parametrize("flags", [CLOSED, [False], [False] * 200, [False] * 72])
def test_a_periodic_window_that_allows_no_hour_is_never_stale(flags: list[bool]) -> None:
    """As a job run only by hand: no run is missed; its last run is still graded."""
    job = make_job(schedule_policy=periodically(flags), last_backup=NOW - hours(3000))
    health = aware(job, [run("Success", 3000)])
    assert (health.state, health.reason) == (OK, "last run succeeded 124 days ago")
    failed = aware(make_job(schedule_policy=periodically(flags)), [run("Failed", 900)])
    assert (failed.state, failed.reason) == (CRITICAL, "failed 37 days ago")
    assert check(job, [run("Success", 3000)]).state is CRITICAL


@pytest.mark.parametrize(
    "settings",
    [{}, {"backupWindow": None, "minuteOffset": 0}, {"backupWindow": [], "minuteOffset": 0}, None],
    ids=["flags-missing", "flags-null", "flags-empty", "settings-null"],
)
def test_a_periodic_window_without_flags_says_nothing(settings: dict[str, Any] | None) -> None:
    """A v7 job with its periodic window on whose flags the server sent null, left out or empty:
    the window is not counted (``max_age`` alone), as when the whole window is null. Read as a
    window never open, a job without a success for a month was OK."""
    wire = {
        "id": "5f0c8a2e-1b7d-4c3a-9e61-2d4b8f7a9c10",
        "name": "j",
        "isEnabled": True,
        "lastStatus": "Success",
        "lastRun": (NOW - dt.timedelta(days=30)).isoformat(),
        "lastBackup": (NOW - dt.timedelta(days=30)).isoformat(),
        "schedulePolicy": {
            "type": "Periodically",
            "periodicallyEvery": "Hours1",
            "scheduleEnabled": True,
            "periodicallyWindowEnabled": True,
            "periodicallyWindowSettings": settings,
        },
        "_links": {},
    }
    job = VBOClient("https://vbo.invalid:4443", username="u", password="p", api_version="v7").from_wire(
        wire, Job
    )
    health = aware(job)
    assert health.state is CRITICAL
    assert health.reason == "no success for 30 days (max 26 h + 1 h for daylight saving)"


def _brute_force_closed(flags: Sequence[bool]) -> int:
    """The longest run of closed hours, counted from every hour of two weeks laid end to end."""
    week = [index < len(flags) and bool(flags[index]) for index in range(168)]
    if not any(week):
        return 168
    longest = 0
    for start in range(168):
        length = 0
        while length < 168 and not week[(start + length) % 168]:
            length += 1
        longest = max(longest, length)
    return longest


@PROPERTY
@given(flags=st.lists(st.booleans(), max_size=200), open_hour=st.integers(0, 167))
def test_the_allowance_of_a_periodic_window_matches_a_brute_force_count(
    flags: list[bool], open_hour: int
) -> None:
    """Whatever flags a server sends: the allowance is max_age + the longest closed stretch
    (counted by brute force) + an hour; opening every hour adds nothing, and opening one more
    hour never widens it."""
    policy = HealthPolicy(schedule_aware=True)
    closed = _brute_force_closed(flags)
    allowance = _allowance(make_job(schedule_policy=periodically(flags)), policy)
    if not flags:  # a window without any flag says nothing: max_age alone
        assert allowance == (hours(27), "26 h + 1 h for daylight saving")
    elif closed == 168:
        assert allowance is None
    else:
        assert allowance is not None
        assert allowance[0] == hours(26 + closed + 1)
    opened = [*flags, *[False] * (168 - len(flags))]
    opened[open_hour] = True
    wider = _allowance(make_job(schedule_policy=periodically(opened)), policy)
    assert wider is not None
    assert allowance is None or not flags or wider[0] <= allowance[0]
    every = _allowance(make_job(schedule_policy=periodically([True] * 168 + flags)), policy)
    assert every == (hours(27), "26 h + 1 h for daylight saving")


def test_a_periodic_window_of_the_wrong_type_is_a_config_error() -> None:
    bad = attrs.evolve(periodically(None), periodically_window={"backupWindow": [True] * 168})
    with pytest.raises(ConfigError, match="periodically_window must be a BackupWindow"):
        aware(make_job(schedule_policy=bad), [run("Success", 1)])
    flags = attrs.evolve(periodically(None), periodically_window=BackupWindow(backup_intervals_array=7))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="backup_intervals_array must be a sequence of booleans"):
        aware(make_job(schedule_policy=flags), [run("Success", 1)])
    assert check(make_job(schedule_policy=bad), [run("Success", 1)]).state is OK  # not read without it


def test_plain_strings_in_a_schedule_count_as_their_members() -> None:
    """A `SchedulePolicy` built by hand with the wire strings reads as the decoded one."""
    hand = SchedulePolicy(type="Daily", daily_type="Weekends")  # type: ignore[arg-type]
    health = aware(make_job(schedule_policy=hand, last_backup=NOW - hours(30)))
    assert health.state is OK
    manual = SchedulePolicy(type="ManualOnly")  # type: ignore[arg-type]
    assert aware(make_job(schedule_policy=manual, last_backup=NOW - hours(3000))).state is OK


@pytest.mark.parametrize(
    "max_age",
    [
        dt.timedelta.max,
        dt.timedelta.max - dt.timedelta(days=3),
        dt.timedelta(days=999_999_990),
        dt.timedelta(microseconds=1),
    ],
)
@pytest.mark.parametrize("day_type", ["Workdays", "Weekends", "Friday", "Everyday"])
def test_a_huge_or_tiny_max_age_never_overflows(max_age: dt.timedelta, day_type: str) -> None:
    """The allowance saturates at `datetime.timedelta.max` rather than overflow."""
    tiny = max_age < hours(1)
    ancient = make_job(schedule_policy=daily(day_type), last_backup=dt.datetime(1, 1, 1, tzinfo=dt.UTC))
    health = aware(ancient, [run("Success", 1e5)], max_age=max_age)
    assert health.state is (CRITICAL if tiny else OK)
    assert health.reason.startswith(
        "no success for 4166 days (max 0.000001 s" if tiny else "last run succeeded "
    )
    no_success = aware(make_job(schedule_policy=daily(day_type), last_run=NOW - hours(1e5)), max_age=max_age)
    assert (no_success.state, no_success.reason.startswith("no success for at least ")) == (
        (CRITICAL, True) if tiny else (WARNING, False)
    )


def test_a_schedule_that_is_not_a_schedule_policy_is_a_config_error() -> None:
    job = make_job(schedule_policy={"type": "ManualOnly"})
    with pytest.raises(ConfigError, match="schedule_policy must be a SchedulePolicy"):
        aware(job, [run("Success", 1)])
    assert check(job, [run("Success", 1)]).state is OK  # not read without schedule_aware


# --- never run, disabled, unreadable ---------------------------------------------------------------


def test_never_run() -> None:
    health = check(make_job(last_status=JobStatus.STOPPED))
    assert (health.state, health.reason) == (WARNING, "never run")
    assert (health.last_session, health.running, health.last_success) == (None, None, None)
    assert check(make_job(), never_run=OK).state is OK
    assert check(make_job(), never_run=CRITICAL).state is CRITICAL


def test_a_first_run_in_progress_or_only_stopped_runs_are_not_a_result() -> None:
    first = run("Running", 0.1)
    health = check(make_job(last_status=JobStatus.RUNNING, last_run=NOW - hours(0.1)), [first])
    assert (health.state, health.reason, health.running) == (
        WARNING,
        "no finished run among the last 1 session",
        first,
    )
    stopped = check(make_job(), [run("Stopped", 1), run("Stopped", 2)])
    assert stopped.reason == "no finished run among the last 2 sessions"
    known = check(make_job(last_status=JobStatus.RUNNING, last_run=NOW - hours(1)))
    assert known.reason == "no finished run known (last status Running)"


def test_disabled_decides_alone_unless_switched_off() -> None:
    job = make_job(is_enabled=False)
    sessions = [run("Failed", 80)]
    health = check(job, sessions)
    assert (health.state, health.reason) == (OK, "disabled")
    assert health.last_session is sessions[0]  # still described
    assert check(job, sessions, disabled=WARNING).state is WARNING
    graded = check(job, sessions, disabled=None)
    assert (graded.state, graded.reason) == (CRITICAL, "failed 3 days ago")
    unknown_enabled = make_job(is_enabled=None)
    assert check(unknown_enabled, sessions).state is CRITICAL


def test_unreadable_sessions_are_unknown_with_the_error() -> None:
    error = NotFoundError(
        "No job with id 'job-1'", status_code=404, method="GET", url="https://vbo/v8/JobSessions"
    )
    health = assess(make_job(last_status=JobStatus.FAILED, last_run=NOW), (), now=NOW, error=error)
    assert health.state is UNKNOWN
    assert health.reason == f"sessions could not be read: {error}"
    assert "HTTP 404" in health.reason
    custom = assess(make_job(), (), policy=HealthPolicy(unreadable=CRITICAL), now=NOW, error=error)
    assert custom.state is CRITICAL
    disabled = assess(make_job(is_enabled=False), (), now=NOW, error=error)
    assert (disabled.state, disabled.reason) == (OK, "disabled")


# --- the order of findings -----------------------------------------------------------------------

STALE_40 = "no success for at least 40 h (max 26 h)"
DISCONNECTED = "last run ended with status Disconnected 50 min ago"


@pytest.mark.parametrize(
    ("policy", "sessions", "state", "reason"),
    [
        # warning (WARNING) and stale (CRITICAL): CRITICAL wins and is named
        ({}, [run("Warning", 1), run("Warning", 40)], CRITICAL, STALE_40),
        # failed and stale, both CRITICAL: the tie goes to the last run
        ({}, [run("Failed", 40)], CRITICAL, "failed 39 h ago"),
        # WARNING beats UNKNOWN
        ({"stale": WARNING}, [run("Disconnected", 1), run("Failed", 40)], WARNING, STALE_40),
        # UNKNOWN beats OK
        ({"stale": UNKNOWN, "failed": OK}, [run("Failed", 1), run("Failed", 40)], UNKNOWN, STALE_40),
        ({"stale": OK}, [run("Disconnected", 1), run("Failed", 40)], UNKNOWN, DISCONNECTED),
        # every option set to OK: OK, still naming the last run
        ({"failed": OK, "stale": OK}, [run("Failed", 40)], OK, "failed 39 h ago"),
    ],
)  # fmt: skip
def test_the_most_severe_finding_wins(
    policy: dict[str, Any], sessions: list[JobSession], state: HealthState, reason: str
) -> None:
    health = check(make_job(), sessions, **policy)
    assert (health.state, health.reason) == (state, reason)


@pytest.mark.parametrize(
    ("option", "job", "sessions"),
    [
        ("failed", make_job(), [run("Failed", 1)]),
        ("failed_will_retry", make_job(), [run("Failed", 1, will_retry=True)]),
        ("warning", make_job(), [run("Warning", 1)]),
        ("other_result", make_job(), [run("Disconnected", 1)]),
        ("stale", make_job(last_backup=NOW - hours(30)), [run("Success", 30)]),
        ("never_run", make_job(), []),
        ("disabled", make_job(is_enabled=False), [run("Success", 1)]),
    ],
)
@pytest.mark.parametrize("state", list(HealthState))
def test_every_option_sets_its_state(
    option: str, job: Job, sessions: list[JobSession], state: HealthState
) -> None:
    others = {"failed": OK, "stale": OK} if option != "stale" else {}
    assert check(job, sessions, **{**others, option: state}).state is state


# --- any sessions, any order ------------------------------------------------------------------------

STATUSES = (None, "Success", "Warning", "Failed", "Running", "Queued", "Stopped", "Paused", "Disconnected")
"""Every status a session or job may carry: the known ones, one from a newer server, none."""
AGES = st.one_of(st.none(), st.integers(-3600, 5 * 86400))
"""Seconds before NOW (an hour in the future: clock skew), or no time at all."""


def before_now(seconds: int | None, *, naive: bool) -> dt.datetime | None:
    if seconds is None:
        return None
    moment = NOW - dt.timedelta(seconds=seconds)
    return moment.replace(tzinfo=None) if naive else moment


@st.composite
def session_rows(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Sessions as plain values, several created at the same moment or at none."""
    rows = []
    for number in range(draw(st.integers(0, 6))):
        created = draw(st.one_of(st.sampled_from([None, 0, 3600]), AGES))
        took = draw(st.one_of(st.none(), st.sampled_from([0, 60]), st.integers(0, 7200)))
        rows.append(
            {
                "id": f"s{number}",
                "job_id": draw(st.sampled_from(["job-1", None, "job-2"])),
                "created": created,
                "ended": None if created is None or took is None else created - took,
                "status": draw(st.sampled_from(STATUSES)),
                "retried": draw(st.sampled_from([None, True, False])),
            }
        )
    return rows


def sessions_of(rows: list[dict[str, Any]], *, naive: bool = False) -> list[JobSession]:
    return [
        JobSession(
            id=row["id"],
            job_id=row["job_id"],
            creation_time=before_now(row["created"], naive=naive),
            end_time=before_now(row["ended"], naive=naive),
            status=None if row["status"] is None else JobStatus(row["status"]),
            job_will_be_retried=row["retried"],
        )
        for row in rows
    ]


def verdict(health: JobHealth) -> tuple[Any, ...]:
    last, running = health.last_session, health.running
    return (
        health.state,
        health.reason,
        None if last is None else last.id,
        None if running is None else running.id,
        health.last_success,
    )


@PROPERTY
@given(
    rows=session_rows(),
    order=st.randoms(use_true_random=False),
    enabled=st.sampled_from([True, False, None]),
    last_status=st.sampled_from(STATUSES),
    last_run=AGES,
    last_backup=AGES,
    max_age=st.sampled_from([None, 3600, 26 * 3600]),
)
def test_the_verdict_depends_on_the_sessions_not_their_order_nor_their_zones(
    rows: list[dict[str, Any]],
    order: random.Random,
    enabled: bool | None,
    last_status: str | None,
    last_run: int | None,
    last_backup: int | None,
    max_age: int | None,
) -> None:
    """Sessions in any order (several created at the same moment, or at none), times with or
    without a zone: one verdict, the same last session and run in progress."""

    def job(*, naive: bool) -> Job:
        return make_job(
            is_enabled=enabled,
            last_status=None if last_status is None else JobStatus(last_status),
            last_run=before_now(last_run, naive=naive),
            last_backup=before_now(last_backup, naive=naive),
        )

    policy = {"max_age": None if max_age is None else dt.timedelta(seconds=max_age)}
    expected = verdict(check(job(naive=False), sessions_of(rows), **policy))
    shuffled = rows[:]
    order.shuffle(shuffled)
    assert verdict(check(job(naive=False), sessions_of(shuffled), **policy)) == expected
    assert verdict(check(job(naive=True), sessions_of(shuffled, naive=True), **policy)) == expected


SCHEDULES = st.one_of(
    st.none(),
    st.builds(
        SchedulePolicy,
        type=st.sampled_from([None, *ScheduleType, ScheduleType("Monthly")]),
        daily_type=st.sampled_from([None, *DailyType, DailyType("Holidays")]),
        schedule_enabled=st.sampled_from([None, True, False]),
        periodically_window_enabled=st.sampled_from([None, True, False]),
        periodically_window=st.one_of(st.none(), st.builds(window, st.lists(st.booleans(), max_size=170))),
    ),
)
"""Any schedule: every known type and day type, one of a newer server, none, switched off or not,
with a periodic window of any hours or none."""


@PROPERTY
@given(
    rows=session_rows(),
    enabled=st.sampled_from([True, False, None]),
    last_status=st.sampled_from(STATUSES),
    last_run=AGES,
    last_backup=AGES,
    schedule=SCHEDULES,
    max_age=st.one_of(
        st.none(), st.sampled_from([1, 3600, 26 * 3600, 3 * 86400]), st.integers(1, 10 * 86400)
    ),
    stale=st.sampled_from(list(HealthState)),
)
def test_schedule_aware_is_never_more_severe_than_max_age_alone(
    rows: list[dict[str, Any]],
    enabled: bool | None,
    last_status: str | None,
    last_run: int | None,
    last_backup: int | None,
    schedule: SchedulePolicy | None,
    max_age: int | None,
    stale: HealthState,
) -> None:
    """For the same job and sessions, ``schedule_aware=True`` never gives a more severe state;
    the last session, the run in progress and the last success are the same; a schedule that
    runs by itself on every day (or an unknown one) gives the verdict of ``max_age`` plus an
    hour for daylight saving."""
    job = make_job(
        is_enabled=enabled,
        last_status=None if last_status is None else JobStatus(last_status),
        last_run=before_now(last_run, naive=False),
        last_backup=before_now(last_backup, naive=False),
        schedule_policy=schedule,
    )
    policy = {"max_age": None if max_age is None else dt.timedelta(seconds=max_age), "stale": stale}
    plain = check(job, sessions_of(rows), **policy)
    scheduled = check(job, sessions_of(rows), schedule_aware=True, **policy)
    assert scheduled.state.severity <= plain.state.severity
    assert verdict(scheduled)[2:] == verdict(plain)[2:]
    by_hand = schedule is not None and (schedule.type == "ManualOnly" or schedule.schedule_enabled is False)
    some_days = (
        schedule is not None
        and schedule.type == "Daily"
        and schedule.daily_type not in (None, "Everyday", "Holidays")
    )
    windowed = (
        schedule is not None
        and schedule.type == "Periodically"
        and schedule.periodically_window_enabled is True
        and schedule.periodically_window is not None
    )
    if not by_hand and not some_days and not windowed:
        longer = {**policy, "max_age": None if max_age is None else dt.timedelta(seconds=max_age + 3600)}
        hour_more = check(job, sessions_of(rows), **longer)
        assert verdict(scheduled)[::2] == verdict(hour_more)[::2]
        assert verdict(scheduled)[1].partition(" (max ")[0] == verdict(hour_more)[1].partition(" (max ")[0]


# --- times and arguments -------------------------------------------------------------------------


def test_times_without_a_zone_are_utc_and_now_must_be_aware() -> None:
    start, end = dt.datetime(2026, 7, 1, 9), dt.datetime(2026, 7, 1, 9, 5)
    naive = JobSession(id="s", job_id="job-1", creation_time=start, end_time=end, status=JobStatus.SUCCESS)
    job = make_job(last_backup=dt.datetime(2026, 7, 1, 8))
    health = assess(job, [naive], now=NOW)
    assert health.last_success == dt.datetime(2026, 7, 1, 9, 5, tzinfo=dt.UTC)
    assert health.reason == "last run succeeded 2 h ago"
    other_zone = NOW.astimezone(dt.timezone(hours(-7)))
    assert assess(job, [naive], now=other_zone) == health
    with pytest.raises(ConfigError, match="aware"):
        assess(make_job(), [naive], now=dt.datetime(2026, 7, 1, 12))


BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(
    ("ended", "now", "max_age", "state"),
    [
        # Clocks go back on 2026-10-25: 12:00 CEST the day before to 13:30 CET is 26.5 h, not 25.5 h.
        (dt.datetime(2026, 10, 24, 12, 0), dt.datetime(2026, 10, 25, 13, 30), hours(26), CRITICAL),
        # Clocks go forward on 2026-03-29: 12:00 CET the day before to 13:30 CEST is 24.5 h, not 25.5 h.
        (dt.datetime(2026, 3, 28, 12, 0), dt.datetime(2026, 3, 29, 13, 30), hours(25), OK),
    ],
)
def test_ages_across_a_daylight_saving_change_are_real_hours(
    ended: dt.datetime, now: dt.datetime, max_age: dt.timedelta, state: HealthState
) -> None:
    """Times in a zone with daylight saving (a `ZoneInfo`, as a cache or a caller's
    ``datetime.now(zone)`` gives them) are judged by the instant, whatever zone ``now`` is in:
    Python subtracts datetimes sharing a tzinfo by their wall clock."""
    success = JobSession(
        id="s",
        job_id="job-1",
        creation_time=ended.replace(tzinfo=BERLIN) - dt.timedelta(minutes=10),
        end_time=ended.replace(tzinfo=BERLIN),
        status=JobStatus.SUCCESS,
    )
    policy = HealthPolicy(max_age=max_age)
    local = now.replace(tzinfo=BERLIN)
    in_utc = assess(make_job(), [success], policy=policy, now=local.astimezone(dt.UTC))
    in_berlin = assess(make_job(), [success], policy=policy, now=local)
    assert in_utc.state is state
    assert (in_berlin.state, in_berlin.reason) == (in_utc.state, in_utc.reason)


def test_the_newest_run_in_the_hour_a_clock_repeats_is_the_later_instant() -> None:
    """02:15 after the clocks went back (``fold=1``, 01:15 UTC) is later than 02:30 before it
    (00:30 UTC), for the last run as for the last success."""
    before = dt.datetime(2026, 10, 25, 2, 30, tzinfo=BERLIN)
    after = dt.datetime(2026, 10, 25, 2, 15, tzinfo=BERLIN, fold=1)
    failed = JobSession(
        id="a", job_id="job-1", creation_time=before, end_time=before, status=JobStatus.FAILED
    )
    succeeded = JobSession(
        id="b", job_id="job-1", creation_time=after, end_time=after, status=JobStatus.SUCCESS
    )
    now = dt.datetime(2026, 10, 25, 12, 0, tzinfo=dt.UTC)
    health = assess(make_job(), [failed, succeeded], now=now)
    assert health.last_session is succeeded
    assert health.state is OK
    backed_up = assess(make_job(last_backup=before + dt.timedelta(minutes=20)), [succeeded], now=now)
    assert backed_up.last_success is not None
    # (a time in the repeated hour never compares equal to one of another zone: the instants)
    assert backed_up.last_success.timestamp() == after.timestamp()


# --- "never": .NET's DateTime.MinValue (0001-01-01), and any time up to Unix time 0 ---------------------

NEVER = st.one_of(
    st.builds(
        lambda moment, minutes: dt.datetime.combine(
            dt.date(1, 1, 1), moment, tzinfo=dt.timezone(dt.timedelta(minutes=minutes))
        ),
        st.times(),
        st.integers(-14 * 60, 14 * 60),
    ),
    st.sampled_from(
        [
            dt.datetime(1, 1, 1),
            dt.datetime(1601, 1, 1, tzinfo=dt.UTC),
            dt.datetime(1900, 1, 1),
            dt.datetime(1970, 1, 1, tzinfo=dt.UTC),
            dt.datetime(1970, 1, 1, 2, tzinfo=dt.timezone(dt.timedelta(hours=2))),
        ]
    ),
    st.datetimes(max_value=dt.datetime(1969, 12, 31), timezones=st.just(dt.UTC)),
)
"""Times a server writes for one that never was (a job never backed up): .NET's DateTime.MinValue
(in UTC, in the server's offset, or converted from it), Windows' FILETIME zero (1601), SQL
Server's (1900), Unix time 0; no backup server ran before 1970."""

FAR_END = st.one_of(
    st.builds(
        lambda moment, minutes: dt.datetime.combine(
            dt.date(9999, 12, 31), moment, tzinfo=dt.timezone(dt.timedelta(minutes=minutes))
        ),
        st.times(),
        st.integers(-14 * 60, 14 * 60),
    ),
    st.sampled_from(
        [
            dt.datetime(9999, 12, 31, 23, 59, 59, 999999),
            dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC),
            dt.datetime(9999, 1, 1, tzinfo=dt.UTC),
            dt.datetime.max,
        ]
    ),
)
"""Times a server writes for one that never will be (a job with no next run): .NET's
DateTime.MaxValue (9999-12-31T23:59:59.9999999, in UTC, in the server's offset or without a
zone), and any time in the calendar's last year."""


@PROPERTY
@given(never=NEVER | FAR_END)
def test_the_net_never_is_no_time(never: dt.datetime) -> None:
    """0001-01-01 is no last success, no last run and no session time: a job whose lastBackup
    says it was never backed up, with warnings 5 h ago, was CRITICAL 'no success for 739797
    days'; a job whose lastRun says it never ran was stale instead of never run; a success
    dated then was the last success."""
    warned = run("Warning", 5)
    health = check(make_job(last_backup=never, last_run=NOW - hours(5)), [warned])
    assert (health.state, health.reason, health.last_success) == (
        WARNING,
        "last run ended with warnings 4 h ago",
        None,
    )
    never_ran = check(make_job(last_run=never))
    assert (never_ran.state, never_ran.reason) == (WARNING, "never run")
    dated_never = JobSession(
        id="n", job_id="job-1", creation_time=never, end_time=never, status=JobStatus.SUCCESS
    )
    both = check(make_job(), [dated_never, warned])
    assert (both.state, both.last_success, both.last_session) == (WARNING, None, warned)
    said_success = check(make_job(last_run=never, last_status=JobStatus.SUCCESS), [warned])
    assert (said_success.state, said_success.last_success) == (WARNING, None)


@PROPERTY
@given(
    never=NEVER | FAR_END,
    last_status=st.sampled_from(STATUSES),
    max_age=st.sampled_from([None, hours(26)]),
)
def test_a_last_run_that_never_was_is_judged_as_no_last_run(
    never: dt.datetime, last_status: str | None, max_age: dt.timedelta | None
) -> None:
    """A lastRun of never (0001-01-01) with a lastStatus and no sessions is judged as no lastRun
    at all ("never run"), as `assess` says of such a time: a job that never ran whose server
    said lastStatus Success was OK 'last run succeeded at an unknown time' (and never stale), one
    saying Failed CRITICAL 'failed at an unknown time', NotConfigured UNKNOWN."""
    status = None if last_status is None else JobStatus(last_status)
    policy = HealthPolicy(max_age=max_age)
    dated = assess(make_job(last_run=never, last_status=status), (), policy=policy, now=NOW)
    undated = assess(make_job(last_run=None, last_status=status), (), policy=policy, now=NOW)
    assert (dated.state, dated.reason, dated.last_success) == (
        undated.state,
        undated.reason,
        undated.last_success,
    )


@pytest.mark.parametrize(
    ("moment", "never"),
    [
        (dt.datetime(9999, 12, 31, 23, 59, 59, 999999), True),
        (dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.timezone(dt.timedelta(hours=-5))), True),
        (dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.timezone(dt.timedelta(hours=14))), True),
        (dt.datetime(9999, 1, 1, tzinfo=dt.UTC), True),
        (dt.datetime(9998, 12, 31, 23, 59, 59, tzinfo=dt.UTC), False),
        (dt.datetime(2099, 1, 1, tzinfo=dt.UTC), False),
        (dt.datetime(1970, 1, 1, 0, 0, 1, tzinfo=dt.UTC), False),
        (dt.datetime(1970, 1, 1, tzinfo=dt.UTC), True),
    ],
)
def test_the_calendar_s_last_year_is_no_time_as_its_first_ones_are(moment: dt.datetime, never: bool) -> None:
    """.NET's DateTime.MaxValue (9999-12-31T23:59:59.9999999), which servers send as the next run
    of a job that has none, was a date: the table showed it, ``--json`` wrote it and the
    exporter sampled it (253402300800 s). Any time in the year 9999 (as written, in any offset)
    is no time, as any up to 1970 is; the years between are real times."""
    assert is_never(moment) is never


# --- a server's clock ahead of this one ------------------------------------------------------------

BEYOND = st.one_of(
    st.integers(24 * 3600 + 1, 10**9).map(lambda seconds: NOW + dt.timedelta(seconds=seconds)),
    st.sampled_from(
        [
            dt.datetime(2099, 1, 1, tzinfo=dt.UTC),
            dt.datetime(9998, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC),
            dt.datetime(9998, 12, 31, 23, 0, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
        ]
    ),
)
"""Times more than a day ahead of NOW: a clock set wrong for a while (.NET's MaxValue, in the year
9999, is no time at all: `FAR_END`)."""


@PROPERTY
@given(
    rows=session_rows(), ahead=BEYOND, status=st.sampled_from(STATUSES), last_status=st.sampled_from(STATUSES)
)
def test_a_session_dated_beyond_a_day_ahead_is_not_the_newest_run(
    rows: list[dict[str, Any]], ahead: dt.datetime, status: str | None, last_status: str | None
) -> None:
    """A session created more than a day after ``now`` (a server whose clock was once set years
    ahead) was the newest run for as long as it stayed in the future: a success
    dated 2099 hid every real failure after it (OK, "succeeded just now") and a failure so dated
    every real success. Where the job has a run dated within reason it decides, as if the one
    ahead were not there; that one's success is no last success either."""
    job = make_job(
        last_status=None if last_status is None else JobStatus(last_status), last_run=NOW - hours(2)
    )
    sessions = sessions_of(rows)
    bogus = JobSession(
        id="ahead",
        job_id="job-1",
        creation_time=ahead,
        end_time=None if status in ("Running", "Queued") else ahead,
        status=None if status is None else JobStatus(status),
    )
    plain = check(job, sessions)
    with_bogus = check(job, [bogus, *sessions])
    if any(
        s.job_id in ("job-1", None) and s.status not in ("Running", "Queued", "Stopped") for s in sessions
    ):
        assert verdict(with_bogus) == verdict(plain)
    assert with_bogus.last_success == plain.last_success


def test_a_run_dated_ahead_within_a_day_is_the_newest_and_beyond_that_says_so() -> None:
    """Within a day ahead (a clock a few hours fast, a zone-less local time of a server east of
    UTC read as UTC) a run is taken as it is dated; a run further ahead, the only one known, is
    still the last result, said with its date, and no success time."""
    fast = JobSession(
        id="fast",
        job_id="job-1",
        creation_time=NOW + hours(10),
        end_time=NOW + hours(10.5),
        status=JobStatus.SUCCESS,
    )
    failed = run("Failed", 3)
    health = check(make_job(), [failed, fast])
    assert (health.state, health.reason, health.last_session, health.last_success) == (
        OK,
        "last run succeeded just now",
        fast,
        NOW + hours(10.5),
    )
    far = attrs.evolve(fast, creation_time=NOW + hours(25), end_time=NOW + hours(25.5))
    health = check(make_job(), [failed, far])
    assert (health.state, health.reason, health.last_session) == (CRITICAL, "failed 2 h ago", failed)
    alone = check(make_job(), [far])
    assert (alone.state, alone.reason, alone.last_session, alone.last_success) == (
        OK,
        "last run succeeded at 2026-07-02 13:30+00:00, ahead of this clock",
        far,
        None,
    )


def test_now_defaults_to_the_current_time() -> None:
    recent = JobSession(id="s", creation_time=dt.datetime.now(dt.UTC) - hours(1), status=JobStatus.SUCCESS)
    health = assess(make_job(), [recent])
    assert (health.state, health.reason) == (OK, "last run succeeded 1 h ago")


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        (("job-1", []), {}, "Job"),
        ((make_job(), None), {}, "iterable"),
        ((make_job(), run("Success", 1)), {}, "iterable"),
        ((make_job(), [{"id": "s"}]), {}, "JobSession"),
        ((make_job(), []), {"policy": {"failed": OK}}, "HealthPolicy"),
        ((make_job(), []), {"now": "2026-07-01T12:00:00Z"}, "aware"),
        # Models built by hand (from a cache of one's own) with values of the wrong type.
        (
            (make_job(last_run="2026-07-01T12:00:00Z"), []),
            {},
            r"job\.last_run must be a datetime or None, got str",
        ),
        ((make_job(last_backup=1782907200), []), {}, r"job\.last_backup must be a datetime or None, got int"),
        (
            (make_job(), [JobSession(id="s", creation_time="2026-07-01T12:00:00Z")]),
            {},
            r"session 's'\.creation_time must be a datetime or None, got str",
        ),
        (
            (
                make_job(),
                [run("Failed", 1), JobSession(id="s", end_time=dt.date(2026, 7, 1), creation_time=NOW)],
            ),
            {},
            r"session 's'\.end_time must be a datetime or None, got date",
        ),
        (
            (make_job(), [JobSession(id="s", status=["Failed"], creation_time=NOW)]),
            {},
            r"session 's'\.status must be a JobStatus, a string or None, got list",
        ),
        # Ids of other types, compared where two sessions share their times: a bare TypeError.
        (
            (
                make_job(),
                [
                    JobSession(id=None, creation_time=NOW, end_time=NOW, status="Success"),  # type: ignore[arg-type]
                    JobSession(id="b", creation_time=NOW, end_time=NOW, status="Failed"),
                ],
            ),
            {},
            r"^session None\.id must be a string, got NoneType$",
        ),
        (
            (
                make_job(),
                [
                    JobSession(id="b", creation_time=NOW, end_time=NOW, status="Failed"),
                    JobSession(id=7, creation_time=NOW, end_time=NOW, status="Success"),  # type: ignore[arg-type]
                ],
            ),
            {},
            r"^session 7\.id must be a string, got int$",
        ),
    ],
)
def test_bad_arguments_are_config_errors(args: tuple[Any, ...], kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        assess(*args, **kwargs)


# --- job_health against the simulator ---------------------------------------------------------------


class FakeClock:
    """The simulator's clock, moved by hand (runs started here stay running until moved on)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def simulator(clock: FakeClock) -> Simulator:
    # At most 25 sessions per job: a whole history fits in v1's one answer (the simulator pages it
    # at 30, as a v1 server that pages would) and in v6's page of 50.
    config = SimulatorConfig(
        seed=21,
        organizations=4,
        jobs_per_organization=(3, 5),
        sessions_per_job=(1, 25),
        epoch=NOW,
        password=PASSWORD,
    )
    return Simulator(config, clock=clock)


@pytest.fixture(params=VERSIONS)
def version(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def vbo(simulator: Simulator, version: str) -> AsyncIterator[VBOClient]:
    transport = httpx.ASGITransport(app=create_app(simulator=simulator))
    async with VBOClient(
        "https://vbo.test", username="admin", password=PASSWORD, api_version=version, transport=transport
    ) as client:
        yield client


class Counted:
    """The API requests (token requests left out) the simulator saw since `start`."""

    def __init__(self, simulator: Simulator) -> None:
        self._simulator = simulator
        self._before: dict[tuple[str, str], int] = {}

    def start(self) -> None:
        self._before = dict(self._simulator.stats.by_endpoint)

    def requests(self) -> list[tuple[str, str]]:
        seen = []
        for key, count in self._simulator.stats.by_endpoint.items():
            if not key[1].endswith("/token"):
                seen += [key] * (count - self._before.get(key, 0))
        return seen


@pytest.fixture
def counted(simulator: Simulator) -> Counted:
    return Counted(simulator)


def sessions_path(version: str, job_id: str) -> tuple[str, str]:
    if version in ("v7", "v8"):
        return ("GET", f"/{version}/jobsessions")
    return ("GET", f"/{version}/jobs/{job_id.lower()}/jobsessions")


async def test_job_health_agrees_with_the_whole_history_at_one_request_per_job(
    vbo: VBOClient, simulator: Simulator, counted: Counted, version: str
) -> None:
    jobs = await vbo.jobs()
    histories = {job.id: await vbo.job_sessions(job, limit=None) for job in jobs}
    assert any(histories.values())
    states = set()
    for job in jobs:
        counted.start()
        health = await vbo.job_health(job, now=NOW)
        assert counted.requests() == [sessions_path(version, job.id)], job.name
        expected = assess(job, histories[job.id], now=NOW)
        assert health == expected
        states.add(health.state)
    assert {OK, CRITICAL} <= states


@pytest.mark.parametrize("stops", [5, 60])
async def test_a_page_of_stops_costs_one_more_request_on_v7_plus_and_never_the_history(
    vbo: VBOClient, simulator: Simulator, clock: FakeClock, counted: Counted, version: str, stops: int
) -> None:
    """The newest runs stopped by the user and one running: v7+ read a second, larger page (5
    then 50 sessions) and stop there even when 60 stops fill it; v6 one page of 50; v1 its one
    answer (the simulator's first page of 30)."""
    job_id = next(j.id for j in await vbo.jobs() if j.is_enabled and j.last_status == JobStatus.SUCCESS)
    for _ in range(stops):
        simulator.job_action(job_id, "start")
        clock.now += 1
        simulator.job_action(job_id, "stop")
        clock.now += 1
    simulator.job_action(job_id, "start")
    job = await vbo.job(job_id)
    assert job.last_status == JobStatus.RUNNING
    counted.start()
    health = await vbo.job_health(job, now=NOW)
    requests = counted.requests()
    assert requests == [sessions_path(version, job_id)] * {"v1": 1, "v6": 1, "v7": 2, "v8": 2}[version]
    assert health.running is not None
    assert health.running.status == JobStatus.RUNNING
    if stops == 5:
        assert health.last_session is not None
        assert health.last_session.status == JobStatus.SUCCESS
        assert health.state is not WARNING
    elif version in ("v1", "v6"):  # only stops and a run read, and no lastBackup on these jobs
        read = {"v1": 30, "v6": 50}[version]
        assert health.last_session is None
        assert (health.state, health.reason) == (WARNING, f"no finished run among the last {read} sessions")
    else:  # the job's lastBackup still gives the last success
        assert health.last_session is None
        assert health.last_success == job.last_backup
        assert health.reason.startswith(("last success", "no success for"))


async def test_a_running_job_keeps_its_last_failure(vbo: VBOClient, simulator: Simulator) -> None:
    failed = [j for j in await vbo.jobs() if j.is_enabled and j.last_status == JobStatus.FAILED]
    assert failed
    simulator.job_action(failed[0].id, "start")
    job = await vbo.job(failed[0].id)
    assert job.last_status == JobStatus.RUNNING
    health = await vbo.job_health(job, now=NOW)
    assert health.state is CRITICAL
    assert health.reason.startswith("failed ")
    assert health.last_session is not None
    assert health.last_session.status == JobStatus.FAILED
    assert health.running is not None
    assert health.running.job_id == job.id


async def test_a_disabled_and_a_never_run_job(vbo: VBOClient, simulator: Simulator) -> None:
    jobs = await vbo.jobs()
    disabled = next(j for j in jobs if j.is_enabled is False)
    health = await vbo.job_health(disabled, now=NOW)
    assert (health.state, health.reason) == (OK, "disabled")
    never = [j for j in jobs if j.is_enabled and j.last_run is None]
    for job in never:
        health = await vbo.job_health(job, now=NOW)
        assert (health.state, health.reason) == (WARNING, "never run")


async def test_a_server_wide_session_list_feeds_assess_as_well(simulator: Simulator) -> None:
    """The seam for a batched sweep: one list of every job's sessions, and `assess` per job."""
    transport = httpx.ASGITransport(app=create_app(simulator=simulator))
    async with VBOClient(
        "https://vbo.test", username="admin", password=PASSWORD, api_version="v8", transport=transport
    ) as vbo:
        jobs = await vbo.jobs()
        wire = simulator.sessions_wire(version="v8", limit=10_000)["results"]
        everything = [vbo.from_wire(session, JobSession) for session in wire]
        for job in jobs:
            assert assess(job, everything, now=NOW) == await vbo.job_health(job, now=NOW)


class FailingSessions(httpx.AsyncBaseTransport):
    """The simulator, except that every sessions request answers 500."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if "jobsessions" in request.url.path.lower():
            return httpx.Response(500, json={"message": "The database is unavailable."})
        return await self.inner.handle_async_request(request)


async def test_an_error_while_reading_sessions_is_unknown_not_an_exception(
    simulator: Simulator, version: str
) -> None:
    transport = FailingSessions(httpx.ASGITransport(app=create_app(simulator=simulator)))
    async with VBOClient(
        "https://vbo.test", username="admin", password=PASSWORD, api_version=version, transport=transport
    ) as vbo:
        job = next(j for j in await vbo.jobs() if j.is_enabled)
        health = await vbo.job_health(job, now=NOW)
    assert health.state is UNKNOWN
    assert health.reason.startswith("sessions could not be read: HTTP 500: The database is unavailable.")
    assert PASSWORD not in health.reason
    assert "Bearer" not in health.reason
    assert (health.last_session, health.running) == (None, None)


async def test_job_health_policy_and_arguments(vbo: VBOClient) -> None:
    job = next(j for j in await vbo.jobs() if j.is_enabled and j.last_status == JobStatus.FAILED)
    lenient = HealthPolicy(failed=WARNING, stale=WARNING)
    assert (await vbo.job_health(job, policy=lenient, now=NOW)).state is WARNING
    sent = vbo.requests_sent
    with pytest.raises(ConfigError, match="Job"):
        await vbo.job_health(job.id, now=NOW)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="HealthPolicy"):
        await vbo.job_health(job, policy=WARNING, now=NOW)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="aware"):
        await vbo.job_health(job, now=dt.datetime(2026, 7, 1))
    assert vbo.requests_sent == sent  # refused before any request


@pytest.mark.parametrize("bad_id", ["a/b", "..", " j1"])
async def test_job_health_of_a_job_whose_server_id_cannot_be_asked_for_is_unknown(
    vbo: VBOClient, bad_id: str
) -> None:
    """A job the server lists with an id no URL segment can carry: `job_health` raised
    `ConfigError`, which an embedding backend maps to its caller's mistake (a 400, the tenant's
    other jobs lost with it), while a sweep judges that job UNKNOWN. It is UNKNOWN here too,
    without a request."""
    job = attrs.evolve(next(iter(await vbo.jobs())), id=bad_id)
    sent = vbo.requests_sent
    health = await vbo.job_health(job, now=NOW)
    assert health.state is HealthState.UNKNOWN
    assert "job.id" in health.reason
    assert vbo.requests_sent == sent


# --- hand-written v8 and v6 answers -------------------------------------------------------------------

JOB_ID = "5f0c8a2e-1b7d-4c3a-9e61-2d4b8f7a9c10"


def v8_session(session_id: str, status: str, created: str, ended: str | None, **extra: Any) -> dict[str, Any]:
    return {
        "id": session_id,
        "jobId": JOB_ID,
        "creationTime": created,
        "endTime": ended,
        "retryCount": 0,
        "jobWillBeRetried": False,
        "status": status,
        "_links": {"self": {"href": f"/v8/JobSessions/{session_id}"}, "job": {"href": f"/v8/Jobs/{JOB_ID}"}},
        **extra,
    }


def serving(version: str, routes: dict[str, Any], seen: list[str]) -> httpx.MockTransport:
    """A vN server: a token for anyone, ``routes`` (path with query -> JSON), else 404."""

    def handle(request: httpx.Request) -> httpx.Response:
        path = request.url.raw_path.decode()
        if path.lower() == f"/{version}/token":
            token = {"access_token": "at", "refresh_token": "rt", "expires_in": 3600, "token_type": "bearer"}
            return httpx.Response(200, json=token)
        seen.append(path)
        if path not in routes:
            return httpx.Response(404, json={"message": f"no route {path}"})
        return httpx.Response(200, json=routes[path])

    return httpx.MockTransport(handle)


async def test_a_v8_retry_in_progress_from_the_wire() -> None:
    failed = v8_session("c41d7e90-0000-4f6c-8d1e-3b9a0f7e2c55", "Failed", "2026-07-01T10:00:00Z",
                        "2026-07-01T10:40:00.1234567Z", jobWillBeRetried=True)  # fmt: skip
    retry = v8_session("c41d7e90-0001-4f6c-8d1e-3b9a0f7e2c55", "Running", "2026-07-01T10:50:00Z", None,
                       retryCount=1, mainSessionId=failed["id"])  # fmt: skip
    job_wire = {
        "id": JOB_ID,
        "name": "Contoso - Exchange daily",
        "isEnabled": True,
        "lastStatus": "Running",
        "lastRun": "2026-07-01T10:50:00Z",
        "lastBackup": "2026-06-30T22:41:17.118902Z",
    }
    page = {"offset": 0, "limit": 5, "results": [retry, failed], "_links": {}}
    seen: list[str] = []
    routes = {f"/v8/JobSessions?jobId={JOB_ID}&limit=5": page}
    async with VBOClient(
        "https://vbo.test",
        username="svc",
        password=PASSWORD,
        api_version="v8",
        transport=serving("v8", routes, seen),
    ) as vbo:
        job = vbo.from_wire(job_wire, Job)
        health = await vbo.job_health(job, now=NOW)
        assert seen == [f"/v8/JobSessions?jobId={JOB_ID}&limit=5"]
    assert (health.state, health.reason) == (WARNING, "failed 1 h ago, will be retried")
    assert health.last_session is not None
    assert health.last_session.id == failed["id"]
    assert health.running is not None
    assert (health.running.retry_count, health.running.main_session_id) == (1, failed["id"])
    assert health.last_success == dt.datetime(2026, 6, 30, 22, 41, 17, 118902, tzinfo=dt.UTC)


async def test_a_v6_failure_from_the_wire_is_critical() -> None:
    """v6 sessions know no ``jobWillBeRetried`` and v6 jobs no ``lastBackup``."""
    session = {
        "id": "9d0e1f2a-3b4c-4d5e-8f6a-7b8c9d0e1f2a",
        "creationTime": "2026-07-01T06:00:00.000000Z",
        "endTime": "2026-07-01T06:20:00.000000Z",
        "status": "Failed",
        "_links": {"job": {"href": f"/v6/Jobs/{JOB_ID}"}},
    }
    success = {**session, "id": "success", "status": "Success", "creationTime": "2026-06-30T22:00:00Z",
               "endTime": "2026-06-30T22:30:00Z"}  # fmt: skip
    page = {"offset": 0, "limit": 50, "results": [session, success], "_links": {}}
    seen: list[str] = []
    routes = {f"/v6/Jobs/{JOB_ID}/JobSessions?limit=50": page}
    async with VBOClient(
        "https://vbo.test",
        username="svc",
        password=PASSWORD,
        api_version="v6",
        transport=serving("v6", routes, seen),
    ) as vbo:
        job = vbo.from_wire({"id": JOB_ID, "isEnabled": True, "lastStatus": "Failed"}, Job)
        health = await vbo.job_health(job, now=NOW)
    assert seen == [f"/v6/Jobs/{JOB_ID}/JobSessions?limit=50"]
    assert (health.state, health.reason) == (CRITICAL, "failed 5 h ago")
    assert health.last_success == dt.datetime(2026, 6, 30, 22, 30, tzinfo=dt.UTC)
    assert health.last_session is not None
    assert health.last_session.job_id == JOB_ID


async def test_sessions_naming_the_job_in_another_case_are_its_own() -> None:
    """Ids are compared ignoring case everywhere else (`job_sessions` keeps these sessions as
    the job's): a server naming the job in upper case in its sessions and in lower case in its
    listing must not have the failure `job_health` read judged away."""
    failed = v8_session("c41d7e90-0000-4f6c-8d1e-3b9a0f7e2c55", "Failed", "2026-07-01T10:00:00Z",
                        "2026-07-01T10:40:00Z", jobId=JOB_ID.upper())  # fmt: skip
    job_wire = {"id": JOB_ID, "isEnabled": True, "lastStatus": "Running", "lastRun": "2026-07-01T11:00:00Z",
                "lastBackup": "2026-07-01T02:00:00Z"}  # fmt: skip
    routes = {f"/v8/JobSessions?jobId={JOB_ID}&limit=5": {"offset": 0, "limit": 5, "results": [failed]}}
    seen: list[str] = []
    async with VBOClient(
        "https://vbo.test",
        username="svc",
        password=PASSWORD,
        api_version="v8",
        transport=serving("v8", routes, seen),
    ) as vbo:
        job = vbo.from_wire(job_wire, Job)
        health = await vbo.job_health(job, now=NOW)
    assert (health.state, health.reason) == (CRITICAL, "failed 1 h ago")
    assert health.last_session is not None
    assert health.last_session.id == failed["id"]
    sessions = [run("Failed", 2, job_id="JOB-1"), run("Success", 1, job_id="other-job")]
    assert check(make_job(), sessions).reason == "failed 1 h ago"
    # A hand-built session whose job id is no string is another job's, as before: no AttributeError.
    assert check(make_job(), [attrs.evolve(sessions[0], job_id=5)]).reason == "never run"


SUCCEEDED, STALE_60 = (
    "last run succeeded 2 days ago",
    "no success for 60 h (max 26 h + 1 h for daylight saving)",
)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    ("schedule", "state", "reason"),
    [
        ({"type": "Daily", "dailyType": "Workdays", "dailyTime": "22:00:00"}, OK, SUCCEEDED),
        ({"type": "Daily", "dailyType": "Everyday", "dailyTime": "22:00:00"}, CRITICAL, STALE_60),
        ({"type": "Daily", "dailyType": "Thursday"}, OK, SUCCEEDED),
        ({"type": "ManualOnly"}, OK, SUCCEEDED),
        ({"type": "Daily", "dailyType": "Everyday", "scheduleEnabled": False}, OK, SUCCEEDED),
        ({"type": "Periodically", "periodicallyEvery": "Hours1"}, CRITICAL, STALE_60),
    ],
)  # fmt: skip
async def test_schedules_from_the_wire_of_every_version(
    version: str, schedule: dict[str, Any], state: HealthState, reason: str
) -> None:
    """The same schedule read from each version's wire: v1 writes booleans as strings."""
    wire_schedule = dict(schedule)
    if version == "v1" and "scheduleEnabled" in wire_schedule:
        wire_schedule["scheduleEnabled"] = "false"
    wire = {
        "id": JOB_ID,
        "isEnabled": "true" if version == "v1" else True,
        "lastStatus": "Success",
        "lastRun": "2026-06-28T23:40:00Z",
        "schedulePolicy": wire_schedule,
    }
    async with VBOClient(
        "https://vbo.test",
        username="svc",
        password=PASSWORD,
        api_version=version,
        transport=serving(version, {}, []),
    ) as vbo:
        job = vbo.from_wire(wire, Job)
    assert job.schedule_policy is not None
    if "scheduleEnabled" in schedule:
        assert job.schedule_policy.schedule_enabled is False
    health = assess(job, policy=HealthPolicy(schedule_aware=True), now=NOW)
    assert (health.state, health.reason) == (state, reason)
    assert assess(job, now=NOW).state is CRITICAL  # the default: max_age alone


@pytest.mark.parametrize(
    ("version", "state", "reason"), [("v6", CRITICAL, STALE_60), ("v7", OK, SUCCEEDED), ("v8", OK, SUCCEEDED)]
)
async def test_a_periodic_window_from_the_wire_counts_where_the_server_switches_it_on(
    version: str, state: HealthState, reason: str
) -> None:
    """v7+ ``periodicallyWindowEnabled`` with ``periodicallyWindowSettings`` closed Friday 18:00
    to Monday 08:00: a last success 60 h ago is within 26 h + 62 h + 1 h. v6 has no switch: its
    window is not known to be in force, and ``max_age`` (plus the hour) decides."""
    policy: dict[str, Any] = {
        "type": "Periodically",
        "periodicallyEvery": "Hours1",
        "scheduleEnabled": True,
        "periodicallyWindowSettings": {"backupWindow": WEEKDAYS_8_TO_18, "minuteOffset": 120},
    }
    if version != "v6":
        policy["periodicallyWindowEnabled"] = True
    wire = {"id": JOB_ID, "isEnabled": True, "lastStatus": "Success", "lastRun": "2026-06-28T23:40:00Z",
            "schedulePolicy": policy}  # fmt: skip
    async with VBOClient(
        "https://vbo.test",
        username="svc",
        password=PASSWORD,
        api_version=version,
        transport=serving(version, {}, []),
    ) as vbo:
        job = vbo.from_wire(wire, Job)
    assert job.schedule_policy is not None
    assert job.schedule_policy.periodically_window is not None
    health = assess(job, policy=HealthPolicy(schedule_aware=True), now=NOW)
    assert (health.state, health.reason) == (state, reason)
    assert assess(job, now=NOW).state is CRITICAL  # the default: max_age alone


@PROPERTY
@given(rows=session_rows(), ahead=st.lists(st.integers(0, 6), max_size=3), naive=st.booleans())
def test_assess_orders_sessions_as_newest_first_with_those_dated_ahead_last(
    rows: list[dict[str, Any]], ahead: list[int], naive: bool
) -> None:
    """`assess`'s written-out sort key (`_health._ranked`) orders sessions as `newest_first`
    does, except that those created more than `CLOCK_SKEW` ahead come after every other (newest
    first among themselves): a fast path that must not disagree with the plain one."""
    from vbo_async._health import CLOCK_SKEW, _horizon, _ranked, newest_first

    sessions = sessions_of(rows, naive=naive)
    for number in ahead:  # some of them dated ahead, beyond the skew a clock may have
        if number < len(sessions):
            moment = NOW + CLOCK_SKEW + dt.timedelta(days=number + 1, seconds=number)
            sessions[number] = attrs.evolve(sessions[number], creation_time=moment, end_time=None)
    horizon = _horizon(NOW)
    plain = sorted(sessions, key=newest_first)
    within = [
        s for s in plain if s.creation_time is None or s.creation_time.replace(tzinfo=dt.UTC) <= horizon
    ]
    beyond = [s for s in plain if s not in within]
    dated, undated = (
        [s for s in within if s.creation_time is not None],
        [s for s in within if s.creation_time is None],
    )
    assert sorted(sessions, key=_ranked(horizon)) == dated + undated + beyond


@pytest.mark.parametrize("zone", ["", "Z", "+02:00"])
async def test_times_without_an_offset_are_read_as_utc_and_said_so(zone: str) -> None:
    """A server that writes its times without an offset (its local time, perhaps) has them read
    as UTC, the zone being unknown; the verdict says so (``unzoned``, and its reason), for a
    server west of UTC would look hours staler than it is, one east of it hours fresher. Times
    with a ``Z`` or an offset are what they say, and nothing is added."""
    ended = f"2026-07-01T09:40:00{zone}"
    success = v8_session(
        "c41d7e90-0000-4f6c-8d1e-3b9a0f7e2c55", "Success", f"2026-07-01T09:00:00{zone}", ended
    )
    job_wire = {"id": JOB_ID, "name": "Mail", "isEnabled": True, "lastStatus": "Success",
                "lastRun": success["creationTime"], "lastBackup": ended}  # fmt: skip
    routes = {f"/v8/JobSessions?jobId={JOB_ID}&limit=5": {"offset": 0, "limit": 5, "results": [success]}}
    async with VBOClient(
        "https://vbo.test", username="svc", password=PASSWORD, api_version="v8",
        transport=serving("v8", routes, []),
    ) as vbo:  # fmt: skip
        job = vbo.from_wire(job_wire, Job)
        health = await vbo.job_health(job, now=NOW)
        unlisted = assess(job, (), now=NOW)
    ago = "4 h ago" if zone == "+02:00" else "2 h ago"
    if zone:
        assert (health.state, health.reason, health.unzoned) == (OK, f"last run succeeded {ago}", False)
        assert not unlisted.unzoned
    else:
        said = f"last run succeeded {ago} (times without an offset, read as UTC)"
        assert (health.state, health.reason, health.unzoned) == (OK, said, True)
        assert unlisted.unzoned
        assert job.last_backup == dt.datetime(2026, 7, 1, 9, 40, tzinfo=dt.UTC)  # the same instant


def test_a_time_without_an_offset_stays_marked_through_pickle_and_copy() -> None:
    """A job pickled (a cache, another process) or copied is judged as the one decoded was."""
    job = make_job(last_status=JobStatus.SUCCESS, last_run=NOW.replace(tzinfo=UNZONED) - hours(3))
    for again in (pickle.loads(pickle.dumps(job)), copy.deepcopy(job)):
        assert again == job
        health = assess(again, (), now=NOW)
        assert health.unzoned
        assert health.reason == "last run succeeded 3 h ago (times without an offset, read as UTC)"


def test_a_daylight_saving_night_uses_an_hour_of_max_ages_slack() -> None:
    """As docs/monitoring.md says: a daily job at 22:00 server time in Europe/Berlin runs 25 hours
    after the night before when the clocks go back (October's last Sunday), so the default
    26 h leaves its run that night one hour more than the night before's, not two; the job is
    CRITICAL once it has run longer, until it ends, and `--max-age 27h` takes that night. Ages
    are differences of instants: a local wall clock's change moves no age."""
    saturday = dt.datetime(2026, 10, 24, 22, 0, tzinfo=BERLIN)  # 20:00 UTC (CEST)
    sunday = dt.datetime(2026, 10, 25, 22, 0, tzinfo=BERLIN)  # 21:00 UTC (CET)
    assert sunday.astimezone(dt.UTC) - saturday.astimezone(dt.UTC) == hours(25)
    before = JobSession(id="sat", job_id="job-1", status=JobStatus.SUCCESS, creation_time=saturday,
                        end_time=saturday + dt.timedelta(minutes=30))  # fmt: skip
    running = JobSession(id="sun", job_id="job-1", status=JobStatus.RUNNING, creation_time=sunday)
    job = make_job(last_status=JobStatus.RUNNING)

    def judged(into_the_run: dt.timedelta, max_age: float = 26) -> JobHealth:
        at = (sunday.astimezone(dt.UTC) + into_the_run).astimezone(BERLIN)
        return assess(job, [running, before], policy=HealthPolicy(max_age=hours(max_age)), now=at)

    assert judged(dt.timedelta(minutes=90)).state is OK  # 1 h longer than the night before: 26 h
    late = judged(dt.timedelta(minutes=91))
    assert (late.state, late.reason) == (CRITICAL, "no success for 26 h 1 min (max 26 h)")
    assert judged(dt.timedelta(minutes=150), max_age=27).state is OK
    # schedule_aware follows the schedule, the server's local one: it gives that night its hour.
    at = sunday.astimezone(dt.UTC) + dt.timedelta(minutes=150)
    aware_policy = HealthPolicy(schedule_aware=True)
    assert assess(job, [running, before], policy=aware_policy, now=at).state is OK
    later = assess(job, [running, before], policy=aware_policy, now=at + dt.timedelta(minutes=1))
    assert (later.state, later.reason) == (
        CRITICAL,
        "no success for 27 h 1 min (max 26 h + 1 h for daylight saving)",
    )


# --- models built by hand, and lists merged by hand ---------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"is_enabled": "false"}, "job.is_enabled must be a bool or None, got str"),
        ({"last_status": 5}, "job.last_status must be a JobStatus, a string or None, got int"),
    ],
)
def test_a_job_built_by_hand_with_a_flag_or_status_of_another_type_is_refused(
    fields: dict[str, Any], named: str
) -> None:
    """``is_enabled="false"`` is truthy: the job was judged enabled ("failed just now"), and
    ``last_status=5`` "ended with status 5"."""
    with pytest.raises(ConfigError, match=re.escape(named)):
        check(make_job(**{"last_status": JobStatus.FAILED, "last_run": NOW, **fields}))


def test_a_run_listed_twice_counts_once_as_the_copy_furthest_along_in_any_order() -> None:
    """A list merged from two readings holds one run twice: its copy left running made it the
    run in progress (its failure "will be retried" for ever), and copies differing only in
    status were judged by whichever came first."""
    failed = run("Failed", 4, will_retry=True)
    running = attrs.evolve(failed, status=JobStatus.RUNNING, end_time=None, id=failed.id.upper())
    job = make_job(last_status=JobStatus.FAILED, last_run=failed.creation_time)
    alone = check(job, [failed])
    for sessions in ([running, failed], [failed, running]):
        merged = check(job, sessions)
        assert (merged.state, merged.reason, merged.running) == (alone.state, alone.reason, None)
        assert merged.state is CRITICAL  # its retry did not come within the two hours
    succeeded = attrs.evolve(failed, status=JobStatus.SUCCESS, job_will_be_retried=None)
    verdicts = {check(job, order).state for order in ([succeeded, failed], [failed, succeeded])}
    assert len(verdicts) == 1


def test_a_window_holding_only_runs_dated_far_ahead_falls_short() -> None:
    """The batch's window held only a run the server dated in 2099 (its clock set ahead then),
    the real runs having ended before it: judged from it, a failed job read "ended with warnings
    at 2099-01-01, ahead of this clock" where `job_health`, reading the newest runs, judged the
    real last one. The batch now reads the job's own runs for it."""
    ahead = JobSession(
        id="ahead",
        job_id="job-1",
        creation_time=dt.datetime(2099, 1, 1, tzinfo=dt.UTC),
        end_time=dt.datetime(2099, 1, 1, 0, 9, tzinfo=dt.UTC),
        status=JobStatus.WARNING,
    )
    job = make_job(
        last_status=JobStatus.WARNING, last_run=ahead.creation_time, last_backup=NOW - dt.timedelta(days=8)
    )
    assert window_falls_short(job, [ahead], HealthPolicy(max_age=None), now=NOW)
    real = run("Failed", 8 * 24)
    judged = check(job, [ahead, real], max_age=None)
    assert (judged.state, judged.reason) == (CRITICAL, "failed 7 days ago")


@pytest.mark.parametrize(
    ("day", "backed_up_days_ago", "warning_is_success", "falls_short"),
    [
        (DailyType.MONDAY, 21, True, True),  # stale by lastBackup: a run with warnings may count
        (DailyType.MONDAY, 21, False, True),  # a success before the window within 7 days + 3 h
        (DailyType.MONDAY, 5, True, False),  # not stale by lastBackup: not stale whatever came after
        (DailyType.EVERYDAY, 21, True, True),  # stale either way, but since a run with warnings
        (DailyType.EVERYDAY, 21, False, False),  # stale either way, since lastBackup
    ],
)
def test_a_window_without_a_success_falls_short_where_one_before_it_can_change_the_verdict(
    day: DailyType, backed_up_days_ago: int, warning_is_success: bool, falls_short: bool
) -> None:
    """A batch's window (``max_age`` + 2 h) held no success of a job stale by its ``lastBackup``:
    a success before the window was never read, though a schedule-aware allowance reaching past
    the window (a weekly job: 26 h + 6 days + 1 h) makes a job with one 6 days ago not stale, and
    a run with warnings that ``warning_is_success`` counts (``lastBackup`` does not) dates the
    staleness. A job not stale by its own fields needs no more."""
    schedule = SchedulePolicy(type=ScheduleType.DAILY, daily_type=day, schedule_enabled=True)
    job = make_job(
        last_status=JobStatus.FAILED,
        last_run=NOW - hours(1),
        last_backup=NOW - dt.timedelta(days=backed_up_days_ago),
        schedule_policy=schedule,
    )
    policy = HealthPolicy(schedule_aware=True, warning_is_success=warning_is_success)
    assert window_falls_short(job, [run("Failed", 1)], policy, now=NOW) is falls_short


def test_a_window_built_by_hand_with_flags_that_are_not_booleans_is_refused_and_still_printed() -> None:
    """``"F"`` is truthy: ``allows`` answered it (an hour barred read as allowed), and a
    schedule-aware verdict took a window of them for one open every hour; its repr raised."""
    strings = BackupWindow(["F"] * 24 + ["T"] * 144)  # type: ignore[list-item]
    with pytest.raises(ConfigError, match=re.escape("backup_intervals_array[5] must be a bool, got str")):
        strings.allows(0, 5)
    with pytest.raises(
        ConfigError, match="backup_intervals_array must be a sequence of booleans, got NoneType"
    ):
        BackupWindow(None).allows(0, 5)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="minute_offset must be an integer"):
        BackupWindow(minute_offset="60").allows_at(NOW)  # type: ignore[arg-type]
    assert "'F'" in repr(strings)
    assert repr(BackupWindow(None)) == "BackupWindow(backup_intervals_array=None, minute_offset=None)"  # type: ignore[arg-type]
    assert repr(BackupWindow([True, False])) == (
        "BackupWindow(backup_intervals_array=<1 of 2 hours allowed>, minute_offset=None)"
    )
    periodic = SchedulePolicy(
        type=ScheduleType.PERIODICALLY,
        periodically_window_enabled=True,
        periodically_window=BackupWindow(["F"] * 168),  # type: ignore[list-item]
    )
    job = make_job(last_status=JobStatus.SUCCESS, last_run=NOW - hours(40), schedule_policy=periodic)
    with pytest.raises(
        ConfigError, match=re.escape("periodically_window.backup_intervals_array[0] must be a bool")
    ):
        check(job, schedule_aware=True)


def test_hour_flags_built_by_hand_take_booleans_only() -> None:
    """The same flags in an exported `HourFlags` were taken by their truth value (``"F"``
    allowed its hour, silently, where `BackupWindow.allows` refuses it), and flags that are not
    iterable raised a bare TypeError."""
    assert HourFlags([True, False] * 84) == (True, False) * 84
    assert HourFlags([1, 0]) == (True, False)  # 1 and 0 read as the booleans they equal
    with pytest.raises(ConfigError, match=re.escape("HourFlags takes booleans: flag [1] is str 'F'")):
        HourFlags([True, "F"])  # type: ignore[list-item]
    with pytest.raises(ConfigError, match=re.escape("HourFlags takes booleans: flag [0] is int 2")):
        HourFlags([2])
    with pytest.raises(ConfigError, match="HourFlags takes an iterable of booleans, got NoneType"):
        HourFlags(None)  # type: ignore[arg-type]


_UNIT_SECONDS = {"days": 86400, "h": 3600, "min": 60, "s": 1}


@given(
    limit=st.timedeltas(min_value=dt.timedelta(microseconds=1), max_value=dt.timedelta(days=400)),
    over=st.timedeltas(min_value=dt.timedelta(microseconds=1), max_value=dt.timedelta(days=30)),
)
def test_a_stale_age_always_reads_past_its_limit(limit: dt.timedelta, over: dt.timedelta) -> None:
    """Whatever the limit and however little the age is past it, the reason's age, read back,
    is past the limit; and it is the round reading (`_span`) whenever that is past it too."""
    age = limit + over
    text = _beyond(age, limit)
    words = text.split()
    read = sum(
        float(amount) * _UNIT_SECONDS[unit] for amount, unit in zip(words[::2], words[1::2], strict=True)
    )
    assert dt.timedelta(seconds=read) > limit or read > limit.total_seconds(), (text, limit)
    assert read <= age.total_seconds() + 1e-6  # rounded down, never more than the age
    span = _span(age)
    amount, unit = span.split()
    if dt.timedelta(seconds=int(amount) * _UNIT_SECONDS[unit]) > limit:
        assert text == span
