"""`configure_logging`: the one call an application makes to see vbo-async's logs.

The library only logs, to the ``vbo_async`` logger, and configures nothing itself: no handler,
no level, nothing global. Passwords and tokens never appear in its records.
"""

from __future__ import annotations

import logging
import sys
from typing import Protocol

from ._exceptions import ConfigError

__all__ = ["LOGGER_NAME", "configure_logging"]

LOGGER_NAME = "vbo_async"


class Writable(Protocol):
    """What ``stream`` must be: any object with a ``write`` method taking a string (a text file,
    ``sys.stderr``, an ``io.StringIO``, an application's own writer); ``flush`` is used if present."""

    def write(self, text: str, /) -> object: ...


_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def configure_logging(
    level: str | int = "info", *, stream: Writable | None = None, fmt: str | None = None
) -> logging.Handler:
    """Send the ``vbo_async`` logger's records at ``level`` and above to ``stream`` (stderr by
    default) and return the handler, so it can be removed again
    (``logging.getLogger("vbo_async").removeHandler(handler)``).

    ``level``: ``"debug"`` (every request, its status, size and time, and every retry),
    ``"info"`` (requests given up after their retries, the API version found, job actions),
    ``"warning"`` (TLS verification off, plain http://), ``"error"``, or a `logging` level
    number. ``stream`` is any object with a ``write`` method (`ConfigError` otherwise). ``fmt``
    is the `logging.Formatter` format (``"%(asctime)s %(levelname)s %(name)s: %(message)s"``
    when None; a format `logging.Formatter` refuses is a `ConfigError`). Only the ``vbo_async``
    logger is touched, never the root logger. Called again for the same stream, it replaces the
    handler it installed there before (the records are not written twice); for another stream,
    it adds one, each stream keeping its own level (the logger's is set to the lowest of them, or
    to the level the application had given it, when lower: its own handlers keep getting what
    they got; a level equal to the one an earlier call set is taken for that call's). The
    records still propagate to the root logger's handlers, as every logger's do: an application
    whose root handler writes everything to its console gets the debug lines there too (give
    that handler a level, or set ``propagate`` on the ``vbo_async`` logger).

    ```python
    import vbo_async

    vbo_async.configure_logging("debug")
    ```
    """
    if isinstance(level, str):
        number = _LEVELS.get(level.strip().lower())
        if number is None:
            raise ConfigError(f"level must be one of {', '.join(_LEVELS)} or a logging level number")
    elif isinstance(level, int) and not isinstance(level, bool):
        number = level
    else:
        raise ConfigError(f"level must be a string or an int, got {type(level).__name__}")
    if stream is not None and not callable(getattr(stream, "write", None)):
        # logging would take it and fail on every record (a traceback on stderr each time)
        raise ConfigError(f"stream must be a writable text stream or None, got {type(stream).__name__}")
    if fmt is not None and not isinstance(fmt, str):
        raise ConfigError(f"fmt must be a string or None, got {type(fmt).__name__}")
    try:
        formatter = logging.Formatter(fmt or "%(asctime)s %(levelname)s %(name)s: %(message)s")
    except ValueError as exc:
        raise ConfigError(f"fmt is not a logging format of the %(name)s style: {exc}") from None
    target = stream if stream is not None else sys.stderr
    handler = _Handler(target)
    handler.setFormatter(formatter)
    handler.setLevel(number)
    logger = logging.getLogger(LOGGER_NAME)
    # The level the application gave the logger (NOTSET: none): the logger's own, unless it is
    # still the one an earlier call set, whose handlers may have been removed since.
    kept: tuple[int, int] | None = getattr(logger, _LEVELS_KEPT, None)
    application = kept[0] if kept is not None and logger.level == kept[1] else logger.level
    for earlier in list(logger.handlers):  # called again (a notebook cell run twice): not every line twice
        if isinstance(earlier, _Handler) and earlier.stream is target:
            logger.removeHandler(earlier)
    logger.addHandler(handler)
    # Each stream gets its own level: the logger lets through what the most verbose one wants,
    # and still what the application's own handlers were getting (its level, if lower).
    levels = [earlier.level for earlier in logger.handlers if isinstance(earlier, _Handler)]
    if application != logging.NOTSET:
        levels.append(application)
    logger.setLevel(min(levels))
    setattr(logger, _LEVELS_KEPT, (application, logger.level))
    return handler


_LEVELS_KEPT = "_vbo_async_levels"
"""The attribute of the ``vbo_async`` logger where `configure_logging` keeps the application's
level and the one it set itself (on the logger, as logging keeps its own state: nothing of this
module's changes)."""


class _Handler(logging.StreamHandler[Writable]):
    """The handler `configure_logging` installs (known apart from the application's own)."""
