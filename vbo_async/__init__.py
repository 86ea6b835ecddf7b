"""vbo-async: an async client for the Veeam Backup for Microsoft 365 (Office 365) REST API.

```python
from vbo_async import VBOClient

async with VBOClient("https://vbo01:4443", username="LAB\\\\svc", password=secret) as vbo:
    for job in await vbo.organization_jobs(org_id):
        repo = await job.links.repository
```
"""

from __future__ import annotations

from ._client import DEFAULT_MAX_RESPONSE_BYTES, VBOClient
from ._enums import Bottleneck, DailyType, JobStatus, PeriodicallyEvery, ProxyStatus, ScheduleType
from ._exceptions import (
    APIError,
    AuthenticationError,
    ClientStateError,
    ConfigError,
    DecodeError,
    LinkError,
    NotFoundError,
    RateLimitedError,
    ResponseTooLargeError,
    ServerError,
    TransportError,
    VBOError,
)
from ._links import CollectionLink, Link
from ._models import (
    BackupRepository,
    BackupRepositoryLinks,
    BackupWindow,
    Job,
    JobLinks,
    JobSession,
    JobSessionLinks,
    JobSessionStatistics,
    Organization,
    OrganizationLinks,
    Proxy,
    ProxyLinks,
    SchedulePolicy,
    SelectedMailbox,
    SelectedMailboxLinks,
)
from ._poll import PollProgress, PollResult, PollSweep, PollTarget, poll_jobs
from ._retry import RetryPolicy

__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "APIError",
    "AuthenticationError",
    "BackupRepository",
    "BackupRepositoryLinks",
    "BackupWindow",
    "Bottleneck",
    "ClientStateError",
    "CollectionLink",
    "ConfigError",
    "DailyType",
    "DecodeError",
    "Job",
    "JobLinks",
    "JobSession",
    "JobSessionLinks",
    "JobSessionStatistics",
    "JobStatus",
    "Link",
    "LinkError",
    "NotFoundError",
    "Organization",
    "OrganizationLinks",
    "PeriodicallyEvery",
    "PollProgress",
    "PollResult",
    "PollSweep",
    "PollTarget",
    "Proxy",
    "ProxyLinks",
    "ProxyStatus",
    "RateLimitedError",
    "ResponseTooLargeError",
    "RetryPolicy",
    "SchedulePolicy",
    "ScheduleType",
    "SelectedMailbox",
    "SelectedMailboxLinks",
    "ServerError",
    "TransportError",
    "VBOClient",
    "VBOError",
    "poll_jobs",
]
__version__ = "0.1.0"
