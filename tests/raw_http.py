"""A raw HTTP/1.1 server on 127.0.0.1, for what no ASGI app can send: answers framed oddly or
wrongly, connections closed unanswered, requests never answered, secrets echoed in a status line.

Shared by ``test_hostile``, ``test_hostile_secrets``, ``test_lean_get``, ``test_cli`` and the child
process of ``test_retry_logging``. Importing this module imports no vbo-async code and configures
no logging (that child process shows what a program without logging prints).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

Answer = Callable[[bytes, bytes, asyncio.StreamWriter], Awaitable[None]]
"""Answers one request, given its head (the request line and headers, up to and including the
blank line), its body and the connection's writer. Closing the writer (or raising
``ConnectionError``) ends the connection; otherwise the next request on it is read."""


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """Read one HTTP/1.1 request: its head and its body (as long as its Content-Length says)."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    return head, await reader.readexactly(length)


@contextlib.asynccontextmanager
async def serve_raw(
    answer: Answer, *, host: str = "127.0.0.1", tls: ssl.SSLContext | None = None
) -> AsyncIterator[int]:
    """A keep-alive HTTP/1.1 server on ``host`` (an ephemeral port; HTTPS with the server context
    ``tls``) handing each request it reads to ``answer``; yields the port. When the block ends,
    the connections still open are cancelled and waited for."""
    handlers: set[asyncio.Task[Any]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        try:
            while not writer.is_closing():
                head, body = await read_request(reader)
                await answer(head, body, writer)
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            handlers.discard(task)

    server = await asyncio.start_server(handle, host, 0, ssl=tls)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for task in list(handlers):
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        await server.wait_closed()
