"""`create_app`: the Starlette application serving a `Simulator`."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware

from vbo_async._exceptions import ConfigError

from ._config import SimulatorConfig
from ._errors import SimulatedError
from ._faults import FaultInjection
from ._paths import CaseInsensitivePaths
from ._routes import handle_http_exception, handle_simulated_error, v1_routes
from ._routes_vn import version_routes
from ._simulator import Simulator
from ._versions import VERSIONS

__all__ = ["create_app"]


def create_app(config: SimulatorConfig | None = None, *, simulator: Simulator | None = None) -> Starlette:
    """An ASGI app serving the API versions of `simulator` (or of a new one built from `config`).

    Every version in ``config.api_versions`` is routed (v1 with its own table, v6+ from their
    `ApiVersion`); paths of other versions answer 404. The simulator is reachable as
    ``app.state.simulator`` (typed ``Any``, as Starlette's state is: to have it typed, build the
    `Simulator` first and pass it). Fault injection wraps the routes, and routing is
    case-insensitive and ignores one trailing slash, as ASP.NET's; nothing is redirected.

    ```python
    app = create_app(SimulatorConfig(seed=7))
    transport = httpx.ASGITransport(app=app)
    ```
    """
    if simulator is not None and not isinstance(simulator, Simulator):
        raise ConfigError(f"simulator must be a Simulator or None, got {type(simulator).__name__}")
    if simulator is None:
        simulator = Simulator(config)
    elif config is not None and config != simulator.config:
        raise ConfigError("pass either a config or a simulator, or the simulator's own config")
    served = simulator.config.api_versions
    table = v1_routes() if "v1" in served else []
    for name in served:
        if name != "v1":
            table += version_routes(VERSIONS[name])
    app = Starlette(
        routes=table,
        middleware=[
            Middleware(FaultInjection, simulator=simulator),
            Middleware(CaseInsensitivePaths),
        ],
        exception_handlers={
            SimulatedError: handle_simulated_error,
            HTTPException: handle_http_exception,
        },
    )
    # ASP.NET does not redirect: a path ending in two slashes (one left once CaseInsensitivePaths
    # drops one) is no route, answered 404; Starlette answered 307 to the lower-cased path.
    app.router.redirect_slashes = False
    app.state.simulator = simulator
    return app
