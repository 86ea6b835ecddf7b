"""API v6 (VB365 6.x, 2022): the v2-v5 changes plus what 6.0 added, written against v1.

Server-relative hrefs (``/v6/...``), real booleans, ``backupRepository`` instead of
``repository``, no proxy link on jobs, ``backupWindowSettings.backupWindow``, byte counts for
repositories and sessions, ``POST Jobs/{id}/start`` and friends, lists paged up to 10,000,
``GET License`` (``expirationDate``...) and ``GET Organizations/{id}/usedRepositories``.
``/Jobs/{id}/JobSessions`` still works; ``/JobSessions`` ignores ``jobId``; a proxy's
repositories are ``/BackupRepositories?proxyId=`` (``/Proxies/{id}/repositories`` is gone).
"""

from __future__ import annotations

from .. import _models as m
from ._base import IdFromLink, LinkFromId, LinkThrough, Route
from .v1 import V1

__all__ = ["EXTENDED", "V6"]

EXTENDED = (("extendedView", "true"),)
"""The query asking for an organization's (v6+) or a proxy's (v7) whole view: v6 shows it by
default, yet its API file marks the parameter required on its organization routes."""

V6 = V1.evolve(
    version="v6",
    paths={
        "organizations": Route("Organizations", query=EXTENDED),
        "organization": Route("Organizations/{organization}", query=EXTENDED),
        "job_action": None,
        "job_start": Route("Jobs/{job}/start"),
        "job_stop": Route("Jobs/{job}/stop"),
        "job_enable": Route("Jobs/{job}/enable"),
        "job_disable": Route("Jobs/{job}/disable"),
        "service_instance": Route("ServiceInstance"),
        # Every job's sessions ended since a moment, server-wide (a sweep's health in one listing).
        "sessions_since": Route("JobSessions", query=(("endTimeLowerBound", "{since}"),)),
        "job_selected_items": Route("Jobs/{job}/SelectedItems"),
        "job_excluded_items": Route("Jobs/{job}/ExcludedItems"),
        "license": Route("License"),
        "organization_used_repositories": Route("Organizations/{organization}/usedRepositories"),
        # The object storage a repository names by objectStorageId (v8 holds it in the repository).
        "object_storage": Route("objectstoragerepositories/{storage}"),
    },
    names={
        m.SchedulePolicy: {
            "backup_window": ("backupWindowSettings",),
            "periodically_window": ("periodicallyWindowSettings",),
        },
        m.BackupWindow: {"backup_intervals_array": ("backupWindow",)},
        m.BackupRepository: {"capacity": ("capacityBytes",), "free_space": ("freeSpaceBytes",)},
        m.Proxy: {"enable_network_throttling": ("enableNetworkThrottling",)},
        m.JobLinks: {"repository": ("backupRepository",), "proxy": (), "selected_mailboxes": ()},
        m.License: {
            "license_id": ("licenseID",),
            "support_id": ("supportID",),
            "license_expires": ("expirationDate",),
            "support_expires": ("supportExpirationDate",),
            "grace_period_expires": (),
            "package": (),
        },
        # v6 and v7 name a row's repository only in its backupRepository link (derived below;
        # read and written under v8's name all the same: ``off_wire``).
        m.UsedRepository: {"repository_id": ("repositoryId",), "protected_objects_count": ()},
        # No v6/v7 server sends a session's job id (v8's ``jobId``): it comes from the ``job``
        # link or the request that listed the session. Read and written under v8's name all the
        # same, so ``to_wire`` keeps an id known only from the request (``from_wire`` round trip),
        # but not when the session's ``job`` link names it (``off_wire``): v6/v7 have no jobId.
        m.JobSession: {"job_id": ("jobId",)},
    },
    # What v6/v7 name only in a link (a job's organization too, as on v1), under v8's names.
    off_wire={
        m.Job: frozenset({"organization_id"}),
        m.JobSession: frozenset({"job_id"}),
        m.UsedRepository: frozenset({"repository_id"}),
    },
    # v6+ jobs name no proxy: their ``proxy`` link is the repository's (derived below), whose
    # last segment is no proxy id.
    replaces=((m.Job, "proxy_id"),),
    derived=(
        LinkThrough(m.Job, "proxy", via="repository", then="proxy"),
        # v2's /Proxies/{id}/repositories is served by no v6+ version (their OpenAPI has no such
        # path), while proxies still link their repositories: the filter that lists them is.
        LinkFromId(m.Proxy, "repositories", Route("BackupRepositories", query=(("proxyId", "{id}"),))),
        IdFromLink(m.UsedRepository, "repository_id", "backup_repository"),
    ),
    actions="verb-path",
    page_limit=10_000,
    session_filters=frozenset({"endTimeLowerBound", "jobType"}),
    # No lastBackup on v6 jobs: the last success is read from one larger page of sessions.
    health_pages=(50,),
)
