"""ASGI middleware routing on the lower-cased path, as VBO/VB365 servers match routes case-insensitively."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from ._routes import ORIGINAL_PATH

__all__ = ["CaseInsensitivePaths"]


class CaseInsensitivePaths:
    """Lower-case the path below ``root_path`` before routing; keep the original in the scope.

    The original path (under the `ORIGINAL_PATH` scope key) is what page links repeat, so
    ``/V1/Jobs/{id}/JobSessions`` pages link back to ``/V1/Jobs/{id}/JobSessions?...``. One
    trailing slash is dropped from both, as ASP.NET routing ignores it (``/v8/Jobs/`` is
    answered as ``/v8/Jobs``, not redirected).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = _without_trailing_slash(scope["path"])
            root: str = scope.get("root_path", "")
            prefix = root if root and path.startswith(root) else ""
            lowered = prefix + path[len(prefix) :].lower()
            scope = {**scope, ORIGINAL_PATH: path, "path": lowered}
        await self.app(scope, receive, send)


def _without_trailing_slash(path: str) -> str:
    """`path` without one ending ``/`` (the root ``/`` stays)."""
    return path[:-1] if len(path) > 1 and path.endswith("/") else path
