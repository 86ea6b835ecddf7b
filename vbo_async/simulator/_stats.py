"""Request, token, job-action and fault counters kept by a simulator instance."""

from __future__ import annotations

from collections import Counter

import attrs

__all__ = ["SimulatorStats"]


@attrs.define
class SimulatorStats:
    """What the simulator has seen since it was built or its stats were last reset.

    - `requests`: every HTTP request, whatever its fate.
    - `by_endpoint`: requests per ``(method, lower-cased path)``, e.g. ``("GET", "/v1/jobs")``.
    - `token_requests`: token requests that reached the endpoint, per ``grant_type``.
    - `job_actions`: job actions that were applied, per ``(job id, action)``.
    - `faults`: injected faults per kind (``latency``, ``latency_spike``, ``error``,
      ``rate_limit``, ``drop``, ``truncate``, ``malformed``, ``revoke``).
    - `unauthorized`: requests answered 401.
    """

    requests: int = 0
    by_endpoint: Counter[tuple[str, str]] = attrs.Factory(Counter)
    token_requests: Counter[str] = attrs.Factory(Counter)
    job_actions: Counter[tuple[str, str]] = attrs.Factory(Counter)
    faults: Counter[str] = attrs.Factory(Counter)
    unauthorized: int = 0
