"""The v1 resource graph as frozen attrs classes (no JSON knowledge here).

Field names are the wire names in snake_case (``allMailboxes`` -> ``all_mailboxes``); the converter
in `_convert` maps them. Everything but ``id`` may be ``None``: real servers send ``null`` for
values that are usually present. Each resource carries its ``links`` (the wire ``_links``).
"""

from __future__ import annotations

import datetime as dt

import attrs

from ._enums import Bottleneck, DailyType, JobStatus, PeriodicallyEvery, ProxyStatus, ScheduleType
from ._links import CollectionLink, Link

__all__ = [
    "BackupRepository",
    "BackupRepositoryLinks",
    "BackupWindow",
    "Job",
    "JobLinks",
    "JobSession",
    "JobSessionLinks",
    "JobSessionStatistics",
    "Organization",
    "OrganizationLinks",
    "Proxy",
    "ProxyLinks",
    "SchedulePolicy",
    "SelectedMailbox",
    "SelectedMailboxLinks",
]


def _hours(flags: tuple[bool, ...]) -> str:
    return f"<{sum(flags)} of {len(flags)} hours allowed>"


@attrs.frozen
class BackupWindow:
    """When backups may run: ``backup_intervals_array`` has one flag per hour of the week
    (168 = 7 days x 24 hours, Sunday first; index = day * 24 + hour)."""

    backup_intervals_array: tuple[bool, ...] = attrs.field(default=(), repr=_hours)
    minute_offset: int | None = None

    def allows(self, day: int, hour: int) -> bool:
        """Whether backups may run in ``hour`` (0-23) of ``day`` (0 = Sunday)."""
        index = day * 24 + hour
        return 0 <= index < len(self.backup_intervals_array) and self.backup_intervals_array[index]


@attrs.frozen
class SchedulePolicy:
    """A job's ``schedulePolicy``; ``daily_time`` is the wire ``HH:MM:SS`` as a `datetime.time`."""

    type: ScheduleType | None = None
    periodically_every: PeriodicallyEvery | None = None
    daily_type: DailyType | None = None
    daily_time: dt.time | None = None
    backup_window: BackupWindow | None = None
    retry_enabled: bool | None = None
    retry_number: int | None = None
    retry_wait_interval: int | None = None


@attrs.frozen
class OrganizationLinks:
    """``_links`` of an organization."""

    self: Link[Organization] | None = attrs.field(default=None, alias="self_")
    jobs: CollectionLink[Job] | None = None
    mailboxes: CollectionLink[SelectedMailbox] | None = None


@attrs.frozen
class Organization:
    """A tenant (``/v1/Organizations/{id}``)."""

    id: str
    name: str | None = None
    type: str | None = None
    username: str | None = None
    region: str | None = None
    is_backedup: bool | None = None
    first_backuptime: dt.datetime | None = None
    last_backuptime: dt.datetime | None = None
    links: OrganizationLinks = attrs.Factory(OrganizationLinks)


@attrs.frozen
class BackupRepositoryLinks:
    """``_links`` of a backup repository."""

    self: Link[BackupRepository] | None = attrs.field(default=None, alias="self_")
    proxy: Link[Proxy] | None = None


@attrs.frozen
class BackupRepository:
    """A backup repository (``/v1/BackupRepositories/{id}``); ``capacity``/``free_space`` in bytes."""

    id: str
    name: str | None = None
    description: str | None = None
    proxy_id: str | None = None
    path: str | None = None
    retention_period_type: str | None = None
    daily_retention_period: int | None = None
    retention_frequency_type: str | None = None
    daily_time: dt.time | None = None
    daily_type: DailyType | None = None
    capacity: int | None = None
    free_space: int | None = None
    links: BackupRepositoryLinks = attrs.Factory(BackupRepositoryLinks)


@attrs.frozen
class ProxyLinks:
    """``_links`` of a backup proxy."""

    self: Link[Proxy] | None = attrs.field(default=None, alias="self_")
    repositories: CollectionLink[BackupRepository] | None = None


@attrs.frozen
class Proxy:
    """A backup proxy (``/v1/Proxies/{id}``).

    ``enable_network_throttling`` reads the v1 spelling ``enableNetworkthrottling`` and the later
    ``enableNetworkThrottling``.
    """

    id: str
    host_name: str | None = None
    description: str | None = None
    port: int | None = None
    threads_number: int | None = None
    enable_network_throttling: bool | None = None
    throttling_value: int | None = None
    throttling_unit: str | None = None
    status: ProxyStatus | None = None
    links: ProxyLinks = attrs.Factory(ProxyLinks)


@attrs.frozen
class JobSessionStatistics:
    """``statistics`` of a v1 job session; the rates are the server's display strings."""

    processing_rate: str | None = None
    read_rate: str | None = None
    write_rate: str | None = None
    transferred_data: str | None = None
    processed_objects: int | None = None
    bottleneck: Bottleneck | None = None


@attrs.frozen
class JobSessionLinks:
    """``_links`` of a job session; ``log`` is followed as raw JSON."""

    self: Link[JobSession] | None = attrs.field(default=None, alias="self_")
    log: Link[object] | None = None
    job: Link[Job] | None = None


@attrs.frozen
class JobSession:
    """One run of a job (``/v1/JobSessions/{id}``)."""

    id: str
    creation_time: dt.datetime | None = None
    end_time: dt.datetime | None = None
    progress: int | None = None
    status: JobStatus | None = None
    statistics: JobSessionStatistics | None = None
    links: JobSessionLinks = attrs.Factory(JobSessionLinks)


@attrs.frozen
class SelectedMailboxLinks:
    """``_links`` of a selected mailbox (``self`` names the organization's mailbox)."""

    self: Link[SelectedMailbox] | None = attrs.field(default=None, alias="self_")
    organization: Link[Organization] | None = None


@attrs.frozen
class SelectedMailbox:
    """A mailbox a job backs up (``/v1/Jobs/{id}/SelectedMailboxes``)."""

    id: str
    email: str | None = None
    name: str | None = None
    is_backed_up: bool | None = None
    links: SelectedMailboxLinks = attrs.Factory(SelectedMailboxLinks)


@attrs.frozen
class JobLinks:
    """``_links`` of a job: each an awaitable link, ``None`` when the server did not send it."""

    self: Link[Job] | None = attrs.field(default=None, alias="self_")
    organization: Link[Organization] | None = None
    repository: Link[BackupRepository] | None = None
    proxy: Link[Proxy] | None = None
    selected_mailboxes: CollectionLink[SelectedMailbox] | None = None
    jobsessions: CollectionLink[JobSession] | None = None


@attrs.frozen
class Job:
    """A backup job (``/v1/Jobs/{id}``), as listed by ``/v1/Organizations/{id}/Jobs``.

    ``selected_mailboxes``/``excluded_mailboxes``, ``proxy_id``, ``repository_id`` and ``is_run``
    are in the v1 property table but usually absent from GET answers (then ``None``).
    """

    id: str
    name: str | None = None
    description: str | None = None
    all_mailboxes: bool | None = None
    last_status: JobStatus | None = None
    last_run: dt.datetime | None = None
    next_run: dt.datetime | None = None
    is_enabled: bool | None = None
    schedule_policy: SchedulePolicy | None = None
    proxy_id: str | None = None
    repository_id: str | None = None
    is_run: bool | None = None
    selected_mailboxes: tuple[SelectedMailbox, ...] | None = None
    excluded_mailboxes: tuple[SelectedMailbox, ...] | None = None
    links: JobLinks = attrs.Factory(JobLinks)
