"""OAuth token forms and token responses of ``/{version}/Token`` (pure, no I/O)."""

from __future__ import annotations

import datetime as dt
import email.utils
from collections.abc import Mapping
from typing import Any

import attrs

from ._exceptions import AuthenticationError

__all__ = ["Token", "parse_http_date", "parse_token_response", "password_form", "refresh_form"]

_DEFAULT_LIFETIME = 3600.0
_REFRESH_MARGIN = 60.0


def password_form(username: str, password: str, extras: Mapping[str, str] | None = None) -> dict[str, str]:
    """The form of the password grant, with a version's extra fields (v7+
    ``disable_antiforgery_token=true``)."""
    return {"grant_type": "password", "username": username, "password": password, **(extras or {})}


def refresh_form(refresh_token: str, extras: Mapping[str, str] | None = None) -> dict[str, str]:
    """The form of the refresh-token grant, with a version's extra fields."""
    return {"grant_type": "refresh_token", "refresh_token": refresh_token, **(extras or {})}


@attrs.frozen(repr=False)
class Token:
    """An access/refresh token pair; ``expires_at`` is on the ``time.monotonic`` clock.

    Its repr never shows the tokens.
    """

    access_token: str
    refresh_token: str | None
    expires_at: float
    refresh_at: float
    """When to renew proactively: a tenth of the lifetime (at most a minute) before expiry."""

    def __repr__(self) -> str:
        return f"Token(access_token=***, refresh_token={'***' if self.refresh_token else None})"


def parse_http_date(value: str) -> dt.datetime | None:
    """An RFC 1123 or ISO 8601 date as an aware datetime, or None when it is neither."""
    text = value.strip()
    try:
        parsed = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        try:
            parsed = dt.datetime.fromisoformat(text)
        except ValueError:
            return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def parse_token_response(data: Any, *, now: float, wall_now: dt.datetime) -> Token:
    """Read a token response. ``expires_in`` wins; ``.expires`` (RFC 1123 or ISO) is the fallback;
    neither present means the documented one-hour lifetime. Never fails on the date fields."""
    if not isinstance(data, dict) or not isinstance(data.get("access_token"), str):
        raise AuthenticationError("the token endpoint answered without an access_token")
    if not _is_header_safe(data["access_token"]):
        # Never echoed: it is a credential, and h11 would quote it in its "illegal header" error.
        raise AuthenticationError(
            "the token endpoint answered with an access_token that cannot be sent as a bearer token"
        )
    refresh = data.get("refresh_token")
    lifetime = _lifetime(data, wall_now)
    return Token(
        access_token=data["access_token"],
        refresh_token=refresh if isinstance(refresh, str) and refresh else None,
        expires_at=now + lifetime,
        refresh_at=now + lifetime - min(_REFRESH_MARGIN, lifetime / 10),
    )


def _is_header_safe(token: str) -> bool:
    """Non-empty visible ASCII: what an ``Authorization: Bearer`` header value can carry."""
    return bool(token) and token.isascii() and token.isprintable() and " " not in token


def _lifetime(data: dict[str, Any], wall_now: dt.datetime) -> float:
    expires_in = data.get("expires_in")
    if isinstance(expires_in, str) and expires_in.strip().isdigit():
        expires_in = int(expires_in)
    if isinstance(expires_in, int | float) and not isinstance(expires_in, bool) and expires_in > 0:
        return float(expires_in)
    expires = data.get(".expires")
    if isinstance(expires, str):
        when = parse_http_date(expires)
        issued_raw = data.get(".issued")
        issued = parse_http_date(issued_raw) if isinstance(issued_raw, str) else None
        if when is not None:
            seconds = (when - (issued or wall_now)).total_seconds()
            if seconds > 0:
                return seconds
    return _DEFAULT_LIFETIME
