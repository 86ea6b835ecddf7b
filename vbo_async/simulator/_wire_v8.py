"""v8 (VB365 8.x) renderers (pure) and ``V8``, written as the difference from v7.

v8 pages every main collection (default ``limit`` 30, at most 10,000, no ``totalCount``),
removes ``GET /Organizations/{id}/Jobs`` (``_links.jobs`` becomes
``/v8/Jobs?organizationId=``), adds ``organizationId``/``eTag`` to jobs, ``jobId``,
``jobSessionConfigType``, ``eTag``, ``proxyId``, ``proxyPoolId`` to sessions, proxy pools and
state flags to repositories, load and maintenance figures to proxies (``threadsNumber``
goes), ``msid`` to organizations (and as a filter, with ``backedUpOrganizationId``), the
``status`` session filter, log items with a ``type`` and ``message`` instead of a ``title``
(and ``type`` and ``orderAsc`` filters),
``GET /Health``, a start
that answers 200 with the new session, logout answering 204, ISO 8601 token dates — and
the bug that makes a ``JobSessions`` page's ``next`` link name ``/v7/``.
"""

from __future__ import annotations

import attrs

from . import _wire_v6 as v6
from . import _wire_v7 as v7
from ._generate import StorageUsage
from ._records import JobSession, LogEntry, ObjectStore, Repository, Schedule
from ._views import CopyJobView, JobView, OrganizationView, ProxyView, Wire

__all__ = [
    "V8",
    "copy_job",
    "health",
    "job",
    "log_item",
    "organization",
    "proxy",
    "repository",
    "schedule_policy",
    "session",
    "used_repository",
]


def organization(view: OrganizationView, base: str) -> Wire:
    """v7 plus ``msid`` and ``backedUpOrganizationId``; ``jobs`` links to the filtered job list."""
    wire = v7.organization(view, base)
    wire = v6.insert_before(wire, "type", {"msid": view.org.msid, "backedUpOrganizationId": view.org.msid})
    wire["_links"]["jobs"] = v6.link(f"{base}/Jobs?organizationId={view.org.id}")
    return wire


def schedule_policy(schedule: Schedule) -> Wire:
    """As v7 (v8 only widens the ``periodicallyEvery`` enum with ``Hours12``)."""
    return v7.schedule_policy(schedule)


def job(view: JobView, base: str) -> Wire:
    """v7 plus ``organizationId`` and ``eTag``."""
    wire = v7.job(view, base)
    wire = v6.insert_before(wire, "repositoryId", {"organizationId": view.job.org_id})
    return v6.insert_before(wire, "_links", {"eTag": view.job.etag})


def copy_job(view: CopyJobView, base: str) -> Wire:
    """v6 plus ``organizationId``, ``lastBackup`` and ``eTag`` (the backup job's)."""
    wire = v6.copy_job(view, base)
    wire = v6.insert_before(wire, "repositoryId", {"organizationId": view.job.org_id})
    wire = v6.insert_before(wire, "lastRun", {"lastBackup": v6.stamp(view.last_backup)})
    return v6.insert_before(wire, "_links", {"eTag": view.job.etag})


def session(session_: JobSession, base: str) -> Wire:
    """v7 plus ``jobId``, ``jobSessionConfigType``, ``eTag``, ``proxyId`` and ``proxyPoolId``.

    A run on a pooled repository names both the pool and the member proxy that ran it.
    """
    wire = v7.session(session_, base)
    wire = v6.insert_before(wire, "repositoryId", {"jobId": session_.job_id})
    wire = v6.insert_before(
        wire, "status", {"jobSessionConfigType": "Full" if session_.full else "Incremental"}
    )
    return v6.insert_before(
        wire,
        "_links",
        {"eTag": session_.etag, "proxyId": session_.proxy_id, "proxyPoolId": session_.pool_id},
    )


def repository(record: Repository, base: str) -> Wire:
    """v6 plus ``proxyPoolId``, ``organizationId`` and the state flags.

    A repository in a proxy pool has ``proxyPoolId``, a null ``proxyId`` and no ``proxy`` link.
    An object storage repository holds its storage as ``objectStorage`` instead of v6's
    ``objectStorageId`` and ``objectStorageCachePath``.
    """
    wire = v6.repository(record, base)
    if record.pool_id is not None:
        wire["proxyId"] = None
        del wire["_links"]["proxy"]
    del wire["objectStorageId"]
    wire.pop("objectStorageCachePath", None)
    store = record.object_store
    return v6.insert_before(
        wire,
        "_links",
        {
            "proxyPoolId": record.pool_id,
            "organizationId": None,
            "isOutdated": False,
            "isIndexed": True,
            "isMigrationLocked": False,
            "isOutOfOrder": record.out_of_order is not None,
            "outOfOrderReason": record.out_of_order,
            **({} if store is None else {"objectStorage": object_storage(store, base)}),
        },
    )


def object_storage(store: ObjectStore, base: str) -> Wire:
    """v7's ``objectstoragerepositories`` entry as a repository's ``objectStorage``
    (``RESTObjectStorageComposed``): without its name, description and links, with
    ``immutabilityPeriodDays``."""
    wire = v7.object_storage(store, base)
    for key in ("name", "description", "_links"):
        del wire[key]
    wire["immutabilityPeriodDays"] = store.immutable_days
    return wire


def proxy(view: ProxyView, base: str) -> Wire:
    """v7 without ``threadsNumber`` (and without ``extendedView``), plus the v8 figures."""
    wire = v7.proxy(attrs.evolve(view, extended=True), base)
    del wire["threadsNumber"]
    record = view.proxy
    local = record.kind == "Local"
    return v6.insert_before(
        wire,
        "_links",
        {
            "operatingSystem": record.operating_system,
            "maintenanceModeState": record.maintenance,
            "cpuUsagePercent": record.cpu_percent,
            "memoryUsagePercent": record.memory_percent,
            "version": view.build,
            # The server's own proxy runs as the service's account and holds every role.
            "serviceAccount": None if local else f"LAB\\svc-{record.host_name.split('.')[0]}",
            "role": ["Orchestrator", "Scheduler", "Processor"] if local else ["Processor"],
            "proxyPoolId": None,
        },
    )


def used_repository(usage: StorageUsage, base: str) -> Wire:
    """v6 plus ``repositoryId`` and ``protectedObjectsCount``."""
    wire = {"repositoryId": usage.repository_id, **v6.used_repository(usage, base)}
    return v6.insert_before(wire, "_links", {"protectedObjectsCount": usage.protected_objects})


def log_item(entry: LogEntry, base: str) -> Wire:
    """v6's without ``title``, with ``type`` and ``message`` (v8 dropped the title)."""
    wire = v6.log_item(entry, base)
    del wire["title"]
    return v6.insert_before(wire, "_links", {"type": entry.kind, "message": entry.text})


def health() -> Wire:
    """Anonymous ``GET /v8/Health`` (``RESTHealthReport``; entry names as a real client reads them)."""
    return {
        "status": "Healthy",
        "entries": {"configurationDb": {"status": "Healthy"}, "nats": {"status": "Healthy"}},
    }


V8 = attrs.evolve(
    v7.V7,
    name="v8",
    build="8.5.0.1014",
    organization=organization,
    job=job,
    copy_job=copy_job,
    session=session,
    repository=repository,
    proxy=proxy,
    used_repository=used_repository,
    object_storage=None,  # removed in v8: a repository holds its ``objectStorage``
    log_item=log_item,
    token=v6.iso_token_dates,
    health=health,
    paged_collections=True,
    organization_jobs=False,
    job_filters=frozenset({"organizationId", "repositoryId"}),
    session_filters=v7.V7.session_filters | {"status"},
    repository_filters=v7.V7.repository_filters | {"proxyPoolId", "organizationId"},
    organization_filters=frozenset({"msid", "backedUpOrganizationId"}),
    directory_filters=v7.V7.directory_filters
    | {("users", "detectedSkuType"), ("sites", "includeSearchSites")},
    log_filters=frozenset({"type", "orderAsc"}),
    sessions_next_version="v7",
    proxy_extended_default=None,
    start_answers_session=True,
    logout_status=204,
)
"""VB365 8.0 to 8.5."""
