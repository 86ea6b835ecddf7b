"""``vbo-async serve``: the targets file, the clients, the socket and the signals around an `Exporter`.

The targets file, passwords, TLS contexts and clients are those of ``poll`` (`read_targets`,
`tls_contexts`, `read_password`, `Connection.client`). SIGTERM stops the exporter cleanly with
exit status 0 and SIGINT (Ctrl-C) with 130: the loop is cancelled, the HTTP server closed and
every client closed (logged out on v7+) before the process ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import socket
import ssl
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import click

from ._connect import read_password
from ._exit import CLIError, MissingExtra, Outcome
from ._report import plural
from ._simulate import _listen
from ._targets import ServerTarget, read_targets, tls_contexts
from ._threads import DaemonThreads, run_unheld

if TYPE_CHECKING:
    from .._health import HealthPolicy
    from ._exporter import Exporter

__all__ = ["DEFAULT_LISTEN", "exporter_extra", "parse_listen", "serve"]

DEFAULT_LISTEN = "127.0.0.1:9810"
STOP_WITHIN = 1.0
"""Seconds ``serve``, once told to stop, waits for an answer it is still sending (twice at most:
for the answer, then for its handler); a scraper that stopped reading must not hold the exit
past a service manager's stop timeout, and the clients' logouts after it."""
_LISTEN = re.compile(r"^(?:\[(?P<v6>[^\]]*)\]|(?P<host>[^:\[\]]*)):(?P<port>\d{1,5})$")


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
        exporter = Exporter(specs, interval=interval, budget=budget, concurrency=concurrency, policy=policy)
        runner = web.AppRunner(
            exporter.app(), access_log=None, handle_signals=False, shutdown_timeout=STOP_WITHIN
        )
        await runner.setup()
        try:
            await web.SockSite(runner, sock).start()
            address = sock.getsockname()
            shown = f"[{address[0]}]" if ":" in address[0] else address[0]
            served = plural(len(specs), "server")
            click.echo(
                f"Serving the metrics of {served} at http://{shown}:{address[1]}/metrics "
                f"(a sweep every {interval:g} s; Ctrl-C stops)"
            )
            return await _until_stopped(exporter)
        finally:
            await exporter.stop()
            await runner.cleanup()
    finally:
        await asyncio.gather(*(spec.client.aclose() for spec in specs), return_exceptions=True)


async def _until_stopped(exporter: Exporter) -> Outcome:
    """Run the exporter's loop until SIGTERM (`Outcome.OK`) or SIGINT (`Outcome.INTERRUPTED`)."""
    loop = asyncio.get_running_loop()
    received: list[signal.Signals] = []
    stopped: asyncio.Future[None] = loop.create_future()  # a future, not a task: nothing to cancel

    def on_signal(number: signal.Signals) -> None:
        received.append(number)
        if not stopped.done():
            stopped.set_result(None)

    for number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(number, on_signal, number)
    try:
        sweeping = exporter.start()
        await asyncio.wait({sweeping, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if sweeping.done() and not received:  # only a BaseException ends the loop by itself
            sweeping.result()
    finally:
        for number in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(number)
    return Outcome.INTERRUPTED if signal.SIGINT in received else Outcome.OK
