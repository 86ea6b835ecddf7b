"""The table of servable API versions (read-only): name → `ApiVersion`."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from ._version import ApiVersion
from ._wire import V1
from ._wire_v6 import V6
from ._wire_v7 import V7
from ._wire_v8 import V8

__all__ = ["VERSIONS", "newest"]

VERSIONS: Mapping[str, ApiVersion] = MappingProxyType({v.name: v for v in (V1, V6, V7, V8)})
"""Every version the simulator can serve, oldest first."""


def newest(names: tuple[str, ...]) -> ApiVersion:
    """The newest of the named versions (whose build a server reports)."""
    return max((VERSIONS[name] for name in names), key=lambda version: int(version.name[1:]))
