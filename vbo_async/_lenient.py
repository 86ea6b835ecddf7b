"""Reading a body orjson refused for what a broken proxy writes, not for what is not JSON (pure).

orjson refuses a whole body for one raw control character in a string (a tab or a line break a
proxy or a middleware wrote unescaped) and for one number no double holds (``1e400``, an integer
of 400 digits), which lost every item of a page for one field of one. `loads_lenient` reads such a
body with Python's json module, run only after orjson refused it (orjson stays the path of every
valid body), and gives what orjson gives for every body orjson accepts (a property test compares
them):

- a raw control character in a string is read as the character (``json``'s ``strict=False``);
- a number no double holds is read as its text (``"1e400"``): a field expecting a number refuses
  it (that item is refused, the page's other items are read), one expecting text reads it as
  written, an unknown one is ignored. An integer orjson reads exactly (64 bits) is read exactly,
  a larger one as the nearest double, as orjson does;
- ``NaN``, ``Infinity`` and ``-Infinity`` are refused: they are no JSON, and no .NET serializer
  writes them unquoted by default (a quoted ``"NaN"`` is a string, read as one anywhere);
- nesting deeper than orjson's 1,024 levels is refused, and so is nesting deeper than Python's
  recursion allows here (a ``RecursionError`` never escapes): on Python 3.11, a little under
  1,000 levels for a body read this way.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

__all__ = ["MAX_DEPTH", "NotReadable", "loads_lenient"]

MAX_DEPTH = 1024
"""The deepest nesting read (orjson's limit): a body nested deeper is refused."""

_I64_MIN = -(2**63)
_U64_MAX = 2**64 - 1
_INFINITY = float("inf")


class NotReadable(Exception):
    """The body is not JSON even read leniently: ``problem``, found at byte ``pos`` (None: not
    said, as for NaN and for nesting too deep; the caller says why orjson refused the body)."""

    def __init__(self, problem: str, pos: int | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.pos = pos


def _constant(name: str) -> Any:
    raise _Constant(name)


class _Constant(Exception):
    """``NaN``, ``Infinity`` or ``-Infinity`` met (json does not say where: `_constant_at` does)."""


_STRING_OR_CONSTANT = re.compile(r'"(?:[^"\\]|\\.)*"|(-?Infinity|NaN)', re.DOTALL)


def _constant_at(text: str) -> int:
    """Where the first constant outside a string begins in ``text`` (a JSON prefix up to it, as
    the parser read it, so every quote before it delimits a string), or 0."""
    for match in _STRING_OR_CONSTANT.finditer(text):
        if match.group(1):
            return match.start()
    return 0


def _float(text: str) -> Any:
    number = float(text)
    return text if number in (_INFINITY, -_INFINITY) else number


def _int(text: str) -> Any:
    if len(text) <= 20:  # up to 20 characters: never past int()'s digit limit, and fast
        number = int(text)
        if _I64_MIN <= number <= _U64_MAX:
            return number
    return _float(text)  # beyond 64 bits orjson reads the nearest double


_DECODER = json.JSONDecoder(strict=False, parse_constant=_constant, parse_float=_float, parse_int=_int)


def loads_lenient(body: bytes | bytearray) -> Any:
    """``body`` (UTF-8 JSON) read as the module docstring says, or `NotReadable`."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise NotReadable("not UTF-8") from None
    try:
        data = _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        refused = NotReadable(exc.msg.lower(), len(text[: exc.pos].encode()))
    except _Constant as exc:
        refused = NotReadable(f"{exc} is not JSON", len(text[: _constant_at(text)].encode()))
    except RecursionError:
        refused = NotReadable("depth limit exceeded: nested deeper than Python's recursion allows")
    else:
        if (body.count(b"[") + body.count(b"{") > MAX_DEPTH) and _deeper_than(data, MAX_DEPTH):
            raise NotReadable(f"depth limit exceeded: nested deeper than {MAX_DEPTH} levels")
        return data
    raise refused  # outside the handler: the parser's error holds the whole text


def _deeper_than(data: Any, limit: int) -> bool:
    """Whether ``data`` nests lists and dicts more than ``limit`` deep (iteratively)."""
    pending = [(data, 1)]
    while pending:
        value, depth = pending.pop()
        if value.__class__ is dict:
            children: Iterable[Any] = value.values()
        elif value.__class__ is list:
            children = value
        else:
            continue
        if depth > limit:
            return True
        pending += [(child, depth + 1) for child in children if child.__class__ in (dict, list)]
    return False
