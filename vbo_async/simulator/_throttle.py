"""The v6+ token endpoint's rate limit: WebApiThrottle's fixed one-second window per user name."""

from __future__ import annotations

import attrs

__all__ = ["TokenThrottle"]


@attrs.define
class TokenThrottle:
    """How many token requests each user name made in its current window.

    WebApiThrottle (the v6 server's throttling middleware, reference §3.4) counts requests in a
    fixed window opened by the first one (``EndpointTokensPerSecond = 1``): a request beyond
    `limit` within `window` seconds is refused until the window has passed. Refused requests
    count too, as they do in WebApiThrottle.
    """

    window: float = 1.0
    limit: int = 1
    _counts: dict[str, tuple[float, int]] = attrs.Factory(dict)

    def allows(self, username: str, now: float) -> bool:
        """Count one request by `username` at `now` (seconds); whether it is within the limit."""
        start, count = self._counts.get(username, (now, 0))
        if now - start >= self.window:
            start, count = now, 0
        self._counts[username] = (start, count + 1)
        return count + 1 <= self.limit
