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
import html
import json
import logging
import pickle
import traceback
from collections.abc import Callable
from urllib.parse import parse_qsl

import httpx
import pytest

from vbo_async import (
    AuthenticationError,
    ConfigError,
    DecodeError,
    LinkError,
    NotFoundError,
    PollTarget,
    ServerError,
    VBOClient,
    VBOError,
    poll_jobs,
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


FOLLOWED_ANSWERS = {
    "404": lambda: httpx.Response(404, json={"message": "gone"}),
    "503 after retries": lambda: httpx.Response(503),
    "not JSON": lambda: httpx.Response(200, text="<html>"),
    "wrong shape": lambda: httpx.Response(200, json={"id": "r1", "capacity": "lots"}),
    "too large": lambda: httpx.Response(200, content=b"[" + b" " * 2048 + b"]"),
    "cut short": lambda: httpx.Response(200, content=b"{}", headers={"content-length": "10"}),
}
"""How the resource behind a followable href answers: each failure is an error naming the URL."""


@pytest.mark.parametrize("answer", list(FOLLOWED_ANSWERS))
@pytest.mark.parametrize("relation", ["next", "repository"])
async def test_a_followed_href_quoting_a_secret_leaks_it_in_no_error_and_no_log(
    relation: str, answer: str, logs: pytest.LogCaptureFixture
) -> None:
    """An href below the API root is followed whatever its query says; when the server put a
    secret there, the error naming the URL, and every log record of the request, hide it."""
    password = PASSWORDS["plain"]

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/Token"):
            return httpx.Response(200, content=token_json())
        if "sig" in request.url.params:
            return FOLLOWED_ANSWERS[answer]()
        bearer = request.headers["authorization"].removeprefix("Bearer ")
        path = "Jobs" if relation == "next" else "BackupRepositories/r1"
        href = f"/v1/{path}?sig={bearer}&p={password}&r={REFRESH}"
        if relation == "next":
            return httpx.Response(200, json={"results": [], "_links": {"next": {"href": href}}})
        return httpx.Response(200, json={"id": "j1", "name": "D", "_links": {"repository": {"href": href}}})

    async with client_for(handler, password=password, max_response_bytes=1024) as vbo:
        follow = vbo.jobs() if relation == "next" else (await vbo.job("j1")).links.repository
        with pytest.raises(VBOError) as caught:
            await follow
    assert "sig=***" in str(caught.value)  # the error still names the URL
    assert leaks(caught.value, logs.records) == {}


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
