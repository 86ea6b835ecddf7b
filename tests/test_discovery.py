"""``api_version="auto"``: the version found through the token request, against simulators that
serve {v6, v7, v8}, {v6} and {v1}.

The first token grant that succeeds is both the version and the token, so a v8 server costs
nothing extra and each version ruled out (404) costs one request. Nothing else rules a version
out: a transport error, refused credentials or a throttled token endpoint leave the version
unknown for the next call to find. Concurrent first calls make one discovery.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from vbo_async import (
    APIError,
    AuthenticationError,
    PollTarget,
    RateLimitedError,
    RetryPolicy,
    TransportError,
    VBOClient,
    poll_jobs,
)
from vbo_async.simulator import Faults, Simulator, SimulatorConfig, create_app

from .conftest import assert_closing_ends_waiting_calls, second_caller_after_the_first_is_cancelled

BASE = "https://vbo.test:4443"
NO_WAIT = RetryPolicy(attempts=3, wait_initial=0, wait_max=0, wait_jitter=0)
NEWEST_FIRST = ("v8", "v7", "v6", "v1")


class FakeClock:
    """The simulator's clock (token throttle windows), moved by the client's retry waits."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make_simulator(versions: tuple[str, ...]) -> Simulator:
    return Simulator(SimulatorConfig(seed=5, organizations=3, api_versions=versions), clock=FakeClock())


def auto_client(transport: httpx.AsyncBaseTransport, **options: Any) -> VBOClient:
    options.setdefault("password", "admin")
    options.setdefault("retry", NO_WAIT)
    return VBOClient(BASE, username="admin", transport=transport, **options)


def asgi(simulator: Simulator) -> httpx.ASGITransport:
    return httpx.ASGITransport(app=create_app(simulator=simulator))


def token_posts(simulator: Simulator) -> dict[str, int]:
    """Token requests per version path, whether the version is served or not."""
    return {
        path.split("/")[1]: count
        for (method, path), count in simulator.stats.by_endpoint.items()
        if method == "POST" and path.endswith("/token")
    }


@pytest.mark.parametrize(
    ("served", "chosen"),
    [(("v6", "v7", "v8"), "v8"), (("v6",), "v6"), (("v1",), "v1"), (("v1", "v7"), "v7")],
)
async def test_the_newest_served_version_is_chosen_one_request_per_version_ruled_out(
    served: tuple[str, ...], chosen: str
) -> None:
    simulator = make_simulator(served)
    async with auto_client(asgi(simulator)) as vbo:
        assert vbo.api_version is None
        assert vbo.api_root is None
        assert "not known yet" in repr(vbo)
        orgs = await vbo.organizations()
        assert vbo.api_version == chosen
        assert vbo.api_root == f"{BASE}/{chosen}"
        assert f"{BASE}/{chosen}" in repr(vbo)
        assert [org.id for org in orgs] == simulator.organization_ids()
        tried = NEWEST_FIRST[: NEWEST_FIRST.index(chosen) + 1]
        assert vbo.token_requests == len(tried)
        assert vbo.requests_sent == len(tried) + 1  # the probes (one per version) and the list
    assert token_posts(simulator) == dict.fromkeys(tried, 1)
    # Only the chosen version's token endpoint granted anything; the others answered 404.
    assert [(entry.version, entry.grant_type, entry.status) for entry in simulator.stats.token_log] == [
        (chosen, "password", 200)
    ]
    assert simulator.stats.requests == len(tried) + 1 + (chosen in ("v7", "v8"))  # + the logout


async def test_on_a_v8_server_auto_costs_what_a_pinned_client_costs() -> None:
    counts = []
    for mode in ("v8", "auto"):
        simulator = make_simulator(("v6", "v7", "v8"))
        vbo = auto_client(asgi(simulator), api_version=mode)
        await vbo.organizations()
        counts.append((vbo.requests_sent, vbo.token_requests, simulator.stats.requests, vbo.api_version))
        await vbo.aclose()
    assert counts[0] == counts[1] == (2, 1, 2, "v8")


async def test_a_v1_server_costs_three_404s_then_the_grant() -> None:
    simulator = make_simulator(("v1",))
    seen: list[tuple[str, int]] = []
    inner = asgi(simulator)

    class Recording(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            response = await inner.handle_async_request(request)
            seen.append((f"{request.method} {request.url.path}", response.status_code))
            return response

    async with auto_client(Recording()) as vbo:
        await vbo.jobs()
    assert seen == [
        ("POST /v8/Token", 404),
        ("POST /v7/Token", 404),
        ("POST /v6/Token", 404),
        ("POST /v1/Token", 200),
        ("GET /v1/Jobs", 200),
    ]


async def test_a_server_serving_none_of_the_versions() -> None:
    seen: list[str] = []

    def nothing(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url.path}")
        return httpx.Response(
            404, json={"message": "No HTTP resource was found that matches the request URI."}
        )

    async with auto_client(httpx.MockTransport(nothing)) as vbo:
        with pytest.raises(APIError) as caught:
            await vbo.organizations()
        assert vbo.api_version is None
        assert seen == [f"POST /{version}/Token" for version in NEWEST_FIRST]
        with pytest.raises(APIError):  # nothing was kept: the next call asks again
            await vbo.jobs()
        assert len(seen) == 8
    error = caught.value
    assert error.status_code == 404
    assert "v8, v7, v6, v1" in str(error)
    assert not any(path.startswith("GET") for path in seen)


async def test_a_pinned_version_the_server_does_not_serve_is_no_not_found() -> None:
    """``api_version="v8"`` against a server serving v6 and v7 (a targets url ending in /v8): its
    token endpoint answers 404. That was a `NotFoundError`, which reads as an unknown id: a
    backend answered "no such tenant" (404) for an outage of its own, and a sweep filed every
    tenant as not found, so that code pruning unknown tenants dropped them all."""
    simulator = make_simulator(("v6", "v7"))
    async with auto_client(asgi(simulator), api_version="v8") as vbo:
        with pytest.raises(APIError) as caught:
            await vbo.organization_jobs("any")
        targets = [PollTarget(client=vbo, organization_id=org, name=org) for org in ("a", "b")]
        errors = [result.error async for result in poll_jobs(targets)]
    assert type(caught.value) is APIError
    assert caught.value.status_code == 404
    assert str(caught.value) == (
        "HTTP 404: no token endpoint here: the server does not serve this API version at this base "
        "URL (POST https://vbo.test:4443/v8/Token)"
    )
    assert [type(error) for error in errors] == [APIError, APIError]
    # The call's grant, and the sweep's: one per tenant at most (its two tenants may share one).
    assert set(token_posts(simulator)) == {"v8"}
    assert 2 <= token_posts(simulator)["v8"] <= 3


class RefusingFirst(httpx.AsyncBaseTransport):
    """Refuses the first ``failures`` connections, then hands requests to ``inner``."""

    def __init__(self, inner: httpx.AsyncBaseTransport, failures: int) -> None:
        self.inner = inner
        self.failures = failures
        self.seen: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(f"{request.method} {request.url.path}")
        if self.failures > 0:
            self.failures -= 1
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_a_discovery_failed_on_a_transport_error_is_retried_on_the_next_call() -> None:
    simulator = make_simulator(("v6", "v7", "v8"))
    transport = RefusingFirst(asgi(simulator), failures=NO_WAIT.attempts)
    async with auto_client(transport) as vbo:
        with pytest.raises(TransportError, match="connect"):
            await vbo.organizations()
        # A refused connection says nothing about the version: v8 was not ruled out.
        assert transport.seen == ["POST /v8/Token"] * NO_WAIT.attempts
        assert vbo.api_version is None
        assert vbo.api_root is None
        orgs = await vbo.organizations()
        assert vbo.api_version == "v8"
    assert len(orgs) == 3
    assert transport.seen[NO_WAIT.attempts :] == [
        "POST /v8/Token",
        "GET /v8/Organizations",
        "POST /v8/token/logout",
    ]
    assert token_posts(simulator) == {"v8": 1}


async def test_a_transport_error_within_the_retries_does_not_fail_discovery() -> None:
    simulator = make_simulator(("v6",))
    transport = RefusingFirst(asgi(simulator), failures=NO_WAIT.attempts - 1)
    async with auto_client(transport) as vbo:
        await vbo.organizations()
        assert vbo.api_version == "v6"
    assert transport.seen == [
        *["POST /v8/Token"] * NO_WAIT.attempts,
        "POST /v7/Token",
        "POST /v6/Token",
        "GET /v6/Organizations",
    ]


@pytest.mark.parametrize("served", [("v6", "v7", "v8"), ("v1",)])
async def test_refused_credentials_keep_no_version(served: tuple[str, ...]) -> None:
    simulator = make_simulator(served)
    async with auto_client(asgi(simulator), password="wrong") as vbo:
        for _ in range(2):
            with pytest.raises(AuthenticationError, match="password"):
                await vbo.organizations()
            assert vbo.api_version is None
            assert vbo.api_root is None
            # the second call is within the pause after a refused password: nothing is sent
            assert vbo.token_requests == (1 if "v8" in served else 4)
    grants = [(entry.version, entry.status) for entry in simulator.stats.token_log]
    chosen = "v8" if "v8" in served else "v1"
    assert grants == [(chosen, 400)]  # refused, never taken for "not served"
    assert not any(method == "GET" for method, _ in simulator.stats.by_endpoint)


class Slow(httpx.AsyncBaseTransport):
    """Hands requests to ``inner`` after a real pause, so concurrent callers interleave (an
    in-process ASGI exchange alone may never yield to the event loop)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.002)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.mark.parametrize(("served", "chosen"), [(("v6", "v7", "v8"), "v8"), (("v1",), "v1")])
async def test_concurrent_first_calls_make_one_discovery(served: tuple[str, ...], chosen: str) -> None:
    simulator = make_simulator(served)
    org_ids = simulator.organization_ids()
    async with auto_client(Slow(asgi(simulator)), max_concurrency=4) as vbo:
        calls = [vbo.organization(org_ids[i % len(org_ids)]) for i in range(10)]
        calls += [vbo.organization_jobs(org_ids[i % len(org_ids)]) for i in range(5)]
        calls += [vbo.organizations() for _ in range(3)]
        calls += [vbo.jobs(), vbo.proxies()]
        assert len(calls) == 20
        results = await asyncio.gather(*calls)
        assert vbo.api_version == chosen
    tried = NEWEST_FIRST[: NEWEST_FIRST.index(chosen) + 1]
    assert token_posts(simulator) == dict.fromkeys(tried, 1)
    assert len(simulator.stats.token_log) == 1
    assert [org.id for org in results[:3]] == org_ids
    assert simulator.stats.unauthorized == 0


@pytest.mark.parametrize("served", [("v6", "v7", "v8"), ("v1",)])
async def test_concurrent_first_calls_share_one_refused_discovery(served: tuple[str, ...]) -> None:
    """A burst of refused logins can lock a directory account out: the callers waiting for the
    discovery share its failure, as they share a pinned client's refused grant."""
    simulator = make_simulator(served)
    async with auto_client(Slow(asgi(simulator)), password="wrong") as vbo:
        results = await asyncio.gather(*(vbo.organizations() for _ in range(10)), return_exceptions=True)
        assert all(isinstance(result, AuthenticationError) for result in results), results
        assert vbo.api_version is None
    assert [entry.status for entry in simulator.stats.token_log] == [400]


async def test_a_caller_cancelled_during_discovery_leaves_it_to_the_others() -> None:
    """A request handler's deadline ending during the first token request does not restart the
    discovery for the callers still waiting for it."""
    simulator = make_simulator(("v6", "v7", "v8"))
    entered, release = asyncio.Event(), asyncio.Event()
    sent: list[str] = []

    class Held(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if request.url.path.endswith("/Token"):
                sent.append(request.url.path)
                entered.set()
                await release.wait()
            return await asgi(simulator).handle_async_request(request)

    async with auto_client(Held()) as vbo:
        organizations = await second_caller_after_the_first_is_cancelled(
            vbo.organizations, vbo.organizations, entered, release
        )
    assert [org.id for org in organizations] == simulator.organization_ids()
    assert sent == ["/v8/Token"]  # the first caller's token request, not one of each
    assert token_posts(simulator) == {"v8": 1}


@pytest.mark.parametrize(
    ("served", "chosen", "flag"), [(("v6", "v7", "v8"), "v8", "true"), (("v6",), "v6", None)]
)
async def test_later_grants_go_to_the_discovered_version(
    served: tuple[str, ...], chosen: str, flag: str | None
) -> None:
    simulator = make_simulator(served)
    async with auto_client(asgi(simulator)) as vbo:
        await vbo.organizations()
        simulator.revoke_tokens()
        await vbo.jobs()  # 401: refresh at the version found, with its form
    log = [
        (e.version, e.grant_type, e.disable_antiforgery_token, e.status) for e in simulator.stats.token_log
    ]
    assert log == [(chosen, "password", flag, 200), (chosen, "refresh_token", flag, 200)]


@pytest.fixture
def clock_moved_by_sleeps(monkeypatch: pytest.MonkeyPatch) -> tuple[FakeClock, list[float]]:
    """A simulator clock that the client's retry waits move forward; the waits take no time."""
    clock = FakeClock()
    delays: list[float] = []
    real_sleep = asyncio.sleep

    async def sleep(delay: float, result: Any = None) -> Any:
        delays.append(delay)
        clock.now += delay
        return await real_sleep(0, result)

    monkeypatch.setattr(asyncio, "sleep", sleep)
    return clock, delays


async def test_the_token_throttle_is_waited_out_by_many_clients(
    clock_moved_by_sleeps: tuple[FakeClock, list[float]],
) -> None:
    clock, delays = clock_moved_by_sleeps
    # The second's limit alone: with the minute's too the sixth grant would be refused for most
    # of a minute (the next test).
    config = SimulatorConfig(
        seed=5, organizations=2, token_quota=((1, 1),), faults=Faults(token_throttle=True)
    )
    simulator = Simulator(config, clock=clock)
    app = create_app(simulator=simulator)
    patient = RetryPolicy(attempts=12, wait_initial=0, wait_max=0, wait_jitter=0, max_retry_after=5)
    clients = [auto_client(httpx.ASGITransport(app=app), retry=patient) for _ in range(6)]
    try:
        answers = await asyncio.gather(*(vbo.organizations() for vbo in clients))
        assert all(vbo.api_version == "v8" for vbo in clients)  # a 429 never rules a version out
        assert all(len(orgs) == 2 for orgs in answers)
    finally:
        for vbo in clients:
            await vbo.aclose()
    throttled = [e for e in simulator.stats.token_log if e.status == 429]
    granted = [e for e in simulator.stats.token_log if e.status == 200]
    assert len(granted) == 6
    assert throttled
    assert simulator.stats.faults["token_throttle"] == len(throttled)
    assert {e.version for e in simulator.stats.token_log} == {"v8"}
    assert 1.0 in delays  # Retry-After: 1 was honoured
    assert token_posts(simulator)["v8"] == len(throttled) + 6


async def test_the_token_throttles_minute_is_not_waited_out_past_max_retry_after(
    clock_moved_by_sleeps: tuple[FakeClock, list[float]],
) -> None:
    """With the v6 server's limits (5 a minute besides 1 a second), the sixth client of the same
    user is refused for the rest of the minute: longer than its ``max_retry_after``, so its call
    raises the 429 at once instead of sleeping, and the version is still not ruled out."""
    clock, delays = clock_moved_by_sleeps
    config = SimulatorConfig(seed=5, organizations=2, faults=Faults(token_throttle=True))
    simulator = Simulator(config, clock=clock)
    app = create_app(simulator=simulator)
    patient = RetryPolicy(attempts=12, wait_initial=0, wait_max=0, wait_jitter=0, max_retry_after=5)
    clients = [auto_client(httpx.ASGITransport(app=app), retry=patient) for _ in range(6)]
    try:
        answers = await asyncio.gather(*(vbo.organizations() for vbo in clients), return_exceptions=True)
    finally:
        for vbo in clients:
            await vbo.aclose()
    refused = [answer for answer in answers if isinstance(answer, BaseException)]
    assert [len(orgs) for orgs in answers if isinstance(orgs, list)] == [2] * 5
    assert len(refused) == 1
    assert isinstance(refused[0], RateLimitedError)
    # The rest of the minute opened by the first grant (at 100 s): nothing was slept since.
    assert refused[0].retry_after == 60 - (clock.now - 100.0) > 5
    # A 429 never rules a version out: the refused client's is still to be found.
    assert [vbo.api_version for vbo in clients] == [
        None if isinstance(answer, BaseException) else "v8" for answer in answers
    ]
    granted = [e for e in simulator.stats.token_log if e.status == 200]
    assert len(granted) == 5
    assert set(delays) <= {0.0, 1.0}  # the seconds' windows were waited out, the minute's was not
    assert {e.version for e in simulator.stats.token_log} == {"v8"}


async def test_closing_during_discovery_ends_its_callers_and_leaves_no_task() -> None:
    entered = asyncio.Event()

    class Hung(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            entered.set()
            await asyncio.Event().wait()
            raise AssertionError("never answered")  # pragma: no cover

    vbo = auto_client(Hung())
    await assert_closing_ends_waiting_calls(vbo, [vbo.organizations] * 3, entered)
