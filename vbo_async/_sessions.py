"""A signed-in client's token pair, saved to be resumed by another process (pure, no I/O).

VB365 throttles its token endpoint (1 grant a second, 5 a minute, 1,500 an hour by default,
``vb365-v6-v8.md`` §3.4): a program that runs once a minute per tenant (a monitoring plugin
for each of 50 tenants of one server, a serverless handler) cannot sign in on every run. It
saves the session of one run (`VBOClient.saved_session`, `SavedSession.to_json`) where only it
can read it, and the next run resumes it (`VBOClient.resume`): no grant while the access token
is valid, a refresh grant once it is due, the password only when the refresh token is refused.

A `SavedSession` carries its tokens: it shows them in no repr, and refuses to be pickled
(`ConfigError`), since nothing may put a token into a pickle behind its owner's back; its JSON
is the one way out, asked for by name.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, NoReturn

import attrs

from ._dialects import DIALECTS
from ._exceptions import ConfigError
from ._tokens import MAX_TOKEN_LENGTH, Token, is_header_safe

__all__ = ["FORMAT", "SavedSession"]

FORMAT = "vbo-async session 1"
"""The ``format`` member of `SavedSession.to_json`: text of another shape (or a later format) is
refused by `SavedSession.from_json`, never half read."""

_FIELDS = (
    "format",
    "base_url",
    "username",
    "api_version",
    "access_token",
    "refresh_token",
    "expires",
    "renew_after",
)


@attrs.frozen(repr=False)
class SavedSession:
    """A client's token pair as `VBOClient.saved_session` gives it, for `VBOClient.resume`.

    ``expires`` and ``renew_after`` are aware datetimes on this machine's clock: when the access
    token expires, and when a client resuming it renews it first (shortly before expiry). The
    session belongs to one server (``base_url``, as `VBOClient.base_url` gives it), one user and
    one API version: `VBOClient.resume` refuses another server's or user's.
    """

    base_url: str
    username: str
    api_version: str
    access_token: str
    refresh_token: str | None
    expires: dt.datetime
    renew_after: dt.datetime

    def __repr__(self) -> str:
        return (
            f"SavedSession(base_url={self.base_url!r}, username={self.username!r}, "
            f"api_version={self.api_version!r}, expires={self.expires.isoformat()!r}, tokens=***)"
        )

    def __reduce__(self) -> NoReturn:
        raise ConfigError(
            "a SavedSession cannot be pickled: it holds tokens; store its to_json() text where only "
            "its owner can read it, as you would the password"
        )

    def __copy__(self) -> SavedSession:
        return self  # frozen: the copy is itself (copy's default would pickle it)

    def __deepcopy__(self, memo: dict[int, Any]) -> SavedSession:
        return self

    @classmethod
    def of(
        cls,
        token: Token,
        *,
        base_url: str,
        username: str,
        api_version: str,
        now: float,
        wall_now: dt.datetime,
    ) -> SavedSession:
        """``token`` (times on the monotonic clock, which reads ``now``) saved with this machine's
        wall clock, which reads ``wall_now``."""
        return cls(
            base_url=base_url,
            username=username,
            api_version=api_version,
            access_token=token.access_token,
            refresh_token=token.refresh_token,
            expires=wall_now + dt.timedelta(seconds=token.expires_at - now),
            renew_after=wall_now + dt.timedelta(seconds=token.refresh_at - now),
        )

    def token(self, *, now: float, wall_now: dt.datetime) -> Token:
        """The token pair on the monotonic clock, which reads ``now`` while the wall clock reads
        ``wall_now``."""
        return Token(
            access_token=self.access_token,
            refresh_token=self.refresh_token,
            expires_at=now + (self.expires - wall_now).total_seconds(),
            refresh_at=now + (self.renew_after - wall_now).total_seconds(),
        )

    def to_json(self) -> str:
        """The session as JSON text, tokens included: store it as you would the password (a file
        only its owner can read: ``vbo-async check --token-cache`` writes mode 0600)."""
        return json.dumps(
            {
                "format": FORMAT,
                "base_url": self.base_url,
                "username": self.username,
                "api_version": self.api_version,
                "access_token": self.access_token,
                "refresh_token": self.refresh_token,
                "expires": self.expires.isoformat(),
                "renew_after": self.renew_after.isoformat(),
            }
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> SavedSession:
        """The session `to_json` wrote; `ConfigError` saying what is wrong with anything else
        (never quoting a value: it may hold a token)."""
        try:
            data = json.loads(text)
        except (ValueError, TypeError, RecursionError):  # UnicodeDecodeError is a ValueError
            raise ConfigError("not a saved vbo-async session: not JSON text") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ConfigError(f"not a saved vbo-async session: no 'format': {FORMAT!r} member") from None
        unknown = sorted(str(key)[:40] for key in data if key not in _FIELDS)
        if unknown:
            raise ConfigError(f"not a saved vbo-async session: unknown member {unknown[0]!r}")
        texts = {name: _text(data, name) for name in ("base_url", "username", "api_version", "access_token")}
        if texts["api_version"] not in DIALECTS:
            raise ConfigError(
                f"not a saved vbo-async session: 'api_version' is none of {', '.join(DIALECTS)}"
            )
        refresh = data.get("refresh_token")
        if refresh is not None:
            refresh = _text(data, "refresh_token")
        for name, token in (("access_token", texts["access_token"]), ("refresh_token", refresh)):
            if token is not None and not _bearer_safe(token):
                raise ConfigError(
                    f"not a saved vbo-async session: '{name}' is no token (empty, longer than "
                    f"{MAX_TOKEN_LENGTH} characters, or not all visible ASCII)"
                )
        return cls(
            base_url=texts["base_url"],
            username=texts["username"],
            api_version=texts["api_version"],
            access_token=texts["access_token"],
            refresh_token=refresh,
            expires=_time(data, "expires"),
            renew_after=_time(data, "renew_after"),
        )


def _text(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"not a saved vbo-async session: '{name}' is not a non-empty string")
    return value


def _time(data: dict[str, Any], name: str) -> dt.datetime:
    value = data.get(name)
    try:
        when = dt.datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        raise ConfigError(f"not a saved vbo-async session: '{name}' is not an ISO 8601 time with an offset")
    return when


def _bearer_safe(token: str) -> bool:
    """What a saved token must be to be sent again: what the token endpoint's answer must be
    (`parse_token_response`), non-empty visible ASCII of at most `MAX_TOKEN_LENGTH`."""
    return len(token) <= MAX_TOKEN_LENGTH and is_header_safe(token)
