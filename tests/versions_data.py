"""Wire examples of API v6, v7 and v8 for the version tests, built from the reference note.

``vb365-v6-v8.md`` gives v8 examples of a job (§6.1), a job session (§6.3) and an organization
(§6.5), and the field lists of repositories (§6.6) and proxies (§6.7); §7 says what v7 and v6
lack. Each function returns a fresh copy (free to mutate) for one version, the hrefs naming that
version. The values are the note's own made-up ones.
"""

from __future__ import annotations

import copy
import json
from typing import Any

__all__ = [
    "JOB_ID",
    "ORG_ID",
    "PROXY_ID",
    "REPO_ID",
    "SESSION_ID",
    "V6_PLUS",
    "WINDOW",
    "job_wire",
    "organization_wire",
    "proxy_wire",
    "repository_wire",
    "session_wire",
    "token_body",
    "windowed_policy",
]

V6_PLUS = ("v6", "v7", "v8")
JOB_ID = "5f0c8a2e-1b7d-4c3a-9e61-2d4b8f7a9c10"
ORG_ID = "a3e1c7d2-6b4f-4e8a-b1c9-0f2d3e4a5b6c"
REPO_ID = "7d9e2f41-0a3b-4c5d-8e6f-9a0b1c2d3e4f"
SESSION_ID = "c41d7e90-5a2b-4f6c-8d1e-3b9a0f7e2c55"
PROXY_ID = "2e6f0a1b-9c8d-4e7f-a6b5-c4d3e2f1a0b9"

_JOB_V8: dict[str, Any] = {
    "id": JOB_ID,
    "name": "Contoso - Exchange daily",
    "description": "",
    "backupType": "EntireOrganization",
    "schedulePolicy": {
        "scheduleEnabled": True,
        "backupWindowEnabled": False,
        "periodicallyWindowEnabled": False,
        "type": "Daily",
        "dailyType": "Everyday",
        "dailyTime": "22:00:00",
        "retryEnabled": True,
        "retryNumber": 3,
        "retryWaitInterval": 10,
    },
    "organizationId": ORG_ID,
    "repositoryId": REPO_ID,
    "lastRun": "2026-06-30T22:00:04.512337Z",
    "nextRun": "2026-07-01T22:00:00Z",
    "lastBackup": "2026-06-30T22:41:17.118902Z",
    "isEnabled": True,
    "lastStatus": "Success",
    "eTag": 412,
    "_links": {
        "self": {"href": f"/v8/Jobs/{JOB_ID}"},
        "organization": {"href": f"/v8/Organizations/{ORG_ID}"},
        "backupRepository": {"href": f"/v8/BackupRepositories/{REPO_ID}"},
        "jobsessions": {"href": f"/v8/Jobs/{JOB_ID}/jobsessions"},
        "selectedItems": {"href": f"/v8/Jobs/{JOB_ID}/selectedItems"},
        "excludedItems": {"href": f"/v8/Jobs/{JOB_ID}/excludedItems"},
    },
}

_SESSION_V8: dict[str, Any] = {
    "id": SESSION_ID,
    "jobId": JOB_ID,
    "repositoryId": REPO_ID,
    "mainSessionId": SESSION_ID,
    "details": "Transferred: 1.2 GB (8412 items) at 2.1 MB/s (14 items/s)",
    "creationTime": "2026-06-30T22:00:04.512337Z",
    "endTime": "2026-06-30T22:41:17.118902Z",
    "retryCount": 0,
    "jobWillBeRetried": False,
    "progress": 8412,
    "jobType": "Backup",
    "jobSessionConfigType": "Incremental",
    "status": "Success",
    "statistics": {
        "processingRateBytesPS": 2202009,
        "processingRateItemsPS": 14,
        "readRateBytesPS": 2516582,
        "writeRateBytesPS": 1048576,
        "transferredDataBytes": 1288490188,
        "processedObjects": 8412,
        "bottleneck": "Source",
    },
    "eTag": 97,
    "proxyId": PROXY_ID,
    "proxyPoolId": None,
    "_links": {
        "self": {"href": f"/v8/JobSessions/{SESSION_ID}"},
        "log": {"href": f"/v8/JobSessions/{SESSION_ID}/LogItems"},
        "job": {"href": f"/v8/Jobs/{JOB_ID}"},
    },
}

_ORGANIZATION_V8: dict[str, Any] = {
    "id": ORG_ID,
    "name": "contoso.onmicrosoft.com",
    "officeName": "contoso.onmicrosoft.com",
    "description": "",
    "type": "Office365",
    "region": "Worldwide",
    "msid": "0b1c2d3e-4f5a-6b7c-8d9e-0f1a2b3c4d5e",
    "backedUpOrganizationId": "0b1c2d3e-4f5a-6b7c-8d9e-0f1a2b3c4d5e",
    "isExchangeOnline": True,
    "isSharePointOnline": True,
    "isTeamsOnline": True,
    "isTeamsChatsOnline": False,
    "_links": {
        "self": {"href": f"/v8/Organizations/{ORG_ID}"},
        "jobs": {"href": f"/v8/Jobs?organizationId={ORG_ID}"},
        "groups": {"href": f"/v8/Organizations/{ORG_ID}/Groups"},
        "users": {"href": f"/v8/Organizations/{ORG_ID}/Users"},
        "sites": {"href": f"/v8/Organizations/{ORG_ID}/Sites"},
        "teams": {"href": f"/v8/Organizations/{ORG_ID}/Teams"},
        "usedRepositories": {"href": f"/v8/Organizations/{ORG_ID}/usedRepositories"},
        "rbacRoles": {"href": f"/v8/Organizations/{ORG_ID}/RbacRoles"},
    },
    "_actions": {},
}

_REPOSITORY_V8: dict[str, Any] = {
    "id": REPO_ID,
    "name": "Repository 1",
    "description": "Local repository",
    "path": "E:\\Backups\\Repository 1",
    "capacityBytes": 4398046511104,
    "freeSpaceBytes": 1649267441664,
    "isOutOfSync": False,
    "isOutdated": False,
    "isIndexed": True,
    "isOutOfOrder": False,
    "outOfOrderReason": None,
    "isMigrationLocked": False,
    "isLongTerm": False,
    "proxyId": PROXY_ID,
    "proxyPoolId": None,
    "organizationId": None,
    "objectStorageEncryptionEnabled": False,
    "encryptionKeyId": None,
    "_links": {
        "self": {"href": f"/v8/BackupRepositories/{REPO_ID}"},
        "proxy": {"href": f"/v8/Proxies/{PROXY_ID}"},
    },
}

_PROXY_V8: dict[str, Any] = {
    "id": PROXY_ID,
    "hostName": "proxy01",
    "fqdn": "proxy01.contoso.local",
    "description": "Default proxy",
    "port": 9193,
    "type": "Domain",
    "operatingSystem": "Windows",
    "status": "Online",
    "maintenanceModeState": "Disabled",
    "cpuUsagePercent": 12.5,
    "memoryUsagePercent": 41.25,
    "version": "8.5.0.1014",
    "serviceAccount": "CONTOSO\\svc-vb365",
    "role": ["BackupProxy"],
    "proxyPoolId": None,
    "enableNetworkThrottling": True,
    "throttlingValue": 100,
    "throttlingUnit": "Mbps",
    "useInternetProxy": False,
    "_links": {
        "self": {"href": f"/v8/Proxies/{PROXY_ID}"},
        "repositories": {"href": f"/v8/BackupRepositories?proxyId={PROXY_ID}"},
    },
}

# §7: what v7 and v6 lack compared with v8.
_V8_REPOSITORY_FIELDS = (
    "proxyPoolId",
    "organizationId",
    "isOutdated",
    "isIndexed",
    "isOutOfOrder",
    "outOfOrderReason",
    "isMigrationLocked",
)
_V8_PROXY_FIELDS = (
    "operatingSystem",
    "maintenanceModeState",
    "cpuUsagePercent",
    "memoryUsagePercent",
    "version",
    "serviceAccount",
    "role",
    "proxyPoolId",
)

_NOT_IN = {
    "job": {"v7": ("organizationId", "eTag"), "v6": ("organizationId", "eTag", "lastBackup")},
    "session": {
        "v7": ("jobId", "jobSessionConfigType", "eTag", "proxyId", "proxyPoolId"),
        "v6": (
            "jobId",
            "jobSessionConfigType",
            "eTag",
            "proxyId",
            "proxyPoolId",
            "repositoryId",
            "mainSessionId",
            "jobWillBeRetried",
            "jobType",
        ),
    },
    "organization": {
        "v7": ("msid", "backedUpOrganizationId"),
        "v6": ("msid", "backedUpOrganizationId", "description"),
    },
    "repository": {"v7": _V8_REPOSITORY_FIELDS, "v6": _V8_REPOSITORY_FIELDS},
    "proxy": {
        "v7": _V8_PROXY_FIELDS,
        "v6": ("fqdn", *_V8_PROXY_FIELDS),
    },
}


def _for_version(kind: str, example: dict[str, Any], version: str) -> dict[str, Any]:
    if version not in V6_PLUS:
        raise ValueError(f"the reference examples are v6-v8, not {version}")
    wire: dict[str, Any] = json.loads(json.dumps(example).replace('"/v8/', f'"/{version}/'))
    for key in _NOT_IN[kind].get(version, ()):
        wire.pop(key, None)
    if kind == "job" and version == "v6":
        wire["schedulePolicy"].pop("periodicallyWindowEnabled")
    if kind == "organization" and version != "v8":
        wire["_links"]["jobs"] = {"href": f"/{version}/Organizations/{ORG_ID}/Jobs"}
    return wire


def job_wire(version: str = "v8") -> dict[str, Any]:
    """The §6.1 job as ``version`` sends it."""
    return _for_version("job", _JOB_V8, version)


def session_wire(version: str = "v8") -> dict[str, Any]:
    """The §6.3 session as ``version`` sends it."""
    return _for_version("session", _SESSION_V8, version)


def organization_wire(version: str = "v8") -> dict[str, Any]:
    """The §6.5 organization as ``version`` sends it (v6/v7 link ``jobs`` to the nested route)."""
    return _for_version("organization", _ORGANIZATION_V8, version)


def repository_wire(version: str = "v8") -> dict[str, Any]:
    """A repository with the §6.6 fields as ``version`` sends it."""
    return _for_version("repository", _REPOSITORY_V8, version)


def proxy_wire(version: str = "v8") -> dict[str, Any]:
    """A proxy with the §6.7 fields as ``version`` sends it."""
    return _for_version("proxy", _PROXY_V8, version)


WINDOW: list[bool] = [day in (1, 2, 3, 4, 5) and 8 <= hour < 18 for day in range(7) for hour in range(24)]
"""Weekdays 08:00-18:00 (Sunday first, as the server counts)."""


def windowed_policy(version: str = "v8") -> dict[str, Any]:
    """A periodic ``schedulePolicy`` with backup and periodic windows (v6+ spelling)."""
    policy: dict[str, Any] = {
        "type": "Periodically",
        "periodicallyEvery": "Hours4",
        "scheduleEnabled": True,
        "backupWindowEnabled": True,
        "backupWindowSettings": {"backupWindow": list(WINDOW), "minuteOffset": 120},
        "periodicallyWindowEnabled": True,
        "periodicallyWindowSettings": {"backupWindow": [not flag for flag in WINDOW], "minuteOffset": -60},
        "periodicallyOffsetMinutes": 15,
        "retryEnabled": False,
        "retryNumber": 3,
        "retryWaitInterval": 5,
    }
    if version == "v6":
        del policy["periodicallyWindowEnabled"]
    return copy.deepcopy(policy)


def token_body(number: int) -> dict[str, Any]:
    """A token endpoint's 200 answer (v8 form: ISO dates)."""
    return {
        "access_token": f"access-{number}-Qx7",
        "token_type": "bearer",
        "expires_in": 3600,
        "refresh_token": f"refresh-{number}-Wm4",
        "userName": "admin",
        ".issued": "2026-07-01T12:00:00.000000Z",
        ".expires": "2026-07-01T13:00:00.000000Z",
    }
