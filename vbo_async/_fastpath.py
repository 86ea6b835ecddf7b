"""Generated structure functions for the fast decoding pass.

cattrs' own generated functions build a keyword dict per object and pass a type to every hook;
on the hot path (thousands of jobs per sweep) that is most of the cost. These functions read each
wire key once (the spellings a dialect gives, in order), inline the common cases (a ``str``/
``int``/``bool`` already of the right type, ``null``, an ISO timestamp with a zone, a time of
day), call the converter's hook otherwise, and fill the object's slots directly. They do no detailed
validation: on any failure the decoder re-runs a detailed cattrs pass to name the path. Both
passes share the same hooks and the same wire names (from the dialect), and fill derived values
with the same steps (generated for the fast pass, written plainly for the detailed one), so they
accept the same input and build equal objects; property tests on every dialect compare them.

They rely on rules `check_rules` verifies when a function is generated: the class is a slotted
attrs class without ``__attrs_post_init__``, and no field has a converter, a validator,
``init=False``, or a default other than ``None``, an argument-free factory or none at all. A
class breaking a rule raises `FastPathUnsupported` and is decoded by cattrs' own function.

Filling a frozen attrs instance normally goes through a slot descriptor's ``__set__`` (a frozen
class forbids ``setattr``), a slow generic call per field. Instead each object is built as an
instance of a `building_class`: a subclass with the same slots and plain attribute assignment,
which the interpreter turns into direct slot stores; the finished object is then given its real
class (``__class__`` assignment, allowed between classes of the same layout). For eight fields
that takes 0.4x the time of the descriptor calls and 0.25x that of attrs' own frozen ``__init__``.

Generation is split in two, so that a new client pays almost nothing for it: a `Plan` is the
compiled code, made once per process and dialect (see `_convert`), of a factory that returns the
function; `Plan.bind` calls the factory with one client's hooks, navigator and caches, which the
function reads as closure cells (a few microseconds per function). Every client's copy shares one
code object and one globals dict of static values. Generated source is registered with `linecache`
once, so tracebacks through it show the code.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import linecache
import logging
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from ._enums import OpenEnum
from ._kept import Kept
from ._links import Link

__all__ = [
    "CACHED_HREFS",
    "CACHED_HREF_LENGTH",
    "FastPathUnsupported",
    "LinkSpec",
    "Plan",
    "building_class",
    "check_rules",
    "fill_field",
    "fill_namespace",
    "fills_like_link",
    "known_hooks",
    "links_plan",
    "new_link",
    "plan",
    "read_expression",
    "structure_plan",
]

log = logging.getLogger("vbo_async")
_INLINE_CLASS = {str: "str", int: "int"}
CACHED_HREF_LENGTH = 512
"""The longest href a client's caches keep (a server's are about 100 characters): the caches
live as long as the client, and a hostile server must not fill them with megabytes per entry."""
CACHED_HREFS = 4096
"""The most hrefs each of a client's link caches keeps (a `Kept` of two generations of half as
many): at most about 3 MB per cache (a hostile server naming a new resource in every object once
made 65,536 entries, 200 MB per client). Full, a cache drops the hrefs not used for a generation
(2,048 others kept meanwhile) and keeps those in use: a long-lived exporter sweeping more tenants
than that still shares the links of each tenant's jobs, and of resources many tenants link to.
(Caches that stopped adding once full shared nothing for the tenants swept after the first 4,096.)"""
_MISSING = object()


class FastPathUnsupported(Exception):
    """A class breaks a rule the generated functions rely on (the message says which)."""


def check_rules(cls: type[Any]) -> None:
    """Raise `FastPathUnsupported` unless ``cls`` can be filled slot by slot (module docstring)."""
    if not attrs.has(cls) or "__slots__" not in vars(cls):
        raise FastPathUnsupported(f"{cls.__name__} is not a slotted attrs class")
    if hasattr(cls, "__attrs_post_init__"):
        raise FastPathUnsupported(f"{cls.__name__} has __attrs_post_init__")
    for field in attrs.fields(cls):
        where = f"{cls.__name__}.{field.name}"
        if field.converter is not None or field.validator is not None:
            raise FastPathUnsupported(f"{where} has a converter or validator")
        if not field.init:
            raise FastPathUnsupported(f"{where} is init=False")
        default = field.default
        if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
            if default.takes_self:
                raise FastPathUnsupported(f"{where} has a factory taking self")
        elif default is not attrs.NOTHING and default is not None and default != ():
            raise FastPathUnsupported(f"{where} has a default other than None, () or a factory")


def _default_source(field: attrs.Attribute[Any], name: str, namespace: dict[str, Any]) -> str | None:
    """The expression of ``field``'s default (None when it has none), its value kept in
    ``namespace`` under ``name``."""
    default: Any = field.default
    if default is attrs.NOTHING:
        return None
    if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
        namespace[name] = default.factory
        return f"{name}()"
    namespace[name] = default
    return name


def structure_plan(
    cls: type[Any],
    building: type[Any],
    names: Mapping[str, tuple[str, ...]],
    not_a_dict: Callable[[Any], Exception],
    *,
    finish: bool = False,
    label: str = "",
) -> Plan:
    """The plan of a ``(value, type) -> cls`` function reading each field under its wire
    spellings (``names``: attribute -> spellings, the first read first; empty: not on the wire),
    filling an instance of ``building`` (its `building_class`), then, with ``finish``, calling the
    ``__finish`` value of the binding on it (derived values) before it takes its real class.
    Binding it needs the structure hook of every field's type. Raises `FastPathUnsupported` (see
    `check_rules`)."""
    check_rules(cls)
    namespace = fill_namespace()
    namespace.update({"__cls": cls, "__building": building, "__not_a_dict": not_a_dict})
    hooks: list[tuple[str, Any]] = []
    lines = [
        "def structure(o, _=None):",
        "    if o.__class__ is not dict:",
        "        raise __not_a_dict(o)",
        "    g = o.get",
        "    r = __new(__building)",
    ]
    for index, field in enumerate(attrs.fields(cls)):
        spellings = names[field.name]
        if spellings:
            lines.append(f"    v = {read_expression('g', spellings, field)}")
        fill = fill_field(cls, field, spellings, "r", "v", f"__h{index}", namespace, hooks)
        lines += [f"    {line}" for line in fill]
    if finish:
        lines.append("    __finish(r)")
    lines += ["    r.__class__ = __cls", "    return r"]
    title = f"<vbo_async fast structure {cls.__name__}{label}>"
    return plan(lines, namespace, title, "structure", hooks=hooks, params=("__finish",) if finish else ())


def fill_namespace() -> dict[str, Any]:
    """The static names `fill_field`'s statements use (a generated function's namespace starts
    from these)."""
    return {
        "__new": object.__new__,
        "__missing": _MISSING,
        "__fromiso": dt.datetime.fromisoformat,
        "__fromisotime": dt.time.fromisoformat,
    }


def read_expression(getter: str, spellings: tuple[str, ...], field: attrs.Attribute[Any]) -> str:
    """The expression reading ``field``'s value through ``getter`` (an object's ``get``) as the
    structure functions read it: the first spelling present; when none is, None for a field whose
    default is None (absent and ``null`` read alike), else ``__missing``."""
    read = "None" if field.default is None else "__missing"
    for key in reversed(spellings):
        read = f"{getter}({key!r})" if read == "None" else f"{getter}({key!r}, {read})"
    return read


def fill_field(
    cls: type[Any],
    field: attrs.Attribute[Any],
    spellings: tuple[str, ...],
    target: str,
    value: str,
    hook_name: str,
    namespace: dict[str, Any],
    hooks: list[tuple[str, Any]],
) -> list[str]:
    """Statements setting ``<target>.<field>`` from the local ``value`` (what `read_expression`
    read; unused when ``spellings`` is empty: the field then takes its default): the default when
    it is ``__missing`` (a required field raises `KeyError`), else ``value`` structured as the
    field's type (inline where cheap, else with the hook the binding puts under ``hook_name``)."""
    default = _default_source(field, f"{hook_name}_default", namespace)
    if not spellings:
        if default is None:
            raise FastPathUnsupported(f"{cls.__name__}.{field.name} is required but not on the wire")
        return [f"{target}.{field.name} = {default}"]
    store = _store(field, hook_name, namespace, hooks, target=f"{target}.{field.name}", value=value)
    if field.default is None:
        return store
    # Absent must give the default, not the hook's answer to None.
    missing = f"raise KeyError({spellings[0]!r})" if default is None else f"{target}.{field.name} = {default}"
    return [f"if {value} is __missing:", f"    {missing}", "else:", *(f"    {line}" for line in store)]


def _store(
    field: attrs.Attribute[Any],
    hook_name: str,
    namespace: dict[str, Any],
    hooks: list[tuple[str, Any]],
    *,
    target: str,
    value: str,
) -> list[str]:
    """Statements structuring the local ``value`` into ``target`` (inline where cheap, else the
    hook of the field's type, which the binding puts under ``hook_name``)."""
    tp = field.type
    members = typing.get_args(tp) if typing.get_origin(tp) in (typing.Union, types.UnionType) else ()
    optional = type(None) in members
    inner = next(t for t in members if t is not type(None)) if members else tp
    hooks.append((hook_name, inner))
    v = value
    call = f"{hook_name}({v}, None)"
    none = f" or {v} is None" if optional else ""
    if inner is bool:
        # v1 sends "true"/"false": recognised here without a call; anything else goes to the hook.
        return [
            f"{target} = ({v} if {v} is True or {v} is False{none} else "
            f'True if {v} == "true" else False if {v} == "false" else {call})'
        ]
    if inner is dt.datetime:
        # The common case inline: an ISO string Python parses, with a zone. Anything else (no
        # zone, a lower-case z, more than 6 fractional digits, not a string) goes to the hook.
        lines = []
        if optional:
            lines += [f"if {v} is None:", f"    {target} = None", f"elif {v}.__class__ is str:"]
        else:
            lines += [f"if {v}.__class__ is str:"]
        lines += [
            "    try:",
            f"        d = __fromiso({v})",
            "    except ValueError:",
            f"        d = {call}",
            "    else:",
            "        if d.tzinfo is None:",
            f"            d = {call}",
            f"    {target} = d",
            "else:",
            f"    {target} = {call}",
        ]
        return lines
    if inner is dt.time:
        # A time of day ``HH:MM[:SS]`` Python parses, inline; anything else goes to the hook.
        if optional:
            lines = [f"if {v} is None:", f"    {target} = None", f"elif {v}.__class__ is str:"]
        else:
            lines = [f"if {v}.__class__ is str:"]
        lines += [
            "    try:",
            f"        {target} = __fromisotime({v})",
            "    except ValueError:",
            f"        {target} = {call}",
            "else:",
            f"    {target} = {call}",
        ]
        return lines
    if inner in _INLINE_CLASS:
        return [f"{target} = {v} if {v}.__class__ is {_INLINE_CLASS[inner]}{none} else {call}"]
    if isinstance(inner, type) and issubclass(inner, OpenEnum):
        namespace[f"{hook_name}_members"] = inner._value2member_map_
        lookup = f"({hook_name}_members.get({v}) if {v}.__class__ is str else None) or {call}"
        if optional:
            return [f"{target} = None if {v} is None else {lookup}"]
        return [f"{target} = {lookup}"]
    if optional:
        return [f"{target} = None if {v} is None else {call}"]
    return [f"{target} = {call}"]


@attrs.frozen
class LinkSpec:
    """How one field of a ``*Links`` class is read: its init alias, wire spellings (empty: never
    read), the `Link` class to build and the model it decodes into (None: raw JSON)."""

    alias: str
    spellings: tuple[str, ...]
    link_class: type[Link[Any]]
    target: type[Any] | None


def links_plan(
    cls: type[Any],
    building: type[Any],
    spec: list[LinkSpec],
    error: Callable[[str, Any], Exception],
    *,
    label: str = "",
) -> Plan:
    """The plan of a ``(value, type) -> cls`` function for a ``*Links`` class (``spec`` in field
    order); binding it needs the navigator links follow through (``__nav``).

    An entry that is missing, ``null`` or ``{"href": null}`` gives ``None``, as does (with a
    warning) one that is not ``{"href": "..."}``; ``error("_links", value)`` builds the exception
    for a ``_links`` that is not an object. Used by the fast and the detailed converters alike.
    Links to shared resources (those decoded into a model) are kept per href in a cache of each
    binding (links hold their client, so no two clients share one), up to `CACHED_HREF_LENGTH`
    characters.
    """
    check_rules(cls)
    namespace: dict[str, Any] = {
        "__cls": cls,
        "__building": building,
        "__new": object.__new__,
        "__empty": cls(),  # immutable and client-free: shared by every binding
        "__error": error,
        "__absent": _absent_link,
    }
    caches: list[str] = ["__warned"]  # the malformed entries warned of (`_absent_link`)
    lines = [
        "def structure(o, _=None):",
        "    if o.__class__ is not dict:",
        "        if o is None:",
        "            return __empty",
        "        raise __error('_links', o)",
        "    if not o:",
        "        return __empty",
        "    g = o.get",
        "    r = __new(__building)",
    ]
    for index, (field, link) in enumerate(zip(attrs.fields(cls), spec, strict=True)):
        if not link.spellings:
            lines.append(f"    r.{field.name} = None")
            continue
        namespace[f"__L{index}"] = link.link_class
        namespace[f"__T{index}"] = link.target
        key = link.spellings[0]
        lines.append(f"    e = g({key!r})")
        for other in link.spellings[1:]:
            lines.append(f"    if e is None: e = g({other!r})")
        make = new_link("l", f"__L{index}", link.link_class, "h", key, "__nav", f"__T{index}")
        if key != "self" and link.link_class is Link and link.target is not None:
            # Links to shared resources (a job's organization, repository) repeat across a
            # sweep: one immutable Link per href serves them all. A link followed as raw JSON
            # (a session's log, a job's copy job) names a resource of its object's own: kept,
            # it would only fill the cache with one entry per session the server ever ran.
            cache = f"__c{index}"
            caches.append(cache)
            make = [
                f"l = {cache}_get(h)",
                "if l is None:",
                f"    l = {cache}.recall(h)",
                "    if l is None:",
                *(f"        {line}" for line in make),
                f"        if len(h) <= {CACHED_HREF_LENGTH}:",
                f"            {cache}.keep(h, l)",
            ]
        lines += [
            "    if e is None:",
            f"        r.{field.name} = None",
            "    else:",
            "        h = e.get('href') if e.__class__ is dict else e",
            "        if h.__class__ is str:",
            *(f"            {line}" for line in make),
            f"            r.{field.name} = l",
            "        else:",
            f"            r.{field.name} = __absent(h, {key!r}, e, __warned)",
        ]
    lines += ["    r.__class__ = __cls", "    return r"]
    title = f"<vbo_async fast links {cls.__name__}{label}>"
    return plan(lines, namespace, title, "structure", caches=caches, params=("__nav",))


def new_link(
    variable: str,
    class_name: str,
    link_class: type[Any],
    href: str,
    relation: str,
    navigator: str,
    target: str,
) -> list[str]:
    """Statements setting ``variable`` to a new link (the names are those of the generated code).

    A `Link` whose class adds nothing to `Link`'s construction (no ``__init__``, ``__new__`` or
    slots of its own, as `CollectionLink`) is made as `Link.__init__` makes it, by four slot
    stores into a bare instance: no call to the class, no frame for ``__init__``. Any other link
    class is called. A test compares both ways for every link class the models use."""
    if not fills_like_link(link_class):
        return [f"{variable} = {class_name}({href}, {relation!r}, {navigator}, {target})"]
    return [
        f"{variable} = __new({class_name})",
        f"{variable}._href = {href}",
        f"{variable}._relation = {relation!r}",
        f"{variable}._navigator = {navigator}",
        f"{variable}._target = {target}",
    ]


def fills_like_link(link_class: type[Any]) -> bool:
    """Whether instances of ``link_class`` are built exactly by `Link.__init__`'s four stores."""
    if not (isinstance(link_class, type) and issubclass(link_class, Link)):
        return False
    for klass in link_class.__mro__[: link_class.__mro__.index(Link)]:
        if vars(klass).get("__slots__") != () or {"__init__", "__new__", "__setattr__"} & set(vars(klass)):
            return False
    return Link.__new__ is object.__new__ and Link.__setattr__ is object.__setattr__


def _absent_link(href: Any, key: str, entry: Any, warned: Kept[tuple[str, str], None]) -> None:
    """An entry that is not ``{"href": "..."}``: ``null`` is an absent link; anything else (a
    number, a HAL array of links) is ignored with a warning, since links are hints and one bad
    entry must not make the whole resource unreadable. The warning names the kind of entry, not
    its text: a server may echo a secret anywhere. ``warned`` (one per client's binding) holds
    the relations and kinds warned of: the next entries like one are logged at debug level, so a
    server whose every job carries one makes one warning, not one per job on every listing."""
    if href is not None:
        kind = f"an href of type {type(href).__name__}" if entry.__class__ is dict else type(entry).__name__
        if (key, kind) in warned:
            log.debug("ignoring the malformed %r link: %s (expected {'href': string})", key, kind)
        else:
            warned.keep((key, kind), None)
            log.warning(
                "ignoring the malformed %r link: %s (expected {'href': string}); "
                "the next ones like it are logged at debug level",
                key,
                kind,
            )
    return None


@attrs.frozen(eq=False)
class Plan:
    """A generated function, compiled once, with what every client's copy of it shares.

    The source defines a factory, ``__bind(<params>)``, around the function: what differs from
    client to client (structure hooks, the navigator, caches, a finisher) arrives as the factory's
    parameters and is read by the function as closure cells; what does not (classes, defaults,
    enum tables) sits in one globals dict, ``static``, shared by every copy. So each client has
    its own function object, but all copies share one code object and one globals dict: the
    specialising interpreter's caches for global names stay valid whichever client runs the code
    (with a globals dict per client, as before, they were invalidated each time another client's
    copy ran, and every global name was looked up again).

    ``hooks`` names, per parameter, the type whose structure hook `bind` passes there;
    ``caches`` are parameters given a new `Kept` per binding (bounded: see `CACHED_HREFS`), each
    with its ``get`` as a parameter of its own, named after it with ``_get`` (a hit is that
    one call); ``params`` lists the others,
    which `bind` takes by name.
    """

    factory: Callable[..., Callable[..., Any]]
    name: str
    hooks: tuple[tuple[str, Any], ...] = ()
    caches: tuple[str, ...] = ()
    params: tuple[str, ...] = ()

    def bind(
        self,
        hook_for: Callable[[Any], Any] | None = None,
        /,
        *,
        known: Sequence[tuple[Any, Any]] | None = None,
        **values: Any,
    ) -> Callable[..., Any]:
        """A new copy of the function: ``hook_for(tp)`` for each hook, a new `Kept` for each cache,
        and ``values`` for the other parameters (by name).

        ``known`` is `known_hooks` of ``self`` for a ``hook_for`` some of whose hooks are the
        same whatever the binding: it is asked only for the others (a test compares both ways)."""
        if len(values) != len(self.params) or (self.hooks and hook_for is None):
            raise TypeError(
                f"binding {self.name} needs hooks and {sorted(self.params)}, got {sorted(values)}"
            )
        if hook_for is None:
            arguments = []
        elif known is not None:
            arguments = [hook_for(tp) if hook is None else hook for hook, tp in known]
        else:
            arguments = [hook_for(tp) for _, tp in self.hooks]
        kept: list[Kept[Any, Any]] = [Kept(CACHED_HREFS // 2) for _ in self.caches]
        arguments += [*kept, *(cache.get for cache in kept)]
        arguments += [values[name] for name in self.params]  # the factory's order (see `plan`)
        return self.factory(*arguments)


def known_hooks(plan_: Plan, fixed: Mapping[Any, Any]) -> tuple[tuple[Any, Any], ...]:
    """Per hook of ``plan_``, ``(hook, type)``: the hook ``fixed`` gives for the type (one that
    is the same for every binding), or None where `Plan.bind` must ask for it. Worked out once
    per plan, it spares each binding a call per fixed hook."""
    return tuple((fixed.get(tp), tp) for _, tp in plan_.hooks)


def plan(
    lines: list[str],
    namespace: dict[str, Any],
    title: str,
    name: str,
    *,
    hooks: list[tuple[str, Any]] | tuple[tuple[str, Any], ...] = (),
    caches: list[str] | tuple[str, ...] = (),
    params: tuple[str, ...] = (),
) -> Plan:
    """Compile the function ``name`` defined by ``lines``, inside a factory taking the hook,
    cache and other ``params`` names (see `Plan`); ``namespace`` holds the static values. The
    source is registered with `linecache` under a file name derived from ``title`` and the
    source, so tracebacks through the function show it."""
    arguments = [*(hook for hook, _ in hooks), *caches, *(f"{cache}_get" for cache in caches), *params]
    source = "\n".join(
        [f"def __bind({', '.join(arguments)}):", *(f"    {line}" for line in lines), f"    return {name}"]
    )
    source += "\n"
    filename = f"{title[:-1]} {hashlib.sha1(source.encode()).hexdigest()[:8]}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    globals_ = dict(namespace)
    exec(_compiled(source, filename), globals_)
    factory = globals_.pop("__bind")
    return Plan(factory, name, tuple(hooks), tuple(caches), params)


@functools.lru_cache(maxsize=512)
def _compiled(source: str, filename: str) -> types.CodeType:
    """The code of a generated function: the same for every client (only the namespace it runs
    in differs), so it is compiled once per process, not once per client. The file name is one
    per distinct source, so its `linecache` entry never goes stale."""
    return compile(source, filename, "exec")


def building_class(cls: type[Any]) -> type[Any]:
    """A subclass of the frozen attrs class ``cls`` whose instances accept plain attribute
    assignment while a fast structure function fills them (see the module docstring).

    Overriding both ``__setattr__`` and ``__delattr__`` with ``object``'s gives the class the
    generic attribute setter, which lets the interpreter specialise each assignment into a slot
    store. It adds no slots, so its instances can take ``cls`` as their class once filled.
    `_convert` builds one per model class at import, shared by every client's converter.
    """
    namespace = {
        "__slots__": (),
        "__setattr__": object.__setattr__,
        "__delattr__": object.__delattr__,
        "__module__": cls.__module__,
        "__qualname__": f"{cls.__qualname__}._Building",
    }
    return type(f"_Building{cls.__name__}", (cls,), namespace)
