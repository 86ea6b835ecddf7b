"""Request overhead: ``organization_jobs`` through the in-process simulator versus raw httpx + json.loads."""

from __future__ import annotations

import asyncio
import json
import statistics
from collections.abc import Callable

import httpx
import orjson
from _common import Table, Timing, fmt_seconds, time_async
from _decode import client_decode, client_decoder

from vbo_async import VBOClient
from vbo_async.simulator import SimulatorConfig, create_app

__all__ = ["run"]

BASE = "https://vbo.test:4443"
CLIENT = "vbo-async organization_jobs(org)"
RAW = "raw httpx get + json.loads (the raw request)"
RAW_GET = "raw httpx get, body not parsed"
DECODE = "vbo-async decode of that body, as the client does it"
JSON_LOADS = "json.loads of that body"
PASSWORD_FORM = {"grant_type": "password", "username": "admin", "password": "admin"}

TransportFactory = Callable[[], httpx.AsyncBaseTransport]


def _canned(token: bytes, body: bytes) -> TransportFactory:
    """A transport replaying the simulator's answers without running it: isolates client-side costs."""

    def handler(request: httpx.Request) -> httpx.Response:
        content = token if request.url.path.lower().endswith("/token") else body
        return httpx.Response(200, content=content, headers={"Content-Type": "application/json"})

    return lambda: httpx.MockTransport(handler)


async def _measure(
    transport: TransportFactory, path: str, jobs: int, repeats: int, number: int
) -> dict[str, Timing]:
    """Interleaved rounds of the five measurements against transports from ``transport``."""
    async with (
        VBOClient(BASE, username="admin", password="admin", api_version="v1", transport=transport()) as vbo,
        httpx.AsyncClient(transport=transport(), base_url=BASE) as raw,
    ):
        token = await raw.post("/v1/Token", data=PASSWORD_FORM)
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        body = (await raw.get(path, headers=headers)).content
        decode_body = client_decode(client_decoder(), "v1")
        org_id = path.split("/")[3]
        assert len(await vbo.organization_jobs(org_id)) == len(json.loads(body)) == jobs

        async def client() -> object:
            return await vbo.organization_jobs(org_id)

        async def raw_request() -> object:
            response = await raw.get(path, headers=headers)
            return json.loads(response.content)

        async def raw_get() -> object:
            return (await raw.get(path, headers=headers)).content

        async def decode() -> object:
            return decode_body(body)

        async def loads() -> object:
            return json.loads(body)

        return await time_async(
            {CLIENT: client, RAW: raw_request, RAW_GET: raw_get, DECODE: decode, JSON_LOADS: loads},
            repeats=repeats,
            number=number,
        )


async def _both(jobs: int, repeats: int, number: int) -> tuple[dict[str, Timing], dict[str, Timing], int]:
    app = create_app(SimulatorConfig(seed=3, organizations=1, jobs_per_organization=(jobs, jobs)))
    (org_id,) = app.state.simulator.organization_ids()
    path = f"/v1/Organizations/{org_id}/Jobs"

    def simulator() -> httpx.AsyncBaseTransport:
        return httpx.ASGITransport(app=app)

    async with httpx.AsyncClient(transport=simulator(), base_url=BASE) as raw:
        token = (await raw.post("/v1/Token", data=PASSWORD_FORM)).content
        bearer = {"Authorization": f"Bearer {orjson.loads(token)['access_token']}"}
        body = (await raw.get(path, headers=bearer)).content
    live = await _measure(simulator, path, jobs, repeats, number)
    canned = await _measure(_canned(token, body), path, jobs, repeats, number * 3)
    return live, canned, len(body)


def _per_round(timings: dict[str, Timing], subtract: str, over: dict[str, Timing]) -> list[float]:
    """(client − ``subtract`` − decode) / raw request of ``over``, per round (a round's
    measurements ran back to back, so they share the machine's mood)."""
    return [
        (c - g - d) / r
        for c, g, d, r in zip(
            timings[CLIENT].samples,
            timings[subtract].samples,
            timings[DECODE].samples,
            over[RAW].samples,
            strict=True,
        )
    ]


def _quartiles(values: list[float]) -> str:
    if len(values) < 4:
        return "n/a"
    q1, _, q3 = statistics.quantiles(values, n=4)
    return f"{q1:+.1%} … {q3:+.1%}"


def run(*, smoke: bool) -> list[str]:
    """Print the overhead table; return the verdict."""
    jobs = 10 if smoke else 100
    repeats, number = (3, 1) if smoke else (101, 3)
    live, canned, size = asyncio.run(_both(jobs, repeats, number))
    table = Table(
        f"One organization with {jobs} jobs ({size / 1024:.0f} KiB of JSON), medians of {repeats} rounds",
        ["measurement", "in-process simulator", "IQR/median", "canned answer", "IQR/median"],
    )
    for name in (CLIENT, RAW, RAW_GET, DECODE, JSON_LOADS):
        table.add(
            name,
            fmt_seconds(live[name].median),
            f"{live[name].spread:.0%}",
            fmt_seconds(canned[name].median),
            f"{canned[name].spread:.0%}",
        )
    machinery = _per_round(live, RAW_GET, live)
    brief = _per_round(live, RAW, live)
    canned_machinery = [
        c - g - d
        for c, g, d in zip(
            canned[CLIENT].samples, canned[RAW_GET].samples, canned[DECODE].samples, strict=True
        )
    ]
    cross = statistics.median(canned_machinery) / live[RAW].median
    table.add(
        "client − raw get − decode (client machinery)",
        f"{statistics.median(machinery):+.1%} of raw",
        "",
        fmt_seconds(statistics.median(canned_machinery)),
        "",
    )
    table.add(
        "client − raw − decode (the brief's formula)", f"{statistics.median(brief):+.1%} of raw", "", "", ""
    )
    table.notes.append(
        "Overhead rows are medians over rounds of values computed within each round (a round's five "
        f"measurements ran back to back); interquartile ranges {_quartiles(machinery)} (machinery) and "
        f"{_quartiles(brief)} (brief's formula). The canned column replays the simulator's answer from an "
        "httpx.MockTransport, so neither side pays for the simulator: the client's machinery there, "
        f"{fmt_seconds(statistics.median(canned_machinery))}, is {cross:+.1%} of the simulated raw request."
    )
    table.print()
    beyond, literal = statistics.median(machinery), statistics.median(brief)
    worst = max(beyond, literal, cross)
    verdict = (
        f"request overhead ({jobs} jobs): client machinery {beyond:+.1%} of the raw request "
        f"(canned cross-check {cross:+.1%}, brief's formula {literal:+.1%}); goal ≤ 15% → "
        f"{'MET' if worst <= 0.15 else 'NOT MET'}"
    )
    print("*", verdict, "\n")
    return [verdict]
