"""The v6+ token endpoint's rate limit: WebApiThrottle's fixed windows per user name and period."""

from __future__ import annotations

from typing import TypeAlias

import attrs

__all__ = ["TOKEN_QUOTA", "TokenQuota", "TokenThrottle"]

TokenQuota: TypeAlias = tuple[tuple[int, int], ...]
"""``(period seconds, limit)`` pairs, shortest period first."""

TOKEN_QUOTA: TokenQuota = ((1, 1), (60, 5), (3600, 1500))
"""The v6 server's token endpoint limits (reference §3.4): a request a second, 5 a minute, 1500 an
hour. Fixed minute windows let at most about 305 requests through in an hour, so with these the
hour's limit is never reached."""


@attrs.define
class TokenThrottle:
    """How many token requests each user name made in the current window of each period.

    This is what WebApiThrottle (the v6 server's throttling middleware, reference §3.4) does,
    ``StackBlockedRequests`` off (its default). A request is checked against the periods of
    `quota` in order, shortest first (second, minute, hour), and each period checked counts it:
    in its current window, which lasts `period` seconds from the request that opened it, its end
    included (``Timestamp + timeSpan >= UtcNow``), or, that window over, in a new one it opens.
    The first period whose count then exceeds its limit refuses the request, and the longer
    periods neither see nor count it; a request let through is counted by every period. So a
    refusal still counts in the period that refused it and in the shorter ones.

    A refusal names its ``Retry-After`` as WebApiThrottle's ``RetryAfterFrom`` does: 1 for a
    period of a second, else the period less the seconds since its window opened, rounded to the
    nearest whole second, halves to even (``Convert.ToInt32``): 0 at the very end of the window.
    """

    quota: TokenQuota = TOKEN_QUOTA
    _windows: dict[tuple[str, int], tuple[float, int]] = attrs.Factory(dict)
    """``(user name, period)``: the window's start (seconds) and the requests counted in it."""

    def retry_after(self, username: str, now: float) -> int | None:
        """Count one token request by `username` at `now` (seconds): None if it is let through,
        else the ``Retry-After`` seconds of its refusal."""
        for period, limit in self.quota:
            start, count = self._windows.get((username, period), (now, 0))
            if start + period < now:
                start, count = now, 0
            self._windows[username, period] = (start, count + 1)
            if count + 1 > limit:
                return period - round(now - start) if period > 1 else 1
        return None
