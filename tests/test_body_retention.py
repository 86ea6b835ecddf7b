"""A kept error keeps no body: the error of a failed page, resource or read holds its message,
not the megabytes the server sent.

A user keeps errors (a `PollResult`'s per-tenant error until the next sweep, an exporter's last
problem per server, a list of failures to report): each one kept its traceback, whose frames
(the page fetch, the decoder, the body reader) held the body, the parsed JSON or the chunks read
so far, up to ``max_response_bytes`` each. Measured with tracemalloc after the errors are kept
and the client is closed (no timing).
"""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from vbo_async import (
    APIError,
    DecodeError,
    Job,
    NotFoundError,
    ResponseTooLargeError,
    TransportError,
    VBOClient,
    VBOError,
)

from .conftest import FakeVBO, client_for

MiB = 1024 * 1024
SIZE = 8 * MiB
"""Each hostile body's size (the client's ``max_response_bytes`` is 6 MiB for the one too large)."""
KEPT = 3
"""Errors kept per case: leaking, they would hold at least ``KEPT * SIZE // 2``."""


class _Stream(httpx.AsyncByteStream):
    """A body made chunk by chunk as it is read (the test holds none of it)."""

    def __init__(self, parts: Callable[[], list[tuple[bytes, int]]]) -> None:
        self._parts = parts

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece, times in self._parts():
            for _ in range(times):
                yield piece[:1] + piece[1:]  # a new object each time, as a socket reads them


def _padding() -> list[tuple[bytes, int]]:
    return [(b"x" * 65536, SIZE // 65536)]


def _not_json() -> list[tuple[bytes, int]]:
    return [(b'[{"id": "a", "name": "', 1), *_padding()]  # never closed


def _bad_second_job() -> list[tuple[bytes, int]]:
    return [(b'[{"id": "a", "name": "a", "padding": "', 1), *_padding(), (b'"}, {"id": "b", "name": {}}]', 1)]


def _bad_page_links() -> list[tuple[bytes, int]]:
    return [(b'{"results": [{"id": "a", "padding": "', 1), *_padding(), (b'"}], "_links": {"next": 5}}', 1)]


def _answer(status: int, parts: Callable[[], list[tuple[bytes, int]]], **headers: str) -> Any:
    def respond(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, headers=headers, stream=_Stream(parts))

    return respond


CASES: dict[str, tuple[str, Any, type[VBOError], dict[str, Any]]] = {
    "page not JSON": ("jobs", _answer(200, _not_json), DecodeError, {}),
    "page with a job that cannot be decoded": ("jobs", _answer(200, _bad_second_job), DecodeError, {}),
    "page with links that cannot be read": ("jobs", _answer(200, _bad_page_links), DecodeError, {}),
    "page answered 404 with a large body": ("jobs", _answer(404, _padding), NotFoundError, {}),
    "page answered 400 with a large JSON body": ("jobs", _answer(400, _bad_second_job), APIError, {}),
    "resource not JSON": ("job", _answer(200, _not_json), DecodeError, {}),
    "resource that cannot be decoded": ("job", _answer(200, _bad_second_job), DecodeError, {}),
    "page larger than max_response_bytes": (
        "jobs",
        _answer(200, _padding),
        ResponseTooLargeError,
        {"max_response_bytes": 6 * MiB},
    ),
    "page cut short": (
        "jobs",
        _answer(200, _padding, **{"content-length": str(SIZE + 1)}),
        TransportError,
        {},
    ),
}


async def _call(vbo: VBOClient, what: str) -> Any:
    return await (vbo.jobs() if what == "jobs" else vbo.job("a"))


@pytest.mark.parametrize("case", list(CASES))
async def test_a_kept_error_does_not_keep_the_body(case: str) -> None:
    what, answer, expected, options = CASES[case]
    fake = FakeVBO()
    fake.route("GET", "/v1/Jobs", [], answer)
    fake.route("GET", "/v1/Jobs/a", {"id": "a", "name": "a"}, answer)
    kept: list[BaseException] = []
    async with client_for(fake, **options) as vbo:
        await _call(vbo, what)  # warm: the converters and the token are built before measuring
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            for _ in range(KEPT):
                with pytest.raises(expected) as raised:
                    await _call(vbo, what)
                kept.append(raised.value)
                del raised
            gc.collect()
            held = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
    assert len(kept) == KEPT
    assert held < SIZE // 2, f"{held / MiB:.1f} MiB still held by {KEPT} kept errors"


async def test_a_kept_error_of_a_v8_start_does_not_keep_its_answer() -> None:
    """A v8 start answers with the new session: an answer that is not one is an error saying the
    job was started, which a caller keeps (to report it), without the answer's body."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.lower().endswith("/token"):
            return httpx.Response(200, json={"access_token": "tok-0123456789", "expires_in": 3600})
        return httpx.Response(201, stream=_Stream(_bad_second_job))

    kept: list[BaseException] = []
    async with VBOClient(
        "https://vbo.test:4443",
        username="u",
        password="p",
        api_version="v8",
        transport=httpx.MockTransport(handler),
    ) as vbo:
        with pytest.raises(DecodeError):  # warm, as above
            await vbo.start_job("a")
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            for _ in range(KEPT):
                with pytest.raises(DecodeError, match="the job was started") as raised:
                    await vbo.start_job("a")
                kept.append(raised.value)
                del raised
            gc.collect()
            held = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
    assert held < SIZE // 2, f"{held / MiB:.1f} MiB still held by {KEPT} kept errors"


class _Trickle(httpx.AsyncByteStream):
    """``size`` bytes of a JSON array of one string, a byte per chunk (as a server writing a byte
    per packet makes a socket read them)."""

    def __init__(self, size: int) -> None:
        self._size = size

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b'["'
        for _ in range(self._size):
            yield b"x"
        yield b'"]'


async def test_a_body_sent_a_byte_at_a_time_costs_no_object_per_byte() -> None:
    """Each chunk was kept as its own object until the body was joined: about 90 bytes for each
    byte of a body sent a byte at a time (1 MiB cost 90 MiB; ``max_response_bytes`` of 64 MiB,
    gigabytes). Measured at the peak of reading the answer alone (no parse)."""
    size = MiB

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.lower().endswith("/token"):
            return httpx.Response(200, json={"access_token": "tok-0123456789", "expires_in": 3600})
        return httpx.Response(200, stream=_Trickle(size))

    async with VBOClient(
        "https://vbo.test:4443",
        username="u",
        password="p",
        api_version="v8",
        transport=httpx.MockTransport(handler),
    ) as vbo:
        url = "https://vbo.test:4443/v8/Jobs"
        await vbo._fetcher.sender.send("GET", url)  # warm: the token
        gc.collect()
        tracemalloc.start()
        try:
            answer = await vbo._fetcher.sender.send("GET", url)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert answer.body == b'["' + b"x" * size + b'"]'
    assert peak < 4 * size, f"{peak / MiB:.1f} MiB at the peak for a body of {size / MiB:.0f} MiB"


def _listing(fake: FakeVBO, pages: int, per_page: int, last: Any) -> None:
    """``/v1/Jobs`` in ``pages`` page objects of ``per_page`` jobs with 4 KiB names (new strings
    each time asked), then ``last``."""

    def page(number: int) -> Callable[[httpx.Request], httpx.Response]:
        def respond(request: httpx.Request) -> httpx.Response:
            jobs = [{"id": f"job-{number}-{n}", "name": f"{n:04d}" + "n" * 4092} for n in range(per_page)]
            links = {"next": {"href": f"/v1/Jobs?offset={(number + 1) * per_page}"}}
            return httpx.Response(200, json={"results": jobs, "_links": links})

        return respond

    fake.route("GET", "/v1/Jobs", page(0))
    for number in range(1, pages):
        fake.route("GET", f"/v1/Jobs?offset={number * per_page}", page(number))
    fake.route("GET", f"/v1/Jobs?offset={pages * per_page}", last)


@pytest.mark.parametrize("how", ["fetch_all", "iterate"])
async def test_a_kept_error_does_not_keep_the_pages_read_before_it(how: str) -> None:
    """The error of a listing's third page kept, through the frames of the listing (its list
    of what was read, the page read last), every job of the pages before it."""
    fake = FakeVBO()
    _listing(fake, pages=2, per_page=500, last=_answer(200, _not_json))  # 2 x 2 MiB of names
    kept: list[BaseException] = []
    async with client_for(fake) as vbo:

        async def listing() -> Any:
            if how == "fetch_all":
                return await vbo.jobs()
            return [job async for job in vbo._fetcher.iterate(f"{vbo.api_root}/Jobs", Job)]

        with pytest.raises(DecodeError):  # warm
            await listing()
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            for _ in range(KEPT):
                with pytest.raises(DecodeError) as raised:
                    await listing()
                kept.append(raised.value)
                del raised
            gc.collect()
            held = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
    assert held < 2 * MiB, f"{held / MiB:.1f} MiB still held by {KEPT} kept errors"
