"""OAuth token forms and token responses of ``/{version}/Token`` (pure, no I/O)."""

from __future__ import annotations

import datetime as dt
import email.utils
import math
import re
from collections.abc import Mapping
from typing import Any

import attrs

from ._exceptions import DecodeError

__all__ = [
    "MAX_LIFETIME",
    "MAX_TOKEN_LENGTH",
    "MIN_REFRESH_DELAY",
    "GrantForm",
    "Token",
    "expires_in_seconds",
    "http_date",
    "is_header_safe",
    "parse_http_date",
    "parse_token_response",
    "password_form",
    "refresh_delay",
    "refresh_form",
]

_DEFAULT_LIFETIME = 3600.0
_REFRESH_MARGIN = 60.0
MAX_LIFETIME = 365 * 24 * 3600.0
"""Longest lifetime believed (a year): a larger ``expires_in`` or ``.expires`` is cut to it."""
MIN_REFRESH_DELAY = 30.0
"""Shortest time before a proactive refresh is due, whatever lifetime the server claims.

A token endpoint answering ``expires_in: 0.001`` (or a lifetime in the wrong unit) would
otherwise make every request fetch a new token first. A token that really expires sooner is
renewed when the server refuses it: a 401 renews at once (one renewal for all requests holding
it), so the floor only delays the *proactive* refresh. ``expires_at`` stays what the server said."""
MAX_TOKEN_LENGTH = 16 * 1024
"""Longest access or refresh token accepted (characters). VB365 serves its API through http.sys,
which refuses a request header line longer than 16 KiB by default, so no longer access token is
ever usable; real ones are a few hundred to a few thousand characters. A token endpoint answering
megabytes would otherwise be sent that much with every request, and hiding it from messages
(`Redactor`, built per token change) costs about 5 µs a character on the event loop."""
_SECONDS = re.compile(r"([0-9]+)(?:\.([0-9]*))?")
"""A numeric ``expires_in`` string: ASCII digits only (``"²".isdigit()`` is True, and ``int()``
refuses it), with an optional fraction. Never given to ``int()``, which refuses 5,000 digits
with a bare ValueError: a number of more than `_DIGITS` digits is more than `MAX_LIFETIME`."""
_DIGITS = 15


def password_form(username: str, password: str, extras: Mapping[str, str] | None = None) -> dict[str, str]:
    """The form of the password grant, with a version's extra fields (v7+
    ``disable_antiforgery_token=true``)."""
    return {"grant_type": "password", "username": username, "password": password, **(extras or {})}


def refresh_form(refresh_token: str, extras: Mapping[str, str] | None = None) -> dict[str, str]:
    """The form of the refresh-token grant, with a version's extra fields."""
    return {"grant_type": "refresh_token", "refresh_token": refresh_token, **(extras or {})}


class GrantForm:
    """The form of one grant as it is sent: its fields hidden from every repr.

    The password or refresh token it carries would otherwise show wherever a frame's variables
    are shown: an error reporter's traceback (Sentry's by default, ``rich``'s and pytest's with
    locals, ``traceback.TracebackException(capture_locals=True)``) of every error a grant raises
    lists the form in each frame it passed through. Not a mapping, so no reporter reads into it;
    `reveal` gives the fields to whatever encodes the request.
    """

    __slots__ = ("_fields", "grant_type")

    def __init__(self, fields: Mapping[str, str]) -> None:
        self._fields = dict(fields)
        self.grant_type = str(self._fields.get("grant_type", ""))

    def reveal(self) -> dict[str, str]:
        """The fields, to be encoded into the request's body."""
        return self._fields

    def __repr__(self) -> str:
        return f"GrantForm(grant_type={self.grant_type!r}, ...)"

    def __reduce__(self) -> tuple[type[GrantForm], tuple[dict[str, str]]]:
        """Pickled without its fields (as `Secret` is): only the grant type survives."""
        return (GrantForm, ({"grant_type": self.grant_type},))


@attrs.frozen(repr=False)
class Token:
    """An access/refresh token pair; ``expires_at`` is on the ``time.monotonic`` clock.

    Its repr never shows the tokens.
    """

    access_token: str
    refresh_token: str | None
    expires_at: float
    refresh_at: float
    """When to renew proactively: a tenth of the lifetime (at most a minute) before expiry, and
    never sooner than `MIN_REFRESH_DELAY` after issue (see there)."""

    def __repr__(self) -> str:
        return f"Token(access_token=***, refresh_token={'***' if self.refresh_token else None})"

    def __reduce__(self) -> tuple[type[Token], tuple[str, None, float, float]]:
        """Pickled without its tokens (as `GrantForm` and `Secret` are): an error reporter or a
        queue pickling what a frame holds gets an empty access token and no refresh token."""
        return (Token, ("", None, self.expires_at, self.refresh_at))

    def __copy__(self) -> Token:
        return self  # immutable: a copy is the token itself, not the pickle's blanked one

    def __deepcopy__(self, memo: dict[int, Any]) -> Token:
        return self


def parse_http_date(value: str) -> dt.datetime | None:
    """An RFC 1123 or ISO 8601 date as an aware datetime, or None when it is neither (or lies
    outside ``datetime``'s years 1-9999). Never raises."""
    found = http_date(value)
    if found is not None:
        return found
    try:
        parsed = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def http_date(value: str) -> dt.datetime | None:
    """An HTTP date (RFC 9110 §5.6.7: IMF-fixdate, or the obsolete RFC 850 and asctime forms),
    aware; None for anything else, ISO 8601 included (pure, never raises)."""
    try:
        parsed = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError, OverflowError):  # a year of 20 digits overflows
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)  # asctime: GMT, unsaid


def parse_token_response(data: Any, *, now: float, wall_now: dt.datetime) -> Token:
    """Read a token response. ``expires_in`` wins; ``.expires`` (RFC 1123 or ISO) is the fallback;
    neither present means the documented one-hour lifetime. A lifetime is cut to `MAX_LIFETIME`,
    and the proactive refresh is due `refresh_delay` after ``now``. Raises only `DecodeError`
    (no access token, or one unusable as a bearer: the server's fault, not refused credentials),
    saying what was wrong without quoting the value; never fails on the lifetime fields, whatever
    their type or value."""
    problem = _access_token_problem(data)
    if problem is not None:
        raise DecodeError(f"the token endpoint answered {problem}", path="$.access_token")
    refresh = data.get("refresh_token")
    if isinstance(refresh, str) and len(refresh) > MAX_TOKEN_LENGTH:
        raise DecodeError(
            f"the token endpoint answered a refresh_token too long to use ({len(refresh)} characters, "
            f"more than {MAX_TOKEN_LENGTH})",
            path="$.refresh_token",
        )
    lifetime = _lifetime(data, wall_now)
    return Token(
        access_token=data["access_token"],
        refresh_token=refresh if isinstance(refresh, str) and refresh else None,
        expires_at=now + lifetime,
        refresh_at=now + refresh_delay(lifetime),
    )


def refresh_delay(lifetime: float) -> float:
    """Seconds from issue to the proactive refresh: a tenth of the lifetime (at most a minute)
    before expiry, but never sooner than `MIN_REFRESH_DELAY`."""
    return max(lifetime - min(_REFRESH_MARGIN, lifetime / 10), MIN_REFRESH_DELAY)


def _access_token_problem(data: Any) -> str | None:
    """What makes ``data`` no token answer, in words that never quote the token; None if it is one."""
    if not isinstance(data, dict):
        return f"{_json_kind(data)} instead of an object with an access_token"
    if "access_token" not in data:
        return "an object without an access_token"
    access = data["access_token"]
    if not isinstance(access, str):
        return f"an access_token that is {_json_kind(access)}, not a string"
    if len(access) > MAX_TOKEN_LENGTH:
        return (
            f"an access_token too long to send as a bearer token ({len(access)} characters, "
            f"more than {MAX_TOKEN_LENGTH})"
        )
    if not is_header_safe(access):
        # Never echoed: it is a credential, and h11 would quote it in its "illegal header" error.
        shape = "empty" if not access else f"{len(access)} characters, not all visible ASCII"
        return f"an access_token that cannot be sent as a bearer token ({shape})"
    return None


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object" if isinstance(value, dict) else type(value).__name__


def is_header_safe(token: str) -> bool:
    """Non-empty visible ASCII: what an ``Authorization: Bearer`` header value can carry."""
    return bool(token) and token.isascii() and token.isprintable() and " " not in token


def _lifetime(data: dict[str, Any], wall_now: dt.datetime) -> float:
    """Seconds the token lives: ``expires_in``, else ``.expires`` - ``.issued`` (or now), else an
    hour; always in (0, `MAX_LIFETIME`]."""
    seconds = expires_in_seconds(data.get("expires_in"))
    if seconds is not None:
        return seconds
    expires = data.get(".expires")
    if isinstance(expires, str):
        when = parse_http_date(expires)
        issued_raw = data.get(".issued")
        issued = parse_http_date(issued_raw) if isinstance(issued_raw, str) else None
        if when is not None:
            seconds = (when - (issued or wall_now)).total_seconds()
            if seconds > 0:
                return min(seconds, MAX_LIFETIME)
    return _DEFAULT_LIFETIME


def expires_in_seconds(value: Any) -> float | None:
    """A positive ``expires_in`` (an int, a finite float, or a string of ASCII digits with an
    optional fraction) as seconds, cut to `MAX_LIFETIME`; None for anything else. Never raises."""
    if isinstance(value, str):
        number = _SECONDS.fullmatch(value.strip(" \t"))
        if number is None:
            return None
        whole, fraction = number.group(1).lstrip("0") or "0", number.group(2) or ""
        if len(whole) > _DIGITS:
            return MAX_LIFETIME
        seconds = float(f"{whole}.{fraction[:_DIGITS] or '0'}")
    elif isinstance(value, bool) or not isinstance(value, int | float):
        return None
    elif isinstance(value, int):
        if value > MAX_LIFETIME:  # compared as an int: float(10**400) overflows
            return MAX_LIFETIME
        seconds = float(value)
    else:
        if not math.isfinite(value):
            return None
        seconds = value
    if seconds <= 0:
        return None
    return min(seconds, MAX_LIFETIME)
