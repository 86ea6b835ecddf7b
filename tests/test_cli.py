"""The ``vbo-async`` command line: demo, jobs, poll and simulate, in-process and as real processes.

In-process runs call `main` in a worker thread (it runs its own event loop) while the test's loop
serves a simulator on 127.0.0.1 with uvicorn; output is compared with the simulator's wire data.
Every failure must be one ``vbo-async: error: ...`` line on stderr and a non-zero exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import getpass
import io
import json
import logging
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import stamina

import vbo_async.simulator
from vbo_async import RetryPolicy, TransportError, VBOClient, __version__
from vbo_async.cli import Row, _shared_verify, main, print_table
from vbo_async.simulator import Simulator, SimulatorConfig, create_app, make_tls_material

from .conftest import closed_port, serve

HEADERS = (
    "Organization",
    "Job",
    "Last status",
    "Last run",
    "Next run",
    "Repository",
    "Proxy",
    "Latest session",
)
DEMO_SEED = 2017
DEMO_EPOCH = dt.datetime(2026, 7, 1, 12, 0, tzinfo=dt.UTC)
"""The simulated "now" the demo tests pin: a simulator's default epoch is the real time, so the
demo's simulator and the one a test compares it with would otherwise differ by a second or so."""
SCRIPT = Path(sys.executable).parent / "vbo-async"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
NO_WAIT = RetryPolicy(attempts=12, wait_initial=0, wait_max=0.01, wait_jitter=0, max_retry_after=0)
WRONG_PASSWORD = "Wr0ng-Pa55word-Zx81"
HANG_GUARD = 60.0
"""Seconds before a child process that never answers fails the test instead of hanging it."""
_TERMINAL_VARIABLES = ("FORCE_COLOR", "NO_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "COLUMNS", "LINES")
_PASSWORD_VARIABLES = ("VBO_PASSWORD", "VBO_EAST_PASSWORD", "VBO_WEST_PASSWORD")


def small_config(seed: int, organizations: int = 3) -> SimulatorConfig:
    """Few jobs and sessions per organization: quick to serve over a socket."""
    return SimulatorConfig(
        seed=seed, organizations=organizations, jobs_per_organization=(2, 4), sessions_per_job=(1, 6)
    )


@pytest.fixture(autouse=True)
def plain_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No colour or size overrides for rich, and no password variables unless a test sets them."""
    for name in (*_TERMINAL_VARIABLES, *_PASSWORD_VARIABLES):
        monkeypatch.delenv(name, raising=False)


def child_environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in (*_TERMINAL_VARIABLES, *_PASSWORD_VARIABLES)}
    env.update(extra)
    return env


# --- running main and reading what it printed ------------------------------------------------------


@attrs.frozen
class Result:
    code: int
    out: str
    err: str


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> Result:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return Result(code, out, err)


async def run_in_thread(capsys: pytest.CaptureFixture[str], *argv: str) -> Result:
    """`main` in a worker thread, so this test's event loop keeps serving the simulator."""
    code = await asyncio.to_thread(main, list(argv))
    out, err = capsys.readouterr()
    return Result(code, out, err)


def usage_exit(capsys: pytest.CaptureFixture[str], *argv: str) -> Result:
    with pytest.raises(SystemExit) as info:
        main(list(argv))
    out, err = capsys.readouterr()
    assert isinstance(info.value.code, int)
    return Result(info.value.code, out, err)


def error_line(result: Result, code: int = 1) -> str:
    """The one error line of a failed run (nothing on stdout, no traceback)."""
    assert result.code == code, result
    assert result.out == ""
    assert "Traceback" not in result.err
    lines = result.err.splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("vbo-async: error: ")
    return lines[0]


def table_rows(out: str) -> list[list[str]]:
    """The cells of each body row of a rich table (header and rules left out)."""
    rows = []
    for line in ANSI.sub("", out).splitlines():
        if line.startswith("│"):
            rows.append([cell.strip() for cell in line.strip("│").split("│")])
    return rows


def header_cells(out: str) -> list[str]:
    (line,) = [line for line in ANSI.sub("", out).splitlines() if line.startswith("┃")]
    return [cell.strip() for cell in line.strip("┃").split("┃")]


# --- what the simulator says the rows must be --------------------------------------------------------


def when(text: str | None) -> dt.datetime | None:
    return None if text is None else dt.datetime.fromisoformat(text)


def expected_rows(
    simulator: Simulator, organization_ids: list[str] | None = None, *, version: str = "v1"
) -> dict[str, dict[str, Any]]:
    """Per job id, the row fields the CLI must print, read from the simulator's wire data as
    ``version`` serves it (the demo's client speaks the newest, v8)."""
    if version != "v1":
        return _expected_rows_v8(simulator, organization_ids)
    names = {org["id"]: org["name"] for org in simulator.organizations_wire()}
    rows = {}
    for org_id in organization_ids if organization_ids is not None else simulator.organization_ids():
        for job in simulator.jobs_wire(org_id):
            links = {relation: link["href"].rsplit("/", 1)[1] for relation, link in job["_links"].items()}
            sessions = simulator.job_sessions_wire(job["id"])
            dated = [s for s in sessions if s["creationTime"] is not None]
            latest = max(dated, key=lambda s: dt.datetime.fromisoformat(s["creationTime"]), default=None)
            rows[job["id"]] = {
                "organization": names[org_id],
                "job": job["name"],
                "enabled": job["isEnabled"] == "true",
                "last_status": job["lastStatus"],
                "last_run": when(job["lastRun"]),
                "next_run": when(job["nextRun"]),
                "repository": simulator.repository_wire(links["repository"])["name"],
                "proxy": simulator.proxy_wire(links["proxy"])["hostName"],
                "latest_session": latest["status"] if latest else None,
                "latest_session_time": when(latest["creationTime"]) if latest else None,
            }
    return rows


def _expected_rows_v8(simulator: Simulator, organization_ids: list[str] | None) -> dict[str, dict[str, Any]]:
    """`expected_rows` from the v8 wire: a job's proxy is its repository's (none for a repository
    of a proxy pool, which has no proxy link)."""
    everything = 10_000
    names = {
        org["id"]: org["name"]
        for org in simulator.organizations_wire(version="v8", limit=everything)["results"]
    }
    rows = {}
    for org_id in organization_ids if organization_ids is not None else simulator.organization_ids():
        for job in simulator.jobs_wire(version="v8", organization_id=org_id, limit=everything)["results"]:
            repository = simulator.repository_wire(job["repositoryId"], version="v8")
            proxy_link = repository["_links"].get("proxy")
            proxy_id = proxy_link["href"].rsplit("/", 1)[1] if proxy_link else None
            sessions = simulator.sessions_wire(version="v8", job_id=job["id"], limit=everything)["results"]
            latest = max(sessions, key=lambda s: dt.datetime.fromisoformat(s["creationTime"]), default=None)
            rows[job["id"]] = {
                "organization": names[org_id],
                "job": job["name"],
                "enabled": job["isEnabled"],
                "last_status": job["lastStatus"],
                "last_run": when(job["lastRun"]),
                "next_run": when(job["nextRun"]),
                "repository": repository["name"],
                "proxy": simulator.proxy_wire(proxy_id, version="v8")["hostName"] if proxy_id else None,
                "latest_session": latest["status"] if latest else None,
                "latest_session_time": when(latest["creationTime"]) if latest else None,
            }
    return rows


def check_json_rows(out: str, expected: dict[str, dict[str, Any]], server: str | dict[str, str]) -> list[Any]:
    """``--json`` output against `expected_rows`; ``server`` per job id when several servers."""
    rows = json.loads(out)
    assert isinstance(rows, list)
    assert sorted(row["job_id"] for row in rows) == sorted(expected)
    for row in rows:
        want = expected[row["job_id"]]
        assert row["server"] == (server if isinstance(server, str) else server[row["job_id"]])
        assert row["error"] is None
        for key in ("organization", "job", "enabled", "last_status", "repository", "proxy", "latest_session"):
            assert row[key] == want[key], key
        for key in ("last_run", "next_run", "latest_session_time"):
            assert when(row[key]) == want[key], key
    order = [(row["server"], row["organization"], row["job"]) for row in rows]
    assert order == sorted(order)
    return rows


def check_table(out: str, expected: dict[str, dict[str, Any]]) -> None:
    assert header_cells(out) == list(HEADERS)
    rows = table_rows(out)
    assert len(rows) == len(expected)
    printed = sorted((row[0], row[1], row[2], row[5], row[6]) for row in rows)
    wanted = sorted(
        (
            want["organization"],
            want["job"] if want["enabled"] else f"{want['job']} (disabled)",
            want["last_status"] or "-",
            want["repository"],
            want["proxy"] or "-",
        )
        for want in expected.values()
    )
    assert printed == wanted


# --- demo ---------------------------------------------------------------------------------------------


@pytest.fixture
def pinned_demo_epoch(monkeypatch: pytest.MonkeyPatch) -> None:
    """Build the demo's simulator (``vbo_async.simulator.SimulatorConfig``) at `DEMO_EPOCH`."""

    def pinned(**options: Any) -> SimulatorConfig:
        return SimulatorConfig(**{"epoch": DEMO_EPOCH, **options})

    monkeypatch.setattr(vbo_async.simulator, "SimulatorConfig", pinned)


@pytest.mark.usefixtures("pinned_demo_epoch")
def test_demo_prints_a_table_of_every_simulated_job(capsys: pytest.CaptureFixture[str]) -> None:
    result = run(capsys, "demo", "--organizations", "3")
    assert result.code == 0
    assert result.err == ""
    expected = expected_rows(
        Simulator(SimulatorConfig(seed=DEMO_SEED, organizations=3, epoch=DEMO_EPOCH)), version="v8"
    )
    assert f"vbo-async demo: {len(expected)} jobs" in result.out
    check_table(result.out, expected)


@pytest.mark.usefixtures("pinned_demo_epoch")
def test_demo_json_rows_are_the_simulator_jobs(capsys: pytest.CaptureFixture[str]) -> None:
    result = run(capsys, "demo", "--organizations", "3", "--json")
    assert result.code == 0
    assert result.err == ""
    simulator = Simulator(SimulatorConfig(seed=DEMO_SEED, organizations=3, epoch=DEMO_EPOCH))
    rows = check_json_rows(result.out, expected_rows(simulator, version="v8"), "simulator")
    assert sorted(row["job_id"] for row in rows) == sorted(simulator.job_ids())


@pytest.mark.usefixtures("pinned_demo_epoch")
def test_demo_seed_option_changes_the_data(capsys: pytest.CaptureFixture[str]) -> None:
    result = run(capsys, "demo", "--organizations", "2", "--seed", "5", "--concurrency", "1", "--json")
    assert result.code == 0
    check_json_rows(
        result.out,
        expected_rows(Simulator(SimulatorConfig(seed=5, organizations=2, epoch=DEMO_EPOCH)), version="v8"),
        "simulator",
    )


@pytest.mark.parametrize(
    "command", [[sys.executable, "-m", "vbo_async"], [str(SCRIPT)]], ids=["module", "script"]
)
def test_demo_as_a_real_process(command: list[str], tmp_path: Path) -> None:
    completed = subprocess.run(
        [*command, "demo", "--organizations", "2"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=child_environment(),
        timeout=HANG_GUARD,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stderr == ""
    check_table(
        completed.stdout,
        expected_rows(Simulator(SimulatorConfig(seed=DEMO_SEED, organizations=2)), version="v8"),
    )


@pytest.mark.parametrize("output", [["--json"], []], ids=["json", "table"])
def test_a_reader_that_goes_away_is_not_a_traceback(tmp_path: Path, output: list[str]) -> None:
    """``vbo-async demo --json | head -1``: the pipe closes early; no traceback, no error spew."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # every write to stdout now fails with EPIPE
    try:
        completed = subprocess.run(
            [sys.executable, "-m", "vbo_async", "demo", "--organizations", "1", *output],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
            env=child_environment(),
            timeout=HANG_GUARD,
            check=False,
        )
    finally:
        os.close(write_end)
    assert completed.returncode == 1
    assert completed.stderr == ""


def test_table_shows_server_text_verbatim(capsys: pytest.CaptureFixture[str]) -> None:
    """Names come from the server: brackets in them are text, not rich markup."""
    rows = [
        Row(
            server="s",
            organization="[bold]tenant[/bold]",
            job="[archive] mail [/]",
            job_id="j1",
            enabled=False,
            last_status="Success",
            last_run=dt.datetime(2017, 4, 1, 9, 35, tzinfo=dt.UTC),
            next_run=None,
            repository="[repo]",
            proxy="proxy[/]",
            latest_session="[new]",
            latest_session_time=None,
        ),
        Row(
            "s",
            "[red]other[/]",
            "-",
            "-",
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            error="bad [/] thing",
        ),
    ]
    print_table(rows, title="[title]")
    out = capsys.readouterr().out
    assert "[title]" in out
    body = table_rows(out)
    assert body[0] == [
        "[bold]tenant[/bold]",
        "[archive] mail [/] (disabled)",
        "Success",
        "2017-04-01 09:35",
        "-",
        "[repo]",
        "proxy[/]",
        "[new] -",
    ]
    assert body[1][:3] == ["[red]other[/]", "error", "bad [/] thing"]


# --- jobs against a simulator on a loopback socket ---------------------------------------------------


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(server key + certificate chain in one PEM, CA bundle) from `make_tls_material`."""
    folder = tmp_path_factory.mktemp("cli-tls")
    cert, key, ca = make_tls_material(folder)
    combined = folder / "server.pem"
    combined.write_bytes(key.read_bytes() + cert.read_bytes())
    return combined, ca


@pytest.fixture
def simulator() -> Simulator:
    return Simulator(small_config(seed=7))


@pytest.fixture
async def http_url(simulator: Simulator) -> AsyncIterator[str]:
    async with serve(create_app(simulator=simulator)) as port:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
async def https_url(simulator: Simulator, tls: tuple[Path, Path]) -> AsyncIterator[str]:
    async with serve(create_app(simulator=simulator), certfile=tls[0]) as port:
        yield f"https://127.0.0.1:{port}"


@pytest.fixture
def org_id(simulator: Simulator) -> str:
    return max(simulator.organization_ids(), key=lambda org: len(simulator.jobs_wire(org)))


@pytest.fixture
def no_backoff() -> Iterator[None]:
    """stamina's test mode: retries still happen, without sleeping between them."""
    with stamina.set_testing(True, attempts=3):
        yield


def jobs_args(url: str, org: str, *extra: str) -> list[str]:
    return ["jobs", "--server", url, "--username", "admin", "--org", org, *extra]


async def test_jobs_over_http_json(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    simulator: Simulator,
    http_url: str,
    org_id: str,
) -> None:
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    result = await run_in_thread(capsys, *jobs_args(http_url, org_id, "--json"))
    assert result.code == 0, result.err
    assert result.err == ""
    check_json_rows(result.out, expected_rows(simulator, [org_id]), http_url)
    assert simulator.stats.token_requests == {"password": 1}


async def test_jobs_over_http_table(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    simulator: Simulator,
    http_url: str,
    org_id: str,
) -> None:
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    result = await run_in_thread(capsys, *jobs_args(http_url, org_id))
    assert result.code == 0, result.err
    expected = expected_rows(simulator, [org_id])
    assert f"vbo-async jobs: {len(expected)} jobs" in result.out
    check_table(result.out, expected)


async def test_jobs_password_from_a_named_variable(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    simulator: Simulator,
    http_url: str,
    org_id: str,
) -> None:
    monkeypatch.setenv("VBO_EAST_PASSWORD", "admin")
    result = await run_in_thread(
        capsys, *jobs_args(http_url, org_id, "--password-env", "VBO_EAST_PASSWORD", "--json")
    )
    assert result.code == 0, result.err
    check_json_rows(result.out, expected_rows(simulator, [org_id]), http_url)


async def test_jobs_over_https_with_a_ca_bundle(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    simulator: Simulator,
    https_url: str,
    org_id: str,
    tls: tuple[Path, Path],
) -> None:
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    result = await run_in_thread(capsys, *jobs_args(https_url, org_id, "--ca-bundle", str(tls[1]), "--json"))
    assert result.code == 0, result.err
    assert result.err == ""
    check_json_rows(result.out, expected_rows(simulator, [org_id]), https_url)


async def test_jobs_insecure_works_and_warns_outside_stdout(
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    simulator: Simulator,
    https_url: str,
    org_id: str,
) -> None:
    caplog.set_level(logging.WARNING, logger="vbo_async")
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    result = await run_in_thread(capsys, *jobs_args(https_url, org_id, "--insecure", "--json"))
    assert result.code == 0, result.err
    check_json_rows(result.out, expected_rows(simulator, [org_id]), https_url)  # stdout is only JSON
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("verification is OFF" in message for message in warnings)


async def test_jobs_insecure_warning_is_one_stderr_line_of_a_real_process(
    simulator: Simulator, https_url: str, org_id: str, tmp_path: Path
) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "vbo_async",
        *jobs_args(https_url, org_id, "--insecure", "--json"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=tmp_path,
        env=child_environment(VBO_PASSWORD="admin"),
    )
    out, err = await asyncio.wait_for(process.communicate(), HANG_GUARD)
    assert process.returncode == 0, err
    check_json_rows(out.decode(), expected_rows(simulator, [org_id]), https_url)
    (line,) = err.decode().splitlines()
    assert line.startswith("vbo-async: warning: TLS certificate verification is OFF")


async def test_jobs_https_without_a_ca_bundle_is_a_certificate_error(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    simulator: Simulator,
    https_url: str,
    org_id: str,
) -> None:
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    line = error_line(await run_in_thread(capsys, *jobs_args(https_url, org_id, "--json")))
    assert "certificate" in line.lower()
    assert simulator.stats.requests == 0


def test_jobs_without_password_or_terminal_is_one_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO())
    monkeypatch.setattr(getpass, "getpass", lambda *_: pytest.fail("prompted without a terminal"))
    url = f"http://127.0.0.1:{closed_port()}"
    line = error_line(run(capsys, *jobs_args(url, "org", "--json")))
    assert "VBO_PASSWORD" in line
    line = error_line(run(capsys, *jobs_args(url, "org", "--password-env", "MY_VBO_SECRET")))
    assert "MY_VBO_SECRET" in line


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


async def test_jobs_prompts_for_the_password_on_a_terminal(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    simulator: Simulator,
    http_url: str,
    org_id: str,
) -> None:
    prompts: list[str] = []

    def answer(prompt: str = "Password: ") -> str:
        prompts.append(prompt)
        return "admin"

    monkeypatch.setattr(sys, "stdin", _Terminal())
    monkeypatch.setattr(getpass, "getpass", answer)
    result = await run_in_thread(capsys, *jobs_args(http_url, org_id, "--json"))
    assert result.code == 0, result.err
    assert prompts == ["Password for admin: "]
    check_json_rows(result.out, expected_rows(simulator, [org_id]), http_url)


async def test_jobs_wrong_password_is_one_line_without_the_password(
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    simulator: Simulator,
    http_url: str,
    org_id: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("VBO_PASSWORD", WRONG_PASSWORD)
    result = await run_in_thread(capsys, *jobs_args(http_url, org_id, "--json"))
    line = error_line(result)
    assert "password" in line.lower()
    assert WRONG_PASSWORD not in result.out + result.err + caplog.text
    assert simulator.stats.token_requests == {"password": 1}  # refused once, not retried


async def test_jobs_unknown_organization_is_one_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, http_url: str
) -> None:
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    unknown = "00000000-0000-0000-0000-00000000beef"
    line = error_line(await run_in_thread(capsys, *jobs_args(http_url, unknown, "--json")))
    assert "404" in line
    assert unknown in line


def test_jobs_refused_connection_is_one_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, no_backoff: None
) -> None:
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    line = error_line(run(capsys, *jobs_args(f"http://127.0.0.1:{closed_port()}", "org", "--json")))
    assert "connect" in line.lower()


def test_jobs_refused_connection_is_one_stderr_line_of_a_real_process(tmp_path: Path) -> None:
    """Retries happen on the way (with their backoff), but only the outcome is printed."""
    completed = subprocess.run(
        [sys.executable, "-m", "vbo_async", *jobs_args(f"http://127.0.0.1:{closed_port()}", "org")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=child_environment(VBO_PASSWORD="admin"),
        timeout=HANG_GUARD,
        check=False,
    )
    assert completed.returncode == 1
    assert completed.stdout == ""
    (line,) = completed.stderr.splitlines()
    assert line.startswith("vbo-async: error: cannot connect")


def test_jobs_missing_ca_bundle_and_bad_url(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    url = f"https://127.0.0.1:{closed_port()}"
    line = error_line(run(capsys, *jobs_args(url, "org", "--ca-bundle", "/nonexistent/ca.pem")))
    assert "/nonexistent/ca.pem" in line
    line = error_line(run(capsys, *jobs_args("ftp://127.0.0.1", "org")), code=2)
    assert "ftp://127.0.0.1" in line


# --- poll --------------------------------------------------------------------------------------------


def write_targets(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def server_table(name: str, url: str, password_env: str, **extra: str) -> str:
    lines = [
        "[[servers]]",
        f'name = "{name}"',
        f'url = "{url}"',
        'username = "admin"',
        f'password_env = "{password_env}"',
        *(f"{key} = {value}" for key, value in extra.items()),
    ]
    return "\n".join(lines) + "\n\n"


async def test_poll_two_servers(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    tls: tuple[Path, Path],
) -> None:
    east, west = (
        Simulator(small_config(seed=21, organizations=2)),
        Simulator(small_config(seed=22, organizations=4)),
    )
    chosen = west.organization_ids()[1:3]
    monkeypatch.setenv("VBO_EAST_PASSWORD", "admin")
    monkeypatch.setenv("VBO_WEST_PASSWORD", "admin")
    async with (
        serve(create_app(simulator=east)) as east_port,
        serve(create_app(simulator=west), certfile=tls[0]) as west_port,
    ):
        targets = write_targets(
            tmp_path / "targets.toml",
            server_table("east", f"http://127.0.0.1:{east_port}", "VBO_EAST_PASSWORD", organizations='"all"')
            + server_table(
                "west",
                f"https://127.0.0.1:{west_port}",
                "VBO_WEST_PASSWORD",
                organizations=json.dumps(chosen),
                ca_bundle=f"'{tls[1]}'",
                max_concurrency="2",
            ),
        )
        result = await run_in_thread(capsys, "poll", "--targets", str(targets), "--json")
        table = await run_in_thread(capsys, "poll", "--targets", str(targets), "--concurrency", "1")
    assert result.code == 0, result.err
    assert result.err == ""
    east_rows, west_rows = expected_rows(east), expected_rows(west, chosen)
    servers = dict.fromkeys(east_rows, "east") | dict.fromkeys(west_rows, "west")
    check_json_rows(result.out, east_rows | west_rows, servers)
    assert table.code == 0, table.err
    check_table(table.out, east_rows | west_rows)


async def test_poll_lists_the_servers_organizations_concurrently(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The first server answers its organization list only once the second was asked for its
    own: listed one after the other, the first would give up waiting (a guard, not a timing)."""
    first, second = Simulator(small_config(seed=24, organizations=2)), Simulator(small_config(seed=25))
    second_asked = asyncio.Event()
    first_saw_second: list[bool] = []

    def listing_gate(app: Any, on_list: Any) -> Any:
        async def gated(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http" and scope["path"].lower() == "/v1/organizations":
                await on_list()
            await app(scope, receive, send)

        return gated

    async def wait_for_second() -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(second_asked.wait(), timeout=10)
        first_saw_second.append(second_asked.is_set())

    async def asked() -> None:
        second_asked.set()

    monkeypatch.setenv("VBO_PASSWORD", "admin")
    async with (
        serve(listing_gate(create_app(simulator=first), wait_for_second)) as first_port,
        serve(listing_gate(create_app(simulator=second), asked)) as second_port,
    ):
        targets = write_targets(
            tmp_path / "targets.toml",
            server_table("first", f"http://127.0.0.1:{first_port}", "VBO_PASSWORD")
            + server_table("second", f"http://127.0.0.1:{second_port}", "VBO_PASSWORD"),
        )
        argv = ("poll", "--targets", str(targets), "--json", "--concurrency", "4")
        result = await run_in_thread(capsys, *argv)
    assert result.code == 0, result.err
    assert first_saw_second == [True]
    servers = dict.fromkeys(expected_rows(first), "first") | dict.fromkeys(expected_rows(second), "second")
    check_json_rows(result.out, expected_rows(first) | expected_rows(second), servers)


def test_servers_with_the_same_ca_bundle_share_one_tls_context(tls: tuple[Path, Path]) -> None:
    contexts: dict[str | None, ssl.SSLContext] = {}
    bundle = str(tls[1])
    one, two = (_shared_verify(bundle, False, contexts) for _ in range(2))
    system, system_again = (_shared_verify(None, False, contexts) for _ in range(2))
    assert isinstance(one, ssl.SSLContext)
    assert one is two
    assert isinstance(system, ssl.SSLContext)
    assert system is system_again
    assert system is not one
    assert _shared_verify(bundle, True, contexts) is False  # insecure wins, and builds nothing
    assert set(contexts) == {bundle, None}


async def test_poll_reports_an_unreachable_server_and_polls_the_others(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, no_backoff: None
) -> None:
    healthy = Simulator(small_config(seed=23, organizations=2))
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    down = f"http://127.0.0.1:{closed_port()}"
    async with serve(create_app(simulator=healthy)) as port:
        targets = write_targets(
            tmp_path / "targets.toml",
            server_table("a-down", down, "VBO_PASSWORD")
            + server_table("b-listed-down", down, "VBO_PASSWORD", organizations='["org-1"]')
            + server_table("c-up", f"http://127.0.0.1:{port}", "VBO_PASSWORD"),
        )
        result = await run_in_thread(capsys, "poll", "--targets", str(targets), "--json")
    assert result.code == 0, result.err
    rows = json.loads(result.out)
    failed = [row for row in rows if row["error"] is not None]
    assert [(row["server"], row["organization"]) for row in failed] == [
        ("a-down", "(all organizations)"),
        ("b-listed-down", "org-1"),
    ]
    assert all("connect" in row["error"] for row in failed)
    up = [row for row in rows if row["error"] is None]
    check_json_rows(json.dumps(up), expected_rows(healthy), "c-up")


async def test_poll_where_every_target_fails_exits_non_zero(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, http_url: str
) -> None:
    monkeypatch.setenv("VBO_PASSWORD", WRONG_PASSWORD)
    targets = write_targets(tmp_path / "targets.toml", server_table("east", http_url, "VBO_PASSWORD"))
    result = await run_in_thread(capsys, "poll", "--targets", str(targets))
    assert result.code == 1
    assert WRONG_PASSWORD not in result.out + result.err
    (row,) = table_rows(result.out)
    assert row[1] == "error"


GOOD = 'url = "http://127.0.0.1:1"\nusername = "admin"\npassword_env = "VBO_PASSWORD"\n'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[[servers]\nurl = ", "not valid TOML"),
        ("", "[[servers]]"),
        ('servers = ["east"]\n', "is not a table"),
        ("[[servers]]\n" + GOOD.replace('url = "http://127.0.0.1:1"\n', ""), "'url'"),
        ("[[servers]]\n" + GOOD.replace('username = "admin"\n', ""), "'username'"),
        ("[[servers]]\n" + GOOD.replace('password_env = "VBO_PASSWORD"\n', ""), "'password_env'"),
        ("[[servers]]\n" + GOOD + "organizations = 5\n", "'organizations'"),
        ("[[servers]]\n" + GOOD + 'organizations = ["a", 1]\n', "'organizations'"),
        ("[[servers]]\n" + GOOD + 'insecure = "false"\n', "'insecure'"),
        ("[[servers]]\n" + GOOD + 'max_concurrency = "many"\n', "'max_concurrency'"),
        ("[[servers]]\n" + GOOD + "max_concurrency = 0\n", "'max_concurrency'"),
        ("[[servers]]\n" + GOOD + "ca_bundle = 5\n", "'ca_bundle'"),
    ],
    ids=[
        "invalid-toml",
        "no-servers",
        "not-a-table",
        "no-url",
        "no-username",
        "no-password-env",
        "organizations-number",
        "organizations-mixed",
        "insecure-string",
        "concurrency-string",
        "concurrency-zero",
        "ca-bundle-number",
    ],
)
def test_poll_refuses_bad_target_files(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str, expected: str
) -> None:
    targets = write_targets(tmp_path / "targets.toml", text)
    line = error_line(run(capsys, "poll", "--targets", str(targets)))
    assert expected in line
    assert str(targets) in line


@pytest.mark.parametrize("with_password_env", [True, False])
def test_poll_refuses_a_password_in_the_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, with_password_env: bool
) -> None:
    text = GOOD if with_password_env else GOOD.replace('password_env = "VBO_PASSWORD"\n', "")
    targets = write_targets(tmp_path / "targets.toml", f'[[servers]]\n{text}password = "{WRONG_PASSWORD}"\n')
    result = run(capsys, "poll", "--targets", str(targets))
    line = error_line(result)
    assert "environment variable" in line
    assert WRONG_PASSWORD not in result.err


def test_poll_missing_file_and_missing_password(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    line = error_line(run(capsys, "poll", "--targets", str(tmp_path / "missing.toml")))
    assert "cannot read" in line
    assert "missing.toml" in line
    targets = write_targets(tmp_path / "targets.toml", "[[servers]]\n" + GOOD)
    line = error_line(run(capsys, "poll", "--targets", str(targets)))
    assert "VBO_PASSWORD" in line


# --- simulate ------------------------------------------------------------------------------------------


async def start_simulate(tmp_path: Path, *args: str) -> tuple[asyncio.subprocess.Process, list[str]]:
    """Start ``vbo-async simulate`` and read its stdout up to the "Serving" line.

    Its temporary files (the ``--tls`` certificates) go under ``tmp_path``.
    """
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "vbo_async",
        "simulate",
        "--host",
        "127.0.0.1",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=tmp_path,
        env=child_environment(TMPDIR=str(tmp_path)),
    )
    assert process.stdout is not None
    lines: list[str] = []
    while not (lines and lines[-1].startswith("Serving")):
        line = await asyncio.wait_for(process.stdout.readline(), HANG_GUARD)
        if not line:
            _, err = await asyncio.wait_for(process.communicate(), HANG_GUARD)
            pytest.fail(f"simulate exited early ({process.returncode}): {err.decode()}")
        lines.append(line.decode().rstrip("\n"))
    return process, lines


async def stop(process: asyncio.subprocess.Process, how: signal.Signals = signal.SIGINT) -> tuple[str, str]:
    process.send_signal(how)
    out, err = await asyncio.wait_for(process.communicate(), HANG_GUARD)
    return out.decode(), err.decode()


def served_port(line: str) -> int:
    match = re.search(r"https?://127\.0\.0\.1:(\d+)/v1 ", line)
    assert match, line
    return int(match.group(1))


async def test_simulate_serves_http_until_interrupted(tmp_path: Path) -> None:
    port = closed_port()
    process, lines = await start_simulate(
        tmp_path, "--port", str(port), "--seed", "31", "--organizations", "4"
    )
    try:
        assert lines == [lines[-1]]
        assert served_port(lines[-1]) == port
        assert lines[-1].startswith(f"Serving the VBO v1 simulator at http://127.0.0.1:{port}/v1")
        # One attempt, no retries: the server listens by the time it says "Serving".
        once = RetryPolicy(attempts=1)
        async with VBOClient(
            f"http://127.0.0.1:{port}", username="admin", password="admin", retry=once, api_version="v1"
        ) as vbo:
            organizations = await vbo.organizations()
    finally:
        _, err = await stop(process)
    expected = Simulator(SimulatorConfig(seed=31, organizations=4))
    assert [org.id for org in organizations] == expected.organization_ids()
    assert [org.name for org in organizations] == [org["name"] for org in expected.organizations_wire()]
    assert process.returncode == 0
    assert "Traceback" not in err


async def test_simulate_tls_prints_the_ca_bundle(tmp_path: Path) -> None:
    process, lines = await start_simulate(tmp_path, "--port", "0", "--tls", "--organizations", "2")
    try:
        ca_lines = [line for line in lines if line.startswith("CA bundle")]
        assert len(ca_lines) == 1
        ca = Path(ca_lines[0].rsplit(": ", 1)[1])
        assert await asyncio.to_thread(ca.is_file)
        assert ca.is_relative_to(tmp_path)
        port = served_port(lines[-1])
        assert port != 0
        base = f"https://127.0.0.1:{port}"
        async with VBOClient(base, username="admin", password="admin", verify=ca, api_version="v1") as vbo:
            organizations = await vbo.organizations()
        async with VBOClient(base, username="admin", password="admin", api_version="v1") as vbo:
            with pytest.raises(TransportError, match="certificate"):
                await vbo.organizations()
    finally:
        _, err = await stop(process, signal.SIGTERM)
    assert [org.id for org in organizations] == Simulator(SimulatorConfig(organizations=2)).organization_ids()
    assert process.returncode == 0  # SIGTERM stops the simulator cleanly...
    assert "Traceback" not in err
    assert not ca.parent.exists()  # ...and removes its TLS key and certificates


async def test_simulate_with_faults_still_serves_every_job(tmp_path: Path) -> None:
    port = closed_port()
    process, _ = await start_simulate(
        tmp_path,
        "--port",
        str(port),
        "--seed",
        "32",
        "--organizations",
        "5",
        "--error-rate",
        "0.2",
        "--rate-limit-rate",
        "0.05",
        "--retry-after",
        "0",
        "--drop-rate",
        "0.05",
        "--truncate-rate",
        "0.05",
        "--latency",
        "0.001",
        "--fault-seed",
        "9",
    )
    expected = Simulator(SimulatorConfig(seed=32, organizations=5))
    try:
        async with VBOClient(
            f"http://127.0.0.1:{port}", username="admin", password="admin", retry=NO_WAIT, api_version="v1"
        ) as vbo:
            organizations = await vbo.organizations()
            jobs = {org.id: await vbo.organization_jobs(org) for org in organizations}
            sent = vbo.requests_sent
    finally:
        _, err = await stop(process)
    assert [org.id for org in organizations] == expected.organization_ids()
    for org_id, org_jobs in jobs.items():
        wires = expected.jobs_wire(org_id)
        assert [(job.id, job.name) for job in org_jobs] == [(w["id"], w["name"]) for w in wires]
    # One token, one organization list and one job list per organization, plus the spoiled attempts.
    assert sent > 2 + len(organizations)
    assert process.returncode == 0
    assert "Traceback" not in err


def test_simulate_on_a_busy_port_is_one_error(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        line = error_line(run(capsys, "simulate", "--host", "127.0.0.1", "--port", str(port)))
    assert f"127.0.0.1:{port}" in line


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--error-rate", "1.5"], "error_rate"),
        (["--error-rate", "0.7", "--drop-rate", "0.7"], "must not exceed 1"),
        (["--latency", "-1"], "latency"),
        (["--revoke-every", "0"], "revoke_every"),
    ],
)
def test_simulate_refuses_bad_fault_options(
    capsys: pytest.CaptureFixture[str], options: list[str], expected: str
) -> None:
    line = error_line(run(capsys, "simulate", "--port", str(closed_port()), *options), code=2)
    assert expected in line


# --- usage ---------------------------------------------------------------------------------------------


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    result = usage_exit(capsys, "--version")
    assert result.code == 0
    assert result.out == f"vbo-async {__version__}\n"


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    result = usage_exit(capsys)
    assert result.code == 2
    assert result.out == ""
    assert result.err.startswith("usage: vbo-async")
    assert "COMMAND" in result.err.splitlines()[-1]


@pytest.mark.parametrize(
    "argv",
    [
        ["frobnicate"],
        ["jobs", "--server", "http://127.0.0.1:1", "--username", "admin"],
        [
            "jobs",
            "--server",
            "http://127.0.0.1:1",
            "--username",
            "admin",
            "--org",
            "o",
            "--insecure",
            "--ca-bundle",
            "x",
        ],
        ["demo", "--organizations", "0"],
        ["poll"],
        ["simulate", "--port", "70000"],
    ],
    ids=[
        "unknown-command",
        "jobs-without-org",
        "insecure-and-ca-bundle",
        "zero-organizations",
        "poll-without-targets",
        "port-out-of-range",
    ],
)
def test_bad_arguments_are_usage_errors(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    result = usage_exit(capsys, *argv)
    assert result.code == 2
    assert result.out == ""
    assert "error:" in result.err.splitlines()[-1]


@pytest.mark.parametrize(
    ("command", "options"),
    [
        (None, ["--version", "demo", "simulate", "jobs", "poll"]),
        ("demo", ["--organizations", "--seed", "--concurrency", "--json"]),
        (
            "simulate",
            [
                "--host",
                "--port",
                "--tls",
                "--seed",
                "--organizations",
                "--latency",
                "--error-rate",
                "--rate-limit-rate",
                "--retry-after",
                "--drop-rate",
                "--truncate-rate",
                "--malformed-rate",
                "--revoke-every",
                "--fault-seed",
            ],
        ),
        (
            "jobs",
            [
                "--server",
                "--username",
                "--password-env",
                "--api-version",
                "--ca-bundle",
                "--insecure",
                "--org",
                "--json",
            ],
        ),
        ("poll", ["--targets", "--concurrency", "--json"]),
    ],
)
def test_help_mentions_every_option(
    capsys: pytest.CaptureFixture[str], command: str | None, options: list[str]
) -> None:
    result = usage_exit(capsys, *([command] if command else []), "--help")
    assert result.code == 0
    assert result.out.startswith(f"usage: vbo-async{f' {command}' if command else ''}")
    for option in options:
        assert option in result.out, option
