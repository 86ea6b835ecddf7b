"""Navigation: fetching one resource, a page, or every page of a collection, for one client.

The `Fetcher` is the links' `Navigator`: it turns URLs into decoded models through the client's
`Sender` (the only network code), shares identical GETs in flight (`Flights`), decodes with the
dialect of the API version each URL names (the `Decoder` is passed in), and bounds what a server
can make it hold: at most ``max_page_items`` items per page (a body that could hold far more is
refused before it is parsed), ``max_pages`` pages per listing and ``max_listing_items`` items per
listing (its pages together, refused items included); a listing whose ``next``
leads back to a page already read (whatever query noise it adds), or past a page that brought
nothing new, is an error, and one that reaches a page without items ends there.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from typing import Any, TypeVar

import attrs

from ._decode import Decoder, Refused, parse_json
from ._dialects import DIALECTS, Dialect
from ._exceptions import APIError, AuthenticationError, DecodeError, LinkError, VBOError
from ._fastpath import CACHED_HREF_LENGTH, CACHED_HREFS
from ._flights import Flights
from ._kept import Kept
from ._pages import items_key, page_key, unread, with_limit
from ._retry import RETRY_AFTER_LIMIT, RetryPolicy, parse_retry_after
from ._sending import CLOSED_IN_FLIGHT, Answer, Sender, _frameless
from ._status import IDEMPOTENT_METHODS, error_for_status, read_error_body
from ._tokens import GrantForm, Token
from ._urls import ApiRoot, quoted, scrub_error, scrubbed_link_error, with_query

__all__ = ["Answer", "Fetcher", "RetryPolicy"]

log = logging.getLogger("vbo_async")
T = TypeVar("T")
E = TypeVar("E", bound=BaseException)
Scrub = Callable[[str], str]
_TOKEN_REFUSALS = {400: "bad request", 401: "unauthorized (401)", 403: "forbidden"}
"""What a token endpoint's refusal says when its body says nothing."""


def _unread_said(message: str, unread: VBOError) -> str:
    """``message``, the error of an answer judged by its status, saying its body could not be
    read (``unread``, `Answer.unread`: already scrubbed)."""
    return f"{message} (its body could not be read: {unread.message})"


def bodiless(error: E) -> E:
    """``error`` (and its chain) without the tracebacks whose frames held the body it is about.

    A caller may keep an error long (a sweep's per-tenant failure until the next sweep): through
    the frames of the fetch, the decoder and the parser, each kept the body, its parsed JSON or
    both, up to ``max_response_bytes`` apiece, and a token answer's body holds a token. Raised
    again from a frame that has let go of the answer, the error keeps where it was raised from
    there on; its message says what went wrong."""
    # Requests in its chain lose their bodies and bearer too, should one not be bare yet (the
    # sender's errors are: their URLs were scrubbed then).
    return _frameless(error, str)  # type: ignore[return-value]


class Fetcher:
    """Follows links and entry points for one client (it is the links' navigator)."""

    def __init__(
        self,
        *,
        api_root: ApiRoot,
        sender: Sender,
        decoder: Callable[[Fetcher], Decoder] = Decoder,
        max_page_items: int,
        max_pages: int,
        max_listing_items: int,
        scrub: Scrub | None = None,
    ) -> None:
        self._api_root = api_root
        self.sender = sender
        self._flights = Flights(CLOSED_IN_FLIGHT, lead=True)
        self.decoder = decoder(self)
        self._max_page_items = max_page_items
        self._max_pages = max_pages
        self._max_listing_items = max_listing_items
        self.scrub: Scrub | None = scrub
        """Removes the client's secrets from server text quoted in errors."""
        self._rebased: Kept[tuple[str, type[Any] | None], str] = Kept(CACHED_HREFS // 2)
        """`rebase`'s URLs of hrefs read without a context, by (href, target)."""

    @property
    def api_root(self) -> ApiRoot:
        return self._api_root

    @property
    def closed(self) -> bool:
        return self.sender.closed

    @property
    def requests_sent(self) -> int:
        return self.sender.requests_sent

    def check_usable(self) -> None:
        self.sender.check_usable()

    async def aclose(self) -> None:
        """Refuse new requests, cancel shared requests still in flight and close the pool (also
        when cancelled while waiting for those requests to stop: no later call could close it)."""
        if self.sender.closed:
            return
        self.sender.refuse()
        try:
            await self._flights.cancel_all()
        finally:
            await self.sender.aclose()

    async def send(self, method: str, url: str, **options: Any) -> Answer:
        """`Sender.send` (for the client's actions and anything not navigation). A request that
        may change the server's state (a job action) ends the sharing of the GETs in flight: one
        asked for after it is sent anew, not answered by a read sent before it."""
        try:
            return await self.sender.send(method, url, **options)
        finally:
            if method not in IDEMPOTENT_METHODS:
                self._flights.detach_all()

    # --- JSON and tokens --------------------------------------------------------------------------

    async def get_json(self, url: str) -> Any:
        """GET ``url`` and parse its JSON body; any non-2xx status raises its `VBOError`."""
        answer = await self.sender.send("GET", url)
        try:
            return self.parse_json(self.expect_success(answer, "GET", url), "GET", url)
        except VBOError as exc:
            error = exc
        del answer
        raise bodiless(error)

    def parse_json(self, body: bytes, method: str, url: str | None) -> Any:
        """`parse_json` of one answer that is not a page, held to the bound of a page of
        ``max_page_items`` (a body of tiny objects is refused before it is parsed)."""
        try:
            return parse_json(body, method=method, url=url, max_items=self._max_page_items, scrub=self.scrub)
        except DecodeError as exc:
            self.hide_secrets(exc)  # the URL may be an href quoting a secret
            error = exc
        # Without the frames holding the body (this one's too): an error reporter shows their
        # variables, and the body may echo the password or a token (a token endpoint's login page).
        del body
        raise error.with_traceback(None)

    def expect_success(self, answer: Answer, method: str, url: str) -> bytes:
        """The body of a 2xx answer; otherwise raise the error for its status (server text in it
        scrubbed of the client's secrets; a ``Retry-After`` said as when to try again; a body
        that could not be read, `Answer.unread`, said so)."""
        if 200 <= answer.status_code < 300:
            return answer.body
        now, head = dt.datetime.now(dt.UTC), answer.headers
        error = error_for_status(
            answer.status_code,
            answer.body,
            method=method,
            url=url,
            content_type=head.get("content-type"),
            scrub=self.scrub,
            retry_after=parse_retry_after(
                head.get("retry-after"), now=now, cap=RETRY_AFTER_LIMIT, date=head.get("date")
            ),
            now=now,
        )
        if answer.unread is not None:
            error.message = _unread_said(error.message, answer.unread)
        self.hide_secrets(error)  # the URL may be an href quoting a secret
        # Without the frames holding the answer (this one's too): an error reporter shows their
        # variables, and its headers and body may echo the token or the password.
        del answer, head
        raise error.with_traceback(None)

    async def logout(self, url: str, token: Token) -> int | None:
        """POST to a v7+ logout endpoint with ``token``, once; the answer's status (None when none
        came). A failure is logged at debug level, never raised, even one that is not a
        `VBOError` (a custom transport's bug): the client is closing anyway.
        (The token is taken whole, not its string: a deadline cutting the logout short leaves
        this frame in its traceback, whose variables error reporters show; `Token` hides itself.)"""
        try:
            answer = await self.sender.send(
                "POST",
                url,
                headers={"Authorization": f"Bearer {token.access_token}"},
                authenticated=False,
                retry=False,
            )
        except VBOError as exc:
            log.debug("logging out at %s failed: %s", url, exc)
            return None
        except Exception as exc:  # a transport's own bug: the client closes all the same
            scrub = self.scrub or str
            log.debug("logging out at %s failed: %s: %s", url, type(exc).__name__, scrub(str(exc)))
            return None
        if answer.status_code not in (200, 204):
            log.debug("logging out at %s answered HTTP %d", url, answer.status_code)
        return answer.status_code

    def rebase(
        self,
        href: str,
        *,
        relation: str | None,
        context: str | None = None,
        target: type[Any] | None = None,
    ) -> str:
        """`ApiRoot.rebase`, its `LinkError` scrubbed of the client's secrets (a server may put
        one in an href); with the query parameters the dialect of the version the URL names
        asks for one ``target`` resource set (`Dialect.link_query`: v7/v8 organizations are
        asked for their extended view, as ``organization()`` asks).

        A pure function of its arguments for a client (its root never changes, and ``relation``
        only names the link in an error), so the URLs of hrefs read without ``context`` are kept
        (a `Kept` per client, hrefs up to `CACHED_HREF_LENGTH` characters): a sweep following
        every job's repository and proxy rebases each shared href once, not four times a job.
        Errors are not kept: each call raises its own."""
        key = (href, target)
        kept = context is None and href.__class__ is str
        if kept:
            found = self._rebased.get(key) or self._rebased.recall(key)
            if found is not None:
                return found
        try:
            url = self._api_root.rebase(href, context=context, relation=relation)
        except LinkError as exc:
            error = exc
        else:
            url = with_query(url, self.dialect_of(url).link_query(target))
            if kept and len(href) <= CACHED_HREF_LENGTH:
                self._rebased.keep(key, url)
            return url
        # Raised outside the handler: the unscrubbed error must not be the __context__.
        raise error if self.scrub is None else scrubbed_link_error(error, self.scrub)

    def shown(self, href: str) -> str:
        """``href`` scrubbed of the client's secrets (`Link.shown_href`)."""
        return href if self.scrub is None else self.scrub(href)

    def shown_id(self, value: object) -> object:
        """A server's id as a log line shows it: scrubbed when it is text (a server may name a
        job by the token it was sent); a model built by hand may hold anything else."""
        return self.shown(value) if isinstance(value, str) else value

    def hide_secrets(self, error: VBOError) -> None:
        """`scrub_error`: the client's secrets out of ``error``'s message, ``url`` and ``href``, in
        place (a server may put one into an href the client follows)."""
        if self.scrub is not None:
            scrub_error(error, self.scrub)

    def dialect_of(self, url: str) -> Dialect:
        """The dialect of the API version a URL below the root names (`LinkError` otherwise)."""
        version = self._api_root.version_of(url)
        if version is None:
            raise LinkError(f"refusing a URL outside the API root: {url}")
        return DIALECTS[version]

    async def request_token(self, url: str, form: GrantForm) -> Any:
        """POST a grant to the token endpoint ``url`` (retried like a GET on the retry statuses
        and on failures before it reached the server; after, a password grant a second later at
        the earliest, a refresh grant never: docs/reliability.md, "Token grants"); 400/401/403 ->
        AuthenticationError, 404 -> a plain `APIError` saying the version is not served there
        (not a `NotFoundError`, which callers read as an unknown id: a tenant to drop).

        An answer is judged by its status whatever became of its body (too large, cut short:
        ``unread_body_ok``): a refused password is paused, a throttle rested, never taken for an
        answer lost and the grant sent again. A success whose body cannot be read (too large,
        not valid for its coding) is a `DecodeError`, as one that brings no token.

        The form is never logged and never appears in an error.
        """
        answer = await self.sender.send(
            "POST", url, form=form, authenticated=False, retry=True, unread_body_ok=True
        )
        try:
            return self._token_answer(answer, url, form.grant_type)
        except VBOError as exc:
            error = exc
        del answer  # its body may hold a token
        raise bodiless(error)

    def _token_answer(self, answer: Answer, url: str, grant_type: str) -> Any:
        """The parsed JSON of a token endpoint's ``answer``, or the error it stands for."""
        unread = answer.unread
        if answer.status_code in (400, 401, 403):
            said, _ = read_error_body(answer.body, answer.headers.get("content-type"), self.scrub)
            # Not `error_for_status`'s words for a 401, which speak of a refused access token:
            # here the grant was refused (8.x servers answer with an empty body).
            reason = said or _TOKEN_REFUSALS[answer.status_code]
            message = f"the server refused the {grant_type} grant: {reason}"
            raise AuthenticationError(
                message if unread is None else _unread_said(message, unread), method="POST", url=url
            )
        if answer.status_code == 404:
            message = "no token endpoint here: the server does not serve this API version at this base URL"
            raise APIError(
                message if unread is None else _unread_said(message, unread),
                status_code=404,
                method="POST",
                url=url,
            )
        if unread is not None and 200 <= answer.status_code < 300:
            raise DecodeError(
                f"the token endpoint's answer (HTTP {answer.status_code}) to the {grant_type} grant "
                f"could not be read: {unread.message}",
                method="POST",
                url=url,
            )
        return self.parse_json(self.expect_success(answer, "POST", url), "POST", url)

    # --- navigation (the links' Navigator) --------------------------------------------------------

    async def fetch_one(self, url: str, target: type[Any] | None) -> Any:
        """GET one resource, decoded into ``target`` (raw JSON when None) with the dialect of
        the version the URL names; shared in flight."""
        self.sender.check_usable()
        dialect = self.dialect_of(url)

        async def load() -> Any:
            try:
                return self._one_of(await self.get_json(url), target, dialect, url)
            except VBOError as exc:
                error = exc
            self.hide_secrets(error)  # the URL may be an href quoting a secret
            raise bodiless(error)

        return await self._flights.run((url, target), load)

    async def fetch_page(
        self, url: str, target: type[T], *, refused: Refused | None = None
    ) -> tuple[list[T], str | None]:
        """GET one page (or a bare array) of ``target`` items: (items, rebased next URL, with the
        query parameters a link to one ``target`` carries). Shared in flight; with ``refused``
        (told each item that cannot be decoded, which is then left out), with the callers that
        pass one too: the page's refusals are collected once and told to each caller's own."""
        self.sender.check_usable()
        dialect = self.dialect_of(url)

        async def load(told: Refused | None) -> tuple[list[T], str | None]:
            answer = await self.sender.send("GET", url)
            try:
                return self._page_of(answer, url, target, dialect, told)
            except VBOError as exc:
                error = exc
            del answer
            self.hide_secrets(error)  # the URL may be a next link quoting a secret
            raise bodiless(error)

        if refused is None:
            items, next_url = await self._flights.run((url, ("page", target)), lambda: load(None))
            return list(items), next_url

        async def load_filed() -> tuple[list[T], str | None, list[tuple[Any, DecodeError]]]:
            filed: list[tuple[Any, DecodeError]] = []
            items, next_url = await load(lambda item, error: filed.append((item, error)))
            return items, next_url, filed

        items, next_url, filed = await self._flights.run((url, ("filed page", target)), load_filed)
        for item, error in filed:
            refused(item, error)
        return list(items), next_url

    def _one_of(self, data: Any, target: type[Any] | None, dialect: Dialect, url: str) -> Any:
        return data if target is None else self.decoder.one(data, target, dialect, url=url)

    def _page_of(
        self, answer: Answer, url: str, target: type[T], dialect: Dialect, refused: Refused | None
    ) -> tuple[list[T], str | None]:
        """(items, rebased next URL) of a page's ``answer`` (`fetch_page`)."""
        body = self.expect_success(answer, "GET", url)
        decoded, next_href = self.decoder.page(
            body, target, dialect, url=url, max_items=self._max_page_items, refused=refused
        )
        if next_href is None:
            return decoded, None
        # Each page in the view the listing asked for (v7+ organizations' extendedView): a
        # server's next link may leave it out, or name another version whose default differs.
        return decoded, self.rebase(next_href, context=url, relation="next", target=target)

    async def iterate(
        self, url: str, target: type[T], *, refused: Refused | None = None
    ) -> AsyncGenerator[T, None]:
        """Every item of a collection, page by page, following ``next`` until it is absent or a
        page has no items. An item a later page repeats (by its ``id``, and its organization for
        items naming one: `unread`) is given once.

        The first request asks for pages as large as the version allows (``limit``), unless the
        URL says otherwise. Pages are cut by offset, so a page without items (none refused
        either) has none after it: its ``next`` is not followed (servers send one only while more
        remain; a broken one always would, for ``max_pages`` requests). A ``next`` that names a
        page already fetched (compared without query noise: parameter order, empty parameters,
        case of names) is a loop, after which the listing cannot be known complete: an
        `APIError` (of a 200) naming the listing. So is a page that links on but brings nothing
        new (every item's id read before, ignoring case; items without ids the same as an earlier
        page's; refused items like earlier ones): a server ignoring the offset answers the same
        page under each new next link. So is a listing longer than ``max_pages`` or holding more
        than ``max_listing_items`` items (refused ones included). Each is raised when the page
        arrives, before any of its items is handed on."""
        items: list[T] | None = None
        item: T | None = None
        async with aclosing(self._pages(url, target, refused)) as pages:
            try:
                async for items in pages:
                    for item in items:
                        yield item
            except VBOError as exc:
                error = exc
            else:
                return
            items = item = None  # the page read last is not kept with the error
            raise bodiless(error)

    async def fetch_all(self, url: str, target: type[T], *, refused: Refused | None = None) -> list[T]:
        """Every item of a collection as one list: `iterate`'s pages joined page by page (no
        async-generator step per item, which cost about 1 µs an item)."""
        found: list[T] = []
        items: list[T] | None = None
        try:
            async for items in self._pages(url, target, refused):
                found += items
        except VBOError as exc:
            error = exc
        else:
            return found
        # The items of the pages read before are not kept with the error (through this frame and
        # the pages' generator's): a sweep keeps a tenant's error until the next sweep.
        found = []
        items = None
        raise bodiless(error)

    def _too_long(self, url: str, has: str) -> APIError:
        """The `APIError` (of a 200) of a listing that ``has`` more than a bound allows."""
        error = APIError(
            f"the listing has {has}; refusing to read on", status_code=200, method="GET", url=url
        )
        self.hide_secrets(error)  # a link's URL may quote a secret
        return error

    def _stalled(self, url: str, page_url: str) -> APIError:
        """The `APIError` (of a 200) of a listing whose page ``page_url`` brings nothing the
        pages before it did not, yet links on."""
        scrub = self.scrub or str  # the listing's URL may quote a secret: `hide_secrets` scrubs page_url
        error = APIError(
            f"the listing {scrub(url)} does not advance: this page brings no item the pages before "
            "it did not, yet links to another; refusing to read on (the server may ignore the "
            "offset; the listing cannot be known complete)",
            status_code=200,
            method="GET",
            url=page_url,
        )
        self.hide_secrets(error)
        return error

    async def _pages(self, url: str, target: type[T], refused: Refused | None) -> AsyncGenerator[list[T]]:
        dialect = self.dialect_of(url)
        filed = 0  # items refused so far: a page of nothing but those is not an empty page
        novel = 0  # of those, the ones unlike any refused before (`items_key`)
        if refused is not None:
            tell = refused
            refused_keys: set[bytes] = set()

            def counted(item: Any, error: DecodeError) -> None:
                nonlocal filed, novel
                filed += 1
                key = items_key([item])
                if key is None or key not in refused_keys:
                    novel += 1
                    if key is not None:
                        refused_keys.add(key)
                tell(item, error)

            refused = counted
        seen: set[bytes] = set()  # the pages read (`page_key`), not their hrefs
        unseen: list[str] = []  # fetched, identity not yet taken: a one-page listing never needs it
        fields = attrs.fields_dict(target) if attrs.has(target) else {}
        keyed = "id" in fields
        by_tenant = keyed and "organization_id" in fields  # `unread`
        ids: set[str] | None = None  # the ids listed, kept from the second page on: each item once
        digests: set[bytes] = set()  # without ids: `items_key` of each page followed by another
        next_url: str | None = with_limit(url, dialect.page_limit)
        pages = 0
        held = 0  # items of the pages read so far, refused ones included
        while next_url is not None:
            unseen.append(next_url)
            if pages == self._max_pages:
                raise self._too_long(url, f"more than max_pages={self._max_pages} pages")
            filed_before, novel_before = filed, novel
            page_url = next_url
            items, next_url = await self.fetch_page(page_url, target, refused=refused)
            pages += 1
            held += len(items) + filed - filed_before
            if held > self._max_listing_items:
                raise self._too_long(
                    url,
                    f"more than max_listing_items={self._max_listing_items} items "
                    f"({held} in its first {pages} pages)",
                )
            fresh = items if ids is None else unread(items, ids, by_tenant=by_tenant)
            if next_url is not None:
                # A page of items all read before that links on: a server ignoring the offset
                # answers the same page under each new next link, for max_pages requests.
                if keyed:
                    repeated = ids is not None and not fresh
                else:
                    key = items_key(items)
                    repeated = key is not None and key in digests
                    if key is not None:
                        digests.add(key)
                if repeated and (items or filed > filed_before) and novel == novel_before:
                    raise self._stalled(url, page_url)
            yield fresh
            if next_url is None:
                return
            if not items and filed == filed_before:
                if log.isEnabledFor(logging.DEBUG):
                    scrub = self.scrub or str
                    log.debug(
                        "page %s has no items; its next, %s, is not followed",
                        scrub(page_url),
                        scrub(next_url),
                    )
                return
            seen.update(page_key(fetched) for fetched in unseen)
            unseen.clear()
            if keyed and ids is None:
                unread(items, ids := set(), by_tenant=by_tenant)
            if page_key(next_url) in seen:
                # Both URLs may quote a secret a server put in an href (the listing's link, or
                # query noise in the next link): `hide_secrets` scrubs only the error's own URL.
                # The next link is `quoted` (cut), after the scrub: query noise, ignored when
                # pages are compared, may make it most of a 64 MiB page.
                scrub = self.scrub or str
                error = APIError(
                    f"the listing {scrub(url)} loops: the next link of this page names "
                    f"{quoted(scrub(next_url))} already read; refusing to read on (the listing "
                    "cannot be known complete)",
                    status_code=200,
                    method="GET",
                    url=page_url,
                )
                self.hide_secrets(error)  # a link's URL may quote a secret
                raise error
