"""The API versions vbo-async speaks, one `Dialect` each, newest first.

Adding a version is one module written against the previous one, plus a line here.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from ._base import Derivation, Dialect, IdFromLink, JobAction, LinkFromId, LinkThrough, Route, camel
from .v1 import V1
from .v6 import V6
from .v7 import V7
from .v8 import V8

__all__ = [
    "DIALECTS",
    "NEWEST_FIRST",
    "Derivation",
    "Dialect",
    "IdFromLink",
    "JobAction",
    "LinkFromId",
    "LinkThrough",
    "Route",
    "camel",
]

NEWEST_FIRST: tuple[Dialect, ...] = (V8, V7, V6, V1)
"""What ``api_version="auto"`` tries, in order."""

DIALECTS: Mapping[str, Dialect] = MappingProxyType({d.version: d for d in NEWEST_FIRST})
"""Version segment (``"v8"``) -> its dialect."""


def _check_all() -> None:
    for dialect in NEWEST_FIRST:
        dialect.check()


_check_all()
