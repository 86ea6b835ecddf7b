"""File descriptors over a long life: what a sweep opens stays within the process's open-file limit,
and running out of descriptors is a typed error that leaves nothing broken once they are back.

The limits are set in child processes (``resource.setrlimit`` before ``vbo-async serve`` starts),
never in the test process; every server is on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import httpx
import pytest
from aiohttp import web

from vbo_async import TransportError, VBOClient
from vbo_async._cli import _connect, _descriptors, _serve
from vbo_async._cli._exit import CLIError, Outcome, failure_line
from vbo_async._cli._exporter import Exporter
from vbo_async._cli._sweeps import ServerSpec
from vbo_async._cli._threads import DaemonThreads
from vbo_async.simulator import SimulatorConfig, create_app

from .conftest import FAST, closed_port, serve
from .raw_http import serve_raw
from .test_cli import HANG_GUARD, child_environment, reaped, serve_command, write_targets
from .test_soak import pool_connections

MODULE = (sys.executable, "-m", "vbo_async")
SLOW = ("--latency", "0.1")
"""Each answer a tenth of a second late: a sweep's requests overlap, as a real server's do."""


def _limited(nofile: int) -> Callable[[], None]:
    """A ``preexec_fn`` lowering the child's soft open-file limit to ``nofile``."""

    def lower() -> None:
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, hard))

    return lower


def _table_of(name: str, url: str) -> str:
    return (
        f'[[servers]]\nname = "{name}"\nurl = "{url}"\nusername = "admin"\n'
        'password_env = "VBO_PASSWORD"\norganizations = "all"\n\n'
    )


def _targets(path: Path, port: int, count: int) -> Path:
    tables = "".join(_table_of(f"s{number:02d}", f"http://127.0.0.1:{port}/v8") for number in range(count))
    return write_targets(path, tables)


# --- how many servers a sweep takes at once ---------------------------------------------------------


def test_servers_take_turns_only_when_they_do_not_all_fit() -> None:
    needs = [_descriptors.client_descriptors(10)] * 100  # 12 each: ten requests, a token, a lookup
    assert _descriptors.servers_at_once(1 << 20, needs) == 100
    # 1,024: 256 for the HTTP connections, 64 reserved, 704 for the clients: 58 servers of 12.
    assert _descriptors.servers_at_once(1024, needs) == 58
    assert _descriptors.servers_at_once(256, needs) == 10
    assert _descriptors.servers_at_once(20, needs) == 1  # never none
    assert _descriptors.servers_at_once(256, []) == 0


@pytest.mark.parametrize("needs", [[12] * 100, [12] * 1000, [3, 40, 5], [12, 12]])
def test_the_limit_said_to_be_needed_is_the_least_that_sweeps_every_server_at_once(needs: list[int]) -> None:
    needed = _descriptors.descriptors_needed(needs)
    assert _descriptors.servers_at_once(needed, needs) == len(needs)
    assert _descriptors.servers_at_once(needed - 1, needs) < len(needs)


def test_many_servers_under_a_low_open_file_limit_are_all_swept(tmp_path: Path) -> None:
    """30 servers whose sweeps would each open up to 11 connections, under ``ulimit -n 128``, a
    sweep every 3 s: every server was swept at once, the process ran out of descriptors (asyncio
    refused accepts with tracebacks, requests failed 'Too many open files' and were retried) and
    servers were down. Now a few servers are swept at a time, nothing runs out, every one is up,
    and a warning says the limit that would sweep them all at once."""
    count, nofile = 30, 128
    simulator = subprocess.Popen(
        [*MODULE, "simulate", "--port", "0", "--organizations", "12", "--api-versions", "v8", *SLOW],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=child_environment(),
    )
    with reaped(simulator):
        assert simulator.stdout is not None
        port = int(simulator.stdout.readline().split("http://127.0.0.1:", 1)[1].split(" ", 1)[0])
        targets = _targets(tmp_path / "targets.toml", port, count)
        process = subprocess.Popen(
            serve_command(targets, "--interval", "3"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=child_environment(VBO_PASSWORD="admin"),
            preexec_fn=_limited(nofile),
        )
        with reaped(process):
            assert process.stdout is not None
            line = process.stdout.readline()
            assert line.startswith(f"Serving the metrics of {count} servers at http://127.0.0.1:"), line
            base = line.split(" at ", 1)[1].split("/metrics", 1)[0]
            deadline = time.monotonic() + HANG_GUARD * 2
            with httpx.Client(base_url=base, timeout=HANG_GUARD) as client:
                while time.monotonic() < deadline:
                    with contextlib.suppress(httpx.TransportError):  # an accept refused (before)
                        body = client.get("/metrics").text
                        ups = re.findall(r'^veeam_vb365_up\{server="s\d+"\} (\S+)$', body, re.MULTILINE)
                        swept = re.search(r"^vbo_async_exporter_sweeps_total (\S+)$", body, re.MULTILINE)
                        if swept is not None and float(swept[1]) >= 2 and len(ups) == count:
                            break
                    time.sleep(0.2)
            process.send_signal(signal.SIGTERM)
            _, err = process.communicate(timeout=HANG_GUARD)
    assert process.returncode == 0
    assert "Too many open files" not in err
    assert "Traceback" not in err
    assert ups == ["1.0"] * count
    needs = [_descriptors.client_descriptors(10)] * count
    at_once, needed = _descriptors.servers_at_once(nofile, needs), _descriptors.descriptors_needed(needs)
    assert err.splitlines()[0] == (
        f"vbo-async: warning: the open-file limit of {nofile} lets {at_once} of {count} servers be "
        f"swept at once, the others waiting their turn; a limit of {needed} or more "
        "(LimitNOFILE= in a systemd unit, ulimit -n in a shell) sweeps them all at once"
    )


async def test_a_server_taking_turns_closes_its_idle_connections_as_its_turn_ends() -> None:
    """With servers taking turns, a server's kept-alive connections are closed as its turn ends
    (they would hold descriptors the next server's turn counts on, for up to twice the keep-alive
    time); without turns they are kept for the next request, as before."""
    app = create_app(SimulatorConfig(seed=4, organizations=3, api_versions=("v8",)))
    async with serve(app) as port:
        clients = [
            VBOClient(f"http://127.0.0.1:{port}", username="admin", password="admin", api_version="v8")
            for _ in range(3)
        ]
        try:
            specs = [ServerSpec(name=f"s{n}", client=client) for n, client in enumerate(clients)]
            await Exporter(specs[:1], interval=60.0).sweep()
            assert pool_connections(clients[0]) > 0
            taking_turns = Exporter(specs[1:], interval=60.0, at_once=1)
            snapshots = await taking_turns.sweep()
            assert [snapshot.up for snapshot in snapshots] == [True, True]
            assert [pool_connections(client) for client in clients[1:]] == [0, 0]
            assert (await clients[1].organizations()) == (await clients[0].organizations())  # usable
        finally:
            for client in clients:
                await client.aclose()


async def test_a_reload_sweeps_as_many_servers_at_once_as_its_new_limit_lets() -> None:
    """`Exporter.reconfigure` (a SIGHUP's reload) takes the turns of the new set of servers: a
    reload down to the servers that fit sweeps them all at once, one adding servers past the
    limit makes them take turns again."""
    clients = [VBOClient(f"http://127.0.0.1:{n + 1}", username="u", password="p") for n in range(3)]
    try:
        specs = [ServerSpec(name=f"s{n}", client=client) for n, client in enumerate(clients)]
        exporter = Exporter(specs, interval=60.0, at_once=2)
        assert exporter.turns.at_once == 2
        await exporter.reconfigure(specs[:2], at_once=2)
        assert not exporter.turns.bounded
        await exporter.reconfigure(specs, at_once=1)
        assert exporter.turns.at_once == 1
        async with exporter.turns.turn():
            second = asyncio.create_task(exporter.turns.acquire())
            await asyncio.sleep(0)
            assert not second.done()  # one at a time
        await asyncio.wait_for(second, HANG_GUARD)
    finally:
        for client in clients:
            await client.aclose()


async def test_servers_taking_turns_are_stale_only_after_three_rounds_of_them() -> None:
    """``/healthz`` (and `vbo_async_exporter_stale_after_seconds`, which the stale alert reads)
    allowed three intervals whatever the turns: 40 servers 10 at a time, a rotation longer than
    three budgets, answered 503 all the time, and a liveness probe restarted the exporter in a
    loop. Taking turns is slower, not wrong: the allowance is three rounds of turns."""
    clients = [VBOClient(f"http://127.0.0.1:{n + 1}", username="u", password="p") for n in range(5)]
    try:
        specs = [ServerSpec(name=f"s{n}", client=client) for n, client in enumerate(clients)]
        exporter = Exporter(specs, interval=10.0, at_once=2)  # 3 rounds: 2, 2, 1
        assert exporter.stats.stale_after == 3 * 10.0 * 3
        assert b"vbo_async_exporter_stale_after_seconds 90.0" in exporter.body(gzip=False)
        await exporter.reconfigure(specs[:2], at_once=2)  # all at once again
        assert exporter.stats.stale_after == 3 * 10.0
        await exporter.reconfigure(specs, at_once=1)
        assert exporter.stats.stale_after == 3 * 10.0 * 5
        budgeted = Exporter(specs, interval=10.0, budget=25.0, at_once=4)  # 2 rounds of 25 s budgets
        assert budgeted.stats.stale_after == 3 * 25.0 * 2
        assert Exporter(specs, interval=10.0).stats.stale_after == 3 * 10.0
        # A round of turns shorter than the interval: each server's next sweep still waits for the
        # interval, which is the longest they come apart (not the interval once per round).
        patient = Exporter(specs, interval=300.0, budget=30.0, at_once=2)
        assert patient.stats.stale_after == 3 * 300.0
    finally:
        for client in clients:
            await client.aclose()


# --- running out of descriptors -----------------------------------------------------------------------

EXHAUSTIBLE = """
import os, signal, threading, time
_held = []
_taking = threading.Event()
_said = os.open(os.environ["VBO_TEST_EXHAUSTED"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
def _take():
    while True:
        _taking.wait()
        full = False
        while _taking.is_set():
            try:
                _held.append(os.open(os.devnull, os.O_RDONLY))
            except OSError:
                if not full:
                    full = True
                    os.write(_said, b"x")
                time.sleep(0.005)
def _exhaust(*_):
    _taking.set()
def _release(*_):
    _taking.clear()
    time.sleep(0.05)
    while _held:
        os.close(_held.pop())
threading.Thread(target=_take, daemon=True).start()
signal.signal(signal.SIGUSR1, _exhaust)
signal.signal(signal.SIGUSR2, _release)
"""
"""A ``sitecustomize`` for a child process: after SIGUSR1 a thread takes every descriptor as
soon as it is free, until SIGUSR2 gives them all back. Each time it has them all, it adds a byte
to the file ``VBO_TEST_EXHAUSTED`` names (`_exhausted` waits for it)."""


def _exhausted(marker: Path, times: int) -> None:
    """Wait until the child of `EXHAUSTIBLE` has held every descriptor ``times`` times (a signal
    is handled when the child runs: a fixed sleep after it was too short on a loaded machine)."""
    deadline = time.monotonic() + HANG_GUARD
    while not (marker.is_file() and marker.stat().st_size >= times):
        assert time.monotonic() < deadline, f"the child never held every descriptor ({times})"
        time.sleep(0.01)


class _Lines:
    """The lines a child writes to ``stream``, read by a thread as they come, so that a test can
    wait for one (`wait_for`) instead of sleeping for as long as the child should take."""

    def __init__(self, stream: Any) -> None:
        self.lines: list[str] = []
        self._ended = False
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._ended = True
            self._changed.notify_all()

    def wait_for(self, condition: Callable[[list[str]], bool]) -> None:
        with self._changed:
            self._changed.wait_for(lambda: condition(self.lines) or self._ended, HANG_GUARD)
            assert condition(self.lines), self.lines[-20:]

    def text(self) -> str:
        """All of it, once the child has ended."""
        self._thread.join(HANG_GUARD)
        assert not self._thread.is_alive()
        return "".join(f"{line}\n" for line in self.lines)


def _serving_exhaustible(tmp_path: Path, tables: str) -> subprocess.Popen[str]:
    (tmp_path / "sitecustomize.py").write_text(EXHAUSTIBLE, encoding="utf-8")
    targets = write_targets(tmp_path / "targets.toml", tables)
    path = os.pathsep.join([str(tmp_path), *filter(None, [os.environ.get("PYTHONPATH")])])
    return subprocess.Popen(
        serve_command(targets, "--interval", "1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_environment(
            VBO_PASSWORD="admin", PYTHONPATH=path, VBO_TEST_EXHAUSTED=str(tmp_path / "exhausted")
        ),
        preexec_fn=_limited(256),  # SIGUSR1 opens that many files, not the test process's limit
    )


def test_running_out_of_descriptors_is_one_warning_and_everything_works_once_they_are_back(
    tmp_path: Path,
) -> None:
    """While the process has no descriptor free, a connection to the exporter waits (asyncio
    tries to accept it each second); once descriptors are back it is answered, and so are new
    ones. asyncio logged each refused accept with its traceback, up to a hundred times a second
    (its accept loop goes on after the first), and as many tracebacks again at exit (its retries,
    scheduled on a closed socket); now one warning line says it and one that it is over."""
    app_port = closed_port()
    process = _serving_exhaustible(tmp_path, _table_of("east", f"http://127.0.0.1:{app_port}/v8"))
    with reaped(process):
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("Serving the metrics of 1 server at http://127.0.0.1:"), line
        base = line.split(" at ", 1)[1].split("/metrics", 1)[0]
        address = ("127.0.0.1", int(base.rsplit(":", 1)[1]))
        refused = "vbo-async: warning: cannot accept connections: [Errno 24] Too many open files"
        refused += " (trying again each second)"
        errors = _Lines(process.stderr)
        process.send_signal(signal.SIGUSR1)
        _exhausted(tmp_path / "exhausted", 1)
        waiting = socket.create_connection(address, timeout=HANG_GUARD)  # queued by the kernel
        waiting.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        errors.wait_for(lambda lines: refused in lines)  # asyncio tried to accept it, and could not
        process.send_signal(signal.SIGUSR2)
        answer = b""
        while chunk := waiting.recv(65536):
            answer += chunk
        waiting.close()
        assert answer.startswith(b"HTTP/1.1 "), answer
        with httpx.Client(base_url=base, timeout=HANG_GUARD) as client:
            assert client.get("/metrics").status_code == 200
        process.send_signal(signal.SIGUSR1)  # and stopped while it has none
        _exhausted(tmp_path / "exhausted", 2)
        late = socket.create_connection(address, timeout=HANG_GUARD)
        errors.wait_for(lambda lines: lines.count(refused) == 2)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=HANG_GUARD)
        err = errors.text()
        late.close()
    assert process.returncode == 0
    assert "Traceback" not in err, err[:3000]
    said = [line for line in err.splitlines() if "descriptor" in line or "accept" in line]
    assert said == [refused, "vbo-async: warning: accepting connections again", refused]


MAKING_CLIENTS = """
import os, resource, sys
if sys.argv[1] == "tls":
    import vbo_async._aiohttp  # imported before: only the certificates are left to read
from vbo_async import VBOClient, VBOError

def client():
    verify = sys.argv[1] == "tls"
    return VBOClient("https://vbo.example.com:4443", username="u", password="p", verify=verify)

_, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))
held = []
while True:
    try:
        held.append(os.open(os.devnull, os.O_RDONLY))
    except OSError:
        break
try:
    client()
    print("made")
except VBOError as exc:
    print(f"{type(exc).__name__}: {exc}")
except Exception as exc:
    print(f"bare {type(exc).__name__}: {exc}")
for fd in held:
    os.close(fd)
made = client()
ssl = made._sender._transport._ssl
print(ssl is False or ssl.cert_store_stats()["x509"] > 0)
"""
"""Makes a client (verifying with the system's CA certificates for ``tls``; not verifying, its
transport's module not yet imported, for ``import``) when no descriptor is free, and again once
they are back."""


@pytest.mark.parametrize(
    ("case", "bundle", "said"),
    [
        ("tls", None, "cannot load the system's CA certificates"),
        ("tls", "ca", "cannot load the system's CA certificates"),
        ("import", None, "cannot load the HTTP transport"),
    ],
    ids=["system-certificates", "SSL_CERT_FILE", "transport-module"],
)
def test_a_client_made_with_no_descriptor_free_is_a_transport_error_and_the_next_one_works(
    tls_files: tuple[Path, Path], case: str, bundle: str | None, said: str
) -> None:
    """A client made while the process has no descriptor free: OpenSSL skipped the CA bundle it
    could not open, so the client was made trusting none of its certificates, for its whole life
    (or, with ``SSL_CERT_FILE`` set, a `ConfigError` blamed a bundle 'missing, unreadable or not
    PEM'), and the first import of the transport's module was a bare ``OSError``. Now it is a
    `TransportError` naming the cause, and a client made once descriptors are back trusts the
    system's certificates."""
    env = {k: v for k, v in child_environment().items() if k not in ("SSL_CERT_FILE", "SSL_CERT_DIR")}
    if bundle is not None:
        env["SSL_CERT_FILE"] = str(tls_files[1])
    done = subprocess.run(
        [sys.executable, "-c", MAKING_CLIENTS, case],
        capture_output=True,
        text=True,
        env=env,
        timeout=HANG_GUARD,
        check=False,
    )
    assert done.returncode == 0
    assert "Traceback" not in done.stderr  # verify=False warns there, and nothing else may be
    assert done.stdout.splitlines() == [
        f"TransportError: {said}: Too many open files (no file descriptor is free; try again later)",
        "True",
    ]


def test_no_descriptor_for_the_certificates_is_no_usage_error_of_the_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``serve``, ``poll`` and ``check`` load their TLS contexts first: a `TransportError` there
    (no descriptor free) ends them as a server that cannot be read (``serve`` exits 1, which a
    service manager restarts, not 2, which the example unit does not), not as a usage error."""

    def starved(verify: object) -> NoReturn:
        raise TransportError("cannot load the system's CA certificates: Too many open files")

    monkeypatch.setattr(_connect, "tls_context", starved)
    with pytest.raises(CLIError) as raised:
        _connect.SharedContexts().verify(True)
    assert (raised.value.outcome, str(raised.value)) == (
        Outcome.UNREADABLE,
        "cannot load the system's CA certificates: Too many open files",
    )


def test_check_out_of_descriptors_is_unknown_with_a_line_saying_so(tmp_path: Path) -> None:
    """``check`` under open-file limits so low that it runs out somewhere (a module it imports
    late, a socket): always UNKNOWN (3), with a line naming the cause; under ``ulimit -n 6``
    it said 'internal error: OSError: [Errno 24] Too many open files: .../_flows.py'."""
    targets = write_targets(
        tmp_path / "targets.toml", _table_of("east", f"https://127.0.0.1:{closed_port()}/v8")
    )
    firsts = []
    for nofile in range(5, 12):
        done = subprocess.run(
            [*MODULE, "check", "--targets", str(targets), "-t", "20"],
            capture_output=True,
            text=True,
            env=child_environment(VBO_PASSWORD="admin"),
            preexec_fn=_limited(nofile),
            timeout=HANG_GUARD,
            check=False,
        )
        assert done.returncode == 3, (nofile, done.stdout, done.stderr)
        firsts.append(done.stdout.partition("\n")[0])
    assert not [line for line in firsts if "internal error" in line]
    assert all(
        line.startswith(("VB365 UNKNOWN - out of file descriptors: ", "VB365 UNKNOWN - no jobs found"))
        for line in firsts
    ), firsts


def test_a_failure_of_no_descriptor_is_said_as_such_and_others_as_internal_errors() -> None:
    assert failure_line(OSError(errno.EMFILE, "Too many open files")) == (
        "out of file descriptors: Too many open files "
        "(raise the open-file limit: ulimit -n, or LimitNOFILE= in a systemd unit)"
    )
    assert failure_line(OSError(errno.ENFILE, "Too many open files in system")).startswith(
        "out of file descriptors: Too many open files in system "
    )
    assert failure_line(OSError(errno.EACCES, "Permission denied")) == (
        "internal error: PermissionError: [Errno 13] Permission denied (VBO_ASYNC_LOG=debug shows where)"
    )


async def test_the_accept_retries_left_on_the_closed_socket_are_dropped_and_the_rest_passed_on() -> None:
    """asyncio's retries to accept, scheduled a second after each refusal, still run once
    ``serve`` has closed its socket as it stops (a slow stop: clients logging out): each was an
    'Exception in callback ..._start_serving' traceback ('Invalid file descriptor: -1'), a hundred
    and more. They are dropped once the socket is closed; anything else reaches the handler that
    was there before."""
    loop = asyncio.get_running_loop()
    passed: list[dict[str, Any]] = []
    bounded = _serve._Bounded(web.Server(lambda request: web.Response()), 16)
    bounded.previous = lambda _, context: passed.append(context)

    def _start_serving() -> None:
        """Named as asyncio's retry is."""

    retry = asyncio.TimerHandle(0.0, _start_serving, (), loop)
    failure = {"message": "Exception in callback", "exception": ValueError("-1"), "handle": retry}
    bounded.exception_handler(loop, failure)
    assert passed == [failure]  # while the socket is open, nothing is hidden
    bounded.closed = True
    bounded.exception_handler(loop, failure)
    other = {"message": "Task exception was never retrieved", "exception": ValueError("x")}
    bounded.exception_handler(loop, other)
    assert passed == [failure, other]


# --- nothing left behind, sweep after sweep ------------------------------------------------------------


def _open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def _now() -> tuple[int, int, int]:
    """The process's open descriptors, threads and tasks (the servers' own included)."""
    return _open_descriptors(), threading.active_count(), len(asyncio.all_tasks())


async def _answer_500(head: bytes, body: bytes, writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 2\r\n\r\n{}")
    await writer.drain()


async def _answer_401(head: bytes, body: bytes, writer: asyncio.StreamWriter) -> None:
    writer.write(
        b"HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
    )
    await writer.drain()


async def _answer_429(head: bytes, body: bytes, writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 0\r\nContent-Length: 2\r\n\r\n{}")
    await writer.drain()


async def _reset_mid_body(head: bytes, body: bytes, writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{")
    await writer.drain()
    writer.transport.abort()
    raise ConnectionResetError


async def _never_answer(head: bytes, body: bytes, writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(1.0)  # longer than the client waits; then the connection is closed
    writer.close()


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts descriptors in /proc")
async def test_sweeps_of_failing_servers_leave_no_descriptor_thread_or_task_behind() -> None:
    """The exporter's sweeps (and `poll_jobs`, which they run) of servers that answer, refuse the
    connection, fail the TLS handshake, answer 401, 429 and 500, reset the connection mid-body
    and never answer (the sweep's time budget cancelling what is in flight), round after round:
    the process's descriptors, threads and tasks come back to what they were after the first
    rounds, and to what they were before the clients once these are closed."""
    # The commands' executor: a thread per name lookup, ended with it (the standard one keeps up
    # to a few idle threads, more of them as lookups happen to overlap).
    asyncio.get_running_loop().set_default_executor(DaemonThreads())
    app = create_app(SimulatorConfig(seed=6, organizations=3, api_versions=("v8",)))
    async with contextlib.AsyncExitStack() as stack:
        ports = {"ok": await stack.enter_async_context(serve(app))}
        for name, answer in {
            "500": _answer_500,
            "401": _answer_401,
            "429": _answer_429,
            "reset": _reset_mid_body,
            "hang": _never_answer,
        }.items():
            ports[name] = await stack.enter_async_context(serve_raw(answer))
        urls = {name: f"http://localhost:{port}" for name, port in ports.items()}
        urls["refused"] = f"http://127.0.0.1:{closed_port()}"
        urls["tls"] = f"https://127.0.0.1:{ports['ok']}"  # https to a plain HTTP port
        before = _open_descriptors()
        clients = [
            VBOClient(url, username="admin", password="admin", api_version="v8", timeout=1.0, retry=FAST)
            for url in urls.values()
        ]
        try:
            specs = [ServerSpec(name=name, client=client) for name, client in zip(urls, clients, strict=True)]
            # The budget leaves the in-process "ok" server time to answer on a loaded machine (the
            # tests run two workers per core): only "hang" is to be cut by it.
            exporter = Exporter(specs, interval=60.0, budget=2.0, at_once=len(specs) - 1)
            counts: list[tuple[int, int, int]] = []  # descriptors, threads, tasks after each round
            for _ in range(8):
                snapshots = await exporter.sweep()
                await _settled(lambda: len(counts) < 2 or _within(_now(), counts[1]))
                counts.append(_now())
            assert [snapshot.up for snapshot in snapshots] == [name == "ok" for name in urls]
            assert all(_within(count, counts[1]) for count in counts[2:]), counts
        finally:
            for client in clients:
                await client.aclose()
        await _settled(lambda: _open_descriptors() <= before)
        assert _open_descriptors() <= before


def _within(counts: tuple[int, ...], bounds: tuple[int, ...]) -> bool:
    return all(count <= bound for count, bound in zip(counts, bounds, strict=True))


async def _settled(condition: Callable[[], bool]) -> None:
    """Wait until ``condition`` holds (sockets a server side closes as it notices the client gone),
    up to `HANG_GUARD`; the caller asserts it."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(HANG_GUARD):
            while not condition():  # noqa: ASYNC110
                await asyncio.sleep(0.02)


def test_an_unlimited_open_file_limit_is_the_system_s_cap_not_4096(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A soft limit of RLIM_INFINITY was counted as 4,096: 500 servers took turns and a warning
    asked to raise a limit that has none. It is now what the system lets a process open (Linux's
    ``fs.nr_open``; where that cannot be read, a million), so they are all swept at once."""
    monkeypatch.setattr(
        _descriptors.resource, "getrlimit", lambda which: (resource.RLIM_INFINITY, resource.RLIM_INFINITY)
    )
    try:
        cap = int(Path("/proc/sys/fs/nr_open").read_text(encoding="ascii"))
    except OSError:  # pragma: no cover - not Linux
        cap = None
    if cap is not None:
        assert _descriptors.descriptor_limit() == cap
    assert _descriptors.unlimited(None) == 1 << 20
    assert _descriptors.unlimited(2048) == 2048
    with caplog.at_level("WARNING", logger="vbo_async.cli"):
        assert _descriptors.turns([10] * 500, _descriptors.unlimited(1 << 20)) == 500
    assert not caplog.records


def _scrape(base: str) -> tuple[int, str] | None:
    """``/healthz``'s status and ``/metrics``' text, or None when either cannot be had now."""
    try:
        with httpx.Client(base_url=base, timeout=5.0) as client:
            return client.get("/healthz").status_code, client.get("/metrics").text
    except httpx.TransportError:
        return None


def _fewest(descriptors: Path) -> int:
    """The fewest descriptors the process at ``descriptors`` (``/proc/PID/fd``) holds over two
    seconds (two sweeps of each server at ``--interval 1``): between its sweeps, not in one."""
    fewest = len(os.listdir(descriptors))
    for _ in range(40):
        time.sleep(0.05)
        fewest = min(fewest, len(os.listdir(descriptors)))
    return fewest


def _up(body: str) -> list[str]:
    return re.findall(r'^veeam_vb365_up\{server="s\d+"\} (\S+)$', body, re.MULTILINE)


def _sweeps(body: str) -> float:
    found = re.search(r"^vbo_async_exporter_sweeps_total (\S+)$", body, re.MULTILINE)
    return float(found[1]) if found else 0.0


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts descriptors in /proc")
def test_serve_starved_of_descriptors_recovers_its_sweeps_and_its_http_side_once_they_are_back(
    tmp_path: Path,
) -> None:
    """End to end, a real simulator on 127.0.0.1 and ``serve`` under ``ulimit -n 128``: while
    every descriptor of the process is taken, its sweeps fail (the servers are down, said once
    each) and a scrape cannot connect (what Prometheus reports as ``up`` 0); once they are back,
    without a restart, the next sweeps bring every server up, ``/healthz`` answers 200 and
    ``/metrics`` the fresh sweeps, and the process holds no more descriptors than before."""
    count = 3
    names = ("s00", "s01", "s02")
    simulator = subprocess.Popen(
        [*MODULE, "simulate", "--port", "0", "--organizations", "2", "--api-versions", "v8"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=child_environment(),
    )
    with reaped(simulator):
        assert simulator.stdout is not None
        port = int(simulator.stdout.readline().split("http://127.0.0.1:", 1)[1].split(" ", 1)[0])
        (tmp_path / "sitecustomize.py").write_text(EXHAUSTIBLE, encoding="utf-8")
        targets = _targets(tmp_path / "targets.toml", port, count)
        path = os.pathsep.join([str(tmp_path), *filter(None, [os.environ.get("PYTHONPATH")])])
        process = subprocess.Popen(
            serve_command(targets, "--interval", "1"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=child_environment(
                VBO_PASSWORD="admin", PYTHONPATH=path, VBO_TEST_EXHAUSTED=str(tmp_path / "exhausted")
            ),
            preexec_fn=_limited(128),
        )
        with reaped(process):
            assert process.stdout is not None
            line = process.stdout.readline()
            assert line.startswith(f"Serving the metrics of {count} servers at http://127.0.0.1:"), line
            base = line.split(" at ", 1)[1].split("/metrics", 1)[0]
            descriptors = Path(f"/proc/{process.pid}/fd")

            def healthy() -> tuple[int, str] | None:
                deadline = time.monotonic() + HANG_GUARD
                while time.monotonic() < deadline:
                    scraped = _scrape(base)
                    if scraped is not None and scraped[0] == 200 and _up(scraped[1]) == ["1.0"] * count:
                        return scraped
                    time.sleep(0.2)
                return None

            before = healthy()
            assert before is not None
            held_before = _fewest(descriptors)
            errors = _Lines(process.stderr)
            process.send_signal(signal.SIGUSR1)  # every descriptor taken
            _exhausted(tmp_path / "exhausted", 1)
            # Sweeps every second meanwhile, each failing: waited for, not slept for.
            errors.wait_for(
                lambda lines: all(any(f"server {name} is down" in line for line in lines) for name in names)
            )
            starved = _scrape(base)
            assert starved is None, starved  # cannot connect: Prometheus' up 0
            process.send_signal(signal.SIGUSR2)  # all given back
            after = healthy()
            assert after is not None
            while (again := healthy()) is not None and _sweeps(again[1]) < _sweeps(after[1]) + 2:
                time.sleep(0.2)  # two more complete sweeps: not only a leftover exposition
            assert again is not None
            held_after = _fewest(descriptors)
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=HANG_GUARD)
            err = errors.text()
    assert process.returncode == 0
    assert "Traceback" not in err, err[:3000]
    assert held_after <= held_before + count, (held_before, held_after)  # a connection each at most
    for server in names:
        assert f"server {server} is down" in err, err[:3000]
        assert f"vbo-async: warning: server {server} is up again" in err, err[:3000]


def test_check_of_many_servers_under_a_low_open_file_limit_reads_every_one(tmp_path: Path) -> None:
    """``check`` (and ``poll``) polled every server's tenants at once, each server's client with
    up to ``max_concurrency`` connections, and kept them all open to the end: 60 servers under
    ``ulimit -n 100`` ran out of descriptors and servers were "unreachable" (UNKNOWN) with
    ``Too many open files``. The servers now take turns (their idle connections closed as
    each turn ends; the logouts too), and every one is read."""
    count, nofile = 60, 100
    simulator = subprocess.Popen(
        [*MODULE, "simulate", "--port", "0", "--organizations", "4", "--api-versions", "v8", *SLOW],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=child_environment(),
    )
    with reaped(simulator):
        assert simulator.stdout is not None
        port = int(simulator.stdout.readline().split("http://127.0.0.1:", 1)[1].split(" ", 1)[0])
        targets = _targets(tmp_path / "targets.toml", port, count)
        done = subprocess.run(
            [*MODULE, "check", "--targets", str(targets), "--max-age", "3650d", "-t", "55s"],
            capture_output=True,
            text=True,
            env=child_environment(VBO_PASSWORD="admin"),
            preexec_fn=_limited(nofile),
            timeout=HANG_GUARD * 2,
            check=False,
        )
    summary = done.stdout.splitlines()[0]
    assert "servers_down=0;" in summary, done.stdout[:2000] + done.stderr[:2000]
    assert "tenants_unreadable=0;" in summary, summary
    assert "Too many open files" not in done.stdout + done.stderr
