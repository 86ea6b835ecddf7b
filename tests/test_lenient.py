"""Bodies orjson refuses for one field, read without losing the page (`vbo_async._lenient`).

A raw control character in a string (a tab or a line break a proxy wrote unescaped) or one number
no double holds (``1e400``) made orjson refuse the whole body: every job of the page was lost for
one field of one. They are read now, after orjson refused, by a lenient reading that must give
exactly what orjson gives for every body orjson accepts (property tests), must not accept what is
no JSON (NaN, trailing text), and must stay bounded (nesting: no RecursionError ever escapes).
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vbo_async import DecodeError, Job, to_jsonable
from vbo_async import _decode as decode_module
from vbo_async import _lenient as lenient_module
from vbo_async._decode import parse_json
from vbo_async._dialects import DIALECTS
from vbo_async._lenient import (
    CUT_DEPTH,
    MAX_DEPTH,
    NotReadable,
    NumberText,
    Unquoted,
    _deeper_than,
    holds_too_deep,
    holds_unread,
    loads_cut,
    loads_lenient,
    loads_unquoted,
)

from .conftest import FakeVBO, client_for, offline_client

PROPERTY = settings(max_examples=300, deadline=None, derandomize=True, database=None)


def same(a: Any, b: Any) -> bool:
    """Equal and of the same types all the way down (``1 == 1.0`` and ``0.0 == -0.0`` are not)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a.hex() == b.hex() or (math.isnan(a) and math.isnan(b))
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[key], b[key]) for key in a)
    return bool(a == b)


text = st.text(st.characters(codec="utf-8"), max_size=12)  # orjson writes no lone surrogate
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | text
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(text, inner, max_size=5),
    max_leaves=40,
)
NUMBER = r"-?(?:0|[1-9][0-9]{0,40})(?:\.[0-9]{1,40})?(?:[eE][+-]?[0-9]{1,4})?"


@PROPERTY
@given(value=values, indent=st.booleans())
def test_the_lenient_reading_agrees_with_orjson_on_every_body_orjson_writes(value: Any, indent: bool) -> None:
    body = orjson.dumps(value, option=orjson.OPT_INDENT_2 if indent else None)
    assert same(loads_lenient(body), orjson.loads(body))


@PROPERTY
@given(
    number=st.from_regex(re.compile(NUMBER), fullmatch=True),
    where=st.sampled_from(["{}", "[{}]", '{"a": {}}']),
)
def test_a_number_is_read_as_orjson_reads_it_or_as_its_text_where_no_double_holds_it(
    number: str, where: str
) -> None:
    body = where.replace("{}", number).encode()
    try:
        expected = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        refused = exc.msg
        expected = json.loads(where.replace("{}", json.dumps(number)), object_hook=_number_text)
        if isinstance(expected, str):
            expected = NumberText(expected)
        elif isinstance(expected, list):
            expected = [
                _number_text(item) if isinstance(item, dict) else NumberText(item) for item in expected
            ]
    else:
        refused = "infinity"
    assert "infinity" in refused  # orjson refuses only a number no double holds
    assert same(loads_lenient(body), expected)
    assert same(parse_json(body), expected)


def _number_text(value: dict[str, Any]) -> dict[str, Any]:
    """``value`` with each string in it a `NumberText` (the number it was written as)."""
    return {key: NumberText(item) if isinstance(item, str) else item for key, item in value.items()}


_ESCAPE = re.compile(rb"\\(u00[01][0-9a-fA-F]|.)", re.DOTALL)
_RAW = {b"b": b"\b", b"t": b"\t", b"n": b"\n", b"f": b"\f", b"r": b"\r"}


def _unescaped(body: bytes) -> bytes:
    """``body`` with every control character its strings escape written raw (an escaped
    backslash is consumed whole, so the ``n`` after it stays text)."""

    def raw(match: re.Match[bytes]) -> bytes:
        escape = match.group(1)
        if escape in _RAW:
            return _RAW[escape]
        if len(escape) == 5:
            return bytes([int(escape[1:], 16)])
        return match.group()

    return _ESCAPE.sub(raw, body)


controls = st.text(
    st.characters(codec="utf-8", max_codepoint=0x7F) | st.sampled_from("\t\n\r\x00\x1f\\"), max_size=12
)


@PROPERTY
@given(
    value=st.recursive(
        controls,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(controls, inner, max_size=4),
        max_leaves=20,
    ),
    indent=st.booleans(),
)
def test_raw_control_characters_in_strings_are_read_as_the_escaped_ones_are(value: Any, indent: bool) -> None:
    escaped = orjson.dumps(value, option=orjson.OPT_INDENT_2 if indent else None)
    raw = _unescaped(escaped)
    assert same(loads_lenient(raw), orjson.loads(escaped))
    assert same(parse_json(raw), orjson.loads(escaped))
    if raw != escaped:
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(raw)  # what the lenient reading is for


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b'["\t", NaN]', "at byte 6"),
        (b'{"a": "\t", "b": Infinity}', "at byte 16"),
        (b'["\t", -Infinity]', "at byte 6"),
        (b'["\t"] ["\t"]', "extra data at byte 6"),
        (b'["\t", 1e400', "at byte 11"),
        (b'["\t", 1e400,]', "at byte 12"),
        (b'["\t" 1]', "delimiter at byte 5"),
        (b'{"a\tb": 1e400 "c": 1}', "delimiter at byte 14"),
        (b"['\t']", "at byte 1"),
        (b'["\xff\t\xff"] x', "extra data at byte 12"),  # mended first, so the offset is the mended body's
    ],
)
def test_what_is_no_json_stays_refused_and_says_where(body: bytes, problem: str) -> None:
    """NaN and Infinity are no JSON (orjson refuses them; .NET serializers quote them); trailing
    text, missing delimiters, single quotes neither. Where the lenient reading got past what
    orjson refused (the tab), its own words say what is wrong."""
    with pytest.raises(DecodeError, match="not valid JSON") as refused:
        parse_json(body)
    assert problem in str(refused.value)


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 5_000, 100_000])
def test_nesting_too_deep_is_refused_without_a_recursion_error(depth: int) -> None:
    body = b"[" * depth + b'"\t"' + b"]" * depth
    with pytest.raises(DecodeError, match="not valid JSON"):
        parse_json(body)
    with pytest.raises(NotReadable):
        loads_lenient(body)


def test_nesting_as_deep_as_a_page_holds_is_read() -> None:
    body = b"[" * 200 + b'"\t"' + b"]" * 200
    data = parse_json(body)
    for _ in range(200):
        assert data.__class__ is list
        (data,) = data
    assert data == "\t"


def test_the_depth_bound_is_orjsons_whatever_python_allows() -> None:
    """Python's own limit differs by version (under 1,000 levels on 3.11, more on later ones):
    the bound itself is orjson's 1,024, checked without recursion."""
    for depth, deeper in ((MAX_DEPTH, False), (MAX_DEPTH + 1, True), (10 * MAX_DEPTH, True)):
        nested: Any = "x"
        for _ in range(depth):
            nested = [nested] if depth % 2 else {"k": nested}
        assert _deeper_than(nested, MAX_DEPTH) is deeper
        assert _deeper_than([1, {"a": [2]}], 3) is False


def _page(seed_job: dict[str, Any], **raw: str) -> bytes:
    """A page of two jobs: the seed job, and a copy whose named fields (``schedulePolicy.x`` for
    one of its policy) hold the raw JSON text given."""
    second = json.loads(json.dumps(seed_job))
    second["id"] = "0b5c1e4d-2f3a-4b6c-8d9e-0f1a2b3c4d5e"
    for name in raw:
        holder, _, key = name.rpartition(".")
        (second[holder] if holder else second)[key] = f"@@{name}@@"
    body = json.dumps([seed_job, second])
    for name, value in raw.items():
        body = body.replace(json.dumps(f"@@{name}@@"), value)
    return body.encode()


async def _jobs_filed(body: bytes) -> tuple[list[Job], dict[str, list[DecodeError]]]:
    fake = FakeVBO()
    fake.route("GET", "/v1/Jobs", lambda request: httpx.Response(200, content=body))
    async with client_for(fake) as vbo:
        return await vbo._jobs_filed()


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ({"name": '"Mail\tdaily\n"'}, "Mail\tdaily\n"),
        ({"description": '"first line\r\nsecond line"'}, None),
        ({"unknownCounter": "1e400"}, None),
        ({"unknownCounter": "-" + "9" * 500}, None),
        ({"name": "1e400"}, "1e400"),  # a number where text is expected, read as it was written
    ],
)
async def test_a_page_with_a_raw_control_character_or_a_huge_number_loses_no_job(
    seed_job: dict[str, Any], raw: dict[str, str], shown: str | None
) -> None:
    body = _page(seed_job, **raw)
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(body)  # refused whole before
    jobs, refused = await _jobs_filed(body)
    assert refused == {}
    assert [job.id for job in jobs] == [seed_job["id"], "0b5c1e4d-2f3a-4b6c-8d9e-0f1a2b3c4d5e"]
    if shown is not None:
        assert jobs[1].name == shown


@pytest.mark.parametrize("number", ["1e400", "-1e400", "9" * 400])
async def test_a_huge_number_in_a_numeric_field_refuses_that_job_only(
    seed_job: dict[str, Any], number: str
) -> None:
    body = _page(seed_job, **{"schedulePolicy.retryNumber": number})
    jobs, refused = await _jobs_filed(body)
    assert [job.id for job in jobs] == [seed_job["id"]]
    (errors,) = refused.values()
    (error,) = errors
    assert error.path == "$[1].schedulePolicy.retryNumber"
    assert number[:20] in str(error)


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
@pytest.mark.parametrize("field", ["schedulePolicy.retryNumber", "unknownCounter", "id"])
async def test_nan_unquoted_in_one_job_refuses_that_job_only(
    seed_job: dict[str, Any], constant: str, field: str
) -> None:
    """A server set to write floats as symbols (``NaN``, no JSON) lost its whole page for one
    field of one job (orjson refuses the body): that job alone is refused now, filed under its
    tenant, the error naming where the constant is; the others are read."""
    body = _page(seed_job, **{field: constant})
    with pytest.raises(DecodeError, match="not valid JSON"):
        parse_json(body)  # still no JSON: a single resource holding it is refused
    jobs, refused = await _jobs_filed(body)
    assert [job.id for job in jobs] == [seed_job["id"]]
    (errors,) = refused.values()
    (error,) = errors
    assert error.path == f"$[1].{field}"
    assert f"it holds {constant} at $[1].{field}, unquoted" in str(error)


def test_nan_unquoted_outside_the_items_refuses_the_page() -> None:
    body = b'{"results": [{"id": "a"}], "_links": {"next": {"href": NaN}}}'
    decoder = offline_client("v8")._fetcher.decoder
    refused: list[Any] = []
    with pytest.raises(DecodeError, match="not valid JSON"):
        decoder.page(body, Job, DIALECTS["v8"], refused=lambda item, error: refused.append(error))
    assert refused == []


@st.composite
def unquoted_pages(draw: st.DrawFn) -> tuple[bytes, list[Any], str]:
    """(a page's body with one constant unquoted somewhere in one item, its items as the strict
    path reads them with `_DEEP` where the constant is, the constant)."""
    items = draw(st.lists(values, max_size=4))
    marked: Any = _DEEP
    for kind in draw(st.lists(st.sampled_from(["list", "dict"]), max_size=3)):
        marked = [marked] if kind == "list" else {draw(text): marked}
    items.insert(draw(st.integers(0, len(items))), marked)
    constant = draw(st.sampled_from(["NaN", "Infinity", "-Infinity"]))
    return orjson.dumps(items).replace(orjson.dumps(_DEEP), constant.encode()), items, constant


@settings(max_examples=100, deadline=None, derandomize=True, database=None)
@given(case=unquoted_pages())
def test_a_page_read_with_constants_unquoted_is_the_strict_reading_but_for_them(
    case: tuple[bytes, list[Any], str],
) -> None:
    """`loads_unquoted` against the strict path: what orjson reads of the page with the constant
    quoted, the constant's marker where it stood, whatever strings surround it."""
    body, items, constant = case
    read = loads_unquoted(body)
    assert read is not None
    found = holds_unread(read)
    assert found is not None
    _, read_marker = found
    assert isinstance(read_marker, Unquoted)
    assert read_marker.name == constant
    assert same_cut(read, _replaced(items, _DEEP, read_marker))
    assert loads_unquoted(orjson.dumps(items)) is None  # nothing unquoted: the strict path reads it


@pytest.mark.parametrize("number", ["1e400", "-1e400", "9" * 400])
@pytest.mark.parametrize("field", ["lastStatus", "schedulePolicy.type", "schedulePolicy.dailyType"])
async def test_a_huge_number_where_a_name_from_a_set_belongs_refuses_that_job_only(
    seed_job: dict[str, Any], number: str, field: str
) -> None:
    """An enum field refuses every number (``5`` is no job status): one no double holds, read as
    its text, was taken as a new member (``JobStatus("1e400")``, published by the exporter as a
    status of its own); now it is refused too, that job alone, the error saying what it was."""
    body = _page(seed_job, **{field: number})
    jobs, refused = await _jobs_filed(body)
    assert [job.id for job in jobs] == [seed_job["id"]]
    (errors,) = refused.values()
    (error,) = errors
    assert error.path == f"$[1].{field}"
    assert "got a number no double holds" in str(error)
    assert number[:20] in str(error)


async def test_a_huge_number_where_text_belongs_is_read_as_plain_text(seed_job: dict[str, Any]) -> None:
    body = _page(seed_job, name="1e400", description="-" + "9" * 400)
    jobs, refused = await _jobs_filed(body)
    assert refused == {}
    assert (jobs[1].name, jobs[1].description) == ("1e400", "-" + "9" * 400)
    assert type(jobs[1].name) is str
    assert type(jobs[1].description) is str


async def test_raw_json_holding_a_huge_number_is_written_back_as_the_text_it_was_read_as() -> None:
    """A link to raw JSON (an organization's users) whose answer holds a number no double holds
    gives it as its text, a `NumberText`: ``to_wire`` refused that as no JSON value
    (``ConfigError: to_wire() cannot write a NumberText``) and ``to_jsonable`` passed the
    subclass on; both write the plain string now, as for the quoted number."""
    fake = FakeVBO()
    users = "/v1/Organizations/o1/Users"
    wire = {"id": "o1", "name": "Contoso", "_links": {"users": {"href": users}}}
    fake.route("GET", "/v1/Organizations/o1", wire)
    fake.route("GET", users, lambda request: httpx.Response(200, content=b'[{"id": "u1", "quota": 1e400}]'))
    async with client_for(fake) as vbo:
        organization = await vbo.organization("o1")
        assert organization.links.users is not None
        raw = await organization.links.users
        assert raw == [{"id": "u1", "quota": "1e400"}]
        written = vbo.to_wire(raw)
    for output in (written, to_jsonable(raw)):
        assert output == [{"id": "u1", "quota": "1e400"}]
        assert type(output[0]["quota"]) is str
        assert json.dumps(output) == '[{"id": "u1", "quota": "1e400"}]'


# --- nesting past 1,024 levels inside one item ----------------------------------------------------


def _nest(depth: int) -> str:
    return "[" * depth + '{"deep": "\t"}' + "]" * depth


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 5_000, 100_000])
async def test_an_item_nested_past_the_limit_is_refused_alone(seed_job: dict[str, Any], depth: int) -> None:
    """One job with an unknown field nested past 1,024 levels lost its page (orjson refuses the
    body): the page is read with that field cut, and the job alone is refused, filed under its
    tenant, the error naming where it nests too deeply."""
    body = _page(seed_job, unknownTree=_nest(depth))
    with pytest.raises(DecodeError, match="not valid JSON"):
        parse_json(body)
    jobs, refused = await _jobs_filed(body)
    assert [job.id for job in jobs] == [seed_job["id"]]
    (errors,) = refused.values()
    (error,) = errors
    assert error.path == "$[1].unknownTree" + "[0]" * (CUT_DEPTH - 2)  # the tree opens at depth 3
    assert f"nests deeper than {CUT_DEPTH} levels at $[1].unknownTree[0][0]" in str(error)
    assert len(str(error)) < 500


async def test_without_a_refusal_callback_the_listing_is_a_decode_error(seed_job: dict[str, Any]) -> None:
    fake = FakeVBO()
    body = _page(seed_job, unknownTree=_nest(5_000))
    fake.route("GET", "/v1/Jobs", lambda request: httpx.Response(200, content=body))
    async with client_for(fake) as vbo:
        with pytest.raises(DecodeError, match="nests deeper than 512 levels") as raised:
            await vbo.jobs()
    assert raised.value.path is not None
    assert raised.value.path.startswith("$[1].unknownTree[0]")


def test_a_page_whose_own_links_nest_too_deeply_is_refused_whole() -> None:
    body = ('{"results": [{"id": "a"}], "_links": {"next": ' + _nest(2_000) + "}}").encode()
    decoder = offline_client("v8")._fetcher.decoder
    refused: list[Any] = []
    with pytest.raises(DecodeError, match="not valid JSON"):
        decoder.page(body, Job, DIALECTS["v8"], refused=lambda item, error: refused.append(error))
    assert refused == []


def test_a_page_object_keeps_its_other_items_and_next_link() -> None:
    items = [{"id": "a"}, {"id": "b", "x": 0}, {"id": "c"}]
    text = json.dumps({"results": items, "_links": {"next": {"href": "/v8/Jobs?offset=3"}}})
    body = text.replace('"x": 0', '"x": ' + _nest(3_000)).encode()
    decoder = offline_client("v8")._fetcher.decoder
    refused: list[tuple[Any, DecodeError]] = []
    jobs, next_href = decoder.page(
        body, Job, DIALECTS["v8"], refused=lambda item, error: refused.append((item, error))
    )
    assert [job.id for job in jobs] == ["a", "c"]
    assert next_href == "/v8/Jobs?offset=3"
    ((item, error),) = refused
    assert item["id"] == "b"
    assert error.path is not None
    assert error.path.startswith("$.results[1].x[0]")


_DEEP = "@@deep@@"


def _nested(levels: int, leaf: Any) -> Any:
    """``leaf`` inside ``levels`` arrays (iteratively)."""
    for _ in range(levels):
        leaf = [leaf]
    return leaf


def _replaced(value: Any, marker: str, by: Any) -> Any:
    """``value`` with the string ``marker`` replaced by ``by`` (``value`` is shallow)."""
    if value == marker:
        return by
    if isinstance(value, list):
        return [_replaced(item, marker, by) for item in value]
    if isinstance(value, dict):
        return {key: _replaced(item, marker, by) for key, item in value.items()}
    return value


@st.composite
def deep_pages(draw: st.DrawFn) -> tuple[bytes, list[Any], int, int]:
    """(a page's body, its items as the strict path reads them with `_DEEP` where one nests
    ``depth`` arrays, the depth of the container holding `_DEEP`, ``depth``)."""
    items = draw(st.lists(values, max_size=4))
    wrappers = draw(st.lists(st.sampled_from(["list", "dict"]), min_size=0, max_size=3))
    deep: Any = _DEEP
    for kind in wrappers:
        deep = [deep] if kind == "list" else {draw(text): deep}
    at = draw(st.integers(0, len(items)))
    items.insert(at, deep)
    depth = draw(st.integers(CUT_DEPTH - 8, MAX_DEPTH + 300))
    return orjson.dumps(items), items, 1 + len(wrappers), depth


@settings(max_examples=100, deadline=None, derandomize=True, database=None)
@given(case=deep_pages(), leaf=values)
def test_a_cut_page_is_the_strict_reading_with_only_what_opens_too_deep_cut(
    case: tuple[bytes, list[Any], int, Any], leaf: Any
) -> None:
    """`loads_cut` against the strict path: every item without the deep nest is what orjson
    reads of it; the nest is read down to `CUT_DEPTH` levels and `TOO_DEEP` from there (None
    when nothing opens that deep), wherever the nest is and whatever strings (brackets and
    quotes in them) surround it."""
    body, items, holder, depth = case
    nest = "[" * depth + orjson.dumps(leaf).decode() + "]" * depth
    body = body.replace(orjson.dumps(_DEEP), nest.encode())
    kept = CUT_DEPTH - holder  # the nest's arrays that open at CUT_DEPTH or above
    if depth > kept:
        inner: Any = lenient_module.TOO_DEEP
    else:
        inner = _cut_reference(leaf, holder + depth)
    cut = loads_cut(body)
    if depth <= kept and inner == leaf and holds_too_deep(inner) is None:
        assert cut is None  # nothing opens too deep: read by the strict path
        return
    expected = _replaced(items, _DEEP, _nested(min(depth, kept), inner))
    assert cut is not None
    assert len(cut) == len(expected)
    for got, wanted in zip(cut, expected, strict=True):
        assert same_cut(got, wanted)


def _cut_reference(value: Any, parent: int) -> Any:
    """``value``, held by a container at depth ``parent``, with each array or object opening
    deeper than `CUT_DEPTH` replaced by `TOO_DEEP` (``value`` is shallow: recursively)."""
    if not isinstance(value, list | dict):
        return value
    if parent + 1 > CUT_DEPTH:
        return lenient_module.TOO_DEEP
    if isinstance(value, list):
        return [_cut_reference(item, parent + 1) for item in value]
    return {key: _cut_reference(item, parent + 1) for key, item in value.items()}


def same_cut(a: Any, b: Any) -> bool:
    """`same`, iteratively (a cut nest is 500 levels deep), `TOO_DEEP` equal only to itself."""
    pending = [(a, b)]
    while pending:
        x, y = pending.pop()
        if x is lenient_module.TOO_DEEP or y is lenient_module.TOO_DEEP:
            if x is not y:
                return False
        elif isinstance(x, list) and isinstance(y, list):
            if len(x) != len(y):
                return False
            pending += zip(x, y, strict=True)
        elif isinstance(x, dict) and isinstance(y, dict):
            if list(x) != list(y):
                return False
            pending += [(x[key], y[key]) for key in x]
        elif not same(x, y):
            return False
    return True


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 2_000 + b"]" * 1_999,  # cut short
        b"[" * 2_000 + b"NaN" + b"]" * 2_000,  # no JSON, however deep
        b"[" * 2_000 + b"]" * 2_000 + b"]",
        b'[{"a": 1}]',  # not nested too deeply: nothing to cut
        b"[" * 2_000 + b"]" * 2_000 + b" x",
        b"\xff" + b"[" * 2_000 + b"]" * 2_000,
    ],
)
def test_a_body_that_is_no_json_once_cut_is_not_read(body: bytes) -> None:
    assert loads_cut(body) is None


def test_brackets_in_strings_are_text_when_cutting() -> None:
    deep = "[" * 600 + '"]]]\\"[["' + "]" * 600
    data = loads_cut(f'[{{"t": "[[[{{", "d": {deep}}}, "]]"]'.encode())
    assert data[0]["t"] == "[[[{"
    assert data[1] == "]]"
    assert holds_too_deep(data) == "$[0].d" + "[0]" * (CUT_DEPTH - 2)
    assert holds_too_deep(data[1]) is None


_PIECES = st.sampled_from(
    [
        b"[",
        b"]",
        b"{",
        b"}",
        b'"',
        b",",
        b":",
        b"\t",
        b"\n",
        b"\x00",
        b"\\",
        b"\\u",
        b"d800",
        b"1e400",
        b"-",
        b"9" * 30,
        b"NaN",
        b"Infinity",
        b"null",
        b"true",
        b'"results"',
        b'"_links"',
        b'"next"',
        b"\xff",
        b'{"id": "a"}',
        b"[" * 1100,
        b"]" * 1100,
        b"\xef\xbb\xbf",
        b" ",
        b"0.5",
        b'"x"',
    ]
)


@settings(max_examples=500, deadline=None, derandomize=True, database=None)
@given(pieces=st.lists(_PIECES, max_size=24))
def test_any_body_is_read_or_refused_with_a_decode_error(pieces: list[bytes]) -> None:
    """Whatever the bytes: data or a `DecodeError`, from the parser and from a page's decoder,
    never another exception (a RecursionError, a ValueError of int(), a bare KeyError)."""
    body = b"".join(pieces)
    with contextlib.suppress(DecodeError):
        parse_json(body)
    decoder = offline_client("v8")._fetcher.decoder
    refused: list[DecodeError] = []
    with contextlib.suppress(DecodeError):
        decoder.page(body, Job, DIALECTS["v8"], refused=lambda item, error: refused.append(error))
    assert all(isinstance(error, DecodeError) for error in refused)


async def test_a_raw_tab_before_the_deep_item_does_not_hide_the_nesting(seed_job: dict[str, Any]) -> None:
    """orjson stops at the tab; the lenient reading finds the nesting; the page is cut."""
    body = _page(seed_job, name='"Mail\tdaily"', unknownTree=_nest(3_000))
    body = body.replace(
        b'"name": "' + seed_job["name"].encode(), b'"name": "\t' + seed_job["name"].encode(), 1
    )
    with pytest.raises(DecodeError, match="depth"):
        parse_json(body)
    jobs, refused = await _jobs_filed(body)
    assert [job.name for job in jobs] == ["\t" + seed_job["name"]]
    assert [error.path[:21] for errors in refused.values() for error in errors] == ["$[1].unknownTree[0][0"]


def test_a_page_refused_for_anything_but_depth_is_not_cut(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cutting steps through the body in Python: only for a page refused for its nesting."""
    calls: list[int] = []
    monkeypatch.setattr(decode_module, "loads_cut", lambda body: calls.append(len(body)))
    decoder = offline_client("v8")._fetcher.decoder
    many = b'{"results": [' + b", ".join([b'{"id": "a", "t": [[[[]]]]}'] * 500)  # cut short
    with pytest.raises(DecodeError, match="not valid JSON"):
        decoder.page(many, Job, DIALECTS["v8"], refused=lambda item, error: None)
    nested = b"[" * 600 + b"]" * 600  # 2,400 brackets, 601 deep: refused for the x alone
    with pytest.raises(DecodeError, match="not valid JSON"):
        decoder.page(b"[" + nested + b", " + nested + b"]x", Job, DIALECTS["v8"])
    assert calls == []
    with pytest.raises(DecodeError, match="depth"):
        decoder.page(b"[" * 2_000 + b"]" * 2_000, Job, DIALECTS["v8"], refused=lambda item, error: None)
    assert calls == [4_000]


class _Counting:
    """`_lenient._TOKEN`, counting the tokens it hands to `loads_cut`."""

    def __init__(self, pattern: re.Pattern[str]) -> None:
        self.pattern = pattern
        self.tokens = 0

    def finditer(self, text: str) -> Any:
        for match in self.pattern.finditer(text):
            self.tokens += 1
            yield match


@pytest.mark.parametrize("quotes", [2_000, 1_000_000])
def test_a_string_never_closed_ends_the_cut_at_its_quote(
    monkeypatch: pytest.MonkeyPatch, quotes: int
) -> None:
    """Scanning on from each escaped quote after it, each time to the end of the body, took time
    with the square of the body (a 2 MB page would hold the event loop for hours)."""
    counting = _Counting(lenient_module._TOKEN)
    monkeypatch.setattr(lenient_module, "_TOKEN", counting)
    body = b"[" * 1_100 + b'"' + b'\\"' * quotes
    assert loads_cut(body) is None
    assert counting.tokens == 1_100 + 1  # the brackets, then the quote opening no string it closes


@pytest.mark.parametrize(
    ("body", "where"),
    [
        # orjson's words; its 9 counts the characters before the x
        ('["éééé", x]'.encode(), "unexpected character, expected a JSON value at byte 13"),
        ('["é\t", x]'.encode(), "expecting value at byte 8"),  # read leniently past the tab
        ('[1e999, "é", x]'.encode(), "expecting value at byte 14"),  # and past the number
        # mended (the escape keeps its length), then orjson's words again
        ('["é", "\\ud800", x]'.encode(), "unexpected character, expected a JSON value at byte 17"),
        # past 1,024 levels: the 1,026th bracket, 1,030 characters in
        (('["é", ' + "[" * 1100 + "]" * 1101).encode(), "depth limit exceeded at byte 1031"),
    ],
)
def test_where_a_body_is_refused_is_said_in_bytes(body: bytes, where: str) -> None:
    with pytest.raises(DecodeError, match="not valid JSON") as refused:
        parse_json(body)
    assert where in str(refused.value)
    at = int(where.rsplit(" ", 1)[1])
    assert body[at : at + 1] == (b"x" if b"x" in body else b"[")
