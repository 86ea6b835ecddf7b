"""`ApiVersion`: everything that differs between served API versions, as data and renderers.

One frozen instance per version (``V1`` in `_wire`, ``V6``/``V7``/``V8`` in `_wire_v6`..
`_wire_v8`), each later one written as ``attrs.evolve`` of the one before. Handlers and the
simulator read these fields; none of them names a version.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from ._generate import StorageUsage
from ._records import DirectoryItem, JobSession, LogEntry, ObjectStore, Repository
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

__all__ = ["ApiVersion"]


@attrs.frozen(kw_only=True)
class ApiVersion:
    """One API version: its shapes (renderers), collections, routes, auth rules and quirks.

    Renderers take a record or view and the href prefix (``https://host/v1`` or ``/v8``) and
    return the JSON the server writes. A renderer that is None means the version has no such
    endpoint (404).
    """

    name: str
    """The first path segment, e.g. ``v8``."""
    build: str
    """The product build a server reports when this is the newest version it serves."""
    absolute_links: bool
    """Hrefs are absolute with the advertised host (v1) instead of server-relative (v6+)."""

    # -- renderers -------------------------------------------------------------------------
    organization: Callable[[OrganizationView, str], Wire]
    job: Callable[[JobView, str], Wire]
    session: Callable[[JobSession, str], Wire]
    repository: Callable[[Repository, str], Wire]
    proxy: Callable[[ProxyView, str], Wire]
    token: Callable[[Wire], Wire]
    """Reshapes the token store's answer (RFC 1123 ``.issued``/``.expires``) for this version."""
    job_item: Callable[[JobItemView, str], Wire] | None = None
    used_repository: Callable[[StorageUsage, str], Wire] | None = None
    license: Callable[[LicenseView], Wire] | None = None
    service_instance: Callable[[ServerInfo], Wire] | None = None
    health: Callable[[], Wire] | None = None
    """Anonymous ``GET /Health``."""
    log_item: Callable[[LogEntry, str], Wire] | None = None
    """An item of a session's log, ``GET /JobSessions/{id}/LogItems`` (a page; v1's
    ``/JobSessions/{id}/log``, a bare array)."""
    copy_job: Callable[[CopyJobView, str], Wire] | None = None
    """A job's backup copy job, ``GET /CopyJobs/{id}`` and ``GET /Jobs/{id}/CopyJob``."""
    object_storage: Callable[[ObjectStore, str], Wire] | None = None
    """``GET /objectstoragerepositories/{id}``, the object storage a repository names by
    ``objectStorageId`` (v6/v7; v8 holds it in the repository)."""
    directory_item: Callable[[DirectoryItem, str], Wire] | None = None
    """A user, group, site or team: ``GET /Organizations/{id}/Users`` etc. (pages) and
    ``GET /Organizations/{id}/Users/{userId}`` etc."""

    # -- collections -----------------------------------------------------------------------
    paged_sessions: bool = False
    """``JobSessions`` answers and a session's log are relative page objects with filters (else
    v1's bare arrays, and v1's own absolute pages for a job's sessions)."""
    paged_collections: bool = False
    """``Organizations``, ``Jobs``, ``BackupRepositories``, ``Proxies`` and job items are page
    objects (else bare arrays, and ``offset``/``limit`` are ignored)."""
    organization_jobs: bool = True
    """``GET /Organizations/{id}/Jobs`` exists."""
    rbac_roles: bool = False
    """``GET /Organizations/{id}/RbacRoles`` exists (an array; no roles are simulated)."""
    job_sessions: bool = True
    """``GET /Jobs/{id}/JobSessions`` exists (the job's ``jobsessions`` link is written anyway)."""
    job_filters: frozenset[str] = frozenset()
    """``GET /Jobs`` query filters (canonical names)."""
    session_filters: frozenset[str] = frozenset()
    """``GET /JobSessions`` query filters (canonical names); others are ignored."""
    repository_filters: frozenset[str] = frozenset()
    """``GET /BackupRepositories`` query filters (canonical names)."""
    organization_filters: frozenset[str] = frozenset()
    """``GET /Organizations`` query filters (canonical names) beyond ``extendedView``."""
    directory_filters: frozenset[tuple[str, str]] = frozenset()
    """``GET /Organizations/{id}/Users`` (``Groups``, ``Sites``, ``Teams``) query filters beyond
    paging, as ``(collection, canonical name)`` pairs: ``("users", "userName")``..."""
    log_filters: frozenset[str] = frozenset()
    """``GET /JobSessions/{id}/LogItems`` query parameters (canonical names) beyond paging:
    v8's ``type`` and ``orderAsc``."""
    sessions_next_version: str | None = None
    """The version a ``JobSessions`` page's ``next`` link names instead of this one (the v8 bug
    that sends clients to ``/v7/``), used when that version is served."""
    organization_extended_default: bool = True
    """``extendedView`` when the query does not say."""
    proxy_extended_default: bool | None = None
    """``extendedView`` of proxies when the query does not say; None: no such parameter."""
    omit_nulls: bool = False
    """Properties whose value is null are left out of answers (v6)."""

    # -- actions and auth ------------------------------------------------------------------
    verb_actions: bool = False
    """``POST /Jobs/{id}/start|stop|enable|disable`` (else v1's ``/Jobs/{id}/Action``)."""
    start_answers_session: bool = False
    """``start`` answers 200 with the new session (else 204)."""
    logout_status: int | None = None
    """The status of ``POST /token/logout``; None: no logout endpoint."""
    refresh_needs_antiforgery_flag: bool = False
    """A refresh grant without ``disable_antiforgery_token=true`` is refused with 400."""
    token_throttle: bool = False
    """The token endpoint is rate-limited per user when `Faults.token_throttle` is on."""
    empty_unauthorized: bool = False
    """A refused bearer gets a 401 with an empty body (else `SimulatorConfig.unauthorized_body`)."""
