"""Issued OAuth tokens: opaque access/refresh pairs with expiry by the simulator's clock."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

import attrs

from ._wireformat import format_http_date

__all__ = ["TokenStore"]

_ACCESS_PREFIX = "AQAAANCMnd8BFdERjHoAwE_Cl-sBAAAA"  # how v1 (DPAPI-protected) tokens start


@attrs.define
class TokenStore:
    """Access tokens (valid until their expiry) and single-use refresh tokens.

    One store serves every API version: a token issued by ``/v8/Token`` is accepted on
    ``/v7/...`` and the other way round. `wall` gives the simulated wall time (Unix seconds)
    written into ``.issued``/``.expires``.
    """

    clock: Callable[[], float]
    lifetime: float
    wall: Callable[[], float] = time.time
    _access: dict[str, float] = attrs.Factory(dict)
    _refresh: dict[str, str] = attrs.Factory(dict)
    _pairs: dict[str, str] = attrs.Factory(dict)
    """Access token → the refresh token issued with it (for logout)."""

    def issue(self, username: str) -> dict[str, object]:
        """A new token pair as the token endpoint's 200 body (v1 form: RFC 1123 dates)."""
        access = _ACCESS_PREFIX + secrets.token_urlsafe(48)
        refresh = secrets.token_hex(16)
        self._access[access] = self.clock() + self.lifetime
        self._refresh[refresh] = username
        self._pairs[access] = refresh
        issued = self.wall()
        return {
            "access_token": access,
            "token_type": "bearer",
            "expires_in": int(self.lifetime),
            "refresh_token": refresh,
            "userName": username,
            ".issued": format_http_date(issued),
            ".expires": format_http_date(issued + self.lifetime),
        }

    def holder(self, refresh_token: str) -> str | None:
        """The user a refresh token was issued to, without using it up; None if unknown/used."""
        return self._refresh.get(refresh_token)

    def redeem(self, refresh_token: str) -> str | None:
        """Use up a refresh token; the user it was issued to, or None if unknown/used."""
        return self._refresh.pop(refresh_token, None)

    def is_valid(self, access_token: str) -> bool:
        """Whether an access token was issued, is not revoked and has not expired."""
        expiry = self._access.get(access_token)
        if expiry is None:
            return False
        if self.clock() >= expiry:
            del self._access[access_token]
            return False
        return True

    def log_out(self, access_token: str) -> None:
        """Revoke one access token and the refresh token issued with it."""
        self._access.pop(access_token, None)
        refresh = self._pairs.pop(access_token, None)
        if refresh is not None:
            self._refresh.pop(refresh, None)

    def revoke(self, *, refresh_tokens: bool = False) -> int:
        """Forget all access tokens (and refresh tokens too if asked); how many were dropped."""
        count = len(self._access)
        self._access.clear()
        if refresh_tokens:
            count += len(self._refresh)
            self._refresh.clear()
        return count
