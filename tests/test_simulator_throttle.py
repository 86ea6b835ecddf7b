"""The simulator's v6+ token throttle against WebApiThrottle's algorithm (reference §3.4).

WebApiThrottle (``ThrottlingMiddleware.Invoke``, ``ThrottlingCore.ProcessRequest`` and
``RetryAfterFrom``) checks the periods second, minute, hour in that order; each period checked
counts the request in its fixed window (opened by the first request counted in it, lasting the
period, its end included), and the first period over its limit refuses the request with
``Retry-After`` 1 (second) or the period less the rounded seconds since its window opened; the
longer periods never see that request.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vbo_async.simulator import Faults, SimulatedError, Simulator, SimulatorConfig, create_app
from vbo_async.simulator._throttle import TokenThrottle

PASSWORD = "pw-Sim-S3cret!"
FORM = {"grant_type": "password", "username": "admin", "password": PASSWORD}

Quota = tuple[tuple[int, int], ...]


class FakeClock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


def throttled_simulator(clock: FakeClock, **overrides: Any) -> Simulator:
    config = SimulatorConfig(seed=13, password=PASSWORD, faults=Faults(token_throttle=True), **overrides)
    return Simulator(config, clock=clock)


def client_for(simulator: Simulator) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(simulator=simulator))
    return httpx.AsyncClient(transport=transport, base_url="https://testserver")


def answers(throttle: TokenThrottle, timeline: list[tuple[float, str]]) -> list[int | None]:
    return [throttle.retry_after(user, now) for now, user in timeline]


# --- the minute and the hour ---------------------------------------------------------------------


async def test_the_minute_window_refuses_the_sixth_request_within_a_minute() -> None:
    clock = FakeClock()
    simulator = throttled_simulator(clock)
    async with client_for(simulator) as client:
        for now in (500.0, 502.0, 504.0, 506.0, 508.0):  # a second apart and more: 5 a minute
            clock.now = now
            assert (await client.post("/v6/Token", data=FORM)).status_code == 200
        clock.now = 520.5
        sixth = await client.post("/v6/Token", data=FORM)
        assert sixth.status_code == 429
        assert sixth.headers["retry-after"] == "40"  # 60 less 20.5 s rounded half to even
        assert sixth.content == b""
        clock.now = 560.0  # the window's last instant: 0 s left, rounded
        assert (await client.post("/v8/Token", data=FORM)).headers["retry-after"] == "0"
        clock.now = 560.25  # a new minute, but the second opened at 560 is not over
        assert (await client.post("/v7/Token", data=FORM)).headers["retry-after"] == "1"
        clock.now = 561.5
        assert (await client.post("/v6/Token", data=FORM)).status_code == 200
    assert simulator.stats.faults["token_throttle"] == 3


def test_the_hour_window_refuses_past_its_limit_until_the_hour_is_over() -> None:
    throttle = TokenThrottle(((1, 1), (60, 5), (3600, 12)))
    # 13 s apart: minutes opened at 0, 65 and 130 let through 5, 5 and then 2 more.
    assert answers(throttle, [(k * 13.0, "admin") for k in range(12)]) == [None] * 12
    assert throttle.retry_after("admin", 156.0) == 3600 - 156
    assert throttle.retry_after("admin", 3600.0) == 0  # the hour's end is still in it
    assert throttle.retry_after("admin", 3602.0) is None


def test_with_the_v6_limits_the_hours_is_never_the_one_reached() -> None:
    """Fixed minute windows of 5 let through at most about 305 requests an hour, far from 1500:
    the v6 limits answer as the second's and minute's alone."""
    timeline = [(k * 0.75, "admin") for k in range(8000)]  # 100 minutes of a request each 0.75 s
    assert answers(TokenThrottle(), timeline) == answers(TokenThrottle(((1, 1), (60, 5))), timeline)


def test_retry_after_is_the_windows_rest_rounded_half_to_even() -> None:
    throttle = TokenThrottle(((60, 1),))
    assert throttle.retry_after("admin", 0.0) is None
    assert throttle.retry_after("admin", 20.5) == 40  # 20.5 rounds to 20
    assert throttle.retry_after("admin", 21.5) == 38  # 21.5 rounds to 22
    assert throttle.retry_after("admin", 30.4) == 30
    assert throttle.retry_after("admin", 59.5) == 0
    assert throttle.retry_after("admin", 60.0) == 0
    assert throttle.retry_after("admin", 60.25) is None


# --- what a refused request counts in ------------------------------------------------------------


def test_a_request_refused_by_the_second_does_not_count_in_the_minute() -> None:
    throttle = TokenThrottle(((1, 1), (60, 2)))
    timeline = [(0.0, "admin"), (0.5, "admin"), (0.75, "admin"), (2.0, "admin"), (4.0, "admin")]
    assert answers(throttle, timeline) == [None, 1, 1, None, 56]


def test_a_request_refused_by_the_minute_counts_in_the_second_not_in_the_hour() -> None:
    throttle = TokenThrottle(((1, 1), (60, 2), (3600, 3)))
    timeline = [(0.0, "admin"), (2.0, "admin"), (4.0, "admin"), (6.0, "admin")]
    assert answers(throttle, timeline) == [None, None, 56, 54]
    assert throttle.retry_after("admin", 6.5) == 1  # the refusal at 6 opened a second's window
    # A new minute: the hour has counted 2 (not the minute's 2 refusals), so a third goes through.
    assert throttle.retry_after("admin", 61.0) is None


def test_a_request_refused_by_the_hour_counts_in_the_minute_and_the_second() -> None:
    throttle = TokenThrottle(((1, 1), (60, 2), (3600, 3)))
    assert answers(throttle, [(0.0, "admin"), (2.0, "admin"), (61.0, "admin")]) == [None, None, None]
    assert throttle.retry_after("admin", 63.0) == 3600 - 63  # the hour's 4th
    assert throttle.retry_after("admin", 63.5) == 1
    # The minute opened at 61 counted 61, 63 (the hour's refusal) and now 65 (not 63.5, refused
    # by the second): its 3rd.
    assert throttle.retry_after("admin", 65.0) == 56


# --- per user ------------------------------------------------------------------------------------


def test_each_user_has_windows_of_their_own() -> None:
    throttle = TokenThrottle(((1, 1), (60, 2)))
    timeline = [
        (0.0, "admin"),
        (0.0, "LAB\\svc"),  # the same instant, another user: no second's limit shared
        (2.0, "admin"),
        (4.0, "admin"),
        (10.0, "other"),
        (12.0, "other"),
        (14.0, "other"),  # its minute opened at 10
        (61.0, "admin"),
        (61.0, "other"),
    ]
    assert answers(throttle, timeline) == [None, None, None, 56, None, None, 56, None, 9]


async def test_refresh_grants_count_against_the_refresh_tokens_holder() -> None:
    clock = FakeClock()
    simulator = throttled_simulator(clock)
    async with client_for(simulator) as client:
        refresh_token = (await client.post("/v6/Token", data=FORM)).json()["refresh_token"]
        for now in (502.0, 504.0, 506.0, 508.0):
            clock.now = now
            form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
            granted = await client.post("/v6/Token", data=form)
            assert granted.status_code == 200
            refresh_token = granted.json()["refresh_token"]
        clock.now = 510.0
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        refused = await client.post("/v6/Token", data=form)
        assert (refused.status_code, refused.headers["retry-after"]) == (429, "50")
        stranger = await client.post("/v6/Token", data={**FORM, "username": "someone"})
        assert stranger.status_code == 400  # a bad login, not throttled by admin's windows
        clock.now = 561.0
        assert (await client.post("/v6/Token", data=form)).status_code == 200  # it was not used up


# --- the config ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "quota",
    [
        (),
        [(1, 1)],
        ((1, 1), [60, 5]),
        ((1,),),
        ((1, 1, 1),),
        ((0, 1),),
        ((1, 0),),
        ((1.0, 1),),
        ((True, 1),),
        ((7 * 24 * 3600 + 1, 1),),
        ((60, 5), (1, 1)),
        ((1, 1), (1, 2)),
        "1/s",
    ],
)
def test_config_refuses_bad_token_quotas(quota: Any) -> None:
    with pytest.raises(ValueError, match="token_quota"):
        SimulatorConfig(token_quota=quota)


def test_config_takes_a_token_quota_and_the_simulator_applies_it() -> None:
    """Any periods (up to a week): ``Retry-After`` is the period less the seconds past, as for a
    minute, except for a period of a second (1)."""
    clock = FakeClock()
    simulator = throttled_simulator(clock, token_quota=((2, 1), (7 * 24 * 3600, 2)))
    assert simulator.config.token_quota == ((2, 1), (604800, 2))
    assert simulator.token(FORM, version="v6")["access_token"]
    clock.now = 500.5
    with pytest.raises(SimulatedError, match="Quota Exceeded") as refused:
        simulator.token(FORM, version="v6")
    assert (refused.value.status_code, refused.value.body) == (429, None)
    assert refused.value.headers == {"Retry-After": "2"}  # 0.5 s past rounds to 0
    clock.now = 502.5
    assert simulator.token(FORM, version="v6")["access_token"]  # the week's 2nd
    clock.now = 505.0
    with pytest.raises(SimulatedError) as refused:
        simulator.token(FORM, version="v6")
    assert refused.value.headers == {"Retry-After": str(604800 - 5)}


# --- against a reference model -------------------------------------------------------------------


def reference_answers(quota: Quota, timeline: list[tuple[float, str]]) -> list[int | None]:
    """WebApiThrottle's answer to each request of `timeline` ((seconds, user) in time order): None,
    or its 429's ``Retry-After``. Kept as the times each (user, period) counted, its current window
    found again from them at every request."""
    counted: defaultdict[tuple[str, int], list[float]] = defaultdict(list)
    result: list[int | None] = []
    for now, user in timeline:
        answer = None
        for period, limit in quota:
            times = counted[user, period]
            times.append(now)
            start = times[0]
            for time in times:
                if time > start + period:  # past the window's end: this one opens the next
                    start = time
            if sum(time >= start for time in times) > limit:
                seconds_past = int(Decimal(now - start).to_integral_value(rounding=ROUND_HALF_EVEN))
                answer = period - seconds_past if period > 1 else 1
                break
        result.append(answer)
    return result


QUOTAS = st.dictionaries(st.sampled_from([1, 2, 5, 60, 3600]), st.integers(1, 4), min_size=1, max_size=3)
QUARTERS = st.one_of(st.integers(0, 8), st.integers(0, 400), st.integers(14_000, 15_000)).map(lambda q: q / 4)
"""Gaps between requests in quarter seconds (exact in binary, so window ends and halves are hit)."""


@settings(max_examples=300)
@given(
    limits=QUOTAS,
    start=st.integers(0, 4_000_000).map(lambda q: q / 4),
    steps=st.lists(st.tuples(QUARTERS, st.sampled_from(["admin", "LAB\\svc", "other"])), max_size=60),
)
def test_the_throttle_answers_as_the_reference_model(
    limits: dict[int, int], start: float, steps: list[tuple[float, str]]
) -> None:
    quota = tuple(sorted(limits.items()))
    timeline = []
    now = start
    for gap, user in steps:
        now += gap
        timeline.append((now, user))
    assert answers(TokenThrottle(quota), timeline) == reference_answers(quota, timeline)
