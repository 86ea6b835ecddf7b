"""Decoding: bounded, incremental Content-Encoding (vbo_async._bodies), bombs included."""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import struct
import subprocess
import sys
import tracemalloc
import types
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vbo_async import ConfigError, _bodies
from vbo_async._bodies import (
    ACCEPT_ENCODING,
    MAX_LAYERS,
    MAX_MEMBERS,
    BodyDecoder,
    BodyTooLarge,
    CorruptBody,
    UnsupportedEncoding,
    available_encodings,
)

brotli: Any = pytest.importorskip("brotli")
zstandard: Any = pytest.importorskip("zstandard")

from .bombs import BOMBS, ENCODERS, GIB, KIB, MIB, encode  # noqa: E402 - needs brotli and zstandard

PROPERTY = settings(
    max_examples=int(os.environ.get("VBO_PROPERTY_EXAMPLES", "150")),
    deadline=None,
    derandomize=os.environ.get("VBO_PROPERTY_RANDOM") != "1",
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

LIMIT = MIB
WIRE_CHUNK = 16 * KIB
"""About what ``aiter_raw()`` hands over per read."""
PEAK = 8 * MIB


# --- encoders -------------------------------------------------------------------------------------


def raw_deflate(data: bytes) -> bytes:
    c = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    return c.compress(data) + c.flush()


def chunks(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def decode(header: str | None, wire: bytes, *, limit: int = 64 * MIB, chunk: int = WIRE_CHUNK) -> bytes:
    decoder = BodyDecoder(header, limit=limit)
    parts = [decoder.feed(piece) for piece in chunks(wire, chunk)]
    parts.append(decoder.finish())
    return b"".join(parts)


BODY = json.dumps([{"id": str(i), "name": f"job {i}", "isEnabled": i % 2 == 0} for i in range(3000)]).encode()
MIXED = os.urandom(50_000) + BODY  # an incompressible part and a compressible part


@pytest.mark.parametrize("name", list(BOMBS))
def test_bomb_builders_make_what_they_claim(name: str) -> None:
    """At 4 MiB the builders' streams decode to exactly 4 MiB of zeros; at 1 GiB they are tiny."""
    header, build, wire_max = BOMBS[name]
    assert decode(header, build(4 * MIB)) == bytes(4 * MIB)
    assert len(build(GIB)) <= wire_max


@pytest.mark.parametrize("name", list(BOMBS))
def test_a_bomb_is_refused_within_bounded_memory(name: str) -> None:
    header, build, _ = BOMBS[name]
    wire = build(GIB)
    decoder = BodyDecoder(header, limit=LIMIT)
    kept: list[bytes] = []  # what a fetcher would keep

    def feed_all() -> None:
        for piece in chunks(wire, WIRE_CHUNK):
            kept.append(decoder.feed(piece))

    tracemalloc.start()
    try:
        with pytest.raises(BodyTooLarge) as caught:
            feed_all()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < PEAK, f"{name}: peak {peak / MIB:.1f} MiB"
    assert caught.value.limit == LIMIT
    assert caught.value.size > LIMIT
    assert sum(map(len, kept)) <= LIMIT
    with pytest.raises(RuntimeError):
        decoder.feed(b"")  # a failed decoder refuses further use


_RSS_SCRIPT = """
import sys
from vbo_async._bodies import BodyDecoder, BodyTooLarge

def status_kib(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1])

header, path = sys.argv[1], sys.argv[2]
wire = open(path, "rb").read()
before = status_kib("VmRSS:")
with open("/proc/self/clear_refs", "w") as refs:
    refs.write("5")  # resets the peak (VmHWM) to the current RSS
decoder = BodyDecoder(header, limit=1 << 20)
kept = []
try:
    for start in range(0, len(wire), 1 << 14):
        kept.append(decoder.feed(wire[start:start + (1 << 14)]))
except BodyTooLarge:
    print("refused", status_kib("VmHWM:") - before)
"""


@pytest.mark.skipif(not os.access("/proc/self/clear_refs", os.W_OK), reason="needs Linux's peak-RSS reset")
@pytest.mark.parametrize("name", ["gzip", "gzip-x3", "br", "zstd", "zstd-br"])
def test_a_bomb_stays_within_bounded_rss(name: str, tmp_path: Path) -> None:
    """The C side too (brotli's ring buffer, zstd's window): the peak RSS while decoding grows by
    far less than the 1 GiB the bomb expands to."""
    header, build, _ = BOMBS[name]
    path = tmp_path / "bomb"
    path.write_bytes(build(GIB))
    result = subprocess.run(
        [sys.executable, "-c", _RSS_SCRIPT, header, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    word, grown_kib = result.stdout.split()
    assert word == "refused"
    assert int(grown_kib) < 32 * KIB, f"{name}: peak RSS grew by {int(grown_kib) / KIB:.1f} MiB"


@pytest.mark.slow
@pytest.mark.parametrize("name", list(BOMBS))
def test_the_bombs_really_expand_to_a_gibibyte(name: str) -> None:
    header, build, _ = BOMBS[name]
    decoder = BodyDecoder(header, limit=GIB)
    total = 0
    for piece in chunks(build(GIB), 64):
        total += len(decoder.feed(piece))
    total += len(decoder.finish())
    assert total == GIB


# --- round trips ----------------------------------------------------------------------------------

ENCODINGS = ["gzip", "x-gzip", "deflate", "br", "zstd"]


@pytest.mark.parametrize("header", [*ENCODINGS, "gzip, br", "deflate, zstd, gzip", "br, br, br"])
@pytest.mark.parametrize("size", [1, 7, WIRE_CHUNK])
def test_round_trip(header: str, size: int) -> None:
    assert decode(header, encode(header, MIXED), chunk=size) == MIXED


def test_raw_deflate_is_accepted_as_httpx_does() -> None:
    assert decode("deflate", raw_deflate(MIXED), chunk=3) == MIXED


@PROPERTY
@given(
    body=st.binary(max_size=5000),
    header=st.lists(st.sampled_from(ENCODINGS), max_size=MAX_LAYERS).map(", ".join),
    size=st.integers(1, 300),
)
def test_any_body_round_trips(body: bytes, header: str, size: int) -> None:
    assert decode(header, encode(header, body), chunk=size) == body


def _empty_stored_blocks(payload: bytes, count: int) -> bytes:
    """Raw deflate: ``count`` empty stored blocks (no output each), then ``payload`` stored."""
    size = struct.pack("<HH", len(payload), ~len(payload) & 0xFFFF)
    return b"\x00\x00\x00\xff\xff" * count + b"\x01" + size + payload


def _gzip_of(raw: bytes, payload: bytes, *, name: bytes = b"") -> bytes:
    flags = 8 if name else 0
    head = b"\x1f\x8b\x08" + bytes([flags]) + b"\x00" * 4 + b"\x00\xff" + (name + b"\x00" if name else b"")
    return head + raw + struct.pack("<II", zlib.crc32(payload), len(payload))


@pytest.mark.parametrize(
    ("header", "wire"),
    [
        ("gzip", _gzip_of(_empty_stored_blocks(b"[]", 40_000), b"[]")),
        ("deflate", _empty_stored_blocks(b"[]", 40_000)),
        ("gzip", _gzip_of(_empty_stored_blocks(b"[]", 0), b"[]", name=b"n" * 100_000)),
    ],
    ids=["gzip-empty-blocks", "deflate-empty-blocks", "gzip-long-name"],
)
@pytest.mark.parametrize("size", [None, 65_536, 4096])
def test_a_stream_yielding_nothing_for_many_steps_is_read_whole_however_it_arrives(
    header: str, wire: bytes, size: int | None
) -> None:
    """Over 64 KiB of valid input that yields no output (empty stored blocks, a long gzip file
    name) arriving in one read: the first step's empty output was taken for "needs more input",
    the rest was left unread, and the stream read as truncated; in smaller reads it decoded."""
    assert (gzip.decompress(wire) if header == "gzip" else zlib.decompress(wire, -15)) == b"[]"
    assert decode(header, wire, chunk=size or len(wire)) == b"[]"


@pytest.mark.parametrize("header", ENCODINGS)
def test_a_body_exactly_at_the_limit_is_accepted_and_one_byte_more_refused(header: str) -> None:
    body = os.urandom(100_000)
    assert decode(header, encode(header, body), limit=len(body)) == body
    with pytest.raises(BodyTooLarge):
        decode(header, encode(header, body), limit=len(body) - 1)


def test_identity_is_held_to_the_limit() -> None:
    assert decode(None, b"x" * 100, limit=100) == b"x" * 100
    with pytest.raises(BodyTooLarge) as caught:
        decode("identity", b"x" * 101, limit=100)
    assert caught.value.size == 101


def test_the_wire_is_held_to_the_limit_even_when_it_decodes_to_nothing() -> None:
    """An empty gzip member, then bytes ignored after it (no member starts there) by the
    thousand: nothing comes out, but the wire itself is bounded. (Empty members by the thousand
    are refused sooner: `MAX_MEMBERS`.)"""
    decoder = BodyDecoder("gzip", limit=10_000)
    assert decoder.feed(gzip.compress(b"")) == b""
    ignored = b"\x00" * 20
    fed = 0
    while fed < 10_000:
        try:
            assert decoder.feed(ignored) == b""
        except BodyTooLarge:
            break
        fed += 1
    assert fed < 10_000, "the wire was never bounded"
    assert fed * len(ignored) <= 10_000 + 10_000 // 16 + 64 * KIB


@pytest.mark.parametrize("header", [None, "", "identity", " Identity ", *ENCODINGS, "gzip, br"])
def test_an_empty_body_is_empty_whatever_its_coding(header: str | None) -> None:
    assert decode(header, b"") == b""


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("GZIP", ("gzip",)),
        (" gzip ", ("gzip",)),
        ("\tGzip\t", ("gzip",)),
        ("X-Gzip", ("x-gzip",)),
        ("gzip,deflate", ("gzip", "deflate")),
        ("Gzip ,  BR", ("gzip", "br")),
        ("identity, gzip", ("gzip",)),
        ("gzip,,", ("gzip",)),
        ("", ()),
        (None, ()),
    ],
)
def test_the_header_is_read_case_and_space_insensitively(
    header: str | None, expected: tuple[str, ...]
) -> None:
    decoder = BodyDecoder(header, limit=MIB)
    assert decoder.encodings == expected
    assert decode(header, encode(header or "", BODY)) == BODY


def test_multiple_gzip_members_are_all_decoded() -> None:
    wire = gzip.compress(b"first ") + gzip.compress(b"") + gzip.compress(b"second")
    assert decode("gzip", wire, chunk=1) == b"first second"


@pytest.mark.parametrize("header", ["gzip", "deflate"])
def test_bytes_after_a_zlib_stream_are_ignored_as_httpx_does(header: str) -> None:
    assert decode(header, encode(header, BODY) + b"\x00\x00trailing garbage", chunk=5) == BODY


@pytest.mark.parametrize("header", ["br", "zstd"])
def test_bytes_after_a_br_or_zstd_stream_are_corrupt(header: str) -> None:
    with pytest.raises(CorruptBody):
        decode(header, encode(header, BODY) + b"trailing garbage")


def test_several_zstd_frames_and_skippable_frames_are_decoded() -> None:
    skippable = struct.pack("<II", 0x184D2A50, 3) + b"abc"
    wire = ENCODERS["zstd"](b"one ") + skippable + ENCODERS["zstd"](b"two")
    assert decode("zstd", wire, chunk=2) == b"one two"


MEMBERS = {
    "gzip": lambda data: gzip.compress(data, mtime=0),
    "zstd": lambda data: ENCODERS["zstd"](data),
    "zstd skippable": lambda data: struct.pack("<II", 0x184D2A50, len(data)) + data,
}
"""One gzip member, one zstd frame or one skippable zstd frame holding ``data``."""


@pytest.mark.parametrize("kind", list(MEMBERS))
def test_a_body_of_more_members_than_max_members_is_corrupt(kind: str) -> None:
    """Each gzip member or zstd frame costs a new decompressor and a trip through Python (a few
    µs): a body of nothing but tiny ones (20 bytes each, 3 million in 64 MiB) held the event loop
    for seconds per request, every other server's requests waiting behind it. `MAX_MEMBERS` of
    them decode; one more is refused before it is decoded."""
    header = kind.partition(" ")[0]
    member = MEMBERS[kind](b"x")
    expected = b"" if kind.endswith("skippable") else b"x" * MAX_MEMBERS
    assert decode(header, member * MAX_MEMBERS, chunk=4096) == expected
    with pytest.raises(CorruptBody, match=f"more than {MAX_MEMBERS}"):
        decode(header, member * (MAX_MEMBERS + 1), chunk=4096)
    flood = member * (100 * MAX_MEMBERS)  # refused once one more than MAX_MEMBERS is seen
    decoder = BodyDecoder(header, limit=64 * MIB)
    pieces = chunks(flood, 4096)
    fed = 0

    def feed_all() -> None:
        nonlocal fed
        for piece in pieces:
            fed += len(piece)
            decoder.feed(piece)

    with pytest.raises(CorruptBody):
        feed_all()
    assert decoder.size <= MAX_MEMBERS
    assert fed < 2 * len(member) * MAX_MEMBERS + 4096  # the rest was never fed


class _CountingZstd:
    """zstandard, counting the calls of its decompressors' ``decompress``."""

    ZstdError = zstandard.ZstdError

    def __init__(self) -> None:
        self.calls = 0
        counter = self

        class Decompressor:
            def __init__(self, **options: Any) -> None:
                self._real = zstandard.ZstdDecompressor(**options)

            def decompressobj(self) -> Any:
                real = self._real.decompressobj()

                class Counted:
                    def decompress(self, data: bytes) -> bytes:
                        counter.calls += 1
                        out: bytes = real.decompress(data)
                        return out

                    @property
                    def eof(self) -> bool:
                        return bool(real.eof)

                    @property
                    def unused_data(self) -> bytes:
                        return bytes(real.unused_data)

                return Counted()

        self.ZstdDecompressor = Decompressor


def test_input_that_yields_nothing_near_the_limit_is_not_fed_to_zstd_four_bytes_a_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Once the output came within a block (128 KiB) of the limit, the input went to zstd four
    bytes a call: a body decoding to just under 64 MiB, then 60 MiB of empty blocks (3 bytes
    each, nothing out), cost 15 million calls, about 15 s of the event loop. The slices are now
    at least a sixteenth of the limit's worth of blocks (the margin the inner streams have)."""
    counting = _CountingZstd()
    monkeypatch.setitem(_bodies._FACTORIES, "zstd", lambda *args: _bodies._Zstd(counting, *args))
    limit = 16 * MIB
    header = struct.pack("<I", 0xFD2FB528) + bytes([0x00, 0x50])  # a frame of unknown size
    empty_blocks = b"\x00\x00\x00" * (MIB // 3) + b"\x01\x00\x00"  # raw, 0 bytes; the last
    wire = ENCODERS["zstd"](b"a" * (limit - 100_000)) + header + empty_blocks
    assert decode("zstd", wire, limit=limit, chunk=256 * KIB) == b"a" * (limit - 100_000)
    assert counting.calls < MIB // 16, counting.calls


def test_a_zstd_window_above_8_mib_is_refused() -> None:
    params = zstandard.ZstdCompressionParameters(window_log=27)
    c = zstandard.ZstdCompressor(compression_params=params).compressobj()
    wire = c.compress(b"ab" * 1000) + c.flush()
    with pytest.raises(CorruptBody, match="zstd"):
        decode("zstd", wire)


# --- damaged streams ------------------------------------------------------------------------------


@pytest.mark.parametrize("header", [*ENCODINGS, "gzip, br"])
def test_every_truncation_is_corrupt(header: str) -> None:
    wire = encode(header, BODY)
    for cut in sorted({1, 2, 3, 10, len(wire) // 2, len(wire) - 5, len(wire) - 1}):
        with pytest.raises(CorruptBody, match=r"truncated|corrupt"):
            decode(header, wire[:cut], chunk=64)


@pytest.mark.parametrize("header", ["gzip", "deflate", "br", "zstd"])
def test_a_corrupt_stream_is_corrupt(header: str) -> None:
    with pytest.raises(CorruptBody):
        decode(header, b"\x1f\x8b\x08\x00" + b"\xff" * 64 if header == "gzip" else b"\xff" * 64)


def test_a_gzip_checksum_mismatch_is_corrupt() -> None:
    wire = bytearray(gzip.compress(BODY))
    wire[-6] ^= 0xFF  # inside the CRC32 trailer
    with pytest.raises(CorruptBody):
        decode("gzip", bytes(wire))


@PROPERTY
@given(
    wire=st.binary(max_size=2000),
    header=st.lists(st.sampled_from(ENCODINGS), min_size=1, max_size=MAX_LAYERS).map(", ".join),
    size=st.integers(1, 500),
)
def test_garbage_decodes_or_is_corrupt_never_anything_else(wire: bytes, header: str, size: int) -> None:
    with contextlib.suppress(BodyTooLarge, CorruptBody):
        assert len(decode(header, wire, limit=64 * KIB, chunk=size)) <= 64 * KIB


@PROPERTY
@given(body=st.binary(min_size=1, max_size=3000), header=st.sampled_from(ENCODINGS), data=st.data())
def test_a_flipped_byte_never_escapes_as_another_exception(body: bytes, header: str, data: Any) -> None:
    wire = bytearray(encode(header, body))
    index = data.draw(st.integers(0, len(wire) - 1))
    wire[index] ^= data.draw(st.integers(1, 255))
    with contextlib.suppress(BodyTooLarge, CorruptBody):
        decode(header, bytes(wire), limit=64 * KIB, chunk=97)


# --- what is offered ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    ["compress", "x-compress", "bzip2", "gzip;q=1", "snappy", "gzip, lzma", "b r", "\u0433zip"],
)
def test_unknown_codings_are_unsupported(header: str) -> None:
    with pytest.raises(UnsupportedEncoding) as caught:
        BodyDecoder(header, limit=MIB)
    assert caught.value.name in header.lower()


def test_more_than_max_layers_are_refused_before_any_byte() -> None:
    BodyDecoder(", ".join(["gzip"] * MAX_LAYERS), limit=MIB)
    with pytest.raises(UnsupportedEncoding, match=f"at most {MAX_LAYERS}"):
        BodyDecoder(", ".join(["gzip"] * (MAX_LAYERS + 1)), limit=MIB)


def test_a_long_hostile_coding_name_is_cut_in_the_message() -> None:
    with pytest.raises(UnsupportedEncoding) as caught:
        BodyDecoder("z" * 10_000, limit=MIB)
    assert len(str(caught.value)) < 100
    assert caught.value.name == "z" * 10_000


def test_accept_encoding_lists_exactly_the_bounded_codings() -> None:
    assert ACCEPT_ENCODING == "gzip, deflate, br, zstd"
    assert available_encodings() == ("gzip", "deflate", "br", "zstd")
    for name in ACCEPT_ENCODING.split(", "):
        assert decode(name, encode(name, BODY)) == BODY


@pytest.mark.parametrize("limit", [-1, 1.5, "10", True, None])
def test_a_bad_limit_is_a_config_error(limit: Any) -> None:
    with pytest.raises(ConfigError, match="limit"):
        BodyDecoder("gzip", limit=limit)


def test_finish_refuses_a_second_call() -> None:
    decoder = BodyDecoder("gzip", limit=MIB)
    decoder.feed(gzip.compress(b"x"))
    assert decoder.finish() == b""
    assert decoder.size == 1
    with pytest.raises(RuntimeError):
        decoder.finish()


def test_without_the_optional_libraries_only_zlib_codings_are_offered() -> None:
    script = (
        "import sys\n"
        "for name in ('brotli', 'brotlicffi', 'zstandard'): sys.modules[name] = None\n"
        "from vbo_async._bodies import ACCEPT_ENCODING, BodyDecoder, UnsupportedEncoding\n"
        "print(ACCEPT_ENCODING)\n"
        "for name in ('br', 'zstd'):\n"
        "    try: BodyDecoder(name, limit=1)\n"
        "    except UnsupportedEncoding: print('refused', name)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.splitlines() == ["gzip, deflate", "refused br", "refused zstd"]


def test_a_brotli_without_bounded_output_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """brotli < 1.2 has ``process(data)`` only: its output cannot be bounded, so it is not offered."""

    class OldDecompressor:
        def process(self, data: bytes) -> bytes:
            return b""

        def is_finished(self) -> bool:
            return False

    old = types.SimpleNamespace(Decompressor=OldDecompressor, error=Exception)
    monkeypatch.setitem(sys.modules, "brotli", old)
    monkeypatch.setitem(sys.modules, "brotlicffi", None)
    assert _bodies._bounded_brotli() is None
    monkeypatch.setitem(sys.modules, "brotlicffi", brotli)  # one with the bounded API is taken
    assert _bodies._bounded_brotli() is brotli
