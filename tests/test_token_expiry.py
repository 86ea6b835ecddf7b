"""Token lifetime end to end: a `VBOClient` against the simulator served by uvicorn on 127.0.0.1,
on every API version, across real expiries of its tokens.

The simulator and the client read one hand-driven clock (`Clocks`): the client's for its
proactive refresh, the server's for the tokens' expiry. ``Clocks.ahead`` moves the server's
clock alone, as a client whose monotonic clock stood still (a suspended VM or laptop: Linux's
``CLOCK_MONOTONIC`` does not count a suspend) meets tokens the server has let expire: a 401.
Nothing sleeps; every count is the simulator's own (`SimulatorStats`) or the wire's (`Wire`).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import attrs
import pytest

from vbo_async import AuthenticationError, HealthPolicy, Job, PollTarget, VBOClient, poll_jobs
from vbo_async._auth import MAX_RENEWALS
from vbo_async.simulator import Simulator, SimulatorConfig, create_app
from vbo_async.simulator._tokens import TokenStore

from .conftest import serve

VERSIONS = ["v1", "v6", "v7", "v8"]
LIFETIME = 600.0
"""The access tokens' ``expires_in``: the client refreshes 540 s after a grant (90 %)."""
EPOCH = dt.datetime(2025, 3, 10, 8, 0, tzinfo=dt.UTC)


@attrs.define
class Clocks:
    """The client's clock (`client`) and the server's, `ahead` seconds in front of it."""

    now: float = 1000.0
    ahead: float = 0.0

    def client(self) -> float:
        return self.now

    def server(self) -> float:
        return self.now + self.ahead

    def advance(self, seconds: float) -> None:
        self.now += seconds


@attrs.define
class Wire:
    """Every request the served app answered: (method, path and query, status), in order."""

    seen: list[tuple[str, str, int]] = attrs.Factory(list)
    after: Any = None
    """Called with each answer's (method, path, status) as it is recorded, if set."""

    def wrap(self, app: Any) -> Any:
        async def recorded(scope: dict[str, Any], receive: Any, send: Any) -> None:
            async def sending(message: dict[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    query = scope["query_string"].decode()
                    target = f"{scope['path']}?{query}" if query else scope["path"]
                    seen = (scope["method"], target, message["status"])
                    self.seen.append(seen)
                    if self.after is not None:
                        self.after(seen)
                await send(message)

            await app(scope, receive, sending)

        return recorded

    def api(self) -> list[tuple[str, str, int]]:
        """The API requests: neither grants nor logouts."""
        return [seen for seen in self.seen if "/token" not in seen[1].lower().partition("?")[0]]


@attrs.define
class Served:
    simulator: Simulator
    url: str
    wire: Wire

    def grants(self) -> dict[str, int]:
        return dict(self.simulator.stats.token_requests)

    def client(self, clocks: Clocks, version: str, **options: Any) -> VBOClient:
        vbo = VBOClient(self.url, username="admin", password="admin", api_version=version, **options)
        vbo._tokens._clock = clocks.client
        return vbo


@contextlib.asynccontextmanager
async def served(version: str, clocks: Clocks, **config: Any) -> AsyncIterator[Served]:
    options: dict[str, Any] = {"seed": 11, "organizations": 4, "token_lifetime": LIFETIME, **config}
    simulator = Simulator(
        SimulatorConfig(api_versions=(version,), epoch=EPOCH, **options), clock=clocks.server
    )
    wire = Wire()
    async with serve(wire.wrap(create_app(simulator=simulator))) as port:
        yield Served(simulator, f"http://127.0.0.1:{port}", wire)


@attrs.define
class ExpiringOnIssue(TokenStore):
    """A token store whose server clock jumps past each token's expiry as it issues it: every
    token is refused from its first use."""

    clocks: Clocks = attrs.field(kw_only=True)

    def issue(self, username: str) -> dict[str, object]:
        granted = super().issue(username)
        self.clocks.ahead += LIFETIME + 1
        return granted


def expire_on_issue(simulator: Simulator, clocks: Clocks) -> None:
    """From now on, every token `simulator` issues has expired before the client can use it."""
    held = simulator.tokens
    store = ExpiringOnIssue(held.clock, held.lifetime, held.wall, held.refresh_lifetime, clocks=clocks)
    store._access, store._refresh, store._pairs = held._access, held._refresh, held._pairs
    simulator.tokens = store


def refused_and_replayed_once(api: list[tuple[str, str, int]]) -> int:
    """How many of these requests were answered 401, each of them answered once more after it,
    with a 200 (the replay with the renewed token), and never refused again."""
    refused = [index for index, seen in enumerate(api) if seen[2] == 401]
    for index in refused:
        method, path, _ = api[index]
        assert [status for m, p, status in api[index + 1 :] if (m, p) == (method, path)] == [200]
    return len(refused)


def refused_count(server: Served) -> int:
    return server.simulator.stats.unauthorized


async def read_everything(vbo: VBOClient) -> int:
    """Every organization's jobs; how many jobs."""
    organizations = await vbo.organizations()
    assert organizations
    return sum([len(await vbo.organization_jobs(org)) for org in organizations])


@pytest.mark.parametrize("version", VERSIONS)
async def test_polling_across_many_expiries_refreshes_without_the_password(version: str) -> None:
    """Ten polls, each after the last token expired: one password grant, then refresh grants
    only (each before its request: no 401), sent with ``disable_antiforgery_token=true`` from v7
    on (the simulator refuses a refresh without it there)."""
    clocks = Clocks()
    async with served(version, clocks) as server, server.client(clocks, version) as vbo:
        jobs = await read_everything(vbo)
        for _ in range(10):
            clocks.advance(LIFETIME + 1)
            assert await read_everything(vbo) == jobs
            clocks.advance(LIFETIME * 0.5)  # within the new token's life: no grant
            assert await read_everything(vbo) == jobs
        stats = server.simulator.stats
        assert server.grants() == {"password": 1, "refresh_token": 10}
        assert stats.unauthorized == 0
        flags = {request.disable_antiforgery_token for request in stats.token_log}
        assert flags == ({"true"} if version in ("v7", "v8") else {None})
        assert all(request.status == 200 for request in stats.token_log)


@pytest.mark.parametrize("version", VERSIONS)
async def test_an_expired_refresh_token_falls_back_to_the_password_once(version: str) -> None:
    """Refresh tokens that live 5 minutes, access tokens 10: each renewal offers the refresh token
    once (refused, 400), then the password once; calls succeed throughout."""
    clocks = Clocks()
    async with served(version, clocks, refresh_token_lifetime=300) as server:
        async with server.client(clocks, version) as vbo:
            jobs = await read_everything(vbo)
            for _ in range(3):
                clocks.advance(LIFETIME + 1)
                assert await read_everything(vbo) == jobs
        log = [(request.grant_type, request.status) for request in server.simulator.stats.token_log]
        renewal = [("refresh_token", 400), ("password", 200)]
        assert log == [("password", 200), *renewal * 3]
        assert server.simulator.stats.unauthorized == 0


@pytest.mark.parametrize("version", VERSIONS)
async def test_concurrent_calls_at_expiry_share_one_grant(version: str) -> None:
    """A call per job and per organization at once, the token due for refresh (proactive), then
    past the server's expiry unknown to the client (each answered 401): one grant each time, and
    each refused request sent again once."""
    clocks = Clocks()
    async with served(version, clocks) as server, server.client(clocks, version) as vbo:
        organizations = await vbo.organizations()
        jobs = await vbo.jobs()
        calls = [*(lambda job=job: vbo.job(job.id) for job in jobs)]
        calls += [lambda org=org: vbo.organization(org.id) for org in organizations]
        assert len(calls) >= 12
        clocks.advance(LIFETIME + 1)
        await asyncio.gather(*(call() for call in calls))
        assert server.grants() == {"password": 1, "refresh_token": 1}
        assert server.simulator.stats.unauthorized == 0

        clocks.ahead += LIFETIME + 1  # the client's clock stood still: it sends the expired token
        before = len(server.wire.api())
        await asyncio.gather(*(call() for call in calls))
        assert server.grants() == {"password": 1, "refresh_token": 2}
        api = server.wire.api()[before:]
        refused = refused_and_replayed_once(api)
        assert refused == refused_count(server) >= 1
        assert len(api) == len(calls) + refused


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("batch", [False, True])
async def test_a_token_expiring_mid_sweep_is_renewed_once_and_the_sweep_completes(
    version: str, batch: bool
) -> None:
    """The server lets the token expire while a sweep of every tenant and their jobs' health runs
    (once its first request is answered; listings of 3 items a page): the requests refused (those
    in flight with the old token) are replayed once after one refresh, and every tenant is read,
    batched or one by one."""
    clocks = Clocks()
    async with served(version, clocks, page_size=3) as server, server.client(clocks, version) as vbo:
        organizations = await vbo.organizations()
        targets = [PollTarget(client=vbo, organization_id=org.id, organization=org) for org in organizations]
        expected = {org.id: len(await vbo.organization_jobs(org)) for org in organizations}
        before = len(server.wire.api())

        def expire(_: tuple[str, str, int]) -> None:
            clocks.ahead = LIFETIME + 1  # once the sweep's first request is answered

        server.wire.after = expire
        sweep = poll_jobs(
            targets,
            concurrency=1,
            batch=batch,
            health=HealthPolicy(),
            organization_counts={vbo: len(targets)},
        )
        results = [result async for result in sweep]
        assert [result.error for result in results] == [None] * len(targets)
        assert {result.target.organization_id: len(result.jobs) for result in results} == expected
        assert server.grants() == {"password": 1, "refresh_token": 1}
        assert 1 <= refused_and_replayed_once(server.wire.api()[before:]) == refused_count(server) <= 10


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_server_refusing_every_fresh_token_ends_in_an_error_not_a_loop(version: str) -> None:
    """Every token expired when it is first used (the server's clock jumps ahead on each grant):
    a call renews `MAX_RENEWALS` times and raises `AuthenticationError`, its request sent once
    per token; the next call starts over, as bounded."""
    clocks = Clocks()
    async with served(version, clocks) as server:
        expire_on_issue(server.simulator, clocks)
        async with server.client(clocks, version) as vbo:
            for _ in range(2):
                with pytest.raises(AuthenticationError):
                    await vbo.organizations()
        api = server.wire.api()
        per_call = 1 + MAX_RENEWALS
        assert [status for _, _, status in api] == [401] * 2 * per_call
        assert {path.partition("?")[0] for _, path, _ in api} == {f"/{version}/Organizations"}
        # The first call: the password, then one refresh per renewal; the second starts with the
        # token the first ended with (not known to be refused before it is tried). Closing (v7+)
        # sees its logout refused too, and redeems the refresh token once more to log out.
        at_close = 1 if version in ("v7", "v8") else 0
        assert server.grants() == {"password": 1, "refresh_token": 2 * MAX_RENEWALS + at_close}


def start_path(version: str, job: Job) -> str:
    return f"/v1/Jobs/{job.id}/Action" if version == "v1" else f"/{version}/Jobs/{job.id}/start"


def stop_path(version: str, job: Job) -> str:
    return f"/v1/Jobs/{job.id}/Action" if version == "v1" else f"/{version}/Jobs/{job.id}/stop"


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_job_action_refused_with_401_is_sent_once_and_acts_when_sent_again_by_hand(
    version: str,
) -> None:
    """A 401 is the server refusing the request before acting on it (it authenticates first): a
    job action that meets one is not sent again by the library (it never sends one twice); the
    `AuthenticationError` says the job was not started (stopped), the token is renewed, and the
    action sent again by the caller acts, once."""
    clocks = Clocks()
    async with served(version, clocks, session_duration=10_000) as server:
        async with server.client(clocks, version) as vbo:
            org = (await vbo.organizations())[0]
            job = (await vbo.organization_jobs(org))[0]
            sent: dict[str, list[tuple[str, str, int]]] = {}
            for action, call in (("start", vbo.start_job), ("stop", vbo.stop_job)):
                clocks.ahead += LIFETIME + 1  # the server let the token expire
                before = len(server.wire.api())
                with pytest.raises(AuthenticationError, match=f"the job was not {action}"):
                    await call(job)
                refused = server.wire.api()[before:]
                assert not server.simulator.stats.job_actions.get((job.id, action))
                await call(job)
                sent[action] = server.wire.api()[before:]
                assert sent[action][: len(refused)] == refused
        assert server.simulator.stats.job_actions == {(job.id, "start"): 1, (job.id, "stop"): 1}
        for action, path in (("start", start_path(version, job)), ("stop", stop_path(version, job))):
            assert [(method, target) for method, target, _ in sent[action]] == [("POST", path)] * 2
            first, by_hand = (status for _, _, status in sent[action])
            assert first == 401
            assert 200 <= by_hand < 300
        assert server.grants() == {"password": 1, "refresh_token": 2}


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_job_start_never_accepted_is_not_acted_on(version: str) -> None:
    """A server that refuses every token: the start is sent once, refused before acting, raises
    `AuthenticationError`, and no job started."""
    clocks = Clocks()
    async with served(version, clocks) as server:
        async with server.client(clocks, version) as vbo:
            org = (await vbo.organizations())[0]
            job = (await vbo.organization_jobs(org))[0]
            expire_on_issue(server.simulator, clocks)
            clocks.ahead += LIFETIME + 1
            with pytest.raises(AuthenticationError):
                await vbo.start_job(job)
        assert not server.simulator.stats.job_actions
        starts = [status for method, path, status in server.wire.api() if path == start_path(version, job)]
        assert starts == [401]


# --- closing with an expired access token: its refresh token is still live ---------------------------

LOGOUT_CASES = {
    "expired on both clocks": 0.0,
    "expired on the server's clock only (a suspended client)": LIFETIME + 1,
}


@pytest.mark.parametrize("case", list(LOGOUT_CASES))
@pytest.mark.parametrize("version", ["v7", "v8"])
async def test_closing_with_an_expired_access_token_logs_out_its_refresh_token(
    version: str, case: str
) -> None:
    """A v7+ logout needs a valid bearer (``vb365-v6-v8.md`` §3.3) and revokes the refresh token
    issued with it. A client closed after its access token expired sent the logout with it,
    answered 401, and left the refresh token live on the server for its whole lifetime (14 days
    by default): anyone holding it could get new tokens. Now the refresh token is redeemed (never
    the password) and the pair it brings is logged out: the server holds no live token."""
    clocks = Clocks()
    async with served(version, clocks) as server:
        vbo = server.client(clocks, version)
        async with vbo:
            await read_everything(vbo)
            assert server.simulator.tokens._refresh  # the refresh token is live
            if LOGOUT_CASES[case]:
                clocks.ahead += LOGOUT_CASES[case]
            else:
                clocks.advance(LIFETIME + 1)
        store = server.simulator.tokens
        assert not store._refresh, "a refresh token is still live on the server"
        assert not store._access
        assert server.simulator.stats.logouts == {version: 1}
        assert server.grants() == {"password": 1, "refresh_token": 1}  # never the password to log out


@pytest.mark.parametrize("version", ["v1", "v6"])
async def test_closing_with_an_expired_token_sends_nothing_where_there_is_no_logout(version: str) -> None:
    """Before v7 there is no logout: closing after the token expired asks for no token."""
    clocks = Clocks()
    async with served(version, clocks) as server:
        async with server.client(clocks, version) as vbo:
            await read_everything(vbo)
            clocks.advance(LIFETIME + 1)
        assert server.grants() == {"password": 1}
