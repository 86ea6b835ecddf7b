"""Shared fixtures for the core client tests: the seed answer, a scripted fake VBO, loopback servers.

`FakeVBO` is a tiny v1 server written as an httpx handler, so one fake serves both
``httpx.MockTransport`` (exact wire shapes, no sockets) and a real uvicorn server on 127.0.0.1
(through `as_asgi`). It records every request it sees, issues opaque tokens, refuses unknown
bearers with 401 and serves scripted routes; everything else answers 404.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib.metadata
import inspect
import itertools
import json
import logging
import os
import re
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import trustme
import uvicorn
from hypothesis import HealthCheck, settings

from vbo_async import ClientStateError, RetryPolicy, VBOClient
from vbo_async._sending import RetryNote

settings.register_profile("vbo-async", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("vbo-async")
"""Every ``@given`` test, those with settings of their own included (they start from this one):
no deadline (Hypothesis fails an example that took over 200 ms once and less when run again, as a
loaded machine makes it) and no ``too_slow`` check (examples slow to draw on a loaded machine).
Loaded here, before any test module builds its settings."""

BASE = "https://vbo.test:4443"
FOREIGN = "https://support.east.local:4443"
USERNAME = "LAB\\svc-backup"
PASSWORD = "pw-S3cret-Sw0rdfish!"
FAST = RetryPolicy(wait_initial=0, wait_max=0, wait_jitter=0)


def release(distribution: str) -> tuple[int, ...]:
    """The installed release of ``distribution`` as numbers (``(0, 27, 0)``): for the few tests
    whose premise an older release within the declared floors lacks (CI runs the suite at the
    floors too, ``.ci/floors.txt``)."""
    version = importlib.metadata.version(distribution)
    return tuple(int(part) for part in re.findall(r"\d+", version.split("+")[0])[:3])


DATED_CERTIFICATES = pytest.mark.skipif(
    "not_before" not in inspect.signature(trustme.CA.issue_cert).parameters,
    reason="trustme issues certificates of chosen dates from 1.2 (the simulator needs 1.1)",
)
"""For a test of an expired certificate (trustme's ``not_before``/``not_after``)."""
"""Retries without backoff, so retry tests neither sleep nor wait."""

Handler = Callable[[httpx.Request], "httpx.Response | Awaitable[httpx.Response]"]


# --- the seed -------------------------------------------------------------------------------------


def _seed_path() -> Path:
    # The repository ships a copy (tests/data) so a fresh clone tests on its own; the shared
    # reference beside the checkout is the original (test_public_api checks they are equal).
    candidates = [Path(__file__).parent / "data" / "seed-job.json"]
    if os.environ.get("VBO_SHARED"):
        candidates.append(Path(os.environ["VBO_SHARED"]) / "reference" / "seed-job.json")
    candidates.append(Path(__file__).parents[2] / "shared" / "reference" / "seed-job.json")
    for path in candidates:
        if path.is_file():
            return path
    pytest.fail(f"seed-job.json not found (looked at {[str(p) for p in candidates]}); set VBO_SHARED")


PROXY_VARIABLES = tuple(
    name for low in ("http_proxy", "https_proxy", "all_proxy", "no_proxy") for name in (low, low.upper())
)
"""The variables through which httpx's own clients (``httpx.get``, ``httpx.AsyncClient()``, the
tests' probes of the servers they start) and anything a child process runs find a proxy."""


@pytest.fixture(scope="session", autouse=True)
def no_proxy_from_the_environment() -> Iterator[None]:
    """The run without the proxy variables of the machine it runs on: a CI runner may set
    ``HTTP_PROXY``, and the tests' own httpx clients, which read it, then sent their requests for
    127.0.0.1 to that proxy (all of them failed). A test of proxies sets them itself."""
    with pytest.MonkeyPatch.context() as patch:
        for name in PROXY_VARIABLES:
            patch.delenv(name, raising=False)
        yield


@pytest.fixture(scope="session", autouse=True)
def no_token_cache_from_the_environment() -> Iterator[None]:
    """The run without ``VBO_ASYNC_TOKEN_CACHE``: set on the machine (a monitoring host), every
    ``check`` a test runs kept its sessions there and logged none out."""
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("VBO_ASYNC_TOKEN_CACHE", raising=False)
        yield


@pytest.fixture(scope="session")
def seed_text() -> str:
    """The vendor's job list answer, verbatim."""
    return _seed_path().read_text(encoding="utf-8")


@pytest.fixture
def seed(seed_text: str) -> list[dict[str, Any]]:
    """The vendor's job list answer, parsed (a fresh copy per test, free to mutate)."""
    data = json.loads(seed_text)
    assert isinstance(data, list)
    assert len(data) == 1
    return data


@pytest.fixture
def seed_job(seed: list[dict[str, Any]]) -> dict[str, Any]:
    return seed[0]


# --- the fake server ------------------------------------------------------------------------------


def json_response(status: int, data: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json=data, headers=headers)


class Gate:
    """Requests held until `release` is set: `two` is set once two are held (all a client of 2
    slots sends at once), and `count` counts every request held."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.two = asyncio.Event()
        self.count = 0

    async def hold(self) -> None:
        self.count += 1
        if self.count == 2:
            self.two.set()
        await self.release.wait()


class FakeVBO:
    """A scripted v1 server: ``/{prefix}/v1/Token`` plus routes added with `route`.

    Routes are matched case-insensitively on the path below ``prefix`` (with the query string
    first, then without). A route answers with its responses in order, repeating the last one;
    a response is an ``httpx.Response``, JSON data, or a (sync or async) callable of the request.
    """

    def __init__(self, *, prefix: str = "", expires_in: Any = 3599, deny_body: bytes = b"") -> None:
        self.prefix = prefix.rstrip("/")
        self.expires_in = expires_in
        self.deny_body = deny_body
        self.requests: list[httpx.Request] = []
        self.token_forms: list[dict[str, str]] = []
        self.valid_access: set[str] = set()
        self.valid_refresh: set[str] = set()
        self.issued: list[tuple[str, str]] = []
        self.refuse_refresh = False
        self.reject_all_tokens = False
        self.token_script: list[httpx.Response] = []
        """Answers the token endpoint gives before behaving normally (consumed in order)."""
        self.before_token: Callable[[], Awaitable[None]] | None = None
        """Awaited before each token request is answered (to hold it in flight)."""
        self._routes: dict[tuple[str, str], list[Any]] = {}
        self._calls: dict[tuple[str, str], int] = {}
        self._counter = itertools.count(1)

    # scripting

    def route(self, method: str, path: str, *responses: Any) -> None:
        assert responses, "a route needs at least one response"
        self._routes[(method.upper(), path.lower())] = list(responses)

    def revoke(self) -> None:
        """Forget every access token issued so far (refresh tokens stay valid)."""
        self.valid_access.clear()

    # what was seen

    @property
    def api_requests(self) -> list[httpx.Request]:
        return [r for r in self.requests if not self._is_token(r)]

    @property
    def token_requests(self) -> list[httpx.Request]:
        return [r for r in self.requests if self._is_token(r)]

    def grants(self) -> list[str]:
        return [form.get("grant_type", "") for form in self.token_forms]

    def paths(self) -> list[str]:
        return [r.url.raw_path.decode() for r in self.requests]

    # serving

    def _relative(self, request: httpx.Request) -> tuple[str, str]:
        path = request.url.raw_path.decode("ascii").split("?", 1)[0]
        if self.prefix and path.lower().startswith(self.prefix.lower() + "/"):
            path = path[len(self.prefix) :]
        query = request.url.query.decode()
        return path, query

    def _is_token(self, request: httpx.Request) -> bool:
        return self._relative(request)[0].lower() == "/v1/token"

    async def handler(self, request: httpx.Request) -> httpx.Response:
        # A snapshot: the auth flow replays the same Request object with new headers.
        request = httpx.Request(
            request.method, request.url, headers=request.headers.copy(), content=request.content
        )
        self.requests.append(request)
        if not self._relative(request)[0].lower().startswith("/v1/"):
            # Another API version: a v1 server does not route it.
            return json_response(404, {"message": "No HTTP resource was found that matches the request URI."})
        if self._is_token(request):
            if self.before_token is not None:
                await self.before_token()
            return self._token(request)
        header = request.headers.get("authorization", "")
        token = header.removeprefix("Bearer ")
        if not header.startswith("Bearer ") or token not in self.valid_access or self.reject_all_tokens:
            return httpx.Response(401, content=self.deny_body, headers={"WWW-Authenticate": "Bearer"})
        path, query = self._relative(request)
        keys = [(request.method, f"{path}?{query}".lower())] if query else []
        keys.append((request.method, path.lower()))
        for key in keys:
            if key in self._routes:
                responses = self._routes[key]
                index = self._calls.get(key, 0)
                self._calls[key] = index + 1
                answer = responses[min(index, len(responses) - 1)]
                return await _materialise(answer, request)
        return json_response(404, {"message": f"no route for {request.method} {path}"})

    def _token(self, request: httpx.Request) -> httpx.Response:
        form = {k: v[0] for k, v in parse_qs(request.content.decode(), keep_blank_values=True).items()}
        self.token_forms.append(form)
        if self.token_script:
            return self.token_script.pop(0)
        grant = form.get("grant_type")
        if grant == "password":
            if form.get("username") != USERNAME or form.get("password") != PASSWORD:
                return json_response(
                    400,
                    {
                        "error": "invalid_grant",
                        "error_description": "The user name or password is incorrect.",
                    },
                )
        elif grant == "refresh_token":
            if self.refuse_refresh or form.get("refresh_token") not in self.valid_refresh:
                return json_response(
                    400, {"error": "invalid_grant", "error_description": "Invalid refresh token."}
                )
            self.valid_refresh.discard(form["refresh_token"])
        else:
            return json_response(400, {"error": "unsupported_grant_type"})
        n = next(self._counter)
        access, refresh = f"access-{n}-Zq9xKp2", f"refresh-{n}-Wm4vTt7"
        self.valid_access.add(access)
        self.valid_refresh.add(refresh)
        self.issued.append((access, refresh))
        return json_response(
            200,
            {
                "access_token": access,
                "token_type": "bearer",
                "expires_in": self.expires_in,
                "refresh_token": refresh,
                "userName": USERNAME,
                ".issued": "Mon, 03 Apr 2017 10:00:00 GMT",
                ".expires": "Mon, 03 Apr 2017 11:00:00 GMT",
            },
        )


async def _materialise(answer: Any, request: httpx.Request) -> httpx.Response:
    if callable(answer):
        answer = answer(request)
        if inspect.isawaitable(answer):
            answer = await answer
    if isinstance(answer, httpx.Response):
        return answer
    return json_response(200, answer)


@pytest.fixture
def fake() -> FakeVBO:
    return FakeVBO()


def offline_client(version: str = "v8") -> VBOClient:
    """A client used only to decode or to name a target: it never sends (a request would be
    answered 599)."""
    return VBOClient(
        "https://vbo.test:4443",
        username="u",
        password="p",
        api_version=version,
        transport=httpx.MockTransport(lambda request: httpx.Response(599)),
    )


def client_for(handler: Handler | FakeVBO, *, base_url: str = BASE, **options: Any) -> VBOClient:
    """A client speaking to ``handler`` through ``httpx.MockTransport`` (no sockets)."""
    if isinstance(handler, FakeVBO):
        handler = handler.handler
    options.setdefault("retry", FAST)
    options.setdefault("api_version", "v1")  # the fake is a v1 server (auto would probe first)
    options.setdefault("username", USERNAME)
    options.setdefault("password", PASSWORD)
    return VBOClient(base_url, transport=httpx.MockTransport(handler), **options)


@pytest.fixture
async def vbo(fake: FakeVBO) -> AsyncIterator[VBOClient]:
    async with client_for(fake) as client:
        yield client


# --- retries, as the client logs them ------------------------------------------------------------


@contextlib.contextmanager
def recording_retries(keep: Callable[[RetryNote], Any] = lambda note: note) -> Iterator[list[Any]]:
    """Every retry the client schedules meanwhile, read from its debug log records (each carries a
    `RetryNote` whose ``wait_for`` is the planned wait), as ``keep`` of it; the logger's level is
    restored after."""
    seen: list[Any] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            note = getattr(record, "vbo_async_retry", None)
            if isinstance(note, RetryNote):
                seen.append(keep(note))

    logger = logging.getLogger("vbo_async")
    handler, level = Collect(logging.DEBUG), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield seen
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


@pytest.fixture
def retries() -> Iterator[list[RetryNote]]:
    """Every retry the client schedules during the test (see `recording_retries`)."""
    with recording_retries() as seen:
        yield seen


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every ``asyncio.sleep`` delay asked for during the test; the sleeps themselves take no time.

    The client sleeps through ``asyncio.sleep`` between attempts, so this shows the backoff it chose
    (a ``Retry-After`` of 1 s is seen as 1.0 here without a real second passing).
    """
    delays: list[float] = []
    real_sleep = asyncio.sleep

    async def sleep(delay: float, result: Any = None) -> Any:
        delays.append(delay)
        return await real_sleep(0, result)

    monkeypatch.setattr(asyncio, "sleep", sleep)
    return delays


# --- loopback servers ------------------------------------------------------------------------------


def throttling_app(asked: list[str]) -> Callable[..., Awaitable[None]]:
    """An ASGI app answering every HTTP request 429 with ``Retry-After: 30`` (VB365's body),
    appending each request's path to ``asked``."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        asked.append(scope["path"])
        headers = [(b"content-type", b"application/json"), (b"retry-after", b"30")]
        await send({"type": "http.response.start", "status": 429, "headers": headers})
        await send({"type": "http.response.body", "body": b'{"message": "Quota Exceeded"}'})

    return app


def as_asgi(handler: Handler) -> Callable[..., Awaitable[None]]:
    """An ASGI app answering every HTTP request with ``handler`` (an httpx-level handler)."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":  # pragma: no cover - lifespan is off
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        host, port = scope["server"]
        raw_path = scope.get("raw_path") or scope["path"].encode()
        query = scope.get("query_string", b"")
        url = f"{scope['scheme']}://{host}:{port}{raw_path.decode()}" + (
            f"?{query.decode()}" if query else ""
        )
        request = httpx.Request(scope["method"], url, headers=scope["headers"], content=body)
        response = handler(request)
        if inspect.isawaitable(response):
            response = await response
        await send(
            {
                "type": "http.response.start",
                "status": response.status_code,
                "headers": [(k.lower(), v) for k, v in response.headers.raw],
            }
        )
        await send({"type": "http.response.body", "body": response.content})

    return app


@contextlib.asynccontextmanager
async def serve(app: Any, *, certfile: Path | None = None) -> AsyncIterator[int]:
    """Run ``app`` on a real uvicorn server on 127.0.0.1 (an ephemeral port); yield the port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    tls = {"ssl_certfile": str(certfile), "ssl_keyfile": str(certfile)} if certfile else {}
    config = uvicorn.Config(
        app, log_level="warning", lifespan="off", ws="none", http="h11", timeout_graceful_shutdown=2, **tls
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("uvicorn stopped before it started")
            await asyncio.sleep(0.005)
        yield port
    finally:
        server.should_exit = True
        await task
        sock.close()


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def tls_files(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(server key+certificate PEM, CA bundle PEM) for 127.0.0.1 and localhost."""
    folder = tmp_path_factory.mktemp("tls")
    server_pem = folder / "server.pem"
    ca_pem = folder / "ca.pem"
    ca.issue_cert("127.0.0.1", "localhost").private_key_and_cert_chain_pem.write_to_path(str(server_pem))
    ca.cert_pem.write_to_path(str(ca_pem))
    return server_pem, ca_pem


@pytest.fixture
def ca_context(tls_files: tuple[Path, Path]) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(tls_files[1]))


@functools.cache
def _refusing_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock


@pytest.fixture(scope="session", autouse=True)
def refusing_port() -> Iterator[None]:
    """The socket behind `closed_port`, made before any test counts its descriptors and closed
    when the run ends."""
    _refusing_socket()
    yield
    _refusing_socket().close()


def closed_port() -> int:
    """A loopback port that refuses every connection for the whole run: a socket is bound to it
    and never listens. It used to be a port bound then released, free for any process to take
    (the suite run beside this one starts servers on ephemeral ports): a test could find a server
    where it expected a refusal. A port a child process is to listen on is `free_port`'s."""
    return int(_refusing_socket().getsockname()[1])


def free_port() -> int:
    """A loopback port nothing listens on now (bound, then released), for a child process to
    listen on, where its option takes no port 0: another process may take it first (rare), and
    the child then fails to start, saying so."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- how many workers `-n auto` starts (pytest-xdist) ---------------------------------------------------


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """Two workers per core the process may run on, at most 8: about half of the suite's time
    is spent waiting (on child processes, sockets, servers starting), so one worker per core left
    a third of the CPU idle (2 cores: 7.5 min with 2 workers, 5.7 with 4)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return min(8, 2 * cores)


# --- long variants (tests marked slow: the long soak) -----------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--run-slow",
        action="store_true",
        default=False,
        help="also run the tests marked slow (the long soak); VBO_SOAK_LONG=1 does the same",
    )
    parser.addoption(
        "--eager-tasks",
        action="store_true",
        default=False,
        help="run every async test on a loop with asyncio.eager_task_factory (Python 3.12+): a new "
        "task runs at once up to its first suspension, as an application may choose for speed",
    )


@pytest.fixture
async def eager_tasks() -> None:
    """The running loop starts each new task at once, up to its first suspension (Python 3.12+:
    ``loop.set_task_factory(asyncio.eager_task_factory)``); `--eager-tasks` gives it to every
    async test."""
    factory = getattr(asyncio, "eager_task_factory", None)
    if factory is None:
        pytest.skip("asyncio.eager_task_factory is new in Python 3.12")
    asyncio.get_running_loop().set_task_factory(factory)


SLOW_TIMEOUT = 3600
"""Seconds a test marked slow may run (pyproject's ``timeout`` holds every other test)."""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--eager-tasks"):
        for item in items:
            if isinstance(item, pytest.Function) and item.get_closest_marker("asyncio") is not None:
                item.fixturenames.insert(0, "eager_tasks")  # before any fixture makes a task
    if config.getoption("--run-slow") or os.environ.get("VBO_SOAK_LONG") == "1":
        for item in items:  # the long soak runs for minutes: not hung at the suite's timeout
            if "slow" in item.keywords:
                item.add_marker(pytest.mark.timeout(SLOW_TIMEOUT))
        return
    skip = pytest.mark.skip(reason="long variant: run with --run-slow or VBO_SOAK_LONG=1")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


async def settled(before: set[asyncio.Task[Any]]) -> None:
    """Let the event loop run until the tasks are those of ``before`` again (at most 100 steps:
    bounded, no timing), then assert they are."""
    for _ in range(100):
        if asyncio.all_tasks() == before:
            break
        await asyncio.sleep(0)
    assert asyncio.all_tasks() == before


async def assert_closing_ends_waiting_calls(
    vbo: VBOClient, calls: list[Callable[[], Coroutine[Any, Any, Any]]], entered: asyncio.Event
) -> None:
    """``calls``, all started and left waiting on something that never answers (``entered`` is
    set once it is reached), each end with `ClientStateError` when ``vbo`` is closed, and leave
    no task behind."""
    before = asyncio.all_tasks()
    callers = [asyncio.create_task(call()) for call in calls]
    await entered.wait()
    await asyncio.wait_for(vbo.aclose(), timeout=10)  # guards against a hang only
    results = await asyncio.wait_for(asyncio.gather(*callers, return_exceptions=True), timeout=10)
    assert [type(result) for result in results] == [ClientStateError] * len(calls)
    await settled(before)


async def second_caller_after_the_first_is_cancelled(
    call: Callable[[], Coroutine[Any, Any, Any]],
    then: Callable[[], Coroutine[Any, Any, Any]],
    entered: asyncio.Event,
    release: asyncio.Event,
) -> Any:
    """Start ``call`` and wait until it holds a shared request (``entered``); start ``then``,
    which waits for the same; cancel the first caller, then let the request answer
    (``release``): ``then``'s result (a shared request must outlive a cancelled waiter)."""
    first = asyncio.create_task(call())
    await entered.wait()
    second = asyncio.create_task(then())
    for _ in range(5):
        await asyncio.sleep(0)
    first.cancel()
    try:
        await first
    except asyncio.CancelledError:
        pass
    else:  # pragma: no cover - the assertion below says what went wrong
        raise AssertionError("the first caller was not cancelled")
    release.set()
    return await second
