"""Schedule arithmetic (pure): backup-window grids and the next run time of a job."""

from __future__ import annotations

from datetime import UTC, datetime

from ._records import Schedule
from ._wireformat import TICKS_PER_SECOND

__all__ = ["DAILY_TYPES", "PERIODS", "WINDOWS", "backup_window", "next_run", "previous_run", "run_interval"]

PERIODS: dict[str, int] = {
    "Minutes5": 300,
    "Minutes10": 600,
    "Minutes15": 900,
    "Minutes30": 1800,
    "Hours1": 3600,
    "Hours2": 7200,
    "Hours4": 14400,
    "Hours8": 28800,
}
"""``periodicallyEvery`` values and their length in seconds."""

_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
DAILY_TYPES: dict[str, frozenset[int]] = {
    "Everyday": frozenset(range(7)),
    "Workdays": frozenset(range(5)),
    "Weekends": frozenset({5, 6}),
    **{name: frozenset({number}) for number, name in enumerate(_WEEKDAYS)},
}
"""``dailyType`` values and the Python weekdays (Monday = 0) they allow."""


def _allowed(window: str, sunday_first_day: int, hour: int) -> bool:
    weekend = sunday_first_day in (0, 6)
    if window == "nights":
        return hour < 6 or hour >= 20
    if window == "weekends":
        return weekend
    if window == "off_hours":
        return weekend or hour < 8 or hour >= 18
    return True


WINDOWS = ("always", "nights", "weekends", "off_hours")
"""Backup-window patterns: all hours, 20:00-06:00, Saturday+Sunday, outside 08:00-18:00 Mon-Fri."""


def backup_window(window: str) -> list[bool]:
    """The 168-entry ``backupIntervalsArray``: 7 days x 24 hours, Sunday first."""
    return [_allowed(window, day, hour) for day in range(7) for hour in range(24)]


def run_interval(schedule: Schedule) -> int:
    """Seconds between two scheduled runs (one day for daily schedules)."""
    if schedule.type == "Periodically":
        return PERIODS.get(schedule.periodically_every, 3600)
    return 86400


def _in_window(schedule: Schedule, seconds: int) -> bool:
    moment = datetime.fromtimestamp(seconds, UTC)
    return _allowed(schedule.window, (moment.weekday() + 1) % 7, moment.hour)


def next_run(schedule: Schedule, now_ticks: int) -> int:
    """The first scheduled start strictly after `now_ticks`, in whole seconds (as ticks)."""
    now = now_ticks // TICKS_PER_SECOND
    if schedule.type == "Periodically":
        period = run_interval(schedule)
        candidate = (now // period + 1) * period
        for _ in range(7 * 86400 // period + 1):
            if _in_window(schedule, candidate):
                break
            candidate += period
        return candidate * TICKS_PER_SECOND
    hours, minutes, seconds = (int(part) for part in schedule.daily_time.split(":"))
    days = DAILY_TYPES.get(schedule.daily_type, DAILY_TYPES["Everyday"])
    midnight = now - now % 86400
    for day in range(8):
        candidate = midnight + day * 86400 + hours * 3600 + minutes * 60 + seconds
        if candidate > now and datetime.fromtimestamp(candidate, UTC).weekday() in days:
            return candidate * TICKS_PER_SECOND
    raise AssertionError("unreachable: every daily type allows a day within a week")


def previous_run(schedule: Schedule, now_ticks: int) -> int:
    """The last scheduled start at or before `now_ticks` (ticks; whole seconds), as `next_run`
    finds the first after: found from ``now`` itself, whatever time has passed since any run."""
    now = now_ticks // TICKS_PER_SECOND
    if schedule.type == "Periodically":
        period = run_interval(schedule)
        candidate = now // period * period
        for _ in range(7 * 86400 // period + 1):
            if _in_window(schedule, candidate):
                break
            candidate -= period
        return candidate * TICKS_PER_SECOND
    hours, minutes, seconds = (int(part) for part in schedule.daily_time.split(":"))
    days = DAILY_TYPES.get(schedule.daily_type, DAILY_TYPES["Everyday"])
    midnight = now - now % 86400
    for day in range(8):
        candidate = midnight - day * 86400 + hours * 3600 + minutes * 60 + seconds
        if candidate <= now and datetime.fromtimestamp(candidate, UTC).weekday() in days:
            return candidate * TICKS_PER_SECOND
    raise AssertionError("unreachable: every daily type allows a day within a week")
