"""Misuse: caller-supplied strings checked before they reach a form or a URL (vbo_async._checks)."""

from __future__ import annotations

import os
import pickle
from typing import Any
from urllib.parse import unquote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vbo_async import ConfigError
from vbo_async._checks import (
    MAX_ID_CHARS,
    _checked_id,
    _standard_guid,
    id_argument,
    id_key,
    id_segment,
    text_argument,
)

PROPERTY = settings(
    max_examples=int(os.environ.get("VBO_PROPERTY_EXAMPLES", "150")),
    deadline=None,
    derandomize=os.environ.get("VBO_PROPERTY_RANDOM") != "1",
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
LATIN1_FROM_ENVIRON = b"Kennw\xf6rt-42".decode("utf-8", "surrogateescape")
"""What ``os.environ`` holds for a Latin-1 ``Kennwört-42`` on a UTF-8 system: a lone surrogate."""


def messages(name: str) -> set[str]:
    """Every message the checks can give for ``name``, found by provoking each failure."""
    found = set()
    for value in (None, 5, b"x", "", "\udcc3", ".", " x", "a/b", "a\x00b"):
        for check in (text_argument, id_segment):
            try:
                check(value, name)
            except ConfigError as exc:
                found.add(str(exc))
    return found


def assert_hidden(error: ConfigError, value: str) -> None:
    shown = [str(error), repr(error), repr(error.args), error.message, str(pickle.loads(pickle.dumps(error)))]
    assert all(value not in text for text in shown)


# --- text_argument --------------------------------------------------------------------------------


def test_a_good_text_argument_is_returned_unchanged() -> None:
    for value in ["svc", "LAB\\svc-backup", " spaced ", "pässwörd ✓ 😀"]:
        assert text_argument(value, "password") is value


@pytest.mark.parametrize(
    ("value", "match"), [(None, "string"), (5, "string"), (b"pw", "string"), ("", "empty")]
)
def test_a_missing_or_wrong_type_argument_is_refused(value: Any, match: str) -> None:
    with pytest.raises(ConfigError, match=rf"^username must .*{match}") as caught:
        text_argument(value, "username")
    assert isinstance(caught.value, ValueError)


def test_a_string_from_a_non_utf8_environment_is_refused_without_echoing_it() -> None:
    with pytest.raises(ConfigError, match="password cannot be encoded as UTF-8") as caught:
        text_argument(LATIN1_FROM_ENVIRON, "password")
    assert_hidden(caught.value, LATIN1_FROM_ENVIRON)
    assert "Kennw" not in str(caught.value)  # not even the encodable parts
    assert "rt-42" not in str(caught.value)


# --- id_segment -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "segment"),
    [
        ("d3b9f5c2-1f0e-4c6a-9a4e-2b7e8f1a0c11", "d3b9f5c2-1f0e-4c6a-9a4e-2b7e8f1a0c11"),
        ("job one", "job%20one"),
        ("a:b@c", "a%3Ab%40c"),
        ("tenant.onmicrosoft.com", "tenant.onmicrosoft.com"),
        ("...", "..."),
        ("é", "%C3%A9"),
        ("a+b=c&d", "a%2Bb%3Dc%26d"),
    ],
)
def test_an_id_becomes_one_quoted_segment(value: str, segment: str) -> None:
    assert id_segment(value, "job_id") == segment


@pytest.mark.parametrize(
    "value",
    [
        "",
        ".",
        "..",
        "a/b",
        "../admin",
        "a\\b",
        "a?b",
        "a#b",
        "a%2Fb",
        "%",
        "a\x00b",
        "a\nb",
        "a\rb",
        "a\tb",
        "a\x7fb",
        "a\x85b",
        " a",
        "a ",
        "\u3000a",
        "a\u2003",
        "\udcc3",
        LATIN1_FROM_ENVIRON,
    ],
)
def test_an_id_that_could_change_the_path_is_refused(value: str) -> None:
    with pytest.raises(ConfigError, match=r"^organization_id ") as caught:
        id_segment(value, "organization_id")
    assert str(caught.value) in messages("organization_id")


@pytest.mark.parametrize("value", [None, 7, ["a"], object()])
def test_an_id_of_the_wrong_type_is_refused(value: Any) -> None:
    with pytest.raises(ConfigError, match=r"^job_id must be a string"):
        id_segment(value, "job_id")


# --- properties -----------------------------------------------------------------------------------

bad_chars = st.sampled_from(["/", "\\", "?", "#", "%", "\x00", "\x1b", "\n", "\x9b", "\udcc3", "\ud800"])


@st.composite
def bad_ids(draw: st.DrawFn) -> str:
    """An id long enough to be told apart from the fixed words of any message, made invalid."""
    core = draw(st.text(min_size=12, max_size=40))
    kind = draw(st.sampled_from(["char", "space", "surrogate"]))
    if kind == "space":
        return " " + core
    position = draw(st.integers(0, len(core)))
    return core[:position] + draw(bad_chars) + core[position:]


@PROPERTY
@given(value=bad_ids(), name=st.sampled_from(["job_id", "organization_id", "session_id"]))
def test_a_refused_id_never_appears_in_the_error(value: str, name: str) -> None:
    with pytest.raises(ConfigError) as caught:
        id_segment(value, name)
    assert_hidden(caught.value, value)
    assert str(caught.value).startswith(name + " ")
    assert str(caught.value) in messages(name)  # the message does not depend on the value


@PROPERTY
@given(value=st.text(min_size=1))
def test_an_accepted_id_is_exactly_one_safe_segment(value: str) -> None:
    try:
        segment = id_segment(value, "job_id")
    except ConfigError as exc:
        error = str(exc)
    else:
        error = None
    if error is not None:
        assert error in messages("job_id")
        return
    assert segment.isascii()
    assert not set(segment) & set("/\\?# \t\n")
    assert segment not in (".", "..")
    assert unquote(segment) == (_standard_guid(value) or value)


def _id_outcome(value: Any) -> Any:
    try:
        return id_argument(value, "job_id")
    except ConfigError as exc:
        return ("refused", str(exc))


def _checked_outcome(value: Any) -> Any:
    try:
        checked = _checked_id(value, "job_id")
    except ConfigError as exc:
        return ("refused", str(exc))
    return _standard_guid(checked) or checked


@PROPERTY
@given(
    value=st.text(alphabet="abcXYZ019._~- /%?#\\\t\u00e9", max_size=12)
    | st.sampled_from([".", "..", "...", "-", "~", "a.b", " a", "a ", "", "\ud800"])
    | st.integers(MAX_ID_CHARS - 2, MAX_ID_CHARS + 2).map(lambda n: "a" * n)
)
def test_the_plain_id_short_cut_agrees_with_every_check(value: str) -> None:
    """Ids of unescaped characters skip the character-by-character checks: the answer is the same."""
    assert _id_outcome(value) == _checked_outcome(value)


GUID = "aaaa0001-0000-4000-8000-0000000000ab"


@pytest.mark.parametrize(
    "spelling",
    [
        GUID,
        GUID.upper(),
        "{" + GUID + "}",
        "(" + GUID.upper() + ")",
        GUID.replace("-", ""),
        "{" + GUID.replace("-", "") + "}",
    ],
)
def test_every_spelling_of_a_guid_net_reads_is_one_id(spelling: str) -> None:
    """.NET reads a GUID in braces, in parentheses or without dashes as the same GUID: each is
    sent in the servers' own spelling (case aside) and compares equal to it."""
    assert id_argument(spelling, "organization").lower() == GUID
    assert id_key(spelling) == GUID


@pytest.mark.parametrize(
    "other", ["{" + GUID, GUID + "}", "{" + GUID + ")", "[" + GUID + "]", GUID.replace("-", "")[:31], "job-1"]
)
def test_what_is_no_guid_spelling_is_kept_as_written(other: str) -> None:
    assert id_key(other) == other.lower()
    if "[" not in other:
        assert id_argument(other, "organization") == other
