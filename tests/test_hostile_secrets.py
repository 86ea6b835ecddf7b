"""Echoed secrets: servers that quote the password or a token back, and URLs that carry one.

A token endpoint whose 400 page echoes the form it got (URL-encoded as sent, decoded, JSON- or
HTML-escaped), a 500 page echoing the ``Authorization`` header, a 404 whose message holds the
refresh token: the error the client raises must hold none of them, in any of the places an error
travels — ``str``, ``repr``, ``args``, the formatted traceback (causes and contexts included),
``pickle.dumps`` — and neither may any log record of any logger at DEBUG. A ``base_url`` with
userinfo, however malformed, is refused without being echoed, and the client's `Secret` pickles
as a placeholder.

Every form of a password starting ``S3cr3t-PW`` starts with those nine characters (percent-,
JSON- and HTML-encoding leave letters, digits and ``-`` alone), and the tokens are made of
them: searching for the raw strings finds any encoded form too, cut ones included. Before the
redaction (2ff99dd), every echo below reached the error's message.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import logging
import pickle
import traceback
from collections.abc import AsyncIterator, Callable
from urllib.parse import parse_qsl

import httpx
import pytest

from vbo_async import (
    AuthenticationError,
    ConfigError,
    DecodeError,
    LinkError,
    NotFoundError,
    ServerError,
    TransportError,
    VBOClient,
    VBOError,
)

from .conftest import FAST, client_for
from .test_hostile_input import shown
from .test_redact import MALFORMED

PREFIX = "S3cr3t-PW"
PASSWORDS = {"plain": PREFIX, "special": PREFIX + '+/ä"&=%\\ ~é', "padded": PREFIX + " "}
"""The issue's password, one whose URL-encoded, JSON-escaped and HTML-escaped forms all differ,
and one ending in a space (a body stripped before it was scrubbed showed it without that space)."""
USERNAME = "LAB\\svc-echo"
ACCESS = "tok-Echo-Access-5Rq8"
REFRESH = "tok-Echo-Refresh-2Vn6"
SECRETS = (PREFIX, ACCESS, REFRESH)
Handler = Callable[[httpx.Request], httpx.Response]


def dotnet_json(text: str) -> str:
    """``text`` inside a JSON string as .NET's default encoder writes it (``\\u0022`` for ``"``)."""
    safe = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 -_.,:;=")
    return "".join(c if c in safe else f"\\u{ord(c):04X}" for c in text)


ECHOES = {
    "form as sent (URL-encoded), text/plain": lambda form, raw: ("text/plain", f"invalid_grant: {raw}"),
    "form decoded, JSON (ASCII escapes)": lambda form, raw: (
        "application/json",
        json.dumps({"error": "invalid_grant", "error_description": f"bad form {decoded(form)}"}),
    ),
    "form decoded, JSON (UTF-8)": lambda form, raw: (
        "application/json",
        json.dumps(
            {"error": "invalid_grant", "error_description": f"bad form {decoded(form)}"}, ensure_ascii=False
        ),
    ),
    "form decoded, JSON (.NET escapes)": lambda form, raw: (
        "application/json",
        '{"error":"invalid_grant","error_description":"bad form ' + dotnet_json(decoded(form)) + '"}',
    ),
    "form decoded, HTML": lambda form, raw: (
        "text/html",
        f"<html><title>400 {html.escape(decoded(form))}</title><body>{html.escape(raw)}</body></html>",
    ),
    "password alone, JSON string": lambda form, raw: ("application/json", json.dumps(form["password"])),
    "password last, text/plain": lambda form, raw: ("text/plain", f"wrong password {form['password']}"),
    "password last, JSON message": lambda form, raw: (
        "application/json",
        json.dumps({"message": f"wrong password {form['password']}"}),
    ),
}
"""What a token endpoint's 400 page quotes: (content type, body) from the form, decoded and raw."""


def decoded(form: dict[str, str]) -> str:
    """The form as a server's log line shows it, decoded: ``grant_type=password&...``."""
    return "&".join(f"{name}={value}" for name, value in form.items())


def token_json(access: str = ACCESS) -> bytes:
    return json.dumps(
        {"access_token": access, "refresh_token": REFRESH, "token_type": "bearer", "expires_in": 3600}
    ).encode()


def echoing_token_endpoint(echo: str) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        raw = request.content.decode()
        form = dict(parse_qsl(raw, keep_blank_values=True))
        content_type, body = ECHOES[echo](form, raw)
        return httpx.Response(400, content=body.encode(), headers={"content-type": content_type})

    return handler


def echoing_api(status: int, message: Callable[[httpx.Request], str]) -> Handler:
    """Tokens are issued; every API request is answered ``status`` with ``message(request)``."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/Token"):
            return httpx.Response(200, content=token_json())
        return httpx.Response(status, json={"message": message(request)})

    return handler


def leaks(error: BaseException, records: list[logging.LogRecord]) -> dict[str, list[str]]:
    """Where any secret shows: {place: [secrets found]}; empty when none does."""
    assert records, "nothing was logged: the scan of the records would prove nothing"
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    places: dict[str, str | bytes] = {
        "str": str(error),
        "repr": repr(error),
        "args": repr(error.args),
        "traceback": "".join(traceback.format_exception(error)),
        "pickle": pickle.dumps(error),
        "vars": repr(vars(error)),
    }
    for index, record in enumerate(records):
        places[f"log record {index} ({record.name})"] = formatter.format(record) + repr(vars(record))
    found: dict[str, list[str]] = {}
    for place, text in places.items():
        hits = [s for s in SECRETS if (s.encode() if isinstance(text, bytes) else s) in text]
        if hits:
            found[place] = hits
    return found


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Captures every log record of every logger at DEBUG and up (read ``logs.records`` in the
    test's body: pytest starts a new list for each phase)."""
    caplog.set_level(logging.DEBUG)
    return caplog


async def raised_by(vbo: VBOClient, call: str) -> VBOError:
    async with vbo:
        try:
            await getattr(vbo, call)(*(("j1",) if call == "job" else ()))
        except VBOError as error:
            return error
    raise AssertionError(f"{call}() did not raise")


@pytest.mark.parametrize("password", list(PASSWORDS))
@pytest.mark.parametrize("echo", list(ECHOES))
async def test_a_token_page_echoing_the_form_leaks_no_password(
    echo: str, password: str, logs: pytest.LogCaptureFixture
) -> None:
    vbo = client_for(echoing_token_endpoint(echo), username=USERNAME, password=PASSWORDS[password])
    error = await raised_by(vbo, "jobs")
    assert isinstance(error, AuthenticationError), error
    assert "password grant" in str(error)
    assert leaks(error, logs.records) == {}
    if echo != "password alone, JSON string":
        assert "***" in str(error) or "grant_type" not in str(error)  # scrubbed, not dropped


@pytest.mark.parametrize("content_type", ["application/json", "text/html"])
async def test_a_500_page_echoing_the_authorization_header_leaks_no_token(
    content_type: str, logs: pytest.LogCaptureFixture
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/Token"):
            return httpx.Response(200, content=token_json())
        header = f"Authorization: {request.headers['authorization']}"
        if content_type == "text/html":
            body = f"<html><title>Runtime Error ({header})</title></html>"
        else:
            body = json.dumps({"message": f"Unhandled exception; request headers: {header}"})
        return httpx.Response(500, content=body.encode(), headers={"content-type": content_type})

    error = await raised_by(client_for(handler, retry=FAST), "jobs")
    assert isinstance(error, ServerError), error
    assert "***" in str(error)
    assert (
        sum(hasattr(record, "vbo_async_retry") for record in logs.records) == FAST.attempts - 1
    )  # scanned too
    assert leaks(error, logs.records) == {}


async def test_a_404_quoting_the_refresh_token_leaks_no_token(logs: pytest.LogCaptureFixture) -> None:
    transport = echoing_api(404, lambda request: f"no job j1 for the session of refresh token {REFRESH}")
    error = await raised_by(client_for(transport), "job")
    assert isinstance(error, NotFoundError), error
    assert "refresh token ***" in str(error)
    assert leaks(error, logs.records) == {}


DECODE_ECHOES = {
    "the form in a timestamp": ("lastRun", lambda form, auth: f"grant_type=password&password={form}&x=1"),
    "the bearer header in a timestamp": ("lastRun", lambda form, auth: auth),
    "the bearer header in a boolean": ("isEnabled", lambda form, auth: f"{auth} / {auth}"),
    "the refresh token in an object": ("name", lambda form, auth: {"refresh": REFRESH}),
}
"""A job whose field of the wrong type quotes a secret; the value is cut to 40 characters in the
message, so a secret quoted after 30 characters of noise would be cut in half before a scrub."""


@pytest.mark.parametrize("echo", list(DECODE_ECHOES))
async def test_a_value_of_the_wrong_type_quoting_a_secret_leaks_it_in_no_decode_error(
    echo: str, logs: pytest.LogCaptureFixture
) -> None:
    field, value = DECODE_ECHOES[echo]
    password = PASSWORDS["special"]

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/Token"):
            return httpx.Response(200, content=token_json())
        job = {"id": "j1", "name": "Daily", field: value(password, request.headers["authorization"])}
        return httpx.Response(200, json=job)

    error = await raised_by(client_for(handler, password=password), "job")
    assert isinstance(error, DecodeError), error
    assert f"${'.' + field}" in str(error)  # the error still says where
    assert leaks(error, logs.records) == {}


@pytest.mark.parametrize("relation", ["next", "repository"])
@pytest.mark.parametrize("where", ["https://evil.example/?t={}", "/evil?t={}", "/v1/Jobs/%2e%2e?t={}"])
async def test_a_refused_href_quoting_a_secret_leaks_it_in_no_link_error(
    relation: str, where: str, logs: pytest.LogCaptureFixture
) -> None:
    """A ``next`` link or a resource's link that cannot be followed is a `LinkError` quoting the
    href: a secret the server put in it is scrubbed from the message and from ``href``."""
    password = PASSWORDS["special"]

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/Token"):
            return httpx.Response(200, content=token_json())
        href = where.format(f"{request.headers['authorization']}|{password}|{REFRESH}")
        if relation == "next":
            return httpx.Response(200, json={"results": [], "_links": {"next": {"href": href}}})
        return httpx.Response(200, json={"id": "j1", "name": "D", "_links": {"repository": {"href": href}}})

    async with client_for(handler, password=password) as vbo:
        follow = vbo.jobs() if relation == "next" else (await vbo.job("j1")).links.repository
        with pytest.raises(LinkError) as caught:
            await follow
    assert caught.value.relation == relation
    assert "***" in str(caught.value)
    assert leaks(caught.value, logs.records) == {}


@pytest.mark.parametrize("entry", ["array", "object with a number as href"])
async def test_a_malformed_link_quoting_a_secret_is_ignored_without_logging_it(
    entry: str, logs: pytest.LogCaptureFixture
) -> None:
    """A link entry that is not ``{"href": "..."}`` is ignored with a warning: the warning names
    the relation and the kind of entry, never the server's text (which may echo a secret)."""
    password = PASSWORDS["special"]

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/Token"):
            return httpx.Response(200, content=token_json())
        secret = f"{request.headers['authorization']}|{password}|{REFRESH}"
        value = [secret] if entry == "array" else {"href": 5, "note": secret}
        return httpx.Response(200, json={"id": "j1", "name": "D", "_links": {"repository": value}})

    async with client_for(handler, password=password) as vbo:
        job = await vbo.job("j1")
    assert job.links.repository is None
    (warning,) = [record for record in logs.records if record.levelno == logging.WARNING]
    assert "'repository' link" in warning.getMessage()
    assert leaks(LinkError("no error: the warning is what is scanned"), logs.records) == {}


async def test_an_answer_echoing_a_token_renewed_while_it_was_in_flight_leaks_it_not(
    logs: pytest.LogCaptureFixture,
) -> None:
    """Request ``a`` is sent with the first token; request ``b`` gets a 401, and the client
    renews the token while ``a`` is in flight. ``a``'s 404 then quotes the first token, which was
    scrubbed only while it was the current one (a token refreshed before it expires still works)."""
    second = "tok-Echo-Access-Second-8Kd3"
    issued: list[str] = []
    renewed = asyncio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/Token"):
            issued.append(ACCESS if not issued else second)
            if len(issued) == 2:
                renewed.set()
            return httpx.Response(200, content=token_json(issued[-1]))
        bearer = request.headers["authorization"].removeprefix("Bearer ")
        if request.url.path.endswith("/a"):
            await renewed.wait()
            return httpx.Response(404, json={"message": f"no job a for the session of {bearer}"})
        if bearer == ACCESS:
            return httpx.Response(401)
        return httpx.Response(200, json={"id": "b", "name": "B"})

    async with client_for(handler) as vbo:
        a, b = await asyncio.gather(vbo.job("a"), vbo.job("b"), return_exceptions=True)
    assert issued == [ACCESS, second]
    assert not isinstance(b, BaseException), b
    assert isinstance(a, NotFoundError), a
    assert "session of ***" in str(a)
    assert leaks(a, logs.records) == {}


# --- the wire: a status line or a Content-Encoding quoting a secret --------------------------------

Answer = Callable[[bytes, bytes], bytes]
"""The raw bytes a wire server answers a request with, given its head and body."""


@contextlib.asynccontextmanager
async def wire_server(answer: Answer) -> AsyncIterator[str]:
    """A raw TCP server on 127.0.0.1 answering each request with ``answer(head, body)`` and closing
    the connection; yields its base URL."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lengths = [
                line[15:] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")
            ]
            writer.write(answer(head, await reader.readexactly(int(lengths[0]) if lengths else 0)))
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        await server.wait_closed()


def bearer_of(head: bytes) -> bytes:
    """The ``Authorization`` line of a request head."""
    return next(line for line in head.split(b"\r\n") if line.lower().startswith(b"authorization:"))


def api_answer(status_line: Callable[[bytes], bytes], headers: bytes = b"") -> Answer:
    """Tokens are issued; every API request is answered with ``status_line(head)`` and ``headers``."""

    def answer(head: bytes, body: bytes) -> bytes:
        if b"/Token " in head:
            token = token_json()
            return b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%b" % (len(token), token)
        return status_line(head) + b"\r\n" + headers + b"\r\n[]"

    return answer


def coding_echo(secret: Callable[[bytes, bytes], bytes]) -> Answer:
    """A 200 whose ``Content-Encoding`` is ``secret(head, body)``."""
    return lambda head, body: (
        b"HTTP/1.1 200 OK\r\ncontent-encoding: %b\r\ncontent-length: 2\r\n\r\n{}" % secret(head, body)
    )


WIRE_ECHOES: dict[str, Answer] = {
    "the form as the status line": lambda head, body: b"HTTP/1.1 %b\r\ncontent-length: 0\r\n\r\n" % body,
    "the bearer header as the status line": api_answer(lambda head: b"HTTP/1.1 " + bearer_of(head)),
    "the bearer token as the Content-Encoding": api_answer(
        lambda head: b"HTTP/1.1 200 OK\r\ncontent-encoding: " + bearer_of(head)[22:], b"content-length: 2\r\n"
    ),
    "30 characters, then the bearer token, as the Content-Encoding": api_answer(
        lambda head: b"HTTP/1.1 200 OK\r\ncontent-encoding: " + b"x" * 30 + bearer_of(head)[22:],
        b"content-length: 2\r\n",
    ),
    "the password as the Content-Encoding of the token": coding_echo(
        lambda head, body: dict(parse_qsl(body.decode()))["password"].encode()
    ),
}
"""Servers quoting a secret where the client's messages quote the wire: in the status line an HTTP
parser refuses (the form as it was sent, URL-encoded), or as a coding name (which the decoder
lowered, and cuts to 40 characters)."""


@pytest.mark.parametrize("transport", ["aiohttp (default)", "httpx"])
@pytest.mark.parametrize("echo", list(WIRE_ECHOES))
async def test_a_wire_error_quoting_a_secret_leaks_it_not(
    echo: str, transport: str, logs: pytest.LogCaptureFixture
) -> None:
    password = PASSWORDS["special"]
    async with wire_server(WIRE_ECHOES[echo]) as base:
        vbo = VBOClient(
            base,
            username=USERNAME,
            password=password,
            retry=FAST,
            api_version="v1",
            transport=httpx.AsyncHTTPTransport() if transport == "httpx" else None,
        )
        error = await raised_by(vbo, "jobs")
    assert isinstance(error, DecodeError if "Encoding" in echo else TransportError), error
    assert "***" in str(error)  # scrubbed, not dropped
    # httpcore's own DEBUG log shows the response headers as they came: not vbo-async's to scrub.
    records = [record for record in logs.records if not record.name.startswith("httpcore")]
    if not records:  # a token answer that cannot be decoded is not retried: nothing was logged
        records = [logging.makeLogRecord({"msg": "(nothing logged)"})]
    assert leaks(error, records) == {}
    for text in (str(error), repr(error)):
        assert ACCESS[:8].lower() not in text.lower()  # not even the part before a cut
        assert PREFIX.lower() not in text.lower()


# --- 9. base URLs with userinfo, and the client's Secret ----------------------------------------------

USERINFO_URLS = [
    *MALFORMED,  # what test_redact gives ApiRoot; here through VBOClient
    "https:svc:S3cr3t-PW@vbo01:4443",
    "https:\\\\svc:S3cr3t-PW@vbo01",
    "https://svc:S3cr3t-PW@vbo 01:4443",
    "https://svc:S3cr3t-PW@[::1:4443",
    "https://svc:S3cr3t-PW@vbo01:44x3",
    "https://svc:S3cr3t%2DPW@vbo01:4443",
]


@pytest.mark.parametrize("url", USERINFO_URLS)
def test_a_base_url_with_userinfo_is_refused_without_echoing_the_password(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        VBOClient(url, username="svc", password=PREFIX, api_version="v1")
    error = caught.value
    assert "base_url" in str(error)
    for text in shown(error):
        assert "S3cr3t" not in text
    assert b"S3cr3t" not in pickle.dumps(error)


async def test_the_clients_secret_pickles_as_a_placeholder() -> None:
    async with VBOClient(
        "https://vbo01:4443", username="svc", password=PASSWORDS["special"], api_version="v1"
    ) as vbo:
        secret = vbo._tokens._password
        data = pickle.dumps(secret)
        assert PREFIX.encode() not in data
        assert "S3cr3t" not in repr(secret) + str(secret)
        with pytest.raises(ConfigError, match="unpickled"):
            pickle.loads(data).reveal()
        assert PREFIX.encode() not in pickle.dumps(vbo._tokens.redactor())
