"""Soak under faults: repeated many-tenant sweeps against a simulator that spoils one request in five.

Each round is a ``poll_jobs`` sweep over every tenant with ``follow=("repository", "proxy")`` while
the simulator answers 500/502/503, 429 with ``Retry-After``, drops connections mid-body, cuts bodies
short of their ``Content-Length``, adds latency spikes and revokes every token twice a second.
Meanwhile job actions (start/disable/enable) are sent for tenants already polled. After every round:

- every tenant's jobs equal, field for field, the simulator's own ``jobs_wire(org)``, and every
  prefetched repository and proxy is the one the job links to;
- no action was applied twice: each call that succeeded was applied exactly once, each that raised
  at most once (the simulator counts what it applied);
- no task is left (``asyncio.all_tasks()``), no connection beyond ``max_concurrency`` is open, and
  after ``aclose()`` no socket is left at all;
- traced memory (tracemalloc) after the last round minus after round 2 stays below a bound tied to
  the data size; every log record (DEBUG and up, all loggers), error message and repr is searched
  for the password and every token the simulator issued: none is found.

A soak adds rounds (`EXTRA_ROUNDS` at most) while a kind of fault the simulator injects has not been
applied yet: a truncation drawn for an answer without a body cannot be applied.
The CI variants run in-process (ASGI) and, shorter, over uvicorn on 127.0.0.1; the long variant
(more tenants and rounds, over uvicorn) runs with ``--run-slow`` or ``VBO_SOAK_LONG=1``.
`run_soak` is also what ``python -m tests.reliability_report`` runs for the published figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import re
import socket
import time
import tracemalloc
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import attrs
import httpx
import orjson
import pytest
import uvicorn

from vbo_async import (
    Job,
    PollResult,
    PollTarget,
    RetryPolicy,
    VBOClient,
    VBOError,
    poll_jobs,
)
from vbo_async._aiohttp import AiohttpTransport
from vbo_async.simulator import Faults, Simulator, SimulatorConfig, create_app
from vbo_async.simulator._faults import outcome_rates
from vbo_async.simulator._tokens import TokenStore

from .conftest import recording_retries

USERNAME = "LAB\\svc-soak"
PASSWORD = "pw-Soak-S3cret-Sw0rdfish!"
FOLLOW = ("repository", "proxy")
ACTIONS = ("start", "disable", "enable")
EXTRA_ROUNDS = 4
"""The most rounds a soak adds to those asked for while a kind of fault has not been applied."""
MAX_CONCURRENCY = 10
MAX_CONNECTIONS = MAX_CONCURRENCY + 1
"""The pool's size: a connection per request in flight, and one for the token request."""

FAULTS = Faults(
    error_rate=0.08,  # 500/502/503
    rate_limit_rate=0.04,  # 429 with Retry-After: 0
    drop_rate=0.04,  # head and half the body, then the connection is reset
    truncate_rate=0.04,  # half the body under the full Content-Length
    latency_spike_rate=0.05,
    latency_spike=0.05,
    retry_after=0,  # retried at once: a Retry-After past max_retry_after would fail the request
    revoke_every=0.5,  # every access token revoked twice a second
    fault_seed=1832,  # 5 truncations, 4 drops in the first 70 requests (seed 6: 3, often 1 applied)
)
"""20 % of all requests (token requests included) spoiled, plus latency spikes and revocations.
Malformed 200 bodies are left out: a 200 whose body is not JSON is not transient, so the client
does not retry it (test_hostile checks that it is a DecodeError)."""

RETRY = RetryPolicy(
    attempts=10, wait_initial=0.001, wait_max=0.02, wait_jitter=0, max_retry_after=0.01, timeout=None
)
"""Enough attempts that a GET fails only if ten in a row are spoiled (0.2**10 ≈ 1e-7); short waits
so the soak measures the client, not its sleeps; the simulator's Retry-After is 0 (a longer one than
``max_retry_after`` is not retried at all)."""


# --- instruments ---------------------------------------------------------------------------------------


class FrozenClock:
    """The simulator's clock, stopped: job runs never finish on their own and tokens never expire
    by age, so the truth a round is compared with only changes through the actions sent."""

    def __call__(self) -> float:
        return 1000.0


@attrs.define
class RecordingTokenStore(TokenStore):
    """The simulator's token store, remembering every token it ever issued (revocation forgets)."""

    issued: set[str] = attrs.Factory(set)

    def issue(self, username: str) -> dict[str, object]:
        body = super().issue(username)
        self.issued |= {str(body["access_token"]), str(body["refresh_token"])}
        return body


TOKEN_SHAPE = re.compile(
    r"AQAAANCMnd8BFdERjHoAwE_Cl-sBAAAA[\w-]{8,}|(?<![0-9a-fA-F])[0-9a-f]{32}(?![0-9a-fA-F])"
)
"""What the simulator's tokens look like: v1-style access tokens (a fixed DPAPI-like prefix) and
32 hex digits refresh tokens. Anything of that shape in a text is looked up among the issued ones."""


class SecretScan(logging.Handler):
    """Receives every log record and searches it (message, arguments, extras, traceback) for the
    password and every issued token; `check` searches any other text (errors, reprs) the same way.

    Tokens are found by shape, then looked up (also a cut token, from 16 characters on): one fixed
    pattern, so the scan's own memory does not grow with the number of tokens issued.
    """

    def __init__(self, password: str, tokens: set[str], shape: re.Pattern[str] = TOKEN_SHAPE) -> None:
        super().__init__(logging.DEBUG)
        self._password = password
        self._tokens = tokens
        self._shape = shape
        self.records = 0
        self.texts = 0
        self.by_level: Counter[str] = Counter()
        self.found: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records += 1
        self.by_level[record.levelname] += 1
        try:
            text = self.format(record) + "\n" + repr(vars(record))
        except Exception as exc:  # pragma: no cover - a record that cannot be rendered is a finding
            text = f"unrenderable record {record.name}: {exc!r}"
        self._search(text, f"log record {record.name}:{record.levelname}")

    def check(self, text: str, where: str) -> None:
        self.texts += 1
        self._search(text, where)

    def _search(self, text: str, where: str) -> None:
        at = text.find(self._password)
        for match in self._shape.finditer(text):
            candidate = match.group()
            if candidate in self._tokens or (
                len(candidate) >= 16 and any(token.startswith(candidate) for token in self._tokens)
            ):
                at = match.start()
                break
        if at >= 0:
            self.found.append(f"{where}: ...{text[max(0, at - 40) : at]}[SECRET]")


@contextlib.contextmanager
def all_logs_to(handler: logging.Handler) -> Iterator[None]:
    """Route every log record of every logger, DEBUG and up, to ``handler`` alone (pytest's own
    capture handlers are set aside meanwhile, so they neither hold the records nor grow)."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    # Loggers that do not propagate (uvicorn's, once its default logging config has run) keep
    # their own handlers, pytest's record-keeping ones included: route them to the root too.
    detached = [
        (logger, logger.handlers[:], logger.propagate)
        for logger in logging.Logger.manager.loggerDict.values()
        if isinstance(logger, logging.Logger) and (logger.handlers or not logger.propagate)
    ]
    root.handlers = [handler]
    root.setLevel(logging.DEBUG)
    for logger, _, _ in detached:
        logger.handlers = []
        logger.propagate = True
    try:
        yield
    finally:
        root.handlers = saved_handlers
        root.setLevel(saved_level)
        for logger, handlers, propagate in detached:
            logger.handlers = handlers
            logger.propagate = propagate


def counting_retries() -> contextlib.AbstractContextManager[list[Any]]:
    """The reason of every retry the clients schedule (from their log records; only the text is
    kept, so thousands of retries do not keep their exceptions and tracebacks alive)."""
    return recording_retries(keep=lambda note: note.reason)


def pool_connections(client: VBOClient) -> int:
    """The connections a client's (default, aiohttp) transport holds open now."""
    transport = client._sender._transport  # type: ignore[attr-defined]
    assert isinstance(transport, AiohttpTransport)
    return transport.connections


def open_sockets() -> int | None:
    """Sockets open in this process (Linux /proc), or None where that cannot be read."""
    try:
        fds = os.listdir("/proc/self/fd")
    except OSError:  # pragma: no cover - not Linux
        return None
    count = 0
    for fd in fds:
        with contextlib.suppress(OSError):
            count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
    return count


@contextlib.asynccontextmanager
async def serve_uvicorn(app: Any) -> AsyncIterator[tuple[int, uvicorn.Server]]:
    """``app`` on a real uvicorn server on 127.0.0.1 (an ephemeral port): (port, server)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        log_config=None,  # records propagate to the root logger (and so to the secret scan)
        log_level="warning",
        access_log=False,
        lifespan="off",
        ws="none",
        http="h11",
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]), name="uvicorn")
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("uvicorn stopped before it started")
            await asyncio.sleep(0.005)
        yield port, server
    finally:
        server.should_exit = True
        await task
        sock.close()


async def settle(condition: Callable[[], bool], *, iterations: int = 500) -> bool:
    """Give the event loop a bounded number of turns (a guard, not a measurement) until
    ``condition`` holds; whether it does."""
    for _ in range(iterations):
        if condition():
            return True
        await asyncio.sleep(0.01)
    return condition()


# --- the soak ----------------------------------------------------------------------------------------


@attrs.define
class ActionCall:
    """One job action sent, and the name of the error it raised (None: it succeeded). The
    exception itself is not kept: its traceback would hold the request's frames alive."""

    job_id: str
    action: str
    error: str | None


@attrs.define
class SoakFigures:
    """What a soak run measured; `problems` lists every broken promise (empty when all held)."""

    transport: str
    tenants: int
    rounds: int
    jobs_per_round: int = 0
    wire_bytes_per_round: int = 0
    jobs_expected: int = 0
    jobs_returned: int = 0
    jobs_exact: int = 0
    tenant_errors: int = 0
    mismatched_tenants: int = 0
    links_prefetched: int = 0
    links_wrong: int = 0
    link_errors: int = 0
    server_requests: int = 0
    client_attempts: int = 0
    token_requests: dict[str, int] = attrs.Factory(dict)
    unauthorized: int = 0
    faults: dict[str, int] = attrs.Factory(dict)
    retries: int = 0
    actions_sent: int = 0
    actions_succeeded: int = 0
    actions_failed: dict[str, int] = attrs.Factory(dict)
    actions_applied: int = 0
    actions_applied_despite_error: int = 0
    actions_applied_twice: int = 0
    actions_succeeded_unapplied: int = 0
    leftover_tasks: int = 0
    max_pool_connections: int | None = None
    max_server_connections: int | None = None
    pool_connections_after_close: int | None = None
    server_connections_after_close: int | None = None
    sockets_leaked: int | None = None
    memory_after_round: list[int] = attrs.Factory(list)
    log_records: int = 0
    log_records_by_level: dict[str, int] = attrs.Factory(dict)
    texts_scanned: int = 0
    tokens_issued: int = 0
    secrets_found: list[str] = attrs.Factory(list)
    elapsed: float = 0.0
    problems: list[str] = attrs.Factory(list)

    @property
    def memory_growth(self) -> int | None:
        """Traced bytes after the last rounds minus after round 2 (None without enough rounds):
        the least of the last three rounds, as a leak keeps what it took round after round, while
        a moment's allocation elsewhere in the process (tracemalloc traces every thread; seen once
        in CI at 3.9 MB after the last round) is gone by the next."""
        if len(self.memory_after_round) < 3:
            return None
        return (
            min(self.memory_after_round[max(2, len(self.memory_after_round) - 3) :])
            - self.memory_after_round[1]
        )

    @property
    def memory_bound(self) -> int:
        """Growth allowed: a quarter of one round's job data on the wire, at most 2 MiB; decoded jobs
        take several times their wire size, so keeping even one round's jobs would exceed it."""
        return min(2 * 1024 * 1024, self.wire_bytes_per_round // 4)


class Soak:
    """One soak run against one simulator (see the module docstring)."""

    def __init__(
        self,
        *,
        tenants: int,
        rounds: int,
        over_uvicorn: bool,
        actions_per_round: int,
        track_memory: bool,
        faults: Faults = FAULTS,
        seed: int = 2017,
    ) -> None:
        config = SimulatorConfig(
            seed=seed,
            organizations=tenants,
            sessions_per_job=(0, 3),
            mailboxes_per_job=(0, 5),
            username=USERNAME,
            password=PASSWORD,
            faults=faults,
        )
        self.simulator = Simulator(config, clock=FrozenClock())
        self.tokens = RecordingTokenStore(self.simulator.clock, config.token_lifetime)
        self.simulator.tokens = self.tokens
        self.simulator.sessions_wire()  # generate every session now: starting a job must not grow the server
        self.truth: Callable[[str], list[dict[str, Any]]] = self.simulator.jobs_wire
        """Where a tenant's jobs are compared with: the simulator's own state (plain method calls,
        no HTTP, so no fault applies to them)."""
        self.over_uvicorn = over_uvicorn
        self.actions_per_round = actions_per_round
        self.track_memory = track_memory
        self.figures = SoakFigures(
            transport="uvicorn, HTTP/1.1 over 127.0.0.1"
            if over_uvicorn
            else "in-process ASGI (httpx.ASGITransport)",
            tenants=tenants,
            rounds=rounds,
        )
        self.scan = SecretScan(PASSWORD, self.tokens.issued)
        self.calls: list[ActionCall] = []
        self._used: set[tuple[str, str]] = set()
        self._pending: list[asyncio.Task[None]] = []
        self._budget = 0
        self._every = 1
        self._seen_this_round = 0

    async def run(self) -> SoakFigures:
        started = time.perf_counter()
        with all_logs_to(self.scan), counting_retries() as retries:
            if self.over_uvicorn:
                sockets_before = open_sockets()
                async with serve_uvicorn(create_app(simulator=self.simulator)) as (port, server):
                    await self._run_client(f"http://127.0.0.1:{port}", None, server)
                    self.figures.server_connections_after_close = len(server.server_state.connections)
                sockets_after = open_sockets()
                if sockets_before is not None and sockets_after is not None:
                    self.figures.sockets_leaked = sockets_after - sockets_before
            else:
                transport = httpx.ASGITransport(app=create_app(simulator=self.simulator))
                await self._run_client("https://vbo.test:4443", transport, None)
        self.figures.retries = len(retries)
        self.figures.elapsed = time.perf_counter() - started
        self._collect()
        return self.figures

    async def _run_client(
        self, base_url: str, transport: httpx.AsyncBaseTransport | None, server: uvicorn.Server | None
    ) -> None:
        figures = self.figures
        client = VBOClient(
            base_url,
            username=USERNAME,
            password=PASSWORD,
            transport=transport,
            retry=RETRY,
            max_concurrency=MAX_CONCURRENCY,
            timeout=10.0,
            api_version="v1",
        )
        self.client = client
        targets = [
            PollTarget(client=client, organization_id=org["id"], name=org["name"])
            for org in self.simulator.organizations_wire()
        ]
        figures.jobs_per_round = sum(len(self.simulator.jobs_wire(t.organization_id)) for t in targets)
        figures.wire_bytes_per_round = sum(
            len(orjson.dumps(self.simulator.jobs_wire(t.organization_id))) for t in targets
        )
        self._every = max(1, len(targets) // max(1, self.actions_per_round))
        baseline = asyncio.all_tasks()
        if self.track_memory:
            tracemalloc.start()
        try:
            async with client:
                number = 0
                # The rounds asked for, then more (a few at most) while a kind of fault the
                # simulator injects has not been applied yet: a short soak's few truncations may
                # all fall on answers without a body (a job action's, a 401), which cannot be cut
                # short, and the soak is to show the client surviving every kind.
                while number < figures.rounds or (
                    number < figures.rounds + EXTRA_ROUNDS and self._faults_not_applied()
                ):
                    number += 1
                    await self._round(targets)
                    await self._after_round(number, client, server, baseline)
                figures.rounds = number
                self.scan.check(repr(client), "repr(client)")
            if server is not None:
                figures.pool_connections_after_close = pool_connections(client)
                await settle(lambda: not server.server_state.connections)
        finally:
            if self.track_memory:
                tracemalloc.stop()

    def _faults_not_applied(self) -> bool:
        """Whether a kind of fault the simulator is set to inject has not been applied yet."""
        faults = self.simulator.config.faults
        applied = self.simulator.stats.faults
        rates = (*outcome_rates(faults), ("latency_spike", faults.latency_spike_rate))
        return any(rate and not applied.get(kind, 0) for kind, rate in rates)

    async def _round(self, targets: list[PollTarget]) -> None:
        self._budget = self.actions_per_round
        self._seen_this_round = 0
        async with poll_jobs(targets, concurrency=16, follow=FOLLOW) as sweep:
            async for result in sweep:
                self._check(result)
                self._seen_this_round += 1
                if self._budget and self._seen_this_round % self._every == 0:
                    self._act_on(result)
        await asyncio.gather(*self._pending)  # _act never raises a VBOError; anything else fails here
        self._pending.clear()

    def _check(self, result: PollResult) -> None:
        figures = self.figures
        truth = self.truth(result.target.organization_id)
        figures.jobs_expected += len(truth)
        if result.error is not None:
            figures.tenant_errors += 1
            self.scan.check(f"{result.error} {result.error!r}", "tenant error")
            figures.problems.append(f"tenant {result.target.label}: {result.error!r}")
            return
        figures.jobs_returned += len(result.jobs)
        expected = [self.client.from_wire(wire, Job) for wire in truth]
        same = [(job.id, job.last_status) for job in result.jobs] == [
            (w["id"], w["lastStatus"]) for w in truth
        ]
        if result.jobs == expected and same:
            figures.jobs_exact += len(result.jobs)
        else:
            figures.mismatched_tenants += 1
            figures.problems.append(f"tenant {result.target.label}: jobs differ from the simulator's")
        figures.link_errors += len(result.link_errors)
        for key, error in result.link_errors.items():
            self.scan.check(f"{error} {error!r}", "link error")
            figures.problems.append(f"link {key}: {error!r}")
        for job, wire in zip(result.jobs, truth, strict=False):
            for relation, wire_key in (("repository", "repository"), ("proxy", "proxy")):
                resolved = result.resolved(job, relation)
                wanted = wire["_links"][wire_key]["href"].rsplit("/", 1)[1]
                figures.links_prefetched += resolved is not None
                if resolved is None or getattr(resolved, "id", None) != wanted:
                    figures.links_wrong += 1
                    figures.problems.append(
                        f"job {job.id}: {relation} resolved to {resolved!r}, not {wanted}"
                    )

    def _act_on(self, result: PollResult) -> None:
        for job in result.jobs:
            for action in ACTIONS:
                if (job.id, action) not in self._used:
                    self._used.add((job.id, action))
                    self._budget -= 1
                    self._pending.append(asyncio.create_task(self._act(job.id, action)))
                    return

    async def _act(self, job_id: str, action: str) -> None:
        send = {
            "start": self.client.start_job,
            "disable": self.client.disable_job,
            "enable": self.client.enable_job,
        }
        try:
            await send[action](job_id)
        except VBOError as error:
            self.scan.check(f"{error} {error!r}", "action error")
            self.calls.append(ActionCall(job_id, action, type(error).__name__))
        else:
            self.calls.append(ActionCall(job_id, action, None))

    async def _after_round(
        self, number: int, client: VBOClient, server: uvicorn.Server | None, baseline: set[asyncio.Task[Any]]
    ) -> None:
        figures = self.figures
        await settle(lambda: not (asyncio.all_tasks() - baseline), iterations=100)
        leftover = asyncio.all_tasks() - baseline
        figures.leftover_tasks = max(figures.leftover_tasks, len(leftover))
        if leftover:
            figures.problems.append(f"round {number}: tasks left: {sorted(t.get_name() for t in leftover)}")
        if server is not None:
            await settle(
                lambda: len(server.server_state.connections) <= pool_connections(client), iterations=100
            )
            figures.max_pool_connections = max(figures.max_pool_connections or 0, pool_connections(client))
            figures.max_server_connections = max(
                figures.max_server_connections or 0, len(server.server_state.connections)
            )
        if self.track_memory:
            gc.collect()
            figures.memory_after_round.append(tracemalloc.get_traced_memory()[0])

    def _collect(self) -> None:
        figures, stats = self.figures, self.simulator.stats
        figures.server_requests = stats.requests
        figures.client_attempts = self.client.requests_sent
        figures.token_requests = dict(stats.token_requests)
        figures.unauthorized = stats.unauthorized
        figures.faults = dict(sorted(stats.faults.items()))
        figures.actions_sent = len(self.calls)
        failed: Counter[str] = Counter()
        for call in self.calls:
            applied = stats.job_actions[(call.job_id, call.action)]
            figures.actions_applied += applied
            if applied > 1:
                figures.actions_applied_twice += 1
                figures.problems.append(f"{call.action} {call.job_id} applied {applied} times")
            if call.error is None:
                figures.actions_succeeded += 1
                if applied != 1:
                    figures.actions_succeeded_unapplied += 1
                    figures.problems.append(
                        f"{call.action} {call.job_id} succeeded but applied {applied} times"
                    )
            else:
                failed[call.error] += 1
                figures.actions_applied_despite_error += applied == 1
        figures.actions_failed = dict(sorted(failed.items()))
        unexpected = set(stats.job_actions) - {(c.job_id, c.action) for c in self.calls}
        if unexpected:
            figures.problems.append(f"actions applied that nobody sent: {sorted(unexpected)}")
        figures.log_records = self.scan.records
        figures.log_records_by_level = dict(self.scan.by_level)
        figures.texts_scanned = self.scan.texts
        figures.tokens_issued = len(self.tokens.issued)
        figures.secrets_found = self.scan.found
        for name, value in (("leftover tasks", figures.leftover_tasks),):
            if value:
                figures.problems.append(f"{name}: {value}")
        if figures.max_pool_connections is not None and figures.max_pool_connections > MAX_CONNECTIONS:
            figures.problems.append(f"client pool held {figures.max_pool_connections} connections")
        if figures.max_server_connections is not None and figures.max_server_connections > MAX_CONNECTIONS:
            figures.problems.append(f"server saw {figures.max_server_connections} connections at once")
        if figures.pool_connections_after_close:
            figures.problems.append(f"{figures.pool_connections_after_close} pool connections after aclose()")
        if figures.server_connections_after_close:
            figures.problems.append(
                f"{figures.server_connections_after_close} connections open after aclose()"
            )
        if figures.sockets_leaked:
            figures.problems.append(f"{figures.sockets_leaked} sockets left open")
        growth = figures.memory_growth
        if growth is not None and growth >= figures.memory_bound:
            figures.problems.append(f"memory grew {growth} bytes from round 2 to {figures.rounds}")
        if figures.secrets_found:
            figures.problems.append(f"secrets found: {figures.secrets_found[:3]}")


async def run_soak(
    *, tenants: int, rounds: int, over_uvicorn: bool, actions_per_round: int = 12, track_memory: bool = True
) -> SoakFigures:
    """Run one soak and return its figures (the report script calls this too)."""
    soak = Soak(
        tenants=tenants,
        rounds=rounds,
        over_uvicorn=over_uvicorn,
        actions_per_round=actions_per_round,
        track_memory=track_memory,
    )
    return await soak.run()


def assert_soak_held(figures: SoakFigures) -> None:
    """Every promise of the module docstring, with the figures in the failure message."""
    assert figures.problems == [], figures
    assert figures.tenant_errors == 0
    assert figures.jobs_returned == figures.jobs_expected == figures.jobs_per_round * figures.rounds
    assert figures.jobs_exact == figures.jobs_expected
    assert figures.links_wrong == 0
    assert figures.link_errors == 0
    assert figures.links_prefetched == 2 * figures.jobs_expected
    assert figures.actions_applied_twice == 0
    assert figures.actions_succeeded_unapplied == 0
    assert figures.actions_sent == figures.actions_succeeded + sum(figures.actions_failed.values())
    assert figures.actions_succeeded > 0
    assert figures.leftover_tasks == 0
    assert figures.secrets_found == []
    assert figures.log_records > 0
    # Revocations forced renewals, so the scan had tokens to look for: at least one per revocation
    # period the soak lasted beyond the first (the revocations follow the wall clock).
    assert FAULTS.revoke_every is not None
    periods = int(figures.elapsed / FAULTS.revoke_every)
    assert figures.tokens_issued >= 1 + min(3, periods - 1), (figures.tokens_issued, figures.elapsed)
    # A revocation is counted when a request meets a token revoked since it was issued: a soak
    # over within two periods (0.6 s on a quiet machine) may meet none.
    kinds = ("error", "rate_limit", "drop", "truncate", "latency_spike") + (
        ("revoke",) if periods >= 2 else ()
    )
    for kind in kinds:
        assert figures.faults.get(kind, 0) > 0, (kind, figures.faults)
    assert figures.retries > 0
    if figures.memory_growth is not None:
        assert figures.memory_growth < figures.memory_bound, figures.memory_after_round


def _long() -> bool:
    return os.environ.get("VBO_SOAK_LONG") == "1"


# --- the tests ---------------------------------------------------------------------------------------


async def test_soak_in_process() -> None:
    """200 tenants, 10 rounds, in-process: the full set of promises, memory included."""
    figures = await run_soak(tenants=200, rounds=10, over_uvicorn=False)
    assert_soak_held(figures)
    assert figures.memory_growth is not None


async def test_soak_over_uvicorn() -> None:
    """Real sockets: 60 tenants, 4 rounds; connections bounded, none left after aclose(). Memory
    is left to the in-process soak and the long one: two rounds after the baseline are too few to
    tell a leak from the process's own noise (a CI run under load measured 100 KB against a bound
    of 94 KB; 8ac401f measured 26-80 KB here at rest)."""
    figures = await run_soak(tenants=60, rounds=4, over_uvicorn=True, actions_per_round=8, track_memory=False)
    assert_soak_held(figures)
    assert figures.max_pool_connections is not None
    assert 0 < figures.max_pool_connections <= MAX_CONNECTIONS
    assert figures.max_server_connections is not None
    assert figures.max_server_connections <= MAX_CONNECTIONS
    assert figures.server_connections_after_close == 0
    assert figures.sockets_leaked in (0, None)


@pytest.mark.slow
async def test_soak_long_over_uvicorn() -> None:
    """The long variant: 500 tenants, 20 rounds over uvicorn (``--run-slow`` or ``VBO_SOAK_LONG=1``)."""
    figures = await run_soak(tenants=500, rounds=20, over_uvicorn=True, actions_per_round=20)
    assert_soak_held(figures)
    assert figures.server_connections_after_close == 0
    assert figures.sockets_leaked in (0, None)


def test_the_secret_scan_finds_what_it_looks_for() -> None:
    """The scan is not vacuous: a token in a message, an argument, an extra or a traceback, a cut
    token and the password are found; token-shaped strings that were never issued are not."""
    access = "AQAAANCMnd8BFdERjHoAwE_Cl-sBAAAA" + "x" * 64
    refresh = "0123456789abcdef0123456789abcdef"
    scan = SecretScan(PASSWORD, {access, refresh})
    logger = logging.getLogger("vbo_async.soak_selftest")
    with all_logs_to(scan):
        logger.debug("GET %s -> %d", "https://vbo.test/v1/Jobs/b2d9414d-c417-4a94-be3b-b38a3c2e8a7b", 200)
        logger.debug("unissued %s %s", "AQAAANCMnd8BFdERjHoAwE_Cl-sBAAAA" + "y" * 64, "f" * 32)
        assert scan.found == []
        logger.debug("header %s", f"Bearer {access}")
        logger.info("plain", extra={"form": {"refresh_token": refresh}})
        try:
            raise RuntimeError(f"refused {access[:48]}...")
        except RuntimeError:
            logger.exception("failed")
    assert len(scan.found) == 3
    assert scan.records == 5
    scan.check("a repr without secrets", "text")
    scan.check(f"<Client password={PASSWORD}>", "text")
    assert len(scan.found) == 4


async def test_a_broken_promise_is_reported() -> None:
    """The checks can fail: when the truth says otherwise than the server answered (here, one
    status changed), the tenants are reported as mismatched and the soak as broken."""
    soak = Soak(
        tenants=3, rounds=1, over_uvicorn=False, actions_per_round=0, track_memory=False, faults=Faults()
    )
    original = soak.truth

    def other_truth(org_id: str) -> list[dict[str, Any]]:
        return [{**wire, "lastStatus": "Failed"} for wire in original(org_id)]

    soak.truth = other_truth
    figures = await soak.run()
    assert figures.mismatched_tenants == 3
    assert figures.jobs_exact == 0
    assert any("differ" in problem for problem in figures.problems)
    with pytest.raises(AssertionError):
        assert_soak_held(figures)


def test_the_memory_growth_counts_a_leak_not_a_moment_s_allocation() -> None:
    """A leak (what a round took is still held after the later ones) counts; memory another
    thread held only at the last measurement does not."""
    leak = SoakFigures(transport="t", tenants=1, rounds=6, memory_after_round=[100, 200, 300, 400, 500, 600])
    assert leak.memory_growth == 400 - 200
    moment = SoakFigures(
        transport="t", tenants=1, rounds=6, memory_after_round=[100, 200, 210, 205, 208, 4_000_000]
    )
    assert moment.memory_growth == 5
    assert SoakFigures(transport="t", tenants=1, rounds=2, memory_after_round=[1, 2]).memory_growth is None
