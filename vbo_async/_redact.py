"""Keeping secrets out of messages, even when a server echoes them back (pure, no I/O).

A token endpoint whose 400 page echoes the form puts ``password=S3cr3t-PW`` into the error; a
500 page echoing the request headers puts the bearer token there. `Redactor` replaces the secrets
a client knows, and the ways a server may have encoded them, with ``***``; `redact_url` drops the
userinfo of a URL-ish string, however malformed, before a message quotes it.

Where a secret is masked:

* A secret of at least `ANYWHERE` (8) characters (every token, any real password) is masked
  wherever it occurs, in every encoded form, inside other text too: a string that long is not
  found in a message by chance.
* A shorter one (a weak password such as ``a``, ``v8``, ``Jobs`` or ``admin``) is masked, in
  every encoded form, wherever it stands alone: not joined to a letter or digit on either side
  (an escape before it, such as ``%3D``, ``\\u0022`` or ``\\n``, separates it, as does an
  occurrence of another secret). That is everywhere a server echoes a value: ``password=admin``,
  ``"password":"admin"``, ``Bearer admin``, ``%3Dadmin%26``, ``wrong password 'admin'.``,
  ``<td>admin</td>``, a URL's query. It is left alone inside a longer word (``admin`` in
  ``administrator``, ``a`` in ``database``) and in the path of a URL (the ``v8`` and ``Jobs`` of
  ``https://vbo01/v8/Jobs`` or ``'/v8/Jobs'``): masking it there hid nothing and made every
  message and URL unreadable. The client sends the password only in the token form, never in a
  URL path, so an echo does not put it there. A whole word that equals the password is masked
  even when it was no echo: nothing tells the two apart.
"""

from __future__ import annotations

import bisect
import html
import json
import re
from html.entities import codepoint2name
from urllib.parse import quote, quote_plus

__all__ = ["ANYWHERE", "MASK", "Redactor", "encoded_forms", "redact_url"]

MASK = "***"
ANYWHERE = 8
"""Secrets at least this long are masked wherever they occur; shorter ones where they stand alone."""

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
_ESCAPE_BEFORE = re.compile(
    r"(?:%[0-9A-Fa-f]{2}|\\u[0-9A-Fa-f]{4}|\\U[0-9A-Fa-f]{8}|\\x[0-9A-Fa-f]{2}|\\[0-7]{1,3}|\\[A-Za-z])\Z"
)
"""An escape ending right before a position (``%3D``, ``\\u0022``, ``\\n``): a separator."""
_URL_END = re.compile(r"[\s\"'`<>(){}|,;]")
"""Characters around a URL quoted in a message (none is allowed in one unescaped)."""


def _url_forms(secret: str) -> set[str]:
    """The secret as a form field or URL component may carry it (percent-encoded once, or twice:
    a server quoting the form it was sent)."""
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
        if encoded != secret:  # encoded once more: a server quoting the form it was sent
            # (%2526; %2B for a space sent as "+")
            twice = quote(encoded, safe="")
            forms.add(twice)
            forms.add(_PERCENT.sub(lambda match: match.group().lower(), twice))
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
    """``text`` as an HTML page may write it: the characters HTML must escape escaped (named,
    or by number), and a character not ASCII as itself, by its decimal or hexadecimal number
    (.NET's ``HtmlEncode``, ``&#228;``; ``&#xe4;``, ``&#xE4;``) or by its name (PHP's
    ``htmlentities``, ``&auml;``)."""
    escaped = html.escape(text)
    forms = {
        escaped,
        html.escape(text, quote=False),
        escaped.replace("&#x27;", "&#39;"),
        escaped.replace("&quot;", "&#34;").replace("&#x27;", "&#39;"),
    }
    if not text.isascii():
        names = codepoint2name
        forms.update(
            (
                "".join(char if char.isascii() else f"&#{ord(char)};" for char in escaped),
                "".join(char if char.isascii() else f"&#x{ord(char):x};" for char in escaped),
                "".join(char if char.isascii() else f"&#x{ord(char):X};" for char in escaped),
                "".join(
                    char if char.isascii() or ord(char) not in names else f"&{names[ord(char)]};"
                    for char in escaped
                ),
            )
        )
    return forms


def _misread(secret: str) -> set[str]:
    """``secret`` as a server or a proxy that read its UTF-8 bytes in a single-byte encoding
    writes it back (mojibake: ``ä`` is ``Ã¤``): a servlet container reading a form as
    ISO-8859-1 (Tomcat's default), a Windows program reading it in its code page (Windows-1252,
    whose five undefined bytes it reads as Latin-1 does). Nothing for an ASCII secret, which
    every such encoding reads as it is."""
    if secret.isascii():
        return set()
    data = secret.encode("utf-8", "surrogatepass")
    latin = data.decode("latin-1")
    windows = "".join(bytes([byte]).decode("cp1252", "ignore") or chr(byte) for byte in data)
    return {latin, windows}


def _legacy_url_forms(secret: str) -> set[str]:
    """``secret`` form-encoded from a single-byte encoding (``%E4`` for ``ä``), as a legacy
    page or proxy re-encodes a form it read; nothing for an ASCII secret (as UTF-8's), or one
    those encodings cannot write."""
    forms: set[str] = set()
    if secret.isascii():
        return forms
    for encoding in ("latin-1", "cp1252"):
        try:
            encoded = (quote_plus(secret, encoding=encoding), quote(secret, safe="", encoding=encoding))
        except UnicodeEncodeError:
            continue
        forms.update(encoded)
        forms.update(_PERCENT.sub(lambda match: match.group().lower(), form) for form in encoded)
    return forms


def encoded_forms(secret: str) -> frozenset[str]:
    """Every form `Redactor` looks for: the secret raw, percent-encoded (``quote``,
    ``quote_plus`` as the token form is sent, .NET's ``UrlEncode``, JavaScript's
    ``encodeURIComponent``, upper- and lower-case hex, once or twice; from Latin-1 or
    Windows-1252 too), or
    misread from UTF-8 as Latin-1 or Windows-1252 (mojibake, `_misread`); each of those
    JSON-escaped (Python, orjson and .NET styles) or HTML-escaped (named and numbered
    entities), and HTML-escaped JSON; and each of those holding a character not ASCII as a page
    in a single-byte legacy encoding is read (each such character U+FFFD); and as a Python bytes
    literal quotes it (`_bytes_literal_forms`). Not base64: the client sends no ``Basic``
    credentials for a server to echo. Empty for an empty secret."""
    if not secret:
        return frozenset()
    forms: set[str] = set(_legacy_url_forms(secret))
    for url_form in _url_forms(secret) | _misread(secret):
        forms.add(url_form)
        for json_form in _json_forms(url_form):
            forms.add(json_form)
            forms.update(_html_forms(json_form))
        forms.update(_html_forms(url_form))
    # Read from a page in a single-byte legacy encoding (Windows-1252, Latin-1), each character
    # not ASCII is a byte that is not UTF-8, which the client reads as U+FFFD.
    forms.update([_as_unreadable(form) for form in forms if not form.isascii()])
    forms.update(_bytes_literal_forms(secret))
    forms.discard("")
    return frozenset(forms)


def _bytes_literal_forms(secret: str) -> set[str]:
    """The secret as a Python bytes literal quotes it (``b'...'``, ``bytearray(b"...")``: how
    h11 quotes a line of an answer it refuses, where a server may have echoed it): each byte of
    its UTF-8 that is not printable ASCII as ``\\xNN`` (or ``\\n``, ...), a backslash doubled,
    and ``'`` escaped or not, as the literal's quotes (chosen for the whole line) require."""
    data = secret.encode("utf-8", "surrogatepass")
    forms = {repr(b"'\"" + data)[5:-1]}  # quoted with ', which is escaped (the line holds ")
    if b'"' not in data:
        forms.add(repr(b"'" + data)[3:-1])  # quoted with " (the line holds ' and no ")
    return forms


def _as_unreadable(form: str) -> str:
    return "".join(char if char.isascii() else "\ufffd" for char in form)


class Redactor:
    """Replaces the secrets a client knows, in every encoded form, with ``***`` (where: see the
    module docstring).

    Immutable: built from the password and the current tokens, and rebuilt when they change.
    ``None`` and empty secrets are ignored. Its repr shows how many secrets it holds, never them.

    ```python
    redactor = Redactor(password, token.access_token, token.refresh_token)
    message = redactor.scrub(message)
    ```
    """

    __slots__ = ("_count", "_forms", "_recheck")
    _count: int
    _forms: tuple[tuple[str, bool], ...]
    _recheck: tuple[tuple[str, bool], ...]

    def __init__(self, *secrets: str | None) -> None:
        known = {secret for secret in secrets if isinstance(secret, str) and secret}
        forms: dict[str, bool] = {}
        for secret in known:
            anywhere = len(secret) >= ANYWHERE
            for form in encoded_forms(secret):
                forms[form] = forms.get(form, False) or anywhere
        # Longest first, so a secret inside another never splits the longer one's mask.
        ordered = tuple(sorted(forms.items(), key=lambda item: (-len(item[0]), item[0])))
        object.__setattr__(self, "_count", len(known))
        object.__setattr__(self, "_forms", ordered)
        # A form the mask itself contains ("*", "**") would be found again forever.
        object.__setattr__(self, "_recheck", tuple(item for item in ordered if item[0] not in MASK))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Redactor is immutable; build a new one")

    def __repr__(self) -> str:
        return f"Redactor({self._count} secrets)"

    def __reduce__(self) -> tuple[type[Redactor], tuple[()]]:
        return (Redactor, ())  # never pickles what it hides

    def __bool__(self) -> bool:
        return bool(self._forms)

    def scrub(self, text: str) -> str:
        """``text`` with the secrets and their encoded forms replaced by ``***``.

        Overlapping and adjacent occurrences are masked as one span. Costs one substring search
        per form when there is nothing to hide. Scrub a whole body before cutting an excerpt of it,
        so a secret cut in half is still found.
        """
        if not self._forms:
            return text
        result = _mask(text, self._forms)
        for _ in range(_PASSES):
            if result is text:
                return result
            # The mask may have completed a secret containing "*": look again.
            text, result = result, _mask(result, self._recheck)
        return result if result is text else MASK


def _mask(text: str, forms: tuple[tuple[str, bool], ...]) -> str:
    """``text`` with the occurrences of ``forms`` masked (``text`` itself when none is): each
    (form, masked anywhere) pair. Overlapping or touching occurrences make one span, masked
    when one of them is masked anywhere, stands alone itself, or together they stand alone
    (`_stands_alone`: ``abc`` and ``cdef`` in ``=abcdef=``)."""
    spans: list[tuple[int, int, bool]] = []
    for form, anywhere in forms:
        start = text.find(form)
        while start >= 0:
            spans.append((start, start + len(form), anywhere))
            start = text.find(form, start + 1)
    if not spans:
        return text
    spans.sort()
    groups: list[list[tuple[int, int, bool]]] = [[spans[0]]]
    end = spans[0][1]
    for span in spans[1:]:
        if span[0] <= end:  # overlapping or touching: one span
            groups[-1].append(span)
            end = max(end, span[1])
        else:
            groups.append([span])
            end = span[1]
    pieces: list[str] = []
    cursor = 0
    urls = _UrlRuns(text)  # asked for increasing positions, as the groups and their spans come
    for group in groups:
        begin, end = group[0][0], max(span[1] for span in group)
        if (
            any(anywhere for _, _, anywhere in group)
            or _stands_alone(text, begin, end, urls)
            or any(_stands_alone(text, start, stop, urls) for start, stop, _ in group)
        ):
            pieces += [text[cursor:begin], MASK]
            cursor = end
    if not pieces:
        return text
    pieces.append(text[cursor:])
    return "".join(pieces)


def _stands_alone(text: str, start: int, end: int, urls: _UrlRuns) -> bool:
    """Whether ``text[start:end]`` is neither part of a longer word (a letter or digit joined to
    it on either side, with no escape such as ``%3D`` or ``\\n`` between) nor a segment of the
    path of a URL (`_UrlRuns.in_path`; asked for increasing ``start``)."""
    if start > 0:
        before = text[start - 1]
        if before == "/" and urls.in_path(start):
            return False
        if (
            before.isalnum()
            and text[start].isalnum()
            and _ESCAPE_BEFORE.search(text, max(0, start - 10), start) is None
        ):
            return False
    if end < len(text) and text[end].isalnum() and text[end - 1].isalnum():
        # A form ending in an escape ("%C3%A9") ends a word as its character would, or not.
        return _ESCAPE_BEFORE.search(text, max(0, end - 10), end) is not None
    return True


class _UrlRuns:
    """Where URLs' paths are in one text, read once from left to right: `in_path` is asked for
    increasing positions, so however many occurrences a text has, each character is looked at
    a bounded number of times (a hostile body of ``/a/a/a...`` and the password ``a`` cost
    linear time, not quadratic)."""

    __slots__ = ("_begin", "_cursor", "_ends", "_path", "_query", "_scheme", "_text")

    def __init__(self, text: str) -> None:
        self._text = text
        self._ends: list[int] | None = None
        """Where the characters `_URL_END` matches are (found at the first question)."""
        self._cursor = 0
        """Read up to here."""
        self._begin = 0
        """Where the run of URL characters around the cursor began (after one of `_URL_END`)."""
        self._query = False
        """Whether a ``?`` or ``#`` is in the run."""
        self._scheme = -1
        """Where the run's first ``://`` is (-1: none)."""
        self._path = False
        """Whether a ``/`` follows that ``://`` in the run."""

    def in_path(self, start: int) -> bool:
        """Whether ``start`` (right after a ``/``) begins a segment of the path of a URL, absolute
        (``https://vbo01/v8/Jobs``) or server-relative (``'/v8/Jobs'``); not of its host,
        userinfo, query or fragment, and not of ``svc/pw`` (a ``/`` between words)."""
        text = self._text
        if start > self._cursor:
            cursor = self._cursor
            if self._ends is None:
                self._ends = [match.start() for match in _URL_END.finditer(text)]
            ends = self._ends
            before = bisect.bisect_left(ends, start) - 1  # the last end before start
            if before >= 0 and ends[before] >= cursor:  # a new run
                cursor = self._begin = ends[before] + 1
                self._query, self._scheme, self._path = False, -1, False
            if not self._query:
                self._query = text.find("?", cursor, start) >= 0 or text.find("#", cursor, start) >= 0
            if self._scheme < 0:
                self._scheme = text.find("://", max(self._begin, cursor - 2), start)
            if self._scheme >= 0 and not self._path:
                self._path = text.find("/", max(self._scheme + 3, cursor), start) >= 0
            self._cursor = start
        if self._query:
            return False
        if self._scheme >= 0:
            return self._path
        return text.startswith("/", self._begin, start) and not text.startswith("//", self._begin, start)


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
