"""What ``demo``, ``jobs`` and ``poll`` found: one `Row` per job or per failure, and the `Report`.

Pure data (no click, no rich): the table and ``--json`` are both drawn from a `Report`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterable, Sequence
from typing import IO, Any

import attrs

from .._exceptions import ConfigError, TransportError, VBOError
from .._health import UNREADABLE_SESSIONS, HealthState, is_never
from .._poll import PollResult
from .._zones import as_sent
from ._connect import Source, explain
from ._exit import CLIError, Outcome

__all__ = [
    "FOLLOW",
    "HEALTH_ORDER",
    "MAX_LINK_WARNINGS",
    "Report",
    "Row",
    "Unread",
    "error_row",
    "failure_row",
    "health_rank",
    "link_problems",
    "plural",
    "rows_of",
    "warn_link_problems",
]

log = logging.getLogger("vbo_async.cli")

FOLLOW = ("repository", "proxy")
"""The links prefetched for every job: one GET per distinct repository and proxy per server.
The organization is known from the listing and never fetched through a job's link."""

MAX_LINK_WARNINGS = 10
"""The most jobs whose repository or proxy could not be read a sweep logs a warning for
(`warn_link_problems`); one more line counts the others. A server whose 10,000 jobs each name a
repository it cannot serve made 10,000 lines."""


@attrs.frozen
class Unread:
    """An item of a server's listing (a repository, a proxy) that could not be decoded: its id
    as listed (lower-cased; "" when it cannot be read) and why, said as a `VBOError` says it."""

    id: str
    error: str


@attrs.frozen(kw_only=True)
class Row:
    """One job as the table and ``--json`` show it, or one failure (``error`` set).

    A failure has ``None`` for what it lacks: a tenant that could not be read has no job, and a
    server that could not be read (or listed) has no organization either.
    """

    server: str
    organization: str | None = None
    organization_id: str | None = None
    job: str | None = None
    job_id: str | None = None
    enabled: bool | None = None
    last_status: str | None = None
    last_run: dt.datetime | None = None
    next_run: dt.datetime | None = None
    repository: str | None = None
    proxy: str | None = None
    health: HealthState | None = None
    """The job's health (`poll_jobs(health=...)`); None for a failure row. ``--json`` shows
    its name (``"CRITICAL"``)."""
    health_reason: str | None = None
    """The one line naming what decided ``health``: ``"failed 2 days ago"``."""
    error: str | None = None
    clock_shift: dt.timedelta = attrs.field(default=dt.timedelta(0), metadata={"json": False})
    """How far the server's clock, by which health was judged, is off this machine's (none when
    under a minute or over a day): the table's "3 h ago" is measured on that clock too."""
    unreachable: bool = attrs.field(default=False, metadata={"json": False})
    """The error is a transport error (connect, TLS, timeout): the summary says "unreachable"."""
    unasked: bool = attrs.field(default=False, metadata={"json": False})
    """The server was never asked (a sweep's time limit found it waiting for the servers before
    it): the summary says "not asked", not "could not be read"."""
    sessions_unread: bool = attrs.field(default=False, metadata={"json": False})
    """The job's sessions could not be read (its health UNKNOWN, saying so): not everything was
    read, as for a failure row."""

    def as_json(self) -> dict[str, Any]:
        return {
            field.name: _json_value(getattr(self, field.name))
            for field in attrs.fields(Row)
            if field.metadata.get("json", True)
        }


def _json_value(value: object) -> object:
    """``value`` as ``--json`` writes it: a state by name, a time in ISO 8601, ``null`` for a time
    that never was or never will be (`is_never`: up to 1970, as .NET's 0001-01-01, or in 9999, as
    its MaxValue), as the table reads "never"."""
    if isinstance(value, HealthState):
        return value.name
    if isinstance(value, dt.datetime):
        return None if is_never(value) else as_sent(value)
    return value


def error_row(
    server: str,
    error: VBOError | str,
    *,
    organization: str | None = None,
    organization_id: str | None = None,
    source: Source = "options",
) -> Row:
    text = error if isinstance(error, str) else explain(error, source=source)
    return Row(
        server=server,
        organization=organization,
        organization_id=organization_id,
        error=text,
        unreachable=isinstance(error, TransportError),
    )


def failure_row(
    error: VBOError | CLIError, server: str, *, organization: str | None = None, source: Source = "options"
) -> Row | None:
    """The failure row of a command that ended in ``error`` when that is a failure to read (exit
    1: a server down, a refused password, an organization not found), for ``--json`` to print;
    None for a usage error (nothing was asked of a server: nothing to print)."""
    if isinstance(error, CLIError):
        if error.outcome is not Outcome.UNREADABLE:
            return None
        return error_row(server, "; ".join(error.lines), organization=organization)
    if isinstance(error, ConfigError):
        return None
    return error_row(server, error, organization=organization, source=source)


def rows_of(result: PollResult, server: str, *, source: Source = "options") -> list[Row]:
    """The rows of one tenant's `PollResult`: its jobs (a job the server listed twice once), or
    its error. A job whose repository or proxy could not be read keeps its row (that column is
    empty; `link_problems` says why); a repository without a proxy link (one of a v8 proxy pool)
    just leaves the proxy empty."""
    target = result.target
    organization = target.name or target.organization_id
    if result.error is not None:
        return [
            error_row(
                server,
                result.error,
                organization=organization,
                organization_id=target.organization_id,
                source=source,
            )
        ]
    followed = set(result.follow)
    shift = target.client._server_clock_shift()
    rows = []
    seen: set[str] = set()
    for job in result.jobs:
        # A server listing a job twice: one row, as the exporter has one series (`poll_jobs`
        # gives each job once already, as first listed: `first_listed`).
        if (key := job.id.lower()) in seen:
            continue
        seen.add(key)
        repository = result.resolved(job, "repository") if "repository" in followed else None
        proxy = result.resolved(job, "proxy") if "proxy" in followed else None
        health = result.health.get(job.id)
        rows.append(
            Row(
                server=server,
                organization=organization,
                organization_id=target.organization_id,
                job=job.name or job.id,
                job_id=job.id,
                enabled=job.is_enabled,
                last_status=str(job.last_status) if job.last_status is not None else None,
                last_run=job.last_run,
                next_run=job.next_run,
                repository=repository.name if repository is not None else None,
                proxy=proxy.host_name if proxy is not None else None,
                health=health.state if health is not None else None,
                health_reason=health.reason if health is not None else None,
                clock_shift=shift,
                sessions_unread=health is not None and health.reason.startswith(UNREADABLE_SESSIONS),
            )
        )
    return rows


def link_problems(result: PollResult, server: str) -> list[str]:
    """One line per job of ``result`` whose repository or proxy could not be read (``east /
    contoso: job 12: cannot read its repository: HTTP 503: ...``), none for the proxy a
    repository of a v8 proxy pool does not have (pure)."""
    target = result.target
    organization = target.name or target.organization_id
    pooled = {
        job.id
        for job in result.jobs
        if "repository" in result.follow
        and (repository := result.resolved(job, "repository")) is not None
        and repository.links.proxy is None
    }
    return [
        f"{server} / {organization}: job {job_id}: cannot read its {relation}: {error}"
        for (job_id, relation), error in result.link_errors.items()
        if not (relation == "proxy" and job_id in pooled)  # a proxy pool's: not a failure
    ]


def warn_link_problems(lines: Sequence[str]) -> None:
    """Log a sweep's `link_problems`: the first `MAX_LINK_WARNINGS` as warnings, then one line
    counting the others."""
    for line in lines[:MAX_LINK_WARNINGS]:
        log.warning("%s", line)
    if len(lines) > MAX_LINK_WARNINGS:
        log.warning(
            "%d more jobs whose repository or proxy could not be read are not logged (those cells are empty)",
            len(lines) - MAX_LINK_WARNINGS,
        )


HEALTH_ORDER = (HealthState.CRITICAL, HealthState.WARNING, HealthState.UNKNOWN, HealthState.OK)
"""The order rows needing attention come in: the monitoring plugins' severity, worst first."""
_RANK = {state: rank for rank, state in enumerate(HEALTH_ORDER)}


def health_rank(row: Row) -> int:
    """0 for CRITICAL ... 3 for OK, 4 for a row without health."""
    return _RANK[row.health] if row.health is not None else len(HEALTH_ORDER)


@attrs.frozen(kw_only=True)
class Report:
    """Everything a command found: job rows, failure rows, and how many servers and tenants.

    ``servers`` counts the servers asked (a report of several shows a Server column);
    ``tenants`` counts the tenants whose jobs were read. ``server_errors`` holds the failures of
    whole servers, ``errors`` those of single tenants.
    """

    jobs: tuple[Row, ...] = ()
    errors: tuple[Row, ...] = ()
    servers: int = 1
    tenants: int = 0

    @classmethod
    def collect(cls, rows: Iterable[Row], *, servers: int, tenants: int) -> Report:
        """Sort ``rows`` into jobs and failures (each in server/organization/job order)."""
        jobs: list[Row] = []
        errors: list[Row] = []
        for row in rows:
            (jobs if row.error is None else errors).append(row)
        return cls(
            jobs=tuple(sorted(jobs, key=_key)),
            errors=tuple(sorted(errors, key=_key)),
            servers=servers,
            tenants=tenants,
        )

    @property
    def outcome(self) -> Outcome:
        """`Outcome.UNREADABLE` when anything could not be read (a server, a tenant, a job's
        sessions), else `Outcome.OK` (however many jobs Failed: that is what was read, not a
        failure to read it)."""
        unread = self.errors or any(row.sessions_unread for row in self.jobs)
        return Outcome.UNREADABLE if unread else Outcome.OK

    @property
    def attention_first(self) -> tuple[Row, ...]:
        """The job rows by health, worst first (CRITICAL, WARNING, UNKNOWN, OK, then rows
        without health), each part in server/organization/job order."""
        return tuple(sorted(self.jobs, key=lambda row: (health_rank(row), *_key(row))))

    def count(self, state: HealthState) -> int:
        """How many jobs are in ``state``."""
        return sum(row.health is state for row in self.jobs)

    def summary(self) -> str:
        """``43 jobs on 12 tenants: 8 critical, 5 warning, 1 unknown; 1 server unreachable``.

        Critical and warning jobs are always counted, unknown ones when there are any; after
        the semicolon, the servers and tenants that could not be read, when there are any.
        """
        parts = [
            f"{self.count(HealthState.CRITICAL)} critical",
            f"{self.count(HealthState.WARNING)} warning",
        ]
        if unknown := self.count(HealthState.UNKNOWN):
            parts.append(f"{unknown} unknown")
        failures = self.failures()
        head = f"{plural(len(self.jobs), 'job')} on {plural(self.tenants, 'tenant')}"
        if self.servers > 1:
            head += f" of {plural(self.servers, 'server')}"
        text = f"{head}: {', '.join(parts)}"
        return f"{text}; {', '.join(failures)}" if failures else text

    def failures(self) -> list[str]:
        """What could not be read, counted: ``["1 server unreachable", "2 tenants could not be
        read"]`` (empty when everything was read)."""
        parts = []
        unreachable = sum(row.organization is None and row.unreachable for row in self.errors)
        unasked = sum(row.organization is None and row.unasked for row in self.errors)
        servers = sum(row.organization is None for row in self.errors) - unreachable - unasked
        tenants = sum(row.organization is not None for row in self.errors)
        if unreachable:
            parts.append(plural(unreachable, "server") + " unreachable")
        if servers:
            parts.append(plural(servers, "server") + " could not be read")
        if tenants:
            parts.append(plural(tenants, "tenant") + " could not be read")
        if unasked:
            parts.append(plural(unasked, "server") + " not asked")
        return parts

    def write_json(self, out: IO[str]) -> None:
        """Jobs and failures as one JSON array, in server/organization/job order."""
        rows = sorted((*self.jobs, *self.errors), key=_key)
        json.dump([row.as_json() for row in rows], out, indent=2)
        out.write("\n")


def _key(row: Row) -> tuple[str, str, str, str]:
    return (row.server, (row.organization or "").casefold(), (row.job or "").casefold(), row.job_id or "")


def plural(count: int, noun: str) -> str:
    """``1 server``, ``2 servers``, ``2 repositories``."""
    if count == 1:
        return f"{count} {noun}"
    return (
        f"{count} {noun[:-1]}ies" if noun.endswith("y") and noun[-2:-1] not in "aeiou" else f"{count} {noun}s"
    )
