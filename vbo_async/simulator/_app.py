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
from ._routes import handle_http_exception, handle_simulated_error, routes
from ._simulator import Simulator

__all__ = ["create_app"]


def create_app(config: SimulatorConfig | None = None, *, simulator: Simulator | None = None) -> Starlette:
    """An ASGI app serving the v1 API of `simulator` (or of a new one built from `config`).

    The simulator is reachable as ``app.state.simulator``. Fault injection wraps the routes,
    and routing is case-insensitive.

    ```python
    app = create_app(SimulatorConfig(seed=7))
    transport = httpx.ASGITransport(app=app)
    ```
    """
    if simulator is None:
        simulator = Simulator(config)
    elif config is not None and config != simulator.config:
        raise ConfigError("pass either a config or a simulator, or the simulator's own config")
    app = Starlette(
        routes=routes(),
        middleware=[
            Middleware(FaultInjection, simulator=simulator),
            Middleware(CaseInsensitivePaths),
        ],
        exception_handlers={
            SimulatedError: handle_simulated_error,
            HTTPException: handle_http_exception,
        },
    )
    app.state.simulator = simulator
    return app
