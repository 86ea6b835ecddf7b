"""``vbo-async serve``: the targets file, the clients, the socket and the signals around an `Exporter`.

The targets file, passwords, TLS contexts and clients are those of ``poll`` (`read_targets`,
`tls_contexts`, `Passwords`, `Connection.client`), kept by `Servers`. SIGHUP reloads the
targets file between sweeps (`Servers.reload`). SIGTERM stops the exporter cleanly with exit
status 0 and SIGINT (Ctrl-C) with 130: the loop is cancelled, the HTTP server closed and every
client closed (logged out on v7+, in the turns the sweeps take, within `LOGOUTS_WITHIN` seconds
in all; a second SIGTERM or SIGINT closes the clients left at once) before the process ends.
From then to the process's end SIGTERM, SIGINT and SIGHUP are ignored (`_signals`): the exit
status is decided.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import re
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from _vbo_async_cli import EarlyReloads, settled

from ._descriptors import (
    MAX_CONNECTIONS,
    RESERVED_DESCRIPTORS,
    connection_limit,
    descriptor_limit,
    descriptors_needed,
    servers_at_once,
    turns,
)
from ._exit import CLIError, MissingExtra, Outcome, write_banner
from ._plugin import format_duration
from ._reload import LOGOUTS_WITHIN, Loaded, Servers, load
from ._report import plural
from ._secrets import Passwords
from ._simulate import _listen
from ._threads import DaemonThreads, run_unheld, terminated_raises

if TYPE_CHECKING:
    from aiohttp import web

    from .._health import HealthPolicy
    from ._exporter import Exporter

__all__ = [
    "DEFAULT_LISTEN",
    "IDLE_TIMEOUT",
    "LOGOUTS_WITHIN",
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
    passwords = Passwords()
    with _early_reloads() as early:
        with terminated_raises():  # SIGTERM at a prompt (echo off) gives the terminal its echo back
            loaded = load(path, passwords)
        passwords.prompt = False  # a reload (SIGHUP) cannot prompt: it reuses what was typed
        sock = _listen(host, port)
        try:
            return run_unheld(
                _serve(
                    path,
                    loaded,
                    passwords,
                    sock,
                    interval=interval,
                    budget=timeout,
                    concurrency=concurrency,
                    policy=policy,
                    early=early,
                    for_good=True,
                )
            )
        finally:
            sock.close()


@contextlib.contextmanager
def _early_reloads() -> Iterator[EarlyReloads]:
    """SIGHUP recorded (`EarlyReloads`) while the block runs, in the main thread (elsewhere,
    and where there is no SIGHUP, nothing is changed); then handled as before, unless ``serve``
    ignores it for good by then (`_signals`). The recorder the command's entry point installed
    before the package was imported goes on recording: what it recorded then is asked for too."""
    if _RELOAD is None or threading.current_thread() is not threading.main_thread():
        yield EarlyReloads()
        return
    current = signal.getsignal(_RELOAD)
    if isinstance(current, EarlyReloads):
        yield current
        return
    early = EarlyReloads()
    previous = signal.signal(_RELOAD, early)
    try:
        yield early
    finally:
        if signal.getsignal(_RELOAD) is early:
            signal.signal(_RELOAD, previous if previous is not None else signal.SIG_DFL)


async def _serve(
    path: Path,
    loaded: Loaded,
    passwords: Passwords,
    sock: socket.socket,
    *,
    interval: float,
    budget: float | None,
    concurrency: int,
    policy: HealthPolicy | None = None,
    early: EarlyReloads | None = None,
    for_good: bool = False,
) -> Outcome:
    """Serve until stopped (see `serve`); ``for_good`` when the process ends with it (`_signals`)."""
    from aiohttp import web

    from ._exporter import Exporter

    # Name lookups that hang must neither take every thread the exposition is rendered in nor
    # hold the process at exit (see _threads).
    asyncio.get_running_loop().set_default_executor(DaemonThreads())
    # A signal is the command's from here to the end: a second Ctrl-C while the clients log out
    # is not a KeyboardInterrupt through aiohttp's and the clients' code.
    with _signals(for_good=for_good) as signals:
        if early is not None and early.asked:
            signals.reload.set()  # asked for while the files were read: they may have changed since
        within = interval if budget is None else budget  # a sweep's time budget, as the Exporter's
        servers = Servers(path, passwords, within=within)
        loop = asyncio.get_running_loop()
        bounded: _Bounded | None = None
        try:
            specs = servers.build(loaded)
            nofile = descriptor_limit()
            at_once = turns([target.max_concurrency for target, _, _ in loaded], nofile)
            exporter = Exporter(
                specs,
                interval=interval,
                budget=budget,
                concurrency=concurrency,
                policy=policy,
                at_once=at_once,
                turns=servers.turns,
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
            bounded.previous = loop.get_exception_handler()
            loop.set_exception_handler(bounded.exception_handler)
            try:
                listening = await loop.create_server(bounded, sock=sock)
                address = sock.getsockname()
                shown = f"[{address[0]}]" if ":" in address[0] else address[0]
                served = plural(len(specs), "server")
                write_banner(
                    f"Serving the metrics of {served} at http://{shown}:{address[1]}/metrics "
                    f"(a sweep every {format_duration(dt.timedelta(seconds=interval))}; Ctrl-C stops)"
                )
                return await _until_stopped(exporter, signals, servers)
            finally:
                bounded.closed = True
                if listening is not None:
                    listening.close()
                await exporter.stop()
                await runner.cleanup()
        finally:
            await servers.aclose(abandon=signals.again)
            if bounded is not None:
                # Only now: an accept retried a second after a refusal (no descriptor free) is
                # still due on the closed socket while the clients log out (a grant in flight is
                # waited for), and the handler before this one would print its traceback.
                loop.set_exception_handler(bounded.previous)


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
    """The SIGINT and SIGTERM received, a future done at the first and ``again`` set at the
    second (the clients' logouts are then abandoned); ``reload`` is set at a SIGHUP (several
    before the reload they ask for starts are one)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.received: list[signal.Signals] = []
        self.stopped: asyncio.Future[None] = loop.create_future()  # a future: nothing to cancel
        self.again = asyncio.Event()
        self.reload = asyncio.Event()

    def on_signal(self, number: signal.Signals) -> None:
        self.received.append(number)
        if not self.stopped.done():
            self.stopped.set_result(None)
        else:
            self.again.set()


_RELOAD = getattr(signal, "SIGHUP", None)
"""SIGHUP, which no Windows has."""


@contextlib.contextmanager
def _signals(*, for_good: bool = False) -> Iterator[_Signals]:
    """SIGINT and SIGTERM (and SIGHUP) handled by the running loop (`_Signals`) while the block
    runs; with ``for_good`` (the command, whose process ends soon after) ignored after it, for the
    rest of the process's life (SIG_IGN: the interpreter puts a Python handler back to the
    default action as it ends). The exit status is decided by then, but the loop's handlers, once
    removed, left the default actions (asyncio puts them back) for the runner's end and the
    interpreter's, a quarter of a second or so: a service manager's second SIGTERM, or a ``systemctl
    reload`` racing the stop, killed the process by the signal instead of its exit status."""
    loop = asyncio.get_running_loop()
    signals = _Signals(loop)
    numbers = [signal.SIGINT, signal.SIGTERM, *([_RELOAD] if _RELOAD is not None else [])]
    for number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(number, signals.on_signal, number)
    if _RELOAD is not None:
        loop.add_signal_handler(_RELOAD, signals.reload.set)
    try:
        yield signals
    finally:
        with _held(numbers if for_good else []):
            for number in numbers:
                loop.remove_signal_handler(number)
            if for_good:
                settled()  # as every command once its status is decided (the entry point's)


@contextlib.contextmanager
def _held(numbers: list[signal.Signals]) -> Iterator[None]:
    """``numbers`` blocked in this thread while the block runs, so that none comes between a
    handler's removal and what replaces it (one that came meanwhile is delivered after, or dropped
    if now ignored)."""
    if not numbers or not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, numbers)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


async def _until_stopped(exporter: Exporter, signals: _Signals, servers: Servers | None = None) -> Outcome:
    """Run the exporter's loop until SIGTERM (`Outcome.OK`) or SIGINT (`Outcome.INTERRUPTED`),
    reloading ``servers`` at each SIGHUP meanwhile (one reload at a time)."""
    sweeping = exporter.start()
    reloading = asyncio.get_running_loop().create_task(
        _reloads(exporter, signals, servers), name="vbo_async.serve reloads"
    )
    try:
        await asyncio.wait({sweeping, signals.stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        reloading.cancel()
        await asyncio.gather(reloading, return_exceptions=True)
    if sweeping.done() and not signals.received:  # only a BaseException ends the loop by itself
        sweeping.result()
    # A Ctrl-C among the signals is said as one (130), also one a millisecond after a SIGTERM:
    # signals that close can be taken in either order (pending ones by number, SIGINT first).
    return Outcome.INTERRUPTED if signal.SIGINT in signals.received else Outcome.OK


async def _reloads(exporter: Exporter, signals: _Signals, servers: Servers | None) -> None:
    """Reload ``servers`` at each SIGHUP (`Servers.reload`), until cancelled."""
    while True:
        await signals.reload.wait()
        signals.reload.clear()
        if servers is None:
            continue
        try:
            await servers.reload(exporter)
        except Exception:
            exporter.stats.config_ok = False
            log.error("reloading the targets file failed on an internal error", exc_info=True)
