"""``vbo-async serve``: the targets file, the clients, the socket and the signals around an `Exporter`.

The targets file, passwords, TLS contexts and clients are those of ``poll`` (`read_targets`,
`tls_contexts`, `read_password`, `Connection.client`). SIGTERM stops the exporter cleanly with
exit status 0 and SIGINT (Ctrl-C) with 130: the loop is cancelled, the HTTP server closed and
every client closed (logged out on v7+) before the process ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import resource
import signal
import socket
import ssl
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ._connect import read_password
from ._exit import CLIError, MissingExtra, Outcome, write_banner
from ._report import plural
from ._simulate import _listen
from ._targets import ServerTarget, read_targets, tls_contexts
from ._threads import DaemonThreads, run_unheld, terminated_raises

if TYPE_CHECKING:
    from aiohttp import web

    from .._health import HealthPolicy
    from ._exporter import Exporter

__all__ = [
    "DEFAULT_LISTEN",
    "IDLE_TIMEOUT",
    "MAX_CONNECTIONS",
    "RESERVED_DESCRIPTORS",
    "STOP_WITHIN",
    "connection_limit",
    "descriptors_needed",
    "exporter_extra",
    "parse_listen",
    "serve",
    "servers_at_once",
]

log = logging.getLogger("vbo_async.cli")

DEFAULT_LISTEN = "127.0.0.1:9810"
MAX_CONNECTIONS = 1024
"""The most HTTP connections ``serve`` keeps open at once, whatever the descriptor limit."""
IDLE_TIMEOUT = 15.0
"""Seconds a connection may stay open without a complete request (before its first, or between
two): a client that sends nothing, or a request a byte at a time, is then closed."""
STOP_WITHIN = 1.0
"""Seconds ``serve``, once told to stop, waits for an answer it is still sending (twice at most:
for the answer, then for its handler); a scraper that stopped reading must not hold the exit
past a service manager's stop timeout, and the clients' logouts after it."""
_LISTEN = re.compile(r"^(?:\[(?P<v6>[^\]]+)\]|(?P<host>[^:\[\]]*)):(?P<port>[0-9]{1,5})$")
"""``HOST:PORT``, ``[IPv6]:PORT`` (empty brackets are no address) or ``:PORT``; the port in
ASCII digits (``\\d`` takes any script's, and int() reads them)."""


def parse_listen(text: str) -> tuple[str, int]:
    """``(host, port)`` of ``HOST:PORT``, ``[IPv6]:PORT`` or ``:PORT`` (every IPv4 interface).

    ```python
    parse_listen("127.0.0.1:9810")  # ("127.0.0.1", 9810)
    ```
    """
    match = _LISTEN.match(text.strip())
    port = int(match["port"]) if match else -1
    if match is None or not 0 <= port <= 65535:
        raise CLIError(f"--listen must be HOST:PORT, [IPv6]:PORT or :PORT (port 0-65535), got {text!r}")
    host = match["v6"] if match["v6"] is not None else match["host"]
    return host or "0.0.0.0", port


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


def servers_at_once(nofile: int, needs: Sequence[int]) -> int:
    """How many servers ``serve`` sweeps at the same time under a limit of ``nofile`` open
    descriptors, each server needing ``needs[i]`` while swept: as many as fit beside the HTTP
    connections (`connection_limit`) and `RESERVED_DESCRIPTORS`, every server when all fit,
    and at least one."""
    room = nofile - connection_limit(nofile) - RESERVED_DESCRIPTORS
    if not needs or sum(needs) <= room:
        return len(needs)
    return max(1, room // max(needs))


def descriptors_needed(needs: Sequence[int]) -> int:
    """The smallest open-file limit under which `servers_at_once` sweeps every server at once."""
    low = sum(needs) + RESERVED_DESCRIPTORS  # too few by at least the HTTP connections' 16
    high = low + MAX_CONNECTIONS  # enough: those connections are at most MAX_CONNECTIONS
    while low < high:  # more descriptors never sweep fewer servers at once
        middle = (low + high) // 2
        if servers_at_once(middle, needs) < len(needs):
            low = middle + 1
        else:
            high = middle
    return low


def _descriptor_limit() -> int:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return MAX_CONNECTIONS * 4 if soft == resource.RLIM_INFINITY else soft


class _HttpLog(logging.LoggerAdapter[logging.Logger]):
    """aiohttp's server log, under ``vbo_async.cli`` (one line each on stderr, as the command's
    own): a request it cannot parse, a client's error answered 400, at debug level; the rest as
    errors."""

    def exception(self, msg: object, *args: object, exc_info: Any = True, **kwargs: Any) -> None:
        from aiohttp.http_exceptions import HttpProcessingError

        if isinstance(exc_info, HttpProcessingError):
            self.debug(msg, *args, exc_info=exc_info, **kwargs)
        else:
            self.error(msg, *args, exc_info=exc_info, **kwargs)


_REFUSAL = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Connection: close\r\nContent-Length: 21\r\n\r\ntoo many connections\n"
)


_ACCEPT_STARVED = "socket.accept() out of system resource"
"""How asyncio's event loops report an accept refused with EMFILE, ENFILE, ENOBUFS or ENOMEM."""


class _Refused(asyncio.Protocol):
    """A connection over the limit: answered 503 and closed at once."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if isinstance(transport, asyncio.WriteTransport):
            transport.write(_REFUSAL)
        transport.close()


@contextlib.contextmanager
def exporter_extra() -> Iterator[None]:
    """Turn a missing prometheus_client into `MissingExtra` naming the ``exporter`` extra."""
    try:
        yield
    except ImportError as exc:
        if (exc.name or "").partition(".")[0] != "prometheus_client":
            raise
        raise MissingExtra("serve", "exporter", "prometheus_client") from None


def serve(
    path: Path,
    *,
    listen: str,
    interval: float,
    timeout: float | None,
    concurrency: int,
    policy: HealthPolicy | None = None,
) -> Outcome:
    """Serve the metrics of every server of the targets file at ``path`` until SIGTERM or SIGINT,
    judging jobs under ``policy`` (default `HealthPolicy()`)."""
    host, port = parse_listen(listen)
    with exporter_extra():
        from ._exporter import Exporter  # noqa: F401  (prometheus_client is needed: fail early)
    targets = read_targets(path)
    verify = tls_contexts(path, targets)
    passwords: dict[str, str] = {}
    with terminated_raises():  # SIGTERM at a prompt (echo off) gives the terminal its echo back
        for target in targets.servers:
            if target.password_env not in passwords:
                prompt = f"Password for {target.label} ({target.username}): "
                passwords[target.password_env] = read_password(target.password_env, prompt)
    sock = _listen(host, port)
    try:
        return run_unheld(
            _serve(
                targets.servers,
                verify,
                passwords,
                sock,
                interval=interval,
                budget=timeout,
                concurrency=concurrency,
                policy=policy,
            )
        )
    finally:
        sock.close()


async def _serve(
    servers: tuple[ServerTarget, ...],
    verify: Sequence[ssl.SSLContext | Literal[False]],
    passwords: dict[str, str],
    sock: socket.socket,
    *,
    interval: float,
    budget: float | None,
    concurrency: int,
    policy: HealthPolicy | None = None,
) -> Outcome:
    from aiohttp import web

    from ._exporter import Exporter
    from ._sweeps import ServerSpec

    # Name lookups that hang must neither take every thread the exposition is rendered in nor
    # hold the process at exit (see _threads).
    asyncio.get_running_loop().set_default_executor(DaemonThreads())
    # A signal is the command's from here to the end: a second Ctrl-C while the clients log out
    # is not a KeyboardInterrupt through aiohttp's and the clients' code.
    with _signals() as signals:
        specs: list[ServerSpec] = []
        within = interval if budget is None else budget  # a sweep's time budget, as the Exporter's
        try:
            for target, tls in zip(servers, verify, strict=True):
                connection = target.connection()
                client = connection.client(
                    passwords[target.password_env],
                    verify=tls,
                    max_concurrency=target.max_concurrency,
                    within=within,
                )
                specs.append(ServerSpec(name=target.label, client=client, organizations=target.organizations))
            nofile = _descriptor_limit()
            needs = [client_descriptors(target.max_concurrency) for target in servers]
            at_once = servers_at_once(nofile, needs)
            if at_once < len(needs):
                log.warning(
                    "the open-file limit of %d lets %s be swept at once, the others waiting their "
                    "turn; a limit of %d or more (LimitNOFILE= in a systemd unit, ulimit -n in a "
                    "shell) sweeps them all at once",
                    nofile,
                    f"{at_once} of {len(needs)} servers",
                    descriptors_needed(needs),
                )
            exporter = Exporter(
                specs,
                interval=interval,
                budget=budget,
                concurrency=concurrency,
                policy=policy,
                at_once=at_once,
            )
            runner = web.AppRunner(
                exporter.app(),
                access_log=None,
                handle_signals=False,
                shutdown_timeout=STOP_WITHIN,
                keepalive_timeout=IDLE_TIMEOUT,
                logger=_HttpLog(logging.getLogger("vbo_async.cli.http"), {}),
            )
            await runner.setup()
            listening: asyncio.Server | None = None
            bounded = _Bounded(runner.server, connection_limit(nofile))
            loop = asyncio.get_running_loop()
            bounded.previous = loop.get_exception_handler()
            loop.set_exception_handler(bounded.exception_handler)
            try:
                listening = await loop.create_server(bounded, sock=sock)
                address = sock.getsockname()
                shown = f"[{address[0]}]" if ":" in address[0] else address[0]
                served = plural(len(specs), "server")
                write_banner(
                    f"Serving the metrics of {served} at http://{shown}:{address[1]}/metrics "
                    f"(a sweep every {interval:g} s; Ctrl-C stops)"
                )
                return await _until_stopped(exporter, signals)
            finally:
                bounded.closed = True
                if listening is not None:
                    listening.close()
                await exporter.stop()
                await runner.cleanup()
                loop.set_exception_handler(bounded.previous)
        finally:
            await asyncio.gather(*(spec.client.aclose() for spec in specs), return_exceptions=True)


class _Bounded:
    """The protocol factory of the listening socket: ``server``'s connections, at most ``limit``
    open at once (counted from their creation to their loss, so a burst accepted in one go counts
    too); past that a new connection is answered 503 and closed (a warning once each time the
    limit is reached), so that no client can take every descriptor of the process."""

    def __init__(self, server: web.Server | None, limit: int) -> None:
        assert server is not None  # the runner is set up
        self.server = server
        self.limit = limit
        self.open = 0
        self.refusing = False
        self.starved = False
        """Whether accepting failed for want of a descriptor, and none was accepted since."""
        self.closed = False
        """Whether the listening socket is closed (``serve`` is stopping)."""
        self.previous: Callable[[asyncio.AbstractEventLoop, dict[str, Any]], object] | None = None
        """The loop's exception handler before this one, which gets everything else."""

    def exception_handler(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        """The event loop's exception handler while ``serve`` listens. asyncio reports an accept
        refused for want of a descriptor (or memory) with its traceback, and goes on trying to
        accept up to a hundred times in a row, each failure reported and each scheduling a retry
        a second later: hundreds of tracebacks a second, and as many at exit from the retries
        left on the closed socket. That is one warning here when it begins and one when a
        connection is accepted again; the retries on the closed socket are dropped. Anything
        else goes to the handler before this one (the loop's default one when none was set)."""
        if context.get("message") == _ACCEPT_STARVED:
            if not self.starved:
                self.starved = True
                log.warning(
                    "cannot accept connections: %s (trying again each second)", context.get("exception")
                )
            return
        handle = context.get("handle")
        callback = getattr(handle, "_callback", None)
        if self.closed and getattr(callback, "__name__", None) == "_start_serving":
            return
        if self.previous is not None:
            self.previous(loop, context)
        else:
            loop.default_exception_handler(context)

    def __call__(self) -> asyncio.BaseProtocol:
        if self.starved:
            self.starved = False
            log.warning("accepting connections again")
        if self.open < self.limit:
            self.refusing = False
            self.open += 1
            return _Counted(self.server(), self)
        if not self.refusing:
            self.refusing = True
            log.warning("%d HTTP connections are open: new ones are refused until some close", self.limit)
        return _Refused()


class _Counted(asyncio.Protocol):
    """An aiohttp connection (``inner``) that leaves `_Bounded`'s count when it is lost."""

    def __init__(self, inner: asyncio.Protocol, bounded: _Bounded) -> None:
        self.inner = inner
        self.bounded = bounded

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.inner.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.bounded.open -= 1
        self.inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()


class _Signals:
    """The SIGINT and SIGTERM received, and a future done at the first."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.received: list[signal.Signals] = []
        self.stopped: asyncio.Future[None] = loop.create_future()  # a future: nothing to cancel

    def on_signal(self, number: signal.Signals) -> None:
        self.received.append(number)
        if not self.stopped.done():
            self.stopped.set_result(None)


@contextlib.contextmanager
def _signals() -> Iterator[_Signals]:
    """SIGINT and SIGTERM handled by the running loop (`_Signals`) while the block runs."""
    loop = asyncio.get_running_loop()
    signals = _Signals(loop)
    for number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(number, signals.on_signal, number)
    try:
        yield signals
    finally:
        for number in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(number)


async def _until_stopped(exporter: Exporter, signals: _Signals) -> Outcome:
    """Run the exporter's loop until SIGTERM (`Outcome.OK`) or SIGINT (`Outcome.INTERRUPTED`)."""
    sweeping = exporter.start()
    await asyncio.wait({sweeping, signals.stopped}, return_when=asyncio.FIRST_COMPLETED)
    if sweeping.done() and not signals.received:  # only a BaseException ends the loop by itself
        sweeping.result()
    return Outcome.INTERRUPTED if signal.SIGINT in signals.received else Outcome.OK
