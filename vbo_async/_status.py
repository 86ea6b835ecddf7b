"""Deciding what a response means: error mapping, retry or not, Retry-After (pure, no I/O).

``RETRY_STATUSES`` and `parse_retry_after` live in `vbo_async._retry`, with the rest of the retry
rule; they are re-exported here for the modules that import them from this one.
"""

from __future__ import annotations

import codecs
import contextlib
import datetime as dt
import math
import re
from collections.abc import Callable
from typing import Any

import orjson

from ._decode import UTF8_BOM, loads_mended
from ._exceptions import (
    APIError,
    AuthenticationError,
    NotFoundError,
    RateLimitedError,
    ServerError,
    VBOError,
)
from ._printable import printable
from ._retry import RETRY_AFTER_LIMIT, RETRY_STATUSES, parse_retry_after

__all__ = [
    "IDEMPOTENT_METHODS",
    "RETRY_STATUSES",
    "error_for_status",
    "parse_retry_after",
    "read_error_body",
    "retry_hint",
]

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_TAGS = re.compile(r"<[^<>]+>")
_TITLE = re.compile(r"<title[^<>]*>([^<]*)", re.I)
"""An HTML page's tags and title, each read up to the next ``<`` at most: from every ``<`` of a
body of tags that never close (``<title>`` 37,449 times), ``>`` or ``</title>`` looked for
through the rest of it took up to 28 s for 256 KiB."""
_SPACE = re.compile(r"\s+")
_EXCERPT = 200
_MESSAGE = 1000
_ERROR_READ = 256 * 1024
_SCRUBBED_BEYOND = 64 * 1024
"""Bytes past `_ERROR_READ` decoded only to be scrubbed with the text before them: a secret echoed
across the end of what is read is masked whole before the text is cut there, instead of its
first part being kept (no longer the secret, which no scrub then finds)."""


def read_error_body(
    body: bytes, content_type: str | None = None, scrub: Callable[[str], str] | None = None
) -> tuple[str | None, str | None]:
    """(message, error_code) from an error body: ``message``/``Message``, OAuth
    ``error_description``/``error``, a JSON string, or an excerpt of text or HTML. Never fails.

    ``scrub`` removes the client's secrets from the server's text before any of it is kept (a
    server may echo the form or the ``Authorization`` header it was sent). A body in UTF-16 or
    UTF-32 (a byte order mark, or the ``charset`` its ``Content-Type`` names) is read as such,
    and NULs are dropped before the scrub (one said nowhere then reads as its ASCII): read as
    UTF-8, each character of an echoed secret stood apart, which no scrub finds, and was shown
    with a ``\x00`` between. Only the first `_ERROR_READ` bytes are read (scrubbed with the
    `_SCRUBBED_BEYOND` bytes after them, so a secret across the cut leaves no part of itself),
    and a message is cut to `_MESSAGE` characters. Control characters in what is kept are
    written out as escapes (`printable`): the message ends up in terminals and logs.
    """
    hide = scrub if scrub is not None else _unchanged

    def clean(text: str) -> str:  # scrubbed before it is stripped: a password may end in a space
        return printable(hide(text.replace("\x00", "")).strip())  # a JSON "\u0000" too

    # No NUL is text: dropped, UTF-16 or UTF-32 said nowhere reads as what its ASCII says.
    body = _as_utf8(body[: _ERROR_READ + _SCRUBBED_BEYOND], content_type).replace(b"\x00", b"")
    text = body[:_ERROR_READ].removeprefix(UTF8_BOM)
    if not text.strip():
        return None, None
    data: Any = None
    with contextlib.suppress(orjson.JSONDecodeError):  # a lone surrogate or a byte not UTF-8 mended
        data, _ = loads_mended(text)
    if isinstance(data, dict):
        code = data.get("errorCode")
        code = clean(code)[:_EXCERPT] if isinstance(code, str) else None
        for key in ("message", "Message", "error_description", "error"):
            value = data.get(key)
            if isinstance(value, str) and value.strip():
                return clean(value)[:_MESSAGE], code
        return None, code
    if isinstance(data, str):
        return clean(data)[:_EXCERPT] or None, None
    decoded = hide(body.decode("utf-8", "replace"))[:_ERROR_READ]
    if "html" in (content_type or "").lower() or decoded.lstrip().startswith("<"):
        title = _TITLE.search(decoded)
        decoded = title.group(1) if title else _TAGS.sub(" ", decoded)
    decoded = printable(_SPACE.sub(" ", decoded).strip())
    return (decoded[:_EXCERPT] or None), None


def _unchanged(text: str) -> str:
    return text


_WIDE_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
"""Byte order marks of the encodings in which ASCII text holds NUL bytes (UTF-32's first: its
little-endian mark begins with UTF-16's)."""
_CHARSET = re.compile(r"charset\s*=\s*\"?\s*(utf-?(?:16|32)(?:-?[lb]e)?)", re.I)


def _sniffed(body: bytes) -> str | None:
    """The wide encoding of ``body`` (holding a NUL) said nowhere, by where its NULs are: UTF-32
    (its every character below U+10000 has two NUL bytes in the same places), UTF-16 (an ASCII
    character has its NUL on one side, anything else in it hardly ever: four times as many
    NULs there as on the other); else None."""
    whole = len(body) - len(body) % 4
    if whole:
        per = [body[at:whole:4].count(0) for at in range(4)]
        if per[2] == per[3] == whole // 4 and per[0] < whole // 4:
            return "utf-32-le"
        if per[0] == per[1] == whole // 4 and per[3] < whole // 4:
            return "utf-32-be"
    even, odd = body[0::2].count(0), body[1::2].count(0)
    if odd >= 4 * even:
        return "utf-16-le"
    if even >= 4 * odd:
        return "utf-16-be"
    return None


def _as_utf8(body: bytes, content_type: str | None) -> bytes:
    """``body`` re-encoded as UTF-8 when it is UTF-16 or UTF-32 (by its byte order mark, the
    ``charset`` of ``content_type``, or where its NULs are: `_sniffed`); else as it is. Never
    fails (bytes that do not decode are U+FFFD)."""
    # A mark followed by no NUL is no wide text that holds ASCII (``\xff\xfe`` opens text in
    # Latin-1 too), and no echo of a secret then hides between NULs.
    codec = next((name for mark, name in _WIDE_BOMS if body.startswith(mark)), None)
    if codec is not None and b"\x00" not in body[4:64]:
        codec = None
    if codec is None and content_type and (found := _CHARSET.search(content_type)):
        codec = found.group(1).lower().replace("-", "").replace("utf", "utf-")
    if codec is None and b"\x00" in body:
        codec = _sniffed(body)
    if codec is None:
        return body
    try:
        text = body.decode(codec, "replace")
    except LookupError:  # pragma: no cover - every name the pattern takes is a codec
        return body
    return text.encode("utf-8", "surrogatepass")


def error_for_status(
    status_code: int,
    body: bytes,
    *,
    method: str,
    url: str,
    content_type: str | None = None,
    scrub: Callable[[str], str] | None = None,
    retry_after: float | None = None,
    now: dt.datetime | None = None,
) -> VBOError:
    """The exception for a non-success answer (the caller raises it); server text in it is
    passed through ``scrub`` first. ``retry_after`` (the answer's ``Retry-After``, parsed) is
    kept in the `APIError` and, when not 0, said in its message (`retry_hint`, from ``now``)."""
    message, code = read_error_body(body, content_type, scrub)
    if status_code == 401:
        return AuthenticationError(
            message or "the server refused the access token (401)", method=method, url=url
        )
    text = message or _REASONS.get(status_code, "request failed")
    if retry_after is not None and math.isnan(retry_after):
        retry_after = None
    if retry_after is not None and retry_after > 0:  # "retry after 0 s" would say nothing
        text = f"{text}; {retry_hint(retry_after, now or dt.datetime.now(dt.UTC))}"
    kwargs: dict[str, Any] = {
        "status_code": status_code,
        "error_code": code,
        "method": method,
        "url": url,
        "retry_after": retry_after,
    }
    if status_code == 404:
        return NotFoundError(text, **kwargs)
    if status_code == 429:
        return RateLimitedError(text, **kwargs)
    if status_code >= 500:
        return ServerError(text, **kwargs)
    return APIError(text, **kwargs)


def retry_hint(seconds: float, now: dt.datetime) -> str:
    """When to try again, said for an error: ``retry after 60 s (at 2026-11-30 13:01:00 UTC)``;
    whole seconds rounded up (never sooner than the server asked). ``seconds`` is at most
    `RETRY_AFTER_LIMIT` (a year), as `parse_retry_after` reads it."""
    wait = math.ceil(min(max(seconds, 0.0), RETRY_AFTER_LIMIT))
    when = now.astimezone(dt.UTC) + dt.timedelta(seconds=wait)
    return f"retry after {wait} s (at {when:%Y-%m-%d %H:%M:%S} UTC)"


_REASONS = {
    400: "bad request",
    403: "forbidden",
    404: "not found",
    409: "conflict",
    429: "too many requests",
    500: "internal server error",
    502: "bad gateway",
    503: "service unavailable",
    504: "gateway timeout",
}
