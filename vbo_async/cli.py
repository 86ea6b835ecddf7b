"""The ``vbo-async`` command line: ``demo``, ``simulate``, ``jobs`` and ``poll``.

Needs the ``cli`` extra (rich for tables and progress, the simulator for ``demo``/``simulate``).
Errors are one line on stderr and a non-zero exit, never a traceback. Passwords come from an
environment variable or a prompt, never from an argument.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import getpass
import json
import logging
import os
import signal
import socket
import ssl
import sys
import tempfile
import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs
import httpx

from . import __version__
from ._client import VBOClient, tls_context
from ._exceptions import ConfigError, VBOError
from ._models import Job, JobSession
from ._poll import PollProgress, PollResult, PollTarget, poll_jobs

__all__ = ["main"]

FOLLOW = ("organization", "repository", "proxy")
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class CLIError(Exception):
    """A problem to report as one line on stderr (bad arguments, unreadable files)."""


@attrs.frozen
class Row:
    """One job as the tables and ``--json`` show it."""

    server: str
    organization: str
    job: str
    job_id: str
    enabled: bool | None
    last_status: str | None
    last_run: dt.datetime | None
    next_run: dt.datetime | None
    repository: str | None
    proxy: str | None
    latest_session: str | None
    latest_session_time: dt.datetime | None
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            key: value.isoformat() if isinstance(value, dt.datetime) else value
            for key, value in attrs.asdict(self).items()
        }


# --- argument parsing -----------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vbo-async",
        description="Async client for the Veeam Backup for Microsoft 365 (Office 365) REST API.",
    )
    parser.add_argument("--version", action="version", version=f"vbo-async {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser("demo", help="poll an in-process simulator and print its jobs")
    demo.add_argument("--organizations", type=_positive_int, default=12)
    demo.add_argument("--seed", type=int, default=2017)
    demo.add_argument("--concurrency", type=_positive_int, default=8)
    _add_output(demo)

    simulate = commands.add_parser("simulate", help="serve the simulator over HTTP(S)")
    simulate.add_argument("--host", default="127.0.0.1")
    simulate.add_argument("--port", type=_port, default=4443, help="TCP port (0: any free port)")
    simulate.add_argument("--tls", action="store_true", help="serve HTTPS with a fresh certificate")
    simulate.add_argument("--seed", type=int, default=0)
    simulate.add_argument("--organizations", type=_positive_int, default=20)
    faults = simulate.add_argument_group("fault injection")
    faults.add_argument("--latency", type=float, default=0.0, help="seconds added to every request")
    faults.add_argument("--error-rate", type=float, default=0.0, help="share answered 500/502/503")
    faults.add_argument("--rate-limit-rate", type=float, default=0.0, help="share answered 429")
    faults.add_argument("--retry-after", type=float, default=1.0, help="Retry-After of those 429s")
    faults.add_argument("--drop-rate", type=float, default=0.0, help="share of dropped connections")
    faults.add_argument("--truncate-rate", type=float, default=0.0, help="share of truncated bodies")
    faults.add_argument("--malformed-rate", type=float, default=0.0, help="share of non-JSON bodies")
    faults.add_argument("--revoke-every", type=float, default=None, help="revoke tokens every N s")
    faults.add_argument("--fault-seed", type=int, default=0)

    jobs = commands.add_parser("jobs", help="list the jobs of one organization")
    _add_server(jobs)
    jobs.add_argument("--org", required=True, help="organization id")
    _add_output(jobs)

    poll = commands.add_parser("poll", help="poll many servers and organizations (TOML targets)")
    poll.add_argument("--targets", required=True, type=Path, help="TOML file of servers")
    poll.add_argument("--concurrency", type=_positive_int, default=16)
    _add_output(poll)
    return parser


def _add_server(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--server", required=True, help="e.g. https://vbo01.example.com:4443")
    parser.add_argument("--username", required=True)
    parser.add_argument(
        "--password-env",
        default="VBO_PASSWORD",
        help="environment variable holding the password (default VBO_PASSWORD; prompted if unset)",
    )
    parser.add_argument("--api-version", default="v1")
    tls = parser.add_mutually_exclusive_group()
    tls.add_argument("--ca-bundle", type=Path, help="CA bundle to verify the server with")
    tls.add_argument("--insecure", action="store_true", help="do NOT verify TLS certificates")


def _add_output(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a TCP port is 0-65535, got {value}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


# --- commands -------------------------------------------------------------------------------------


async def run_demo(args: argparse.Namespace) -> list[Row]:
    """Poll every organization of an in-process simulator concurrently and collect the rows."""
    from .simulator import SimulatorConfig, create_app

    app = create_app(SimulatorConfig(seed=args.seed, organizations=args.organizations))
    async with VBOClient(
        "https://vbo-demo.local:4443",
        username="admin",
        password="admin",
        transport=httpx.ASGITransport(app=app),
    ) as vbo:
        organizations = await vbo.organizations()
        targets = [PollTarget(client=vbo, organization_id=o.id, name=o.name or o.id) for o in organizations]
        return await _sweep(targets, args.concurrency, server="simulator", quiet=args.json)


async def run_jobs(args: argparse.Namespace) -> list[Row]:
    password = _password(args.password_env, f"Password for {args.username}: ")
    async with VBOClient(
        args.server,
        username=args.username,
        password=password,
        api_version=args.api_version,
        verify=_verify(args.ca_bundle, args.insecure),
    ) as vbo:
        target = PollTarget(client=vbo, organization_id=args.org, name=args.org)
        rows = await _sweep([target], 1, server=args.server, quiet=True)
    failed = [row.error for row in rows if row.error]
    if failed:
        raise CLIError(failed[0])
    return rows


async def run_poll(args: argparse.Namespace) -> list[Row]:
    """Poll every target of a targets file. Passwords are read (or prompted for) one server at a
    time; the servers whose organizations are "all" are then listed concurrently, at most
    ``--concurrency`` at once, and servers sharing a CA bundle share one TLS context."""
    servers = _read_targets(args.targets)
    clients: list[VBOClient] = []
    try:
        names: dict[int, str] = {}
        contexts: dict[str | None, ssl.SSLContext] = {}
        for server in servers:
            client = VBOClient(
                server["url"],
                username=server["username"],
                password=_password(server["password_env"], f"Password for {server['name']}: "),
                api_version=server.get("api_version", "v1"),
                verify=_shared_verify(server.get("ca_bundle"), bool(server.get("insecure", False)), contexts),
                max_concurrency=server.get("max_concurrency", 10),
            )
            clients.append(client)
            names[id(client)] = server["name"]
        limit = asyncio.Semaphore(args.concurrency)
        async with asyncio.TaskGroup() as group:
            listings = [
                group.create_task(_organizations_of(server, client, limit))
                for server, client in zip(servers, clients, strict=True)
            ]
        targets: list[PollTarget] = []
        unreachable: list[Row] = []
        for client, listing in zip(clients, listings, strict=True):
            found = listing.result()
            if isinstance(found, Row):
                unreachable.append(found)
            else:
                targets.extend(PollTarget(client=client, organization_id=org, name=org) for org in found)
        rows = await _sweep(targets, args.concurrency, server=names, quiet=args.json)
        return sorted([*rows, *unreachable], key=_row_order)
    finally:
        for client in clients:
            await client.aclose()


async def _organizations_of(
    server: dict[str, Any], client: VBOClient, limit: asyncio.Semaphore
) -> list[str] | Row:
    """The organization ids to poll on ``server``: its list, or all the server has. A server that
    cannot list them gives an error row, like a tenant's error; the other servers are still polled."""
    chosen = server.get("organizations", "all")
    if chosen != "all":
        return list(chosen)
    async with limit:
        try:
            return [organization.id for organization in await client.organizations()]
        except VBOError as exc:
            return _error_row(server["name"], "(all organizations)", exc)


async def _sweep(
    targets: Sequence[PollTarget], concurrency: int, *, server: str | dict[int, str], quiet: bool
) -> list[Row]:
    """Run `poll_jobs` over ``targets`` with a progress bar, then read each job's latest session."""
    rows: list[Row] = []
    with _progress(len(targets), quiet) as advance:
        async for result in poll_jobs(targets, concurrency=concurrency, follow=FOLLOW, on_progress=advance):
            name = server if isinstance(server, str) else server.get(id(result.target.client), "?")
            rows.extend(await _rows(result, name))
    rows.sort(key=_row_order)
    return rows


def _row_order(row: Row) -> tuple[str, str, str]:
    return (row.server, row.organization, row.job)


def _error_row(server: str, organization: str, error: VBOError) -> Row:
    return Row(server, organization, "-", "-", None, None, None, None, None, None, None, None, str(error))


async def _rows(result: PollResult, server: str) -> list[Row]:
    target = result.target
    organization = target.name or target.organization_id
    if result.error is not None:
        return [_error_row(server, organization, result.error)]
    sessions = await asyncio.gather(*(_latest_session(job) for job in result.jobs))
    rows = []
    for job, session in zip(result.jobs, sessions, strict=True):
        org = result.resolved(job, "organization")
        repo = result.resolved(job, "repository")
        proxy = result.resolved(job, "proxy")
        rows.append(
            Row(
                server=server,
                organization=getattr(org, "name", None) or organization,
                job=job.name or job.id,
                job_id=job.id,
                enabled=job.is_enabled,
                last_status=str(job.last_status) if job.last_status is not None else None,
                last_run=job.last_run,
                next_run=job.next_run,
                repository=getattr(repo, "name", None),
                proxy=getattr(proxy, "host_name", None),
                latest_session=str(session.status) if session and session.status else None,
                latest_session_time=session.creation_time if session else None,
            )
        )
    return rows


async def _latest_session(job: Job) -> JobSession | None:
    link = job.links.jobsessions
    if link is None:
        return None
    try:
        sessions = await link
    except VBOError:
        return None
    dated = [s for s in sessions if s.creation_time is not None]
    return max(dated, key=lambda s: s.creation_time or dt.datetime.min) if dated else None


# --- output ---------------------------------------------------------------------------------------


class _progress:
    """A rich progress bar on stderr, advanced by `poll_jobs`' ``on_progress``."""

    def __init__(self, total: int, quiet: bool) -> None:
        self._total = total
        self._quiet = quiet or not sys.stderr.isatty()
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> Callable[[PollProgress], None]:
        if not self._quiet:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

            self._bar = Progress(
                "[progress.description]{task.description}",
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                transient=True,
            )
            self._bar.start()
            self._task = self._bar.add_task("Polling organizations", total=self._total)
        return self._advance

    def _advance(self, progress: PollProgress) -> None:
        if self._bar is not None:
            self._bar.update(self._task, completed=progress.done)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()


_STATUS_STYLE = {"Success": "green", "Warning": "yellow", "Failed": "bold red", "Running": "cyan"}


def print_table(rows: list[Row], title: str) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=escape(title), header_style="bold")
    for column in ("Organization", "Job", "Last status", "Last run", "Next run", "Repository", "Proxy"):
        table.add_column(column, no_wrap=column in ("Last status", "Last run", "Next run"))
    table.add_column("Latest session", no_wrap=True)
    for row in rows:
        if row.error:
            # Names and messages come from the server: escaped, so "[x]" is shown, not read as markup.
            error = f"[red]{escape(row.error)}[/red]"
            table.add_row(escape(row.organization), "[red]error[/red]", error, *[""] * 5)
            continue
        status = escape(row.last_status or "-")
        style = _STATUS_STYLE.get(status)
        session = "-"
        if row.latest_session:
            session_style = _STATUS_STYLE.get(row.latest_session)
            latest = escape(row.latest_session)
            label = f"[{session_style}]{latest}[/]" if session_style else latest
            session = f"{label} {_when(row.latest_session_time)}"
        job = escape(row.job)
        table.add_row(
            escape(row.organization),
            job if row.enabled is not False else f"{job} [dim](disabled)[/dim]",
            f"[{style}]{status}[/]" if style else status,
            _when(row.last_run),
            _when(row.next_run),
            escape(row.repository or "-"),
            escape(row.proxy or "-"),
            session,
        )
    # Piped output gets a wide console instead of rich's 80-column default, so rows stay whole.
    Console(width=None if sys.stdout.isatty() else 220).print(table)


def _when(value: dt.datetime | None) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M") if value else "-"


def print_json(rows: list[Row]) -> None:
    json.dump([row.as_json() for row in rows], sys.stdout, indent=2)
    sys.stdout.write("\n")


# --- inputs ---------------------------------------------------------------------------------------


def _password(variable: str, prompt: str) -> str:
    value = os.environ.get(variable)
    if value:
        return value
    if not sys.stdin.isatty():
        raise CLIError(f"no password: set the environment variable {variable}")
    return getpass.getpass(prompt)


def _shared_verify(
    ca_bundle: str | None, insecure: bool, contexts: dict[str | None, ssl.SSLContext]
) -> ssl.SSLContext | bool:
    """`_verify` as one TLS context per CA bundle (None: the system's), shared by the servers using
    it: loading a bundle costs about 25 ms, once per server otherwise."""
    verify = _verify(ca_bundle, insecure)
    if verify is False:
        return False
    key = None if verify is True else verify
    context = contexts.get(key)
    if context is None:
        context = contexts[key] = tls_context(verify)
    return context


def _verify(ca_bundle: Path | str | None, insecure: bool) -> bool | str:
    if insecure:
        return False
    if ca_bundle is not None:
        if not Path(ca_bundle).exists():
            raise CLIError(f"CA bundle not found: {ca_bundle}")
        return str(ca_bundle)
    return True


def _read_targets(path: Path) -> list[dict[str, Any]]:
    """Read and check a targets file::

    [[servers]]
    name = "east"
    url = "https://vbo-east.example.com:4443"
    username = "LAB\\\\svc-backup"
    password_env = "VBO_EAST_PASSWORD"
    organizations = ["2b1c0f4e-...", "..."]   # or "all" (the default)
    # ca_bundle = "/etc/ssl/vbo-ca.pem", insecure = false, api_version = "v1"
    """
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CLIError(f"cannot read {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise CLIError(f"{path} is not valid TOML: {exc}") from None
    servers = data.get("servers")
    if not isinstance(servers, list) or not servers:
        raise CLIError(f"{path}: expected at least one [[servers]] table")
    for index, server in enumerate(servers, 1):
        where = f"{path}: server {index}"
        if not isinstance(server, dict):
            raise CLIError(f"{where} is not a table")
        if "password" in server:
            raise CLIError(f"{where}: put the password in an environment variable named by password_env")
        for key in ("url", "username", "password_env"):
            if not isinstance(server.get(key), str) or not server[key]:
                raise CLIError(f"{where}: '{key}' (a string) is required")
        for key in ("name", "ca_bundle", "api_version"):
            if key in server and (not isinstance(server[key], str) or not server[key]):
                raise CLIError(f"{where}: '{key}' must be a non-empty string")
        # bool("false") is True: a quoted "false" must not turn certificate checks off.
        if not isinstance(server.get("insecure", False), bool):
            raise CLIError(f"{where}: 'insecure' must be true or false (unquoted)")
        concurrency = server.get("max_concurrency", 10)
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise CLIError(f"{where}: 'max_concurrency' must be a positive integer")
        server.setdefault("name", server["url"])
        organizations = server.get("organizations", "all")
        if organizations != "all" and not (
            isinstance(organizations, list) and all(isinstance(o, str) for o in organizations)
        ):
            raise CLIError(f"{where}: 'organizations' must be a list of ids or \"all\"")
    return servers


# --- simulate -------------------------------------------------------------------------------------


def run_simulate(args: argparse.Namespace) -> None:
    import uvicorn

    from .simulator import Faults, SimulatorConfig, create_app, make_tls_material

    faults = Faults(
        latency=args.latency,
        error_rate=args.error_rate,
        rate_limit_rate=args.rate_limit_rate,
        retry_after=args.retry_after,
        drop_rate=args.drop_rate,
        truncate_rate=args.truncate_rate,
        malformed_rate=args.malformed_rate,
        revoke_every=args.revoke_every,
        fault_seed=args.fault_seed,
    )
    config = SimulatorConfig(seed=args.seed, organizations=args.organizations, faults=faults)
    app = create_app(config)
    scheme = "https" if args.tls else "http"
    options: dict[str, Any] = {}
    # Listening before "Serving" is printed: a client that connects as soon as it reads the line
    # is queued by the kernel instead of refused, and a busy port is one error line, not a lie.
    sock = _listen(args.host, args.port)
    # The TLS key is removed when the simulator stops; uvicorn re-raises SIGTERM after shutting
    # down, so it is turned into SystemExit here to let the cleanup below run.
    signal.signal(signal.SIGTERM, _exit_quietly)
    folder = tempfile.TemporaryDirectory(prefix="vbo-async-sim-")
    try:
        if args.tls:
            cert, key, ca = make_tls_material(folder.name)
            options = {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}
            print(f"CA bundle (pass as verify= or --ca-bundle): {ca}", flush=True)
        host = f"[{args.host}]" if ":" in args.host else args.host
        print(
            f"Serving the VBO v1 simulator at {scheme}://{host}:{sock.getsockname()[1]}/v1 "
            f"(user {config.username!r}, password {config.password!r}; Ctrl-C stops)",
            flush=True,
        )
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", **options))
        try:
            server.run(sockets=[sock])
        except KeyboardInterrupt:  # uvicorn stops gracefully on Ctrl-C, then re-raises it
            return
        if not server.started:
            raise CLIError("the simulator could not start (see the messages above)")
    finally:
        sock.close()
        folder.cleanup()


def _exit_quietly(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _listen(host: str, port: int) -> socket.socket:
    """A TCP socket listening on ``host``:``port``; a failure is a `CLIError`."""
    try:
        # proto is IPPROTO_TCP here; asyncio sets TCP_NODELAY on accepted connections only then
        # (a bare socket.socket() has proto 0, and every answer then waits ~40 ms for delayed ACKs).
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise CLIError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise CLIError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


# --- entry point ----------------------------------------------------------------------------------


class _HideRetries(logging.Filter):
    """Drops the per-attempt retry notes of vbo_async and stamina: the outcome is reported anyway."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "stamina" or record.name.startswith("stamina."):
            return False
        return not (record.name.startswith("vbo_async") and "retrying" in str(record.msg))


def _configure_logging() -> None:
    """Warnings (e.g. TLS verification off) as ``vbo-async: warning: ...`` lines on stderr.

    Only when nobody configured logging (a program embedding `main` keeps its own handlers).
    """
    root = logging.getLogger()
    if root.handlers:
        return
    handler = logging.StreamHandler()  # sys.stderr
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter("vbo-async: warning: %(message)s"))
    handler.addFilter(_HideRetries())
    root.addHandler(handler)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging()
    try:
        if args.command == "simulate":
            run_simulate(args)
            return 0
        runner = {"demo": run_demo, "jobs": run_jobs, "poll": run_poll}[args.command]
        rows = asyncio.run(runner(args))
        if args.json:
            print_json(rows)
        else:
            print_table(rows, title=f"vbo-async {args.command}: {len(rows)} jobs")
        return EXIT_ERROR if rows and all(row.error for row in rows) else 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`vbo-async demo | head`): stop quietly. Pointing stdout at
        # /dev/null spares the interpreter a second failure when it flushes stdout at exit.
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
        return EXIT_ERROR
    except (CLIError, VBOError) as exc:
        print(f"vbo-async: error: {exc}", file=sys.stderr)
        return EXIT_USAGE if isinstance(exc, ConfigError) else EXIT_ERROR
    except ImportError as exc:
        print(f"vbo-async: error: {exc.name or exc} is missing; install 'vbo-async[cli]'", file=sys.stderr)
        return EXIT_ERROR
