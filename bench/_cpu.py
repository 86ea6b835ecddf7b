"""Client CPU per request: raw aiohttp, raw httpx, httpx over `AiohttpTransport`, vbo-async, and fixed costs.

The server is a child process (`_cpu_server.py`), so ``time.process_time()`` of this process is the
client's CPU alone: a shared machine's load shows up in wall time, much less in CPU time. Every
candidate keeps one pool for all its rounds (connections are made in a warm-up); rounds interleave
the candidates in rotated order and ratios are medians of per-round ratios, so a slow moment of the
machine weighs on both sides of a ratio. The fixed costs of vbo-async's request path are measured
the same way in-process, with no network at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib.metadata
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import stamina
from _common import Table, fmt_ratio
from _cpu_server import RESPONSE_HEADERS, CpuServer, job_body, serve

from vbo_async import RetryPolicy, VBOClient
from vbo_async._aiohttp import AiohttpTransport

try:
    import httpx_aiohttp
except ImportError:  # pragma: no cover - an optional comparison
    httpx_aiohttp = None
    _PACKAGE_VERSION = ""
else:
    _PACKAGE_VERSION = importlib.metadata.version("httpx-aiohttp")

__all__ = ["run"]

Call = Callable[[], Awaitable[object]]

AIOHTTP = "raw aiohttp.ClientSession"
HTTPX = "raw httpx.AsyncClient (httpcore)"
OURS = "httpx.AsyncClient + AiohttpTransport"
OURS_NO_COOKIES = "httpx.AsyncClient + AiohttpTransport, no cookie extraction"
ADAPTER = "AiohttpTransport alone: httpx.Request in, Response.aread()"
ADAPTER_BARE = "AiohttpTransport alone: one Request reused, stream read directly"
PACKAGE = f"httpx.AsyncClient + httpx_aiohttp.AiohttpTransport {_PACKAGE_VERSION}"
VBO_OURS = "vbo-async send() + AiohttpTransport"
VBO_OURS_NO_COOKIES = "vbo-async send() + AiohttpTransport, no cookie extraction"
VBO_TODAY = "vbo-async send() + httpcore (today)"
JOB_PATH = "/v1/Jobs/8d8c8aab-3a41-4bd4-9c1e-c0f3b5b9d2a1"
KEEPALIVE = 3600.0
LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=100, keepalive_expiry=KEEPALIVE)
"""Every pool keeps its connections while the other candidates run (no reconnecting mid-run)."""


class _NoCookies(httpx.Cookies):
    """A cookie store that keeps nothing: `extract_cookies` (run on every response) does no work."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


def _client_headers() -> httpx.Headers:
    """The headers an httpx client sends by default (Accept, Accept-Encoding, Connection, User-Agent)."""
    with httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(204))) as client:
        return client.headers


def _without_cookies(client: httpx.AsyncClient) -> httpx.AsyncClient:
    # httpx has no switch for this; the store is swapped where `_send_single_request` reads it.
    client._cookies = _NoCookies()
    return client


# --- the network candidates ----------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def _raw_aiohttp(base: str, context: Any) -> AsyncIterator[Call]:
    connector = aiohttp.TCPConnector(
        ssl=context if context is not None else True, keepalive_timeout=KEEPALIVE
    )
    async with aiohttp.ClientSession(connector=connector) as session:
        url = base + JOB_PATH

        async def call() -> object:
            async with session.get(url) as response:
                return await response.read()

        yield call


@contextlib.asynccontextmanager
async def _httpx_client(client: httpx.AsyncClient, base: str) -> AsyncIterator[Call]:
    async with client:
        url = base + JOB_PATH

        async def call() -> object:
            return (await client.get(url)).content

        yield call


def _raw_httpx(base: str, context: Any) -> contextlib.AbstractAsyncContextManager[Call]:
    return _httpx_client(httpx.AsyncClient(verify=context or True, limits=LIMITS), base)


def _ours(base: str, context: Any) -> contextlib.AbstractAsyncContextManager[Call]:
    transport = AiohttpTransport(verify=context or True, limits=LIMITS)
    return _httpx_client(httpx.AsyncClient(transport=transport), base)


def _ours_no_cookies(base: str, context: Any) -> contextlib.AbstractAsyncContextManager[Call]:
    transport = AiohttpTransport(verify=context or True, limits=LIMITS)
    return _httpx_client(_without_cookies(httpx.AsyncClient(transport=transport)), base)


def _package(base: str, context: Any) -> contextlib.AbstractAsyncContextManager[Call]:
    assert httpx_aiohttp is not None
    transport = httpx_aiohttp.AiohttpTransport(verify=context or True, limits=LIMITS)
    return _httpx_client(httpx.AsyncClient(transport=transport), base)


@contextlib.asynccontextmanager
async def _adapter(base: str, context: Any) -> AsyncIterator[Call]:
    headers = _client_headers()
    async with AiohttpTransport(verify=context or True, limits=LIMITS) as transport:
        url = httpx.URL(base + JOB_PATH)

        async def call() -> object:
            request = httpx.Request("GET", url, headers=headers)
            response = await transport.handle_async_request(request)
            return await response.aread()

        yield call


@contextlib.asynccontextmanager
async def _adapter_bare(base: str, context: Any) -> AsyncIterator[Call]:
    request = httpx.Request("GET", base + JOB_PATH, headers=_client_headers())
    async with AiohttpTransport(verify=context or True, limits=LIMITS) as transport:

        async def call() -> object:
            response = await transport.handle_async_request(request)
            assert isinstance(response.stream, httpx.AsyncByteStream)
            body = b"".join([chunk async for chunk in response.stream])
            await response.stream.aclose()
            return body

        yield call


def _vbo(
    ours: bool, *, cookies: bool = True
) -> Callable[[str, Any], contextlib.AbstractAsyncContextManager[Call]]:
    @contextlib.asynccontextmanager
    async def factory(base: str, context: Any) -> AsyncIterator[Call]:
        async with VBOClient(
            base,
            username="admin",
            password="admin",
            verify=context or True,
            transport=(
                AiohttpTransport(verify=context or True, limits=LIMITS)
                if ours
                else httpx.AsyncHTTPTransport(verify=context or True, limits=LIMITS)
            ),
            max_concurrency=100,
            retry=RetryPolicy(),
        ) as vbo:
            url = base + JOB_PATH
            fetcher = vbo._fetcher
            if not cookies:
                _without_cookies(fetcher._http)

            async def call() -> object:
                return (await fetcher.send("GET", url)).body

            yield call

    return factory


def _network_candidates() -> dict[str, Callable[[str, Any], contextlib.AbstractAsyncContextManager[Call]]]:
    candidates = {
        AIOHTTP: _raw_aiohttp,
        HTTPX: _raw_httpx,
        OURS: _ours,
        OURS_NO_COOKIES: _ours_no_cookies,
        ADAPTER: _adapter,
        ADAPTER_BARE: _adapter_bare,
        PACKAGE: _package,
        VBO_OURS: _vbo(True),
        VBO_OURS_NO_COOKIES: _vbo(True, cookies=False),
        VBO_TODAY: _vbo(False),
    }
    if httpx_aiohttp is None:
        del candidates[PACKAGE]
    return candidates


async def _batch(call: Call, requests: int, concurrency: int) -> float:
    """Client CPU seconds per request over ``requests`` requests, ``concurrency`` at a time."""
    each = max(1, requests // concurrency)

    async def worker() -> None:
        for _ in range(each):
            await call()

    gc.collect()
    started = time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return (time.process_time() - started) / (each * concurrency)


async def _measure_network(
    server: CpuServer, *, tls: bool, concurrency: int, rounds: int, requests: int
) -> dict[str, list[float]]:
    base = server.base_url(tls=tls)
    context = server.client_context() if tls else None
    samples: dict[str, list[float]] = {}
    async with contextlib.AsyncExitStack() as stack:
        calls = {
            name: await stack.enter_async_context(factory(base, context))
            for name, factory in _network_candidates().items()
        }
        for call in calls.values():  # every connection of the pool made before timing
            await _batch(call, 5 * concurrency + 20, concurrency)
        names = list(calls)
        for start in range(rounds):
            for name in names[start % len(names) :] + names[: start % len(names)]:
                samples.setdefault(name, []).append(await _batch(calls[name], requests, concurrency))
    return samples


# --- fixed costs, in-process ---------------------------------------------------------------------------


class _Instant(httpx.AsyncBaseTransport):
    """Answers every request at once with the canned job: httpx without any network."""

    def __init__(self, body: bytes) -> None:
        self._body = body
        self._headers = [*RESPONSE_HEADERS, (b"Content-Length", str(len(body)).encode())]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.lower().endswith("/token"):
            token = b'{"access_token":"a","token_type":"bearer","expires_in":3599,"refresh_token":"r"}'
            return httpx.Response(200, headers={"Content-Type": "application/json"}, content=token)
        return httpx.Response(200, headers=self._headers, stream=httpx.ByteStream(self._body))


BASELINE = "await of an empty coroutine (subtracted below)"
STAMINA = "stamina.retry_context, entered as the fetcher does"
TIMEOUT = "asyncio.timeout"
SHIELD = "a task + asyncio.shield"
SHARED = "Fetcher.shared (single-flight as written)"
SEMAPHORE = "asyncio.Semaphore acquire + release"
COOKIES = "httpx Cookies.extract_cookies of one response"
FLOOR = "httpx.Request + httpx.Response around a read body"
HTTPX_INSTANT = "httpx.AsyncClient.get over an instant transport"
HTTPX_INSTANT_NO_COOKIES = "httpx.AsyncClient.get, instant, no cookie extraction"
VBO_INSTANT = "vbo-async send() over an instant transport"


async def _fixed_costs(*, rounds: int, number: int) -> dict[str, list[float]]:
    body = job_body()
    base = "https://vbo.test:4443"
    url = base + JOB_PATH
    headers = [*RESPONSE_HEADERS, (b"Content-Length", str(len(body)).encode())]
    client_headers = _client_headers()
    loop = asyncio.get_running_loop()

    async def nothing() -> None:
        return None

    async def empty() -> object:
        return await nothing()

    def backoff(exc: Exception) -> bool:
        return False

    async def with_stamina() -> object:
        async for attempt in stamina.retry_context(
            on=backoff, attempts=4, timeout=120.0, wait_initial=0.1, wait_max=5.0, wait_jitter=0.5
        ):
            with attempt:
                return await nothing()
        raise AssertionError("unreachable")

    async def with_timeout() -> object:
        async with asyncio.timeout(30.0):
            return await nothing()

    async def with_shield() -> object:
        return await asyncio.shield(loop.create_task(nothing()))

    semaphore = asyncio.Semaphore(10)

    async def with_semaphore() -> object:
        async with semaphore:
            return await nothing()

    cookie_request = httpx.Request("GET", url, headers=client_headers)
    cookie_response = httpx.Response(200, headers=headers, content=body, request=cookie_request)
    jar = httpx.Cookies()

    async def extract() -> object:
        jar.extract_cookies(cookie_response)
        return None

    async def floor() -> object:
        request = httpx.Request("GET", url, headers=client_headers)
        return httpx.Response(200, headers=headers, content=body, request=request)

    async with contextlib.AsyncExitStack() as stack:
        instant = await stack.enter_async_context(httpx.AsyncClient(transport=_Instant(body)))
        bare = await stack.enter_async_context(_without_cookies(httpx.AsyncClient(transport=_Instant(body))))
        vbo = await stack.enter_async_context(
            VBOClient(base, username="admin", password="admin", transport=_Instant(body), retry=RetryPolicy())
        )
        fetcher = vbo._fetcher

        async def with_shared() -> object:
            return await fetcher.shared((url, None), nothing)

        async def httpx_get() -> object:
            return (await instant.get(url)).content

        async def httpx_get_bare() -> object:
            return (await bare.get(url)).content

        async def vbo_send() -> object:
            return (await fetcher.send("GET", url)).body

        candidates: dict[str, Call] = {
            BASELINE: empty,
            STAMINA: with_stamina,
            TIMEOUT: with_timeout,
            SHIELD: with_shield,
            SHARED: with_shared,
            SEMAPHORE: with_semaphore,
            COOKIES: extract,
            FLOOR: floor,
            HTTPX_INSTANT: httpx_get,
            HTTPX_INSTANT_NO_COOKIES: httpx_get_bare,
            VBO_INSTANT: vbo_send,
        }
        for fn in candidates.values():
            await fn()
        samples: dict[str, list[float]] = {name: [] for name in candidates}
        names = list(candidates)
        for start in range(rounds):
            for name in names[start % len(names) :] + names[: start % len(names)]:
                fn = candidates[name]
                gc.collect()
                began = time.process_time()
                for _ in range(number):
                    await fn()
                samples[name].append((time.process_time() - began) / number)
    return samples


# --- reporting -----------------------------------------------------------------------------------------


def _ratio(samples: dict[str, list[float]], name: str, over: str) -> float:
    return statistics.median(a / b for a, b in zip(samples[name], samples[over], strict=True))


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:,.0f}" if seconds >= 1e-5 else f"{seconds * 1e6:.2f}"


def _spread(values: list[float]) -> str:
    if len(values) < 4:
        return "n/a"
    q1, _, q3 = statistics.quantiles(values, n=4)
    return f"{(q3 - q1) / statistics.median(values):.0%}"


def run(*, smoke: bool) -> list[str]:
    """Print the client-CPU tables; return the verdicts."""
    rounds, requests, micro_rounds, micro_number = (1, 20, 1, 50) if smoke else (9, 400, 15, 2000)
    command = "python bench/run.py cpu" + (" --smoke" if smoke else "")
    configs = [(tls, concurrency) for tls in (False, True) for concurrency in (1, 20)]
    results: dict[tuple[bool, int], dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory() as folder, serve(Path(folder)) as server:
        for tls, concurrency in configs:
            began = time.perf_counter()
            results[(tls, concurrency)] = asyncio.run(
                _measure_network(
                    server,
                    tls=tls,
                    concurrency=concurrency,
                    rounds=rounds,
                    requests=requests if concurrency > 1 else requests // 2,
                )
            )
            took = time.perf_counter() - began
            label = "TLS" if tls else "plain"
            print(f"({label}, concurrency {concurrency}: {took:.0f} s)", file=sys.stderr, flush=True)
    fixed = asyncio.run(_fixed_costs(rounds=micro_rounds, number=micro_number))

    names = list(next(iter(results.values())))
    labels = {cfg: f"{'TLS' if cfg[0] else 'plain'} c={cfg[1]}" for cfg in configs}
    table = Table(
        f"Client CPU per request (µs, median of {rounds} interleaved rounds of {requests} requests "
        f"at c=20, {requests // 2} at c=1) and ratios to raw aiohttp / raw httpx of the same round",
        ["candidate", *(f"{labels[cfg]}: µs, ×aiohttp, ×httpx" for cfg in configs)],
    )
    for name in names:
        cells = []
        for cfg in configs:
            samples = results[cfg]
            cells.append(
                f"{_us(statistics.median(samples[name]))} · {fmt_ratio(_ratio(samples, name, AIOHTTP))}"
                f" · {fmt_ratio(_ratio(samples, name, HTTPX))}"
            )
        table.add(name, *cells)
    table.notes.append(
        f"Command: `{command}`. Client CPU is `time.process_time()` of the benchmark process; the server "
        "(bench/_cpu_server.py) runs in its own process. One GET of a ~1.5 KiB v1 job per request; "
        "TLS with a trustme CA in an `ssl.SSLContext`; connections made before timing. IQR/median of the "
        "raw-aiohttp samples: "
        + ", ".join(f"{labels[cfg]} {_spread(results[cfg][AIOHTTP])}" for cfg in configs)
        + ". No cookie extraction: the client's `Cookies` replaced by one whose `extract_cookies` "
        "does nothing."
    )
    table.print()

    parts = Table(
        "Where the CPU of one vbo-async request over AiohttpTransport goes (µs, medians of per-round "
        "differences)",
        ["layer", *(labels[cfg] for cfg in configs)],
    )
    layers = [
        ("aiohttp on the wire (raw aiohttp)", AIOHTTP, None),
        ("AiohttpTransport's own work", ADAPTER_BARE, AIOHTTP),
        ("building the httpx.Request, Response.aread() (the seam)", ADAPTER, ADAPTER_BARE),
        ("httpx.AsyncClient.send but for cookie extraction", OURS_NO_COOKIES, ADAPTER),
        ("httpx cookie extraction", OURS, OURS_NO_COOKIES),
        ("vbo-async's own request path (send())", VBO_OURS, OURS),
    ]
    for label, name, minus in layers:
        cells = []
        for cfg in configs:
            samples = results[cfg]
            if minus is None:
                cells.append(_us(statistics.median(samples[name])))
            else:
                diffs = [a - b for a, b in zip(samples[name], samples[minus], strict=True)]
                cells.append(_us(statistics.median(diffs)))
        parts.add(label, *cells)
    parts.add(
        "total: vbo-async send() + AiohttpTransport",
        *(_us(statistics.median(results[cfg][VBO_OURS])) for cfg in configs),
    )
    parts.add(
        "2× raw aiohttp (the goal)", *(_us(2 * statistics.median(results[cfg][AIOHTTP])) for cfg in configs)
    )
    parts.notes.append(
        "Each layer is the difference between two rows of the table above measured in the same round; "
        "small negative values are noise."
    )
    parts.print()

    reference = results[(False, 1)][AIOHTTP]
    base_cost = statistics.median(fixed[BASELINE])
    aiohttp_c1 = statistics.median(reference)
    fixed_table = Table(
        f"Fixed costs in the request path, in-process (µs CPU per operation, median of {micro_rounds} "
        f"rounds of {micro_number}); share = net cost over raw aiohttp's request (plain, c=1: "
        f"{_us(aiohttp_c1)} µs)",
        ["operation", "µs", "net of an empty await", "share of a raw aiohttp request"],
    )
    for name, values in fixed.items():
        cost = statistics.median(values)
        net = cost - base_cost if name != BASELINE else cost
        fixed_table.add(name, _us(cost), _us(net), f"{net / aiohttp_c1:.0%}")
    fixed_table.notes.append(
        "Instant transport: an httpx transport answering with the canned job at once, so these rows "
        "are httpx's (and vbo-async's) own work per request with no network or transport at all."
    )
    fixed_table.print()

    verdicts = []
    for name in (OURS_NO_COOKIES, OURS, VBO_OURS_NO_COOKIES, VBO_OURS, VBO_TODAY):
        ratios = {labels[cfg]: _ratio(results[cfg], name, AIOHTTP) for cfg in configs}
        worst = max(ratios, key=lambda label: ratios[label])
        verdicts.append(
            f"client CPU, {name}: {', '.join(f'{k} {fmt_ratio(v)}' for k, v in ratios.items())} of raw "
            f"aiohttp (worst {worst}); goal ≤ 2× → {'MET' if ratios[worst] <= 2 else 'NOT MET'}"
        )
    for line in verdicts:
        print("*", line)
    print()
    return verdicts
