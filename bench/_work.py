"""Work per decoded job, counted in instructions by valgrind's callgrind (when it is installed).

Wall time on a shared machine wanders by tens of per cent and, for large batches, also measures
the memory hierarchy (a batch that no longer fits in the CPU caches is slower per object, whatever
decodes it). The number of instructions executed is repeatable to a fraction of a per cent and
counts only the work, so it tells whether a decoder's work grows linearly with the batch.

Each count runs a child Python under ``valgrind --tool=callgrind`` that decodes a body read from a
file; only instructions executed inside ``operator.call(decode)`` are collected (callgrind's
``--toggle-collect``), so start-up, imports and reading the file are left out. Nothing the
decoders call uses ``operator.call``, so the toggle cannot flip inside the measured region.

The child starts uninstrumented (``--instr-atstart=no``) and switches instrumentation on itself
(``callgrind_control -i on``, which returns once valgrind has done it) when its imports and its
warm-up are done: instrumented, importing vbo_async and making a client took 38 s of each count's
40 (2 s without); the counts are the same either way (within 0.1%).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

__all__ = ["CANDIDATES", "WorkUnavailable", "available", "instructions_per_job"]

CANDIDATES = {
    "orjson.loads (floor)": "floor",
    "orjson.loads, GC paused": "floor-paused",
    "vbo-async page(b)": "page",
}
"""Row name -> what the child decodes (see ``_CHILD``)."""

_CHILD = """
import gc, operator, os, subprocess, sys
import orjson
from vbo_async import Job, VBOClient
from vbo_async._dialects import V1

body = open(sys.argv[1], "rb").read()
what, calls = sys.argv[2], int(sys.argv[3])
decoder = VBOClient("https://x:4443", username="u", password="p")._fetcher.decoder
decoder.page(body, Job, V1)  # the first call binds the hooks: warm it outside the count
# Instrumentation on from here (callgrind_control waits for valgrind's answer).
subprocess.run(["callgrind_control", "-i", "on", str(os.getpid())], check=True, capture_output=True)


def paused():
    gc.disable()
    try:
        return orjson.loads(body)
    finally:
        gc.enable()


decode = {
    "floor": lambda: orjson.loads(body),
    "floor-paused": paused,
    "page": lambda: decoder.page(body, Job, V1),
}[what]
for _ in range(calls):
    gc.collect()
    operator.call(decode)
"""
_COLLECTED = re.compile(r"Collected\s*:\s*(\d+)")


class WorkUnavailable(RuntimeError):
    """callgrind ran but could not count (it failed, or the interpreter has no symbols to toggle on)."""


def available() -> bool:
    """Whether valgrind is installed, callgrind_control with it (the counts are skipped otherwise)."""
    return shutil.which("valgrind") is not None and shutil.which("callgrind_control") is not None


def _count(body_path: Path, what: str, calls: int) -> int:
    command = [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        "--toggle-collect=_operator_call*",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        "-c",
        _CHILD,
        str(body_path),
        what,
        str(calls),
    ]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    match = _COLLECTED.search(done.stderr)
    if done.returncode != 0 or match is None:
        raise WorkUnavailable(f"callgrind failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
    if int(match.group(1)) == 0:
        raise WorkUnavailable(
            "callgrind counted nothing inside operator.call: this Python has no symbol _operator_call "
            "to toggle collection on (a stripped build?)"
        )
    return int(match.group(1))


def instructions_per_job(bodies: dict[int, bytes], *, jobs_per_count: int) -> dict[int, dict[str, float]]:
    """Instructions per job for each candidate at each batch size in ``bodies`` (count -> JSON
    of that many jobs). Each count decodes about ``jobs_per_count`` jobs in all (at least one
    batch); two counts run at a time."""
    with tempfile.TemporaryDirectory() as directory:
        paths = {}
        for count, body in bodies.items():
            paths[count] = Path(directory) / f"{count}.json"
            paths[count].write_bytes(body)
        tasks = [
            (count, name, what, max(1, jobs_per_count // count))
            for count in bodies
            for name, what in CANDIDATES.items()
        ]
        with ThreadPoolExecutor(max_workers=2) as pool:
            counted = pool.map(lambda t: _count(paths[t[0]], t[2], t[3]), tasks)
            results: dict[int, dict[str, float]] = {count: {} for count in bodies}
            for (count, name, _, calls), instructions in zip(tasks, counted, strict=True):
                results[count][name] = instructions / (calls * count)
    return results
