"""Reading a collection body: a bare JSON array or a VBO page object (pure, no I/O)."""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import parse_qsl

import orjson

from ._exceptions import DecodeError
from ._urls import split_url

__all__ = [
    "count_containers",
    "items_key",
    "more_containers_than",
    "page_identity",
    "page_key",
    "split_page",
    "unread",
    "with_limit",
]


def page_identity(url: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """What makes two page URLs the same page: the path (servers route case-insensitively) and
    the non-empty query parameters (names case-insensitive, order and empty parameters ignored),
    so ``?offset=30&&limit=30&`` and ``?limit=30&offset=30`` are one page."""
    parts = split_url(url)
    pairs = parse_qsl(parts.query, keep_blank_values=False)
    return parts.path.lower(), tuple(sorted((key.lower(), value) for key, value in pairs))


def page_key(url: str) -> bytes:
    """A digest of `page_identity` (16 bytes), what a listing keeps of each page it read to find
    a loop: the identity itself holds the href's text, up to 64 KiB a page a server chooses."""
    return hashlib.blake2b(repr(page_identity(url)).encode(), digest_size=16).digest()


def items_key(items: list[Any]) -> bytes | None:
    """A digest of items that have no id (raw JSON, or models without one), 16 bytes: what a
    listing keeps of each page to find one that brings nothing new (a server that ignores the
    offset answers the same page again under a new next link). Equal items give equal keys;
    None for items it cannot digest (JSON nested deeper than ``orjson`` writes)."""
    try:
        text = orjson.dumps(items, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # models (attrs, not JSON) and JSON too deep to write again
        try:  # models hash by value (str hashes are salted: no server can aim at a collision)
            text = hash(tuple(items)).to_bytes(8, "big", signed=True)
        except TypeError:
            return None
    return hashlib.blake2b(text, digest_size=16).digest()


def unread(items: list[Any], ids: set[str], *, by_tenant: bool = False) -> list[Any]:
    """The items whose ``id`` is not in ``ids`` yet, ignoring case, once each, in order (the
    first spelling kept); their ids are added lower-cased. With ``by_tenant`` (items that name
    their organization: jobs), an item is one already read only when its organization is the same
    too: a server-wide ``GET /Jobs`` may list one job id under two tenants, on two pages as on
    one, and each tenant of a batched sweep keeps its own (as swept alone).

    A later page may repeat items of the pages before it: a resource added meanwhile shifts a
    listing cut by offset, and a next link to another API version may lead to a collection that
    version does not page (v7's ``/Jobs`` answers every job whatever the offset). Ids are GUIDs,
    which a .NET server may write in either case, from one page to the next too. An item without
    an id is always fresh: nothing tells it from another."""
    fresh = []
    for item in items:
        key = item.id
        if key is None:  # a row without an id (v7+ selected items may have none) is no repeat
            fresh.append(item)
            continue
        if by_tenant and (tenant := item.organization_id) is not None:
            key = f"{key}\x00{tenant}"  # no id holds a NUL: never the key of an item without one
        folded = key.lower() if key.__class__ is str else key
        if folded not in ids:
            # An id already in lower case (nearly every one) is held once, not with its copy.
            ids.add(key if folded == key else folded)
            fresh.append(item)
    return fresh


def count_containers(body: bytes) -> int:
    """How many JSON objects and arrays ``body`` can hold at most (its ``{`` and ``[`` bytes,
    strings included): an upper bound found without parsing, in C."""
    return body.count(b"{") + body.count(b"[")


def more_containers_than(body: bytes, limit: int) -> bool:
    """Whether parsing ``body`` could build more than ``limit`` JSON objects and arrays.

    Every container the parser builds takes two bytes (its brackets), so a body of at most
    ``2 * limit`` bytes cannot: it is not counted. A longer body is judged by
    `count_containers`, an upper bound. (A body that is not JSON is refused by the parser; what
    it builds before it finds out also closed its brackets, but for the few its nesting limit
    leaves open.) Counting scans the body twice, about half the time ``orjson.loads`` takes to
    parse it: too dear for the everyday page far below the bound."""
    if len(body) <= 2 * limit:
        return False
    found = body.count(b"{")
    return found > limit or found + body.count(b"[") > limit


def with_limit(url: str, limit: int | None) -> str:
    """``url`` asking for pages of ``limit`` items, unless it already names a ``limit`` (any
    case) or ``limit`` is None (the version does not page)."""
    if limit is None:
        return url
    query = split_url(url).query
    # The everyday URL's query is not parsed: a key reads "limit" only if the text holds it, or
    # holds an escape that may decode to it (a test compares this with always parsing).
    named = "limit" in query.lower() or "%" in query
    if named and any(key.lower() == "limit" for key, _ in parse_qsl(query, keep_blank_values=True)):
        return url
    return f"{url}{'&' if query else '?'}limit={limit}"


def split_page(data: Any, *, url: str | None = None) -> tuple[list[Any], str | None, str]:
    """(items, next href or None, JSON path of the items) of a collection body.

    A bare array is one complete page. A page object carries ``results`` and, while more items
    remain, ``_links.next.href``; ``offset``/``limit``/``setId`` are not needed to follow it.
    """
    if data.__class__ is list:
        return data, None, "$"
    if data.__class__ is not dict:
        raise DecodeError(f"expected an array or a page object, got {type(data).__name__}", path="$", url=url)
    if "results" not in data:
        raise DecodeError(
            "expected an array or a page object with 'results', got an object without it",
            path="$",
            url=url,
        )
    results = data["results"]
    if results is None:
        results = []
    if results.__class__ is not list:
        raise DecodeError(
            f"page 'results' must be an array, got {type(results).__name__}",
            path="$.results",
            url=url,
        )
    return results, _next_href(data.get("_links"), url), "$.results"


def _next_href(links: Any, url: str | None) -> str | None:
    """The ``next`` href of a page's ``_links`` (None: the last page), read as a resource's links
    are (``{"href": ...}`` or the href itself). Links the client cannot read are a `DecodeError`:
    taken for the last page, they would end the listing with items left unread.

    Only an absent href ends the listing: no ``next``, ``null``, ``{"href": null}`` or ``{}``
    (that one with its null left out, as serializers told to omit nulls write it). An empty href
    names no page: it is one the client cannot read, not the last page."""
    if links is None:
        return None
    if links.__class__ is not dict:
        raise DecodeError(
            f"page '_links' must be an object, got {type(links).__name__}", path="$._links", url=url
        )
    entry = links.get("next")
    href = entry.get("href") if entry.__class__ is dict else entry
    if href is None or (href.__class__ is str and href):
        return href
    where = "$._links.next.href" if entry.__class__ is dict else "$._links.next"
    why = "an empty href" if href.__class__ is str else f"no usable href ({type(href).__name__})"
    raise DecodeError(f"page link 'next' has {why}", path=where, url=url)
