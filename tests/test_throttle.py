"""A server's throttle is shared by the client's requests: a ``Retry-After`` one API request was
answered with holds back every other request of that client (the same server) until it ends,
and one longer than the policy allows fails them at once, unsent; other clients are untouched."""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import attrs
import httpx
import pytest

from vbo_async import (
    APIError,
    ClientStateError,
    PollTarget,
    RateLimitedError,
    RetryPolicy,
    ServerError,
    VBOClient,
    poll_jobs,
)

from .conftest import FAST, FakeVBO, client_for, json_response

JOB1 = {"id": "j1", "name": "Mail"}
JOB2 = {"id": "j2", "name": "Files"}
ONCE = attrs.evolve(FAST, attempts=1)
"""No retries: a throttled request is given up at once, leaving only the throttle behind."""


def throttled(status: int = 429, retry_after: str | None = "30") -> httpx.Response:
    headers = {"Retry-After": retry_after} if retry_after is not None else None
    return json_response(status, {"message": "Quota Exceeded"}, headers=headers)


def sent(fake: FakeVBO, method: str, path: str) -> int:
    return sum(1 for r in fake.api_requests if r.method == method and r.url.path == path)


async def test_a_429_holds_back_the_next_request_until_its_retry_after(
    fake: FakeVBO, sleeps: list[float]
) -> None:
    """The server asked this client for 30 s of quiet: the next request (another URL) waits
    them out before it is sent, instead of going straight into the throttle."""
    fake.route("GET", "/v1/Jobs/j1", throttled(retry_after="30"))
    fake.route("GET", "/v1/Jobs/j2", JOB2)
    async with client_for(fake, retry=ONCE) as vbo:
        with pytest.raises(RateLimitedError):
            await vbo.job("j1")
        assert sleeps == []
        job = await vbo.job("j2")
    assert job.id == "j2"
    assert sent(fake, "GET", "/v1/Jobs/j2") == 1
    assert len(sleeps) == 1
    assert 25 < sleeps[0] <= 30


@pytest.mark.parametrize(("status", "error"), [(429, RateLimitedError), (503, ServerError)])
async def test_a_rest_longer_than_the_policy_allows_fails_later_requests_unsent(
    fake: FakeVBO, sleeps: list[float], status: int, error: type[APIError]
) -> None:
    """VB365's hourly quota answers ``Retry-After: 3600``: the first request is given up at once,
    and so is every later one of the client, without a request, saying when to try again."""
    fake.route("GET", "/v1/Jobs/j1", throttled(status, "3600"))
    fake.route("GET", "/v1/Jobs/j2", JOB2)
    async with client_for(fake) as vbo:
        with pytest.raises(error):
            await vbo.job("j1")
        with pytest.raises(error) as info:
            await vbo.job("j2")
    assert sent(fake, "GET", "/v1/Jobs/j2") == 0
    assert sleeps == []
    held = info.value
    assert held.status_code == status
    assert held.retry_after is not None
    assert 3500 < held.retry_after <= 3600
    assert re.search(r"retry after 3[56]\d\d s \(at ", str(held))
    assert "not sent" in str(held)


class CutShort(httpx.AsyncByteStream):
    """A body the connection drops halfway through."""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b'{"message": "Quota'
        raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")


@pytest.mark.parametrize("body", ["too large", "cut short"])
@pytest.mark.parametrize(("status", "error"), [(429, RateLimitedError), (503, ServerError)])
async def test_a_rest_is_kept_when_the_answer_naming_it_has_a_body_that_cannot_be_read(
    fake: FakeVBO, sleeps: list[float], status: int, error: type[APIError], body: str
) -> None:
    """A 429 (or a 503) naming ``Retry-After: 3600`` whose body was over ``max_response_bytes``
    was a `ResponseTooLargeError`, one cut short a `TransportError` retried into the throttle:
    the server's rest was lost, and every later call sent its request into it. The status line
    and its headers say what to do; the body only words the error."""
    headers = {"Retry-After": "3600", "Content-Type": "application/json"}
    page = b'{"message": "' + b"x" * 8192 + b'"}'
    if body == "too large":
        answer = httpx.Response(status, content=page, headers=headers)
    else:
        answer = httpx.Response(status, stream=CutShort(), headers=headers)
    fake.route("GET", "/v1/Jobs/j1", answer)
    fake.route("GET", "/v1/Jobs/j2", JOB2)
    async with client_for(fake, max_response_bytes=4096) as vbo:
        with pytest.raises(error) as first:
            await vbo.job("j1")
        with pytest.raises(error) as held:
            await vbo.job("j2")
    assert sent(fake, "GET", "/v1/Jobs/j1") == 1
    assert sent(fake, "GET", "/v1/Jobs/j2") == 0
    assert sleeps == []
    assert first.value.status_code == status
    assert first.value.retry_after == 3600
    unread = (
        f"the response body exceeds max_response_bytes=4096 (at least {len(page)} bytes)"
        if body == "too large"
        else "RemoteProtocolError: peer closed connection without sending complete message body"
    )
    assert first.value.message.endswith(f" (its body could not be read: {unread})")
    assert held.value.unsent
    assert held.value.retry_after is not None
    assert 3500 < held.value.retry_after <= 3600


async def test_a_sweep_of_a_throttled_server_sends_no_429_per_tenant(
    fake: FakeVBO, sleeps: list[float]
) -> None:
    """300 tenants of a server over its hourly quota: the requests in flight when the first 429
    arrives are answered 429, the rest fail at once (each tenant its RateLimitedError)."""
    orgs = [f"org-{n:03d}" for n in range(300)]
    for org in orgs:
        fake.route("GET", f"/v1/Organizations/{org}/Jobs", throttled(retry_after="3600"))
    async with client_for(fake, max_concurrency=4) as vbo:
        targets = [PollTarget(client=vbo, organization_id=org) for org in orgs]
        results = [result async for result in poll_jobs(targets, concurrency=50, batch=False)]
    assert len(results) == 300
    assert all(isinstance(result.error, RateLimitedError) for result in results)
    assert len(fake.api_requests) <= 4
    assert sleeps == []


async def test_a_job_action_waits_out_the_rest_and_is_sent_once(fake: FakeVBO, sleeps: list[float]) -> None:
    fake.route("GET", "/v1/Jobs/j1", throttled(retry_after="20"))
    fake.route("POST", "/v1/Jobs/j2/Action", httpx.Response(200))
    async with client_for(fake, retry=ONCE) as vbo:
        with pytest.raises(RateLimitedError):
            await vbo.job("j1")
        await vbo.start_job("j2")
    assert sent(fake, "POST", "/v1/Jobs/j2/Action") == 1
    assert len(sleeps) == 1
    assert 15 < sleeps[0] <= 20


async def test_a_job_action_past_the_rest_s_bound_is_not_sent(fake: FakeVBO, sleeps: list[float]) -> None:
    fake.route("GET", "/v1/Jobs/j1", throttled(retry_after="600"))
    fake.route("POST", "/v1/Jobs/j2/Action", httpx.Response(200))
    async with client_for(fake) as vbo:
        with pytest.raises(RateLimitedError):
            await vbo.job("j1")
        with pytest.raises(RateLimitedError, match="POST not sent"):
            await vbo.start_job("j2")
    assert sent(fake, "POST", "/v1/Jobs/j2/Action") == 0
    assert sleeps == []


async def test_a_job_action_answered_429_is_remembered_too(fake: FakeVBO, sleeps: list[float]) -> None:
    """An action is never retried, but its 429's ``Retry-After`` still holds the others back."""
    fake.route("POST", "/v1/Jobs/j1/Action", throttled(retry_after="3600"))
    fake.route("GET", "/v1/Jobs/j2", JOB2)
    async with client_for(fake) as vbo:
        with pytest.raises(RateLimitedError):
            await vbo.start_job("j1")
        with pytest.raises(RateLimitedError):
            await vbo.job("j2")
    assert sent(fake, "POST", "/v1/Jobs/j1/Action") == 1
    assert sent(fake, "GET", "/v1/Jobs/j2") == 0


async def test_one_throttled_server_does_not_hold_back_another(sleeps: list[float]) -> None:
    east, west = FakeVBO(), FakeVBO()
    east.route("GET", "/v1/Jobs/j1", throttled(retry_after="3600"))
    west.route("GET", "/v1/Jobs/j1", JOB1)
    async with client_for(east) as a, client_for(west, base_url="https://west.test:4443") as b:
        with pytest.raises(RateLimitedError):
            await a.job("j1")
        assert (await b.job("j1")).id == "j1"
    assert sent(west, "GET", "/v1/Jobs/j1") == 1
    assert sleeps == []


@pytest.mark.parametrize("retry_after", ["0", "-5", "Thu, 01 Jan 1970 00:00:00 GMT", "soon", None])
async def test_a_429_naming_no_wait_holds_nothing_back(
    fake: FakeVBO, sleeps: list[float], retry_after: str | None
) -> None:
    fake.route("GET", "/v1/Jobs/j1", throttled(retry_after=retry_after))
    fake.route("GET", "/v1/Jobs/j2", JOB2)
    async with client_for(fake, retry=ONCE) as vbo:
        with pytest.raises(RateLimitedError):
            await vbo.job("j1")
        assert (await vbo.job("j2")).id == "j2"
    assert sleeps == []


async def test_a_request_s_own_retry_waits_its_retry_after_once(fake: FakeVBO, sleeps: list[float]) -> None:
    fake.route("GET", "/v1/Jobs/j1", throttled(retry_after="7"), JOB1)
    async with client_for(fake, retry=RetryPolicy()) as vbo:
        assert (await vbo.job("j1")).id == "j1"
    assert sleeps == [7.0]
    assert sent(fake, "GET", "/v1/Jobs/j1") == 2


async def test_the_token_endpoint_is_not_held_back_by_an_api_rest(fake: FakeVBO, sleeps: list[float]) -> None:
    """The token endpoint keeps its own rests; an API endpoint's does not stop a renewal."""
    fake.route("GET", "/v1/Jobs/j1", throttled(retry_after="3600"))
    async with client_for(fake) as vbo:
        with pytest.raises(RateLimitedError):
            await vbo.job("j1")
        grants = len(fake.token_requests)
        fake.revoke()
        with pytest.raises(RateLimitedError):
            await vbo.job("j1")  # held back: nothing sent, no token needed yet
    assert len(fake.token_requests) == grants
    assert sent(fake, "GET", "/v1/Jobs/j1") == 1


async def test_a_deadline_before_the_rest_ends_fails_at_once(fake: FakeVBO, sleeps: list[float]) -> None:
    fake.route("GET", "/v1/Jobs/j1", throttled(retry_after="30"))
    fake.route("GET", "/v1/Jobs/j2", JOB2)
    async with client_for(fake, retry=ONCE) as vbo:
        with pytest.raises(RateLimitedError):
            await vbo.job("j1")
        vbo._retry_until(time.monotonic() + 10)  # the CLI's time limit
        with pytest.raises(RateLimitedError, match="retry after"):
            await vbo.job("j2")
    assert sent(fake, "GET", "/v1/Jobs/j2") == 0
    assert sleeps == []


@pytest.fixture
def pausing(monkeypatch: pytest.MonkeyPatch) -> asyncio.Event:
    """Set once the client begins a wait of a second or more (``asyncio.sleep``, which it waits
    through), the wait itself real."""
    began = asyncio.Event()
    real_sleep = asyncio.sleep

    async def sleep(delay: float, result: Any = None) -> Any:
        if delay >= 1:
            began.set()
        return await real_sleep(delay, result)

    monkeypatch.setattr(asyncio, "sleep", sleep)
    return began


async def test_cancelled_while_waiting_out_a_rest(fake: FakeVBO, pausing: asyncio.Event) -> None:
    """Cancelled during the wait: nothing is sent and no task is left behind."""
    fake.route("GET", "/v1/Jobs/j1", throttled(retry_after="50"))
    fake.route("GET", "/v1/Jobs/j2", JOB2)
    async with client_for(fake, retry=ONCE) as vbo:
        with pytest.raises(RateLimitedError):
            await vbo.job("j1")
        before = asyncio.all_tasks()
        waiting = asyncio.create_task(vbo.job("j2"))
        await asyncio.wait_for(pausing.wait(), timeout=10)  # guards against a hang only
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await asyncio.sleep(0)
        assert asyncio.all_tasks() == before
    assert sent(fake, "GET", "/v1/Jobs/j2") == 0


async def test_closed_while_waiting_out_a_rest(fake: FakeVBO, pausing: asyncio.Event) -> None:
    fake.route("GET", "/v1/Jobs/j1", throttled(retry_after="50"))
    fake.route("GET", "/v1/Jobs/j2", JOB2)
    vbo = client_for(fake, retry=ONCE)
    with pytest.raises(RateLimitedError):
        await vbo.job("j1")
    waiting = asyncio.create_task(vbo.job("j2"))
    await asyncio.wait_for(pausing.wait(), timeout=10)  # guards against a hang only
    await asyncio.wait_for(vbo.aclose(), timeout=10)  # guards against a hang only
    with pytest.raises(ClientStateError):
        await asyncio.wait_for(waiting, timeout=10)
    assert sent(fake, "GET", "/v1/Jobs/j2") == 0


async def test_the_wait_for_a_rest_is_logged_at_debug_level(
    fake: FakeVBO, sleeps: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    fake.route("GET", "/v1/Jobs/j1", throttled(retry_after="30"))
    fake.route("GET", "/v1/Jobs/j2", JOB2)
    caplog.set_level("DEBUG", logger="vbo_async")
    async with client_for(fake, retry=ONCE) as vbo:
        with pytest.raises(RateLimitedError):
            await vbo.job("j1")
        await vbo.job("j2")
    waits = [r.getMessage() for r in caplog.records if "for the server's Retry-After" in r.getMessage()]
    assert len(waits) == 1
    assert re.fullmatch(
        r"GET \S+/v1/Jobs/j2: waiting (2\d|30)\.\d\d s for the server's Retry-After \(HTTP 429\)", waits[0]
    )


async def test_a_token_endpoint_s_429_rests_no_api_request(fake: FakeVBO, sleeps: list[float]) -> None:
    """The token endpoint's throttle is its own (`TokenManager`): once a token is granted after
    it, API requests go out at once."""
    fake.token_script = [throttled(retry_after="20")]
    fake.route("GET", "/v1/Jobs/j1", JOB1)
    fake.route("GET", "/v1/Jobs/j2", JOB2)
    async with client_for(fake, retry=RetryPolicy()) as vbo:
        assert (await vbo.job("j1")).id == "j1"
        assert sleeps == [20.0]  # the grant's retry
        assert (await vbo.job("j2")).id == "j2"
    assert sleeps == [20.0]
    assert len(fake.token_requests) == 2


async def test_a_rest_past_the_policy_s_timeout_fails_at_once(fake: FakeVBO, sleeps: list[float]) -> None:
    fake.route("GET", "/v1/Jobs/j1", throttled(retry_after="30"))
    fake.route("GET", "/v1/Jobs/j2", JOB2)
    async with client_for(fake, retry=attrs.evolve(ONCE, timeout=10.0)) as vbo:
        with pytest.raises(RateLimitedError):
            await vbo.job("j1")
        with pytest.raises(
            RateLimitedError, match=r"GET not sent: .* ends past the retry policy's timeout=10 s"
        ):
            await vbo.job("j2")
    assert sent(fake, "GET", "/v1/Jobs/j2") == 0
    assert sleeps == []


async def test_a_rest_named_as_a_date_counts_from_the_answer_s_date(
    fake: FakeVBO, sleeps: list[float]
) -> None:
    """A server whose clock is 10 minutes behind the client's asking for 30 s of quiet: the
    others wait 30 s (not none, the date being past on the client's clock)."""
    server_now = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=10)
    dates = [server_now, server_now + dt.timedelta(seconds=30)]
    date, retry_after = (email.utils.format_datetime(when, usegmt=True) for when in dates)
    headers = {"Date": date, "Retry-After": retry_after}
    fake.route("GET", "/v1/Jobs/j1", json_response(429, {"message": "Quota Exceeded"}, headers=headers))
    fake.route("GET", "/v1/Jobs/j2", JOB2)
    async with client_for(fake, retry=ONCE) as vbo:
        with pytest.raises(RateLimitedError) as info:
            await vbo.job("j1")
        assert info.value.retry_after == 30
        await vbo.job("j2")
    assert len(sleeps) == 1
    assert 25 < sleeps[0] <= 30


async def rest_extended_while_waiting(
    fake: FakeVBO, vbo: VBOClient, longer: str, waiting: asyncio.Event
) -> asyncio.Task[Any]:
    """A 50 s rest (``j1`` answered 429), a request for ``j2`` waiting it out (once ``waiting``
    is set), then a request in flight since before (``j3``) answered 429 with ``Retry-After:
    longer``: the ``j2`` request's task."""
    arrived, answer = asyncio.Event(), asyncio.Event()

    async def longer_rest(request: httpx.Request) -> httpx.Response:
        arrived.set()
        await answer.wait()
        return throttled(retry_after=longer)

    fake.route("GET", "/v1/Jobs/j1", throttled(retry_after="50"))
    fake.route("GET", "/v1/Jobs/j3", longer_rest)
    fake.route("GET", "/v1/Jobs/j2", JOB2)
    in_flight = asyncio.create_task(vbo.job("j3"))
    await asyncio.wait_for(arrived.wait(), timeout=10)  # guards against a hang only
    with pytest.raises(RateLimitedError):
        await vbo.job("j1")
    waiter = asyncio.create_task(vbo.job("j2"))
    await asyncio.wait_for(waiting.wait(), timeout=10)  # guards against a hang only
    answer.set()
    with pytest.raises(RateLimitedError):
        await in_flight
    return waiter


async def test_a_waiter_fails_as_soon_as_the_rest_is_extended_past_its_bound(
    fake: FakeVBO, pausing: asyncio.Event
) -> None:
    """A request waiting out a 50 s rest, when a request in flight meanwhile is answered with the
    hourly quota's ``Retry-After: 3600``: it fails at once, unsent, instead of sleeping the 50 s
    (up to max_retry_after, holding its slot) only to fail then."""
    async with client_for(fake, retry=ONCE) as vbo:
        waiting = await rest_extended_while_waiting(fake, vbo, "3600", pausing)
        with pytest.raises(RateLimitedError, match=r"GET not sent: .* ends past max_retry_after") as info:
            await asyncio.wait_for(waiting, timeout=10)  # guards against a hang only
    assert info.value.retry_after is not None
    assert info.value.retry_after > 3000
    assert sent(fake, "GET", "/v1/Jobs/j2") == 0


async def test_a_waiter_woken_by_a_longer_rest_waits_it_out_and_is_sent_once(
    fake: FakeVBO, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Extended to a rest it may wait (55 s, within max_retry_after): the request waits the new
    rest's end, then is sent, once."""
    waits: list[float] = []
    began = asyncio.Event()
    real_sleep = asyncio.sleep

    async def sleep(delay: float, result: Any = None) -> Any:
        if delay >= 1:
            waits.append(delay)
            if not began.is_set():  # the first wait for the rest is real (cut short below)
                began.set()
                return await real_sleep(delay, result)
        return await real_sleep(0, result)

    monkeypatch.setattr(asyncio, "sleep", sleep)
    async with client_for(fake, retry=ONCE) as vbo:
        waiting = await rest_extended_while_waiting(fake, vbo, "55", began)
        job = await asyncio.wait_for(waiting, timeout=10)  # guards against a hang only
    assert job.id == "j2"
    assert sent(fake, "GET", "/v1/Jobs/j2") == 1
    assert len(waits) == 2
    assert 45 < waits[0] <= 50
    assert 50 < waits[1] <= 55


@pytest.fixture
def held_waits(monkeypatch: pytest.MonkeyPatch) -> tuple[list[float], asyncio.Event]:
    """Every wait of a second or more the client begins (its delay), and an event set at the
    first: that first one never ends by itself (only when cut short); the others take no time."""
    waits: list[float] = []
    began = asyncio.Event()
    real_sleep = asyncio.sleep

    async def sleep(delay: float, result: Any = None) -> Any:
        if delay >= 1:
            waits.append(delay)
            if not began.is_set():
                began.set()
                await asyncio.Event().wait()
        return await real_sleep(0, result)

    monkeypatch.setattr(asyncio, "sleep", sleep)
    return waits, began


async def retry_wait_then_rest(
    fake: FakeVBO, vbo: VBOClient, rest: str, began: asyncio.Event
) -> asyncio.Task[Any]:
    """A request for ``j1`` answered 503 (no ``Retry-After``) and waiting 5 s to be retried
    (its own backoff), when another request (``j2``) is answered 429 with ``Retry-After: rest``:
    the ``j1`` request's task."""
    fake.route("GET", "/v1/Jobs/j1", throttled(503, retry_after=None), JOB1)
    fake.route("GET", "/v1/Jobs/j2", throttled(retry_after=rest))
    retrying = asyncio.create_task(vbo.job("j1"))
    await asyncio.wait_for(began.wait(), timeout=10)  # guards against a hang only
    with pytest.raises(RateLimitedError):
        await vbo.job("j2")
    return retrying


BACKOFF_5S = RetryPolicy(attempts=2, wait_initial=5.0, wait_max=5.0, wait_jitter=0.0)


async def test_a_retry_wait_is_cut_short_by_a_rest_past_the_request_s_bound(
    fake: FakeVBO, held_waits: tuple[list[float], asyncio.Event]
) -> None:
    """A request waiting out its own backoff (5 s after a 503) when another one sets the hourly
    quota's rest (``Retry-After: 3600``, past max_retry_after): it fails at once, unsent, as a
    request waiting for a rest does, instead of sleeping its backoff first (up to a minute, with
    a ``Retry-After`` of its own) only to fail then."""
    waits, began = held_waits
    async with client_for(fake, retry=BACKOFF_5S) as vbo:
        retrying = await retry_wait_then_rest(fake, vbo, "3600", began)
        with pytest.raises(RateLimitedError, match=r"GET not sent: .* ends past max_retry_after"):
            await asyncio.wait_for(retrying, timeout=10)  # guards against a hang only
    assert sent(fake, "GET", "/v1/Jobs/j1") == 1
    assert waits == [5.0]


async def test_a_retry_wait_cut_short_by_a_longer_rest_waits_it_out_and_is_sent_once(
    fake: FakeVBO, held_waits: tuple[list[float], asyncio.Event]
) -> None:
    """Cut short by a rest it may wait (55 s): the request waits for the rest's end, then is
    retried once."""
    waits, began = held_waits
    async with client_for(fake, retry=BACKOFF_5S) as vbo:
        retrying = await retry_wait_then_rest(fake, vbo, "55", began)
        job = await asyncio.wait_for(retrying, timeout=10)  # guards against a hang only
    assert job.id == "j1"
    assert sent(fake, "GET", "/v1/Jobs/j1") == 2
    assert waits[0] == 5.0  # its own backoff, cut short; then the rest (j2's retry waits it too)
    assert len(waits) >= 3
    assert all(50 < wait <= 55 for wait in waits[1:])


async def test_a_retry_wait_is_not_cut_short_by_a_rest_ending_before_it(
    fake: FakeVBO, held_waits: tuple[list[float], asyncio.Event]
) -> None:
    """A rest that ends before the request's own backoff does (2 s of 5) leaves that backoff alone."""
    waits, began = held_waits
    async with client_for(fake, retry=BACKOFF_5S) as vbo:
        retrying = await retry_wait_then_rest(fake, vbo, "2", began)
        for _ in range(50):
            await asyncio.sleep(0)
        assert not retrying.done()  # still waiting its own 5 s
        retrying.cancel()
        with pytest.raises(asyncio.CancelledError):
            await retrying
    assert sent(fake, "GET", "/v1/Jobs/j1") == 1
    assert waits[0] == 5.0


# --- a rest or a retry budget met while waiting for something else -------------------------------


async def test_a_rest_set_while_a_request_renewed_its_token_is_waited_out_before_its_replay(
    fake: FakeVBO, sleeps: list[float]
) -> None:
    """A GET answered 401 waits for its renewed token; meanwhile another request is answered 429
    (``Retry-After: 20``). The GET's replay waits the rest out: it was sent into it as soon as the
    token came (a 429, the request failed where waiting 20 s would not). (A job action answered
    401 is not replayed at all: test_auth.)"""
    fake.route("GET", "/v1/Jobs/j0", json_response(200, JOB1))
    fake.route("GET", "/v1/Jobs/j1", throttled(retry_after="20"))
    fake.route("GET", "/v1/Jobs/j2", json_response(200, JOB2))
    renewing, renewed = asyncio.Event(), asyncio.Event()

    async def slow_grant() -> None:
        renewing.set()
        await renewed.wait()

    async with client_for(fake, retry=ONCE) as vbo:
        await vbo.job("j0")  # the first token
        fake.revoke()  # the GET's token is refused: a 401, a renewal, a replay
        fake.before_token = slow_grant
        replayed = asyncio.create_task(vbo.job("j2"))
        await asyncio.wait_for(renewing.wait(), timeout=10)  # guards against a hang only
        fake.valid_access.update(access for access, _ in fake.issued)  # the other GET's token is good
        with pytest.raises(RateLimitedError):
            await vbo.job("j1")  # the rest, set while the first GET waits for its token
        assert sleeps == []
        renewed.set()
        await asyncio.wait_for(replayed, timeout=10)
    assert sent(fake, "GET", "/v1/Jobs/j2") == 2  # the 401, and the replay after the rest
    assert len(sleeps) == 1
    assert 15 < sleeps[0] <= 20


async def test_a_retry_whose_budget_ran_out_waiting_for_a_slot_is_not_sent(fake: FakeVBO) -> None:
    """A GET answered 503 is to be retried 0.1 s later within a 0.3 s budget, but the one slot is
    taken meanwhile for 0.6 s: when the retry gets it, the budget is spent, and the 503 is the
    answer. It was sent all the same, twice the budget after the first try."""
    answers = iter([json_response(503, {"message": "busy"}), json_response(200, JOB1)])
    fake.route("GET", "/v1/Jobs/j0", json_response(200, JOB2))
    fake.route("GET", "/v1/Jobs/j1", lambda request: next(answers))
    first_answered, release = asyncio.Event(), asyncio.Event()

    async def slow(request: httpx.Request) -> httpx.Response:
        await release.wait()
        return json_response(200, JOB2)

    fake.route("GET", "/v1/Jobs/j2", slow)
    original = fake.handler

    async def handler(request: httpx.Request) -> httpx.Response:
        response = await original(request)
        if request.url.path == "/v1/Jobs/j1":
            first_answered.set()
        return response

    policy = RetryPolicy(attempts=4, wait_initial=0.1, wait_max=0.1, wait_jitter=0.0, timeout=0.3)
    async with client_for(handler, retry=policy, max_concurrency=1) as vbo:
        await vbo.job("j0")  # the token
        retrying = asyncio.create_task(vbo.job("j1"))
        await asyncio.wait_for(first_answered.wait(), timeout=10)
        holding = asyncio.create_task(vbo.job("j2"))  # takes the slot during the retry's backoff
        await asyncio.sleep(0.6)
        release.set()
        with pytest.raises(ServerError, match="HTTP 503"):
            await asyncio.wait_for(retrying, timeout=10)
        await holding
    assert sent(fake, "GET", "/v1/Jobs/j1") == 1


async def test_a_retry_cut_short_by_a_rest_it_may_not_wait_out_fails_before_waiting_for_a_slot(
    fake: FakeVBO,
) -> None:
    """One slot, a 1.3 s budget. X is answered 503 and waits 0.4 s to retry; 0.35 s later Y is
    answered 429 with ``Retry-After: 1``, and Z, queued for the slot meanwhile, takes it to wait
    that rest out in it. X
    cannot wait the rest out within its budget: it fails now, unsent. It waited for Z's slot
    first, a second, and failed only then."""
    asked = {"j1": asyncio.Event(), "j2": asyncio.Event()}
    answers = {
        "j1": iter([json_response(503, {"message": "busy"})]),
        "j2": iter([throttled(retry_after="1"), json_response(200, JOB2)]),
    }

    go = asyncio.Event()

    async def answer(request: httpx.Request) -> httpx.Response:
        job = request.url.path.rpartition("/")[2]
        if not asked[job].is_set():
            asked[job].set()
            if job == "j2":
                await go.wait()  # Y holds the slot until Z is queued for it
        return next(answers[job])

    fake.route("GET", "/v1/Jobs/j0", json_response(200, JOB1))
    fake.route("GET", "/v1/Jobs/j1", answer)
    fake.route("GET", "/v1/Jobs/j2", answer)
    fake.route("GET", "/v1/Jobs/j3", json_response(200, JOB2))
    policy = RetryPolicy(attempts=3, wait_initial=0.4, wait_max=0.4, wait_jitter=0.0, timeout=1.3)
    async with client_for(fake, retry=policy, max_concurrency=1) as vbo:
        await vbo.job("j0")  # the token
        x = asyncio.create_task(vbo.job("j1"))
        await asyncio.wait_for(asked["j1"].wait(), timeout=10)
        await asyncio.sleep(0.35)
        y = asyncio.create_task(vbo.job("j2"))
        await asyncio.wait_for(asked["j2"].wait(), timeout=10)
        z = asyncio.create_task(vbo.job("j3"))  # queued for the slot: it waits the rest out in it
        for _ in range(5):
            await asyncio.sleep(0)
        go.set()
        with pytest.raises(RateLimitedError, match="GET not sent"):
            await asyncio.wait_for(x, timeout=10)  # guards against a hang only
        assert not z.done()
        await asyncio.wait_for(asyncio.gather(y, z), timeout=10)
    assert sent(fake, "GET", "/v1/Jobs/j1") == 1
