"""The ``vbo-async`` command's entry point, outside the package so that it runs first.

Importing anything from ``vbo_async`` first runs the package's ``__init__``: the whole library
with httpx (which imports click and rich), most of the command's start-up time. A Ctrl-C then
printed a Python traceback; from here it ends the command as it does at any later moment. The
command itself is `vbo_async.cli.main`; this module imports nothing else, so the start-up is no
slower.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Sequence

__all__ = ["main"]


def main() -> int:
    """Run the ``vbo-async`` command; returns its exit status."""
    try:
        from vbo_async.cli import main as run

        return run()
    except KeyboardInterrupt:
        return interrupted(sys.argv[1:])


def interrupted(args: Sequence[str]) -> int:
    """Say that the command named in ``args`` was interrupted while it started, as it says so
    later, and return its exit status: ``check`` (a monitoring plugin) its UNKNOWN line on stdout
    and 3, the other commands one line on stderr and 130. `vbo_async.cli` says it with this
    function too: the package is never imported here, but may import this module, which the
    wheel (and so the editable install) puts beside it."""
    command = next((arg for arg in args if not arg.startswith("-")), None)
    if command == "check":
        stream, text, status = sys.stdout, "VB365 UNKNOWN - interrupted\n", 3
    else:
        stream, text, status = sys.stderr, "vbo-async: interrupted\n", 130
    if stream is not None:
        with contextlib.suppress(OSError, ValueError):
            stream.write(text)
            stream.flush()
    return status
