"""API v1 (VBO 1.5, 2017): the base every later version is written against.

Absolute hrefs naming the server's own host, string booleans, ``POST Jobs/{id}/Action`` with
``{"start": null}``, display strings for session statistics, no paging of lists.
"""

from __future__ import annotations

from .. import _models as m
from ._base import Dialect, IdFromLink, Route

__all__ = ["V1"]

V1 = Dialect(
    version="v1",
    paths={
        "organizations": Route("Organizations"),
        "organization": Route("Organizations/{organization}"),
        "organization_jobs": Route("Organizations/{organization}/Jobs"),
        "jobs": Route("Jobs"),
        "job": Route("Jobs/{job}"),
        "job_sessions": Route("Jobs/{job}/JobSessions"),
        "sessions": Route("JobSessions"),
        "session": Route("JobSessions/{session}"),
        "backup_repositories": Route("BackupRepositories"),
        "backup_repository": Route("BackupRepositories/{repository}"),
        "proxies": Route("Proxies"),
        "proxy": Route("Proxies/{proxy}"),
        "token": Route("Token"),
        "job_action": Route("Jobs/{job}/Action"),
    },
    names={
        # v1 documents the lower-case "t"; later servers fixed it. Both are read.
        m.Proxy: {
            "enable_network_throttling": ("enableNetworkthrottling", "enableNetworkThrottling"),
            "roles": ("role",),  # v8's list of the proxy's roles
        },
        m.JobSessionStatistics: {
            "processing_rate_bytes_ps": ("processingRateBytesPS",),
            "processing_rate_items_ps": ("processingRateItemsPS",),
            "read_rate_bytes_ps": ("readRateBytesPS",),
            "write_rate_bytes_ps": ("writeRateBytesPS",),
        },
        m.Organization: {"is_sharepoint_online": ("isSharePointOnline",)},
        m.ObjectStorage: {"size_limit_gb": ("sizeLimitGB",)},  # v8
        # Not on v1's wire: derived from the links (below). Read and written under v8's names
        # all the same (`Dialect.off_wire`), so that ``to_wire`` keeps an id a model holds
        # without the link (one built by hand, a session's job id known from the request).
        m.Job: {"organization_id": ("organizationId",)},
        m.JobSession: {"job_id": ("jobId",)},
    },
    off_wire={m.Job: frozenset({"organization_id"}), m.JobSession: frozenset({"job_id"})},
    derived=(
        IdFromLink(m.Job, "organization_id", "organization"),
        IdFromLink(m.Job, "repository_id", "repository"),
        IdFromLink(m.Job, "proxy_id", "proxy"),
        IdFromLink(m.JobSession, "job_id", "job"),
    ),
    # A job's own sessions link names the job the sessions it lists belong to, an
    # organization's jobs listing the organization (a job without an organization link).
    path_context={
        m.JobSession: {"job_id": Route("Jobs/{job}/JobSessions")},
        m.Job: {"organization_id": Route("Organizations/{organization}/Jobs")},
    },
    # A followed link to one organization or proxy asks what these routes ask (v7+ extendedView).
    link_routes={m.Organization: "organization", m.Proxy: "proxy"},
)
