"""A command's time limit (``check -t``, ``poll --timeout``): `TimeLimit`, counted from the
command's start, which `started_at` gives (the process's own as its entry point saw it, before
the command line's modules were imported), or from the end of a password prompt. The sweep ends
a little before the limit (`TimeLimit.sweep_ends`), leaving the logouts their time within it: a
monitoring plugin given ``-t 58`` under its scheduler's 60 s is done by then.
"""

from __future__ import annotations

import datetime as dt
import time

import attrs
import click

__all__ = ["LOGOUT_GRACE", "CommandStart", "TimeLimit", "started_at"]

LOGOUT_GRACE = 0.5
"""Seconds a command's time limit keeps for its logouts at the most (a tenth of the limit when
that is less): the sweep ends that long before it (`TimeLimit.sweep_ends`)."""


@attrs.frozen
class CommandStart:
    """When the command began (`time.monotonic`), carried as the click context's ``obj``."""

    at: float


def started_at() -> float:
    """When the running command began (`CommandStart`); now when it was not said."""
    context = click.get_current_context(silent=True)
    start = context.find_root().obj if context is not None else None
    return start.at if isinstance(start, CommandStart) else time.monotonic()


@attrs.define
class TimeLimit:
    """``said`` (as the user gave it: the messages say it) counted from ``begun``
    (`time.monotonic`; `restart` moves it, after a password prompt)."""

    said: dt.timedelta
    begun: float

    @property
    def seconds(self) -> float:
        return self.said.total_seconds()

    @property
    def ends(self) -> float:
        """When the command is to be done (`time.monotonic`)."""
        return self.begun + self.seconds

    @property
    def grace(self) -> float:
        """Seconds kept for the logouts (`LOGOUT_GRACE`, a tenth of the limit when less)."""
        return min(LOGOUT_GRACE, self.seconds / 10)

    @property
    def sweep_ends(self) -> float:
        """When the sweep stops waiting (`time.monotonic`): `grace` before `ends`."""
        return self.ends - self.grace

    def restart(self, now: float) -> None:
        """Count the limit from ``now`` (`time.monotonic`: a password was typed at a prompt,
        which may take minutes)."""
        self.begun = now
