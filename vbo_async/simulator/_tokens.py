"""Issued OAuth tokens: opaque access/refresh pairs with expiry by the simulator's clock."""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Callable

import attrs

from ._wireformat import format_http_date

__all__ = ["MAX_TOKENS", "MAX_TOKEN_LIFETIME", "REFRESH_LIFETIME", "TokenStore"]

_ACCESS_PREFIX = "AQAAANCMnd8BFdERjHoAwE_Cl-sBAAAA"  # how v1 (DPAPI-protected) tokens start

REFRESH_LIFETIME = 14 * 24 * 3600.0
"""Seconds an unused refresh token is accepted after issue (never less than the access token's
lifetime). The servers' own figure is not documented; 14 days is ASP.NET Core's default for
refresh tokens. A client idle past its access token's expiry still refreshes."""
MAX_TOKEN_LIFETIME = 100 * 365.25 * 24 * 3600
"""Longest access token lifetime a `SimulatorConfig` accepts (a century): a token's ``.expires``
is a date, and some thousands of years ahead no date can hold it."""
MAX_TOKENS = 10_000
"""Access tokens, and refresh tokens, a store holds at most: beyond it the oldest are forgotten
first (a client logging in every sweep without logging out must not grow it for ever)."""


@attrs.define
class TokenStore:
    """Access tokens (valid until their expiry) and single-use refresh tokens.

    One store serves every API version: a token issued by ``/v8/Token`` is accepted on
    ``/v7/...`` and the other way round. `wall` gives the simulated wall time (Unix seconds)
    written into ``.issued``/``.expires``. Expired, used and logged-out tokens are dropped, and at
    most `MAX_TOKENS` of each kind are held: the tables are in issue order, so issuing a pair
    drops the stale ones at their front.
    """

    clock: Callable[[], float]
    lifetime: float
    wall: Callable[[], float] = time.time
    refresh_lifetime: float | None = None
    """Seconds a refresh token is accepted after issue; None: `REFRESH_LIFETIME`, or `lifetime`
    when longer."""
    _access: OrderedDict[str, float] = attrs.Factory(OrderedDict)
    """Access token → its expiry, oldest first."""
    _refresh: OrderedDict[str, tuple[str, float]] = attrs.Factory(OrderedDict)
    """Refresh token → the user it was issued to and its expiry, oldest first."""
    _pairs: dict[str, str] = attrs.Factory(dict)
    """Access token → the refresh token issued with it (for logout), while the access token is held."""

    def issue(self, username: str) -> dict[str, object]:
        """A new token pair as the token endpoint's 200 body (v1 form: RFC 1123 dates)."""
        access = _ACCESS_PREFIX + secrets.token_urlsafe(48)
        refresh = secrets.token_hex(16)
        now = self.clock()
        self._access[access] = now + self.lifetime
        refresh_lifetime = self.refresh_lifetime
        if refresh_lifetime is None:
            refresh_lifetime = max(REFRESH_LIFETIME, self.lifetime)
        self._refresh[refresh] = (username, now + refresh_lifetime)
        self._pairs[access] = refresh
        self._drop_stale(now)
        issued = self.wall()
        return {
            "access_token": access,
            "token_type": "bearer",
            # Whole seconds, cut down (never later than the token is refused), but at least 1:
            # ``expires_in: 0`` reads as no lifetime at all (a client falls back to an hour).
            "expires_in": max(1, int(self.lifetime)),
            "refresh_token": refresh,
            "userName": username,
            ".issued": format_http_date(issued),
            ".expires": format_http_date(issued + self.lifetime),
        }

    def holder(self, refresh_token: str) -> str | None:
        """The user a refresh token was issued to, without using it up; None if unknown/used/expired."""
        held = self._refresh.get(refresh_token)
        return held[0] if held is not None and self.clock() < held[1] else None

    def redeem(self, refresh_token: str) -> str | None:
        """Use up a refresh token; the user it was issued to, or None if unknown/used/expired."""
        held = self._refresh.pop(refresh_token, None)
        return held[0] if held is not None and self.clock() < held[1] else None

    def is_valid(self, access_token: str) -> bool:
        """Whether an access token was issued, is not revoked and has not expired."""
        expiry = self._access.get(access_token)
        if expiry is None:
            return False
        if self.clock() >= expiry:
            self._drop_access(access_token)
            return False
        return True

    def log_out(self, access_token: str) -> None:
        """Revoke one access token and the refresh token issued with it."""
        refresh = self._pairs.get(access_token)
        self._drop_access(access_token)
        if refresh is not None:
            self._refresh.pop(refresh, None)

    def revoke(self, *, refresh_tokens: bool = False) -> int:
        """Forget all access tokens (and refresh tokens too if asked); how many were dropped."""
        count = len(self._access)
        self._access.clear()
        self._pairs.clear()
        if refresh_tokens:
            count += len(self._refresh)
            self._refresh.clear()
        return count

    def _drop_access(self, access_token: str) -> None:
        self._access.pop(access_token, None)
        self._pairs.pop(access_token, None)

    def _drop_stale(self, now: float) -> None:
        """Drop, from the front of each table, tokens expired at ``now`` and those beyond
        `MAX_TOKENS` (a token issued later with a shorter lifetime waits for the ones before it)."""
        while self._access:
            access, expiry = next(iter(self._access.items()))
            if now < expiry and len(self._access) <= MAX_TOKENS:
                break
            self._drop_access(access)
        while self._refresh:
            refresh, (_, expiry) = next(iter(self._refresh.items()))
            if now < expiry and len(self._refresh) <= MAX_TOKENS:
                break
            del self._refresh[refresh]
