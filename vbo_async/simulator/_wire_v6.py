"""v6 (VB365 6.x) renderers (pure) and ``V6``, written as the difference from v1.

What changes from v1: real JSON booleans, server-relative hrefs (``/v6/...``), timestamps in
UTC with 6 fractional digits, integer statistics, the v6 schemas' field names
(``backupType``, ``capacityBytes``, ``enableNetworkThrottling``...), the link names live
servers show, verb endpoints for job actions, page objects for job sessions, and null
properties left out (the GO6 captures; reference §5). Field names and enums follow the
vendor's OpenAPI file for v6. A session's ``log`` link names its ``LogItems`` (a page).
"""

from __future__ import annotations

from email.utils import parsedate_to_datetime

import attrs

from ._generate import StorageUsage
from ._records import (
    DirectoryItem,
    Job,
    JobSession,
    LogEntry,
    ObjectStore,
    Organization,
    Repository,
    Schedule,
)
from ._schedule import backup_window
from ._views import (
    CopyJobView,
    JobItemView,
    JobView,
    LicenseView,
    OrganizationView,
    ProxyView,
    ServerInfo,
    Wire,
)
from ._wire import V1
from ._wireformat import TICKS_PER_SECOND, format_bytes, format_rate, format_ticks

__all__ = [
    "V6",
    "copy_job",
    "directory_item",
    "insert_before",
    "job",
    "job_item",
    "license_",
    "link",
    "log_item",
    "organization",
    "proxy",
    "repository",
    "schedule_policy",
    "service_instance",
    "session",
    "stamp",
    "statistics",
    "used_repository",
]


def insert_before(wire: Wire, key: str, items: Wire) -> Wire:
    """`wire` with `items` inserted just before `key` (so later versions keep a natural key order)."""
    result: Wire = {}
    for name, value in wire.items():
        if name == key:
            result.update(items)
        result[name] = value
    return result


def link(href: str) -> dict[str, str]:
    """A HAL link."""
    return {"href": href}


def stamp(ticks: int | None, *, fraction: bool = True) -> str | None:
    """A v6+ timestamp: UTC, ``Z``, 6 fractional digits (none for scheduled times)."""
    return None if ticks is None else format_ticks(ticks, fraction=fraction, digits=6)


def organization_links(org: Organization, base: str) -> dict[str, dict[str, str]]:
    """The links of a v6 organization (reference §4: the set GO6 and SHT captured)."""
    href = f"{base}/Organizations/{org.id}"
    return {
        "self": link(href),
        "jobs": link(f"{href}/Jobs"),
        "groups": link(f"{href}/Groups"),
        "users": link(f"{href}/Users"),
        "sites": link(f"{href}/Sites"),
        "teams": link(f"{href}/Teams"),
        "usedRepositories": link(f"{href}/usedRepositories"),
        "rbacRoles": link(f"{href}/RbacRoles"),
    }


def _connection(org: Organization, *, sharepoint: bool) -> Wire:
    settings: Wire = {
        "useApplicationOnlyAuth": True,
        "applicationId": org.application_id,
        "officeOrganizationName": org.name,
        "grantAdminAccess": False,
        "useMfa": True,
    }
    if sharepoint:
        settings["sharePointSaveAllWebParts"] = False
    return settings


def organization(view: OrganizationView, base: str) -> Wire:
    """``GET /v6/Organizations/{id}`` (``RestOrganizationComposed``)."""
    org = view.org
    wire: Wire = {
        "id": org.id,
        "name": org.name,
        "officeName": org.name,
        "type": "Office365",
        "region": "Worldwide",
        "isExchangeOnline": True,
        "isSharePointOnline": org.sharepoint,
        "isTeamsOnline": org.teams,
        "isTeamsChatsOnline": org.teams_chats,
        "exchangeOnlineSettings": _connection(org, sharepoint=False),
        "sharePointOnlineSettings": _connection(org, sharepoint=True) if org.sharepoint else None,
    }
    if view.extended:
        backed_up = org.first_backup is not None
        wire["isBackedup"] = backed_up
        wire["firstBackuptime"] = stamp(org.first_backup)
        wire["lastBackuptime"] = stamp(view.last_backup if backed_up else None)
    wire["_links"] = organization_links(org, base)
    wire["_actions"] = {}
    return wire


def schedule_policy(schedule: Schedule) -> Wire:
    """``RESTJobSchedulePolicy`` as v6 has it (no ``periodicallyWindowEnabled`` yet).

    The job's window grid is the backup window (``backupWindowEnabled`` when it is not all
    hours); periodic jobs carry the same grid as their periodic window.
    """
    grid = {"backupWindow": backup_window(schedule.window), "minuteOffset": schedule.minute_offset}
    policy: Wire = {
        "type": schedule.type,
        "periodicallyEvery": schedule.periodically_every,
        "dailyType": schedule.daily_type,
        "dailyTime": schedule.daily_time,
        "scheduleEnabled": True,
        "backupWindowEnabled": schedule.window != "always",
        "backupWindowSettings": grid,
    }
    if schedule.type == "Periodically":
        policy["periodicallyWindowSettings"] = dict(grid)
        policy["periodicallyOffsetMinutes"] = 0
    policy["retryEnabled"] = schedule.retry_enabled
    policy["retryNumber"] = schedule.retry_number
    policy["retryWaitInterval"] = schedule.retry_wait
    return policy


def job_links(job: Job, base: str) -> dict[str, dict[str, str]]:
    """``self, organization, backupRepository, jobsessions, selectedItems, excludedItems``
    (+ ``copyJob``). ``jobsessions`` is written even by versions that do not serve it."""
    href = f"{base}/Jobs/{job.id}"
    links = {
        "self": link(href),
        "organization": link(f"{base}/Organizations/{job.org_id}"),
        "backupRepository": link(f"{base}/BackupRepositories/{job.repository_id}"),
        "jobsessions": link(f"{href}/jobsessions"),
        "selectedItems": link(f"{href}/selectedItems"),
        "excludedItems": link(f"{href}/excludedItems"),
    }
    if job.copy_job_id is not None:
        links["copyJob"] = link(f"{base}/CopyJobs/{job.copy_job_id}")
    return links


def job(view: JobView, base: str) -> Wire:
    """``GET /v6/Jobs/{id}`` (``RESTJob``; GET answers carry no selected/excluded items)."""
    record = view.job
    return {
        "description": record.description,
        "backupType": "EntireOrganization" if record.all_mailboxes else "SelectedItems",
        "schedulePolicy": schedule_policy(record.schedule),
        "id": record.id,
        "repositoryId": record.repository_id,
        "name": record.name,
        "lastRun": stamp(record.last_run),
        "nextRun": stamp(record.next_run, fraction=False),
        "isEnabled": record.enabled,
        "lastStatus": record.last_status,
        "_links": job_links(record, base),
    }


def copy_job(view: CopyJobView, base: str) -> Wire:
    """``GET /v6/CopyJobs/{id}`` (``RESTCopyJob``): an immediate copy of the backup job's
    restore points to another repository, enabled as the backup job is, last run with it."""
    record = view.job
    ran = view.last_backup is not None
    return {
        "id": view.id,
        "name": f"{record.name} (copy)",
        "backupJobId": record.id,
        "repositoryId": view.repository_id,
        "isEnabled": record.enabled,
        "lastRun": stamp(view.last_backup),
        "lastStatus": "Success" if ran else "NotConfigured",
        "schedulePolicy": {"type": "Immediate", "backupCopyWindowEnabled": False},
        "_links": {"self": link(f"{base}/CopyJobs/{view.id}")},
    }


def statistics(session_: JobSession) -> Wire:
    """``RESTJobStatistics``: integers from v6 on."""
    return {
        "processingRateBytesPS": session_.processing_bytes_ps,
        "processingRateItemsPS": session_.processing_items_ps,
        "readRateBytesPS": session_.read_bytes_ps,
        "writeRateBytesPS": session_.write_bytes_ps,
        "transferredDataBytes": session_.transferred_bytes,
        "processedObjects": session_.processed_objects,
        "bottleneck": session_.bottleneck,
    }


def _details(session_: JobSession) -> str:
    return (
        f"Transferred: {format_bytes(session_.transferred_bytes)} ({session_.processed_objects} items)"
        f" at {format_rate(session_.processing_bytes_ps, session_.processing_items_ps)}"
    )


def session(session_: JobSession, base: str) -> Wire:
    """``GET /v6/JobSessions/{id}`` (``RESTJobSession``)."""
    href = f"{base}/JobSessions/{session_.id}"
    return {
        "id": session_.id,
        "details": _details(session_),
        "creationTime": stamp(session_.creation),
        "endTime": stamp(session_.end),
        "retryCount": session_.retry_count,
        "progress": session_.progress,
        "status": session_.status,
        "statistics": statistics(session_),
        "_links": {
            "self": link(href),
            "log": link(f"{href}/LogItems"),
            "job": link(f"{base}/Jobs/{session_.job_id}"),
        },
    }


def log_item(entry: LogEntry, base: str) -> Wire:
    """An item of ``GET /v6/JobSessions/{id}/LogItems`` (``RESTLogItem``: a ``title``; the line
    saying how the run ended starts with its status in brackets, ``[Success]``, which v6
    scripts parse). The item's own ``_links`` is empty."""
    title = entry.text if entry.outcome is None else f"[{entry.outcome}] {entry.text}"
    return {
        "id": entry.id,
        "usn": entry.usn,
        "title": title,
        "creationTime": stamp(entry.creation),
        "endTime": stamp(entry.end),
        "_links": {},
    }


def repository(record: Repository, base: str) -> Wire:
    """``GET /v6/BackupRepositories/{id}`` (``RESTBackupRepository``).

    A repository in a proxy pool shows the pool member it uses as ``proxyId`` (v6 knows no
    pools); its ``proxy`` link points there. An object storage repository names its storage by
    ``objectStorageId``, its ``path`` being the local cache (``objectStorageCachePath``).
    """
    return {
        "id": record.id,
        "name": record.name,
        "description": record.description,
        "path": record.path,
        "proxyId": record.proxy_id,
        "capacityBytes": record.capacity,
        "freeSpaceBytes": record.free_space,
        "retentionType": "SnapshotBased" if record.snapshot_based else "ItemLevel",
        "retentionPeriodType": "Daily",
        "dailyRetentionPeriod": record.retention_days,
        "retentionFrequencyType": "Daily",
        "dailyTime": record.daily_time,
        "dailyType": record.daily_type,
        "isLongTerm": False,
        "isOutOfSync": record.out_of_sync,
        "objectStorageId": None if record.object_store is None else record.object_store.id,
        **({} if record.object_store is None else {"objectStorageCachePath": record.path}),
        "objectStorageEncryptionEnabled": False,
        "_links": {
            "self": link(f"{base}/BackupRepositories/{record.id}"),
            "proxy": link(f"{base}/Proxies/{record.proxy_id}"),
        },
    }


def object_storage(store: ObjectStore, base: str) -> Wire:
    """``GET /v6/objectstoragerepositories/{id}`` (``RESTObjectStorageRepositoryComposed``: its
    usage and limit; the bucket or container objects left out), the object storage a
    repository names by ``objectStorageId``."""
    return {
        "id": store.id,
        "name": store.name,
        "description": "",
        "type": store.type,
        "usedSpaceBytes": store.used,
        "freeSpaceBytes": None if store.limit_gb is None else max(store.limit_gb * 1024**3 - store.used, 0),
        "sizeLimitEnabled": store.limit_gb is not None,
        "sizeLimitGB": store.limit_gb,
        "_links": {"self": link(f"{base}/objectstoragerepositories/{store.id}")},
    }


def proxy(view: ProxyView, base: str) -> Wire:
    """``GET /v6/Proxies/{id}`` (``RESTProxy``); ``extendedView=false`` hides thread and throttling
    figures. ``repositories`` links to the repositories filtered by this proxy."""
    record = view.proxy
    wire: Wire = {
        "id": record.id,
        "hostName": record.host_name,
        "description": record.description,
        "port": record.port,
    }
    if view.extended:
        wire["threadsNumber"] = record.threads
    wire["enableNetworkThrottling"] = record.throttling
    if view.extended:
        wire["throttlingValue"] = record.throttling_value
        wire["throttlingUnit"] = record.throttling_unit
    wire["status"] = record.status
    wire["type"] = record.kind
    wire["useInternetProxy"] = False
    wire["_links"] = {
        "self": link(f"{base}/Proxies/{record.id}"),
        "repositories": link(f"{base}/BackupRepositories?proxyId={record.id}"),
    }
    return wire


def job_item(view: JobItemView, base: str) -> Wire:
    """A ``RESTJobItemComposed`` row for a mailbox: ``type: User`` with a ``user`` object.

    The row id joins the job's and the user's ids (72 characters, as v3 examples show: not a
    GUID); the row's own ``_links`` is empty, the user's points at the organization's user.
    """
    mailbox = view.mailbox
    return {
        "id": f"{view.job_id}{mailbox.id}",
        "type": "User",
        "user": {
            "id": mailbox.id,
            "displayName": mailbox.name,
            "name": mailbox.email,
            "type": "User",
            "locationType": "Cloud",
            "_links": {"self": link(f"{base}/Organizations/{mailbox.org_id}/Users/{mailbox.id}")},
        },
        "mailbox": True,
        "archiveMailbox": False,
        "oneDrive": False,
        "personalSite": False,
        "_links": {},
    }


def used_repository(usage: StorageUsage, base: str) -> Wire:
    """An item of ``GET /v6/Organizations/{id}/usedRepositories``."""
    return {
        "usedSpaceBytes": usage.used_bytes,
        "localCacheUsedSpaceBytes": usage.local_cache_bytes,
        "objectStorageUsedSpaceBytes": None,
        "isAvailable": True,
        "details": "",
        "_links": {"backupRepository": link(f"{base}/BackupRepositories/{usage.repository_id}")},
    }


def directory_item(item: DirectoryItem, base: str) -> Wire:
    """An item of ``GET /v6/Organizations/{id}/Users`` (``RESTUser``), ``Groups`` (``RESTGroup``),
    ``Sites`` (``RESTSite``) or ``Teams`` (``RESTTeam``), linking to itself."""
    wire: Wire = {"id": item.id}
    if item.kind == "users":
        wire |= {"displayName": item.display_name, "name": item.name, "type": "User", "locationType": "Cloud"}
    elif item.kind == "groups":
        wire |= {
            "displayName": item.display_name,
            "name": item.name,
            "type": "Office365",
            "locationType": "Cloud",
        }
    elif item.kind == "sites":
        wire |= {"url": item.address, "title": item.display_name, "name": item.name}
        wire |= {"isCloud": True, "isPersonal": False, "isAvailable": True}
    else:
        wire |= {"displayName": item.display_name, "mail": item.address, "description": ""}
    collection = item.kind.capitalize()
    wire["_links"] = {"self": link(f"{base}/Organizations/{item.org_id}/{collection}/{item.id}")}
    return wire


def license_(view: LicenseView) -> Wire:
    """``GET /v6/License`` (``RESTLicense``: ``expirationDate``, ``contactPerson``...)."""
    record = view.license
    return {
        "licenseID": record.id,
        "email": record.email,
        "status": "Valid",
        "expirationDate": stamp(record.expires, fraction=False),
        "type": record.kind,
        "licensedTo": record.licensed_to,
        "contactPerson": record.contact,
        "totalNumber": record.total,
        "usedNumber": view.used,
        "newNumber": 0,
        "supportID": record.support_id,
        "supportExpirationDate": stamp(record.support_expires, fraction=False),
    }


def service_instance(info: ServerInfo) -> Wire:
    """``GET /vN/ServiceInstance``."""
    return {"installationId": info.installation_id, "version": info.build}


def iso_token_dates(body: Wire) -> Wire:
    """A token answer with ``.issued``/``.expires`` as ISO 8601 instead of RFC 1123."""
    rewritten = dict(body)
    for key in (".issued", ".expires"):
        moment = parsedate_to_datetime(str(body[key]))
        ticks = int(moment.timestamp()) * TICKS_PER_SECOND
        rewritten[key] = format_ticks(ticks, digits=6)
    return rewritten


V6 = attrs.evolve(
    V1,
    name="v6",
    build="6.0.0.367",
    absolute_links=False,
    organization=organization,
    job=job,
    session=session,
    repository=repository,
    proxy=proxy,
    token=dict,
    job_item=job_item,
    used_repository=used_repository,
    license=license_,
    service_instance=service_instance,
    log_item=log_item,
    directory_item=directory_item,
    copy_job=copy_job,
    object_storage=object_storage,
    paged_sessions=True,
    paged_collections=False,
    organization_jobs=True,
    rbac_roles=True,
    job_sessions=True,
    session_filters=frozenset({"jobType", "endTimeLowerBound"}),
    repository_filters=frozenset({"proxyId", "longTerm"}),
    directory_filters=frozenset(
        {
            *(("users", name) for name in ("setId", "userName", "displayName", "locationFilter")),
            *(("groups", name) for name in ("setId", "displayName", "groupName", "locationFilter")),
            *(("sites", name) for name in ("setId", "includePersonalSites", "parentId", "locationFilter")),
            *(("teams", name) for name in ("setId", "displayName")),
        }
    ),
    organization_extended_default=True,
    proxy_extended_default=True,
    omit_nulls=True,
    verb_actions=True,
    token_throttle=True,
    empty_unauthorized=True,
)
"""VB365 6.x: arrays for the main collections, pages for sessions, verb actions, no logout."""
