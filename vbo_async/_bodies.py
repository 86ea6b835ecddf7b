"""Response bodies decoded from their ``Content-Encoding`` in bounded steps (sans-io).

httpx decompresses each network chunk whole, with no limit on what comes out: ``gzip, gzip``
turns 1.8 KB on the wire into 1 GiB before any size check runs. `BodyDecoder` is fed the raw
bytes (``response.aiter_raw()``) and never lets any stream of the pipeline, the wire included,
grow past the limit; each decompressor is asked for a bounded amount of output at a time:

- ``gzip``/``x-gzip`` and ``deflate`` (zlib-wrapped, or raw as httpx also accepts): zlib's
  ``max_length`` with ``unconsumed_tail``, 64 KiB per step. Further gzip members are decoded;
  bytes after the last member that do not start one are ignored, as httpx and gzip(1) do.
- ``br``, only with brotli ≥ 1.2 (or a brotlicffi with the same API):
  ``Decompressor.process(data, output_buffer_limit=...)`` and ``can_accept_more_data()``. The
  limit is where the output buffer stops growing, so a step gives at most about 2 × 64 KiB.
  Older versions have no bounded call, so ``br`` is then neither offered nor decoded.
- ``zstd``, only with zstandard: its ``decompressobj().decompress`` returns everything the input
  decodes to, and its ``stream_reader`` ends for good the first time its source runs dry, so
  neither bounds a push decoder. The input is therefore fed in slices the zstd format bounds:
  a block decodes to at most 128 KiB and every block that yields output takes at least 4 bytes
  (3 of header, 1 of an RLE byte), so a slice of ``4 * n`` bytes yields at most ``n`` blocks'
  worth. ``n`` is taken from what the limit still allows, but never fewer blocks than a
  sixteenth of the limit holds (the margin the inner streams have), so a step overshoots it by at
  most that sixteenth and 256 KiB, and a slice is never a few bytes: input that yields nothing
  (empty blocks, 3 bytes each) fed 4 bytes a call once the output neared the limit cost 15
  million calls for 60 MiB. The window is capped at 8 MiB, as RFC 9659 requires of the ``zstd``
  coding.

A body holds at most `MAX_MEMBERS` gzip members or zstd frames (skippable ones included): each
costs a new decompressor and a trip through Python, so a body of nothing but tiny ones would cost
seconds of CPU per request (the event loop's, shared with every other request).

Stacked codings (``Content-Encoding: gzip, br``) are undone in reverse order, at most
`MAX_LAYERS` of them. An empty body is empty whatever its coding (as in httpx: servers label
204s and HEAD answers). `ACCEPT_ENCODING` lists exactly what this environment decodes boundedly.
"""

from __future__ import annotations

import importlib
import zlib
from collections.abc import Callable
from typing import Any, Protocol

from ._exceptions import ConfigError

__all__ = [
    "ACCEPT_ENCODING",
    "MAX_LAYERS",
    "MAX_MEMBERS",
    "BodyDecoder",
    "BodyError",
    "BodyTooLarge",
    "CorruptBody",
    "UnsupportedEncoding",
    "available_encodings",
]

MAX_LAYERS = 3
"""Codings one body may stack (identity not counted); more is refused as `UnsupportedEncoding`."""

MAX_MEMBERS = 1024
"""gzip members or zstd frames one body (each coding of it) may hold; one more is `CorruptBody`.
Servers send one; 3 million empty gzip members fit in 64 MiB, and decoding them took 10 s of the
event loop and more (empty zstd frames longer still)."""

STEP = 64 * 1024
"""Output asked of zlib and brotli per call."""

ZSTD_MAX_WINDOW = 8 * 1024 * 1024
"""RFC 9659: the ``zstd`` content coding uses windows of at most 8 MB."""

_ZSTD_BLOCK = 128 * 1024
"""A zstd block decodes to at most this many bytes (RFC 8878, Block_Maximum_Size)."""

_ZSTD_MIN_BLOCK = 4
"""The fewest input bytes of a zstd block that yields output: a 3-byte header and one RLE byte."""

_GZIP_MAGIC = b"\x1f\x8b"
_NAME_EXCERPT = 40


class BodyError(Exception):
    """Base of the errors of body decoding; the fetcher maps them into the `VBOError` tree."""


class BodyTooLarge(BodyError):
    """The body (or a stream inside it: the wire, an inner coding) grew past the limit.

    ``size`` is how many bytes had been seen when it was refused: a lower bound of the real size.
    """

    def __init__(self, size: int, *, limit: int) -> None:
        super().__init__(f"the body decodes to more than {limit} bytes (at least {size})")
        self.size = size
        self.limit = limit


class UnsupportedEncoding(BodyError):
    """A ``Content-Encoding`` this module cannot decode boundedly here, or too many stacked.

    ``name`` is the coding as the server wrote it; the message quotes it cut to 40 characters:
    `shown` scrubs it whole before cutting it (a server may echo a secret there)."""

    def __init__(self, name: str, *, reason: str | None = None) -> None:
        self.name = name
        self.reason = reason
        super().__init__(self.shown())

    def shown(self, scrub: Callable[[str], str] | None = None) -> str:
        """The message, the coding's name passed through ``scrub`` (if given) before the cut."""
        if self.reason:
            return self.reason
        name = self.name if scrub is None else scrub(self.name)
        excerpt = name if len(name) <= _NAME_EXCERPT else name[:_NAME_EXCERPT] + "..."
        return f"unsupported content coding {excerpt!r}"


class CorruptBody(BodyError):
    """The body is not a valid stream of its coding: corrupt, truncated or with trailing data."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Layer(Protocol):
    """One coding being undone: input is pushed in, output pulled out in bounded pieces."""

    name: str

    def push(self, data: bytes) -> None:
        """Add input (the drain pulls everything out before the next push)."""

    def pull(self, allowed: int) -> bytes:
        """The next output, about ``min(allowed, STEP)`` bytes at most; b"" when more input is
        needed. ``allowed`` is what the limit still admits plus one."""

    def complete(self) -> bool:
        """Whether the stream ended properly (or never started: an empty body)."""


class _Zlib:
    """gzip (every member) or deflate (zlib-wrapped or raw, told apart by the zlib header)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._gzip = name == "gzip"
        self._d: Any = zlib.decompressobj(zlib.MAX_WBITS | 16) if self._gzip else None
        # Input is handed to zlib a STEP at a time (``_pending`` from ``_pos`` on), so that the
        # ``unconsumed_tail`` zlib copies back after each bounded call stays small too.
        self._pending = b""
        self._pos = 0
        self._tail = b""
        self._full = False  # the last call filled its output: more may come without input
        self._members = 0
        self._received = 0
        self._ignoring = False

    def push(self, data: bytes) -> None:
        self._received += len(data)
        if not self._ignoring:
            self._pending = self._pending[self._pos :] + data
            self._pos = 0

    def pull(self, allowed: int) -> bytes:
        while True:
            if self._d is None and not self._start():
                return b""
            data = self._tail
            if not data:
                data = self._pending[self._pos : self._pos + STEP]
                self._pos += len(data)
            if not data and not self._full:
                return b""
            size = max(1, min(STEP, allowed))
            try:
                out: bytes = self._d.decompress(data, size)
            except zlib.error as exc:
                raise CorruptBody(f"the {self.name} stream is corrupt ({exc})") from None
            self._full = len(out) >= size
            if self._d.eof:
                self._pending = self._d.unused_data + self._pending[self._pos :]
                self._pos = 0
                self._tail = b""
                self._d = None
                self._members += 1
                self._full = False
            else:
                self._tail = self._d.unconsumed_tail
            if out:
                return out
            # Nothing out of this step of input (a gzip header's long name, empty stored blocks):
            # on to the next, or to the next member. An empty output taken for "needs more input"
            # left input unread, and a valid stream read as truncated when it came in one read.

    def _start(self) -> bool:
        """Begin the stream: deflate once its first two bytes tell whether it is zlib-wrapped,
        gzip's next member once it shows its magic. Anything else after the end is dropped."""
        head = self._pending[self._pos : self._pos + 2]
        if not self._gzip:
            if self._members:
                self._drop()
                return False
            if len(head) < 2:
                return False
            cmf, flg = head[0], head[1]
            wrapped = cmf & 0x0F == 8 and cmf >> 4 <= 7 and ((cmf << 8) | flg) % 31 == 0
            self._d = zlib.decompressobj(zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS)
            return True
        if len(head) < 2 and _GZIP_MAGIC.startswith(head):
            return False  # nothing yet, or half a magic number: wait for more
        if head != _GZIP_MAGIC:
            self._drop()
            return False
        if self._members == MAX_MEMBERS:
            raise CorruptBody(f"the gzip stream has more than {MAX_MEMBERS} members")
        self._d = zlib.decompressobj(zlib.MAX_WBITS | 16)
        return True

    def _drop(self) -> None:
        self._pending = b""
        self._pos = 0
        self._ignoring = True

    def complete(self) -> bool:
        return self._received == 0 or (self._members > 0 and self._d is None)


class _Brotli:
    """``br``, through a decompressor whose ``process`` takes ``output_buffer_limit``."""

    name = "br"

    def __init__(self, module: Any) -> None:
        self._module = module
        self._d = module.Decompressor()
        self._pending = b""
        self._received = 0

    def push(self, data: bytes) -> None:
        self._received += len(data)
        self._pending += data

    def pull(self, allowed: int) -> bytes:
        if self._d.is_finished():
            if self._pending:
                raise CorruptBody("data after the end of the br stream")
            return b""
        # Input is taken only when the decoder asks for it; output may still be pending after it
        # took everything, so an empty call asks for that until it answers nothing.
        data = b""
        if self._pending and self._d.can_accept_more_data():
            data, self._pending = self._pending, b""
        try:
            out: bytes = self._d.process(data, output_buffer_limit=max(1, min(STEP, allowed)))
        except self._module.error as exc:
            raise CorruptBody(f"the br stream is corrupt ({exc})") from None
        if not out and self._pending and not self._d.can_accept_more_data():
            raise CorruptBody("the br decoder made no progress")
        return out

    def complete(self) -> bool:
        return self._received == 0 or (bool(self._d.is_finished()) and not self._pending)


class _Zstd:
    """``zstd``: every frame, fed in slices whose output the format bounds (module docstring)."""

    name = "zstd"

    def __init__(self, module: Any, limit: int) -> None:
        self._module = module
        self._min_blocks = max(1, limit // 16 // _ZSTD_BLOCK)
        """The fewest blocks' worth a slice holds (module docstring)."""
        self._dctx = module.ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW)
        self._d = self._dctx.decompressobj()
        self._pending = b""
        self._pos = 0
        self._received = 0
        self._in_frame = False
        self._frames = 1
        """Frames begun (the first with the decompressor above)."""

    def push(self, data: bytes) -> None:
        self._received += len(data)
        self._pending = self._pending[self._pos :] + data
        self._pos = 0

    def pull(self, allowed: int) -> bytes:
        while self._pos < len(self._pending):
            if self._d.eof:
                if self._frames == MAX_MEMBERS:
                    raise CorruptBody(f"the zstd stream has more than {MAX_MEMBERS} frames")
                self._frames += 1
                self._d = self._dctx.decompressobj()
            blocks = max(self._min_blocks, allowed // _ZSTD_BLOCK)
            end = self._pos + _ZSTD_MIN_BLOCK * blocks
            piece = self._pending[self._pos : end]
            self._pos = min(end, len(self._pending))
            self._in_frame = True
            try:
                out: bytes = self._d.decompress(piece)
            except self._module.ZstdError as exc:
                raise CorruptBody(f"the zstd stream is corrupt ({exc})") from None
            if self._d.eof:
                self._in_frame = False
                self._pending = self._d.unused_data + self._pending[self._pos :]
                self._pos = 0
            if out:
                return out
        return b""

    def complete(self) -> bool:
        return self._received == 0 or (not self._in_frame and self._pos >= len(self._pending))


def _bounded_brotli() -> Any | None:
    """brotli, else brotlicffi, when its decompressor can bound its output; otherwise None."""
    for name in ("brotli", "brotlicffi"):
        try:
            module = importlib.import_module(name)
            probe = module.Decompressor()
            probe.process(b"", output_buffer_limit=1)
            probe.can_accept_more_data()
        except (ImportError, AttributeError, TypeError):
            continue
        return module
    return None


def _zstandard() -> Any | None:
    try:
        module = importlib.import_module("zstandard")
        module.ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW).decompressobj()
    except (ImportError, AttributeError, TypeError):
        return None
    return module


def _layer_factories() -> dict[str, Callable[[int], _Layer]]:
    """Each coding's layer, built for a body's limit."""
    factories: dict[str, Callable[[int], _Layer]] = {
        "gzip": lambda limit: _Zlib("gzip"),
        "x-gzip": lambda limit: _Zlib("gzip"),
        "deflate": lambda limit: _Zlib("deflate"),
    }
    brotli = _bounded_brotli()
    if brotli is not None:
        factories["br"] = lambda limit: _Brotli(brotli)
    zstd = _zstandard()
    if zstd is not None:
        factories["zstd"] = lambda limit: _Zstd(zstd, limit)
    return factories


_FACTORIES = _layer_factories()


def available_encodings() -> tuple[str, ...]:
    """The content codings decodable here, in the order `ACCEPT_ENCODING` offers them."""
    return tuple(name for name in ("gzip", "deflate", "br", "zstd") if name in _FACTORIES)


ACCEPT_ENCODING = ", ".join(available_encodings())
"""The ``Accept-Encoding`` value to send: exactly the codings `BodyDecoder` can bound here."""


def _parse(content_encoding: str | None) -> tuple[str, ...]:
    """The codings of a header value in the order they were applied, identity left out."""
    if content_encoding is None:
        return ()
    written = [token.strip(" \t") for token in content_encoding.split(",")]
    kept = [name for name in written if name and name.lower() != "identity"]
    for name in kept:
        if name.lower() not in _FACTORIES:
            raise UnsupportedEncoding(name)  # as written, not lowered: a secret there stays findable
    codings = tuple(name.lower() for name in kept)
    if len(codings) > MAX_LAYERS:
        raise UnsupportedEncoding(
            content_encoding,
            reason=f"{len(codings)} stacked content codings; at most {MAX_LAYERS} are decoded",
        )
    return codings


class BodyDecoder:
    """Undo a body's ``Content-Encoding`` incrementally, never holding more than about ``limit``.

    ```python
    decoder = BodyDecoder(response.headers.get("content-encoding"), limit=max_bytes)
    parts = [decoder.feed(chunk) async for chunk in response.aiter_raw()]
    parts.append(decoder.finish())
    ```

    `feed` returns the decoded bytes that chunk completes (often b""); `finish` checks that
    every stream ended. They raise `BodyTooLarge`, `CorruptBody`; the constructor raises
    `UnsupportedEncoding`. The decoded body and every stream inside it (the wire, the output
    of an outer coding) is held to ``limit``; the inner streams with a margin of
    ``limit // 16 + 64 KiB``, well above what compressing incompressible data adds. After an
    error or `finish` the decoder refuses further use (``RuntimeError``).
    """

    def __init__(self, content_encoding: str | None, *, limit: int) -> None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise ConfigError(f"limit must be an int >= 0, got {limit!r}")
        self.encodings = _parse(content_encoding)
        """The codings in the order the server applied them (identity left out)."""
        self._layers = [_FACTORIES[name](limit) for name in reversed(self.encodings)]
        self._limit = limit
        self._inner_limit = limit + limit // 16 + STEP if self._layers else limit
        self._produced = [0] * len(self._layers)
        self._received = 0
        self._size = 0
        self._done = False

    @property
    def size(self) -> int:
        """Decoded bytes produced so far."""
        return self._size

    def feed(self, chunk: bytes) -> bytes:
        """Decode one chunk of the raw body; the output it completes (may be empty)."""
        self._check_usable()
        self._received += len(chunk)
        try:
            if self._received > self._inner_limit:
                raise BodyTooLarge(self._received, limit=self._limit)
            if not self._layers:
                self._size = self._received
                return bytes(chunk)
            if not chunk:
                return b""
            out: list[bytes] = []
            self._layers[0].push(bytes(chunk))
            self._drain(0, out)
        except BodyError:
            self._done = True
            raise
        return b"".join(out)

    def finish(self) -> bytes:
        """The end of the body: raise `CorruptBody` when any stream is incomplete."""
        self._check_usable()
        self._done = True
        for layer in self._layers:
            if not layer.complete():
                raise CorruptBody(f"the {layer.name} stream is truncated")
        return b""

    def _check_usable(self) -> None:
        if self._done:
            raise RuntimeError("this BodyDecoder has finished or failed; use a new one")

    def _drain(self, index: int, out: list[bytes]) -> None:
        layer = self._layers[index]
        last = index == len(self._layers) - 1
        cap = self._limit if last else self._inner_limit
        while True:
            piece = layer.pull(cap - self._produced[index] + 1)
            if not piece:
                return
            self._produced[index] += len(piece)
            if self._produced[index] > cap:
                raise BodyTooLarge(self._produced[index], limit=self._limit)
            if last:
                self._size += len(piece)
                out.append(piece)
            else:
                self._layers[index + 1].push(piece)
                self._drain(index + 1, out)
