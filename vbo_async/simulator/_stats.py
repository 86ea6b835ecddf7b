"""Request, token, job-action and fault counters kept by a simulator instance."""

from __future__ import annotations

from collections import Counter

import attrs

__all__ = ["TOKEN_LOG_KEPT", "SimulatorStats", "TokenRequest"]

TOKEN_LOG_KEPT = 10_000
"""Token requests `SimulatorStats.token_log` keeps, the newest: a long-running simulator whose
clients log in every sweep must not grow without bound (the counters count them all)."""


@attrs.frozen
class TokenRequest:
    """One request that reached a token endpoint (never the password or a token)."""

    version: str
    grant_type: str
    form_keys: tuple[str, ...]
    """The names of the form (or JSON) fields sent, sorted."""
    disable_antiforgery_token: str | None
    """The value sent for ``disable_antiforgery_token``, None when it was not sent."""
    status: int
    """What the endpoint answered (200, 400, 429...)."""


@attrs.define
class SimulatorStats:
    """What the simulator has seen since it was built or its stats were last reset.

    - `requests`: every HTTP request, whatever its fate.
    - `by_endpoint`: requests per ``(method, lower-cased path)``, e.g. ``("GET", "/v1/jobs")``.
    - `token_requests`: token requests that reached an endpoint, per ``grant_type`` (all versions).
    - `token_requests_by_version`: the same per ``(version, grant_type)``.
    - `token_log`: those requests in order, as a `TokenRequest` (the newest `TOKEN_LOG_KEPT`).
    - `logouts`: accepted ``POST /vN/token/logout`` per version.
    - `job_actions`: job actions that were applied, per ``(job id, action)``.
    - `faults`: injected faults per kind (``latency``, ``latency_spike``, ``error``,
      ``rate_limit``, ``drop``, ``truncate``, ``malformed``, ``revoke``, ``token_throttle``).
    - `unauthorized`: requests answered 401.
    """

    requests: int = 0
    by_endpoint: Counter[tuple[str, str]] = attrs.Factory(Counter)
    token_requests: Counter[str] = attrs.Factory(Counter)
    token_requests_by_version: Counter[tuple[str, str]] = attrs.Factory(Counter)
    token_log: list[TokenRequest] = attrs.Factory(list)
    logouts: Counter[str] = attrs.Factory(Counter)
    job_actions: Counter[tuple[str, str]] = attrs.Factory(Counter)
    faults: Counter[str] = attrs.Factory(Counter)
    unauthorized: int = 0

    def record_token_request(self, request: TokenRequest) -> None:
        """Count one token request."""
        self.token_requests[request.grant_type] += 1
        self.token_requests_by_version[(request.version, request.grant_type)] += 1
        self.token_log.append(request)
        if len(self.token_log) > TOKEN_LOG_KEPT:
            del self.token_log[0]
