"""``vbo-async check``: the backup jobs' health (and, asked for, the servers' repositories,
licenses and proxies) as a Nagios/Icinga/Checkmk plugin.

The click options and callback (registered in `_app` with the plugin's own `ExitCodes` and
error output), and which organizations its sweep keeps (the sweep itself, every server on its
own within ``--timeout``, is `_flows.sweep_servers`, as poll's); what it prints is decided in
`_plugin` (pure).
Everything goes to stdout, plain: a monitoring system reads the first line as the status and
may merge stderr into it, so log lines the run produces are held back and written to stderr
only after the verdict (unless ``VBO_ASYNC_LOG`` asks for them as they come).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import logging
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from .. import __version__
from .._checks import organization_key
from .._exceptions import ConfigError, VBOError
from .._health import HealthPolicy
from .._poll import PollTarget
from ._exit import CLIError, quiet_stdout
from ._limits import TimeLimit, started_at
from ._logging import level_from_environment
from ._plugin import (
    PLUGIN_CODES,
    DurationError,
    Expiry,
    FreeSpace,
    FreeSpaceError,
    NotFound,
    PluginOutput,
    error_output,
    parse_duration,
    parse_expiry,
    parse_free_space,
    plugin_output,
)
from ._report import Row
from ._threads import Terminated, run_unheld

if TYPE_CHECKING:  # imported when a check runs (`_sweep`), not when the command line starts
    from ._flows import Swept
    from ._tokencache import TokenCache

__all__ = [
    "CHECK_EPILOG",
    "HELD_CHARS",
    "PLUGIN_CODES",
    "TargetsPath",
    "check",
    "duration",
    "expiry_levels",
    "free_space",
    "health_options",
    "health_policy",
    "not_blank",
    "run_check",
    "say_unknown",
    "seconds_or_duration",
    "token_cache_for",
    "token_cache_option",
    "write_output",
]

F = TypeVar("F", bound=Callable[..., Any])
L = TypeVar("L")

HELD_CHARS = 4000
"""The most characters of warnings ``check`` holds back from stderr while it runs (whole
writes, a line each); the lines after them are counted, not kept: a hostile server can make a
warning per job, and a monitoring system merging stderr into the output would get them all."""

CHECK_EPILOG = """
\b
Output (plain text, on stdout; the first line is wrapped here):
  VB365 CRITICAL - 3 of 120 jobs failing, 1 warning; 1 server unreachable:
  contoso.onmicrosoft.com/Mail daily (failed 2 days ago), ... | jobs=120;;;0 ok=116;;;0
  warning=1;;;0 critical=3;;;0 unknown=0;;;0 servers_down=1;;;0 tenants_unreadable=0;;;0
  CRITICAL: east/contoso.onmicrosoft.com/Mail daily: failed 2 days ago
  ...
  WARNING: east/northwind.onmicrosoft.com/Support protection: last run ended with warnings 14 h ago
  UNKNOWN: west: cannot connect: ...
The first line names the state, the counts and the worst three findings, then the
performance data after '|': jobs, ok, warning, critical, unknown (jobs by health),
servers_down and tenants_unreadable. Then one line per job, tenant or server that is not OK,
worst first; the whole output stays under 8 KiB (what Nagios Core reads), the lines that do not
fit, the least severe, counted on a last line ("... 161 WARNING lines left out").

\b
A job's health: CRITICAL when its last run failed or it had no success for --max-age
(with --schedule-aware, plus the days its schedule leaves out or the hours its periodic
window is closed, and an hour for daylight saving; never for a job run only by hand);
WARNING when its last run ended with warnings, failed but will be retried (within the job's retry
wait and 2 h of the failure, or while a run after it is in progress), or it never ran;
UNKNOWN when its last run ended otherwise or its sessions could not be read; OK otherwise
(a disabled job is OK). A server or tenant that cannot be read, an --org that names no
organization, or finding no job at all is UNKNOWN, never OK.
With --repository-free WARN,CRIT each server's repositories too: under CRIT percent free,
or out of order (v8), CRITICAL; under WARN, or out of sync (v6+), WARNING (perfdata gains
repositories, repositories_warning, repositories_critical and repository_free_min).
With --license-expiry WARN,CRIT each server's license (v6+): expired or expiring within
CRIT CRITICAL; expiring within WARN, or more users than licensed, WARNING (perfdata gains
license_days_left_min). With --proxies each server's proxies: offline CRITICAL, offline in
maintenance mode WARNING (perfdata gains proxies and proxies_not_ok).

\b
Cost: one sweep. On v6+ a server with 8 or more tenants checked costs a handful of requests
(its organizations, its jobs, its sessions of the last --max-age), plus one per job whose last
result or success lies further back (on v6 every job without a success within --max-age);
fewer tenants cost one request each and one or two per job. v1 cannot list sessions
server-wide: one request per job. --repository-free, --license-expiry, --proxies: one more
request per server each.

\b
Exit codes (the monitoring plugin convention, not the other commands' codes):
  0  OK        every job is OK (and each repository, license, proxy asked for)
  1  WARNING   a job (repository, license, proxy) is WARNING, none CRITICAL
  2  CRITICAL  a job (repository, license, proxy) is CRITICAL
  3  UNKNOWN   nothing worse, but something could not be read or found; also a usage
               error (bad option or duration, bad targets file, no password), an
               internal error or an interruption
The most severe finding decides: CRITICAL > WARNING > UNKNOWN > OK.
"""


def duration(
    ctx: click.Context, param: click.Parameter, value: str | dt.timedelta | None
) -> dt.timedelta | None:
    """The option callback of ``--max-age``: `parse_duration`, a bad duration being a usage
    error; no value (an option without a default, not given) stays None."""
    if value is None or isinstance(value, dt.timedelta):
        return value
    try:
        return parse_duration(value)
    except DurationError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


class TargetsPath(click.Path):
    """A targets file's path: `click.Path`, refusing an empty one as a usage error (it read as
    ``.``, and the message named the current folder: "``.``: a directory, not a file")."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and not value:
            self.fail("the path is empty", param, ctx)
        return super().convert(value, param, ctx)


def seconds_or_duration(
    ctx: click.Context, param: click.Parameter, value: str | dt.timedelta | None
) -> dt.timedelta | None:
    """The option callback of ``check``'s ``-t``/``--timeout`` and ``poll``'s ``--timeout``:
    `duration`, but a whole number alone is seconds (``-t 30``), as the monitoring plugins and
    the check commands that run them write ``-t``."""
    if value is None or isinstance(value, dt.timedelta):
        return value
    try:
        return parse_duration(value, bare="s")
    except DurationError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


def _levels(
    parse: Callable[[str], L], refused: type[ValueError]
) -> Callable[[click.Context, click.Parameter, str | None], L | None]:
    """The option callback of a WARN,CRIT option: ``parse``, a value it refuses (raising
    ``refused``) being a usage error; not given, None (that check is not made)."""

    def callback(ctx: click.Context, param: click.Parameter, value: str | None) -> L | None:
        if value is None:
            return None
        try:
            return parse(value)
        except refused as exc:
            raise click.BadParameter(str(exc), ctx=ctx, param=param) from None

    return callback


expiry_levels = _levels(parse_expiry, DurationError)
"""The option callback of ``--license-expiry`` (`parse_expiry`)."""
free_space = _levels(parse_free_space, FreeSpaceError)
"""The option callback of ``--repository-free`` (`parse_free_space`)."""


def not_blank(ctx: click.Context, param: click.Parameter, value: str | tuple[str, ...]) -> Any:
    """The option callback of ``--username`` and ``--org`` (given once, or several times): an
    empty or blank value is a usage error naming the option, as a targets file refuses an empty
    ``username`` or ``organizations`` entry, instead of a name sent to the server."""
    for given in (value,) if isinstance(value, str) else value:
        if not given.strip():
            raise click.BadParameter("must not be empty or blank", ctx=ctx, param=param)
    return value


def health_options(command: F) -> F:
    """``--max-age``, ``--schedule-aware`` and ``--warning-is-success``, the `HealthPolicy`
    options of every command that judges jobs (``check``, ``poll``, ``jobs``, ``serve``);
    `health_policy` makes the policy."""
    command = click.option(
        "--warning-is-success",
        is_flag=True,
        help="Count a run that ended with warnings as a success for --max-age (the run is still "
        "WARNING): a job that backs up all but a few items every night is not also CRITICAL for "
        "having no success [default: only Success counts].",
    )(command)
    command = click.option(
        "--schedule-aware",
        is_flag=True,
        help="Let --max-age follow each job's schedule: a job run only by hand is never stale, a "
        "daily job on some days of the week gets its longest gap between them less one day on top "
        "(Workdays +2 days, Weekends +5 days, one weekday +6 days), a periodic job with its window "
        "on the longest stretch of hours the window is closed, and every job an hour for daylight "
        "saving [default: --max-age alone].",
    )(command)
    return click.option(
        "--max-age",
        default="26h",
        metavar="DURATION",
        callback=duration,
        help="A job with no success for longer is CRITICAL: 90m, 26h, 2d, 1d12h (units d, h, m, s).",
    )(command)


def token_cache_option(runs: str) -> Callable[[F], F]:
    """``--token-cache DIR`` (``VBO_ASYNC_TOKEN_CACHE``) of ``check`` and ``poll``: each server's
    session kept between runs (`_tokencache`); ``runs`` says whose sign-ins it spares."""
    return click.option(
        "--token-cache",
        "token_cache",
        type=click.Path(file_okay=False, path_type=Path),
        envvar="VBO_ASYNC_TOKEN_CACHE",
        metavar="DIR",
        help="Keep each server's session in this directory (created mode 0700; its files 0600) "
        f"between runs: a run resumes it instead of signing in, so {runs} stay under VB365's 5 "
        "sign-ins a minute; sessions are not logged out [env var: VBO_ASYNC_TOKEN_CACHE; "
        "default: sign in, and out (v7+), on every run].",
    )


def token_cache_for(directory: Path | None, limit: TimeLimit | None) -> TokenCache | None:
    """The `TokenCache` of ``--token-cache`` (None without it), for a run with the time
    ``limit``: a session due within it is renewed first, and another run's turn is not waited
    for past it."""
    if directory is None:
        return None
    from ._tokencache import TokenCache

    if limit is None:
        return TokenCache(directory, valid_for=0.0, deadline=None)
    return TokenCache(directory, valid_for=limit.seconds, deadline=limit.ends)


def health_policy(max_age: dt.timedelta, schedule_aware: bool, warning_is_success: bool) -> HealthPolicy:
    """The policy `health_options` asked for."""
    return HealthPolicy(max_age=max_age, schedule_aware=schedule_aware, warning_is_success=warning_is_success)


def say_unknown(*lines: str) -> None:
    """How ``check`` reports an error: an UNKNOWN plugin output on stdout."""
    write_output(error_output(*lines, **_stdout_codec()))


def _stdout_codec() -> dict[str, str]:
    """The ``encoding`` and ``errors`` stdout writes the output with, for `_plugin` to measure
    `OUTPUT_BYTES` in: under a GB18030 locale (or ``PYTHONIOENCODING=gb18030``) most letters of
    U+0080..U+07FF (``À``) take 4 bytes, not UTF-8's 2, and an output measured in UTF-8 went past
    the 8 KiB Nagios reads. A handler that fails on what it cannot encode (``strict``,
    ``surrogateescape``) is measured as the ``replace`` `main` gives stdout while a command runs."""
    encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
    errors = getattr(sys.stdout, "errors", None) or "strict"
    return {"encoding": encoding, "errors": "replace" if errors in ("strict", "surrogateescape") else errors}


def write_output(text: str) -> bool:
    """Write the plugin output ``text`` on stdout; False when it could not be written.

    A stdout that is closed or fails (a full disk) is one ``vbo-async: error: cannot write the
    output: ...`` line on stderr, as for the other commands; a reader gone away
    (`BrokenPipeError`) stays silent. The check then ends UNKNOWN: its verdict never arrived.
    """
    if sys.stdout is None:  # closed (``>&-``)
        why = "stdout is closed"
    else:
        try:
            sys.stdout.write(text)
            sys.stdout.flush()
        except BrokenPipeError:
            quiet_stdout()
            return False
        except OSError as exc:
            quiet_stdout()
            why = exc.strerror or str(exc)
        else:
            return True
    if sys.stderr is not None:
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.write(f"vbo-async: error: cannot write the output: {why}\n")
    return False


@click.option(
    "--targets",
    required=True,
    type=TargetsPath(dir_okay=False, path_type=Path),
    help="TOML file of [[servers]] tables, as for 'vbo-async poll'.",
)
@health_options
@click.option(
    "--org",
    "organizations",
    multiple=True,
    callback=not_blank,
    metavar="ID|NAME",
    help="Check only this organization (id, or name case-insensitively) on whichever server has "
    "it; repeat for several [default: every organization the targets file selects].",
)
@click.option(
    "--repository-free",
    "free",
    metavar="WARN,CRIT",
    callback=free_space,
    help="Judge each server's backup repositories too (one more request per server): under WARN "
    "percent of its capacity free WARNING, under CRIT percent CRITICAL, as 20,10; out of order "
    "(v8) CRITICAL, out of sync (v6+) WARNING. With --org, only the repositories those "
    "organizations' jobs use [default: repositories are not judged].",
)
@click.option(
    "--license-expiry",
    "expiry",
    metavar="WARN,CRIT",
    callback=expiry_levels,
    help="Judge each server's license too (v6+; one more request per server): expiring within "
    "WARN WARNING, within CRIT or expired CRITICAL, more users than licensed WARNING; durations, a "
    "number alone being days, as 30,7 or 30d,7d [default: licenses are not judged].",
)
@click.option(
    "--proxies",
    "check_proxies",
    is_flag=True,
    help="Judge each server's backup proxies too (one more request per server): offline "
    "CRITICAL, offline in maintenance mode (v8) WARNING [default: proxies are not judged].",
)
@click.option(
    "-t",
    "--timeout",
    default="50s",
    metavar="DURATION",
    callback=seconds_or_duration,
    help="Give up after this long (a number alone is seconds: -t 30): servers and tenants that "
    "have not answered are UNKNOWN (under the 60 s that Nagios and Icinga allow a check by default).",
)
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    default=16,
    help="How many servers are listed at once, and tenants checked at once on each server.",
)
@token_cache_option("checks per tenant")
@click.version_option(
    __version__, "-V", "--version", prog_name="vbo-async check", message="%(prog)s %(version)s"
)
def check(
    targets: Path,
    max_age: dt.timedelta,
    schedule_aware: bool,
    warning_is_success: bool,
    organizations: tuple[str, ...],
    free: FreeSpace | None,
    expiry: Expiry | None,
    check_proxies: bool,
    timeout: dt.timedelta,
    concurrency: int,
    token_cache: Path | None,
) -> int:
    """Check the health of the backup jobs: a Nagios, Icinga or Checkmk plugin.

    One sweep of the servers of a targets file; prints a status line, a line per job (or
    server, or tenant) that is not OK, and performance data, and exits with the most severe
    state: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN. Passwords come from each server's
    password_env variable (no prompt when run without a terminal) or password_file.

    Each run signs in once per server; VB365 allows 5 sign-ins a minute: prefer one check per
    server (all its tenants, repositories, license and proxies) to a check per tenant, or
    keep the sessions between runs with --token-cache.

    \b
    Example:
      vbo-async check --targets /etc/vbo/targets.toml --max-age 30h --org contoso.onmicrosoft.com
    """
    held = _Held()
    codec = _stdout_codec()
    try:
        with _holding_stderr(held):
            try:
                output = run_unheld(
                    run_check(
                        targets,
                        policy=health_policy(max_age, schedule_aware, warning_is_success),
                        wanted=organizations,
                        give_up_after=timeout,
                        concurrency=concurrency,
                        free=free,
                        expiry=expiry,
                        proxies=check_proxies,
                        token_cache=token_cache,
                        started=started_at(),
                        **codec,
                    )
                )
                text, code = output.text, output.exit_code
            except CLIError as exc:
                text, code = error_output(*exc.lines, **codec), PLUGIN_CODES[exc.outcome]
            except ConfigError as exc:
                text, code = error_output(str(exc), **codec), PLUGIN_CODES.usage
            except VBOError as exc:
                text, code = error_output(str(exc), **codec), PLUGIN_CODES.unreadable
            except Terminated:  # SIGTERM: as Ctrl-C
                text, code = error_output("terminated", **codec), PLUGIN_CODES.terminated
            except KeyboardInterrupt:  # Ctrl-C: still a plugin's output, on stdout
                text, code = error_output("interrupted", **codec), PLUGIN_CODES.interrupted
            if not write_output(text):
                code = PLUGIN_CODES.unreadable
    finally:
        said = held.said()
        if said and sys.stderr is not None:  # None: closed (``2>&-``), the warnings lost
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.write(said)
    return code


class _Held(io.StringIO):
    """What is written to stderr while ``check`` runs: whole writes up to `HELD_CHARS`
    characters, then only how many lines the writes after them hold (`said`)."""

    def __init__(self) -> None:
        super().__init__()
        self._full = False
        self._ends = 0  # line ends written since it was full
        self._partial = False  # the last write since then left a line unended

    def write(self, text: str, /) -> int:
        if not self._full and self.tell() + len(text) <= HELD_CHARS:
            return super().write(text)
        self._full = True
        if text:
            self._ends += text.count("\n")
            self._partial = not text.endswith("\n")
        return len(text)

    def said(self) -> str:
        """What was held, its last line ended, then how many lines were not held (a line begun
        before it was full counts as held)."""
        kept = self.getvalue()
        begun = bool(kept) and not kept.endswith("\n")
        left_out = self._ends + self._partial - begun if self._full else 0
        return (kept + "\n" if begun else kept) + (
            f"vbo-async: {left_out} more lines of warnings left out\n" if left_out else ""
        )


@contextlib.contextmanager
def _holding_stderr(held: io.StringIO) -> Iterator[None]:
    """Hold what is written to stderr (library warnings) in ``held`` while the block runs,
    unless ``VBO_ASYNC_LOG`` asks for more than warnings (``info``, ``debug``: logs as they come,
    to see where a check spends its time). ``warning``, what is shown anyway, is held too: set
    for all commands on a monitoring host, it put a warning before the status line."""
    level = level_from_environment()
    if level is not None and level < logging.WARNING:
        yield
        return
    with contextlib.redirect_stderr(held):
        yield


# --- the sweep ----------------------------------------------------------------------------------


async def run_check(
    path: Path,
    *,
    policy: HealthPolicy,
    wanted: Sequence[str] = (),
    give_up_after: dt.timedelta = dt.timedelta(seconds=50),
    concurrency: int = 16,
    free: FreeSpace | None = None,
    expiry: Expiry | None = None,
    proxies: bool = False,
    token_cache: Path | None = None,
    encoding: str = "utf-8",
    errors: str = "replace",
    started: float | None = None,
) -> PluginOutput:
    """Sweep the servers of the targets file at ``path`` once and judge every job under
    ``policy`` (no job's repository or proxy is fetched); with ``free`` each server's backup
    repositories (`FreeSpace`) too, with ``expiry`` each server's license (`Expiry`), with
    ``proxies`` each server's backup proxies.
    ``wanted`` restricts the check to those organizations (ids or names) on whichever server
    has them, the repositories to those their jobs use, the licenses and proxies to their
    servers'. With ``token_cache``, each server's session is resumed from that directory and
    kept there for the next run (`_tokencache.TokenCache`).
    Whatever has not answered within ``give_up_after`` (counted from ``started``,
    `time.monotonic`: the command's start; now when None) is UNKNOWN; a bad targets file or a
    missing password is a `CLIError`. The output fits `OUTPUT_BYTES` written in ``encoding``
    with ``errors`` (`_stdout_codec`).
    """
    swept, not_found = await _sweep(
        path,
        policy,
        wanted,
        TimeLimit(give_up_after, time.monotonic() if started is None else started),
        concurrency,
        free,
        expiry,
        proxies,
        token_cache,
    )
    return plugin_output(
        swept.report(),
        not_found=not_found,
        repositories=swept.repository_findings(only_used=bool(wanted)) if free is not None else (),
        free=free,
        licenses=swept.license_findings(only_checked=bool(wanted)) if expiry is not None else (),
        expiry=expiry,
        proxies=swept.proxy_findings(only_checked=bool(wanted)) if proxies else None,
        encoding=encoding,
        errors=errors,
    )


async def _sweep(
    path: Path,
    policy: HealthPolicy,
    wanted: Sequence[str],
    limit: TimeLimit,
    concurrency: int,
    free: FreeSpace | None,
    expiry: Expiry | None,
    proxies: bool,
    token_cache: Path | None = None,
) -> tuple[Swept, list[NotFound]]:
    """Each server on its own (`sweep_servers`): list its organizations, keep those ``wanted``,
    judge their jobs. A server that is slow to list holds up only itself; at the deadline,
    whatever is still running is stopped and reported as not having answered."""
    from ._flows import open_servers, sweep_servers

    cache = token_cache_for(token_cache, limit)

    keys = {organization_key(value): value for value in wanted}
    seen: set[str] = set()  # every organization listed, for hints about an --org naming none

    def choose(targets: list[PollTarget], failures: list[Row]) -> tuple[list[PollTarget], list[Row]]:
        seen.update(target.label for target in targets)
        if keys:
            targets = [target for target in targets if _names(target) & keys.keys()]
            # A whole server that cannot be read might hold them: it stays; of the organizations
            # of the targets file its server does not have, only those named stay.
            failures = [row for row in failures if row.organization is None or _failed_name(row) in keys]
        return targets, failures

    async with contextlib.AsyncExitStack() as stack:
        servers = await open_servers(stack, path, limit=limit, cache=cache)
        swept = await sweep_servers(
            servers,
            concurrency=concurrency,
            health=policy,
            limit=limit,
            choose=choose,
            repositories=free is not None,
            license=expiry is not None,
            proxies=proxies,
        )
    failures = swept.failures()
    down = sum(row.organization is None for row in failures)
    not_found = []
    listed = {name for targets, _ in swept.listed.values() for t in targets for name in _names(t)}
    failed = {_failed_name(row) for row in failures}
    for key, value in keys.items():
        if key in listed:
            continue
        if key in failed:
            continue  # an organization of the targets file that its server does not have
        if down == len(servers):
            continue  # no server could be read: their rows say why, and nothing else is known
        selective = any(server.target.organizations != "all" for server in servers)
        not_found.append(NotFound(value, _not_found_message(value, seen, failures, len(servers), selective)))
    return swept, not_found


def _failed_name(row: Row) -> str | None:
    """How a failure row of a listing names its organization (None for a whole server)."""
    return organization_key(row.organization) if row.organization is not None else None


def _names(target: PollTarget) -> set[str]:
    """The keys ``--org`` may name ``target`` by: its id and names, ignoring case and the blanks
    around them, as ``--org`` is read (`_flows.match_organization` compares so too)."""
    names = {organization_key(target.organization_id)}
    if target.organization is not None and target.organization.name:
        names.add(organization_key(target.organization.name))
    if target.name:
        names.add(organization_key(target.name))
    return names


def _not_found_message(
    value: str, seen: set[str], failures: Sequence[Row], servers: int, selective: bool = False
) -> str:
    """Why ``--org value`` names nothing: ``seen`` are the organizations swept (with
    ``selective``, the targets file's ``organizations`` chose them: an organization of the
    server it does not choose was never listed here, and is not said to be missing there)."""
    down = sum(row.organization is None for row in failures)
    where = "on the server" if servers == 1 else f"on any of the {servers} servers"
    if down:
        where = f"on the {servers - down} of {servers} servers that could be read"
    if selective:
        where = f"among those the targets file selects {where}"
    message = f"no organization {value!r} {where}"
    from ._flows import close_names  # loaded by the sweep already: not at start-up

    folded = {
        name.strip().casefold(): name for name in sorted(seen, key=lambda name: (name.casefold(), name))
    }
    close = close_names(value.strip().casefold(), folded, most=3)
    if close:
        return message + "; did you mean " + ", ".join(repr(folded[name]) for name in close) + "?"
    if 0 < len(folded) <= 10:
        return message + " (ids, or names ignoring case): there are " + ", ".join(map(repr, folded.values()))
    return message + " (ids, or names ignoring case)"
