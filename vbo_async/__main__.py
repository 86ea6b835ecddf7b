"""``python -m vbo_async``: the command line, entered as the ``vbo-async`` script enters it."""

from __future__ import annotations

from _vbo_async_cli import main

raise SystemExit(main())
