"""The API root, and rebasing the server's hrefs onto it (pure, no I/O).

A v1–v5 server writes its own host name into every href (``https://support.east.local:4443/v1/...``),
which the client often cannot reach and must never send its token to. So only the part of an href
from the ``/{api_version}/`` segment on is kept, and joined to the client's own base URL.
"""

from __future__ import annotations

from urllib.parse import SplitResult, unquote, urljoin, urlsplit

import attrs
import httpx

from ._exceptions import ConfigError, LinkError
from ._redact import redact_url

__all__ = ["ApiRoot"]

_CONTROL_CHARS = frozenset(map(chr, range(0x20))) | {"\x7f"}
_FORBIDDEN_CHARS = frozenset("\\ #") | _CONTROL_CHARS
"""Refused in an href's path segments (also percent-decoded) and query. ASCII control characters
are among them because httpx refuses to build a request with one (``httpx.InvalidURL``)."""


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
        if not isinstance(self.base_url, str):
            raise ConfigError(f"base_url must be a string, got {type(self.base_url).__name__}")
        if not isinstance(self.api_version, str):
            raise ConfigError(f"api_version must be a string, got {type(self.api_version).__name__}")
        base = self.base_url.rstrip("/")
        parts = _split_base(base)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(f"base_url must be an absolute http(s) URL, got {redact_url(self.base_url)!r}")
        if parts.query or parts.fragment:
            raise ConfigError("base_url must not carry a query or a fragment")
        _check_base(base, parts)
        version = self.api_version.strip("/")
        if not version or "/" in version:
            raise ConfigError(f"api_version must be one path segment, got {self.api_version!r}")
        try:
            httpx.URL(base)
        except httpx.InvalidURL as exc:
            # httpx quotes the offending part, which may be a password typed into a malformed URL.
            detail = "" if "@" in base else f": {exc}"
            raise ConfigError(f"base_url is not a valid URL{detail}") from None
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


def _split_base(base: str) -> SplitResult:
    """``urlsplit`` of a base URL; credentials are refused before anything echoes the URL."""
    if any(c in _CONTROL_CHARS or c.isspace() for c in base):
        raise ConfigError("base_url must not contain whitespace or control characters")
    try:
        parts = urlsplit(base)
    except ValueError:
        raise ConfigError("base_url is not a valid URL (malformed host)") from None
    if "@" in parts.netloc:
        raise ConfigError(
            "base_url must not carry credentials (user:password@host); use username= and password="
        )
    return parts


def _check_base(base: str, parts: SplitResult) -> None:
    """Refuse what httpx would reject later or silently change: a missing host, a bad port,
    backslashes or dot segments in the path prefix."""
    try:
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError:
        raise ConfigError(f"base_url has an invalid port: {redact_url(base)!r}") from None
    if not parts.hostname:
        raise ConfigError(f"base_url names no host: {redact_url(base)!r}")
    for segment in parts.path.split("/"):
        decoded = unquote(segment)
        if decoded in (".", "..") or any(c in _FORBIDDEN_CHARS for c in decoded):
            raise ConfigError(f"base_url has an unusable path prefix: {redact_url(base)!r}")


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
