"""Reading a body orjson refused for what a broken proxy writes, not for what is not JSON (pure).

orjson refuses a whole body for one raw control character in a string (a tab or a line break a
proxy or a middleware wrote unescaped) and for one number no double holds (``1e400``, an integer
of 400 digits), which lost every item of a page for one field of one. `loads_lenient` reads such a
body with Python's json module, run only after orjson refused it (orjson stays the path of every
valid body), and gives what orjson gives for every body orjson accepts (a property test compares
them):

- a raw control character in a string is read as the character (``json``'s ``strict=False``);
- a number no double holds is read as its text (``"1e400"``), a `NumberText`: a field expecting a
  number refuses it (that item is refused, the page's other items are read), and so does one
  expecting a name from a set (an enum, which refuses every number), one expecting text reads it as
  written, an unknown one is ignored. An integer orjson reads exactly (64 bits) is read exactly,
  a larger one as the nearest double, as orjson does;
- ``NaN``, ``Infinity`` and ``-Infinity`` are refused: they are no JSON, and no .NET serializer
  writes them unquoted by default (a quoted ``"NaN"`` is a string, read as one anywhere). A page
  holding them is read by `loads_unquoted`, each read as an `Unquoted` marker: the decoder
  refuses the items holding one and reads the rest;
- nesting deeper than orjson's 1,024 levels is refused, and so is nesting deeper than Python's
  recursion allows here (a ``RecursionError`` never escapes): on Python 3.11, a little under
  1,000 levels for a body read this way.

A page nested past 1,024 levels is read by `loads_cut` instead, with what opens deeper than
`CUT_DEPTH` replaced by `TOO_DEEP`: the decoder refuses the items holding it and reads the rest.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

__all__ = [
    "CUT_DEPTH",
    "MAX_DEPTH",
    "TOO_DEEP",
    "NotReadable",
    "NumberText",
    "TooDeep",
    "Unquoted",
    "holds_too_deep",
    "holds_unread",
    "loads_cut",
    "loads_lenient",
    "loads_unquoted",
]

MAX_DEPTH = 1024
"""The deepest nesting read (orjson's limit): a body nested deeper is refused."""

_I64_MIN = -(2**63)
_U64_MAX = 2**64 - 1
_INFINITY = float("inf")


class NotReadable(Exception):
    """The body is not JSON even read leniently: ``problem``, found at byte ``pos`` (None: not
    said, as for NaN and for nesting too deep; the caller says why orjson refused the body)."""

    def __init__(self, problem: str, pos: int | None = None, *, deep: bool = False) -> None:
        super().__init__(problem)
        self.problem = problem
        self.pos = pos
        self.deep = deep
        """Refused for nesting too deeply (`loads_cut` may read a page)."""


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


class NumberText(str):
    """The text of a number no double holds, as the lenient reading reads it (``"1e400"``): a
    string, for a field expecting text to read as written, but not one a field expecting a string
    from a set (an enum) takes, as it takes no number (a plain ``str`` it would take as a new
    member: ``JobStatus("1e400")``)."""

    __slots__ = ()


def _float(text: str) -> Any:
    number = float(text)
    return NumberText(text) if number in (_INFINITY, -_INFINITY) else number


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
        refused = NotReadable("depth limit exceeded: nested deeper than Python's recursion allows", deep=True)
    else:
        if (body.count(b"[") + body.count(b"{") > MAX_DEPTH) and _deeper_than(data, MAX_DEPTH):
            raise NotReadable(f"depth limit exceeded: nested deeper than {MAX_DEPTH} levels", deep=True)
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


CUT_DEPTH = 512
"""How deep `loads_cut` keeps a body nested past `MAX_DEPTH`: arrays and objects opening deeper
are cut. Half of orjson's limit, so that Python's json, whose recursion shares the interpreter's
limit (1,000 frames by default) with whatever called it, reads the rest."""


class TooDeep:
    """What stands for an array or object `loads_cut` cut (one instance, `TOO_DEEP`): no JSON
    value, so no field of a model reads it; the decoder refuses each item holding one."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"<nested deeper than {CUT_DEPTH} levels>"


TOO_DEEP = TooDeep()

_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*+"|["\[\]{}]|NaN|-?Infinity', re.DOTALL)
"""What `loads_cut` looks at: strings (skipped whole: their brackets are text), a quote that
opens no string it closes, brackets, and the constants no JSON has."""


def _too_deep(name: str) -> Any:
    if name != "NaN":  # the only constant left in a cut body is the one put there
        raise _Constant(name)
    return TOO_DEEP


_CUT_DECODER = json.JSONDecoder(strict=False, parse_constant=_too_deep, parse_float=_float, parse_int=_int)


def loads_cut(body: bytes | bytearray) -> Any | None:
    """``body`` (UTF-8 JSON nested past `MAX_DEPTH`) read as `loads_lenient` reads, each array or
    object opening deeper than `CUT_DEPTH` read as `TOO_DEEP`; None when it nests no deeper than
    that, or is no JSON once cut (it holds NaN, say, or is cut short).

    One job with an unknown field nested 5,000 deep made orjson refuse its whole page: cut, the
    page is read and that job alone refused (`holds_too_deep`). Slower than parsing (a step of
    Python per string and bracket) and never needed by a sane server: only for a body refused."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    pieces: list[str] = []
    depth = 0
    kept_to = 0  # text before this is in ``pieces`` (or cut)
    opened = -1  # where the array or object being cut opens
    for match in _TOKEN.finditer(text):
        token = match.group()
        if token in ("[", "{"):
            depth += 1
            if depth == CUT_DEPTH + 1:
                opened = match.start()
        elif token in ("]", "}"):
            depth -= 1
            if depth == CUT_DEPTH:
                pieces += [text[kept_to:opened], "NaN"]
                kept_to = match.end()
            elif depth < 0:
                return None
        elif token == '"' or token[0] != '"':
            # A string never closed: no JSON (and scanning on from each quote after it, each time
            # to the end, took time with the square of the body: ``\\"`` repeated). Or NaN.
            return None
    if depth != 0 or not pieces:
        return None
    pieces.append(text[kept_to:])
    try:
        return _CUT_DECODER.decode("".join(pieces))
    except (ValueError, RecursionError, _Constant):
        return None


def holds_too_deep(data: Any) -> str | None:
    """The JSON path (from ``$``) of the first `TOO_DEEP` in ``data``, or None (iteratively)."""
    found = holds_unread(data)
    return found[0] if found is not None and found[1] is TOO_DEEP else None


def holds_unread(data: Any) -> tuple[str, TooDeep | Unquoted] | None:
    """The JSON path (from ``$``) of the first `TOO_DEEP` or `Unquoted` in ``data`` and that
    marker, or None (iteratively)."""
    pending: list[tuple[Any, str]] = [(data, "$")]
    while pending:
        value, path = pending.pop()
        if value.__class__ is TooDeep or value.__class__ is Unquoted:
            return path, value
        if value.__class__ is dict:
            pending += [(child, f"{path}.{key}") for key, child in reversed(value.items())]
        elif value.__class__ is list:
            pending += [(child, f"{path}[{index}]") for index, child in reversed(list(enumerate(value)))]
    return None


class Unquoted:
    """What stands for ``NaN``, ``Infinity`` or ``-Infinity`` in a page `loads_unquoted` read (one
    instance each): no JSON value, so no field of a model reads it; the decoder refuses each
    item holding one."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<{self.name}, unquoted>"


_UNQUOTED = {name: Unquoted(name) for name in ("NaN", "Infinity", "-Infinity")}

_UNQUOTED_DECODER = json.JSONDecoder(
    strict=False, parse_constant=_UNQUOTED.__getitem__, parse_float=_float, parse_int=_int
)


def loads_unquoted(body: bytes | bytearray) -> Any | None:
    """``body`` (UTF-8 JSON but for ``NaN``, ``Infinity`` or ``-Infinity`` written unquoted) read
    as `loads_lenient` reads, each of those read as its `Unquoted` marker; None when it holds none
    of them, or is no JSON even so (cut short, trailing text, nested past `MAX_DEPTH`).

    orjson refuses the whole of a page one item of which holds ``NaN`` (a .NET server set to
    write floats as symbols): read so, that item alone is refused. Only for a body refused."""
    if b"NaN" not in body and b"Infinity" not in body:
        return None
    try:
        data = _UNQUOTED_DECODER.decode(body.decode("utf-8"))
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return None
    if body.count(b"[") + body.count(b"{") > MAX_DEPTH and _deeper_than(data, MAX_DEPTH):
        return None
    found = holds_unread(data)
    return data if found is not None else None
