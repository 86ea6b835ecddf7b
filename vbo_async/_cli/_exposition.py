"""The exporter's exposition: prometheus_client renders it, once per sweep, kept compressed.

A scrape must be cheap whatever the number of jobs, so the servers' series are rendered once
when a sweep completes (`render`: prometheus_client's metric families and `generate_latest`,
one family at a time so only one is ever in memory) and kept as a deflate stream. A scrape then
only renders the exporter's own metrics (process, sweeps; `own_registry`) and joins the two:
a single gzip member for clients that accept gzip (Prometheus does), plain text otherwise
(`response_body`). The text format itself is never written here, only the gzip framing.
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

__all__ = ["CONTENT_TYPE", "EMPTY", "Exposition", "LoopStats", "own_registry", "render", "response_body"]

CONTENT_TYPE: str = choose_encoder("")[1]
"""The Prometheus text format (0.0.4), as prometheus_client names it."""
_LEVEL = 6


@attrs.frozen
class Exposition:
    """A rendered exposition: ``deflated`` is its raw deflate stream, flushed to a byte boundary
    but not finished (so more can follow), ``crc`` the CRC-32 and ``size`` the length of the
    text it holds."""

    deflated: bytes
    crc: int
    size: int

    def text(self) -> bytes:
        """The exposition as text (decompressed for each call)."""
        return zlib.decompressobj(-15).decompress(self.deflated)


EMPTY = Exposition(b"", 0, 0)
"""Before the first sweep: no series of any server."""


class _One(Collector):
    def __init__(self, family: Metric) -> None:
        self._family = family

    def collect(self) -> Iterable[Metric]:
        return (self._family,)


def render(snapshots: Sequence[ServerSnapshot], errors: Mapping[str, Mapping[str, int]]) -> Exposition:
    """The exposition of ``snapshots`` (one per server) and of the running error totals
    (``errors[server][kind]``): every family of `METRICS` that has samples, in table order."""
    compressor = zlib.compressobj(_LEVEL, zlib.DEFLATED, -15)
    chunks: list[bytes] = []
    crc = size = 0
    for family in _families(snapshots, errors):
        text = generate_latest(_One(family))
        chunks.append(compressor.compress(text))
        crc = zlib.crc32(text, crc)
        size += len(text)
    chunks.append(compressor.flush(zlib.Z_SYNC_FLUSH))
    return Exposition(b"".join(chunks), crc, size)


def _families(
    snapshots: Sequence[ServerSnapshot], errors: Mapping[str, Mapping[str, int]]
) -> Iterator[Metric]:
    for spec in METRICS:
        if spec.type == "counter":
            counter = CounterMetricFamily(spec.name, spec.help, labels=("server", *spec.labels))
            for snapshot in snapshots:
                totals = errors.get(snapshot.server, {})
                for kind in ERROR_KINDS:
                    counter.add_metric((snapshot.server, kind), totals.get(kind, 0))
            if counter.samples:
                yield counter
            continue
        family = _gauge(spec)
        for snapshot in snapshots:
            server = snapshot.server
            for labels, value in snapshot.samples.get(spec.name, ()):
                family.add_metric((server, *labels), value)
        if family.samples:
            yield family


def _gauge(spec: MetricSpec) -> GaugeMetricFamily:
    return GaugeMetricFamily(spec.name, spec.help, labels=("server", *spec.labels))


# --- the exporter's own metrics -----------------------------------------------------------------


@attrs.define
class LoopStats:
    """What the sweep loop has done, for the exporter's own metrics and ``/healthz``."""

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
    """When the last complete sweep was published (Unix time); None before the first."""
    last_duration: float | None = None
    last_render: float | None = None
    servers_up: int = 0
    jobs: int = 0
    exposition_bytes: int = 0
    scrapes: int = 0


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
        yield from gauge("interval_seconds", "Seconds between the starts of two sweeps.", stats.interval)
        yield from gauge(
            "stale_after_seconds",
            "Seconds without a published sweep after which /healthz reports the loop stale: three "
            "intervals, or three per-server time budgets (--timeout) when that is longer.",
            stats.stale_after,
        )
        yield counter("sweeps_total", "Sweeps completed and published.", stats.sweeps)
        yield counter("sweep_failures_total", "Sweeps that ended in an internal error.", stats.failed_sweeps)
        yield counter("sweep_overruns_total", "Sweeps that took longer than the interval.", stats.overruns)
        yield from gauge("sweep_in_progress", "1 while a sweep runs.", float(stats.in_progress))
        yield from gauge(
            "last_sweep_timestamp_seconds", "When the last complete sweep was published.", stats.last_end
        )
        yield from gauge(
            "last_sweep_duration_seconds",
            "Seconds the last complete sweep took, rendering included.",
            stats.last_duration,
        )
        yield from gauge(
            "last_render_duration_seconds", "Seconds rendering the last exposition took.", stats.last_render
        )
        if stats.sweeps:
            yield from gauge("servers_up", "Servers up in the last complete sweep.", stats.servers_up)
            yield from gauge("jobs", "Jobs published by the last complete sweep.", stats.jobs)
        yield from gauge(
            "exposition_bytes", "Size of the servers' exposition (uncompressed).", stats.exposition_bytes
        )
        yield counter("scrapes_total", "Requests for /metrics answered.", stats.scrapes)


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
    answer stands for); with ``gzip``, one gzip member (RFC 1952) holding both."""
    if not gzip:
        return exposition.text() + own
    compressor = zlib.compressobj(_LEVEL, zlib.DEFLATED, -15)
    tail = compressor.compress(own) + compressor.flush()
    crc = zlib.crc32(own, exposition.crc)
    size = (exposition.size + len(own)) & 0xFFFFFFFF
    header = b"\x1f\x8b\x08\x00" + struct.pack("<I", int(time.time())) + b"\x00\xff"
    return b"".join((header, exposition.deflated, tail, struct.pack("<II", crc, size)))
