"""Tenants per second of client CPU: one process sweeping 1, 2 and 3 simulators of 300 tenants each.

Issue 12's goal 3: one process sweeping 3 simulators × 300 tenants, each simulator in its own
process, at ≥ 5,000 tenants per second of client CPU (about 450 at 2ff99dd). Each candidate runs in
a long-lived child (`_sweeper`), this checkout's or the 2ff99dd baseline's (`_baseline`), which
times every sweep with its own ``time.process_time()``: the client's CPU alone. A sweep builds one
client per server (API version pinned, a shared TLS context), polls every tenant of the servers
it is given with ``follow=("repository", "proxy")`` (as issue 12 measured 2ff99dd; two rows
without, to show what following costs), and closes them;
rounds interleave every candidate and number of servers in rotated order; values are medians.
"""

from __future__ import annotations

import contextlib
import json
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _baseline import BASELINE, BaselineUnavailable, baseline_python
from _common import Table, fmt_ratio, is_this_checkout
from _server import Server, ServerConfig, serve

__all__ = ["run"]

SWEEPER = Path(__file__).resolve().parent / "_sweeper.py"
FOLLOW = ("repository", "proxy")
GOAL = 5000.0
"""Tenants per second of client CPU, 3 servers × 300 tenants (issue 12, goal 3)."""
OLD = f"{BASELINE} poll_jobs, v1 (a request per tenant)"


@dataclass(frozen=True)
class Candidate:
    name: str
    old: bool
    api_version: str
    options: tuple[tuple[str, Any], ...] = ()

    def command(self, servers: list[Server], organizations: int) -> dict[str, Any]:
        return {
            "servers": [server.base_url for server in servers],
            "organizations": [server.organization_ids[:organizations] for server in servers],
            "api_version": self.api_version,
            "follow": list(FOLLOW),
            **{key: list(value) if key == "follow" else value for key, value in self.options},
        }

    @property
    def health(self) -> bool:
        return bool(dict(self.options).get("health"))


CANDIDATES = [
    Candidate(OLD, True, "v1"),
    Candidate("poll_jobs v1, batch=False (a request per tenant)", False, "v1", (("batch", False),)),
    Candidate("poll_jobs v1, batched", False, "v1", (("batch", True),)),
    Candidate("poll_jobs v1, batched, no follow", False, "v1", (("batch", True), ("follow", ()))),
    Candidate("poll_jobs v1, batched, health", False, "v1", (("batch", True), ("health", True))),
    Candidate("poll_jobs v8, batch=False (a request per tenant)", False, "v8", (("batch", False),)),
    Candidate("poll_jobs v8, batched", False, "v8", (("batch", True),)),
    Candidate("poll_jobs v8, batched, no follow", False, "v8", (("batch", True), ("follow", ()))),
    Candidate("poll_jobs v8, batched, health", False, "v8", (("batch", True), ("health", True))),
]


class Worker:
    """A `_sweeper` child: this checkout's interpreter, or the baseline's."""

    def __init__(self, python: Path, *, old: bool) -> None:
        self._child = subprocess.Popen(
            [str(python), str(SWEEPER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
            cwd=SWEEPER.parent,
        )
        package = str(self._read()["package"])
        if is_this_checkout(package) == old:
            raise RuntimeError(f"the {'baseline' if old else 'checkout'} sweeper imported {package}")

    def _read(self) -> dict[str, Any]:
        assert self._child.stdout is not None
        line = self._child.stdout.readline()
        if not line:
            raise RuntimeError(f"the sweeper child stopped (status {self._child.wait()})")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def sweep(self, command: dict[str, Any]) -> dict[str, Any]:
        assert self._child.stdin is not None
        self._child.stdin.write(json.dumps(command) + "\n")
        self._child.stdin.flush()
        return self._read()

    def close(self) -> None:
        assert self._child.stdin is not None
        self._child.stdin.close()
        try:
            self._child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._child.kill()
            self._child.wait()
        if self._child.stdout is not None:
            self._child.stdout.close()


@dataclass
class Runner:
    servers: list[Server]
    organizations: int
    workers: dict[bool, Worker]
    samples: dict[tuple[str, int], list[dict[str, Any]]] = field(default_factory=dict)

    def once(self, candidate: Candidate, count: int, *, record: bool = True) -> dict[str, Any]:
        servers = self.servers[:count]
        for server in servers:
            server.reset()
        result = self.workers[candidate.old].sweep(candidate.command(servers, self.organizations))
        result["server_requests"] = sum(server.requests() for server in servers)
        tenants = count * self.organizations
        if result["tenants"] != tenants or result["failed"]:
            raise RuntimeError(
                f"{candidate.name}, {count} servers: {result['tenants']} of {tenants} tenants, "
                f"{result['failed']} failed ({result['error']})"
            )
        if candidate.health and result["judged"] != result["jobs"]:
            raise RuntimeError(f"{candidate.name}: {result['judged']} of {result['jobs']} jobs judged")
        if record:
            self.samples.setdefault((candidate.name, count), []).append(result)
        return result

    def median(self, name: str, count: int, key: str) -> float:
        return statistics.median(sample[key] for sample in self.samples[(name, count)])

    def rate(self, name: str, count: int) -> float:
        """Tenants per second of client CPU (median over rounds)."""
        return statistics.median(s["tenants"] / s["cpu"] for s in self.samples[(name, count)])

    def ratio(self, name: str, baseline: str, count: int) -> float:
        """Median over rounds of this candidate's tenants/s over the baseline's in the same round."""
        pairs = zip(self.samples[(name, count)], self.samples[(baseline, count)], strict=True)
        return statistics.median(b["cpu"] / a["cpu"] for a, b in pairs)


def run(*, smoke: bool) -> list[str]:
    """Print the tenants-per-second tables; return the verdicts."""
    organizations = 10 if smoke else 300
    rounds = 1 if smoke else 5
    counts = (1, 2, 3)
    try:
        old_python: Path | None = baseline_python()
        unavailable = ""
    except BaselineUnavailable as exc:
        old_python, unavailable = None, str(exc)
        print(f"(no {BASELINE} baseline: {exc})\n")
    candidates = [c for c in CANDIDATES if old_python is not None or not c.old]
    with contextlib.ExitStack() as stack:
        servers = [
            stack.enter_context(
                serve(ServerConfig(organizations=organizations, seed=seed, repositories=3, proxies=2))
            )
            for seed in range(max(counts))
        ]
        workers = {False: Worker(Path(sys.executable), old=False)}
        stack.callback(workers[False].close)
        if old_python is not None:
            workers[True] = Worker(old_python, old=True)
            stack.callback(workers[True].close)
        runner = Runner(servers, organizations, workers)
        for candidate in candidates:  # warms the simulators and the children
            runner.once(candidate, max(counts), record=False)
        plan = [(candidate, count) for candidate in candidates for count in counts]
        for number in range(rounds):
            start = (number * len(counts) + number) % len(plan)
            for candidate, count in plan[start:] + plan[:start]:
                runner.once(candidate, count)

    most = max(counts)
    tenants = most * organizations
    jobs = int(runner.median(candidates[-1].name, most, "jobs"))
    main = Table(
        f"One process sweeping {most} simulators × {organizations} tenants ({tenants:,} tenants, {jobs:,} "
        f"jobs), follow=('repository', 'proxy') unless said; client CPU of the sweeping process, "
        f"medians of {rounds} interleaved rounds",
        [
            "sweep",
            "requests",
            "wall",
            "client CPU",
            "client CPU per tenant",
            "tenants/s of client CPU",
            f"× {BASELINE}'s tenants/s",
        ],
    )
    for candidate in candidates:
        name = candidate.name
        cpu = runner.median(name, most, "cpu")
        main.add(
            name,
            f"{runner.median(name, most, 'server_requests'):,.0f}",
            f"{runner.median(name, most, 'wall'):.3f} s",
            f"{cpu:.3f} s",
            f"{cpu / tenants * 1e6:,.0f} µs",
            f"{runner.rate(name, most):,.0f}",
            fmt_ratio(runner.ratio(name, OLD, most)) if old_python is not None else "n/a",
        )
    command = "python bench/run.py tenants" + (" --smoke" if smoke else "")
    main.notes.append(
        f"Command: `{command}`. Simulators: bench/_server.py, one process each, {organizations} "
        "organizations (seeds 0, 1, 2; 3 repositories and 2 proxies each), serving v1, v6, v7 and v8; "
        "each client pins its API version. Requests are counted by the simulators. batched: "
        "`poll_jobs(..., batch=True)` (what the default does for 8 tenants or more of one server, when they "
        "are at least 5% of its organizations); "
        "health: `health=HealthPolicy()`; no follow: `follow=()`. A v8 repository in a proxy pool has "
        "no proxy link, so some jobs' `proxy` ends in `result.link_errors` (not a failure). The "
        f"{BASELINE} baseline runs the same sweep in its own venv (bench/_baseline.py)."
        + (f" No {BASELINE} rows: {unavailable}" if unavailable else "")
    )
    main.print()

    by_servers = Table(
        f"Tenants per second of client CPU against the number of servers swept by one process "
        f"({organizations} tenants each; wall time in brackets)",
        ["sweep", *(f"{count} server{'s' if count > 1 else ''}" for count in counts)],
    )
    for candidate in candidates:
        by_servers.add(
            candidate.name,
            *(
                f"{runner.rate(candidate.name, count):,.0f} "
                f"({runner.median(candidate.name, count, 'wall'):.2f} s)"
                for count in counts
            ),
        )
    by_servers.print()

    verdicts = []
    for candidate in candidates:
        if candidate.old or "batched" not in candidate.name:
            continue
        rate = runner.rate(candidate.name, most)
        verdicts.append(
            f"{candidate.name}, {most} servers × {organizations} tenants: {rate:,.0f} tenants/s of client "
            f"CPU; goal ≥ {GOAL:,.0f} → {'MET' if rate >= GOAL else 'NOT MET'}"
        )
    for line in verdicts:
        print("*", line)
    print()
    return verdicts
