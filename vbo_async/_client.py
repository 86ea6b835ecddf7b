"""`VBOClient`: the public face that ties the API root, dialect, auth, fetcher and decoder together.

The client itself does no I/O of its own: entry-point paths come from the dialect of the API
version it speaks, everything on the wire goes through its `Fetcher`, tokens through its
`TokenManager`, JSON through its `Decoder`. With ``api_version="auto"`` the version is found once,
by asking the token endpoints of v8, v7, v6 and v1 in turn: the first grant that succeeds both
chooses the version and gives the token the first request needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import errno
import ipaddress
import logging
import math
import os
import re
import ssl
import warnings
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType, TracebackType
from typing import Any, Literal, NoReturn, Self, TypeVar, overload
from urllib.parse import urlsplit

import attrs
import httpx

from ._auth import Secret, TokenManager
from ._checks import id_argument, id_key, text_argument, with_article
from ._convert import MODELS, raw_reader
from ._dialects import DIALECTS, NEWEST_FIRST, Dialect, JobAction
from ._exceptions import (
    APIError,
    AuthenticationError,
    ClientStateError,
    ConfigError,
    DecodeError,
    ResponseTooLargeError,
    TransportError,
    VBOError,
)
from ._fetch import Fetcher, bodiless
from ._files import not_a_file
from ._flights import Flights
from ._health import HealthPolicy, JobHealth, assess, finished, is_never, newest_first, on_clock
from ._links import CollectionLink, Link, ThroughLink
from ._models import (
    BackupRepository,
    Job,
    JobSession,
    License,
    ObjectStorage,
    Organization,
    Proxy,
    ServiceInstance,
    UsedRepository,
)
from ._pages import with_limit
from ._retry import RetryPolicy
from ._sending import Answer, Sender, build_http
from ._sessions import SavedSession
from ._tasks import each
from ._tokens import Token
from ._urls import ApiRoot

__all__ = ["API_VERSIONS", "DEFAULT_MAX_RESPONSE_BYTES", "JobAction", "VBOClient", "tls_context"]

log = logging.getLogger("vbo_async")
T = TypeVar("T")

DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024
DEFAULT_MAX_PAGE_ITEMS = 50_000
"""Items one page may hold (five times the API's own maximum of 10,000). With `CONTAINERS_PER_ITEM`
it also bounds the JSON objects and arrays a body may bring to 800,000, counted before parsing:
parsed JSON can take 30 times its size, a page of tiny items is refused before it is built."""
DEFAULT_MAX_PAGES = 10_000
"""Pages one listing may span."""
DEFAULT_MAX_LISTING_ITEMS = 1_000_000
"""Items one listing may hold, all its pages together (a hundred full pages of the API's maximum
of 10,000; about 1 to 1.5 GB of decoded jobs, less of sessions). Without it a fast hostile server
could make one listing hold `DEFAULT_MAX_PAGES` pages of `DEFAULT_MAX_PAGE_ITEMS` items."""
API_VERSIONS: tuple[str, ...] = ("auto", *(d.version for d in NEWEST_FIRST))
"""What ``api_version`` accepts: ``"auto"`` and every version vbo-async speaks, newest first."""
_HASHED_NAME = re.compile(r"[0-9a-f]{8}\.[0-9]+")
"""How OpenSSL names a CA certificate in a CA directory (``openssl rehash``)."""
LOGOUT_TIMEOUT = 3.0
"""Seconds `VBOClient.aclose` gives a v7+ server to answer the logout before closing anyway."""


class VBOClient:
    """An async client for one VB365/VBO server, used as ``async with VBOClient(...) as vbo``.

    ``api_version`` is ``"auto"`` (the newest of v8, v7, v6, v1 the server serves, found with
    the first request at no extra cost on a v8 server) or one of those versions. ``verify`` is
    True (system CAs), a path to a CA bundle, an `ssl.SSLContext`, or False to turn verification
    off (logged as a warning); it configures the transport the client builds, so with
    ``transport`` it is left out (anything else is a `ConfigError`: that transport keeps its
    own TLS settings). ``max_concurrency`` (10) bounds requests in flight on this client
    whatever the transport; ``timeout`` (30 s; None: no limit) bounds each attempt as a whole
    (getting a token aside: the token requests have their own).
    ``retry`` is the `RetryPolicy` of idempotent requests (``RetryPolicy()`` when None); job
    actions are never retried. ``max_response_bytes`` (64 MiB, decoded), ``max_page_items``
    (50,000), ``max_pages`` (10,000 per listing) and ``max_listing_items`` (1,000,000 per listing,
    its pages together) bound what is read. ``transport`` is any
    ``httpx.AsyncBaseTransport`` (MockTransport, ASGITransport, ...). One connection pool serves
    the client's whole life; token refreshes never disturb requests in flight. ``log_out``
    (True) logs the token out when the client closes (v7+); False leaves it valid on the server
    until it expires, for a `saved_session` to be resumed by a later run (`resume`). An invalid
    option is a `ConfigError`.

    Unlike ``httpx.AsyncClient``, the client reads no proxy from the environment
    (``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY``, ``NO_PROXY``) and no ``.netrc``: it connects to
    ``base_url`` itself, so a variable set for other programs never routes the password and tokens
    elsewhere. To go through a proxy, give a transport that uses one, with its TLS settings
    (not ``verify``): ``transport=httpx.AsyncHTTPTransport(proxy="http://proxy:3128", verify=ctx)``.

    ```python
    async with VBOClient("https://vb365.example.com:4443", username=user, password=pw) as vbo:
        for job in await vbo.organization_jobs(org_id):
            repo = await job.links.require("repository")  # a LinkError if the server sent none
    ```
    """

    def __init__(
        self,
        base_url: str,
        *,
        username: str,
        password: str,
        api_version: str = "auto",
        verify: bool | str | os.PathLike[str] | ssl.SSLContext = True,
        timeout: float | None = 30.0,
        max_concurrency: int = 10,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        max_page_items: int = DEFAULT_MAX_PAGE_ITEMS,
        max_pages: int = DEFAULT_MAX_PAGES,
        max_listing_items: int = DEFAULT_MAX_LISTING_ITEMS,
        log_out: bool = True,
    ) -> None:
        try:
            # From here on the password is only in `Secret`s, which never show themselves: a
            # `ConfigError` for a bad option keeps this frame in its traceback, whose variables
            # error reporters show (rich, pytest --showlocals, traceback's capture_locals).
            secret = Secret(text_argument(password, "password"))
        finally:
            del password
        username = text_argument(username, "username")
        if not isinstance(api_version, str) or api_version not in API_VERSIONS:
            shown = api_version if isinstance(api_version, str) else type(api_version).__name__
            raise ConfigError(f"api_version must be one of {', '.join(API_VERSIONS)}; got {shown!r}")
        if not _is_int(max_concurrency) or max_concurrency < 1:
            raise ConfigError(f"max_concurrency must be a positive integer, got {max_concurrency!r}")
        if timeout is not None and not (_is_number(timeout) and timeout > 0 and _is_finite(timeout)):
            # inf, or an int too large for a float: no transport can schedule it (a bare
            # OverflowError on every request)
            huge = isinstance(timeout, int) and timeout.bit_length() > 1024  # repr() may refuse it too
            shown = "an int too large for a float" if huge else repr(timeout)
            raise ConfigError(
                f"timeout must be a positive finite number of seconds, or None for no limit; got {shown}"
            )
        for name, value in (
            ("max_response_bytes", max_response_bytes),
            ("max_page_items", max_page_items),
            ("max_pages", max_pages),
            ("max_listing_items", max_listing_items),
        ):
            if not _is_int(value) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise ConfigError(f"retry must be a RetryPolicy or None, got {type(retry).__name__}")
        if not isinstance(log_out, bool):
            raise ConfigError(f"log_out must be True or False, got {type(log_out).__name__}")
        if transport is not None and not isinstance(transport, httpx.AsyncBaseTransport):
            raise ConfigError(
                f"transport must be an httpx.AsyncBaseTransport, got {type(transport).__name__}"
            )
        self._root = ApiRoot(base_url, DIALECTS)
        # The scheme as urlsplit gives it: lower case, so "HTTP://host" warns too.
        plain = urlsplit(self._root.base_url).scheme == "http"
        if plain and not _is_loopback(self._root.base_url):
            log.warning(
                "%s is plain http://: the password and tokens travel unencrypted", self._root.base_url
            )
        self._username = username
        self._max_concurrency = max_concurrency
        self._logs_out = log_out
        limits = httpx.Limits(
            # One connection more than requests in flight, for a token request made from a slot.
            max_connections=max_concurrency + 1,
            max_keepalive_connections=max_concurrency + 1,
        )
        if transport is not None and verify is not True:
            # Ignored, it would be a silent wrong value: a stricter context not applied, or a
            # warning that verification is off while the transport verifies.
            raise ConfigError(
                "verify configures the transport the client builds; a transport given with "
                "transport= keeps its own TLS settings: set verification on it and leave verify out"
            )
        # verify=True would load the system's CA certificates (25-60 ms) for a transport that has
        # its own TLS settings: only a transport built here needs them.
        tls = _ssl_context(verify, plain=plain) if transport is None else True
        wire = transport if transport is not None else default_transport(tls, limits)
        self._sender = Sender(
            api_root=self._root,
            http=build_http(wire, timeout=timeout),
            transport=wire,
            max_concurrency=max_concurrency,
            timeout=timeout,
            max_response_bytes=max_response_bytes,
            retry=retry or RetryPolicy(),
        )
        self._fetcher = Fetcher(
            api_root=self._root,
            sender=self._sender,
            max_page_items=max_page_items,
            max_pages=max_pages,
            max_listing_items=max_listing_items,
        )
        self._tokens = TokenManager(
            username=username,
            password=secret,
            fetch=self._fetcher.request_token,
            server_time=self._server_time,
        )
        self._sender.tokens = self._tokens
        self._fetcher.scrub = self._scrub
        self._fetcher.decoder.scrub = self._scrub
        self._dialect: Dialect | None = None
        self._discovering = False
        """Set once an ``"auto"`` client began looking for its version (`resume` is refused)."""
        self._version_found: dt.datetime | None = None
        """When an ``"auto"`` client found its API version (or the session it resumed had)."""
        self._discovery = Flights("the client was closed while it was finding the server's API version")
        """The one discovery of ``"auto"`` in progress, shared by every caller waiting for it."""
        self._closing: tuple[asyncio.AbstractEventLoop, asyncio.Event, asyncio.Task[Any] | None] | None = None
        """Set by the first `aclose` (with its event loop and task); the event once it has closed."""
        if api_version != "auto":
            self._speak(DIALECTS[api_version])
        else:
            # A link followed before any other call (one kept from earlier, or of `from_wire`)
            # needs a token: the version is found first, as for any first call.
            self._tokens.find_endpoint = self._found_dialect

    def _retry_until(self, deadline: float | None) -> None:
        """For a command with a time limit: no wait before a retry ends after ``deadline`` (a
        `time.monotonic` time; None: none), so a request first tried late in the run reports
        its last answer at once instead of being cut short by the deadline mid-wait."""
        self._sender.give_up_at = deadline

    @property
    def server_clock_offset(self) -> dt.timedelta | None:
        """How far the server's clock is off this machine's (positive: ahead), as the ``Date``
        header of its last answer showed it, to the second; None before any answer with one.
        `job_health` and the sweeps of `poll_jobs` judge ages on the server's clock when this
        is a minute or more (and at most a day): see ``_clocks``."""
        return self._sender.clock.offset

    def _server_now(self, now: dt.datetime) -> dt.datetime:
        """This machine's ``now`` on the server's clock (`ServerClock.now`)."""
        return self._sender.clock.now(now)

    def _server_clock_shift(self) -> dt.timedelta:
        """What `_server_now` adds to this machine's time (`ServerClock.shift`)."""
        return self._sender.clock.shift()

    def _server_time(self) -> dt.datetime:
        """The current time on the server's clock (`_server_now` of this machine's)."""
        return self._server_now(dt.datetime.now(dt.UTC))

    async def _close_idle(self) -> None:
        """Close the connections kept alive for the next request (a command whose next requests
        come long after, or one bounding the descriptors its clients hold between them); the
        next request connects again."""
        await self._sender.close_idle()

    def __repr__(self) -> str:
        if "_tokens" not in vars(self):
            # One whose __init__ raised (its traceback's frame, shown by error reporters, holds it).
            return "<VBOClient (not built: its options were refused)>"
        state = "closed" if self._fetcher.closed else "open"
        where = self.api_root or f"{self._root.base_url} (API version not known yet)"
        return f"<VBOClient {where} user={self._username!r} {state}>"

    def __del__(self, _warn: Any = warnings.warn) -> None:
        # Dropped open after sending requests: its connections close as the garbage collector
        # finds them, but its token is never logged out, and nothing said which client it was.
        sender = vars(self).get("_sender")
        if sender is None or sender.closed or not sender.requests_sent:
            return
        _warn(
            f"{self!r} was never closed: use 'async with VBOClient(...) as vbo' or "
            "'await vbo.aclose()' (closing logs its token out on v7+ and closes its connections)",
            ResourceWarning,
            source=self,
        )

    def __reduce__(self) -> NoReturn:
        # Its pool cannot travel, and nothing may put its token into a pickle.
        raise ClientStateError(
            "a VBOClient cannot be pickled: it holds a connection pool, its token and the password; "
            "pickle the models instead (their links are unpickled unbound: follow them with vbo.follow)"
        )

    def __copy__(self) -> Self:
        return self  # a handle on one server's session: a copied PollTarget keeps the same client

    def __deepcopy__(self, memo: dict[int, Any]) -> Self:
        return self

    @property
    def api_version(self) -> str | None:
        """The API version the client speaks (``"v8"``); None only before an ``"auto"`` client's
        first request has found it."""
        return self._dialect.version if self._dialect is not None else None

    @property
    def base_url(self) -> str:
        """The server's URL as configured, without an API version (``https://vb365:4443``): what
        names the server in a message whatever the client found out about it."""
        return self._root.base_url

    @property
    def username(self) -> str:
        """The user the client signs in as."""
        return self._username

    @property
    def api_root(self) -> str | None:
        """``{base_url}/{api_version}``: where the client's entry points are (None while the
        version is not known yet)."""
        return self._root.root(self._dialect.version) if self._dialect is not None else None

    @property
    def token_requests(self) -> int:
        """How many token requests this client has made (password and refresh grants, and the
        version probes of ``"auto"``)."""
        return self._tokens.requests

    @property
    def requests_sent(self) -> int:
        """How many HTTP attempts this client has put on the wire, retries and tokens included."""
        return self._fetcher.requests_sent

    async def __aenter__(self) -> Self:
        self._fetcher.check_usable()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the client: log out (v7+, within a few seconds; a failed or hung logout is only
        logged), also a token a grant already in flight brings meanwhile, cancel the shared GETs
        in flight, forget the token and close the connection pool. Requests still in flight or
        waiting for a slot, in any task, end with `ClientStateError`, as does every later call;
        closing twice is harmless, also at the same time: the second call returns once the first
        has closed the client (it does not close the pool under the first one's logout), or at
        once when made by that close itself (by a transport, from inside its logout). Made from
        inside a token grant in flight (by its transport), it returns at once and that grant
        finishes the close as it ends, logging its token out too. A grant still unanswered when
        the logout's few seconds are over is cancelled (a token the server issued for it lives
        until it expires); so is one when the close itself is cancelled (abandoned: it closes the
        pool at once, sending nothing more). Closing from another event loop than the client's raises
        `ClientStateError`. A client made with ``log_out=False`` sends no logout: its token
        stays valid on the server until it expires (a `saved_session` may be resumed)."""
        await self._close(log_out=self._logs_out)

    async def _close(self, *, log_out: bool) -> None:
        """`aclose`; without ``log_out``, nothing is sent and no grant in flight is waited for
        (`close_in_turns`: a client whose time to log out is over)."""
        closing = self._closing
        if closing is not None and closing[0] is asyncio.get_running_loop():
            if closing[2] is not asyncio.current_task():  # else called by that very close (by
                await closing[1].wait()  # its logout's transport): it would wait for itself
            return
        if self._fetcher.closed:
            return
        self._fetcher.check_usable()  # from another event loop: raises
        closed = asyncio.Event()
        self._closing = (asyncio.get_running_loop(), closed, asyncio.current_task())
        # From inside the grant in flight (its transport), the token it brings arrives only once
        # this returns: the grant finishes the close as it ends (`TokenManager.after_grant`),
        # logging that token out too, then closing the pool; until then no grant starts and
        # every call that needs a token ends with `ClientStateError`.
        await self._close_with(closed, finish_later=self._tokens.granting_here(), log_out=log_out)

    async def _close_with(self, closed: asyncio.Event, *, finish_later: bool, log_out: bool = True) -> None:
        """`aclose`, once: log out (with ``log_out``), then (now, or as the grant in flight ends:
        ``finish_later``) log out what a grant in flight brings and close, whatever the logouts'
        outcome."""
        token = self._tokens.forget()
        dialect = self._dialect
        deadline = asyncio.get_running_loop().time() + LOGOUT_TIMEOUT
        abandoned = False
        try:
            try:
                async with asyncio.timeout_at(deadline):
                    if log_out and token is not None and dialect is not None:
                        await self._log_out(token, dialect)
            except TimeoutError:
                log.debug("no answer to the logout within %s s; closing anyway", LOGOUT_TIMEOUT)
            except asyncio.CancelledError:
                # The close was abandoned (`serve`'s second stop signal, a caller's deadline): it
                # closes at once, neither waiting for a grant in flight nor logging out its token.
                abandoned = True
                raise
        finally:
            if finish_later:
                # This task is the grant's: one still unanswered when the logout's time is over
                # is cancelled (it then finishes the close), as `_finish_close` cancels one in
                # flight when another task closes the client.
                loop, grant = asyncio.get_running_loop(), asyncio.current_task()
                cut = loop.call_at(deadline, grant.cancel) if grant is not None else None

                async def finish() -> None:
                    if cut is not None:
                        cut.cancel()
                    later = loop.time() + LOGOUT_TIMEOUT
                    await self._finish_close(closed, later, log_out_late=log_out)

                self._tokens.after_grant = finish
            else:
                await self._finish_close(closed, deadline, log_out_late=log_out and not abandoned)

    async def _finish_close(
        self, closed: asyncio.Event, deadline: float, *, log_out_late: bool = True
    ) -> None:
        """Log out the tokens a grant in flight brought once closing began (by ``deadline``;
        not when ``log_out_late`` is False: the close was abandoned), then close the pool and end
        the work in flight, whatever the logouts' outcome; ``closed`` is set once done."""
        dialect = self._dialect
        try:
            try:
                async with asyncio.timeout_at(deadline):
                    if log_out_late and (dialect is None or dialect.logout is not None):
                        # A grant in flight (a renewal, the probe of "auto") may still bring a
                        # token: the server keeps it live until it is logged out too.
                        for late, its_dialect in await self._tokens.granted_while_closing():
                            await self._log_out(late, its_dialect)
            except TimeoutError:
                log.debug("no answer to the logout within %s s; closing anyway", LOGOUT_TIMEOUT)
        finally:
            # Also when the logout was cancelled (a shutdown with a deadline) or failed unexpectedly:
            # a client that began closing never goes on sending with a fresh token.
            try:
                await self._fetcher.aclose()
            finally:
                try:
                    await self._tokens.aclose()
                finally:
                    try:
                        await self._discovery.cancel_all()
                    finally:
                        closed.set()

    async def _log_out(self, token: Token, dialect: Dialect) -> None:
        """Log ``token`` out at ``dialect``'s logout endpoint (v7+; nothing before).

        The logout needs a valid bearer and ends the refresh token too. When the access token
        has expired (on this clock, or the server answers the logout 401: its clock is ahead, or
        this one stood still in a suspend), its refresh token is still live on the server: it is
        redeemed (never the password) and the pair it brings is logged out instead
        (`TokenManager.redeemed_for_logout`)."""
        if dialect.logout is None:
            return
        url = self._root.url(f"/{dialect.version}/{dialect.logout.render()}")
        if not self._tokens.expired(token) and await self._fetcher.logout(url, token) != 401:
            return
        fresh = await self._tokens.redeemed_for_logout(token, self._root.url(dialect.path("token")), dialect)
        if fresh is not None:
            await self._fetcher.logout(url, fresh)

    # --- the API version ----------------------------------------------------------------------------

    def _speak(self, dialect: Dialect) -> None:
        self._dialect = dialect
        self._tokens.use(dialect, self._root.url(dialect.path("token")))

    async def discover_api_version(self) -> str:
        """The API version the client speaks (``"v8"``), found first if ``"auto"`` (with the
        first token request, as any request would); `api_version` once known.

        ```python
        async with VBOClient("https://vbo.example:4443", username="monitor", password="pw") as vbo:
            version = await vbo.discover_api_version()  # "v8"
        ```
        """
        self._fetcher.check_usable()  # closed, or another loop: raised even once the version is known
        return (await self._found_dialect()).version

    async def sign_in(self, *, valid_for: float = 0.0) -> None:
        """Obtain a token now, unless the client holds one not yet due for renewal: the
        version found first if ``"auto"``, then the password grant, or the refresh grant of a
        resumed session due for it. Any call does this when it needs to; calling it first
        makes a refused password fail at start-up rather than on the first call, and gives a
        `saved_session` to store before the work begins. ``valid_for`` (seconds) renews a
        token due for renewal within that long too: a run of known length that shares its
        session with others (a check's time limit) renews it at its start, where the runs take
        turns, rather than midway, where two runs would send the same refresh token.

        ```python
        url = "https://vb365.example.com:4443"
        async with VBOClient(url, username=user, password=pw, log_out=False) as vbo:
            await vbo.sign_in()  # a refused password fails here, before any work
            session = vbo.saved_session()  # session.to_json(): for the next run to resume
        ```
        """
        if not (_is_number(valid_for) and _is_finite(valid_for) and valid_for >= 0):
            raise ConfigError(f"valid_for must be a number of seconds, 0 or more; got {valid_for!r}")
        self._fetcher.check_usable()
        await self._tokens.current(ahead=float(valid_for))

    def resume(self, session: SavedSession) -> bool:
        """Go on with a session a client of the same server and user saved
        (`saved_session`), instead of signing in: no token request while its access token is
        valid, its refresh token once it is due, the password only when that is refused. Made
        right after creating the client, before any request (else `ClientStateError`). With
        ``api_version="auto"`` the session's API version is spoken without looking for one.

        Returns False, and leaves the client to sign in as usual, when the session cannot
        serve it: the client speaks another API version, or the access token has expired
        and there is no refresh token. A session of another server or user is a
        `ConfigError`: its tokens are never sent elsewhere. The client that saved it, and this
        one, should be made with ``log_out=False``: a logout at close ends the session for
        every other holder.

        ```python
        vbo = VBOClient("https://vb365.example.com:4443", username=user, password=pw, log_out=False)
        with open("/var/lib/monitor/vb365.session", encoding="utf-8") as kept:  # mode 0600
            vbo.resume(SavedSession.from_json(kept.read()))
        ```
        """
        if not isinstance(session, SavedSession):
            raise ConfigError(f"session must be a SavedSession, got {type(session).__name__}")
        self._fetcher.check_usable()
        if session.base_url != self._root.base_url or session.username != self._username:
            raise ConfigError(
                f"the session was saved for {session.username!r} on {session.base_url}, not for "
                f"{self._username!r} on {self._root.base_url}: its tokens are not sent to another "
                "server or for another user"
            )
        self._tokens.check_resumable(begun=self._discovering)
        dialect = self._dialect
        if dialect is not None and dialect.version != session.api_version:
            log.debug(
                "a session of API %s does not serve a client of API %s: signing in",
                session.api_version,
                dialect.version,
            )
            return False
        token = session.token(now=self._tokens.now(), wall_now=dt.datetime.now(dt.UTC))
        if token.refresh_token is None and self._tokens.expired(token):
            log.debug("the saved session has expired and holds no refresh token: signing in")
            return False
        self._tokens.resume(token)
        if dialect is None:
            self._speak(DIALECTS[session.api_version])
            self._version_found = session.version_found
        return True

    def saved_session(self) -> SavedSession | None:
        """The client's token pair, to be resumed by a later run (`resume`, after
        `SavedSession.to_json` and `SavedSession.from_json`); None before the client has
        signed in (`sign_in`), once it closed, or while the server refuses its token. The
        tokens change as they are renewed: save the session again at the end of a run."""
        token, dialect = self._tokens.held(), self._dialect
        if token is None or dialect is None or self._fetcher.closed:
            return None
        return SavedSession.of(
            token,
            base_url=self._root.base_url,
            username=self._username,
            api_version=dialect.version,
            now=self._tokens.now(),
            wall_now=dt.datetime.now(dt.UTC),
            version_found=self._version_found,
        )

    async def _found_dialect(self) -> Dialect:
        """The dialect of the API version the client speaks, found first if ``"auto"``: once for
        every caller waiting at the same time, who share its outcome (a refused password is asked
        once); a caller cancelled leaves the discovery running for the others, and the last one
        leaves it to finish alone (closing cancels it): its probes are password grants, which
        the server counts in its throttle whether or not their answer is awaited, and whose
        token serves the next call."""
        dialect = self._dialect
        if dialect is not None:
            return dialect
        self._fetcher.check_usable()
        self._discovering = True  # a session is no longer resumed (`resume`)
        return await self._discovery.run("dialect", self._discovered, finish_alone=True)

    async def _discovered(self) -> Dialect:
        if self._dialect is None:
            self._speak(await self._discover())
            self._version_found = dt.datetime.now(dt.UTC)
        assert self._dialect is not None
        return self._dialect

    async def _discover(self) -> Dialect:
        """The newest version whose token endpoint grants a token. A version the server does not
        route answers 404 and costs that one request; any other failure (refused credentials,
        a transport error) is raised and nothing is kept, so the next request tries again."""
        for dialect in NEWEST_FIRST:
            if await self._tokens.probe(dialect, self._root.url(dialect.path("token"))):
                log.info("%s speaks API %s", self._root.base_url, dialect.version)
                return dialect
            log.debug("%s does not serve API %s (404)", self._root.base_url, dialect.version)
        tried = ", ".join(d.version for d in NEWEST_FIRST)
        raise APIError(
            f"the server serves none of the API versions {tried} (every /{{version}}/Token answered 404)",
            status_code=404,
            method="POST",
            url=self._root.base_url,
        )

    def _scrub(self, text: str) -> str:
        return self._tokens.redactor().scrub(text)

    async def _url(self, operation: str, **ids: str) -> str:
        dialect = await self._found_dialect()
        return self._root.url(dialect.path(operation, **ids))

    # --- entry points -------------------------------------------------------------------------------

    async def organizations(self) -> list[Organization]:
        """``GET /Organizations``: every organization (all pages followed)."""
        return await self._fetcher.fetch_all(await self._url("organizations"), Organization)

    async def organization(self, organization_id: str) -> Organization:
        """``GET /Organizations/{id}``."""
        url = await self._url("organization", organization=id_argument(organization_id, "organization_id"))
        return await self._get(url, Organization)

    async def organization_jobs(self, organization: str | Organization) -> list[Job]:
        """The jobs of one organization, every page: ``GET /Organizations/{id}/Jobs`` up to v7,
        ``GET /v8/Jobs?organizationId={id}`` on v8 (which removed the former). An organization the
        server does not know is a `NotFoundError` on every version: v8 answers such a filter with
        an empty list (or a 400 when the id has not the form of its ids), so an empty answer or a
        400 there is checked with ``GET /Organizations/{id}``; a job a page of that filter names
        for another organization is left out (ids compared ignoring case). A job listed more than
        once (pages cut by offset shift when a job is added or removed meanwhile) is returned once,
        as first listed (`first_listed`)."""
        org = id_argument(_id_of(organization, Organization, "organization"), "organization")
        url = await self._url("organization_jobs", organization=org)
        dialect = await self._found_dialect()
        filters = dialect.organization_jobs_filter
        # A page of the filter may list other tenants' jobs (a v8 ``next`` naming v7, whose
        # /Jobs ignores the filter): one of theirs that cannot be decoded is not this tenant's
        # failure. Its own (or one naming no organization) is raised, the first as listed.
        refused = _Refusals(Job, "organization_id", dialect) if filters else None
        try:
            listed = await self._fetcher.fetch_all(url, Job, refused=refused)
        except APIError as exc:
            if filters and exc.status_code == 400:
                await self.organization(org)  # its NotFoundError when the server has no such organization
            raise
        mine = (id_key(org), "")
        error = next((error for key, error in refused.filed if key in mine), None) if refused else None
        if error is not None:
            raise bodiless(error)
        jobs = first_listed(listed if not filters else _owned_by(listed, org))
        if not jobs and filters:
            await self.organization(org)
        return jobs

    async def jobs(self) -> list[Job]:
        """``GET /Jobs``: every job the account can see (all pages). A job a later page repeats
        (pages cut by offset shift when a job is added or removed meanwhile) is given once, as
        first listed; one the first page lists twice is there twice (a server may list one id
        under two tenants; `organization_jobs` gives each of a tenant's jobs once)."""
        return await self._fetcher.fetch_all(await self._url("jobs"), Job)

    async def job(self, job_id: str) -> Job:
        """``GET /Jobs/{id}``."""
        return await self._get(await self._url("job", job=id_argument(job_id, "job_id")), Job)

    async def job_session(self, session_id: str) -> JobSession:
        """``GET /JobSessions/{id}``."""
        url = await self._url("session", session=id_argument(session_id, "session_id"))
        return await self._get(url, JobSession)

    async def job_sessions(self, job: str | Job, *, limit: int | None = 5) -> list[JobSession]:
        """The newest ``limit`` sessions of one job, newest first (``limit=None``: all of them).

        v7/v8 ask ``/JobSessions?jobId=&limit=`` (the jobs' own ``jobsessions`` links are dead
        there); v1/v6 ``/Jobs/{id}/JobSessions`` (v1 cannot limit: every session is read and the
        newest kept). Every session's ``job_id`` is the job's: a session a page names for another
        job is left out (ids compared ignoring case), and one that a later page repeats is read once.
        """
        if limit is not None and (not _is_int(limit) or limit < 1):
            raise ConfigError(f"limit must be a positive integer or None, got {limit!r}")
        job_id = id_argument(_id_of(job, Job, "job"), "job")
        url = await self._url("job_sessions", job=job_id)
        dialect = await self._found_dialect()
        if limit is not None and dialect.page_limit is not None:
            url = f"{url}{'&' if '?' in url else '?'}limit={min(limit, dialect.page_limit)}"
        wanted = id_key(job_id)
        found: dict[str, JobSession] = {}  # by id: each session once
        # Closed here when the limit breaks off: left to the collector, its close was a task of
        # its own after the call had returned.
        async with contextlib.aclosing(self._fetcher.iterate(url, JobSession)) as listed:
            async for session in listed:
                if session.job_id is not None and id_key(session.job_id) != wanted:
                    continue  # a page that ignored jobId (v6's /JobSessions does; a next link may lead there)
                # A page may repeat a session of the one before: one started meanwhile shifts a
                # newest-first listing cut by offset.
                if session.job_id is None:
                    session = attrs.evolve(session, job_id=job_id)
                found[session.id] = session
                if limit is not None and dialect.page_limit is not None and len(found) >= limit:
                    break
        sessions = sorted(found.values(), key=newest_first)
        return sessions if limit is None else sessions[:limit]

    async def backup_repositories(self) -> list[BackupRepository]:
        """``GET /BackupRepositories``."""
        return await self._fetcher.fetch_all(await self._url("backup_repositories"), BackupRepository)

    async def recent_sessions(
        self, since: dt.datetime, *, jobs: Iterable[Job] | None = None
    ) -> dict[str, list[JobSession]]:
        """The sessions that ended since ``since`` (or are still running), per job id, newest
        first: the server-wide view a sweep judges every job's health from. (From v6 on the
        server's ``endTimeLowerBound`` chooses them: a run still in progress that started before
        ``since`` may be left out, where v1, filtered here, keeps every run in progress.)

        v6+ ask for them in one listing (``/JobSessions?endTimeLowerBound=``, pages of 10,000),
        whatever the number of jobs; each session is filed under its ``job_id`` (on v6/v7 read from
        its ``job`` link), compared as ids are (ignoring case and .NET's GUID spellings: `id_key`):
        a server naming one job in two cases gets its sessions filed under one id, that of the job
        among ``jobs`` when given (``{...}`` if it was built so), else the first spelling read. v1
        has no such filter: each of ``jobs`` (every job when None) costs one request
        (``/Jobs/{id}/JobSessions``), and the sessions are filtered here. On every version the
        answer holds the sessions of ``jobs`` only when given, of every job when None; jobs with
        no such session are absent from it.
        """
        if not isinstance(since, dt.datetime) or since.utcoffset() is None:
            raise ConfigError("since must be an aware datetime (with a tzinfo)")
        given = None if jobs is None else _jobs_argument(jobs)
        self._fetcher.check_usable()  # with no jobs nothing is sent, and a closed client still says so
        if given is not None and not given:
            return {}  # not the server-wide listing read whole to keep nothing of it (v6+)
        dialect = await self._found_dialect()
        found: dict[str, list[JobSession]] = {}
        if dialect.lists_recent_sessions:
            url = self._root.url(dialect.path("sessions_since", since=_utc_stamp(since)))
            # A job id's `id_key` -> its spelling: a given job's own, else the first read.
            spelled = {id_key(job.id): job.id for job in given or ()}
            read: set[str] = set()  # session ids lower-cased: a page may repeat a session
            async for session in self._fetcher.iterate(url, JobSession):
                if (key := session.id.lower()) in read:
                    continue
                read.add(key)
                if session.job_id is None:
                    continue
                job_id: str | None
                if given is None:
                    job_id = spelled.setdefault(id_key(session.job_id), session.job_id)
                elif (job_id := spelled.get(id_key(session.job_id))) is None:
                    continue  # another job's: the answer is of ``jobs``, as v1's is
                found.setdefault(job_id, []).append(session)
        else:
            chosen = given if given is not None else await self.jobs()
            # As many at once as the client sends: not a task per job waiting for a slot.
            listings = await each(
                chosen, lambda job: self.job_sessions(job, limit=None), self._max_concurrency
            )
            for job, sessions in zip(chosen, listings, strict=True):
                recent = [s for s in sessions if _ended_since(s, since)]
                if recent:
                    found[job.id] = recent
        for sessions in found.values():
            sessions.sort(key=newest_first)
        return found

    async def _organizations_filed(self) -> tuple[list[Organization], dict[str, DecodeError]]:
        """Every organization (``GET /Organizations``, every page), and the `DecodeError` of
        each that could not be decoded by its lower-cased id ("" for one whose id cannot be
        read; the first error of an id listed twice): a sweep still knows them, and one tenant's
        malformed organization fails none of its neighbours."""
        organizations, filed = await self._filed("organizations", Organization)
        refused: dict[str, DecodeError] = {}
        for key, error in filed:
            refused.setdefault(key, error)
        return organizations, refused

    async def _filed(self, route: str, cls: type[T]) -> tuple[list[T], list[tuple[str, DecodeError]]]:
        """Every item of the listing ``route`` (every page) that could be decoded, and each that
        could not: its lower-cased id ("" when it cannot be read) and its `DecodeError`, an id
        listed twice once, every item without one: a sweep judges a server's other repositories
        or proxies, and says (and counts) each it could not read, instead of losing them all to
        one item's bad field."""
        refusals = _Refusals(cls, "id", await self._found_dialect())
        items = await self._fetcher.fetch_all(await self._url(route), cls, refused=refusals)
        filed: list[tuple[str, DecodeError]] = []
        seen: set[str] = set()
        for key, error in refusals.filed:
            if key and key in seen:
                continue
            seen.add(key)
            filed.append((key, error))
        return items, filed

    async def _jobs_filed(self) -> tuple[list[Job], dict[str, list[DecodeError]]]:
        """Every job of the server (``GET /Jobs``, every page), and the jobs that could not be
        decoded, by the organization id their wire JSON names (lower-cased; "" when none): a sweep
        files each failure under its own tenant."""
        refusals = _Refusals(Job, "organization_id", await self._found_dialect())
        jobs = await self._fetcher.fetch_all(await self._url("jobs"), Job, refused=refusals)
        refused: dict[str, list[DecodeError]] = {}
        for key, error in refusals.filed:
            refused.setdefault(key, []).append(error)
        return jobs, refused

    async def proxies(self) -> list[Proxy]:
        """``GET /Proxies``."""
        return await self._fetcher.fetch_all(await self._url("proxies"), Proxy)

    async def backup_repository(self, repository_id: str) -> BackupRepository:
        """``GET /BackupRepositories/{id}``."""
        url = await self._url("backup_repository", repository=id_argument(repository_id, "repository_id"))
        return await self._get(url, BackupRepository)

    async def object_storage(self, repository: BackupRepository) -> ObjectStorage | None:
        """The object storage ``repository`` keeps its backups in, on every version: v8 holds it
        in the repository (``repository.object_storage``: no request); v6/v7 name it by
        ``object_storage_id``, read here (``GET /objectstoragerepositories/{id}``); None for a
        repository on disk, and for any v1 repository (v1 knows no object storage)."""
        if not isinstance(repository, BackupRepository):
            raise ConfigError(f"repository must be a BackupRepository, got {type(repository).__name__}")
        if repository.object_storage is not None or repository.object_storage_id is None:
            return repository.object_storage
        storage = id_argument(repository.object_storage_id, "repository.object_storage_id")
        return await self._get(await self._url("object_storage", storage=storage), ObjectStorage)

    async def proxy(self, proxy_id: str) -> Proxy:
        """``GET /Proxies/{id}``."""
        return await self._get(await self._url("proxy", proxy=id_argument(proxy_id, "proxy_id")), Proxy)

    async def service_instance(self) -> ServiceInstance:
        """``GET /ServiceInstance`` (v6+): the installation id and build (``"8.5.0.1014"``).
        `NotSupportedError` on v1."""
        return await self._get(await self._url("service_instance"), ServiceInstance)

    async def license(self) -> License:
        """``GET /License`` (v6+): status, expiry dates and how many users are licensed and used.
        `NotSupportedError` on v1, before any request."""
        return await self._get(await self._url("license"), License)

    async def organization_used_repositories(self, organization: str | Organization) -> list[UsedRepository]:
        """What one organization's backups take in each repository: ``GET
        /Organizations/{id}/usedRepositories`` (v6+, every page). `NotSupportedError` on v1,
        before any request."""
        org = id_argument(_id_of(organization, Organization, "organization"), "organization")
        url = await self._url("organization_used_repositories", organization=org)
        return await self._fetcher.fetch_all(url, UsedRepository)

    # --- job health ---------------------------------------------------------------------------------

    async def job_health(
        self, job: Job, *, policy: HealthPolicy | None = None, now: dt.datetime | None = None
    ) -> JobHealth:
        """The health of ``job`` under ``policy`` (`HealthPolicy()` when None): `assess` fed with
        the job's newest sessions, read within a fixed budget that never walks the history.

        v7/v8 ask ``/JobSessions?jobId=&limit=5`` and, only when those five were all running,
        queued or stopped, once more with ``limit=50``; the last success is the latest of the
        job's ``last_backup``, a successful run read and a successful ``last_run``. v6 reads one
        page of the 50 newest (``/Jobs/{id}/JobSessions``), its jobs having no ``last_backup``.
        v1 can neither filter nor limit: one request, whose answer holds every session (a first
        page, should the server page it anyway).
        A `VBOError` while reading (a job id the server sent that cannot be asked for, such as
        ``a/b``, included) gives a `JobHealth` in ``policy.unreadable`` (UNKNOWN) with the
        error in its reason instead of raising; `ClientStateError` (the client is closed, or used
        from another event loop) is raised, as by every other method: it says nothing of the job.
        ``now`` (aware) is when the job is judged; when None, the current time on the server's
        clock (this machine's, moved by `server_clock_offset` when that is a minute to a day), so
        that a server whose clock is off this one's has its runs' ages measured on its own; a
        verdict that this machine's clock would give in another state says so at the end of its
        reason (`_health.on_clock`): ``"(on the server's clock, 3 h behind this machine's;
        CRITICAL on this machine's)"``, the ``Date`` it rests on being the server's word.

        ```python
        for job in await vbo.organization_jobs(org_id):
            health = await vbo.job_health(job, policy=HealthPolicy(max_age=timedelta(hours=30)))
            print(health.state.name, job.name, health.reason)
        ```
        """
        if not isinstance(job, Job):
            raise ConfigError(f"job_health() needs a Job (as listed by jobs()), got {type(job).__name__}")
        policy = HealthPolicy() if policy is None else policy
        if not isinstance(policy, HealthPolicy):
            raise ConfigError(f"policy must be a HealthPolicy or None, got {type(policy).__name__}")
        if now is not None and (not isinstance(now, dt.datetime) or now.utcoffset() is None):
            raise ConfigError("now must be an aware datetime (with a tzinfo) or None")
        return await self._job_health(job, policy, now)

    async def _job_health(
        self, job: Job, policy: HealthPolicy, now: dt.datetime | None, here: dt.datetime | None = None
    ) -> JobHealth:
        """`job_health` of checked arguments. ``here`` is this machine's time of which ``now`` is
        the server's reading (a sweep's), so that a verdict the server's clock decided says so
        (`on_clock`); with ``now`` None both are taken after the request; with ``now`` alone,
        ``now`` is taken as it is."""
        error: VBOError | None = None
        try:
            # The server's id: one that cannot name a URL segment (``a/b``) is this job's
            # UNKNOWN, as in a sweep, not the caller's mistake (`ConfigError` raised).
            sessions = await self._health_sessions(id_argument(job.id, "job.id"))
        except ClientStateError:
            raise
        except VBOError as exc:
            log.debug("reading the sessions of job %r failed: %s", self._fetcher.shown_id(job.id), exc)
            sessions, error = [], exc
        if now is None:  # after the request: its answer's Date is the freshest reading of the clock
            here = dt.datetime.now(dt.UTC)
            now = self._server_now(here)
        if here is None:
            return assess(job, sessions, policy=policy, now=now, error=error)
        return on_clock(lambda at: assess(job, sessions, policy=policy, now=at, error=error), here, now)

    async def _health_sessions(self, job_id: str) -> list[JobSession]:
        """The job's newest sessions within the dialect's ``health_pages`` budget: one request
        per page, never following ``next``; a later page only when the one before was full and
        held no finished run."""
        dialect = await self._found_dialect()
        url = await self._url("job_sessions", job=job_id)
        sessions: list[JobSession] = []
        for limit in dialect.health_pages or (None,):
            items, _ = await self._fetcher.fetch_page(with_limit(url, limit), JobSession)
            sessions = [s if s.job_id is not None else attrs.evolve(s, job_id=job_id) for s in items]
            if limit is None or len(items) < limit or any(finished(s) for s in sessions):
                break
        return sessions

    @overload
    async def follow(self, link: CollectionLink[T]) -> list[T]: ...
    @overload
    async def follow(self, link: Link[T]) -> T: ...
    async def follow(self, link: Link[Any]) -> Any:
        """Follow ``link`` through this client (the same as ``await link`` for links this client
        decoded; also works for a link decoded by another client of the same server, or one
        that was pickled)."""
        _check_followable(link)
        return await link.bound_to(self._fetcher)

    def to_wire(self, model: Any, *, api_version: str | None = None) -> Any:
        """The wire JSON of a model (or a list of them) in the client's API version (or
        ``api_version``): wire names, ISO timestamps, ``_links`` with the hrefs the model's links
        hold (secrets a server put in one as ``***``: `Link.shown_href`). A link the client
        builds itself instead of reading the server's is written as built where the version's
        wire has a name for it (a v8 organization's ``jobs``: ``/v8/Jobs?organizationId=``), and
        left out where it has none (v7/v8 ``jobsessions``, whose server link is dead, and a v6+
        job's ``proxy``, reached through its repository): decoded again, both are built again.

        ``from_wire(to_wire(model), type(model)) == model`` for a model decoded from that
        version (a field the version's wire has no name for, set by hand, is not written: v6's
        license has no ``package``); use it to cache or log resources.
        Lists, tuples and dicts of models and JSON values are written item by item; anything
        else (a client, a `HealthPolicy`, a set), a float JSON has no number for (NaN, an
        infinity) and two keys JSON writes alike (``1`` and ``"1"``) are a `ConfigError` naming
        its place, as `to_jsonable` says them.
        """
        return self._fetcher.decoder.unstructure(model, self._wire_dialect(api_version))

    def from_wire(self, data: Any, cls: type[T], *, api_version: str | None = None) -> T:
        """Decode one resource's wire JSON (a dict) of the client's API version (or
        ``api_version``) into ``cls``; its links follow via this client. Raises `DecodeError`
        like an answer from the server would. A model nested in resources (a `SchedulePolicy`,
        `BackupWindow`, `JobSessionStatistics` or `SelectedItemObject`) is decoded alone too,
        as `to_wire` writes it; a resource's links only with their resource."""
        if not (isinstance(cls, type) and cls in MODELS):
            raise ConfigError(
                f"from_wire() decodes vbo-async resources and the models nested in them "
                f"(a resource's links only with it), not {cls!r}"
            )
        return self._fetcher.decoder.one(data, cls, self._wire_dialect(api_version))

    def _wire_dialect(self, api_version: str | None) -> Dialect:
        if api_version is not None:
            if not isinstance(api_version, str) or api_version not in DIALECTS:
                raise ConfigError(f"api_version must be one of {', '.join(DIALECTS)}; got {api_version!r}")
            return DIALECTS[api_version]
        if self._dialect is None:
            raise ClientStateError(
                "the API version is not known before the first request: pass api_version=, "
                "or make a request first"
            )
        return self._dialect

    # --- job actions (sent exactly once, never retried) ---------------------------------------------

    async def start_job(self, job: str | Job, *, full: bool = False) -> JobSession | None:
        """Start a job now: v6+ ``POST /Jobs/{id}/start`` with ``{"full": false}`` (``full``: a
        full run instead of an incremental one, v6+ only), v1 ``POST /Jobs/{id}/Action`` with
        ``{"start": null}``. Returns the new session on v8 (which answers with it), else None. A v8
        answer that is not a session is a `DecodeError` that says the job was started (a body too
        large, cut short or stalled: its `ResponseTooLargeError` or `TransportError`, saying the
        same). It is sent once, whatever the answer: a 401 (the server acts on nothing before
        authenticating it) is an `AuthenticationError` saying the job was not started, the token
        renewed for the next request."""
        if not isinstance(full, bool):
            raise ConfigError(f"full must be True or False, got {full!r}")
        url, answer = await self._action(job, "start", full=full)
        dialect = await self._found_dialect()
        if not dialect.start_returns_session or (answer.unread is None and not answer.body.strip()):
            return None
        error: VBOError | None = None
        try:
            session = self._started_session(answer, url, dialect)
        except (DecodeError, ResponseTooLargeError, TransportError) as exc:
            # The server accepted the start: say so, lest the caller send it again.
            exc.message = f"the job was started, but the answer is not its session: {exc.message}"
            exc.method, exc.url = "POST", url
            self._fetcher.hide_secrets(exc)
            error = exc
        if error is not None:
            del answer  # not kept by the error's traceback
            raise bodiless(error)
        if session.job_id is None:
            session = attrs.evolve(session, job_id=_id_of(job, Job, "job"))
        return session

    def _started_session(self, answer: Answer, url: str, dialect: Dialect) -> JobSession:
        if answer.unread is not None:  # too large, not valid for its coding, cut short, stalled
            raise answer.unread
        data = self._fetcher.parse_json(answer.body, "POST", url)
        return self._fetcher.decoder.one(data, JobSession, dialect, url=url)

    async def stop_job(self, job: str | Job) -> None:
        """Stop a running job (v6+ ``/stop``, v1 ``{"stop": null}``)."""
        await self._action(job, "stop")

    async def enable_job(self, job: str | Job) -> None:
        """Enable a job's schedule (v6+ ``/enable``, v1 ``{"enable": null}``)."""
        await self._action(job, "enable")

    async def disable_job(self, job: str | Job) -> None:
        """Disable a job's schedule (v6+ ``/disable``, v1 ``{"disable": null}``)."""
        await self._action(job, "disable")

    async def _action(self, job: str | Job, action: JobAction, *, full: bool = False) -> tuple[str, Answer]:
        """Send a job action once: (its URL, its 2xx answer). It is never sent again, after a 401
        neither (the server refused the token before acting: an `AuthenticationError` saying so,
        the token renewed for the next request). The status says what the server did: a body that
        cannot be read (too large, not valid for its ``Content-Encoding``, cut short, stalled past
        the timeout) is in ``unread``, not raised, lest the caller take an accepted action for
        failed and send it again, or a refused one (a 401, a 409) for one that may have been done
        (only a v8 start reads its body)."""
        job_id = id_argument(_id_of(job, Job, "job"), "job")
        dialect = await self._found_dialect()
        path, body = dialect.action(job_id, action, full=full)
        url = self._root.url(path)
        answer: Answer | None = None
        try:
            answer = await self._fetcher.send("POST", url, json=body, retry=False, unread_body_ok=True)
            self._fetcher.expect_success(answer, "POST", url)
        except VBOError as exc:
            # A body that could not be read is said by `expect_success`'s error.
            if _may_have_acted(exc, url):
                exc.message = (
                    f"{exc.message}; the job may have been {_DONE[action]} all the same: check it "
                    "before sending the action again"
                )
            elif isinstance(exc, AuthenticationError) and (exc.method, exc.url) == ("POST", url):
                unrenewed = answer.unrenewed if answer is not None else None
                after = (
                    "the token is renewed: the action may be sent again"
                    if unrenewed is None
                    else f"renewing the token failed too: {unrenewed}"
                )
                done = _DONE[action]
                exc.message = (
                    f"{exc.message}; refused before the server acted: the job was not {done} ({after})"
                )
            # Logged as an accepted one is: an audit of job actions sees the ones that may have
            # been done too (the error's words are scrubbed of the client's secrets).
            log.info("job action %s failed: %s", action, exc)
            # Not kept by the error's traceback: an error reporter shows each frame's variables,
            # and the answer's headers and body may echo the token or the password.
            answer = None
            raise bodiless(exc)  # noqa: B904 - the same error, raised again
        log.info("job action %s sent to %s", action, self._fetcher.shown(url))
        return url, answer

    async def _get(self, url: str, cls: type[T]) -> T:
        return await self._fetcher.fetch_one(url, cls)  # type: ignore[no-any-return]


class _Refusals:
    """The items of a listing that could not be decoded (a `Refused` callback): each error, in
    the order listed, with the lower-cased id the item's wire JSON gives ``field`` of ``cls``
    ("" when it cannot be read), so that a failure is filed under its own tenant. The reader is
    built at the first refusal (about 35 us: 2% of a page of 100 jobs)."""

    __slots__ = ("_cls", "_dialect", "_field", "_read", "filed")

    def __init__(self, cls: type[Any], field: str, dialect: Dialect) -> None:
        self._cls, self._field, self._dialect = cls, field, dialect
        self._read: Callable[[Any], str | None] | None = None
        self.filed: list[tuple[str, DecodeError]] = []

    def __call__(self, item: Any, error: DecodeError) -> None:
        if self._read is None:
            self._read = raw_reader(self._cls, self._field, self._dialect)
        self.filed.append((id_key(self._read(item) or ""), error))


_DONE: Mapping[JobAction, str] = MappingProxyType(
    {"start": "started", "stop": "stopped", "enable": "enabled", "disable": "disabled"}
)
"""What each job action does to the job, for `_action`'s errors."""


def _may_have_acted(error: VBOError, url: str) -> bool:
    """Whether a job action to ``url`` that failed with ``error`` may have been carried out: its
    own request may have reached the server (a transport failure not known to be unsent), or a
    server error (5xx) answered it, which a proxy or the server may give after the work was done.
    A 4xx (a 429 included) is a refusal before the work; a failure of another request (the token
    grant before the action, or the renewal after a 401, which the server answers before acting)
    and a request the client did not send (a rest past its bound) are none of the action's."""
    if error.url is not None and (error.method, error.url) != ("POST", url):
        return False
    if isinstance(error, TransportError):
        return not error.unsent
    if not isinstance(error, APIError) or error.unsent:
        return False
    return error.status_code is not None and error.status_code >= 500


def first_listed(jobs: list[Job]) -> list[Job]:
    """``jobs`` with each job id once (compared ignoring case, as ids are everywhere), as first
    listed: a repeat (a page shifted by a job added or removed meanwhile) is left out, even when
    it says something else (the job was disabled between the two pages), so that every output of
    a sweep (its rows, series and verdicts) shows the one listing it judged (pure)."""
    seen: set[str] = set()
    kept = []
    for job in jobs:
        key = id_key(job.id)
        if key in seen:
            continue
        seen.add(key)
        kept.append(job)
    if len(kept) == len(jobs):
        return jobs
    log.debug("the server listed %d jobs more than once: each kept as first listed", len(jobs) - len(kept))
    return kept


def _owned_by(jobs: list[Job], organization_id: str) -> list[Job]:
    """The jobs that name no organization or ``organization_id`` (ignoring case): a page that
    ignored the ``organizationId`` filter names other organizations' jobs too (v7's ``/Jobs``
    does, and a v8 next link may name v7)."""
    wanted = id_key(organization_id)
    return [job for job in jobs if job.organization_id is None or id_key(job.organization_id) == wanted]


def _jobs_argument(jobs: Any) -> list[Job]:
    """``jobs`` as a list of `Job` models, or `ConfigError` (a string would be iterated as
    one-letter ids, and ids have no ``id`` to file the sessions under)."""
    if isinstance(jobs, str | bytes) or not isinstance(jobs, Iterable):
        raise ConfigError(f"jobs must be Job models (as listed by jobs()) or None, got {type(jobs).__name__}")
    chosen = list(jobs)
    for job in chosen:
        if not isinstance(job, Job):
            raise ConfigError(f"jobs must be Job models (as listed by jobs()), not {type(job).__name__}")
        if not isinstance(job.id, str):  # filed by its `id_key`: a Job built by hand with id=None
            kind = type(job.id).__name__
            raise ConfigError(f"jobs must be Job models with an id string, got an id of {kind}")
    return chosen


def _utc_stamp(moment: dt.datetime) -> str:
    """``moment`` (aware) in UTC as the servers' filters read it (``2026-06-01T12:00:00Z``, whole
    seconds, four digits for any year: strftime writes the year 110 as "110"); a moment whose UTC
    time leaves the calendar (the first hours of the year 1 east of UTC, the last of 9999 west of
    it) as the calendar's first or last second (pure)."""
    try:
        utc = moment.astimezone(dt.UTC)
    except OverflowError:
        utc = dt.datetime.min if moment.year == 1 else dt.datetime.max
    return utc.replace(tzinfo=None, microsecond=0).isoformat() + "Z"


def _ended_since(session: JobSession, since: dt.datetime) -> bool:
    """Whether ``session`` ended at or after ``since``, or is still running (no end, or one that
    never was: `is_never`, as .NET's 0001-01-01); a finished run without an end counts from its
    start."""
    if session.end_time is not None and not is_never(session.end_time):
        return session.end_time >= since
    return session.creation_time is None or session.creation_time >= since or not finished(session)


def _is_loopback(url: str) -> bool:
    """Whether ``url`` names this machine (``localhost``, ``127.0.0.0/8``, ``::1``): plain HTTP
    there never crosses a network."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_finite(value: float) -> bool:
    """Whether ``value`` is a finite number that a float can hold (not ``10**400``)."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _check_followable(link: object) -> None:
    """`ConfigError` unless ``link`` is a `Link` that decodes into a vbo-async model or raw JSON
    (target None), and, for a `ThroughLink`, whose first step is such a link and whose next
    relation a string: a link built by hand with another target decoded a job as anything
    (``HealthPolicy``) or failed deep inside the decoder."""
    if not isinstance(link, Link):
        raise ConfigError(f"follow() takes a Link, got {type(link).__name__}")
    target = link.target
    if target is not None and not (isinstance(target, type) and target in MODELS):
        raise ConfigError(f"follow() decodes into vbo-async models or raw JSON (target None), not {target!r}")
    if isinstance(link, ThroughLink):
        if not isinstance(link.then, str):
            raise ConfigError(f"a ThroughLink's then must be a relation name, got {type(link.then).__name__}")
        _check_followable(link.via)


def _id_of(value: Any, model: type[Job] | type[Organization], name: str) -> Any:
    """The id ``value`` names: itself, or the id of a ``model`` (checked by `id_argument` next);
    `ConfigError` naming anything else. Another model with an id (an organization passed as a
    job) would have its id sent as the job's: ``start_job(organization)`` posted to
    ``/Jobs/{organization id}/start``."""
    if isinstance(value, str):
        return value
    if isinstance(value, model):
        return value.id
    raise ConfigError(f"{name} must be an id or {with_article(model.__name__)}, got {type(value).__name__}")


def default_transport(verify: ssl.SSLContext | bool, limits: httpx.Limits) -> httpx.AsyncBaseTransport:
    """The transport a client uses when none is given: aiohttp's wire code behind httpx's API
    (a fraction of httpcore's CPU per request), or httpx's own where aiohttp is not installed."""
    try:
        from ._aiohttp import AiohttpTransport
    except ImportError:
        return httpx.AsyncHTTPTransport(verify=verify, limits=limits, trust_env=False)
    except OSError as exc:  # its first import, when the process has no descriptor free to read it
        raise _out_of_descriptors(exc, "cannot load the HTTP transport") from exc
    return AiohttpTransport(verify=verify, limits=limits)


_OUT_OF_DESCRIPTORS = (errno.EMFILE, errno.ENFILE)


def _out_of_descriptors(exc: OSError, doing: str) -> TransportError:
    """The `TransportError` for ``exc``, a file the process or the system had no descriptor
    free to open: nothing is wrong with the file, and the same call may succeed later."""
    return TransportError(f"{doing}: {exc.strerror or exc} (no file descriptor is free; try again later)")


def _ssl_context(
    verify: bool | str | os.PathLike[str] | ssl.SSLContext, *, plain: bool
) -> ssl.SSLContext | bool:
    """The TLS context of the transport a client builds. A client of an ``http://`` server
    (``plain``) never makes a TLS connection (every request goes to its own base URL: a server's
    hrefs are rebased onto it): for the default ``verify=True`` the system's CA certificates,
    25-60 ms to load, would never be read, so a context that verifies and trusts no certificate
    stands in (were it ever used, it would refuse every server). A CA bundle path is loaded all
    the same, so that a wrong one is said at once."""
    if isinstance(verify, ssl.SSLContext):
        return verify
    if verify is False:
        log.warning("TLS certificate verification is OFF (verify=False): use only for testing")
        return False
    if verify is True and plain:
        return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED, check_hostname, no CA
    if verify is True or isinstance(verify, str | os.PathLike):
        return tls_context(verify)
    raise ConfigError(f"verify must be a bool, a CA bundle path or an ssl.SSLContext, got {verify!r}")


def tls_context(verify: Literal[True] | str | os.PathLike[str]) -> ssl.SSLContext:
    """A verifying TLS context: the system's CA certificates for ``True``, else those of the CA
    bundle file or directory at ``verify`` (`ConfigError` when it cannot be loaded; a directory
    must hold its certificates under the names ``openssl rehash`` gives them; `TransportError`
    when the process has no file descriptor free to read them). Loading takes
    about 25 ms: build one and share it between clients."""
    if verify is True:
        context = ssl.create_default_context()
        if not context.cert_store_stats()["x509"]:
            _check_default_readable()
        _check_default_bundle(context)
        return context
    path = os.fspath(verify)
    if not path:  # cafile="" is no file at all: the system's CAs would be loaded in silence
        raise ConfigError("the CA bundle path is empty")
    try:
        if os.path.isdir(path):
            if not _holds_hashed_certificates(path):
                raise ConfigError(
                    f"cannot load the CA bundle {path!r}: the directory holds no certificate named "
                    "by the hash of its subject, as OpenSSL looks them up (run 'openssl rehash' on "
                    "it, or pass a PEM file of the CA certificates)"
                )
            return ssl.create_default_context(capath=path)
        # OpenSSL opens the bundle to read it: a named pipe with no writer would hold it for good.
        if os.path.exists(path) and (kind := not_a_file(os.stat(path).st_mode)) is not None:
            raise ConfigError(f"cannot load the CA bundle {path!r}: a {kind}, not a file")
        return ssl.create_default_context(cafile=path)
    except (OSError, ssl.SSLError, ValueError) as exc:  # ValueError: a NUL byte in the path
        if isinstance(exc, ConfigError):
            raise
        if isinstance(exc, OSError) and exc.errno in _OUT_OF_DESCRIPTORS:
            raise _out_of_descriptors(exc, f"cannot load the CA bundle {path!r}") from None
        raise ConfigError(f"cannot load the CA bundle {path!r}: {exc}") from None


def _check_default_readable() -> None:
    """A `TransportError` when the default CA bundle (``SSL_CERT_FILE``, else OpenSSL's own)
    could not be opened for want of a file descriptor: OpenSSL skips it in silence, and a
    context made then would refuse every certificate for as long as it is used."""
    paths = ssl.get_default_verify_paths()
    bundle = os.environ.get(paths.openssl_cafile_env) or paths.openssl_cafile
    try:
        os.close(os.open(bundle, os.O_RDONLY | os.O_NONBLOCK))  # a named pipe: no wait
    except OSError as exc:
        if exc.errno in _OUT_OF_DESCRIPTORS:
            raise _out_of_descriptors(exc, "cannot load the system's CA certificates") from None


def _check_default_bundle(context: ssl.SSLContext) -> None:
    """A `ConfigError` when the environment names a default CA bundle (``SSL_CERT_FILE``) that
    ``context`` could not load: OpenSSL skips it in silence (missing, unreadable, not PEM), so
    every server signed by a CA in it would be refused as of an unknown issuer. The file is read
    when the context is made; a CA directory (``SSL_CERT_DIR``) is read as certificates are
    looked up."""
    variable = ssl.get_default_verify_paths().openssl_cafile_env
    named = os.environ.get(variable)
    if named and not context.cert_store_stats()["x509"]:
        raise ConfigError(
            f"cannot load the CA bundle {named!r} that the environment variable {variable} names "
            "(missing, unreadable or not PEM)"
        )


def _holds_hashed_certificates(folder: str) -> bool:
    """Whether ``folder`` holds an entry named as OpenSSL looks a CA certificate up in a CA
    directory (``cef6d456.0``: the hash of its subject, a number). Without one it trusts
    nothing, in silence: loading the directory reads none of its files."""
    with os.scandir(folder) as entries:
        return any(_HASHED_NAME.fullmatch(os.fsdecode(entry.name)) for entry in entries)
