"""The exporter behind ``vbo-async serve``: a sweep loop per server and a small aiohttp server.

Scheduling: every server has a loop of its own. It sweeps its server (within its time budget),
renders that server's series in a worker thread (on the loop when none can be had) and
publishes them at once, joined with the other servers' last published series, in one
assignment; then it sleeps until ``interval``
seconds after that sweep *started*, and at least ``interval / 10`` after it *ended*. A server
slow to answer therefore holds up nobody's metrics but its own, the others are swept every
interval meanwhile, and the sweeps of one server never overlap and never pile up: one slower
than the interval is followed by the next one after the short gap, not by a burst of catching up.
When the process may not open descriptors enough to sweep every server at once (``at_once``,
from ``serve``'s open-file limit), the servers take turns: a sweep waits for one, its time
budget starting with it, and its server's idle connections are closed as it ends. A reload
changing how many may sweep at once counts the sweeps in progress against the new number.

`Exporter.reconfigure` changes the servers swept while the loops run (``serve`` does on SIGHUP):
a server's configuration changes between two of its sweeps, never in the middle of one; a
removed server's series are dropped from the next scrape on, a new server is swept at once. It
never waits for a sweep in progress (one waiting out a server that does not answer may take its
whole time budget): each server's loop applies its change as that sweep ends.

``/metrics`` answers the last published exposition and the exporter's own metrics; it never
sends a request to a VBO server, so scrapers, however many, cost the backup servers nothing.
``/healthz`` answers 200 while the loops run and every server has been published within three
intervals, 503 with a one-line reason otherwise, and 503 while a server's last sweep failed for
want of a file descriptor (the process's trouble, not the server's). A per-server time budget
(``--timeout``) longer than the interval lengthens that to three budgets: a sweep waiting one out
on a hanging server is the loop working as configured, not a stale one.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

from aiohttp import web
from prometheus_client import generate_latest

from .._health import HealthPolicy
from ._exposition import (
    CONTENT_TYPE,
    EMPTY,
    Exposition,
    LoopStats,
    ServerPart,
    assemble,
    gzip_parts,
    own_registry,
    render_server,
    response_body,
)
from ._metrics import ERROR_KINDS
from ._sweeps import ServerSnapshot, ServerSpec, sweep_server
from ._threads import NoThread
from ._turns import Turns

__all__ = ["HEALTHY_INTERVALS", "Exporter", "accepts_gzip", "pieces"]

log = logging.getLogger("vbo_async.cli")
T = TypeVar("T")

HEALTHY_INTERVALS = 3
"""``/healthz`` fails when no sweep was published for this many intervals (or per-server time
budgets, when those are longer)."""
_MIN_GAP = 0.1
"""The shortest pause after a sweep, as a share of the interval."""
SEND_WITHIN = 120.0
"""Seconds a ``/metrics`` answer may take to be sent: a client reading it slower, or not at all,
is then disconnected, so it holds neither the body nor its connection for good."""
_PIECE = 1 << 18
"""Bytes handed to the connection at a time: its buffer holds one piece, not a copy of the body."""


def accepts_gzip(header: str) -> bool:
    """Whether an ``Accept-Encoding`` header accepts gzip (RFC 9110, 12.5.3): ``gzip`` with a
    q-value above zero (``x-gzip`` counting as ``gzip``, 8.4.1.3), or else ``*`` with one;
    ``gzip;q=0`` refuses it, and a q-value that is not a number counts as zero."""
    weights: dict[str, float] = {}
    for item in header.split(","):
        coding, *params = (part.strip() for part in item.split(";"))
        weight = 1.0
        for param in params:
            name, _, text = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = float(text.strip())
                except ValueError:
                    weight = 0.0
                if not 0.0 <= weight <= 1.0:
                    weight = 0.0
        coding = coding.lower()
        weights.setdefault("gzip" if coding == "x-gzip" else coding, weight)
    return weights.get("gzip", weights.get("*", 0.0)) > 0.0


class Exporter:
    """Sweeps ``servers`` every ``interval`` seconds and serves the result over HTTP (`app`).

    ``budget`` is the seconds one server's sweep may take (the interval when None); a server
    over it is down for that sweep. ``concurrency`` is `poll_jobs`'s, per server. ``at_once``
    (None: no bound) is how many servers are swept at the same time: the others wait their turn
    (before their time budget starts), and a server's idle connections are closed as its turn
    ends, so the descriptors its clients hold stay within what the process may open. The
    turns are ``turns`` when given (``serve`` logs its clients out in them too), resized to
    ``at_once``. The exporter owns no client: whoever built the `ServerSpec` objects closes them.
    """

    def __init__(
        self,
        servers: Sequence[ServerSpec],
        *,
        interval: float,
        budget: float | None = None,
        policy: HealthPolicy | None = None,
        concurrency: int = 8,
        at_once: int | None = None,
        turns: Turns | None = None,
    ) -> None:
        self.servers = tuple(servers)
        self._slots = {server.name: _Slot(server) for server in self.servers}
        """Each server's loop: the spec its next sweep uses, and whether it is sweeping."""
        self._leaving: dict[str, _Slot] = {}
        """The loops of removed servers whose sweep in progress has not ended yet."""
        self._in_progress: list[tuple[ServerSpec, asyncio.Future[None]]] = []
        """The sweeps in progress (`sweep_one`), each with a future done as it ends."""
        self._group: asyncio.TaskGroup | None = None
        self.interval = interval
        self.budget = interval if budget is None else budget
        self.policy = policy if policy is not None else HealthPolicy()
        self.concurrency = concurrency
        self.stats = LoopStats(
            servers=len(self.servers),
            interval=interval,
            stale_after=HEALTHY_INTERVALS * max(interval, self.budget),
            config_loaded=time.time(),
        )
        self.exposition: Exposition = EMPTY
        self.errors: dict[str, dict[str, int]] = {s.name: dict.fromkeys(ERROR_KINDS, 0) for s in self.servers}
        self._registry = own_registry(self.stats)
        self._problems: dict[str, str | None] = {}
        self._starved: dict[str, str] = {}
        """The servers whose last sweep failed for want of a file descriptor, with its reason."""
        self._parts: dict[str, ServerPart] = {}
        """Each server's last published series."""
        self._published: dict[str, tuple[int, float, float]] = {}
        """Each server's sweeps published, and when it was last published: Unix time (for the
        metrics) and `time.monotonic` (for ``/healthz``, which a step of the system clock must
        not fool)."""
        self._durations: dict[str, float] = {}
        self._round: set[str] = set()
        """The servers published since the count of complete sweeps (``stats.sweeps``) last rose."""
        self._publishing = asyncio.Lock()
        self._text: _SharedText | None = None
        """The text of the exposition plain scrapes are sending, while any is."""
        self._sweeping = 0
        self._loop: asyncio.Task[None] | None = None
        self._started_steady: float | None = None
        """When `run` began, on `time.monotonic` (for ``/healthz``, as ``_published``)."""
        self.turns = turns if turns is not None else Turns()
        """The turns sweeps take: bounded when fewer than the servers (``at_once``)."""
        self.turns.resize(_bound(at_once, len(self.servers)))
        self.stats.stale_after = self._stale_after()

    # --- sweeping -------------------------------------------------------------------------------------

    async def sweep(self) -> list[ServerSnapshot]:
        """Sweep every server once, at the same time, each published as soon as its sweep ends;
        returns the snapshots."""
        async with asyncio.TaskGroup() as group:
            tasks = [
                group.create_task(self.sweep_one(server), name=f"vbo_async.serve {server.name}")
                for server in self.servers
            ]
        return [task.result() for task in tasks]

    async def sweep_one(self, server: ServerSpec) -> ServerSnapshot:
        """Sweep ``server`` once (in its turn, when servers take turns), render its series and
        publish them; returns its snapshot."""
        began = time.perf_counter()
        self._sweeping += 1
        self.stats.in_progress = True
        sweeping = (server, asyncio.get_running_loop().create_future())
        self._in_progress.append(sweeping)
        try:
            snapshot = await self._in_turn(server)
            if snapshot.internal:  # logged by the sweep; counted as a failure of the exporter's
                self.stats.failed_sweeps += 1
            totals = self.errors[snapshot.server]
            for kind, count in snapshot.errors.items():
                totals[kind] += count
            self._announce(snapshot)
            if snapshot.starved:
                self._starved[snapshot.server] = snapshot.problem or "no file descriptor free"
            else:
                self._starved.pop(snapshot.server, None)
            await self._publish(snapshot, dict(totals), began=began)
        finally:
            self._in_progress.remove(sweeping)
            sweeping[1].set_result(None)
            self._sweeping -= 1
            self.stats.in_progress = self._sweeping > 0
        return snapshot

    def in_use(self) -> set[int]:
        """The ids of the clients of the sweeps in progress: one of a spec no longer swept may
        still be sweeping (`reconfigure` does not wait for it); its client must not be closed."""
        return {id(spec.client) for spec, _ in self._in_progress}

    async def released(self, specs: Iterable[ServerSpec]) -> None:
        """Wait until no sweep in progress uses one of ``specs`` (specs `reconfigure` no longer
        sweeps: none starts again); at most a sweep's time budget."""
        ids = {id(spec) for spec in specs}
        while ending := [done for spec, done in self._in_progress if id(spec) in ids]:
            await asyncio.wait(ending)

    async def _in_turn(self, server: ServerSpec) -> ServerSnapshot:
        """`sweep_server`, in ``server``'s turn when servers take turns (its time budget starts
        with its turn); its idle connections closed as the turn ends."""
        sweep = functools.partial(
            sweep_server, server, policy=self.policy, budget=self.budget, concurrency=self.concurrency
        )
        async with self.turns.turn():  # counted also when unbounded: a reload may bound it
            try:
                return await sweep()
            finally:
                if self.turns.bounded:
                    await server.client._close_idle()  # the next server's turn needs these descriptors

    async def _publish(self, snapshot: ServerSnapshot, errors: dict[str, int], *, began: float) -> None:
        """Render ``snapshot`` (with its server's running ``errors``) and publish it with the
        other servers' last series, in one assignment. One server at a time: a later publish
        always holds what an earlier one held, and servers ending together do not render in as
        many threads at once, each slowing the event loop down."""
        async with self._publishing:
            rendering = time.perf_counter()
            part = await _off_loop(render_server, snapshot, errors)
            self._parts[part.server] = part
            parts = [self._parts[s.name] for s in self.servers if s.name in self._parts]
            exposition = await _off_loop(assemble, parts)
            published = time.perf_counter()
            # From here to the end nothing awaits: a scrape sees this exposition and these figures.
            count, _, _ = self._published.get(part.server, (0, 0.0, 0.0))
            self._published[part.server] = (count + 1, time.time(), time.monotonic())
            self._round.add(part.server)
            self._durations[part.server] = published - began
            self.stats.last_render = published - rendering
            self._show(exposition, parts)
        stats = self.stats
        log.info(
            "sweep of %s published: %s, %d jobs, %.1f s (rendering %.1f s); %d of %d servers up",
            part.server,
            "up" if part.up else "down",
            part.jobs,
            published - began,
            stats.last_render,
            stats.servers_up,
            stats.servers,
        )

    def _show(self, exposition: Exposition, parts: Sequence[ServerPart]) -> None:
        """Publish ``exposition`` (of ``parts``) and the figures of `stats` that follow from it."""
        self.exposition = exposition
        stats = self.stats
        stats.published = len(parts)
        stats.servers_up = sum(p.up for p in parts)
        stats.jobs = sum(p.jobs for p in parts)
        stats.exposition_bytes = exposition.size
        if self.servers and all(s.name in self._round and s.name in self._published for s in self.servers):
            # Every server of the targets published once more since the count last rose. Counted
            # as the fewest sweeps of one server, the count stood still after a reload added a
            # server until that one had been swept as often as the others (a week, a week on).
            stats.sweeps += 1
            self._round.clear()
            stats.last_end = min(self._published[s.name][1] for s in self.servers)
            stats.last_duration = max(self._durations[s.name] for s in self.servers)

    async def reconfigure(
        self, servers: Sequence[ServerSpec], *, at_once: int | None = None
    ) -> list[ServerSpec]:
        """Sweep ``servers`` from now on instead of `servers`, ``at_once`` of them at the same
        time (as the constructor's; the sweeps in progress count against it, and those waiting
        for a turn wait for one under it); returns the specs no longer swept, whose clients the
        caller closes (the exporter owns none) once no sweep uses them (`released`, `in_use`).

        It never waits for a sweep in progress: a reload after this one is not held up by a
        server that stopped answering. A spec given again (the same object) is left alone: its
        loop, its client and its token go on. A new server is swept at once. A spec of a server
        already swept (by name) replaces the old one between two of its sweeps: a sweep in
        progress ends with the old one (and is published), then the new one is swept at once; the
        server's series stay until its first sweep publishes. A server no longer named stops
        after its sweep in progress, and its series are dropped then (at once when it is not
        sweeping). The loops of every other server go on meanwhile."""
        wanted = {server.name: server for server in servers}  # names are unique (the targets file's)
        self.servers = tuple(servers)
        self.stats.servers = len(self.servers)
        # "N of M servers up" of the servers named now, until the next publish says it again
        # (a server removed still counted made it "3 of 2" in ``/healthz``).
        current = [self._parts[name] for name in wanted if name in self._parts]
        self.stats.published = len(current)
        self.stats.servers_up = sum(part.up for part in current)
        self.turns.resize(_bound(at_once, len(self.servers)))
        self.stats.stale_after = self._stale_after()
        retired: list[ServerSpec] = []
        dropped: list[tuple[str, _Slot]] = []
        for name, slot in list(self._slots.items()):
            if wanted.get(name) is slot.spec:
                continue
            retired.append(slot.spec)
            if name in wanted:
                # Its loop sweeps the new spec once its sweep in progress (if any) has ended, at
                # once, as a new server is (a password put right is not left down an interval).
                slot.change(wanted[name])
                continue
            del self._slots[name]
            if slot.sweeping:  # its loop drops its series once that sweep has ended
                slot.removed = True
                self._leaving[name] = slot
            else:
                dropped.append((name, slot))
        for name, server in wanted.items():
            self.errors.setdefault(name, dict.fromkeys(ERROR_KINDS, 0))
            if name in self._slots:
                continue
            if name in self._leaving:  # removed, then named again while still sweeping
                slot = self._leaving.pop(name)
                slot.removed = False
                slot.change(server)
                self._slots[name] = slot
            else:
                self._slots[name] = slot = _Slot(server)
                self._begin(slot)
        self._slots = {name: self._slots[name] for name in wanted}  # in the file's order
        for name, slot in dropped:
            task, slot.task = slot.task, None
            if task is not None:  # waiting for its next sweep: nothing is cut short
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            await self._drop(name)
        return retired

    async def _drop(self, name: str) -> None:
        """Drop the series and figures of ``name``, a server no longer swept, and publish the
        other servers' without them."""
        if name in self._slots:  # named again meanwhile: its new loop publishes it
            return
        async with self._publishing:
            tables = (
                self._parts,
                self._published,
                self._durations,
                self._problems,
                self._starved,
                self.errors,
            )
            for table in tables:
                table.pop(name, None)
            # Not published since: named again by a later reload, it counts towards a complete
            # sweep only once it publishes again.
            self._round.discard(name)
            parts = [self._parts[s.name] for s in self.servers if s.name in self._parts]
            self._show(await _off_loop(assemble, parts), parts)

    def _begin(self, slot: _Slot) -> None:
        """Start ``slot``'s loop, when `run` runs."""
        if self._group is not None and slot.task is None:
            slot.task = self._group.create_task(
                self._run_server(slot), name=f"vbo_async.serve loop {slot.spec.name}"
            )

    def _announce(self, snapshot: ServerSnapshot) -> None:
        """Log a server going down (or down at the first sweep) and coming back, once each."""
        before = self._problems.get(snapshot.server, None)
        first = snapshot.server not in self._problems
        self._problems[snapshot.server] = snapshot.problem
        if snapshot.problem is not None and (first or before is None):
            log.warning("server %s is down: %s", snapshot.server, snapshot.problem)
        elif snapshot.problem is None and before is not None:
            log.warning("server %s is up again", snapshot.server)

    async def run(self) -> None:
        """Sweep every server on its own schedule (see the module docstring) until cancelled. A
        server's sweep that fails on an internal error is logged and counted; its loop goes on."""
        self.stats.started, self._started_steady = time.time(), time.monotonic()
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group
                for slot in self._slots.values():
                    self._begin(slot)
                await asyncio.Event().wait()  # until cancelled: `reconfigure` may add loops
        finally:
            self._group = None
            for slot in self._slots.values():
                slot.task = None
            self._leaving.clear()

    async def _run_server(self, slot: _Slot) -> None:
        """Sweep ``slot``'s server every interval, its spec read as each sweep starts; sweep at
        once when `reconfigure` changes it, and end once it is removed (its series dropped)."""
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            slot.changed.clear()
            server = slot.spec
            slot.sweeping = True
            try:
                await self.sweep_one(server)
            except Exception:
                self.stats.failed_sweeps += 1
                log.error("the sweep of %s failed on an internal error", server.name, exc_info=True)
            finally:
                slot.sweeping = False
            if slot.removed:
                if self._leaving.get(server.name) is slot:
                    del self._leaving[server.name]
                slot.task = None
                await self._drop(server.name)
                return
            ended = loop.time()
            if ended - started > self.interval:
                self.stats.overruns += 1
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(started + self.interval - ended, self.interval * _MIN_GAP)):
                    await slot.changed.wait()

    def start(self) -> asyncio.Task[None]:
        """Start `run` in a task of the running loop (the first sweeps begin at once)."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop().create_task(self.run(), name="vbo_async.serve loop")
        return self._loop

    async def stop(self) -> None:
        """Cancel the loops and wait for them to stop (the sweeps in progress are abandoned)."""
        task, self._loop = self._loop, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    # --- serving --------------------------------------------------------------------------------------

    def health(self, now: float | None = None) -> tuple[bool, str]:
        """``(healthy, one line)`` as ``/healthz`` answers it: at ``now`` (Unix time, against the
        publishes' Unix times), or, when None, at this moment measured on the monotonic clock,
        which no step of the system clock (an NTP correction) moves."""
        steady = now is None
        now = time.time() if now is None else now
        stats = self.stats
        task = self._loop
        if task is None or task.done():
            return False, "the sweep loop is not running"
        if stats.last_end is None or not self._published:  # none yet, or every server replaced
            if steady:
                began = self._started_steady
                since = time.monotonic() - began if began is not None else 0.0
            else:
                since = now - (stats.started if stats.started is not None else now)
            return False, (
                f"no sweep completed yet (started {since:.0f} s ago; "
                f"{stats.published} of {stats.servers} servers published)"
            )
        if self._starved:
            server, problem = next(iter(self._starved.items()))
            return False, (
                f"out of file descriptors: the last sweep of {server} could not open one ({problem}); "
                "raise the open-file limit (LimitNOFILE=, ulimit -n)"
            )
        published = self._published
        if steady:
            oldest = min(published, key=lambda name: published[name][2])
            age = time.monotonic() - published[oldest][2]
        else:
            oldest = min(published, key=lambda name: published[name][1])
            age = now - stats.last_end
        if age > stats.stale_after:
            periods = (
                f"intervals of {self.interval:g} s"
                if self.budget <= self.interval
                else f"per-server time budgets of {self.budget:g} s (--timeout)"
            )
            rounds = self._rounds()
            if rounds > 1 and self.budget * rounds > self.interval:
                periods = (
                    f"rounds of turns of {rounds} time budgets of {self.budget:g} s "
                    f"({self.turns.at_once} servers at a time)"
                )
            return False, (
                f"the last sweep of {oldest} completed {age:.0f} s ago, "
                f"more than {HEALTHY_INTERVALS} {periods}"
            )
        return True, (
            f"ok: the last sweep completed {age:.0f} s ago; {stats.servers_up} of {stats.servers} servers up"
        )

    def _rounds(self) -> int:
        """How many rounds of turns sweeping every server takes: 1 unless they take turns (40
        servers 10 at a time: 4, a server's turn coming after three others' at the most)."""
        at_once = self.turns.at_once
        return 1 if at_once is None else max(1, -(-len(self.servers) // at_once))

    def _stale_after(self) -> float:
        """How long a server may go unpublished before ``/healthz`` (and the stale alert) says so:
        `HEALTHY_INTERVALS` of the longest a server's sweeps may come apart, the longer of the
        interval and its time budget, or, when servers take turns, of the interval and a budget
        for each round of turns (a server waits for its turn, and its budget starts then: taking
        turns is slower, not wrong; the interval still starts each server's next sweep)."""
        return HEALTHY_INTERVALS * max(self.interval, self.budget * self._rounds())

    def body(self, *, gzip: bool) -> bytes:
        """The body of a ``/metrics`` answer (see `response_body`)."""
        return response_body(self.exposition, generate_latest(self._registry), gzip=gzip)

    def app(self) -> web.Application:
        """The HTTP side: ``/metrics``, ``/healthz`` and an index page at ``/``."""
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/", self._index)
        return app

    async def _metrics(self, request: web.Request) -> web.StreamResponse:
        self.stats.scrapes += 1
        # Both parts are taken here, so a sweep published while the text is decompressed (or the
        # answer sent) cannot mix into this answer.
        exposition, own = self.exposition, generate_latest(self._registry)
        headers = {"Content-Type": CONTENT_TYPE, "Vary": "Accept-Encoding"}
        if accepts_gzip(request.headers.get("Accept-Encoding", "")):
            headers["Content-Encoding"] = "gzip"
            return await _send(request, gzip_parts(exposition, own), headers)
        if request.method == "HEAD":  # the length alone: the exposition knows it, undecompressed
            return await _send(request, (), headers, length=exposition.size + len(own))
        async with self._plain_text(exposition) as text:
            return await _send(request, (text, own), headers)

    @contextlib.asynccontextmanager
    async def _plain_text(self, exposition: Exposition) -> AsyncIterator[bytes]:
        """The text of ``exposition``, decompressed once (in a worker thread: a large one takes a
        while) for every plain scrape sending it at the same time, and let go by the last: slow
        scrapers hold one copy of a body of many MiB between them, not one each."""
        shared = self._text
        if shared is None or shared.exposition is not exposition:
            shared = self._text = _SharedText(exposition)
        shared.users += 1
        try:
            yield await asyncio.shield(shared.text)
        finally:
            shared.users -= 1
            if not shared.users:
                shared.text.cancel()  # when every scrape waiting for it is gone
                if self._text is shared:
                    self._text = None

    async def _healthz(self, request: web.Request) -> web.Response:
        healthy, line = self.health()
        return web.Response(status=200 if healthy else 503, text=line + "\n")

    async def _index(self, request: web.Request) -> web.Response:
        return web.Response(text="vbo-async exporter: /metrics (Prometheus), /healthz (200 while sweeping)\n")


class _Slot:
    """One server's sweep loop in an `Exporter`: the ``spec`` its next sweep uses (a sweep reads
    it as it starts, so `Exporter.reconfigure` changes it between two), whether it is
    ``sweeping``, whether it was ``removed`` (its loop ends after its sweep in progress), and its
    ``task`` while `Exporter.run` runs."""

    def __init__(self, spec: ServerSpec) -> None:
        self.spec = spec
        self.sweeping = False
        self.removed = False
        self.changed = asyncio.Event()
        """Set when ``spec`` changes: the loop waiting for its next sweep sweeps at once."""
        self.task: asyncio.Task[None] | None = None

    def change(self, spec: ServerSpec) -> None:
        """Sweep ``spec`` from the next sweep on, at once (after the sweep in progress, if any)."""
        self.spec = spec
        self.changed.set()


class _SharedText:
    """The text of ``exposition`` (`text`, decompressed in a worker thread), shared by the
    ``users``, the plain scrapes sending it."""

    def __init__(self, exposition: Exposition) -> None:
        self.exposition = exposition
        self.users = 0
        self.text = asyncio.get_running_loop().create_task(
            _off_loop(exposition.text), name="vbo_async.serve plain text"
        )


async def _send(
    request: web.Request, body: Sequence[bytes], headers: dict[str, str], *, length: int | None = None
) -> web.StreamResponse:
    """Answer ``request`` with the ``body`` joined from these parts (its length alone to a HEAD,
    ``length`` when given), a piece at a time and never copied whole, within `SEND_WITHIN`
    seconds; past them, or when the client goes away, the connection is dropped."""
    response = web.StreamResponse(headers=headers)
    response.content_length = sum(map(len, body)) if length is None else length
    try:
        async with asyncio.timeout(SEND_WITHIN):
            await response.prepare(request)
            if request.method != "HEAD":
                for piece in pieces(body, _PIECE):
                    await response.write(piece)
            await response.write_eof()
    except TimeoutError:
        log.debug("a /metrics answer not sent within %g s: its connection is dropped", SEND_WITHIN)
        if request.transport is not None:
            request.transport.abort()
    except ConnectionError:  # the client went away
        pass
    return response


def pieces(parts: Iterable[bytes], size: int) -> Iterator[bytes | memoryview]:
    """The bytes of ``parts`` in order, ``size`` at a time (the last piece fewer): a piece within
    one part is a view of it, never a copy; parts smaller than that (a gzip body's deflate
    segments, one per metric family and server) are joined into one piece."""
    held: list[memoryview] = []
    free = size
    for part in parts:
        view = memoryview(part)
        while view:
            held.append(view[:free])
            free -= len(held[-1])
            view = view[len(held[-1]) :]
            if not free:
                yield held[0] if len(held) == 1 else b"".join(held)
                held, free = [], size
    if held:
        yield held[0] if len(held) == 1 else b"".join(held)


async def _off_loop(call: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """``call(*args, **kwargs)`` in a worker thread of the loop's executor, or on the event loop
    itself when that executor has no thread for it (`NoThread`: `serve`'s threads all held by
    name lookups that never end, or a process limit refusing one): the exporter's own work is
    then slower to do, never left undone."""
    try:
        future = asyncio.get_running_loop().run_in_executor(None, functools.partial(call, *args, **kwargs))
    except NoThread:
        return call(*args, **kwargs)
    return await future


def _bound(at_once: int | None, servers: int) -> int | None:
    """How many of ``servers`` sweep at the same time, ``at_once`` asked for: None when all may."""
    return at_once if at_once is not None and at_once < servers else None
