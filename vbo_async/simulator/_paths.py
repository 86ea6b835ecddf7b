"""ASGI middleware routing on the lower-cased path, as VBO/VB365 servers match routes case-insensitively."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from ._routes import ORIGINAL_PATH

__all__ = ["CaseInsensitivePaths"]


class CaseInsensitivePaths:
    """Lower-case the path below ``root_path`` before routing; keep the original in the scope.

    The original path (under the `ORIGINAL_PATH` scope key) is what page links repeat, so
    ``/V1/Jobs/{id}/JobSessions`` pages link back to ``/V1/Jobs/{id}/JobSessions?...``.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            root: str = scope.get("root_path", "")
            prefix = root if root and path.startswith(root) else ""
            lowered = prefix + path[len(prefix) :].lower()
            scope = {**scope, ORIGINAL_PATH: path, "path": lowered}
        await self.app(scope, receive, send)
