"""How many file descriptors ``serve`` needs and may use (pure, but for reading the limit).

A sweep holds, per server, a connection per request in flight, one for a token request and one
for a name lookup (`client_descriptors`); the exporter's HTTP server keeps up to
`connection_limit` connections; `RESERVED_DESCRIPTORS` are kept for the rest. When the process
may not open enough to sweep every server at once, servers take turns (`servers_at_once`,
`turns`), and a warning says the limit that would sweep them all at once.

The event loop waits on descriptors with epoll (kqueue on BSDs and macOS), not select(), so
descriptors numbered past select()'s 1,024 are no different from the others: the soft limit
(`descriptor_limit`) is the whole bound.
"""

from __future__ import annotations

import logging
import resource
from collections.abc import Sequence

from ._exit import out_of_descriptors

__all__ = [
    "LOGOUT_DESCRIPTORS",
    "MAX_CONNECTIONS",
    "RESERVED_DESCRIPTORS",
    "UNLIMITED",
    "client_descriptors",
    "connection_limit",
    "descriptor_limit",
    "descriptors_needed",
    "for_want_of_descriptors",
    "logouts_at_once",
    "servers_at_once",
    "turns",
    "unlimited",
]

log = logging.getLogger("vbo_async.cli")

MAX_CONNECTIONS = 1024
"""The most HTTP connections ``serve`` keeps open at once, whatever the descriptor limit."""


def connection_limit(nofile: int) -> int:
    """How many HTTP connections ``serve`` keeps open at once under a limit of ``nofile`` open
    descriptors: a quarter of them (the clients' connections to the servers need the rest), at
    least 16 and at most `MAX_CONNECTIONS`."""
    return max(16, min(MAX_CONNECTIONS, nofile // 4))


RESERVED_DESCRIPTORS = 64
"""Descriptors ``serve`` keeps for everything but its connections: standard streams, the event
loop's own, the listening socket, files read (CA bundles), a name lookup's socket."""


def client_descriptors(max_concurrency: int) -> int:
    """Descriptors a client of ``max_concurrency`` may hold while its server is swept: a connection
    per request in flight, one for a token request, one for a name lookup."""
    return max_concurrency + 2


def servers_at_once(nofile: int, needs: Sequence[int], *, serving: bool = True) -> int:
    """How many servers ``serve`` sweeps at the same time under a limit of ``nofile`` open
    descriptors, each server needing ``needs[i]`` while swept: as many as fit beside the HTTP
    connections (`connection_limit`; none for a command that does not ``serve``) and
    `RESERVED_DESCRIPTORS`, every server when all fit, and at least one."""
    room = nofile - (connection_limit(nofile) if serving else 0) - RESERVED_DESCRIPTORS
    if not needs or sum(needs) <= room:
        return len(needs)
    return max(1, room // max(needs))


def descriptors_needed(needs: Sequence[int], *, serving: bool = True) -> int:
    """The smallest open-file limit under which `servers_at_once` sweeps every server at once."""
    low = sum(needs) + RESERVED_DESCRIPTORS  # too few by at least the HTTP connections' 16
    high = low + MAX_CONNECTIONS  # enough: those connections are at most MAX_CONNECTIONS
    while low < high:  # more descriptors never sweep fewer servers at once
        middle = (low + high) // 2
        if servers_at_once(middle, needs, serving=serving) < len(needs):
            low = middle + 1
        else:
            high = middle
    return low


UNLIMITED = 1 << 20
"""The descriptors counted for an unlimited soft limit where the system's own cap cannot be read
(Linux's default ``fs.nr_open``): enough to sweep some 80,000 servers at once."""


def unlimited(cap: int | None) -> int:
    """The open-file limit counted for an unlimited soft limit (RLIM_INFINITY): ``cap``, what the
    system lets one process open, or `UNLIMITED` when that is not known."""
    return cap if cap is not None and cap > 0 else UNLIMITED


def _system_cap() -> int | None:
    """The most descriptors the system lets one process open, where it says (Linux's
    ``/proc/sys/fs/nr_open``); None elsewhere."""
    try:
        with open("/proc/sys/fs/nr_open", encoding="ascii") as file:
            return int(file.read(32).strip())
    except (OSError, ValueError):
        return None


def descriptor_limit() -> int:
    """The process's soft limit of open descriptors; an unlimited one (RLIM_INFINITY, which BSDs
    allow; Linux caps the limit at ``fs.nr_open``) is what the system lets a process open
    (`unlimited`)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return unlimited(_system_cap()) if soft == resource.RLIM_INFINITY else soft


def turns(max_concurrencies: Sequence[int], nofile: int | None = None, *, serving: bool = True) -> int:
    """How many of the servers whose clients have ``max_concurrencies`` are swept at once under
    the limit ``nofile`` (the process's when None) by ``serve`` (or, not ``serving``, by
    ``poll`` or ``check``), with a warning naming the limit that would sweep them all at once
    when that is fewer than all."""
    nofile = descriptor_limit() if nofile is None else nofile
    needs = [client_descriptors(concurrency) for concurrency in max_concurrencies]
    at_once = servers_at_once(nofile, needs, serving=serving)
    if at_once < len(needs):
        log.warning(
            "the open-file limit of %d lets %d of %d servers be swept at once, the others waiting "
            "their turn; a limit of %d or more (LimitNOFILE= in a systemd unit, ulimit -n in a "
            "shell) sweeps them all at once",
            nofile,
            at_once,
            len(needs),
            descriptors_needed(needs, serving=serving),
        )
    return at_once


LOGOUT_DESCRIPTORS = 2
"""Descriptors a client's logout may hold: its connection and a name lookup's."""


def logouts_at_once(clients: int, nofile: int | None = None, *, serving: bool = True) -> int:
    """How many of ``clients`` log out at the same time under the limit ``nofile`` (the
    process's when None)."""
    nofile = descriptor_limit() if nofile is None else nofile
    return servers_at_once(nofile, [LOGOUT_DESCRIPTORS] * clients, serving=serving)


def for_want_of_descriptors(exc: BaseException) -> bool:
    """Whether ``exc`` failed because the process (EMFILE) or the system (ENFILE) had no file
    descriptor free: an `OSError` of those among its causes and contexts."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending and len(seen) < 64:  # a chain a hostile server cannot make longer matters not
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if out_of_descriptors(current):
            return True
        pending += [current.__cause__, current.__context__]
    return False
