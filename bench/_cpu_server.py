"""A lean HTTP/1.1 server in a child process, plain and TLS, for the client-CPU benchmark.

A variant of `_server.py` that spends as little CPU as it can (a bare asyncio protocol, one canned
answer) so that on a small machine the client under test gets the cores: every ``GET`` is answered
with one v1 job as the simulator sends it, ``POST .../Token`` with a token. Keep-alive, no
pipelining; request bodies are read by their Content-Length. Run as a script by `serve`: it prints
``plain_port tls_port`` on its first line and serves until terminated.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["RESPONSE_HEADERS", "CpuServer", "job_body", "serve"]

RESPONSE_HEADERS = [
    (b"Date", b"Mon, 23 Nov 2026 10:00:00 GMT"),
    (b"Server", b"Microsoft-HTTPAPI/2.0"),
    (b"Content-Type", b"application/json; charset=utf-8"),
]
"""What the server sends before Content-Length (a VBO server's usual headers)."""
TOKEN_BODY = (
    b'{"access_token":"bench-access-token","token_type":"bearer","expires_in":3599,'
    b'"refresh_token":"bench-refresh-token","userName":"admin"}'
)


def job_body() -> bytes:
    """One v1 job, as ``GET /v1/Jobs/{id}`` answers it (about 1.5 KiB)."""
    import orjson
    from _data import wire_jobs

    return orjson.dumps(wire_jobs(1)[0])


@dataclass(frozen=True)
class CpuServer:
    plain_port: int
    tls_port: int
    ca_file: Path

    def base_url(self, *, tls: bool) -> str:
        return f"https://127.0.0.1:{self.tls_port}" if tls else f"http://127.0.0.1:{self.plain_port}"

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))


@contextlib.contextmanager
def serve(folder: Path) -> Iterator[CpuServer]:
    """Make a CA and a certificate for 127.0.0.1 in ``folder``, start the child, yield it."""
    import trustme

    ca = trustme.CA()
    server_pem, ca_pem = folder / "server.pem", folder / "ca.pem"
    ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(server_pem))
    ca.cert_pem.write_to_path(str(ca_pem))
    child = subprocess.Popen(
        [sys.executable, __file__, "--certfile", str(server_pem)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline().split()
        if len(line) != 2 or not all(part.isdigit() for part in line):
            raise RuntimeError(f"the CPU benchmark server did not start (said {line!r})")
        yield CpuServer(int(line[0]), int(line[1]), ca_pem)
    finally:
        child.terminate()
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        if child.stdout is not None:
            child.stdout.close()


def _answer(body: bytes) -> bytes:
    head = b"".join(k + b": " + v + b"\r\n" for k, v in RESPONSE_HEADERS)
    return b"HTTP/1.1 200 OK\r\n" + head + b"Content-Length: %d\r\n\r\n" % len(body) + body


class _Http(asyncio.Protocol):
    def __init__(self, job: bytes, token: bytes) -> None:
        self._job = job
        self._token = token
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        while (end := buffer.find(b"\r\n\r\n")) >= 0:
            head = bytes(buffer[:end]).lower()
            length = 0
            at = head.find(b"\r\ncontent-length:")
            if at >= 0:
                stop = head.find(b"\r\n", at + 2)
                length = int(head[at + 17 : stop if stop >= 0 else len(head)])
            if len(buffer) < end + 4 + length:
                return
            path = head.split(b" ", 2)[1].split(b"?", 1)[0]
            del buffer[: end + 4 + length]
            assert self._transport is not None
            self._transport.write(self._token if path.endswith(b"/token") else self._job)


async def _main(certfile: str) -> None:
    job, token = _answer(job_body()), _answer(TOKEN_BODY)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certfile)
    loop = asyncio.get_running_loop()
    servers = []
    for tls in (None, context):
        # IPPROTO_TCP so that asyncio sets TCP_NODELAY on the accepted connections (see _server.py).
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        servers.append(await loop.create_server(lambda: _Http(job, token), sock=sock, ssl=tls, backlog=1024))
    print(*(s.sockets[0].getsockname()[1] for s in servers), flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    parser = argparse.ArgumentParser()
    parser.add_argument("--certfile", required=True)
    asyncio.run(_main(parser.parse_args().certfile))
