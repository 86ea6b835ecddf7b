"""The exporter's exposition: prometheus_client renders it, once per server's sweep, kept compressed.

A scrape must be cheap whatever the number of jobs, so a server's series are rendered once when
its sweep ends (`render_server`: prometheus_client's metric families and `generate_latest`, one
family at a time so only one is ever in memory) and kept as deflate segments, one per family,
each readable on its own. Publishing joins every server's latest segments, family by family,
under each family's ``# HELP``/``# TYPE`` lines (`assemble`), without compressing anything
again: the other servers' series are never rendered twice. A scrape then only renders the
exporter's own metrics (process, sweeps; `own_registry`) and joins the two: a single gzip member
for clients that accept gzip (Prometheus does), plain text otherwise (`response_body`). The text
format itself is never written here, only the deflate and gzip framing.
"""

from __future__ import annotations

import struct
import time
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence

import attrs
from prometheus_client import (
    CollectorRegistry,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from .. import __version__
from ._metrics import ERROR_KINDS, METRICS, SELF_PREFIX, MetricSpec
from ._sweeps import ServerSnapshot

__all__ = [
    "CONTENT_TYPE",
    "EMPTY",
    "Exposition",
    "LoopStats",
    "ServerPart",
    "assemble",
    "crc32_combine",
    "gzip_parts",
    "own_registry",
    "render",
    "render_server",
    "response_body",
]

CONTENT_TYPE: str = choose_encoder("")[1]
"""The Prometheus text format (0.0.4), as prometheus_client names it."""
_LEVEL = 6


@attrs.frozen
class Exposition:
    """A rendered exposition: ``deflated`` is its raw deflate stream, in pieces (the servers'
    segments are shared, not copied, by the exposition that joins them), flushed to a byte
    boundary but not finished (so more can follow), ``crc`` the CRC-32 and ``size`` the length
    of the text it holds."""

    deflated: tuple[bytes, ...]
    crc: int
    size: int

    def text(self) -> bytes:
        """The exposition as text (decompressed for each call)."""
        return zlib.decompressobj(-15).decompress(b"".join(self.deflated))


EMPTY = Exposition((), 0, 0)
"""Before the first sweep: no series of any server."""


class _One(CollectorRegistry):
    """A registry of one family, for `generate_latest` (which takes any `Collector` from
    prometheus_client 0.21; 0.20, the floor, annotates a `CollectorRegistry`)."""

    def __init__(self, family: Metric) -> None:
        super().__init__()
        self._family = family

    def collect(self) -> Iterable[Metric]:
        return (self._family,)


@attrs.frozen
class ServerPart:
    """One server's series as `render_server` rendered them: per metric family name, the
    family's sample lines (no ``# HELP``/``# TYPE``) as an `Exposition` whose deflate stream
    refers to nothing before it, so the segments of several servers can be joined in any order.
    ``up`` and ``jobs`` are its snapshot's."""

    server: str
    families: Mapping[str, Exposition]
    up: bool = False
    jobs: int = 0


def render(snapshots: Sequence[ServerSnapshot], errors: Mapping[str, Mapping[str, int]]) -> Exposition:
    """The exposition of ``snapshots`` (one per server) and of the running error totals
    (``errors[server][kind]``): every family of `METRICS` that has samples, in table order."""
    return assemble([render_server(snapshot, errors.get(snapshot.server, {})) for snapshot in snapshots])


def render_server(snapshot: ServerSnapshot, errors: Mapping[str, int]) -> ServerPart:
    """``snapshot``'s series and its server's running error totals (``errors[kind]``), one
    segment per family that has samples."""
    compressor = zlib.compressobj(_LEVEL, zlib.DEFLATED, -15)
    segments: dict[str, Exposition] = {}
    for spec, family in _families(snapshot, errors):
        text = generate_latest(_One(family))[len(_header(spec)) :]
        # A full flush ends the segment on a byte boundary and forgets what came before it.
        deflated = compressor.compress(text) + compressor.flush(zlib.Z_FULL_FLUSH)
        segments[spec.name] = Exposition((deflated,), zlib.crc32(text), len(text))
    return ServerPart(snapshot.server, segments, up=snapshot.up, jobs=snapshot.jobs)


def assemble(parts: Sequence[ServerPart]) -> Exposition:
    """One exposition of every server's ``parts``: family by family in `METRICS` order, its
    ``# HELP`` and ``# TYPE`` lines once, then each server's samples in the order of ``parts``."""
    compressor = zlib.compressobj(_LEVEL, zlib.DEFLATED, -15)
    chunks: list[bytes] = []
    crc = size = 0
    for spec in METRICS:
        segments = [part.families[spec.name] for part in parts if spec.name in part.families]
        if not segments:
            continue
        header = _header(spec)
        chunks.append(compressor.compress(header) + compressor.flush(zlib.Z_FULL_FLUSH))
        crc = zlib.crc32(header, crc)
        size += len(header)
        for segment in segments:
            chunks += segment.deflated
            crc = crc32_combine(crc, segment.crc, segment.size)
            size += segment.size
    return Exposition(tuple(chunks), crc, size)


def _header(spec: MetricSpec) -> bytes:
    """The ``# HELP`` and ``# TYPE`` lines of ``spec``'s family, as prometheus_client writes them
    before its samples."""
    return generate_latest(_One(_empty(spec)))


def _families(snapshot: ServerSnapshot, errors: Mapping[str, int]) -> Iterator[tuple[MetricSpec, Metric]]:
    server = snapshot.server
    for spec in METRICS:
        family = _empty(spec)
        if spec.type == "counter":
            for kind in ERROR_KINDS:
                family.add_metric((server, kind), errors.get(kind, 0))
        else:
            for labels, value in snapshot.samples.get(spec.name, ()):
                family.add_metric((server, *labels), value)
        if family.samples:
            yield spec, family


def _empty(spec: MetricSpec) -> CounterMetricFamily | GaugeMetricFamily:
    if spec.type == "counter":
        return CounterMetricFamily(spec.name, spec.help, labels=("server", *spec.labels))
    return _gauge(spec)


_CRC_POLYNOMIAL = 0xEDB88320
"""CRC-32's polynomial, bits reversed (as zlib computes it)."""


def _crc_multiply(a: int, b: int) -> int:
    """``a * b`` modulo CRC-32's polynomial (zlib's ``multmodp``)."""
    product = 0
    bit = 1 << 31
    while a:
        if a & bit:
            product ^= b
            a ^= bit
        bit >>= 1
        b = (b >> 1) ^ _CRC_POLYNOMIAL if b & 1 else b >> 1
    return product


def _squares() -> tuple[int, ...]:
    """x to the powers 1, 2, 4, 8, ... 2**63 modulo CRC-32's polynomial."""
    powers = [1 << 30]
    while len(powers) < 64:
        powers.append(_crc_multiply(powers[-1], powers[-1]))
    return tuple(powers)


_CRC_SQUARES = _squares()


def crc32_combine(crc1: int, crc2: int, length2: int) -> int:
    """The CRC-32 of two texts joined, from the CRC-32 of each and the length of the second (zlib's
    ``crc32_combine``, which Python's zlib lacks): ``crc1`` times x to the power 8 × ``length2``,
    plus ``crc2``, in O(log ``length2``)."""
    shift = 1 << 31  # x to the power 0
    exponent = 8 * length2
    for power in _CRC_SQUARES:
        if not exponent:
            break
        if exponent & 1:
            shift = _crc_multiply(power, shift)
        exponent >>= 1
    return _crc_multiply(shift, crc1) ^ crc2


def _gauge(spec: MetricSpec) -> GaugeMetricFamily:
    return GaugeMetricFamily(spec.name, spec.help, labels=("server", *spec.labels))


# --- the exporter's own metrics -----------------------------------------------------------------


@attrs.define
class LoopStats:
    """What the sweep loops have done, for the exporter's own metrics and ``/healthz``. A
    *complete* sweep is one of every server: ``sweeps`` counts those (the sweeps of the server
    swept least), ``last_end`` is when the one published longest ago was published."""

    servers: int = 0
    interval: float = 0.0
    stale_after: float = 0.0
    """Seconds after the last publish at which ``/healthz`` calls the loop stale."""
    sweeps: int = 0
    failed_sweeps: int = 0
    overruns: int = 0
    in_progress: bool = False
    started: float | None = None
    """When the loop started (Unix time)."""
    last_end: float | None = None
    """When the last complete sweep was published (Unix time): the oldest of the servers' last
    publishes; None until every server has been published once."""
    last_duration: float | None = None
    """Seconds the last sweep of the slowest server took, rendering and publishing included."""
    last_render: float | None = None
    """Seconds the last publish took to render its server's series and join every server's."""
    published: int = 0
    """Servers published at least once."""
    servers_up: int = 0
    jobs: int = 0
    exposition_bytes: int = 0
    scrapes: int = 0
    config_ok: bool = True
    """Whether the targets file was loaded without error the last time it was (at start, or at
    ``serve``'s last SIGHUP); a failed reload leaves the last good configuration swept."""
    config_loaded: float | None = None
    """When the configuration swept was loaded (Unix time): at start, or at the last reload
    that succeeded."""


class _Own(Collector):
    """``vbo_async_exporter_*``: the sweep loop as `LoopStats` tells it, at scrape time."""

    def __init__(self, stats: LoopStats) -> None:
        self._stats = stats

    def collect(self) -> Iterable[Metric]:
        stats = self._stats

        def gauge(name: str, text: str, value: float | None) -> Iterator[Metric]:
            if value is not None:
                yield GaugeMetricFamily(SELF_PREFIX + name, text, value=value)

        def counter(name: str, text: str, value: float) -> Metric:
            return CounterMetricFamily(SELF_PREFIX + name, text, value=value)

        info = GaugeMetricFamily(
            SELF_PREFIX + "build_info", "1, with vbo-async's version.", labels=["version"]
        )
        info.add_metric([__version__], 1)
        yield info
        yield from gauge("servers", "Servers in the targets file.", stats.servers)
        yield from gauge(
            "interval_seconds", "Seconds between the starts of two sweeps of a server.", stats.interval
        )
        yield from gauge(
            "stale_after_seconds",
            "Seconds without a published sweep after which /healthz reports the loop stale: three "
            "intervals, or three per-server time budgets (--timeout) when that is longer, or three "
            "rounds of turns of a budget each when servers take turns and that is longer.",
            stats.stale_after,
        )
        yield counter(
            "sweeps_total",
            "Complete sweeps published: how many times every server has been swept (each server is "
            "published as soon as its own sweep ends).",
            stats.sweeps,
        )
        yield counter(
            "sweep_failures_total", "Sweeps of a server that ended in an internal error.", stats.failed_sweeps
        )
        yield counter(
            "sweep_overruns_total", "Sweeps of a server that took longer than the interval.", stats.overruns
        )
        yield from gauge("sweep_in_progress", "1 while a server's sweep runs.", float(stats.in_progress))
        yield from gauge(
            "last_sweep_timestamp_seconds",
            "When the last complete sweep was published: the oldest of the servers' last publishes.",
            stats.last_end,
        )
        yield from gauge(
            "last_sweep_duration_seconds",
            "Seconds the last sweep of the slowest server took, rendering and publishing included.",
            stats.last_duration,
        )
        yield from gauge(
            "last_render_duration_seconds",
            "Seconds the last publish took to render its server's series and join every server's.",
            stats.last_render,
        )
        if stats.published:
            yield from gauge("servers_up", "Servers up, as last published.", stats.servers_up)
            yield from gauge("jobs", "Jobs published.", stats.jobs)
        yield from gauge(
            "exposition_bytes", "Size of the servers' exposition (uncompressed).", stats.exposition_bytes
        )
        yield counter("scrapes_total", "Requests for /metrics answered.", stats.scrapes)
        yield from gauge(
            "config_last_reload_successful",
            "1 when the targets file was last loaded without error (at start, or at the last SIGHUP), "
            "0 when that reload failed: the servers of the last good file are still swept.",
            float(stats.config_ok),
        )
        yield from gauge(
            "config_last_reload_success_timestamp_seconds",
            "When the configuration swept was loaded: at start, or at the last reload that succeeded.",
            stats.config_loaded,
        )


def own_registry(stats: LoopStats) -> CollectorRegistry:
    """A registry of the exporter's own metrics: `LoopStats`, and prometheus_client's process,
    platform and garbage-collector collectors (never the global registry)."""
    registry = CollectorRegistry(auto_describe=False)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    registry.register(_Own(stats))
    return registry


def response_body(exposition: Exposition, own: bytes, *, gzip: bool) -> bytes:
    """The body of a ``/metrics`` answer: the servers' ``exposition`` followed by the exporter's
    ``own`` metrics (``generate_latest`` of its registry, rendered by the caller at the moment the
    answer stands for); with ``gzip``, one gzip member (RFC 1952) holding both (`gzip_parts`)."""
    if not gzip:
        return exposition.text() + own
    return b"".join(gzip_parts(exposition, own))


def gzip_parts(exposition: Exposition, own: bytes) -> tuple[bytes, ...]:
    """`response_body` with gzip in the pieces it is joined from: the exposition's own deflate
    segments (shared with it and every other answer, never copied) between a gzip header and the
    compressed ``own`` metrics with the member's trailer."""
    compressor = zlib.compressobj(_LEVEL, zlib.DEFLATED, -15)
    tail = compressor.compress(own) + compressor.flush()
    crc = zlib.crc32(own, exposition.crc)
    size = (exposition.size + len(own)) & 0xFFFFFFFF
    header = b"\x1f\x8b\x08\x00" + struct.pack("<I", int(time.time())) + b"\x00\xff"
    return (header, *exposition.deflated, tail + struct.pack("<II", crc, size))
