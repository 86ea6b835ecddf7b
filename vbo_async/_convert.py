"""The cattrs converter that turns v1 wire JSON into the attrs models, tolerating real servers.

Configured the way cattrs' ``preconf`` modules are: `configure_converter` registers every hook and
`make_converter` returns a fresh converter; each client owns its own (the global one is never used).

Tolerance: booleans as ``"true"``/``"false"`` strings, numbers as numeric strings, timestamps with
7 fractional digits, a ``Z``, an offset or no zone (read as UTC), ``HH:MM[:SS]`` times, ``null``
anywhere but ``id``, unknown keys ignored, open enums. Hooks are written for the hot path: the
168-flag backup window is recognised with two C-level counts and shared between equal windows.
"""

from __future__ import annotations

import datetime as dt
import re
import typing
from collections.abc import Callable
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.errors import IterableValidationError, IterableValidationNote
from cattrs.gen import make_dict_structure_fn, override

from . import _models as m
from ._enums import (
    Bottleneck,
    DailyType,
    JobStatus,
    OpenEnum,
    PeriodicallyEvery,
    ProxyStatus,
    ScheduleType,
)
from ._fastpath import building_class, make_fast_links_fn, make_fast_structure_fn
from ._links import Link, Navigator

__all__ = ["WIRE_NAMES", "WireValueError", "configure_converter", "make_converter", "wire_name"]

T = TypeVar("T")

MODELS: tuple[type[Any], ...] = (
    m.BackupWindow,
    m.SchedulePolicy,
    m.Organization,
    m.BackupRepository,
    m.Proxy,
    m.JobSessionStatistics,
    m.JobSession,
    m.SelectedMailbox,
    m.Job,
)
LINKS: tuple[type[Any], ...] = (
    m.OrganizationLinks,
    m.BackupRepositoryLinks,
    m.ProxyLinks,
    m.JobSessionLinks,
    m.SelectedMailboxLinks,
    m.JobLinks,
)
_ALIASES: dict[tuple[type[Any], str], tuple[str, ...]] = {
    # v1 documents the lower-case "t"; later versions fixed it. Read both.
    (m.Proxy, "enable_network_throttling"): ("enableNetworkThrottling", "enableNetworkthrottling"),
}
ENUMS: tuple[type[OpenEnum], ...] = (
    Bottleneck,
    DailyType,
    JobStatus,
    PeriodicallyEvery,
    ProxyStatus,
    ScheduleType,
)
_WINDOW_CACHE_SIZE = 4096
_POLICY_CACHE_SIZE = 4096
_WINDOWS_PER_POLICY = 8


class WireValueError(ValueError):
    """A wire value of the wrong kind; only ever seen wrapped in `DecodeError`. ``suffix`` locates
    it inside the value the hook was given (``[3]`` for the fourth flag of a window)."""

    def __init__(self, message: str, *, suffix: str = "") -> None:
        super().__init__(message)
        self.suffix = suffix


def _camel(name: str) -> str:
    if name == "links":
        return "_links"
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _build_wire_names() -> dict[type[Any], dict[str, str]]:
    for cls in (*MODELS, *LINKS):
        attrs.resolve_types(cls, globalns=vars(m))
    return {
        cls: {a.name: _ALIASES.get((cls, a.name), (_camel(a.name),))[0] for a in attrs.fields(cls)}
        for cls in (*MODELS, *LINKS)
    }


WIRE_NAMES: dict[type[Any], dict[str, str]] = _build_wire_names()
"""Attribute name -> wire name, per model class (read-only by convention)."""
_BUILDING: dict[type[Any], type[Any]] = {cls: building_class(cls) for cls in (*MODELS, *LINKS)}
"""The class each model is filled as by the fast path (read-only; see `building_class`)."""


def wire_name(cls: type[Any], attribute: str) -> str:
    """The wire name of ``attribute`` of model ``cls`` (``retry_number`` -> ``retryNumber``)."""
    return WIRE_NAMES.get(cls, {}).get(attribute, attribute)


# --- primitive hooks -----------------------------------------------------------------------------


def _kind(value: object) -> str:
    return type(value).__name__ if value is not None else "null"


def _str(value: Any, _: object = None) -> str:
    if value.__class__ is str:
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise WireValueError(f"expected a string, got {_kind(value)} {value!r:.40}")


def _int(value: Any, _: object = None) -> int:
    if value.__class__ is int:
        return value
    if value.__class__ is str:
        text = value.strip()
        if text.isascii() and (text.isdigit() or (text[:1] in ("+", "-") and text[1:].isdigit())):
            return int(text)
    elif value.__class__ is float and value.is_integer() and abs(value) <= _EXACT_FLOAT_INT:
        # Beyond 2**53 a float is a rounded integer (orjson reads >64-bit integers as floats).
        return int(value)
    raise WireValueError(f"expected an integer, got {_kind(value)} {value!r:.40}")


_EXACT_FLOAT_INT = 2**53
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
    raise WireValueError(f"expected a boolean, got {_kind(value)} {value!r:.40}")


_FRACTION = re.compile(r"(\.\d{6})\d+")


def _normalise(text: str) -> str:
    """What ``fromisoformat`` may refuse: surrounding space, more than 6 fractional digits, ``z``."""
    text = _FRACTION.sub(r"\1", text.strip())
    return text[:-1] + "Z" if text.endswith("z") else text


def _datetime(value: Any, _: object = None) -> dt.datetime:
    if value.__class__ is not str:
        raise WireValueError(f"expected a timestamp string, got {_kind(value)} {value!r:.40}")
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        try:
            parsed = dt.datetime.fromisoformat(_normalise(value))
        except ValueError:
            raise WireValueError(f"expected an ISO 8601 timestamp, got {value!r:.40}") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=dt.UTC)
    return parsed


def _time(value: Any, _: object = None) -> dt.time:
    if value.__class__ is not str:
        raise WireValueError(f"expected a time of day string, got {_kind(value)} {value!r:.40}")
    try:
        return dt.time.fromisoformat(value)
    except ValueError:
        try:
            return dt.time.fromisoformat(_normalise(value))
        except ValueError:
            raise WireValueError(f"expected a time of day HH:MM[:SS], got {value!r:.40}") from None


def _optional(hook: Callable[[Any, Any], T]) -> Callable[[Any, Any], T | None]:
    def structure(value: Any, type_: Any = None) -> T | None:
        return None if value is None else hook(value, type_)

    return structure


def _enum_hook(cls: type[OpenEnum]) -> Callable[[Any, Any], OpenEnum | None]:
    members = cls._value2member_map_

    def structure(value: Any, _: object = None) -> OpenEnum | None:
        if value.__class__ is str:
            member = members.get(value)
            return member if member is not None else cls(value)  # type: ignore[return-value]
        if value is None:
            return None
        raise WireValueError(f"expected a {cls.__name__} string, got {_kind(value)} {value!r:.40}")

    return structure


class _Windows:
    """Backup windows as canonical tuples, one per distinct window, shared by every job using it.

    All-true and all-false windows are recognised with two C-level counts; other windows are
    looked up by value. `listed` keeps one list per canonical window, for `_shared_policies` to
    compare wire lists with.
    """

    def __init__(self) -> None:
        self._uniform: dict[tuple[bool, int], tuple[bool, ...]] = {}
        self._seen: dict[tuple[bool, ...], tuple[bool, ...]] = {}
        self._lists: dict[tuple[bool, ...], list[bool]] = {}

    def shared(self, value: list[Any]) -> tuple[bool, ...] | None:
        """The canonical tuple of a list of flags, or None when an entry is not boolean-like or
        the window is new and the cache of distinct windows is full."""
        size = len(value)
        trues = value.count(True)
        if trues == size or (trues == 0 and value.count(False) == size):
            flag = trues == size
            shared = self._uniform.get((flag, size))
            if shared is None:
                shared = self._uniform[(flag, size)] = (flag,) * size
            return shared
        if trues + value.count(False) != size:
            return None
        shared = self._seen.get(tuple(value))  # 1 == 1.0 == True: equal windows share an entry
        if shared is None and len(self._seen) < _WINDOW_CACHE_SIZE:
            shared = tuple(map(bool, value))  # every entry is == True or == False here
            self._seen[shared] = shared
        return shared

    def listed(self, flags: tuple[bool, ...]) -> list[bool]:
        """``flags`` as a list, one per distinct window while the cache has room: what a wire
        list is compared with in one C-level ``==``."""
        found = self._lists.get(flags)
        if found is None:
            found = list(flags)
            if len(self._lists) < _WINDOW_CACHE_SIZE:
                self._lists[flags] = found
        return found

    def structure(self, value: Any, _: object = None) -> tuple[bool, ...]:
        if value.__class__ is not list:
            if value is None:
                return ()
            raise WireValueError(f"expected an array of booleans, got {_kind(value)}")
        shared = self.shared(value)
        if shared is not None:
            return shared
        if value.count(True) + value.count(False) == len(value):
            return tuple(map(bool, value))  # a new window once the cache is full
        return _flags(value)  # names the first entry that is not a flag


def _flags(values: list[Any]) -> tuple[bool, ...]:
    flags = []
    for index, value in enumerate(values):
        try:
            flags.append(_bool(value))
        except WireValueError as exc:
            raise WireValueError(str(exc), suffix=f"[{index}]") from None
    return tuple(flags)


def _tuple_of(cls: type[Any], item: Callable[[Any, Any], Any]) -> Callable[[Any, Any], tuple[Any, ...]]:
    """A JSON array of ``cls`` objects as a tuple; anything but an array is an error (a string or
    an object must not be iterated into an empty or nonsense list)."""

    def structure(value: Any, _: object = None) -> tuple[Any, ...]:
        if value.__class__ is not list:
            raise WireValueError(f"expected an array of {cls.__name__}, got {_kind(value)}")
        items = []
        for index, element in enumerate(value):
            try:
                items.append(item(element, cls))
            except Exception as exc:
                exc.add_note(IterableValidationNote(f"Structuring @ index {index}", index, cls))
                raise IterableValidationError(f"while structuring {cls.__name__} items", [exc], cls) from None
        return tuple(items)

    return structure


# --- links -----------------------------------------------------------------------------------------


def _link_fields(cls: type[Any]) -> list[tuple[str, str, type[Link[Any]], type[Any] | None]]:
    """(init alias, wire key, Link class, target model) for each field of a ``*Links`` class."""
    spec = []
    for field in attrs.fields(cls):
        link_type = next(t for t in typing.get_args(field.type) if t is not type(None))
        origin = typing.get_origin(link_type)
        (target,) = typing.get_args(link_type)
        spec.append((field.alias, wire_name(cls, field.name), origin, None if target is object else target))
    return spec


def _links_hook(cls: type[T], navigator: Navigator) -> Callable[[Any, Any], T]:
    """Structure a ``_links`` object: each ``{"href": ...}`` becomes a `Link` bound to
    ``navigator``; a missing entry, ``null`` or ``{"href": null}`` is an absent link."""
    return make_fast_links_fn(cls, _BUILDING[cls], _link_fields(cls), navigator, _link_error)


def _link_error(key: str, value: Any) -> Exception:
    return WireValueError(f"expected a {key} object, got {_kind(value)}")


# --- the converter ----------------------------------------------------------------------------------


def _unions(hook: Callable[[Any, Any], Any], tp: Any) -> dict[Any, Callable[[Any, Any], Any]]:
    return {tp: hook, tp | None: _optional(hook)}


def configure_converter(converter: cattrs.Converter, navigator: Navigator) -> None:
    """Register every vbo-async hook on ``converter``; links it decodes follow via ``navigator``."""
    windows = _Windows()
    hooks: dict[Any, Callable[[Any, Any], Any]] = {
        **_unions(_str, str),
        **_unions(_int, int),
        **_unions(_bool, bool),
        **_unions(_datetime, dt.datetime),
        **_unions(_time, dt.time),
        tuple[bool, ...]: windows.structure,
    }
    for enum_cls in ENUMS:
        hook = _enum_hook(enum_cls)
        hooks[enum_cls] = hooks[enum_cls | None] = hook
    for links_cls in LINKS:
        hooks[links_cls] = _links_hook(links_cls, navigator)
    for tp, hook in hooks.items():
        _register(converter, tp, hook)
    for cls in MODELS:  # in dependency order: a model's fields' hooks exist before it
        if converter.detailed_validation:
            renames = {name: override(rename=wire) for name, wire in WIRE_NAMES[cls].items()}
            fn = _aliasing(cls, make_dict_structure_fn(cls, converter, **renames))  # type: ignore[arg-type]
        else:
            fn = make_fast_structure_fn(
                cls, _BUILDING[cls], converter, WIRE_NAMES[cls], _alternatives(cls), _not_a_dict(cls)
            )
            if cls is m.SchedulePolicy:
                fn = _shared_policies(fn, windows)
        _register(converter, cls, fn)
        _register(converter, cls | None, _optional(fn))
        if cls is m.SelectedMailbox:  # Job.selected_mailboxes / excluded_mailboxes
            many = _tuple_of(cls, fn)
            _register(converter, tuple[m.SelectedMailbox, ...], many)
            _register(converter, tuple[m.SelectedMailbox, ...] | None, _optional(many))

    _configure_unstructuring(converter)


def _shared_policies(structure: Callable[[Any, Any], T], windows: _Windows) -> Callable[[Any, Any], T]:
    """Share one `SchedulePolicy` between jobs whose wire policies are the same.

    A sweep's jobs use a handful of schedules and windows, so a policy is looked up instead of
    rebuilt: a third of the cost of a job and most of its memory. The key is the policy's scalar
    wire values (with their types, so ``1`` and ``true`` stay apart); under it sit the few
    windows seen with those values, each as a list of flags that one C-level ``==`` compares with
    the wire list (an identity check per flag). Anything unusual (unhashable values, a window that
    is not all flags) is structured as usual, which also reports the error.
    """
    cache: dict[tuple[Any, ...], list[tuple[list[bool], T]]] = {}
    remembered = 0

    def structure_shared(value: Any, type_: Any = None) -> T:
        nonlocal remembered
        if value.__class__ is not dict:
            return structure(value, type_)
        window: Any = value.get("backupWindow")
        array = window.get("backupIntervalsArray") if window.__class__ is dict else None
        if array.__class__ is not list:
            return structure(value, type_)
        get = value.get
        offset = window.get("minuteOffset")
        number = get("retryNumber")
        wait = get("retryWaitInterval")
        key = (
            get("type"),
            get("periodicallyEvery"),
            get("dailyType"),
            get("dailyTime"),
            get("retryEnabled"),
            number,
            number.__class__,
            wait,
            wait.__class__,
            offset,
            offset.__class__,
        )
        try:
            known = cache.get(key)
        except TypeError:  # an unhashable value where a scalar belongs: the hooks will say why
            return structure(value, type_)
        if known is not None:
            for flags, shared in known:
                if array == flags:  # 1 == True: the hooks read such a window as these flags too
                    return shared
        policy = structure(value, type_)
        if remembered < _POLICY_CACHE_SIZE and (known is None or len(known) < _WINDOWS_PER_POLICY):
            backup_window = policy.backup_window  # type: ignore[attr-defined]
            cache.setdefault(key, []).append((windows.listed(backup_window.backup_intervals_array), policy))
            remembered += 1
        return policy

    return structure_shared


def _configure_unstructuring(converter: cattrs.Converter) -> None:
    """Models back to v1 wire JSON (wire names, ISO timestamps, ``{"href": ...}`` links), so that
    ``structure(unstructure(model)) == model``. ``None`` fields are left out."""
    converter.register_unstructure_hook(dt.datetime, lambda value: value.isoformat())
    converter.register_unstructure_hook(dt.time, lambda value: value.isoformat())
    converter.register_unstructure_hook(Link, lambda link: {"href": link.href})
    for enum_cls in ENUMS:
        converter.register_unstructure_hook(enum_cls, lambda member: str(member._value_))
    for cls in (*MODELS, *LINKS):  # a *Links class is a model whose values are links
        converter.register_unstructure_hook(cls, _unstructure_model(cls, converter))


def _unstructure_model(cls: type[Any], converter: cattrs.Converter) -> Callable[[Any], dict[str, Any]]:
    names = [(field.name, wire_name(cls, field.name)) for field in attrs.fields(cls)]

    def unstructure(model: Any) -> dict[str, Any]:
        wire: dict[str, Any] = {}
        for name, key in names:
            value = getattr(model, name)
            if value is not None:
                wire[key] = converter.unstructure(value)
        return wire

    return unstructure


def _alternatives(cls: type[Any]) -> dict[str, tuple[str, ...]]:
    return {name: names[1:] for (c, name), names in _ALIASES.items() if c is cls}


def _not_a_dict(cls: type[Any]) -> Callable[[Any], Exception]:
    def error(value: Any) -> Exception:
        return WireValueError(f"expected a {cls.__name__} object, got {_kind(value)}")

    return error


def _register(converter: cattrs.Converter, tp: Any, hook: Callable[[Any, Any], Any]) -> None:
    """Register ``hook`` for exactly ``tp`` (unions and generics included, not their members)."""
    if isinstance(tp, type) and not typing.get_args(tp):
        converter.register_structure_hook(tp, hook)
    else:
        converter.register_structure_hook_func(lambda candidate: candidate == tp, hook)


def _aliasing(cls: type[T], fn: Callable[[Any, Any], T]) -> Callable[[Any, Any], T]:
    """Wrap a structure function so only objects are accepted and alternative wire spellings of
    a field are read too."""
    not_a_dict = _not_a_dict(cls)
    alternatives = [(wire_name(cls, name), others) for name, others in _alternatives(cls).items()]

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


def make_converter(navigator: Navigator, *, detailed: bool = False) -> cattrs.Converter:
    """A fresh converter with vbo-async's hooks. ``detailed`` collects every error with its path
    (slower); the client decodes with a fast one and only re-runs a failure through a detailed one.
    """
    converter = cattrs.Converter(detailed_validation=detailed, forbid_extra_keys=False)
    configure_converter(converter, navigator)
    return converter
