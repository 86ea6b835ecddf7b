"""The server's clock as one client sees it: how far it is off this machine's, from its `Date`.

A VB365 server dates every run by its own clock; a Windows server without NTP may be minutes or
hours off this machine's. An age taken as this machine's now minus the server's time is then
off by as much: a server an hour slow makes every run look an hour older (a daily job stale an
hour early, a failure about to be retried past its retry window), one an hour fast makes it look
an hour younger. Every HTTP answer carries the server's clock in its ``Date`` header (RFC 9110,
to the second): `ServerClock` keeps the offset the answers show (holding still through the
header's jitter), and `ServerClock.now` turns this machine's "now" into the server's, so that
health measures ages on one clock.

An offset under `MIN_OFFSET` (a minute) is taken as none: the header's one-second resolution and
the answer's time on the wire make a few seconds of noise, and a minute changes no verdict. One
larger than `CLOCK_SKEW` (a day) is no clock this machine judges by: a header that far off is
more likely a proxy's, and `assess` takes times that far ahead as a clock set wrong.
"""

from __future__ import annotations

import datetime as dt

from ._health import CLOCK_SKEW
from ._tokens import http_date

__all__ = ["MIN_OFFSET", "ServerClock"]

MIN_OFFSET = dt.timedelta(minutes=1)
"""Offsets shorter than this are taken as none (see the module docstring)."""

_JITTER = dt.timedelta(seconds=2)
"""How far answers' offsets may wander (the ``Date``'s second, the time on the wire) before the
offset kept is replaced."""

_MAX_DATE_CHARS = 64
"""A ``Date`` longer than this is no HTTP date (``Sun, 06 Nov 1994 08:49:37 GMT`` is 29)."""


class ServerClock:
    """How far one server's clock is off this machine's, as its answers with a readable
    ``Date`` show it (one per client: no state is shared between servers)."""

    __slots__ = ("_date", "_said", "due", "offset")

    def __init__(self) -> None:
        self.offset: dt.timedelta | None = None
        """The server's clock minus this machine's (positive: the server is ahead), rounded to
        the second, as answers show it (one differing by more than `_JITTER` from the one kept
        replaces it); None before any answer with a readable ``Date``."""
        self.due = 0.0
        """When (`time.monotonic`) an answer's ``Date`` is next worth a look: a second after the
        last look (the header changes once a second), so that answers in between cost nothing."""
        self._said: str | None = None
        self._date: dt.datetime | None = None

    def observe(self, date: str | None, received: dt.datetime | None = None) -> None:
        """Note the ``Date`` of an answer ``received`` (this machine's aware time, now when not
        given) at. A missing or unreadable ``Date`` changes nothing, nor does one equal to the
        last answer's: the offset it gave holds for its second (and a ``Date`` that stops moving
        is no clock to follow), so an answer costs one string comparison. Never raises."""
        if date is None or date == self._said or len(date) > _MAX_DATE_CHARS:
            return
        # An HTTP date only: not ISO 8601, which `.expires` may be but a ``Date`` is not
        # (``2026-07-01``, a day alone, would be read as its midnight and move "now" by hours).
        self._said, self._date = date, http_date(date)  # one parse a second at most
        if self._date is None:
            return
        if received is None:
            received = dt.datetime.now(dt.UTC)
        # The header is to the second and was written before the answer travelled: rounded, and
        # kept while answers show it within `_JITTER`, so that the tenants of one sweep (and the
        # sweeps after it) are judged at one "now" until the server's clock really moves.
        offset = dt.timedelta(seconds=round((self._date - received).total_seconds()))
        if self.offset is None or abs(offset - self.offset) > _JITTER:
            self.offset = offset

    def shift(self) -> dt.timedelta:
        """What `now` adds to this machine's time: the offset when that is at least
        `MIN_OFFSET` and at most `CLOCK_SKEW`, else nothing."""
        offset = self.offset
        if offset is None or not MIN_OFFSET <= abs(offset) <= CLOCK_SKEW:
            return dt.timedelta(0)
        return offset

    def now(self, at: dt.datetime) -> dt.datetime:
        """This machine's time ``at`` as the server's clock reads it: ``at`` plus `shift`."""
        try:
            return at + self.shift()
        except OverflowError:  # at the calendar's ends: no server runs there
            return at
