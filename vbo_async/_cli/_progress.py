"""Progress on stderr while servers are listed and tenants polled, whenever stderr is a terminal.

Shown also with ``--json`` or a redirected stdout (the output stays clean: progress is on
stderr and is erased when done); nothing at all is written when stderr is not a terminal.
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import Any, Self

__all__ = ["Phase", "Progress"]


class Phase:
    """One bar: ``done`` of ``total`` and how many of them failed."""

    def __init__(self, bar: Any, task: Any, *, total: int = 0) -> None:
        self._bar = bar
        self._task = task
        self.total = total
        self.done = 0
        self.failed = 0

    def extend(self, count: int) -> None:
        """``count`` more to do: the bar of a total learnt as it goes (the tenants of each
        server, as its organizations are listed)."""
        self.total += count
        if self._bar is not None:
            self._bar.update(self._task, total=self.total)

    def advance(self, *, failed: bool = False) -> None:
        self.done += 1
        self.failed += failed
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done, failed=self.failed)


class Progress:
    """A context manager holding the progress display; `phase` adds one bar to it.

    ``enabled`` defaults to whether stderr is a terminal at the time it is entered.
    """

    def __init__(self, *, enabled: bool | None = None) -> None:
        self._enabled = enabled
        self._bar: Any = None

    def __enter__(self) -> Self:
        enabled = self._enabled if self._enabled is not None else _stderr_is_terminal()
        if enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
            from rich.progress import Progress as Bar

            self._bar = Bar(
                "{task.description}",
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[failed]} failed", style="red"),
                TimeElapsedColumn(),
                console=Console(file=sys.stderr, force_terminal=True),
                transient=True,
                redirect_stdout=False,
            )
            self._bar.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def phase(self, description: str, total: int) -> Phase:
        """A new bar, e.g. ``phase("Polling tenants", 300)``."""
        task = None
        if self._bar is not None:
            task = self._bar.add_task(description, total=total, failed=0)
        return Phase(self._bar, task, total=total)


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # closed or replaced by something without isatty
        return False
