"""v7 (VB365 7.x) renderers (pure) and ``V7``, written as the difference from v6.

v7 adds ``lastBackup`` to jobs, ``repositoryId``/``mainSessionId``/``jobWillBeRetried``/
``jobType`` to sessions, ``periodicallyWindowEnabled`` to schedules, ``fqdn`` to proxies and
``description`` to organizations; its license names its dates ``licenseExpires`` and
``gracePeriodExpires``. It drops ``GET /Jobs/{id}/JobSessions`` (the job link stays), gains
``/token/logout`` (200) and the antiforgery rule for refresh grants, defaults
``extendedView`` to false, and writes nulls instead of leaving them out.
"""

from __future__ import annotations

import attrs

from . import _wire_v6 as v6
from ._records import JobSession, ObjectStore, Schedule
from ._views import JobView, LicenseView, OrganizationView, ProxyView, Wire

__all__ = ["V7", "job", "license_", "organization", "proxy", "schedule_policy", "session"]


def organization(view: OrganizationView, base: str) -> Wire:
    """v6 plus ``description``."""
    wire = v6.organization(view, base)
    return v6.insert_before(wire, "officeName", {"description": view.org.description})


def schedule_policy(schedule: Schedule) -> Wire:
    """v6 plus ``periodicallyWindowEnabled`` (true when a periodic job's window is not all hours)."""
    policy = v6.schedule_policy(schedule)
    enabled = schedule.type == "Periodically" and schedule.window != "always"
    return v6.insert_before(policy, "retryEnabled", {"periodicallyWindowEnabled": enabled})


def job(view: JobView, base: str) -> Wire:
    """v6 plus ``lastBackup`` (the end of the last successful run)."""
    wire = v6.job(view, base)
    wire["schedulePolicy"] = schedule_policy(view.job.schedule)
    return v6.insert_before(wire, "isEnabled", {"lastBackup": v6.stamp(view.last_backup)})


def session(session_: JobSession, base: str) -> Wire:
    """v6 plus ``repositoryId``, ``mainSessionId`` (its own id unless a retry), ``jobWillBeRetried``
    and ``jobType``."""
    wire = v6.session(session_, base)
    return v6.insert_before(
        wire,
        "statistics",
        {
            "repositoryId": session_.repository_id,
            "mainSessionId": session_.main_session_id or session_.id,
            "jobWillBeRetried": session_.will_retry,
            "jobType": "Backup",
        },
    )


def proxy(view: ProxyView, base: str) -> Wire:
    """v6 plus ``fqdn``."""
    return v6.insert_before(v6.proxy(view, base), "description", {"fqdn": view.proxy.host_name})


def license_(view: LicenseView) -> Wire:
    """v6 without ``expirationDate``/``contactPerson``/``supportExpirationDate``, with
    ``licenseExpires``, ``gracePeriodExpires`` and ``package``."""
    wire = v6.license_(view)
    for key in ("expirationDate", "contactPerson", "supportExpirationDate"):
        del wire[key]
    record = view.license
    return v6.insert_before(
        wire,
        "type",
        {
            "licenseExpires": v6.stamp(record.expires, fraction=False),
            "gracePeriodExpires": v6.stamp(record.grace_expires, fraction=False),
            "package": record.package,
        },
    )


def object_storage(store: ObjectStore, base: str) -> Wire:
    """v6 plus ``enableImmutability``."""
    immutable = {"enableImmutability": store.immutable_days is not None}
    return v6.insert_before(v6.object_storage(store, base), "_links", immutable)


V7 = attrs.evolve(
    v6.V6,
    name="v7",
    build="7.0.0.2911",
    organization=organization,
    job=job,
    session=session,
    proxy=proxy,
    license=license_,
    object_storage=object_storage,
    job_sessions=False,
    session_filters=v6.V6.session_filters | {"jobId", "endTimeUpperBound"},
    directory_filters=v6.V6.directory_filters
    | {(kind, "dataSource") for kind in ("users", "groups", "sites", "teams")}
    | {("sites", "filter")},
    organization_extended_default=False,
    proxy_extended_default=False,
    omit_nulls=False,
    logout_status=200,
    refresh_needs_antiforgery_flag=True,
)
"""VB365 7.x."""
