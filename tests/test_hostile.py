"""Hostile servers: answers built to exhaust, hang, mislead or phish the client.

Real sockets (uvicorn, or a raw asyncio server for what no ASGI app can send) where the socket is
the point: bodies streamed past ``max_response_bytes``, bytes dribbled under httpx's read timeout,
redirects to another port, cut bodies, huge or endless headers. In-process (ASGI or
``httpx.MockTransport``) where it is not. Each scenario is an ``async def scenario_*()`` returning an
`Outcome`, so ``python -m tests.reliability_report`` can publish the same runs. Every outcome's
error message and repr is also searched for the password and the tokens.

No assertion here is about time: "cut off within roughly the timeout" is shown by the server
not having finished (bytes or chunks it got to send), never by a stopwatch.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest

from vbo_async import (
    APIError,
    AuthenticationError,
    DecodeError,
    ResponseTooLargeError,
    RetryPolicy,
    ServerError,
    TransportError,
    VBOClient,
    VBOError,
)
from vbo_async._auth import MAX_RENEWALS
from vbo_async.simulator import Faults, SimulatorConfig, create_app

from .conftest import PASSWORD as CONF_PASSWORD
from .conftest import USERNAME as CONF_USERNAME
from .conftest import FakeVBO, as_asgi, serve
from .raw_http import serve_raw

USERNAME = "LAB\\svc-hostile"
PASSWORD = "pw-Hostile-S3cret-Sw0rdfish!"
ACCESS = "tok-Hostile-Access-7Qx2"
REFRESH = "tok-Hostile-Refresh-9Lm4"
SECRETS = (PASSWORD, ACCESS, REFRESH)
MiB = 1024 * 1024
ONCE = RetryPolicy(attempts=1)
FAST = RetryPolicy(attempts=3, wait_initial=0, wait_max=0, wait_jitter=0)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


@attrs.define
class Outcome:
    """What one hostile scenario did to the client: the error it raised, and facts to check."""

    scenario: str
    expected: str
    error: BaseException | None = None
    facts: dict[str, Any] = attrs.Factory(dict)

    @property
    def raised(self) -> str:
        return type(self.error).__name__ if self.error is not None else "nothing"

    @property
    def secret_leaked(self) -> bool:
        text = f"{self.error} {self.error!r}" if self.error is not None else ""
        return any(secret in text for secret in SECRETS)


def client(base_url: str, **options: Any) -> VBOClient:
    options.setdefault("retry", FAST)
    return VBOClient(base_url, username=USERNAME, password=PASSWORD, **options, api_version="v1")


async def outcome_of(scenario: str, expected: str, call: Awaitable[Any]) -> Outcome:
    """Run ``call``; a `VBOError` becomes the outcome's error, anything else propagates."""
    outcome = Outcome(scenario, expected)
    try:
        await call
    except VBOError as error:
        outcome.error = error
    return outcome


# --- ASGI building blocks ----------------------------------------------------------------------------


async def read_body(receive: Receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        body += bytes(message.get("body", b""))
        if not message.get("more_body"):
            return body


async def respond(send: Send, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
    raw = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    if not any(k == b"content-length" for k, _ in raw):
        raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def token_json(access: str = ACCESS) -> bytes:
    return json.dumps(
        {"access_token": access, "refresh_token": REFRESH, "token_type": "bearer", "expires_in": 3600}
    ).encode()


async def good_token(scope: Scope, receive: Receive, send: Send) -> None:
    await read_body(receive)
    await respond(send, 200, token_json(), {"content-type": "application/json"})


class Hostile:
    """An ASGI server: ``token`` answers ``/v1/Token`` (a valid token by default), ``api`` the rest.
    It records the method, path and headers of every request it sees."""

    def __init__(self, api: App, token: App = good_token) -> None:
        self.api = api
        self.token = token
        self.requests: list[tuple[str, str, dict[str, str]]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # pragma: no cover - lifespan is off
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        self.requests.append((scope["method"], scope["path"], headers))
        handler = self.token if scope["path"].lower().endswith("/token") else self.api
        await handler(scope, receive, send)

    @property
    def api_requests(self) -> int:
        return sum(not path.lower().endswith("/token") for _, path, _ in self.requests)

    @property
    def token_requests(self) -> int:
        return sum(path.lower().endswith("/token") for _, path, _ in self.requests)


class Streamer:
    """Streams ``chunks`` chunks of ``size`` bytes with ``status``, counting those sent before the
    client hangs up."""

    def __init__(self, *, chunks: int, size: int, declare: bool, status: int = 200) -> None:
        self.chunks = chunks
        self.size = size
        self.declare = declare
        self.status = status
        self.sent = 0
        self.finished = False
        self.disconnected = asyncio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await read_body(receive)

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            self.disconnected.set()

        watcher = asyncio.create_task(watch())
        headers = [(b"content-type", b"application/json")]
        if self.declare:
            headers.append((b"content-length", str(self.chunks * self.size).encode()))
        chunk = b" " * self.size  # one object, sent again and again: the server allocates nothing per chunk
        try:
            await send({"type": "http.response.start", "status": self.status, "headers": headers})
            for _ in range(self.chunks):
                if self.disconnected.is_set():
                    return
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                self.sent += 1
                await asyncio.sleep(0)  # lets the watcher see a disconnect between chunks
            await send({"type": "http.response.body", "body": b""})
            self.finished = True
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher


class Dribbler:
    """Answers 200 at once, then one byte every ``interval`` seconds: each byte well within
    httpx's read timeout, the whole body far beyond the client's per-attempt timeout. Stops when
    the client hangs up."""

    def __init__(self, *, count: int, interval: float) -> None:
        self.count = count
        self.interval = interval
        self.sent = 0
        self.finished = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await read_body(receive)
        hung_up = asyncio.Event()

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            hung_up.set()

        watcher = asyncio.create_task(watch())
        headers = [(b"content-type", b"application/json"), (b"content-length", str(self.count).encode())]
        try:
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            for _ in range(self.count):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(hung_up.wait(), self.interval)
                if hung_up.is_set():
                    return
                await send({"type": "http.response.body", "body": b" ", "more_body": True})
                self.sent += 1
            await send({"type": "http.response.body", "body": b""})
            self.finished = True
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher


# --- a raw TCP server, for what an ASGI app cannot send ----------------------------------------------

RawHandler = Callable[[bytes, asyncio.StreamWriter], Awaitable[None]]


async def answer_token(writer: asyncio.StreamWriter) -> None:
    body = token_json()
    writer.write(
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(body) + body
    )
    await writer.drain()


@contextlib.asynccontextmanager
async def raw_server(
    api: RawHandler, token: RawHandler | None = None
) -> AsyncIterator[tuple[int, list[bytes]]]:
    """A TCP server on 127.0.0.1: keep-alive HTTP/1.1 whose token requests get a token (or
    ``token``) and whose other requests go to ``api``; yields (port, request lines seen)."""
    seen: list[bytes] = []

    async def answer(head: bytes, body: bytes, writer: asyncio.StreamWriter) -> None:
        line = head.split(b"\r\n", 1)[0]
        seen.append(line)
        if b"/token" in line.lower():
            await (token or (lambda _line, w: answer_token(w)))(line, writer)
        else:
            await api(line, writer)

    async with serve_raw(answer) as port:
        yield port, seen


# --- scenarios -----------------------------------------------------------------------------------------


async def scenario_streamed_body_too_large() -> Outcome:
    """256 chunks of 1 MiB, no Content-Length, over uvicorn; the client's limit is 1 MiB."""
    streamer = Streamer(chunks=256, size=MiB, declare=False)
    async with serve(Hostile(streamer)) as port:
        tracemalloc.start()
        try:
            async with client(f"http://127.0.0.1:{port}", max_response_bytes=MiB, timeout=30) as vbo:
                outcome = await outcome_of(
                    "body streamed past max_response_bytes", "ResponseTooLargeError", vbo.jobs()
                )
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        await asyncio.wait_for(streamer.disconnected.wait(), 10)  # a guard: the server sees the hang-up
    outcome.facts.update(
        chunks_total=streamer.chunks,
        chunks_sent=streamer.sent,
        server_finished=streamer.finished,
        bytes_total=streamer.chunks * streamer.size,
        peak_traced_bytes=peak,
    )
    return outcome


async def scenario_declared_too_large() -> Outcome:
    """A declared Content-Length of 256 MiB over uvicorn, limit 1 MiB: refused on the headers."""
    streamer = Streamer(chunks=256, size=MiB, declare=True)
    async with serve(Hostile(streamer)) as port:
        async with client(f"http://127.0.0.1:{port}", max_response_bytes=MiB, timeout=30) as vbo:
            outcome = await outcome_of(
                "declared Content-Length over the limit", "ResponseTooLargeError", vbo.jobs()
            )
        await asyncio.wait_for(streamer.disconnected.wait(), 10)
    outcome.facts.update(
        chunks_total=streamer.chunks, chunks_sent=streamer.sent, server_finished=streamer.finished
    )
    return outcome


async def scenario_declared_too_large_not_read() -> Outcome:
    """The same through ``httpx.MockTransport``, counting the chunks the client pulls: none."""
    pulled = 0

    class Body(httpx.AsyncByteStream):
        async def __aiter__(self) -> AsyncIterator[bytes]:
            nonlocal pulled
            for _ in range(256):
                pulled += 1
                yield b" " * MiB

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/Token"):
            return httpx.Response(200, content=token_json())
        return httpx.Response(200, headers={"content-length": str(256 * MiB)}, stream=Body())

    async with client(
        "https://vbo.test", max_response_bytes=MiB, transport=httpx.MockTransport(handler)
    ) as vbo:
        outcome = await outcome_of(
            "declared Content-Length, body never pulled", "ResponseTooLargeError", vbo.jobs()
        )
    outcome.facts.update(chunks_pulled=pulled)
    return outcome


async def scenario_never_answers_in_process() -> Outcome:
    """An in-process ASGI app that never answers: each attempt is cut at ``timeout``."""
    started = cancelled = 0

    async def never(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal started, cancelled
        started += 1
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled += 1
            raise

    app = Hostile(never)
    retry = RetryPolicy(attempts=2, wait_initial=0, wait_max=0, wait_jitter=0)
    async with client(
        "https://vbo.test", transport=httpx.ASGITransport(app=app), timeout=0.5, retry=retry
    ) as vbo:
        outcome = await outcome_of("in-process app that never answers", "TransportError", vbo.jobs())
    outcome.facts.update(attempts_started=started, attempts_cancelled=cancelled)
    return outcome


async def scenario_dribble() -> Outcome:
    """Over uvicorn: one byte every 0.2 s (50 bytes); the client's timeout is 1 s per attempt."""
    dribbler = Dribbler(count=50, interval=0.2)
    async with serve(Hostile(dribbler)) as port:
        async with client(f"http://127.0.0.1:{port}", timeout=1.0, retry=ONCE) as vbo:
            outcome = await outcome_of("body dribbled a byte every 0.2 s", "TransportError", vbo.jobs())
        outcome.facts.update(bytes_total=dribbler.count, bytes_sent_at_error=dribbler.sent)
    outcome.facts.update(server_finished=dribbler.finished)
    return outcome


async def scenario_slowloris_token() -> Outcome:
    """A raw server whose token endpoint sends a header line every 0.1 s, forever."""

    async def slow_headers(line: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\n")
        while True:
            writer.write(b"x-slow: 1\r\n")
            await writer.drain()
            await asyncio.sleep(0.1)

    async def unused(line: bytes, writer: asyncio.StreamWriter) -> None:  # pragma: no cover
        raise AssertionError("no API request expected")

    async with (
        raw_server(unused, token=slow_headers) as (port, seen),
        client(f"http://127.0.0.1:{port}", timeout=1.0, retry=ONCE) as vbo,
    ):
        outcome = await outcome_of("token endpoint sends headers forever", "TransportError", vbo.jobs())
    outcome.facts.update(requests_seen=len(seen))
    return outcome


async def scenario_huge_headers() -> Outcome:
    """A raw server answering every API request with a 1 MiB header line."""

    async def huge(line: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nx-huge: " + b"a" * MiB + b"\r\ncontent-length: 2\r\n\r\n[]")
        await writer.drain()

    async with raw_server(huge) as (port, seen), client(f"http://127.0.0.1:{port}", timeout=5.0) as vbo:
        outcome = await outcome_of("1 MiB response header", "TransportError", vbo.jobs())
    outcome.facts.update(api_requests=sum(b"/token" not in line.lower() for line in seen))
    return outcome


async def scenario_redirect_to_another_host() -> Outcome:
    """A 302 from the API, and a 307 from the token endpoint, to a server on another port."""
    other = Hostile(lambda scope, receive, send: respond(send, 200, b"[]"))
    async with serve(other) as other_port:
        target = f"http://127.0.0.1:{other_port}"

        async def redirect_api(scope: Scope, receive: Receive, send: Send) -> None:
            await read_body(receive)
            await respond(send, 302, b"", {"location": f"{target}{scope['path']}"})

        async def redirect_token(scope: Scope, receive: Receive, send: Send) -> None:
            await read_body(receive)
            await respond(send, 307, b"", {"location": f"{target}/v1/Token"})

        first = Hostile(redirect_api)
        async with serve(first) as port, client(f"http://127.0.0.1:{port}") as vbo:
            outcome = await outcome_of("302 to another host:port", "APIError", vbo.jobs())
        phishing = Hostile(redirect_api, token=redirect_token)
        async with serve(phishing) as port, client(f"http://127.0.0.1:{port}") as vbo:
            token_outcome = await outcome_of("307 of the token request", "APIError", vbo.jobs())
    outcome.facts.update(
        status=getattr(outcome.error, "status_code", None),
        token_redirect_error=token_outcome.error,
        token_redirect_status=getattr(token_outcome.error, "status_code", None),
        other_server_requests=len(other.requests),
        first_server_api_requests=first.api_requests,
    )
    return outcome


BODY_CASES: list[tuple[str, str, int, bytes, dict[str, str]]] = [
    ("200, body not JSON", "DecodeError", 200, b"hello", {"content-type": "application/json"}),
    (
        "200, HTML page",
        "DecodeError",
        200,
        b"<html><title>Portal</title></html>",
        {"content-type": "text/html"},
    ),
    ("200, empty body", "DecodeError", 200, b"", {}),
    (
        "500, HTML error page",
        "ServerError",
        500,
        b"<html><head><title>Runtime Error</title></head>"
        b"<body><h1>Server Error in '/' App</h1></body></html>",
        {"content-type": "text/html"},
    ),
    (
        "200, Content-Length 1000 with 10 bytes",
        "TransportError",
        200,
        b'[{"id":"x"',
        {"content-length": "1000"},
    ),
]
"""Answers that are not what they claim (name, expected error, status, body, headers)."""


async def scenario_body(case: tuple[str, str, int, bytes, dict[str, str]]) -> Outcome:
    """One of `BODY_CASES`, in-process through the ASGI transport."""
    name, expected, status, body, headers = case

    async def api(scope: Scope, receive: Receive, send: Send) -> None:
        await read_body(receive)
        await respond(send, status, body, headers)

    app = Hostile(api)
    async with client("https://vbo.test", transport=httpx.ASGITransport(app=app)) as vbo:
        outcome = await outcome_of(name, expected, vbo.jobs())
    outcome.facts.update(api_requests=app.api_requests)
    return outcome


async def scenario_truncated_over_sockets() -> Outcome:
    """A raw server declaring 1000 bytes, sending 10 and closing the connection."""

    async def cut(line: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(
            b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n[{"id":"x"'
        )
        await writer.drain()
        writer.close()
        raise ConnectionError("closed on purpose")

    async with raw_server(cut) as (port, seen), client(f"http://127.0.0.1:{port}") as vbo:
        outcome = await outcome_of("body cut short, connection closed", "TransportError", vbo.jobs())
    outcome.facts.update(
        api_requests=sum(b"/token" not in line.lower() for line in seen), attempts=FAST.attempts
    )
    return outcome


async def scenario_malformed_from_the_simulator() -> Outcome:
    """The simulator's own malformed-body fault on every request: a 200 that is not JSON."""
    config = SimulatorConfig(
        seed=1, organizations=1, username=USERNAME, password=PASSWORD, faults=Faults(malformed_rate=1.0)
    )
    app = create_app(config)
    async with client("https://vbo.test", transport=httpx.ASGITransport(app=app)) as vbo:
        outcome = await outcome_of("simulator malformed_rate=1", "DecodeError", vbo.organizations())
    return outcome


async def scenario_401_loop(concurrent: int = 1) -> Outcome:
    """The simulator revoking every token before every request: every fresh token is refused."""
    config = SimulatorConfig(
        seed=1, organizations=1, username=USERNAME, password=PASSWORD, faults=Faults(revoke_every=1e-9)
    )
    app = create_app(config)
    simulator = app.state.simulator
    async with client("https://vbo.test", transport=httpx.ASGITransport(app=app)) as vbo:
        calls = [vbo.organization(f"org-{index}") for index in range(concurrent)]  # distinct: not shared
        results = await asyncio.gather(*calls, return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    outcome = Outcome(f"every fresh token refused ({concurrent} concurrent)", "AuthenticationError")
    outcome.error = errors[0] if errors else None
    outcome.facts.update(
        calls=concurrent,
        failed=len(errors),
        all_authentication_errors=all(isinstance(e, AuthenticationError) for e in errors),
        token_requests=sum(simulator.stats.token_requests.values()),
        api_requests=simulator.stats.requests - sum(simulator.stats.token_requests.values()),
        bound=concurrent * (1 + MAX_RENEWALS),
    )
    return outcome


TOKEN_CASES: list[tuple[str, str, int, bytes]] = [
    ("token: 200, not JSON", "DecodeError", 200, b"<html>login</html>"),
    ("token: 200, no access_token", "DecodeError", 200, b'{"token_type": "bearer"}'),
    ("token: 200, a JSON array", "DecodeError", 200, b"[]"),
    ("token: 200, access_token a number", "DecodeError", 200, b'{"access_token": 42}'),
    ("token: 200, empty access_token", "DecodeError", 200, b'{"access_token": ""}'),
    (
        "token: 200, access_token with CR LF",
        "DecodeError",
        200,
        b'{"access_token": "tok-Hostile-Access-7Qx2\\r\\nX-Injected: 1"}',
    ),
    ("token: 400, HTML", "AuthenticationError", 400, b"<html><title>Bad Request</title></html>"),
]
"""Token endpoint answers that are not a usable token (name, expected error, status, body)."""


async def scenario_token_garbage(case: tuple[str, str, int, bytes]) -> Outcome:
    """One of `TOKEN_CASES`, over uvicorn (h11 is what refuses a CR LF in a header)."""
    name, expected, status, body = case

    async def token(scope: Scope, receive: Receive, send: Send) -> None:
        await read_body(receive)
        await respond(send, status, body, {"content-type": "application/json"})

    app = Hostile(lambda scope, receive, send: respond(send, 200, b"[]"), token=token)
    async with serve(app) as port, client(f"http://127.0.0.1:{port}") as vbo:
        outcome = await outcome_of(name, expected, vbo.jobs())
    outcome.facts.update(api_requests=app.api_requests, token_requests=app.token_requests)
    return outcome


async def scenario_revoked_while_every_slot_is_busy(slots: int = 2) -> Outcome:
    """Over uvicorn: as many requests as ``max_concurrency`` are in flight when the server revokes
    the token and answers all of them 401. Each keeps its connection while its auth flow renews,
    so the renewal needs a connection more than there are slots; without one it would wait for a
    free connection until the attempt's timeout (the soak found this)."""
    fake = FakeVBO()
    arrived = 0
    all_in = asyncio.Event()

    async def revoke_when_all_arrived(request: httpx.Request) -> httpx.Response:
        nonlocal arrived
        arrived += 1
        if arrived <= slots:
            if arrived == slots:
                all_in.set()
            await all_in.wait()
            fake.revoke()
            return httpx.Response(401, headers={"WWW-Authenticate": "Bearer"})
        return httpx.Response(200, json={"id": request.url.path.rsplit("/", 1)[-1]})

    for index in range(slots):
        fake.route("GET", f"/v1/Jobs/j{index}", revoke_when_all_arrived)
    outcome = Outcome(f"all {slots} slots answered 401 at once (revocation)", "nothing")
    async with (
        serve(as_asgi(fake.handler)) as port,
        VBOClient(
            f"http://127.0.0.1:{port}",
            username=CONF_USERNAME,
            password=CONF_PASSWORD,
            max_concurrency=slots,
            timeout=5.0,
            retry=ONCE,  # a renewal stuck until the timeout would fail the call, not hide in a retry
            api_version="v1",
        ) as vbo,
    ):
        try:
            jobs = await asyncio.gather(*(vbo.job(f"j{index}") for index in range(slots)))
        except VBOError as error:
            outcome.error = error
            jobs = []
    outcome.facts.update(
        jobs=[job.id for job in jobs], grants=fake.grants(), api_requests=len(fake.api_requests)
    )
    return outcome


async def all_scenarios() -> list[Outcome]:
    """Every scenario once, in a stable order (the report script's list)."""
    outcomes = [
        await scenario_streamed_body_too_large(),
        await scenario_declared_too_large(),
        await scenario_declared_too_large_not_read(),
        await scenario_never_answers_in_process(),
        await scenario_dribble(),
        await scenario_slowloris_token(),
        await scenario_huge_headers(),
        await scenario_redirect_to_another_host(),
        *[await scenario_body(case) for case in BODY_CASES],
        await scenario_truncated_over_sockets(),
        await scenario_malformed_from_the_simulator(),
        await scenario_401_loop(),
        await scenario_401_loop(concurrent=10),
        await scenario_revoked_while_every_slot_is_busy(),
        *[await scenario_token_garbage(case) for case in TOKEN_CASES],
    ]
    return outcomes


def assert_typed(outcome: Outcome, kind: type[VBOError]) -> None:
    assert isinstance(outcome.error, kind), (outcome.scenario, outcome.error)
    assert outcome.raised == outcome.expected
    assert not outcome.secret_leaked, outcome.error


# --- tests ---------------------------------------------------------------------------------------------


async def test_a_streamed_body_over_the_limit_is_refused_while_it_streams() -> None:
    outcome = await scenario_streamed_body_too_large()
    assert_typed(outcome, ResponseTooLargeError)
    assert "max_response_bytes" in str(outcome.error)
    facts = outcome.facts
    assert not facts["server_finished"]
    assert facts["chunks_sent"] < facts["chunks_total"]  # the server could not send it all
    assert facts["peak_traced_bytes"] < facts["bytes_total"] // 8  # nor did anyone hold it


async def test_a_declared_length_over_the_limit_is_refused_before_reading() -> None:
    outcome = await scenario_declared_too_large()
    assert_typed(outcome, ResponseTooLargeError)
    assert not outcome.facts["server_finished"]
    assert outcome.facts["chunks_sent"] < outcome.facts["chunks_total"]
    pulled = await scenario_declared_too_large_not_read()
    assert_typed(pulled, ResponseTooLargeError)
    assert pulled.facts["chunks_pulled"] == 0


async def test_an_app_that_never_answers_is_cut_at_the_timeout() -> None:
    outcome = await scenario_never_answers_in_process()
    assert_typed(outcome, TransportError)
    assert "no complete answer within 0.5 s" in str(outcome.error)
    assert outcome.facts["attempts_started"] == 2
    assert outcome.facts["attempts_cancelled"] == 2  # nothing left running in the app


async def test_a_dribbled_body_is_cut_at_the_timeout_whole() -> None:
    outcome = await scenario_dribble()
    assert_typed(outcome, TransportError)
    assert "no complete answer within 1.0 s" in str(outcome.error)
    assert outcome.facts["bytes_sent_at_error"] < outcome.facts["bytes_total"]
    assert not outcome.facts["server_finished"]


async def test_a_slowloris_token_endpoint_is_cut_at_the_timeout() -> None:
    outcome = await scenario_slowloris_token()
    assert_typed(outcome, TransportError)
    assert outcome.facts["requests_seen"] == 1


@contextlib.asynccontextmanager
async def silent_server() -> AsyncIterator[int]:
    """A TCP server on 127.0.0.1 that accepts connections and never sends a byte (a TLS client's
    handshake never ends); yields its port."""
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_a_timeout_says_where_the_attempt_was_cut_short(tls_files: tuple[Path, Path]) -> None:
    """The attempt's timeout names its stage: a TLS handshake that never ends (a job action
    there was not sent, so it can be sent again), a request never answered (a job action there
    may have run), a body dribbled past the timeout."""
    _, ca_pem = tls_files
    async with silent_server() as port:
        async with client(f"https://127.0.0.1:{port}", timeout=0.5, retry=ONCE, verify=ca_pem) as vbo:
            handshake = await outcome_of("TLS handshake never ends", "TransportError", vbo.jobs())
        async with client(f"http://127.0.0.1:{port}", timeout=0.5, retry=ONCE) as vbo:
            unanswered = await outcome_of("request never answered", "TransportError", vbo.jobs())

    async def head_then_one_byte(line: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 9\r\n\r\n[")
        await writer.drain()
        await asyncio.Event().wait()

    async with (
        raw_server(head_then_one_byte) as (port, _),
        client(f"http://127.0.0.1:{port}", timeout=0.5, retry=ONCE) as vbo,
    ):
        body = await outcome_of("body never ends", "TransportError", vbo.jobs())
    for outcome in (handshake, unanswered, body):
        assert_typed(outcome, TransportError)
        assert "no complete answer within 0.5 s" in str(outcome.error)
    assert "not connected: the request was not sent" in str(handshake.error)
    assert "/v1/Token" in str(handshake.error)
    assert "connected, no answer began" in str(unanswered.error)
    assert "the answer began, its body did not arrive whole" in str(body.error)
    assert "/v1/Jobs" in str(body.error)


async def test_huge_headers_are_a_transport_error() -> None:
    outcome = await scenario_huge_headers()
    assert_typed(outcome, TransportError)
    assert outcome.facts["api_requests"] == FAST.attempts


async def test_a_redirect_never_carries_the_token_or_the_password() -> None:
    outcome = await scenario_redirect_to_another_host()
    assert_typed(outcome, APIError)
    assert outcome.facts["status"] == 302
    assert outcome.facts["other_server_requests"] == 0
    assert isinstance(outcome.facts["token_redirect_error"], APIError)
    assert outcome.facts["token_redirect_status"] == 307
    assert outcome.facts["first_server_api_requests"] == 1  # a 302 is not retried either


@pytest.mark.parametrize("case", BODY_CASES, ids=[case[0] for case in BODY_CASES])
async def test_bodies_that_lie_are_typed_errors(case: tuple[str, str, int, bytes, dict[str, str]]) -> None:
    outcome = await scenario_body(case)
    kinds: dict[str, type[VBOError]] = {
        "DecodeError": DecodeError,
        "ServerError": ServerError,
        "TransportError": TransportError,
    }
    assert_typed(outcome, kinds[outcome.expected])
    if outcome.expected == "DecodeError":
        assert outcome.facts["api_requests"] == 1  # a 200 is not retried
    if outcome.expected == "ServerError":
        assert outcome.facts["api_requests"] == FAST.attempts
        assert "Runtime Error" in str(outcome.error)
        assert "<" not in str(outcome.error)
    if outcome.expected == "TransportError":
        assert "cut short" in str(outcome.error)


async def test_a_body_cut_short_over_sockets_is_a_transport_error_after_the_retries() -> None:
    outcome = await scenario_truncated_over_sockets()
    assert_typed(outcome, TransportError)
    assert outcome.facts["api_requests"] == FAST.attempts


async def test_a_connection_closed_before_any_answer_costs_one_request_per_attempt() -> None:
    """The server closes every API connection without answering. aiohttp resends an idempotent
    request once on its own when that happens, on a fresh connection too: each attempt of the
    policy went out twice, and ``requests_sent`` counted half of them."""

    async def hang_up(line: bytes, writer: asyncio.StreamWriter) -> None:
        writer.close()
        raise ConnectionError("closed on purpose")

    async with raw_server(hang_up) as (port, seen), client(f"http://127.0.0.1:{port}") as vbo:
        with pytest.raises(TransportError, match="isconnected"):
            await vbo.jobs()
        sent = vbo.requests_sent
    api_requests = [line for line in seen if b"/token" not in line.lower()]
    assert len(api_requests) == FAST.attempts
    assert sent == 1 + FAST.attempts  # the token, then each attempt once


async def test_a_keep_alive_connection_closed_unanswered_retries_a_get_but_never_a_job_action() -> None:
    """Each connection answers one API request and closes the next one unanswered, as when the
    server's idle timeout strikes as the client reuses the connection: a GET is sent again on a
    new connection, a job action once and reported."""
    answered: set[asyncio.StreamWriter] = set()  # the writers themselves: a closed one's id() is reused

    async def once_per_connection(line: bytes, writer: asyncio.StreamWriter) -> None:
        if writer in answered:
            writer.close()
            raise ConnectionError("closed on purpose")
        answered.add(writer)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n[]")
        await writer.drain()

    async with raw_server(once_per_connection) as (port, seen), client(f"http://127.0.0.1:{port}") as vbo:
        assert await vbo.jobs() == []  # the token and this GET share the first connection
        assert await vbo.jobs() == []  # sent on it again, closed unanswered: sent once more
        with pytest.raises(TransportError, match="isconnected"):
            await vbo.stop_job("j1")  # on the second connection, closed unanswered
    assert [line.split(b" ")[0] for line in seen if b"/token" not in line.lower()] == [
        b"GET",
        b"GET",
        b"GET",
        b"POST",
    ]


@pytest.mark.parametrize("length", [17, 2 * MiB])
async def test_a_job_action_answered_204_with_a_content_length_succeeds_once(length: int) -> None:
    """A 204 has no body whatever its ``Content-Length`` says (RFC 9112 §6.3: it ends at the
    blank line). The client read the header as a promise of a body: the job was stopped, yet the
    action failed as a cut-short answer, or as too large before anything was read. The next
    request on the connection must still get its own answer."""

    async def api(line: bytes, writer: asyncio.StreamWriter) -> None:
        if line.startswith(b"POST"):
            writer.write(b"HTTP/1.1 204 No Content\r\ncontent-length: %d\r\n\r\n" % length)
        else:
            writer.write(framed(b'{"id": "j2", "name": "answer to j2"}'))
        await writer.drain()

    async with (
        raw_server(api) as (port, seen),
        client(f"http://127.0.0.1:{port}", max_response_bytes=MiB) as vbo,
    ):
        assert await vbo.stop_job("j1") is None
        assert (await vbo.job("j2")).name == "answer to j2"  # the connection is still in step
    assert [line for line in seen if b"/token" not in line.lower()] == [
        b"POST /v1/Jobs/j1/Action HTTP/1.1",
        b"GET /v1/Jobs/j2 HTTP/1.1",
    ]


async def test_an_answer_arriving_on_an_idle_connection_is_never_taken_for_the_next_ones() -> None:
    """After answering ``j1`` the server sends a second, unsolicited answer on the idle connection
    (as servers send a ``408 Request Timeout`` before closing one). aiohttp queued it and handed it
    to the next request sent on that connection, whose own answer went to the one after: ``j2``
    read as the unsolicited job, ``j3`` as ``j2``, for as long as the connection lived."""
    first_answered = asyncio.Event()
    unsolicited_sent = asyncio.Event()

    async def answer(line: bytes, writer: asyncio.StreamWriter) -> None:
        job = line.split(b" ")[1].rsplit(b"/", 1)[-1]
        body = b'{"id": "%b", "name": "answer to %b"}' % (job, job)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%b" % (len(body), body))
        await writer.drain()
        if job == b"j1":
            await first_answered.wait()
            extra = b'{"id": "j1", "name": "unsolicited"}'
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%b" % (len(extra), extra))
            await writer.drain()
            unsolicited_sent.set()

    async with raw_server(answer) as (port, seen), client(f"http://127.0.0.1:{port}", retry=ONCE) as vbo:
        first = await vbo.job("j1")
        first_answered.set()
        await unsolicited_sent.wait()
        later = [await vbo.job(job_id) for job_id in ("j2", "j3")]
    assert [job.name for job in (first, *later)] == ["answer to j1", "answer to j2", "answer to j3"]
    assert [job.id for job in later] == ["j2", "j3"]
    api_paths = [line.split(b" ")[1] for line in seen if b"/token" not in line.lower()]
    assert api_paths == [b"/v1/Jobs/j1", b"/v1/Jobs/j2", b"/v1/Jobs/j3"]  # each sent once


def framed(body: bytes, head: bytes = b"content-type: application/json\r\n") -> bytes:
    return b"HTTP/1.1 200 OK\r\n" + head + b"content-length: %d\r\n\r\n%b" % (len(body), body)


FIRST_JOB = b'{"id": "j1", "name": "answer to j1"}'
FRAMINGS: dict[str, tuple[bytes, bool, type[VBOError] | str]] = {
    "HTTP/1.0, no length, closed": (b"HTTP/1.0 200 OK\r\n\r\n" + FIRST_JOB, True, "answer to j1"),
    "HTTP/1.1, no length, closed": (b"HTTP/1.1 200 OK\r\n\r\n" + FIRST_JOB, True, "answer to j1"),
    "1xx interim answers first": (
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n" + framed(FIRST_JOB),
        False,
        "answer to j1",
    ),
    "100 Set-Cookie lines": (framed(FIRST_JOB, b"set-cookie: a=b\r\n" * 100), False, "answer to j1"),
    "chunked, cut and closed": (
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n40\r\n" + FIRST_JOB[:20],
        True,
        TransportError,
    ),
    "chunked, no last chunk, closed": (
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n%x\r\n%b\r\n" % (len(FIRST_JOB), FIRST_JOB),
        True,
        TransportError,
    ),
    "Content-Length and chunked": (
        b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n",
        False,
        TransportError,
    ),
    "two Content-Lengths": (
        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\n[]",
        False,
        TransportError,
    ),
    "a negative Content-Length": (b"HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n[]", False, TransportError),
    "129 header lines": (
        framed(FIRST_JOB, b"".join(b"x-%d: 1\r\n" % i for i in range(129))),
        False,
        TransportError,
    ),
    "500 trailer lines": (
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\n[]\r\n0\r\n"
        + b"x-t: 1\r\n" * 500
        + b"\r\n",
        False,
        TransportError,
    ),
    "a status line that is not HTTP": (b"HELLO\r\n\r\n", False, TransportError),
}
"""Answers to ``GET /v1/Jobs/j1`` framed right, oddly or wrongly: (bytes, whether the server then
closes the connection, the job's name or the error expected)."""


@pytest.mark.parametrize("framing", list(FRAMINGS))
async def test_an_oddly_framed_answer_is_read_or_refused_and_the_next_request_gets_its_own(
    framing: str,
) -> None:
    first, close, expected = FRAMINGS[framing]
    answered = 0

    async def api(line: bytes, writer: asyncio.StreamWriter) -> None:
        nonlocal answered
        answered += 1
        if answered == 1:
            writer.write(first)
            await writer.drain()
            if close:
                writer.close()
                raise ConnectionError("closed on purpose")
            return
        job = line.split(b" ")[1].rsplit(b"/", 1)[-1]
        writer.write(framed(b'{"id": "%b", "name": "answer to %b"}' % (job, job)))
        await writer.drain()

    got: list[Any] = []

    async def first_job() -> None:
        got.append(await vbo.job("j1"))

    async with raw_server(api) as (port, seen), client(f"http://127.0.0.1:{port}", retry=ONCE) as vbo:
        outcome = await outcome_of(framing, getattr(expected, "__name__", "nothing"), first_job())
        later = [await vbo.job(job_id) for job_id in ("j2", "j3")]
    if isinstance(expected, str):
        assert outcome.error is None, outcome.error
        assert got[0].name == expected
    else:
        assert_typed(outcome, expected)
    assert [job.name for job in later] == ["answer to j2", "answer to j3"]  # the pool works on
    assert sum(b"/token" not in line.lower() for line in seen) == 3  # each sent once


STRAY_BYTES = {
    "the answer twice": framed(FIRST_JOB),
    "a CRLF": b"\r\n",
    "a 409 of its own": framed(b'{"message": "stray"}').replace(b"200 OK", b"409 Conflict"),
}


@pytest.mark.parametrize("transport", ["aiohttp", "httpx"])
@pytest.mark.parametrize("stray", list(STRAY_BYTES))
async def test_bytes_sent_past_an_answer_in_the_same_write_never_answer_the_next_request(
    stray: str, transport: str
) -> None:
    """The server writes an answer and, in the same write, more bytes (the answer twice, a stray
    CRLF, another answer). Over httpx's own transport h11 kept them buffered, httpcore reused the
    connection (only its socket was looked at), and the next request got them as its answer:
    ``job("j2")`` answered with job j1, a job action's 409 read as success, or, after a CRLF, the
    action failed although the server had carried it out. Each request gets its own answer."""
    answered = 0

    async def api(line: bytes, writer: asyncio.StreamWriter) -> None:
        nonlocal answered
        answered += 1
        if answered == 1:
            writer.write(framed(FIRST_JOB) + STRAY_BYTES[stray])
        elif line.startswith(b"POST"):
            refusal = framed(b'{"message": "job j2 cannot be stopped"}')
            writer.write(refusal.replace(b"200 OK", b"409 Conflict"))
        else:
            job = line.split(b" ")[1].rsplit(b"/", 1)[-1]
            writer.write(framed(b'{"id": "%b", "name": "answer to %b"}' % (job, job)))
        await writer.drain()

    options: dict[str, Any] = {"retry": ONCE}
    if transport == "httpx":
        options["transport"] = httpx.AsyncHTTPTransport()
    async with raw_server(api) as (port, seen), client(f"http://127.0.0.1:{port}", **options) as vbo:
        assert (await vbo.job("j1")).name == "answer to j1"
        with pytest.raises(APIError) as refused:
            await vbo.stop_job("j2")
        third = await vbo.job("j3")
    assert refused.value.status_code == 409
    assert "cannot be stopped" in str(refused.value)
    assert (third.id, third.name) == ("j3", "answer to j3")
    assert [line.split(b" ")[:2] for line in seen if b"/token" not in line.lower()] == [
        [b"GET", b"/v1/Jobs/j1"],
        [b"POST", b"/v1/Jobs/j2/Action"],
        [b"GET", b"/v1/Jobs/j3"],
    ]  # each sent once


@pytest.mark.parametrize("transport", ["aiohttp", "httpx"])
async def test_a_job_action_answer_with_bytes_past_its_end_is_never_sent_twice_nor_a_silent_failure(
    transport: str,
) -> None:
    """A 204 and, in the same write, five bytes of a body it cannot have. httpx's transport reads
    the 204 and closes the connection. aiohttp's C parser drops the answers it completed in a
    read that it then refuses, so the default transport sees no answer at all: the action is a
    `TransportError` saying the job may have been stopped all the same, and is not sent again
    (docs/reliability.md, section 3). Either way the next request gets its own answer."""

    async def api(line: bytes, writer: asyncio.StreamWriter) -> None:
        if line.startswith(b"POST"):
            writer.write(b"HTTP/1.1 204 No Content\r\ncontent-length: 5\r\n\r\nhello")
        else:
            writer.write(framed(b'{"id": "j2", "name": "answer to j2"}'))
        await writer.drain()

    options: dict[str, Any] = {"retry": FAST}
    if transport == "httpx":
        options["transport"] = httpx.AsyncHTTPTransport()
    async with raw_server(api) as (port, seen), client(f"http://127.0.0.1:{port}", **options) as vbo:
        assert (await vbo.job("j2")).name == "answer to j2"  # the connection is open before the action
        if transport == "httpx":
            assert await vbo.stop_job("j1") is None
        else:
            with pytest.raises(TransportError, match="the job may have been stopped all the same"):
                await vbo.stop_job("j1")
        assert (await vbo.job("j2")).name == "answer to j2"
    assert sum(line.startswith(b"POST /v1/Jobs/j1/Action") for line in seen) == 1


@pytest.mark.parametrize("cut", ["in the headers", "in the status line"])
async def test_a_connection_closed_mid_head_is_a_bounded_transport_error(cut: str) -> None:
    """The server sends 80 KB of header lines (each within aiohttp's limits) and closes the
    connection before the blank line. aiohttp's error quotes the whole partial head, twice: the
    message was 160 KB long (1.6 MB for 800 KB of headers). It says what happened instead."""
    lines = b"".join(b"x-h%d: %b\r\n" % (i, b"a" * 4000) for i in range(20))
    head = b"HTTP/1.1 200 OK\r\n" + lines if cut == "in the headers" else b"HTTP/1.1 20"

    async def api(line: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(head)
        await writer.drain()
        writer.close()
        raise ConnectionError("closed on purpose")

    async with raw_server(api) as (port, seen), client(f"http://127.0.0.1:{port}") as vbo:
        outcome = await outcome_of(cut, "TransportError", vbo.job("j1"))
    assert_typed(outcome, TransportError)
    assert "RemoteProtocolError: Server disconnected" in str(outcome.error)
    assert len(str(outcome.error)) < 1000, len(str(outcome.error))
    assert sum(b"/token" not in line.lower() for line in seen) == FAST.attempts  # a GET: retried


async def test_a_transport_error_is_quoted_to_a_bounded_length() -> None:
    """Whatever a transport's error says (here a megabyte), the client's error quotes its start."""

    def fail(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadError("the parser read: " + "x" * MiB, request=request)

    async with client("https://vbo.test", transport=httpx.MockTransport(fail), retry=ONCE) as vbo:
        outcome = await outcome_of("a megabyte of error", "TransportError", vbo.jobs())
    assert_typed(outcome, TransportError)
    assert "ReadError: the parser read: xxx" in str(outcome.error)
    assert len(str(outcome.error)) < 1000, len(str(outcome.error))


async def test_the_simulators_malformed_bodies_are_decode_errors() -> None:
    assert_typed(await scenario_malformed_from_the_simulator(), DecodeError)


@pytest.mark.parametrize("concurrent", [1, 10])
async def test_a_401_loop_ends_after_a_bounded_number_of_token_requests(concurrent: int) -> None:
    outcome = await scenario_401_loop(concurrent)
    assert_typed(outcome, AuthenticationError)
    facts = outcome.facts
    assert facts["failed"] == concurrent
    assert facts["all_authentication_errors"]
    assert 1 < facts["token_requests"] <= facts["bound"]
    assert facts["api_requests"] <= facts["bound"]


@pytest.mark.parametrize("case", TOKEN_CASES, ids=[case[0] for case in TOKEN_CASES])
async def test_token_garbage_is_a_typed_error(case: tuple[str, str, int, bytes]) -> None:
    outcome = await scenario_token_garbage(case)
    assert_typed(outcome, DecodeError if outcome.expected == "DecodeError" else AuthenticationError)
    assert outcome.facts["api_requests"] == 0  # no request went out with a broken token


async def test_a_revocation_with_every_slot_busy_renews_without_waiting_for_a_connection() -> None:
    outcome = await scenario_revoked_while_every_slot_is_busy()
    assert outcome.error is None, outcome.error
    assert outcome.facts["jobs"] == ["j0", "j1"]
    assert outcome.facts["grants"] == ["password", "refresh_token"]
    assert outcome.facts["api_requests"] == 4  # two 401s, two replays
