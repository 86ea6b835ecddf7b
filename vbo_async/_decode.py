"""Decoding response bodies into models: a fast pass, and a detailed pass only to explain failures.

Each API version the client meets gets its own hooks (wire names differ). The fast pass is
`FastHooks`: generated functions without cattrs' detailed validation, bound on first use from
plans generated once per process, so a new client decodes its first page without building a
converter. When it fails, the same value is run through a detailed cattrs converter, whose error
tree is turned into one `DecodeError` naming the path in wire names
(``$[1].schedulePolicy.retryNumber``) and the URL. Both passes accept the same input; a
value the fast pass refused but the detailed pass accepted is counted in `Decoder.fallbacks` and
logged at debug level, so a disagreement (or an input that is slow for no reason) shows.
"""

from __future__ import annotations

import codecs
import gc
import logging
import math
import operator
import re
from collections.abc import Callable, Iterator
from typing import Any, TypeVar
from urllib.parse import parse_qsl

import attrs
import cattrs
import orjson
from cattrs.errors import (
    AttributeValidationNote,
    ClassValidationError,
    IterableValidationError,
    IterableValidationNote,
)

from ._checks import with_article
from ._convert import WIRE_TYPES, FastHooks, Unwritable, WireValueError, json_key, make_converter, wire_name
from ._dialects import Dialect
from ._exceptions import ConfigError, DecodeError
from ._lenient import (
    CUT_DEPTH,
    MAX_DEPTH,
    NotReadable,
    NumberText,
    TooDeep,
    holds_unread,
    loads_cut,
    loads_lenient,
    loads_unquoted,
)
from ._links import Navigator
from ._pages import more_containers_than, split_page
from ._urls import split_url

__all__ = ["Decoder", "loads_mended", "mend", "parse_json"]

T = TypeVar("T")
log = logging.getLogger("vbo_async")

Refused = Callable[[Any, DecodeError], None]
"""Told about an item of an array that could not be decoded (the parsed item, the error)."""
CONTAINERS_PER_ITEM = 16
"""JSON objects and arrays one item of a page may bring (a v8 job or organization has about 13:
itself, its policy or settings, two windows, its links; a session about 6)."""
_PAGE_CONTAINERS = 8
"""Those of the page around the items (the page object, ``results``, ``_links`` and its links)."""


DEPTH_REFUSED = "depth"
"""In the words of a body refused for nesting too deeply (orjson's ``depth limit exceeded``, in
older releases ``recursion depth exceeded``; the lenient reading's ``depth limit exceeded``)."""
_PATH_SHOWN = 120
"""Characters of a path a message quotes (one nested 512 deep is 1.5 KB of ``[0]``)."""

UTF8_BOM = b"\xef\xbb\xbf"
"""A UTF-8 byte order mark, which RFC 8259 lets a parser ignore before JSON (a .NET writer given
``Encoding.UTF8``, or a proxy re-encoding answers, writes it; Python's json module skips it)."""


def container_bound(max_items: int) -> int:
    """The JSON objects and arrays a page of ``max_items`` items may bring."""
    return CONTAINERS_PER_ITEM * max_items + _PAGE_CONTAINERS


def parse_json(
    body: bytes,
    *,
    method: str | None = None,
    url: str | None = None,
    max_items: int | None = None,
    scrub: Callable[[str], str] | None = None,
) -> Any:
    """Parse a response body, or raise `DecodeError` saying why (empty, truncated, not JSON).

    With ``max_items``, a body that could hold more JSON objects and arrays than a page of that
    many items is refused before it is parsed (a single resource or a token answer holds a few
    dozen; parsed, a body of tiny objects takes 30 times its size). A UTF-8 byte order mark
    before the JSON is skipped (`UTF8_BOM`). A body the parser refuses is parsed again `mend`-ed
    (lone surrogates and bytes not UTF-8 as U+FFFD), if that changes it, and else read leniently
    (`loads_mended`), which is logged at debug level with ``url`` passed through ``scrub`` (an
    href may quote a secret)."""
    body = body.removeprefix(UTF8_BOM)
    if not body.strip():
        raise DecodeError("the response body is empty, expected JSON", method=method, url=url)
    if max_items is not None and more_containers_than(body, container_bound(max_items)):
        raise DecodeError(
            f"the response has more JSON objects and arrays than a page of {max_items} items "
            f"can hold (max_page_items); refusing to parse it",
            method=method,
            url=url,
        )
    try:
        data, mended = loads_mended(body)
    except orjson.JSONDecodeError as exc:
        problem = f"{exc.msg} at byte {exc.pos}"
    else:
        if mended:
            shown = url if url is None or scrub is None else scrub(url)
            log.debug("%s %s: read mended, or leniently (orjson refused it)", method, shown)
        return data
    # Raised outside the handler: the parser's error keeps the whole body (its ``doc``), which may
    # echo a secret, and must not stay attached as the DecodeError's __context__.
    raise DecodeError(f"the response body is not valid JSON ({problem})", method=method, url=url)


def loads_mended(body: bytes) -> tuple[Any, bool]:
    """(``orjson.loads(body)``, False), or when orjson refuses ``body``, (its `mend`-ed copy
    parsed, True), else (that copy, or ``body`` when nothing needed mending, read by
    `loads_lenient`: raw control characters in strings, numbers no double holds, True);
    `orjson.JSONDecodeError` of the last orjson parse tried when none of them is JSON."""
    try:
        return orjson.loads(body), False
    except orjson.JSONDecodeError as exc:
        refused = _at_byte(exc)
    mended = mend(body)
    if mended is not None:
        try:
            return orjson.loads(mended), True
        except orjson.JSONDecodeError as exc:
            refused = _at_byte(exc)
    try:
        return loads_lenient(body if mended is None else mended), True
    except NotReadable as exc:
        # orjson's words (where and why), unless the lenient reading got past what orjson refused
        # (a raw tab, 1e400) to a problem further on: those words would name what is no problem.
        if exc.pos is not None and exc.pos > refused.pos:
            refused = orjson.JSONDecodeError(exc.problem, "", exc.pos)
        elif exc.deep and DEPTH_REFUSED not in refused.msg:  # orjson stopped before, at a raw tab
            refused = orjson.JSONDecodeError(exc.problem, "", refused.pos)
    raise refused  # outside the handler


def _at_byte(error: orjson.JSONDecodeError) -> orjson.JSONDecodeError:
    """``error`` placed in bytes (orjson counts the characters before where it stopped, which
    `parse_json` says as a byte: after ``"éééé"`` its 9 is byte 13), without the body it quotes."""
    at = len(error.doc[: error.pos].encode("utf-8", "surrogatepass")) if error.doc else error.pos
    return orjson.JSONDecodeError(error.msg, "", at)


_SURROGATE = re.compile(
    rb"(?<!\\)((?:\\\\)*)(\\u[dD][89a-fA-F][0-9a-fA-F]{2})(\\u[dD][c-fC-F][0-9a-fA-F]{2})?"
)
"""An escaped surrogate in a JSON string, with the escaped backslashes before it (from the start
of their run: an even run is text, so the ``ud800`` after ``\\\\`` is no escape), and the low
surrogate escaped after it, if any (a pair when the first is high). Only these are matched: a
body of other escapes (a description's ``\\n``) is scanned in C, not handed to Python one
escape at a time (64 MiB of ``\\n`` took 9 s of the event loop)."""
_MEND_CHUNK = 64 * 1024
_MEND_GROWTH = 2
"""A mended copy may be longer than its body by at most the body's length over this, or
`_MEND_CHUNK` bytes if more (each byte not UTF-8 becomes the three of U+FFFD): a body past that is
mostly not UTF-8, no text, and is refused rather than parsed as a string up to three times its
size (a page with a few legacy-encoded names grows by a few percent)."""


def mend(body: bytes) -> bytearray | None:
    """``body`` with each lone surrogate its strings escape (``"\\ud800"``, keys too) and each
    byte that is not UTF-8 (a sequence cut short, Latin-1 text, an encoded surrogate) replaced by
    U+FFFD, or None when it holds neither; run only on a body ``orjson`` refused.

    Both are what a .NET server or a proxy writes for one broken string (a name cut between the
    halves of an emoji, a field in a legacy encoding): read as U+FFFD, that string shows it and its
    neighbours are read, where refusing the body lost every item of the page, and parsing the
    escape as Python's json module does would leave a lone surrogate that no UTF-8 writer (the
    terminal, ``--json``, the exporter) can write. The mended body is parsed by orjson again, and
    what else orjson refuses there is left to `loads_lenient` (raw control characters in strings,
    numbers no double holds; NaN, nesting past 1,024 and trailing text still refused). A body that
    would grow by more than half (`_MEND_GROWTH`) is not mended."""
    escaped = _SURROGATE.sub(_replace_lone, body) if b"\\u" in body else body
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    view = memoryview(escaped)
    limit = len(body) + max(len(body) // _MEND_GROWTH, _MEND_CHUNK)
    mended = bytearray()
    for at in range(0, len(view), _MEND_CHUNK):
        mended += decoder.decode(view[at : at + _MEND_CHUNK]).encode()
        if len(mended) > limit:
            return None
    mended += decoder.decode(b"", final=True).encode()
    return None if mended == body or len(mended) > limit else mended


def _replace_lone(match: re.Match[bytes]) -> bytes:
    run, first, second = match.groups()
    if second is not None and first[3:4] in b"89abAB":
        return match.group()  # a pair: the character it names
    return run + b"\\ufffd" + (b"" if second is None else b"\\ufffd")  # a low one is lone too


class Decoder:
    """Turns parsed JSON into models for one client (its links follow through ``navigator``),
    with the fast hooks, a detailed converter and an unstructuring converter per API version,
    each built on first use."""

    def __init__(self, navigator: Navigator) -> None:
        self._navigator = navigator
        self._fast: dict[str, FastHooks] = {}
        self._wire: dict[str, cattrs.Converter] = {}
        self._detailed: dict[str, cattrs.Converter] = {}
        self._hooks: dict[tuple[str, type[Any]], Any] = {}
        self.fallbacks = 0
        """Values the fast pass refused and the detailed pass decoded (should stay 0)."""
        self.scrub: Callable[[str], str] = _unchanged
        """Removes the client's secrets from the server's values a `DecodeError` quotes (set by
        the client: a server may echo the password or a token in any field)."""

    def page(
        self,
        body: bytes,
        cls: type[T],
        dialect: Dialect,
        *,
        url: str | None = None,
        max_items: int | None = None,
        refused: Refused | None = None,
    ) -> tuple[list[T], str | None]:
        """Parse a collection body (a bare array or a page object) and structure its items:
        (items, the ``next`` href as sent or None). The collector is paused for the whole batch.
        Fields the dialect fills from the request's query (a v7 session's ``job_id`` from
        ``?jobId=``) are filled where the items lack them.

        ``max_items`` bounds what a body may make the client hold: a page of more items is a
        `DecodeError`, and so is a body that could hold more than `CONTAINERS_PER_ITEM` times as
        many JSON objects and arrays, refused before it is parsed. Below that bound a page is
        parsed before its items are counted, and parsed JSON can take 30 times its size: a page
        of a hundred thousand ``{"id":"x"}`` (1.1 MB) costs about 30 MB before it is refused at a
        ``max_items`` of 50,000 (the default), a million would be refused unparsed.

        A page nested past 1,024 levels, which no parser here reads whole, is read `loads_cut`:
        each item holding a part nested too deeply is refused (to ``refused``, else raised), the
        others are decoded; cut outside its items, the page is refused whole. A page holding
        ``NaN`` or ``Infinity`` unquoted (no JSON) is read `loads_unquoted`, its items alike."""
        if max_items is not None and more_containers_than(body, container_bound(max_items)):
            raise DecodeError(
                f"the page has more JSON objects and arrays than {max_items} items can hold "
                f"(max_page_items); refusing to parse it",
                url=url,
            )
        with _no_gc():
            error: DecodeError | None = None
            try:
                data = parse_json(body, method="GET", url=url, scrub=self.scrub)
            except DecodeError as exc:
                error = exc
                # Nested past 1,024 levels: cut, only the items nested so deep are lost; NaN
                # unquoted: only the items holding it are.
                data = _cut(body) if DEPTH_REFUSED in exc.message else _unquoted(body)
                if data is None or _cut_around_items(data):
                    raise
            items, next_href, path = split_page(data, url=url)
            if max_items is not None and len(items) > max_items:
                raise DecodeError(
                    f"the page has {len(items)} items, more than max_page_items={max_items}",
                    path=path,
                    url=url,
                )
            if error is not None:
                items = self._uncut(items, path, error, refused)
            decoded = self.many(items, cls, dialect, url=url, path=path, consume=True, refused=refused)
        return _with_query_context(decoded, cls, dialect, url), next_href

    def _uncut(self, items: list[Any], path: str, error: DecodeError, refused: Refused | None) -> list[Any]:
        """The items of a page read by `loads_cut` or `loads_unquoted` that hold nothing cut or
        unquoted; each other one is refused (handed to ``refused``, else raised) with a
        `DecodeError` naming where it nests too deeply or holds the constant (``error``: the
        page's own, whose URL it names)."""
        kept = []
        for index, item in enumerate(items):
            unread = holds_unread(item)
            if unread is None:
                kept.append(item)
                continue
            where, marker = unread
            found = f"{path}[{index}]{where[1:]}"
            shown = found if len(found) <= _PATH_SHOWN else found[:_PATH_SHOWN] + "..."
            if isinstance(marker, TooDeep):
                problem = (
                    f"it nests deeper than {CUT_DEPTH} levels at {shown} "
                    f"(the page nests past {MAX_DEPTH}, which the parser refuses)"
                )
            else:
                problem = f"it holds {marker.name} at {shown}, unquoted: no JSON number"
            refusal = DecodeError(f"cannot decode an item: {problem}", path=found, url=error.url)
            if refused is None:
                raise refusal
            refused(item, refusal)
        return kept

    def one(self, data: Any, cls: type[T], dialect: Dialect, *, url: str | None = None, path: str = "$") -> T:
        """Structure one resource."""
        try:
            return self._hook(cls, dialect)(data, cls)  # type: ignore[no-any-return]
        except Exception as exc:
            fast = exc.with_traceback(None)  # no frame kept alive (a cycle) by its traceback
        # Explained outside the handler: the fast pass's error, which quotes the server's value
        # unscrubbed, must not become the DecodeError's __context__.
        return self._explain(data, cls, dialect, fast, url=url, path=path)

    def many(
        self,
        items: Any,
        cls: type[T],
        dialect: Dialect,
        *,
        url: str | None = None,
        path: str = "$",
        consume: bool = False,
        refused: Refused | None = None,
    ) -> list[T]:
        """Structure a JSON array of resources, with the collector paused (``cls`` `object`:
        the items as sent, the raw JSON of a collection link without a model).

        ``consume`` releases each parsed item as soon as it is structured (the list is left full of
        ``None``), so a large answer never holds all its dicts and all its models at once. With
        ``refused``, an item that cannot be decoded is handed to it (the parsed item and its
        `DecodeError`) and left out, instead of failing the whole array: a sweep files it under
        the tenant it belongs to.
        """
        if items.__class__ is not list:
            raise DecodeError(
                f"expected an array of {cls.__name__}, got {type(items).__name__}", path=path, url=url
            )
        hook = self._hook(cls, dialect)
        decoded: list[T] = []
        append = decoded.append
        with _no_gc():
            for index in range(len(items)):
                item = items[index]
                if consume:
                    items[index] = None
                try:
                    append(hook(item, cls))
                    continue
                except Exception as exc:  # the fast pass says no; the detailed pass decides and explains
                    fast = exc.with_traceback(None)
                try:  # outside the handler, as in `one`
                    append(self._explain(item, cls, dialect, fast, url=url, path=f"{path}[{index}]"))
                except DecodeError as error:
                    if refused is None:
                        raise
                    refused(item, error.with_traceback(None))  # kept: no frame holding the page
        return decoded

    def unstructure(self, model: Any, dialect: Dialect) -> Any:
        """``dialect``'s wire JSON of a model, a list, tuple or dict of models, or anything JSON
        already (`to_wire`); `ConfigError` naming anything else, or data nested more deeply than
        Python's recursion goes."""
        converter = self._wire.get(dialect.version)
        if converter is None:
            converter = self._wire[dialect.version] = make_converter(self._navigator, dialect)
        try:
            return _to_wire(model, converter.unstructure, "$")
        except RecursionError:
            error = ConfigError("to_wire() cannot convert data nested too deeply")
        raise error  # outside the handler: no RecursionError as its context

    def _hook(self, cls: type[Any], dialect: Dialect) -> Any:
        key = (dialect.version, cls)
        hook = self._hooks.get(key)
        if hook is None and cls is object:  # a collection of raw JSON (an organization's users)
            hook = self._hooks[key] = _as_sent
        if hook is None:
            hooks = self._fast.get(dialect.version)
            if hooks is None:
                hooks = self._fast[dialect.version] = FastHooks(self._navigator, dialect)
            hook = self._hooks[key] = hooks.get(cls)
        return hook

    def _explain(
        self, data: Any, cls: type[T], dialect: Dialect, fast: Exception, *, url: str | None, path: str
    ) -> T:
        detailed = self._detailed.get(dialect.version)
        if detailed is None:
            detailed = self._detailed[dialect.version] = make_converter(
                self._navigator, dialect, detailed=True
            )
        try:
            result: T = detailed.structure(data, cls)
        except (ClassValidationError, IterableValidationError, WireValueError) as exc:
            problems = list(_leaves(exc, path, cls, dialect, self.scrub, data))
        except Exception as exc:
            problems = [(path, self.scrub(f"{type(exc).__name__}: {exc}"))]
        else:
            self.fallbacks += 1
            log.debug(
                "the fast decoding pass refused a %s at %s that the detailed pass accepted (%s: %s)",
                cls.__name__,
                path,
                type(fast).__name__,
                fast.shown(self.scrub) if isinstance(fast, WireValueError) else self.scrub(str(fast)),
            )
            return result
        where, what = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        # The URL may be a next link quoting a secret (a refused item's error is kept, not raised).
        shown = url if url is None else self.scrub(url)
        raise DecodeError(f"cannot decode {cls.__name__}: {what} at {where}{more}", path=where, url=shown)


def _cut(body: bytes) -> Any | None:
    """`loads_cut` of a page ``body`` (its byte order mark skipped, `mend`-ed first if needed)."""
    body = body.removeprefix(UTF8_BOM)
    if body.count(b"[") + body.count(b"{") <= MAX_DEPTH:
        return None  # cannot nest past the limit: refused for another reason
    mended = mend(body)
    return loads_cut(body if mended is None else mended)


def _unquoted(body: bytes) -> Any | None:
    """`loads_unquoted` of a page ``body`` (its byte order mark skipped, `mend`-ed first if needed)."""
    body = body.removeprefix(UTF8_BOM)
    mended = mend(body)
    return loads_unquoted(body if mended is None else mended)


def _cut_around_items(data: Any) -> bool:
    """Whether a page `loads_cut` or `loads_unquoted` read was cut, or holds a constant, outside
    its items (its ``_links``, say): the page then fails whole, as its next link may be what was
    cut."""
    if data.__class__ is not dict:
        return False  # a bare array: every value in it is in an item
    return any(holds_unread(value) is not None for key, value in data.items() if key != "results")


def _with_query_context(items: list[T], cls: type[T], dialect: Dialect, url: str | None) -> list[T]:
    """``items`` with the fields ``dialect.query_context`` names filled from ``url``'s query
    (parameter names matched case-insensitively), and those ``dialect.path_context`` names from
    its path, where an item has ``None``."""
    fields = dialect.query_context.get(cls)
    routes = dialect.path_context.get(cls)
    if not (fields or routes) or not items or url is None:
        return items
    # Nearly every page has every such field already (a v8 job's organizationId, a v1 job's
    # organization link): that is found without a Python-level step per item, and the URL is
    # then not parsed at all.
    names = {*(fields or ()), *(routes or ())}
    held: list[Any] = list(map(operator.attrgetter(*names), items))
    if len(names) > 1:
        held = [value for values in held for value in values]
    if None not in held:
        return items
    try:
        parts = split_url(url)
    except ValueError:
        return items
    values: dict[str, str] = {}
    if fields:
        query = {key.lower(): value for key, value in parse_qsl(parts.query)}
        values = {name: query[param.lower()] for name, param in fields.items() if query.get(param.lower())}
    for name, route in (routes or {}).items():
        found = route.value_in(parts.path)
        if found and name not in values:
            values[name] = found
    if not values:
        return items
    filled = []
    for item in items:
        missing = {name: value for name, value in values.items() if getattr(item, name) is None}
        filled.append(attrs.evolve(item, **missing) if missing else item)  # type: ignore[misc]
    return filled


class _no_gc:
    """Pause the cyclic garbage collector while a batch is structured.

    Structuring allocates several tracked objects per item while the parsed JSON is alive, so
    the collector would repeatedly traverse every list and dict of the batch (a third of the
    decoding time, measured); nothing structured here can form a cycle worth collecting. The
    previous state is restored, also when the collector was already off. (A class, not a
    generator-based context manager: entered twice per page, that cost a few microseconds.)
    """

    __slots__ = ("_paused",)

    def __enter__(self) -> None:
        self._paused = gc.isenabled()
        if self._paused:
            gc.disable()

    def __exit__(self, *_: object) -> None:
        if self._paused:
            gc.enable()


def _leaves(
    exc: BaseException,
    path: str,
    cls: type[Any],
    dialect: Dialect,
    scrub: Callable[[str], str],
    data: Any = None,
) -> Iterator[tuple[str, str]]:
    """(wire path, message) for each leaf error of a cattrs error tree, the server's values in it
    passed through ``scrub``. ``data`` is the value the tree is about: a field read under several
    spellings is named by the one it holds."""
    if isinstance(exc, ClassValidationError):
        for sub in exc.exceptions:
            sub_path, sub_cls, sub_data = path, cls, None
            for note in getattr(sub, "__notes__", ()):
                if isinstance(note, AttributeValidationNote):
                    key = _sent_name(exc.cl, note.name, dialect, data)
                    sub_path, sub_cls = f"{path}.{key}", _model_of(note.type)
                    sub_data = data.get(key) if data.__class__ is dict else None
            yield from _leaves(sub, sub_path, sub_cls, dialect, scrub, sub_data)
    elif isinstance(exc, IterableValidationError):
        for sub in exc.exceptions:
            sub_path, sub_data = path, None
            for note in getattr(sub, "__notes__", ()):
                if isinstance(note, IterableValidationNote):
                    sub_path = f"{path}[{note.index}]"
                    index = note.index
                    if data.__class__ is list and isinstance(index, int) and 0 <= index < len(data):
                        sub_data = data[index]
            yield from _leaves(sub, sub_path, _model_of(exc.cl), dialect, scrub, sub_data)
    elif isinstance(exc, KeyError):
        yield path, "required field missing"
    elif isinstance(exc, WireValueError):
        yield path + exc.suffix, exc.shown(scrub)
    else:
        yield path, scrub(f"{type(exc).__name__}: {exc}")


def _sent_name(cls: type[Any], attribute: str, dialect: Dialect, data: Any) -> str:
    """The wire name of ``attribute`` that ``data`` holds (the first spelling read), else the
    one ``dialect`` writes."""
    if data.__class__ is dict and attrs.has(cls):
        for spelling in dialect.wire_names(cls).get(attribute, ()):
            if spelling in data:
                return spelling
    return wire_name(cls, attribute, dialect)


def _model_of(tp: Any) -> type[Any]:
    return tp if isinstance(tp, type) else object


def _unchanged(text: str) -> str:
    return text


def _as_sent(value: Any, _: object = None) -> Any:
    return value


_JSON_SCALARS = (str, int, float, bool)
"""The classes of JSON values `to_wire` gives back as they are (``None`` too)."""


def _to_wire(value: Any, write: Callable[[Any], Any], path: str) -> Any:
    """``value`` as wire JSON: a model (or link, open enum, timestamp: `WIRE_TYPES`) by ``write``,
    lists and tuples as lists, dicts item by item (keys JSON values), JSON values as they are.
    Anything else is a `ConfigError` naming its type and where it is (``$.jobs[1]``), as
    `to_jsonable` says it: it came back unchanged, for ``json.dumps`` to refuse far from here."""
    if value is None or value.__class__ in _JSON_SCALARS:
        if value.__class__ is float and not math.isfinite(value):
            raise _not_finite(value, path)
        return value
    if value.__class__ is NumberText:  # raw JSON's number no double holds, read as its text
        return str(value)
    if isinstance(value, WIRE_TYPES):
        try:
            return write(value)
        except Unwritable as exc:
            where = path + "".join(exc.keys)
            raise ConfigError(f"to_wire() cannot write {exc.what} (at {where})") from None
    if isinstance(value, list | tuple):
        return [_to_wire(item, write, f"{path}[{index}]") for index, item in enumerate(value)]
    if isinstance(value, dict):
        wire = {}
        names: set[str] = set()
        for key, item in value.items():
            name = _key_text(key, path)
            if name in names:
                raise ConfigError(f"to_wire() would write two keys as {name!r} (at {path})")
            names.add(name)
            wire[key] = _to_wire(item, write, f"{path}.{key}")
        return wire
    raise ConfigError(f"to_wire() cannot write {with_article(type(value).__name__)} (at {path})")


def _key_text(key: Any, path: str) -> str:
    """``key`` as JSON's key (`json_key`); `ConfigError` for one it cannot write."""
    try:
        return json_key(key)
    except Unwritable as exc:
        what = exc.what
    raise ConfigError(f"to_wire() cannot write {what} (at {path})")


def _not_finite(value: float, path: str) -> ConfigError:
    """The error of a float JSON has no number for: ``json.dumps`` writes ``NaN``, which no JSON
    parser reads (`from_wire` included), as `to_jsonable` says it."""
    return ConfigError(f"to_wire() cannot write {value!r}, which JSON has no number for (at {path})")
