"""Typed, awaitable HAL links: ``repo = await job.links.repository``.

A `Link` holds the server's href as sent and the navigator of the client that decoded it; it is
rebased onto the client's API root only when followed (a `LinkError` then, before any request).
Following is lazy and goes through the client, so identical GETs in flight are shared. A pickled
link leaves its client behind: unpickled, it is unbound and followed with ``client.follow(link)``.
A `ThroughLink` is reached in two steps (a v6+ job's proxy is its repository's proxy).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator, Sequence
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from ._exceptions import ClientStateError, ConfigError, LinkError, VBOError
from ._urls import quoted

if TYPE_CHECKING:
    from ._urls import ApiRoot

__all__ = ["CollectionLink", "Link", "Navigator", "ThroughLink"]

T_co = TypeVar("T_co", covariant=True)


class Navigator(Protocol):
    """What a link needs from a client to be followed (implemented by the client's fetcher)."""

    @property
    def api_root(self) -> ApiRoot: ...

    def rebase(self, href: str, *, relation: str | None, target: type[Any] | None = None) -> str:
        """``href`` rebased onto `api_root`, or `LinkError` (scrubbed of the client's secrets);
        with the query parameters its version asks for one ``target`` resource."""
        ...

    def hide_secrets(self, error: VBOError) -> None:
        """Scrub the client's secrets from ``error`` (its message, ``url`` and ``href``) in place."""
        ...

    def shown(self, href: str) -> str:
        """``href`` with the client's secrets (password, tokens) scrubbed out, to be shown."""
        ...

    async def fetch_one(self, url: str, target: type[Any] | None) -> Any: ...

    async def fetch_all(self, url: str, target: type[Any]) -> list[Any]: ...

    def iterate(self, url: str, target: type[Any]) -> AsyncIterator[Any]: ...


class Link(Generic[T_co]):
    """A link to one resource; ``await link`` fetches and decodes it into ``T_co``.

    ``href`` is exactly what the server sent; ``url`` is where the client will send the request
    (the href rebased onto the client's base URL, with the query parameters the version asks for
    that resource: v7/v8 organizations and v7 proxies ``extendedView=true``, as
    ``organization()`` and ``proxy()`` ask); `shown_href` is the href without the client's
    secrets, as its repr and pickle show it. Two links are equal when relation and href are.
    Links are immutable: copies are the link itself, and a pickled link is unpickled unbound (its
    client stays behind), to be followed with ``client.follow(link)``. Being read-only, a link is
    covariant: a ``Link[Proxy]`` is a ``Link[object]`` to a function that takes any link.
    """

    __slots__ = ("_href", "_navigator", "_relation", "_target")

    def __init__(
        self, href: str, relation: str, navigator: Navigator | None, target: type[Any] | None
    ) -> None:
        self._href = href
        self._relation = relation
        self._navigator = navigator
        self._target = target

    @property
    def href(self) -> str:
        """The href exactly as the server sent it."""
        return self._href

    @property
    def relation(self) -> str:
        """The link's name as the server sent it (``backupRepository``, ``next``)."""
        return self._relation

    @property
    def target(self) -> type[Any] | None:
        """The model this link decodes into (None: raw JSON)."""
        return self._target

    @property
    def url(self) -> str:
        """The absolute URL this link is followed at; raises `LinkError` for an unsafe href."""
        return self._bound().rebase(self.href, relation=self.relation, target=self._resource())

    def _resource(self) -> type[Any] | None:
        """The model of the one resource `url` names (None: a collection, or raw JSON)."""
        return self._target

    def __await__(self) -> Generator[Any, None, T_co]:
        return self._bound().fetch_one(self.url, self._target).__await__()

    def _bound(self) -> Navigator:
        if self._navigator is None:
            raise ClientStateError(
                f"the {self.relation!r} link is not bound to a client (it was unpickled or built "
                "without one): follow it with client.follow(link)"
            )
        return self._navigator

    def bound_to(self, navigator: Navigator | None) -> Link[T_co]:
        """The same link, followed through ``navigator`` (None: unbound)."""
        return type(self)(self.href, self.relation, navigator, self._target)

    def shown_href(self) -> str:
        """`href` as a link shows it (its repr, its pickle, `to_jsonable`, ``to_wire``): without
        the secrets of the client that decoded it (its password and tokens, ``***`` in their
        place), which a server may have put in an href. A link built without a client, or
        unpickled, shows its href as it is."""
        return self._href if self._navigator is None else self._navigator.shown(self._href)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.shown_href(), self.relation, None, self._target))

    def __copy__(self) -> Link[T_co]:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Link[T_co]:
        return self

    def __repr__(self) -> str:
        return f"{type(self).__name__}(relation={self.relation!r}, href={self.shown_href()!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Link):
            return NotImplemented
        return (self.relation, self.href) == (other.relation, other.href)

    def __hash__(self) -> int:
        return hash((self.relation, self.href))


class CollectionLink(Link[Sequence[T_co]]):
    """A link to a collection: ``await`` gives every item (all pages followed), ``async for``
    streams them page by page. Bare arrays and VBO page objects are both accepted.

    Covariant as `Link` is: a ``CollectionLink[Job]`` is a ``CollectionLink[object]`` to a
    function that takes any collection. Sound because each ``await`` builds a new list that no
    one else holds (so it is typed ``list[T_co]`` where awaited, a ``Link[Sequence[T_co]]`` to
    code that takes any link: a list type, invariant, would not let the link be covariant).
    """

    __slots__ = ()

    def __await__(self) -> Generator[Any, None, list[T_co]]:
        return self._bound().fetch_all(self.url, self._item_type()).__await__()

    def __aiter__(self) -> AsyncIterator[T_co]:
        return self._bound().iterate(self.url, self._item_type())

    def _resource(self) -> type[Any] | None:
        return None

    def _item_type(self) -> type[Any]:
        return self._target if self._target is not None else object


class ThroughLink(Link[T_co]):
    """A link reached in two steps: ``await`` follows ``via``, then the ``then`` link of what it
    leads to. A v6+ job has no proxy link; its ``links.proxy`` is a `ThroughLink` via the job's
    repository to that repository's proxy. When the middle resource has no ``then`` link (a v8
    repository of a proxy pool has no proxy), awaiting raises `LinkError` naming both.

    ``href`` is that of ``via``; ``url`` is where the first of the two requests goes.
    """

    __slots__ = ("_then", "_via")

    def __init__(self, via: Link[Any], then: str, relation: str, target: type[Any] | None) -> None:
        if not isinstance(via, Link):
            raise ConfigError(f"a ThroughLink goes via a Link, got {type(via).__name__}")
        super().__init__(via.href, relation, via._navigator, target)
        self._via = via
        self._then = then

    @property
    def via(self) -> Link[Any]:
        """The first step."""
        return self._via

    @property
    def then(self) -> str:
        """The relation followed from the first step's resource."""
        return self._then

    def next_step(self, middle: Any) -> Link[T_co]:
        """The second step's link, read from the resource ``via`` led to; `LinkError` if absent."""
        links = getattr(middle, "links", None)
        found = getattr(links, self._then, None)
        if not isinstance(found, Link):
            # The href `quoted` (cut), as every LinkError quotes one: a server's may be megabytes.
            error = LinkError(
                f"cannot follow {self.relation!r}: the {self._via.relation!r} resource at "
                f"{quoted(self._via.href)} has no {self._then!r} link",
                href=self._via.href,
                relation=self.relation,
            )
            if self._navigator is not None:  # the href, followed, may quote a secret
                self._navigator.hide_secrets(error)
            raise error
        return found

    def _resource(self) -> type[Any] | None:
        return self._via._resource()  # the url is the first step's

    def __await__(self) -> Generator[Any, None, T_co]:
        self._bound()
        return self._follow().__await__()

    async def _follow(self) -> T_co:
        middle = await self._via
        return await self.next_step(middle)

    def bound_to(self, navigator: Navigator | None) -> Link[T_co]:
        return type(self)(self._via.bound_to(navigator), self._then, self.relation, self._target)

    def __reduce__(self) -> tuple[Any, ...]:
        # The first link as it pickles: unbound, its href as shown (`Link.shown_href`).
        return (type(self), (self._via, self._then, self.relation, self._target))

    def __repr__(self) -> str:
        return f"ThroughLink(relation={self.relation!r}, via={self._via!r}, then={self._then!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ThroughLink):
            return NotImplemented if not isinstance(other, Link) else False
        return (self.relation, self._via, self._then) == (other.relation, other._via, other._then)

    def __hash__(self) -> int:
        return hash((self.relation, self._via, self._then))
