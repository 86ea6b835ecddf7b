"""Hostile input from the caller's side: strings the environment mangles, ids that would change
a path, base URLs and API versions that would change every URL, plain HTTP to another host.

Each is refused with a `ConfigError` naming the argument (never quoting its value, which may be
a password) before any request is sent, or, for plain ``http://`` to a host that is not this
machine, logged once as a WARNING of the ``vbo_async`` logger when the client is built.

Also covered elsewhere: `RetryPolicy` fields (``tests/test_retry_policy.py``: 0, negative, NaN,
infinite, string, ``bool`` and ``None`` values of every field, out-of-range statuses, each a
`ConfigError` naming ``RetryPolicy.<field>``) and ``aclose()`` from another event loop
(``tests/test_misuse.py``, `ClientStateError`).

Before (2ff99dd) a lone surrogate in the password was accepted and failed later inside httpx,
an id with ``/`` was sent percent-encoded (and one with a surrogate raised ``UnicodeEncodeError``),
an empty ``?``/``#`` ended a base URL silently, ``..`` was an API version and plain HTTP was
silent: each test below fails there, but for the hosts that must not warn.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from vbo_async import (
    ConfigError,
    HealthState,
    Job,
    Organization,
    PollTarget,
    RetryPolicy,
    VBOClient,
    poll_jobs,
)

from .conftest import BASE, PASSWORD, USERNAME, FakeVBO, client_for
from .test_properties import PROPERTY

SURROGATE = "\udce9"
"""What ``os.environ`` holds for a Latin-1 ``é`` in a UTF-8 locale (``surrogateescape``)."""
ENVIRONMENT_PASSWORD = "pw" + SURROGATE


def shown(error: BaseException) -> list[str]:
    """Every text an error shows: str, repr, args and the formatted traceback."""
    return [str(error), repr(error), repr(error.args), "".join(traceback.format_exception(error))]


def never_called(request: httpx.Request) -> httpx.Response:  # pragma: no cover - the point
    raise AssertionError(f"a request was sent: {request.method} {request.url}")


# --- 8. strings from a non-UTF-8 environment, and ids -------------------------------------------------


@pytest.mark.parametrize("field", ["password", "username"])
def test_a_lone_surrogate_is_a_config_error_naming_the_argument_not_its_value(field: str) -> None:
    options = {"username": USERNAME, "password": PASSWORD, field: ENVIRONMENT_PASSWORD}
    with pytest.raises(ConfigError) as caught:
        VBOClient(BASE, api_version="v1", transport=httpx.MockTransport(never_called), **options)
    assert f"{field} cannot be encoded as UTF-8" in str(caught.value)
    for text in shown(caught.value):
        assert ENVIRONMENT_PASSWORD not in text
        assert repr(ENVIRONMENT_PASSWORD)[1:-1] not in text  # not even escaped: 'pw\\udce9'


IdCall = Callable[[VBOClient, str], Awaitable[Any]]

ID_METHODS: dict[str, tuple[str, IdCall]] = {
    "organization": ("organization_id", lambda vbo, value: vbo.organization(value)),
    "organization_jobs": ("organization", lambda vbo, value: vbo.organization_jobs(value)),
    "job": ("job_id", lambda vbo, value: vbo.job(value)),
    "job_session": ("session_id", lambda vbo, value: vbo.job_session(value)),
    "job_sessions": ("job", lambda vbo, value: vbo.job_sessions(value)),
    "start_job": ("job", lambda vbo, value: vbo.start_job(value)),
    "stop_job": ("job", lambda vbo, value: vbo.stop_job(value)),
    "enable_job": ("job", lambda vbo, value: vbo.enable_job(value)),
    "disable_job": ("job", lambda vbo, value: vbo.disable_job(value)),
    "backup_repository": ("repository_id", lambda vbo, value: vbo.backup_repository(value)),
    "proxy": ("proxy_id", lambda vbo, value: vbo.proxy(value)),
    "organization_used_repositories": (
        "organization",
        lambda vbo, value: vbo.organization_used_repositories(value),
    ),
}
"""Every method taking an id: (the argument its error names, the call). `job_health` takes a
`Job`, whose id is the server's word: its own test below."""

BAD_IDS = {
    "lone surrogate": "job-" + SURROGATE,
    "slash": "a/b",
    "slash and surrogate": "../" + SURROGATE,
    "percent-encoded slash": "a%2Fb",
    "dot dot": "..",
}


@pytest.mark.parametrize("bad", list(BAD_IDS))
@pytest.mark.parametrize("method", list(ID_METHODS))
async def test_an_id_that_cannot_be_one_path_segment_is_refused_before_any_request(
    method: str, bad: str
) -> None:
    fake = FakeVBO()
    name, call = ID_METHODS[method]
    async with client_for(fake, api_version="auto") as vbo:  # not even the version probe is sent
        with pytest.raises(ConfigError) as caught:
            await call(vbo, BAD_IDS[bad])
    assert str(caught.value).startswith(f"{name} "), caught.value
    for text in shown(caught.value):
        assert BAD_IDS[bad] not in text
    assert fake.requests == []


@pytest.mark.parametrize("bad", list(BAD_IDS))
async def test_job_health_of_an_id_that_cannot_be_one_path_segment_is_unknown_before_any_request(
    bad: str,
) -> None:
    """A job's id is the server's word: one no URL segment can carry is that job's UNKNOWN (as a
    sweep judges it), its reason naming the field, never the value; nothing is sent."""
    fake = FakeVBO()
    async with client_for(fake, api_version="auto") as vbo:  # not even the version probe is sent
        health = await vbo.job_health(Job(id=BAD_IDS[bad]))
    assert health.state is HealthState.UNKNOWN
    assert "job.id " in health.reason
    assert BAD_IDS[bad] not in health.reason
    assert fake.requests == []


# --- 10. base URLs and API versions that would change every URL ---------------------------------------

BAD_BASES = [
    "https://vbo.test:4443?",
    "https://vbo.test:4443/?",
    "https://vbo.test:4443#",
    "https://vbo.test:4443/#",
    "https://vbo.test:4443/api?",
    "https://vbo.test:4443?#",
    "https://vbo.test:4443/?/",
]


@pytest.mark.parametrize("base_url", BAD_BASES)
def test_a_base_url_ending_in_an_empty_query_or_fragment_is_a_config_error(base_url: str) -> None:
    with pytest.raises(ConfigError, match="base_url must not carry a query or a fragment"):
        VBOClient(
            base_url,
            username=USERNAME,
            password=PASSWORD,
            api_version="v1",
            transport=httpx.MockTransport(never_called),
        )


@pytest.mark.parametrize(
    "base_url", ["https://vbo01..corp.example:4443", "https://" + "a" * 64 + ".example", "https://.vbo01"]
)
def test_a_host_name_no_resolver_can_ask_for_is_a_config_error(base_url: str) -> None:
    """A typo'd host (an empty label, a label over 63 characters): the default transport's
    resolver raised a bare UnicodeError at the first request, which ended a whole `poll_jobs`
    sweep, healthy tenants of other servers included."""
    with pytest.raises(ConfigError, match="base_url's host is not a valid host name"):
        VBOClient(base_url, username=USERNAME, password=PASSWORD)


@pytest.mark.parametrize(
    ("host", "read_as"),
    [
        ("127.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("0x7f.0.0.1", "127.0.0.1"),
        ("010.0.0.1", "8.0.0.1"),
    ],
)
async def test_an_ipv4_address_in_shorthand_is_a_config_error(host: str, read_as: str) -> None:
    """``http://127.1:4443``: httpx's transport reached 127.0.0.1, the default transport (aiohttp)
    refused every request as "not a canonical IPv4 address", retried as a transport failure
    (4 password grants, 3.6 s). Said at once, with what the resolver makes of it."""
    with pytest.raises(ConfigError) as caught:
        VBOClient(f"http://{host}:4443", username=USERNAME, password=PASSWORD)
    assert str(caught.value) == (
        f"base_url's host {host!r} is no IPv4 address in dotted-decimal form (the resolver reads it "
        f"as {read_as}): write four numbers without leading zeros: 'http://{host}:4443'"
    )
    for fine in ("127.0.0.1", "10.0.0.1", "vbo01.example", "1.2.3.4.5", "0x7f.example", "[::1]"):
        await VBOClient(f"https://{fine}:4443", username=USERNAME, password=PASSWORD).aclose()


@pytest.mark.parametrize(
    "base_url",
    [
        "https://vbo01.corp.example.:4443",
        "https://[::1]:4443",
        "https://[fe80::1%25eth0]",
        "https://bücher.example",
    ],
)
def test_a_host_name_a_resolver_takes_is_accepted(base_url: str) -> None:
    assert VBOClient(base_url, username=USERNAME, password=PASSWORD).api_root is None


@pytest.mark.parametrize(
    "api_version", ["..", "v1?x", "%2e%2e", "%2E%2E", ".", "v1#x", "v1/../v8", " v1", "V1"]
)
def test_an_api_version_that_is_not_a_version_is_a_config_error_before_any_request(api_version: str) -> None:
    with pytest.raises(ConfigError, match="api_version must be one of auto, v8, v7, v6, v1"):
        VBOClient(
            BASE,
            username=USERNAME,
            password=PASSWORD,
            api_version=api_version,
            transport=httpx.MockTransport(never_called),
        )


# --- 13. plain http:// to another host -------------------------------------------------------------------

REMOTE = [
    "http://vbo.example.com:4443",
    "http://10.0.0.5:4443",
    "http://[2001:db8::1]:4443",
    "http://localhost.example.com",
    "http://127.0.0.1.nip.io",
    "HTTP://VBO.EXAMPLE.COM",
]
LOCAL = [
    "http://127.0.0.1:4443",
    "http://127.8.9.10",
    "http://localhost:8080",
    "http://LOCALHOST",
    "http://vbo.localhost",
    "http://[::1]:4443",
    "https://vbo.example.com:4443",
]


def plain_http_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.WARNING and "http://" in r.getMessage()]


@pytest.mark.parametrize(
    ("base_url", "warns"), [(url, True) for url in REMOTE] + [(url, False) for url in LOCAL]
)
async def test_plain_http_to_another_host_warns_once_per_client_and_nothing_else_does(
    base_url: str, warns: bool, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake = FakeVBO()
    fake.route("GET", "/v1/Jobs", [])
    async with client_for(fake, base_url=base_url) as vbo:
        built = plain_http_warnings(caplog)  # when the client is built
        for _ in range(3):
            await vbo.jobs()
    assert plain_http_warnings(caplog) == built  # none per request
    if not warns:
        assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
        return
    (record,) = built
    assert record.name == "vbo_async"
    assert record.levelno == logging.WARNING
    assert "unencrypted" in record.getMessage()
    assert PASSWORD not in record.getMessage()


@PROPERTY
@example("tenant\n2026-01-01 00:00:00,000 CRITICAL vbo_async: forged \x1b[2J\r\u202e\u2028")
@given(st.text(min_size=1, max_size=40))
def test_a_tenants_name_cannot_forge_a_line_of_the_librarys_log(name: str) -> None:
    """A tenant whose jobs cannot be read is logged (at debug level) by the name the server gives
    its organization: quoted (``repr``), as every other server text of the library's records is,
    so a name holding a line break or an escape sequence cannot forge a record of an
    application's line-oriented log or act on its terminal."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/Token"):
            return httpx.Response(200, json={"access_token": "a", "token_type": "bearer", "expires_in": 3600})
        return httpx.Response(500, json={"message": "down"})

    async def sweep() -> list[str]:
        records: list[logging.LogRecord] = []
        handler_ = _Collect(records)
        logger = logging.getLogger("vbo_async")
        level = logger.level
        logger.addHandler(handler_)
        logger.setLevel(logging.DEBUG)
        try:
            async with client_for(handler, retry=RetryPolicy(attempts=1)) as vbo:
                target = PollTarget(
                    client=vbo, organization_id="o1", organization=Organization(id="o1", name=name)
                )
                async with poll_jobs([target]) as results:
                    assert [result.error is not None async for result in results] == [True]
        finally:
            logger.removeHandler(handler_)
            logger.setLevel(level)
        return [record.getMessage() for record in records]

    messages = asyncio.run(sweep())
    (failed,) = [message for message in messages if message.startswith("polling ")]
    assert failed.startswith(f"polling {name!r} failed: ")
    assert failed.isprintable()


class _Collect(logging.Handler):
    def __init__(self, records: list[logging.LogRecord]) -> None:
        super().__init__(logging.DEBUG)
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
