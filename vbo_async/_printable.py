"""Server text made safe to print: control characters written out as escapes (pure).

A name or a message a server sends may hold characters a terminal, a log file or a monitoring
system acts on instead of showing: an escape sequence that recolours or clears the screen, a
carriage return that overwrites the line, a newline (or U+2028, where some viewers break lines)
that forges a row of a table or a line of a log, a bidirectional override that shows the text
in another order. `printable` writes each of them out (``\\x1b``, ``\\n``, ``\\u202e``), so the
text reads as the server sent it and does nothing else. Everything else, accents and other
scripts and emoji included, is kept as it is.
"""

from __future__ import annotations

from types import MappingProxyType

__all__ = ["printable", "printable_lines"]

_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}
_SEPARATORS = [0x2028, 0x2029]
_BIDI = [0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
_ESCAPES = MappingProxyType(
    {
        **{code: f"\\x{code:02x}" for code in [*range(0x20), *range(0x7F, 0xA0)]},
        **{ord(char): escape for char, escape in _NAMED.items()},
        **{code: f"\\u{code:04x}" for code in [*_SEPARATORS, *_BIDI]},
    }
)
"""C0 and C1 control characters, DEL, the line and paragraph separators, and the bidirectional
marks, embeddings, overrides and isolates, each to its escape."""
_ESCAPES_BUT_LINES = MappingProxyType(
    {code: escape for code, escape in _ESCAPES.items() if chr(code) not in "\t\n"}
)
"""`_ESCAPES` but for tabs and line feeds."""


def printable(text: str) -> str:
    """``text`` with every control character and bidirectional control written out as an escape."""
    return text.translate(_ESCAPES)


def printable_lines(text: str) -> str:
    """`printable`, but tabs and line feeds kept: for text whose consumer escapes those itself
    and shows them as the blanks they are (a Prometheus label value, an alert's text)."""
    return text.translate(_ESCAPES_BUT_LINES)
