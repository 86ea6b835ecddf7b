"""Reliability figures for ``docs/reliability.md``: the soak over real sockets, and the hostile servers.

Run from the repository root (the test extra installed)::

    python -m tests.reliability_report                    # 200 tenants x 10 rounds, about 45 s
    python -m tests.reliability_report --tenants 500 --rounds 20 --output /tmp/figures.md

It runs the same code as ``tests/test_soak.py`` (`run_soak`: over uvicorn on 127.0.0.1, then
in-process through the ASGI transport) and every scenario of ``tests/test_hostile.py``, prints the
figures as Markdown (and writes them to ``--output``), and exits 1 if any promise was broken.
Timings are printed for information only.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import platform
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

from tests.test_hostile import Outcome, all_scenarios
from tests.test_soak import FAULTS, MAX_CONCURRENCY, MAX_CONNECTIONS, RETRY, SoakFigures, run_soak

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


def hostile_section(outcomes: list[Outcome]) -> list[str]:
    lines = [
        "### Hostile servers",
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


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--tenants", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--actions-per-round", type=int, default=12)
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
    ]
    broken = any(figures.problems for figures in soaks) or any(
        o.raised != o.expected or o.secret_leaked for o in outcomes
    )
    lines.append(f"Result: {'SOME PROMISES BROKEN' if broken else 'every promise held'}.")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.output is not None:
        args.output.write_text(text, encoding="utf-8")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
