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
from collections.abc import Callable
from typing import Any, NoReturn

import attrs

from ._dialects import DIALECTS
from ._exceptions import ConfigError
from ._tokens import MAX_LIFETIME, MAX_TOKEN_LENGTH, Token, is_header_safe

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
    "version_found",
)

_EARLIEST = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class _Refused(Exception):
    """What makes a value no part of a session (said without quoting it: it may be a token)."""


def _text(name: str, value: object) -> None:
    if not isinstance(value, str) or not value:
        raise _Refused(f"'{name}' is not a non-empty string")


def _version(name: str, value: object) -> None:
    if not isinstance(value, str) or value not in DIALECTS:  # a list is not hashable
        raise _Refused(f"'{name}' is none of {', '.join(DIALECTS)}")


def _token(name: str, value: object) -> None:
    _text(name, value)
    assert isinstance(value, str)
    if len(value) > MAX_TOKEN_LENGTH or not is_header_safe(value):
        raise _Refused(
            f"'{name}' is no token (longer than {MAX_TOKEN_LENGTH} characters, or not all visible ASCII)"
        )


def _refresh(name: str, value: object) -> None:
    """A refresh token goes in a form's body, never a header: any text the token endpoint gave
    (`parse_token_response` takes any up to `MAX_TOKEN_LENGTH`)."""
    _text(name, value)
    assert isinstance(value, str)
    if len(value) > MAX_TOKEN_LENGTH:
        raise _Refused(f"'{name}' is no token (longer than {MAX_TOKEN_LENGTH} characters)")


def _time(name: str, value: object) -> None:
    """An aware time from 1970 to two years from now: a token lives a year at most
    (`MAX_LIFETIME`), and a time far beyond would overflow ``datetime`` once converted."""
    if not isinstance(value, dt.datetime) or value.utcoffset() is None:
        raise _Refused(f"'{name}' is not a time with an offset")
    latest = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2 * MAX_LIFETIME)
    if not _EARLIEST <= value <= latest:
        raise _Refused(f"'{name}' is not between 1970 and two years from now")


def _optional(check: Callable[[str, object], None]) -> Callable[[str, object], None]:
    def optional(name: str, value: object) -> None:
        if value is not None:
            check(name, value)

    return optional


def _checked(check: Callable[[str, object], None]) -> Callable[[object, attrs.Attribute[Any], object], None]:
    """An attrs validator running ``check(name, value)``, its refusal a `ConfigError`."""

    def validate(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        try:
            check(attribute.name, value)
        except _Refused as exc:
            raise ConfigError(f"SavedSession: {exc}") from None

    return validate


@attrs.frozen(repr=False)
class SavedSession:
    """A client's token pair as `VBOClient.saved_session` gives it, for `VBOClient.resume`.

    ``expires`` and ``renew_after`` are aware datetimes on this machine's clock: when the access
    token expires, and when a client resuming it renews it first (shortly before expiry). The
    session belongs to one server (``base_url``, as `VBOClient.base_url` gives it), one user and
    one API version: `VBOClient.resume` refuses another server's or user's. ``version_found`` is
    when an ``api_version="auto"`` client found that version (None for a client given its
    version): whoever keeps the session may look for the version again after a while (a server
    upgraded since serves a newer one; ``check --token-cache`` does so after a day). Every field
    is checked as the session is made (`ConfigError`, never quoting a token).
    """

    base_url: str = attrs.field(validator=_checked(_text))
    username: str = attrs.field(validator=_checked(_text))
    api_version: str = attrs.field(validator=_checked(_version))
    access_token: str = attrs.field(validator=_checked(_token))
    refresh_token: str | None = attrs.field(validator=_checked(_optional(_refresh)))
    expires: dt.datetime = attrs.field(validator=_checked(_time))
    renew_after: dt.datetime = attrs.field(validator=_checked(_time))
    version_found: dt.datetime | None = attrs.field(default=None, validator=_checked(_optional(_time)))

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
        version_found: dt.datetime | None = None,
    ) -> SavedSession:
        """``token`` (times on the monotonic clock, which reads ``now``) saved with this machine's
        wall clock, which reads ``wall_now``; its times to the millisecond, so that the same token
        saved twice gives the same session."""
        return cls(
            base_url=base_url,
            username=username,
            api_version=api_version,
            access_token=token.access_token,
            refresh_token=token.refresh_token,
            expires=_to_millisecond(wall_now + dt.timedelta(seconds=token.expires_at - now)),
            renew_after=_to_millisecond(wall_now + dt.timedelta(seconds=token.refresh_at - now)),
            version_found=version_found,
        )

    def same_tokens(self, other: SavedSession | None) -> bool:
        """Whether ``other`` holds this session's token pair (whatever its times say)."""
        return (
            other is not None
            and other.access_token == self.access_token
            and other.refresh_token == self.refresh_token
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
                "version_found": None if self.version_found is None else self.version_found.isoformat(),
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
        try:
            fields: dict[str, Any] = {name: data.get(name) for name in _FIELDS[1:]}
            for name in ("expires", "renew_after", "version_found"):
                if fields[name] is not None or name != "version_found":
                    fields[name] = _parsed_time(name, fields[name])
            return cls(**fields)
        except _Refused as exc:
            raise ConfigError(f"not a saved vbo-async session: {exc}") from None
        except ConfigError as exc:
            said = str(exc).removeprefix("SavedSession: ")
            raise ConfigError(f"not a saved vbo-async session: {said}") from None


def _parsed_time(name: str, value: object) -> dt.datetime:
    try:
        when = dt.datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        when = None
    if when is None or when.utcoffset() is None:
        raise _Refused(f"'{name}' is not an ISO 8601 time with an offset")
    return when


def _to_millisecond(when: dt.datetime) -> dt.datetime:
    return when.replace(microsecond=when.microsecond // 1000 * 1000)
