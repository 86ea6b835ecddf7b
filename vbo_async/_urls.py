"""The API root, and rebasing the server's hrefs onto it (pure, no I/O).

A v1–v5 server writes its own host name into every href (``https://support.east.local:4443/v1/...``),
which the client often cannot reach and must never send its token to. So only the part of an href
from the ``/{api_version}/`` segment on is kept, and joined to the client's own base URL.
"""

from __future__ import annotations

from urllib.parse import unquote, urljoin, urlsplit

import attrs

from ._exceptions import ConfigError, LinkError

__all__ = ["ApiRoot"]

_FORBIDDEN_CHARS = frozenset("\\\x00\r\n\t #")


@attrs.frozen
class ApiRoot:
    """Where the API lives: ``base_url`` (scheme, host, optional path prefix) and the version.

    ``root`` is ``{base_url}/{api_version}`` without a trailing slash; every URL the client
    requests starts with ``root + "/"``.
    """

    base_url: str
    api_version: str
    root: str = attrs.field(init=False)
    _marker: str = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        base = self.base_url.rstrip("/")
        parts = urlsplit(base)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(f"base_url must be an absolute http(s) URL, got {self.base_url!r}")
        if parts.query or parts.fragment:
            raise ConfigError("base_url must not carry a query or a fragment")
        version = self.api_version.strip("/")
        if not version or "/" in version:
            raise ConfigError(f"api_version must be one path segment, got {self.api_version!r}")
        object.__setattr__(self, "base_url", base)
        object.__setattr__(self, "api_version", version)
        object.__setattr__(self, "root", f"{base}/{version}")
        object.__setattr__(self, "_marker", f"/{version.lower()}/")

    def url(self, path: str) -> str:
        """The absolute URL of an entry-point ``path`` such as ``"Organizations"``."""
        return f"{self.root}/{path.lstrip('/')}"

    def contains(self, url: str) -> bool:
        """Whether ``url`` lies under the API root (same scheme, host, port and path prefix)."""
        return url.startswith(self.root + "/") or url == self.root

    def rebase(self, href: str, *, context: str | None = None, relation: str | None = None) -> str:
        """Rebase a server ``href`` onto this root, or raise `LinkError`.

        A relative href is first resolved against ``context`` (the URL it was read from). The part
        from the first ``/{api_version}/`` segment on (matched case-insensitively) is kept, with its
        query string; the fragment is dropped. Dot segments, backslashes and control characters
        are refused, so the result can never leave the API root.
        """
        if not isinstance(href, str) or not href:
            raise LinkError(f"link {relation!r} has no href", href=None, relation=relation)
        if context is not None and not _is_absolute(href):
            href = urljoin(context, href)
        try:
            parts = urlsplit(href)
        except ValueError as exc:
            raise LinkError(f"malformed href {href!r}", href=href, relation=relation) from exc
        path = parts.path
        index = path.lower().find(self._marker)
        if index < 0:
            raise LinkError(
                f"href {href!r} has no /{self.api_version}/ segment; refusing to follow it",
                href=href,
                relation=relation,
            )
        rest = path[index + len(self._marker) :]
        _check_segments(rest, href, relation)
        query = parts.query
        if any(c in _FORBIDDEN_CHARS for c in query):
            raise LinkError(f"href {href!r} has a malformed query", href=href, relation=relation)
        url = f"{self.root}/{rest}"
        return f"{url}?{query}" if query else url


def _is_absolute(href: str) -> bool:
    return href.startswith("/") or "://" in href


def _check_segments(rest: str, href: str, relation: str | None) -> None:
    if not rest:
        raise LinkError(f"href {href!r} names no resource", href=href, relation=relation)
    for segment in rest.split("/"):
        decoded = unquote(segment)
        if decoded in (".", "..") or any(c in _FORBIDDEN_CHARS for c in decoded) or "/" in decoded:
            raise LinkError(
                f"href {href!r} would leave the API root; refusing to follow it",
                href=href,
                relation=relation,
            )
