"""Sending one request, the only place that touches the network.

`Sender.send` checks the client's state and that the URL lies below the API root, takes a slot
(``max_concurrency``), bounds each attempt as a whole with ``timeout`` (getting a token aside:
its requests have their own), attaches the bearer token
and, on a 401, renews it and replays an idempotent request (at most `MAX_RENEWALS` times, the
401's body never read; a job action is never sent again: its 401 is the answer, the token renewed),
reads the body raw and decodes it with an output bound (`BodyDecoder`: ``max_response_bytes``
counts decoded bytes, whatever the ``Content-Encoding``), and maps every failure into the
`VBOError` tree. Idempotent requests are retried on transport errors and the statuses of the
`RetryPolicy`, with the decisions made by the pure functions of `_retry`; anything else is sent
exactly once. When the first attempt succeeds no retry machinery is set up at all. A
``Retry-After`` an API request is answered with (a 429, a 5xx) rests the whole server: every API
request of the client, job actions included, waits for it to end before it is sent, or fails
unsent when it ends past what the request may wait (`Sender._rest_over`).

Requests go to the transport directly (``transport.handle_async_request``): the API needs none of
what ``httpx.AsyncClient.send`` adds around it (cookies, redirects, auth flows, event hooks),
and skipping it halves the client's CPU per request. The ``httpx.AsyncClient`` owns the
transport's lifecycle. Over the default transport itself (`AiohttpTransport`, not a subclass) a
GET without a body, nearly every request, goes through `AiohttpTransport.get` instead, which
sends the same bytes without the ``httpx.Request``/``httpx.Response`` pair around them (about a
tenth of a request's CPU), and a form POST of strings (a token grant) through
`AiohttpTransport.post`; tests send requests both ways and compare wire and answers.

Retries are logged at debug level under ``vbo_async`` (with a `RetryNote` in the record's
``vbo_async_retry`` attribute), giving up at info level; nothing is configured globally.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import math
import random
import ssl
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import urlencode

import attrs
import httpx

from ._auth import MAX_RENEWALS, MAX_THROTTLE_REST, TokenManager, TokenUnavailable
from ._bodies import ACCEPT_ENCODING, BodyDecoder, BodyTooLarge, CorruptBody, UnsupportedEncoding
from ._clocks import ServerClock
from ._exceptions import (
    APIError,
    ClientStateError,
    DecodeError,
    LinkError,
    RateLimitedError,
    ResponseTooLargeError,
    ServerError,
    TransportError,
    VBOError,
)
from ._handshakes import close_cut_handshakes
from ._kept import Kept
from ._retry import RETRY_AFTER_LIMIT, RetryPolicy, backoff, may_retry, parse_retry_after
from ._status import IDEMPOTENT_METHODS, retry_hint
from ._tokens import GrantForm, Token
from ._urls import ApiRoot, quoted, scrub_error
from ._version import __version__

if TYPE_CHECKING:
    from ._aiohttp import Reply

__all__ = ["CLOSED_IN_FLIGHT", "Answer", "RetryNote", "Sender", "build_http"]

log = logging.getLogger("vbo_async")

CLOSED_IN_FLIGHT = "the client was closed while the request was in flight"
CLOSED_UNSENT = "the client was closed before the request was sent: it was not sent"
"""A request closed out while it waited for its first attempt (a slot, the server's rest): a job
action said so may be sent again, unlike one `CLOSED_IN_FLIGHT`."""
_URLS_KEPT = 1024
"""Parsed URLs a `Sender` keeps (a sweep asks for the same URLs again and again): a `Kept`, so
those in use stay parsed (all were dropped each time 1,024 were kept)."""
_URL_LENGTH_KEPT = 2048
"""The longest URL a `Sender` keeps parsed (a server's are about 150 characters): the URLs come
from hrefs a server chose, up to httpx's 64 KiB each, and are kept as long as the client."""
LeanGet = Callable[[str, list[tuple[bytes, bytes]], Mapping[str, float | None]], Awaitable["Reply"]]
"""`AiohttpTransport.get`'s signature: a GET sent without building httpx's objects around it."""
LeanPost = Callable[[str, list[tuple[bytes, bytes]], bytes, Mapping[str, float | None]], Awaitable["Reply"]]
"""`AiohttpTransport.post`'s signature: a POST of a body, sent the same way."""
_NO_BODY = httpx.ByteStream(b"")
"""The body of every request sent without one (immutable: reading it gives ``b""``)."""
_FORM_TYPE = (b"Content-Type", b"application/x-www-form-urlencoded")
_CHAIN_READ = 32
"""Exceptions of a failure's chain `_quotes_secret` reads (past them, it is taken to quote one)."""
_QUOTED = 500
"""Characters of a transport failure's own words a `TransportError` quotes: a parser may quote
everything it read (aiohttp quotes a head cut short whole, twice: megabytes)."""


class _Target:
    """A URL as httpx parsed it, with what each request of it reads written out once: the URL as
    httpx writes it (what the lean GET sends) and its ``Host`` (httpx computes both anew on each
    read: 15,000 instructions a request, 2% of `vbo.job(id)`)."""

    __slots__ = ("netloc", "parsed", "written")

    def __init__(self, parsed: httpx.URL) -> None:
        self.parsed = parsed
        self.written = str(parsed)
        self.netloc = parsed.netloc


class Answer:
    """A complete response: status, headers and the whole (decoded) body.

    ``headers`` come from ``head`` (the ``httpx.Response`` or the lean GET's `Reply`) when first
    asked for: a successful GET never needs httpx's headers, which the `Reply` builds lazily.
    ``unread`` is the error that reading the body of an answer standing without it met (its
    ``body`` is then empty: `_stands_unread`), else None. ``unrenewed`` is, for a 401
    to a request not sent again (a job action), the error that renewing the token it refused met
    (None when it was renewed, and for every other answer)."""

    __slots__ = ("_head", "body", "status_code", "unread", "unrenewed")

    def __init__(
        self,
        status_code: int,
        head: httpx.Response | Reply,
        body: bytes,
        unread: VBOError | None = None,
        unrenewed: VBOError | None = None,
    ) -> None:
        self.status_code = status_code
        self.body = body
        self._head = head
        self.unread = unread
        self.unrenewed = unrenewed

    @property
    def headers(self) -> httpx.Headers:
        return self._head.headers

    def __repr__(self) -> str:
        return f"<Answer {self.status_code}, {len(self.body)} bytes>"


@contextlib.contextmanager
def _stopped(limit: asyncio.Timeout) -> Iterator[None]:
    """``limit`` (an attempt's timeout) stopped while the block waits (a token, a server's rest),
    then moved on by as long: the attempt's time on the wire keeps its bound. An expired one is
    left as it is (cancelled at the next await anyway)."""
    deadline = limit.when()
    if deadline is None or limit.expired():
        yield
        return
    loop = asyncio.get_running_loop()
    began = loop.time()
    limit.reschedule(None)
    try:
        yield
    finally:
        if not limit.expired():
            limit.reschedule(deadline + (loop.time() - began))


class _Spent(Exception):
    """A retry that got its slot after its retry budget ran out (`Sender._attempt`): not sent;
    `Sender.send` ends with the attempt before it."""


class _Call(NamedTuple):
    """One request as `Sender.send` was asked for it (sent once, or again when retried). A tuple:
    made for every request, it costs 3,100 instructions less than a frozen attrs class (seven
    guarded sets). Its repr shows neither its headers nor its body (a bearer token, a form)."""

    method: str
    url: str
    json: Any
    form: dict[str, str] | GrantForm | None
    headers: dict[str, str] | None
    authenticated: bool
    unread_body_ok: bool = False

    def __repr__(self) -> str:
        return f"_Call(method={self.method!r}, url={self.url!r}, authenticated={self.authenticated!r})"


class _Reading:
    """An attempt's answer whose body is being read (`_unread` may stand it without its body),
    and the token it refused when it is a 401 to a request not sent again (a job action): that
    token is renewed once the body is read, or could not be."""

    __slots__ = ("refused", "response")

    def __init__(self) -> None:
        self.response: httpx.Response | Reply | None = None
        self.refused: Token | None = None


@attrs.frozen
class RetryNote:
    """What a retry log record carries (``record.vbo_async_retry``): the request, the attempt
    that failed (1 = the first), why, and the seconds waited before the next one."""

    method: str
    url: str
    attempt: int
    reason: str
    wait_for: float
    caused_by: VBOError | None = None
    """The transport error that failed the attempt (None for a retried status)."""


@attrs.frozen(eq=False)
class _Rest:
    """The server's last 429 (or 5xx) naming a ``Retry-After`` to an API request, and until when
    (``time.monotonic``) it asked not to be called: no API request of the client is sent before."""

    status: int
    at: float
    until: float

    def held(self, method: str, url: str, now: float, bound: str) -> APIError:
        """The error of a request that would have to wait past ``bound`` for the rest to end:
        raised ``now``, the request unsent."""
        left, ago = self.until - now, f"{max(1, round(now - self.at))} s"
        if self.status == 429:
            said = f"the server throttled this client {ago} ago (HTTP 429)"
        else:
            said = f"the server answered HTTP {self.status} {ago} ago, asking for a wait,"
        kind = RateLimitedError if self.status == 429 else ServerError
        error = kind(
            f"{method} not sent: {said} and its wait ends past {bound}; "
            f"{retry_hint(left, dt.datetime.now(dt.UTC))}",
            status_code=self.status,
            method=method,
            url=url,
            retry_after=left,
        )
        error.unsent = True
        return error


def _rest_status(status: int) -> bool:
    """Whether an answer of ``status`` naming a ``Retry-After`` rests the whole server (a 429, a 5xx)."""
    return status == 429 or 500 <= status <= 599


class Sender:
    """The sending path of one client (see the module docstring)."""

    def __init__(
        self,
        *,
        api_root: ApiRoot,
        http: httpx.AsyncClient,
        transport: httpx.AsyncBaseTransport,
        max_concurrency: int,
        timeout: float | None,
        max_response_bytes: int,
        retry: RetryPolicy,
    ) -> None:
        self._api_root = api_root
        self._http = http
        self._headers: list[tuple[bytes, bytes]] = [
            (b"Accept", b"application/json"),
            (b"Accept-Encoding", ACCEPT_ENCODING.encode("ascii")),
            (b"Connection", b"keep-alive"),
            (b"User-Agent", f"vbo-async/{__version__}".encode("ascii")),
        ]
        self._extensions = {"timeout": httpx.Timeout(timeout).as_dict()}
        self._urls: Kept[str, _Target] = Kept(_URLS_KEPT // 2)
        self._parsed = self._urls.current  # hits: `_target` looks here first
        self._get_headers: (
            tuple[tuple[bytes, str | None], httpx.Headers, list[tuple[bytes, bytes]]] | None
        ) = None
        self._transport = transport
        self._lean_get = _lean_get(transport)
        self._lean_post: LeanPost | None = getattr(transport, "post", None) if self._lean_get else None
        # httpcore frees a pool slot in its answer's close, guarded against its own (anyio's)
        # cancellation but not asyncio's: a cancellation landing there left the slot taken for
        # ever, and max_concurrency of them every later request waiting for the pool until its
        # timeout. That close runs on after a cancellation (`_finish_close`), and connections a
        # failed request stranded in the pool are closed (`_through_httpcore`), as are the sockets
        # of TLS handshakes a cancellation cut short (`close_cut_handshakes`).
        self._finish_closes = isinstance(transport, httpx.AsyncHTTPTransport)
        if isinstance(transport, httpx.AsyncHTTPTransport):
            close_cut_handshakes(transport)
        self._semaphore = asyncio.Semaphore(max_concurrency)
        self._timeout = timeout
        self._max_bytes = max_response_bytes
        self._retry = retry
        self._random = random.Random()
        self.clock = ServerClock()
        """How far the server's clock is off this machine's (each answer's ``Date``)."""
        self.tokens: TokenManager | None = None
        """Set by the client once built (the token manager sends through this sender)."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._pool_closed = False
        self._pauses: set[asyncio.Future[None]] = set()
        """The waits before retries under way (closing cuts them short)."""
        self._resting: dict[asyncio.Future[None], float] = {}
        """The waits a longer rest set meanwhile cuts short (`_rest_for`), with when each ends
        (``time.monotonic``): those for the server's rest to end (`_rest_over`, ending at -inf:
        always cut), and an API request's waits before its retry, when the new rest ends after
        them. Each then weighs the new rest against its bounds at once (`_rest_over`)."""
        self._rest: _Rest | None = None
        """The server's last ``Retry-After`` to an API request (`_Rest`): every API request waits
        for it to end before it is sent, or fails unsent when that is longer than it may wait."""
        self.requests_sent = 0
        """Attempts put on the wire so far (retries, replays and token requests included)."""
        self.give_up_at: float | None = None
        """A `time.monotonic` time no wait before a retry may end after (a command's time limit,
        which the policy's ``timeout``, counted from each request's first try, cannot express):
        past it the last answer or error is the result, at once. None: the policy alone decides."""

    @property
    def closed(self) -> bool:
        return self._closed

    # --- state ------------------------------------------------------------------------------------

    def check_usable(self) -> None:
        """Raise `ClientStateError` when closed or called from another event loop than the first."""
        if self._closed:
            raise ClientStateError("the client is closed")
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise ClientStateError("the client must be used inside a running event loop") from None
        if self._loop is None:
            self._loop = loop
        elif loop is not self._loop:
            if self._loop.is_closed():
                raise ClientStateError(
                    "the event loop the client was first used on has ended (an asyncio.run() that "
                    "returned): the client can neither be used nor closed from another, its "
                    "connections ended with that loop; create the client in the loop that uses it "
                    "and closes it ('async with VBOClient(...)', in a web app's lifespan)"
                )
            raise ClientStateError(
                "the client is bound to the event loop it was first used on; create one client per event loop"
            )

    def refuse(self) -> None:
        """Refuse every further request from now on (the first step of closing): a request that
        gets its slot or waits for a retry ends with `ClientStateError`."""
        self._closed = True
        for pause in self._pauses:
            pause.cancel()

    async def close_idle(self) -> None:
        """Close the pool's connections no request is using, where the transport can (the
        default one and httpx's own; any other keeps them as it does)."""
        close_idle = getattr(self._transport, "close_idle", None) if self._lean_get is not None else None
        if close_idle is not None:
            close_idle()
        elif isinstance(self._transport, httpx.AsyncHTTPTransport):
            await _close_idle_httpcore(self._transport)

    async def aclose(self) -> None:
        """Refuse every further request and close the connection pool (requests in flight end
        with `ClientStateError`). Idempotent."""
        self.refuse()
        if not self._pool_closed:
            self._pool_closed = True
            await self._http.aclose()

    # --- sending ----------------------------------------------------------------------------------

    async def send(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        form: dict[str, str] | GrantForm | None = None,
        headers: dict[str, str] | None = None,
        authenticated: bool = True,
        retry: bool | None = None,
        unread_body_ok: bool = False,
    ) -> Answer:
        """Send one request and return the complete answer, whatever its status (retryable
        statuses of idempotent requests are retried first). ``retry`` defaults to whether the
        method is idempotent. A failure to get a token is raised as is, never retried here (the
        token request has its own retries).

        With ``unread_body_ok``, an answer whose body cannot be read (larger than
        ``max_response_bytes``, not valid for its ``Content-Encoding``, cut short, not all there
        within the timeout) is still the answer, with an empty body and that error in
        `Answer.unread`: its status says what became of a job action (accepted and carried out;
        a 5xx, maybe carried out; a 4xx, refused before the server acted), whatever came after
        its status line; the token a 401 refused is renewed all the same. A grant's refusal or
        throttle stands so too, but not its success cut short on the way: its token is lost, as
        with the whole answer (`_stands_unread`). A 429 or a 5xx stands without its body
        whatever the request: its status and ``Retry-After`` decide (retried, the server
        rested), its body only words the error."""
        try:
            self.check_usable()
            if not self._api_root.contains(url):
                raise LinkError(f"refusing to send a request outside the API root: {url}")
            retryable = method in IDEMPOTENT_METHODS if retry is None else retry
            call = _Call(method, url, json, form, headers, authenticated, unread_body_ok)
            # When the first attempt got its slot: the retry budget counts from the first try, not
            # from when the request began waiting for one of the ``max_concurrency`` slots.
            started: list[float] = []
            rested: list[_Rest] = []  # the server's rests this request waited out (or set itself)
            attempt = 1
            last: Answer | TransportError | None = None  # what the attempt before this one ended with
            while True:
                try:
                    answer = await self._attempt(call, started, rested)
                except _Spent:
                    assert last is not None  # only a retry is spent
                    self._gave_up(method, url, attempt - 1, "the retry budget ran out waiting for a slot")
                    if isinstance(last, TransportError):
                        _say_attempts(last, attempt - 1, started)
                        raise last from last.__cause__
                    return last
                except TokenUnavailable as failure:
                    raise failure.error from failure.error.__cause__
                except TransportError as exc:
                    last = exc
                    # A POST retried on statuses (a token grant) once it may have reached the
                    # server: a password grant is sent again, a second later (the throttle counted
                    # the first), a refresh grant is not (its refresh token may be used up: the
                    # token manager makes the password grant instead). docs/reliability.md,
                    # "Token grants".
                    login = _is_password_grant(call)
                    resend = exc.unsent or method in IDEMPOTENT_METHODS or login
                    if not (retryable and resend) or _fails_every_time(exc):
                        _say_attempts(exc, attempt, started)  # after earlier ones (a 503 first)
                        raise
                    wait = self._wait(attempt, started, None, throttled=login and not exc.unsent)
                    if wait is None:
                        self._gave_up(method, url, attempt, str(exc))
                        _say_attempts(exc, attempt, started)
                        raise
                    self._retrying(method, url, attempt, str(exc), wait, exc)
                else:
                    status = answer.status_code
                    if status < 400:  # nearly every answer: no status under 400 is retried or rests
                        return answer
                    retries = retryable and status in self._retry.statuses
                    rests = call.authenticated and _rest_status(status)
                    if not (retries or rests):
                        return answer
                    # Read past the policy's cap: a longer wait is not cut short and retried into
                    # the throttle, it is given up at once (the error says when to try again).
                    head = answer.headers
                    retry_after = parse_retry_after(
                        head.get("retry-after"),
                        now=dt.datetime.now(dt.UTC),
                        cap=RETRY_AFTER_LIMIT,
                        date=head.get("date"),  # a date counts from the server's clock
                    )
                    if rests:
                        self._rest_for(status, retry_after, rested)
                    if not retries:
                        return answer
                    last = answer
                    wait = self._wait(attempt, started, retry_after, answer.status_code)
                    if wait is None:
                        reason = _status_reason(answer.status_code, retry_after, self._retry)
                        self._gave_up(method, url, attempt, reason)
                        return answer
                    self._retrying(method, url, attempt, f"HTTP {answer.status_code}", wait)
                # A longer rest set meanwhile (another request's 429) cuts the wait short: the
                # next attempt waits for that rest to end, or fails unsent past its bounds.
                await self._pause(wait, rests=call.authenticated)
                if self._closed:  # closed while this request waited to be retried
                    raise ClientStateError(CLOSED_IN_FLIGHT, method=method, url=url)
                attempt += 1
        except VBOError as exc:
            # A server may put a secret into an href the client follows: the error quoting the URL
            # is scrubbed as it leaves (in place: re-raised as is, its context unchanged).
            scrub_error(exc, self._scrub)
            raise
        except asyncio.CancelledError as exc:
            # The caller's deadline (asyncio.timeout, a web framework's) or a task cancelled: the
            # frames it was raised through (the transport's, aiohttp's) hold the request's headers,
            # the bearer token among them, which error reporters show with each frame's variables.
            # Re-raised without them (`raise` adds no frame of this one either).
            _frameless(exc, self._scrub)
            raise

    async def _pause(self, seconds: float, *, resting: bool = False, rests: bool = False) -> None:
        """Wait ``seconds``, or until the client closes if that comes first; a wait for the
        server's rest (``resting``) also until a longer rest is set, and an API request's wait
        before its retry (``rests``) until a rest ending after it is set (`_rest_for`)."""
        pause = asyncio.ensure_future(asyncio.sleep(seconds))
        self._pauses.add(pause)
        cut_by_rest = resting or rests
        if cut_by_rest:
            self._resting[pause] = -math.inf if resting else time.monotonic() + seconds
        try:
            await pause
        except asyncio.CancelledError:
            task = asyncio.current_task()
            cut_short = self._closed or (cut_by_rest and pause not in self._resting)
            if not cut_short or (task is not None and task.cancelling() > 0):
                raise  # the caller was cancelled, not the wait cut short by closing or a new rest
        finally:
            self._pauses.discard(pause)
            self._resting.pop(pause, None)

    def _rest_for(self, status: int, retry_after: float | None, rested: list[_Rest]) -> None:
        """Remember an API request's answer of ``status`` naming ``retry_after`` (parsed) as the
        server's rest, when it ends after the one kept (up to `MAX_THROTTLE_REST`: a server asking
        for a year is asked again after an hour); the request that set it (``rested``) does not
        wait for it again, its own retry waits the same ``Retry-After``."""
        if retry_after is None or not retry_after > 0:  # no wait named, or one of now
            return
        now = time.monotonic()
        until = now + min(retry_after, MAX_THROTTLE_REST)
        if self._rest is None or until > self._rest.until:
            self._rest = rest = _Rest(status=status, at=now, until=until)
            rested.append(rest)
            # The requests waiting for the rest it replaces, or to be retried before it ends,
            # weigh this one at once: one past what they may wait fails now, not once the
            # shorter wait is over, and none is sent into this rest.
            for pause, ends in list(self._resting.items()):
                if ends < until:
                    del self._resting[pause]
                    pause.cancel()

    async def _rest_over(
        self, call: _Call, first_try: list[float], rested: list[_Rest], *, first: bool
    ) -> None:
        """Wait until the server's rest (`_rest`) ends, unless this request waited it out already;
        raise its error, unsent, when it ends past what the request may wait: ``max_retry_after``,
        the policy's ``timeout`` since the first try, ``give_up_at``. Closed meanwhile, before
        its ``first`` attempt: `CLOSED_UNSENT`."""
        while (ahead := self._rest_ahead(call, first_try, rested)) is not None:
            rest, left = ahead
            rested.append(rest)
            if log.isEnabledFor(logging.DEBUG):
                shown = self._scrub(call.url)
                log.debug(
                    "%s %s: waiting %.2f s for the server's Retry-After (HTTP %d)",
                    call.method,
                    shown,
                    left,
                    rest.status,
                )
            await self._pause(left, resting=True)
            if self._closed:  # closed while this request waited for the rest to end
                said = CLOSED_UNSENT if first else CLOSED_IN_FLIGHT
                raise ClientStateError(said, method=call.method, url=call.url)

    def _rest_ahead(
        self, call: _Call, first_try: list[float], rested: list[_Rest]
    ) -> tuple[_Rest, float] | None:
        """The server's rest this request has still to wait out and its seconds left; None when
        there is none (one over is forgotten: the requests after it skip the check). Its error,
        unsent, when it ends past what the request may wait (`_rest_bound`)."""
        rest = self._rest
        if rest is None or rest in rested:
            return None
        now = time.monotonic()
        left = rest.until - now
        if left <= 0:
            self._rest = None
            return None
        bound = self._rest_bound(left, now - first_try[0] if first_try else 0.0)
        if bound is not None:
            raise rest.held(call.method, call.url, now, bound)
        return rest, left

    def _rest_bound(self, left: float, elapsed: float) -> str | None:
        """What a wait of ``left`` more seconds for the server's rest, ``elapsed`` seconds after
        the request's first try, would end past (for the error), or None when it may be waited."""
        policy = self._retry
        if left > policy.max_retry_after:
            return f"max_retry_after={policy.max_retry_after:g} s"
        if not may_retry(policy, attempts_made=0, elapsed=elapsed, next_wait=left, retry_after=left):
            return f"the retry policy's timeout={policy.timeout:g} s"
        if self.give_up_at is not None and not time.monotonic() + left <= self.give_up_at:
            return "the time limit"
        return None

    def _spent(self, first_try: float) -> bool:
        """Whether a retry that got its slot now is past the retry budget: the policy's ``timeout``
        since the first try, or ``give_up_at``."""
        now = time.monotonic()
        timeout = self._retry.timeout
        if timeout is not None and now - first_try > timeout:
            return True
        return self.give_up_at is not None and now > self.give_up_at

    def _wait(
        self,
        attempt: int,
        started: list[float],
        retry_after: float | None,
        status: int | None = None,
        *,
        throttled: bool = False,
    ) -> float | None:
        """Seconds to wait before attempt ``attempt + 1`` (after an answer of ``status``, None
        after a transport error; ``throttled``: at least the token throttle's window, see
        `backoff`), or None when the policy says stop."""
        wait = backoff(
            self._retry,
            attempt,
            retry_after=retry_after,
            status=status,
            random=self._random.random,
            throttled=throttled,
        )
        now = time.monotonic()
        elapsed = now - (started[0] if started else now)
        if not may_retry(
            self._retry, attempts_made=attempt, elapsed=elapsed, next_wait=wait, retry_after=retry_after
        ):
            return None
        if self.give_up_at is not None and not now + wait <= self.give_up_at:
            return None
        return wait

    def _retrying(
        self, method: str, url: str, attempt: int, reason: str, wait: float, error: VBOError | None = None
    ) -> None:
        if not log.isEnabledFor(logging.DEBUG):
            return
        if error is not None:
            scrub_error(error, self._scrub)  # the note carries it (and it is dropped: retried)
        shown = self._scrub(url)  # the reason may quote the URL (a transport error's str does)
        note = RetryNote(
            method=method,
            url=shown,
            attempt=attempt,
            reason=reason.replace(url, shown),
            wait_for=wait,
            caused_by=error,
        )
        log.debug(
            "%s %s: %s; retrying in %.2f s (attempt %d of %d)",
            method,
            shown,
            note.reason,
            wait,
            attempt + 1,
            self._retry.attempts,
            extra={"vbo_async_retry": note},
        )

    def _gave_up(self, method: str, url: str, attempt: int, reason: str) -> None:
        if log.isEnabledFor(logging.INFO):
            shown = self._scrub(url)  # the reason may quote the URL (a transport error's str does)
            log.info(
                "%s %s: %s; giving up after %d attempt(s)", method, shown, reason.replace(url, shown), attempt
            )

    def _scrub(self, text: str) -> str:
        """``text`` without the client's secrets: server text quoted in an error or a log (a
        server may also put one into an href the client follows, and the URL is quoted in logs
        and errors). Only on paths that log or fail."""
        tokens = self.tokens
        return text if tokens is None else tokens.redactor().scrub(text)

    async def _attempt(self, call: _Call, first_try: list[float], rested: list[_Rest]) -> Answer:
        """One attempt, in a slot, after the server's rest if any (`_rest_over`); ``first_try``
        gets the time the first attempt got its slot."""
        started = time.perf_counter()
        method, url = call.method, call.url
        if call.authenticated and self._rest is not None:
            # A rest this request may not wait out fails it now, not once it got a slot (another
            # request may wait the rest out in it first).
            self._rest_ahead(call, first_try, rested)
        # Token requests are made from inside an API request's slot, one at a time; taking a slot
        # of their own could deadlock when every slot waits for the token.
        async with self._semaphore if call.authenticated else contextlib.nullcontext():
            first = not first_try  # no attempt of this request made yet: nothing sent
            if self._closed:  # closed while this request waited for a slot
                raise ClientStateError(CLOSED_UNSENT if first else CLOSED_IN_FLIGHT, method=method, url=url)
            if first:
                first_try.append(time.monotonic())
            elif self._spent(first_try[0]):
                # A retry waits for a slot like any request, and that wait is not checked when
                # the retry is decided: the other slots' requests took it past the budget.
                raise _Spent
            if call.authenticated and self._rest is not None:
                await self._rest_over(call, first_try, rested, first=first)
            failure: tuple[VBOError, BaseException | None] | None = None
            reading = _Reading()
            refused: Token | None = None  # a job action's token refused by a 401 whose body failed
            try:
                async with asyncio.timeout(self._timeout) as limit:
                    answer = await self._exchange(call, limit, reading, first_try, rested, first=first)
            except Exception as exc:
                unread = self._unread(call, reading, exc)
                if unread is not None and reading.response is not None:
                    answer = Answer(reading.response.status_code, reading.response, b"", unread)
                    refused = reading.refused
                else:
                    failure = self._failure(exc, method, url)
                    if failure is None:
                        raise
            if failure is not None:
                # Outside the handler: an unscrubbed error is never the context.
                raise failure[0] from failure[1]
            if refused is not None:  # renewed as after a 401 whose body was read
                async with asyncio.timeout(self._timeout) as limit:
                    answer.unrenewed = await self._renew_refused(limit, refused)
            if self._closed:  # closed from inside the exchange (its transport): as any other in flight
                raise ClientStateError(CLOSED_IN_FLIGHT, method=method, url=url)
        if log.isEnabledFor(logging.DEBUG):
            elapsed = (time.perf_counter() - started) * 1000
            shown = self._scrub(url)
            log.debug(
                "%s %s -> %d (%d bytes, %.1f ms)",
                method,
                shown,
                answer.status_code,
                len(answer.body),
                elapsed,
            )
        return answer

    def _failure(self, exc: Exception, method: str, url: str) -> tuple[VBOError, BaseException | None] | None:
        """The error to raise for an attempt that failed with ``exc``, and its cause: ``exc``, or
        a scrubbed copy when anything in ``exc``'s chain quotes a secret (`_quotes_secret`: a
        traceback prints the whole chain, and aiohttp's errors quote the URL, which a server may
        have put a secret in). None: ``exc`` is no I/O failure, raised as it is."""
        # Closing the pool under a request fails it in whatever way the transport happens to be
        # in (a read error, say): say what happened instead.
        if self._closed and not isinstance(exc, ClientStateError | TokenUnavailable):
            return ClientStateError(CLOSED_IN_FLIGHT, method=method, url=url), self._hidden(exc)
        if isinstance(exc, TimeoutError):
            said = f"no complete answer within {self._timeout} s"
            stage = _stage_cut_short(exc.__cause__)
            error = TransportError(
                said if stage is None else f"{said}: {stage}",
                method=method,
                url=url,
                unsent=stage == _NOT_CONNECTED,
            )
            return error, self._hidden(exc)
        if not isinstance(exc, httpx.HTTPError | OSError):
            return None
        text = _describe(exc)
        unsent = isinstance(exc, _UNSENT)
        if _is_certificate_error(exc):
            # The local TLS library's words; the cause is kept (a certificate error is never retried).
            error = TransportError(_excerpt(text), method=method, url=url, unsent=unsent)
            return error, _frameless(exc, self._scrub)
        # A parser quotes the line it refuses: a server may have echoed a secret there (scrubbed
        # before the cut, which could leave a part of one that no scrub finds).
        error = TransportError(_excerpt(self._scrub(text)), method=method, url=url, unsent=unsent)
        return error, self._hidden(exc)

    def _hidden(self, exc: Exception) -> BaseException | None:
        """``exc``, to be the cause of the client's error, without the frames of its chain
        (`_frameless`), or when its chain quotes a secret, a copy of it with its message scrubbed
        and no chain (`_scrubbed_copy`)."""
        if not _quotes_secret(exc, self._scrub):
            return _frameless(exc, self._scrub)
        return _scrubbed_copy(exc, self._scrub)

    async def _exchange(
        self,
        call: _Call,
        limit: asyncio.Timeout,
        reading: _Reading,
        first_try: list[float],
        rested: list[_Rest],
        *,
        first: bool,
    ) -> Answer:
        """One attempt: the request, and its replays after a 401 with a renewed token (the answer
        whose body is then read is put in ``reading``, for `_unread`, with the token a 401 to a
        job action refused). Getting
        a token does not count against the attempt's ``limit``: its own requests have theirs, and
        their retries wait out the token endpoint's ``Retry-After`` (cutting that wait short
        would cancel it and send the next attempt's grant at once, into the throttle). Nor does
        waiting out a server's rest set while it waited for a token (`_rest_over`: the request,
        or its replay, is sent after it, as every request of the client is)."""
        token = await self._token_within(limit, None) if call.authenticated else None
        if token is not None and self._rest is not None:
            with _stopped(limit):
                await self._rest_over(call, first_try, rested, first=first)
        renewals = 0
        refused: Token | None = None  # a non-idempotent request's token the server refused
        lean = self._lean_get if _is_plain_get(call) else None
        # A form of strings (a token grant: a fresh client's first request) goes lean too.
        post = self._lean_post if call.method == "POST" and _string_form(call) is not None else None
        response: httpx.Response | Reply
        while True:
            self.requests_sent += 1
            if lean is not None:
                # The URL as httpx writes it (percent-encoded where the string is not), as
                # ``handle_async_request`` sends an ``httpx.Request``'s.
                target = self._target(call.url)
                timeouts = self._extensions["timeout"]
                response = await lean(target.written, self._kept_headers(target, token)[1], timeouts)
            elif post is not None:
                # Not bound to a name here: the form (a password) stays out of this frame.
                response = await post(*self._lean_form(call, token), self._extensions["timeout"])
            elif self._finish_closes:
                response = await _through_httpcore(self._transport, self._build(call, token))
            else:
                response = await self._transport.handle_async_request(self._build(call, token))
            if token is None or response.status_code != 401 or renewals == MAX_RENEWALS:
                break
            if call.method not in IDEMPOTENT_METHODS:
                # A job action is sent once, a 401 no exception: the server refused it before
                # acting, its answer is the error, and the token is renewed after it is read.
                refused = token
                break
            # A 401's body is never needed: the token is renewed and the request sent again.
            await (_finish_close(response, self._transport) if self._finish_closes else response.aclose())
            if log.isEnabledFor(logging.DEBUG):
                shown = self._scrub(call.url)
                log.debug("401 from %s %s; renewing the token and replaying", call.method, shown)
            token = await self._token_within(limit, token)
            if self._rest is not None:
                with _stopped(limit):
                    await self._rest_over(call, first_try, rested, first=False)
            renewals += 1
        reading.response, reading.refused = response, refused
        clock = self.clock
        if (now := time.monotonic()) >= clock.due:  # a look a second: the Date changes no faster
            clock.due = now + 1.0
            header = response.headers.get if isinstance(response, httpx.Response) else response.header
            clock.observe(header("date"))
        try:
            body = await self._read(response, call.method, call.url)
        finally:
            await (_finish_close(response, self._transport) if self._finish_closes else response.aclose())
        reading.response = None  # read: what fails from here on is no body's (`_unread`)
        unrenewed = None if refused is None else await self._renew_refused(limit, refused)
        return Answer(response.status_code, response, body, unrenewed=unrenewed)

    async def _renew_refused(self, limit: asyncio.Timeout, refused: Token) -> VBOError | None:
        """Renew the token a request that is not sent again was refused with (a 401 to a job
        action), so that the caller's next request, the action sent again by hand included, goes
        with a fresh one; the renewal's error when it failed (the answer to report is the 401,
        which says so), else None."""
        try:
            await self._token_within(limit, refused)
        except TokenUnavailable as exc:
            log.debug("renewing a token refused by a 401 failed: %s", exc.error)
            return exc.error
        return None

    def _unread(self, call: _Call, reading: _Reading, exc: Exception) -> VBOError | None:
        """The error ``exc`` met reading the body of the answer in ``reading`` (too large, not
        valid for its coding, cut short, not all there within the timeout), when that answer
        stands without its body (`_stands_unread`: a job action, whose status says whether the
        server acted, whatever became of its body; a grant's refusal; a 429 or a 5xx): scrubbed,
        without its traceback. None when ``exc`` is to be raised."""
        response = reading.response
        if response is None or not _stands_unread(call, response.status_code, exc):
            return None
        if isinstance(exc, VBOError):
            error = exc
        else:
            failure = self._failure(exc, call.method, call.url)
            if failure is None:
                return None
            error = failure[0]
        scrub_error(error, self._scrub)
        if log.isEnabledFor(logging.DEBUG):
            shown = self._scrub(call.url)
            log.debug("%s %s -> %d: body not read (%s)", call.method, shown, response.status_code, error)
        return error.with_traceback(None)

    async def _token_within(self, limit: asyncio.Timeout, stale: Token | None) -> Token:
        """`_token`, with ``limit`` stopped meanwhile: the attempt's time on the wire keeps its bound."""
        tokens = self.tokens
        token = tokens.ready() if stale is None and tokens is not None else None
        if token is not None:  # nearly every request: no wait, nothing to stop
            return token
        with _stopped(limit):
            return await self._token(stale)

    async def _token(self, stale: Token | None) -> Token:
        tokens = self.tokens
        if tokens is None:  # pragma: no cover - the client sets it at once
            raise ClientStateError("no token manager")
        try:
            return await (tokens.current() if stale is None else tokens.renew(stale))
        except VBOError as exc:
            raise TokenUnavailable(exc) from exc

    def _build(self, call: _Call, token: Token | None) -> httpx.Request:
        """The request, built directly (``AsyncClient.build_request`` would merge cookies, base URL,
        query parameters and headers the client never has: a fifth of its cost per request).

        A GET without a body (nearly every request) is made from parts kept between requests:
        the parsed URL and the headers for the current token, ``Host`` first as httpx writes it,
        with an empty body read at once. That is the request httpx builds from the URL string and
        the header list, in a sixteenth of the time (a test compares the two). A form POST of
        strings (a token grant, a fresh client's first request) is laid out the same way, with
        the body and the content headers httpx adds for ``data=`` (`_form_request`)."""
        target = self._target(call.url)
        url = target.parsed
        if _is_plain_get(call):
            request = httpx.Request(
                "GET",
                url,
                headers=self._kept_headers(target, token)[0],
                stream=_NO_BODY,
                extensions=self._extensions,
            )
            request.read()
            return request
        # A grant's fields are revealed only here, in a frame that returns before the request is
        # sent (every frame an error passes through shows its variables to an error reporter).
        string_form = _string_form(call)
        if string_form is not None:
            return self._form_request(call.method, url, string_form, token)
        form = call.form.reveal() if isinstance(call.form, GrantForm) else call.form
        sent = self._headers
        if call.headers:
            extra = [(key.encode("ascii"), value.encode("ascii")) for key, value in call.headers.items()]
            sent = [*sent, *extra]
        if token is not None:
            sent = [*sent, _bearer(token)]
        return httpx.Request(
            call.method,
            url,
            headers=sent,
            json=call.json,
            data=form,
            extensions=self._extensions,
        )

    def _form_request(
        self, method: str, url: httpx.URL, form: dict[str, str], token: Token | None
    ) -> httpx.Request:
        """The request httpx builds for ``data=form`` (a test compares the two), from
        `_form_parts`, the body read at once; without httpx's default-header pass, which
        rebuilds the headers twice."""
        headers, body = self._form_parts(url, form, token)
        request = httpx.Request(
            method, url, headers=headers, stream=httpx.ByteStream(body), extensions=self._extensions
        )
        request.read()
        return request

    def _lean_form(self, call: _Call, token: Token | None) -> tuple[str, list[tuple[bytes, bytes]], bytes]:
        """(URL, headers, body) of a form POST as the lean POST takes them: those of
        `_form_request` (a test compares the two paths). The form is revealed here, in a frame
        that returns before the request is sent."""
        target = self._target(call.url)
        form = _string_form(call)
        assert form is not None, "`_exchange` sends only a form of strings this way"
        headers, body = self._form_parts(target.parsed, form, token)
        return target.written, headers, body

    def _form_parts(
        self, url: httpx.URL, form: dict[str, str], token: Token | None
    ) -> tuple[list[tuple[bytes, bytes]], bytes]:
        """The headers and body httpx builds for ``data=form``: the form URL-encoded as httpx
        encodes it, headers in httpx's order (``Host``, the client's own, the bearer token, then
        ``Content-Length`` and ``Content-Type``)."""
        body = urlencode(form, doseq=True).encode("utf-8")
        sent = self._host_own_and_bearer(url, token)
        sent += [(b"Content-Length", str(len(body)).encode("ascii")), _FORM_TYPE]
        return sent, body

    def _url(self, url: str) -> httpx.URL:
        """``url`` parsed (kept: parsing is most of what building a request costs), or
        `LinkError` when httpx cannot parse it."""
        return self._target(url).parsed

    def _target(self, url: str) -> _Target:
        """`_url`'s parse of ``url`` with what a request of it needs written out, kept."""
        target = self._parsed.get(url)
        if target is None and (target := self._urls.recall(url)) is None:
            try:
                target = _Target(httpx.URL(url))
            except httpx.InvalidURL as exc:
                # As an href: `scrub_error` hides a secret a server put in it (send's handler).
                raise LinkError(f"cannot request {quoted(url)}: {exc}", href=url) from exc
            if len(url) <= _URL_LENGTH_KEPT:
                self._urls.keep(url, target)
        return target

    def _kept_headers(
        self, target: _Target, token: Token | None
    ) -> tuple[httpx.Headers, list[tuple[bytes, bytes]]]:
        """The headers of a GET of ``target`` with ``token`` (``Host``, the client's own and the
        bearer token, as httpx orders them) and their raw list (the one the lean GET takes),
        both kept for the last host and token (copying them is cheap, normalising them is not)."""
        key = (target.netloc, None if token is None else token.access_token)
        kept = self._get_headers
        if kept is None or kept[0] != key:
            headers = httpx.Headers(self._host_own_and_bearer(target.parsed, token))
            kept = self._get_headers = (key, headers, headers.raw)
        return kept[1], kept[2]

    def _host_own_and_bearer(self, url: httpx.URL, token: Token | None) -> list[tuple[bytes, bytes]]:
        """``Host``, the client's own headers and the bearer token, in the order httpx writes
        them for a request built from the URL string and the header list."""
        sent = [(b"Host", url.netloc), *self._headers]
        if token is not None:
            sent.append(_bearer(token))
        return sent

    async def _read(self, response: httpx.Response | Reply, method: str, url: str) -> bytes:
        """The whole body, decoded from its ``Content-Encoding`` with at most ``max_response_bytes``
        produced (a compression bomb is refused as it inflates, not after)."""
        limit = self._max_bytes
        header = response.headers.get if isinstance(response, httpx.Response) else response.header
        declared = _declared_length(response.status_code, header("content-length"))
        encoding = header("content-encoding")
        parts: list[bytes] = []  # chunks of at least _GATHERED bytes, and those gathered
        small = bytearray()  # small chunks, gathered: no object kept per chunk of a trickle
        wire = 0
        decoder: BodyDecoder | None = None
        # The last chunk read and what it decoded to are let go of on every failure too: this
        # frame is in the error's traceback, whose locals an error reporter shows (a token
        # answer past the limit may echo the password all along).
        chunk = piece = b""
        try:
            # Inside the try: an unknown coding is refused as the decoder is built.
            decoder = BodyDecoder(encoding, limit=limit) if encoding else None
            if declared is not None and decoder is None and declared > limit:
                raise self._too_large(method, url, declared)
            async for chunk in response.stream:  # type: ignore[union-attr]
                wire += len(chunk)
                if decoder is None:
                    if wire > limit:
                        raise self._too_large(method, url, wire)
                    piece = chunk
                else:
                    piece = decoder.feed(chunk)
                if len(piece) >= _GATHERED:
                    if small:
                        parts.append(bytes(small))
                        small.clear()
                    parts.append(piece)
                else:
                    small += piece
            if declared is not None and wire < declared:
                raise TransportError(
                    f"the response was cut short: {wire} of {declared} bytes", method=method, url=url
                )
            if decoder is not None:
                small += decoder.finish()
            if small:
                parts.append(bytes(small))
        except BodyTooLarge as exc:
            parts.clear()  # not kept by the error's traceback (up to max_response_bytes)
            small.clear()
            chunk = piece = b""
            raise self._too_large(method, url, exc.size) from None
        except (UnsupportedEncoding, CorruptBody) as exc:
            parts.clear()
            small.clear()
            chunk = piece = b""
            problem = exc.shown(self._scrub) if isinstance(exc, UnsupportedEncoding) else exc.reason
            if not 200 <= response.status_code < 300:
                # An error page only words the error: its status decides (a 503 is retried).
                if log.isEnabledFor(logging.DEBUG):
                    shown = self._scrub(url)
                    log.debug("%s %s -> %d: body dropped (%s)", method, shown, response.status_code, problem)
                return b""
            # The codings the decoder undid, not the header as written (any length of padding).
            codings = ", ".join(decoder.encodings) if decoder is not None else None
            undecodable = _undecodable(exc, problem, codings, method, url)
        except BaseException:
            # The chunks read so far are not kept by the error's traceback (this frame is in it):
            # a caller keeping the error (a sweep's per-tenant failure) kept up to
            # max_response_bytes with it.
            parts.clear()
            small.clear()
            chunk = piece = b""
            raise
        else:
            return b"".join(parts)
        # Raised outside the handler: the decoder's error quotes the server's Content-Encoding
        # unscrubbed, and must not stay attached as the DecodeError's __context__.
        raise undecodable

    def _too_large(self, method: str, url: str, size: int) -> ResponseTooLargeError:
        return ResponseTooLargeError(
            f"the response body exceeds max_response_bytes={self._max_bytes} (at least {size} bytes)",
            method=method,
            url=url,
        )


def _stands_unread(call: _Call, status: int, exc: Exception) -> bool:
    """Whether an answer of ``status`` whose body could not be read (``exc``) is still the
    answer, without its body, rather than a failed attempt (`Sender._unread`).

    A 429 or a 5xx always is: its body only words the error, while its status and
    ``Retry-After`` say when to ask again (the server's rest, the token endpoint's throttle),
    which an attempt taken for failed lost (retried into the throttle, or never rested). So is
    any answer to a request sent with ``unread_body_ok`` (a job action: its status says whether
    the server acted; a grant: a refused password is paused, not sent again as if its answer
    were lost), but a grant's success whose body was not refused for itself (too large, not
    valid for its coding) but lost on the way (cut short, stalled): its token is gone with it,
    as with the whole answer (docs/reliability.md, "Token grants")."""
    if _rest_status(status):
        return True
    if not call.unread_body_ok:
        return False
    if isinstance(call.form, GrantForm) and 200 <= status < 300:
        return isinstance(exc, ResponseTooLargeError | DecodeError)
    return True


def _is_password_grant(call: _Call) -> bool:
    """Whether ``call`` is a password grant (`GrantForm`), safe to send again: it changes nothing
    on the server but open one more session, as the lost one did."""
    return isinstance(call.form, GrantForm) and call.form.grant_type == "password"


_GATHERED = 16 * 1024
"""Chunks of a body smaller than this are gathered into one buffer as they arrive: kept each as
its own object until the body was joined, a body sent a byte at a time (a byte per packet) cost
about 90 bytes of memory per byte, 1 MiB about 90 MiB, far past ``max_response_bytes``."""


def _string_form(call: _Call) -> dict[str, str] | None:
    """``call``'s form (a grant's revealed) when it is sent as a form of strings and nothing
    else (`Sender._form_parts`), else None."""
    form = call.form.reveal() if isinstance(call.form, GrantForm) else call.form
    if form and call.json is None and not call.headers and _all_strings(form):
        return form
    return None


def _is_plain_get(call: _Call) -> bool:
    """Whether ``call`` is a GET with nothing but the URL (nearly every request)."""
    return call.method == "GET" and call.json is None and call.form is None and not call.headers


def _lean_get(transport: httpx.AsyncBaseTransport) -> LeanGet | None:
    """`AiohttpTransport.get` when ``transport`` is exactly the default transport (a subclass
    may change ``handle_async_request``, which every request must then go through). Looked up
    without importing aiohttp: an instance of the class means its module is loaded."""
    module = sys.modules.get("vbo_async._aiohttp")
    if module is not None and type(transport) is module.AiohttpTransport:
        lean: LeanGet = transport.get  # type: ignore[attr-defined]
        return lean
    return None


CLOSE_GRACE = 1.0
"""Seconds a cancelled caller waits for the close of its answer over httpx's own transport to
end (it returns the connection to httpcore's pool or closes it: milliseconds) before the
cancellation goes on, the close left to end on its own."""


async def _finish_close(response: httpx.Response | Reply, transport: httpx.AsyncBaseTransport) -> None:
    """Close ``response`` (an answer over httpx's own ``transport``), and the connections that
    read bytes past their last answer (`_closed_clean`); when the caller is cancelled meanwhile,
    let the close end first (`CLOSE_GRACE` at most, so that a close that hangs does not hold a
    timeout up), then let the cancellation go on."""
    closing = asyncio.ensure_future(_closed_clean(response, transport))
    try:
        await asyncio.shield(closing)
    except asyncio.CancelledError:
        try:
            await asyncio.wait([closing], timeout=CLOSE_GRACE)  # a second cancellation ends it
        finally:
            closing.add_done_callback(_retrieved)  # a failed close is not "never retrieved"
        raise


async def _closed_clean(response: httpx.Response | Reply, transport: httpx.AsyncBaseTransport) -> None:
    """Close ``response``, then the idle connections of ``transport``'s pool whose parser holds
    bytes read past their last answer (`_read_past`).

    httpcore reuses an idle connection unless bytes wait in its socket; bytes that came in the
    same read as the end of an answer (the answer sent twice, a stray CRLF after a body, a
    ``Content-Length`` short of the body) wait in h11's buffer instead, and the next request
    sent on that connection got them as its answer: another request's (``job("j2")`` answered
    with job j1, a job action's 409 read as success), or a failure after the server had carried
    the action out. aiohttp's transport closes such a connection (its parser sees the bytes)."""
    await response.aclose()
    await _close_idle_httpcore(transport, _read_past)


def _read_past(connection: Any) -> bool:
    """Whether an httpcore HTTP/1.1 connection (or the one a proxy's connection wraps) holds
    bytes its parser read past the last answer (h11's ``trailing_data``); an unknown shape: no."""
    for _ in range(3):
        state = getattr(connection, "_h11_state", None)
        if state is not None:
            try:
                return bool(state.trailing_data[0])
            except Exception:
                return False
        connection = getattr(connection, "_connection", None)
    return False


def _retrieved(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


async def _through_httpcore(transport: httpx.AsyncBaseTransport, request: httpx.Request) -> httpx.Response:
    """``request`` over httpx's own transport; failed or cancelled, the connections httpcore
    stranded in its pool (`_abandoned_httpcore`) are closed."""
    try:
        return await transport.handle_async_request(request)
    except BaseException:
        abandoned = _abandoned_httpcore(transport)
        if abandoned:
            closing = asyncio.ensure_future(_close_httpcore(transport, abandoned))
            try:
                await asyncio.shield(closing)
            except asyncio.CancelledError:
                await asyncio.wait([closing], timeout=CLOSE_GRACE)  # a second cancellation ends it
        raise


def _abandoned_httpcore(transport: httpx.AsyncBaseTransport) -> list[Any]:
    """The connections of httpx's own transport that httpcore made for a request which then
    went away before using them (cancelled before connecting, after connecting and before
    sending, or in a proxy's CONNECT before TLS: encode/httpcore#1093), taken out of its pool:
    no request of the pool names them, and they are neither idle, nor available, nor closed.
    httpcore never frees them, and once the pool's limit of them is reached every request waits
    for a connection until its timeout. A connection in use is always named by its request.
    A pool of another shape: none."""
    pool = getattr(transport, "_pool", None)
    connections = getattr(pool, "_connections", None)
    requests = getattr(pool, "_requests", None)
    lock = getattr(pool, "_optional_thread_lock", None)
    if not isinstance(connections, list) or not isinstance(requests, list) or lock is None:
        return []
    with lock:
        waited_on = {id(getattr(request, "connection", None)) for request in requests}
        abandoned = [
            connection
            for connection in connections
            if id(connection) not in waited_on and _stranded(connection)
        ]
        for connection in abandoned:
            connections.remove(connection)
    return abandoned


def _stranded(connection: Any) -> bool:
    """Whether an httpcore connection no request names can never serve one nor be freed by the
    pool: neither idle, nor available, nor closed (an unknown shape: no)."""
    try:
        return not (connection.is_idle() or connection.is_available() or connection.is_closed())
    except Exception:
        return False


async def _close_httpcore(transport: httpx.AsyncBaseTransport, connections: list[Any]) -> None:
    close = getattr(getattr(transport, "_pool", None), "_close_connections", None)
    if close is not None:
        with contextlib.suppress(Exception):  # a connection the peer reset: closed all the same
            await close(connections)


async def _close_idle_httpcore(
    transport: httpx.AsyncBaseTransport, which: Callable[[Any], bool] = lambda connection: True
) -> None:
    """Close the idle connections of httpx's own transport (those ``which`` picks), as
    httpcore's pool closes those over its keep-alive limit (it has no public way to; a pool of
    another shape is left as it is). httpcore closes an idle connection only when a later
    request comes, or its keep-alive expiry has passed by then."""
    pool = getattr(transport, "_pool", None)
    connections = getattr(pool, "_connections", None)
    lock = getattr(pool, "_optional_thread_lock", None)
    close = getattr(pool, "_close_connections", None)
    if not isinstance(connections, list) or lock is None or close is None:
        return
    with lock:
        idle = [connection for connection in connections if connection.is_idle() and which(connection)]
        for connection in idle:
            connections.remove(connection)
    for connection in idle:  # the pool's own closing: shielded from cancellation
        with contextlib.suppress(Exception):  # a connection the peer reset: closed all the same
            await close([connection])


def build_http(transport: httpx.AsyncBaseTransport, *, timeout: float | None) -> httpx.AsyncClient:
    """The ``httpx.AsyncClient`` that owns a `Sender`'s transport (closing it closes the pool):
    no redirects, no proxies from the environment. `Sender` builds its requests itself and hands
    them to the transport directly, so the client adds no cookie, header or auth handling."""
    return httpx.AsyncClient(
        transport=transport,
        timeout=httpx.Timeout(timeout),
        follow_redirects=False,
        trust_env=False,
    )


def _undecodable(
    exc: UnsupportedEncoding | CorruptBody, problem: str, codings: str | None, method: str, url: str
) -> DecodeError:
    """The `DecodeError` of a success's body that its ``Content-Encoding`` cannot undo
    (``problem``: what the decoder said, scrubbed; ``codings``: those it was undoing)."""
    if isinstance(exc, UnsupportedEncoding):
        return DecodeError(
            f"the response body has a Content-Encoding this client cannot decode boundedly ({problem})",
            method=method,
            url=url,
        )
    return DecodeError(f"the response body is not valid {codings}: {problem}", method=method, url=url)


def _scrubbed_copy(exc: Exception, scrub: Callable[[str], str]) -> BaseException | None:
    """An httpx error like ``exc`` (same class and request) whose message is scrubbed, to stand
    for it as the cause of a scrubbed `TransportError`; None for anything else."""
    if not isinstance(exc, httpx.RequestError):
        return None
    try:
        request: httpx.Request | None = exc.request
    except RuntimeError:  # raised without a request
        request = None
    return type(exc)(scrub(str(exc)), request=None if request is None else _bare(request, scrub))


def _frameless(exc: BaseException, scrub: Callable[[str], str]) -> BaseException:
    """``exc``, its causes, contexts and grouped exceptions without their tracebacks: the frames
    of the transport they were raised through hold the request's headers (the bearer token) and
    body (a grant's form: the password), which an error reporter shows with each frame's
    variables (Sentry by default). The ``request`` an httpx error carries holds them too: it is
    replaced by a bare copy (`_bare`, its URL scrubbed). The chain's types and words are kept."""
    seen: set[int] = set()
    pending = [exc]
    while pending and len(seen) < _CHAIN_READ:
        link = pending.pop()
        if id(link) in seen:
            continue
        seen.add(id(link))
        link.__traceback__ = None
        if isinstance(link, httpx.RequestError):
            with contextlib.suppress(RuntimeError):  # raised without a request
                link.request = _bare(link.request, scrub)
        pending += [nested for nested in (link.__cause__, link.__context__) if nested is not None]
        if isinstance(link, BaseExceptionGroup):
            pending += link.exceptions
    return exc


_DROPPED_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "content-length"})
"""Headers `_bare` leaves out: the secrets, and the length of the body it does not keep (of a
token form: the password's length, near enough)."""


def _bare(request: httpx.Request, scrub: Callable[[str], str]) -> httpx.Request:
    """``request`` as an error may keep it: its method, its URL (scrubbed: a server may put a
    secret into an href) and its headers, without a body (a grant's form: the password or the
    refresh token) and without the ``Authorization`` header (the bearer token), which
    ``exc.request`` of an httpx error handed to any handler, reporter or debugger."""
    headers = [
        (name, value) for name, value in request.headers.multi_items() if name.lower() not in _DROPPED_HEADERS
    ]
    url = str(request.url)
    shown = scrub(url)
    try:
        return httpx.Request(request.method, shown, headers=headers)
    except (httpx.InvalidURL, ValueError, TypeError):  # the mask made it no URL httpx takes
        return httpx.Request(
            request.method, url if shown == url else "http://redacted.invalid/", headers=headers
        )


def _quotes_secret(exc: BaseException, scrub: Callable[[str], str]) -> bool:
    """Whether ``exc`` or an exception of its chain (causes, contexts and grouped exceptions: what
    a traceback prints) says something ``scrub`` changes; also True for a chain too long to read."""
    seen: set[int] = set()
    pending = [exc]
    while pending:
        link = pending.pop()
        if id(link) in seen:
            continue
        if len(seen) == _CHAIN_READ:
            return True
        seen.add(id(link))
        said = [str(link), repr(link.args), *(str(note) for note in getattr(link, "__notes__", ()))]
        if any(scrub(text) != text for text in said):
            return True
        pending += [nested for nested in (link.__cause__, link.__context__) if nested is not None]
        if isinstance(link, BaseExceptionGroup):
            pending += link.exceptions
    return False


_NOT_CONNECTED = "not connected: the request was not sent"
_UNSENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
"""httpx's failures of a request that never reached the server: no connection could be made,
or none was free in time (`TransportError.unsent`)."""
_STAGES = (
    (("vbo_async._sending", "Sender._read"), "the answer began, its body did not arrive whole"),
    (("vbo_async._aiohttp", "_Connector.connect"), _NOT_CONNECTED),
    (("vbo_async._aiohttp", "AiohttpTransport._send"), "connected, no answer began"),
)
"""What an attempt cut short by its timeout was doing, by a function it was in (its module and
qualified name), the first found: reading the body; for the default transport, connecting
(the TCP connection, the TLS handshake, or a wait for a free connection) or waiting for the
answer's head."""


def _stage_cut_short(cancelled: BaseException | None) -> str | None:
    """What the attempt whose timeout turned ``cancelled`` (the cancellation ``asyncio.timeout``
    raises its TimeoutError from) into a timeout was doing, read from the frames it was raised
    through; None when they do not say (another transport, before its answer). A job action
    cut short before it was connected was not sent: it may be sent again."""
    frames: set[tuple[object, str]] = set()
    trace = cancelled.__traceback__ if cancelled is not None else None
    while trace is not None:
        code = trace.tb_frame.f_code
        frames.add((trace.tb_frame.f_globals.get("__name__"), code.co_qualname))
        trace = trace.tb_next
    return next((stage for where, stage in _STAGES if where in frames), None)


def _say_attempts(error: TransportError, attempts: int, first_try: list[float]) -> None:
    """Add to ``error``'s message how many attempts were made over how long, when more than one
    was: its own message names one attempt's limit ("no complete answer within 30 s") and would
    read as the whole wait."""
    if attempts < 2:
        return
    elapsed = time.monotonic() - first_try[0] if first_try else 0.0
    error.message = f"{error.message} (gave up after {attempts} attempts in {elapsed:.1f} s)"


def _status_reason(status: int, retry_after: float | None, policy: RetryPolicy) -> str:
    """Why an answer of ``status`` was given up, for the log: with the server's ``Retry-After``
    when that was the reason (longer than the policy allows)."""
    if retry_after is None or not retry_after > policy.max_retry_after:
        return f"HTTP {status}"
    cap = policy.max_retry_after
    return f"HTTP {status} asking to retry after {retry_after:.0f} s, more than max_retry_after={cap:g} s"


def _bearer(token: Token) -> tuple[bytes, bytes]:
    return (b"Authorization", b"Bearer " + token.access_token.encode("ascii"))


def _all_strings(form: dict[str, str]) -> bool:
    """Whether every key and value of ``form`` is a ``str`` (what `Sender._form_request` encodes
    exactly as httpx does; anything else, and an empty form, which httpx sends without a body or
    a ``Content-Type``, is left to httpx)."""
    return all(key.__class__ is str and value.__class__ is str for key, value in form.items())


def _declared_length(status: int, value: str | None) -> int | None:
    """The body length a ``Content-Length`` of ``value`` declares for an answer of ``status``;
    None when absent or unreadable, and for a 1xx, 204 or 304, which has no body whatever its
    headers say (RFC 9112 §6.3: it ends at the blank line; the header describes the resource)."""
    if status < 200 or status in (204, 304):
        return None
    return _content_length(value)


def _content_length(value: str | None) -> int | None:
    if value is None:
        return None
    text = value.strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 18 else None


def _excerpt(text: str) -> str:
    """``text``, cut to `_QUOTED` characters."""
    return text if len(text) <= _QUOTED else text[:_QUOTED] + "..."


def _describe(exc: BaseException) -> str:
    if isinstance(exc, httpx.ConnectTimeout | httpx.ReadTimeout | httpx.WriteTimeout | httpx.PoolTimeout):
        return f"timed out ({type(exc).__name__})"
    if _is_certificate_error(exc):
        return f"TLS certificate verification failed: {_innermost(exc)}"
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect: {_innermost(exc) or 'connection failed'}"
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"


def _innermost(exc: BaseException) -> str:
    seen = 0
    while (exc.__cause__ is not None or exc.__context__ is not None) and seen < 20:
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
        seen += 1
    return str(exc) or type(exc).__name__


_TLS_MISMATCHES = frozenset(
    {
        "WRONG_VERSION_NUMBER",  # https:// to a port that speaks plain HTTP
        "PACKET_LENGTH_TOO_LONG",  # the same, as some answers read
        "UNSUPPORTED_PROTOCOL",
        "TLSV1_ALERT_PROTOCOL_VERSION",
        "NO_PROTOCOLS_AVAILABLE",
        "SSLV3_ALERT_HANDSHAKE_FAILURE",
        "NO_SHARED_CIPHER",
        # The server wants a client certificate (TLS 1.3 says so after the handshake, on the
        # first read: the request, a password grant, was sent) or refuses the one it got.
        "TLSV13_ALERT_CERTIFICATE_REQUIRED",
        "SSLV3_ALERT_BAD_CERTIFICATE",
        "SSLV3_ALERT_CERTIFICATE_UNKNOWN",
        "TLSV1_ALERT_UNKNOWN_CA",
    }
)
"""OpenSSL's reasons for a handshake the two ends cannot agree on: it fails the same way again."""


def _fails_every_time(exc: BaseException | None) -> bool:
    """Whether the chain of ``exc`` holds a TLS failure no retry changes: a refused certificate,
    or a handshake the two ends cannot agree on (`_TLS_MISMATCHES`: a TLS version or cipher, or
    ``https://`` to a plain HTTP port). A handshake cut short (an ``SSLEOFError``: a load balancer
    dropping the connection) is not one."""
    return _is_certificate_error(exc) or any(
        isinstance(link, ssl.SSLError) and getattr(link, "reason", None) in _TLS_MISMATCHES
        for link in _chain(exc)
    )


def _is_certificate_error(exc: BaseException | None) -> bool:
    return any(isinstance(link, ssl.SSLCertVerificationError) for link in _chain(exc))


def _chain(exc: BaseException | None) -> Iterator[BaseException]:
    """``exc`` and its causes (or contexts), the first 10."""
    seen = 0
    while exc is not None and seen < 10:
        yield exc
        exc = exc.__cause__ or exc.__context__
        seen += 1
