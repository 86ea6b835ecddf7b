"""`Dialect`: everything one API version says differently, as data (pure, no I/O).

A dialect names its entry-point paths, the wire spellings of model fields (with older spellings
real servers still send), the values derived after decoding (ids read from links, links that the
server sends dead or not at all), the extra fields of token requests, the logout path, the shape
of job actions and how large a page may be. Each version is written as the difference from the
one before it (``V7 = V6.evolve(...)``); client, fetcher, decoder and poller read dialects and
never name a version themselves.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import quote, unquote

import attrs

from .._exceptions import ConfigError, NotSupportedError

__all__ = [
    "Derivation",
    "Dialect",
    "IdFromLink",
    "LinkFromId",
    "LinkThrough",
    "Route",
    "camel",
]

JobAction = Literal["start", "stop", "enable", "disable"]
WireNames = Mapping[type, Mapping[str, tuple[str, ...]]]
"""Per model class: attribute -> its wire spellings, the first one written and read first, the
others read when it is absent. An empty tuple: the field is not on this version's wire (it is
derived, or belongs to another version)."""

_FORMATTER = string.Formatter()
_VERSION_SEGMENT = re.compile(r"[vV][0-9]+")
"""A path segment naming an API version (``v6``)."""
_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*")
"""The characters ``quote`` never escapes (GUIDs, names such as ``job-1``)."""


def camel(name: str) -> str:
    """The default wire name of an attribute: ``retry_number`` -> ``retryNumber``, ``links`` ->
    ``_links``."""
    if name == "links":
        return "_links"
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in _FORMATTER.parse(template) if name}


def quote_segment(value: str) -> str:
    """``quote(value, safe="")``: ``value`` itself when it has nothing to escape (every id of a
    request: a match costs a third of ``quote``; a test compares the two)."""
    return value if _UNRESERVED.fullmatch(value) else quote(value, safe="")


@attrs.frozen
class Route:
    """A path below ``/{version}/`` with ``{name}`` placeholders, and query parameters whose
    values may be placeholders too: ``Route("Jobs", query=(("organizationId", "{organization}"),))``.

    Placeholders are filled with ids: quoted as one path segment, or as a query value.
    """

    path: str
    query: tuple[tuple[str, str], ...] = ()

    @property
    def names(self) -> frozenset[str]:
        """The placeholders the route needs."""
        found = _placeholders(self.path)
        for _, value in self.query:
            found |= _placeholders(value)
        return frozenset(found)

    def render(self, **values: str) -> str:
        """The path and query (no leading slash) with every placeholder filled."""
        path = self.path.format(**{k: quote_segment(v) for k, v in values.items()})
        if not self.query:
            return path
        pairs = "&".join(
            f"{quote(key, safe='')}={quote(value.format(**values), safe='')}" for key, value in self.query
        )
        return f"{path}?{pairs}"

    def value_in(self, path: str) -> str | None:
        """`render` undone for the route's path placeholder: its value in ``path`` (unquoted) when
        ``path`` ends with the route's path right after a version segment
        (``/v6/Jobs/{job}/JobSessions``; literal segments compared ignoring case); else None."""
        template = self.path.split("/")
        segments = path.split("/")
        if len(segments) < len(template) + 1 or not _VERSION_SEGMENT.fullmatch(segments[-len(template) - 1]):
            return None
        value = None
        for pattern, segment in zip(template, segments[-len(template) :], strict=True):
            if pattern.startswith("{") and pattern.endswith("}"):
                value = unquote(segment)
            elif pattern.lower() != segment.lower():
                return None
        return value


@attrs.frozen
class IdFromLink:
    """Fill ``model.field`` from the last path segment of the ``relation`` link when the wire has
    no such field (a v1 job's ``organization_id`` from its ``organization`` link)."""

    model: type
    field: str
    relation: str


@attrs.frozen
class LinkFromId:
    """Replace the ``relation`` link of ``model`` by one built from its id, because the server's
    own is dead or missing: ``/{version}/`` + ``route`` with ``{id}`` filled. None when the id is
    empty (the route's filter, empty, would ask for the whole unfiltered listing)."""

    model: type
    relation: str
    route: Route


@attrs.frozen
class LinkThrough:
    """The ``relation`` link of ``model`` is reached in two steps: follow the model's ``via``
    link, then the ``then`` link of what it leads to (a v6+ job's proxy is its repository's)."""

    model: type
    relation: str
    via: str
    then: str


Derivation = IdFromLink | LinkFromId | LinkThrough


@attrs.frozen(kw_only=True)
class Dialect:
    """One API version's wire format and paths. Build a new version with `evolve`.

    ``paths`` maps an operation name (``"organization_jobs"``) to its `Route`; an operation the
    version lacks is absent and `route` raises `NotSupportedError`. ``query_context`` names, per
    model, fields filled from a query parameter of the request that listed the items (a v7
    session listed by ``?jobId=`` belongs to that job).
    """

    version: str
    paths: Mapping[str, Route]
    names: WireNames = attrs.field(factory=dict)
    derived: tuple[Derivation, ...] = ()
    query_context: Mapping[type, Mapping[str, str]] = attrs.field(factory=dict)
    path_context: Mapping[type, Mapping[str, Route]] = attrs.field(factory=dict)
    """Per model, fields filled from the path of the request that listed the items when it is
    the route's (below the version segment, ignoring case): the route's one placeholder, its
    segment unquoted (a session listed by a v1/v6 job's ``Jobs/{id}/JobSessions`` is that job's)."""
    off_wire: Mapping[type, frozenset[str]] = attrs.field(factory=dict)
    """Per model, fields this version's wire does not have that are read, and written by
    ``to_wire``, under a later version's name all the same, because their value may come from
    elsewhere than the wire (a v6/v7 session's job id from the request that listed it). ``to_wire``
    leaves such a field out when the link an `IdFromLink` derives it from gives the same value:
    what it writes is the version's own wire wherever that keeps the value."""
    token_form: Mapping[str, str] = attrs.field(factory=dict)
    """Extra fields of every grant (v7+ ``disable_antiforgery_token=true``)."""
    logout: Route | None = None
    actions: Literal["action-object", "verb-path"] = "action-object"
    """v1-v5 ``POST Jobs/{id}/Action`` with ``{"start": null}``; v6+ ``POST Jobs/{id}/start``."""
    start_returns_session: bool = False
    page_limit: int | None = None
    """The ``limit`` a list asks for (the server's maximum); None: the version does not page
    its lists, no ``limit`` is sent."""
    organization_jobs_filter: bool = False
    """``organization_jobs`` is a filter of ``/Jobs`` (v8), whose answer for an organization the
    server does not know is an empty list, not a 404: an empty answer is checked."""
    session_filters: frozenset[str] = frozenset()
    """Query parameters ``/JobSessions`` honours (beyond offset and limit)."""
    health_pages: tuple[int, ...] = ()
    """The ``limit`` of each page of a job's newest sessions `VBOClient.job_health` may read,
    in order: a later page (from the newest session again, larger) is asked only when the one
    before was full and held no finished run. Empty: the version does not page, its one answer
    holds every session."""
    link_routes: Mapping[type, str] = attrs.field(factory=dict)
    """Per model, the operation (``"organization"``) whose route's query a followed link to one
    such resource carries too (`link_query`): v7/v8 answer an organization's backup state, and
    v7 a proxy's threads and throttling, only in the extended view their routes ask for, so a
    link must ask the same or the resource decodes differently depending on how it was reached.

    The parameters are set on the server's href once it is rebased (`ApiRoot.rebase`, which
    refuses hrefs outside the API root as for any link), not on a URL rebuilt from the id the
    href ends with: the resource asked for stays the one the server named (an href whose last
    segment is not the id is not turned into a request for another resource), nothing about
    an href's safety changes, and the route stays the one place the parameter is written."""

    def evolve(
        self,
        *,
        version: str,
        paths: Mapping[str, Route | None] | None = None,
        names: WireNames | None = None,
        derived: tuple[Derivation, ...] = (),
        replaces: tuple[tuple[type, str], ...] = (),
        query_context: Mapping[type, Mapping[str, str]] | None = None,
        **changes: Any,
    ) -> Dialect:
        """The next version: ``paths`` and ``names`` are merged into this one's (a path mapped
        to None is removed), ``derived`` is appended after dropping the derivations of the
        (model, field or relation) pairs in ``replaces``, other fields are replaced."""
        merged_paths = {**self.paths, **(paths or {})}
        merged_names = {cls: dict(fields) for cls, fields in self.names.items()}
        for cls, fields in (names or {}).items():
            merged_names.setdefault(cls, {}).update(fields)
        kept = tuple(d for d in self.derived if (d.model, _target(d)) not in set(replaces))
        context = {cls: dict(params) for cls, params in self.query_context.items()}
        for cls, params in (query_context or {}).items():
            context.setdefault(cls, {}).update(params)
        return attrs.evolve(
            self,
            version=version,
            paths={key: route for key, route in merged_paths.items() if route is not None},
            names=merged_names,
            derived=kept + derived,
            query_context=context,
            **changes,
        )

    @property
    def lists_recent_sessions(self) -> bool:
        """Whether the version lists every job's sessions ended since a moment in one listing
        (``sessions_since``, v6+); v1 reads them job by job."""
        return "sessions_since" in self.paths

    def link_query(self, target: type | None) -> tuple[tuple[str, str], ...]:
        """The query parameters a followed link to one ``target`` carries (`link_routes`):
        empty unless the version's route for that resource names some."""
        operation = None if target is None else self.link_routes.get(target)
        route = None if operation is None else self.paths.get(operation)
        return () if route is None else route.query

    def route(self, operation: str) -> Route:
        """The route of ``operation``; `NotSupportedError` naming the version when it has none."""
        found = self.paths.get(operation)
        if found is None:
            raise NotSupportedError(
                f"API {self.version} has no {operation.replace('_', ' ')} operation",
                version=self.version,
                operation=operation,
            )
        return found

    def path(self, operation: str, **ids: str) -> str:
        """``/{version}/...`` of ``operation`` with its ids filled (a server-relative href)."""
        return f"/{self.version}/{self.route(operation).render(**ids)}"

    def wire_names(self, cls: type) -> dict[str, tuple[str, ...]]:
        """Attribute -> wire spellings for every field of ``cls`` (camelCase unless overridden)."""
        overrides = self.names.get(cls, {})
        return {a.name: overrides.get(a.name, (camel(a.name),)) for a in attrs.fields(cls)}

    def derivations(self, cls: type) -> tuple[Derivation, ...]:
        """The derivations that apply to ``cls``, in order."""
        return tuple(d for d in self.derived if d.model is cls)

    def action(self, job_id: str, action: JobAction, *, full: bool) -> tuple[str, Any]:
        """(server-relative path, JSON body) of a job action."""
        if self.actions == "action-object":
            if full:
                raise NotSupportedError(
                    f"API {self.version} cannot start a full run (full=True)",
                    version=self.version,
                    operation="start_job",
                )
            return self.path("job_action", job=job_id), {action: None}
        body = {"full": full} if action == "start" else None
        return self.path(f"job_{action}", job=job_id), body

    def check(self) -> None:
        """Raise `ConfigError` when a derivation names a field or relation its model lacks (a
        developer error, checked when the registry is built)."""
        for derivation in self.derived:
            fields = {a.name for a in attrs.fields(derivation.model)}
            if isinstance(derivation, IdFromLink) and derivation.field not in fields:
                raise ConfigError(f"{self.version}: {derivation.model.__name__} has no {derivation.field}")
            links_type: Any = attrs.fields_dict(derivation.model)["links"].type
            links = {a.name for a in attrs.fields(links_type)}
            if derivation.relation not in links:
                raise ConfigError(
                    f"{self.version}: {derivation.model.__name__} has no link {derivation.relation}"
                )
        for model, operation in self.link_routes.items():
            route = self.paths.get(operation)
            if route is not None and any(_placeholders(value) for _, value in route.query):
                raise ConfigError(
                    f"{self.version}: the query of the {operation} route, which links to a "
                    f"{model.__name__} carry, has placeholders"
                )


def _target(derivation: Derivation) -> str:
    return derivation.field if isinstance(derivation, IdFromLink) else derivation.relation
