"""What a sweep is about and what it gives: `PollTarget`, `PollResult`, `PollProgress`."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Final, Literal, TypeVar, overload

import attrs

from ._checks import id_key
from ._client import VBOClient
from ._exceptions import ConfigError, VBOError
from ._health import JobHealth
from ._models import (
    BackupRepository,
    Job,
    JobLinks,
    JobSession,
    Organization,
    Proxy,
    SelectedItem,
    SelectedMailbox,
)

__all__ = ["RELATIONS", "LinkKey", "PollProgress", "PollResult", "PollTarget", "detached"]

RELATIONS: Final[tuple[str, ...]] = tuple(field.name for field in attrs.fields(JobLinks))
"""The relations ``follow`` accepts: the attribute names of `JobLinks`."""

LinkKey = tuple[str, str]
"""``(job id, relation)``: how prefetched objects and link errors are filed in a `PollResult`."""


def detached(error: VBOError) -> VBOError:
    """``error``, and the errors chained to it, without their tracebacks: a result keeps its
    errors (the tenant's, its links') for as long as the caller keeps the result, and the frames
    of a traceback hold what the failed call had read (a whole page of the server's listing, an
    error answer's body) or was reading (a sweep's prefetched resources)."""
    seen: set[int] = set()
    chained: BaseException | None = error
    while chained is not None and id(chained) not in seen:
        seen.add(id(chained))
        chained.__traceback__ = None
        chained = chained.__cause__ or chained.__context__
    return error


def _check_client(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, VBOClient):
        raise ConfigError(f"PollTarget.client must be a VBOClient, got {type(value).__name__}")


def _check_organization_id(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"PollTarget.organization_id must be a non-empty string, got {value!r}")


def _check_organization(instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    if not isinstance(value, Organization):
        kind = type(value).__name__
        raise ConfigError(f"PollTarget.organization must be an Organization or None, got {kind}")
    if not isinstance(value.id, str) or id_key(value.id) != id_key(instance.organization_id):
        raise ConfigError("PollTarget.organization must be the organization named by organization_id")


def _check_name(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"PollTarget.name must be a string or None, got {type(value).__name__}")


@attrs.frozen(kw_only=True)
class PollTarget:
    """One tenant to poll: the organization ``organization_id`` on the server of ``client``.

    Targets may share a client (one client per server is the usual setup: it holds one token and
    one connection pool). ``name`` is a label for reports; `label` falls back to the
    organization's name, then to the id. ``organization`` is the tenant's `Organization` as the
    server listed it, when the caller has it: a batched sweep whose targets all carry theirs does
    not list the server's organizations again (give `poll_jobs` the count that listing found,
    ``organization_counts``, to keep its `BATCH_MIN_SHARE` rule). Invalid arguments raise
    `ConfigError` at once.
    """

    client: VBOClient = attrs.field(validator=_check_client)
    organization_id: str = attrs.field(validator=_check_organization_id)
    name: str | None = attrs.field(default=None, validator=_check_name)
    organization: Organization | None = attrs.field(default=None, validator=_check_organization, eq=False)

    @property
    def label(self) -> str:
        """``name``, or the organization's name, or the organization id."""
        if self.name is not None:
            return self.name
        if self.organization is not None and self.organization.name:
            return self.organization.name
        return self.organization_id


K = TypeVar("K")
V = TypeVar("V")


class _ReadOnly(Mapping[K, V]):
    """A read-only mapping over its own copy of the items that pickles and copies as they do
    (a ``mappingproxy`` does neither: ``pickle`` and ``copy.deepcopy`` raised a bare TypeError)."""

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[K, V]) -> None:
        self._items = dict(items)

    def __getitem__(self, key: K) -> V:
        return self._items[key]

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __iter__(self) -> Iterator[K]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return repr(self._items)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self._items,))


# One converter per field, each typed as its field: a converter's parameter is the type the
# checkers give the ``__init__`` argument (a ``Mapping[Any, Any]`` let any mapping through).


def _prefetched(value: Mapping[LinkKey, object]) -> Mapping[LinkKey, object]:
    return _ReadOnly(value)


def _link_errors(value: Mapping[LinkKey, VBOError]) -> Mapping[LinkKey, VBOError]:
    return _ReadOnly(value)


def _health(value: Mapping[str, JobHealth]) -> Mapping[str, JobHealth]:
    return _ReadOnly(value)


def _count(items: Any) -> str:
    return f"<{len(items)}>"


@attrs.frozen(kw_only=True, eq=False)
class PollResult:
    """What polling one target gave: its jobs, or the `VBOError` that stopped it.

    ``error`` is None when the jobs were listed; otherwise it is the tenant's error and ``jobs``
    is empty. ``elapsed`` is the seconds from the start of the tenant's work to its result,
    prefetch included (time spent waiting for a free slot is not counted).

    With ``follow``, ``prefetched`` maps ``(job id, relation)`` to the resolved object, and
    ``link_errors`` maps it to the `VBOError` of a prefetch that failed. A failed link does not
    fail the tenant: ``error`` stays None and ``jobs`` stay filled. A relation the job does not
    carry appears in neither mapping. One it carries but that leads nowhere is a link error, as
    awaiting the link raises it: v6+ jobs reach their proxy through their repository, and a
    repository of a v8 proxy pool has no proxy link, so such a job's ``(job.id, "proxy")`` entry
    is a `LinkError` naming the missing relation (tell it apart by the resolved repository's
    ``links.proxy`` being None). `resolved` reads ``prefetched`` without any request.

    With a health policy, ``health`` maps each job's id to its `JobHealth` (a job whose sessions
    could not be read is UNKNOWN there, the tenant not failed). ``organization`` is the tenant's
    `Organization` when the sweep listed its server's organizations (a batched sweep does).
    """

    target: PollTarget
    jobs: list[Job] = attrs.field(factory=list, repr=_count)
    error: VBOError | None = None
    elapsed: float = 0.0
    follow: tuple[str, ...] = ()
    prefetched: Mapping[LinkKey, object] = attrs.field(factory=dict, converter=_prefetched, repr=_count)
    link_errors: Mapping[LinkKey, VBOError] = attrs.field(factory=dict, converter=_link_errors, repr=_count)
    health: Mapping[str, JobHealth] = attrs.field(factory=dict, converter=_health, repr=_count)
    organization: Organization | None = None

    @overload
    def resolved(self, job: Job | str, relation: Literal["organization"]) -> Organization | None: ...
    @overload
    def resolved(self, job: Job | str, relation: Literal["repository"]) -> BackupRepository | None: ...
    @overload
    def resolved(self, job: Job | str, relation: Literal["proxy"]) -> Proxy | None: ...
    @overload
    def resolved(self, job: Job | str, relation: Literal["self"]) -> Job | None: ...
    @overload
    def resolved(
        self, job: Job | str, relation: Literal["selected_mailboxes"]
    ) -> list[SelectedMailbox] | None: ...
    @overload
    def resolved(self, job: Job | str, relation: Literal["jobsessions"]) -> list[JobSession] | None: ...
    @overload
    def resolved(
        self, job: Job | str, relation: Literal["selected_items", "excluded_items"]
    ) -> list[SelectedItem] | None: ...
    @overload
    def resolved(self, job: Job | str, relation: str) -> object | None: ...

    def resolved(self, job: Job | str, relation: str) -> object | None:
        """The prefetched object behind ``relation`` of ``job`` (a `Job` or a job id).

        None when the job has no such link or its prefetch failed (then the error is in
        ``link_errors``). A relation that was not in ``follow`` raises `ConfigError`, as does a
        ``job`` that is neither. A job id is matched ignoring case, as ids are everywhere.

        ```python
        repository = result.resolved(job, "repository")
        ```
        """
        if relation not in self.follow:
            raise ConfigError(f"{relation!r} was not prefetched in this sweep (follow={self.follow!r})")
        job_id = job if isinstance(job, str) else job.id if isinstance(job, Job) else None
        if not isinstance(job_id, str):
            raise ConfigError(f"job must be a Job or a job id, got {_kind(job, job_id)}")
        found = self.prefetched.get((job_id, relation), _ABSENT)
        if found is not _ABSENT:
            return found
        return _spelled_otherwise(self.prefetched, id_key(job_id), relation)


_ABSENT = object()


def _spelled_otherwise(prefetched: Mapping[LinkKey, object], wanted: str, relation: str) -> object | None:
    """What ``prefetched`` holds for ``relation`` of the job whose `id_key` is ``wanted`` (the
    listing spelled it otherwise: in another case, or as another of .NET's GUID spellings), or None."""
    for (job_id, name), value in prefetched.items():
        if name == relation and id_key(job_id) == wanted:
            return value
    return None


def _kind(job: object, job_id: object) -> str:
    """What `PollResult.resolved` was given instead of a job: its type, or its id's."""
    return f"a Job whose id is {type(job_id).__name__}" if isinstance(job, Job) else type(job).__name__


@attrs.frozen(kw_only=True, eq=False)
class PollProgress:
    """How far a sweep is: ``done`` of ``total`` targets have their result, ``failed`` of them
    with an error; ``result`` is the one just delivered."""

    done: int
    total: int
    failed: int
    result: PollResult
