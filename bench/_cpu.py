"""Client CPU per request: raw aiohttp, raw httpx, httpx-shaped clients over aiohttp, and vbo-async.

Issue 12's goal 2: vbo-async's client CPU per request at most 2× raw aiohttp's, at concurrency 1
and 20, plain HTTP and TLS, measured against raw aiohttp and raw httpx in the same run; where
httpx's own Request/Response layer keeps 2× out of reach, measure that floor and say what remains.

The server is a child process (`_cpu_server.py`, one canned v1 job per GET), so
``time.process_time()`` of this process is the client's CPU alone. Every candidate keeps one
connection pool for all its rounds (connections are made in a warm-up); rounds interleave the
candidates in rotated order, values are medians and ratios medians of per-round ratios. The rows
from raw aiohttp down to ``vbo.job()`` each add one layer to the one before, so their per-round
differences say where the CPU of a vbo-async request goes. A second table times the fixed costs
of the request path in-process, over a transport that answers at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib.metadata
import itertools
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import httpx
from _common import Table, fmt_ratio
from _cpu_server import RESPONSE_HEADERS, CpuServer, job_body, serve

from vbo_async import VBOClient
from vbo_async._aiohttp import AiohttpTransport
from vbo_async._bodies import ACCEPT_ENCODING
from vbo_async._version import __version__

try:
    import httpx_aiohttp
except ImportError:  # pragma: no cover - an optional comparison
    httpx_aiohttp = None
    _PACKAGE_VERSION = ""
else:
    _PACKAGE_VERSION = importlib.metadata.version("httpx-aiohttp")

__all__ = ["run"]

Call = Callable[[], Awaitable[object]]
Factory = Callable[[str, Any], contextlib.AbstractAsyncContextManager[Call]]

AIOHTTP = "raw aiohttp.ClientSession"
FLOOR = "raw aiohttp + building httpx.Request and httpx.Response (the floor of an httpx-shaped client)"
ADAPTER = "AiohttpTransport alone: httpx.Request in, body read from the stream"
LEAN = "AiohttpTransport.get alone: the lean GET Sender sends (no httpx.Request or httpx.Response)"
SENDER = "vbo-async Sender.send (slot, timeout, token, bounded read)"
FETCH = "vbo-async fetch_one(url, None) (+ single-flight, JSON parsed)"
JOB = "vbo-async vbo.job(id) (+ decoded into a Job)"
OURS_CLIENT = "httpx.AsyncClient.get + AiohttpTransport"
PACKAGE = f"httpx.AsyncClient.get + httpx_aiohttp.AiohttpTransport {_PACKAGE_VERSION}"
HTTPX = "raw httpx.AsyncClient (httpcore)"
SENDER_HTTPCORE = "vbo-async Sender.send + httpx.AsyncHTTPTransport (httpcore)"

JOB_ID = "8d8c8aab-3a41-4bd4-9c1e-c0f3b5b9d2a1"
JOB_PATH = f"/v1/Jobs/{JOB_ID}"
JOB_IDS = [f"8d8c8aab-3a41-4bd4-9c1e-c0f3b5b9{number:04x}" for number in range(64)]
"""The job ids requests cycle through (the server answers each with the same job): the 20 requests
in flight at once always name different URLs, so vbo-async's single-flight shares none of them."""
KEEPALIVE = 3600.0
LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=100, keepalive_expiry=KEEPALIVE)
"""Every pool keeps its connections while the other candidates run (no reconnecting mid-run)."""
SENT_HEADERS = [
    (b"Accept", b"application/json"),
    (b"Accept-Encoding", ACCEPT_ENCODING.encode("ascii")),
    (b"Connection", b"keep-alive"),
    (b"User-Agent", f"vbo-async/{__version__}".encode("ascii")),
    (b"Authorization", b"Bearer bench-access-token"),
]
"""What `Sender` sends with every API request (the same headers for the rows that build requests)."""
EXTENSIONS = {"timeout": httpx.Timeout(30.0).as_dict()}


# --- the network candidates ----------------------------------------------------------------------


def _urls(base: str) -> itertools.cycle[str]:
    return itertools.cycle([f"{base}/v1/Jobs/{job_id}" for job_id in JOB_IDS])


def _session(context: Any) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(
        ssl=context if context is not None else True, keepalive_timeout=KEEPALIVE
    )
    return aiohttp.ClientSession(connector=connector)


@contextlib.asynccontextmanager
async def _raw_aiohttp(base: str, context: Any) -> AsyncIterator[Call]:
    async with _session(context) as session:
        urls = _urls(base)
        headers = [(key.decode(), value.decode()) for key, value in SENT_HEADERS]

        async def call() -> object:
            async with session.get(next(urls), headers=headers) as response:
                return await response.read()

        yield call


@contextlib.asynccontextmanager
async def _floor(base: str, context: Any) -> AsyncIterator[Call]:
    """Raw aiohttp plus the two httpx objects any httpx-shaped client must build per request:
    the request (URL parsed, headers) and the response around the answer's status, raw headers
    and body. What `AiohttpTransport` and `Sender` do beyond this is theirs."""
    async with _session(context) as session:
        urls = _urls(base)
        headers = [(key.decode(), value.decode()) for key, value in SENT_HEADERS]

        async def call() -> object:
            url = next(urls)
            request = httpx.Request("GET", url, headers=SENT_HEADERS, extensions=EXTENSIONS)
            async with session.get(url, headers=headers) as answer:
                body = await answer.read()
            response = httpx.Response(
                answer.status, headers=answer.raw_headers, content=body, request=request
            )
            return response.content

        yield call


@contextlib.asynccontextmanager
async def _adapter(base: str, context: Any) -> AsyncIterator[Call]:
    async with AiohttpTransport(verify=context or True, limits=LIMITS) as transport:
        urls = _urls(base)

        async def call() -> object:
            request = httpx.Request("GET", next(urls), headers=SENT_HEADERS, extensions=EXTENSIONS)
            response = await transport.handle_async_request(request)
            assert isinstance(response.stream, httpx.AsyncByteStream)
            try:
                return b"".join([chunk async for chunk in response.stream])
            finally:
                await response.aclose()

        yield call


@contextlib.asynccontextmanager
async def _lean(base: str, context: Any) -> AsyncIterator[Call]:
    """`AiohttpTransport.get`, as `Sender` calls it for a bodiless GET: the URL string, the raw
    header list (``Host`` first) and the timeouts, the body read from the stream."""
    async with AiohttpTransport(verify=context or True, limits=LIMITS) as transport:
        urls = _urls(base)
        headers = [(b"Host", httpx.URL(base).netloc), *SENT_HEADERS]
        timeouts = EXTENSIONS["timeout"]

        async def call() -> object:
            reply = await transport.get(next(urls), headers, timeouts)
            try:
                return b"".join([chunk async for chunk in reply.stream])
            finally:
                await reply.aclose()

        yield call


@contextlib.asynccontextmanager
async def _httpx_client(client: httpx.AsyncClient, base: str) -> AsyncIterator[Call]:
    async with client:
        urls = _urls(base)

        async def call() -> object:
            return (await client.get(next(urls))).content

        yield call


def _raw_httpx(base: str, context: Any) -> contextlib.AbstractAsyncContextManager[Call]:
    return _httpx_client(httpx.AsyncClient(verify=context or True, limits=LIMITS), base)


def _ours_client(base: str, context: Any) -> contextlib.AbstractAsyncContextManager[Call]:
    transport = AiohttpTransport(verify=context or True, limits=LIMITS)
    return _httpx_client(httpx.AsyncClient(transport=transport), base)


def _package(base: str, context: Any) -> contextlib.AbstractAsyncContextManager[Call]:
    assert httpx_aiohttp is not None
    transport = httpx_aiohttp.AiohttpTransport(verify=context or True, limits=LIMITS)
    return _httpx_client(httpx.AsyncClient(transport=transport), base)


def _vbo(layer: str, *, httpcore: bool = False) -> Factory:
    """vbo-async as a user gets it (a `VBOClient`, v1, token fetched once), called at ``layer``:
    ``sender`` (`Sender.send`, bytes back), ``fetch`` (`Fetcher.fetch_one` without a model: shared
    in flight, JSON parsed) or ``job`` (``vbo.job(id)``: decoded into a `Job`)."""

    @contextlib.asynccontextmanager
    async def factory(base: str, context: Any) -> AsyncIterator[Call]:
        transport: httpx.AsyncBaseTransport = (
            httpx.AsyncHTTPTransport(verify=context or True, limits=LIMITS, trust_env=False)
            if httpcore
            else AiohttpTransport(verify=context or True, limits=LIMITS)
        )
        async with VBOClient(
            base,
            username="admin",
            password="admin",
            api_version="v1",
            transport=transport,
            max_concurrency=100,
        ) as vbo:
            urls, ids = _urls(base), itertools.cycle(JOB_IDS)
            sender, fetcher = vbo._sender, vbo._fetcher

            async def send() -> object:
                return (await sender.send("GET", next(urls))).body

            async def fetch() -> object:
                return await fetcher.fetch_one(next(urls), None)

            async def job() -> object:
                return await vbo.job(next(ids))

            yield {"sender": send, "fetch": fetch, "job": job}[layer]

    return factory


def _network_candidates() -> dict[str, Factory]:
    candidates: dict[str, Factory] = {
        AIOHTTP: _raw_aiohttp,
        FLOOR: _floor,
        ADAPTER: _adapter,
        LEAN: _lean,
        SENDER: _vbo("sender"),
        FETCH: _vbo("fetch"),
        JOB: _vbo("job"),
        OURS_CLIENT: _ours_client,
        PACKAGE: _package,
        HTTPX: _raw_httpx,
        SENDER_HTTPCORE: _vbo("sender", httpcore=True),
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


# --- fixed costs, in-process ---------------------------------------------------------------------


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


EMPTY = "await of an empty coroutine (subtracted below)"
TIMEOUT = "asyncio.timeout"
SEMAPHORE = "asyncio.Semaphore acquire + release"
TASK = "a task + asyncio.shield (how Flights shared a GET before ce4a75e)"
FLIGHTS = "Flights.run (single-flight as written: a lone caller runs the work itself, no task)"
COOKIES = "httpx Cookies.extract_cookies of one response (httpx.AsyncClient.send does it)"
OBJECTS = "httpx.Request + httpx.Response around a read body"
HTTPX_INSTANT = "httpx.AsyncClient.get over an instant transport"
SENDER_INSTANT = "vbo-async Sender.send over an instant transport"
FETCH_INSTANT = "vbo-async fetch_one(url, None) over an instant transport"
JOB_INSTANT = "vbo-async vbo.job(id) over an instant transport"


async def _fixed_costs(*, rounds: int, number: int) -> dict[str, list[float]]:
    body = job_body()
    base = "https://vbo.test:4443"
    url = base + JOB_PATH
    headers = [*RESPONSE_HEADERS, (b"Content-Length", str(len(body)).encode())]
    loop = asyncio.get_running_loop()

    async def nothing() -> None:
        return None

    async def empty() -> object:
        return await nothing()

    async def with_timeout() -> object:
        async with asyncio.timeout(30.0):
            return await nothing()

    semaphore = asyncio.Semaphore(10)

    async def with_semaphore() -> object:
        async with semaphore:
            return await nothing()

    async def with_task() -> object:
        return await asyncio.shield(loop.create_task(nothing()))

    cookie_request = httpx.Request("GET", url, headers=SENT_HEADERS)
    cookie_response = httpx.Response(200, headers=headers, content=body, request=cookie_request)
    jar = httpx.Cookies()

    async def extract() -> object:
        jar.extract_cookies(cookie_response)
        return None

    async def objects() -> object:
        request = httpx.Request("GET", url, headers=SENT_HEADERS, extensions=EXTENSIONS)
        return httpx.Response(200, headers=headers, content=body, request=request)

    async with contextlib.AsyncExitStack() as stack:
        instant = await stack.enter_async_context(httpx.AsyncClient(transport=_Instant(body)))
        vbo = await stack.enter_async_context(
            VBOClient(base, username="admin", password="admin", api_version="v1", transport=_Instant(body))
        )
        sender, fetcher, flights = vbo._sender, vbo._fetcher, vbo._fetcher._flights

        async def with_flights() -> object:
            return await flights.run((url, None), nothing)

        async def httpx_get() -> object:
            return (await instant.get(url)).content

        async def vbo_send() -> object:
            return (await sender.send("GET", url)).body

        async def vbo_fetch() -> object:
            return await fetcher.fetch_one(url, None)

        async def vbo_job() -> object:
            return await vbo.job(JOB_ID)

        candidates: dict[str, Call] = {
            EMPTY: empty,
            TIMEOUT: with_timeout,
            SEMAPHORE: with_semaphore,
            TASK: with_task,
            FLIGHTS: with_flights,
            COOKIES: extract,
            OBJECTS: objects,
            HTTPX_INSTANT: httpx_get,
            SENDER_INSTANT: vbo_send,
            FETCH_INSTANT: vbo_fetch,
            JOB_INSTANT: vbo_job,
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


# --- reporting -----------------------------------------------------------------------------------


def _ratio(samples: dict[str, list[float]], name: str, over: str) -> float:
    return statistics.median(a / b for a, b in zip(samples[name], samples[over], strict=True))


def _difference(samples: dict[str, list[float]], name: str, minus: str) -> float:
    return statistics.median(a - b for a, b in zip(samples[name], samples[minus], strict=True))


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:,.0f}" if abs(seconds) >= 1e-5 else f"{seconds * 1e6:.2f}"


def _spread(values: list[float]) -> str:
    if len(values) < 4:
        return "n/a"
    q1, _, q3 = statistics.quantiles(values, n=4)
    return f"{(q3 - q1) / statistics.median(values):.0%}"


def _sniffio() -> str:
    try:
        return f"sniffio {importlib.metadata.version('sniffio')} is installed"
    except importlib.metadata.PackageNotFoundError:
        return (
            "sniffio is NOT installed, so every httpcore request retries a failing import several times "
            "(encode/httpcore#1103): the httpcore rows are slower than httpx can be"
        )


def run(*, smoke: bool) -> list[str]:
    """Print the client-CPU tables; return the verdicts."""
    rounds, requests, micro_rounds, micro_number = (1, 40, 1, 50) if smoke else (15, 400, 15, 2000)
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
        f"Client CPU per request (µs, median of {rounds} interleaved rounds of {requests} requests at "
        f"c=20, {requests // 2} at c=1) and its ratios to raw aiohttp and to raw httpx in the same rounds",
        ["candidate", *(f"{labels[cfg]}: µs · ×aiohttp · ×httpx" for cfg in configs)],
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
        "(bench/_cpu_server.py) runs in its own process. One GET of a ~1.5 KiB v1 job per request, with "
        "the headers vbo-async sends (bearer token included) for every row that sets its own, cycling "
        "through 64 job URLs (so that single-flight never shares two of the 20 requests in flight); TLS "
        "with a trustme CA in an `ssl.SSLContext`; connections made before timing; vbo-async with "
        "`max_concurrency=100` so that its slot never queues the 20 workers. From `Sender.send` on, each "
        "row adds a layer to the one above; `Sender.send` sends its GETs through `AiohttpTransport.get` "
        "(the row above it), not through the two rows above that. IQR/median of the raw-aiohttp samples: "
        + ", ".join(f"{labels[cfg]} {_spread(results[cfg][AIOHTTP])}" for cfg in configs)
        + f". {_sniffio()}."
    )
    table.print()

    parts = Table(
        "Where the CPU of one vbo-async request goes (µs per request, medians of per-round differences "
        "between the rows above)",
        ["layer", *(labels[cfg] for cfg in configs)],
    )
    layers = [
        ("aiohttp on the wire (raw aiohttp)", AIOHTTP, None),
        ("httpx.Request + httpx.Response objects (the floor above aiohttp)", FLOOR, AIOHTTP),
        ("AiohttpTransport's own work (headers, URL, stream, timeouts)", ADAPTER, FLOOR),
        ("AiohttpTransport.get, the lean GET: its work above raw aiohttp", LEAN, AIOHTTP),
        ("Sender.send: slot, timeout, token, bounded read, Answer (above the lean GET)", SENDER, LEAN),
        ("single-flight (no task for a lone caller) and JSON parsing", FETCH, SENDER),
        ("decoding the job into a Job", JOB, FETCH),
    ]
    for label, name, minus in layers:
        cells = []
        for cfg in configs:
            samples = results[cfg]
            if minus is None:
                cells.append(_us(statistics.median(samples[name])))
            else:
                cells.append(_us(_difference(samples, name, minus)))
        parts.add(label, *cells)
    for label, name in (("total: Sender.send", SENDER), ("total: vbo.job(id)", JOB)):
        parts.add(label, *(_us(statistics.median(results[cfg][name])) for cfg in configs))
    parts.add(
        "2× raw aiohttp (the goal)", *(_us(2 * statistics.median(results[cfg][AIOHTTP])) for cfg in configs)
    )
    parts.add(
        "Sender.send − the floor (what vbo-async and its transport add)",
        *(_us(_difference(results[cfg], SENDER, FLOOR)) for cfg in configs),
    )
    parts.notes.append(
        "Each layer is the difference between two rows of the table above measured in the same round; "
        "small negative values are noise."
    )
    parts.print()

    reference = statistics.median(results[(False, 1)][AIOHTTP])
    base_cost = statistics.median(fixed[EMPTY])
    fixed_table = Table(
        f"Fixed costs in the request path, in-process (µs CPU per operation, median of {micro_rounds} "
        f"rounds of {micro_number}); share = net cost over raw aiohttp's request (plain, c=1: "
        f"{_us(reference)} µs)",
        ["operation", "µs", "net of an empty await", "share of a raw aiohttp request"],
    )
    for name, values in fixed.items():
        cost = statistics.median(values)
        net = cost - base_cost if name != EMPTY else cost
        fixed_table.add(name, _us(cost), _us(net), f"{net / reference:.0%}")
    fixed_table.notes.append(
        "Instant transport: an httpx transport answering with the canned job at once, so these rows "
        "are httpx's and vbo-async's own work per request with no network and no transport. vbo-async "
        "builds its requests itself and hands them to the transport (`Sender`), so `httpx.AsyncClient.send` "
        "(cookies, redirects, auth flows, event hooks) is not on its path; `Flights.run` is paid only "
        "by `fetch_one` (every navigation GET), not by `Sender.send`."
    )
    fixed_table.print()

    verdicts = []
    for name in (SENDER, FETCH, JOB, FLOOR):
        ratios = {labels[cfg]: _ratio(results[cfg], name, AIOHTTP) for cfg in configs}
        worst = max(ratios, key=lambda label: ratios[label])
        verdict = "MET" if ratios[worst] <= 2 else "NOT MET"
        goal = f"goal ≤ 2× → {verdict}" if name != FLOOR else "the floor, for reference"
        verdicts.append(
            f"client CPU, {name}: {', '.join(f'{k} {fmt_ratio(v)}' for k, v in ratios.items())} of raw "
            f"aiohttp (worst {worst}); {goal}"
        )
    for line in verdicts:
        print("*", line)
    print()
    return verdicts
