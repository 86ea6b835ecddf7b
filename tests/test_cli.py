"""The ``vbo-async`` command line: demo, jobs, organizations, poll and simulate, in-process and as
real processes, against simulators on 127.0.0.1.

In-process runs call `main` in a worker thread (it runs its own event loop) while the test's loop
serves a simulator with uvicorn; output is compared with the simulator's wire data, and each
job's health with what `poll_jobs` judges from the same data (every in-process simulator and
sweep sees the same "now", `DEMO_EPOCH`). Every failure is one ``vbo-async: error: ...`` line
per problem on stderr and a documented exit code: 0 all read, 1 a server or tenant could not be
read, 2 usage error, 130 interrupted.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import datetime as dt
import functools
import inspect
import io
import ipaddress
import json
import logging
import os
import re
import select
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import IO, Any

import attrs
import httpx
import pytest
import trustme

import vbo_async._poll
import vbo_async._sending
import vbo_async.simulator
from vbo_async import (
    ConfigError,
    DecodeError,
    HealthPolicy,
    HealthState,
    Organization,
    PollTarget,
    RetryPolicy,
    TransportError,
    VBOClient,
    __version__,
    poll_jobs,
)
from vbo_async._cli import _app, _connect, _flows, _report, _turns
from vbo_async._cli._connect import SharedContexts, environment_text
from vbo_async._cli._exit import Outcome
from vbo_async._cli._flows import NOT_ASKED, UnknownOrganization, close_names, match_organization
from vbo_async._cli._plugin import plugin_output
from vbo_async._cli._report import Report, Row
from vbo_async.cli import main
from vbo_async.simulator import Simulator, SimulatorConfig, create_app, make_tls_material
from vbo_async.simulator import SimulatorConfig as RealSimulatorConfig

from .conftest import DATED_CERTIFICATES, closed_port, free_port, release, serve, throttling_app
from .raw_http import serve_raw

DEMO_SEED = _app.DEMO_SEED
DEMO_EPOCH = dt.datetime(2017, 4, 4, 10, 0, tzinfo=dt.UTC)
"""The simulated "now" of every simulator these tests build in process (the demo's included): a
simulator's default epoch is the real time, so two built a second apart would differ. In-process
sweeps judge health at this moment too (`judge_at`)."""
ZONE_SUFFIX = re.compile(r" \((?:UTC|[A-Z]{2,5})[^)]*\)$")
SCRIPT = Path(sys.executable).parent / "vbo-async"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
NO_WAIT = RetryPolicy(attempts=12, wait_initial=0, wait_max=0.01, wait_jitter=0, max_retry_after=0)
WRONG_PASSWORD = "Wr0ng-Pa55word-Zx81"
HANG_GUARD = 60.0
"""Seconds before a child process that never answers fails the test instead of hanging it."""
_TERMINAL_VARIABLES = ("FORCE_COLOR", "NO_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "COLUMNS", "LINES")
_OTHER_VARIABLES = ("VBO_PASSWORD", "VBO_EAST_PASSWORD", "VBO_WEST_PASSWORD", "VBO_ASYNC_LOG", "TZ")


def small_config(seed: int, organizations: int = 3) -> SimulatorConfig:
    """Few jobs and sessions per organization: quick to serve over a socket."""
    return SimulatorConfig(
        seed=seed, organizations=organizations, jobs_per_organization=(2, 4), sessions_per_job=(1, 6)
    )


@pytest.fixture(autouse=True)
def plain_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No colour or size overrides for rich, no passwords or log level unless a test sets them."""
    for name in (*_TERMINAL_VARIABLES, *_OTHER_VARIABLES):
        monkeypatch.delenv(name, raising=False)


def serve_command(targets: object, *more: str) -> list[str]:
    """The command line of a ``vbo-async serve`` child on ``targets``, listening on a free port of
    127.0.0.1, with ``more`` options."""
    return [
        sys.executable,
        "-m",
        "vbo_async",
        "serve",
        "--targets",
        str(targets),
        "--listen",
        "127.0.0.1:0",
        *more,
    ]


def child_environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in (*_TERMINAL_VARIABLES, *_OTHER_VARIABLES)}
    env.update(extra)
    return env


@contextlib.contextmanager
def reaped(process: subprocess.Popen[Any]) -> Iterator[subprocess.Popen[Any]]:
    """``process`` for the block: killed if it still runs when the block ends, then waited for
    (what it printed and nobody read is dropped)."""
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=HANG_GUARD)


def read_until(stream: IO[bytes], ending: bytes) -> bytes:
    """What ``stream`` gives up to and including ``ending`` (a prompt, which no newline ends),
    read a byte at a time; the test fails with what was read if it ends first."""
    read = b""
    while not read.endswith(ending):
        byte = stream.read(1)
        assert byte, read
        read += byte
    return read


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


def error_lines(result: Result, code: int) -> list[str]:
    """The error lines of a failed run: nothing on stdout, no traceback, each line prefixed."""
    assert result.code == code, result
    assert result.out == ""
    assert "Traceback" not in result.err
    lines = result.err.splitlines()
    assert lines, result
    assert all(line.startswith("vbo-async: error: ") for line in lines), result.err
    return lines


def error_line(result: Result, code: int = 1) -> str:
    """The one error line of a failed run."""
    lines = error_lines(result, code)
    assert len(lines) == 1, result.err
    return lines[0]


def table_rows(out: str, title: str | None = None) -> list[list[str]]:
    """The cells of each body row of the first rich table (or of the one under ``title``)."""
    lines = ANSI.sub("", out).splitlines()
    if title is not None:
        lines = lines[[line.strip() for line in lines].index(title) :]
    rows: list[list[str]] = []
    for line in lines:
        if line.startswith("└"):
            break
        if line.startswith("│"):
            rows.append([cell.strip() for cell in line.strip("│").split("│")])
    return rows


def header_cells(out: str, index: int = 0) -> list[str]:
    lines = [line for line in ANSI.sub("", out).splitlines() if line.startswith("┃")]
    return [cell.strip() for cell in lines[index].strip("┃").split("┃")]


def summary_line(out: str) -> str:
    return ANSI.sub("", out).rstrip("\n").splitlines()[-1]


# --- what the simulator says the rows must be --------------------------------------------------------


def when(text: str | None) -> dt.datetime | None:
    return None if text is None else dt.datetime.fromisoformat(text)


def expected_rows(
    simulator: Simulator, organization_ids: list[str] | None = None, *, version: str = "v8"
) -> dict[str, dict[str, Any]]:
    """Per job id, the row fields the CLI must print, read from the simulator's wire data as
    ``version`` serves it (the CLI's clients speak the newest version a server serves, v8 for a
    simulator with every version). On v6+ a job's proxy is its repository's: none for a
    repository of a v8 proxy pool, which has no proxy link."""
    if version == "v1":
        return _expected_rows_v1(simulator, organization_ids)
    everything = 10_000
    listed = simulator.organizations_wire(version=version, limit=everything)
    names = {org["id"]: org["name"] for org in (listed["results"] if isinstance(listed, dict) else listed)}
    rows = {}
    for org_id in organization_ids if organization_ids is not None else simulator.organization_ids():
        if version == "v8":  # v8 removed /Organizations/{id}/Jobs
            answer = simulator.jobs_wire(version=version, organization_id=org_id, limit=everything)
        else:
            answer = simulator.jobs_wire(org_id, version=version)
        for job in answer["results"] if isinstance(answer, dict) else answer:
            repository = simulator.repository_wire(job["repositoryId"], version=version)
            proxy_link = repository["_links"].get("proxy")
            proxy_id = proxy_link["href"].rsplit("/", 1)[1] if proxy_link else None
            rows[job["id"]] = {
                "organization": names[org_id],
                "organization_id": org_id,
                "job": job["name"],
                "enabled": job["isEnabled"],
                "last_status": job["lastStatus"],
                "last_run": when(job.get("lastRun")),  # v6 leaves out null properties
                "next_run": when(job.get("nextRun")),
                "repository": repository["name"],
                "proxy": simulator.proxy_wire(proxy_id, version=version)["hostName"] if proxy_id else None,
            }
    return rows


def _expected_rows_v1(simulator: Simulator, organization_ids: list[str] | None) -> dict[str, dict[str, Any]]:
    names = {org["id"]: org["name"] for org in simulator.organizations_wire()}
    rows = {}
    for org_id in organization_ids if organization_ids is not None else simulator.organization_ids():
        for job in simulator.jobs_wire(org_id):
            links = {relation: link["href"].rsplit("/", 1)[1] for relation, link in job["_links"].items()}
            rows[job["id"]] = {
                "organization": names[org_id],
                "organization_id": org_id,
                "job": job["name"],
                "enabled": job["isEnabled"] == "true",
                "last_status": job["lastStatus"],
                "last_run": when(job["lastRun"]),
                "next_run": when(job["nextRun"]),
                "repository": simulator.repository_wire(links["repository"])["name"],
                "proxy": simulator.proxy_wire(links["proxy"])["hostName"],
            }
    return rows


JSON_KEYS = {
    "server",
    "organization",
    "organization_id",
    "job",
    "job_id",
    "enabled",
    "last_status",
    "last_run",
    "next_run",
    "repository",
    "proxy",
    "health",
    "health_reason",
    "error",
}
STATES = ("CRITICAL", "WARNING", "UNKNOWN", "OK")
"""Health states, worst first: the order of the table's rows."""

Health = dict[str, tuple[str, str]]
"""Per job id, (state name, reason)."""


def judge_at(monkeypatch: pytest.MonkeyPatch, now: dt.datetime) -> None:
    """Make every sweep judge health at ``now`` (`poll_jobs` takes the time when it starts)."""
    context = vbo_async._poll.Context

    def at(**fields: Any) -> Any:
        return context(**{**fields, "now": now})

    monkeypatch.setattr(vbo_async._poll, "Context", at)


def expected_health(
    simulator: Simulator,
    organization_ids: list[str] | None = None,
    *,
    version: str = "v8",
    policy: HealthPolicy | None = None,
) -> Health:
    """What `poll_jobs(health=policy)` (`HealthPolicy()` by default) judges of every job of a
    copy of ``simulator`` (same configuration, so same data) over ``version``, with the sweep's
    clock as it is."""

    async def sweep() -> Health:
        app = create_app(simulator=Simulator(simulator.config))
        found: Health = {}
        async with VBOClient(
            "https://vbo.test:4443",
            username="admin",
            password="admin",
            api_version=version,
            transport=httpx.ASGITransport(app=app),
        ) as vbo:
            wanted = organization_ids if organization_ids is not None else simulator.organization_ids()
            targets = [PollTarget(client=vbo, organization_id=org) for org in wanted]
            async with poll_jobs(targets, health=policy or HealthPolicy()) as results:
                async for result in results:
                    assert result.error is None, result.error
                    for job in result.jobs:
                        health = result.health[job.id]
                        found[job.id] = (health.state.name, health.reason)
        return found

    with concurrent.futures.ThreadPoolExecutor(1) as pool:  # the caller may be inside an event loop
        return pool.submit(asyncio.run, sweep()).result()


def check_json_rows(
    out: str,
    expected: dict[str, dict[str, Any]],
    server: str | dict[str, str],
    health: Health | None = None,
) -> list[Any]:
    """``--json`` job rows against `expected_rows` (and `expected_health` when given); ``server``
    per job id when several servers. Every job has a health and a reason, every failure null."""
    rows = json.loads(out)
    assert isinstance(rows, list)
    jobs = [row for row in rows if row["error"] is None]
    assert sorted(row["job_id"] for row in jobs) == sorted(expected)
    for row in rows:
        assert set(row) == JSON_KEYS
        if row["error"] is None:
            assert row["health"] in STATES
            assert isinstance(row["health_reason"], str)
            assert row["health_reason"]
        else:
            assert row["health"] is None
            assert row["health_reason"] is None
    if health is not None:
        assert {row["job_id"]: (row["health"], row["health_reason"]) for row in jobs} == health
    for row in jobs:
        want = expected[row["job_id"]]
        assert row["server"] == (server if isinstance(server, str) else server[row["job_id"]])
        for key in (
            "organization",
            "organization_id",
            "job",
            "enabled",
            "last_status",
            "repository",
            "proxy",
        ):
            assert row[key] == want[key], key
        for key in ("last_run", "next_run"):
            assert when(row[key]) == want[key], key
    order = [
        (row["server"], (row["organization"] or "").casefold(), (row["job"] or "").casefold()) for row in rows
    ]
    assert order == sorted(order)
    return jobs


def check_table(
    out: str,
    expected: dict[str, dict[str, Any]],
    *,
    servers: dict[str, str] | None = None,
    health: Health | None = None,
) -> None:
    """The job table of piped output: every column, every job, worst health first (and the
    health of `expected_health`, state and reason, when given)."""
    headers = header_cells(out)
    wanted_headers = ["Organization", "Job", "Health", "Status"]
    if servers:
        wanted_headers.insert(0, "Server")
    if any(not want["enabled"] for want in expected.values()):
        wanted_headers.append("Enabled")
    wanted_headers += ["Last run", "Next run", "Repository", "Proxy"]
    # A time column names its zone when its absolute times share one (relative ones need none).
    assert [ZONE_SUFFIX.sub("", header) for header in headers] == wanted_headers
    headers = [ZONE_SUFFIX.sub("", header) for header in headers]
    rows = [dict(zip(headers, row, strict=True)) for row in table_rows(out)]
    assert len(rows) == len(expected)
    printed = sorted(
        (
            row.get("Server", ""),
            row["Organization"],
            row["Job"],
            row["Status"],
            row["Repository"],
            row["Proxy"],
        )
        for row in rows
    )
    wanted = sorted(
        (
            servers[job_id] if servers else "",
            want["organization"],
            want["job"],
            want["last_status"] or "never run",
            want["repository"],
            want["proxy"] or "-",
        )
        for job_id, want in expected.items()
    )
    assert printed == wanted
    states = [row["Health"].split(" ", 1)[0] for row in rows]
    assert all(state in STATES for state in states), states
    ranks = [STATES.index(state) for state in states]
    assert ranks == sorted(ranks), "CRITICAL, then WARNING, then UNKNOWN, then OK"
    if health is not None:
        cells = sorted(
            (row.get("Server", ""), row["Organization"], row["Job"], row["Health"]) for row in rows
        )
        assert cells == sorted(
            (
                servers[job_id] if servers else "",
                expected[job_id]["organization"],
                expected[job_id]["job"],
                f"{state:<8} {reason}",
            )
            for job_id, (state, reason) in health.items()
        )
    if "Enabled" in headers:
        assert sorted(row["Enabled"] for row in rows) == sorted(
            "yes" if want["enabled"] else "no" for want in expected.values()
        )


def summary_of(health: Health, tenants: int) -> str:
    states = [state for state, _ in health.values()]
    unknown = f", {states.count('UNKNOWN')} unknown" if "UNKNOWN" in states else ""
    return (
        f"{len(health)} jobs on {tenants} tenant{'s' if tenants != 1 else ''}: "
        f"{states.count('CRITICAL')} critical, {states.count('WARNING')} warning{unknown}"
    )


# --- demo ---------------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def pinned_epoch(monkeypatch: pytest.MonkeyPatch) -> None:
    """Build every in-process simulator (the demo's, and the ones tests compare with) at
    `DEMO_EPOCH` unless a test names another epoch, and judge health at that moment."""

    def pinned(**options: Any) -> RealSimulatorConfig:
        return RealSimulatorConfig(**{"epoch": DEMO_EPOCH, **options})

    monkeypatch.setattr(vbo_async.simulator, "SimulatorConfig", pinned)
    monkeypatch.setitem(globals(), "SimulatorConfig", pinned)
    judge_at(monkeypatch, DEMO_EPOCH)


def test_demo_prints_a_table_of_every_simulated_job(capsys: pytest.CaptureFixture[str]) -> None:
    """The README's ``vbo-async demo``: 12 tenants, every job with its health, worst first, a
    summary line counting the health states, exit 0 although jobs are CRITICAL (that is data)."""
    result = run(capsys, "demo")
    assert result.code == 0
    assert result.err == ""
    simulator = Simulator(SimulatorConfig(seed=DEMO_SEED, organizations=12))
    health = expected_health(simulator)
    check_table(result.out, expected_rows(simulator), health=health)
    assert summary_line(result.out) == summary_of(health, 12)
    assert summary_line(result.out) == "43 jobs on 12 tenants: 4 critical, 6 warning"
    assert "Latest session" not in result.out


def test_the_demo_judges_by_max_age_alone(capsys: pytest.CaptureFixture[str]) -> None:
    """``HealthPolicy.schedule_aware`` is off by default: the demo prints what issue 13's rule
    gives, although its data holds a job that a schedule-aware policy would spare."""
    result = run(capsys, "demo")
    simulator = Simulator(SimulatorConfig(seed=DEMO_SEED, organizations=12))
    default = expected_health(simulator)
    aware = expected_health(simulator, policy=HealthPolicy(schedule_aware=True))
    spared = {job_id for job_id in default if default[job_id] != aware[job_id]}
    assert len(spared) == 1
    assert [default[job_id][1] for job_id in spared] == ["no success for 40 h (max 26 h)"]
    check_table(result.out, expected_rows(simulator), health=default)
    assert summary_line(result.out) == "43 jobs on 12 tenants: 4 critical, 6 warning"
    assert summary_of(aware, 12) == "43 jobs on 12 tenants: 3 critical, 6 warning"


@pytest.mark.parametrize(
    "variable",
    [
        "FORCE_COLOR",
        pytest.param(
            "TTY_COMPATIBLE",
            marks=pytest.mark.skipif(release("rich") < (14,), reason="rich reads TTY_COMPATIBLE from 14.0"),
        ),
    ],
)
def test_piped_output_forced_into_colour_still_shows_every_column(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    """``FORCE_COLOR=1 vbo-async demo > jobs.txt`` (CI systems set it for coloured logs): the
    output is coloured, and still piped, so every column is there at full width (``--wide``'s
    help: "always so when piped"), not cut to rich's default 80 columns."""
    monkeypatch.setenv(variable, "1")
    result = run(capsys, "demo", "--organizations", "3")
    assert result.code == 0
    assert ANSI.search(result.out)  # coloured, as asked
    assert "Hidden at this width" not in result.out
    assert header_cells(result.out)[-2:] == ["Repository", "Proxy"]
    simulator = Simulator(SimulatorConfig(seed=DEMO_SEED, organizations=3))
    check_table(ANSI.sub("", result.out), expected_rows(simulator))


def test_piped_organizations_forced_into_colour_keep_long_names_on_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    long_name = "northwind-traders-european-subsidiaries.onmicrosoft.com"
    found = [Organization(id="6d5bd9a5-6f3c-4e0a-9d3f-0f2a4f4b3a11", name=long_name)]

    async def listing(connection: Any, *, show: Any, **_: Any) -> Any:
        return show(found, {})

    monkeypatch.setattr(_flows, "list_organizations", listing)
    monkeypatch.setenv("FORCE_COLOR", "1")
    result = run(capsys, "organizations", "--server", "https://vbo01.example.com", "--username", "admin")
    assert result.code == 0, result.err
    assert table_rows(result.out) == [[long_name, found[0].id]]


@pytest.mark.parametrize("wide", [False, True], ids=["narrow", "wide"])
def test_organizations_takes_wide_as_jobs_and_poll_do(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, wide: bool
) -> None:
    """``organizations --wide`` (refused: 'No such option') shows every name whole on one line
    on a terminal too narrow for it, as ``jobs --wide`` shows every column; without it the name
    folds there."""
    long_name = "northwind-traders-european-subsidiaries.onmicrosoft.com"
    found = [Organization(id="6d5bd9a5-6f3c-4e0a-9d3f-0f2a4f4b3a11", name=long_name)]

    async def listing(connection: Any, *, show: Any, **_: Any) -> Any:
        return show(found, {})

    monkeypatch.setattr(_flows, "list_organizations", listing)
    monkeypatch.setattr(_app, "_piped", lambda: False)  # stdout a terminal of 60 columns
    monkeypatch.setenv("FORCE_COLOR", "1")  # rich's TTY_COMPATIBLE would do from rich 14 only
    monkeypatch.setenv("COLUMNS", "60")
    argv = ["organizations", "--server", "https://vbo01.example.com", "--username", "admin"]
    result = run(capsys, *argv, *(["--wide"] if wide else []))
    assert result.code == 0, result.err
    rows = table_rows(ANSI.sub("", result.out))
    if wide:
        assert rows == [[long_name, found[0].id]]
    else:
        assert len(rows) > 1
        assert "".join(name for name, _ in rows) == long_name


@pytest.mark.parametrize(
    "command",
    [
        ["demo"],
        ["organizations", "--server", "https://vbo01.example.com", "--username", "admin"],
        ["jobs", "--server", "https://vbo01.example.com", "--username", "admin", "--org", "x"],
        ["poll", "--targets", "targets.toml"],
    ],
    ids=lambda argv: argv[0],
)
def test_json_and_wide_together_are_a_usage_error(
    capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    """``--json --wide`` was taken, ``--wide`` ignored: the two exclude each other, said before
    anything is read or asked for."""
    result = run(capsys, *command, "--json", "--wide")
    assert result.code == 2
    assert result.out == ""
    said = "--json and --wide exclude each other (--wide lays out a table)"
    assert f"{said} (see 'vbo-async {command[0]} --help')" in result.err


@pytest.mark.parametrize("columns", ["0", "5"])
def test_a_terminal_of_no_width_still_shows_every_name(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, columns: str
) -> None:
    """``COLUMNS=0`` on a terminal (an unsized pseudo-terminal's report copied into the
    environment) made rich print nothing at all, and a few columns left borders alone: exit 0
    and no job or organization named. The tables are fitted to at least `MIN_WIDTH` columns
    (the terminal wraps the longer lines)."""
    found = [Organization(id="6d5bd9a5-6f3c-4e0a-9d3f-0f2a4f4b3a11", name="contoso.onmicrosoft.com")]

    async def listing(connection: Any, *, show: Any, **_: Any) -> Any:
        return show(found, {})

    monkeypatch.setattr(_flows, "list_organizations", listing)
    monkeypatch.setattr(_app, "_piped", lambda: False)  # stdout a terminal
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    monkeypatch.setenv("COLUMNS", columns)
    result = run(capsys, "organizations", "--server", "https://vbo01.example.com", "--username", "admin")
    assert result.code == 0, result.err
    rows = table_rows(ANSI.sub("", result.out))
    assert ("".join(name for name, _ in rows), "".join(id_ for _, id_ in rows)) == (
        found[0].name,
        found[0].id,
    )
    result = run(capsys, "demo", "--organizations", "2")
    assert result.code == 0, result.err
    simulator = Simulator(SimulatorConfig(seed=DEMO_SEED, organizations=2))
    shown = "".join(cells[1] for cells in table_rows(ANSI.sub("", result.out)))
    jobs = [row["job"].replace(" ", "") for row in expected_rows(simulator).values()]
    assert jobs
    assert all(job in shown.replace(" ", "") for job in jobs)


def test_the_demo_shows_a_realistic_mix_of_health(capsys: pytest.CaptureFixture[str]) -> None:
    """Most jobs OK, some CRITICAL (failed, or no success for too long), some WARNING (warnings,
    never run), some disabled: every reason an operator meets, none dominating."""
    result = run(capsys, "demo", "--json")
    assert result.code == 0
    rows = json.loads(result.out)
    states = [row["health"] for row in rows]
    assert states.count("OK") > len(rows) / 2
    assert 0 < states.count("CRITICAL") < len(rows) / 2
    assert states.count("WARNING") > 0
    reasons = {row["health_reason"].split(" ")[0] for row in rows}
    assert {"failed", "no", "last", "never", "disabled"} <= reasons


def test_demo_json_rows_are_the_simulator_jobs(capsys: pytest.CaptureFixture[str]) -> None:
    result = run(capsys, "demo", "--organizations", "3", "--json")
    assert result.code == 0
    assert result.err == ""
    simulator = Simulator(SimulatorConfig(seed=DEMO_SEED, organizations=3))
    rows = check_json_rows(result.out, expected_rows(simulator), "simulator", expected_health(simulator))
    assert sorted(row["job_id"] for row in rows) == sorted(simulator.job_ids())


def test_demo_seed_option_changes_the_data(capsys: pytest.CaptureFixture[str]) -> None:
    result = run(capsys, "demo", "--organizations", "2", "--seed", "5", "--concurrency", "1", "--json")
    assert result.code == 0
    check_json_rows(
        result.out, expected_rows(Simulator(SimulatorConfig(seed=5, organizations=2))), "simulator"
    )


def test_demo_makes_only_the_requests_it_needs(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """One token, one organization listing, one job list for the whole server (split by tenant),
    one listing of the sessions ended within the health policy's window, one GET per distinct
    repository and proxy, and the logout: no organization links (the listing has the names), no
    session history of any job."""
    import vbo_async.simulator

    apps: list[Any] = []

    def keep(*args: Any, **kwargs: Any) -> Any:
        apps.append(create_app(*args, **kwargs))
        return apps[-1]

    monkeypatch.setattr(vbo_async.simulator, "create_app", keep)
    result = run(capsys, "demo", "--json")
    assert result.code == 0, result.err
    (app,) = apps
    simulator: Simulator = app.state.simulator
    stats = simulator.stats
    rows = json.loads(result.out)
    repositories = {row["repository"] for row in rows}
    proxies = {row["proxy"] for row in rows}
    assert len({row["organization_id"] for row in rows}) == len(simulator.organization_ids()) == 12
    kinds: dict[str, int] = {}
    for (method, path), count in stats.by_endpoint.items():
        kind = method + " " + re.sub(r"/[0-9a-f-]{36}", "/{id}", path)
        kinds[kind] = kinds.get(kind, 0) + count
    proxies.discard(None)  # jobs on a repository of a proxy pool: it has no proxy link
    assert kinds == {
        "POST /v8/token": 1,  # the auto client's first grant finds v8 and is its token
        "GET /v8/organizations": 1,
        "GET /v8/jobs": 1,  # every job of the server at once (a batched sweep), split by tenant
        "GET /v8/jobsessions": 1,  # the sessions ended since now - max_age - 2 h, for the health
        "GET /v8/backuprepositories/{id}": len(repositories),
        "GET /v8/proxies/{id}": len(proxies),
        "POST /v8/token/logout": 1,
    }
    assert stats.requests == 5 + len(repositories) + len(proxies)


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
    assert completed.stderr == ""  # stderr is a pipe: no progress
    expected = expected_rows(Simulator(SimulatorConfig(seed=DEMO_SEED, organizations=2)))
    check_table(completed.stdout, expected)
    assert "admin" not in completed.stdout  # the demo's password is never printed


def small_demo(tmp_path: Path, output: list[str], *, stdout: Any) -> subprocess.CompletedProcess[str]:
    """``vbo-async demo --organizations 1 *output`` as a real process writing to ``stdout``."""
    return run_module(tmp_path, ["demo", "--organizations", "1", *output], stdout=stdout)


def run_module(tmp_path: Path, args: list[str], *, stdout: Any) -> subprocess.CompletedProcess[str]:
    """``python -m vbo_async *args`` as a real process in ``tmp_path`` writing to ``stdout``
    (its stderr captured), within the hang guard."""
    return subprocess.run(
        [sys.executable, "-m", "vbo_async", *args],
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=child_environment(),
        timeout=HANG_GUARD,
        check=False,
    )


@contextlib.contextmanager
def reader_gone() -> Iterator[int]:
    """The write end of a pipe whose reader has gone away (``| head -0``): every write to it
    fails with EPIPE."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        yield write_end
    finally:
        os.close(write_end)


@pytest.mark.parametrize("output", [["--json"], []], ids=["json", "table"])
def test_a_reader_that_goes_away_is_not_a_traceback(tmp_path: Path, output: list[str]) -> None:
    """``vbo-async demo --json | head -1``: the pipe closes early; no traceback, exit 1."""
    with reader_gone() as write_end:
        completed = small_demo(tmp_path, output, stdout=write_end)
    assert completed.returncode == 1
    assert completed.stderr == ""


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize("output", [["--json"], []], ids=["json", "table"])
def test_output_that_cannot_be_written_is_said_so_not_an_internal_error(
    tmp_path: Path, output: list[str]
) -> None:
    """``vbo-async demo > jobs.json`` on a full disk: one line saying the output could not be
    written and why, exit 1 (documented), not an "internal error" pointing at a bug."""
    with open("/dev/full", "w") as full:  # every write fails with ENOSPC
        completed = small_demo(tmp_path, output, stdout=full)
    assert completed.returncode == 1
    assert completed.stderr.splitlines() == [
        "vbo-async: error: cannot write the output: No space left on device"
    ]


@pytest.mark.parametrize("output", [["--json"], []], ids=["json", "table"])
def test_a_closed_stdout_is_said_so_not_an_internal_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, output: list[str]
) -> None:
    """``vbo-async demo >&-``: Python's ``sys.stdout`` is None."""
    monkeypatch.setattr(sys, "stdout", None)
    code = main(["demo", "--organizations", "1", *output])
    assert code == 1
    assert capsys.readouterr().err == "vbo-async: error: cannot write the output: stdout is closed\n"


HELP_AND_VERSION = [["--help"], ["--version"], ["poll", "--help"], ["serve", "-h"], ["check", "--help"]]
"""Arguments whose whole output is click's help or version text (check's own, on stdout too)."""


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize("args", HELP_AND_VERSION, ids=" ".join)
def test_help_that_cannot_be_written_is_said_so_not_an_internal_error(
    tmp_path: Path, args: list[str]
) -> None:
    """``vbo-async poll --help > /dev/full``: the same line as any output stdout cannot take
    (check's plugin output is lost with it, so it says it on stderr too), not an internal error."""
    with open("/dev/full", "w") as full:  # every write fails with ENOSPC
        completed = run_module(tmp_path, args, stdout=full)
    assert (completed.returncode, completed.stderr.splitlines()) == (
        3 if args[0] == "check" else 1,
        ["vbo-async: error: cannot write the output: No space left on device"],
    )


@pytest.mark.parametrize("args", HELP_AND_VERSION, ids=" ".join)
def test_help_on_a_closed_stdout_is_said_so(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    """``vbo-async poll --help >&-``: the help went nowhere with exit 0, where every other
    output says that stdout is closed."""
    monkeypatch.setattr(sys, "stdout", None)
    code = main(args)
    assert (code, capsys.readouterr().err) == (
        3 if args[0] == "check" else 1,
        "vbo-async: error: cannot write the output: stdout is closed\n",
    )


@pytest.mark.parametrize("args", HELP_AND_VERSION, ids=" ".join)
def test_help_to_a_reader_gone_away_is_silent(tmp_path: Path, args: list[str]) -> None:
    """``vbo-async poll --help | head -0``: exit 1 and nothing said, as for any other output."""
    with reader_gone() as write_end:
        completed = run_module(tmp_path, args, stdout=write_end)
    assert (completed.returncode, completed.stderr) == (3 if args[0] == "check" else 1, "")


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_banner_that_cannot_be_written_is_said_so(tmp_path: Path) -> None:
    """``vbo-async simulate > /dev/full``: its banner (the URL, user and password to use) lost,
    it says so and ends with 1 instead of an internal error."""
    with open("/dev/full", "w") as full:
        completed = run_module(tmp_path, ["simulate", "--port", "0"], stdout=full)
    assert (completed.returncode, completed.stderr.splitlines()) == (
        1,
        ["vbo-async: error: cannot write the output: No space left on device"],
    )


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize("stderr", ["full", "reader gone"])
@pytest.mark.parametrize(
    "args",
    [["poll", "--targets", "missing.toml"], ["poll", "--no-such-option"]],
    ids=["bad file", "bad option"],
)
def test_an_error_line_stderr_cannot_take_keeps_the_exit_code(
    tmp_path: Path, stderr: str, args: list[str]
) -> None:
    """``vbo-async poll ... 2>>/full/disk/log`` (or stderr a pipe whose reader went away): the
    usage error still exits 2, as documented, not 1 with an internal error that cannot be said
    either (cron and scripts tell the failure classes apart by the exit code alone)."""
    with reader_gone() as write_end, open("/dev/full", "w") as full:  # every write fails: ENOSPC
        completed = subprocess.run(
            [sys.executable, "-m", "vbo_async", *args],
            stdout=subprocess.PIPE,
            stderr=full if stderr == "full" else write_end,
            text=True,
            cwd=tmp_path,
            env=child_environment(),
            timeout=HANG_GUARD,
            check=False,
        )
    assert (completed.returncode, completed.stdout) == (2, "")


def test_an_interruption_stderr_cannot_take_is_still_exit_130(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    class Full(io.StringIO):
        def write(self, text: str, /) -> int:
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(_flows, "demo", interrupted)
    monkeypatch.setattr(sys, "stderr", Full())
    assert main(["demo"]) == 130
    assert capsys.readouterr().out == ""


# --- progress on stderr ------------------------------------------------------------------------------


def fake_terminal_stderr(monkeypatch: pytest.MonkeyPatch) -> None:
    """The captured stderr says it is a terminal (stdout stays a pipe). Called in the test body:
    capsys puts its streams in place only once the test starts."""
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)


def test_progress_goes_to_a_terminal_stderr_also_with_json(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_terminal_stderr(monkeypatch)
    result = run(capsys, "demo", "--organizations", "3", "--json")
    assert result.code == 0
    simulator = Simulator(SimulatorConfig(seed=DEMO_SEED, organizations=3))
    check_json_rows(result.out, expected_rows(simulator), "simulator")  # stdout is JSON only
    err = ANSI.sub("", result.err)
    assert "Listing organizations" in err
    assert "Polling tenants" in err
    assert re.search(r"3/3\s+0 failed", err), err


def test_no_progress_when_stderr_is_not_a_terminal(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)  # even on a terminal stdout
    result = run(capsys, "demo", "--organizations", "2")
    assert result.code == 0
    assert result.err == ""


# --- jobs and organizations against a simulator on a loopback socket --------------------------------


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
def org_name(simulator: Simulator, org_id: str) -> str:
    return next(org["name"] for org in simulator.organizations_wire() if org["id"] == org_id)


@pytest.fixture
def no_backoff() -> Iterator[None]:
    """Retries still happen, without waiting between them."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(vbo_async._sending, "backoff", lambda *args, **kwargs: 0.0)
        yield


def jobs_args(url: str, org: str, *extra: str) -> list[str]:
    return ["jobs", "--server", url, "--username", "admin", "--org", org, *extra]


def endpoints(simulator: Simulator) -> set[str]:
    return {path for _, path in simulator.stats.by_endpoint}


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
    check_json_rows(
        result.out, expected_rows(simulator, [org_id]), http_url, expected_health(simulator, [org_id])
    )
    assert simulator.stats.token_requests == {"password": 1}
    # The id is looked up directly (its name), not through the listing or the jobs' links.
    assert f"/v8/organizations/{org_id}" in endpoints(simulator)
    assert "/v8/organizations" not in endpoints(simulator)
    # A tenant alone: each job's newest sessions (one or two requests), never its whole history.
    jobs = len(expected_rows(simulator, [org_id]))
    sessions = sum(n for (_, path), n in simulator.stats.by_endpoint.items() if "jobsessions" in path)
    assert jobs <= sessions <= 2 * jobs


async def test_jobs_whose_sessions_could_not_be_read_exit_as_not_everything_read(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, simulator: Simulator, org_id: str
) -> None:
    """A server answering a job's sessions with what is not JSON: the job is UNKNOWN ("sessions
    could not be read"), and ``jobs`` exited 0, which the README's table says means everything
    was read (a cron script could not tell health had not been judged)."""
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    app = create_app(simulator=simulator)

    async def no_sessions(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or "jobsessions" not in scope["path"].lower():
            return await app(scope, receive, send)
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/html")]}
        )
        await send({"type": "http.response.body", "body": b"<html>maintenance</html>"})

    async with serve(no_sessions) as port:
        result = await run_in_thread(capsys, *jobs_args(f"http://127.0.0.1:{port}", org_id, "--json"))
    rows = json.loads(result.out)
    assert rows
    assert all(row["health"] == "UNKNOWN" for row in rows if row["enabled"])
    assert any((row["health_reason"] or "").startswith("sessions could not be read: ") for row in rows)
    assert result.code == 1


@pytest.mark.parametrize(
    "options",
    [
        ["--max-age", "90m"],
        ["--max-age", "90m", "--schedule-aware"],
        ["--max-age", "90m", "--warning-is-success"],
    ],
    ids=str,
)
async def test_jobs_judges_health_under_the_max_age_and_schedule_options(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    simulator: Simulator,
    http_url: str,
    org_id: str,
    options: list[str],
) -> None:
    """``jobs`` takes ``check``'s health options: its rows are judged as `poll_jobs` judges them
    under the same `HealthPolicy` (and differ from the default's)."""
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    policy = HealthPolicy(
        max_age=dt.timedelta(minutes=90),
        schedule_aware="--schedule-aware" in options,
        warning_is_success="--warning-is-success" in options,
    )
    result = await run_in_thread(capsys, *jobs_args(http_url, org_id, "--json", *options))
    assert result.code == 0, result.err
    judged = expected_health(simulator, [org_id], policy=policy)
    assert judged != expected_health(simulator, [org_id])  # the options change something here
    if "--warning-is-success" in options:  # and warnings do, against the same max_age alone
        alone = HealthPolicy(max_age=dt.timedelta(minutes=90))
        assert judged != expected_health(simulator, [org_id], policy=alone)
    check_json_rows(result.out, expected_rows(simulator, [org_id]), http_url, judged)


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
    health = expected_health(simulator, [org_id])
    check_table(result.out, expected, health=health)
    assert summary_line(result.out) == summary_of(health, 1)


@pytest.mark.parametrize("spelling", [str.upper, str.lower, lambda name: f"  {name.title()} "])
async def test_jobs_org_by_name_any_case(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    simulator: Simulator,
    http_url: str,
    org_id: str,
    org_name: str,
    spelling: Any,
) -> None:
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    result = await run_in_thread(capsys, *jobs_args(http_url, spelling(org_name), "--json"))
    assert result.code == 0, result.err
    check_json_rows(result.out, expected_rows(simulator, [org_id]), http_url)


async def test_jobs_unknown_organization_lists_the_candidates(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, simulator: Simulator, http_url: str
) -> None:
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    names = sorted((org["name"] for org in simulator.organizations_wire()), key=str.casefold)
    unknown_id = "00000000-0000-0000-0000-00000000beef"
    line, _ = json_failure(await run_in_thread(capsys, *jobs_args(http_url, unknown_id, "--json")))
    assert f"no organization {unknown_id!r} on {http_url}" in line
    assert line.endswith("it has " + ", ".join(repr(name) for name in names))
    typo = names[0][:-1] + "x"
    line = error_line(await run_in_thread(capsys, *jobs_args(http_url, typo)))
    assert f"did you mean {names[0]!r}" in line


@pytest.mark.parametrize("blank", ["", "  "], ids=["empty", "blank"])
@pytest.mark.parametrize(
    ("command", "option"), [("jobs", "--username"), ("organizations", "--username"), ("jobs", "--org")]
)
def test_an_empty_username_or_org_is_a_usage_error_naming_it_before_the_password_prompt(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, command: str, option: str, blank: str
) -> None:
    """As a targets file's ``username = ""`` and an empty organizations entry are refused: an
    empty --username was refused after the password prompt naming the server's URL, a blank one
    sent to the server, and an empty --org asked the server for an organization named ''."""
    monkeypatch.setattr(sys, "stdin", _Terminal())
    monkeypatch.setattr(_connect, "_typed_line", lambda *_: pytest.fail("prompted for a password"))
    argv, _ = json_command(command, f"http://127.0.0.1:{closed_port()}", "contoso")
    argv[argv.index(option) + 1] = blank
    assert error_line(run(capsys, *argv), code=2) == (
        f"vbo-async: error: Invalid value for '{option}': must not be empty or blank "
        f"(see 'vbo-async {command} --help')"
    )


@pytest.mark.parametrize("json_option", [[], ["--json"]], ids=["table", "json"])
def test_jobs_with_org_given_twice_is_a_usage_error_not_the_last_one_alone(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, json_option: list[str]
) -> None:
    """``check --org a --org b`` checks both; ``jobs --org a --org b`` listed b's jobs alone,
    silently. It is a usage error naming both, before any password prompt or request."""
    monkeypatch.setattr(sys, "stdin", _Terminal())
    monkeypatch.setattr(_connect, "_typed_line", lambda *_: pytest.fail("prompted for a password"))
    argv = [*jobs_args(f"http://127.0.0.1:{closed_port()}", "contoso"), "--org", "Fabrikam", *json_option]
    assert error_line(run(capsys, *argv), code=2) == (
        "vbo-async: error: --org names one organization, got 2 ('contoso', 'Fabrikam'): run 'vbo-async "
        "jobs' once for each, or list them in a targets file for 'vbo-async poll' "
        "(see 'vbo-async jobs --help')"
    )


# --- --json in every failure mode: valid JSON on stdout, the error in it, exit 1 -------------------

ORGANIZATION_KEYS = {"id", "name", "error"}


def json_failure(result: Result, keys: set[str] = JSON_KEYS) -> tuple[str, list[dict[str, Any]]]:
    """A ``--json`` run that could not read what it was asked for: exit 1, its one error line on
    stderr, and on stdout a JSON array (``jq`` reads it) of rows with the same keys as ever, one
    of them carrying that error."""
    assert result.code == 1, result
    assert "Traceback" not in result.err
    (line,) = result.err.splitlines()
    assert line.startswith("vbo-async: error: ")
    rows = json.loads(result.out)
    assert isinstance(rows, list)
    assert rows
    assert all(set(row) == keys for row in rows), rows
    assert line.removeprefix("vbo-async: error: ") in [row["error"] for row in rows]
    return line, rows


def json_command(command: str, url: str, organization: str) -> tuple[list[str], set[str]]:
    """The arguments of ``jobs --org organization --json`` or ``organizations --json`` against
    ``url``, and the keys of each object they print."""
    if command == "organizations":
        return ["organizations", "--server", url, "--username", "admin", "--json"], ORGANIZATION_KEYS
    return jobs_args(url, organization, "--json"), JSON_KEYS


def test_jobs_json_of_a_server_that_is_down_is_json_with_the_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, no_backoff: None
) -> None:
    """``vbo-async jobs ... --json | jq`` got nothing at all on stdout when the server was down."""
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    url = f"http://127.0.0.1:{closed_port()}"
    line, rows = json_failure(run(capsys, *jobs_args(url, "contoso", "--json")))
    assert "cannot connect" in line
    (row,) = rows
    assert row["server"] == url
    assert row["organization"] == "contoso"
    assert row["job"] is None
    assert row["health"] is None


def test_organizations_json_of_a_server_that_is_down_is_json_with_the_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, no_backoff: None
) -> None:
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    url = f"http://127.0.0.1:{closed_port()}"
    argv = ["organizations", "--server", url, "--username", "admin", "--json"]
    line, rows = json_failure(run(capsys, *argv), ORGANIZATION_KEYS)
    assert "cannot connect" in line
    assert rows == [{"id": None, "name": None, "error": line.removeprefix("vbo-async: error: ")}]


@pytest.mark.parametrize("command", ["jobs", "organizations"])
async def test_json_of_a_refused_password_is_json_without_the_password(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    simulator: Simulator,
    http_url: str,
    org_id: str,
    command: str,
) -> None:
    monkeypatch.setenv("VBO_PASSWORD", WRONG_PASSWORD)
    argv, keys = json_command(command, http_url, org_id)
    result = await run_in_thread(capsys, *argv)
    line, _ = json_failure(result, keys)
    assert "password" in line.lower()
    assert WRONG_PASSWORD not in result.out + result.err


@pytest.mark.parametrize("command", ["jobs", "organizations"])
async def test_json_of_a_throttling_server_is_json_with_the_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, no_backoff: None, command: str
) -> None:
    monkeypatch.setenv("VBO_PASSWORD", "admin")

    async def no_wait(self: Any, seconds: float, **_: Any) -> None:
        pass

    monkeypatch.setattr(vbo_async._sending.Sender, "_pause", no_wait)
    asked: list[str] = []
    async with serve(throttling_app(asked)) as port:
        url = f"http://127.0.0.1:{port}/v8"
        argv, keys = json_command(command, url, "contoso")
        line, _ = json_failure(await run_in_thread(capsys, *argv), keys)
    assert "429" in line or "rate" in line.lower()


async def test_jobs_json_of_an_unknown_organization_is_json_with_the_candidates(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, simulator: Simulator, http_url: str
) -> None:
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    line, (row,) = json_failure(await run_in_thread(capsys, *jobs_args(http_url, "no-such-tenant", "--json")))
    assert "no organization 'no-such-tenant'" in line
    assert row["organization"] == "no-such-tenant"


async def test_json_of_an_untrusted_certificate_is_json_with_the_hint(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    simulator: Simulator,
    https_url: str,
    org_id: str,
) -> None:
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    line, _ = json_failure(await run_in_thread(capsys, *jobs_args(https_url, org_id, "--json")))
    assert "--ca-bundle PATH" in line
    organizations = ["organizations", "--server", https_url, "--username", "admin", "--json"]
    line, _ = json_failure(await run_in_thread(capsys, *organizations), ORGANIZATION_KEYS)
    assert "--ca-bundle PATH" in line


@pytest.mark.parametrize("command", ["jobs", "organizations"])
def test_json_of_a_failure_on_a_closed_stdout_still_says_the_failure(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, no_backoff: None, command: str
) -> None:
    """``vbo-async jobs --json >&-``: the JSON cannot be written, but the error line on stderr
    is still the server's failure, not only "cannot write the output"."""
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    monkeypatch.setattr(sys, "stdout", None)
    argv, _ = json_command(command, f"http://127.0.0.1:{closed_port()}", "org")
    assert main(argv) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("vbo-async: error: cannot connect: ")


@pytest.mark.parametrize("command", ["jobs", "organizations"])
def test_json_of_a_failure_to_a_reader_gone_away_still_says_the_failure(tmp_path: Path, command: str) -> None:
    """``vbo-async jobs --json | head -0``: the pipe is closed, the failure still said on stderr."""
    argv, _ = json_command(command, f"http://127.0.0.1:{closed_port()}", "org")
    with reader_gone() as write_end:
        completed = subprocess.run(
            [sys.executable, "-m", "vbo_async", *argv],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
            env=child_environment(VBO_PASSWORD="admin"),
            timeout=HANG_GUARD,
            check=False,
        )
    assert completed.returncode == 1
    (line,) = completed.stderr.splitlines()
    assert line.startswith("vbo-async: error: cannot connect: ")


@pytest.mark.parametrize("command", ["jobs", "organizations"])
def test_json_usage_errors_print_no_json(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    """A usage error (no password here) is no failure to read: nothing was asked of a server,
    stdout stays empty and the exit code is 2, as for ``poll`` with a bad targets file."""
    monkeypatch.setattr(sys, "stdin", io.StringIO())
    argv, _ = json_command(command, f"http://127.0.0.1:{closed_port()}", "org")
    assert "VBO_PASSWORD" in error_line(run(capsys, *argv), code=2)


async def test_organizations_lists_ids_and_names(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, simulator: Simulator, http_url: str
) -> None:
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    wire = sorted(simulator.organizations_wire(), key=lambda org: org["name"].casefold())
    result = await run_in_thread(
        capsys, "organizations", "--server", http_url, "--username", "admin", "--json"
    )
    assert result.code == 0, result.err
    assert result.err == ""
    assert json.loads(result.out) == [{"id": org["id"], "name": org["name"], "error": None} for org in wire]
    table = await run_in_thread(capsys, "organizations", "--server", http_url, "--username", "admin")
    assert table.code == 0, table.err
    assert header_cells(table.out) == ["Name", "Id"]
    assert table_rows(table.out) == [[org["name"], org["id"]] for org in wire]
    assert summary_line(table.out) == f"{len(wire)} organizations"


def unanswered_logouts(app: Any, arrived: Callable[[], None]) -> Any:
    """``app`` never answering a logout (``POST /vN/token/logout``): ``arrived`` is called as
    each one arrives, then it waits until the server stops."""

    async def held(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].lower().endswith("/token/logout"):
            arrived()
            await asyncio.Event().wait()
        await app(scope, receive, send)

    return held


@pytest.mark.parametrize("command", ["organizations", "jobs"])
async def test_the_output_is_printed_before_the_logout_and_ctrl_c_during_it_keeps_it(
    tmp_path: Path, simulator: Simulator, org_id: str, command: str
) -> None:
    """``organizations`` and ``jobs`` printed what they read once the logout (v7+) was over, which
    a server may leave unanswered for seconds: a Ctrl-C meanwhile lost all of it (exit 130, stdout
    empty). The output is on stdout when the logout is sent; a Ctrl-C then costs the logout."""
    children: list[subprocess.Popen[bytes]] = []
    at_logout: list[bytes] = []

    def arrived() -> None:  # what stdout holds as the logout arrives; then Ctrl-C
        (child,) = children
        assert child.stdout is not None
        os.set_blocking(child.stdout.fileno(), False)
        try:
            at_logout.append(os.read(child.stdout.fileno(), 1 << 20))
        except BlockingIOError:
            at_logout.append(b"")
        finally:
            os.set_blocking(child.stdout.fileno(), True)
        child.send_signal(signal.SIGINT)

    async with serve(unanswered_logouts(create_app(simulator=simulator), arrived)) as port:
        url = f"http://127.0.0.1:{port}/v8"
        args = (
            ["organizations", "--server", url, "--username", "admin"]
            if command == "organizations"
            else jobs_args(url, org_id)
        )
        command_line = [sys.executable, "-m", "vbo_async", *args, "--json"]
        environment = child_environment(VBO_PASSWORD="admin")
        pipe = subprocess.PIPE
        started = asyncio.to_thread(
            subprocess.Popen, command_line, stdout=pipe, stderr=pipe, cwd=tmp_path, env=environment
        )
        children.append(await started)
        with reaped(children[0]) as process:
            code = await asyncio.to_thread(process.wait, HANG_GUARD)  # its output fits in the pipes
            assert process.stdout is not None
            assert process.stderr is not None
            rest, err = process.stdout.read(), process.stderr.read()
    assert (code, err) == (130, b"vbo-async: interrupted\n")
    assert len(at_logout) == 1
    assert at_logout[0].startswith(b"["), "nothing printed before the logout"
    assert rest == b""  # all of it was
    listed = json.loads(at_logout[0])
    if command == "organizations":
        assert sorted(org["id"] for org in listed) == sorted(o["id"] for o in simulator.organizations_wire())
    else:
        assert sorted(row["job_id"] for row in listed) == sorted(
            job["id"] for job in simulator.jobs_wire(org_id)
        )


async def test_organizations_over_https_with_the_shared_connection_options(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    simulator: Simulator,
    https_url: str,
    tls: tuple[Path, Path],
) -> None:
    monkeypatch.setenv("MY_VBO", "admin")
    argv = ["organizations", "--server", https_url + "/v1", "--username", "admin", "--password-env", "MY_VBO"]
    result = await run_in_thread(capsys, *argv, "--ca-bundle", str(tls[1]), "--api-version", "v1", "--json")
    assert result.code == 0, result.err
    assert [org["id"] for org in json.loads(result.out)] == sorted(
        simulator.organization_ids(),
        key=lambda i: next(o["name"] for o in simulator.organizations_wire() if o["id"] == i).casefold(),
    )
    line, _ = json_failure(await run_in_thread(capsys, *argv, "--json"), ORGANIZATION_KEYS)
    assert "--ca-bundle" in line


async def test_organizations_progress_on_a_terminal(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    http_url: str,
) -> None:
    fake_terminal_stderr(monkeypatch)
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    result = await run_in_thread(
        capsys, "organizations", "--server", http_url, "--username", "admin", "--json"
    )
    assert result.code == 0
    assert "Listing organizations" in ANSI.sub("", result.err)
    json.loads(result.out)


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
    assert result.err.startswith("vbo-async: warning: TLS certificate verification is OFF")


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


@pytest.mark.parametrize("name", ["check", "jobs", "organizations", "poll", "serve"])
def test_every_timeout_option_is_also_check_s_t(name: str) -> None:
    """``-t`` is ``--timeout`` on every command that has one, as on ``check``: ``poll -t 2m``
    was 'No such option' though poll's help says its --timeout is read 'as for check's -t'."""
    (timeout,) = [param for param in command_params(name) if "--timeout" in param.opts]
    assert timeout.opts == ["-t", "--timeout"]


def test_poll_t_is_its_timeout(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    line = error_line(run(capsys, "poll", "--targets", str(tmp_path / "t.toml"), "-t", "soon"), code=2)
    assert "Invalid value for '-t' / '--timeout': 'soon' is not a duration" in line


@pytest.mark.parametrize("given", ["30", "30s", " 30 ", "1.5"])
def test_poll_timeout_takes_a_number_alone_as_seconds(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, given: str
) -> None:
    """``poll --timeout 30`` is 30 seconds, as ``check -t 30`` is: the option is accepted and the
    command goes on to the targets file (missing here, the error it then gives)."""
    missing = tmp_path / "missing.toml"
    line = error_line(run(capsys, "poll", "--targets", str(missing), "--timeout", given), code=2)
    assert "--timeout" not in line
    assert "missing.toml" in line


def test_jobs_without_password_or_terminal_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO())
    monkeypatch.setattr(_connect, "_typed_line", lambda *_: pytest.fail("prompted without a terminal"))
    url = f"http://127.0.0.1:{closed_port()}"
    line = error_line(run(capsys, *jobs_args(url, "org", "--json")), code=2)
    assert "VBO_PASSWORD" in line
    line = error_line(run(capsys, *jobs_args(url, "org", "--password-env", "MY_VBO_SECRET")), code=2)
    assert "MY_VBO_SECRET" in line


@pytest.mark.parametrize("value", ["Pa55-w0rd!", "", "9LIVES"])
def test_a_password_env_that_names_no_variable_is_refused_without_echoing_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    """``--password-env 'Pa55-w0rd!'`` (the password given where its variable's name goes): a
    usage error that does not print it back ("set the environment variable Pa55-w0rd!")."""
    monkeypatch.setattr(sys, "stdin", io.StringIO())
    monkeypatch.setattr(_connect, "_typed_line", lambda *_: pytest.fail("prompted"))
    url = f"http://127.0.0.1:{closed_port()}"
    result = run(capsys, *jobs_args(url, "org", "--password-env", value))
    assert error_line(result, code=2) == (
        "vbo-async: error: --password-env takes the name of an environment variable (letters, digits "
        "and _, not starting with a digit), not the password (see 'vbo-async jobs --help')"
    )


def test_an_empty_password_variable_is_said_to_be_empty(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``VBO_EAST_PASSWORD= vbo-async poll`` (a secret store that answered nothing): the variable
    is set, so "set the environment variable" would send the user looking in the wrong place."""
    monkeypatch.setattr(sys, "stdin", io.StringIO())
    monkeypatch.setenv("VBO_EAST_PASSWORD", "")
    url = f"http://127.0.0.1:{closed_port()}"
    targets = write_targets(tmp_path / "targets.toml", server_table("east", url, "VBO_EAST_PASSWORD"))
    line = error_line(run(capsys, "poll", "--targets", str(targets)), code=2)
    assert line == (
        f"vbo-async: error: {targets}: servers[0].password_env: no password: the environment variable "
        'VBO_EAST_PASSWORD is empty (server "east")'
    )


@pytest.mark.parametrize("ending", ["\n", "\r\n"], ids=["lf", "crlf"])
async def test_a_line_break_ending_the_password_variable_is_not_part_of_the_password(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    simulator: Simulator,
    http_url: str,
    ending: str,
) -> None:
    """A secret read from a file into the variable keeps the file's last line break (a
    Kubernetes secret made with ``--from-file``, ``VBO_PASSWORD=$(cat pw; echo)``): sent with it,
    the password was refused, though it looked right everywhere the admin could look."""
    monkeypatch.setenv("VBO_PASSWORD", "admin" + ending)
    result = await run_in_thread(
        capsys, "organizations", "--server", http_url, "--username", "admin", "--json"
    )
    assert result.code == 0, result.err
    assert len(json.loads(result.out)) == len(simulator.organization_ids())
    assert simulator.stats.token_requests == {"password": 1}


def test_a_password_variable_holding_a_line_break_alone_is_empty(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO())
    monkeypatch.setenv("VBO_PASSWORD", "\n")
    line = error_line(run(capsys, *jobs_args(f"http://127.0.0.1:{closed_port()}", "org")), code=2)
    assert line == "vbo-async: error: no password: the environment variable VBO_PASSWORD is empty"


def test_a_closed_stdin_is_no_terminal_and_a_usage_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``vbo-async poll ... <&-`` (a closed stdin: ``sys.stdin`` is None), as in some cron jobs."""
    monkeypatch.setattr(sys, "stdin", None)
    monkeypatch.setattr(_connect, "_typed_line", lambda *_: pytest.fail("prompted without a terminal"))
    url = f"http://127.0.0.1:{closed_port()}"
    line = error_line(run(capsys, *jobs_args(url, "org", "--json")), code=2)
    assert "VBO_PASSWORD" in line
    targets = write_targets(tmp_path / "targets.toml", server_table("east", url, "VBO_EAST_PASSWORD"))
    line = error_line(run(capsys, "poll", "--targets", str(targets)), code=2)
    assert "VBO_EAST_PASSWORD" in line


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_end_of_input_at_the_password_prompt_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-D at the prompt (no line: EOFError, as getpass raises): no password, said so, not a bug."""

    def end_of_input(prompt: str = "Password: ", stream: object = None) -> str:
        raise EOFError

    monkeypatch.setattr(sys, "stdin", _Terminal())
    monkeypatch.setattr(_connect, "_typed_line", end_of_input)
    url = f"http://127.0.0.1:{closed_port()}"
    line = error_line(run(capsys, *jobs_args(url, "org", "--password-env", "MY_VBO_SECRET")), code=2)
    assert "internal error" not in line
    assert "MY_VBO_SECRET" in line


def prompting_child(tmp_path: Path, args: list[str], terminal: int) -> subprocess.Popen[bytes]:
    """``python -m vbo_async *args`` in ``tmp_path`` with the pseudo-terminal ``terminal`` as
    stdin but no controlling terminal (a session of its own: getpass prompts on stderr), stdout
    and stderr piped."""
    return subprocess.Popen(
        [sys.executable, "-m", "vbo_async", *args],
        stdin=terminal,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
        env=child_environment(),
        start_new_session=True,
    )


def test_ctrl_c_at_the_password_prompt_of_a_real_process_is_exit_130(tmp_path: Path) -> None:
    """The prompt waits on a terminal (a pseudo-terminal as stdin); one SIGINT, as Ctrl-C
    sends, ends the command at once, although the prompt is read inside the event loop."""
    import pty

    controller, terminal = pty.openpty()
    url = f"http://127.0.0.1:{closed_port()}"
    try:
        process = prompting_child(tmp_path, jobs_args(url, "org", "--json"), terminal)
    finally:
        os.close(terminal)
    try:
        with reaped(process):
            assert process.stderr is not None
            read_until(process.stderr, b"Password for admin: ")
            process.send_signal(signal.SIGINT)
            out, err = process.communicate(timeout=HANG_GUARD)
    finally:
        os.close(controller)
    assert process.returncode == 130
    assert out == b""
    assert err == b"\nvbo-async: interrupted\n"  # on a line of its own, not after the prompt


def test_the_prompt_needs_no_posix_open_flag(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Windows has no O_NOCTTY: finding where to prompt must not need it (an AttributeError,
    every prompt an internal error there)."""
    monkeypatch.delattr(os, "O_NOCTTY")
    monkeypatch.setattr(sys, "stdin", _Terminal())
    monkeypatch.setattr(_connect, "_typed_line", lambda prompt, stream=None: "")  # prompted, nothing typed
    url = f"http://127.0.0.1:{closed_port()}"
    line = error_line(run(capsys, *jobs_args(url, "org", "--password-env", "MY_VBO_SECRET")), code=2)
    assert line.endswith("password must not be empty")


def test_checks_prompt_without_a_controlling_terminal_is_seen(tmp_path: Path) -> None:
    """``check`` with stdin a terminal but no controlling terminal (``setsid``, a pty of a tool):
    getpass prompts on stderr then, which check holds until its verdict, so it waited for a
    password at a prompt nobody saw. The prompt is written where it is seen, as with a
    controlling terminal; the password typed, the check goes on."""
    import pty
    import select

    targets = write_targets(
        tmp_path / "targets.toml",
        server_table("east", f"http://127.0.0.1:{closed_port()}", "VBO_UNSET_PASSWORD"),
    )
    controller, terminal = pty.openpty()
    try:
        process = prompting_child(tmp_path, ["check", "--targets", str(targets)], terminal)
    finally:
        os.close(terminal)
    try:
        with reaped(process):
            assert process.stderr is not None
            seen, _, _ = select.select([process.stderr], [], [], HANG_GUARD)  # a guard, not a timing
            assert seen, "no prompt on stderr: check waits for a password nobody was asked for"
            read_until(process.stderr, b"Password for east (admin): ")
            os.write(controller, b"admin\n")
            out, _ = process.communicate(timeout=HANG_GUARD)
    finally:
        os.close(controller)
    assert process.returncode == 3  # nothing listens at the server's port
    assert out.decode().startswith("VB365 UNKNOWN - "), out


TYPED_PASSWORD = "pässwörd"


def type_password(
    args: list[str], tmp_path: Path, typed: bytes, controlling: bool, **env: str
) -> tuple[int, bytes, bytes]:
    """``python -m vbo_async *args`` on a pseudo-terminal, ``typed`` and Enter typed at its
    prompt: as its controlling terminal (the prompt on it), or as stdin alone (the prompt on
    stderr, `prompting_child`). The exit code, stdout and stderr (the prompt left out)."""
    import fcntl
    import pty
    import termios

    controller, terminal = pty.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "vbo_async", *args],
            stdin=terminal,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=tmp_path,
            env=child_environment(**env),
            start_new_session=True,
            preexec_fn=(lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0)) if controlling else None,
        )
    finally:
        os.close(terminal)
    prompt = b"Password for admin: "
    try:
        with reaped(process):
            assert process.stderr is not None
            if controlling:
                seen = b""
                while not seen.endswith(prompt):
                    ready, _, _ = select.select([controller], [], [], HANG_GUARD)  # a guard, not a timing
                    assert ready, seen
                    seen += os.read(controller, 1)
            else:
                read_until(process.stderr, prompt)
            os.write(controller, typed + b"\r")
            out, err = process.communicate(timeout=HANG_GUARD)
    finally:
        os.close(controller)
    return process.returncode, out, err.removeprefix(b"\n")


@pytest.mark.parametrize("controlling", [True, False], ids=["controlling-terminal", "stdin"])
@pytest.mark.parametrize(
    ("typed", "locale"),
    [
        (TYPED_PASSWORD.encode(), {}),
        (TYPED_PASSWORD.encode(), {"LC_ALL": "C", "PYTHONUTF8": "0"}),  # an ASCII locale
    ],
    ids=["utf-8", "ascii-locale"],
)
async def test_a_password_typed_in_utf_8_is_read_as_the_environment_s_under_any_locale(
    tmp_path: Path, typed: bytes, locale: dict[str, str], controlling: bool
) -> None:
    """Under an ASCII locale (``LC_ALL=C PYTHONUTF8=0``), getpass decoded the line typed in
    ASCII: a UTF-8 password was an internal error (exit 1), the same in VBO_PASSWORD taken."""
    config = SimulatorConfig(seed=7, organizations=2, password=TYPED_PASSWORD)
    async with serve(create_app(config)) as port:
        args = ["organizations", "--server", f"http://127.0.0.1:{port}", "--username", "admin", "--json"]
        code, out, err = await asyncio.to_thread(type_password, args, tmp_path, typed, controlling, **locale)
    assert (code, err) == (0, b""), err
    assert len(json.loads(out)) == 2


@pytest.mark.parametrize("controlling", [True, False], ids=["controlling-terminal", "stdin"])
def test_a_password_typed_that_is_not_utf_8_is_a_usage_error_not_quoting_it(
    tmp_path: Path, controlling: bool
) -> None:
    """A terminal sending Latin-1 (PuTTY set to ISO-8859-1) under a UTF-8 locale: getpass's
    UnicodeDecodeError was an internal error (exit 1), quoting the bytes typed; it is a usage
    error, as the same bytes in VBO_PASSWORD are, said before any request."""
    args = ["organizations", "--server", f"http://127.0.0.1:{closed_port()}", "--username", "admin"]
    code, out, err = type_password(args, tmp_path, TYPED_PASSWORD.encode("latin-1"), controlling)
    said = b"vbo-async: error: no password: the password typed is not UTF-8 (check the terminal's encoding)\n"
    assert (code, out, err) == (2, b"", said)


REPOSITORY = Path(__file__).resolve().parents[1]
BLOCKING_IMPORT = """
import sys, time
sys.stderr.write("importing {name}\\n")
sys.stderr.flush()
time.sleep(HANG_GUARD)
"""
"""A stand-in for a module the command imports: it says so on stderr, then blocks (until the
SIGINT the test sends), so the interrupt lands at a known point of the start-up imports."""


def console_script(tmp_path: Path) -> Path:
    """The ``vbo-async`` script pip writes for pyproject's entry point (what users run)."""
    import tomllib

    entry = tomllib.loads((REPOSITORY / "pyproject.toml").read_text())["project"]["scripts"]["vbo-async"]
    module, _, function = entry.partition(":")
    script = tmp_path / "vbo-async"
    script.write_text(
        "import re\nimport sys\n"
        f"from {module} import {function}\n"
        "if __name__ == '__main__':\n"
        "    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])\n"
        f"    sys.exit({function}())\n"
    )
    return script


@pytest.mark.parametrize("subcommand", ["jobs", "check", "simulate"])
@pytest.mark.parametrize(
    ("command", "blocked"),
    [
        ("vbo-async", "httpx"),  # the library's imports (vbo_async/__init__.py), click and rich too
        ("vbo-async", "getpass"),  # the command line's own (vbo_async._cli)
        # -m imports the package's __init__ before its __main__: it imports nothing of the library
        # (its names are imported when first asked for), so __main__ is reached at once.
        ("python -m vbo_async", "getpass"),
        ("python -m vbo_async", "httpx"),
    ],
)
def test_ctrl_c_while_the_command_starts_is_exit_130_without_a_traceback(
    tmp_path: Path, command: str, blocked: str, subcommand: str
) -> None:
    """Ctrl-C in the first few tenths of a second, while the command imports what it needs,
    printed a Python traceback (and ended by the signal) instead of the one line and exit 130 of
    every later moment."""
    stand_ins = tmp_path / "stand_ins"
    stand_ins.mkdir()
    (stand_ins / f"{blocked}.py").write_text(
        BLOCKING_IMPORT.format(name=blocked).replace("HANG_GUARD", repr(HANG_GUARD))
    )
    path = os.pathsep.join([str(stand_ins), str(REPOSITORY), os.environ.get("PYTHONPATH", "")])
    argv = [str(console_script(tmp_path))] if command == "vbo-async" else ["-m", "vbo_async"]
    process = subprocess.Popen(
        [sys.executable, *argv, subcommand, "--help"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
        env=child_environment(PYTHONPATH=path),
    )
    with reaped(process):
        assert process.stderr is not None
        said = process.stderr.readline()
        assert said == f"importing {blocked}\n".encode(), said
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=HANG_GUARD)
    if subcommand == "check":  # a monitoring plugin: UNKNOWN, on stdout
        assert (out, err, process.returncode) == (b"VB365 UNKNOWN - interrupted\n", b"", 3)
    else:  # simulate, which Ctrl-C stops, ends with 0 at any moment
        status = 0 if subcommand == "simulate" else 130
        assert (out, err, process.returncode) == (b"", b"vbo-async: interrupted\n", status)


def test_the_command_does_not_import_httpx_s_command_line_and_httpx_main_still_runs(tmp_path: Path) -> None:
    """httpx imports its own command line (click, rich's syntax highlighting and pygments) when
    they are installed; the ``vbo-async`` entry point puts a stand-in first, whose ``main`` runs
    the real one."""
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import sys\n"
        "import _vbo_async_cli\n"
        "_vbo_async_cli.without_httpx_command_line()\n"
        "import httpx, vbo_async.cli\n"
        "print(sorted(m for m in ('pygments', 'rich.syntax') if m in sys.modules))\n"
        "try:\n"
        "    httpx.main(['--help'])\n"
        "except SystemExit as exc:\n"
        "    print('exit', exc.code)\n"
        "print(sorted(m for m in ('pygments', 'rich.syntax') if m in sys.modules))\n"
    )
    path = os.pathsep.join([str(REPOSITORY), os.environ.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, str(probe)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=child_environment(PYTHONPATH=path),
        timeout=HANG_GUARD,
        check=True,
    )
    lines = done.stdout.splitlines()
    assert lines[0] == "[]"  # neither imported by vbo-async's start-up
    assert "Usage: httpx" in done.stdout  # the real command line ran, imported when called
    assert "exit 0" in lines
    assert lines[-1] == "['pygments', 'rich.syntax']"


async def test_jobs_prompts_for_the_password_on_a_terminal(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    simulator: Simulator,
    http_url: str,
    org_id: str,
) -> None:
    prompts: list[str] = []

    def answer(prompt: str = "Password: ", stream: object = None) -> str:
        prompts.append(prompt)
        return "admin"

    monkeypatch.setattr(sys, "stdin", _Terminal())
    monkeypatch.setattr(_connect, "_typed_line", answer)
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
    monkeypatch.setenv("VBO_ASYNC_LOG", "debug")
    result = await run_in_thread(capsys, *jobs_args(http_url, org_id, "--json"))
    assert result.code == 1
    (failed,) = json.loads(result.out)
    errors = [line for line in result.err.splitlines() if line.startswith("vbo-async: error: ")]
    assert len(errors) == 1
    assert "password" in errors[0].lower()
    assert failed["error"] == errors[0].removeprefix("vbo-async: error: ")
    assert WRONG_PASSWORD not in result.out + result.err + caplog.text
    assert simulator.stats.token_requests == {"password": 1}  # refused once, not retried


@pytest.mark.parametrize("log", ["", "debug"])
def test_a_bug_is_one_line_and_vbo_async_log_debug_shows_where(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, log: str
) -> None:
    async def broken_sweep(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(_flows, "poll", broken_sweep)
    monkeypatch.setenv("VBO_ASYNC_LOG", log)
    result = run(capsys, "poll", "--targets", str(tmp_path / "targets.toml"))
    assert result.code == 1
    assert result.out == ""
    error = "vbo-async: error: internal error: RuntimeError: boom (VBO_ASYNC_LOG=debug shows where)"
    assert error in result.err.splitlines()
    if log:
        assert "Traceback (most recent call last):" in result.err
        assert "in broken_sweep" in result.err
    else:
        assert result.err == error + "\n"


@pytest.mark.parametrize(
    ("encoding", "errors"), [("latin-1", "strict"), ("ascii", "surrogateescape")], ids=["latin-1", "posix"]
)
@pytest.mark.parametrize("command", ["poll", "check"])
def test_a_name_the_output_encoding_cannot_show_is_replaced_not_an_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, command: str, encoding: str, errors: str
) -> None:
    """On a stdout that is not UTF-8 (a Windows console's code page redirected to a file, a
    latin-1 locale, the C locale without UTF-8 mode, where Python's stdout is ASCII with
    ``surrogateescape``), a tenant named in Japanese prints as '?' instead of failing the command
    (and the bidirectional override in it as its escape)."""
    row = Row(
        server="east",
        organization="東京 \u202etenant",
        organization_id="o",
        job="Mail",
        job_id="j",
        last_status="Failed",
        health=HealthState.CRITICAL,
        health_reason="failed 2 h ago",
    )
    report = Report.collect([row], servers=1, tenants=1)

    async def sweep(*args: Any, **kwargs: Any) -> Any:
        return report if command == "poll" else plugin_output(report)

    monkeypatch.setattr(_flows, "poll", sweep)
    monkeypatch.setattr("vbo_async._cli._check.run_check", sweep)
    raw = io.BytesIO()
    stdout = io.TextIOWrapper(raw, encoding=encoding, errors=errors, write_through=True)
    monkeypatch.setattr(sys, "stdout", stdout)
    code = main([command, "--targets", str(tmp_path / "targets.toml")])
    sys.stdout.flush()
    out = raw.getvalue().decode(encoding)
    assert code == (0 if command == "poll" else 2), out
    assert ("?? \\u202etenant" if command == "poll" else "??  tenant") in out
    assert "Mail" in out


HOSTILE_TEXT = "bad \x1b]0;PWNED\x07 \x1b[31mred\x9b\u2028second line"


async def _hostile_token_endpoint(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Every request: a 400 whose message carries escape sequences and line breaks."""
    if scope["type"] != "http":
        return
    body = json.dumps({"error": "invalid_grant", "error_description": HOSTILE_TEXT, "message": HOSTILE_TEXT})
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 400, "headers": headers})
    await send({"type": "http.response.body", "body": body.encode()})


@pytest.mark.parametrize("log", ["", "debug"])
async def test_escape_sequences_from_a_server_never_reach_stderr(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, log: str
) -> None:
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    monkeypatch.setenv("VBO_ASYNC_LOG", log)
    async with serve(_hostile_token_endpoint) as port:
        argv = ["organizations", "--server", f"http://127.0.0.1:{port}/v8", "--username", "admin"]
        result = await run_in_thread(capsys, *argv)
    assert result.code == 1
    errors = [line for line in result.err.splitlines() if line.startswith("vbo-async: error: ")]
    assert len(errors) == 1
    assert "PWNED" in errors[0]
    assert all(line.startswith("vbo-async: ") for line in result.err.splitlines()), result.err
    assert not re.search(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028]", result.err), result.err


def test_jobs_refused_connection_is_one_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, no_backoff: None
) -> None:
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    line = error_line(run(capsys, *jobs_args(f"http://127.0.0.1:{closed_port()}", "org")))
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


def test_jobs_missing_ca_bundle_and_bad_url_are_usage_errors(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    url = f"https://127.0.0.1:{closed_port()}"
    line = error_line(run(capsys, *jobs_args(url, "org", "--ca-bundle", "/nonexistent/ca.pem")), code=2)
    assert "/nonexistent/ca.pem" in line
    line = error_line(run(capsys, *jobs_args("ftp://127.0.0.1", "org")), code=2)
    assert "ftp://127.0.0.1" in line


@pytest.mark.parametrize(
    "url",
    ["https://svc:S3cr3t-PW@127.0.0.1:4443", "https://svc:S3cr3t-PW@127.0.0.1:4443/v8", "svc:S3cr3t-PW@h"],
)
@pytest.mark.parametrize("command", ["jobs", "organizations"])
def test_a_server_url_with_a_password_is_refused_without_printing_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, url: str, command: str
) -> None:
    """The error line named the server by its URL as given, password and all."""
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    argv = jobs_args(url, "org")
    if command == "organizations":
        argv = ["organizations", "--server", url, "--username", "admin"]
    line = error_line(run(capsys, *argv), code=2)
    assert "credentials" in line
    assert "S3cr3t" not in line


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://svc:S3cr3t-PW@127.0.0.1:4443",
            "--server must not carry credentials (user:password@host): give the user with "
            "--username and the password in the environment variable --password-env names",
        ),
        ("", "--server must be an absolute http(s) URL, got ''"),
        ("vbo01:4443", "--server must be an absolute http(s) URL, got 'vbo01:4443'"),
        ("https://127.0.0.1:99999", "--server has an invalid port: 'https://127.0.0.1:99999'"),
    ],
    ids=["credentials", "empty", "no-scheme", "port"],
)
@pytest.mark.parametrize("command", ["jobs", "organizations"])
def test_an_unusable_server_url_is_a_usage_error_before_the_password_prompt(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, url: str, expected: str, command: str
) -> None:
    """Said as the command line's options say it (not the library's ``base_url`` and
    ``password=``, an argument the command line never takes), and before a password is typed
    for nothing."""
    monkeypatch.setattr(sys, "stdin", _Terminal())
    monkeypatch.setattr(_connect, "_typed_line", lambda *_: pytest.fail("prompted for a password"))
    argv, _ = json_command(command, url, "org")
    assert error_line(run(capsys, *argv), code=2) == (
        f"vbo-async: error: {expected} (see 'vbo-async {command} --help')"
    )


@pytest.mark.parametrize("terminal", [True, False], ids=["terminal", "no-terminal"])
@pytest.mark.parametrize("command", ["jobs", "organizations"])
def test_a_ca_bundle_that_cannot_be_loaded_is_a_usage_error_naming_it_before_the_password_prompt(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    command: str,
    terminal: bool,
) -> None:
    """A --ca-bundle that exists but is no PEM (a certificate exported from Windows as DER) is
    found before any password is asked for and named as the option, as poll, check and serve
    name a targets file's ca_bundle: it was found after the prompt (without a terminal the
    error was 'no password' instead), and named the server's URL."""
    bundle = tmp_path / "east.cer"
    bundle.write_bytes(b"0\x82\x03\x1d0\x82\x02\x05\xa0\x03\x02\x01\x02")
    monkeypatch.setattr(sys, "stdin", _Terminal() if terminal else io.StringIO())
    monkeypatch.setattr(_connect, "_typed_line", lambda *_: pytest.fail("prompted for a password"))
    argv, _ = json_command(command, "https://127.0.0.1:4443", "org")
    line = error_line(run(capsys, *argv, "--ca-bundle", str(bundle)), code=2)
    assert line.startswith(
        f"vbo-async: error: Invalid value for '--ca-bundle': cannot load the CA bundle '{bundle}': "
    )
    assert line.endswith(f"(see 'vbo-async {command} --help')")


# --- hints for the usual connection mistakes, against real servers -----------------------------------


async def test_untrusted_certificate_names_the_ca_bundle_option(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    simulator: Simulator,
    https_url: str,
    org_id: str,
) -> None:
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    line = error_line(await run_in_thread(capsys, *jobs_args(https_url, org_id)))
    assert "certificate verif" in line.lower()
    assert "--ca-bundle PATH" in line
    assert simulator.stats.requests == 0


@pytest.mark.parametrize("problem", [pytest.param("expired", marks=DATED_CERTIFICATES), "another host"])
async def test_a_certificate_refused_for_another_reason_than_its_ca_does_not_ask_for_the_ca(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    simulator: Simulator,
    tmp_path: Path,
    problem: str,
) -> None:
    """Signed by the CA given with --ca-bundle, but expired or issued for another host: the
    error says what is wrong and does not advise passing the CA (it was passed; it said so for
    any refused certificate). A name mismatch advises a name the certificate was issued for."""
    authority = trustme.CA()
    ca_pem = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(ca_pem))
    if problem == "expired":
        issued = authority.issue_cert(
            "127.0.0.1", not_before=dt.datetime(2019, 1, 1), not_after=dt.datetime(2020, 1, 1)
        )
    else:
        issued = authority.issue_cert("vbo.other.test")
    server_pem = tmp_path / "server.pem"
    issued.private_key_and_cert_chain_pem.write_to_path(str(server_pem))
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    async with serve(create_app(simulator=simulator), certfile=server_pem) as port:
        argv = jobs_args(f"https://127.0.0.1:{port}", "org", "--ca-bundle", str(ca_pem))
        line = error_line(await run_in_thread(capsys, *argv))
    assert "TLS certificate verification failed" in line
    assert "--ca-bundle" not in line
    assert "own CA" not in line
    if problem == "expired":
        assert "certificate has expired" in line
    else:
        assert "mismatch" in line
        assert line.endswith("; connect to the server by a name its certificate was issued for")
    assert simulator.stats.requests == 0


def _ca_without_key_usage(folder: Path) -> tuple[Path, Path]:
    """``(ca_pem, server_pem)``: a CA certificate without the keyUsage extension (as many a
    home-made ``openssl req -x509`` CA is) and a certificate for 127.0.0.1 it signed, with its
    key. Valid everywhere but under RFC 5280's strict rules."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "home-made CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    server = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vbo")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_pem, server_pem = folder / "ca.pem", folder / "server.pem"
    ca_pem.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    server_pem.write_bytes(key_pem + server.public_bytes(serialization.Encoding.PEM))
    return ca_pem, server_pem


async def test_a_certificate_refused_under_python_3_13_s_strict_rules_says_so(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    simulator: Simulator,
    tmp_path: Path,
    org_id: str,
) -> None:
    """Python 3.13 verifies certificates under RFC 5280's strict rules (``VERIFY_X509_STRICT``):
    a CA without keyUsage, trusted on 3.12, is refused there. The error named OpenSSL's reason
    only, as if the certificate were broken for any client; it says that Python refuses it and
    what to re-issue. Under 3.11 and 3.12 the same server is trusted."""
    ca_pem, server_pem = _ca_without_key_usage(tmp_path)
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    async with serve(create_app(simulator=simulator), certfile=server_pem) as port:
        argv = jobs_args(f"https://127.0.0.1:{port}", org_id, "--ca-bundle", str(ca_pem))
        result = await run_in_thread(capsys, *argv)
    if not ssl.create_default_context().verify_flags & ssl.VERIFY_X509_STRICT:  # before 3.13
        assert result.code == 0, result.err
        assert simulator.stats.requests > 0
        return
    line = error_line(result)
    assert "CA cert does not include key usage extension" in line
    assert "--ca-bundle" not in line  # the CA was given: it is not what is missing
    assert line.endswith(
        "; Python 3.13 and later refuse certificates that break RFC 5280's rules"
        " (ssl.VERIFY_X509_STRICT): have the certificate or its CA re-issued with what is missing"
    )
    assert simulator.stats.requests == 0


async def test_https_to_a_plain_http_port_says_so(
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    http_url: str,
    no_backoff: None,
) -> None:
    caplog.set_level(logging.ERROR, logger="uvicorn.error")  # its "Invalid HTTP request" warning
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    url = http_url.replace("http://", "https://")
    line, _ = json_failure(await run_in_thread(capsys, *jobs_args(url, "org", "--json")))
    assert "use http:// instead of https://" in line


async def test_http_to_a_tls_port_says_so(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, https_url: str, no_backoff: None
) -> None:
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    url = https_url.replace("https://", "http://")
    line, _ = json_failure(await run_in_thread(capsys, *jobs_args(url, "org", "--json")))
    assert "use https:// instead of http://" in line


@pytest.mark.parametrize("transport", ["aiohttp", "httpx"])
async def test_a_plain_http_answer_cut_short_is_not_taken_for_a_tls_port(transport: str) -> None:
    """The hint "use https://" is for a server that closes the connection before any answer (a
    TLS port given plain HTTP), not for one whose answer's body is cut short."""

    async def answer(cut_short: bool) -> str:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read(65536)
            if cut_short:
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n["
                )
                await writer.drain()
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        options: dict[str, Any] = {} if transport == "aiohttp" else {"transport": httpx.AsyncHTTPTransport()}
        try:
            async with VBOClient(
                f"http://127.0.0.1:{port}", username="u", password="p", api_version="v8",
                retry=RetryPolicy(attempts=1), **options,
            ) as vbo:  # fmt: skip
                with pytest.raises(TransportError) as caught:
                    await vbo.jobs()
        finally:
            server.close()
        return _connect.explain(caught.value)

    assert "use https:// instead of http://" in await answer(cut_short=False)
    assert "TLS port" not in await answer(cut_short=True)


@pytest.mark.parametrize("suffix", ["/v1", "/v1/", "/V1"])
async def test_a_server_url_with_the_version_is_accepted(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    simulator: Simulator,
    http_url: str,
    org_id: str,
    suffix: str,
) -> None:
    """As ``vbo-async simulate`` prints it: the /v1 is the API version, never doubled."""
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    result = await run_in_thread(capsys, *jobs_args(http_url + suffix, org_id, "--json"))
    assert result.code == 0, result.err
    check_json_rows(result.out, expected_rows(simulator, [org_id], version="v1"), http_url)
    assert "/v1/token" in endpoints(simulator)
    assert not any("/v1/v1" in path for path in endpoints(simulator))
    assert not any(path.startswith(("/v6/", "/v7/", "/v8/")) for path in endpoints(simulator))


@pytest.mark.parametrize("extra", [[], ["--api-version", "v8"]], ids=["url-only", "with-api-version"])
def test_a_server_url_ending_in_a_version_no_server_serves_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, extra: list[str]
) -> None:
    """``--server https://vbo01:4443/v5``: the /v5 is read as the API version, as /v8 is; one
    that does not exist is said so about --server, not as an ``api_version`` the user never
    gave, nor dropped without a word when --api-version is given."""
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    url = f"http://127.0.0.1:{closed_port()}/v5"
    line = error_line(run(capsys, *jobs_args(url, "org", *extra)), code=2)
    assert line == (
        "vbo-async: error: --server ends in /v5, which is no API version (v8, v7, v6, v1) "
        "(see 'vbo-async jobs --help')"
    )


@pytest.mark.parametrize("suffix", ["/v1/v6", "/V8/v7/"])
def test_a_server_url_ending_in_two_versions_says_so(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, suffix: str
) -> None:
    """``--server https://vbo01:4443/v1/v6``: the /v6 is the version; the /v1 left was told as the
    segment it ends in, with the library's ``api_version='v1'`` for advice."""
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    url = f"http://127.0.0.1:{closed_port()}{suffix}"
    inner, outer = suffix.strip("/").lower().split("/")
    line = error_line(run(capsys, *jobs_args(url, "org")), code=2)
    assert line == (
        f"vbo-async: error: --server ends in two API version segments (/{inner}/{outer}): give the "
        "server's URL with one at most, at its end, to use that version only (see 'vbo-async jobs --help')"
    )


async def test_an_explicit_api_version_wins_over_the_url(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    simulator: Simulator,
    http_url: str,
    org_id: str,
) -> None:
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    result = await run_in_thread(
        capsys, *jobs_args(http_url + "/v1", org_id, "--json", "--api-version", "v6")
    )
    assert result.code == 0, result.err
    check_json_rows(result.out, expected_rows(simulator, [org_id], version="v6"), http_url)
    assert "/v6/token" in endpoints(simulator)
    assert not any(path.startswith("/v1/") for path in endpoints(simulator))


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
    west_orgs = west.organizations_wire()
    chosen = [west_orgs[1]["id"], west_orgs[2]["name"].upper()]  # an id and a name
    chosen_ids = [west_orgs[1]["id"], west_orgs[2]["id"]]
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
                f"https://127.0.0.1:{west_port}/v1",
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
    east_rows, west_rows = expected_rows(east), expected_rows(west, chosen_ids, version="v1")  # west: /v1
    health = expected_health(east) | expected_health(west, chosen_ids, version="v1")
    servers = dict.fromkeys(east_rows, "east") | dict.fromkeys(west_rows, "west")
    check_json_rows(result.out, east_rows | west_rows, servers, health)
    assert table.code == 0, table.err
    check_table(table.out, east_rows | west_rows, servers=servers, health=health)
    assert summary_line(table.out).startswith(
        f"{len(east_rows | west_rows)} jobs on 4 tenants of 2 servers: "
    )
    # Names come from the listings: no organization is fetched through a job's link.
    for simulator in (east, west):
        assert not any(re.fullmatch(r"/v\d/organizations/[^/]+", path) for path in endpoints(simulator))


async def test_poll_judges_health_under_the_max_age_and_schedule_options(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    simulator: Simulator,
    http_url: str,
    tmp_path: Path,
) -> None:
    """``poll`` takes ``check``'s health options: ``--max-age 90m`` (and ``--schedule-aware`` on
    top) judge every row as `poll_jobs` does under that `HealthPolicy`."""
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    targets = write_targets(
        tmp_path / "targets.toml", server_table("east", http_url, "VBO_PASSWORD", organizations='"all"')
    )
    short = dt.timedelta(minutes=90)
    judged = []
    for aware in (False, True):
        extra = ["--schedule-aware"] if aware else []
        result = await run_in_thread(
            capsys, "poll", "--targets", str(targets), "--json", "--max-age", "90m", *extra
        )
        assert result.code == 0, result.err
        health = expected_health(simulator, policy=HealthPolicy(max_age=short, schedule_aware=aware))
        check_json_rows(result.out, expected_rows(simulator), "east", health)
        judged.append(health)
    assert judged[0] != judged[1] != expected_health(simulator)  # each option changes something


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
            if scope["type"] == "http" and scope["path"].lower() == "/v8/organizations":
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
    contexts = SharedContexts()
    bundle = str(tls[1])
    one, two = (contexts.verify(bundle) for _ in range(2))
    system, system_again = (contexts.verify(True) for _ in range(2))
    assert isinstance(one, ssl.SSLContext)
    assert one is two
    assert isinstance(system, ssl.SSLContext)
    assert system is system_again
    assert system is not one
    assert contexts.verify(False) is False  # insecure builds nothing
    assert len(contexts) == 2


async def test_poll_reports_unreachable_servers_polls_the_others_and_exits_1(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, no_backoff: None
) -> None:
    """Two of three servers down: the third is still polled, the failures are rows with JSON
    null where they have nothing, and the exit code says something could not be read."""
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
        table = await run_in_thread(capsys, "poll", "--targets", str(targets))
    assert result.code == 1, result.err
    rows = json.loads(result.out)
    failed = [row for row in rows if row["error"] is not None]
    assert [row["server"] for row in failed] == ["a-down", "b-listed-down"]
    for row in failed:
        assert "connect" in row["error"]
        assert {key: value for key, value in row.items() if key not in ("server", "error")} == dict.fromkeys(
            JSON_KEYS - {"server", "error"}
        )
    check_json_rows(json.dumps([row for row in rows if row["error"] is None]), expected_rows(healthy), "c-up")
    # The table keeps its jobs whole and lists the failures below it.
    assert table.code == 1
    expected = expected_rows(healthy)
    servers = dict.fromkeys(expected, "c-up")
    check_table(table.out, expected, servers=servers)
    errors = table_rows(table.out, "Could not be read")
    assert [row[:2] for row in errors] == [["a-down", "(whole server)"], ["b-listed-down", "(whole server)"]]
    assert summary_line(table.out).endswith("2 servers unreachable")
    assert summary_line(table.out).startswith(f"{len(expected)} jobs on 2 tenants of 3 servers")


@pytest.mark.parametrize(("named", "batched"), [(10, False), (16, True)])
async def test_poll_batches_named_tenants_only_when_they_are_enough_of_the_server(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    named: int,
    batched: bool,
) -> None:
    """10 named tenants of a server of 320 organizations (3%) are polled one by one, as
    `poll_jobs` polls them when it lists the organizations itself; 16 (5%) in one batch. The
    listing that found the names tells poll_jobs the server's size: it is not read twice."""
    simulator = Simulator(small_config(seed=27, organizations=320))
    chosen = simulator.organization_ids()[:named]
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    async with serve(create_app(simulator=simulator)) as port:
        targets = write_targets(
            tmp_path / "targets.toml",
            server_table(
                "east", f"http://127.0.0.1:{port}", "VBO_PASSWORD", organizations=json.dumps(chosen)
            ),
        )
        result = await run_in_thread(capsys, "poll", "--targets", str(targets), "--json")
    assert result.code == 0, result.err
    check_json_rows(result.out, expected_rows(simulator, chosen), "east")
    kinds = {f"{method} {path}": count for (method, path), count in simulator.stats.by_endpoint.items()}
    assert kinds["GET /v8/organizations"] == 1
    assert kinds["GET /v8/jobs"] == (1 if batched else named)  # the server's, or ?organizationId= each


async def test_poll_unknown_organization_in_the_file_is_a_row_and_exit_1(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    simulator = Simulator(small_config(seed=26, organizations=2))
    first = simulator.organizations_wire()[0]
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    async with serve(create_app(simulator=simulator)) as port:
        targets = write_targets(
            tmp_path / "targets.toml",
            server_table(
                "east",
                f"http://127.0.0.1:{port}",
                "VBO_PASSWORD",
                organizations=json.dumps([first["name"], "Contoso"]),
            ),
        )
        result = await run_in_thread(capsys, "poll", "--targets", str(targets), "--json")
    assert result.code == 1
    rows = json.loads(result.out)
    (failure,) = [row for row in rows if row["error"]]
    assert failure["organization"] == "Contoso"
    assert failure["organization_id"] is None
    assert "no organization 'Contoso' on east" in failure["error"]
    check_json_rows(
        json.dumps([row for row in rows if not row["error"]]), expected_rows(simulator, [first["id"]]), "east"
    )


async def test_poll_where_every_target_fails_exits_1(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, http_url: str
) -> None:
    monkeypatch.setenv("VBO_PASSWORD", WRONG_PASSWORD)
    targets = write_targets(tmp_path / "targets.toml", server_table("east", http_url, "VBO_PASSWORD"))
    result = await run_in_thread(capsys, "poll", "--targets", str(targets))
    assert result.code == 1
    assert WRONG_PASSWORD not in result.out + result.err
    assert header_cells(result.out) == ["Server", "Organization", "Error"]
    ((server, organization, error),) = [row for row in table_rows(result.out) if row[0]]
    assert (server, organization) == ("east", "(whole server)")
    assert error.startswith("AuthenticationError") or "password" in error.lower()
    assert summary_line(result.out) == (
        "0 jobs on 0 tenants: 0 critical, 0 warning; 1 server could not be read"
    )


async def test_poll_progress_shows_failures_so_far(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    http_url: str,
    no_backoff: None,
) -> None:
    fake_terminal_stderr(monkeypatch)
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    targets = write_targets(
        tmp_path / "targets.toml",
        server_table("down", f"http://127.0.0.1:{closed_port()}", "VBO_PASSWORD")
        + server_table("up", http_url, "VBO_PASSWORD"),
    )
    result = await run_in_thread(capsys, "poll", "--targets", str(targets), "--json")
    assert result.code == 1
    err = ANSI.sub("", result.err)
    assert re.search(r"Listing organizations.*2/2\s+1 failed", err), err
    assert re.search(r"Polling tenants.*3/3\s+0 failed", err), err
    json.loads(result.out)


@pytest.mark.parametrize("with_password_env", [True, False])
def test_poll_refuses_a_password_in_the_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, with_password_env: bool
) -> None:
    good = 'url = "http://127.0.0.1:1"\nusername = "admin"\npassword_env = "VBO_PASSWORD"\n'
    text = good if with_password_env else good.replace('password_env = "VBO_PASSWORD"\n', "")
    targets = write_targets(tmp_path / "targets.toml", f'[[servers]]\n{text}password = "{WRONG_PASSWORD}"\n')
    result = run(capsys, "poll", "--targets", str(targets))
    lines = error_lines(result, code=2)
    assert f"vbo-async: error: {targets}: servers[0].password: not accepted: put the password in the " in (
        lines[-1] if with_password_env else "\n".join(lines)
    )
    assert WRONG_PASSWORD not in result.err


def test_poll_missing_file_and_missing_password_are_usage_errors(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    line = error_line(run(capsys, "poll", "--targets", str(tmp_path / "missing.toml")), code=2)
    assert "cannot read" in line
    assert "missing.toml" in line
    targets = write_targets(
        tmp_path / "targets.toml", server_table("east", "http://127.0.0.1:1", "VBO_PASSWORD")
    )
    line = error_line(run(capsys, "poll", "--targets", str(targets)), code=2)
    assert "VBO_PASSWORD" in line


# --- poll --timeout ------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def silent_server() -> AsyncIterator[str]:
    """A server on 127.0.0.1 that accepts TCP connections, reads the first request and never
    answers; yields its URL."""

    async def never(head: bytes, body: bytes, writer: asyncio.StreamWriter) -> None:
        await asyncio.Event().wait()  # until the block ends

    async with serve_raw(never) as port:
        yield f"http://127.0.0.1:{port}"


def holding_jobs(app: Any, release: asyncio.Event) -> Any:
    """``app`` answering every request but its job listings, which wait for ``release``: a
    server that lists its organizations and then never answers."""

    async def gated(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].lower().endswith("/jobs"):
            await release.wait()
        await app(scope, receive, send)

    return gated


@contextlib.asynccontextmanager
async def hung_then_up(tmp_path: Path, hung: int = 1) -> AsyncIterator[tuple[Path, Simulator]]:
    """A targets file of ``hung`` servers that accept connections and never answer ("hung",
    "hung2", ...), then a healthy simulator of two tenants ("up"): the file and that simulator."""
    healthy = Simulator(small_config(seed=27, organizations=2))
    async with contextlib.AsyncExitStack() as stack:
        silent = [await stack.enter_async_context(silent_server()) for _ in range(hung)]
        port = await stack.enter_async_context(serve(create_app(simulator=healthy)))
        targets = write_targets(
            tmp_path / "targets.toml",
            "".join(
                server_table("hung" + (str(number + 1) if number else ""), url, "VBO_PASSWORD")
                for number, url in enumerate(silent)
            )
            + server_table("up", f"http://127.0.0.1:{port}", "VBO_PASSWORD"),
        )
        yield targets, healthy


async def test_poll_timeout_says_a_server_waiting_behind_slow_ones_was_not_asked(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``--concurrency`` servers are listed at once, a silent one giving its turn to the next
    after `slot_hold` (2 s here: 3 s shared by 4 servers' turns, 2 s at least): with hung
    servers first, those whose turn came after the deadline (the third at 4 s) and the healthy
    server after them were never asked, and were said to have given "no answer within 3s" (the
    operator blamed the wrong server). They are said not to have been asked, and why."""
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    async with hung_then_up(tmp_path, hung=3) as (targets, healthy):
        argv = ("poll", "--targets", str(targets), "--timeout", "3s", "--concurrency", "1")
        result = await asyncio.wait_for(run_in_thread(capsys, *argv, "--json"), HANG_GUARD)
        table = await asyncio.wait_for(run_in_thread(capsys, *argv), HANG_GUARD)
    assert result.code == 1, result.err
    assert [(row["server"], row["error"]) for row in json.loads(result.out)] == [
        ("hung", "no answer within 3s"),
        ("hung2", "no answer within 3s"),
        ("hung3", "not asked within 3s" + NOT_ASKED),
        ("up", "not asked within 3s" + NOT_ASKED),
    ]
    assert summary_line(table.out).endswith("; 2 servers could not be read, 2 servers not asked")
    assert healthy.stats.token_requests == {}  # never asked, indeed


async def test_poll_a_silent_server_gives_its_listing_turn_to_the_next(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A server that never answers held its listing slot for its attempts' 30 s each: with
    ``--concurrency`` such servers first, every server after them was "not asked" however
    healthy (a datacenter down took every other server's check with it). After `slot_hold`
    (here 4 s shared by 2 servers' turns: 2 s) the healthy server is asked, and its jobs are
    all there; the hung one is still waited for until the deadline."""
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    async with hung_then_up(tmp_path) as (targets, healthy):
        argv = ("poll", "--targets", str(targets), "--timeout", "4s", "--concurrency", "1", "--json")
        result = await asyncio.wait_for(run_in_thread(capsys, *argv), HANG_GUARD)
    assert result.code == 1, result.err
    rows = json.loads(result.out)
    assert [(row["server"], row["error"]) for row in rows if row["error"] is not None] == [
        ("hung", "no answer within 4s")
    ]
    expected = expected_rows(healthy)
    check_json_rows(
        json.dumps([row for row in rows if row["error"] is None]), expected, "up", expected_health(healthy)
    )


@pytest.mark.parametrize(
    ("servers", "concurrency", "within", "hold"),
    [
        (2, 1, 4.0, 2.0),  # 4 s shared by 2 turns
        (4, 1, 3.0, 2.0),  # 0.75 s a turn: 2 s at least
        (100, 16, 50.0, 50 / 7),  # 7 rounds of 16
        (2, 16, 50.0, 10.0),  # one round: 10 s at most
        (5, 1, None, 10.0),  # no time limit
        (0, 16, 50.0, 10.0),
    ],
)
def test_slot_hold_shares_the_time_limit_among_the_listing_turns(
    servers: int, concurrency: int, within: float | None, hold: float
) -> None:
    assert _flows.slot_hold(servers, concurrency, within) == pytest.approx(hold)


async def test_in_slot_gives_a_slot_held_too_long_to_the_next_and_returns_every_outcome() -> None:
    slots, release, began = asyncio.Semaphore(1), asyncio.Event(), []

    async def slow() -> str:
        began.append("slow")
        await release.wait()
        return "slow"

    async def quick() -> str:
        began.append("quick")
        release.set()
        return "quick"

    async def failing() -> str:
        began.append("failing")
        raise ConfigError("bad")

    first = asyncio.create_task(_turns.in_slot(slots, 0.05, slow))
    second = asyncio.create_task(_turns.in_slot(slots, 0.05, quick))
    third = asyncio.create_task(_turns.in_slot(slots, 0.05, failing))
    assert await asyncio.wait_for(asyncio.gather(first, second), HANG_GUARD) == ["slow", "quick"]
    with pytest.raises(ConfigError, match="bad"):
        await third
    assert began == ["slow", "quick", "failing"]
    assert not slots.locked()  # every slot given back


async def test_in_slot_cancelled_leaves_no_work_behind() -> None:
    """Cancelled while waiting for a slot, the work is never begun (no coroutine left never
    awaited); cancelled while it runs in the slot or after giving the slot back, the work is
    cancelled and has ended when the call has."""
    slots = asyncio.Semaphore(1)
    began: list[str] = []
    ended: list[str] = []

    async def forever(name: str) -> None:
        began.append(name)
        try:
            await asyncio.Event().wait()
        finally:
            ended.append(name)

    outside = asyncio.create_task(_turns.in_slot(slots, 0.01, lambda: forever("outside")))
    await asyncio.sleep(0.05)  # given its slot back: running outside it
    inside = asyncio.create_task(_turns.in_slot(slots, 60, lambda: forever("inside")))
    waiting = asyncio.create_task(_turns.in_slot(slots, 60, lambda: forever("waiting")))
    await asyncio.sleep(0.01)
    for task in (outside, inside, waiting):
        task.cancel()
    results = await asyncio.gather(outside, inside, waiting, return_exceptions=True)
    assert all(isinstance(result, asyncio.CancelledError) for result in results)
    assert began == ["outside", "inside"]
    assert sorted(ended) == ["inside", "outside"]
    assert asyncio.all_tasks() == {asyncio.current_task()}
    assert not slots.locked()


async def test_poll_timeout_reports_a_server_that_never_answers_and_shows_the_others(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A server that accepts connections and never answers would hold poll for the library's
    own timeouts (30 s an attempt, four attempts); with --timeout it is one row at the deadline,
    and the healthy server's jobs are all there (a guard, not a timing, stops a hanging run)."""
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    async with hung_then_up(tmp_path) as (targets, healthy):
        argv = ("poll", "--targets", str(targets), "--timeout", "2s")
        result = await asyncio.wait_for(run_in_thread(capsys, *argv, "--json"), HANG_GUARD)
        fake_terminal_stderr(monkeypatch)
        table = await asyncio.wait_for(run_in_thread(capsys, *argv), HANG_GUARD)
    assert result.code == 1, result.err
    rows = json.loads(result.out)
    assert [row for row in rows if row["error"] is not None] == [
        dict.fromkeys(JSON_KEYS) | {"server": "hung", "error": "no answer within 2s"}
    ]
    expected = expected_rows(healthy)
    jobs = json.dumps([row for row in rows if row["error"] is None])
    check_json_rows(jobs, expected, "up", expected_health(healthy))
    assert table.code == 1, table.err
    check_table(table.out, expected, servers=dict.fromkeys(expected, "up"))
    assert table_rows(table.out, "Could not be read") == [["hung", "(whole server)", "no answer within 2s"]]
    summary = summary_line(table.out)
    assert summary.startswith(f"{len(expected)} jobs on 2 tenants of 2 servers: ")
    assert summary.endswith("; 1 server could not be read")
    progress = ANSI.sub("", table.err)
    assert re.search(r"Listing organizations.*2/2\s+1 failed", progress), progress
    assert re.search(r"Polling tenants.*2/2\s+0 failed", progress), progress


async def test_poll_timeout_reports_each_tenant_whose_jobs_never_came(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A server that lists its organizations and never answers their job listings: at the
    deadline each of its tenants is a row of its own (named, with its id), the other server's
    jobs are shown, and the progress counts the tenants that did not answer as failed."""
    stalled, healthy = (
        Simulator(small_config(seed=28, organizations=2)),
        Simulator(small_config(seed=29, organizations=1)),
    )
    names = {org["id"]: org["name"] for org in stalled.organizations_wire()}
    release = asyncio.Event()
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    try:
        async with (
            serve(holding_jobs(create_app(simulator=stalled), release)) as stalled_port,
            serve(create_app(simulator=healthy)) as port,
        ):
            targets = write_targets(
                tmp_path / "targets.toml",
                server_table("stalled", f"http://127.0.0.1:{stalled_port}", "VBO_PASSWORD")
                + server_table("up", f"http://127.0.0.1:{port}", "VBO_PASSWORD"),
            )
            argv = ("poll", "--targets", str(targets), "--timeout", "2s")
            result = await asyncio.wait_for(run_in_thread(capsys, *argv, "--json"), HANG_GUARD)
            fake_terminal_stderr(monkeypatch)
            table = await asyncio.wait_for(run_in_thread(capsys, *argv), HANG_GUARD)
            release.set()
    finally:
        release.set()
    assert result.code == 1, result.err
    rows = json.loads(result.out)
    failed = [row for row in rows if row["error"] is not None]
    assert failed == [
        dict.fromkeys(JSON_KEYS)
        | {"server": "stalled", "organization": name, "organization_id": org, "error": "no answer within 2s"}
        for org, name in sorted(names.items(), key=lambda item: item[1].casefold())
    ]
    expected = expected_rows(healthy)
    check_json_rows(json.dumps([row for row in rows if row["error"] is None]), expected, "up")
    assert table.code == 1, table.err
    check_table(table.out, expected, servers=dict.fromkeys(expected, "up"))
    assert sorted(row[:3] for row in table_rows(table.out, "Could not be read")) == sorted(
        ["stalled", name, "no answer within 2s"] for name in names.values()
    )
    assert summary_line(table.out).endswith("; 2 tenants could not be read")
    progress = ANSI.sub("", table.err)
    assert re.search(r"Listing organizations.*2/2\s+0 failed", progress), progress
    assert re.search(r"Polling tenants.*3/3\s+2 failed", progress), progress


async def test_poll_timeout_in_a_real_process(tmp_path: Path) -> None:
    """As a real process: the output is one valid JSON array, the hung server's row included,
    exit 1, and nothing but the rows is printed."""
    healthy = Simulator(small_config(seed=30, organizations=1))
    async with silent_server() as silent, serve(create_app(simulator=healthy)) as port:
        targets = write_targets(
            tmp_path / "targets.toml",
            server_table("hung", silent, "VBO_PASSWORD")
            + server_table("up", f"http://127.0.0.1:{port}", "VBO_PASSWORD"),
        )
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "vbo_async",
            "poll",
            "--targets",
            str(targets),
            "--timeout",
            "2s",
            "--json",
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=tmp_path,
            env=child_environment(VBO_PASSWORD="admin"),
        )
        try:
            out, err = await asyncio.wait_for(process.communicate(), HANG_GUARD)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    assert process.returncode == 1, err
    assert err == b""
    rows = json.loads(out)
    assert [row for row in rows if row["error"] is not None] == [
        dict.fromkeys(JSON_KEYS) | {"server": "hung", "error": "no answer within 2s"}
    ]
    check_json_rows(json.dumps([row for row in rows if row["error"] is None]), expected_rows(healthy), "up")


async def test_poll_at_its_deadline_leaves_no_task_behind_and_logs_out(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """At the deadline every pipeline is cancelled and waited for: no task of the library is
    left running, and every client that signed in still signs out."""
    stalled = Simulator(small_config(seed=31, organizations=2))
    release = asyncio.Event()
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    try:
        async with (
            silent_server() as silent,
            serve(holding_jobs(create_app(simulator=stalled), release)) as port,
        ):
            targets = write_targets(
                tmp_path / "targets.toml",
                server_table("hung", silent, "VBO_PASSWORD")
                + server_table("stalled", f"http://127.0.0.1:{port}", "VBO_PASSWORD"),
            )
            before = asyncio.all_tasks()
            report = await asyncio.wait_for(
                _flows.poll(targets, 4, give_up_after=dt.timedelta(seconds=1)), HANG_GUARD
            )
            left = [task for task in asyncio.all_tasks() - before if _runs_library_code(task)]
            release.set()
    finally:
        release.set()
    assert left == []
    assert [(row.server, row.organization, row.error) for row in report.errors] == [
        ("hung", None, "no answer within 1s"),
        *sorted(
            (("stalled", org["name"], "no answer within 1s") for org in stalled.organizations_wire()),
            key=lambda row: (row[1] or "").casefold(),
        ),
    ]
    assert report.outcome is Outcome.UNREADABLE
    assert stalled.stats.token_requests == {"password": 1}
    assert stalled.stats.logouts == {"v8": 1}


def _runs_library_code(task: asyncio.Task[Any]) -> bool:
    """Whether ``task`` runs code of vbo_async itself (not of its simulator)."""
    code = getattr(task.get_coro(), "cr_code", None)
    where = Path(code.co_filename) if code is not None else None
    return where is not None and "vbo_async" in where.parts and "simulator" not in where.parts


HUNG_HOST = "vbo.unanswered.test"


def run_during_a_hung_lookup(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path | None, *argv: str
) -> Result:
    """``vbo-async *argv --targets FILE`` for a targets file naming one server whose name lookup
    never ends (a DNS server that does not answer: the lookup runs in a thread, which cancelling
    cannot stop); without ``tmp_path``, ``vbo-async *argv`` (naming `HUNG_HOST` itself). Asserts
    that the command ended while the lookup still hung, then returns its result."""
    release = threading.Event()
    looked_up = threading.Event()
    real = socket.getaddrinfo

    def lookup(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == HUNG_HOST:
            looked_up.set()
            release.wait()
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", lookup)
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    if tmp_path is not None:
        targets = write_targets(
            tmp_path / "t.toml", server_table("dns", f"https://{HUNG_HOST}:4443", "VBO_PASSWORD")
        )
        argv = (*argv, "--targets", str(targets))
    results: list[Result] = []
    command = threading.Thread(target=lambda: results.append(run(capsys, *argv)), daemon=True)
    try:
        command.start()
        command.join(HANG_GUARD)
        ended_during_the_lookup = not command.is_alive()
    finally:
        release.set()
        command.join(HANG_GUARD)
    assert looked_up.is_set()
    assert ended_during_the_lookup
    (result,) = results
    return result


def test_a_name_lookup_that_hangs_does_not_hold_poll_past_its_timeout(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """poll ends at its --timeout all the same instead of waiting for the lookup's thread."""
    result = run_during_a_hung_lookup(capsys, monkeypatch, tmp_path, "poll", "--timeout", "2s")
    assert result.code == 1
    assert table_rows(result.out, "Could not be read") == [["dns", "(whole server)", "no answer within 2s"]]
    assert (
        summary_line(result.out) == "0 jobs on 0 tenants: 0 critical, 0 warning; 1 server could not be read"
    )


# --- jobs and organizations --timeout, as poll's -------------------------------------------------------


def one_server_args(command: str, url: str, *extra: str) -> list[str]:
    """``jobs --org contoso`` or ``organizations`` against ``url``."""
    if command == "organizations":
        return ["organizations", "--server", url, "--username", "admin", *extra]
    return jobs_args(url, "contoso", *extra)


@pytest.mark.parametrize("command", ["jobs", "organizations"])
async def test_jobs_and_organizations_timeout_give_up_on_a_server_that_never_answers(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    """``--timeout`` on the commands of one server, as poll's: a server that accepts connections
    and never answers held them for the library's own time limits (about 2 minutes); at the
    deadline it is the failure poll's row says (``no answer within 2s``), exit 1, and with
    --json the failure object (a guard, not a timing, stops a hanging run)."""
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    async with silent_server() as silent:
        argv = one_server_args(command, silent, "--timeout", "2s")
        table = await asyncio.wait_for(run_in_thread(capsys, *argv), HANG_GUARD)
        as_json = await asyncio.wait_for(run_in_thread(capsys, *argv, "--json"), HANG_GUARD)
    assert error_line(table) == "vbo-async: error: no answer within 2s"
    line, rows = json_failure(as_json, ORGANIZATION_KEYS if command == "organizations" else JSON_KEYS)
    assert line == "vbo-async: error: no answer within 2s"
    if command == "organizations":
        assert rows == [{"id": None, "name": None, "error": "no answer within 2s"}]
    else:
        assert rows == [
            dict.fromkeys(JSON_KEYS)
            | {"server": silent, "organization": "contoso", "error": "no answer within 2s"}
        ]


@pytest.mark.parametrize("command", ["jobs", "organizations"])
async def test_jobs_and_organizations_timeout_leave_what_answers_in_time_alone(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    simulator: Simulator,
    http_url: str,
    org_id: str,
    command: str,
) -> None:
    """A server that answers within the --timeout is read as without it (a number alone being
    seconds, as for poll and check), and still signed out of."""
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    without = await run_in_thread(capsys, *json_command(command, http_url, org_id)[0])
    within = await run_in_thread(capsys, *json_command(command, http_url, org_id)[0], "--timeout", "50")
    assert without.code == within.code == 0, within.err
    assert within.out == without.out
    assert json.loads(within.out)
    assert simulator.stats.logouts == {"v8": 2}


@pytest.mark.parametrize("command", ["jobs", "organizations"])
async def test_jobs_and_organizations_timeout_counts_from_the_command_s_start(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    simulator: Simulator,
    http_url: str,
    org_id: str,
    command: str,
) -> None:
    """``--timeout`` bounds the whole run, as poll's and check's: counted from when the process
    began (its entry point gives `main` that moment), not from after the modules were imported
    and the password read. A run whose limit was spent before it could ask asks nothing."""
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    argv = [*json_command(command, http_url, org_id)[0], "--timeout", "5"]
    asked = simulator.stats.requests
    code = await asyncio.to_thread(functools.partial(main, argv, started=time.monotonic() - 10))
    captured = capsys.readouterr()
    assert code == 1
    assert "no answer within 5s" in captured.err
    assert simulator.stats.requests == asked


@pytest.mark.parametrize("command", ["jobs", "organizations"])
def test_a_name_lookup_that_hangs_does_not_hold_jobs_or_organizations_past_their_timeout(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    """jobs and organizations end at their --timeout as poll does, not when the lookup's
    thread ends."""
    argv = one_server_args(command, f"https://{HUNG_HOST}:4443", "--timeout", "2s")
    result = run_during_a_hung_lookup(capsys, monkeypatch, None, *argv)
    assert error_line(result) == "vbo-async: error: no answer within 2s"


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


ORGANIZATIONS = (sys.executable, "-m", "vbo_async", "organizations")


def served_url(line: str) -> str:
    match = re.search(r"(https?://127\.0\.0\.1:\d+) \(API ", line)
    assert match, line
    return match.group(1)


def served_port(line: str) -> int:
    return int(served_url(line).rsplit(":", 1)[1])


async def test_simulate_serves_http_until_interrupted(tmp_path: Path) -> None:
    port = free_port()
    process, lines = await start_simulate(
        tmp_path, "--port", str(port), "--seed", "31", "--organizations", "4"
    )
    try:
        assert lines == [lines[-1]]
        assert served_port(lines[-1]) == port
        assert lines[-1].startswith(
            f"Serving the VB365 simulator at http://127.0.0.1:{port} (API v1, v6, v7, v8; user 'admin'"
        )
        # One attempt, no retries: the server listens by the time it says "Serving".
        once = RetryPolicy(attempts=1)
        async with VBOClient(
            f"http://127.0.0.1:{port}", username="admin", password="admin", retry=once
        ) as vbo:
            organizations = await vbo.organizations()
    finally:
        _, err = await stop(process)
    expected = Simulator(SimulatorConfig(seed=31, organizations=4))
    assert [org.id for org in organizations] == expected.organization_ids()
    assert [org.name for org in organizations] == [org["name"] for org in expected.organizations_wire()]
    assert process.returncode == 0
    assert "Traceback" not in err


def test_simulate_serves_with_stdout_closed(tmp_path: Path) -> None:
    """``vbo-async simulate >&-`` (started in the background, stdout closed): uvicorn's log
    formatters asked the missing stdout whether it is a terminal, an internal error before it
    served. It serves (no banner), and SIGTERM stops it with 0."""
    import time

    port = free_port()
    simulate = [sys.executable, "-m", "vbo_async", "simulate", "--port", str(port), "--organizations", "1"]
    process = subprocess.Popen(
        ["/bin/sh", "-c", 'exec "$@" >&-', "sh", *simulate],
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=child_environment(),
    )
    with reaped(process):
        while process.poll() is None:  # until it listens, or ends
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)):
                break
            time.sleep(0.05)
        assert process.poll() is None, process.communicate(timeout=HANG_GUARD)[1]
        response = httpx.get(f"http://127.0.0.1:{port}/v8/Organizations")
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=HANG_GUARD)
    assert response.status_code == 401  # served: no token given
    assert (process.returncode, err) == (0, "")


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
async def test_simulate_stops_on_ctrl_c_with_a_request_in_flight(tmp_path: Path, how: signal.Signals) -> None:
    """Ctrl-C (or SIGTERM) while a request waits out ``--latency``: the simulator stops at once
    (exit 0, no traceback, no log line), not when that request's answer would have been sent
    (uvicorn's graceful shutdown waits for it without limit: here an hour)."""
    process, lines = await start_simulate(
        tmp_path, "--port", "0", "--organizations", "1", "--latency", "3600"
    )
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", served_port(lines[-1]))
        writer.write(b"GET /v8/Organizations HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(0.5)  # not an assertion: lets the server read the request first
        _, err = await stop(process, how)
    finally:
        if process.returncode is None:  # still waiting for its request: not left behind
            process.kill()
            await process.wait()
    writer.close()
    await reader.read()  # a 500, or nothing: the request was cancelled
    assert process.returncode == 0
    assert err == ""


@pytest.mark.parametrize("in_flight", [False, True], ids=["idle", "request-in-flight"])
async def test_simulate_stops_on_ctrl_c_pressed_twice_without_a_traceback(
    tmp_path: Path, in_flight: bool
) -> None:
    """A second Ctrl-C while the simulator stops (idle, or a request waiting out ``--latency``)
    ends it with 0 and nothing on stderr: it printed about 30 lines of a `KeyboardInterrupt`
    becoming an `asyncio.CancelledError` in Starlette's lifespan, which the simulator does not use."""
    process, lines = await start_simulate(
        tmp_path, "--port", "0", "--organizations", "1", "--latency", "3600" if in_flight else "0"
    )
    try:
        if in_flight:
            reader, writer = await asyncio.open_connection("127.0.0.1", served_port(lines[-1]))
            writer.write(b"GET /v8/Organizations HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            await writer.drain()
            await asyncio.sleep(0.5)  # not an assertion: lets the server read the request first
        else:
            await asyncio.sleep(0.3)  # not an assertion: the server loop is running
        process.send_signal(signal.SIGINT)
        await asyncio.sleep(0.05 if in_flight else 0.005)
        _, err = await stop(process, signal.SIGINT)
    finally:
        if process.returncode is None:  # not left behind
            process.kill()
            await process.wait()
    if in_flight:
        writer.close()
        await reader.read()
    assert (process.returncode, err) == (0, "")


async def test_simulate_tls_prints_the_ca_bundle_and_the_cli_reads_the_printed_url(tmp_path: Path) -> None:
    process, lines = await start_simulate(tmp_path, "--port", "0", "--tls", "--organizations", "2")
    try:
        ca_lines = [line for line in lines if line.startswith("CA bundle")]
        assert len(ca_lines) == 1
        ca = Path(ca_lines[0].rsplit(": ", 1)[1])
        assert await asyncio.to_thread(ca.is_file)
        assert ca.is_relative_to(tmp_path)
        url = served_url(lines[-1])
        assert served_port(lines[-1]) != 0
        base = url
        async with VBOClient(base, username="admin", password="admin", verify=ca) as vbo:
            organizations = await vbo.organizations()
        async with VBOClient(base, username="admin", password="admin") as vbo:
            with pytest.raises(TransportError, match="certificate"):
                await vbo.organizations()
        # The URL exactly as printed, with the CA bundle as printed, in a real process.
        listed = await asyncio.to_thread(
            subprocess.run,
            [*ORGANIZATIONS, "--server", url, "--username", "admin", "--ca-bundle", str(ca), "--json"],
            capture_output=True,
            text=True,
            env=child_environment(VBO_PASSWORD="admin"),
            timeout=HANG_GUARD,
            check=False,
        )
    finally:
        _, err = await stop(process, signal.SIGTERM)
    wanted = Simulator(SimulatorConfig(organizations=2))
    assert [org.id for org in organizations] == wanted.organization_ids()
    assert listed.returncode == 0, listed.stderr
    assert {org["id"] for org in json.loads(listed.stdout)} == set(wanted.organization_ids())
    assert process.returncode == 0  # SIGTERM stops the simulator cleanly...
    assert "Traceback" not in err
    assert not ca.parent.exists()  # ...and removes its TLS key and certificates


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
async def test_simulate_s_v1_hrefs_name_the_served_url(tmp_path: Path, tls: bool) -> None:
    """v1 hrefs are absolute: over ``vbo-async simulate`` they name the URL it serves (the
    port it chose, ``http`` without ``--tls``), so a script following ``_links`` reaches it;
    they named ``https://vbo-sim.east.local:4443``, a host no script can reach."""
    options = ("--tls",) if tls else ()
    process, lines = await start_simulate(tmp_path, "--port", "0", "--organizations", "2", *options)
    try:
        url = served_url(lines[-1])
        ca = next((line.rsplit(": ", 1)[1] for line in lines if line.startswith("CA bundle")), None)
        verify: Any = ssl.create_default_context(cafile=ca) if ca is not None else True
        async with httpx.AsyncClient(verify=verify) as client:
            form = {"grant_type": "password", "username": "admin", "password": "admin"}
            token = (await client.post(f"{url}/v1/Token", data=form)).json()["access_token"]
            auth = {"Authorization": f"Bearer {token}"}
            organizations = (await client.get(f"{url}/v1/Organizations", headers=auth)).json()
            href = organizations[0]["_links"]["jobs"]["href"]
            assert href.startswith(f"{url}/v1/Organizations/")
            jobs = await client.get(href, headers=auth)
            assert jobs.status_code == 200
            session_href = jobs.json()[0]["_links"]["jobsessions"]["href"]
            page = (await client.get(f"{session_href}?limit=1", headers=auth)).json()
            assert all(link["href"].startswith(f"{url}/v1/") for link in page["_links"].values())
    finally:
        await stop(process, signal.SIGTERM)


@pytest.mark.parametrize(
    ("host", "named"),
    [
        ("::1", ("::1",)),
        ("10.1.2.3", ("10.1.2.3",)),
        ("vbo01.lab", ("vbo01.lab",)),
        ("0.0.0.0", ()),
        ("::", ()),
    ],
)
def test_simulate_s_certificate_names_the_host_it_listens_on(host: str, named: tuple[str, ...]) -> None:
    """``simulate --tls --host H`` prints ``https://H:PORT``: the certificate names H too (it
    named 127.0.0.1 and localhost only, so ``--host ::1`` printed a URL no client verifies);
    an address of every interface is no name, links there say localhost."""
    from vbo_async._cli._simulate import _certificate_hosts

    assert _certificate_hosts(host) == named


@pytest.mark.parametrize("host", ["0.0.0.0", "::", ""])  # "": every IPv4 interface (it could not listen)
async def test_simulate_on_every_address_prints_a_url_its_certificate_names(
    tmp_path: Path, host: str
) -> None:
    """``simulate --tls --host 0.0.0.0`` (or ``::``) prints the URL its v1 links name,
    ``https://localhost:PORT``, which its CA bundle verifies; it printed ``https://0.0.0.0:PORT``
    (``https://[::]:PORT``), which the certificate (127.0.0.1 and localhost) does not name."""
    process, lines = await start_simulate(tmp_path, "--port", "0", "--tls", "--host", host)
    try:
        match = re.search(r"at (https://localhost:(\d+)) \(API ", lines[-1])
        assert match, lines[-1]
        url, port = match[1], match[2]
        ca = next(line.rsplit(": ", 1)[1] for line in lines if line.startswith("CA bundle"))
        async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=ca)) as client:
            health = await client.get(f"{url}/v8/Health")
            form = {"grant_type": "password", "username": "admin", "password": "admin"}
            token = (await client.post(f"{url}/v1/Token", data=form)).json()["access_token"]
            organizations = await client.get(
                f"{url}/v1/Organizations", headers={"Authorization": f"Bearer {token}"}
            )
    finally:
        await stop(process, signal.SIGTERM)
    assert health.status_code == 200
    assert organizations.json()[0]["_links"]["self"]["href"].startswith(f"https://localhost:{port}/v1/")


async def test_simulate_serves_a_server_without_organizations(tmp_path: Path) -> None:
    """``--organizations 0``: a server with nothing to back up yet (a fresh install), which a
    script must handle; it was refused though the simulator holds it (SimulatorConfig allows 0)."""
    process, lines = await start_simulate(tmp_path, "--port", "0", "--organizations", "0")
    try:
        async with VBOClient(served_url(lines[-1]), username="admin", password="admin") as vbo:
            organizations = await vbo.organizations()
            jobs = await vbo.jobs()
            repositories = await vbo.backup_repositories()
    finally:
        await stop(process, signal.SIGTERM)
    assert organizations == []
    assert jobs == []
    assert repositories
    assert process.returncode == 0


async def test_simulate_serves_the_api_versions_asked_for(tmp_path: Path) -> None:
    # Versions as a user may write them: any case, spaces after the commas.
    process, lines = await start_simulate(tmp_path, "--port", "0", "--api-versions", "V1, v6")
    port = served_port(lines[-1])
    try:
        assert "(API v1, v6;" in lines[-1]
        async with VBOClient(f"http://127.0.0.1:{port}", username="admin", password="admin") as vbo:
            await vbo.organizations()
            chosen = vbo.api_version
    finally:
        await stop(process)
    assert chosen == "v6"  # auto: the newest the server serves


async def test_simulate_s_tokens_expire_after_the_lifetime_asked_for(tmp_path: Path) -> None:
    """``--token-lifetime`` is each access token's ``expires_in``, and the simulator refuses it
    after that; ``--refresh-token-lifetime`` is passed on as well."""
    process, lines = await start_simulate(
        tmp_path, "--port", "0", "--token-lifetime", "1", "--refresh-token-lifetime", "7"
    )
    port = served_port(lines[-1])
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            form = {"grant_type": "password", "username": "admin", "password": "admin"}
            granted = (await client.post("/v8/Token", data=form)).json()
            bearer = {"Authorization": f"Bearer {granted['access_token']}"}
            assert granted["expires_in"] == 1
            await asyncio.sleep(1.1)  # the simulator runs in its own process, on the real clock
            expired = await client.get("/v8/Organizations", headers=bearer)
    finally:
        await stop(process)
    assert (expired.status_code, expired.content) == (401, b"")


def test_simulate_passes_the_token_lifetimes_on(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: dict[str, Any] = {}
    monkeypatch.setattr(_app, "serve_simulator", lambda **options: seen.update(options) or 0)
    assert run(capsys, "simulate", "--token-lifetime", "90", "--refresh-token-lifetime", "600").code == 0
    assert (seen["token_lifetime"], seen["refresh_token_lifetime"]) == (90.0, 600.0)
    assert run(capsys, "simulate").code == 0
    assert (seen["token_lifetime"], seen["refresh_token_lifetime"]) == (3600.0, None)


def test_simulate_runs_the_schedules_when_asked(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: dict[str, Any] = {}
    monkeypatch.setattr(_app, "serve_simulator", lambda **options: seen.update(options) or 0)
    assert run(capsys, "simulate", "--run-schedules").code == 0
    assert seen["run_schedules"] is True
    assert run(capsys, "simulate").code == 0
    assert seen["run_schedules"] is False


def test_simulate_s_configuration_runs_the_schedules_when_asked(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import vbo_async.simulator

    made: list[dict[str, Any]] = []

    def config(**fields: Any) -> Any:
        made.append(fields)
        raise vbo_async.ConfigError("stop here")  # before anything listens

    monkeypatch.setattr(vbo_async.simulator, "SimulatorConfig", config)
    assert run(capsys, "simulate", "--port", "0", "--run-schedules").code == 2
    assert [fields["run_schedules"] for fields in made] == [True]


def test_simulate_refuses_a_token_lifetime_of_zero(capsys: pytest.CaptureFixture[str]) -> None:
    line = error_line(run(capsys, "simulate", "--port", "0", "--token-lifetime", "0"), code=2)
    assert "--token-lifetime must be a finite number > 0, got 0.0" in line


@pytest.mark.parametrize("versions", ["v1,v99", "", " , "])
def test_simulate_refuses_an_unknown_api_version(capsys: pytest.CaptureFixture[str], versions: str) -> None:
    """Said as the option, not as the simulator's field (``api_versions must be a non-empty
    tuple of versions``)."""
    line = error_line(run(capsys, "simulate", "--port", "0", "--api-versions", versions), code=2)
    assert line.startswith("vbo-async: error: --api-versions"), line
    assert "api_versions" not in line
    if "v99" not in versions:
        assert "--api-versions must name at least one of v1, v6, v7, v8" in line


@pytest.mark.parametrize(
    ("versions", "named"), [("seed", "seed"), ("latency,v8", "latency"), ("v8,Password", "password")]
)
def test_simulate_s_api_version_error_quotes_the_value_as_given(
    capsys: pytest.CaptureFixture[str], versions: str, named: str
) -> None:
    """A version spelt like a field of the configuration is quoted as the user wrote it
    (lower-cased, as versions are read): it was rewritten as an option, ``'--seed' is not one
    of ...``, as if the user had named the option ``--seed``."""
    line = error_line(run(capsys, "simulate", "--port", "0", "--api-versions", versions), code=2)
    assert line == f"vbo-async: error: --api-versions: {named!r} is not one of v1, v6, v7, v8"


@pytest.mark.parametrize(
    ("message", "said"),
    [
        ("api_versions: 'seed' is not one of v1", "--api-versions: 'seed' is not one of v1"),
        ("token_lifetime must be <= 10, got 11", "--token-lifetime must be <= 10, got 11"),
        (
            "the sum of error_rate, drop_rate must not exceed 1, got 1.4",
            "the sum of --error-rate, --drop-rate must not exceed 1, got 1.4",
        ),
        ("seed_x must be an int, got 'seed'", "seed_x must be an int, got 'seed'"),
        ("faults must be a Faults instance, got seed", "faults must be a Faults instance, got seed"),
    ],
)
def test_simulate_s_errors_name_the_option_only_where_the_field_is_named(message: str, said: str) -> None:
    """Only the field a configuration error opens with (or its ``the sum of`` list) becomes an
    option; a field's name elsewhere (the value quoted) is left as it is."""
    from vbo_async._cli._simulate import as_option

    fields = ["api_versions", "seed", "token_lifetime", "error_rate", "drop_rate"]
    assert as_option(message, fields) == said


def test_simulate_s_default_versions_are_every_one_the_simulator_serves(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The CLI cannot import the simulator's list without the extra, so it spells it out: the
    option's default, its help and `serve_simulator`'s default must follow the simulator's."""
    from vbo_async._cli import _simulate
    from vbo_async.simulator._config import API_VERSIONS as SERVED

    seen: dict[str, Any] = {}
    monkeypatch.setattr(_app, "serve_simulator", lambda **options: seen.update(options) or 0)
    assert run(capsys, "simulate").code == 0
    assert seen["api_versions"] == SERVED
    default = inspect.signature(_simulate.serve_simulator).parameters["api_versions"].default
    assert default == SERVED
    option = next(p for p in _app.simulate.params if p.name == "api_versions")
    assert f"any of {', '.join(SERVED)})" in (option.help or "")


async def test_simulate_with_faults_still_serves_every_job(tmp_path: Path) -> None:
    process, lines = await start_simulate(
        tmp_path,
        "--port",
        "0",
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
    port = served_port(lines[-1])
    expected = Simulator(SimulatorConfig(seed=32, organizations=5))
    try:
        async with VBOClient(
            f"http://127.0.0.1:{port}", username="admin", password="admin", retry=NO_WAIT
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


async def test_simulate_cuts_connections_without_printing_tracebacks(tmp_path: Path) -> None:
    """Dropped and truncated answers are faults asked for, not server errors: the connections
    are cut, and nothing about them is logged (uvicorn logged each as a crash with its traceback)."""
    process, lines = await start_simulate(
        tmp_path, "--port", "0", "--drop-rate", "0.5", "--truncate-rate", "0.5", "--fault-seed", "3"
    )
    port = served_port(lines[-1])
    cut = 0
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            for _ in range(8):
                with contextlib.suppress(httpx.RemoteProtocolError):
                    await client.get("/v8/Health")
                    continue
                cut += 1
    finally:
        _, err = await stop(process)
    assert cut == 8
    assert process.returncode == 0
    assert "Traceback" not in err
    assert "Exception in ASGI application" not in err


def test_simulate_on_a_busy_port_is_one_error(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        line = error_line(run(capsys, "simulate", "--host", "127.0.0.1", "--port", str(port)))
    assert f"127.0.0.1:{port}" in line


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--error-rate", "1.5"], "--error-rate must be between 0 and 1"),
        (
            ["--error-rate", "0.7", "--drop-rate", "0.7"],
            "the sum of --error-rate, --rate-limit-rate, --drop-rate",
        ),
        (["--latency", "-1"], "--latency"),
        (["--revoke-every", "0"], "--revoke-every must be a finite number > 0"),
        (["--revoke-every", "-5"], "--revoke-every must be a finite number > 0"),
        (["--latency", "soon"], "'--latency'"),
    ],
)
def test_simulate_refuses_bad_fault_options(
    capsys: pytest.CaptureFixture[str], options: list[str], expected: str
) -> None:
    line = error_line(run(capsys, "simulate", "--port", str(closed_port()), *options), code=2)
    assert expected in line


# --- interrupts ------------------------------------------------------------------------------------------


def test_ctrl_c_is_exit_130(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    async def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(_flows, "demo", interrupted)
    result = run(capsys, "demo")
    assert result.code == 130
    assert result.out == ""
    assert result.err == "vbo-async: interrupted\n"


def test_sigint_of_a_real_process_waiting_on_a_server_is_exit_130(tmp_path: Path) -> None:
    """A server that accepts the connection and never answers; SIGINT once the CLI is waiting."""
    with socket.create_server(("127.0.0.1", 0)) as silent:
        silent.settimeout(HANG_GUARD)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        process = subprocess.Popen(
            [sys.executable, "-m", "vbo_async", *jobs_args(url, "org", "--json")],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
            env=child_environment(VBO_PASSWORD="admin"),
        )
        with reaped(process):
            connection, _ = silent.accept()  # the CLI sent its token request and waits
            with connection:
                process.send_signal(signal.SIGINT)
                out, err = process.communicate(timeout=HANG_GUARD)
    assert process.returncode == 130
    assert out == ""
    assert err == "vbo-async: interrupted\n"


_SIGTERM_CHILD = """
import asyncio, os, signal, time
from vbo_async._cli._threads import Terminated, run_unheld

steps = []

async def work():
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        try:  # the rest of this callback runs whole: the signal is the loop's to handle
            deadline = time.monotonic() + 0.2
            while time.monotonic() < deadline:
                pass
            steps.append("callback finished")
        except Terminated:
            steps.append("interrupted mid-callback")
            raise
        await asyncio.sleep(30)
    except asyncio.CancelledError:
        steps.append("cancelled")
        raise
    finally:
        steps.append("cleaned")

try:
    run_unheld(work())
except Terminated:
    steps.append("terminated")
print(",".join(steps), signal.getsignal(signal.SIGTERM) is signal.SIG_DFL)
"""


def test_sigterm_cancels_the_work_as_ctrl_c_does_then_raises_terminated() -> None:
    """SIGTERM under `run_unheld` is handled in the event loop, as `asyncio.Runner` handles
    Ctrl-C: the work is cancelled (its cleanup runs), then `Terminated` is raised, and SIGTERM
    has its default action again. Raised from a plain signal handler it could land in the middle
    of any callback. In a child process: a SIGTERM not handled would end the test run."""
    done = subprocess.run(
        [sys.executable, "-c", _SIGTERM_CHILD],
        capture_output=True,
        text=True,
        timeout=HANG_GUARD,
        env=child_environment(),
    )
    expected = "callback finished,cancelled,cleaned,terminated True\n"
    assert (done.returncode, done.stdout) == (0, expected), done.stderr


@pytest.mark.parametrize("command", ["poll", "check"])
def test_sigterm_of_a_real_process_on_a_terminal_ends_it_as_ctrl_c_does(tmp_path: Path, command: str) -> None:
    """``timeout 30 vbo-async poll ...`` (or ``kill``) on a terminal: SIGTERM killed the process
    where it stood, its progress display left on the screen with the terminal's cursor hidden,
    no client logged out. It ends as Ctrl-C does, everything put away, but says so: ``vbo-async:
    terminated`` and 143, 128 + SIGTERM as a shell reports a process it ended (check: UNKNOWN, 3)."""
    import pty

    with socket.create_server(("127.0.0.1", 0)) as silent:
        silent.settimeout(HANG_GUARD)
        targets = write_targets(
            tmp_path / "targets.toml",
            server_table("silent", f"http://127.0.0.1:{silent.getsockname()[1]}", "VBO_PASSWORD"),
        )
        controller, terminal = pty.openpty()  # stderr a terminal: the progress display is shown
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "vbo_async", command, "--targets", str(targets)],
                stdout=subprocess.PIPE,
                stderr=terminal,
                text=True,
                cwd=tmp_path,
                env=child_environment(VBO_PASSWORD="admin"),
            )
            os.close(terminal)
            with reaped(process):
                connection, _ = silent.accept()  # the command sent its token request and waits
                with connection:
                    process.send_signal(signal.SIGTERM)
                    out, _ = process.communicate(timeout=HANG_GUARD)
            shown = b""
            with contextlib.suppress(OSError):  # EIO once the process and its terminal are gone
                while chunk := os.read(controller, 65536):
                    shown += chunk
        finally:
            os.close(controller)
    if command == "check":
        assert (process.returncode, out) == (3, "VB365 UNKNOWN - terminated\n")
    else:
        assert (process.returncode, out) == (143, "")
        assert shown.endswith(b"vbo-async: terminated\r\n")
        assert b"\x1b[?25l" in shown  # the progress display hid the cursor
    if b"\x1b[?25l" in shown:  # it is shown again
        assert shown.rindex(b"\x1b[?25h") > shown.rindex(b"\x1b[?25l")


@pytest.mark.parametrize("command", ["serve", "poll"])
def test_sigterm_at_the_password_prompt_restores_the_terminals_echo(tmp_path: Path, command: str) -> None:
    """``kill`` while a command waits at its password prompt, which turned the terminal's echo
    off: ``serve`` read its passwords before SIGTERM was its own, so the signal killed it there
    and the terminal stayed without echo (whatever was typed next, unseen). It ends as the other
    commands do at their prompt: echo restored, ``vbo-async: terminated``, 143 (serve, which
    SIGTERM stops at any moment, 0)."""
    import pty
    import termios

    targets = write_targets(
        tmp_path / "targets.toml",
        server_table("east", f"http://127.0.0.1:{closed_port()}", "VBO_UNSET_PASSWORD"),
    )
    listen = ["--listen", "127.0.0.1:0"] if command == "serve" else []
    controller, terminal = pty.openpty()
    try:
        process = prompting_child(tmp_path, [command, "--targets", str(targets), *listen], terminal)
        with reaped(process):
            assert process.stderr is not None
            read_until(process.stderr, b"Password for east (admin): ")
            assert not termios.tcgetattr(terminal)[3] & termios.ECHO  # the prompt turned it off
            process.send_signal(signal.SIGTERM)
            out, err = process.communicate(timeout=HANG_GUARD)
        echo = bool(termios.tcgetattr(terminal)[3] & termios.ECHO)
    finally:
        os.close(terminal)
        os.close(controller)
    assert (process.returncode, out, err.decode().strip()) == (
        0 if command == "serve" else 143,
        b"",
        "vbo-async: terminated",
    )
    assert echo


ENTRY_POINT = "import sys, _vbo_async_cli; sys.exit(_vbo_async_cli.main())"
"""What the installed ``vbo-async`` script runs (the worktree's, whichever script is installed)."""


@pytest.mark.parametrize("command", ["serve", "poll", "check"])
def test_sigterm_while_the_command_starts_ends_it_as_later(tmp_path: Path, command: str) -> None:
    """SIGTERM once the entry point runs, while the package imports (a service manager stopping
    ``serve`` in its first half second): it killed the process (status -15), where later it ends
    ``serve`` with 0, the other commands with 'terminated' and 143 (check: UNKNOWN 3). The child
    is signalled as soon as it has imported a first module of the package (``-X importtime``)."""
    targets = write_targets(
        tmp_path / "targets.toml", server_table("east", f"http://127.0.0.1:{closed_port()}", "VBO_PASSWORD")
    )
    listen = ["--listen", "127.0.0.1:0"] if command == "serve" else []
    process = subprocess.Popen(
        [sys.executable, "-X", "importtime", "-c", ENTRY_POINT, command, "--targets", str(targets), *listen],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=child_environment(VBO_PASSWORD="admin"),
    )
    with reaped(process):
        assert process.stderr is not None
        for line in process.stderr:  # "import time: self | cumulative | name", as each is imported
            if re.search(r"\|\s+vbo_async\b", line):
                break
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=HANG_GUARD)
    said = [line for line in err.splitlines() if line.strip() and not line.startswith("import time:")]
    if command == "check":
        assert (process.returncode, out) == (3, "VB365 UNKNOWN - terminated\n")
    else:
        assert (process.returncode, said) == (0 if command == "serve" else 143, ["vbo-async: terminated"])


def test_the_commands_sigterm_stops_are_known_before_they_run() -> None:
    """`_vbo_async_cli.terminated` (SIGTERM before the command ran) ends with 0 the commands whose
    exit codes end with 0 on SIGTERM."""
    import _vbo_async_cli

    stopped = {name for name, command in _app.cli.commands.items() if command.exit_codes.terminated == 0}
    assert stopped == {"serve", "simulate"}
    assert stopped == _vbo_async_cli._STOPPED_BY_SIGTERM


# --- logging --------------------------------------------------------------------------------------------


async def test_vbo_async_log_debug_shows_requests_and_no_secret(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    http_url: str,
    org_id: str,
) -> None:
    monkeypatch.setenv("VBO_PASSWORD", "admin-S3cret")
    monkeypatch.setenv("VBO_ASYNC_LOG", "debug")
    before = list(logging.getLogger("vbo_async").handlers)
    result = await run_in_thread(capsys, *jobs_args(http_url, org_id, "--json"))
    assert result.code == 1  # wrong password for the simulator
    assert re.search(rf"^vbo-async: debug: POST {re.escape(http_url)}/v8/Token -> 400", result.err, re.M)
    assert "admin-S3cret" not in result.err
    assert logging.getLogger("vbo_async").handlers == before  # put back as it was


@pytest.mark.parametrize("level", [None, "warning", "info", "debug"])
def test_retry_notes_show_with_vbo_async_log_debug_only(tmp_path: Path, level: str | None) -> None:
    """Retries are the library's debug notes, giving up an info note: a refused connection is one
    error line unless ``VBO_ASYNC_LOG`` asks for more."""
    url = f"http://127.0.0.1:{closed_port()}"
    argv = [sys.executable, "-m", "vbo_async", *jobs_args(url, "org", "--json")]
    env = child_environment(VBO_PASSWORD="admin", **({"VBO_ASYNC_LOG": level} if level else {}))
    completed = subprocess.run(
        argv, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=HANG_GUARD, check=False
    )
    assert completed.returncode == 1
    lines = completed.stderr.splitlines()
    assert lines[-1].startswith("vbo-async: error: cannot connect")
    retrying = [line for line in lines if "retrying in" in line]
    giving_up = [line for line in lines if "giving up after" in line]
    assert all(line.startswith("vbo-async: debug: ") for line in retrying)
    assert all(line.startswith("vbo-async: info: ") for line in giving_up)
    assert bool(retrying) == (level == "debug")
    assert bool(giving_up) == (level in ("info", "debug"))
    if level in (None, "warning"):
        assert lines == lines[-1:]


def test_a_bad_vbo_async_log_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VBO_ASYNC_LOG", "verbose")
    line = error_line(run(capsys, "demo"), code=2)
    assert "VBO_ASYNC_LOG must be one of debug, info, warning" in line


# --- usage, help and exit codes ---------------------------------------------------------------------------


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    result = run(capsys, "--version")
    assert result.code == 0
    assert result.out == f"vbo-async {__version__}\n"


def test_no_command_is_one_usage_error_line(capsys: pytest.CaptureFixture[str]) -> None:
    line = error_line(run(capsys), code=2)
    assert "demo, jobs, organizations, poll, serve, simulate" in line


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["frobnicate"], "No such command 'frobnicate'"),
        (["jobs", "--server", "http://127.0.0.1:1", "--username", "admin"], "Missing option '--org'"),
        (
            [*jobs_args("http://127.0.0.1:1", "o"), "--insecure", "--ca-bundle", __file__],
            "--ca-bundle and --insecure exclude each other",
        ),
        (["demo", "--organizations", "0"], "'--organizations'"),
        (["demo", "--bogus"], ("No such option", "--bogus")),  # click 8.3 quotes it, 8.2 not
        (["poll"], "Missing option '--targets'"),
        (
            ["poll", "--targets", "t.toml", "--timeout", "soon"],
            "Invalid value for '-t' / '--timeout': 'soon' is not",
        ),
        (
            ["poll", "--targets", "t.toml", "--timeout", "0s"],
            "Invalid value for '-t' / '--timeout': '0s' must be",
        ),
        (
            [*jobs_args("http://127.0.0.1:1", "o"), "--timeout", "soon"],
            "Invalid value for '-t' / '--timeout': 'soon' is not",
        ),
        (
            ["organizations", "--server", "http://127.0.0.1:1", "--username", "a", "--timeout", "0"],
            "Invalid value for '-t' / '--timeout': '0' must be",
        ),
        (["simulate", "--port", "70000"], "'--port'"),
        (["organizations", "--server", "http://127.0.0.1:1"], "Missing option '--username'"),
    ],
    ids=[
        "unknown-command",
        "jobs-without-org",
        "insecure-and-ca-bundle",
        "zero-organizations",
        "unknown-option",
        "poll-without-targets",
        "poll-timeout-not-a-duration",
        "poll-timeout-zero",
        "jobs-timeout-not-a-duration",
        "organizations-timeout-zero",
        "port-out-of-range",
        "organizations-without-username",
    ],
)
def test_bad_arguments_are_one_usage_error_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], expected: str | tuple[str, ...]
) -> None:
    line = error_line(run(capsys, *argv), code=2)
    assert all(part in line for part in ((expected,) if isinstance(expected, str) else expected))
    assert line.endswith("--help')")


COMMAND_OPTIONS = {
    "check": ["--targets", "--max-age", "--schedule-aware", "--org", "--timeout", "--concurrency"],
    None: ["--version", "demo", "simulate", "jobs", "organizations", "poll", "check", "serve"],
    "demo": ["--organizations", "--seed", "--concurrency", "--json", "--wide"],
    "simulate": ["--host", "--port", "--tls", "--seed", "--organizations", "--error-rate", "--revoke-every"],
    "jobs": [
        "--server",
        "--username",
        "--password-env",
        "--api-version",
        "--ca-bundle",
        "--insecure",
        "--org",
        "--timeout",
        "--max-age",
        "--schedule-aware",
        "--json",
        "--wide",
    ],
    "organizations": [
        "--server",
        "--username",
        "--password-env",
        "--api-version",
        "--ca-bundle",
        "--insecure",
        "--timeout",
        "--json",
        "--wide",
    ],
    "poll": ["--targets", "--concurrency", "--timeout", "--max-age", "--schedule-aware", "--json", "--wide"],
    "serve": [
        "--targets",
        "--listen",
        "--interval",
        "--timeout",
        "--concurrency",
        "--max-age",
        "--schedule-aware",
    ],
}


@pytest.mark.parametrize("command", list(COMMAND_OPTIONS), ids=str)
def test_help_mentions_every_option_and_an_example(
    capsys: pytest.CaptureFixture[str], command: str | None
) -> None:
    result = run(capsys, *([command] if command else []), "--help")
    assert result.code == 0
    assert result.out.startswith(f"Usage: vbo-async{f' {command}' if command else ''} ")
    for option in COMMAND_OPTIONS[command]:
        assert option in result.out, option
    assert "Example" in result.out
    assert "vbo-async " + (command or "demo") in result.out.split("Example", 1)[1]


def test_top_level_help_documents_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    out = run(capsys, "--help").out
    codes = dict(re.findall(r"^\s+(\d+)\s+(\S.*)$", out.split("Exit codes:", 1)[1], re.M))
    assert set(codes) == {"0", "1", "2", "130", "143"}
    assert "Failed" in codes["0"]
    assert "could not be read" in codes["1"]
    assert "usage" in codes["2"]
    assert "interrupted" in codes["130"]
    assert "SIGTERM" in codes["143"]


def test_top_level_help_says_where_commands_read_the_password(capsys: pytest.CaptureFixture[str]) -> None:
    """VBO_PASSWORD is the default of --password-env only: poll, check and serve read the variable
    each server's password_env names, never VBO_PASSWORD unless it is named there."""
    environment = " ".join(run(capsys, "--help").out.split("Environment:", 1)[1].split())
    assert "VBO_PASSWORD" in environment
    assert "password_env" in environment


def command_params(name: str) -> list[Any]:
    import click

    command = _app.cli.commands[name]
    with click.Context(command) as context:
        return [param for param in command.get_params(context) if "--help" not in param.opts]


@pytest.mark.parametrize("name", sorted(_app.cli.commands))
def test_every_option_has_help_and_shows_its_default(capsys: pytest.CaptureFixture[str], name: str) -> None:
    help_text = " ".join(run(capsys, name, "--help").out.split())
    for param in command_params(name):
        assert param.help, param.name
        unset = param.required or param.default is None or type(param.default).__name__ == "Sentinel"
        if not unset and not getattr(param, "is_flag", False):
            shown = re.escape(f"[default: {param.default}") + r"[;\]]"
            assert re.search(shown, help_text), (param.name, shown)


def test_readme_documents_the_same_exit_codes() -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Command line", 1)[1].split("\n## ", 1)[0]
    general, plugin = section.split("**`check`: a Nagios", 1)
    table = dict(re.findall(r"^\| `(\d+)` \| (.+) \|$", general, re.M))
    assert set(table) == {"0", "1", "2", "130", "143"}
    states = dict(re.findall(r"^\| `(\d)` \| (OK|WARNING|CRITICAL|UNKNOWN) \|", plugin, re.M))
    assert states == {"0": "OK", "1": "WARNING", "2": "CRITICAL", "3": "UNKNOWN"}
    assert "CRITICAL > WARNING > UNKNOWN > OK" in plugin


def option_names(name: str) -> set[str]:
    return {opt for param in command_params(name) for opt in [*param.opts, *param.secondary_opts]}


@pytest.mark.parametrize("name", sorted(_app.cli.commands))
def test_a_commands_help_names_only_its_own_options(capsys: pytest.CaptureFixture[str], name: str) -> None:
    """An option a command's --help tells the user to pass exists on that command."""
    help_text = run(capsys, name, "--help").out
    named = set(re.findall(r"(?<![\w-])--[a-z][a-z-]*[a-z]", help_text)) - {"--help"}
    assert named <= option_names(name), sorted(named - option_names(name))


def test_the_readmes_command_synopsis_names_real_options() -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Command line", 1)[1].split("```", 2)[1]
    synopsis = re.sub(r"\n\s+\[", " [", section)  # continuation lines belong to the command above
    commands = re.findall(r"^vbo-async (\w+) (.*)$", synopsis, re.M)
    assert {command for command, _ in commands} == set(_app.cli.commands)
    for command, line in commands:
        named = set(re.findall(r"(?<![\w-])-{1,2}[a-zA-Z][a-z-]*", line.split("#", 1)[0]))
        assert named <= option_names(command), (command, sorted(named - option_names(command)))


def test_the_monitoring_guides_serve_options_are_serves() -> None:
    guide = (Path(__file__).parents[1] / "docs" / "monitoring.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `(--[a-z-]+)(?: [A-Z:]+)?` \| ([^|]+) \|", guide, re.M)
    params = {param.opts[-1]: param for param in command_params("serve")}  # -t, --timeout: the long
    assert {option for option, _ in rows} == set(params)
    for option, default in rows:
        param = params[option]
        if param.required:
            assert default.strip() == "(required)", option
        elif isinstance(param.default, float):
            assert default.strip() == f"`{param.default:g}`", option
        elif not getattr(param, "is_flag", False) and isinstance(param.default, (int, str)):
            assert default.strip() == f"`{param.default}`", option


# --- simulate's fault flags come from Faults ----------------------------------------------------------


def test_simulate_fault_flags_are_the_faults_fields() -> None:
    from vbo_async._cli._simulate import FAULT_HELP
    from vbo_async.simulator import Faults

    fields = {field.name: field for field in attrs.fields(Faults)}
    own = {"host", "port", "tls", "seed", "organizations", "api_versions"}
    own |= {"token_lifetime", "refresh_token_lifetime", "run_schedules"}
    params = {param.name: param for param in command_params("simulate")}
    assert set(params) - own == set(fields)
    for name, field in fields.items():
        param = params[name]
        assert param.opts == ["--" + name.replace("_", "-")]
        assert param.default == field.default
        assert param.help
    assert params["revoke_every"].type.name == "float"
    assert params["fault_seed"].type.name == "integer"
    assert set(FAULT_HELP) <= set(fields), "help for a field Faults no longer has"


def test_a_new_faults_field_is_a_flag_without_a_cli_change() -> None:
    """A stand-in for `Faults` with one more field of each kind: flags, types, defaults and help
    come from the fields (``metadata["help"]`` first)."""
    import click

    from vbo_async._cli._simulate import fault_options, faults_from

    @attrs.frozen(kw_only=True)
    class MoreFaults:
        latency: float = 0.0
        slow_token_rate: float = attrs.field(default=0.25, metadata={"help": "Share of slow token answers."})
        burst_size: int | None = None
        chaos: bool = False

    seen: list[Any] = []

    @click.command()
    def command(**values: Any) -> None:
        seen.append(faults_from(MoreFaults, values))
        assert values == {}

    command.params.extend(fault_options(MoreFaults))
    flags = [param.opts[0] for param in command.params]
    assert flags == ["--latency", "--slow-token-rate", "--burst-size", "--chaos"]
    help_text = " ".join(command.get_help(click.Context(command, info_name="simulate")).split())
    assert "Share of slow token answers. [default: 0.25]" in help_text
    assert "MoreFaults.burst_size." in help_text
    command.main(["--slow-token-rate", "0.5", "--burst-size", "3", "--chaos"], standalone_mode=False)
    command.main([], standalone_mode=False)
    assert seen == [
        MoreFaults(slow_token_rate=0.5, burst_size=3, chaos=True),
        MoreFaults(),
    ]
    with pytest.raises(TypeError, match="clashes"):
        fault_options(MoreFaults, reserved=frozenset({"latency"}))


# --- organizations by id or name ----------------------------------------------------------------------


def test_match_organization_by_id_or_name() -> None:
    orgs = [
        Organization(id="A1", name="Contoso"),
        Organization(id="B2", name="contoso"),
        Organization(id="C3", name="Fabrikam Ltd"),
        Organization(id="D4", name=None),
    ]
    assert match_organization(orgs, "c3", server="east").id == "C3"  # ids case-insensitively too
    assert match_organization(orgs, "FABRIKAM LTD", server="east").id == "C3"
    assert match_organization(orgs, "D4", server="east").id == "D4"
    with pytest.raises(UnknownOrganization) as ambiguous:
        match_organization(orgs, "CONTOSO", server="east")
    assert str(ambiguous.value) == (
        "'CONTOSO' names 2 organizations on east: Contoso (id A1), contoso (id B2); use an id"
    )
    with pytest.raises(UnknownOrganization, match=r"did you mean 'Fabrikam Ltd'\?"):
        match_organization(orgs, "fabrikam ltx", server="east")
    with pytest.raises(UnknownOrganization, match=r"it has 'Contoso', 'contoso', 'Fabrikam Ltd'$"):
        match_organization(orgs, "Northwind", server="east")
    with pytest.raises(UnknownOrganization, match="it has none"):
        match_organization([], "Northwind", server="east")


def test_a_name_the_server_lists_with_blanks_around_it_is_matched_trimmed() -> None:
    """``--org`` and a targets file's ``organizations`` are trimmed; a server's name was not, so a
    tenant listed as ``"Contoso "`` could be named by nothing (jobs, poll and check alike), and
    the hint offered exactly what had been typed."""
    orgs = [Organization(id="A1", name="Contoso "), Organization(id="B2", name="\tFabrikam")]
    for wanted in ("Contoso", "contoso", "Contoso ", " CONTOSO\t"):
        assert match_organization(orgs, wanted, server="east").id == "A1"
    assert match_organization(orgs, "fabrikam", server="east").id == "B2"
    # The hints compare trimmed names too ("abc " was not close enough to "abd"); they quote
    # the name as the server lists it.
    with pytest.raises(UnknownOrganization) as close:
        match_organization([*orgs, Organization(id="D4", name="ABC ")], "abd", server="east")
    assert str(close.value) == "no organization 'abd' on east: did you mean 'ABC '?"
    with pytest.raises(UnknownOrganization) as twice:
        match_organization([*orgs, Organization(id="C3", name="contoso")], "Contoso", server="east")
    assert str(twice.value) == (
        "'Contoso' names 2 organizations on east: Contoso  (id A1), contoso (id C3); use an id"
    )


def test_an_id_in_another_of_net_s_guid_spellings_is_matched_as_the_library_reads_it() -> None:
    """The library reads an organization id in braces, parentheses or as 32 digits as the GUID
    it names (`id_key`); ``--org`` and a targets file compared the text, so the same id pasted
    from a tool printing braces was "no organization" on every command."""
    guid = "b537c6db-a95a-4792-924c-534976cc8024"
    orgs = [Organization(id=guid, name="coho"), Organization(id="0" * 8 + guid[8:], name="other")]
    for wanted in (f"{{{guid.upper()}}}", f"({guid})", guid.replace("-", ""), f" {guid.upper()} "):
        assert match_organization(orgs, wanted, server="east").id == guid, wanted
    with pytest.raises(UnknownOrganization):
        match_organization(orgs, "{" + guid, server="east")  # half a spelling is none


def test_names_sharing_only_their_domain_are_not_offered_as_close() -> None:
    """Nearly every tenant's name ends in ``.onmicrosoft.com``: compared whole, every one was
    "close" to any unknown tenant, and a server of five was answered with five strangers
    instead of its list."""
    names = ["litware", "northwind", "blueyonder", "relecloud", "contoso"]
    orgs = [Organization(id=f"id-{name}", name=f"{name}.onmicrosoft.com") for name in names]
    with pytest.raises(UnknownOrganization) as unknown:
        match_organization(orgs, "fabrikam.onmicrosoft.com", server="east")
    assert str(unknown.value) == (
        "no organization 'fabrikam.onmicrosoft.com' on east: it has 'blueyonder.onmicrosoft.com', "
        "'contoso.onmicrosoft.com', 'litware.onmicrosoft.com', 'northwind.onmicrosoft.com', "
        "'relecloud.onmicrosoft.com'"
    )
    with pytest.raises(UnknownOrganization, match=r"did you mean 'contoso\.onmicrosoft\.com'\?$"):
        match_organization(orgs, "contosso.onmicrosoft.com", server="east")
    assert close_names("contoso.com", ["contoso.org", "fabrikam.com"]) == ["contoso.org"]
    assert close_names("contoso", ["contosso", "contoso-eu", "fabrikam"]) == [
        "contosso",
        "contoso-eu",
    ]  # closest first


def test_an_empty_targets_path_is_a_usage_error_naming_it(capsys: pytest.CaptureFixture[str]) -> None:
    """``--targets ''`` read as ``.``: "``.``: a directory, not a file"."""
    line = error_line(run(capsys, "poll", "--targets", ""), code=2)
    assert line == (
        "vbo-async: error: Invalid value for '--targets': the path is empty (see 'vbo-async poll --help')"
    )


@pytest.mark.parametrize("suffix", ["/v9", "/v0", "/V10/"])
def test_a_server_url_ending_in_any_other_version_segment_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, suffix: str
) -> None:
    """``/v9`` was kept as a base path: ``/v9/v8/Token`` answered 404, and the server was said
    to "serve none of the API versions" (exit 1), though it served them all."""
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    url = f"http://127.0.0.1:{closed_port()}{suffix}"
    line = error_line(run(capsys, *jobs_args(url, "org")), code=2)
    assert line == (
        f"vbo-async: error: --server ends in {suffix}, which is no API version (v8, v7, v6, v1) "
        "(see 'vbo-async jobs --help')"
    )


def test_a_utf8_password_from_an_ascii_locale_s_environment_is_read_as_utf8() -> None:
    """Without Python's UTF-8 mode, an ASCII locale gives each byte past ASCII as a lone
    surrogate: a UTF-8 password was refused as "not UTF-8" (its file twin was taken)."""
    assert environment_text("p\udcc3\udca9") == "pé"  # the bytes of "pé" in UTF-8
    assert environment_text("pé") == "pé"
    assert environment_text("p\udce9") == "p\udce9"  # a Latin-1 byte: no UTF-8, said later as such


def test_a_command_can_have_its_own_exit_codes(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The seam for a monitoring-plugin command (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN): its usage
    errors and unreadable servers map through its own `ExitCodes`, and it returns its own states."""
    import click

    from vbo_async import ServerError
    from vbo_async._cli._exit import ExitCodes

    plugin = ExitCodes(ok=0, unreadable=3, usage=3, interrupted=3, terminated=3)
    behaviour: dict[str, Any] = {}

    @click.option("--fail", is_flag=True, help="Fail.")
    def check(fail: bool) -> int:
        if fail:
            raise ServerError("down", status_code=503)
        return int(behaviour["state"])

    command = _app.VBOCommand("check", callback=check, params=[], exit_codes=plugin)
    command.params.extend(getattr(check, "__click_params__", []))
    monkeypatch.setitem(_app.cli.commands, "check", command)
    behaviour["state"] = 2  # CRITICAL: a job failed
    assert run(capsys, "check").code == 2
    assert error_line(run(capsys, "check", "--bogus"), code=3).endswith("(see 'vbo-async check --help')")
    assert "HTTP 503: down" in error_line(run(capsys, "check", "--fail"), code=3)
    assert run(capsys, "jobs").code == 2  # the other commands keep theirs


async def test_an_untrusted_certificate_in_poll_names_the_targets_key(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, https_url: str
) -> None:
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    targets = write_targets(tmp_path / "targets.toml", server_table("east", https_url, "VBO_PASSWORD"))
    result = await run_in_thread(capsys, "poll", "--targets", str(targets), "--json")
    assert result.code == 1
    (row,) = json.loads(result.out)
    assert 'pass that CA with ca_bundle = "PATH" in the targets file' in row["error"]
    assert "--ca-bundle" not in row["error"]


# --- an organization the server lists but the client cannot decode --------------------------------


def with_malformed_organization(app: Any, organization_id: str) -> Any:
    """``app``, whose organization listings give ``organization_id`` a name that is an object."""

    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].lower().endswith("/organizations"):
            await app(scope, receive, send)
            return
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def rewrite(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            data = json.loads(b"".join(chunks))
            for item in data["results"] if isinstance(data, dict) else data:
                if item["id"] == organization_id:
                    item["name"] = {"not": "a name"}
            body = json.dumps(data).encode()
            headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
            await send({**start, "headers": [*headers, (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})

        await app(scope, receive, rewrite)

    return wrapped


@pytest.fixture
async def malformed_url(simulator: Simulator, org_id: str) -> AsyncIterator[str]:
    """The simulator on 127.0.0.1, its organization ``org_id`` listed with a name that is an object."""
    async with serve(with_malformed_organization(create_app(simulator=simulator), org_id)) as port:
        yield f"http://127.0.0.1:{port}"


@pytest.mark.parametrize("named", [False, True], ids=["all", "named"])
async def test_poll_reports_an_undecodable_organization_on_its_own_row_and_polls_the_others(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    simulator: Simulator,
    org_id: str,
    malformed_url: str,
    named: bool,
) -> None:
    """One organization of ``GET /Organizations`` that cannot be decoded fails its own row (its id,
    the `DecodeError` naming the field), not every tenant of the server (exit 1, the rest printed)."""
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    others = [org for org in simulator.organization_ids() if org != org_id]
    wanted = f'["{org_id}", "{others[0]}"]' if named else '"all"'
    targets = write_targets(
        tmp_path / "t.toml", server_table("east", malformed_url, "VBO_PASSWORD", organizations=wanted)
    )
    result = await run_in_thread(capsys, "poll", "--targets", str(targets), "--json")
    assert result.code == 1, result.err
    check_json_rows(result.out, expected_rows(simulator, others[:1] if named else others), "east")
    (failed,) = [row for row in json.loads(result.out) if row["error"] is not None]
    assert org_id in (failed["organization_id"] or failed["organization"])
    assert "name" in failed["error"]


async def test_organizations_prints_the_decodable_organizations_and_names_the_other(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    simulator: Simulator,
    org_id: str,
    malformed_url: str,
) -> None:
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    result = await run_in_thread(
        capsys, "organizations", "--server", malformed_url, "--username", "admin", "--json"
    )
    assert result.code == 1
    listed = json.loads(result.out)
    assert all(set(org) == ORGANIZATION_KEYS for org in listed)
    assert sorted(org["id"] for org in listed if org["error"] is None) == sorted(
        o for o in simulator.organization_ids() if o != org_id
    )
    (line,) = result.err.splitlines()
    assert line.startswith(f"vbo-async: error: organization {org_id}: ")
    assert "Traceback" not in result.err
    # The one that could not be decoded is in the JSON too, with its error (the script sees it).
    (failed,) = [org for org in listed if org["error"] is not None]
    assert failed == {"id": org_id, "name": None, "error": line.split(": ", 3)[3]}


async def test_jobs_finds_an_organization_by_name_beside_an_undecodable_one(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    simulator: Simulator,
    org_id: str,
    malformed_url: str,
) -> None:
    """A name is looked up in the listing: its undecodable neighbour is no reason to fail."""
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    other = next(org for org in simulator.organizations_wire() if org["id"] != org_id)
    found = await run_in_thread(capsys, *jobs_args(malformed_url, other["name"], "--json"))
    assert found.code == 0, found.err
    check_json_rows(found.out, expected_rows(simulator, [other["id"]]), malformed_url)
    assert "/v8/organizations" in endpoints(simulator)


def test_poll_check_and_serve_choose_their_tenants_alike() -> None:
    """`choose_tenants`, which `poll`/`check` (`server_targets`) and `serve` (`_Reader._choose`)
    both use: every decoded tenant once (ids ignoring case), and each it cannot take named with
    why, the id of one the server lists but the client cannot decode kept for serve's
    ``organization_up`` 0 and poll's row (one refusal however often it is named)."""
    listed = [
        Organization(id="A1", name="Contoso"),
        Organization(id="a1", name="Contoso again"),  # the same tenant, its id in another case
        Organization(id=" ", name="No id"),
    ]
    undecoded = {"b2": DecodeError("cannot decode Organization"), "": DecodeError("no id either")}
    usable, refused = _flows.choose_tenants("all", listed, undecoded, server="east")
    assert [o.id.lower() for o in usable] == ["a1"]
    assert [(r.named, r.organization_id) for r in refused] == [
        ("b2", "b2"),
        (_flows.UNREADABLE, None),
        ("No id", None),
    ]
    assert refused[2].problem == _flows.NO_ID
    assert refused[2].said("east") == f"east: No id: {_flows.NO_ID}"

    usable, refused = _flows.choose_tenants(
        ["contoso", "B2", "b2 ", "Nowhere"], listed, undecoded, server="east"
    )
    assert [o.id for o in usable] == ["A1"]
    assert [(r.named, r.organization_id) for r in refused] == [("B2", "b2"), ("Nowhere", None)]
    assert isinstance(refused[0].problem, DecodeError)
    assert refused[0].said("east") == "east: B2: cannot decode Organization"
    assert refused[1].said("east").startswith("no organization 'Nowhere' on east")


async def test_a_sweep_logs_a_bounded_number_of_jobs_whose_links_could_not_be_read(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A hostile server's 20 tenants of 50 jobs, each job's repository unreadable: ``poll`` (and
    ``demo``, ``check``) logged a warning per job, 1,000 lines here and 10,000 for as many jobs. A
    sweep logs the first `MAX_LINK_WARNINGS` of them and one line counting the others; the
    rows are all there, their repository empty."""
    from vbo_async import Job, PollResult, ServerError

    async with VBOClient("https://vbo.test", username="u", password="p") as vbo:
        results = [
            PollResult(
                target=PollTarget(client=vbo, organization_id=f"tenant-{t}"),
                jobs=[Job(id=f"job-{t}-{j}", name="daily") for j in range(50)],
                follow=("repository",),
                link_errors={
                    (f"job-{t}-{j}", "repository"): ServerError("down", status_code=503) for j in range(50)
                },
            )
            for t in range(20)
        ]
        caplog.set_level("WARNING", logger="vbo_async")
        report = _flows.report_of(results, {id(vbo): "east"}, servers=1)
    assert len(report.jobs) == 1000
    assert all(row.repository is None for row in report.jobs)
    lines = [record.getMessage() for record in caplog.records if record.name.startswith("vbo_async")]
    limit = _report.MAX_LINK_WARNINGS
    assert lines[:limit] == [
        f"east / tenant-0: job job-0-{j}: cannot read its repository: HTTP 503: down" for j in range(limit)
    ]
    assert lines[limit:] == [
        f"{1000 - limit} more jobs whose repository or proxy could not be read are not logged "
        "(those cells are empty)"
    ]


def test_a_sigterm_landing_in_an_import_lock_callback_is_taken_again_after_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A SIGTERM while the package imports whose handler ran inside the import system's weakref
    callback (a module lock's cleanup, run by the garbage collector): `Terminated` raised there
    is printed as "Exception ignored in ..." with its traceback, and lost (the process went on
    starting). It is raised again instead, once that callback has returned."""
    import types

    import _vbo_async_cli as entry

    raised: list[int] = []
    monkeypatch.setattr(entry.signal, "raise_signal", raised.append)
    handler = entry.SigtermHandler(entry._raise_terminated)
    in_callback = types.SimpleNamespace(
        f_code=types.SimpleNamespace(co_name="cb", co_filename="<frozen importlib._bootstrap>")
    )
    handler(signal.SIGTERM, in_callback)
    assert raised == [signal.SIGTERM]
    elsewhere = types.SimpleNamespace(f_code=types.SimpleNamespace(co_name="cb", co_filename="/app/x.py"))
    with pytest.raises(entry.Terminated):
        handler(signal.SIGTERM, elsewhere)
    with pytest.raises(entry.Terminated):
        handler(signal.SIGTERM, None)
    assert raised == [signal.SIGTERM]
