"""API v7 (VB365 7.x, 2023), written against v6.

``lastBackup`` on jobs; organizations and proxies leave out their backup state and their
thread and throttling figures unless asked for ``extendedView=true`` (v6 showed them by
default; their routes ask, v6's organization routes too, and so does a followed link to one,
through ``link_routes``);
``/Jobs/{id}/JobSessions`` is gone while jobs still link to it, so a job's sessions
are ``/JobSessions?jobId=``; token requests carry
``disable_antiforgery_token=true`` (refresh fails without it); ``POST token/logout``; the
license names its dates ``licenseExpires`` and ``gracePeriodExpires`` and adds ``package``
(``supportExpirationDate`` and ``contactPerson`` are gone).
"""

from __future__ import annotations

from .. import _models as m
from ._base import LinkFromId, Route
from .v6 import EXTENDED, V6

__all__ = ["V7"]

V7 = V6.evolve(
    version="v7",
    paths={
        "job_sessions": Route("JobSessions", query=(("jobId", "{job}"),)),
        "proxies": Route("Proxies", query=EXTENDED),
        "proxy": Route("Proxies/{proxy}", query=EXTENDED),
    },
    names={
        m.JobLinks: {"jobsessions": ()},
        m.License: {
            "license_expires": ("licenseExpires",),
            "grace_period_expires": ("gracePeriodExpires",),
            "package": ("package",),
            "support_expires": (),
            "contact_person": (),
        },
    },
    derived=(LinkFromId(m.Job, "jobsessions", Route("JobSessions", query=(("jobId", "{id}"),))),),
    query_context={m.JobSession: {"job_id": "jobId"}},
    token_form={"disable_antiforgery_token": "true"},
    logout=Route("token/logout"),
    session_filters=frozenset({"endTimeLowerBound", "endTimeUpperBound", "jobType", "jobId"}),
    # Jobs carry lastBackup: a few newest sessions give the last result, a second larger page
    # only when those were all running or stopped.
    health_pages=(5, 50),
)
