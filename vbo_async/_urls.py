"""The API root, and rebasing the server's hrefs onto it (pure, no I/O).

The API lives at the configured base URL followed by one API version segment (``/v8/``). A
v1-v5 server writes its own host name into every href (``https://support.east.local:4443/v1/...``),
which the client often cannot reach and must never send its token to; v6+ servers write
server-relative hrefs (``/v8/...``) and sometimes another version than the one asked
(``/v7/`` next links in a v8 answer). So only the part of an href from its first known
``/{version}/`` segment on is kept, and joined to the client's own base URL. Whatever an href
says, the result stays below ``{base_url}/{version}/`` or is a `LinkError`.
"""

from __future__ import annotations

import encodings.idna  # noqa: F401 - the host check's codec: imported at a client's first use, it needs a free descriptor
import ipaddress
import re
import socket
from collections.abc import Callable, Iterable
from urllib.parse import SplitResult, quote, unquote, unquote_plus, urljoin, urlsplit

import attrs
import httpx

from ._checks import encodes_utf8
from ._exceptions import ConfigError, LinkError, VBOError
from ._redact import redact_url

__all__ = ["ApiRoot", "quoted", "scrub_error", "scrubbed_link_error", "split_url", "with_query"]

_UNCACHED_URLSPLIT: Callable[[str], SplitResult] = getattr(urlsplit, "__wrapped__", urlsplit)
_SPLIT_CACHED_LENGTH = 512
"""The longest URL `split_url` lets ``urlsplit`` keep in its cache (a server's are about 150
characters)."""


def split_url(url: str) -> SplitResult:
    """``urlsplit(url)``; a URL longer than a real server's bypasses the cache Python gives
    ``urlsplit`` (its last 128 URLs, kept whole, for the whole process: a hostile server's hrefs of
    64 KiB, its ``next`` links read page after page, pinned 8 MB that no client could release)."""
    return (urlsplit if len(url) <= _SPLIT_CACHED_LENGTH else _UNCACHED_URLSPLIT)(url)


_CONTROL_CHARS = frozenset(map(chr, range(0x20))) | {"\x7f"}
_FORBIDDEN_CHARS = frozenset("\\ #") | _CONTROL_CHARS
"""Refused in an href's path segments (also percent-decoded) and query. ASCII control characters
are among them because httpx refuses to build a request with one (``httpx.InvalidURL``)."""
_BARE_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
"""A ``%`` that starts no ``%XX`` escape, refused in an href's path segments: httpx sends it as
it is, and http.sys (VB365's web server) reads IIS's ``%uNNNN`` escapes by default, decoding
``%u002e%u002e`` to ``..`` (or ``%u002f`` to ``/``) before it removes dot segments and routes."""
_HREF_QUOTED = 500
"""The most characters of an href a `LinkError`'s message quotes (`quoted`; its ``href`` keeps it
whole): a server's href may take most of a 64 MiB page (a ``next`` link), and the message went
wherever the error did (every log line and result naming it), a second copy beside ``href``."""
_LONGEST_HREF = 65_536
"""The longest href `ApiRoot.rebase` reads: httpx refuses to request a longer URL ("URL too
long", its private ``MAX_URL_LENGTH``; a test pins the two together), and a rebased href is at
least as long but for the host it drops. Refused before anything reads it: rebasing scans the
query character by character and a listing parses a ``next`` link's query to find loops, 9 s of
one core blocking the event loop for a ``next`` of 60 MB, which httpx then refused all the same."""
_PLAIN_REST = re.compile(r"[A-Za-z0-9_~/-]+")
"""Paths made only of characters that decode to themselves and are never refused, without dots
(GUIDs, ``Jobs/{id}/JobSessions``): `_check_segments` passes them without looking at each
segment (a test compares the short cut with the full check)."""


@attrs.frozen(init=False)
class ApiRoot:
    """Where the API lives: ``base_url`` (scheme, host, optional path prefix) and the version
    segments that may follow it (``v1``, ``v8``, ...).

    Every URL the client requests starts with ``{base_url}/{version}/`` for one of ``versions``.
    """

    base_url: str
    versions: frozenset[str]

    def __init__(self, base_url: str, versions: Iterable[str]) -> None:
        if not isinstance(base_url, str):
            raise ConfigError(f"base_url must be a string, got {type(base_url).__name__}")
        if isinstance(versions, str):
            raise ConfigError("versions must be a collection of version segments, not one string")
        base = base_url.rstrip("/")
        parts = _split_base(base)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(f"base_url must be an absolute http(s) URL, got {_shown(base)!r}")
        if "?" in base or "#" in base:
            raise ConfigError(f"base_url must not carry a query or a fragment, got {_shown(base)!r}")
        _check_base(base, parts)
        try:
            httpx.URL(base)
        except httpx.InvalidURL as exc:
            raise ConfigError(f"base_url is not a valid URL: {exc}") from None
        known = frozenset(v.lower() for v in versions)
        _refuse_a_version_at_the_end(base, parts, known)
        self.__attrs_init__(base, known)

    def __repr__(self) -> str:
        # Never raising, for one whose __init__ refused its URL (error reporters show its frame).
        base_url = getattr(self, "base_url", None)
        if base_url is None:
            return "ApiRoot(<refused>)"
        return f"ApiRoot(base_url={base_url!r}, versions={sorted(self.versions)!r})"

    def root(self, version: str) -> str:
        """``{base_url}/{version}``."""
        return f"{self.base_url}/{version}"

    def url(self, path: str) -> str:
        """The absolute URL of a server-relative ``/{version}/...`` path a dialect built."""
        return f"{self.base_url}{path}"

    def version_of(self, url: str) -> str | None:
        """The version segment of a URL below this root, or None when it is not below it."""
        prefix = self.base_url + "/"
        if not url.startswith(prefix):
            return None
        version, slash, _ = url[len(prefix) :].partition("/")
        return version if slash and version in self.versions else None

    def contains(self, url: str) -> bool:
        """Whether ``url`` lies below ``{base_url}/{version}/`` for a known version."""
        return self.version_of(url) is not None

    def rebase(self, href: str, *, context: str | None = None, relation: str | None = None) -> str:
        """Rebase a server ``href`` onto this root, or raise `LinkError`.

        A relative href is first resolved against ``context`` (the URL it was read from). The part
        from the first path segment naming a known version (matched case-insensitively) is kept,
        with its query string; the fragment is dropped. Dot segments, backslashes, control
        characters and escapes other than ``%XX`` in the path are refused, so the result can
        never leave the API root. An href longer than `_LONGEST_HREF` (no URL httpx requests) is
        refused before it is read.
        """
        if not isinstance(href, str) or not href:
            raise LinkError(f"link {relation!r} has no href", href=None, relation=relation)
        if len(href) > _LONGEST_HREF:
            raise LinkError(
                f"href {quoted(href)} is longer than any URL httpx requests ({_LONGEST_HREF:,} "
                "characters); refusing to follow it",
                href=href,
                relation=relation,
            )
        if not href.isascii() and not encodes_utf8(href):
            # A lone surrogate (in a model built from data decoded elsewhere: the decoder mends
            # them): no URL can carry it, and httpx would fail on it with a UnicodeEncodeError.
            raise LinkError(f"href {quoted(href)} is no text a URL can carry", href=href, relation=relation)
        try:
            absolute = urljoin(context, href) if context is not None and not _is_absolute(href) else href
            parts = split_url(absolute)
        except ValueError as exc:
            raise LinkError(f"malformed href {quoted(href)}", href=href, relation=relation) from exc
        segments = parts.path.split("/")
        index = next((i for i, s in enumerate(segments) if s.lower() in self.versions), None)
        if index is None:
            known = ", ".join(sorted(self.versions))
            raise LinkError(
                f"href {quoted(href)} names no API version segment ({known}); refusing to follow it",
                href=href,
                relation=relation,
            )
        rest = "/".join(segments[index + 1 :])
        _check_segments(rest, href, relation)
        query = parts.query
        if any(c in _FORBIDDEN_CHARS for c in query):
            raise LinkError(f"href {quoted(href)} has a malformed query", href=href, relation=relation)
        url = f"{self.base_url}/{segments[index].lower()}/{rest}"
        return f"{url}?{query}" if query else url


def with_query(url: str, pairs: tuple[tuple[str, str], ...]) -> str:
    """``url`` (rebased: no fragment) with each of ``pairs`` set: parameters of the same names
    (any case, as servers read them) are dropped, the others kept as they are, in order, and
    the pairs appended quoted. ``url`` itself when there are no pairs."""
    if not pairs:
        return url
    path, _, query = url.partition("?")
    names = {key.lower() for key, _ in pairs}
    kept = [
        part
        for part in query.split("&")
        if part and unquote_plus(part.partition("=")[0]).lower() not in names
    ]
    kept += [f"{quote(key, safe='')}={quote(value, safe='')}" for key, value in pairs]
    return f"{path}?{'&'.join(kept)}"


def quoted(href: str) -> str:
    """``href`` as a `LinkError`'s message quotes it: its ``repr``, of its first `_HREF_QUOTED`
    characters and followed by its length when it is longer."""
    if len(href) <= _HREF_QUOTED:
        return repr(href)
    return f"{href[:_HREF_QUOTED]!r}... ({len(href)} characters)"


def scrubbed_link_error(error: LinkError, scrub: Callable[[str], str]) -> LinkError:
    """``error`` with its href passed through ``scrub``, in ``href`` and in the message (which
    quotes it as `quoted`: scrubbing the message alone would miss a secret the repr escapes, or
    one cut in two where the quote ends). ``error`` itself when there is nothing to hide."""
    href = error.href
    if href is None:
        return error
    shown = scrub(href)
    if shown == href:
        return error
    message = scrub(error.message.replace(quoted(href), quoted(shown)))
    scrubbed = LinkError(message, href=shown, relation=error.relation)
    # No cause: a traceback prints it, and the parser's error may quote any part of the href (a
    # part of a secret, which no scrub finds: urlsplit quotes a refused host, userinfo included).
    return scrubbed


def scrub_error(error: VBOError, scrub: Callable[[str], str]) -> None:
    """Pass ``error``'s ``url`` and a `LinkError`'s ``href`` through ``scrub``, in place, and put
    the scrubbed text where the message quotes them (as is, as ``repr``, which escapes what the
    scrub looks for, or as `quoted`, which may cut a secret in two). In place: re-raised as it
    is, no scrubbed copy keeps the unscrubbed error as its context.

    A server may put a secret into an href the client follows (it lies below the API root): the
    error of the request quotes that URL. The rest of the message is left alone: server text in
    it is scrubbed where the message is written, and the client's own words are never secrets.
    """
    message = error.message
    for name in ("url", "href"):
        value = getattr(error, name, None)
        if value.__class__ is str:
            shown = scrub(value)
            if shown != value:
                setattr(error, name, shown)
                message = message.replace(quoted(value), quoted(shown))
                message = message.replace(repr(value), repr(shown)).replace(value, shown)
    if message != error.message:
        error.message = message


def _split_base(base: str) -> SplitResult:
    """``urlsplit`` of a base URL. Credentials (any ``@``) are refused first, so the messages
    that echo the URL later can never show one."""
    if any(c in _CONTROL_CHARS or c.isspace() for c in base):
        raise ConfigError("base_url must not contain whitespace or control characters")
    if "@" in base:
        raise ConfigError(
            "base_url must not carry credentials (user:password@host); use username= and password="
        )
    try:
        return urlsplit(base)
    except ValueError:
        raise ConfigError("base_url is not a valid URL (malformed host)") from None


_SCHEME_PREFIX = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:[/\\]*")


def _shown(base: str) -> str:
    """``base`` as a message quotes it: without its userinfo (`redact_url`), and cut at its query
    or fragment (``?...``), where a URL copied from another tool may carry the password
    (``?username=svc&password=...``)."""
    cut = min((at for at in (base.find("?"), base.find("#")) if at >= 0), default=-1)
    if cut < 0:
        return redact_url(base)
    if "@" in base[cut:]:  # the cut may fall inside a userinfo (``svc:pa?ss@``): all of it hidden
        scheme = _SCHEME_PREFIX.match(base)
        return f"{scheme.group() if scheme else ''}***..."
    return redact_url(base[:cut]) + base[cut] + "..."


def _check_base(base: str, parts: SplitResult) -> None:
    """Refuse what httpx would reject later or silently change: a missing host, a bad port,
    backslashes or dot segments in the path prefix."""
    try:
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError:
        raise ConfigError(f"base_url has an invalid port: {_shown(base)!r}") from None
    if not parts.hostname:
        raise ConfigError(f"base_url names no host: {_shown(base)!r}")
    if not _is_ip_literal(parts.hostname) and (canonical := _inet_aton_form(parts.hostname)) is not None:
        # ``127.1``, ``2130706433``, ``0x7f.1``: the resolver's shorthand for an IPv4 address,
        # which aiohttp (the default transport) refuses at every request, and httpx's does not.
        raise ConfigError(
            f"base_url's host {parts.hostname!r} is no IPv4 address in dotted-decimal form (the "
            f"resolver reads it as {canonical}): write four numbers without leading zeros: {_shown(base)!r}"
        )
    if not _is_ip_literal(parts.hostname):
        try:
            parts.hostname.encode("idna")  # as the resolver encodes it before asking for it
        except UnicodeError:
            raise ConfigError(
                f"base_url's host is not a valid host name (an empty label, as in 'a..b', or one "
                f"longer than 63 characters): {_shown(base)!r}"
            ) from None
    for segment in parts.path.split("/"):
        decoded = unquote(segment)
        if decoded in (".", "..") or any(c in _FORBIDDEN_CHARS for c in decoded):
            raise ConfigError(f"base_url has an unusable path prefix: {_shown(base)!r}")


def _refuse_a_version_at_the_end(base: str, parts: SplitResult, versions: frozenset[str]) -> None:
    """A base URL copied from the server's Swagger page (``https://vb365:4443/v8``) would be a
    path prefix before every version the client asks for (``/v8/v8/Token``, and "the server
    serves none of the versions"): a `ConfigError` saying what to give instead. Only a version
    the client speaks is refused so: a reverse proxy's own prefix may well end in ``/v2``."""
    segment = parts.path.rpartition("/")[2]
    last = unquote(segment).lower()
    if last not in versions:
        return
    raise ConfigError(
        f"base_url ends in the API version segment /{unquote(segment)}: give the server's URL "
        f"without it ({_shown(base[: -len(segment) - 1])!r}) and, to use that version only, "
        f"api_version={last!r}"
    )


def _inet_aton_form(host: str) -> str | None:
    """The dotted-quad IPv4 address ``host`` writes in a form `socket.inet_aton` reads (fewer
    than four parts, hexadecimal or octal parts, one number), else None."""
    if not _INET_ATON_HOST.fullmatch(host):
        return None
    try:
        return socket.inet_ntoa(socket.inet_aton(host))
    except OSError:
        return None


_INET_ATON_HOST = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)(?:\.(?:0x[0-9a-f]*|[0-9]+)){0,3}\.?", re.IGNORECASE)
"""What `socket.inet_aton` may read as an IPv4 address: up to four decimal, octal or hexadecimal
parts (a name of letters is never one)."""


def _is_ip_literal(host: str) -> bool:
    """Whether ``host`` (as `urlsplit` gives it, without brackets) is an IP address."""
    try:
        ipaddress.ip_address(host.partition("%")[0])  # an IPv6 literal may name its zone
    except ValueError:
        return False
    return True


def _is_absolute(href: str) -> bool:
    return href.startswith("/") or "://" in href


def _check_segments(rest: str, href: str, relation: str | None) -> None:
    if _PLAIN_REST.fullmatch(rest):
        return
    _check_each_segment(rest, href, relation)


def _check_each_segment(rest: str, href: str, relation: str | None) -> None:
    """`_check_segments` segment by segment: nothing (an empty path), a dot segment, a refused
    character, an encoded slash or a ``%`` starting no ``%XX`` escape is a `LinkError`."""
    if not rest:
        raise LinkError(f"href {quoted(href)} names no resource", href=href, relation=relation)
    for segment in rest.split("/"):
        decoded = unquote(segment)
        if (
            decoded in (".", "..")
            or any(c in _FORBIDDEN_CHARS for c in decoded)
            or "/" in decoded
            or _BARE_PERCENT.search(segment) is not None
        ):
            raise LinkError(
                f"href {quoted(href)} would leave the API root; refusing to follow it",
                href=href,
                relation=relation,
            )
