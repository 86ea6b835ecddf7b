"""Authentication: token lifetimes read from hostile token answers (vbo_async._tokens)."""

from __future__ import annotations

import datetime as dt
import math
import os
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from vbo_async import AuthenticationError, DecodeError
from vbo_async._auth import Secret, TokenManager
from vbo_async._dialects import V8
from vbo_async._tokens import (
    MAX_LIFETIME,
    MAX_TOKEN_LENGTH,
    MIN_REFRESH_DELAY,
    GrantForm,
    Token,
    expires_in_seconds,
    parse_token_response,
    refresh_delay,
)

from .conftest import client_for

PROPERTY = settings(
    max_examples=int(os.environ.get("VBO_PROPERTY_EXAMPLES", "150")) * 2,
    deadline=None,
    derandomize=os.environ.get("VBO_PROPERTY_RANDOM") != "1",
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
WALL = dt.datetime(2017, 4, 3, 10, 0, tzinfo=dt.UTC)
NOW = 100.0
HOUR = 3600.0


def lifetime(**fields: Any) -> float:
    token = parse_token_response({"access_token": "a", **fields}, now=NOW, wall_now=WALL)
    return token.expires_at - NOW


@pytest.mark.parametrize(
    ("expires_in", "expected"),
    [
        (3599, 3599),
        ("3599", 3599),
        (" 120\t", 120),
        (90.5, 90.5),
        ("90.5", 90.5),
        ("0" * 5000 + "7", 7),  # leading zeros are not a big number
        ("²", HOUR),  # str.isdigit() is True; int() raises a bare ValueError
        ("٣", HOUR),
        ("३०", HOUR),
        ("9" * 5000, MAX_LIFETIME),  # int() refuses more than 4,300 digits
        (10**400, MAX_LIFETIME),  # float() overflows
        (1e300, MAX_LIFETIME),
        (10 * MAX_LIFETIME, MAX_LIFETIME),
        (float("inf"), HOUR),
        (float("nan"), HOUR),
        (-5, HOUR),
        ("-5", HOUR),
        ("+5", HOUR),
        ("1e3", HOUR),
        ("0x10", HOUR),
        (0, HOUR),
        ("0", HOUR),
        (True, HOUR),
        (None, HOUR),
        ([3600], HOUR),
        ({"seconds": 3600}, HOUR),
    ],
)
def test_expires_in_is_read_leniently_and_bounded(expires_in: Any, expected: float) -> None:
    assert lifetime(expires_in=expires_in) == pytest.approx(expected)


def test_a_far_expires_date_is_cut_to_a_year() -> None:
    assert lifetime(**{".expires": "Fri, 31 Dec 9999 23:59:59 GMT"}) == MAX_LIFETIME
    assert lifetime(**{".issued": "0001-01-01T00:00:00Z", ".expires": "2017-04-03T11:00:00Z"}) == MAX_LIFETIME
    assert lifetime(**{".expires": "9999-12-31T23:59:59-23:59", ".issued": "0001-01-01T00:00:00+23:59"}) == (
        MAX_LIFETIME
    )


def test_a_date_beyond_year_9999_is_ignored_not_raised() -> None:
    far = "Mon, 01 Jan 99999999999999999999 00:00:00 GMT"  # email.utils raises OverflowError
    assert lifetime(**{".expires": far}) == HOUR
    assert lifetime(**{".issued": far, ".expires": "Mon, 03 Apr 2017 10:30:00 GMT"}) == 1800  # from now


@pytest.mark.parametrize(
    ("lifetime_s", "delay"), [(0.001, 30), (10, 30), (35, 31.5), (600, 540), (HOUR, 3540)]
)
def test_a_proactive_refresh_is_never_due_sooner_than_the_floor(lifetime_s: float, delay: float) -> None:
    token = parse_token_response({"access_token": "a", "expires_in": lifetime_s}, now=NOW, wall_now=WALL)
    assert token.expires_at == pytest.approx(NOW + lifetime_s)  # what the server said, unchanged
    assert token.refresh_at == pytest.approx(NOW + delay)
    assert refresh_delay(lifetime_s) == pytest.approx(delay)
    assert MIN_REFRESH_DELAY == 30


async def test_a_tiny_lifetime_does_not_fetch_a_token_per_request_but_a_401_still_renews() -> None:
    clock = [1000.0]
    forms: list[str] = []

    async def fetch(url: str, form: GrantForm) -> dict[str, Any]:
        forms.append(form.grant_type)
        return {"access_token": f"a{len(forms)}", "refresh_token": f"r{len(forms)}", "expires_in": 0.001}

    tokens = TokenManager(username="u", password=Secret("p"), fetch=fetch, clock=lambda: clock[0])
    tokens.use(V8, "https://vbo.test/v8/Token")
    first = await tokens.current()
    for _ in range(50):
        clock[0] += 0.5  # 25 s of requests, each far past the 1 ms lifetime
        assert await tokens.current() is first
    assert forms == ["password"]
    renewed = await tokens.renew(first)  # the server refused it: renewed at once, floor or not
    assert renewed.access_token == "a2"
    assert forms == ["password", "refresh_token"]
    clock[0] += MIN_REFRESH_DELAY
    assert (await tokens.current()).access_token == "a3"  # the floor has passed: refreshed


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=10**300, max_value=10**5000)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()
    | st.from_regex(r"\A[0-9]{1,6000}(\.[0-9]{0,40})?\Z")
    | st.sampled_from(["²", "٣", "3600", " 60 ", "-1", "1e999", "inf", "nan"]),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=6,
)
date_like = (
    json_values
    | st.datetimes(timezones=st.timezones() | st.none()).map(dt.datetime.isoformat)
    | st.datetimes(min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30)).map(
        lambda when: when.strftime("%a, %d %b %Y %H:%M:%S GMT")
    )
)


@PROPERTY
@given(
    access=st.one_of(st.just("tok"), json_values),
    expires_in=json_values,
    expires=date_like,
    issued=date_like,
    drop=st.sets(st.sampled_from(["expires_in", ".expires", ".issued"])),
    now=st.floats(0, 1e9),
)
@example(access="tok", expires_in=2.2250738585e-313, expires=None, issued=None, drop=set(), now=1.0)
def test_any_token_answer_gives_a_token_or_a_decode_error(
    access: Any, expires_in: Any, expires: Any, issued: Any, drop: set[str], now: float
) -> None:
    data = {"access_token": access, "expires_in": expires_in, ".expires": expires, ".issued": issued}
    for key in drop:
        del data[key]
    try:
        token = parse_token_response(data, now=now, wall_now=WALL)
    except DecodeError:
        assert not (isinstance(access, str) and access == "tok")
        return
    assert isinstance(token, Token)
    life = token.expires_at - now
    assert math.isfinite(token.expires_at)
    assert math.isfinite(token.refresh_at)
    # A lifetime below the clock's resolution (``expires_in: 2e-313``) adds nothing to ``now``.
    assert 0 <= life <= MAX_LIFETIME * (1 + 1e-9)
    assert token.refresh_at - now >= MIN_REFRESH_DELAY * (1 - 1e-9)


@PROPERTY
@given(value=json_values)
def test_expires_in_seconds_never_raises(value: Any) -> None:
    seconds = expires_in_seconds(value)
    assert seconds is None or 0 < seconds <= MAX_LIFETIME


@pytest.mark.parametrize("data", [None, [], "token", 42, {"access_token": None}, {"access_token": 5}])
def test_an_answer_without_an_access_token_is_a_decode_error(data: Any) -> None:
    """The server's fault, not refused credentials (an `AuthenticationError` paused the password)."""
    with pytest.raises(DecodeError, match="access_token") as info:
        parse_token_response(data, now=NOW, wall_now=WALL)
    assert not isinstance(info.value, AuthenticationError)
    assert info.value.path == "$.access_token"


@pytest.mark.parametrize("access", ["", "tok en-Wq7", "tök-Wq7", "tok\n-Wq7"])
def test_an_access_token_unusable_as_a_bearer_is_a_decode_error_that_does_not_quote_it(access: str) -> None:
    with pytest.raises(DecodeError, match="bearer") as info:
        parse_token_response({"access_token": access}, now=NOW, wall_now=WALL)
    assert not isinstance(info.value, AuthenticationError)
    assert "Wq7" not in str(info.value)


@pytest.mark.parametrize("field", ["access_token", "refresh_token"])
def test_a_token_longer_than_a_request_header_can_carry_is_a_decode_error(field: str) -> None:
    """A hostile token endpoint answering a token of megabytes (up to ``max_response_bytes``) held
    the event loop for seconds per megabyte, each time the client built the redactor that hides its
    tokens (every error, every debug log line), and would have sent it in every request's header."""
    data = {"access_token": "tok-Wq7", "refresh_token": "ref-Wq7"}
    data[field] = "Wq7" + "A" * MAX_TOKEN_LENGTH
    with pytest.raises(DecodeError, match="too long") as info:
        parse_token_response(data, now=NOW, wall_now=WALL)
    assert info.value.path == f"$.{field}"
    assert "Wq7" not in str(info.value)


def test_a_token_as_long_as_allowed_is_kept() -> None:
    access, refresh = "a" * MAX_TOKEN_LENGTH, "r" * MAX_TOKEN_LENGTH
    token = parse_token_response({"access_token": access, "refresh_token": refresh}, now=NOW, wall_now=WALL)
    assert (token.access_token, token.refresh_token) == (access, refresh)


async def test_a_client_given_a_huge_token_sends_it_nowhere() -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        if request.url.path.endswith("/Token"):
            return httpx.Response(200, json={"access_token": "A" * 4_000_000, "expires_in": 3600})
        return httpx.Response(500, text="boom")

    async with client_for(handler) as vbo:
        with pytest.raises(DecodeError, match="too long"):
            await vbo.jobs()
    assert [request.url.path for request in sent] == ["/v1/Token"]
