"""What ``vbo-async check`` prints and exits with, as a Nagios/Icinga/Checkmk plugin (pure).

No click, no rich, no I/O: durations are parsed here, and a `Report` (jobs with their health,
servers and tenants that could not be read) becomes a `PluginOutput`, the text and the state
whose number is the exit status::

    VB365 CRITICAL - 3 of 120 jobs failing, 1 warning; 1 server unreachable: contoso/Mail ... | jobs=120 ...
    CRITICAL: east/contoso/Mail daily: failed 2 days ago
    ...
    WARNING: east/fabrikam/Archive job: last run ended with warnings 3 h ago
    UNKNOWN: west: cannot connect: ...

With ``--license-expiry WARN,CRIT`` each server's license is judged too (`Expiry`, v6+):
expired, or expiring within CRIT, CRITICAL; expiring within WARN, or more users than licensed,
WARNING. With ``--proxies`` each server's backup proxies: offline CRITICAL (WARNING in
maintenance mode). With ``--repository-free WARN,CRIT`` each server's backup repositories are judged too
(`FreeSpace`): under WARN percent free WARNING, under CRIT CRITICAL, out of order (v8) CRITICAL,
out of sync (v6+) WARNING; their lines read ``CRITICAL: east/repository Repo 1: 4.0% free (...)``.

The state is the most severe finding in the plugin convention's order CRITICAL > WARNING >
UNKNOWN > OK; a server or tenant that could not be read, an ``--org`` that names no
organization, and a check that finds no job at all are UNKNOWN, never OK. Text from servers
(names, error messages) is made plain: no control characters (so no ANSI escapes and no line
breaks), and no ``|``, which would start the performance data. Names and lines are cut, and the
whole output is bounded (`OUTPUT_BYTES`), keeping the worst lines.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import TypeVar

import attrs

from .._enums import LicenseStatus, MaintenanceModeState, ProxyStatus
from .._health import HealthState, is_never
from .._models import BackupRepository, License, Proxy
from ._exit import ExitCodes
from ._report import HEALTH_ORDER, Report, Row, Unread, plural

__all__ = [
    "LINE_CHARS",
    "MAX_SECONDS",
    "NAME_CHARS",
    "OUTPUT_BYTES",
    "PLUGIN_CODES",
    "SUMMARY_CHARS",
    "SUMMARY_ITEMS",
    "DurationError",
    "Expiry",
    "FreeSpace",
    "FreeSpaceError",
    "NotFound",
    "PluginOutput",
    "error_output",
    "format_duration",
    "parse_duration",
    "parse_expiry",
    "parse_free_space",
    "perfdata",
    "plain",
    "plugin_output",
]

T = TypeVar("T", float, dt.timedelta)
R = TypeVar("R")

PLUGIN_CODES = ExitCodes(ok=0, unreadable=3, usage=3, interrupted=3, terminated=3)
"""The exit codes of ``check`` for outcomes that are not a verdict: a usage error, what could
not be read and an interruption are all UNKNOWN (3); a verdict exits with its state's number
(`HealthState`: OK 0, WARNING 1, CRITICAL 2, UNKNOWN 3)."""

SUMMARY_ITEMS = 3
"""How many of the worst findings the first line names before ``...``."""
SUMMARY_CHARS = 1000
"""The most characters the first line's text (before the performance data) takes: the names it
quotes are the servers', and a monitoring system cuts long output (Nagios Core at 8 KiB, older
ones at 4 KiB), which would lose the performance data behind them."""
NAME_CHARS = 200
"""The most characters of a name (server, tenant, job, ``--org`` value) a finding quotes; a
longer one is cut, ending in ``...``, so that the reason after it stays on its line."""
LINE_CHARS = 1000
"""The most characters of any other line of the output (a longer one is cut, ending in ``...``)."""
OUTPUT_BYTES = 8000
"""The most bytes of the whole output, in the encoding stdout writes it with (``encoding=`` of
`plugin_output` and `error_output`, UTF-8 unless told: under GB18030 ``À`` takes 4 bytes, not
2): Nagios Core reads 8 KiB of a plugin's output, performance data included, and
thousands of findings should not flood a monitoring host. The lines that do not fit are the last
ones, the least severe, and one last line counts them."""

# --- durations ------------------------------------------------------------------------------------

_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_DURATION = re.compile(r"(?:([0-9]+)d)?(?:([0-9]+)h)?(?:([0-9]+)m)?(?:([0-9]+)s)?")
MAX_SECONDS = 100 * 365 * 86400
"""The longest duration any option takes: 100 years, in seconds."""
_FRACTION = re.compile(r"[0-9]+\.[0-9]*|\.[0-9]+")


class DurationError(ValueError):
    """A duration that `parse_duration` refuses; the message says why and shows the form."""


def parse_duration(text: str, *, bare: str | None = None) -> dt.timedelta:
    """``90m``, ``26h``, ``2d``, ``1d12h``, ``45s``: whole numbers of days, hours, minutes and
    seconds, each unit at most once and in that order, more than zero in all (case and
    surrounding blanks do not matter). Anything else raises `DurationError`. A whole number
    without a unit is refused (hours? days?), unless ``bare`` names the unit it is in (``"s"``
    for a plugin's ``-t``, seconds to every monitoring plugin); that number may then have a
    fraction (``1.5``, as ``serve --timeout`` reads it).

    ```python
    parse_duration("1d12h")  # timedelta(days=1, seconds=43200)
    ```
    """
    if not isinstance(text, str):
        raise DurationError(f"expected a duration such as 26h, got {type(text).__name__}")
    cleaned = text.strip().lower()
    if bare is not None and _FRACTION.fullmatch(cleaned):
        return _fraction(text, cleaned, _UNITS[bare])
    if bare is not None and cleaned.isascii() and cleaned.isdigit():
        cleaned += bare
    match = _DURATION.fullmatch(cleaned)
    if not cleaned or match is None:
        if cleaned.isascii() and cleaned.isdigit() and _whole(cleaned) == 0:
            raise DurationError(f"{text!r} must be longer than zero")
        if cleaned.isascii() and cleaned.isdigit():
            units = ", ".join(cleaned + unit for unit in "hmd")
            raise DurationError(f"{text!r} has no unit: write {units} or {cleaned}s")
        raise DurationError(f"{text!r} is not a duration such as 90m, 26h, 2d or 1d12h (units d, h, m, s)")
    amounts = zip(match.groups(), _UNITS.values(), strict=True)
    seconds = sum(_whole(amount) * size for amount, size in amounts if amount)
    if seconds <= 0:
        raise DurationError(f"{text!r} must be longer than zero")
    if seconds > MAX_SECONDS:
        raise DurationError(f"{text!r} is longer than 100 years")
    return dt.timedelta(seconds=seconds)


def _fraction(text: str, number: str, size: int) -> dt.timedelta:
    """``number`` (digits with a decimal point) of units of ``size`` seconds, as `parse_duration`
    bounds a duration; a microsecond is the least (`dt.timedelta` holds no less)."""
    whole, _, fraction = number.partition(".")
    if _whole(whole) * size > MAX_SECONDS:
        raise DurationError(f"{text!r} is longer than 100 years")
    seconds = float(f"{whole or 0}.{fraction[:20] or 0}") * size
    if seconds > MAX_SECONDS:
        raise DurationError(f"{text!r} is longer than 100 years")
    delta = dt.timedelta(seconds=seconds)
    if delta <= dt.timedelta(0):
        raise DurationError(f"{text!r} must be longer than zero")
    return delta


def _whole(digits: str) -> int:
    """The number ASCII ``digits`` write, or one past `MAX_SECONDS` when it is larger still:
    ``int()`` refuses a string of more than 4,300 digits with a bare `ValueError`."""
    significant = digits.lstrip("0")
    return int(significant or "0") if len(significant) <= 20 else MAX_SECONDS + 1


def format_duration(delta: dt.timedelta) -> str:
    """``delta`` (more than zero) the way `parse_duration` reads it: ``1d12h``; a fraction of a
    second (``-t 1.5``) is written on the seconds, ``1.5s``, ``1m30.5s``."""
    if delta <= dt.timedelta(0):
        raise ValueError(f"not a positive duration: {delta!r}")
    seconds = delta.days * 86400 + delta.seconds
    parts = []
    for unit, size in _UNITS.items():
        amount, seconds = divmod(seconds, size)
        if unit == "s" and delta.microseconds:
            parts.append(f"{amount}.{delta.microseconds:06d}".rstrip("0") + unit)
        elif amount:
            parts.append(f"{amount}{unit}")
    return "".join(parts)


# --- text -------------------------------------------------------------------------------------------


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]+")


def plain(text: str) -> str:
    """``text`` safe for one line of plugin output: control characters (escape sequences, line
    breaks) and bidirectional controls become a space, ``|`` becomes ``/``, and the ends are
    trimmed. (Tables and error lines write controls out as escapes instead, `printable`: a
    monitoring line, read in alerts and notifications, reads a line break in a name best as a
    space.)"""
    return _CONTROL.sub(" ", text).replace("|", "/").strip()


# --- the verdict ------------------------------------------------------------------------------------


@attrs.frozen
class NotFound:
    """An ``--org`` value that names no organization on any server that could be listed."""

    wanted: str
    message: str


class FreeSpaceError(ValueError):
    """``--repository-free`` that is not ``WARN,CRIT`` percentages (the message says why)."""


@attrs.frozen
class FreeSpace:
    """``--repository-free WARN,CRIT``: a repository with less than ``warning`` percent of its
    capacity free is WARNING, with less than ``critical`` percent CRITICAL."""

    warning: float
    critical: float


def parse_free_space(text: str) -> FreeSpace:
    """``20,10`` or ``20%,10%`` (WARN,CRIT: percentages from 0 to 100, CRIT at most WARN)."""
    parts = [part.strip().removesuffix("%").strip() for part in text.split(",")]
    if len(parts) != 2:
        raise FreeSpaceError(f"{text!r} is not WARN,CRIT: two percentages, as 20,10")
    values = []
    for part in parts:
        try:
            value = float(part)
        except ValueError:
            raise FreeSpaceError(f"{part!r} is not a percentage (WARN,CRIT, as 20,10)") from None
        if not 0 <= value <= 100:  # NaN too
            raise FreeSpaceError(f"{part!r} is not a percentage from 0 to 100")
        values.append(value)
    warning, critical = values
    if critical > warning:
        raise FreeSpaceError(f"the critical level {critical:g}% is above the warning level {warning:g}%")
    return FreeSpace(warning, critical)


@attrs.frozen
class Expiry:
    """``--license-expiry WARN,CRIT``: a license expiring within ``warning`` is WARNING, within
    ``critical`` CRITICAL (one expired is CRITICAL whatever the levels)."""

    warning: dt.timedelta
    critical: dt.timedelta


def parse_expiry(text: str) -> Expiry:
    """``30,7`` (days) or ``30d,7d`` or any two durations `parse_duration` reads, CRIT at most
    WARN; `DurationError` saying why otherwise."""
    parts = text.split(",")
    if len(parts) != 2:
        raise DurationError(f"{text!r} is not WARN,CRIT: two durations, as 30d,7d (a number alone is days)")
    warning, critical = (parse_duration(part, bare="d") for part in parts)
    if critical > warning:
        levels = (
            f"the critical level {format_duration(critical)}, the warning level {format_duration(warning)}"
        )
        raise DurationError(f"{levels}: the critical level must be at most the warning level")
    return Expiry(warning, critical)


def free_percent(repository: BackupRepository) -> float | None:
    """The share of ``repository``'s capacity that is free, in percent; None when the server
    does not report both (or reports no capacity)."""
    capacity, free = repository.capacity, repository.free_space
    if capacity is None or free is None or capacity <= 0 or free < 0:
        return None
    return min(free / capacity * 100, 100.0)  # more free than its capacity: a volume's, all free


@attrs.frozen
class _Finding:
    state: HealthState
    path: tuple[str, ...]
    """(server, tenant, job), (server, tenant), (server, "repository NAME") or (server,): how a
    detail line names it."""
    reason: str
    brief: str
    """How the first line names it: ``contoso/Mail daily (failed 2 days ago)``."""
    kind: str = "job"
    """What it judges: ``job``, ``repository``, ``license``, ``proxy`` or ``other`` (a server, a
    tenant, an ``--org``, a server's repositories, license or proxies that could not be read)."""

    @property
    def key(self) -> tuple[int, tuple[str, ...]]:
        return (HEALTH_ORDER.index(self.state), tuple(part.casefold() for part in self.path))

    def line(self) -> str:
        return f"{self.state.name}: {'/'.join(self.path)}: {self.reason}"


@attrs.frozen
class PluginOutput:
    """The plugin's whole output (``text``, ending in a newline) and its ``state``, whose
    number is the exit status."""

    state: HealthState
    text: str

    @property
    def exit_code(self) -> int:
        return int(self.state)


def _named(*names: str | None) -> str:
    """The first of ``names`` that is not empty once `plain` (a name of blanks and line breaks
    falls back to the id after it), else ``?``; cut to `NAME_CHARS`."""
    return _cut(next((named for name in names if name and (named := plain(name))), "?"), NAME_CHARS)


def _job_finding(row: Row) -> _Finding:
    state = row.health if row.health is not None else HealthState.UNKNOWN
    tenant, job = _named(row.organization, row.organization_id), _named(row.job, row.job_id)
    reason = plain(row.health_reason or "health not known")
    return _Finding(state, (_named(row.server), tenant, job), reason, f"{tenant}/{job} ({reason})")


def _error_finding(row: Row) -> _Finding:
    server = _named(row.server)
    error = plain(row.error or "could not be read")
    if row.organization is None:
        what = "unreachable" if row.unreachable else "not asked" if row.unasked else "could not be read"
        return _Finding(HealthState.UNKNOWN, (server,), error, f"{server} ({what})", "other")
    tenant = _named(row.organization, row.organization_id)
    return _Finding(
        HealthState.UNKNOWN, (server, tenant), error, f"{server}/{tenant} (could not be read)", "other"
    )


def _not_found_finding(missing: NotFound) -> _Finding:
    wanted = _cut(plain(missing.wanted), NAME_CHARS)
    path = f"--org {wanted}"
    return _Finding(HealthState.UNKNOWN, (path,), plain(missing.message), f"{path} (not found)", "other")


def _below(value: T, critical: T, warning: T) -> HealthState:
    """CRITICAL below the ``critical`` level, WARNING below the ``warning`` level, else OK."""
    if value < critical:
        return HealthState.CRITICAL
    return HealthState.WARNING if value < warning else HealthState.OK


def _verdict(judged: Sequence[tuple[HealthState, str]], otherwise: str) -> tuple[HealthState, str]:
    """The most severe of what was ``judged`` and the reasons of that severity or worse (all of
    them when OK; ``otherwise`` when nothing was judged)."""
    state = max((state for state, _ in judged), key=lambda s: s.severity, default=HealthState.OK)
    kept = [text for found, text in judged if found is not HealthState.OK or state is HealthState.OK]
    return state, "; ".join(kept) or otherwise


def _decimal(value: float) -> str:
    """``value`` as a plain decimal, with the digits that read back as ``value`` and no exponent
    (``0.00001``, ``20``): the plugin guidelines give performance data the characters
    ``[-0-9.]``, and ``%g`` wrote ``1e-05`` and cut ``1.000001`` to ``1``."""
    text = format(Decimal(repr(float(value))), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _agreeing(value: float, levels: Sequence[float]) -> str:
    """``value`` to one decimal, or as many more as it takes to stay on the same side of each
    of ``levels`` (alerting below them): 19.976 at a level of 20 is ``19.98``, not ``20.0``,
    which the plugin's own state and its ``20:`` threshold would contradict."""
    for places in range(1, 16):
        text = f"{value:.{places}f}"
        if all((float(text) < level) == (value < level) for level in levels):
            return text
    return _decimal(value)


def _gib(size: int) -> str:
    return f"{size / 2**30:,.1f} GiB"


def _repository_finding(server: str, repository: BackupRepository, free: FreeSpace) -> _Finding:
    """A repository's state: out of order (v8) CRITICAL, free space under the levels, out of
    sync (v6+) WARNING, a negative size UNKNOWN; OK otherwise, also when the server reports no
    capacity."""
    name = _named(repository.name, repository.id)
    judged: list[tuple[HealthState, str]] = []
    if repository.is_out_of_order:
        why = plain(repository.out_of_order_reason or "")
        judged.append((HealthState.CRITICAL, "out of order" + (f" ({_cut(why, NAME_CHARS)})" if why else "")))
    negative = [
        size for size in (repository.capacity, repository.free_space) if size is not None and size < 0
    ]
    if negative:  # a size no repository has: not judged as free space, and said so
        sizes = f"{repository.free_space} bytes free of {repository.capacity}"
        judged.append((HealthState.UNKNOWN, f"sizes that cannot be ({sizes})"))
    percent = free_percent(repository)
    if percent is not None:
        sizes = f"{_gib(repository.free_space or 0)} of {_gib(repository.capacity or 0)}"
        shown = _agreeing(percent, (free.warning, free.critical))
        judged.append((_below(percent, free.critical, free.warning), f"{shown}% free ({sizes})"))
    if repository.is_out_of_sync:
        judged.append((HealthState.WARNING, "out of sync"))
    state, reason = _verdict(judged, "no capacity reported")
    return _Finding(
        state, (server, f"repository {name}"), reason, f"{server}/{name} ({reason})", "repository"
    )


def _unread_finding(server: str, what: str, error: str) -> _Finding:
    """A server's ``what`` (its repositories, its license) that could not be read: UNKNOWN."""
    return _Finding(
        HealthState.UNKNOWN, (server, what), plain(error), f"{server} {what} (could not be read)", "other"
    )


def _span(delta: dt.timedelta) -> str:
    """``12 days``, ``1 day``, ``5 h``, ``under an hour``: how far off a date is, roughly."""
    if delta >= dt.timedelta(days=1):
        return plural(delta.days, "day")
    hours = int(delta.total_seconds() // 3600)
    return f"{hours} h" if hours else "under an hour"


def days_left(license: License, now: dt.datetime) -> float | None:
    """Days until ``license`` expires (negative: since it expired); None without a date."""
    expires = _expires(license)
    if expires is None:
        return None
    return (expires - now).total_seconds() / 86400


def _expires(license: License) -> dt.datetime | None:
    """When ``license`` expires; None without a date, or for a date that never is (`is_never`:
    .NET's 0001-01-01 or a 9999 date, which servers write for no expiry), as ``serve`` reads it."""
    expires = license.license_expires
    return None if expires is None or is_never(expires) else expires


def _license_finding(server: str, license: License, now: dt.datetime, expiry: Expiry) -> _Finding:
    """A server's license (read at ``now``, the server's clock): expired (by its status or its
    date) or expiring within the critical level CRITICAL, within the warning level WARNING;
    more users using a license than licensed WARNING; a status this client does not know
    UNKNOWN (as a proxy's); OK otherwise."""
    judged: list[tuple[HealthState, str]] = []
    expires = _expires(license)
    date = f" ({expires:%Y-%m-%d})" if expires is not None else ""
    if expires is not None and expires <= now:
        grace = license.grace_period_expires
        until = f", grace period until {grace:%Y-%m-%d}" if grace is not None and grace > now else ""
        judged.append((HealthState.CRITICAL, f"expired {_span(now - expires)} ago{date}{until}"))
    elif license.status == LicenseStatus.EXPIRED:
        judged.append((HealthState.CRITICAL, "expired" + (f", its date{date} still ahead" if date else "")))
    elif expires is not None:
        left = expires - now
        judged.append((_below(left, expiry.critical, expiry.warning), f"expires in {_span(left)}{date}"))
    status = license.status
    if status is not None and status not in (LicenseStatus.VALID, LicenseStatus.EXPIRED):
        judged.append((HealthState.UNKNOWN, f"status {_cut(plain(status.value), NAME_CHARS)}"))
    used, total = license.used_number, license.total_number
    if used is not None and total is not None and used > total:
        judged.append((HealthState.WARNING, f"{used:,} users use a license, {total:,} licensed"))
    state, reason = _verdict(judged, "valid, no expiry date")
    return _Finding(state, (server, "license"), reason, f"{server} license ({reason})", "license")


def perfdata(report: Report) -> str:
    """The performance data: counts of jobs by health, of servers and tenants that could not be
    read, each with a minimum of 0 and no thresholds (``label=value;warn;crit;min``)."""
    down = sum(row.organization is None for row in report.errors)
    values = {
        "jobs": len(report.jobs),
        "ok": report.count(HealthState.OK),
        "warning": report.count(HealthState.WARNING),
        "critical": report.count(HealthState.CRITICAL),
        "unknown": len(report.jobs)
        - sum(report.count(state) for state in (HealthState.OK, HealthState.WARNING, HealthState.CRITICAL)),
        "servers_down": down,
        "tenants_unreadable": len(report.errors) - down,
    }
    return " ".join(f"{label}={value};;;0" for label, value in values.items())


def _per_server(
    reads: Sequence[tuple[str, R | str]], what: str, judge: Callable[[str, R], list[_Finding]]
) -> list[_Finding]:
    """Per server (its label and what was read, or why ``what`` could not be read): what
    ``judge`` finds in it, or an UNKNOWN finding."""
    found: list[_Finding] = []
    for server, read in reads:
        label = _named(server)
        found += [_unread_finding(label, what, read)] if isinstance(read, str) else judge(label, read)
    return found


def _stores(
    server: str, repositories: Sequence[BackupRepository | Unread], *, free: FreeSpace
) -> list[_Finding]:
    return [
        _unread_item(server, "repository", repository)
        if isinstance(repository, Unread)
        else _repository_finding(server, repository, free)
        for repository in repositories
    ]


def _unread_item(server: str, kind: str, item: Unread) -> _Finding:
    """A repository or proxy of a server's listing that could not be decoded: UNKNOWN, counted
    among its kind (its neighbours are judged)."""
    name = _named(item.id)
    return _Finding(
        HealthState.UNKNOWN,
        (server, f"{kind} {name}"),
        plain(item.error),
        f"{server}/{name} (could not be read)",
        kind,
    )


def _license(server: str, read: tuple[License, dt.datetime], *, expiry: Expiry) -> list[_Finding]:
    return [_license_finding(server, *read, expiry)]


def _proxy_finding(server: str, proxy: Proxy) -> _Finding:
    """A backup proxy: offline CRITICAL, or WARNING while in maintenance mode (v8: taken out of
    service on purpose); a status this client does not know UNKNOWN; online, or no status
    reported, OK."""
    name = _named(proxy.host_name, proxy.fqdn, proxy.id)
    maintenance = proxy.maintenance_mode_state in (
        MaintenanceModeState.ENABLED,
        MaintenanceModeState.ENABLING,
    )
    status = proxy.status
    if status is None:
        state, reason = HealthState.OK, "no status reported"
    elif status == ProxyStatus.OFFLINE:
        state = HealthState.WARNING if maintenance else HealthState.CRITICAL
        reason = "offline" + (", in maintenance mode" if maintenance else "")
    elif status == ProxyStatus.ONLINE:
        state, reason = HealthState.OK, "online"
    else:
        state, reason = HealthState.UNKNOWN, f"status {_cut(plain(status.value), NAME_CHARS)}"
    return _Finding(state, (server, f"proxy {name}"), reason, f"{server}/{name} ({reason})", "proxy")


def _proxies(server: str, proxies: Sequence[Proxy | Unread]) -> list[_Finding]:
    return [
        _unread_item(server, "proxy", proxy) if isinstance(proxy, Unread) else _proxy_finding(server, proxy)
        for proxy in proxies
    ]


def _unreported(proxies: Sequence[tuple[str, Sequence[Proxy | Unread] | str]]) -> int:
    """How many of the proxies read reported no status at all (judged OK, not said online)."""
    return sum(
        isinstance(proxy, Proxy) and proxy.status is None
        for _, found in proxies
        if not isinstance(found, str)
        for proxy in found
    )


def _proxies_ok(hosts: int, unreported: int) -> str:
    """The status line's words for ``hosts`` proxies all OK, ``unreported`` of them with no
    status: ``3 proxies online``, ``2 proxies online, 1 with no status``, ``2 proxies with no
    status``. A proxy with no status is OK, not known to be online, and is not said to be."""
    online = hosts - unreported
    if not unreported:
        return f"{plural(online, 'proxy')} online"
    if not online:
        return f"{plural(unreported, 'proxy')} with no status"
    return f"{plural(online, 'proxy')} online, {unreported} with no status"


def _repository_perfdata(
    findings: Sequence[_Finding],
    repositories: Sequence[tuple[str, Sequence[BackupRepository | Unread] | str]],
    free: FreeSpace,
) -> str:
    """``repositories`` (judged), ``repositories_warning``, ``repositories_critical`` and the
    least free share of any, ``repository_free_min`` in percent with the levels as thresholds
    (``20:``, alerting below them; ``0`` and ``100`` its range; left out when no repository
    reports its capacity)."""
    judged = [finding for finding in findings if finding.kind == "repository"]
    values = {
        "repositories": len(judged),
        "repositories_warning": sum(finding.state is HealthState.WARNING for finding in judged),
        "repositories_critical": sum(finding.state is HealthState.CRITICAL for finding in judged),
    }
    text = " ".join(f"{label}={value};;;0" for label, value in values.items())
    shares = [
        percent
        for _, found in repositories
        if not isinstance(found, str)
        for repository in found
        if isinstance(repository, BackupRepository) and (percent := free_percent(repository)) is not None
    ]
    if shares:
        # ``20:`` is the guidelines' range "alert below 20" (a bare 20 would alert above it).
        least = _agreeing(min(shares), (free.warning, free.critical))
        text += f" repository_free_min={least}%;{_decimal(free.warning)}:;{_decimal(free.critical)}:;0;100"
    return text


def _license_perfdata(
    licenses: Sequence[tuple[str, tuple[License, dt.datetime] | str]], expiry: Expiry
) -> str:
    """``license_days_left_min``: the fewest days until a license expires (negative once
    expired), with ``WARN:`` and ``CRIT:`` in days as its thresholds; empty when no license
    read has a date."""
    left = [
        days for _, found in licenses if not isinstance(found, str) if (days := days_left(*found)) is not None
    ]
    if not left:
        return ""
    levels = [level.total_seconds() / 86400 for level in (expiry.warning, expiry.critical)]
    least = _agreeing(min(left), levels)
    return f" license_days_left_min={least};{_decimal(levels[0])}:;{_decimal(levels[1])}:;"


def plugin_output(
    report: Report,
    *,
    not_found: Sequence[NotFound] = (),
    repositories: Sequence[tuple[str, Sequence[BackupRepository | Unread] | str]] = (),
    free: FreeSpace | None = None,
    licenses: Sequence[tuple[str, tuple[License, dt.datetime] | str]] = (),
    expiry: Expiry | None = None,
    proxies: Sequence[tuple[str, Sequence[Proxy | Unread] | str]] | None = None,
    encoding: str = "utf-8",
    errors: str = "replace",
) -> PluginOutput:
    """The verdict on ``report``: a first line (state, counts, the worst few findings, then the
    performance data after ``|``) and one line per finding that is not OK, worst first, within
    `OUTPUT_BYTES` as written in ``encoding`` with the error handler ``errors``. With
    ``free``, the ``repositories`` of each server (its label and its repositories, or why they
    could not be read) are judged too; with ``expiry``, the ``licenses`` (per server its label
    and its license with the time it was read on the server's clock, or why it could not be
    read; a server whose API has no license, v1, is not among them); with ``proxies`` (not
    None), each server's backup proxies, or why they could not be read."""
    judged_repositories: list[_Finding] = []
    if free is not None:
        judged_repositories = _per_server(repositories, "repositories", functools.partial(_stores, free=free))
    judged_licenses: list[_Finding] = []
    if expiry is not None:
        judged_licenses = _per_server(licenses, "license", functools.partial(_license, expiry=expiry))
    judged_proxies = _per_server(proxies, "proxies", _proxies) if proxies is not None else []
    findings = sorted(
        [
            *(_job_finding(row) for row in report.jobs),
            *(_error_finding(row) for row in report.errors),
            *(_not_found_finding(missing) for missing in not_found),
            *judged_repositories,
            *judged_licenses,
            *judged_proxies,
        ],
        key=lambda finding: finding.key,
    )
    problems = [finding for finding in findings if finding.state is not HealthState.OK]
    state = max((finding.state for finding in findings), key=lambda s: s.severity, default=HealthState.OK)
    total = len(report.jobs)
    parts = _counted(problems, "job", total, ("failing", "warning", "unknown"))
    tenants = plural(report.tenants, "tenant") + (
        f" of {plural(report.servers, 'server')}" if report.servers > 1 else ""
    )
    if not parts:
        parts.append(f"{plural(total, 'job')} OK on {tenants}" if total else f"no jobs found on {tenants}")
        if not total:
            state = max(state, HealthState.UNKNOWN, key=lambda s: s.severity)
    if free is not None:
        stores = sum(finding.kind == "repository" for finding in judged_repositories)
        said = _counted(problems, "repository", stores, ("critical", "warning", "unknown"))
        parts += said or ([f"{plural(stores, 'repository')} OK"] if stores else [])
    if expiry is not None:
        judged = sum(finding.kind == "license" for finding in judged_licenses)
        said = _counted(problems, "license", judged, ("critical", "warning", "unknown"))
        parts += said or ([f"{plural(judged, 'license')} OK"] if judged else [])
    if proxies is not None:
        hosts = sum(finding.kind == "proxy" for finding in judged_proxies)
        said = _counted(problems, "proxy", hosts, ("offline", "warning", "unknown"))
        parts += said or ([_proxies_ok(hosts, _unreported(proxies))] if hosts else [])
    failures = report.failures()
    unread = sum(isinstance(found, str) for _, found in repositories) if free is not None else 0
    if unread:
        failures.append(f"the repositories of {plural(unread, 'server')} unreadable")
    unread = sum(isinstance(found, str) for _, found in licenses) if expiry is not None else 0
    if unread:
        failures.append(f"the license of {plural(unread, 'server')} unreadable")
    unread = sum(isinstance(found, str) for _, found in proxies or ())
    if unread:
        failures.append(f"the proxies of {plural(unread, 'server')} unreadable")
    if not_found:
        failures.append(plural(len(not_found), "organization") + " not found")
    summary = ", ".join(parts) + ("; " + ", ".join(failures) if failures else "")
    if problems:
        shared = _on_servers(findings)
        named = [_brief(finding, shared) for finding in problems[:SUMMARY_ITEMS]]
        summary += ": " + ", ".join(named) + (", ..." if len(problems) > SUMMARY_ITEMS else "")
    data = perfdata(report)
    if free is not None:
        data += " " + _repository_perfdata(judged_repositories, repositories, free)
    if expiry is not None:
        data += _license_perfdata(licenses, expiry)
    if proxies is not None:
        offline = sum(
            finding.state is not HealthState.OK and finding.kind == "proxy" for finding in judged_proxies
        )
        hosts = sum(finding.kind == "proxy" for finding in judged_proxies)
        data += f" proxies={hosts};;;0 proxies_not_ok={offline};;;0"
    first = f"VB365 {state.name} - {_cut(summary, SUMMARY_CHARS)} | {data}"
    states = [finding.state for finding in problems]
    details = [finding.line() for finding in problems]
    return PluginOutput(
        state, _fitted(first, details, lambda kept: _left_out(states[kept:]), (encoding, errors))
    )


def _on_servers(findings: Sequence[_Finding]) -> set[str]:
    """The tenants (their names, casefolded) with jobs on more than one server (a tenant being
    moved between two): the first line names the server of their jobs (`_brief`)."""
    servers: dict[str, set[str]] = {}
    for finding in findings:
        if finding.kind == "job":
            servers.setdefault(finding.path[1].casefold(), set()).add(finding.path[0])
    return {tenant for tenant, where in servers.items() if len(where) > 1}


def _brief(finding: _Finding, shared: set[str]) -> str:
    """How the first line names ``finding``: its job with its server when its tenant is among
    ``shared`` (``east/contoso/Mail daily (failed 2 days ago)``), else as `_Finding.brief`."""
    if finding.kind == "job" and finding.path[1].casefold() in shared:
        return f"{finding.path[0]}/{finding.brief}"
    return finding.brief


def _counted(problems: Sequence[_Finding], kind: str, total: int, words: tuple[str, str, str]) -> list[str]:
    """``3 of 120 jobs failing``, ``1 warning``...: the findings of ``kind`` among ``problems``
    by state (CRITICAL, WARNING, UNKNOWN, each named by its word in ``words``), the first out
    of ``total``."""
    parts: list[str] = []
    states = (HealthState.CRITICAL, HealthState.WARNING, HealthState.UNKNOWN)
    for word, wanted in zip(words, states, strict=True):
        count = sum(finding.state is wanted for finding in problems if finding.kind == kind)
        if count:
            parts.append(f"{count} of {plural(total, kind)} {word}" if not parts else f"{count} {word}")
    return parts


def _cut(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, ending in ``...`` (it is `plain` already)."""
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def _left_out(states: Sequence[HealthState]) -> str:
    """The last line of an output whose finding lines ``states`` did not fit:
    ``... 12 WARNING and 3 UNKNOWN lines left out``."""
    counts = [f"{states.count(state)} {state.name}" for state in HEALTH_ORDER if state in states]
    said = counts[0] if len(counts) == 1 else ", ".join(counts[:-1]) + " and " + counts[-1]
    return f"... {said} {'line' if len(states) == 1 else 'lines'} left out"


def _fitted(
    first: str, details: Sequence[str], left_out: Callable[[int], str], codec: tuple[str, str]
) -> str:
    """The output: ``first``, then ``details`` in order (each cut to `LINE_CHARS`) as long as
    the whole fits in `OUTPUT_BYTES` written as ``codec`` (encoding, error handler) says, then
    ``left_out(kept)`` when some did not (room is kept for it: it is never longer than
    ``left_out(0)``). ``first`` is at most a few KiB."""
    lines = [first, *(_cut(line, LINE_CHARS) for line in details)]
    sizes = [_size(line + "\n", *codec) for line in lines]
    if sum(sizes) <= OUTPUT_BYTES:
        return "\n".join(lines) + "\n"
    room = OUTPUT_BYTES - _size(left_out(0) + "\n", *codec)
    used, kept = sizes[0], 0
    while kept + 1 < len(lines) and used + sizes[kept + 1] <= room:
        used += sizes[kept + 1]
        kept += 1
    return "\n".join([*lines[: kept + 1], left_out(kept)]) + "\n"


def _size(text: str, encoding: str, errors: str) -> int:
    """The bytes ``text`` takes written in ``encoding``, what it cannot encode (a lone
    surrogate: a byte of an argument that was not UTF-8) as ``errors`` writes it (``?`` for the
    ``replace`` a command's stdout has). A codec that starts with a byte order mark counts it
    for each line: more than is written, never less."""
    return len(text.encode(encoding, errors))


def error_output(*lines: str, encoding: str = "utf-8", errors: str = "replace") -> str:
    """The output of a check that could not run (usage error, unreadable targets file...):
    UNKNOWN and the first line, then the others (bounded as a verdict's output is, in
    ``encoding`` written with ``errors``)."""
    first, *rest = [plain(line) for line in lines] or ["error"]
    return _fitted(
        _cut(f"VB365 UNKNOWN - {first}", LINE_CHARS),
        rest,
        lambda kept: f"... {len(rest) - kept} {'line' if len(rest) - kept == 1 else 'lines'} left out",
        (encoding, errors),
    )
