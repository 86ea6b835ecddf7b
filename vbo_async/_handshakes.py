"""Closing the socket of a TLS handshake over httpx's own transport that a cancellation cut short.

httpcore's stream closes its socket when its TLS handshake fails with an exception, not when the
handshake is cancelled (``asyncio.timeout``: the client's ``timeout`` of an attempt, or a caller's
own). The socket is then only a local of httpcore's connecting code: the connection in the pool
has no stream to close, so neither the client's cleanup of stranded connections nor ``aclose()``
reached it, and it stayed open until the garbage collector found it (a ``ResourceWarning``), one
more socket per attempt cut short. `close_cut_handshakes` gives the pool a network backend whose
streams close themselves then, whichever handshake it is: with the server itself, with a proxy
reached over TLS, or with an ``https://`` server through a proxy's ``CONNECT`` tunnel.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Iterable
from typing import Any

import httpx

__all__ = ["close_cut_handshakes"]


def close_cut_handshakes(transport: httpx.AsyncHTTPTransport) -> None:
    """Make the connections ``transport``'s pool opens from now on close their socket when their
    TLS handshake is cancelled (see the module docstring). Idempotent; a pool of another shape (a
    future httpcore's) is left as it is. httpcore is httpx's dependency, not the client's, so it
    is not imported: the wrappers have the methods of its ``AsyncNetworkBackend`` and
    ``AsyncNetworkStream``, and httpcore checks no type."""
    pool: Any = getattr(transport, "_pool", None)
    backend = getattr(pool, "_network_backend", None)
    if not isinstance(backend, _ClosingBackend) and all(
        callable(getattr(backend, name, None)) for name in ("connect_tcp", "connect_unix_socket", "sleep")
    ):
        with contextlib.suppress(AttributeError):  # a pool refusing new attributes: left as it is
            pool._network_backend = _ClosingBackend(backend)


class _ClosingBackend:
    """httpcore's network ``backend``, its streams wrapped in `_ClosingStream`."""

    def __init__(self, backend: Any) -> None:
        self._backend = backend

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's signature
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> _ClosingStream:
        stream = await self._backend.connect_tcp(host, port, timeout, local_address, socket_options)
        return _ClosingStream(stream)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's signature
        socket_options: Iterable[Any] | None = None,
    ) -> _ClosingStream:
        return _ClosingStream(await self._backend.connect_unix_socket(path, timeout, socket_options))

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


class _ClosingStream:
    """An httpcore ``stream`` closed when its TLS handshake ends in anything but a new stream
    (cancellation included); the stream that handshake makes is wrapped too, for a TLS
    handshake inside it (an ``https://`` server through a proxy reached over TLS)."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:  # noqa: ASYNC109
        data: bytes = await self._stream.read(max_bytes, timeout)
        return data

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:  # noqa: ASYNC109
        await self._stream.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's signature
    ) -> _ClosingStream:
        try:
            secured = await self._stream.start_tls(ssl_context, server_hostname, timeout)
        except BaseException:
            # Closed already when the handshake failed with an error: closing again does nothing.
            # The socket is closed even when this close is cancelled in turn (anyio aborts the
            # transport before its one await).
            with contextlib.suppress(Exception):
                await self._stream.aclose()
            raise
        return _ClosingStream(secured)

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)
