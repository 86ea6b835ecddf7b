"""TLS on a real loopback server: a CA bundle or an SSLContext is trusted, the default store is not."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gc
import importlib
import json
import logging
import shutil
import ssl
import subprocess
import sys
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme

from vbo_async import ConfigError, RetryPolicy, TransportError, VBOClient
from vbo_async._client import _ssl_context, tls_context
from vbo_async._handshakes import _ClosingBackend, close_cut_handshakes

from .conftest import (
    BASE,
    DATED_CERTIFICATES,
    FAST,
    PASSWORD,
    USERNAME,
    FakeVBO,
    as_asgi,
    closed_port,
    serve,
)
from .raw_http import serve_raw
from .test_aiohttp_transport import tunnelling_proxy


@pytest.fixture
def fake_server() -> FakeVBO:
    fake = FakeVBO()
    fake.route("GET", "/v1/Jobs", [{"id": "j1", "name": "Mail", "isEnabled": "true"}])
    return fake


@pytest.fixture
async def https_port(fake_server: FakeVBO, tls_files: tuple[Path, Path]) -> AsyncIterator[int]:
    async with serve(as_asgi(fake_server.handler), certfile=tls_files[0]) as port:
        yield port


def client(port: int, **options: Any) -> VBOClient:
    return VBOClient(
        f"https://127.0.0.1:{port}",
        username=USERNAME,
        password=PASSWORD,
        retry=FAST,
        **options,
        api_version="v1",
    )


@pytest.mark.parametrize("as_type", [str, Path])
async def test_ca_bundle_path_is_trusted(
    https_port: int, fake_server: FakeVBO, tls_files: tuple[Path, Path], as_type: type
) -> None:
    async with client(https_port, verify=as_type(tls_files[1])) as vbo:
        (job,) = await vbo.jobs()
    assert job.id == "j1"
    assert job.is_enabled is True
    assert fake_server.paths() == ["/v1/Token", "/v1/Jobs"]
    assert all(r.url.scheme == "https" for r in fake_server.requests)


async def test_ssl_context_is_trusted(
    https_port: int, fake_server: FakeVBO, ca_context: ssl.SSLContext
) -> None:
    async with client(https_port, verify=ca_context) as vbo:
        (job,) = await vbo.jobs()
        (again,) = await vbo.jobs()
    assert job.id == again.id == "j1"
    assert fake_server.paths() == ["/v1/Token", "/v1/Jobs", "/v1/Jobs"]


async def test_default_verification_refuses_an_unknown_ca(
    https_port: int, fake_server: FakeVBO, retries: list[Any]
) -> None:
    async with client(https_port) as vbo:
        with pytest.raises(TransportError) as info:
            await vbo.jobs()
    text = str(info.value).lower()
    assert "certificate" in text
    assert "verif" in text
    assert retries == []  # a certificate error is not retried
    assert vbo.token_requests == 1
    assert fake_server.requests == []  # nothing got past the handshake
    cause: BaseException | None = info.value.__cause__
    seen = []
    while cause is not None:
        seen.append(cause)
        cause = cause.__cause__ or cause.__context__
    assert any(isinstance(c, ssl.SSLCertVerificationError) for c in seen)


async def test_a_context_without_the_ca_is_refused(
    https_port: int, fake_server: FakeVBO, retries: list[Any]
) -> None:
    strict = ssl.create_default_context()
    async with client(https_port, verify=strict) as vbo:
        with pytest.raises(TransportError, match="certificate"):
            await vbo.jobs()
    assert retries == []
    assert fake_server.requests == []


async def test_verify_false_works_and_warns(
    https_port: int, fake_server: FakeVBO, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="vbo_async")
    async with client(https_port, verify=False) as vbo:
        (job,) = await vbo.jobs()
    assert job.id == "j1"
    warnings = [r for r in caplog.records if r.name == "vbo_async" and r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "verification" in warnings[0].getMessage().lower()
    assert "off" in warnings[0].getMessage().lower()


async def test_verification_on_does_not_warn(
    https_port: int, ca_context: ssl.SSLContext, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="vbo_async")
    async with client(https_port, verify=ca_context) as vbo:
        await vbo.jobs()
    assert [r for r in caplog.records if r.name == "vbo_async"] == []


async def test_plain_http_to_a_tls_port_is_a_transport_error(https_port: int, fake_server: FakeVBO) -> None:
    async with VBOClient(
        f"http://127.0.0.1:{https_port}", username=USERNAME, password=PASSWORD, retry=FAST, api_version="v1"
    ) as vbo:
        with pytest.raises(TransportError):
            await vbo.jobs()
    assert fake_server.requests == []


async def test_a_certificate_for_another_host_is_refused_without_retrying(
    fake_server: FakeVBO,
    ca: trustme.CA,
    tls_files: tuple[Path, Path],
    tmp_path: Path,
    retries: list[Any],
) -> None:
    """Signed by the trusted CA, but for ``vbo.other.test``: a TLS error naming the mismatch."""
    other = tmp_path / "other.pem"
    ca.issue_cert("vbo.other.test").private_key_and_cert_chain_pem.write_to_path(str(other))
    async with serve(as_asgi(fake_server.handler), certfile=other) as port:
        vbo = client(port, verify=tls_files[1])
        async with vbo:
            with pytest.raises(TransportError, match="TLS certificate verification failed") as info:
                await vbo.jobs()
    assert "mismatch" in str(info.value)
    assert retries == []
    assert fake_server.requests == []


@pytest.mark.parametrize("contents", ["empty", "unhashed PEM files"])
def test_a_ca_directory_without_hashed_certificates_is_a_config_error(
    tmp_path: Path, tls_files: tuple[Path, Path], contents: str
) -> None:
    """OpenSSL looks a CA up in a directory by the hash of its subject (``cef6d456.0``, as
    ``openssl rehash`` names it): a directory of ``ca.pem`` files, or an empty one, trusted
    nothing in silence, so every server was refused with an 'unable to get local issuer'."""
    folder = tmp_path / "certs"
    folder.mkdir()
    if contents != "empty":
        (folder / "ca.pem").write_bytes(tls_files[1].read_bytes())
        (folder / "ca.crt").write_bytes(tls_files[1].read_bytes())
    with pytest.raises(ConfigError, match="CA bundle") as info:
        VBOClient("https://127.0.0.1:4443", username=USERNAME, password=PASSWORD, verify=folder)
    text = str(info.value)
    assert repr(str(folder)) in text
    assert "openssl rehash" in text
    assert PASSWORD not in text
    with pytest.raises(ConfigError, match="openssl rehash"):
        tls_context(folder)


@pytest.fixture
def hashed_ca_dir(tls_files: tuple[Path, Path], tmp_path: Path) -> Path:
    """A CA directory as ``openssl rehash`` leaves it (needs the openssl command)."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to hash a directory")
    folder = tmp_path / "certs"
    folder.mkdir()
    (folder / "ca.pem").write_bytes(tls_files[1].read_bytes())
    subprocess.run(["openssl", "rehash", str(folder)], check=True, capture_output=True)
    return folder


async def test_a_hashed_ca_directory_is_trusted(
    https_port: int, fake_server: FakeVBO, hashed_ca_dir: Path
) -> None:
    async with client(https_port, verify=hashed_ca_dir) as vbo:
        (job,) = await vbo.jobs()
    assert job.id == "j1"
    assert fake_server.paths() == ["/v1/Token", "/v1/Jobs"]


@pytest.mark.parametrize("wire", ["aiohttp", "httpx"])
async def test_a_client_of_an_http_server_loads_no_ca_certificates_and_its_context_trusts_none(
    https_port: int, monkeypatch: pytest.MonkeyPatch, tls_files: tuple[Path, Path], wire: str
) -> None:
    """A client of an ``http://`` server never makes a TLS connection, so ``verify=True`` loads
    no CA certificates for it (25-60 ms a client: most of what making one cost). The context its
    transport holds instead verifies and trusts nothing: were it ever used, every server would
    be refused. An ``https://`` client loads them as before, and a CA bundle path is still read
    (a wrong one is said at once)."""
    if wire == "httpx":
        without_aiohttp(monkeypatch)
    else:  # aiohttp's import makes its own default contexts, once a process: not counted here
        importlib.import_module("vbo_async._aiohttp")
    loaded: list[object] = []
    default = ssl.create_default_context

    def counted(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        loaded.append(kwargs.get("cafile") or kwargs.get("capath") or args)
        return default(*args, **kwargs)

    monkeypatch.setattr(ssl, "create_default_context", counted)
    plain = VBOClient("http://127.0.0.1:1", username=USERNAME, password=PASSWORD, api_version="v1")
    assert loaded == []
    if wire == "aiohttp":  # the context the client's transport holds is the stand-in below
        held = plain._sender._transport._ssl
        assert isinstance(held, ssl.SSLContext)
        assert (held.verify_mode, held.check_hostname, held.cert_store_stats()["x509"]) == (
            ssl.CERT_REQUIRED,
            True,
            0,
        )
    standing_in = _ssl_context(True, plain=True)
    assert isinstance(standing_in, ssl.SSLContext)
    assert (standing_in.verify_mode, standing_in.check_hostname) == (ssl.CERT_REQUIRED, True)
    assert standing_in.cert_store_stats()["x509"] == 0
    assert loaded == []
    await plain.aclose()
    await VBOClient(
        f"http://127.0.0.1:{https_port}", username=USERNAME, password=PASSWORD, verify=tls_files[1]
    ).aclose()
    assert loaded == [str(tls_files[1])]
    await VBOClient(f"https://127.0.0.1:{https_port}", username=USERNAME, password=PASSWORD).aclose()
    assert len(loaded) == 2
    async with client(https_port, verify=standing_in) as vbo:  # the stand-in, used: refused
        with pytest.raises(TransportError, match="certificate"):
            await vbo.jobs()


def without_aiohttp(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the client build its fallback transport (httpx's own), as without aiohttp installed."""
    monkeypatch.setitem(sys.modules, "vbo_async._aiohttp", None)


@pytest.mark.parametrize("wire", ["aiohttp", "httpx"])
async def test_ssl_cert_file_is_the_system_bundle_of_both_transports(
    https_port: int,
    fake_server: FakeVBO,
    tls_files: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    wire: str,
) -> None:
    """``verify=True`` trusts OpenSSL's default CA bundle, which ``SSL_CERT_FILE`` names (as for
    curl, openssl and httpx), over the default transport and over httpx's fallback alike."""
    if wire == "httpx":
        without_aiohttp(monkeypatch)
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_files[1]))
    async with client(https_port) as vbo:
        assert isinstance(vbo._sender._transport, httpx.AsyncHTTPTransport) == (wire == "httpx")
        (job,) = await vbo.jobs()
    assert job.id == "j1"


@pytest.mark.parametrize("problem", ["missing", "not PEM"])
def test_an_ssl_cert_file_that_cannot_be_loaded_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, problem: str
) -> None:
    """OpenSSL skips a default bundle it cannot load in silence: ``SSL_CERT_FILE`` misspelt
    trusted none of it, and every server signed by its CA was refused as of an unknown issuer
    (the command line then advised passing the CA). httpx's transport refuses it too."""
    bundle = tmp_path / "corp-ca.pem"
    if problem == "not PEM":
        bundle.write_text("not a certificate\n")
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    with pytest.raises(ConfigError, match="SSL_CERT_FILE") as info:
        VBOClient("https://127.0.0.1:4443", username=USERNAME, password=PASSWORD)
    assert repr(str(bundle)) in str(info.value)
    assert PASSWORD not in str(info.value)
    with pytest.raises(ConfigError, match="SSL_CERT_FILE"):
        tls_context(True)
    VBOClient("https://127.0.0.1:4443", username=USERNAME, password=PASSWORD, verify=False)  # not read


# --- what a TLS context says is what both transports do ---------------------------------------------


@contextlib.asynccontextmanager
async def tls_server(
    context: ssl.SSLContext, host: str = "127.0.0.1"
) -> AsyncIterator[tuple[int, list[bytes]]]:
    """A raw HTTPS server on ``host`` with the server ``context``: a token, then ``[]``; yields its
    port and the request lines it read (none when the handshake failed)."""
    seen: list[bytes] = []

    async def answer(head: bytes, body: bytes, writer: asyncio.StreamWriter) -> None:
        line = head.split(b"\r\n", 1)[0]
        seen.append(line)
        token = {"access_token": "tok-tls", "token_type": "bearer", "expires_in": 3600}
        sent = json.dumps(token).encode() if b"/token" in line.lower() else b"[]"
        head_out = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n"
        writer.write(head_out % len(sent) + sent)
        await writer.drain()

    async with serve_raw(answer, host=host, tls=context) as port:
        yield port, seen


def server_context(
    issued: trustme.LeafCert, *, newest: ssl.TLSVersion | None = None, oldest: ssl.TLSVersion | None = None
) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    issued.configure_cert(context)
    with warnings.catch_warnings():  # naming TLS 1.0 and 1.1 is deprecated: this server offers them
        warnings.simplefilter("ignore", DeprecationWarning)
        if oldest is not None:
            context.set_ciphers("DEFAULT:@SECLEVEL=0")  # OpenSSL 3 refuses TLS < 1.2 above level 0
            context.minimum_version = oldest
        if newest is not None:
            context.maximum_version = newest
    return context


def old_tls() -> tuple[ssl.TLSVersion, ssl.TLSVersion]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1


def over(wire: str, port: int, verify: ssl.SSLContext, host: str = "127.0.0.1") -> VBOClient:
    """A client of ``https://host:port`` verifying with ``verify``: given as ``verify=`` to the
    default transport, or to httpx's transport given as ``transport=``."""
    options: dict[str, Any] = (
        {"verify": verify} if wire == "aiohttp" else {"transport": httpx.AsyncHTTPTransport(verify=verify)}
    )
    return VBOClient(
        f"https://{host}:{port}",
        username=USERNAME,
        password=PASSWORD,
        retry=FAST,
        api_version="v1",
        **options,
    )


WIRES = ["aiohttp", "httpx"]


@pytest.mark.parametrize("wire", WIRES)
async def test_a_server_offering_only_old_tls_is_refused(
    ca: trustme.CA, ca_context: ssl.SSLContext, wire: str
) -> None:
    oldest, newest = old_tls()
    context = server_context(ca.issue_cert("127.0.0.1"), oldest=oldest, newest=newest)
    async with tls_server(context) as (port, seen), over(wire, port, ca_context) as vbo:
        with pytest.raises(TransportError):
            await vbo.jobs()
    assert seen == []


@pytest.mark.parametrize("wire", WIRES)
async def test_a_context_s_minimum_version_is_honoured(
    ca: trustme.CA, tls_files: tuple[Path, Path], wire: str
) -> None:
    strict = ssl.create_default_context(cafile=str(tls_files[1]))
    strict.minimum_version = ssl.TLSVersion.TLSv1_3
    issued = ca.issue_cert("127.0.0.1")
    older = server_context(issued, newest=ssl.TLSVersion.TLSv1_2)
    async with tls_server(older) as (port, seen), over(wire, port, strict) as vbo:
        with pytest.raises(TransportError):
            await vbo.jobs()
    assert seen == []
    async with tls_server(server_context(issued)) as (port, seen), over(wire, port, strict) as vbo:
        assert await vbo.jobs() == []
    assert seen == [b"POST /v1/Token HTTP/1.1", b"GET /v1/Jobs HTTP/1.1"]


@pytest.mark.parametrize("wire", WIRES)
async def test_a_context_s_check_hostname_is_honoured(
    ca: trustme.CA, tls_files: tuple[Path, Path], wire: str
) -> None:
    """A certificate for another host, signed by the trusted CA: refused by a context checking
    host names, accepted by one told not to (the user's choice, as the context says)."""
    context = server_context(ca.issue_cert("vbo.other.test"))
    checking = ssl.create_default_context(cafile=str(tls_files[1]))
    async with tls_server(context) as (port, seen), over(wire, port, checking) as vbo:
        with pytest.raises(TransportError, match="mismatch"):
            await vbo.jobs()
    assert seen == []
    trusting = ssl.create_default_context(cafile=str(tls_files[1]))
    trusting.check_hostname = False
    async with tls_server(context) as (port, seen), over(wire, port, trusting) as vbo:
        assert await vbo.jobs() == []
    assert len(seen) == 2


@pytest.mark.parametrize(
    "reason",
    [
        "TLSV13_ALERT_CERTIFICATE_REQUIRED",
        "SSLV3_ALERT_BAD_CERTIFICATE",
        "SSLV3_ALERT_CERTIFICATE_UNKNOWN",
        "TLSV1_ALERT_UNKNOWN_CA",
    ],
)
async def test_a_server_refusing_the_client_s_certificate_is_not_asked_again(
    reason: str, retries: list[Any]
) -> None:
    """A server that wants a client certificate (or refuses the one it got) says so with a TLS
    alert; TLS 1.3 sends it after the handshake, so the client meets it reading its answer, and
    it looked like a connection reset: the password grant was sent again (four times) to a
    server that refuses every attempt alike (seen against ``openssl s_server -Verify 1``)."""
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path)
        alert = ssl.SSLError(1, f"[SSL: {reason}] {reason.lower()} (_ssl.c:2580)")
        alert.reason = reason
        raise httpx.ReadError(str(alert), request=request) from alert

    vbo = VBOClient(
        BASE, username=USERNAME, password=PASSWORD, api_version="v1", transport=httpx.MockTransport(handler)
    )
    async with vbo:
        with pytest.raises(TransportError, match=reason.lower()):
            await vbo.jobs()
    assert asked == ["/v1/Token"]
    assert retries == []


@DATED_CERTIFICATES
@pytest.mark.parametrize("wire", WIRES)
async def test_an_expired_certificate_is_refused_without_retrying(
    ca: trustme.CA, ca_context: ssl.SSLContext, wire: str, retries: list[Any]
) -> None:
    issued = ca.issue_cert("127.0.0.1", not_before=dt.datetime(2019, 1, 1), not_after=dt.datetime(2020, 1, 1))
    async with tls_server(server_context(issued)) as (port, seen), over(wire, port, ca_context) as vbo:
        with pytest.raises(TransportError, match="TLS certificate verification failed") as info:
            await vbo.jobs()
    assert "certificate has expired" in str(info.value)
    assert f"https://127.0.0.1:{port}/v1/Token" in str(info.value)
    assert PASSWORD not in str(info.value)
    assert retries == []
    assert seen == []


@pytest.mark.parametrize("wire", WIRES)
async def test_an_ip_address_base_url_is_verified_against_the_certificate_s_ip_addresses(
    ca: trustme.CA, ca_context: ssl.SSLContext, wire: str
) -> None:
    """``https://127.0.0.1``: a certificate naming that address (an IP SAN) is trusted; one
    naming only ``localhost``, which resolves there, or another address is not."""
    named = server_context(ca.issue_cert("127.0.0.1"))
    async with tls_server(named) as (port, seen), over(wire, port, ca_context) as vbo:
        assert await vbo.jobs() == []
    assert len(seen) == 2
    for names in (["localhost"], ["127.0.0.2"]):
        other = server_context(ca.issue_cert(*names))
        async with tls_server(other) as (port, seen), over(wire, port, ca_context) as vbo:
            with pytest.raises(TransportError, match="IP address mismatch"):
                await vbo.jobs()
        assert seen == []


@pytest.mark.parametrize("transport", ["aiohttp", "httpx"])
async def test_https_to_a_plain_http_port_is_not_retried(transport: str) -> None:
    """``https://`` to a port that speaks plain HTTP fails the handshake the same way every time
    (OpenSSL's ``WRONG_VERSION_NUMBER``): one attempt, not a retry policy's worth of them with
    their waits before the same error. A handshake cut short (an ``SSLEOFError``) may still be
    retried: a load balancer dropping a connection is not a mismatch."""
    accepted = 0

    async def plain(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal accepted
        accepted += 1
        await reader.read(4096)  # the client's TLS hello, read as a request line
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(plain, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    options: dict[str, Any] = {"transport": httpx.AsyncHTTPTransport()} if transport == "httpx" else {}
    try:
        async with VBOClient(
            f"https://127.0.0.1:{port}",
            username=USERNAME,
            password=PASSWORD,
            api_version="v1",
            retry=FAST,
            **options,
        ) as vbo:
            with pytest.raises(TransportError):
                await vbo.jobs()
    finally:
        server.close()
        await server.wait_closed()
    assert accepted == 1


# --- a TLS handshake cut short leaves no socket open ------------------------------------------------


@contextlib.asynccontextmanager
async def never_answering_hello() -> AsyncIterator[int]:
    """A TCP server on 127.0.0.1 that accepts and never answers a TLS ClientHello (a hung load
    balancer, a server wedged in its TLS stack); yields its port. Its connections are closed when
    the block ends."""
    accepted: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for writer in accepted:
            writer.close()
        await server.wait_closed()


def sockets_to(port: int) -> int:
    """The sockets this process holds connected to ``port`` on this machine (its client sockets:
    a server's own have ``port`` as their local port), found in ``/proc/net/tcp``."""
    inodes = set()
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        for row in Path(table).read_text(encoding="ascii").splitlines()[1:]:
            columns = row.split()
            if int(columns[2].rpartition(":")[2], 16) == port:
                inodes.add(f"socket:[{columns[9]}]")
    held = 0
    for descriptor in Path("/proc/self/fd").iterdir():
        with contextlib.suppress(OSError):  # the directory's own descriptor, closed meanwhile
            held += descriptor.readlink().as_posix() in inodes
    return held


async def sockets_closed(port: int) -> int:
    """`sockets_to` ``port`` once they are all closed (a closed socket is released on the event
    loop's next turn), or after a second."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(1.0):
            while sockets_to(port):  # noqa: ASYNC110
                await asyncio.sleep(0.01)
    return sockets_to(port)


@pytest.mark.skipif(not Path("/proc/self/net/tcp").is_file(), reason="counts sockets in /proc")
@pytest.mark.parametrize("cut_by", ["the client's timeout", "the caller's timeout"])
@pytest.mark.parametrize("route", ["direct", "to a proxy over TLS", "through a proxy's tunnel"])
async def test_a_tls_handshake_cut_short_over_httpx_s_transport_leaves_no_socket_open(
    ca_context: ssl.SSLContext, route: str, cut_by: str
) -> None:
    """Over ``transport=httpx.AsyncHTTPTransport(...)``, a call whose TLS handshake is cancelled
    (by its attempt's ``timeout`` or by the caller's ``asyncio.timeout``) against a peer that
    never answers the ClientHello left its socket open, one per attempt: httpcore closes it when
    the handshake fails, not when it is cancelled, and neither the client nor ``aclose()`` could
    reach it; the garbage collector closed it, with a ``ResourceWarning``. Now each is closed as
    its call ends, and none is left after ``aclose()``. (Through a proxy's ``CONNECT`` tunnel the
    client already closed it with the proxy's connection.) The collector is off, so that it
    closes nothing itself."""
    async with contextlib.AsyncExitStack() as stack:
        silent = await stack.enter_async_context(never_answering_hello())
        if route == "direct":
            base, transport = f"https://127.0.0.1:{silent}", httpx.AsyncHTTPTransport(verify=ca_context)
        elif route == "to a proxy over TLS":
            proxy = httpx.Proxy(f"https://127.0.0.1:{silent}", ssl_context=ca_context)
            base = f"https://127.0.0.1:{closed_port()}"
            transport = httpx.AsyncHTTPTransport(proxy=proxy, verify=ca_context)
        else:
            tunnel, _, _ = await stack.enter_async_context(tunnelling_proxy())
            base, silent = f"https://127.0.0.1:{silent}", int(tunnel.rpartition(":")[2])
            transport = httpx.AsyncHTTPTransport(proxy=tunnel, verify=ca_context)
        own = cut_by == "the client's timeout"
        vbo = VBOClient(
            base,
            username=USERNAME,
            password=PASSWORD,
            api_version="v1",
            transport=transport,
            timeout=0.2 if own else None,
            retry=RetryPolicy(attempts=1),
        )
        gc.disable()
        try:
            open_after: list[int] = []
            async with vbo:
                for _ in range(3):
                    with pytest.raises(TransportError if own else TimeoutError):
                        async with asyncio.timeout(None if own else 0.2):
                            await vbo.jobs()
                    if own:
                        open_after.append(await sockets_closed(silent))
            open_after.append(await sockets_closed(silent))
        finally:
            gc.enable()
    # The caller's timeout leaves the token grant it waited for running for the calls after it
    # (a grant is shared): ``aclose()`` cancels it.
    assert open_after == ([0, 0, 0, 0] if own else [0])


def test_httpx_s_pool_gets_the_closing_backend_once_and_a_pool_of_another_shape_none() -> None:
    """The network backend of httpx's own transport is wrapped once, however many clients are
    given the transport; a pool whose private attributes differ (another httpcore) is left as
    it is, without an error."""
    transport = httpx.AsyncHTTPTransport()
    original = transport._pool._network_backend
    for _ in range(2):
        VBOClient(BASE, username=USERNAME, password=PASSWORD, api_version="v1", transport=transport)
    close_cut_handshakes(transport)
    backend = transport._pool._network_backend
    assert isinstance(backend, _ClosingBackend)
    assert backend._backend is original
    other = httpx.AsyncHTTPTransport()
    other._pool = httpx.MockTransport(lambda request: httpx.Response(200))  # type: ignore[assignment]
    VBOClient(BASE, username=USERNAME, password=PASSWORD, api_version="v1", transport=other)
    assert not hasattr(other._pool, "_network_backend")
