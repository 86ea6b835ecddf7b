"""The retry rule as data and pure functions: the policy, the wait before a retry, whether to retry.

The fetcher's loop asks `may_retry` after a retryable failure and sleeps `backoff` seconds; no
function here sleeps, reads a clock or draws randomness of its own (``random`` is passed in), so
every decision can be tested without waiting.
"""

from __future__ import annotations

import datetime as dt
import math
import random as _random
import re
from collections.abc import Callable, Iterable
from typing import Any

import attrs

from ._exceptions import ConfigError
from ._tokens import parse_http_date

__all__ = [
    "MAX_RETRY_AFTER_DIGITS",
    "MAX_RETRY_AFTER_VALUES",
    "RATE_LIMITED_WAIT",
    "RETRY_AFTER_LIMIT",
    "RETRY_STATUSES",
    "RetryPolicy",
    "backoff",
    "may_retry",
    "parse_retry_after",
]

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
"""Statuses an idempotent request is retried on. 500 is included because VB365 answers passing
faults (a busy database, a restarting service) with it; a lasting 500 still fails after the retries."""

RATE_LIMITED_WAIT = 1.0
"""Seconds a 429 that names no readable ``Retry-After`` (or one of now) waits at least before its retry: VB365
throttles its token endpoint to about one request a second (``vb365-v6-v8.md`` §3.4), so an
earlier retry would only be refused again."""

MAX_RETRY_AFTER_DIGITS = 12
"""Digits read of a ``Retry-After`` delay; a longer one (a 5,000-digit header) is simply capped."""

RETRY_AFTER_LIMIT = 366 * 86400.0
"""The longest ``Retry-After`` read as it is (a year); a longer one reads as this. What the
server asked for is read up to here, to decide whether the policy allows waiting it out (see
`may_retry`) and to say in the error when to try again."""

_HANDLED = {
    401: "a 401 renews the access token and replays an idempotent request (retrying it too would ask "
    "for a new token on every retry; a job action's 401 is its answer)",
    400: "a 400 of the token endpoint is a refused password (retrying it would send the password again "
    "on every retry: repeated refusals can lock the account out)",
    403: "a 403 of the token endpoint is a refused password (retrying it would send the password again "
    "on every retry: repeated refusals can lock the account out)",
}
"""Failures the client handles itself, which `RetryPolicy.statuses` refuses, and why."""

_DELAY = re.compile(r"(-?)([0-9]+)(?:\.([0-9]*))?")
"""delay-seconds (RFC 9110: ``1*DIGIT``), with a fraction and a minus sign (meaning "now")
tolerated; ASCII digits only, so ``"²"`` or ``"٣"`` (digits to ``str.isdigit`` and ``float``)
are not delays."""


def _number(name: str, value: Any, *, minimum: float, inclusive: bool = True) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"RetryPolicy.{name} must be a number, got {type(value).__name__}")
    try:
        finite = math.isfinite(value)
    except OverflowError:  # an int too large for a float (10**400)
        finite = False
    if not finite:
        shown = repr(value) if isinstance(value, float) else "an int too large for a float"
        raise ConfigError(f"RetryPolicy.{name} must be a finite number, got {shown}")
    if value < minimum or (not inclusive and value == minimum):
        relation = ">=" if inclusive else ">"
        raise ConfigError(f"RetryPolicy.{name} must be {relation} {minimum:g}, got {value!r}")


def _check_attempts(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"RetryPolicy.attempts must be an int, got {type(value).__name__}")
    if value < 1:
        raise ConfigError(f"RetryPolicy.attempts must be >= 1, got {value!r}")


def _check_non_negative(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    _number(attribute.name, value, minimum=0.0)


def _check_timeout(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None:
        _number(attribute.name, value, minimum=0.0, inclusive=False)


def _statuses(value: Iterable[int]) -> frozenset[int]:
    """``statuses`` as a frozenset of ints 400–599 (failures: a 2xx retried would send every
    successful request ``attempts`` times, a 3xx is never followed, a 1xx never final); a str (an
    iterable of characters) refused, and a status the client handles itself (`_HANDLED`: a 401
    renews the token, a 400 or 403 of the token endpoint is a refused password)."""
    if isinstance(value, str | bytes | bytearray) or not isinstance(value, Iterable):
        raise ConfigError(
            f"RetryPolicy.statuses must be an iterable of status codes such as {{502, 503}}, "
            f"got {type(value).__name__}"
        )
    statuses: set[int] = set()
    for status in value:
        if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
            raise ConfigError(f"RetryPolicy.statuses must hold ints from 400 to 599, got {status!r}")
        if status < 400:
            raise ConfigError(
                f"RetryPolicy.statuses must hold failures (400 to 599), got {status}: "
                "a success is never retried and a redirect never followed"
            )
        if status in _HANDLED:
            raise ConfigError(f"RetryPolicy.statuses must not hold {status}: {_HANDLED[status]}")
        statuses.add(status)
    return frozenset(statuses)


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """How idempotent requests are retried: exponential backoff with jitter between
    ``wait_initial`` and ``wait_max`` seconds (plus up to ``wait_jitter`` seconds at random), at
    most ``attempts`` tries within ``timeout`` seconds of the first try (a wait for one of the
    client's slots before it does not count); a ``Retry-After`` is honoured up to
    ``max_retry_after`` seconds (a minute: VB365 throttles per second, minute and hour, answering
    ``Retry-After`` 1, 60 or 3600), and one longer than that is not retried at all: the error
    raised at once says when to try again. A ``Retry-After`` on one API request holds back the
    client's others (job actions too) until it ends, bounded the same way (the wait counts against
    ``timeout``); past the bound they fail at once, unsent. A 429 without one (or naming a wait
    of 0) waits at least a second (or ``wait_max`` if that is less). Transport errors are retried
    (not a TLS failure that fails every time: a refused certificate, a handshake the ends cannot
    agree on, ``https://`` to a plain HTTP port), and answers whose status is in
    ``statuses`` (429, 500, 502, 503 and 504 by default; 400, 401 and 403, which the client
    handles itself, are refused: a 401 renews the token and replays an idempotent request, a 400
    or 403 of the token endpoint is a refused password, never sent again at once).

    Every field is checked when the policy is built; an invalid one is a `ConfigError` naming it.
    ``statuses`` is stored as a frozenset.
    """

    attempts: int = attrs.field(default=4, validator=_check_attempts)
    wait_initial: float = attrs.field(default=0.1, validator=_check_non_negative)
    wait_max: float = attrs.field(default=5.0, validator=_check_non_negative)
    wait_jitter: float = attrs.field(default=0.5, validator=_check_non_negative)
    timeout: float | None = attrs.field(default=120.0, validator=_check_timeout)
    max_retry_after: float = attrs.field(default=60.0, validator=_check_non_negative)
    statuses: frozenset[int] = attrs.field(default=RETRY_STATUSES, converter=_statuses)


def backoff(
    policy: RetryPolicy,
    retry_number: int,
    *,
    retry_after: float | None = None,
    status: int | None = None,
    random: Callable[[], float] = _random.random,
    throttled: bool = False,
) -> float:
    """Seconds to wait before retry number ``retry_number`` (1 for the first retry).

    A server's ``Retry-After`` (already parsed, see `parse_retry_after`) wins, capped at
    ``max_retry_after``; except a 429's naming no wait after now (0, negative, a date past), which
    is no wait named: VB365 v6's throttle (WebApiThrottle) answers the period less the seconds
    past, rounded, so ``0`` while up to half a second of the window is left. Otherwise
    ``wait_initial * 2 ** (retry_number - 1)`` capped at ``wait_max`` (after a 429, ``status``, at
    least `RATE_LIMITED_WAIT`, or ``wait_max`` if that is less; the same with ``throttled``: a
    token grant that may have reached the server, whose throttle counted it), plus ``random() * wait_jitter``
    (``random`` gives a float in [0, 1)). Always finite and >= 0.
    """
    if isinstance(retry_number, bool) or not isinstance(retry_number, int) or retry_number < 1:
        raise ValueError(f"retry_number must be an int >= 1, got {retry_number!r}")
    if retry_after is not None and not math.isnan(retry_after) and not (status == 429 and retry_after <= 0):
        return min(max(float(retry_after), 0.0), float(policy.max_retry_after))
    if policy.wait_initial == 0 or retry_number > 1024:  # 2.0 ** 1024 overflows
        exponential = 0.0 if policy.wait_initial == 0 else float(policy.wait_max)
    else:
        exponential = min(policy.wait_initial * 2.0 ** (retry_number - 1), float(policy.wait_max))
    if status == 429 or throttled:
        # The floor before the jitter: after it, it swallowed the jitter (0.1-0.9 s) of every
        # early retry, so the requests a throttle refused together all retried together.
        exponential = max(exponential, min(RATE_LIMITED_WAIT, float(policy.wait_max)))
    draw = random()
    jitter = min(max(draw, 0.0), 1.0) if math.isfinite(draw) else 0.0
    return exponential + jitter * policy.wait_jitter


def may_retry(
    policy: RetryPolicy,
    *,
    attempts_made: int,
    elapsed: float,
    next_wait: float,
    retry_after: float | None = None,
) -> bool:
    """Whether another attempt may be made: ``attempts_made`` (the first try included) is below
    ``attempts``, the server's ``retry_after`` (parsed, None when it named none) is at most
    ``max_retry_after`` (retrying sooner would be refused again, waiting longer is more than the
    policy allows), and waiting ``next_wait`` more seconds still ends within ``timeout`` of the
    first try (``elapsed`` seconds ago). Non-finite or negative times answer False."""
    if attempts_made >= policy.attempts:
        return False
    if retry_after is not None and retry_after > policy.max_retry_after:  # NaN: unreadable, as in `backoff`
        return False
    if not (math.isfinite(elapsed) and math.isfinite(next_wait)) or elapsed < 0 or next_wait < 0:
        return False
    return policy.timeout is None or elapsed + next_wait <= policy.timeout


def parse_retry_after(
    value: str | None, *, now: dt.datetime, cap: float, date: str | None = None
) -> float | None:
    """Seconds to wait from a ``Retry-After`` header, in [0, ``cap``]; None when absent or
    unreadable. Never raises.

    delay-seconds are ASCII digits (a fraction tolerated; a negative delay means 0); a number
    longer than `MAX_RETRY_AFTER_DIGITS` digits is capped without being converted. An HTTP date
    (RFC 1123 or ISO 8601) counts from the answer's ``date`` (its ``Date`` header, RFC 9110
    §10.2.3: the server's clock, however far off the client's) when that is readable, else from
    ``now``: one in the past means 0, one far ahead means ``cap``. Exponents, ``+``, ``inf``,
    ``nan`` and non-ASCII digits are unreadable. The header sent several times (read joined by
    ``", "``: a proxy repeating the server's) means the longest readable wait of the first
    `MAX_RETRY_AFTER_VALUES`.
    """
    if not isinstance(value, str) or not value:
        return None
    cap = max(float(cap), 0.0) if math.isfinite(cap) else 0.0
    values = _retry_after_values(value) if "," in value else [value]
    waits = [_one_retry_after(part, now=now, cap=cap, date=date) for part in values]
    return max((wait for wait in waits if wait is not None), default=None)


def _sent_at(date: str | None, now: dt.datetime) -> dt.datetime:
    """When the answer was sent by the server's clock: its ``Date`` header when readable (ASCII,
    an RFC 1123 or ISO 8601 date), else ``now``."""
    sent = parse_http_date(date) if isinstance(date, str) and date.isascii() else None
    return sent if sent is not None else now


MAX_RETRY_AFTER_VALUES = 8
"""``Retry-After`` values read of a header sent several times."""

_WEEKDAY = re.compile(r"[ \t]*(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*[ \t]*", re.IGNORECASE)
"""The start of an HTTP date (``Wed, 21 Oct 2015 07:28:00 GMT``), whose comma separates no values."""


def _retry_after_values(text: str) -> list[str]:
    """The values of a ``Retry-After`` joined by ``", "``, at most `MAX_RETRY_AFTER_VALUES`
    (a date's weekday kept with the rest of it)."""
    values: list[str] = []
    parts = text.split(",", 2 * MAX_RETRY_AFTER_VALUES)
    while parts and len(values) < MAX_RETRY_AFTER_VALUES:
        part = parts.pop(0)
        if _WEEKDAY.fullmatch(part) and parts:
            part = f"{part},{parts.pop(0)}"
        values.append(part)
    return values


def _one_retry_after(value: str, *, now: dt.datetime, cap: float, date: str | None) -> float | None:
    """`parse_retry_after` of one value (``cap`` finite and >= 0)."""
    text = value.strip(" \t")
    delay = _DELAY.fullmatch(text)
    if delay is not None:
        sign, whole, fraction = delay.group(1), delay.group(2).lstrip("0"), delay.group(3) or ""
        if sign:
            return 0.0
        if len(whole) > MAX_RETRY_AFTER_DIGITS:
            return cap
        seconds = float(f"{whole or '0'}.{fraction[:MAX_RETRY_AFTER_DIGITS] or '0'}")
        return min(seconds, cap)
    if not text.isascii():
        return None
    when = parse_http_date(text)
    if when is None:
        return None
    now = _sent_at(date, now)
    if now.tzinfo is None:
        now = now.replace(tzinfo=dt.UTC)
    return min(max((when - now).total_seconds(), 0.0), cap)
