"""Decode benchmark: v1 and v8 jobs via ``organization_jobs`` and the decoder, against orjson and pydantic.

Every scenario (API version x number of jobs x backup windows shared or all distinct) is one
table whose rows ran interleaved in one event loop: the floor (``orjson.loads`` of the same
bytes), the rivals, and vbo-async four ways: ``VBOClient.organization_jobs`` over an
``httpx.MockTransport`` serving the body (the whole request path: auth flow, retry wrapper,
bounded streaming, shared-request task, paging), and `Decoder.page` on the same bytes, each on a
warm client (its token, hooks and caches in place) and on a fresh one (made just before the
timed call; the call pays the token request, binding the hooks and empty caches). A last table
times the first client of a new process (`_fresh_process`), which also generates the decoder's
code.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import ssl
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
from _common import Fresh, Table, Timing, fmt_ratio, fmt_seconds, time_async
from _data import ORGANIZATION, token_body, wire_body
from _rivals import msgspec_lax, msgspec_strict, msgspec_v8, pydantic_adapter, pydantic_v8_adapter

from vbo_async import Job, VBOClient
from vbo_async._decode import Decoder
from vbo_async._dialects import DIALECTS

__all__ = ["candidates", "client_decode", "client_decoder", "run"]

BASE = "https://vbo.test:4443"
VERSIONS = ("v1", "v8")
FLOOR = "orjson.loads → dicts (the floor)"
FLOOR_NO_GC = "orjson.loads, collector paused"
MSGSPEC_STRICT = "msgspec Structs, strict (string booleans typed `Union[str, bool]`)"
MSGSPEC_LAX = "msgspec Structs, strict=False (`bool`)"
MSGSPEC_V8 = "msgspec Structs, strict (v8 sends real booleans)"
PYDANTIC = "pydantic v2 TypeAdapter.validate_json(b)"
REQUEST_WARM = "vbo-async organization_jobs(org), warm client"
REQUEST_FRESH = "vbo-async organization_jobs(org), fresh client (token request included)"
PAGE_WARM = "vbo-async Decoder.page(b), warm client"
PAGE_FRESH = "vbo-async Decoder.page(b), fresh client"
OURS = (REQUEST_WARM, REQUEST_FRESH, PAGE_WARM, PAGE_FRESH)
GOAL_FLOOR = 2.5
"""Goal: vbo-async takes at most this many times ``orjson.loads`` of the same bytes."""

# Kept for the scaling and memory benchmarks, which time v1 bodies with the decoder alone.
VBO = "vbo-async Decoder.many(orjson.loads(b), Job)"
VBO_PAGE = "vbo-async Decoder.page(b, Job), the client's path"
VBO_PAGE_KEPT = "vbo-async Decoder.page(b, Job) + the young-generation pass it defers"

_CONTEXT = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
"""A mock transport never uses TLS: a bare context spares loading the system CAs per client."""
_clients: list[VBOClient] = []


# --- the decoder alone (also used by the scaling and memory benchmarks) -------------------------------


def client_decoder() -> Decoder:
    """The decoder of a real (never opened) client: its converter binds links to that client."""
    client = VBOClient(BASE, username="u", password="p", verify=_CONTEXT)
    _clients.append(client)  # the decoder's links refer to the client's fetcher; keep it alive
    return client._fetcher.decoder


def client_decode(decoder: Decoder, version: str = "v1") -> Callable[[bytes], list[Job]]:
    """What the client does with a collection body of ``version``: `Decoder.page` (parse and
    structure with the collector paused)."""
    dialect = DIALECTS[version]
    return lambda body: decoder.page(body, Job, dialect)[0]


def candidates(body: bytes, decoder: Decoder, *, rivals: bool = True) -> dict[str, Callable[[], object]]:
    """The scaling benchmark's candidates: each callable decodes ``body`` (a JSON array of v1
    jobs) from scratch; nothing parsed is kept between calls."""
    loads = orjson.loads
    dialect = DIALECTS["v1"]
    many = decoder.many
    decode = client_decode(decoder)
    chosen: dict[str, Callable[[], object]] = {
        FLOOR: lambda: loads(body),
        FLOOR_NO_GC: _paused(lambda: loads(body)),
        MSGSPEC_STRICT: lambda: msgspec_strict.decode(body),
        MSGSPEC_LAX: lambda: msgspec_lax.decode(body),
        PYDANTIC: lambda: pydantic_adapter.validate_json(body),
        VBO: lambda: many(loads(body), Job, dialect),
        VBO_PAGE: lambda: decode(body),
        VBO_PAGE_KEPT: _then_young_pass(lambda: decode(body)),
    }
    if not rivals:
        keep = (FLOOR, FLOOR_NO_GC, PYDANTIC, VBO, VBO_PAGE, VBO_PAGE_KEPT)
        chosen = {name: fn for name, fn in chosen.items() if name in keep}
    return chosen


def _paused(fn: Callable[[], object]) -> Callable[[], object]:
    def call() -> object:
        gc.disable()
        try:
            return fn()
        finally:
            gc.enable()

    return call


def _then_young_pass(fn: Callable[[], object]) -> Callable[[], object]:
    """``fn`` and the young-generation collection an application keeping the result would pay."""

    def call() -> object:
        result = fn()
        gc.collect(0)
        return result

    return call


# --- one scenario: rivals and vbo-async four ways, interleaved ----------------------------------------


def _transport(version: str, body: bytes) -> httpx.MockTransport:
    """Serves the token answer on the token endpoint and ``body`` on every other path."""
    token = token_body(version)
    json_headers = {"Content-Type": "application/json"}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.lower().endswith("/token"):
            return httpx.Response(200, content=token, headers=json_headers)
        return httpx.Response(200, content=body, headers=json_headers)

    return httpx.MockTransport(handler)


def _client(version: str, transport: httpx.MockTransport) -> VBOClient:
    return VBOClient(BASE, username="admin", password="admin", api_version=version, transport=transport)


def _rivals(version: str, body: bytes) -> dict[str, Callable[[], object]]:
    loads = orjson.loads
    rivals: dict[str, Callable[[], object]] = {
        FLOOR: lambda: loads(body),
        FLOOR_NO_GC: _paused(lambda: loads(body)),
    }
    if version == "v1":
        rivals[MSGSPEC_STRICT] = lambda: msgspec_strict.decode(body)
        rivals[MSGSPEC_LAX] = lambda: msgspec_lax.decode(body)
        rivals[PYDANTIC] = lambda: pydantic_adapter.validate_json(body)
    else:
        rivals[MSGSPEC_V8] = lambda: msgspec_v8.decode(body)
        rivals[PYDANTIC] = lambda: pydantic_v8_adapter.validate_json(body)
    return rivals


def _asynced(fn: Callable[[], object]) -> Callable[[], Awaitable[object]]:
    async def call() -> object:
        return fn()

    return call


async def _scenario(version: str, body: bytes, count: int, *, repeats: int, number: int) -> dict[str, Timing]:
    """Interleaved timings of every candidate on ``body`` (``count`` jobs of ``version``)."""
    transport = _transport(version, body)
    dialect = DIALECTS[version]
    url = f"{BASE}/{version}/{dialect.route('organization_jobs').render(organization=ORGANIZATION)}"
    warm = _client(version, transport)
    jobs = await warm.organization_jobs(ORGANIZATION)
    check_equivalent(version, body, jobs)
    del jobs
    warm_page = warm._fetcher.decoder.page

    def fresh_request() -> tuple[Callable[[], Awaitable[object]], Callable[[], Awaitable[None]]]:
        client = _client(version, transport)
        return (lambda: client.organization_jobs(ORGANIZATION)), client.aclose

    def fresh_page() -> tuple[Callable[[], Awaitable[object]], Callable[[], Awaitable[None]]]:
        client = _client(version, transport)
        page = client._fetcher.decoder.page
        return _asynced(lambda: page(body, Job, dialect, url=url)), client.aclose

    chosen: dict[str, Callable[[], Awaitable[object]] | Fresh] = {
        name: _asynced(fn) for name, fn in _rivals(version, body).items()
    }
    chosen[REQUEST_WARM] = lambda: warm.organization_jobs(ORGANIZATION)
    chosen[REQUEST_FRESH] = Fresh(fresh_request)
    chosen[PAGE_WARM] = _asynced(lambda: warm_page(body, Job, dialect, url=url))
    chosen[PAGE_FRESH] = Fresh(fresh_page)
    try:
        return await time_async(chosen, repeats=repeats, number=number)
    finally:
        await warm.aclose()


def check_equivalent(version: str, body: bytes, through_client: list[Job]) -> None:
    """Fail loudly if the decoders disagree on what the jobs say (so the timings compare like with
    like), or if the request path decoded something else than the decoder alone."""
    data = orjson.loads(body)
    dicts: list[dict[str, Any]] = data if version == "v1" else data["results"]
    decoder = client_decoder()
    ours, _ = decoder.page(body, Job, DIALECTS[version])
    assert through_client == ours
    if version == "v1":
        rivals: list[list[Any]] = [
            list(msgspec_lax.decode(body)),
            list(pydantic_adapter.validate_json(body)),
        ]
        strict = msgspec_strict.decode(body)
        assert [job.is_enabled for job in strict] == [wire["isEnabled"] for wire in dicts]  # still strings
    else:
        rivals = [
            list(msgspec_v8.decode(body).results),
            list(pydantic_v8_adapter.validate_json(body).results),
        ]
    assert all(len(decoded) == len(dicts) == len(ours) for decoded in rivals)
    for index, (wire, job) in enumerate(zip(dicts, ours, strict=True)):
        for rival in rivals:
            _same(version, wire, job, rival[index])


def _same(version: str, wire: dict[str, Any], job: Job, rival: Any) -> None:
    assert job.id == rival.id == wire["id"]
    assert job.is_enabled is rival.is_enabled
    assert _close(job.last_run, rival.last_run)  # msgspec rounds a 7th fractional digit, the others cut it
    assert _close(job.next_run, rival.next_run)
    policy = job.schedule_policy
    assert policy is not None
    assert rival.schedule_policy is not None
    assert policy.retry_enabled is rival.schedule_policy.retry_enabled
    assert policy.backup_window is not None
    flags = policy.backup_window.backup_intervals_array
    if version == "v1":
        window = wire["schedulePolicy"]["backupWindow"]["backupIntervalsArray"]
        assert list(rival.schedule_policy.backup_window.backup_intervals_array) == window
        repository = rival.links.repository
    else:
        window = wire["schedulePolicy"]["backupWindowSettings"]["backupWindow"]
        assert list(rival.schedule_policy.backup_window_settings.backup_window) == window
        repository = rival.links.backup_repository
        assert job.organization_id == rival.organization_id == wire["organizationId"]
        assert job.e_tag == rival.e_tag
    assert list(flags) == window
    assert job.links.repository is not None
    assert job.links.repository.href == repository.href


def _close(a: dt.datetime | None, b: dt.datetime | None) -> bool:
    if a is None or b is None:
        return a is b
    return abs(a - b) <= dt.timedelta(microseconds=1)


def _sizes(smoke: bool) -> tuple[int, ...]:
    return (10, 30) if smoke else (100, 10_000)


def _rounds(count: int, smoke: bool) -> tuple[int, int]:
    """(repeats, calls per sample)."""
    if smoke:
        return 2, 1
    if count <= 1000:
        return 41, max(1, 500 // count)
    return 11, 1


def _windows(distinct: bool) -> str:
    return "every window distinct" if distinct else "shared windows"


def _scenario_table(version: str, count: int, distinct: bool, timings: dict[str, Timing], size: int) -> Table:
    per_job = size / count / 1024
    table = Table(
        f"Decode {count:,} {version} jobs, {_windows(distinct)} ({per_job:.1f} KiB of JSON per job)",
        ["decoder", "per job", "per batch", "× orjson floor", "× pydantic v2", "IQR/median"],
    )
    for name, timing in timings.items():
        table.add(
            name,
            fmt_seconds(timing.median / count),
            fmt_seconds(timing.median),
            fmt_ratio(timing.ratio_to(timings[FLOOR])),
            fmt_ratio(timing.ratio_to(timings[PYDANTIC])),
            f"{timing.spread:.0%}",
        )
    return table


Row = tuple[str, int, bool, str, float, float]
"""(version, jobs, distinct windows, candidate, × floor, × pydantic)."""


def _label(version: str, count: int, distinct: bool, name: str) -> str:
    """``v8/100/distinct/fresh/request``: a row of the goals, briefly."""
    client = "warm" if "warm" in name else "fresh" if "fresh" in name else "first"
    path = "request" if "organization_jobs" in name else "page"
    return f"{version}/{count:,}/{'distinct' if distinct else 'shared'}/{client}/{path}"


def _met(floor: float, pydantic: float) -> bool:
    return floor <= GOAL_FLOOR and pydantic < 1


def _goals_table(rows: list[Row]) -> Table:
    table = Table(
        f"Goals: vbo-async ≤ {GOAL_FLOOR:.2f}× orjson.loads of the same bytes and < 1.00× pydantic v2 "
        "(ratios are medians of per-round ratios within each scenario's run)",
        ["version", "jobs", "backup windows", "client", "path", "× orjson.loads", "× pydantic v2", "goal"],
    )
    for version, count, distinct, name, floor, pydantic in rows:
        client = "warm" if "warm" in name else "fresh"
        path = "organization_jobs" if "organization_jobs" in name else "Decoder.page"
        table.add(
            version,
            f"{count:,}",
            "distinct" if distinct else "shared",
            client,
            path,
            fmt_ratio(floor),
            fmt_ratio(pydantic),
            "met" if _met(floor, pydantic) else "NOT MET",
        )
    return table


# --- the first client of a new process ---------------------------------------------------------------

_CHILD = """
import asyncio, gc, ssl, statistics, sys, time
sys.path.insert(0, sys.argv[5])
import httpx, orjson
from vbo_async import Job, VBOClient
from vbo_async._dialects import DIALECTS

version, what = sys.argv[1], sys.argv[2]
body = open(sys.argv[3], "rb").read()
token = open(sys.argv[4], "rb").read()
headers = {"Content-Type": "application/json"}


def handler(request):
    content = token if request.url.path.lower().endswith("/token") else body
    return httpx.Response(200, content=content, headers=headers)


async def main():
    client = VBOClient("https://vbo.test:4443", username="admin", password="admin", api_version=version,
                       transport=httpx.MockTransport(handler))
    dialect = DIALECTS[version]
    gc.collect()
    started = time.perf_counter()
    if what == "request":
        jobs = await client.organization_jobs("%(organization)s")
    else:
        jobs = client._fetcher.decoder.page(body, Job, dialect)[0]
    first = time.perf_counter() - started
    del jobs
    await client.aclose()
    from _rivals import pydantic_adapter, pydantic_v8_adapter
    adapter = pydantic_adapter if version == "v1" else pydantic_v8_adapter
    adapter.validate_json(body)
    floors, rivals = [], []
    for _ in range(5):
        gc.collect()
        started = time.perf_counter()
        orjson.loads(body)
        floors.append(time.perf_counter() - started)
        gc.collect()
        started = time.perf_counter()
        adapter.validate_json(body)
        rivals.append(time.perf_counter() - started)
    print(first, statistics.median(floors), statistics.median(rivals))


asyncio.run(main())
""" % {"organization": ORGANIZATION}  # noqa: UP031 - the child's own braces stay as they are

FIRST_REQUEST = "organization_jobs(org), first call of the process"
FIRST_PAGE = "Decoder.page(b), first call of the process"


def _fresh_process(smoke: bool) -> tuple[Table, list[Row]]:
    """The first decode of a new process (after imports, with the client made): it also pays what
    a process does once per API version, generating and compiling the decoder's code. Each
    sample is a new process; its ratios are over ``orjson.loads`` and pydantic's warm
    ``validate_json`` of the same bytes, timed afterwards in that process (medians of 5)."""
    table = Table(
        "First decode of a new process, every window distinct (each sample a new process; ratios "
        "over orjson.loads and pydantic's warm validate_json timed in the same process)",
        ["version", "jobs", "path", "first call", "× orjson.loads", "× pydantic v2", "samples", "goal"],
    )
    rows: list[Row] = []
    bench = str(Path(__file__).resolve().parent)
    with tempfile.TemporaryDirectory() as directory:
        for version in VERSIONS:
            token_path = Path(directory) / f"token-{version}.json"
            token_path.write_bytes(token_body(version))
            for count in _sizes(smoke)[: 1 if smoke else None]:  # smoke: one new process per path
                body_path = Path(directory) / f"{version}-{count}.json"
                body_path.write_bytes(wire_body(version, count, distinct=True))
                samples = 1 if smoke else (9 if count <= 1000 else 3)
                for what, name in (("request", FIRST_REQUEST), ("page", FIRST_PAGE)):
                    measured = []
                    for _ in range(samples):
                        done = subprocess.run(
                            [
                                sys.executable,
                                "-c",
                                _CHILD,
                                version,
                                what,
                                str(body_path),
                                str(token_path),
                                bench,
                            ],
                            capture_output=True,
                            text=True,
                            check=True,
                        )
                        first, floor, pydantic = (float(x) for x in done.stdout.split())
                        measured.append((first, first / floor, first / pydantic))
                    first = statistics.median(m[0] for m in measured)
                    floor = statistics.median(m[1] for m in measured)
                    pydantic = statistics.median(m[2] for m in measured)
                    rows.append((version, count, True, name, floor, pydantic))
                    table.add(
                        version,
                        f"{count:,}",
                        name,
                        fmt_seconds(first),
                        fmt_ratio(floor),
                        fmt_ratio(pydantic),
                        str(samples),
                        "met" if _met(floor, pydantic) else "NOT MET",
                    )
    return table, rows


def run(*, smoke: bool) -> list[str]:
    """Print the decode tables; return the verdicts."""
    rows: list[Row] = []
    for version in VERSIONS:
        for count in _sizes(smoke):
            for distinct in (False, True):
                body = wire_body(version, count, distinct=distinct)
                repeats, number = _rounds(count, smoke)
                timings = asyncio.run(_scenario(version, body, count, repeats=repeats, number=number))
                _scenario_table(version, count, distinct, timings, len(body)).print()
                for name in OURS:
                    floor = timings[name].ratio_to(timings[FLOOR])
                    pydantic = timings[name].ratio_to(timings[PYDANTIC])
                    rows.append((version, count, distinct, name, floor, pydantic))
                del body, timings
    _goals_table(rows).print()
    process_table, process_rows = _fresh_process(smoke)
    process_table.print()
    met = sum(_met(floor, pydantic) for *_, floor, pydantic in rows)
    missed = [
        f"{_label(version, count, distinct, name)} {fmt_ratio(floor)}/{fmt_ratio(pydantic)}"
        for version, count, distinct, name, floor, pydantic in rows
        if not _met(floor, pydantic)
    ]
    first_met = sum(_met(floor, pydantic) for *_, floor, pydantic in process_rows)
    verdicts = [
        f"decode goals (≤ {GOAL_FLOOR:.2f}× orjson.loads and < 1.00× pydantic v2; v1 and v8, N = "
        f"{' and '.join(f'{n:,}' for n in _sizes(smoke))}, shared and distinct windows, warm and fresh "
        f"client, organization_jobs and Decoder.page): {met} of {len(rows)} rows met"
        + ("" if not missed else " (not met, × floor/× pydantic: " + ", ".join(missed) + ")"),
        f"decode, first call of a new process (every window distinct): {first_met} of {len(process_rows)} "
        "rows met: "
        + ", ".join(
            f"{_label(version, count, True, name)} {fmt_ratio(floor)}/{fmt_ratio(pydantic)}"
            for version, count, _, name, floor, pydantic in process_rows
        )
        + " (× floor/× pydantic)",
    ]
    for line in verdicts:
        print("*", line)
    print()
    return verdicts
