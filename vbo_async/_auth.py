"""The client's credentials and its one token pair, shared by every request.

The sending path (`_sending.Sender`) attaches the current access token; on a 401 it renews the
token here and replays an idempotent request (a job action's 401 is its answer: never sent twice;
a 401's body is never read: httpx's auth flows read it whole, outside any size limit, which is why
the replay is not an ``httpx.Auth`` flow).

`TokenManager` shares renewals: however many requests see a 401 at once, one token request is
made, in a task of its own that every caller waiting for it shares, its failure included (the
callers after it find the token already replaced). A caller cancelled meanwhile (a request
handler's deadline) leaves it running for the others, and when the last one is gone it finishes
alone and its token serves the next call (closing cancels it): the server may use a refresh
token up on receipt, and counts a password grant in its throttle whether or not its answer is
awaited. Refresh uses
the refresh-token grant shortly before expiry or after a 401, and falls back to the password grant
when that is refused, or its answer lost after it reached the server (which may have used the
refresh token up: the sender does not send it again; docs/reliability.md, "Token grants").
A proactive renewal (before expiry) that the token endpoint fails on its side leaves the token in
use while it is valid, and is tried again `RENEWAL_RETRY` seconds later.
A token the server refused (a 401) is not sent again when its renewal fails: the next call renews
first (kept for its refresh token).
A password the server refused is not sent again for a while (`REFUSED_PAUSE`), by a renewal or by
`probe`: the grants share one lock, so none is sent while another is in flight. A token endpoint
that throttled the client (429 after the retries) is not asked again before its ``Retry-After`` is
over, or for `THROTTLE_REST` seconds if it named none; nor one whose 5xx named a ``Retry-After``
(given up at once when longer than the policy allows) before that is over.
Once the client closes (`TokenManager.forget`) no grant is started, and a token that a grant
already in flight brings is not used but handed to the client's logout
(`TokenManager.granted_while_closing`; closed from inside that grant, the grant finishes the
close as it ends: `TokenManager.after_grant`); one whose access token has expired by then has its
refresh token redeemed (never the password) for a pair that can be logged out
(`TokenManager.redeemed_for_logout`): a logout needs a valid bearer.
Grants go to the token endpoint of the API version the client speaks, with that version's extra
form fields; `TokenManager.probe` asks one version's endpoint, which is how ``api_version="auto"``
finds the version without a request of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import attrs

from ._dialects import Dialect
from ._exceptions import (
    APIError,
    AuthenticationError,
    ClientStateError,
    ConfigError,
    DecodeError,
    RateLimitedError,
    ServerError,
    TransportError,
    VBOError,
)
from ._flights import Flights
from ._redact import Redactor
from ._status import retry_hint
from ._tokens import GrantForm, Token, parse_token_response, password_form, refresh_form

__all__ = [
    "MAX_RENEWALS",
    "MAX_THROTTLE_REST",
    "RENEWAL_RETRY",
    "RETIRED_KEPT",
    "RETIRED_LIVE",
    "THROTTLE_REST",
    "UNREADABLE_REST",
    "Secret",
    "TokenManager",
    "TokenUnavailable",
]

log = logging.getLogger("vbo_async")


class Secret:
    """A string that never shows itself in a repr, a str(), a log record or a pickle.

    Pickling gives a redacted placeholder, not an error: exceptions and log records are pickled
    behind the caller's back (multiprocessing, ``logging.handlers.QueueHandler``, pytest-xdist),
    and failing there would hide the failure being reported. The placeholder keeps the secret
    out and fails loudly where it would be used: its `reveal` raises `ConfigError`.
    ``copy.copy`` and ``copy.deepcopy`` give the same object (it is never changed).
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value: str | None = value

    def reveal(self) -> str:
        """The value; `ConfigError` for a placeholder made by unpickling."""
        if self._value is None:
            raise ConfigError(
                "this Secret was unpickled: secrets are never pickled, so its value is gone; "
                "pass the password again"
            )
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __reduce__(self) -> tuple[Callable[[], Secret], tuple[()]]:
        return (_unpickled_secret, ())

    def __copy__(self) -> Secret:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Secret:
        return self


def _unpickled_secret() -> Secret:
    """What a pickled `Secret` becomes: a placeholder whose `Secret.reveal` fails."""
    secret = Secret.__new__(Secret)
    secret._value = None
    return secret


RETIRED_KEPT = 4
"""Replaced tokens a `TokenManager` still scrubs from messages whatever their age: a request sent
with one may be answered after the renewal, and a token refreshed before it expires still works.
Older ones are scrubbed too while their access token has not expired (`RETIRED_LIVE`): a server
may have echoed one into an href of a model kept since, and renewals after 401s can come fast."""

RETIRED_LIVE = 32
"""Most replaced tokens scrubbed in all (the newest): bounds the work of building a redactor when
a server refuses token after token."""

MAX_RENEWALS = 2
"""Renewals (and replays) one request may cause. A token can be revoked between its renewal and
the replay, so one is not always enough; a server that refuses every fresh token still ends, after
this many, in the 401 being raised as `AuthenticationError`."""


REFUSED_PAUSE = 30.0
"""Seconds after the server refuses the password before the client sends it again; twice as long
after each further refusal in a row, up to `REFUSED_PAUSE_MAX`. Meanwhile every call that needs a
token raises that refusal again, saying when the password is tried next. A monitoring loop with a
wrong or expired password would otherwise send it once a sweep, or once a request: that is how
directory accounts get locked out (Windows' current default locks one after 10 failed sign-ins in
10 minutes). A success ends the pauses."""
REFUSED_PAUSE_MAX = 900.0
"""The longest pause after refused passwords (15 minutes): a password fixed on the server side,
or an account unlocked, is tried again within this long."""


@attrs.frozen
class _Refusal:
    """The server's last refusal of the password, and when the password may be sent again."""

    error: AuthenticationError
    at: float
    count: int
    """Refusals in a row."""
    retry_at: float

    @classmethod
    def after(cls, previous: _Refusal | None, error: AuthenticationError, now: float) -> _Refusal:
        count = 1 if previous is None else previous.count + 1
        pause = min(REFUSED_PAUSE * 2.0 ** min(count - 1, 32), REFUSED_PAUSE_MAX)
        return cls(error=error, at=now, count=count, retry_at=now + pause)

    def held(self, now: float) -> AuthenticationError:
        """The refusal raised again, ``now``: the password is not sent."""
        error = self.error
        return AuthenticationError(
            f"{error.message} (the password was refused {_seconds(now - self.at)} ago and is not sent "
            f"again for {_seconds(self.retry_at - now)}: repeated refusals can lock the account out)",
            method=error.method,
            url=error.url,
        )


RENEWAL_RETRY = 5.0
"""Seconds before a failed proactive renewal is tried again. The token is renewed shortly before
it expires (`Token.refresh_at`); when the token endpoint fails that renewal on its side (a 5xx
after the retries, a timeout, a 429, an unreadable answer), calls go on with the token, which
the server still accepts, and the renewal is tried again this long after (or once the token
endpoint's throttle rest is over, if later), not once per call. Only once the token has expired
(or the server refuses it: a 401 renews at once) is the failure raised. A refused password is
raised at once, as ever (`REFUSED_PAUSE`)."""

THROTTLE_REST = 60.0
"""Seconds the token endpoint is not asked again after 429s that named no ``Retry-After`` (the
retries spent on them): VB365 counts token requests per minute too (5 a minute by default on v6,
``vb365-v6-v8.md`` §3.4), and that reference's rule is to wait at least a minute after repeated
429s (also when they name a wait of 0, or a date already past). A 429 that names its wait is
rested for that long instead, up to `MAX_THROTTLE_REST`."""

MAX_THROTTLE_REST = 3600.0
"""The longest the token endpoint is rested for a ``Retry-After`` (429, or a 5xx naming one):
VB365's longest throttling window is its hourly quota (``Retry-After: 3600``). A server asking
for more (a year, by mistake or malice) is asked again after an hour: a long-running ``serve``
must not stay down for the rest of the year after the server has recovered."""


@attrs.frozen
class _Throttle:
    """The token endpoint's last 429 (or 5xx naming a ``Retry-After`` too long to wait out), and
    until when (the client's clock) it asks not to be called again."""

    error: RateLimitedError | ServerError
    at: float
    until: float

    def held(self, now: float) -> RateLimitedError | ServerError:
        """The throttle raised again, ``now``: no grant is sent."""
        error, left = self.error, self.until - now
        if isinstance(error, RateLimitedError):
            said = f"throttled this client {_seconds(now - self.at)} ago (HTTP 429)"
        else:
            said = f"answered HTTP {error.status_code} {_seconds(now - self.at)} ago, asking for a wait,"
        held = type(error)(
            f"the token endpoint {said} and is not asked again until its rest ends; "
            f"{retry_hint(left, dt.datetime.now(dt.UTC))}",
            status_code=error.status_code,
            error_code=error.error_code,
            method=error.method,
            url=error.url,
            retry_after=left,
        )
        held.unsent = True  # neither the grant nor the request waiting for its token was sent
        return held


UNREADABLE_REST = 30.0
"""Seconds the password is not sent again after the token endpoint answered it with a success
it could not read (no usable ``access_token``, not JSON: a proxy's login page). That is the
server's fault, not a refused password (no `REFUSED_PAUSE`), but it is answered at once, and
every call of a sweep would otherwise send one more grant."""


@attrs.frozen
class _Unreadable:
    """The token endpoint's last unreadable answer to the password, and until when (the client's
    clock) the password is not sent again."""

    error: DecodeError
    at: float
    until: float

    def held(self, now: float) -> DecodeError:
        """The unreadable answer raised again, ``now``: no grant is sent."""
        error = self.error
        return DecodeError(
            f"{error.message} ({_seconds(now - self.at)} ago; the token endpoint is not asked again "
            f"for {_seconds(self.until - now)})",
            path=error.path,
            method=error.method,
            url=error.url,
        )


def _renewal_due(token: Token) -> float:
    """When ``token`` must be renewed at the latest: its renewal, or its expiry if sooner."""
    return min(token.refresh_at, token.expires_at)


def _seconds(value: float) -> str:
    return f"{max(1, round(value))} s"


def _same_grant(token: Token, other: Token) -> bool:
    """Whether ``token`` is ``other`` as granted, maybe without its refresh token once that was
    refused (`TokenManager._spend`): not a new grant, even one that brought the same access token."""
    return token.access_token == other.access_token and token.expires_at == other.expires_at


def _as_kept(token: Token | None, stale: Token) -> Token:
    """What to renew a refused ``stale`` from, ``token`` being the one held now (None or the same
    grant): the token as kept, without its refresh token once that was refused (`TokenManager._spend`),
    never ``stale`` as it was sent. None means that grant was dropped after its refresh token was
    refused, so ``stale``'s is not offered again either."""
    if token is not None:
        return token
    return stale if stale.refresh_token is None else attrs.evolve(stale, refresh_token=None)


class TokenUnavailable(Exception):
    """Carries a token failure out of the auth flow, so the request around it is not retried
    (the token request had its own retries). The fetcher unwraps and raises ``error``."""

    def __init__(self, error: VBOError) -> None:
        super().__init__(str(error))
        self.error = error


TokenFetch = Callable[[str, GrantForm], Awaitable[Any]]
"""Sends a token form to a token URL and returns the parsed JSON answer (raises
`AuthenticationError` on 400/401/403 and an `APIError` of status 404 when the server does not
serve that version)."""


class TokenManager:
    """Holds the client's token pair and renews it, one renewal at a time."""

    def __init__(
        self,
        *,
        username: str,
        password: Secret,
        fetch: TokenFetch,
        clock: Callable[[], float] = time.monotonic,
        server_time: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self._username = username
        self._password = password
        self._fetch = fetch
        self._clock = clock
        self._server_time = server_time
        """The server's current time (a token's ``.expires`` is on its clock); this machine's
        when None."""
        self._token: Token | None = None
        self._retired: tuple[Token, ...] = ()
        """The tokens replaced or forgotten that are still scrubbed, newest last: the last
        `RETIRED_KEPT`, and the others whose access token has not expired (`RETIRED_LIVE` in all)."""
        self._redactor: tuple[Token | None, tuple[Token, ...], Redactor] | None = None
        """The last `redactor` built, with the tokens it was built for."""
        self._endpoint: tuple[str, Dialect] | None = None
        self._lock = asyncio.Lock()
        self._granting: asyncio.Task[Any] | None = None
        """The task holding `_lock` (a grant in flight), if any."""
        self._renewals = Flights("the client was closed while its token was being renewed")
        """The renewal in progress, shared by every caller waiting for it."""
        self._closed = False
        """Set by `forget`: the client is closing, and no token is obtained any more."""
        self._late: list[tuple[Token, Dialect]] = []
        """Tokens granted after `forget` by a grant already in flight, with the dialect of the
        endpoint that granted each: unused, but live on the server until logged out."""
        self._refusal: _Refusal | None = None
        """The last refusal of the password, while it pauses password grants (`REFUSED_PAUSE`)."""
        self._throttle: _Throttle | None = None
        """The token endpoint's last 429 (or 5xx with a ``Retry-After``): no grant is sent before
        its rest ends."""
        self._unreadable: _Unreadable | None = None
        """The token endpoint's last unreadable answer to the password (`UNREADABLE_REST`)."""
        self._refused: Token | None = None
        """The token the server refused (a 401) whose renewal failed: not sent again, the next
        call renews first (and raises that failure again while its rest lasts)."""
        self._sent_refresh: str | None = None
        """The refresh token the last refresh grant sent (or is sending), unless the server
        answered it without a token (it is still live then) or it never got through: it may be
        used up, so the logout at close does not redeem it again (`redeemed_for_logout`)."""
        self._renew_at = 0.0
        """After a failed proactive renewal: no other one is started before this (`RENEWAL_RETRY`)
        while the token is still valid."""
        self.after_grant: Callable[[], Awaitable[None]] | None = None
        """Set by a close made from inside the grant in flight (`granting_here`): awaited by that
        grant as it ends, once it has let go of the lock (the client's logout of the token it
        brought, and the rest of the close)."""
        self.requests = 0
        """Token requests made so far (for diagnostics and tests)."""
        self._asked = False
        """Set once a token was first asked for (`current`, `probe`): no session is resumed after."""
        self.find_endpoint: Callable[[], Awaitable[object]] | None = None
        """Set by an ``"auto"`` client: finds the API version (and with it the token endpoint)
        when a token is asked for before any call of the client did (a link followed first)."""

    def __repr__(self) -> str:
        return f"TokenManager(username={self._username!r}, token={'set' if self._token else 'none'})"

    def use(self, dialect: Dialect, url: str) -> None:
        """Send grants to ``url``, the token endpoint of ``dialect``'s version."""
        self._endpoint = (url, dialect)

    async def probe(self, dialect: Dialect, url: str) -> bool:
        """Ask ``dialect``'s token endpoint at ``url`` for a token with the password grant.

        True when it issued one (it is kept, and later grants go there); False when the server
        answers 404 (it does not serve that version). Anything else raises as a renewal would.
        """
        self._asked = True
        async with self._granted():
            self._check_open()
            try:
                token = await self._password_grant(url, dialect)
            except APIError as exc:
                if exc.status_code != 404:
                    raise
                return False
            self._check_late(token, dialect)  # closed meanwhile: as `_renew`
            self._endpoint = (url, dialect)
            self._retire(self._token)
            self._token = token
            return True

    def resume(self, token: Token) -> None:
        """Hold ``token`` (a saved session's) as though it had been granted: before any grant.
        It is renewed as a granted one is: by the refresh grant once due (or refused), then the
        password grant."""
        self.check_resumable()
        self._token = token

    def check_resumable(self, *, begun: bool = False) -> None:
        """`ClientStateError` unless a session may still be resumed (`resume`): the client is
        open, and no token was asked for yet (nor, ``begun``, its API version looked for)."""
        self._check_open()
        if begun or self._token is not None or self._lock.locked() or self.requests or self._asked:
            raise ClientStateError(
                "a session can only be resumed before the client's first request: resume it right "
                "after creating the client"
            )

    def now(self) -> float:
        """The client's clock (`time.monotonic` unless injected), which tokens' times are on."""
        return self._clock()

    def held(self) -> Token | None:
        """The token held now, whatever its age; None before the first grant, once closing began,
        or while the token the server refused (a 401) waits for its renewal."""
        token = self._token
        return None if token is None or token is self._refused else token

    async def current(self, ahead: float = 0.0) -> Token:
        """A token that is not about to expire, obtaining or refreshing one if needed; the token
        still valid while a failed proactive renewal waits to be tried again (`RENEWAL_RETRY`).
        With ``ahead`` (seconds), one due for renewal within that long is renewed now too."""
        self._asked = True
        if self._endpoint is None and self.find_endpoint is not None:
            await self.find_endpoint()  # outside the lock: the discovery's probes take it
        token = self.ready()
        if token is not None and (
            not ahead or self._clock() + ahead < min(token.refresh_at, token.expires_at)
        ):
            return token
        token = self._token
        return await self._renewed(token, refused=token is not None and token is self._refused)

    def ready(self) -> Token | None:
        """The token `current` returns at once, without asking the server; None when it would ask."""
        if self._endpoint is None and self.find_endpoint is not None:
            return None
        token = self._token
        if token is not None and token is not self._refused:
            now = self._clock()
            if now < token.refresh_at or now < min(self._renew_at, token.expires_at):
                return token
        return None

    async def renew(self, stale: Token) -> Token:
        """A token other than ``stale`` (which the server refused), renewing at most once for any
        number of concurrent callers holding the same stale token."""
        token = self._token
        if token is not None and token is not self._refused and not _same_grant(token, stale):
            return token
        token = await self._renewed(_as_kept(token, stale), refused=True)
        if _same_grant(token, stale):
            # A proactive renewal in flight was joined and failed, keeping the token: the server
            # has refused it since, so it is renewed now (and a failure raised).
            token = await self._renewed(_as_kept(self._token, token), refused=True)
        return token

    async def _renewed(self, old: Token | None, *, refused: bool) -> Token:
        """The token of the renewal in progress, or of one started now to replace ``old``.

        Callers waiting at the same time share its outcome: a failure is not asked again at once
        (a burst of refused password grants can lock the account out, and a throttled token
        endpoint would be hammered)."""
        self._check_open()
        # A renewal finishes even when every caller waiting for it is cancelled (a deadline), and
        # its token serves the next call: the server may have used a refresh token up once it
        # got it (the next call would send it again, be refused, and pay a password grant), and
        # it counts a password grant in its throttle (5 a minute) and opens a session for it
        # whether or not the answer is awaited. Cancelled with its callers, a grant slower than
        # their deadlines was sent by every call and never used: none got a token, and the
        # throttle shut the client out. Closing cancels it.
        return await self._renewals.run(
            "renewal", lambda: self._renew(old, refused=refused), finish_alone=True
        )

    async def _renew(self, old: Token | None, *, refused: bool) -> Token:
        async with self._granted():  # `probe` (discovery) takes it too
            self._check_open()
            if self._endpoint is None:
                raise ClientStateError("no token endpoint: the API version is not known yet")
            url, dialect = self._endpoint
            try:
                token = await self._obtain(old, url, dialect, refused=refused)
            except VBOError as exc:
                kept = None if refused else self._still_valid(old, exc)
                if kept is None:
                    held = self._token
                    if refused and held is not None and old is not None and _same_grant(held, old):
                        self._refused = held  # kept for its refresh token, never sent again
                    raise
                return kept
            # Closing began while the token was asked for (`forget`): it is not used, so no
            # request goes out with a token the logout did not end; it is logged out instead.
            self._check_late(token, dialect)
            self._retire(self._token)
            self._token = token
            return token

    def _still_valid(self, old: Token | None, exc: VBOError) -> Token | None:
        """After the proactive renewal of ``old`` failed with ``exc``: the token to go on with
        until the renewal is tried again (`RENEWAL_RETRY`), or None when the failure is to be
        raised (the token expired, or the credentials were refused: `REFUSED_PAUSE`)."""
        token, now = self._token, self._clock()
        if (
            old is None
            or token is None
            or token.access_token != old.access_token
            or now >= token.expires_at
            or isinstance(exc, AuthenticationError | ClientStateError)
        ):
            return None
        throttle = self._throttle
        self._renew_at = max(now + RENEWAL_RETRY, throttle.until if throttle is not None else now)
        log.warning(
            "renewing the token failed (%s); the current token is used while it is valid (%s more), "
            "and the renewal is tried again in %s",
            exc,
            _seconds(token.expires_at - now),
            _seconds(self._renew_at - now),
        )
        return token

    async def granted_while_closing(self) -> list[tuple[Token, Dialect]]:
        """After `forget`: wait for the grant in flight, if any, then the tokens granted since
        `forget` (each with the dialect of its endpoint), for the client to log out; each is
        returned once. Called from inside the grant in flight (the client closed by its
        transport), it does not wait: that grant cannot end before it."""
        if not self.granting_here():
            async with self._lock:
                pass
        late, self._late = self._late, []
        return late

    def granting_here(self) -> bool:
        """Whether the current task is a grant's, in flight (the client is closed from inside it,
        by its transport): that grant cannot end before whatever the caller awaits."""
        return self._granting is not None and self._granting is asyncio.current_task()

    @contextlib.asynccontextmanager
    async def _granted(self) -> AsyncIterator[None]:
        """`_lock`, held by a grant, and which task holds it (`granted_while_closing`); once let
        go of, `after_grant` if a close from inside the grant set it."""
        try:
            async with self._lock:
                self._granting = asyncio.current_task()
                try:
                    yield
                finally:
                    self._granting = None
        finally:
            finish, self.after_grant = self.after_grant, None
            if finish is not None:
                await finish()

    async def aclose(self) -> None:
        """Cancel the renewal in progress and wait until it has stopped (the client is closing:
        its callers end with `ClientStateError`)."""
        await self._renewals.cancel_all()

    def _retire(self, token: Token | None) -> None:
        if token is not None:
            retired, now = (*self._retired[1 - RETIRED_LIVE :], token), self._clock()
            recent = len(retired) - RETIRED_KEPT
            self._retired = tuple(
                old for index, old in enumerate(retired) if index >= recent or now < old.expires_at
            )

    def redactor(self) -> Redactor:
        """A `Redactor` for the secrets known now: the password, the current tokens and those of
        the last `RETIRED_KEPT` tokens replaced (an answer to a request sent with one may quote
        it after the renewal). Built once per token change (building one takes about a
        millisecond, and a page of refused items asks for it once per item)."""
        current, retired = self._token, self._retired
        kept = self._redactor
        if kept is not None and kept[0] is current and kept[1] is retired:
            return kept[2]
        tokens = (*retired, current) if current is not None else retired
        redactor = Redactor(
            self._password.reveal(),
            *(token.access_token for token in tokens),
            *(token.refresh_token for token in tokens),
        )
        self._redactor = (current, retired, redactor)
        return redactor

    def expired(self, token: Token) -> bool:
        """Whether ``token``'s access token has expired on the client's clock."""
        return self._clock() >= token.expires_at

    async def redeemed_for_logout(self, token: Token, url: str, dialect: Dialect) -> Token | None:
        """After `forget`: a new pair for ``token``, whose access token expired (or was refused by
        the logout), from its refresh token (never the password), only to be logged out: a
        logout needs a valid bearer, and ends the refresh token issued with it, which otherwise
        stays live on the server for its whole lifetime. A renewal in flight is waited for
        first: when it sent that refresh token, it is not sent again (a refresh grant never is:
        the server may have used it up), and the pair the renewal brings is logged out instead
        (`granted_while_closing`). None, said at debug level, when ``token`` has no refresh token
        (nothing live is left), a renewal sent it, or the grant fails."""
        if token.refresh_token is None:
            log.debug("the access token expired and there is no refresh token: nothing left to log out")
            return None
        if not self.granting_here():
            async with self._lock:  # a renewal in flight may be sending this very refresh token
                pass
        if token.refresh_token == self._sent_refresh:
            # Never sent twice (the server rotates them: one of the two would be refused, and
            # counted by its throttle); the pair that renewal brought is logged out instead
            # (`granted_while_closing`).
            log.debug("the refresh token went to the renewal in flight: the pair it brought is logged out")
            return None
        log.debug("the access token expired or was refused: its refresh token is redeemed to log out")
        form = GrantForm(refresh_form(token.refresh_token, dialect.token_form))
        try:
            fresh = await self._request(url, form)
        except VBOError as exc:
            log.debug(
                "the refresh token of the expired access token could not be redeemed to log out: %s", exc
            )
            return None
        self._retire(fresh)  # scrubbed from messages, as every token the client held
        return fresh

    def forget(self) -> Token | None:
        """Drop the token (the client is closing) and return it, to log out with. From now on no
        token is obtained: a request made or renewing while the client logs out would get one
        that nothing logs out."""
        self._closed = True
        token, self._token = self._token, None
        self._retire(token)
        return token

    def _check_open(self) -> None:
        if self._closed:
            raise ClientStateError("the client is closed")

    def _check_late(self, token: Token, dialect: Dialect) -> None:
        """`_check_open` after a grant: a token granted once closing began is kept for
        `granted_while_closing` (and scrubbed from messages), not used."""
        if self._closed:
            self._late.append((token, dialect))
            self._retire(token)
            self._check_open()

    async def _obtain(self, old: Token | None, url: str, dialect: Dialect, *, refused: bool) -> Token:
        """A new token for ``old`` (``refused``: the server refused it; else it is due for
        renewal): the refresh grant, then the password grant."""
        extras = dialect.token_form
        if old is not None and old.refresh_token is not None:
            self._sent_refresh = old.refresh_token
            try:
                renewed = await self._request(url, GrantForm(refresh_form(old.refresh_token, extras)))
            except APIError as exc:
                self._sent_refresh = None  # answered without a token: the refresh token still lives
                if isinstance(exc, RateLimitedError) or not (refused or self._clock() >= old.expires_at):
                    raise  # throttled, or a proactive renewal: the token serves, the refresh comes again
                # The token is needed now (refused, or expired), and the refresh was answered with
                # another status once its retries were spent (a 500 or a 404 some servers answer a
                # refresh token they no longer know with): raised, the same refresh token was sent
                # on every later call and the password never, the client down for good while the
                # server was up. As real clients do on any answer to a refresh but 200, the
                # password grant is made (its own failure is raised, and spends the token).
                self._check_open()
                log.debug("the refresh grant failed (HTTP %s); using the password grant", exc.status_code)
            except (AuthenticationError, DecodeError, TransportError) as exc:
                if isinstance(exc, TransportError) and exc.unsent:
                    self._sent_refresh = None
                    raise  # nothing got through: neither would the password grant
                # Closing began meanwhile (its logout may be why it was refused): the password
                # is not sent for a token nothing would use.
                self._check_open()
                # An answer lost on its way back: the server may have used the refresh token up
                # (it rotates them), so it is not sent again (the sender does not resend it).
                log.debug("refresh token refused, its answer unreadable or lost; using the password grant")
            else:
                if renewed.refresh_token == old.refresh_token:
                    # A server that does not rotate refresh tokens gave the same one back: it was
                    # not used up, and the logout at close may redeem it.
                    self._sent_refresh = None
                return renewed
        try:
            return await self._password_grant(url, dialect)
        except VBOError:
            if old is not None and self._token is old:
                self._spend(old, refused=refused)
            raise

    def _spend(self, old: Token, *, refused: bool) -> None:
        """``old`` could not be renewed (its refresh token, if any, refused, and the password grant
        failed; no token replaced it): its refresh token is not offered again, nor ``old`` once
        the server refused it too or it expired, so while the password is paused calls fail
        without a request. A token still valid keeps serving (and is logged out)."""
        spent = refused or self._clock() >= old.expires_at
        if spent or old.refresh_token is not None:
            self._retire(old)  # its tokens stay scrubbed from messages
            self._token = None if spent else attrs.evolve(old, refresh_token=None)

    async def _password_grant(self, url: str, dialect: Dialect) -> Token:
        """A token for the password, unless the server refused it lately (`REFUSED_PAUSE`) or
        answered it unreadably (`UNREADABLE_REST`): then that again, and nothing is sent."""
        refusal, unreadable = self._refusal, self._unreadable
        if refusal is not None and self._clock() < refusal.retry_at:
            raise refusal.held(self._clock())
        if unreadable is not None and self._clock() < unreadable.until:
            raise unreadable.held(self._clock())
        form = GrantForm(password_form(self._username, self._password.reveal(), dialect.token_form))
        try:
            token = await self._request(url, form)
        except AuthenticationError as exc:
            now = self._clock()
            self._refusal = refused = _Refusal.after(refusal, exc, now)
            log.debug(
                "the password was refused; not sent again for %s", _seconds(refused.retry_at - refused.at)
            )
            raise
        except DecodeError as exc:
            now = self._clock()
            self._unreadable = _Unreadable(error=exc, at=now, until=now + UNREADABLE_REST)
            raise
        self._refusal = self._unreadable = None
        return token

    async def _request(self, url: str, form: GrantForm) -> Token:
        """One grant, unless the token endpoint's last 429 asked for a rest that is not over (its
        ``Retry-After``, or `THROTTLE_REST`): then that 429 again, and nothing is sent (each call
        of a sweep would be one more request into the throttle, which counts them)."""
        throttle = self._throttle
        if throttle is not None and self._clock() < throttle.until:
            raise throttle.held(self._clock())
        self.requests += 1
        try:
            data = await self._fetch(url, form)
        except (RateLimitedError, ServerError) as exc:
            # A 429, or a 5xx naming its wait (maintenance) given up because it is longer than the
            # policy allows: each call of a sweep would send one more grant before it is over.
            rest = exc.retry_after
            if isinstance(exc, RateLimitedError) and not (rest is not None and rest > 0):
                # Repeated 429s naming no wait, or one of now (0, or a date past on this clock).
                rest = THROTTLE_REST
            if rest is not None and rest > 0:
                now = self._clock()
                self._throttle = _Throttle(error=exc, at=now, until=now + min(rest, MAX_THROTTLE_REST))
            raise
        self._throttle = None
        try:
            wall_now = dt.datetime.now(dt.UTC) if self._server_time is None else self._server_time()
            return parse_token_response(data, now=self._clock(), wall_now=wall_now)
        except DecodeError as exc:
            exc.method, exc.url = "POST", url
            error = exc
        # Without the frames holding the answer (this one's too): an error reporter shows their
        # variables, and the answer may echo the password or hold tokens that are never used.
        del data
        raise error.with_traceback(None)
