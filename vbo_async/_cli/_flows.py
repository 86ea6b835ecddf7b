"""What each command does on the network (no click, no output): listing, resolving, polling.

Requests are only those needed: the organization listing gives the names (a job's
``organization`` link is never followed), and repositories and proxies are fetched once per
distinct link per server. Every job's health is judged (`HealthPolicy`) from its recent
sessions: a server with many tenants in the sweep reads them in one listing (v6+), a tenant
polled alone one or two requests per job; v1 has no server-wide listing, so one request per job.
No job's whole session history is read.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import attrs
import httpx

from .._client import VBOClient
from .._exceptions import NotFoundError, VBOError
from .._health import HealthPolicy
from .._models import Organization
from .._poll import PollResult, PollTarget, poll_jobs
from ._connect import Connection, SharedContexts, Source, read_password
from ._exit import CLIError, Outcome, simulator_extra
from ._progress import Phase, Progress
from ._report import FOLLOW, Report, Row, error_row, rows_of
from ._targets import ServerTarget, read_targets

__all__ = [
    "NO_ID",
    "Server",
    "UnknownOrganization",
    "demo",
    "jobs",
    "list_organizations",
    "list_servers",
    "match_organization",
    "open_servers",
    "poll",
    "report_of",
    "server_targets",
    "split_pollable",
]

_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)


class UnknownOrganization(CLIError):
    """``--org``, or an entry of ``organizations`` in a targets file, names no organization, or
    several; the message lists the candidates."""

    def __init__(self, message: str) -> None:
        super().__init__(message, outcome=Outcome.UNREADABLE)


def match_organization(organizations: Sequence[Organization], wanted: str, *, server: str) -> Organization:
    """The organization whose id is ``wanted``, else whose name is (case-insensitively, exactly).

    No match, or several names matching, is an `UnknownOrganization` listing the candidates.
    """
    key = wanted.strip().casefold()
    for organization in organizations:
        if organization.id.casefold() == key:
            return organization
    named = [o for o in organizations if (o.name or "").casefold() == key]
    if len(named) == 1:
        return named[0]
    if named:
        listed = ", ".join(f"{o.name} (id {o.id})" for o in named)
        raise UnknownOrganization(
            f"{wanted!r} names {len(named)} organizations on {server}: {listed}; use an id"
        )
    names = sorted({o.name for o in organizations if o.name}, key=lambda name: (name.casefold(), name))
    folded = {name.casefold(): name for name in names}
    close = [folded[n] for n in difflib.get_close_matches(key, list(folded), n=5, cutoff=0.6)]
    if close:
        hint = "did you mean " + ", ".join(repr(name) for name in close) + "?"
    elif not organizations:
        hint = "it has none"
    elif len(names) <= 10:
        hint = "it has " + ", ".join(repr(name) for name in names)
    else:
        hint = f"it has {len(organizations)}; 'vbo-async organizations' lists them"
    raise UnknownOrganization(f"no organization {wanted!r} on {server}: {hint}")


async def _find_organization(client: VBOClient, wanted: str, *, server: str) -> Organization:
    """``wanted`` (an id or a name) on the server: one ``GET /Organizations/{id}`` when it looks
    like an id, else the listing."""
    if _ID.match(wanted.strip()):
        with contextlib.suppress(NotFoundError):
            return await client.organization(wanted.strip())
    return match_organization(await client.organizations(), wanted, server=server)


def _label(organization: Organization) -> str:
    return organization.name or organization.id


NO_ID = "the server listed this organization without an id"
"""Why a tenant listed with an empty or blank id is not polled: no request can name it."""


def split_pollable(organizations: Iterable[Organization]) -> tuple[list[Organization], list[Organization]]:
    """``organizations`` split into those a sweep can poll and those the server listed with an
    empty or blank id, which `PollTarget` refuses: each of those is its own tenant's problem
    (`NO_ID`), not the sweep's."""
    usable: list[Organization] = []
    unusable: list[Organization] = []
    for organization in organizations:
        (usable if organization.id.strip() else unusable).append(organization)
    return usable, unusable


# --- commands -----------------------------------------------------------------------------------


async def list_organizations(connection: Connection) -> list[Organization]:
    password = read_password(connection.password_env, f"Password for {connection.username}: ")
    async with connection.client(password) as vbo:
        with Progress() as progress:
            phase = progress.phase("Listing organizations", 1)
            organizations = await vbo.organizations()
            phase.advance()
    return sorted(organizations, key=lambda o: ((o.name or "").casefold(), o.id))


async def jobs(connection: Connection, wanted: str, *, policy: HealthPolicy | None = None) -> Report:
    """The jobs of one organization (by id or name) and their health under ``policy`` (default
    `HealthPolicy()`); any failure is a `VBOError` or `CLIError`."""
    password = read_password(connection.password_env, f"Password for {connection.username}: ")
    async with connection.client(password) as vbo:
        organization = await _find_organization(vbo, wanted, server=connection.name)
        target = PollTarget(
            client=vbo, organization_id=organization.id, name=_label(organization), organization=organization
        )
        with Progress() as progress:
            results = await _sweep([target], 1, progress, policy=policy)
    (result,) = results
    if result.error is not None:
        raise result.error
    return Report.collect(rows_of(result, connection.name), servers=1, tenants=1)


async def demo(
    *, seed: int, organizations: int, concurrency: int, policy: HealthPolicy | None = None
) -> Report:
    """Poll every organization of an in-process simulator, whose "now" is the real time."""
    with simulator_extra("demo"):
        from ..simulator import SimulatorConfig, create_app

    app = create_app(SimulatorConfig(seed=seed, organizations=organizations))
    async with VBOClient(
        "https://vbo-demo.local:4443",
        username="admin",
        password="admin",
        transport=httpx.ASGITransport(app=app),
    ) as vbo:
        with Progress() as progress:
            listing = progress.phase("Listing organizations", 1)
            found = await vbo.organizations()
            listing.advance()
            targets = [
                PollTarget(client=vbo, organization_id=o.id, name=_label(o), organization=o) for o in found
            ]
            results = await _sweep(targets, concurrency, progress, policy=policy)
    return report_of(results, {id(vbo): "simulator"}, servers=1)


@attrs.frozen
class Server:
    """One server of a targets file, with its open client."""

    target: ServerTarget
    connection: Connection
    client: VBOClient


async def open_servers(stack: contextlib.AsyncExitStack, path: Path) -> list[Server]:
    """A client for every server of the targets file at ``path``, closed by ``stack``.

    Passwords are read (or prompted for) one server at a time before any request; servers
    sharing a ``password_env`` are asked once, and servers sharing a CA bundle share one TLS
    context. A bad file, a missing password or an unusable URL is a `CLIError` (usage).
    """
    targets = read_targets(path)
    passwords: dict[str, str] = {}
    contexts = SharedContexts()
    servers: list[Server] = []
    stack.push_async_callback(_close, servers)
    for target in targets.servers:
        connection = target.connection()
        if target.password_env not in passwords:
            prompt = f"Password for {target.label} ({target.username}): "
            passwords[target.password_env] = read_password(target.password_env, prompt)
        client = connection.client(
            passwords[target.password_env],
            verify=contexts.verify(connection.verify),
            max_concurrency=target.max_concurrency,
        )
        servers.append(Server(target, connection, client))
    return servers


async def _close(servers: Sequence[Server]) -> None:
    """Close every client at once: a server that does not answer its logout holds up only its
    own close (a few seconds at most), not the others'."""
    closed = await asyncio.gather(*(server.client.aclose() for server in servers), return_exceptions=True)
    for outcome in closed:
        if isinstance(outcome, BaseException):
            raise outcome


async def list_servers(
    servers: Sequence[Server], concurrency: int, phase: Phase
) -> tuple[list[PollTarget], list[Row]]:
    """The tenants to poll on every server (each server's organizations listed once, at most
    ``concurrency`` servers at once, see `server_targets`), and the failure rows of the servers
    that could not be listed and of the organizations of the file they do not have."""
    limit = asyncio.Semaphore(concurrency)
    async with asyncio.TaskGroup() as group:
        listings = [group.create_task(server_targets(server, limit, phase)) for server in servers]
    targets: list[PollTarget] = []
    failures: list[Row] = []
    for listing in listings:
        found, failed = listing.result()
        targets += found
        failures += failed
    return targets, failures


async def poll(path: Path, concurrency: int, *, policy: HealthPolicy | None = None) -> Report:
    """Poll every server of the targets file at ``path`` (see `open_servers`): list (or look
    up) each server's organizations, at most ``concurrency`` servers at once, then poll all
    their tenants in one sweep of at most ``concurrency`` tenants at once, judging every job's
    health under ``policy`` (default `HealthPolicy()`). A server that cannot be read is a
    failure row; the others are still polled.
    """
    async with contextlib.AsyncExitStack() as stack:
        servers = await open_servers(stack, path)
        with Progress() as progress:
            phase = progress.phase("Listing organizations", len(servers))
            poll_targets, failures = await list_servers(servers, concurrency, phase)
            results = await _sweep(poll_targets, concurrency, progress, policy=policy)
    names = {id(server.client): server.target.label for server in servers}
    return report_of(results, names, servers=len(servers), extra=failures, source="targets")


async def server_targets(
    server: Server, limit: asyncio.Semaphore, phase: Phase
) -> tuple[list[PollTarget], list[Row]]:
    """The tenants to poll on one server, and the failure rows of what could not be found.

    The server's organizations are listed once (that gives their names); the entries of an
    ``organizations`` list are matched against it by id or name.
    """
    target = server.target
    async with limit:
        try:
            organizations = await server.client.organizations()
        except VBOError as exc:
            phase.advance(failed=True)
            return [], [error_row(target.label, exc, source="targets")]
    phase.advance()
    if target.organizations == "all":
        chosen = organizations
        failures: list[Row] = []
    else:
        chosen, failures = [], []
        for wanted in target.organizations:
            try:
                chosen.append(match_organization(organizations, wanted, server=target.label))
            except UnknownOrganization as exc:
                failures.append(error_row(target.label, str(exc), organization=wanted))
    usable, unusable = split_pollable({organization.id: organization for organization in chosen}.values())
    failures += [error_row(target.label, NO_ID, organization=_label(o)) for o in unusable]
    targets = [
        PollTarget(client=server.client, organization_id=o.id, name=_label(o), organization=o) for o in usable
    ]
    return targets, failures


async def _sweep(
    targets: Sequence[PollTarget], concurrency: int, progress: Progress, *, policy: HealthPolicy | None
) -> list[PollResult]:
    phase = progress.phase("Polling tenants", len(targets))
    results = []
    health = policy if policy is not None else HealthPolicy()
    async with poll_jobs(targets, concurrency=concurrency, follow=FOLLOW, health=health) as sweep:
        async for result in sweep:
            phase.advance(failed=result.error is not None)
            results.append(result)
    return results


def report_of(
    results: Sequence[PollResult],
    names: dict[int, str],
    *,
    servers: int,
    extra: Sequence[Row] = (),
    source: Source = "options",
) -> Report:
    rows: list[Row] = list(extra)
    for result in results:
        rows += rows_of(result, names[id(result.target.client)], source=source)
    tenants = sum(result.error is None for result in results)
    return Report.collect(rows, servers=servers, tenants=tenants)
