"""Pure formatting of v1 wire values: .NET-style timestamps, string booleans, rates and sizes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import formatdate

__all__ = [
    "EPOCH_TICKS",
    "TICKS_PER_SECOND",
    "format_bytes",
    "format_http_date",
    "format_rate",
    "format_ticks",
    "str_bool",
]

TICKS_PER_SECOND = 10_000_000
"""Timestamps are kept as integer 100-ns ticks since the Unix epoch (the .NET resolution)."""

_UNIX = datetime(1970, 1, 1, tzinfo=UTC)
EPOCH_TICKS = int((datetime(2017, 4, 4, 10, 0, tzinfo=UTC) - _UNIX).total_seconds()) * TICKS_PER_SECOND
"""The simulated "now" when a simulator is built; generated history lies before it."""

_UNITS = ("B", "KB", "MB", "GB", "TB", "PB")


def str_bool(value: bool) -> str:
    """A v1 string boolean: ``"true"`` / ``"false"``."""
    return "true" if value else "false"


def format_ticks(ticks: int, *, offset_minutes: int | None = None, fraction: bool = True) -> str:
    """ISO 8601 with 7 fractional digits (``2017-04-01T09:35:59.0469161Z``).

    With `offset_minutes` the local time at that UTC offset is written with a numeric offset
    (``...-07:00``) instead of ``Z``; without `fraction` the fractional part is left out.
    """
    seconds, rest = divmod(ticks, TICKS_PER_SECOND)
    moment = _UNIX + timedelta(seconds=seconds)
    suffix = "Z"
    if offset_minutes is not None:
        moment += timedelta(minutes=offset_minutes)
        sign = "-" if offset_minutes < 0 else "+"
        hours, minutes = divmod(abs(offset_minutes), 60)
        suffix = f"{sign}{hours:02d}:{minutes:02d}"
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if fraction:
        text += f".{rest:07d}"
    return text + suffix


def format_http_date(timestamp: float) -> str:
    """RFC 1123 as the OWIN token endpoint writes it: ``Mon, 03 Apr 2017 10:00:00 GMT``."""
    return formatdate(timestamp, usegmt=True)


def format_bytes(size: float) -> str:
    """A size the way v1 statistics show it: ``0 B``, ``99.1 KB``, ``1.2 GB``."""
    if size < 1024:
        return f"{int(size)} B"
    value = float(size)
    unit = 0
    while value >= 1024 and unit < len(_UNITS) - 1:
        value /= 1024
        unit += 1
    return f"{value:.1f} {_UNITS[unit]}"


def format_rate(bytes_per_second: float, items_per_second: int | None = None) -> str:
    """A v1 rate string: ``1.0 MB/s`` or, with items, ``99.1 KB/s (6 items/s)``."""
    text = f"{format_bytes(bytes_per_second)}/s"
    if items_per_second is not None:
        text += f" ({items_per_second} items/s)"
    return text
