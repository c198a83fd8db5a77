"""Prometheus metrics, safe across uvicorn's worker processes.

`serve` points `PROMETHEUS_MULTIPROC_DIR` at a fresh folder before any worker starts (see
`multiprocess_dir`); each process then writes its values to files there and `/metrics` sums them.
Without that variable (tests, an embedded app) the values live in this process. The names are
documented in docs/operating/observability.md (Grafana-ready: counters end in `_total`, durations are `_seconds`).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from bisect import bisect_left
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
    write_to_textfile,
)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# a cached tile takes well under a millisecond, a large render seconds
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
QUERY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)

REQUESTS = Counter("iiif_http_requests", "HTTP requests by route kind and status", ["kind", "status"])
LATENCY = Histogram("iiif_http_request_duration_seconds", "time from request to the last body byte, by route kind",
                    ["kind"], buckets=LATENCY_BUCKETS)
RESPONSE_BYTES = Counter("iiif_http_response_bytes", "response body bytes sent, by route kind", ["kind"])
IN_FLIGHT = Gauge("iiif_http_requests_in_flight", "requests being answered", multiprocess_mode="livesum")
IMAGES = Counter("iiif_image_responses", "image responses by how they were made: passthrough (a stored tile "
                 "sent as stored), decoded (rendered by libvips) or cache_hit (from the response cache)", ["outcome"])
RENDER = Histogram("iiif_image_render_seconds", "time of one render (passthrough or decoded) in the image pool, "
                   "or on the event loop for a stored tile already in the page cache",
                   ["outcome"], buckets=LATENCY_BUCKETS)
ACCESS = Counter("iiif_access_decisions", "access decisions on restricted material: allow, degrade, login (401), "
                 "deny (403)", ["verdict"])
QUERIES = Histogram("iiif_catalogue_query_seconds", "time of one catalogue SQL statement", buckets=QUERY_BUCKETS)
ERRORS = Counter("iiif_unhandled_errors", "exceptions that reached the top of a request (answered 500)")

FLUSH_SECONDS = 0.5


class Later:
    """Runs `action` once, `delay` seconds after the first `soon()` since it last ran, on the running event
    loop; at once where there is no loop (nothing would run it later)."""

    def __init__(self, action: Callable[[], None], delay: float) -> None:
        self.action = action
        self.delay = delay
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def soon(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.action()
            return
        if self._timer is None or self._loop is not loop:  # (a timer of a loop since closed never fires)
            self._timer, self._loop = loop.call_later(self.delay, self.action), loop

    def cancel(self) -> None:
        """`action` is running now: no need to run it later."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class Batch:
    """Per-request metrics added up in plain numbers on the event loop and handed to prometheus_client at
    most every FLUSH_SECONDS (and before every exposition of this process): across workers each increment
    is a locked write to a memory-mapped file, about a microsecond, and a tile made a dozen of them.
    The in-flight gauge is set to the current count at each hand-over."""

    def __init__(self) -> None:
        self.counts: dict[Any, float] = {}  # Counter child -> amount
        self.histograms: dict[Any, list[float]] = {}  # Histogram child -> per-bucket counts, then the sum
        self.in_flight = 0
        self.flushed_in_flight = 0
        self._later = Later(self.flush, FLUSH_SECONDS)

    def inc(self, child: Any, amount: float = 1) -> None:
        self.counts[child] = self.counts.get(child, 0) + amount
        self._later.soon()

    def observe(self, child: Any, value: float) -> None:
        bounds = child._upper_bounds  # prometheus_client's own (ends with +Inf); buckets are not cumulative there
        counts = self.histograms.get(child)
        if counts is None:
            counts = self.histograms[child] = [0.0] * (len(bounds) + 1)
        counts[bisect_left(bounds, value)] += 1
        counts[-1] += value
        self._later.soon()

    def flush(self) -> None:
        self._later.cancel()  # (when called before its time: an exposition, the end of a worker)
        counts, self.counts = self.counts, {}
        histograms, self.histograms = self.histograms, {}
        for child, amount in counts.items():
            child.inc(amount)
        for child, buckets in histograms.items():
            for index, n in enumerate(buckets[:-1]):
                if n:
                    child._buckets[index].inc(n)
            child._sum.inc(buckets[-1])
        if self.in_flight != self.flushed_in_flight:
            IN_FLIGHT.set(self.in_flight)
            self.flushed_in_flight = self.in_flight


batch = Batch()
_children: dict[tuple[str, str], Any] = {}


def record(kind: str, status: int, seconds: float, sent: int, outcome: str | None) -> None:
    """One finished request (the label lookups are memoised: this runs on every tile)."""
    key = (kind, status)
    child = _children.get(key)
    if child is None:
        child = _children[key] = (REQUESTS.labels(kind, str(status)), LATENCY.labels(kind),
                                  RESPONSE_BYTES.labels(kind))
    batch.inc(child[0])
    batch.observe(child[1], seconds)
    if sent:
        batch.inc(child[2], sent)
    if outcome is not None:
        image = _children.get(("image", outcome))
        if image is None:
            image = _children[("image", outcome)] = IMAGES.labels(outcome)
        batch.inc(image)


def render_time(outcome: str, seconds: float) -> None:
    """One render's time (passthrough or decoded), in iiif_image_render_seconds."""
    child = _children.get(("render", outcome))
    if child is None:
        child = _children[("render", outcome)] = RENDER.labels(outcome)
    batch.observe(child, seconds)


def exposition() -> tuple[bytes, str]:
    """The text format of every metric, summed over the worker processes when there are several (the
    others' last FLUSH_SECONDS may be missing)."""
    batch.flush()
    if os.environ.get(MULTIPROC_ENV) and values.ValueClass is not values.MutexValue:
        # (the folder is read only where prometheus_client was imported with it set: a single worker imports
        # it before `serve` sets it, and keeps its values in this process)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def time_queries(engine: Any) -> None:
    """Observe every SQL statement of this engine in `iiif_catalogue_query_seconds`."""
    from sqlalchemy import event

    def before(conn: Any, cursor: Any, statement: Any, parameters: Any, context: Any, executemany: bool) -> None:
        conn.info.setdefault("iiif_started", []).append(time.perf_counter())

    def after(conn: Any, cursor: Any, statement: Any, parameters: Any, context: Any, executemany: bool) -> None:
        started = conn.info.get("iiif_started")
        if started:
            QUERIES.observe(time.perf_counter() - started.pop())

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)


@contextmanager
def multiprocess_dir() -> Iterator[Path]:
    """A fresh, empty folder for the workers' metric files, set in the environment and removed at the end.

    Files of an earlier run would be summed into this one's counters, so never reuse one."""
    folder = Path(tempfile.mkdtemp(prefix="iiif-server-metrics-"))
    previous = os.environ.get(MULTIPROC_ENV)
    os.environ[MULTIPROC_ENV] = str(folder)
    try:
        yield folder
    finally:
        if previous is None:
            os.environ.pop(MULTIPROC_ENV, None)
        else:
            os.environ[MULTIPROC_ENV] = previous
        shutil.rmtree(folder, ignore_errors=True)


class IngestProgress:
    """Ingest progress as a Prometheus text file (for node_exporter's textfile collector)."""

    def __init__(self, path: Path, collection: str) -> None:
        self.path = path
        self.registry = CollectorRegistry()
        self.done = Gauge("iiif_ingest_images_done", "masters handled so far by the running ingest",
                          ["collection"], registry=self.registry).labels(collection)
        self.total = Gauge("iiif_ingest_images_planned", "masters the running ingest will handle",
                           ["collection"], registry=self.registry).labels(collection)
        self.failed = Gauge("iiif_ingest_images_failed", "masters that could not be converted",
                            ["collection"], registry=self.registry).labels(collection)
        self.finished = Gauge("iiif_ingest_finished_timestamp_seconds", "when the ingest ended (0: running)",
                              ["collection"], registry=self.registry).labels(collection)
        self.written = 0.0

    def update(self, done: int, total: int, force: bool = False) -> None:
        self.done.set(done)
        self.total.set(total)
        now = time.monotonic()
        if force or now - self.written >= 1.0:  # at most once a second: the file is rewritten whole
            self.written = now
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_to_textfile(str(self.path), self.registry)

    def end(self, done: int, failed: int) -> None:
        self.failed.set(failed)
        self.finished.set(time.time())
        self.update(done, done, force=True)
