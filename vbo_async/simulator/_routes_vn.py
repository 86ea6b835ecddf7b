"""The v6+ endpoints: request handlers parameterised by an `ApiVersion`, and its route table.

A handler reads the query (parameter names case-insensitive, unknown ones ignored), calls the
simulator's ``*_wire`` method for its version and sends the answer; which routes exist follows
the version's fields (``organization_jobs``, ``job_sessions``, ``logout_status``, renderers).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ._errors import SimulatedError
from ._filters import parse_bool, pick
from ._generate import DIRECTORY_KINDS
from ._paging import parse_window
from ._responses import empty_response, json_response
from ._routes import simulator_of, token_endpoint
from ._simulator import Simulator
from ._version import ApiVersion

__all__ = ["version_routes"]

Handler = Callable[[Request, Simulator, ApiVersion], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]


def _query(request: Request) -> dict[str, str]:
    return {key.lower(): value for key, value in request.query_params.items()}


def _window(request: Request, simulator: Simulator, *, paged: bool) -> tuple[int, int | None]:
    """``offset``/``limit`` of a paged answer (400 when out of range); ignored for arrays."""
    if not paged:
        return 0, None
    return parse_window(request.query_params, simulator.config.page_size)


def _extended(request: Request, *, known: bool = True) -> bool | None:
    if not known:
        return None
    raw = _query(request).get("extendedview")
    return None if raw is None else parse_bool("extendedView", raw)


def _id(request: Request, name: str) -> str:
    return str(request.path_params[name])


async def organizations(request: Request, simulator: Simulator, spec: ApiVersion) -> Response:
    """``GET /vN/Organizations`` (v8: ``msid``, ``backedUpOrganizationId``)."""
    offset, limit = _window(request, simulator, paged=spec.paged_collections)
    filters = pick(_query(request), spec.organization_filters)
    body = simulator.organizations_wire(
        version=spec.name,
        extended_view=_extended(request),
        msid=filters.get("msid"),
        backed_up_organization_id=filters.get("backedUpOrganizationId"),
        offset=offset,
        limit=limit,
    )
    return json_response(body)


async def organization(request: Request, simulator: Simulator, spec: ApiVersion) -> Response:
    """``GET /vN/Organizations/{id}``."""
    body = simulator.organization_wire(
        _id(request, "org_id"), version=spec.name, extended_view=_extended(request)
    )
    return json_response(body)


async def organization_jobs(request: Request, simulator: Simulator, spec: ApiVersion) -> Response:
    """``GET /vN/Organizations/{id}/Jobs`` (v6, v7)."""
    return json_response(simulator.jobs_wire(_id(request, "org_id"), version=spec.name))


async def used_repositories(request: Request, simulator: Simulator, spec: ApiVersion) -> Response:
    """``GET /vN/Organizations/{id}/usedRepositories``."""
    offset, limit = _window(request, simulator, paged=True)
    body = simulator.used_repositories_wire(
        _id(request, "org_id"), version=spec.name, offset=offset, limit=limit
    )
    return json_response(body)


async def rbac_roles(request: Request, simulator: Simulator, spec: ApiVersion) -> Response:
    """``GET /vN/Organizations/{id}/RbacRoles`` (an array)."""
    return json_response(simulator.rbac_roles_wire(_id(request, "org_id"), version=spec.name))


def _directory(kind: str) -> Handler:
    async def listing(request: Request, simulator: Simulator, spec: ApiVersion) -> Response:
        offset, limit = _window(request, simulator, paged=True)
        names = {name for collection, name in spec.directory_filters if collection == kind}
        body = simulator.directory_wire(
            _id(request, "org_id"),
            kind,
            version=spec.name,
            filters=pick(_query(request), names),
            offset=offset,
            limit=limit,
        )
        return json_response(body)

    listing.__name__ = f"organization_{kind}"
    listing.__doc__ = f"``GET /vN/Organizations/{{id}}/{kind.capitalize()}`` (a page, with its filters)."
    return listing


def _directory_item(kind: str) -> Handler:
    async def item(request: Request, simulator: Simulator, spec: ApiVersion) -> Response:
        org_id, item_id = _id(request, "org_id"), _id(request, "item_id")
        return json_response(simulator.directory_item_wire(org_id, kind, item_id, version=spec.name))

    item.__name__ = f"organization_{kind}_item"
    item.__doc__ = f"``GET /vN/Organizations/{{id}}/{kind.capitalize()}/{{itemId}}``."
    return item


async def jobs(request: Request, simulator: Simulator, spec: ApiVersion) -> Response:
    """``GET /vN/Jobs`` (v8: ``organizationId``, ``repositoryId``)."""
    offset, limit = _window(request, simulator, paged=spec.paged_collections)
    filters = pick(_query(request), spec.job_filters)
    body = simulator.jobs_wire(
        version=spec.name,
        organization_id=filters.get("organizationId"),
        repository_id=filters.get("repositoryId"),
        offset=offset,
        limit=limit,
    )
    return json_response(body)


async def job(request: Request, simulator: Simulator, spec: ApiVersion) -> Response:
    """``GET /vN/Jobs/{id}``."""
    return json_response(simulator.job_wire(_id(request, "job_id"), version=spec.name))


async def copy_job(request: Request, simulator: Simulator, spec: ApiVersion) -> Response:
    """``GET /vN/CopyJobs/{id}``."""
    return json_response(simulator.copy_job_wire(_id(request, "copy_job_id"), version=spec.name))


async def job_copy_job(request: Request, simulator: Simulator, spec: ApiVersion) -> Response:
    """``GET /vN/Jobs/{id}/CopyJob``."""
    return json_response(simulator.copy_job_wire(job_id=_id(request, "job_id"), version=spec.name))


async def job_sessions(request: Request, simulator: Simulator, spec: ApiVersion) -> Response:
    """``GET /vN/Jobs/{id}/JobSessions`` (v6 only)."""
    offset, limit = _window(request, simulator, paged=True)
    body = simulator.job_sessions_wire(_id(request, "job_id"), version=spec.name, offset=offset, limit=limit)
    return json_response(body)


async def selected_items(request: Request, simulator: Simulator, spec: ApiVersion) -> Response:
    """``GET /vN/Jobs/{id}/SelectedItems``."""
    offset, limit = _window(request, simulator, paged=spec.paged_collections)
    body = simulator.selected_items_wire(
        _id(request, "job_id"), version=spec.name, offset=offset, limit=limit
    )
    return json_response(body)


async def excluded_items(request: Request, simulator: Simulator, spec: ApiVersion) -> Response:
    """``GET /vN/Jobs/{id}/ExcludedItems``."""
    offset, limit = _window(request, simulator, paged=spec.paged_collections)
    body = simulator.excluded_items_wire(
        _id(request, "job_id"), version=spec.name, offset=offset, limit=limit
    )
    return json_response(body)


async def _start_options(request: Request) -> bool:
    """The ``full`` flag of ``RESTStartJobOptions`` (a required JSON object; ``{}`` is fine)."""
    body = await request.body()
    if not body.strip():
        raise SimulatedError(400, "A non-empty request body is required.")
    try:
        data: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise SimulatedError(400, "The request is invalid: the body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise SimulatedError(400, "The request is invalid: expected a JSON object.")
    full = {key.lower(): value for key, value in data.items()}.get("full", False)
    if full is None:
        full = False
    if not isinstance(full, bool):
        raise SimulatedError(400, "The request is invalid: 'full' must be true or false.")
    return full


def _action(verb: str) -> Handler:
    async def action(request: Request, simulator: Simulator, spec: ApiVersion) -> Response:
        full = await _start_options(request) if verb == "start" else False
        started = simulator.job_action(_id(request, "job_id"), verb, full=full)
        if started is not None and spec.start_answers_session:
            return json_response(simulator.session_wire(started, version=spec.name))
        return empty_response(204)

    action.__name__ = f"job_{verb}"
    action.__doc__ = f"``POST /vN/Jobs/{{id}}/{verb}``."
    return action


async def sessions(request: Request, simulator: Simulator, spec: ApiVersion) -> Response:
    """``GET /vN/JobSessions`` with the version's filters."""
    offset, limit = _window(request, simulator, paged=True)
    filters = pick(_query(request), spec.session_filters)
    body = simulator.sessions_wire(
        version=spec.name,
        job_id=filters.get("jobId"),
        job_type=filters.get("jobType"),
        end_time_lower_bound=filters.get("endTimeLowerBound"),
        end_time_upper_bound=filters.get("endTimeUpperBound"),
        status=filters.get("status"),
        offset=offset,
        limit=limit,
    )
    return json_response(body)


async def session(request: Request, simulator: Simulator, spec: ApiVersion) -> Response:
    """``GET /vN/JobSessions/{id}``."""
    return json_response(simulator.session_wire(_id(request, "session_id"), version=spec.name))


async def log_items(request: Request, simulator: Simulator, spec: ApiVersion) -> Response:
    """``GET /vN/JobSessions/{id}/LogItems`` (a page; v8: ``type``, ``orderAsc``)."""
    offset, limit = _window(request, simulator, paged=True)
    filters = pick(_query(request), spec.log_filters)
    order = filters.get("orderAsc")
    body = simulator.log_items_wire(
        _id(request, "session_id"),
        version=spec.name,
        kind=filters.get("type"),
        order_asc=None if order is None else parse_bool("orderAsc", order),
        offset=offset,
        limit=limit,
    )
    return json_response(body)


async def repositories(request: Request, simulator: Simulator, spec: ApiVersion) -> Response:
    """``GET /vN/BackupRepositories`` with the version's filters."""
    offset, limit = _window(request, simulator, paged=spec.paged_collections)
    filters = pick(_query(request), spec.repository_filters)
    long_term = filters.get("longTerm")
    body = simulator.repositories_wire(
        filters.get("proxyId"),
        version=spec.name,
        proxy_pool_id=filters.get("proxyPoolId"),
        organization_id=filters.get("organizationId"),
        long_term=None if long_term is None else parse_bool("longTerm", long_term),
        offset=offset,
        limit=limit,
    )
    return json_response(body)


async def repository(request: Request, simulator: Simulator, spec: ApiVersion) -> Response:
    """``GET /vN/BackupRepositories/{id}``."""
    return json_response(simulator.repository_wire(_id(request, "repository_id"), version=spec.name))


async def object_storage(request: Request, simulator: Simulator, spec: ApiVersion) -> Response:
    """``GET /vN/objectstoragerepositories/{id}`` (v6/v7)."""
    return json_response(simulator.object_storage_wire(_id(request, "storage_id"), version=spec.name))


async def proxies(request: Request, simulator: Simulator, spec: ApiVersion) -> Response:
    """``GET /vN/Proxies``."""
    offset, limit = _window(request, simulator, paged=spec.paged_collections)
    extended = _extended(request, known=spec.proxy_extended_default is not None)
    body = simulator.proxies_wire(version=spec.name, extended_view=extended, offset=offset, limit=limit)
    return json_response(body)


async def proxy(request: Request, simulator: Simulator, spec: ApiVersion) -> Response:
    """``GET /vN/Proxies/{id}``."""
    extended = _extended(request, known=spec.proxy_extended_default is not None)
    return json_response(
        simulator.proxy_wire(_id(request, "proxy_id"), version=spec.name, extended_view=extended)
    )


async def license_(request: Request, simulator: Simulator, spec: ApiVersion) -> Response:
    """``GET /vN/License``."""
    return json_response(simulator.license_wire(version=spec.name))


async def service_instance(request: Request, simulator: Simulator, spec: ApiVersion) -> Response:
    """``GET /vN/ServiceInstance``."""
    return json_response(simulator.service_instance_wire(version=spec.name))


async def health(request: Request, simulator: Simulator, spec: ApiVersion) -> Response:
    """``GET /v8/Health`` (anonymous)."""
    return json_response(simulator.health_wire(version=spec.name))


async def logout(request: Request, simulator: Simulator, spec: ApiVersion) -> Response:
    """``POST /vN/token/logout`` (bearer required): v7 200, v8 204, both without a body."""
    status = simulator.log_out(request.headers.get("authorization"), version=spec.name)
    return empty_response(status)


def _bind(handler: Handler, spec: ApiVersion, *, anonymous: bool) -> Endpoint:
    """An endpoint running `handler` for `spec`, with a valid bearer unless `anonymous`."""

    async def endpoint(request: Request) -> Response:
        simulator = simulator_of(request)
        if not anonymous:
            simulator.authenticate(request.headers.get("authorization"), version=spec.name)
        return await handler(request, simulator, spec)

    endpoint.__name__ = handler.__name__
    return endpoint


def version_routes(spec: ApiVersion) -> list[Route]:
    """The routes of one v6+ version (lower-case paths; routing sees lower-cased paths)."""
    get, post = ["GET"], ["POST"]
    has_directory = spec.directory_item is not None
    table: list[tuple[str, Handler, list[str], bool]] = [
        ("/organizations", organizations, get, True),
        ("/organizations/{org_id}", organization, get, True),
        ("/organizations/{org_id}/jobs", organization_jobs, get, spec.organization_jobs),
        (
            "/organizations/{org_id}/usedrepositories",
            used_repositories,
            get,
            spec.used_repository is not None,
        ),
        ("/organizations/{org_id}/rbacroles", rbac_roles, get, spec.rbac_roles),
        *(
            (f"/organizations/{{org_id}}/{kind}", _directory(kind), get, has_directory)
            for kind in DIRECTORY_KINDS
        ),
        *(
            (f"/organizations/{{org_id}}/{kind}/{{item_id}}", _directory_item(kind), get, has_directory)
            for kind in DIRECTORY_KINDS
        ),
        ("/jobs", jobs, get, True),
        ("/jobs/{job_id}", job, get, True),
        ("/jobs/{job_id}/jobsessions", job_sessions, get, spec.job_sessions),
        ("/jobs/{job_id}/copyjob", job_copy_job, get, spec.copy_job is not None),
        ("/copyjobs/{copy_job_id}", copy_job, get, spec.copy_job is not None),
        ("/jobs/{job_id}/selecteditems", selected_items, get, spec.job_item is not None),
        ("/jobs/{job_id}/excludeditems", excluded_items, get, spec.job_item is not None),
        *((f"/jobs/{{job_id}}/{verb}", _action(verb), post, spec.verb_actions) for verb in _VERBS),
        ("/jobsessions", sessions, get, True),
        ("/jobsessions/{session_id}", session, get, True),
        ("/jobsessions/{session_id}/logitems", log_items, get, spec.log_item is not None),
        ("/backuprepositories", repositories, get, True),
        ("/backuprepositories/{repository_id}", repository, get, True),
        ("/objectstoragerepositories/{storage_id}", object_storage, get, spec.object_storage is not None),
        ("/proxies", proxies, get, True),
        ("/proxies/{proxy_id}", proxy, get, True),
        ("/license", license_, get, spec.license is not None),
        ("/serviceinstance", service_instance, get, spec.service_instance is not None),
    ]
    prefix = f"/{spec.name}"
    routes = [Route(f"{prefix}/token", token_endpoint(spec.name), methods=post)]
    if spec.logout_status is not None:
        routes.append(Route(f"{prefix}/token/logout", _bind(logout, spec, anonymous=True), methods=post))
    if spec.health is not None:
        routes.append(Route(f"{prefix}/health", _bind(health, spec, anonymous=True), methods=get))
    routes += [
        Route(prefix + path, _bind(handler, spec, anonymous=False), methods=methods)
        for path, handler, methods, present in table
        if present
    ]
    return routes


_VERBS = ("start", "stop", "enable", "disable")
