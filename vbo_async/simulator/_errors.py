"""The exception the simulator raises for API errors; the app turns it into a response."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["SimulatedError"]


class SimulatedError(Exception):
    """An API error the simulated server answers with `status_code` and a JSON `body`.

    Raised by `Simulator` methods (unknown ids → 404, invalid job actions → 400, rejected
    bearer → 401) and by request handlers; `body` is ``{"message": ...}`` unless given, and
    None when the response has an empty body.
    """

    def __init__(
        self,
        status_code: int,
        message: str,
        *,
        body: Mapping[str, Any] | None = None,
        empty_body: bool = False,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.body: Mapping[str, Any] | None = None
        if not empty_body:
            self.body = {"message": message} if body is None else body
        self.headers: Mapping[str, str] = headers or {}

    @classmethod
    def not_found(cls, kind: str, item_id: str) -> SimulatedError:
        """404 for an unknown id, e.g. ``Job with id '...' was not found.``."""
        return cls(404, f"{kind} with id '{item_id}' was not found.")
