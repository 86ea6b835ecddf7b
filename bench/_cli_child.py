"""Run ``vbo_async.cli.main`` in a child process and say how long it took once started.

``python _cli_child.py REPORT MODULES -- ARGS...``: imports the comma-separated ``MODULES`` (what
the command imported in an earlier run, so that the timed part is the command's own work), then
runs the command line with ``ARGS``, and writes a JSON report to the file ``REPORT``: seconds and
CPU seconds of the imports and of the command, the modules the command still imported, and which
``vbo_async`` ran. The exit status is the command's. Used by `_cli_poll` for this checkout and
the 2ff99dd baseline alike (it imports nothing from either before the clock starts). Where the
console script's entry module offers it (this checkout), its stand-in for httpx's own command
line is put in place first, as the ``vbo-async`` script does before it imports the package.
"""

from __future__ import annotations

import time

STARTED, STARTED_CPU = time.perf_counter(), time.process_time()

import importlib  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402


def main() -> int:
    report, modules, separator, *argv = sys.argv[1:]
    assert separator == "--", sys.argv
    try:
        from _vbo_async_cli import without_httpx_command_line  # what the vbo-async script runs first
    except ImportError:  # 2ff99dd: its console script imports vbo_async.cli directly
        pass
    else:
        without_httpx_command_line()
    for name in ["vbo_async.cli", *filter(None, modules.split(","))]:
        try:
            importlib.import_module(name)
        except Exception:  # a module that imports only in context: the command imports it then
            continue
    before = set(sys.modules)
    imported, imported_cpu = time.perf_counter(), time.process_time()
    from vbo_async.cli import main as cli

    try:
        status = cli(argv)
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else 1
    sys.stdout.flush()
    done, done_cpu = time.perf_counter(), time.process_time()
    facts = {
        "imports": imported - STARTED,
        "imports_cpu": imported_cpu - STARTED_CPU,
        "command": done - imported,
        "command_cpu": done_cpu - imported_cpu,
        "package": sys.modules["vbo_async"].__file__,
        # In the order they were imported, which the next run imports them in: sorted, ``_asyncio``
        # came before ``asyncio``, and imported first it leaves asyncio's Python ``current_task``
        # in place beside the C tasks, which it then never finds (an AssertionError in the CLI).
        "imported": [name for name in sys.modules if name not in before],
    }
    with open(report, "w", encoding="utf-8") as out:
        json.dump(facts, out)
    return int(status or 0)


if __name__ == "__main__":
    raise SystemExit(main())
