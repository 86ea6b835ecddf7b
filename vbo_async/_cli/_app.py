"""The click commands: options, help texts, and turning outcomes and errors into exit codes."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import io
import logging
import math
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, cast

import click
from click.core import ParameterSource

from _vbo_async_cli import interrupted, terminated

from .. import __version__
from .._client import API_VERSIONS
from .._exceptions import ConfigError, DecodeError, VBOError
from ._check import (
    CHECK_EPILOG,
    PLUGIN_CODES,
    TargetsPath,
    check,
    health_options,
    health_policy,
    not_blank,
    say_unknown,
    seconds_or_duration,
    token_cache_option,
)
from ._connect import (
    DEFAULT_API_VERSION,
    NOT_A_VARIABLE,
    Connection,
    ca_bundle_problem,
    explain,
    is_terminal,
    is_variable_name,
    said_of,
    unknown_version,
    url_problem,
)
from ._exit import (
    EXIT_CODES_HELP,
    STANDARD,
    STOPPED_BY_SIGTERM,
    CLIError,
    ExitCodes,
    Outcome,
    failure_line,
    quiet_stdout,
    simulator_extra,
    writing_output,
)
from ._limits import CommandStart, started_at
from ._logging import VARIABLE, configured_logging, level_from_environment, one_line
from ._plugin import MAX_SECONDS, DurationError, parse_duration
from ._report import Report, failure_row
from ._simulate import fault_options, serve_simulator
from ._threads import Terminated, run_unheld

if TYPE_CHECKING:
    from rich.console import Console

    from .._models import Organization

__all__ = ["cli", "main"]

P = ParamSpec("P")
T = TypeVar("T")

DEMO_SEED = 1601
"""The demo's data: 43 jobs on 12 tenants whose health is a realistic mix (the simulator's
"now" being the real time, they read the same whenever the demo runs)."""

_CONTEXT = {"help_option_names": ["-h", "--help"], "show_default": True, "max_content_width": 100}


def _say_error(*lines: str) -> None:
    for line in lines:
        _say(f"vbo-async: error: {one_line(' '.join(line.split()))}")


def _say(line: str) -> None:
    """Write ``line`` on stderr, if it takes it: a stderr that cannot (a full disk, a reader gone
    away) loses the line but not the exit code, by which scripts tell what went wrong."""
    with contextlib.suppress(OSError, ValueError):
        click.echo(line, err=True)


class _Written:
    """The callback of an option that prints on stdout and ends the command (``--help``,
    ``--version``), its output written as any other (`writing_output`): a stdout that cannot
    take it is said on stderr (``check``'s plugin output cannot be written either) and a reader
    gone away is not, both then raising a `CLIError` with nothing left to say (exit 1, check's
    UNKNOWN 3), not an internal error."""

    def __init__(self, callback: Callable[[click.Context, click.Parameter, Any], Any]) -> None:
        self.callback = callback

    def __call__(self, ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        if not value or ctx.resilient_parsing:
            return self.callback(ctx, param, value)
        try:
            with writing_output():
                return self.callback(ctx, param, value)
        except BrokenPipeError:
            quiet_stdout()
        except CLIError as exc:
            _say_error(*exc.lines)
        raise CLIError(outcome=Outcome.UNREADABLE)


class _WritesHelp(click.Command):
    """A command or group whose ``--help`` and ``--version`` write their output as `_Written`
    says (the eager options that are no value of the command: click's way to print and exit)."""

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        params = super().get_params(ctx)
        for param in params:
            written = param.callback is None or isinstance(param.callback, _Written)
            if param.is_eager and not param.expose_value and not written:
                param.callback = _Written(param.callback)  # type: ignore[arg-type]
        return params


class VBOCommand(_WritesHelp):
    """A command whose callback returns an `Outcome` (or an exit status), with its own
    `ExitCodes` and its own way of reporting errors (``report_error``, by default one
    ``vbo-async: error: ...`` line on stderr per line given)."""

    def __init__(
        self,
        *args: Any,
        exit_codes: ExitCodes = STANDARD,
        report_error: Callable[..., None] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.exit_codes = exit_codes
        self.report_error: Callable[..., None] = report_error or _say_error

    def invoke(self, ctx: click.Context) -> int:
        codes, say = self.exit_codes, self.report_error
        try:
            result = super().invoke(ctx)
        except CLIError as exc:
            say(*exc.lines)
            return codes[exc.outcome]
        except ConfigError as exc:
            say(str(exc))
            return codes.usage
        except VBOError as exc:
            say(explain(exc))
            return codes.unreadable
        except Terminated:
            _say("vbo-async: terminated")
            return codes.terminated
        except KeyboardInterrupt:
            _say("vbo-async: interrupted")
            return codes.interrupted
        except BrokenPipeError:
            quiet_stdout()
            return codes.unreadable
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except (Exception, asyncio.CancelledError) as exc:  # a bug: one line, with this command's exit code
            logging.getLogger("vbo_async.cli").debug("internal error", exc_info=True)
            say(failure_line(exc))
            return codes.unreadable
        return codes[result] if isinstance(result, Outcome) else int(result)


class SimulateCommand(VBOCommand):
    """``simulate``: its fault flags are generated from `Faults` when first needed, so neither
    ``vbo-async --help`` nor any other command imports the simulator."""

    _faults_added = False

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        if not self._faults_added:
            with simulator_extra("simulate"):
                from ..simulator import Faults
            taken = frozenset(param.name for param in self.params if param.name)
            self.params.extend(fault_options(Faults, reserved=taken))
            self._faults_added = True
        return super().get_params(ctx)


class VBOGroup(_WritesHelp, click.Group):
    command_class = VBOCommand


@click.group(
    cls=VBOGroup,
    context_settings=_CONTEXT,
    epilog=EXIT_CODES_HELP
    + f"""
Environment:

\b
  VBO_PASSWORD   the password of 'organizations' and 'jobs', unless --password-env
                 names another variable ('poll', 'check' and 'serve' read the one
                 each server's password_env names in the targets file, or its
                 password_file)
  CREDENTIALS_DIRECTORY  where password_file = "credentials:NAME" is (systemd)
  {VARIABLE}  debug, info or warning: log the library at that level to stderr
""",
)
@click.version_option(__version__, "--version", prog_name="vbo-async", message="%(prog)s %(version)s")
def cli() -> None:
    """Read the backup jobs of Veeam Backup for Microsoft 365 servers.

    Or try it on a simulated server first: 'vbo-async demo'.

    \b
    Example:
      vbo-async demo
      vbo-async organizations --server https://vbo01.example.com:4443 --username 'LAB\\svc'
    """


# --- shared options -----------------------------------------------------------------------------

F = Callable[..., Any]


def connection_options(command: F) -> F:
    """``--server``, ``--username``, ``--password-env``, ``--ca-bundle``/``--insecure`` and
    ``--api-version``, handed to the command as one ``connection`` (a `Connection`)."""

    @functools.wraps(command)
    def with_connection(
        *,
        server: str,
        username: str,
        password_env: str,
        ca_bundle: str | None,
        insecure: bool,
        api_version: str,
        **rest: Any,
    ) -> Any:
        context = click.get_current_context()
        if insecure and ca_bundle is not None:
            raise click.UsageError("--ca-bundle and --insecure exclude each other", ctx=context)
        if not is_variable_name(password_env):
            raise click.UsageError(f"--password-env takes {NOT_A_VARIABLE}", ctx=context)
        if (unknown := unknown_version(server)) is not None:
            raise click.UsageError(f"--server {unknown}", ctx=context)
        if (problem := url_problem(server, source="options")) is not None:  # before any prompt
            raise click.UsageError(said_of("--server", problem), ctx=context)
        if ca_bundle is not None and (problem := ca_bundle_problem(ca_bundle)) is not None:
            raise click.BadParameter(problem, ctx=context, param_hint="'--ca-bundle'")
        explicit = context.get_parameter_source("api_version") is not ParameterSource.DEFAULT
        connection = Connection.build(
            server,
            api_version=api_version if explicit else None,
            username=username,
            password_env=password_env,
            ca_bundle=ca_bundle,
            insecure=insecure,
        )
        return command(connection=connection, **rest)

    options = [
        click.option(
            "--server",
            required=True,
            metavar="URL",
            help="The server's base URL, e.g. https://vbo01.example.com:4443. A trailing /v1 ... /v8 "
            "(https://vbo01:4443/v6) is taken as the API version.",
        ),
        click.option(
            "--username",
            required=True,
            callback=not_blank,
            help="The account to sign in with, e.g. 'LAB\\svc-backup'.",
        ),
        click.option(
            "--password-env",
            default="VBO_PASSWORD",
            metavar="VAR",
            help="Environment variable holding the password; prompted for when unset on a terminal.",
        ),
        click.option(
            "--ca-bundle",
            type=click.Path(exists=True),
            help="CA bundle (file or directory) to verify the server's certificate with "
            "[default: the system's CAs].",
        ),
        click.option(
            "--insecure", is_flag=True, help="Do NOT verify the server's TLS certificate (testing only)."
        ),
        click.option(
            "--api-version",
            default=DEFAULT_API_VERSION,
            type=click.Choice(API_VERSIONS),
            help="API version: auto picks the newest the server serves (v8, v7, v6, v1); a /vN at the "
            "end of --server is used when this is not given.",
        ),
    ]
    for option in reversed(options):
        with_connection = option(with_connection)
    return with_connection


def output_options(command: F) -> F:
    @functools.wraps(command)
    def exclusive(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("as_json") and kwargs.get("wide"):
            raise click.UsageError(
                "--json and --wide exclude each other (--wide lays out a table)",
                ctx=click.get_current_context(silent=True),
            )
        return command(*args, **kwargs)

    checked = click.option(
        "--wide",
        is_flag=True,
        help="Show every column at full width even on a narrow terminal (always so when piped). "
        "Not with --json.",
    )(exclusive)
    json_option = click.option(
        "--json", "as_json", is_flag=True, help="Print JSON on stdout instead of a table."
    )
    return cast(F, json_option(checked))


class Seconds(click.FloatRange):
    """A number of seconds of at least ``min``, written as ``poll --timeout`` and ``check -t``
    read it (`parse_duration`, a number alone in seconds): ``90``, ``1.5``, ``90s``, ``5m``,
    ``1h30m``, refusing what they refuse with their message. ``float()`` read the number alone
    before: ``٣٠٠`` and ``１２０`` (digits of other scripts), ``1_000``, ``1e3``, ``nan`` and
    ``inf`` were taken here and refused there. More than 100 years is refused, as a duration
    with a unit is; a number given as it is (not text) must be finite and within that too."""

    name = "seconds"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str):
            try:
                value = parse_duration(value, bare="s").total_seconds()
            except DurationError as exc:
                self.fail(str(exc), param, ctx)
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a number of seconds", param, ctx)
        if number > MAX_SECONDS:  # as a duration with its unit is refused
            self.fail(f"{value!r} is longer than 100 years", param, ctx)
        return number


def _concurrency(default: int, what: str) -> Callable[[F], F]:
    return click.option("--concurrency", type=click.IntRange(min=1), default=default, help=what)


def _timeout(then: str) -> Callable[[F], F]:
    """``-t``/``--timeout DURATION`` of ``poll``, ``jobs`` and ``organizations``, read as
    ``check``'s is (`seconds_or_duration`), no limit by default; ``then`` says what happens then."""
    return click.option(
        "-t",
        "--timeout",
        default=None,
        metavar="DURATION",
        callback=seconds_or_duration,
        help="Give up after this long (90s, 2m, 1h30m; a number alone is seconds, as for check's -t): "
        f"{then} [default: no limit].",
    )


def one_organization(given: Sequence[str]) -> str:
    """The one ``--org`` of ``jobs``: given several times (as ``check`` takes it), a usage error
    naming them, instead of click's silent choice of the last."""
    if len(given) == 1:
        return given[0]
    named = ", ".join(repr(value) for value in given)
    raise click.UsageError(
        f"--org names one organization, got {len(given)} ({named}): run 'vbo-async jobs' once for "
        "each, or list them in a targets file for 'vbo-async poll'",
        ctx=click.get_current_context(silent=True),
    )


# --- output -------------------------------------------------------------------------------------


def _show(report: Report, *, as_json: bool, wide: bool) -> Outcome:
    with writing_output():
        if as_json:
            report.write_json(sys.stdout)
        else:
            from ._table import print_report

            print_report(report, _console(), wide=wide or _piped())
        sys.stdout.flush()
    return report.outcome


class _Shown(Generic[P, T]):
    """The callback that prints what a command read (`_flows.jobs`, `_flows.list_organizations`
    call it before the logout), saying whether it was called: an error after it (a stdout that
    cannot take the output) is no failure to read, for which --json prints its failure object."""

    def __init__(self, show: Callable[P, T]) -> None:
        self.show = show
        self.called = False

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> T:
        self.called = True
        return self.show(*args, **kwargs)


def _write_failure(write: Callable[[IO[str]], object]) -> None:
    """``--json``'s output of a command that failed, written by ``write`` if stdout takes it:
    the failure is what the command then says (on stderr, its exit code), not that this output
    could not be written (stdout closed, a reader gone away, a full disk)."""
    try:
        with writing_output():
            write(sys.stdout)
            sys.stdout.flush()
    except BrokenPipeError:
        quiet_stdout()
    except CLIError:  # said nothing yet; writing_output made stdout quiet
        pass


MIN_WIDTH = 40
"""The fewest columns the tables are fitted to. rich takes ``COLUMNS=0`` (an unsized
pseudo-terminal's width copied into the environment) as a width of 0 and prints nothing at all,
and a few columns as room for borders alone: every name would be lost, with exit code 0. On a
narrower terminal the lines are longer than it, and it wraps them."""


def _console() -> Console:
    """The console of stdout's tables, at least `MIN_WIDTH` columns wide."""
    from rich.console import Console

    console = Console()
    if console.width < MIN_WIDTH:
        console.width = MIN_WIDTH
    return console


def _piped() -> bool:
    """Whether stdout is not a terminal. rich takes ``FORCE_COLOR`` (or ``TTY_COMPATIBLE``) to
    mean one, of rich's default width of 80 columns: piped output forced into colour would lose
    columns, which piped output never does."""
    return not is_terminal(sys.stdout)


# --- commands -----------------------------------------------------------------------------------

_TABLE_HELP = """
\b
Every job's health is judged as 'vbo-async check' does (a failed last run or no success for
26 h, or --max-age, is CRITICAL; warnings and jobs never run are WARNING), from its recent
sessions: on v6+ one listing for a server with many tenants (plus one request per job whose
last success lies before it, on v6 every job without a success within 26 h, or --max-age),
one or two requests per job for a tenant alone; v1 cannot list sessions server-wide, so each job costs
one request there.
\b
The table puts the jobs by health first (CRITICAL, WARNING, UNKNOWN, then OK) and ends with a
summary line; servers and tenants that could not be read are listed below it (and make the
exit code 1). On a narrow terminal, the Health column shows the state alone, and columns are
left out in this order: Proxy, Repository, Next run, Last run, Enabled, Status, health reasons.
With --json, each job has "health" (OK, WARNING, CRITICAL or UNKNOWN) and "health_reason";
both are null for a server or tenant that could not be read.
"""
_DEMO_HELP = _TABLE_HELP.replace("26 h, or --max-age, is CRITICAL", "26 h is CRITICAL").replace(
    "within 26 h, or --max-age)", "within 26 h)"
)
"""`_TABLE_HELP` for ``demo``, which judges with the default policy: it has no --max-age."""


@cli.command(epilog=_DEMO_HELP)
@click.option(
    "--organizations", type=click.IntRange(min=1), default=12, help="Organizations the simulator holds."
)
@click.option("--seed", type=int, default=DEMO_SEED, help="Seed of the simulated data.")
@_concurrency(8, "How many tenants are polled at once.")
@output_options
def demo(organizations: int, seed: int, concurrency: int, as_json: bool, wide: bool) -> Outcome:
    """Poll an in-process simulator and print its jobs and their health.

    Needs the simulator extra: pip install 'vbo-async[demo]'.

    \b
    Example:
      vbo-async demo --organizations 30 --json
    """
    from ._flows import demo as run

    report = run_unheld(run(seed=seed, organizations=organizations, concurrency=concurrency))
    return _show(report, as_json=as_json, wide=wide)


@cli.command(cls=SimulateCommand, exit_codes=STOPPED_BY_SIGTERM)
@click.option(
    "--host",
    default="127.0.0.1",
    help="Address to listen on (0.0.0.0 or '' for every IPv4 interface, :: for every address).",
)
@click.option("--port", type=click.IntRange(0, 65535), default=4443, help="TCP port (0: any free port).")
@click.option("--tls", is_flag=True, help="Serve HTTPS with a fresh certificate (its CA bundle is printed).")
@click.option("--seed", type=int, default=0, help="Seed of the simulated data.")
@click.option(
    "--organizations",
    type=click.IntRange(min=0),
    default=20,
    help="Organizations the simulator holds (0: a server with none yet).",
)
@click.option(
    "--api-versions",
    default="v1,v6,v7,v8",
    show_default=True,
    metavar="LIST",
    help="API versions to serve, comma-separated (any of v1, v6, v7, v8); the others answer 404.",
)
@click.option(
    "--token-lifetime",
    type=float,
    default=3600.0,
    metavar="SECONDS",
    help="Seconds an access token is accepted (its expires_in); then requests with it are answered 401.",
)
@click.option(
    "--refresh-token-lifetime",
    type=float,
    default=None,
    metavar="SECONDS",
    show_default="14 days, or --token-lifetime if longer",
    help="Seconds a refresh token is accepted; then a refresh is refused (the password is needed).",
)
@click.option(
    "--run-schedules",
    is_flag=True,
    help="Run each enabled job when its next run comes, as the server's scheduler does, so that "
    "a simulator left running for days keeps fresh sessions (an exporter watched over time) "
    "[default: jobs run only when started].",
)
def simulate(
    host: str,
    port: int,
    tls: bool,
    seed: int,
    organizations: int,
    api_versions: str,
    token_lifetime: float,
    refresh_token_lifetime: float | None,
    run_schedules: bool,
    **faults: Any,
) -> Outcome:
    """Serve the simulator over HTTP(S) until Ctrl-C, with fault injection.

    The fault flags are those of vbo_async.simulator.Faults; the five shares of requests that
    fail (error, rate limit, drop, truncate, malformed) must add up to at most 1.

    \b
    Example:
      vbo-async simulate --port 4443 --tls --error-rate 0.1 --revoke-every 30
      vbo-async simulate --port 4443 --api-versions v6   # a VB365 6.x server
      vbo-async simulate --port 4443 --token-lifetime 60  # tokens expire each minute
      vbo-async simulate --port 4443 --run-schedules      # jobs run on schedule, for days
    """
    return serve_simulator(
        host=host,
        port=port,
        tls=tls,
        seed=seed,
        organizations=organizations,
        api_versions=tuple(v.strip().lower() for v in api_versions.split(",") if v.strip()),
        token_lifetime=token_lifetime,
        refresh_token_lifetime=refresh_token_lifetime,
        run_schedules=run_schedules,
        faults=faults,
    )


@cli.command(epilog=_TABLE_HELP)
@connection_options
@click.option(
    "--org",
    "organizations",
    required=True,
    multiple=True,  # given twice, a usage error (`one_organization`), not the last one alone
    callback=not_blank,
    metavar="ID|NAME",
    help="Organization id, or name (case-insensitive).",
)
@_timeout("a server that has not answered by then is a failure ('no answer within 2m', exit code 1)")
@health_options
@output_options
def jobs(
    connection: Connection,
    organizations: tuple[str, ...],
    timeout: dt.timedelta | None,
    max_age: dt.timedelta,
    schedule_aware: bool,
    warning_is_success: bool,
    as_json: bool,
    wide: bool,
) -> Outcome:
    """List the jobs of one organization.

    \b
    Example:
      VBO_PASSWORD=... vbo-async jobs --server https://vbo01:4443 \\
          --username 'LAB\\svc-backup' --org contoso.onmicrosoft.com
    """
    from ._flows import jobs as run

    organization = one_organization(organizations)
    policy = health_policy(max_age, schedule_aware, warning_is_success)
    shown = _Shown(lambda report: _show(report, as_json=as_json, wide=wide))
    try:
        return run_unheld(
            run(
                connection,
                organization,
                show=shown,
                policy=policy,
                give_up_after=timeout,
                started=started_at(),
            )
        )
    except (VBOError, CLIError) as exc:
        # --json prints JSON however the command ends (a script pipes it into jq), the error in it.
        if (
            as_json
            and not shown.called
            and (row := failure_row(exc, connection.name, organization=organization)) is not None
        ):
            _write_failure(Report.collect([row], servers=1, tenants=0).write_json)
        raise


@cli.command()
@connection_options
@_timeout("a server that has not answered by then is a failure ('no answer within 2m', exit code 1)")
@output_options
def organizations(connection: Connection, timeout: dt.timedelta | None, as_json: bool, wide: bool) -> Outcome:
    """List the organizations (tenants) of a server, ids and names.

    With --json, one object per organization with "id", "name" and "error" (null, or why the
    server's entry could not be read); a server that cannot be read is one object with its
    "error" (exit code 1).

    \b
    Example:
      vbo-async organizations --server https://127.0.0.1:4443/v1 --username admin \\
          --ca-bundle simulator-ca.pem --json
    """
    import json

    from ._flows import list_organizations

    def show(found: list[Organization], undecoded: dict[str, DecodeError]) -> Outcome:
        return _show_organizations(found, undecoded, as_json=as_json, wide=wide)

    shown = _Shown(show)
    try:
        return run_unheld(
            list_organizations(connection, show=shown, give_up_after=timeout, started=started_at())
        )
    except (VBOError, CLIError) as exc:
        # --json prints JSON however the command ends (a script pipes it into jq), the error in it.
        if as_json and not shown.called and (row := failure_row(exc, connection.name)) is not None:
            failed = [{"id": None, "name": None, "error": row.error}]
            _write_failure(lambda out: out.write(json.dumps(failed, indent=2) + "\n"))
        raise


def _show_organizations(
    found: list[Organization], undecoded: dict[str, DecodeError], *, as_json: bool, wide: bool
) -> Outcome:
    """Print the organizations ``found`` (and those ``undecoded``: the rest is printed, their
    errors said on stderr), as a table or, with ``as_json``, one object each."""
    import json

    with writing_output():
        if as_json:
            listed = [{"id": o.id, "name": o.name, "error": None} for o in found]
            listed += [{"id": key or None, "name": None, "error": str(e)} for key, e in undecoded.items()]
            json.dump(listed, sys.stdout, indent=2)
            sys.stdout.write("\n")
        else:
            from ._table import print_organizations

            print_organizations(found, _console(), wide=wide or _piped())
        sys.stdout.flush()
    # The organizations the server listed but that could not be decoded: the rest is printed.
    _say_error(*(f"organization {key or '(id unreadable)'}: {error}" for key, error in undecoded.items()))
    return Outcome.UNREADABLE if undecoded else Outcome.OK


@cli.command(epilog=_TABLE_HELP)
@click.option(
    "--targets",
    required=True,
    type=TargetsPath(dir_okay=False, path_type=Path),
    help="TOML file of [[servers]] tables with the keys name, url, username, password_env or "
    "password_file, organizations, ca_bundle, insecure, api_version and max_concurrency (others "
    "are refused).",
)
@_concurrency(16, "How many servers are listed at once, and tenants polled at once on each server.")
@_timeout(
    "each server or tenant that has not answered by then is listed as not read ('no answer within "
    "2m'), everything read is shown"
)
@health_options
@output_options
@token_cache_option("polls run every minute")
def poll(
    targets: Path,
    concurrency: int,
    timeout: dt.timedelta | None,
    max_age: dt.timedelta,
    schedule_aware: bool,
    warning_is_success: bool,
    as_json: bool,
    wide: bool,
    token_cache: Path | None,
) -> Outcome:
    """Poll the servers and organizations of a TOML targets file.

    Each server is listed and then polled on its own: a slow one holds up only itself. With
    --timeout (cron jobs, scripts), poll stops waiting then and prints what it has read, what
    has not answered being listed as not read (exit code 1).

    \b
    Example targets.toml:
      [[servers]]
      name = "east"
      url = "https://vbo-east.example.com:4443"
      username = "LAB\\\\svc-backup"
      password_env = "VBO_EAST_PASSWORD"
      organizations = "all"        # or ["contoso.onmicrosoft.com", "<id>"]
      ca_bundle = "east-ca.pem"

    \b
    Example:
      vbo-async poll --targets targets.toml --timeout 2m --json > jobs.json
    """
    from ._flows import poll as run

    policy = health_policy(max_age, schedule_aware, warning_is_success)
    report = run_unheld(
        run(
            targets,
            concurrency,
            give_up_after=timeout,
            policy=policy,
            token_cache=token_cache,
            started=started_at(),
        )
    )
    return _show(report, as_json=as_json, wide=wide)


# A monitoring plugin: its own exit codes and output (see _check).
cli.command("check", exit_codes=PLUGIN_CODES, report_error=say_unknown, epilog=CHECK_EPILOG)(check)


@cli.command(exit_codes=STOPPED_BY_SIGTERM)
@click.option(
    "--targets",
    required=True,
    type=TargetsPath(dir_okay=False, path_type=Path),
    help="TOML file of [[servers]] tables, as for 'poll'.",
)
@click.option(
    "--listen",
    default="127.0.0.1:9810",
    metavar="HOST:PORT",
    help="Address to serve /metrics and /healthz on ([IPv6]:PORT; :PORT for every IPv4 interface).",
)
@click.option(
    "--interval",
    type=Seconds(min=1),
    default="60s",
    metavar="DURATION",
    help="From the start of one sweep of a server to the start of its next (90s, 5m, 1h30m; a number "
    "alone is seconds, as for poll's and check's --timeout).",
)
@click.option(
    "-t",
    "--timeout",
    type=Seconds(min=1),
    default=None,
    metavar="DURATION",
    help="How long one server's sweep may take before that server counts as down (as --interval is "
    "written) [default: the interval].",
)
@_concurrency(8, "How many tenants (or whole-server batches) are polled at once on each server.")
@health_options
def serve(
    targets: Path,
    listen: str,
    interval: float,
    timeout: float | None,
    concurrency: int,
    max_age: dt.timedelta,
    schedule_aware: bool,
    warning_is_success: bool,
) -> Outcome:
    """Serve Prometheus metrics of the servers of a TOML targets file.

    Needs the exporter extra: pip install 'vbo-async[exporter]'. Every server is swept in the
    background on its own schedule, the first time at start-up; /metrics answers each server's
    last sweep, published as soon as it ended, and never sends a request to a server. SIGHUP
    reloads the targets file and its password files between sweeps (an invalid one is said on
    stderr and the last good one kept). SIGTERM stops it (exit 0), as does Ctrl-C (exit 130).

    \b
    Example:
      vbo-async serve --targets targets.toml --listen 127.0.0.1:9810 --interval 60
    """
    from ._serve import serve as run

    return run(
        targets,
        listen=listen,
        interval=interval,
        timeout=timeout,
        concurrency=concurrency,
        policy=health_policy(max_age, schedule_aware, warning_is_success),
    )


# --- entry point --------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None, *, started: float | None = None) -> int:
    """Run the command line; returns the exit status (see `EXIT_CODES_HELP`). ``started``
    (`time.monotonic`; now when None) is when the command began, which time limits count from
    (`started_at`): the process's entry point gives it before this module was imported."""
    begun = time.monotonic() if started is None else started
    with _unencodable_replaced():
        try:
            level = level_from_environment()
        except CLIError as exc:
            command = _named_command(argv)
            if command is None:
                _say_error(*exc.lines)
                return STANDARD.usage
            command.report_error(*exc.lines)
            return command.exit_codes.usage
        return _run(argv, level, begun)


def _run(argv: Sequence[str] | None, level: int | None, begun: float) -> int:
    """`main` once ``VBO_ASYNC_LOG`` is read: the command with the library logging at ``level``."""
    with configured_logging(level):
        try:
            status = cli.main(
                args=list(argv) if argv is not None else None,
                prog_name="vbo-async",
                standalone_mode=False,
                obj=CommandStart(begun),
            )
        except click.exceptions.NoArgsIsHelpError as exc:
            commands = ", ".join(sorted(cli.commands))
            _say_error(f"no command given; the commands are {commands} (see 'vbo-async --help')")
            return _codes(exc.ctx).usage
        except click.UsageError as exc:
            failed = exc.ctx.command if exc.ctx is not None else None
            if not isinstance(failed, VBOCommand):
                # An option of the group itself ("vbo-async -v check"), or click's "Option '--x'
                # requires an argument." without a context: said as the command named says its
                # own (check: UNKNOWN on stdout, for a monitoring system reads nothing else).
                failed = _named_command(argv)
            if exc.ctx is not None:
                where = exc.ctx.command_path
            else:
                where = f"vbo-async {failed.name}" if failed is not None else "vbo-async"
            say = failed.report_error if failed is not None else _say_error
            say(f"{exc.format_message()} (see '{where} --help')")
            return (failed.exit_codes if failed is not None else STANDARD).usage
        except click.ClickException as exc:
            _say_error(exc.format_message())
            return STANDARD.usage
        except CLIError as exc:  # raised while parsing: simulate without the simulator extra, --help
            named = _named_command(argv)  # unwritable (check's own output and codes)
            if exc.lines:
                (named.report_error if named is not None else _say_error)(*exc.lines)
            return (named.exit_codes if named is not None else STANDARD)[exc.outcome]
        except (click.Abort, KeyboardInterrupt) as exc:  # before the command ran: as while it started
            args = list(argv) if argv is not None else sys.argv[1:]
            if isinstance(exc, Terminated) or isinstance(exc.__context__, Terminated):  # click: Abort
                return terminated(args)
            return interrupted(args)
        except Exception as exc:  # a bug: still one line, the traceback only when asked for
            logging.getLogger("vbo_async.cli").debug("internal error", exc_info=True)
            named = _named_command(argv)  # one reading the options: its own output and codes
            say = named.report_error if named is not None else _say_error
            say(failure_line(exc))
            return (named.exit_codes if named is not None else STANDARD).unreadable
    return int(status) if isinstance(status, int) else 0


@contextlib.contextmanager
def _unencodable_replaced() -> Iterator[None]:
    """While a command runs, what stdout's encoding cannot show prints as ``?``: a tenant named in
    Japanese on a stdout that is not UTF-8 (a Windows code page redirected to a file, a latin-1
    locale, the C locale without UTF-8 mode: ASCII with ``surrogateescape``) would otherwise fail
    the whole command, a monitoring check included."""
    stream = sys.stdout
    errors = getattr(stream, "errors", None)
    if not isinstance(stream, io.TextIOWrapper) or errors not in ("strict", "surrogateescape"):
        yield
        return
    stream.reconfigure(errors="replace")
    try:
        yield
    finally:
        with contextlib.suppress(OSError, ValueError):
            stream.reconfigure(errors=errors)


def _named_command(argv: Sequence[str] | None) -> VBOCommand | None:
    """The command the arguments name (their first word that is not an option), if any."""
    args = list(argv) if argv is not None else sys.argv[1:]
    name = next((arg for arg in args if not arg.startswith("-")), None)
    command = cli.commands.get(name) if name is not None else None
    return command if isinstance(command, VBOCommand) else None


def _codes(ctx: click.Context | None) -> ExitCodes:
    command = ctx.command if ctx is not None else None
    return command.exit_codes if isinstance(command, VBOCommand) else STANDARD
