"""Concurrency: bounded requests in flight, shared identical GETs, cancellation, closing, event loops."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import attrs
import httpx
import pytest

from vbo_async import ClientStateError, DecodeError, Job, NotFoundError, Organization, RetryPolicy, VBOClient
from vbo_async.simulator import Simulator, SimulatorConfig, create_app

from .conftest import (
    BASE,
    PASSWORD,
    USERNAME,
    FakeVBO,
    as_asgi,
    client_for,
    json_response,
    serve,
    settled,
)

ORG_ID = "b2d9414d-c417-4a94-be3b-b38a3c2e8a7b"


class InFlight:
    """Counts API requests being answered at once (measured inside the handler)."""

    def __init__(self) -> None:
        self.now = 0
        self.peak = 0
        self.total = 0

    async def answer(self, request: httpx.Request) -> httpx.Response:
        self.now += 1
        self.total += 1
        self.peak = max(self.peak, self.now)
        try:
            await asyncio.sleep(0.01)
        finally:
            self.now -= 1
        if request.method == "POST":
            return httpx.Response(200)
        return json_response(200, {"id": request.url.path.rsplit("/", 1)[-1]})


async def test_max_concurrency_bounds_requests_in_flight(fake: FakeVBO) -> None:
    counter = InFlight()
    for i in range(40):
        fake.route("GET", f"/v1/Jobs/j{i}", counter.answer)
    for i in range(10):
        fake.route("POST", f"/v1/Jobs/j{i}/Action", counter.answer)

    async with client_for(fake, max_concurrency=4) as vbo:
        calls: list[Any] = [vbo.job(f"j{i}") for i in range(40)]
        calls += [vbo.start_job(f"j{i}") for i in range(10)]
        results = await asyncio.gather(*calls)

    assert [job.id for job in results[:40]] == [f"j{i}" for i in range(40)]
    assert counter.total == 50
    assert counter.peak <= 4
    assert counter.peak == 4  # the bound is reached, so the measurement can see a breach


async def test_max_concurrency_over_real_sockets() -> None:
    counter = InFlight()
    fake = FakeVBO()
    for i in range(24):
        fake.route("GET", f"/v1/Jobs/j{i}", counter.answer)
    async with (
        serve(as_asgi(fake.handler)) as port,
        VBOClient(
            f"http://127.0.0.1:{port}",
            username=USERNAME,
            password=PASSWORD,
            max_concurrency=3,
            api_version="v1",
        ) as vbo,
    ):
        jobs = await asyncio.gather(*(vbo.job(f"j{i}") for i in range(24)))
    assert [job.id for job in jobs] == [f"j{i}" for i in range(24)]
    assert counter.peak <= 3
    assert counter.peak == 3


async def test_many_first_calls_share_one_token_request(fake: FakeVBO, vbo: VBOClient) -> None:
    counter = InFlight()
    for i in range(30):
        fake.route("GET", f"/v1/Jobs/j{i}", counter.answer)
    await asyncio.gather(*(vbo.job(f"j{i}") for i in range(30)))
    assert len(fake.token_requests) == 1
    assert counter.total == 30


# --- single flight --------------------------------------------------------------------------------


async def test_thirty_follows_of_one_href_make_one_get(
    fake: FakeVBO, vbo: VBOClient, seed: list[dict[str, Any]]
) -> None:
    counter = InFlight()
    fake.route("GET", "/v1/Jobs", seed)
    fake.route("GET", f"/v1/Organizations/{ORG_ID}", counter.answer)
    (job,) = await vbo.jobs()

    orgs = await asyncio.gather(*(job.links.organization for _ in range(30)))

    assert counter.total == 1
    assert all(isinstance(org, Organization) and org.id == ORG_ID for org in orgs)
    # Shared only while in flight: a later follow asks again.
    await job.links.organization
    assert counter.total == 2


async def test_identical_entry_point_calls_are_shared(fake: FakeVBO, vbo: VBOClient) -> None:
    counter = InFlight()
    fake.route("GET", "/v1/Jobs/j1", counter.answer)
    jobs = await asyncio.gather(*(vbo.job("j1") for _ in range(30)))
    assert counter.total == 1
    assert {job.id for job in jobs} == {"j1"}


class _CountedJobs(httpx.AsyncBaseTransport):
    """A v8 simulator that counts its job listings, each answered a moment late, with the jobs
    of ``broken`` (ids) made undecodable and ``foreign`` jobs (another tenant's, as a v8
    ``next`` naming v7 would list them) added."""

    def __init__(self, simulator: Simulator) -> None:
        self.inner = httpx.ASGITransport(app=create_app(simulator=simulator))
        self.broken: set[str] = set()
        self.foreign: list[dict[str, Any]] = []
        self.listings = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.url.path.lower() != "/v8/jobs":
            return response
        self.listings += 1
        await asyncio.sleep(0.02)
        page = json.loads(await response.aread())
        page["results"] += self.foreign
        for job in page["results"]:
            if job["id"] in self.broken:
                job["lastRun"] = "not a time"
        return httpx.Response(200, json=page)


@pytest.mark.parametrize("broken", ["none", "its own", "another tenant's"])
async def test_concurrent_organization_jobs_on_v8_share_one_listing(broken: str) -> None:
    """v8 lists a tenant's jobs through ``/v8/Jobs?organizationId=``, whose undecodable items
    are filed by tenant: each caller collected its own, so 20 handlers asking for one tenant's
    jobs at once sent 20 listings (v7 and every other call shared one). They share one, and
    each caller gets what it got alone: the jobs, or its own tenant's `DecodeError` (another
    tenant's is left out)."""
    simulator = Simulator(SimulatorConfig(seed=3, organizations=2, api_versions=("v8",)))
    org, other = (o["id"] for o in simulator.organizations_wire(version="v8")["results"])
    every = simulator.jobs_wire(version="v8")["results"]
    own = sorted(j["id"] for j in every if j["organizationId"] == org)
    transport = _CountedJobs(simulator)
    async with VBOClient(
        BASE, username="admin", password="admin", api_version="v8", transport=transport
    ) as vbo:
        alone = await vbo.organization_jobs(org)
        if broken == "its own":
            transport.broken = {own[0]}
        elif broken == "another tenant's":
            transport.foreign = [j for j in every if j["organizationId"] == other]
            transport.broken = {j["id"] for j in transport.foreign}
        transport.listings = 0
        outcomes = await asyncio.gather(
            *(vbo.organization_jobs(org) for _ in range(20)), return_exceptions=True
        )
    assert sorted(job.id for job in alone) == own
    assert transport.listings == 1
    if broken == "its own":
        assert all(isinstance(outcome, DecodeError) for outcome in outcomes), outcomes
        assert all("lastRun" in str(outcome) for outcome in outcomes)
    else:
        assert all(outcome == alone for outcome in outcomes), outcomes


async def test_a_shared_failure_reaches_every_waiter(fake: FakeVBO, vbo: VBOClient) -> None:
    calls = 0

    async def missing(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        return json_response(404, {"message": "Job was not found."})

    fake.route("GET", "/v1/Jobs/gone", missing)
    results = await asyncio.gather(*(vbo.job("gone") for _ in range(10)), return_exceptions=True)
    assert calls == 1
    assert all(isinstance(r, NotFoundError) for r in results)


class Gate:
    """A handler that holds every request until released, and notices being cancelled."""

    def __init__(self, expected: int = 1) -> None:
        self.entered = asyncio.Event()
        """Set once ``expected`` requests are being held."""
        self.release = asyncio.Event()
        self.expected = expected
        self.calls = 0
        self.cancelled = 0

    async def answer(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        if self.calls >= self.expected:
            self.entered.set()
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        return json_response(200, {"id": request.url.path.rsplit("/", 1)[-1]})


async def test_cancelling_one_waiter_leaves_the_request_to_the_others(fake: FakeVBO, vbo: VBOClient) -> None:
    gate = Gate()
    fake.route("GET", "/v1/Jobs/j1", gate.answer)
    waiters = [asyncio.create_task(vbo.job("j1")) for _ in range(3)]
    await gate.entered.wait()

    waiters[1].cancel()  # one that joined the first caller's request
    with pytest.raises(asyncio.CancelledError):
        await waiters[1]
    gate.release.set()
    others = await asyncio.gather(waiters[0], waiters[2])

    assert [job.id for job in others] == ["j1", "j1"]
    assert gate.calls == 1
    assert gate.cancelled == 0


async def test_cancelling_the_caller_whose_request_the_others_joined_sends_it_once_more(
    fake: FakeVBO, vbo: VBOClient
) -> None:
    """The first caller sends the GET from its own task (no task per request): cancelled, its
    request goes with it, and the callers that joined it get the answer to the same GET sent
    again, once, for them all."""
    gate = Gate()
    fake.route("GET", "/v1/Jobs/j1", gate.answer)
    before = asyncio.all_tasks()
    waiters = [asyncio.create_task(vbo.job("j1")) for _ in range(3)]
    await gate.entered.wait()

    waiters[0].cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiters[0]
    gate.release.set()
    others = await asyncio.gather(*waiters[1:])

    assert [job.id for job in others] == ["j1", "j1"]
    assert gate.calls == 2
    assert gate.cancelled == 1
    await settled(before)


async def test_cancelling_every_waiter_cancels_the_request_and_leaves_no_task(
    fake: FakeVBO, vbo: VBOClient
) -> None:
    gate = Gate()
    fake.route("GET", "/v1/Jobs/j1", gate.answer)
    before = asyncio.all_tasks()

    waiters = [asyncio.create_task(vbo.job("j1")) for _ in range(3)]
    await gate.entered.wait()
    for waiter in waiters:
        waiter.cancel()
    results = await asyncio.gather(*waiters, return_exceptions=True)

    assert all(isinstance(r, asyncio.CancelledError) for r in results)
    for _ in range(100):  # let the shared task unwind (bounded, no timing)
        if asyncio.all_tasks() == before:
            break
        await asyncio.sleep(0)
    assert asyncio.all_tasks() == before
    assert gate.cancelled == 1


async def test_a_waiter_arriving_as_the_last_one_leaves_gets_its_own_answer(
    fake: FakeVBO, vbo: VBOClient
) -> None:
    gate = Gate()
    fake.route("GET", "/v1/Jobs/j1", gate.answer)
    first = asyncio.create_task(vbo.job("j1"))
    await gate.entered.wait()

    first.cancel()  # the only waiter leaves: the shared request is cancelled...
    # ...while a new caller asks for the same URL: started by the loop right after the first
    # caller's cancellation (queued before it), not where the test creates it, so that it comes
    # at the same point whether new tasks start at once (an eager task factory) or not.
    arrived: asyncio.Future[asyncio.Task[Job]] = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_soon(lambda: arrived.set_result(asyncio.create_task(vbo.job("j1"))))
    with pytest.raises(asyncio.CancelledError):
        await first
    second = await arrived
    gate.release.set()

    job = await second
    assert job.id == "j1"
    assert gate.calls == 2


async def test_a_cancelled_caller_of_a_job_action_does_not_leave_the_request_running(
    fake: FakeVBO, vbo: VBOClient
) -> None:
    gate = Gate()
    fake.route("POST", "/v1/Jobs/j1/Action", gate.answer)
    before = asyncio.all_tasks()
    task = asyncio.create_task(vbo.start_job("j1"))
    await gate.entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(100):
        if asyncio.all_tasks() == before:
            break
        await asyncio.sleep(0)
    assert asyncio.all_tasks() == before
    assert gate.cancelled == 1


@pytest.mark.parametrize("action", ["start", "stop", "enable", "disable"])
async def test_a_get_asked_for_after_a_job_action_is_not_one_sent_before_it(
    fake: FakeVBO, vbo: VBOClient, action: str
) -> None:
    """Identical GETs in flight are shared, but not across a job action: a handler that disables
    a job and then reads it must get an answer sent after the action, not join a read another
    handler began before it (which may show the job still enabled)."""
    before, after = asyncio.Event(), asyncio.Event()
    answers = iter([(before, {"id": "j1", "isEnabled": True}), (after, {"id": "j1", "isEnabled": False})])

    async def answer(request: httpx.Request) -> httpx.Response:
        release, data = next(answers)
        await release.wait()
        return json_response(200, data)

    fake.route("GET", "/v1/Jobs/j1", answer)
    fake.route("POST", "/v1/Jobs/j1/Action", httpx.Response(204))
    earlier = asyncio.create_task(vbo.job("j1"))  # another handler's read, held by the server
    for _ in range(1000):
        if fake.api_requests:
            break
        await asyncio.sleep(0)
    await getattr(vbo, f"{action}_job")("j1")
    later = asyncio.create_task(vbo.job("j1"))
    for _ in range(20):
        await asyncio.sleep(0)
    after.set()
    before.set()
    assert (await earlier).is_enabled is True
    assert (await later).is_enabled is False
    assert [r.method for r in fake.api_requests] == ["GET", "POST", "GET"]


async def test_closing_ends_a_read_no_longer_shared_after_a_job_action(fake: FakeVBO) -> None:
    """A GET left unshared by a job action is still the client's: closing cancels it and waits
    for it, like any shared GET in flight."""
    gate = Gate()
    fake.route("GET", "/v1/Jobs/j1", gate.answer)
    fake.route("POST", "/v1/Jobs/j1/Action", httpx.Response(204))
    vbo = client_for(fake)
    before = asyncio.all_tasks()
    reader = asyncio.create_task(vbo.job("j1"))
    await gate.entered.wait()
    await vbo.stop_job("j1")

    await asyncio.wait_for(vbo.aclose(), timeout=10)  # guards against a hang only

    with pytest.raises(ClientStateError):
        await asyncio.wait_for(reader, timeout=10)  # guards against a hang only
    assert gate.cancelled == 1
    await settled(before)


# --- closing --------------------------------------------------------------------------------------


async def test_aclose_is_prompt_with_requests_in_flight(fake: FakeVBO) -> None:
    gate = Gate(expected=5)
    for i in range(5):
        fake.route("GET", f"/v1/Jobs/j{i}", gate.answer)
    vbo = client_for(fake)
    before = asyncio.all_tasks()
    in_flight = [asyncio.create_task(vbo.job(f"j{i}")) for i in range(5)]
    await gate.entered.wait()

    await asyncio.wait_for(vbo.aclose(), timeout=10)  # a guard against hanging, not a measurement

    results = await asyncio.gather(*in_flight, return_exceptions=True)
    assert all(isinstance(r, ClientStateError) for r in results), results
    assert gate.cancelled == 5
    assert not gate.release.is_set()
    for _ in range(100):
        if asyncio.all_tasks() == before:
            break
        await asyncio.sleep(0)
    assert asyncio.all_tasks() == before
    assert "closed" in repr(vbo)


async def test_calls_after_aclose_raise_client_state_error(fake: FakeVBO, seed: list[dict[str, Any]]) -> None:
    fake.route("GET", "/v1/Jobs", seed)
    async with client_for(fake) as vbo:
        (job,) = await vbo.jobs()
    sent = len(fake.requests)

    with pytest.raises(ClientStateError):
        await vbo.jobs()
    with pytest.raises(ClientStateError):
        await vbo.job("j1")
    with pytest.raises(ClientStateError):
        await vbo.start_job("j1")
    with pytest.raises(ClientStateError):
        await job.links.organization
    with pytest.raises(ClientStateError):
        async with vbo:
            pass
    await vbo.aclose()  # idempotent
    assert len(fake.requests) == sent


async def test_use_from_another_event_loop(fake: FakeVBO, vbo: VBOClient) -> None:
    fake.route("GET", "/v1/Jobs", [])
    await vbo.jobs()
    outcome: list[BaseException | None] = []

    def other_loop() -> None:
        async def use() -> None:
            await vbo.jobs()

        try:
            asyncio.run(use())
        except BaseException as exc:
            outcome.append(exc)
        else:
            outcome.append(None)

    thread = threading.Thread(target=other_loop)
    thread.start()
    await asyncio.to_thread(thread.join)

    (error,) = outcome
    assert isinstance(error, ClientStateError)
    assert "event loop" in str(error)
    assert len(fake.api_requests) == 1
    assert await vbo.jobs() == []  # still fine on its own loop


def test_use_outside_an_event_loop_fails_cleanly() -> None:
    vbo = VBOClient(BASE, username=USERNAME, password=PASSWORD, api_version="v1")
    coro = vbo.job("j1")
    with pytest.raises(ClientStateError):
        coro.send(None)
    coro.close()


async def test_aclose_ends_a_job_action_in_flight_over_real_sockets() -> None:
    fake = FakeVBO()
    gate = Gate()
    fake.route("POST", "/v1/Jobs/j1/Action", gate.answer)
    async with serve(as_asgi(fake.handler)) as port:
        vbo = VBOClient(f"http://127.0.0.1:{port}", username=USERNAME, password=PASSWORD, api_version="v1")
        action = asyncio.create_task(vbo.start_job("j1"))
        await gate.entered.wait()
        try:
            await asyncio.wait_for(vbo.aclose(), timeout=10)  # guards against a hang only
            with pytest.raises(ClientStateError, match="closed while the request was in flight"):
                await asyncio.wait_for(action, timeout=10)
        finally:
            gate.release.set()
    assert len(fake.api_requests) == 1


async def test_closing_tells_a_job_action_never_sent_from_one_in_flight() -> None:
    """Two job starts, one slot: closing the client ends the one on the wire as in flight (it may
    have started its job) and the one still waiting for the slot as never sent (it may be sent
    again); both errors name their request. Both read "in flight" before."""
    fake = FakeVBO()
    gate = Gate()
    fake.route("POST", "/v1/Jobs/j1/Action", gate.answer)
    async with serve(as_asgi(fake.handler)) as port:
        vbo = VBOClient(
            f"http://127.0.0.1:{port}",
            username=USERNAME,
            password=PASSWORD,
            api_version="v1",
            max_concurrency=1,
        )
        on_the_wire = asyncio.create_task(vbo.start_job("j1"))
        await gate.entered.wait()
        waiting = asyncio.create_task(vbo.start_job("j2"))
        await asyncio.sleep(0.05)  # it waits for the slot
        try:
            await asyncio.wait_for(vbo.aclose(), timeout=10)  # guards against a hang only
            sent, unsent = await asyncio.gather(on_the_wire, waiting, return_exceptions=True)
        finally:
            gate.release.set()
    assert isinstance(sent, ClientStateError)
    assert isinstance(unsent, ClientStateError)
    assert sent.message == "the client was closed while the request was in flight"
    assert unsent.message == "the client was closed before the request was sent: it was not sent"
    assert (sent.method, sent.url) == ("POST", f"http://127.0.0.1:{port}/v1/Jobs/j1/Action")
    assert (unsent.method, unsent.url) == ("POST", f"http://127.0.0.1:{port}/v1/Jobs/j2/Action")
    assert [request.url.path for request in fake.api_requests] == ["/v1/Jobs/j1/Action"]


async def test_a_request_waiting_to_retry_when_the_client_closes(
    fake: FakeVBO, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Closed during the backoff before a retry: the retry is not sent, and the caller learns why."""
    from vbo_async._sending import Sender

    backing_off = asyncio.Event()
    real_pause = Sender._pause

    async def pause(self: Sender, seconds: float, **options: Any) -> None:
        backing_off.set()  # the pause is registered before the test runs again (no await here)
        await real_pause(self, seconds, **options)

    monkeypatch.setattr(Sender, "_pause", pause)
    fake.route("GET", "/v1/Jobs/j1", httpx.Response(503))
    vbo = client_for(fake, retry=RetryPolicy(attempts=5, wait_initial=30, wait_max=30, wait_jitter=0))
    pending = asyncio.create_task(vbo.job("j1"))
    # The 503 is in and the backoff has begun: waited for, not slept for (10 ms, which a loaded
    # machine can spend before the answer is handled).
    await asyncio.wait_for(backing_off.wait(), timeout=10)  # guards against a hang only

    await asyncio.wait_for(vbo.aclose(), timeout=10)  # guards against a hang only

    with pytest.raises(ClientStateError):
        await asyncio.wait_for(pending, timeout=10)
    assert len(fake.api_requests) == 1


async def test_a_call_queued_for_a_slot_when_the_client_closes(fake: FakeVBO) -> None:
    gate = Gate()
    fake.route("GET", "/v1/Jobs/j1", gate.answer)
    fake.route("POST", "/v1/Jobs/j2/Action", httpx.Response(200))
    vbo = client_for(fake, max_concurrency=1)
    holder = asyncio.create_task(vbo.job("j1"))
    await gate.entered.wait()
    queued = asyncio.create_task(vbo.start_job("j2"))  # waits for the only slot
    await asyncio.sleep(0)

    await asyncio.wait_for(vbo.aclose(), timeout=10)  # guards against a hang only

    results = await asyncio.gather(holder, queued, return_exceptions=True)
    assert [type(r) for r in results] == [ClientStateError, ClientStateError]
    assert [r.method for r in fake.api_requests] == ["GET"]


class _ClosingTransport(httpx.MockTransport):
    """A mock transport that records being closed (the pool a real transport would hold)."""

    closed = 0

    async def aclose(self) -> None:
        self.closed += 1


async def test_an_aclose_cancelled_while_shared_requests_unwind_still_closes_the_pool(
    fake: FakeVBO,
) -> None:
    """A shutdown deadline that cancels ``aclose()`` while it waits for the shared requests it
    cancelled must not leave the connection pool open (a later ``aclose()`` cannot close it)."""
    unwinding = asyncio.Event()
    unwound = asyncio.Event()

    async def slow_to_unwind(request: httpx.Request) -> httpx.Response:
        try:
            await asyncio.Event().wait()
        finally:
            unwinding.set()
            await unwound.wait()
        return json_response(200, {})  # pragma: no cover - never reached

    fake.route("GET", "/v1/Jobs/j1", slow_to_unwind)
    transport = _ClosingTransport(fake.handler)
    vbo = VBOClient(BASE, username=USERNAME, password=PASSWORD, api_version="v1", transport=transport)
    shared = asyncio.create_task(vbo.job("j1"))
    for _ in range(1000):
        if fake.api_requests:
            break
        await asyncio.sleep(0)
    closing = asyncio.create_task(vbo.aclose())
    await unwinding.wait()  # aclose() is waiting for the shared request to stop
    closing.cancel()
    unwound.set()
    with pytest.raises(asyncio.CancelledError):
        await closing
    with pytest.raises(ClientStateError):
        await shared
    await vbo.aclose()
    assert transport.closed == 1


async def test_a_request_outside_any_shared_flight_waiting_to_retry_ends_when_the_client_closes(
    fake: FakeVBO,
) -> None:
    """Not only shared GETs: a job action whose token request waits an hour before its retry
    (or a batch sweep's listing) ends with `ClientStateError` as soon as the client closes."""
    fake.token_script = [httpx.Response(503)]
    fake.route("POST", "/v1/Jobs/j1/Action", httpx.Response(200))
    hour = RetryPolicy(attempts=2, wait_initial=3600, wait_max=3600, wait_jitter=0, timeout=None)
    vbo = client_for(fake, retry=hour)
    action = asyncio.create_task(vbo.start_job("j1"))
    for _ in range(1000):
        if fake.token_requests:
            break
        await asyncio.sleep(0)
    for _ in range(10):  # the 503 is in and the wait before the retry has begun
        await asyncio.sleep(0)

    await asyncio.wait_for(vbo.aclose(), timeout=10)  # guards against a hang only

    with pytest.raises(ClientStateError, match="closed"):
        await asyncio.wait_for(action, timeout=10)  # guards against a hang only
    assert len(fake.token_requests) == 1
    assert fake.api_requests == []


async def test_a_token_renewed_while_the_client_logs_out_sends_nothing() -> None:
    """``aclose()`` forgets the token and logs it out (v7+). A renewal answered meanwhile must not
    send the request waiting for it (here a job start) with a fresh token that nothing logs out:
    the request ends with `ClientStateError` like every other one in flight, and the fresh token
    is logged out after the old one."""
    simulator = Simulator(SimulatorConfig(seed=1, organizations=2, api_versions=("v8",)))
    inner = httpx.ASGITransport(app=create_app(simulator=simulator))
    held, release, answered = asyncio.Event(), asyncio.Event(), asyncio.Event()
    sent: list[tuple[str, str]] = []

    class LogoutAfterTheRenewal(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            sent.append((request.method, request.url.path))
            if request.url.path.endswith("/Token") and len(sent) > 1:  # the renewal
                held.set()
                await release.wait()
                response = await inner.handle_async_request(request)
                answered.set()
                return response
            if request.url.path.endswith("/logout"):  # answered once the renewal was
                release.set()
                await answered.wait()
                for _ in range(20):
                    await asyncio.sleep(0)
            return await inner.handle_async_request(request)

    vbo = VBOClient(BASE, username="admin", password="admin", transport=LogoutAfterTheRenewal())
    (job, *_) = await vbo.jobs()
    token = vbo._tokens._token
    assert token is not None
    vbo._tokens._token = attrs.evolve(token, refresh_at=0.0)
    action = asyncio.create_task(vbo.start_job(job))
    await held.wait()

    await asyncio.wait_for(vbo.aclose(), timeout=10)  # guards against a hang only

    with pytest.raises(ClientStateError, match="closed"):
        await asyncio.wait_for(action, timeout=10)
    assert [method for method, path in sent if not path.endswith(("/Token", "/logout"))] == ["GET"]
    assert simulator.stats.logouts == {"v8": 2}
    assert [path for _, path in sent].count("/v8/token/logout") == 2


async def test_concurrent_acloses_wait_for_the_one_closing() -> None:
    """A second ``aclose()`` while the first logs out (a shutdown handler and an ``async with``
    exit) waits for that close to complete instead of closing the pool under the logout: both
    return once the pool is closed, neither raises, and the token is logged out once."""
    simulator = Simulator(SimulatorConfig(seed=1, organizations=1, api_versions=("v8",)))
    inner = httpx.ASGITransport(app=create_app(simulator=simulator))
    in_logout, release = asyncio.Event(), asyncio.Event()
    events: list[str] = []

    class HeldLogout(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if request.url.path.endswith("/logout"):
                events.append("logout sent")
                in_logout.set()
                await release.wait()
                response = await inner.handle_async_request(request)
                events.append("logout answered")
                return response
            return await inner.handle_async_request(request)

        async def aclose(self) -> None:
            events.append("pool closed")

    vbo = VBOClient(BASE, username="admin", password="admin", transport=HeldLogout())
    await vbo.organizations()
    first = asyncio.create_task(vbo.aclose())
    await in_logout.wait()
    second = asyncio.create_task(vbo.aclose())
    for _ in range(20):
        await asyncio.sleep(0)
    assert not second.done()  # waiting for the first, which is logging out
    assert events == ["logout sent"]
    release.set()
    await asyncio.wait_for(asyncio.gather(first, second), timeout=10)  # guards against a hang only
    assert events == ["logout sent", "logout answered", "pool closed"]
    assert simulator.stats.logouts == {"v8": 1}
    await vbo.aclose()  # and later: at once
    assert events.count("pool closed") == 1


async def test_aclose_from_inside_a_shared_get_in_flight_ends_it_and_leaves_no_task(fake: FakeVBO) -> None:
    """A transport (a wrapper that gives up on a server, say) may close the client while the
    shared GET it is answering is in flight: that GET's task is the one closing, so closing
    must not wait for it (it would wait for itself) and must leave nothing behind."""
    holder: list[VBOClient] = []
    fake.route("GET", "/v1/Jobs", [])

    async def closing(request: httpx.Request) -> httpx.Response:
        await holder[0].aclose()
        return httpx.Response(200, json=[])

    fake.route("GET", "/v1/Proxies", closing)
    vbo = client_for(fake)
    holder.append(vbo)
    before = asyncio.all_tasks()
    with pytest.raises(ClientStateError):
        await asyncio.wait_for(vbo.proxies(), timeout=10)  # a hang guard only
    await settled(before)
    assert "closed" in repr(vbo)
    with pytest.raises(ClientStateError):
        await vbo.jobs()


@pytest.mark.parametrize("inside", ["/v8/token", "/v8/token/logout"])
async def test_aclose_from_inside_a_token_grant_or_its_logout_does_not_wait_for_itself(
    inside: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Closing from inside a request of the closing's own (the token grant a call is waiting for,
    or the logout the close sends) must not wait for that request to end: it waits for the very
    close. The logout's time limit would end that wait (here it never ends); the client closes
    at once instead, and every call in flight ends with `ClientStateError`."""
    monkeypatch.setattr("vbo_async._client.LOGOUT_TIMEOUT", 3600.0)
    simulator = Simulator(SimulatorConfig(seed=1, organizations=1, api_versions=("v8",)))
    inner = httpx.ASGITransport(app=create_app(simulator=simulator))
    holder: list[VBOClient] = []

    class ClosingInside(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            response = await inner.handle_async_request(request)
            if request.url.path.lower() == inside:
                await holder[0].aclose()
            return response

    vbo = VBOClient(BASE, username="admin", password="admin", api_version="v8", transport=ClosingInside())
    holder.append(vbo)
    before = asyncio.all_tasks()
    if inside.endswith("/logout"):
        await vbo.jobs()
        await asyncio.wait_for(vbo.aclose(), timeout=10)  # guards against a hang only
    else:
        with pytest.raises(ClientStateError):
            await asyncio.wait_for(vbo.jobs(), timeout=10)  # guards against a hang only
    await settled(before)
    assert "closed" in repr(vbo)


@pytest.mark.parametrize("api_version", ["v8", "auto"])  # auto: the grant is the probe of v8
@pytest.mark.parametrize("when", ["before the server answers", "after the server answered"])
@pytest.mark.parametrize("closer", ["another task", "the grant's transport"])
async def test_a_token_granted_while_the_client_closes_is_logged_out(
    when: str, closer: str, api_version: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A call waiting for its password grant when ``aclose()`` runs, from another task or from
    inside that grant (its transport): the token the grant brings once closing began is used by
    nothing, and lives on the server until it expires unless it is logged out. Every token the
    server issued is logged out, ``aclose()`` raises nothing and leaves no task behind."""
    monkeypatch.setattr("vbo_async._client.LOGOUT_TIMEOUT", 3600.0)
    simulator = Simulator(SimulatorConfig(seed=1, organizations=1, api_versions=("v8",)))
    inner = httpx.ASGITransport(app=create_app(simulator=simulator))
    holder: list[VBOClient] = []
    held, go_on = asyncio.Event(), asyncio.Event()

    class GrantInFlight(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            grant = request.url.path.lower() == "/v8/token"
            if grant and when == "before the server answers":
                await self.close_or_hold()
            response = await inner.handle_async_request(request)
            if grant and when == "after the server answered":
                await self.close_or_hold()
            return response

        async def close_or_hold(self) -> None:
            if closer == "the grant's transport":
                await holder[0].aclose()
            else:
                held.set()
                await go_on.wait()

    vbo = VBOClient(
        BASE, username="admin", password="admin", api_version=api_version, transport=GrantInFlight()
    )
    holder.append(vbo)
    before = asyncio.all_tasks()
    call = asyncio.create_task(vbo.jobs())
    if closer == "another task":
        await asyncio.wait_for(held.wait(), timeout=10)  # guards against a hang only
        close = asyncio.create_task(vbo.aclose())
        for _ in range(20):
            await asyncio.sleep(0)
        go_on.set()
        await asyncio.wait_for(close, timeout=10)  # guards against a hang only
    with pytest.raises(ClientStateError):
        await asyncio.wait_for(call, timeout=10)  # guards against a hang only
    await asyncio.wait_for(vbo.aclose(), timeout=10)  # guards against a hang only
    await settled(before)
    assert simulator.stats.token_requests["password"] == 1
    assert simulator.stats.logouts == {"v8": 1}
    assert "closed" in repr(vbo)


@pytest.mark.parametrize("when", ["before the server answers", "after the server answered"])
@pytest.mark.parametrize("closer", ["another task", "the grant's transport"])
async def test_closing_with_an_expired_token_while_its_renewal_is_in_flight_sends_its_refresh_token_once(
    when: str, closer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The access token has expired and a call's renewal is sending its refresh token when the
    client closes: the logout would redeem that same refresh token (docs/reliability.md, "Token
    grants": a refresh grant is never sent twice; the server rotates them, so one of the two is
    refused, and counted by its throttle). The close waits for the renewal instead (or, closed
    from inside it, leaves it to that renewal) and logs out the pair it brings: one refresh grant,
    no token left live on the server, nothing left running."""
    monkeypatch.setattr("vbo_async._client.LOGOUT_TIMEOUT", 3600.0)
    simulator = Simulator(SimulatorConfig(seed=1, organizations=1, api_versions=("v8",)))
    inner = httpx.ASGITransport(app=create_app(simulator=simulator))
    holder: list[VBOClient] = []
    held, go_on = asyncio.Event(), asyncio.Event()

    class RenewalInFlight(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            renewal = request.url.path.lower() == "/v8/token" and b"refresh_token" in request.content
            renewal = renewal and not held.is_set()  # the call's renewal, not the logout's redeem
            if renewal and when == "before the server answers":
                await self.close_or_hold()
            response = await inner.handle_async_request(request)
            if renewal and when == "after the server answered":
                await self.close_or_hold()
            return response

        async def close_or_hold(self) -> None:
            held.set()
            if closer == "the grant's transport":
                await holder[0].aclose()
            else:
                await go_on.wait()

    vbo = VBOClient(BASE, username="admin", password="admin", api_version="v8", transport=RenewalInFlight())
    holder.append(vbo)
    await vbo.jobs()
    now = [0.0]
    vbo._tokens._clock = lambda: now[0]
    now[0] = 10**9  # the access token has expired on the client's clock
    before = asyncio.all_tasks()
    call = asyncio.create_task(vbo.jobs())
    if closer == "another task":
        await asyncio.wait_for(held.wait(), timeout=10)  # guards against a hang only
        close = asyncio.create_task(vbo.aclose())
        for _ in range(20):
            await asyncio.sleep(0)
        go_on.set()
        await asyncio.wait_for(close, timeout=10)  # guards against a hang only
    with pytest.raises(ClientStateError):
        await asyncio.wait_for(call, timeout=10)  # guards against a hang only
    await asyncio.wait_for(vbo.aclose(), timeout=10)  # guards against a hang only
    await settled(before)
    assert simulator.stats.token_requests == {"password": 1, "refresh_token": 1}
    assert simulator.stats.logouts == {"v8": 1}
    assert not simulator.tokens._refresh, "a refresh token is still live on the server"


@pytest.mark.parametrize("transport", ["aiohttp (default)", "httpx"])
@pytest.mark.parametrize("hangs", ["the logout's redeem", "a renewal in flight"])
async def test_a_grant_unanswered_when_the_logout_time_is_over_is_cancelled_and_leaves_nothing_open(
    hangs: str, transport: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Closing with an expired access token redeems its refresh token to log out; here the
    token endpoint never answers, either that redeem or a call's renewal already in flight (which
    the close waits for). ``aclose()`` ends once the logout's time is over (shortened here;
    the assertions count, they do not time), the refresh token is sent once, the call waiting
    ends with `ClientStateError`, and no task or connection is left."""
    from .raw_http import serve_raw

    monkeypatch.setattr("vbo_async._client.LOGOUT_TIMEOUT", 0.2)
    seen: list[bytes] = []
    refreshing = asyncio.Event()

    async def answer(head: bytes, body: bytes, writer: asyncio.StreamWriter) -> None:
        seen.append(head.split(b" ", 2)[1] + b" " + body.partition(b"&")[0])
        if b"grant_type=refresh_token" in body:
            refreshing.set()
            await asyncio.Event().wait()  # never answered
        if b"grant_type=password" in body:
            data = b'{"access_token":"access-Kq7","refresh_token":"refresh-Wm4","expires_in":3600}'
        else:
            data = b'{"id":"j1","name":"job"}'
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
        writer.write(head % len(data) + data)
        await writer.drain()

    async with serve_raw(answer) as port:
        vbo = VBOClient(
            f"http://127.0.0.1:{port}",
            username="u",
            password="p",
            api_version="v8",
            retry=RetryPolicy(attempts=1),
            transport=httpx.AsyncHTTPTransport() if transport == "httpx" else None,
        )
        now = [1000.0]
        vbo._tokens._clock = lambda: now[0]
        await vbo.job("j1")
        now[0] += 10**6  # the access token has expired
        before = asyncio.all_tasks()
        call = None
        if hangs == "a renewal in flight":
            call = asyncio.create_task(vbo.job("j1"))
            await asyncio.wait_for(refreshing.wait(), timeout=10)  # guards against a hang only
        await asyncio.wait_for(vbo.aclose(), timeout=30)  # guards against a hang only
        if call is not None:
            with pytest.raises(ClientStateError):
                await asyncio.wait_for(call, timeout=10)  # guards against a hang only
        await settled(before)
        pool = vbo._sender._transport  # type: ignore[attr-defined]
        if isinstance(pool, httpx.AsyncHTTPTransport):
            assert not pool._pool.connections
        else:
            assert pool.connections == 0
    assert seen == [
        b"/v8/Token grant_type=password",
        b"/v8/Jobs/j1 ",
        b"/v8/Token grant_type=refresh_token",
    ]


async def test_a_close_cancelled_during_its_logout_does_not_wait_for_a_grant_in_flight(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``serve``'s second stop signal abandons the logouts by cancelling each ``aclose()``: the
    close must then end at once, closing the pool without its logout. It went on to wait for a
    renewal in flight (for the rest of the logout's time: a hang here, where that time is an
    hour), to log out the token it would bring, sending after it was abandoned. Now a cancelled
    close closes the pool at once: the renewal and the call waiting for it end, no task is left,
    and nothing more is sent."""
    monkeypatch.setattr("vbo_async._client.LOGOUT_TIMEOUT", 3600.0)
    simulator = Simulator(SimulatorConfig(seed=1, organizations=1, api_versions=("v8",)))
    inner = httpx.ASGITransport(app=create_app(simulator=simulator))
    renewing, logging_out = asyncio.Event(), asyncio.Event()
    sent: list[str] = []

    class Held(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            path = request.url.path.lower()
            sent.append(path)
            if path == "/v8/token" and b"refresh_token" in request.content:
                renewing.set()
                await asyncio.Event().wait()  # never answered
            if path == "/v8/token/logout":
                logging_out.set()
                await asyncio.Event().wait()  # never answered
            return await inner.handle_async_request(request)

    vbo = VBOClient(BASE, username="admin", password="admin", api_version="v8", transport=Held())
    now = [1000.0]
    vbo._tokens._clock = lambda: now[0]
    await vbo.jobs()
    token = vbo._tokens._token
    assert token is not None
    now[0] = token.refresh_at + 1  # due for renewal, not expired: the logout is sent with it
    before = asyncio.all_tasks()
    call = asyncio.create_task(vbo.jobs())
    await asyncio.wait_for(renewing.wait(), timeout=10)  # guards against a hang only
    close = asyncio.create_task(vbo.aclose())
    await asyncio.wait_for(logging_out.wait(), timeout=10)  # guards against a hang only
    close.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(close, timeout=10)  # guards against a hang only
    with pytest.raises(ClientStateError):
        await asyncio.wait_for(call, timeout=10)  # guards against a hang only
    await settled(before)
    assert "closed" in repr(vbo)
    assert sent[-2:] == ["/v8/token", "/v8/token/logout"]
    await vbo.aclose()  # closed: at once


async def test_a_close_made_inside_a_grant_that_then_hangs_still_ends_within_the_logout_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Closed from inside its token grant (by its transport), the client lets that grant finish
    the close as it ends. A grant that then never ends (no ``timeout``) held the close open for
    ever: every other ``aclose()`` waited for it, the pool stayed open. The grant is cancelled
    once the logout's time is over (shortened here), as one in flight when another task closes
    the client is; the close ends, the call waiting for the token ends with `ClientStateError`,
    and no task is left."""
    monkeypatch.setattr("vbo_async._client.LOGOUT_TIMEOUT", 0.2)
    simulator = Simulator(SimulatorConfig(seed=1, organizations=1, api_versions=("v8",)))
    inner = httpx.ASGITransport(app=create_app(simulator=simulator))
    holder: list[VBOClient] = []
    closed_inside = asyncio.Event()

    class ClosingThenHanging(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if request.url.path.lower() == "/v8/token":
                await holder[0].aclose()
                closed_inside.set()
                await asyncio.Event().wait()  # never answered
            return await inner.handle_async_request(request)

    vbo = VBOClient(
        BASE,
        username="admin",
        password="admin",
        api_version="v8",
        transport=ClosingThenHanging(),
        timeout=None,
    )
    holder.append(vbo)
    before = asyncio.all_tasks()
    call = asyncio.create_task(vbo.jobs())
    await asyncio.wait_for(closed_inside.wait(), timeout=10)  # guards against a hang only
    await asyncio.wait_for(vbo.aclose(), timeout=10)  # guards against a hang only
    with pytest.raises(ClientStateError):
        await asyncio.wait_for(call, timeout=10)  # guards against a hang only
    await settled(before)
    assert vbo._fetcher.closed


def _stuck_in_httpcore(transport: httpx.AsyncHTTPTransport) -> tuple[int, int]:
    """(pool requests no call is making, connections no request names that the pool can neither
    use nor free: not idle, available or closed) of httpx's own transport's pool, read when
    nothing is in flight."""
    pool = transport._pool
    waited_on = {id(request.connection) for request in pool._requests}
    stranded = sum(
        1
        for connection in pool.connections
        if id(connection) not in waited_on
        and not (connection.is_idle() or connection.is_available() or connection.is_closed())
    )
    return len(pool._requests), stranded


async def test_cancelled_calls_never_break_httpx_s_own_pool() -> None:
    """Over ``transport=httpx.AsyncHTTPTransport(...)`` (the README's way through a proxy),
    calls cancelled at any moment left httpcore's pool holding what no call used: a request
    whose answer's close was cut short (httpcore guards it against anyio's cancellation, not
    asyncio's), and a connection opened for a request cancelled before it was sent
    (encode/httpcore#1093). Once the pool's limit of them was reached every request, a job
    action included, waited for a connection until its timeout: the client was dead until
    rebuilt. Now every close runs to its end and such connections are closed. The pool holds
    fewer connections than the calls at once: requests queue in it, and a connection made for a
    queued request cancelled before it connected was stranded too."""
    simulator = Simulator(SimulatorConfig(seed=1, organizations=4, api_versions=("v8",)))
    slots = 3
    async with serve(create_app(simulator=simulator)) as port:
        transport = httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=slots - 1))
        vbo = VBOClient(
            f"http://127.0.0.1:{port}",
            username="admin",
            password="admin",
            api_version="v8",
            max_concurrency=slots,
            timeout=5.0,
            transport=transport,
            retry=RetryPolicy(attempts=1),
        )
        async with vbo:
            organizations = (await vbo.organizations())[:slots]
            before = asyncio.all_tasks()
            for _ in range(25):
                for turns in range(2, 16):  # the cancellation lands at every point of a call
                    calls = [asyncio.create_task(vbo.organization(o.id)) for o in organizations]
                    for _ in range(turns):
                        await asyncio.sleep(0)
                    for call in calls:
                        call.cancel()
                    await asyncio.gather(*calls, return_exceptions=True)
                    assert _stuck_in_httpcore(transport) == (0, 0)
            await settled(before)
            # The pool still serves every slot at once, and the job action goes out once.
            found = await asyncio.wait_for(
                asyncio.gather(*(vbo.organization(o.id) for o in organizations)), timeout=30
            )  # guards against a hang only
            assert [o.id for o in found] == [o.id for o in organizations]
            job_id = simulator.job_ids()[0]
            await asyncio.wait_for(vbo.start_job(job_id), timeout=30)  # guards against a hang only


async def test_job_sessions_cut_at_its_limit_leaves_no_task_behind() -> None:
    """``job_sessions(limit=2)`` stops reading a listing that goes on (a ``next`` link): the
    listing was left to the collector, whose close of it ran as a task of its own after the call
    had returned."""
    session = {"id": "s0", "jobId": "j1", "status": "Success", "creationTime": "2026-01-01T00:00:00Z"}
    page = {
        "results": [{**session, "id": f"s{i}"} for i in range(2)],
        "_links": {"next": {"href": "/v8/JobSessions?jobId=j1&offset=2&limit=2"}},
    }

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v8/Token":
            return httpx.Response(200, json={"access_token": "a", "token_type": "bearer", "expires_in": 3600})
        return httpx.Response(200, json=page if request.url.path == "/v8/JobSessions" else {"results": []})

    transport = httpx.MockTransport(answer)
    async with VBOClient(BASE, username="u", password="p", api_version="v8", transport=transport) as vbo:
        await vbo.organizations()  # the token: nothing of it is left to run either
        before = asyncio.all_tasks()
        sessions = await vbo.job_sessions("j1", limit=2)
        assert asyncio.all_tasks() == before
        await asyncio.sleep(0)
        assert asyncio.all_tasks() == before
    assert [s.id for s in sessions] == ["s0", "s1"]


async def test_a_close_that_hangs_over_httpx_s_own_transport_does_not_hold_a_timeout_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The close of an answer over httpx's own transport runs on when its caller is cancelled
    (httpcore frees its pool slot in it), but `CLOSE_GRACE` at most: a close that hangs (a
    transport of one's own, an HTTP/2 write into a full buffer) no longer holds the request's
    timeout, or the caller's own, up for as long as it hangs."""
    monkeypatch.setattr("vbo_async._sending.CLOSE_GRACE", 0.05)
    release = asyncio.Event()

    class HangingClose(httpx.AsyncByteStream):
        async def __aiter__(self) -> Any:
            yield b'{"results": []}'

        async def aclose(self) -> None:
            await release.wait()

    class Transport(httpx.AsyncHTTPTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if request.url.path.endswith("/Token"):
                return httpx.Response(
                    200, json={"access_token": "a", "token_type": "bearer", "expires_in": 3600}
                )
            return httpx.Response(200, stream=HangingClose())

    vbo = VBOClient(BASE, username="u", password="p", api_version="v8", transport=Transport())
    try:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):
                await asyncio.wait_for(vbo.organizations(), timeout=30)  # guards against a hang only
    finally:
        release.set()
        await vbo.aclose()
