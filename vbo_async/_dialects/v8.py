"""API v8 (VB365 8.x, the current line up to 8.5), written against v7.

Lists are page objects (default 30, at most 10,000 items); ``/Organizations/{id}/Jobs`` is gone
(``/Jobs?organizationId=``, which an organization's ``jobs`` link is built as: the server still
sends that link, its target unconfirmed); jobs carry ``organizationId`` and ``eTag``, sessions
``jobId``; starting a job answers 200 with the new session; ``/JobSessions`` filters by
``status``; rows of ``usedRepositories`` carry ``repositoryId`` and ``protectedObjectsCount``;
proxies have no ``extendedView`` any more (their thread count is gone).
"""

from __future__ import annotations

from .. import _models as m
from ._base import LinkFromId, Route
from .v7 import V7

__all__ = ["V8"]

V8 = V7.evolve(
    version="v8",
    paths={
        "organization_jobs": Route("Jobs", query=(("organizationId", "{organization}"),)),
        "proxies": Route("Proxies"),
        "proxy": Route("Proxies/{proxy}"),
        "object_storage": None,  # gone: a repository holds its objectStorage
    },
    # A job without organizationId listed by /Jobs?organizationId= is that organization's, as
    # /Organizations/{id}/Jobs says on earlier versions.
    query_context={m.Job: {"organization_id": "organizationId"}},
    names={
        m.Job: {"organization_id": ("organizationId",)},
        m.JobSession: {"job_id": ("jobId",)},
        m.UsedRepository: {
            "repository_id": ("repositoryId",),
            "protected_objects_count": ("protectedObjectsCount",),
        },
    },
    derived=(LinkFromId(m.Organization, "jobs", Route("Jobs", query=(("organizationId", "{id}"),))),),
    off_wire={},
    organization_jobs_filter=True,
    start_returns_session=True,
    session_filters=V7.session_filters | {"status"},
)
