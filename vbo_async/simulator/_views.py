"""What a renderer is given: a record plus the facts the simulator derives for it (frozen, no I/O)."""

from __future__ import annotations

from typing import Any

import attrs

from ._records import Job, License, Mailbox, Organization, Proxy

__all__ = [
    "CopyJobView",
    "JobItemView",
    "JobView",
    "LicenseView",
    "OrganizationView",
    "ProxyView",
    "ServerInfo",
    "Wire",
]

Wire = dict[str, Any]
"""A JSON object as it goes on the wire."""


@attrs.frozen
class OrganizationView:
    """An organization, when its jobs last ran, and whether the backup fields are shown."""

    org: Organization
    last_backup: int | None
    """The latest ``lastRun`` of its jobs (``lastBackuptime``)."""
    extended: bool
    """``extendedView``: show ``isBackedup``, ``firstBackuptime`` and ``lastBackuptime``."""


@attrs.frozen
class JobView:
    """A job and the end of its last successful run (v7+ ``lastBackup``)."""

    job: Job
    last_backup: int | None


@attrs.frozen
class CopyJobView:
    """A job's backup copy job (`id` is ``job.copy_job_id``) and the repository it copies to."""

    id: str
    job: Job
    repository_id: str
    last_backup: int | None
    """When the backup job last succeeded: an immediate copy follows each backup."""


@attrs.frozen
class ProxyView:
    """A proxy, whether the extended fields are shown and the build it runs (v8 ``version``)."""

    proxy: Proxy
    extended: bool
    build: str


@attrs.frozen
class JobItemView:
    """A mailbox as a row of a job's ``SelectedItems`` or ``ExcludedItems``."""

    job_id: str
    mailbox: Mailbox


@attrs.frozen
class LicenseView:
    """The license and how many users it covers now."""

    license: License
    used: int


@attrs.frozen
class ServerInfo:
    """The installation (``GET /ServiceInstance``): its id and the build of the newest served API."""

    installation_id: str
    build: str
