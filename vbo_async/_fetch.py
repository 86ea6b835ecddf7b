"""The network, in one place: sending, retrying, bounding, streaming, sharing and paging.

Every request of a client goes through `Fetcher.send`: it checks the client's state, bounds
requests in flight with a semaphore, bounds each attempt as a whole with ``timeout``, streams the
body against ``max_response_bytes`` and maps every failure into the `VBOError` tree. Idempotent
requests (GETs, the token request) are retried with stamina on transport errors and the statuses
of `RetryPolicy`; anything else is sent exactly once. Identical GETs in flight share one request.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import ssl
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, TypeVar

import attrs
import httpx
import stamina

from ._auth import TokenUnavailable
from ._decode import Decoder, parse_json
from ._dialects import DIALECTS, Dialect
from ._exceptions import (
    AuthenticationError,
    ClientStateError,
    LinkError,
    ResponseTooLargeError,
    TransportError,
    VBOError,
)
from ._pages import with_limit
from ._retry import RetryPolicy
from ._status import IDEMPOTENT_METHODS, error_for_status, parse_retry_after
from ._urls import ApiRoot

__all__ = ["Answer", "Fetcher", "RetryPolicy"]

log = logging.getLogger("vbo_async")
T = TypeVar("T")
_CLOSED_IN_FLIGHT = "the client was closed while the request was in flight"


@attrs.frozen
class Answer:
    """A complete response: status, headers and the whole body."""

    status_code: int
    headers: httpx.Headers
    body: bytes


class _RetryableStatus(Exception):
    """An answer with a status worth retrying; carries it for the last attempt's error."""

    def __init__(self, answer: Answer, retry_after: float | None) -> None:
        super().__init__(answer.status_code)
        self.answer = answer
        self.retry_after = retry_after


@attrs.define(eq=False)
class _Flight:
    task: asyncio.Task[Any]
    waiters: int = 0


class Fetcher:
    """Sends requests for one client, and follows links for it (it is the links' navigator)."""

    def __init__(
        self,
        *,
        api_root: ApiRoot,
        http: httpx.AsyncClient,
        auth: httpx.Auth | None,
        max_concurrency: int,
        timeout: float | None,
        max_response_bytes: int,
        retry: RetryPolicy,
    ) -> None:
        self._api_root = api_root
        self._http = http
        self.auth = auth
        self._semaphore = asyncio.Semaphore(max_concurrency)
        self._timeout = timeout
        self._max_bytes = max_response_bytes
        self._retry = retry
        self._flights: dict[tuple[str, Any], _Flight] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self.decoder = Decoder(self)
        self.requests_sent = 0
        """Attempts put on the wire so far (retries and token requests included)."""

    @property
    def api_root(self) -> ApiRoot:
        return self._api_root

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
            raise ClientStateError(
                "the client is bound to the event loop it was first used on; create one client per event loop"
            )

    async def aclose(self) -> None:
        """Cancel shared requests still in flight and close the connection pool."""
        if self._closed:
            return
        self._closed = True
        tasks = [flight.task for flight in self._flights.values()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._flights.clear()
        await self._http.aclose()

    # --- sending ----------------------------------------------------------------------------------

    async def send(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        form: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        authenticated: bool = True,
        retry: bool | None = None,
    ) -> Answer:
        """Send one request and return the complete answer, whatever its status (retryable
        statuses of idempotent requests are retried first). ``retry`` defaults to whether the
        method is idempotent."""
        self.check_usable()
        if not self._api_root.contains(url):
            raise LinkError(f"refusing to send a request outside the API root: {url}")
        if retry is None:
            retry = method in IDEMPOTENT_METHODS
        try:
            if not retry:
                return await self._attempt(method, url, json, form, headers, authenticated, retryable=False)
            policy = self._retry
            async for attempt in stamina.retry_context(
                on=self._backoff,
                attempts=policy.attempts,
                timeout=policy.timeout,
                wait_initial=policy.wait_initial,
                wait_max=policy.wait_max,
                wait_jitter=policy.wait_jitter,
            ):
                with attempt:
                    return await self._attempt(
                        method, url, json, form, headers, authenticated, retryable=True
                    )
        except _RetryableStatus as last:
            return last.answer
        except TokenUnavailable as failure:
            # The token request has its own retries; it is not retried again around this one.
            raise failure.error from failure.error.__cause__
        raise AssertionError("unreachable: stamina ends with a return or an exception")

    def _backoff(self, exc: Exception) -> bool | float:
        if isinstance(exc, _RetryableStatus):
            log.warning("HTTP %d, retrying", exc.answer.status_code)
            return exc.retry_after if exc.retry_after is not None else True
        if isinstance(exc, TransportError):
            if _is_certificate_error(exc):
                return False
            log.warning("transport error, retrying: %s", exc)
            return True
        return False

    async def _attempt(
        self,
        method: str,
        url: str,
        json: Any,
        form: dict[str, str] | None,
        headers: dict[str, str] | None,
        authenticated: bool,
        *,
        retryable: bool,
    ) -> Answer:
        try:
            request = self._http.build_request(method, url, json=json, data=form, headers=headers)
        except httpx.InvalidURL as exc:
            raise LinkError(f"cannot request {url!r}: {exc}") from exc
        started = time.perf_counter()
        # Token requests are made from inside an API request's slot (by its auth flow), one at a
        # time; taking a slot of their own could deadlock when every slot waits for the token.
        async with self._semaphore if authenticated else contextlib.nullcontext():
            if self._closed:  # closed while this request waited for a slot or a retry
                raise ClientStateError(_CLOSED_IN_FLIGHT)
            self.requests_sent += 1
            try:
                async with asyncio.timeout(self._timeout):
                    answer = await self._exchange(request, authenticated)
            except Exception as exc:
                # Closing the pool under a request fails it in whatever way httpx happens to be
                # in (a read error, say): say what happened instead.
                if self._closed and not isinstance(exc, ClientStateError):
                    raise ClientStateError(_CLOSED_IN_FLIGHT) from exc
                if isinstance(exc, TimeoutError):
                    raise TransportError(
                        f"no complete answer within {self._timeout} s", method=method, url=url
                    ) from exc
                if isinstance(exc, httpx.HTTPError | OSError):
                    raise TransportError(_describe(exc), method=method, url=url) from exc
                raise
        log.debug(
            "%s %s -> %d (%d bytes, %.1f ms)",
            method,
            url,
            answer.status_code,
            len(answer.body),
            (time.perf_counter() - started) * 1000,
        )
        if retryable and answer.status_code in self._retry.statuses:
            wait = parse_retry_after(
                answer.headers.get("retry-after"),
                now=dt.datetime.now(dt.UTC),
                cap=self._retry.max_retry_after,
            )
            raise _RetryableStatus(answer, wait)
        return answer

    async def _exchange(self, request: httpx.Request, authenticated: bool) -> Answer:
        auth = self.auth if authenticated else None
        response = await self._http.send(request, auth=auth, stream=True)
        try:
            declared = _content_length(response)
            if declared is not None and declared > self._max_bytes:
                raise self._too_large(request, declared)
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > self._max_bytes:
                    raise self._too_large(request, size)
                chunks.append(chunk)
            if declared is not None and size < declared:
                raise TransportError(
                    f"the response was cut short: {size} of {declared} bytes",
                    method=request.method,
                    url=str(request.url),
                )
        finally:
            await response.aclose()
        return Answer(response.status_code, response.headers, b"".join(chunks))

    def _too_large(self, request: httpx.Request, size: int) -> ResponseTooLargeError:
        return ResponseTooLargeError(
            f"the response body exceeds max_response_bytes={self._max_bytes} (at least {size} bytes)",
            method=request.method,
            url=str(request.url),
        )

    # --- JSON and tokens --------------------------------------------------------------------------

    async def get_json(self, url: str) -> Any:
        """GET ``url`` and parse its JSON body; any non-2xx status raises its `VBOError`."""
        answer = await self.send("GET", url)
        return parse_json(self.expect_success(answer, "GET", url), method="GET", url=url)

    def expect_success(self, answer: Answer, method: str, url: str) -> bytes:
        """The body of a 2xx answer; otherwise raise the error for its status."""
        if 200 <= answer.status_code < 300:
            return answer.body
        raise error_for_status(
            answer.status_code,
            answer.body,
            method=method,
            url=url,
            content_type=answer.headers.get("content-type"),
        )

    async def logout(self, url: str, access_token: str) -> None:
        """POST to a v7+ logout endpoint with ``access_token``, once. A failure is logged at debug
        level, never raised: the client is closing anyway."""
        try:
            answer = await self.send(
                "POST",
                url,
                headers={"Authorization": f"Bearer {access_token}"},
                authenticated=False,
                retry=False,
            )
        except VBOError as exc:
            log.debug("logging out at %s failed: %s", url, exc)
            return
        if answer.status_code not in (200, 204):
            log.debug("logging out at %s answered HTTP %d", url, answer.status_code)

    def dialect_of(self, url: str) -> Dialect:
        """The dialect of the API version a URL below the root names (`LinkError` otherwise)."""
        version = self._api_root.version_of(url)
        if version is None:
            raise LinkError(f"refusing a URL outside the API root: {url}")
        return DIALECTS[version]

    async def request_token(self, url: str, form: dict[str, str]) -> Any:
        """POST a grant to the token endpoint ``url`` (retried like a GET); 400/401/403 ->
        AuthenticationError, 404 -> NotFoundError (the version is not served).

        The form is never logged and never appears in an error.
        """
        answer = await self.send("POST", url, form=form, authenticated=False, retry=True)
        if answer.status_code in (400, 401, 403):
            error = error_for_status(answer.status_code, answer.body, method="POST", url=url)
            raise AuthenticationError(
                f"the server refused the {form.get('grant_type', '')} grant: {error.message}",
                method="POST",
                url=url,
            )
        return parse_json(self.expect_success(answer, "POST", url), method="POST", url=url)

    # --- navigation (the links' Navigator) --------------------------------------------------------

    async def fetch_one(self, url: str, target: type[Any] | None) -> Any:
        """GET one resource, decoded into ``target`` (raw JSON when None) with the dialect of
        the version the URL names; shared in flight."""
        dialect = self.dialect_of(url)

        async def load() -> Any:
            data = await self.get_json(url)
            return data if target is None else self.decoder.one(data, target, dialect, url=url)

        return await self.shared((url, target), load)

    async def fetch_page(self, url: str, target: type[T]) -> tuple[list[T], str | None]:
        """GET one page (or a bare array) of ``target`` items: (items, rebased next URL)."""
        dialect = self.dialect_of(url)

        async def load() -> tuple[list[T], str | None]:
            answer = await self.send("GET", url)
            body = self.expect_success(answer, "GET", url)
            decoded, next_href = self.decoder.page(body, target, dialect, url=url)
            if next_href is None:
                return decoded, None
            return decoded, self._api_root.rebase(next_href, context=url, relation="next")

        items, next_url = await self.shared((url, ("page", target)), load)
        return list(items), next_url

    async def iterate(self, url: str, target: type[T]) -> AsyncIterator[T]:
        """Every item of a collection, page by page, following ``next`` until it is absent.

        The first request asks for pages as large as the version allows (``limit``), unless the
        URL says otherwise. A ``next`` that names a page already fetched ends the iteration
        (logged)."""
        dialect = self.dialect_of(url)
        seen: set[str] = set()
        next_url: str | None = with_limit(url, dialect.page_limit)
        while next_url is not None:
            seen.add(next_url)
            items, next_url = await self.fetch_page(next_url, target)
            for item in items:
                yield item
            if next_url in seen:
                log.warning("page %s links back to a page already fetched; stopping", next_url)
                return

    async def fetch_all(self, url: str, target: type[T]) -> list[T]:
        """Every item of a collection as one list: the pages `iterate` walks, in the same order
        and with the same stop on a ``next`` that names a page already fetched, joined page by
        page (without an async-generator step per item, which cost about 1 µs per item)."""
        found: list[T] = []
        seen: set[str] = set()
        next_url: str | None = with_limit(url, self.dialect_of(url).page_limit)
        while next_url is not None:
            seen.add(next_url)
            items, next_url = await self.fetch_page(next_url, target)
            found += items
            if next_url in seen:
                log.warning("page %s links back to a page already fetched; stopping", next_url)
                break
        return found

    async def shared(self, key: tuple[str, Any], load: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """Run ``load`` once for every caller waiting on ``key`` at the same time.

        The work runs in its own task: a waiter cancelled leaves it running for the others, and
        the last waiter cancelled cancels it, so nothing outlives its callers.
        """
        self.check_usable()
        flight = self._flights.get(key)
        if flight is None:
            flight = _Flight(asyncio.get_running_loop().create_task(load()))
            self._flights[key] = flight
            flight.task.add_done_callback(self._landed(key, flight))
        flight.waiters += 1
        try:
            return await asyncio.shield(flight.task)
        except asyncio.CancelledError:
            if flight.task.cancelled() and not _being_cancelled():
                raise ClientStateError(_CLOSED_IN_FLIGHT) from None
            raise
        finally:
            flight.waiters -= 1
            if flight.waiters == 0 and not flight.task.done():
                flight.task.cancel()
                # A caller arriving before the cancelled task unwinds must start a new flight,
                # not join this one and see its cancellation.
                if self._flights.get(key) is flight:
                    del self._flights[key]

    def _landed(self, key: tuple[str, Any], flight: _Flight) -> Callable[[asyncio.Task[Any]], None]:
        def done(task: asyncio.Task[Any]) -> None:
            if self._flights.get(key) is flight:
                del self._flights[key]
            if not task.cancelled():
                task.exception()  # retrieved: every waiter re-raises it

        return done


def _being_cancelled() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def _content_length(response: httpx.Response) -> int | None:
    value = response.headers.get("content-length")
    if value is None or "content-encoding" in response.headers:
        return None
    try:
        return int(value)
    except ValueError:
        return None


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
    while exc.__cause__ is not None or exc.__context__ is not None:
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return str(exc) or type(exc).__name__


def _is_certificate_error(exc: BaseException | None) -> bool:
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, ssl.SSLCertVerificationError):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False
