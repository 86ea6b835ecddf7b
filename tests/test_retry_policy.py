"""Retries: the policy checked where it is built, and the pure retry rule (vbo_async._retry)."""

from __future__ import annotations

import datetime as dt
import email.utils
import math
import os
import re
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import vbo_async
from vbo_async import ConfigError, _fetch, _status
from vbo_async._retry import (
    RATE_LIMITED_WAIT,
    RETRY_STATUSES,
    RetryPolicy,
    backoff,
    may_retry,
    parse_retry_after,
)

PROPERTY = settings(
    max_examples=int(os.environ.get("VBO_PROPERTY_EXAMPLES", "150")),
    deadline=None,
    derandomize=os.environ.get("VBO_PROPERTY_RANDOM") != "1",
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
NOW = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
NAN = float("nan")
INF = float("inf")


# --- the policy -----------------------------------------------------------------------------------


def test_the_policy_keeps_its_fields_defaults_and_names() -> None:
    policy = RetryPolicy()
    assert attrs.asdict(policy) == {
        "attempts": 4,
        "wait_initial": 0.1,
        "wait_max": 5.0,
        "wait_jitter": 0.5,
        "timeout": 120.0,
        "max_retry_after": 60.0,
        "statuses": RETRY_STATUSES,
    }
    assert frozenset({429, 500, 502, 503, 504}) == RETRY_STATUSES
    assert vbo_async.RetryPolicy is RetryPolicy
    assert _fetch.RetryPolicy is RetryPolicy  # old imports keep working
    assert _status.parse_retry_after is parse_retry_after
    assert _status.RETRY_STATUSES is RETRY_STATUSES


NUMBERS = ["wait_initial", "wait_max", "wait_jitter", "max_retry_after"]
INVALID: list[tuple[str, Any]] = [
    ("attempts", 0),
    ("attempts", -1),
    ("attempts", "3"),
    ("attempts", 3.0),
    ("attempts", True),
    ("attempts", None),
    *[(name, value) for name in NUMBERS for value in (-1, -0.5, NAN, INF, -INF, "0.1", True, None, [1])],
    ("timeout", "x"),
    ("timeout", 0),
    ("timeout", -1),
    ("timeout", NAN),
    ("timeout", INF),
    ("timeout", True),
    # An int too large for a float: a ConfigError, not the OverflowError of converting it.
    *[(name, 10**400) for name in [*NUMBERS, "timeout"]],
    ("statuses", "500"),
    ("statuses", b"500"),
    ("statuses", None),
    ("statuses", 500),
    ("statuses", [500, "502"]),
    ("statuses", [99]),
    ("statuses", [600]),
    # Not failures: a success is never retried, a 3xx never followed, a 1xx never final.
    ("statuses", [200]),
    ("statuses", [204, 503]),
    ("statuses", [302]),
    ("statuses", [304]),
    ("statuses", [100]),
    ("statuses", [399]),
    ("statuses", [True]),
    ("statuses", {503.0}),
    # Handled by the client itself: a 401 renews the token and replays; a 400, 401 or 403 of the
    # token endpoint is a refused grant, whose password is not sent again (an account lockout).
    ("statuses", [401]),
    ("statuses", {503, 401}),
    ("statuses", [400]),
    ("statuses", [403]),
]


@pytest.mark.parametrize(("field", "value"), INVALID)
def test_an_invalid_field_is_a_config_error_naming_it(field: str, value: Any) -> None:
    with pytest.raises(ConfigError, match=rf"RetryPolicy\.{field}\b") as caught:
        RetryPolicy(**{field: value})
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(("field", "value"), INVALID[:12])
def test_evolving_into_an_invalid_policy_is_refused_too(field: str, value: Any) -> None:
    with pytest.raises(ConfigError, match=field):
        attrs.evolve(RetryPolicy(), **{field: value})


def test_valid_edge_values_are_accepted() -> None:
    policy = RetryPolicy(
        attempts=1, wait_initial=0, wait_max=0, wait_jitter=0, timeout=None, max_retry_after=0, statuses=[]
    )
    assert policy.statuses == frozenset()
    assert RetryPolicy(timeout=0.001, wait_initial=1).timeout == 0.001
    statuses = RetryPolicy(statuses=(s for s in [502, 503, 503])).statuses
    assert statuses == frozenset({502, 503})
    assert isinstance(statuses, frozenset)
    assert RetryPolicy(statuses=[402, 599]).statuses == {402, 599}


@pytest.mark.parametrize(
    ("status", "says"),
    [
        (401, "401 renews the access token and replays an idempotent request"),
        (400, "400 of the token endpoint is a refused password"),
        (403, "403 of the token endpoint is a refused password"),
    ],
)
def test_a_status_the_client_handles_itself_is_refused_saying_why(status: int, says: str) -> None:
    """``RetryPolicy(statuses={401})`` retried a 401 the renewal had already replayed: every
    retry renewed the token again (grants multiplied), and a refused password was sent again
    ``attempts`` times, which the client otherwise never does (repeated refusals lock accounts)."""
    with pytest.raises(ConfigError, match=re.escape(says)):
        RetryPolicy(statuses=[503, status])


# --- backoff --------------------------------------------------------------------------------------

policies = st.builds(
    RetryPolicy,
    attempts=st.integers(1, 50),
    wait_initial=st.floats(0, 1e6),
    wait_max=st.floats(0, 1e6),
    wait_jitter=st.floats(0, 1e3),
    timeout=st.none() | st.floats(0.001, 1e6),
    max_retry_after=st.floats(0, 1e6),
)
draws = st.floats(0, 1, exclude_max=True)


def test_backoff_is_exponential_capped_then_jittered() -> None:
    policy = RetryPolicy(wait_initial=0.1, wait_max=1.0, wait_jitter=0.5)
    waits = [backoff(policy, n, random=lambda: 0.0) for n in range(1, 7)]
    assert waits == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])
    assert backoff(policy, 1, random=lambda: 0.5) == pytest.approx(0.35)
    assert backoff(policy, 9, random=lambda: 0.999) == pytest.approx(1.4995)


def test_retry_after_wins_capped_at_max_retry_after() -> None:
    policy = RetryPolicy(wait_initial=3, max_retry_after=30)
    assert backoff(policy, 1, retry_after=0.0, random=lambda: 0.9) == 0.0
    assert backoff(policy, 1, retry_after=12.5) == 12.5
    assert backoff(policy, 1, retry_after=3600) == 30
    assert backoff(policy, 1, retry_after=INF) == 30
    assert backoff(policy, 1, retry_after=-4) == 0
    assert backoff(policy, 1, retry_after=NAN, random=lambda: 0.0) == 3  # unreadable: the backoff


def test_a_429_without_retry_after_waits_at_least_a_second() -> None:
    """VB365 throttles its token endpoint to about a request a second: a 429 that names no wait
    is retried after at least `RATE_LIMITED_WAIT` (or ``wait_max``, if the policy waits less)."""
    policy = RetryPolicy(wait_initial=0.1, wait_max=5.0, wait_jitter=0.5)
    assert backoff(policy, 1, status=429, random=lambda: 0.0) == RATE_LIMITED_WAIT == 1.0
    assert backoff(policy, 1, status=503, random=lambda: 0.0) == pytest.approx(0.1)
    assert backoff(policy, 6, status=429, random=lambda: 0.0) == 3.2  # the backoff, once it is longer
    assert backoff(policy, 1, status=429, retry_after=2.0) == 2.0  # the server's own word wins
    # A 429 naming a wait of now: WebApiThrottle's rounding, with up to half a second left.
    assert backoff(policy, 1, status=429, retry_after=0.0, random=lambda: 0.0) == RATE_LIMITED_WAIT
    assert backoff(policy, 1, status=503, retry_after=0.0, random=lambda: 0.0) == 0.0
    assert backoff(RetryPolicy(wait_initial=0, wait_max=0.3), 1, status=429, random=lambda: 0.0) == 0.3
    assert backoff(RetryPolicy(wait_initial=0, wait_max=0, wait_jitter=0), 1, status=429) == 0.0


@pytest.mark.parametrize("number", [1, 2, 3, 4])
def test_a_429_without_retry_after_keeps_its_jitter(number: int) -> None:
    """The second's floor was applied after the jitter: under the default policy every retry of a
    429 naming no wait (the first three: 0.1-0.9 s with jitter) waited exactly 1.0 s, so the
    requests of a sweep throttled together retried together, into the same throttle."""
    policy = RetryPolicy()
    low, high = (backoff(policy, number, status=429, random=lambda d=d: d) for d in (0.0, 0.99))
    assert low >= RATE_LIMITED_WAIT
    assert high - low == pytest.approx(0.99 * policy.wait_jitter)


@PROPERTY
@given(policy=policies, number=st.integers(1, 60), draw=draws)
def test_a_429_s_wait_is_the_floor_then_the_jitter(policy: RetryPolicy, number: int, draw: float) -> None:
    wait = backoff(policy, number, status=429, random=lambda: draw)
    exponential = min(policy.wait_initial * 2 ** (number - 1), policy.wait_max)
    floor = min(RATE_LIMITED_WAIT, policy.wait_max)
    assert wait == pytest.approx(max(exponential, floor) + draw * policy.wait_jitter)
    assert wait <= policy.wait_max + policy.wait_jitter


@PROPERTY
@given(policy=policies, number=st.integers(1, 60), draw=draws)
def test_a_throttled_grant_waits_as_a_429_naming_no_wait(
    policy: RetryPolicy, number: int, draw: float
) -> None:
    """``throttled`` (a password grant cut off after it reached the server, which counted it): the
    same floor as a 429's, after a transport error (no status)."""
    wait = backoff(policy, number, throttled=True, random=lambda: draw)
    assert wait == backoff(policy, number, status=429, random=lambda: draw)
    assert wait >= min(RATE_LIMITED_WAIT, policy.wait_max)


@pytest.mark.parametrize("number", [0, -1, True, 1.5, "1", None])
def test_backoff_refuses_a_bad_retry_number(number: Any) -> None:
    with pytest.raises(ValueError, match="retry_number"):
        backoff(RetryPolicy(), number)


@PROPERTY
@given(policy=policies, number=st.integers(1, 10**6), draw=draws)
def test_backoff_is_bounded_and_follows_the_formula(policy: RetryPolicy, number: int, draw: float) -> None:
    wait = backoff(policy, number, random=lambda: draw)
    assert math.isfinite(wait)
    assert 0 <= wait <= policy.wait_max + policy.wait_jitter
    if number <= 60:
        expected = min(policy.wait_initial * 2 ** (number - 1), policy.wait_max) + draw * policy.wait_jitter
        assert wait == pytest.approx(expected)
    assert backoff(policy, number + 1, random=lambda: draw) >= wait  # never shrinks


@PROPERTY
@given(
    policy=policies,
    number=st.integers(1, 10**6),
    retry_after=st.floats(allow_nan=True, allow_infinity=True),
    draw=st.floats(allow_nan=True, allow_infinity=True),
)
def test_backoff_never_fails_on_hostile_inputs(
    policy: RetryPolicy, number: int, retry_after: float, draw: float
) -> None:
    wait = backoff(policy, number, retry_after=retry_after, random=lambda: draw)
    assert math.isfinite(wait)
    assert wait >= 0
    if not math.isnan(retry_after):
        assert wait <= policy.max_retry_after
    else:
        assert wait <= policy.wait_max + policy.wait_jitter


# --- may_retry ------------------------------------------------------------------------------------


def test_may_retry_counts_attempts_and_the_deadline() -> None:
    policy = RetryPolicy(attempts=3, timeout=10)
    assert may_retry(policy, attempts_made=1, elapsed=0, next_wait=1)
    assert may_retry(policy, attempts_made=2, elapsed=5, next_wait=5)  # ends exactly at the deadline
    assert not may_retry(policy, attempts_made=3, elapsed=0, next_wait=0)  # no attempt left
    assert not may_retry(policy, attempts_made=1, elapsed=9.5, next_wait=1)  # would wake past it
    assert not may_retry(policy, attempts_made=1, elapsed=NAN, next_wait=0)
    assert not may_retry(policy, attempts_made=1, elapsed=0, next_wait=INF)
    assert not may_retry(policy, attempts_made=1, elapsed=-1, next_wait=0)
    assert may_retry(RetryPolicy(timeout=None), attempts_made=1, elapsed=1e12, next_wait=1e9)


@PROPERTY
@given(
    policy=policies,
    attempts_made=st.integers(0, 100),
    elapsed=st.floats(allow_nan=True),
    next_wait=st.floats(allow_nan=True),
    retry_after=st.none() | st.floats(allow_nan=True),
)
def test_may_retry_matches_its_definition(
    policy: RetryPolicy, attempts_made: int, elapsed: float, next_wait: float, retry_after: float | None
) -> None:
    fits = (
        math.isfinite(elapsed)
        and math.isfinite(next_wait)
        and elapsed >= 0
        and next_wait >= 0
        and (policy.timeout is None or elapsed + next_wait <= policy.timeout)
    )
    allowed = retry_after is None or math.isnan(retry_after) or retry_after <= policy.max_retry_after
    expected = attempts_made < policy.attempts and fits and allowed
    decided = may_retry(
        policy, attempts_made=attempts_made, elapsed=elapsed, next_wait=next_wait, retry_after=retry_after
    )
    assert decided is expected


@PROPERTY
@given(
    policy=policies,
    attempt_time=st.floats(0, 100),
    retry_afters=st.lists(st.none() | st.floats(allow_nan=True, allow_infinity=True), max_size=60),
    draw=draws,
)
def test_a_loop_built_on_the_rule_stays_within_attempts_and_timeout(
    policy: RetryPolicy, attempt_time: float, retry_afters: list[float | None], draw: float
) -> None:
    """The fetcher's loop, on a fake clock: every attempt fails and takes ``attempt_time``."""
    clock = 0.0
    attempts = 0
    slept = 0.0
    while True:
        clock += attempt_time
        attempts += 1
        retry_after = retry_afters[attempts - 1] if attempts <= len(retry_afters) else None
        wait = backoff(policy, attempts, retry_after=retry_after, random=lambda: draw)
        if not may_retry(policy, attempts_made=attempts, elapsed=clock, next_wait=wait):
            break
        clock += wait
        slept += wait
    assert 1 <= attempts <= policy.attempts
    if policy.timeout is not None:
        assert slept <= policy.timeout


# --- Retry-After ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("7", 7.0),
        (" 7\t", 7.0),
        ("1.5", 1.5),
        ("0", 0.0),
        ("-5", 0.0),  # a negative delay means now
        ("3600", 30.0),
        ("9" * 5000, 30.0),  # a 5,000-digit delay is capped, not converted
        ("0" * 5000 + "3", 3.0),
        ("1." + "9" * 5000, pytest.approx(2.0)),  # the fraction is cut, not converted whole
        (email.utils.format_datetime(NOW + dt.timedelta(seconds=12), usegmt=True), 12.0),
        ("Mon, 03 Apr 2017 10:00:00 GMT", 0.0),  # in the past
        ("Fri, 31 Dec 9999 23:59:59 GMT", 30.0),  # far ahead
        ("0001-01-01T00:00:00+23:59", 0.0),
        ("9999-12-31T23:59:59-23:59", 30.0),
        ("Mon, 01 Jan 99999999999999999999 00:00:00 GMT", None),  # OverflowError, not ValueError
        ("inf", None),
        ("Infinity", None),
        ("nan", None),
        ("-inf", None),
        ("1e3", None),
        ("+3", None),
        ("²", None),  # str.isdigit() is True, int() refuses it
        ("٣", None),  # float() reads it as 3
        ("３", None),
        ("", None),
        (None, None),
        ("soon", None),
        # Sent several times (read joined by ", "): the longest readable wait.
        ("7, 7", 7.0),
        ("2, 9", 9.0),
        ("soon, 7", 7.0),
        ("soon, later", None),
        ("Mon, 03 Apr 2017 10:00:00 GMT, 5", 5.0),
        (", ".join([email.utils.format_datetime(NOW + dt.timedelta(seconds=12), usegmt=True)] * 2), 12.0),
        (", ".join(["1"] * 10_000 + ["20"]), 1.0),  # the first few values only
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=NOW, cap=30.0) == expected


@pytest.mark.parametrize(
    ("date", "expected"),
    [
        ("Mon, 03 Apr 2017 09:59:48 GMT", 12.0),  # the server's clock, years behind NOW
        ("Mon, 03 Apr 2017 10:00:10 GMT", 0.0),  # after the date named: no wait
        ("Mon, 03 Apr 2017 09:00:00 GMT", 30.0),  # an hour ahead of it: capped
        ("2017-04-03T09:59:50Z", 10.0),
        ("Mon, 03 Apr 2017 09:59:48 \u00a0GMT", 0.0),  # unreadable: NOW, long past the date
        ("yesterday", 0.0),
        ("", 0.0),
        (None, 0.0),
    ],
)
def test_a_retry_after_date_counts_from_the_answer_s_date(date: str | None, expected: float) -> None:
    """RFC 9110 §10.2.3: from the answer's ``Date`` when readable, else from ``now``."""
    assert parse_retry_after("Mon, 03 Apr 2017 10:00:00 GMT", now=NOW, cap=30.0, date=date) == expected
    assert parse_retry_after("7", now=NOW, cap=30.0, date=date) == 7.0  # delay-seconds: no date


@PROPERTY
@given(
    value=st.text(max_size=60)
    | st.from_regex(r"\A-?[0-9]{1,6000}(\.[0-9]{0,50})?\Z")
    | st.datetimes(
        min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30), timezones=st.just(dt.UTC)
    ).map(lambda when: email.utils.format_datetime(when, usegmt=True))
    | st.datetimes(timezones=st.timezones() | st.none()).map(dt.datetime.isoformat)
    | st.from_regex(r"\A(Mon, )?[0-9]{1,25} Jan [0-9]{1,25} [0-9]{1,3}:[0-9]{1,3}(:[0-9]{1,3})? GMT\Z"),
    cap=st.floats(0, 1e9),
    now=st.datetimes(timezones=st.just(dt.UTC) | st.none()),
    date=st.none()
    | st.text(max_size=40)
    | st.datetimes(timezones=st.just(dt.UTC) | st.none()).map(dt.datetime.isoformat)
    | st.datetimes(
        min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30), timezones=st.just(dt.UTC)
    ).map(lambda when: email.utils.format_datetime(when, usegmt=True)),
)
def test_parse_retry_after_never_raises_and_is_capped(
    value: str, cap: float, now: dt.datetime, date: str | None
) -> None:
    seconds = parse_retry_after(value, now=now, cap=cap, date=date)
    assert seconds is None or 0 <= seconds <= cap


def test_a_retry_after_past_max_retry_after_is_no_retry() -> None:
    """Retrying before the server's ``Retry-After`` would be refused again, and waiting it out
    is more than the policy allows: the request is given up at once."""
    policy = RetryPolicy(max_retry_after=60, timeout=None)
    assert may_retry(policy, attempts_made=1, elapsed=0, next_wait=60, retry_after=60)
    assert not may_retry(policy, attempts_made=1, elapsed=0, next_wait=60, retry_after=60.5)
    assert not may_retry(policy, attempts_made=1, elapsed=0, next_wait=60, retry_after=INF)
    assert may_retry(policy, attempts_made=1, elapsed=0, next_wait=0.1, retry_after=None)
