"""Scaling benchmark: decode time over 10 → 10,000 jobs, sweep time over 10 → 1,000 tenants, and a plot."""

from __future__ import annotations

import asyncio
import statistics
import tempfile
from pathlib import Path
from typing import Any

import orjson
from _common import Table, Timing, fmt_ratio, fmt_seconds, time_sync
from _data import wire_jobs
from _decode import (
    FLOOR,
    FLOOR_NO_GC,
    MSGSPEC_LAX,
    PYDANTIC,
    VBO,
    VBO_PAGE_KEPT,
    candidates,
    client_decoder,
)
from _server import ServerConfig, serve
from _sweep import Runner, raw_sweep
from _work import CANDIDATES as WORK_CANDIDATES
from _work import WorkUnavailable, instructions_per_job
from _work import available as valgrind_available

__all__ = ["run"]

DOCS = Path(__file__).resolve().parent.parent / "docs"
PLOT_NAME = "benchmarks-scaling.png"
DECODERS = (FLOOR, FLOOR_NO_GC, MSGSPEC_LAX, PYDANTIC, VBO, VBO_PAGE_KEPT)
SHORT = {
    FLOOR: "orjson.loads (floor)",
    FLOOR_NO_GC: "orjson.loads, GC paused",
    MSGSPEC_LAX: "msgspec, strict=False",
    PYDANTIC: "pydantic v2",
    VBO: "vbo-async many(loads(b))",
    VBO_PAGE_KEPT: "vbo-async page(b) + young pass",
}
WORK_TWINS = (FLOOR, FLOOR_NO_GC, VBO_PAGE_KEPT)
"""The timed decoder each row of the work table counts (in `WORK_CANDIDATES` order)."""
POLL = "poll_jobs concurrency=10, max_concurrency=10"
RAW = "raw httpx sweep, concurrency 10"


def _decode_scaling(sizes: tuple[int, ...], smoke: bool) -> dict[int, dict[str, Timing]]:
    results = {}
    for count in sizes:
        body = orjson.dumps(wire_jobs(count))
        chosen = {k: v for k, v in candidates(body, client_decoder()).items() if k in DECODERS}
        repeats = 3 if smoke else 15
        number = 1 if smoke else max(1, 2000 // count)
        results[count] = time_sync(chosen, repeats=repeats, number=number)
    return results


Work = dict[int, dict[str, float]]


def _work_table(sizes: tuple[int, ...], *, smoke: bool) -> tuple[str, Work | None]:
    """Instructions per job by batch size (callgrind): the work, without the machine's noise and
    memory hierarchy. Returns the verdict line and the counts (None without valgrind)."""
    if not valgrind_available():
        print("(valgrind or its callgrind_control is not installed: the instruction counts are skipped)\n")
        return "scaling decode work (instructions per job): skipped, valgrind is not installed", None
    try:
        work = instructions_per_job(
            {count: orjson.dumps(wire_jobs(count)) for count in sizes}, jobs_per_count=30 if smoke else 10_000
        )
    except WorkUnavailable as exc:
        print(f"(the instruction counts are skipped: {exc})\n")
        return f"scaling decode work (instructions per job): skipped, {str(exc).splitlines()[0]}", None
    names = list(WORK_CANDIDATES)
    page, floor = names[2], names[0]
    table = Table(
        "Work per job by batch size: instructions executed per decoded job (valgrind callgrind; "
        "repeatable, unaffected by other tenants of the machine or by cache misses)",
        ["jobs", *names, "page(b) ÷ floor"],
    )
    for count in sizes:
        row = work[count]
        table.add(f"{count:,}", *(f"{row[name]:,.0f}" for name in names), fmt_ratio(row[page] / row[floor]))
    first, last = sizes[0], sizes[-1]
    growth = {name: work[last][name] / work[first][name] for name in names}
    table.add(f"per job at {last:,} ÷ at {first:,}", *(fmt_ratio(growth[name]) for name in names), "")
    table.print()
    verdict = (
        f"scaling decode work: instructions per job at {last:,} jobs ÷ at {first:,}: vbo-async page(b) "
        f"{fmt_ratio(growth[page])}, orjson floor {fmt_ratio(growth[floor])}, orjson with the collector "
        f"paused {fmt_ratio(growth[names[1]])} (1.00× = linear)"
    )
    return verdict, work


def _sweep_scaling(tenants: tuple[int, ...], rounds: int) -> tuple[dict[int, Runner], int]:
    runners: dict[int, Runner] = {}
    with serve(ServerConfig(organizations=max(tenants))) as server:
        asyncio.run(raw_sweep(server, server.organization_ids[:5], concurrency=5))  # warm the server
        for number in range(rounds):
            for count in tenants if number % 2 == 0 else reversed(tenants):
                runner = runners.setdefault(count, Runner(server))
                ids = server.organization_ids[:count]
                plan = [(RAW, None), (POLL, 10)] if number % 2 == 0 else [(POLL, 10), (RAW, None)]
                for name, max_concurrency in plan:
                    runner.once(name, ids, concurrency=10, max_concurrency=max_concurrency)
    return runners, max(tenants)


def _panel(
    axis: Any, xs: list[int], lines: dict[str, tuple[list[float], str]], xlabel: str, ylabel: str, title: str
) -> None:
    """One log-x panel of the plot: a line per label (values, colour), starting at zero."""
    for label, (values, colour) in lines.items():
        axis.plot(xs, values, marker="o", label=label, color=colour)
    axis.set_xscale("log")
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    axis.set_title(title)
    axis.set_ylim(bottom=0)
    axis.legend(fontsize=7)
    axis.grid(True, which="both", alpha=0.3)


def _plot(
    decode: dict[int, dict[str, Timing]],
    work: Work | None,
    sweep: dict[int, Runner],
    path: Path,
    *,
    smoke: bool,
) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = 3 if work else 2
    figure, axes = plt.subplots(1, panels, figsize=(6 * panels, 4.8))
    sizes = sorted(decode)
    time_lines = {
        SHORT[name]: ([decode[n][name].median / n * 1e6 for n in sizes], f"C{DECODERS.index(name)}")
        for name in DECODERS
        if name in decode[sizes[0]]
    }
    _panel(axes[0], sizes, time_lines, "jobs decoded at once", "µs per job (median)", "Decode: time per job")
    if work:
        counts = sorted(work)
        work_lines = {  # in the colours of the same decoders in the time panel
            name: ([work[n][name] / 1e3 for n in counts], f"C{DECODERS.index(twin)}")
            for name, twin in zip(WORK_CANDIDATES, WORK_TWINS, strict=True)
        }
        _panel(
            axes[1],
            counts,
            work_lines,
            "jobs decoded at once",
            "thousand instructions per job",
            "Decode: work per job (callgrind)",
        )
    tenants = sorted(sweep)
    sweep_lines = {
        name: ([sweep[n].median(name) / n * 1e3 for n in tenants], f"C{index}")
        for index, name in enumerate((RAW, POLL))
    }
    _panel(
        axes[-1],
        tenants,
        sweep_lines,
        "tenants (organizations) swept",
        "ms per tenant (median)",
        "Sweep with repository + proxy resolved: time per tenant",
    )
    figure.suptitle(f"vbo-async scaling{' (smoke run: tiny sizes, meaningless)' if smoke else ''}")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def run(*, smoke: bool, plot_dir: Path | None = None) -> list[str]:
    """Print the scaling tables and write the plot; return the verdicts."""
    sizes = (10, 30, 100) if smoke else (10, 30, 100, 300, 1_000, 3_000, 10_000)
    tenants = (5, 10, 20) if smoke else (10, 30, 100, 300, 1_000)
    decode = _decode_scaling(sizes, smoke)
    names = [name for name in DECODERS if name in decode[sizes[0]]]
    table = Table(
        "Decode time per job by batch size (median per job; rows as in the decode tables)",
        ["jobs", *(SHORT[name] for name in names)],
    )
    for count in sizes:
        table.add(f"{count:,}", *(fmt_seconds(decode[count][name].median / count) for name in names))
    first, last = (100 if 100 in sizes[:-1] else sizes[0]), sizes[-1]
    growth = {
        name: (decode[last][name].median / last) / (decode[first][name].median / first) for name in names
    }
    table.add(f"per job at {last:,} ÷ at {first:,}", *(fmt_ratio(growth[name]) for name in names))
    table.print()
    work_verdict, work = _work_table((10,) if smoke else (100, 1_000, 10_000), smoke=smoke)

    sweep, organizations = _sweep_scaling(tenants, 1 if smoke else 3)
    sweep_table = Table(
        f"Sweep time by tenants swept (loopback simulator with {organizations:,} organizations, every "
        "job's repository and proxy resolved, concurrency 10; medians of "
        f"{1 if smoke else 3} interleaved rounds)",
        ["tenants", "jobs", "raw requests", "raw time", "raw per tenant", "poll requests", "poll time",
         "poll per tenant", "poll ÷ raw"],
    )  # fmt: skip
    for count in tenants:
        runner = sweep[count]
        raw, poll = runner.outcomes[RAW], runner.outcomes[POLL]
        sweep_table.add(
            f"{count:,}",
            f"{raw[0].jobs:,}",
            f"{statistics.median(o.requests for o in raw):,.0f}",
            fmt_seconds(runner.median(RAW)),
            fmt_seconds(runner.median(RAW) / count),
            f"{statistics.median(o.requests for o in poll):,.0f}",
            fmt_seconds(runner.median(POLL)),
            fmt_seconds(runner.median(POLL) / count),
            fmt_ratio(runner.ratio(POLL, RAW)),
        )
    sweep_table.print()
    low, high = (100 if 100 in tenants[:-1] else tenants[0]), tenants[-1]
    poll_growth = (sweep[high].median(POLL) / high) / (sweep[low].median(POLL) / low)
    raw_growth = (sweep[high].median(RAW) / high) / (sweep[low].median(RAW) / low)

    directory = plot_dir if plot_dir is not None else (Path(tempfile.mkdtemp()) if smoke else DOCS)
    path = _plot(decode, work, sweep, directory / PLOT_NAME, smoke=smoke)
    print(f"Plot written to {path}\n")
    vbo = VBO_PAGE_KEPT if VBO_PAGE_KEPT in growth else VBO
    verdicts = [
        f"scaling decode: per-job time at {last:,} jobs ÷ at {first:,}: vbo-async {fmt_ratio(growth[vbo])}, "
        f"orjson floor {fmt_ratio(growth[FLOOR])}, pydantic {fmt_ratio(growth[PYDANTIC])} (1.00× = linear)",
        work_verdict,
        f"scaling sweep: per-tenant time at {high:,} tenants ÷ at {low:,}: poll_jobs "
        f"{fmt_ratio(poll_growth)}, raw sweep {fmt_ratio(raw_growth)} (1.00× = linear)",
    ]
    for line in verdicts:
        print("*", line)
    print()
    return verdicts
