"""The cattrs converter that turns one API version's wire JSON into the models, tolerating real servers.

Configured the way cattrs' ``preconf`` modules are: `configure_converter` registers every hook for
one `Dialect` and `make_converter` returns a fresh converter; each client owns its own, one per
API version it meets (the global converter is never used). The models, nested models and enums
are found from `_models.RESOURCES`; wire names come from the dialect, never from a list here.

The client's hot path does not go through a converter: `FastHooks` binds, per client and version
and only for the types asked for, the generated functions whose code `_Plans` makes once per
process and version (structure functions, ``*Links`` functions, the finisher of derived values,
the shared-policy cache). A converter is built for the detailed pass that explains a failure, and
for unstructuring (``to_wire``); a non-detailed one structures through `FastHooks` as well.

Tolerance: booleans as ``"true"``/``"false"`` strings, numbers as numeric strings, timestamps with
7 fractional digits, a ``Z`` or ``z``, an offset or no zone (read as UTC, marked `UNZONED`),
``HH:MM[:SS]`` times, ``null`` anywhere but ``id``, unknown keys ignored, open enums. Hooks are
written for the hot path: a backup window of real booleans becomes a tuple in a few C-level
calls, and jobs with the same wire schedule share one `SchedulePolicy`.
"""

from __future__ import annotations

import datetime as dt
import json
import marshal
import re
import types
import typing
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar
from urllib.parse import unquote

import attrs
import cattrs
from cattrs.errors import IterableValidationError, IterableValidationNote
from cattrs.gen import make_dict_structure_fn, override

from . import _models as m
from ._checks import with_article
from ._dialects import Dialect, IdFromLink, LinkFromId, Route
from ._enums import OpenEnum
from ._fastpath import (
    CACHED_HREF_LENGTH,
    FastPathUnsupported,
    LinkSpec,
    Plan,
    building_class,
    check_rules,
    fill_field,
    fill_namespace,
    known_hooks,
    links_plan,
    new_link,
    plan,
    read_expression,
    structure_plan,
)
from ._kept import Kept
from ._lenient import NumberText
from ._links import Link, Navigator, ThroughLink
from ._urls import split_url
from ._zones import UNZONED, as_sent

__all__ = [
    "ENUMS",
    "LINKS",
    "MODELS",
    "FastHooks",
    "Unwritable",
    "WireValueError",
    "configure_converter",
    "fast_path_rules_hold",
    "json_key",
    "last_segment",
    "make_converter",
    "raw_reader",
    "wire_name",
]

T = TypeVar("T")

_POLICY_CACHE_SIZE = 4096
"""The most schedule policies a client's cache keeps (a `Kept`: those in use stay)."""
_POLICY_KEY_CHARACTERS = 1024
"""The most characters of a policy's strings plus bytes of its windows' flags (one per hour) the
cache keeps per policy: a few names and times take about 50, a real window 168, and v6+ policies
have two. A policy over it is decoded, not kept (a hostile server's window of a million flags
would otherwise stay a megabyte per entry)."""
_UNIFORM_WINDOWS = 64
_LARGEST_UNIFORM = 4096
_ABSENT = object()
_WINDOW_OBJECT = object()
_marshal = marshal.dumps


# --- the registry, walked from the resources -------------------------------------------------------


def _members(tp: Any) -> Iterator[Any]:
    """The types a field annotation is made of (union members, tuple items, link targets)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        for member in typing.get_args(tp):
            yield from _members(member)
    elif origin is tuple:
        yield from _members(typing.get_args(tp)[0])
    elif isinstance(origin, type) and issubclass(origin, Link):
        (target,) = typing.get_args(tp)
        yield from _members(target)
    elif origin is list:
        yield from _members(typing.get_args(tp)[0])
    elif tp is not type(None):
        yield tp


def _walk(roots: tuple[type, ...]) -> tuple[tuple[type, ...], tuple[type[OpenEnum], ...]]:
    """Every attrs model reachable from ``roots`` (a nested model before the models holding it)
    and every open enum their fields use."""
    order: list[type] = []
    enums: dict[type[OpenEnum], None] = {}
    seen: set[type] = set()

    def visit(cls: type) -> None:
        seen.add(cls)
        for field in attrs.fields(cls):
            for member in _members(field.type):
                if attrs.has(member) and member not in seen:
                    visit(member)
                elif isinstance(member, type) and issubclass(member, OpenEnum):
                    enums[member] = None
        order.append(cls)

    for root in roots:
        if root not in seen:
            visit(root)
    return tuple(order), tuple(enums)


def _is_links_class(cls: type) -> bool:
    fields = attrs.fields(cls)
    return bool(fields) and all(_link_type(field.type) is not None for field in fields)


def _link_type(tp: Any) -> Any:
    """``Link[X]`` of an ``Link[X] | None`` annotation, or None when it is not a link."""
    for member in typing.get_args(tp) or (tp,):
        origin = typing.get_origin(member)
        if isinstance(origin, type) and issubclass(origin, Link):
            return member
    return None


_ALL, ENUMS = _walk(m.RESOURCES)
LINKS: tuple[type, ...] = tuple(cls for cls in _ALL if _is_links_class(cls))
"""The ``*Links`` classes (every field a link)."""
MODELS: tuple[type, ...] = tuple(cls for cls in _ALL if cls not in LINKS)
"""Every other model, a nested one before the models that hold it."""
_BUILDING: dict[type, type] = {cls: building_class(cls) for cls in _ALL}
"""The class each model is filled as (read-only; see `building_class`)."""


def wire_name(cls: type[Any], attribute: str, dialect: Dialect) -> str:
    """The wire name ``dialect`` writes for ``attribute`` of ``cls`` (the attribute itself when
    the class or version has none)."""
    if not attrs.has(cls):
        return attribute
    spellings = dialect.wire_names(cls).get(attribute)
    return spellings[0] if spellings else attribute


_NO_VALUE: Any = object()
_SHOWN = 40
"""Characters of a refused value's repr a message quotes."""


class Unwritable(Exception):
    """A value JSON cannot hold met while writing a model's wire JSON: a float JSON has no number
    for (NaN, an infinity), or a value of a kind no wire field holds (a set, a date, bytes in a
    model built by hand). ``what`` says it (``"nan, which JSON has no number for"``, ``"a set"``);
    ``keys`` are the steps leading to it, outermost first (``.name``, ``[0]``: `Decoder.unstructure`
    says it as a `ConfigError` naming that place)."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what
        self.keys: list[str] = []


def _finite(value: float) -> float:
    if value - value != 0.0:  # NaN or an infinity (inf - inf is NaN): faster than math.isfinite
        raise Unwritable(f"{value!r}, which JSON has no number for")
    return value


_WRITTEN_AS_THEY_ARE = (str, int, float, list, tuple, dict, type(None))
"""What the wire converter writes by cattrs' own rules (JSON values, and lists, tuples and dicts
of what it writes); models, links, open enums and times have hooks of their own."""


def _unwritable_kind(cls: Any) -> bool:
    """Whether ``cls`` (a value's class, as cattrs dispatches on it) has no wire JSON."""
    return isinstance(cls, type) and not issubclass(cls, _WRITTEN_AS_THEY_ARE)


def _refuse_kind(value: Any) -> Any:
    raise Unwritable(with_article(type(value).__name__))


_KEY_TYPES = frozenset({str, int, float, bool, type(None)})


def json_key(key: Any) -> str:
    """``key`` as JSON's key, as ``json.dumps`` writes it: ``1`` and ``"1"`` (or ``True`` and
    ``"true"``) are one key; `Unwritable` for one it cannot write (not a JSON value, NaN, an int
    of more digits than Python writes)."""
    if isinstance(key, str) and key.__class__ is str:
        return key
    if key.__class__ not in _KEY_TYPES:
        raise Unwritable(f"{with_article(type(key).__name__)} as a key")
    if key.__class__ is float and key - key != 0.0:
        raise Unwritable(f"{key!r}, which JSON has no number for")
    try:
        text: str = json.dumps(key)
    except ValueError:  # an int of more digits than Python writes (sys.get_int_max_str_digits)
        raise Unwritable("an int that long as a key") from None
    return text


def _wire_items(
    converter: cattrs.Converter,
) -> tuple[Callable[[Any], list[Any]], Callable[[Any], dict[Any, Any]]]:
    """The hooks writing a list (or tuple) and a dict held in a model built by hand (no model
    field is a dict): item by item, keys as `json_key` allows them, each written once, so that
    what ``json.dumps`` would refuse (or write twice) is an `Unwritable` naming its place."""

    def items(value: Any) -> list[Any]:
        written = []
        for index, item in enumerate(value):
            try:
                written.append(converter.unstructure(item))
            except Unwritable as exc:
                exc.keys.insert(0, f"[{index}]")
                raise
        return written

    def mapping(value: Any) -> dict[Any, Any]:
        written: dict[Any, Any] = {}
        names: set[str] = set()
        for key, item in value.items():
            name = json_key(key)
            if name in names:
                raise Unwritable(f"two keys as {name!r}")
            names.add(name)
            try:
                written[key] = converter.unstructure(item)
            except Unwritable as exc:
                exc.keys.insert(0, f".{key}")
                raise
        return written

    return items, mapping


class WireValueError(ValueError):
    """A wire value of the wrong kind; only ever seen wrapped in `DecodeError`. ``suffix`` locates
    it inside the value the hook was given (``[3]`` for the fourth flag of a window).

    The refused ``value`` is quoted after ``message``, cut to `_SHOWN` characters: `shown` scrubs
    it whole before cutting it, so a secret the server echoed there is found even when the cut
    would fall inside it. A value nested too deeply for ``repr`` is not quoted."""

    def __init__(self, message: str, *, value: Any = _NO_VALUE, suffix: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.value = value
        self.suffix = suffix

    def __str__(self) -> str:
        return self.shown()

    def shown(self, scrub: Callable[[str], str] | None = None) -> str:
        """The message with the value quoted, scrubbed by ``scrub`` (if given) before the cut."""
        if self.value is _NO_VALUE or self.value is None:  # a null is said by the message ("got null")
            return self.message
        value = self.value
        try:
            if scrub is None:
                return f"{self.message} {value!r:.{_SHOWN}}"
            quoted = scrub(repr(scrub(value) if value.__class__ is str else value))
        except RecursionError:  # the parser allows 1024 levels of nesting, repr() fewer
            return f"{self.message} (nested too deeply to quote)"
        return f"{self.message} {quoted[:_SHOWN]}"


# --- primitive hooks -----------------------------------------------------------------------------


def _kind(value: object) -> str:
    if value.__class__ is NumberText:
        return "a number no double holds,"
    return type(value).__name__ if value is not None else "null"


_INTEGER = re.compile(r"[+-]?[0-9]{1,19}")
_EXACT_FLOAT_INT = 2**53


def _str(value: Any, _: object = None) -> str:
    if value.__class__ is str:
        return value
    if value.__class__ is NumberText:
        return str(value)  # a number no double holds, as written
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value.__class__ is float and value.is_integer() and abs(value) >= _EXACT_FLOAT_INT:
            # A rounded integer (orjson reads >64-bit integers as floats): its text is another number.
            raise WireValueError("expected a string, got a number too large to read exactly:", value=value)
        return str(value)
    raise WireValueError(f"expected a string, got {_kind(value)}", value=value)


def _int(value: Any, _: object = None) -> int:
    if value.__class__ is int:
        return value
    if value.__class__ is str:
        text = value.strip()
        if _INTEGER.fullmatch(text):  # ASCII digits only, and never thousands of them
            return int(text)
    elif value.__class__ is float and value.is_integer() and abs(value) < _EXACT_FLOAT_INT:
        # From 2**53 on a float may be a rounded integer (orjson reads >64-bit integers as floats,
        # and 9007199254740993.0 reads as 2**53 itself).
        return int(value)
    raise WireValueError(f"expected an integer, got {_kind(value)}", value=value)


_INFINITY = float("inf")
_NUMBER = re.compile(r"[+-]?(?:[0-9]{1,19}(?:\.[0-9]{0,19})?|\.[0-9]{1,19})(?:[eE][+-]?[0-9]{1,3})?")


def _float(value: Any, _: object = None) -> float:
    if value.__class__ is float:
        number = value
    elif value.__class__ is int:
        return float(value)
    elif value.__class__ is str and _NUMBER.fullmatch(value.strip()):
        number = float(value)  # "1e999" is inf, refused as an infinite number is
    elif value.__class__ is NumberText:  # a number no double holds (1e400), read as its text
        raise WireValueError("expected a finite number, got", value=value)
    else:
        raise WireValueError(f"expected a number, got {_kind(value)}", value=value)
    if number != number or number in (_INFINITY, -_INFINITY):
        raise WireValueError("expected a finite number, got", value=value)
    return number


_TRUE = frozenset({"true", "True", "TRUE", "1"})
_FALSE = frozenset({"false", "False", "FALSE", "0"})


def _bool(value: Any, _: object = None) -> bool:
    if value is True or value is False:
        return value
    if value.__class__ is str:
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
        folded = value.strip().lower()
        if folded in ("true", "false"):
            return folded == "true"
    elif (value.__class__ is int or value.__class__ is float) and value in (0, 1):
        return value == 1
    raise WireValueError(f"expected a boolean, got {_kind(value)}", value=value)


_FRACTION = re.compile(r"(\.\d{6})\d+")


def _normalise(text: str) -> str:
    """What ``fromisoformat`` may refuse: surrounding space, more than 6 fractional digits, ``z``."""
    text = _FRACTION.sub(r"\1", text.strip())
    return text[:-1] + "Z" if text.endswith("z") else text


def _datetime(value: Any, _: object = None) -> dt.datetime:
    if value.__class__ is not str:
        raise WireValueError(f"expected a timestamp string, got {_kind(value)}", value=value)
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        try:
            parsed = dt.datetime.fromisoformat(_normalise(value))
        except ValueError:
            raise WireValueError("expected an ISO 8601 timestamp, got", value=value) from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UNZONED)  # read as UTC, marked: the server's zone is unknown
    return parsed


def _time(value: Any, _: object = None) -> dt.time:
    if value.__class__ is not str:
        raise WireValueError(f"expected a time of day string, got {_kind(value)}", value=value)
    try:
        return dt.time.fromisoformat(value)
    except ValueError:
        try:
            return dt.time.fromisoformat(_normalise(value))
        except ValueError:
            raise WireValueError("expected a time of day HH:MM[:SS], got", value=value) from None


def _optional(hook: Callable[[Any, Any], T]) -> Callable[[Any, Any], T | None]:
    def structure(value: Any, type_: Any = None) -> T | None:
        return None if value is None else hook(value, type_)

    return structure


def _enum_hook(cls: type[OpenEnum], *, nullable: bool = True) -> Callable[[Any, Any], OpenEnum | None]:
    """``cls`` from its wire string; ``null`` is None where ``nullable`` (a field), refused where
    not (an item of a list: a ``tuple[ProxyRole, ...]`` holds roles, never None)."""
    members = cls._value2member_map_

    def structure(value: Any, _: object = None) -> OpenEnum | None:
        if value.__class__ is str:
            member = members.get(value)
            return member if member is not None else cls(value)  # type: ignore[return-value]
        if value is None and nullable:
            return None
        raise WireValueError(f"expected a {cls.__name__} string, got {_kind(value)}", value=value)

    return structure


_MARSHAL_HEADER = 5
"""``marshal.dumps(list, 2)`` writes ``[`` and the length in 4 bytes, then each item."""
_FLAG_BYTES = b"TF"
"""``marshal`` writes ``True`` as ``T`` and ``False`` as ``F``, the bytes `HourFlags` keeps."""


class _Uniform(typing.NamedTuple):
    """The lists a uniform window of one size compares equal to, and its shared flags."""

    true_list: list[bool]
    false_list: list[bool]
    true_flags: m.HourFlags
    false_flags: m.HourFlags


class _Windows:
    """Backup windows (lists of 168 flags) as `HourFlags`, cheaply; one reader per client and
    API version (it keeps the shared flags of uniform windows).

    Uniform windows (all true, all false) are recognised with one list comparison against a list
    of that many ``True`` (or ``False``): ``==`` compares identical entries by identity and stops
    at the first difference, so a window that is not uniform costs a few comparisons here. Such
    windows share one `HourFlags` (``1`` and ``1.0`` compare equal to ``True`` and read as
    ``True`` all the same). Any other window is written by ``marshal`` (C, about 60 instructions
    a flag), which writes ``True`` as the byte ``T``, ``False`` as ``F`` and anything else as
    more than one byte or another byte: when what follows its 5-byte header is one ``T`` or ``F``
    per entry, every entry is ``True`` or ``False`` itself, and those bytes are the flags'. This
    costs less than half of what an orjson text checked byte by byte and a tuple of 168 flags
    did, and leaves the garbage collector one small object instead of 168 references. Anything
    else (``"true"``, ``1``, ``null``...) goes through `_flags`, which converts what it can and
    names the first bad entry.

    `key` is the same reading without building anything, for the schedule-policy cache: the
    bytes a window's flags would have (not yet checked), which `flags_of` turns into the flags.
    """

    def __init__(self) -> None:
        self._uniform: dict[int, _Uniform] = {}

    def structure(self, value: Any, _: object = None) -> m.HourFlags:
        if value.__class__ is not list:
            if value is None:
                return (self._uniform.get(0) or self._uniform_of(0)).true_flags
            raise WireValueError(f"expected an array of booleans, got {_kind(value)}")
        data = self.key(value)
        return _flags(value) if data is None else self.flags_of(data, value)

    def key(self, value: list[Any]) -> bytes | None:
        """The bytes of the flags `structure` reads from the list ``value`` without `_flags` (not
        yet checked: `flags_of` does that), or None when it needs `_flags`. Uniform windows give
        their shared flags' bytes."""
        size = len(value)
        if size <= _LARGEST_UNIFORM:
            uniform = self._uniform.get(size) or self._uniform_of(size)
            if value == uniform.true_list:
                return uniform.true_flags._bytes
            if value == uniform.false_list:
                return uniform.false_flags._bytes
        try:
            written = _marshal(value, 2)
        except ValueError:  # something marshal cannot write: certainly not all booleans
            return None
        if len(written) != size + _MARSHAL_HEADER:
            return None
        return written[_MARSHAL_HEADER:]

    def flags_of(self, data: bytes, value: list[Any]) -> m.HourFlags:
        """The flags whose bytes `key` gave for ``value``: the shared flags of a uniform window,
        new ones when the bytes are all ``T`` or ``F``, else what `_flags` reads (or its error)."""
        uniform = self._uniform.get(len(data))
        if uniform is not None:
            if data is uniform.true_flags._bytes:
                return uniform.true_flags
            if data is uniform.false_flags._bytes:
                return uniform.false_flags
        if data.translate(None, _FLAG_BYTES):  # one byte per entry, but not all booleans (None...)
            return _flags(value)
        return m.flags_from_bytes(data)

    def _uniform_of(self, size: int) -> _Uniform:
        made = _Uniform(
            [True] * size,
            [False] * size,
            m.flags_from_bytes(b"T" * size),
            m.flags_from_bytes(b"F" * size),
        )
        if len(self._uniform) < _UNIFORM_WINDOWS:
            self._uniform[size] = made
        return made


def _flags(values: list[Any]) -> m.HourFlags:
    """``values`` read flag by flag with the boolean hook (the first bad one named)."""
    flags = []
    for index, value in enumerate(values):
        try:
            flags.append(_bool(value))
        except WireValueError as exc:
            raise WireValueError(exc.message, value=exc.value, suffix=f"[{index}]") from None
    return m.HourFlags(flags)


def _tuple_of(name: str, item: Callable[[Any, Any], Any], cls: Any) -> Callable[[Any, Any], tuple[Any, ...]]:
    """A JSON array as a tuple of ``item`` results; anything but an array is an error (a string or
    an object must not be iterated into an empty or nonsense tuple)."""

    def structure(value: Any, _: object = None) -> tuple[Any, ...]:
        if value.__class__ is not list:
            raise WireValueError(f"expected an array of {name}, got {_kind(value)}")
        items = []
        for index, element in enumerate(value):
            try:
                items.append(item(element, cls))
            except Exception as exc:
                exc.add_note(IterableValidationNote(f"Structuring @ index {index}", index, cls))
                raise IterableValidationError(f"while structuring {name} items", [exc], cls) from None
        return tuple(items)

    return structure


# --- links and derived values ----------------------------------------------------------------------


def _link_specs(cls: type[Any], dialect: Dialect) -> list[LinkSpec]:
    names = dialect.wire_names(cls)
    specs = []
    for field in attrs.fields(cls):
        link_type = _link_type(field.type)
        (target,) = typing.get_args(link_type)
        specs.append(
            LinkSpec(
                alias=field.alias,
                spellings=names[field.name],
                link_class=typing.get_origin(link_type),
                target=None if target is object else target,
            )
        )
    return specs


def _link_error(key: str, value: Any) -> Exception:
    return WireValueError(f"expected a {key} object, got {_kind(value)}")


def last_segment(href: str) -> str | None:
    """The last non-empty path segment of an href, percent-decoded; None when there is none."""
    try:
        path = split_url(href).path
    except ValueError:
        return None
    segment = path.rstrip("/").rpartition("/")[2]
    return unquote(segment) or None


def raw_reader(cls: type[Any], field: str, dialect: Dialect) -> Callable[[Any], str | None]:
    """A function reading ``field`` of a ``cls`` from its parsed wire JSON, before (or instead of)
    decoding it: the field's wire spellings in order, then the link an `IdFromLink` derivation
    reads it from. None for anything unreadable; it never raises. A sweep uses it to file an item
    that cannot be decoded under the tenant it names."""
    spellings = dialect.wire_names(cls)[field]
    derived = [d.relation for d in dialect.derivations(cls) if isinstance(d, IdFromLink) and d.field == field]
    links_cls: Any = attrs.fields_dict(cls)["links"].type
    link_names = dialect.wire_names(links_cls) if derived else {}
    link_keys = [key for relation in derived for key in link_names[relation]]
    links_keys = dialect.wire_names(cls).get("links", ("_links",))

    def read(item: Any) -> str | None:
        if item.__class__ is not dict:
            return None
        for key in spellings:
            value = item.get(key)
            if value.__class__ is str and value:
                return value
        for links_key in links_keys:
            links = item.get(links_key)
            if links.__class__ is dict:
                for key in link_keys:
                    entry = links.get(key)
                    href = entry.get("href") if entry.__class__ is dict else None
                    if href.__class__ is str:
                        return last_segment(href)
        return None

    return read


def _reference_finisher(
    cls: type[Any], dialect: Dialect, navigator: Navigator
) -> Callable[[Any], None] | None:
    """The step filling ``cls``'s derived values (`IdFromLink`, `LinkFromId`, `LinkThrough`) in a
    building instance, written plainly: the detailed pass runs it, and it is the reference the
    fast pass's generated `_finish_plan` is tested against. None when the dialect derives nothing
    for ``cls``."""
    derivations = dialect.derivations(cls)
    if not derivations:
        return None
    ids = [(d.field, d.relation) for d in derivations if isinstance(d, IdFromLink)]
    link_steps = [d for d in derivations if not isinstance(d, IdFromLink)]
    links_cls: Any = attrs.fields_dict(cls)["links"].type
    link_fields = [field.name for field in attrs.fields(links_cls)]
    specs = dict(zip(link_fields, _link_specs(links_cls, dialect), strict=True))
    building_links = _BUILDING[links_cls]

    def finish(r: Any) -> None:
        links = r.links
        for field, relation in ids:
            if getattr(r, field) is None:
                link = getattr(links, relation)
                if link is not None:
                    setattr(r, field, last_segment(link.href))
        if not link_steps:
            return
        changed: Any = object.__new__(building_links)
        for name in link_fields:
            setattr(changed, name, getattr(links, name))
        for step in link_steps:
            spec = specs[step.relation]
            if isinstance(step, LinkFromId):
                # None from an empty id: the link would ask for the listing its id filters, unfiltered.
                href = f"/{dialect.version}/{step.route.render(id=r.id)}"
                value: Any = spec.link_class(href, step.relation, navigator, spec.target) if r.id else None
            else:
                via = getattr(links, step.via)
                value = None if via is None else ThroughLink(via, step.then, step.relation, spec.target)
            setattr(changed, step.relation, value)
        changed.__class__ = links_cls
        r.links = changed

    return finish


_UNQUOTED = re.compile(r"[A-Za-z0-9_.~-]+")
"""Ids `urllib.parse.quote` leaves as they are (with ``safe=""``): a route renders them verbatim."""
_ID_MARKER = "vbo0async0id0marker"


def _href_parts(version: str, route: Route) -> tuple[str, ...] | None:
    """The pieces ``/{version}/`` + ``route.render(id=i)`` is made of around an unquoted ``i``
    (``i.join(parts)``), or None when the route does not render that way (then the fast pass
    renders it as the reference does)."""
    parts = tuple(f"/{version}/{route.render(id=_ID_MARKER)}".split(_ID_MARKER))
    probe = "Probe-1.2_3~x"
    if len(parts) < 2 or probe.join(parts) != f"/{version}/{route.render(id=probe)}":
        return None
    return parts


def _finish_plan(cls: type[Any], dialect: Dialect) -> Plan | None:
    """`_reference_finisher` as generated code, for the fast pass (None when the dialect derives
    nothing for ``cls``).

    The same steps, without the generic ``getattr``/``setattr`` per link field: the links object
    is copied slot by slot, an id-derived href is joined from pre-rendered pieces when the id
    needs no quoting (`_UNQUOTED`, else the route renders it), the `ThroughLink` of a shared
    ``via`` link (a job's repository) is made once per ``via`` and shared, as the links to shared
    resources are, and an id read from a link's last path segment is remembered per href (a v1
    job's organization and repository ids: ``urlsplit`` and ``unquote`` once per resource, not
    per job). A property test compares both finishers on every dialect.
    """
    derivations = dialect.derivations(cls)
    if not derivations:
        return None
    links_cls: Any = attrs.fields_dict(cls)["links"].type
    link_fields = [field.name for field in attrs.fields(links_cls)]
    specs = dict(zip(link_fields, _link_specs(links_cls, dialect), strict=True))
    namespace: dict[str, Any] = {
        "__new": object.__new__,
        "__building_links": _BUILDING[links_cls],
        "__links_cls": links_cls,
        "__segment": _segment,
        "__missing": _ABSENT,
        "__unquoted": _UNQUOTED.fullmatch,
        "__through": _through,
    }
    caches: list[str] = []
    lines = ["def finish(r):", "    links = r.links"]
    derived: dict[str, str] = {}
    ids_first = sorted(enumerate(derivations), key=lambda pair: not isinstance(pair[1], IdFromLink))
    for index, step in ids_first:  # as the reference: every id, then the links in order
        if isinstance(step, IdFromLink):
            if "__segments" not in caches:
                caches.append("__segments")
            lines += [
                f"    if r.{step.field} is None:",
                f"        l = links.{step.relation}",
                "        if l is not None:",
                "            s = __segments_get(h := l._href, __missing)",  # the slot: `href` is a property
                f"            r.{step.field} = __segment(__segments, h) if s is __missing else s",
            ]
            continue
        spec = specs[step.relation]
        namespace[f"__L{index}"] = spec.link_class
        namespace[f"__T{index}"] = spec.target
        if isinstance(step, LinkFromId):
            route, version = step.route, dialect.version
            namespace[f"__render{index}"] = lambda i, route=route, version=version: (
                f"/{version}/{route.render(id=i)}"
            )
            parts = _href_parts(version, route)
            if parts is None:
                href = f"__render{index}(r.id)"
            else:
                namespace[f"__parts{index}"] = parts
                href = f"(i.join(__parts{index}) if __unquoted(i := r.id) else __render{index}(i))"
            made = new_link(
                f"l{index}", f"__L{index}", spec.link_class, href, step.relation, "__nav", f"__T{index}"
            )
            # None from an empty id, as the reference finisher says
            lines += ["    if r.id:", *(f"        {line}" for line in made)]
            lines += ["    else:", f"        l{index} = None"]
            derived[step.relation] = f"l{index}"
        else:
            caches.append(f"__t{index}")
            shared = f"t if (t := __t{index}_get(v._href)) is not None and t._via is v"
            make = f"__through(__t{index}, v, {step.then!r}, {step.relation!r}, __T{index})"
            derived[step.relation] = f"(None if (v := links.{step.via}) is None else ({shared} else {make}))"
    if derived:
        lines.append("    c = __new(__building_links)")
        lines += [f"    c.{name} = {derived.get(name, f'links.{name}')}" for name in link_fields]
        lines += ["    c.__class__ = __links_cls", "    r.links = c"]
    title = f"<vbo_async finish {cls.__name__} {dialect.version}>"
    return plan(lines, namespace, title, "finish", caches=caches, params=("__nav",))


def _segment(cache: Kept[str, str | None], href: str) -> str | None:
    """`last_segment` of ``href``, kept in ``cache`` (bounded): the links ids are read from are
    mostly those to shared resources, so the same hrefs come back job after job."""
    kept = cache.recall(href, _ABSENT)
    if kept is None or isinstance(kept, str):  # not _ABSENT: it was kept
        return kept
    segment = last_segment(href)
    if len(href) <= CACHED_HREF_LENGTH:
        cache.keep(href, segment)
    return segment


def _through(
    cache: Kept[str, ThroughLink[Any]], via: Link[Any], then: str, relation: str, target: Any
) -> ThroughLink[Any]:
    """The `ThroughLink` via ``via``, kept in ``cache`` under ``via``'s href (bounded)."""
    link = cache.recall(via.href)
    if link is not None and link._via is via:
        return link
    link = ThroughLink(via, then, relation, target)
    if len(via.href) <= CACHED_HREF_LENGTH:
        cache.keep(via.href, link)
    return link


def _finished(cls: type[T], fn: Callable[[Any, Any], T], finish: Callable[[Any], None] | None) -> Any:
    """Wrap a cattrs structure function so the derived values are filled as in the fast pass.

    (Until the fast pass was compared with the detailed one on every version, this assigned
    ``__class__`` on the frozen instance, which attrs refuses: the detailed pass could not build a
    job at all, so a job the fast pass refused was reported with that error instead of its own.)"""
    if finish is None:
        return fn
    building = _BUILDING[cls]

    def structure(value: Any, type_: Any = cls) -> T:
        result: Any = fn(value, type_)
        # The frozen class refuses every assignment, __class__ included; object's does not.
        object.__setattr__(result, "__class__", building)
        finish(result)
        result.__class__ = cls
        return result  # type: ignore[no-any-return]

    return structure


# --- plans: the generated code of one dialect, made once per process ------------------------------


def _unions(hook: Callable[[Any, Any], Any], tp: Any) -> dict[Any, Callable[[Any, Any], Any]]:
    return {tp: hook, tp | None: _optional(hook)}


_STATIC_HOOKS: dict[Any, Callable[[Any, Any], Any]] = {
    **_unions(_str, str),
    **_unions(_int, int),
    **_unions(_float, float),
    **_unions(_bool, bool),
    **_unions(_datetime, dt.datetime),
    **_unions(_time, dt.time),
    **_unions(_tuple_of("strings", _str, str), tuple[str, ...]),
}
"""Hooks that hold no state: the same functions serve every client and dialect."""
for _enum_cls in ENUMS:
    _STATIC_HOOKS[_enum_cls] = _STATIC_HOOKS[_enum_cls | None] = _enum_hook(_enum_cls)
    # A list of values (a v8 proxy's ``role``): an array only, never a string read letter by letter.
    _values = _tuple_of(f"{_enum_cls.__name__} values", _enum_hook(_enum_cls, nullable=False), _enum_cls)
    _STATIC_HOOKS.update(_unions(_values, tuple[_enum_cls, ...]))  # type: ignore[valid-type]
del _enum_cls, _values

_WINDOW = Sequence[bool]


def _hooked_types() -> tuple[Any, ...]:
    """Every type a converter has a hook for (``X``, ``X | None``, ``tuple[X, ...]``...)."""
    found: list[Any] = [*_STATIC_HOOKS, _WINDOW, *LINKS]
    for cls in MODELS:
        found += [cls, cls | None, tuple[cls, ...], tuple[cls, ...] | None]  # type: ignore[valid-type]
    return tuple(found)


def _kind_of(tp: Any) -> tuple[str, Any]:
    """How `FastHooks` makes the hook of ``tp``: ``("static", hook)``, ``("window", None)``,
    ``("optional", X)`` for ``X | None``, ``("tuple", model)`` for ``tuple[model, ...]``,
    ``("links", cls)`` or ``("model", cls)``; `FastPathUnsupported` for any other type."""
    static = _STATIC_HOOKS.get(tp)
    if static is not None:
        return "static", static
    if tp == _WINDOW:
        return "window", None
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        members = [t for t in typing.get_args(tp) if t is not type(None)]
        if len(members) == 1 and len(typing.get_args(tp)) == 2:
            return "optional", members[0]
    elif origin is tuple:
        item, *rest = typing.get_args(tp)
        if rest == [Ellipsis] and item in MODELS:
            return "tuple", item
    elif tp in LINKS:
        return "links", tp
    elif tp in MODELS:
        return "model", tp
    raise FastPathUnsupported(f"no structure hook for {tp!r}")


_KINDS: dict[Any, tuple[str, Any]] = {tp: _kind_of(tp) for tp in _hooked_types()}
"""`_kind_of` every type a converter has a hook for, worked out once (read-only): a new client
binds its hooks with dictionary lookups instead of inspecting types."""


class _Plans:
    """What the fast pass generates for one dialect, none of it bound to a client: each plan is
    made on first use and kept for the life of the process (see `_plans_for`), so a new client
    only binds plans (`Plan.bind`) instead of generating and compiling code."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self._made: dict[tuple[str, type], Plan | None] = {}
        self._known: dict[Plan, tuple[tuple[Any, Any], ...]] = {}

    def known(self, plan_: Plan) -> tuple[tuple[Any, Any], ...]:
        """`known_hooks` of ``plan_`` for `FastHooks`: its stateless hooks (`_STATIC_HOOKS`), the
        same for every client, are passed as they are; only the others are bound per client."""
        found = self._known.get(plan_)
        if found is None:
            found = self._known[plan_] = known_hooks(plan_, _STATIC_HOOKS)
        return found

    def _memo(self, kind: str, cls: type, make: Callable[[], Plan | None]) -> Plan | None:
        key = (kind, cls)
        if key not in self._made:
            self._made[key] = make()
        return self._made[key]

    def structure(self, cls: type) -> Plan | None:
        """``cls``'s structure function, or None when the fast path cannot fill ``cls``."""

        def make() -> Plan | None:
            try:
                return structure_plan(
                    cls,
                    _BUILDING[cls],
                    self.dialect.wire_names(cls),
                    _not_a_dict(cls),
                    finish=bool(self.dialect.derivations(cls)),
                    label=f" {self.dialect.version}",
                )
            except FastPathUnsupported:
                return None

        return self._memo("structure", cls, make)

    def links(self, cls: type) -> Plan:
        def make() -> Plan:
            specs = _link_specs(cls, self.dialect)
            return links_plan(cls, _BUILDING[cls], specs, _link_error, label=f" {self.dialect.version}")

        made = self._memo("links", cls, make)
        assert made is not None
        return made

    def finish(self, cls: type) -> Plan | None:
        return self._memo("finish", cls, lambda: _finish_plan(cls, self.dialect))

    def policies(self) -> Plan | None:
        """The schedule-policy cache's function, or None when the policy or its windows break a
        rule it relies on (then policies are structured, not shared)."""

        def make() -> Plan | None:
            try:
                return _policies_plan(self.dialect)
            except FastPathUnsupported:
                return None

        return self._memo("policies", m.SchedulePolicy, make)


_PLANS: dict[str, _Plans] = {}


def _plans_for(dialect: Dialect) -> _Plans:
    """The plans of ``dialect``, kept per version for the dialect object itself (a different
    dialect object of the same version, as tests make, replaces them)."""
    found = _PLANS.get(dialect.version)
    if found is None or found.dialect is not dialect:
        found = _PLANS[dialect.version] = _Plans(dialect)
    return found


# --- the fast pass's hooks ---------------------------------------------------------------------------


class FastHooks:
    """The fast pass's structure hooks for one client (links follow via ``navigator``) and one
    dialect, each built on first use from the dialect's plans.

    A client that only lists jobs binds the hooks a `Job` needs (the job, its links, schedule
    policy and windows) and nothing else; no cattrs converter is involved unless a model breaks
    the fast path's rules (then cattrs' own function is built for it, as before). Caches that
    share equal values between decoded objects (links to shared resources, schedule policies,
    uniform windows) live here, one set per client and dialect.
    """

    def __init__(
        self, navigator: Navigator, dialect: Dialect, converter: cattrs.Converter | None = None
    ) -> None:
        self._navigator = navigator
        self._dialect = dialect
        self._plans = _plans_for(dialect)
        self._windows = _Windows()
        self._hooks: dict[Any, Callable[[Any, Any], Any]] = {}
        self._converter = converter

    @property
    def windows(self) -> _Windows:
        """The window reader every window hook of these hooks goes through."""
        return self._windows

    def get(self, tp: Any) -> Callable[[Any, Any], Any]:
        """The structure hook for exactly ``tp``; `FastPathUnsupported` for a type no model uses."""
        hook = self._hooks.get(tp)
        if hook is None:
            hook = self._hooks[tp] = self._make(tp)
        return hook

    def _make(self, tp: Any) -> Callable[[Any, Any], Any]:
        kind, inner = _KINDS.get(tp) or _kind_of(tp)
        if kind == "static":
            return inner  # type: ignore[no-any-return]
        if kind == "window":
            return self._windows.structure
        if kind == "optional":
            return _optional(self.get(inner))
        if kind == "tuple":
            return _tuple_of(inner.__name__, self._later(inner), inner)
        if kind == "links":
            return self._plans.links(tp).bind(__nav=self._navigator)
        return self._model(tp)

    def _later(self, cls: type) -> Callable[[Any, Any], Any]:
        """``cls``'s hook, bound when first called: a model that only comes in arrays a version
        rarely or never sends (a v1 job's selected mailboxes) costs a new client nothing."""
        bound: Callable[[Any, Any], Any] | None = None

        def structure(value: Any, type_: Any = None) -> Any:
            nonlocal bound
            if bound is None:
                bound = self.get(cls)
            return bound(value, type_)

        return structure

    def _model(self, cls: type) -> Callable[[Any, Any], Any]:
        finish_plan = self._plans.finish(cls)
        finish = None if finish_plan is None else finish_plan.bind(__nav=self._navigator)
        plan_ = self._plans.structure(cls)
        if plan_ is None:  # cattrs' own function (a test asserts every model qualifies)
            return _cattrs_model_hook(cls, self._cattrs(), self._dialect, finish)
        known = self._plans.known(plan_)
        if finish is not None:
            fn = plan_.bind(self.get, known=known, __finish=finish)
        else:
            fn = plan_.bind(self.get, known=known)
        if cls is m.SchedulePolicy:
            shared = self._plans.policies()
            if shared is not None:
                windows = self._windows
                # Not ``Kept[Any, Any](...)``: calling the alias also tries to set
                # ``__orig_class__`` on the slotted instance, an AttributeError per client.
                kept: Kept[Any, Any] = Kept(_POLICY_CACHE_SIZE // 2)
                fn = shared.bind(
                    self.get,
                    known=self._plans.known(shared),
                    structure=fn,
                    cache=kept,
                    cache_get=kept.get,
                    __key=windows.key,
                    __flags_of=windows.flags_of,
                )
        return fn

    def _cattrs(self) -> cattrs.Converter:
        if self._converter is None:
            self._converter = cattrs.Converter(detailed_validation=False, forbid_extra_keys=False)
            self.register(self._converter)
        return self._converter

    def register(self, converter: cattrs.Converter) -> None:
        """Make ``converter`` structure through these hooks (each built when cattrs first asks)."""
        for tp in _hooked_types():
            converter.register_structure_hook_factory(_exactly(tp), self._factory(tp))

    def _factory(self, tp: Any) -> Callable[[Any], Callable[[Any, Any], Any]]:
        return lambda _: self.get(tp)


def _exactly(tp: Any) -> Callable[[Any], bool]:
    return lambda candidate: bool(candidate == tp)


# --- the detailed pass and cattrs converters ---------------------------------------------------------


def configure_converter(converter: cattrs.Converter, navigator: Navigator, dialect: Dialect) -> None:
    """Register every hook for ``dialect`` on ``converter``; links follow via ``navigator``.

    A converter without detailed validation structures through `FastHooks` (built lazily); one
    with it gets cattrs' own functions for the models, which collect every error with its path,
    and the plainly written finisher (`_reference_finisher`)."""
    if not converter.detailed_validation:
        FastHooks(navigator, dialect, converter).register(converter)
        _configure_unstructuring(converter, dialect)
        return
    plans = _plans_for(dialect)
    hooks: dict[Any, Callable[[Any, Any], Any]] = {**_STATIC_HOOKS, _WINDOW: _Windows().structure}
    for links_cls in LINKS:
        hooks[links_cls] = plans.links(links_cls).bind(__nav=navigator)
    for tp, hook in hooks.items():
        _register(converter, tp, hook)
    for cls in MODELS:  # a nested model's hook exists before the models holding it
        fn = _cattrs_model_hook(cls, converter, dialect, _reference_finisher(cls, dialect, navigator))
        _register(converter, cls, fn)
        _register(converter, cls | None, _optional(fn))
        many = _tuple_of(cls.__name__, fn, cls)
        _register(converter, tuple[cls, ...], many)  # type: ignore[valid-type]
        _register(converter, tuple[cls, ...] | None, _optional(many))  # type: ignore[valid-type]
    _configure_unstructuring(converter, dialect)


def _cattrs_model_hook(
    cls: type[Any], converter: cattrs.Converter, dialect: Dialect, finish: Callable[[Any], None] | None
) -> Callable[[Any, Any], Any]:
    """cattrs' own structure function for ``cls``, reading every wire spelling, then ``finish``."""
    names = dialect.wire_names(cls)
    overrides = {
        name: override(rename=spellings[0]) if spellings else override(omit=True)
        for name, spellings in names.items()
    }
    fn = make_dict_structure_fn(cls, converter, **overrides)  # type: ignore[arg-type]
    alternatives = [(spellings[0], spellings[1:]) for spellings in names.values() if len(spellings) > 1]
    return _finished(cls, _aliasing(cls, fn, alternatives), finish)  # type: ignore[no-any-return]


def _policies_plan(dialect: Dialect) -> Plan:
    """Share one `SchedulePolicy` between jobs whose wire policies are the same.

    A sweep's jobs use a handful of schedules, so a policy is looked up instead of rebuilt: a
    third of the cost of a job and most of its memory. The key is what the structure functions
    read, in one flat tuple: for each field of the policy the value under its first spelling
    present, paired with its type (so ``1`` and ``true`` stay apart); for a window (a
    `BackupWindow` field) whether it is an object, absent or ``null``, each of its own values
    the same way, and for its flags the bytes `_Windows.key` gives (the flags' own bytes). Equal
    keys therefore structure to equal policies. Keys and spellings come from the models and the
    dialect: a field added to `SchedulePolicy` or `BackupWindow` is part of the key. Anything
    unusual (a window that is not an object, flags that are not all booleans, an unhashable
    value) is structured as usual by ``structure``, which also reports the error.

    A miss builds the policy from the values already read (its windows too, and their flags
    from the bytes just made: nothing is read or written twice) with the same statements the
    structure functions use (`fill_field`). Bound with the policy's structure function, the
    cache (one per client: a `Kept` of key -> policy, at most `_POLICY_CACHE_SIZE` entries, each
    of at most `_POLICY_KEY_CHARACTERS` of strings and flags, those in use kept: the cache lives as
    long as the client) and its ``get``, the
    structure hooks of the fields and the windows' ``key`` and ``flags_of``. Nothing the caller
    owns is kept: the keys hold values read from the wire (strings, numbers, bytes), never its
    lists or objects.
    """
    policy_cls: Any = m.SchedulePolicy
    window_cls: Any = m.BackupWindow
    check_rules(policy_cls)
    check_rules(window_cls)
    if dialect.derivations(policy_cls) or dialect.derivations(window_cls):
        raise FastPathUnsupported("derived values in a schedule policy or window")
    names = dialect.wire_names(policy_cls)
    window_names = dialect.wire_names(window_cls)
    namespace = fill_namespace()
    namespace.update(
        {
            "__cls": policy_cls,
            "__building": _BUILDING[policy_cls],
            "__window_cls": window_cls,
            "__window_building": _BUILDING[window_cls],
            "__object": _WINDOW_OBJECT,
            "__chars": _POLICY_KEY_CHARACTERS,
        }
    )
    hooks: list[tuple[str, Any]] = []
    lines = [
        "def structure_shared(o, t=None):",
        "    if o.__class__ is not dict:",
        "        return structure(o, t)",
        "    g = o.get",
    ]
    key: list[str] = []
    sized: list[str] = []  # the lengths of the strings read as sent and of the flags' bytes
    fill: list[str] = []
    for index, field in enumerate(attrs.fields(policy_cls)):
        spellings = names[field.name]
        if not spellings or window_cls not in _members(field.type):
            if spellings:
                key.append(f"(v{index} := {read_expression('g', spellings, field)}), v{index}.__class__")
                sized.append(_sized(f"v{index}", "str"))
            fill += fill_field(
                policy_cls, field, spellings, "p", f"v{index}", f"__h{index}", namespace, hooks
            )
            continue
        # A window: its own values, read from the object, and its flags as bytes.
        w = f"v{index}"
        read: list[str] = []
        built: list[str] = []
        scalars: list[str] = []
        window_key: list[str] = []
        for number, window_field in enumerate(attrs.fields(window_cls)):
            window_spellings = window_names[window_field.name]
            value = f"{w}_{number}"
            hook = f"__h{index}_{number}"
            if window_spellings:
                read.append(f"{value} = {read_expression('x', window_spellings, window_field)}")
                scalars.append(value)
            if window_spellings and window_field.type == _WINDOW:
                flags = f"{w}_{number}_flags"
                read += [
                    f"if {value}.__class__ is list:",
                    f"    {flags} = __key({value})",
                    f"    if {flags} is None:",
                    "        return structure(o, t)",
                    f"elif {value} is None or {value} is __missing:",
                    f"    {flags} = {value}",
                    "else:",
                    "    return structure(o, t)",
                ]
                window_key.append(flags)
                scalars.append(flags)
                sized.append(_sized(flags, "bytes"))
                built += [
                    f"if {value}.__class__ is list:",
                    f"    b.{window_field.name} = __flags_of({flags}, {value})",
                    "else:",
                    *(
                        f"    {line}"
                        for line in fill_field(
                            window_cls, window_field, window_spellings, "b", value, hook, namespace, hooks
                        )
                    ),
                ]
            else:
                if window_spellings:
                    window_key.append(f"{value}, {value}.__class__")
                    sized.append(_sized(value, "str"))
                built += fill_field(
                    window_cls, window_field, window_spellings, "b", value, hook, namespace, hooks
                )
        lines += [
            f"    {w} = {read_expression('g', spellings, field)}",
            f"    if {w}.__class__ is dict:",
            f"        x = {w}.get",
            *(f"        {line}" for line in read),
            f"        m{index} = __object",
            f"    elif {w} is None or {w} is __missing:",
            f"        m{index} = {w}",
            *([f"        {' = '.join(scalars)} = None"] if scalars else []),
            "    else:",
            "        return structure(o, t)",
        ]
        key += [f"m{index}", *window_key]
        fill += [
            f"if m{index} is __object:",
            "    b = __new(__window_building)",
            *(f"    {line}" for line in built),
            "    b.__class__ = __window_cls",
            f"    p.{field.name} = b",
            "else:",
            *(
                f"    {line}"
                for line in fill_field(policy_cls, field, spellings, "p", w, f"__h{index}", namespace, hooks)
            ),
        ]
    lines += [
        f"    key = ({', '.join(key)},)",
        "    try:",
        "        p = cache_get(key)",
        "    except TypeError:  # an unhashable value where a scalar belongs: the hooks will say why",
        "        return structure(o, t)",
        "    if p is not None:",
        "        return p",
        "    p = cache.recall(key)",
        "    if p is not None:",
        "        return p",
        "    p = __new(__building)",
        *(f"    {line}" for line in fill),
        "    p.__class__ = __cls",
        # Inline, not a loop over the key: a fresh client misses for almost every job.
        f"    if {' + '.join(sized) or '0'} <= __chars:",
        "        cache.keep(key, p)",
        "    return p",
    ]
    title = f"<vbo_async shared policies {dialect.version}>"
    params = ("structure", "cache", "cache_get", "__key", "__flags_of")
    return plan(lines, namespace, title, "structure_shared", hooks=hooks, params=params)


def _sized(name: str, kind: str) -> str:
    """An expression for the length of ``name`` when it holds a ``kind`` (``str``, ``bytes``), else 0."""
    return f"(len({name}) if {name}.__class__ is {kind} else 0)"


WIRE_TYPES: tuple[type, ...] = (*_ALL, *ENUMS, Link, m.HourFlags, dt.datetime, dt.time)
"""What `_configure_unstructuring` writes as wire JSON (models, their links and values); ``to_wire``
takes these and lists, tuples and dicts of them besides JSON values."""


def _configure_unstructuring(converter: cattrs.Converter, dialect: Dialect) -> None:
    """Models back to ``dialect``'s wire JSON (wire names, ISO timestamps, ``{"href": ...}``
    links), so that ``structure(unstructure(model)) == model``. ``None`` fields are left out, as
    are fields not on this version's wire (derived ones are derived again when decoding),
    `Dialect.off_wire` fields whose link names the same value and `ThroughLink` links (their href
    is their first step's: a v6+ job's proxy link written as v1's would name its repository)."""
    converter.register_unstructure_hook(dt.datetime, as_sent)
    converter.register_unstructure_hook(dt.time, lambda value: value.isoformat())
    converter.register_unstructure_hook(Link, lambda link: {"href": link.shown_href()})
    converter.register_unstructure_hook(ThroughLink, lambda link: None)  # no href of its own
    converter.register_unstructure_hook(m.HourFlags, list)
    converter.register_unstructure_hook(float, _finite)
    # Not passed on for `json.dumps` to refuse far from here (cattrs writes bytes, sets and any
    # class it has no hook for as they are): registered last, so tried before cattrs' own rules.
    converter.register_unstructure_hook(bytes, _refuse_kind)
    converter.register_unstructure_hook_func(_unwritable_kind, _refuse_kind)
    items, mapping = _wire_items(converter)
    converter.register_unstructure_hook(list, items)
    converter.register_unstructure_hook(tuple, items)
    converter.register_unstructure_hook(dict, mapping)
    for enum_cls in ENUMS:
        converter.register_unstructure_hook(enum_cls, lambda member: str(member._value_))
    for cls in _ALL:  # a *Links class is a model whose values are links
        converter.register_unstructure_hook(cls, _unstructure_model(cls, converter, dialect))


def _unstructure_model(
    cls: type[Any], converter: cattrs.Converter, dialect: Dialect
) -> Callable[[Any], dict[str, Any]]:
    names = [(name, spellings[0]) for name, spellings in dialect.wire_names(cls).items() if spellings]
    off_wire = dialect.off_wire.get(cls, frozenset())
    # An off-wire field is left out when the link it is derived from names the same value.
    linked = {
        d.field: d.relation
        for d in dialect.derivations(cls)
        if isinstance(d, IdFromLink) and d.field in off_wire
    }

    def unstructure(model: Any) -> dict[str, Any]:
        wire: dict[str, Any] = {}
        for name, key in names:
            value = getattr(model, name)
            if value is None or value.__class__ is ThroughLink:  # derived: it has no href of its own
                continue
            relation = linked.get(name)
            if relation is not None:
                link = getattr(model.links, relation)
                if link is not None and last_segment(link.href) == value:
                    continue
            try:
                wire[key] = converter.unstructure(value)
            except Unwritable as exc:
                exc.keys.insert(0, f".{key}")
                raise
        return wire

    return unstructure


def _not_a_dict(cls: type[Any]) -> Callable[[Any], Exception]:
    def error(value: Any) -> Exception:
        return WireValueError(f"expected a {cls.__name__} object, got {_kind(value)}")

    return error


def _register(converter: cattrs.Converter, tp: Any, hook: Callable[[Any, Any], Any]) -> None:
    """Register ``hook`` for exactly ``tp`` (unions and generics included, not their members)."""
    if isinstance(tp, type) and not typing.get_args(tp):
        converter.register_structure_hook(tp, hook)
    else:
        converter.register_structure_hook_func(_exactly(tp), hook)


def _aliasing(
    cls: type[T], fn: Callable[[Any, Any], T], alternatives: list[tuple[str, tuple[str, ...]]]
) -> Callable[[Any, Any], T]:
    """Wrap a structure function so only objects are accepted and the other wire spellings of a
    field are read, in order, when its first spelling is absent."""
    not_a_dict = _not_a_dict(cls)

    def structure(value: Any, type_: Any = cls) -> T:
        if value.__class__ is not dict:
            raise not_a_dict(value)
        for main, others in alternatives:
            if main not in value:
                for other in others:
                    if other in value:
                        value = {**value, main: value[other]}
                        break
        return fn(value, type_)

    return structure


def make_converter(navigator: Navigator, dialect: Dialect, *, detailed: bool = False) -> cattrs.Converter:
    """A fresh converter for ``dialect``. ``detailed`` collects every error with its path
    (slower); the client decodes with `FastHooks` and only re-runs a failure through a detailed
    converter.
    """
    converter = cattrs.Converter(detailed_validation=detailed, forbid_extra_keys=False)
    configure_converter(converter, navigator, dialect)
    return converter


def fast_path_rules_hold() -> dict[type, str]:
    """Models the fast path cannot fill, with the reason (empty when every model qualifies)."""
    broken = {}
    for cls in _ALL:
        try:
            check_rules(cls)
        except FastPathUnsupported as exc:
            broken[cls] = str(exc)
    return broken
