"""vbo-async: an async client for the Veeam Backup for Microsoft 365 (Office 365) REST API.

```python
from vbo_async import VBOClient

async with VBOClient("https://vb365.example.com:4443", username="LAB\\\\svc", password=secret) as vbo:
    for job in await vbo.organization_jobs(org_id):
        repo = await job.links.require("repository")  # a LinkError if the server sent none
```
"""

from __future__ import annotations

from ._client import API_VERSIONS, DEFAULT_MAX_RESPONSE_BYTES, VBOClient
from ._enums import (
    BackupType,
    Bottleneck,
    DailyType,
    JobSessionConfigType,
    JobStatus,
    JobType,
    LicenseStatus,
    LicenseType,
    MaintenanceModeState,
    OperatingSystem,
    PeriodicallyEvery,
    ProxyRole,
    ProxyStatus,
    ProxyType,
    RetentionType,
    ScheduleType,
    SelectedItemType,
)
from ._exceptions import (
    APIError,
    AuthenticationError,
    ClientStateError,
    ConfigError,
    DecodeError,
    LinkError,
    NotFoundError,
    NotSupportedError,
    RateLimitedError,
    ResponseTooLargeError,
    ServerError,
    TransportError,
    VBOError,
)
from ._health import HealthPolicy, HealthState, JobHealth, assess
from ._jsonable import to_jsonable
from ._links import CollectionLink, Link, ThroughLink
from ._logging import configure_logging
from ._models import (
    BackupRepository,
    BackupRepositoryLinks,
    BackupWindow,
    HourFlags,
    Job,
    JobLinks,
    JobSession,
    JobSessionLinks,
    JobSessionStatistics,
    License,
    Organization,
    OrganizationLinks,
    Proxy,
    ProxyLinks,
    SchedulePolicy,
    SelectedItem,
    SelectedItemObject,
    SelectedMailbox,
    SelectedMailboxLinks,
    ServiceInstance,
    UsedRepository,
    UsedRepositoryLinks,
)
from ._poll import PollProgress, PollResult, PollSweep, PollTarget, poll_jobs
from ._retry import RetryPolicy

__all__ = [
    "API_VERSIONS",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "APIError",
    "AuthenticationError",
    "BackupRepository",
    "BackupRepositoryLinks",
    "BackupType",
    "BackupWindow",
    "Bottleneck",
    "ClientStateError",
    "CollectionLink",
    "ConfigError",
    "DailyType",
    "DecodeError",
    "HealthPolicy",
    "HealthState",
    "HourFlags",
    "Job",
    "JobHealth",
    "JobLinks",
    "JobSession",
    "JobSessionConfigType",
    "JobSessionLinks",
    "JobSessionStatistics",
    "JobStatus",
    "JobType",
    "License",
    "LicenseStatus",
    "LicenseType",
    "Link",
    "LinkError",
    "MaintenanceModeState",
    "NotFoundError",
    "NotSupportedError",
    "OperatingSystem",
    "Organization",
    "OrganizationLinks",
    "PeriodicallyEvery",
    "PollProgress",
    "PollResult",
    "PollSweep",
    "PollTarget",
    "Proxy",
    "ProxyLinks",
    "ProxyRole",
    "ProxyStatus",
    "ProxyType",
    "RateLimitedError",
    "ResponseTooLargeError",
    "RetentionType",
    "RetryPolicy",
    "SchedulePolicy",
    "ScheduleType",
    "SelectedItem",
    "SelectedItemObject",
    "SelectedItemType",
    "SelectedMailbox",
    "SelectedMailboxLinks",
    "ServerError",
    "ServiceInstance",
    "ThroughLink",
    "TransportError",
    "UsedRepository",
    "UsedRepositoryLinks",
    "VBOClient",
    "VBOError",
    "assess",
    "configure_logging",
    "poll_jobs",
    "to_jsonable",
]
from ._version import __version__ as __version__
