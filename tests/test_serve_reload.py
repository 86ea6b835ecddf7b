"""``vbo-async serve`` reloads its targets file at SIGHUP: servers added and removed, credentials
changed, clients of unchanged servers kept; an invalid file keeps the last good configuration."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from vbo_async._cli._exporter import Exporter
from vbo_async._cli._metrics import PREFIX, SELF_PREFIX
from vbo_async._cli._reload import Servers, load
from vbo_async._cli._secrets import Passwords
from vbo_async.simulator import Simulator, create_app

from .conftest import serve
from .test_cli import HANG_GUARD, child_environment, serve_command, small_config
from .test_exporter import Server, wait_for

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="SIGHUP is POSIX")

SECRET = "wrong-Pa55-Qx7"
RELOAD_OK = f"{SELF_PREFIX}config_last_reload_successful"


def table(name: str, port: int, password_file: str) -> str:
    return (
        f'[[servers]]\nname = "{name}"\nurl = "http://127.0.0.1:{port}/v8"\nusername = "admin"\n'
        f'password_file = "{password_file}"\n'
    )


def up(body: str, name: str) -> str | None:
    """The value of ``veeam_vb365_up`` for ``name`` in ``body``, None when absent."""
    prefix = f'{PREFIX}up{{server="{name}"}} '
    return next((line.removeprefix(prefix) for line in body.splitlines() if line.startswith(prefix)), None)


def own(body: str, name: str) -> str | None:
    return next((line.split(" ", 1)[1] for line in body.splitlines() if line.startswith(f"{name} ")), None)


@contextlib.asynccontextmanager
async def serving(
    targets: Path, *more: str
) -> AsyncIterator[tuple[asyncio.subprocess.Process, httpx.AsyncClient]]:
    process = await asyncio.create_subprocess_exec(
        *serve_command(targets, "--interval", "1s", *more),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=child_environment(),
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), HANG_GUARD)).decode()
        assert line.startswith("Serving the metrics of 2 servers at http://127.0.0.1:"), line
        base = line.split(" at ", 1)[1].split("/metrics", 1)[0]
        async with httpx.AsyncClient(base_url=base, timeout=HANG_GUARD) as client:
            yield process, client
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


async def metrics_until(client: httpx.AsyncClient, condition: Callable[[str], bool]) -> str:
    """The first ``/metrics`` body that meets ``condition``, asked for again until then."""
    async with asyncio.timeout(HANG_GUARD):
        while True:
            body = (await client.get("/metrics")).text
            if condition(body):
                return body
            await asyncio.sleep(0.05)


async def reload(process: asyncio.subprocess.Process) -> str:
    """SIGHUP ``process``; the line it prints when the reload succeeded."""
    process.send_signal(signal.SIGHUP)
    assert process.stdout is not None
    return (await asyncio.wait_for(process.stdout.readline(), HANG_GUARD)).decode().rstrip("\n")


async def failed(process: asyncio.subprocess.Process, targets: Path) -> list[str]:
    """SIGHUP ``process``; the lines it writes on stderr up to the one saying the reload failed."""
    process.send_signal(signal.SIGHUP)
    assert process.stderr is not None
    lines: list[str] = []
    async with asyncio.timeout(HANG_GUARD):
        while not lines or not lines[-1].startswith(f"vbo-async: error: reloading {targets} failed: "):
            lines.append((await process.stderr.readline()).decode().rstrip("\n"))
    assert lines[-1].endswith(" failed: the servers of its last good version are still swept")
    return lines[:-1]


async def test_sighup_reloads_the_targets_and_password_files(tmp_path: Path) -> None:
    east, west = (
        Simulator(small_config(seed=41, organizations=1)),
        Simulator(small_config(seed=42, organizations=1)),
    )
    (tmp_path / "east.pw").write_text("admin\n", encoding="utf-8")
    (tmp_path / "west.pw").write_text("admin\n", encoding="utf-8")
    (tmp_path / "west.pw").chmod(0o600)
    (tmp_path / "east.pw").chmod(0o600)
    targets = tmp_path / "targets.toml"
    async with serve(create_app(simulator=east)) as east_port, serve(create_app(simulator=west)) as west_port:
        targets.write_text(table("east", east_port, "east.pw") + table("old", west_port, "west.pw"), "utf-8")
        async with serving(targets) as (process, client):
            body = await metrics_until(client, lambda b: up(b, "east") == "1.0" and up(b, "old") == "1.0")
            assert own(body, RELOAD_OK) == "1.0"
            east_sign_ins = east.stats.token_requests["password"]
            assert east_sign_ins == 1

            # "old" removed, "west" added: swept from the next sweep, "old"'s series dropped.
            targets.write_text(
                table("east", east_port, "east.pw") + table("west", west_port, "west.pw"), "utf-8"
            )
            assert await reload(process) == (
                f"Reloaded {targets}: serving the metrics of 2 servers (1 added, 1 removed, 0 changed)"
            )
            body = await metrics_until(client, lambda b: up(b, "west") == "1.0")
            assert up(body, "old") is None
            assert 'server="old"' not in body
            assert own(body, RELOAD_OK) == "1.0"
            # "old"'s client closed (in the background, the reload not waiting): logged out
            await wait_for(lambda: west.stats.logouts["v8"] == 1)

            # An invalid file: the last good configuration is kept, and said so.
            targets.write_text(table("east", east_port, "east.pw") + "[[servers]\n", "utf-8")
            (line,) = await failed(process, targets)
            assert line.startswith(f"vbo-async: error: {targets}: not valid TOML: "), line
            body = await metrics_until(client, lambda b: own(b, RELOAD_OK) == "0.0")
            assert (up(body, "east"), up(body, "west")) == ("1.0", "1.0")

            # A password file that cannot be read: the same.
            targets.write_text(
                table("east", east_port, "east.pw") + table("west", west_port, "gone/none.pw"), "utf-8"
            )
            assert await failed(process, targets) == [
                f"vbo-async: error: {targets}: servers[1].password_file: cannot read "
                f'{tmp_path / "gone" / "none.pw"}: No such file or directory (server "west")'
            ]
            body = (await client.get("/metrics")).text
            assert (up(body, "east"), up(body, "west"), own(body, RELOAD_OK)) == ("1.0", "1.0", "0.0")

            # west's password changed in its file: a new client signs in with it (and fails).
            (tmp_path / "west.pw").write_text(SECRET + "\n", encoding="utf-8")
            targets.write_text(
                table("east", east_port, "east.pw") + table("west", west_port, "west.pw"), "utf-8"
            )
            assert await reload(process) == (
                f"Reloaded {targets}: serving the metrics of 2 servers (0 added, 0 removed, 1 changed)"
            )
            body = await metrics_until(client, lambda b: up(b, "west") == "0.0")
            assert own(body, RELOAD_OK) == "1.0"
            # east's table and password did not change: its client (and token) was kept.
            swept = east.stats.requests
            await metrics_until(client, lambda b: east.stats.requests > swept)
            assert east.stats.token_requests["password"] == east_sign_ins

            process.send_signal(signal.SIGTERM)
            status = await asyncio.wait_for(process.wait(), HANG_GUARD)
            assert process.stderr is not None
            err = (await process.stderr.read()).decode()
    assert status == 0
    assert "Traceback" not in err
    assert SECRET not in err


class Held:
    """An ASGI app whose requests wait while `gate` is an unset event (`held` counts those
    waiting): a server that stopped answering, for as long as the test wants."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.gate: asyncio.Event | None = None
        self.held = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        gate = self.gate
        if scope["type"] == "http" and gate is not None:
            self.held += 1
            try:
                await gate.wait()
            finally:
                self.held -= 1
        await self.app(scope, receive, send)


async def test_a_reload_does_not_wait_for_a_sweep_in_progress(tmp_path: Path) -> None:
    """east stops answering mid-sweep (its time budget: 10 minutes). A reload changing east, and
    a second one adding north, each apply at once: north is swept and both lines printed while
    east's old sweep goes on. A reload waited for the sweeps in progress of the servers it
    changed, so every later reload waited too, up to the time budget (no server added, no client
    closed, no line). East's old client logs out once its sweep has ended."""
    east, west = (
        Simulator(small_config(seed=45, organizations=1)),
        Simulator(small_config(seed=46, organizations=1)),
    )
    for name in ("east.pw", "east2.pw", "west.pw"):
        (tmp_path / name).write_text("admin\n", encoding="utf-8")
        (tmp_path / name).chmod(0o600)
    held = Held(create_app(simulator=east))
    targets = tmp_path / "targets.toml"
    async with serve(held) as east_port, serve(create_app(simulator=west)) as west_port:
        targets.write_text(table("east", east_port, "east.pw") + table("west", west_port, "west.pw"), "utf-8")
        try:
            async with serving(targets, "--timeout", "10m") as (process, client):
                await metrics_until(client, lambda b: up(b, "east") == "1.0" and up(b, "west") == "1.0")
                held.gate = asyncio.Event()
                await wait_for(lambda: held.held > 0, within=HANG_GUARD)  # east's next sweep hangs

                targets.write_text(
                    table("east", east_port, "east2.pw") + table("west", west_port, "west.pw"), "utf-8"
                )
                assert await reload(process) == (
                    f"Reloaded {targets}: serving the metrics of 2 servers (0 added, 0 removed, 1 changed)"
                )
                targets.write_text(
                    table("east", east_port, "east2.pw")
                    + table("west", west_port, "west.pw")
                    + table("north", west_port, "west.pw"),
                    "utf-8",
                )
                assert await reload(process) == (
                    f"Reloaded {targets}: serving the metrics of 3 servers (1 added, 0 removed, 0 changed)"
                )
                body = await metrics_until(client, lambda b: up(b, "north") == "1.0")
                assert up(body, "east") == "1.0"  # its old series, until its new client's sweep
                assert (held.held > 0, east.stats.logouts["v8"]) == (True, 0)  # its sweep goes on

                held.gate.set()
                held.gate = None
                await wait_for(lambda: east.stats.logouts["v8"] == 1, within=HANG_GUARD)
                await wait_for(lambda: east.stats.token_requests["password"] == 2, within=HANG_GUARD)
                process.send_signal(signal.SIGTERM)
                status = await asyncio.wait_for(process.wait(), HANG_GUARD)
                assert process.stderr is not None
                err = (await process.stderr.read()).decode()
        finally:
            if held.gate is not None:
                held.gate.set()
    assert status == 0
    assert "Traceback" not in err


# --- Exporter.reconfigure, in process ----------------------------------------------------------------


async def test_a_reconfigure_changes_each_server_between_two_of_its_sweeps() -> None:
    """a's sweep hangs (its organization listing held): ``reconfigure`` with a changed a, b
    removed and c added returns at once (it waited for a's sweep, at most the time budget, and
    held up every later reload), starts c at once and drops b's series. a's sweep in progress
    ends with the old spec and is published, its client in use until then (`released`); then a's
    new spec is swept at once (it waited a whole interval: a password put right left the server
    down that long). The old specs are returned for closing."""
    a, b, c = Server("a", ("v8",), seed=51), Server("b", ("v8",), seed=52), Server("c", ("v8",), seed=53)
    a2 = Server("a", ("v8",), seed=54)
    exporter = Exporter([a.spec, b.spec], interval=60)
    a.wire.gate = asyncio.Event()
    try:
        exporter.start()
        await wait_for(
            lambda: "b" in exporter._published and any("organizations" in r for _, r in a.wire.requests)
        )
        retired = await asyncio.wait_for(exporter.reconfigure([a2.spec, c.spec]), HANG_GUARD)
        assert {id(spec) for spec in retired} == {id(a.spec), id(b.spec)}
        assert [spec.name for spec in exporter.servers] == ["a", "c"]
        assert exporter.stats.servers == 2
        await wait_for(lambda: "c" in exporter._published and "b" not in exporter._published)
        body = exporter.body(gzip=False).decode()
        assert f'{PREFIX}up{{server="c"}} 1.0' in body
        assert 'server="b"' not in body
        releasing = asyncio.create_task(exporter.released(retired))
        await asyncio.sleep(0.1)
        assert not releasing.done()  # a's sweep in progress is not cut short...
        assert id(a.client) in exporter.in_use()
        assert "a" not in exporter._published
        assert not any("organizations" in r for _, r in a2.wire.requests)  # ...nor a2 swept beside it
        a.wire.gate.set()
        await asyncio.wait_for(releasing, HANG_GUARD)
        assert "a" in exporter._published  # ...it ended, and was published, with the old client
        assert id(a.client) not in exporter.in_use()
        # ...and the new spec is swept at once, not an interval (60 s here) later.
        await wait_for(lambda: any("organizations" in r for _, r in a2.wire.requests), within=10)
    finally:
        await exporter.stop()
        for server in (a, b, c, a2):
            await server.client.aclose()


async def test_a_server_removed_while_sweeping_and_named_again_is_swept_once_at_a_time() -> None:
    """b is removed while its sweep hangs, then named again (a new spec) before that sweep ends:
    its loop goes on (no second sweep of b beside the hung one; dropping b's series as that sweep
    ended would have dropped the new spec's too), and the new spec is swept once the old sweep
    has ended."""
    a, b, b2 = Server("a", ("v8",), seed=57), Server("b", ("v8",), seed=58), Server("b", ("v8",), seed=59)
    exporter = Exporter([a.spec, b.spec], interval=60)
    try:
        await exporter.sweep()
        b.wire.gate = asyncio.Event()
        exporter.start()
        await wait_for(lambda: len(b.wire.listings()) == 2)  # its second sweep hangs
        assert await asyncio.wait_for(exporter.reconfigure([a.spec]), HANG_GUARD) == [b.spec]
        assert await asyncio.wait_for(exporter.reconfigure([a.spec, b2.spec]), HANG_GUARD) == []
        await asyncio.sleep(0.1)
        assert not b2.wire.requests
        b.wire.gate.set()
        await asyncio.wait_for(exporter.released([b.spec]), HANG_GUARD)
        await wait_for(lambda: b2.wire.listings() != [])
        assert 'server="b"' in exporter.body(gzip=False).decode()
        assert [spec.name for spec in exporter.servers] == ["a", "b"]
    finally:
        await exporter.stop()
        for server in (a, b, b2):
            await server.client.aclose()


async def test_a_server_removed_while_sweeping_is_not_counted_among_the_servers() -> None:
    """b removed while its sweep hangs: its series stay until that sweep ends (as documented),
    but "N of M servers up" counted it, as "3 of 2" in ``/healthz``."""
    a, b = Server("a", ("v8",), seed=61), Server("b", ("v8",), seed=62)
    exporter = Exporter([a.spec, b.spec], interval=60)
    try:
        await exporter.sweep()
        assert (exporter.stats.servers_up, exporter.stats.servers) == (2, 2)
        b.wire.gate = asyncio.Event()
        exporter.start()
        await wait_for(lambda: len(b.wire.listings()) == 2)  # its second sweep hangs
        await asyncio.wait_for(exporter.reconfigure([a.spec]), HANG_GUARD)
        assert (exporter.stats.servers_up, exporter.stats.published, exporter.stats.servers) == (1, 1, 1)
        await exporter.sweep_one(a.spec)
        assert (exporter.stats.servers_up, exporter.stats.published, exporter.stats.servers) == (1, 1, 1)
        b.wire.gate.set()
        await asyncio.wait_for(exporter.released([b.spec]), HANG_GUARD)
        await wait_for(lambda: 'server="b"' not in exporter.body(gzip=False).decode())
        assert (exporter.stats.servers_up, exporter.stats.servers) == (1, 1)
    finally:
        await exporter.stop()
        for server in (a, b):
            await server.client.aclose()


async def test_complete_sweeps_keep_counting_after_a_reconfigure_adds_a_server() -> None:
    """``sweeps_total`` rises by one each time every server of the targets is published once
    more. Counted as the fewest sweeps of one server, it stood still after a reload added one,
    until that one had been swept as often as the others (a week for a week-old exporter)."""
    a, b = Server("a", ("v8",), seed=55), Server("b", ("v8",), seed=56)
    exporter = Exporter([a.spec], interval=60)
    try:
        for _ in range(3):
            await exporter.sweep()
        assert exporter.stats.sweeps == 3
        retired = await exporter.reconfigure([a.spec, b.spec])
        assert retired == []
        await exporter.sweep_one(a.spec)
        assert exporter.stats.sweeps == 3  # b not published yet: no complete sweep
        await exporter.sweep_one(b.spec)
        assert exporter.stats.sweeps == 4
        await exporter.sweep()
        assert exporter.stats.sweeps == 5
        body = exporter.body(gzip=False).decode()
        assert "vbo_async_exporter_sweeps_total 5.0" in body
    finally:
        await exporter.stop()
        for server in (a, b):
            await server.client.aclose()


async def test_a_server_removed_and_added_again_is_not_counted_as_published() -> None:
    """A server removed by one reload, just after its publish, and named again by the next: its
    publish stayed counted towards the round of a complete sweep, so the other server's next
    publish looked up the times of a server not published since (a ``KeyError``: "the sweep of a
    failed on an internal error"), and the reload that re-added it raised the same, reported as
    failed although it had been applied (and the retired server's client never logged out)."""
    a, b = Server("a", ("v8",), seed=1), Server("b", ("v8",), seed=2)
    exporter = Exporter([a.spec, b.spec], interval=60)
    try:
        await exporter.sweep()
        await exporter.sweep_one(b.spec)  # b published once more: the round waits for a
        assert await exporter.reconfigure([a.spec]) == [b.spec]
        assert await exporter.reconfigure([a.spec, b.spec]) == []
        await exporter.sweep_one(a.spec)
        assert exporter.stats.sweeps == 1  # b not published since it came back
        await exporter.sweep_one(b.spec)
        assert exporter.stats.sweeps == 2
    finally:
        await exporter.stop()
        for server in (a, b):
            await server.client.aclose()


@pytest.mark.skipif(
    not Path("/proc/self/fd").is_dir() or not hasattr(os, "mkfifo"), reason="needs /proc, FIFOs"
)
async def test_a_sighup_while_serve_starts_is_a_reload_not_its_end(tmp_path: Path) -> None:
    """``systemctl reload`` just after a start: the SIGHUP comes while ``serve`` reads its targets
    file (here a named pipe the test writes once it has seen the process open it). SIGHUP's
    default action ended the process; now it serves, and reloads once its loop runs."""
    app = create_app(small_config(seed=43, organizations=1))
    (tmp_path / "pw").write_text("admin\n", encoding="utf-8")
    (tmp_path / "pw").chmod(0o600)
    fifo = tmp_path / "targets.toml"
    os.mkfifo(fifo)
    writer = os.open(fifo, os.O_RDWR)  # a writer already: the reader waits for what it writes
    try:
        async with serve(app) as port:
            text = table("east", port, str(tmp_path / "pw")) + table("west", port, str(tmp_path / "pw"))
            process = await asyncio.create_subprocess_exec(
                *serve_command(fifo),
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=child_environment(),
            )
            try:
                opened = f"/proc/{process.pid}/fd"

                def reading() -> bool:
                    with contextlib.suppress(OSError):
                        return any(
                            os.readlink(f"{opened}/{fd}") == os.path.realpath(fifo)
                            for fd in os.listdir(opened)
                        )
                    return False

                await wait_for(reading)
                process.send_signal(signal.SIGHUP)
                os.write(writer, text.encode())
                os.close(writer)
                writer = -1
                assert process.stdout is not None
                first = (await asyncio.wait_for(process.stdout.readline(), HANG_GUARD)).decode()
                assert first.startswith("Serving the metrics of 2 servers at "), first
                # The reload reads the pipe again, which nothing writes now: refused, and said so.
                assert process.stderr is not None
                line = (await asyncio.wait_for(process.stderr.readline(), HANG_GUARD)).decode()
                assert line.rstrip("\n") == (
                    f"vbo-async: error: {fifo}: a named pipe with nothing written to it (no process writing)"
                )
                process.send_signal(signal.SIGTERM)
                assert await asyncio.wait_for(process.wait(), HANG_GUARD) == 0
            finally:
                if process.returncode is None:
                    process.kill()
                await process.wait()
    finally:
        if writer >= 0:
            os.close(writer)


HUP_WHILE_IMPORTING = """
import os, signal, sys
import _vbo_async_cli as entry

before = entry.without_httpx_command_line

def hup_first():
    os.kill(os.getpid(), signal.SIGHUP)  # nothing of the package imported yet
    before()

entry.without_httpx_command_line = hup_first
sys.argv = ["vbo-async", *sys.argv[1:]]
sys.exit(entry.main())
"""


async def test_a_sighup_while_the_package_imports_is_a_reload_not_the_end_of_serve(tmp_path: Path) -> None:
    """``systemctl reload`` in a start's first ~0.3 s, while the package was still importing
    (before ``serve`` recorded SIGHUP itself), ended the process at once with 129 and not a word;
    ``Restart=on-failure`` does not restart it. The entry point records it from its first line."""
    app = create_app(small_config(seed=44, organizations=1))
    (tmp_path / "pw").write_text("admin\n", encoding="utf-8")
    (tmp_path / "pw").chmod(0o600)
    async with serve(app) as port:
        targets = tmp_path / "targets.toml"
        targets.write_text(table("east", port, str(tmp_path / "pw")), encoding="utf-8")
        command = serve_command(targets)
        assert command[1:3] == ["-m", "vbo_async"]
        process = await asyncio.create_subprocess_exec(
            command[0],
            "-c",
            HUP_WHILE_IMPORTING,
            *command[3:],
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=child_environment(),
        )
        try:
            assert process.stdout is not None
            first = (await asyncio.wait_for(process.stdout.readline(), HANG_GUARD)).decode()
            assert first.startswith("Serving the metrics of 1 server at "), first
            reloaded = (await asyncio.wait_for(process.stdout.readline(), HANG_GUARD)).decode()
            assert reloaded.startswith(f"Reloaded {targets}: serving the metrics of 1 server"), reloaded
            process.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(process.wait(), HANG_GUARD) == 0
        finally:
            if process.returncode is None:
                process.kill()
            await process.wait()


async def test_a_reload_keeps_the_client_of_a_server_whose_table_password_and_ca_bundle_are_unchanged(
    tmp_path: Path, ca: Any
) -> None:
    """`Servers.build` keeps a server's spec (its client, its token) only when nothing it was
    built from changed: its table, its password, and its CA bundle file (renewed in place); its
    client alone when only its organizations changed."""
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    (tmp_path / "east.pw").write_text("one\n", encoding="utf-8")
    (tmp_path / "east.pw").chmod(0o600)
    targets = tmp_path / "targets.toml"
    east = table("east", 1, "east.pw").replace("http://", "https://") + 'ca_bundle = "ca.pem"\n'
    west = table("west", 2, "east.pw")
    targets.write_text(east + west, encoding="utf-8")
    passwords = Passwords(prompt=False)
    servers = Servers(targets, passwords, within=60)
    try:
        first = servers.build(load(targets, passwords))
        again = servers.build(load(targets, passwords))
        assert [a is b for a, b in zip(first, again, strict=True)] == [True, True]
        stamp = bundle.stat()
        os.utime(bundle, ns=(stamp.st_atime_ns, stamp.st_mtime_ns + 1_000_000_000))
        renewed = servers.build(load(targets, passwords))
        assert [a is b for a, b in zip(again, renewed, strict=True)] == [False, True]
        (tmp_path / "east.pw").write_text("two\n", encoding="utf-8")
        changed = servers.build(load(targets, passwords))
        assert [a is b for a, b in zip(renewed, changed, strict=True)] == [False, False]
        targets.write_text(
            east + west.replace('name = "west"', 'name = "west"\nmax_concurrency = 2'), "utf-8"
        )
        tuned = servers.build(load(targets, passwords))
        assert [a is b for a, b in zip(changed, tuned, strict=True)] == [True, False]
        # Other tenants alone: a new spec (swept from its next sweep) with the same client and token.
        targets.write_text(
            east
            + 'organizations = ["contoso"]\n'
            + west.replace('name = "west"', 'name = "west"\nmax_concurrency = 2'),
            "utf-8",
        )
        chosen = servers.build(load(targets, passwords))
        assert (chosen[0] is tuned[0], chosen[0].client is tuned[0].client) == (False, True)
        assert chosen[0].organizations == ("contoso",)
    finally:
        await servers.aclose()
