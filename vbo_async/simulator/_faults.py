"""Fault injection: a pure ASGI middleware that delays, fails, cuts or garbles API responses."""

from __future__ import annotations

import logging
import math
import random
import time

import anyio
import attrs
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ._config import Faults
from ._responses import JSON_MEDIA_TYPE, error_response
from ._simulator import Simulator

__all__ = [
    "FaultInjection",
    "FaultPlan",
    "SimulatedDisconnect",
    "is_simulated_disconnect",
    "outcome_rates",
    "plan_faults",
]

_SERVER_ERRORS = {
    500: "An error has occurred.",
    502: "Bad Gateway: the upstream server returned an invalid response.",
    503: "The service is unavailable.",
}
_MALFORMED_TAIL = b"\x00<!-- simulated malformed body -->"
_NO_BODY = (204, 205)
"""Successes that cannot carry a body (RFC 9110), so cannot be answered with a malformed one."""


class SimulatedDisconnect(ConnectionResetError):
    """Raised out of the app to cut the connection of a dropped or truncated answer.

    ASGI has no other way to end a connection mid-answer; the server logs it as an error of the
    app, which `is_simulated_disconnect` lets a log filter recognise and leave out.
    """


def is_simulated_disconnect(record: logging.LogRecord) -> bool:
    """Whether a log record is the server's report of a `SimulatedDisconnect` (a fault asked for)."""
    return record.exc_info is not None and isinstance(record.exc_info[1], SimulatedDisconnect)


@attrs.frozen
class FaultPlan:
    """What happens to one request: extra `delay`, and at most one `outcome`."""

    delay: float = 0.0
    spiked: bool = False
    outcome: str | None = None
    """``error``, ``rate_limit``, ``drop``, ``truncate``, ``malformed`` or None."""
    status: int = 200
    """The 5xx status for an ``error`` outcome."""


def outcome_rates(faults: Faults) -> tuple[tuple[str, float], ...]:
    """Each outcome a request may get and its rate, in the order `plan_faults` draws them."""
    return (
        ("error", faults.error_rate),
        ("rate_limit", faults.rate_limit_rate),
        ("drop", faults.drop_rate),
        ("truncate", faults.truncate_rate),
        ("malformed", faults.malformed_rate),
    )


def plan_faults(faults: Faults, rng: random.Random) -> FaultPlan:
    """Draw the faults for one request (two or three draws from `rng`, always in that order)."""
    spiked = rng.random() < faults.latency_spike_rate
    draw = rng.random()
    outcome = None
    threshold = 0.0
    for name, rate in outcome_rates(faults):
        threshold += rate
        if rate and draw < threshold:
            outcome = name
            break
    status = rng.choice(tuple(_SERVER_ERRORS)) if outcome == "error" else 200
    delay = faults.latency + (faults.latency_spike if spiked else 0.0)
    return FaultPlan(delay=delay, spiked=spiked, outcome=outcome, status=status)


class FaultInjection:
    """Count every request, then apply `Faults` to the requests of every served version
    (``/v1/...``, ``/v8/...``; token endpoints too).

    Error and 429 outcomes answer without reaching the app. Drop, truncate and malformed let
    the app handle the request (so its effects happen) and spoil the response: a drop sends
    the head and half the body then raises ``ConnectionResetError``; a truncation sends half
    the body under the full ``Content-Length``; a malformed body keeps the app's successful
    status and headers and is not JSON. An answer that is not a success (a 401 for a revoked
    token, a 404), or a success that cannot carry a body (a 204), is never given a malformed
    body: it goes out as the app sent it, and the fault is not counted. So are a 204 (complete
    with its head) under a drop and an empty body under a truncation: nothing can be cut short.
    An empty 200 is dropped with its head sent without ``Content-Length: 0``, so that the head
    does not complete it.
    """

    def __init__(self, app: ASGIApp, simulator: Simulator) -> None:
        self.app = app
        self.simulator = simulator
        self.prefixes = tuple(f"/{version}/" for version in simulator.config.api_versions)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        simulator = self.simulator
        path = str(scope["path"]).lower()
        simulator.stats.requests += 1
        simulator.stats.by_endpoint[(str(scope["method"]), path)] += 1
        faults = simulator.config.faults
        if not faults.active or not path.startswith(self.prefixes):
            await self.app(scope, receive, send)
            return
        self._revoke_if_due(faults)
        plan = plan_faults(faults, simulator.fault_rng)
        counts = simulator.stats.faults
        if faults.latency:
            counts["latency"] += 1
        if plan.spiked:
            counts["latency_spike"] += 1
        if plan.delay:
            await anyio.sleep(plan.delay)
        if plan.outcome in ("error", "rate_limit"):
            counts[plan.outcome] += 1  # the others are counted where they are applied
        if plan.outcome == "error":
            response = error_response(plan.status, _SERVER_ERRORS[plan.status])
            await response(scope, receive, send)
        elif plan.outcome == "rate_limit":
            retry_after = str(max(math.ceil(faults.retry_after), 0))
            response = error_response(429, "Quota Exceeded", {"Retry-After": retry_after})
            await response(scope, receive, send)
        elif plan.outcome in ("drop", "truncate", "malformed"):
            await self._spoil(plan.outcome, scope, receive, send)
        else:
            await self.app(scope, receive, send)

    def _revoke_if_due(self, faults: Faults) -> None:
        if faults.revoke_every is None:
            return
        now = time.monotonic()
        if now - self.simulator.last_revocation >= faults.revoke_every:
            self.simulator.last_revocation = now
            self.simulator.revoke_tokens()
            self.simulator.stats.faults["revoke"] += 1

    async def _spoil(self, outcome: str, scope: Scope, receive: Receive, send: Send) -> None:
        start: Message = {}
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, capture)
        body = b"".join(chunks)
        part = body[: len(body) // 2]
        if outcome == "malformed":
            status = int(start["status"])
            if 200 <= status < 300 and status not in _NO_BODY:
                self.simulator.stats.faults["malformed"] += 1
                headers = {
                    key.decode("latin-1"): value.decode("latin-1")
                    for key, value in start.get("headers", [])
                    if key.lower() not in (b"content-length", b"content-type")
                }
                spoiled = Response(part + _MALFORMED_TAIL, status, headers, media_type=JSON_MEDIA_TYPE)
                await spoiled(scope, receive, send)
            else:
                await send(start)
                await send({"type": "http.response.body", "body": body, "more_body": False})
            return
        if not body and (outcome == "truncate" or int(start["status"]) in _NO_BODY):
            # Nothing to cut short: an empty body, or a 204 that is complete with its head.
            await send(start)
            await send({"type": "http.response.body", "body": body, "more_body": False})
            return
        self.simulator.stats.faults[outcome] += 1
        if not body:  # without its Content-Length: 0 the head no longer completes the answer
            start = {
                **start,
                "headers": [h for h in start.get("headers", []) if h[0].lower() != b"content-length"],
            }
        await send(start)
        if outcome == "truncate":
            try:
                await send({"type": "http.response.body", "body": part, "more_body": False})
            except Exception as exc:  # a real server refuses to end short of Content-Length
                raise SimulatedDisconnect("simulated truncated body") from exc
            return
        await send({"type": "http.response.body", "body": part, "more_body": True})
        raise SimulatedDisconnect("simulated connection drop")
