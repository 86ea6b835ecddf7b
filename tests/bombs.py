"""Compression bombs: 1 GiB of zeros in every content coding vbo-async decodes (the test extra's
brotli and zstandard included), each built in seconds at most; and the encoders they use.

Shared by the decoder's unit tests (``test_bodies``) and the client-level bomb tests
(``test_hostile_bodies``). Importing this module imports no vbo-async code.
"""

from __future__ import annotations

import functools
import gzip
import struct
import zlib
from collections.abc import Callable
from typing import Any

import brotli as _brotli
import zstandard as _zstandard

brotli: Any = _brotli
zstandard: Any = _zstandard

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB
ZEROS = bytes(MIB)

ENCODERS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.compress,
    "x-gzip": gzip.compress,
    "deflate": zlib.compress,
    "br": brotli.compress,
    "zstd": lambda data: zstandard.ZstdCompressor().compress(data),
}
"""Each content coding's encoder, as a server applies it."""


def encode(header: str, data: bytes) -> bytes:
    """``data`` as a server sends it with ``Content-Encoding: header`` (applied left to right)."""
    for name in (token.strip().lower() for token in header.split(",")):
        if name and name != "identity":
            data = ENCODERS[name](data)
    return data


@functools.cache
def _deflate_of_zeros(size: int) -> bytes:
    """Raw deflate of ``size`` zeros (a multiple of 1 MiB). After a full flush zlib starts afresh,
    so every MiB compresses to the same bytes: one MiB is compressed and repeated."""
    c = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    piece = c.compress(ZEROS) + c.flush(zlib.Z_FULL_FLUSH)
    return piece * (size // MIB) + b"\x03\x00"  # an empty final block ends the stream


def _checksum(size: int, function: Callable[[bytes, int], int], start: int) -> int:
    value = start
    for _ in range(size // MIB):
        value = function(ZEROS, value)
    return value


@functools.cache
def gzip_of_zeros(size: int) -> bytes:
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    trailer = struct.pack("<II", _checksum(size, zlib.crc32, 0), size & 0xFFFFFFFF)
    return header + _deflate_of_zeros(size) + trailer


@functools.cache
def zlib_of_zeros(size: int) -> bytes:
    return b"\x78\xda" + _deflate_of_zeros(size) + struct.pack(">I", _checksum(size, zlib.adler32, 1))


@functools.cache
def brotli_of_zeros(size: int) -> bytes:
    c = brotli.Compressor(quality=3)
    return b"".join([c.process(ZEROS) for _ in range(size // MIB)]) + c.finish()


@functools.cache
def zstd_of_zeros(size: int) -> bytes:
    c = zstandard.ZstdCompressor(level=3).compressobj()
    return b"".join([c.compress(ZEROS) for _ in range(size // MIB)]) + c.flush()


BOMBS: dict[str, tuple[str, Callable[[int], bytes], int]] = {
    # name: (Content-Encoding, builder, most bytes the wire may take for 1 GiB)
    "gzip": ("gzip", gzip_of_zeros, 1100 * KIB),
    "deflate-zlib": ("deflate", zlib_of_zeros, 1100 * KIB),
    "deflate-raw": ("deflate", _deflate_of_zeros, 1100 * KIB),
    "gzip-x2": ("gzip, gzip", lambda size: gzip.compress(gzip_of_zeros(size), 9), 4 * KIB),
    "gzip-x3": (
        "gzip, gzip, gzip",
        lambda size: gzip.compress(gzip.compress(gzip_of_zeros(size), 9), 9),
        KIB,
    ),
    "deflate-gzip": ("gzip, deflate", lambda size: zlib.compress(gzip_of_zeros(size), 9), 4 * KIB),
    "br": ("br", brotli_of_zeros, 4 * KIB),
    "zstd": ("zstd", zstd_of_zeros, 64 * KIB),
    "zstd-br": ("zstd, br", lambda size: brotli.compress(zstd_of_zeros(size)), 64 * KIB),
    "gzip-zstd": ("gzip, zstd", lambda size: ENCODERS["zstd"](gzip_of_zeros(size)), 64 * KIB),
}
