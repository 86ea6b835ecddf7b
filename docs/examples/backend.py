"""A Starlette backend serving VB365 jobs as JSON: one `VBOClient` per server for the app's life.

Run it with ``uvicorn docs.examples.backend:app`` (the servers and the service account come
from the environment), or build one with `create_app` in your own code and tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
from collections.abc import AsyncGenerator, Mapping

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from vbo_async import ConfigError, HealthPolicy, NotFoundError, VBOClient, VBOError, to_jsonable


def create_app(
    servers: Mapping[str, str],
    *,
    username: str,
    password: str,
    verify: bool | str | ssl.SSLContext = True,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
) -> Starlette:
    """The app: ``servers`` maps a short name to a VB365 base URL; ``transports`` (tests only)
    replaces the network for some of them."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncGenerator[None, None]:
        async with contextlib.AsyncExitStack() as stack:
            # One client per server for the app's whole life: one token, one connection pool,
            # shared by every request the app serves. Leaving the block closes (and logs out) all.
            app.state.clients = {
                name: await stack.enter_async_context(
                    VBOClient(
                        url,
                        username=username,
                        password=password,
                        verify=verify,
                        transport=(transports or {}).get(name),
                    )
                )
                for name, url in servers.items()
            }
            yield

    def client_of(request: Request) -> VBOClient:
        clients: dict[str, VBOClient] = request.app.state.clients
        name = request.path_params["server"]
        if name not in clients:
            raise NotFoundError(f"no server named {name!r}", status_code=404)
        return clients[name]

    async def organizations(request: Request) -> JSONResponse:
        return JSONResponse(to_jsonable(await client_of(request).organizations()))

    async def jobs(request: Request) -> JSONResponse:
        vbo = client_of(request)
        found = await vbo.organization_jobs(request.path_params["organization"])
        return JSONResponse(to_jsonable(found))

    async def health(request: Request) -> JSONResponse:
        vbo = client_of(request)
        found = await vbo.organization_jobs(request.path_params["organization"])
        policy = HealthPolicy()
        judged = await asyncio.gather(*(vbo.job_health(job, policy=policy) for job in found))
        return JSONResponse(to_jsonable(judged))

    async def not_found(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=404)

    async def bad_request(request: Request, exc: Exception) -> JSONResponse:
        # An id the library refuses before sending anything: the caller's mistake.
        return JSONResponse({"error": str(exc)}, status_code=400)

    async def upstream_failed(request: Request, exc: Exception) -> JSONResponse:
        # Any other VBOError: the VB365 server failed us (messages never hold secrets).
        return JSONResponse({"error": str(exc)}, status_code=502)

    return Starlette(
        routes=[
            Route("/servers/{server}/organizations", organizations),
            Route("/servers/{server}/organizations/{organization}/jobs", jobs),
            Route("/servers/{server}/organizations/{organization}/health", health),
        ],
        exception_handlers={NotFoundError: not_found, ConfigError: bad_request, VBOError: upstream_failed},
        lifespan=lifespan,
    )


def _from_environment() -> Starlette:
    servers = dict(entry.split("=", 1) for entry in os.environ.get("VB365_SERVERS", "").split(",") if entry)
    return create_app(
        servers,
        username=os.environ.get("VB365_USERNAME", ""),
        password=os.environ.get("VB365_PASSWORD", ""),
        verify=os.environ.get("VB365_CA_BUNDLE") or True,
    )


if os.environ.get("VB365_SERVERS"):
    app = _from_environment()
