"""The ``vbo-async`` command line: ``demo``, ``simulate``, ``jobs``, ``organizations``, ``poll``,
``check`` and ``serve`` (a Prometheus exporter, with the ``exporter`` extra).

Needs the ``cli`` extra (click and rich); ``demo`` and ``simulate`` also need the ``simulator``
extra (``pip install 'vbo-async[demo]'`` installs both). The code lives in `vbo_async._cli`.
Errors are one line on stderr and an exit status, never a traceback: 0 all read, 1 a server or
tenant could not be read, 2 usage error, 130 interrupted; ``check``, a monitoring plugin,
exits 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN and prints everything on stdout. Passwords come
from an environment variable or a prompt, never from an argument.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from _vbo_async_cli import Terminated, cannot_start, interrupted, terminated

__all__ = ["DEFAULT_API_VERSION", "main"]

DEFAULT_API_VERSION = "auto"
"""The API version of every command and targets file that names none (neither ``--api-version``,
``api_version =`` nor a ``/vN`` at the end of the URL): the newest one the server serves."""

_CLI_PACKAGES = frozenset({"click", "rich", "markdown_it", "mdurl", "pygments"})


def main(argv: Sequence[str] | None = None, *, started: float | None = None) -> int:
    """Run the command line; returns the exit status. ``started`` (`time.monotonic`) is when
    the process began, which time limits (``check -t``) count from; now when None."""
    try:
        import rich  # noqa: F401  (imported late by the output code: checked here, cheaply)

        from ._cli import main as run
    except ImportError as exc:
        missing = (exc.name or "").partition(".")[0]
        if missing not in _CLI_PACKAGES:
            raise
        return cannot_start(
            sys.argv[1:] if argv is None else argv,
            f"the command line needs the 'cli' extra ({missing} is not installed): "
            "pip install 'vbo-async[cli]'",
            status=2,
            error=True,
        )
    except Terminated:  # SIGTERM while the command line's modules import
        return terminated(sys.argv[1:] if argv is None else argv)
    except KeyboardInterrupt:  # Ctrl-C while the command line's modules import
        return interrupted(sys.argv[1:] if argv is None else argv)
    return run(argv, started=started)
