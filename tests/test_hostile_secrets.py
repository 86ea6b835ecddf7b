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
import gzip
import html
import html.entities
import json
import logging
import pickle
import traceback
from collections.abc import AsyncIterator, Callable
from urllib.parse import parse_qsl, quote, unquote_plus

import httpx
import pytest

import vbo_async._client
from vbo_async import (
    APIError,
    AuthenticationError,
    ClientStateError,
    ConfigError,
    DecodeError,
    HealthPolicy,
    HealthState,
    LinkError,
    NotFoundError,
    PollTarget,
    ResponseTooLargeError,
    RetryPolicy,
    ServerError,
    TransportError,
    VBOClient,
    VBOError,
    poll_jobs,
    to_jsonable,
)
from vbo_async._aiohttp import AiohttpTransport
from vbo_async._auth import TokenManager
from vbo_async._prefetch import LinkCache
from vbo_async._redact import Redactor
from vbo_async._sending import _quotes_secret
from vbo_async._urls import _LONGEST_HREF
from vbo_async.simulator import SimulatorConfig

from .conftest import BASE, FAST, client_for
from .raw_http import serve_raw
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
    "form decoded as Latin-1 (a servlet's default), text/plain": lambda form, raw: (
        "text/plain",
        f"invalid_grant: {misread(decoded(form))}",
    ),
    "form decoded as Windows-1252, JSON (ASCII escapes)": lambda form, raw: (
        "application/json",
        json.dumps({"error": "invalid_grant", "error_description": misread(decoded(form), "cp1252")}),
    ),
    "form decoded as Latin-1, HTML": lambda form, raw: (
        "text/html",
        f"<html><title>400 {html.escape(misread(decoded(form)))}</title></html>",
    ),
    "form decoded, HTML named entities": lambda form, raw: (
        "text/html",
        f"<html><title>400 {named_entities(decoded(form))}</title></html>",
    ),
    "form decoded, HTML hex entities": lambda form, raw: (
        "text/html",
        "<html><title>400 "
        + "".join(c if c.isascii() else f"&#x{ord(c):X};" for c in html.escape(decoded(form)))
        + "</title></html>",
    ),
    "password alone, JSON string": lambda form, raw: ("application/json", json.dumps(form["password"])),
    "password last, text/plain": lambda form, raw: ("text/plain", f"wrong password {form['password']}"),
    "password last, JSON message": lambda form, raw: (
        "application/json",
        json.dumps({"message": f"wrong password {form['password']}"}),
    ),
}
"""What a token endpoint's 400 page quotes: (content type, body) from the form, decoded and raw."""


def misread(text: str, encoding: str = "latin-1") -> str:
    """``text`` as a server that read its UTF-8 bytes in a single-byte encoding writes it back
    (mojibake: ``ä`` is ``Ã¤``); a byte Windows-1252 leaves undefined is read as Latin-1 does."""
    return "".join(bytes([byte]).decode(encoding, "ignore") or chr(byte) for byte in text.encode("utf-8"))


def named_entities(text: str) -> str:
    """``text`` HTML-escaped as PHP's ``htmlentities`` writes it (``&auml;``)."""
    return "".join(
        c
        if c.isascii() or ord(c) not in html.entities.codepoint2name
        else f"&{html.entities.codepoint2name[ord(c)]};"
        for c in html.escape(text)
    )


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
            await getattr(vbo, call)(*(("j1",) if call in ("job", "stop_job") else ()))
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


@pytest.mark.parametrize("content_type", ["application/json", "text/plain", "text/html"])
async def test_a_token_page_echoing_the_password_in_a_legacy_encoding_leaks_it_not(
    content_type: str, logs: pytest.LogCaptureFixture
) -> None:
    """A page in Windows-1252 (an IIS or proxy error page) quoting the password: each of its
    letters not ASCII is a byte that is not UTF-8, read as U+FFFD, so the password as sent was not
    found and the rest of it (its ASCII part, all but two letters) was shown."""

    def handler(request: httpx.Request) -> httpx.Response:
        password = dict(parse_qsl(request.content.decode(), keep_blank_values=True))["password"]
        text = f"wrong password {password}"
        if content_type == "application/json":
            text = json.dumps({"message": text}, ensure_ascii=False)
        elif content_type == "text/html":
            text = f"<html><title>{html.escape(text)}</title></html>"
        return httpx.Response(400, content=text.encode("cp1252"), headers={"content-type": content_type})

    vbo = client_for(handler, username=USERNAME, password=PASSWORDS["special"])
    error = await raised_by(vbo, "jobs")
    assert isinstance(error, AuthenticationError), error
    assert leaks(error, logs.records) == {}
    assert "wrong password ***" in str(error)


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
@pytest.mark.parametrize(
    "where",
    [
        "https://evil.example/?t={}",
        "/evil?t={}",
        "/v1/Jobs/%2e%2e?t={}",
        # urlsplit refuses the host ("℀" is "a/c" once normalised), its ValueError, the cause of
        # the LinkError, quoting the userinfo
        "https://svc\u2100:{}@vbo.test:4443/v1/Jobs",
    ],
)
async def test_a_refused_href_quoting_a_secret_leaks_it_in_no_link_error(
    relation: str, where: str, logs: pytest.LogCaptureFixture
) -> None:
    """A ``next`` link or a resource's link that cannot be followed is a `LinkError` quoting the
    href: a secret the server put in it is scrubbed from the message and from ``href``, and from
    the error's cause (which a traceback prints)."""
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


@pytest.mark.parametrize("where", ["/evil/{}", "/v1/Jobs/../{}", "/v1/Jobs?t={}"])
@pytest.mark.parametrize("relation", ["next", "repository"])
async def test_a_secret_across_the_end_of_a_long_hrefs_quote_leaves_no_part_of_itself(
    relation: str, where: str, logs: pytest.LogCaptureFixture
) -> None:
    """A `LinkError` quotes the first 500 characters of a long href: a secret the server put
    across that point is masked whole before the quote is cut, not cut in two (its first part
    would be no secret any scrub finds)."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/Token"):
            return httpx.Response(200, content=token_json())
        # The secret begins 5 characters before the quote's end: the URL requested is quoted
        # (the base URL before the href) when the href is refused for its length alone.
        quoted_from = len(BASE) if "?" in where else 0
        pad = "p" * (495 - quoted_from - where.index("{}"))
        href = where.format(f"{pad}{ACCESS}.{REFRESH}.{'q' * 100_000}")
        if relation == "next":
            return httpx.Response(200, json={"results": [{"id": "j1"}], "_links": {"next": {"href": href}}})
        return httpx.Response(200, json={"id": "j1", "name": "D", "_links": {"repository": {"href": href}}})

    async with client_for(handler) as vbo:
        follow = vbo.jobs() if relation == "next" else (await vbo.job("j1")).links.repository
        with pytest.raises(LinkError) as caught:
            await follow
    error = caught.value
    assert "***" in str(error)
    assert len(str(error)) < 1_000
    assert leaks(error, logs.records) == {}
    assert ACCESS[:4] not in str(error)


SMALL_BODIES = 4096
"""The ``max_response_bytes`` of the clients below (a token answer fits, the too-large body not)."""


def refuse_connection(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("[Errno 111] Connection refused", request=request)


def reset_connection(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadError("[Errno 104] Connection reset by peer", request=request)


def same_page(request: httpx.Request) -> httpx.Response:
    next_link = {"href": str(request.url.copy_with(scheme=None, host=None, port=None))}
    return httpx.Response(200, json={"results": [{"id": "j2"}], "_links": {"next": next_link}})


SECRET_URL_ANSWERS: dict[str, tuple[type[VBOError], Callable[[httpx.Request], httpx.Response]]] = {
    "HTTP 500": (ServerError, lambda request: httpx.Response(500, json={"message": "boom"})),
    "a body that is not JSON": (DecodeError, lambda request: httpx.Response(200, content=b"not json")),
    "a corrupt gzip body": (
        DecodeError,
        lambda request: httpx.Response(
            200, stream=httpx.ByteStream(b"not gzip"), headers={"Content-Encoding": "gzip"}
        ),
    ),
    "a body too large": (
        ResponseTooLargeError,
        lambda request: httpx.Response(200, content=b"[" + b" " * 2 * SMALL_BODIES + b"]"),
    ),
    "connection refused": (TransportError, refuse_connection),
    "connection reset": (TransportError, reset_connection),
    "a next link back to the same page": (APIError, same_page),
    "HTTP 404": (NotFoundError, lambda request: httpx.Response(404, json={"message": "gone"})),
    "a body of the wrong shape": (
        DecodeError,
        lambda request: httpx.Response(200, json={"id": "r1", "capacity": "lots"}),
    ),
    "a body cut short": (
        TransportError,
        lambda request: httpx.Response(200, content=b"{}", headers={"content-length": "10"}),
    ),
}
"""What a URL below the API root that a server put a secret in is answered: (the error the
client raises; the answer). The loop is only a loop as a page's ``next``."""
PAGE_ONLY = {"a next link back to the same page"}


def secret_query(request: httpx.Request, password: str) -> str:
    """A query a server writes a secret into: the bearer header, the password and the refresh
    token, URL-encoded (an href inside the API root, so the client follows it)."""
    return str(httpx.QueryParams({"t": f"{request.headers['authorization']}|{password}|{REFRESH}"}))


@pytest.mark.parametrize(
    ("relation", "answer"),
    [("next", answer) for answer in SECRET_URL_ANSWERS]
    + [("repository", answer) for answer in SECRET_URL_ANSWERS if answer not in PAGE_ONLY],
)
async def test_a_followed_href_quoting_a_secret_leaks_it_in_no_log_or_error(
    relation: str, answer: str, logs: pytest.LogCaptureFixture
) -> None:
    """An href below the API root is followed even when the server put a secret in its query;
    whatever then goes wrong there (an error status, a body that cannot be decoded or is too
    large, a refused or reset connection, retried first, or a listing that loops), the request's
    logs, the retry notes and the error show the URL scrubbed. Before the fix every one of these
    quoted the URL as sent."""
    password = PASSWORDS["special"]
    expected, respond = SECRET_URL_ANSWERS[answer]

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/Token"):
            return httpx.Response(200, content=token_json())
        if "t=" in str(request.url):
            return respond(request)
        path = "Jobs" if relation == "next" else "BackupRepositories/r1"
        href = f"/v1/{path}?{secret_query(request, password)}"
        if relation == "next":
            return httpx.Response(200, json={"results": [{"id": "j1"}], "_links": {"next": {"href": href}}})
        return httpx.Response(200, json={"id": "j1", "name": "D", "_links": {"repository": {"href": href}}})

    error: VBOError = LinkError("no error: the logs are what is scanned")
    async with client_for(handler, password=password, max_response_bytes=SMALL_BODIES) as vbo:
        try:
            if relation == "next":
                await vbo.jobs()
            else:
                link = (await vbo.job("j1")).links.repository
                assert link is not None
                await link
        except VBOError as exc:
            error = exc
    assert type(error) is expected, repr(error)
    assert error.url is not None
    assert "***" in error.url  # scrubbed, not dropped
    assert "***" in str(error)
    if expected is TransportError:
        assert sum(hasattr(record, "vbo_async_retry") for record in logs.records) == FAST.attempts - 1
    assert leaks(error, logs.records) == {}


@pytest.mark.parametrize(
    ("length", "refusal"),
    [
        (_LONGEST_HREF, "cannot request"),  # the href is not too long, its URL (with the base) is
        (70_000, "is longer than any URL httpx requests"),  # refused before it is rebased
    ],
    ids=["url", "href"],
)
@pytest.mark.parametrize("relation", ["next", "repository"])
async def test_an_href_too_long_to_request_quoting_a_secret_leaks_it_in_no_link_error(
    relation: str, length: int, refusal: str, logs: pytest.LogCaptureFixture
) -> None:
    """An href below the API root longer than httpx takes a URL (65,536 characters) cannot be
    requested: the `LinkError` quoted the whole URL, secret included, unscrubbed."""
    password = PASSWORDS["special"]

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/Token"):
            return httpx.Response(200, content=token_json())
        href = f"/v1/BackupRepositories/r1?{secret_query(request, password)}&pad="
        if relation == "next":
            href = href.replace("BackupRepositories/r1", "Jobs")
        href += "x" * (length - len(href))
        if relation == "next":
            return httpx.Response(200, json={"results": [{"id": "j1"}], "_links": {"next": {"href": href}}})
        return httpx.Response(200, json={"id": "j1", "name": "D", "_links": {"repository": {"href": href}}})

    async def follow(vbo: VBOClient) -> object:
        if relation == "next":
            return await vbo.jobs()
        link = (await vbo.job("j1")).links.repository
        assert link is not None
        return await link

    async with client_for(handler, password=password) as vbo:
        with pytest.raises(LinkError) as caught:
            await follow(vbo)
    error = caught.value
    assert refusal in str(error)
    assert "***" in str(error)  # scrubbed, not dropped
    assert leaks(error, logs.records) == {}


async def test_an_item_refused_on_a_page_whose_url_quotes_a_secret_is_filed_scrubbed(
    logs: pytest.LogCaptureFixture,
) -> None:
    """A sweep files the jobs it cannot decode instead of failing the listing: the `DecodeError`
    it keeps names the page's URL, which a next link may have put a secret in."""
    password = PASSWORDS["special"]

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/Token"):
            return httpx.Response(200, content=token_json())
        if "t=" in str(request.url):
            return httpx.Response(200, json={"results": [{"id": "j2", "name": "D", "isEnabled": "maybe"}]})
        next_link = {"href": f"/v1/Jobs?{secret_query(request, password)}"}
        return httpx.Response(
            200, json={"results": [{"id": "j1", "name": "D"}], "_links": {"next": next_link}}
        )

    async with client_for(handler, password=password) as vbo:
        jobs, filed = await vbo._jobs_filed()
    assert [job.id for job in jobs] == ["j1"]
    ((error,),) = filed.values()
    assert error.url is not None
    assert "***" in error.url
    assert leaks(error, logs.records) == {}


async def test_a_collection_link_quoting_a_secret_leaks_it_in_no_max_pages_error(
    logs: pytest.LogCaptureFixture,
) -> None:
    """A listing longer than ``max_pages`` is an `APIError` naming the URL the listing began at:
    a collection link's, which the server may have put a secret in."""
    password = PASSWORDS["special"]

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/Token"):
            return httpx.Response(200, content=token_json())
        if request.url.path.endswith("/Jobs/j1"):
            links = {"jobsessions": {"href": f"/v1/Jobs/j1/JobSessions?{secret_query(request, password)}"}}
            return httpx.Response(200, json={"id": "j1", "name": "D", "_links": links})
        return httpx.Response(
            200, json={"results": [{"id": "s1"}], "_links": {"next": {"href": "/v1/JobSessions?page=2"}}}
        )

    async with client_for(handler, password=password, max_pages=1) as vbo:
        sessions = (await vbo.job("j1")).links.jobsessions
        assert sessions is not None
        with pytest.raises(APIError, match="max_pages") as caught:
            await sessions
    assert caught.value.url is not None
    assert "***" in caught.value.url
    assert leaks(caught.value, logs.records) == {}


@pytest.mark.parametrize("proxy", ["outside the API root", "malformed (an array)", "absent"])
async def test_a_through_link_via_an_href_quoting_a_secret_leaks_it_in_no_link_error(
    proxy: str, logs: pytest.LogCaptureFixture
) -> None:
    """A v6+ job's proxy is reached through its repository. The server put a secret in the
    repository's href (followed: it is below the API root), and the repository it answers has no
    proxy link that can be followed: the `LinkError` quoting the repository's href, and the logs
    of both steps, show it scrubbed."""
    password = PASSWORDS["special"]

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/Token"):
            return httpx.Response(200, content=token_json())
        secret = secret_query(request, password)
        if request.url.path.endswith("/Jobs/j1"):
            href = f"/v6/BackupRepositories/r1?{secret}"
            return httpx.Response(
                200, json={"id": "j1", "name": "D", "_links": {"backupRepository": {"href": href}}}
            )
        links = {
            "outside the API root": {"proxy": {"href": f"https://evil.example/proxies/p1?{secret}"}},
            "malformed (an array)": {"proxy": [secret]},
            "absent": {},
        }[proxy]
        return httpx.Response(200, json={"id": "r1", "name": "R", "_links": links})

    async with client_for(handler, password=password, api_version="v6") as vbo:
        link = (await vbo.job("j1")).links.proxy
        assert link is not None
        with pytest.raises(LinkError) as caught:
            await link
    assert "***" in str(caught.value)
    assert leaks(caught.value, logs.records) == {}


@pytest.mark.parametrize("relation", ["repository", "proxy"])
async def test_a_sweep_prefetching_an_href_quoting_a_secret_leaks_it_nowhere(
    relation: str, logs: pytest.LogCaptureFixture
) -> None:
    """A sweep prefetches the links of every job (`LinkCache`): the repository's href quotes a
    secret and answers 500, or answers a repository without a proxy. The link error it keeps,
    its debug log line (which showed the link's repr) and the names of its tasks (which showed
    the URL) hold no secret."""
    password = PASSWORDS["special"]
    task_names: list[str] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        # After a suspension: a task an eager task factory starts runs up to its first one
        # before TaskGroup.create_task names it.
        await asyncio.sleep(0)
        task_names.extend(task.get_name() for task in asyncio.all_tasks())
        if request.url.path.endswith("/Token"):
            return httpx.Response(200, content=token_json())
        if request.url.path.endswith("/Jobs/j1"):
            href = f"/v6/BackupRepositories/r1?{secret_query(request, password)}"
            links = {"backupRepository": {"href": href}}
            return httpx.Response(200, json={"id": "j1", "name": "D", "_links": links})
        if relation == "repository":
            return httpx.Response(500, json={"message": "boom"})
        return httpx.Response(200, json={"id": "r1", "name": "R", "_links": {}})

    async with client_for(handler, password=password, api_version="v6") as vbo:
        job = await vbo.job("j1")
        async with asyncio.TaskGroup() as group:
            _, errors = await LinkCache(group).resolve(vbo, [job], (relation,))
    error = errors[("j1", relation)]
    assert isinstance(error, ServerError if relation == "repository" else LinkError), repr(error)
    assert "***" in str(error)
    assert any("prefetch" in name for name in task_names)  # the names were seen while in flight
    assert [name for name in task_names if any(secret in name for secret in SECRETS)] == []
    assert leaks(error, logs.records) == {}


async def test_a_successful_get_scrubs_nothing_when_debug_logging_is_off(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Scrubbing a URL costs a search per secret form: the request log line does it only when
    debug logging is on, and a successful GET never otherwise."""
    caplog.set_level(logging.INFO, logger="vbo_async")
    asked: list[Redactor] = []
    original = TokenManager.redactor

    def counting(self: TokenManager) -> Redactor:
        asked.append(original(self))
        return asked[-1]

    monkeypatch.setattr(TokenManager, "redactor", counting)

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/Token"):
            return httpx.Response(200, content=token_json())
        if "page=2" in str(request.url):
            return httpx.Response(200, json={"results": [{"id": "j2"}]})
        return httpx.Response(
            200, json={"results": [{"id": "j1"}], "_links": {"next": {"href": "/v1/Jobs?page=2"}}}
        )

    async with client_for(handler) as vbo:
        assert [job.id for job in await vbo.jobs()] == ["j1", "j2"]
        assert asked == []
        caplog.set_level(logging.DEBUG, logger="vbo_async")
        assert [job.id for job in await vbo.jobs()] == ["j1", "j2"]
        assert len(asked) >= 2  # the check can fail: the request lines are scrubbed when logged


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


async def test_malformed_links_are_warned_of_once_per_kind_not_once_per_job(
    logs: pytest.LogCaptureFixture,
) -> None:
    """A hostile server whose 1,000 jobs each carry a malformed link: the client warns once per
    relation and kind of entry, and logs the others at debug level. It warned of every one, on
    every listing: ``serve`` wrote a line per job on every sweep for as long as it ran."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/Token"):
            return httpx.Response(200, content=token_json())
        entries: list[object] = [{"href": 5}, ["a", "list"]]
        jobs = [{"id": f"j{n}", "name": "D", "_links": {"repository": entries[n % 2]}} for n in range(1000)]
        return httpx.Response(200, json=jobs)

    async with client_for(handler) as vbo:
        for _ in range(3):
            assert [job.links.repository for job in await vbo.jobs()] == [None] * 1000
    malformed = [record for record in logs.records if "malformed" in record.getMessage()]
    assert len(malformed) == 3000
    warnings = [record.getMessage() for record in malformed if record.levelno == logging.WARNING]
    assert warnings == [
        "ignoring the malformed 'repository' link: an href of type int (expected {'href': string}); "
        "the next ones like it are logged at debug level",
        "ignoring the malformed 'repository' link: list (expected {'href': string}); "
        "the next ones like it are logged at debug level",
    ]
    async with client_for(handler) as other:  # another client warns again
        await other.jobs()
    assert len([record for record in logs.records if record.levelno == logging.WARNING]) == 4


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

    async def once(head: bytes, body: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(answer(head, body))
        await writer.drain()
        writer.close()

    async with serve_raw(once) as port:
        yield f"http://127.0.0.1:{port}"


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
    # Scrubbed, or (a line aiohttp's parser refused, which it quotes as bytes: no scrub reads that
    # form) said without the line.
    assert "***" in str(error) or "not valid HTTP" in str(error), error
    # httpcore's own DEBUG log shows the response headers as they came: not vbo-async's to scrub.
    records = [record for record in logs.records if not record.name.startswith("httpcore")]
    if not records:  # a token answer that cannot be decoded is not retried: nothing was logged
        records = [logging.makeLogRecord({"msg": "(nothing logged)"})]
    assert leaks(error, records) == {}
    for text in (str(error), repr(error), "".join(traceback.format_exception(error))):
        assert ACCESS[:8].lower() not in text.lower()  # not even the part before a cut
        assert PREFIX.lower() not in text.lower()


def cut_head(head: bytes, body: bytes) -> bytes:
    """Tokens are issued; an API request's answer is cut off (the connection closed) in the middle
    of a header quoting the first 12 characters of the bearer token."""
    if b"/Token " in head:
        token = token_json()
        return b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%b" % (len(token), token)
    return b"HTTP/1.1 200 OK\r\nx-echo: " + bearer_of(head)[22:34]


HEADS_QUOTED_CUT: dict[str, tuple[Answer, str]] = {
    "a 9 KB reason phrase": (
        api_answer(
            lambda head: b"HTTP/1.1 503 " + b"x" * 90 + bearer_of(head)[22:] + b"y" * 9000,
            b"content-length: 0\r\n",
        ),
        "longer than 8190 bytes",
    ),
    "a 9 KB header value": (
        api_answer(
            lambda head: b"HTTP/1.1 200 OK\r\nx-echo: " + b"x" * 90 + bearer_of(head)[22:] + b"y" * 9000,
            b"content-length: 2\r\n",
        ),
        "longer than 8190 bytes",
    ),
    "a 9 KB header name": (
        api_answer(
            lambda head: b"HTTP/1.1 200 OK\r\nx" + b"x" * 90 + bearer_of(head)[22:] + b"y" * 9000 + b": 1",
            b"content-length: 2\r\n",
        ),
        "longer than 8190 bytes",
    ),
    "a head cut off in a header": (cut_head, "in the middle of the answer's head"),
}
"""Answers whose head aiohttp quotes only in part: a line longer than it reads (8,190 bytes; it
quotes the first 100), the bearer token echoed 90 bytes into it; or a head cut off after the
token's first 12 characters. With what the error says instead."""


@pytest.mark.parametrize("where", list(HEADS_QUOTED_CUT))
async def test_a_head_quoted_cut_leaks_no_part_of_the_secret_it_echoes(
    where: str, logs: pytest.LogCaptureFixture
) -> None:
    """aiohttp's error quoted the head in part (``tok-Echo-A...``), and so did the client's
    error's message or its causes: no part of a secret echoed there, which no scrub finds once
    cut, may show."""
    answer, said = HEADS_QUOTED_CUT[where]
    async with wire_server(answer) as base:
        vbo = VBOClient(base, username=USERNAME, password=PASSWORDS["plain"], retry=FAST, api_version="v1")
        error = await raised_by(vbo, "jobs")
    assert isinstance(error, TransportError), error
    assert said in str(error)  # what went wrong is still said
    records = logs.records or [logging.makeLogRecord({"msg": "(nothing logged)"})]
    assert leaks(error, records) == {}
    shown = [str(error), repr(error), "".join(traceback.format_exception(error))]
    shown += [logging.Formatter().format(record) for record in records]
    for text in shown:
        assert ACCESS[:6] not in text  # not even the part before the cut


def echoed_in_a_refused_line(where: str) -> Answer:
    """The token endpoint answers with the password (decoded, as a form parser reads it) in a
    line aiohttp's parser refuses: a header with a NUL, a header name, a status line."""

    def answer(head: bytes, body: bytes) -> bytes:
        password = unquote_plus(body.decode()).split("password=", 1)[1].encode()
        if where == "header":
            return (
                b"HTTP/1.1 400 Bad Request\r\nx-debug: password="
                + password
                + b"\x00\r\ncontent-length: 0\r\n\r\n"
            )
        if where == "header name":
            return b"HTTP/1.1 400 Bad Request\r\n" + password + b"\x01: 1\r\ncontent-length: 0\r\n\r\n"
        return b"HTTP/1.1 4x0 " + password + b"\r\ncontent-length: 0\r\n\r\n"

    return answer


@pytest.mark.parametrize("transport", ["aiohttp", "httpx"])
@pytest.mark.parametrize("where", ["header", "header name", "status line"])
@pytest.mark.parametrize(
    "password", ["Geheimes-Pässwort-2024", "Corp\\Secret-2024", "It's-a-Secret-2024", 'It\'s-a-"quoted"-pw9']
)
async def test_a_line_the_parser_refuses_leaks_no_secret_it_echoes(
    transport: str, where: str, password: str, logs: pytest.LogCaptureFixture
) -> None:
    """aiohttp quotes a refused line as a bytes literal, escaped once more by its response
    error: ``ä`` as ``\\xc3\\xa4``, ``\\`` as ``\\\\``, ``'`` as ``\\'``, forms no scrub reads, so
    the password the server echoed there showed whole in the error, its causes and the logs. The
    error now says what is wrong without the line. httpx's own transport (h11) quotes the line
    as a bytes literal too (``bytearray(b'...')``): that form is masked."""
    async with wire_server(echoed_in_a_refused_line(where)) as base:
        vbo = VBOClient(
            base,
            username=USERNAME,
            password=password,
            retry=FAST,
            api_version="v1",
            transport=httpx.AsyncHTTPTransport() if transport == "httpx" else None,
        )
        error = await raised_by(vbo, "jobs")
    assert isinstance(error, TransportError | AuthenticationError), error
    if isinstance(error, TransportError):
        assert ("not valid HTTP" if transport == "aiohttp" else "RemoteProtocolError: illegal") in str(error)
    # httpcore's own DEBUG log shows the line as it came: not vbo-async's to scrub.
    records = [record for record in logs.records if not record.name.startswith("httpcore")]
    records = records or [logging.makeLogRecord({"msg": "(nothing logged)"})]
    shown = [str(error), repr(error), "".join(traceback.format_exception(error))]
    shown += [logging.Formatter().format(record) for record in records]
    core = password[5:15]  # a stretch of it, whatever the escaping around
    for text in shown:
        for form in (core, core.encode("unicode_escape").decode(), repr(core.encode())[2:-1]):
            assert form not in text, (form, text[:300])


# --- 8b. short passwords: hidden where echoed, the words and URLs around them left readable ----------


@pytest.mark.parametrize("password", ["v1", "Jobs", "a", "admin", "8"])
async def test_a_short_password_is_hidden_in_an_echoed_form_and_leaves_the_rest_readable(
    password: str,
) -> None:
    """A password of a few characters, or a common word, was masked inside every word and URL
    that contained it: "HTTP 500: the ***dministr***tor ... (GET https://vbo.test:4443/***/Jobs)"."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/Token"):
            return httpx.Response(400, text=f"invalid_grant: {request.content.decode()}")
        return httpx.Response(500, json={"message": "the database is busy"})

    refused = await raised_by(client_for(handler, username="svc", password=password), "jobs")
    assert isinstance(refused, AuthenticationError), refused
    assert str(refused) == (
        "the server refused the password grant: invalid_grant: "
        f"grant_type=password&username=svc&password=*** (POST {BASE}/v1/Token)"
    )

    def failing(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/Token"):
            return httpx.Response(200, content=token_json())
        return httpx.Response(500, json={"message": "the administrator says the database is busy"})

    error = await raised_by(client_for(failing, password=password), "jobs")
    assert isinstance(error, ServerError), error
    assert str(error) == f"HTTP 500: the administrator says the database is busy (GET {BASE}/v1/Jobs)"


class Crowded(AiohttpTransport):
    """The default transport with one connection, held by a request the server never answers
    while a URL carrying ``t=`` is asked for, with a pool timeout of 10 ms: aiohttp's own
    ``ConnectionTimeoutError``, which quotes the whole URL, becomes the cause of the client's
    `TransportError` (the client's own timeouts are longer than an attempt's deadline, so a
    transport with shorter ones shows what any aiohttp failure quoting the URL does)."""

    def __init__(self, base: str, held: asyncio.Event) -> None:
        super().__init__(limits=httpx.Limits(max_connections=1))
        self._base = base
        self._held = held
        self._hold: asyncio.Task[httpx.Response] | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if "t=" not in str(request.url):
            return await super().handle_async_request(request)
        if self._hold is None:
            hold = httpx.Request("GET", f"{self._base}/hold", extensions=request.extensions)
            self._hold = asyncio.ensure_future(super().handle_async_request(hold))
            await self._held.wait()  # the only connection is taken
        timeouts = {"connect": 0.01, "read": None, "write": None, "pool": 0.01}
        crowded = httpx.Request(
            request.method, request.url, headers=request.headers, extensions={"timeout": timeouts}
        )
        return await super().handle_async_request(crowded)

    async def aclose(self) -> None:
        if self._hold is not None:
            self._hold.cancel()
            with contextlib.suppress(BaseException):
                await self._hold
        await super().aclose()


async def test_no_link_of_a_transport_errors_cause_chain_quotes_a_secret(
    logs: pytest.LogCaptureFixture,
) -> None:
    """``logging.exception`` prints an error's whole chain of causes and contexts: the aiohttp
    error under the `TransportError` quoted the URL the server chose, secret included, although
    the `TransportError` itself was scrubbed."""
    password = PASSWORDS["special"]
    held = asyncio.Event()
    secret = quote(f"{password}|{ACCESS}", safe="")

    async def answer(head: bytes, body: bytes, writer: asyncio.StreamWriter) -> None:
        if b" /hold " in head:
            held.set()
            await asyncio.Event().wait()  # never answered
        if b"/Token " in head:
            content = token_json()
        else:
            content = json.dumps(
                {"results": [{"id": "j1"}], "_links": {"next": {"href": f"/v1/Jobs?t={secret}"}}}
            ).encode()
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%b"
            % (len(content), content)
        )
        await writer.drain()

    async with serve_raw(answer) as port:
        base = f"http://127.0.0.1:{port}"
        vbo = VBOClient(
            base,
            username=USERNAME,
            password=password,
            retry=FAST,
            api_version="v1",
            transport=Crowded(base, held),
        )
        error = await raised_by(vbo, "jobs")
    assert isinstance(error, TransportError), repr(error)
    assert "***" in str(error.url)
    logging.getLogger("vbo_async.tests").exception("the sweep failed", exc_info=error)
    printed = "\n".join(logging.Formatter().format(record) for record in logs.records)
    assert "Connection timeout to host" in printed  # the chain is there, scrubbed
    for text in (printed, "".join(traceback.format_exception(error))):
        assert PREFIX not in text
        assert ACCESS not in text
        assert secret not in text
    assert leaks(error, logs.records) == {}


def test_a_chain_is_read_to_its_end_for_secrets() -> None:
    """Causes, contexts and grouped exceptions, as a traceback prints them; a chain too long to
    read counts as quoting one."""
    scrub = Redactor(PREFIX).scrub
    deep: BaseException = ValueError(f"GET /v1/Jobs?t={PREFIX}")
    for depth in range(5):
        outer = OSError(f"layer {depth}")
        outer.__context__ = deep
        deep = outer
    assert _quotes_secret(deep, scrub)
    grouped = ExceptionGroup("two", [OSError("fine"), OSError(f"x={PREFIX}")])
    assert _quotes_secret(RuntimeError("outer").with_traceback(None), scrub) is False
    noted = OSError("fine")
    noted.add_note(f"while asking for /v1/Jobs?t={PREFIX}")
    assert _quotes_secret(noted, scrub)
    assert _quotes_secret(grouped, scrub)
    long: BaseException = OSError("fine")
    for _ in range(100):
        outer = OSError("fine")
        outer.__cause__ = long
        long = outer
    assert _quotes_secret(long, scrub)
    assert not _quotes_secret(OSError("fine"), scrub)


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


QUERY_URLS = [
    "https://vbo01:4443/?username=svc&password=S3cr3t-PW",
    "https://vbo01:4443/v8?password=S3cr3t-PW",
    "https://vbo01:4443#password=S3cr3t-PW",
    "vbo01:4443/?password=S3cr3t-PW",
    "https://vbo01:44x3/?password=S3cr3t-PW",
    "https://vbo01/?user=svc@corp&password=S3cr3t-PW",
    "https://svc:S3cr3t-PW?x@vbo01:4443/",
]
"""Base URLs carrying the password in a query, as monitoring tools' own URLs do (PRTG's API
takes ``&password=``): refused (a base URL carries no query), without the query said back."""


@pytest.mark.parametrize("url", QUERY_URLS)
def test_a_base_url_with_a_query_is_refused_without_echoing_it(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        VBOClient(url, username="svc", password=PREFIX, api_version="v1")
    error = caught.value
    assert "base_url" in str(error)
    if "@" not in url:
        assert "vbo01" in str(error)  # the URL is still said, up to its query
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


async def test_a_prefetched_href_quoting_a_secret_leaks_it_in_no_link_error_and_no_log(
    logs: pytest.LogCaptureFixture,
) -> None:
    """The same for a link ``poll_jobs`` follows for every job: the failure lands in the
    tenant's ``link_errors``, and the debug record of the failed prefetch, scrubbed."""
    password = PASSWORDS["plain"]
    org = "b2d9414d-c417-4a94-be3b-b38a3c2e8a7b"

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/Token"):
            return httpx.Response(200, content=token_json())
        if "sig" in request.url.params:
            return httpx.Response(404, json={"message": "gone"})
        bearer = request.headers["authorization"].removeprefix("Bearer ")
        href = f"/v1/BackupRepositories/r1?sig={bearer}&p={password}&r={REFRESH}"
        job = {"id": "j1", "name": "D", "_links": {"repository": {"href": href}}}
        return httpx.Response(200, json=[job])

    async with client_for(handler, password=password) as vbo:
        sweep = poll_jobs([PollTarget(client=vbo, organization_id=org)], follow=("repository",))
        async with sweep as results:
            (result,) = [result async for result in results]
    error = result.link_errors[("j1", "repository")]
    assert "sig=***" in str(error)
    assert leaks(error, logs.records) == {}


@pytest.mark.parametrize("where", ["the looping next link", "the listing's own link"])
async def test_a_listing_that_loops_through_an_href_quoting_a_secret_leaks_it_in_no_error(
    where: str, logs: pytest.LogCaptureFixture
) -> None:
    """The loop error names the listing and the ``next`` that loops, besides the page it was read
    on (the error's ``url``, scrubbed before). A ``next`` naming a page already read behind an
    empty parameter (query noise, ignored when pages are compared) or a listing reached through a
    link whose href quotes a secret put it into the message unscrubbed."""
    password = PASSWORDS["special"]

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/Token"):
            return httpx.Response(200, content=token_json())
        if request.url.path.endswith("/Jobs/j1"):
            href = "/v1/Jobs/j1/JobSessions"
            if where == "the listing's own link":
                href += "?" + secret_query(request, password)
            return httpx.Response(
                200, json={"id": "j1", "name": "D", "_links": {"jobsessions": {"href": href}}}
            )
        if "offset=1" not in str(request.url):
            return httpx.Response(
                200, json={"results": [{"id": "s1"}], "_links": {"next": {"href": "?offset=1"}}}
            )
        noise = (
            "&" + secret_query(request, password).replace("=", "x") + "="
            if where.startswith("the looping")
            else ""
        )
        href = f"{request.url.path}?offset=1{noise}"
        return httpx.Response(200, json={"results": [{"id": "s2"}], "_links": {"next": {"href": href}}})

    async with client_for(handler, password=password) as vbo:
        link = (await vbo.job("j1")).links.jobsessions
        assert link is not None
        with pytest.raises(APIError, match="loops") as caught:
            await link
    assert "***" in str(caught.value)  # scrubbed, not dropped
    assert leaks(caught.value, logs.records) == {}


async def test_a_listing_that_does_not_advance_through_an_href_quoting_a_secret_leaks_it_in_no_error(
    logs: pytest.LogCaptureFixture,
) -> None:
    """The error of a listing whose next page brings nothing new (a server ignoring the offset)
    names the listing, reached here through a link whose href quotes a secret, and the page."""
    password = PASSWORDS["special"]

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/Token"):
            return httpx.Response(200, content=token_json())
        if request.url.path.endswith("/Jobs/j1"):
            href = "/v1/Jobs/j1/JobSessions?" + secret_query(request, password)
            return httpx.Response(
                200, json={"id": "j1", "name": "D", "_links": {"jobsessions": {"href": href}}}
            )
        offset = int(request.url.params.get("offset", "0"))
        href = f"{request.url.path}?{secret_query(request, password)}&offset={offset + 1}"
        return httpx.Response(200, json={"results": [{"id": "s1"}], "_links": {"next": {"href": href}}})

    async with client_for(handler, password=password) as vbo:
        link = (await vbo.job("j1")).links.jobsessions
        assert link is not None
        with pytest.raises(APIError, match="does not advance") as caught:
            await link
    assert "***" in str(caught.value)  # scrubbed, not dropped
    assert leaks(caught.value, logs.records) == {}


def exception_chain(error: BaseException) -> list[BaseException]:
    """``error`` and every exception reachable from it through ``__cause__`` and ``__context__``,
    a suppressed context (``raise ... from None``) included: it is still attached to the error,
    for any code (an error reporter, a debugger) to read, and keeps whatever it holds alive."""
    found: list[BaseException] = []
    pending: list[BaseException | None] = [error]
    while pending:
        exc = pending.pop()
        if exc is None or any(exc is seen for seen in found):
            continue
        found.append(exc)
        pending += [exc.__cause__, exc.__context__]
    return found


@pytest.mark.parametrize("answer", ["a body that is not JSON", "an unknown Content-Encoding"])
async def test_an_undecodable_answer_echoing_a_secret_keeps_it_in_no_exception_of_the_chain(
    answer: str, logs: pytest.LogCaptureFixture
) -> None:
    """The `DecodeError` of a success that cannot be read was raised inside the handler of the
    parser's or the body decoder's error: that error stayed its (suppressed) ``__context__``,
    holding the server's text unscrubbed (orjson's error keeps the whole body as ``doc``: the
    password and the token a server echoed, and up to ``max_response_bytes`` of memory with it)."""
    password = PASSWORDS["plain"]

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/Token"):
            return httpx.Response(200, content=token_json())
        echo = f"{request.headers['authorization']} {password} {REFRESH}"
        if answer == "a body that is not JSON":
            return httpx.Response(200, text=f"<html>{echo}</html>")
        headers = {"Content-Encoding": echo}
        return httpx.Response(200, stream=httpx.ByteStream(b"[]"), headers=headers)

    error = await raised_by(client_for(handler, password=password), "jobs")
    assert isinstance(error, DecodeError)
    chain = exception_chain(error)
    shown = {
        f"{index}: {type(exc).__name__}": f"{exc!s} {exc!r} {getattr(exc, '__dict__', {})!r}"
        for index, exc in enumerate(chain)
    }
    assert {place: [s for s in SECRETS if s in text] for place, text in shown.items()} == {
        place: [] for place in shown
    }
    assert leaks(error, logs.records) == {}


# --- the frames of a traceback: what an error reporter shows of each frame's variables -----------


async def _token_answer(
    writer: asyncio.StreamWriter, status: bytes = b"200 OK", content: bytes | None = None
) -> None:
    content = token_json() if content is None else content
    writer.write(
        b"HTTP/1.1 %b\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%b"
        % (status, len(content), content)
    )
    await writer.drain()


async def _refuse_password(head: bytes, body: bytes, writer: asyncio.StreamWriter) -> None:
    said = json.dumps({"error": "invalid_grant", "error_description": "The password is incorrect."})
    await _token_answer(writer, b"400 Bad Request", said.encode())


async def _cut_token_request(head: bytes, body: bytes, writer: asyncio.StreamWriter) -> None:
    writer.transport.abort()


async def _cut_api_request(head: bytes, body: bytes, writer: asyncio.StreamWriter) -> None:
    if b"/Token " in head:
        await _token_answer(writer)
    else:
        writer.transport.abort()


async def _unanswered_api_request(head: bytes, body: bytes, writer: asyncio.StreamWriter) -> None:
    if b"/Token " in head:
        await _token_answer(writer)
    else:
        await asyncio.Event().wait()


class _CutGrantsAfterA401:
    """The first password grant answered, every API request refused (401), and every grant after
    the first cut off: the refresh grant, then the password grant made instead of it (a refresh
    grant cut off may have used its refresh token up). One per test (it counts the grants)."""

    def __init__(self) -> None:
        self.grants = 0

    async def __call__(self, head: bytes, body: bytes, writer: asyncio.StreamWriter) -> None:
        if b"/Token " in head:
            self.grants += 1
            if self.grants == 1:
                await _token_answer(writer)
            else:
                writer.transport.abort()
        else:
            writer.write(b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\n\r\n")
            await writer.drain()


async def _token_page_echoing_the_password(head: bytes, body: bytes, writer: asyncio.StreamWriter) -> None:
    password = dict(parse_qsl(body.decode()))["password"]
    await _token_answer(writer, content=f"<html>no login for {password}</html>".encode())


async def _token_object_echoing_the_password(head: bytes, body: bytes, writer: asyncio.StreamWriter) -> None:
    password = dict(parse_qsl(body.decode()))["password"]
    await _token_answer(writer, content=json.dumps({"token_type": "bearer", "note": password}).encode())


FRAME_CASES = {
    "the password refused": (_refuse_password, AuthenticationError),
    "a token answer not JSON, echoing the password": (_token_page_echoing_the_password, DecodeError),
    "a token answer without a token, echoing the password": (_token_object_echoing_the_password, DecodeError),
    "the token request cut off": (_cut_token_request, TransportError),
    "an API request cut off": (_cut_api_request, TransportError),
    "an API request unanswered": (_unanswered_api_request, TransportError),
    "a 401, then the refresh grant cut off": (_CutGrantsAfterA401, TransportError),
}


@pytest.mark.parametrize("transport", ["aiohttp (default)", "httpx"])
@pytest.mark.parametrize("case", list(FRAME_CASES))
async def test_no_frame_of_an_errors_traceback_holds_a_secret(case: str, transport: str) -> None:
    """Error reporters (Sentry by default, ``rich``'s and pytest's tracebacks with locals,
    ``traceback.TracebackException(capture_locals=True)``) show the variables of every frame of
    an error's traceback and of its causes': the token form (password or refresh token) was a
    plain dict there, and the transport's frames under a `TransportError` held the request's
    headers (the bearer token) and body (the form, URL-encoded)."""
    answer, expected = FRAME_CASES[case]
    if isinstance(answer, type):
        answer = answer()
    password = PASSWORDS["special"]
    async with serve_raw(answer) as port:
        vbo = VBOClient(
            f"http://127.0.0.1:{port}",
            username=USERNAME,
            password=password,
            api_version="v1",
            retry=RetryPolicy(attempts=1),
            # Short only where the server never answers: a machine busy for 0.2 s made an answered
            # case a timeout (a TransportError where AuthenticationError or DecodeError is asserted).
            timeout=0.2 if case == "an API request unanswered" else 30.0,
            transport=httpx.AsyncHTTPTransport() if transport == "httpx" else None,
        )
        error = await raised_by(vbo, "jobs")
    assert isinstance(error, expected), repr(error)
    shown = "".join(traceback.TracebackException.from_exception(error, capture_locals=True).format())
    assert "vbo_async" in shown  # the frames are there, only their secrets are not
    assert [line.strip() for line in shown.splitlines() if any(s in line for s in SECRETS)] == []


ECHOED_HEADS = {
    "a 302 whose Location quotes the bearer token": (b"302 Found", b"location: https://evil.example/?t=%b"),
    "a 403 whose WWW-Authenticate quotes it": (b"403 Forbidden", b'www-authenticate: Bearer error="%b"'),
    "a 429 whose Retry-After is it": (b"429 Too Many Requests", b"retry-after: %b"),
    "a 503 setting it as a cookie": (b"503 Service Unavailable", b"set-cookie: s=%b"),
}


@pytest.mark.parametrize("transport", ["aiohttp (default)", "httpx"])
@pytest.mark.parametrize("call", ["job", "stop_job"])
@pytest.mark.parametrize("case", list(ECHOED_HEADS))
async def test_no_frame_of_an_error_answer_holds_the_headers_echoing_a_secret(
    case: str, call: str, transport: str
) -> None:
    """An error answer whose headers quote the bearer token: a job action's error kept, in the
    frame that read its status, the answer and its headers as received (``head = Headers({...,
    'location': '...?t=<token>'})``), shown by every error reporter that shows variables. GETs
    already dropped those frames."""
    status, header = ECHOED_HEADS[case]

    async def answer(head: bytes, body: bytes, writer: asyncio.StreamWriter) -> None:
        if b"/Token " in head:
            await _token_answer(writer)
            return
        bearer = next(
            line.split(b" ", 2)[2]
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"authorization:")
        )
        text = b'{"message": "no"}'
        writer.write(
            b"HTTP/1.1 %b\r\n%b\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%b"
            % (status, header % bearer, len(text), text)
        )
        await writer.drain()

    async with serve_raw(answer) as port:
        vbo = VBOClient(
            f"http://127.0.0.1:{port}",
            username=USERNAME,
            password=PASSWORDS["special"],
            api_version="v1",
            retry=RetryPolicy(attempts=1, max_retry_after=0.01),
            transport=httpx.AsyncHTTPTransport() if transport == "httpx" else None,
        )
        error = await raised_by(vbo, call)
    assert isinstance(error, APIError), repr(error)
    shown = "".join(traceback.TracebackException.from_exception(error, capture_locals=True).format())
    assert "vbo_async" in shown  # the frames are there, only their secrets are not
    assert [line.strip() for line in shown.splitlines() if any(s in line for s in SECRETS)] == []


@pytest.mark.parametrize(
    ("base_url", "option"),
    [
        ("https://vbo01:4443", {"max_concurrency": 0}),
        ("https://vbo01:4443", {"timeout": -1}),
        ("https://vbo01:4443", {"verify": "/nonexistent/ca.pem"}),
        ("https://vbo01:4443", {"api_version": "v9"}),
        ("https://vbo01:99999", {}),
        ("https://vbo01:4443", {"username": ""}),
    ],
    ids=["concurrency", "timeout", "ca-bundle", "version", "port", "username"],
)
def test_a_refused_option_leaves_the_password_in_no_frame(base_url: str, option: dict[str, object]) -> None:
    """A `ConfigError` for a bad option next to a good password: the constructor's frame (in the
    error's traceback, its variables shown by error reporters) held the password as it was
    given, and showing the half-built client (or its `ApiRoot`) there raised AttributeError."""
    kwargs: dict[str, object] = {"username": USERNAME, **option}
    with pytest.raises(ConfigError) as caught:
        VBOClient(base_url, password=PASSWORDS["special"], **kwargs)  # type: ignore[arg-type]
    frames = traceback.TracebackException.from_exception(caught.value, capture_locals=True).stack
    ours = [frame for frame in frames if "vbo_async" in frame.filename]
    assert ours
    assert all(frame.locals is not None for frame in ours)
    shown = "".join(str(frame.locals) for frame in ours)
    assert "<VBOClient (not built: its options were refused)>" in shown
    assert PREFIX not in shown


async def _api_requests_and_logout_unanswered(head: bytes, body: bytes, writer: asyncio.StreamWriter) -> None:
    """The token and the organizations answered (an empty page), every other request never."""
    if b"/token " in head.lower():
        await _token_answer(writer)
    elif b" /v8/organizations" in head.lower().partition(b"\r\n")[0]:
        await _token_answer(writer, content=b'{"offset": 0, "limit": 30, "results": []}')
    else:
        await asyncio.Event().wait()


@pytest.mark.parametrize("transport", ["aiohttp (default)", "httpx"])
@pytest.mark.parametrize("call", ["jobs", "start_job", "aclose"])
async def test_a_call_cut_short_by_its_caller_leaves_no_token_in_a_frame(
    call: str, transport: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A caller's own deadline (``asyncio.timeout``: a web backend's, a sweep's) cancelling a
    request in flight: the `CancelledError` under its `TimeoutError` was raised through the
    transport's frames, whose request headers (and aiohttp's) held the bearer token, and the
    logout's (``aclose``) held it as a string; error reporters show every frame's variables."""
    monkeypatch.setattr(vbo_async._client, "LOGOUT_TIMEOUT", 0.5)  # the last aclose's unanswered logout
    async with serve_raw(_api_requests_and_logout_unanswered) as port:
        vbo = VBOClient(
            f"http://127.0.0.1:{port}",
            username=USERNAME,
            password=PASSWORDS["special"],
            api_version="v8",
            transport=httpx.AsyncHTTPTransport() if transport == "httpx" else None,
        )
        try:
            assert await vbo.organizations() == []  # the token, before the deadline
            cut = {"jobs": vbo.jobs, "start_job": lambda: vbo.start_job("j1"), "aclose": vbo.aclose}[call]
            with pytest.raises(TimeoutError) as caught:
                await asyncio.wait_for(cut(), 0.2)  # aclose: its logout is never answered
        finally:
            await vbo.aclose()
    stack = traceback.TracebackException.from_exception(caught.value, capture_locals=True)
    shown = "".join(stack.format())
    assert "CancelledError" in shown
    assert [line.strip()[:200] for line in shown.splitlines() if any(s in line for s in SECRETS)] == []


async def test_secrets_a_server_puts_in_hrefs_are_in_no_repr_pickle_or_json_of_a_model() -> None:
    """A server echoing the bearer token and the password into a job's hrefs: the job's repr,
    its pickle, `to_jsonable` (which an embedding backend serves to its users) and ``to_wire``
    showed them as sent (errors and logs already scrubbed them). The link itself keeps its
    href: following it still reaches the resource."""
    password = PASSWORDS["special"]
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v6/Token":
            return httpx.Response(200, content=token_json())
        asked.append(str(request.url))
        if request.url.path == "/v6/Jobs/j1":
            echo = f"access_token={ACCESS}&pw={quote(password)}"
            links = {
                "self": {"href": f"/v6/Jobs/j1?{echo}"},
                "backupRepository": {"href": f"/v6/BackupRepositories/r1?{echo}"},
            }
            return httpx.Response(200, json={"id": "j1", "name": "mail", "_links": links})
        return httpx.Response(200, json={"id": "r1", "name": "repo", "_links": {}})

    async with VBOClient(
        BASE, username=USERNAME, password=password, api_version="v6", transport=httpx.MockTransport(handler)
    ) as vbo:
        job = await vbo.job("j1")
        shown = {
            "repr": repr(job),
            "pickle": pickle.dumps(job).decode("latin-1"),
            "to_jsonable": json.dumps(to_jsonable(job)),
            "to_wire": json.dumps(vbo.to_wire(job)),
        }
        assert {place: [s for s in SECRETS if s in text] for place, text in shown.items()} == {
            place: [] for place in shown
        }
        assert "access_token=***" in shown["repr"]
        assert to_jsonable(job)["links"]["repository"].startswith(
            "/v6/BackupRepositories/r1?access_token=***"
        )
        assert pickle.loads(pickle.dumps(job.links.repository)).href.startswith("/v6/BackupRepositories/r1?")
        repository = await job.links.repository
        assert repository.name == "repo"
        assert ACCESS in asked[-1]  # followed as sent (to the client's own server)


# --- the request an httpx error carries: its body is the token form, its headers the bearer ------


def _token_request_refused(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


def _api_request_cut(request: httpx.Request) -> httpx.Response:
    if request.url.path.endswith("/Token"):
        return httpx.Response(200, content=token_json())
    raise httpx.ReadError("connection reset", request=request)


class _RefreshCutAfterA401:
    """The first password grant answered, every API request refused (401), every grant after the
    first cut off: the refresh grant, then the password grant made instead of it (a refresh grant
    cut off may have used its refresh token up). One per test (it counts the grants)."""

    def __init__(self) -> None:
        self.grants = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/Token"):
            self.grants += 1
            if self.grants > 1:
                raise httpx.WriteError("connection reset", request=request)
            return httpx.Response(200, content=token_json())
        return httpx.Response(401)


REQUEST_CASES = {
    "the password grant unsent": _token_request_refused,
    "an API request cut off": _api_request_cut,
    "a 401, then the refresh grant cut off": _RefreshCutAfterA401,
}


def requests_of(error: BaseException) -> list[httpx.Request]:
    """The ``httpx.Request`` of each httpx error in ``error``'s chain."""
    found = []
    for exc in exception_chain(error):
        if isinstance(exc, httpx.RequestError):
            with contextlib.suppress(RuntimeError):
                found.append(exc.request)
    return found


@pytest.mark.parametrize("case", list(REQUEST_CASES))
async def test_no_request_in_an_errors_chain_carries_the_form_or_the_bearer(case: str) -> None:
    """The httpx error under a `TransportError` kept the ``httpx.Request`` it failed on, for any
    handler to read: ``error.__cause__.request.content`` was the token form, URL-encoded
    (``password=S3cr3t-PW...``, or the refresh token), and ``.headers["authorization"]`` the
    bearer token. The request is kept (method and URL say what failed), its body and its
    ``Authorization`` header are not."""
    password = PASSWORDS["plain"]
    answer = REQUEST_CASES[case]
    handler = answer() if isinstance(answer, type) else answer
    error = await raised_by(client_for(handler, password=password), "jobs")
    assert isinstance(error, TransportError), repr(error)
    requests = requests_of(error)
    assert requests, "no httpx error in the chain: the test would prove nothing"
    for request in requests:
        assert request.method in ("GET", "POST")
        assert request.url.host == "vbo.test"
        shown = f"{request.content!r} {request.headers.multi_items()!r} {request.url}"
        assert [s for s in SECRETS if s in shown or quote(s, safe="") in shown] == []


@pytest.mark.parametrize("case", ["the token request cut off", "an API request cut off"])
async def test_no_request_in_an_errors_chain_carries_the_form_or_the_bearer_on_the_wire(case: str) -> None:
    """As above through real sockets: the default transport raises httpx's errors too, with the
    request it was given (``httpx.AsyncHTTPTransport`` raises them without one)."""
    answer, _ = FRAME_CASES[case]
    async with serve_raw(answer) as port:
        vbo = VBOClient(
            f"http://127.0.0.1:{port}",
            username=USERNAME,
            password=PASSWORDS["special"],
            api_version="v1",
            retry=RetryPolicy(attempts=1),
        )
        error = await raised_by(vbo, "jobs")
    assert isinstance(error, TransportError), repr(error)
    requests = requests_of(error)
    assert requests, "no httpx error in the chain: the test would prove nothing"
    for request in requests:
        shown = f"{request.content!r} {request.headers.multi_items()!r} {request.url}"
        assert [s for s in SECRETS if s in shown or quote(s, safe="") in shown] == []
        assert "authorization" not in request.headers


def test_a_serve_source_never_says_or_pickles_its_password() -> None:
    """What ``serve`` builds a server's client from holds the password it read: its repr hides it and
    pickling (or deep-copying) it is refused with a typed error that does not say it either."""
    import copy

    from vbo_async._cli._reload import _Source
    from vbo_async._cli._targets import ServerTarget

    secret = "S3cr3t-in-source"
    source = _Source(
        ServerTarget(url="https://vb365.example", username="admin", password_env="PW"), secret, None
    )
    assert secret not in repr(source)
    for attempt in (pickle.dumps, copy.deepcopy):
        with pytest.raises(ClientStateError, match="cannot be pickled") as caught:
            attempt(source)
        assert secret not in str(caught.value)
    assert source.same_client(_Source(source.target, secret, None))  # still compared as before


def test_a_simulator_config_repr_hides_its_password() -> None:
    secret = "S3cr3t-of-the-simulator"
    config = SimulatorConfig(password=secret)
    assert secret not in repr(config)
    assert "username='admin'" in repr(config)  # the rest is still shown


async def _token_answer_too_large_echoing_the_password(
    head: bytes, body: bytes, writer: asyncio.StreamWriter
) -> None:
    """A token answer past ``max_response_bytes`` that echoes the password all along, sent
    without a ``Content-Length`` (read until the connection closes): refused as it arrives."""
    password = dict(parse_qsl(body.decode()))["password"]
    writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/html\r\nconnection: close\r\n\r\n")
    writer.write(f"<p>no login for {password}</p>".encode() * 400)
    await writer.drain()
    writer.close()


@pytest.mark.parametrize("transport", ["aiohttp (default)", "httpx"])
@pytest.mark.parametrize("encoded", [False, True])
@pytest.mark.parametrize(
    ("version", "call"), [("v1", "jobs"), ("auto", "discover_api_version"), ("v8", "job")]
)
async def test_a_token_answer_over_the_size_limit_leaves_no_secret_in_a_frame(
    transport: str, encoded: bool, version: str, call: str
) -> None:
    """A token answer past ``max_response_bytes`` (an unreadable answer: a `DecodeError`): the
    frame that read the body kept the last chunk read (``chunk``, and what it decoded to) as a
    local, which an error reporter shows; where no caller stripped the traceback (the version
    probe of ``discover_api_version()``), the answer echoing the password showed it there."""

    async def answer(head: bytes, body: bytes, writer: asyncio.StreamWriter) -> None:
        if not encoded:
            await _token_answer_too_large_echoing_the_password(head, body, writer)
            return
        password = dict(parse_qsl(body.decode()))["password"]
        page = gzip.compress(f"<p>no login for {password}</p>".encode() * 400, mtime=0)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\nconnection: close\r\n\r\n" + page)
        await writer.drain()
        writer.close()

    async with serve_raw(answer) as port:
        vbo = VBOClient(
            f"http://127.0.0.1:{port}",
            username=USERNAME,
            password=PASSWORDS["special"],
            api_version=version,
            retry=RetryPolicy(attempts=1),
            max_response_bytes=4096,
            transport=httpx.AsyncHTTPTransport() if transport == "httpx" else None,
        )
        error = await raised_by(vbo, call)
    assert isinstance(error, DecodeError), repr(error)
    assert "max_response_bytes=4096" in str(error)
    shown = "".join(traceback.TracebackException.from_exception(error, capture_locals=True).format())
    assert "vbo_async" in shown  # the frames are there, only their secrets are not
    assert [line.strip()[:200] for line in shown.splitlines() if any(s in line for s in SECRETS)] == []


async def test_a_token_a_server_puts_in_an_id_stays_out_of_the_action_and_mended_body_logs(
    logs: pytest.LogCaptureFixture,
) -> None:
    """A server naming a job by the bearer token (as an echo may): the job action's INFO line
    ("job action disable sent to ...") and the DEBUG line of a body read mended ("... read
    mended, or leniently") quoted the URL as it was, token and all, where every other log line
    scrubs it."""

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/Token"):
            return httpx.Response(200, content=token_json())
        if path == "/v1/Jobs":
            return httpx.Response(200, json=[{"id": ACCESS, "name": "Mail"}])
        if path == f"/v1/Jobs/{ACCESS}":
            return httpx.Response(200, content=b'{"id": "j1", "name": "bad \xff byte"}')
        return httpx.Response(200)

    async with client_for(handler) as vbo:
        (job,) = await vbo.jobs()
        await vbo.disable_job(job)
        mended = await vbo.job(job.id)
    assert mended.name == "bad \ufffd byte"
    said = [logging.Formatter().format(record) for record in logs.records]
    assert any("job action disable sent to" in line for line in said), said
    assert any("read mended" in line for line in said), said
    assert not [line for line in said if ACCESS in line]


async def test_a_token_a_server_puts_in_a_job_id_stays_out_of_the_health_logs(
    logs: pytest.LogCaptureFixture,
) -> None:
    """A job named by the bearer token whose sessions cannot be read: the DEBUG line saying so
    ("reading the sessions of job ... failed") quoted the id as sent, token and all, while the
    URL beside it was scrubbed; both `job_health` and a sweep's health logged it."""

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/Token"):
            return httpx.Response(200, content=token_json())
        if path == "/v1/Organizations/o1/Jobs":
            return httpx.Response(200, json=[{"id": ACCESS, "name": "Mail", "lastStatus": "Success"}])
        return httpx.Response(500, json={"message": "boom"})

    async with client_for(handler) as vbo:
        (job,) = await vbo.organization_jobs("o1")
        alone = await vbo.job_health(job)
        async with poll_jobs([PollTarget(client=vbo, organization_id="o1")], health=HealthPolicy()) as sweep:
            (result,) = [result async for result in sweep]
    assert alone.state is HealthState.UNKNOWN
    assert result.health is not None
    said = [logging.Formatter().format(record) for record in logs.records]
    failed = [line for line in said if "reading the sessions of job" in line]
    assert len(failed) == 2, said
    assert all("job '***' failed" in line for line in failed), failed
    assert not [line for line in said if ACCESS in line]


async def test_a_token_a_server_puts_in_a_job_id_stays_out_of_a_batched_sweeps_logs(
    logs: pytest.LogCaptureFixture,
) -> None:
    """The same in a batched sweep: a job the window's sessions cannot judge reads its own
    newest sessions, and a failure to read them was logged with the id as sent."""
    page = {"offset": 0, "limit": 10_000, "_links": {}}

    def handler(request: httpx.Request) -> httpx.Response:
        path, query = request.url.path, request.url.params
        if path.endswith("/Token"):
            return httpx.Response(200, content=token_json())
        if path == "/v8/Organizations":
            return httpx.Response(200, json={**page, "results": [{"id": "o1", "name": "Contoso"}]})
        if path == "/v8/Jobs":
            job = {"id": ACCESS, "name": "Mail", "organizationId": "o1", "lastStatus": "Failed"}
            job["lastRun"] = "2020-01-01T00:00:00Z"
            return httpx.Response(200, json={**page, "results": [job]})
        if path == "/v8/JobSessions" and "jobId" not in query:
            return httpx.Response(200, json={**page, "results": []})
        return httpx.Response(500, json={"message": "boom"})

    async with client_for(handler, api_version="v8") as vbo:
        target = PollTarget(client=vbo, organization_id="o1")
        async with poll_jobs([target], health=HealthPolicy(), batch=True) as sweep:
            (result,) = [result async for result in sweep]
    assert result.health is not None
    assert [health.state for health in result.health.values()] == [HealthState.UNKNOWN]
    said = [logging.Formatter().format(record) for record in logs.records]
    assert [line for line in said if "reading the sessions of job '***' failed" in line], said
    assert not [line for line in said if ACCESS in line]


@pytest.mark.parametrize("job_id", [None, 12345])
async def test_a_job_built_with_an_id_that_is_no_string_is_judged_unknown(job_id: object) -> None:
    """Scrubbing the id for the log line raised a bare AttributeError (`None.find`) where the job
    was UNKNOWN ("job.id must be a string")."""
    from vbo_async import Job

    async with client_for(lambda request: httpx.Response(200, content=token_json())) as vbo:
        health = await vbo.job_health(Job(id=job_id))  # type: ignore[arg-type]
    assert health.state is HealthState.UNKNOWN
    assert "job.id must be a string" in health.reason
