"""Open string enums for the status-like fields the server sends.

Servers grow these sets between versions (``lastStatus`` gained ``Queued`` in v6), so an unknown
wire value never fails: it decodes to a pseudo-member that compares equal to the wire string and
reports ``is_known == False``; its repr quotes the value as ``repr`` quotes any string (control
characters escaped). Nothing is registered on the class, so no state is shared. Type checkers
know only the listed members: a ``match`` over them still needs a default case (never
``assert_never``), which is where a pseudo-member goes.
"""

from __future__ import annotations

import enum
from typing import Self

__all__ = [
    "BackupType",
    "Bottleneck",
    "DailyType",
    "JobSessionConfigType",
    "JobStatus",
    "JobType",
    "LicenseStatus",
    "LicenseType",
    "MaintenanceModeState",
    "ObjectStorageType",
    "OpenEnum",
    "OperatingSystem",
    "PeriodicallyEvery",
    "ProxyRole",
    "ProxyStatus",
    "ProxyType",
    "RetentionType",
    "ScheduleType",
    "SelectedItemType",
]


class OpenEnum(enum.StrEnum):
    """A `StrEnum` that accepts values it does not know (see the module docstring)."""

    @classmethod
    def _missing_(cls, value: object) -> Self | None:
        if not isinstance(value, str):
            return None
        pseudo = str.__new__(cls, value)
        pseudo._name_ = value
        pseudo._value_ = value
        return pseudo

    def __repr__(self) -> str:
        if self.is_known:
            return super().__repr__()
        # Enum's repr shows the name as it is: a pseudo-member's is the server's text.
        return f"<{type(self).__name__} (unknown): {self._value_!r}>"

    @property
    def is_known(self) -> bool:
        """False for a value this version of vbo-async does not know."""
        # By value: a pseudo-member's name is its value, which may be a member's name ("SUCCESS").
        return type(self)._value2member_map_.get(self._value_) is self


class JobStatus(OpenEnum):
    """``lastStatus`` of a job and ``status`` of a job session."""

    STOPPED = "Stopped"
    RUNNING = "Running"
    SUCCESS = "Success"
    WARNING = "Warning"
    FAILED = "Failed"
    NOT_CONFIGURED = "NotConfigured"
    DISCONNECTED = "Disconnected"
    QUEUED = "Queued"


class ScheduleType(OpenEnum):
    """``schedulePolicy.type``."""

    PERIODICALLY = "Periodically"
    DAILY = "Daily"
    MANUAL_ONLY = "ManualOnly"


class PeriodicallyEvery(OpenEnum):
    """``schedulePolicy.periodicallyEvery``."""

    MINUTES5 = "Minutes5"
    MINUTES10 = "Minutes10"
    MINUTES15 = "Minutes15"
    MINUTES30 = "Minutes30"
    HOURS1 = "Hours1"
    HOURS2 = "Hours2"
    HOURS4 = "Hours4"
    HOURS8 = "Hours8"
    HOURS12 = "Hours12"


class DailyType(OpenEnum):
    """``schedulePolicy.dailyType`` and a repository's ``dailyType``."""

    EVERYDAY = "Everyday"
    WORKDAYS = "Workdays"
    WEEKENDS = "Weekends"
    MONDAY = "Monday"
    TUESDAY = "Tuesday"
    WEDNESDAY = "Wednesday"
    THURSDAY = "Thursday"
    FRIDAY = "Friday"
    SATURDAY = "Saturday"
    SUNDAY = "Sunday"


class Bottleneck(OpenEnum):
    """``statistics.bottleneck`` of a job session."""

    NA = "NA"
    DETECTING = "Detecting"
    SOURCE = "Source"
    TARGET = "Target"


class ProxyStatus(OpenEnum):
    """``status`` of a backup proxy."""

    ONLINE = "Online"
    OFFLINE = "Offline"


class BackupType(OpenEnum):
    """``backupType`` of a job (v2+; v1 says ``allMailboxes`` instead)."""

    ENTIRE_ORGANIZATION = "EntireOrganization"
    SELECTED_ITEMS = "SelectedItems"


class JobType(OpenEnum):
    """``jobType`` of a job session (v7+): a backup job's run or a backup copy job's."""

    BACKUP = "Backup"
    COPY = "Copy"


class JobSessionConfigType(OpenEnum):
    """``jobSessionConfigType`` of a job session (v8): a full or an incremental run."""

    FULL = "Full"
    INCREMENTAL = "Incremental"


class ProxyType(OpenEnum):
    """``type`` of a backup proxy (v6+)."""

    LOCAL = "Local"
    DOMAIN = "Domain"
    WORKGROUP = "Workgroup"


class ObjectStorageType(OpenEnum):
    """``type`` of a backup repository's object storage (v8)."""

    AZURE_BLOB = "AzureBlob"
    AMAZON_S3 = "AmazonS3"
    AMAZON_S3_COMPATIBLE = "AmazonS3Compatible"
    AZURE_BLOB_ARCHIVE = "AzureBlobArchive"
    AMAZON_S3_GLACIER = "AmazonS3Glacier"
    WASABI_CLOUD = "WasabiCloud"
    IBM_CLOUD = "IBMCloud"


class ProxyRole(OpenEnum):
    """One entry of a backup proxy's ``role`` list (v8)."""

    UNKNOWN = "Unknown"
    ORCHESTRATOR = "Orchestrator"
    SCHEDULER = "Scheduler"
    APPLIANCE_PROCESSOR = "ApplianceProcessor"
    PROCESSOR = "Processor"


class OperatingSystem(OpenEnum):
    """``operatingSystem`` of a backup proxy (v8)."""

    WINDOWS = "Windows"
    LINUX = "Linux"


class MaintenanceModeState(OpenEnum):
    """``maintenanceModeState`` of a backup proxy (v8)."""

    DISABLED = "Disabled"
    ENABLING = "Enabling"
    ENABLED = "Enabled"


class RetentionType(OpenEnum):
    """``retentionType`` of a backup repository (v6+)."""

    ITEM_LEVEL = "ItemLevel"
    SNAPSHOT_BASED = "SnapshotBased"


class SelectedItemType(OpenEnum):
    """``type`` of a job's selected or excluded item (v2+)."""

    GROUP = "Group"
    USER = "User"
    SITE = "Site"
    PARTIAL_ORGANIZATION = "PartialOrganization"
    PERSONAL_SITES = "PersonalSites"
    ONE_DRIVE_FOLDERS = "OneDriveFolders"
    TEAM = "Team"


class LicenseStatus(OpenEnum):
    """``status`` of the server's license (v6+ ``GET /License``)."""

    VALID = "Valid"
    EXPIRED = "Expired"


class LicenseType(OpenEnum):
    """``type`` of the server's license (v6+ ``GET /License``)."""

    SUBSCRIPTION = "Subscription"
    EVALUATION = "Evaluation"
    NFR = "NFR"
    RENTAL = "Rental"
    COMMUNITY = "Community"
    AWS_PRIVATE_OFFER = "AwsPrivateOffer"
