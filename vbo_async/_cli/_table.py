"""The tables of ``demo``, ``jobs``, ``poll`` and ``organizations``, drawn with rich.

Which columns a terminal shows depends on its width. Columns, most important first:

    Server (only when several servers are polled), Organization, Job, Health,
    the health's reason (in the Health column), Status, Enabled (only when some job is
    disabled), Last run, Next run, Repository, Proxy

The first four are always shown (Health as the state alone); the others are added in this order
while the table still fits, and those left out are named under the table. Piped output and
``--wide`` show every column at full width. Rows are ordered by health, worst first (CRITICAL,
WARNING, UNKNOWN, OK); servers and tenants that could not be read are listed in a second table
below, and a summary line ends the output.
Times are shown relative to now when close (``3 h ago``, ``in 2 d``), else as a date and time in
the local time zone, named in the column header (or in each cell when the zone's offset varies).
A server's clock may be off this one's (a Windows server without NTP): near times are measured
on the server's clock when health is (`Row.clock_shift`), and a last run still up to `CLOCK_SKEW`
(a day) ahead of now reads ``just now``, a next run up to that far behind it ``due`` (never a last
run "in 3 min" or a next run "5 min ago"); further off, the date and time itself;
a time that never was or never will be (up to 1970, as .NET's 0001-01-01, or in 9999, as its
MaxValue, the next run of a job that has none: `is_never`) reads ``never``.
"""

from __future__ import annotations

import codecs
import datetime as dt
from collections.abc import Callable, Iterator, Sequence

import attrs
from rich import box
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions
from rich.segment import Segment
from rich.style import Style
from rich.table import Table
from rich.text import Text

from .._health import CLOCK_SKEW, HealthState, is_never
from .._models import Organization
from .._printable import printable
from ._plugin import LINE_CHARS, NAME_CHARS
from ._report import Report, Row

__all__ = ["COLUMN_PRIORITY", "print_organizations", "print_report", "relative"]

_STATUS_STYLE = {"Success": "green", "Warning": "yellow", "Failed": "bold red", "Running": "cyan"}
_HEALTH_STYLE = {
    HealthState.OK: "green",
    HealthState.WARNING: "yellow",
    HealthState.CRITICAL: "bold red",
    HealthState.UNKNOWN: "magenta",
}
_STATE_WIDTH = max(len(state.name) for state in HealthState)
_RELATIVE_LIMIT = dt.timedelta(days=14)


def relative(value: dt.datetime, now: dt.datetime) -> str | None:
    """``value`` as ``"3 h ago"``/``"in 2 d"`` when within 14 days of ``now``, else None."""
    delta = value - now
    seconds = abs(delta.total_seconds())
    if seconds >= _RELATIVE_LIMIT.total_seconds():
        return None
    if seconds < 60:
        return "just now" if delta <= dt.timedelta(0) else "in < 1 min"
    if seconds < 3600:
        amount = f"{int(seconds // 60)} min"
    elif seconds < 48 * 3600:
        amount = f"{int(seconds // 3600)} h"
    else:
        amount = f"{int(seconds // 86400)} d"
    return f"{amount} ago" if delta < dt.timedelta(0) else f"in {amount}"


@attrs.frozen
class _Times:
    """How one time column reads: relative when close, else absolute, the zone in the header
    when all its absolute times share one name and offset."""

    now: dt.datetime
    zone: dt.tzinfo | None

    def column(
        self, title: str, values: Sequence[tuple[dt.datetime | None, dt.timedelta]], *, past: bool
    ) -> _Column:
        """The column of ``values``, times that are ``past`` (a last run) or to come (a next
        run), each with the shift of its server's clock (`Row.clock_shift`): the zone is worked
        out once for all of its cells."""
        zones = self._zones(values, past=past)
        header = f"{title} ({next(iter(zones))})" if len(zones) == 1 else title
        named = len(zones) != 1
        return _Column(header, [self._cell(value, shift, past=past, named=named) for value, shift in values])

    def _near(self, value: dt.datetime, shift: dt.timedelta, *, past: bool) -> str | None:
        """``value`` relative to now on its server's clock (now plus ``shift``: `relative`),
        None when it reads as a date. A past time ahead of now, or a time to come behind it, is
        a server's clock off this one's: within `CLOCK_SKEW` it reads ``just now`` (a last run)
        or ``due`` (a next run), further off as a date."""
        value = _utc(value)
        now = self.now + shift
        delta = value - now
        if delta > dt.timedelta(0) if past else delta < dt.timedelta(0):
            if abs(delta) > CLOCK_SKEW:
                return None
            return "just now" if past else "due"
        return relative(value, now)

    def _cell(self, value: dt.datetime | None, shift: dt.timedelta, *, past: bool, named: bool) -> Text:
        if value is None:
            return Text("-", style="dim")
        if is_never(value):  # .NET's DateTime.MinValue or MaxValue, another time up to 1970 or in 9999
            return Text("never", style="dim")
        near = self._near(value, shift, past=past)
        if near is not None:
            return Text(near)
        local = _local(_utc(value), self.zone)
        text = local.strftime("%Y-%m-%d %H:%M")
        if named:
            text += f" {_zone_name(local)}"
        return Text(text)

    def _zones(self, values: Sequence[tuple[dt.datetime | None, dt.timedelta]], *, past: bool) -> set[str]:
        return {
            _zone_name(_local(_utc(value), self.zone))
            for value, shift in values
            if value is not None and not is_never(value) and self._near(value, shift, past=past) is None
        }


def _utc(value: dt.datetime) -> dt.datetime:
    """``value`` as an aware time (one without a zone taken as UTC, as the decoder takes it)."""
    return value.replace(tzinfo=dt.UTC) if value.utcoffset() is None else value


def _local(value: dt.datetime, zone: dt.tzinfo | None) -> dt.datetime:
    """``value`` in ``zone``, or as it is when it has no date there (.NET's DateTime.MinValue,
    0001-01-01, west of UTC; its MaxValue east of it)."""
    try:
        return value.astimezone(zone)
    except OverflowError:
        return value


def _zone_name(local: dt.datetime) -> str:
    name = local.tzname() or ""
    if name and not name.startswith(("+", "-")):
        return name
    return "UTC" + local.strftime("%z")[:3] + ":" + local.strftime("%z")[3:]


@attrs.frozen
class _Column:
    header: str
    cells: list[Text]
    essential: bool = False
    wraps: bool = False
    detail: list[Text] | None = attrs.field(default=None, kw_only=True)
    """A column that is not a column of its own: text appended to the previous column's cells
    when it fits (the Health column's reasons). ``header`` names it under the table."""

    @property
    def width(self) -> int:
        return max([cell_len(self.header), *(cell.cell_len for cell in self.cells)])

    def with_detail(self, detail: _Column) -> _Column:
        """This column with ``detail``'s text after its own on each line, the states aligned."""
        assert detail.detail is not None
        cells = []
        for cell, extra in zip(self.cells, detail.detail, strict=True):
            if extra.plain:
                cell = cell.copy()
                cell.pad_right(_STATE_WIDTH + 1 - cell.cell_len)
                cell.append_text(extra)
            cells.append(cell)
        return attrs.evolve(self, cells=cells)


COLUMN_PRIORITY = (
    "Server",
    "Organization",
    "Job",
    "Health",
    "Reason",
    "Status",
    "Enabled",
    "Last run",
    "Next run",
    "Repository",
    "Proxy",
)
"""The job table's columns, most important first (see the module docstring); "Reason" is the
health's reason, shown in the Health column."""


def _job_columns(report: Report, rows: Sequence[Row], times: _Times) -> list[_Column]:
    def text(get: Callable[[Row], str | None]) -> list[Text]:
        return [_shown(value) if (value := get(row)) else Text("-", style="dim") for row in rows]

    columns = []
    if report.servers > 1:
        columns.append(_Column("Server", text(lambda row: row.server), essential=True, wraps=True))
    columns += [
        _Column("Organization", text(lambda row: row.organization), essential=True, wraps=True),
        _Column("Job", text(lambda row: row.job), essential=True, wraps=True),
        _Column("Health", [_health(row.health) for row in rows], essential=True),
        _Column("Reason", [], detail=[_shown(row.health_reason or "", limit=LINE_CHARS) for row in rows]),
        _Column("Status", [_status(row.last_status) for row in rows]),
    ]
    if any(row.enabled is False for row in rows):
        columns.append(_Column("Enabled", [_enabled(row.enabled) for row in rows]))
    columns += [
        times.column("Last run", [(row.last_run, row.clock_shift) for row in rows], past=True),
        times.column("Next run", [(row.next_run, row.clock_shift) for row in rows], past=False),
        _Column("Repository", text(lambda row: row.repository)),
        _Column("Proxy", text(lambda row: row.proxy)),
    ]
    return columns


def _cell_text(value: str, limit: int = NAME_CHARS) -> str:
    """Text from a server (or a targets file) as a cell shows it: its control characters written
    out (`printable`), so a name cannot recolour the terminal, overwrite a line or forge a row,
    and cut to ``limit`` characters, ending in ``...``, as the check cuts it (`NAME_CHARS` for a
    name, an id or a status, `LINE_CHARS` for a reason or an error). Piped or ``--wide`` output
    pads every row to its columns' widest cell: one name of a megabyte made every row of the
    table a megabyte wide."""
    text = printable(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _shown(value: str, style: str = "", *, limit: int = NAME_CHARS) -> Text:
    """`_cell_text` of ``value`` as a cell."""
    return Text(_cell_text(value, limit), style=style)


def _writable(encoding: str) -> Callable[[Text], Text]:
    """A cell as a stream in ``encoding`` writes it: each character the encoding cannot write as
    one ``?``, as the commands' stdout writes it (``errors="replace"``). A table measured before
    that replacement was misaligned: a tenant named in Japanese on an ASCII or latin-1 stdout took
    two cells a character where ``?`` takes one. One character is written as one, so the cell's
    styles stay where they were."""
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        name = "utf-8"  # an encoding Python does not know could not be written to at all
    if name.startswith("utf"):
        return lambda cell: cell

    def writable(cell: Text) -> Text:
        text = cell.plain
        if text.isascii():
            return cell
        written = text.encode(name, "replace").decode(name)
        if written == text:
            return cell
        cell = cell.copy()
        cell.plain = written
        return cell

    return writable


def _written(columns: Sequence[_Column], writable: Callable[[Text], Text]) -> list[_Column]:
    """``columns`` with each cell as `_writable` gives it."""
    return [
        attrs.evolve(
            column,
            cells=[writable(cell) for cell in column.cells],
            detail=None if column.detail is None else [writable(cell) for cell in column.detail],
        )
        for column in columns
    ]


def _health(state: HealthState | None) -> Text:
    if state is None:
        return Text("-", style="dim")
    return Text.assemble((state.name, _HEALTH_STYLE[state]))  # a span: a reason added stays plain


def _status(status: str | None) -> Text:
    if status is None:
        return Text("never run", style="dim")
    return _shown(status, style=_STATUS_STYLE.get(status, ""))


def _enabled(enabled: bool | None) -> Text:
    if enabled is None:
        return Text("?", style="dim")
    return Text("yes") if enabled else Text("no", style="yellow")


def _fit(columns: Sequence[_Column], width: int | None) -> tuple[list[_Column], list[_Column]]:
    """(shown, left out): the essential columns, then the others in order while they fit in
    ``width`` (None: all). A rich table is its columns plus 3 cells each and 1 (borders, padding);
    a detail widens the column before it instead."""
    shown: list[_Column] = []
    used = 1
    for index, column in enumerate(columns):
        if column.detail is not None:
            candidate = shown[-1].with_detail(column)
            need = candidate.width - shown[-1].width
        else:
            candidate, need = column, column.width + 3
        if width is not None and not column.essential and used + need > width:
            return shown, list(columns[index:])
        if column.detail is not None:
            shown[-1] = candidate
        else:
            shown.append(candidate)
        used += need
    return shown, []


def _natural_width(columns: Sequence[_Column]) -> int:
    return 1 + sum(column.width + 3 for column in columns)


_FOLD_WIDTH = 8
"""The narrowest a wrapping column (a name) is made while the terminal allows it."""


def _fold_width(fixed: int, wrapping: Sequence[int], width: int) -> int:
    """The narrowest each wrapping column may be made (at most `_FOLD_WIDTH`, at least 1):
    narrower than usual when the table would not fit in ``width`` otherwise. ``fixed`` is the
    width of the rest of the table (borders included), ``wrapping`` the wrapping columns' widths."""
    fold = _FOLD_WIDTH
    while fold > 1 and fixed + sum(min(each, fold) for each in wrapping) > width:
        fold -= 1
    return fold


def _table(columns: Sequence[_Column], *, squeeze: bool, width: int) -> Table | _FittedTable:
    """The job table: drawn line by line when every column fits whole (`_FittedTable`), by a
    rich `Table` when names must wrap (``squeeze``) or a cell spans lines."""
    if not squeeze and not any("\n" in cell.plain for column in columns for cell in column.cells):
        return _FittedTable(columns)
    return _rich_table(columns, squeeze=squeeze, width=width)


def _rich_table(columns: Sequence[_Column], *, squeeze: bool, width: int) -> Table:
    table = Table(header_style="bold")
    fixed = 1 + sum(3 + (0 if column.wraps else column.width) for column in columns)
    fold = _fold_width(fixed, [column.width for column in columns if column.wraps], width)
    for column in columns:
        table.add_column(
            column.header,
            no_wrap=not (squeeze and column.wraps),
            overflow="fold",
            min_width=min(column.width, fold) if column.wraps else column.width,
        )
    for cells in zip(*(column.cells for column in columns), strict=True):
        table.add_row(*cells)
    return table


@attrs.frozen
class _FittedTable:
    """The job table when every column fits at its width: the segments rich's `Table` gives for
    it (the same box, styles and padding, byte for byte; a test compares the two), written
    line by line from the widths already known. rich measures, pads and wraps every cell of a
    table on its own, which took 0.3 s for a thousand jobs; this takes a quarter of that."""

    columns: Sequence[_Column]

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Segment]:
        edges = box.HEAVY_HEAD.substitute(options, safe=console.safe_box)
        widths = [column.width for column in self.columns]
        padded = [width + 2 for width in widths]
        null, bold = Style.null(), console.get_style("bold")
        last = len(widths) - 1
        yield Segment(edges.get_top(padded), null)
        yield Segment.line()
        yield Segment(edges.head_left, null)
        for index, (column, width) in enumerate(zip(self.columns, widths, strict=True)):
            yield Segment(" ", bold)
            yield Segment(column.header + " " * (width - cell_len(column.header)), bold)
            yield Segment(" ", bold)
            yield Segment(edges.head_right if index == last else edges.head_vertical, null)
        yield Segment.line()
        yield Segment(edges.get_row(padded, "head"), null)
        yield Segment.line()
        for cells in zip(*(column.cells for column in self.columns), strict=True):
            yield Segment(edges.mid_left, null)
            for index, (cell, width) in enumerate(zip(cells, widths, strict=True)):
                yield Segment(" ", null)
                pad = width - cell.cell_len
                if not cell.spans:  # rich's Text.render leaves such a text's own style to its caller
                    style = console.get_style(cell.style) if cell.style else None
                    yield Segment(cell.plain + " " * pad, style)
                else:
                    if pad:
                        cell = cell.copy()
                        cell.pad_right(pad)
                    yield from cell.render(console)
                yield Segment(" ", null)
                yield Segment(edges.mid_right if index == last else edges.mid_vertical, null)
            yield Segment.line()
        yield Segment(edges.get_bottom(padded), null)
        yield Segment.line()


def _error_table(report: Report, width: int | None, writable: Callable[[Text], Text]) -> tuple[Table, int]:
    """The servers and tenants that could not be read (folded to fit in ``width``; None: at
    their natural width; each cell as `writable` gives it), and that table's natural width."""
    with_server = report.servers > 1 or any(row.organization is None for row in report.errors)
    headers = [*(["Server"] if with_server else []), "Organization", "Error"]
    rows = []
    for row in report.errors:
        organization = _shown(row.organization) if row.organization else Text("(whole server)", style="dim")
        cells = [_shown(row.server)] if with_server else []
        cells = [*cells, organization, _shown(row.error or "", style="red", limit=LINE_CHARS)]
        rows.append([writable(cell) for cell in cells])
    table = Table(
        title="Could not be read", title_justify="left", title_style="bold red", header_style="bold"
    )
    widths = [max([cell_len(h), *(cells[i].cell_len for cells in rows)]) for i, h in enumerate(headers)]
    squeezed = _squeezed_error_widths(widths, width)
    for index, header in enumerate(headers):
        if squeezed is not None:
            table.add_column(header, overflow="fold", width=squeezed[index])
        else:
            table.add_column(header, overflow="fold", min_width=20 if header == "Error" else None)
    for cells in rows:
        table.add_row(*cells)
    return table, 1 + sum(width + 3 for width in widths)


def _squeezed_error_widths(widths: Sequence[int], width: int | None) -> list[int] | None:
    """The failure table's column widths when its natural ``widths`` do not fit in ``width``
    (None when they do, or when ``width`` is None: piped or ``--wide``). The Error column, the
    last, gets what the names (server, organization) leave: they fold down to `_FOLD_WIDTH`
    cells while it has fewer than 20, and further only while it has fewer than `_FOLD_WIDTH`."""
    if width is None:
        return None
    available = width - 1 - 3 * len(widths)
    if sum(widths) <= available:
        return None
    *names, error = widths
    fold = max(names, default=1)
    for floor, wanted in ((_FOLD_WIDTH, 20), (1, _FOLD_WIDTH)):
        while fold > floor and sum(min(name, fold) for name in names) + min(error, wanted) > available:
            fold -= 1
    shown = [min(name, fold) for name in names]
    return [*shown, max(1, available - sum(shown))]


def print_report(
    report: Report,
    console: Console,
    *,
    wide: bool = False,
    now: dt.datetime | None = None,
    zone: dt.tzinfo | None = None,
) -> None:
    """Print ``report``: the jobs (needing attention first), the failures, a summary line.

    The columns fit ``console.width`` unless ``wide`` is set or the console is not a terminal:
    then every column is shown at full width and the console is widened to fit. ``zone`` is the
    time zone of absolute times (default: the local one); ``now`` is for tests.
    """
    times = _Times(now or dt.datetime.now(dt.UTC), zone)
    wide = wide or not console.is_terminal
    writable = _writable(console.encoding)
    columns = _written(_job_columns(report, report.attention_first, times), writable)
    fit_to = None if wide else console.width
    shown, hidden = _fit(columns, fit_to)
    errors, errors_width = _error_table(report, fit_to, writable) if report.errors else (None, 0)
    if wide:
        console.width = max(console.width, _natural_width(shown) if report.jobs else 0, errors_width)
    squeeze = _natural_width(shown) > console.width
    if report.jobs:
        console.print(_table(shown, squeeze=squeeze, width=console.width))
        if hidden:
            names = ", ".join(_hidden_name(column) for column in hidden)
            console.print(Text(f"Hidden at this width: {names} (--wide shows all)", style="dim"))
    if errors is not None:
        console.print(errors)
    console.print(writable(_shown(report.summary(), style="bold", limit=LINE_CHARS)), soft_wrap=wide)


def _hidden_name(column: _Column) -> str:
    if column.detail is not None:
        return "health reasons"
    return column.header.partition(" (")[0]


def print_organizations(
    organizations: Sequence[Organization], console: Console, *, wide: bool = False
) -> None:
    """The ids and names of ``organizations``, by name, at full width. On a terminal too narrow
    for them (unless ``wide``), the names fold (down to `_FOLD_WIDTH` cells), then the ids too;
    neither is cut."""
    writable = _writable(console.encoding)
    cells = [(writable(_shown(o.name or "-")), writable(_shown(o.id))) for o in organizations]
    widest = max([4, *(name.cell_len for name, _ in cells)])
    longest_id = max([2, *(id_.cell_len for _, id_ in cells)])
    if wide or not console.is_terminal:
        console.width = max(console.width, widest + longest_id + 7)
    whole_ids = console.width >= longest_id + min(widest, _FOLD_WIDTH) + 7
    table = Table(header_style="bold")
    table.add_column("Name", overflow="fold", min_width=min(widest, _FOLD_WIDTH) if whole_ids else None)
    table.add_column("Id", no_wrap=whole_ids, overflow="fold")
    for name, id_ in cells:
        table.add_row(name, id_)
    console.print(table)
    count = len(organizations)
    console.print(Text(f"{count} organization{'s' if count != 1 else ''}", style="bold"))
