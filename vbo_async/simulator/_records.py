"""The simulator's internal state records (snake_case, mutable, no knowledge of the wire)."""

from __future__ import annotations

import attrs

__all__ = [
    "Job",
    "JobSession",
    "Mailbox",
    "Organization",
    "Proxy",
    "Repository",
    "Schedule",
]


@attrs.define
class Proxy:
    """A backup proxy server."""

    id: str
    host_name: str
    description: str
    port: int
    threads: int
    throttling: bool
    throttling_value: int
    throttling_unit: str
    status: str


@attrs.define
class Repository:
    """A backup repository, owned by one proxy and shared by jobs of many organizations."""

    id: str
    name: str
    description: str
    proxy_id: str
    path: str
    retention_days: int
    daily_time: str
    daily_type: str
    capacity: int
    free_space: int


@attrs.frozen
class Schedule:
    """A job's schedule policy; `window` names a backup-window pattern (see `_schedule`)."""

    type: str
    periodically_every: str
    daily_type: str
    daily_time: str
    window: str
    minute_offset: int
    retry_enabled: bool
    retry_number: int
    retry_wait: int


@attrs.define
class Mailbox:
    """A mailbox of an organization (what a job's SelectedMailboxes list points at)."""

    id: str
    org_id: str
    email: str
    name: str
    backed_up: bool


@attrs.define
class JobSession:
    """One run of a job. Times are ticks (see `_wireformat`); `end` is None while running."""

    id: str
    job_id: str
    creation: int
    end: int | None
    status: str
    progress: int
    processing_rate: str
    read_rate: str
    write_rate: str
    transferred: str
    processed_objects: int
    bottleneck: str
    offset_minutes: int | None
    started_at: float | None = None
    """Simulator-clock reading when a live run started; None for generated history."""


@attrs.define
class Job:
    """A backup job; sessions and selected mailboxes are generated lazily on first use."""

    index: int
    id: str
    org_id: str
    name: str
    description: str
    all_mailboxes: bool
    last_status: str
    last_run: int | None
    next_run: int | None
    enabled: bool
    schedule: Schedule
    repository_id: str
    proxy_id: str
    offset_minutes: int | None
    runs: int = 0
    sessions: list[JobSession] | None = None
    mailbox_ids: list[str] | None = None
    running: JobSession | None = None


@attrs.define
class Organization:
    """An Office 365 tenant; `last_backup` is derived from its jobs when written."""

    index: int
    id: str
    name: str
    username: str
    first_backup: int | None
    job_ids: list[str] = attrs.Factory(list)
    mailboxes: dict[str, Mailbox] | None = None
