"""Job health as a monitoring check sees it: `HealthState`, `HealthPolicy`, `JobHealth` and `assess`.

`assess` is pure: it takes a job and any of its sessions (from ``VBOClient.job_health``, from a
server-wide list of recent sessions, from a cache...) and decides, without I/O, what a Nagios-style
check reports. The rule every home-grown script gets wrong is kept here once: the verdict comes
from the newest *finished* run, so a run in progress, a queued one, a retry on its way or a run
the user stopped never hides the last result.

`VBOClient.job_health` reads a job's sessions within a small fixed budget and calls `assess`. A
sweep over many jobs can instead read the server's recent sessions once and call `assess` for
each job with that one list: sessions of other jobs are skipped by ``job_id``, and a job whose
last run lies before the list's window is judged from its own ``last_status``, ``last_run`` and
``last_backup``.
"""

from __future__ import annotations

import datetime as dt
import enum
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import Any

import attrs

from ._checks import id_key
from ._enums import DailyType, JobStatus, ScheduleType
from ._exceptions import ConfigError, VBOError
from ._models import BackupWindow, Job, JobSession, SchedulePolicy, flag_at, window_flags
from ._printable import printable
from ._zones import unzoned as unzoned_time

__all__ = [
    "CLOCK_SKEW",
    "HEALTH_WINDOW",
    "RETRY_WITHIN",
    "UNREADABLE_SESSIONS",
    "HealthPolicy",
    "HealthState",
    "JobHealth",
    "assess",
    "finished",
    "health_window",
    "is_never",
    "newest_first",
    "on_clock",
    "retry_allowance",
    "window_falls_short",
]


class HealthState(enum.IntEnum):
    """A check's verdict, numbered as Nagios plugins exit: ``OK = 0`` ... ``UNKNOWN = 3``.

    The numbers are not the severity: CRITICAL > WARNING > UNKNOWN > OK (`severity`), the order
    in which monitoring plugins let the worst finding win.
    """

    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3

    @property
    def severity(self) -> int:
        """0 (OK) < 1 (UNKNOWN) < 2 (WARNING) < 3 (CRITICAL): ``max(states, key=...)`` is the worst."""
        return _SEVERITY[self]


_SEVERITY = {HealthState.OK: 0, HealthState.UNKNOWN: 1, HealthState.WARNING: 2, HealthState.CRITICAL: 3}


def _state(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, HealthState):
        raise ConfigError(f"HealthPolicy.{attribute.name} must be a HealthState, got {value!r}")


def _optional_state(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        _state(instance, attribute, value)


def _max_age(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    if not isinstance(value, dt.timedelta) or value <= dt.timedelta(0):
        raise ConfigError(f"HealthPolicy.max_age must be a positive timedelta or None, got {value!r}")


def _flag(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, bool):
        raise ConfigError(f"HealthPolicy.{attribute.name} must be True or False, got {value!r}")


@attrs.frozen(kw_only=True)
class HealthPolicy:
    """Which state each finding about a job gives. Invalid values raise `ConfigError`.

    - ``failed``: the last finished run failed (CRITICAL).
    - ``failed_will_retry``: it failed and the server will retry it (``job_will_be_retried``,
      v7+) (WARNING), while that retry can still come: the failure ended within the job's retry
      wait and `RETRY_WITHIN` (2 h) more (`retry_allowance`), or a run after it is in progress.
      Past that no retry came, and it is ``failed``.
    - ``warning``: the last finished run ended with warnings (WARNING).
    - ``other_result``: the last finished run ended with a status that is none of Success,
      Warning and Failed (``Disconnected``, ``NotConfigured``, one newer than vbo-async)
      (UNKNOWN).
    - ``stale`` after ``max_age`` without a success (CRITICAL after 26 h; ``max_age=None``
      switches the check off). The age is that of the last success; with no success known it is
      how far back the runs seen reach, and a job is only called stale when that exceeds
      ``max_age`` (a page of failures shorter than ``max_age`` proves nothing).
    - ``never_run``: an enabled job with no finished run at all (none, or only runs in progress
      or stopped) and no last success (WARNING: nothing is backed up yet; a job created today
      shows it until its first run ends).
    - ``disabled``: the job is disabled (OK, reason ``"disabled"``); it decides alone, the runs
      are not graded. None grades a disabled job like an enabled one.
    - ``unreadable``: its sessions could not be read (UNKNOWN).
    - ``warning_is_success``: a run that ended with warnings counts as a success for
      staleness (off by default: only Success does). VB365 ends a run with warnings when it
      backed up all but some items (one skipped, throttled); a job that does so every night is
      then WARNING for its last run, not also CRITICAL for having no success. Its last run is
      still graded ``warning``, and v7+ ``last_backup`` is the server's word either way.
    - ``schedule_aware``: staleness follows the job's schedule (off by default: ``max_age``
      alone decides). A job run only by hand (schedule type ``ManualOnly``, or
      ``schedule_enabled`` False) is never stale, its last run still graded; a ``Daily`` job on
      some days of the week gets ``max_age`` plus its longest gap between scheduled days less
      one day (Workdays + 2 days, Weekends + 5 days, one weekday + 6 days), named in the
      reason: ``"no success for 4 days (max 26 h + 2 days: runs on workdays; + 1 h for
      daylight saving)"``. A ``Periodically`` job whose window is on
      (``periodically_window_enabled`` True, v7+) gets ``max_age`` plus the longest stretch of
      hours its ``periodically_window`` allows no run (cyclic over the week; hours the window's
      flags do not cover are not allowed): ``"(max 26 h + 62 h: its window is closed that
      long; + 1 h for daylight saving)"`` for a window closed Friday 18:00 to Monday 08:00; a
      window that allows no hour at all runs it only by hand, and it is never stale (a window
      without any flag, null or empty on the wire, says nothing: ``max_age`` alone). A Daily
      job's ``backup_window`` is not counted: it is the window that ends a run which exceeds it
      ("terminate the job if it exceeds the allowed backup window"), not one that picks the days
      it runs. Every allowance it computes, Everyday, Periodically without a window, no
      schedule or a day type vbo-async does not know (``max_age`` alone) included, gets one
      hour more: the night the server's clocks go back (its schedule is in its local time), one
      gap between two runs is an hour longer.

    The most severe finding wins (CRITICAL > WARNING > UNKNOWN > OK); on a tie, the last run's
    finding comes before staleness.
    """

    failed: HealthState = attrs.field(default=HealthState.CRITICAL, validator=_state)
    failed_will_retry: HealthState = attrs.field(default=HealthState.WARNING, validator=_state)
    warning: HealthState = attrs.field(default=HealthState.WARNING, validator=_state)
    other_result: HealthState = attrs.field(default=HealthState.UNKNOWN, validator=_state)
    stale: HealthState = attrs.field(default=HealthState.CRITICAL, validator=_state)
    max_age: dt.timedelta | None = attrs.field(default=dt.timedelta(hours=26), validator=_max_age)
    never_run: HealthState = attrs.field(default=HealthState.WARNING, validator=_state)
    disabled: HealthState | None = attrs.field(default=HealthState.OK, validator=_optional_state)
    unreadable: HealthState = attrs.field(default=HealthState.UNKNOWN, validator=_state)
    schedule_aware: bool = attrs.field(default=False, validator=_flag)
    warning_is_success: bool = attrs.field(default=False, validator=_flag)

    @property
    def successes(self) -> frozenset[JobStatus]:
        """The statuses of a run that count as a success for staleness."""
        return _WITH_WARNINGS if self.warning_is_success else _SUCCESS_ONLY


_SUCCESS_ONLY = frozenset({JobStatus.SUCCESS})
_WITH_WARNINGS = frozenset({JobStatus.SUCCESS, JobStatus.WARNING})


@attrs.frozen(kw_only=True)
class JobHealth:
    """The health of one job at one moment (built by `assess`).

    ``last_session`` is the newest finished run (not running, not queued, not stopped by the
    user), ``running`` a run in progress newer than it, ``last_success`` when the job last
    succeeded (the latest of v7+ ``job.last_backup``, the end of the newest successful run seen,
    and ``job.last_run`` when ``job.last_status`` says Success; None when not known). ``reason`` is
    one line naming the finding that decided ``state``: ``"failed 20 min ago, will be retried"``.
    ``unzoned`` says that times it was judged from came without an offset (`_zones.UNZONED`):
    read as UTC, they are off by the server's zone if they were its local time, and the reason
    ends ``"(times without an offset, read as UTC)"``.
    """

    job: Job
    state: HealthState
    reason: str
    last_session: JobSession | None = None
    running: JobSession | None = None
    last_success: dt.datetime | None = None
    unzoned: bool = False


CLOCK_SKEW = dt.timedelta(days=1)
"""How far ahead of ``now`` `assess` takes a server's time as it is: a server's clock some hours
fast, or a zone-less local time of a server east of UTC (read as UTC), is still its newest run.
A session created further ahead (a clock once set years ahead) is ranked after every session
dated within reason, and its end is no last success: it would otherwise decide the verdict for
as long as it stays in the future. (.NET's ``DateTime.MaxValue``, in the year 9999, is no time
at all: `is_never`.)"""

RETRY_WITHIN = dt.timedelta(hours=2)
"""How long after a failed run ended, beyond the job's own retry wait, `assess` takes the server's
word that it will retry it (``job_will_be_retried``): VB365 retries after the job's
``retryWaitInterval`` (minutes: 5 or 10 in the documented examples, hours where an admin set so).
A failure that ended longer ago, with no run in progress after it, was not retried: it is judged
as the failure it is (``HealthPolicy.failed``), not as one about to be retried for as long as it
stays the last run. See `retry_allowance`."""

UNREADABLE_SESSIONS = "sessions could not be read"
"""How `assess` begins the reason of a job whose sessions could not be read."""

HEALTH_WINDOW = dt.timedelta(days=7)
"""How far back a batch reads sessions when the health policy has no ``max_age``."""

_WINDOW_SLACK = dt.timedelta(hours=2)
"""How far beyond ``max_age`` a batch reads sessions (`health_window`)."""

_IN_PROGRESS = frozenset({JobStatus.RUNNING, JobStatus.QUEUED})
_NOT_A_RESULT = _IN_PROGRESS | {JobStatus.STOPPED}
_DEFAULT_POLICY = HealthPolicy()


def finished(session: JobSession) -> bool:
    """Whether ``session`` is a finished run with a result: not running, not queued and not
    stopped by the user (a stop is not a result)."""
    return session.status not in _NOT_A_RESULT


def window_falls_short(
    job: Job, sessions: Iterable[JobSession], policy: HealthPolicy, *, now: dt.datetime | None = None
) -> bool:
    """Whether ``sessions``, the job's runs ended within a recent window, can miss what `assess`
    needs that the job itself does not carry: its last success (no ``last_backup``: v6, or
    never a success) when no run of the window succeeded, or its last result when no run of
    the window finished and ``last_status`` names none (a run in progress, a stop), or when
    ``last_status`` says a run is in progress and the window holds none, or when the
    window misses the run whose result ``last_status`` names (`_misses_the_last_run`), or when
    no run of the window succeeded and a success before it can still change the verdict
    (`_may_succeed_before`: a schedule-aware allowance reaching past the window, a run with
    warnings ``warning_is_success`` counts). The window is `health_window` long, ending at
    ``now``. False for a job the policy judges as disabled, and for one that never ran. A run or
    ``last_backup`` dated more than `CLOCK_SKEW` after ``now`` (the current time when None), or
    at a time that never was (`is_never`), stands for nothing, as in `assess`."""
    if job.is_enabled is False and policy.disabled is not None:
        return False
    now = dt.datetime.now(dt.UTC) if now is None else _in_utc(now)
    horizon = _horizon(now)
    window = list(sessions)
    if _utc(job.last_run) is None and not window:
        return False
    dated = [s for s in window if not _ahead(s.creation_time, horizon) and not _ahead(s.end_time, horizon)]
    backed_up = _utc(job.last_backup)
    # A success is one `assess` dates: one at no time (.NET's MaxValue) is no last success.
    successes = policy.successes
    succeeded = any(s.status in successes and _finished_at(s) is not None for s in dated)
    if (backed_up is None or backed_up > horizon) and not succeeded:
        return True
    if not succeeded and _may_succeed_before(job, dated, policy, now, horizon):
        return True
    if job.last_status in _IN_PROGRESS and not any(s.status in _IN_PROGRESS for s in dated):
        # The run the job says is in progress is not in the window (a server whose
        # ``endTimeLowerBound`` leaves out runs without an end): `assess` awaits a failure's
        # retry for as long as a run after it is in progress, and names that run.
        return True
    if job.last_status is None or job.last_status in _NOT_A_RESULT:
        return not any(finished(s) for s in dated)
    if not any(finished(s) for s in dated) and any(finished(s) for s in window):
        # Only runs dated far ahead finished in the window (the real ones ended before it):
        # `assess` would judge the job by one of them, where `VBOClient.job_health`, reading its
        # newest runs, judges it by its last run dated within reason.
        return True
    return _misses_the_last_run(job, dated)


def _may_succeed_before(
    job: Job, window: list[JobSession], policy: HealthPolicy, now: dt.datetime, horizon: dt.datetime
) -> bool:
    """Whether a success that ended before ``window`` (which holds none) can change what `assess`
    says of a job stale by the last success it knows without one (``last_backup``, its last run
    when ``last_status`` counts): where the job's allowance (`_allowance`) reaches past the
    window (`health_window`: a schedule-aware one, up to 6 days more for a weekly job), one
    within it makes the job not stale; with ``warning_is_success`` a run with warnings, which
    ``last_backup`` (the last Success) does not count, dates the staleness. A job not stale
    without it is not stale with it: no request of its own."""
    allowance = _allowance(job, policy)
    if allowance is None:
        return False
    limit, _ = allowance
    if not policy.warning_is_success and limit <= health_window(policy):
        return False  # stale past the window either way, and `last_backup` counts every success
    known = _last_success(job, window, horizon, policy.successes)
    return known is None or now - known > limit


def _misses_the_last_run(job: Job, window: list[JobSession]) -> bool:
    """Whether the job reports the result of a run that began (``last_run``) after every
    finished run of ``window`` (those dated within reason) had ended: the window was read before
    that run ended (a batch reads it while it lists the jobs), and `assess` would judge the job
    from an older run."""
    began = _utc(job.last_run)
    ends = [end for session in window if finished(session) and (end := _finished_at(session)) is not None]
    return began is not None and bool(ends) and began > max(ends)


@attrs.frozen
class _Finding:
    state: HealthState
    reason: str


def assess(
    job: Job,
    sessions: Iterable[JobSession] = (),
    *,
    policy: HealthPolicy = _DEFAULT_POLICY,
    now: dt.datetime | None = None,
    error: VBOError | None = None,
) -> JobHealth:
    """The health of ``job`` from ``sessions`` and the job's own fields (pure, no I/O).

    ``sessions`` may come from anywhere, in any order: sessions of other jobs (by ``job_id``,
    compared ignoring case) are ignored, a session without ``job_id`` is taken as the job's.
    Where they add nothing (none given, or none finished), the job's ``last_status``,
    ``last_run`` and ``last_backup`` decide.
    ``error`` says the sessions could not be read: the state is then ``policy.unreadable`` with
    the error in the reason (a disabled job stays "disabled"). ``now`` is an aware datetime (the
    current UTC time when None); times without a zone are taken as UTC, as the decoder does,
    and one that never was or never will be (`is_never`: up to 1970, as .NET's 0001-01-01, or in
    9999, as its MaxValue) as no time at all. A
    session created more than `CLOCK_SKEW` (a day) after ``now`` ranks after every one dated
    within reason, and its end is no last success (nor is a ``last_backup`` or ``last_run`` that
    far ahead). A failure the server will retry (``job_will_be_retried``) is
    ``policy.failed_will_retry`` only while the retry can still come (`retry_allowance`: the
    job's retry wait and `RETRY_WITHIN`, or a run after it in progress); later it is
    ``policy.failed``, as a batch that knows it only from the job's ``last_status`` judges it.
    Ages are ``now`` minus times the server wrote by its own clock: `VBOClient.job_health` and
    `poll_jobs` pass the server's now (this machine's moved by `VBOClient.server_clock_offset`),
    and a caller judging a server whose clock is off this machine's should do the same.

    ```python
    health = assess(job, await vbo.job_sessions(job, limit=50), now=datetime.now(UTC))
    ```
    """
    if not isinstance(job, Job):
        raise ConfigError(f"assess() needs a Job, got {type(job).__name__}")
    # Read by truth and by equality, not by a call that would fail: a job built by hand with
    # is_enabled="false" was judged enabled, last_status=5 "ended with status 5".
    if job.is_enabled is not None and job.is_enabled.__class__ is not bool:
        raise ConfigError(f"job.is_enabled must be a bool or None, got {type(job.is_enabled).__name__}")
    if job.last_status is not None and not isinstance(job.last_status, str):
        raise ConfigError(
            f"job.last_status must be a JobStatus, a string or None, got {type(job.last_status).__name__}"
        )
    if not isinstance(policy, HealthPolicy):
        raise ConfigError(f"policy must be a HealthPolicy, got {type(policy).__name__}")
    if now is None:
        now = dt.datetime.now(dt.UTC)
    elif not isinstance(now, dt.datetime) or now.tzinfo is None or now.utcoffset() is None:
        raise ConfigError("now must be an aware datetime (with a tzinfo)")
    else:
        now = _in_utc(now)
    if not isinstance(sessions, Iterable):
        raise ConfigError(f"sessions must be an iterable of JobSession, got {type(sessions).__name__}")
    mine = [s for s in sessions if _belongs(s, job)]
    try:
        return _judged(job, _each_run_once(mine), policy, now, error)
    except (AttributeError, TypeError):
        misfit = _misfit(job, mine)  # a model built by hand with a value of the wrong type
        if misfit is None:
            raise
        raise misfit from None


def _judged(
    job: Job, mine: list[JobSession], policy: HealthPolicy, now: dt.datetime, error: VBOError | None
) -> JobHealth:
    """`assess` of arguments it checked: ``mine`` are the job's sessions (sorted here)."""
    horizon = _horizon(now)
    mine.sort(key=_ranked(horizon))

    last_session = next((s for s in mine if finished(s)), None)
    running = None
    for session in mine:
        if session is last_session:
            break
        if session.status in _IN_PROGRESS:
            running = session
            break
    last_success = _last_success(job, mine, horizon, policy.successes)

    unzoned = False
    if job.is_enabled is False and policy.disabled is not None:
        finding = _Finding(policy.disabled, "disabled")
    elif error is not None:
        finding = _Finding(policy.unreadable, f"{UNREADABLE_SESSIONS}: {error}")
    else:
        findings = [_last_result(job, last_session, running, last_success, mine, policy, now)]
        stale = _staleness(job, mine, last_success, policy, now)
        if stale is not None:
            findings.append(stale)
        # Every verdict from here measures an age: one from times read as UTC may be a zone off.
        unzoned = any(unzoned_time(moment) for moment in _times(job, mine))
        finding = max(findings, key=lambda f: f.state.severity)  # the first of equals: the last run
    return JobHealth(
        job=job,
        state=finding.state,
        reason=f"{finding.reason} {_UNZONED_SAID}" if unzoned else finding.reason,
        last_session=last_session,
        running=running,
        last_success=last_success,
        unzoned=unzoned,
    )


_UNZONED_SAID = "(times without an offset, read as UTC)"


def _times(job: Job, sessions: list[JobSession]) -> Iterator[dt.datetime | None]:
    """The times `assess` judges ``job`` from: its own and its sessions'."""
    yield job.last_run
    yield job.last_backup
    for session in sessions:
        yield session.creation_time
        yield session.end_time


def on_clock(judge: Callable[[dt.datetime], JobHealth], here: dt.datetime, there: dt.datetime) -> JobHealth:
    """The verdict ``judge`` gives at ``there``, the server's "now" (``here``, this machine's,
    moved by its clock's offset: `ServerClock.now`), saying so when this machine's clock gives
    another state: ``"no success for 30 h (max 26 h) (on the server's clock, 20 h ahead of
    this machine's; OK on this machine's)"``. An offset comes from a ``Date`` header, which a
    proxy may have written, or a server whose clock was set wrong: a verdict it changed names
    it, and what it changed. The same verdict either way is returned as ``judge`` gives it;
    ``judge`` is called twice only when the clocks differ."""
    health = judge(there)
    if there == here:
        return health
    mine = judge(here)
    if mine.state is health.state:
        return health
    shift = there - here
    way = "ahead of" if shift > dt.timedelta(0) else "behind"
    said = f"on the server's clock, {_offset(abs(shift))} {way} this machine's"
    return attrs.evolve(health, reason=f"{health.reason} ({said}; {mine.state.name} on this machine's)")


def _offset(delta: dt.timedelta) -> str:
    """A clock's offset to the minute: ``45 min``, ``3 h``, ``2 h 30 min``."""
    minutes = round(delta.total_seconds() / 60)
    hours, minutes = divmod(minutes, 60)
    if not hours:
        return f"{minutes} min"
    return f"{hours} h" if not minutes else f"{hours} h {minutes} min"


def _misfit(job: Job, sessions: list[JobSession]) -> ConfigError | None:
    """The `ConfigError` naming the first value of ``job`` or ``sessions`` of a type `assess`
    cannot judge (a model built by hand: ``last_run="2026-07-01"``), None when there is none.
    Run only to explain a failure: decoded models always hold the right types. A session's id
    is a string, never None: two sessions at the same times are ordered by it (`_ranked`), and
    ``None`` or ``7`` beside ``"b"`` cannot be."""
    fields: list[tuple[str, str, object]] = [
        ("job", field, getattr(job, field)) for field in ("last_run", "last_backup", "last_status")
    ]
    for session in sessions:
        name = f"session {printable(repr(session.id))[:100]}"
        fields += [
            (name, field, getattr(session, field)) for field in ("creation_time", "end_time", "status", "id")
        ]
    for name, field, value in fields:
        if field == "id":
            if not isinstance(value, str):
                return ConfigError(f"{name}.id must be a string, got {type(value).__name__}")
            continue
        if value is None:
            continue
        if field.endswith("status") and not isinstance(value, str):
            wanted = "a JobStatus, a string"
        elif not field.endswith("status") and not isinstance(value, dt.datetime):
            wanted = "a datetime"
        else:
            continue
        return ConfigError(f"{name}.{field} must be {wanted} or None, got {type(value).__name__}")
    return None


def _each_run_once(sessions: list[JobSession]) -> list[JobSession]:
    """``sessions`` with each session id once (ids compared ignoring case): of the copies of one
    run (a list merged from two readings of it), the one furthest along, whatever order they
    come in: ended (or stopped) over still running or queued, then the later end, then by
    status, creation time and retry flag. A copy left running made it the run in progress for
    good, its failure "will be retried" for ever (pure)."""
    ids = [s.id.lower() if isinstance(s.id, str) else s.id for s in sessions]
    try:
        if len(set(ids)) == len(ids):
            return sessions  # nearly always: each run read once
    except TypeError:  # an id of a session built by hand that cannot be hashed: left as it is
        return sessions
    kept: dict[object, JobSession] = {}
    for key, session in zip(ids, sessions, strict=True):
        other = kept.get(key)
        if other is None or _along(session) > _along(other):
            kept[key] = session
    return list(kept.values())


def _along(session: JobSession) -> tuple[bool, float, str, float, bool, str]:
    """How far along a copy of a run is (`_each_run_once`): a total order, so the copy kept
    does not depend on the order the copies come in."""
    end, created = _utc(session.end_time), _utc(session.creation_time)
    return (
        session.status not in _IN_PROGRESS,
        end.timestamp() if end is not None else -math.inf,
        str(session.status),
        created.timestamp() if created is not None else -math.inf,
        session.job_will_be_retried is True,
        str(session.id),
    )


def _belongs(session: object, job: Job) -> bool:
    if not isinstance(session, JobSession):
        raise ConfigError(f"sessions must hold JobSession objects, got {type(session).__name__}")
    # Ids compared as `VBOClient.job_sessions` and the sweeps compare them (`id_key`: ignoring
    # case, a GUID in any of .NET's spellings): a job built with ``{...}`` owns its sessions.
    mine, theirs = session.job_id, job.id
    if mine is None or mine == theirs:
        return True
    return isinstance(mine, str) and isinstance(theirs, str) and id_key(mine) == id_key(theirs)


def _utc(moment: dt.datetime | None) -> dt.datetime | None:
    """``moment`` in UTC (`_in_utc`); None for no time, or one that never was (`is_never`)."""
    if moment is None:
        return None
    if 1970 < moment.year < 9999:  # nearly every time: not `is_never` (_LAST_YEAR), decoded in UTC
        return moment if moment.tzinfo is dt.UTC else _in_utc(moment)
    return None if is_never(moment) else _in_utc(moment)


def is_never(moment: dt.datetime) -> bool:
    """Whether ``moment`` stands for a time that never was (a job never backed up) or never will
    be (the next run of a job that has none): any time up to Unix time 0 (1970-01-01 00:00 UTC;
    a time without a zone read as UTC), and any in the calendar's last year, 9999, as written
    in whatever offset. No backup server ran before 1970, and none plans a run in 9999; what
    servers write for "never" lies there: .NET's ``DateTime.MinValue`` (0001-01-01, in any
    offset), Windows' FILETIME zero (1601), SQL Server's (1900), Unix time 0, and .NET's
    ``DateTime.MaxValue`` (9999-12-31T23:59:59.9999999, SQL Server's last day likewise)
    (pure)."""
    if moment.year >= _LAST_YEAR:
        return True
    if moment.year > 1970:  # after 1970-01-01 00:00 UTC in any offset
        return False
    if moment.tzinfo is None or moment.utcoffset() is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment <= _UNIX_EPOCH


_UNIX_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_LAST_YEAR = dt.MAXYEAR
"""9999: its times are "never" (.NET's ``DateTime.MaxValue`` is its last tick)."""


def _in_utc(moment: dt.datetime) -> dt.datetime:
    """``moment`` in UTC, a time without a zone taken as UTC. Python compares and subtracts two
    datetimes that share a tzinfo by their wall clocks: in one zone with daylight saving (a
    `zoneinfo.ZoneInfo`) an age would be an hour off across the change, and a run in the hour
    the clocks repeat would sort before an earlier one."""
    if moment.tzinfo is dt.UTC:
        return moment
    if moment.tzinfo is None or moment.utcoffset() is None:
        return moment.replace(tzinfo=dt.UTC)
    try:
        return moment.astimezone(dt.UTC)
    except OverflowError:  # beyond the calendar in UTC: still compared by its instant with UTC times
        return moment


def newest_first(session: JobSession) -> tuple[bool, float, bool, float, str]:
    """Sort key: the newest session first (a zone-less time read as UTC), those without a
    creation time last. Sessions created at the same moment (or both at none) come in one order
    whatever order they are given in: one still running first, then the one that ended last,
    then by id."""
    when, end = _utc(session.creation_time), _utc(session.end_time)
    return (
        when is None,
        -when.timestamp() if when is not None else 0.0,
        end is not None,
        -end.timestamp() if end is not None else 0.0,
        session.id,
    )


def _ranked(horizon: dt.datetime) -> Callable[[JobSession], tuple[int, float, bool, float, str]]:
    """`assess`'s sort key: `newest_first`, then those created beyond ``horizon`` (`CLOCK_SKEW`
    after now), newest first too. Written out, not `newest_first` in a tuple: it sorts every
    session of every job a sweep judges (a test compares the orders)."""
    limit = horizon.timestamp()

    def key(session: JobSession) -> tuple[int, float, bool, float, str]:
        when, end = _utc(session.creation_time), _utc(session.end_time)
        if when is None:
            rank, created = 1, 0.0
        else:
            created = when.timestamp()
            rank = 2 if created > limit else 0
        return rank, -created, end is not None, -end.timestamp() if end is not None else 0.0, session.id

    return key


def _horizon(now: dt.datetime) -> dt.datetime:
    """``now`` (in UTC) plus `CLOCK_SKEW`, at most the calendar's end."""
    return now + CLOCK_SKEW if now <= _LAST_SKEWED else _CALENDAR_END


_CALENDAR_END = dt.datetime.max.replace(tzinfo=dt.UTC)
_LAST_SKEWED = _CALENDAR_END - CLOCK_SKEW


def _ahead(moment: dt.datetime | None, horizon: dt.datetime) -> bool:
    """Whether ``moment`` lies beyond ``horizon`` (`CLOCK_SKEW` after now)."""
    when = _utc(moment)
    return when is not None and when > horizon


def _finished_at(session: JobSession) -> dt.datetime | None:
    return _utc(session.end_time) or _utc(session.creation_time)


def _last_success(
    job: Job, sessions: list[JobSession], horizon: dt.datetime, counted: frozenset[JobStatus]
) -> dt.datetime | None:
    """The latest of v7+ ``last_backup``, the newest successful run seen (a status ``counted``),
    and ``last_run`` when the job says its last run succeeded (a ``last_backup`` the server had
    not moved yet past that run is no older success: every reader of the job sees the newer
    one); none beyond ``horizon``."""
    successes = (_finished_at(s) for s in sessions if s.status in counted)
    seen = next((moment for moment in successes if moment is not None and moment <= horizon), None)
    ran = _utc(job.last_run) if job.last_status in counted else None
    candidates = [
        moment for moment in (_utc(job.last_backup), seen, ran) if moment is not None and moment <= horizon
    ]
    return max(candidates) if candidates else None


def _last_result(
    job: Job,
    last_session: JobSession | None,
    running: JobSession | None,
    last_success: dt.datetime | None,
    sessions: list[JobSession],
    policy: HealthPolicy,
    now: dt.datetime,
) -> _Finding:
    """The finding about the newest finished run: from the sessions, else from the job."""
    if last_session is not None:
        status, when = last_session.status, _finished_at(last_session)
        retried = last_session.job_will_be_retried is True and _retry_to_come(
            when, running, now, retry_allowance(job, policy)
        )
    elif (
        (ran := _utc(job.last_run)) is not None
        and job.last_status is not None
        and job.last_status not in _NOT_A_RESULT
    ):
        status, when, retried = job.last_status, ran, False
    elif last_success is not None:
        return _Finding(HealthState.OK, f"last success {_ago(last_success, now)}")
    elif not sessions and ran is None:
        return _Finding(policy.never_run, "never run")
    elif not sessions:
        known = "" if job.last_status is None else f" (last status {job.last_status})"
        return _Finding(policy.never_run, f"no finished run known{known}")
    else:
        count = f"{len(sessions)} sessions" if len(sessions) > 1 else "1 session"
        return _Finding(policy.never_run, f"no finished run among the last {count}")

    ago = _ago(when, now) if when is not None else "at an unknown time"
    if status == JobStatus.SUCCESS:
        return _Finding(HealthState.OK, f"last run succeeded {ago}")
    if status == JobStatus.WARNING:
        return _Finding(policy.warning, f"last run ended with warnings {ago}")
    if status == JobStatus.FAILED:
        if retried:
            return _Finding(policy.failed_will_retry, f"failed {ago}, will be retried")
        return _Finding(policy.failed, f"failed {ago}")
    shown = "no status" if status is None else f"status {status}"
    return _Finding(policy.other_result, f"last run ended with {shown} {ago}")


def _retry_to_come(
    failed: dt.datetime | None, running: JobSession | None, now: dt.datetime, allowance: dt.timedelta
) -> bool:
    """Whether the retry of a run that failed at ``failed`` (its end) can still come: a run after
    it is in progress (``running``), or it ended within ``allowance`` (`retry_allowance`; an
    undated failure: the server's word is all there is)."""
    return running is not None or failed is None or now - failed <= allowance


def health_window(policy: HealthPolicy) -> dt.timedelta:
    """How far back a batch reads sessions for ``policy``: its ``max_age`` (`HEALTH_WINDOW`
    without one) and `_WINDOW_SLACK`, at most `datetime.timedelta.max` (no `OverflowError`)."""
    age = policy.max_age if policy.max_age is not None else HEALTH_WINDOW
    return age + _WINDOW_SLACK if age <= dt.timedelta.max - _WINDOW_SLACK else dt.timedelta.max


def retry_allowance(job: Job, policy: HealthPolicy) -> dt.timedelta:
    """How long after a failure the server said it will retry `assess` awaits that retry (pure):
    `RETRY_WITHIN` beyond the job's own ``retry_wait_interval`` (minutes; a job set to wait 3
    hours between attempts is not failed 2 hours after its run). The wait counts at most
    ``policy.max_age`` (`HEALTH_WINDOW` without one): a batch reads sessions `RETRY_WITHIN`
    beyond that, so a failure it knows only from the job's ``last_status`` is past its retry
    either way. A wait that is no positive number of minutes (negative, null) adds nothing."""
    schedule = _schedule_of(job)
    wait = None if schedule is None else schedule.retry_wait_interval
    if wait is None or isinstance(wait, bool) or not isinstance(wait, int) or wait <= 0:
        return RETRY_WITHIN
    cap = policy.max_age if policy.max_age is not None else HEALTH_WINDOW
    waited = dt.timedelta(minutes=min(wait, cap // dt.timedelta(minutes=1)))
    return RETRY_WITHIN + waited if waited <= dt.timedelta.max - RETRY_WITHIN else dt.timedelta.max


def _staleness(
    job: Job,
    sessions: list[JobSession],
    last_success: dt.datetime | None,
    policy: HealthPolicy,
    now: dt.datetime,
) -> _Finding | None:
    """The stale finding, when the job has gone longer than its allowance (`_allowance`)
    without a success."""
    allowance = _allowance(job, policy)
    if allowance is None:
        return None
    limit, said = allowance
    if last_success is not None:
        age = now - last_success
        if age > limit:
            return _Finding(policy.stale, f"no success for {_beyond(age, limit)} (max {said})")
        return None
    # No success known: the runs seen (and the job's last run) bound how long it has been.
    starts = [_utc(s.creation_time) for s in sessions] + [_utc(job.last_run)]
    known = [moment for moment in starts if moment is not None]
    if not known:
        return None  # never run: that finding speaks for itself
    reach = now - min(known)
    if reach > limit:
        return _Finding(policy.stale, f"no success for at least {_beyond(reach, limit)} (max {said})")
    return None


def _schedule_of(job: Job) -> SchedulePolicy | None:
    """``job.schedule_policy``, or `ConfigError` for a value of another type (a model built by
    hand: ``schedule_policy="daily"``)."""
    schedule = job.schedule_policy
    if schedule is not None and not isinstance(schedule, SchedulePolicy):
        raise ConfigError(
            f"job.schedule_policy must be a SchedulePolicy or None, got {type(schedule).__name__}"
        )
    return schedule


def _allowance(job: Job, policy: HealthPolicy) -> tuple[dt.timedelta, str] | None:
    """How long ``job`` may go without a success under ``policy``, and how the reason says it
    (``26 h``, ``26 h + 2 days: runs on workdays``); None when it is never stale."""
    if policy.max_age is None:
        return None
    said = _exact(policy.max_age)
    if not policy.schedule_aware:
        return policy.max_age, said
    schedule = _schedule_of(job)
    if schedule is not None and (
        schedule.type == ScheduleType.MANUAL_ONLY or schedule.schedule_enabled is False
    ):
        return None  # run only by hand: no run is missed
    limit, widened = policy.max_age, ""
    scheduled = _scheduled_days(schedule)
    closed = _closed_hours(schedule)
    if scheduled is not None:
        days, name = scheduled
        extra = _longest_gap(days) - 1
        limit = _saturating_sum(limit, dt.timedelta(days=extra))
        widened = f" + {extra} days: runs on {name};"
    elif closed is not None:
        if closed >= _WEEK_HOURS:
            return None  # a window never open: the job never runs by schedule
        if closed:
            limit = _saturating_sum(limit, dt.timedelta(hours=closed))
            widened = f" + {_exact(dt.timedelta(hours=closed))}: its window is closed that long;"
    said = f"{said}{widened} + 1 h for daylight saving"
    return _saturating_sum(limit, _DAYLIGHT_SAVING), said


_DAYLIGHT_SAVING = dt.timedelta(hours=1)
"""The slack `HealthPolicy.schedule_aware` adds to every allowance it computes: the night a
server's clocks go back, the gap between two runs by its local schedule is an hour longer."""

_WEEK_HOURS = 7 * 24


def _closed_hours(schedule: SchedulePolicy | None) -> int | None:
    """The longest stretch of hours (cyclic over the week) in which a ``Periodically`` job's
    window (``periodically_window``, when ``periodically_window_enabled`` is True) allows no
    run; `_WEEK_HOURS` for a window with no allowed hour, None for any other schedule. An hour
    the window's flags do not cover is not allowed, as `BackupWindow.allows` says. The window's
    zone (``minute_offset``) moves no stretch: the week is a cycle. A window without any flag
    says nothing: None."""
    if (
        schedule is None
        or schedule.type != ScheduleType.PERIODICALLY
        or schedule.periodically_window_enabled is not True
        or schedule.periodically_window is None
    ):
        return None
    window = schedule.periodically_window
    if not isinstance(window, BackupWindow):
        raise ConfigError(
            "job.schedule_policy.periodically_window must be a BackupWindow or None,"
            f" got {type(window).__name__}"
        )
    name = "job.schedule_policy.periodically_window.backup_intervals_array"
    flags = window_flags(window.backup_intervals_array, name)
    if not len(flags):
        # No flags at all (the server sent them null, left them out, or empty): the window says
        # nothing, and is not counted. Read as a window never open, it made a job that had not
        # succeeded for a month never stale.
        return None
    hours = tuple(flag_at(flags, index, name) for index in range(min(len(flags), _WEEK_HOURS)))
    return _longest_closed(hours)


def _longest_closed(flags: tuple[bool, ...]) -> int:
    """The longest cyclic run of hours of the week ``flags`` (up to 168; missing hours closed)
    does not allow: 168 when it allows none, 0 when it allows every hour."""
    hours = flags + (False,) * (_WEEK_HOURS - len(flags))
    if not any(hours):
        return _WEEK_HOURS
    start = hours.index(True)  # walk the week from an open hour: every closed stretch is whole
    longest = current = 0
    for offset in range(1, _WEEK_HOURS + 1):
        if hours[(start + offset) % _WEEK_HOURS]:
            current = 0
        else:
            current += 1
            longest = max(longest, current)
    return longest


def _scheduled_days(schedule: SchedulePolicy | None) -> tuple[frozenset[int], str] | None:
    """The weekdays (Monday 0) a ``Daily`` schedule runs on and their name, for a day type that
    names some days of the week; None for any other schedule (an unknown day type included)."""
    if schedule is None or schedule.type != ScheduleType.DAILY or not isinstance(schedule.daily_type, str):
        return None
    return _WEEK_DAYS.get(schedule.daily_type)


_WEEK_DAYS: Mapping[str, tuple[frozenset[int], str]] = MappingProxyType(
    {
        DailyType.WORKDAYS: (frozenset(range(5)), "workdays"),
        DailyType.WEEKENDS: (frozenset({5, 6}), "weekends"),
        **{
            day: (frozenset({number}), f"{day.value}s")
            for number, day in enumerate(
                (
                    DailyType.MONDAY,
                    DailyType.TUESDAY,
                    DailyType.WEDNESDAY,
                    DailyType.THURSDAY,
                    DailyType.FRIDAY,
                    DailyType.SATURDAY,
                    DailyType.SUNDAY,
                )
            )
        },
    }
)
"""The ``dailyType`` values that name some days of the week: their weekdays and their name."""


def _longest_gap(days: frozenset[int]) -> int:
    """The most days from one of ``days`` (weekdays) to the next of them: 7 for one day a week."""
    ordered = sorted(days)
    return max(
        (after - before) % 7 or 7 for before, after in zip(ordered, ordered[1:] + ordered[:1], strict=True)
    )


def _saturating_sum(first: dt.timedelta, second: dt.timedelta) -> dt.timedelta:
    """``first + second``, or `datetime.timedelta.max` where that would overflow."""
    return first + second if first <= dt.timedelta.max - second else dt.timedelta.max


def _span(delta: dt.timedelta) -> str:
    """``45 min``, ``31 h``, ``5 days`` (rounded down; hours up to three days)."""
    seconds = max(int(delta.total_seconds()), 0)
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 72 * 3600:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} days"


def _beyond(age: dt.timedelta, limit: dt.timedelta) -> str:
    """``age`` (past ``limit``) as `_span` says it, or with as many smaller units as it takes to
    read past ``limit`` (``26 h 50 min``, ``26 h 0 min 1 s``): "no success for 26 h (max 26 h)"
    contradicted the CRITICAL it explained (pure)."""
    exact = max(age.total_seconds(), 0.0)
    seconds = int(exact)
    days, hours, minutes = seconds // 86400, seconds // 3600, seconds // 60
    if seconds >= 72 * 3600:
        parts = [(days * 86400, f"{days} days"), (hours * 3600, f"{hours % 24} h")]
    elif seconds >= 3600:
        parts = [(hours * 3600, f"{hours} h")]
    else:
        parts = []
    if parts or minutes:
        parts.append((minutes * 60, f"{minutes % 60 if parts else minutes} min"))
    parts.append((seconds, f"{seconds % 60} s"))
    for count, (shown, _) in enumerate(parts, start=1):
        if dt.timedelta(seconds=shown) > limit:
            return " ".join(text for _, text in parts[:count])
    fraction = f"{exact - seconds + seconds % 60:f}".rstrip("0").rstrip(".")
    return " ".join([*(text for _, text in parts[:-1]), f"{fraction} s"])


def _exact(delta: dt.timedelta) -> str:
    """A configured duration, exactly: ``26 h``, ``90 min``, ``7 days``, ``45 s``, ``3600.5 s``."""
    exact = delta.total_seconds()
    seconds = int(exact)
    if seconds != exact:  # a fraction of a second: no larger unit says it
        return f"{exact:f}".rstrip("0") + " s"
    if seconds >= 72 * 3600 and seconds % 86400 == 0:
        return f"{seconds // 86400} days"
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"


def _ago(moment: dt.datetime, now: dt.datetime) -> str:
    """``3 h ago``, ``2 days ago``; ``just now`` under a minute (or in the future, up to
    `CLOCK_SKEW`); further ahead, the time itself: ``at 2099-01-01 00:10+00:00, ahead of this
    clock``."""
    delta = now - moment
    if delta < -CLOCK_SKEW:
        return f"at {moment.isoformat(' ', 'minutes')}, ahead of this clock"
    if delta < dt.timedelta(minutes=1):
        return "just now"
    if delta < dt.timedelta(hours=48):
        return f"{_span(delta)} ago"
    return f"{int(delta.total_seconds()) // 86400} days ago"
