"""`printable`: server text shown without the control characters a terminal or a log acts on."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from vbo_async._cli import _app
from vbo_async._cli._logging import LOG_CHARS, one_line
from vbo_async._printable import printable

from .test_properties import PROPERTY

BIDI = {
    *"\u2028\u2029\u061c\u200e\u200f",
    *map(chr, [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]),
}
"""Escaped although not control characters (Cc): the line separators and the bidirectional controls."""


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("Daily backup", "Daily backup"),
        ("Zürich — 日本 👍", "Zürich — 日本 👍"),
        ("red \x1b[31m", "red \\x1b[31m"),
        ("a\r\nb\tc", "a\\r\\nb\\tc"),
        ("\x00\x7f\x85\x9b", "\\x00\\x7f\\x85\\x9b"),
        ("abc\u202egnp.exe", "abc\\u202egnp.exe"),
        ("", ""),
    ],
)
def test_printable(text: str, shown: str) -> None:
    assert printable(text) == shown


def _expected(char: str) -> str:
    """The escape a character gets, from Unicode's own categories rather than from the table."""
    if char in "\t\n\r":
        return {"\t": "\\t", "\n": "\\n", "\r": "\\r"}[char]
    if unicodedata.category(char) == "Cc":
        return f"\\x{ord(char):02x}"
    return f"\\u{ord(char):04x}" if char in BIDI else char


@PROPERTY
@given(st.text())
def test_printable_writes_out_controls_and_keeps_everything_else(text: str) -> None:
    shown = printable(text)
    assert shown == "".join(_expected(char) for char in text)
    assert not any(unicodedata.category(char) == "Cc" or char in BIDI for char in shown)


@PROPERTY
@example("\x1b[2J\u202e" + "n" * 3000)
@given(st.text(min_size=1, max_size=20).flatmap(lambda unit: st.integers(0, 300).map(lambda n: unit * n)))
def test_a_log_line_is_one_bounded_line_of_the_servers_text(text: str) -> None:
    """What the command line writes on stderr of a server's text (``serve``'s warnings, error
    lines): one line, no control characters, at most `LOG_CHARS` characters of it and how long
    it was."""
    shown = one_line(text)
    assert not any(unicodedata.category(char) == "Cc" or char in BIDI for char in shown)
    written = printable(text)
    if len(written) <= LOG_CHARS:
        assert shown == written
    else:
        assert shown == f"{written[:LOG_CHARS]}... ({len(written)} characters)"


def test_an_error_line_quotes_a_bounded_part_of_the_servers_text(capsys: pytest.CaptureFixture[str]) -> None:
    """``vbo-async: error: ...`` quotes names a server lists (``no organization 'x' on ...: did
    you mean ...``): one line, cut as a log line is."""
    said = "no organization 'x': did you mean '" + "\x1b[2Jn" * 50_000 + "'?"
    _app._say_error(said)
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("vbo-async: error: no organization 'x': did you mean '\\x1b[2Jn")
    assert line.endswith(f"... ({len(printable(said))} characters)")
    assert len(line) <= LOG_CHARS + 100
