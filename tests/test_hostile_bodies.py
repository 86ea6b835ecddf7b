"""Hostile bodies, through the client: compression bombs, 401 and error pages that never end, a
page of a million items, listings that never end or loop behind query noise.

Every bomb expands to 1 GiB of zeros (`tests.bombs`), served as precomputed bytes over a real
socket (uvicorn on 127.0.0.1, the client's default transport) and through ``httpx.MockTransport``;
the client's ``max_response_bytes`` is 1 MiB and its traced peak must stay below 16 MiB (client
*and* server: both run in this process). Peak RSS is measured in a subprocess of its own
(`rss_growth`), where the peak can be reset before each case (Linux only). As in
``test_hostile``, each scenario is an ``async def scenario_*()`` returning an `Outcome`, so
``python -m tests.reliability_report`` publishes the same runs.

Before the sending path was rebuilt (2ff99dd), httpx decoded every chunk whole (``gzip, gzip``:
1.8 KB in, 1 GiB out), its auth flow read a 401's whole body before the replay, unknown codings
were passed through as identity, a page was parsed whatever its size and a listing was followed
for as long as its ``next`` string changed: each kind of attack below has tests that fail there
(the streamed error pages alone pass there too: identity bodies were bounded already).
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import os
import subprocess
import sys
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from vbo_async import APIError, DecodeError, ResponseTooLargeError
from vbo_async._bodies import MAX_MEMBERS

from .bombs import BOMBS, GIB
from .conftest import FakeVBO, client_for, serve
from .test_hostile import (
    ACCESS,
    FAST,
    App,
    Hostile,
    MiB,
    Outcome,
    Receive,
    Scope,
    Send,
    Streamer,
    client,
    outcome_of,
    read_body,
    respond,
    token_json,
)

LIMIT = MiB
"""``max_response_bytes`` of every client here."""
PEAK = 16 * MiB
"""The most memory a refused body may cost (traced, or RSS growth): 16 x the limit."""
BOMB_NAMES = ("gzip-x2", "gzip-x3", "gzip", "br", "zstd")
"""The bombs of the issue: ``gzip, gzip`` (1.8 KB), three layers, single gzip, br, zstd."""
ROOT = Path(__file__).resolve().parents[1]
HAS_PEAK_RESET = os.access("/proc/self/clear_refs", os.W_OK)


@contextlib.contextmanager
def traced() -> Iterator[list[int]]:
    """tracemalloc for the block; the list gets the peak of traced bytes when it ends."""
    peak: list[int] = []
    tracemalloc.start()
    try:
        yield peak
    finally:
        peak.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()


def answering(status: int, body: bytes, headers: dict[str, str]) -> App:
    """An ASGI app answering every request with ``status``, ``body`` and ``headers``."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await read_body(receive)
        await respond(send, status, body, {"content-type": "application/json", **headers})

    return app


def mock_bomb(header: str, wire: bytes, *, status: int = 200, token: bool = False) -> httpx.MockTransport:
    """A transport answering the API (or, with ``token``, the token endpoint) with a bomb.

    The body is a ``stream``: an ``httpx.Response`` built with ``content=`` decodes itself at once
    (``Response.read()`` in its constructor), and would inflate the bomb in the test itself."""

    def handler(request: httpx.Request) -> httpx.Response:
        is_token = request.url.path.lower().endswith("/token")
        if is_token != token:
            return httpx.Response(200, content=token_json() if is_token else b"[]")
        return httpx.Response(status, stream=httpx.ByteStream(wire), headers={"content-encoding": header})

    return httpx.MockTransport(handler)


# --- 1. compression bombs --------------------------------------------------------------------------


async def scenario_bomb_over_a_socket(name: str) -> Outcome:
    """A 1 GiB bomb as the answer to ``GET /v1/Jobs`` over uvicorn (the default transport)."""
    header, build, _ = BOMBS[name]
    wire = build(GIB)
    app = Hostile(answering(200, wire, {"content-encoding": header}))
    async with serve(app) as port:
        with traced() as peak:
            async with client(f"http://127.0.0.1:{port}", max_response_bytes=LIMIT) as vbo:
                outcome = await outcome_of(
                    f"bomb `{header}` ({len(wire):,} B → 1 GiB), uvicorn",
                    "ResponseTooLargeError",
                    vbo.jobs(),
                )
    outcome.facts.update(wire_bytes=len(wire), api_requests=app.api_requests, peak_traced_bytes=peak[0])
    return outcome


async def scenario_bomb_in_process(name: str) -> Outcome:
    """The same bomb through ``httpx.MockTransport`` (the whole wire in one chunk)."""
    header, build, _ = BOMBS[name]
    wire = build(GIB)
    with traced() as peak:
        async with client(
            "https://vbo.test", max_response_bytes=LIMIT, transport=mock_bomb(header, wire)
        ) as vbo:
            outcome = await outcome_of(f"bomb `{header}`, MockTransport", "ResponseTooLargeError", vbo.jobs())
    outcome.facts.update(wire_bytes=len(wire), peak_traced_bytes=peak[0])
    return outcome


@pytest.mark.parametrize("name", BOMB_NAMES)
async def test_a_bomb_over_a_socket_is_refused_within_bounded_memory(name: str) -> None:
    outcome = await scenario_bomb_over_a_socket(name)
    assert isinstance(outcome.error, ResponseTooLargeError), outcome.error
    assert f"max_response_bytes={LIMIT}" in str(outcome.error)
    assert outcome.facts["api_requests"] == 1  # refused, not retried
    assert outcome.facts["peak_traced_bytes"] < PEAK, outcome.facts


@pytest.mark.parametrize("name", BOMB_NAMES)
async def test_a_bomb_through_a_mock_transport_is_refused_within_bounded_memory(name: str) -> None:
    outcome = await scenario_bomb_in_process(name)
    assert isinstance(outcome.error, ResponseTooLargeError), outcome.error
    assert outcome.facts["peak_traced_bytes"] < PEAK, outcome.facts


UNKNOWN_CODINGS = ["compress", "x-snappy", "gzip, lzma", "identity, exi", "gzip, gzip, gzip, gzip"]


@pytest.mark.parametrize("header", UNKNOWN_CODINGS)
async def test_an_unknown_or_too_deep_coding_is_a_decode_error(header: str) -> None:
    """The body is a valid ``[]``: a client that ignored the header would return no jobs."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/Token"):
            return httpx.Response(200, content=token_json())
        return httpx.Response(200, stream=httpx.ByteStream(b"[]"), headers={"content-encoding": header})

    async with client("https://vbo.test", transport=httpx.MockTransport(handler)) as vbo:
        with pytest.raises(DecodeError, match="Content-Encoding"):
            await vbo.jobs()


async def test_a_corrupt_body_s_error_names_its_codings_not_the_whole_header() -> None:
    """``gzip`` padded with a thousand ``identity`` codings (which are no layer), over a body that
    is no gzip: the error quoted the 10 KB header whole."""
    header = "gzip" + ", identity" * 1000

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/Token"):
            return httpx.Response(200, content=token_json())
        return httpx.Response(200, stream=httpx.ByteStream(b"[]"), headers={"content-encoding": header})

    async with client("https://vbo.test", transport=httpx.MockTransport(handler)) as vbo:
        with pytest.raises(DecodeError, match="not valid gzip: the gzip stream is corrupt") as info:
            await vbo.jobs()
    assert len(str(info.value)) < 1000, len(str(info.value))


async def test_a_body_of_empty_gzip_members_is_refused_after_max_members() -> None:
    """A 200 of 20-byte empty gzip members (3 million fit in 64 MiB) held the event loop for
    10 s and more per request; it is a `DecodeError` once more than `MAX_MEMBERS` have come, and
    the rest of the body is never read."""
    flood = gzip.compress(b"", mtime=0) * (50 * MAX_MEMBERS)
    pulled: list[int] = []

    async def stream() -> AsyncIterator[bytes]:
        for start in range(0, len(flood), 4096):
            pulled.append(start)
            yield flood[start : start + 4096]

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/Token"):
            return httpx.Response(200, content=token_json())
        return httpx.Response(200, content=stream(), headers={"content-encoding": "gzip"})

    async with client("https://vbo.test", transport=httpx.MockTransport(handler)) as vbo:
        with pytest.raises(DecodeError, match=f"not valid gzip: .*more than {MAX_MEMBERS} members"):
            await vbo.jobs()
    assert len(pulled) * 4096 < 2 * MAX_MEMBERS * 20  # refused as it streamed in


# --- peak RSS, in a process of its own ---------------------------------------------------------------


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1])
    raise LookupError(field)  # pragma: no cover - Linux always has both


@contextlib.contextmanager
def rss_peak() -> Iterator[list[int]]:
    """Peak RSS growth (bytes) over the block: the peak is reset to the current RSS first."""
    grown: list[int] = []
    before = _status_kib("VmRSS:")
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    try:
        yield grown
    finally:
        grown.append((_status_kib("VmHWM:") - before) * 1024)


async def measure_bomb(path: str) -> dict[str, Any]:
    """(Run in a subprocess.) The bomb in ``path`` (``{header}\\n{wire}``) as the answer to ``GET
    /v1/Jobs`` over uvicorn, after a small warm-up request: the error class and the peak RSS
    growth in bytes."""
    header, _, wire = (await asyncio.to_thread(Path(path).read_bytes)).partition(b"\n")
    bomb = answering(200, wire, {"content-encoding": header.decode()})
    small = answering(200, b'{"id": "warm-up"}', {})

    async def api(scope: Scope, receive: Receive, send: Send) -> None:
        await (bomb if scope["path"].endswith("/Jobs") else small)(scope, receive, send)

    async with (
        serve(Hostile(api)) as port,
        client(f"http://127.0.0.1:{port}", max_response_bytes=LIMIT) as vbo,
    ):
        await vbo.job("warm-up")  # the token, a connection, the converters
        with rss_peak() as grown:
            outcome = await outcome_of(header.decode(), "ResponseTooLargeError", vbo.jobs())
    return {"raised": outcome.raised, "rss_growth": grown[0]}


async def measure_tiny_items(count: str, max_page_items: str) -> dict[str, Any]:
    """(Run in a subprocess.) A page of ``count`` items ``{"id":"x"}``: the error class and message,
    the body's size and the peak RSS growth while the client fetched it."""
    body = b"[" + b",".join([b'{"id":"x"}'] * int(count)) + b"]"
    options = {"max_page_items": int(max_page_items)} if max_page_items else {}
    fake = FakeVBO()
    fake.route("GET", "/v1/Organizations", httpx.Response(200, content=body))
    fake.route("GET", "/v1/Jobs", [])
    async with client_for(fake, **options) as vbo:
        await vbo.jobs()  # warm-up: the token, the converters
        with rss_peak() as grown:
            outcome = await outcome_of("tiny items", "DecodeError", vbo.organizations())
    return {
        "raised": outcome.raised,
        "message": str(outcome.error),
        "body_bytes": len(body),
        "rss_growth": grown[0],
    }


def in_subprocess(function: str, *args: str) -> Any:
    """Run ``await function(*args)`` of this module in a fresh interpreter; its JSON answer."""
    program = (
        "import asyncio, json, sys\n"
        "from tests import test_hostile_bodies as m\n"
        "print(json.dumps(asyncio.run(getattr(m, sys.argv[1])(*sys.argv[2:]))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program, function, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(done.stdout.splitlines()[-1])


def bomb_rss(name: str, folder: Path) -> dict[str, Any]:
    """`measure_bomb` of the bomb ``name``, in a fresh interpreter."""
    header, build, _ = BOMBS[name]
    path = folder / f"{name}.bomb"
    path.write_bytes(header.encode() + b"\n" + build(GIB))
    return in_subprocess("measure_bomb", str(path))  # type: ignore[no-any-return]


@pytest.mark.skipif(not HAS_PEAK_RESET, reason="needs Linux's peak-RSS reset")
@pytest.mark.parametrize("name", BOMB_NAMES)
def test_a_bomb_over_a_socket_keeps_the_peak_rss_small(name: str, tmp_path: Path) -> None:
    found = bomb_rss(name, tmp_path)
    assert found["raised"] == "ResponseTooLargeError"
    assert found["rss_growth"] < PEAK, f"{name}: peak RSS grew by {found['rss_growth'] / MiB:.1f} MiB"


# --- 2. 401 bodies are never read; error pages and token answers are bounded ------------------------


class IssuesTokens:
    """A token endpoint issuing ``{ACCESS}-1``, ``{ACCESS}-2``, ... (every grant succeeds)."""

    def __init__(self) -> None:
        self.issued: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await read_body(receive)
        self.issued.append(f"{ACCESS}-{len(self.issued) + 1}")
        await respond(send, 200, token_json(self.issued[-1]), {"content-type": "application/json"})


TRANSPORTS = {
    "aiohttp (default)": lambda: None,
    "httpx": lambda: httpx.AsyncHTTPTransport(),
}


async def scenario_401_with_an_endless_body(transport: str = "aiohttp (default)") -> Outcome:
    """The first token is refused with a 401 whose body is 1 GiB, streamed; later tokens work."""
    endless = Streamer(chunks=1024, size=MiB, declare=False, status=401)
    tokens = IssuesTokens()

    async def api(scope: Scope, receive: Receive, send: Send) -> None:
        bearer = dict(scope["headers"]).get(b"authorization", b"")
        if bearer == f"Bearer {tokens.issued[0]}".encode():
            await endless(scope, receive, send)
        else:
            await read_body(receive)
            await respond(send, 200, b"[]", {"content-type": "application/json"})

    app = Hostile(api, token=tokens)
    outcome = Outcome(f"401 with a 1 GiB streamed body ({transport})", "nothing")
    async with serve(app) as port:
        with traced() as peak:
            async with client(
                f"http://127.0.0.1:{port}", max_response_bytes=LIMIT, transport=TRANSPORTS[transport]()
            ) as vbo:
                outcome = await outcome_of(outcome.scenario, outcome.expected, vbo.jobs())
        await asyncio.wait_for(endless.disconnected.wait(), 10)  # the server sees it abandoned
    outcome.facts.update(
        chunks_total=endless.chunks,
        chunks_sent=endless.sent,
        server_finished=endless.finished,
        token_requests=app.token_requests,
        api_requests=app.api_requests,
        peak_traced_bytes=peak[0],
    )
    return outcome


PAGE_ERRORS = {
    ("api", 500): "ServerError",
    ("api", 404): "ResponseTooLargeError",
    ("api", 401): "ResponseTooLargeError",
    ("token", 400): "AuthenticationError",
    ("token", 500): "ServerError",
    ("token", 200): "DecodeError",
}
"""What an answer of a status whose body is past ``max_response_bytes`` raises, by where: the
status decides a 5xx (the server's rest, its retries) and a token endpoint's answer (a refused
password paused, an unreadable token answer rested); any other is refused as too large."""


async def scenario_endless_error_page(where: str, status: int) -> Outcome:
    """A 1 GiB page streamed with ``status`` by the API or the token endpoint (uvicorn)."""
    endless = Streamer(chunks=1024, size=MiB, declare=False, status=status)
    plain = answering(200, b"[]", {})
    app = Hostile(endless, token=IssuesTokens()) if where == "api" else Hostile(plain, token=endless)
    async with serve(app) as port:
        with traced() as peak:
            async with client(f"http://127.0.0.1:{port}", max_response_bytes=LIMIT) as vbo:
                outcome = await outcome_of(
                    f"{where}: {status} page of 1 GiB, streamed", PAGE_ERRORS[where, status], vbo.jobs()
                )
        await asyncio.wait_for(endless.disconnected.wait(), 10)
    outcome.facts.update(
        chunks_total=endless.chunks,
        chunks_sent=endless.sent,
        requests=len(app.requests),
        peak_traced_bytes=peak[0],
    )
    return outcome


async def scenario_bombed_error_page(where: str, status: int, name: str = "gzip-x2") -> Outcome:
    """A bomb as the API's error page, or as the token endpoint's answer (MockTransport)."""
    header, build, _ = BOMBS[name]
    wire = build(GIB)
    transport = mock_bomb(header, wire, status=status, token=where == "token")
    with traced() as peak:
        async with client("https://vbo.test", max_response_bytes=LIMIT, transport=transport) as vbo:
            outcome = await outcome_of(
                f"{where}: {status} answer `{header}` → 1 GiB", PAGE_ERRORS[where, status], vbo.jobs()
            )
    outcome.facts.update(wire_bytes=len(wire), peak_traced_bytes=peak[0])
    return outcome


@pytest.mark.parametrize("transport", list(TRANSPORTS))
async def test_a_401_body_is_never_read_the_token_is_renewed_and_the_request_replayed(
    transport: str,
) -> None:
    outcome = await scenario_401_with_an_endless_body(transport)
    assert outcome.error is None, outcome.error
    facts = outcome.facts
    assert facts["token_requests"] == 2  # the first token, then the renewal
    assert facts["api_requests"] == 2  # the 401, then the replay
    assert not facts["server_finished"]
    assert facts["chunks_sent"] < facts["chunks_total"] // 8  # abandoned, not drained
    assert facts["peak_traced_bytes"] < PEAK, facts


ERROR_PAGES = [("api", 500), ("api", 404), ("token", 400), ("token", 500)]


@pytest.mark.parametrize(("where", "status"), ERROR_PAGES)
async def test_an_endless_error_page_is_refused_within_bounded_memory(where: str, status: int) -> None:
    """Each page is read up to ``max_response_bytes`` and abandoned. A 5xx is retried as a 5xx
    is, whatever its body (each attempt as bounded), and raised as the `ServerError` it is; a
    token endpoint's 400 is the refused password; anything else is not retried."""
    outcome = await scenario_endless_error_page(where, status)
    assert outcome.raised == PAGE_ERRORS[where, status], outcome.error
    if status >= 500:
        assert "(its body could not be read: " in str(outcome.error)
        assert outcome.facts["requests"] <= 1 + FAST.attempts
    else:
        assert outcome.facts["requests"] <= 2  # refused at once: not retried
    assert outcome.facts["chunks_sent"] < outcome.facts["chunks_total"] // 8
    assert outcome.facts["peak_traced_bytes"] < PEAK, outcome.facts


@pytest.mark.parametrize(("where", "status"), [("api", 500), ("api", 401), ("token", 400), ("token", 200)])
async def test_a_bombed_error_page_or_token_answer_is_refused_within_bounded_memory(
    where: str, status: int
) -> None:
    outcome = await scenario_bombed_error_page(where, status)
    assert outcome.raised == PAGE_ERRORS[where, status], outcome.error
    assert f"max_response_bytes={LIMIT}" in str(outcome.error)
    assert outcome.facts["peak_traced_bytes"] < PEAK, outcome.facts


# --- 3. decoded size: items per page, pages per listing, page loops ---------------------------------

MILLION = 1_000_000


def tiny_items(count: int = MILLION) -> bytes:
    """A bare array of ``count`` items ``{"id":"x"}``: 11 bytes an item on the wire."""
    return b"[" + b",".join([b'{"id":"x"}'] * count) + b"]"


async def test_a_page_of_a_million_tiny_items_is_a_decode_error_naming_max_page_items() -> None:
    fake = FakeVBO()
    fake.route("GET", "/v1/Organizations", httpx.Response(200, content=tiny_items()))
    async with client_for(fake) as vbo:
        with pytest.raises(DecodeError, match="max_page_items") as caught:
            await vbo.organizations()
    assert caught.value.url is not None
    assert caught.value.url.endswith("/v1/Organizations")


async def test_max_page_items_is_configurable() -> None:
    fake = FakeVBO()
    fake.route("GET", "/v1/Organizations", httpx.Response(200, content=tiny_items()))
    async with client_for(fake, max_page_items=2 * MILLION) as vbo:
        organizations = await vbo.organizations()
    assert len(organizations) == MILLION
    assert organizations[-1].id == "x"


TINY_ITEMS_RSS_FACTOR = 4
"""Peak RSS growth allowed per byte of the million-item body. The body is held once or twice
(read, joined); its 10^6 containers are more than ``max_page_items`` (50,000) times the 16
containers an item may bring, so it is refused before it is parsed (parsed, ``{"id":"x"}``
takes about 34 bytes per body byte)."""


@pytest.mark.skipif(not HAS_PEAK_RESET, reason="needs Linux's peak-RSS reset")
def test_a_page_of_a_million_tiny_items_costs_memory_proportional_to_its_body() -> None:
    found = in_subprocess("measure_tiny_items", str(MILLION), "")
    assert found["raised"] == "DecodeError"
    assert "max_page_items" in found["message"]
    assert found["rss_growth"] < TINY_ITEMS_RSS_FACTOR * found["body_bytes"], found


async def scenario_endless_listing(max_pages: int = 5) -> Outcome:
    """Every page links to the next, for ever; the client's ``max_pages`` is 5."""
    seen: list[str] = []

    def endless(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params.get("page", "0"))
        seen.append(str(request.url))
        return httpx.Response(
            200,
            json={"results": [{"id": f"j{page}"}], "_links": {"next": {"href": f"/v1/Jobs?page={page + 1}"}}},
        )

    fake = FakeVBO()
    fake.route("GET", "/v1/Jobs", endless)
    async with client_for(fake, max_pages=max_pages) as vbo:
        outcome = await outcome_of(f"`next` for ever, max_pages={max_pages}", "APIError", vbo.jobs())
    outcome.facts.update(pages_requested=len(seen))
    return outcome


def _cased(name: str, n: int) -> str:
    """``name`` with the case of its letters taken from the bits of ``n``."""
    return "".join(c.upper() if n >> i & 1 else c for i, c in enumerate(name))


NOISE = {
    "empty parameters": lambda n: f"/v1/Jobs?page=1{'&' * n}",
    "reordered parameters": lambda n: "/v1/Jobs?" + ("page=1&limit=30" if n % 2 else "limit=30&page=1"),
    "case of names": lambda n: f"/v1/Jobs?{_cased('page', n)}=1",
    "case of the path": lambda n: f"/v1/{_cased('jobs', n)}?page=1",
    "all at once": lambda n: f"/v1/{_cased('jobs', n)}?{'&' * n}limit=30&{_cased('page', n)}=1&x=",
}
"""The ``next`` a looping server sends with its ``n``-th page: the same page each time."""


async def scenario_page_loop(noise: str) -> Outcome:
    """After the entry page, one page whose ``next`` is itself behind `NOISE`: an `APIError`
    naming the loop; a client that does not see the loop gets a 400 after 20 requests."""
    seen: list[str] = []

    def looping(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        if len(seen) > 20:
            return httpx.Response(400, json={"message": "looped"})
        next_href = NOISE[noise](len(seen))
        return httpx.Response(
            200, json={"results": [{"id": f"j{len(seen)}"}], "_links": {"next": {"href": next_href}}}
        )

    fake = FakeVBO()
    fake.route("GET", "/v1/Jobs", looping)  # routes match paths whatever their case
    jobs: list[Any] = []

    async def listing() -> None:
        jobs.extend(await vbo.jobs())

    async with client_for(fake) as vbo:
        outcome = await outcome_of(f"page loop behind {noise}", "APIError", listing())
    outcome.facts.update(pages_requested=len(seen), jobs=[job.id for job in jobs])
    return outcome


async def test_max_pages_ends_a_listing_that_never_ends() -> None:
    outcome = await scenario_endless_listing()
    assert isinstance(outcome.error, APIError), outcome.error
    assert "max_pages=5" in str(outcome.error)
    assert outcome.facts["pages_requested"] == 5


@pytest.mark.parametrize("noise", list(NOISE))
async def test_a_page_loop_behind_query_noise_is_an_error(noise: str) -> None:
    outcome = await scenario_page_loop(noise)
    assert isinstance(outcome.error, APIError), outcome.error
    assert "loops" in str(outcome.error)
    assert outcome.facts["pages_requested"] == 2  # the entry page, then the looping page once
    assert outcome.facts["jobs"] == []


def _token_answering(body: bytes) -> FakeVBO:
    fake = FakeVBO()
    fake.token_script = [httpx.Response(200, content=body)]
    return fake


@pytest.mark.parametrize("where", ["resource", "token"])
async def test_a_single_answer_of_a_million_tiny_objects_is_refused_before_it_is_parsed(where: str) -> None:
    """A single resource or a token answer is held to the bound a page is held to: a body that
    could hold more JSON objects and arrays than ``max_page_items`` items is refused unparsed
    (parsed, a 64 MiB body of ``{}`` took 2 GiB)."""
    fake = _token_answering(tiny_items()) if where == "token" else FakeVBO()
    fake.route("GET", "/v1/Jobs/j1", httpx.Response(200, content=tiny_items()))
    async with client_for(fake) as vbo:
        with pytest.raises(DecodeError, match="max_page_items") as caught:
            await vbo.job("j1")
    assert caught.value.url is not None
    assert caught.value.url.endswith("/v1/Token" if where == "token" else "/v1/Jobs/j1")


async def measure_tiny_resource(count: str) -> dict[str, Any]:
    """(Run in a subprocess.) A single resource of ``count`` items ``{"id":"x"}``: the error
    class and message, the body's size and the peak RSS growth while the client fetched it."""
    body = b"[" + b",".join([b'{"id":"x"}'] * int(count)) + b"]"
    fake = FakeVBO()
    fake.route("GET", "/v1/Jobs/j1", httpx.Response(200, content=body))
    fake.route("GET", "/v1/Jobs", [])
    async with client_for(fake) as vbo:
        await vbo.jobs()  # warm-up: the token, the converters
        with rss_peak() as grown:
            outcome = await outcome_of("tiny resource", "DecodeError", vbo.job("j1"))
    return {
        "raised": outcome.raised,
        "message": str(outcome.error),
        "body_bytes": len(body),
        "rss_growth": grown[0],
    }


DEEP = 200_000
"""Arrays nested this deep: a 400 KB body, well inside the bound on JSON objects and arrays
(`test_a_single_answer_of_a_million_tiny_objects_is_refused_before_it_is_parsed`), so it reaches
the parser; orjson before 3.9.15 had no depth limit and overflowed the C stack on it."""


async def decode_deep_resource(depth: str) -> dict[str, Any]:
    """(Run in a subprocess: a parser without a depth limit kills the interpreter.) A job answered
    with arrays nested ``depth`` deep: the error class and message."""
    nested = b"[" * int(depth) + b"]" * int(depth)
    fake = FakeVBO()
    fake.route("GET", "/v1/Jobs/j1", httpx.Response(200, content=nested))
    async with client_for(fake) as vbo:
        outcome = await outcome_of("deep resource", "DecodeError", vbo.job("j1"))
    return {"raised": outcome.raised, "message": str(outcome.error)}


def test_a_resource_nested_far_too_deeply_is_a_decode_error_not_a_crash() -> None:
    """A server (or a proxy) answering 200,000 nested arrays: a `DecodeError`, as for any body that
    is not JSON the client can read. With orjson 3.9.0 (the declared floor until then) the process
    died of a segmentation fault, a web backend embedding the client with it."""
    found = in_subprocess("decode_deep_resource", str(DEEP))
    assert found["raised"] == "DecodeError"
    assert "not valid JSON" in found["message"]


@pytest.mark.skipif(not HAS_PEAK_RESET, reason="needs Linux's peak-RSS reset")
def test_a_single_resource_of_a_million_tiny_objects_costs_memory_proportional_to_its_body() -> None:
    found = in_subprocess("measure_tiny_resource", str(MILLION))
    assert found["raised"] == "DecodeError"
    assert "max_page_items" in found["message"]
    assert found["rss_growth"] < TINY_ITEMS_RSS_FACTOR * found["body_bytes"], found
