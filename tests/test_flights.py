"""`Flights`, the single-flight sharing under every navigation GET, on its own."""

from __future__ import annotations

import asyncio
import gc
import warnings
from typing import Any

import pytest

from vbo_async import ClientStateError
from vbo_async._flights import Flights

from .conftest import FakeVBO, client_for


class Boom(Exception):
    pass


def _unhandled(loop: asyncio.AbstractEventLoop) -> list[dict[str, Any]]:
    """Collects what the loop would report ("exception was never retrieved", ...)."""
    reported: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _, context: reported.append(context))
    return reported


async def test_waiters_at_the_same_time_share_one_run() -> None:
    flights = Flights("closed")
    runs = 0
    release = asyncio.Event()

    async def load() -> str:
        nonlocal runs
        runs += 1
        await release.wait()
        return "answer"

    waiters = [asyncio.create_task(flights.run("k", load)) for _ in range(3)]
    await asyncio.sleep(0)
    release.set()
    assert await asyncio.gather(*waiters) == ["answer"] * 3
    assert runs == 1
    assert await flights.run("k", load) == "answer"  # landed: the next caller runs it again
    assert runs == 2


async def test_a_failure_cancelled_waiters_never_read_is_not_reported() -> None:
    reported = _unhandled(asyncio.get_running_loop())
    flights = Flights("closed")
    release = asyncio.Event()

    async def load() -> None:
        await release.wait()
        raise Boom("no")

    first = asyncio.create_task(flights.run("k", load))
    second = asyncio.create_task(flights.run("k", load))
    await asyncio.sleep(0)
    release.set()
    await asyncio.sleep(0)  # the work fails and hands its failure to both waiters' futures
    first.cancel()  # cancelled before it resumes to read it
    with pytest.raises(asyncio.CancelledError):
        await first
    with pytest.raises(Boom):
        await second
    del first, second
    gc.collect()
    await asyncio.sleep(0)
    assert reported == []


async def test_the_last_waiter_cancelled_cancels_the_work_and_a_new_caller_starts_afresh() -> None:
    flights = Flights("closed")
    started: list[int] = []
    cancelled: list[int] = []

    async def load(number: int) -> int:
        started.append(number)
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.append(number)
            raise
        return number

    waiter = asyncio.create_task(flights.run("k", lambda: load(1)))
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter

    async def quick() -> int:
        return 2

    assert await flights.run("k", quick) == 2  # not the cancelled flight's outcome
    await asyncio.sleep(0)
    assert started == [1]
    assert cancelled == [1]
    assert [task for task in asyncio.all_tasks() if task is not asyncio.current_task()] == []


@pytest.mark.parametrize("started", [True, False], ids=["running", "not yet started"])
async def test_work_cancelled_by_closing_is_a_client_state_error_for_its_waiters(started: bool) -> None:
    """Closing ends the waiters of a flight whether its work is running or not yet started (an
    eager task factory starts it at once: then both variants close a running one), and leaves no
    work running and no coroutine never awaited."""
    flights = Flights("the client was closed")
    ran = ended = False

    async def load() -> None:
        nonlocal ran, ended
        ran = True
        try:
            await asyncio.sleep(3600)
        finally:
            ended = True

    waiters = [asyncio.create_task(flights.run("k", load)) for _ in range(2)]
    await asyncio.sleep(0)  # both waiting; the work's task is scheduled (or, eager, running)
    if started:
        await asyncio.sleep(0)
        assert ran
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        await flights.cancel_all()
        for waiter in waiters:
            with pytest.raises(ClientStateError, match="the client was closed"):
                await waiter
        gc.collect()
    assert ended is ran  # work that started was cancelled, not left running
    assert [str(warning.message) for warning in caught] == []  # no "coroutine ... never awaited"

    async def again() -> str:
        return "fresh"

    assert await flights.run("k", again) == "fresh"


def test_a_keyboard_interrupt_in_the_work_reaches_its_waiters_and_is_not_reported_as_unretrieved() -> None:
    loop = asyncio.new_event_loop()
    reported = _unhandled(loop)
    flights = Flights("closed")

    async def load() -> None:
        await asyncio.sleep(0)
        raise KeyboardInterrupt

    async def sweep() -> None:
        await asyncio.gather(flights.run("k", load), flights.run("k", load))

    try:
        with pytest.raises(KeyboardInterrupt):
            loop.run_until_complete(sweep())  # the loop hands it on, as asyncio.run does
        for task in asyncio.all_tasks(loop):
            task.cancel()
        loop.run_until_complete(asyncio.sleep(0))
        loop.run_until_complete(asyncio.sleep(0))
    finally:
        loop.close()
    gc.collect()
    assert reported == []  # not "Task exception was never retrieved" for the shared task


async def test_a_load_that_raises_before_any_work_leaves_no_flight_to_join() -> None:
    """``load`` raising at once (not an async function's coroutine) fails its caller, and the
    next caller for the key starts new work instead of waiting for a flight that never flies."""
    flights = Flights("closed")

    def broken() -> Any:
        raise Boom("no coroutine")

    with pytest.raises(Boom):
        await flights.run("k", broken)

    async def fine() -> str:
        return "flies"

    async with asyncio.timeout(5):  # a hang guard: joining a flight without a task never ends
        assert await flights.run("k", fine) == "flies"


# --- eager tasks (Python 3.12's asyncio.eager_task_factory) -----------------------------------------


@pytest.mark.usefixtures("eager_tasks")
async def test_work_that_ends_without_suspending_is_delivered_on_an_eager_loop() -> None:
    """An eager task runs the work to its end inside ``create_task``, before its waiter was
    listed: the answer went to nobody and the caller's future was cancelled, so every call whose
    work never waits (an in-memory transport, a failure before any I/O) raised a bare
    CancelledError or ClientStateError."""
    flights = Flights("closed")

    async def answer() -> str:
        return "answer"

    async def fail() -> str:
        raise Boom("no")

    assert await flights.run("k", answer) == "answer"
    with pytest.raises(Boom, match="no"):
        await flights.run("k", fail)
    assert await flights.run("k", answer) == "answer"  # nothing left behind


async def test_a_client_on_an_eager_loop_with_an_in_memory_transport(
    eager_tasks: None, fake: FakeVBO, seed: list[dict[str, Any]]
) -> None:
    """`httpx.MockTransport` (respx, ASGI) answers without suspending: on an eager loop every
    GET failed with ``ClientStateError: the client was closed while the request was in flight``."""
    fake.route("GET", "/v1/Jobs", seed)
    async with client_for(fake) as vbo:
        jobs = await vbo.jobs()
    assert [job.id for job in jobs] == [seed[0]["id"]]


@pytest.mark.parametrize("outcome", ["answer", "failure"])
async def test_work_started_to_finish_alone_outlives_its_last_waiter_and_is_joined(outcome: str) -> None:
    """``finish_alone`` (a token renewal sending a refresh token): the last waiter cancelled does
    not cancel the work; a caller arriving meanwhile joins it and gets its outcome, a failure no
    one waits for is not reported, and `Flights.cancel_all` still ends it."""
    reported = _unhandled(asyncio.get_running_loop())
    flights = Flights("closed")
    release = asyncio.Event()
    runs = 0

    async def load() -> str:
        nonlocal runs
        runs += 1
        await release.wait()
        if outcome == "failure":
            raise Boom("no")
        return "answer"

    first = asyncio.create_task(flights.run("k", load, finish_alone=True))
    await asyncio.sleep(0)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    joined = asyncio.create_task(flights.run("k", load))
    await asyncio.sleep(0)
    release.set()
    if outcome == "failure":
        with pytest.raises(Boom):
            await joined
    else:
        assert await joined == "answer"
    assert runs == 1
    release.clear()
    alone = asyncio.create_task(flights.run("k", load, finish_alone=True))
    await asyncio.sleep(0)
    alone.cancel()
    with pytest.raises(asyncio.CancelledError):
        await alone
    if outcome == "failure":
        release.set()  # fails with no one waiting: not reported
        for _ in range(10):
            await asyncio.sleep(0)
    await flights.cancel_all()  # ends what is still running, if anything
    assert runs == 2
    gc.collect()
    assert reported == []
