"""The lean GET: `Sender` sends its bodiless GETs through `AiohttpTransport.get` (and its form
POSTs, token grants, through `AiohttpTransport.post`), skipping the ``httpx.Request``/
``httpx.Response`` pair around them. It must put the same bytes on the wire and give the same
answer, or the same error, as the path through ``handle_async_request``; these tests send each
request both ways to a raw server on 127.0.0.1 and compare."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vbo_async import RetryPolicy, VBOClient, VBOError
from vbo_async._aiohttp import AiohttpTransport
from vbo_async._tokens import GrantForm

from .raw_http import serve_raw

TOKEN = {"access_token": "acc-1", "refresh_token": "ref-1", "token_type": "bearer", "expires_in": 3600}


class Raw:
    """The API requests' canned answers (raw bytes, and whether the connection then closes), one
    each in turn, and the heads of the requests they answered; token requests get a token."""

    def __init__(self) -> None:
        self.heads: list[bytes] = []
        self.answers: list[tuple[bytes, bool]] = []
        self.forms: list[tuple[bytes, bytes]] = []
        """The heads and bodies of the requests to ``/Form`` (answered as API requests)."""

    async def answer(self, head: bytes, body: bytes, writer: asyncio.StreamWriter) -> None:
        if b"/form " in head.split(b"\r\n", 1)[0].lower():
            self.forms.append((head, body))
        elif b"/token" in head.split(b"\r\n", 1)[0].lower():
            token = json.dumps(TOKEN).encode()
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(token), token)
            )
            await writer.drain()
            return
        self.heads.append(head)
        answer, close = self.answers.pop(0)
        writer.write(answer)
        await writer.drain()
        if close:
            writer.close()


@contextlib.asynccontextmanager
async def raw_server() -> AsyncIterator[tuple[str, Raw]]:
    raw = Raw()
    async with serve_raw(raw.answer) as port:
        yield f"http://127.0.0.1:{port}", raw


def _outcome(result: Any) -> Any:
    """What a send gave, comparably: the status, headers and body, or the error's type and text."""
    if isinstance(result, BaseException):
        return (type(result).__name__, str(result))
    return (result.status_code, result.headers.multi_items(), result.body)


async def _both_ways(answer: bytes, close: bool, *, authenticated: bool, path: str) -> tuple[Any, ...]:
    """The same GET sent lean and through ``handle_async_request``: both outcomes and heads."""
    async with (
        raw_server() as (base, raw),
        VBOClient(base, username="u", password="a-long-password", api_version="v1", timeout=5) as vbo,
    ):
        sender = vbo._fetcher.sender
        assert sender._lean_get is not None  # the default transport: the lean path is on
        lean = sender._lean_get
        outcomes = []
        for way in (lean, None):
            sender._lean_get = way
            raw.answers.append((answer, close))
            try:
                result: Any = await sender.send(
                    "GET", f"{base}/v1{path}", authenticated=authenticated, retry=False
                )
            except VBOError as exc:
                result = exc
            outcomes.append(_outcome(result))
        return outcomes[0], outcomes[1], raw.heads[0], raw.heads[1]


def _framed(
    status: bytes, headers: list[tuple[bytes, bytes]], body: bytes, framing: str
) -> tuple[bytes, bool]:
    head = b"HTTP/1.1 " + status + b"\r\n" + b"".join(k + b": " + v + b"\r\n" for k, v in headers)
    if framing == "length":
        return head + b"Content-Length: %d\r\n\r\n" % len(body) + body, False
    if framing == "chunked":
        chunks = b"".join(
            b"%x\r\n%s\r\n" % (len(body[i : i + 7]), body[i : i + 7]) for i in range(0, len(body), 7)
        )
        return head + b"Transfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n", False
    if framing == "short":  # a Content-Length the body does not reach
        return head + b"Content-Length: %d\r\n\r\n" % (len(body) + 5) + body, True
    return head + b"Connection: close\r\n\r\n" + body, True  # delimited by the close


_header_value = st.binary(min_size=0, max_size=20).map(
    lambda b: bytes(c for c in b if c not in b"\r\n\x00").strip(b" \t")
)
_headers = st.lists(
    st.tuples(
        st.sampled_from([b"X-A", b"x-b", b"Retry-After", b"Content-Type", b"Set-Cookie"]), _header_value
    ),
    max_size=5,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    status=st.sampled_from(
        [b"200 OK", b"204 No Content", b"404 Not Found", b"503 Busy", b"401 Unauthorized"]
    ),
    headers=_headers,
    body=st.binary(max_size=300),
    gzipped=st.booleans(),
    framing=st.sampled_from(["length", "chunked", "short", "close"]),
    authenticated=st.booleans(),
    path=st.sampled_from(
        [
            "/Jobs",
            "/Jobs/a%20b?offset=3&limit=30",
            "/Organizations/%C3%BC/Jobs",
            # Not percent-encoded: httpx encodes them, so the lean GET must send them so too.
            "/Jobs/a b",
            "/Organizations/ü/Jobs?name=ä b",
            "/Jobs/a|b^c`d{e}",
            "/Jobs/%7e?x=%zz",
        ]
    ),
)
def test_a_lean_get_sends_and_answers_as_the_httpx_path_does(
    status: bytes,
    headers: list[tuple[bytes, bytes]],
    body: bytes,
    gzipped: bool,
    framing: str,
    authenticated: bool,
    path: str,
) -> None:
    if status.startswith(b"204"):
        body, framing = b"", "length"
    if gzipped:
        headers = [*headers, (b"Content-Encoding", b"gzip")]
        body = gzip.compress(body)
    if status.startswith(b"401") and authenticated:
        authenticated = False  # a 401 renews the token and replays: one answer per way here
    answer, close = _framed(status, headers, body, framing)
    lean, slow, lean_head, slow_head = asyncio.run(
        _both_ways(answer, close, authenticated=authenticated, path=path)
    )
    assert lean == slow
    assert lean_head == slow_head


async def _form_both_ways(
    answer: bytes, close: bool, form: dict[str, str], *, grant: bool, authenticated: bool
) -> tuple[Any, ...]:
    """The same form POST sent lean (`AiohttpTransport.post`) and through
    ``handle_async_request``: both outcomes, and both requests as the server read them."""
    async with (
        raw_server() as (base, raw),
        VBOClient(base, username="u", password="a-long-password", api_version="v1", timeout=5) as vbo,
    ):
        sender = vbo._fetcher.sender
        lean = sender._lean_post
        assert lean is not None  # the default transport: the lean path is on
        posted: list[str] = []

        def counted(url: str, *rest: Any) -> Any:
            posted.append(url)
            return lean(url, *rest)

        outcomes = []
        for way in (counted, None):
            sender._lean_post = way
            raw.answers.append((answer, close))
            try:
                result: Any = await sender.send(
                    "POST",
                    f"{base}/v1/Form",
                    form=GrantForm(form) if grant else form,
                    authenticated=authenticated,
                    retry=False,
                )
            except VBOError as exc:
                result = exc
            outcomes.append(_outcome(result))
        assert posted.count(f"{base}/v1/Form") == 1  # sent lean the first time only (and the grant)
        return outcomes[0], outcomes[1], raw.forms[0], raw.forms[1]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    status=st.sampled_from([b"200 OK", b"400 Bad Request", b"401 Unauthorized", b"503 Busy"]),
    headers=_headers,
    body=st.binary(max_size=200),
    framing=st.sampled_from(["length", "chunked", "short", "close"]),
    form=st.dictionaries(st.text(max_size=8), st.text(max_size=12), min_size=1, max_size=4),
    grant=st.booleans(),
    authenticated=st.booleans(),
)
def test_a_lean_form_post_sends_and_answers_as_the_httpx_path_does(
    status: bytes,
    headers: list[tuple[bytes, bytes]],
    body: bytes,
    framing: str,
    form: dict[str, str],
    grant: bool,
    authenticated: bool,
) -> None:
    """A token grant (a fresh client's first request) goes through `AiohttpTransport.post`: the
    same request line, headers and body on the wire, the same answer or error."""
    if status.startswith(b"401") and authenticated:
        authenticated = False  # a 401 renews the token and replays: one answer per way here
    answer, close = _framed(status, headers, body, framing)
    lean, slow, lean_sent, slow_sent = asyncio.run(
        _form_both_ways(answer, close, form, grant=grant, authenticated=authenticated)
    )
    assert lean == slow
    assert lean_sent == slow_sent
    assert lean_sent[0].startswith(b"POST /v1/Form HTTP/1.1\r\n")


def test_the_lean_get_is_used_and_carries_the_bearer_token() -> None:
    answer, close = _framed(b"200 OK", [(b"Content-Type", b"application/json")], b"[]", "length")
    lean, slow, lean_head, _ = asyncio.run(_both_ways(answer, close, authenticated=True, path="/Jobs"))
    assert lean == slow == (200, [("content-type", "application/json"), ("content-length", "2")], b"[]")
    assert b"\r\nAuthorization: Bearer acc-1\r\n" in lean_head
    assert lean_head.startswith(b"GET /v1/Jobs HTTP/1.1\r\nHost: 127.0.0.1:")


async def test_a_refused_connection_fails_the_same_both_ways(unused_tcp_port: int) -> None:
    base = f"http://127.0.0.1:{unused_tcp_port}"
    async with VBOClient(base, username="u", password="a-long-password", api_version="v1", timeout=5) as vbo:
        sender = vbo._fetcher.sender
        lean = sender._lean_get
        assert lean is not None
        failures = []
        for way in (lean, None):
            sender._lean_get = way
            with pytest.raises(VBOError) as caught:
                await sender.send("GET", f"{base}/v1/Jobs", authenticated=False, retry=False)
            failures.append(_outcome(caught.value))
            assert isinstance(caught.value.__cause__, httpx.ConnectError)
    assert failures[0] == failures[1]
    assert failures[0][0] == "TransportError"


class _Counting(AiohttpTransport):
    def __init__(self) -> None:
        super().__init__()
        self.handled = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.handled += 1
        return await super().handle_async_request(request)


async def test_a_subclass_of_the_transport_gets_every_request() -> None:
    """A subclass may change ``handle_async_request``: the lean path is only for the class itself."""
    answer, close = _framed(b"200 OK", [], b"[]", "length")
    async with raw_server() as (base, raw):
        transport = _Counting()
        async with VBOClient(
            base, username="u", password="a-long-password", api_version="v1", transport=transport
        ) as vbo:
            assert vbo._fetcher.sender._lean_get is None
            raw.answers.append((answer, close))
            got = await vbo._fetcher.sender.send("GET", f"{base}/v1/Jobs", authenticated=False)
    assert got.body == b"[]"
    assert transport.handled == 1


async def test_other_transports_never_take_the_lean_path() -> None:
    mock = httpx.MockTransport(lambda request: httpx.Response(200, json=[]))
    async with VBOClient("https://vbo.test", username="u", password="a-long-password", transport=mock) as vbo:
        assert vbo._fetcher.sender._lean_get is None


_NAMES = [b"Content-Length", b"content-encoding", b"Retry-After", b"Content-Type", b"X-A"]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    headers=st.lists(
        st.tuples(st.sampled_from(_NAMES), st.one_of(_header_value, st.sampled_from([b"0", b"gzip", b"12"]))),
        max_size=6,
    )
)
def test_a_reply_s_header_looks_read_as_httpx_reads_the_same_bytes(
    headers: list[tuple[bytes, bytes]],
) -> None:
    """`Reply.header` (what a lean GET's body read looks up, from aiohttp's parse) against
    ``httpx.Headers`` of the raw bytes (what every other path reads), for repeated names and
    values that are not ASCII, UTF-8 or not."""
    answer = b"HTTP/1.1 204 No Content\r\n" + b"".join(k + b": " + v + b"\r\n" for k, v in headers) + b"\r\n"

    async def main() -> list[tuple[str | None, str | None]] | None:
        async with raw_server() as (base, raw):
            raw.answers.append((answer, False))
            transport = AiohttpTransport()
            try:
                timeouts = httpx.Timeout(5).as_dict()
                try:
                    reply = await transport.get(f"{base}/v1/Jobs", [(b"Host", base[7:].encode())], timeouts)
                except httpx.HTTPError:
                    return None  # a head aiohttp refuses: no reply to read
                looks = [(reply.header(name), httpx.Headers(headers).get(name)) for name in _LOOKED_UP]
                await reply.aclose()
                return looks
            finally:
                await transport.aclose()

    looks = asyncio.run(main())
    _COMPARED.append(looks is not None)
    if looks is not None:
        for fast, slow in looks:
            assert fast == slow


_COMPARED: list[bool] = []
_LOOKED_UP = ["content-length", "Content-Encoding", "retry-after", "content-type", "x-a", "x-missing"]


class _GrantsCut:
    """A raw server whose token endpoint reads each grant whole and drops the connection for the
    grant types in ``cut`` (once each: the answer lost after the server carried it out), answers
    the others with a token (a new pair each time), and answers ``GET /v1/Jobs`` 401 the first
    time (the token is renewed with the refresh grant) and ``[]`` after."""

    def __init__(self, cut: set[str]) -> None:
        self.cut = cut
        self.grants: list[str] = []
        self.jobs = 0

    async def __call__(self, head: bytes, body: bytes, writer: asyncio.StreamWriter) -> None:
        if b"/token " in head.split(b"\r\n", 1)[0].lower():
            grant = dict(item.split("=", 1) for item in body.decode().split("&"))["grant_type"]
            self.grants.append(grant)
            if grant in self.cut:
                self.cut.discard(grant)
                writer.transport.abort()
                return
            n = len(self.grants)
            data = json.dumps({**TOKEN, "access_token": f"acc-{n}", "refresh_token": f"ref-{n}"}).encode()
        else:
            self.jobs += 1
            if self.jobs == 1:
                writer.write(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
                return
            data = b"[]"
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
        writer.write(head % len(data) + data)
        await writer.drain()


@pytest.mark.parametrize(
    ("cut", "grants", "waits"),
    [
        # A password grant whose answer was lost is sent again, a second later at the earliest.
        ("password", ["password", "password", "refresh_token"], [1.0]),
        # A refresh grant whose answer was lost is never sent again: the password grant instead.
        ("refresh_token", ["password", "refresh_token", "password"], []),
    ],
)
async def test_a_lean_grant_cut_after_reaching_the_server_keeps_the_token_grant_rules(
    cut: str, grants: list[str], waits: list[float], sleeps: list[float]
) -> None:
    """docs/reliability.md, "Token grants", over the lean POST (the default transport): the rules
    were only tested through ``httpx.MockTransport``, which takes the ``httpx.Request`` path."""
    server = _GrantsCut({cut})
    async with serve_raw(server) as port:
        policy = RetryPolicy(wait_initial=0.1, wait_max=5.0, wait_jitter=0.0)
        async with VBOClient(
            f"http://127.0.0.1:{port}", username="u", password="p", api_version="v1", retry=policy
        ) as vbo:
            assert vbo._fetcher.sender._lean_post is not None  # the lean path is the one tested
            assert await vbo.jobs() == []
    assert server.grants == grants
    assert [delay for delay in sleeps if delay > 0] == waits
