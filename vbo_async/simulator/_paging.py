"""Paging (pure): parsing ``offset``/``limit``, v1 page objects (absolute links) and v6+ ones (relative)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

from ._errors import SimulatedError

__all__ = ["MAX_LIMIT", "MAX_OFFSET", "check_window", "page_object", "parse_window", "relative_page"]

MAX_LIMIT = 10_000
"""The largest ``limit`` the server accepts."""
MAX_OFFSET = 2**31 - 1
"""The largest ``offset`` the server accepts (the vendor's OpenAPI types it int32)."""


def _int_param(query: Mapping[str, str], name: str, default: int, minimum: int, maximum: int | None) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise SimulatedError(400, f"The value '{raw}' is not valid for {name}.") from None
    if value < minimum or (maximum is not None and value > maximum):
        bounds = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise SimulatedError(400, f"The value '{raw}' is not valid for {name}: must be {bounds}.")
    return value


def parse_window(query: Mapping[str, str], default_limit: int) -> tuple[int, int]:
    """``(offset, limit)`` from query parameters (names matched case-insensitively).

    Missing values default to 0 and `default_limit`; non-integers, an offset outside
    0..2147483647 (an int32) and a limit outside 1..10000 raise a 400 `SimulatedError`.
    """
    lowered = {key.lower(): value for key, value in query.items()}
    offset = _int_param(lowered, "offset", 0, 0, MAX_OFFSET)
    limit = _int_param(lowered, "limit", default_limit, 1, MAX_LIMIT)
    return offset, limit


def check_window(offset: int, limit: int | None, default_limit: int) -> tuple[int, int]:
    """``(offset, limit)`` for a Python caller, with the same 400s as `parse_window`."""
    return parse_window(
        {"offset": str(offset), "limit": str(default_limit if limit is None else limit)}, default_limit
    )


def _href(path: str, query: Sequence[tuple[str, str]], offset: int, limit: int) -> str:
    return f"{path}?{urlencode([*query, ('offset', str(offset)), ('limit', str(limit))])}"


def relative_page(
    results: list[dict[str, Any]],
    total: int,
    *,
    offset: int,
    limit: int,
    path: str,
    query: Sequence[tuple[str, str]] = (),
    next_path: str | None = None,
) -> dict[str, Any]:
    """A v6+ page: ``offset``, ``limit``, ``results`` and server-relative ``self``/``next`` links.

    `path` is the collection's path (``/v8/Jobs``) and `query` the filters the request applied;
    ``next`` appears only when items remain, on `next_path` when given (see
    `ApiVersion.sessions_next_version`). No ``first``/``prev``/``totalCount`` (never seen on
    v6+ servers).
    """
    links = {"self": {"href": _href(path, query, offset, limit)}}
    if offset + limit < total:
        links["next"] = {"href": _href(next_path or path, query, offset + limit, limit)}
    return {"offset": offset, "limit": limit, "results": results, "_links": links}


def page_object(
    results: list[dict[str, Any]], total: int, *, offset: int, limit: int, url: str
) -> dict[str, Any]:
    """A v1 page: ``offset``, ``limit``, ``results`` and the links that make sense.

    `url` is the absolute URL of the collection without a query; ``first`` and ``prev`` appear
    when `offset` > 0, ``next`` only when items remain after this page. There is no ``last``.
    """
    links: dict[str, dict[str, str]] = {}
    if offset > 0:
        links["first"] = {"href": f"{url}?offset=0&limit={limit}"}
        links["prev"] = {"href": f"{url}?offset={max(offset - limit, 0)}&limit={limit}"}
    links["self"] = {"href": f"{url}?offset={offset}&limit={limit}"}
    if offset + limit < total:
        links["next"] = {"href": f"{url}?offset={offset + limit}&limit={limit}"}
    return {"offset": offset, "limit": limit, "results": results, "_links": links}
