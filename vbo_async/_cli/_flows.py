"""What each command does on the network (no click, no output): listing, resolving, polling,
and `sweep_servers`, the sweep of a targets file that poll and check share (every server listed
and polled on its own, what has not answered by a deadline kept as a failure row).

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
import datetime as dt
import difflib
import logging
import os
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

import attrs
import httpx

from .._checks import id_key, organization_key
from .._client import VBOClient
from .._dialects import DIALECTS
from .._exceptions import ConfigError, DecodeError, NotFoundError, NotSupportedError, VBOError
from .._health import HealthPolicy
from .._models import BackupRepository, License, Organization, Proxy
from .._poll import PollResult, PollTarget, poll_jobs
from ._connect import Connection, Source, password_in, read_password
from ._descriptors import logouts_at_once, turns
from ._exit import CLIError, Outcome, simulator_extra
from ._limits import TimeLimit
from ._plugin import format_duration
from ._progress import Phase, Progress
from ._report import FOLLOW, Report, Row, Unread, error_row, link_problems, rows_of, warn_link_problems
from ._secrets import Passwords
from ._targets import ServerTarget, read_targets, tls_contexts
from ._tokencache import TokenCache
from ._turns import Turns, close_in_turns, in_slot

log = logging.getLogger("vbo_async.cli")
R = TypeVar("R")

__all__ = [
    "NOT_ASKED",
    "NO_ID",
    "SLOT_HOLD",
    "SLOT_HOLD_LEAST",
    "UNREADABLE",
    "Choose",
    "Keyed",
    "Refused",
    "Server",
    "Swept",
    "UnknownOrganization",
    "choose_tenants",
    "demo",
    "jobs",
    "list_organizations",
    "match_listed",
    "match_organization",
    "open_servers",
    "poll",
    "report_of",
    "server_targets",
    "slot_hold",
    "split_pollable",
    "sweep_servers",
    "time_limit",
]

_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)


class UnknownOrganization(CLIError):
    """``--org``, or an entry of ``organizations`` in a targets file, names no organization, or
    several; the message lists the candidates."""

    def __init__(self, message: str) -> None:
        super().__init__(message, outcome=Outcome.UNREADABLE)


class Keyed:
    """A server's organizations with the `organization_key` of each one's id and name, computed
    once for every entry matched against them (a targets file's 600 entries against a listing of
    3,000 computed every key again for each: half a second a sweep)."""

    __slots__ = ("by_id", "by_name", "organizations")

    def __init__(self, organizations: Sequence[Organization]) -> None:
        self.organizations = organizations
        self.by_id: dict[str, Organization] = {}  # the first listed of each id
        self.by_name: dict[str, list[Organization]] = {}  # in the listing's order
        for organization in organizations:
            self.by_id.setdefault(organization_key(organization.id), organization)
            self.by_name.setdefault(organization_key(organization.name or ""), []).append(organization)


def match_organization(
    organizations: Sequence[Organization] | Keyed, wanted: str, *, server: str
) -> Organization:
    """The organization whose id is ``wanted``, else whose name is (ignoring case and the blanks
    around it, on both sides: ``wanted`` is trimmed as a targets file's entries are, and a server
    may list a tenant as ``"Contoso "``, which no trimmed value could otherwise name).

    No match, or several names matching, is an `UnknownOrganization` listing the candidates.
    """
    keyed = organizations if isinstance(organizations, Keyed) else Keyed(organizations)
    organizations = keyed.organizations
    key = organization_key(wanted)  # an id in any of .NET's GUID spellings, as the library reads it
    if (found := keyed.by_id.get(key)) is not None:
        return found
    # An organization the listing repeats (pages shifting, its id in another case) is one.
    named = list({o.id.lower(): o for o in keyed.by_name.get(key, ())}.values())
    if len(named) == 1:
        return named[0]
    if named:
        listed = ", ".join(f"{o.name} (id {o.id})" for o in named)
        raise UnknownOrganization(
            f"{wanted!r} names {len(named)} organizations on {server}: {listed}; use an id"
        )
    names = sorted({o.name for o in organizations if o.name}, key=lambda name: (name.casefold(), name))
    folded = {name.strip().casefold(): name for name in names}
    close = [folded[n] for n in close_names(key, folded)]
    if close:
        hint = "did you mean " + ", ".join(repr(name) for name in close) + "?"
    elif not organizations:
        hint = "it has none"
    elif len(names) <= 10:
        hint = "it has " + ", ".join(repr(name) for name in names)
    else:
        hint = f"it has {len(organizations)}; 'vbo-async organizations' lists them"
    raise UnknownOrganization(f"no organization {wanted!r} on {server}: {hint}")


def close_names(wanted: str, names: Iterable[str], *, most: int = 5) -> list[str]:
    """The ``names`` close to ``wanted`` (both case-folded), closest first, at most ``most``
    (pure). The trailing labels a name shares with ``wanted`` (``.onmicrosoft.com``, which
    nearly every tenant's name ends in) are left out of the comparison: compared whole,
    ``fabrikam.onmicrosoft.com`` was close to ``litware.onmicrosoft.com`` and every other
    tenant, and the hint named five strangers instead of the server's few organizations. A name
    whose first label is ``wanted`` (``contoso`` for ``contoso.onmicrosoft.com``, the usual
    short form) is closest of all."""
    scored = []
    for name in names:
        mine, theirs = _without_shared_labels(wanted, name)
        if name.split(".", 1)[0] == wanted != name:
            ratio = 1.0
        else:
            ratio = difflib.SequenceMatcher(None, mine, theirs).ratio()
        if ratio >= _CLOSE:
            scored.append((-ratio, name))
    return [name for _, name in sorted(scored)[:most]]


_CLOSE = 0.6
"""How alike two names must be to be offered (`difflib.get_close_matches`' own cutoff)."""


def _without_shared_labels(one: str, other: str) -> tuple[str, str]:
    """``one`` and ``other`` without the dot-separated labels both end in, unless that leaves
    either empty (``contoso.com`` and ``contoso.org`` keep ``contoso.com``/``contoso.org``)."""
    ours, theirs = one.split("."), other.split(".")
    shared = 0
    while shared < min(len(ours), len(theirs)) - 1 and ours[-1 - shared] == theirs[-1 - shared]:
        shared += 1
    if not shared:
        return one, other
    return ".".join(ours[:-shared]), ".".join(theirs[:-shared])


async def _find_organization(client: VBOClient, wanted: str, *, server: str) -> Organization:
    """``wanted`` (an id or a name) on the server: one ``GET /Organizations/{id}`` when it looks
    like an id, else the listing (whose organizations that cannot be decoded fail only a search
    naming one of them by id, with its `DecodeError`)."""
    if _ID.match(key := organization_key(wanted)):
        with contextlib.suppress(NotFoundError):
            return await client.organization(key)
    organizations, undecoded = await client._organizations_filed()
    return match_listed(organizations, undecoded, wanted, server=server)


def match_listed(
    organizations: Sequence[Organization] | Keyed,
    undecoded: Mapping[str, DecodeError],
    wanted: str,
    *,
    server: str,
) -> Organization:
    """`match_organization` among the organizations a listing decoded; an id of one it could
    not decode raises that organization's `DecodeError`, not `UnknownOrganization`."""
    try:
        return match_organization(organizations, wanted, server=server)
    except UnknownOrganization:
        error = undecoded.get(id_key(wanted.strip()))
        if error is None or not wanted.strip():
            raise
        raise error from None


NOT_ASKED = (
    ": it was waiting for the servers before it, slow to answer (--concurrency servers are listed "
    "at once, fewer under the open-file limit; one silent for a while gives its turn to the next)"
)
"""Why a server a sweep's time limit ended before it was asked was not asked."""

SLOT_HOLD = 10.0
"""Seconds a server's listing holds its listing slot at most (`slot_hold`)."""
SLOT_HOLD_LEAST = 2.0
"""Seconds a server's listing holds its listing slot at least (`slot_hold`): a sign-in and a
listing at a real server's pace."""


def slot_hold(servers: int, concurrency: int, within: float | None) -> float:
    """Seconds a server's listing holds one of a sweep's ``concurrency`` listing slots before
    the next server is asked too (`server_targets`): the time limit ``within`` shared among the
    slots' turns, so that every server is asked in time even when every listing before it is
    silent, at least `SLOT_HOLD_LEAST` and at most `SLOT_HOLD` (also without a time limit, as a
    hung server's attempts last 30 s each)."""
    if within is None:
        return SLOT_HOLD
    rounds = -(-servers // concurrency)
    return min(SLOT_HOLD, max(SLOT_HOLD_LEAST, within / max(rounds, 1)))


UNREADABLE = "(an organization without a readable id)"
"""How a listed organization that could not be decoded, nor its id read, is named."""


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


@attrs.frozen
class Refused:
    """A tenant a sweep does not take, and why (`choose_tenants`)."""

    named: str
    """As the user or the server names it: the configured entry, the listed name (or id), or
    `UNREADABLE`."""
    problem: DecodeError | str
    """The `DecodeError` of an organization the server lists but the client cannot decode, the
    text of an `UnknownOrganization`, or `NO_ID`."""
    organization_id: str | None = None
    """The lower-cased id of an organization the server lists but the client cannot decode
    (None when even its id could not be read)."""

    def said(self, server: str) -> str:
        """The line a log says about it (an unknown organization's text names the server)."""
        if isinstance(self.problem, str) and self.problem != NO_ID:
            return self.problem
        return f"{server}: {self.named}: {self.problem}"


def choose_tenants(
    wanted: Sequence[str] | str,
    organizations: Sequence[Organization],
    undecoded: Mapping[str, DecodeError],
    *,
    server: str,
) -> tuple[list[Organization], list[Refused]]:
    """The tenants a sweep takes from a server's listing (``organizations``, and ``undecoded``:
    the `DecodeError` of each it lists but cannot decode, by lower-cased id, "" when even that is
    unreadable): every decoded one (``wanted`` "all") or those ``wanted`` names by id or name
    (`match_listed`), each once (ids compared ignoring case), and what it cannot take: an entry
    naming nothing, an organization it cannot decode (named once, however often ``wanted``
    names it), one listed without an id. ``poll``, ``check`` and ``serve`` all choose this way
    (pure)."""
    refused: list[Refused] = []
    if wanted == "all":
        chosen = list(organizations)
        refused += [Refused(key or UNREADABLE, error, key or None) for key, error in undecoded.items()]
    else:
        chosen = []
        unreadable: set[str] = set()
        keyed = Keyed(organizations)
        for entry in wanted:
            try:
                chosen.append(match_listed(keyed, undecoded, entry, server=server))
            except UnknownOrganization as exc:
                refused.append(Refused(entry, str(exc)))
            except DecodeError as exc:
                key = organization_key(entry)
                if key not in unreadable:  # named twice (its id in two cases): once
                    unreadable.add(key)
                    refused.append(Refused(entry, exc, key))
    usable, unusable = split_pollable({o.id.lower(): o for o in chosen}.values())
    refused += [Refused(_label(o), NO_ID) for o in unusable]
    return usable, refused


# --- commands -----------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def _signed_in(
    connection: Connection, give_up_after: dt.timedelta | None, started: float | None = None
) -> AsyncIterator[VBOClient]:
    """A client of ``connection`` for the block, its password read (or prompted for) first. With
    ``give_up_after`` (counted from ``started``, `time.monotonic`, as `open_servers` counts it:
    from the end of the prompt when one was shown, from now when None), the block is cancelled
    at that deadline and raises a `CLIError` (exit 1) saying what poll's row says of a server
    that did not answer (``no answer within 2m``); no retry wait ends past it, and the logout
    gets what remains of it (`_close`)."""
    prompted = not password_in(os.environ, connection.password_env)
    password = read_password(connection.password_env, f"Password for {connection.username}: ")
    limit = time_limit(give_up_after, None if prompted else started)
    if limit is not None and _until(limit) == 0:  # spent before anything could be asked
        raise CLIError(f"no answer within {format_duration(limit.said)}", outcome=Outcome.UNREADABLE)
    vbo = connection.client(password, within=limit.seconds if limit is not None else None)
    vbo._retry_until(limit.sweep_ends if limit is not None else None)
    try:
        async with asyncio.timeout(_until(limit)) as budget:
            yield vbo
    except TimeoutError:
        if give_up_after is None or not budget.expired():
            raise
        late = f"no answer within {format_duration(give_up_after)}"
        raise CLIError(late, outcome=Outcome.UNREADABLE) from None
    finally:
        await _close([vbo], limit)


def _until(limit: TimeLimit | None) -> float | None:
    """Seconds left before ``limit``'s sweep ends (None: no limit)."""
    return None if limit is None else max(limit.sweep_ends - time.monotonic(), 0.0)


async def list_organizations(
    connection: Connection,
    *,
    show: Callable[[list[Organization], dict[str, DecodeError]], R],
    give_up_after: dt.timedelta | None = None,
    started: float | None = None,
) -> R:
    """What ``show`` returns of the server's organizations, sorted by name, and of the
    `DecodeError` of each it listed that could not be decoded, by its lower-cased id ("" when
    that cannot be read either); with ``give_up_after`` (counted from ``started``), a
    `CLIError` when the server has not answered by then (`_signed_in`).

    ``show`` (which prints them) is called as soon as they are read, before the logout: that
    can take seconds (a server that does not answer it), and a Ctrl-C then lost the listing."""
    async with _signed_in(connection, give_up_after, started) as vbo:
        with Progress() as progress:
            phase = progress.phase("Listing organizations", 1)
            organizations, undecoded = await vbo._organizations_filed()
            phase.advance(failed=bool(undecoded))
        return show(sorted(organizations, key=lambda o: ((o.name or "").casefold(), o.id)), undecoded)


async def jobs(
    connection: Connection,
    wanted: str,
    *,
    show: Callable[[Report], R],
    policy: HealthPolicy | None = None,
    give_up_after: dt.timedelta | None = None,
    started: float | None = None,
) -> R:
    """What ``show`` returns of the jobs of one organization (by id or name) and their health
    under ``policy`` (default `HealthPolicy()`), called as soon as they are read, before the
    logout (as `list_organizations` calls it); any failure is a `VBOError` or `CLIError`, a
    server that has not answered within ``give_up_after`` (counted from ``started``) a
    `CLIError` (`_signed_in`)."""
    async with _signed_in(connection, give_up_after, started) as vbo:
        organization = await _find_organization(vbo, wanted, server=connection.name)
        if not split_pollable([organization])[0]:  # as poll's row and check's line of it say
            raise CLIError(f"{_label(organization)}: {NO_ID}", outcome=Outcome.UNREADABLE)
        target = PollTarget(
            client=vbo, organization_id=organization.id, name=_label(organization), organization=organization
        )
        with Progress() as progress:
            (result,) = await _sweep([target], 1, progress, policy=policy)
        if isinstance(result.error, ConfigError):  # the server's id refused (tenant/one): its doing
            raise CLIError(f"{_label(organization)}: {result.error}", outcome=Outcome.UNREADABLE)
        if result.error is not None:
            raise result.error
        warn_link_problems(link_problems(result, connection.name))
        return show(Report.collect(rows_of(result, connection.name), servers=1, tenants=1))


async def demo(
    *, seed: int, organizations: int, concurrency: int, policy: HealthPolicy | None = None
) -> Report:
    """Poll every organization of an in-process simulator, whose "now" is the real time."""
    with simulator_extra("demo"):
        from ..simulator import SimulatorConfig, create_app

    # Typed Any: httpx 0.27 (the floor) types an ASGI app's messages as dicts where Starlette
    # has MutableMappings, and refuses a Starlette app; from 0.28 httpx takes Starlette's types.
    app: Any = create_app(SimulatorConfig(seed=seed, organizations=organizations))
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
    cache: TokenCache | None = None
    """Where its session is kept between runs (``check --token-cache``), if anywhere."""


async def open_servers(
    stack: contextlib.AsyncExitStack,
    path: Path,
    *,
    limit: TimeLimit | None = None,
    cache: TokenCache | None = None,
) -> list[Server]:
    """A client for every server of the targets file at ``path``, closed by ``stack``, for a
    command with the time ``limit`` (its clients wait for no retry past its sweep's end, and
    log out within it). With ``cache``, each client resumes its server's session from there as
    it first signs in (`server_targets`), saves it again at close if it changed, and does not
    log out.

    Passwords are read (or prompted for) one server at a time before any request; servers
    sharing a ``password_env`` are asked once, a ``password_file`` is read once, and servers
    sharing a CA bundle share one TLS context. A bad file, a missing password or an unusable
    URL is a `CLIError` (usage). A password typed at a prompt starts ``limit`` again.
    """
    targets = read_targets(path)
    verify = tls_contexts(path, targets)
    servers: list[Server] = []

    async def close() -> None:
        if cache is not None:
            await _saved(servers, cache, limit)
        await _close([server.client for server in servers], limit)

    stack.push_async_callback(close)
    passwords = Passwords()
    for target, tls, password in zip(targets.servers, verify, passwords.read(path, targets), strict=True):
        connection = target.connection()
        client = connection.client(
            password,
            verify=tls,
            max_concurrency=target.max_concurrency,
            within=limit.seconds if limit is not None else None,
            log_out=cache is None,
        )
        servers.append(Server(target, connection, client, cache))
    if limit is not None:
        if passwords.prompted:
            limit.restart(time.monotonic())
            if cache is not None:  # its lock waits end with the limit, counted from now too
                cache.deadline = limit.ends
        for server in servers:
            server.client._retry_until(limit.sweep_ends)
    return servers


async def _saved(servers: Sequence[Server], cache: TokenCache, limit: TimeLimit | None) -> None:
    """Save the sessions renewed during the run (a server that refused a resumed token), each
    server on its own, within ``limit`` (at least its `TimeLimit.grace` from now): a file that
    cannot be written is said, and the next run signs in again."""
    within = _remaining(limit)

    async def save(server: Server) -> None:
        try:
            await cache.save(server.client)
        except ConfigError as exc:
            log.warning("%s: the renewed session is not saved: %s", server.connection.name, exc)

    try:
        async with asyncio.timeout(within):
            await asyncio.gather(*(save(server) for server in servers))
    except TimeoutError:
        log.warning("the command's time limit ended before every renewed session was saved")


def _remaining(limit: TimeLimit | None) -> float | None:
    """Seconds left of ``limit`` for closing (None: no limit), at least its grace."""
    return None if limit is None else max(limit.ends - time.monotonic(), limit.grace)


async def _close(clients: Sequence[VBOClient], limit: TimeLimit | None) -> None:
    """Close every client at once (as many at once as the open-file limit lets log out, the
    others in turn): a server that does not answer its logout holds up only its own close (a
    few seconds at most), not the others'. Within a command's time ``limit``, the logouts get
    what remains of it (the sweep ended its `TimeLimit.grace` before: every client that
    signed in still signs out, a server answering a logout in milliseconds), instead of the
    client's own few seconds: a monitoring plugin given 58 s under its scheduler's 60 s ends
    in time. The pools are closed all the same; a token whose logout was cut short expires on
    the server."""
    taking = Turns(logouts_at_once(len(clients), serving=False))  # under the open-file limit
    if await close_in_turns(clients, taking, within=_remaining(limit)):
        log.debug("the command's time limit ended the logouts; the clients are closed")


async def poll(
    path: Path,
    concurrency: int,
    *,
    policy: HealthPolicy | None = None,
    give_up_after: dt.timedelta | None = None,
    token_cache: Path | None = None,
    started: float | None = None,
) -> Report:
    """Poll every server of the targets file at ``path`` (see `open_servers`), each on its own
    (`sweep_servers`): list (or look up) its organizations, at most ``concurrency`` servers at
    once, then poll its tenants, at most ``concurrency`` at once on each server, judging every
    job's health under ``policy`` (default `HealthPolicy()`). A server that cannot be read is a
    failure row; the others are still polled. With ``give_up_after`` (counted from ``started``,
    `time.monotonic`, now when None), whatever has not answered by then is a failure row ("no
    answer within 2m") and everything read is kept. With ``token_cache``, each server's session
    is kept there between runs (as ``check``'s).
    """
    from ._check import token_cache_for

    limit = time_limit(give_up_after, started)
    cache = token_cache_for(token_cache, limit)
    async with contextlib.AsyncExitStack() as stack:
        servers = await open_servers(stack, path, limit=limit, cache=cache)
        with Progress() as progress:
            swept = await sweep_servers(
                servers,
                concurrency=concurrency,
                health=policy if policy is not None else HealthPolicy(),
                follow=FOLLOW,
                limit=limit,
                progress=progress,
            )
    return swept.report()


def time_limit(give_up_after: dt.timedelta | None, started: float | None) -> TimeLimit | None:
    """The `TimeLimit` of ``give_up_after`` counted from ``started`` (now when None)."""
    if give_up_after is None:
        return None
    return TimeLimit(give_up_after, time.monotonic() if started is None else started)


async def server_targets(
    server: Server,
    limit: asyncio.Semaphore,
    phase: Phase,
    asked: Callable[[], None] | None = None,
    *,
    hold: float = SLOT_HOLD,
) -> tuple[list[PollTarget], list[Row], int | None]:
    """The tenants to poll on one server, the failure rows of what could not be found, and how
    many organizations the server lists (None when it could not be read).

    The server's organizations are listed once (that gives their names, and tells `poll_jobs`
    whether the tenants are enough of the server to batch); the entries of an
    ``organizations`` list are matched against it by id or name. ``asked`` is called once the
    server has its listing slot (one of ``limit``'s), as its listing is sent; a listing that
    has not ended ``hold`` seconds later gives the slot to the next server (`in_slot`).
    """
    target = server.target

    async def listing() -> tuple[list[Organization], dict[str, DecodeError]]:
        if asked is not None:
            asked()
        if server.cache is not None:
            await server.cache.sign_in(server.client)
        return await server.client._organizations_filed()

    try:
        organizations, undecoded = await in_slot(limit, hold, listing)
    except VBOError as exc:
        phase.advance(failed=True)
        return [], [error_row(target.label, exc, source="targets")], None
    phase.advance()
    # Each tenant once; what cannot be polled is a row of its own, its neighbours are polled.
    usable, refused = choose_tenants(target.organizations, organizations, undecoded, server=target.label)
    failures = [
        error_row(target.label, r.problem, organization=r.named, organization_id=r.organization_id)
        for r in refused
    ]
    targets = [
        PollTarget(client=server.client, organization_id=o.id, name=_label(o), organization=o) for o in usable
    ]
    return targets, failures, len(organizations) + len(undecoded)


# --- every server on its own, within a time limit (poll and check) ------------------------------

Choose = Callable[[list[PollTarget], list[Row]], tuple[list[PollTarget], list[Row]]]
"""What a sweep keeps of a server's listing (`server_targets`): its tenants to poll and its
failure rows in, those to keep out."""


@attrs.define
class Swept:
    """What the servers' pipelines of `sweep_servers` found: everything, or what they had found
    when time was up (``give_up_after``)."""

    servers: Sequence[Server]
    give_up_after: dt.timedelta | None
    listed: dict[int, tuple[list[PollTarget], list[Row]]] = attrs.Factory(dict)
    """Per server (by position), its tenants to poll and the failure rows of its listing."""
    results: list[PollResult] = attrs.Factory(list)
    repositories: dict[int, list[BackupRepository | Unread] | str] = attrs.Factory(dict)
    """Per server (by position) whose repositories were asked for and answered: its
    repositories (an `Unread` for each that could not be decoded), or why they could not be
    read."""
    licenses: dict[int, tuple[License, dt.datetime] | str | None] = attrs.Factory(dict)
    """Per server (by position) whose license was asked for and answered: its license and the
    time it was read on the server's clock, why it could not be read, or None when its API
    has none (v1)."""
    proxies: dict[int, list[Proxy | Unread] | str] = attrs.Factory(dict)
    """Per server (by position) whose proxies were asked for and answered: its proxies (an
    `Unread` for each that could not be decoded), or why they could not be read."""
    unlisted: set[int] = attrs.Factory(set)
    """The servers (by position) whose organizations could not be listed (down, a refused
    password): their failure row says why, and nothing more is read of them."""
    asked: set[int] = attrs.Factory(set)
    """The servers (by position) whose listing was sent: the others, when time was up, were
    still waiting for servers before them (`--concurrency` listing slots, turns under the
    open-file limit), never asked."""

    def _late(self) -> str:
        """What a server that had not answered when time was up is said to have done."""
        late = "no answer"
        if self.give_up_after is not None:
            late += f" within {format_duration(self.give_up_after)}"
        return late

    def _by_server(self) -> Iterator[tuple[int, PollResult]]:
        """Each result read, with its server's position."""
        numbers = {id(server.client): number for number, server in enumerate(self.servers)}
        for result in self.results:
            yield numbers[id(result.target.client)], result

    def _reads(self, reads: Mapping[int, R], *, only_checked: bool) -> Iterator[tuple[int, str, R | str]]:
        """Per server whose tenants were listed, in order: its position, its label, and what
        ``reads`` holds for it, or why it is missing (``no answer within 50s``: time was up
        first). A server whose organizations could not be listed is left out (its failure row
        says why), and with ``only_checked`` one none of whose tenants was read (a check of
        some tenants, on another server)."""
        checked = {number for number, _ in self._by_server()} if only_checked else None
        late = self._late()
        for number, server in enumerate(self.servers):
            listed = number in self.listed and number not in self.unlisted
            if listed and (checked is None or number in checked):
                yield number, server.target.label, reads.get(number, late)

    def license_findings(
        self, *, only_checked: bool = False
    ) -> list[tuple[str, tuple[License, dt.datetime] | str]]:
        """Per server whose tenants were listed and whose API has a license (v6+), in order:
        its label and its license with the time it was read, or why it could not be read (see
        `_reads`). Only with `sweep_servers`'s ``license``."""
        reads = self._reads(self.licenses, only_checked=only_checked)
        return [
            (label, read)
            for number, label, read in reads
            if read is not None and not _has_no_license(self.servers[number])
        ]

    def proxy_findings(self, *, only_checked: bool = False) -> list[tuple[str, list[Proxy | Unread] | str]]:
        """Per server whose tenants were listed, in order: its label and its proxies (each
        once), or why they could not be read (see `_reads`). Only with `sweep_servers`'s
        ``proxies``."""
        reads = self._reads(self.proxies, only_checked=only_checked)
        return [(label, read if isinstance(read, str) else _each_once(read)) for _, label, read in reads]

    def repository_findings(
        self, *, only_used: bool = False
    ) -> list[tuple[str, list[BackupRepository | Unread] | str]]:
        """Per server whose tenants were listed, in order: its label and its repositories, or
        why they could not be read (``no answer within 50s`` when time was up first). Only with
        `sweep_servers`'s ``repositories``.

        ``only_used`` keeps of each server's repositories those the jobs read on it use (a check
        of some tenants does not judge the storage of the server's others), and leaves out a
        server none of whose tenants was read."""
        used: dict[int, set[str]] = {}
        if only_used:
            for number, result in self._by_server():
                ids = used.setdefault(number, set())
                ids.update(job.repository_id.casefold() for job in result.jobs if job.repository_id)
        found: list[tuple[str, list[BackupRepository | Unread] | str]] = []
        for number, label, repositories in self._reads(self.repositories, only_checked=only_used):
            if not isinstance(repositories, str):
                # One whose id could not be read may be any job's: kept, as the whole listing's
                # failure is.
                repositories = [
                    r
                    for r in _each_once(repositories)
                    if not only_used
                    or r.id.casefold() in used[number]
                    or (isinstance(r, Unread) and not r.id)
                ]
            found.append((label, repositories))
        return found

    def unanswered(self) -> Iterator[tuple[Server, PollTarget | None]]:
        """Each server whose organizations were not listed (with None), and each listed tenant
        whose result did not come."""
        answered = {id(result.target) for result in self.results}
        for number, server in enumerate(self.servers):
            if number not in self.listed:
                yield server, None
                continue
            for target in self.listed[number][0]:
                if id(target) not in answered:
                    yield server, target

    def failures(self) -> list[Row]:
        """The failure rows of the listings, then one per server or tenant that did not answer
        in time: ``no answer within 50s``; a server never asked, ``not asked within 50s``."""
        late = self._late()
        unasked = "not asked" + late.removeprefix("no answer") + NOT_ASKED
        rows = [row for _, failures in self.listed.values() for row in failures]
        numbers = {id(server): number for number, server in enumerate(self.servers)}
        for server, target in self.unanswered():
            label = server.target.label
            if target is None:
                if numbers[id(server)] in self.asked:
                    rows.append(error_row(label, late))
                else:
                    rows.append(attrs.evolve(error_row(label, unasked), unasked=True))
            else:
                rows.append(
                    error_row(label, late, organization=target.label, organization_id=target.organization_id)
                )
        return rows

    def report(self) -> Report:
        """The jobs read and every failure (`failures`)."""
        names = {id(server.client): server.target.label for server in self.servers}
        return report_of(
            self.results, names, servers=len(self.servers), extra=self.failures(), source="targets"
        )


def _has_no_license(server: Server) -> bool:
    """Whether ``server``'s API version, once known, has no license (v1): there is nothing to
    read, nor to say when time was up before it was asked for."""
    version = server.client.api_version
    return version is not None and "license" not in DIALECTS[version].paths


async def _into(found: dict[int, R | str], number: int, read: Awaitable[R]) -> None:
    """``found[number]``: what ``read`` gives, or why it failed (a `VBOError`'s message, which
    quotes no secret)."""
    try:
        found[number] = await read
    except VBOError as exc:
        found[number] = str(exc)


Listed = TypeVar("Listed", bound=BackupRepository | Proxy)


async def _listed(client: VBOClient, route: str, cls: type[Listed]) -> list[Listed | Unread]:
    """The items of ``client``'s listing ``route``, and an `Unread` for each that could not be
    decoded: one repository's bad field does not leave the server's others unjudged."""
    items, refused = await client._filed(route, cls)
    return [*items, *(Unread(key, str(error)) for key, error in refused)]


async def _license_read(client: VBOClient) -> tuple[License, dt.datetime] | None:
    """``client``'s license and the time it was read on its server's clock; None when its API
    has none (v1)."""
    try:
        return await client.license(), client._server_time()
    except NotSupportedError:
        return None


class _Identified(Protocol):
    @property
    def id(self) -> str: ...


Item = TypeVar("Item", bound=_Identified)


def _each_once(items: Iterable[Item]) -> list[Item]:
    """``items`` with each id once (ignoring case), the first of each: a server may repeat one
    in its listing."""
    unique: dict[str, Item] = {}
    unnamed: list[Item] = []  # items the listing gave no id (an `Unread` of one): each its own
    for item in items:
        if item.id:
            unique.setdefault(item.id.casefold(), item)
        else:
            unnamed.append(item)
    return [*unique.values(), *unnamed]


async def sweep_servers(
    servers: Sequence[Server],
    *,
    concurrency: int,
    health: HealthPolicy,
    follow: Iterable[str] = (),
    limit: TimeLimit | None = None,
    choose: Choose | None = None,
    progress: Progress | None = None,
    repositories: bool = False,
    license: bool = False,
    proxies: bool = False,
) -> Swept:
    """Each server on its own: list its organizations (`server_targets`, at most ``concurrency``
    servers at once, one silent for `slot_hold` seconds letting the next begin), keep what
    ``choose`` keeps, then poll those tenants (at most ``concurrency`` at once on each server).
    A server slow to list holds up only itself. When
    the process may not open descriptors enough for every server at once, they take turns
    (`turns`; a warning says so).

    With a time ``limit``, whatever is still running at its sweep's end
    (`TimeLimit.sweep_ends`) is cancelled and waited for (the caller closes the clients) and
    counts as not having answered (`Swept.failures`); the progress, when given, counts it as
    failed.

    With ``repositories``, each server's backup repositories are read too (one listing:
    `Swept.repositories`); with ``license``, its license (one request: `Swept.licenses`); with
    ``proxies``, its backup proxies (one listing: `Swept.proxies`). They are read while its
    tenants are polled, each on its own: one slow to answer (an object storage repository's
    listing) holds up none of the others, and is the only one said to have had no answer.
    """
    swept = Swept(servers, limit.said if limit is not None else None)
    listing = progress.phase("Listing organizations", len(servers)) if progress else Phase(None, None)
    polling = progress.phase("Polling tenants", 0) if progress else Phase(None, None)
    slots = asyncio.Semaphore(concurrency)
    within = _until(limit)
    hold = slot_hold(len(servers), concurrency, within)
    # As many servers at once as the open-file limit lets hold their connections, the others
    # waiting for a turn (their idle connections closed as it ends), as `serve` sweeps them.
    at_once = turns([server.target.max_concurrency for server in servers], serving=False)
    taking = Turns(at_once if at_once < len(servers) else None)

    async def pipeline(number: int, server: Server) -> None:
        async with taking.turn():
            try:
                await polled(number, server)
            finally:
                if taking.bounded:
                    await server.client._close_idle()

    async def polled(number: int, server: Server) -> None:
        targets, failures, count = await server_targets(
            server, slots, listing, asked=lambda: swept.asked.add(number), hold=hold
        )
        if choose is not None:
            targets, failures = choose(targets, failures)
        swept.listed[number] = (targets, failures)
        if count is None:  # down, or refusing the password: asking it for more would only repeat that
            swept.unlisted.add(number)
            return
        polling.extend(len(targets))
        counts = {server.client: count} if count is not None else None
        client = server.client
        async with asyncio.TaskGroup() as reads:  # cancelled with the pipeline when time is up
            if repositories:
                reads.create_task(
                    _into(
                        swept.repositories, number, _listed(client, "backup_repositories", BackupRepository)
                    )
                )
            if license:
                reads.create_task(_into(swept.licenses, number, _license_read(client)))
            if proxies:
                reads.create_task(_into(swept.proxies, number, _listed(client, "proxies", Proxy)))
            async with poll_jobs(
                targets, concurrency=concurrency, follow=follow, health=health, organization_counts=counts
            ) as sweep:
                async for result in sweep:
                    polling.advance(failed=result.error is not None)
                    swept.results.append(result)

    # A limit all spent before the sweep (a start-up or a token cache's lock took it) asks no one.
    spent = within is not None and within <= 0
    tasks = [] if spent else [asyncio.create_task(pipeline(n, server)) for n, server in enumerate(servers)]
    try:
        if tasks:
            await asyncio.wait(tasks, timeout=within, return_when=asyncio.FIRST_EXCEPTION)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for task in tasks:
        bug = None if task.cancelled() else task.exception()
        if bug is not None:  # a server's failure is a result or a row; anything else is a bug
            raise bug
    for _, target in swept.unanswered():
        (listing if target is None else polling).advance(failed=True)
    return swept


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
    problems: list[str] = []
    for result in results:
        rows += rows_of(result, names[id(result.target.client)], source=source)
        problems += link_problems(result, names[id(result.target.client)])
    warn_link_problems(problems)
    tenants = sum(result.error is None for result in results)
    return Report.collect(rows, servers=servers, tenants=tenants)
