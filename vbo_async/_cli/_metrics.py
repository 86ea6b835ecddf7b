"""The metrics of ``vbo-async serve``, as data: names, types, labels and help, in one table.

Everything else reads this table: the sweep files its samples under these names, the exposition
renders them in this order with this help, and the tests and ``docs/monitoring.md`` are checked
against it. Every series carries the ``server`` label (the target's ``name``); tenant series add
``organization`` (its name, else its id) and ``organization_id``. No prometheus_client here.
"""

from __future__ import annotations

from typing import Final, Literal

import attrs

from .._enums import JobStatus

__all__ = [
    "ERROR_KINDS",
    "JOB_LABELS",
    "JOB_STATUSES",
    "METRICS",
    "PREFIX",
    "SELF_PREFIX",
    "TENANT_LABELS",
    "MetricSpec",
]

PREFIX: Final = "veeam_vb365_"
SELF_PREFIX: Final = "vbo_async_exporter_"
"""The exporter's own metrics (sweep counts and timings); they carry no ``server`` label."""

TENANT_LABELS: Final = ("organization", "organization_id")
JOB_LABELS: Final = (*TENANT_LABELS, "job_id", "job_name")

JOB_STATUSES: Final[tuple[str, ...]] = tuple(status.value for status in JobStatus)
"""The states of ``veeam_vb365_job_last_status``: every `JobStatus` member, in its order. A
status a newer server sends that is none of these gets a series of its own, at 1."""

ERROR_KINDS: Final[tuple[str, ...]] = (
    "server",
    "timeout",
    "organization",
    "sessions",
    "repositories",
    "proxies",
    "license",
    "used_repositories",
    "service_instance",
    "object_storage",
)
"""The ``kind`` label of ``veeam_vb365_sweep_errors_total``; each is described in `METRICS`."""


@attrs.frozen
class MetricSpec:
    """One metric family: its full ``name`` (a counter's ends in ``_total``), ``type``, the
    ``labels`` its series carry after ``server``, and its ``help``."""

    name: str
    type: Literal["gauge", "counter"]
    labels: tuple[str, ...]
    help: str


def _gauge(name: str, labels: tuple[str, ...], text: str) -> MetricSpec:
    return MetricSpec(PREFIX + name, "gauge", labels, text)


METRICS: Final[tuple[MetricSpec, ...]] = (
    # --- the server and its sweep -------------------------------------------------------------------
    _gauge(
        "up",
        (),
        "1 when the last sweep listed the server's organizations (reachable, credentials accepted) "
        "within its time budget, else 0 (its tenant series are then absent).",
    ),
    _gauge("sweep_duration_seconds", (), "Seconds the last sweep of this server took."),
    _gauge("last_sweep_timestamp_seconds", (), "When the last sweep of this server ended (Unix time)."),
    _gauge(
        "server_clock_offset_seconds",
        (),
        "How far the server's clock is off the exporter's (its answers' Date header; positive: "
        "ahead), to the second. Health judges ages on the server's clock when this is 60 s to a day.",
    ),
    MetricSpec(
        PREFIX + "sweep_errors_total",
        "counter",
        ("kind",),
        "Reads that ended in an error (after the client's retries) during sweeps, by kind: server "
        "(organizations not listed: nothing else read), timeout (sweep over its time budget), "
        "organization (one per tenant whose jobs could not be read, or configured name not found), "
        "sessions (one per tenant with jobs whose sessions could not be read), repositories and "
        "proxies (one per listing, else one per item that could not be decoded), license, "
        "service_instance (one per listing), used_repositories (one per tenant), "
        "object_storage (one per object storage repository whose storage could not be read, v6/v7).",
    ),
    _gauge(
        "server_info",
        ("api_version", "build"),
        "1, with the API version spoken and the server's build (v6+ ServiceInstance; empty on v1).",
    ),
    # --- tenants ------------------------------------------------------------------------------------
    _gauge(
        "organization_up",
        TENANT_LABELS,
        "1 when the tenant's jobs were read in the last sweep, 0 when they could not be (its job "
        "series are then absent).",
    ),
    _gauge(
        "organization_used_bytes",
        (*TENANT_LABELS, "repository_id"),
        "Bytes the tenant's backups take in a repository (v6+ usedRepositories).",
    ),
    # --- jobs ---------------------------------------------------------------------------------------
    _gauge(
        "job_last_status",
        (*JOB_LABELS, "status"),
        "State set of the job's lastStatus: 1 for its status, 0 for every other known status "
        "(absent when the server sends none).",
    ),
    _gauge("job_enabled", JOB_LABELS, "1 when the job is enabled, 0 when disabled."),
    _gauge("job_last_run_timestamp_seconds", JOB_LABELS, "When the job last ran (Unix time)."),
    _gauge("job_next_run_timestamp_seconds", JOB_LABELS, "When the job runs next (Unix time)."),
    _gauge(
        "job_last_success_timestamp_seconds",
        JOB_LABELS,
        "When the job last succeeded (Unix time; absent when not known).",
    ),
    _gauge(
        "job_health",
        JOB_LABELS,
        "The job's health verdict under the exporter's --max-age, --schedule-aware and "
        "--warning-is-success: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.",
    ),
    _gauge(
        "job_last_session_duration_seconds",
        JOB_LABELS,
        "Seconds the job's newest finished run took (absent when not known).",
    ),
    _gauge(
        "job_last_session_transferred_bytes",
        JOB_LABELS,
        "Bytes the job's newest finished run transferred (v6+; absent when not known).",
    ),
    _gauge(
        "job_last_session_retry_count",
        JOB_LABELS,
        "Retries of the job's newest finished run (absent when not known).",
    ),
    # --- repositories, proxies, license -------------------------------------------------------------
    _gauge("repository_capacity_bytes", ("repository_id", "repository_name"), "Capacity of the repository."),
    _gauge("repository_free_bytes", ("repository_id", "repository_name"), "Free space in the repository."),
    _gauge(
        "repository_out_of_sync",
        ("repository_id", "repository_name"),
        "1 when the server reports the repository out of sync (v6+ isOutOfSync), else 0.",
    ),
    _gauge(
        "repository_out_of_order",
        ("repository_id", "repository_name"),
        "1 when the server has taken the repository out of service (v8 isOutOfOrder; its "
        "outOfOrderReason says why), else 0.",
    ),
    _gauge(
        "repository_object_storage_used_bytes",
        ("repository_id", "repository_name"),
        "Bytes the object storage (bucket or container) of an object storage repository holds "
        "(v8 objectStorage.usedSpaceBytes; v6/v7 read from its objectstoragerepositories entry).",
    ),
    _gauge("proxy_up", ("proxy_id", "proxy_name"), "1 when the proxy's status is Online, else 0."),
    _gauge(
        "proxy_cpu_usage_percent", ("proxy_id", "proxy_name"), "CPU use of the proxy (where reported, v8)."
    ),
    _gauge(
        "proxy_memory_usage_percent",
        ("proxy_id", "proxy_name"),
        "Memory use of the proxy (where reported, v8).",
    ),
    _gauge(
        "license_expiration_timestamp_seconds",
        (),
        "When the server's license expires (Unix time; v6+).",
    ),
    _gauge("license_used", (), "Users that use a license (v6+)."),
    _gauge("license_total", (), "Users the license covers (v6+)."),
)
"""Every ``veeam_vb365_`` metric, in the order of the exposition."""
