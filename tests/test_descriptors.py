"""File descriptors over a long life: what a sweep opens stays within the process's open-file limit,
and running out of descriptors is a typed error that leaves nothing broken once they are back.

The limits are set in child processes (``resource.setrlimit`` before ``vbo-async serve`` starts),
never in the test process; every server is on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import re
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from vbo_async import VBOClient
from vbo_async._cli import _serve
from vbo_async._cli._exporter import Exporter
from vbo_async._cli._sweeps import ServerSpec
from vbo_async.simulator import SimulatorConfig, create_app

from .conftest import serve
from .test_cli import HANG_GUARD, child_environment, reaped, write_targets
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


def _targets(path: Path, port: int, count: int) -> Path:
    tables = "".join(
        f'[[servers]]\nname = "s{number:02d}"\nurl = "http://127.0.0.1:{port}/v8"\nusername = "admin"\n'
        'password_env = "VBO_PASSWORD"\norganizations = "all"\n\n'
        for number in range(count)
    )
    return write_targets(path, tables)


# --- how many servers a sweep takes at once ---------------------------------------------------------


def test_servers_take_turns_only_when_they_do_not_all_fit() -> None:
    needs = [_serve.client_descriptors(10)] * 100  # 12 each: ten requests, a token, a lookup
    assert _serve.servers_at_once(1 << 20, needs) == 100
    # 1,024: 256 for the HTTP connections, 64 reserved, 704 for the clients: 58 servers of 12.
    assert _serve.servers_at_once(1024, needs) == 58
    assert _serve.servers_at_once(256, needs) == 10
    assert _serve.servers_at_once(20, needs) == 1  # never none
    assert _serve.servers_at_once(256, []) == 0


@pytest.mark.parametrize("needs", [[12] * 100, [12] * 1000, [3, 40, 5], [12, 12]])
def test_the_limit_said_to_be_needed_is_the_least_that_sweeps_every_server_at_once(needs: list[int]) -> None:
    needed = _serve.descriptors_needed(needs)
    assert _serve.servers_at_once(needed, needs) == len(needs)
    assert _serve.servers_at_once(needed - 1, needs) < len(needs)


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
            [*MODULE, "serve", "--targets", str(targets), "--listen", "127.0.0.1:0", "--interval", "3"],
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
    needs = [_serve.client_descriptors(10)] * count
    at_once, needed = _serve.servers_at_once(nofile, needs), _serve.descriptors_needed(needs)
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
