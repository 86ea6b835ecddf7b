"""Shared benchmark helpers: interleaved timing with medians, ratios per round, tables, machine facts."""

from __future__ import annotations

import gc
import importlib.metadata
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "Fresh",
    "Table",
    "Timing",
    "fmt_bytes",
    "fmt_ratio",
    "fmt_seconds",
    "is_this_checkout",
    "machine_facts",
    "time_async",
    "time_sync",
]


def is_this_checkout(package: str) -> bool:
    """Whether a child process's ``vbo_async/__init__.py`` at ``package`` is the one this process
    runs (the worktree with an editable install, the venv's copy with a regular one, as in CI),
    not another install such as the baseline's venv."""
    import vbo_async  # the benchmarks run with this checkout's vbo_async

    return Path(package).resolve().parent == Path(vbo_async.__file__).resolve().parent


@dataclass
class Timing:
    """Seconds per call of one candidate, one sample per round (rounds are interleaved)."""

    name: str
    samples: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def spread(self) -> float:
        """Interquartile range over the median: how noisy the samples were."""
        if len(self.samples) < 4:
            return 0.0
        q1, _, q3 = statistics.quantiles(self.samples, n=4)
        return (q3 - q1) / self.median

    def ratio_to(self, baseline: Timing) -> float:
        """Median of the per-round ratios: both samples of a round ran back to back, so a slow
        moment of the shared machine affects both sides of each ratio alike."""
        return statistics.median(a / b for a, b in zip(self.samples, baseline.samples, strict=True))


def _rounds(names: Sequence[str], repeats: int) -> list[list[str]]:
    """The order of candidates in each round, rotated so no candidate always runs first."""
    return [[names[(start + i) % len(names)] for i in range(len(names))] for start in range(repeats)]


def time_sync(
    candidates: dict[str, Callable[[], object]], *, repeats: int, number: int = 1, warmup: int = 1
) -> dict[str, Timing]:
    """Time each candidate ``repeats`` times in interleaved rounds; a sample is the mean of
    ``number`` back-to-back calls. A full collection runs before every sample; the garbage
    collector stays on while timing, as it would in an application."""
    for _ in range(warmup):
        for fn in candidates.values():
            fn()
    timings = {name: Timing(name) for name in candidates}
    for order in _rounds(list(candidates), repeats):
        for name in order:
            fn = candidates[name]
            gc.collect()
            started = time.perf_counter()
            for _ in range(number):
                fn()
            timings[name].samples.append((time.perf_counter() - started) / number)
    return timings


AsyncCall = Callable[[], Awaitable[object]]


@dataclass
class Fresh:
    """A candidate that needs new state for every call: ``make()`` (not timed) returns the call to
    time and a cleanup coroutine function, awaited after the sample (not timed either)."""

    make: Callable[[], tuple[AsyncCall, Callable[[], Awaitable[None]]]]


async def time_async(
    candidates: dict[str, AsyncCall | Fresh],
    *,
    repeats: int,
    number: int = 1,
    warmup: int = 1,
) -> dict[str, Timing]:
    """`time_sync` for coroutine functions (awaited one after the other, on the running loop).

    A `Fresh` candidate gets ``number`` new states made before its sample's timer starts, each
    used by one call; they are cleaned up after the timer stops."""
    for _ in range(warmup):
        for fn in candidates.values():
            await _once(fn)
    timings = {name: Timing(name) for name in candidates}
    for order in _rounds(list(candidates), repeats):
        for name in order:
            candidate = candidates[name]
            cleanups: list[Callable[[], Awaitable[None]]] = []
            if isinstance(candidate, Fresh):
                made = [candidate.make() for _ in range(number)]
                calls = [call for call, _ in made]
                cleanups = [cleanup for _, cleanup in made]
            else:
                calls = [candidate] * number
            gc.collect()
            started = time.perf_counter()
            for call in calls:
                await call()
            timings[name].samples.append((time.perf_counter() - started) / number)
            del calls
            for cleanup in cleanups:
                await cleanup()
    return timings


async def _once(candidate: AsyncCall | Fresh) -> None:
    if isinstance(candidate, Fresh):
        call, cleanup = candidate.make()
        await call()
        await cleanup()
    else:
        await candidate()


@dataclass
class Table:
    """A titled table, printed as Markdown so the output can go into the docs as it is."""

    title: str
    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, *cells: object) -> None:
        self.rows.append([str(cell) for cell in cells])

    def render(self) -> str:
        widths = [len(h) for h in self.headers]
        for row in self.rows:
            widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
        right = [i > 0 for i in range(len(self.headers))]

        def line(cells: Sequence[str]) -> str:
            padded = [c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right, strict=True)]
            return "| " + " | ".join(padded) + " |"

        rule = "|" + "|".join(
            ("-" * (w + 1) + ":") if r else ("-" * (w + 2)) for w, r in zip(widths, right, strict=True)
        )
        rule += "|"
        out = [f"#### {self.title}", "", line(self.headers), rule, *(line(row) for row in self.rows)]
        if self.notes:
            for note in self.notes:
                out += ["", note]
        return "\n".join(out) + "\n"

    def print(self) -> None:
        print(self.render(), flush=True)


def fmt_seconds(seconds: float) -> str:
    """A duration with a unit that keeps three significant digits."""
    sign, seconds = ("−" if seconds < 0 else ""), abs(seconds)
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{sign}{seconds / scale:.3g} {unit}"
    return f"{sign}{seconds / 1e-9:.3g} ns"


def fmt_ratio(ratio: float) -> str:
    return f"{ratio:.2f}×"


def fmt_bytes(size: float) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(size) >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size:.0f} B"


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for row in cpuinfo:
                if row.startswith("model name"):
                    return row.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


LIBRARIES = (
    "vbo-async",
    "orjson",
    "msgspec",
    "pydantic",
    "pydantic-core",
    "attrs",
    "cattrs",
    "httpx",
    "httpcore",
    "aiohttp",
    "httpx-aiohttp",
    "h11",
    "sniffio",
    "anyio",
    "starlette",
    "uvicorn",
    "matplotlib",
)


def _revision() -> str:
    """The checkout's commit, with ``+changes`` when the working tree differs from it."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        commit = subprocess.run(
            ["git", "-C", root, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", root, "status", "--porcelain", "--untracked-files=no", "--", "vbo_async"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + (" +uncommitted changes in vbo_async/" if dirty else "")


def machine_facts() -> str:
    """One paragraph naming the machine and the versions a result depends on."""
    cpus = os.cpu_count()
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = cpus
    versions = ", ".join(f"{name} {_version(name)}" for name in LIBRARIES)
    return (
        f"Machine: {usable} usable CPUs (nproc) of {cpus}, {_cpu_model()}, {platform.system()} "
        f"{platform.release()}; Python {platform.python_version()} ({sys.implementation.name}).\n"
        f"Libraries: {versions}.\nvbo-async checkout: {_revision()}.\n"
    )
