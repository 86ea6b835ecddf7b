"""Exit codes and the errors the command line reports as one line: pure, no click or rich here.

A command ends in an `Outcome`; each command maps outcomes to numbers through its `ExitCodes`.
Every command uses `STANDARD` but the monitoring plugin ``check``, whose table
(`vbo_async._cli._plugin.PLUGIN_CODES`) makes every outcome that is not a verdict UNKNOWN (3)
and which returns its verdict's number (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN) directly.
"""

from __future__ import annotations

import contextlib
import enum
import errno
import os
import sys
from collections.abc import Iterator
from typing import TypeGuard

import attrs

from .._extras import SIMULATOR_PACKAGES, missing_package

__all__ = [
    "EXIT_CODES_HELP",
    "STANDARD",
    "STOPPED_BY_SIGTERM",
    "CLIError",
    "ExitCodes",
    "MissingExtra",
    "Outcome",
    "failure_line",
    "out_of_descriptors",
    "quiet_stdout",
    "simulator_extra",
    "write_banner",
    "writing_output",
]


class Outcome(enum.Enum):
    """How a command ended, before it is turned into a number."""

    OK = "ok"
    """Everything asked for was read (a job whose last run failed is data, not a failure)."""
    UNREADABLE = "unreadable"
    """A server, a tenant or a job's sessions could not be read (what could be read was still
    printed), the output could not be written, or the simulator could not start."""
    USAGE = "usage"
    """Bad option, bad targets file, bad configuration or a missing extra: nothing was done."""
    INTERRUPTED = "interrupted"
    """Ctrl-C (SIGINT)."""
    TERMINATED = "terminated"
    """SIGTERM (``kill``, ``timeout``, a service manager stopping it)."""


@attrs.frozen(kw_only=True)
class ExitCodes:
    """The exit status of each `Outcome` for one command."""

    ok: int
    unreadable: int
    usage: int
    interrupted: int
    terminated: int

    def __getitem__(self, outcome: Outcome) -> int:
        return int(getattr(self, outcome.value))


STANDARD = ExitCodes(ok=0, unreadable=1, usage=2, interrupted=130, terminated=143)
"""The exit codes of ``demo``, ``simulate``, ``jobs``, ``organizations`` and ``poll``
(``check`` has the monitoring plugins' own)."""

STOPPED_BY_SIGTERM = ExitCodes(ok=0, unreadable=1, usage=2, interrupted=130, terminated=0)
"""The exit codes of ``serve`` and ``simulate``, which SIGTERM (a service manager) stops: 0 at
any moment it comes, as while they serve (`_vbo_async_cli.terminated` says so before they run)."""

EXIT_CODES_HELP = """\
Exit codes:

\b
  0    everything was read (jobs whose last run Failed are data, not an error)
  1    a server, a tenant or a job's sessions could not be read (the rest
       is still printed), the output could not be written, or the simulator
       could not start
  2    usage error: bad option, bad targets file, bad configuration,
       or an extra that is not installed
  130  interrupted (Ctrl-C); 'simulate' ends with 0, Ctrl-C being how it stops
  143  terminated (SIGTERM), after closing as on Ctrl-C; 'serve' and 'simulate',
       which SIGTERM stops, end with 0
'check' exits as a monitoring plugin instead: OK 0, WARNING 1, CRITICAL 2,
UNKNOWN 3 (usage errors and servers that cannot be read included).
"""


def out_of_descriptors(exc: BaseException | None) -> TypeGuard[OSError]:
    """Whether ``exc`` is the `OSError` of a file the process (EMFILE) or the system (ENFILE) had
    no descriptor free to open."""
    return isinstance(exc, OSError) and exc.errno in (errno.EMFILE, errno.ENFILE)


def failure_line(exc: BaseException) -> str:
    """The line a command ends with on an exception nothing else handled: the process out of
    file descriptors (a module it imports late, a file it opens) said as such, anything else
    an internal error."""
    if out_of_descriptors(exc):
        return (
            f"out of file descriptors: {exc.strerror or exc} "
            "(raise the open-file limit: ulimit -n, or LimitNOFILE= in a systemd unit)"
        )
    return f"internal error: {type(exc).__name__}: {exc} (VBO_ASYNC_LOG=debug shows where)"


class CLIError(Exception):
    """A problem reported as one ``vbo-async: error: ...`` line on stderr.

    ``outcome`` says which exit code it ends with: `Outcome.USAGE` for anything wrong with the
    command line, the files or the environment it reads, `Outcome.UNREADABLE` for what the
    servers did. Several ``lines`` (one per problem in a targets file) print one line each.
    """

    def __init__(self, *lines: str, outcome: Outcome = Outcome.USAGE) -> None:
        super().__init__(lines[0] if lines else "")
        self.lines = lines
        self.outcome = outcome


class MissingExtra(CLIError):
    """A command needs packages of an extra that is not installed (exit code: usage)."""

    def __init__(self, command: str, extra: str, missing: str | None) -> None:
        what = f" ({missing} is not installed)" if missing else ""
        super().__init__(
            f"'vbo-async {command}' needs the '{extra}' extra{what}: pip install 'vbo-async[{extra}]'"
        )
        self.extra = extra


@contextlib.contextmanager
def simulator_extra(command: str) -> Iterator[None]:
    """Turn the `ImportError` of a missing simulator package into `MissingExtra` naming the extra."""
    try:
        yield
    except ImportError as exc:
        missing = missing_package(exc, SIMULATOR_PACKAGES)
        if missing is None:
            raise
        raise MissingExtra(command, "simulator", missing) from None


def quiet_stdout() -> None:
    """The output could not be written (a reader gone away, a full disk): point stdout at
    /dev/null, so the interpreter's last flush at exit does not fail a second time."""
    if sys.stdout is None:
        return
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


@contextlib.contextmanager
def writing_output() -> Iterator[None]:
    """Writing the output on stdout: a failure (a full disk, an I/O error) is one line saying so,
    exit 1, not an internal error; a reader gone away (`BrokenPipeError`) stays silent."""
    if sys.stdout is None:  # closed (``>&-``)
        raise CLIError("cannot write the output: stdout is closed", outcome=Outcome.UNREADABLE)
    try:
        yield
    except BrokenPipeError:
        raise
    except OSError as exc:
        quiet_stdout()
        raise CLIError(
            f"cannot write the output: {exc.strerror or exc}", outcome=Outcome.UNREADABLE
        ) from None


def write_banner(line: str) -> None:
    """Write ``line`` (what ``serve`` or ``simulate`` serves, and where) on stdout, under
    `writing_output`: a closed stdout (a service started with ``>&-``) is left out and nothing
    said."""
    if sys.stdout is None:
        return
    with writing_output():
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
