"""An httpx transport backed by one ``aiohttp.ClientSession``: httpx's API over aiohttp's wire code.

``httpx.AsyncClient(transport=AiohttpTransport(...))`` stays an httpx client (auth flows, event
hooks, ``MockTransport`` and respx in tests through the same seam); only the bytes on the wire go
through aiohttp, whose connection pool and HTTP/1.1 parser cost a fraction of httpcore's per request.

What the transport promises, and how it differs from aiohttp's defaults:

* the response body is streamed as it arrives on the wire, undecoded (``auto_decompress=False``);
  ``Content-Encoding`` stays in the headers, so httpx (or the caller, with its own output bound)
  decodes it, never the transport;
* only the request's own headers are sent: aiohttp adds no ``Accept``, ``Accept-Encoding``,
  ``User-Agent`` or ``Content-Type`` of its own; no cookie jar (httpx keeps cookies), no proxy or
  ``.netrc`` from the environment, no redirects followed;
* every aiohttp or OS failure is raised as the matching ``httpx.TransportError`` with the original
  exception as ``__cause__`` (a certificate failure is an ``httpx.ConnectError`` whose cause chain
  holds the ``ssl.SSLCertVerificationError``);
* nothing touches the event loop until the first request, which binds the transport to its loop;
* as in httpx's transport, an idle connection on which anything arrived (an unsolicited answer,
  the end of the stream) is closed, not reused;
* as in httpx's transport, a body the parser refuses half-way (a bad chunk-size or trailer
  line) fails its read at once, and a 1xx or a status under 100 handed over as the answer is a
  ``RemoteProtocolError``.

Differences from httpx's own transport: a request sent on a connection the server closes at that
moment fails as a ``RemoteProtocolError`` (aiohttp's own resend of idempotent requests is off:
whether to try again is the caller's decision);
``Limits.max_keepalive_connections`` is not enforced (every released connection is kept until
``keepalive_expiry``); a wait for a free connection that outlasts the ``pool`` timeout is a
``ConnectTimeout`` (not ``PoolTimeout``); there is no write timeout; HTTP/1.1 only; an answer
followed, in the same read from the socket, by bytes the parser refuses (a 204 with a body) is
lost with them (aiohttp's C parser drops the answers it completed in a read it then refuses): a
``RemoteProtocolError``, where httpx's transport reads the answer and closes the connection.
aiohttp's parser limits stand (a line of the head over 8,190 bytes, more than 128 header lines:
refused; httpx's reads up to 100 KiB of head); it accepts an answer naming one ``Content-Length``
twice and a ``Transfer-Encoding`` other than ``chunked`` (passed on undecoded), both refused by
h11; a host with a trailing dot is checked against its certificate without the dot (httpcore
keeps it, and a certificate for the name without it is refused).
"""

from __future__ import annotations

import asyncio
import functools
import re
import select
import ssl
import weakref
from collections import defaultdict, deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Self

import aiohttp
import httpx
from aiohttp.client_proto import ResponseHandler
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong
from aiohttp.streams import StreamReader
from yarl import URL

from ._kept import Kept

__all__ = ["AiohttpTransport", "Reply"]

_DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)
_NO_AUTO_HEADERS = ("Accept", "Accept-Encoding", "User-Agent", "Content-Type")
"""aiohttp adds these unless told not to; httpx's client already sends what it means to."""
_WRITE_FAILURES = ("Can not write request body", "Failed to send bytes")
"""How aiohttp's messages start when sending the request failed (it has no type of its own)."""
_MAX_TIMEOUT_CACHE = 32
_MAX_TARGETS = 1024
"""Parsed URLs `AiohttpTransport.get` keeps (parsing is a fifth of what it adds to aiohttp): a
`Kept`, so those in use stay parsed."""
_MAX_TARGET_LENGTH = 2048
"""The longest URL `AiohttpTransport.get` keeps parsed: a server's hrefs become URLs, and the
transport lives as long as its client."""


class AiohttpTransport(httpx.AsyncBaseTransport):
    """An ``httpx.AsyncBaseTransport`` sending requests through one ``aiohttp.ClientSession``.

    ``verify`` is an ``ssl.SSLContext`` (a custom CA goes there), True for the system's CA
    certificates, or False to turn verification off. ``limits.max_connections`` bounds the pool
    (``None``: unbounded) and ``limits.keepalive_expiry`` is how long an idle connection is kept.

    Constructing one is cheap and needs no event loop: the session is opened by the first request
    and belongs to that request's loop from then on. ``aclose()`` (called by
    ``httpx.AsyncClient.aclose``) closes the session and its connections.

    ```python
    transport = AiohttpTransport(verify=ssl.create_default_context(cafile="ca.pem"))
    async with httpx.AsyncClient(transport=transport) as client:
        response = await client.get("https://vbo01:4443/v1/Jobs")
    ```
    """

    def __init__(
        self, *, verify: ssl.SSLContext | bool = True, limits: httpx.Limits = _DEFAULT_LIMITS
    ) -> None:
        if not isinstance(verify, ssl.SSLContext | bool):
            raise TypeError(f"verify must be an ssl.SSLContext or a bool, got {type(verify).__name__}")
        if not isinstance(limits, httpx.Limits):
            raise TypeError(f"limits must be an httpx.Limits, got {type(limits).__name__}")
        self._ssl: ssl.SSLContext | bool = verify
        self._limits = limits
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._timeouts: dict[tuple[float | None, float | None, float | None], aiohttp.ClientTimeout] = {}
        self._targets: Kept[str, URL] = Kept(_MAX_TARGETS // 2)
        self._parsed = self._targets.current  # hits: `get` looks here first
        self._last_headers: tuple[list[tuple[bytes, bytes]], list[tuple[str, str]]] | None = None
        """The last headers `get` sent and their aiohttp form (a client sends the same ones
        until its token changes)."""

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("open" if self._session is not None else "unused")
        limit = self._limits.max_connections
        return f"<AiohttpTransport max_connections={limit} verify={self._ssl is not False} {state}>"

    @property
    def connections(self) -> int:
        """Connections open now, idle or in use (0 before the first request and after closing);
        for diagnostics and tests."""
        session = self._session
        connector = session.connector if session is not None else None
        if connector is None or connector.closed:
            return 0
        idle = sum(len(conns) for conns in connector._conns.values())
        return idle + len(connector._acquired)

    def _open(self) -> aiohttp.ClientSession:
        """The session, opened on the running loop at the first request."""
        if self._closed:
            raise RuntimeError("the transport is closed")
        loop = asyncio.get_running_loop()
        if self._session is not None:
            if loop is not self._loop:
                raise RuntimeError(
                    "the transport is bound to the event loop of its first request; "
                    "create one transport per event loop"
                )
            return self._session
        connector = _Connector(
            ssl=self._ssl,
            limit=self._limits.max_connections or 0,
            limit_per_host=0,
            keepalive_timeout=self._limits.keepalive_expiry,
        )
        session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=_NO_AUTO_HEADERS,
            auto_decompress=False,
            trust_env=False,
            requote_redirect_url=False,
            timeout=aiohttp.ClientTimeout(total=None),
        )
        # aiohttp sends an idempotent request again, once, whenever the connection closes before
        # an answer, on a fresh connection too: every request would go out twice to a server that
        # drops it, behind the caller's retry policy. It has no public switch for that (its own
        # test client turns it off the same way).
        session._retry_connection = False
        self._session = session
        self._loop = loop
        return self._session

    def _timeout(self, timeouts: Mapping[str, float | None]) -> aiohttp.ClientTimeout:
        """httpx's per-request timeouts in aiohttp's terms: ``pool`` bounds waiting for a
        connection and making it, ``connect`` making it, ``read`` each read."""
        key = (timeouts.get("pool"), timeouts.get("connect"), timeouts.get("read"))
        timeout = self._timeouts.get(key)
        if timeout is None:
            if len(self._timeouts) >= _MAX_TIMEOUT_CACHE:
                self._timeouts.clear()
            pool, connect, read = key
            timeout = aiohttp.ClientTimeout(total=None, connect=pool, sock_connect=connect, sock_read=read)
            self._timeouts[key] = timeout
        return timeout

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        sent = _headers(request.headers.raw)
        data: Any
        try:
            data = request.content or None
        except httpx.RequestNotRead:
            # A streamed body: aiohttp sends it chunked unless a Content-Length says otherwise,
            # and refuses a Transfer-Encoding header next to its own.
            data = request.stream
            sent = [(key, value) for key, value in sent if key.lower() != "transfer-encoding"]
        options: dict[str, Any] = {}
        sni = request.extensions.get("sni_hostname")
        if sni is not None:
            options["server_hostname"] = sni
        timeouts = request.extensions.get("timeout") or {}
        target = URL(str(request.url), encoded=True)
        response = await self._send(request.method, target, sent, data, timeouts, lambda: request, options)
        try:
            version = response.version
            extensions: dict[str, Any] = {
                "http_version": b"HTTP/1.0" if version is not None and version < (1, 1) else b"HTTP/1.1",
                "reason_phrase": (response.reason or "").encode("ascii", "replace"),
            }
            return httpx.Response(
                response.status,
                headers=response.raw_headers,
                stream=_ResponseStream(response, lambda: request),
                request=request,
                extensions=extensions,
            )
        except BaseException:
            response.close()
            raise

    def _target(self, url: str) -> URL:
        """``url`` parsed, as `get` sends it: kept (bounded), or recalled from the cache's
        previous generation (`get` looks in the current one itself)."""
        target = self._targets.recall(url)
        if target is None:
            target = URL(url, encoded=True)
            if len(url) <= _MAX_TARGET_LENGTH:
                self._targets.keep(url, target)
        return target

    async def get(
        self, url: str, headers: list[tuple[bytes, bytes]], timeouts: Mapping[str, float | None]
    ) -> Reply:
        """``GET url`` with exactly ``headers`` (``Host`` included) and httpx's ``timeouts``
        (``Timeout.as_dict()``): what ``handle_async_request`` sends for an ``httpx.Request`` of
        that URL, those headers and no body, without the two httpx objects around it (built
        only when a failure needs the request). ``url`` is sent as it is: it must be written as
        httpx writes a URL (``str(httpx.URL(...))``: percent-encoded, default port dropped).
        `Sender` sends its bodiless GETs through here, which saves about a third of what the
        transport costs per request; a test compares the two paths."""
        target = self._parsed.get(url)
        if target is None:
            target = self._target(url)

        def request_of() -> httpx.Request:
            return httpx.Request("GET", url, headers=headers, extensions={"timeout": dict(timeouts)})

        last = self._last_headers
        if last is not None and last[0] == headers:
            sent = last[1]
        else:
            sent = _headers(headers)
            self._last_headers = (list(headers), sent)
        response = await self._send("GET", target, sent, None, timeouts, request_of, {})
        try:
            return Reply(response, _ResponseStream(response, request_of))
        except BaseException:
            response.close()
            raise

    async def post(
        self,
        url: str,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        timeouts: Mapping[str, float | None],
    ) -> Reply:
        """``POST url`` with exactly ``headers`` and ``body`` (its ``Content-Length`` among the
        headers), as `get` sends a GET: what ``handle_async_request`` sends for an
        ``httpx.Request`` of that URL, those headers and that body. `Sender` sends its form
        POSTs (token grants: a fresh client's first request) through here; a test compares the
        two paths. (Written apart from `get`, whose every request a shared path would slow.)"""

        def request_of() -> httpx.Request:
            return httpx.Request(
                "POST", url, headers=headers, content=body, extensions={"timeout": dict(timeouts)}
            )

        target = self._parsed.get(url) or self._target(url)
        # ``or None``: as ``handle_async_request`` passes an empty body.
        response = await self._send("POST", target, _headers(headers), body or None, timeouts, request_of, {})
        try:
            return Reply(response, _ResponseStream(response, request_of))
        except BaseException:
            response.close()
            raise

    async def _send(
        self,
        method: str,
        target: URL,
        headers: Sequence[tuple[str, str]],
        data: Any,
        timeouts: Mapping[str, float | None],
        request_of: Callable[[], httpx.Request],
        options: dict[str, Any],
    ) -> aiohttp.ClientResponse:
        """The request on the wire, its answer's head read; aiohttp's failures as httpx's."""
        session = self._open()
        try:
            response = await session.request(
                method,
                target,
                headers=headers,
                data=data,
                allow_redirects=False,
                timeout=self._timeout(timeouts),
                **options,
            )
        except Exception as exc:
            translated = _translate(exc, request_of, reading=False)
            if translated is exc:
                raise
            if not _quotes_head_cut(exc):
                raise translated from exc
        else:
            if response.status >= 200:
                return response
            # aiohttp reads past 100, 102 and 103, and hands over a 101 (it switched protocols,
            # unasked) or a status under 100 as the answer: as httpx's transport (h11), no
            # answer at all. Its connection is closed, or if aiohttp already put it back in the
            # pool (its body was all there), never handed out again (`_Connector.connect`).
            protocol = getattr(response, "_protocol", None)
            if isinstance(protocol, ResponseHandler):
                protocol.force_close()
            response.close()
            said = f"the answer is not valid HTTP: its status, {response.status}, is not a final one"
            translated = httpx.RemoteProtocolError(said, request=request_of())
        # Outside the handler: aiohttp's error, quoting the head cut, is not even the context.
        raise translated

    def close_idle(self) -> None:
        """Close every connection no request is using (kept alive for the next one); those in use
        stay open. The transport is still usable: a later request connects again."""
        session = self._session
        if session is not None and isinstance(session.connector, _Connector):
            session.connector.close_idle()

    async def aclose(self) -> None:
        """Close the session and every connection; the transport cannot be used afterwards."""
        self._closed = True
        session, self._session = self._session, None
        if session is not None:
            await session.close()


class Reply:
    """The answer `AiohttpTransport.get` (and `post`) gives: what `Sender` reads of an
    ``httpx.Response`` (status, headers, the undecoded body as it arrives); ``aclose`` releases
    the connection.

    ``headers`` (httpx's) are built when first asked for: a successful answer needs only the
    two `header` looks its body read takes, which aiohttp's own parse answers."""

    __slots__ = ("_headers", "_response", "status_code", "stream")

    def __init__(self, response: aiohttp.ClientResponse, stream: _ResponseStream) -> None:
        self.status_code = response.status
        self.stream = stream
        self._response = response
        self._headers: httpx.Headers | None = None

    @property
    def headers(self) -> httpx.Headers:
        """The answer's headers as httpx reads them (from the raw bytes on the wire)."""
        headers = self._headers
        if headers is None:
            headers = self._headers = httpx.Headers(self._response.raw_headers)
        return headers

    def header(self, name: str) -> str | None:
        """``headers.get(name)``: the values of ``name`` joined by ``", "``, or None. Read from
        aiohttp's parse of the same bytes when they are ASCII (text every decoding httpx may
        pick reads the same); otherwise from ``headers``."""
        values: list[str] | None = self._response.headers.getall(name, None)
        if values is None:
            return None
        for value in values:
            if not value.isascii():
                read: str | None = self.headers.get(name)
                return read
        return values[0] if len(values) == 1 else ", ".join(values)

    async def aclose(self) -> None:
        await self.stream.aclose()


class _Connector(aiohttp.TCPConnector):
    """aiohttp's connector, except that a kept-alive connection on which anything arrived while it
    was idle is closed instead of reused. aiohttp keeps an unsolicited answer (a ``408`` a server
    sends before closing an idle connection) and hands it to the next request sent there, whose
    own answer then goes to the one after, for as long as the connection lives; httpx's transport
    checks the same before reusing a connection."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._handed_out: weakref.WeakSet[ResponseHandler] = weakref.WeakSet()
        # Connections speak `_Protocol`. aiohttp makes them with ``_factory``, a partial of
        # its ``ResponseHandler``; anything else (a later aiohttp) is left alone, and a refused
        # body then fails at the latest with the caller's timeout, as before.
        factory = getattr(self, "_factory", None)
        if isinstance(factory, functools.partial) and factory.func is ResponseHandler:
            protocol: Callable[..., ResponseHandler] = _Protocol
            self._factory = functools.partial(protocol, *factory.args, **factory.keywords)

    def close_idle(self) -> None:
        """Close the kept-alive connections now (aiohttp closes them only ``keepalive_timeout``
        after their last use, and as late as twice that)."""
        idle, self._conns = self._conns, defaultdict(deque)
        for connections in idle.values():
            for protocol, _ in connections:
                protocol.close()

    async def connect(
        self,
        req: aiohttp.ClientRequest,
        traces: list[aiohttp.tracing.Trace],
        timeout: aiohttp.ClientTimeout,  # noqa: ASYNC109 - aiohttp's signature
    ) -> aiohttp.connector.Connection:
        """A connection for ``req``: a kept-alive one with nothing waiting on it, or a new one."""
        while True:
            connection = await super().connect(req, traces, timeout)
            protocol = connection.protocol
            if protocol is None or protocol not in self._handed_out:  # a new connection
                if protocol is not None:
                    self._handed_out.add(protocol)
                return connection
            if not (protocol.should_close or _has_input(protocol.transport)):
                return connection
            connection.close()  # frees its slot: the next round reuses another one or connects


class _Protocol(ResponseHandler):
    """aiohttp's connection protocol, except that a line of a body its parser refuses fails
    that body's read at once.

    When aiohttp's C parser refuses a line of a body (a chunk-size line, a trailer), the protocol
    closes the connection and records the error on itself, where only a next answer's head would
    read it: the body's reader waits for bytes that never come, with no read timeout either
    (recording an error drops it), for as long as the caller's own timeout, or for ever. Its
    pure-Python parser fails the body itself, and so does this. Should aiohttp stop recording
    such an error with ``set_exception`` or rename ``_payload``, this does nothing more than
    aiohttp."""

    def set_exception(self, exc: BaseException, *args: Any, **kwargs: Any) -> None:
        payload = getattr(self, "_payload", None)  # read first: aiohttp may forget it
        super().set_exception(exc, *args, **kwargs)
        if not isinstance(exc, HttpProcessingError) or not isinstance(payload, StreamReader):
            return  # not the parser's refusal (aiohttp fails the body itself), or no body
        if payload.is_eof() or payload.exception() is not None:
            return  # a body read to its end (the refusal is the next answer's), or failed already
        # As the pure-Python parser fails a body, its cause the parser's own error (which quotes
        # the line: `_translate` words it without).
        cause = args[0] if args else kwargs.get("exc_cause")
        failure = aiohttp.ClientPayloadError("the answer is not valid HTTP: the parser refused its body")
        failure.__cause__ = cause if isinstance(cause, Exception) and cause is not exc else exc
        payload.set_exception(failure)


def _has_input(transport: asyncio.BaseTransport | None) -> bool:
    """Whether bytes (or the end of the stream) wait in the socket under ``transport``."""
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None:
        return transport is None or transport.is_closing()
    if hasattr(select, "poll"):  # no limit on descriptor numbers, unlike select()
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(0))
    readable, _, _ = select.select([sock], [], [], 0)
    return bool(readable)


class _ResponseStream(httpx.AsyncByteStream):
    """The body as it arrives (undecoded); ``aclose`` releases the connection (closing it when
    the body was not read to the end)."""

    def __init__(self, response: aiohttp.ClientResponse, request_of: Callable[[], httpx.Request]) -> None:
        self._response = response
        self._request_of = request_of

    def __aiter__(self) -> Self:
        # An iterator object rather than an async generator: abandoned half-way, it needs no
        # finalizer task to close it.
        return self

    async def __anext__(self) -> bytes:
        try:
            chunk = await self._response.content.readany()
        except Exception as exc:
            translated = _translate(exc, self._request_of, reading=True)
            if translated is exc:
                raise
            if not _quotes_head_cut(exc):
                raise translated from exc
        else:
            if not chunk:
                raise StopAsyncIteration
            return chunk
        # Outside the handler: aiohttp's error, quoting the head cut, is not even the context.
        raise translated

    async def aclose(self) -> None:
        self._response.release()


def _headers(raw: list[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    """The request's headers as aiohttp takes them (it encodes them back as UTF-8, so bytes that
    are UTF-8 go out unchanged, and ISO-8859-1 ones, which httpx allows, go out re-encoded)."""
    try:
        return [(key.decode(), value.decode()) for key, value in raw]
    except UnicodeDecodeError:
        return [(key.decode("latin-1"), value.decode("latin-1")) for key, value in raw]


def _quotes_head_cut(exc: BaseException) -> bool:
    """Whether aiohttp's ``exc`` quotes what the server sent in a form no scrub reads: the head
    cut short (a line too long to read, or a head the server stopped sending: a secret echoed
    there quoted in part), or a line its parser refused, quoted as a bytes literal (a secret
    echoed there with ``\\xc3\\xa4`` for ``ä``, ``\\\\`` for ``\\``). `_translate` words such
    an error itself, and it is raised without aiohttp's as its cause."""
    return _line_too_long(exc) is not None or _disconnected_mid_head(exc) or _refused_line(exc) is not None


_BYTES_QUOTED = re.compile(r"""\bb['"]|[\udc80-\udcff]""")
"""Where an error's message quotes bytes (``b'...'``), or bytes decoded with surrogate escapes
(aiohttp's pure-Python parser quotes a chunk-size line so: ``ä`` as two lone surrogates)."""


def _refused_line(exc: BaseException) -> HttpProcessingError | None:
    """aiohttp's parser refusal of a line of the answer (a status line, a header, a chunk size,
    a trailer), when ``exc`` is (or was caused by) one whose words quote that line as bytes."""
    found: HttpProcessingError | None = None
    link: BaseException | None = exc
    for _ in range(8):
        if link is None:
            break
        if isinstance(link, LineTooLong):
            return None
        if isinstance(link, HttpProcessingError) and (found is None or type(found) is HttpProcessingError):
            found = link  # the parser's own (InvalidHeader, BadStatusLine) below aiohttp's copy of it
        link = link.__cause__ or link.__context__
    if found is None or not (_BYTES_QUOTED.search(str(found.message)) or _BYTES_QUOTED.search(str(exc))):
        return None
    return found


def _disconnected_mid_head(exc: BaseException) -> bool:
    return isinstance(exc, aiohttp.ServerDisconnectedError) and not isinstance(exc.message, str)


def _line_too_long(exc: BaseException) -> LineTooLong | None:
    """aiohttp's refusal of a head line too long to read, when ``exc`` is (or was caused by) it."""
    link: BaseException | None = exc
    for _ in range(8):
        if link is None or isinstance(link, LineTooLong):
            return link
        link = link.__cause__ or link.__context__
    return None


def _translate(exc: Exception, request_of: Callable[[], httpx.Request], *, reading: bool) -> Exception:
    """The httpx exception for an aiohttp (or OS) failure of the request ``request_of()`` builds;
    ``reading``: while reading the body. Anything that is not an I/O failure (a programming
    error) is returned as it is."""
    message = str(exc) or type(exc).__name__
    if _disconnected_mid_head(exc):
        # It quotes the head read so far (the server closed the connection in the middle of it)
        # whole, twice: as long as the server likes, and a secret echoed there cut where it
        # stopped (the callers raise this error without aiohttp's as cause).
        message = "Server disconnected in the middle of the answer's head"
    refused = _refused_line(exc)
    if refused is not None:
        # It quotes the line as a bytes literal, escaped once more by ClientResponseError: a
        # secret the server echoed there in a form no scrub reads. Said without the line.
        name = re.sub(r"(?<!^)(?=[A-Z])", " ", type(refused).__name__).lower()
        part = "body" if reading else "head"
        message = f"the answer is not valid HTTP: its {part} has a line the parser refuses ({name})"
    too_long = _line_too_long(exc)
    if too_long is not None:
        # It quotes the line's first 100 bytes: a secret echoed across that cut would be quoted
        # in part, which no scrub finds (the callers raise this error without aiohttp's as cause).
        limit = too_long.args[1] if len(too_long.args) > 1 else None
        longer = f"longer than {limit} bytes" if isinstance(limit, int) else "too long"
        message = f"a line of the answer's {'body' if reading else 'head'} is {longer}"
    kind: type[httpx.TransportError]
    if isinstance(exc, aiohttp.ClientConnectorError):  # refused, DNS, TLS handshake, certificate
        kind = httpx.ConnectError
    elif isinstance(exc, aiohttp.ConnectionTimeoutError):
        kind = httpx.ConnectTimeout
    elif isinstance(exc, aiohttp.ServerTimeoutError):
        kind = httpx.ReadTimeout
    elif isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ServerDisconnectedError):
        # A body cut short (shorter than its Content-Length, or a chunked body cut off), or a
        # connection closed before any answer.
        kind = httpx.RemoteProtocolError
    elif isinstance(exc, aiohttp.ClientResponseError | HttpProcessingError):
        # A status line or header aiohttp refuses, or a line of a body its pure-Python parser
        # refuses (which fails the body with its own error, no client error).
        kind = httpx.RemoteProtocolError
    elif isinstance(exc, aiohttp.NonHttpUrlClientError | aiohttp.InvalidURL):
        kind = httpx.UnsupportedProtocol
    elif isinstance(exc, aiohttp.ClientConnectionResetError) and not reading:
        kind = httpx.WriteError  # aiohttp raises it when writing to a closing connection
    elif isinstance(exc, aiohttp.ClientConnectionError | OSError):
        if isinstance(exc, TimeoutError):
            kind = httpx.ReadTimeout
        elif not reading and message.startswith(_WRITE_FAILURES):
            kind = httpx.WriteError
        else:
            kind = httpx.ReadError
    else:
        return exc
    return kind(message, request=request_of())
