"""Sweep benchmark: poll_jobs with follow=("repository", "proxy") versus a raw httpx sweep, over loopback."""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass, field

import httpx
import orjson
from _common import Table, fmt_ratio, fmt_seconds
from _server import Server, ServerConfig, serve

from vbo_async import PollTarget, VBOClient, poll_jobs

__all__ = ["Outcome", "Runner", "poll_sweep", "raw_sweep", "run"]

PASSWORD_FORM = {"grant_type": "password", "username": "admin", "password": "admin"}
FOLLOW = ("repository", "proxy")


@dataclass
class Outcome:
    """One sweep: wall seconds, requests the server saw, jobs listed and links resolved."""

    seconds: float
    requests: int
    jobs: int
    resolved: int


async def poll_sweep(
    server: Server, org_ids: list[str], *, concurrency: int, max_concurrency: int
) -> Outcome:
    """Every job of every organization, its repository and proxy resolved, with `poll_jobs`.
    A fresh client: the token request and the connections are part of the sweep."""
    started = time.perf_counter()
    jobs = resolved = 0
    async with VBOClient(  # v1, as the raw sweep (the default "auto" would speak v8)
        server.base_url, username="admin", password="admin", api_version="v1", max_concurrency=max_concurrency
    ) as vbo:
        targets = [PollTarget(client=vbo, organization_id=org_id) for org_id in org_ids]
        async with poll_jobs(targets, concurrency=concurrency, follow=FOLLOW) as results:
            async for result in results:
                if result.error is not None:
                    raise result.error
                if result.link_errors:
                    raise next(iter(result.link_errors.values()))
                for job in result.jobs:
                    jobs += 1
                    resolved += sum(result.resolved(job, relation) is not None for relation in FOLLOW)
    return Outcome(time.perf_counter() - started, 0, jobs, resolved)


async def raw_sweep(server: Server, org_ids: list[str], *, concurrency: int) -> Outcome:
    """The same sweep by hand: ``asyncio.gather`` over organizations, a semaphore of ``concurrency``
    around every request (and a pool of as many connections), each job's repository and proxy href
    rewritten to the server and fetched, no sharing of identical requests."""
    started = time.perf_counter()
    base = server.base_url
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60.0) as http:
        token = orjson.loads((await http.post("/v1/Token", data=PASSWORD_FORM)).content)
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        semaphore = asyncio.Semaphore(concurrency)

        async def get(url: str) -> object:
            async with semaphore:
                response = await http.get(url, headers=headers)
            response.raise_for_status()
            return orjson.loads(response.content)

        def local(href: str) -> str:
            return base + href[href.index("/v1/") :]

        async def organization(org_id: str) -> tuple[int, int]:
            jobs = await get(f"/v1/Organizations/{org_id}/Jobs")
            assert isinstance(jobs, list)
            linked = await asyncio.gather(
                *(get(local(job["_links"][relation]["href"])) for job in jobs for relation in FOLLOW)
            )
            return len(jobs), len(linked)

        counts = await asyncio.gather(*(organization(org_id) for org_id in org_ids))
    return Outcome(time.perf_counter() - started, 0, sum(j for j, _ in counts), sum(r for _, r in counts))


@dataclass
class Runner:
    """Runs named sweeps against one server in interleaved rounds, counting requests at the server."""

    server: Server
    outcomes: dict[str, list[Outcome]] = field(default_factory=dict)

    def once(
        self, name: str, org_ids: list[str], *, concurrency: int, max_concurrency: int | None
    ) -> Outcome:
        self.server.reset()
        if max_concurrency is None:
            outcome = asyncio.run(raw_sweep(self.server, org_ids, concurrency=concurrency))
        else:
            outcome = asyncio.run(
                poll_sweep(self.server, org_ids, concurrency=concurrency, max_concurrency=max_concurrency)
            )
        outcome.requests = self.server.requests()
        self.outcomes.setdefault(name, []).append(outcome)
        return outcome

    def median(self, name: str) -> float:
        return statistics.median(o.seconds for o in self.outcomes[name])

    def ratio(self, name: str, baseline: str) -> float:
        """Median over rounds of this sweep's time over the baseline's in the same round."""
        return statistics.median(
            a.seconds / b.seconds for a, b in zip(self.outcomes[name], self.outcomes[baseline], strict=True)
        )


def _name(concurrency: int, max_concurrency: int | None) -> str:
    if max_concurrency is None:
        return f"raw httpx sweep, concurrency {concurrency}"
    return f"poll_jobs concurrency={concurrency}, max_concurrency={max_concurrency}"


def run(*, smoke: bool) -> list[str]:
    """Print the sweep table; return the verdicts."""
    organizations = 20 if smoke else 500
    rounds = 1 if smoke else 3
    concurrencies = (10, 50)
    plan = [(c, None) for c in concurrencies] + [(c, m) for c in concurrencies for m in (10, 50)]
    config = ServerConfig(organizations=organizations)
    with serve(config) as server:
        runner = Runner(server)
        asyncio.run(raw_sweep(server, server.organization_ids[:5], concurrency=5))  # warm the server
        for number in range(rounds):
            order = plan[number % len(plan) :] + plan[: number % len(plan)]
            for concurrency, max_concurrency in order:
                runner.once(
                    _name(concurrency, max_concurrency),
                    server.organization_ids,
                    concurrency=concurrency,
                    max_concurrency=max_concurrency,
                )
    first = runner.outcomes[_name(10, None)][0]
    table = Table(
        f"Sweep of {organizations} organizations ({first.jobs} jobs, {config.repositories} repositories, "
        f"{config.proxies} proxies), every job's repository and proxy resolved; loopback uvicorn "
        f"simulator in its own process; medians of {rounds} interleaved rounds",
        [
            "sweep",
            "requests at the server",
            "wall time",
            "per organization",
            "wall time per request",
            "× raw sweep at same concurrency",
        ],
    )
    for concurrency, max_concurrency in plan:
        name = _name(concurrency, max_concurrency)
        outcomes = runner.outcomes[name]
        assert all(o.jobs == first.jobs and o.resolved == 2 * first.jobs for o in outcomes), name
        seconds = runner.median(name)
        requests = statistics.median(o.requests for o in outcomes)
        table.add(
            name,
            f"{requests:,.0f}",
            fmt_seconds(seconds),
            fmt_seconds(seconds / organizations),
            fmt_seconds(seconds / requests),
            fmt_ratio(runner.ratio(name, _name(concurrency, None))),
        )
    table.notes.append(
        "Requests are counted by the simulator (token request included). The raw sweep parses with "
        "orjson into dicts and builds no models; poll_jobs decodes every job, repository and proxy into "
        "models and fetches each distinct link URL once. poll_jobs lists a server's jobs once when a "
        "sweep covers many of its tenants (batched sweeps, `BATCH_MIN_TENANTS`), and sends its "
        "requests through aiohttp; the raw sweep is httpx over httpcore with sniffio installed."
    )
    table.print()
    verdicts = []
    for concurrency in concurrencies:
        best = min((10, 50), key=lambda m: runner.median(_name(concurrency, m)))
        ratio = runner.ratio(_name(concurrency, best), _name(concurrency, None))
        other = 50 if best == 10 else 10
        pool = runner.ratio(_name(concurrency, other), _name(concurrency, best))
        verdicts.append(
            f"sweep {organizations} orgs at concurrency {concurrency}: poll_jobs (max_concurrency={best}) "
            f"takes {fmt_ratio(ratio)} the raw sweep's time; max_concurrency={other} takes {fmt_ratio(pool)} "
            f"max_concurrency={best}'s → {'MET' if ratio < 1 else 'NOT MET'} (goal: faster than raw)"
        )
    for line in verdicts:
        print("*", line)
    print()
    return verdicts
