"""`AiohttpTransport` over a real uvicorn server on 127.0.0.1: wire fidelity, TLS, errors, pool, cancellation.

The server counts the connections it accepts (a subclass of uvicorn's h11 protocol), so pool limits
and connection reuse are checked where they happen. Handlers that must hang wait for the client to
go away (``http.disconnect``), so nothing outlives a test and "no stray tasks" can be checked by
comparing the loop's tasks before and after.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import gzip
import json
import socket
import ssl
import traceback
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import aiohttp
import attrs
import httpx
import pytest
import uvicorn
from aiohttp import client_proto, http_parser
from uvicorn.protocols.http.h11_impl import H11Protocol

from vbo_async import RetryPolicy, TransportError, VBOClient
from vbo_async._aiohttp import AiohttpTransport

from .conftest import FAST, PASSWORD, USERNAME, FakeVBO, as_asgi, closed_port, serve
from .raw_http import serve_raw

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

GZIPPED = gzip.compress(b"0" * 1_000_000)
"""A megabyte of zeros in about a kilobyte: the transport must hand over the kilobyte."""


@attrs.define
class Counts:
    """What the server saw: connections open now and at most, connections made, requests in flight."""

    open: int = 0
    peak_open: int = 0
    made: int = 0
    in_flight: int = 0
    peak_in_flight: int = 0
    released: asyncio.Event = attrs.Factory(asyncio.Event)
    """Set by a test to let `/gated` send the rest of its body."""
    arrived: asyncio.Event = attrs.Factory(asyncio.Event)
    """Set by the server when a request has arrived."""


async def read_body(receive: Receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


async def until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def respond(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] = []) -> None:  # noqa: B006
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def make_app(counts: Counts) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        path = scope["path"]
        body = await read_body(receive)
        counts.in_flight += 1
        counts.peak_in_flight = max(counts.peak_in_flight, counts.in_flight)
        counts.arrived.set()
        try:
            if path == "/echo":
                seen = {
                    "method": scope["method"],
                    "raw_path": scope["raw_path"].decode(),
                    "query": scope["query_string"].decode(),
                    "headers": [[k.decode(), v.decode()] for k, v in scope["headers"]],
                    "body": body.decode("latin-1"),
                }
                await respond(send, 200, json.dumps(seen).encode(), [(b"content-type", b"application/json")])
            elif path == "/gzip":
                await respond(send, 200, GZIPPED, [(b"content-encoding", b"gzip")])
            elif path == "/v1/Token":
                token = {"access_token": "a", "token_type": "bearer", "expires_in": 3599}
                await respond(send, 200, json.dumps(token).encode(), [(b"content-type", b"application/json")])
            elif path == "/cookie":
                await respond(send, 200, b"", [(b"set-cookie", b"session=s3cret; Path=/")])
            elif path == "/redirect":
                await respond(send, 302, b"", [(b"location", b"/echo")])
            elif path == "/hold":
                await asyncio.sleep(0.02)
                await respond(send, 200, b"held")
            elif path == "/silent":  # never answers
                await until_disconnect(receive)
            elif path in ("/cut", "/short", "/v1/Jobs", "/stalled", "/gated"):
                declared = [(b"content-length", b"2000")] if path in ("/short", "/v1/Jobs") else []
                await send({"type": "http.response.start", "status": 200, "headers": declared})
                await send({"type": "http.response.body", "body": b"x" * 1000, "more_body": True})
                if path == "/stalled":
                    await until_disconnect(receive)
                    return
                if path == "/gated":
                    await counts.released.wait()
                    await send({"type": "http.response.body", "body": b"y" * 1000})
                    return
                # uvicorn closes the connection of an app that fails after its answer started.
                raise RuntimeError("connection dropped on purpose")
            else:
                await respond(send, 404, b"")
        finally:
            counts.in_flight -= 1

    return app


@contextlib.asynccontextmanager
async def server(*, certfile: Path | None = None) -> AsyncIterator[tuple[str, Counts]]:
    """A uvicorn server on 127.0.0.1 (ephemeral port): yields its base URL and its `Counts`."""
    counts = Counts()

    class Counting(H11Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            counts.open += 1
            counts.made += 1
            counts.peak_open = max(counts.peak_open, counts.open)
            super().connection_made(transport)  # type: ignore[arg-type]

        def connection_lost(self, exc: Exception | None) -> None:
            counts.open -= 1
            super().connection_lost(exc)

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    tls = {"ssl_certfile": str(certfile), "ssl_keyfile": str(certfile)} if certfile else {}
    config = uvicorn.Config(
        make_app(counts),
        log_level="critical",
        lifespan="off",
        ws="none",
        http=Counting,
        timeout_graceful_shutdown=2,
        **tls,  # type: ignore[arg-type]
    )
    instance = uvicorn.Server(config)
    task = asyncio.create_task(instance.serve(sockets=[sock]))
    try:
        while not instance.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.005)
        yield f"{'https' if certfile else 'http'}://127.0.0.1:{port}", counts
    finally:
        counts.released.set()
        instance.should_exit = True
        await task
        sock.close()


@pytest.fixture
async def plain() -> AsyncIterator[tuple[str, Counts]]:
    async with server() as running:
        yield running


@pytest.fixture
async def tls(tls_files: tuple[Path, Path]) -> AsyncIterator[tuple[str, Counts]]:
    async with server(certfile=tls_files[0]) as running:
        yield running


def causes(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(chain) < 10:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


async def settled(before: set[asyncio.Task[Any]]) -> set[asyncio.Task[Any]]:
    """Tasks that are not in ``before`` and still alive after up to ten seconds (the server's
    handler of a connection the client dropped sees the disconnect and ends; one second was
    short for a loaded machine)."""
    current = asyncio.current_task()
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        extra = {t for t in asyncio.all_tasks() if t not in before and t is not current and not t.done()}
        if not extra or asyncio.get_running_loop().time() > deadline:
            return extra
        await asyncio.sleep(0.005)


# --- what goes on the wire --------------------------------------------------------------------------


async def test_get_and_post_json_and_form_through_an_httpx_client(plain: tuple[str, Counts]) -> None:
    base, counts = plain
    async with httpx.AsyncClient(transport=AiohttpTransport(), base_url=base) as client:
        got = (await client.get("/echo", params={"q": "a b"})).json()
        sent = client.build_request("GET", "/echo", params={"q": "a b"}).url.query.decode()
        posted_json = (await client.post("/echo", json={"name": "Mail", "n": [1, 2]})).json()
        posted_form = await client.post("/echo", data={"grant_type": "password", "username": "LAB\\svc"})
    assert got["method"] == "GET"
    assert got["query"] == sent  # q=a+b; httpx before 0.28 wrote q=a%20b
    assert posted_json["method"] == "POST"
    assert json.loads(posted_json["body"]) == {"name": "Mail", "n": [1, 2]}
    assert ["content-type", "application/json"] in posted_json["headers"]
    form = posted_form.json()
    assert form["body"] == "grant_type=password&username=LAB%5Csvc"
    assert ["content-type", "application/x-www-form-urlencoded"] in form["headers"]
    assert posted_form.http_version == "HTTP/1.1"
    assert posted_form.reason_phrase == "OK"
    assert counts.made == 1  # one keep-alive connection for all three


async def test_only_the_requests_own_headers_are_sent(plain: tuple[str, Counts]) -> None:
    base, _ = plain
    transport = AiohttpTransport()
    request = httpx.Request(
        "POST",
        f"{base}/echo/../echo",
        headers=[("X-Twice", "1"), ("X-Twice", "2")],
        content=b"raw bytes, no type",
    )
    async with transport:
        response = await transport.handle_async_request(request)
        seen = json.loads(await response.aread())
    names = [name for name, _ in seen["headers"]]
    assert sorted(names) == ["content-length", "host", "x-twice", "x-twice"]  # no Accept*, UA, type
    assert [v for k, v in seen["headers"] if k == "x-twice"] == ["1", "2"]
    assert seen["body"] == "raw bytes, no type"


async def test_the_url_goes_out_as_httpx_encoded_it(plain: tuple[str, Counts]) -> None:
    base, _ = plain
    async with httpx.AsyncClient(transport=AiohttpTransport(), base_url=base) as client:
        seen = (await client.get("/echo", params={"filter": "a/b c&d"})).json()
        encoded = client.build_request("GET", "/echo", params={"filter": "a/b c&d"}).url.query.decode()
        quoted = (await client.get(f"{base}/echo%2Fid")).status_code
    assert encoded.startswith("filter=a%2Fb")  # then a space: %20 before httpx 0.28, + from it
    assert encoded.endswith("c%26d")
    assert seen["query"] == encoded
    assert quoted == 404  # %2F was not turned into a slash on the way: /echo%2Fid is not /echo/id


async def test_a_streamed_request_body_goes_out_chunked(plain: tuple[str, Counts]) -> None:
    base, _ = plain

    async def parts() -> AsyncIterator[bytes]:
        yield b"first,"
        yield b"second"

    async with httpx.AsyncClient(transport=AiohttpTransport(), base_url=base) as client:
        seen = (await client.post("/echo", content=parts())).json()
    assert seen["body"] == "first,second"
    assert ["transfer-encoding", "chunked"] in seen["headers"]


async def test_a_gzip_body_comes_through_raw(plain: tuple[str, Counts]) -> None:
    base, _ = plain
    async with AiohttpTransport() as transport:
        request = httpx.Request("GET", f"{base}/gzip", headers={"Accept-Encoding": "gzip"})
        response = await transport.handle_async_request(request)
        raw = b"".join([chunk async for chunk in response.aiter_raw()])
    assert raw == GZIPPED  # the bytes of the wire, not the megabyte they inflate to
    assert response.headers["content-encoding"] == "gzip"
    assert response.headers["content-length"] == str(len(GZIPPED))


async def test_httpx_decodes_the_raw_body_when_asked(plain: tuple[str, Counts]) -> None:
    base, _ = plain
    async with httpx.AsyncClient(transport=AiohttpTransport(), base_url=base) as client:
        response = await client.get("/gzip")
    assert response.content == b"0" * 1_000_000


async def test_no_cookie_is_kept_and_no_redirect_followed(plain: tuple[str, Counts]) -> None:
    # By a host name: aiohttp's own cookie jar would ignore cookies from an IP address.
    base = plain[0].replace("127.0.0.1", "localhost")
    async with AiohttpTransport() as transport:
        await (await transport.handle_async_request(httpx.Request("GET", f"{base}/cookie"))).aread()
        echo = await transport.handle_async_request(httpx.Request("GET", f"{base}/echo"))
        seen = json.loads(await echo.aread())
        redirect = await transport.handle_async_request(httpx.Request("GET", f"{base}/redirect"))
        await redirect.aread()
    assert "cookie" not in [name for name, _ in seen["headers"]]
    assert redirect.status_code == 302
    assert redirect.headers["location"] == "/echo"


# --- TLS --------------------------------------------------------------------------------------------


async def test_tls_with_a_custom_ca_in_the_context(
    tls: tuple[str, Counts], tls_files: tuple[Path, Path]
) -> None:
    base, _ = tls
    context = ssl.create_default_context(cafile=str(tls_files[1]))
    async with httpx.AsyncClient(transport=AiohttpTransport(verify=context), base_url=base) as client:
        first = await client.get("/echo")
        second = await client.post("/echo", json={"a": 1})
    assert first.status_code == second.status_code == 200
    assert json.loads(second.json()["body"]) == {"a": 1}


async def test_the_system_cas_refuse_an_unknown_ca(tls: tuple[str, Counts]) -> None:
    base, counts = tls
    async with httpx.AsyncClient(transport=AiohttpTransport(), base_url=base) as client:
        with pytest.raises(httpx.ConnectError) as caught:
            await client.get("/echo")
    chain = causes(caught.value)
    assert any(isinstance(e, ssl.SSLCertVerificationError) for e in chain)
    assert isinstance(caught.value.__cause__, aiohttp.ClientConnectorCertificateError)
    assert counts.in_flight == counts.peak_in_flight == 0


async def test_verification_off_only_when_asked(tls: tuple[str, Counts]) -> None:
    base, _ = tls
    async with httpx.AsyncClient(transport=AiohttpTransport(verify=False), base_url=base) as client:
        assert (await client.get("/echo")).status_code == 200


# --- failures as httpx exceptions ---------------------------------------------------------------------


async def test_a_refused_connection_is_a_connect_error() -> None:
    async with httpx.AsyncClient(transport=AiohttpTransport()) as client:
        with pytest.raises(httpx.ConnectError) as caught:
            await client.get(f"http://127.0.0.1:{closed_port()}/")
    assert not isinstance(caught.value, httpx.TimeoutException)
    assert isinstance(caught.value.__cause__, aiohttp.ClientConnectorError)
    assert any(isinstance(e, ConnectionRefusedError) for e in causes(caught.value))
    assert caught.value.request.url.path == "/"


@pytest.mark.parametrize(
    "path", ["/cut", "/short"], ids=["dropped-mid-chunked-body", "short-of-content-length"]
)
async def test_a_body_cut_short_is_a_remote_protocol_error(plain: tuple[str, Counts], path: str) -> None:
    base, counts = plain
    async with httpx.AsyncClient(transport=AiohttpTransport(), base_url=base) as client:
        async with client.stream("GET", path) as response:
            received: list[bytes] = []

            async def read_all() -> None:
                async for chunk in response.aiter_raw():
                    received.append(chunk)

            with pytest.raises(httpx.RemoteProtocolError) as caught:
                await read_all()
        assert isinstance(caught.value.__cause__, aiohttp.ClientPayloadError)
        assert b"".join(received) == b"x" * 1000
        assert (await client.get("/echo")).status_code == 200  # a new connection
    assert counts.made == 2


async def test_a_read_timeout_is_a_read_timeout(plain: tuple[str, Counts]) -> None:
    base, _ = plain
    timeout = httpx.Timeout(5.0, read=0.1)
    async with httpx.AsyncClient(transport=AiohttpTransport(), base_url=base, timeout=timeout) as client:
        with pytest.raises(httpx.ReadTimeout) as caught:
            await client.get("/silent")
        assert isinstance(caught.value.__cause__, aiohttp.SocketTimeoutError)
        async with client.stream("GET", "/stalled") as response:
            with pytest.raises(httpx.ReadTimeout):
                await response.aread()
        assert (await client.get("/echo")).status_code == 200


async def test_waiting_for_a_connection_past_the_pool_timeout_is_a_connect_timeout(
    plain: tuple[str, Counts],
) -> None:
    base, _ = plain
    limits = httpx.Limits(max_connections=1)
    timeout = httpx.Timeout(5.0, pool=0.1)
    async with httpx.AsyncClient(
        transport=AiohttpTransport(limits=limits), base_url=base, timeout=timeout
    ) as client:
        async with client.stream("GET", "/stalled"):
            with pytest.raises(httpx.ConnectTimeout):
                await client.get("/echo")
        assert (await client.get("/echo")).status_code == 200


async def test_asyncio_timeout_around_a_call_leaves_the_pool_working(plain: tuple[str, Counts]) -> None:
    base, counts = plain
    before = asyncio.all_tasks()
    async with httpx.AsyncClient(
        transport=AiohttpTransport(limits=httpx.Limits(max_connections=1)), base_url=base
    ) as client:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.1):
                await client.get("/silent")
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.1), client.stream("GET", "/stalled") as response:
                await response.aread()
        for _ in range(3):
            assert (await client.get("/echo")).status_code == 200
        assert await settled(before) == set()
    assert counts.made == 3  # the two cut connections were closed, not reused


# --- answers aiohttp's parser refuses half-way; answers that are not final -------------------------------

SECRET = "Geheimes-Pässwort\\2024"
"""What the servers below echo in a line the parser refuses (a password they were sent, say): its
``ä`` and ``\\`` come out of a bytes literal (``\\xc3\\xa4``, ``\\\\``) in forms no scrub reads."""
ECHOED = SECRET.encode()
FIRST_CHUNK = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n1\r\n[\r\n"
)
"""An answer's head and the first chunk of its body, both valid."""
REFUSED = (
    "its body has a line the parser refuses",
    "a line of the answer's body is longer than 8190 bytes",
    "the parser refused its body",  # the C parser's words quote nothing: said by the transport
    "Too many trailers received",  # and the pure-Python parser's
)
"""What the transport's error says of a body the parser refused half-way (its words vary with
the parser and the line)."""
REFUSED_BODIES: dict[str, bytes] = {
    "a bad chunk-size line": b"zz-" + ECHOED + b"\r\n]\r\n0\r\n\r\n",
    "an over-long chunk-size line": b"1" * 9000 + ECHOED + b"\r\n]\r\n0\r\n\r\n",
    "an invalid trailer line": b"1\r\n]\r\n0\r\nX-Echo " + ECHOED + b"\r\n\r\n",
    "an over-long trailer line": b"1\r\n]\r\n0\r\nx-echo: " + b"a" * 88 + ECHOED + b"a" * 9000 + b"\r\n\r\n",
    "500 trailer lines": b"1\r\n]\r\n0\r\n" + b"x-t: 1\r\n" * 500 + b"\r\n",
}
"""What follows `FIRST_CHUNK`: the rest of a chunked body, refused by aiohttp's parser (the
over-long trailer line is quoted in part, the secret cut after its first bytes)."""


def shows_secret(error: BaseException) -> bool:
    """Whether any part of `SECRET` shows where ``error`` is shown (escaped or cut)."""
    shown = (str(error), repr(error), "".join(traceback.format_exception(error)))
    return any(part in text for text in shown for part in ("Gehei", "sswort"))


@pytest.fixture(params=["C", "pure Python"])
def parser(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """aiohttp's HTTP parser: its C one (the default), or the pure-Python one it falls back to
    where the C one is not built (``AIOHTTP_NO_EXTENSIONS=1``)."""
    if request.param == "pure Python":
        monkeypatch.setattr(client_proto, "HttpResponseParser", http_parser.HttpResponseParserPy)
    elif client_proto.HttpResponseParser is http_parser.HttpResponseParserPy:
        pytest.skip("aiohttp's C parser is not built here")
    return str(request.param)


@contextlib.asynccontextmanager
async def api_server(api: Callable[[bytes, asyncio.StreamWriter], Awaitable[None]]) -> AsyncIterator[str]:
    """A raw server (its base URL) granting tokens itself and answering every other request with
    ``api(its request line, the writer)``."""

    async def answer(head: bytes, body: bytes, writer: asyncio.StreamWriter) -> None:
        line = head.split(b"\r\n", 1)[0]
        if b"/token " not in line.lower():
            await api(line, writer)
            return
        token = json.dumps({"access_token": "tok-A", "token_type": "bearer", "expires_in": 3600}).encode()
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%b" % (len(token), token))
        await writer.drain()

    async with serve_raw(answer) as port:
        yield f"http://127.0.0.1:{port}"


async def refused_half_way(line: bytes, writer: asyncio.StreamWriter) -> None:
    """`FIRST_CHUNK`, then (apart: its head was parsed on its own) a bad chunk-size line echoing
    `SECRET`, then the connection closed."""
    writer.write(FIRST_CHUNK)
    await writer.drain()
    await asyncio.sleep(0.05)  # one round of the loop at least: the client reads the head alone
    writer.write(REFUSED_BODIES["a bad chunk-size line"])
    await writer.drain()
    writer.close()


@pytest.mark.parametrize("limit", [None, 30.0], ids=["no-timeout", "timeout"])
@pytest.mark.parametrize("rest", list(REFUSED_BODIES))
async def test_a_body_the_parser_refuses_half_way_fails_its_read_at_once(
    parser: str, rest: str, limit: float | None
) -> None:
    """aiohttp's C parser closed the connection and recorded its refusal on the connection, where
    only a next answer's head would read it: the body's read waited for bytes that never came (and
    its read timeout was dropped), for ever with no timeout. The server here keeps the connection
    open: the next request must still get a new one."""
    peers: list[object] = []
    first_read = asyncio.Event()

    async def answer(head: bytes, body: bytes, writer: asyncio.StreamWriter) -> None:
        peers.append(writer.get_extra_info("peername"))
        if len(peers) > 1:
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            await writer.drain()
            return
        writer.write(FIRST_CHUNK)
        await writer.drain()
        await first_read.wait()  # the rest arrives once the first chunk was read
        writer.write(REFUSED_BODIES[rest])

    before = asyncio.all_tasks()
    async with serve_raw(answer) as port:
        url = f"http://127.0.0.1:{port}/v1/Jobs"
        async with httpx.AsyncClient(transport=AiohttpTransport(), timeout=limit) as client:
            async with client.stream("GET", url) as response:
                chunks = response.aiter_raw()
                first = await anext(chunks)
                first_read.set()

                async def read_rest() -> Exception | None:
                    try:
                        async with asyncio.timeout(5):  # the bound of a regression: it waited for ever
                            async for _ in chunks:
                                pass
                    except Exception as exc:  # compared below: a parser's own error may not print
                        return exc
                    return None

                error = await read_rest()
            again = await client.get(url)
        assert await settled(before) == set()
    assert first == b"["
    assert isinstance(error, httpx.RemoteProtocolError), repr(error)
    assert any(said in str(error) for said in REFUSED), repr(error)
    assert not shows_secret(error), repr(error)
    assert again.content == b"ok"
    assert len(peers) == 2
    assert peers[1] != peers[0]  # the refused answer's connection was not used again


async def test_the_client_reports_a_body_the_parser_refuses_with_no_timeout() -> None:
    """With ``timeout=None`` a ``GET`` whose body the parser refused waited for ever; now it fails
    as any broken answer does (a ``GET`` is sent again first), without the line it quoted."""
    gets = 0

    async def api(line: bytes, writer: asyncio.StreamWriter) -> None:
        nonlocal gets
        gets += 1
        await refused_half_way(line, writer)

    async with api_server(api) as base:
        retry = RetryPolicy(attempts=2, wait_initial=0, wait_max=0, wait_jitter=0)
        vbo = VBOClient(base, username=USERNAME, password=SECRET, retry=retry, timeout=None, api_version="v1")
        async with vbo:
            with pytest.raises(TransportError) as caught:
                async with asyncio.timeout(5):
                    await vbo.jobs()
    assert "its body has a line the parser refuses" in str(caught.value)
    assert isinstance(caught.value.__cause__, httpx.RemoteProtocolError)
    assert gets == 2
    assert not shows_secret(caught.value)


@pytest.mark.parametrize("limit", [None, 30.0], ids=["no-timeout", "timeout"])
async def test_a_job_action_whose_answer_the_parser_refuses_is_sent_once(limit: float | None) -> None:
    """A v8 start answered 200 with a body the parser refused half-way: the server accepted the
    start, so it is not sent again; the error says so (it waited for ever with no timeout, and
    for the whole timeout with one)."""
    sent: list[bytes] = []

    async def api(line: bytes, writer: asyncio.StreamWriter) -> None:
        sent.append(line)
        await refused_half_way(line, writer)

    async with api_server(api) as base:
        vbo = VBOClient(
            base, username=USERNAME, password=PASSWORD, retry=FAST, timeout=limit, api_version="v8"
        )
        async with vbo:
            with pytest.raises(TransportError, match="the job was started") as caught:
                async with asyncio.timeout(5):
                    await vbo.start_job("j1")
    assert "its body has a line the parser refuses" in str(caught.value)
    assert [line for line in sent if b"logout" not in line] == [b"POST /v8/Jobs/j1/start HTTP/1.1"]


NOT_FINAL: dict[str, bytes] = {
    "101 Switching Protocols": (
        b"HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: h2c\r\n\r\n"
    ),
    "status 000": b"HTTP/1.1 000 Zero\r\ncontent-length: 2\r\n\r\n[]",
    "status 099": b"HTTP/1.1 099 Early\r\ncontent-length: 2\r\n\r\n[]",
}
"""Answers no request may end with: a protocol switch nobody asked for (aiohttp reads past other
1xx answers itself), a status under 100."""


@pytest.mark.parametrize("status", list(NOT_FINAL))
async def test_an_answer_that_is_not_final_is_a_remote_protocol_error(status: str) -> None:
    """aiohttp hands these over as the answer (the client then raised ``APIError("HTTP 101")``
    and did not send a ``GET`` again); httpx's transport raises a protocol error, and so does
    this one, closing the connection."""
    peers: list[object] = []

    async def answer(head: bytes, body: bytes, writer: asyncio.StreamWriter) -> None:
        peers.append(writer.get_extra_info("peername"))
        writer.write(
            NOT_FINAL[status] if len(peers) == 1 else b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
        )
        await writer.drain()

    async with serve_raw(answer) as port, httpx.AsyncClient(transport=AiohttpTransport()) as client:
        url = f"http://127.0.0.1:{port}/v1/Jobs"
        with pytest.raises(httpx.RemoteProtocolError, match="is not a final one") as caught:
            await client.get(url)
        again = await client.get(url)
    assert caught.value.request.url == url
    assert again.content == b"ok"
    assert peers[1] != peers[0]


@pytest.mark.parametrize("status", list(NOT_FINAL))
async def test_the_client_sends_a_get_again_after_an_answer_that_is_not_final_and_a_job_action_not(
    status: str,
) -> None:
    """As after any broken answer: a ``GET`` is sent again, a job action is not (it may have
    reached the server)."""
    sent: list[bytes] = []

    async def api(line: bytes, writer: asyncio.StreamWriter) -> None:
        sent.append(line)
        writer.write(NOT_FINAL[status])
        await writer.drain()

    async with api_server(api) as base:
        retry = RetryPolicy(attempts=2, wait_initial=0, wait_max=0, wait_jitter=0)
        async with VBOClient(
            base, username=USERNAME, password=PASSWORD, retry=retry, api_version="v1"
        ) as vbo:
            with pytest.raises(TransportError, match="is not a final one"):
                await vbo.jobs()
            with pytest.raises(TransportError, match="is not a final one"):
                await vbo.stop_job("j1")
    assert sent == [b"GET /v1/Jobs HTTP/1.1"] * 2 + [b"POST /v1/Jobs/j1/Action HTTP/1.1"]


# --- cancellation and release ---------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["before-headers", "mid-body"])
async def test_a_cancelled_request_leaves_no_task_and_a_working_pool(
    plain: tuple[str, Counts], where: str
) -> None:
    base, counts = plain
    before = asyncio.all_tasks()
    got_first_chunk = asyncio.Event()
    transport = AiohttpTransport(limits=httpx.Limits(max_connections=1))
    async with httpx.AsyncClient(transport=transport, base_url=base) as client:

        async def call() -> None:
            if where == "before-headers":
                await client.get("/silent")
                return
            async with client.stream("GET", "/stalled") as response:
                async for _ in response.aiter_raw():
                    got_first_chunk.set()

        task = asyncio.create_task(call())
        if where == "before-headers":
            await counts.arrived.wait()
        else:
            await got_first_chunk.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        async with asyncio.timeout(5):  # one connection: this hangs if it was not released
            results = await asyncio.gather(*(client.get("/echo") for _ in range(5)))
        assert [r.status_code for r in results] == [200] * 5
        assert await settled(before) == set()
    assert counts.made == 2


async def test_closing_a_response_early_releases_its_connection(plain: tuple[str, Counts]) -> None:
    base, counts = plain
    transport = AiohttpTransport(limits=httpx.Limits(max_connections=1))
    async with httpx.AsyncClient(transport=transport, base_url=base) as client:
        response = await client.send(client.build_request("GET", "/stalled"), stream=True)
        await anext(response.aiter_raw())
        await response.aclose()
        async with asyncio.timeout(5):
            assert (await client.get("/echo")).status_code == 200
            assert (await client.get("/echo")).status_code == 200
    assert counts.made == 2  # the unread one closed, the next two shared one


async def test_the_body_streams_before_it_has_all_arrived(plain: tuple[str, Counts]) -> None:
    base, counts = plain
    async with (
        httpx.AsyncClient(transport=AiohttpTransport(), base_url=base) as client,
        client.stream("GET", "/gated") as response,
    ):
        chunks = response.aiter_raw()
        async with asyncio.timeout(5):  # hangs if the transport waited for the whole body
            first = await anext(chunks)
        assert first == b"x" * 1000
        counts.released.set()
        rest = b"".join([chunk async for chunk in chunks])
    assert rest == b"y" * 1000


# --- the pool ------------------------------------------------------------------------------------------


async def test_the_connection_limit_holds_under_fifty_concurrent_requests(plain: tuple[str, Counts]) -> None:
    base, counts = plain
    transport = AiohttpTransport(limits=httpx.Limits(max_connections=5))
    async with httpx.AsyncClient(transport=transport, base_url=base) as client:
        results = await asyncio.gather(*(client.get("/hold") for _ in range(50)))
    assert [r.content for r in results] == [b"held"] * 50
    assert counts.peak_open == 5
    assert counts.peak_in_flight == 5
    assert counts.made == 5  # kept alive and reused
    assert counts.open == 0  # all closed by aclose


# --- life cycle ----------------------------------------------------------------------------------------


def test_construction_needs_no_loop_and_opens_nothing() -> None:
    transport = AiohttpTransport(verify=ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT))
    assert "unused" in repr(transport)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        del transport
        gc.collect()


def test_bound_to_the_loop_of_its_first_request() -> None:
    transport = AiohttpTransport()
    url = f"http://127.0.0.1:{closed_port()}/"
    first, second = asyncio.new_event_loop(), asyncio.new_event_loop()
    try:
        with pytest.raises(httpx.ConnectError):
            first.run_until_complete(transport.handle_async_request(httpx.Request("GET", url)))
        with pytest.raises(RuntimeError, match="event loop"):
            second.run_until_complete(transport.handle_async_request(httpx.Request("GET", url)))
        first.run_until_complete(transport.aclose())
        with pytest.raises(RuntimeError, match="closed"):
            first.run_until_complete(transport.handle_async_request(httpx.Request("GET", url)))
    finally:
        first.close()
        second.close()


async def test_closing_leaves_no_warning_and_no_open_connection(plain: tuple[str, Counts]) -> None:
    base, counts = plain
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        client = httpx.AsyncClient(transport=AiohttpTransport(), base_url=base)
        await asyncio.gather(*(client.get("/hold") for _ in range(3)))
        await client.aclose()
        await client.aclose()  # twice is harmless
        del client
        gc.collect()
    assert [str(w.message) for w in seen] == []
    async with asyncio.timeout(10):  # the server sees the connections closed (a hang guard)
        while counts.open != 0:  # noqa: ASYNC110 - the server's protocol offers no event
            await asyncio.sleep(0.005)


async def test_closing_under_a_request_in_flight_fails_it_at_once(plain: tuple[str, Counts]) -> None:
    base, counts = plain
    client = httpx.AsyncClient(transport=AiohttpTransport(), base_url=base)
    pending = asyncio.create_task(client.get("/silent"))
    await counts.arrived.wait()
    await client.aclose()
    async with asyncio.timeout(5):
        with pytest.raises(httpx.TransportError):
            await pending


# --- vbo-async's client over the transport ------------------------------------------------------------


async def test_the_client_over_the_transport_with_tls(
    tls_files: tuple[Path, Path], ca_context: ssl.SSLContext
) -> None:
    fake = FakeVBO()
    fake.route("GET", "/v1/Jobs", [{"id": "j1", "name": "Mail", "isEnabled": "true"}])
    async with serve(as_asgi(fake.handler), certfile=tls_files[0]) as port:
        transport = AiohttpTransport(verify=ca_context)
        async with VBOClient(
            f"https://127.0.0.1:{port}",
            username=USERNAME,
            password=PASSWORD,
            transport=transport,
            retry=FAST,
            api_version="v1",
        ) as vbo:
            (job,) = await vbo.jobs()
            (again,) = await vbo.jobs()
    assert job.id == again.id == "j1"
    assert fake.paths() == ["/v1/Token", "/v1/Jobs", "/v1/Jobs"]
    assert fake.token_forms[0]["grant_type"] == "password"


async def test_the_client_refuses_an_unknown_ca_without_retrying(
    tls_files: tuple[Path, Path], retries: list[Any]
) -> None:
    fake = FakeVBO()
    async with serve(as_asgi(fake.handler), certfile=tls_files[0]) as port:
        vbo = VBOClient(
            f"https://127.0.0.1:{port}",
            username=USERNAME,
            password=PASSWORD,
            transport=AiohttpTransport(),
            retry=FAST,
            api_version="v1",
        )
        async with vbo:
            with pytest.raises(TransportError, match="certificate verification failed"):
                await vbo.jobs()
    assert retries == []
    assert fake.requests == []


async def test_the_client_retries_a_cut_body_then_reports_it(plain: tuple[str, Counts]) -> None:
    base, counts = plain
    async with VBOClient(
        base,
        username=USERNAME,
        password=PASSWORD,
        transport=AiohttpTransport(),
        retry=RetryPolicy(attempts=3, wait_initial=0, wait_max=0, wait_jitter=0),
    ) as vbo:
        with pytest.raises(TransportError, match="RemoteProtocolError") as caught:
            await vbo.jobs()
    assert isinstance(caught.value.__cause__, httpx.RemoteProtocolError)
    assert counts.made == 3  # the first attempt reuses the token's connection; a cut one is closed


# --- proxies: none from the environment, one when given ------------------------------------------

PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


@contextlib.asynccontextmanager
async def loopback_proxy() -> AsyncIterator[tuple[str, list[bytes]]]:
    """A forward proxy on 127.0.0.1 that answers every request itself (a token, then ``[]``);
    yields its URL and the request lines it got (a proxied request names the whole URL)."""
    seen: list[bytes] = []

    async def answer(head: bytes, body: bytes, writer: asyncio.StreamWriter) -> None:
        line = head.split(b"\r\n", 1)[0]
        seen.append(line)
        token = {"access_token": "tok-proxied", "token_type": "bearer", "expires_in": 3600}
        sent = json.dumps(token).encode() if b"/token" in line.lower() else b"[]"
        head_out = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n"
        writer.write(head_out % len(sent) + sent)
        await writer.drain()

    async with serve_raw(answer) as port:
        yield f"http://127.0.0.1:{port}", seen


async def test_proxies_from_the_environment_are_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """httpx's own clients route through ``HTTP_PROXY``/``HTTPS_PROXY``/``ALL_PROXY`` by default;
    the client never does (its docstring says so), over the default transport or one given: it
    talks to ``base_url`` itself."""
    fake = FakeVBO()
    fake.route("GET", "/v1/Jobs", [{"id": "j1", "name": "Mail"}])
    async with loopback_proxy() as (proxy, proxied), serve(as_asgi(fake.handler)) as port:
        for name in PROXY_VARIABLES:
            monkeypatch.setenv(name, proxy)
        for name in ("NO_PROXY", "no_proxy"):
            monkeypatch.delenv(name, raising=False)
        for transport in (None, httpx.AsyncHTTPTransport()):
            async with VBOClient(
                f"http://127.0.0.1:{port}",
                username=USERNAME,
                password=PASSWORD,
                transport=transport,
                retry=FAST,
                api_version="v1",
            ) as vbo:
                (job,) = await vbo.jobs()
            assert job.name == "Mail"
    assert proxied == []
    assert fake.paths() == ["/v1/Token", "/v1/Jobs"] * 2


@contextlib.asynccontextmanager
async def tunnelling_proxy() -> AsyncIterator[tuple[str, list[bytes], bytearray]]:
    """A forward proxy on 127.0.0.1 that tunnels ``CONNECT`` requests to 127.0.0.1 and relays the
    bytes both ways; yields its URL, the request heads it read and every byte it relayed."""
    heads: list[bytes] = []
    relayed = bytearray()

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while chunk := await reader.read(65536):
                relayed.extend(chunk)
                writer.write(chunk)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        heads.append(head)
        method, target, _ = head.split(b" ", 2)
        host, _, port = target.rpartition(b":")
        if method != b"CONNECT" or host != b"127.0.0.1":
            writer.write(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n")
            writer.close()
            return
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", int(port))
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", heads, relayed
    finally:
        server.close()
        await server.wait_closed()


async def test_an_https_server_is_tunnelled_through_the_proxy_given(
    tls_files: tuple[Path, Path], ca_context: ssl.SSLContext
) -> None:
    """Through ``transport=httpx.AsyncHTTPTransport(proxy=..., verify=...)`` an ``https://``
    server is reached by ``CONNECT``: the proxy relays TLS records only, never the password, the
    bearer token or an answer in clear."""
    fake = FakeVBO()
    fake.route("GET", "/v1/Jobs", [{"id": "j1", "name": "Mail"}])
    async with serve(as_asgi(fake.handler), certfile=tls_files[0]) as port, tunnelling_proxy() as tunnel:
        proxy, heads, relayed = tunnel
        transport = httpx.AsyncHTTPTransport(proxy=proxy, verify=ca_context)
        base = f"https://127.0.0.1:{port}"
        vbo = VBOClient(
            base, username=USERNAME, password=PASSWORD, transport=transport, retry=FAST, api_version="v1"
        )
        async with vbo:
            (job,) = await vbo.jobs()
    assert job.name == "Mail"
    assert fake.paths() == ["/v1/Token", "/v1/Jobs"]
    assert [head.split(b"\r\n", 1)[0] for head in heads] == [f"CONNECT 127.0.0.1:{port} HTTP/1.1".encode()]
    assert len(relayed) > 1000  # the handshakes, the requests and their answers went through it
    ((token, _),) = fake.issued
    for secret in (PASSWORD.encode(), token.encode(), b"Bearer", b"/v1/Jobs", b"Mail"):
        assert secret not in relayed
    assert all(secret not in head for head in heads for secret in (PASSWORD.encode(), token.encode()))


async def test_a_proxy_is_used_through_the_transport_given() -> None:
    """The documented way through a proxy: ``transport=httpx.AsyncHTTPTransport(proxy=...)``.
    ``base_url`` names a port nothing listens on: every answer came from the proxy."""
    async with loopback_proxy() as (proxy, proxied):
        base = f"http://127.0.0.1:{closed_port()}"
        async with VBOClient(
            base,
            username=USERNAME,
            password=PASSWORD,
            transport=httpx.AsyncHTTPTransport(proxy=proxy),
            retry=FAST,
            api_version="v1",
        ) as vbo:
            assert await vbo.jobs() == []
    assert proxied == [f"POST {base}/v1/Token HTTP/1.1".encode(), f"GET {base}/v1/Jobs HTTP/1.1".encode()]
