"""`VBOClient`: the public face that ties the API root, dialect, auth, fetcher and decoder together.

The client itself does no I/O of its own: entry-point paths come from the dialect of the API
version it speaks, everything on the wire goes through its `Fetcher`, tokens through its
`TokenManager`, JSON through its `Decoder`. With ``api_version="auto"`` the version is found once,
by asking the token endpoints of v8, v7, v6 and v1 in turn: the first grant that succeeds both
chooses the version and gives the token the first request needs.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
from types import TracebackType
from typing import Any, Literal, Self, TypeVar

import attrs
import httpx

from ._auth import Secret, TokenManager, VBOAuth
from ._decode import parse_json
from ._dialects import DIALECTS, NEWEST_FIRST, Dialect, JobAction
from ._exceptions import APIError, ClientStateError, ConfigError
from ._fetch import Fetcher, RetryPolicy
from ._links import Link
from ._models import RESOURCES, BackupRepository, Job, JobSession, Organization, Proxy, ServiceInstance
from ._urls import ApiRoot

__all__ = ["API_VERSIONS", "DEFAULT_MAX_RESPONSE_BYTES", "JobAction", "VBOClient", "tls_context"]

log = logging.getLogger("vbo_async")
T = TypeVar("T")

DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024
API_VERSIONS: tuple[str, ...] = ("auto", *(d.version for d in NEWEST_FIRST))
"""What ``api_version`` accepts: ``"auto"`` and every version vbo-async speaks, newest first."""
LOGOUT_TIMEOUT = 3.0
"""Seconds `VBOClient.aclose` gives a v7+ server to answer the logout before closing anyway."""


class VBOClient:
    """An async client for one VB365/VBO server, used as ``async with VBOClient(...) as vbo``.

    ``api_version`` is ``"auto"`` (the newest of v8, v7, v6, v1 the server serves, found with
    the first request at no extra cost on a v8 server) or one of those versions. ``verify`` is
    True (system CAs), a path to a CA bundle, an `ssl.SSLContext`, or False to turn verification
    off (logged as a warning). ``max_concurrency`` bounds requests in flight on this client
    whatever the transport; ``timeout`` bounds each attempt as a whole. ``transport`` is any
    ``httpx.AsyncBaseTransport`` (MockTransport, ASGITransport, ...). One connection pool serves
    the client's whole life; token refreshes never disturb requests in flight.

    ```python
    async with VBOClient("https://vb365.example.com:4443", username=user, password=pw) as vbo:
        for job in await vbo.organization_jobs(org_id):
            repo = await job.links.repository
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
    ) -> None:
        if not isinstance(username, str) or not username:
            raise ConfigError("username must be a non-empty string")
        if not isinstance(password, str):
            raise ConfigError("password must be a string")
        if not isinstance(api_version, str) or api_version not in API_VERSIONS:
            shown = api_version if isinstance(api_version, str) else type(api_version).__name__
            raise ConfigError(f"api_version must be one of {', '.join(API_VERSIONS)}; got {shown!r}")
        if not _is_int(max_concurrency) or max_concurrency < 1:
            raise ConfigError(f"max_concurrency must be a positive integer, got {max_concurrency!r}")
        if timeout is not None and not (_is_number(timeout) and timeout > 0):
            raise ConfigError(f"timeout must be a positive number of seconds or None, got {timeout!r}")
        if not _is_int(max_response_bytes) or max_response_bytes < 1:
            raise ConfigError("max_response_bytes must be a positive integer")
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise ConfigError(f"retry must be a RetryPolicy or None, got {type(retry).__name__}")
        if transport is not None and not isinstance(transport, httpx.AsyncBaseTransport):
            raise ConfigError(
                f"transport must be an httpx.AsyncBaseTransport, got {type(transport).__name__}"
            )
        self._root = ApiRoot(base_url, DIALECTS)
        self._username = username
        http = httpx.AsyncClient(
            transport=transport,
            verify=_ssl_context(verify),
            timeout=httpx.Timeout(timeout),
            # One connection more than requests in flight, for the token request: a request that
            # got a 401 keeps its connection while its auth flow renews the token, so with every
            # slot on a 401 the renewal would otherwise wait for a connection until the timeout.
            limits=httpx.Limits(
                max_connections=max_concurrency + 1, max_keepalive_connections=max_concurrency + 1
            ),
            follow_redirects=False,
            trust_env=False,
        )
        self._fetcher = Fetcher(
            api_root=self._root,
            http=http,
            auth=None,
            max_concurrency=max_concurrency,
            timeout=timeout,
            max_response_bytes=max_response_bytes,
            retry=retry or RetryPolicy(),
        )
        self._tokens = TokenManager(
            username=username, password=Secret(password), fetch=self._fetcher.request_token
        )
        self._fetcher.auth = VBOAuth(self._tokens)
        self._dialect: Dialect | None = None
        self._discovery: asyncio.Lock | None = None
        if api_version != "auto":
            self._speak(DIALECTS[api_version])

    def __repr__(self) -> str:
        state = "closed" if self._fetcher.closed else "open"
        where = self.api_root or f"{self._root.base_url} (API version not known yet)"
        return f"<VBOClient {where} user={self._username!r} {state}>"

    @property
    def api_version(self) -> str | None:
        """The API version the client speaks (``"v8"``); None only before an ``"auto"`` client's
        first request has found it."""
        return self._dialect.version if self._dialect is not None else None

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
        logged), cancel the shared GETs in flight, forget the token and close the connection
        pool. Requests still in flight or waiting for a slot, in any task, end with
        `ClientStateError`, as does every later call; closing twice is harmless. Closing from
        another event loop than the client's raises `ClientStateError`."""
        if self._fetcher.closed:
            return
        self._fetcher.check_usable()
        token = self._tokens.forget()
        dialect = self._dialect
        try:
            if token is not None and dialect is not None and dialect.logout is not None:
                url = self._root.url(f"/{dialect.version}/{dialect.logout.render()}")
                try:
                    async with asyncio.timeout(LOGOUT_TIMEOUT):
                        await self._fetcher.logout(url, token.access_token)
                except TimeoutError:
                    log.debug(
                        "no answer to the logout at %s within %s s; closing anyway", url, LOGOUT_TIMEOUT
                    )
        finally:
            # Also when the logout was cancelled (a shutdown with a deadline) or failed unexpectedly:
            # a client that began closing never goes on sending with a fresh token.
            await self._fetcher.aclose()

    # --- the API version ----------------------------------------------------------------------------

    def _speak(self, dialect: Dialect) -> None:
        self._dialect = dialect
        self._tokens.use(dialect, self._root.url(dialect.path("token")))

    async def dialect(self) -> Dialect:
        """The dialect of the API version the client speaks, found first if ``"auto"``."""
        dialect = self._dialect
        if dialect is not None:
            return dialect
        self._fetcher.check_usable()
        if self._discovery is None:
            self._discovery = asyncio.Lock()
        async with self._discovery:
            if self._dialect is None:
                self._speak(await self._discover())
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

    async def _url(self, operation: str, **ids: str) -> str:
        dialect = await self.dialect()
        return self._root.url(dialect.path(operation, **ids))

    # --- entry points -------------------------------------------------------------------------------

    async def organizations(self) -> list[Organization]:
        """``GET /Organizations``: every organization (all pages followed)."""
        return await self._fetcher.fetch_all(await self._url("organizations"), Organization)

    async def organization(self, organization_id: str) -> Organization:
        """``GET /Organizations/{id}``."""
        url = await self._url("organization", organization=_id_arg(organization_id, "organization_id"))
        return await self._get(url, Organization)

    async def organization_jobs(self, organization: str | Organization) -> list[Job]:
        """The jobs of one organization, every page: ``GET /Organizations/{id}/Jobs`` up to v7,
        ``GET /v8/Jobs?organizationId={id}`` on v8 (which removed the former)."""
        org = _id_arg(_id_of(organization), "organization")
        return await self._fetcher.fetch_all(await self._url("organization_jobs", organization=org), Job)

    async def jobs(self) -> list[Job]:
        """``GET /Jobs``: every job the account can see (all pages)."""
        return await self._fetcher.fetch_all(await self._url("jobs"), Job)

    async def job(self, job_id: str) -> Job:
        """``GET /Jobs/{id}``."""
        return await self._get(await self._url("job", job=_id_arg(job_id, "job_id")), Job)

    async def job_session(self, session_id: str) -> JobSession:
        """``GET /JobSessions/{id}``."""
        url = await self._url("session", session=_id_arg(session_id, "session_id"))
        return await self._get(url, JobSession)

    async def job_sessions(self, job: str | Job, *, limit: int | None = 5) -> list[JobSession]:
        """The newest ``limit`` sessions of one job, newest first (``limit=None``: all of them).

        v7/v8 ask ``/JobSessions?jobId=&limit=`` (the jobs' own ``jobsessions`` links are dead
        there); v1/v6 ``/Jobs/{id}/JobSessions`` (v1 cannot limit: every session is read and the
        newest kept). Every session's ``job_id`` is the job's.
        """
        if limit is not None and (not _is_int(limit) or limit < 1):
            raise ConfigError(f"limit must be a positive integer or None, got {limit!r}")
        job_id = _id_arg(_id_of(job), "job")
        url = await self._url("job_sessions", job=job_id)
        dialect = await self.dialect()
        if limit is not None and dialect.page_limit is not None:
            url = f"{url}{'&' if '?' in url else '?'}limit={min(limit, dialect.page_limit)}"
        sessions: list[JobSession] = []
        async for session in self._fetcher.iterate(url, JobSession):
            sessions.append(session if session.job_id is not None else attrs.evolve(session, job_id=job_id))
            if limit is not None and dialect.page_limit is not None and len(sessions) >= limit:
                break
        sessions.sort(key=_newest_first)
        return sessions if limit is None else sessions[:limit]

    async def backup_repositories(self) -> list[BackupRepository]:
        """``GET /BackupRepositories``."""
        return await self._fetcher.fetch_all(await self._url("backup_repositories"), BackupRepository)

    async def proxies(self) -> list[Proxy]:
        """``GET /Proxies``."""
        return await self._fetcher.fetch_all(await self._url("proxies"), Proxy)

    async def service_instance(self) -> ServiceInstance:
        """``GET /ServiceInstance`` (v6+): the installation id and build (``"8.5.0.1014"``).
        `NotSupportedError` on v1."""
        return await self._get(await self._url("service_instance"), ServiceInstance)

    async def follow(self, link: Link[T]) -> T:
        """Follow ``link`` through this client (the same as ``await link`` for links this client
        decoded; also works for a link decoded by another client of the same server, or one
        that was pickled)."""
        if not isinstance(link, Link):
            raise ConfigError(f"follow() takes a Link, got {type(link).__name__}")
        return await link.bound_to(self._fetcher)

    def to_wire(self, model: Any, *, api_version: str | None = None) -> Any:
        """The wire JSON of a model (or a list of them) in the client's API version (or
        ``api_version``): wire names, ISO timestamps, ``_links`` as the server sent them.

        ``from_wire(to_wire(model), type(model)) == model``; use it to cache or log resources.
        """
        return self._fetcher.decoder.unstructure(model, self._wire_dialect(api_version))

    def from_wire(self, data: Any, cls: type[T], *, api_version: str | None = None) -> T:
        """Decode one resource's wire JSON (a dict) of the client's API version (or
        ``api_version``) into ``cls``; its links follow via this client. Raises `DecodeError`
        like an answer from the server would."""
        if not (isinstance(cls, type) and cls in RESOURCES):
            raise ConfigError(f"from_wire() decodes vbo-async models, not {cls!r}")
        return self._fetcher.decoder.one(data, cls, self._wire_dialect(api_version))

    def _wire_dialect(self, api_version: str | None) -> Dialect:
        if api_version is not None:
            if api_version not in DIALECTS:
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
        ``{"start": null}``. Returns the new session on v8 (which answers with it), else None."""
        if not isinstance(full, bool):
            raise ConfigError(f"full must be True or False, got {full!r}")
        body = await self._action(job, "start", full=full)
        dialect = await self.dialect()
        if not dialect.start_returns_session or not body.strip():
            return None
        session = self._fetcher.decoder.one(parse_json(body, method="POST"), JobSession, dialect)
        if session.job_id is None:
            session = attrs.evolve(session, job_id=_id_of(job))
        return session

    async def stop_job(self, job: str | Job) -> None:
        """Stop a running job (v6+ ``/stop``, v1 ``{"stop": null}``)."""
        await self._action(job, "stop")

    async def enable_job(self, job: str | Job) -> None:
        """Enable a job's schedule (v6+ ``/enable``, v1 ``{"enable": null}``)."""
        await self._action(job, "enable")

    async def disable_job(self, job: str | Job) -> None:
        """Disable a job's schedule (v6+ ``/disable``, v1 ``{"disable": null}``)."""
        await self._action(job, "disable")

    async def _action(self, job: str | Job, action: JobAction, *, full: bool = False) -> bytes:
        job_id = _id_arg(_id_of(job), "job")
        dialect = await self.dialect()
        path, body = dialect.action(job_id, action, full=full)
        url = self._root.url(path)
        answer = await self._fetcher.send("POST", url, json=body, retry=False)
        content = self._fetcher.expect_success(answer, "POST", url)
        log.info("job action %s sent to %s", action, url)
        return content

    async def _get(self, url: str, cls: type[T]) -> T:
        return await self._fetcher.fetch_one(url, cls)  # type: ignore[no-any-return]


def _newest_first(session: JobSession) -> tuple[bool, float]:
    when = session.creation_time
    return (when is None, -when.timestamp() if when is not None else 0.0)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _id_of(value: Any) -> str:
    if isinstance(value, str):
        return value
    identifier = getattr(value, "id", None)
    if isinstance(identifier, str):
        return identifier
    raise ConfigError(f"expected an id string or a model with an id, got {type(value).__name__}")


def _id_arg(identifier: object, name: str) -> str:
    """An id to put into a path or query; refuses what would change the request's meaning."""
    if not isinstance(identifier, str) or not identifier.strip():
        raise ConfigError(f"{name} must be a non-empty string")
    if identifier in (".", "..") or any(c in identifier for c in "/\\?#") or identifier != identifier.strip():
        raise ConfigError(f"{name} is not a usable id (it contains a path or query character or spaces)")
    try:
        identifier.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError(f"{name} cannot be encoded as UTF-8 (it holds a lone surrogate)") from None
    return identifier


def _ssl_context(verify: bool | str | os.PathLike[str] | ssl.SSLContext) -> ssl.SSLContext | bool:
    if isinstance(verify, ssl.SSLContext):
        return verify
    if verify is False:
        log.warning("TLS certificate verification is OFF (verify=False): use only for testing")
        return False
    if verify is True or isinstance(verify, str | os.PathLike):
        return tls_context(verify)
    raise ConfigError(f"verify must be a bool, a CA bundle path or an ssl.SSLContext, got {verify!r}")


def tls_context(verify: Literal[True] | str | os.PathLike[str]) -> ssl.SSLContext:
    """A verifying TLS context: the system's CA certificates for ``True``, else those of the CA
    bundle file or directory at ``verify`` (`ConfigError` when it cannot be loaded). Loading takes
    about 25 ms: build one and share it between clients."""
    if verify is True:
        return ssl.create_default_context()
    path = os.fspath(verify)
    try:
        if os.path.isdir(path):
            return ssl.create_default_context(capath=path)
        return ssl.create_default_context(cafile=path)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load the CA bundle {path!r}: {exc}") from None
