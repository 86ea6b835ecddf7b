"""Keeping secrets out of messages, even when a server echoes them back (pure, no I/O).

A token endpoint whose 400 page echoes the form puts ``password=S3cr3t-PW`` into the error; a
500 page echoing the request headers puts the bearer token there. `Redactor` replaces every
occurrence of the secrets a client knows, and of the ways a server may have encoded them, with
``***``; `redact_url` drops the userinfo of a URL-ish string, however malformed, before a
message quotes it.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import quote, quote_plus

from ._exceptions import VBOError

__all__ = ["MASK", "Redactor", "encoded_forms", "hide_secrets", "redact_url"]

E = TypeVar("E", bound=VBOError)

MASK = "***"

_PASSES = 4
"""Scrubbing again is needed only for secrets containing ``*`` (the mask can complete one); past
this many passes the whole text is masked."""

_PERCENT = re.compile(r"%[0-9A-F]{2}")
_UNICODE_ESCAPE = re.compile(r"\\u[0-9A-Fa-f]{4}")
_DOTNET_SAFE = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 !#$%()*,-./:;=?@[]^_{|}~"
)
"""What .NET's default JSON encoder leaves as is; it writes everything else as ``\\uXXXX``."""
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")


def _url_forms(secret: str) -> set[str]:
    """The secret as a form field or URL component may carry it."""
    forms = {secret}
    for encoded in (
        quote(secret, safe=""),
        quote(secret),
        quote_plus(secret),
        quote_plus(secret, safe="/"),
        quote(secret, safe="!$&'()*+,;=:@/"),
        quote_plus(secret, safe="!()*"),  # .NET's WebUtility and HttpUtility.UrlEncode
        quote(secret, safe="!'()*"),  # JavaScript's encodeURIComponent
    ):
        forms.add(encoded)
        forms.add(_PERCENT.sub(lambda match: match.group().lower(), encoded))
    return forms


def _json_forms(text: str) -> set[str]:
    """The inside of a JSON string holding ``text``, as common serializers write it."""
    ascii_form = json.dumps(text)[1:-1]
    plain = json.dumps(text, ensure_ascii=False)[1:-1]
    dotnet = "".join(_dotnet_escape(char) for char in text)
    forms = {ascii_form, plain, dotnet}
    for form in (ascii_form, plain):
        forms.add(_UNICODE_ESCAPE.sub(lambda match: "\\u" + match.group()[2:].upper(), form))
        forms.add(form.replace("/", "\\/"))
    forms.add(_UNICODE_ESCAPE.sub(lambda match: match.group().lower(), dotnet))
    return forms


def _dotnet_escape(char: str) -> str:
    if char in _DOTNET_SAFE:
        return char
    if char == "\\":
        return "\\\\"
    code = ord(char)
    if code > 0xFFFF:
        code -= 0x10000
        return f"\\u{0xD800 + (code >> 10):04X}\\u{0xDC00 + (code & 0x3FF):04X}"
    return f"\\u{code:04X}"


def _html_forms(text: str) -> set[str]:
    """``text`` as an HTML page may write it."""
    escaped = html.escape(text)
    numeric = "".join(char if char.isascii() else f"&#{ord(char)};" for char in escaped)
    return {
        escaped,
        html.escape(text, quote=False),
        escaped.replace("&#x27;", "&#39;"),
        escaped.replace("&quot;", "&#34;").replace("&#x27;", "&#39;"),
        numeric,
    }


def encoded_forms(secret: str) -> frozenset[str]:
    """Every form `Redactor` looks for: the secret raw, percent-encoded (``quote``,
    ``quote_plus``, .NET's ``UrlEncode``, JavaScript's ``encodeURIComponent``, upper- and
    lower-case hex), each of those JSON-escaped (Python, orjson and
    .NET styles) or HTML-escaped, and HTML-escaped JSON. Empty for an empty secret."""
    if not secret:
        return frozenset()
    forms: set[str] = set()
    for url_form in _url_forms(secret):
        forms.add(url_form)
        for json_form in _json_forms(url_form):
            forms.add(json_form)
            forms.update(_html_forms(json_form))
        forms.update(_html_forms(url_form))
    forms.discard("")
    return frozenset(forms)


class Redactor:
    """Replaces the secrets a client knows, in every encoded form, with ``***``.

    Immutable: built from the password and the current tokens, and rebuilt when they change.
    ``None`` and empty secrets are ignored. Its repr shows how many secrets it holds, never them.

    ```python
    redactor = Redactor(password, token.access_token, token.refresh_token)
    message = redactor.scrub(message)
    ```
    """

    __slots__ = ("_count", "_forms", "_recheck")
    _count: int
    _forms: tuple[str, ...]
    _recheck: tuple[str, ...]

    def __init__(self, *secrets: str | None) -> None:
        known = {secret for secret in secrets if isinstance(secret, str) and secret}
        forms: set[str] = set()
        for secret in known:
            forms |= encoded_forms(secret)
        # Longest first, so a secret inside another never splits the longer one's mask.
        ordered = tuple(sorted(forms, key=lambda form: (-len(form), form)))
        object.__setattr__(self, "_count", len(known))
        object.__setattr__(self, "_forms", ordered)
        # A form the mask itself contains ("*", "**") would be found again forever.
        object.__setattr__(self, "_recheck", tuple(form for form in ordered if form not in MASK))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Redactor is immutable; build a new one")

    def __repr__(self) -> str:
        return f"Redactor({self._count} secrets)"

    def __reduce__(self) -> tuple[type[Redactor], tuple[()]]:
        return (Redactor, ())  # never pickles what it hides

    def __bool__(self) -> bool:
        return bool(self._forms)

    def scrub(self, text: str) -> str:
        """``text`` with every occurrence of a secret, or of an encoded form, replaced by ``***``.

        Overlapping and adjacent occurrences are masked as one span. Costs one substring search
        per form when there is nothing to hide. Scrub a whole body before cutting an excerpt of it,
        so a secret cut in half is still found.
        """
        if not self._forms:
            return text
        result = _mask(text, self._forms)
        for _ in range(_PASSES):
            if not any(form in result for form in self._recheck):
                return result
            result = _mask(result, self._recheck)
        return MASK


def _mask(text: str, forms: tuple[str, ...]) -> str:
    spans: list[tuple[int, int]] = []
    for form in forms:
        start = text.find(form)
        while start >= 0:
            spans.append((start, start + len(form)))
            start = text.find(form, start + 1)
    if not spans:
        return text
    spans.sort()
    pieces: list[str] = []
    cursor = 0
    begin, end = spans[0]
    for span_start, span_end in spans[1:]:
        if span_start <= end:  # overlapping or touching: one mask
            end = max(end, span_end)
            continue
        pieces += [text[cursor:begin], MASK]
        cursor = end
        begin, end = span_start, span_end
    pieces += [text[cursor:begin], MASK, text[end:]]
    return "".join(pieces)


def redact_url(url: str) -> str:
    """``url`` without its userinfo (``user:password@``), which becomes ``***@``.

    Works on malformed input as well (``https:/svc:pw@vbo01``, ``svc:pw@vbo01``, backslashes,
    an ``@`` in the password): everything between the scheme and the last ``@`` is taken for
    userinfo. An ``@`` further on in a path is therefore over-redacted rather than a password
    ever shown.
    """
    at = url.rfind("@")
    if at < 0:
        return url
    start = 0
    scheme = _SCHEME.match(url)
    if scheme is not None:
        start = scheme.end()
    while start < len(url) and url[start] in "/\\":
        start += 1
    if start > at:
        start = 0
    return f"{url[:start]}{MASK}@{url[at + 1 :]}"


def hide_secrets(error: E, scrub: Callable[[str], str]) -> E:
    """``error`` with its ``url`` and message passed through ``scrub``, changed in place (it may
    already be shared by several waiters) and returned: an href a server wrote may quote the
    password or a token, and the URL of a request made by following it names the failure. An
    error whose URL holds no secret is left as it is (its message quotes no other URL)."""
    if error.url is not None:
        url = scrub(error.url)
        if url == error.url:
            return error
        error.url = url
    message = scrub(error.message)
    if message != error.message:
        error.message = message
        error.args = (message,)
    return error
