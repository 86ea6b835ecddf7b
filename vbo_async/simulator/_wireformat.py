"""Pure formatting of wire values: .NET-style timestamps, string booleans, rates and sizes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import formatdate

__all__ = [
    "TICKS_PER_SECOND",
    "epoch_ticks",
    "format_bytes",
    "format_http_date",
    "format_rate",
    "format_ticks",
    "parse_ticks",
    "str_bool",
]

TICKS_PER_SECOND = 10_000_000
"""Timestamps are kept as integer 100-ns ticks since the Unix epoch (the .NET resolution)."""

_UNIX = datetime(1970, 1, 1, tzinfo=UTC)

_UNITS = ("B", "KB", "MB", "GB", "TB", "PB")


def str_bool(value: bool) -> str:
    """A v1 string boolean: ``"true"`` / ``"false"``."""
    return "true" if value else "false"


def epoch_ticks(epoch: datetime | None) -> int:
    """The simulated "now" of a new simulator in ticks: `epoch`, or the real UTC time to the second."""
    moment = datetime.now(UTC).replace(microsecond=0) if epoch is None else epoch
    delta = moment - _UNIX
    return (delta.days * 86400 + delta.seconds) * TICKS_PER_SECOND + delta.microseconds * 10


def parse_ticks(text: str) -> int:
    """Ticks of an ISO 8601 timestamp (``Z``, an offset or none, which means UTC); ValueError if not one."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return epoch_ticks(moment)


def format_ticks(
    ticks: int, *, offset_minutes: int | None = None, fraction: bool = True, digits: int = 7
) -> str:
    """ISO 8601 with 7 fractional digits (``2017-04-01T09:35:59.0469161Z``).

    With `offset_minutes` the local time at that UTC offset is written with a numeric offset
    (``...-07:00``) instead of ``Z``; without `fraction` the fractional part is left out;
    `digits` (1 to 7) cuts the fraction shorter (v6+ servers write 6 digits).
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
        text += f".{rest:07d}"[: digits + 1]
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
