"""A seeded, stateful simulator of the VBO (Office 365) v1 REST API, served as an ASGI app.

```python
from vbo_async.simulator import SimulatorConfig, create_app

app = create_app(SimulatorConfig(seed=1, organizations=20))
simulator = app.state.simulator  # the state, for assertions
```
"""

from __future__ import annotations

from ._app import create_app
from ._config import Faults, SimulatorConfig
from ._errors import SimulatedError
from ._simulator import Simulator
from ._stats import SimulatorStats
from ._tls import make_tls_material

__all__ = [
    "Faults",
    "SimulatedError",
    "Simulator",
    "SimulatorConfig",
    "SimulatorStats",
    "create_app",
    "make_tls_material",
]
