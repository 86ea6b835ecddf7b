"""`Flights`, the single-flight sharing under every navigation GET, on its own: each test that
does not depend on who runs the work runs both ways, the first caller running it itself (``lead``,
the fetcher's) and every work in a task of its own (the token renewals' and discovery's)."""

from __future__ import annotations

import asyncio
import gc
import warnings
from collections.abc import Coroutine
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from vbo_async import ClientStateError
from vbo_async._flights import Flights

from .conftest import FakeVBO, client_for, settled


class Boom(Exception):
    pass


def _unhandled(loop: asyncio.AbstractEventLoop) -> list[dict[str, Any]]:
    """Collects what the loop would report ("exception was never retrieved", ...)."""
    reported: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _, context: reported.append(context))
    return reported


@pytest.fixture(params=[True, False], ids=["leader runs it", "a task runs it"])
def lead(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


async def test_waiters_at_the_same_time_share_one_run(lead: bool) -> None:
    flights = Flights("closed", lead=lead)
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


async def test_a_failure_cancelled_waiters_never_read_is_not_reported(lead: bool) -> None:
    reported = _unhandled(asyncio.get_running_loop())
    flights = Flights("closed", lead=lead)
    release = asyncio.Event()

    async def load() -> None:
        await release.wait()
        raise Boom("no")

    first = asyncio.create_task(flights.run("k", load))
    second = asyncio.create_task(flights.run("k", load))
    await asyncio.sleep(0)
    release.set()
    await asyncio.sleep(0)  # the work fails in its leader, which hands the failure to the follower
    second.cancel()  # cancelled before it resumes to read it
    with pytest.raises(asyncio.CancelledError):
        await second
    with pytest.raises(Boom):
        await first
    del first, second
    gc.collect()
    await asyncio.sleep(0)
    assert reported == []


async def test_the_last_waiter_cancelled_cancels_the_work_and_a_new_caller_starts_afresh(lead: bool) -> None:
    flights = Flights("closed", lead=lead)
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
async def test_work_cancelled_by_closing_is_a_client_state_error_for_its_waiters(
    started: bool, lead: bool
) -> None:
    """Closing ends the waiters of a flight whether its work is running or not yet started (an
    eager task factory starts it at once: then both variants close a running one), and leaves no
    work running and no coroutine never awaited."""
    flights = Flights("the client was closed", lead=lead)
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


def test_a_keyboard_interrupt_in_the_work_reaches_its_waiters_and_is_not_reported_as_unretrieved(
    lead: bool,
) -> None:
    loop = asyncio.new_event_loop()
    reported = _unhandled(loop)
    flights = Flights("closed", lead=lead)

    async def load() -> None:
        await asyncio.sleep(0)
        raise KeyboardInterrupt

    async def sweep() -> None:
        await asyncio.gather(flights.run("k", load), flights.run("k", load))

    try:
        with pytest.raises(KeyboardInterrupt) as raised:
            loop.run_until_complete(sweep())  # the loop hands it on, as asyncio.run does
        for task in asyncio.all_tasks(loop):
            task.cancel()
        again: list[BaseException] = []
        for _ in range(3):  # as asyncio.run's clean-up: a task left waiting for it may raise it too
            try:
                loop.run_until_complete(asyncio.sleep(0))
            except KeyboardInterrupt as exc:
                again.append(exc)
    finally:
        loop.close()
    gc.collect()
    assert all(exc is raised.value for exc in again)  # the same interrupt, nothing else
    assert reported == []  # not "Task exception was never retrieved" for any task


async def test_a_load_that_raises_before_any_work_leaves_no_flight_to_join(lead: bool) -> None:
    """``load`` raising at once (not an async function's coroutine) fails its caller, and the
    next caller for the key starts new work instead of waiting for a flight that never flies."""
    flights = Flights("closed", lead=lead)

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
async def test_work_that_ends_without_suspending_is_delivered_on_an_eager_loop(lead: bool) -> None:
    """An eager task runs the work to its end inside ``create_task``, before its waiter was
    listed: the answer went to nobody and the caller's future was cancelled, so every call whose
    work never waits (an in-memory transport, a failure before any I/O) raised a bare
    CancelledError or ClientStateError."""
    flights = Flights("closed", lead=lead)

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
async def test_work_started_to_finish_alone_outlives_its_last_waiter_and_is_joined(
    outcome: str, lead: bool
) -> None:
    """``finish_alone`` (a token renewal sending a refresh token): the last waiter cancelled does
    not cancel the work; a caller arriving meanwhile joins it and gets its outcome, a failure no
    one waits for is not reported, and `Flights.cancel_all` still ends it."""
    reported = _unhandled(asyncio.get_running_loop())
    flights = Flights("closed", lead=lead)
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


# --- the first caller runs the work itself (``lead``: the fetcher's navigation GETs) ----------------


async def test_a_lone_caller_runs_the_work_in_its_own_task_and_makes_none() -> None:
    """Issue 12: no task per request unless another waiter shares it."""
    flights = Flights("closed", lead=True)
    caller = asyncio.current_task()
    before = asyncio.all_tasks()
    seen: list[tuple[asyncio.Task[Any] | None, set[asyncio.Task[Any]]]] = []

    async def load() -> str:
        await asyncio.sleep(0)
        seen.append((asyncio.current_task(), asyncio.all_tasks()))
        return "answer"

    assert await flights.run("k", load) == "answer"
    assert seen == [(caller, before)]
    assert flights._flights == {}


async def test_a_follower_cancelled_leaves_the_leaders_work_alone() -> None:
    flights = Flights("closed", lead=True)
    release = asyncio.Event()
    runs = cancelled = 0

    async def load() -> str:
        nonlocal runs, cancelled
        runs += 1
        try:
            await release.wait()
        except asyncio.CancelledError:
            cancelled += 1
            raise
        return "answer"

    leader = asyncio.create_task(flights.run("k", load))
    followers = [asyncio.create_task(flights.run("k", load)) for _ in range(2)]
    await asyncio.sleep(0)
    followers[0].cancel()
    with pytest.raises(asyncio.CancelledError):
        await followers[0]
    release.set()
    assert await asyncio.gather(leader, followers[1]) == ["answer", "answer"]
    assert (runs, cancelled) == (1, 0)


async def test_the_leader_cancelled_hands_the_work_anew_to_a_task_for_its_followers() -> None:
    """The leader's work ran in the leader's task and was cancelled with it: the followers get
    their answer from the work started once more (one more run), in a task that then behaves as a
    shared one (the last follower cancelled cancels it; nothing is left running)."""
    flights = Flights("closed", lead=True)
    release = asyncio.Event()
    runs: list[asyncio.Task[Any] | None] = []
    cancelled = 0

    async def load() -> str:
        nonlocal cancelled
        runs.append(asyncio.current_task())
        try:
            await release.wait()
        except asyncio.CancelledError:
            cancelled += 1
            raise
        return f"answer {len(runs)}"

    before = asyncio.all_tasks()
    leader = asyncio.create_task(flights.run("k", load))
    followers = [asyncio.create_task(flights.run("k", load)) for _ in range(2)]
    await asyncio.sleep(0)
    leader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leader
    assert cancelled == 1
    late = asyncio.create_task(flights.run("k", load))  # joins the work handed on
    await asyncio.sleep(0)
    release.set()
    assert await asyncio.gather(*followers, late) == ["answer 2"] * 3
    assert runs[0] is leader
    assert runs[1] not in (leader, *followers, late)  # a task of its own
    assert len(runs) == 2
    release.clear()
    again = [asyncio.create_task(flights.run("k", load)) for _ in range(2)]
    await asyncio.sleep(0)
    again[0].cancel()  # the leader again: handed on...
    await asyncio.sleep(0)
    again[1].cancel()  # ...and its last waiter gone: cancelled
    await asyncio.gather(*again, return_exceptions=True)
    await settled(before)
    assert cancelled == 3


@pytest.mark.parametrize("followers", [0, 2])
async def test_closing_ends_a_leaders_work_with_client_state_error_and_takes_its_cancellation_back(
    followers: int,
) -> None:
    """`cancel_all` cancels a leader's task as `asyncio.timeout` does: the leader and its
    followers get `ClientStateError`, and the leader's task is not left cancelling (a timeout or
    task group around it still works)."""
    flights = Flights("the client was closed", lead=True)
    ended = False

    async def load() -> str:
        nonlocal ended
        try:
            await asyncio.sleep(3600)
        finally:
            ended = True
        return "never"

    async def call() -> tuple[str, int]:
        try:
            await flights.run("k", load)
        except ClientStateError as exc:
            task = asyncio.current_task()
            assert task is not None
            return str(exc), task.cancelling()
        return "answered", -1

    leader = asyncio.create_task(call())
    others = [asyncio.create_task(flights.run("k", load)) for _ in range(followers)]
    await asyncio.sleep(0)
    await flights.cancel_all()
    assert ended
    assert await leader == ("the client was closed", 0)
    for other in others:
        with pytest.raises(ClientStateError, match="the client was closed"):
            await other
    assert flights._flights == {}


async def test_a_leader_cancelled_from_outside_while_closing_stays_cancelled() -> None:
    flights = Flights("closed", lead=True)

    async def load() -> None:
        await asyncio.sleep(3600)

    leader = asyncio.create_task(flights.run("k", load))
    follower = asyncio.create_task(flights.run("k", load))
    await asyncio.sleep(0)
    leader.cancel()  # its caller's own cancellation, not yet delivered...
    await flights.cancel_all()  # ...when the client closes
    with pytest.raises(asyncio.CancelledError):
        await leader
    with pytest.raises(ClientStateError):
        await follower


async def test_closing_from_inside_the_leaders_own_work_does_not_wait_for_itself() -> None:
    flights = Flights("closed", lead=True)

    async def load() -> str:
        await asyncio.sleep(0)
        async with asyncio.timeout(5):  # a hang guard only (not wait_for: a task of its own on 3.11)
            await flights.cancel_all()
        return "still answered"

    assert await flights.run("k", load) == "still answered"


async def test_a_timeout_around_a_leader_is_its_own() -> None:
    """The caller's deadline ends the leader's work as any code of its own: TimeoutError."""
    flights = Flights("closed", lead=True)

    async def load() -> None:
        await asyncio.sleep(3600)

    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01):
            await flights.run("k", load)
    assert flights._flights == {}


async def test_a_load_that_raises_when_handed_on_fails_the_followers_not_the_leader() -> None:
    flights = Flights("closed", lead=True)
    loads = 0

    async def work() -> str:
        await asyncio.sleep(3600)
        return "never"

    def load() -> Any:
        nonlocal loads
        loads += 1
        if loads > 1:
            raise Boom("no second coroutine")
        return work()

    leader = asyncio.create_task(flights.run("k", load))
    follower = asyncio.create_task(flights.run("k", load))
    await asyncio.sleep(0)
    leader.cancel()
    with pytest.raises(asyncio.CancelledError):  # its own cancellation, not the follower's failure
        await leader
    with pytest.raises(Boom):
        await follower
    assert flights._flights == {}


_STEPS = st.lists(
    st.one_of(
        st.just(("join", 0)),
        st.tuples(st.just("cancel"), st.integers(0, 7)),
        st.just(("step", 0)),
        st.just(("release", 0)),
        st.just(("close", 0)),
    ),
    max_size=14,
)


@given(_STEPS, st.booleans())
@example([("join", 0), ("join", 0), ("step", 0), ("cancel", 0)], True)  # the leader: handed on
@example([("join", 0), ("join", 0), ("step", 0), ("close", 0), ("join", 0)], True)  # closed under it
@example([("join", 0), ("join", 0), ("step", 0), ("cancel", 0), ("close", 0)], True)  # both
@settings(deadline=None, max_examples=300)
def test_any_schedule_of_callers_cancellations_and_closing_keeps_the_promises(
    steps: list[tuple[str, int]], lead: bool
) -> None:
    """Whatever callers arrive, are cancelled, are answered or closed in whatever order: a caller
    not cancelled gets an answer of the work or `ClientStateError` (never a bare cancellation),
    one cancelled is cancelled (or had its answer), the work starts at most once per caller and
    never when every caller still waiting was cancelled, and nothing is left running or listed."""

    async def scenario() -> None:
        flights = Flights("closed", lead=lead)
        releases: list[asyncio.Event] = []
        starts = 0
        unwanted = 0  # works made while every caller not done had been cancelled

        def load() -> Coroutine[Any, Any, str]:
            nonlocal starts, unwanted
            starts += 1
            unwanted += not any(i not in cancelled and not c.done() for i, c in enumerate(callers))
            return answer(starts)

        async def answer(run: int) -> str:
            release = asyncio.Event()
            releases.append(release)
            await release.wait()
            return f"run {run}"

        before = asyncio.all_tasks()
        callers: list[asyncio.Task[str]] = []
        cancelled: set[int] = set()
        for step, number in steps:
            if step == "join":
                callers.append(asyncio.create_task(flights.run("k", load)))
            elif step == "cancel" and callers:
                index = number % len(callers)
                if not callers[index].done():
                    callers[index].cancel()
                    cancelled.add(index)
            elif step == "step":
                await asyncio.sleep(0)
            elif step == "release":
                for release in releases:
                    release.set()
                await asyncio.sleep(0)
            elif step == "close":
                await flights.cancel_all()
        for _ in range(50):  # answer whatever is still waiting, until everything has ended
            for release in releases:
                release.set()
            if all(caller.done() for caller in callers):
                break
            await asyncio.sleep(0)
        assert all(caller.done() for caller in callers)  # none left waiting for ever
        outcomes = await asyncio.gather(*callers, return_exceptions=True)
        for index, outcome in enumerate(outcomes):
            if index in cancelled:
                assert isinstance(outcome, asyncio.CancelledError | str | ClientStateError), outcome
            else:
                assert isinstance(outcome, str | ClientStateError), outcome
        assert starts <= len(callers)
        assert unwanted == 0  # a leader cancelled with only cancelled followers hands nothing on
        await settled(before)
        assert flights._flights == {}
        assert flights._detached == set()

    asyncio.run(scenario())
