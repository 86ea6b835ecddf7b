"""One unreadable string must not lose its neighbours: a lone surrogate escaped in a JSON string
(``"\\ud83d"``, a .NET string cut between the halves of an emoji) and bytes that are not UTF-8
are read as U+FFFD, each where it stands, instead of the whole answer being refused.

Refused whole, one job's name lost every job of its tenant, or with a batch (a server's jobs in
one listing) every tenant of the server. Read as Python's json module reads it, the lone
surrogate would reach what writes the name out (a terminal, ``--json``, the plugin output, the
exporter's UTF-8 exposition) and fail there instead.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import re
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from vbo_async import DecodeError, HealthPolicy, PollResult, PollTarget, VBOClient, poll_jobs
from vbo_async import _decode as decode_module
from vbo_async._cli._exposition import render
from vbo_async._cli._plugin import plugin_output
from vbo_async._cli._report import Report, rows_of
from vbo_async._cli._sweeps import ServerSpec, sweep_server
from vbo_async._cli._table import print_report
from vbo_async._decode import mend, parse_json
from vbo_async._status import read_error_body
from vbo_async.simulator import Simulator, SimulatorConfig, create_app

EPOCH = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
CUT = b"\\ud83d"
"""The first half of an emoji, escaped, as .NET writes a string cut after it."""
EDITS = {
    "escaped high surrogate": (b" " + CUT, " \ufffd"),
    "escaped low surrogate": (b"\\ude00 x", "\ufffd x"),
    "byte not UTF-8": (b" \xff", " \ufffd"),
    "Latin-1 text": (b" caf\xe9", " caf\ufffd"),
    "encoded surrogate": (b"\xed\xa0\x80", "\ufffd\ufffd\ufffd"),
}
"""Bytes added at the end of one job's name on the wire, and what the name then ends with."""


class _Edited(httpx.AsyncBaseTransport):
    """The simulator, ``tail`` added to the name of the job ``name`` in every jobs listing."""

    def __init__(self, simulator: Simulator, name: str, tail: bytes) -> None:
        self.inner = httpx.ASGITransport(app=create_app(simulator=simulator))
        self.name = json.dumps(name).encode()
        self.tail = tail
        self.edited = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        body = await response.aread()
        if not request.url.path.lower().endswith("/jobs"):
            return response
        target = b'"name":' + self.name
        edited = body.replace(target, target[:-1] + self.tail + b'"')
        self.edited += edited != body
        headers = [(k, v) for k, v in response.headers.items() if k.lower() != "content-length"]
        return httpx.Response(response.status_code, headers=headers, content=edited)


def _simulator() -> Simulator:
    return Simulator(SimulatorConfig(seed=4, organizations=4, epoch=EPOCH))


def _client(transport: httpx.AsyncBaseTransport, version: str) -> VBOClient:
    return VBOClient(
        "https://vbo.test:4443", username="admin", password="admin", transport=transport, api_version=version
    )


def _victim(simulator: Simulator) -> tuple[str, str]:
    """(organization id, name) of a job whose name no other job of the server has."""
    names = [job["name"] for org in simulator.organization_ids() for job in simulator.jobs_wire(org)]
    for org in simulator.organization_ids():
        for job in simulator.jobs_wire(org):
            if names.count(job["name"]) == 1 and len(simulator.jobs_wire(org)) > 1:
                return org, job["name"]
    raise AssertionError("no job with a name of its own")


@pytest.mark.parametrize("version", ["v1", "v8"])
@pytest.mark.parametrize("edit", list(EDITS))
async def test_one_unreadable_string_loses_no_job_of_the_organization(version: str, edit: str) -> None:
    simulator = _simulator()
    org, name = _victim(simulator)
    tail, replaced = EDITS[edit]
    transport = _Edited(simulator, name, tail)
    async with _client(transport, version) as vbo:
        jobs = await vbo.organization_jobs(org)
    assert transport.edited
    expected = {job["id"]: job["name"] for job in simulator.jobs_wire(org)}
    assert {job.id: job.name for job in jobs} == {
        job_id: (text + replaced if text == name else text) for job_id, text in expected.items()
    }
    for job in jobs:
        assert job.name is not None
        job.name.encode("utf-8")  # no lone surrogate


async def _swept(version: str, tail: bytes) -> tuple[Simulator, str, str, dict[str, PollResult]]:
    simulator = _simulator()
    org, name = _victim(simulator)
    transport = _Edited(simulator, name, tail)
    results: dict[str, PollResult] = {}
    async with _client(transport, version) as vbo:
        targets = [
            PollTarget(client=vbo, organization_id=o, name=o[:8]) for o in simulator.organization_ids()
        ]
        async with poll_jobs(targets, batch=True, health=HealthPolicy()) as sweeping:
            async for result in sweeping:
                results[result.target.organization_id] = result
    assert transport.edited
    return simulator, org, name, results


@pytest.mark.parametrize("version", ["v1", "v8"])
@pytest.mark.parametrize("edit", ["escaped high surrogate", "byte not UTF-8"])
async def test_a_batched_sweep_reads_every_tenant_beside_an_unreadable_name(version: str, edit: str) -> None:
    """The batch lists the server's jobs in one request: every tenant's jobs are read, and the
    tenant of the edited name has all its jobs, that one named with U+FFFD."""
    tail, replaced = EDITS[edit]
    simulator, org, name, results = await _swept(version, tail)
    assert results.keys() == set(simulator.organization_ids())
    for org_id, result in results.items():
        assert result.error is None, (org_id, result.error)
        expected = {job["id"]: job["name"] for job in simulator.jobs_wire(org_id)}
        if org_id == org:
            expected = {key: value + replaced if value == name else value for key, value in expected.items()}
        assert {job.id: job.name for job in result.jobs} == expected
        assert result.health.keys() == expected.keys()


@pytest.mark.parametrize("version", ["v1", "v8"])
async def test_the_table_json_plugin_output_and_exporter_show_the_name_with_its_replacement(
    version: str,
) -> None:
    _, org, name, results = await _swept(version, b" " + CUT)
    shown = f"{name} \ufffd"
    rows = [row for result in results.values() for row in rows_of(result, "server")]
    report = Report.collect(rows, servers=1, tenants=len(results))
    for terminal in (True, False):
        out = io.StringIO()
        print_report(report, Console(width=200, file=out, force_terminal=terminal), now=EPOCH, zone=dt.UTC)
        assert shown in out.getvalue()
        out.getvalue().encode("utf-8")
    out = io.StringIO()
    report.write_json(out)
    out.getvalue().encode("utf-8")
    assert shown in [row["job"] for row in json.loads(out.getvalue())]
    plugin = plugin_output(report).text
    plugin.encode("utf-8")
    assert "\\ud83d" not in plugin
    assert name not in plugin or shown in plugin

    simulator = _simulator()
    transport = _Edited(simulator, name, b" " + CUT)
    async with _client(transport, version) as vbo:
        snapshot = await sweep_server(ServerSpec(name="server", client=vbo), policy=HealthPolicy())
    assert snapshot.up, snapshot.problem
    assert snapshot.errors == {}
    text = render([snapshot], {}).text().decode("utf-8")
    assert f'job_name="{shown}"' in text
    assert text.count(f'organization_id="{org}"') > 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            b'{"message": "job ' + CUT + b' failed", "errorCode": "E\\udc00"}',
            ("job \ufffd failed", "E\ufffd"),
        ),
        (b'{"message": "job caf\xe9 failed"}', ("job caf\ufffd failed", None)),
        (b'"cut ' + CUT + b'"', ("cut \ufffd", None)),
    ],
)
def test_an_error_answer_with_an_unreadable_string_gives_its_message(
    body: bytes, message: tuple[str | None, str | None]
) -> None:
    """Its message, not its JSON quoted whole as an excerpt of text."""
    assert read_error_body(body, "application/json") == message


@pytest.mark.parametrize(
    ("body", "data"),
    [
        (
            b'{"na\\ud800me": ["\\udfff\\ud800", "\\ud83d\\ude00", "\\\\ud800"]}',
            {"na\ufffdme": ["\ufffd\ufffd", "\U0001f600", "\\ud800"]},
        ),
        (b'["\\\\\\ud800", "\\u00e9\\ud83d\\ud83d\\ude00"]', ["\\\ufffd", "\u00e9\ufffd\U0001f600"]),
        (b'{"a": "\\ud83d", "b": "\xf0\x9f\x98"}', {"a": "\ufffd", "b": "\ufffd"}),
    ],
)
def test_only_lone_surrogates_and_bytes_not_utf8_are_replaced(body: bytes, data: Any) -> None:
    """A pair of escapes is the character it names, an escaped backslash before ``ud800`` is no
    escape of a surrogate, keys are mended too, and a UTF-8 sequence cut short is one U+FFFD."""
    assert parse_json(body) == data


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b'{"name": "\\ud800", ', "unexpected end of data"),
        (b'{"name": "\\ud800", "size": NaN}', "at byte 27"),
        # orjson's words: "depth limit exceeded" now, "recursion depth exceeded" in older releases.
        (b'["\xff", ' + b"[" * 1100 + b"]" * 1100 + b"]", "depth"),
        (b'["\\ud800"]' * 2, "after document"),
    ],
)
def test_a_body_still_not_json_once_mended_is_refused(body: bytes, problem: str) -> None:
    """As orjson refuses it: no NaN, no nesting past 1,024, no trailing text, whatever the
    mending; the problem said is the mended body's (not the surrogate, which was mended)."""
    with pytest.raises(DecodeError, match="not valid JSON") as refused:
        parse_json(body)
    assert problem in str(refused.value).lower()
    assert "surrogate" not in str(refused.value)


def test_the_container_bound_still_applies_before_any_parse() -> None:
    body = b'["\\ud800", ' + b"{}, " * 100 + b"{}]"
    with pytest.raises(DecodeError, match="more JSON objects and arrays"):
        parse_json(body, max_items=2)


def test_a_body_mostly_not_utf8_is_refused_unmended() -> None:
    """Each byte not UTF-8 becomes the three bytes of U+FFFD: a body of such bytes is no text, and
    is refused rather than parsed as a string three times its size (orjson's parse of a long
    string takes about 13 times its length)."""
    junk = b'["' + b"\xff" * (1 << 20) + b'"]'
    assert mend(junk) is None
    with pytest.raises(DecodeError, match="not valid JSON"):
        parse_json(junk)
    names = b"[" + b", ".join(b'{"name": "caf\xe9 %d", "id": "%d"}' % (n, n) for n in range(20_000)) + b"]"
    assert [item["name"] for item in parse_json(names)] == [f"caf\ufffd {n}" for n in range(20_000)]


_EVERY_ESCAPE = re.compile(
    rb"\\(?:u[dD][89abAB][0-9a-fA-F]{2}(?:\\u[dD][c-fC-F][0-9a-fA-F]{2})?|u[dD][c-fC-F][0-9a-fA-F]{2}|.)",
    re.DOTALL,
)
"""The mend's first pattern, which handed every escape to Python (``\\n`` included): the
reference the pattern matching surrogates alone is compared with."""


def _reference_escapes(body: bytes) -> bytes:
    return _EVERY_ESCAPE.sub(lambda m: b"\\ufffd" if len(m.group()) == 6 else m.group(), body)


@settings(max_examples=1000, deadline=None, derandomize=True, database=None)
@given(
    pieces=st.lists(
        st.sampled_from(
            [
                b"\\",
                b"\\\\",
                b"\\n",
                b"\\u",
                b"ud800",
                b"\\ud83d",
                b"\\uDE00",
                b"\\udc00",
                b"\\uDBFF",
                b"\\u00e9",
                b"a",
                b'"',
                b"\\ud83d\\ude00",
                b"u",
                b"d",
                b"8",
                b"\\\\\\ud800",
            ]
        ),
        max_size=12,
    )
)
def test_the_mend_replaces_the_escapes_the_every_escape_reading_replaces(pieces: list[bytes]) -> None:
    body = b"".join(pieces) + b"\xff"  # a byte not UTF-8: the mend always changes something
    mended = mend(body)
    assert mended is not None
    assert bytes(mended) == _reference_escapes(body).replace(b"\xff", "\ufffd".encode())


def test_a_body_of_other_escapes_is_not_handed_to_python_escape_by_escape(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Counted, not timed: the replacement is called for surrogate escapes only."""
    body = b'["' + b"\\n\\t\\\\\\u00e9" * 10_000 + b'\\ud800 \\ud83d\\ude00"]'
    calls = []
    original = decode_module._replace_lone

    def counting(match: re.Match[bytes]) -> bytes:
        calls.append(match.group())
        return original(match)

    monkeypatch.setattr(decode_module, "_replace_lone", counting)
    assert parse_json(body) == ["\n\t\\\u00e9" * 10_000 + "\ufffd \U0001f600"]
    assert calls == [b"\\ud800", b"\\ud83d\\ude00"]
