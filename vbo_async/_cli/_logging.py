"""The command line's logging: ``vbo-async: warning: ...`` lines on stderr, ``VBO_ASYNC_LOG``.

Only the command line configures logging, and only for the time `main` runs: the library
configures nothing (it logs to the ``vbo_async`` logger and never logs secrets).

- Without ``VBO_ASYNC_LOG``: warnings only, such as "TLS certificate verification is OFF".
- ``VBO_ASYNC_LOG=warning|info|debug``: the ``vbo_async`` logger at that level (``info`` adds
  the requests given up after their retries, ``debug`` every request and every retry, and the
  traceback of an internal error).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from typing import Any, TextIO

from .._printable import printable
from ._exit import CLIError

__all__ = ["LEVELS", "LOG_CHARS", "VARIABLE", "configured_logging", "one_line"]

VARIABLE = "VBO_ASYNC_LOG"
LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}
LOG_CHARS = 2000
"""The most characters of a line's message (server text written out by `printable`) the command
line writes on stderr; a longer one is cut and says how long it was. A server's names and
messages are its own to choose: ``serve`` quoted a name of megabytes in a warning every sweep."""


def one_line(text: str) -> str:
    """``text`` as one line of stderr: `printable` (no control characters, no line breaks), at
    most `LOG_CHARS` characters, a longer one cut and ending in ``... (N characters)``."""
    shown = printable(text)
    if len(shown) <= LOG_CHARS:
        return shown
    return f"{shown[:LOG_CHARS]}... ({len(shown)} characters)"


class _Stderr(logging.StreamHandler[TextIO]):
    """Writes to whatever ``sys.stderr`` is at the time (a progress display may wrap it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


class _Format(logging.Formatter):
    """One ``vbo-async: LEVEL: message`` line (`one_line`); with ``tracebacks`` (``VBO_ASYNC_LOG=debug``), the
    traceback of a record logged with ``exc_info`` follows it."""

    def __init__(self, *, tracebacks: bool = False) -> None:
        super().__init__()
        self.tracebacks = tracebacks

    def format(self, record: logging.LogRecord) -> str:
        line = f"vbo-async: {record.levelname.lower()}: {one_line(record.getMessage())}"
        if not (self.tracebacks and record.exc_info):
            return line
        traceback = self.formatException(record.exc_info)
        return "\n".join([line, *(one_line(text) for text in traceback.splitlines())])


def level_from_environment() -> int | None:
    """The level ``VBO_ASYNC_LOG`` asks for, None when unset; a bad value is a usage error."""
    value = os.environ.get(VARIABLE, "").strip().lower()
    if not value:
        return None
    if value not in LEVELS:
        raise CLIError(f"{VARIABLE} must be one of {', '.join(LEVELS)}, got {value!r}")
    return LEVELS[value]


@contextlib.contextmanager
def configured_logging(level: int | None) -> Iterator[None]:
    """Send the ``vbo_async`` logger to stderr at ``level`` (None: warnings) while the block
    runs, then put the logger back as it was."""
    library = logging.getLogger("vbo_async")
    handler = _Stderr()
    handler.setFormatter(_Format(tracebacks=level == logging.DEBUG))
    saved = library.level
    library.setLevel(level if level is not None else logging.WARNING)
    library.addHandler(handler)
    try:
        yield
    finally:
        library.removeHandler(handler)
        library.setLevel(saved)
