"""Job actions the server accepted are reported as accepted, whatever the body of the 2xx answer.

A job action is sent once and never retried, so its outcome must be told right: a caller told
that an action failed sends it again (a second backup run, a job stopped twice). The status line
says whether the server accepted it. Hypothesis builds the body of a 2xx answer as a server or a
proxy in front of it may send it: readable JSON, random bytes, a ``Content-Encoding`` it does not
match or the client cannot decode, more than ``max_response_bytes``, or cut short by a closed
connection. The client reads it over a real socket (the default transport) and must:

- send the action exactly once;
- where it does not use the body (every action of v1-v7, ``stop``/``enable``/``disable`` on v8),
  return ``None``;
- on v8, whose start answers with the new session, return that session, ``None`` (an empty
  body), or a `VBOError` that says the job was started;
- raise nothing else.

Examples: ``VBO_PROPERTY_EXAMPLES`` (default 150) / 3; derandomized unless
``VBO_PROPERTY_RANDOM=1``, like ``tests/test_properties.py``.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import os
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vbo_async import (
    APIError,
    AuthenticationError,
    JobSession,
    RateLimitedError,
    RetryPolicy,
    ServerError,
    TransportError,
    VBOClient,
    VBOError,
)

from .raw_http import serve_raw

ACTIONS = {
    "start": lambda vbo: vbo.start_job(JOB),
    "stop": lambda vbo: vbo.stop_job(JOB),
    "enable": lambda vbo: vbo.enable_job(JOB),
    "disable": lambda vbo: vbo.disable_job(JOB),
}
PROPERTY = settings(
    max_examples=max(20, int(os.environ.get("VBO_PROPERTY_EXAMPLES", "150")) // 3),
    deadline=None,
    derandomize=os.environ.get("VBO_PROPERTY_RANDOM") != "1",
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
JOB = "9e1c7b3a-5d24-4f86-b0a9-3c8e7f1d2a65"
LIMIT = 4096
"""The client's ``max_response_bytes``."""
NO_WAIT = RetryPolicy(attempts=2, wait_initial=0, wait_max=0, wait_jitter=0, max_retry_after=0)
TOKEN = json.dumps({"access_token": "tok-0123456789", "expires_in": 3600}).encode()
SESSION = {
    "id": "5b0e5d34-8a43-4e2f-9b7e-1f2a3b4c5d6e",
    "jobId": JOB,
    "creationTime": "2026-06-01T12:00:00Z",
    "status": "Running",
    "_links": {"job": {"href": f"/v8/Jobs/{JOB}"}},
}


@attrs.frozen
class Body:
    """The body of the 2xx answer: ``kind`` says what it is, ``head`` the headers it brings."""

    kind: str
    content: bytes
    head: bytes = b""
    declared: int | None = None
    """The Content-Length sent (``len(content)`` when None); longer: the connection closes early."""


@st.composite
def bodies(draw: st.DrawFn) -> Body:
    kind = draw(st.sampled_from(["session", "json", "bytes", "corrupt", "unsupported", "large", "cut"]))
    if kind == "session":
        return Body(kind, json.dumps(SESSION).encode())
    if kind == "json":
        value = draw(st.none() | st.booleans() | st.text() | st.dictionaries(st.text(), st.integers()))
        return Body(kind, json.dumps(value).encode())
    if kind == "bytes":
        return Body(kind, draw(st.binary(max_size=200)))
    if kind == "corrupt":  # a coding the body is not written in
        coding = draw(st.sampled_from([b"gzip", b"deflate", b"br", b"zstd", b"gzip, gzip"]))
        content = draw(st.binary(min_size=1, max_size=200))
        return Body(kind, content, head=b"content-encoding: %b\r\n" % coding)
    if kind == "unsupported":
        coding = draw(st.sampled_from([b"compress", b"x-unknown", b"exi"]))
        return Body(kind, b"{}", head=b"content-encoding: %b\r\n" % coding)
    if kind == "large":
        size = draw(st.integers(min_value=LIMIT + 1, max_value=4 * LIMIT))
        if draw(st.booleans()):  # a bomb: small on the wire, too large once decoded
            return Body(kind, gzip.compress(b" " * size), head=b"content-encoding: gzip\r\n")
        return Body(kind, b" " * size)
    content = json.dumps(SESSION).encode()
    cut = draw(st.integers(min_value=0, max_value=len(content) - 1))
    return Body(kind, content[:cut], declared=len(content))


def raw_client(port: int, version: str, **options: Any) -> VBOClient:
    """A client of the raw server on ``port``, speaking ``version``, retrying nothing it may not."""
    return VBOClient(
        f"http://127.0.0.1:{port}",
        username="svc",
        password="pw-0123456789",
        api_version=version,
        retry=NO_WAIT,
        **options,
    )


async def run_action(version: str, action: str, status: int, body: Body) -> tuple[Any, list[bytes]]:
    """Send ``action`` to a server answering it with ``status`` and ``body``: (what the call
    returned or raised, the request lines the server saw)."""
    seen: list[bytes] = []

    async def answer(head: bytes, _: bytes, writer: asyncio.StreamWriter) -> None:
        line = head.split(b"\r\n", 1)[0]
        seen.append(line)
        if b"/token" in line.lower():
            content, extra, declared = TOKEN, b"content-type: application/json\r\n", len(TOKEN)
        else:
            content, extra = body.content, body.head
            declared = len(content) if body.declared is None else body.declared
        writer.write(b"HTTP/1.1 %d X\r\n%bcontent-length: %d\r\n\r\n%b" % (status, extra, declared, content))
        await writer.drain()
        if declared > len(content):
            writer.close()

    async with serve_raw(answer) as port:
        vbo = raw_client(port, version, max_response_bytes=LIMIT)
        async with vbo:
            try:
                outcome: Any = await ACTIONS[action](vbo)
            except VBOError as error:
                outcome = error
    return outcome, [line for line in seen if b"/token" not in line.lower()]


@PROPERTY
@given(
    version=st.sampled_from(["v1", "v6", "v7", "v8"]),
    action=st.sampled_from(sorted(ACTIONS)),
    status=st.sampled_from([200, 200, 200, 201, 202, 203, 206, 299]),
    body=bodies(),
)
def test_an_accepted_job_action_is_reported_accepted_whatever_its_body(
    version: str, action: str, status: int, body: Body
) -> None:
    outcome, sent = asyncio.run(run_action(version, action, status, body))
    assert len(sent) == 1, sent  # sent once, never again
    assert sent[0].startswith(b"POST "), sent
    if version == "v8" and action == "start":
        if isinstance(outcome, VBOError):
            assert "the job was started" in str(outcome), outcome
        else:
            assert outcome is None or isinstance(outcome, JobSession), outcome
            if body.kind == "session":
                assert outcome is not None
                assert outcome.id == SESSION["id"]
    else:
        assert outcome is None, f"{version} {action} answered {status} ({body.kind}): {outcome!r}"


@pytest.mark.parametrize("version", ["v1", "v6", "v8"])
@pytest.mark.parametrize("action", sorted(ACTIONS))
async def test_an_accepted_job_action_whose_body_never_ends_is_reported_accepted(
    version: str, action: str
) -> None:
    """The 2xx head arrives, then the body stalls until the attempt's timeout: the server
    accepted the action all the same (``no complete answer within`` read as a failure would
    have it sent again)."""
    stalled = asyncio.Event()

    async def answer(head: bytes, _: bytes, writer: asyncio.StreamWriter) -> None:
        if b"/token" in head.split(b"\r\n", 1)[0].lower():
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%b" % (len(TOKEN), TOKEN))
        else:
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{")
            stalled.set()
        await writer.drain()

    async with serve_raw(answer) as port:
        # The timeout ends the stalled body; the token's answer too if the machine stalls that long.
        vbo = raw_client(port, version, timeout=1.0)
        async with vbo:
            try:
                outcome: Any = await ACTIONS[action](vbo)
            except VBOError as error:
                outcome = error
    assert stalled.is_set()
    if version == "v8" and action == "start":
        assert isinstance(outcome, TransportError), outcome
        assert "the job was started" in str(outcome)
    else:
        assert outcome is None, outcome


@pytest.mark.parametrize("version", ["v1", "v8"])
@pytest.mark.parametrize("body", ["too large", "cut short", "stalled"])
@pytest.mark.parametrize(
    ("status", "error", "said"),
    [
        (500, ServerError, "the job may have been started all the same"),
        (503, ServerError, "the job may have been started all the same"),
        (
            401,
            AuthenticationError,
            "refused before the server acted: the job was not started (the token is renewed",
        ),
        (409, APIError, None),
        (429, RateLimitedError, None),
    ],
)
async def test_a_refused_or_failed_job_action_whose_body_cannot_be_read_is_judged_by_its_status(
    version: str, body: str, status: int, error: type[VBOError], said: str | None
) -> None:
    """A 5xx whose body was over ``max_response_bytes`` was a `ResponseTooLargeError` with no
    status and no "may have been started" (a caller sending the start again ran the backup
    twice); a 401 or a 409 whose body stalled or was cut short said "may have been started"
    (the server had refused it), and a 401's token was not renewed. The status line says what
    the server did, whatever came after it."""
    grants: list[bytes] = []
    sent: list[bytes] = []

    async def answer(head: bytes, _: bytes, writer: asyncio.StreamWriter) -> None:
        line = head.split(b"\r\n", 1)[0]
        if b"/token" in line.lower():
            grants.append(line)
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%b" % (len(TOKEN), TOKEN))
        else:
            sent.append(line)
            content = b'{"message": "busy", "errorCode": "OperationConflict"}'
            if body == "too large":
                content = b'{"message": "' + b"x" * (LIMIT * 2) + b'"}'
            declared = len(content) + (100 if body != "too large" else 0)
            writer.write(b"HTTP/1.1 %d X\r\ncontent-length: %d\r\n\r\n%b" % (status, declared, content))
            if body == "cut short":
                await writer.drain()
                writer.close()
                return
        await writer.drain()

    async with serve_raw(answer) as port:
        vbo = raw_client(
            port, version, timeout=1.0, max_response_bytes=LIMIT
        )  # the timeout ends a stalled body
        async with vbo:
            with pytest.raises(VBOError) as caught:
                await vbo.start_job(JOB)
            granted = len(grants)
    assert type(caught.value) is error, caught.value
    if isinstance(caught.value, APIError):  # an AuthenticationError is none
        assert caught.value.status_code == status
    assert len(sent) == 1  # sent once, never again
    message = str(caught.value)
    assert "its body could not be read" in message
    if said is None:
        assert "may have been" not in message
    else:
        assert said in message
    assert granted == (2 if status == 401 else 1)  # a 401's token renewed, as when its body is read


async def test_a_failed_job_action_is_logged_as_an_accepted_one_is(caplog: pytest.LogCaptureFixture) -> None:
    """``configure_logging("info")`` shows job actions: only the accepted ones were logged, so an
    audit of the log missed exactly those a 5xx left in doubt ("may have been started")."""
    answers = iter([204, 503])

    async def answer(head: bytes, _: bytes, writer: asyncio.StreamWriter) -> None:
        if b"/token" in head.split(b"\r\n", 1)[0].lower():
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%b" % (len(TOKEN), TOKEN))
        else:
            writer.write(b"HTTP/1.1 %d X\r\ncontent-length: 0\r\n\r\n" % next(answers))
        await writer.drain()

    caplog.set_level(logging.INFO, logger="vbo_async")
    async with serve_raw(answer) as port:
        base = f"http://127.0.0.1:{port}"
        async with raw_client(port, "v8") as vbo:
            await vbo.stop_job(JOB)
            with pytest.raises(ServerError):
                await vbo.start_job(JOB)
    said = [record.getMessage() for record in caplog.records if "job action" in record.getMessage()]
    assert said[0] == f"job action stop sent to {base}/v8/Jobs/{JOB}/stop"
    assert said[1].startswith("job action start failed: HTTP 503: ")
    assert said[1].endswith(
        "the job may have been started all the same: check it before sending the action again "
        f"(POST {base}/v8/Jobs/{JOB}/start)"
    )
    assert len(said) == 2
