"""vbo-async: an async client for the Veeam Backup for Microsoft 365 (Office 365) REST API.

```python
from vbo_async import VBOClient

async with VBOClient("https://vb365.example.com:4443", username="LAB\\\\svc", password=secret) as vbo:
    for job in await vbo.organization_jobs(org_id):
        repo = await job.links.require("repository")  # a LinkError if the server sent none
```
"""

from __future__ import annotations

import importlib as _importlib
import typing as _typing

from ._version import __version__ as __version__

if _typing.TYPE_CHECKING:
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
        ObjectStorageType,
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
        ObjectStorage,
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
    from ._sessions import SavedSession

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
    "ObjectStorage",
    "ObjectStorageType",
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
    "SavedSession",
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

_HOMES = (
    "_client",
    "_enums",
    "_exceptions",
    "_health",
    "_jsonable",
    "_links",
    "_logging",
    "_models",
    "_poll",
    "_retry",
    "_sessions",
)
"""The private modules the names of `__all__` live in (the imports above say which holds which)."""

if not _typing.TYPE_CHECKING:  # hidden from type checkers: the imports above name every name

    def __getattr__(name: str) -> _typing.Any:
        """A public name, imported when first asked for (PEP 562), then kept as an import would
        keep it. Importing the package imports nothing else, so that ``python -m vbo_async``
        reaches its entry point, which handles Ctrl-C and SIGTERM, before the library, httpx and
        aiohttp are imported (the first few tenths of a second); the first name asked for
        imports the library whole, as ``import vbo_async`` did."""
        if name in __all__:
            for home in _HOMES:
                value = getattr(_importlib.import_module(f".{home}", __name__), name, _ABSENT)
                if value is not _ABSENT:
                    globals()[name] = value
                    return value
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted({*globals(), *__all__})

    _ABSENT = object()
