"""`more_containers_than` skips counting short bodies: it must never let through a body whose
parse builds more containers than the bound, and must agree with the count it skips elsewhere."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson
from hypothesis import given
from hypothesis import strategies as st

from vbo_async._pages import count_containers, more_containers_than, unread, with_limit

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(alphabet="{[}]x", max_size=8),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=3), inner, max_size=5),
    max_leaves=40,
)


def containers(value: Any) -> int:
    if isinstance(value, list):
        return 1 + sum(containers(item) for item in value)
    if isinstance(value, dict):
        return 1 + sum(containers(item) for item in value.values())
    return 0


@given(value=JSON, limit=st.integers(min_value=0, max_value=60))
def test_a_body_let_through_never_parses_into_more_containers(value: Any, limit: int) -> None:
    body = orjson.dumps(value)
    if not more_containers_than(body, limit):
        assert containers(orjson.loads(body)) <= limit


@given(body=st.binary(max_size=80), limit=st.integers(min_value=0, max_value=40))
def test_a_body_long_enough_is_judged_by_the_count(body: bytes, limit: int) -> None:
    if len(body) > 2 * limit:
        assert more_containers_than(body, limit) == (count_containers(body) > limit)
    else:
        assert more_containers_than(body, limit) is False


def test_the_edge_of_the_short_cut() -> None:
    assert more_containers_than(b"[]" * 10, 9) is True  # 20 bytes, 10 containers: counted
    assert more_containers_than(b"[]" * 10, 10) is False  # 20 bytes cannot hold 11
    assert more_containers_than(b'{"a":[' + b"[]," * 20 + b"[]]}", 21) is True


QUERY_TEXT = st.text(alphabet="limtLIMT%69=&;+x0", max_size=24)


@given(query=QUERY_TEXT, limit=st.integers(min_value=1, max_value=10_000))
def test_with_limit_agrees_with_parsing_every_query(query: str, limit: int) -> None:
    url = f"https://vb365.example.com/v8/Jobs?{query}" if query else "https://vb365.example.com/v8/Jobs"
    parsed = urlsplit(url).query
    named = any(key.lower() == "limit" for key, _ in parse_qsl(parsed, keep_blank_values=True))
    expected = url if named else f"{url}{'&' if parsed else '?'}limit={limit}"
    assert with_limit(url, limit) == expected


def test_with_limit_sees_an_escaped_limit_key() -> None:
    url = "https://vb365.example.com/v8/Jobs?l%69mit=5"
    assert with_limit(url, 100) == url
    assert with_limit("https://vb365.example.com/v8/Jobs?a=1", 100).endswith("?a=1&limit=100")
    assert with_limit("https://vb365.example.com/v1/Jobs", None) == "https://vb365.example.com/v1/Jobs"


@given(first=st.lists(st.sampled_from("abcdef"), unique=True), later=st.lists(st.sampled_from("abcdefgh")))
def test_unread_gives_each_id_once_in_order(first: list[str], later: list[str]) -> None:
    ids: set[str] = set()
    assert [item.id for item in unread([SimpleNamespace(id=key) for key in first], ids)] == first
    fresh = [item.id for item in unread([SimpleNamespace(id=key) for key in later], ids)]
    assert fresh == list(dict.fromkeys(key for key in later if key not in first))
    assert ids == set(first) | set(later)


@given(
    first=st.lists(st.sampled_from("abcdef"), unique=True),
    later=st.lists(st.sampled_from("abcdefghABCDEFGH")),
)
def test_unread_compares_ids_ignoring_case_and_keeps_the_first_spelling(
    first: list[str], later: list[str]
) -> None:
    """GUIDs are case-insensitive: ``ABC`` on a later page is the ``abc`` read before."""
    ids: set[str] = set()
    unread([SimpleNamespace(id=key.upper()) for key in first], ids)
    fresh = [item.id for item in unread([SimpleNamespace(id=key) for key in later], ids)]
    expected: dict[str, str] = {}
    for key in later:
        if key.lower() not in first:
            expected.setdefault(key.lower(), key)
    assert fresh == list(expected.values())
