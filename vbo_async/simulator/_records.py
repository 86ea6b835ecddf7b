"""The simulator's internal state records (snake_case, mutable, no knowledge of the wire)."""

from __future__ import annotations

import attrs

__all__ = [
    "DirectoryItem",
    "Job",
    "JobSession",
    "License",
    "LogEntry",
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
    kind: str = "Domain"
    """``Local`` (the server itself), ``Domain`` or ``Workgroup`` (v6+ ``type``)."""
    operating_system: str = "Windows"
    maintenance: str = "Disabled"
    """v8 ``maintenanceModeState``: ``Disabled``, ``Enabling`` or ``Enabled``."""
    cpu_percent: float = 0.0
    memory_percent: float = 0.0


@attrs.frozen
class ObjectStore:
    """The object storage (a bucket or container) a repository keeps its backups in."""

    id: str
    name: str
    type: str
    """v8 ``RESTObjectStorageType``: ``AmazonS3``, ``AzureBlob``, ``WasabiCloud``..."""
    used: int
    limit_gb: int | None
    """The size limit in GB; None when it has none."""
    immutable_days: int | None
    """How long backups stay immutable; None when immutability is off."""


@attrs.define
class Repository:
    """A backup repository, owned by one proxy and shared by jobs of many organizations.

    A repository with a `pool_id` belongs to a proxy pool (a v8 notion): v8 shows the pool and
    no proxy; older versions, which know no pools, show `proxy_id`, the pool member it uses.
    """

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
    pool_id: str | None = None
    out_of_sync: bool = False
    snapshot_based: bool = False
    out_of_order: str | None = None
    """Why the server took the repository out of service (v8 ``isOutOfOrder`` and
    ``outOfOrderReason``); None while it is in order."""
    object_store: ObjectStore | None = None
    """Where the repository keeps its backups when it is an object storage repository (its
    `path` is then the local cache); None for a repository on disk."""


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


@attrs.frozen
class DirectoryItem:
    """A user, group, site or team of an organization (v6+ ``/Organizations/{id}/Users`` ...).

    `kind` is the collection's lower-case name (``users``, ``groups``, ``sites``, ``teams``);
    `address` is the mail address of a user, group or team and the URL of a site.
    """

    kind: str
    id: str
    org_id: str
    name: str
    display_name: str
    address: str


@attrs.define
class JobSession:
    """One run of a job. Times are ticks (see `_wireformat`); `end` is None while running.

    Statistics are numbers (bytes and items per second, bytes); v1 shows them as display
    strings, v6+ as integers. A retry of a failed run has `retry_count` > 0 and the id of the
    run it retries in `main_session_id`; the failed run then has `will_retry` set.
    """

    id: str
    job_id: str
    creation: int
    end: int | None
    status: str
    progress: int
    processing_bytes_ps: int
    processing_items_ps: int
    read_bytes_ps: int
    write_bytes_ps: int
    transferred_bytes: int
    processed_objects: int
    bottleneck: str
    offset_minutes: int | None
    repository_id: str = ""
    proxy_id: str = ""
    pool_id: str | None = None
    retry_count: int = 0
    main_session_id: str | None = None
    """The first run of a retry chain; None for a run that is not a retry (it is its own main)."""
    will_retry: bool = False
    full: bool = False
    """A full run (v8 ``jobSessionConfigType: Full``) rather than an incremental one."""
    etag: int = 1
    started_at: float | None = None
    """Simulator-clock reading when a live run started; None for generated history."""


@attrs.frozen
class LogEntry:
    """One line of a run's log (v6+ ``GET /JobSessions/{id}/LogItems``); times are ticks."""

    id: str
    usn: int
    creation: int
    end: int
    kind: str
    """v8 ``type``: ``Running``, ``Success``, ``Warning``, ``Error`` or ``Stop``."""
    text: str
    outcome: str | None = None
    """The run's status on the line saying how it ended (v6/v7 titles start ``[Success]``)."""


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
    etag: int = 1
    """v8 ``eTag``: a change counter, raised by every change of the job."""
    copy_job_id: str | None = None
    """The backup copy job of this job, if it has one (v6+ ``_links.copyJob``)."""
    runs: int = 0
    sessions: list[JobSession] | None = None
    mailbox_ids: list[str] | None = None
    excluded_ids: list[str] | None = None
    running: JobSession | None = None


@attrs.define
class Organization:
    """An Office 365 tenant; `last_backup` is derived from its jobs when written."""

    index: int
    id: str
    name: str
    username: str
    first_backup: int | None
    msid: str = ""
    """The Microsoft 365 tenant id (v8 ``msid``, ``backedUpOrganizationId``)."""
    application_id: str = ""
    sharepoint: bool = True
    teams: bool = True
    teams_chats: bool = False
    description: str = ""
    job_ids: list[str] = attrs.Factory(list)
    mailboxes: dict[str, Mailbox] | None = None
    directory: dict[str, list[DirectoryItem]] | None = None
    """Its users, groups, sites and teams by kind, made on first use (see `mailboxes`)."""


@attrs.frozen
class License:
    """The server's license (v6+ ``GET /License``); `used` is counted from the state when shown."""

    id: str
    email: str
    licensed_to: str
    contact: str
    support_id: str
    kind: str
    package: str
    total: int
    expires: int
    grace_expires: int
    support_expires: int
