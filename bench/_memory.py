"""Memory benchmark: tracemalloc's traced memory of decoded jobs versus the same jobs as orjson dicts."""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Callable

import orjson
from _common import Table, fmt_bytes, fmt_ratio
from _data import wire_jobs
from _decode import client_decode, client_decoder
from _rivals import msgspec_lax, pydantic_adapter

from vbo_async import Job
from vbo_async._dialects import V1

__all__ = ["run"]

PAGE = 100
"""Jobs per response when decoding page by page, as a sweep receives them (one organization each)."""
DICTS = "orjson.loads → dicts (the baseline)"
ONE_ARRAY = "vbo-async Decoder.many(orjson.loads(b), Job), one array"
ONE_ARRAY_CONSUMED = "vbo-async, one array as the client decodes it (Decoder.page: many(..., consume=True))"
BY_PAGE = f"vbo-async, {PAGE} jobs per response as the client decodes them (Decoder.page)"


def _signed_bytes(size: int) -> str:
    return ("+" if size >= 0 else "−") + fmt_bytes(abs(size))


class _Trace:
    """Traced bytes over a baseline, with a mark between parsing the JSON and building objects."""

    def __init__(self) -> None:
        gc.collect()
        tracemalloc.reset_peak()
        self.before, _ = tracemalloc.get_traced_memory()
        self.parse_peak: int | None = None

    def parsed(self) -> None:
        """Called once the JSON is parsed: ends the parse phase (orjson's transient buffer)."""
        _, peak = tracemalloc.get_traced_memory()
        self.parse_peak = peak - self.before
        tracemalloc.reset_peak()

    def end(self) -> tuple[int, int, int]:
        """(peak, peak of objects after parsing, retained), in bytes over the baseline."""
        gc.collect()
        current, peak = tracemalloc.get_traced_memory()
        after_parse = peak - self.before
        if self.parse_peak is None:
            return after_parse, after_parse, current - self.before
        return max(self.parse_peak, after_parse), after_parse, current - self.before


def run(*, smoke: bool) -> list[str]:
    """Print the memory table; return the verdict."""
    count = 1_000 if smoke else 100_000
    jobs = wire_jobs(count)
    body = orjson.dumps(jobs)
    del jobs
    parsed = orjson.loads(body)
    pages = [orjson.dumps(parsed[i : i + PAGE]) for i in range(0, len(parsed), PAGE)]
    del parsed
    # A fresh decoder per row, its hooks looked up on one job first: what it then keeps (its
    # shared windows, policies and links) is counted in what the row holds.
    one_decoder, consuming_decoder, page_decoder = client_decoder(), client_decoder(), client_decoder()
    first = orjson.dumps(orjson.loads(pages[0])[:1])
    one_decoder.many(orjson.loads(first), Job, V1)
    consuming_decoder.many(orjson.loads(first), Job, V1)
    decode_page = client_decode(page_decoder)
    decode_page(first)
    gc.collect()

    def dicts(trace: _Trace) -> object:
        parsed = orjson.loads(body)
        trace.parsed()
        return parsed

    def one_array(trace: _Trace) -> object:
        parsed = orjson.loads(body)
        trace.parsed()
        return one_decoder.many(parsed, Job, V1)

    def one_array_consumed(trace: _Trace) -> object:
        # What Decoder.page does with a bare array (parse, then structure releasing each dict),
        # with the mark between the two phases that page itself has no place for.
        parsed = orjson.loads(body)
        trace.parsed()
        return consuming_decoder.many(parsed, Job, V1, consume=True)

    def by_page(trace: _Trace) -> object:
        out: list[Job] = []
        for page in pages:
            out += decode_page(page)
        return out

    candidates: dict[str, Callable[[_Trace], object]] = {
        DICTS: dicts,
        ONE_ARRAY: one_array,
        ONE_ARRAY_CONSUMED: one_array_consumed,
        BY_PAGE: by_page,
        "msgspec Structs, strict=False": lambda _: msgspec_lax.decode(body),
        "pydantic v2 TypeAdapter.validate_json": lambda _: pydantic_adapter.validate_json(body),
    }
    results: dict[str, tuple[int, int, int]] = {}
    tracemalloc.start()
    try:
        for name, build in candidates.items():
            trace = _Trace()
            built = build(trace)
            results[name] = trace.end()
            assert isinstance(built, list)
            assert len(built) == count
            del built
    finally:
        tracemalloc.stop()
    base_peak, _, base_retained = results[DICTS]
    table = Table(
        f"Memory of {count:,} v1 jobs ({len(body) / 2**20:.0f} MiB of JSON), traced by tracemalloc",
        ["decoded as", "peak", "×", "peak after parsing", "×", "held after", "×", "held per job"],
    )
    for name, (peak, objects, retained) in results.items():
        table.add(
            name,
            fmt_bytes(peak),
            fmt_ratio(peak / base_peak),
            fmt_bytes(objects),
            fmt_ratio(objects / base_retained),
            fmt_bytes(retained),
            fmt_ratio(retained / base_retained),
            fmt_bytes(retained / count),
        )
    table.notes.append(
        "× is over the dicts' value in the same column. Bytes over what was traced before each decode "
        "(the JSON input is not counted). `peak` includes orjson's transient parse buffer, which both the "
        "dicts and vbo-async pay (orjson.loads sizes it from the input: here about "
        f"{(base_peak - base_retained) / len(body):.0f}× the JSON); `peak after parsing` is the peak once "
        "the JSON is "
        "parsed: the objects alive at once. `Decoder.many` on one array leaves its input alone, so every "
        "dict stays alive until the last model is built (dicts + models); the client's path releases each "
        "dict once structured; decoding response by response keeps one page of dicts at a time. "
        "vbo-async's rows include what its decoder keeps to share equal values between jobs (backup "
        "windows, schedule policies, links to shared resources; each table bounded)."
    )
    table.print()
    one_peak, one_objects, one_retained = results[ONE_ARRAY_CONSUMED]
    many_objects = results[ONE_ARRAY][1]
    paged_peak = results[BY_PAGE][0]

    def verdict_of(value: int, baseline: int) -> str:
        return f"{fmt_ratio(value / baseline)} ({'MET' if value <= baseline else 'NOT MET'})"

    verdict = (
        f"memory {count:,} jobs, goal no more than the dicts: models held "
        f"{verdict_of(one_retained, base_retained)} the dicts held; peak decoding response by response "
        f"{verdict_of(paged_peak, base_retained)} the dicts held; peak decoding one array "
        f"{verdict_of(one_peak, base_peak)} the dicts' peak (both with orjson's parse buffer); objects "
        f"alive at once after parsing {fmt_ratio(one_objects / base_retained)} the dicts "
        f"({_signed_bytes(one_objects - base_retained)}: the first model and the decoder's tables exist "
        f"before the first dict is released; Decoder.many leaving its input alive: "
        f"{fmt_ratio(many_objects / base_retained)})"
    )
    print("*", verdict, "\n")
    return [verdict]
