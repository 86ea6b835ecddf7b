"""Query filters (pure): parsing their values the way the server binds them, and matching sessions."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from types import MappingProxyType

import attrs

from ._errors import SimulatedError
from ._records import DirectoryItem, JobSession
from ._wireformat import epoch_ticks, format_ticks, parse_ticks

__all__ = [
    "DIRECTORY_LOCATIONS",
    "LOG_ITEM_TYPES",
    "SESSION_STATUS_FILTER",
    "SessionFilter",
    "directory_matcher",
    "parse_bool",
    "parse_enum",
    "parse_time",
    "parse_uuid",
    "pick",
    "time_text",
]

SESSION_STATUS_FILTER: Mapping[str, str] = MappingProxyType(
    {
        "Stopped": "Stopped",
        "Running": "Running",
        "Succeeded": "Success",
        "Failed": "Failed",
        "Warning": "Warning",
    }
)
"""The v8 ``status`` filter's values and the session status each matches (``Succeeded`` is
``Success`` in the payload)."""
LOG_ITEM_TYPES = ("Running", "Warning", "Error", "Success", "Stop")
"""The values of a v8 log item's ``type``, which its ``LogItems`` ``type`` filter takes."""


DIRECTORY_LOCATIONS = ("Cloud", "OnPremises", "Hybrid", "CloudOrHybrid", "OnPremisesOrHybrid", "Any")
"""The ``locationFilter`` values of an organization's users and groups (sites take
``Cloud``, ``OnPremises`` and ``Any`` only)."""
_SITE_LOCATIONS = ("Cloud", "OnPremises", "Any")
_CLOUD_LOCATIONS = frozenset({"Cloud", "CloudOrHybrid", "Any"})
_DATA_SOURCES = ("PreferLocal", "Production", "PreferLocalResynced")
_SKU_TYPES = ("Other", "Education")
_NAME_FIELDS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {"userName": ("name",), "groupName": ("name",), "displayName": ("display_name",)}
)
"""A name filter of a directory listing -> the `DirectoryItem` fields one of which must hold it
(the sites' ``filter`` looks at the title, the name and the URL)."""


def _invalid(name: str, raw: str, expected: str) -> SimulatedError:
    return SimulatedError(400, f"The value '{raw}' is not valid for {name}: expected {expected}.")


def parse_uuid(name: str, raw: str) -> str:
    """A GUID parameter, lower-cased; 400 if it is not one."""
    try:
        return str(uuid.UUID(raw.strip()))
    except ValueError:
        raise _invalid(name, raw, "a GUID") from None


def parse_bool(name: str, raw: str) -> bool:
    """``true``/``false`` in any case; 400 otherwise."""
    value = raw.strip().lower()
    if value not in ("true", "false"):
        raise _invalid(name, raw, "true or false")
    return value == "true"


def parse_enum(name: str, raw: str, values: Iterable[str]) -> str:
    """One of `values`, matched case-insensitively, in its canonical spelling; 400 otherwise."""
    options = list(values)
    for value in options:
        if value.lower() == raw.strip().lower():
            return value
    raise _invalid(name, raw, " or ".join(options))


def parse_time(name: str, raw: str) -> int:
    """An ISO 8601 date-time in ticks (no zone means UTC); 400 otherwise."""
    try:
        return parse_ticks(raw)
    except ValueError:
        raise _invalid(name, raw, "an ISO 8601 date-time") from None


def time_text(name: str, value: str | datetime) -> str:
    """A time filter as it is written back into links (a datetime as ISO 8601 UTC); a datetime
    without a zone is a 400 naming the filter."""
    if isinstance(value, str):
        return value
    if value.tzinfo is None or value.utcoffset() is None:
        raise SimulatedError(400, f"{name} needs a timezone-aware datetime, got {value!r}.")
    return format_ticks(epoch_ticks(value), fraction=False)


def pick(query: Mapping[str, str], names: Iterable[str]) -> dict[str, str]:
    """The parameters of `query` (keys lower-cased) that are among `names`, under their canonical
    names; others are ignored, as servers ignore unknown parameters."""
    lowered = {key.lower(): value for key, value in query.items()}
    return {name: lowered[name.lower()] for name in names if name.lower() in lowered}


def directory_matcher(kind: str, filters: Mapping[str, str]) -> Callable[[DirectoryItem], bool]:
    """Which items of an organization's `kind` (``users``, ``groups``, ``sites``, ``teams``)
    the canonical-name `filters` keep; 400 for a bad value, a blank one is as none.

    A name filter keeps the items whose name holds it, without regard to case (UNCONFIRMED:
    the vendor says "name", not how it matches). Every simulated item is a cloud one, no user
    has an ``Education`` licence, no site has a parent (``parentId`` keeps none) and no backup
    set is simulated (a ``setId`` is checked, then read as the organization itself);
    ``dataSource``, ``includePersonalSites`` and ``includeSearchSites`` are checked only.
    """
    needles: list[tuple[tuple[str, ...], str]] = []
    keep = True
    for name, raw in filters.items():
        if not raw.strip():
            continue
        if name in _NAME_FIELDS or name == "filter":
            fields = _NAME_FIELDS.get(name, ("display_name", "name", "address"))
            needles.append((fields, raw.strip().lower()))
        elif name == "setId":
            parse_uuid(name, raw)
        elif name == "locationFilter":
            options = _SITE_LOCATIONS if kind == "sites" else DIRECTORY_LOCATIONS
            keep = keep and parse_enum(name, raw, options) in _CLOUD_LOCATIONS
        elif name == "dataSource":
            parse_enum(name, raw, _DATA_SOURCES)
        elif name == "detectedSkuType":
            keep = keep and parse_enum(name, raw, _SKU_TYPES) == "Other"
        elif name in ("includePersonalSites", "includeSearchSites"):
            parse_bool(name, raw)
        elif name == "parentId":
            keep = False

    def matches(item: DirectoryItem) -> bool:
        return keep and all(
            any(needle in str(getattr(item, field)).lower() for field in fields) for fields, needle in needles
        )

    return matches


@attrs.frozen
class SessionFilter:
    """The ``GET /JobSessions`` filters one version applies, parsed.

    ``endTimeLowerBound`` keeps sessions whose end (or, while running, whose creation) is at
    or after the bound; ``endTimeUpperBound`` those whose end (or creation) is at or before
    it. The vendor documents the bounds as "created after/before"; we read the parameter
    names instead (an UNCONFIRMED choice), and a running session, having no end, is judged by
    its start.
    """

    job_id: str | None = None
    job_type: str | None = None
    lower: int | None = None
    upper: int | None = None
    status: str | None = None
    """The payload status to keep (``Success`` for the filter value ``Succeeded``)."""

    @classmethod
    def parse(cls, filters: Mapping[str, str]) -> SessionFilter:
        """Parse canonical-name filters (400 for a bad value)."""
        raw_status = filters.get("status")
        return cls(
            job_id=parse_uuid("jobId", filters["jobId"]) if "jobId" in filters else None,
            job_type=parse_enum("jobType", filters["jobType"], ("Backup", "Copy"))
            if "jobType" in filters
            else None,
            lower=parse_time("endTimeLowerBound", filters["endTimeLowerBound"])
            if "endTimeLowerBound" in filters
            else None,
            upper=parse_time("endTimeUpperBound", filters["endTimeUpperBound"])
            if "endTimeUpperBound" in filters
            else None,
            status=SESSION_STATUS_FILTER[parse_enum("status", raw_status, SESSION_STATUS_FILTER)]
            if raw_status is not None
            else None,
        )

    def matches(self, session: JobSession) -> bool:
        """Whether `session` passes every filter (every simulated session is a backup run)."""
        if self.job_id is not None and session.job_id != self.job_id:
            return False
        if self.job_type is not None and self.job_type != "Backup":
            return False
        if self.status is not None and session.status != self.status:
            return False
        moment = session.creation if session.end is None else session.end
        if self.lower is not None and moment < self.lower:
            return False
        return self.upper is None or moment <= self.upper
