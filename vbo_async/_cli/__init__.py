"""The ``vbo-async`` command line (extra ``cli``: click and rich), behind `vbo_async.cli.main`.

- `_app`: the click commands and `main`; `_exit`: exit codes.
- `_connect`: connection options, passwords, TLS contexts, hints for common mistakes.
- `_targets`: the typed targets file of ``poll`` and ``check``.
- `_check`: ``check``, the Nagios/Icinga/Checkmk plugin; `_plugin`: its verdict and output (pure).
- `_flows`: what each command asks the servers; `_report`: what they answered, as rows.
- `_table` and `_progress`: rich output on stdout and stderr; `_logging`: ``VBO_ASYNC_LOG``.
- `_simulate`: ``simulate`` and the fault flags generated from `Faults`.
- ``serve`` (extra ``exporter``): `_metrics` the metric table, `_sweeps` one server's sweep,
  `_exposition` rendering with prometheus_client, `_exporter` the loop and HTTP side, `_serve`
  the command around them.
"""

from __future__ import annotations

from ._app import main

__all__ = ["main"]
