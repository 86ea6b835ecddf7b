"""Hostile values in every resource the client decodes, on every API version, through `Decoder.page`.

``tests/test_properties.py`` and ``tests/test_versions_properties.py`` mutate jobs, sessions,
organizations, repositories and proxies with `from_wire`; ``tests/test_fast_path.py`` compares
the two decoding passes on jobs. This module takes one of every resource the simulator serves on
each version (selected items, service instance, license and used repositories too), puts
hostile values anywhere in it (numbers no 64-bit integer or double holds, ``NaN``-like strings,
NUL, timestamps of the year 0 or 10000 or past the calendar in UTC, negative sizes, nested
arrays, long strings) and decodes it as a page the server sent (bytes, through ``orjson``, a bare
array or v8's page object). Each item must come out either as a model both passes build alike,
its fields what the wire says, or refused with a `DecodeError` naming where in the page.

Examples per test: ``VBO_PROPERTY_EXAMPLES`` (as the other property tests); derandomized.
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import io
import json
import math
from collections.abc import Iterator
from typing import Any

import attrs
import httpx
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from vbo_async import (
    BackupRepository,
    DecodeError,
    HealthPolicy,
    HealthState,
    Job,
    JobSession,
    License,
    NotFoundError,
    Organization,
    PollResult,
    PollTarget,
    Proxy,
    SelectedItem,
    SelectedMailbox,
    ServiceInstance,
    UsedRepository,
    VBOClient,
    assess,
    to_jsonable,
)
from vbo_async._cli._plugin import plugin_output
from vbo_async._cli._report import Report, rows_of
from vbo_async._cli._sweeps import ServerSpec, _Reader
from vbo_async._cli._table import print_report
from vbo_async._convert import FastHooks, make_converter
from vbo_async._decode import Decoder
from vbo_async._dialects import DIALECTS
from vbo_async.simulator import Simulator, SimulatorConfig, create_app

from . import test_properties as v1_oracle
from . import test_versions_properties as later_oracle
from .conftest import offline_client
from .test_fast_path import NAVIGATOR, assert_same, simulator_wires
from .test_openapi_conformance import ROOTS, facts, resolve
from .test_properties import FEW, PROPERTY, _container, _positions, replacements

ORACLE_KNOWS = (Job, JobSession, Organization, BackupRepository, Proxy, SelectedItem, ServiceInstance)
"""Models the field-by-field oracles read on every version (the others: both passes alike)."""


def _items(body: Any) -> list[Any]:
    return body if isinstance(body, list) else body["results"]


def _resources(version: str) -> list[tuple[type[Any], dict[str, Any]]]:
    """One wire object of each resource the simulator serves on ``version``."""
    picked: dict[type[Any], dict[str, Any]] = {}
    for cls, wire in simulator_wires(version):
        picked.setdefault(cls, wire)
    if version != "v1":
        simulator = Simulator(SimulatorConfig(seed=5, organizations=2))
        picked[ServiceInstance] = simulator.service_instance_wire(version=version)
        picked[License] = simulator.license_wire(version=version)
        organization = _items(simulator.organizations_wire(version=version))[0]
        used = _items(simulator.used_repositories_wire(organization["id"], version=version))
        picked[UsedRepository] = used[0]
    return list(picked.items())


RESOURCES = {version: _resources(version) for version in DIALECTS}
HOSTILE = st.sampled_from(
    [
        2**64, -(2**63) - 1, 10**30, 1e308, -1e308, 5e-324, -0.0, -1, -1.5, -(2**63),
        "NaN", "nan", "Infinity", "-inf", "1e309", "1e308", "-1", "99999999999999999999", "0" * 30 + "1",
        "a\x00b", "\x00", "\u202e\x1b[31m\n", "x" * 5000, "\U0001f600",
        "0000-01-01T00:00:00Z", "10000-01-01T00:00:00Z", "9999-12-31T23:59:59.9999999-14:00",
        "0001-01-01T00:00:00+14:00", "0001-01-01T00:00:00", "2017-02-30T00:00:00Z", "2026-06-01T25:00:00Z",
        "2026-06-01T12:00:00+24:00", "2026-06-01T12:00:00-23:59", "24:00:00", "-01:00:00",
        [[[[[[[[[[]]]]]]]]]], [[1, 2], [3]], {"href": {"href": "/v8/Jobs"}}, {"results": []},
    ]
)  # fmt: skip
"""Values no reference answer holds; `replacements` (the v1 tests') adds arbitrary JSON."""


@st.composite
def hostile(draw: st.DrawFn, wire: dict[str, Any]) -> dict[str, Any]:
    """``wire`` with one to three values anywhere in it replaced by hostile ones (or dropped)."""
    data = copy.deepcopy(wire)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(list(_positions(data))))
        holder = _container(data, path)
        if draw(st.integers(0, 9)) == 0 and isinstance(holder, dict):
            del holder[path[-1]]
        else:
            holder[path[-1]] = copy.deepcopy(draw(HOSTILE | replacements))
        if not data:
            break
    return data


@pytest.fixture(scope="module")
def passes() -> dict[str, tuple[Decoder, FastHooks, Any]]:
    """Per version: a decoder (the public path), the fast hooks and the detailed converter."""
    return {
        version: (
            Decoder(NAVIGATOR),
            FastHooks(NAVIGATOR, dialect),
            make_converter(NAVIGATOR, dialect, detailed=True),
        )
        for version, dialect in DIALECTS.items()
    }


def _outcome(decode: Any) -> Any:
    try:
        return decode()
    except Exception:
        return Exception


def check_page(
    passes: dict[str, tuple[Decoder, FastHooks, Any]], version: str, cls: type[Any], wire: dict[str, Any]
) -> Any:
    """Decode ``wire`` as the one item of a page: the model, or None when it was refused (then
    with a `DecodeError` naming a path inside the item). Both passes must agree, and an accepted
    item's fields hold what the wire says."""
    decoder, fast_hooks, detailed = passes[version]
    page_object = version == "v8"
    body = json.dumps({"results": [wire]} if page_object else [wire]).encode()  # as a server writes it
    parsed = orjson.loads(json.dumps(wire))  # what the client reads (integers past 64 bits: floats)
    refused: list[DecodeError] = []
    models, _next = decoder.page(
        body,
        cls,
        DIALECTS[version],
        url=f"https://vbo.test/{version}/X",
        refused=lambda _item, e: refused.append(e),
    )
    fast = _outcome(lambda: fast_hooks.get(cls)(copy.deepcopy(parsed), cls))
    slow = _outcome(lambda: detailed.structure(copy.deepcopy(parsed), cls))
    if refused:
        assert not models
        (error,) = refused
        assert isinstance(error, DecodeError)
        item = "$.results[0]" if page_object else "$[0]"
        assert error.path is not None
        assert error.path.startswith(item), (error.path, str(error))
        assert (fast, slow) == (Exception, Exception), "a pass accepted what the page refused"
        return None
    (model,) = models
    assert Exception not in (fast, slow), "a pass refused what the page accepted"
    assert_same(fast, slow)
    assert_same(model, slow)
    if cls in ORACLE_KNOWS:
        if version == "v1":
            v1_oracle.check_model(model, parsed, cls)
        else:
            later_oracle.check_model(version, model, parsed, cls)
    written = decoder.unstructure(model, DIALECTS[version])  # to_wire's path
    again = decoder.one(orjson.loads(orjson.dumps(written)), cls, DIALECTS[version])
    assert again == model, "from_wire(to_wire(model)) through JSON is another model"
    json.dumps(to_jsonable(model), allow_nan=False)
    return model


@pytest.mark.parametrize("version", list(DIALECTS))
def test_every_resource_of_every_version_decodes_as_a_page_item(
    passes: dict[str, tuple[Decoder, FastHooks, Any]], version: str
) -> None:
    """The unmutated resources (the harness's baseline): each decodes, as the oracle reads it."""
    kinds = {cls for cls, _ in RESOURCES[version]}
    expected = {Job, JobSession, Organization, BackupRepository, Proxy}
    expected |= (
        {SelectedMailbox} if version == "v1" else {SelectedItem, ServiceInstance, License, UsedRepository}
    )
    assert kinds == expected
    for cls, wire in RESOURCES[version]:
        assert type(check_page(passes, version, cls, wire)) is cls


@PROPERTY
@given(version=st.sampled_from(list(DIALECTS)), choice=st.data())
def test_hostile_values_in_any_resource_decode_as_sent_or_are_refused_with_a_path(
    passes: dict[str, tuple[Decoder, FastHooks, Any]], version: str, choice: st.DataObject
) -> None:
    cls, original = choice.draw(st.sampled_from(RESOURCES[version]), label="resource")
    wire = choice.draw(hostile(original), label="wire")
    check_page(passes, version, cls, wire)


def _texts(model: Any) -> set[str]:
    """The strings ``model``'s own fields hold (open enums as their strings)."""
    return {
        str(value)
        for field in attrs.fields(type(model))
        if isinstance(value := getattr(model, field.name), str)
    }


def _with_text(wire: dict[str, Any], key: str, escaped: str) -> bytes:
    """``wire`` as a page body whose ``key`` holds the JSON string literal ``escaped`` as written."""
    marker = "\ue000marker\ue000"
    text = json.dumps([{**wire, key: marker}], ensure_ascii=False)
    return text.replace(json.dumps(marker, ensure_ascii=False), escaped).encode("utf-8")


@FEW
@given(
    version=st.sampled_from(list(DIALECTS)),
    choice=st.data(),
    escaped=st.sampled_from(
        ['"\\ud800"', '"a\\udc00"', '"\\u0000"', '"\\ud83d\\ude00"', '"\\uffff"', '"\\\\"']
    ),
)
def test_escaped_code_points_in_a_string_are_read_a_lone_surrogate_as_u_fffd(
    passes: dict[str, tuple[Decoder, FastHooks, Any]], version: str, choice: st.DataObject, escaped: str
) -> None:
    """A lone surrogate escaped in a string (which no UTF-8 text holds) is read as U+FFFD, not as a
    string Python cannot write out, and the item is kept (the whole body was refused); the other
    escapes are read as the characters they name."""
    cls, wire = choice.draw(st.sampled_from(RESOURCES[version]), label="resource")
    decoder, _fast, _detailed = passes[version]
    (plain,), _next = decoder.page(json.dumps([wire]).encode(), cls, DIALECTS[version])
    read = _texts(plain)
    key = choice.draw(
        st.sampled_from(sorted(k for k, v in wire.items() if isinstance(v, str) and v in read)), label="key"
    )
    body = _with_text(wire, key, escaped)
    lone = {'"\\ud800"': "\ufffd", '"a\\udc00"': "a\ufffd"}  # a lone surrogate
    (model,), _next = decoder.page(body, cls, DIALECTS[version])
    assert lone.get(escaped, json.loads(escaped)) in _texts(model), (key, escaped, model)


def test_a_duplicate_key_is_read_as_its_last_value(passes: dict[str, tuple[Decoder, FastHooks, Any]]) -> None:
    """``{"name": "a", "name": "b"}``: the last value, as Python's json module and .NET read it."""
    decoder, _fast, _detailed = passes["v8"]
    body = b'{"results": [{"id": "j", "name": "first", "name": "second", "eTag": 1, "eTag": "2"}]}'
    (job,), _next = decoder.page(body, Job, DIALECTS["v8"])
    assert (job.name, job.e_tag) == ("second", 2)


# --- answers the vendor's schemas allow --------------------------------------------------------------

SCHEMA_VERSIONS = ("v6", "v7", "v8")
_RELATIONS = ("self", "organization", "backupRepository", "jobsessions", "job", "log", "proxy", "copyJob")


def _stamps() -> st.SearchStrategy[str]:
    """``date-time`` values as a .NET server writes them: any moment of years 1-9999, UTC or an
    offset up to 14 h, with no fraction or one of 1 to 7 digits."""
    offsets = st.just("Z") | st.builds(
        lambda sign, minutes: f"{sign}{minutes // 60:02}:{minutes % 60:02}",
        st.sampled_from("+-"),
        st.integers(0, 14 * 60),
    )
    fractions = st.just("") | st.integers(1, 7).flatmap(
        lambda n: st.text("0123456789", min_size=n, max_size=n).map(".".__add__)
    )
    moments = st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 12, 31, 23, 59, 59))
    return st.builds(
        lambda moment, fraction, zone: moment.strftime("%Y-%m-%dT%H:%M:%S").zfill(19) + fraction + zone,
        moments,
        fractions,
        offsets,
    )


def _from_schema(version: str, schema: Any, name: str = "", depth: int = 0) -> st.SearchStrategy[Any]:
    """Any value ``schema`` allows, realistic where it says only "string" (times of day, hrefs)."""
    schema = resolve(version, schema)
    value: st.SearchStrategy[Any]
    kind, fmt = schema.get("type"), schema.get("format")
    if "enum" in schema:
        value = st.sampled_from(schema["enum"])
    elif name == "_links" or (kind == "object" and "additionalProperties" in schema and depth):
        href = st.sampled_from(
            [f"/{version}/Things/x", f"/{version}/Jobs/1/JobSessions", "https://elsewhere.example/a"]
        )
        value = st.dictionaries(
            st.sampled_from(_RELATIONS), st.fixed_dictionaries({"href": href}), max_size=3
        )
    elif kind == "string" and fmt == "uuid":
        value = st.uuids().map(str)
    elif kind == "string" and fmt == "date-time":
        value = _stamps()
    elif kind == "string" and name.endswith("Time"):  # dailyTime, monthlyTime: "HH:MM:SS"
        value = st.times().map(lambda clock: clock.strftime("%H:%M:%S"))
    elif kind == "string":
        value = st.text(max_size=12)
    elif kind == "integer":
        bits = 31 if fmt == "int32" else 63
        value = st.integers(-(2**bits), 2**bits - 1)
    elif kind == "number":
        value = st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(2**53), 2**53)
    elif kind == "boolean":
        value = st.booleans()
    elif kind == "array":
        size = 200 if name in ("backupWindow", "backupIntervalsArray") else 3
        value = st.lists(_from_schema(version, schema["items"], "", depth + 1), max_size=size)
    elif "properties" in schema and depth < 3:
        value = st.fixed_dictionaries(
            {},
            optional={
                key: _from_schema(version, prop, key, depth + 1) for key, prop in schema["properties"].items()
            },
        )
    else:
        value = st.just({})
    return st.none() | value if schema.get("nullable") else value


@st.composite
def schema_answers(draw: st.DrawFn) -> tuple[str, type[Any], dict[str, Any]]:
    version = draw(st.sampled_from(SCHEMA_VERSIONS), label="version")
    cls, (name, _path) = draw(
        st.sampled_from(sorted(ROOTS.items(), key=lambda item: item[0].__name__)), label="model"
    )
    schema = facts()["versions"][version]["schemas"][name]
    wire = draw(_from_schema(version, schema, name), label="wire")
    if "id" in attrs.fields_dict(cls) and attrs.fields_dict(cls)["id"].default is attrs.NOTHING:
        wire["id"] = draw(st.uuids().map(str), label="id")  # the client needs one (its schema allows null)
    return version, cls, wire


@PROPERTY
@given(case=schema_answers())
def test_any_answer_the_vendor_schemas_allow_decodes_as_sent(
    passes: dict[str, tuple[Decoder, FastHooks, Any]], case: tuple[str, type[Any], dict[str, Any]]
) -> None:
    """Every answer the v6/v7/v8 OpenAPI schemas allow (any subset of the fields, any value of
    their types and formats, null where nullable) decodes, both passes alike and each field what
    the wire says: refusing one would drop a job, a session or a repository the server listed."""
    version, cls, wire = case
    model = check_page(passes, version, cls, wire)
    assert model is not None, f"a {cls.__name__} the {version} schema allows was refused"


# --- what the health model and the renderers make of such values ----------------------------------

_NOW = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)
_WEST = dt.timezone(-dt.timedelta(hours=14))


@pytest.fixture(scope="module")
def target() -> Iterator[PollTarget]:
    """A target for the rows (its client never sends: nothing is read here)."""
    client = offline_client()
    yield PollTarget(client=client, organization_id="tenant-id", name="tenant")
    asyncio.run(client.aclose())


@st.composite
def judged_jobs(draw: st.DrawFn) -> tuple[Job, list[JobSession], HealthPolicy, dt.datetime]:
    """A job and its sessions as a v6-v8 schema allows them, decoded, and how they are judged."""
    version = draw(st.sampled_from(SCHEMA_VERSIONS), label="version")
    schemas = facts()["versions"][version]["schemas"]
    decoder = Decoder(NAVIGATOR)
    wire = {**draw(_from_schema(version, schemas["RESTJob"], "RESTJob"), label="job"), "id": "job-1"}
    job = decoder.one(wire, Job, DIALECTS[version])
    sessions = []
    for number in range(draw(st.integers(0, 3), label="sessions")):
        session = draw(_from_schema(version, schemas["RESTJobSession"], "RESTJobSession"), label="session")
        session["id"] = f"session-{number}"
        sessions.append(decoder.one(session, JobSession, DIALECTS[version]))
    policy = HealthPolicy(
        max_age=draw(st.sampled_from([None, dt.timedelta(hours=26)])), schedule_aware=draw(st.booleans())
    )
    now = draw(
        st.sampled_from([_NOW, dt.datetime(9999, 12, 30, tzinfo=dt.UTC), dt.datetime(1, 1, 2, tzinfo=dt.UTC)])
    )
    return job, sessions, policy, now


@FEW
@given(case=judged_jobs())
def test_the_health_and_every_renderer_take_any_value_the_schemas_allow(
    target: PollTarget, case: tuple[Job, list[JobSession], HealthPolicy, dt.datetime]
) -> None:
    """Whatever a v6-v8 schema allows in a job and its sessions (a lastRun of the year 1 at
    +14:00 or of 9999 at -14:00, int64 extremes in the statistics, negative retry counts), judged
    at any moment: a verdict with a reason, a table on a terminal or not, ``--json`` as strict
    JSON, a plugin output whose first line ends in its performance data, exporter samples that are
    finite numbers (a session's duration never negative)."""
    job, sessions, policy, now = case
    health = assess(job, sessions, policy=policy, now=now)
    assert isinstance(health.state, HealthState)
    assert health.reason
    row = rows_of(PollResult(target=target, jobs=[job], health={job.id: health}), "server")
    report = Report.collect(row, servers=1, tenants=1)
    for terminal in (True, False):
        out = io.StringIO()
        print_report(report, Console(width=60, file=out, force_terminal=terminal), now=now, zone=_WEST)
        assert "1 job on 1 tenant" in out.getvalue()
    out = io.StringIO()
    report.write_json(out)
    (written,) = json.loads(out.getvalue(), parse_constant=_refuse)
    assert written["health"] == health.state.name
    first = plugin_output(report).text.splitlines()[0]
    assert first.count(" | ") == 1
    assert first.endswith(";;;0")
    reader = _Reader(ServerSpec(name="server", client=target.client), policy, 1)
    reader._job(("tenant", "tenant-id"), job, health)
    for name, samples in reader.samples.items():
        for _labels, value in samples:
            assert math.isfinite(value), (name, value)
            assert "duration" not in name or value >= 0, (name, value)
    json.dumps(to_jsonable(health), allow_nan=False)


def _refuse(constant: str) -> None:
    raise AssertionError(f"--json wrote {constant}")


# --- a byte order mark before the JSON ---------------------------------------------------------------


class _ByteOrderMarked(httpx.AsyncBaseTransport):
    """The simulator, every JSON answer (the token's too) sent after a UTF-8 byte order mark, as
    a .NET writer given ``Encoding.UTF8`` (or a proxy re-encoding the answers) writes it."""

    def __init__(self, version: str) -> None:
        config = SimulatorConfig(seed=4, organizations=2, api_versions=(version,))
        self.inner = httpx.ASGITransport(app=create_app(config))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        body = await response.aread()
        if not response.headers.get("content-type", "").startswith("application/json"):
            return response
        headers = [(k, v) for k, v in response.headers.items() if k.lower() != "content-length"]
        return httpx.Response(response.status_code, headers=headers, content=b"\xef\xbb\xbf" + body)


@pytest.mark.parametrize("version", ["v1", "v8"])
async def test_answers_after_a_utf8_byte_order_mark_are_read(version: str) -> None:
    """RFC 8259 lets a parser ignore a byte order mark before JSON, and Python's json module and
    httpx's ``Response.json()`` do: the client refused every such answer as "not valid JSON
    (UTF-8 byte order mark (BOM) is not supported)", the token's first, so it could read
    nothing from such a server, and quoted an error answer's JSON whole instead of its message."""
    marked = _ByteOrderMarked(version)
    plain = httpx.ASGITransport(
        app=create_app(SimulatorConfig(seed=4, organizations=2, api_versions=(version,)))
    )
    read = {}
    for name, transport in (("marked", marked), ("plain", plain)):
        async with VBOClient(
            "https://vbo.test:4443",
            username="admin",
            password="admin",
            transport=transport,
            api_version=version,
        ) as vbo:
            organizations = await vbo.organizations()
            jobs = await vbo.jobs()
            with pytest.raises(NotFoundError) as missing:
                await vbo.job("00000000-0000-0000-0000-000000000000")
            read[name] = ([o.id for o in organizations], jobs, str(missing.value))
    assert read["marked"][0] == read["plain"][0]
    assert [job.id for job in read["marked"][1]] == [job.id for job in read["plain"][1]]
    assert [job.last_run for job in read["marked"][1]] == [job.last_run for job in read["plain"][1]]
    assert read["marked"][2] == read["plain"][2]  # the server's message, not its JSON quoted
    assert "{" not in read["marked"][2]


@pytest.mark.parametrize("version", list(DIALECTS))
def test_a_value_nested_as_deeply_as_the_parser_allows_is_refused_with_its_path(
    passes: dict[str, tuple[Decoder, FastHooks, Any]], version: str
) -> None:
    """Arrays nested 1,000 deep (the parser allows 1,024) in a job's name: the job is refused
    naming the field, and the job beside it is kept. The value is not quoted where ``repr`` gives
    up sooner (Python 3.11); from 3.12 it is quoted, cut short."""
    decoder, _fast, _detailed = passes[version]
    deep = b"[" * 1000 + b"]" * 1000
    items = b'[{"id": "deep", "name": ' + deep + b'}, {"id": "plain", "name": "kept"}]'
    body = b'{"results": ' + items + b"}" if version == "v8" else items
    refused: list[DecodeError] = []
    jobs, _next = decoder.page(body, Job, DIALECTS[version], refused=lambda _item, e: refused.append(e))
    assert [(job.id, job.name) for job in jobs] == [("plain", "kept")]
    (error,) = refused
    assert error.path == ("$.results[0].name" if version == "v8" else "$[0].name")
    message = str(error)
    assert "nested too deeply to quote" in message or "list " + "[" * 20 in message
    assert len(message) < 300
