"""The job table of ``demo``/``jobs``/``poll`` at 80, 120 and 200 columns, piped and ``--wide``;
failures below the jobs, worst health first, the Health column (its reasons where the width
allows), the summary line counting the health states, and how times read.

Rendered with rich into a ``Console(width=..., file=io.StringIO(), force_terminal=True)``; every
line must fit the width, no column may be empty, and the columns always shown must be whole.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import io
import json
import re
import zoneinfo
from collections.abc import Callable

import attrs
import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.cells import cell_len
from rich.console import Console

import vbo_async.simulator
from vbo_async import HealthState, Job, Organization, PollResult, PollTarget, VBOClient
from vbo_async._cli import _flows, _table
from vbo_async._cli._plugin import LINE_CHARS, NAME_CHARS
from vbo_async._cli._report import Report, Row, rows_of
from vbo_async._cli._table import COLUMN_PRIORITY, print_organizations, print_report, relative
from vbo_async._printable import printable
from vbo_async._zones import UNZONED

from .test_cli import DEMO_EPOCH, judge_at
from .test_properties import PROPERTY

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
NOW = dt.datetime(2017, 6, 1, 12, 0, tzinfo=dt.UTC)
"""Two months after the demo's data: its times read as dates, not "3 h ago"."""


@pytest.fixture(scope="module")
def demo_report() -> Report:
    """The README demo's data: 43 jobs on 12 tenants, some disabled, their health judged at the
    moment the simulator was built (as the demo does, its "now" being the real time)."""
    config = vbo_async.simulator.SimulatorConfig
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(vbo_async.simulator, "SimulatorConfig", lambda **kw: config(epoch=DEMO_EPOCH, **kw))
        judge_at(patch, DEMO_EPOCH)
        return asyncio.run(_flows.demo(seed=1601, organizations=12, concurrency=8))


def render(report: Report, width: int, *, terminal: bool = True, wide: bool = False) -> str:
    out = io.StringIO()
    console = Console(width=width, file=out, force_terminal=terminal, color_system=None)
    print_report(report, console, wide=wide, now=NOW, zone=dt.UTC)
    return ANSI.sub("", out.getvalue())


def headers(text: str) -> list[str]:
    line = next(line for line in text.splitlines() if line.startswith("┃"))
    return [cell.strip() for cell in line.strip("┃").split("┃")]


def body(text: str) -> list[list[str]]:
    rows = []
    for line in text.splitlines():
        if line.startswith("└"):
            break
        if line.startswith("│"):
            rows.append([cell.strip() for cell in line.strip("│").split("│")])
    return rows


def check_layout(text: str, width: int) -> None:
    """Every line fits, no column is empty or zero-width, nothing is cut short with an ellipsis."""
    for line in text.splitlines():
        assert cell_len(line) <= width, line
    assert "…" not in text
    assert "││" not in text
    assert "┃┃" not in text
    assert all(headers(text))


def whole(report: Report, text: str, names: list[str]) -> None:
    """The cells of the columns ``names`` are the report's values, whole, on one line each (the
    Health column's state, and its reason when it shows them)."""
    shown = headers(text)
    columns = {
        "Server": "server",
        "Organization": "organization",
        "Job": "job",
        "Status": "last_status",
    }
    cells = [dict(zip(shown, row, strict=True)) for row in body(text)]
    reasons = any(" " in cell["Health"] for cell in cells)

    def value(row: Row, name: str) -> str:
        if name == "Health":
            state = row.health.name if row.health is not None else "-"
            return f"{state:<8} {row.health_reason}" if reasons else state
        return getattr(row, columns[name]) or "-"

    printed = sorted(tuple(cell[name] for name in names) for cell in cells)
    wanted = sorted(tuple(value(row, name) for name in names) for row in report.jobs)
    assert printed == wanted


@pytest.mark.parametrize(
    ("width", "expected", "hidden"),
    [
        (
            80,
            ["Organization", "Job", "Health"],
            "health reasons, Status, Enabled, Last run, Next run, Repository, Proxy",
        ),
        (120, ["Organization", "Job", "Health"], "Status, Enabled, Last run, Next run, Repository, Proxy"),
        (
            200,
            [
                "Organization",
                "Job",
                "Health",
                "Status",
                "Enabled",
                "Last run (UTC)",
                "Next run (UTC)",
                "Repository",
            ],
            "Proxy",
        ),
    ],
)
def test_columns_follow_the_terminal_width(
    demo_report: Report, width: int, expected: list[str], hidden: str | None
) -> None:
    text = render(demo_report, width)
    check_layout(text, width)
    assert headers(text) == expected
    whole(demo_report, text, ["Organization", "Job", "Health"])
    notes = " ".join(line for line in text.splitlines() if not line.startswith(("┏", "┃", "┡", "│", "└")))
    assert f"Hidden at this width: {hidden} (--wide shows all)" in " ".join(notes.split())
    assert text.rstrip().splitlines()[-1] == "43 jobs on 12 tenants: 4 critical, 6 warning"


@pytest.mark.parametrize("width", [80, 120, 200])
def test_the_health_column_shows_reasons_where_they_fit(demo_report: Report, width: int) -> None:
    text = render(demo_report, width)
    cells = [dict(zip(headers(text), row, strict=True))["Health"] for row in body(text)]
    states = [cell.split(" ", 1)[0] for cell in cells]
    assert states == [row.health.name for row in demo_report.attention_first if row.health is not None]
    if width == 80:
        assert cells == states  # the state alone
    else:
        reasons = {(row.health.name, row.health_reason) for row in demo_report.jobs if row.health is not None}
        # Every reason whole, the reasons aligned after the longest state name.
        assert {(cell[:9].rstrip(), cell[9:]) for cell in cells} == reasons


def test_the_dropping_order_is_the_documented_priority(demo_report: Report) -> None:
    priority = [name for name in COLUMN_PRIORITY if name != "Server"]
    for width in range(70, 230, 5):
        text = render(demo_report, width)
        check_layout(text, width)
        names = [header.partition(" (")[0] for header in headers(text)]
        reasons = any(" " in row[2] for row in body(text))
        if reasons:
            names.insert(names.index("Health") + 1, "Reason")
        assert names == priority[: len(names)], width


@pytest.mark.parametrize("how", ["piped", "wide"])
def test_piped_or_wide_output_shows_every_column_whole(demo_report: Report, how: str) -> None:
    text = render(demo_report, 80, terminal=how != "piped", wide=how == "wide")
    assert len(headers(text)) == 9
    assert "Hidden" not in text
    whole(demo_report, text, ["Organization", "Job", "Health", "Status"])
    repositories = sorted(row[7] for row in body(text))
    assert repositories == sorted(row.repository or "-" for row in demo_report.jobs)
    assert "…" not in text


def test_a_narrow_terminal_wraps_the_names_instead_of_hiding_them(demo_report: Report) -> None:
    text = render(demo_report, 50)
    check_layout(text, 50)
    assert headers(text)[:3] == ["Organization", "Job", "Health"]
    # Wrapped, each name is still all there: a row's lines (its Health is on the first) joined.
    rows: list[list[str]] = []
    for cells in body(text):
        if cells[2]:
            rows.append(cells[:2])
        else:
            rows[-1] = [rows[-1][0] + cells[0], (rows[-1][1] + " " + cells[1]).strip()]
    assert sorted(tuple(row) for row in rows) == sorted(
        (row.organization or "", row.job or "") for row in demo_report.jobs
    )


def test_worst_health_first_and_disabled_is_its_own_column(demo_report: Report) -> None:
    text = render(demo_report, 220)
    rows = [dict(zip(headers(text), row, strict=True)) for row in body(text)]
    states = [row["Health"].split(" ", 1)[0] for row in rows]
    assert states == ["CRITICAL"] * 4 + ["WARNING"] * 6 + ["OK"] * 33
    # Within a state, in organization/job order.
    for state in ("CRITICAL", "WARNING", "OK"):
        of_state = [row for row in rows if row["Health"][:9].strip() == state]
        names = [(row["Organization"], row["Job"].casefold()) for row in of_state]
        assert names == sorted(names)
    disabled = {(r.organization, r.job) for r in demo_report.jobs if r.enabled is False}
    assert len(disabled) == 8
    assert {(row["Organization"], row["Job"]) for row in rows if row["Enabled"] == "no"} == disabled
    assert {row["Health"] for row in rows if row["Enabled"] == "no"} == {"OK       disabled"}
    assert not any("(disabled)" in row["Job"] for row in rows)


def several_servers(error: str) -> Report:
    verdicts = {
        "Success": (HealthState.OK, "last run succeeded 3 h ago"),
        "Failed": (HealthState.CRITICAL, "failed 3 h ago"),
        "Warning": (HealthState.WARNING, "last run ended with warnings 3 h ago"),
    }
    jobs = [
        Row(
            server="east",
            organization="contoso.onmicrosoft.com",
            organization_id="o1",
            job=f"Mail job {n}",
            job_id=f"j{n}",
            enabled=True,
            last_status=status,
            last_run=NOW - dt.timedelta(hours=3),
            next_run=NOW + dt.timedelta(days=2, hours=1),
            repository="Repository 1",
            proxy="proxy01.east",
            health=verdicts[status][0],
            health_reason=verdicts[status][1],
        )
        for n, status in enumerate(["Success", "Failed", "Warning", "Success"])
    ]
    errors = [
        Row(server="west", error=error, unreachable=True),
        Row(
            server="east",
            organization="fabrikam.onmicrosoft.com",
            organization_id="o2",
            error="HTTP 500: boom",
        ),
    ]
    return Report.collect([*jobs, *errors], servers=3, tenants=1)


@pytest.mark.parametrize("width", [80, 120, 200])
def test_errors_are_a_table_of_their_own_below_intact_jobs(width: int) -> None:
    error = (
        "cannot connect: [Errno 111] Connect call failed ('10.0.0.9', 4443) " * 3
        + "(POST https://west/v1/Token)"
    )
    report = several_servers(error)
    text = render(report, width)
    check_layout(text, width)
    assert headers(text)[:4] == ["Server", "Organization", "Job", "Health"]
    whole(report, text, ["Server", "Organization", "Job", "Health"])
    assert [row[3].split(" ")[0] for row in body(text)] == ["CRITICAL", "WARNING", "OK", "OK"]
    below = text[text.index("Could not be read") :]
    assert headers(below) == ["Server", "Organization", "Error"]
    error_rows = body(below)
    assert [row[:2] for row in error_rows if row[0]] == [
        ["east", "fabrikam.onmicrosoft.com"],
        ["west", "(whole server)"],
    ]
    assert "".join(row[2] for row in error_rows).replace(" ", "") == ("HTTP 500: boom" + error).replace(
        " ", ""
    )
    summary = " ".join(text.rstrip().rsplit("┘\n", 1)[1].split())  # wrapped on a narrow terminal
    assert summary == (
        "4 jobs on 1 tenant of 3 servers: 1 critical, 1 warning; "
        "1 server unreachable, 1 tenant could not be read"
    )


@pytest.mark.parametrize("width", [32, 40])
def test_several_servers_on_a_very_narrow_terminal_are_folded_not_cut(width: int) -> None:
    """Below the width of the four columns always shown at their usual minimum (8 cells for a
    name), the names fold further; the Health states and the right border are never cut off."""
    report = several_servers("cannot connect: refused (POST https://west/v1/Token)")
    text = render(report, width)
    assert all(cell_len(line) <= width for line in text.splitlines())
    assert "…" not in text
    table_lines = [line for line in text.splitlines() if line[:1] in "┏┃┡│└"]
    assert table_lines
    assert all(line.rstrip()[-1:] in ("┓", "┃", "┩", "│", "┘") for line in table_lines), text
    assert [row[3] for row in body(text) if row[3]] == ["CRITICAL", "WARNING", "OK", "OK"]
    below = text[text.index("Could not be read") :]
    errors = "".join(row[2] for row in body(below)).replace(" ", "")
    assert errors == "HTTP500:boomcannotconnect:refused(POSThttps://west/v1/Token)"


def test_near_times_read_relative(demo_report: Report) -> None:
    text = render(several_servers("x"), 200)
    rows = [dict(zip(headers(text), row, strict=True)) for row in body(text)]
    assert {row["Last run"] for row in rows} == {"3 h ago"}
    assert {row["Next run"] for row in rows} == {"in 2 d"}


@pytest.mark.parametrize(
    ("delta", "expected"),
    [
        (dt.timedelta(seconds=-20), "just now"),
        (dt.timedelta(seconds=20), "in < 1 min"),
        (dt.timedelta(minutes=-12, seconds=-5), "12 min ago"),
        (dt.timedelta(hours=3, minutes=5), "in 3 h"),
        (dt.timedelta(hours=-47), "47 h ago"),
        (dt.timedelta(days=2, hours=1), "in 2 d"),
        (dt.timedelta(days=-13), "13 d ago"),
        (dt.timedelta(days=-14), None),
        (dt.timedelta(days=30), None),
    ],
)
def test_relative(delta: dt.timedelta, expected: str | None) -> None:
    assert relative(NOW + delta, NOW) == expected


def timed_rows(last_runs: list[dt.datetime], next_run: dt.datetime | None = None) -> list[Row]:
    """One successful job of one tenant per last run."""
    return [
        Row(
            server="s",
            organization="o",
            organization_id="o",
            job=f"j{n}",
            job_id=f"j{n}",
            enabled=True,
            last_status="Success",
            last_run=when,
            next_run=next_run,
        )
        for n, when in enumerate(last_runs)
    ]


def test_a_zone_whose_offset_varies_is_named_in_each_cell() -> None:
    berlin = zoneinfo.ZoneInfo("Europe/Berlin")
    rows = timed_rows(
        [dt.datetime(2016, 1, 10, 8, 0, tzinfo=dt.UTC), dt.datetime(2016, 7, 10, 8, 0, tzinfo=dt.UTC)]
    )
    out = io.StringIO()
    print_report(
        Report.collect(rows, servers=1, tenants=1),
        Console(width=200, file=out, force_terminal=True, color_system=None),
        now=NOW,
        zone=berlin,
    )
    text = out.getvalue()
    assert "Last run" in headers(text)
    assert sorted(row[4] for row in body(text)) == ["2016-01-10 09:00 CET", "2016-07-10 10:00 CEST"]


@pytest.mark.parametrize(
    ("zone", "column", "shown"),
    [
        ("America/New_York", "Last run", "never"),
        ("Asia/Tokyo", "Next run", "never"),
    ],
)
def test_times_at_the_ends_of_the_calendar_read_never(zone: str, column: str, shown: str) -> None:
    """.NET's DateTime.MinValue and MaxValue have no date on the far side of UTC: such a time
    ends no command with OverflowError. Both read "never": MaxValue, a job's next run when it
    has none, was shown as the date 9999-12-31 23:59 in a column it named (UTC)."""
    rows = timed_rows(
        [dt.datetime(1, 1, 1, tzinfo=dt.UTC)], next_run=dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.UTC)
    )
    out = io.StringIO()
    print_report(
        Report.collect(rows, servers=1, tenants=1),
        Console(width=200, file=out, force_terminal=True, color_system=None),
        now=NOW,
        zone=zoneinfo.ZoneInfo(zone),
    )
    text = out.getvalue()
    (row,) = body(text)
    assert row[headers(text).index(column)] == shown


@pytest.mark.parametrize(
    "never",
    [
        dt.datetime(1, 1, 1, tzinfo=dt.UTC),
        dt.datetime(1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=2))),
        dt.datetime(1, 1, 1, 5, 0, tzinfo=dt.UTC),
        dt.datetime(110, 3, 4, 5, 6, tzinfo=dt.UTC),
        dt.datetime(1601, 1, 1, tzinfo=dt.UTC),
        dt.datetime(1900, 1, 1, tzinfo=dt.UTC),
        dt.datetime(1970, 1, 1, tzinfo=dt.UTC),
    ],
)
def test_a_time_that_never_was_reads_never(never: dt.datetime) -> None:
    """.NET's "never", 0001-01-01 (``DateTime.MinValue``), read "1-01-01 00:00" in a column it
    named "(UTC)" (strftime writes the year 1 as "1"), Windows' and SQL Server's zeros as dates
    centuries ago: any time up to Unix time 0 reads "never", as health says of such a job, and
    leaves the column's zone to the real times."""
    rows = timed_rows([never, dt.datetime(2016, 1, 10, 8, 0, tzinfo=dt.UTC)])
    out = io.StringIO()
    print_report(
        Report.collect(rows, servers=1, tenants=1),
        Console(width=200, file=out, force_terminal=True, color_system=None),
        now=NOW,
        zone=zoneinfo.ZoneInfo("Etc/GMT-9"),
    )
    text = out.getvalue()
    column = headers(text).index("Last run (UTC+09:00)")
    assert sorted(row[column] for row in body(text)) == ["2016-01-10 17:00", "never"]


@pytest.mark.parametrize(
    "never",
    [
        dt.datetime(1, 1, 1, tzinfo=dt.UTC),
        dt.datetime(1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=2))),
        dt.datetime(1601, 1, 1, tzinfo=dt.UTC),
        dt.datetime(1970, 1, 1, tzinfo=dt.UTC),
        dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC),
        dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
    ],
)
def test_json_writes_a_time_that_never_was_as_null(never: dt.datetime) -> None:
    """``--json`` wrote .NET's "never" as ``"0001-01-01T00:00:00+00:00"`` where the table reads
    "never", the exporter has no sample and health says "never run": a script taking the age of
    the last run saw one of 739,000 days, and the same job on a v8 server (lastRun left out) was
    ``null``. A time up to Unix time 0 is ``null``, as no time is; real times are as before."""
    rows = timed_rows([never, dt.datetime(2016, 1, 10, 8, 0, tzinfo=dt.UTC)], next_run=never)
    out = io.StringIO()
    Report.collect(rows, servers=1, tenants=1).write_json(out)
    written = {row["job"]: (row["last_run"], row["next_run"]) for row in json.loads(out.getvalue())}
    assert written == {"j0": (None, None), "j1": ("2016-01-10T08:00:00+00:00", None)}


def test_time_columns_work_out_their_zone_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The zone of a time column is found once for the column, not again for each cell: with
    every time absolute, 400 rows used to name 160,000 zones (minutes for a large sweep)."""
    calls = 0
    real = _table._zone_name

    def counting(local: dt.datetime) -> str:
        nonlocal calls
        calls += 1
        return real(local)

    monkeypatch.setattr(_table, "_zone_name", counting)
    start = dt.datetime(2016, 1, 10, 8, 0, tzinfo=dt.UTC)
    rows = timed_rows(
        [start - dt.timedelta(minutes=n) for n in range(400)], next_run=start + dt.timedelta(days=1)
    )
    text = render(Report.collect(rows, servers=1, tenants=1), 200)
    assert len(body(text)) == 400
    assert "Last run (UTC)" in headers(text)
    assert calls <= 2 * 2 * len(rows)  # two time columns, each time named at most twice


class _Encoded(io.StringIO):
    """A file that says which encoding it takes (rich reads it to choose its box characters)."""

    encoding = "utf-8"


@PROPERTY
@given(
    names=st.lists(
        st.tuples(st.text(max_size=12), st.text(max_size=12), st.sampled_from(list(HealthState))),
        min_size=1,
        max_size=6,
    ),
    safe_box=st.booleans(),
    color=st.sampled_from([None, "standard", "truecolor"]),
    encoding=st.sampled_from(["utf-8", "ascii"]),
)
def test_a_fitting_table_is_drawn_as_rich_draws_it(
    names: list[tuple[str, str, HealthState]], safe_box: bool, color: str | None, encoding: str
) -> None:
    """A table whose columns fit is written line by line (`_FittedTable`): byte for byte what
    rich's own `Table` gives for it, whatever the names hold (wide and combining characters,
    controls written out), in colour or not, with rich's safe box or not, on a terminal that
    takes UTF-8 or only ASCII (rich then draws the box in ASCII)."""
    rows = [
        Row(
            server="s",
            organization=organization or None,
            organization_id=str(n),
            job=job or None,
            job_id=str(n),
            enabled=n % 2 == 0,
            last_status=["Success", "Failed", "Weird", None][n % 4],
            last_run=NOW - dt.timedelta(days=n * 10),
            health=state,
            health_reason=job[:5] or None,
        )
        for n, (organization, job, state) in enumerate(names)
    ]
    report = Report.collect(rows, servers=1, tenants=1)
    columns, _ = _table._fit(
        _table._job_columns(report, report.attention_first, _table._Times(NOW, dt.UTC)), None
    )
    fitted = _table._table(columns, squeeze=False, width=_table._natural_width(columns))
    assert isinstance(fitted, _table._FittedTable)

    def drawn(table: object) -> str:
        out = _Encoded()
        out.encoding = encoding
        console = Console(
            width=_table._natural_width(columns),
            file=out,
            force_terminal=True,
            color_system=color,  # type: ignore[arg-type]
            safe_box=safe_box,
            legacy_windows=False,
        )
        console.print(table)
        return out.getvalue()

    assert drawn(fitted) == drawn(
        _table._rich_table(columns, squeeze=False, width=_table._natural_width(columns))
    )


def test_server_text_is_shown_verbatim() -> None:
    """Names come from the server: brackets in them are text, not rich markup."""
    rows = [
        Row(
            server="s",
            organization="[bold]tenant[/bold]",
            organization_id="o",
            job="[archive] mail [/]",
            job_id="j",
            enabled=False,
            last_status="Success",
            last_run=dt.datetime(2017, 4, 1, 9, 35, tzinfo=dt.UTC),
            repository="[repo]",
            proxy="proxy[/]",
        ),
        Row(
            server="s",
            organization="[bold]tenant[/bold]",
            organization_id="o",
            job="odd",
            job_id="k",
            enabled=True,
            last_status="[Paused]",
            health=HealthState.UNKNOWN,
            health_reason="last run ended with status [Paused] [/] 3 h ago",
        ),
        Row(server="s", organization="[red]other[/]", organization_id="p", error="bad [/] thing"),
    ]
    text = render(Report.collect(rows, servers=1, tenants=1), 200)
    assert body(text)[0][:4] == [
        "[bold]tenant[/bold]",
        "odd",
        "UNKNOWN  last run ended with status [Paused] [/] 3 h ago",
        "[Paused]",
    ]
    assert body(text)[1] == [
        "[bold]tenant[/bold]",
        "[archive] mail [/]",
        "-",
        "Success",
        "no",
        "2017-04-01 09:35",
        "-",
        "[repo]",
        "proxy[/]",
    ]
    assert body(text[text.index("Could not be read") :])[0] == ["[red]other[/]", "bad [/] thing"]


def test_control_characters_from_the_server_never_reach_the_terminal() -> None:
    """A hostile server's names and messages carry escape sequences (set the window title,
    colour the terminal) and line breaks: each control character is written out as an escape."""
    hostile = "a\x1b]0;PWNED\x07b\x1b[31mc\x00d\ne\x9bf\u2028g\th"
    rows = [
        Row(
            server=hostile,
            organization=hostile,
            organization_id="o",
            job=hostile,
            job_id="j",
            enabled=True,
            last_status=hostile,
            repository=hostile,
            proxy=hostile,
            health=HealthState.UNKNOWN,
            health_reason=hostile,
        ),
        Row(server=hostile, organization=hostile, organization_id="p", error=hostile),
        Row(server="t", error=hostile, unreachable=True),
    ]
    for terminal in (True, False):
        out = io.StringIO()
        console = Console(width=600, file=out, force_terminal=terminal, color_system=None)
        print_report(Report.collect(rows, servers=2, tenants=2), console, now=NOW, zone=dt.UTC)
        text = out.getvalue()
        assert not re.search(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028]", text.replace("\n", "")), text
        visible = "a\\x1b]0;PWNED\\x07b\\x1b[31mc\\x00d\\ne\\x9bf\\u2028g\\th"
        assert text.count(visible) == 11, text  # seven job cells, four in the failures


@pytest.mark.parametrize("width", [30, 40, 50, 60, 80])
def test_organizations_keep_every_name_and_id_whole_on_a_narrow_terminal(width: int) -> None:
    """The ids are what ``jobs --org`` needs: never cut short, and the names never hidden;
    when both cannot fit on one line, they fold."""
    organizations = [
        Organization(id="df14c612-5f58-45b5-af79-0959a3e04b3b", name="blueyonder.onmicrosoft.com"),
        Organization(id="71545a13-7a1d-4006-8d72-3104f77383c2", name="relecloud2.onmicrosoft.com"),
        Organization(id="b2d650af-313b-42b7-9836-31890063e4d1", name="x"),
    ]
    out = io.StringIO()
    print_organizations(organizations, Console(width=width, file=out, force_terminal=True, color_system=None))
    text = out.getvalue()
    lines = text.splitlines()
    assert all(cell_len(line) <= width for line in lines), text
    assert "…" not in text
    assert all(line[-1:] in ("┓", "┃", "┩", "│", "┘") for line in lines[:-1]), text
    cells = [[cell.strip() for cell in line.strip("│").split("│")] for line in lines if line.startswith("│")]
    assert "".join(name for name, _ in cells) == "".join(o.name or "" for o in organizations)
    assert "".join(id_ for _, id_ in cells) == "".join(o.id for o in organizations)
    if width >= 60:  # room for the ids and names of 8 cells: the ids stay on one line each
        assert [id_ for _, id_ in cells if id_] == [o.id for o in organizations]


def test_no_jobs_prints_only_the_failures_and_the_summary() -> None:
    report = Report.collect(
        [Row(server="east", error="cannot connect", unreachable=True)], servers=1, tenants=0
    )
    text = render(report, 80)
    assert headers(text) == ["Server", "Organization", "Error"]
    summary = "0 jobs on 0 tenants: 0 critical, 0 warning; 1 server unreachable"
    assert text.rstrip().splitlines()[-1] == summary


def test_the_health_state_is_coloured_and_its_reason_is_not(demo_report: Report) -> None:
    out = io.StringIO()
    console = Console(width=200, file=out, force_terminal=True, color_system="standard")
    print_report(demo_report, console, now=NOW, zone=dt.UTC)
    text = out.getvalue()
    colours = {"CRITICAL": "\x1b[1;31m", "WARNING": "\x1b[33m", "OK": "\x1b[32m"}
    for state, colour in colours.items():
        assert f"{colour}{state}\x1b[0m" in text, state
    assert "\x1b[32mOK\x1b[0m       disabled " in text


@settings(PROPERTY, max_examples=20)
@given(
    name=st.text(min_size=1, max_size=3).map(lambda unit: unit * 2000),
    column=st.sampled_from(["organization", "job", "last_status", "repository", "proxy", "health_reason"]),
    wide=st.booleans(),
)
def test_one_huge_name_does_not_widen_every_row(name: str, column: str, wide: bool) -> None:
    """Piped or ``--wide`` output pads each row to its columns' widest cell: a hostile server's
    one name of thousands of characters made every row of the table as wide (a name of 50,000
    characters among 2,000 jobs printed 100 MB). A cell quotes at most `NAME_CHARS` characters of
    a name (`LINE_CHARS` of a reason or an error), as the check does, ending in ``...``."""
    rows = [
        Row(server="s", organization="tenant", organization_id="o", job=f"job {n}", job_id=str(n))
        for n in range(30)
    ]
    rows.append(
        attrs.evolve(rows[0], job_id="huge", health=HealthState.WARNING, **{column: name})  # type: ignore[arg-type]
    )
    rows.append(Row(server="s", organization="other", organization_id="p", error="refused " * 1000))
    text = render(Report.collect(rows, servers=1, tenants=2), 120, terminal=not wide, wide=wide)
    lines = text.splitlines()
    if wide:  # every row at full width, the name's cut whole on one line
        limit = LINE_CHARS if column == "health_reason" else NAME_CHARS
        shown = printable(name)
        assert shown[: limit - 3] + "..." in text
        assert shown[: limit - 2] not in text
        assert max(cell_len(line) for line in lines) <= 2 * LINE_CHARS + NAME_CHARS + 100
        assert ("refused " * 1000)[: LINE_CHARS - 3] + "..." in text
    else:  # folded to the terminal's width, over a bounded number of lines
        assert max(cell_len(line) for line in lines) <= 120
        assert len(lines) <= 40 + 2 * LINE_CHARS // 8


def test_a_huge_organization_name_or_id_does_not_widen_every_row() -> None:
    huge = Organization(id="i" * 100_000, name="n" * 100_000)
    organizations = [Organization(id=f"id-{n}", name=f"tenant {n}") for n in range(100)] + [huge]
    out = io.StringIO()
    print_organizations(organizations, Console(width=80, file=out, force_terminal=False, color_system=None))
    text = out.getvalue()
    assert "n" * (NAME_CHARS - 3) + "..." in text
    assert "i" * (NAME_CHARS - 3) + "..." in text
    assert max(cell_len(line) for line in text.splitlines()) <= 2 * NAME_CHARS + 7


def cells_at(column: str, rows: list[Row]) -> list[str]:
    """The cells of ``column`` (its header without the zone) of a table of ``rows`` at `NOW`."""
    out = io.StringIO()
    print_report(
        Report.collect(rows, servers=1, tenants=1),
        Console(width=200, file=out, force_terminal=True, color_system=None),
        now=NOW,
        zone=dt.UTC,
    )
    text = ANSI.sub("", out.getvalue())
    index = [header.partition(" (")[0] for header in headers(text)].index(column)
    return [row[index] for row in body(text)]


@pytest.mark.parametrize(
    ("ahead", "shown"),
    [
        (dt.timedelta(seconds=20), "just now"),
        (dt.timedelta(minutes=3), "just now"),
        (dt.timedelta(hours=5), "just now"),
        (dt.timedelta(hours=23, minutes=59), "just now"),
    ],
)
def test_a_last_run_ahead_of_this_clock_reads_just_now(ahead: dt.timedelta, shown: str) -> None:
    """A server whose clock is fast (a Windows server without NTP) reports a last run minutes or
    hours after this clock's now: the column read "in 3 min" or "in 5 h", a run in the future.
    Up to `CLOCK_SKEW` ahead it is the run that just happened, as the health reasons say."""
    assert cells_at("Last run", timed_rows([NOW + ahead])) == [shown]


def test_a_last_run_far_ahead_of_this_clock_reads_as_its_date() -> None:
    """Further ahead than `CLOCK_SKEW` (a clock once set days ahead), the time itself, never a
    last run "in 3 d"."""
    assert cells_at("Last run", timed_rows([NOW + dt.timedelta(days=3)])) == ["2017-06-04 12:00"]


@pytest.mark.parametrize(
    ("behind", "shown"),
    [
        (dt.timedelta(seconds=20), "due"),
        (dt.timedelta(minutes=3), "due"),
        (dt.timedelta(hours=5), "due"),
    ],
)
def test_a_next_run_behind_this_clock_reads_due(behind: dt.timedelta, shown: str) -> None:
    """A server whose clock is slow reports a next run this clock has already passed: the column
    read "3 min ago", a next run in the past. It reads "due" (the run is due, or starting)."""
    rows = timed_rows([NOW - dt.timedelta(hours=1)], next_run=NOW - behind)
    assert cells_at("Next run", rows) == [shown]


@PROPERTY
@given(
    skew=st.timedeltas(min_value=-dt.timedelta(hours=23), max_value=dt.timedelta(hours=23)),
    since=st.timedeltas(min_value=dt.timedelta(0), max_value=dt.timedelta(days=3)),
    until=st.timedeltas(min_value=dt.timedelta(0), max_value=dt.timedelta(days=3)),
)
def test_no_skew_shows_a_last_run_to_come_or_a_next_run_gone(
    skew: dt.timedelta, since: dt.timedelta, until: dt.timedelta
) -> None:
    """Whatever a server's clock is off by (up to a day either way): its last run never reads as
    one to come ("in ..."), its next run never as one gone ("... ago")."""
    server_now = NOW + skew
    rows = timed_rows([server_now - since], next_run=server_now + until)
    (last,) = cells_at("Last run", rows)
    (following,) = cells_at("Next run", rows)
    assert not last.startswith("in "), last
    assert not following.endswith(" ago"), following


@pytest.mark.parametrize("shift_hours", [-3, 5])
def test_near_times_are_measured_on_the_servers_clock_as_health_is(shift_hours: int) -> None:
    """A server 3 hours slow (or 5 fast) whose job ran 5 minutes ago by its clock: the health
    reason says "succeeded 5 min ago" (judged on the server's clock), and the Last run column,
    measured on this machine's, said "3 h ago" (or "just now"); its next run in an hour read
    "due" (or "in 6 h"). Both are measured on the server's clock (`Row.clock_shift`)."""
    shift = dt.timedelta(hours=shift_hours)
    server_now = NOW + shift
    (row,) = timed_rows([server_now - dt.timedelta(minutes=5)], next_run=server_now + dt.timedelta(hours=1))
    row = attrs.evolve(row, clock_shift=shift)
    assert cells_at("Last run", [row]) == ["5 min ago"]
    assert cells_at("Next run", [row]) == ["in 1 h"]


async def test_rows_carry_the_shift_of_their_servers_clock() -> None:
    """`rows_of` takes the shift from the tenant's client: the offset its answers' ``Date``
    showed, when health judges by it (a minute to a day)."""
    skew = dt.timedelta(hours=-3)

    def handle(request: httpx.Request) -> httpx.Response:
        date = email.utils.format_datetime(dt.datetime.now(dt.UTC) + skew, usegmt=True)
        if request.url.path.lower() == "/v8/token":
            token = {"access_token": "at", "refresh_token": "rt", "expires_in": 3600, "token_type": "bearer"}
            return httpx.Response(200, json=token, headers={"Date": date})
        return httpx.Response(200, json={"offset": 0, "limit": 100, "results": []}, headers={"Date": date})

    async with VBOClient(
        "https://vbo.test",
        username="u",
        password="p",
        api_version="v8",
        transport=httpx.MockTransport(handle),
    ) as vbo:
        await vbo.jobs()
        job = Job(id="j", name="j")
        result = PollResult(target=PollTarget(client=vbo, organization_id="o"), jobs=[job])
        (row,) = rows_of(result, "s")
    assert abs(row.clock_shift - skew) <= dt.timedelta(seconds=2)
    assert "clock_shift" not in row.as_json()


def test_json_rows_write_a_time_sent_without_an_offset_without_one() -> None:
    unzoned = dt.datetime(2017, 4, 5, 8, 4, 55, tzinfo=UNZONED)
    zoned = dt.datetime(2017, 4, 5, 8, 4, 55, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    written = Row(server="s", last_run=unzoned, next_run=zoned).as_json()
    assert (written["last_run"], written["next_run"]) == ("2017-04-05T08:04:55", "2017-04-05T08:04:55+02:00")


def written_as(encoding: str, draw: Callable[[Console], None], width: int = 200) -> str:
    """What ``draw`` writes through a stream in ``encoding`` replacing what it cannot write, as
    the commands' stdout does (`_app._unencodable_replaced`)."""
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding=encoding, errors="replace")
    draw(Console(width=width, file=stream, force_terminal=False, color_system=None))
    stream.flush()
    return raw.getvalue().decode(encoding)


def cjk_rows(organization: str, job: str, error: str) -> Report:
    rows = [
        Row(
            server="s",
            organization=name,
            organization_id=name,
            job=job_name,
            job_id=job_name,
            enabled=True,
            last_status="Success",
            last_run=NOW,
            repository="r",
            proxy="p",
            health=HealthState.OK,
            health_reason="ok",
        )
        for name, job_name in [(organization, job), ("plain", "mail")]
    ]
    rows.append(Row(server="s", organization=organization + "2", organization_id="t", error=error))
    return Report.collect(rows, servers=1, tenants=3)


def table_lines(text: str) -> list[list[str]]:
    """Each block of table lines (ASCII boxes: starting with ``+`` or ``|``), in order."""
    blocks: list[list[str]] = []
    previous = False
    for line in text.splitlines():
        boxed = line[:1] in ("+", "|")
        if boxed and not previous:
            blocks.append([])
        if boxed:
            blocks[-1].append(line)
        previous = boxed
    return blocks


@pytest.mark.parametrize("encoding", ["ascii", "latin-1", "cp1252"])
def test_text_the_stdout_cannot_write_is_measured_as_written(encoding: str) -> None:
    """On a stdout that cannot write a tenant's Japanese name (written as ``?``, one a
    character), the tables are measured as they are written: each column stays aligned."""
    report = cjk_rows("日本の会社", "メール", "読めない")
    organizations = [Organization(id="1", name="日本の会社"), Organization(id="2", name="x")]
    text = written_as(encoding, lambda console: print_report(report, console, now=NOW, zone=dt.UTC))
    listed = written_as(encoding, lambda console: print_organizations(organizations, console))
    jobs, errors = table_lines(text)
    (names,) = table_lines(listed)
    for block in (jobs, errors, names):
        assert len({len(line) for line in block}) == 1, "\n".join(block)
        bars = {tuple(i for i, char in enumerate(line) if char == "|") for line in block if line[:2] == "| "}
        assert len(bars) == 1, "\n".join(block)  # every column boundary at the same place

    def cells(block: list[str]) -> list[list[str]]:
        return [[cell.strip() for cell in line.strip("|").split("|")] for line in block if line[:2] == "| "]

    assert [row[:2] for row in cells(jobs)[1:]] == [["plain", "mail"], ["?????", "???"]]
    assert cells(errors)[1:] == [["?????2", "????"]]
    assert cells(names)[1:] == [["?????", "1"], ["x", "2"]]


def test_text_a_utf8_stdout_writes_is_left_as_it_is() -> None:
    report = cjk_rows("日本の会社", "メール", "読めない")
    text = written_as("utf-8", lambda console: print_report(report, console, now=NOW, zone=dt.UTC))
    assert "│ 日本の会社   │ メール │" in text
    assert "│ 日本の会社2  │ 読めない" in text


@PROPERTY
@given(
    organization=st.text(min_size=1, max_size=12),
    job=st.text(min_size=1, max_size=12),
    error=st.text(min_size=1, max_size=12),
)
def test_tables_on_an_ascii_stdout_stay_aligned_whatever_the_names(
    organization: str, job: str, error: str
) -> None:
    report = cjk_rows(organization, job, error)
    text = written_as("ascii", lambda console: print_report(report, console, now=NOW, zone=dt.UTC))
    for block in table_lines(text):
        assert len({len(line) for line in block}) == 1, "\n".join(block)
