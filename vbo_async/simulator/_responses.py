"""JSON responses as the v1 server sends them (``application/json; charset=utf-8``, orjson)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from starlette.responses import Response

__all__ = ["JSON_MEDIA_TYPE", "empty_response", "error_response", "json_response"]

JSON_MEDIA_TYPE = "application/json; charset=utf-8"


def json_response(content: Any, status_code: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    """`content` serialised with orjson."""
    return Response(orjson.dumps(content), status_code, headers, JSON_MEDIA_TYPE)


def error_response(status_code: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
    """An error with the v1 ``{"message": ...}`` body."""
    return json_response({"message": message}, status_code, headers)


def empty_response(status_code: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    """A response with an empty body (``Content-Length: 0``)."""
    return Response(b"", status_code, headers)
