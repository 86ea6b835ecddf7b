"""Exporter benchmark: one ``vbo-async serve`` process sweeping many simulated servers.

Full size: 20 servers × 50 tenants × 20 jobs (20,000 jobs), each server a simulator in its own
process (`_server`), the exporter a real ``vbo-async serve`` process over loopback. Measured:

- the duration of a sweep, cold (the first: version discovery and tokens) and warm (the second),
  and the time its last publish took (rendering that server's series, joining every server's), as
  the exporter's own metrics report them;
- the requests each server saw during the warm sweep, against the fewest possible (one listing
  each of organizations, jobs, recent sessions, repositories, proxies, license and build, and one
  ``usedRepositories`` per tenant);
- the exporter's resident memory after the second sweep, and its peak (``VmRSS``/``VmHWM``);
- the time and size of a scrape of the whole exposition, gzip (as Prometheus asks) and plain.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import httpx
from _common import Table, fmt_bytes, fmt_seconds
from _server import ServerConfig

__all__ = ["run"]

SERVER_SCRIPT = Path(__file__).with_name("_server.py")
LISTINGS = 7
"""Organizations, jobs, recent sessions, repositories, proxies, license and build."""


@contextlib.contextmanager
def simulators(count: int, config: ServerConfig) -> Iterator[list[str]]:
    """``count`` simulator processes started at once; yields their base URLs."""
    children = [
        subprocess.Popen(
            [sys.executable, str(SERVER_SCRIPT), *config.args()], stdout=subprocess.PIPE, text=True, bufsize=1
        )
        for _ in range(count)
    ]
    try:
        urls = []
        for child in children:
            assert child.stdout is not None
            line = child.stdout.readline()
            if not line.strip().isdigit():
                raise RuntimeError(f"a simulator did not start (said {line!r})")
            urls.append(f"http://127.0.0.1:{int(line)}")
        yield urls
    finally:
        for child in children:
            child.terminate()
        for child in children:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


def requests_seen(urls: list[str]) -> list[int]:
    return [int(httpx.get(f"{url}/_bench/stats").json()["requests"]) for url in urls]


def reset(urls: list[str]) -> None:
    for url in urls:
        httpx.post(f"{url}/_bench/reset").raise_for_status()


@contextlib.contextmanager
def exporter(urls: list[str], folder: Path, interval: float) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """``vbo-async serve`` for ``urls``; yields the process and its base URL."""
    targets = folder / "targets.toml"
    targets.write_text(
        "".join(
            f'[[servers]]\nname = "sim{number:02d}"\nurl = "{url}"\nusername = "admin"\n'
            'password_env = "BENCH_PASSWORD"\nmax_concurrency = 10\n\n'
            for number, url in enumerate(urls)
        ),
        encoding="utf-8",
    )
    argv = [sys.executable, "-m", "vbo_async", "serve", "--targets", str(targets)]
    argv += ["--listen", "127.0.0.1:0", "--interval", f"{interval:g}"]
    child = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "BENCH_PASSWORD": "admin"},
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        if not line.startswith("Serving"):
            raise RuntimeError(f"vbo-async serve did not start (said {line!r})")
        yield child, line.split(" at ", 1)[1].split("/metrics", 1)[0]
    finally:
        child.terminate()
        child.wait(timeout=60)


def own_metrics(base: str) -> dict[str, float]:
    """The exporter's own unlabelled metrics (``vbo_async_exporter_*``, ``process_*``)."""
    from prometheus_client.parser import text_string_to_metric_families

    found: dict[str, float] = {}
    text = httpx.get(f"{base}/metrics", timeout=120).text
    for family in text_string_to_metric_families(text):
        if family.name.startswith(("vbo_async_exporter_", "process_")):
            for sample in family.samples:
                if not sample.labels:
                    found[sample.name] = sample.value
    return found


def wait_for_sweeps(base: str, count: int, timeout: float) -> dict[str, float]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            metrics = own_metrics(base)
            if metrics.get("vbo_async_exporter_sweeps_total", 0) >= count:
                return metrics
        time.sleep(0.5)
    raise RuntimeError(f"the exporter did not complete {count} sweeps within {timeout:g} s")


def memory(pid: int) -> tuple[int, int]:
    """``(VmRSS, VmHWM)`` of ``pid`` in bytes."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(rest.split()[0]) * 1024
    return fields["VmRSS"], fields["VmHWM"]


def scrape(base: str, *, compressed: bool, rounds: int) -> tuple[float, int]:
    """Median seconds and bytes on the wire of a ``/metrics`` scrape."""
    headers = {"Accept-Encoding": "gzip" if compressed else "identity"}
    times, size = [], 0
    with httpx.Client(timeout=120) as http:
        for _ in range(rounds):
            started = time.perf_counter()
            with http.stream("GET", f"{base}/metrics", headers=headers) as answer:
                size = sum(len(chunk) for chunk in answer.iter_raw())
            times.append(time.perf_counter() - started)
    return statistics.median(times), size


def held_by_a_sweep(urls: list[str]) -> tuple[int, int]:
    """In this process, with tracemalloc: ``(bytes still allocated after a sweep, peak during
    it)`` of a second sweep by an `Exporter` over ``urls`` (what a sweep leaves behind between
    sweeps: the new exposition, client state; the first sweep's leftovers were replaced)."""
    from vbo_async import VBOClient
    from vbo_async._cli._exporter import Exporter
    from vbo_async._cli._sweeps import ServerSpec

    async def measure() -> tuple[int, int]:
        clients = [VBOClient(url, username="admin", password="admin") for url in urls]
        try:
            specs = [ServerSpec(name=f"sim{number:02d}", client=c) for number, c in enumerate(clients)]
            exporter = Exporter(specs, interval=60)
            await exporter.sweep()
            gc.collect()
            tracemalloc.start()
            try:
                await exporter.sweep()
                gc.collect()
                return tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
        finally:
            for client in clients:
                await client.aclose()

    logging.getLogger("vbo_async").setLevel(logging.ERROR)  # "plain http://" warnings
    return asyncio.run(measure())


def run(*, smoke: bool) -> list[str]:
    """Print the exporter table; return the verdicts."""
    servers, tenants, jobs = (2, 3, 2) if smoke else (20, 50, 20)
    interval = 3.0 if smoke else 60.0
    config = ServerConfig(
        organizations=tenants, jobs_per_organization=(jobs, jobs), repositories=5, proxies=3
    )
    with (
        tempfile.TemporaryDirectory(prefix="vbo-bench-exporter-") as folder,
        simulators(servers, config) as urls,
        exporter(urls, Path(folder), interval) as (child, base),
    ):
        cold = wait_for_sweeps(base, 1, timeout=interval * 3)
        reset(urls)
        warm = wait_for_sweeps(base, 2, timeout=interval * 3)
        seen = requests_seen(urls)
        rss, peak = memory(child.pid)
        rounds = 3 if smoke else 5
        gzip_time, gzip_size = scrape(base, compressed=True, rounds=rounds)
        plain_time, plain_size = scrape(base, compressed=False, rounds=rounds)
        child.terminate()
        child.wait(timeout=60)
        held, traced_peak = held_by_a_sweep(urls)
    expected_jobs = servers * tenants * jobs
    published = int(warm["vbo_async_exporter_jobs"])
    fewest = LISTINGS + tenants
    table = Table(
        f"A sweep of {servers} servers × {tenants} tenants × {jobs} jobs ({expected_jobs:,} jobs), "
        f"one `vbo-async serve` (interval {interval:g} s), each simulator in its own process",
        ["measure", "value"],
    )
    table.add("jobs published / servers up", f"{published:,} / {int(warm['vbo_async_exporter_servers_up'])}")
    table.add(
        "first sweep (version discovery, tokens)",
        fmt_seconds(cold["vbo_async_exporter_last_sweep_duration_seconds"]),
    )
    table.add("second sweep", fmt_seconds(warm["vbo_async_exporter_last_sweep_duration_seconds"]))
    table.add(
        "  of which rendering the last server's series and publishing",
        fmt_seconds(warm["vbo_async_exporter_last_render_duration_seconds"]),
    )
    table.add("requests per server, second sweep (min–max)", f"{min(seen)}–{max(seen)}")
    table.add("fewest possible per server", f"{fewest} ({LISTINGS} listings + 1 per tenant)")
    table.add("exposition (uncompressed)", fmt_bytes(warm["vbo_async_exporter_exposition_bytes"]))
    table.add("resident memory after the second sweep", fmt_bytes(rss))
    table.add("peak resident memory", fmt_bytes(peak))
    table.add("Python objects a sweep leaves behind (tracemalloc)", fmt_bytes(held))
    table.add("Python objects at the peak of a sweep (tracemalloc)", fmt_bytes(traced_peak))
    table.add(
        f"scrape, gzip ({fmt_bytes(gzip_size)} on the wire), median of {rounds}", fmt_seconds(gzip_time)
    )
    table.add(f"scrape, plain ({fmt_bytes(plain_size)}), median of {rounds}", fmt_seconds(plain_time))
    table.notes.append(
        "Sweep durations and rendering come from the exporter's own metrics; requests from the "
        "simulators' counters, reset between the first and the second sweep; memory from "
        "/proc/PID/status of the exporter process (freed memory the allocator keeps counts as "
        "resident); the tracemalloc rows come from an `Exporter` run in the benchmark's own process "
        "over the same simulators, measuring a second sweep."
    )
    table.print()
    assert published == expected_jobs, (published, expected_jobs)
    return [
        f"exporter: {expected_jobs:,} jobs on {servers} servers swept in "
        f"{fmt_seconds(warm['vbo_async_exporter_last_sweep_duration_seconds'])} "
        f"(goal: well inside a 60 s interval), {max(seen)} requests per server (fewest possible {fewest}), "
        f"{fmt_bytes(rss)} resident ({fmt_bytes(held)} of Python objects held), "
        f"a gzip scrape in {fmt_seconds(gzip_time)}",
    ]
