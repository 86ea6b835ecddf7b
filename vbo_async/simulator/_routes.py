"""The v1 endpoints and what every version shares (token endpoint, error answers), and the route table."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol
from urllib.parse import parse_qsl

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ._errors import SimulatedError
from ._paging import page_object, parse_window
from ._responses import empty_response, error_response, json_response
from ._simulator import JOB_ACTIONS, Simulator

__all__ = [
    "ORIGINAL_PATH",
    "handle_http_exception",
    "handle_simulated_error",
    "simulator_of",
    "token_endpoint",
    "v1_routes",
]

ORIGINAL_PATH = "vbo_simulator.original_path"
"""Scope key under which the request path is kept before it is lower-cased for routing."""

Handler = Callable[[Request, Simulator], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]


def simulator_of(request: Request) -> Simulator:
    """The simulator the app was created with (``app.state.simulator``)."""
    simulator = request.app.state.simulator
    if not isinstance(simulator, Simulator):
        raise TypeError("app.state.simulator is not a Simulator")
    return simulator


def _authorized(handler: Handler) -> Endpoint:
    """Wrap a handler so it runs only with a valid bearer token."""

    async def endpoint(request: Request) -> Response:
        simulator = simulator_of(request)
        simulator.authenticate(request.headers.get("authorization"))
        return await handler(request, simulator)

    endpoint.__name__ = handler.__name__
    return endpoint


class PageSource(Protocol):
    """A ``Simulator.*_page`` method: one slice of a collection and its total length."""

    def __call__(
        self, item_id: str, /, *, offset: int = 0, limit: int | None = None
    ) -> tuple[list[dict[str, Any]], int]: ...


def _paged(request: Request, simulator: Simulator, source: PageSource, item_id: str) -> Response:
    """The page of `source` that ``?offset=&limit=`` asks for, linking back to the original path."""
    offset, limit = parse_window(request.query_params, simulator.config.page_size)
    results, total = source(item_id, offset=offset, limit=limit)
    path = request.scope.get(ORIGINAL_PATH, request.url.path)
    url = f"{simulator.config.origin}{path}"
    return json_response(page_object(results, total, offset=offset, limit=limit, url=url))


def _oauth_error(error: str, description: str) -> SimulatedError:
    return SimulatedError(400, description, body={"error": error, "error_description": description})


def _form_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


async def _token_form(request: Request) -> dict[str, str]:
    body = await request.body()
    if "json" in request.headers.get("content-type", "").lower():
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise _oauth_error("invalid_request", "The request body is not valid JSON.") from None
        if not isinstance(data, dict):
            raise _oauth_error("invalid_request", "The request body must be a JSON object.")
        return {str(key): _form_value(value) for key, value in data.items() if value is not None}
    try:
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    except (UnicodeDecodeError, ValueError):
        raise _oauth_error("invalid_request", "The request body is not a valid form.") from None


def token_endpoint(version: str) -> Endpoint:
    """``POST /vN/Token``: the password and refresh_token grants (a form; a JSON object too)."""

    async def token(request: Request) -> Response:
        simulator = simulator_of(request)
        form = await _token_form(request)
        body = simulator.token(form, version=version)
        return json_response(body, headers={"Cache-Control": "no-cache", "Pragma": "no-cache"})

    return token


async def organizations(request: Request, simulator: Simulator) -> Response:
    """``GET /v1/Organizations``."""
    return json_response(simulator.organizations_wire())


async def organization(request: Request, simulator: Simulator) -> Response:
    """``GET /v1/Organizations/{id}``."""
    return json_response(simulator.organization_wire(request.path_params["org_id"]))


async def organization_jobs(request: Request, simulator: Simulator) -> Response:
    """``GET /v1/Organizations/{id}/Jobs``."""
    return json_response(simulator.jobs_wire(request.path_params["org_id"]))


async def organization_mailboxes(request: Request, simulator: Simulator) -> Response:
    """``GET /v1/Organizations/{id}/Mailboxes`` (paged)."""
    return _paged(request, simulator, simulator.mailboxes_page, request.path_params["org_id"])


async def organization_mailbox(request: Request, simulator: Simulator) -> Response:
    """``GET /v1/Organizations/{orgId}/Mailboxes/{id}``."""
    params = request.path_params
    return json_response(simulator.mailbox_wire(params["org_id"], params["mailbox_id"]))


async def jobs(request: Request, simulator: Simulator) -> Response:
    """``GET /v1/Jobs``."""
    return json_response(simulator.jobs_wire())


async def job(request: Request, simulator: Simulator) -> Response:
    """``GET /v1/Jobs/{id}``."""
    return json_response(simulator.job_wire(request.path_params["job_id"]))


def _action_of(body: bytes) -> str:
    try:
        data: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise SimulatedError(400, "The request is invalid: the body is not valid JSON.") from None
    if not isinstance(data, dict) or len(data) != 1:
        raise SimulatedError(400, "The request is invalid: expected exactly one job action.")
    ((key, value),) = data.items()
    action = str(key).lower()
    if action not in JOB_ACTIONS or value is not None:
        raise SimulatedError(400, f"The request is invalid: unknown job action '{key}'.")
    return action


async def job_action(request: Request, simulator: Simulator) -> Response:
    """``POST /v1/Jobs/{id}/Action`` with ``{"start": null}`` and friends → 200, empty body."""
    action = _action_of(await request.body())
    simulator.job_action(request.path_params["job_id"], action)
    return empty_response()


async def job_sessions(request: Request, simulator: Simulator) -> Response:
    """``GET /v1/Jobs/{id}/JobSessions`` (paged)."""
    return _paged(request, simulator, simulator.job_sessions_page, request.path_params["job_id"])


async def selected_mailboxes(request: Request, simulator: Simulator) -> Response:
    """``GET /v1/Jobs/{id}/SelectedMailboxes`` (paged)."""
    return _paged(request, simulator, simulator.selected_mailboxes_page, request.path_params["job_id"])


async def sessions(request: Request, simulator: Simulator) -> Response:
    """``GET /v1/JobSessions`` (a bare array in v1)."""
    return json_response(simulator.sessions_wire())


async def session(request: Request, simulator: Simulator) -> Response:
    """``GET /v1/JobSessions/{id}``."""
    return json_response(simulator.session_wire(request.path_params["session_id"]))


async def session_log(request: Request, simulator: Simulator) -> Response:
    """``GET /v1/JobSessions/{id}/log`` (the session's ``log`` link; a bare array)."""
    return json_response(simulator.log_items_wire(request.path_params["session_id"], version="v1"))


async def repositories(request: Request, simulator: Simulator) -> Response:
    """``GET /v1/BackupRepositories``."""
    return json_response(simulator.repositories_wire())


async def repository(request: Request, simulator: Simulator) -> Response:
    """``GET /v1/BackupRepositories/{id}``."""
    return json_response(simulator.repository_wire(request.path_params["repository_id"]))


async def proxies(request: Request, simulator: Simulator) -> Response:
    """``GET /v1/Proxies``."""
    return json_response(simulator.proxies_wire())


async def proxy(request: Request, simulator: Simulator) -> Response:
    """``GET /v1/Proxies/{id}``."""
    return json_response(simulator.proxy_wire(request.path_params["proxy_id"]))


async def proxy_repositories(request: Request, simulator: Simulator) -> Response:
    """``GET /v1/Proxies/{id}/repositories``."""
    return json_response(simulator.repositories_wire(request.path_params["proxy_id"]))


def v1_routes() -> list[Route]:
    """The v1 route table; paths are lower-case because routing sees lower-cased paths."""
    get = ["GET"]
    api: list[tuple[str, Handler, list[str]]] = [
        ("/v1/organizations", organizations, get),
        ("/v1/organizations/{org_id}", organization, get),
        ("/v1/organizations/{org_id}/jobs", organization_jobs, get),
        ("/v1/organizations/{org_id}/mailboxes", organization_mailboxes, get),
        ("/v1/organizations/{org_id}/mailboxes/{mailbox_id}", organization_mailbox, get),
        ("/v1/jobs", jobs, get),
        ("/v1/jobs/{job_id}", job, get),
        ("/v1/jobs/{job_id}/action", job_action, ["POST"]),
        ("/v1/jobs/{job_id}/jobsessions", job_sessions, get),
        ("/v1/jobs/{job_id}/selectedmailboxes", selected_mailboxes, get),
        ("/v1/jobsessions", sessions, get),
        ("/v1/jobsessions/{session_id}", session, get),
        ("/v1/jobsessions/{session_id}/log", session_log, get),
        ("/v1/backuprepositories", repositories, get),
        ("/v1/backuprepositories/{repository_id}", repository, get),
        ("/v1/proxies", proxies, get),
        ("/v1/proxies/{proxy_id}", proxy, get),
        ("/v1/proxies/{proxy_id}/repositories", proxy_repositories, get),
    ]
    table = [Route("/v1/token", token_endpoint("v1"), methods=["POST"])]
    table += [Route(path, _authorized(handler), methods=methods) for path, handler, methods in api]
    return table


async def handle_simulated_error(request: Request, exc: Exception) -> Response:
    """Answer a `SimulatedError` with its status, headers and body."""
    if not isinstance(exc, SimulatedError):
        raise exc
    if exc.body is None:
        return empty_response(exc.status_code, exc.headers)
    return json_response(exc.body, exc.status_code, exc.headers)


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    """Unknown paths (404) and wrong methods (405) with a ``{"message": ...}`` body."""
    if not isinstance(exc, HTTPException):
        raise exc
    path = request.scope.get(ORIGINAL_PATH, request.url.path)
    if exc.status_code == 404:
        message = f"No HTTP resource was found that matches the request URI '{path}'."
    elif exc.status_code == 405:
        message = f"The requested resource does not support http method '{request.method}'."
    else:
        message = str(exc.detail)
    return error_response(exc.status_code, message, exc.headers)
