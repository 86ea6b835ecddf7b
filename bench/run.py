"""Run vbo-async's benchmarks: ``python bench/run.py [NAME ...|all] [--smoke]`` (NAME: one of `BENCHMARKS`).

``cpu`` measures client CPU per request (raw aiohttp, raw httpx, the httpx objects' floor, vbo-async's
request path); ``cli`` the ``vbo-async poll`` command against commit 2ff99dd; ``tenants`` tenants per
second of client CPU sweeping 1 to 3 servers; ``requests`` the requests of a 300-tenant sweep against
the minimum; ``exporter`` one ``vbo-async serve`` process sweeping 20 simulated servers (20,000 jobs).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine_facts

BENCHMARKS = {
    "decode": "_decode",
    "overhead": "_overhead",
    "sweep": "_sweep",
    "memory": "_memory",
    "scaling": "_scaling",
    "cpu": "_cpu",
    "cli": "_cli_poll",
    "tenants": "_tenants",
    "requests": "_requests",
    "exporter": "_exporter",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "benchmark",
        nargs="*",
        metavar="NAME",
        help=f"what to run: all (the default), or one or more of {', '.join(BENCHMARKS)}",
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="every benchmark at a tiny size (CI: proves they run, measures nothing; no plot in docs/)",
    )
    parser.add_argument(
        "--plot-dir",
        type=Path,
        default=None,
        help="where `scaling` writes its PNG (default: docs/, or a temporary directory with --smoke)",
    )
    args = parser.parse_args(argv)
    chosen = args.benchmark or ["all"]
    unknown = [name for name in chosen if name not in (*BENCHMARKS, "all")]
    if unknown:
        parser.error(f"unknown benchmark {unknown[0]!r} (choose from all, {', '.join(BENCHMARKS)})")
    names = list(BENCHMARKS) if "all" in chosen else list(dict.fromkeys(chosen))
    print(f"# vbo-async benchmarks: {', '.join(names)}{' (smoke)' if args.smoke else ''}\n")
    print(machine_facts())
    verdicts: list[str] = []
    failed: list[str] = []
    started = time.perf_counter()
    for name in names:
        print(f"## {name}\n", flush=True)
        began = time.perf_counter()
        try:
            module = importlib.import_module(BENCHMARKS[name])
            if name == "scaling":
                verdicts += module.run(smoke=args.smoke, plot_dir=args.plot_dir)
            else:
                verdicts += module.run(smoke=args.smoke)
        except Exception:  # one broken benchmark must not hide the others' results
            traceback.print_exc()
            failed.append(name)
            print(f"\n({name} FAILED after {time.perf_counter() - began:.1f} s)\n", flush=True)
            continue
        print(f"({name} took {time.perf_counter() - began:.1f} s)\n", flush=True)
    print("## Summary\n")
    if args.smoke:
        print("(smoke run: tiny sizes and single samples, so these verdicts measure nothing)\n")
    for line in verdicts:
        print("*", line)
    if failed:
        print(f"\nFAILED: {', '.join(failed)} (tracebacks above)")
    print(f"\n(all took {time.perf_counter() - started:.1f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
