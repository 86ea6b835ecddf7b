"""Retries: idempotent requests on transport errors, 5xx and 429 (honouring Retry-After); actions never."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import email.utils
import json
import re
import ssl
from typing import Any

import attrs
import httpx
import pytest

from vbo_async import (
    APIError,
    AuthenticationError,
    NotFoundError,
    RateLimitedError,
    RetryPolicy,
    ServerError,
    TransportError,
    VBOClient,
    VBOError,
)

from .conftest import BASE, FAST, FakeVBO, client_for, json_response

JOB = {"id": "j1", "name": "Mail"}


def failing(status: int, **headers: str) -> httpx.Response:
    return json_response(status, {"message": f"HTTP {status} (test)"}, headers=headers or None)


def job_gets(fake: FakeVBO) -> list[httpx.Request]:
    return [r for r in fake.api_requests if r.url.path == "/v1/Jobs/j1"]


@pytest.mark.parametrize("status", [503, 502, 504, 500])
async def test_transient_statuses_then_success(fake: FakeVBO, vbo: VBOClient, status: int) -> None:
    fake.route("GET", "/v1/Jobs/j1", failing(status), failing(status), JOB)
    job = await vbo.job("j1")
    assert job.id == "j1"
    assert len(job_gets(fake)) == 3


async def test_503_503_200_on_a_list(fake: FakeVBO, vbo: VBOClient, retries: list[Any]) -> None:
    fake.route("GET", "/v1/Jobs", failing(503), failing(503), [JOB])
    jobs = await vbo.jobs()
    assert [j.id for j in jobs] == ["j1"]
    assert len(fake.api_requests) == 3
    assert len(retries) == 2
    assert all(d.wait_for == 0 for d in retries)  # FAST: no backoff


async def test_429_retry_after_seconds_is_honoured(
    fake: FakeVBO, vbo: VBOClient, sleeps: list[float], retries: list[Any]
) -> None:
    fake.route("GET", "/v1/Jobs/j1", failing(429, **{"Retry-After": "1"}), JOB)

    job = await vbo.job("j1")

    assert job.id == "j1"
    assert len(job_gets(fake)) == 2
    assert [d.wait_for for d in retries] == [1.0]
    assert sleeps == [1.0]  # stamina slept exactly the server's Retry-After


def in_thirty_seconds() -> str:
    return email.utils.format_datetime(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30), usegmt=True)


def in_two_hours() -> str:
    return email.utils.format_datetime(dt.datetime.now(dt.UTC) + dt.timedelta(hours=2), usegmt=True)


@pytest.mark.parametrize(
    ("status", "error"), [(429, RateLimitedError), (503, ServerError)], ids=["429", "503"]
)
@pytest.mark.parametrize(
    ("header", "seconds"),
    [("3600", 3600), ("61", 61), (None, 7200), ("9" * 40, 3600)],
    ids=["an hour", "past the cap", "an HTTP date", "40 digits"],
)
async def test_a_retry_after_longer_than_the_policy_allows_gives_up_at_once(
    fake: FakeVBO,
    sleeps: list[float],
    retries: list[Any],
    status: int,
    error: type[APIError],
    header: str | None,
    seconds: int,
) -> None:
    """Retrying before the server's ``Retry-After`` would be refused again (VB365's throttle
    announces 1, 60 or 3600 s): a wait longer than ``max_retry_after`` is not cut short and
    retried into the throttle, nor slept through; the error says when to try again."""
    fake.route("GET", "/v1/Jobs/j1", failing(status, **{"Retry-After": header or in_two_hours()}), JOB)
    async with client_for(fake, retry=attrs.evolve(FAST, max_retry_after=60)) as vbo:
        with pytest.raises(error) as info:
            await vbo.job("j1")
    assert len(job_gets(fake)) == 1
    assert sleeps == []
    assert retries == []
    assert info.value.status_code == status
    assert info.value.retry_after is not None
    assert info.value.retry_after >= seconds - 5
    assert re.search(r"retry after \d+ s \(at \d\d\d\d-\d\d-\d\d \d\d:\d\d:\d\d UTC\)", str(info.value))
    if header in ("3600", "61"):
        assert f"retry after {header} s" in str(info.value)


async def test_the_default_policy_waits_out_a_per_minute_throttle(
    fake: FakeVBO, sleeps: list[float], retries: list[Any]
) -> None:
    """VB365's throttle counts per second, per minute and per hour (``Retry-After`` 1, 60 or
    3600): the default policy waits out the first two, once, within its 120 s budget."""
    fake.route("GET", "/v1/Jobs/j1", failing(429, **{"Retry-After": "60"}), JOB)
    async with client_for(fake, retry=RetryPolicy()) as vbo:
        job = await vbo.job("j1")
    assert job.id == "j1"
    assert len(job_gets(fake)) == 2
    assert [d.wait_for for d in retries] == [60.0]
    assert sleeps == [60.0]


async def test_the_last_retry_after_is_in_the_error(fake: FakeVBO, sleeps: list[float]) -> None:
    fake.route("GET", "/v1/Jobs/j1", *[failing(429, **{"Retry-After": "2"})] * 4)
    async with client_for(fake, retry=RetryPolicy()) as vbo:
        with pytest.raises(RateLimitedError) as info:
            await vbo.job("j1")
    assert len(job_gets(fake)) == 4
    assert sleeps == [2.0] * 3
    assert info.value.retry_after == 2
    assert "retry after 2 s" in str(info.value)


async def test_an_error_without_retry_after_says_none(fake: FakeVBO, vbo: VBOClient) -> None:
    fake.route("GET", "/v1/Jobs/j1", *[failing(503)] * 4)
    with pytest.raises(ServerError) as info:
        await vbo.job("j1")
    assert info.value.retry_after is None
    assert "retry after" not in str(info.value)


async def test_retry_after_http_date(fake: FakeVBO, sleeps: list[float], retries: list[Any]) -> None:
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=5)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    fake.route(
        "GET",
        "/v1/Jobs/j1",
        failing(503, **{"Retry-After": email.utils.format_datetime(soon, usegmt=True)}),
        failing(429, **{"Retry-After": email.utils.format_datetime(later, usegmt=True)}),
        JOB,
    )
    policy = RetryPolicy(wait_initial=0, wait_max=0, wait_jitter=0, max_retry_after=30)
    async with client_for(fake, retry=policy) as vbo:
        with pytest.raises(RateLimitedError) as info:
            await vbo.job("j1")
    (first,) = (d.wait_for for d in retries)
    assert 0 < first <= 5  # the date, not the (zero) exponential backoff
    assert sleeps == [pytest.approx(first)]
    assert info.value.retry_after == pytest.approx(3600, abs=5)  # an hour away: past the policy
    assert len(job_gets(fake)) == 2


def http_date(when: dt.datetime) -> str:
    return email.utils.format_datetime(when, usegmt=True)


@pytest.mark.parametrize("skew", [-600, 600], ids=["server clock 10 min behind", "10 min ahead"])
async def test_an_http_date_retry_after_counts_from_the_answer_s_date(
    fake: FakeVBO, sleeps: list[float], skew: int
) -> None:
    """RFC 9110 §10.2.3: a ``Retry-After`` date is read against the answer's own ``Date``. A server
    whose clock is 10 minutes behind asking for 30 s was not waited at all (a date past on the
    client's clock), one 10 minutes ahead was given up at once (630 s, past max_retry_after)."""
    server_now = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=skew)
    headers = {"Date": http_date(server_now), "Retry-After": http_date(server_now + dt.timedelta(seconds=30))}
    fake.route("GET", "/v1/Jobs/j1", failing(429, **headers), JOB)
    async with client_for(fake, retry=RetryPolicy()) as vbo:
        job = await vbo.job("j1")
    assert job.id == "j1"
    assert sleeps == [30.0]


async def test_a_retry_after_past_the_policy_says_the_wait_from_the_answer_s_date(
    fake: FakeVBO, sleeps: list[float]
) -> None:
    """The error's ``retry_after`` is the wait the server asked for, not the distance between its
    date and the client's clock."""
    server_now = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(hours=2)
    headers = {"Date": http_date(server_now), "Retry-After": http_date(server_now + dt.timedelta(hours=1))}
    fake.route("GET", "/v1/Jobs/j1", failing(429, **headers))
    async with client_for(fake, retry=RetryPolicy()) as vbo:
        with pytest.raises(RateLimitedError) as info:
            await vbo.job("j1")
    assert info.value.retry_after == 3600
    assert "retry after 3600 s" in str(info.value)
    assert len(job_gets(fake)) == 1


@pytest.mark.parametrize("date", ["yesterday", "", "Mon, 01 Jan 99999999999999999999 00:00:00 GMT"])
async def test_an_unreadable_date_reads_a_retry_after_date_on_the_client_s_clock(
    fake: FakeVBO, sleeps: list[float], date: str
) -> None:
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30)
    fake.route("GET", "/v1/Jobs/j1", failing(429, **{"Date": date, "Retry-After": http_date(soon)}), JOB)
    async with client_for(fake, retry=RetryPolicy()) as vbo:
        await vbo.job("j1")
    assert len(sleeps) == 1
    assert 25 < sleeps[0] <= 30


@pytest.mark.parametrize("value", ["0", "-5", "Mon, 03 Apr 2017 10:00:00 GMT"])
async def test_a_429_naming_a_wait_of_now_is_retried_after_a_second(
    fake: FakeVBO, sleeps: list[float], value: str
) -> None:
    """VB365 v6 throttles with WebApiThrottle, whose ``Retry-After`` is the period less the
    seconds past, rounded: ``0`` while up to half a second of the window is left. Retried at once,
    each attempt went into the same window (four in a few milliseconds, all refused; on the token
    endpoint then a minute's rest); a 429 naming no wait after now backs off as one naming none."""
    fake.route("GET", "/v1/Jobs/j1", failing(429, **{"Retry-After": value}), JOB)
    async with client_for(fake, retry=RetryPolicy()) as vbo:
        await vbo.job("j1")
    assert len(job_gets(fake)) == 2
    assert len(sleeps) == 1
    assert 1.0 <= sleeps[0] <= 1.5  # RATE_LIMITED_WAIT and the jitter


@pytest.mark.parametrize("value", ["Mon, 03 Apr 2017 10:00:00 GMT", "0", "-5"])
async def test_retry_after_in_the_past_waits_nothing(
    fake: FakeVBO, vbo: VBOClient, sleeps: list[float], value: str
) -> None:
    fake.route("GET", "/v1/Jobs/j1", failing(503, **{"Retry-After": value}), JOB)
    await vbo.job("j1")
    assert len(job_gets(fake)) == 2
    assert sleeps == [0.0]


@pytest.mark.parametrize(
    "values",
    [
        ["30", "30"],
        ["5", "30"],
        ["30", "whenever"],
        ["in 30 s", "in 30 s"],  # an HTTP date, made when the test runs
    ],
    ids=["the same twice", "two delays", "one unreadable", "two dates"],
)
async def test_several_retry_after_headers_wait_the_longest_readable(
    fake: FakeVBO, vbo: VBOClient, sleeps: list[float], values: list[str]
) -> None:
    """A 429 with ``Retry-After`` twice (a proxy repeating the server's) is no unreadable header
    answered with a second's backoff, straight back into the throttle: the longest wait named
    is waited."""
    headers = [("Retry-After", in_thirty_seconds() if value == "in 30 s" else value) for value in values]
    throttled = httpx.Response(429, json={"message": "Quota Exceeded"}, headers=headers)
    fake.route("GET", "/v1/Jobs/j1", throttled, JOB)
    await vbo.job("j1")
    assert len(job_gets(fake)) == 2
    assert sleeps == [pytest.approx(30.0, abs=2)]


async def test_unreadable_retry_after_uses_the_backoff(fake: FakeVBO, retries: list[Any]) -> None:
    fake.route("GET", "/v1/Jobs/j1", failing(503, **{"Retry-After": "whenever"}), JOB)
    policy = RetryPolicy(wait_initial=0.001, wait_max=0.001, wait_jitter=0)
    async with client_for(fake, retry=policy) as vbo:
        await vbo.job("j1")
    assert [d.wait_for for d in retries] == [0.001]


@pytest.mark.parametrize(
    ("status", "error"),
    [(404, NotFoundError), (400, APIError), (403, APIError), (409, APIError), (422, APIError)],
)
async def test_client_errors_are_not_retried(
    fake: FakeVBO, vbo: VBOClient, retries: list[Any], status: int, error: type[APIError]
) -> None:
    fake.route("GET", "/v1/Jobs/j1", failing(status), JOB)
    with pytest.raises(error) as info:
        await vbo.job("j1")
    assert info.value.status_code == status
    assert len(job_gets(fake)) == 1
    assert retries == []


@pytest.mark.parametrize("attempts", [1, 2, 4])
async def test_attempts_are_bounded(fake: FakeVBO, attempts: int) -> None:
    fake.route("GET", "/v1/Jobs/j1", failing(503))
    policy = RetryPolicy(attempts=attempts, wait_initial=0, wait_max=0, wait_jitter=0)
    async with client_for(fake, retry=policy) as vbo:
        with pytest.raises(ServerError) as info:
            await vbo.job("j1")
    assert info.value.status_code == 503
    assert len(job_gets(fake)) == attempts


async def test_default_attempts(fake: FakeVBO, vbo: VBOClient) -> None:
    fake.route("GET", "/v1/Jobs/j1", failing(502))
    with pytest.raises(ServerError):
        await vbo.job("j1")
    assert len(job_gets(fake)) == FAST.attempts == 4


async def test_statuses_are_configurable(fake: FakeVBO) -> None:
    fake.route("GET", "/v1/Jobs/j1", failing(500), JOB)
    policy = RetryPolicy(wait_initial=0, wait_max=0, wait_jitter=0, statuses=frozenset({503}))
    async with client_for(fake, retry=policy) as vbo:
        with pytest.raises(ServerError):
            await vbo.job("j1")
    assert len(job_gets(fake)) == 1


# --- job actions: exactly once ------------------------------------------------------------------------


@pytest.mark.parametrize("status", [503, 500, 502, 429])
async def test_failing_job_start_is_sent_exactly_once(
    fake: FakeVBO, vbo: VBOClient, retries: list[Any], status: int
) -> None:
    fake.route("POST", "/v1/Jobs/j1/Action", failing(status, **{"Retry-After": "0"}), httpx.Response(200))

    with pytest.raises(APIError) as info:
        await vbo.start_job("j1")

    assert info.value.status_code == status
    assert info.value.method == "POST"
    assert info.value.url == f"{BASE}/v1/Jobs/j1/Action"
    if status >= 500:
        assert isinstance(info.value, ServerError)
    posts = [r for r in fake.api_requests if r.method == "POST"]
    assert len(posts) == 1
    assert json.loads(posts[0].content) == {"start": None}
    assert posts[0].content.replace(b" ", b"") == b'{"start":null}'
    assert posts[0].headers["content-type"] == "application/json"
    assert retries == []


@pytest.mark.parametrize("action", ["start", "stop", "enable", "disable"])
@pytest.mark.parametrize("answer", [httpx.Response(200), httpx.Response(204), json_response(200, {})])
async def test_action_bodies(fake: FakeVBO, vbo: VBOClient, action: str, answer: httpx.Response) -> None:
    fake.route("POST", "/v1/Jobs/j1/Action", answer)
    method = getattr(vbo, f"{action}_job")

    result = await method("j1")

    assert result is None
    (post,) = fake.api_requests
    assert post.method == "POST"
    assert str(post.url) == f"{BASE}/v1/Jobs/j1/Action"
    assert json.loads(post.content) == {action: None}
    assert post.content.replace(b" ", b"") == f'{{"{action}":null}}'.encode()
    assert post.headers["content-type"] == "application/json"


async def test_action_takes_a_job_model(fake: FakeVBO, vbo: VBOClient) -> None:
    fake.route("GET", "/v1/Jobs/j1", JOB)
    fake.route("POST", "/v1/Jobs/j1/Action", httpx.Response(200))
    job = await vbo.job("j1")
    await vbo.stop_job(job)
    assert json.loads(fake.api_requests[-1].content) == {"stop": None}


async def test_action_transport_error_is_not_retried(
    fake: FakeVBO, vbo: VBOClient, retries: list[Any]
) -> None:
    def drop(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadError("connection reset by peer", request=request)

    fake.route("POST", "/v1/Jobs/j1/Action", drop, httpx.Response(200))
    with pytest.raises(TransportError):
        await vbo.start_job("j1")
    assert len([r for r in fake.api_requests if r.method == "POST"]) == 1
    assert retries == []


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        (httpx.ReadError("connection reset by peer"), True),
        (httpx.ConnectError("connection refused"), False),  # never sent: nothing was done
        (httpx.Response(500), True),
        (httpx.Response(502), True),
        (httpx.Response(429, headers={"Retry-After": "3600"}), False),  # refused before the work
        (httpx.Response(404), False),
    ],
    ids=["read-error", "connect-error", "500", "502", "429", "404"],
)
@pytest.mark.parametrize(("action", "done"), [("start_job", "started"), ("disable_job", "disabled")])
async def test_a_failed_job_action_says_when_it_may_have_been_carried_out(
    fake: FakeVBO, vbo: VBOClient, answer: httpx.Response | Exception, said: bool, action: str, done: str
) -> None:
    """A job action that may have reached the server (a transport failure not known to be unsent,
    a 5xx a proxy may give after the work) says the job may have been started (stopped, ...): the
    error read as a plain failure, and the caller sent it again. A refusal (4xx) or an action
    never sent says nothing of the kind."""

    def fail(request: httpx.Request) -> httpx.Response:
        if isinstance(answer, Exception):
            raise answer
        return answer

    fake.route("POST", "/v1/Jobs/j1/Action", fail)
    with pytest.raises(VBOError) as caught:
        await getattr(vbo, action)("j1")
    hint = f"the job may have been {done} all the same: check it before sending the action again"
    assert (hint in str(caught.value)) is said, str(caught.value)
    assert len([r for r in fake.api_requests if r.method == "POST"]) == 1


@pytest.mark.parametrize("case", ["token fails first", "renewal fails after a 401", "rest past the bound"])
async def test_a_job_action_that_was_not_carried_out_never_says_it_may_have_been(
    fake: FakeVBO, case: str
) -> None:
    """Only the action's own answer or transport failure may say it was carried out: a failed
    token grant before it (never sent), a failed renewal after a 401 (answered before the work),
    or the client's refusal to send it during a rest the server asked for ("POST not sent") said
    "the job may have been started all the same", and a script told to check first was misled."""
    fake.route("POST", "/v1/Jobs/j1/Action", httpx.Response(200))
    if case == "token fails first":
        fake.token_script = [httpx.Response(500)] * 8
    elif case == "renewal fails after a 401":
        fake.route("POST", "/v1/Jobs/j1/Action", httpx.Response(401))
        fake.route("GET", "/v1/Jobs/j1", JOB)
    else:
        fake.route("GET", "/v1/Jobs/j1", failing(503, **{"Retry-After": "7200"}))
    async with client_for(fake, retry=FAST) as vbo:
        if case == "renewal fails after a 401":
            await vbo.job("j1")  # signed in
            fake.token_script = [httpx.Response(500)] * 8
        elif case == "rest past the bound":
            with pytest.raises(ServerError):
                await vbo.job("j1")
        with pytest.raises(VBOError) as caught:
            await vbo.start_job("j1")
    assert "all the same" not in str(caught.value), str(caught.value)
    posted = len([r for r in fake.api_requests if r.method == "POST"])
    assert posted == (1 if case == "renewal fails after a 401" else 0)
    if case == "rest past the bound":
        assert isinstance(caught.value, ServerError)
        assert caught.value.unsent
        assert "POST not sent" in str(caught.value)


# --- transport errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        httpx.ConnectError("connection refused"),
        httpx.ReadTimeout("read timed out"),
        httpx.RemoteProtocolError("peer closed connection without sending complete message body"),
        httpx.ReadError("connection reset"),
    ],
    ids=lambda e: type(e).__name__,
)
async def test_transport_errors_are_retried_for_get(
    fake: FakeVBO, vbo: VBOClient, retries: list[Any], error: Exception
) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise error

    fake.route("GET", "/v1/Jobs/j1", fail, fail, JOB)
    job = await vbo.job("j1")
    assert job.id == "j1"
    assert len(job_gets(fake)) == 3
    assert len(retries) == 2
    assert all(isinstance(d.caused_by, TransportError) for d in retries)


async def test_transport_errors_end_after_the_attempts(fake: FakeVBO, vbo: VBOClient) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    fake.route("GET", "/v1/Jobs/j1", fail)
    with pytest.raises(TransportError) as info:
        await vbo.job("j1")
    assert isinstance(info.value.__cause__, httpx.ConnectError)
    assert len(job_gets(fake)) == 4
    # One attempt's message would read as the whole wait ("within 30 s" of a 2-minute give-up).
    assert re.search(r"\(gave up after 4 attempts in [0-9]+\.[0-9] s\)", info.value.message)
    assert info.value.message in str(info.value)
    assert info.value.args == (info.value.message,)


async def test_a_retry_given_up_waiting_for_a_slot_says_its_attempts(fake: FakeVBO) -> None:
    """The retry budget spent while a retry waits for the client's one slot: the error of the
    attempt before it said nothing of the attempts made ("Server disconnected" alone), where
    every other give-up says "gave up after N attempts"; the log said 2."""
    release = asyncio.Event()
    holding: list[asyncio.Task[Any]] = []

    async def held(request: httpx.Request) -> httpx.Response:
        await release.wait()
        return json_response(200, [])

    def fail(request: httpx.Request) -> httpx.Response:
        if len(job_gets(fake)) == 2:
            # While the second attempt holds the slot, another call queues for it: it gets the
            # slot as this one lets go, before this request's third attempt is due.
            holding.append(asyncio.create_task(vbo.organization("o1")))
        raise httpx.RemoteProtocolError("Server disconnected")

    fake.route("GET", "/v1/Jobs/j1", fail)
    fake.route("GET", "/v1/Organizations/o1", held)
    fake.route("GET", "/v1/Organizations", [])
    policy = RetryPolicy(attempts=5, wait_initial=0.05, wait_max=0.05, wait_jitter=0, timeout=0.5)
    async with client_for(fake, max_concurrency=1, retry=policy) as vbo:
        await vbo.organizations()  # the token first
        # The slot comes back after the retry budget (counted from the first try) is spent.
        asyncio.get_running_loop().call_later(0.8, release.set)
        with pytest.raises(TransportError) as info:
            await vbo.job("j1")
        with contextlib.suppress(VBOError):
            await holding[0]
    assert len(job_gets(fake)) == 2
    assert re.search(
        r"^RemoteProtocolError: Server disconnected \(gave up after 2 attempts in [0-9]+\.[0-9] s\)",
        info.value.message,
    )


async def test_a_failure_no_retry_changes_after_a_retry_says_the_attempts(fake: FakeVBO) -> None:
    """A 503 retried, then a refused certificate (no retry changes it): that error is raised at
    once, and says the attempts made before it."""

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("certificate verify failed") from ssl.SSLCertVerificationError(
            "certificate verify failed"
        )

    fake.route("GET", "/v1/Jobs/j1", json_response(503, {"message": "busy"}), refused)
    with pytest.raises(TransportError) as info:
        async with client_for(fake) as vbo:
            await vbo.job("j1")
    assert len(job_gets(fake)) == 2
    assert re.search(r"\(gave up after 2 attempts in [0-9]+\.[0-9] s\)$", info.value.message), (
        info.value.message
    )


async def test_an_attempt_that_hangs_times_out_and_is_retried(fake: FakeVBO) -> None:
    never = asyncio.Event()

    async def hang(request: httpx.Request) -> httpx.Response:
        await never.wait()
        raise AssertionError("unreachable")

    fake.route("GET", "/v1/Jobs/j1", hang, JOB)
    # The token and the second attempt are answered within it: a machine held up 50 ms timed the
    # second attempt out too (a third GET).
    async with client_for(fake, timeout=0.5) as vbo:
        job = await vbo.job("j1")
    assert job.id == "j1"
    assert len(job_gets(fake)) == 2


async def test_an_attempt_that_always_hangs_is_a_transport_error(fake: FakeVBO) -> None:
    async def hang(request: httpx.Request) -> httpx.Response:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    fake.route("GET", "/v1/Jobs/j1", hang)
    policy = RetryPolicy(attempts=2, wait_initial=0, wait_max=0, wait_jitter=0)
    async with client_for(fake, timeout=0.5, retry=policy) as vbo:  # the token's answer within it
        with pytest.raises(
            TransportError, match=r"no complete answer within 0\.5 s \(gave up after 2 attempts"
        ):
            await vbo.job("j1")
    assert len(job_gets(fake)) == 2


async def test_time_queued_for_a_slot_does_not_use_up_the_retry_budget(
    fake: FakeVBO, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``RetryPolicy.timeout`` counts from the first try: a request that waited long for one of
    the client's ``max_concurrency`` slots (a big sweep) is still retried after a 503."""
    from vbo_async import _sending

    now = [0.0]

    class Clock:
        @staticmethod
        def monotonic() -> float:
            return now[0]

        perf_counter = staticmethod(_sending.time.perf_counter)

    monkeypatch.setattr(_sending, "time", Clock)
    entered, release = asyncio.Event(), asyncio.Event()

    async def hold(request: httpx.Request) -> httpx.Response:
        entered.set()
        await release.wait()
        return json_response(200, {"id": "j0", "name": "Held"})

    fake.route("GET", "/v1/Jobs/j0", hold)
    fake.route("GET", "/v1/Jobs/j1", failing(503), JOB)
    async with client_for(fake, max_concurrency=1, retry=RetryPolicy(timeout=60, wait_initial=0)) as vbo:
        holder = asyncio.create_task(vbo.job("j0"))
        await entered.wait()
        queued = asyncio.create_task(vbo.job("j1"))  # waits for the only slot...
        slots = vbo._sender._semaphore
        for _ in range(1000):
            if slots._waiters:
                break
            await asyncio.sleep(0)
        assert slots._waiters
        now[0] += 600  # ...ten minutes, say
        release.set()
        await holder
        job = await queued
    assert job.id == "j1"
    assert len(job_gets(fake)) == 2


@pytest.mark.parametrize("coding", ["gzip", "compress"])
async def test_a_503_whose_body_cannot_be_decoded_is_still_retried(fake: FakeVBO, coding: str) -> None:
    """An error page's body only words the error: one in a coding that cannot be undone (a proxy's
    page labelled gzip, an unknown coding) leaves the status to decide, retried as any 503."""

    def unavailable(request: httpx.Request) -> httpx.Response:
        body = httpx.ByteStream(b"Service Unavailable")
        return httpx.Response(503, stream=body, headers={"Content-Encoding": coding})

    fake.route("GET", "/v1/Jobs/j1", unavailable, JOB)
    async with client_for(fake) as vbo:
        job = await vbo.job("j1")
    assert job.id == "j1"
    assert len(job_gets(fake)) == 2


async def test_a_token_refusal_whose_body_cannot_be_decoded_is_an_authentication_error(
    fake: FakeVBO,
) -> None:
    fake.token_script = [
        httpx.Response(400, stream=httpx.ByteStream(b"bad grant"), headers={"Content-Encoding": "gzip"})
    ]
    async with client_for(fake) as vbo:
        with pytest.raises(AuthenticationError, match="refused"):
            await vbo.job("j1")


@pytest.mark.parametrize("transport", ["aiohttp (default)", "httpx"])
async def test_a_transport_error_says_whether_the_request_reached_the_server(transport: str) -> None:
    """`TransportError.unsent`: True for a refused connection (nothing was sent: the grant is
    retried), False for a connection the server dropped after reading the request."""
    import socket

    from .raw_http import serve_raw

    async def drop(head: bytes, body: bytes, writer: asyncio.StreamWriter) -> None:
        writer.transport.abort()

    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    errors: list[TransportError] = []
    for answer in (None, drop):
        async with contextlib.AsyncExitStack() as stack:
            if answer is not None:
                port = await stack.enter_async_context(serve_raw(answer))
            vbo = VBOClient(
                f"http://127.0.0.1:{port}",
                username="u",
                password="p",
                api_version="v8",
                retry=attrs.evolve(FAST, attempts=1),
                transport=httpx.AsyncHTTPTransport() if transport == "httpx" else None,
            )
            async with vbo:
                with pytest.raises(TransportError) as info:
                    await vbo.jobs()
            errors.append(info.value)
    assert [error.unsent for error in errors] == [True, False]


@pytest.mark.parametrize("transport", ["aiohttp (default)", "httpx"])
@pytest.mark.parametrize(
    "cut",
    [
        "the TLS handshake refused (nothing sent)",
        "the head sent, the body not read",
        "the whole request read, no answer",
    ],
)
async def test_unsent_is_true_only_before_the_request_went_out(transport: str, cut: str) -> None:
    """`TransportError.unsent` lets a request be sent again as if it had never been: it must be
    True only when no byte of the request can have reached the server. Over raw sockets, for both
    transports: a TLS handshake the server cuts is unsent; a job action the server read part
    of (its head) or all of is not, and it is sent exactly once (job actions are never resent;
    a refresh grant would not be either)."""
    from .raw_http import read_request

    seen: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if cut.startswith("the TLS"):
                await reader.read(1)  # the ClientHello begins: refused
            elif b"/token" in (line := await reader.readuntil(b"\r\n")).lower():
                await read_request(reader)
                data = b'{"access_token":"access-Kq7","refresh_token":"refresh-Wm4","expires_in":3600}'
                head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                writer.write(head % len(data) + data)
                await writer.drain()
            else:
                seen.append(line)
                if cut == "the head sent, the body not read":
                    await reader.readuntil(b"\r\n\r\n")
                else:
                    await read_request(reader)
        finally:
            writer.transport.abort()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    scheme = "https" if cut.startswith("the TLS") else "http"
    try:
        vbo = VBOClient(
            f"{scheme}://127.0.0.1:{port}",
            username="u",
            password="p",
            api_version="v8",
            retry=attrs.evolve(FAST, attempts=1),
            transport=httpx.AsyncHTTPTransport() if transport == "httpx" else None,
        )
        async with vbo:
            with pytest.raises(TransportError) as info:
                await vbo.start_job("j1")
    finally:
        server.close()
        await server.wait_closed()
    if cut.startswith("the TLS"):
        assert info.value.unsent is True
        assert seen == []
    else:
        assert info.value.unsent is False
        assert seen == [b"POST /v8/Jobs/j1/start HTTP/1.1\r\n"]
