"""Decode benchmark: the bytes of N v1 jobs into dicts, msgspec Structs, pydantic and vbo-async models."""

from __future__ import annotations

import datetime as dt
import gc
import statistics
from collections.abc import Callable
from typing import Any

import orjson
from _common import Table, Timing, fmt_ratio, fmt_seconds, time_sync
from _data import distinct_windows, wire_jobs
from _rivals import msgspec_lax, msgspec_strict, pydantic_adapter

from vbo_async import Job, VBOClient
from vbo_async._decode import Decoder

__all__ = ["candidates", "client_decoder", "run"]

FLOOR = "orjson.loads → dicts (the floor)"
FLOOR_NO_GC = "orjson.loads, collector paused"
MSGSPEC_STRICT = "msgspec Structs, strict (string booleans typed `Union[str, bool]`)"
MSGSPEC_LAX = "msgspec Structs, strict=False (`bool`)"
PYDANTIC = "pydantic v2 TypeAdapter(list[Job]).validate_json(b)"
VBO = "vbo-async Decoder.many(orjson.loads(b), Job)"
VBO_PAGE = "vbo-async Decoder.page(b, Job), the client's path"
VBO_PAGE_KEPT = "vbo-async Decoder.page(b, Job) + the young-generation pass it defers"

_clients: list[VBOClient] = []


def client_decoder() -> Decoder:
    """The decoder of a real (never opened) client: its converter binds links to that client."""
    client = VBOClient("https://x:4443", username="u", password="p")
    _clients.append(client)  # the decoder's links refer to the client's fetcher; keep it alive
    return client._fetcher.decoder


def client_decode(decoder: Decoder) -> Callable[[bytes], list[Job]]:
    """What the client does with a collection body: `Decoder.page` where the library has it
    (parse and structure with the collector paused), else ``many(orjson.loads(body))``."""
    page = getattr(decoder, "page", None)
    if page is None:
        return lambda body: decoder.many(orjson.loads(body), Job)
    return lambda body: page(body, Job)[0]  # type: ignore[no-any-return]


def _paused(fn: Callable[[], object]) -> Callable[[], object]:
    def call() -> object:
        gc.disable()
        try:
            return fn()
        finally:
            gc.enable()

    return call


def _then_young_pass(fn: Callable[[], object]) -> Callable[[], object]:
    """``fn`` and the young-generation collection that the next allocation would trigger anyway.

    With the collector paused during a call, the objects it creates are counted in generation 0
    and examined by the first collection after it. A benchmark that drops the result at once never
    pays that pass; an application that keeps the jobs does, so it is timed here (with the result
    still alive, as it would be)."""

    def call() -> object:
        result = fn()
        gc.collect(0)
        return result

    return call


def candidates(body: bytes, decoder: Decoder, *, rivals: bool = True) -> dict[str, Callable[[], object]]:
    """What is timed: each callable decodes ``body`` (a JSON array of v1 jobs) from scratch.

    Nothing parsed is kept between calls: the collector's work depends on what is alive, so the
    heap holds only the bytes, the decoders and the interpreter's own objects."""
    loads = orjson.loads
    many = decoder.many
    chosen: dict[str, Callable[[], object]] = {
        FLOOR: lambda: loads(body),
        FLOOR_NO_GC: _paused(lambda: loads(body)),
        MSGSPEC_STRICT: lambda: msgspec_strict.decode(body),
        MSGSPEC_LAX: lambda: msgspec_lax.decode(body),
        PYDANTIC: lambda: pydantic_adapter.validate_json(body),
        VBO: lambda: many(loads(body), Job),
    }
    if hasattr(decoder, "page"):
        decode = client_decode(decoder)
        chosen[VBO_PAGE] = lambda: decode(body)
        chosen[VBO_PAGE_KEPT] = _then_young_pass(lambda: decode(body))
    if not rivals:
        keep = (FLOOR, FLOOR_NO_GC, PYDANTIC, VBO, VBO_PAGE, VBO_PAGE_KEPT)
        chosen = {name: fn for name, fn in chosen.items() if name in keep}
    return chosen


def check_equivalent(body: bytes, decoder: Decoder) -> None:
    """Fail loudly if the decoders disagree on what the jobs say (so the timings compare like with like)."""
    dicts: list[dict[str, Any]] = orjson.loads(body)
    ours = decoder.many(orjson.loads(body), Job)
    strict = msgspec_strict.decode(body)
    lax = msgspec_lax.decode(body)
    pyd = pydantic_adapter.validate_json(body)
    assert len(ours) == len(strict) == len(lax) == len(pyd) == len(dicts)
    for wire, a, b, c, d in zip(dicts, ours, strict, lax, pyd, strict=True):
        assert a.id == b.id == c.id == d.id == wire["id"]
        enabled = wire["isEnabled"] == "true"
        assert a.is_enabled is c.is_enabled is d.is_enabled is enabled
        assert b.is_enabled == wire["isEnabled"]  # still the string: the caller must interpret it
        assert a.last_run == d.last_run  # both truncate the 7th fractional digit
        assert _close(a.last_run, b.last_run)  # msgspec rounds the 7th digit
        assert _close(a.last_run, c.last_run)
        assert a.schedule_policy is not None
        assert d.schedule_policy is not None
        assert a.schedule_policy.retry_enabled is d.schedule_policy.retry_enabled
        window = wire["schedulePolicy"]["backupWindow"]["backupIntervalsArray"]
        assert a.schedule_policy.backup_window is not None
        assert d.schedule_policy.backup_window is not None
        assert list(a.schedule_policy.backup_window.backup_intervals_array) == window
        assert list(d.schedule_policy.backup_window.backup_intervals_array or ()) == window
        assert a.links.repository is not None
        assert d.links.repository is not None
        assert a.links.repository.href == d.links.repository.href == wire["_links"]["repository"]["href"]


def _close(a: dt.datetime | None, b: dt.datetime | None) -> bool:
    if a is None or b is None:
        return a is b
    return abs(a - b) <= dt.timedelta(microseconds=1)


def _table(title: str, timings: dict[str, Timing], count: int) -> Table:
    table = Table(
        title,
        ["decoder", "per job", "per batch", "× orjson floor", "× floor, collector paused", "IQR/median"],
    )
    for name, timing in timings.items():
        table.add(
            name,
            fmt_seconds(timing.median / count),
            fmt_seconds(timing.median),
            fmt_ratio(timing.ratio_to(timings[FLOOR])),
            fmt_ratio(timing.ratio_to(timings[FLOOR_NO_GC])),
            f"{timing.spread:.0%}",
        )
    first = timings.get(VBO)
    if first is not None:
        share = statistics.median(
            (v - f) / count for v, f in zip(first.samples, timings[FLOOR].samples, strict=True)
        )
        table.notes.append(
            f"vbo-async's structuring alone (many(orjson.loads(b)) − orjson.loads, per round): "
            f"{fmt_seconds(share)} per job."
        )
    return table


def measure(count: int, *, smoke: bool, variant: str = "simulator") -> tuple[dict[str, Timing], int]:
    """Interleaved timings of every candidate on ``count`` jobs, and the size of their JSON."""
    jobs = wire_jobs(count)
    if variant == "distinct windows":
        jobs = distinct_windows(jobs)
    body = orjson.dumps(jobs)
    del jobs
    decoder = client_decoder()
    check_equivalent(body, decoder)
    if smoke:
        repeats, number = 3, 1
    elif count <= 1000:
        repeats, number = 41, max(1, 2000 // count)
    else:
        repeats, number = 11, 1
    chosen = candidates(body, decoder, rivals=variant == "simulator")
    return time_sync(chosen, repeats=repeats, number=number), len(body)


def _verdict(label: str, timings: dict[str, Timing]) -> str:
    parts = []
    for name, short in (
        (VBO, "many(orjson.loads(b))"),
        (VBO_PAGE, "page(b)"),
        (VBO_PAGE_KEPT, "page(b) + deferred young pass"),
    ):
        if name not in timings:
            continue
        floor = timings[name].ratio_to(timings[FLOOR])
        paused = timings[name].ratio_to(timings[FLOOR_NO_GC])
        pydantic = timings[name].ratio_to(timings[PYDANTIC])
        met = floor <= 2.5 and pydantic < 1
        parts.append(
            f"{short} {fmt_ratio(floor)} the floor ({fmt_ratio(paused)} the collector-paused floor), "
            f"{fmt_ratio(pydantic)} pydantic → {'MET' if met else 'NOT MET'}"
        )
    return f"{label} (goals ≤ 2.50× the orjson floor and < 1.00× pydantic): " + "; ".join(parts)


def run(*, smoke: bool) -> list[str]:
    """Print the decode tables; return one verdict line per size."""
    verdicts = []
    sizes = (10, 100) if smoke else (100, 10_000)
    for count in sizes:
        timings, size = measure(count, smoke=smoke)
        _table(
            f"Decode {count:,} v1 jobs ({size / count / 1024:.1f} KiB of JSON per job)", timings, count
        ).print()
        verdicts.append(_verdict(f"decode N={count:,}", timings))
    stress = 100 if smoke else 10_000
    timings, _ = measure(stress, smoke=smoke, variant="distinct windows")
    _table(
        f"Decode {stress:,} jobs whose backup windows all differ (worst case for window sharing)",
        timings,
        stress,
    ).print()
    verdicts.append(_verdict(f"decode N={stress:,}, every window different", timings))
    for line in verdicts:
        print("*", line)
    print()
    return verdicts
