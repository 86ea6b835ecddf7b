"""The ``vbo-async`` command's entry point, outside the package so that it runs first.

The command's start-up is mostly imports (the library, httpx, aiohttp, click and rich). A Ctrl-C
then printed a Python traceback; from here it ends the command as it does at any later moment. The
command itself is `vbo_async.cli.main`; this module imports nothing else, so the start-up is no
slower. ``python -m vbo_async`` comes here too: the package's ``__init__`` imports none of the
library (its names are imported when first asked for), so its ``__main__`` runs at once.

It also spares the command httpx's own command line: importing httpx imports ``httpx._main``
(click, rich and pygments, about 25 ms of a start-up of about 300) whenever they are installed, as
the ``cli`` extra installs them, although this process never runs it (`without_httpx_command_line`).
"""

from __future__ import annotations

import contextlib
import importlib
import signal
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator, Sequence
from typing import Any

__all__ = [
    "EarlyReloads",
    "SigtermHandler",
    "Terminated",
    "cannot_start",
    "interrupted",
    "is_check",
    "main",
    "settled",
    "sigterm_handled",
    "terminated",
    "terminated_raises",
]

_STOPPED_BY_CTRL_C = frozenset({"simulate"})
"""The commands that Ctrl-C stops, not interrupts: they end with 0 at any moment it comes."""
_STOPPED_BY_SIGTERM = frozenset({"serve", "simulate"})
"""The commands that SIGTERM stops, not interrupts: they end with 0 at any moment it comes."""
_RELOADED_BY_SIGHUP = frozenset({"serve"})
"""The commands that SIGHUP reloads: from their first moment, it never ends them."""


def main() -> int:
    """Run the ``vbo-async`` command; returns its exit status. SIGTERM is the command's from
    here (`terminated_raises`): while the package imported it killed the process, so that
    ``serve`` stopped by a service manager in its first half second ended otherwise than later.
    Once the command has ended (its status decided, said), SIGINT, SIGTERM and SIGHUP are
    ignored up to the process's exit (`settled`): a second signal (a service manager's second
    SIGTERM, a reload racing the stop) neither kills it nor prints a traceback."""
    started = time.monotonic()  # the command's time limit (check -t) counts from here
    args = sys.argv[1:]
    status: int | None = None
    try:
        with terminated_raises(), reloads_recorded(args):
            try:
                status = _run(args, started)
            except KeyboardInterrupt as stop:  # `Terminated` too
                status = _stopped(args, stop)
            finally:
                settled()
    except KeyboardInterrupt as stop:  # come before `settled` took effect (or before the block)
        settled()  # a signal while a handler was being set up skipped the block's `settled`
        if status is None:
            status = _stopped(args, stop)
    return status if status is not None else 1


def _stopped(args: Sequence[str], stop: KeyboardInterrupt) -> int:
    """Say the command was interrupted or terminated, by the first of the signals that stopped
    it (a SIGTERM raised while a Ctrl-C was handled has the Ctrl-C as its context)."""
    return terminated(args) if isinstance(_first_of(stop), Terminated) else interrupted(args)


def _first_of(stop: BaseException) -> BaseException:
    """The first of the Ctrl-Cs and SIGTERMs in ``stop``'s context (one raised while another
    was handled has that one as its ``__context__``)."""
    seen = 0
    while isinstance(stop.__context__, KeyboardInterrupt) and seen < 100:
        stop, seen = stop.__context__, seen + 1
    return stop


def _run(args: Sequence[str], started: float) -> int:
    try:
        without_httpx_command_line()
        from vbo_async.cli import main as run

        return run(started=started)
    except Exception as exc:  # the package cannot even start (a broken install)
        if not is_check(args):
            raise
        # check's verdict is its stdout and exit status: UNKNOWN there, the traceback after it
        status = cannot_start(args, f"internal error: {type(exc).__name__}: {exc}", status=1)
        if sys.stderr is not None:
            import traceback  # only here: this module imports nothing the start-up does not need

            with contextlib.suppress(OSError, ValueError):
                traceback.print_exc()
        return status


def settled() -> None:
    """The command has ended: SIGINT, SIGTERM and SIGHUP are ignored from now on (in the main
    thread: this module's `main` runs there), so that the status decided is the one the process
    ends with, whatever comes while it closes down."""
    if threading.current_thread() is not threading.main_thread():
        return
    numbers = [number for name in ("SIGINT", "SIGTERM", "SIGHUP") if (number := getattr(signal, name, None))]
    for _ in range(10):
        try:
            # A signal already taken by Python, its handler not yet run, raises here: the
            # handlers are set again, until none is left (then nothing more comes).
            for number in numbers:
                with contextlib.suppress(OSError, ValueError):
                    signal.signal(number, signal.SIG_IGN)
            return
        except KeyboardInterrupt:  # `Terminated` too: the status is decided already
            continue


def is_check(args: Sequence[str]) -> bool:
    """Whether ``args`` run ``check``, the monitoring plugin (its own output and exit codes)."""
    return _command(args) == "check"


def _command(args: Sequence[str]) -> str | None:
    return next((arg for arg in args if not arg.startswith("-")), None)


def interrupted(args: Sequence[str]) -> int:
    """Say that the command named in ``args`` was interrupted while it started, as it says so
    later, and return its exit status: ``check`` (a monitoring plugin) its UNKNOWN line on stdout
    and 3, the other commands one line on stderr and 130. `vbo_async.cli` says it with this
    function too: the package is never imported here, but may import this module, which the
    wheel (and so the editable install) puts beside it. ``simulate``, which Ctrl-C stops, ends
    with 0 then too, as at every later moment."""
    status = 0 if _command(args) in _STOPPED_BY_CTRL_C else 130
    return cannot_start(args, "interrupted", status=status)


def terminated(args: Sequence[str]) -> int:
    """Say that the command named in ``args`` was terminated (SIGTERM) before it ran, as it
    says so later (`interrupted`), and return its exit status: 143, ``check``'s UNKNOWN 3, and
    0 for ``serve`` and ``simulate``, which SIGTERM stops at any moment."""
    status = 0 if _command(args) in _STOPPED_BY_SIGTERM else 143
    return cannot_start(args, "terminated", status=status)


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, ``timeout``) while a command runs, raised as Ctrl-C raises
    `KeyboardInterrupt`, so that the command ends as an interrupted one does: its tasks
    cancelled, its clients logged out, a progress display put away (the terminal's cursor shown
    again). Killed where it stood, the process left all of that behind."""


class SigtermHandler:
    """A SIGTERM handler of vbo-async's own: one of them may replace another for a while (a
    prompt's `terminated_raises` inside `run_unheld`'s handler), never anyone else's."""

    def __init__(self, act: Callable[[], None]) -> None:
        self.act = act

    def __call__(self, number: int, frame: object) -> None:
        if _in_import_callback(frame):
            # An exception raised there is only printed ("Exception ignored in ...") and lost:
            # the signal is taken again once that callback has returned.
            signal.raise_signal(number)
            return
        self.act()


def _in_import_callback(frame: object) -> bool:
    """Whether ``frame`` (where a signal landed) runs a weakref callback of the import system
    (the cleanup of a module's import lock, run by the garbage collector while modules import)."""
    code = getattr(frame, "f_code", None)
    return (
        code is not None
        and getattr(code, "co_name", "") == "cb"
        and str(getattr(code, "co_filename", "")).startswith("<frozen importlib")
    )


def _raise_terminated() -> None:
    raise Terminated


@contextlib.contextmanager
def sigterm_handled(handler: SigtermHandler) -> Iterator[None]:
    """SIGTERM runs ``handler`` while the block runs (in the main thread), unless something else
    handles or ignores it: the default action, or another of vbo-async's handlers, is replaced,
    and put back after, unless the block replaced ``handler`` for good (``serve`` ignores SIGTERM
    once it has stopped, up to its exit: see `vbo_async._cli._serve`)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    if previous is not signal.SIG_DFL and not isinstance(previous, SigtermHandler):
        yield
        return
    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        if signal.getsignal(signal.SIGTERM) is handler:
            signal.signal(signal.SIGTERM, previous)


class EarlyReloads:
    """SIGHUP while ``serve`` starts (importing the package, reading its files, at a password
    prompt), before its loop handles it: recorded in ``asked``, and a reload follows once the loop
    runs. SIGHUP's default action ended the process (129, without a word): ``systemctl reload``
    just after a start stopped the service, which ``Restart=on-failure`` does not bring back."""

    def __init__(self) -> None:
        self.asked = False

    def __call__(self, number: int, frame: object) -> None:
        self.asked = True


@contextlib.contextmanager
def reloads_recorded(args: Sequence[str]) -> Iterator[None]:
    """For a command SIGHUP reloads (``serve``), SIGHUP recorded (`EarlyReloads`) while the block
    runs, in the main thread, unless something else handles or ignores it; the command picks the
    recorder up when it starts handling SIGHUP itself (and ignores it once stopped, up to its
    exit: the recorder is not put back then). For the others nothing changes."""
    number = getattr(signal, "SIGHUP", None)  # no Windows has it
    if (
        number is None
        or _command(args) not in _RELOADED_BY_SIGHUP
        or threading.current_thread() is not threading.main_thread()
        or signal.getsignal(number) is not signal.SIG_DFL
    ):
        yield
        return
    recorder = EarlyReloads()
    signal.signal(number, recorder)
    try:
        yield
    finally:
        if signal.getsignal(number) is recorder:
            signal.signal(number, signal.SIG_DFL)


def terminated_raises() -> contextlib.AbstractContextManager[None]:
    """SIGTERM raises `Terminated` while the block runs, wherever Python is (in the main thread,
    when nothing else handles or ignores it): while the package imports, and at a prompt, which
    blocks the event loop (`run_unheld` otherwise lets the loop cancel the work between
    callbacks)."""
    return sigterm_handled(SigtermHandler(_raise_terminated))


def cannot_start(args: Sequence[str], message: str, *, status: int, error: bool = False) -> int:
    """Say ``message`` (one line) for the command named in ``args`` before it could run, and
    return its exit status: for ``check``, ``VB365 UNKNOWN - message`` on stdout and 3 (UNKNOWN);
    for the other commands ``vbo-async: message`` (``vbo-async: error: message`` when ``error``)
    on stderr and ``status``."""
    if is_check(args):
        stream, text, status = sys.stdout, f"VB365 UNKNOWN - {message}\n", 3
    else:
        stream, text = sys.stderr, f"vbo-async: {'error: ' if error else ''}{message}\n"
    if stream is not None:
        with contextlib.suppress(OSError, ValueError):
            stream.write(text)
            stream.flush()
    return status


def without_httpx_command_line() -> None:
    """Put a stand-in for ``httpx._main`` (httpx's command line, which httpx's ``__init__``
    imports) before httpx is imported: its ``main`` imports the real module when called, so
    ``httpx.main`` still works. Nothing is done once httpx is imported."""
    if "httpx" in sys.modules or "httpx._main" in sys.modules:
        return
    stand_in = types.ModuleType("httpx._main", "httpx's command line, imported when first run")

    def main(*args: Any, **kwargs: Any) -> Any:
        if sys.modules.get("httpx._main") is stand_in:
            del sys.modules["httpx._main"]
        return importlib.import_module("httpx._main").main(*args, **kwargs)

    stand_in.main = main  # type: ignore[attr-defined]
    sys.modules["httpx._main"] = stand_in
