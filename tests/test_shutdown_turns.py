"""``serve``'s turns across a reload and at shutdown: the servers sweeping at once, and the
clients logging out at once, stay within the open-file limit's turns; shutdown stays bounded."""

from __future__ import annotations

import asyncio
import errno
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

import vbo_async._client
from vbo_async import VBOClient
from vbo_async._cli._exporter import Exporter
from vbo_async._cli._reload import Servers, load
from vbo_async._cli._secrets import Passwords
from vbo_async._cli._sweeps import ServerSpec
from vbo_async.simulator import SimulatorConfig, create_app

from .conftest import FAST, serve
from .test_cli import HANG_GUARD, write_targets

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class Logouts:
    """An ASGI wrapper around the simulator counting the logouts in flight (the most at once)
    and holding each until ``release`` is set (a tenth of a second when ``hold``)."""

    def __init__(self, app: Any, *, hold: bool = False) -> None:
        self.app = app
        self.hold = hold
        self.now = 0
        self.most = 0
        self.arrived = 0
        self.first = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].endswith("/token/logout"):
            self.now += 1
            self.arrived += 1
            self.most = max(self.most, self.now)
            self.first.set()
            try:
                if self.hold:
                    await asyncio.sleep(0.1)  # long enough for logouts sent at once to overlap
                else:
                    await self.release.wait()
            finally:
                self.now -= 1
        await self.app(scope, receive, send)


def _servers(tmp_path: Path, port: int, count: int, monkeypatch: pytest.MonkeyPatch) -> Servers:
    tables = "".join(
        f'[[servers]]\nname = "s{n}"\nurl = "http://127.0.0.1:{port}"\napi_version = "v8"\n'
        'username = "admin"\npassword_env = "VBO_PASSWORD"\n\n'
        for n in range(count)
    )
    path = write_targets(tmp_path / "targets.toml", tables)
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    passwords = Passwords(prompt=False)
    servers = Servers(path, passwords, within=30.0)
    servers.build(load(path, passwords))
    return servers


def _clients(servers: Servers) -> list[VBOClient]:
    return [spec.client for _, spec in servers._live.values()]


async def _signed_in(servers: Servers) -> list[VBOClient]:
    clients = _clients(servers)
    for client in clients:
        await client.organizations()  # a token to log out
    return clients


async def test_a_reload_while_sweeps_run_keeps_the_servers_swept_at_once_within_the_new_turns() -> None:
    """A reload replaced the turns while sweeps held the old ones: the sweeps of the new turns
    started beside those still running, up to twice the servers the open-file limit lets sweep
    at once. The sweeps in progress now count against the new turns."""
    clients = [VBOClient(f"http://127.0.0.1:{n + 1}", username="u", password="p") for n in range(4)]
    try:
        specs = [ServerSpec(name=f"s{n}", client=client) for n, client in enumerate(clients)]
        exporter = Exporter(specs, interval=60.0, at_once=2)
        await exporter.turns.acquire()  # two sweeps in progress, in their turns
        await exporter.turns.acquire()
        await exporter.reconfigure(specs, at_once=2)
        third = asyncio.create_task(exporter.turns.acquire())
        for _ in range(5):
            await asyncio.sleep(0)
        assert not third.done()  # waits for one of the two in progress
        exporter.turns.release()
        await asyncio.wait_for(third, HANG_GUARD)
        await exporter.reconfigure(specs[:1], at_once=None)
        await asyncio.wait_for(exporter.turns.acquire(), HANG_GUARD)  # unbounded: at once
    finally:
        for client in clients:
            await client.aclose()


async def test_the_logouts_at_shutdown_take_turns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every client logged out at once at shutdown: under a low open-file limit some of those
    logouts could not open a connection (their tokens left to expire). They now take the turns
    the sweeps take, and every client is logged out."""
    app = create_app(SimulatorConfig(seed=3, organizations=1, api_versions=("v8",)))
    logouts = Logouts(app, hold=True)
    async with serve(logouts) as port:
        servers = _servers(tmp_path, port, 4, monkeypatch)
        clients = await _signed_in(servers)
        servers.turns.resize(2)
        await asyncio.wait_for(servers.aclose(), HANG_GUARD)
    assert logouts.arrived == 4
    assert app.state.simulator.stats.logouts["v8"] == 4
    assert logouts.most <= 2
    assert all(client._fetcher.closed for client in clients)


async def test_logouts_that_hang_hold_shutdown_no_longer_than_its_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server whose logouts never answer, its clients taking turns: shutdown waited for each
    logout in turn. It now ends at its budget, every client closed (those whose logout had not
    started are closed without sending one)."""
    monkeypatch.setattr(vbo_async._client, "LOGOUT_TIMEOUT", 3600.0)  # only the budget ends them
    logouts = Logouts(create_app(SimulatorConfig(seed=3, organizations=1, api_versions=("v8",))))
    async with serve(logouts) as port:
        servers = _servers(tmp_path, port, 3, monkeypatch)
        clients = await _signed_in(servers)
        servers.turns.resize(1)
        await asyncio.wait_for(servers.aclose(within=0.5), HANG_GUARD)
        logouts.release.set()
    assert logouts.arrived <= 1
    assert all(client._fetcher.closed for client in clients)
    assert all(client._tokens.forget() is None for client in clients)


async def test_a_second_stop_signal_abandons_the_logouts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGTERM (or Ctrl-C) again while the clients log out: they are closed at once, the logouts
    not yet answered abandoned."""
    monkeypatch.setattr(vbo_async._client, "LOGOUT_TIMEOUT", 3600.0)
    logouts = Logouts(create_app(SimulatorConfig(seed=3, organizations=1, api_versions=("v8",))))
    async with serve(logouts) as port:
        servers = _servers(tmp_path, port, 3, monkeypatch)
        clients = await _signed_in(servers)
        servers.turns.resize(1)
        again = asyncio.Event()
        closing = asyncio.create_task(servers.aclose(within=3600.0, abandon=again))
        await asyncio.wait_for(logouts.first.wait(), HANG_GUARD)
        again.set()
        await asyncio.wait_for(closing, HANG_GUARD)
        logouts.release.set()
    assert logouts.arrived == 1
    assert all(client._fetcher.closed for client in clients)


async def test_the_second_stop_signal_is_the_one_that_abandons_the_logouts() -> None:
    """`serve` hands `Servers.aclose` the event its second SIGTERM or SIGINT sets."""
    from vbo_async._cli._serve import _Signals

    signals = _Signals(asyncio.get_running_loop())
    signals.on_signal(signal.SIGTERM)
    assert signals.stopped.done()
    assert not signals.again.is_set()
    signals.on_signal(signal.SIGINT)
    assert signals.again.is_set()


def _httpcore_connections(transport: httpx.AsyncHTTPTransport) -> int:
    return len(transport._pool.connections)


async def test_a_server_over_httpx_s_own_transport_closes_its_idle_connections_as_its_turn_ends() -> None:
    """A client given httpx's own transport (``transport=httpx.AsyncHTTPTransport(...)``, as a
    proxy needs, or where aiohttp's cannot be loaded) kept its idle connections after its turn:
    the turns did not bound the descriptors its clients held. They are now closed there too,
    and the client goes on working."""
    app = create_app(SimulatorConfig(seed=4, organizations=3, api_versions=("v8",)))
    async with serve(app) as port:
        transports = [httpx.AsyncHTTPTransport() for _ in range(2)]
        clients = [
            VBOClient(
                f"http://127.0.0.1:{port}",
                username="admin",
                password="admin",
                api_version="v8",
                transport=transport,
            )
            for transport in transports
        ]
        try:
            specs = [ServerSpec(name=f"s{n}", client=client) for n, client in enumerate(clients)]
            snapshots = await Exporter(specs, interval=60.0, at_once=1).sweep()
            assert [snapshot.up for snapshot in snapshots] == [True, True]
            assert [_httpcore_connections(transport) for transport in transports] == [0, 0]
            await Exporter(specs[:1], interval=60.0).sweep()  # no turns: kept for the next request
            assert _httpcore_connections(transports[0]) > 0
            assert len(await clients[1].organizations()) == 3  # usable
        finally:
            for client in clients:
                await client.aclose()


async def _published(exporter: Exporter) -> None:
    while exporter.stats.published < 1:  # noqa: ASYNC110 - the exporter has no event to wait for
        await asyncio.sleep(0.01)


class _Starving(httpx.AsyncBaseTransport):
    """The simulator in process, or, while ``starving``, a connection refused for want of a
    file descriptor (as aiohttp's and httpx's transports raise it: EMFILE as the cause)."""

    def __init__(self) -> None:
        self.inner = httpx.ASGITransport(app=create_app(SimulatorConfig(seed=5, organizations=2)))
        self.starving = True

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.starving:
            raise httpx.ConnectError("[Errno 24] Too many open files") from OSError(
                errno.EMFILE, "Too many open files"
            )
        return await self.inner.handle_async_request(request)


async def test_healthz_says_the_process_is_out_of_descriptors_while_its_sweeps_fail_for_want_of_them() -> (
    None
):
    """A process whose sweeps fail because it cannot open a descriptor (a limit too low, some
    other part holding them) answered ``/healthz`` 200: its sweeps completed, every server
    merely "down", so alerts blamed the backup servers. ``/healthz`` now answers 503 saying the
    process is out of descriptors while a server's last sweep failed so, and 200 again once
    its sweeps connect."""
    transport = _Starving()
    client = VBOClient("http://vbo.test", username="admin", password="admin", transport=transport, retry=FAST)
    spec = ServerSpec(name="east", client=client)
    exporter = Exporter([spec], interval=3600.0)
    task = exporter.start()
    try:
        await asyncio.wait_for(_published(exporter), HANG_GUARD)
        healthy, line = exporter.health()
        assert not healthy
        assert line.startswith("out of file descriptors: the last sweep of east could not open one"), line
        transport.starving = False
        snapshot = await exporter.sweep_one(spec)
        assert snapshot.up
        healthy, line = exporter.health()
        assert healthy, line
    finally:
        await exporter.stop()
        await client.aclose()
    assert task.done()


async def test_a_turn_waited_for_and_cancelled_is_not_lost() -> None:
    """A waiter cancelled before its turn leaves the queue; one cancelled after being given its
    turn (before it ran) hands it on: no turn is ever lost or held by nobody."""
    from vbo_async._cli._turns import Turns

    turns = Turns(1)
    await turns.acquire()
    waiting = asyncio.create_task(turns.acquire())
    given = asyncio.create_task(turns.acquire())
    last = asyncio.create_task(turns.acquire())
    await asyncio.sleep(0)
    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)
    turns.release()  # to `given`, which is cancelled before it runs: `last` gets it
    given.cancel()
    await asyncio.gather(given, return_exceptions=True)
    await asyncio.wait_for(last, HANG_GUARD)
    assert turns.held == 1
    turns.release()
    assert turns.held == 0


async def test_a_client_given_no_turn_in_time_closes_without_waiting_for_its_grant_in_flight(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The budget is over: a client still waiting for its turn is closed without its logout. It
    was closed with ``aclose()``, which waits (the logout's few seconds; an hour here) for a
    renewal in flight to log out the token it brings: past the budget, and sending without a
    turn (with no ``timeout``, as here, until the hang guard; with the default, 30 s). Now it
    closes at once, the renewal and the call waiting for it end, no task is left."""
    from vbo_async import ClientStateError
    from vbo_async._cli._turns import Turns, close_in_turns
    from vbo_async.simulator import Simulator

    from .conftest import BASE, settled

    monkeypatch.setattr(vbo_async._client, "LOGOUT_TIMEOUT", 3600.0)
    simulator = Simulator(SimulatorConfig(seed=1, organizations=1, api_versions=("v8",)))
    inner = httpx.ASGITransport(app=create_app(simulator=simulator))
    logging_out, renewing = asyncio.Event(), asyncio.Event()
    sent: list[str] = []

    class Held(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            path = request.url.path.lower()
            sent.append(path)
            if path == "/v8/token/logout":
                logging_out.set()
                await asyncio.Event().wait()  # never answered: holds the only turn
            if path == "/v8/token" and b"refresh_token" in request.content:
                renewing.set()
                await asyncio.Event().wait()  # never answered
            return await inner.handle_async_request(request)

    first, second = (
        VBOClient(BASE, username="admin", password="admin", api_version="v8", transport=Held(), timeout=None)
        for _ in range(2)
    )
    now = [1000.0]
    second._tokens._clock = lambda: now[0]
    await first.jobs()
    await second.jobs()
    token = second._tokens._token
    assert token is not None
    now[0] = token.refresh_at + 1  # due for renewal
    before = asyncio.all_tasks()
    call = asyncio.create_task(second.jobs())
    await asyncio.wait_for(renewing.wait(), HANG_GUARD)
    ended = asyncio.Event()
    closing = asyncio.create_task(close_in_turns([first, second], Turns(1), abandon=ended))
    await asyncio.wait_for(logging_out.wait(), HANG_GUARD)
    ended.set()  # the budget is over (or a second stop signal)
    assert await asyncio.wait_for(closing, HANG_GUARD) == 2
    with pytest.raises(ClientStateError):
        await asyncio.wait_for(call, HANG_GUARD)
    await settled(before)
    assert first._fetcher.closed
    assert second._fetcher.closed
    assert sent.count("/v8/token/logout") == 1  # the first's, in its turn; none without a turn
