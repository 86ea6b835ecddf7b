"""The exporter behind ``vbo-async serve``: a sweep loop and a small aiohttp server.

Scheduling: the loop sweeps every server at once (each within its time budget), renders the
exposition in a worker thread and publishes it in one assignment; then it sleeps until
``interval`` seconds after that sweep *started*, and at least ``interval / 10`` after it *ended*.
Sweeps therefore never overlap and never pile up: one slower than the interval is followed by
the next one after the short gap, not by a burst of catching up.

``/metrics`` answers the last published exposition and the exporter's own metrics; it never
sends a request to a VBO server, so scrapers, however many, cost the backup servers nothing.
``/healthz`` answers 200 while the loop runs and has published a sweep within three intervals,
503 with a one-line reason otherwise. A per-server time budget (``--timeout``) longer than the
interval lengthens that to three budgets: a sweep waiting one out on a hanging server is the loop
working as configured, not a stale one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from aiohttp import web
from prometheus_client import generate_latest
from prometheus_client.exposition import gzip_accepted

from .._health import HealthPolicy
from ._exposition import CONTENT_TYPE, EMPTY, Exposition, LoopStats, own_registry, render, response_body
from ._metrics import ERROR_KINDS
from ._sweeps import ServerSnapshot, ServerSpec, sweep_server

__all__ = ["HEALTHY_INTERVALS", "Exporter"]

log = logging.getLogger("vbo_async.cli")

HEALTHY_INTERVALS = 3
"""``/healthz`` fails when no sweep was published for this many intervals (or per-server time
budgets, when those are longer)."""
_MIN_GAP = 0.1
"""The shortest pause after a sweep, as a share of the interval."""


class Exporter:
    """Sweeps ``servers`` every ``interval`` seconds and serves the result over HTTP (`app`).

    ``budget`` is the seconds one server's sweep may take (the interval when None); a server
    over it is down for that sweep. ``concurrency`` is `poll_jobs`'s, per server. The exporter
    owns no client: whoever built the `ServerSpec` objects closes them.
    """

    def __init__(
        self,
        servers: Sequence[ServerSpec],
        *,
        interval: float,
        budget: float | None = None,
        policy: HealthPolicy | None = None,
        concurrency: int = 8,
    ) -> None:
        self.servers = tuple(servers)
        self.interval = interval
        self.budget = interval if budget is None else budget
        self.policy = policy if policy is not None else HealthPolicy()
        self.concurrency = concurrency
        self.stats = LoopStats(
            servers=len(self.servers),
            interval=interval,
            stale_after=HEALTHY_INTERVALS * max(interval, self.budget),
        )
        self.exposition: Exposition = EMPTY
        self.errors: dict[str, dict[str, int]] = {s.name: dict.fromkeys(ERROR_KINDS, 0) for s in self.servers}
        self._registry = own_registry(self.stats)
        self._problems: dict[str, str | None] = {}
        self._loop: asyncio.Task[None] | None = None

    # --- sweeping -------------------------------------------------------------------------------------

    async def sweep(self) -> list[ServerSnapshot]:
        """Sweep every server once, render and publish; returns the snapshots."""
        began = time.perf_counter()
        self.stats.in_progress = True
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [
                    group.create_task(
                        sweep_server(
                            server, policy=self.policy, budget=self.budget, concurrency=self.concurrency
                        ),
                        name=f"vbo_async.serve {server.name}",
                    )
                    for server in self.servers
                ]
            snapshots = [task.result() for task in tasks]
            for snapshot in snapshots:
                totals = self.errors[snapshot.server]
                for kind, count in snapshot.errors.items():
                    totals[kind] += count
                self._announce(snapshot)
            errors = {server: dict(kinds) for server, kinds in self.errors.items()}
            rendering = time.perf_counter()
            exposition = await asyncio.to_thread(render, snapshots, errors)
            rendered = time.perf_counter()
        finally:
            self.stats.in_progress = False
        self.exposition = exposition
        stats = self.stats
        stats.sweeps += 1
        stats.last_end = time.time()
        stats.last_duration = rendered - began
        stats.last_render = rendered - rendering
        stats.servers_up = sum(snapshot.up for snapshot in snapshots)
        stats.jobs = sum(snapshot.jobs for snapshot in snapshots)
        stats.exposition_bytes = exposition.size
        log.info(
            "sweep %d: %d of %d servers up, %d jobs, %.1f s (rendering %.1f s)",
            stats.sweeps,
            stats.servers_up,
            stats.servers,
            stats.jobs,
            stats.last_duration,
            stats.last_render,
        )
        return snapshots

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
        """Sweep on the schedule (see the module docstring) until cancelled. A sweep that fails
        on an internal error is logged and counted; the loop goes on."""
        loop = asyncio.get_running_loop()
        self.stats.started = time.time()
        while True:
            started = loop.time()
            try:
                await self.sweep()
            except Exception:
                self.stats.failed_sweeps += 1
                log.error("the sweep failed on an internal error", exc_info=True)
            ended = loop.time()
            if ended - started > self.interval:
                self.stats.overruns += 1
            await asyncio.sleep(max(started + self.interval - ended, self.interval * _MIN_GAP))

    def start(self) -> asyncio.Task[None]:
        """Start `run` in a task of the running loop (the first sweep begins at once)."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop().create_task(self.run(), name="vbo_async.serve loop")
        return self._loop

    async def stop(self) -> None:
        """Cancel the loop and wait for it to stop (a sweep in progress is abandoned)."""
        task, self._loop = self._loop, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    # --- serving --------------------------------------------------------------------------------------

    def health(self, now: float | None = None) -> tuple[bool, str]:
        """``(healthy, one line)`` as ``/healthz`` answers it."""
        now = time.time() if now is None else now
        stats = self.stats
        task = self._loop
        if task is None or task.done():
            return False, "the sweep loop is not running"
        if stats.last_end is None:
            since = now - (stats.started if stats.started is not None else now)
            return False, f"no sweep completed yet (started {since:.0f} s ago)"
        age = now - stats.last_end
        if age > stats.stale_after:
            periods = (
                f"intervals of {self.interval:g} s"
                if self.budget <= self.interval
                else f"per-server time budgets of {self.budget:g} s (--timeout)"
            )
            return False, f"the last sweep completed {age:.0f} s ago, more than {HEALTHY_INTERVALS} {periods}"
        return True, (
            f"ok: the last sweep completed {age:.0f} s ago; {stats.servers_up} of {stats.servers} servers up"
        )

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

    async def _metrics(self, request: web.Request) -> web.Response:
        self.stats.scrapes += 1
        compressed = gzip_accepted(request.headers.get("Accept-Encoding", ""))
        if compressed:
            body = self.body(gzip=True)
        else:  # decompressing a large exposition takes a while: not on the event loop, but both
            # parts are taken here, so a sweep published meanwhile cannot mix into this answer
            exposition, own = self.exposition, generate_latest(self._registry)
            body = await asyncio.to_thread(response_body, exposition, own, gzip=False)
        headers = {"Content-Type": CONTENT_TYPE, "Vary": "Accept-Encoding"}
        if compressed:
            headers["Content-Encoding"] = "gzip"
        return web.Response(body=body, headers=headers)

    async def _healthz(self, request: web.Request) -> web.Response:
        healthy, line = self.health()
        return web.Response(status=200 if healthy else 503, text=line + "\n")

    async def _index(self, request: web.Request) -> web.Response:
        return web.Response(text="vbo-async exporter: /metrics (Prometheus), /healthz (200 while sweeping)\n")
