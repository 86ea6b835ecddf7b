"""Checking caller-supplied strings before they reach a form, a header or a URL path (pure).

Every refusal is a `ConfigError` that names the argument and never quotes its value: the value
may be a password, or a string the terminal would mangle. The message depends only on the
argument's name and what is wrong.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from typing import Any
from urllib.parse import quote

from ._exceptions import ConfigError

__all__ = [
    "MAX_ID_CHARS",
    "encodes_utf8",
    "id_argument",
    "id_key",
    "id_segment",
    "organization_key",
    "text_argument",
    "with_article",
]

MAX_ID_CHARS = 1024
"""The longest id `id_argument` takes (the servers' ids are GUIDs, 36 characters): a longer one
is the caller's mistake, said as such, not a URL too long to send (a `LinkError` at the
request, a `NotFoundError` in a batched sweep)."""

_FORBIDDEN_IN_SEGMENT = frozenset("/\\?#%")
_HEX = "[0-9A-Fa-f]"
_OTHER_GUID = re.compile(
    rf"\{{({_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}})\}}"
    rf"|\(({_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}})\)"
    rf"|[{{(]?({_HEX}{{32}})[}})]?"
)
"""A GUID in another of .NET's spellings than the servers write (``8-4-4-4-12`` digits): in braces
(``B``), in parentheses (``P``), or its 32 digits without dashes (``N``, bare or bracketed).
A .NET server reads each as the same GUID."""
_PLAIN_ID = re.compile(r"[A-Za-z0-9._~-]+")
"""Ids made only of the characters a URL never escapes (GUIDs, names such as ``job-1``): every
check of `id_argument` but the dot segments passes for them without looking at each one."""


def text_argument(value: Any, name: str) -> str:
    """``value`` if it is a non-empty string that UTF-8 can encode; otherwise `ConfigError`.

    A lone surrogate is what ``os.environ`` and ``sys.argv`` give for a byte that is not UTF-8
    (a Latin-1 ``é`` typed into a shell variable): refused here, instead of failing later inside
    httpx with an error that quotes it.
    """
    if not isinstance(value, str):
        raise ConfigError(f"{name} must be a string, got {type(value).__name__}")
    if not value:
        raise ConfigError(f"{name} must not be empty")
    if not encodes_utf8(value):
        raise ConfigError(
            f"{name} cannot be encoded as UTF-8: it holds a lone surrogate, which is how the "
            "environment passes bytes that are not UTF-8 (check the terminal's or file's encoding)"
        )
    return value


def encodes_utf8(text: str) -> bool:
    """Whether UTF-8 can encode ``text`` (it holds no lone surrogate)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def id_segment(value: Any, name: str) -> str:
    """``value`` (an id) as one percent-encoded URL path segment, or `ConfigError` (see
    `id_argument`). What `id_argument` lets through (``:``, ``@``, spaces inside, non-ASCII
    letters) is percent-encoded, so it can never change the path."""
    return quote(id_argument(value, name), safe="")


def id_argument(value: Any, name: str) -> str:
    """``value`` if it can be an id in a URL path or query, else `ConfigError`; a GUID written
    in another of .NET's spellings (braces, parentheses, no dashes) as the servers write their
    ids (`id_key`), so that it is the same id in every request and every comparison.

    On top of `text_argument`: at most `MAX_ID_CHARS` characters, no ``/``, ``\\``, ``?``, ``#``
    or ``%`` (some servers decode ``%2F`` before routing), no control character, not ``.`` or
    ``..``, and no leading or trailing whitespace.
    """
    if (
        value.__class__ is str
        and len(value) <= MAX_ID_CHARS
        and _PLAIN_ID.fullmatch(value)
        and value != "."
        and value != ".."
    ):
        return value if len(value) != 32 else _standard_guid(value) or value
    text = _checked_id(value, name)
    return _standard_guid(text) or text


def id_key(value: str) -> str:
    """``value`` (an id) as ids are compared: ignoring case, and a GUID in another of .NET's
    spellings (``{...}``, ``(...)``, 32 digits without dashes) as the servers write it. A tenant
    named ``{AAAA...}`` in a targets file is the tenant the server lists as ``aaaa...``: a .NET
    server reads either, and the filter ``organizationId={...}`` answered that tenant's jobs,
    which a comparison by text then left out."""
    folded = value.lower()
    if len(folded) == 36:  # the servers' own spelling, nearly every id
        return folded
    return _standard_guid(folded) or folded


def organization_key(text: str) -> str:
    """An organization as the command line compares its ids and names (an ``--org``, an entry of
    a targets file's ``organizations``, what a server lists): trimmed, ignoring case, and a GUID
    in any of .NET's spellings (``{...}``, ``(...)``, 32 digits) as the servers write it, as
    `id_key` compares ids."""
    trimmed = text.strip()
    return _standard_guid(trimmed.lower()) or trimmed.casefold()


def _standard_guid(text: str) -> str | None:
    """The GUID ``text`` spells in another of .NET's spellings, in lower-case ``8-4-4-4-12``
    form; None for anything else."""
    found = _OTHER_GUID.fullmatch(text)
    if found is None:
        return None
    braced, parenthesized, digits = found.groups()
    if digits is not None:
        opening, closing = text[:1], text[-1:]
        if (opening == "{") != (closing == "}") or (opening == "(") != (closing == ")"):
            return None
        return str(uuid.UUID(hex=digits))
    return (braced or parenthesized).lower()


def _checked_id(value: Any, name: str) -> str:
    """`id_argument`'s checks one by one (its short cut for plain ids must agree: a test)."""
    text = text_argument(value, name)
    if len(text) > MAX_ID_CHARS:
        raise ConfigError(f"{name} is too long: {len(text):,} characters, at most {MAX_ID_CHARS:,}")
    if text in (".", ".."):
        raise ConfigError(f"{name} must be an id, not a dot segment")
    if text != text.strip():
        raise ConfigError(f"{name} must not start or end with whitespace")
    for char in text:
        if char in _FORBIDDEN_IN_SEGMENT:
            raise ConfigError(
                f"{name} must be one URL path segment: "
                "no slash, backslash, question mark, hash sign or percent sign"
            )
        if unicodedata.category(char) == "Cc":
            raise ConfigError(f"{name} must not contain control characters")
    return text


def with_article(name: str) -> str:
    """``name`` (a type's) after its indefinite article, for a message: ``an int``, ``a Job``."""
    return f"an {name}" if name[:1].lower() in "aeiou" else f"a {name}"
