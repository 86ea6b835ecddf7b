"""Open string enums for the status-like fields the server sends.

Servers grow these sets between versions (``lastStatus`` gained ``Queued`` in v6), so an unknown
wire value never fails: it decodes to a pseudo-member that compares equal to the wire string and
reports ``is_known == False``. Nothing is registered on the class, so no state is shared.
"""

from __future__ import annotations

import enum
from typing import Self

__all__ = [
    "Bottleneck",
    "DailyType",
    "JobStatus",
    "OpenEnum",
    "PeriodicallyEvery",
    "ProxyStatus",
    "ScheduleType",
]


class OpenEnum(enum.StrEnum):
    """A `StrEnum` that accepts values it does not know (see the module docstring)."""

    @classmethod
    def _missing_(cls, value: object) -> Self | None:
        if not isinstance(value, str):
            return None
        pseudo = str.__new__(cls, value)
        pseudo._name_ = value
        pseudo._value_ = value
        return pseudo

    @property
    def is_known(self) -> bool:
        """False for a value this version of vbo-async does not know."""
        return self._name_ in type(self).__members__


class JobStatus(OpenEnum):
    """``lastStatus`` of a job and ``status`` of a job session."""

    STOPPED = "Stopped"
    RUNNING = "Running"
    SUCCESS = "Success"
    WARNING = "Warning"
    FAILED = "Failed"
    NOT_CONFIGURED = "NotConfigured"
    DISCONNECTED = "Disconnected"
    QUEUED = "Queued"


class ScheduleType(OpenEnum):
    """``schedulePolicy.type``."""

    PERIODICALLY = "Periodically"
    DAILY = "Daily"
    MANUAL_ONLY = "ManualOnly"


class PeriodicallyEvery(OpenEnum):
    """``schedulePolicy.periodicallyEvery``."""

    MINUTES5 = "Minutes5"
    MINUTES10 = "Minutes10"
    MINUTES15 = "Minutes15"
    MINUTES30 = "Minutes30"
    HOURS1 = "Hours1"
    HOURS2 = "Hours2"
    HOURS4 = "Hours4"
    HOURS8 = "Hours8"
    HOURS12 = "Hours12"


class DailyType(OpenEnum):
    """``schedulePolicy.dailyType`` and a repository's ``dailyType``."""

    EVERYDAY = "Everyday"
    WORKDAYS = "Workdays"
    WEEKENDS = "Weekends"
    MONDAY = "Monday"
    TUESDAY = "Tuesday"
    WEDNESDAY = "Wednesday"
    THURSDAY = "Thursday"
    FRIDAY = "Friday"
    SATURDAY = "Saturday"
    SUNDAY = "Sunday"


class Bottleneck(OpenEnum):
    """``statistics.bottleneck`` of a job session."""

    NA = "NA"
    DETECTING = "Detecting"
    SOURCE = "Source"
    TARGET = "Target"


class ProxyStatus(OpenEnum):
    """``status`` of a backup proxy."""

    ONLINE = "Online"
    OFFLINE = "Offline"
