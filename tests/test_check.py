"""``vbo-async check``, a Nagios/Icinga/Checkmk plugin: its durations, its verdict and output
(pure), and whole runs against simulators on 127.0.0.1, in process and as real processes.

The contract tested here: the exit status is the most severe state in the order CRITICAL (2) >
WARNING (1) > UNKNOWN (3) > OK (0); a server or tenant that cannot be read is UNKNOWN, never OK;
the output is plain text on stdout, a first line ``VB365 STATE - ... | perfdata`` and one line
per finding that is not OK; usage errors are UNKNOWN (3) with their message on stdout.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import datetime as dt
import functools
import io
import json
import logging
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import attrs
import httpx
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from vbo_async import (
    BackupRepository,
    ConfigError,
    HealthPolicy,
    HealthState,
    License,
    LicenseStatus,
    MaintenanceModeState,
    Proxy,
    ProxyStatus,
    RetryPolicy,
    TransportError,
    VBOClient,
    __version__,
)
from vbo_async._cli import main
from vbo_async._cli._check import HELD_CHARS, _Held
from vbo_async._cli._connect import retries_within
from vbo_async._cli._flows import Swept
from vbo_async._cli._limits import LOGOUT_GRACE, TimeLimit
from vbo_async._cli._plugin import (
    LINE_CHARS,
    OUTPUT_BYTES,
    PLUGIN_CODES,
    SUMMARY_CHARS,
    DurationError,
    Expiry,
    FreeSpace,
    FreeSpaceError,
    NotFound,
    PluginOutput,
    _agreeing,
    _decimal,
    days_left,
    error_output,
    format_duration,
    free_percent,
    parse_duration,
    parse_expiry,
    parse_free_space,
    plain,
    plugin_output,
)
from vbo_async._cli._report import Report, Row
from vbo_async._cli._threads import MAX_THREADS, DaemonThreads, NoThread, run_unheld, unheld
from vbo_async.simulator import SimulatedError, Simulator, SimulatorConfig, create_app

from .conftest import as_asgi, closed_port, serve, throttling_app
from .test_cli import (
    ANSI,
    HANG_GUARD,
    STATES,
    WRONG_PASSWORD,
    Health,
    Result,
    child_environment,
    expected_health,
    expected_rows,
    judge_at,
    run,
    run_during_a_hung_lookup,
    run_in_thread,
    run_module,
    server_table,
    write_targets,
)

EPOCH = dt.datetime(2017, 4, 4, 10, 0, tzinfo=dt.UTC)
"""The "now" of the in-process simulators and sweeps."""
FIRST_LINE = re.compile(r"^VB365 (OK|WARNING|CRITICAL|UNKNOWN) - (?P<text>[^|\n]+?) \| (?P<perf>[^|\n]+)$")
PERF_ITEM = re.compile(
    r"^(?P<label>'[^'=]+'|[^\s'=]+)=(?P<value>-?\d+(?:\.\d+)?)(?P<uom>s|ms|us|%|B|KB|MB|GB|TB|c)?"
    r"(?:;(?P<warn>[@~\d.:-]*))?(?:;(?P<crit>[@~\d.:-]*))?"
    r"(?:;(?P<min>-?\d+(?:\.\d+)?)?)?(?:;(?P<max>-?\d+(?:\.\d+)?)?)?$"
)
"""One performance data item per the Nagios plugin development guidelines:
``'label'=value[UOM];[warn];[crit];[min];[max]``."""
PERF_LABELS = ["jobs", "ok", "warning", "critical", "unknown", "servers_down", "tenants_unreadable"]


def expected_perf(states: list[str], *, servers_down: int = 0, tenants_unreadable: int = 0) -> dict[str, int]:
    """The performance data `check` gives for jobs judged ``states``."""
    return {
        "jobs": len(states),
        "ok": states.count("OK"),
        "warning": states.count("WARNING"),
        "critical": states.count("CRITICAL"),
        "unknown": states.count("UNKNOWN"),
        "servers_down": servers_down,
        "tenants_unreadable": tenants_unreadable,
    }


def perf_values(perf: str) -> dict[str, int]:
    values = {}
    for item in perf.split(" "):
        match = PERF_ITEM.match(item)
        assert match, item
        assert match["min"] == "0"
        values[match["label"]] = int(match["value"])
    assert list(values) == PERF_LABELS
    return values


def first_line(out: str) -> re.Match[str]:
    line = out.splitlines()[0]
    match = FIRST_LINE.match(line)
    assert match, line
    return match


RICH_MARKUP = re.compile(r"\[/?(bold|dim|italic|underline|red|green|yellow|blue|cyan|magenta|link)\b[^\]]*\]")
"""A rich style tag left in the output (``[bold]``, ``[/red]``): a server's name may hold ``[`` and
``/`` (a server labelled ``[`` before ``/proxy``), never a whole tag of ours."""


def assert_plain(text: str) -> None:
    assert not ANSI.search(text)
    assert "\x1b" not in text
    assert not RICH_MARKUP.search(text), text
    assert all(line.isprintable() for line in text.splitlines()), text


@pytest.fixture(autouse=True)
def plain_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("VBO_PASSWORD", "VBO_ASYNC_LOG", "FORCE_COLOR", "NO_COLOR", "COLUMNS", "TZ"):
        monkeypatch.delenv(name, raising=False)


# --- durations ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90m", dt.timedelta(minutes=90)),
        ("26h", dt.timedelta(hours=26)),
        ("2d", dt.timedelta(days=2)),
        ("1d12h", dt.timedelta(days=1, hours=12)),
        ("1d2h3m4s", dt.timedelta(days=1, hours=2, minutes=3, seconds=4)),
        ("45s", dt.timedelta(seconds=45)),
        (" 26H ", dt.timedelta(hours=26)),
        ("0d1h", dt.timedelta(hours=1)),
        ("36500d", dt.timedelta(days=36500)),
        ("0" * 5000 + "90m", dt.timedelta(minutes=90)),
    ],
)
def test_durations(text: str, expected: dt.timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "not a duration"),
        ("26", "no unit: write 26h"),
        ("0h", "longer than zero"),
        ("0", "'0' must be longer than zero"),  # not "write 0h, 0m, 0d or 0s", each refused
        ("000", "'000' must be longer than zero"),
        ("0d0h0m0s", "longer than zero"),
        ("h", "not a duration"),
        ("1h1d", "not a duration"),  # units in order
        ("1h2h", "not a duration"),  # each unit once
        ("1.5h", "not a duration"),
        ("-1h", "not a duration"),
        ("1d 12h", "not a duration"),
        ("26hours", "not a duration"),
        ("1w", "not a duration"),
        ("٣h", "not a duration"),  # digits are ASCII digits
        ("36501d", "longer than 100 years"),
        ("9" * 40 + "d", "longer than 100 years"),
        ("9" * 5000 + "s", "longer than 100 years"),  # past int()'s 4,300 digits: no ValueError
        ("9" * 5000, "no unit: write"),
        ("0" * 5000, "must be longer than zero"),
    ],
)
def test_bad_durations(text: str, says: str) -> None:
    with pytest.raises(DurationError, match=re.escape(says)):
        parse_duration(text)


seconds = st.integers(min_value=1, max_value=100 * 365 * 86400)


@given(seconds)
@example(1)
@example(86400 + 1)
def test_a_formatted_duration_reads_back(total: int) -> None:
    delta = dt.timedelta(seconds=total)
    text = format_duration(delta)
    assert re.fullmatch(r"(\d+d)?(\d+h)?(\d+m)?(\d+s)?", text)
    assert parse_duration(text) == delta
    assert parse_duration(text.upper()) == delta


@given(
    st.tuples(*(st.one_of(st.none(), st.integers(0, 5000)) for _ in range(4))).filter(
        lambda parts: any(parts)
    )
)
def test_a_duration_is_the_sum_of_its_parts(parts: tuple[int | None, ...]) -> None:
    days, hours, minutes, secs = parts
    text = "".join(f"{n}{unit}" for n, unit in zip(parts, "dhms", strict=True) if n is not None)
    expected = dt.timedelta(days=days or 0, hours=hours or 0, minutes=minutes or 0, seconds=secs or 0)
    assert parse_duration(text) == expected


@given(st.text(max_size=12))
@example("1d12h")
@example("12h1d")
@example("1.5")
@example(".000001")
def test_any_text_is_a_duration_or_a_duration_error(text: str) -> None:
    try:
        seconds = parse_duration(text, bare="s")
    except DurationError as exc:
        message = str(exc)
        assert message.startswith(repr(text))
    else:
        assert seconds > dt.timedelta(0)
        assert format_duration(seconds)
    try:
        delta = parse_duration(text)
    except DurationError as exc:
        message = str(exc)
        assert message.startswith(repr(text))
        return
    assert delta > dt.timedelta(0)
    assert parse_duration(format_duration(delta)) == delta


@pytest.mark.parametrize(
    ("text", "expected", "written"),
    [
        ("1.5", dt.timedelta(seconds=1.5), "1.5s"),
        (" 0.25 ", dt.timedelta(seconds=0.25), "0.25s"),
        ("90.5", dt.timedelta(seconds=90.5), "1m30.5s"),
        ("2.", dt.timedelta(seconds=2), "2s"),
        (".5", dt.timedelta(seconds=0.5), "0.5s"),
    ],
)
def test_a_number_alone_may_have_a_fraction_of_a_second(
    text: str, expected: dt.timedelta, written: str
) -> None:
    """``check -t 1.5`` and ``poll --timeout 1.5`` are 1.5 s, as ``serve --timeout 1.5`` is: a
    number alone is seconds, with or without a fraction, and 'no answer within ...' writes it."""
    assert parse_duration(text, bare="s") == expected
    assert format_duration(expected) == written
    with pytest.raises(DurationError, match=r"no unit|not a duration"):
        parse_duration(text)  # --max-age: hours? days? still asked


@pytest.mark.parametrize("text", ["9" * 5000 + ".5", "3153600000.000001", "0" * 5000 + "4" + "0" * 9 + ".5"])
def test_a_fraction_of_seconds_is_bounded_as_a_duration(text: str) -> None:
    with pytest.raises(DurationError, match="longer than 100 years"):
        parse_duration(text, bare="s")


# --- the verdict (pure) ---------------------------------------------------------------------------


def job(
    name: str,
    state: HealthState,
    reason: str,
    *,
    organization: str = "tenant-a",
    server: str = "east",
) -> Row:
    return Row(
        server=server,
        organization=organization,
        organization_id=f"id-{organization}",
        job=name,
        job_id=f"{server}/{organization}/{name}",
        enabled=True,
        health=state,
        health_reason=reason,
    )


def ok_jobs(count: int, **where: str) -> list[Row]:
    return [job(f"Job {n:03d}", HealthState.OK, "last run succeeded 3 h ago", **where) for n in range(count)]


def down(server: str) -> Row:
    return Row(server=server, error="cannot connect: [Errno 111] Connect call failed", unreachable=True)


def test_the_first_line_names_the_state_the_counts_and_the_worst_three() -> None:
    rows = [
        *ok_jobs(110),
        job("Exchange daily", HealthState.CRITICAL, "failed 2 days ago"),
        job("SharePoint", HealthState.CRITICAL, "no success for 31 h (max 26 h)", organization="tenant-b"),
        job("Teams", HealthState.CRITICAL, "failed 5 h ago", organization="tenant-c"),
        *(job(f"Warned {n}", HealthState.WARNING, "never run", organization="tenant-d") for n in range(5)),
        *(
            job(f"Odd {n}", HealthState.UNKNOWN, "last run ended with status Paused 1 h ago")
            for n in range(2)
        ),
    ]
    output = plugin_output(Report.collect(rows, servers=1, tenants=4))
    assert output.state is HealthState.CRITICAL
    assert output.exit_code == 2
    lines = output.text.splitlines()
    assert lines[0] == (
        "VB365 CRITICAL - 3 of 120 jobs failing, 5 warning, 2 unknown: "
        "tenant-a/Exchange daily (failed 2 days ago), "
        "tenant-b/SharePoint (no success for 31 h (max 26 h)), "
        "tenant-c/Teams (failed 5 h ago), ... "
        "| jobs=120;;;0 ok=110;;;0 warning=5;;;0 critical=3;;;0 unknown=2;;;0 "
        "servers_down=0;;;0 tenants_unreadable=0;;;0"
    )
    assert lines[1:4] == [
        "CRITICAL: east/tenant-a/Exchange daily: failed 2 days ago",
        "CRITICAL: east/tenant-b/SharePoint: no success for 31 h (max 26 h)",
        "CRITICAL: east/tenant-c/Teams: failed 5 h ago",
    ]
    assert lines[4:9] == [f"WARNING: east/tenant-d/Warned {n}: never run" for n in range(5)]
    assert lines[9:] == [
        f"UNKNOWN: east/tenant-a/Odd {n}: last run ended with status Paused 1 h ago" for n in range(2)
    ]
    assert output.text.endswith("\n")


def test_all_ok_is_one_line() -> None:
    output = plugin_output(Report.collect(ok_jobs(3), servers=1, tenants=1))
    assert output.state is HealthState.OK
    assert output.text == (
        "VB365 OK - 3 jobs OK on 1 tenant | jobs=3;;;0 ok=3;;;0 warning=0;;;0 critical=0;;;0 "
        "unknown=0;;;0 servers_down=0;;;0 tenants_unreadable=0;;;0\n"
    )


@pytest.mark.parametrize(
    ("states", "servers_down", "expected"),
    [
        ([HealthState.OK], 0, HealthState.OK),
        ([HealthState.OK], 1, HealthState.UNKNOWN),  # never OK when a server is down
        ([HealthState.OK, HealthState.UNKNOWN], 0, HealthState.UNKNOWN),
        ([HealthState.OK, HealthState.WARNING], 1, HealthState.WARNING),  # WARNING > UNKNOWN
        ([HealthState.WARNING, HealthState.CRITICAL], 1, HealthState.CRITICAL),  # CRITICAL > all
        ([HealthState.UNKNOWN, HealthState.CRITICAL], 0, HealthState.CRITICAL),
        ([], 0, HealthState.UNKNOWN),  # no job at all
        ([], 2, HealthState.UNKNOWN),
    ],
)
def test_the_most_severe_state_wins(
    states: list[HealthState], servers_down: int, expected: HealthState
) -> None:
    rows = [job(f"j{n}", state, state.name.lower()) for n, state in enumerate(states)]
    rows += [down(f"down{n}") for n in range(servers_down)]
    output = plugin_output(Report.collect(rows, servers=1 + servers_down, tenants=1 if states else 0))
    assert output.state is expected
    assert output.exit_code == {"OK": 0, "WARNING": 1, "CRITICAL": 2, "UNKNOWN": 3}[expected.name]
    assert first_line(output.text).group(1) == expected.name
    assert len(output.text.splitlines()) == 1 + sum(s is not HealthState.OK for s in states) + servers_down


def test_servers_tenants_and_organizations_not_found_are_unknown_lines() -> None:
    rows = [
        *ok_jobs(2, server="west"),
        down("east"),
        Row(server="west", organization="fabrikam", organization_id="f", error="HTTP 500 | boom"),
    ]
    output = plugin_output(
        Report.collect(rows, servers=2, tenants=1),
        not_found=[NotFound("contoso", "no organization 'contoso' on any of the 2 servers")],
    )
    assert output.state is HealthState.UNKNOWN
    assert output.text.splitlines() == [
        "VB365 UNKNOWN - 2 jobs OK on 1 tenant of 2 servers; 1 server unreachable, 1 tenant could not "
        "be read, 1 organization not found: --org contoso (not found), east (unreachable), "
        "west/fabrikam (could not be read) | jobs=2;;;0 ok=2;;;0 warning=0;;;0 critical=0;;;0 "
        "unknown=0;;;0 servers_down=1;;;0 tenants_unreadable=1;;;0",
        "UNKNOWN: --org contoso: no organization 'contoso' on any of the 2 servers",
        "UNKNOWN: east: cannot connect: [Errno 111] Connect call failed",
        "UNKNOWN: west/fabrikam: HTTP 500 / boom",
    ]


def test_text_from_servers_is_made_plain() -> None:
    """A name with a line break, an escape sequence or a ``|`` cannot forge a line, colour the
    output or start the performance data early."""
    rows = [
        job("Mail\nCRITICAL: forged", HealthState.CRITICAL, "failed 1 h ago", organization="a|b"),
        job("\x1b[31mred\x1b[0m", HealthState.WARNING, "never run\r\n", organization="[bold]x[/bold]"),
    ]
    output = plugin_output(Report.collect(rows, servers=1, tenants=2))
    lines = output.text.splitlines()
    assert len(lines) == 3
    assert output.text.count("|") == 1
    assert_plain(output.text.replace("[bold]x[/bold]", "x"))
    assert lines[1] == "CRITICAL: east/a/b/Mail CRITICAL: forged: failed 1 h ago"
    assert lines[2] == "WARNING: east/[bold]x[/bold]/[31mred [0m: never run"
    assert plain("\u2028a\tb\x85|") == "a b /"


def test_the_first_line_names_the_server_of_a_tenant_on_two() -> None:
    """A tenant whose jobs are on two servers (being moved from one to the other) is named with
    its server on the first line, all that a short notification carries: ``tenant-a/Daily
    (failed ...)`` did not say which server failed. Other tenants are named as before."""
    rows = [
        job("Daily", HealthState.OK, "last run succeeded 3 h ago", server="old"),
        job("Daily", HealthState.CRITICAL, "failed 2 h ago", server="new"),
        job("Mail", HealthState.CRITICAL, "failed 5 h ago", organization="tenant-b", server="new"),
    ]
    first = plugin_output(Report.collect(rows, servers=2, tenants=3)).text.splitlines()[0]
    assert (
        "2 of 3 jobs failing: new/tenant-a/Daily (failed 2 h ago), tenant-b/Mail (failed 5 h ago) |" in first
    )


def test_huge_names_cannot_push_the_performance_data_out_of_the_first_line() -> None:
    """A monitoring system cuts long plugin output (Nagios Core at 8 KiB): the names the first
    line quotes are the servers', so its text is capped and the performance data always follows."""
    huge = "N" * 50_000
    rows = [job(huge, HealthState.CRITICAL, f"failed 1 h ago: {huge}", organization=huge), *ok_jobs(2)]
    output = plugin_output(Report.collect(rows, servers=1, tenants=1))
    first = output.text.splitlines()[0]
    text, _, perf = first.partition(" | ")
    assert len(text) <= len("VB365 CRITICAL - ") + SUMMARY_CHARS
    assert text.startswith("VB365 CRITICAL - 1 of 3 jobs failing: NNN")
    assert text.endswith("...")
    assert perf_values(perf)["critical"] == 1
    assert output.text.splitlines()[1].startswith("CRITICAL: east/NNN")
    short = plugin_output(Report.collect([job("x", HealthState.CRITICAL, "failed")], servers=1, tenants=1))
    assert short.text.splitlines()[0].startswith("VB365 CRITICAL - 1 of 1 job failing: tenant-a/x (failed) |")


def test_the_output_is_bounded_keeping_the_worst_lines_and_saying_what_is_left_out() -> None:
    """A hostile server's names of a megabyte, or thousands of jobs that are not OK, make no
    output of megabytes: each line is cut, names first (the reason stays readable), and the whole
    output fits in what Nagios Core reads of a plugin (8 KiB, performance data included), keeping
    the worst lines and saying how many of each state were left out."""
    huge = "N" * 1_000_000
    rows = [
        *ok_jobs(50),
        *(job(f"Odd {n:04d}", HealthState.UNKNOWN, "status Paused") for n in range(2000)),
        *(job(f"Warned {n:04d}", HealthState.WARNING, "never run", organization="d") for n in range(2000)),
        job(huge, HealthState.CRITICAL, "failed 1 h ago", organization=huge),
        *(job(f"Failed {n:02d}", HealthState.CRITICAL, "failed 2 h", organization="x") for n in range(20)),
    ]
    output = plugin_output(Report.collect(rows, servers=1, tenants=3))
    assert output.state is HealthState.CRITICAL
    assert len(output.text.encode()) <= OUTPUT_BYTES
    lines = output.text.splitlines()
    assert perf_values(first_line(output.text)["perf"])["warning"] == 2000
    assert all(len(line) <= LINE_CHARS for line in lines[1:])
    assert lines[1].startswith("CRITICAL: east/NNN")
    assert lines[1].endswith("NNN...: failed 1 h ago")
    assert lines[2:22] == [f"CRITICAL: east/x/Failed {n:02d}: failed 2 h" for n in range(20)]
    shown = lines[22:-1]
    assert len(shown) > 50
    assert all(line.startswith("WARNING: east/d/Warned ") for line in shown)
    assert lines[-1] == f"... {2000 - len(shown)} WARNING and 2000 UNKNOWN lines left out"


def test_a_short_output_loses_nothing_and_non_ascii_names_count_in_bytes() -> None:
    name = "Sauvegarde \U0001f4e6 quotidienne \u00e9t\u00e9 " * 3
    tenant = "\u6771\u4eac"
    rows = [job(f"{name}{n:03d}", HealthState.WARNING, "never run", organization=tenant) for n in range(400)]
    output = plugin_output(Report.collect(rows, servers=1, tenants=1))
    assert len(output.text.encode()) <= OUTPUT_BYTES
    lines = output.text.splitlines()
    assert lines[1] == f"WARNING: east/{tenant}/{name}000: never run"
    assert lines[-1] == f"... {400 - (len(lines) - 2)} WARNING lines left out"
    few = plugin_output(Report.collect(rows[:5], servers=1, tenants=1))
    assert len(few.text.splitlines()) == 6
    assert "left out" not in few.text


def test_the_output_is_bounded_in_the_encoding_it_is_written_in() -> None:
    """Nagios reads 8 KiB of bytes as written: under GB18030 ``À`` takes 4 bytes, not UTF-8's
    2, and an output measured in UTF-8 was twice the bound (Nagios cut it, losing the last lines
    and the count of those left out)."""
    name = "\u00c0" * 150
    rows = [job(f"{name}{n:03d}", HealthState.WARNING, "never run") for n in range(40)]
    report = Report.collect(rows, servers=1, tenants=1)
    utf8 = plugin_output(report).text
    gb18030 = plugin_output(report, encoding="gb18030").text
    assert len(gb18030.encode("gb18030")) <= OUTPUT_BYTES < len(utf8.encode("gb18030"))
    shown = len(gb18030.splitlines()) - 2
    assert 0 < shown < len(utf8.splitlines()) - 2
    assert gb18030.splitlines()[-1] == f"... {40 - shown} WARNING lines left out"
    error = error_output("bad", *(name * 5 for _ in range(30)), encoding="gb18030")
    assert (
        len(error.encode("gb18030"))
        <= OUTPUT_BYTES
        < len(error_output("bad", *(name * 5 for _ in range(30))).encode("gb18030"))
    )


def test_an_error_output_is_bounded() -> None:
    text = error_output("x" * 100_000, *("y" * 5000 for _ in range(100)))
    assert len(text.encode()) <= OUTPUT_BYTES
    lines = text.splitlines()
    assert lines[0].startswith("VB365 UNKNOWN - xxx")
    assert all(len(line) <= LINE_CHARS for line in lines)
    assert lines[1] == "y" * (LINE_CHARS - 3) + "..."
    assert lines[-1] == f"... {100 - (len(lines) - 2)} lines left out"


def test_an_org_value_that_is_not_utf_8_is_measured_not_a_crash() -> None:
    """A byte that is not UTF-8 in an argument reaches Python as a lone surrogate (``--org
    caf$'\\xe9'``); the plugin's output quotes it, and stdout writes it as ``?``."""
    missing = NotFound("caf\udce9", "no organization 'caf\udce9' on the server")
    output = plugin_output(Report.collect([], servers=1, tenants=0), not_found=[missing])
    assert output.state is HealthState.UNKNOWN
    assert output.text.splitlines()[1] == f"UNKNOWN: --org {missing.wanted}: {missing.message}"
    assert error_output("bad \udce9", "x\udce9") == "VB365 UNKNOWN - bad \udce9\nx\udce9\n"


def test_version_and_timeout_have_the_plugin_guidelines_short_options(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The Nagios plugin guidelines reserve -V/--version and -t/--timeout."""
    result = run(capsys, "check", "-V")
    assert result.code == 0
    assert result.out.strip() == f"vbo-async check {__version__}"
    assert "-t, --timeout DURATION" in run(capsys, "check", "--help").out


def test_perfdata_follows_the_guidelines() -> None:
    rows = [*ok_jobs(4), job("x", HealthState.CRITICAL, "failed"), down("west")]
    output = plugin_output(Report.collect(rows, servers=2, tenants=1))
    values = perf_values(first_line(output.text)["perf"])
    assert values == {
        "jobs": 5,
        "ok": 4,
        "warning": 0,
        "critical": 1,
        "unknown": 0,
        "servers_down": 1,
        "tenants_unreadable": 0,
    }
    assert output.text.count("|") == 1  # perfdata only on the first line


def test_an_error_is_unknown_on_stdout() -> None:
    assert error_output("bad thing", "second\x1b[0m") == "VB365 UNKNOWN - bad thing\nsecond [0m\n"
    assert (PLUGIN_CODES.ok, PLUGIN_CODES.unreadable, PLUGIN_CODES.usage, PLUGIN_CODES.interrupted) == (
        0,
        3,
        3,
        3,
    )


# --- whole runs against simulators ------------------------------------------------------------------

CONFIG = {"jobs_per_organization": (1, 2), "sessions_per_job": (1, 6), "organizations": 8}
"""Small tenants (one or two jobs each): seed 43 has tenants whose worst job is OK, WARNING
and CRITICAL."""


@attrs.frozen
class Served:
    simulator: Simulator
    url: str
    name: str
    health: Health
    rows: dict[str, dict[str, Any]]

    def worst(self) -> dict[str, str]:
        """Per organization id, the state of its worst job."""
        found: dict[str, str] = {}
        for job_id, (state, _) in self.health.items():
            org = self.rows[job_id]["organization_id"]
            found[org] = min(found.get(org, "OK"), state, key=STATES.index)
        return found

    def organization(self, state: str, *, reason: str = "") -> str:
        """The id of an organization whose worst job is ``state`` (the first by name), and whose
        every job's reason starts with ``reason``."""
        names = {row["organization_id"]: row["organization"] for row in self.rows.values()}
        reasons: dict[str, list[str]] = {}
        for job_id, (_, why) in self.health.items():
            reasons.setdefault(self.rows[job_id]["organization_id"], []).append(why)
        return min(
            (
                org
                for org, worst in self.worst().items()
                if worst == state and all(why.startswith(reason) for why in reasons[org])
            ),
            key=lambda org: names[org],
        )

    def name_of(self, org_id: str) -> str:
        return next(row["organization"] for row in self.rows.values() if row["organization_id"] == org_id)


def simulator(seed: int, epoch: dt.datetime = EPOCH, **options: Any) -> Simulator:
    return Simulator(SimulatorConfig(seed=seed, epoch=epoch, **{**CONFIG, **options}))


@contextlib.asynccontextmanager
async def served(name: str, sim: Simulator) -> AsyncIterator[Served]:
    async with serve(create_app(simulator=sim)) as port:
        yield Served(sim, f"http://127.0.0.1:{port}", name, expected_health(sim), expected_rows(sim))


@pytest.fixture
def judged_at_epoch(monkeypatch: pytest.MonkeyPatch) -> None:
    judge_at(monkeypatch, EPOCH)


@pytest.fixture
async def east(judged_at_epoch: None) -> AsyncIterator[Served]:
    async with served("east", simulator(43)) as server:
        yield server


def targets_of(tmp_path: Path, *servers: Served | str, **extra: str) -> Path:
    """A targets file of ``servers`` (a `Served`, or the URL of a server that is down)."""
    text = ""
    for number, server in enumerate(servers):
        if isinstance(server, Served):
            text += server_table(server.name, server.url, "VBO_PASSWORD", **extra)
        else:
            text += server_table(f"down{number}", server, "VBO_PASSWORD", **extra)
    return write_targets(tmp_path / "targets.toml", text)


async def check(capsys: pytest.CaptureFixture[str], targets: Path, *args: str) -> Result:
    result = await run_in_thread(capsys, "check", "--targets", str(targets), *args)
    assert_plain(result.out)
    assert result.err == ""
    return result


def problem_lines(*servers: Served) -> list[str]:
    """The detail lines `check` must print for every job of ``servers``, worst first."""
    findings = []
    for server in servers:
        for job_id, (state, reason) in server.health.items():
            if state != "OK":
                row = server.rows[job_id]
                path = (server.name, row["organization"], row["job"])
                findings.append((STATES.index(state), tuple(p.casefold() for p in path), state, path, reason))
    return [f"{state}: {'/'.join(path)}: {reason}" for _, _, state, path, reason in sorted(findings)]


async def test_a_whole_server_is_checked_in_one_sweep(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, east: Served
) -> None:
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    result = await check(capsys, targets_of(tmp_path, east))
    assert set(east.worst().values()) >= {"OK", "WARNING", "CRITICAL"}
    assert result.code == 2
    lines = result.out.splitlines()
    match = first_line(result.out)
    states = [state for state, _ in east.health.values()]
    assert match["text"].startswith(f"{states.count('CRITICAL')} of {len(states)} jobs failing, ")
    assert perf_values(match["perf"]) == expected_perf(states)
    assert lines[1:] == problem_lines(east)
    # The first line names the first three of them.
    named = [line.split(": ", 1)[1].split("/", 1)[1] for line in lines[1:4]]
    briefs = [f"{path.rsplit(': ', 1)[0]} ({path.rsplit(': ', 1)[1]})" for path in named]
    assert match["text"].endswith(": " + ", ".join(briefs) + ", ...")
    # No repository or proxy is fetched; the sessions are read once for the whole server.
    paths = {re.sub(r"/[0-9a-f-]{36}", "/{id}", path) for _, path in east.simulator.stats.by_endpoint}
    assert paths == {"/v8/token", "/v8/organizations", "/v8/jobs", "/v8/jobsessions", "/v8/token/logout"}


@pytest.mark.parametrize(("state", "code"), [("OK", 0), ("WARNING", 1), ("CRITICAL", 2)])
async def test_one_organization_by_id_or_name(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    east: Served,
    state: str,
    code: int,
) -> None:
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    org = east.organization(state)
    targets = targets_of(tmp_path, east)
    by_id = await check(capsys, targets, "--org", org)
    by_name = await check(capsys, targets, "--org", east.name_of(org).upper())
    assert by_id == by_name
    assert by_id.code == code
    jobs = {job_id: east.health[job_id] for job_id, row in east.rows.items() if row["organization_id"] == org}
    assert first_line(by_id.out).group(1) == state
    if state == "OK":
        assert by_id.out.splitlines()[0].startswith(f"VB365 OK - {len(jobs)} job")
        assert len(by_id.out.splitlines()) == 1
    else:
        only = Served(east.simulator, east.url, east.name, jobs, east.rows)
        assert by_id.out.splitlines()[1:] == problem_lines(only)


async def test_a_small_max_age_makes_recent_successes_stale(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, east: Served
) -> None:
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    org = east.organization("OK", reason="last run succeeded")
    targets = targets_of(tmp_path, east)
    assert (await check(capsys, targets, "--org", org)).code == 0
    result = await check(capsys, targets, "--org", org, "--max-age", "90m")
    assert result.code == 2
    stale = [line for line in result.out.splitlines()[1:] if line.startswith("CRITICAL: ")]
    assert stale
    past = r"(\d+ h( \d+ min)?|\d+ days( \d+ h)?)"  # to the minute where hours alone would not be past it
    assert all(re.search(rf": no success for {past} \(max 90 min\)$", line) for line in stale), stale


async def test_schedule_aware_spares_the_days_a_schedule_leaves_out_and_jobs_run_by_hand(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, judged_at_epoch: None
) -> None:
    """``--schedule-aware`` end to end: with ``--max-age 90m``, a daily job on workdays (as the
    simulator serves it), one within the hour of daylight-saving slack, and a job the server says
    runs only by hand (``ManualOnly``) are no longer stale; every other line stays as it was, and
    the flag's verdicts are the library's."""
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    sim = simulator(43)
    short = dt.timedelta(minutes=90)
    plain = expected_health(sim, policy=HealthPolicy(max_age=short))
    scheduled = expected_health(sim, policy=HealthPolicy(max_age=short, schedule_aware=True))
    wire = {job["id"]: job for job in sim.jobs_wire(version="v8", limit=10_000)["results"]}
    stale = sorted(job_id for job_id, (_, why) in plain.items() if why.startswith("no success for"))
    some_days = [job_id for job_id in stale if scheduled[job_id][0] == "OK"]
    daily = [wire[job_id]["schedulePolicy"] for job_id in some_days]
    assert "Workdays" in {policy["dailyType"] for policy in daily if policy["type"] == "Daily"}
    by_hand = next(
        job_id
        for job_id in stale
        if wire[job_id]["schedulePolicy"]["type"] == "Periodically"
        and wire[job_id]["lastStatus"] == "Success"
        and scheduled[job_id][0] != "OK"
    )

    def manual_only(items: list[dict[str, Any]]) -> None:
        for item in items:
            if item["id"] == by_hand:
                item["schedulePolicy"]["type"] = "ManualOnly"

    async with serve(as_asgi(editing(sim, "/jobs", manual_only))) as port:
        server = Served(sim, f"http://127.0.0.1:{port}", "east", plain, expected_rows(sim))
        targets = targets_of(tmp_path, server)
        default = await check(capsys, targets, "--max-age", "90m")
        aware = await check(capsys, targets, "--max-age", "90m", "--schedule-aware")
    assert default.out.splitlines()[1:] == problem_lines(server)
    spared = {*some_days, by_hand}
    expected = {**scheduled, by_hand: ("OK", "last run succeeded")}
    assert aware.out.splitlines()[1:] == problem_lines(attrs.evolve(server, health=expected))
    assert len(aware.out.splitlines()) == len(default.out.splitlines()) - len(spared)
    worst = {state for state, _ in expected.values()}
    code = next(
        c
        for name, c in (("CRITICAL", 2), ("WARNING", 1), ("UNKNOWN", 3), ("OK", 0))
        if name in worst | {"OK"}
    )
    assert (default.code, aware.code) == (2, code)
    before, after = (perf_values(first_line(result.out)["perf"]) for result in (default, aware))
    assert after["critical"] == before["critical"] - len(spared)
    assert after["ok"] == before["ok"] + len(spared)


async def test_a_server_that_is_down_is_unknown_never_ok(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, east: Served
) -> None:
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    monkeypatch.setattr("vbo_async._sending.backoff", lambda *args, **kwargs: 0.0)
    dead = f"http://127.0.0.1:{closed_port()}"
    targets = targets_of(tmp_path, east, dead)
    ok = await check(capsys, targets, "--org", east.organization("OK"))
    assert ok.code == 3
    lines = ok.out.splitlines()
    assert lines[0].startswith("VB365 UNKNOWN - ")
    assert "; 1 server unreachable: down1 (unreachable) | " in lines[0]
    assert perf_values(first_line(ok.out)["perf"])["servers_down"] == 1
    assert lines[1].startswith("UNKNOWN: down1: cannot connect")
    # A WARNING or CRITICAL job still decides the state: they are worse than not knowing.
    warning = await check(capsys, targets, "--org", east.organization("WARNING"))
    assert warning.code == 1
    critical = await check(capsys, targets)
    assert critical.code == 2
    assert critical.out.splitlines()[-1].startswith("UNKNOWN: down1: cannot connect")
    # Every server down: UNKNOWN, with nothing to judge.
    nothing = await check(capsys, targets_of(tmp_path, dead))
    assert nothing.code == 3
    assert nothing.out.startswith("VB365 UNKNOWN - no jobs found on 0 tenants; 1 server unreachable: ")
    # An --org when no server could be read: the servers' rows say why; the organization is not
    # said to be missing (it was "1 organization not found: --org ... (not found)", first).
    named = await check(capsys, targets_of(tmp_path, dead), "--org", east.organization("OK"))
    assert named.code == 3
    said = "VB365 UNKNOWN - no jobs found on 0 tenants; 1 server unreachable: down0 (unreachable) | "
    assert named.out.startswith(said)
    assert "not found" not in named.out


async def test_org_across_servers_and_an_unknown_org(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, judged_at_epoch: None
) -> None:
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    async with served("east", simulator(43)) as east, served("west", simulator(45)) as west:
        targets = targets_of(tmp_path, east, west)
        shared = {east.name_of(o) for o in east.worst()} & {west.name_of(o) for o in west.worst()}
        assert shared, "the two simulators have an organization name in common"
        name = min(shared)
        both = await check(capsys, targets, "--org", name)
        wanted = [(s, o) for s in (east, west) for o in s.worst() if s.name_of(o) == name]
        assert len(wanted) == 2
        jobs = sum(1 for s, o in wanted for row in s.rows.values() if row["organization_id"] == o)
        assert perf_values(first_line(both.out)["perf"])["jobs"] == jobs
        # An id names one organization on one server; an unknown name is UNKNOWN and says so.
        west_org = west.organization("CRITICAL")
        result = await check(capsys, targets, "--org", west_org, "--org", "contoso.onmicrosoft.con")
        alone = await run_in_thread(capsys, "check", "--targets", str(targets), "--org", "nope")
    assert result.code == 2  # the CRITICAL organization still decides
    lines = result.out.splitlines()
    assert "1 organization not found" in lines[0]
    (missing,) = [line for line in lines if line.startswith("UNKNOWN: --org ")]
    assert missing.startswith(
        "UNKNOWN: --org contoso.onmicrosoft.con: no organization 'contoso.onmicrosoft.con' on any of "
        "the 2 servers"
    )
    assert all(
        line.startswith(("VB365", "UNKNOWN: --org", "CRITICAL: west/", "WARNING: west/")) for line in lines
    )
    assert alone.code == 3
    assert alone.out.startswith(
        "VB365 UNKNOWN - no jobs found on 0 tenants of 2 servers; 1 organization not found"
    )


async def test_an_organization_of_the_file_that_is_not_there_is_unknown(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, east: Served
) -> None:
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    ok = east.organization("OK")
    targets = targets_of(tmp_path, east, organizations=json.dumps([ok, "Contoso"]))
    result = await check(capsys, targets)
    assert result.code == 3
    assert result.out.splitlines()[-1].startswith("UNKNOWN: east/Contoso: no organization 'Contoso' on east")
    assert perf_values(first_line(result.out)["perf"])["tenants_unreadable"] == 1
    # Checking another organization of the file does not carry that one's problem.
    assert (await check(capsys, targets, "--org", ok)).code == 0


async def test_an_org_the_targets_file_does_not_select_is_not_said_to_be_missing_on_the_server(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, east: Served
) -> None:
    """``--org`` narrows what the targets file selects: an organization the server has but the
    file's ``organizations`` leaves out was "no organization ... on the server", which sent an
    admin looking on the server for one that is there."""
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    ok, other = east.organization("OK"), east.organization("CRITICAL")
    result = await check(capsys, targets_of(tmp_path, east, organizations=json.dumps([ok])), "--org", other)
    assert result.code == 3
    (missing,) = [line for line in result.out.splitlines() if line.startswith("UNKNOWN: --org ")]
    said = f"no organization {other!r} among those the targets file selects on the server"
    assert missing.startswith(f"UNKNOWN: --org {other}: {said}")
    # Without a selection, the server's whole listing was searched: missing there is missing.
    everything = await check(capsys, targets_of(tmp_path, east), "--org", "nope")
    names = ", ".join(repr(name) for name in sorted(east.name_of(org) for org in east.worst()))
    assert everything.out.splitlines()[-1] == (
        "UNKNOWN: --org nope: no organization 'nope' on the server (ids, or names ignoring case): "
        f"there are {names}"
    )
    # A tenant's short name (without .onmicrosoft.com) is offered the full one.
    short = east.name_of(ok).split(".")[0]
    shortened = await check(capsys, targets_of(tmp_path, east), "--org", short)
    assert shortened.out.splitlines()[-1].endswith(f"; did you mean {east.name_of(ok)!r}?")


async def test_an_organization_named_twice_in_two_cases_is_one_tenant(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, east: Served
) -> None:
    """Names and ids are matched ignoring case, so ``"Contoso"`` and ``"CONTOSO"`` in one
    ``organizations`` list name one tenant: it is one UNKNOWN line and counts once in
    ``tenants_unreadable`` (twice before: one tenant reported as two), and a tenant found named
    twice so is checked once."""
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    ok = east.organization("OK")
    once = await check(capsys, targets_of(tmp_path, east, organizations=json.dumps([ok, "Contoso"])))
    targets = targets_of(tmp_path, east, organizations=json.dumps([ok, ok.upper(), "Contoso", "CONTOSO"]))
    twice = await check(capsys, targets)
    assert twice.code == once.code == 3
    assert perf_values(first_line(twice.out)["perf"]) == perf_values(first_line(once.out)["perf"])
    named = [line for line in twice.out.splitlines() if line.startswith("UNKNOWN: east/")]
    assert len(named) == 1
    assert named[0].startswith("UNKNOWN: east/Contoso: no organization 'Contoso' on east")


def editing(sim: Simulator, listing: str, edit: Callable[[list[dict[str, Any]]], None]) -> Any:
    """An httpx handler serving ``sim`` whose GET answers on paths ending in ``listing`` have
    their items changed by ``edit`` (a hostile or broken server)."""
    inner = httpx.ASGITransport(app=create_app(simulator=sim))

    async def handler(request: httpx.Request) -> httpx.Response:
        response = await inner.handle_async_request(request)
        body = await response.aread()
        if request.method != "GET" or not request.url.path.lower().endswith(listing):
            return httpx.Response(response.status_code, headers=response.headers, content=body)
        data = json.loads(body)
        edit(data["results"] if isinstance(data, dict) else data)
        return httpx.Response(200, json=data)

    return handler


def blank_first_organization(sim: Simulator) -> Any:
    """``sim`` listing its first organization with an empty id."""
    return editing(sim, "/organizations", lambda items: items[0].update(id=""))


async def test_an_organization_listed_without_an_id_is_unknown_alone(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, east: Served
) -> None:
    """A server listing a tenant without an id: that tenant is UNKNOWN, its neighbours and the
    other servers are judged (a CRITICAL job still makes the check CRITICAL)."""
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    hostile = simulator(44)
    first, *others = hostile.organization_ids()
    listed = hostile.organizations_wire(version="v8", limit=10_000)
    (name,) = [org["name"] for org in listed["results"] if org["id"] == first]
    async with serve(as_asgi(blank_first_organization(hostile))) as port:
        result = await check(capsys, targets_of(tmp_path, east, f"http://127.0.0.1:{port}"))
    assert result.code == 2, result.out
    lines = result.out.splitlines()
    assert [line for line in lines if line.startswith("UNKNOWN: down1/")] == [
        f"UNKNOWN: down1/{name}: the server listed this organization without an id"
    ]
    perf = perf_values(first_line(result.out)["perf"])
    assert perf["tenants_unreadable"] == 1
    assert perf["jobs"] == len(east.health) + len(expected_rows(hostile, others))


async def test_an_organization_the_server_names_with_blanks_around_it_is_found_by_name(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, judged_at_epoch: None
) -> None:
    """A server listing a tenant as ``"Contoso "``: ``--org`` and the targets file's
    ``organizations`` are trimmed, and the server's name was not, so no value could name it
    ("no organization 'Contoso'"; did you mean 'Contoso '?"). Its name, in any case and with or
    without the blanks, now chooses it as its id does."""
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    sim = simulator(43)
    first = sim.organization_ids()[0]
    listed = sim.organizations_wire(version="v8", limit=10_000)
    (name,) = [org["name"] for org in listed["results"] if org["id"] == first]

    def blanks_around(items: list[dict[str, Any]]) -> None:
        for item in items:
            if item["id"] == first:
                item["name"] = f"{name} "

    async with serve(as_asgi(editing(sim, "/organizations", blanks_around))) as port:
        targets = targets_of(tmp_path, f"http://127.0.0.1:{port}")
        by_id = await check(capsys, targets, "--org", first)
        by_name = [
            await check(capsys, targets, "--org", wanted) for wanted in (name, name.upper(), f"{name} ")
        ]
        for entry in (name, f" {name.upper()} "):
            targets = targets_of(tmp_path, f"http://127.0.0.1:{port}", organizations=json.dumps([entry]))
            by_name.append(await check(capsys, targets))
    perf = perf_values(first_line(by_id.out)["perf"])
    assert (perf["jobs"], perf["tenants_unreadable"]) == (len(expected_rows(sim, [first])), 0)
    assert "not found" not in by_id.out
    assert by_name == [by_id] * 5


async def test_an_organization_id_in_braces_chooses_it_as_its_id_does(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, east: Served
) -> None:
    """``--org {GUID}`` (a tool printing ids in braces) and 32 digits in a targets file: the
    library reads them as the GUID, the command line compared the text ("not found")."""
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    first = east.simulator.organization_ids()[0]
    by_id = await check(capsys, targets_of(tmp_path, east), "--org", first)
    braced = await check(capsys, targets_of(tmp_path, east), "--org", "{" + first.upper() + "}")
    digits = json.dumps([first.replace("-", "")])
    listed = await check(capsys, targets_of(tmp_path, east, organizations=digits))
    assert "not found" not in by_id.out
    assert braced == by_id
    assert listed == by_id


async def test_check_measures_its_output_in_the_encoding_of_its_stdout(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, judged_at_epoch: None
) -> None:
    """``PYTHONIOENCODING=gb18030`` (or a GB18030 locale) with jobs and tenants named in
    U+0080..U+07FF: the output as written stays within the 8 KiB Nagios reads, and still ends
    with the count of the lines left out (it was 15 KB, measured in UTF-8)."""
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    long = "\u00c0" * 300

    def renamed(items: list[dict[str, Any]]) -> None:
        for item in items:
            item["name"] = long

    raw = io.BytesIO()
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(raw, encoding="gb18030", write_through=True))
    sim = simulator(43, organizations=40)
    problems = sum(state != "OK" for state, _ in expected_health(sim).values())
    async with serve(as_asgi(editing(sim, "/jobs", renamed))) as port:
        targets = targets_of(tmp_path, f"http://127.0.0.1:{port}")
        code = await asyncio.to_thread(main, ["check", "--targets", str(targets)])
    sys.stdout.flush()
    written = raw.getvalue()
    assert code == 2
    assert len(written) <= OUTPUT_BYTES
    lines = written.decode("gb18030").splitlines()
    left = re.fullmatch(r"\.\.\. ([0-9]+) CRITICAL and ([0-9]+) WARNING lines left out", lines[-1])
    assert left is not None, lines[-1]
    assert int(left[1]) + int(left[2]) == problems - (len(lines) - 2) > 0


async def test_a_job_listed_twice_is_counted_once(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, judged_at_epoch: None
) -> None:
    """A server whose job listing repeats a job (offset pages shifting under a change): the job
    is judged and counted once, as the exporter publishes it once."""
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    sim = simulator(43)
    jobs = len(expected_rows(sim))
    async with serve(as_asgi(editing(sim, "/jobs", lambda items: items.extend(items[:2])))) as port:
        result = await check(capsys, targets_of(tmp_path, f"http://127.0.0.1:{port}"))
    assert perf_values(first_line(result.out)["perf"])["jobs"] == jobs
    details = result.out.splitlines()[1:]
    assert len(details) == len(set(details))


async def test_a_job_listed_twice_differently_is_judged_as_first_listed(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, judged_at_epoch: None
) -> None:
    """A repeat that differs from the first listing (a job disabled between two pages): the job
    is judged as first listed, as its row and every other output show it. The repeat's verdict
    (disabled: OK) used to replace the first one's in ``PollResult.health``, so the check said OK
    for a job whose row was the failing one."""
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    sim = simulator(43)
    async with serve(as_asgi(editing(sim, "/jobs", lambda items: None))) as port:
        expected = await check(capsys, targets_of(tmp_path, f"http://127.0.0.1:{port}"))
    failing = next(job_id for job_id, (state, _) in expected_health(sim).items() if state == "CRITICAL")

    def repeat_disabled(items: list[dict[str, Any]]) -> None:
        items.extend({**item, "isEnabled": False} for item in list(items) if item["id"] == failing)

    async with serve(as_asgi(editing(sim, "/jobs", repeat_disabled))) as port:
        result = await check(capsys, targets_of(tmp_path, f"http://127.0.0.1:{port}"))
    assert result.code == expected.code == 2
    assert perf_values(first_line(result.out)["perf"]) == perf_values(first_line(expected.out)["perf"])
    assert result.out.splitlines()[1:] == expected.out.splitlines()[1:]


async def test_a_server_that_does_not_answer_is_unknown_when_time_is_up(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, east: Served
) -> None:
    """Only the check's ``--timeout`` can end the wait (no per-request time limit, as in the test
    above; the hang guard stops a check that waits on): it measured the check's time against 6 s,
    which a loaded machine can exceed."""
    release = asyncio.Event()

    async def hanging(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            await release.wait()

    monkeypatch.setattr("vbo_async._cli._connect.VBOClient", functools.partial(VBOClient, timeout=None))
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    try:
        async with serve(hanging) as port:
            targets = targets_of(tmp_path, east, f"http://127.0.0.1:{port}")
            async with asyncio.timeout(HANG_GUARD):
                result = await check(capsys, targets, "--timeout", "1s", "--org", east.organization("OK"))
            release.set()
    finally:
        release.set()
    assert result.code == 3
    assert result.out.splitlines()[-1] == "UNKNOWN: down1: no answer within 1s"
    assert result.out.startswith("VB365 UNKNOWN - ")


async def test_a_logout_that_hangs_is_cut_at_the_check_s_deadline(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, east: Served
) -> None:
    """The logout after the sweep ends with the check's --timeout (half a second past it at
    most): a plugin given 2 s does not overrun them by the client's own logout bound (3 s, made
    endless here with the request's own time limit, so that only the check's deadline can end
    it; the hang guard stops a check that waits for it)."""
    monkeypatch.setattr("vbo_async._client.LOGOUT_TIMEOUT", 3600.0)
    # ... and no per-request time limit either (30 s by default, which would end the logout too).
    monkeypatch.setattr("vbo_async._cli._connect.VBOClient", functools.partial(VBOClient, timeout=None))
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    logouts: list[str] = []
    forever = asyncio.Event()
    app = create_app(simulator=east.simulator)

    async def hanging_logout(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].lower().endswith("/token/logout"):
            logouts.append(scope["path"])
            await forever.wait()
        await app(scope, receive, send)

    try:
        async with serve(hanging_logout) as port:
            targets = targets_of(tmp_path, f"http://127.0.0.1:{port}")
            async with asyncio.timeout(HANG_GUARD):
                result = await check(capsys, targets, "--timeout", "2s", "--org", east.organization("OK"))
    finally:
        forever.set()
    assert [path.lower() for path in logouts] == ["/v8/token/logout"]  # sent, never answered
    assert result.code == 0
    assert result.out.startswith("VB365 OK - ")


async def test_time_spent_at_the_password_prompt_does_not_cut_the_logouts_short(
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    east: Served,
) -> None:
    """The logouts get what remains of the sweep's time limit, which starts once the passwords
    are read: an hour at the prompt (a clock that jumps) does not leave them only the grace
    (made 0 here, and the logout answered a moment late, so that the grace alone cuts it)."""
    monkeypatch.setattr("vbo_async._cli._limits.LOGOUT_GRACE", 0.0)
    prompted = 0.0

    class Clock:
        @staticmethod
        def monotonic() -> float:
            return time.monotonic() + prompted

    def typed_an_hour_later(variable: str, prompt: str, **_: object) -> str:
        nonlocal prompted
        prompted += 3600
        return "admin"

    monkeypatch.setattr("vbo_async._cli._flows.time", Clock)
    monkeypatch.setattr("vbo_async._cli._secrets.read_password", typed_an_hour_later)
    app = create_app(simulator=east.simulator)
    answered: list[str] = []

    async def slow_logout(scope: Any, receive: Any, send: Any) -> None:
        logout = scope["type"] == "http" and scope["path"].lower().endswith("/token/logout")
        if logout:
            await asyncio.sleep(0.1)
        await app(scope, receive, send)
        if logout:
            answered.append(scope["path"])

    caplog.set_level(logging.DEBUG, logger="vbo_async.cli")
    async with serve(slow_logout) as port:
        targets = targets_of(tmp_path, f"http://127.0.0.1:{port}")
        arguments = ("--targets", str(targets), "-t", "50", "--org", east.organization("OK"))
        result = await run_in_thread(capsys, "check", *arguments)
    assert prompted == 3600
    assert result.code == 0
    assert [path.lower() for path in answered] == ["/v8/token/logout"]
    assert "time limit ended the logouts" not in caplog.text + result.err  # the client had its answer


@pytest.mark.parametrize("command", ["check", "poll"])
async def test_the_time_limit_counts_from_the_command_s_start(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    east: Served,
    command: str,
) -> None:
    """``-t`` counts from when the process began (its entry point gives `main` that moment),
    not from when the sweep began after the modules were imported and the passwords read: a
    monitoring plugin given ``-t 58`` under its scheduler's 60 s ended a start-up later (about
    0.3 s here, seconds on a loaded host), and its logouts half a second after that. A command
    whose limit was all spent before its sweep asks no server, and says so."""
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    targets = targets_of(tmp_path, east)
    asked = east.simulator.stats.requests
    limit = ("-t", "5") if command == "check" else ("--timeout", "5s", "--json")
    argv = [command, "--targets", str(targets), *limit]
    code = await asyncio.to_thread(functools.partial(main, argv, started=time.monotonic() - 10))
    out = capsys.readouterr().out
    assert "not asked within 5s" in out, out
    assert code == (3 if command == "check" else 1)
    assert east.simulator.stats.requests == asked  # no request: the limit had ended


def test_a_time_limit_keeps_its_grace_for_the_logouts() -> None:
    limit = TimeLimit(dt.timedelta(seconds=50), 100.0)
    assert (limit.ends, limit.grace, limit.sweep_ends) == (150.0, LOGOUT_GRACE, 150.0 - LOGOUT_GRACE)
    short = TimeLimit(dt.timedelta(seconds=2), 100.0)
    assert short.grace == pytest.approx(0.2)  # a tenth of a short limit
    short.restart(300.0)  # a password typed at a prompt
    assert short.ends == 302.0


def test_a_command_with_a_time_limit_retries_within_it() -> None:
    assert retries_within(None) is None  # no limit: the client's default policy
    assert retries_within(10_000.0) is None  # the default already ends before it
    policy = retries_within(50.0)
    assert policy is not None
    assert policy.timeout == 50.0
    assert attrs.evolve(policy, timeout=RetryPolicy().timeout) == RetryPolicy()  # nothing else changed


async def test_a_throttled_server_is_reported_as_such_not_as_silent(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, east: Served
) -> None:
    """A server throttling the check (429, ``Retry-After: 30``) past what ``--timeout`` leaves is
    not waited for: the check says it is rate limited and when to try again, at once, rather
    than "no answer within" when its time is up."""
    asked: list[str] = []

    async def throttled(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        asked.append(scope["path"])
        body = b'{"message": "Quota Exceeded"}'
        headers = [(b"content-type", b"application/json"), (b"retry-after", b"30")]
        await send({"type": "http.response.start", "status": 429, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    monkeypatch.setenv("VBO_PASSWORD", "admin")
    async with serve(throttled) as port:
        targets = targets_of(tmp_path, east, f"http://127.0.0.1:{port}")
        result = await check(capsys, targets, "--timeout", "3s", "--org", east.organization("OK"))
    assert result.code == 3
    last = result.out.splitlines()[-1]
    assert last.startswith("UNKNOWN: down1: ")
    assert "retry after 30 s" in last
    assert "no answer within" not in result.out
    assert len(asked) == 1  # the token request, asked once: its throttle is not retried into


async def test_a_retry_wait_past_the_checks_deadline_is_not_begun_late_in_the_run(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, east: Served
) -> None:
    """A request first tried late in the run (45 s into ``--timeout 50s``: the command is said
    to have begun 45 s ago) throttled with ``Retry-After: 30`` is not waited for: that wait
    would end past the deadline, which would then report "no answer within" instead of the
    server's answer. The policy's own budget (50 s from the request's first try) alone allows
    the wait."""
    from vbo_async import _sending

    asked: list[str] = []
    waits: list[float] = []

    throttled = throttling_app(asked)

    async def no_wait(self: Any, seconds: float, **_: Any) -> None:
        waits.append(seconds)

    monkeypatch.setattr(_sending.Sender, "_pause", no_wait)
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    async with serve(throttled) as port:
        targets = targets_of(tmp_path, east, f"http://127.0.0.1:{port}")
        argv = ["check", "--targets", str(targets), "--timeout", "50s", "--org", east.organization("OK")]
        code = await asyncio.to_thread(functools.partial(main, argv, started=time.monotonic() - 45.0))
    out = capsys.readouterr().out
    assert waits == []
    assert len(asked) == 1
    assert code == 3
    assert "retry after 30 s" in out.splitlines()[-1]


def test_a_name_lookup_that_hangs_does_not_hold_the_check_past_its_timeout(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The check ends at its --timeout while a server's name lookup hangs; it used to wait for the
    lookup's thread before exiting, past the 60 s a monitoring system allows, which then reports
    the check as timed out (CRITICAL by default in Nagios)."""
    result = run_during_a_hung_lookup(capsys, monkeypatch, tmp_path, "check", "--timeout", "3s")
    assert result.code == 3
    assert result.out.splitlines()[-1] == "UNKNOWN: dns: no answer within 3s"


def test_the_checks_executor_forwards_results_and_errors() -> None:
    async def lookups() -> list[Any]:
        loop = asyncio.get_running_loop()
        found = await loop.getaddrinfo("localhost", 80, type=socket.SOCK_STREAM)
        with pytest.raises(ZeroDivisionError):
            await loop.run_in_executor(None, divmod, 1, 0)
        return found

    found = asyncio.run(unheld(lookups()))
    assert any(address[4][0] in ("127.0.0.1", "::1") for address in found)
    assert DaemonThreads().submit(pow, 2, 10).result() == 1024


def test_run_unheld_ends_its_loop_on_every_python() -> None:
    """`run_unheld` returns the work's value whichever executor the loop ends with. From Python
    3.12 ``asyncio.Runner`` passes the loop's ``shutdown_default_executor`` a timeout: the loop's
    own override took none, and every command (check, poll, serve) ended in an internal error
    (``TypeError``) after its work was done."""

    async def work(executor: concurrent.futures.Executor | None) -> int:
        if executor is not None:
            asyncio.get_running_loop().set_default_executor(executor)
        return await asyncio.get_running_loop().run_in_executor(None, pow, 2, 10)

    assert run_unheld(work(None)) == 1024
    standard = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    assert run_unheld(work(standard)) == 1024  # a standard executor is still shut down
    with pytest.raises(RuntimeError, match="shutdown"):
        standard.submit(pow, 2, 3)


def _held(started: threading.Event, release: threading.Event, value: int) -> int:
    started.set()
    release.wait()
    return value


def test_the_executor_runs_at_most_max_threads_calls_at_once() -> None:
    """Lookups that never end each hold a thread: past the bound a call fails at once with a
    typed error instead of starting one more thread."""
    threads = DaemonThreads(max_threads=2)
    release = threading.Event()
    started = [threading.Event(), threading.Event()]
    held = [threads.submit(_held, started[n], release, n) for n in range(2)]
    assert all(event.wait(HANG_GUARD) for event in started)
    assert threads.running == 2
    with pytest.raises(NoThread, match="2 threads are still running") as refused:
        threads.submit(pow, 2, 3)
    assert isinstance(refused.value, TransportError)
    assert isinstance(refused.value, OSError)  # a lookup failing on it is a failed lookup
    release.set()
    assert [future.result(HANG_GUARD) for future in held] == [0, 1]
    assert threads.running == 0  # freed before the results were delivered
    assert threads.submit(pow, 2, 3).result(HANG_GUARD) == 8
    assert DaemonThreads().max_threads == MAX_THREADS


@pytest.mark.parametrize("bound", [0, -1, True, 2.5, "8"])
def test_the_executors_bound_must_be_a_positive_integer(bound: Any) -> None:
    with pytest.raises(ConfigError, match="max_threads"):
        DaemonThreads(max_threads=bound)


def test_a_thread_the_system_refuses_is_a_typed_error_and_frees_its_place() -> None:
    threads = DaemonThreads(max_threads=1)

    def refuse(self: threading.Thread) -> None:
        raise RuntimeError("can't start new thread")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(threading.Thread, "start", refuse)
        with pytest.raises(NoThread, match="can't start new thread"):
            threads.submit(pow, 2, 3)
    assert threads.running == 0
    assert threads.submit(pow, 2, 3).result(HANG_GUARD) == 8


REFUSING_THREADS = """
import threading
def _refused(self):
    raise RuntimeError("can't start new thread")
threading.Thread.start = _refused
"""
"""A ``sitecustomize`` for a child process that may start no thread (a container at its
process limit)."""


@pytest.mark.parametrize(
    ("command", "status", "said"),
    [("check", 3, "1 server unreachable: east (unreachable)"), ("poll", 1, "east")],
)
def test_a_command_refused_every_thread_reports_its_servers(
    tmp_path: Path, command: str, status: int, said: str
) -> None:
    """A process that may start no thread at all still reports what it read: asyncio's own end
    of the run started a thread to shut down an executor that has nothing to wait for, and
    the command ended in an internal error (``RuntimeError: can't start new thread``) instead."""
    (tmp_path / "sitecustomize.py").write_text(REFUSING_THREADS, encoding="utf-8")
    targets = tmp_path / "targets.toml"
    targets.write_text(
        f'[[servers]]\nname = "east"\nurl = "http://127.0.0.1:{closed_port()}"\nusername = "admin"\n'
        'password_env = "VBO_PASSWORD"\norganizations = "all"\n',
        encoding="utf-8",
    )
    path = os.pathsep.join([str(tmp_path), *filter(None, [os.environ.get("PYTHONPATH")])])
    done = subprocess.run(
        [sys.executable, "-m", "vbo_async", command, "--targets", str(targets)],
        capture_output=True,
        text=True,
        timeout=HANG_GUARD,
        env=child_environment(VBO_PASSWORD="admin", PYTHONPATH=path),
    )
    assert "internal error" not in done.stdout + done.stderr
    assert done.returncode == status, done.stdout + done.stderr
    assert said in done.stdout


@pytest.mark.parametrize("cause", ["bound", "refused"])
async def test_a_lookup_without_a_thread_is_that_servers_transport_error(cause: str) -> None:
    """A request whose name lookup gets no thread fails as a failed lookup does (`TransportError`,
    which every command reports as that server's failure), not with a bare ``RuntimeError``."""
    threads = DaemonThreads(max_threads=1)
    asyncio.get_running_loop().set_default_executor(threads)
    release = threading.Event()
    started = threading.Event()
    patch = pytest.MonkeyPatch()
    if cause == "bound":
        threads.submit(_held, started, release, 0)
        assert started.wait(HANG_GUARD)
    else:
        patch.setattr(
            threading.Thread, "start", lambda self: (_ for _ in ()).throw(RuntimeError("no thread"))
        )
    vbo = VBOClient(
        "https://vbo.unanswered.test:4443",
        username="admin",
        password="admin",
        api_version="v8",
        retry=RetryPolicy(attempts=1),
    )
    try:
        with pytest.raises(TransportError) as failed:
            await vbo.organizations()
    finally:
        patch.undo()
        release.set()
        await vbo.aclose()
    assert "thread" in str(failed.value)
    assert "vbo.unanswered.test" in str(failed.value)


async def test_a_wrong_password_is_unknown_and_never_printed(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, east: Served
) -> None:
    monkeypatch.setenv("VBO_PASSWORD", WRONG_PASSWORD)
    result = await check(capsys, targets_of(tmp_path, east))
    assert result.code == 3
    assert WRONG_PASSWORD not in result.out
    assert result.out.splitlines()[1].startswith("UNKNOWN: east: ")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--max-age", "26"], "Invalid value for '--max-age': '26' has no unit: write 26h"),
        (["--max-age", "0h"], "Invalid value for '--max-age': '0h' must be longer than zero"),
        (["--timeout", "soon"], "Invalid value for '-t' / '--timeout': 'soon' is not a duration"),
        (["--concurrency", "0"], "Invalid value for '--concurrency'"),
        (["--bogus"], "No such option"),
        (["--timeout"], "Option '--timeout' requires an argument. (see 'vbo-async check --help')"),
        (["--org"], "Option '--org' requires an argument."),
        (["--org", ""], "Invalid value for '--org': must not be empty or blank"),
        (["--org", "contoso", "--org", "  "], "Invalid value for '--org': must not be empty or blank"),
        (["--targets"], "Option '--targets' requires an argument."),
    ],
)
def test_usage_errors_are_unknown_on_stdout(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, args: list[str], says: str
) -> None:
    targets = write_targets(tmp_path / "t.toml", server_table("east", "http://127.0.0.1:1", "VBO_PASSWORD"))
    result = run(capsys, "check", "--targets", str(targets), *args)
    assert result.code == 3
    assert result.err == ""
    assert result.out.startswith(f"VB365 UNKNOWN - {says}")
    assert result.out.count("\n") == 1


@pytest.mark.parametrize(
    ("before", "says"),
    [
        ("--verbose", "No such option '--verbose'. Did you mean '--version'? (see 'vbo-async --help')\n"),
        ("-v", "No such option '-v'. (see 'vbo-async --help')\n"),
    ],
)
def test_a_usage_error_before_the_word_check_is_unknown_on_stdout(
    capsys: pytest.CaptureFixture[str], before: str, says: str
) -> None:
    """An option the group refuses (``vbo-async -v check``) is still a usage error of the check
    Nagios runs: UNKNOWN (3) with its message on stdout, not exit 2 (CRITICAL) and an empty
    stdout ("(No output on stdout)"); the other commands keep their exit 2 on stderr."""
    check = run(capsys, before, "check", "--targets", "t.toml")
    assert (check.code, check.out, check.err) == (3, f"VB365 UNKNOWN - {says}", "")
    poll = run(capsys, before, "poll", "--targets", "t.toml")
    assert (poll.code, poll.out, poll.err) == (2, "", f"vbo-async: error: {says}")


@pytest.mark.parametrize(
    ("targets", "environment", "says"),
    [
        ("missing.toml", {}, "cannot read"),
        ("bad.toml", {"VBO_PASSWORD": "x"}, "servers[0].cabundle: extra field"),
        ("good.toml", {}, "no password: set the environment variable VBO_PASSWORD"),
    ],
)
def test_a_bad_targets_file_or_no_password_is_unknown(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    targets: str,
    environment: dict[str, str],
    says: str,
) -> None:
    write_targets(
        tmp_path / "bad.toml", server_table("e", "http://127.0.0.1:1", "VBO_PASSWORD", cabundle='"x"')
    )
    write_targets(tmp_path / "good.toml", server_table("e", "http://127.0.0.1:1", "VBO_PASSWORD"))
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(sys.stdin, "isatty", lambda: False)
    result = run(capsys, "check", "--targets", str(tmp_path / targets))
    assert result.code == 3
    assert result.err == ""
    assert result.out.startswith("VB365 UNKNOWN - ")
    assert says in result.out.splitlines()[0]


@pytest.mark.parametrize(
    ("given", "seconds"), [("30", 30), (" 45 ", 45), ("30s", 30), ("2m", 120), ("1.5", 1.5), ("0.25", 0.25)]
)
def test_a_timeout_without_a_unit_is_seconds_as_monitoring_plugins_read_t(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, given: str, seconds: float
) -> None:
    """``-t 30``, as every monitoring plugin and check command definition writes it, is 30 s."""
    limits = []

    async def judged(*args: Any, give_up_after: dt.timedelta, **kwargs: Any) -> PluginOutput:
        limits.append(give_up_after)
        return PluginOutput(HealthState.OK, "VB365 OK - fine\n")

    monkeypatch.setattr("vbo_async._cli._check.run_check", judged)
    result = run(capsys, "check", "--targets", "t.toml", "-t", given)
    assert (result.code, result.out, result.err) == (0, "VB365 OK - fine\n", "")
    assert limits == [dt.timedelta(seconds=seconds)]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["-t", "0"], "'0' must be longer than zero"),
        (["-t", "0.0"], "'0.0' must be longer than zero"),
        (["-t", "0.0000001"], "'0.0000001' must be longer than zero"),  # under a microsecond
        (["-t", "1.5h"], "'1.5h' is not a duration"),  # a fraction only of seconds alone
        (["-t", "1e3"], "'1e3' is not a duration"),
        (["-t", "9" * 12 + ".5"], "longer than 100 years"),
        (["--max-age", "26"], "'26' has no unit: write 26h"),  # hours? days? still asked
    ],
)
def test_a_bad_timeout_or_a_max_age_without_a_unit_is_unknown(
    capsys: pytest.CaptureFixture[str], args: list[str], says: str
) -> None:
    result = run(capsys, "check", "--targets", "t.toml", *args)
    assert result.code == 3
    assert says in result.out.splitlines()[0]


def test_a_bad_vbo_async_log_is_unknown_for_check(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VBO_ASYNC_LOG", "loud")
    result = run(capsys, "check", "--targets", "t.toml")
    assert result.code == 3
    assert result.out.startswith("VB365 UNKNOWN - VBO_ASYNC_LOG must be one of")
    assert run(capsys, "poll", "--targets", "t.toml").code == 2  # the other commands keep theirs


def test_a_bad_vbo_async_log_the_output_encoding_cannot_show_is_still_unknown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``VBO_ASYNC_LOG`` is read before the command runs: its error, quoting the value, must
    print on a stdout that is not UTF-8 as every other output does ('?' for what it cannot
    show), not fail with a traceback and exit 1 (WARNING)."""
    monkeypatch.setenv("VBO_ASYNC_LOG", "отладка")
    raw = io.BytesIO()
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(raw, encoding="ascii", write_through=True))
    code = main(["check", "--targets", "t.toml"])
    sys.stdout.flush()
    assert code == 3
    assert raw.getvalue().decode("ascii") == (
        "VB365 UNKNOWN - VBO_ASYNC_LOG must be one of debug, info, warning, got '???????'\n"
    )


def test_a_closed_stderr_loses_the_held_warnings_not_the_verdict(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``vbo-async check ... 2>&-`` (``sys.stderr`` is None) with a warning held back during
    the sweep (``insecure = true``): the verdict stays the only status line and its exit code,
    not followed by a second "UNKNOWN - internal error" line and exit 3."""
    report = Report.collect(
        [job("Exchange daily", HealthState.CRITICAL, "failed 2 days ago")], servers=1, tenants=1
    )

    async def sweep(*args: Any, **kwargs: Any) -> Any:
        sys.stderr.write("vbo-async: warning: TLS certificate verification is OFF\n")
        return plugin_output(report)

    monkeypatch.setattr("vbo_async._cli._check.run_check", sweep)
    monkeypatch.setattr(sys, "stderr", None)
    code = main(["check", "--targets", str(tmp_path / "t.toml")])
    out = capsys.readouterr().out
    assert code == 2
    assert out.startswith("VB365 CRITICAL - ")
    assert out.count("VB365 ") == 1


def test_the_warnings_held_back_are_bounded(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A hostile server's 100,000 jobs with a malformed link each make as many warnings while the
    sweep runs: held back, they would follow the verdict as megabytes on a stream that Icinga
    merges into the plugin's output. What is held is bounded, and the rest counted."""
    report = Report.collect([job("Exchange daily", HealthState.CRITICAL, "failed")], servers=1, tenants=1)
    warning = "ignoring the malformed 'self' link: int (expected {'href': string})\n"

    async def sweep(*args: Any, **kwargs: Any) -> Any:
        for _ in range(100_000):
            sys.stderr.write(warning)
        return plugin_output(report)

    monkeypatch.setattr("vbo_async._cli._check.run_check", sweep)
    code = main(["check", "--targets", str(tmp_path / "t.toml")])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out.startswith("VB365 CRITICAL - ")
    lines = captured.err.splitlines(keepends=True)
    assert len(captured.err) <= HELD_CHARS + 100
    assert set(lines[:-1]) == {warning}
    assert lines[-1] == f"vbo-async: {100_000 - len(lines) + 1} more lines of warnings left out\n"


@pytest.mark.parametrize(
    ("writes", "said"),
    [
        ([], ""),
        (["a\n", "b"], "a\nb\n"),  # the last line ended
        (["w" * HELD_CHARS + "\n"], "vbo-async: 1 more lines of warnings left out\n"),  # none fits
        (["a\n", "w" * HELD_CHARS, "\n", "b\n", "c"], "a\nvbo-async: 3 more lines of warnings left out\n"),
        (["a", "w" * HELD_CHARS, "\n", "b\n"], "a\nvbo-async: 1 more lines of warnings left out\n"),
    ],
)
def test_what_is_held_back_counts_lines_not_writes(writes: list[str], said: str) -> None:
    """``print(..., file=sys.stderr)`` writes a line in two writes (the text, then its end)."""
    held = _Held()
    for text in writes:
        held.write(text)
    assert held.said() == said


def test_a_bug_is_unknown_not_warning(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr("vbo_async._cli._check.run_check", broken)
    result = run(capsys, "check", "--targets", str(tmp_path / "t.toml"))
    assert result.code == 3
    assert result.out == (
        "VB365 UNKNOWN - internal error: RuntimeError: boom (VBO_ASYNC_LOG=debug shows where)\n"
    )


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize(
    "args",
    [["--targets", "missing.toml"], ["--targets", "t.toml", "--bogus"]],
    ids=["check-error", "usage-error"],
)
def test_output_that_cannot_be_written_is_unknown_and_said_on_stderr(tmp_path: Path, args: list[str]) -> None:
    """``vbo-async check ... > /dev/full``: the plugin's output is lost, so the exit is UNKNOWN
    (3), never 1 (WARNING to a monitoring system), with one line on stderr saying why: neither
    an "internal error" nor a traceback."""
    with open("/dev/full", "w") as full:  # every write fails with ENOSPC
        completed = run_module(tmp_path, ["check", *args], stdout=full)
    assert completed.returncode == 3
    assert completed.stderr.splitlines() == [
        "vbo-async: error: cannot write the output: No space left on device"
    ]


def test_a_closed_stdout_is_unknown_and_said_on_stderr(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``vbo-async check ... >&-``: Python's ``sys.stdout`` is None."""
    monkeypatch.setattr(sys, "stdout", None)
    code = main(["check", "--targets", str(tmp_path / "missing.toml")])
    assert code == 3
    assert capsys.readouterr().err == "vbo-async: error: cannot write the output: stdout is closed\n"


def test_an_interruption_is_unknown_on_stdout(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    async def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr("vbo_async._cli._check.run_check", interrupted)
    result = run(capsys, "check", "--targets", str(tmp_path / "t.toml"))
    assert result.code == 3
    assert result.out == "VB365 UNKNOWN - interrupted\n"
    assert result.err == ""


def test_help_documents_the_plugin_exit_codes_and_output(capsys: pytest.CaptureFixture[str]) -> None:
    result = run(capsys, "check", "--help")
    assert result.code == 0
    text = " ".join(result.out.split())
    for phrase in (
        "0 OK every job is OK",
        "1 WARNING",
        "2 CRITICAL",
        "3 UNKNOWN",
        "CRITICAL > WARNING > UNKNOWN > OK",
        "--max-age DURATION",
        "[default: 26h]",
        "--schedule-aware Let --max-age follow each job's schedule",
        "(with --schedule-aware, plus the days its schedule leaves out or the hours its periodic window is"
        " closed, and an hour for daylight saving; never for a job run only by hand)",
        "--org ID|NAME",
        "--timeout DURATION",
        "v1 cannot list sessions server-wide: one request per job",
        "servers_down and tenants_unreadable",
        "--repository-free WARN,CRIT",
        "--license-expiry WARN,CRIT",
        "--proxies Judge each server's backup proxies too",
        "--repository-free, --license-expiry, --proxies: one more request per server each",
    ):
        assert phrase in text, phrase
    top = run(capsys, "--help")
    assert "check" in top.out


# --- cost ---------------------------------------------------------------------------------------------


def request_kinds(sim: Simulator) -> dict[str, int]:
    kinds: dict[str, int] = {}
    for (method, path), count in sim.stats.by_endpoint.items():
        kind = method + " " + re.sub(r"/[0-9a-f-]{36}", "/{id}", path)
        kinds[kind] = kinds.get(kind, 0) + count
    return kinds


async def test_300_tenants_on_v8_cost_a_handful_of_requests(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, judged_at_epoch: None
) -> None:
    """The check, and the table with its Health column, of a v8 server with 300 tenants: at most
    20 requests each (organizations, jobs and recent sessions in pages of 10,000, plus a page of
    sessions per job that never succeeded; the table adds one request per distinct repository
    and proxy)."""
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    big = Simulator(SimulatorConfig(seed=5, organizations=300, epoch=EPOCH))
    async with serve(create_app(simulator=big)) as port:
        targets = write_targets(
            tmp_path / "t.toml", server_table("big", f"http://127.0.0.1:{port}/v8", "VBO_PASSWORD")
        )
        result = await run_in_thread(capsys, "check", "--targets", str(targets))
        checked = request_kinds(big)
        big.reset_stats()
        table = await run_in_thread(capsys, "poll", "--targets", str(targets))
        tabled = request_kinds(big)
        big.reset_stats()
        as_json = await run_in_thread(capsys, "poll", "--targets", str(targets), "--json")
    assert result.code == 2
    assert perf_values(first_line(result.out)["perf"])["jobs"] == len(big.job_ids())
    assert checked == {
        "POST /v8/token": 1,
        "GET /v8/organizations": checked["GET /v8/organizations"],
        "GET /v8/jobs": 1,
        # The recent sessions in one listing, and the newest page of each of the 4 jobs that
        # never succeeded (no lastBackup): the window alone cannot tell how long that has lasted.
        "GET /v8/jobsessions": 1 + 4,
        "POST /v8/token/logout": 1,
    }
    assert sum(checked.values()) <= 20
    assert table.code == 0, table.err
    summary = table.out.splitlines()[-1]
    assert re.match(rf"{len(big.job_ids())} jobs on 300 tenants: \d+ critical, \d+ warning$", summary)
    assert request_kinds(big) == tabled  # --json asks the same
    rows = json.loads(as_json.out)
    assert len(rows) == len(big.job_ids())
    assert {row["health"] for row in rows} <= set(STATES)
    assert tabled["GET /v8/jobsessions"] == checked["GET /v8/jobsessions"]
    assert tabled["GET /v8/jobs"] == 1
    assert sum(tabled.values()) <= 20, tabled


# --- real processes -----------------------------------------------------------------------------------

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
"""The epoch of the simulators a child process checks: it judges health at the real time."""


async def check_process(
    targets: Path, *args: str, merge: bool = False, **environment: str
) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "vbo_async",
        "check",
        "--targets",
        str(targets),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT if merge else asyncio.subprocess.PIPE,
        env=child_environment(VBO_PASSWORD="admin", **environment),
    )
    out, err = await asyncio.wait_for(process.communicate(), HANG_GUARD)
    assert process.returncode is not None
    return process.returncode, out.decode(), (err or b"").decode()


@pytest.fixture
def now_judged(monkeypatch: pytest.MonkeyPatch) -> None:
    judge_at(monkeypatch, NOW)


async def test_exit_codes_of_a_real_process(tmp_path: Path, now_judged: None) -> None:
    async with served("east", simulator(43, epoch=NOW)) as east:
        targets = targets_of(tmp_path, east)
        codes = {}
        for state in ("OK", "WARNING", "CRITICAL"):
            code, out, err = await check_process(targets, "--org", east.organization(state))
            assert err == ""
            assert out.startswith(f"VB365 {state} - ")
            assert_plain(out)
            codes[state] = code
        code, out, _ = await check_process(targets, "--max-age", "1.5h")
        codes["usage"] = code
        assert out.startswith("VB365 UNKNOWN - Invalid value for '--max-age'")
    code, out, _ = await check_process(targets_of(tmp_path, f"http://127.0.0.1:{closed_port()}"))
    codes["down"] = code
    assert out.startswith("VB365 UNKNOWN - no jobs found on 0 tenants; 1 server unreachable")
    assert codes == {"OK": 0, "WARNING": 1, "CRITICAL": 2, "usage": 3, "down": 3}


@pytest.mark.parametrize("log_level", [None, "warning", "WARNING"])
async def test_warnings_come_after_the_status_line_on_a_merged_stream(
    tmp_path: Path, now_judged: None, tls_material: tuple[Path, Path], log_level: str | None
) -> None:
    """Icinga reads stdout and stderr as one stream: the status line must still come first,
    the library's warning (certificate verification is off) after everything else; also with
    ``VBO_ASYNC_LOG=warning`` (the level shown anyway) set on the monitoring host, which let
    the warning through first."""
    sim = simulator(43, epoch=NOW)
    async with serve(create_app(simulator=sim), certfile=tls_material[0]) as port:
        targets = write_targets(
            tmp_path / "t.toml",
            server_table("east", f"https://127.0.0.1:{port}", "VBO_PASSWORD", insecure="true"),
        )
        environment = {} if log_level is None else {"VBO_ASYNC_LOG": log_level}
        code, out, _ = await check_process(targets, merge=True, **environment)
    lines = out.splitlines()
    assert code == 2
    assert lines[0].startswith("VB365 CRITICAL - ")
    assert (
        lines[-1]
        == "vbo-async: warning: TLS certificate verification is OFF (verify=False): use only for testing"
    )
    assert sum("warning: TLS" in line for line in lines) == 1


@pytest.fixture(scope="module")
def tls_material(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from vbo_async.simulator import make_tls_material

    folder = tmp_path_factory.mktemp("check-tls")
    cert, key, ca = make_tls_material(folder)
    combined = folder / "server.pem"
    combined.write_bytes(key.read_bytes() + cert.read_bytes())
    return combined, ca


async def test_a_check_process_of_three_servers_judges_every_job(tmp_path: Path, now_judged: None) -> None:
    """One process, three servers of 8 tenants each: every job of each judged in the one verdict.
    (How quick that is belongs to the benchmarks, not to a timed assertion here: see
    `test_300_tenants_on_v8_cost_a_handful_of_requests` for the requests it costs.)"""
    async with (
        served("a", simulator(43, epoch=NOW)) as a,
        served("b", simulator(44, epoch=NOW)) as b,
        served("c", simulator(45, epoch=NOW)) as c,
    ):
        code, out, err = await check_process(targets_of(tmp_path, a, b, c))
    assert code == 2, out + err
    assert perf_values(first_line(out)["perf"])["jobs"] == sum(len(s.health) for s in (a, b, c))


async def test_check_a_simulate_process_from_a_check_process(tmp_path: Path) -> None:
    """Both sides real processes: ``vbo-async simulate`` (its "now" the real time) and
    ``vbo-async check`` of its 20 organizations, by the URL it prints."""
    from .test_cli import served_url, start_simulate, stop

    process, lines = await start_simulate(tmp_path, "--port", "0", "--seed", "3")
    try:
        targets = write_targets(
            tmp_path / "t.toml", server_table("sim", served_url(lines[-1]), "VBO_PASSWORD")
        )
        code, out, err = await check_process(targets, "--max-age", "2d")
    finally:
        await stop(process)
    assert err == ""
    assert_plain(out)
    match = first_line(out)
    assert code == {"OK": 0, "WARNING": 1, "CRITICAL": 2, "UNKNOWN": 3}[match.group(1)]
    values = perf_values(match["perf"])
    assert values["jobs"] == len(Simulator(SimulatorConfig(seed=3, organizations=20)).job_ids())
    assert values["jobs"] == values["ok"] + values["warning"] + values["critical"] + values["unknown"]
    assert len(out.splitlines()) == 1 + values["jobs"] - values["ok"]
    stale = [line for line in out.splitlines()[1:] if ": no success for " in line]
    assert all(line.endswith("(max 48 h)") for line in stale), stale  # --max-age 2d was applied


def test_a_name_that_is_only_blanks_or_controls_is_named_by_its_id() -> None:
    """Made plain, a job or tenant name of line breaks and blanks would leave nothing to tell which
    job a line is about: its id stands in, as it does for a job without a name."""
    rows = [
        Row(
            server="east",
            organization="\r\n",
            organization_id="org-7",
            job=" \x1b ",
            job_id="job-42",
            health=HealthState.CRITICAL,
            health_reason="failed 1 h ago",
        ),
        Row(server="east", organization="\t", organization_id="org-9", error="HTTP 500"),
    ]
    lines = plugin_output(Report.collect(rows, servers=1, tenants=2)).text.splitlines()
    assert "org-7/job-42 (failed 1 h ago)" in lines[0]
    assert "east/org-9 (could not be read)" in lines[0]
    assert lines[1:] == ["CRITICAL: east/org-7/job-42: failed 1 h ago", "UNKNOWN: east/org-9: HTTP 500"]


def test_a_stray_cancellation_is_unknown_not_a_traceback(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`asyncio.CancelledError` is no `Exception`: a bug letting one out of the sweep (a task
    cancelled that should not be) must still be one UNKNOWN line and exit 3, not a traceback and
    exit 1, which a monitoring system reads as WARNING."""

    async def cancelled(*args: Any, **kwargs: Any) -> Any:
        raise asyncio.CancelledError

    monkeypatch.setattr("vbo_async._cli._check.run_check", cancelled)
    result = run(capsys, "check", "--targets", str(tmp_path / "t.toml"))
    assert result.code == 3
    assert result.out.startswith("VB365 UNKNOWN - internal error: CancelledError")
    assert result.out.count("\n") == 1
    assert "Traceback" not in result.err


def test_a_bug_while_the_options_are_read_is_unknown_not_warning(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """An internal error in an option's callback (before the command runs) is still the plugin's
    UNKNOWN line on stdout and exit 3, not a line on stderr and exit 1 (WARNING)."""

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr("vbo_async._cli._check.parse_duration", broken)
    result = run(capsys, "check", "--targets", str(tmp_path / "t.toml"))
    assert result.code == 3
    assert result.out == (
        "VB365 UNKNOWN - internal error: RuntimeError: boom (VBO_ASYNC_LOG=debug shows where)\n"
    )


def test_an_interruption_while_the_options_are_read_is_unknown(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Ctrl-C before the command runs (its options being read) is the plugin's UNKNOWN line and
    exit 3, as later, not exit 130, which no monitoring system knows."""

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr("vbo_async._cli._check.parse_duration", interrupted)
    result = run(capsys, "check", "--targets", str(tmp_path / "t.toml"))
    assert result.code == 3
    assert result.out == "VB365 UNKNOWN - interrupted\n"


# --- --repository-free: each server's backup repositories judged beside its jobs ---------------------

GIB = 2**30
LEVELS = FreeSpace(20, 10)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("20,10", (20, 10)),
        ("20%,10%", (20, 10)),
        (" 25 % , 2.5 ", (25, 2.5)),
        ("10,10", (10, 10)),
        ("100,0", (100, 0)),
    ],
)
def test_levels(text: str, expected: tuple[float, float]) -> None:
    assert parse_free_space(text) == FreeSpace(*expected)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("10", "is not WARN,CRIT"),
        ("20,10,5", "is not WARN,CRIT"),
        ("ten,5", "'ten' is not a percentage"),
        ("101,5", "'101' is not a percentage from 0 to 100"),
        ("20,-1", "'-1' is not a percentage from 0 to 100"),
        ("nan,5", "'nan' is not a percentage from 0 to 100"),
        ("10,20", "the critical level 20% is above the warning level 10%"),
        (",", "'' is not a percentage"),
    ],
)
def test_bad_levels(text: str, says: str) -> None:
    with pytest.raises(FreeSpaceError, match=re.escape(says)):
        parse_free_space(text)


@given(st.text(max_size=30))
@example("1e309,1")
@example("inf,1")
def test_any_text_is_levels_or_a_free_space_error(text: str) -> None:
    try:
        levels = parse_free_space(text)
    except FreeSpaceError:
        return
    assert 0 <= levels.critical <= levels.warning <= 100


def repository(
    name: str, free: int | None, capacity: int | None = 100 * GIB, **fields: object
) -> BackupRepository:
    return BackupRepository(
        id=f"id-{name}",
        name=name,
        capacity=capacity,
        free_space=free,
        **fields,  # type: ignore[arg-type]
    )


@given(st.integers(min_value=-(2**70), max_value=2**70), st.integers(min_value=-(2**70), max_value=2**70))
def test_the_free_share_is_a_percentage_or_none(free: int, capacity: int) -> None:
    percent = free_percent(repository("r", free, capacity))
    if capacity <= 0 or free < 0:  # no capacity, or a size that cannot be: no share
        assert percent is None
    else:
        assert percent is not None
        assert 0 <= percent <= 100


def test_repositories_are_judged_beside_the_jobs() -> None:
    stores = [
        repository("Plenty", 50 * GIB),
        repository("Filling", 15 * GIB),
        repository("Full", 5 * GIB),
        repository("Broken", 60 * GIB, is_out_of_order=True, out_of_order_reason="Disk\nfailed"),
        repository("Lagging", 70 * GIB, is_out_of_sync=True),
        repository("Unsized", None, None),
    ]
    output = plugin_output(
        Report.collect(ok_jobs(3), servers=2, tenants=1),
        repositories=[("east", stores), ("west", "no answer within 50s")],
        free=LEVELS,
    )
    assert output.state is HealthState.CRITICAL
    lines = output.text.splitlines()
    assert lines[0] == (
        "VB365 CRITICAL - 3 jobs OK on 1 tenant of 2 servers, 2 of 6 repositories critical, 2 warning; "
        "the repositories of 1 server unreadable: "
        "east/Broken (out of order (Disk failed)), east/Full (5.0% free (5.0 GiB of 100.0 GiB)), "
        "east/Filling (15.0% free (15.0 GiB of 100.0 GiB)), ... "
        "| jobs=3;;;0 ok=3;;;0 warning=0;;;0 critical=0;;;0 unknown=0;;;0 servers_down=0;;;0 "
        "tenants_unreadable=0;;;0 repositories=6;;;0 repositories_warning=2;;;0 repositories_critical=2;;;0 "
        "repository_free_min=5.0%;20:;10:;0;100"
    )
    assert lines[1:] == [
        "CRITICAL: east/repository Broken: out of order (Disk failed)",
        "CRITICAL: east/repository Full: 5.0% free (5.0 GiB of 100.0 GiB)",
        "WARNING: east/repository Filling: 15.0% free (15.0 GiB of 100.0 GiB)",
        "WARNING: east/repository Lagging: out of sync",
        "UNKNOWN: west/repositories: no answer within 50s",
    ]


@pytest.mark.parametrize(("free", "capacity"), [(-1, 100 * GIB), (5 * GIB, -5), (-1, -5)])
def test_a_repository_reporting_a_negative_size_is_unknown_not_ok(free: int, capacity: int) -> None:
    """``freeSpaceBytes: -1`` (or a negative capacity) was clamped to 0% free, CRITICAL, or, with
    a negative capacity, judged as reporting none: OK. No repository has a negative size: the
    server's data is not to be trusted there, UNKNOWN, and no share of it is in the perfdata."""
    output = plugin_output(
        Report.collect(ok_jobs(1), servers=1, tenants=1),
        repositories=[("east", [repository("Odd", free, capacity)])],
        free=LEVELS,
    )
    assert output.state is HealthState.UNKNOWN
    assert f"UNKNOWN: east/repository Odd: sizes that cannot be ({free} bytes free of {capacity})" in (
        output.text.splitlines()
    )
    assert "repository_free_min" not in output.text


def test_shown_shares_and_days_never_contradict_the_state_they_decided() -> None:
    """19.976% free at a warning level of 20 is WARNING: shown as ``20.0%`` (and ``20.0`` against
    the ``20:`` threshold of the performance data) the plugin's own line said otherwise. Shown
    values take the decimals that keep them on their side of each level; thresholds are plain
    decimals (``%g`` wrote ``1e-05`` and ``1.15741e-05``, outside the guidelines' characters)."""
    stores = [repository("Edge", int(19.976 * GIB), 100 * GIB), repository("Low", int(9.99 * GIB), 100 * GIB)]
    output = plugin_output(
        Report.collect(ok_jobs(1), servers=1, tenants=1), repositories=[("east", stores)], free=LEVELS
    )
    lines = output.text.splitlines()
    assert lines[1:] == [
        "CRITICAL: east/repository Low: 9.99% free (10.0 GiB of 100.0 GiB)",
        "WARNING: east/repository Edge: 19.98% free (20.0 GiB of 100.0 GiB)",
    ]
    assert lines[0].endswith(" repository_free_min=9.99%;20:;10:;0;100")
    tiny = plugin_output(
        Report.collect(ok_jobs(1), servers=1, tenants=1),
        repositories=[("east", stores)],
        free=FreeSpace(0.00001, 0),
        licenses=[("east", (license_of(6.96), LICENSE_NOW))],
        expiry=Expiry(dt.timedelta(seconds=2), dt.timedelta(seconds=1)),
    )
    perf = tiny.text.splitlines()[0].split(" | ")[1].split(" ")
    assert "repository_free_min=10.0%;0.00001:;0:;0;100" in perf  # no level near: one decimal
    assert "license_days_left_min=7.0;0.000023148148148148147:;0.000011574074074074073:;" in perf
    assert all(PERF_ITEM.match(item) for item in perf)


@given(
    value=st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
    levels=st.lists(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), max_size=3),
)
@example(value=19.976, levels=[20.0, 10.0])
@example(value=20.0, levels=[20.0])
@example(value=6.999999999, levels=[7.0])
def test_a_shown_value_is_on_the_side_of_each_level_its_value_is(value: float, levels: list[float]) -> None:
    shown = _agreeing(value, levels)
    assert re.fullmatch(r"-?\d+\.\d+", shown), shown
    assert all((float(shown) < level) == (value < level) for level in levels)
    one = f"{value:.1f}"
    if all((float(one) < level) == (value < level) for level in levels):
        assert shown == one  # more decimals only where one would cross a level


@given(st.floats(min_value=0, max_value=1e12, allow_nan=False) | st.integers(min_value=0, max_value=10**9))
def test_a_threshold_is_a_plain_decimal_that_reads_back(level: float) -> None:
    text = _decimal(level)
    assert re.fullmatch(r"\d+(\.\d+)?", text), text
    assert float(text) == float(level)


def test_repositories_all_ok_and_levels_not_asked_for() -> None:
    stores = [repository("Plenty", 50 * GIB), repository("Enough", 20 * GIB)]
    report = Report.collect(ok_jobs(2), servers=1, tenants=1)
    output = plugin_output(report, repositories=[("east", stores)], free=LEVELS)
    assert output.state is HealthState.OK
    assert output.text == (
        "VB365 OK - 2 jobs OK on 1 tenant, 2 repositories OK | jobs=2;;;0 ok=2;;;0 warning=0;;;0 "
        "critical=0;;;0 unknown=0;;;0 servers_down=0;;;0 tenants_unreadable=0;;;0 repositories=2;;;0 "
        "repositories_warning=0;;;0 repositories_critical=0;;;0 repository_free_min=20.0%;20:;10:;0;100\n"
    )
    # Without levels the repositories are not judged, whatever is given.
    assert plugin_output(report, repositories=[("east", stores)]) == plugin_output(report)


async def without_and_with(
    capsys: pytest.CaptureFixture[str], sim: Simulator, targets: Path, *option: str
) -> tuple[Result, Result, int]:
    """`check` of ``targets`` without ``option``, then with it: both results, and how many more
    requests ``sim`` was sent the second time than the first."""
    start = sum(sim.stats.by_endpoint.values())
    plain_check = await check(capsys, targets)
    middle = sum(sim.stats.by_endpoint.values())
    result = await check(capsys, targets, *option)
    return plain_check, result, (sum(sim.stats.by_endpoint.values()) - middle) - (middle - start)


async def test_a_server_s_repositories_are_checked_with_one_more_request(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, east: Served
) -> None:
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    sim = east.simulator
    stores = sorted(sim._repositories.values(), key=lambda r: r.name)
    full, broken = stores[0], stores[1]
    sim.set_free_space(full.id, full.capacity // 20)  # 5%
    sim.set_out_of_order(broken.id, "Repository is unavailable")
    plain_check, result, more = await without_and_with(
        capsys, sim, targets_of(tmp_path, east), "--repository-free", "20%,10%"
    )
    assert more == 1
    lines = result.out.splitlines()
    assert f"CRITICAL: east/repository {broken.name}: out of order (Repository is unavailable)" in lines
    assert f"CRITICAL: east/repository {full.name}: 5.0% free (" in "\n".join(lines)
    job_lines = [line for line in lines[1:] if "/repository " not in line]
    assert job_lines == plain_check.out.splitlines()[1:]
    match = first_line(result.out)
    assert f", 2 of {len(stores)} repositories critical" in match["text"]
    assert result.code == 2
    with pytest.raises(ConfigError, match="free_space must be from 0 to the capacity"):
        sim.set_free_space(full.id, full.capacity + 1)


async def test_with_org_only_the_repositories_its_jobs_use(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, east: Served
) -> None:
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    sim = east.simulator
    names = {r.name for r in sim._repositories.values()}
    used_by: dict[str, set[str]] = {}
    for row in east.rows.values():
        used_by.setdefault(row["organization_id"], set()).add(row["repository"])
    org, used = min(used_by.items(), key=lambda item: len(item[1]))
    assert used < names  # the seed gives an organization that leaves some repository unused
    for store in sim._repositories.values():
        sim.set_free_space(store.id, 0)
    result = await check(capsys, targets_of(tmp_path, east), "--org", org, "--repository-free", "20,10")
    judged = {
        line.split("/repository ", 1)[1].split(":", 1)[0]
        for line in result.out.splitlines()
        if "/repository " in line
    }
    assert judged == used


async def test_a_bad_level_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    async with served("east", simulator(43)) as east_server:
        result = await check(capsys, targets_of(tmp_path, east_server), "--repository-free", "10,20")
    assert result.code == 3
    assert result.out.startswith("VB365 UNKNOWN - ")
    assert "the critical level 20% is above the warning level 10%" in result.out


async def test_a_repository_listed_twice_is_judged_once(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A server that repeats a repository in its listing (ids compared ignoring case) gets one
    line for it, not two."""
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    sim = simulator(43)
    store = sorted(sim._repositories.values(), key=lambda r: r.name)[0]
    sim.set_free_space(store.id, 0)
    original = sim.repositories_wire

    def repeated(*args: Any, **kwargs: Any) -> Any:
        listed = original(*args, **kwargs)
        items = listed["results"] if isinstance(listed, dict) else listed
        first = dict(items[0])
        first["id"] = first["id"].upper()
        items.append(first)
        return listed

    monkeypatch.setattr(sim, "repositories_wire", repeated)
    async with served("east", sim) as east_server:
        result = await check(capsys, targets_of(tmp_path, east_server), "--repository-free", "20,10")
    assert sum(f"/repository {store.name}:" in line for line in result.out.splitlines()) == 1


# --- --license-expiry: each server's license judged beside its jobs ---------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30,7", (30, 7)),
        ("30d,7d", (30, 7)),
        (" 2d12h , 1d ", (2.5, 1)),
        ("7,7", (7, 7)),
        ("1.5,0.5", (1.5, 0.5)),
    ],
)
def test_expiry_levels(text: str, expected: tuple[float, float]) -> None:
    warning, critical = (dt.timedelta(days=days) for days in expected)
    assert parse_expiry(text) == Expiry(warning, critical)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("30", "is not WARN,CRIT"),
        ("30,7,1", "is not WARN,CRIT"),
        ("soon,7", "soon"),
        ("30,0", "0"),
        (
            "7,30",
            "the critical level 30d, the warning level 7d: the critical level must be at most the warning",
        ),
    ],
)
def test_bad_expiry_levels(text: str, says: str) -> None:
    with pytest.raises(DurationError, match=re.escape(says)):
        parse_expiry(text)


@given(st.text(max_size=30))
def test_any_text_is_expiry_levels_or_a_duration_error(text: str) -> None:
    try:
        levels = parse_expiry(text)
    except DurationError:
        return
    assert dt.timedelta(0) < levels.critical <= levels.warning


LICENSE_NOW = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)
"""When the license tests judge (its own name: a second ``NOW`` replaced the real time the
child-process tests above judge at, and they failed a day after it)."""


def license_of(days: float | None, **fields: Any) -> License:
    expires = None if days is None else LICENSE_NOW + dt.timedelta(days=days)
    given = {"status": LicenseStatus.VALID, "total_number": 100, "used_number": 50, **fields}
    return License(license_expires=expires, **given)


def test_licenses_are_judged_beside_the_jobs() -> None:
    licenses = [
        ("a", (license_of(5), LICENSE_NOW)),
        ("b", (license_of(20), LICENSE_NOW)),
        ("c", (license_of(-3, grace_period_expires=LICENSE_NOW + dt.timedelta(days=27)), LICENSE_NOW)),
        ("d", (license_of(90, status=LicenseStatus.EXPIRED), LICENSE_NOW)),
        ("e", (license_of(200, used_number=120), LICENSE_NOW)),
        ("f", "cannot connect"),
        ("g", (license_of(None), LICENSE_NOW)),
        ("h", (license_of(0.25), LICENSE_NOW)),
    ]
    output = plugin_output(
        Report.collect(ok_jobs(1), servers=8, tenants=1),
        licenses=licenses,
        expiry=Expiry(dt.timedelta(30), dt.timedelta(7)),
    )
    assert output.state is HealthState.CRITICAL
    lines = output.text.splitlines()
    assert lines[1:] == [
        "CRITICAL: a/license: expires in 5 days (2026-12-07)",
        "CRITICAL: c/license: expired 3 days ago (2026-11-29), grace period until 2026-12-29",
        "CRITICAL: d/license: expired, its date (2027-03-02) still ahead",
        "CRITICAL: h/license: expires in 6 h (2026-12-02)",
        "WARNING: b/license: expires in 20 days (2026-12-22)",
        "WARNING: e/license: 120 users use a license, 100 licensed",
        "UNKNOWN: f/license: cannot connect",
    ]
    text, perf = lines[0].split(" | ")
    assert text.startswith(
        "VB365 CRITICAL - 1 job OK on 1 tenant of 8 servers, 4 of 7 licenses critical, 2 warning; "
    )
    assert "the license of 1 server unreadable: a license (expires in 5 days (2026-12-07))" in text
    assert perf.endswith(" license_days_left_min=-3.0;30:;7:;")


@pytest.mark.parametrize(
    "never",
    [
        dt.datetime(1, 1, 1, tzinfo=dt.UTC),  # .NET's DateTime.MinValue, read as UTC
        dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC),  # its MaxValue
    ],
    ids=["min-value", "max-value"],
)
def test_a_license_dated_never_has_no_expiry_date_as_serve_reads_it(never: dt.datetime) -> None:
    """A server writing .NET's "no date" as the expiry was judged on it: 0001-01-01 a license
    "expired 739952 days ago (1-01-01)", CRITICAL, and a 9999 date "expires in 2912106 days" in
    the performance data; ``serve`` publishes no expiry for either."""
    report = Report.collect(ok_jobs(1), servers=1, tenants=1)
    licensed = License(license_expires=never, status=LicenseStatus.VALID, total_number=10, used_number=5)
    output = plugin_output(
        report, licenses=[("east", (licensed, LICENSE_NOW))], expiry=Expiry(dt.timedelta(30), dt.timedelta(7))
    )
    assert output.state is HealthState.OK
    assert output.text.startswith("VB365 OK - 1 job OK on 1 tenant, 1 license OK | ")
    assert "license_days_left" not in output.text
    assert days_left(licensed, LICENSE_NOW) is None


def test_a_license_status_the_client_does_not_know_is_unknown_not_valid() -> None:
    """``status: "Invalid"`` (no value the vendor's schema lists) was OK, "valid, no expiry
    date": a status that is neither Valid nor Expired is UNKNOWN, as a proxy's is."""
    report = Report.collect(ok_jobs(1), servers=1, tenants=1)
    unknown = license_of(400, status=LicenseStatus("Invalid"))
    output = plugin_output(
        report, licenses=[("east", (unknown, LICENSE_NOW))], expiry=Expiry(dt.timedelta(30), dt.timedelta(7))
    )
    assert output.state is HealthState.UNKNOWN
    assert "UNKNOWN: east/license: status Invalid" in output.text.splitlines()
    assert "valid" not in output.text.lower().replace("invalid", "")


def test_licenses_all_ok_and_levels_not_asked_for() -> None:
    report = Report.collect(ok_jobs(1), servers=1, tenants=1)
    licenses = [("east", (license_of(400), LICENSE_NOW))]
    output = plugin_output(report, licenses=licenses, expiry=Expiry(dt.timedelta(30), dt.timedelta(7)))
    assert output.state is HealthState.OK
    assert output.text.startswith("VB365 OK - 1 job OK on 1 tenant, 1 license OK | ")
    assert output.text.endswith(" license_days_left_min=400.0;30:;7:;\n")
    assert plugin_output(report, licenses=licenses) == plugin_output(report)
    # A server without a license in its API (v1) is not among them: nothing is said of it.
    assert plugin_output(
        report, licenses=[], expiry=Expiry(dt.timedelta(30), dt.timedelta(7))
    ) == plugin_output(report)


@pytest.mark.parametrize(
    ("levels", "state"), [("1000,1", "WARNING"), ("2000d,1000d", "CRITICAL"), ("10,1", "OK")]
)
async def test_a_server_s_license_is_checked_with_one_more_request(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    levels: str,
    state: str,
) -> None:
    """The simulator's license expires 30 to 700 days after its epoch, here the check's now."""
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    sim = simulator(43, now)
    sim._license = attrs.evolve(sim._license, total=10**6)  # no more users than licensed
    async with served("east", sim) as east_server:
        targets = targets_of(tmp_path, east_server)
        plain_check, result, more = await without_and_with(capsys, sim, targets, "--license-expiry", levels)
    assert more == 1
    lines = result.out.splitlines()
    license_lines = [line for line in lines if line.startswith(f"{state}: east/license: expires in ")]
    assert len(license_lines) == (0 if state == "OK" else 1)
    assert [line for line in lines[1:] if "/license" not in line] == plain_check.out.splitlines()[1:]
    assert " license_days_left_min=" in lines[0]
    if state == "OK":
        assert ", 1 license OK" in lines[0]


async def test_a_v1_server_has_no_license_to_judge(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    async with served("east", simulator(43, now, api_versions=("v1", "v8"))) as east_server:
        targets = targets_of(tmp_path, east_server, api_version='"v1"')
        plain_check = await check(capsys, targets)
        result = await check(capsys, targets, "--license-expiry", "30,7")
    assert result.out == plain_check.out


def test_a_v1_server_whose_license_was_not_asked_for_in_time_is_not_said_to_be_late() -> None:
    """v1 has no license: a server that never answered for one has nothing to say of it, when
    time was up before it was asked for too; a server that could not be listed is said to be
    down once, by its failure row, not once more per read it was never asked for."""
    old = SimpleNamespace(target=SimpleNamespace(label="old"), client=SimpleNamespace(api_version="v1"))
    new = SimpleNamespace(target=SimpleNamespace(label="new"), client=SimpleNamespace(api_version="v8"))
    swept = Swept([old, new], dt.timedelta(seconds=2))  # type: ignore[list-item]
    swept.listed.update({0: ([], []), 1: ([], [])})
    assert swept.license_findings() == [("new", "no answer within 2s")]
    assert swept.proxy_findings() == [("old", "no answer within 2s"), ("new", "no answer within 2s")]
    swept.unlisted.add(1)
    assert swept.license_findings() == []
    assert swept.proxy_findings() == [("old", "no answer within 2s")]
    assert swept.repository_findings() == [("old", "no answer within 2s")]


async def test_a_server_that_cannot_be_listed_is_asked_for_nothing_more(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, east: Served
) -> None:
    """A server refusing the password (or down) was still asked for its repositories, license
    and proxies, each read failing as the listing had: three more UNKNOWN lines for one server,
    and its retries three more times."""
    monkeypatch.setenv("VBO_PASSWORD", "not the password")
    options = ("--repository-free", "20,10", "--license-expiry", "30,7", "--proxies")
    plain_check, result, more = await without_and_with(
        capsys, east.simulator, targets_of(tmp_path, east), *options
    )
    assert more == 0
    assert result.code == plain_check.code == 3
    lines, plain_lines = result.out.splitlines(), plain_check.out.splitlines()
    assert lines[0].split(" | ")[0] == plain_lines[0].split(" | ")[0]  # the perfdata names the options' items
    assert lines[1:] == plain_lines[1:]
    assert len(lines) == 2  # the server's one failure line


async def test_with_org_only_the_licenses_of_its_servers(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    async with served("east", simulator(43, now)) as east_server, served("west", simulator(44, now)) as west:
        org = next(iter(east_server.rows.values()))["organization_id"]
        targets = targets_of(tmp_path, east_server, west)
        everything = await check(capsys, targets, "--license-expiry", "2000d,1000d")
        one = await check(capsys, targets, "--org", org, "--license-expiry", "2000d,1000d")
    assert [line.split(":", 2)[1] for line in everything.out.splitlines() if "/license:" in line] == [
        " east/license",
        " west/license",
    ]
    assert [line.split(":", 2)[1] for line in one.out.splitlines() if "/license:" in line] == [
        " east/license"
    ]


def test_repository_text_from_servers_is_made_plain_and_bounded() -> None:
    """A repository's name and out-of-order reason come from the server: made plain, cut, and
    a thousand of them keep the output within what a monitoring system reads."""
    forged = repository(
        "Repo\nCRITICAL: forged|x",
        5 * GIB,
        is_out_of_order=True,
        out_of_order_reason="\x1b[31mgone\x1b[0m" + "y" * 5000,
    )
    stores = [forged, *(repository(f"S{n:04d} " + "z" * 300, 1 * GIB) for n in range(1000))]
    output = plugin_output(
        Report.collect(ok_jobs(1), servers=1, tenants=1), repositories=[("east", stores)], free=LEVELS
    )
    lines = output.text.splitlines()
    assert output.text.count("|") == 1
    assert_plain(output.text)
    forged_lines = [line for line in lines[1:] if "forged" in line]
    assert len(forged_lines) == 1  # kept: the worst lines come first, then by name
    assert forged_lines[0].startswith(
        "CRITICAL: east/repository Repo CRITICAL: forged/x: out of order ([31mgone"
    )
    assert len(output.text.encode()) <= OUTPUT_BYTES
    assert lines[-1].endswith("CRITICAL lines left out")
    assert all(len(line) <= LINE_CHARS for line in lines[1:])


# --- --proxies: each server's backup proxies judged beside its jobs ---------------------------------


def proxy(name: str, status: str | None, maintenance: str | None = None) -> Proxy:
    return Proxy(
        id=f"id-{name}",
        host_name=name,
        status=None if status is None else ProxyStatus(status),
        maintenance_mode_state=None if maintenance is None else MaintenanceModeState(maintenance),
    )


def test_proxies_are_judged_beside_the_jobs() -> None:
    hosts = [
        proxy("up", "Online"),
        proxy("down", "Offline"),
        proxy("serviced", "Offline", "Enabled"),
        proxy("odd", "Degraded\x1b[31m"),
        proxy("silent", None),
    ]
    output = plugin_output(
        Report.collect(ok_jobs(1), servers=2, tenants=1),
        proxies=[("east", hosts), ("west", "cannot connect")],
    )
    assert output.state is HealthState.CRITICAL
    lines = output.text.splitlines()
    assert lines[1:] == [
        "CRITICAL: east/proxy down: offline",
        "WARNING: east/proxy serviced: offline, in maintenance mode",
        "UNKNOWN: east/proxy odd: status Degraded [31m",
        "UNKNOWN: west/proxies: cannot connect",
    ]
    text, perf = lines[0].split(" | ")
    assert text.startswith(
        "VB365 CRITICAL - 1 job OK on 1 tenant of 2 servers, 1 of 5 proxies offline, 1 warning, 1 unknown; "
        "the proxies of 1 server unreadable: "
    )
    assert perf.endswith(" proxies=5;;;0 proxies_not_ok=3;;;0")
    assert_plain(output.text)
    online = plugin_output(Report.collect(ok_jobs(1), servers=1, tenants=1), proxies=[("east", hosts[:1])])
    assert online.text.startswith("VB365 OK - 1 job OK on 1 tenant, 1 proxy online | ")
    report = Report.collect(ok_jobs(1), servers=1, tenants=1)
    assert plugin_output(report, proxies=None) == plugin_output(report)


@pytest.mark.parametrize(
    ("statuses", "said"),
    [
        (["Online", "Online"], "2 proxies online"),
        (["Online", None, "Online"], "2 proxies online, 1 with no status"),
        (["Online", None, None], "1 proxy online, 2 with no status"),
        ([None, None], "2 proxies with no status"),
        ([None], "1 proxy with no status"),
    ],
)
def test_proxies_with_no_status_are_ok_but_not_said_to_be_online(
    statuses: list[str | None], said: str
) -> None:
    """A proxy the server reports without a status is judged OK (nothing says it is down), but
    the status line said "2 proxies online" of two that said nothing; the perfdata is as it was."""
    hosts = [proxy(f"p{number}", status) for number, status in enumerate(statuses)]
    output = plugin_output(Report.collect(ok_jobs(1), servers=1, tenants=1), proxies=[("east", hosts)])
    assert output.text == (
        f"VB365 OK - 1 job OK on 1 tenant, {said} | jobs=1;;;0 ok=1;;;0 warning=0;;;0 critical=0;;;0 "
        f"unknown=0;;;0 servers_down=0;;;0 tenants_unreadable=0;;;0 proxies={len(hosts)};;;0 "
        "proxies_not_ok=0;;;0\n"
    )


async def test_a_server_s_proxies_are_checked_with_one_more_request(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, east: Served
) -> None:
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    sim = east.simulator
    first, *_ = sorted(sim._proxies.values(), key=lambda p: p.host_name)
    sim.set_proxy_status(first.id, "Offline")
    plain_check, result, more = await without_and_with(capsys, sim, targets_of(tmp_path, east), "--proxies")
    assert more == 1
    lines = result.out.splitlines()
    assert f"CRITICAL: east/proxy {first.host_name}: offline" in lines
    assert [line for line in lines[1:] if "/proxy " not in line] == plain_check.out.splitlines()[1:]
    assert f", 1 of {len(sim._proxies)} proxies offline" in lines[0]
    assert lines[0].endswith(f" proxies={len(sim._proxies)};;;0 proxies_not_ok=1;;;0")
    with pytest.raises(SimulatedError):
        sim.set_proxy_status("no-such-proxy", "Online")


def answering_with(app: Any, path_end: str, edit: Callable[[bytes], bytes], *, delay: float = 0.0) -> Any:
    """``app`` with the body of its answers to paths ending in ``path_end`` (lower-cased) given
    by ``edit``, sent ``delay`` seconds late."""

    async def edited(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].lower().endswith(path_end):
            return await app(scope, receive, send)
        await asyncio.sleep(delay)
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def keep(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                body = edit(b"".join(chunks))
                headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
                await send({**start, "headers": [*headers, (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})

        await app(scope, receive, keep)

    return edited


def _item_with(item_id: str, key: str, value: Any) -> Callable[[bytes], bytes]:
    """An edit of a listing's body: ``key`` of the item ``item_id`` set to ``value``."""

    def edit(body: bytes) -> bytes:
        data = json.loads(body)
        for item in data["results"] if isinstance(data, dict) else data:
            if item["id"] == item_id:
                item[key] = value
        return json.dumps(data).encode()

    return edit


async def test_a_repository_or_proxy_that_cannot_be_decoded_is_unknown_and_the_others_judged(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, east: Served
) -> None:
    """One repository whose ``capacityBytes`` and one proxy whose ``cpuUsagePercent`` no model
    holds: the server's whole listing was one UNKNOWN line (``the repositories of 1 server
    unreadable``), its full repository and offline proxy unjudged. Now that one is UNKNOWN
    and its neighbours judged."""
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    sim = east.simulator
    stores = sorted(sim._repositories.values(), key=lambda r: r.name)
    hosts = sorted(sim._proxies.values(), key=lambda p: p.host_name)
    assert len(stores) >= 2
    assert len(hosts) >= 2
    sim.set_free_space(stores[-1].id, stores[-1].capacity // 20)  # 5%
    sim.set_proxy_status(hosts[-1].id, "Offline")
    app = answering_with(
        create_app(simulator=sim), "/backuprepositories", _item_with(stores[0].id, "capacityBytes", "a lot")
    )
    app = answering_with(app, "/proxies", _item_with(hosts[0].id, "cpuUsagePercent", "busy"))
    async with serve(app) as port:
        targets = write_targets(
            tmp_path / "t.toml", server_table("east", f"http://127.0.0.1:{port}", "VBO_PASSWORD")
        )
        result = await check(capsys, targets, "--repository-free", "20,10", "--proxies", "-t", "30")
    lines = result.out.splitlines()
    assert f"CRITICAL: east/repository {stores[-1].name}: 5.0% free (" in "\n".join(lines)
    assert f"CRITICAL: east/proxy {hosts[-1].host_name}: offline" in lines
    unread = [line for line in lines if "could not decode" in line or "cannot decode" in line]
    assert len(unread) == 2, lines
    assert all(line.startswith("UNKNOWN: east/") for line in unread), unread
    status, perfdata = lines[0].split(" | ")
    assert "unreadable" not in status
    assert f" repositories={len(stores)};;;0 " in perfdata
    assert f" proxies={len(hosts)};;;0 proxies_not_ok=2;;;0" in perfdata
    assert result.code == 2


async def test_repositories_that_cannot_be_decoded_nor_their_id_read_are_each_unknown(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, east: Served
) -> None:
    """Two repositories without a readable id (``"id": null``): they were one ``repository ?``
    line and counted once, and a check ``--org`` dropped them (no job names an id that is not
    there), OK where the whole listing's failure was UNKNOWN."""
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    sim = east.simulator
    stores = sorted(sim._repositories.values(), key=lambda r: r.name)

    def two_without_id(body: bytes) -> bytes:
        data = json.loads(body)
        for item in (data["results"] if isinstance(data, dict) else data)[:2]:
            item["id"], item["capacityBytes"] = None, "a lot"
        return json.dumps(data).encode()

    app = answering_with(create_app(simulator=sim), "/backuprepositories", two_without_id)
    async with serve(app) as port:
        targets = write_targets(
            tmp_path / "t.toml", server_table("east", f"http://127.0.0.1:{port}", "VBO_PASSWORD")
        )
        whole = await check(capsys, targets, "--repository-free", "20,10")
        one = await check(capsys, targets, "--repository-free", "20,10", "--org", east.organization("OK"))
    for result in (whole, one):
        unread = [line for line in result.out.splitlines() if line.startswith("UNKNOWN: east/repository ?: ")]
        assert len(unread) == 2, result.out
    assert (whole.code, one.code) == (2, 3)  # a job of another tenant fails; the OK tenant's storage unknown
    assert f" repositories={len(stores)};;;0 " in whole.out.splitlines()[0]


async def test_a_slow_repository_listing_holds_up_no_other_read(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, east: Served
) -> None:
    """The repositories, license and proxies were read one after the other once every tenant
    was polled: a repository listing slower than ``-t`` (object storage) left the proxies
    unasked, said as ``no answer within``, and an offline proxy UNKNOWN instead of CRITICAL."""
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    sim = east.simulator
    first, *_ = sorted(sim._proxies.values(), key=lambda p: p.host_name)
    sim.set_proxy_status(first.id, "Offline")
    app = answering_with(create_app(simulator=sim), "/backuprepositories", lambda body: body, delay=30)
    options = ("--repository-free", "20,10", "--license-expiry", "30,7", "--proxies", "-t", "3")
    async with serve(app) as port:
        targets = write_targets(
            tmp_path / "t.toml", server_table("east", f"http://127.0.0.1:{port}", "VBO_PASSWORD")
        )
        result = await check(capsys, targets, *options)
    lines = result.out.splitlines()
    assert f"CRITICAL: east/proxy {first.host_name}: offline" in lines
    assert "UNKNOWN: east/repositories: no answer within 3s" in lines
    assert not any(line.startswith(("UNKNOWN: east/proxies", "UNKNOWN: east/license")) for line in lines), (
        lines
    )
    assert result.code == 2


_SERVER_TEXT = st.text(
    st.characters(categories=("L", "N", "P", "S", "Cc"))
    | st.sampled_from([" ", "\u2028", "\u202e", "|", "\x1b", "["]),
    max_size=40,
)
"""What a server may put into a name, a reason or an error: letters to escape sequences, line
breaks, bidirectional controls and ``|``."""
_SIZES = st.one_of(st.none(), st.integers(min_value=-(2**63), max_value=2**63))


@st.composite
def _stores_read(draw: st.DrawFn) -> Sequence[BackupRepository] | str:
    if draw(st.booleans()) and draw(st.booleans()):
        return draw(_SERVER_TEXT)  # why they could not be read
    return [
        BackupRepository(
            id=draw(_SERVER_TEXT),
            name=draw(st.none() | _SERVER_TEXT),
            capacity=draw(_SIZES),
            free_space=draw(_SIZES),
            is_out_of_order=draw(st.none() | st.booleans()),
            out_of_order_reason=draw(st.none() | _SERVER_TEXT),
            is_out_of_sync=draw(st.none() | st.booleans()),
        )
        for _ in range(draw(st.integers(0, 6)))
    ]


@st.composite
def _license_read(draw: st.DrawFn) -> tuple[License, dt.datetime] | str:
    if draw(st.booleans()) and draw(st.booleans()):
        return draw(_SERVER_TEXT)
    stamp = st.none() | st.datetimes(timezones=st.just(dt.UTC))
    read = License(
        status=draw(
            st.none() | st.sampled_from([LicenseStatus.VALID, LicenseStatus.EXPIRED, LicenseStatus("Odd")])
        ),
        license_expires=draw(stamp),
        grace_period_expires=draw(stamp),
        total_number=draw(st.none() | st.integers(-5, 10**9)),
        used_number=draw(st.none() | st.integers(-5, 10**9)),
    )
    return read, draw(st.datetimes(timezones=st.just(dt.UTC)))


@st.composite
def _proxies_read(draw: st.DrawFn) -> Sequence[Proxy] | str:
    if draw(st.booleans()) and draw(st.booleans()):
        return draw(_SERVER_TEXT)
    statuses = st.none() | st.sampled_from(["Online", "Offline"]) | _SERVER_TEXT.filter(bool)
    return [
        Proxy(
            id=draw(_SERVER_TEXT),
            host_name=draw(st.none() | _SERVER_TEXT),
            status=None if (status := draw(statuses)) is None else ProxyStatus(status),
            maintenance_mode_state=draw(st.none() | st.sampled_from(list(MaintenanceModeState))),
        )
        for _ in range(draw(st.integers(0, 6)))
    ]


@given(
    st.lists(st.tuples(_SERVER_TEXT, _stores_read()), max_size=3),
    st.lists(st.tuples(_SERVER_TEXT, _license_read()), max_size=3),
    st.lists(st.tuples(_SERVER_TEXT, _proxies_read()), max_size=3),
    st.tuples(st.floats(0, 100), st.floats(0, 100)).map(sorted),
    st.tuples(st.integers(1, 400), st.integers(1, 400)).map(sorted),
)
def test_whatever_servers_say_of_their_storage_license_and_proxies_the_output_holds(
    stores: list[tuple[str, Sequence[BackupRepository] | str]],
    licenses: list[tuple[str, tuple[License, dt.datetime] | str]],
    hosts: list[tuple[str, Sequence[Proxy] | str]],
    free_levels: list[float],
    expiry_days: list[int],
) -> None:
    """Anything a server sends (names, sizes, dates, statuses, errors) gives a plugin output: one
    status line whose state is the worst line's, one ``|``, plain text, within the bounds."""
    output = plugin_output(
        Report.collect(ok_jobs(1), servers=1, tenants=1),
        repositories=stores,
        free=FreeSpace(free_levels[1], free_levels[0]),
        licenses=licenses,
        expiry=Expiry(dt.timedelta(days=expiry_days[1]), dt.timedelta(days=expiry_days[0])),
        proxies=hosts,
    )
    lines = output.text.splitlines()
    assert output.text.endswith("\n")
    assert output.text.count("|") == 1
    assert_plain(output.text)
    assert len(output.text.encode("utf-8", "replace")) <= OUTPUT_BYTES
    assert lines[0].startswith(f"VB365 {output.state.name} - ")
    named = {line.split(":", 1)[0] for line in lines[1:] if not line.startswith("... ")}
    assert named <= {"CRITICAL", "WARNING", "UNKNOWN"}
    worst = max(
        (HealthState[name] for name in named), key=lambda state: state.severity, default=HealthState.OK
    )
    assert output.state is worst
