"""Sending: the requests the sender builds from kept parts are the ones httpx builds itself."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vbo_async import LinkError, VBOClient
from vbo_async._aiohttp import AiohttpTransport
from vbo_async._sending import _URLS_KEPT, _Call, _declared_length
from vbo_async._tokens import Token

from .conftest import FAST, as_asgi, serve

BASE = "https://vbo.test:4443"
URLS = [
    f"{BASE}/v8/Jobs?organizationId=4d87f7dd-cd9f-466c-9753-bd041bb65caf&limit=10000",
    f"{BASE}/v1/Organizations/o%20x/Jobs",
    f"{BASE}/v8/JobSessions?jobId=%C3%BC&offset=30",
]


def _refuse(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"no request expected, got {request.method} {request.url}")


@pytest.fixture
def sender() -> Any:
    client = VBOClient(BASE, username="u", password="p", transport=httpx.MockTransport(_refuse))
    yield client._fetcher.sender
    asyncio.run(client.aclose())


def _token(access: str) -> Token:
    return Token(access_token=access, refresh_token=None, expires_at=0.0, refresh_at=0.0)


def _as_httpx_builds_it(sender: Any, call: _Call, token: Token | None) -> httpx.Request:
    """The request as built before the sender kept parts: from the URL string and header list."""
    sent = list(sender._headers)
    if call.headers:
        sent += [(key.encode("ascii"), value.encode("ascii")) for key, value in call.headers.items()]
    if token is not None:
        sent.append((b"Authorization", b"Bearer " + token.access_token.encode("ascii")))
    return httpx.Request(
        call.method, call.url, headers=sent, json=call.json, data=call.form, extensions=sender._extensions
    )


def _same(built: httpx.Request, expected: httpx.Request) -> None:
    assert built.method == expected.method
    assert built.url == expected.url
    assert str(built.url) == str(expected.url)
    assert built.headers.raw == expected.headers.raw
    assert built.content == expected.content  # read already: no RequestNotRead for a transport
    assert built.extensions == expected.extensions


@pytest.mark.parametrize("url", URLS)
def test_a_get_from_kept_parts_is_the_request_httpx_builds(sender: Any, url: str) -> None:
    for token in (None, _token("first"), _token("first"), _token("renewed"), None):
        call = _Call("GET", url, None, None, None, token is not None)
        _same(sender._build(call, token), _as_httpx_builds_it(sender, call, token))


@pytest.mark.parametrize(
    "call",
    [
        _Call("POST", URLS[0], {"full": False}, None, None, True),
        _Call("POST", URLS[1], None, None, None, True),
        _Call("POST", f"{BASE}/v8/token", None, {"grant_type": "password"}, None, False),
        _Call("POST", f"{BASE}/v1/Token", None, {"password": "a b&c=d%ü+", "grant_type": "x"}, None, False),
        _Call("POST", f"{BASE}/v8/token", None, {"username": "", "x": "\u00e9\U0001f600"}, None, True),
        _Call("POST", f"{BASE}/v8/token", None, {}, None, False),
        _Call("PUT", URLS[1], None, {"grant_type": "refresh_token"}, None, True),
        _Call("POST", f"{BASE}/v8/token", None, {"n": 1, "many": ["a", "b"]}, None, False),  # type: ignore[dict-item]
        _Call("POST", f"{BASE}/v8/token", None, {"grant_type": "password"}, {"X-Extra": "1"}, False),
        _Call("POST", f"{BASE}/v8/token/logout", None, None, {"Authorization": "Bearer t"}, False),
        _Call("GET", URLS[2], None, None, {"X-Extra": "1"}, True),
    ],
)
def test_other_requests_are_built_as_httpx_builds_them(sender: Any, call: _Call) -> None:
    token = _token("t") if call.authenticated else None
    for _ in range(2):  # with the URL parsed afresh, then kept
        _same(sender._build(call, token), _as_httpx_builds_it(sender, call, token))


def test_an_unparsable_url_is_a_link_error_every_time(sender: Any) -> None:
    call = _Call("GET", f"{BASE}/v8/Jobs\x00", None, None, None, False)
    for _ in range(2):
        with pytest.raises(LinkError, match="cannot request"):
            sender._build(call, None)


def test_the_kept_urls_are_bounded(sender: Any) -> None:
    for number in range(_URLS_KEPT + 10):
        sender._build(_Call("GET", f"{URLS[0]}&offset={number}", None, None, None, False), None)
    assert 0 < len(sender._urls) <= _URLS_KEPT


async def test_long_urls_are_not_kept_by_a_long_lived_client() -> None:
    """A server's hrefs may be as long as its answers allow (httpx takes 64 KiB): the parsed URLs
    a client keeps for its whole life (its sender's and its transport's, 1,024 each) must not
    keep such a URL, or one server could pin hundreds of megabytes in an exporter for months."""
    pad = "x" * 5_000  # within what uvicorn reads as a request line; a hostile server takes more
    pages = 6

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/Token"):
            return httpx.Response(200, json={"access_token": "tok", "expires_in": 3600})
        offset = int(request.url.params.get("offset", "0"))
        body: dict[str, Any] = {"results": [{"id": f"j{offset}"}]}
        if offset + 1 < pages:
            body["_links"] = {"next": {"href": f"/v6/Jobs?offset={offset + 1}&pad={pad}"}}
        return httpx.Response(200, json=body)

    async with (
        serve(as_asgi(handler)) as port,
        VBOClient(f"http://127.0.0.1:{port}", username="u", password="p", api_version="v6", retry=FAST) as v,
    ):
        assert len(await v.jobs()) == pages
        sender: Any = v._fetcher.sender
        transport: Any = sender._transport
        assert isinstance(transport, AiohttpTransport)  # the default: its GETs kept their URLs
        assert sender._urls  # short ones are kept
        assert transport._targets
        assert max(len(url) for url in sender._urls) < len(pad)
        assert max(len(url) for url in transport._targets) < len(pad)


@settings(max_examples=200, deadline=None)
@given(
    form=st.dictionaries(st.text(max_size=12), st.text(max_size=30), max_size=5),
    token=st.none() | st.sampled_from(["t", "abc.def-ghi"]),
)
def test_a_form_post_from_parts_is_the_request_httpx_builds(form: dict[str, str], token: str | None) -> None:
    client = VBOClient(BASE, username="u", password="p", transport=httpx.MockTransport(_refuse))
    sender: Any = client._fetcher.sender
    call = _Call("POST", f"{BASE}/v8/token", None, form, None, token is not None)
    bearer = None if token is None else _token(token)
    try:
        _same(sender._build(call, bearer), _as_httpx_builds_it(sender, call, bearer))
    finally:
        asyncio.run(client.aclose())


@pytest.mark.parametrize(
    ("status", "value", "declared"),
    [(200, "17", 17), (500, " 17 ", 17), (200, "-1", None), (200, None, None)]
    + [(status, "17", None) for status in (100, 103, 204, 304)],
)
def test_only_an_answer_that_can_have_a_body_declares_its_length(
    status: int, value: str | None, declared: int | None
) -> None:
    assert _declared_length(status, value) == declared
