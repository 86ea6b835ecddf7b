"""Authentication: the password grant first, Bearer everywhere, one renewal for many 401s."""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import email.utils
import logging
import pickle
import traceback
from typing import Any
from urllib.parse import parse_qs, urlencode

import httpx
import pytest

from vbo_async import (
    APIError,
    AuthenticationError,
    DecodeError,
    NotFoundError,
    RateLimitedError,
    RetryPolicy,
    ServerError,
    TransportError,
    VBOClient,
    VBOError,
)
from vbo_async._auth import (
    MAX_RENEWALS,
    MAX_THROTTLE_REST,
    REFUSED_PAUSE,
    REFUSED_PAUSE_MAX,
    RENEWAL_RETRY,
    RETIRED_KEPT,
    RETIRED_LIVE,
    THROTTLE_REST,
    UNREADABLE_REST,
    Secret,
    TokenManager,
)
from vbo_async._dialects import V1, V7
from vbo_async._tokens import GrantForm, Token, parse_http_date, parse_token_response

from .conftest import (
    BASE,
    FAST,
    PASSWORD,
    USERNAME,
    FakeVBO,
    as_asgi,
    assert_closing_ends_waiting_calls,
    client_for,
    json_response,
    second_caller_after_the_first_is_cancelled,
    serve,
    settled,
)
from .raw_http import serve_raw

DENIED = b'{"message":"Authorization has been denied for this request."}'


def serve_jobs(fake: FakeVBO, count: int = 1) -> None:
    fake.route("GET", "/v1/Jobs", [{"id": "j0"}])
    for i in range(count):
        fake.route("GET", f"/v1/Jobs/j{i}", {"id": f"j{i}"})


# --- the token request -----------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["", "/api"])
async def test_first_request_is_the_password_grant(prefix: str) -> None:
    fake = FakeVBO(prefix=prefix)
    serve_jobs(fake)
    async with client_for(fake, base_url=f"{BASE}{prefix}") as vbo:
        await vbo.jobs()

    token, api = fake.requests
    assert token.method == "POST"
    assert str(token.url) == f"{BASE}{prefix}/v1/Token"
    assert token.headers["content-type"] == "application/x-www-form-urlencoded"
    assert "authorization" not in token.headers
    assert (
        token.content
        == urlencode({"grant_type": "password", "username": USERNAME, "password": PASSWORD}).encode()
    )
    assert parse_qs(token.content.decode()) == {
        "grant_type": ["password"],
        "username": [USERNAME],
        "password": [PASSWORD],
    }
    assert b"LAB%5Csvc-backup" in token.content
    assert api.method == "GET"
    assert str(api.url) == f"{BASE}{prefix}/v1/Jobs"
    assert api.headers["authorization"] == f"Bearer {fake.issued[0][0]}"


async def test_no_unauthenticated_probe(fake: FakeVBO, vbo: VBOClient) -> None:
    serve_jobs(fake, 3)
    await asyncio.gather(vbo.jobs(), vbo.job("j1"), vbo.job("j2"))
    assert fake.requests[0] in fake.token_requests
    assert len(fake.token_requests) == 1
    assert all("authorization" in r.headers for r in fake.api_requests)


async def test_bearer_on_every_other_request_and_token_reused(fake: FakeVBO, vbo: VBOClient) -> None:
    serve_jobs(fake, 3)
    fake.route("POST", "/v1/Jobs/j0/Action", httpx.Response(200))
    await vbo.jobs()
    await vbo.job("j1")
    await vbo.job("j2")
    await vbo.start_job("j0")

    access = fake.issued[0][0]
    assert fake.grants() == ["password"]
    assert vbo.token_requests == 1
    assert len(fake.api_requests) == 4
    assert [r.headers["authorization"] for r in fake.api_requests] == [f"Bearer {access}"] * 4


# --- refused credentials ---------------------------------------------------------------------------


async def test_rejected_password_400_invalid_grant(fake: FakeVBO) -> None:
    serve_jobs(fake)
    async with client_for(fake, password="wrong") as vbo:
        with pytest.raises(AuthenticationError) as info:
            await vbo.jobs()
    assert "The user name or password is incorrect." in str(info.value)
    assert info.value.url == f"{BASE}/v1/Token"
    assert len(fake.token_requests) == 1
    assert fake.api_requests == []


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        (json_response(401, {"message": "Invalid credentials."}), "Invalid credentials."),
        (httpx.Response(401), "unauthorized (401)"),
        (json_response(401, {}), "unauthorized (401)"),
        (json_response(400, {"error": "invalid_grant"}), "invalid_grant"),
        (httpx.Response(400, text="Bad Request"), "Bad Request"),
        (httpx.Response(400), "bad request"),
    ],
    ids=["401-message", "401-empty", "401-no-message", "400-error-only", "400-text", "400-empty"],
)
async def test_rejected_password_variants(fake: FakeVBO, answer: httpx.Response, said: str) -> None:
    serve_jobs(fake)
    fake.token_script = [answer] * 5
    async with client_for(fake) as vbo:
        with pytest.raises(AuthenticationError) as info:
            await vbo.jobs()
    # A token endpoint's bodiless 401 (as 8.x servers send) refused the password, not a token.
    assert info.value.message == f"the server refused the password grant: {said}"
    assert len(fake.token_requests) == 1  # never retried
    assert fake.api_requests == []


async def test_a_refused_password_is_not_sent_again_until_its_pause_is_over(fake: FakeVBO) -> None:
    """A monitoring loop with a wrong password must not send it once a sweep (directory accounts
    lock after a few failures): after a refusal, calls raise it again without a request for
    `REFUSED_PAUSE` seconds, then twice as long after each further refusal; a success ends it."""
    serve_jobs(fake)
    refused = json_response(
        400, {"error": "invalid_grant", "error_description": "The user name or password is incorrect."}
    )
    fake.token_script = [refused] * 3
    now = [1000.0]
    async with client_for(fake) as vbo:
        vbo._tokens._clock = lambda: now[0]

        async def refused_grants() -> str:
            with pytest.raises(AuthenticationError) as caught:
                await vbo.jobs()
            return str(caught.value)

        first = await refused_grants()
        assert fake.grants() == ["password"]
        now[0] += REFUSED_PAUSE - 1
        again = await refused_grants()
        assert fake.grants() == ["password"]  # held: nothing sent
        assert again.startswith(first.partition(" (")[0])  # the server's own words first
        assert "refused 29 s ago and is not sent again for 1 s" in again
        assert PASSWORD not in again
        now[0] += 1
        await refused_grants()  # the pause is over: sent, refused again
        assert fake.grants() == ["password"] * 2
        now[0] += 2 * REFUSED_PAUSE - 1
        assert "not sent again for 1 s" in await refused_grants()
        assert fake.grants() == ["password"] * 2
        now[0] += 1
        await refused_grants()
        assert fake.grants() == ["password"] * 3
        now[0] += 4 * REFUSED_PAUSE
        assert [job.id for job in await vbo.jobs()] == ["j0"]  # accepted this time
    assert fake.grants() == ["password"] * 4


async def test_the_pauses_after_refused_passwords_double_up_to_a_maximum_and_end_on_a_success() -> None:
    now = [0.0]
    answers: list[Any] = []
    sent: list[float] = []  # when each grant was sent
    tokens = scripted_tokens(answers, [], now, sent_at=sent)
    pauses = []
    for _ in range(8):  # refused every time it is sent; asked every second
        answers.append(AuthenticationError("HTTP 400: invalid_grant"))
        start = len(sent)
        while len(sent) == start:
            with pytest.raises(AuthenticationError):
                await tokens.current()
            now[0] += 1
        if len(sent) > 1:
            pauses.append(sent[-1] - sent[-2])
    assert pauses == [REFUSED_PAUSE * 2**n for n in range(5)] + [REFUSED_PAUSE_MAX, REFUSED_PAUSE_MAX]
    answers.append({"access_token": "a", "refresh_token": "r", "expires_in": 3600})
    now[0] += REFUSED_PAUSE_MAX
    assert (await tokens.current()).access_token == "a"
    # The same manager, once the token expires: the refresh and the password are refused, and
    # the success ended the run of refusals, so the pause is the first one again, not the longest.
    now[0] += 3600
    answers += [AuthenticationError("refresh refused"), AuthenticationError("HTTP 400: invalid_grant")]
    with pytest.raises(AuthenticationError):
        await tokens.current()
    asked = len(sent)
    with pytest.raises(AuthenticationError, match=f"not sent again for {REFUSED_PAUSE:.0f} s"):
        await tokens.current()  # the password held, and the refused refresh token not asked again
    assert len(sent) == asked
    now[0] += REFUSED_PAUSE
    answers.append({"access_token": "b", "expires_in": 3600})
    assert (await tokens.current()).access_token == "b"
    assert answers == []
    assert len(sent) == asked + 1


async def test_a_refused_password_during_discovery_pauses_password_grants_too() -> None:
    """With ``api_version="auto"`` the first password grant is the discovery's probe; its refusal
    holds the next calls as a renewal's does (one grant, not one per call)."""
    grants: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.lower().endswith("/token"):
            grants.append(request.url.path)
            return json_response(400, {"error": "invalid_grant"})
        return json_response(404, {"message": "no such path"})

    async with client_for(handler, api_version="auto") as vbo:
        for _ in range(3):
            with pytest.raises(AuthenticationError):
                await vbo.jobs()
    assert grants == ["/v8/Token"]


async def test_concurrent_calls_share_one_refused_password_grant(fake: FakeVBO) -> None:
    """A burst of refused logins can lock a directory account out: ask once, tell everyone."""
    serve_jobs(fake, 10)
    fake.before_token = lambda: asyncio.sleep(0.001)  # a real token request takes a while
    async with client_for(fake, password="wrong") as vbo:
        results = await asyncio.gather(*(vbo.job(f"j{i}") for i in range(10)), return_exceptions=True)
        assert all(isinstance(r, AuthenticationError) for r in results), results
        assert fake.grants() == ["password"]
        with pytest.raises(AuthenticationError, match="not sent again"):
            await vbo.job("j0")  # a later call, within the pause: told without asking
    assert fake.grants() == ["password"]
    assert fake.api_requests == []


async def test_concurrent_calls_share_a_throttled_token_endpoint(fake: FakeVBO) -> None:
    serve_jobs(fake, 10)
    fake.token_script = [json_response(429, {"message": "Quota Exceeded"}, headers={"Retry-After": "0"})] * 40
    async with client_for(fake) as vbo:
        results = await asyncio.gather(*(vbo.job(f"j{i}") for i in range(10)), return_exceptions=True)
    assert all(isinstance(r, RateLimitedError) for r in results), results
    assert len(fake.token_requests) == 4  # one caller's attempts, not ten callers' attempts


async def test_a_caller_cancelled_during_the_token_request_leaves_it_to_the_others(fake: FakeVBO) -> None:
    """A request handler's deadline ending while the token is obtained does not restart the token
    request for the callers still waiting for it: with deadlines shorter than the token endpoint
    takes, each caller would otherwise cancel its own and none would ever get a token."""
    serve_jobs(fake, 2)
    entered = asyncio.Event()
    release = asyncio.Event()

    async def hold() -> None:
        entered.set()
        await release.wait()

    fake.before_token = hold
    async with client_for(fake) as vbo:
        # the second call waits for the first caller's token request
        job = await second_caller_after_the_first_is_cancelled(
            lambda: vbo.job("j0"), lambda: vbo.job("j1"), entered, release
        )
    assert job.id == "j1"
    assert len(fake.token_requests) == 1
    assert fake.grants() == ["password"]


async def test_a_password_grant_whose_callers_are_all_cancelled_finishes_and_serves_the_next_call(
    fake: FakeVBO,
) -> None:
    """Every call waiting for the first token is cancelled (a handler's deadline shorter than the
    token endpoint takes). The grant was cancelled with them: each later call sent one more, none
    was ever used, and VB365's throttle (5 a minute) shut the client out. It now finishes alone,
    nothing is left running once it has, and the next call uses its token."""
    serve_jobs(fake, 2)
    entered, release = asyncio.Event(), asyncio.Event()
    cancelled: list[int] = []

    async def hold_the_first() -> None:
        if len(fake.token_requests) == 1:
            entered.set()
            try:
                await release.wait()
            except asyncio.CancelledError:
                cancelled.append(1)
                raise

    fake.before_token = hold_the_first
    async with client_for(fake) as vbo:
        before = asyncio.all_tasks()
        first = asyncio.create_task(vbo.job("j0"))
        await entered.wait()
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        release.set()
        await settled(before)  # the grant ended, by itself
        job = await vbo.job("j1")
    assert job.id == "j1"
    assert cancelled == []
    assert len(fake.token_requests) == 1
    assert fake.grants() == ["password"]


async def test_the_discovery_of_auto_whose_callers_are_all_cancelled_finishes_and_serves_the_next_call() -> (
    None
):
    """``api_version="auto"`` (the default): the first password grant is the discovery's probe.
    Cancelled with its last caller, as a password renewal was, a token endpoint slower than the
    callers' deadlines was asked once per call and never answered one."""
    from vbo_async.simulator import Simulator, SimulatorConfig, create_app

    inner = httpx.ASGITransport(app=create_app(simulator=Simulator(SimulatorConfig(seed=1, organizations=2))))
    entered, release = asyncio.Event(), asyncio.Event()
    grants: list[str] = []

    class Held(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if request.url.path.lower().endswith("/token"):
                grants.append(request.url.path.lower())
                if len(grants) == 1:
                    entered.set()
                    await release.wait()
            return await inner.handle_async_request(request)

    async with VBOClient(BASE, username="admin", password="admin", transport=Held()) as vbo:
        before = asyncio.all_tasks()
        first = asyncio.create_task(vbo.organizations())
        await entered.wait()
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        release.set()
        await settled(before)  # the discovery ended, by itself
        assert len(await vbo.organizations()) == 2
        assert vbo.api_version == "v8"
    assert grants == ["/v8/token"]


@pytest.mark.parametrize("when", ["before the server answers", "after the server answered"])
async def test_a_renewal_whose_only_caller_is_cancelled_still_brings_its_token(when: str) -> None:
    """A call renewing an expired token is cancelled (its deadline) while the refresh grant is
    in flight. Cancelling it cancelled the grant: the server had used the refresh token up (it
    rotates them), so the next call sent it again, was refused, and paid a password grant too.
    The renewal now finishes on its own (held by the client, ended by closing), and the next
    call uses the token it brought; nothing is left running once it has."""
    fake = FakeVBO()
    serve_jobs(fake, 2)
    held, release = asyncio.Event(), asyncio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        refresh = b"grant_type=refresh_token" in request.content
        if refresh and when == "before the server answers":
            held.set()
            await release.wait()
        response = await fake.handler(request)
        if refresh and when == "after the server answered":
            held.set()
            await release.wait()
        return response

    now = [1000.0]
    async with client_for(handler) as vbo:
        vbo._tokens._clock = lambda: now[0]
        await vbo.job("j0")
        now[0] += 10**6  # the token has expired
        before = asyncio.all_tasks()
        caller = asyncio.create_task(vbo.job("j0"))
        await asyncio.wait_for(held.wait(), timeout=10)  # guards against a hang only
        caller.cancel()
        with pytest.raises(asyncio.CancelledError):
            await caller
        release.set()
        await settled(before)  # the renewal ended, by itself
        job = await vbo.job("j1")
    assert job.id == "j1"
    assert fake.grants() == ["password", "refresh_token"]


async def test_closing_during_the_token_request_ends_its_callers_and_leaves_no_task(fake: FakeVBO) -> None:
    serve_jobs(fake, 3)
    entered = asyncio.Event()

    async def hang() -> None:
        entered.set()
        await asyncio.Event().wait()

    fake.before_token = hang
    vbo = client_for(fake)
    await assert_closing_ends_waiting_calls(vbo, [lambda i=i: vbo.job(f"j{i}") for i in range(3)], entered)
    assert len(fake.token_requests) == 1
    assert fake.api_requests == []


async def test_token_answer_without_access_token(fake: FakeVBO) -> None:
    serve_jobs(fake)
    fake.token_script = [json_response(200, {"token_type": "bearer"})]
    async with client_for(fake) as vbo:
        with pytest.raises(DecodeError, match="access_token"):
            await vbo.jobs()
    assert fake.api_requests == []


@pytest.mark.parametrize(
    "answer",
    [
        json_response(200, {"token_type": "bearer"}),
        json_response(200, {"access_token": 42}),
        json_response(200, {"access_token": "tok en-Vq3"}),
        httpx.Response(200, text="<html>login</html>"),
    ],
    ids=["no-access-token", "not-a-string", "not-a-bearer", "not-json"],
)
async def test_an_unreadable_token_answer_is_a_server_fault_not_a_refused_password(
    fake: FakeVBO, answer: httpx.Response
) -> None:
    """A 200 from the token endpoint that brings no usable access token is the server's fault: a
    `DecodeError` saying what was wrong (never quoting the token), not the refused password (no
    `REFUSED_PAUSE`, no "the password was refused"). The endpoint is not asked again at once by
    every call (`UNREADABLE_REST`); after the rest the password grant is sent again."""
    serve_jobs(fake)
    fake.token_script = [answer]
    now = [1000.0]
    async with client_for(fake) as vbo:
        vbo._tokens._clock = lambda: now[0]
        with pytest.raises(DecodeError) as first:
            await vbo.jobs()
        assert not isinstance(first.value, AuthenticationError)
        assert "tok en-Vq3" not in str(first.value)
        for _ in range(3):
            with pytest.raises(DecodeError) as held:
                await vbo.jobs()
            assert "refused" not in str(held.value)
            assert "not asked again" in str(held.value)
        assert len(fake.token_requests) == 1
        now[0] += UNREADABLE_REST
        (job,) = await vbo.jobs()
    assert job.id == "j0"
    assert fake.grants() == ["password", "password"]


async def test_an_unreadable_token_answer_does_not_lengthen_a_refused_password_pause() -> None:
    """A refusal after an unreadable answer is the first refusal in a row: paused `REFUSED_PAUSE`."""
    now, forms = [0.0], []
    answers: list[Any] = [{"token_type": "bearer"}, AuthenticationError("HTTP 400: invalid_grant")]
    tokens = scripted_tokens(answers, forms, now)
    with pytest.raises(DecodeError, match="access_token"):
        await tokens.current()
    now[0] += UNREADABLE_REST
    with pytest.raises(AuthenticationError, match="invalid_grant"):
        await tokens.current()
    now[0] += REFUSED_PAUSE - 1
    with pytest.raises(AuthenticationError, match="not sent again for 1 s"):
        await tokens.current()
    assert len(forms) == 2


async def test_token_answer_not_json(fake: FakeVBO) -> None:
    serve_jobs(fake)
    fake.token_script = [httpx.Response(200, text="<html>login</html>")]
    async with client_for(fake) as vbo:
        with pytest.raises(DecodeError):
            await vbo.jobs()
    assert fake.api_requests == []


# --- renewing ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("deny_body", [b"", DENIED], ids=["empty-401", "message-401"])
async def test_thirty_concurrent_requests_after_revocation_renew_once(deny_body: bytes) -> None:
    fake = FakeVBO(deny_body=deny_body)
    serve_jobs(fake, 30)

    async def slow_job(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0)
        return json_response(200, {"id": request.url.path.rsplit("/", 1)[-1]})

    for i in range(30):
        fake.route("GET", f"/v1/Jobs/j{i}", slow_job)
    async with client_for(fake, max_concurrency=30) as vbo:
        await vbo.jobs()
        fake.revoke()

        jobs = await asyncio.gather(*(vbo.job(f"j{i}") for i in range(30)))

    assert [job.id for job in jobs] == [f"j{i}" for i in range(30)]
    assert fake.grants() == ["password", "refresh_token"]
    assert fake.token_forms[1]["refresh_token"] == fake.issued[0][1]
    new = f"Bearer {fake.issued[1][0]}"
    assert sum(1 for r in fake.api_requests if r.headers["authorization"] == new) == 30


async def test_refresh_refused_falls_back_to_the_password_grant(fake: FakeVBO, vbo: VBOClient) -> None:
    serve_jobs(fake)
    await vbo.jobs()
    fake.revoke()
    fake.refuse_refresh = True

    (job,) = await vbo.jobs()

    assert job.id == "j0"
    assert fake.grants() == ["password", "refresh_token", "password"]
    assert fake.api_requests[-1].headers["authorization"] == f"Bearer {fake.issued[1][0]}"


async def test_a_token_whose_refresh_and_password_were_refused_is_not_offered_again(
    fake: FakeVBO, vbo: VBOClient
) -> None:
    """The server refuses the token, its refresh token and the password (a password changed or an
    account disabled on the server side): while the password is paused, calls raise the refusal
    without any request (not the refused token again, nor its refused refresh token); after the
    pause the password grant alone is sent."""
    serve_jobs(fake)
    await vbo.jobs()
    now = [1000.0]
    vbo._tokens._clock = lambda: now[0]
    fake.revoke()
    fake.refuse_refresh = True
    refused = {"error": "invalid_grant", "error_description": "The user name or password is incorrect."}
    fake.token_script = [json_response(400, {"error": "invalid_grant"}), json_response(400, refused)]
    sent = await refused_then_paused(fake, vbo)
    now[0] += REFUSED_PAUSE
    assert [job.id for job in await vbo.jobs()] == ["j0"]
    assert fake.grants() == ["password", "refresh_token", "password", "password"]
    assert len(fake.requests) == sent + 2  # the password grant, then the jobs


async def refused_then_paused(fake: FakeVBO, vbo: VBOClient) -> int:
    """A call the server refuses the password for, then three calls during the pause that send
    no request at all; the requests sent so far."""
    with pytest.raises(AuthenticationError, match="user name or password is incorrect"):
        await vbo.jobs()
    sent = len(fake.requests)
    for _ in range(3):
        with pytest.raises(AuthenticationError, match="not sent again"):
            await vbo.jobs()
    assert len(fake.requests) == sent
    return sent


async def test_a_token_without_a_refresh_token_refused_with_the_password_is_not_offered_again(
    fake: FakeVBO, vbo: VBOClient
) -> None:
    """As above for a token granted without a refresh token: once the server refused it and the
    password, calls during the pause send no request (not the refused token again)."""
    serve_jobs(fake)
    fake.token_script = [json_response(200, {"access_token": "only-access-Wq4", "expires_in": 3600})]
    fake.valid_access.add("only-access-Wq4")
    await vbo.jobs()
    now = [1000.0]
    vbo._tokens._clock = lambda: now[0]
    fake.revoke()
    refused = {"error": "invalid_grant", "error_description": "The user name or password is incorrect."}
    fake.token_script = [json_response(400, refused)]
    await refused_then_paused(fake, vbo)
    assert fake.grants() == ["password", "password"]


async def test_a_token_still_valid_whose_refresh_was_refused_is_kept_for_the_logout() -> None:
    """A proactive refresh refused, then the password: the token, not yet expired, is not dropped
    (closing logs it out), but its refused refresh token is not offered again."""
    now = [0.0]
    refresh = "refresh-Kq8mWz3vLp"
    answers: list[Any] = [{"access_token": "access-Tn5rXc2", "refresh_token": refresh, "expires_in": 3600}]
    forms: list[dict[str, str]] = []
    tokens = scripted_tokens(answers, forms, now)
    await tokens.current()
    now[0] += 3590  # due for its refresh, valid for 10 s more
    answers += [AuthenticationError("refresh refused"), AuthenticationError("HTTP 400: invalid_grant")]
    with pytest.raises(AuthenticationError, match="invalid_grant"):
        await tokens.current()
    with pytest.raises(AuthenticationError, match="not sent again"):
        await tokens.current()
    assert [form["grant_type"] for form in forms] == ["password", "refresh_token", "password"]
    assert refresh not in tokens.redactor().scrub(f"Invalid refresh token {refresh}")  # still scrubbed
    kept = tokens.forget()
    assert kept is not None
    assert (kept.access_token, kept.refresh_token) == ("access-Tn5rXc2", None)


@pytest.mark.parametrize(
    "answer", [b"<html>busy</html>", b'{"token_type": "bearer"}'], ids=["not-json", "no-access-token"]
)
async def test_an_unreadable_refresh_answer_falls_back_to_the_password_grant(
    fake: FakeVBO, vbo: VBOClient, answer: bytes
) -> None:
    serve_jobs(fake)
    await vbo.jobs()
    fake.revoke()
    fake.token_script = [httpx.Response(200, content=answer)]

    (job,) = await vbo.jobs()

    assert job.id == "j0"
    assert fake.grants() == ["password", "refresh_token", "password"]


async def test_each_refresh_uses_the_newest_refresh_token(fake: FakeVBO, vbo: VBOClient) -> None:
    serve_jobs(fake)
    for _ in range(3):
        await vbo.jobs()
        fake.revoke()
    await vbo.jobs()
    assert fake.grants() == ["password", "refresh_token", "refresh_token", "refresh_token"]
    assert [form["refresh_token"] for form in fake.token_forms[1:]] == [r for _, r in fake.issued[:3]]


async def test_no_refresh_token_means_the_password_grant(fake: FakeVBO, vbo: VBOClient) -> None:
    serve_jobs(fake)
    fake.token_script = [json_response(200, {"access_token": "only-access", "expires_in": 3600})]
    fake.valid_access.add("only-access")
    await vbo.jobs()
    fake.revoke()
    await vbo.jobs()
    assert fake.grants() == ["password", "password"]


async def test_a_401_on_a_job_action_is_its_answer_and_renews_the_token_for_the_next(
    fake: FakeVBO, vbo: VBOClient
) -> None:
    """A job action is never sent twice by the library, after a 401 neither: it was replayed with
    a renewed token. The 401 is raised, saying the job was not started, and the token is renewed,
    so that the action sent again by hand goes with the new one."""
    serve_jobs(fake)
    fake.route("POST", "/v1/Jobs/j0/Action", httpx.Response(200))
    await vbo.jobs()
    fake.revoke()
    with pytest.raises(AuthenticationError, match="refused before the server acted: the job was not started"):
        await vbo.start_job("j0")
    assert len([r for r in fake.api_requests if r.method == "POST"]) == 1
    assert fake.grants() == ["password", "refresh_token"]  # renewed after the 401 was read
    await vbo.start_job("j0")  # by hand, once more: with the renewed token, no grant
    posts = [r for r in fake.api_requests if r.method == "POST"]
    assert len(posts) == 2
    assert posts[0].headers["authorization"] != posts[1].headers["authorization"]
    assert posts[1].content == posts[0].content
    assert fake.grants() == ["password", "refresh_token"]


async def test_a_job_action_401_whose_renewal_fails_says_so_not_that_the_token_is_renewed(
    fake: FakeVBO, vbo: VBOClient
) -> None:
    """The 401's error said "the token is renewed" whatever became of the renewal: one that failed
    (the token endpoint down) is said instead, and the action is still sent once."""
    serve_jobs(fake)
    fake.route("POST", "/v1/Jobs/j0/Action", httpx.Response(200))
    await vbo.jobs()
    fake.revoke()
    fake.token_script = [httpx.Response(503)] * 20
    with pytest.raises(AuthenticationError) as caught:
        await vbo.start_job("j0")
    said = str(caught.value)
    assert "refused before the server acted: the job was not started (renewing the token failed too: " in said
    assert "the token is renewed" not in said
    assert len([r for r in fake.api_requests if r.method == "POST"]) == 1


async def test_proactive_refresh_before_expiry(monkeypatch: pytest.MonkeyPatch) -> None:
    # Without the floor on proactive refreshes (test_token_lifetimes covers it), so a 50 ms
    # lifetime is due for refresh after 45 ms on the client's clock: a hand-driven one (on the
    # real clock, a machine held up 45 ms before the first request refreshed there, a grant more).
    monkeypatch.setattr("vbo_async._tokens.MIN_REFRESH_DELAY", 0.0)
    fake = FakeVBO(expires_in=0.05)
    serve_jobs(fake)
    now = [1000.0]
    async with client_for(fake) as vbo:
        vbo._tokens._clock = lambda: now[0]
        await vbo.jobs()
        now[0] += 0.1  # past the 50 ms lifetime
        await vbo.jobs()

    # The old token was never refused: the refresh grant came before the request, not after a 401.
    assert fake.grants() == ["password", "refresh_token"]
    assert fake.token_forms[1]["refresh_token"] == fake.issued[0][1]
    assert [r.headers["authorization"] for r in fake.api_requests] == [
        f"Bearer {fake.issued[0][0]}",
        f"Bearer {fake.issued[1][0]}",
    ]
    assert fake.paths() == ["/v1/Token", "/v1/Jobs", "/v1/Token", "/v1/Jobs"]


async def test_token_manager_refreshes_on_a_fake_clock() -> None:
    now = [1000.0]
    forms: list[dict[str, str]] = []

    async def fetch(url: str, form: GrantForm) -> dict[str, Any]:
        assert url == "https://vbo.test/v7/Token"
        forms.append(form.reveal())
        n = len(forms)
        return {"access_token": f"a{n}", "refresh_token": f"r{n}", "expires_in": 3600}

    tokens = TokenManager(username="u", password=Secret("p"), fetch=fetch, clock=lambda: now[0])
    tokens.use(V7, "https://vbo.test/v7/Token")
    first = await tokens.current()
    assert first.access_token == "a1"
    now[0] += 3600 - 61
    assert (await tokens.current()) is first  # still more than a minute left
    now[0] += 2
    second = await tokens.current()
    assert second.access_token == "a2"
    assert [f["grant_type"] for f in forms] == ["password", "refresh_token"]
    assert forms[1]["refresh_token"] == "r1"
    # v7+: both grants disable the antiforgery token (refresh fails on real servers without it)
    assert [f["disable_antiforgery_token"] for f in forms] == ["true", "true"]
    assert tokens.requests == 2


def scripted_tokens(
    answers: list[Any], forms: list[dict[str, str]], now: list[float], *, sent_at: list[float] | None = None
) -> TokenManager:
    """A TokenManager on the clock ``now[0]`` whose grants are answered by ``answers`` in order
    (an exception is raised), each form recorded in ``forms`` (and the time it was sent in
    ``sent_at``)."""

    async def fetch(url: str, form: GrantForm) -> Any:
        forms.append(form.reveal())
        if sent_at is not None:
            sent_at.append(now[0])
        answer = answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    tokens = TokenManager(username="u", password=Secret("pw-Zr7u"), fetch=fetch, clock=lambda: now[0])
    tokens.use(V1, f"{BASE}/v1/Token")
    return tokens


async def due_for_refresh(
    answers: list[Any], forms: list[dict[str, str]], now: list[float]
) -> tuple[TokenManager, Token]:
    """`scripted_tokens` and its first token (the first of ``answers``), with the clock moved to
    when that token is due for its proactive refresh: valid for about a minute more."""
    tokens = scripted_tokens(answers, forms, now)
    first = await tokens.current()
    now[0] = first.refresh_at + 1
    return tokens, first


def issued(n: int) -> dict[str, Any]:
    return {"access_token": f"access-{n}-Qx", "refresh_token": f"refresh-{n}-Qx", "expires_in": 3600}


BLIPS = [
    pytest.param(ServerError("busy", status_code=503), id="503"),
    # One that reached the server may have used the refresh token up: the password grant is
    # made at once instead (test_a_refresh_grant_cut_off_after_reaching_the_server_...).
    pytest.param(TransportError("no connection within 30 s", unsent=True), id="timeout"),
    pytest.param(RateLimitedError("Quota Exceeded", status_code=429, retry_after=2.0), id="429"),
]


@pytest.mark.parametrize("blip", BLIPS)
async def test_a_failed_proactive_refresh_keeps_the_token_still_valid(blip: VBOError) -> None:
    """The token endpoint fails a proactive renewal (due a minute before expiry): calls go on with
    the token, which the server still accepts; the renewal is tried again a few seconds later
    (`RENEWAL_RETRY`), not once per call, and a success replaces the token."""
    now, forms = [0.0], []
    answers: list[Any] = [issued(1)]
    tokens, first = await due_for_refresh(answers, forms, now)
    answers += [blip]
    for _ in range(3):
        assert await tokens.current() is first
    assert [form["grant_type"] for form in forms] == ["password", "refresh_token"]
    now[0] += RENEWAL_RETRY
    answers += [issued(2)]
    renewed = await tokens.current()
    assert renewed.access_token == "access-2-Qx"
    assert [form["grant_type"] for form in forms] == ["password", "refresh_token", "refresh_token"]
    assert forms[2]["refresh_token"] == "refresh-1-Qx"  # not spent by the blip


@pytest.mark.parametrize("blip", BLIPS)
async def test_a_failed_refresh_of_an_expired_token_raises(blip: VBOError) -> None:
    """Once the token has expired, a failed renewal is the caller's error, asked again by the next
    call (as before: no token is left to go on with)."""
    now, forms = [0.0], []
    answers: list[Any] = [issued(1)]
    tokens, first = await due_for_refresh(answers, forms, now)
    answers += [ServerError("busy", status_code=503)]
    assert await tokens.current() is first
    now[0] = first.expires_at
    answers += [blip]
    if isinstance(blip, ServerError):
        # A token needed now: an answer to the refresh but 200 (once its retries are spent) is
        # followed by the password grant, as real clients do; its failure is raised.
        answers += [ServerError("busy", status_code=503)]
    with pytest.raises(type(blip)):
        await tokens.current()
    resent = ["refresh_token", "password"] if isinstance(blip, ServerError) else ["refresh_token"]
    assert [form["grant_type"] for form in forms] == ["password", "refresh_token", *resent]


async def test_a_throttled_proactive_refresh_is_not_asked_again_before_its_rest() -> None:
    """A 429 without Retry-After during a proactive renewal: the token still serves, and no grant
    is sent before `THROTTLE_REST` is over; expired meanwhile, calls raise the throttle."""
    now, forms = [0.0], []
    answers: list[Any] = [issued(1)]
    tokens, first = await due_for_refresh(answers, forms, now)
    answers += [RateLimitedError("Quota Exceeded", status_code=429)]
    assert await tokens.current() is first
    now[0] += RENEWAL_RETRY
    assert await tokens.current() is first
    now[0] = first.expires_at
    with pytest.raises(RateLimitedError, match="not asked again") as held:
        await tokens.current()
    assert [form["grant_type"] for form in forms] == ["password", "refresh_token"]
    # Nothing was sent: ``unsent``, as for an API request held back by the server's rest (it was
    # False, which reads as "may have reached the server").
    assert held.value.unsent is True


async def test_a_proactive_refresh_refused_then_a_failed_password_grant_keeps_the_token() -> None:
    """The refresh token refused (spent: not offered again) and the password grant failing on the
    server's side: the token still serves; the next renewal is the password grant."""
    now, forms = [0.0], []
    answers: list[Any] = [issued(1)]
    tokens, _ = await due_for_refresh(answers, forms, now)
    answers += [AuthenticationError("Invalid refresh token"), ServerError("busy", status_code=503)]
    kept = await tokens.current()
    assert (kept.access_token, kept.refresh_token) == ("access-1-Qx", None)
    now[0] += RENEWAL_RETRY
    answers += [issued(2)]
    assert (await tokens.current()).access_token == "access-2-Qx"
    assert [form["grant_type"] for form in forms] == ["password", "refresh_token", "password", "password"]


async def test_a_401_for_a_request_sent_before_its_refresh_was_refused_offers_no_refused_token() -> None:
    """A request sent with the token before its proactive refresh was refused (the token kept
    without its refresh token) comes back 401: the renewal does not offer the refused refresh
    token again."""
    now, forms = [0.0], []
    answers: list[Any] = [issued(1)]
    tokens, first = await due_for_refresh(answers, forms, now)
    answers += [AuthenticationError("Invalid refresh token"), ServerError("busy", status_code=503)]
    kept = await tokens.current()
    assert (kept.access_token, kept.refresh_token) == ("access-1-Qx", None)
    answers += [ServerError("still busy", status_code=503)]
    with pytest.raises(ServerError, match="still busy"):
        await tokens.renew(first)  # the request was sent with `first`, refresh token and all
    assert [form["grant_type"] for form in forms] == ["password", "refresh_token", "password", "password"]


async def test_a_401_with_an_older_token_is_not_given_the_refused_current_one() -> None:
    """A request sent with an older token comes back 401 after the current one was refused and
    its renewal failed: it is not handed the refused token to replay (one more 401), the
    renewal is tried for it."""
    now, forms = [0.0], []
    answers: list[Any] = [issued(1), issued(2)]
    tokens = scripted_tokens(answers, forms, now)
    first = await tokens.current()
    second = await tokens.renew(first)
    assert second.access_token == "access-2-Qx"
    # The refresh answered 503, then (the token refused: needed now) the password grant too.
    answers += [ServerError("busy", status_code=503), ServerError("busy", status_code=503)]
    with pytest.raises(ServerError):
        await tokens.renew(second)
    answers += [issued(3)]
    assert (await tokens.renew(first)).access_token == "access-3-Qx"
    assert [(form["grant_type"], form.get("refresh_token")) for form in forms] == [
        ("password", None),
        ("refresh_token", "refresh-1-Qx"),
        ("refresh_token", "refresh-2-Qx"),
        ("password", None),
        ("password", None),  # for the older token: the refused one is not replayed
    ]


async def test_a_401_after_the_token_was_dropped_offers_no_refused_refresh_token() -> None:
    """The token refused, its refresh token and then the password refused (the token dropped): a
    request sent with that token before, refused now, sends nothing while the password is paused
    (its refresh token was refused already)."""
    now, forms = [0.0], []
    answers: list[Any] = [issued(1)]
    tokens = scripted_tokens(answers, forms, now)
    first = await tokens.current()
    answers += [AuthenticationError("Invalid refresh token"), AuthenticationError("HTTP 400: invalid_grant")]
    with pytest.raises(AuthenticationError, match="invalid_grant"):
        await tokens.renew(first)
    with pytest.raises(AuthenticationError, match="not sent again"):
        await tokens.renew(first)  # another request sent with `first`
    assert [form["grant_type"] for form in forms] == ["password", "refresh_token", "password"]


async def test_a_401_after_a_failed_proactive_refresh_renews_at_once() -> None:
    """The server refusing the token kept after a failed proactive renewal renews it at once (no
    wait for `RENEWAL_RETRY`), and its failure is raised: the token is no use any more."""
    now, forms = [0.0], []
    answers: list[Any] = [issued(1)]
    tokens, first = await due_for_refresh(answers, forms, now)
    answers += [ServerError("busy", status_code=503)]
    assert await tokens.current() is first
    # Refused, the token is needed now: the refresh's 503 is followed by the password grant.
    answers += [ServerError("still busy", status_code=503), ServerError("still busy", status_code=503)]
    with pytest.raises(ServerError, match="still busy"):
        await tokens.renew(first)
    answers += [issued(2)]
    assert (await tokens.renew(first)).access_token == "access-2-Qx"
    assert [form["grant_type"] for form in forms] == [
        "password",
        "refresh_token",
        "refresh_token",
        "password",
        "password",
    ]


async def test_a_401_that_joined_a_failing_proactive_refresh_renews_the_token_again() -> None:
    """A request refused (401) while a proactive renewal is in flight shares it; when that renewal
    fails and keeps the token, the token the server refused is renewed for that request at once,
    not handed back to be replayed in vain."""
    now, forms = [0.0], []
    answers: list[Any] = [issued(1)]
    entered, release = asyncio.Event(), asyncio.Event()

    async def fetch(url: str, form: GrantForm) -> Any:
        forms.append(form.reveal())
        if len(forms) == 2:  # the proactive refresh: held, then failed
            entered.set()
            await release.wait()
            raise ServerError("busy", status_code=503)
        return answers.pop(0)

    tokens = TokenManager(username="u", password=Secret("pw-Zr7u"), fetch=fetch, clock=lambda: now[0])
    tokens.use(V1, f"{BASE}/v1/Token")
    first = await tokens.current()
    now[0] = first.refresh_at + 1
    proactive = asyncio.create_task(tokens.current())
    await entered.wait()
    refused = asyncio.create_task(tokens.renew(first))
    answers.append(issued(2))
    release.set()
    assert await proactive is first
    assert (await refused).access_token == "access-2-Qx"
    assert [form["grant_type"] for form in forms] == ["password", "refresh_token", "refresh_token"]


async def test_a_renewal_that_brings_the_same_access_token_again_is_one_token_request() -> None:
    """A token endpoint that grants the refused access token again (a new grant: a new lifetime)
    is asked once per renewal: the replay is what shows it refused, not a second grant."""
    now, forms = [0.0], []
    same = {"access_token": "access-same-Qx", "refresh_token": "refresh-Qx", "expires_in": 3600}
    answers: list[Any] = [same, same]
    tokens = scripted_tokens(answers, forms, now)
    first = await tokens.current()
    now[0] += 10
    again = await tokens.renew(first)
    assert (again.access_token, again.expires_at) == ("access-same-Qx", 3610)
    assert [form["grant_type"] for form in forms] == ["password", "refresh_token"]


async def test_calls_go_on_while_the_token_endpoint_fails_a_proactive_refresh(fake: FakeVBO) -> None:
    """Through the client: a token endpoint answering 503 (after the retries) to the proactive
    refresh does not fail the calls while the token is valid."""
    serve_jobs(fake)
    now = [1000.0]
    async with client_for(fake) as vbo:
        vbo._tokens._clock = lambda: now[0]
        await vbo.jobs()
        now[0] += 3599 - 30  # due for its refresh, valid for 30 s more
        fake.token_script = [json_response(503, {"message": "busy"})] * 4
        for _ in range(3):
            (job,) = await vbo.jobs()
            assert job.id == "j0"
        assert len(fake.token_requests) == 5  # the password grant, one refresh with its retries
    tokens = {r.headers["authorization"] for r in fake.api_requests}
    assert tokens == {f"Bearer {fake.issued[0][0]}"}


async def test_the_redactor_is_built_once_per_token_and_covers_the_retired_ones() -> None:
    """`TokenManager.redactor` scrubs the password, the current token pair and the last
    `RETIRED_KEPT` pairs replaced. It is built once per token change: building one takes about a
    millisecond, and every refused item of a page asks for it (a page of 5,000 refused jobs was
    read in 2.3 s instead of 0.3 s when it was rebuilt on each call)."""
    now = [1000.0]
    issued: list[int] = []

    async def fetch(url: str, form: GrantForm) -> dict[str, Any]:
        issued.append(len(issued) + 1)
        n = issued[-1]
        return {"access_token": f"access-{n:02}", "refresh_token": f"refresh-{n:02}", "expires_in": 3600}

    tokens = TokenManager(username="u", password=Secret("pass-word"), fetch=fetch, clock=lambda: now[0])
    tokens.use(V7, "https://vbo.test/v7/Token")
    await tokens.current()
    redactor = tokens.redactor()
    assert tokens.redactor() is redactor
    for _ in range(RETIRED_KEPT + 1):
        now[0] += 3600
        await tokens.current()
    assert tokens.redactor() is not redactor
    assert tokens.redactor() is tokens.redactor()
    text = " ".join(f"access-{n:02} refresh-{n:02}" for n in issued) + " pass-word"
    kept = len(issued) - RETIRED_KEPT - 1  # the pairs too old to be scrubbed
    assert tokens.redactor().scrub(text).split() == [
        *(word for n in issued[:kept] for word in (f"access-{n:02}", f"refresh-{n:02}")),
        *["***"] * (2 * (RETIRED_KEPT + 1) + 1),
    ]
    tokens.forget()
    assert tokens.redactor().scrub(f"access-{issued[-1]:02}") == "***"


async def test_replaced_tokens_are_scrubbed_while_they_have_not_expired() -> None:
    """A server may echo the bearer token into an href of a model a backend keeps for hours;
    `Link.shown_href` scrubs with the client's redactor of the moment. After five renewals in a
    row (401s: revocations) the first token, unexpired, was shown whole in the model's repr, its
    pickle, `to_jsonable` and the error of following the link. Replaced tokens are now scrubbed
    while they have not expired (`RETIRED_LIVE` at most), the last `RETIRED_KEPT` whatever their
    age."""
    now = [1000.0]
    issued: list[str] = []

    async def fetch(url: str, form: GrantForm) -> dict[str, Any]:
        issued.append(f"access-{len(issued) + 1:02}")
        return {"access_token": issued[-1], "expires_in": 3600}

    tokens = TokenManager(username="u", password=Secret("pass-word"), fetch=fetch, clock=lambda: now[0])
    tokens.use(V7, "https://vbo.test/v7/Token")
    token = await tokens.current()
    for _ in range(RETIRED_KEPT + 2):  # refused one after the other within the hour
        token = await tokens.renew(token)
    assert tokens.redactor().scrub(" ".join(issued)) == " ".join(["***"] * len(issued))
    for _ in range(RETIRED_LIVE + 8):
        token = await tokens.renew(token)
    assert len(tokens._retired) == RETIRED_LIVE  # bounded
    now[0] += 3600  # every replaced token has expired: the last RETIRED_KEPT are kept all the same
    token = await tokens.renew(token)
    words = tokens.redactor().scrub(" ".join(issued)).split()
    assert words == [*issued[: -RETIRED_KEPT - 1], *["***"] * (RETIRED_KEPT + 1)]


async def test_token_manager_renews_once_for_concurrent_holders_of_a_stale_token() -> None:
    forms: list[dict[str, str]] = []

    async def fetch(url: str, form: GrantForm) -> dict[str, Any]:
        forms.append(form.reveal())
        await asyncio.sleep(0)
        return {"access_token": f"a{len(forms)}", "refresh_token": f"r{len(forms)}"}

    tokens = TokenManager(username="u", password=Secret("p"), fetch=fetch)
    tokens.use(V1, "https://vbo.test/v1/Token")
    stale = await tokens.current()
    renewed = await asyncio.gather(*(tokens.renew(stale) for _ in range(20)))
    assert {t.access_token for t in renewed} == {"a2"}
    assert len(forms) == 2


@pytest.mark.parametrize(
    "dates",
    [
        {".issued": "Mon, 03 Apr 2017 10:00:00 GMT", ".expires": "Mon, 03 Apr 2017 11:00:00 GMT"},
        {".issued": "2017-04-03T10:00:00.1234567Z", ".expires": "2017-04-03T11:00:00Z"},
        {".issued": "2017-04-03T10:00:00", ".expires": "2017-04-03T11:00:00+00:00"},
        {".issued": "yesterday", ".expires": "soon"},
        {".issued": "", ".expires": ""},
        {".issued": None, ".expires": 12},
        {".expires": "Mon, 03 Apr 2017 11:00:00 GMT"},
        {},
    ],
)
@pytest.mark.parametrize("expires_in", [3599, "3599", None, "abc"])
async def test_issued_and_expires_never_fail(fake: FakeVBO, dates: dict[str, Any], expires_in: Any) -> None:
    serve_jobs(fake)
    body = {"access_token": "tok", "refresh_token": "ref", "token_type": "bearer", **dates}
    if expires_in is not None:
        body["expires_in"] = expires_in
    fake.token_script = [json_response(200, body)]
    fake.valid_access.add("tok")
    async with client_for(fake) as vbo:
        (job,) = await vbo.jobs()
        (again,) = await vbo.jobs()
    assert job.id == again.id == "j0"
    assert fake.grants() == ["password"]


@pytest.mark.parametrize(
    ("data", "lifetime"),
    [
        ({"expires_in": 3599}, 3599),
        ({"expires_in": "120"}, 120),
        (
            {
                "expires_in": 600,
                ".issued": "Mon, 03 Apr 2017 10:00:00 GMT",
                ".expires": "Mon, 03 Apr 2017 11:00:00 GMT",
            },
            600,
        ),
        ({".issued": "Mon, 03 Apr 2017 10:00:00 GMT", ".expires": "Mon, 03 Apr 2017 10:30:00 GMT"}, 1800),
        ({".issued": "2017-04-03T10:00:00Z", ".expires": "2017-04-03T10:20:00Z"}, 1200),
        ({".issued": "Mon, 03 Apr 2017 10:00:00 GMT", ".expires": "2017-04-03T10:10:00Z"}, 600),
        ({".expires": "Mon, 03 Apr 2017 10:05:00 GMT"}, 300),  # against the wall clock below
        ({".issued": "garbage", ".expires": "garbage"}, 3600),
        ({"expires_in": 0}, 3600),
        ({"expires_in": True}, 3600),
        ({".issued": "Mon, 03 Apr 2017 11:00:00 GMT", ".expires": "Mon, 03 Apr 2017 10:00:00 GMT"}, 3600),
        ({}, 3600),
    ],
)
def test_token_lifetime(data: dict[str, Any], lifetime: float) -> None:
    wall = dt.datetime(2017, 4, 3, 10, 0, tzinfo=dt.UTC)
    token = parse_token_response({"access_token": "a", **data}, now=100.0, wall_now=wall)
    assert token.expires_at == pytest.approx(100.0 + lifetime)
    assert 100.0 < token.refresh_at < token.expires_at
    assert token.expires_at - token.refresh_at <= 60


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Thu, 30 Jan 2020 22:08:47 GMT", dt.datetime(2020, 1, 30, 22, 8, 47, tzinfo=dt.UTC)),
        ("2020-01-30T22:08:47Z", dt.datetime(2020, 1, 30, 22, 8, 47, tzinfo=dt.UTC)),
        ("2020-01-30T22:08:47", dt.datetime(2020, 1, 30, 22, 8, 47, tzinfo=dt.UTC)),
        ("2020-01-30T23:08:47+01:00", dt.datetime(2020, 1, 30, 22, 8, 47, tzinfo=dt.UTC)),
        ("garbage", None),
        ("", None),
    ],
)
def test_parse_http_date(text: str, expected: dt.datetime | None) -> None:
    assert parse_http_date(text) == expected


# --- throttled and looping token endpoints ----------------------------------------------------------


async def test_429_on_the_token_endpoint_is_waited_out(
    fake: FakeVBO, sleeps: list[float], retries: list[Any]
) -> None:
    serve_jobs(fake)
    fake.token_script = [
        json_response(429, {"message": "Quota Exceeded"}, headers={"Retry-After": "1"}),
    ]
    async with client_for(fake) as vbo:
        (job,) = await vbo.jobs()

    assert job.id == "j0"
    assert len(fake.token_requests) == 2
    assert [d.wait_for for d in retries] == [1.0]
    assert 1.0 in sleeps
    assert len(fake.api_requests) == 1


async def test_a_token_wait_longer_than_the_requests_timeout_is_not_cut_short(
    fake: FakeVBO, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The token endpoint's ``Retry-After`` outlasting the request's own ``timeout`` (a per-minute
    throttle's 60 s against the default 30 s): the request waits for its token, and the token
    endpoint is not asked again before that wait is over. The request's attempt timing out used
    to cancel the wait and retry at once, straight back into the throttle."""
    from vbo_async._sending import Sender

    serve_jobs(fake)
    fake.token_script = [json_response(429, {"message": "Quota Exceeded"}, headers={"Retry-After": "60"})]
    waits: list[float] = []
    over = asyncio.Event()

    async def pause(self: Any, seconds: float, **_: Any) -> None:
        waits.append(seconds)
        await over.wait()

    monkeypatch.setattr(Sender, "_pause", pause)
    # The second grant and the listing are answered within the timeout (0.05 s timed them out
    # on a loaded machine: a third token request).
    async with client_for(fake, timeout=0.25) as vbo:
        listing = asyncio.create_task(vbo.jobs())
        await asyncio.sleep(1.0)  # four times the request's timeout: the wait is still under way
        assert len(fake.token_requests) == 1
        assert waits == [60.0]
        over.set()
        (job,) = await listing
    assert job.id == "j0"
    assert len(fake.token_requests) == 2


async def test_429_on_the_token_endpoint_is_not_bad_credentials(fake: FakeVBO, sleeps: list[float]) -> None:
    serve_jobs(fake)
    fake.token_script = [json_response(429, {"message": "Quota Exceeded"}, headers={"Retry-After": "2"})] * 10
    async with client_for(fake) as vbo:
        with pytest.raises(RateLimitedError) as info:
            await vbo.jobs()
    assert info.value.status_code == 429
    assert not isinstance(info.value, AuthenticationError)
    assert len(fake.token_requests) == 4  # RetryPolicy.attempts
    assert sleeps.count(2.0) == 3
    assert fake.api_requests == []


@pytest.mark.parametrize(
    ("status", "kind", "retry_after", "rest"),
    [
        (429, RateLimitedError, 3600, 3600),  # VB365's hourly quota
        (503, ServerError, 600, 600),  # maintenance
        # A year (by mistake or malice): rested for MAX_THROTTLE_REST at most, so that a
        # long-running exporter comes back once the server has.
        (429, RateLimitedError, 31_536_000, MAX_THROTTLE_REST),
        (503, ServerError, 31_536_000, MAX_THROTTLE_REST),
    ],
)
async def test_a_token_endpoint_asking_for_a_long_wait_is_not_asked_again_before_it(
    fake: FakeVBO,
    sleeps: list[float],
    status: int,
    kind: type[APIError],
    retry_after: int,
    rest: float,
) -> None:
    """A token endpoint answering 429 (or 503) with a ``Retry-After`` past the policy is given
    up at once and not asked again before that wait is over (an hour at most): each later call
    (a sweep's next tenant) raises the same error, saying how long is left, without a request;
    after it, it is asked again."""
    serve_jobs(fake)
    headers = {"Retry-After": str(retry_after)}
    fake.token_script = [json_response(status, {"message": "Busy"}, headers=headers)]
    now = [1000.0]
    async with client_for(fake) as vbo:
        vbo._tokens._clock = lambda: now[0]
        with pytest.raises(kind) as first:
            await vbo.jobs()
        assert first.value.retry_after == retry_after  # what the server said
        now[0] += rest - 100
        for _ in range(3):
            with pytest.raises(kind) as held:
                await vbo.jobs()
        assert held.value.status_code == status
        assert held.value.retry_after == 100
        assert "retry after 100 s" in str(held.value)
        assert len(fake.token_requests) == 1
        now[0] += 100
        (job,) = await vbo.jobs()
    assert job.id == "j0"
    assert len(fake.token_requests) == 2
    assert sleeps == []


async def test_a_refused_token_whose_renewal_was_throttled_is_not_sent_again(
    fake: FakeVBO, sleeps: list[float]
) -> None:
    """The server refuses the token (401) and the token endpoint throttles its refresh: while the
    throttle rests, calls raise it without any request (not one more with the refused token, each
    answered 401); after it, the refresh token is used."""
    serve_jobs(fake)
    now = [1000.0]
    async with client_for(fake) as vbo:
        vbo._tokens._clock = lambda: now[0]
        await vbo.jobs()
        fake.revoke()
        fake.token_script = [
            json_response(429, {"message": "Quota Exceeded"}, headers={"Retry-After": "600"})
        ]
        with pytest.raises(RateLimitedError):
            await vbo.jobs()
        sent = len(fake.requests)
        for _ in range(3):
            with pytest.raises(RateLimitedError, match="not asked again"):
                await vbo.jobs()
        assert len(fake.requests) == sent
        now[0] += 600
        (job,) = await vbo.jobs()
    assert job.id == "j0"
    assert fake.grants() == ["password", "refresh_token", "refresh_token"]


async def test_a_token_endpoint_s_retry_after_date_counts_from_its_answer_s_date(
    fake: FakeVBO, sleeps: list[float]
) -> None:
    """A token endpoint whose clock is an hour behind the client's asking for 10 minutes of quiet
    (RFC 9110: a ``Retry-After`` date counts from the answer's ``Date``): not asked again for 10
    minutes. Read on the client's clock the date was past: a minute's rest, and four grants into
    the throttle first."""
    serve_jobs(fake)
    server_now = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=1)
    headers = {
        "Date": email.utils.format_datetime(server_now, usegmt=True),
        "Retry-After": email.utils.format_datetime(server_now + dt.timedelta(minutes=10), usegmt=True),
    }
    fake.token_script = [json_response(429, {"message": "Quota Exceeded"}, headers=headers)] * 8
    now = [1000.0]
    async with client_for(fake) as vbo:
        vbo._tokens._clock = lambda: now[0]
        with pytest.raises(RateLimitedError) as first:
            await vbo.jobs()
        assert first.value.retry_after == 600
        assert len(fake.token_requests) == 1  # past max_retry_after: not retried
        now[0] += 500
        with pytest.raises(RateLimitedError, match="not asked again") as held:
            await vbo.jobs()
        assert held.value.retry_after == 100
        assert len(fake.token_requests) == 1
    assert sleeps == []


@pytest.mark.parametrize("retry_after", ["0", "-5", "Mon, 03 Apr 2017 10:00:00 GMT"])
async def test_a_token_endpoint_throttled_with_a_retry_after_of_now_rests_a_minute(
    fake: FakeVBO, sleeps: list[float], retry_after: str
) -> None:
    """429s whose ``Retry-After`` names no wait (0, negative, or a date already past: a server
    clock behind the client's), until the retries are spent, are repeated 429s as much as those
    naming none: the token endpoint rests `THROTTLE_REST` seconds. Each later call of a sweep
    sent another round of grants into the throttle."""
    serve_jobs(fake)
    fake.token_script = [
        json_response(429, {"message": "Quota Exceeded"}, headers={"Retry-After": retry_after})
    ] * 8
    now = [1000.0]
    async with client_for(fake) as vbo:
        vbo._tokens._clock = lambda: now[0]
        with pytest.raises(RateLimitedError):
            await vbo.jobs()
        assert len(fake.token_requests) == 4  # RetryPolicy.attempts
        now[0] += THROTTLE_REST - 1
        with pytest.raises(RateLimitedError, match="not asked again"):
            await vbo.jobs()
        assert len(fake.token_requests) == 4
        now[0] += 1
        fake.token_script.clear()
        (job,) = await vbo.jobs()
    assert job.id == "j0"
    assert len(fake.token_requests) == 5


async def test_a_token_endpoint_throttled_without_retry_after_rests_a_minute(
    fake: FakeVBO, sleeps: list[float]
) -> None:
    """429s that name no wait, until the retries are spent, are the per-minute bucket (VB365
    counts token requests per minute too; the reference's rule: >= 60 s after repeated 429s):
    the token endpoint is not asked again for `THROTTLE_REST` seconds. Each later call of a
    sweep sent another round of grants into the throttle."""
    serve_jobs(fake)
    fake.token_script = [json_response(429, {"message": "Quota Exceeded"})] * 8
    now = [1000.0]
    async with client_for(fake) as vbo:
        vbo._tokens._clock = lambda: now[0]
        with pytest.raises(RateLimitedError) as first:
            await vbo.jobs()
        assert first.value.retry_after is None
        assert len(fake.token_requests) == 4  # RetryPolicy.attempts
        now[0] += THROTTLE_REST - 1
        with pytest.raises(RateLimitedError) as held:
            await vbo.jobs()
        assert held.value.retry_after == 1
        assert "retry after 1 s" in str(held.value)
        assert len(fake.token_requests) == 4
        now[0] += 1
        fake.token_script.clear()
        (job,) = await vbo.jobs()
    assert job.id == "j0"
    assert len(fake.token_requests) == 5


async def test_a_401_loop_ends_in_authentication_error(fake: FakeVBO, vbo: VBOClient) -> None:
    serve_jobs(fake)
    fake.reject_all_tokens = True

    with pytest.raises(AuthenticationError) as info:
        await vbo.jobs()

    assert isinstance(info.value, VBOError)
    assert info.value.url == f"{BASE}/v1/Jobs"
    # Bounded: the first token, then MAX_RENEWALS renewals, each followed by one replay.
    assert fake.grants() == ["password"] + ["refresh_token"] * MAX_RENEWALS
    assert len(fake.api_requests) == 1 + MAX_RENEWALS
    assert len(fake.requests) == 2 * (1 + MAX_RENEWALS)


async def test_a_401_loop_stays_bounded_under_concurrency(fake: FakeVBO, vbo: VBOClient) -> None:
    serve_jobs(fake, 10)
    fake.reject_all_tokens = True
    results = await asyncio.gather(*(vbo.job(f"j{i}") for i in range(10)), return_exceptions=True)
    assert all(isinstance(r, AuthenticationError) for r in results)
    assert len(fake.api_requests) <= 10 * (1 + MAX_RENEWALS)
    assert len(fake.token_requests) <= 1 + 10 * MAX_RENEWALS


# --- secrets stay secret --------------------------------------------------------------------------


async def test_secrets_appear_in_no_log_repr_or_error(caplog: pytest.LogCaptureFixture) -> None:
    """A whole session over a real loopback socket (so httpx and httpcore log too) at DEBUG."""
    caplog.set_level(logging.DEBUG)
    for name in ("vbo_async", "httpx", "httpcore", "aiohttp"):
        caplog.set_level(logging.DEBUG, logger=name)
    fake = FakeVBO(deny_body=DENIED)
    serve_jobs(fake)
    fake.route("GET", "/v1/Jobs/gone", json_response(404, {"message": "Job was not found."}))
    fake.route("GET", "/v1/Jobs/busy", json_response(503, {"message": "busy"}), {"id": "busy"})
    errors: list[BaseException] = []
    reprs: list[str] = []

    async with serve(as_asgi(fake.handler)) as port:
        base = f"http://127.0.0.1:{port}"
        async with VBOClient(base, username=USERNAME, password=PASSWORD, retry=FAST, api_version="v1") as vbo:
            await vbo.jobs()  # password grant
            fake.revoke()
            await vbo.jobs()  # 401, refresh grant, replay
            await vbo.job("busy")  # a retry
            with pytest.raises(NotFoundError) as not_found:
                await vbo.job("gone")
            errors.append(not_found.value)
            fake.revoke()
            fake.refuse_refresh = True
            await vbo.jobs()  # 401, refresh refused, password grant
            fake.reject_all_tokens = True
            with pytest.raises(AuthenticationError) as loop:
                await vbo.jobs()
            errors.append(loop.value)
            reprs += [
                repr(vbo),
                str(vbo),
                repr(vbo._tokens),
                repr(vbo._tokens._token),
                repr(vbo._tokens.redactor()),
                repr(vbo._fetcher),
            ]
        reprs.append(repr(vbo))
        async with VBOClient(
            base, username=USERNAME, password=PASSWORD + "x", retry=FAST, api_version="v1"
        ) as wrong:
            with pytest.raises(AuthenticationError) as refused:
                await wrong.jobs()
            errors.append(refused.value)

    secrets = [PASSWORD, *(t for pair in fake.issued for t in pair)]
    # password, refresh, then in the 401 loop a password grant and MAX_RENEWALS refreshes
    assert len(fake.issued) == 3 + MAX_RENEWALS
    assert all(len(s) > 8 for s in secrets)
    texts = [record.getMessage() for record in caplog.records]
    texts.append(caplog.text)
    texts += reprs
    for error in errors:
        texts += [str(error), repr(error), repr(error.args), "".join(traceback.format_exception(error))]
    # every request was logged (the wire is aiohttp's, which logs nothing per request)
    assert any(record.name == "vbo_async" and " -> 200 " in record.getMessage() for record in caplog.records)
    assert any("/v1/Token" in text for text in texts)
    for secret in secrets:
        for text in texts:
            assert secret not in text
    for needle in ("S3cret", "Sw0rdfish", "Zq9xKp2", "Wm4vTt7"):
        assert needle not in caplog.text


def test_secret_and_token_reprs() -> None:
    secret = Secret(PASSWORD)
    assert PASSWORD not in repr(secret)
    assert PASSWORD not in str(secret)
    assert f"{secret}" != PASSWORD
    assert secret.reveal() == PASSWORD
    token = parse_token_response(
        {"access_token": "AQAAANCMnd8BFdERjHoAwE", "refresh_token": "4f2b6c0e9d7a4b1c"},
        now=0.0,
        wall_now=dt.datetime.now(dt.UTC),
    )
    assert "AQAAANCMnd8BFdERjHoAwE" not in repr(token)
    assert "4f2b6c0e9d7a4b1c" not in repr(token)


def test_a_token_pickles_without_its_tokens() -> None:
    """Tokens survive no pickle either (the access and the refresh token); the lifetimes do. A
    copy is the token itself (it is immutable), not a blanked one."""
    token = Token(
        access_token="AQAAANCMnd8-access", refresh_token="4f2b6c0e-refresh", expires_at=9.0, refresh_at=8.0
    )
    restored = pickle.loads(pickle.dumps(token))
    assert (restored.access_token, restored.refresh_token) == ("", None)
    assert (restored.expires_at, restored.refresh_at) == (9.0, 8.0)
    assert copy.copy(token) is token
    assert copy.deepcopy(token) is token
    data = pickle.dumps(token)
    assert b"AQAAANCMnd8" not in data
    assert b"4f2b6c0e" not in data


def test_a_grant_form_shows_and_pickles_no_field_but_its_type() -> None:
    """A grant's form (the password, a refresh token) shows in no repr and survives no pickle:
    error reporters and queues pickle what frames hold behind the caller's back."""
    form = GrantForm({"grant_type": "password", "username": "admin", "password": "hunter2-secret"})
    assert "hunter2" not in repr(form)
    data = pickle.dumps(form)
    assert b"hunter2" not in data
    assert b"admin" not in data
    restored = pickle.loads(data)
    assert restored.grant_type == "password"
    assert restored.reveal() == {"grant_type": "password"}


def answer_lost(fake: FakeVBO, grants: dict[str, int], error: type[httpx.TransportError]) -> Any:
    """``fake``'s handler, losing the answer to the first ``grants[grant_type]`` token requests of
    each grant type with ``error``: a ReadError after the server handled the request (and issued
    a token nobody sees), a ConnectError before it (nothing reached it)."""

    async def handler(request: httpx.Request) -> httpx.Response:
        grant = parse_qs(request.content.decode()).get("grant_type", [""])[0]
        lose = fake._is_token(request) and grants.get(grant, 0) > 0
        if lose:
            grants[grant] -= 1
            if error is httpx.ConnectError:
                raise error("connection refused", request=request)
        response = await fake.handler(request)
        if lose:
            raise error("connection reset by peer", request=request)
        return response

    return handler


async def test_a_password_grant_cut_off_after_reaching_the_server_is_sent_again_a_second_later(
    fake: FakeVBO, sleeps: list[float]
) -> None:
    """A password grant whose answer was lost on the way back (the connection reset) may have
    been carried out: it opened a session nobody can reach, and the token endpoint's throttle
    (about one a second, v6) counted it. Sending it again changes nothing else on the server,
    so it is, but not within that second (it would be answered 429): at least a second later,
    whatever the backoff says. The call then goes on."""
    fake.route("GET", "/v1/Jobs/j1", {"id": "j1", "name": "Mail"})
    policy = RetryPolicy(wait_initial=0.1, wait_max=5.0, wait_jitter=0.0)
    async with client_for(answer_lost(fake, {"password": 1}, httpx.ReadError), retry=policy) as vbo:
        job = await vbo.job("j1")
    assert job.id == "j1"
    assert fake.grants() == ["password", "password"]
    assert sleeps == [1.0]  # the backoff alone would have waited 0.1 s


async def test_a_grant_that_never_reached_the_server_is_retried_like_a_get(
    fake: FakeVBO, sleeps: list[float]
) -> None:
    """A grant whose connection could not be made was not sent: it is retried like a GET (its
    backoff, no throttle to wait out)."""
    fake.route("GET", "/v1/Jobs/j1", {"id": "j1", "name": "Mail"})
    policy = RetryPolicy(wait_initial=0.1, wait_max=5.0, wait_jitter=0.0)
    async with client_for(answer_lost(fake, {"password": 2}, httpx.ConnectError), retry=policy) as vbo:
        job = await vbo.job("j1")
    assert job.id == "j1"
    assert fake.grants() == ["password"]  # the two refused connections carried no grant
    assert len(fake.api_requests) == 1
    assert sleeps == [0.1, 0.2]


async def test_a_refresh_grant_cut_off_after_reaching_the_server_falls_back_to_the_password(
    fake: FakeVBO,
) -> None:
    """A refresh grant whose answer was lost may have used up its refresh token (the server
    rotates it): it is not sent again, which would be refused, but the password grant is made
    instead, and the call replayed with its token succeeds."""
    fake.route("GET", "/v1/Jobs/j1", {"id": "j1", "name": "Mail"})
    async with client_for(answer_lost(fake, {"refresh_token": 1}, httpx.ReadError)) as vbo:
        await vbo.job("j1")
        fake.revoke()  # the access token is refused: renewed with the refresh grant first
        job = await vbo.job("j1")
    assert job.id == "j1"
    assert fake.grants() == ["password", "refresh_token", "password"]
    assert len(fake.api_requests) == 3  # the 401 and its replay


async def test_a_refresh_grant_that_never_reached_the_server_does_not_send_the_password(
    fake: FakeVBO,
) -> None:
    """A refresh grant no connection could carry (after its retries) is raised as the
    `TransportError` it is: the password grant, to the same server, would not get through either."""
    fake.route("GET", "/v1/Jobs/j1", {"id": "j1", "name": "Mail"})
    async with client_for(answer_lost(fake, {"refresh_token": 99}, httpx.ConnectError)) as vbo:
        await vbo.job("j1")
        fake.revoke()
        with pytest.raises(TransportError, match="connection refused"):
            await vbo.job("j1")
    assert fake.grants() == ["password"]


@pytest.mark.parametrize(
    "answer",
    [ServerError("unknown refresh token", status_code=500), NotFoundError("no such grant", status_code=404)],
    ids=["500", "404"],
)
async def test_a_refresh_answered_otherwise_than_200_when_the_token_is_needed_falls_back_to_the_password(
    answer: VBOError,
) -> None:
    """A server answering a refresh token it no longer knows with a 500 or a 404 (the vendor
    documents no error status): the same refresh token was sent on every later call, the
    password never, and the client stayed down while the server was up. Once the token is
    needed (refused, or expired) the password grant follows, as real clients do; a proactive
    renewal still keeps the token that serves (`test_a_failed_proactive_refresh_keeps_...`)."""
    now, forms = [0.0], []
    answers: list[Any] = [issued(1)]
    tokens = scripted_tokens(answers, forms, now)
    first = await tokens.current()
    answers += [answer, issued(2)]
    renewed = await tokens.renew(first)  # the server refused the token: needed now
    assert renewed.access_token == "access-2-Qx"
    assert [form["grant_type"] for form in forms] == ["password", "refresh_token", "password"]
    now[0] = renewed.expires_at  # expired: needed now too
    answers += [answer, issued(3)]
    assert (await tokens.current()).access_token == "access-3-Qx"
    assert [form["grant_type"] for form in forms][3:] == ["refresh_token", "password"]


# --- token answers whose body cannot be read ------------------------------------------------------

LIMIT = 4096
"""The ``max_response_bytes`` of the clients of `RawTokens`."""
REFUSAL = b'{"error":"invalid_grant","error_description":"The user name or password is incorrect."}'


class RawTokens:
    """A raw v1 server whose token endpoint answers each grant with the next step of ``script``
    (a status, how its body fails: "cut short", the connection closed 50 bytes before its
    ``Content-Length``, or "too large", twice `LIMIT`; None: a fresh token), and whose API
    answers the tokens it issued (and not revoked) with no jobs, any other with a 401."""

    def __init__(self, script: list[tuple[int, str] | None]) -> None:
        self.script = script
        self.grants: list[str] = []
        self.valid: set[bytes] = set()
        self.issued = 0

    async def __call__(self, head: bytes, body: bytes, writer: asyncio.StreamWriter) -> None:
        if b"/token" not in head.split(b"\r\n", 1)[0].lower():
            bearer = next(
                (line for line in head.split(b"\r\n") if line.lower().startswith(b"authorization")), b""
            )
            known = any(token in bearer for token in self.valid)
            answer = (
                b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n[]"
                if known
                else b"HTTP/1.1 401 X\r\ncontent-length: 0\r\n\r\n"
            )
            writer.write(answer)
            await writer.drain()
            return
        self.grants.append(parse_qs(body.decode())["grant_type"][0])
        step = self.script.pop(0) if self.script else None
        if step is None:
            self.issued += 1
            token = b"tok-%d-0123456789" % self.issued
            self.valid.add(token)
            content = b'{"access_token": "%b", "refresh_token": "ref-%d-0123456789", "expires_in": 3600}' % (
                token,
                self.issued,
            )
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%b" % (len(content), content))
            await writer.drain()
            return
        status, kind = step
        content = REFUSAL if kind == "cut short" else b"<html>" + b"x" * (2 * LIMIT) + b"</html>"
        declared = len(content) + (50 if kind == "cut short" else 0)
        writer.write(
            b"HTTP/1.1 %d X\r\ncontent-type: application/json\r\nretry-after: 3600\r\n"
            b"content-length: %d\r\n\r\n%b" % (status, declared, content)
        )
        await writer.drain()
        if kind == "cut short":
            writer.close()


def raw_tokens_client(port: int) -> VBOClient:
    return VBOClient(
        f"http://127.0.0.1:{port}",
        username=USERNAME,
        password=PASSWORD,
        api_version="v1",
        max_response_bytes=LIMIT,
        retry=FAST,
    )


def unread_said(kind: str) -> str:
    """The start of what a token answer's body that could not be read says of it."""
    if kind == "too large":
        return f"its body could not be read: the response body exceeds max_response_bytes={LIMIT} (at least "
    return "its body could not be read: "


@pytest.mark.parametrize("kind", ["cut short", "too large"])
async def test_a_refused_password_whose_body_cannot_be_read_is_refused_once_and_paused(
    kind: str, sleeps: list[float]
) -> None:
    """A 400 to the password grant whose body was cut short was taken for an answer lost on the
    way back and the password sent again 3 times a call; one over ``max_response_bytes`` was a
    `ResponseTooLargeError`, the password sent again by every call: no `REFUSED_PAUSE` either
    way (accounts lock out). The status line says the password was refused, whatever follows."""
    server = RawTokens([(400, kind)])
    async with serve_raw(server) as port, raw_tokens_client(port) as vbo:
        with pytest.raises(AuthenticationError) as first:
            await vbo.jobs()
        with pytest.raises(AuthenticationError) as held:
            await vbo.jobs()
    assert server.grants == ["password"]
    said = first.value.message
    assert said.startswith(f"the server refused the password grant: bad request ({unread_said(kind)}")
    assert held.value.message.startswith(said)
    assert held.value.message.endswith(
        f"and is not sent again for {REFUSED_PAUSE:.0f} s: repeated refusals can lock the account out)"
    )
    assert sleeps == []


@pytest.mark.parametrize("kind", ["cut short", "too large"])
async def test_a_token_endpoint_s_429_whose_body_cannot_be_read_rests_it(
    kind: str, sleeps: list[float]
) -> None:
    """A 429 naming ``Retry-After: 3600`` whose body was cut short was taken for a lost answer
    (the grant sent 4 times a call), one over ``max_response_bytes`` for a `ResponseTooLargeError`
    (a grant a call): the hour's rest was lost. It is the `RateLimitedError` it says it is."""
    server = RawTokens([(429, kind)])
    async with serve_raw(server) as port, raw_tokens_client(port) as vbo:
        with pytest.raises(RateLimitedError) as first:
            await vbo.jobs()
        with pytest.raises(RateLimitedError) as held:
            await vbo.jobs()
    assert server.grants == ["password"]
    assert first.value.status_code == 429
    assert first.value.retry_after == 3600
    assert unread_said(kind) in first.value.message
    assert held.value.unsent
    assert "the token endpoint throttled this client" in held.value.message
    assert sleeps == []


async def test_a_token_answer_over_the_size_limit_is_unreadable_and_rested() -> None:
    """A 200 to the password grant over ``max_response_bytes`` (a proxy's login page) was a
    `ResponseTooLargeError`, the password sent again by every call; a smaller one that is no token
    is a `DecodeError` and rests the endpoint (`UNREADABLE_REST`). So is this one now."""
    server = RawTokens([(200, "too large")])
    async with serve_raw(server) as port, raw_tokens_client(port) as vbo:
        with pytest.raises(DecodeError) as first:
            await vbo.jobs()
        with pytest.raises(DecodeError) as held:
            await vbo.jobs()
    assert server.grants == ["password"]
    assert first.value.message.startswith(
        f"the token endpoint's answer (HTTP 200) to the password grant could not be read: the response "
        f"body exceeds max_response_bytes={LIMIT} (at least "
    )
    assert f"the token endpoint is not asked again for {UNREADABLE_REST:.0f} s" in held.value.message


async def test_a_password_grant_whose_token_is_cut_short_is_sent_again() -> None:
    """A 200 to the password grant cut short lost its token on the way back, as an answer lost
    whole: the password grant is sent again (a second later), not rested as unreadable."""
    server = RawTokens([(200, "cut short")])
    async with serve_raw(server) as port, raw_tokens_client(port) as vbo:
        assert await vbo.jobs() == []
    assert server.grants == ["password", "password"]


@pytest.mark.parametrize(("status", "kind"), [(400, "cut short"), (400, "too large"), (200, "too large")])
async def test_a_refresh_answer_whose_body_cannot_be_read_falls_back_to_the_password_grant(
    status: int, kind: str, sleeps: list[float]
) -> None:
    """A refused (400) refresh grant whose body was over ``max_response_bytes`` never fell back to
    the password: the same refused refresh token was sent by every call, the client down for
    good; one cut short was an answer lost (no resend, the password grant: so it stays). A 200
    over the limit is unreadable, as a small one that is no token: the password grant follows."""
    server = RawTokens([])
    async with serve_raw(server) as port, raw_tokens_client(port) as vbo:
        await vbo.jobs()
        server.valid.clear()  # the token is refused: renewed with its refresh token first
        server.script.append((status, kind))
        assert await vbo.jobs() == []
        assert await vbo.jobs() == []
    assert server.grants == ["password", "refresh_token", "password"]
