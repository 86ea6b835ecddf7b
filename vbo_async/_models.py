"""The resource graph as frozen attrs classes: one graph for every API version, no JSON here.

Field names are snake_case; which wire name each one has in which API version is the business of
the dialects (`_dialects`), never of the models. One `Job` type serves v1 and v8 alike: a field a
version does not send is ``None``. Everything but ``id`` may be ``None`` (real servers send
``null`` for values that are usually present). Each resource carries its ``links`` (the wire
``_links``). `RESOURCES` is the one registry of what a client fetches; the converter finds every
nested model and enum from it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, MutableSequence, Sequence
from typing import Any, Literal, overload

import attrs

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
from ._exceptions import ConfigError, LinkError
from ._links import CollectionLink, Link
from ._printable import printable

__all__ = [
    "RESOURCES",
    "BackupRepository",
    "BackupRepositoryLinks",
    "BackupWindow",
    "HourFlags",
    "Job",
    "JobLinks",
    "JobSession",
    "JobSessionLinks",
    "JobSessionStatistics",
    "License",
    "Organization",
    "OrganizationLinks",
    "Proxy",
    "ProxyLinks",
    "SchedulePolicy",
    "SelectedItem",
    "SelectedItemObject",
    "SelectedMailbox",
    "SelectedMailboxLinks",
    "ServiceInstance",
    "UsedRepository",
    "UsedRepositoryLinks",
]

_HOURS_PER_WEEK = 168
_WEEK = dt.timedelta(weeks=1)
_WEEK_MINUTES = 7 * 24 * 60


def _require(links: Any, relation: str) -> Link[Any]:
    """``links.<relation>``, or `LinkError` naming the relation (and the relations there are)."""
    names = [field.name for field in attrs.fields(type(links))]
    if relation not in names:
        raise LinkError(
            f"{type(links).__name__} has no relation {relation!r}; it has {', '.join(names)}",
            relation=relation if isinstance(relation, str) else repr(relation),
        )
    link: Link[Any] | None = getattr(links, relation)
    if link is None:
        raise LinkError(
            f"no {relation!r} link: the server sent none here (present: {_present(links)})", relation=relation
        )
    return link


def _present(links: Any) -> str:
    """The relations ``links`` holds a link for, for an error saying one is missing."""
    present = [field.name for field in attrs.fields(type(links)) if getattr(links, field.name) is not None]
    return ", ".join(present) or "none"


def _hours(flags: Sequence[bool]) -> str:
    """A window's flags in its repr: how many hours they allow. What a window built by hand holds
    that is no sequence of booleans is shown as it is: a repr must not raise (logging and a
    traceback print it)."""
    try:
        if all(flag.__class__ is bool for flag in flags):
            return f"<{sum(flags)} of {len(flags)} hours allowed>"
    except TypeError:  # not iterable, or no len
        pass
    return repr(flags)


_ALLOWED = ord("T")
_BARRED = ord("F")
_FLAG_BYTES: dict[object, int] = {True: _ALLOWED, False: _BARRED}  # 1 and 0 hash as True and False
_FLAG_TYPES = frozenset({bool, int})


class HourFlags(Sequence[bool]):
    """A backup window's flags, one per hour: an immutable sequence of booleans kept one byte each.

    Decoded windows hold their flags this way: 168 flags take about 240 bytes where a tuple of
    booleans takes 1.4 KB, and the garbage collector sees one small object instead of a tuple of
    168 references. It reads like the tuple of its flags: an index gives a `bool` (a slice gives
    a tuple), and iteration, ``len``, ``in``, ``count``, ``index`` and pickling work; it compares
    equal to a tuple of the same booleans and hashes like one, so a window built by hand with a
    tuple equals the decoded one.

    ```python
    flags = HourFlags([True, False] * 84)
    assert flags[0] is True and len(flags) == 168
    assert flags == (True, False) * 84
    ```
    """

    __slots__ = ("_bytes",)
    _bytes: bytes

    def __init__(self, flags: Iterable[bool] = ()) -> None:
        """The flags of ``flags``: booleans (``1`` and ``0`` read as them). Anything else is a
        `ConfigError` naming the first such flag, as `BackupWindow.allows` says it of a window
        built with it (taken by its truth value, ``"F"`` allowed its hour); so is ``flags`` that
        is not iterable."""
        try:
            items = iter(flags)
        except TypeError:
            said = f"HourFlags takes an iterable of booleans, got {type(flags).__name__}"
            raise ConfigError(said) from None
        written = bytearray()
        for flag in items:
            byte = _FLAG_BYTES.get(flag) if flag.__class__ in _FLAG_TYPES else None
            if byte is None:
                raise ConfigError(
                    f"HourFlags takes booleans: flag [{len(written)}] is {type(flag).__name__} "
                    f"{printable(repr(flag))[:40]}"
                )
            written.append(byte)
        object.__setattr__(self, "_bytes", bytes(written))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"HourFlags is immutable (cannot set {name!r})")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"HourFlags is immutable (cannot delete {name!r})")

    def __len__(self) -> int:
        return len(self._bytes)

    @overload
    def __getitem__(self, index: int) -> bool: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[bool, ...]: ...
    def __getitem__(self, index: int | slice) -> bool | tuple[bool, ...]:
        if isinstance(index, slice):
            return tuple(self)[index]
        return self._bytes[index] == _ALLOWED

    def __iter__(self) -> Iterator[bool]:
        return map(_ALLOWED.__eq__, self._bytes)

    def __reversed__(self) -> Iterator[bool]:
        return map(_ALLOWED.__eq__, reversed(self._bytes))

    def __contains__(self, value: object) -> bool:
        present = [flag for flag, byte in ((True, _ALLOWED), (False, _BARRED)) if byte in self._bytes]
        return any(flag is value or flag == value for flag in present)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, HourFlags):
            return self._bytes == other._bytes
        if isinstance(other, tuple):
            return tuple(self) == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return f"HourFlags(<{self._bytes.count(_ALLOWED)} of {len(self._bytes)} hours allowed>)"

    def __reduce__(self) -> tuple[type[HourFlags], tuple[tuple[bool, ...]]]:
        return HourFlags, (tuple(self),)


def flags_from_bytes(data: bytes) -> HourFlags:
    """The `HourFlags` whose bytes are ``data`` (``T`` allowed, ``F`` not; the caller has checked
    that nothing else is there), without the constructor's conversion: the decoder's way."""
    flags = object.__new__(HourFlags)
    _SET_BYTES(flags, data)
    return flags


_SET_BYTES = HourFlags._bytes.__set__  # type: ignore[attr-defined]


def _flags_key(flags: Sequence[bool]) -> object:
    """What a window's flags are compared and hashed by: a mutable sequence given by hand (a
    list) as the tuple of its flags, so the window hashes and equals the decoded one."""
    return tuple(flags) if isinstance(flags, MutableSequence) else flags


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def window_flags(flags: object, name: str) -> Sequence[object]:
    """A window's ``flags`` (its ``backup_intervals_array``), or `ConfigError` naming ``name``
    when they are no sequence (a window built by hand: None, a string)."""
    if not isinstance(flags, Sequence) or isinstance(flags, str | bytes):
        raise ConfigError(f"{name} must be a sequence of booleans, got {type(flags).__name__}")
    return flags


def flag_at(flags: Sequence[object], index: int, name: str) -> bool:
    """``flags[index]``, or `ConfigError` naming it when it is no bool: ``"F"``, in a window
    built by hand, is truthy and was read as an allowed hour."""
    flag = flags[index]
    if flag.__class__ is not bool:
        raise ConfigError(f"{name}[{index}] must be a bool, got {type(flag).__name__}")
    return flag is True


@attrs.frozen
class BackupWindow:
    """When backups may run: ``backup_intervals_array`` has one flag per hour of the week
    (168 = 7 days x 24 hours, Sunday first; index = day * 24 + hour), in the time zone that is
    ``minute_offset`` minutes ahead of UTC (v1 ``backupWindow.backupIntervalsArray``, v6+
    ``backupWindowSettings.backupWindow``).

    Decoded windows hold their flags as `HourFlags` (compact, equal to the tuple of its flags);
    a window built by hand may hold any sequence of booleans, a tuple or a list for instance
    (compared and hashed by its flags, so it equals the decoded window)."""

    backup_intervals_array: Sequence[bool] = attrs.field(factory=HourFlags, repr=_hours, eq=_flags_key)
    minute_offset: int | None = None

    def allows(self, day: int, hour: int) -> bool:
        """Whether backups may run in ``hour`` (0-23) of ``day`` (0 = Sunday, as the server
        counts; Python's ``weekday()`` counts from Monday, so prefer `allows_at`).

        Values out of range raise `ConfigError`, as do flags that are not booleans (a window
        built by hand with ``"F"``, which is truthy). An hour the server's array does not cover
        (a window shorter than 168 flags) is not allowed.
        """
        if not _is_int(day) or not 0 <= day <= 6:
            raise ConfigError(f"day must be an integer 0-6 (0 = Sunday), got {day!r}")
        if not _is_int(hour) or not 0 <= hour <= 23:
            raise ConfigError(f"hour must be an integer 0-23, got {hour!r}")
        flags = window_flags(self.backup_intervals_array, "backup_intervals_array")
        index = day * 24 + hour
        return index < len(flags) and flag_at(flags, index, "backup_intervals_array")

    def allows_at(self, when: dt.datetime) -> bool:
        """Whether backups may run at the moment ``when`` (an aware datetime).

        The moment is moved into the window's zone (UTC plus ``minute_offset`` minutes; UTC
        when the server sent no offset) before its weekday and hour are looked up.
        """
        if not isinstance(when, dt.datetime) or when.tzinfo is None or when.utcoffset() is None:
            raise ConfigError("allows_at() needs an aware datetime (with a tzinfo)")
        if self.minute_offset is not None and not _is_int(self.minute_offset):
            kind = type(self.minute_offset).__name__
            raise ConfigError(f"minute_offset must be an integer (minutes) or None, got {kind}")
        # Within the week, from Sunday 00:00 of ``when``'s own zone, then moved into the window's:
        # the window repeats weekly, so any offset the server sends counts modulo a week, and no
        # datetime is built that could leave the calendar.
        offset = dt.timedelta(minutes=(self.minute_offset or 0) % _WEEK_MINUTES)
        since_sunday = dt.timedelta(
            days=when.isoweekday() % 7,
            hours=when.hour,
            minutes=when.minute,
            seconds=when.second,
            microseconds=when.microsecond,
        )
        into_week = (since_sunday - when.utcoffset() + offset) % _WEEK  # type: ignore[operator]
        return self.allows(day=into_week.days, hour=into_week.seconds // 3600)


@attrs.frozen
class SchedulePolicy:
    """A job's ``schedulePolicy``; ``daily_time`` is the wire ``HH:MM:SS`` as a `datetime.time`.

    ``backup_window`` is the same `BackupWindow` on every version; ``periodically_window`` and
    the ``*_enabled`` switches are v6+ (``periodically_window_enabled`` v7+).
    """

    type: ScheduleType | None = None
    periodically_every: PeriodicallyEvery | None = None
    daily_type: DailyType | None = None
    daily_time: dt.time | None = None
    schedule_enabled: bool | None = None
    backup_window_enabled: bool | None = None
    backup_window: BackupWindow | None = None
    periodically_window_enabled: bool | None = None
    periodically_window: BackupWindow | None = None
    periodically_offset_minutes: int | None = None
    retry_enabled: bool | None = None
    retry_number: int | None = None
    retry_wait_interval: int | None = None


@attrs.frozen
class OrganizationLinks:
    """``_links`` of an organization (``mailboxes`` is v1; the others v2+).

    ``used_repositories`` lists what the organization's backups take in each repository (v6+,
    the same as `VBOClient.organization_used_repositories`).
    """

    self: Link[Organization] | None = attrs.field(default=None, alias="self_")
    jobs: CollectionLink[Job] | None = None
    mailboxes: CollectionLink[SelectedMailbox] | None = None
    used_repositories: CollectionLink[UsedRepository] | None = None
    users: CollectionLink[object] | None = None
    groups: CollectionLink[object] | None = None
    sites: CollectionLink[object] | None = None
    teams: CollectionLink[object] | None = None

    @overload
    def require(self, relation: Literal["self"]) -> Link[Organization]: ...
    @overload
    def require(self, relation: Literal["jobs"]) -> CollectionLink[Job]: ...
    @overload
    def require(self, relation: Literal["mailboxes"]) -> CollectionLink[SelectedMailbox]: ...
    @overload
    def require(self, relation: Literal["used_repositories"]) -> CollectionLink[UsedRepository]: ...
    @overload
    def require(self, relation: Literal["users"]) -> CollectionLink[object]: ...
    @overload
    def require(self, relation: Literal["groups"]) -> CollectionLink[object]: ...
    @overload
    def require(self, relation: Literal["sites"]) -> CollectionLink[object]: ...
    @overload
    def require(self, relation: Literal["teams"]) -> CollectionLink[object]: ...
    @overload
    def require(self, relation: str) -> Link[object]: ...
    def require(self, relation: str) -> Link[Any]:
        """The link named ``relation``; `LinkError` naming it when the server sent none, or when
        this resource has no such relation (a name read at run time: typed ``Link[object]``)."""
        return _require(self, relation)


@attrs.frozen
class Organization:
    """A tenant (``/{version}/Organizations/{id}``).

    ``is_backedup``, ``first_backuptime`` and ``last_backuptime`` are absent from v7+ answers
    unless the server was asked for its extended view (``extendedView=true``, which the client
    asks for however the organization is reached: ``organizations()``, ``organization()`` or a
    followed link such as ``job.links.organization``). ``msid`` (the Microsoft 365 tenant's
    id) and ``backed_up_organization_id`` are v8.
    """

    id: str
    name: str | None = None
    type: str | None = None
    username: str | None = None
    region: str | None = None
    office_name: str | None = None
    description: str | None = None
    msid: str | None = None
    backed_up_organization_id: str | None = None
    is_exchange_online: bool | None = None
    is_sharepoint_online: bool | None = None
    is_teams_online: bool | None = None
    is_teams_chats_online: bool | None = None
    is_backedup: bool | None = None
    first_backuptime: dt.datetime | None = None
    last_backuptime: dt.datetime | None = None
    links: OrganizationLinks = attrs.Factory(OrganizationLinks)


@attrs.frozen
class BackupRepositoryLinks:
    """``_links`` of a backup repository (a v8 repository of a proxy pool has no ``proxy``)."""

    self: Link[BackupRepository] | None = attrs.field(default=None, alias="self_")
    proxy: Link[Proxy] | None = None

    @overload
    def require(self, relation: Literal["self"]) -> Link[BackupRepository]: ...
    @overload
    def require(self, relation: Literal["proxy"]) -> Link[Proxy]: ...
    @overload
    def require(self, relation: str) -> Link[object]: ...
    def require(self, relation: str) -> Link[Any]:
        """The link named ``relation``; `LinkError` naming it when the server sent none, or when
        this resource has no such relation (a name read at run time: typed ``Link[object]``)."""
        return _require(self, relation)


@attrs.frozen
class ObjectStorage:
    """The object storage a backup repository keeps its backups in: what the bucket or
    container holds (``used_space_bytes``) and has left, its size limit in GB when
    ``size_limit_enabled``, and its immutability (v7+). v8 sends it inside the repository
    (``objectStorage``); v6/v7 as ``/{version}/objectstoragerepositories/{id}``, which alone
    names it (``name``, ``description``). `VBOClient.object_storage` gives it on every version."""

    id: str | None = None
    name: str | None = None
    description: str | None = None
    type: ObjectStorageType | None = None
    used_space_bytes: int | None = None
    free_space_bytes: int | None = None
    size_limit_enabled: bool | None = None
    size_limit_gb: int | None = None
    enable_immutability: bool | None = None
    immutability_period_days: int | None = None


@attrs.frozen
class BackupRepository:
    """A backup repository (``/{version}/BackupRepositories/{id}``).

    ``capacity`` and ``free_space`` are bytes on every version (v1 ``capacity``/``freeSpace``,
    v6+ ``capacityBytes``/``freeSpaceBytes``). The monthly and yearly retention settings, the
    encryption fields and ``is_out_of_sync`` are v6+; ``is_outdated``, ``is_indexed``,
    ``is_migration_locked``, ``is_out_of_order`` and ``out_of_order_reason`` (why the server
    took the repository out of service, None while it is in order) are v8. A repository backed
    by object storage names it by ``object_storage_id`` (with its local cache's
    ``object_storage_cache_path``) on v6/v7, and holds it as ``object_storage`` on v8.
    """

    id: str
    name: str | None = None
    description: str | None = None
    proxy_id: str | None = None
    proxy_pool_id: str | None = None
    organization_id: str | None = None
    path: str | None = None
    retention_type: RetentionType | None = None
    retention_period_type: str | None = None
    daily_retention_period: int | None = None
    retention_frequency_type: str | None = None
    daily_time: dt.time | None = None
    daily_type: DailyType | None = None
    capacity: int | None = None
    free_space: int | None = None
    is_long_term: bool | None = None
    is_out_of_sync: bool | None = None
    is_outdated: bool | None = None
    monthly_retention_period: int | None = None
    yearly_retention_period: str | None = None
    monthly_time: dt.time | None = None
    monthly_daynumber: str | None = None
    monthly_dayofweek: str | None = None
    object_storage_encryption_enabled: bool | None = None
    encryption_key_id: str | None = None
    is_indexed: bool | None = None
    is_migration_locked: bool | None = None
    is_out_of_order: bool | None = None
    out_of_order_reason: str | None = None
    object_storage_id: str | None = None
    object_storage_cache_path: str | None = None
    object_storage: ObjectStorage | None = None
    links: BackupRepositoryLinks = attrs.Factory(BackupRepositoryLinks)


@attrs.frozen
class ProxyLinks:
    """``_links`` of a backup proxy."""

    self: Link[Proxy] | None = attrs.field(default=None, alias="self_")
    repositories: CollectionLink[BackupRepository] | None = None

    @overload
    def require(self, relation: Literal["self"]) -> Link[Proxy]: ...
    @overload
    def require(self, relation: Literal["repositories"]) -> CollectionLink[BackupRepository]: ...
    @overload
    def require(self, relation: str) -> Link[object]: ...
    def require(self, relation: str) -> Link[Any]:
        """The link named ``relation``; `LinkError` naming it when the server sent none, or when
        this resource has no such relation (a name read at run time: typed ``Link[object]``)."""
        return _require(self, relation)


@attrs.frozen
class Proxy:
    """A backup proxy (``/{version}/Proxies/{id}``).

    ``enable_network_throttling`` reads v1's spelling ``enableNetworkthrottling`` and the later
    ``enableNetworkThrottling``; ``use_internet_proxy`` and ``internet_proxy_type`` are v6+,
    ``fqdn`` v7+, the rest of the monitoring fields v8 (``roles`` is v8's ``role`` list).
    """

    id: str
    host_name: str | None = None
    fqdn: str | None = None
    description: str | None = None
    port: int | None = None
    type: ProxyType | None = None
    operating_system: OperatingSystem | None = None
    threads_number: int | None = None
    enable_network_throttling: bool | None = None
    throttling_value: int | None = None
    throttling_unit: str | None = None
    status: ProxyStatus | None = None
    maintenance_mode_state: MaintenanceModeState | None = None
    cpu_usage_percent: float | None = None
    memory_usage_percent: float | None = None
    version: str | None = None
    proxy_pool_id: str | None = None
    roles: tuple[ProxyRole, ...] | None = None
    service_account: str | None = None
    use_internet_proxy: bool | None = None
    internet_proxy_type: str | None = None
    links: ProxyLinks = attrs.Factory(ProxyLinks)


@attrs.frozen
class JobSessionStatistics:
    """``statistics`` of a job session.

    v1 sends display strings (``processing_rate`` ``"99.1 KB/s (6 items/s)"``, ...); v3+ send
    integers (``processing_rate_bytes_ps``, ..., ``transferred_data_bytes``). Each version
    fills its own fields; the others stay ``None``.
    """

    processing_rate: str | None = None
    read_rate: str | None = None
    write_rate: str | None = None
    transferred_data: str | None = None
    processing_rate_bytes_ps: int | None = None
    processing_rate_items_ps: int | None = None
    read_rate_bytes_ps: int | None = None
    write_rate_bytes_ps: int | None = None
    transferred_data_bytes: int | None = None
    processed_objects: int | None = None
    bottleneck: Bottleneck | None = None


@attrs.frozen
class JobSessionLinks:
    """``_links`` of a job session; ``log`` lists the run's log items as raw JSON (v6+
    ``LogItems``, a paged list: every page is read, as for any list)."""

    self: Link[JobSession] | None = attrs.field(default=None, alias="self_")
    log: CollectionLink[object] | None = None
    job: Link[Job] | None = None

    @overload
    def require(self, relation: Literal["self"]) -> Link[JobSession]: ...
    @overload
    def require(self, relation: Literal["log"]) -> CollectionLink[object]: ...
    @overload
    def require(self, relation: Literal["job"]) -> Link[Job]: ...
    @overload
    def require(self, relation: str) -> Link[object]: ...
    def require(self, relation: str) -> Link[Any]:
        """The link named ``relation``; `LinkError` naming it when the server sent none, or when
        this resource has no such relation (a name read at run time: typed ``Link[object]``)."""
        return _require(self, relation)


@attrs.frozen
class JobSession:
    """One run of a job (``/{version}/JobSessions/{id}``).

    ``job_id`` is filled on every version: from the wire (v8), else from the session's ``job``
    link or the request that listed it. ``job_will_be_retried`` tells a failed run the server
    will retry (v7+); ``main_session_id`` links a retry to its first run. ``proxy_id`` or
    ``proxy_pool_id`` (whichever processed the run), and ``e_tag``, are v8.
    """

    id: str
    job_id: str | None = None
    repository_id: str | None = None
    creation_time: dt.datetime | None = None
    end_time: dt.datetime | None = None
    progress: int | None = None
    status: JobStatus | None = None
    details: str | None = None
    retry_count: int | None = None
    main_session_id: str | None = None
    job_will_be_retried: bool | None = None
    job_type: JobType | None = None
    job_session_config_type: JobSessionConfigType | None = None
    statistics: JobSessionStatistics | None = None
    proxy_id: str | None = None
    proxy_pool_id: str | None = None
    e_tag: int | None = None
    links: JobSessionLinks = attrs.Factory(JobSessionLinks)


@attrs.frozen
class SelectedMailboxLinks:
    """``_links`` of a selected mailbox (``self`` names the organization's mailbox)."""

    self: Link[SelectedMailbox] | None = attrs.field(default=None, alias="self_")
    organization: Link[Organization] | None = None

    @overload
    def require(self, relation: Literal["self"]) -> Link[SelectedMailbox]: ...
    @overload
    def require(self, relation: Literal["organization"]) -> Link[Organization]: ...
    @overload
    def require(self, relation: str) -> Link[object]: ...
    def require(self, relation: str) -> Link[Any]:
        """The link named ``relation``; `LinkError` naming it when the server sent none, or when
        this resource has no such relation (a name read at run time: typed ``Link[object]``)."""
        return _require(self, relation)


@attrs.frozen
class SelectedMailbox:
    """A mailbox a v1 job backs up (``/v1/Jobs/{id}/SelectedMailboxes``)."""

    id: str
    email: str | None = None
    name: str | None = None
    is_backed_up: bool | None = None
    links: SelectedMailboxLinks = attrs.Factory(SelectedMailboxLinks)


@attrs.frozen
class SelectedItemObject:
    """The user, group, site or team a selected item names (the fields those share)."""

    id: str | None = None
    name: str | None = None
    display_name: str | None = None
    type: str | None = None
    url: str | None = None
    title: str | None = None
    mail: str | None = None


@attrs.frozen
class SelectedItem:
    """A row of a v2+ job's ``selectedItems`` or ``excludedItems``: what is (not) backed up.

    ``id`` is the server's opaque item id (not always a GUID; v7+ may send none: None). ``type``
    says which of ``user``/``group``/``site``/``team`` is set; the flags say which of its data
    is included.
    """

    id: str | None = None
    type: SelectedItemType | None = None
    user: SelectedItemObject | None = None
    group: SelectedItemObject | None = None
    site: SelectedItemObject | None = None
    team: SelectedItemObject | None = None
    mailbox: bool | None = None
    archive_mailbox: bool | None = None
    one_drive: bool | None = None
    personal_site: bool | None = None
    sites: bool | None = None
    teams: bool | None = None
    teams_chats: bool | None = None
    members: bool | None = None
    member_mailbox: bool | None = None
    member_archive_mailbox: bool | None = None
    member_onedrive: bool | None = None
    member_site: bool | None = None
    group_site: bool | None = None
    folders: tuple[str, ...] | None = None


@attrs.frozen
class JobLinks:
    """``_links`` of a job: each an awaitable link, ``None`` when the server did not send it.

    The same relations on every version, whatever the wire calls them: ``repository`` is v6+'s
    ``backupRepository``; on v6+ ``proxy`` goes through the job's repository to its proxy (jobs
    carry no proxy link there, so ``proxy`` is None when ``repository`` is; awaiting it raises
    `LinkError` when the repository has no proxy, as a v8 repository of a proxy pool); on v7/v8
    ``jobsessions`` lists ``/JobSessions?jobId=`` because the server's own link is dead.
    ``selected_mailboxes`` is v1, ``selected_items``, ``excluded_items`` and ``copy_job`` v2+.
    """

    self: Link[Job] | None = attrs.field(default=None, alias="self_")
    organization: Link[Organization] | None = None
    repository: Link[BackupRepository] | None = None
    proxy: Link[Proxy] | None = None
    selected_mailboxes: CollectionLink[SelectedMailbox] | None = None
    selected_items: CollectionLink[SelectedItem] | None = None
    excluded_items: CollectionLink[SelectedItem] | None = None
    jobsessions: CollectionLink[JobSession] | None = None
    copy_job: Link[object] | None = None

    @overload
    def require(self, relation: Literal["self"]) -> Link[Job]: ...
    @overload
    def require(self, relation: Literal["organization"]) -> Link[Organization]: ...
    @overload
    def require(self, relation: Literal["repository"]) -> Link[BackupRepository]: ...
    @overload
    def require(self, relation: Literal["proxy"]) -> Link[Proxy]: ...
    @overload
    def require(self, relation: Literal["selected_mailboxes"]) -> CollectionLink[SelectedMailbox]: ...
    @overload
    def require(self, relation: Literal["selected_items"]) -> CollectionLink[SelectedItem]: ...
    @overload
    def require(self, relation: Literal["excluded_items"]) -> CollectionLink[SelectedItem]: ...
    @overload
    def require(self, relation: Literal["jobsessions"]) -> CollectionLink[JobSession]: ...
    @overload
    def require(self, relation: Literal["copy_job"]) -> Link[object]: ...
    @overload
    def require(self, relation: str) -> Link[object]: ...
    def require(self, relation: str) -> Link[Any]:
        """The link named ``relation``; `LinkError` naming it when the server sent none, or when
        this resource has no such relation (a name read at run time: typed ``Link[object]``).
        A ``proxy`` missing with the ``repository`` it would go through (v6+) names both."""
        if relation == "proxy" and self.proxy is None and self.repository is None:
            raise LinkError(
                "no 'proxy' link: the server sent none here, nor the 'repository' link through which "
                f"v6+ servers give a job's proxy (present: {_present(self)})",
                relation="repository",
            )
        return _require(self, relation)


@attrs.frozen
class Job:
    """A backup job (``/{version}/Jobs/{id}``), the same type on every API version.

    ``organization_id`` and ``repository_id`` are filled from the job's links where the wire
    has no such field (v1-v7). ``last_backup`` is the last successful run (v7+); ``backup_type``
    is v2+ (v1 says ``all_mailboxes``). ``selected_mailboxes``, ``excluded_mailboxes``,
    ``proxy_id`` and ``is_run`` are in v1's property table but usually absent from answers.
    """

    id: str
    name: str | None = None
    description: str | None = None
    backup_type: BackupType | None = None
    all_mailboxes: bool | None = None
    organization_id: str | None = None
    repository_id: str | None = None
    proxy_id: str | None = None
    last_status: JobStatus | None = None
    last_run: dt.datetime | None = None
    next_run: dt.datetime | None = None
    last_backup: dt.datetime | None = None
    is_enabled: bool | None = None
    schedule_policy: SchedulePolicy | None = None
    is_run: bool | None = None
    e_tag: int | None = None
    selected_mailboxes: tuple[SelectedMailbox, ...] | None = None
    excluded_mailboxes: tuple[SelectedMailbox, ...] | None = None
    links: JobLinks = attrs.Factory(JobLinks)


@attrs.frozen
class ServiceInstance:
    """``/{version}/ServiceInstance`` (v6+): the server's installation id and build number."""

    installation_id: str | None = None
    version: str | None = None


@attrs.frozen
class UsedRepositoryLinks:
    """``_links`` of a row of ``usedRepositories``: the repository it is about."""

    backup_repository: Link[BackupRepository] | None = None

    @overload
    def require(self, relation: Literal["backup_repository"]) -> Link[BackupRepository]: ...
    @overload
    def require(self, relation: str) -> Link[object]: ...
    def require(self, relation: str) -> Link[Any]:
        """The link named ``relation``; `LinkError` naming it when the server sent none, or when
        this resource has no such relation (a name read at run time: typed ``Link[object]``)."""
        return _require(self, relation)


@attrs.frozen
class UsedRepository:
    """What one organization's backups take in one repository: a row of
    ``/{version}/Organizations/{id}/usedRepositories`` (v6+).

    Sizes are bytes. ``repository_id`` is on the wire from v8 on and read from the
    ``backupRepository`` link before; ``protected_objects_count`` is v8.
    """

    repository_id: str | None = None
    used_space_bytes: int | None = None
    local_cache_used_space_bytes: int | None = None
    object_storage_used_space_bytes: int | None = None
    is_available: bool | None = None
    details: str | None = None
    protected_objects_count: int | None = None
    links: UsedRepositoryLinks = attrs.Factory(UsedRepositoryLinks)


@attrs.frozen
class License:
    """The server's license (``/{version}/License``, v6+).

    ``license_expires`` is v6's ``expirationDate`` and v7+'s ``licenseExpires``;
    ``support_expires`` and ``contact_person`` are v6 only, ``grace_period_expires`` and
    ``package`` v7+. ``total_number`` users are licensed, ``used_number`` use a license,
    ``new_number`` are new since the last count.
    """

    license_id: str | None = None
    status: LicenseStatus | None = None
    type: LicenseType | None = None
    package: str | None = None
    license_expires: dt.datetime | None = None
    grace_period_expires: dt.datetime | None = None
    support_expires: dt.datetime | None = None
    licensed_to: str | None = None
    email: str | None = None
    contact_person: str | None = None
    support_id: str | None = None
    total_number: int | None = None
    used_number: int | None = None
    new_number: int | None = None


RESOURCES: tuple[type, ...] = (
    Organization,
    Job,
    JobSession,
    BackupRepository,
    Proxy,
    SelectedMailbox,
    SelectedItem,
    ServiceInstance,
    License,
    UsedRepository,
)
"""The models a client fetches and decodes at the top level (``from_wire`` accepts these). Every
model and enum they contain is found from here; nothing else lists them."""


def _resolve() -> None:
    """Turn every field's annotation into its type once, so nobody else has to (the links'
    ``Link[...]`` targets and the converter read them)."""
    for value in list(globals().values()):
        if isinstance(value, type) and attrs.has(value) and value.__module__ == __name__:
            attrs.resolve_types(value, globalns=globals())


_resolve()
