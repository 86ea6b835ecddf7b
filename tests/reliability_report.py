"""Reliability figures for ``docs/reliability.md``: the soak over real sockets, and the hostile servers.

Run from the repository root (the test extra installed)::

    python -m tests.reliability_report                    # 200 tenants x 10 rounds, about 45 s
    python -m tests.reliability_report --tenants 500 --rounds 20 --output /tmp/figures.md

It runs the same code as ``tests/test_soak.py`` (`run_soak`: over uvicorn on 127.0.0.1, then
in-process through the ASGI transport), every scenario of ``tests/test_hostile.py``, and round two
of the hostile servers: the bombs, bodies, pages and listings of ``tests/test_hostile_bodies.py``,
the hostile tenants in sweeps of ``tests/test_hostile_sweeps.py`` and the fuzzing of
``tests/test_fuzz_servers.py`` (its CI examples, then ``--fuzz-examples`` fresh ones). It prints the
figures as Markdown (and writes them to ``--output``), and exits 1 if any promise was broken.
Timings are printed for information only.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import os
import platform
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

from tests import test_fuzz_servers as fuzz
from tests import test_hostile_bodies as bodies
from tests import test_hostile_sweeps as sweeps
from tests.bombs import BOMBS
from tests.test_hostile import Outcome, all_scenarios
from tests.test_soak import FAULTS, MAX_CONCURRENCY, MAX_CONNECTIONS, RETRY, SoakFigures, run_soak
from vbo_async._client import DEFAULT_MAX_PAGE_ITEMS

FAULT_NAMES = {
    "error": "500/502/503",
    "rate_limit": "429 + Retry-After",
    "drop": "connection dropped mid-body",
    "truncate": "body cut short",
    "latency_spike": "latency spike (+50 ms)",
    "revoke": "all tokens revoked",
}
OUTCOME_FAULTS = ("error", "rate_limit", "drop", "truncate")


def _n(value: int | float) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:,.1f}"


def _revision() -> str:
    root = Path(__file__).resolve().parents[1]
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{rev}{' + uncommitted changes' if dirty else ''}"


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{platform.system()} {platform.release()} {platform.machine()}, {os.cpu_count()} CPUs"
        f"{f' ({model})' if model else f' ({cpu})'}, Python {platform.python_version()}, "
        f"httpx {version('httpx')}, uvicorn {version('uvicorn')}, h11 {version('h11')}"
    )


def _levels(counts: dict[str, int]) -> str:
    return ", ".join(f"{level} {_n(count)}" for level, count in sorted(counts.items()))


def soak_section(figures: SoakFigures) -> list[str]:
    faults = figures.faults
    outcome_faults = sum(faults.get(kind, 0) for kind in OUTCOME_FAULTS)
    failed = figures.actions_failed
    memory = figures.memory_after_round
    growth = figures.memory_growth
    verdict = "every promise held" if not figures.problems else f"BROKEN: {'; '.join(figures.problems[:5])}"
    rows = [
        ("Transport", figures.transport),
        (
            "Tenants × rounds",
            f"{figures.tenants} × {figures.rounds} (`poll_jobs`, concurrency 16, follow repository, proxy)",
        ),
        (
            "Jobs per round (wire bytes per round)",
            f"{_n(figures.jobs_per_round)} ({_n(figures.wire_bytes_per_round)} B)",
        ),
        (
            "Requests: server saw / client attempts",
            f"{_n(figures.server_requests)} / {_n(figures.client_attempts)}",
        ),
        (
            "Token requests (by grant)",
            ", ".join(f"{k} {v}" for k, v in sorted(figures.token_requests.items())),
        ),
        (
            "Faults injected",
            ", ".join(f"{FAULT_NAMES.get(k, k)}: {_n(v)}" for k, v in faults.items())
            + f" — {_n(outcome_faults)} spoiled answers in all",
        ),
        ("401 answers (revoked tokens), each renewed and replayed", _n(figures.unauthorized)),
        ("Spoiled answers survived by retrying (GETs, token requests)", _n(figures.retries)),
        (
            "Spoiled answers that hit a job action (never retried)",
            _n(outcome_faults - figures.retries),
        ),
        (
            "Jobs returned / expected (equal field by field)",
            f"{_n(figures.jobs_returned)} / {_n(figures.jobs_expected)} ({_n(figures.jobs_exact)})",
        ),
        (
            "Tenant errors / link errors / wrong prefetched links",
            f"{figures.tenant_errors} / {figures.link_errors} / {figures.links_wrong}"
            f" ({_n(figures.links_prefetched)} links prefetched)",
        ),
        (
            "Job actions sent / succeeded / failed",
            f"{figures.actions_sent} / {figures.actions_succeeded} / "
            f"{sum(failed.values())} ({', '.join(f'{k} {v}' for k, v in failed.items()) or 'none'})",
        ),
        (
            "Job actions applied (by the simulator's count)",
            f"{figures.actions_applied}: every success once ({figures.actions_succeeded_unapplied} not), "
            f"{figures.actions_applied_despite_error} failed calls applied once, "
            f"{figures.actions_applied_twice} applied twice",
        ),
        ("Tasks left after a round (max)", str(figures.leftover_tasks)),
        (
            "Connections: client pool max / server max / pool after `aclose()` / server after `aclose()`",
            f"{figures.max_pool_connections} / {figures.max_server_connections} / "
            f"{figures.pool_connections_after_close} / {figures.server_connections_after_close} "
            f"(bound {MAX_CONNECTIONS} = max_concurrency {MAX_CONCURRENCY} + 1 for the token request)",
        ),
        ("Sockets left open after the run", str(figures.sockets_leaked)),
        (
            "Traced memory after round 2 → last round (growth / bound)",
            f"{_n(memory[1] if len(memory) > 1 else 0)} B → {_n(memory[-1] if memory else 0)} B "
            f"({_n(growth or 0)} B / {_n(figures.memory_bound)} B)",
        ),
        (
            "Log records scanned (all loggers, DEBUG and up) / other texts scanned",
            f"{_n(figures.log_records)} ({_levels(figures.log_records_by_level)})"
            f" / {_n(figures.texts_scanned)}",
        ),
        (
            "Secrets found (password + every issued token)",
            f"**{len(figures.secrets_found)}** (the password and {figures.tokens_issued} tokens looked for)",
        ),
        ("Elapsed (information only)", f"{figures.elapsed:.1f} s"),
        ("Verdict", verdict),
    ]
    lines = [
        f"### Soak: {figures.tenants} tenants × {figures.rounds} rounds, 20 % faults, {figures.transport}",
        "",
        "| Measure | Value |",
        "|---|---|",
        *(f"| {name} | {value} |" for name, value in rows),
        "",
    ]
    return lines


def _fact(value: Any) -> str:
    if isinstance(value, BaseException):
        return type(value).__name__
    if isinstance(value, int) and not isinstance(value, bool) and value >= 10_000:
        return _n(value)
    return str(value)


def hostile_section(outcomes: list[Outcome], *, title: str = "Hostile servers") -> list[str]:
    lines = [
        f"### {title}",
        "",
        "| Scenario | Expected | Raised | Facts | Secret in error |",
        "|---|---|---|---|---|",
    ]
    for outcome in outcomes:
        facts = ", ".join(f"{key}={_fact(value)}" for key, value in outcome.facts.items())
        ok = "" if outcome.raised == outcome.expected else " **(unexpected)**"
        lines.append(
            f"| {outcome.scenario} | {outcome.expected} | {outcome.raised}{ok} | {facts} | "
            f"{'**yes**' if outcome.secret_leaked else 'no'} |"
        )
    lines.append("")
    return lines


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):,.1f} MiB"


async def bomb_section(folder: Path) -> tuple[list[str], list[str]]:
    """The bombs of `bodies.BOMB_NAMES` over uvicorn and through ``MockTransport`` (traced peak),
    and in a process of their own (peak RSS growth): (Markdown, broken promises)."""
    broken: list[str] = []
    lines = [
        "### Hostile servers, round two: compression bombs (1 GiB of zeros each)",
        "",
        f"Client `max_response_bytes` = {_mib(bodies.LIMIT)}; bound on every peak: {_mib(bodies.PEAK)}.",
        "",
        "| `Content-Encoding` | Wire bytes | uvicorn: raised, peak traced "
        "| MockTransport: raised, peak traced | Own process: raised, peak RSS growth |",
        "|---|---|---|---|---|",
    ]
    for name in bodies.BOMB_NAMES:
        header = BOMBS[name][0]
        socket = await bodies.scenario_bomb_over_a_socket(name)
        mock = await bodies.scenario_bomb_in_process(name)
        rss: dict[str, Any] = (
            bodies.bomb_rss(name, folder) if bodies.HAS_PEAK_RESET else {"raised": "n/a", "rss_growth": 0}
        )
        for where, raised, peak in (
            ("uvicorn", socket.raised, socket.facts["peak_traced_bytes"]),
            ("MockTransport", mock.raised, mock.facts["peak_traced_bytes"]),
            ("own process", rss["raised"], rss["rss_growth"]),
        ):
            if raised not in ("ResponseTooLargeError", "n/a") or peak >= bodies.PEAK:
                broken.append(f"bomb {header} ({where}): {raised}, {peak} B")
        socket_peak, mock_peak = socket.facts["peak_traced_bytes"], mock.facts["peak_traced_bytes"]
        lines.append(
            f"| `{header}` | {_n(socket.facts['wire_bytes'])} | {socket.raised}, {_mib(socket_peak)} "
            f"| {mock.raised}, {_mib(mock_peak)} | {rss['raised']}, {_mib(rss['rss_growth'])} |"
        )
    lines.append("")
    return lines, broken


async def body_outcomes() -> list[Outcome]:
    """The other round-two body scenarios: 401 and error pages that never end, bombed error pages
    and token answers, an endless listing, page loops behind query noise."""
    outcomes = [await bodies.scenario_401_with_an_endless_body(name) for name in bodies.TRANSPORTS]
    outcomes += [
        await bodies.scenario_endless_error_page(where, status) for where, status in bodies.ERROR_PAGES
    ]
    outcomes += [
        await bodies.scenario_bombed_error_page(where, status)
        for where, status in (("api", 500), ("api", 401), ("token", 400), ("token", 200))
    ]
    outcomes.append(await bodies.scenario_endless_listing())
    outcomes += [await bodies.scenario_page_loop(noise) for noise in bodies.NOISE]
    return outcomes


def tiny_items_section() -> tuple[list[str], list[str]]:
    """A page of a million ``{"id":"x"}`` in a process of its own, refused and accepted."""
    broken: list[str] = []
    lines = [
        f'### A page of {_n(bodies.MILLION)} tiny items (`{{"id":"x"}}`), in a process of its own',
        "",
        "| `max_page_items` | Raised | Body | Peak RSS growth | × body |",
        "|---|---|---|---|---|",
    ]
    for limit, expected in (("", "DecodeError"), (str(2 * bodies.MILLION), "nothing")):
        if not bodies.HAS_PEAK_RESET:
            break
        found = bodies.in_subprocess("measure_tiny_items", str(bodies.MILLION), limit)
        ratio = found["rss_growth"] / found["body_bytes"]
        if found["raised"] != expected or (expected != "nothing" and ratio >= bodies.TINY_ITEMS_RSS_FACTOR):
            broken.append(f"tiny items, max_page_items={limit or 'default'}: {found}")
        message = f" ({found['message'].split(' (')[0]})" if found["raised"] != "nothing" else ""
        shown = _n(int(limit)) if limit else f"{_n(DEFAULT_MAX_PAGE_ITEMS)} (default)"
        lines.append(
            f"| {shown} | {found['raised']}{message} "
            f"| {_n(found['body_bytes'])} B | {_mib(found['rss_growth'])} | {ratio:.1f} |"
        )
    lines.append("")
    return lines, broken


async def sweep_section() -> tuple[list[str], list[str]]:
    """Every hostile tenant of `sweeps.HOSTILE_TENANTS`, per tenant and batched, and the tiny
    token lifetime."""
    seed_job = json.loads((Path(__file__).parent / "data" / "seed-job.json").read_text(encoding="utf-8"))[0]
    broken: list[str] = []
    lines = [
        "### Hostile tenants in a sweep (one hostile server, three healthy tenants on the simulator)",
        "",
        "| Hostile tenant | Mode | Expected | Its result "
        "| Healthy tenants: delivered exactly / expected | Tasks left |",
        "|---|---|---|---|---|---|",
    ]
    completed = 0
    for name, (_, expected) in sweeps.HOSTILE_TENANTS.items():
        for batch in (False, True):
            swept = await sweeps.scenario_sweep(name, seed_job, batch=batch)
            exact = sum(
                swept.results[org].error is None
                and sorted(job.id for job in swept.results[org].jobs) == job_ids
                for org, job_ids in swept.expected.items()
            )
            try:
                swept.check()
            except AssertionError as problem:
                broken.append(f"sweep {name} ({'batched' if batch else 'per tenant'}): {problem}")
            else:
                completed += 1
            outcome = swept.hostile_outcome
            mark = "" if outcome == expected else " **(unexpected)**"
            if mark:
                broken.append(f"sweep {name}: {outcome}, expected {expected}")
            lines.append(
                f"| {name.replace('|', '&#124;')} | {'batched' if batch else 'per tenant'} | {expected} "
                f"| {outcome}{mark} | {exact} / {len(swept.expected)} | {swept.leftover_tasks} |"
            )
    lines += ["", f"Sweeps completed: {completed} of {2 * len(sweeps.HOSTILE_TENANTS)}.", ""]
    for spelling in sweeps.TINY:
        found = await sweeps.scenario_tiny_lifetime(seed_job, spelling)
        if found["token_requests"] != 1 or any(found["errors"]):
            broken.append(f"tiny lifetime ({spelling}): {found}")
        lines.append(
            f"- `expires_in` of 0.001 s (a {spelling}), 12 tenants polled one by one: "
            f"{found['api_requests']} API requests, **{found['token_requests']}** token request(s), "
            f"{sum(e is not None for e in found['errors'])} errors."
        )
    lines.append("")
    return lines, broken


def fuzz_section(fresh: int) -> tuple[list[str], list[str]]:
    """The fuzz's CI examples (derandomized) and ``fresh`` random ones."""
    broken: list[str] = []
    lines = [
        "### Fuzzing every value a server sends (each case is a sweep: the hostile tenant + 3 healthy)",
        "",
        "| Run | Cases (= sweeps completed) | By endpoint / kind of value | Elapsed (information only) |",
        "|---|---|---|---|",
    ]
    # Pages that loop are logged as warnings, thousands of them here: kept off the terminal.
    quiet = logging.NullHandler()
    logging.getLogger("vbo_async").addHandler(quiet)
    try:
        for run, examples, derandomize in (
            ("CI examples (derandomized)", fuzz.EXAMPLES, True),
            ("fresh", fresh, False),
        ):
            if examples <= 0:
                continue
            started = time.perf_counter()
            try:
                counts = fuzz.campaign(examples, derandomize=derandomize)
            except Exception as failure:  # a broken promise: reported, not hidden
                broken.append(f"fuzz ({run}): {type(failure).__name__}: {failure}")
                counts = fuzz.CASES_RUN
            kinds = ", ".join(f"{kind} {_n(count)}" for kind, count in sorted(counts.items()))
            lines.append(
                f"| {run} | {_n(sum(counts.values()))} | {kinds} | {time.perf_counter() - started:.1f} s |"
            )
    finally:
        logging.getLogger("vbo_async").removeHandler(quiet)
    lines.append("")
    return lines, broken


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--tenants", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--actions-per-round", type=int, default=12)
    parser.add_argument("--fuzz-examples", type=int, default=1000, help="fresh fuzz cases after the CI ones")
    parser.add_argument("--output", type=Path, help="also write the Markdown here")
    args = parser.parse_args(argv)

    started = dt.datetime.now(dt.UTC)
    soaks = [
        await run_soak(
            tenants=args.tenants,
            rounds=args.rounds,
            over_uvicorn=over_uvicorn,
            actions_per_round=args.actions_per_round,
        )
        for over_uvicorn in (True, False)
    ]
    outcomes = await all_scenarios()
    with tempfile.TemporaryDirectory() as folder:
        bombs, bombs_broken = await bomb_section(Path(folder))
    round_two = await body_outcomes()
    tiny, tiny_broken = tiny_items_section()
    swept, sweeps_broken = await sweep_section()
    # The fuzz runs each case with asyncio.run: in a thread of its own, away from this loop.
    fuzzed, fuzz_broken = await asyncio.to_thread(fuzz_section, args.fuzz_examples)
    problems = bombs_broken + tiny_broken + sweeps_broken + fuzz_broken
    command = "python -m tests.reliability_report" + "".join(f" {a}" for a in (argv or sys.argv[1:]))
    lines = [
        "## Figures from the last run",
        "",
        f"- Command: `{command}`",
        f"- Date: {started:%Y-%m-%d %H:%M} UTC",
        f"- Machine: {_machine()}",
        f"- vbo-async: {_revision()}",
        f"- Faults: {FAULTS!r}",
        f"- Client retry policy: {RETRY!r}",
        "",
        *(line for figures in soaks for line in soak_section(figures)),
        *hostile_section(outcomes),
        *bombs,
        *hostile_section(
            round_two, title="Hostile servers, round two: bodies that never end, pages, listings"
        ),
        *tiny,
        *swept,
        *fuzzed,
    ]
    broken = (
        any(figures.problems for figures in soaks)
        or any(o.raised != o.expected or o.secret_leaked for o in [*outcomes, *round_two])
        or bool(problems)
    )
    lines += [f"- **Broken:** {problem}" for problem in problems]
    lines.append(f"Result: {'SOME PROMISES BROKEN' if broken else 'every promise held'}.")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.output is not None:
        args.output.write_text(text, encoding="utf-8")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
