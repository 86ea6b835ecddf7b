"""Records to v1 wire dicts (pure): field names, string booleans and absolute hrefs as v1 sends them.

Ends with ``V1``, the v1 `ApiVersion` that v6 is written against.
"""

from __future__ import annotations

from ._records import Job, JobSession, LogEntry, Mailbox, Organization, Proxy, Repository
from ._schedule import backup_window
from ._version import ApiVersion
from ._views import Wire
from ._wireformat import format_bytes, format_rate, format_ticks, str_bool

__all__ = [
    "V1",
    "Wire",
    "job_wire",
    "log_item_wire",
    "mailbox_wire",
    "organization_wire",
    "proxy_wire",
    "repository_wire",
    "session_wire",
]


def _link(href: str) -> dict[str, str]:
    return {"href": href}


def _ticks(value: int | None, *, offset_minutes: int | None = None) -> str | None:
    return None if value is None else format_ticks(value, offset_minutes=offset_minutes)


def organization_wire(org: Organization, base: str, last_backup: int | None) -> Wire:
    """``GET /v1/Organizations/{id}``."""
    self_href = f"{base}/Organizations/{org.id}"
    return {
        "type": "Office365",
        "username": org.username,
        "region": "worldwide",
        "id": org.id,
        "name": org.name,
        "isBackedup": str_bool(org.first_backup is not None),
        "firstBackuptime": _ticks(org.first_backup),
        "lastBackuptime": _ticks(last_backup if org.first_backup is not None else None),
        "_links": {
            "self": _link(self_href),
            "jobs": _link(f"{self_href}/Jobs"),
            "mailboxes": _link(f"{self_href}/Mailboxes"),
        },
    }


def job_wire(job: Job, base: str) -> Wire:
    """``GET /v1/Jobs/{id}``, shaped exactly like the v1 seed job."""
    schedule = job.schedule
    self_href = f"{base}/Jobs/{job.id}"
    return {
        "id": job.id,
        "name": job.name,
        "description": job.description,
        "allMailboxes": str_bool(job.all_mailboxes),
        "lastStatus": job.last_status,
        "lastRun": _ticks(job.last_run),
        "nextRun": None if job.next_run is None else format_ticks(job.next_run, fraction=False),
        "isEnabled": str_bool(job.enabled),
        "schedulePolicy": {
            "type": schedule.type,
            "periodicallyEvery": schedule.periodically_every,
            "dailyType": schedule.daily_type,
            "dailyTime": schedule.daily_time,
            "backupWindow": {
                "backupIntervalsArray": backup_window(schedule.window),
                "minuteOffset": schedule.minute_offset,
            },
            "retryEnabled": str_bool(schedule.retry_enabled),
            "retryNumber": schedule.retry_number,
            "retryWaitInterval": schedule.retry_wait,
        },
        "_links": {
            "self": _link(self_href),
            "organization": _link(f"{base}/Organizations/{job.org_id}"),
            "repository": _link(f"{base}/BackupRepositories/{job.repository_id}"),
            "proxy": _link(f"{base}/Proxies/{job.proxy_id}"),
            "selectedMailboxes": _link(f"{self_href}/SelectedMailboxes"),
            "jobsessions": _link(f"{self_href}/JobSessions"),
        },
    }


def session_wire(session: JobSession, base: str) -> Wire:
    """``GET /v1/JobSessions/{id}`` (v1: statistics are display strings)."""
    self_href = f"{base}/JobSessions/{session.id}"
    return {
        "id": session.id,
        "creationTime": _ticks(session.creation, offset_minutes=session.offset_minutes),
        "endTime": _ticks(session.end, offset_minutes=session.offset_minutes),
        "progress": session.progress,
        "status": session.status,
        "statistics": {
            "processingRate": format_rate(session.processing_bytes_ps, session.processing_items_ps),
            "readRate": format_rate(session.read_bytes_ps),
            "writeRate": format_rate(session.write_bytes_ps),
            "transferredData": format_bytes(session.transferred_bytes),
            "processedObjects": session.processed_objects,
            "bottleneck": session.bottleneck,
        },
        "_links": {
            "self": _link(self_href),
            "log": _link(f"{self_href}/log"),
            "job": _link(f"{base}/Jobs/{session.job_id}"),
        },
    }


def log_item_wire(entry: LogEntry, base: str) -> Wire:
    """An item of ``GET /v1/JobSessions/{id}/log``, the session's ``log`` link (a bare array: the
    v1 shape is UNCONFIRMED, vbo-api.md §3; written as v6's ``RESTLogItem`` without links)."""
    title = entry.text if entry.outcome is None else f"[{entry.outcome}] {entry.text}"
    return {
        "id": entry.id,
        "usn": entry.usn,
        "title": title,
        "creationTime": _ticks(entry.creation),
        "endTime": _ticks(entry.end),
    }


def repository_wire(repository: Repository, base: str) -> Wire:
    """``GET /v1/BackupRepositories/{id}`` (``dailyRetentionPeriod`` is a string in v1)."""
    return {
        "id": repository.id,
        "name": repository.name,
        "description": repository.description,
        "proxyId": repository.proxy_id,
        "path": repository.path,
        "retentionPeriodType": "Daily",
        "dailyRetentionPeriod": str(repository.retention_days),
        "retentionFrequencyType": "Daily",
        "dailyTime": repository.daily_time,
        "dailyType": repository.daily_type,
        "capacity": repository.capacity,
        "freeSpace": repository.free_space,
        "_links": {
            "self": _link(f"{base}/BackupRepositories/{repository.id}"),
            "proxy": _link(f"{base}/Proxies/{repository.proxy_id}"),
        },
    }


def proxy_wire(proxy: Proxy, base: str) -> Wire:
    """``GET /v1/Proxies/{id}`` (note ``enableNetworkthrottling`` with a lower-case t)."""
    self_href = f"{base}/Proxies/{proxy.id}"
    return {
        "id": proxy.id,
        "hostName": proxy.host_name,
        "description": proxy.description,
        "port": proxy.port,
        "threadsNumber": proxy.threads,
        "enableNetworkthrottling": str_bool(proxy.throttling),
        "throttlingValue": proxy.throttling_value,
        "throttlingUnit": proxy.throttling_unit,
        "status": proxy.status,
        "_links": {"self": _link(self_href), "repositories": _link(f"{self_href}/repositories")},
    }


def mailbox_wire(mailbox: Mailbox, base: str) -> Wire:
    """An item of ``GET /v1/Jobs/{id}/SelectedMailboxes`` (and an organization's mailbox)."""
    org_href = f"{base}/Organizations/{mailbox.org_id}"
    return {
        "id": mailbox.id,
        "email": mailbox.email,
        "name": mailbox.name,
        "isBackedUp": str_bool(mailbox.backed_up),
        "_links": {
            "self": _link(f"{org_href}/Mailboxes/{mailbox.id}"),
            "organization": _link(org_href),
        },
    }


V1 = ApiVersion(
    name="v1",
    build="1.5.0.1099",
    absolute_links=True,
    organization=lambda view, base: organization_wire(view.org, base, view.last_backup),
    job=lambda view, base: job_wire(view.job, base),
    session=session_wire,
    repository=repository_wire,
    proxy=lambda view, base: proxy_wire(view.proxy, base),
    token=dict,
    log_item=log_item_wire,
)
"""VBO 1.5: bare arrays, string booleans, absolute hrefs, ``/Jobs/{id}/Action``."""
