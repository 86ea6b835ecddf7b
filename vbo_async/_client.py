"""`VBOClient`: the public face that ties the API root, auth, fetcher and decoder together.

The client itself does no I/O of its own: entry-point paths live here, everything on the wire
goes through its `Fetcher`, tokens through its `TokenManager`, JSON through its `Decoder`.
"""

from __future__ import annotations

import logging
import os
import ssl
from types import TracebackType
from typing import Any, Literal, Self, TypeVar
from urllib.parse import quote

import httpx

from ._auth import Secret, TokenManager, VBOAuth
from ._exceptions import ConfigError
from ._fetch import Fetcher, RetryPolicy
from ._links import Link
from ._models import BackupRepository, Job, JobSession, Organization, Proxy, SelectedMailbox
from ._urls import ApiRoot

__all__ = ["DEFAULT_MAX_RESPONSE_BYTES", "JobAction", "VBOClient", "tls_context"]

log = logging.getLogger("vbo_async")
T = TypeVar("T")

DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024
_MODELS = frozenset({BackupRepository, Job, JobSession, Organization, Proxy, SelectedMailbox})
JobAction = Literal["start", "stop", "enable", "disable"]


class VBOClient:
    """An async client for one VBO server, used as ``async with VBOClient(...) as vbo``.

    ``verify`` is True (system CAs), a path to a CA bundle, an `ssl.SSLContext`, or False to
    turn verification off (logged as a warning). ``max_concurrency`` bounds requests in flight on
    this client whatever the transport; ``timeout`` bounds each attempt as a whole. ``transport``
    is any ``httpx.AsyncBaseTransport`` (MockTransport, ASGITransport, ...). One connection pool
    serves the client's whole life; token refreshes never disturb requests in flight.

    ```python
    async with VBOClient("https://vbo01:4443", username="LAB\\\\svc", password=secret) as vbo:
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
        api_version: str = "v1",
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
        self._root = ApiRoot(base_url, api_version)
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

    def __repr__(self) -> str:
        state = "closed" if self._fetcher.closed else "open"
        return f"<VBOClient {self._root.root} user={self._username!r} {state}>"

    @property
    def api_root(self) -> str:
        """``{base_url}/{api_version}``: every request goes below it."""
        return self._root.root

    @property
    def token_requests(self) -> int:
        """How many token requests this client has made (password and refresh grants)."""
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
        """Close the client: cancel the shared GETs in flight, forget the token and close the
        connection pool. Requests still in flight or waiting for a slot, in any task, end with
        `ClientStateError`, as does every later call; closing twice is harmless."""
        self._tokens.forget()
        await self._fetcher.aclose()

    # --- entry points -----------------------------------------------------------------------------

    async def organizations(self) -> list[Organization]:
        """``GET /Organizations``: every organization (all pages followed)."""
        return await self._fetcher.fetch_all(self._root.url("Organizations"), Organization)

    async def organization(self, organization_id: str) -> Organization:
        """``GET /Organizations/{id}``."""
        return await self._get(f"Organizations/{_segment(organization_id)}", Organization)

    async def organization_jobs(self, organization: str | Organization) -> list[Job]:
        """``GET /Organizations/{id}/Jobs``: the jobs of one organization."""
        path = f"Organizations/{_segment(_id_of(organization))}/Jobs"
        return await self._fetcher.fetch_all(self._root.url(path), Job)

    async def jobs(self) -> list[Job]:
        """``GET /Jobs``: every job the account can see."""
        return await self._fetcher.fetch_all(self._root.url("Jobs"), Job)

    async def job(self, job_id: str) -> Job:
        """``GET /Jobs/{id}``."""
        return await self._get(f"Jobs/{_segment(job_id)}", Job)

    async def job_session(self, session_id: str) -> JobSession:
        """``GET /JobSessions/{id}``."""
        return await self._get(f"JobSessions/{_segment(session_id)}", JobSession)

    async def backup_repositories(self) -> list[BackupRepository]:
        """``GET /BackupRepositories``."""
        return await self._fetcher.fetch_all(self._root.url("BackupRepositories"), BackupRepository)

    async def proxies(self) -> list[Proxy]:
        """``GET /Proxies``."""
        return await self._fetcher.fetch_all(self._root.url("Proxies"), Proxy)

    async def follow(self, link: Link[T]) -> T:
        """Follow ``link`` through this client (the same as ``await link`` for links this client
        decoded; also works for a link decoded by another client of the same server)."""
        if not isinstance(link, Link):
            raise ConfigError(f"follow() takes a Link, got {type(link).__name__}")
        rebound = type(link)(link.href, link.relation, self._fetcher, link.target)
        return await rebound

    def to_wire(self, model: Any) -> Any:
        """The v1 wire JSON of a model (or a list of them): wire names, ISO timestamps, ``_links``.

        ``from_wire(to_wire(model), type(model)) == model``; use it to cache or log resources.
        """
        return self._fetcher.decoder.unstructure(model)

    def from_wire(self, data: Any, cls: type[T]) -> T:
        """Decode one resource's wire JSON (a dict) into ``cls``; its links follow via this client.
        Raises `DecodeError` like an answer from the server would."""
        if isinstance(cls, type) and cls in _MODELS:
            return self._fetcher.decoder.one(data, cls)
        raise ConfigError(f"from_wire() decodes vbo-async models, not {cls!r}")

    # --- job actions (sent exactly once, never retried) -------------------------------------------

    async def start_job(self, job: str | Job) -> None:
        """Start a job now (``POST /Jobs/{id}/Action`` with ``{"start": null}``)."""
        await self._action(job, "start")

    async def stop_job(self, job: str | Job) -> None:
        """Stop a running job (``{"stop": null}``)."""
        await self._action(job, "stop")

    async def enable_job(self, job: str | Job) -> None:
        """Enable a job's schedule (``{"enable": null}``)."""
        await self._action(job, "enable")

    async def disable_job(self, job: str | Job) -> None:
        """Disable a job's schedule (``{"disable": null}``)."""
        await self._action(job, "disable")

    async def _action(self, job: str | Job, action: JobAction) -> None:
        url = self._root.url(f"Jobs/{_segment(_id_of(job))}/Action")
        answer = await self._fetcher.send("POST", url, json={action: None}, retry=False)
        self._fetcher.expect_success(answer, "POST", url)
        log.info("job action %s sent to %s", action, url)

    async def _get(self, path: str, cls: type[T]) -> T:
        return await self._fetcher.fetch_one(self._root.url(path), cls)  # type: ignore[no-any-return]


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


def _segment(identifier: str) -> str:
    """One URL path segment for an id; refuses ids that would change the path."""
    if not isinstance(identifier, str) or not identifier.strip():
        raise ConfigError(f"an id must be a non-empty string, got {identifier!r}")
    if identifier in (".", ".."):
        raise ConfigError(f"{identifier!r} is not an id")
    return quote(identifier, safe="")


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
