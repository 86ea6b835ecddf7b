"""Errors: one tree, readable messages from any body, the request named, nothing else escaping."""

from __future__ import annotations

import pickle
import ssl
from pathlib import Path
from typing import Any

import httpx
import pytest

from vbo_async import (
    APIError,
    AuthenticationError,
    ClientStateError,
    ConfigError,
    DecodeError,
    LinkError,
    NotFoundError,
    NotSupportedError,
    RateLimitedError,
    ResponseTooLargeError,
    ServerError,
    TransportError,
    VBOClient,
    VBOError,
)
from vbo_async._status import _ERROR_READ, error_for_status, read_error_body

from .conftest import BASE, FAST, PASSWORD, USERNAME, FakeVBO, client_for, closed_port, json_response

URL = f"{BASE}/v1/Jobs/j1"


def test_the_exception_tree() -> None:
    for cls in (NotFoundError, RateLimitedError, ServerError):
        assert issubclass(cls, APIError)
    for cls in (
        APIError,
        AuthenticationError,
        DecodeError,
        LinkError,
        TransportError,
        ResponseTooLargeError,
        ClientStateError,
        ConfigError,
    ):
        assert issubclass(cls, VBOError)
    assert issubclass(ConfigError, ValueError)
    assert not issubclass(AuthenticationError, APIError)


ERRORS = [
    APIError("bad", status_code=400, error_code="E1", method="POST", url=URL),
    NotFoundError("gone", status_code=404, method="GET", url=URL),
    RateLimitedError("slow down", status_code=429),
    ServerError("boom", status_code=503, url=URL),
    AuthenticationError("refused", method="POST", url=URL),
    DecodeError("not JSON", path="$[1].name", method="GET", url=URL),
    LinkError("outside", href="https://evil/", relation="next"),
    TransportError("cannot connect", method="GET", url=URL),
    ResponseTooLargeError("too large", method="GET", url=URL),
    ClientStateError("closed"),
    NotSupportedError("no such operation", version="v1", operation="service_instance"),
    ConfigError("bad option"),
]


@pytest.mark.parametrize("error", ERRORS, ids=lambda error: type(error).__name__)
def test_every_error_survives_a_pickle(error: VBOError) -> None:
    """Errors cross process boundaries pickled (multiprocessing, concurrent.futures, a queue of
    log records): an APIError or a NotSupportedError used to fail to unpickle with a TypeError
    (their keyword-only arguments were not in ``args``)."""
    error.add_note("seen in a test")
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert copy.args == error.args
    assert vars(copy) == vars(error)


async def test_api_error_carries_its_context(fake: FakeVBO, vbo: VBOClient) -> None:
    fake.route(
        "POST",
        "/v1/Jobs/j1/Action",
        json_response(
            409, {"message": "Job is already running.", "errorCode": "OperationConflict", "stackTrace": None}
        ),
    )
    with pytest.raises(APIError) as info:
        await vbo.start_job("j1")
    error = info.value
    assert type(error) is APIError
    assert error.status_code == 409
    assert error.message == "Job is already running."
    assert error.error_code == "OperationConflict"
    assert error.method == "POST"
    assert error.url == f"{BASE}/v1/Jobs/j1/Action"
    text = str(error)
    assert "409" in text
    assert "Job is already running." in text
    assert "POST" in text
    assert f"{BASE}/v1/Jobs/j1/Action" in text


async def test_404_is_not_found(fake: FakeVBO, vbo: VBOClient) -> None:
    fake.route("GET", "/v1/Jobs/nope", json_response(404, {"message": "Job was not found."}))
    with pytest.raises(NotFoundError) as info:
        await vbo.job("nope")
    assert info.value.status_code == 404
    assert info.value.message == "Job was not found."
    assert info.value.method == "GET"
    assert info.value.url == f"{BASE}/v1/Jobs/nope"


async def test_unknown_path_is_not_found(fake: FakeVBO, vbo: VBOClient) -> None:
    with pytest.raises(NotFoundError):
        await vbo.organizations()


async def test_5xx_after_the_retries_is_a_server_error(fake: FakeVBO, vbo: VBOClient) -> None:
    fake.route(
        "GET", "/v1/Jobs/j1", json_response(500, {"message": "Database is busy", "stackTrace": "at X.Y()"})
    )
    with pytest.raises(ServerError) as info:
        await vbo.job("j1")
    assert info.value.status_code == 500
    assert info.value.message == "Database is busy"


async def test_429_after_the_retries_is_rate_limited(fake: FakeVBO, vbo: VBOClient) -> None:
    fake.route("GET", "/v1/Jobs/j1", httpx.Response(429, headers={"Retry-After": "0"}))
    with pytest.raises(RateLimitedError) as info:
        await vbo.job("j1")
    assert info.value.status_code == 429
    assert info.value.message == "too many requests"


async def test_a_redirect_is_not_followed(fake: FakeVBO, vbo: VBOClient) -> None:
    fake.route("GET", "/v1/Jobs/j1", httpx.Response(302, headers={"Location": "https://evil.example/"}))
    with pytest.raises(APIError) as info:
        await vbo.job("j1")
    assert info.value.status_code == 302
    assert all(r.url.host == "vbo.test" for r in fake.requests)


@pytest.mark.parametrize(
    ("status", "body", "content_type", "message", "code"),
    [
        (
            400,
            b'{"message": "Parameter validation failed."}',
            "application/json",
            "Parameter validation failed.",
            None,
        ),
        (400, b'{"Message": "The request is invalid."}', "application/json", "The request is invalid.", None),
        (
            400,
            b'{"error": "invalid_grant", "error_description": "The user name or password is incorrect."}',
            "application/json",
            "The user name or password is incorrect.",
            None,
        ),
        (400, b'{"error": "unsupported_grant_type"}', "application/json", "unsupported_grant_type", None),
        (
            404,
            b'{"message": "Not here", "errorCode": "ResourceNotFound"}',
            "application/json",
            "Not here",
            "ResourceNotFound",
        ),
        (404, b"", None, "not found", None),
        (400, b"   ", "application/json", "bad request", None),
        (503, b"", "text/plain", "service unavailable", None),
        (418, b"", None, "request failed", None),
        (
            500,
            b"<!DOCTYPE html><html><head><title>Runtime Error</title></head>"
            b"<body><h1>Server Error in '/' Application.</h1></body></html>",
            "text/html",
            "Runtime Error",
            None,
        ),
        (
            502,
            b"<html><body><h1>502 Bad   Gateway</h1>\n<p>nginx</p></body></html>",
            "text/html",
            "502 Bad Gateway nginx",
            None,
        ),
        (500, b"Something broke", "text/plain", "Something broke", None),
        (500, b'"a JSON string"', "application/json", "a JSON string", None),
        (500, b'{"stackTrace": "at X"}', "application/json", "internal server error", None),
        (500, b"[1, 2]", "application/json", "[1, 2]", None),
        (500, b"\xff\xfe not utf-8", "text/plain", "\ufffd\ufffd not utf-8", None),
    ],
)
def test_error_bodies_give_readable_messages(
    status: int, body: bytes, content_type: str | None, message: str, code: str | None
) -> None:
    error = error_for_status(status, body, method="GET", url=URL, content_type=content_type)
    assert isinstance(error, APIError)
    assert error.status_code == status
    assert error.message == message
    assert error.error_code == code
    assert error.method == "GET"
    assert error.url == URL
    assert message in str(error)


@pytest.mark.parametrize(
    ("body", "content_type", "message", "code"),
    [
        (
            b'{"message": "no\\u001b[2J\\r\\nOK: all fine", "errorCode": "E\\u0007"}',
            None,
            "no\\x1b[2J\\r\\nOK: all fine",
            "E\\x07",
        ),
        (
            b"broken \x1b]0;title\x07 \xe2\x80\xae gnp.exe",
            "text/plain",
            "broken \\x1b]0;title\\x07 \\u202e gnp.exe",
            None,
        ),
        (b"<html><title>\n  Down \x1b[5m\n</title></html>", "text/html", "Down \\x1b[5m", None),
    ],
)
def test_control_characters_in_server_text_are_written_out(
    body: bytes, content_type: str | None, message: str, code: str | None
) -> None:
    """A server's message reaches terminals and logs: an escape sequence, a carriage return or a
    bidirectional override in it is shown as an escape, not acted on."""
    assert read_error_body(body, content_type) == (message, code)
    assert "\x1b" not in str(error_for_status(500, body, method="GET", url=URL, content_type=content_type))


def test_long_error_bodies_are_cut() -> None:
    message, _ = read_error_body(b"x" * 10_000, "text/plain")
    assert message is not None
    assert 0 < len(message) <= 200


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<title>" * 37_449, None),  # a title that never closes, 37,449 times
        (b"<title " * 37_449, ("<title " * 29)[:200].strip()),  # nor its tag
        (b"<" * _ERROR_READ, "<" * 200),  # tags that never close
        (b"<a" * (_ERROR_READ // 2), "<a" * 100),
        (b"<html><title>" + b"<" * (_ERROR_READ - 13), None),
    ],
)
def test_an_html_error_body_of_tags_that_never_close_is_read_in_one_pass(
    body: bytes, message: str | None
) -> None:
    """256 KiB of a hostile server's error page: its title, or its text between tags, is found
    in one pass over it. The patterns that found them backtracked over the rest of the body from
    every ``<``: one such body took up to 28 s of CPU inside the event loop, which held every
    other server of the sweep and let ``check`` run past its deadline."""
    assert len(body) <= _ERROR_READ
    assert read_error_body(body, "text/html") == (message, None)


def test_401_maps_to_authentication_error() -> None:
    assert isinstance(error_for_status(401, b"", method="GET", url=URL), AuthenticationError)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"<html><head><title>Service Unavailable</title></head></html>", "text/html"),
        (b'{"message": "The service is starting."}', "application/json"),
        (b"", None),
    ],
)
async def test_error_bodies_through_the_client(
    fake: FakeVBO, vbo: VBOClient, body: bytes, content_type: str | None
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    fake.route("GET", "/v1/Jobs/j1", httpx.Response(503, content=body, headers=headers))
    with pytest.raises(ServerError) as info:
        await vbo.job("j1")
    assert info.value.message in {"Service Unavailable", "The service is starting.", "service unavailable"}
    assert "<" not in str(info.value)


# --- transport failures ---------------------------------------------------------------------------


async def test_unreachable_server_is_a_transport_error() -> None:
    port = closed_port()
    async with VBOClient(
        f"http://127.0.0.1:{port}", username=USERNAME, password=PASSWORD, retry=FAST, api_version="v1"
    ) as vbo:
        with pytest.raises(TransportError) as info:
            await vbo.jobs()
    assert isinstance(info.value.__cause__, httpx.ConnectError)
    assert info.value.url == f"http://127.0.0.1:{port}/v1/Token"
    assert "connect" in str(info.value).lower()
    assert vbo.token_requests == 1


@pytest.mark.parametrize(
    "error",
    [
        OSError("network is unreachable"),
        ConnectionResetError(104, "Connection reset by peer"),
        ssl.SSLError("wrong version number"),
        TimeoutError(),
        httpx.ConnectError("connection refused"),
        httpx.PoolTimeout("pool"),
        httpx.LocalProtocolError("bad request line"),
        httpx.UnsupportedProtocol("no"),
    ],
    ids=lambda e: type(e).__name__,
)
async def test_nothing_but_vbo_errors_escape_a_failing_transport(error: Exception) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise error

    async with client_for(handler) as vbo:
        with pytest.raises(TransportError) as info:
            await vbo.jobs()
        with pytest.raises(TransportError):
            await vbo.start_job("j1")
    assert info.value.__cause__ is error or isinstance(info.value.__cause__, type(error))


async def test_transport_failing_only_on_api_requests(fake: FakeVBO, vbo: VBOClient) -> None:
    def broken(request: httpx.Request) -> httpx.Response:
        raise OSError("boom")

    fake.route("GET", "/v1/Jobs/j1", broken)
    with pytest.raises(TransportError) as info:
        await vbo.job("j1")
    assert isinstance(info.value.__cause__, OSError)
    assert info.value.method == "GET"
    assert info.value.url == URL


async def test_undecodable_content_encoding_is_a_vbo_error(fake: FakeVBO, vbo: VBOClient) -> None:
    fake.route(
        "GET",
        "/v1/Jobs/j1",
        lambda request: httpx.Response(
            200, stream=httpx.ByteStream(b"not gzip"), headers={"Content-Encoding": "gzip"}
        ),
    )
    with pytest.raises(VBOError) as info:
        await vbo.job("j1")
    assert isinstance(info.value, TransportError | DecodeError)
    assert info.value.url == URL


async def test_cut_short_response_is_a_transport_error(fake: FakeVBO, vbo: VBOClient) -> None:
    fake.route(
        "GET",
        "/v1/Jobs/j1",
        lambda request: httpx.Response(
            200, headers={"Content-Length": "100"}, stream=httpx.ByteStream(b'{"id":')
        ),
    )
    with pytest.raises(TransportError, match="cut short"):
        await vbo.job("j1")


@pytest.mark.parametrize("declared", [True, False])
async def test_response_too_large(fake: FakeVBO, declared: bool) -> None:
    body = b"[" + b",".join([b'{"id": "x"}'] * 200) + b"]"

    def big(request: httpx.Request) -> httpx.Response:
        if declared:
            return httpx.Response(200, content=body)
        return httpx.Response(200, stream=httpx.ByteStream(body))

    fake.route("GET", "/v1/Jobs", big)
    async with client_for(fake, max_response_bytes=500) as vbo:
        with pytest.raises(ResponseTooLargeError) as info:
            await vbo.jobs()
    assert "max_response_bytes=500" in str(info.value)
    assert info.value.url == f"{BASE}/v1/Jobs"


# --- configuration and arguments --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base_url", "options"),
    [
        ("vbo.test:4443", {}),
        ("ftp://vbo.test", {}),
        (BASE, {"username": ""}),
        (BASE, {"password": None}),
        (BASE, {"max_concurrency": 0}),
        (BASE, {"timeout": 0}),
        (BASE, {"max_response_bytes": 0}),
        (BASE, {"api_version": "v1/x"}),
        (BASE, {"verify": 42}),
    ],
)
def test_bad_options_are_config_errors(base_url: str, options: dict[str, Any]) -> None:
    kwargs: dict[str, Any] = {"username": USERNAME, "password": PASSWORD, **options}
    with pytest.raises(ConfigError):
        VBOClient(base_url, **kwargs)


def test_missing_ca_bundle_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="CA bundle"):
        VBOClient(
            BASE, username=USERNAME, password=PASSWORD, verify=tmp_path / "missing.pem", api_version="v1"
        )


@pytest.mark.parametrize("path", ["", "ca\x00.pem"])
def test_an_empty_or_unusable_ca_bundle_path_is_a_config_error(path: str) -> None:
    """An empty path used to load the system's CAs in silence (``cafile=""`` is no file), and a
    NUL byte escaped as a bare ValueError."""
    with pytest.raises(ConfigError, match="CA bundle"):
        VBOClient(BASE, username=USERNAME, password=PASSWORD, verify=path, api_version="v1")


@pytest.mark.parametrize("bad_id", ["", "  ", "..", ".", None, 42])
async def test_bad_ids_are_refused_before_any_request(fake: FakeVBO, vbo: VBOClient, bad_id: Any) -> None:
    with pytest.raises(ConfigError):
        await vbo.job(bad_id)
    with pytest.raises(ConfigError):
        await vbo.start_job(bad_id)
    assert fake.requests == []


async def test_ids_are_one_path_segment(fake: FakeVBO, vbo: VBOClient) -> None:
    fake.route("GET", "/v1/Jobs/a%20b%3Ac", {"id": "a b:c"})
    job = await vbo.job("a b:c")
    assert job.id == "a b:c"
    assert fake.requests[-1].url.raw_path == b"/v1/Jobs/a%20b%3Ac"


@pytest.mark.parametrize(
    "identifier", ["a/b", "a?b", "a#b", "a\\b", "a%2Fb", "..", " x9", "a\udc80", "a\x00b"]
)
async def test_ids_that_would_change_the_path_are_refused(
    fake: FakeVBO, vbo: VBOClient, identifier: str
) -> None:
    # Some servers decode %2F before routing: a "/" in an id is refused, not quoted.
    with pytest.raises(ConfigError, match="job_id") as info:
        await vbo.job(identifier)
    assert identifier not in str(info.value)
    assert fake.requests == []
