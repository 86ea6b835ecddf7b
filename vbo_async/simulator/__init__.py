"""A seeded, stateful simulator of the VBO/VB365 REST API (v1, v6, v7 and v8), served as an ASGI app.

One state is shown through every served version, each in its own wire shape with the quirks
live servers have (bare arrays or pages, dead links, a v8 ``next`` link naming ``/v7/``...).

```python
from datetime import UTC, datetime

from vbo_async.simulator import Simulator, SimulatorConfig, create_app

config = SimulatorConfig(
    seed=1, organizations=20, api_versions=("v7", "v8"), epoch=datetime(2026, 7, 1, tzinfo=UTC)
)
simulator = Simulator(config)  # the state, for assertions (also app.state.simulator, untyped)
app = create_app(simulator=simulator)
page = simulator.jobs_wire(version="v8")  # exactly what GET /v8/Jobs answers
```
"""

from __future__ import annotations

try:
    from ._app import create_app
    from ._config import Faults, SimulatorConfig
    from ._errors import SimulatedError
    from ._simulator import Simulator
    from ._stats import SimulatorStats, TokenRequest
    from ._tls import make_tls_material
except ImportError as _missing:  # private names: nothing of this is the package's interface
    from .._extras import SIMULATOR_PACKAGES, missing_package

    if (_package := missing_package(_missing, SIMULATOR_PACKAGES)) is None:
        raise
    # As the command line says it; ``name`` kept, for `_cli._exit.simulator_extra` to read.
    raise ModuleNotFoundError(
        f"vbo_async.simulator needs the 'simulator' extra ({_package} is not installed): "
        "pip install 'vbo-async[simulator]'",
        name=_missing.name,
    ) from None

__all__ = [
    "Faults",
    "SimulatedError",
    "Simulator",
    "SimulatorConfig",
    "SimulatorStats",
    "TokenRequest",
    "create_app",
    "make_tls_material",
]
