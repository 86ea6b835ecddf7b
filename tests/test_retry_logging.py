"""How retries are logged: a DEBUG record of the ``vbo_async`` logger per retry, carrying a
`RetryNote`; one INFO record when the client gives up; nothing at WARNING, nothing from any other
logger. A program that configures no logging therefore prints nothing however often its client
retries: Python's last-resort handler shows WARNING and above only.

Before the sending path was rebuilt (2ff99dd), each retry was a WARNING of ``vbo_async`` and
stamina logged its own ``stamina.retry_scheduled`` warning, so such a program wrote two lines to
stderr per retry; the tests below fail there.
"""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest

from vbo_async import RetryPolicy, ServerError, TransportError
from vbo_async._sending import RetryNote

from .conftest import FakeVBO, client_for

TEN = RetryPolicy(attempts=10, wait_initial=0, wait_max=0, wait_jitter=0)
ROOT = Path(__file__).resolve().parents[1]


def check_records(records: list[logging.LogRecord], *, reason: str) -> list[RetryNote]:
    """The retry notes among ``records``, after checking what else was logged."""
    notes = [r.vbo_async_retry for r in records if hasattr(r, "vbo_async_retry")]
    assert all(isinstance(note, RetryNote) for note in notes)
    retries = [r for r in records if hasattr(r, "vbo_async_retry")]
    assert {(r.name, r.levelno) for r in retries} == {("vbo_async", logging.DEBUG)}
    above_debug = [r for r in records if r.levelno > logging.DEBUG]
    assert [(r.name, r.levelno) for r in above_debug] == [("vbo_async", logging.INFO)]
    assert f"{reason}; giving up after {TEN.attempts} attempt(s)" in above_debug[0].getMessage()
    assert {r.name for r in records} == {"vbo_async"}  # no other logger, stamina's included
    return notes


async def test_each_retry_is_one_debug_record_with_a_note_and_giving_up_is_info(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    fake = FakeVBO()
    fake.route("GET", "/v1/Jobs", httpx.Response(503, headers={"Retry-After": "0"}))
    async with client_for(fake, retry=TEN) as vbo:
        with pytest.raises(ServerError):
            await vbo.jobs()
    notes = check_records(caplog.records, reason="HTTP 503")
    assert [note.attempt for note in notes] == list(range(1, TEN.attempts))
    assert {(note.method, note.reason, note.wait_for, note.caused_by) for note in notes} == {
        ("GET", "HTTP 503", 0.0, None)
    }


async def test_a_transport_error_retried_carries_its_error_in_the_note(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)

    def refuse(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/Token"):
            return httpx.Response(200, json={"access_token": "a", "expires_in": 3600})
        raise httpx.ConnectError("connection refused", request=request)

    async with client_for(refuse, retry=TEN) as vbo:
        with pytest.raises(TransportError) as caught:
            await vbo.jobs()
    # The error raised in the end also says how many attempts it took; the log lines name each.
    shown, attempts = re.subn(r" \(gave up after 10 attempts in [0-9]+\.[0-9] s\)", "", str(caught.value))
    assert attempts == 1
    notes = check_records(caplog.records, reason=shown)
    assert len(notes) == TEN.attempts - 1
    assert all(isinstance(note.caused_by, TransportError) for note in notes)


PROGRAM = textwrap.dedent(
    """
    import asyncio, socket
    from tests.raw_http import serve_raw
    from vbo_async import RetryPolicy, ServerError, TransportError, VBOClient

    TEN = RetryPolicy(attempts=10, wait_initial=0, wait_max=0, wait_jitter=0)
    TOKEN = b'{"access_token": "a", "expires_in": 3600}'


    async def answer(head, body, writer):
        if b"/token" in head.split(b"\\r\\n")[0].lower():
            status, content = b"200 OK", TOKEN
        else:
            status, content = b"503 Service Unavailable", b"busy"
        writer.write(b"HTTP/1.1 %s\\r\\ncontent-length: %d\\r\\n\\r\\n%s" % (status, len(content), content))
        await writer.drain()


    async def main():
        # The closed port stays bound (not listening: connections are refused) for the whole run:
        # released at once, the server below could be given the same port number.
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            closed = probe.getsockname()[1]
            async with serve_raw(answer) as port:
                cases = [
                    (f"http://127.0.0.1:{port}", ServerError),
                    (f"http://127.0.0.1:{closed}", TransportError),
                ]
                for url, expected in cases:
                    async with VBOClient(url, username="u", password="p", api_version="v1", retry=TEN) as vbo:
                        try:
                            await vbo.jobs()
                        except expected:
                            pass
                        attempts = vbo.requests_sent
                    assert attempts >= 10, attempts


    asyncio.run(main())
    """
)


def test_a_program_without_logging_prints_nothing_however_often_its_client_retries() -> None:
    """A 503 ten times (token requests work), then a closed port ten times, over the default
    transport; Python's last-resort handler would print any WARNING."""
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert done.stdout == ""
